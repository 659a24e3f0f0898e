# Who owns a run and what the engine may signal (issue: engine hardening 1-5).
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: own
params:
  word: {type: string, default: first}
steps:
  slow:
    shell: bash
    script: |
      echo "$NIGHTSHIFT_ATTEMPT" >> "$NIGHTSHIFT_PARAM_LEDGER/executions"
      echo "attempt $NIGHTSHIFT_ATTEMPT"
      sleep "$NIGHTSHIFT_PARAM_NAP"
      echo "$NIGHTSHIFT_PARAM_WORD" > word.txt
  extra:
    run: echo extra
YAML
sed -i 's/^params:/params:\n  ledger: {type: string}\n  nap: {type: string, default: "0"}/' p.yaml

mkdir ledger
# 3. A crash right after a spawn: the launch was recorded first, so the resume
# marks it lost, uses attempt 2 and writes attempt 2's own log files.
capture env NIGHTSHIFT_TEST_KILL_AFTER_SPAWN=1 "$NIGHTSHIFT" run p.yaml --root root -p ledger="$WORK/ledger" -p nap=0.3 --plain
assert_eq "$rc" 137 "the engine killed itself: $out"
run=$(latest_run root)
assert_eq "$(sqlite3 root/nightshift.db "select group_concat(task_id||':'||attempt||':'||status) from attempts where run_id='$run' order by task_id")" "extra:1:running,slow:1:running" "launches recorded before the spawn"
capture ns run p.yaml --root root --resume "$run" --plain
assert_eq "$rc" 0 "resume: $out"
assert_eq "$(sqlite3 root/nightshift.db "select group_concat(attempt||':'||status) from attempts where run_id='$run' and task_id='slow' order by attempt")" "1:lost,2:succeeded"
assert_eq "$(cat root/runs/$run/_logs/slow.2.out)" "attempt 2" "attempt 2 has its own log"
assert_no_file root/runs/$run/_logs/extra.1.err   # logs are created on the first byte only

# 4. -p given to a --resume is stored: the next resume keeps it.
capture ns run p.yaml --root root --resume "$run" -p word=second --plain
assert_eq "$rc" 0 "$out"
assert_eq "$(cat root/runs/$run/slow/word.txt)" "second"
capture ns run p.yaml --root root --resume "$run" --plain
assert_eq "$rc" 0 "$out"
assert_eq "$(cat root/runs/$run/slow/word.txt)" "second" "a later resume went back to the first params"
assert_contains "$out" "step slow: succeeded (0 done, 1 cached"

# 5. A step removed from the pipeline leaves no folder and no rows.
sed '/^  extra:/,$d' p.yaml > q.yaml
capture ns run q.yaml --root root --resume "$run" --plain
assert_eq "$rc" 0 "$out"
assert_no_file root/runs/$run/extra
assert_eq "$(sqlite3 root/nightshift.db "select count(*) from tasks where run_id='$run' and step='extra'")" "0"
assert_eq "$(sqlite3 root/nightshift.db "select count(*) from attempts where run_id='$run' and task_id='extra'")" "0"
capture ns runs --root root
assert_contains "$out" "1/1" "runs counts only the pipeline's tasks"

# 1. A lost attempt whose recorded pid now names an unrelated process: resume
# must not signal it (the engine proves ownership by the attempt's uid).
setsid sleep 300 &
victim=$!
sqlite3 root/nightshift.db "update runs set status='running', owner='' , pid=999999 where run_id='$run'; update attempts set status='running', pid=$victim where run_id='$run' and task_id='slow' and attempt=2"
capture ns run q.yaml --root root --resume "$run" --plain
assert_eq "$rc" 0 "$out"
kill -0 $victim 2>/dev/null || fail "resume killed an unrelated process (pid $victim) named by a stale attempt"
kill $victim; wait $victim 2>/dev/null || true

# 2. Two resumes of one run started together: exactly one runs it, the other
# exits 2 at once.
for try in 1 2 3 4 5; do
  sqlite3 root/nightshift.db "update runs set status='failed' where run_id='$run'"
  rm -f ledger/executions
  "$NIGHTSHIFT" run q.yaml --root root --resume "$run" -p nap=0.5 -p word=w$try --plain > a.log 2>&1 & a=$!
  "$NIGHTSHIFT" run q.yaml --root root --resume "$run" -p nap=0.5 -p word=w$try --plain > b.log 2>&1 & b=$!
  set +e; wait $a; ra=$?; wait $b; rb=$?; set -e
  codes=$(printf '%s\n' $ra $rb | sort | tr '\n' ' ')
  assert_eq "$codes" "0 2 " "try $try: exit codes $ra and $rb; $(cat a.log b.log)"
  assert_contains "$(cat a.log b.log)" "is already running"
  assert_eq "$(wc -l < ledger/executions)" "1" "try $try: the task ran more than once"
done
# While a run goes, tasks that have not finished (no row yet) still count.
cat > w.yaml <<'YAML'
name: wait
steps:
  nap:
    foreach: [a, b, c, d]
    run: sleep 1
YAML
"$NIGHTSHIFT" run w.yaml --root live --cpus 1 --plain > w.log 2>&1 & w=$!
wait_for 20 test -s live/nightshift.db
sleep 0.5
capture ns runs --root live
assert_contains "$out" "0/4" "runs while the first task runs: $out"
capture ns show "$(latest_run live)" --root live
assert_contains "$out" "1 running" "$out"
assert_contains "$out" "3 pending" "$out"
wait $w
echo PASS

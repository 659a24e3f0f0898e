# SIGKILL of `nightshift run` mid-way keeps committed outputs; --resume reruns
# only what did not commit.
source "$(dirname "$0")/lib.sh"
mkdir ledger
cat > p.yaml <<YAML
name: resumable
params:
  ledger: {type: string}  # not a path: a path param's contents are fingerprinted
steps:
  work:
    foreach: [i01, i02, i03, i04, i05, i06, i07, i08, i09, i10, i11, i12]
    env: {LEDGER: "\${params.ledger}"}
    shell: bash
    script: |
      echo "\$NIGHTSHIFT_ITEM" >> "\$LEDGER/executions"
      sleep 0.4
      echo done > out.txt
  total:
    needs: [work]
    env: {W: "\${steps.work.output}"}
    shell: bash
    script: ls "\$W" | grep -c '^i' > count.txt
YAML
"$NIGHTSHIFT" run p.yaml --root root -p ledger="$WORK/ledger" --plain > log.txt 2>&1 &
pid=$!
wait_for 30 bash -c "[ \$(ls root/runs/*/work 2>/dev/null | grep -c '^i') -ge 4 ]"
kill -9 $pid
wait $pid 2>/dev/null || true
run=$(latest_run root)
committed=$(ls root/runs/$run/work | grep '^i' | sort)
n_committed=$(wc -l <<<"$committed")
(( n_committed >= 4 && n_committed < 12 )) || fail "expected a partial run, got $n_committed committed"
assert_eq "$(sqlite3 root/nightshift.db "select status from runs where run_id='$run'")" "running"
capture ns runs --root root
assert_contains "$out" "stopped" "a run whose engine died"
capture ns run p.yaml --root root --resume "$run" --plain
assert_eq "$rc" 0 "resume: $out"
assert_eq "$(cat root/runs/$run/total/count.txt)" "12"
# Every item committed before the kill ran exactly once.
for item in $committed; do
  assert_eq "$(grep -c "^$item$" ledger/executions)" "1" "$item re-ran after resume"
done
assert_eq "$(sqlite3 root/nightshift.db "select count(*) from tasks where run_id='$run' and status='cached'")" "$n_committed"
assert_contains "$(cat root/runs/$run/run.json)" '"cached":true'
assert_contains "$(sqlite3 root/nightshift.db "select group_concat(distinct status) from attempts where run_id='$run'")" "lost"
# A resume of a finished run with nothing changed reuses everything.
capture ns run p.yaml --root root --resume "$run" --plain
assert_eq "$rc" 0
assert_contains "$out" "step work: succeeded (0 done, 12 cached"
echo PASS

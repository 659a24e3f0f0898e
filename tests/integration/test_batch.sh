# Several runs in one process over one capacity pool: `run a.yaml b.yaml` and
# `run --batch FILE` (JSON lines with params and priority). The runs share the
# machine (tasks of both run at once), a higher priority launches first when
# capacity is short, one bad entry stops the batch before anything is created,
# and the exit code is the worst run's.
source "$(dirname "$0")/lib.sh"
cat > a.yaml <<'YAML'
name: a
params:
  who: {type: string, default: a}
steps:
  work:
    resources: {cpus: 1}
    run: sh -c 'date +%s%N > start.txt; sleep 1; echo $0 > out.txt' ${params.who}
YAML
sed 's/^name: a/name: b/' a.yaml > b.yaml
start_of() { cat root$1/runs/$2/work/start.txt; }
run_of() { sqlite3 root$1/nightshift.db "select run_id from runs where pipeline='$2'"; }

# Two files, two cpus: both tasks run at once.
capture ns run a.yaml b.yaml --root root1 --cpus 2 --plain
assert_eq "$rc" 0 "two runs: $out"
assert_contains "$out" "[1/2] run "
assert_contains "$out" "[2/2] run "
ra=$(run_of 1 a); rb=$(run_of 1 b)
assert_eq "$(cat root1/runs/$ra/work/out.txt)" "a"
assert_eq "$(cat root1/runs/$rb/work/out.txt)" "a"   # -p applies to each; default who=a for both
gap=$(( ($(start_of 1 $rb) - $(start_of 1 $ra)) / 1000000 ))
(( ${gap#-} < 800 )) || fail "the two runs did not share the machine: starts ${gap} ms apart"

# A batch file with params and priorities, one cpu: the higher priority first.
cat > batch.jsonl <<'JSONL'
# two videos, the second one is urgent
{"pipeline": "a.yaml", "params": {"who": "first"}}
{"pipeline": "b.yaml", "params": {"who": "urgent"}, "priority": 5}
JSONL
capture ns run --batch batch.jsonl --root root2 --cpus 1 --plain
assert_eq "$rc" 0 "batch: $out"
ra=$(run_of 2 a); rb=$(run_of 2 b)
assert_eq "$(cat root2/runs/$ra/work/out.txt)" "first"
assert_eq "$(cat root2/runs/$rb/work/out.txt)" "urgent"
(( $(start_of 2 $rb) < $(start_of 2 $ra) )) || fail "priority 5 should launch first"
gap=$(( ($(start_of 2 $ra) - $(start_of 2 $rb)) / 1000000 ))
(( gap >= 900 )) || fail "one cpu: the runs should take turns (gap ${gap} ms)"

# One bad entry: nothing is created, exit 2, the line is named.
printf '{"pipeline": "a.yaml"}\n{"pipeline": "missing.yaml"}\n{"pipline": "b.yaml"}\n' > bad.jsonl
capture ns run --batch bad.jsonl --root root3
assert_eq "$rc" 2 "bad batch: $out"
assert_contains "$out" "bad.jsonl:3: "
assert_no_file root3/runs
printf '{"pipeline": "a.yaml"}\n{"pipeline": "missing.yaml"}\n' > bad2.jsonl
capture ns run --batch bad2.jsonl --root root3
assert_eq "$rc" 2 "missing pipeline: $out"
assert_contains "$out" "missing.yaml"
assert_contains "$out" "nothing was run"
[[ ! -d root3/runs ]] || [[ -z "$(ls root3/runs)" ]] || fail "a run folder was created: $(ls root3/runs)"

# `nightshift cancel RUN` cancels that run of a batch, not the others.
cat > slow.yaml <<'YAML'
name: slow
steps:
  wait:
    resources: {cpus: 1}
    run: sleep 30
YAML
sed 's/^name: slow/name: steady/; s/sleep 30/sleep 2/' slow.yaml > steady.yaml
ns run slow.yaml steady.yaml --root root5 --cpus 2 --plain > batch5.log 2>&1 &
engine=$!
wait_for 20 bash -c "[[ \$(sqlite3 root5/nightshift.db \"select count(*) from attempts where status='running'\" 2>/dev/null) == 2 ]]"
capture ns cancel "$(run_of 5 slow)" --root root5
assert_eq "$rc" 0 "cancel one run of a batch: $out"
set +e; wait $engine; rc=$?; set -e
assert_eq "$rc" 130 "the batch exit code with one run cancelled: $(cat batch5.log)"
assert_eq "$(sqlite3 root5/nightshift.db "select status from runs where pipeline='slow'")" "cancelled"
assert_eq "$(sqlite3 root5/nightshift.db "select status from runs where pipeline='steady'")" "succeeded" \
  "the other run of the batch went on: $(cat batch5.log)"

# The exit code is the worst run's.
cat > fail.yaml <<'YAML'
name: fails
steps:
  boom:
    retry: {max_attempts: 1}
    run: sh -c 'exit 4'
YAML
capture ns run a.yaml fail.yaml --root root4 --plain
assert_eq "$rc" 1 "one run failed: $out"
assert_eq "$(task_status root4 "$(run_of 4 a)" work)" "succeeded"
capture ns run a.yaml b.yaml --resume "$(run_of 4 a)" --root root4
assert_eq "$rc" 2 "--resume with several files: $out"
echo ok

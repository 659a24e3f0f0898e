# On Slurm: a node set DOWN while it runs spot tasks (they are recorded as
# preempted and finish on another node); the engine SIGKILLed while jobs run,
# then resumed (it re-attaches: no job is submitted twice, none is lost).
source "$(dirname "$0")/lib_slurm.sh"
trap 'slurm_resume_nodes; rm -rf "$WORK"' EXIT
cat > p.yaml <<'YAML'
name: nodes
steps:
  work:
    spot: true
    checkpoint: true
    foreach: [a, b, c, d]
    shell: bash
    script: |
      # Counts its starts in the checkpoint folder, so a restart from zero shows.
      echo x >> "$NIGHTSHIFT_CHECKPOINT_DIR/starts"
      sleep 5
      echo "$NIGHTSHIFT_ITEM $(wc -l < "$NIGHTSHIFT_CHECKPOINT_DIR/starts")" > out.txt
YAML

# 1. A spot node goes away mid-task.
slurm run p.yaml --root down > down.log 2>&1 &
engine=$!
wait_for 20 bash -c "[[ -s down/nightshift.db && -n \$(sqlite3 down/nightshift.db 'select run_id from runs') ]]"
run=$(latest_run down)
wait_for 30 bash -c "[[ \$(squeue -h -t R -o '%j %N' | grep -c 'ns/$run/.* n3') -ge 1 ]]"
lost=$(squeue -h -t R -o '%j %N' | awk -v r="ns/$run/" 'index($1, r) == 1 && $2 == "n3" {print $1}' | wc -l)
scontrol update NodeName=n3 State=DOWN Reason=spot-reclaim-test
set +e; wait $engine; rc=$?; set -e
slurm_resume_nodes
assert_eq "$rc" 0 "the run completes after the node loss: $(cat down.log)"
pre=$(sqlite3 down/nightshift.db "select count(*) from attempts where run_id='$run' and status='preempted'")
assert_eq "$pre" "$lost" "every attempt on the lost node is recorded preempted"
msg=$(sqlite3 down/nightshift.db "select message from attempts where run_id='$run' and status='preempted' limit 1")
assert_contains "$msg" "NODE_FAIL"
for i in a b c d; do
  assert_eq "$(cut -d' ' -f1 down/runs/$run/work/$i/out.txt)" "$i"
  assert_eq "$(task_status down "$run" "work/$i")" "succeeded"
done
# A preemption spends no retry budget: still attempt 2 at most, no failure.
assert_eq "$(sqlite3 down/nightshift.db "select count(*) from attempts where run_id='$run' and status='failed'")" "0"

# 2. The engine is SIGKILLed while its jobs run; the resume re-attaches.
"$NIGHTSHIFT" run p.yaml --root kill --executor slurm --plain > kill1.log 2>&1 &
engine=$!
wait_for 20 bash -c "[[ -s kill/nightshift.db && -n \$(sqlite3 kill/nightshift.db 'select run_id from runs') ]]"
run=$(latest_run kill)
wait_for 30 bash -c "[[ \$(squeue -h -t R -o '%j' | grep -c 'ns/$run/') -ge 4 ]]"
kill -9 $engine
wait $engine 2>/dev/null || true
before=$(squeue -h --states=all -o '%j' | grep -c "ns/$run/")
capture slurm run p.yaml --root kill --resume "$run"
assert_eq "$rc" 0 "resume: $out"
after=$(squeue -h --states=all -o '%j' | grep -c "ns/$run/")
assert_eq "$after" "$before" "jobs in Slurm before and after the resume (none submitted twice)"
assert_eq "$after" "4"
assert_eq "$(sqlite3 kill/nightshift.db "select count(*) from attempts where run_id='$run'")" "4" "one attempt per task"
assert_eq "$(sqlite3 kill/nightshift.db "select count(*) from attempts where run_id='$run' and status='succeeded'")" "4"
for i in a b c d; do
  assert_eq "$(cat kill/runs/$run/work/$i/out.txt)" "$i 1" "task $i ran once, from its first start"
done
adopted=$(sqlite3 kill/nightshift.db "select count(*) from events where run_id='$run' and kind='attempt_adopted'")
assert_eq "$adopted" "4" "every running job was adopted"
echo "ok"

# The Slurm executor: a fan-out gives the same outputs as in local mode; exit
# codes, timeouts, memory limits and an outside scancel map to attempt outcomes.
source "$(dirname "$0")/lib_slurm.sh"
cat > p.yaml <<'YAML'
name: fanout
params:
  n: {type: int, default: 8}
steps:
  make:
    run: sh -c 'i=0; while [ $i -lt $0 ]; do echo $i > part$i.txt; i=$((i+1)); done' ${params.n}
  square:
    needs: [make]
    foreach: ${steps.make.output}/*.txt
    spot: true
    shell: bash
    script: |
      v=$(cat "$NIGHTSHIFT_ITEM")
      echo $((v * v)) > sq.txt
      echo "squared $v on $NIGHTSHIFT_NODE as $NIGHTSHIFT_CAPACITY_CLASS"
  sum:
    needs: [square]
    env: {SQ: "${steps.square.output}"}
    shell: bash
    script: cat "$SQ"/*/sq.txt | awk '{s+=$1} END {print s}' > total.txt
YAML
capture slurm run p.yaml --root slurm
assert_eq "$rc" 0 "slurm run: $out"
capture ns run p.yaml --root local --plain
assert_eq "$rc" 0 "local run: $out"
s=slurm/runs/$(latest_run slurm)
l=local/runs/$(latest_run local)
assert_eq "$(cat $s/sum/total.txt)" "140" "sum of squares 0..7"
for d in make square sum; do
  diff <(cd $s/$d && find . -type f ! -name _task.json -exec md5sum {} + | sort -k2) \
       <(cd $l/$d && find . -type f ! -name _task.json -exec md5sum {} + | sort -k2) ||
    fail "step $d: Slurm and local outputs differ"
done
# Spot tasks ran in the spot partition, on-demand ones in ondemand.
assert_contains "$(cat $s/_logs/square.part3.1.out)" "as spot"
assert_contains "$(cat $s/_logs/square.part3.1.out)" "on n"
part=$(squeue -h --states=all -o '%j %P' | awk -v n="ns/$(latest_run slurm)/square/part3/1" '$1 == n {print $2}')
assert_eq "$part" "spot" "partition of a spot attempt"
part=$(squeue -h --states=all -o '%j %P' | awk -v n="ns/$(latest_run slurm)/make/1" '$1 == n {print $2}')
assert_eq "$part" "ondemand" "partition of an on-demand attempt"

cat > f.yaml <<'YAML'
name: failures
steps:
  exit3:
    run: sh -c 'echo failing >&2; exit 3'
  timeout:
    timeout: 2s
    grace: 1s
    run: sleep 60
  mem:
    resources: {memory: 50MiB}
    run: python3 -c 'b = bytearray(400*1024*1024); import time; time.sleep(5)'
  outside:
    retry: {max_attempts: 2, on: [signal], backoff: 0s}
    run: sh -c 'if [ "$NIGHTSHIFT_ATTEMPT" = 1 ]; then sleep 60; fi; echo second > ok.txt'
YAML
slurm run f.yaml --root f > f.log 2>&1 &
engine=$!
run=""
wait_for 20 test -s f/nightshift.db
wait_for 20 bash -c "[[ -n \$(sqlite3 f/nightshift.db \"select run_id from runs\") ]]"
run=$(latest_run f)
wait_for 30 bash -c "squeue -h -o '%j %T' | grep -q 'ns/$run/outside/1 RUNNING'"
scancel "$(job_of "$run" outside 1)"
set +e; wait $engine; rc=$?; set -e
assert_eq "$rc" 1 "the failures run fails: $(cat f.log)"
attempt() { sqlite3 f/nightshift.db "select status || ': ' || message from attempts where run_id='$run' and task_id='$1' and attempt=${2:-1}"; }
assert_contains "$(attempt exit3)" "failed: exit code 3"
assert_contains "$(attempt timeout)" "timed_out: timed out after 2.0s"
assert_contains "$(attempt mem)" "failed: out of memory: it used more than its 50.0 MiB"
assert_contains "$(attempt outside)" "signal: cancelled in Slurm from outside nightshift"
assert_eq "$(task_status f "$run" outside)" "succeeded" "an outside scancel is retried as the policy says"
assert_eq "$(cat f/runs/$run/outside/ok.txt)" "second"
echo "ok"

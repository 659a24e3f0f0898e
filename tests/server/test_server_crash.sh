#!/usr/bin/env bash
# SIGKILL the server while 20 jobs run; restart: every job finishes, none is
# lost, no committed output is computed twice (the runs resume). Then SIGTERM
# drains: a checkpointing step saves its state, the server exits 0, its job
# waits in the queue, and the next server resumes it from the checkpoint.
source "$(dirname "$0")/lib_server.sh"
log="$WORK/executions.log"
cat > two.yaml <<YAML
name: two
params:
  n: {type: string}
steps:
  first:
    resources: {cpus: 0.1}
    run: sh -c 'echo "first \$0" >> $log; echo \$0 > first.txt' \${params.n}
  second:
    needs: [first]
    resources: {cpus: 0.1}
    run: sh -c 'sleep 2; echo "second \$0" >> $log; echo done > second.txt' \${params.n}
YAML
start_server "$WORK/root" --max-runs 20 --cpus 4
for i in $(seq 1 20); do
  out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/two.yaml\", \"params\": {\"n\": \"$i\"}, \"key\": \"k$i\"}")
  assert_eq "$(jq -r .created <<<"$out")" true "submit $i:"
done
db="$WORK/root/nightshift.db"
# Every first step committed, the second steps running: then SIGKILL.
wait_for 60 lines_ge "$log" '^first' 20
wait_for 60 sql_ge "$db" "select count(*) from attempts where task_id='second' and status='running'" 5
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
assert_eq "$(sqlite3 "$db" "select count(*) from jobs where state in ('leased','succeeded')")" 20 "jobs at the kill:"
start_server "$WORK/root" --max-runs 20 --cpus 4
wait_for 90 sql_ge "$db" "select count(*) from jobs where state='succeeded'" 20
assert_eq "$(sqlite3 "$db" "select count(*) from jobs")" 20 "no job lost or added:"
assert_eq "$(sqlite3 "$db" "select count(*) from runs")" 20 "no run added:"
assert_eq "$(grep -c '^first' "$log")" 20 "committed first steps never computed again:"
for i in $(seq 1 20); do
  [[ $(grep -c "^second $i\$" "$log") -ge 1 ]] || fail "second step of job $i never finished"
done
resumed=$(sqlite3 "$db" "select count(distinct run_id) from events where kind='run_resumed'")
[[ "$resumed" -ge 1 ]] || fail "no run was resumed"
echo "crash: 20 jobs, 20 runs, $resumed resumed, 20 first steps computed once"

# --- SIGTERM drains; the next server resumes from the checkpoint
cat > ckpt.yaml <<'YAML'
name: ckpt
steps:
  count:
    checkpoint: true
    grace: 10s
    shell: bash
    script: |
      n=$(cat "$NIGHTSHIFT_CHECKPOINT_DIR/n" 2>/dev/null || echo 0)
      trap 'echo $n > "$NIGHTSHIFT_CHECKPOINT_DIR/n"; exit 75' TERM
      while (( n < 40 )); do n=$((n + 1)); sleep 0.1; done
      echo "$n" > count.txt
      echo "started from $(cat "$NIGHTSHIFT_CHECKPOINT_DIR/n" 2>/dev/null || echo 0)" > from.txt
YAML
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/ckpt.yaml\"}")
ck=$(jq -r .job.id <<<"$out")
wait_job_state "$ck" leased 10
ck_run=$(job_field "$ck" run_id)
sleep 1.5
kill -TERM "$SERVER_PID"
for _ in $(seq 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SERVER_PID" 2>/dev/null && fail "the server did not drain within 15 s"
wait "$SERVER_PID"; rc=$?
assert_eq "$rc" 0 "drained exit code:"
assert_eq "$(sqlite3 "$db" "select state from jobs where job_id='$ck'")" pending "drained job:"
saved=$(cat "$WORK/root/checkpoints/$ck_run/count/n")
[[ "$saved" -gt 0 && "$saved" -lt 40 ]] || fail "no checkpoint saved on drain (n=$saved)"
start_server "$WORK/root"
wait_job_state "$ck" succeeded 30
assert_eq "$(job_field "$ck" run_id)" "$ck_run" "the same run resumed:"
assert_eq "$(cat "$WORK/root/runs/$ck_run/count/from.txt")" "started from $saved" "resumed from the checkpoint:"
echo "PASS"

# Retries (fails twice then succeeds), a timeout (SIGTERM, grace, SIGKILL), logs.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: flaky
steps:
  flaky:
    shell: bash
    script: |
      n=$(cat "$NIGHTSHIFT_CHECKPOINT_DIR/count" 2>/dev/null || echo 0)
      echo $((n + 1)) > "$NIGHTSHIFT_CHECKPOINT_DIR/count"
      echo "attempt $NIGHTSHIFT_ATTEMPT"
      if [ "$n" -lt 2 ]; then echo "not yet" >&2; exit 75; fi
      echo ok > out.txt
    retry: {max_attempts: 3, backoff: 100ms}
    checkpoint: true
YAML
capture ns run p.yaml --root root --plain
assert_eq "$rc" 0 "$out"
assert_contains "$out" "task flaky: retrying (attempt 1"
run=$(latest_run root)
assert_eq "$(cat root/runs/$run/flaky/out.txt)" "ok"
assert_eq "$(sqlite3 root/nightshift.db "select group_concat(status) from attempts where run_id='$run'")" "retryable,retryable,succeeded"
capture ns logs "$run" flaky --root root --attempt 2 --stream err
assert_eq "$out" "not yet"
capture ns logs "$run" flaky --root root --stream out
assert_eq "$out" "attempt 3"

marker="ns-timeout-$$"
cat > t.yaml <<YAML
name: slow
steps:
  slow:
    shell: bash
    script: |
      trap 'echo got-term; sleep 30' TERM
      echo started; (exec -a $marker sleep 60) & wait
    timeout: 1s
    grace: 1s
  after:
    needs: [slow]
    run: echo never
YAML
start=$(date +%s)
capture ns run t.yaml --root root2 --plain
elapsed=$(( $(date +%s) - start ))
assert_eq "$rc" 1 "timed-out run fails: $out"
(( elapsed < 10 )) || fail "timeout took ${elapsed}s"
run=$(latest_run root2)
assert_eq "$(sqlite3 root2/nightshift.db "select status from attempts where run_id='$run' and task_id='slow'")" "timed_out"
assert_eq "$(task_status root2 $run after)" "" "a step after a failure never starts"
assert_contains "$(cat root2/runs/$run/_logs/slow.1.out)" "got-term"
assert_no_file root2/runs/$run/slow/never
pgrep -f "$marker" >/dev/null && fail "the timed-out step's children are still alive"
echo PASS

# `nightshift cancel RUN` mid-run ends every child and marks the run cancelled.
source "$(dirname "$0")/lib.sh"
marker="ns-cancel-$$"
cat > p.yaml <<YAML
name: long
steps:
  long:
    foreach: [a, b, c, d]
    run: sleep 300 $marker
    grace: 2s
YAML
# sleep rejects the extra arg? GNU sleep sums its arguments: use a tiny wrapper instead.
cat > p.yaml <<YAML
name: long
steps:
  long:
    foreach: [a, b, c, d]
    shell: bash
    script: exec -a $marker-\$NIGHTSHIFT_ITEM sleep 300
    grace: 2s
YAML
"$NIGHTSHIFT" run p.yaml --root root --plain > log.txt 2>&1 &
pid=$!
wait_for 20 pgrep -f "$marker" >/dev/null
run=$(latest_run root)
capture ns cancel "$run" --root root
assert_eq "$rc" 0 "$out"
set +e; wait $pid; rc=$?; set -e
assert_eq "$rc" 130 "cancelled run exit code: $(cat log.txt)"
assert_eq "$(sqlite3 root/nightshift.db "select status from runs where run_id='$run'")" "cancelled"
sleep 0.2
pgrep -f "$marker" >/dev/null && fail "children survived the cancel"
assert_eq "$(sqlite3 root/nightshift.db "select count(*) from tasks where run_id='$run' and status='cancelled'")" "4"
capture ns cancel "$run" --root root
assert_eq "$rc" 2 "cancelling a finished run"
assert_contains "$out" "is not running"

# Ctrl-C (SIGINT to the engine) does the same.
"$NIGHTSHIFT" run p.yaml --root root2 --plain > log2.txt 2>&1 &
pid=$!
wait_for 20 pgrep -f "$marker" >/dev/null
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
assert_eq "$rc" 130
sleep 0.2
pgrep -f "$marker" >/dev/null && fail "children survived Ctrl-C"
echo PASS

# Spot capacity: preemption notices from a reproducible market and by hand;
# a preempted attempt resumes from its checkpoint, never spends the retry budget,
# and moves to on-demand after max_interruptions (issue: spot and preemption).
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: spot
defaults:
  spot: true
  notice: 5s
steps:
  count:
    foreach: [a, b, c, d]
    checkpoint: true
    max_interruptions: 2
    retry: {max_attempts: 1}
    shell: bash
    script: |
      # Counts to 20, one step per 50 ms, resuming from the checkpoint; on the
      # notice (SIGTERM) it saves where it is and exits 75.
      ck="$NIGHTSHIFT_CHECKPOINT_DIR/at"
      i=$(cat "$ck" 2>/dev/null || echo 0)
      [ "$i" -gt 0 ] && echo "resumed at $i on $NIGHTSHIFT_CAPACITY_CLASS" >&2
      trap 'echo $i > "$ck"; exit 75' TERM
      while [ $i -lt 20 ]; do
        i=$((i + 1)); sleep 0.05 & wait $!
      done
      seq 1 20 | sed "s/^/$NIGHTSHIFT_ITEM /" > numbers.txt
YAML
# A calm run: the reference output, and history for the market's estimate.
capture ns run p.yaml --root root --cpus 2 --plain
assert_eq "$rc" 0 "calm: $out"
calm=$(latest_run root)
reference=$(cat root/runs/$calm/count/*/numbers.txt | md5sum)

preempted=0; resumed=0
for seed in 1 2 3 4 5 6 7 8; do
  capture ns run p.yaml --root root --cpus 2 --plain --preempt "0.5,seed=$seed"
  assert_eq "$rc" 0 "seed $seed: $out"
  run=$(latest_run root)
  assert_eq "$(cat root/runs/$run/count/*/numbers.txt | md5sum)" "$reference" "seed $seed: outputs differ from the calm run"
  n=$(sqlite3 root/nightshift.db "select count(*) from attempts where run_id='$run' and status='preempted'")
  preempted=$((preempted + n))
  resumed=$((resumed + $(cat root/runs/$run/_logs/count.*.err 2>/dev/null | grep -c "^resumed at" || true)))
  # A preemption never counts as a failure: retry.max_attempts is 1.
  assert_eq "$(sqlite3 root/nightshift.db "select count(*) from attempts where run_id='$run' and status='failed'")" "0"
  # After two interruptions a task runs on on-demand capacity.
  bad=$(sqlite3 root/nightshift.db "select task_id from attempts a where run_id='$run' and capacity_class='spot' and
        (select count(*) from attempts b where b.run_id=a.run_id and b.task_id=a.task_id and b.status='preempted' and b.attempt<a.attempt) >= 2")
  assert_eq "$bad" "" "seed $seed: spot after max_interruptions"
done
(( preempted > 0 )) || fail "no attempt was preempted at rate 0.5 over 8 runs"
(( resumed > 0 )) || fail "no preempted attempt resumed from its checkpoint"
echo "preempted $preempted attempts, $resumed resumed from a checkpoint"

# The same seed preempts the same way.
capture ns run p.yaml --root again --cpus 2 --plain
capture ns run p.yaml --root again --cpus 2 --plain --preempt "1,seed=3"
assert_eq "$rc" 0 "$out"
assert_contains "$(sqlite3 again/nightshift.db "select group_concat(distinct status) from attempts")" "preempted"

# A deadline the estimate cannot meet moves spot work to on-demand, and says why.
cat > d.yaml <<'YAML'
name: deadline
steps:
  a:
    foreach: [x, y, z]
    run: sleep 0.2
    spot: true
YAML
capture ns run d.yaml --root dl --deadline 1s --plain
assert_eq "$rc" 0 "$out"
assert_eq "$(sqlite3 dl/nightshift.db "select group_concat(distinct capacity_class) from attempts")" "on-demand"
capture ns show "$(latest_run dl)" --root dl
assert_contains "$out" "escalated at"
assert_contains "$out" "passes the deadline"
capture ns run d.yaml --root dl2 --deadline 10h --plain
assert_eq "$(sqlite3 dl2/nightshift.db "select group_concat(distinct capacity_class) from attempts")" "spot"
capture ns run d.yaml --root dl --deadline 25:00
assert_eq "$rc" 2 "$out"
assert_contains "$out" "--deadline 25:00"

# Bad input.
capture ns run p.yaml --root root --preempt 1.5
assert_eq "$rc" 2 "$out"
assert_contains "$out" "--preempt 1.5: expected RATE[,seed=N]"
capture ns run p.yaml --root root --preempt "0.1,seed=x"
assert_eq "$rc" 2 "$out"
capture ns run p.yaml --root root --spot-cpus 1
assert_eq "$rc" 2 "$out"

# By hand: nightshift preempt RUN TASK.
cat > h.yaml <<'YAML'
name: byhand
steps:
  long:
    spot: true
    notice: 2s
    checkpoint: true
    shell: bash
    script: |
      echo "attempt $NIGHTSHIFT_ATTEMPT on $NIGHTSHIFT_CAPACITY_CLASS"
      [ "$NIGHTSHIFT_ATTEMPT" -gt 1 ] && exit 0
      trap 'exit 75' TERM
      sleep 30 & wait $!
YAML
"$NIGHTSHIFT" run h.yaml --root hand --plain > hand.log 2>&1 & engine=$!
wait_for 20 bash -c "[ -n \"\$(sqlite3 hand/nightshift.db \"select 1 from attempts where status='running'\" 2>/dev/null)\" ]"
run=$(latest_run hand)
sleep 0.3
capture ns preempt "$run" long --root hand
assert_eq "$rc" 0 "$out"
set +e; wait $engine; erc=$?; set -e
assert_eq "$erc" 0 "$(cat hand.log)"
assert_eq "$(sqlite3 hand/nightshift.db "select group_concat(status) from attempts where run_id='$run' order by attempt")" "preempted,succeeded"
capture ns preempt "$run" long --root hand
assert_eq "$rc" 2 "preempting a finished run: $out"
echo PASS

# `nightshift run --catalogue`: steps that fit no instance are refused before
# anything is created; at the end the run's cost is in run.json (the same figures
# as `nightshift cost RUN --json`), on the last line of `run` and in `show`.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: costed
steps:
  prep:
    run: sleep 0.2
    resources: {cpus: 1, memory: 1GiB}
  crunch:
    needs: [prep]
    foreach: [a, b]
    spot: true
    notice: 5s
    checkpoint: true
    max_interruptions: 1
    resources: {cpus: 2, memory: 6GiB}
    shell: bash
    script: |
      ck="$NIGHTSHIFT_CHECKPOINT_DIR/at"
      i=$(cat "$ck" 2>/dev/null || echo 0)
      trap 'echo $i > "$ck"; exit 75' TERM
      while [ $i -lt 10 ]; do i=$((i + 1)); sleep 0.05 & wait $!; done
      echo done > out.txt
YAML
cat > cat.yaml <<'YAML'
prices_date: 2025-01-01
source: round figures for the test
instances:
  - {name: small, cpus: 1, memory: 2GiB, on_demand_per_hour: 0.10, spot_per_hour: 0.04}
  - {name: large, cpus: 2, memory: 8GiB, on_demand_per_hour: 0.40, spot_per_hour: 0.12}
YAML
db=root/nightshift.db
# Float comparison to a millionth of the expected value.
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= 1e-6 * m + 1e-15) }' || fail "${3:-}: $1 is not $2"; }
money() { awk -v v="$1" 'BEGIN { printf (v >= 1 || v == 0) ? "%.2f" : "%.4f", v }'; }

capture ns run p.yaml --root root --cpus 2 --plain --catalogue cat.yaml
assert_eq "$rc" 0 "run: $out"
run=$(latest_run root)
rj=root/runs/$run/run.json
jq -e . "$rj" > /dev/null || fail "run.json is not JSON"
assert_eq "$(jq -r .status "$rj")" "succeeded" "the rest of run.json is kept"
assert_eq "$(jq -r '[.steps[].step] | join(",")' "$rj")" "prep,crunch" "the rest of run.json is kept"
assert_eq "$(jq -r '.cost.catalogue | [.file, .prices_date, .source] | join("|")' "$rj")" \
  "$PWD/cat.yaml|2025-01-01|round figures for the test"
assert_eq "$(jq -r '.cost.currency + " " + ([.cost.steps[].step] | join(","))' "$rj")" "USD prep,crunch"

# The figures, by arithmetic from the attempts in the store: prep on small at
# 0.10/h; crunch on large at 0.12/h (spot) or 0.40/h (on-demand); all
# on-demand: every attempt at its on-demand price; monolithic: large at 0.40/h
# for the run's wall time.
q() { sqlite3 "$db" "$1"; }
ms="(finished_at - started_at)"
prep=$(q "select sum($ms) * 0.10 / 3600000.0 from attempts where run_id='$run' and task_id='prep'")
crunch=$(q "select sum($ms * case capacity_class when 'spot' then 0.12 else 0.40 end) / 3600000.0
            from attempts where run_id='$run' and task_id like 'crunch/%'")
crunch_od=$(q "select sum($ms) * 0.40 / 3600000.0 from attempts where run_id='$run' and task_id like 'crunch/%'")
wall=$(q "select finished_at - created_at from runs where run_id='$run'")
assert_eq "$(q "select count(*) from attempts where run_id='$run' and task_id like 'crunch/%' and capacity_class='spot'")" "2" "spot attempts"
near "$(jq .cost.steps[0].cost "$rj")" "$prep" "prep cost"
near "$(jq .cost.steps[1].cost "$rj")" "$crunch" "crunch cost"
near "$(jq .cost.steps[1].on_demand_cost "$rj")" "$crunch_od" "crunch on-demand cost"
actual=$(awk -v a="$prep" -v b="$crunch" 'BEGIN { printf "%.12g", a + b }')
all_od=$(awk -v a="$prep" -v b="$crunch_od" 'BEGIN { printf "%.12g", a + b }')
mono=$(awk -v w="$wall" 'BEGIN { printf "%.12g", w * 0.40 / 3600000 }')
near "$(jq .cost.actual "$rj")" "$actual" "actual"
near "$(jq .cost.all_on_demand "$rj")" "$all_od" "all on-demand"
near "$(jq .cost.monolithic "$rj")" "$mono" "monolithic"
assert_eq "$(jq -r '.cost.monolithic_instance + " " + (.cost.run_wall_ms | tostring) + " " + (.cost.lost_ms | tostring)' "$rj")" "large $wall 0"
savings=$(awk -v a="$actual" -v m="$mono" 'BEGIN { printf "%.12g", 100 * (m - a) / m }')
near "$(jq .cost.savings_percent "$rj")" "$savings" "savings"

# The last line of `run` says the same, rounded.
line="cost $(money "$(jq .cost.actual "$rj")") USD (all on-demand $(money "$(jq .cost.all_on_demand "$rj")"), monolithic $(money "$(jq .cost.monolithic "$rj")"): $(printf %.0f "$(jq .cost.savings_percent "$rj")")% saved)"
assert_eq "$(tail -n 1 <<<"$out")" "$line" "last line of run"

# `nightshift cost` bills by the same code: without --catalogue it uses the one
# the run recorded, and its JSON is run.json's cost.
capture ns cost "$run" --root root --json
assert_eq "$rc" 0 "$out"
assert_eq "$(jq -S 'del(.run_id, .status)' <<<"$out")" "$(jq -S .cost "$rj")" "cost --json vs run.json"

# show prints the line and show --json has the object.
capture ns show "$run" --root root
assert_eq "$rc" 0 "$out"
assert_contains "$out" "cost      ${line#cost }"
assert_eq "$(ns show "$run" --root root --json | jq -S .cost)" "$(jq -S .cost "$rj")" "show --json"

# Work lost: every spot attempt gets a notice (the seed of test_spot.sh that
# preempts); a preempted attempt's time is billed and counted as lost.
capture ns run p.yaml --root root --cpus 2 --plain --catalogue cat.yaml --preempt 1,seed=3
assert_eq "$rc" 0 "preempted run: $out"
run2=$(latest_run root)
rj2=root/runs/$run2/run.json
lost=$(q "select coalesce(sum($ms), 0) from attempts where run_id='$run2' and status='preempted'")
(( lost > 0 )) || fail "no attempt was preempted at rate 1: $(q "select task_id, status from attempts where run_id='$run2'")"
assert_eq "$(jq .cost.lost_ms "$rj2")" "$lost" "lost_ms"
near "$(jq .cost.lost_cost "$rj2")" "$(q "select sum($ms * case capacity_class when 'spot' then 0.12 else 0.40 end) / 3600000.0
  from attempts where run_id='$run2' and status='preempted'")" "lost cost"
assert_contains "$(tail -n 1 <<<"$out")" "of work lost to preemptions)"
assert_contains "$(ns show "$run2" --root root)" "of work lost to preemptions)"

# A resumed run keeps its catalogue; without one a run has no cost and no line.
capture ns run p.yaml --root root --cpus 2 --plain --resume "$run"
assert_eq "$rc" 0 "resume: $out"
assert_eq "$(jq -r .cost.catalogue.file "$rj")" "$PWD/cat.yaml" "resumed run's catalogue"
assert_contains "$(tail -n 1 <<<"$out")" "cost "
capture ns run p.yaml --root plain --cpus 2 --plain
assert_eq "$rc" 0 "$out"
assert_eq "$(jq 'has("cost")' "plain/runs/$(latest_run plain)/run.json")" "false" "no catalogue, no cost"
[[ "$out" != *"cost "* ]] || fail "a cost line without a catalogue: $out"
[[ "$(ns show "$(latest_run plain)" --root plain)" != *"cost  "* ]] || fail "show: a cost without a catalogue"
# $NIGHTSHIFT_CATALOGUE, then <root>/instances.yaml.
capture env NIGHTSHIFT_CATALOGUE="$PWD/cat.yaml" "$NIGHTSHIFT" run p.yaml --root env --cpus 2 --plain
assert_eq "$rc" 0 "$out"
assert_eq "$(jq -r .cost.catalogue.file "env/runs/$(latest_run env)/run.json")" "$PWD/cat.yaml"
mkdir inroot && cp cat.yaml inroot/instances.yaml
capture ns run p.yaml --root inroot --cpus 2 --plain
assert_eq "$rc" 0 "$out"
assert_eq "$(jq -r .cost.catalogue.file "inroot/runs/$(latest_run inroot)/run.json")" "$PWD/inroot/instances.yaml"

# Refused before anything exists: a step that fits no instance (named, with
# the largest instance on offer), a malformed catalogue (file:line:col), a
# catalogue with no one machine for the monolithic baseline.
cat > big.yaml <<'YAML'
name: big
steps:
  huge:
    run: "true"
    resources: {cpus: 64, memory: 1GiB}
  fine:
    run: "true"
    resources: {cpus: 1, memory: 1GiB}
YAML
capture ns run big.yaml --root fresh --cpus 64 --plain --catalogue cat.yaml
assert_eq "$rc" 2 "a step that fits no instance: $out"
assert_contains "$out" "cat.yaml: step 'huge' asks for 64 cpus, 1.0 GiB, which no instance in the catalogue has"
assert_contains "$out" "hint: the largest is large (2 cpus, 8.0 GiB)"
[[ "$out" != *"'fine'"* ]] || fail "a step that fits was named: $out"
assert_no_file fresh/runs
cat > gpu.yaml <<'YAML'
name: gpu
steps:
  train:
    run: "true"
    resources: {cpus: 1, gpus: 1}
YAML
capture ns run gpu.yaml --root fresh --plain --catalogue cat.yaml
assert_eq "$rc" 2 "a gpu step: $out"
assert_contains "$out" "step 'train' asks for 1 cpu, 0 B, 1 gpu, which no instance in the catalogue has"
assert_no_file fresh/runs

cat > bad.yaml <<'YAML'
prices_date: 2025-01-01
source: x
instances:
  - {name: small, cpus: 1, memory: 2GiB, on_demand_per_hour: -0.10, spot_per_hour: 0.04}
YAML
capture ns run p.yaml --root fresh --plain --catalogue bad.yaml
assert_eq "$rc" 2 "malformed catalogue: $out"
assert_contains "$out" "bad.yaml:4:62: error: on_demand_per_hour -0.10 is negative"
assert_no_file fresh/runs
capture ns run p.yaml --root fresh --plain --catalogue missing.yaml
assert_eq "$rc" 2 "missing catalogue: $out"
assert_contains "$out" "missing.yaml"
assert_no_file fresh/runs

cat > split.yaml <<'YAML'
prices_date: 2025-01-01
source: x
instances:
  - {name: compute, cpus: 2, memory: 2GiB, on_demand_per_hour: 0.2, spot_per_hour: 0.1}
  - {name: memory, cpus: 1, memory: 8GiB, on_demand_per_hour: 0.2, spot_per_hour: 0.1}
YAML
cat > s.yaml <<'YAML'
name: split
steps:
  wide: {run: "true", resources: {cpus: 2, memory: 1GiB}}
  deep: {run: "true", resources: {cpus: 1, memory: 6GiB}}
YAML
capture ns run s.yaml --root fresh --cpus 2 --plain --catalogue split.yaml
assert_eq "$rc" 2 "no monolithic machine: $out"
assert_contains "$out" "the machine the monolithic baseline needs"
assert_no_file fresh/runs
echo ok

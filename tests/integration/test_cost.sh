# `nightshift cost`: a real run, its attempt times then set to round figures in
# the store so that every printed amount can be checked by hand; catalogue
# errors and a step no instance fits exit 2 and say where.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: costed
steps:
  prep:
    run: "true"
    resources: {cpus: 1, memory: 1GiB}
  crunch:
    needs: [prep]
    foreach: [a, b]
    run: "true"
    resources: {cpus: 2, memory: 6GiB}
YAML
cat > cat.yaml <<'YAML'
prices_date: 2025-01-01
source: round figures for the test
instances:
  - {name: small, cpus: 1, memory: 2GiB, on_demand_per_hour: 0.10, spot_per_hour: 0.04}
  - {name: large, cpus: 2, memory: 8GiB, on_demand_per_hour: 0.40, spot_per_hour: 0.12}
YAML
ns run p.yaml --root root --plain > log.txt 2>&1 || fail "run: $(cat log.txt)"
run=$(latest_run root)
db=root/nightshift.db

# Before any rewriting: the command runs on a real run and bills both steps.
capture ns cost "$run" --root root --catalogue cat.yaml
assert_eq "$rc" 0 "cost of the real run: $out"
assert_contains "$out" "prep"
assert_contains "$out" "large"
assert_contains "$out" "monolithic"

# Round times (minutes after t0): prep 0-30, crunch/a 30-90, crunch/b 30-90, a
# preempted extra attempt of crunch/a 90-105; the run lasts 3 hours.
t0=$(sqlite3 "$db" "select created_at from runs where run_id='$run'")
m=60000
sqlite3 "$db" <<SQL
UPDATE runs SET finished_at=$t0 + 180*$m WHERE run_id='$run';
UPDATE attempts SET started_at=$t0, finished_at=$t0 + 30*$m WHERE run_id='$run' AND task_id='prep';
UPDATE attempts SET started_at=$t0 + 30*$m, finished_at=$t0 + 90*$m
  WHERE run_id='$run' AND task_id IN ('crunch/a', 'crunch/b');
INSERT INTO attempts(run_id,task_id,attempt,status,exit_code,signal,pid,started_at,finished_at,
                     max_rss_kb,cpu_ms,message)
  VALUES('$run','crunch/a',2,'preempted',-1,15,0,$t0 + 90*$m,$t0 + 105*$m,0,0,'');
SQL

# All on-demand, by hand:
#   prep      small 0.10/h x 0.5 h                       = 0.05
#   crunch    large 0.40/h x (1 + 1 + 0.25) h            = 0.90  (8100 s)
#   actual = all on-demand                               = 0.95
#   monolithic: large (2 cpus, 8 GiB >= 6 GiB) x 3 h     = 1.20
#   savings (1.20 - 0.95) / 1.20                         = 20.8 %
#   work lost: 15 min at 0.40/h                          = 0.10  (900 s)
capture ns cost "$run" --root root --catalogue cat.yaml
assert_eq "$rc" 0 "$out"
assert_contains "$out" "2025-01-01, USD per hour; round figures for the test"
grep -Eq '^prep +1 +1800\.0 +on-demand +small +0\.0500$' <<<"$out" || fail "prep line: $out"
grep -Eq '^crunch +3 +8100\.0 +on-demand +large +0\.9000$' <<<"$out" || fail "crunch line: $out"
grep -Eq '^actual +0\.9500 USD$' <<<"$out" || fail "actual: $out"
grep -Eq '^all on-demand +0\.9500 USD$' <<<"$out" || fail "all on-demand: $out"
grep -Eq '^monolithic +1\.20 USD +\(large on-demand .*3h00m' <<<"$out" || fail "monolithic: $out"
grep -Eq '^savings +20\.8%' <<<"$out" || fail "savings: $out"
grep -Eq '^work lost +0\.1000 USD +\(900\.0 s in preempted attempts\)' <<<"$out" || fail "lost: $out"

capture ns cost "$run" --root root --catalogue cat.yaml --json
assert_eq "$rc" 0 "$out"
assert_eq "$(jq -r '(.actual * 100 | round | tostring) + " " + (.monolithic * 100 | round | tostring) + " " + (.lost_ms | tostring)' <<<"$out")" "95 120 900000"
assert_eq "$(jq -r '[.steps[].step] | join(",")' <<<"$out")" "prep,crunch"

# Spot attempts (the store records each attempt's class, schema 3): crunch/a
# and its preempted attempt ran on spot (large at 0.12/h):
#   prep 0.05 + crunch/a 0.12 + crunch/a preempted 0.12 x 0.25 = 0.03 + crunch/b 0.40
#   actual 0.60; all on-demand still 0.95; savings (1.20 - 0.60) / 1.20 = 50.0 %; lost 0.03
sqlite3 "$db" "UPDATE attempts SET capacity_class='spot' WHERE run_id='$run' AND task_id='crunch/a'"
capture ns cost "$run" --root root --catalogue cat.yaml
assert_eq "$rc" 0 "$out"
grep -Eq '^crunch +3 +8100\.0 +2 spot, 1 on-demand +large +0\.5500$' <<<"$out" || fail "spot crunch: $out"
grep -Eq '^actual +0\.6000 USD$' <<<"$out" || fail "spot actual: $out"
grep -Eq '^all on-demand +0\.9500 USD$' <<<"$out" || fail "spot all on-demand: $out"
grep -Eq '^savings +50\.0%' <<<"$out" || fail "spot savings: $out"
grep -Eq '^work lost +0\.0300 USD' <<<"$out" || fail "spot lost: $out"

# Where the catalogue comes from: NIGHTSHIFT_CATALOGUE, then <root>/instances.yaml.
capture ns cost "$run" --root root
assert_eq "$rc" 2 "no catalogue: $out"
assert_contains "$out" "pass --catalogue FILE, set NIGHTSHIFT_CATALOGUE, or put one at"
capture env NIGHTSHIFT_CATALOGUE="$PWD/cat.yaml" "$NIGHTSHIFT" cost "$run" --root root
assert_eq "$rc" 0 "NIGHTSHIFT_CATALOGUE: $out"
cp cat.yaml root/instances.yaml
capture ns cost "$run" --root root
assert_eq "$rc" 0 "<root>/instances.yaml: $out"
assert_contains "$out" "root/instances.yaml"

# Bad catalogues: every problem with file:line:col, exit 2.
cat > bad.yaml <<'YAML'
prices_date: 2025-01-01
source: x
instances:
  - {name: small, cpus: 1, memory: 2GiB, on_demand_per_hour: -0.10, spot_per_hour: 0.04}
  - {name: large, cpus: 2, memory: 8GiB, on_demand_per_hour: 0.40, spot_per_hour: cheap}
YAML
capture ns cost "$run" --root root --catalogue bad.yaml
assert_eq "$rc" 2 "bad catalogue: $out"
assert_contains "$out" "bad.yaml:4:62: error: on_demand_per_hour -0.10 is negative"
assert_contains "$out" "bad.yaml:5:83: error: spot_per_hour 'cheap' is not a number"

# A step that no instance fits is named.
cat > tiny.yaml <<'YAML'
prices_date: 2025-01-01
source: x
instances:
  - {name: small, cpus: 1, memory: 2GiB, on_demand_per_hour: 0.10, spot_per_hour: 0.04}
YAML
capture ns cost "$run" --root root --catalogue tiny.yaml
assert_eq "$rc" 2 "a step that fits nothing: $out"
assert_contains "$out" "step 'crunch' asks for 2 cpus, 6.0 GiB, which no instance in the catalogue has"

capture ns cost no-such-run --root root --catalogue cat.yaml
assert_eq "$rc" 2 "unknown run: $out"
assert_contains "$out" "no run 'no-such-run'"
echo ok

# A 4-step pipeline with a 50-item foreach, then the inspection commands.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: fanout
params:
  n: {type: int, default: 50}
steps:
  make:
    run: sh -c 'i=0; while [ $i -lt $0 ]; do echo $i > part$i.txt; i=$((i+1)); done' ${params.n}
  square:
    needs: [make]
    foreach: ${steps.make.output}/*.txt
    shell: bash
    script: |
      v=$(cat "$NIGHTSHIFT_ITEM")
      echo $((v * v)) > sq.txt
      echo "squared $v"
      echo "progress 1 done $v" >> "$NIGHTSHIFT_PROGRESS_FILE"
  sum:
    needs: [square]
    env: {SQ: "${steps.square.output}"}
    shell: bash
    script: cat "$SQ"/*/sq.txt | awk '{s+=$1} END {print s}' > total.txt
  report:
    needs: [sum]
    run: cp ${steps.sum.output}/total.txt report.txt
YAML
capture ns run p.yaml --root root
assert_eq "$rc" 0 "run: $out"
run=$(latest_run root)
d=root/runs/$run
assert_eq "$(cat $d/report/report.txt)" "40425" "sum of squares 0..49"
assert_eq "$(ls -d $d/square/part* | wc -l)" 50
assert_file $d/square/_task.json
assert_file $d/run.json
assert_file $d/pipeline.yaml
assert_file $d/_logs/square.part7.1.out
assert_no_file $d/_logs/square.part7.1.err  # nothing on stderr: no file (logs are created on the first byte)
python3 - "$d/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "succeeded", r["status"]
steps = {s["step"]: s for s in r["steps"]}
assert steps["square"]["tasks_total"] == 50
t = steps["report"]["tasks"][0]
assert t["argv"][0] == "cp" and t["attempts"][0]["outcome"] == "succeeded", t
assert len(t["fingerprint"]) == 32
PY
capture ns runs --root root
assert_contains "$out" "$run"
assert_contains "$out" "53/53" "runs column counts done/total"
capture ns show "$run" --root root
assert_contains "$out" "square"
assert_contains "$out" "50 succeeded"
capture ns logs "$run" square --root root
assert_eq "$rc" 2
assert_contains "$out" "pick one with --item"
capture ns show nope --root root
assert_eq "$rc" 2
assert_contains "$out" "no run 'nope'"
# Checkpoints and staging are cleaned after a successful run.
assert_no_file root/checkpoints/$run
assert_no_file $d/_staging
echo PASS

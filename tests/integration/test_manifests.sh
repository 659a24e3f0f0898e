# Manifests (docs/manifests.md): both forms in foreach with ${item.path} and
# ${item.FIELD}, every problem reported with its line, submit --manifest (one job
# per entry, once), and a 10,000-entry fan-out.
source "$(dirname "$0")/lib.sh"
mkdir -p data/a data/b
for i in 1 2 3; do echo "clip $i" > data/a/c$i.mp4; done
echo "clip b" > data/b/c1.mp4
printf '{"source-ref": "data/a/c1.mp4", "team": "home", "n": 3}\n\n{"source-ref": "%s/data/b/c1.mp4", "team": "away", "n": 5}\n' "$PWD" > clips.jsonl
printf '[{"prefix": "data/a/"},\n "c2.mp4",\n "c3.mp4"]\n' > clips.json
cat > p.yaml <<'YAML'
name: manifest
params:
  list: {type: path, required: true}
steps:
  each:
    foreach: {manifest: "${params.list}"}
    shell: bash
    env: {WHAT: "${item.path}"}
    script: |
      cat "$WHAT" > copy.txt
      echo "$NIGHTSHIFT_ITEM_FIELDS" > fields.json
  tag:
    foreach: {manifest: "${params.list}"}
    run: [sh, -c, 'echo "$1 $2" > tag.txt', sh, "${item.team}", "${item.n}"]
YAML
capture ns run p.yaml --root root -p list=clips.jsonl
assert_eq "$rc" 0 "jsonl: $out"
d=root/runs/$(latest_run root)
assert_eq "$(ls $d/each | grep -v _task.json | tr '\n' ' ')" "data_a_c1 data_b_c1 "   # names from the keys, no collision
assert_eq "$(cat $d/each/data_a_c1/copy.txt)" "clip 1"
assert_eq "$(cat $d/each/data_b_c1/copy.txt)" "clip b"
assert_eq "$(jq -r .team $d/each/data_b_c1/fields.json)" "away"
assert_eq "$(cat $d/tag/data_a_c1/tag.txt)" "home 3"
assert_eq "$(jq -r '.manifests.each' $d/run.json)" "$PWD/clips.jsonl"

# the array form; ${item.team} does not exist there: the task fails saying so
capture ns run p.yaml --root root -p list=clips.json
assert_eq "$rc" 1 "array: $out"
d=root/runs/$(latest_run root)
assert_eq "$(cat $d/each/data_a_c2/copy.txt)" "clip 2"
assert_contains "$(jq -r '.steps[] | select(.step=="tag") | .tasks[0].message' $d/run.json)" "has no field 'team'"

# ${item.FIELD} outside a manifest foreach is refused when the file is read
cat > bad_ref.yaml <<'YAML'
name: bad
steps:
  s:
    foreach: [a, b]
    run: [echo, "${item.team}"]
YAML
capture ns validate bad_ref.yaml
assert_eq "$rc" 2; assert_contains "$out" "does not iterate a manifest"

# every problem at once, with its line, before anything runs
mkfifo data/fifo
cat > bad.jsonl <<EOF2
{"source-ref": "data/a/c1.mp4"}
not json
[1, 2]
{"source-ref": "data/a/missing.mp4"}
{"source-ref": "data/a/c1.mp4"}
{"team": "no path"}
{"source-ref": "s3://bucket/x.mp4"}
{"source-ref": "data/fifo"}
EOF2
capture ns run p.yaml --root root -p list=bad.jsonl
assert_eq "$rc" 2 "bad manifest: $out"
for want in "bad.jsonl:2: bad JSON" "bad.jsonl:3: an array" "bad.jsonl:4: $PWD/data/a/missing.mp4: No such file" \
            "bad.jsonl:5: duplicate of entry 1" "bad.jsonl:6: no \"source-ref\"" "bad.jsonl:7: 's3://bucket/x.mp4' is a URL" \
            "bad.jsonl:8: $PWD/data/fifo is not a regular file" "7 problems in the manifest"; do
  assert_contains "$out" "$want"
done
runs_before=$(sqlite3 root/nightshift.db "select count(*) from runs")
printf '[{"prefix": "data/a/"}, "c1.mp4",\n  "c2.mp4" "c3.mp4"]' > broken.json
capture ns run p.yaml --root root -p list=broken.json
assert_eq "$rc" 2; assert_contains "$out" "broken.json:2:"; assert_contains "$out" "bad JSON"
assert_eq "$(sqlite3 root/nightshift.db "select count(*) from runs")" "$runs_before" "nothing was created"

# the manifest is pinned: changed while the run waits for the step, the step fails saying so
cat > late.yaml <<'YAML'
name: late
params:
  list: {type: path, required: true}
steps:
  wait:
    run: [sleep, "1"]
  each:
    needs: [wait]
    foreach: {manifest: "${params.list}"}
    run: [cat, "${item}"]
YAML
cp clips.jsonl moving.jsonl
( sleep 0.5; printf '{"source-ref": "data/a/c3.mp4"}\n' >> moving.jsonl ) &
capture ns run late.yaml --root root -p list=moving.jsonl
wait
assert_eq "$rc" 1 "changed manifest: $out"
assert_contains "$(jq -r '.steps[] | select(.step=="each") | .message' root/runs/$(latest_run root)/run.json)" "changed since the run started"
capture ns run late.yaml --root root --resume "$(latest_run root)"
assert_eq "$rc" 0 "resume reads the manifest again: $out"
assert_eq "$(jq '.steps[] | select(.step=="each") | .tasks_total' root/runs/$(latest_run root)/run.json)" 3

# submit --manifest: one job per entry, its fields into params of the same name
cat > one.yaml <<'YAML'
name: one
params:
  video: {type: path, required: true}
  team: {type: string, default: none}
steps:
  s:
    run: [sh, -c, 'echo "$1 $2" > out.txt', sh, "${params.video}", "${params.team}"]
YAML
capture ns submit one.yaml --root q --manifest clips.jsonl
assert_eq "$rc" 0 "submit: $out"
assert_contains "$out" "2 manifest entries: 2 jobs queued, 0 already queued before"
assert_contains "$out" "not params of one were not passed: n"
capture ns submit one.yaml --root q --manifest clips.jsonl
assert_contains "$out" "0 jobs queued, 2 already queued before"
assert_eq "$(sqlite3 q/nightshift.db "select count(*) from jobs")" 2
assert_eq "$(sqlite3 q/nightshift.db "select params from jobs order by key limit 1" | jq -r .team)" "home"
capture ns submit one.yaml --root q --manifest bad.jsonl
assert_eq "$rc" 2; assert_contains "$out" "bad.jsonl:4:"
assert_eq "$(sqlite3 q/nightshift.db "select count(*) from jobs")" 2 "a bad manifest queues nothing"

# 10,000 entries fan out into 10,000 tasks
mkdir -p many
python3 - <<'PY'
import json, os
with open("many.jsonl", "w") as f:
    for i in range(10000):
        p = f"many/f{i:05d}.txt"
        open(p, "w").write(str(i))
        f.write(json.dumps({"source-ref": p, "i": i}) + "\n")
PY
cat > fan.yaml <<'YAML'
name: fan
params:
  list: {type: path, required: true}
steps:
  each:
    foreach: {manifest: "${params.list}"}
    run: ["true"]
    resources: {cpus: 0.01}
YAML
start=$(date +%s.%N)
capture ns run fan.yaml --root root -p list=many.jsonl --plain
assert_eq "$rc" 0 "10k: ${out: -500}"
end=$(date +%s.%N)
d=root/runs/$(latest_run root)
assert_eq "$(jq '.steps[0].tasks_succeeded' $d/run.json)" 10000
echo "10,000-entry manifest fan-out: $(python3 -c "print(round($end-$start,1))") s"
echo "ok"

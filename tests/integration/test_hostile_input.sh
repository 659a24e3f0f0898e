# Input that must never crash, hang or escape (issue: engine hardening 6, 7, 10, 11, 15, 16).
source "$(dirname "$0")/lib.sh"

# 7. A path param naming a device or a FIFO is a validation error, at once.
cat > p.yaml <<'YAML'
name: dev
params:
  video: {type: path, required: true}
steps:
  probe:
    run: cat ${params.video}
YAML
mkfifo fifo
for bad in /dev/zero "$WORK/fifo"; do
  capture timeout 20 "$NIGHTSHIFT" run p.yaml --root root -p video="$bad" --plain
  assert_eq "$rc" 2 "path param $bad: $out"
  assert_contains "$out" "param 'video': $bad is not a regular file or folder"
done
assert_no_file root/runs

# 6. A step that setsid's a daemon: the daemon ends with its attempt, whether
# the attempt exits, times out or is cancelled, and with the run.
token="ns-daemon-$$-$RANDOM"
cat > d.yaml <<YAML
name: daemons
steps:
  leaves:
    shell: bash
    script: |
      setsid bash -c 'exec -a $token-exit sleep 300' < /dev/null > /dev/null 2>&1 &
      sleep 0.2
  hangs:
    shell: bash
    script: |
      setsid bash -c 'exec -a $token-timeout sleep 300' < /dev/null > /dev/null 2>&1 &
      sleep 300
    timeout: 1s
    grace: 1s
YAML
capture timeout 60 "$NIGHTSHIFT" run d.yaml --root root --plain
assert_eq "$rc" 1 "the timed-out step fails the run: $out"
sleep 0.3
if pgrep -f "$token" > /dev/null; then
  ps -ef | grep "$token" | grep -v grep >&2
  pkill -f "$token" || true
  fail "a setsid daemon outlived its attempt"
fi

# 11. Bytes that are not UTF-8, in a foreach item and in a -p value.
mkdir -p odd
name=$(printf 'clip-\xff\xfe.txt')
echo hi > "odd/$name"
cat > u.yaml <<'YAML'
name: utf
params:
  label: {type: string, default: x}
  files: {type: list, default: []}
steps:
  each:
    foreach: ${params.files}
    run: cat ${item}
  tag:
    run: echo ${params.label}
YAML
capture timeout 60 "$NIGHTSHIFT" run u.yaml --root root -p files="$WORK/odd/$name" -p label="$(printf 'caf\xe9')" --json
assert_eq "$rc" 0 "non-UTF-8 item and param: $out"
run=$(latest_run root)
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "root/runs/$run/run.json" || fail "run.json is not JSON"
capture ns show "$run" --root root
assert_eq "$rc" 0 "$out"

# 10. A list param too big for an environment (5,000 paths, ~300 KB) works as
# documented in foreach, and reaches a step as NIGHTSHIFT_PARAM_<NAME>_FILE.
python3 - > b.yaml <<'PY'
import json
videos = ["/srv/videos/match-%05d-with-a-long-descriptive-name.mp4" % i for i in range(5000)]
print("name: big\nparams:\n  videos: {type: list, default: %s}" % json.dumps(videos))
print("""steps:
  each:
    foreach: ${params.videos}
    run: "true"
  count:
    shell: bash
    script: python3 -c 'import json,os; print(len(json.load(open(os.environ["NIGHTSHIFT_PARAM_VIDEOS_FILE"]))))' > n.txt""")
PY
capture timeout 300 "$NIGHTSHIFT" run b.yaml --root root --plain --cpus 2
assert_eq "$rc" 0 "a 300 KB list param: $(tail -5 <<<"$out")"
run=$(latest_run root)
assert_eq "$(cat root/runs/$run/count/n.txt)" "5000"

# An argv that is too long names the culprit.
python3 - > a.yaml <<'PY'
import json
print("name: argv\nparams:\n  videos: {type: list, default: %s}" % json.dumps(["x" * 100000, "y" * 100000]))
print("steps:\n  all:\n    run: echo" + " ${params.videos}" * 12)
PY
capture timeout 60 "$NIGHTSHIFT" run a.yaml --root root --plain
assert_eq "$rc" 1 "$out"
assert_contains "$out" "argument list too long"
assert_contains "$out" "expands \${params.videos}"

# 15. A foreach whose items cannot be resolved fails its step with the reason,
# instead of "succeeding" with fewer items.
cat > g.yaml <<'YAML'
name: glob
steps:
  make:
    shell: bash
    script: echo a > a.txt; ln -s /nonexistent/target b.txt
  each:
    needs: [make]
    foreach: ${steps.make.output}/*.txt
    run: cat ${item}
YAML
capture timeout 60 "$NIGHTSHIFT" run g.yaml --root root --plain
assert_eq "$rc" 1 "$out"
assert_contains "$out" "cannot resolve"

# 16. Two first runs on a fresh root at once never fail with "database is locked".
cat > h.yaml <<'YAML'
name: hello
steps:
  a:
    run: "true"
YAML
for try in $(seq 1 12); do
  rm -rf fresh
  "$NIGHTSHIFT" run h.yaml --root fresh --plain > r1.log 2>&1 & p1=$!
  "$NIGHTSHIFT" run h.yaml --root fresh --plain > r2.log 2>&1 & p2=$!
  set +e; wait $p1; r1=$?; wait $p2; r2=$?; set -e
  assert_eq "$r1 $r2" "0 0" "try $try: $(cat r1.log r2.log)"
done
echo PASS

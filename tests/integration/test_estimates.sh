# Estimates per second of input video: each attempt records how much video its
# task had (the foreach item, or the path params its command uses), and the
# deadline planner divides run time by video time from earlier runs, so a
# 6-second clip is expected to take three times a 2-second one.
source "$(dirname "$0")/lib.sh"
command -v ffmpeg >/dev/null || { echo "SKIP: ffmpeg is not installed (scripts/setup installs it)"; exit 0; }
mkdir videos
for s in 2 6; do
  ffmpeg -v error -f lavfi -i "testsrc=size=64x48:rate=10:duration=$s" -c:v mpeg4 "videos/v$s.mp4"
done
cat > p.yaml <<'YAML'
name: per-second
params:
  videos: {type: path, default: videos}
steps:
  segment:
    run: sh -c 'cp "$0"/*.mp4 .' ${params.videos}
  detect:
    needs: [segment]
    foreach: ${steps.segment.output}/*.mp4
    shell: bash
    # 0.15 s of work per second of video
    script: n=$(basename "$NIGHTSHIFT_ITEM" .mp4); sleep $(echo "${n#v} * 0.15" | bc -l); echo done > out.txt
YAML
capture ns run p.yaml --root root --plain
assert_eq "$rc" 0 "first run: $out"
run=$(latest_run root)
assert_eq "$(sqlite3 root/nightshift.db "select input_ms from attempts where run_id='$run' and task_id='detect/v2'")" "2000"
assert_eq "$(sqlite3 root/nightshift.db "select input_ms from attempts where run_id='$run' and task_id='detect/v6'")" "6000"
capture ns run p.yaml --root root --plain --deadline 1h --cpus 2
assert_eq "$rc" 0 "second run: $out"
run=$(latest_run root)
python3 - "root/runs/$run/run.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
est = j["steps"][1]["estimate"]
rate = est["ms_per_input_second"]
print("estimate:", est)
assert rate is not None and 120 <= rate <= 400, f"ms per input second {rate}"
# Once detect has its tasks (after segment), the estimate is both clips at
# that rate on two cpus at once, bounded by the longer: about 6 s x rate, not
# a wave of the mean task (which would be about 4 s x rate).
spans = [e["finish"] - e["at"] for e in j["deadline"]["estimates"]]
print("estimates (ms ahead):", spans)
assert any(abs(s - 6 * rate) <= 0.15 * 6 * rate for s in spans), f"no estimate near {6 * rate} ms"
PY
echo ok

# The match-analysis example on Slurm gives the same outputs as in local mode
# (segments, detections, tracks, analysis, the annotated video, the report's
# data): every file byte for byte, except the timing figures steps record about
# themselves (detect.json's and render.json's processed_fps, seconds and
# stage_cpu_seconds; analyse's timing.json).
source "$(dirname "$0")/lib_slurm.sh"
video=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[[ -f "$video" ]] || { echo "SKIP: $video is missing (scripts/setup installs opencv-doc)"; exit 0; }
example="$NS_SOURCE_DIR/examples/match-analysis.yaml"
capture slurm run "$example" --root slurm -p video="$video"
assert_eq "$rc" 0 "match-analysis on Slurm: $out"
capture ns run "$example" --root local -p video="$video" --plain
assert_eq "$rc" 0 "match-analysis locally: $out"
s=slurm/runs/$(latest_run slurm)
l=local/runs/$(latest_run local)
untimed() {  # a step's JSON without its timing fields
  /usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
for k in ("processed_fps", "seconds", "stage_cpu_seconds"): j.pop(k, None)
print(json.dumps(j, sort_keys=True))' "$1"
}
digest() {  # every output file of a run folder: path and md5 (timings left out)
  (cd "$1" && find . \( -path ./_logs -o -path ./_jobs \) -prune -o -type f \
     ! -name _task.json ! -name run.json ! -name pipeline.yaml ! -name timing.json -print | sort | while read -r f; do
    if [[ "$f" == */detect.json || "$f" == */render.json ]]; then
      echo "$f $(untimed "$f" | md5sum | cut -c1-32)"
    else
      echo "$f $(md5sum < "$f" | cut -c1-32)"
    fi
  done)
}
diff <(digest "$l") <(digest "$s") || fail "Slurm and local outputs differ (above)"
n=$(digest "$s" | wc -l)
(( n > 20 )) || fail "too few outputs compared: $n"
# Each detect task ran as one Slurm job in the spot partition.
jobs=$(squeue -h --states=all -o '%j %P' | grep -c "^ns/$(latest_run slurm)/detect/.* spot$")
assert_eq "$jobs" "$(ls -d $s/detect/seg_* | wc -l)" "detect jobs in the spot partition"
echo "ok ($n files compared)"

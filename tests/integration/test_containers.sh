# Steps in containers (docs/containers.md): an image built offline from
# busybox-static, run through podman with nightshift's containers.conf. Mounts,
# limits, exit codes, what the step cannot see, pinning, clear errors before the
# run, and no container left behind by a timeout.
source "$(dirname "$0")/lib.sh"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || [[ ! -x /bin/busybox ]]; then
  echo "SKIP: podman, runc or busybox-static is not installed (scripts/setup installs them)"
  exit 0
fi
export NIGHTSHIFT_PODMAN_STORAGE=$WORK/podman
podman_() { CONTAINERS_CONF=$WORK/root/containers/containers.conf podman --root "$NIGHTSHIFT_PODMAN_STORAGE/storage" --runroot "$NIGHTSHIFT_PODMAN_STORAGE/run" "$@"; }
cleanup() { podman_ rm -fa >/dev/null 2>&1 || true; podman_ system reset -f >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p rootfs/bin rootfs/tmp rootfs/etc rootfs/proc rootfs/sys rootfs/dev
cp /bin/busybox rootfs/bin/
for c in $(rootfs/bin/busybox --list); do [[ $c == busybox ]] || ln -sf busybox rootfs/bin/$c; done
tar -C rootfs -cf bb.tar .
echo "host secret" > secret.txt
echo "input video" > video.mp4

cat > c.yaml <<'YAML'
name: boxed
params:
  video: {type: path, required: true}
  image: {type: string, default: "nsbb:1"}
  mode: {type: string, default: ok}
steps:
  first:
    run: [sh, -c, 'echo from-first > result.txt']
  box:
    needs: [first]
    image: ${params.image}
    resources: {cpus: 1, memory: 96MiB}
    timeout: 6s
    grace: 2s
    retry: {max_attempts: 1}
    env: {UP: "${steps.first.output}"}
    shell: sh
    script: |
      case "$NIGHTSHIFT_PARAM_MODE" in
        ok)
          cat "$UP/result.txt" > up.txt
          cat "$NIGHTSHIFT_PARAM_VIDEO" > video.txt
          cat "$(dirname "$NIGHTSHIFT_PARAM_VIDEO")/secret.txt" > secret.txt 2>&1 || echo hidden > secret.txt
          ls /bin/busybox > image.txt
          (echo x > "$UP/result.txt") 2>/dev/null && echo writable > upstream.txt || echo read-only > upstream.txt
          cat /sys/fs/cgroup/memory/memory.limit_in_bytes > mem.txt 2>/dev/null || cat /sys/fs/cgroup/memory.max > mem.txt
          env | sort > env.txt
          echo "progress 0.5 half" >> "$NIGHTSHIFT_PROGRESS_FILE" && echo progress-ok > progress.txt ;;
        exit7) exit 7 ;;
        oom) dd if=/dev/zero of=/dev/null bs=300M count=1 ;;
        stubborn) trap '' TERM; echo started; while true; do sleep 0.1; done ;;
      esac
YAML
# the image is not there yet: a clear error before any run exists
capture ns run c.yaml --root root -p video=video.mp4
assert_eq "$rc" 2 "missing image: $out"
assert_contains "$out" "image 'nsbb:1' is not in podman's storage"
assert_contains "$out" "podman pull, podman load or podman import"
assert_eq "$(sqlite3 root/nightshift.db 'select count(*) from runs')" 0
# no podman on PATH: said before the run too
mkdir -p nopodman
for p in sh bash env cat; do ln -s "$(command -v $p)" nopodman/$p; done
capture env PATH="$WORK/nopodman" "$NIGHTSHIFT" run c.yaml --root root -p video=video.mp4
assert_eq "$rc" 2 "no podman: $out"
assert_contains "$out" "podman is not installed"

podman_ import -q bb.tar nsbb:1 >/dev/null
capture ns run c.yaml --root root -p video=video.mp4
assert_eq "$rc" 0 "container run: $out"
d=root/runs/$(latest_run root)/box
assert_eq "$(cat $d/up.txt)" "from-first" "upstream output is mounted"
assert_eq "$(cat $d/video.txt)" "input video" "path params are mounted"
assert_eq "$(cat $d/secret.txt)" "hidden" "the host's other files are not visible"
assert_eq "$(cat $d/image.txt)" "/bin/busybox" "the image's own files"
assert_eq "$(cat $d/upstream.txt)" "read-only" "upstream outputs are read-only"
assert_eq "$(cat $d/mem.txt)" "100663296" "memory limit = resources.memory"
assert_contains "$(cat $d/env.txt)" "NIGHTSHIFT_STEP=box"
assert_eq "$(cat $d/progress.txt)" "progress-ok" "the progress file is writable inside"
assert_contains "$(cat $d/env.txt)" "NIGHTSHIFT_OUTPUT_DIR=$PWD/root/runs/"
run_json=root/runs/$(latest_run root)/run.json
id1=$(jq -r .images.box.id $run_json)
assert_eq "$id1" "$(podman_ image inspect --format '{{.Id}}' nsbb:1)" "the image id is pinned"
fp1=$(jq -r '.steps[] | select(.step=="box") | .fingerprint' $run_json)

# exit codes and the memory limit propagate
capture ns run c.yaml --root root -p video=video.mp4 -p mode=exit7
assert_eq "$rc" 1; assert_contains "$out" "task box: failed (attempt 1"; assert_contains "$out" "exit code 7"
capture ns run c.yaml --root root -p video=video.mp4 -p mode=oom
assert_eq "$rc" 1; assert_contains "$out" "exit code 137"

# a timeout ends the container too, even a step that ignores SIGTERM
capture ns run c.yaml --root root -p video=video.mp4 -p mode=stubborn
assert_eq "$rc" 1; assert_contains "$out" "timed out"
assert_eq "$(podman_ ps -aq | wc -l)" 0 "no container is left behind"

# another image under the same name: a new run pins the new id, the fingerprint changes
mkdir -p rootfs/etc && echo v2 > rootfs/etc/version && tar -C rootfs -cf bb2.tar .
podman_ import -q bb2.tar nsbb:1 >/dev/null
capture ns run c.yaml --root root -p video=video.mp4
assert_eq "$rc" 0 "$out"
run_json=root/runs/$(latest_run root)/run.json
[[ "$(jq -r .images.box.id $run_json)" != "$id1" ]] || fail "the new image was not pinned"
[[ "$(jq -r '.steps[] | select(.step=="box") | .fingerprint' $run_json)" != "$fp1" ]] || fail "image id not in the fingerprint"
echo "ok"

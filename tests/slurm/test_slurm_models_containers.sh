# Models, manifests and containers on Slurm: the same fields go through the
# Slurm executor and `nightshift task-exec` on the node (docs/containers.md,
# docs/models.md).
source "$(dirname "$0")/lib_slurm.sh"
mkdir -p m data
echo "weights" > m/w.bin
ns model push det m --root root >/dev/null
for i in 1 2; do echo "clip $i" > data/c$i.mp4; done
printf '{"source-ref": "data/c1.mp4", "team": "home"}\n{"source-ref": "data/c2.mp4", "team": "away"}\n' > list.jsonl
cat > p.yaml <<'YAML'
name: slurm-models
params:
  list: {type: path, required: true}
steps:
  each:
    foreach: {manifest: "${params.list}"}
    models: {det: det@latest}
    shell: sh
    env: {TEAM: "${item.team}", CLIP: "${item.path}"}
    script: |
      cat "$CLIP" "$NIGHTSHIFT_MODEL_DIR_DET/w.bin" > out.txt
      echo "$TEAM" >> out.txt
      (echo x >> "$NIGHTSHIFT_MODEL_DIR_DET/w.bin") 2>/dev/null && echo writable >> out.txt || echo read-only >> out.txt
YAML
capture slurm run p.yaml --root root -p list=list.jsonl
assert_eq "$rc" 0 "models + manifest on slurm: $out"
d=root/runs/$(latest_run root)
assert_eq "$(cat $d/each/data_c2/out.txt | tr '\n' ' ')" "clip 2 weights away $([[ $(id -u) -eq 0 ]] && echo read-only || echo writable) "
ns model verify det@1 --root root >/dev/null || fail "a task on a node changed the model"

if command -v podman >/dev/null && command -v runc >/dev/null && [[ -x /bin/busybox ]]; then
  export NIGHTSHIFT_PODMAN_STORAGE=$WORK/podman
  podman_() { CONTAINERS_CONF=$WORK/root/containers/containers.conf podman --root "$NIGHTSHIFT_PODMAN_STORAGE/storage" --runroot "$NIGHTSHIFT_PODMAN_STORAGE/run" "$@"; }
  trap 'podman_ rm -fa >/dev/null 2>&1 || true; podman_ system reset -f >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
  mkdir -p rootfs/bin rootfs/tmp rootfs/proc rootfs/sys rootfs/dev
  cp /bin/busybox rootfs/bin/
  for c in $(rootfs/bin/busybox --list); do [[ $c == busybox ]] || ln -sf busybox rootfs/bin/$c; done
  tar -C rootfs -cf bb.tar .
  cat > c.yaml <<'YAML'
name: slurm-box
steps:
  box:
    image: nsbb:1
    models: {det: det@latest}
    resources: {cpus: 1, memory: 128MiB}
    shell: sh
    script: |
      cat "$NIGHTSHIFT_MODEL_DIR_DET/w.bin" > out.txt
      ls /bin/busybox >> out.txt
      exit 0
YAML
  # the first run writes root/containers/containers.conf, then says the image is missing
  capture slurm run c.yaml --root root
  assert_eq "$rc" 2 "$out"; assert_contains "$out" "is not in podman's storage"
  podman_ import -q bb.tar nsbb:1 >/dev/null
  capture slurm run c.yaml --root root
  assert_eq "$rc" 0 "container on slurm: $out"
  d=root/runs/$(latest_run root)
  assert_eq "$(cat $d/box/out.txt | tr '\n' ' ')" "weights /bin/busybox "
  assert_contains "$(cat $d/_jobs/box.1.json)" "container-exec"
else
  echo "SKIP (containers part): podman, runc or busybox-static is not installed"
fi
echo "ok"

# A 200-task fan-out on Slurm completes, with one sbatch per task and the
# engine asking the controller at most a few times per second (squeue is one
# query for every live job; finished jobs are noticed from their records).
source "$(dirname "$0")/lib_slurm.sh"
cat > wide.yaml <<YAML
name: wide
steps:
  noop:
    foreach: [$(seq -s, 1 200)]
    resources: {cpus: 1, memory: 64MiB}
    run: sh -c 'echo \$NIGHTSHIFT_ITEM > out.txt'
YAML
capture slurm run wide.yaml --root root
assert_eq "$rc" 0 "fan-out: $out"
run=$(latest_run root)
assert_eq "$(sqlite3 root/nightshift.db "select count(*) from tasks where run_id='$run' and status='succeeded'")" "200"
assert_eq "$(ls root/runs/$run/noop | grep -vc _task.json)" "200"
python3 - "root/runs/$run/run.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ex = j["executor"]
wall = (j["finished_at"] - j["started_at"]) / 1000
per_s = ex["squeue"] / wall
print(f"200 tasks in {wall:.1f} s: sbatch {ex['sbatch']}, squeue {ex['squeue']} ({per_s:.2f}/s), scancel {ex['scancel']}")
assert ex["sbatch"] == 200, ex
assert ex["scancel"] == 0, ex
assert per_s <= 3, f"{per_s:.2f} squeue per second"
PY
echo ok

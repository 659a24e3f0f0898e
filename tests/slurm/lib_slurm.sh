# Helpers for tests against a real Slurm cluster. Sources the integration
# helpers, then makes sure a cluster answers: the one the test command started
# (SLURM_CONF), else one started here with scripts/slurm-up (left running; the
# test command stops it, or scripts/slurm-down).
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
NS_SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! sinfo -h >/dev/null 2>&1; then
  command -v slurmctld >/dev/null || { echo "SKIP: Slurm is not installed (scripts/setup installs it)"; exit 0; }
  eval "$("$NS_SOURCE_DIR/scripts/slurm-up")"
fi
# Every node back in service, whatever a test did to them.
slurm_resume_nodes() {
  for n in $(sinfo -h -N -o '%N' | sort -u); do
    scontrol update NodeName="$n" State=RESUME >/dev/null 2>&1 || true
  done
}
# The Slurm job id of the running attempt of a task (run, task id, attempt).
job_of() { squeue -h --states=all -o '%i %j' | awk -v n="ns/$1/$2/$3" '$2 == n {print $1}'; }
slurm() { "$NIGHTSHIFT" "$@" --executor slurm --plain; }

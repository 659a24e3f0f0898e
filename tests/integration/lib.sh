# Shared helpers for integration tests. Each test gets a fresh folder in $WORK.
set -euo pipefail
: "${NIGHTSHIFT:?set NIGHTSHIFT to the nightshift binary}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ns-it.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
ns() { "$NIGHTSHIFT" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
assert_eq() { [[ "$1" == "$2" ]] || fail "${3:-} expected '$2', got '$1'"; }
assert_contains() { grep -qF -- "$2" <<<"$1" || fail "${3:-} expected to find '$2' in: $1"; }
assert_file() { [[ -e "$1" ]] || fail "missing $1"; }
assert_no_file() { [[ ! -e "$1" ]] || fail "should not exist: $1"; }
# The id of the newest run under root $1 (run ids sort by second only: two runs
# started in one second sort by their random suffix, so ask the store).
latest_run() { sqlite3 "$1/nightshift.db" "select run_id from runs order by created_at desc, rowid desc limit 1"; }
# Runs a command, captures its exit code in $rc and output in $out.
capture() { set +e; out=$("$@" 2>&1); rc=$?; set -e; }
# Waits until a command succeeds (at most $1 seconds).
wait_for() {
  local limit=$1; shift
  local i=0
  until "$@"; do
    sleep 0.1; i=$((i + 1))
    (( i < limit * 10 )) || fail "timed out waiting for: $*"
  done
}
task_status() {  # root run task
  sqlite3 "$1/nightshift.db" "select status from tasks where run_id='$2' and task_id='$3'"
}

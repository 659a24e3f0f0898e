# Helpers for the server's tests: start `nightshift serve` on a free loopback
# port and talk to it over real HTTP (curl).
SERVER_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SERVER_TESTS_DIR/../.." && pwd)
source "$SERVER_TESTS_DIR/../integration/lib.sh"
SERVER_PID=
cleanup_server() {
  local rc=$?
  if (( rc != 0 )); then
    for f in "$WORK"/*.serve.log; do [[ -f "$f" ]] && { echo "--- $f (last 30 lines)" >&2; tail -n 30 "$f" >&2; }; done
  fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup_server EXIT

# start_server ROOT [serve flags...]: sets URL, TOKEN, SERVER_PID.
start_server() {
  local root=$1; shift
  mkdir -p "$root"
  rm -f "$root/server.json"
  # Not a file descriptor of the test's own writers (3-9) goes to the server.
  "$NIGHTSHIFT" serve --root "$root" --listen 127.0.0.1:0 "$@" >>"$root.serve.log" 2>&1 \
    3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  SERVER_PID=$!
  local i=0
  until [[ -s "$root/server.json" ]]; do
    sleep 0.05; i=$((i + 1))
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$root.serve.log" >&2; fail "the server exited at start"; fi
    (( i < 200 )) || fail "the server did not start"
  done
  URL=$(jq -r .url "$root/server.json")
  TOKEN=$(cat "$root/server.token")
}
api() { curl -sS -H "Authorization: Bearer $TOKEN" "$@"; }
# post PATH JSON
post() { curl -sS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -X POST --data-binary "$2" "$URL$1"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
job_state() { api "$URL/api/v1/jobs/$1" | jq -r .job.state; }
job_field() { api "$URL/api/v1/jobs/$1" | jq -r ".job.$2"; }
# wait_job_state JOB STATE [SECONDS]
wait_job_state() {
  local i=0 limit=$(( ${3:-60} * 10 ))
  until [[ "$(job_state "$1")" == "$2" ]]; do
    sleep 0.1; i=$((i + 1))
    (( i < limit )) || fail "job $1 did not become $2 (it is $(job_state "$1"): $(job_field "$1" message))"
  done
}
# sql_ge DB SQL N: the query's number is at least N (for wait_for: evaluated each time).
sql_ge() { [[ "$(sqlite3 "$1" "$2")" -ge "$3" ]]; }
# lines_ge FILE PATTERN N
lines_ge() { [[ "$(grep -c "$2" "$1" 2>/dev/null || true)" -ge "$3" ]]; }
jobs_eq() { [[ "$(sqlite3 "$1" "select count(*) from jobs where params like '%$2%'")" -eq "$3" ]]; }

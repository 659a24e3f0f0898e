# Helpers for the server's tests: start `nightshift serve` on a free loopback
# port and talk to it over real HTTP (curl).
SERVER_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SERVER_TESTS_DIR/../.." && pwd)
source "$SERVER_TESTS_DIR/../integration/lib.sh"
SERVER_PID=
cleanup_server() {
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
  "$NIGHTSHIFT" serve --root "$root" --listen 127.0.0.1:0 "$@" >>"$root.serve.log" 2>&1 &
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

#!/usr/bin/env bash
# The HTTP API over real HTTP: auth, submission and idempotency, a run's
# detail, tasks, attempts, logs, artifacts (and every way out of the run
# folder), cancel and retry, the dead-letter list, malformed and oversized
# requests, /metrics through promtool, the OpenAPI document, and the CLI's
# --server mode.
source "$(dirname "$0")/lib_server.sh"

cat > hello.yaml <<'YAML'
name: hello
params:
  names: {type: list, default: [ada, grace]}
steps:
  greet:
    foreach: ${params.names}
    run: sh -c 'echo "hi $0" > g.txt; echo "said hi to $0"' ${item}
  collect:
    needs: [greet]
    run: sh -c 'cat $0/*/g.txt > all.txt' ${steps.greet.output}
YAML
cat > sleepy.yaml <<'YAML'
name: sleepy
params:
  seconds: {type: int, default: 30}
steps:
  nap:
    run: sleep ${params.seconds}
YAML
cat > failing.yaml <<'YAML'
name: failing
steps:
  boom:
    run: sh -c 'echo going down >&2; exit 3'
YAML
start_server "$WORK/root"

# --- auth
assert_eq "$(http_code "$URL/api/v1/status")" 401 "no token:"
assert_eq "$(http_code -H 'Authorization: Bearer wrong' "$URL/api/v1/status")" 401 "wrong token:"
assert_eq "$(http_code -H "Authorization: Basic $TOKEN" "$URL/api/v1/status")" 401 "not bearer:"
assert_eq "$(http_code "$URL/metrics")" 401 "metrics without token:"
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" "$URL/api/v1/status")" 200 "token:"
assert_eq "$(stat -c %a "$WORK/root/server.token")" 600 "token file mode:"
# No CORS: a cross-origin page gets no permission.
hdrs=$(curl -sS -D - -o /dev/null -H "Origin: http://evil.example" -H "Authorization: Bearer $TOKEN" "$URL/api/v1/status")
if grep -qi '^access-control-allow' <<<"$hdrs"; then fail "CORS headers sent: $hdrs"; fi

# --- malformed and oversized requests: a JSON error with a reason, never a crash
out=$(post /api/v1/jobs '{"pipeline": ')
assert_contains "$out" '"status":400' "malformed JSON:"
assert_contains "$out" 'not JSON' "malformed JSON:"
out=$(post /api/v1/jobs '[1,2]'); assert_contains "$out" 'JSON object' "array body:"
out=$(post /api/v1/jobs '{"params": {}}'); assert_contains "$out" 'pipeline: required' "no pipeline:"
out=$(post /api/v1/jobs '{"pipeline": "hello.yaml", "colour": 1, "priority": "high"}')
assert_contains "$out" "unknown field 'colour'" "unknown field:"
assert_contains "$out" 'priority: expected an integer' "every problem at once:"
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/missing.yaml\"}")
assert_contains "$out" '"status":422' "missing pipeline file:"
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/sleepy.yaml\", \"params\": {\"seconds\": \"soon\", \"nope\": 1}}")
assert_contains "$out" '"status":422' "bad params:"
assert_contains "$out" 'nope' "unknown param named:"
head -c 2000000 /dev/zero | tr '\0' 'x' > big.json
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @big.json "$URL/api/v1/jobs")" 413 "oversized body:"
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" -d 'pipeline=x' "$URL/api/v1/jobs")" 415 "form body:"
printf '{"pipeline": "\xff\xfe"}' > bad-utf8.json
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @bad-utf8.json "$URL/api/v1/jobs")" 400 "non-UTF-8 body:"
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs?limit=99999999999")" 400 "huge limit:"
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" "$URL/api/v1/nothing")" 404 "unknown endpoint:"
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/nope")" 404 "unknown run:"
kill -0 "$SERVER_PID" || fail "the server died on malformed input"

# --- submission, idempotency, a run's detail
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/hello.yaml\", \"key\": \"match-1\", \"priority\": 5}")
job=$(jq -r .job.id <<<"$out")
assert_eq "$(jq -r .created <<<"$out")" true "first submission:"
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/hello.yaml\", \"key\": \"match-1\"}")
assert_eq "$(jq -r .created <<<"$out")" false "same key:"
assert_eq "$(jq -r .job.id <<<"$out")" "$job" "same key, same job:"
wait_job_state "$job" succeeded 30
run=$(job_field "$job" run_id)
detail=$(api "$URL/api/v1/runs/$run")
assert_eq "$(jq -r .run.status <<<"$detail")" succeeded "run status:"
assert_eq "$(jq -r .run.job_id <<<"$detail")" "$job" "run's job:"
assert_eq "$(jq -c '[.steps[] | [.id, .status, .tasks_total]]' <<<"$detail")" '[["greet","succeeded",2],["collect","succeeded",1]]' "steps:"
assert_eq "$(jq -c '.steps[1].needs' <<<"$detail")" '["greet"]' "needs:"
assert_eq "$(api "$URL/api/v1/runs/$run/tasks" | jq '.tasks | length')" 3 "tasks:"
assert_eq "$(api "$URL/api/v1/runs/$run/attempts" | jq -r '[.attempts[].status] | unique | join(",")')" succeeded "attempts:"
assert_eq "$(api "$URL/api/v1/runs/$run/logs?task=greet/ada")" "said hi to ada" "log:"
assert_eq "$(api "$URL/api/v1/runs/$run/logs?task=greet/ada&stream=err")" "" "empty stderr:"
# follow on a finished attempt: its lines, then the end
out=$(curl -sS -N --max-time 10 -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$run/logs?task=greet/grace&follow=1")
assert_contains "$out" "data: said hi to grace" "follow:"
assert_contains "$out" "event: end" "follow ends:"
assert_eq "$(api "$URL/api/v1/runs?q=$run" | jq -r '.runs[0].run_id')" "$run" "search:"
assert_eq "$(api "$URL/api/v1/runs?state=failed" | jq '.runs | length')" 0 "state filter:"
assert_eq "$(api "$URL/api/v1/runs?pipeline=hello" | jq '.runs | length')" 1 "pipeline filter:"

# --- artifacts: inside the run folder only
assert_eq "$(api "$URL/api/v1/runs/$run/artifacts/" | jq -r '[.entries[].name] | join(",")')" "_logs,collect,greet,pipeline.yaml,run.json" "listing:"
assert_eq "$(api "$URL/api/v1/runs/$run/artifacts/collect/all.txt")" "$(printf 'hi ada\nhi grace')" "download:"
hdrs=$(curl -sS -D - -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$run/artifacts/collect/all.txt?download=1")
assert_contains "$hdrs" 'attachment; filename="all.txt"' "attachment:"
assert_contains "$hdrs" 'sandbox' "outputs are sandboxed:"
echo secret > "$WORK/secret.txt"
ln -s "$WORK/secret.txt" "$WORK/root/runs/$run/collect/link-out"
ln -s all.txt "$WORK/root/runs/$run/collect/link-in"
mkfifo "$WORK/root/runs/$run/collect/fifo"
for p in "..%2f..%2fsecret.txt" "%2e%2e/%2e%2e/secret.txt" "%2E%2E%2F%2E%2E%2Fsecret.txt" "/$WORK/secret.txt" \
         "collect/link-out" "collect/..%2f..%2f..%2fsecret.txt"; do
  code=$(http_code --path-as-is -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$run/artifacts/$p")
  [[ "$code" == 403 ]] || fail "artifacts/$p: expected 403, got $code"
done
code=$(http_code --path-as-is -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$run/artifacts/../../secret.txt")
[[ "$code" == 403 || "$code" == 404 ]] || fail "artifacts/../..: expected 403 or 404, got $code"
assert_eq "$(api "$URL/api/v1/runs/$run/artifacts/collect/link-in")" "$(printf 'hi ada\nhi grace')" "a symlink inside:"
assert_eq "$(timeout 5 curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$run/artifacts/collect/fifo")" 403 "a FIFO:"

# --- dead-letter: a job failing past its limit; retry puts it back
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/failing.yaml\", \"max_attempts\": 2}")
bad=$(jq -r .job.id <<<"$out")
wait_job_state "$bad" dead 30
assert_eq "$(job_field "$bad" attempts)" 2 "attempts before dead:"
assert_contains "$(job_field "$bad" message)" "2 of 2 attempts" "dead message:"
assert_eq "$(api "$URL/api/v1/jobs?state=dead" | jq -r '.jobs[0].id')" "$bad" "dead-letter list:"
bad_run=$(job_field "$bad" run_id)
assert_eq "$(sqlite3 "$WORK/root/nightshift.db" "select count(*) from runs where pipeline='failing'")" 1 "one run, resumed:"
assert_eq "$(api "$URL/api/v1/runs/$bad_run/logs?task=boom&stream=err")" "going down" "stderr:"
out=$(post "/api/v1/jobs/$bad/retry" '')
assert_eq "$(jq -r .job.state <<<"$out")" pending "retry:"
wait_job_state "$bad" dead 30
assert_eq "$(http_code -X POST -d '' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/jobs/$job/retry")" 409 "retry a succeeded job:"

# --- cancel a running run through the API, then retry it
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/sleepy.yaml\", \"params\": {\"seconds\": 30}}")
nap=$(jq -r .job.id <<<"$out")
wait_job_state "$nap" leased 10
nap_run=$(job_field "$nap" run_id)
task_running() { [[ "$(api "$URL/api/v1/runs/$1/tasks" | jq -r '.tasks[0].status')" == running ]]; }
wait_for 10 task_running "$nap_run"
assert_eq "$(http_code -X POST -d '' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$nap_run/cancel")" 202 "cancel:"
wait_job_state "$nap" cancelled 20
assert_eq "$(api "$URL/api/v1/runs/$nap_run" | jq -r .run.status)" cancelled "cancelled run:"
assert_eq "$(http_code -X POST -d '' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$nap_run/cancel")" 409 "cancel again:"
assert_eq "$(http_code -X POST -d '' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/runs/$nap_run/retry")" 200 "retry the run:"
wait_job_state "$nap" leased 10
assert_eq "$(job_field "$nap" run_id)" "$nap_run" "the retry resumes the same run:"

# --- the CLI against the server
export NIGHTSHIFT_TOKEN=$TOKEN
out=$(ns runs --server "$URL"); assert_contains "$out" "$run" "runs --server:"
out=$(ns show "$run" --server "$URL"); assert_contains "$out" "collect" "show --server:"
out=$(ns logs "$run" greet --item ada --server "$URL"); assert_eq "$out" "said hi to ada" "logs --server:"
out=$(ns cancel "$nap_run" --server "$URL"); assert_contains "$out" "cancelled" "cancel --server:"
capture ns show nope --server "$URL"; assert_eq "$rc" 2 "show of an unknown run:"
out=$(ns submit hello.yaml -p names='["x"]' --key cli-1 --root "$WORK/root")
assert_contains "$out" "queued" "submit through the root's server:"
out=$(ns submit hello.yaml -p names='["x"]' --key cli-1 --server "$URL")
assert_contains "$out" "already has key cli-1" "submit, same key:"
capture ns submit missing.yaml --server "$URL"; assert_eq "$rc" 2 "submit a missing file:"
NIGHTSHIFT_TOKEN=wrong capture ns runs --server "$URL"; assert_eq "$rc" 2 "wrong token:"
unset NIGHTSHIFT_TOKEN

# --- events: a job's changes arrive on the stream
curl -sS -N --max-time 8 -H "Authorization: Bearer $TOKEN" "$URL/api/v1/events" > events.txt &
curl_pid=$!
sleep 0.5
out=$(post /api/v1/jobs "{\"pipeline\": \"$WORK/hello.yaml\", \"params\": {\"names\": [\"ev\"]}}")
ev_job=$(jq -r .job.id <<<"$out")
wait_job_state "$ev_job" succeeded 20
sleep 0.3
kill "$curl_pid" 2>/dev/null || true; wait "$curl_pid" 2>/dev/null || true
grep -q "event: job" events.txt || fail "no job event: $(cat events.txt)"
grep -q "\"state\":\"succeeded\"" events.txt || fail "no succeeded job event"
grep -q "event: task" events.txt || fail "no task event"

# --- metrics through a real Prometheus parser
api "$URL/metrics" > metrics.txt
promtool check metrics < metrics.txt || fail "promtool rejected /metrics: $(cat metrics.txt)"
grep -q '^nightshift_queue_jobs{state="dead"} 1' metrics.txt || fail "dead jobs not counted"
grep -q '^nightshift_task_duration_seconds_count{step="greet"}' metrics.txt || fail "no duration histogram"
grep -q '^nightshift_attempts_total{outcome="failed"}' metrics.txt || fail "no attempts by outcome"

# --- the OpenAPI document through a real validator (web/node_modules, from npm ci)
web=$REPO_DIR/web
if [[ -d "$web/node_modules/@apidevtools/swagger-parser" ]]; then
  node "$web/validate-openapi.mjs" "$URL/api/v1/openapi.json" "$TOKEN" || fail "the OpenAPI document is not valid"
else
  echo "SKIP: OpenAPI validation (run 'cd web && npm ci' first)"
fi

# --- a limit on open streams: the 33rd gets 503, and closing one frees it
pids=()
for i in $(seq 32); do
  curl -sS -N --max-time 30 -H "Authorization: Bearer $TOKEN" "$URL/api/v1/events" > /dev/null 2>&1 &
  pids+=($!)
done
full() { [[ "$(http_code --max-time 2 -H "Authorization: Bearer $TOKEN" "$URL/api/v1/events")" == 503 ]]; }
wait_for 10 full
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
freed() { [[ "$(http_code --max-time 1 -H "Authorization: Bearer $TOKEN" "$URL/api/v1/events")" == 200 ]]; }  # a stream (cut by --max-time)
wait_for 15 freed
assert_eq "$(http_code -H "Authorization: Bearer $TOKEN" "$URL/api/v1/status")" 200 "the API answers with every stream open:"
kill "${pids[@]:1}" 2>/dev/null || true; wait "${pids[@]:1}" 2>/dev/null || true

# --- set-up errors
capture ns serve --root "$WORK/root" --listen 127.0.0.1:0
assert_eq "$rc" 2 "second server on one root:"; assert_contains "$out" "another nightshift serve" "second server:"
capture ns serve --root "$WORK/r2" --listen 0.0.0.0:0
assert_eq "$rc" 2 "non-loopback without --allow-remote:"; assert_contains "$out" "--allow-remote" "remote:"
capture ns serve --root "$WORK/r3" --listen nonsense
assert_eq "$rc" 2 "bad --listen:"
kill -0 "$SERVER_PID" || fail "the server died"
echo "PASS"

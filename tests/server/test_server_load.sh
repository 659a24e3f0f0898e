#!/usr/bin/env bash
# 200 concurrent submissions, half of them sharing idempotency keys (50 keys,
# each sent twice at once): exactly 150 jobs and 150 runs, every one succeeded.
source "$(dirname "$0")/lib_server.sh"
cat > noop.yaml <<'YAML'
name: noop
params:
  n: {type: string, default: "0"}
steps:
  touch:
    resources: {cpus: 0.1}
    run: sh -c 'echo $0 > n.txt' ${params.n}
YAML
start_server "$WORK/root" --max-runs 16
body() { printf '{"pipeline": "%s", "params": {"n": "%s"}, "key": "%s"}' "$WORK/noop.yaml" "$1" "$2"; }
{
  for i in $(seq 0 99); do echo "u$i u-$i"; done
  for i in $(seq 0 49); do echo "s$i s-$i"; echo "s$i s-$i"; done
} | shuf > submissions.txt
export URL TOKEN WORK
# 32 at a time, each its own connection.
xargs -P 32 -L 1 bash -c 'curl -sS -o /dev/null -w "%{http_code}\n" -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" -X POST \
  --data-binary "{\"pipeline\": \"$WORK/noop.yaml\", \"params\": {\"n\": \"$0\"}, \"key\": \"$1\"}" "$URL/api/v1/jobs"' \
  < submissions.txt > codes.txt
assert_eq "$(wc -l < codes.txt | tr -d ' ')" 200 "answers:"
assert_eq "$(grep -c '^201$' codes.txt)" 150 "created (201):"
assert_eq "$(grep -c '^200$' codes.txt)" 50 "known key (200):"
db="$WORK/root/nightshift.db"
wait_for 120 sql_ge "$db" "select count(*) from jobs where state='succeeded'" 150
assert_eq "$(sqlite3 "$db" "select count(*) from jobs")" 150 "jobs:"
assert_eq "$(sqlite3 "$db" "select count(*) from runs")" 150 "runs:"
assert_eq "$(sqlite3 "$db" "select count(distinct run_id) from jobs")" 150 "one run per job:"
assert_eq "$(sqlite3 "$db" "select count(*) from runs where status='succeeded'")" 150 "runs succeeded:"
kill -0 "$SERVER_PID" || fail "the server died"
echo "PASS"

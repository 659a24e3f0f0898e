#!/usr/bin/env bash
# The inbox folder: a file becomes a job once it is closed after writing or
# renamed in (inotify, within a second), never while it is being written;
# hidden and partial names, FIFOs and folders never; files already there at
# start do, unless a writer still holds them; a restart queues nothing twice.
source "$(dirname "$0")/lib_server.sh"
cat > p.yaml <<'YAML'
name: inboxed
params:
  video: {type: string}
steps:
  size:
    run: sh -c 'wc -c < "$0" > size.txt' ${params.video}
YAML
mkdir inbox
echo early > inbox/early.mp4
# A writer still busy with this one when the server starts.
exec 3> inbox/busy.mp4
echo part >&3
start_server "$WORK/root" --inbox "$WORK/inbox" --inbox-pipeline "$WORK/p.yaml"
db="$WORK/root/nightshift.db"
jobs_for() { sqlite3 "$db" "select count(*) from jobs where params like '%$1%'"; }
wait_for 5 jobs_eq "$db" early.mp4 1
sleep 0.5
assert_eq "$(jobs_for busy.mp4)" 0 "a file being written at start:"
echo more >&3
exec 3>&-
wait_for 2 jobs_eq "$db" busy.mp4 1
# Written slowly: nothing until it is closed, then a job within a second.
( exec 4> inbox/slow.mp4; echo a >&4; sleep 1.5; echo b >&4; exec 4>&- ; date +%s%N > closed_at ) &
writer=$!
sleep 1
assert_eq "$(jobs_for slow.mp4)" 0 "a file still being written:"
wait "$writer"
wait_for 2 jobs_eq "$db" slow.mp4 1
queued_ns=$(date +%s%N)
echo "inbox: closed -> queued within $(( (queued_ns - $(cat closed_at)) / 1000000 )) ms (polled at 100 ms)"
# A partial name, then renamed in.
echo x > inbox/renamed.mp4.part
sleep 0.3
assert_eq "$(jobs_for renamed.mp4)" 0 "a .part file:"
mv inbox/renamed.mp4.part inbox/renamed.mp4
wait_for 2 jobs_eq "$db" 'renamed.mp4"' 1
# Never: hidden files, FIFOs, folders.
echo h > inbox/.hidden.mp4
mkfifo inbox/fifo.mp4
mkdir inbox/folder.mp4
( exec 5> inbox/fifo.mp4 ) &
fifo_writer=$!
sleep 0.2; cat inbox/fifo.mp4 > /dev/null; wait "$fifo_writer" || true
sleep 0.5
assert_eq "$(jobs_for .hidden)" 0 "a hidden file:"
assert_eq "$(jobs_for fifo.mp4)" 0 "a FIFO:"
assert_eq "$(jobs_for folder.mp4)" 0 "a folder:"
wait_for 30 sql_ge "$db" "select count(*) from jobs where state='succeeded'" 4
run=$(sqlite3 "$db" "select run_id from jobs where params like '%slow.mp4%'")
assert_eq "$(tr -d ' ' < "$WORK/root/runs/$run/size/size.txt")" 4 "the job saw the whole file:"
# A restart rescans the folder: the same files are not queued again.
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
start_server "$WORK/root" --inbox "$WORK/inbox" --inbox-pipeline "$WORK/p.yaml"
sleep 1
assert_eq "$(sqlite3 "$db" "select count(*) from jobs")" 4 "jobs after a restart:"
# Bad set-up is refused before anything starts.
capture ns serve --root "$WORK/r2" --listen 127.0.0.1:0 --inbox "$WORK/inbox"
assert_eq "$rc" 2 "--inbox without --inbox-pipeline:"
capture ns serve --root "$WORK/r3" --listen 127.0.0.1:0 --inbox "$WORK/nope" --inbox-pipeline "$WORK/p.yaml"
assert_eq "$rc" 2 "a missing inbox:"
capture ns serve --root "$WORK/r4" --listen 127.0.0.1:0 --inbox "$WORK/inbox" --inbox-pipeline "$WORK/p.yaml" --inbox-param clip
assert_eq "$rc" 2 "an inbox param the pipeline lacks:"; assert_contains "$out" "no param 'clip'" "inbox param:"
echo "PASS"

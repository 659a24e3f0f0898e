# `nightshift logs`: streams logs of any size in small memory, --tail, a log
# the attempt never wrote reads as empty, and -f returns once the run's engine
# is gone instead of following forever.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: talk
steps:
  talk:
    shell: bash
    script: |
      printf 'line %s\n' 1 2 3 4 5
YAML
ns run p.yaml --root root --plain > log.txt 2>&1 || fail "run: $(cat log.txt)"
run=$(latest_run root)
logs=root/runs/$run/_logs

# Nothing on stderr: the .err log may not exist, which is not an error.
rm -f "$logs/talk.1.err"
capture ns logs "$run" talk --root root
assert_eq "$rc" 0 "logs with no .err file: $out"
assert_contains "$out" "line 5"
capture ns logs "$run" talk --root root --stream err
assert_eq "$rc" 0 "only the missing stream: $out"
assert_eq "$out" ""

# Something other than a file at a log's path is reported, not read (a FIFO
# would block forever).
mkfifo "$logs/talk.1.err"
capture timeout 10 "$NIGHTSHIFT" logs "$run" talk --root root
assert_eq "$rc" 3 "a FIFO at a log's path (124: logs hung): $out"
assert_contains "$out" "not a regular file"
rm -f "$logs/talk.1.err"

# --tail N: the last N lines, with or without a final newline.
assert_eq "$(ns logs "$run" talk --root root --stream out --tail 2)" $'line 4\nline 5'
printf 'a\nb\nno newline' > "$logs/talk.1.out"
assert_eq "$(ns logs "$run" talk --root root --stream out --tail 2)" $'b\nno newline'
assert_eq "$(ns logs "$run" talk --root root --stream out --tail 10)" $'a\nb\nno newline'
assert_eq "$(ns logs "$run" talk --root root --stream out --tail 0)" ""

# A 100 MB log prints whole, in a few MiB of memory; --tail too. The bound is
# relative to the same command on a 5-line log, so a sanitizer build (whose
# runtime alone takes tens of MiB) is held to the same 32 MiB of growth.
/usr/bin/time -f %M -o rss.txt "$NIGHTSHIFT" logs "$run" talk --root root --stream out > /dev/null
base_kb=$(cat rss.txt)
head -n 1800000 < <(yes "a log line that is neither short nor long, as they come") > "$logs/talk.1.out"
echo "the very end" >> "$logs/talk.1.out"
size=$(stat -c %s "$logs/talk.1.out")
/usr/bin/time -f %M -o rss.txt "$NIGHTSHIFT" logs "$run" talk --root root --stream out > copy.txt
cmp -s copy.txt "$logs/talk.1.out" || fail "logs did not print the log byte for byte"
rss_kb=$(cat rss.txt)
(( rss_kb < base_kb + 32 * 1024 )) || fail "logs of a $size-byte log used ${rss_kb} KiB (a small log: ${base_kb} KiB)"
/usr/bin/time -f %M -o rss.txt "$NIGHTSHIFT" logs "$run" talk --root root --stream out --tail 1 > tail.txt
assert_eq "$(cat tail.txt)" "the very end"
rss_kb=$(cat rss.txt)
(( rss_kb < base_kb + 32 * 1024 )) || fail "logs --tail of a $size-byte log used ${rss_kb} KiB (a small log: ${base_kb} KiB)"
rm -f copy.txt "$logs/talk.1.out"

# -f on a run whose engine was killed: its task is still recorded running, but
# nobody will ever record the end. logs -f prints what is there and returns.
marker="ns-logs-$$"
cat > slow.yaml <<YAML
name: slow
steps:
  slow:
    shell: bash
    script: |
      echo started
      exec -a $marker sleep 300
YAML
"$NIGHTSHIFT" run slow.yaml --root root2 --plain > log2.txt 2>&1 &
engine=$!
wait_for 20 pgrep -f "$marker" >/dev/null
task=$(pgrep -f "$marker")
trap 'kill $task 2>/dev/null || true; rm -rf "$WORK"' EXIT
run2=$(latest_run root2)
wait_for 10 grep -q started "root2/runs/$run2/_logs/slow.1.out"
kill -9 $engine
wait $engine 2>/dev/null || true
assert_eq "$(sqlite3 root2/nightshift.db "select status from attempts where run_id='$run2'")" "running"
capture timeout 20 "$NIGHTSHIFT" logs "$run2" slow --root root2 -f
assert_eq "$rc" 0 "logs -f of a run whose engine died (124: it never returned): $out"
assert_contains "$out" "started"

# The same with an identity whose pid now names another process (this shell,
# with another start time): that process is not the engine.
sqlite3 root2/nightshift.db "update runs set owner='$(hostname):$$:1:$(cat /proc/sys/kernel/random/boot_id)' where run_id='$run2'"
capture timeout 20 "$NIGHTSHIFT" logs "$run2" slow --root root2 -f --tail 1
assert_eq "$rc" 0 "logs -f with a reused pid (124: it never returned): $out"
assert_eq "$out" "started"
echo PASS

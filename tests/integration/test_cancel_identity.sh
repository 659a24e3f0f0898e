# `nightshift cancel` signals a run's engine only when its recorded identity
# (pid + start time + boot + host) still matches: a pid reused by an unrelated
# process is never hit, and `runs`/`show` call such a run "stopped".
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<YAML
name: quick
steps:
  hello:
    run: echo hi
YAML
ns run p.yaml --root root --plain > log.txt 2>&1 || fail "run: $(cat log.txt)"
run=$(latest_run root)
host=$(hostname)
boot=$(cat /proc/sys/kernel/random/boot_id)

# An unrelated process that now holds the pid the run recorded.
sleep 1000 &
victim=$!
trap 'kill $victim 2>/dev/null || true; rm -rf "$WORK"' EXIT
start=$(awk '{print $22}' "/proc/$victim/stat")
set_owner() {  # status pid host owner
  sqlite3 root/nightshift.db "update runs set status='$1', pid=$2, host='$3', owner='$4', finished_at=0 where run_id='$run'"
}
alive() { kill -0 "$victim" 2>/dev/null; }

# Same host and boot, the victim's pid but another start time: the engine is gone.
set_owner running "$victim" "$host" "$host:$victim:$((start + 1)):$boot"
capture ns runs --root root
assert_contains "$out" "stopped" "runs"
capture ns show "$run" --root root
assert_contains "$out" "status    stopped" "show"
capture ns show "$run" --root root --json
assert_contains "$out" '"status": "stopped"' "show --json"
capture ns cancel "$run" --root root
assert_eq "$rc" 0 "cancel of a run whose engine is gone: $out"
assert_contains "$out" "engine is gone"
sleep 0.2
alive || fail "cancel killed an unrelated process that reused the engine's pid"
assert_eq "$(sqlite3 root/nightshift.db "select status from runs where run_id='$run'")" "cancelled"

# The engine on another host: nothing is signalled, the run stays running.
set_owner running "$victim" other-host "other-host:$victim:$start:$boot"
capture ns cancel "$run" --root root
assert_eq "$rc" 2 "cancel of a run on another host: $out"
assert_contains "$out" "on host other-host"
capture ns runs --root root
assert_contains "$out" "running" "a run on another host cannot be judged from here"
sleep 0.2
alive || fail "cancel signalled a process for a run on another host"
assert_eq "$(sqlite3 root/nightshift.db "select status from runs where run_id='$run'")" "running"

# Same host, another boot: the machine rebooted, the engine is gone.
set_owner running "$victim" "$host" "$host:$victim:$start:00000000-0000-0000-0000-000000000000"
capture ns cancel "$run" --root root
assert_eq "$rc" 0 "cancel after a reboot: $out"
assert_contains "$out" "engine is gone"
alive || fail "cancel signalled a process recorded before a reboot"

# A run written before identities were recorded (no owner): a live pid cannot
# be proven to be the engine, so nothing is signalled.
set_owner running "$victim" "$host" ""
capture ns cancel "$run" --root root
assert_eq "$rc" 2 "cancel of a run without an identity: $out"
assert_contains "$out" "nothing was signalled"
sleep 0.2
alive || fail "cancel signalled a bare pid"
# ... and an exited one is gone.
bash -c 'exit 0' & dead=$!; wait $dead
set_owner running "$dead" "$host" ""
capture ns runs --root root
assert_contains "$out" "stopped" "a run without identity whose pid is free"
echo PASS

# `runs`, `show` and `logs` read a root on read-only media (here a read-only
# bind mount): a cleanly closed database, one left with its -wal/-shm by a
# killed engine, and one with an older schema.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: snap
steps:
  hello:
    shell: bash
    script: echo "hello from the snapshot"; echo result > out.txt
YAML
ns run p.yaml --root root --plain > log.txt 2>&1 || fail "run: $(cat log.txt)"
run=$(latest_run root)

mkdir mnt
# Unmount before removing $WORK, or rm would walk into the mount.
trap 'umount mnt 2>/dev/null || true; rm -rf "$WORK"' EXIT
if ! mount --bind root mnt 2>/dev/null; then
  echo "SKIP: mount --bind is not permitted here (needs root, CAP_SYS_ADMIN)"
  exit 0
fi
if ! mount -o remount,bind,ro mnt 2>/dev/null; then
  echo "SKIP: cannot remount the bind mount read-only"
  exit 0
fi
touch mnt/probe 2>/dev/null && fail "the mount should be read-only"
assert_no_file mnt/nightshift.db-shm

check_readable() {  # what
  capture ns runs --root mnt
  assert_eq "$rc" 0 "runs on a read-only root ($1): $out"
  assert_contains "$out" "$run"
  assert_contains "$out" "succeeded"
  capture ns show "$run" --root mnt
  assert_eq "$rc" 0 "show on a read-only root ($1): $out"
  assert_contains "$out" "hello"
  capture ns logs "$run" hello --root mnt
  assert_eq "$rc" 0 "logs on a read-only root ($1): $out"
  assert_contains "$out" "hello from the snapshot"
}
check_readable "clean database"
umount mnt

# An older schema (1: no runs.owner): read as far as it goes, never migrated.
sqlite3 root/nightshift.db "ALTER TABLE runs DROP COLUMN owner; PRAGMA user_version=1;"
mount --bind root mnt && mount -o remount,bind,ro mnt
check_readable "schema 1"
umount mnt
assert_eq "$(sqlite3 root/nightshift.db "PRAGMA user_version")" "1" "a read-only command migrated"
ns runs --root root > /dev/null  # on a writable root too: read-only, no migration
assert_eq "$(sqlite3 root/nightshift.db "PRAGMA user_version")" "1" "runs migrated a writable root"

# A snapshot taken while an engine ran: the latest state is in the -wal file.
cat > slow.yaml <<'YAML'
name: slow
steps:
  slow:
    shell: bash
    script: echo "still at it"; exec sleep 300
YAML
"$NIGHTSHIFT" run slow.yaml --root root2 --plain > log2.txt 2>&1 &
engine=$!
wait_for 20 bash -c "ls root2/runs/*/_logs/slow.1.out >/dev/null 2>&1 && grep -q still root2/runs/*/_logs/slow.1.out"
run2=$(latest_run root2)
kill -9 $engine
wait $engine 2>/dev/null || true
assert_file root2/nightshift.db-wal
mount --bind root2 mnt && mount -o remount,bind,ro mnt
capture ns runs --root mnt
assert_eq "$rc" 0 "runs on a read-only root with a -wal: $out"
assert_contains "$out" "$run2"
assert_contains "$out" "stopped"
capture ns logs "$run2" slow --root mnt --stream out
assert_eq "$rc" 0 "logs on a read-only root with a -wal: $out"
assert_eq "$out" "still at it"
umount mnt
echo PASS

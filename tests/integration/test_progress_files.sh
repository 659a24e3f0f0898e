# On a terminal, `nightshift run` shows each step's latest progress line. The
# redraw thread must survive hostile progress files: a FIFO at the path must
# not hang the engine, and a huge file must not be re-read on every redraw.
source "$(dirname "$0")/lib.sh"
command -v script >/dev/null || { echo "SKIP: no script(1) to give the engine a terminal"; exit 0; }
# Runs the engine on a pseudo-terminal (so it draws bars); the screen goes to $2.
run_on_tty() {  # pipeline screen-file
  timeout 60 script -qec "'$NIGHTSHIFT' run '$1' --root root" /dev/null > "$2"
}

# A FIFO where the progress file should be: nobody ever writes to it.
cat > fifo.yaml <<'YAML'
name: fifo
steps:
  planted:
    shell: bash
    script: |
      rm -f "$NIGHTSHIFT_PROGRESS_FILE"
      mkfifo "$NIGHTSHIFT_PROGRESS_FILE"
      sleep 1
  after:
    needs: [planted]
    run: echo fine
YAML
capture run_on_tty fifo.yaml fifo.screen
assert_eq "$rc" 0 "a FIFO progress file (124: the engine hung): $(tail -c 600 fifo.screen)"
assert_contains "$(cat fifo.screen)" "succeeded;"

# Three million lines at once, then a last line: redraws read only what is
# new (and at most a bounded tail of it), yet show the latest line.
head -n 3000000 < <(yes "progress 0.5 working through a very long list of frames") > big.progress
cat > big.yaml <<YAML
name: big
steps:
  chatty:
    shell: bash
    script: |
      cat "$WORK/big.progress" >> "\$NIGHTSHIFT_PROGRESS_FILE"
      echo "progress 0.75 nearly there" >> "\$NIGHTSHIFT_PROGRESS_FILE"
      sleep 4
YAML
/usr/bin/time -f "%U %S" -o cpu.txt bash -c "$(declare -f run_on_tty); NIGHTSHIFT='$NIGHTSHIFT' run_on_tty big.yaml big.screen" \
  || fail "run: $(tail -c 600 big.screen)"
cpu_ms=$(awk '{printf "%d", ($1 + $2) * 1000}' cpu.txt)
# Copying the file costs about 0.1 s; re-reading it at every redraw cost over 1 s.
(( cpu_ms < 600 )) || fail "a 3-million-line progress file cost ${cpu_ms} ms of CPU over a 4 s task"
assert_contains "$(cat big.screen)" "| 0.75 nearly there" "the latest progress line is shown"
echo PASS

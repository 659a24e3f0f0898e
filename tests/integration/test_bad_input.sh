# Bad input: one clear message, exit 2, no run folder for a run that never started.
source "$(dirname "$0")/lib.sh"
expect_bad() {  # description, expected text, command...
  local what=$1 text=$2; shift 2
  capture "$@"
  assert_eq "$rc" 2 "$what: $out"
  assert_contains "$out" "$text" "$what"
  [[ ! -d root/runs ]] || [[ -z "$(ls root/runs)" ]] || fail "$what left a run folder"
}
printf 'name: m\nsteps:\n  a:\n    run: echo\n   bad: x\n' > malformed.yaml
expect_bad "malformed YAML" "malformed.yaml:5:4: error: malformed YAML" ns run malformed.yaml --root root
printf 'name: c\nsteps:\n  a:\n    needs: [b]\n    run: echo\n  b:\n    needs: [a]\n    run: echo\n' > cycle.yaml
expect_bad "cycle" "cycle in needs: a -> b -> a" ns run cycle.yaml --root root
printf 'name: x\nsteps:\n  ../x:\n    run: echo\n' > escape.yaml
expect_bad "step id escaping the run folder" "escape.yaml:3:3: error: invalid step id '../x'" ns run escape.yaml --root root
printf 'name: x\nsteps:\n  a:\n    run: no-such-program-xyz --flag\n' > missing.yaml
expect_bad "missing program" "step 'a': program 'no-such-program-xyz' not found on PATH" ns run missing.yaml --root root
printf 'name: x\nparams:\n  n: {type: int}\nsteps:\n  a:\n    run: echo ${params.n}\n' > typed.yaml
expect_bad "wrong param type" "-p n: expected an integer, got 'many'" ns run typed.yaml --root root -p n=many
expect_bad "unknown param" "no param 'nn' (did you mean 'n'?)" ns run typed.yaml --root root -p nn=1
printf 'name: x\nsteps:\n  a:\n    run: echo\n    resources: {cpus: 64}\n' > big.yaml
expect_bad "too many cpus" "asks for 64.0 cpus but the executor has" ns run big.yaml --root root
expect_bad "validate" "error: unknown key" bash -c "printf 'name: x\nstepz: {}\n' > v.yaml && $NIGHTSHIFT validate v.yaml"
expect_bad "missing file" "cannot read nope.yaml" ns run nope.yaml --root root
capture ns run typed.yaml --root /dev/null/sub -p n=1
assert_eq "$rc" 2 "unwritable root: $out"
assert_contains "$out" "cannot write to root folder /dev/null/sub"
capture ns run typed.yaml --root root --resume 20990101T000000Z-abcdef -p n=1
assert_eq "$rc" 2 "$out"
assert_contains "$out" "no such run"
capture ns bogus-command
assert_eq "$rc" 2
capture ns validate typed.yaml
assert_eq "$rc" 0
# A templated program that turns out to be missing fails the task, not the engine.
printf 'name: x\nparams:\n  prog: {type: string, default: nope-xyz}\nsteps:\n  a:\n    run: ${params.prog}\n' > late.yaml
capture ns run late.yaml --root root2 --plain
assert_eq "$rc" 1 "$out"
assert_contains "$out" "program 'nope-xyz' not found on PATH"
echo PASS

# The model registry (docs/models.md): push, dedupe, versions, @latest, pinning in
# run.json and the fingerprint, read-only staging, corruption caught before the
# task starts, rm refused while a run that has not finished uses the version,
# concurrent pushes.
source "$(dirname "$0")/lib.sh"
mkdir -p m1/sub
echo "weights one" > m1/w.bin
head -c 200000 /dev/urandom > m1/sub/big.bin

# push, then the same content again: a no-op that says so
capture ns model push players m1 --root root
assert_eq "$rc" 0 "push: $out"
assert_contains "$out" "pushed players@1"
capture ns model push players m1 --root root
assert_eq "$rc" 0
assert_contains "$out" "players@1 already holds this content"
assert_eq "$(ns model list players --root root --json | jq length)" 1
# files are read-only copies, the manifest lists their sha256
[[ -w root/models/players/1/w.bin && $(id -u) -ne 0 ]] && fail "registry file is writable"
assert_eq "$(jq -r '.files[] | select(.path=="w.bin") | .sha256' root/models/players/1.json)" \
  "$(sha256sum m1/w.bin | cut -d' ' -f1)"
echo "weights two" > m1/w.bin
capture ns model push players m1 --root root --meta input=320x320
assert_contains "$out" "pushed players@2"
# a version number is never given twice
capture ns model push players m1 --root root --version 2
assert_contains "$out" "already holds this content"
echo "weights three" > m1/w.bin
capture ns model push players m1 --root root --version 2
assert_eq "$rc" 2 "explicit version reused: $out"
assert_contains "$out" "players@2 exists; a version number is never given twice"
# bad input: a FIFO, a device, a missing path, a bad name
mkfifo fifo
capture ns model push players fifo --root root
assert_eq "$rc" 2; assert_contains "$out" "not a file or a folder"
capture ns model push 'bad/name' m1 --root root
assert_eq "$rc" 2; assert_contains "$out" "must match"
capture ns model show players@9 --root root
assert_eq "$rc" 2; assert_contains "$out" "players@9 is not in the registry"

cat > p.yaml <<'YAML'
name: uses-model
params:
  model: {type: string, default: "players@latest"}
  hold: {type: int, default: 0}
steps:
  infer:
    models: {players: "${params.model}"}
    shell: bash
    script: |
      cat "$NIGHTSHIFT_MODEL_DIR_PLAYERS/w.bin" > used.txt
      echo "$NIGHTSHIFT_MODEL_META_PLAYERS" > meta.json
      if echo tamper >> "$NIGHTSHIFT_MODEL_DIR_PLAYERS/w.bin" 2>/dev/null; then echo written > tamper.txt; else echo refused > tamper.txt; fi
      sleep "$NIGHTSHIFT_PARAM_HOLD"
  after:
    needs: [infer]
    run: [sh, -c, 'cp ${models.players}/w.bin copy.bin']
    models: {players: "${params.model}"}
YAML
capture ns run p.yaml --root root
assert_eq "$rc" 0 "run: $out"
run=$(latest_run root)
d=root/runs/$run
assert_eq "$(cat $d/infer/used.txt)" "weights two" "@latest is the newest version"
assert_eq "$(jq -r .input $d/infer/meta.json)" "320x320" "meta reaches the step"
assert_eq "$(jq -r '.models.infer.players.ref' $d/run.json)" "players@2" "pinned in run.json"
assert_eq "$(jq -r '.models.infer.players.requested' $d/run.json)" "players@latest"
if [[ $(id -u) -eq 0 ]]; then
  assert_eq "$(cat $d/infer/tamper.txt)" "refused" "a step cannot change a registered model"
fi
ns model verify players@2 --root root >/dev/null || fail "the model changed under a step"
cmp -s $d/after/copy.bin root/models/players/2/w.bin || fail "\${models.players} is the version's folder"
fp1=$(jq -r '.steps[] | select(.step=="infer") | .fingerprint' $d/run.json)

# another version changes the fingerprint; pinning an older one by number works
capture ns run p.yaml --root root -p model=players@1
assert_eq "$rc" 0 "$out"
d1=root/runs/$(latest_run root)
assert_eq "$(cat $d1/infer/used.txt)" "weights one"
fp2=$(jq -r '.steps[] | select(.step=="infer") | .fingerprint' $d1/run.json)
[[ "$fp1" != "$fp2" ]] || fail "the model's version is not in the fingerprint"

# a resumed run keeps its pinned version even when @latest moved on
echo "weights four" > m1/w.bin
ns model push players m1 --root root >/dev/null   # players@3
capture ns run p.yaml --root root --resume "$run"
assert_eq "$rc" 0 "$out"
assert_eq "$(jq -r '.models.infer.players.ref' $d/run.json)" "players@2" "resume keeps the pin"
assert_contains "$out" "cached"

# corruption is named before the task starts
chmod u+w root/models/players/3 root/models/players/3/w.bin
echo "bit rot" >> root/models/players/3/w.bin
capture ns run p.yaml --root root
assert_eq "$rc" 2 "corrupted model: $out"
assert_contains "$out" "model players@3 is corrupted: $PWD/root/models/players/3/w.bin has sha256"
capture ns model verify players@3 --root root
assert_eq "$rc" 1
# ... also when it happens after the run started: the attempt fails, naming the file
cat > late.yaml <<'YAML'
name: late
steps:
  wait:
    run: [sleep, "1"]
  infer:
    needs: [wait]
    models: {players: players@1}
    run: [cat, "${models.players}/w.bin"]
    retry: {max_attempts: 1}
YAML
( sleep 0.5; chmod u+w root/models/players/1/w.bin; echo rot >> root/models/players/1/w.bin ) &
capture ns run late.yaml --root root
wait
assert_eq "$rc" 1 "late corruption: $out"
assert_contains "$out" "model players@1 is corrupted"

# rm: refused while a run that has not finished uses it, then allowed
ns run p.yaml --root root -p model=players@2 -p hold=30 --plain > hold.log 2>&1 &
holder=$!
wait_for 10 grep -q "step infer: started" hold.log
capture ns model rm players@2 --root root
assert_eq "$rc" 2 "rm while used: $out"
assert_contains "$out" "is used by run"
ns cancel "$(latest_run root)" --root root >/dev/null
wait $holder || true
capture ns model rm players@2 --root root
assert_eq "$rc" 0 "rm after the run ended: $out"
assert_no_file root/models/players/2
capture ns run p.yaml --root root -p model=players@2
assert_eq "$rc" 2; assert_contains "$out" "players@2 was removed"
echo "weights five" > m1/w.bin
capture ns model push players m1 --root root
assert_contains "$out" "pushed players@4" "numbers are never reused"

# concurrent pushes of one name: distinct versions, no lost push
for i in 1 2 3 4 5 6; do mkdir -p c$i; echo "content $i" > c$i/w.bin; done
for i in 1 2 3 4 5 6; do ns model push racer c$i --root root > push$i.log 2>&1 & done
wait
assert_eq "$(ns model list racer --root root --json | jq '[.[].version] | sort | join(",")' -r)" "1,2,3,4,5,6"
assert_eq "$(ls root/models/.incoming | wc -l)" 0 "no leftovers of pushes"
echo "ok"

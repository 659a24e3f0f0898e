# Two runs of one pipeline at once under one root; resume with a changed param
# recomputes exactly the tasks it affects.
source "$(dirname "$0")/lib.sh"
cat > p.yaml <<'YAML'
name: twice
params:
  greeting: {type: string, default: hello}
  count: {type: int, default: 8}
steps:
  gen:
    foreach: [a, b, c, d, e, f, g, h]
    run: sh -c 'sleep 0.1; echo $0 > v.txt' ${item}
  greet:
    run: sh -c 'echo "$0" > g.txt' ${params.greeting}
  join:
    needs: [gen, greet]
    env: {G: "${steps.gen.output}", H: "${steps.greet.output}"}
    shell: bash
    script: cat "$H/g.txt" "$G"/*/v.txt > all.txt
YAML
"$NIGHTSHIFT" run p.yaml --root root --plain > a.log 2>&1 &
p1=$!
"$NIGHTSHIFT" run p.yaml --root root --plain > b.log 2>&1 &
p2=$!
wait $p1 || fail "first run: $(cat a.log)"
wait $p2 || fail "second run: $(cat b.log)"
assert_eq "$(ls root/runs | wc -l)" "2"
for r in $(ls root/runs); do
  assert_eq "$(wc -l < root/runs/$r/join/all.txt)" "9"
done
run=$(latest_run root)
capture ns run p.yaml --root root --resume "$run" -p greeting='hi; touch pwned $(touch pwned2)' --plain
assert_eq "$rc" 0 "$out"
assert_contains "$out" "step gen: succeeded (0 done, 8 cached"
assert_contains "$out" "step greet: succeeded (1 done, 0 cached"
assert_contains "$out" "step join: succeeded (1 done, 0 cached"
assert_eq "$(head -n1 root/runs/$run/join/all.txt)" 'hi; touch pwned $(touch pwned2)'
assert_no_file root/runs/$run/greet/pwned
assert_no_file pwned
assert_no_file pwned2
echo PASS

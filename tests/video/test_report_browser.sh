# The match report as a person sees it: the example pipeline on vtest.avi, then
# the report in Debian's chromium (playwright-core from web/): the data-quality
# box, the inline video, a track row that seeks to its first appearance,
# sorting, the heatmap's scale, no JavaScript errors. The screenshot is kept in
# test-artifacts/report/ beside the test log.
source "$(dirname "$0")/../integration/lib.sh"
REPO_DIR=$(cd "$(dirname "$0")/../.." && pwd)
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi
[[ -f $VTEST ]] || { echo "SKIP: $VTEST is missing (apt-get install opencv-doc)"; exit 0; }
[[ -d "$REPO_DIR/web/node_modules/playwright-core" ]] || { echo "SKIP: web/node_modules is missing (cd web && npm ci)"; exit 0; }
[[ -x /usr/bin/chromium ]] || { echo "SKIP: /usr/bin/chromium is missing (apt-get install chromium)"; exit 0; }
shots=${NS_TEST_ARTIFACTS:-$WORK/artifacts}/report
mkdir -p "$shots"
capture ns run "$REPO_DIR/examples/match-analysis.yaml" --root root -p video=$VTEST --plain
assert_eq "$rc" 0 "the example: ${out: -2000}"
report=$PWD/root/runs/$(latest_run root)/report/index.html
node "$(dirname "$0")/report_browser.mjs" "$report" "$shots/report.png" || fail "the report failed in the browser (screenshot in $shots)"
echo "ok"

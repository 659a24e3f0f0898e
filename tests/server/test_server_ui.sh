#!/usr/bin/env bash
# The web UI in a real browser: playwright-core (web/node_modules, from
# `npm ci`) drives Debian's chromium: the token form, a job submitted from the
# UI, its DAG turning green live, the Gantt, a task's log, an output opened
# inline (an image and a text file), the queue and the runs pages.
# Screenshots are kept in $NS_TEST_ARTIFACTS/server-ui (beside the test log).
source "$(dirname "$0")/lib_server.sh"
if [[ ! -d "$REPO_DIR/web/node_modules/playwright-core" ]]; then
  echo "SKIP: web/node_modules is missing (run 'cd web && npm ci'; scripts/test does)"; exit 0
fi
if [[ ! -x /usr/bin/chromium ]]; then
  echo "SKIP: /usr/bin/chromium is missing (apt-get install chromium; scripts/setup does)"; exit 0
fi
shots=${NS_TEST_ARTIFACTS:-$WORK/artifacts}/server-ui
rm -rf "$shots"; mkdir -p "$shots"
cat > picture.yaml <<'YAML'
name: picture
params:
  sides: {type: list, default: [left, right]}
steps:
  draw:
    foreach: ${params.sides}
    env: {SIDE: "${item}"}
    shell: bash
    script: |
      python3 - "$SIDE" <<'PY'
      import struct, sys, zlib
      w, h = 64, 32
      red = sys.argv[1] == "left"
      rows = b"".join(b"\x00" + bytes((200, 40, 40) if red else (40, 40, 200)) * w for _ in range(h))
      chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
      png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
      open("side.png", "wb").write(png)
      PY
      echo "drew the $SIDE side" | tee note.txt
  summary:
    needs: [draw]
    run: sh -c 'ls $0 > sides.txt; sleep 1' ${steps.draw.output}
YAML
start_server "$WORK/root"
node "$SERVER_TESTS_DIR/e2e.mjs" "$URL" "$TOKEN" "$WORK/picture.yaml" "$shots" || fail "the browser test failed (screenshots in $shots)"
ls "$shots"
echo "PASS"

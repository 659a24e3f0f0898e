#!/usr/bin/env node
// End-to-end browser test of the web UI of `nightshift serve` (docs/server.md).
//
//   node tests/server/e2e.mjs BASE_URL TOKEN PIPELINE_PATH SCREENSHOT_DIR
//
// Needs playwright-core from web/node_modules (`cd web && npm ci`) and
// /usr/bin/chromium. With a server already listening on BASE_URL, it: checks that
// the site without a token asks for one; opens BASE_URL/#token=TOKEN; submits
// PIPELINE_PATH (no params) on #/submit; follows the job's run link; waits until
// every step is succeeded; checks the Gantt has a bar and a task's log page loads;
// opens a .txt or .json output of the first step inline and compares it with the
// API's bytes; when the run has draw/left/side.png (the pipeline of
// test_server_ui.sh), shows it as an image of its real width; shows the queue and
// the runs list. Screenshots go to SCREENSHOT_DIR (login.png, run.png,
// outputs.png, image.png, queue.png, runs.png; failure.png on failure).
// Prints `ok - ...` per check; exits 1 on the first failure, 2 on bad usage.

import {createRequire} from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import {isDeepStrictEqual} from 'node:util';

const [BASE_ARG, TOKEN, PIPELINE, SHOTS] = process.argv.slice(2);
if (!BASE_ARG || !TOKEN || !PIPELINE || !SHOTS) {
  console.error('usage: node tests/server/e2e.mjs BASE_URL TOKEN PIPELINE_PATH SCREENSHOT_DIR');
  process.exit(2);
}
const BASE = BASE_ARG.replace(/\/+$/, '');
fs.mkdirSync(SHOTS, {recursive: true});

const require = createRequire(new URL('../../web/package.json', import.meta.url));
let chromium;
try {
  ({chromium} = require('playwright-core'));
} catch (e) {
  console.error('e2e: cannot load playwright-core from web/node_modules (run `cd web && npm ci`):', e.message);
  process.exit(2);
}

const WAIT = 15000;
const RUN_WAIT = 60000;
const pageErrors = [];
let current = null; // the page a failure screenshot is taken of

function ok(msg) {
  console.log(`ok - ${msg}`);
}

class CheckFailed extends Error {}
function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

const shot = (page, name) => page.screenshot({path: path.join(SHOTS, name), fullPage: false});

// Same-document navigation to a hash route.
async function nav(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

async function api(p) {
  const res = await fetch(BASE + p, {headers: {Authorization: `Bearer ${TOKEN}`}});
  if (!res.ok) throw new CheckFailed(`GET ${p}: HTTP ${res.status}`);
  return res;
}

function watch(page) {
  page.on('pageerror', (e) => pageErrors.push(`${e.message}`));
  page.setDefaultTimeout(WAIT);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
    headless: true,
  });
  try {
    // 1. Without a token: the token form.
    {
      const ctx = await browser.newContext({viewport: {width: 1400, height: 900}});
      const page = await ctx.newPage();
      current = page;
      watch(page);
      await page.goto(`${BASE}/`);
      await page.locator('[data-testid="login"]').waitFor();
      await shot(page, 'login.png');
      ok('without a token the UI shows the token form');
      await page.fill('#token-input', TOKEN);
      await page.click('#token-save');
      await page.locator('#runs-state, [data-testid="login"] .error-text').first().waitFor();
      check(await page.locator('#runs-state').count() === 1, 'the server rejected TOKEN (the token form came back)');
      ok('the token pasted in the form is accepted');
      await ctx.close();
    }

    const ctx = await browser.newContext({viewport: {width: 1400, height: 900}, acceptDownloads: true});
    const page = await ctx.newPage();
    current = page;
    watch(page);

    // 2. The token in the fragment is stored and stripped.
    await page.goto(`${BASE}/#token=${encodeURIComponent(TOKEN)}`);
    await page.waitForFunction(() => !location.hash.includes('token='));
    const stored = await page.evaluate(() => localStorage.getItem('nightshift-token'));
    check(stored === TOKEN, 'the token from #token= is not in localStorage');
    ok('#token= is stored in localStorage and removed from the address');
    await page.locator('#conn[data-state="live"]').waitFor();
    ok('the event stream is live');

    // 3. Submit the pipeline.
    await nav(page, '#/submit');
    await page.locator('#submit-pipeline').fill(PIPELINE);
    await page.locator('#submit-params').fill('');
    await page.locator('#submit-button').click();
    const jobEl = page.locator('[data-testid="submitted-job"]');
    await jobEl.waitFor();
    const jobId = (await jobEl.textContent()).trim();
    check(jobId, 'no job id shown after submitting');
    ok(`submitted ${PIPELINE}: job ${jobId}`);

    const runLink = page.locator('[data-testid="submitted-run"]');
    await runLink.waitFor({timeout: RUN_WAIT});
    await runLink.click();
    await page.waitForFunction(() => /^#\/runs\/[^/?]+/.test(location.hash));
    const runId = await page.evaluate(() => decodeURIComponent(location.hash.split('/')[2].split('?')[0]));
    ok(`the job got run ${runId} and its link opens the run page`);

    // 4. The DAG goes all green.
    await page.locator('[data-step]').first().waitFor({timeout: RUN_WAIT});
    const verdict = await page.waitForFunction(() => {
      const steps = [...document.querySelectorAll('[data-step]')];
      if (!steps.length) return false;
      const bad = steps.find((e) => ['failed', 'cancelled', 'skipped'].includes(e.dataset.status));
      if (bad) return `step ${bad.dataset.step} is ${bad.dataset.status}`;
      return steps.every((e) => e.dataset.status === 'succeeded') ? 'ok' : false;
    }, null, {timeout: RUN_WAIT, polling: 250}).then((h) => h.jsonValue());
    check(verdict === 'ok', `run ${runId}: ${verdict}`);
    const nSteps = await page.locator('[data-step]').count();
    ok(`all ${nSteps} step(s) of the DAG are succeeded`);

    await page.waitForFunction(() => document.querySelectorAll('[data-testid="gantt"] [data-attempt]').length > 0);
    const bars = await page.locator('[data-testid="gantt"] [data-attempt]').count();
    await shot(page, 'run.png');
    ok(`the Gantt shows ${bars} attempt bar(s)`);

    // A task's log page loads (no error).
    const taskLink = page.locator('[data-testid="tasks"] tbody tr td:first-child a').first();
    await taskLink.waitFor();
    const taskId = (await taskLink.textContent()).trim();
    await taskLink.click();
    // "no output": the attempt wrote nothing on stdout (the log file is made on the first byte).
    await page.locator('[data-testid="log-status"]', {hasText: /last 500 lines|no output/}).waitFor();
    check(await page.locator('[data-testid="log"] .error-banner').count() === 0, `the log of ${taskId} shows an error`);
    ok(`the log page of task ${taskId} loads`);

    // 5. Outputs: first step folder, then a .txt or .json file shown inline.
    await nav(page, `#/runs/${encodeURIComponent(runId)}/files/`);
    const outputs = page.locator('[data-testid="outputs"]');
    const stepRow = outputs.locator('tr[data-step-folder]').first();
    await stepRow.waitFor();
    const stepName = await stepRow.getAttribute('data-entry');
    await stepRow.locator('a').first().click();
    await page.locator(`.crumbs [data-crumb="${stepName}"]`).waitFor();
    const segs = [stepName];
    let fileName = null;
    for (let depth = 0; depth < 4 && !fileName; depth++) {
      await outputs.locator('tr[data-entry], .empty').first().waitFor();
      const files = await outputs.locator('tr[data-type="file"]').evaluateAll((rows) => rows.map((r) => r.dataset.entry));
      const wanted = files.filter((n) => /\.(txt|json)$/i.test(n));
      fileName = wanted.find((n) => !n.startsWith('_')) || wanted[0] || null;
      if (fileName) break;
      const dirs = await outputs.locator('tr[data-type="dir"]').evaluateAll((rows) => rows.map((r) => r.dataset.entry));
      check(dirs.length, `no .txt or .json file under ${segs.join('/')}`);
      segs.push(dirs[0]);
      await outputs.locator(`tr[data-entry="${dirs[0]}"] a`).first().click();
      await page.locator(`.crumbs [data-crumb="${dirs[0]}"]`).waitFor();
    }
    check(fileName, `no .txt or .json file in the first step folder ${stepName}`);
    await outputs.locator(`tr[data-entry="${fileName}"] a`).first().click();
    const preview = outputs.locator('[data-testid="preview-text"]');
    await preview.waitFor();
    const shown = await preview.textContent();
    const rel = [...segs, fileName];
    const raw = await (await api(`/api/v1/runs/${encodeURIComponent(runId)}/artifacts/${rel.map(encodeURIComponent).join('/')}`)).text();
    if (/\.json$/i.test(fileName)) {
      let same = false;
      try { same = isDeepStrictEqual(JSON.parse(shown), JSON.parse(raw)); } catch (e) { same = false; }
      check(same, `the JSON shown for ${rel.join('/')} differs from the file`);
    } else {
      check(shown === raw || (raw === '' && shown === '(empty file)'), `the text shown for ${rel.join('/')} differs from the file`);
    }
    check(await outputs.locator('[data-testid="download"]').count() === 1, 'no Download button next to the preview');
    await shot(page, 'outputs.png');
    ok(`output ${rel.join('/')} is shown inline (${shown.length} chars)`);

    // 5b. An image output (draw/left/side.png in the test's pipeline) is shown as a picture.
    const img = await api(`/api/v1/runs/${encodeURIComponent(runId)}/artifacts/draw/left/side.png`);
    if (img.status === 200) {
      await nav(page, `#/runs/${encodeURIComponent(runId)}/files/draw/left`);
      await page.locator('.crumbs [data-crumb="left"]').waitFor();
      await outputs.locator('tr[data-entry="side.png"] a').first().click();
      const picture = outputs.locator('img').first();
      await picture.waitFor();
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await picture.elementHandle(), {timeout: WAIT});
      const width = await picture.evaluate((el) => el.naturalWidth);
      check(width === 64, `the image shown is ${width} pixels wide, expected 64`);
      await shot(page, 'image.png');
      ok('output draw/left/side.png is shown as an image (64 px wide)');
    }

    // 6. The queue.
    await nav(page, '#/queue');
    await page.locator('[data-count="pending"]').waitFor();
    await page.locator(`tr[data-job="${jobId}"]`).first().waitFor({state: 'attached'});
    await page.locator('details[data-queue="dead"] table, details[data-queue="dead"] .empty').first().waitFor();
    await shot(page, 'queue.png');
    ok(`the queue page lists job ${jobId} and the queue counts`);

    // 7. The runs list.
    await nav(page, '#/runs');
    await page.locator(`tr[data-run="${runId}"]`).waitFor();
    await shot(page, 'runs.png');
    ok(`the runs page lists run ${runId}`);

    check(pageErrors.length === 0, `JavaScript errors in the page: ${pageErrors.join('; ')}`);
    ok('no JavaScript errors');
    await ctx.close();
  } catch (e) {
    if (current) {
      const file = path.join(SHOTS, 'failure.png');
      try { await current.screenshot({path: file}); console.log(`e2e: screenshot ${file}`); } catch (err) { /* page gone */ }
    }
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

try {
  await main();
  console.log('e2e: all checks passed');
} catch (e) {
  // eslint-disable-next-line no-control-regex
  const msg = (e instanceof CheckFailed ? e.message : (e && e.stack) || String(e)).replace(/\x1b\[[0-9;]*m/g, '');
  console.log(`not ok - ${msg}`);
  if (pageErrors.length) console.log(`e2e: JavaScript errors: ${pageErrors.join('; ')}`);
  process.exit(1);
}

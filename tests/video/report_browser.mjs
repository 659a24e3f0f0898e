// Opens a match report in Debian's chromium (playwright-core from web/), checks
// what a reader uses, and keeps a screenshot.
//   node tests/video/report_browser.mjs REPORT.html SCREENSHOT.png
import { createRequire } from 'module';
const require = createRequire(import.meta.url);
const here = new URL('.', import.meta.url).pathname;
const { chromium } = require(here + '../../web/node_modules/playwright-core');

const [report, shot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); console.log((ok ? 'ok   ' : 'FAIL ') + what); };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('file://' + report);
  check(await page.locator('h1').count() === 1, 'the report has a title');
  check(await page.locator('.quality').count() === 1, 'a data-quality box');
  const quality = await page.locator('.quality').innerText();
  check(/Detector: /.test(quality), 'it names the detector');
  const video = page.locator('video#video');
  check(await video.count() === 1, 'an inline video player');
  await page.waitForFunction(() => document.getElementById('video').readyState >= 1, null, { timeout: 15000 });
  const duration = await video.evaluate((v) => v.duration);
  check(duration > 1, 'the annotated video loads (' + duration.toFixed(1) + ' s)');
  // A track row seeks the video to its first appearance.
  const rows = page.locator('tr.seek');
  check(await rows.count() > 3, 'tracks are listed');
  const last = rows.nth((await rows.count()) - 1);
  const t = parseFloat(await last.getAttribute('data-t'));
  await last.click();
  const now = await video.evaluate((v) => v.currentTime);
  check(Math.abs(now - t) < 0.5, 'a click on a track seeks to its first appearance (' + t + ' s -> ' + now.toFixed(2) + ' s)');
  // Sorting by boxes, twice: ascending then descending.
  const header = page.locator('th.sort', { hasText: 'Boxes' });
  await header.click();
  const asc = await page.$$eval('tr.seek', (rs) => rs.map((r) => parseFloat(r.children[4].dataset.v)));
  check(asc.every((x, i) => i === 0 || asc[i - 1] <= x), 'sorting by boxes (ascending)');
  await header.click();
  const desc = await page.$$eval('tr.seek', (rs) => rs.map((r) => parseFloat(r.children[4].dataset.v)));
  check(desc.every((x, i) => i === 0 || desc[i - 1] >= x), 'sorting by boxes (descending)');
  check(await page.locator('.scale').count() >= 1, 'heatmaps have a colour scale');
  check(errors.length === 0, 'no JavaScript errors ' + errors.join('; '));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: shot, fullPage: true });
  console.log('screenshot: ' + shot);
} finally {
  await browser.close();
}
if (failures.length) { console.error(failures.length + ' checks failed'); process.exit(1); }

// The compare page and the combine form in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core), against a real onelaunch
// server that tests/e2e/compare.rs started and filled with two CI-led
// launches of different pipelines. Exits non-zero on the first failed
// assertion; leaves a screenshot of every page it checked in $OL_SCREENSHOTS.
//
//   OL_URL          server URL
//   OL_TOKEN        admin API token to log in with
//   OL_BASE         the launch compared against (id), OL_BASE_NAME its name
//   OL_HEAD         the launch judged (id), OL_HEAD_NAME its name
//   OL_EXPECT       JSON {category: [test names]} the page must show
//   OL_FLAKY        name of the test that is flaky in the head launch
//   OL_TWO_JOBS     JSON {test, jobs: [[job, status], …]}: a test with an outcome per job
//   OL_SCREENSHOTS  directory for the screenshots
import fs from 'node:fs';
import path from 'node:path';
import { env, openChromium, text } from './lib.mjs';

const URL = env('OL_URL').replace(/\/$/, '');
const SHOTS = env('OL_SCREENSHOTS');
const BASE = env('OL_BASE');
const HEAD = env('OL_HEAD');
const EXPECT = JSON.parse(env('OL_EXPECT'));
const TWO_JOBS = JSON.parse(env('OL_TWO_JOBS'));
fs.mkdirSync(SHOTS, { recursive: true });

let step = 'start';
const log = (m) => console.log(`[compare] ${m}`);
function check(cond, message) {
  if (!cond) throw new Error(`assertion failed (${step}): ${message}`);
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true, animations: 'disabled' });
  log(`screenshot ${name}.png`);
}
const squash = (s) => s.replace(/\s+/g, ' ').trim();

const { page, pageErrors, close } = await openChromium();

let failed = false;
try {
  step = 'login';
  await page.goto(`${URL}/launches`);
  await page.fill('#token', env('OL_TOKEN'));
  await Promise.all([page.waitForURL(/\/launches/), page.click('button[type=submit]')]);

  // From the head launch's page to the compare page, the head chosen.
  step = 'link';
  await page.goto(`${URL}/launch/${HEAD}`);
  await Promise.all([
    page.waitForURL(/\/launches\/compare/),
    page.click('#combined a:has-text("Compare with another launch")'),
  ]);
  check(await page.locator('#c-head').inputValue() === HEAD, 'the head launch is preselected');
  await page.selectOption('#c-base', BASE);
  await Promise.all([page.waitForURL(/base=/), page.click('form.filters button[type=submit]')]);

  step = 'summary';
  const summary = squash(await page.locator('#compare-summary').innerText());
  log(`summary: ${summary}`);
  check(summary.includes(env('OL_BASE_NAME')) && summary.includes(env('OL_HEAD_NAME')), 'both launches are named');
  const count = async (k) => Number(await page.locator(`#compare-summary li[data-count=${k}] .n`).innerText());
  for (const [cat, names] of Object.entries(EXPECT)) {
    if (cat !== 'unchanged') check(await count(cat) === names.length, `${cat}: ${names.length} in the summary`);
  }
  check(await count('flaky') === 1, 'one flaky test in the summary');

  step = 'categories';
  for (const [cat, names] of Object.entries(EXPECT)) {
    if (cat === 'unchanged') continue;
    const rows = page.locator(`#cat-${cat} tbody tr`);
    const shown = (await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.test))).sort();
    check(JSON.stringify(shown) === JSON.stringify([...names].sort()), `${cat}: ${JSON.stringify(shown)} shown, wanted ${JSON.stringify(names)}`);
  }
  const flakyRow = page.locator(`tr[data-test="${env('OL_FLAKY')}"]`);
  check(await flakyRow.count() === 1, 'the flaky test is listed');
  const flakyText = squash(await flakyRow.innerText());
  check(flakyText.includes('flaky') && flakyText.includes('failed → passed'), `the flaky test shows its attempts: ${flakyText}`);

  step = 'two jobs';
  const two = page.locator(`tr[data-test="${TWO_JOBS.test}"] td:nth-child(3) ul.outcomes li`);
  const outcomes = (await two.allInnerTexts()).map(squash);
  check(outcomes.length === TWO_JOBS.jobs.length, `one outcome per job: ${JSON.stringify(outcomes)}`);
  for (const [job, status] of TWO_JOBS.jobs) {
    check(outcomes.some((o) => o.includes(job) && o.includes(status)), `${job}: ${status} in ${JSON.stringify(outcomes)}`);
  }
  // Each outcome links to its result.
  const href = await page.locator(`tr[data-test="${TWO_JOBS.test}"] td:nth-child(3) a`).first().getAttribute('href');
  check(/^\/result\/\d+$/.test(href), `an outcome links to its result: ${href}`);
  await shot(page, 'compare-launches');

  // The combine form: a new launch from both, linked both ways; then it is
  // deleted again (through the API) so the CLI test combines the sources.
  step = 'combine';
  await page.check(`#combine input[name=launch][value="${BASE}"]`);
  await page.check(`#combine input[name=launch][value="${HEAD}"]`);
  await page.fill('#c-name', 'Nightly combined in the UI');
  await Promise.all([page.waitForURL(/\/launch\/\d+$/), page.click('#combine button[type=submit]')]);
  const combined = page.url().split('/').pop();
  check(combined !== BASE && combined !== HEAD, `a new launch: ${page.url()}`);
  check((await page.locator('h1').innerText()).includes('Nightly combined in the UI'), 'the combined launch has its name');
  const from = squash(await page.locator('#combined').innerText());
  check(from.includes(`Combined from #${BASE}, #${HEAD}`), `it names its sources: ${from}`);
  await shot(page, 'combined-launch');
  await page.goto(`${URL}/launch/${BASE}`);
  const into = squash(await page.locator('#combined').innerText());
  check(into.includes(`Combined into #${combined}`), `a source links to it: ${into}`);
  const del = await fetch(`${URL}/api/launch/${combined}`, { method: 'DELETE', headers: { Authorization: `api-token ${env('OL_TOKEN')}` } });
  check(del.ok, `the combined launch is deleted: ${del.status}`);
  await page.goto(`${URL}/launch/${BASE}`);
  check(!(await page.locator('#combined').innerText()).includes('Combined into'), 'the link is gone with it');

  step = 'console';
  check(pageErrors.length === 0, `no script errors: ${pageErrors.join(' | ')}`);
  log('all compare checks passed');
} catch (e) {
  failed = true;
  console.error(`[compare] FAILED at ${step}: ${e.stack || e}`);
  try { await shot(page, `failure-${step}`); } catch (_) { /* ignore */ }
} finally {
  await close();
}
process.exit(failed ? 1 : 0);

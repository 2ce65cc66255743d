// Reruns from the launch page in headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core), against a server tests/e2e/reruns.rs started
// with a closed CI-led launch whose two jobs each failed one test and a
// manual test, both jobs configured with the `command` integration.
//
//   OL_URL          server URL
//   OL_TOKEN        admin API token to log in with
//   OL_LAUNCH_ID    the launch
//   OL_MANUAL_NAME  the manual test (not rerunnable)
//   OL_PICK_NAME    a passed test to rerun through "Rerun selected"
//   OL_SCREENSHOTS  directory for the screenshots
import fs from 'node:fs';
import path from 'node:path';
import { env, openChromium, text } from './lib.mjs';

const URL = env('OL_URL').replace(/\/$/, '');
const TOKEN = env('OL_TOKEN');
const LAUNCH = env('OL_LAUNCH_ID');
const SHOTS = env('OL_SCREENSHOTS');
fs.mkdirSync(SHOTS, { recursive: true });

let step = 'start';
const log = (m) => console.log(`[rerun] ${m}`);
function check(cond, message) {
  if (!cond) throw new Error(`assertion failed (${step}): ${message}`);
}
async function api(p) {
  const r = await fetch(URL + p, { headers: { Authorization: `api-token ${TOKEN}` } });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return r.json();
}
async function waitFor(what, fn, timeoutMs = 120000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out (${step}): ${what}`);
}
const rerunsFinished = async (n) => {
  const runs = await api(`/api/launch/${LAUNCH}/job`);
  const reruns = runs.filter((r) => r.name.includes('(rerun-'));
  return reruns.length === n && reruns.every((r) => r.stage === 'finished');
};

const { page, pageErrors, close } = await openChromium();

let failed = false;
try {
  step = 'login';
  await page.goto(`${URL}/login`);
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(/\/launches/), page.click('button[type=submit]')]);

  step = 'rerun failed';
  await page.goto(`${URL}/launch/${LAUNCH}`);
  check(await page.locator('.reruns').count() === 0, 'no rerun summary before a rerun');
  const failedForm = page.locator('form:has(input[name=failed])');
  const csrf = await failedForm.locator('input[name=csrf]').inputValue();
  const request = await failedForm.locator('input[name=request]').inputValue();
  await Promise.all([
    page.waitForURL(new RegExp(`/launch/${LAUNCH}/rerun$`)),
    page.getByRole('button', { name: 'Rerun failed' }).click(),
  ]);
  const firstRuns = await page.locator('ul.rerun-runs a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));

  step = 'the same form posted again';
  // A reload of the answer page or a double click posts the same form: it
  // answers the rerun it started, and starts nothing more.
  const again = await page.request.post(`${URL}/launch/${LAUNCH}/rerun`, { form: { csrf, request, failed: '1' } });
  check(again.ok(), `the repeated post is answered: ${again.status()}`);
  const againHtml = await again.text();
  const againRuns = [...againHtml.matchAll(/href="(\/jobrun\/\d+)"/g)].map((m) => m[1]);
  check(JSON.stringify(againRuns) === JSON.stringify(firstRuns),
    `the same job runs, no new one: ${JSON.stringify(againRuns)} vs ${JSON.stringify(firstRuns)}`);
  await page.screenshot({ path: path.join(SHOTS, 'rerun-started.png'), fullPage: true });
  const started = await text(page, 'main');
  check(started.includes('Rerun started: 2 job run(s)'), `two job runs started: ${started}`);
  check(started.includes('The launch was reopened.'), `the closed launch was reopened: ${started}`);
  check(await page.locator('ul.rerun-runs li').count() === 2, 'both job runs are listed');
  const left = await text(page, 'ul.not-rerunnable');
  check(left.includes(env('OL_MANUAL_NAME')) && left.includes('manual'), `the manual test is not rerunnable: ${left}`);
  await waitFor('the rerun job runs finish', () => rerunsFinished(2));

  step = 'summary';
  await page.goto(`${URL}/launch/${LAUNCH}`);
  const summary = await text(page, '.reruns');
  check(summary.includes('2 tests rerun, 2 changed status'), `the launch shows the reruns: ${summary}`);
  await page.screenshot({ path: path.join(SHOTS, 'rerun-summary.png'), fullPage: true });

  step = 'rerun selected';
  const pick = env('OL_PICK_NAME');
  await page.getByRole('checkbox', { name: `Select ${pick} for rerun` }).first().check();
  await Promise.all([
    page.waitForURL(new RegExp(`/launch/${LAUNCH}/rerun$`)),
    page.getByRole('button', { name: 'Rerun selected' }).click(),
  ]);
  const one = await text(page, 'main');
  check(one.includes('Rerun started: 1 job run(s)'), `one job run for the selected test: ${one}`);
  check(one.includes('1 test(s)'), `exactly the selected test: ${one}`);
  await waitFor('the third rerun job run finishes', () => rerunsFinished(3));
  check(pageErrors.length === 0, `no page errors: ${pageErrors.join('; ')}`);
  log('all checks passed');
} catch (e) {
  failed = true;
  console.error(e.stack || String(e));
  try { await page.screenshot({ path: path.join(SHOTS, 'rerun-failure.png'), fullPage: true }); } catch {}
} finally {
  await close();
}
process.exit(failed ? 1 : 0);

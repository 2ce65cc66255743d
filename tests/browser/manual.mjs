// The manual half of a launch in headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core), against a server tests/e2e/manual.rs started:
// two testers record a manual result each from the launch page, and the page
// shows the progress per assignee and what is left. Exits non-zero on the
// first failed assertion; screenshots in $OL_SCREENSHOTS.
//
//   OL_URL          server URL
//   OL_TOKEN        admin API token to log in with
//   OL_LAUNCH_ID    the launch (its plan gave two cases to alice, one to bob)
//   OL_ALICE_CASE   id of the case alice records
//   OL_BOB_CASE     id of the case bob records
//   OL_LEFT_CASE    name of alice's case left undone
//   OL_SCREENSHOTS  directory for the screenshots
import fs from 'node:fs';
import path from 'node:path';
import { env, openChromium, text } from './lib.mjs';

const URL = env('OL_URL').replace(/\/$/, '');
const LAUNCH = env('OL_LAUNCH_ID');
const SHOTS = env('OL_SCREENSHOTS');
fs.mkdirSync(SHOTS, { recursive: true });

let step = 'start';
const log = (m) => console.log(`[manual] ${m}`);
function check(cond, message) {
  if (!cond) throw new Error(`assertion failed (${step}): ${message}`);
}
async function progress(page) {
  const rows = await page.locator('table.manual-progress tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.dataset.assignee, Number(tr.dataset.done), Number(tr.dataset.total)]));
  return JSON.stringify(rows);
}

const { page, pageErrors, close } = await openChromium();

let failed = false;
try {
  step = 'login';
  await page.goto(`${URL}/launch/${LAUNCH}`);
  await page.fill('#token', env('OL_TOKEN'));
  await Promise.all([page.waitForURL(new RegExp(`/launch/${LAUNCH}`)), page.click('button[type=submit]')]);

  step = 'before';
  check(await progress(page) === JSON.stringify([['alice', 0, 2], ['bob', 0, 1]]),
    `nothing done yet: ${await progress(page)}`);
  await page.screenshot({ path: path.join(SHOTS, 'manual-before.png'), fullPage: true });

  for (const [who, caseId, status, comment] of [
    ['alice', env('OL_ALICE_CASE'), 'passed', 'logged in with SSO'],
    ['bob', env('OL_BOB_CASE'), 'failed', 'the pay button does nothing'],
  ]) {
    step = `record as ${who}`;
    await page.selectOption('#m-case', caseId);
    await page.selectOption('#m-status', status);
    await page.fill('#m-by', who);
    await page.fill('#m-duration', '42');
    await page.fill('#m-comment', comment);
    if (who === 'alice') {
      // A file attached from the form becomes an attachment of her result.
      await page.setInputFiles('#m-files', {
        name: 'what-alice-saw.txt', mimeType: 'text/plain', buffer: Buffer.from('SSO page, then the dashboard'),
      });
    }
    await Promise.all([
      page.waitForURL(new RegExp(`/launch/${LAUNCH}#manual$`)),
      page.click('#manual-record button[type=submit]'),
    ]);
    check((await text(page, '#manual')).includes(comment) || (await text(page, '#manual')).includes(status),
      `the recorded result is listed: ${await text(page, '#manual')}`);
  }

  step = 'after';
  const shown = await progress(page);
  check(shown === JSON.stringify([['alice', 1, 2], ['bob', 1, 1]]), `progress per assignee: ${shown}`);
  const left = await text(page, 'ul.manual-left');
  check(left.includes(env('OL_LEFT_CASE')) && left.includes('alice'), `what is left: ${left}`);
  check(!left.includes('bob'), `bob has nothing left: ${left}`);
  await page.screenshot({ path: path.join(SHOTS, 'manual-after.png'), fullPage: true });

  step = 'console';
  check(pageErrors.length === 0, `no script errors: ${pageErrors.join(' | ')}`);
  log('all manual checks passed');
} catch (e) {
  failed = true;
  console.error(`[manual] FAILED at ${step}: ${e.stack || e}`);
  try { await page.screenshot({ path: path.join(SHOTS, `failure-${step.replace(/\W+/g, '-')}.png`), fullPage: true }); } catch (_) { /* ignore */ }
} finally {
  await close();
}
process.exit(failed ? 1 : 0);

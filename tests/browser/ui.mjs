// Web UI tests in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) against a real onelaunch server that tests/e2e/web_ui.rs
// started and filled with the real CLI. Everything it needs comes from the
// environment; it exits non-zero on the first failed assertion and leaves a
// screenshot of every page it checked in $OL_SCREENSHOTS.
//
//   OL_URL            server URL
//   OL_TOKEN          admin API token to log in with
//   OL_LAUNCH_ID      the CI-led launch to watch
//   OL_LAUNCH_NAME    its name
//   OL_OTHER_LAUNCH   name of an older (closed) launch of the same project
//   OL_GITHUB_JOB_RUN id of the launch's GitHub job run (the live upload goes there)
//   OL_MISSING_JOB    name of the job whose job run started but never reported
//   OL_FAILED_RESULT  name of the failed result with steps, trace and a PNG
//   OL_GITHUB_JOB_ID  id of the GitHub job (configured through the Jobs page)
//   OL_GITLAB_JOB     name of the GitLab job (already configured)
//   OL_PLAN_CASES     JSON array of test case names to put into the plan
//   OL_OVERRIDE_CASE  the plan case moved to the GitLab job
//   OL_MANUAL_CASE    the plan case moved to manual
//   OL_LIVE_UPLOAD    JSON {cmd: [...], env: {...}}: the upload run while watching
//   OL_LIVE_COUNT     how many new tests that upload adds to the job run
//   OL_SCREENSHOTS    directory for the screenshots
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { env, openChromium, text } from './lib.mjs';

const URL = env('OL_URL').replace(/\/$/, '');
const TOKEN = env('OL_TOKEN');
const LAUNCH = env('OL_LAUNCH_ID');
const SHOTS = env('OL_SCREENSHOTS');
fs.mkdirSync(SHOTS, { recursive: true });

let step = 'start';
const log = (m) => console.log(`[ui] ${m}`);
function check(cond, message) {
  if (!cond) throw new Error(`assertion failed (${step}): ${message}`);
}
async function shot(page, name, fullPage = true) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage, animations: 'disabled' });
  log(`screenshot ${name}.png`);
}
async function waitFor(what, fn, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out (${step}): ${what}`);
}
async function api(p, init = {}) {
  const r = await fetch(URL + p, { ...init, headers: { Authorization: `api-token ${TOKEN}`, ...(init.headers || {}) } });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
  return r.status === 204 ? null : r.json();
}

const { context, page, pageErrors, close } = await openChromium();

let failed = false;
try {
  // ------------------------------------------------------------ login
  step = 'login';
  await page.goto(`${URL}/launches`);
  check(page.url().includes('/login'), `an anonymous visit goes to the login page, got ${page.url()}`);
  check(await page.locator('label[for=token]').count() === 1, 'the token input has a label');
  await shot(page, '01-login');
  await page.fill('#token', 'not-a-token');
  await page.click('button[type=submit]');
  check((await text(page, '[role=alert]')).includes('not known'), 'a wrong token is refused with a message');
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL(/\/launches/), page.click('button[type=submit]')]);
  // The refused login above was answered 401 on purpose; nothing else may fail.
  pageErrors.length = 0;
  const cookies = await context.cookies(URL);
  const session = cookies.find((c) => c.name === 'ol_session');
  check(session && session.httpOnly && session.sameSite === 'Strict', `session cookie is HttpOnly and SameSite=Strict: ${JSON.stringify(session)}`);

  // ------------------------------------------------------------ launches
  step = 'launches';
  const list = await text(page, 'main');
  check(list.includes(env('OL_LAUNCH_NAME')) && list.includes(env('OL_OTHER_LAUNCH')), 'both launches are listed');
  check(list.indexOf(env('OL_LAUNCH_NAME')) < list.indexOf(env('OL_OTHER_LAUNCH')), 'newest first');
  check(await page.locator('table.launches th[scope=col]').count() >= 4, 'the table has column headers');
  await shot(page, '02-launches');
  await page.selectOption('#f-state', 'closed');
  await Promise.all([page.waitForURL(/state=closed/), page.click('form.filters button[type=submit]')]);
  const closedList = await text(page, 'main');
  check(closedList.includes(env('OL_OTHER_LAUNCH')) && !closedList.includes(env('OL_LAUNCH_NAME')), 'the closed filter shows only the closed launch');

  // ------------------------------------------------------------ live launch page
  step = 'live';
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });
  await page.goto(`${URL}/launch/${LAUNCH}`);
  navigations = 0;
  const missingRow = page.locator('#jobruns-body tr', { hasText: env('OL_MISSING_JOB') });
  check(await missingRow.count() === 1, 'the job run that never reported is listed');
  check((await missingRow.innerText()).toLowerCase().includes('missing'), 'it carries a "missing" marker');
  const ghRow = () => page.locator(`#jobruns-body tr:has(a[href="/jobrun/${env('OL_GITHUB_JOB_RUN')}"])`);
  const before = (await ghRow().innerText()).replace(/\s+/g, ' ');
  const sumOf = async () => (await ghRow().locator('ul.counts .n').allInnerTexts()).map(Number).reduce((x, y) => x + y, 0);
  const beforeSum = await sumOf();
  const liveCount = Number(env('OL_LIVE_COUNT'));
  log(`GitHub job run before: ${before}`);
  await page.evaluate(() => { window.__olMarker = 'no-reload'; });
  await waitFor('the live connection', () => page.evaluate(() => document.documentElement.dataset.live === 'connected'));
  const live = JSON.parse(env('OL_LIVE_UPLOAD'));
  const upload = spawn(live.cmd[0], live.cmd.slice(1), { env: live.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let uploadOut = '';
  upload.stdout.on('data', (d) => { uploadOut += d; });
  upload.stderr.on('data', (d) => { uploadOut += d; });
  const uploadDone = new Promise((res) => upload.on('close', (code) => res(code)));
  const after = await waitFor('the GitHub job run counts to change without a reload', async () => {
    const t = (await ghRow().innerText()).replace(/\s+/g, ' ');
    return t !== before ? t : null;
  });
  log(`GitHub job run after: ${after}`);
  const code = await uploadDone;
  check(code === 0, `the live upload succeeded: ${uploadOut}`);
  // The last batch shows up too: every uploaded test is counted.
  await waitFor(`the row to count ${beforeSum} + ${liveCount} tests`, async () => (await sumOf()) === beforeSum + liveCount);
  check(await page.evaluate(() => window.__olMarker) === 'no-reload', 'the page was not reloaded');
  check(navigations === 0, `no navigation happened (${navigations})`);
  check(!(await page.locator('#results-notice').isHidden()), 'the results list offers a refresh');
  await shot(page, '03-launch-live');

  // ------------------------------------------------------------ failed result
  step = 'result';
  await page.goto(`${URL}/launch/${LAUNCH}?status=failed#results`);
  await Promise.all([
    page.waitForURL(/\/result\/\d+/),
    page.locator('table.results a', { hasText: env('OL_FAILED_RESULT') }).first().click(),
  ]);
  const main = await text(page, 'main');
  check(main.includes('failed'), 'status as text');
  check(main.includes("expected order status 'paid'"), 'the message is shown');
  check(await page.locator('details.trace pre').isVisible(), 'the trace is open for a failure');
  check((await text(page, 'details.trace pre')).includes('checkout.spec.ts:42'), 'the trace is shown');
  for (const s of ['open checkout', 'add item to cart', 'pay with card']) {
    check(await page.locator('ol.steps .step-name', { hasText: s }).count() >= 1, `step "${s}" in the tree`);
  }
  check(await page.locator('ol.steps ol.steps').count() >= 1, 'steps are nested');
  check(await page.locator('ol.steps .dur').count() >= 3, 'steps have timings');
  const img = page.locator('img[alt="screenshot at failure"]');
  await img.scrollIntoViewIfNeeded();
  await waitFor('the PNG attachment to load', () => img.evaluate((i) => i.complete && i.naturalWidth > 0));
  check(await img.evaluate((i) => i.naturalWidth) === 360, 'the PNG is the uploaded one');
  check((await text(page, 'main')).includes('gateway answered 402'), 'the text attachment is shown inline');
  check(main.includes('card') && main.includes('visa-4000'), 'parameters are shown');
  check(main.includes('severity') && main.includes('critical'), 'labels are shown');
  check(await page.locator('a[href="https://issues.example.com/browse/SHOP-42"]').count() === 1, 'links are shown');
  check(main.includes('Retries') && (await page.locator('section table.list tbody tr').count()) >= 2, 'the earlier attempt is listed');
  check(main.includes('Set up') && main.includes('seed test data'), 'fixtures are shown');
  await shot(page, '04-result');

  // ------------------------------------------------------------ close and reopen
  step = 'close';
  await page.goto(`${URL}/launch/${LAUNCH}`);
  await Promise.all([page.waitForURL(`${URL}/launch/${LAUNCH}`), page.click('button:has-text("Close launch")')]);
  check((await text(page, '#launch-state')).includes('closed'), 'closed after Close');
  check((await api(`/api/launch/${LAUNCH}`)).closed === true, 'the API sees it closed');
  await shot(page, '05-launch-closed', false);
  await Promise.all([page.waitForURL(`${URL}/launch/${LAUNCH}`), page.click('button:has-text("Reopen launch")')]);
  check((await text(page, '#launch-state')).includes('open'), 'open after Reopen');
  check((await api(`/api/launch/${LAUNCH}`)).closed === false, 'the API sees it open');

  // ------------------------------------------------------------ keyboard
  step = 'keyboard';
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement && document.activeElement.classList.contains('skip')), 'Tab first reaches the skip link');
  await page.keyboard.press('Enter');
  check(await page.evaluate(() => document.activeElement && document.activeElement.id === 'main'), 'the skip link moves focus to the content');

  // ------------------------------------------------------------ jobs
  step = 'jobs';
  await page.goto(`${URL}/jobs`);
  await shot(page, '06-jobs');
  await page.goto(`${URL}/jobs/${env('OL_GITHUB_JOB_ID')}`);
  await page.check('#j-can-run');
  await page.selectOption('#j-integration', 'command');
  check(await page.locator('#j-repository').isHidden(), 'fields of other integrations are hidden');
  await page.fill('#j-command', 'true');
  await page.fill('#j-credential', 'ui-secret-credential');
  await page.fill('#j-parameters', 'SUITE=smoke');
  await Promise.all([page.waitForURL(/saved=1/), page.click('button:has-text("Save")')]);
  check((await text(page, 'main')).includes('Saved.'), 'saved');
  check(!(await page.content()).includes('ui-secret-credential'), 'the credential is never shown again');
  check((await page.getAttribute('#j-credential', 'placeholder')).includes('stored'), 'the form says a credential is stored');
  await shot(page, '07-job');

  // ------------------------------------------------------------ plan
  step = 'plan';
  await page.goto(`${URL}/plans`);
  await Promise.all([page.waitForURL(/\/plans\/new/), page.click('a:has-text("New test plan")')]);
  for (const name of JSON.parse(env('OL_PLAN_CASES'))) {
    await page.locator('tr', { has: page.locator('label.case-label', { hasText: name }) }).locator('input[type=checkbox]').check();
  }
  await page.fill('#p-name', 'Release 1.3 regression');
  await shot(page, '08-plan-new', false);
  await Promise.all([page.waitForURL(/\/plans\/\d+$/), page.click('button:has-text("Create test plan")')]);
  const planUrl = page.url();
  const planText = await text(page, 'main');
  for (const name of JSON.parse(env('OL_PLAN_CASES'))) check(planText.includes(name), `the plan has ${name}`);

  step = 'executors';
  await page.click('nav.tabs a:has-text("Executors")');
  await page.waitForURL(/executors/);
  const overrideCase = env('OL_OVERRIDE_CASE');
  await page.locator('tr', { has: page.locator('label', { hasText: overrideCase }) }).locator('input[type=checkbox]').check();
  const gitlabOption = await page.locator('#ex-target option', { hasText: env('OL_GITLAB_JOB') }).getAttribute('value');
  await page.selectOption('#ex-target', gitlabOption);
  await Promise.all([page.waitForURL(/saved=1/), page.click('button:has-text("Apply")')]);
  const groups = await page.locator('table.executors tbody').allInnerTexts();
  const gitlabGroup = groups.find((g) => g.includes(env('OL_GITLAB_JOB')));
  check(gitlabGroup && gitlabGroup.includes(overrideCase) && gitlabGroup.includes('override'), `the case moved to the GitLab job: ${groups.join(' | ')}`);
  await page.locator('tr', { has: page.locator('label', { hasText: env('OL_MANUAL_CASE') }) }).locator('input[type=checkbox]').check();
  await page.selectOption('#ex-target', 'manual');
  await Promise.all([page.waitForURL(/saved=1/), page.click('button:has-text("Apply")')]);
  check((await text(page, 'table.executors')).includes('Manual (no job)'), 'a manual group exists');
  await shot(page, '09-executors');

  step = 'run';
  await page.click('nav.tabs a:has-text("Run")');
  await page.waitForURL(/\/run$/);
  await page.fill('#run-name', 'Release 1.3 plan run');
  await page.fill('#run-tags', 'release, plan');
  await page.fill('#run-issues', 'SHOP-7\nhttps://issues.example.com/browse/SHOP-8');
  await page.fill('#run-env', 'BROWSER=chromium');
  await shot(page, '10-run-form');
  await Promise.all([page.waitForURL(/\/launch\/\d+$/), page.click('button:has-text("Run test plan")')]);
  const planLaunch = page.url().split('/').pop();
  check(planLaunch !== LAUNCH, 'a new launch was created');
  const l = await text(page, 'main');
  check(l.includes('Release 1.3 plan run'), 'the launch has the name from the form');
  check(l.includes('release') && l.includes('plan'), 'the tags');
  check(await page.locator('a[href="https://issues.example.com/browse/SHOP-8"]').count() === 1 && l.includes('SHOP-7'), 'the issue links');
  check(l.includes('BROWSER') && l.includes('chromium'), 'the environment');
  const rows = await page.locator('#jobruns-body tr').allInnerTexts();
  check(rows.length === 2, `two job runs (one per executor job): ${rows.join(' | ')}`);
  check(rows.every((r) => /scheduled|in progress/.test(r) && r.toLowerCase().includes('missing')), `scheduled and not reported yet: ${rows.join(' | ')}`);
  check(rows.some((r) => r.includes(env('OL_GITLAB_JOB'))), 'the GitLab job runs the overridden case');
  check(l.includes('Left to be done by hand') && l.includes(env('OL_MANUAL_CASE')), 'the manual case is listed apart');
  const runDto = await api(`/api/launch/${planLaunch}/job`);
  check(runDto.length === 2 && runDto.every((r) => r.stage === 'scheduled'), `the API agrees: ${JSON.stringify(runDto.map((r) => r.stage))}`);
  await shot(page, '11-plan-launch');
  await page.goto(planUrl);
  check((await text(page, 'main')).includes('Release 1.3 plan run'), 'the plan lists its launch');

  // ------------------------------------------------------------ job run, logout
  step = 'jobrun';
  await page.goto(`${URL}/jobrun/${env('OL_GITHUB_JOB_RUN')}`);
  check((await text(page, 'main')).includes(env('OL_FAILED_RESULT')), 'the job run lists its results');
  await shot(page, '12-job-run', false);

  // ------------------------------------------------------------ tokens
  step = 'tokens';
  await page.goto(`${URL}/tokens`);
  check((await text(page, '#tokens')).includes('init'), 'the Tokens page lists the init token');
  await page.fill('#t-name', 'browser token');
  await page.selectOption('#t-project', '1');
  await page.fill('#t-days', '7');
  await page.click('button:has-text("Create token")');
  const secret = await text(page, '#new-token-secret');
  check(secret.startsWith('olp_'), `the new secret is shown once: ${secret.slice(0, 4)}…`);
  const use = (t) => fetch(`${URL}/api/project`, { headers: { Authorization: `api-token ${t}` } });
  check((await use(secret)).status === 200, 'the new token works');
  await shot(page, '13-tokens', false);
  await page.goto(`${URL}/tokens`);
  check(!(await text(page, 'main')).includes(secret), 'the secret is not shown again');
  await Promise.all([
    page.waitForURL(/\/tokens$/),
    page.click('button[aria-label="Revoke token browser token"]'),
  ]);
  const row = await text(page, '#tokens tr:has-text("browser token")');
  check(row.includes('revoked'), `the token shows as revoked: ${row}`);
  check((await use(secret)).status === 401, 'a revoked token is refused at once');

  step = 'logout';
  await Promise.all([page.waitForURL(/\/login/), page.click('button:has-text("Log out")')]);
  await page.goto(`${URL}/launch/${LAUNCH}`);
  check(page.url().includes('/login'), 'logged out: pages need a login again');

  step = 'console';
  check(pageErrors.length === 0, `no script errors: ${pageErrors.join(' | ')}`);
  log('all browser checks passed');
} catch (e) {
  failed = true;
  console.error(`[ui] FAILED at ${step}: ${e.stack || e}`);
  try { await shot(page, `failure-${step}`); } catch (_) { /* ignore */ }
} finally {
  await close();
}
process.exit(failed ? 1 : 0);

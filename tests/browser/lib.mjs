// What every browser test shares: its settings from the environment, Debian's
// Chromium started headless the way this machine allows (no background
// networking: the network is closed), the page's script errors collected,
// and text read from the page with whitespace squashed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

/** A required environment variable. */
export const env = (k) => {
  const v = process.env[k];
  if (v === undefined || v === '') throw new Error(`environment variable ${k} is required`);
  return v;
};

/**
 * Starts headless Chromium in a fresh profile. Returns the page, the list its
 * script errors go to, and `close()`, which also removes the profile.
 */
export async function openChromium() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'onelaunch-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  page.setDefaultTimeout(15000);
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, pageErrors, close };
}

/** The text of the first element matching `selector`, whitespace squashed. */
export async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).replace(/\s+/g, ' ').trim();
}

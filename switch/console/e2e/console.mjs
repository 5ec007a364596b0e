// End-to-end walk through the operator console in Debian's headless
// Chromium (never a downloaded browser), driven by playwright-core. The Go
// test TestConsoleInChromium (switch/console_e2e_test.go) starts issuer
// emulators and a switch, makes a sale and a reversal stuck in manual
// review, then runs this with:
//
//   CONSOLE_URL        http://127.0.0.1:port (the admin port)
//   CONSOLE_TOKEN      the admin bearer token
//   CONSOLE_ROUTES     route names, comma separated
//   SALE_RRN           the sale's RRN
//   SALE_CARD_MASKED   its card, masked 6+4
//   SALE_CARD_FULL     the full card number (pasted into the search)
//   SAF_ID             a SAF item in manual review
//   CONSOLE_SCREENSHOT where to save the screenshot
//
// It exits non-zero with a message at the first failed check.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('CONSOLE_URL');
const adminToken = env('CONSOLE_TOKEN');
const routes = env('CONSOLE_ROUTES').split(',');
const rrn = env('SALE_RRN');
const masked = env('SALE_CARD_MASKED');
const fullCard = env('SALE_CARD_FULL');
const safID = env('SAF_ID');
const screenshot = env('CONSOLE_SCREENSHOT');

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

// noCard fails when the full card number is anywhere the browser holds:
// the HTML source, the URL or the visible text.
async function noCard(page, where) {
  const html = await page.content();
  check(!html.includes(fullCard) && !page.url().includes(fullCard), `${where}: the full card number is in neither the HTML source nor the URL`);
}

async function login(page, operator) {
  await page.goto(base + '/console/');
  check(new URL(page.url()).pathname === '/console/login', 'no session: the console sends to the login page');
  await page.fill('input[name=operator]', operator);
  await page.fill('input[name=token]', adminToken);
  await Promise.all([page.waitForURL(base + '/console/'), page.click('button[type=submit]')]);
}

// Each context is a browser of its own on a fresh profile folder.
const opened = [];
async function launch(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'console-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    ...options,
  });
  opened.push({ context, profile });
  return context;
}
let failed = false;
try {
  const context = await launch();
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(15000);
  // Nothing but the console itself is ever requested.
  const foreign = [];
  page.on('request', (req) => { if (!req.url().startsWith(base)) foreign.push(req.url()); });

  // A wrong token stays on the login page.
  await page.goto(base + '/console/login');
  await page.fill('input[name=operator]', 'e2e');
  await page.fill('input[name=token]', 'not-the-token');
  await page.click('button[type=submit]');
  check((await page.textContent('.error')).includes('Wrong admin token'), 'a wrong admin token is refused');

  await login(page, 'e2e-operator');
  for (const r of routes) {
    check(await page.locator(`tr[data-route="${r}"]`).count() === 1, `overview shows route ${r}`);
  }
  check((await page.textContent('#readiness')).includes('ready'), 'overview shows readiness');
  check(await page.locator('#listeners tbody tr').count() >= 1, 'overview shows the listeners');

  // Find the sale by its RRN; see its masked card and its history.
  await page.click('text=Transactions');
  await page.fill('input[name=q]', rrn);
  await Promise.all([page.waitForURL(/\/console\/transactions\?/), page.click('form.search button[type=submit]')]);
  const row = page.locator('#results tbody tr', { hasText: rrn });
  check(await row.count() === 1, `search by RRN ${rrn} finds the sale`);
  check((await row.locator('td.card').textContent()).trim() === masked, `the result shows the masked card ${masked}`);
  await Promise.all([page.waitForURL(/\/console\/transactions\/\d+$/), row.locator('a').first().click()]);
  check((await page.textContent('#card')).trim() === masked, 'the transaction page shows the masked card');
  check((await page.textContent('#rrn')).trim() === rrn, 'the transaction page shows the RRN');
  const events = await page.locator('#history td.event').allTextContents();
  check(events.length >= 1 && events.some((e) => e.includes('approved')), `the history lists the events (${events.join(', ')})`);
  await noCard(page, 'transaction page');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '') + '-transaction.png', fullPage: true });

  // A full card number pasted into the search is searched masked and never echoed.
  await page.click('text=Transactions');
  await page.fill('input[name=q]', fullCard);
  await Promise.all([page.waitForURL(/\/console\/transactions\?/), page.click('form.search button[type=submit]')]);
  check(await page.inputValue('input[name=q]') === masked, 'the pasted card number comes back masked in the search box');
  check(!decodeURIComponent(page.url()).includes(fullCard), 'the URL holds the masked card only');
  check(await page.locator('#results tbody tr', { hasText: rrn }).count() === 1, 'the sale is found by its card (6+4)');
  await noCard(page, 'search by card');

  // SAF: a forged CSRF token is refused; then resolve with a reason.
  await page.goto(base + '/console/saf?state=review');
  const item = page.locator(`tr[data-saf="${safID}"]`);
  check(await item.count() === 1, `SAF item ${safID} is in manual review`);
  await item.locator('input[name=reason]').fill('forged attempt');
  await item.locator('form.resolve input[name=csrf]').evaluate((el) => { el.value = 'f'.repeat(64); });
  const [forged] = await Promise.all([page.waitForResponse((r) => r.url().includes(`/console/saf/${safID}/resolve`)),
    item.locator('form.resolve button').click()]);
  check(forged.status() === 403, 'a forged CSRF token is refused (403)');
  check((await page.textContent('.error')).includes('CSRF'), 'the refusal says why');
  await page.goto(base + '/console/saf?state=review');
  check(await item.count() === 1, 'the item is still in review after the forged request');
  await item.locator('input[name=reason]').fill('issuer confirmed no charge, ticket 7');
  await Promise.all([page.waitForURL(/state=resolved/), item.locator('form.resolve button').click()]);
  check((await page.textContent('.notice')).includes('is now resolved'), 'the item is resolved');
  const resolvedRow = page.locator(`tr[data-saf="${safID}"]`);
  check((await resolvedRow.textContent()).includes('ticket 7'), 'the reason is recorded on the item');
  await page.screenshot({ path: screenshot.replace(/\.png$/, '') + '-saf.png', fullPage: true });

  await page.goto(base + '/console/');
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);

  // Logout ends the session.
  await Promise.all([page.waitForURL(base + '/console/login'), page.click('form.logout button')]);
  await page.goto(base + '/console/saf');
  check(new URL(page.url()).pathname === '/console/login', 'after logout the console sends to the login page');
  check(foreign.length === 0, `no request left the console (${foreign.join(' ')})`);

  // Read-only pages work with JavaScript blocked.
  const noJS = await launch({ javaScriptEnabled: false });
  const p2 = noJS.pages()[0] || await noJS.newPage();
  p2.setDefaultTimeout(15000);
  await login(p2, 'e2e-nojs');
  check(await p2.locator(`tr[data-route="${routes[0]}"]`).count() === 1, 'with JavaScript blocked, the overview works');
  await p2.goto(base + '/console/transactions?q=' + encodeURIComponent(rrn));
  check(await p2.locator('#results tbody tr', { hasText: rrn }).count() === 1, 'with JavaScript blocked, the search works');
} catch (err) {
  failed = true;
  console.error(err.stack || String(err));
} finally {
  for (const { context, profile } of opened) {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}
process.exit(failed ? 1 : 0);

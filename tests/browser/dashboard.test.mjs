// Dashboard demo: short polling at a chosen interval.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish, screenshot } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('short polls pick up what is kept, then what is new', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('dash');
  await publish(topic, JSON.stringify({ cpu: 10, mem: 50 }));
  const kept = await publish(topic, JSON.stringify({ cpu: 20, mem: 55 }));
  const page = await browser.newPage();
  const polls = [];
  page.on('request', (req) => { if (req.url().includes('/messages')) polls.push(new URL(req.url())); });

  await page.goto(`${BASE}/demo/dashboard?topic=${topic}&interval=250`);
  // The first request, without a cursor, brings everything kept.
  await page.waitForSelector('.tile[data-metric="cpu"]');
  assert.equal(await page.textContent('.tile[data-metric="cpu"] .value'), '20');
  assert.equal(await page.textContent('.tile[data-metric="mem"] .value'), '55');
  assert.equal(polls[0].searchParams.get('after'), null);

  // Nothing new: empty answers pile up, each request carrying the cursor.
  await page.waitForFunction(() => Number(document.querySelector('#empty').textContent) >= 2);
  assert.equal(polls[1].searchParams.get('after'), kept);

  const fresh = await publish(topic, JSON.stringify({ cpu: 77.5, rps: 300 }));
  await page.waitForFunction(() => document.querySelector('.tile[data-metric="cpu"] .value').textContent === '77.50');
  assert.equal(await page.getAttribute('.tile[data-metric="cpu"]', 'data-id'), fresh);
  assert.equal(await page.textContent('.tile[data-metric="rps"] .value'), '300');
  await publish(topic, 'deploy 1.2.3 done', 'log');
  await page.waitForSelector('#other li:has-text("deploy 1.2.3 done")');
  assert.equal(await page.textContent('#count'), '4');

  // The page's own simulator publishes, and the polls bring it back.
  await page.check('#simulate');
  await page.waitForSelector('.tile[data-metric="p99_ms"]', { timeout: 5000 });
  await page.uncheck('#simulate');

  await page.check('#show-wire');
  await screenshot(page, 'dashboard');
  assert.deepEqual(browser.pageErrors, []);
});

// Ticker demo: named SSE events, the browser's own reconnect with
// Last-Event-ID after the server drops the stream, and the gap event.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish, dropSubscribers, screenshot, seqOf } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// [{id, event}] of the events a page shows, in order.
const feed = (page) => page.$$eval('#feed li[data-id]', (items) =>
  items.map((li) => ({ id: li.dataset.id, event: li.dataset.event, text: li.textContent })));

async function waitForFeed(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('#feed li[data-id]').length >= n, n);
}

test('named events arrive, and a dropped stream resumes with Last-Event-ID', { timeout: 45_000 }, async () => {
  const topic = uniqueTopic('ticker');
  const page = await browser.newPage();
  // Every request the EventSource makes, with the headers Chromium sent.
  const streams = [];
  page.on('request', (req) => {
    if (req.url().includes(`/topics/${topic}/sse`)) streams.push(req.allHeaders());
  });

  await page.goto(`${BASE}/demo/ticker?topic=${topic}`);
  await page.waitForSelector('#state.open');

  await publish(topic, 'ACME 10.00', 'price');
  await publish(topic, 'Rocket skates sell out', 'news');
  await publish(topic, 'ACME 10.50', 'price');
  await waitForFeed(page, 3);
  let events = await feed(page);
  assert.deepEqual(events.map((e) => e.event), ['price', 'news', 'price']);
  assert.equal(await page.textContent('#board [data-symbol="ACME"] .price'), '10.50');
  assert.match(await page.textContent('#board [data-symbol="ACME"] .change'), /\+0\.50/);
  assert.match(await page.textContent('#news'), /Rocket skates sell out/);
  const lastBeforeDrop = events[2].id;

  // The server drops the stream. The browser waits the retry: delay (3 s by
  // default) before it reconnects, so what we publish now is missed live
  // and must come in the replay.
  await dropSubscribers(topic);
  await page.waitForSelector('#state.reconnecting');
  const missed = [
    await publish(topic, 'ACME 11.00', 'price'),
    await publish(topic, 'Markets shrug', 'news'),
    await publish(topic, 'GLOBX 54.10', 'price'),
  ];
  assert.equal(await page.evaluate('source.readyState'), 0, 'published while the browser was reconnecting');

  await waitForFeed(page, 6);
  await page.waitForSelector('#state.open');
  events = await feed(page);
  assert.deepEqual(events.slice(3).map((e) => e.id), missed, 'exactly the missed events');
  assert.deepEqual(events.map((e) => seqOf(e.id)), [1, 2, 3, 4, 5, 6], 'no duplicate, nothing missing');
  assert.deepEqual(events.map((e) => e.event), ['price', 'news', 'price', 'price', 'news', 'price']);

  assert.equal(streams.length, 2, 'one reconnect, made by the browser');
  assert.equal((await streams[0])['last-event-id'], undefined);
  assert.equal((await streams[1])['last-event-id'], lastBeforeDrop);
  assert.match(await page.textContent('#conn-log'), /error: stream lost[\s\S]*open again/);
  assert.equal(await page.textContent('#board [data-symbol="GLOBX"] .price'), '54.10');

  // Live again after the reconnect.
  await publish(topic, 'ACME 12.00', 'price');
  await waitForFeed(page, 7);

  await page.check('#show-wire');
  await screenshot(page, 'ticker');
  // Chromium logs the dropped stream itself; anything else is a page bug.
  const dropped = /ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/;
  assert.deepEqual(browser.pageErrors.filter((e) => !dropped.test(e)), []);
  browser.pageErrors.length = 0;
});

test('a cursor the server cannot honour shows a gap, then the replay', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('ticker-gap');
  const first = await publish(topic, 'ACME 1.00', 'price');
  await publish(topic, 'INITECH 2.00', 'price');
  // A cursor beyond the newest message of this epoch.
  const epoch = first.split('-')[0];
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/ticker?topic=${topic}&from=${epoch}-99`);
  await page.waitForSelector('#feed li.gap');
  await waitForFeed(page, 2);
  assert.match(await page.textContent('#feed li.gap'), new RegExp(`after ${epoch}-99, oldest still kept is ${first}`));
  assert.match(await page.textContent('#conn-log'), /gap:/);
  assert.deepEqual((await feed(page)).map((e) => e.event), ['price', 'price']);
  assert.deepEqual(browser.pageErrors, []);
});

test("the page's publisher panel drives the ticker", { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('ticker-pub');
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/ticker?topic=${topic}`);
  await page.waitForSelector('#state.open');

  await page.fill('#symbol', 'UMBR');
  await page.fill('#price', '230.5');
  await page.click('#price-form button');
  await page.waitForSelector('#board [data-symbol="UMBR"]');
  assert.equal(await page.textContent('#board [data-symbol="UMBR"] .price'), '230.50');

  await page.fill('#headline', 'Breaking: tests pass');
  await page.click('#news-form button');
  await page.waitForSelector('#news li:has-text("Breaking: tests pass")');

  // Auto-publish: a price a second, until switched off.
  await page.check('#auto');
  await waitForFeed(page, 4);
  await page.uncheck('#auto');
  const events = await feed(page);
  assert.deepEqual(events.slice(0, 2).map((e) => e.event), ['price', 'news']);
  assert.equal(events[2].event, 'price');
  assert.deepEqual(browser.pageErrors, []);
});

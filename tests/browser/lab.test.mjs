// Transport lab: the four transports side by side, and the browser's limit
// of six HTTP/1.1 connections per host.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, dropSubscribers, screenshot } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const TRANSPORTS = ['ws', 'sse', 'longpoll', 'shortpoll'];

// The counters of one transport card, as shown.
const card = (page, key) => page.$eval(`#t-${key}`, (node) => {
  const out = { state: node.querySelector('.state').textContent };
  for (const dd of node.querySelectorAll('dd')) out[dd.dataset.field] = dd.textContent;
  return out;
});

test('the lab receives over all four transports, across a dropped connection', { timeout: 40_000 }, async (t) => {
  const topic = uniqueTopic('lab');
  const page = await browser.newPage();
  // Its streams would hold connections the next test counts.
  t.after(() => page.close());
  await page.goto(`${BASE}/demo/lab?topic=${topic}&rate=20&interval=250`);
  await page.waitForSelector('#t-ws .state.open');
  await page.waitForSelector('#t-sse .state.open');
  await page.waitForSelector('#t-longpoll .state.waiting');
  assert.match(await page.textContent('#start-cursor'), /^\d+-0$/, 'a fresh topic starts at <epoch>-0');

  const publishedCount = () => page.$eval('#published', (b) => Number(b.textContent));
  await page.click('#publish');
  await page.waitForFunction(() => Number(document.querySelector('#published').textContent) >= 20);
  // Mid-stream, the server drops the WebSocket and the SSE stream. The
  // WebSocket resumes with ?after=; the EventSource with Last-Event-ID,
  // which must win over the ?last_event_id= still in its URL (else it
  // would replay from the start and the sequence check would catch it).
  await dropSubscribers(topic);
  await page.waitForFunction(() => document.querySelector('#t-sse .state').textContent === 'reconnecting');
  await page.waitForSelector('#t-sse .state.open', { timeout: 8000 });
  const atReopen = await publishedCount();
  await page.waitForFunction((n) => Number(document.querySelector('#published').textContent) >= n + 10, atReopen);
  await page.click('#publish');
  await page.waitForTimeout(300);   // let the last POST finish
  const published = Number(await page.textContent('#published'));
  assert.match(await page.textContent('#failed'), /^0\b/);

  // Every transport ends with every message, once, in order.
  await page.waitForFunction((n) =>
    [...document.querySelectorAll('dd[data-field="messages"]')].every((dd) => Number(dd.textContent) === n),
  published, { timeout: 8000 }).catch(async (err) => {
    for (const key of TRANSPORTS) console.log(key, await card(page, key));
    throw err;
  });
  const cards = {};
  for (const key of TRANSPORTS) {
    const c = await card(page, key);
    cards[key] = c;
    assert.equal(c.missing, '0 / 0', `${key}: nothing missing or out of order`);
    assert.match(c.median, /^\d+ ms$/, `${key}: median latency shown`);
    assert.match(c.worst, /^\d+ ms$/, `${key}: worst latency shown`);
    assert.match(c.bytes, /\d/);
    assert.notEqual(c.bytes, '0 B', `${key}: bytes counted`);
  }
  // Two requests each for the streams (one reconnect); one per answer for
  // the polls.
  assert.equal(cards.ws.requests, '2');
  assert.equal(cards.sse.requests, '2');
  assert.ok(Number(cards.longpoll.requests) >= 2);
  assert.ok(Number(cards.shortpoll.requests) >= 4);

  await page.check('#show-wire');
  await screenshot(page, 'lab');
  // Chromium logs the dropped SSE stream itself; anything else is a page bug.
  const dropped = /ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/;
  assert.deepEqual(browser.pageErrors.filter((e) => !dropped.test(e)), []);
  browser.pageErrors.length = 0;
});

test('the seventh EventSource waits while six are open', { timeout: 40_000 }, async () => {
  const topic = uniqueTopic('lab-limit');
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/lab?topic=${topic}`);
  await page.waitForSelector('#t-sse .state.open');
  // The receivers hold two connections (SSE, long poll): release them.
  await page.click('#disconnect');
  await page.waitForSelector('#t-longpoll .state.off');

  for (let i = 1; i <= 6; i++) {
    await page.click('#open-stream');
    await page.waitForSelector(`#streams tbody tr:nth-child(${i})[data-state="open"]`);
  }
  await page.click('#open-stream');
  // Give the seventh every chance to open; it must not.
  await page.waitForTimeout(1500);
  const seventh = await page.$eval('#streams tbody tr:nth-child(7)', (tr) =>
    ({ state: tr.dataset.state, ready: tr.children[2].textContent, opens: tr.children[3].textContent }));
  assert.deepEqual(seventh, { state: 'waiting', ready: '0 (CONNECTING)', opens: '0' });
  assert.equal(await page.textContent('#limit-summary'), '6 open, 1 waiting');
  await screenshot(page, 'lab-limit');

  // Closing one frees a connection, and the waiting one opens.
  await page.click('#streams tbody tr:nth-child(1) button');
  await page.waitForSelector('#streams tbody tr:nth-child(7)[data-state="open"]');
  assert.equal(await page.textContent('#limit-summary'), '6 open, 0 waiting');
  await page.click('#close-streams');
  assert.deepEqual(browser.pageErrors, []);
});

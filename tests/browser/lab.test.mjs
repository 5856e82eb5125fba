// Transport lab: the transports side by side (WebSocket, SSE, HTTP
// streaming, long and short poll, and the WebRTC column that counts
// nothing), the browser's limit of six HTTP/1.1 connections per host, and
// seven topics on one multiplexed EventSource (GET /sse?topic=A&topic=B…).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, dropSubscribers, screenshot } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// The counted transports: every column but WebRTC.
const TRANSPORTS = ['ws', 'sse', 'stream', 'longpoll', 'shortpoll'];

// Page errors and console errors, less those `allowed` names.
const unexpected = (errors, allowed) => errors.filter((e) => !allowed.test(e));

// The counters of one transport card, as shown.
const card = (page, key) => page.$eval(`#t-${key}`, (node) => {
  const out = { state: node.querySelector('.state').textContent };
  for (const dd of node.querySelectorAll('dd')) out[dd.dataset.field] = dd.textContent;
  return out;
});

test('the lab receives over every transport, across a dropped connection', { timeout: 40_000 }, async (t) => {
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
  await page.waitForFunction(([n, keys]) =>
    keys.every((key) => Number(document.querySelector(`#t-${key} dd[data-field="messages"]`).textContent) === n),
  [published, TRANSPORTS], { timeout: 8000 }).catch(async (err) => {
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
  // HTTP streaming: one request, plus one per resume the page made itself
  // (whether the drop ended the stream is the server's business).
  const resumes = Number((await page.textContent('#stream-resumes')).match(/\d+/)?.[0] || 0);
  assert.equal(Number(cards.stream.requests), 1 + resumes);

  // The chart drew a dot per message per transport, and its legend names
  // a median for each.
  await page.waitForTimeout(600);   // one more redraw
  const points = Number(await page.getAttribute('#chart', 'data-points'));
  assert.ok(points >= published * TRANSPORTS.length, `chart points: ${points} for ${published} messages`);
  for (const key of TRANSPORTS) {
    assert.match(await page.textContent(`#chart-legend span[data-key="${key}"] b`), /^median \d+ ms$/, key);
  }
  // The WebRTC column explains and links; it counts nothing.
  assert.equal(await page.getAttribute('#t-webrtc a', 'href'), '/demo/webrtc');
  assert.equal(await page.locator('#t-webrtc dd').count(), 0);

  await page.check('#show-wire');
  await screenshot(page, 'lab');
  // Chromium logs the dropped SSE stream itself; anything else is a page bug.
  const dropped = /ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/;
  assert.deepEqual(unexpected(browser.pageErrors, dropped), []);
  browser.pageErrors.length = 0;
});

test('the seventh EventSource waits while six are open', { timeout: 40_000 }, async () => {
  const topic = uniqueTopic('lab-limit');
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/lab?topic=${topic}`);
  await page.waitForSelector('#t-sse .state.open');
  // The receivers hold connections (SSE, long poll, HTTP streaming):
  // release them.
  await page.click('#disconnect');
  await page.waitForSelector('#t-longpoll .state.off');
  await page.waitForSelector('#t-stream .state.off');

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
  assert.deepEqual(unexpected(browser.pageErrors, /^$/), []);
  await page.close();
});

test('seven topics stall on seven EventSources and flow on one', { timeout: 40_000 }, async () => {
  const topic = uniqueTopic('lab-seven');
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/lab?topic=${topic}`);
  await page.waitForSelector('#t-sse .state.open');
  await page.click('#disconnect');
  await page.waitForSelector('#t-longpoll .state.off');
  await page.waitForSelector('#t-stream .state.off');
  const summary = () => page.$eval('#seven-summary', (s) =>
    ({ connections: Number(s.dataset.connections), receiving: Number(s.dataset.receiving), waiting: Number(s.dataset.waiting) }));

  // Seven EventSources: six connections, and the seventh topic hears nothing.
  await page.click('#seven-separate');
  await page.waitForFunction(() => document.querySelector('#seven-summary').dataset.receiving === '6', null, { timeout: 10_000 });
  await page.waitForTimeout(1500);
  assert.deepEqual(await summary(), { connections: 6, receiving: 6, waiting: 1 });
  assert.equal(await page.getAttribute('#seven tbody tr:nth-child(7)', 'data-state'), 'waiting');
  assert.equal(await page.textContent('#seven tbody tr:nth-child(7) td:nth-child(4)'), '0');
  await screenshot(page, 'lab-seven-separate');

  // One EventSource carries all seven, and its id is the combined cursor,
  // one TOPIC=ID pair per topic.
  await page.click('#seven-mux');
  await page.waitForFunction(() => document.querySelector('#seven-summary').dataset.receiving === '7', null, { timeout: 10_000 });
  assert.deepEqual(await summary(), { connections: 1, receiving: 7, waiting: 0 });
  const cursor = await page.textContent('#seven-cursor');
  const pairs = cursor.split(',');
  assert.ok(pairs.length >= 1 && pairs.length <= 7, cursor);
  for (const pair of pairs) assert.match(pair, new RegExp(`^${topic}\\.t[1-7]=\\d+-\\d+$`), cursor);
  await screenshot(page, 'lab-seven-one');
  await page.click('#seven-stop');
  assert.deepEqual(unexpected(browser.pageErrors, /^$/), []);
  await page.close();
});

// permessage-deflate (RFC 7692) in Chromium: the browser offers it on
// every WebSocket, the server accepts it on a topic socket and on /ws, and
// topic messages long enough to be compressed arrive intact.
//
// The page cannot see RSV1; `ws.extensions` is what the browser agreed to,
// and a message is only readable if Chromium inflated what the server
// compressed. The Rust test tests/ws_deflate.rs checks the bits on the wire.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Well over the server's compression threshold, and not one repeated
// character: lines that differ, as a real feed's do.
const bigText = (label) =>
  Array.from({ length: 120 }, (_, i) => `${label} line ${i}: price ${(i * 7919) % 1000}.${i % 100} ✓`).join('\n');

test('a topic WebSocket negotiates permessage-deflate and inflates published messages', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('deflate-topic');
  const page = await browser.newPage();
  await page.goto(BASE + '/');
  // The page opens the socket and keeps what it gets on window.got.
  const extensions = await page.evaluate(async (url) => {
    window.got = [];
    const ws = new WebSocket(url);
    ws.onmessage = (e) => window.got.push(e.data);
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    window.ws = ws;
    return ws.extensions;
  }, BASE.replace(/^http/, 'ws') + `/topics/${topic}/ws`);
  assert.match(extensions, /^permessage-deflate/, `extensions: ${extensions}`);

  const texts = [bigText('first'), 'short, sent plain', bigText('third')];
  const ids = [];
  for (const t of texts) ids.push(await publish(topic, t));
  await page.waitForFunction((n) => window.got.length >= n, texts.length);
  const got = (await page.evaluate(() => window.got)).map((s) => JSON.parse(s));
  assert.deepEqual(got, texts.map((data, i) => ({ id: ids[i], event: 'message', data })));
  assert.deepEqual(browser.pageErrors, []);
  await page.close();
});

test('/ws negotiates permessage-deflate; subscribe, publish and delivery survive compression', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('deflate-mux');
  const page = await browser.newPage();
  await page.goto(BASE + '/');
  const extensions = await page.evaluate(async (url) => {
    window.got = [];
    const ws = new WebSocket(url);
    ws.onmessage = (e) => window.got.push(JSON.parse(e.data));
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    window.ws = ws;
    return ws.extensions;
  }, BASE.replace(/^http/, 'ws') + '/ws');
  assert.match(extensions, /^permessage-deflate/, `extensions: ${extensions}`);

  await page.evaluate((t) => window.ws.send(JSON.stringify({ type: 'subscribe', topic: t, ref: 1 })), topic);
  await page.waitForFunction(() => window.got.some((m) => m.type === 'ack' && m.ref === 1));
  // One message from outside, one the page publishes itself (Chromium
  // compresses its own frames too).
  const fromOutside = bigText('from curl');
  const fromPage = bigText('from the page');
  const id = await publish(topic, fromOutside);
  await page.evaluate(([t, d]) => window.ws.send(JSON.stringify({ type: 'publish', topic: t, data: d, ref: 2 })),
    [topic, fromPage]);
  await page.waitForFunction(() => window.got.filter((m) => !m.type && m.topic).length >= 2);
  // Deliveries have no "type"; acks and errors do.
  const messages = (await page.evaluate(() => window.got)).filter((m) => !m.type && m.topic);
  assert.deepEqual(messages[0], { topic, id, event: 'message', data: fromOutside });
  assert.equal(messages[1].topic, topic);
  assert.equal(messages[1].data, fromPage);
  assert.deepEqual(browser.pageErrors, []);
  await page.close();
});

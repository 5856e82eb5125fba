// Many topics on one EventSource (/demo/multi): ten topics share one
// connection; when the server drops it, the browser reconnects by itself
// with the combined Last-Event-ID and every topic resumes exactly.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish, dropSubscribers, screenshot, sleep } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const received = (page) => page.evaluate(() => window.received);

async function waitForTotal(page, n, timeout = 15_000) {
  await page.waitForFunction((n) => window.received.length >= n, n, { timeout });
}

// Publishes `rounds` messages to every topic, interleaved; records them.
async function publishRounds(topics, from, rounds, sent) {
  for (let i = from; i < from + rounds; i++) {
    for (const t of topics) {
      const data = `${t}#${i}`;
      const id = await publish(t, data);
      sent.get(t).push({ id, data });
    }
  }
}

function assertExactlyOnce(got, sent) {
  for (const [topic, want] of sent) {
    const mine = got.filter((m) => m.topic === topic);
    assert.deepEqual(mine.map((m) => m.data), want.map((m) => m.data), `${topic}: every message once, in order`);
    assert.deepEqual(mine.map((m) => m.id), want.map((m) => m.id), `${topic}: the published ids`);
  }
  assert.equal(got.length, [...sent.values()].reduce((n, v) => n + v.length, 0), 'nothing else arrived');
}

test('ten topics on one EventSource survive a dropped connection with no loss and no duplicate', { timeout: 60_000 }, async () => {
  const base = uniqueTopic('mx');
  const topics = Array.from({ length: 10 }, (_, i) => `${base}.${i}`);
  const sent = new Map(topics.map((t) => [t, []]));
  const page = await browser.newPage();
  const streams = [];
  page.on('request', (req) => {
    if (req.url().includes('/sse?')) streams.push(req);
  });
  await page.goto(`${BASE}/demo/multi?` + topics.map((t) => 'topic=' + t).join('&'));
  await page.waitForSelector('#state.open');
  assert.equal(streams.length, 1, 'one connection for ten topics');

  await publishRounds(topics, 0, 3, sent);
  await waitForTotal(page, 30);
  let got = await received(page);
  assertExactlyOnce(got, sent);
  // Each event's id is the combined cursor after it: every topic is in it.
  const cursor = got.at(-1).cursor;
  assert.equal(cursor.split(',').length, 10, cursor);
  for (const t of topics) assert.ok(cursor.includes(`${t}=`), `${t} in ${cursor}`);
  assert.ok(cursor.includes(`${got.at(-1).topic}=${got.at(-1).id}`), cursor);

  // The server drops the stream; messages published while it is down are
  // not seen until the browser comes back by itself (after retry: 3000).
  const dropped = JSON.parse(await dropSubscribers(topics[3]));
  assert.equal(dropped.dropped, 1);
  await page.waitForFunction(() => window.errors >= 1);
  await publishRounds(topics, 3, 2, sent);
  await page.waitForFunction(() => window.opens >= 2, null, { timeout: 15_000 });
  await publishRounds(topics, 5, 2, sent);
  await waitForTotal(page, 70);
  await sleep(300);

  got = await received(page);
  assertExactlyOnce(got, sent);
  assert.deepEqual(await page.evaluate(() => window.gaps), [], 'an exact resume is not a gap');

  // The reconnect carried the combined cursor in Last-Event-ID.
  assert.equal(streams.length, 2);
  const header = (await streams[1].allHeaders())['last-event-id'];
  assert.equal(header, got[29].cursor, 'Last-Event-ID is the id of the last event seen');

  // A second drop, during a burst: still exact.
  const burst = publishRounds(topics, 7, 3, sent);
  await sleep(20);
  await dropSubscribers(topics[0]);
  await burst;
  await waitForTotal(page, 100, 20_000);
  await sleep(300);
  assertExactlyOnce(await received(page), sent);
  assert.ok(await page.evaluate(() => window.opens) >= 2);

  await screenshot(page, 'multiplex');
  // Chromium logs the dropped stream itself; anything else is a page bug.
  const dropLog = /ERR_INCOMPLETE_CHUNKED_ENCODING|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/;
  assert.deepEqual(browser.pageErrors.filter((e) => !dropLog.test(e)), []);
});

test('named events show when the URL lists their names', { timeout: 30_000 }, async () => {
  const a = uniqueTopic('mxn');
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/multi?topic=${a}&event=price`);
  await page.waitForSelector('#state.open');
  assert.match(await page.textContent('#events'), /listening for price/);
  const plain = await publish(a, 'unnamed');
  const named = await publish(a, '42', 'price');
  await waitForTotal(page, 2);
  const got = await received(page);
  assert.deepEqual(got.map((m) => [m.id, m.event, m.data]), [[plain, 'message', 'unnamed'], [named, 'price', '42']]);
  await page.close();
});

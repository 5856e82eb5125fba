// Chat demo: two tabs talk over WebSocket, then survive a dropped connection.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish, dropSubscribers, screenshot, seqOf } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Ids of the chat messages a page shows, in order.
const shownIds = (page) => page.$$eval('#messages li.msg', (items) => items.map((li) => li.dataset.id));

test('two pages chat over WebSocket and resume after a drop', { timeout: 45_000 }, async () => {
  const room = uniqueTopic('chat');
  const alice = await browser.newPage();
  const bob = await browser.newPage();
  const sockets = { alice: [], bob: [] };
  alice.on('websocket', (ws) => sockets.alice.push(ws.url()));
  bob.on('websocket', (ws) => sockets.bob.push(ws.url()));

  await alice.goto(`${BASE}/demo/chat?room=${room}&name=alice`);
  await bob.goto(`${BASE}/demo/chat?room=${room}&name=bob`);
  await alice.waitForSelector('#state.open');
  await bob.waitForSelector('#state.open');
  // The first join asks for the room's history.
  assert.match(sockets.alice[0], new RegExp(`/topics/${room}/ws\\?after=earliest$`));

  // Alice speaks; both see it, and only Alice's copy is marked as hers.
  await alice.fill('#text', 'hello from alice');
  await alice.click('#send');
  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li.msg:has-text("hello from alice")');
  }
  assert.equal(await alice.locator('#messages li.mine').count(), 1);
  assert.equal(await bob.locator('#messages li.mine').count(), 0);

  // Bob answers (Enter submits the form).
  await bob.fill('#text', 'hi alice, bob here');
  await bob.press('#text', 'Enter');
  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li.msg:has-text("bob here")');
  }
  const before = await alice.textContent('#last-id');
  assert.deepEqual(await shownIds(alice), await shownIds(bob));

  // The server drops both connections; a message is published while the
  // pages wait out their backoff. Both must reconnect with ?after=<last id>
  // and get it exactly once.
  await dropSubscribers(room);
  const missedId = await publish(room, JSON.stringify({ name: 'carol', text: 'sent while you were away', from: 'x' }));
  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li.msg:has-text("sent while you were away")');
    await page.waitForSelector('#state.open');
  }
  assert.equal(sockets.alice.length, 2, 'alice reconnected once');
  assert.match(sockets.alice[1], new RegExp(`\\?after=${before}$`));
  assert.match(sockets.bob[1], new RegExp(`\\?after=${before}$`));
  assert.match(await alice.textContent('#log'), /connection lost/);

  const ids = await shownIds(alice);
  assert.deepEqual(ids, await shownIds(bob));
  assert.equal(ids.length, 3);
  assert.equal(ids[2], missedId);
  assert.deepEqual(ids.map(seqOf), [1, 2, 3], 'no duplicate, nothing missing');

  // Still talking after the reconnect.
  await bob.fill('#text', 'still here');
  await bob.click('#send');
  await alice.waitForSelector('#messages li.msg:has-text("still here")');

  await alice.check('#show-wire');
  await alice.waitForSelector('section.wire li');
  await screenshot(alice, 'chat');
  assert.deepEqual(browser.pageErrors, []);
});

test('a cursor the server cannot honour brings a gap notice, then the history', { timeout: 30_000 }, async () => {
  const room = uniqueTopic('chat-gap');
  const first = await publish(room, JSON.stringify({ name: 'dave', text: 'kept one', from: 'x' }));
  await publish(room, 'kept two, plain text');
  const epoch = first.split('-')[0];
  const page = await browser.newPage();
  // A cursor beyond the newest message of this epoch.
  await page.goto(`${BASE}/demo/chat?room=${room}&from=${epoch}-99`);
  await page.waitForSelector('#messages li.gap');
  assert.match(await page.textContent('#messages li.gap'),
    new RegExp(`after ${epoch}-99, the oldest the room still has is ${first}`));
  await page.waitForFunction(() => document.querySelectorAll('#messages li.msg').length === 2);
  assert.match(await page.textContent('#messages'), /kept one[\s\S]*kept two, plain text/);
  assert.match(await page.textContent('#log'), /gap reported/);
  assert.deepEqual(browser.pageErrors, []);
});

// WebRTC demo: two tabs signal through a topic WebSocket, open a
// DataChannel, and chat peer to peer without the server.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, screenshot, sleep } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// The server's count of every message published to any topic.
async function publishedCount() {
  const res = await fetch(BASE + '/stats');
  assert.equal(res.status, 200);
  return (await res.json()).published;
}

const text = (page, selector) => page.textContent(selector);

// Two tabs in a new room: Alice waits alone first, Bob's hello finds her;
// back when both DataChannels are open.
async function pairUp(prefix) {
  const room = uniqueTopic(prefix);
  const alice = await browser.newPage();
  const bob = await browser.newPage();
  await alice.goto(`${BASE}/demo/webrtc?room=${room}`);
  await alice.waitForFunction(() => document.querySelector('#ws-state').textContent === 'open');
  await bob.goto(`${BASE}/demo/webrtc?room=${room}`);
  for (const page of [alice, bob]) {
    await page.waitForSelector('#dc-state.open', { timeout: 20_000 });
  }
  return { alice, bob };
}

test('two tabs connect through pushwire, then chat without it', { timeout: 45_000 }, async () => {
  const before = await publishedCount();
  const { alice, bob } = await pairUp('rtc');
  // One of them is polite, the other not: roles come from the peer ids.
  const roles = [await text(alice, '#role'), await text(bob, '#role')].map((r) => r.split(' ')[0]).sort();
  assert.deepEqual(roles, ['impolite', 'polite']);
  assert.equal(await text(alice, '#peer'), await text(bob, '#me'));
  assert.equal(await text(bob, '#peer'), await text(alice, '#me'));

  // Signaling went through the server: hello, offer/answer, candidates.
  const signalSent = Number(await text(alice, '#signal-sent')) + Number(await text(bob, '#signal-sent'));
  assert.ok(signalSent >= 4, `signaling messages sent: ${signalSent}`);
  assert.ok(await publishedCount() - before >= signalSent, 'every signaling message was a publish');

  // Candidates trickle until gathering completes; after that the signaling
  // is quiet and the server's counter stands still.
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.querySelector('#ice-gathering').textContent === 'complete');
  }
  await sleep(300);
  const atChat = await publishedCount();

  await alice.fill('#text', 'hello over the data channel');
  await alice.click('#send');
  await bob.waitForSelector('#messages li.msg:has-text("hello over the data channel")');
  await bob.fill('#text', 'and back, peer to peer');
  await bob.press('#text', 'Enter');
  await alice.waitForSelector('#messages li.msg:has-text("and back, peer to peer")');
  assert.equal(await text(alice, '#p2p-sent'), '1');
  assert.equal(await text(alice, '#p2p-received'), '1');
  await sleep(300);
  assert.equal(await publishedCount(), atChat, 'the chat did not cross the server');
  // And the page says so: no chat text on its wire panel.
  assert.doesNotMatch(await text(alice, 'section.wire'), /hello over the data channel/);
  assert.match(await text(alice, '#route'), /host/);

  await alice.check('#show-wire');
  await screenshot(alice, 'webrtc');
  assert.deepEqual(browser.pageErrors, []);
  await alice.close();
  await bob.close();
});

test('two tabs joining at once still end with one agreed session', { timeout: 45_000 }, async () => {
  const room = uniqueTopic('rtc-race');
  const [one, two] = [await browser.newPage(), await browser.newPage()];
  await Promise.all([one.goto(`${BASE}/demo/webrtc?room=${room}`), two.goto(`${BASE}/demo/webrtc?room=${room}`)]);
  for (const page of [one, two]) {
    await page.waitForSelector('#dc-state.open', { timeout: 20_000 });
  }
  await two.fill('#text', 'raced and still connected');
  await two.click('#send');
  await one.waitForSelector('#messages li.msg:has-text("raced and still connected")');
  for (const page of [one, two]) {
    assert.equal(await text(page, '#signaling-state'), 'stable');
  }
  assert.deepEqual(browser.pageErrors, []);
});

test('a tab that reloads says bye, and its new self connects again', { timeout: 45_000 }, async () => {
  const { alice, bob } = await pairUp('rtc-reload');
  const oldBob = await text(bob, '#me');

  await bob.reload();
  await bob.waitForSelector('#dc-state.open', { timeout: 20_000 });
  await alice.waitForFunction((old) => {
    const peer = document.querySelector('#peer').textContent;
    return peer !== old && peer !== 'none yet' && document.querySelector('#dc-state').classList.contains('open');
  }, oldBob, { timeout: 20_000 });
  assert.equal(await text(alice, '#peer'), await text(bob, '#me'));
  assert.match(await text(alice, '#log'), new RegExp(`peer ${oldBob} left`));
  await bob.fill('#text', 'back after a reload');
  await bob.click('#send');
  await alice.waitForSelector('#messages li.msg:has-text("back after a reload")');
  assert.deepEqual(browser.pageErrors, []);
});

test('when the peer leaves, the panel shows the connection closed, not its last state', { timeout: 45_000 }, async () => {
  const { alice, bob } = await pairUp('rtc-leave');
  assert.equal(await text(alice, '#pc-state'), 'connected');

  await bob.click('#leave-btn');
  await alice.waitForFunction(() => document.querySelector('#peer').textContent === 'none yet', null, { timeout: 10_000 });
  for (const page of [alice, bob]) {
    assert.equal(await text(page, '#pc-state'), 'closed');
    assert.equal(await text(page, '#ice-state'), 'closed');
    assert.equal(await text(page, '#signaling-state'), 'closed');
  }
  assert.match(await text(alice, '#log'), /left/);
  assert.deepEqual(browser.pageErrors, []);
  await alice.close();
  await bob.close();
});

// Socket.IO chat demo (/demo/socketio): the official browser client, which
// the project does not ship, served from the npm package by
// --socketio-client-js. Two pages chat in rooms; every send is acked.
//
// The shared server ($PUSHWIRE_URL) runs without the flag: there the page
// must explain how to get the client. For the chat, this file starts a
// server of its own with the flag (the binary scripts/browser-tests.sh
// built, or $PUSHWIRE_BIN), on a free port, and stops it at the end.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE, launch, uniqueTopic, screenshot, seqOf } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const bundle = path.join(here, 'node_modules', 'socket.io-client', 'dist', 'socket.io.min.js');
const binary = process.env.PUSHWIRE_BIN || path.join(repoRoot, 'target', 'release', 'pushwire');

let browser;
let server = null; // {child, base}

// The client comes from npm, pinned in package.json; install it when an
// older checkout of node_modules lacks it.
function installClient() {
  if (fs.existsSync(bundle)) return;
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: here, stdio: 'inherit' });
  assert.ok(fs.existsSync(bundle), `npm ci installed ${bundle}`);
}

// Starts `pushwire --listen 127.0.0.1:0 --socketio-client-js BUNDLE` and
// reads the address it chose from its first line.
function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['--listen', '127.0.0.1:0', '--socketio-client-js', bundle], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no address from ${binary}: ${text}`)), 10_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      text += chunk;
      const m = /listening on (http:\/\/[0-9.]+:[0-9]+)/.exec(text);
      if (m) { clearTimeout(timer); resolve({ child, base: m[1] }); }
    });
  });
}

// POST a text message to this file's own server; resolves to its id.
async function publish(base, topic, body) {
  const res = await fetch(`${base}/topics/${topic}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${topic}: ${text}`);
  return JSON.parse(text).id;
}

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (server) {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
});

test('without --socketio-client-js the page says how to get the client', { timeout: 30_000 }, async () => {
  const res = await fetch(`${BASE}/socket.io.min.js`);
  assert.equal(res.status, 404);
  assert.match(await res.text(), /npm install socket\.io-client.*--socketio-client-js/s);

  const page = await browser.newPage();
  const got = await page.goto(`${BASE}/demo/socketio`);
  assert.equal(got.status(), 200);
  await page.waitForSelector('#missing', { state: 'visible' });
  assert.equal(await page.isVisible('#chat'), false);
  const text = await page.textContent('#missing');
  assert.match(text, /npm install socket\.io-client/);
  assert.match(text, /--socketio-client-js node_modules\/socket\.io-client\/dist\/socket\.io\.min\.js/);
  await screenshot(page, 'socketio-missing');
  // The only error is the bundle's 404, which the page explains.
  assert.deepEqual(browser.pageErrors.filter((e) => !/Failed to load resource: .* 404/.test(e)), []);
  browser.pageErrors.length = 0;
  await page.close();
});

test('two pages chat in rooms over Socket.IO, every send acked', { timeout: 60_000 }, async (t) => {
  if (!fs.existsSync(binary)) return t.skip(`no server binary at ${binary}`);
  installClient();
  server = await startServer();
  const base = server.base;
  const probe = await fetch(`${base}/socket.io/?EIO=4&transport=polling`);
  await probe.text();
  if (probe.status !== 200) return t.skip(`/socket.io/ is not served by this build (${probe.status})`);

  const js = await fetch(`${base}/socket.io.min.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
  assert.equal((await js.arrayBuffer()).byteLength, fs.statSync(bundle).size, 'the bundle, byte for byte');

  const room = uniqueTopic('sio-chat');
  const other = uniqueTopic('sio-side');
  const kept = await publish(base, room, 'kept from before anyone joined');

  const alice = await browser.newPage();
  const bob = await browser.newPage();
  const upgraded = { alice: false, bob: false };
  for (const [name, page] of [['alice', alice], ['bob', bob]]) {
    page.on('websocket', (ws) => { if (ws.url().includes('/socket.io/?EIO=4&transport=websocket')) upgraded[name] = true; });
  }
  await alice.goto(`${base}/demo/socketio?room=${room}&name=alice`);
  await bob.goto(`${base}/demo/socketio?room=${room}&name=bob`);
  for (const page of [alice, bob]) {
    await page.waitForSelector('#state.open');
    // Joining replays what the room kept.
    await page.waitForSelector(`#messages li.msg[data-id="${kept}"]`);
  }

  // Alice speaks: her copy is acked with the id both pages show.
  await alice.fill('#text', 'hello from alice');
  await alice.click('#send');
  await alice.waitForSelector('#messages li.mine.acked:has-text("hello from alice")');
  const ackId = await alice.getAttribute('#messages li.mine.acked', 'data-ack');
  assert.equal(seqOf(ackId), seqOf(kept) + 1);
  await bob.waitForSelector(`#messages li.msg[data-id="${ackId}"]:has-text("hello from alice")`);
  await alice.waitForSelector(`#messages li.mine[data-id="${ackId}"]`);
  assert.equal(await bob.locator('#messages li.mine').count(), 0);

  // Bob answers with Enter.
  await bob.fill('#text', 'hi alice, bob here');
  await bob.press('#text', 'Enter');
  await bob.waitForSelector('#messages li.mine.acked:has-text("bob here")');
  await alice.waitForSelector('#messages li.msg:has-text("bob here")');

  // A second room: Alice joins it and talks there; Bob, not in it, sees
  // nothing of it, and Alice's first room counts what she has not read.
  await alice.fill('#room', other);
  await alice.click('#join-btn');
  await alice.waitForSelector(`#rooms button[data-room="${other}"][aria-pressed="true"]`);
  await alice.waitForFunction(() => /after earliest/.test(document.querySelector('#log').textContent));
  await alice.fill('#text', 'only in the side room');
  await alice.click('#send');
  await alice.waitForSelector('#messages li.mine.acked:has-text("only in the side room")');
  const fromHttp = await publish(base, room, 'posted over HTTP while alice is away');
  await bob.waitForSelector(`#messages li.msg[data-id="${fromHttp}"]`);
  await alice.waitForSelector(`#rooms button[data-room="${room}"] .unread`);
  assert.equal(await alice.textContent(`#rooms button[data-room="${room}"] .unread`), '1');
  assert.equal(await bob.locator('#messages li:has-text("only in the side room")').count(), 0);

  // Back in the first room: the same conversation on both pages.
  await alice.click(`#rooms button[data-room="${room}"]`);
  await alice.waitForSelector(`#messages li.msg[data-id="${fromHttp}"]`);
  const ids = (page) => page.$$eval('#messages li.msg', (items) => items.map((li) => li.dataset.id));
  assert.deepEqual(await ids(alice), await ids(bob));
  assert.deepEqual((await ids(alice)).map(seqOf), [1, 2, 3, 4], 'no duplicate, nothing missing');
  assert.equal(Number(await alice.textContent('#acks')), 2 + 2, 'two subscribes and two publishes acked');

  // The room is deleted: both pages say messages were lost (the server's
  // `gap` event), and the next message follows on the new history.
  const del = await fetch(`${base}/topics/${room}`, { method: 'DELETE' });
  assert.equal(del.status, 200, await del.text());
  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li.gap:has-text("Some messages of this room were lost")');
  }
  const afterDelete = await publish(base, room, 'after the delete');
  assert.equal(seqOf(afterDelete), 1);
  await bob.waitForSelector(`#messages li.msg[data-id="${afterDelete}"]`);

  assert.ok(upgraded.alice && upgraded.bob, 'both pages upgraded to a WebSocket');
  assert.equal(await alice.textContent('#transport'), 'websocket');

  await alice.check('#show-wire');
  await alice.waitForSelector('section.wire li');
  await screenshot(alice, 'socketio');
  assert.deepEqual(browser.pageErrors, []);
});

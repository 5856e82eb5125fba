// TLS in a real browser: the chat demo loaded over https from a pushwire
// started here with --tls-cert/--tls-key (an ECDSA P-256 certificate for
// localhost made with openssl), its WebSocket opened over wss, two tabs
// talking, and a message published over HTTPS from Node arriving.
// Chromium runs with --ignore-certificate-errors: the test CA is not in
// its trust store.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { uniqueTopic, screenshot, sleep } from './helpers.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.PUSHWIRE_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(repoRoot, 'target'), 'release', 'pushwire');

let dir, server, base, ca, context, userDataDir;
const pageErrors = [];

function makeCertificate(d) {
  const run = (...args) => execFileSync('openssl', args, { cwd: d, stdio: 'pipe' });
  fs.writeFileSync(path.join(d, 'leaf.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n'
    + 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  run('req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=pushwire browser CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', 'ca.pem');
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem');
  run('req', '-new', '-key', 'key.pem', '-subj', '/CN=localhost', '-out', 'leaf.csr');
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-sha256',
    '-days', '2', '-extfile', 'leaf.ext', '-out', 'cert.pem');
}

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// A request over HTTPS that trusts the test CA; resolves to [status, body].
function request(method, url, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers: { 'content-type': 'text/plain' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve([res.statusCode, text]));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushwire-tls-browser-'));
  makeCertificate(dir);
  ca = fs.readFileSync(path.join(dir, 'ca.pem'));
  const port = await freePort();
  base = `https://localhost:${port}`;
  server = spawn(bin, ['--listen', `127.0.0.1:${port}`,
    '--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')],
  { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      if ((await request('GET', base + '/healthz'))[0] === 200) break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error('the TLS server did not come up: ' + e);
    }
    await sleep(100);
  }
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pushwire-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors',
    ],
  });
  context.setDefaultTimeout(10_000);
  context.on('page', (page) => page.on('pageerror', (err) => pageErrors.push(String(err))));
});

after(async () => {
  await context?.close();
  if (server && server.exitCode === null) server.kill('SIGTERM');
  for (const d of [userDataDir, dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test('the chat demo over https talks over wss and receives an HTTPS publish', { timeout: 45_000 }, async () => {
  const room = uniqueTopic('tls-chat');
  const alice = context.pages()[0] || await context.newPage();
  const bob = await context.newPage();
  for (const page of [alice, bob]) page.on('pageerror', (err) => pageErrors.push(String(err)));
  const sockets = [];
  alice.on('websocket', (ws) => sockets.push(ws.url()));

  const res = await alice.goto(`${base}/demo/chat?room=${room}&name=alice`);
  assert.equal(res.status(), 200);
  const details = await res.securityDetails();
  assert.match(details?.protocol ?? '', /^TLS 1\.[23]$/, JSON.stringify(details));
  assert.equal(await alice.evaluate(() => location.protocol), 'https:');
  await bob.goto(`${base}/demo/chat?room=${room}&name=bob`);
  await alice.waitForSelector('#state.open');
  await bob.waitForSelector('#state.open');
  assert.match(sockets[0], new RegExp(`^wss://localhost:\\d+/topics/${room}/ws`));

  // Bob speaks over his wss; Alice sees it.
  await bob.fill('#text', 'hello over wss');
  await bob.click('#send');
  await alice.waitForSelector('#messages li.msg:has-text("hello over wss")');

  // A message published over HTTPS from outside the browser reaches both.
  const [status, body] = await request('POST', `${base}/topics/${room}`,
    JSON.stringify({ name: 'carol', text: 'published over https', from: 'x' }));
  assert.equal(status, 200, body);
  for (const page of [alice, bob]) {
    await page.waitForSelector('#messages li.msg:has-text("published over https")');
  }
  await screenshot(alice, 'tls-chat');
  assert.deepEqual(pageErrors, []);
});

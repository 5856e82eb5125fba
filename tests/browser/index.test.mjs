// The index page, and what every page shares: routes, assets, the wire switch.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish, screenshot } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const DEMOS = ['/demo/chat', '/demo/ticker', '/demo/notifications', '/demo/dashboard', '/demo/lab', '/demo/webrtc', '/demo/socketio'];

test('the index links every demo and its "try it" panel round-trips a message', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('index');
  const page = await browser.newPage();
  const res = await page.goto(`${BASE}/?topic=${topic}`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'], /^text\/html/);
  assert.equal(await page.textContent('h1'), 'pushwire');

  const links = await page.$$eval('.cards a.card', (as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(links, DEMOS);
  // The curl examples name this server.
  assert.equal(await page.textContent('.tour .host'), new URL(BASE).host);

  await page.waitForSelector('#try-state.open');
  await page.fill('#try-text', 'typed on the index page');
  await page.click('#try-form button');
  await page.waitForSelector('#try-feed li:has-text("typed on the index page")');
  const fromShell = await publish(topic, 'sent with curl');
  await page.waitForSelector(`#try-feed li[data-id="${fromShell}"]`);

  await page.check('#show-wire');
  await screenshot(page, 'index');
  assert.deepEqual(browser.pageErrors, []);
  await page.close();
});

test('every demo page loads with its shared assets and a wire switch', { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  const failed = [];
  // The Socket.IO bundle is 404 unless the server was given
  // --socketio-client-js; /demo/socketio then explains how to get it.
  const optional = (url) => url.endsWith('/socket.io.min.js');
  page.on('response', (res) => { if (res.status() >= 400 && !optional(res.url())) failed.push(res.status() + ' ' + res.url()); });
  page.on('requestfailed', (req) => {
    // Leaving a page cancels its streams; that is not a failure.
    if (!/ERR_ABORTED/.test(req.failure()?.errorText)) failed.push(req.failure()?.errorText + ' ' + req.url());
  });
  for (const path of DEMOS) {
    const res = await page.goto(BASE + path);
    assert.equal(res.status(), 200, path);
    assert.match(res.headers()['content-type'], /^text\/html/, path);
    await page.waitForLoadState('load');
    assert.equal(await page.locator('#show-wire').count(), 1, `${path} has a wire switch`);
    assert.equal(await page.getAttribute('header.top nav a[aria-current="page"]', 'href'), path);
    // The shared stylesheet applied (the top bar is dark).
    const bar = await page.$eval('header.top', (h) => getComputedStyle(h).backgroundColor);
    assert.equal(bar, 'rgb(29, 35, 48)', `${path}: common.css applied`);
  }
  for (const [asset, type] of [['common.css', /^text\/css/], ['common.js', /javascript/]]) {
    const res = await fetch(`${BASE}/assets/${asset}`);
    assert.equal(res.status, 200, asset);
    assert.match(res.headers.get('content-type') || '', type, asset);
  }
  assert.deepEqual(failed, []);
  // Chromium logs that 404 without its URL; any other failed load is in
  // `failed` above.
  assert.deepEqual(browser.pageErrors.filter((e) => !/Failed to load resource: .* 404/.test(e)), []);
});

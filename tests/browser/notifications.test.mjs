// Notifications demo: the long-poll loop.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, uniqueTopic, publish, screenshot, seqOf, sleep } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const shownIds = (page) => page.$$eval('#list li.note', (items) => items.map((li) => li.dataset.id));

async function waitForCount(page, n) {
  await page.waitForFunction((n) => document.querySelectorAll('#list li.note').length >= n, n);
}

test('the first request waits for the next message, then the loop follows the cursor', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('notes');
  await publish(topic, 'published before the page opened');
  const page = await browser.newPage();
  const polls = [];
  page.on('request', (req) => { if (req.url().includes('/poll')) polls.push(new URL(req.url())); });

  const firstPoll = page.waitForRequest((req) => req.url().includes('/poll'));
  await page.goto(`${BASE}/demo/notifications?topic=${topic}`);
  await firstPoll;
  await page.waitForSelector('#state.waiting');
  assert.equal(polls[0].searchParams.get('after'), null, 'no cursor on the first request');
  // Without a cursor, only what is published after the server parks the
  // request counts: give it time to arrive before publishing.
  await sleep(500);

  const first = await publish(topic, JSON.stringify({ title: 'Deploy started', body: 'v1.2.3', level: 'info' }));
  await waitForCount(page, 1);
  // Back to back: whether they come in one answer or two, none is lost.
  const more = [
    await publish(topic, JSON.stringify({ title: 'Disk almost full', level: 'warn' })),
    await publish(topic, JSON.stringify({ title: 'Deploy failed', body: 'rolled back', level: 'alert' })),
    await publish(topic, 'plain text works too'),
  ];
  await waitForCount(page, 4);
  await sleep(200);
  // Newest first on the page.
  assert.deepEqual((await shownIds(page)).reverse(), [first, ...more]);
  assert.equal(seqOf(first), 2, 'the message from before the page opened was not shown');
  assert.equal(await page.textContent('#unread'), '4');
  assert.equal(await page.locator('#list li.note.alert').count(), 1);
  assert.match(await page.textContent('#list'), /plain text works too/);

  // Every request after the first carries the cursor of the one before.
  assert.ok(polls.length >= 3);
  assert.equal(polls[1].searchParams.get('after'), first);
  assert.equal(await page.textContent('#last-id'), more[2]);

  // The page's own sender.
  await page.fill('#title', 'Sent from the page');
  await page.selectOption('#level', 'warn');
  await page.click('#send-form button[type="submit"]');
  await page.waitForSelector('#list li.note.warn:has-text("Sent from the page")');
  await page.click('#burst');
  await waitForCount(page, 8);

  await page.check('#show-wire');
  await screenshot(page, 'notifications');
  assert.deepEqual(browser.pageErrors, []);
});

test('an expired long poll answers timeout:true and the loop goes on', { timeout: 30_000 }, async () => {
  const topic = uniqueTopic('notes-timeout');
  const earlier = await publish(topic, 'kept from before');
  const page = await browser.newPage();
  await page.goto(`${BASE}/demo/notifications?topic=${topic}&from=earliest&timeout=1`);
  await waitForCount(page, 1);
  assert.deepEqual(await shownIds(page), [earlier], 'from=earliest replays what is kept');
  await page.waitForFunction(() => Number(document.querySelector('#timeouts').textContent) >= 1, null, { timeout: 5000 });
  const live = await publish(topic, 'after a timeout');
  await waitForCount(page, 2);
  assert.deepEqual(await shownIds(page), [live, earlier]);
  assert.deepEqual(browser.pageErrors, []);
});

// pushwire's polling transports against Node's built-in fetch (undici):
// a long poll parked until a publish wakes it, a long poll that expires,
// and a short poll that returns everything kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, deadline, publish, publishClosing, sleep, topic } from './helpers.mjs';

const TEST = { timeout: 15000 };

async function getJson(path) {
  const res = await fetch(`${BASE}${path}`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${path}: ${res.status} ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  return JSON.parse(text);
}

/** Starts a request and reports whether it has answered yet. */
function track(promise) {
  const state = { done: false, promise };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
}

test('long poll after a cursor parks until a publish wakes it', TEST, async () => {
  const t = topic('poll-wake');
  const first = await publish(t, 'already there');

  const started = Date.now();
  const poll = track(getJson(`/topics/${t}/poll?after=${first}&timeout=10`));
  await sleep(300);
  assert.equal(poll.done, false, 'nothing after the cursor: the poll must wait');

  const id = await publish(t, 'wake up\nsecond line', 'ping');
  const body = await deadline(poll.promise, 'the parked poll to answer');
  const took = Date.now() - started;
  assert.deepEqual(body, {
    messages: [{ id, event: 'ping', data: 'wake up\nsecond line' }],
    last_id: id,
    timeout: false,
    gap: false,
  });
  assert.ok(took < 5000, `woken by the publish, not the timeout (${took} ms)`);
});

test('long poll without a cursor waits for the next message', TEST, async () => {
  const t = topic('poll-live');
  await publish(t, 'old news');
  const poll = track(getJson(`/topics/${t}/poll?timeout=10`));
  await sleep(300);
  assert.equal(poll.done, false, 'no cursor: starts live and waits');
  const id = await publish(t, 'fresh');
  const body = await deadline(poll.promise, 'the live poll to answer');
  assert.deepEqual(body.messages, [{ id, event: 'message', data: 'fresh' }]);
  assert.equal(body.last_id, id);
  assert.equal(body.timeout, false);
});

test('long poll with nothing new expires with timeout:true', TEST, async () => {
  const t = topic('poll-expire');
  const id = await publish(t, 'only one');
  const started = Date.now();
  const body = await getJson(`/topics/${t}/poll?after=${id}&timeout=1`);
  const took = Date.now() - started;
  assert.deepEqual(body, { messages: [], last_id: id, timeout: true, gap: false });
  assert.ok(took >= 900 && took < 4000, `expired after about 1 s (${took} ms)`);
});

test('short poll returns everything kept, and what follows a cursor', TEST, async () => {
  const t = topic('short');
  const empty = await getJson(`/topics/${t}/messages`);
  assert.deepEqual(empty.messages, []);
  assert.match(empty.last_id, /^[^-\s]+-0$/, 'an empty topic has the cursor <epoch>-0');

  const sent = [];
  for (const [data, event] of [
    ['one', undefined],
    ['two', 'named'],
    ['three — ü 🚀', undefined],
    ['four\nwith "quotes" and \\ backslash\t tab', 'other'],
    ['', undefined],
  ]) {
    sent.push({ id: await publish(t, data, event), event: event ?? 'message', data });
  }

  const all = await getJson(`/topics/${t}/messages`);
  assert.deepEqual(all, { messages: sent, last_id: sent.at(-1).id, timeout: false, gap: false });

  const earliest = await getJson(`/topics/${t}/messages?after=earliest`);
  assert.deepEqual(earliest.messages, sent);
  assert.equal(earliest.gap, false);

  const rest = await getJson(`/topics/${t}/messages?after=${sent[1].id}`);
  assert.deepEqual(rest, { messages: sent.slice(2), last_id: sent.at(-1).id, timeout: false, gap: false });

  const none = await getJson(`/topics/${t}/messages?after=${sent.at(-1).id}`);
  assert.deepEqual(none, { messages: [], last_id: sent.at(-1).id, timeout: false, gap: false });

  // The empty-topic cursor is a cursor like any other.
  const fromZero = await getJson(`/topics/${t}/messages?after=${empty.last_id}`);
  assert.deepEqual(fromZero.messages, sent);
  assert.equal(fromZero.gap, false);
});

test('a long poll is woken by a publish made with Connection: close', TEST, async () => {
  const t = topic('poll-closing');
  const first = await publish(t, 'already there');
  const poll = track(getJson(`/topics/${t}/poll?after=${first}&timeout=10`));
  await sleep(300);
  assert.equal(poll.done, false, 'nothing after the cursor: the poll must wait');
  const started = Date.now();
  const id = await publishClosing(t, 'from a closing connection');
  const body = await deadline(poll.promise, 'the parked poll to answer', 3000);
  assert.deepEqual(body.messages, [{ id, event: 'message', data: 'from a closing connection' }]);
  const took = Date.now() - started;
  assert.ok(took < 2000, `woken by the publish (${took} ms), not by the time-out`);
});

// pushwire's polling transports against Node's built-in fetch (undici):
// a long poll parked until a publish wakes it, a long poll that expires,
// and a short poll that returns everything kept. And HTTP streaming read
// through fetch's ReadableStream: NDJSON lines, history then live, byte
// for byte, a resume with ?after=, and one stream for two topics resumed
// with a combined cursor.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, deadline, Inbox, publish, publishClosing, sleep, topic } from './helpers.mjs';

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

// ---- HTTP streaming (NDJSON) -------------------------------------------------

/**
 * Opens `GET path` as a stream and reads it through the response's
 * ReadableStream: `bytes` is every body byte so far (as text), `lines`
 * the complete lines. Call `close()` to abort the request.
 */
async function openStream(path) {
  const abort = new AbortController();
  const res = await fetch(`${BASE}${path}`, { signal: abort.signal });
  assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
  assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
  const reader = res.body.getReader();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const s = { bytes: '', lines: [], inbox: new Inbox() };
  let partial = '';
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const text = decoder.decode(value, { stream: true });
      s.bytes += text;
      partial += text;
      let nl;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        s.lines.push(line);
        // An empty line is a heartbeat: no JSON text is empty.
        if (line !== '') s.inbox.push(JSON.parse(line));
      }
    }
  })().catch((e) => {
    if (e.name !== 'AbortError') throw e;
  });
  s.close = async () => {
    abort.abort();
    await pump;
  };
  return s;
}

const line = (m) => JSON.stringify(m) + '\n';

test('a stream through fetch: history then live, byte for byte', TEST, async () => {
  const t = topic('stream');
  const sent = [];
  for (const [data, event] of [
    ['one', undefined],
    ['two "quoted"\nand a second line', 'named'],
  ]) {
    sent.push({ id: await publish(t, data, event), event: event ?? 'message', data });
  }
  const s = await openStream(`/topics/${t}/stream?after=earliest`);
  try {
    assert.deepEqual(await s.inbox.take(2, 'the history'), sent);
    sent.push({ id: await publish(t, 'live: ü 🚀'), event: 'message', data: 'live: ü 🚀' });
    assert.deepEqual(await s.inbox.take(3, 'the live message'), sent);
    // Exactly these lines, nothing around them (the chunk framing is
    // fetch's to remove).
    assert.equal(s.bytes, sent.map(line).join(''));
  } finally {
    await s.close();
  }
});

test('a stream resumed with ?after= gives exactly the missed messages', TEST, async () => {
  const t = topic('stream-resume');
  const first = await openStream(`/topics/${t}/stream`);
  let seen;
  try {
    await sleep(100);
    const ids = [await publish(t, 'a'), await publish(t, 'b')];
    seen = await first.inbox.take(2, 'the first two');
    assert.deepEqual(seen.map((m) => m.id), ids);
  } finally {
    await first.close();
  }
  // Dropped; two more are published meanwhile.
  const missed = [];
  for (const data of ['c', 'd']) missed.push({ id: await publish(t, data), event: 'message', data });
  const again = await openStream(`/topics/${t}/stream?after=${seen.at(-1).id}`);
  try {
    assert.deepEqual(await again.inbox.take(2, 'the missed two'), missed);
    const live = { id: await publish(t, 'e'), event: 'message', data: 'e' };
    assert.deepEqual(await again.inbox.take(3, 'the live one'), [...missed, live]);
    assert.equal(again.bytes, [...missed, live].map(line).join(''));
  } finally {
    await again.close();
  }
});

test('a stream after an old cursor starts with a gap line', TEST, async () => {
  const t = topic('stream-gap');
  const id = await publish(t, 'kept');
  const epoch = id.split('-')[0];
  const s = await openStream(`/topics/${t}/stream?after=${epoch}-9`);
  try {
    const [gap, msg] = await s.inbox.take(2, 'the gap and the replay');
    assert.deepEqual(gap, { gap: true, requested: `${epoch}-9`, oldest: id });
    assert.deepEqual(msg, { id, event: 'message', data: 'kept' });
  } finally {
    await s.close();
  }
});

test('one stream for two topics: lines name their topic, and a combined cursor resumes both', TEST, async () => {
  const a = topic('stream-mux-a');
  const b = topic('stream-mux-b');
  const first = await openStream(`/stream?topic=${a}&topic=${b}`);
  const cursor = new Map();
  const send = async (t, data) => {
    const id = await publish(t, data);
    cursor.set(t, id);
    return { topic: t, id, event: 'message', data };
  };
  try {
    await sleep(100);
    const live = [await send(a, 'a1'), await send(b, 'b1')];
    assert.deepEqual(await first.inbox.take(2, 'one message on each topic'), live);
  } finally {
    await first.close();
  }
  // Dropped; each topic gets one more meanwhile. The client builds the
  // combined cursor itself (TOPIC=ID pairs joined by commas).
  const after = [...cursor].map(([t, id]) => `${t}=${id}`).join(',');
  const missed = [await send(b, 'b2'), await send(a, 'a2')];
  const again = await openStream(`/stream?topic=${a}&topic=${b}&after=${encodeURIComponent(after)}`);
  try {
    const got = await again.inbox.take(2, 'the missed two');
    // Each topic replays in its own order; none is promised across topics.
    const byTopic = (list) => [a, b].map((t) => list.filter((m) => m.topic === t));
    assert.deepEqual(byTopic(got), byTopic(missed));
    await sleep(200);
    assert.equal(again.inbox.items.length, 2, 'no duplicate or extra line');
  } finally {
    await again.close();
  }
});

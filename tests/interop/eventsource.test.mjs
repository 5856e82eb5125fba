// pushwire's SSE stream against the `eventsource` package, a WHATWG
// EventSource for Node that reads the stream through fetch: named and
// default events, multi-line data, and the reconnect-with-Last-Event-ID
// loop that the spec makes the client's job — on one topic, and on one
// stream for many topics, where the id is the combined cursor.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { BASE, Inbox, deadline, once, publish, publishClosing, topic } from './helpers.mjs';

const TEST = { timeout: 20000 };

/**
 * Opens an EventSource whose every fetch is recorded (URL and
 * Last-Event-ID), and which can be held before a reconnect so a test
 * knows for certain that the client is away.
 */
function open(t, listen = ['message'], path = `/topics/${t}/sse`) {
  const requests = [];
  let gate = null; // a promise reconnects wait on, when set
  const fetchSpy = async (url, init) => {
    const headers = new Headers(init?.headers);
    requests.push({ url: String(url), lastEventId: headers.get('last-event-id') });
    if (requests.length > 1 && gate) await gate;
    return fetch(url, init);
  };
  const es = new EventSource(`${BASE}${path}`, { fetch: fetchSpy });
  const inbox = new Inbox();
  for (const type of listen) {
    es.addEventListener(type, (e) => inbox.push({ type: e.type, data: e.data, id: e.lastEventId }));
  }
  return {
    es,
    inbox,
    requests,
    hold() {
      let release;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
  };
}

test('named events reach their listener, unnamed ones reach "message"', TEST, async (t) => {
  const name = topic('sse-named');
  const c = open(name, ['message', 'price', 'volume']);
  t.after(() => c.es.close());
  await once(c.es, 'open', 'the stream to open');
  assert.equal(c.es.readyState, EventSource.OPEN);

  const expected = [];
  for (const [data, event] of [
    ['101.5', 'price'],
    ['plain text', undefined],
    ['2000', 'volume'],
    ['102.25', 'price'],
    ['ünïcödé and 🚀', undefined],
  ]) {
    const id = await publish(name, data, event);
    expected.push({ type: event ?? 'message', data, id });
  }
  const got = await c.inbox.take(expected.length, 'the published events');
  assert.deepEqual(got, expected);
  assert.equal(c.requests.length, 1, 'no reconnect happened');
});

test('a multi-line message arrives intact', TEST, async (t) => {
  const name = topic('sse-lines');
  const c = open(name);
  t.after(() => c.es.close());
  await once(c.es, 'open', 'the stream to open');

  // Each line becomes a `data:` line and EventSource joins them with LF,
  // so LF-separated text (with empty lines, leading and trailing ones,
  // and a line that looks like a field) must come back byte for byte.
  const texts = [
    'first line\nsecond line\nthird line',
    'a paragraph\n\nafter an empty line',
    '\nstarts with a newline',
    'ends with a newline\n',
    'data: not a field\nid: nor this\nevent: nor this\n: nor a comment',
    '{\n  "json": "pretty printed",\n  "n": 1\n}',
  ];
  const ids = [];
  for (const text of texts) ids.push(await publish(name, text));
  const got = await c.inbox.take(texts.length, 'the multi-line messages');
  assert.deepEqual(
    got.map((m) => m.data),
    texts,
  );
  assert.deepEqual(
    got.map((m) => m.id),
    ids,
  );

  // CR and CRLF are line endings to EventSource (WHATWG §9.2.6); they
  // come back as LF, which is the most the protocol can carry.
  const crlf = 'windows\r\nline endings\rand old mac';
  await publish(name, crlf);
  const [, , , , , , m] = await c.inbox.take(texts.length + 1, 'the CRLF message');
  assert.equal(m.data, 'windows\nline endings\nand old mac');
});

test('after a dropped stream the client resumes by Last-Event-ID: no loss, no duplicate', TEST, async (t) => {
  const name = topic('sse-resume');
  const c = open(name);
  t.after(() => c.es.close());
  await once(c.es, 'open', 'the stream to open');

  const sent = [];
  const send = async (data) => {
    const id = await publish(name, data);
    sent.push({ type: 'message', data, id });
  };
  await send('before 1');
  await send('before 2');
  await c.inbox.take(2, 'the messages before the drop');

  // Hold the client's reconnect until the test has published, so the
  // messages below are certainly published while it is away.
  const release = c.hold();
  const errored = once(c.es, 'error', 'the client to notice the drop');
  const res = await fetch(`${BASE}/debug/drop?topic=${name}`, { method: 'POST' });
  assert.equal(res.status, 200, 'POST /debug/drop needs --debug-endpoints');
  assert.deepEqual(await res.json(), { dropped: 1 });
  await errored;
  assert.equal(c.es.readyState, EventSource.CONNECTING, 'the client means to reconnect');

  await send('away 1');
  await send('away 2 with\ntwo lines');
  await send('away 3');
  release();

  await deadline(
    new Promise((resolve) => c.es.addEventListener('open', resolve, { once: true })),
    'the reconnect to open',
  );
  assert.equal(c.requests.length, 2, 'exactly one reconnect');
  assert.equal(
    c.requests[1].lastEventId,
    sent[1].id,
    'the reconnect carries the last id received as Last-Event-ID',
  );

  await send('after');
  const got = await c.inbox.take(sent.length, 'every message across the drop');
  assert.deepEqual(got, sent);
  // Give a duplicate a moment to show up, then check there is none.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.inbox.items.length, sent.length, 'no duplicate or extra message');
});

test('a message POSTed with Connection: close reaches the stream at once', TEST, async (t) => {
  // A one-shot publisher (curl -H 'Connection: close', Python's urllib,
  // Node's http without an agent) closes its connection with the answer;
  // the fan-out must not wait for some other connection to do something.
  const name = topic('sse-closing');
  const c = open(name);
  t.after(() => c.es.close());
  await once(c.es, 'open', 'the stream to open');
  const id = await publishClosing(name, 'from a closing connection');
  const [m] = await c.inbox.take(1, 'the message published with Connection: close', 3000);
  assert.deepEqual(m, { type: 'message', data: 'from a closing connection', id });
});

test('one stream for two topics: JSON frames, and a resume of both by the combined cursor', TEST, async (t) => {
  const news = topic('sse-mux-news');
  const prices = topic('sse-mux-prices');
  const c = open(null, ['message', 'price'], `/sse?topic=${news}&topic=${prices}`);
  t.after(() => c.es.close());
  await once(c.es, 'open', 'the stream to open');

  // Each event's data is {"topic","id","event","data"}; its event type is
  // the message's own; its id is the cursor of every topic after it.
  const sent = [];
  const cursor = new Map();
  const send = async (name, data, event) => {
    const id = await publish(name, data, event);
    cursor.set(name, id);
    const type = event ?? 'message';
    sent.push({ type, data: { topic: name, id, event: type, data } });
  };
  const received = async (n, what) =>
    (await c.inbox.take(n, what)).map((m) => ({ type: m.type, data: JSON.parse(m.data), id: m.id }));
  const pairs = (id) => new Map(id.split(',').map((pair) => pair.split('=')));

  await send(news, 'headline');
  await send(prices, 'ACME 101.25', 'price');
  const first = await received(2, 'one message on each topic');
  assert.deepEqual(first.map(({ type, data }) => ({ type, data })), sent);
  assert.equal(pairs(first[0].id).get(news), sent[0].data.id);
  assert.deepEqual(pairs(first[1].id), cursor, 'the second id carries both topics');

  // Dropped while messages arrive on both topics: the reconnect's
  // Last-Event-ID resumes both at once.
  const release = c.hold();
  const errored = once(c.es, 'error', 'the client to notice the drop');
  const res = await fetch(`${BASE}/debug/drop?topic=${news}`, { method: 'POST' });
  assert.equal(res.status, 200, 'POST /debug/drop needs --debug-endpoints');
  await errored;
  const atDrop = first[1].id;
  await send(prices, 'ACME 101.50', 'price');
  await send(news, 'away');
  release();
  await deadline(
    new Promise((resolve) => c.es.addEventListener('open', resolve, { once: true })),
    'the reconnect to open',
  );
  assert.equal(c.requests.length, 2, 'exactly one reconnect');
  assert.equal(c.requests[1].lastEventId, atDrop, 'the reconnect carries the combined cursor');

  // Each topic replays in its own order; DESIGN promises no order across
  // topics, so compare topic by topic.
  const missed = (await received(sent.length, 'the messages published while away')).slice(first.length);
  const byTopic = (list) => [news, prices].map((name) => list.filter((m) => m.data.topic === name));
  assert.deepEqual(byTopic(missed.map(({ type, data }) => ({ type, data }))), byTopic(sent.slice(first.length)));
  assert.deepEqual(pairs(missed[1].id), cursor);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(c.inbox.items.length, sent.length, 'no duplicate or extra message');
});

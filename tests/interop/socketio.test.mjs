// pushwire's /socket.io/ against the official `socket.io-client`, which
// shares no code with the server: Engine.IO v4 on polling, on WebSocket
// and through the polling→WebSocket upgrade; Socket.IO v5 events and acks
// on namespace `/`, which the binary maps onto the hub (DESIGN.md
// "Socket.IO"):
//
//   socket.emit('subscribe', TOPIC, {after}, ack)      ack {last_id, gap}
//   socket.emit('unsubscribe', TOPIC)
//   socket.emit('publish', TOPIC, DATA, {event}, ack)  ack {id}
//   socket.on(EVENT, (data, meta))                      meta {topic, id}
//
// and the same hub as HTTP and SSE: a POST reaches Socket.IO clients, a
// Socket.IO publish reaches an EventSource.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { EventSource } from 'eventsource';
import { BASE, Inbox, deadline, once, publish, sleep, topic } from './helpers.mjs';

const TEST = { timeout: 30000 };

// A build without /socket.io/ answers its handshake 404: say so once and
// skip, rather than fail every case on the same missing route.
const probe = await fetch(`${BASE}/socket.io/?EIO=4&transport=polling`).catch((e) => ({ status: String(e) }));
const SKIP = probe.status === 200 ? false : `/socket.io/ is not served by this build (handshake: ${probe.status})`;
if (probe.body) await probe.text();

const sockets = [];

/**
 * A connected client (`opts` as io() takes them). Every event it gets is
 * pushed into `inbox` as {event, data, meta}; `inbox` of a second client
 * never sees another's. Reconnection is on, with a short delay, so that a
 * killed transport comes back quickly.
 */
async function client(opts = {}) {
  const socket = io(BASE, {
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    timeout: 5000,
    ...opts,
  });
  sockets.push(socket);
  const inbox = new Inbox();
  socket.onAny((event, data, meta) => inbox.push({ event, data, meta }));
  await once(socket, 'connect', `a Socket.IO connect (${JSON.stringify(opts.transports || 'default')})`);
  return { socket, inbox };
}

/** Emits with an ack and resolves with the ack's argument. */
function ask(socket, ...args) {
  return deadline(
    new Promise((resolve) => socket.emit(...args, resolve)),
    `the ack of ${JSON.stringify(args).slice(0, 100)}`,
  );
}

async function subscribe(socket, t, after) {
  const ack = await ask(socket, 'subscribe', t, after ? { after } : {});
  assert.equal(ack.error, undefined, `subscribe ${t}: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.last_id, 'string', `the subscribe ack carries last_id: ${JSON.stringify(ack)}`);
  assert.equal(ack.gap, false, 'no gap for a fresh subscribe');
  return ack;
}

async function emitPublish(socket, t, data, event) {
  const ack = await ask(socket, 'publish', t, data, event ? { event } : {});
  assert.equal(ack.error, undefined, `publish to ${t}: ${JSON.stringify(ack)}`);
  assert.match(ack.id, /^[^-\s]+-[1-9][0-9]*$/, `the publish ack is {id}: ${JSON.stringify(ack)}`);
  return ack.id;
}

const seqOf = (id) => Number(id.split('-')[1]);

function closeAll() {
  for (const s of sockets.splice(0)) s.close();
}

/** One round trip on one transport configuration. */
async function roundTrip(label, opts, expectTransport) {
  const t = topic(`sio-${label}`);
  const a = await client(opts);
  const b = await client(opts);
  assert.equal(a.socket.io.engine.transport.name, expectTransport);
  await subscribe(a.socket, t);
  await subscribe(b.socket, t);
  const id = await emitPublish(b.socket, t, `hello over ${label}`, 'greeting');
  for (const c of [a, b]) {
    const [m] = await c.inbox.take(1, `the greeting on ${label}`);
    assert.equal(m.event, 'greeting');
    assert.equal(m.data, `hello over ${label}`);
    assert.deepEqual({ topic: m.meta.topic, id: m.meta.id }, { topic: t, id });
  }
  assert.equal(a.socket.io.engine.transport.name, expectTransport);
  closeAll();
}

test('polling only: handshake, subscribe, publish, delivery', { ...TEST, skip: SKIP }, async () => {
  await roundTrip('polling', { transports: ['polling'] }, 'polling');
});

test('WebSocket only: handshake, subscribe, publish, delivery', { ...TEST, skip: SKIP }, async () => {
  await roundTrip('websocket', { transports: ['websocket'] }, 'websocket');
});

test('polling upgrades to WebSocket, and delivery goes on across the upgrade', { ...TEST, skip: SKIP }, async () => {
  const t = topic('sio-upgrade');
  const socket = io(BASE, { forceNew: true, timeout: 5000 });
  sockets.push(socket);
  // The manager opens its engine at once: the handshake is by polling, and
  // the upgrade (2probe, 3probe, 5) can finish before 'connect' is seen.
  const engine = socket.io.engine;
  assert.equal(engine.transport.name, 'polling', 'the handshake is by polling');
  const upgraded = once(engine, 'upgrade', 'the upgrade to WebSocket');
  const inbox = new Inbox();
  socket.on('message', (data, meta) => inbox.push({ data, meta }));
  await once(socket, 'connect', 'a connect');
  await subscribe(socket, t);
  // Published while the upgrade may still be under way.
  const early = await publish(t, 'early');
  const transport = await upgraded;
  assert.equal(transport.name, 'websocket');
  assert.equal(engine.transport.name, 'websocket');
  const after = await publish(t, 'after the upgrade');
  const got = await inbox.take(2, 'both messages');
  assert.deepEqual(
    got.map((m) => [m.data, m.meta.id]),
    [['early', early], ['after the upgrade', after]],
  );
  closeAll();
});

test('subscribe, unsubscribe and publish are acked; events carry their name', { ...TEST, skip: SKIP }, async () => {
  const t = topic('sio-acks');
  const other = topic('sio-acks-other');
  const { socket, inbox } = await client({ transports: ['websocket'] });
  const first = await subscribe(socket, t);
  assert.match(first.last_id, /-0$/, `a topic without messages has the cursor <epoch>-0: ${first.last_id}`);

  const id1 = await emitPublish(socket, t, 'one');
  const id2 = await emitPublish(socket, t, 'two', 'named.event');
  assert.equal(seqOf(id2), seqOf(id1) + 1, 'ids count up per topic');
  // A topic this client never subscribed: published, not delivered here.
  await emitPublish(socket, other, 'not for us');
  const got = await inbox.take(2, 'its own two messages');
  assert.deepEqual(
    got.map((m) => [m.event, m.data, m.meta.id]),
    [['message', 'one', id1], ['named.event', 'two', id2]],
  );

  // A second subscribe resumes after a cursor: it replays what came after.
  const { socket: late, inbox: lateInbox } = await client({ transports: ['websocket'] });
  const ack = await subscribe(late, t, id1);
  assert.equal(ack.last_id, id2, 'the ack names the newest id it accounts for');
  const [replayed] = await lateInbox.take(1, 'the replay after the cursor');
  assert.deepEqual([replayed.data, replayed.meta.id], ['two', id2]);

  await ask(socket, 'unsubscribe', t);
  await emitPublish(late, t, 'after the unsubscribe');
  await lateInbox.take(2, 'the late client still subscribed');
  await sleep(200);
  assert.equal(inbox.items.length, 2, 'nothing after the unsubscribe');

  // A refusal is an ack with an error, not a dropped connection.
  const bad = await ask(socket, 'subscribe', 'no spaces allowed', {});
  assert.equal(typeof bad.error, 'object', `a bad topic is refused: ${JSON.stringify(bad)}`);
  assert.equal(bad.error.status, 400);
  assert.equal(socket.connected, true);
  closeAll();
});

test('500 messages reach 3 clients exactly once and in order', { ...TEST, timeout: 60000, skip: SKIP }, async () => {
  const t = topic('sio-500');
  const subs = [];
  // One client of each kind: WebSocket, polling, and upgraded.
  for (const transports of [['websocket'], ['polling'], undefined]) {
    const c = await client(transports ? { transports } : {});
    await subscribe(c.socket, t);
    subs.push(c);
  }
  const pub = await client({ transports: ['websocket'] });
  const N = 500;
  // All emitted at once: one connection keeps them in order, and the acks
  // say which id each got.
  const ids = await Promise.all(
    Array.from({ length: N }, (_, k) => ask(pub.socket, 'publish', t, { k }, {}).then((a) => a.id)),
  );
  for (let k = 1; k < N; k++) assert.equal(seqOf(ids[k]), seqOf(ids[k - 1]) + 1, 'acked ids in order');
  for (const [i, c] of subs.entries()) {
    const got = await c.inbox.take(N, `client ${i}: ${N} messages`, 30000);
    assert.deepEqual(got.map((m) => m.data.k), ids.map((_, k) => k), `client ${i}: every message once, in order`);
    assert.deepEqual(got.map((m) => m.meta.id), ids, `client ${i}: the ids of the acks`);
  }
  await sleep(300);
  for (const [i, c] of subs.entries()) assert.equal(c.inbox.items.length, N, `client ${i}: no duplicate`);
  closeAll();
});

/**
 * Kills a client's transport under it: the TCP connection of its
 * WebSocket is destroyed (the server sees a reset, not a close), or, on
 * polling, the engine is closed without a goodbye to the server.
 */
function killTransport(socket) {
  const transport = socket.io.engine.transport;
  const raw = transport.ws?._socket;
  if (raw) raw.destroy();
  else socket.io.engine.close();
}

// Each transport, two ways back: the server's connection state recovery
// (when it offers it: its CONNECT reply then carries a pid, and
// scripts/interop.sh starts it with --sio-recovery), and a client the
// server cannot recover (its pid forgotten, so it connects as new) that
// subscribes again after its cursor.
for (const transports of [['websocket'], ['polling']]) {
  for (const way of ['recovery', 'cursor']) {
    const name = `a killed ${transports[0]} transport mid-stream: the client comes back (${way === 'recovery' ? 'connection state recovery' : 'subscribe after its cursor'}) with nothing lost`;
    test(name, { ...TEST, timeout: 45000, skip: SKIP }, async (t) => {
      const topicName = topic(`sio-kill-${transports[0]}-${way}`);
      const { socket, inbox } = await client({ transports });
      const offered = Boolean(socket._pid);
      if (way === 'recovery' && !offered) return t.skip('the server offers no connection state recovery (no pid in its CONNECT reply)');
      const cursor = { last: null };
      let resubscribed = 0;
      let recovered = 0;
      let connects = 0;
      socket.on('message', (data, meta) => {
        cursor.last = meta.id;
      });
      // What a client does: on every connect after the first, either the
      // server recovered the session (socket.recovered: it replays what
      // was missed), or the client subscribes again after its cursor.
      socket.on('connect', () => {
        connects++;
        if (socket.recovered) {
          recovered++;
          return;
        }
        resubscribed++;
        socket.emit('subscribe', topicName, { after: cursor.last }, () => {});
      });
      await subscribe(socket, topicName);

      const N = 200;
      const ids = [];
      const publishing = (async () => {
        for (let k = 0; k < N; k++) {
          ids.push(await publish(topicName, `m${k}`));
          if (k % 10 === 9) await sleep(5);
        }
      })();
      // Mid-stream: after some have arrived.
      while (inbox.items.length < 40) await sleep(5);
      // socket.io-client keeps the pid the server gave it in `_pid` and
      // presents it on reconnect; without it the server sees a new client.
      if (way === 'cursor') socket._pid = undefined;
      killTransport(socket);
      await publishing;
      const got = await inbox.take(N, `${N} messages across the kill`, 20000);
      assert.equal(connects, 1, 'the client reconnected once');
      if (way === 'recovery') assert.equal(recovered, 1, 'the server recovered the session');
      else assert.equal(resubscribed, 1, 'the client subscribed again');
      assert.deepEqual(got.map((m) => m.data), ids.map((_, k) => `m${k}`), 'all, once, in order');
      assert.deepEqual(got.map((m) => m.meta.id), ids);
      await sleep(300);
      assert.equal(inbox.items.length, N, 'no duplicate after the reconnect');
      closeAll();
    });
  }
}

test('a JSON message and a binary message keep their kind', { ...TEST, skip: SKIP }, async () => {
  const t = topic('sio-kinds');
  const a = await client({ transports: ['websocket'] });
  const b = await client({ transports: ['polling'] });
  await subscribe(a.socket, t);
  await subscribe(b.socket, t);

  const value = { text: 'héllo', n: 1.5, list: [true, null, 'x'], nested: { a: [] } };
  const jsonId = await emitPublish(a.socket, t, value);
  // A POST of application/json is a JSON message too, delivered as a value.
  const res = await fetch(`${BASE}/topics/${t}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"posted":[1,2,3]}',
  });
  assert.equal(res.status, 200);
  const postedId = JSON.parse(await res.text()).id;

  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x1e, 0x0a, 0x42]);
  const binId = await emitPublish(a.socket, t, bytes);

  for (const [name, c] of [['websocket', a], ['polling', b]]) {
    const got = await c.inbox.take(3, `${name}: the three messages`);
    assert.deepEqual(got[0].data, value, `${name}: the JSON value`);
    assert.equal(got[0].meta.id, jsonId);
    assert.deepEqual(got[1].data, { posted: [1, 2, 3] }, `${name}: the POSTed JSON`);
    assert.equal(got[1].meta.id, postedId);
    assert.ok(Buffer.isBuffer(got[2].data) || got[2].data instanceof ArrayBuffer,
      `${name}: binary arrives as binary (${typeof got[2].data})`);
    assert.ok(Buffer.from(got[2].data).equals(bytes), `${name}: byte for byte`);
    assert.equal(got[2].meta.id, binId);
  }
  closeAll();
});

test('one hub: an HTTP POST reaches Socket.IO, a Socket.IO publish reaches SSE', { ...TEST, skip: SKIP }, async () => {
  const t = topic('sio-hub');
  const { socket, inbox } = await client();
  await subscribe(socket, t);

  const es = new EventSource(`${BASE}/topics/${t}/sse`);
  const sse = new Inbox();
  es.addEventListener('message', (e) => sse.push({ data: e.data, id: e.lastEventId }));
  es.addEventListener('from.socketio', (e) => sse.push({ data: e.data, id: e.lastEventId }));
  await once(es, 'open', 'the EventSource to open');

  const posted = await publish(t, 'posted over HTTP');
  const [m] = await inbox.take(1, 'the POST on Socket.IO');
  assert.deepEqual([m.event, m.data, m.meta.id, m.meta.topic], ['message', 'posted over HTTP', posted, t]);

  const emitted = await emitPublish(socket, t, 'published over Socket.IO', 'from.socketio');
  const got = await sse.take(2, 'both on SSE');
  assert.deepEqual(got, [
    { data: 'posted over HTTP', id: posted },
    { data: 'published over Socket.IO', id: emitted },
  ]);
  es.close();
  closeAll();
});

test('an event name Socket.IO reserves arrives as message, its name in meta.event', { ...TEST, skip: SKIP }, async () => {
  const t = topic('sio-reserved');
  const { socket, inbox } = await client();
  await subscribe(socket, t);
  const reserved = await publish(t, 'named connect', 'connect');
  const after = await publish(t, 'named tick', 'tick');
  const got = await inbox.take(2, 'both messages');
  assert.deepEqual(
    got.map((m) => [m.event, m.data, m.meta.id, m.meta.event]),
    [['message', 'named connect', reserved, 'connect'], ['tick', 'named tick', after, undefined]],
  );
  assert.equal(socket.connected, true, 'the connection survives');
  closeAll();
});

test('done: every client closed', { skip: SKIP }, async () => {
  closeAll();
  await deadline(sleep(10), 'nothing');
});

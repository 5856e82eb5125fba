// The official `socket.io-client` against two pushwire nodes on one Redis,
// behind a round-robin TCP balancer with no stickiness: each new connection
// goes to the next node, so a polling session's GETs and POSTs land on
// whichever node they land on. The node that did not open the session
// relays them over Redis to the one that did (DESIGN.md "Cluster (Redis)":
// any node serves any request).
//
// scripts/interop.sh starts the nodes when redis-server is installed and
// passes them in PUSHWIRE_NODES (two URLs, comma-separated); without it
// these cases are skipped, saying so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { io } from 'socket.io-client';
import { Inbox, deadline, once, sleep, topic } from './helpers.mjs';

const NODES = (process.env.PUSHWIRE_NODES || '').split(',').filter(Boolean);
const SKIP = NODES.length >= 2 ? false : 'PUSHWIRE_NODES is not set (scripts/interop.sh sets it when redis-server is installed)';
const TEST = { timeout: 60000, skip: SKIP };

/**
 * A TCP balancer on a free port. It reads a connection's first bytes (the
 * request line) and asks `route(requestLine, k)` for the node of the k-th
 * connection; the default is round robin. It never looks further, so a
 * keep-alive connection stays on its node, as behind any L4 balancer.
 */
function balancer(urls, route = (_, k) => k % urls.length) {
  const backends = urls.map((u) => new URL(u));
  const counts = backends.map(() => 0);
  const open = new Set();
  let next = 0;
  const server = net.createServer((down) => {
    open.add(down);
    const end = () => {
      for (const s of [down, up]) s?.destroy();
    };
    let up = null;
    down.on('error', end);
    down.on('close', () => {
      open.delete(down);
      end();
    });
    down.once('data', (first) => {
      const line = first.toString('latin1').split('\r\n')[0];
      const i = route(line, next++);
      counts[i]++;
      up = net.connect(Number(backends[i].port), backends[i].hostname);
      open.add(up);
      up.write(first);
      down.pipe(up);
      up.pipe(down);
      up.on('error', end);
      up.on('close', () => {
        open.delete(up);
        end();
      });
    });
  });
  /** Stops listening and cuts what is still open (keep-alive connections). */
  const stop = () => {
    server.close();
    for (const s of open) s.destroy();
  };
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ stop, counts, url: `http://127.0.0.1:${server.address().port}` }),
    ),
  );
}

async function publishTo(base, t, data) {
  const res = await fetch(`${base}/topics/${t}`, { method: 'POST', body: data });
  const text = await res.text();
  assert.equal(res.status, 200, `publish to ${t} on ${base}: ${text}`);
  return JSON.parse(text).id;
}

/** What the nodes' /metrics say about `name`, node by node. */
async function metricByNode(name) {
  const out = [];
  for (const base of NODES) {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    out.push(Number(line ? line.split(' ')[1] : NaN));
  }
  return out;
}

/** What the nodes' /metrics say they relayed, summed. */
async function relayed() {
  return (await metricByNode('pushwire_socketio_relayed_total')).reduce((a, b) => a + b, 0);
}

function ask(socket, ...args) {
  return deadline(new Promise((resolve) => socket.emit(...args, resolve)), `the ack of ${args[0]}`);
}

async function session(url, opts) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  const inbox = new Inbox();
  socket.on('message', (data, meta) => inbox.push({ data, meta }));
  await once(socket, 'connect', `a connect through the balancer (${JSON.stringify(opts)})`);
  return { socket, inbox };
}

/** N messages published on alternate nodes arrive once each, in order. */
async function deliverAcrossNodes(c, t, n) {
  const ids = [];
  for (let k = 0; k < n; k++) ids.push(await publishTo(NODES[k % NODES.length], t, `m${k}`));
  const got = await c.inbox.take(n, `${n} messages`, 20000);
  assert.deepEqual(got.map((m) => m.data), ids.map((_, k) => `m${k}`), 'every message once, in order');
  assert.deepEqual(got.map((m) => m.meta.id), ids, 'with the ids the publishes were given');
  await sleep(200);
  assert.equal(c.inbox.items.length, n, 'no duplicate');
}

test('polling behind a round-robin balancer: a session spans both nodes', TEST, async () => {
  const lb = await balancer(NODES);
  const before = await relayed();
  const t = topic('sio-cluster-polling');
  const c = await session(lb.url, { transports: ['polling'] });
  const ack = await ask(c.socket, 'subscribe', t, {});
  assert.equal(ack.gap, false, JSON.stringify(ack));
  await deliverAcrossNodes(c, t, 100);
  // The client's own publish, acked through whichever node got the POST.
  const mine = await ask(c.socket, 'publish', t, 'mine', {});
  assert.match(mine.id, /-101$/, JSON.stringify(mine));
  const [echo] = (await c.inbox.take(101, 'its own publish')).slice(100);
  assert.deepEqual([echo.data, echo.meta.id], ['mine', mine.id]);
  assert.ok(lb.counts.every((n) => n > 0), `both nodes got connections: ${lb.counts}`);
  assert.ok((await relayed()) > before, 'requests were relayed to the session\'s node');
  assert.equal(c.socket.connected, true);
  c.socket.close();
  lb.stop();
});

test('the upgrade behind the balancer: on the session\'s node or on another, the client ends on WebSocket', TEST, async () => {
  // Handshakes go to node 0, polling requests round robin, and the
  // WebSocket of round r to node r: on node 0 it joins its session, on
  // node 1 node 1 carries it for node 0 (proto/redis/relay.rs).
  let wsNode = 0;
  const route = (line, k) => {
    if (!line.includes('sid=')) return 0;
    if (line.includes('transport=websocket')) return wsNode;
    return k % NODES.length;
  };
  const lb = await balancer(NODES, route);
  for (const round of [0, 1]) {
    wsNode = round;
    const carried = await metricByNode('pushwire_socketio_carried_total');
    const t = topic(`sio-cluster-upgrade-${round}`);
    const c = await session(lb.url, {});
    await ask(c.socket, 'subscribe', t, {});
    // Time for the probe and the upgrade.
    await sleep(500);
    assert.equal(c.socket.io.engine.transport.name, 'websocket', `round ${round}`);
    await deliverAcrossNodes(c, t, 50);
    const mine = await ask(c.socket, 'publish', t, 'mine', {});
    assert.match(mine.id, /-51$/, JSON.stringify(mine));
    const [echo] = (await c.inbox.take(51, 'its own publish')).slice(50);
    assert.deepEqual([echo.data, echo.meta.id], ['mine', mine.id]);
    // Binary both ways (the attachment in M, the bytes back in W).
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x1e, 0x0a, 0x42]);
    const bin = await ask(c.socket, 'publish', t, bytes, {});
    const [back] = (await c.inbox.take(52, 'its binary publish')).slice(51);
    assert.ok(Buffer.from(back.data).equals(bytes), `round ${round}: byte for byte`);
    assert.equal(back.meta.id, bin.id);
    assert.equal(c.socket.io.engine.transport.name, 'websocket', `round ${round}, after`);
    const now = await metricByNode('pushwire_socketio_carried_total');
    assert.deepEqual(now.map((n, i) => n - carried[i]), round === 0 ? [0, 0] : [0, 1], 'carried by node 1 in round 1 only');
    c.socket.close();
  }
  lb.stop();
});

test('default transports behind a plain round-robin balancer: connect, upgrade, deliver, publish', TEST, async () => {
  const lb = await balancer(NODES);
  for (let k = 0; k < 4; k++) {
    const t = topic(`sio-cluster-rr-${k}`);
    const c = await session(lb.url, {});
    await ask(c.socket, 'subscribe', t, {});
    await sleep(300);
    assert.equal(c.socket.io.engine.transport.name, 'websocket', `session ${k}`);
    await deliverAcrossNodes(c, t, 20);
    c.socket.close();
  }
  assert.ok(lb.counts.every((n) => n > 0), `both nodes got connections: ${lb.counts}`);
  lb.stop();
});

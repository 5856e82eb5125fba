// pushwire's WebSocket endpoints against the `ws` client, which shares no
// code with the server: if the two agree on the handshake, framing,
// fragmentation, control frames and the closing handshake, the bytes are
// right, not just self-consistent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { WS_BASE, Inbox, once, publish, topic } from './helpers.mjs';

const TEST = { timeout: 15000 };

/** Opens a client and collects every message it gets as {data, isBinary}. */
async function connect(path) {
  const ws = new WebSocket(`${WS_BASE}${path}`);
  const inbox = new Inbox();
  ws.on('message', (data, isBinary) => inbox.push({ data, isBinary }));
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8'), at: Date.now() }));
  });
  ws.on('error', () => {}); // reported through 'close' and the assertions
  await once(ws, 'open', `${path} to open`);
  return { ws, inbox, closed };
}

/** Closes with 1000 and checks the server's echo of it. */
async function closeCleanly({ ws, closed }) {
  const started = Date.now();
  ws.close(1000, 'bye');
  const { code, at } = await closed;
  assert.equal(code, 1000, 'the server echoes close code 1000');
  // `ws` reports 1006 unless a close frame came back; it also waits for
  // the server to end TCP (RFC 6455 §7.1.1), so a prompt 'close' proves
  // the server closed its side instead of leaving it to a client timer.
  assert.ok(at - started < 2000, `closing handshake took ${at - started} ms`);
}

test('/echo: text, including multi-byte UTF-8, comes back as text', TEST, async () => {
  const c = await connect('/echo');
  const texts = ['hello', 'héllo wörld — ünïcödé', '日本語のテキスト', 'emoji 🚀🎉 and 𝄞', ''];
  for (const t of texts) c.ws.send(t);
  const got = await c.inbox.take(texts.length, 'the echoed texts');
  assert.deepEqual(
    got.map((m) => ({ text: m.data.toString('utf8'), isBinary: m.isBinary })),
    texts.map((text) => ({ text, isBinary: false })),
  );
  await closeCleanly(c);
});

test('/echo: a 64 KiB binary message comes back byte for byte', TEST, async () => {
  const c = await connect('/echo');
  const payload = randomBytes(64 * 1024);
  c.ws.send(payload, { binary: true });
  const [m] = await c.inbox.take(1, 'the echoed binary');
  assert.equal(m.isBinary, true);
  assert.equal(m.data.length, payload.length);
  assert.ok(Buffer.compare(m.data, payload) === 0, 'payload differs');
  await closeCleanly(c);
});

test('/echo: fragmented sends are reassembled into one message', TEST, async () => {
  const c = await connect('/echo');

  // Text split in the middle of a multi-byte character: each fragment is
  // invalid UTF-8 alone, the message is valid (RFC 6455 §8.1: validity is
  // of the whole message).
  const text = Buffer.from('fragmented: ümlaut and 🚀 rocket', 'utf8');
  const cut1 = text.indexOf(Buffer.from('ü')) + 1; // inside 'ü'
  const cut2 = text.indexOf(Buffer.from('🚀')) + 2; // inside '🚀'
  c.ws.send(text.subarray(0, cut1), { binary: false, fin: false });
  c.ws.send(text.subarray(cut1, cut2), { binary: false, fin: false });
  c.ws.send(text.subarray(cut2), { binary: false, fin: true });

  // Binary in three fragments, the last one empty (legal: RFC 6455 §5.4
  // puts no lower bound on a fragment's length).
  const bin = randomBytes(3000);
  c.ws.send(bin.subarray(0, 1000), { binary: true, fin: false });
  c.ws.send(bin.subarray(1000), { binary: true, fin: false });
  c.ws.send(Buffer.alloc(0), { binary: true, fin: true });

  const [t, b] = await c.inbox.take(2, 'the two reassembled messages');
  assert.equal(t.isBinary, false);
  assert.equal(t.data.toString('utf8'), text.toString('utf8'));
  assert.equal(b.isBinary, true);
  assert.ok(Buffer.compare(b.data, bin) === 0, 'binary payload differs');
  await closeCleanly(c);
});

test('/echo: ping is answered by a pong with the same payload', TEST, async () => {
  const c = await connect('/echo');
  const payloads = [Buffer.from('are you there?'), Buffer.alloc(0), randomBytes(125)];
  const pongs = new Inbox();
  c.ws.on('pong', (data) => pongs.push(data));
  for (const p of payloads) c.ws.ping(p);
  const got = await pongs.take(payloads.length, 'the pongs');
  got.forEach((g, i) => assert.ok(Buffer.compare(g, payloads[i]) === 0, `pong ${i} payload`));
  // The connection is still usable afterwards.
  c.ws.send('after the pings');
  const [m] = await c.inbox.take(1, 'an echo after the pings');
  assert.equal(m.data.toString(), 'after the pings');
  await closeCleanly(c);
});

test('/echo: close 1000 is echoed and the connection ends', TEST, async () => {
  const c = await connect('/echo');
  c.ws.send('last words');
  await c.inbox.take(1, 'the echo before closing');
  await closeCleanly(c);
  assert.equal(c.ws.readyState, WebSocket.CLOSED);
});

test('topic: a text from one client reaches both subscribers as JSON', TEST, async () => {
  const t = topic('ws-two');
  const a = await connect(`/topics/${t}/ws`);
  const b = await connect(`/topics/${t}/ws`);
  a.ws.send('hello from a — ü');
  const [ma] = await a.inbox.take(1, 'the message at the sender');
  const [mb] = await b.inbox.take(1, 'the message at the other client');
  for (const m of [ma, mb]) {
    assert.equal(m.isBinary, false, 'topic messages are text frames');
    const json = JSON.parse(m.data.toString('utf8'));
    assert.deepEqual(Object.keys(json).sort(), ['data', 'event', 'id']);
    assert.equal(json.event, 'message');
    assert.equal(json.data, 'hello from a — ü');
    assert.match(json.id, /^[^-\s]+-1$/, 'first message of a fresh topic');
  }
  assert.equal(ma.data.toString(), mb.data.toString(), 'both saw the same frame');

  // A POST reaches WebSocket subscribers too, with its event name.
  const id = await publish(t, 'line one\nline two', 'alert');
  const [, pa] = await a.inbox.take(2, 'the POSTed message at a');
  const [, pb] = await b.inbox.take(2, 'the POSTed message at b');
  for (const m of [pa, pb]) {
    assert.deepEqual(JSON.parse(m.data.toString()), { id, event: 'alert', data: 'line one\nline two' });
  }
  await closeCleanly(a);
  await closeCleanly(b);
});

test('topic: ?after= replays what came after the cursor, then goes live', TEST, async () => {
  const t = topic('ws-after');
  const ids = [];
  for (const d of ['one', 'two', 'three']) ids.push(await publish(t, d));

  const c = await connect(`/topics/${t}/ws?after=${ids[0]}`);
  const replay = await c.inbox.take(2, 'the replay after the first id');
  assert.deepEqual(
    replay.map((m) => JSON.parse(m.data.toString())),
    [
      { id: ids[1], event: 'message', data: 'two' },
      { id: ids[2], event: 'message', data: 'three' },
    ],
  );
  const id4 = await publish(t, 'four', 'named');
  const [, , live] = await c.inbox.take(3, 'the live message after the replay');
  assert.deepEqual(JSON.parse(live.data.toString()), { id: id4, event: 'named', data: 'four' });

  // after=earliest: everything kept, no gap frame.
  const all = await connect(`/topics/${t}/ws?after=earliest`);
  const got = await all.inbox.take(4, 'everything kept');
  assert.deepEqual(
    got.map((m) => JSON.parse(m.data.toString()).id),
    [...ids, id4],
  );
  await closeCleanly(c);
  await closeCleanly(all);
});

test('topic: a binary frame from the client gets close 1003', TEST, async () => {
  const t = topic('ws-binary');
  const c = await connect(`/topics/${t}/ws`);
  const other = await connect(`/topics/${t}/ws`);
  c.ws.send(Buffer.from([0, 1, 2, 3]), { binary: true });
  const { code } = await c.closed;
  assert.equal(code, 1003, 'RFC 6455 §7.4.1: 1003 = cannot accept this data type');
  // Nothing was published, and the other subscriber is unaffected.
  const id = await publish(t, 'still here');
  const [m] = await other.inbox.take(1, 'a message at the other subscriber');
  assert.deepEqual(JSON.parse(m.data.toString()), { id, event: 'message', data: 'still here' });
  assert.match(id, /-1$/, 'the binary frame was not published');
  await closeCleanly(other);
});

/** Opens a client with permessage-deflate (RFC 7692) offered. */
async function connectDeflate(path, perMessageDeflate = true) {
  const ws = new WebSocket(`${WS_BASE}${path}`, { perMessageDeflate });
  const inbox = new Inbox();
  ws.on('message', (data, isBinary) => inbox.push({ data, isBinary }));
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8'), at: Date.now() }));
  });
  ws.on('error', () => {});
  await once(ws, 'open', `${path} to open`);
  return { ws, inbox, closed };
}

test('/echo with permessage-deflate: compressed echoes arrive intact', TEST, async () => {
  const c = await connectDeflate('/echo');
  assert.equal(c.ws.extensions, 'permessage-deflate', 'the server accepted the offer');
  // The terms `ws` read from the answer.
  const { params } = c.ws._extensions['permessage-deflate'];
  assert.equal(params.server_no_context_takeover, true);
  const text = Array.from({ length: 4000 }, (_, i) => `line ${i}: the quick brown fox ✓`).join('\n');
  const binary = Buffer.alloc(256 * 1024, 'pushwire ');
  const before = c.ws._socket.bytesRead;
  c.ws.send(text);
  c.ws.send(binary, { binary: true });
  c.ws.send('tiny');
  const got = await c.inbox.take(3, 'the echoed messages');
  const read = c.ws._socket.bytesRead - before;
  assert.equal(got[0].data.toString('utf8'), text);
  assert.equal(got[0].isBinary, false);
  assert.ok(Buffer.compare(got[1].data, binary) === 0, 'binary differs');
  assert.equal(got[1].isBinary, true);
  assert.equal(got[2].data.toString('utf8'), 'tiny');
  // Over 380 KB of messages came back in a small fraction of that.
  const total = Buffer.byteLength(text) + binary.length + 4;
  assert.ok(read < total / 10, `read ${read} bytes for ${total} bytes of messages`);
  await closeCleanly(c);
});

test('/echo with permessage-deflate: small windows and no context takeover on both sides', TEST, async () => {
  const c = await connectDeflate('/echo', {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 10,
    clientMaxWindowBits: 9,
    threshold: 0,
  });
  const { params } = c.ws._extensions['permessage-deflate'];
  assert.equal(params.server_max_window_bits, 10);
  assert.equal(params.client_no_context_takeover, true);
  const messages = Array.from({ length: 20 }, (_, i) => `message ${i} `.repeat(200 + i));
  for (const m of messages) c.ws.send(m);
  const got = await c.inbox.take(messages.length, 'the echoed messages');
  assert.deepEqual(got.map((m) => m.data.toString('utf8')), messages);
  await closeCleanly(c);
});

test('topic with permessage-deflate: a compressed publish reaches every subscriber', TEST, async () => {
  const t = topic('ws-deflate');
  const a = await connectDeflate(`/topics/${t}/ws`, { threshold: 0 });
  const b = await connectDeflate(`/topics/${t}/ws`);
  const data = 'compressible '.repeat(3000);
  a.ws.send(data);
  for (const c of [a, b]) {
    const [m] = await c.inbox.take(1, 'the published message');
    const json = JSON.parse(m.data.toString());
    assert.equal(json.data, data);
  }
  await closeCleanly(a);
  await closeCleanly(b);
});

/**
 * The first bytes of every frame the server sends on `ws`'s socket, seen
 * beside `ws` (which reads the same chunks): [{ rsv1, opcode, length }].
 */
function tapFrames(ws) {
  const frames = [];
  let buf = Buffer.alloc(0);
  ws._socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      frames.push({ rsv1: (buf[0] & 0x40) !== 0, opcode: buf[0] & 0x0f, length: len });
      buf = buf.subarray(at + len);
    }
  });
  return frames;
}

test('topic with permessage-deflate: published messages arrive compressed (RSV1) and intact', TEST, async () => {
  const t = topic('ws-deflate-rsv1');
  const c = await connectDeflate(`/topics/${t}/ws`);
  assert.equal(c.ws.extensions, 'permessage-deflate', 'the server accepted the offer');
  const frames = tapFrames(c.ws);
  const rows = Array.from({ length: 60 }, (_, i) => `{"sym":"S${i % 7}","px":${(i * 7919) % 1000},"qty":${i}}`);
  const texts = [rows.join('\n'), rows.reverse().join('\n')];
  const ids = [];
  for (const data of texts) ids.push(await publish(t, data));
  const got = await c.inbox.take(texts.length, 'the published messages');
  assert.deepEqual(
    got.map((m) => JSON.parse(m.data.toString())),
    texts.map((data, i) => ({ id: ids[i], event: 'message', data })),
  );
  const text = frames.filter((f) => f.opcode === 1);
  assert.equal(text.length, texts.length);
  for (const [i, f] of text.entries()) {
    assert.ok(f.rsv1, `frame ${i} has RSV1 (RFC 7692 §6)`);
    assert.ok(f.length < Buffer.byteLength(got[i].data) / 2, `frame ${i}: ${f.length} bytes on the wire`);
  }
  await closeCleanly(c);
});

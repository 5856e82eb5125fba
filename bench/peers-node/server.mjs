// The Node peer of bench/deflate.sh: the same two routes pushwire serves
// for the permessage-deflate benchmarks, on the `ws` library.
//
//   node server.mjs --listen 127.0.0.1:18084 [--deflate on|off] [--level 0-9]
//
//   POST /topics/{t}          publishes the body; every WebSocket of the
//                             topic gets {"id","event","data"} as one text
//                             frame (a JSON body is embedded as a value, as
//                             pushwire does); answers {"id":"1-N"}
//   GET  /topics/{t}/ws       WebSocket subscriber of the topic
//   GET  /echo                WebSocket echo
//
// Deflate terms are ws 8's defaults: zlib's default level (6; `--level`
// sets another), memLevel 8, 15 window bits, concurrencyLimit 10 (zlib
// jobs at once, on libuv's thread pool), context takeover unless the
// client asks otherwise (the load generators offer no context takeover
// both ways, and ws agrees) — except the threshold, pushwire's 128 bytes
// instead of 1024, which changes nothing here: no benchmark message is
// between the two. ws compresses each send on its own (a compression per
// subscriber).

import http from 'node:http';
import { WebSocketServer } from 'ws';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const [host, port] = flag('listen', '127.0.0.1:18084').split(':');
const deflate = flag('deflate', 'on') === 'on';
const level = flag('level', null);

const perMessageDeflate = deflate
  ? { threshold: 128, ...(level === null ? {} : { zlibDeflateOptions: { level: Number(level) } }) }
  : false;
const wss = new WebSocketServer({ noServer: true, perMessageDeflate, maxPayload: 16 * 1024 * 1024 });
const topics = new Map(); // topic -> Set of sockets
let seq = 0;

const server = http.createServer((req, res) => {
  const m = /^\/topics\/([A-Za-z0-9._:-]{1,128})$/.exec(req.url);
  if (req.method !== 'POST' || !m) {
    res.writeHead(404, { 'content-length': 0 }).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const id = `1-${++seq}`;
    const json = (req.headers['content-type'] || '').startsWith('application/json');
    const frame = `{"id":"${id}","event":"message","data":${json ? body : JSON.stringify(body)}}`;
    for (const ws of topics.get(m[1]) || []) ws.send(frame);
    const answer = `{"id":"${id}"}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer);
  });
});

server.on('upgrade', (req, socket, head) => {
  const m = /^\/topics\/([A-Za-z0-9._:-]{1,128})\/ws$/.exec(req.url);
  if (req.url !== '/echo' && !m) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {});
    if (m) {
      const t = m[1];
      if (!topics.has(t)) topics.set(t, new Set());
      topics.get(t).add(ws);
      ws.on('close', () => topics.get(t).delete(ws));
    } else {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    }
  });
});

server.listen(Number(port), host);
process.on('SIGTERM', () => process.exit(0));

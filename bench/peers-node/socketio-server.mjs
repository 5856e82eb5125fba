// The Node peer of bench/socketio.sh: the official `socket.io` server (4.x,
// one process, its defaults: no perMessageDeflate, no adapter but the
// in-memory one) doing what pushwire's namespace `/` does for the
// benchmark: rooms are topics.
//
//   node socketio-server.mjs --listen 127.0.0.1:18085 [--recovery off|on]
//
//   socket.emit('subscribe', TOPIC, opts, ack)   joins the room; ack {last_id, gap:false}
//   socket.emit('unsubscribe', TOPIC)            leaves it
//   socket.emit('publish', TOPIC, DATA, {event}, ack)
//        every socket in the room gets socket.on(EVENT, (DATA, {topic, id}));
//        the publisher is acked {id}
//   POST /topics/{t} (body = the message)      the same fan-out, answered {"id"}
//
// It keeps no history: ids are `1-N` and a cursor is ignored. Connection
// state recovery (socket.io's own, 2 minutes) is off unless `--recovery
// on`, as pushwire's is unless `--sio-recovery`: with it, every event
// carries an offset and the server keeps each broadcast for 2 minutes.

import http from 'node:http';
import { Server } from 'socket.io';

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const [host, port] = flag('listen', '127.0.0.1:18085').split(':');
const recovery = flag('recovery', 'off') === 'on';

let seq = 0;
const nextId = () => `1-${++seq}`;

const server = http.createServer((req, res) => {
  const m = /^\/topics\/([A-Za-z0-9._:-]{1,128})$/.exec(req.url);
  if (req.method !== 'POST' || !m) {
    res.writeHead(404, { 'content-length': 0 }).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    const json = (req.headers['content-type'] || '').startsWith('application/json');
    const id = nextId();
    io.to(m[1]).emit('message', json ? JSON.parse(text) : text, { topic: m[1], id });
    const answer = `{"id":"${id}"}`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length }).end(answer);
  });
});

const io = new Server(server, recovery ? {
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000 },
} : {});

const TOPIC = /^[A-Za-z0-9._:-]{1,128}$/;
// Arguments after the topic are optional: the last function is the ack.
const split = (rest) => {
  const ack = typeof rest[rest.length - 1] === 'function' ? rest.pop() : () => {};
  return [rest, ack];
};

io.on('connection', (socket) => {
  socket.on('subscribe', (topic, ...rest) => {
    const [, ack] = split(rest);
    if (typeof topic !== 'string' || !TOPIC.test(topic)) {
      return ack({ error: { status: 400, message: 'bad topic' } });
    }
    socket.join(topic);
    ack({ last_id: `1-${seq}`, gap: false });
  });
  socket.on('unsubscribe', (topic, ...rest) => {
    const [, ack] = split(rest);
    socket.leave(topic);
    ack({});
  });
  socket.on('publish', (topic, ...rest) => {
    const [[data, opts], ack] = split(rest);
    if (typeof topic !== 'string' || !TOPIC.test(topic)) {
      return ack({ error: { status: 400, message: 'bad topic' } });
    }
    const id = nextId();
    io.to(topic).emit((opts && opts.event) || 'message', data, { topic, id });
    ack({ id });
  });
});

server.listen(Number(port), host);
process.on('SIGTERM', () => process.exit(0));

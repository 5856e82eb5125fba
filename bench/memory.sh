#!/usr/bin/env bash
# Memory the server holds for kept history and for readers that never read.
#
# 1. History: RSS growth after 1000 published 60 KB text messages, no
#    subscribers, per payload byte (the text should be held once).
# 2. Stalled readers: 100 kept messages of ~1 MB, then 3 short polls, 3
#    SSE streams and 3 WebSockets asking for everything kept (after=earliest)
#    that never read: RSS growth (a reply is bounded by --max-batch-bytes, a
#    replay by the subscriber queue cap).
#
# PUSHWIRE_BIN=path (default: target/release/pushwire). Starts one server on
# 127.0.0.1:${PORT:-18095}, stops it by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PUSHWIRE_BIN:-target/release/pushwire}
port=${PORT:-18095}
"$bin" --listen "127.0.0.1:$port" >/dev/null 2>/tmp/memory-bench.err &
pid=$!
# Waited for, so that a run right after this one finds the port free.
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
python3 - "$port" "$pid" <<'PY'
import random, socket, string, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

for _ in range(50):
    try:
        socket.create_connection(("127.0.0.1", port)).close(); break
    except OSError:
        time.sleep(0.1)

def publish_many(topic, n, size):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    for _ in range(n):
        unit = "".join(random.choice(string.ascii_letters) for _ in range(100))
        body = (unit * (size // 100)).encode()
        s.sendall(b"POST /topics/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                  % (topic.encode(), len(body)) + body)
        n_body = 0
        f.readline()
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length"):
                n_body = int(line.split(b":")[1])
        f.read(n_body)
    s.close()

before = rss_kb()
publish_many("hist", 1000, 60000)
time.sleep(0.3)
grown = rss_kb() - before
print(f"history: RSS +{grown} kB for 60000 kB of payload: {grown / 60000:.2f}x")

publish_many("big", 100, 1000000)
time.sleep(0.3)
before = rss_kb()
stalled = []
key = "dGhlIHNhbXBsZSBub25jZQ=="
for req in [b"GET /topics/big/messages?after=earliest HTTP/1.1\r\nHost: x\r\n\r\n"] * 3 + \
           [b"GET /topics/big/sse?last_event_id=earliest HTTP/1.1\r\nHost: x\r\n\r\n"] * 3 + \
           [("GET /topics/big/ws?after=earliest HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode()] * 3:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(req)
    stalled.append(s)
time.sleep(2)
grown = rss_kb() - before
print(f"9 stalled readers of 100 MB of history: RSS +{grown} kB ({grown // 9} kB each)")
PY

#!/usr/bin/env python3
"""What relaying costs a polling Socket.IO session in a cluster.

Starts a redis-server (no persistence) and two pushwire nodes on it, all on
free loopback ports, opens a polling session on node A, and times an emit
with an ack (`publish`, answered with Redis's id) over polling: the POST and
the GETs until the ack, 300 times in a row, first sent to A (the session's
node: direct), then to B (every request relayed to A over Redis), twice
each. Then the same emit over WebSocket: a session opened on A by polling
and upgraded on A (direct), and one upgraded on B (B carries the WebSocket
for A, each message one PUBLISH each way). Prints the median and p99 per
mode. Stops what it started, by PID.

    PUSHWIRE_BIN=target/release/pushwire python3 bench/relay-latency.py
"""
import base64, http.client, json, os, socket, statistics, struct, subprocess, sys, time

BIN = os.environ.get("PUSHWIRE_BIN", "target/release/pushwire")
N = int(os.environ.get("N", "300"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def req(c, method, path, body=None):
    c.request(method, path, body=body)
    r = c.getresponse()
    return r.status, r.read().decode()


class Ws:
    """The least of a WebSocket client (RFC 6455): text frames, masked."""

    def __init__(self, node, path):
        self.s = socket.create_connection(node)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0xfe]) + struct.pack(">H", n))
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                sys.exit("the WebSocket closed")
            self.buf += chunk

    def recv(self):
        self._need(2)
        n = self.buf[1] & 0x7f
        at = 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return payload.decode()


def upgraded(a, on):
    """A session opened on A by polling, upgraded on node `on`."""
    c = http.client.HTTPConnection(*a)
    _, text = req(c, "GET", "/socket.io/?EIO=4&transport=polling")
    sid = json.loads(text[1:])["sid"]
    q = "/socket.io/?EIO=4&transport=polling&sid=" + sid
    req(c, "POST", q, "40")
    req(c, "GET", q)
    ws = Ws(on, "/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    ws.send("5")
    return ws


procs = []
try:
    rport = free_port()
    procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
    wait_port(rport)
    nodes = []
    for _ in range(2):
        p = free_port()
        procs.append(subprocess.Popen([BIN, "--listen", f"127.0.0.1:{p}", "--redis",
                                       f"redis://127.0.0.1:{rport}"], stderr=subprocess.DEVNULL))
        wait_port(p)
        nodes.append(("127.0.0.1", p))
    time.sleep(0.5)  # the nodes reach Redis on their first turns
    a, b = nodes
    ca = http.client.HTTPConnection(*a)
    _, text = req(ca, "GET", "/socket.io/?EIO=4&transport=polling")
    sid = json.loads(text[1:])["sid"]
    q = "/socket.io/?EIO=4&transport=polling&sid=" + sid
    req(ca, "POST", q, "40")
    req(ca, "GET", q)
    times = {}
    ack = 0
    for label, node in [("direct", a), ("relayed", b), ("direct", a), ("relayed", b)]:
        post, get = http.client.HTTPConnection(*node), http.client.HTTPConnection(*node)
        for _ in range(N):
            ack += 1
            t0 = time.perf_counter()
            req(post, "POST", q, '42%d["publish","relay.latency","x"]' % ack)
            got = ""
            while "43%d[" % ack not in got:
                _, part = req(get, "GET", q)
                got += part
                if part == "2" or "\x1e2" in part:
                    req(post, "POST", q, "3")  # the pong
            times.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
    sessions = {"ws direct": upgraded(a, a), "ws carried": upgraded(a, b)}
    for label in ["ws direct", "ws carried", "ws direct", "ws carried"]:
        ws = sessions[label]
        for _ in range(N):
            ack += 1
            t0 = time.perf_counter()
            ws.send('42%d["publish","relay.latency.ws","x"]' % ack)
            while True:
                m = ws.recv()
                if m == "2":
                    ws.send("3")
                elif m.startswith("43%d[" % ack):
                    break
            times.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
    for label, v in times.items():
        v.sort()
        over = "WebSocket" if label.startswith("ws") else "polling"
        print(f"{label}: emit + ack over {over}, n={len(v)}, "
              f"median {statistics.median(v):.3f} ms, p99 {v[int(len(v) * 0.99)]:.3f} ms")
finally:
    for p in procs:
        p.terminate()
        p.wait()

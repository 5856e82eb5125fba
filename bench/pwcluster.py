"""What the cluster benches share: a redis-server and pushwire nodes on free
loopback ports (stopped by PID), and the least of an Engine.IO client over
polling and WebSocket (RFC 6455 text frames, masked)."""
import base64, http.client, json, os, socket, struct, subprocess, sys, time


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


    def ready(self):
        """Reads what the socket has (call when it is readable) and returns
        the complete text messages in it."""
        chunk = self.s.recv(262144)
        if not chunk:
            sys.exit("the WebSocket closed")
        self.buf += chunk
        out = []
        while len(self.buf) >= 2:
            n, at = self.buf[1] & 0x7f, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, at = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                break
            out.append(self.buf[at:at + n].decode())
            self.buf = self.buf[at + n:]
        return out


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (proc(5))."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def polling_session(node):
    """A Socket.IO session opened on `node` by polling and connected to
    `/`: (its HTTP connection, its sid, its polling path)."""
    c = http.client.HTTPConnection(*node)
    _, text = req(c, "GET", "/socket.io/?EIO=4&transport=polling")
    sid = json.loads(text[1:])["sid"]
    q = "/socket.io/?EIO=4&transport=polling&sid=" + sid
    req(c, "POST", q, "40")
    req(c, "GET", q)
    return c, sid, q


def upgraded(a, on, topic=None):
    """A session opened on A by polling (subscribed to `topic`, if given),
    upgraded on node `on`."""
    c, sid, q = polling_session(a)
    if topic is not None:
        req(c, "POST", q, '421["subscribe","%s",{}]' % topic)
        got = ""
        while "431[" not in got:
            got += req(c, "GET", q)[1]
    ws = Ws(on, "/socket.io/?EIO=4&transport=websocket&sid=" + sid)
    ws.send("2probe")
    assert ws.recv() == "3probe"
    ws.send("5")
    return ws



def start_cluster(binary, nodes=2):
    """A redis-server (no persistence) and `nodes` pushwire nodes on it.
    Returns (processes, [(host, port)...]); stop them with `stop`."""
    procs = []
    rport = free_port()
    procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
    wait_port(rport)
    addrs = []
    for _ in range(nodes):
        p = free_port()
        procs.append(subprocess.Popen([binary, "--listen", f"127.0.0.1:{p}", "--redis",
                                       f"redis://127.0.0.1:{rport}"], stderr=subprocess.DEVNULL))
        wait_port(p)
        addrs.append(("127.0.0.1", p))
    time.sleep(0.5)  # the nodes reach Redis on their first turns
    return procs, addrs


def stop(procs):
    for p in procs:
        p.terminate()
        p.wait()

#!/usr/bin/env python3
"""What relaying costs a polling Socket.IO session in a cluster.

Starts a redis-server (no persistence) and two pushwire nodes on it, all on
free loopback ports, opens a polling session on node A, and times an emit
with an ack (`publish`, answered with Redis's id) over polling: the POST and
the GETs until the ack, 300 times in a row, first sent to A (the session's
node: direct), then to B (every request relayed to A over Redis), twice
each. Prints the median and p99 per mode. Stops what it started, by PID.

    PUSHWIRE_BIN=target/release/pushwire python3 bench/relay-latency.py
"""
import http.client, json, os, socket, statistics, subprocess, sys, time

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
    for label, v in times.items():
        v.sort()
        print(f"{label}: emit + ack over polling, n={len(v)}, "
              f"median {statistics.median(v):.3f} ms, p99 {v[int(len(v) * 0.99)]:.3f} ms")
finally:
    for p in procs:
        p.terminate()
        p.wait()

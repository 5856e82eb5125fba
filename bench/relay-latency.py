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
import http.client, os, statistics, time

from pwcluster import polling_session, req, start_cluster, stop, upgraded

BIN = os.environ.get("PUSHWIRE_BIN", "target/release/pushwire")
N = int(os.environ.get("N", "300"))


procs, nodes = start_cluster(BIN)
try:
    a, b = nodes
    _, _, q = polling_session(a)
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
    stop(procs)

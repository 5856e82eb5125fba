#!/usr/bin/env python3
"""What a carried WebSocket costs a cluster in a fan-out.

Starts a redis-server (no persistence) and two pushwire nodes on it, all on
free loopback ports. Opens SESSIONS Socket.IO sessions on node A by
polling, each subscribed to one topic, and upgrades them all on A (direct)
or all on B (B carries their WebSockets for A: every delivery is one
PUBLISH from A to B). Then publishes MESSAGES messages on A by HTTP, one at
a time, each once every session has the one before (closed loop), and
reports deliveries per second and the CPU time per delivery of A, B and
Redis, from /proc. Direct, carried, direct, carried. Stops what it
started, by PID.

    PUSHWIRE_BIN=target/release/pushwire python3 bench/carried-fanout.py
"""
import http.client, os, selectors, time

from pwcluster import cpu_ticks, req, start_cluster, stop, upgraded

BIN = os.environ.get("PUSHWIRE_BIN", "target/release/pushwire")
SESSIONS = int(os.environ.get("SESSIONS", "500"))
MESSAGES = int(os.environ.get("MESSAGES", "200"))
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")

procs, (a, b) = start_cluster(BIN)
try:
    redis_pid, a_pid, b_pid = (p.pid for p in procs)
    pub = http.client.HTTPConnection(*a)
    for rnd, (label, node) in enumerate([("direct", a), ("carried", b)] * 2):
        topic = f"fan.{rnd}"
        socks = [upgraded(a, node, topic) for _ in range(SESSIONS)]
        sel = selectors.DefaultSelector()
        for ws in socks:
            sel.register(ws.s, selectors.EVENT_READ, ws)
        time.sleep(0.3)
        cpu0 = [cpu_ticks(p) for p in (a_pid, b_pid, redis_pid)]
        t0 = time.perf_counter()
        delivered = 0
        for k in range(MESSAGES):
            status, _ = req(pub, "POST", f"/topics/{topic}", f"m{k}")
            assert status == 200, status
            want = delivered + SESSIONS
            while delivered < want:
                for key, _ in sel.select(5):
                    ws = key.data
                    for m in ws.ready():
                        if m == "2":
                            ws.send("3")
                        elif m.startswith('42["message"'):
                            delivered += 1
                if time.perf_counter() - t0 > 120:
                    raise SystemExit(f"{label}: {delivered} of {want} deliveries in 120 s")
        took = time.perf_counter() - t0
        cpu = [(c1 - c0) * TICK_US / delivered
               for c0, c1 in zip(cpu0, (cpu_ticks(p) for p in (a_pid, b_pid, redis_pid)))]
        print(f"{label}: {SESSIONS} sessions x {MESSAGES} messages, {delivered / took:,.0f} deliveries/s; "
              f"CPU per delivery: node A {cpu[0]:.1f} us, node B {cpu[1]:.1f} us, redis {cpu[2]:.1f} us, "
              f"all {sum(cpu):.1f} us")
        for ws in socks:
            sel.unregister(ws.s)
            ws.s.close()
finally:
    stop(procs)

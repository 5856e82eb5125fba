//! The core in cluster mode (`--redis`) against a Redis that says
//! anything: the input chooses clients' requests, the bytes "Redis"
//! answers with, connects, hang-ups and jumps of time. Each run is played
//! twice, once with Redis's bytes whole and once byte by byte. (The two
//! may rightly differ: this Redis answers whether or not it was asked, so
//! bytes that come whole before the engine wrote its next command are a
//! reply to nothing, and the same bytes one at a time may be the reply;
//! that the connection itself reads a reply the same however it is cut is
//! the `resp` target's property.) Nothing may panic, and, both ways, no
//! request may wait for Redis past `redis_timeout`: once enough
//! time has passed for every wait (Redis's and the long polls'), every
//! request has its answer's status line, or its client is closed or
//! streaming.
//!
//! Input: operations, each a tag byte and its operands: `0 k r` client k
//! (of 2) sends request r (of [`REQUESTS`]); `1 n bytes…` Redis sends n
//! bytes; `2 t` time moves by t × 50 ms; `3` a pending connect completes;
//! `4` Redis closes the connection.

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::node::{UpstreamAction, UPSTREAM};
use pushwire::Config;

const REQUESTS: [&str; 8] = [
    "POST /topics/t HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
    "GET /topics/t/sse HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /topics/t/poll?timeout=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /topics/t/messages?after=5-1 HTTP/1.1\r\nHost: h\r\n\r\n",
    "DELETE /topics/t HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /topics HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /topics/t HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /topics/u/stream?after=earliest HTTP/1.1\r\nHost: h\r\n\r\n",
];

const TIMEOUT: Duration = Duration::from_millis(300);

fn config() -> Config {
    Config {
        redis: Some("redis://127.0.0.1:6379".into()),
        redis_timeout: TIMEOUT,
        redis_check_interval: Duration::from_millis(200),
        redis_linger: Duration::from_millis(400),
        max_body_bytes: 1024,
        ..Config::default()
    }
}

enum Op<'a> {
    Request(usize, usize),
    Redis(&'a [u8]),
    Wait(u8),
    Connected,
    Eof,
}

fn script(data: &[u8]) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    let mut rest = data;
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag % 5 {
            0 => {
                let [k, r, tail @ ..] = rest else { break };
                ops.push(Op::Request(
                    usize::from(*k) % 2,
                    usize::from(*r) % REQUESTS.len(),
                ));
                rest = tail;
            }
            1 => {
                let Some((&n, tail)) = rest.split_first() else {
                    break;
                };
                let n = usize::from(n).min(tail.len());
                ops.push(Op::Redis(&tail[..n]));
                rest = &tail[n..];
            }
            2 => {
                let Some((&t, tail)) = rest.split_first() else {
                    break;
                };
                ops.push(Op::Wait(t % 16));
                rest = tail;
            }
            3 => ops.push(Op::Connected),
            _ => ops.push(Op::Eof),
        }
    }
    ops
}

/// Plays the script; panics if a request is left waiting.
fn run(ops: &[Op], split: bool) {
    let mut h = Harness::new(config());
    let clients = [h.connect(), h.connect()];
    let mut asked = [0usize; 2];
    let mut connecting = false;
    let mut connected = false;
    let drive = |h: &mut Harness, connecting: &mut bool, connected: &mut bool| {
        while let Some(action) = h.node.poll_upstream() {
            match action {
                UpstreamAction::Connect { .. } => *connecting = true,
                UpstreamAction::Close { .. } => {
                    *connecting = false;
                    *connected = false;
                }
            }
        }
        if *connected {
            // Everything the engine writes is taken (and ignored: the
            // input plays Redis).
            while let Some(n) = h.node.upstream_transmit(UPSTREAM).map(<[u8]>::len) {
                h.node.handle_upstream_sent(UPSTREAM, n, h.now);
            }
        }
        h.settle();
    };
    h.advance(Duration::from_millis(1));
    drive(&mut h, &mut connecting, &mut connected);
    for op in ops {
        match op {
            Op::Request(k, r) => {
                asked[*k] += 1;
                h.send(clients[*k], REQUESTS[*r].as_bytes());
            }
            Op::Redis(bytes) if connected => {
                if split {
                    for b in bytes.iter() {
                        h.node
                            .handle_upstream_read(UPSTREAM, std::slice::from_ref(b), h.now);
                    }
                } else {
                    h.node.handle_upstream_read(UPSTREAM, bytes, h.now);
                }
            }
            Op::Redis(_) => {}
            Op::Wait(t) => h.advance(Duration::from_millis(50 * u64::from(*t))),
            Op::Connected if connecting => {
                connecting = false;
                connected = true;
                h.node.handle_upstream_connected(UPSTREAM, h.now);
            }
            Op::Connected => {}
            Op::Eof if connected || connecting => {
                h.node.handle_upstream_eof(UPSTREAM, h.now);
            }
            Op::Eof => {}
        }
        drive(&mut h, &mut connecting, &mut connected);
    }
    // Past every wait's bound: each request waits at most the longer of
    // redis_timeout and the poll's 1 s, one after another.
    h.advance(Duration::from_secs(2 * ops.len() as u64 + 2));
    drive(&mut h, &mut connecting, &mut connected);
    for (&id, asked) in clients.iter().zip(asked) {
        let received = &h.clients[&id].received;
        let heads = received.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
        let streaming = received.windows(13).any(|w| w == b"event-stream\r")
            || received.windows(6).any(|w| w == b"ndjson");
        let answered = h.closed(id) || streaming || heads >= asked;
        assert!(
            answered,
            "a request still waits for Redis past redis_timeout"
        );
    }
}

pub fn check(data: &[u8]) {
    let ops = script(data);
    if ops.len() > 64 {
        return;
    }
    run(&ops, false);
    run(&ops, true);
}

//! Socket.IO in cluster mode (`--redis`) against a Redis that says
//! anything: the input chooses what two Socket.IO sockets (on WebSocket,
//! joined to `/`) emit, the bytes "Redis" answers with, connects,
//! hang-ups and jumps of time. Each run is played twice, Redis's bytes
//! whole and byte by byte (which may rightly differ, see
//! `cluster_upstream`). Nothing may panic, and, both ways, no call may
//! wait for Redis past `redis_timeout`: once enough time has passed for
//! every wait, every call that asked for an ack has had it (its `43<id>[`
//! packet), or its socket's connection is closed.
//!
//! Input: operations, each a tag byte and its operands: `0 k e` socket k
//! (of 2) emits call e (of [`CALLS`]) with the next ack id; `1 n bytes…`
//! Redis sends n bytes; `2 t` time moves by t × 50 ms; `3` a pending
//! connect completes; `4` Redis closes the connection.

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::node::{UpstreamAction, UPSTREAM};
use pushwire::wire::ws_frame::{write_masked_frame, Opcode};
use pushwire::Config;

/// The arguments of each call, as JSON array members.
const CALLS: [&str; 7] = [
    r#""subscribe","t""#,
    r#""subscribe","t",{"after":"77-5"}"#,
    r#""subscribe","u",{"after":"earliest"}"#,
    r#""publish","t","hi""#,
    r#""publish","u",{"a":1},{"event":"e"}"#,
    r#""unsubscribe","t""#,
    r#""nonsense""#,
];

const TIMEOUT: Duration = Duration::from_millis(300);

fn config() -> Config {
    Config {
        redis: Some("redis://127.0.0.1:6379".into()),
        redis_timeout: TIMEOUT,
        redis_check_interval: Duration::from_millis(200),
        redis_linger: Duration::from_millis(400),
        // The sockets never answer pings: none come within a run.
        sio_ping_interval: Duration::from_secs(24 * 3600),
        // Frames stay readable text.
        ws_deflate: false,
        ..Config::default()
    }
}

enum Op<'a> {
    Emit(usize, usize),
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
                let [k, e, tail @ ..] = rest else { break };
                ops.push(Op::Emit(usize::from(*k) % 2, usize::from(*e) % CALLS.len()));
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

fn frame(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    write_masked_frame(&mut out, true, Opcode::Text, text.as_bytes(), [7, 1, 2, 3]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Plays the script; panics if a call is left without its ack.
fn run(ops: &[Op], split: bool) {
    let mut h = Harness::new(config());
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
    let sockets = [h.connect(), h.connect()];
    for &s in &sockets {
        h.send(
            s,
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: h\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        h.send(s, &frame("40"));
    }
    let mut asked = [0u64; 2];
    for op in ops {
        match op {
            Op::Emit(k, e) => {
                asked[*k] += 1;
                let packet = format!("42{}[{}]", asked[*k], CALLS[*e]);
                h.send(sockets[*k], &frame(&packet));
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
    // Past every wait's bound (each at most redis_timeout, one after
    // another).
    h.advance(Duration::from_secs(ops.len() as u64 + 2));
    drive(&mut h, &mut connecting, &mut connected);
    for (&s, asked) in sockets.iter().zip(asked) {
        if h.closed(s) {
            continue;
        }
        let received = &h.clients[&s].received;
        for id in 1..=asked {
            let ack = format!("43{id}[");
            assert!(
                contains(received, ack.as_bytes()),
                "call {id} of a socket still waits for Redis past redis_timeout"
            );
        }
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

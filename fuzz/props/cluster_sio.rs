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
//! Input: the operations of `scripted_redis`; a client's action `0 k e`
//! is socket k (of 2) emitting call e (of [`CALLS`]) with the next ack id.

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::wire::ws_frame::{write_masked_frame, Opcode};
use pushwire::Config;

#[path = "scripted_redis.rs"]
mod scripted_redis;
use scripted_redis::{script, Op, ScriptedRedis};

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
    let mut redis = ScriptedRedis::new(split);
    h.advance(Duration::from_millis(1));
    redis.drive(&mut h);
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
        if let Some((k, a)) = redis.play(&mut h, op) {
            asked[k] += 1;
            let packet = format!("42{}[{}]", asked[k], CALLS[a]);
            h.send(sockets[k], &frame(&packet));
            redis.drive(&mut h);
        }
    }
    // Past every wait's bound (each at most redis_timeout, one after
    // another).
    h.advance(Duration::from_secs(ops.len() as u64 + 2));
    redis.drive(&mut h);
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
    let ops = script(data, CALLS.len());
    if ops.len() > 64 {
        return;
    }
    run(&ops, false);
    run(&ops, true);
}

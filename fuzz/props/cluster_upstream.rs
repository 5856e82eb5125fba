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
//! Input: the operations of `scripted_redis`; a client's action `0 k r`
//! is client k (of 2) sending request r (of [`REQUESTS`]).

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::Config;

#[path = "scripted_redis.rs"]
mod scripted_redis;
use scripted_redis::{script, Op, ScriptedRedis};

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

/// Plays the script; panics if a request is left waiting.
fn run(ops: &[Op], split: bool) {
    let mut h = Harness::new(config());
    let clients = [h.connect(), h.connect()];
    let mut asked = [0usize; 2];
    let mut redis = ScriptedRedis::new(split);
    h.advance(Duration::from_millis(1));
    redis.drive(&mut h);
    for op in ops {
        if let Some((k, a)) = redis.play(&mut h, op) {
            asked[k] += 1;
            h.send(clients[k], REQUESTS[a].as_bytes());
            redis.drive(&mut h);
        }
    }
    // Past every wait's bound: each request waits at most the longer of
    // redis_timeout and the poll's 1 s, one after another.
    h.advance(Duration::from_secs(2 * ops.len() as u64 + 2));
    redis.drive(&mut h);
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
    let ops = script(data, REQUESTS.len());
    if ops.len() > 64 {
        return;
    }
    run(&ops, false);
    run(&ops, true);
}

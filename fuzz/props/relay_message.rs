//! Properties of the node-to-node relay codec (`proto/redis/relay.rs`).
//!
//! 1. Parse never panics; what parses writes back byte for byte (each
//!    message has one spelling: canonical numbers, single spaces, the
//!    body as it came).
//! 2. A message built from the input (its bytes cut into the fields)
//!    writes and parses back to itself, or is refused on the way out
//!    because a text line would not read back (`BadText`), never written
//!    wrong.
#![allow(dead_code)]

use pushwire::proto::engineio::Sid;
use pushwire::proto::redis::relay::{
    parse, write, Engine, NodeTag, PollMethod, Relay, RelayError, Waiter,
};

pub fn check(data: &[u8]) {
    if let Ok(relay) = parse(data) {
        let mut out = Vec::new();
        write(&relay, &mut out).expect("what parsed can be written");
        assert_eq!(out, data, "parse → write must give the input back");
    }
    built(data);
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

fn built(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let waiter = Waiter {
        conn: u64_at(rest, 0),
        ticket: u64_at(rest, 8),
    };
    // The text line is the input up to its first 0 byte, the body after.
    let rest = rest.get(16..).unwrap_or(&[]);
    let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let Ok(line) = std::str::from_utf8(&rest[..cut]) else {
        return;
    };
    let body = rest.get(cut + 1..).unwrap_or(&[]);
    let from = NodeTag::from_bytes([pick, 1, 2, 3, 4, 5]);
    let engine = if pick & 8 == 0 {
        Engine::SocketIo
    } else {
        Engine::EngineIo
    };
    // The sid of an edge's message: the line, when it is one.
    let sid = Sid::parse(line).unwrap_or_else(|| Sid::from_bytes([pick; 20]));
    let binary = pick & 16 != 0;
    let relay = match pick % 8 {
        0 => Relay::Request {
            from,
            waiter,
            engine,
            method: if pick & 32 == 0 {
                PollMethod::Get
            } else {
                PollMethod::Post
            },
            query: line,
            body,
        },
        1 => Relay::Answer {
            waiter,
            status: 100 + u16::from(pick >> 1) * 2,
            content_type: line,
            body,
        },
        2 => Relay::WsOpen {
            from,
            waiter,
            engine,
            query: line,
        },
        3 => Relay::WsIn {
            from,
            waiter,
            sid,
            binary,
            data: body,
        },
        4 => Relay::WsDrained { from, waiter, sid },
        5 => Relay::WsGone { from, waiter, sid },
        6 if pick & 64 != 0 => Relay::Refused {
            from,
            engine,
            query: line,
        },
        6 => Relay::WsOut {
            waiter,
            binary,
            drain: pick & 32 != 0,
            data: body,
        },
        _ => Relay::WsClose {
            waiter,
            code: 1000 + u16::from(pick) * 15,
        },
    };
    let mut out = Vec::new();
    match write(&relay, &mut out) {
        Ok(()) => assert_eq!(parse(&out), Ok(relay), "write → parse must give it back"),
        // Only a text line that would not read back is refused.
        Err(e) => {
            assert_eq!(e, RelayError::BadText);
            assert!(line.chars().any(char::is_control));
        }
    }
}

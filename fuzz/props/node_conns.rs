//! The whole core, several connections at once: their bytes interleaved
//! in an order the input chooses, with publishes, hang-ups and jumps of
//! time between them. Each run is played twice, once with every send
//! whole and once byte by byte; each client must receive the same bytes
//! and see the same close both ways. Nothing may panic, and no connection
//! may hold more than its limits allow.
//!
//! Input: the first byte gives the number of connections (1-4); then
//! operations, each a tag byte and its operands:
//! `0 k n bytes…` client k sends n bytes; `1 k` client k hangs up;
//! `2 t` time moves by t × 100 ms; `3 n bytes…` a publish to topic `t`.

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::Config;

fn config() -> Config {
    Config {
        max_head_bytes: 2048,
        max_body_bytes: 2048,
        max_message_bytes: 2048,
        max_batch_bytes: 4096,
        subscriber_queue_bytes: 16 * 1024,
        max_outbound_bytes: 16 * 1024,
        ws_max_frame_bytes: 4096,
        ws_max_message_bytes: 4096,
        history_messages: 16,
        ..Config::default()
    }
}

enum Op<'a> {
    Send(usize, &'a [u8]),
    HangUp(usize),
    Wait(u8),
    Publish(&'a [u8]),
}

fn script(data: &[u8]) -> (usize, Vec<Op<'_>>) {
    let Some((&n, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let conns = usize::from(n % 4) + 1;
    let mut ops = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag % 4 {
            0 | 3 => {
                let (k, len) = match (tag % 4, rest) {
                    (0, [k, len, ..]) => (usize::from(*k) % conns, usize::from(*len)),
                    (3, [len, ..]) => (0, usize::from(*len)),
                    _ => break,
                };
                let skip = if tag % 4 == 0 { 2 } else { 1 };
                rest = &rest[skip..];
                let len = len.min(rest.len());
                let (bytes, tail) = rest.split_at(len);
                rest = tail;
                ops.push(if tag % 4 == 0 {
                    Op::Send(k, bytes)
                } else {
                    Op::Publish(bytes)
                });
            }
            1 => {
                let Some((&k, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                ops.push(Op::HangUp(usize::from(k) % conns));
            }
            _ => {
                let Some((&t, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                ops.push(Op::Wait(t));
            }
        }
    }
    (conns, ops)
}

/// Plays the script; returns what each client received and whether it
/// was closed.
fn play(conns: usize, ops: &[Op], byte_by_byte: bool) -> Vec<(Vec<u8>, bool)> {
    let cfg = config();
    let input_cap = cfg.max_head_bytes + cfg.max_body_bytes + 64 * 1024;
    let output_cap = 4 * 1024 * 1024;
    let mut h = Harness::new(cfg);
    let ids: Vec<_> = (0..conns).map(|_| h.connect()).collect();
    for op in ops {
        match *op {
            Op::Send(k, bytes) => {
                if byte_by_byte {
                    for b in bytes {
                        h.send(ids[k], std::slice::from_ref(b));
                    }
                } else {
                    h.send(ids[k], bytes);
                }
            }
            Op::HangUp(k) => h.eof(ids[k]),
            Op::Wait(t) => h.advance(Duration::from_millis(100 * u64::from(t))),
            Op::Publish(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let _ = h.node.handle_publish("t", None, &text, h.now);
                h.settle();
            }
        }
        for &id in &ids {
            let (input, output) = h.node.held_bytes(id);
            assert!(input <= input_cap, "input held {input}");
            assert!(output <= output_cap, "output held {output}");
        }
    }
    ids.iter()
        .map(|id| {
            let c = &h.clients[id];
            (strip_continue(&c.received), c.closed)
        })
        .collect()
}

/// `100 Continue` is sent when a head is complete before its body: that
/// depends on how the bytes were split, by design (RFC 9110 §10.1.1).
fn strip_continue(bytes: &[u8]) -> Vec<u8> {
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(CONTINUE) {
            i += CONTINUE.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

pub fn check(data: &[u8]) {
    let (conns, ops) = script(data);
    if conns == 0 {
        return;
    }
    let whole = play(conns, &ops, false);
    let split = play(conns, &ops, true);
    for (k, (w, s)) in whole.iter().zip(&split).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&w.0),
            String::from_utf8_lossy(&s.0),
            "client {k}: whole and split differ"
        );
        assert_eq!(w.1, s.1, "client {k}: closed whole {} split {}", w.1, s.1);
    }
}

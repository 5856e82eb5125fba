//! Properties of the WebSocket session (`proto/ws.rs`), on any client
//! byte stream.
//!
//! 1. Splitting does not matter: the stream fed whole, in pieces whose
//!    sizes come from the input, and one byte at a time gives the same
//!    messages, the same bytes out, the same close code and state, and
//!    leaves the same bytes unconsumed — which are never more than one
//!    frame header or one control frame.
//! 2. What comes out is well formed: text messages are UTF-8 (checked
//!    with std, an oracle independent of the session's own validator),
//!    messages respect the limits, the output is a sequence of unmasked,
//!    unfragmented server frames, and a close frame, if any, is the last
//!    one and carries the session's close code.
//! 3. The session's incremental UTF-8 validator agrees with std on the
//!    same bytes fed in the same pieces.
//! 4. Timers never panic, and a closed session stays closed.
//!
//! Input: byte 0 picks the limits, bytes 1-4 the piece sizes, the rest is
//! the stream (a corpus file is a client conversation after one header
//! byte and four size bytes).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use pushwire::proto::ws::{write_message, MessageKind, Utf8Validator, WsLimits, WsSession};
use pushwire::wire::ws_frame::{FrameHeader, Opcode};

/// Streams longer than this are cut: the byte-at-a-time run is quadratic
/// in the number of frames it re-parses.
const MAX_STREAM: usize = 8192;

#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<(MessageKind, Vec<u8>)>,
    out: Vec<u8>,
    close_code: Option<u16>,
    wants_close: bool,
    open: bool,
    leftover: Vec<u8>,
}

fn limits(sel: u8) -> WsLimits {
    let small = sel & 1 == 1;
    WsLimits {
        max_frame_bytes: if small { 64 } else { 1 << 20 },
        max_message_bytes: if small { 128 } else { 1 << 20 },
        max_fragments: if small { 3 } else { 4096 },
        close_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(10),
    }
}

/// Feeds `stream` in pieces of the sizes `sizes` yields, as a server
/// does: unconsumed bytes stay at the front of its buffer.
fn run(sel: u8, stream: &[u8], now: Instant, mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut s = WsSession::new(limits(sel), now);
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut messages = Vec::new();
    let mut at = 0;
    loop {
        let n = sizes().max(1).min(stream.len() - at);
        pending.extend_from_slice(&stream[at..at + n]);
        at += n;
        let used = s.handle_read(&mut pending, now, &mut out, &mut |kind, payload, out| {
            messages.push((kind, payload.to_vec()));
            // Echo, as /echo does: replies interleave with the session's.
            write_message(out, kind, payload);
        });
        assert!(used <= pending.len());
        pending.drain(..used);
        // Only a header or a control frame is ever left waiting.
        assert!(pending.len() < 14 + 125 + 1, "kept {} bytes", pending.len());
        if at == stream.len() {
            break;
        }
    }
    Outcome {
        messages,
        out,
        close_code: s.close_code(),
        wants_close: s.wants_close_transport(),
        open: s.is_open(),
        leftover: pending,
    }
}

pub fn check(data: &[u8]) {
    let [sel, z0, z1, z2, z3, stream @ ..] = data else {
        return;
    };
    let stream = &stream[..stream.len().min(MAX_STREAM)];
    let now = Instant::now();

    let whole = run(*sel, stream, now, || usize::MAX);
    let sizes = [*z0, *z1, *z2, *z3];
    let mut i = 0;
    let pieces = run(*sel, stream, now, || {
        i += 1;
        usize::from(sizes[i % 4] % 32)
    });
    assert_eq!(pieces, whole, "fed in pieces");
    let bytes = run(*sel, stream, now, || 1);
    assert_eq!(bytes, whole, "fed a byte at a time");

    well_formed(*sel, &whole);
    utf8_agrees(stream, &sizes);
    timers(*sel, stream, now);
}

fn well_formed(sel: u8, o: &Outcome) {
    let l = limits(sel);
    for (kind, payload) in &o.messages {
        assert!(payload.len() <= l.max_message_bytes);
        if *kind == MessageKind::Text {
            assert!(std::str::from_utf8(payload).is_ok(), "text must be UTF-8");
        }
    }
    assert_eq!(o.open, !o.wants_close && o.close_code.is_none());
    let mut rest = &o.out[..];
    let mut echoes = 0;
    while !rest.is_empty() {
        let (h, n) = FrameHeader::parse(rest)
            .expect("our frames parse")
            .expect("our frames are whole");
        assert!(h.fin && h.rsv == 0 && h.mask.is_none());
        let len = h.payload_len as usize;
        let payload = &rest[n..n + len];
        rest = &rest[n + len..];
        match h.opcode {
            Opcode::Text | Opcode::Binary => echoes += 1,
            Opcode::Pong => assert!(len <= 125),
            Opcode::Close => {
                assert!(rest.is_empty(), "nothing after our close frame");
                let code = match payload {
                    [] => 1005,
                    [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
                    [_] => panic!("1-byte close payload"),
                };
                assert_eq!(Some(code), o.close_code);
                assert!(o.wants_close);
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(echoes, o.messages.len());
}

fn utf8_agrees(stream: &[u8], sizes: &[u8; 4]) {
    let mut v = Utf8Validator::new();
    let mut at = 0;
    let mut i = 0;
    let mut ok = true;
    while at < stream.len() && ok {
        let n = (usize::from(sizes[i % 4]) + 1).min(stream.len() - at);
        ok = v.feed(&stream[at..at + n]);
        at += n;
        i += 1;
    }
    let std_ok = std::str::from_utf8(stream).is_ok();
    assert_eq!(ok && v.is_complete(), std_ok);
    if !ok {
        assert!(!std_ok && !v.is_valid_so_far());
    }
}

fn timers(sel: u8, stream: &[u8], now: Instant) {
    let mut s = WsSession::new(limits(sel), now);
    let mut out = Vec::new();
    let mut buf = stream.to_vec();
    s.handle_read(&mut buf, now, &mut out, &mut |_, _, _| {});
    let mut t = now;
    // Walk every deadline the session asks for: ping, pong, close.
    for _ in 0..4 {
        match s.poll_timeout() {
            Some(d) => {
                assert!(d >= t);
                t = d;
                s.handle_timeout(t, &mut out);
            }
            None => break,
        }
    }
    if s.is_open() {
        s.close(1001, "going away", t, &mut out);
        assert!(!s.is_open());
    }
    s.handle_eof();
    assert!(s.wants_close_transport() && s.poll_timeout().is_none());
    let before = out.len();
    let mut again = stream.to_vec();
    assert_eq!(
        s.handle_read(&mut again, t, &mut out, &mut |_, _, _| panic!("closed")),
        again.len()
    );
    s.send(MessageKind::Text, b"late", &mut out);
    assert_eq!(out.len(), before);
}

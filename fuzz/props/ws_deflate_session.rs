//! Properties of a WebSocket session with permessage-deflate
//! (`proto/ws.rs` + `proto/ws_deflate.rs`), on any client byte stream.
//!
//! 1. Splitting does not matter: the stream fed whole, in pieces whose
//!    sizes come from the input, and one byte at a time gives the same
//!    messages, the same bytes out and the same close code — inflating
//!    included, which is where a streaming decoder could disagree.
//! 2. Nothing inflates past the limit: every delivered message is within
//!    `max_message_bytes` however small its compressed form, and text is
//!    UTF-8 (std as the oracle).
//! 3. What the server sends back (each message echoed through the
//!    session's writer, compressed when over the threshold) is read by a
//!    client-role session as exactly the messages that came in.
//!
//! Input: byte 0 picks the limits and context terms, bytes 1-4 the piece
//! sizes, the rest is a list of frames to build: a flags byte (bit 0 FIN,
//! bit 1 RSV1, bits 2-3 the opcode: text, binary, continuation, ping;
//! bit 4: the payload is deflated by us first, so that valid compressed
//! data is common; bit 5: at level 1, not 6), a length byte, and that
//! many payload bytes. Bit 7 of byte 0 has the server compress its echoes
//! at level 1, not 6. The frames
//! are masked as a client masks them.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use pushwire::proto::ws::{MessageKind, Role, WsDeflate, WsLimits, WsSession};
use pushwire::proto::ws_deflate::deflate_into;
use pushwire::wire::ws_extensions::DeflateParams;
use pushwire::wire::ws_frame::{apply_mask, FrameHeader, Opcode};

/// Frames built from one input: enough for many messages, few enough for
/// the byte-at-a-time run.
const MAX_FRAMES: usize = 64;

fn limits(sel: u8) -> WsLimits {
    let small = sel & 1 == 1;
    WsLimits {
        max_frame_bytes: if small { 200 } else { 1 << 16 },
        max_message_bytes: if small { 300 } else { 1 << 16 },
        max_fragments: 16,
        close_timeout: Duration::from_secs(5),
        ping_interval: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(10),
    }
}

fn deflate(sel: u8) -> WsDeflate {
    WsDeflate {
        params: DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: sel & 2 != 0,
            server_max_window_bits: 9 + (sel >> 2) % 7,
            client_max_window_bits: 8 + (sel >> 5) % 8,
            ..DeflateParams::DEFAULT
        },
        // Level 1 (the per-connection default, zlib-rs's quick strategy)
        // and level 6 (the fan-out default) write different blocks.
        level: if sel & 0x80 != 0 { 1 } else { 6 },
        threshold: u32::from(sel >> 4 & 1) * 16,
    }
}

/// The client stream the input describes.
fn build(mut rest: &[u8]) -> Vec<u8> {
    let mut stream = Vec::new();
    let mut n = 0;
    while let [flags, len, tail @ ..] = rest {
        if n == MAX_FRAMES {
            break;
        }
        n += 1;
        let len = usize::from(*len).min(tail.len());
        let (raw, next) = tail.split_at(len);
        rest = next;
        let opcode = match (flags >> 2) & 3 {
            0 => Opcode::Text,
            1 => Opcode::Binary,
            2 => Opcode::Continuation,
            _ => Opcode::Ping,
        };
        let mut payload = Vec::new();
        if flags & 0x10 != 0 {
            // Bit 5: the client compresses at level 1 instead of 6.
            let level = if flags & 0x20 != 0 { 1 } else { 6 };
            deflate_into(&[raw], level, 15, &mut payload);
        } else {
            payload.extend_from_slice(raw);
        }
        if opcode == Opcode::Ping {
            payload.truncate(125);
        }
        let key = [flags ^ 0x5a, len as u8, 0x37, 0xfa];
        FrameHeader {
            fin: flags & 1 != 0 || opcode == Opcode::Ping,
            rsv: if flags & 2 != 0 { 0b100 } else { 0 },
            opcode,
            mask: Some(key),
            payload_len: payload.len() as u64,
        }
        .emit(&mut stream);
        let start = stream.len();
        stream.extend_from_slice(&payload);
        apply_mask(&mut stream[start..], key, 0);
    }
    stream
}

#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<(MessageKind, Vec<u8>)>,
    out: Vec<u8>,
    close_code: Option<u16>,
    open: bool,
}

fn run(sel: u8, stream: &[u8], now: Instant, mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut s = WsSession::new(limits(sel), now);
    s.set_deflate(Some(deflate(sel)));
    let writer = s.writer();
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
            writer.send(out, kind, payload);
        });
        assert!(used <= pending.len());
        pending.drain(..used);
        assert!(pending.len() < 14 + 125 + 1, "kept {} bytes", pending.len());
        if at == stream.len() {
            break;
        }
    }
    Outcome {
        messages,
        out,
        close_code: s.close_code(),
        open: s.is_open(),
    }
}

pub fn check(data: &[u8]) {
    let [sel, z0, z1, z2, z3, rest @ ..] = data else {
        return;
    };
    let stream = build(rest);
    let now = Instant::now();

    let whole = run(*sel, &stream, now, || usize::MAX);
    let sizes = [*z0, *z1, *z2, *z3];
    let mut i = 0;
    let pieces = run(*sel, &stream, now, || {
        i += 1;
        usize::from(sizes[i % 4] % 64)
    });
    assert_eq!(pieces, whole, "fed in pieces");
    let bytes = run(*sel, &stream, now, || 1);
    assert_eq!(bytes, whole, "fed a byte at a time");

    let l = limits(*sel);
    for (kind, payload) in &whole.messages {
        assert!(
            payload.len() <= l.max_message_bytes,
            "inflated past the limit"
        );
        if *kind == MessageKind::Text {
            assert!(std::str::from_utf8(payload).is_ok(), "text must be UTF-8");
        }
    }

    // 3. A client session reads our echoes back as the same messages.
    let mut client = WsSession::with_role(
        Role::Client,
        WsLimits {
            max_message_bytes: usize::MAX,
            max_frame_bytes: u64::MAX,
            ..limits(*sel)
        },
        now,
    );
    client.set_deflate(Some(deflate(*sel)));
    let mut echoed = Vec::new();
    let mut back = whole.out.clone();
    let mut sink = Vec::new();
    client.handle_read(&mut back, now, &mut sink, &mut |kind, payload, _| {
        echoed.push((kind, payload.to_vec()))
    });
    assert_eq!(client.error(), None, "our frames are valid");
    assert_eq!(echoed, whole.messages, "echoes inflate to the messages");
}

//! Property of the SSE codec: whatever text is published, a browser reads
//! it back.
//!
//! From the input: a message text (any UTF-8), an optional event name (a
//! valid one), an optional id (anything, CR, LF and NUL included), and
//! choices about the stream around the event (a BOM, a `retry:` and a
//! comment before it, CRLF or CR instead of LF line endings). The event is
//! encoded, then parsed by the WHATWG algorithm fed the stream whole, one
//! byte at a time, and in pieces the input chooses. Every way, exactly one
//! event must come out, with:
//! - type: the name, or `message`;
//! - data: the text, with CRLF and CR turned into LF (§9.2.6 joins data
//!   lines with LF: the one change the format imposes);
//! - last event id: the id without its CR and LF (the encoder drops them
//!   so they cannot inject a line), or empty if it contains a NUL (§9.2.6
//!   ignores such an id).
//!
//! Input layout: byte 0 holds the flags; the rest is split on 0xFF (never
//! in UTF-8) into text, event name, id and piece lengths.
#![allow(dead_code)]

use pushwire::wire::sse::{
    encode_comment, encode_event, encode_retry, EventStreamParser, SseEvent,
};

const NO_EVENT: u8 = 1;
const NO_ID: u8 = 1 << 1;
const BOM: u8 = 1 << 2;
const RETRY: u8 = 1 << 3;
const COMMENT: u8 = 1 << 4;
const CRLF: u8 = 1 << 5;
const CR: u8 = 1 << 6;

pub fn check(data: &[u8]) {
    let (&flags, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut parts = rest.split(|&b| b == 0xFF);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let event = event_name(parts.next().unwrap_or_default());
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let cuts: Vec<u8> = parts.flatten().copied().collect();

    let event = event.filter(|_| flags & NO_EVENT == 0);
    let id = Some(id).filter(|_| flags & NO_ID == 0);
    let retry_ms = text.len() as u64 * 7;

    // The stream: what the server sends on a connection.
    let mut wire = Vec::new();
    if flags & BOM != 0 {
        wire.extend_from_slice("\u{feff}".as_bytes());
    }
    if flags & RETRY != 0 {
        encode_retry(&mut wire, retry_ms);
    }
    if flags & COMMENT != 0 {
        encode_comment(&mut wire, &text);
    }
    encode_event(&mut wire, id.as_deref(), event.as_deref(), &text);
    // The encoder writes no CR at all (it splits the text on it), so every
    // LF is a line ending, and any other ending is as good.
    assert!(!wire.contains(&b'\r'), "a CR reached the wire");
    if flags & CRLF != 0 {
        wire = replace_lf(&wire, b"\r\n");
    } else if flags & CR != 0 {
        wire = replace_lf(&wire, b"\r");
    }

    let expected_id = match &id {
        Some(id) if !id.contains('\0') => id.replace(['\r', '\n'], ""),
        _ => String::new(),
    };
    let expected = SseEvent {
        event_type: event.clone().unwrap_or_else(|| "message".into()),
        data: text.replace("\r\n", "\n").replace('\r', "\n"),
        last_event_id: expected_id.clone(),
    };

    let pieces: Vec<usize> = cuts.iter().map(|&c| usize::from(c % 64)).collect();
    for split in [Split::Whole, Split::Bytewise, Split::Pieces(&pieces)] {
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        feed(&mut parser, &wire, split, &mut events);
        parser.finish();
        assert_eq!(events, std::slice::from_ref(&expected), "{split:?}");
        assert_eq!(parser.last_event_id(), expected_id, "{split:?}");
        let retry = (flags & RETRY != 0).then_some(retry_ms);
        assert_eq!(parser.retry(), retry, "{split:?}");
        assert_eq!(parser.oversized_events(), 0);
    }
}

/// A valid event name from raw bytes: the bytes of the allowed set, at
/// most 64; `None` if none is left.
fn event_name(raw: &[u8]) -> Option<String> {
    let name: String = raw
        .iter()
        .filter(|&&b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
        .take(64)
        .map(|&b| char::from(b))
        .collect();
    assert!(name.is_empty() || pushwire::hub::valid_event(&name));
    (!name.is_empty()).then_some(name)
}

fn replace_lf(wire: &[u8], ending: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len() * 2);
    for &b in wire {
        if b == b'\n' {
            out.extend_from_slice(ending);
        } else {
            out.push(b);
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Split<'a> {
    Whole,
    Bytewise,
    /// Piece lengths, used in a cycle; a 0 feeds an empty read.
    Pieces(&'a [usize]),
}

fn feed(parser: &mut EventStreamParser, wire: &[u8], split: Split, events: &mut Vec<SseEvent>) {
    match split {
        Split::Whole => parser.feed(wire, events),
        Split::Bytewise => {
            for b in wire {
                parser.feed(std::slice::from_ref(b), events);
            }
        }
        Split::Pieces([]) => parser.feed(wire, events),
        Split::Pieces(lengths) => {
            let mut rest = wire;
            let mut previous_empty = false;
            for &n in lengths.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                // An empty read is fine, but never twice in a row: the loop
                // must progress.
                let n = if previous_empty { n.max(1) } else { n };
                let (piece, tail) = rest.split_at(n.min(rest.len()));
                parser.feed(piece, events);
                rest = tail;
                previous_empty = n == 0;
            }
        }
    }
}

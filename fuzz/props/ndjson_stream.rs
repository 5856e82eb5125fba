//! Property of the NDJSON stream reader ([`NdjsonReader`]): how the bytes
//! are cut never changes what is read.
//!
//! Byte 0 chooses the mode:
//! - even: the rest is a raw stream, read with a small line limit (so the
//!   limit is met too). Fed whole, one byte at a time, and in pieces the
//!   input chooses, it must give the same items, the same error (or none)
//!   and the same unfinished rest.
//! - odd: the rest is split on 0xFF (never in UTF-8) into message texts;
//!   each is written as the server writes a line (`{"id","event","data"}`
//!   and `\n`), with a heartbeat after every other one, and the stream,
//!   cut every way, must read back as exactly those messages and beats.
#![allow(dead_code)]

use pushwire::client::{ClientMessage, Delivery, NdjsonReader, StreamItem};

/// Small enough that fuzzed lines cross it.
const SMALL_LINE: usize = 64;

/// What a whole read gave: the items, then the error, then the bytes held.
type Outcome = (Vec<StreamItem>, Option<String>, usize);

fn read(pieces: &mut dyn Iterator<Item = &[u8]>, max_line: usize) -> Outcome {
    let mut reader = NdjsonReader::new(max_line);
    let mut items = Vec::new();
    for piece in pieces {
        if let Err(e) = reader.feed(piece, &mut items) {
            return (items, Some(e.to_string()), 0);
        }
    }
    let pending = reader.pending();
    (items, None, pending)
}

/// Whole, byte by byte, and cut at the lengths `cuts` gives, in turn.
fn every_way(stream: &[u8], cuts: &[u8], max_line: usize) -> Outcome {
    let whole = read(&mut std::iter::once(stream), max_line);
    let bytes = read(&mut stream.chunks(1), max_line);
    assert_eq!(whole, bytes, "whole vs byte by byte");
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i % cuts.len().max(1))
            .map_or(7, |&c| c as usize % 17 + 1)
            .min(rest.len());
        let (piece, after) = rest.split_at(n);
        pieces.push(piece);
        rest = after;
        i += 1;
    }
    let cut = read(&mut pieces.into_iter(), max_line);
    assert_eq!(whole, cut, "whole vs pieces");
    whole
}

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        // Cut lengths come from the same bytes, read backwards.
        let cuts: Vec<u8> = rest.iter().rev().copied().collect();
        every_way(rest, &cuts, SMALL_LINE);
        return;
    }
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (n, text) in rest.split(|&b| b == 0xFF).enumerate() {
        let Ok(text) = std::str::from_utf8(text) else {
            continue;
        };
        let id = format!("1796160691510066-{}", n + 1);
        let event = if n % 3 == 0 { "message" } else { "ns:ev" };
        pushwire::wire::json::write_message(&mut stream, &id, event, text);
        stream.push(b'\n');
        expected.push(StreamItem::Delivery(Delivery::Message(ClientMessage {
            id,
            event: event.into(),
            data: text.into(),
        })));
        if n % 2 == 1 {
            stream.push(b'\n');
            expected.push(StreamItem::Heartbeat);
        }
    }
    let (items, error, pending) = every_way(&stream, rest, usize::MAX);
    assert_eq!(error, None);
    assert_eq!(pending, 0);
    assert_eq!(items, expected);
}

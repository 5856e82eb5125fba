//! Properties of a message's wire forms (`hub/message.rs`) and of the
//! name types (`hub/name.rs`).
//!
//! A message keeps its payload once and writes each form as
//! `[prefix, body, suffix]`, with a transformed body only where the
//! encoding must change bytes. Whatever the payload, every form must read
//! back as what the reference encoders and readers say:
//! - SSE (bare and chunked): the WHATWG parser, fed the form whole and one
//!   byte at a time, gets one event with the id, the event name and the
//!   payload (line endings as LF); the chunk-size line counts the bare form.
//! - JSON, WebSocket, NDJSON, their multi-topic forms and the multi-topic
//!   SSE tail: the JSON reader gets the object with `topic` (multi-topic
//!   only, first), `id`, `event`, and `data` equal to the payload — a
//!   string for text, the same value for JSON. A text message's JSON is
//!   byte for byte `wire::json::write_message`. The WebSocket header
//!   parses and counts the rest; NDJSON is one line; the SSE tail is one
//!   `data:` line.
//! - `wire_len` is the parts' length, and when a form needs no change the
//!   body is the payload itself, not a copy.
//! - `TopicName::parse` and `EventName::parse` accept exactly the
//!   documented names.
//!
//! Input layout: byte 0 holds flags; the rest is the payload (lossy UTF-8)
//! and, after a 0xFF byte (never in UTF-8), a name to validate.
#![allow(dead_code)]

use std::time::Instant;

use pushwire::client::json::{self as reader, Value};
use pushwire::hub::{
    EventName, Message, MessageId, PayloadKind, TopicName, WireFormat, INLINE_BODY,
};
use pushwire::wire::json::write_message;
use pushwire::wire::sse::{EventStreamParser, SseEvent};
use pushwire::wire::ws_frame::{FrameHeader, Opcode};

const NAMED: u8 = 1;
/// Publish the payload as JSON when it is valid JSON.
const AS_JSON: u8 = 1 << 1;
/// Wrap the payload as a JSON string with line breaks around it, so that
/// JSON payloads with raw CR and LF come up often.
const WRAP_JSON: u8 = 1 << 2;

pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (payload, name) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    check_names(&String::from_utf8_lossy(name));

    let mut text = String::from_utf8_lossy(payload).into_owned();
    if flags & WRAP_JSON != 0 {
        let mut literal = Vec::new();
        pushwire::wire::json::write_str(&mut literal, &text);
        text = format!("\r\n[ {}\n,\r1 ]\n", String::from_utf8_lossy(&literal));
    }
    let kind = if flags & (AS_JSON | WRAP_JSON) != 0 && reader::parse(&text).is_ok() {
        PayloadKind::Json
    } else {
        PayloadKind::Text
    };
    let topic = TopicName::parse("room.1").unwrap();
    let event = (flags & NAMED != 0).then(|| EventName::parse("tick:2").unwrap());
    let id = MessageId { epoch: 17, seq: 4 };
    let m = Message::new(&topic, id, event.as_ref(), &text, kind, Instant::now());

    for format in WireFormat::ALL {
        let parts = m.parts(format);
        let bytes = parts.concat();
        assert_eq!(bytes.len(), m.wire_len(format), "{format:?}");
        check_form(&m, format, &bytes);
    }
    // Forms that need no change share the payload itself, unless it is
    // small enough to lie in the form's one slice.
    let shares = |format: WireFormat| {
        let parts = m.parts(format);
        if text.len() <= INLINE_BODY {
            parts[1..].iter().all(|p| p.is_empty())
        } else {
            std::ptr::eq(parts[1], m.data().as_bytes())
        }
    };
    let plain = !text.contains(['\r', '\n']);
    if plain {
        assert!(shares(WireFormat::Sse { chunked: true }));
    }
    if kind == PayloadKind::Json {
        assert!(shares(WireFormat::Ws));
    }
}

fn check_form(m: &Message, format: WireFormat, bytes: &[u8]) {
    match format {
        WireFormat::Sse { chunked } => {
            let bare = if chunked { unchunk(bytes) } else { bytes };
            let expected = SseEvent {
                event_type: m.event_name().into(),
                data: m.data().replace("\r\n", "\n").replace('\r', "\n"),
                last_event_id: m.id_text.to_string(),
            };
            assert_eq!(
                read_sse(bare, false),
                std::slice::from_ref(&expected),
                "{format:?}"
            );
            assert_eq!(read_sse(bare, true), [expected], "{format:?}");
        }
        WireFormat::Json => check_object(m, bytes, false),
        WireFormat::MultiJson => check_object(m, bytes, true),
        WireFormat::Ws | WireFormat::MultiWs => {
            let (header, n) = FrameHeader::parse(bytes).unwrap().unwrap();
            assert!(header.fin && header.opcode == Opcode::Text && header.mask.is_none());
            assert_eq!(header.payload_len as usize, bytes.len() - n);
            check_object(m, &bytes[n..], format == WireFormat::MultiWs);
        }
        WireFormat::Ndjson { chunked } | WireFormat::MultiNdjson { chunked } => {
            let line = if chunked { unchunk(bytes) } else { bytes };
            let object = line.strip_suffix(b"\n").expect("an NDJSON line ends in LF");
            assert!(!object.contains(&b'\n') && !object.contains(&b'\r'));
            check_object(m, object, matches!(format, WireFormat::MultiNdjson { .. }));
        }
        WireFormat::MultiSseTail { chunked } => {
            let tail = if chunked { unchunk(bytes) } else { bytes };
            let object = tail
                .strip_prefix(b"data: ")
                .and_then(|t| t.strip_suffix(b"\n\n"))
                .expect("data: OBJECT LF LF");
            assert!(!object.contains(&b'\n') && !object.contains(&b'\r'));
            check_object(m, object, true);
            // The stream's own id: line goes before; a reader gets the object.
            let mut event = b"id: c\n".to_vec();
            event.extend_from_slice(tail);
            let events = read_sse(&event, false);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].data.as_bytes(), object);
        }
    }
}

/// A form as one HTTP/1.1 chunk: `HEX CRLF data CRLF` (RFC 9112 §7.1),
/// the size counting the data exactly.
fn unchunk(bytes: &[u8]) -> &[u8] {
    let line_end = bytes.windows(2).position(|w| w == b"\r\n").unwrap();
    let size = std::str::from_utf8(&bytes[..line_end]).unwrap();
    let size = usize::from_str_radix(size, 16).unwrap();
    let data = &bytes[line_end + 2..];
    assert_eq!(data.len(), size + 2, "the chunk size counts its data");
    assert!(data.ends_with(b"\r\n"));
    &data[..size]
}

fn read_sse(bytes: &[u8], byte_by_byte: bool) -> Vec<SseEvent> {
    let mut parser = EventStreamParser::new();
    let mut events = Vec::new();
    if byte_by_byte {
        for b in bytes {
            parser.feed(std::slice::from_ref(b), &mut events);
        }
    } else {
        parser.feed(bytes, &mut events);
    }
    events
}

fn check_object(m: &Message, bytes: &[u8], with_topic: bool) {
    let text = std::str::from_utf8(bytes).expect("JSON is UTF-8");
    let value = reader::parse(text).unwrap_or_else(|e| panic!("{e:?}: {text}"));
    let Value::Object(members) = &value else {
        panic!("not an object: {text}");
    };
    let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    let expected_keys: &[&str] = if with_topic {
        &["topic", "id", "event", "data"]
    } else {
        &["id", "event", "data"]
    };
    assert_eq!(keys, expected_keys);
    if with_topic {
        assert_eq!(
            value.get("topic").and_then(Value::as_str),
            Some(m.topic.as_str())
        );
    }
    assert_eq!(value.get("id").and_then(Value::as_str), Some(&*m.id_text));
    assert_eq!(
        value.get("event").and_then(Value::as_str),
        Some(m.event_name())
    );
    let data = value.get("data").unwrap();
    match m.kind {
        PayloadKind::Text => {
            assert_eq!(data.as_str(), Some(m.data()));
            if !with_topic {
                let mut reference = Vec::new();
                write_message(&mut reference, &m.id_text, m.event_name(), m.data());
                assert_eq!(bytes, &reference[..]);
            }
        }
        PayloadKind::Json => assert_eq!(Some(data), reader::parse(m.data()).ok().as_ref()),
    }
}

fn check_names(name: &str) {
    let valid = |max: usize| {
        (1..=max).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    };
    match TopicName::parse(name) {
        Ok(t) => {
            assert!(valid(128));
            assert_eq!(t.as_str(), name);
        }
        Err(e) => {
            assert!(!valid(128));
            assert_eq!((e.status(), e.close_code()), (400, 1008));
        }
    }
    assert_eq!(EventName::parse(name).is_ok(), valid(64));
}

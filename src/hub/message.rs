//! A published message, and what a reader is told about a topic: the
//! replay after a cursor, and the gap when some of it is gone.
//!
//! Fan-out is the hot path of a push server: one publish, thousands of
//! subscribers. So a message is encoded once, when it is published, in
//! every form a transport sends — an SSE event, the same event as an
//! HTTP/1.1 chunk, a WebSocket text frame, a JSON object — and each
//! subscriber's outbound queue just takes another reference to the bytes.

use std::sync::Arc;
use std::time::Instant;

use super::MessageId;
use crate::wire::{json, sse, ws_frame};

/// A published message with its wire forms, shared (`Arc`) by the history
/// and every subscriber it is sent to.
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    /// `id` as written on the wire (`<epoch>-<seq>`).
    pub id_text: Box<str>,
    /// The event name given at publish time; `None` is the event `message`.
    pub event: Option<Box<str>>,
    pub data: Box<str>,
    pub published_at: Instant,
    /// The SSE event block: `id:`, `event:` (when named), `data:` lines,
    /// the empty line. Written as-is on an HTTP/1.0 (close-delimited)
    /// stream.
    pub sse: Arc<[u8]>,
    /// The same block framed as one HTTP/1.1 chunk (RFC 9112 §7.1:
    /// `chunk-size CRLF chunk-data CRLF`, the size in hex): what a chunked
    /// SSE stream — the common case — writes.
    pub sse_chunk: Arc<[u8]>,
    /// A complete unmasked server text frame whose payload is `json`.
    pub ws_frame: Arc<[u8]>,
    /// `{"id":"…","event":"…","data":"…"}`.
    pub json: Arc<[u8]>,
}

impl Message {
    /// Encodes every wire form of a message. The hub calls it once per
    /// publish; `event` must already be a valid name (or `None`).
    pub fn new(id: MessageId, event: Option<&str>, data: &str, published_at: Instant) -> Message {
        let id_text = id.to_string();

        let mut sse_block = Vec::with_capacity(data.len() + 48);
        sse::encode_event(&mut sse_block, Some(&id_text), event, data);

        let mut chunk = Vec::with_capacity(sse_block.len() + 20);
        chunk.extend_from_slice(format!("{:x}\r\n", sse_block.len()).as_bytes());
        chunk.extend_from_slice(&sse_block);
        chunk.extend_from_slice(b"\r\n");

        let mut json_object = Vec::with_capacity(data.len() + 48);
        json::write_message(&mut json_object, &id_text, event.unwrap_or("message"), data);

        let mut frame = Vec::with_capacity(json_object.len() + 10);
        ws_frame::write_frame(&mut frame, true, ws_frame::Opcode::Text, &json_object);

        Message {
            id,
            id_text: id_text.into(),
            event: event.map(Into::into),
            data: data.into(),
            published_at,
            sse: sse_block.into(),
            sse_chunk: chunk.into(),
            ws_frame: frame.into(),
            json: json_object.into(),
        }
    }

    /// The event name as an `EventSource` reports it.
    pub fn event_name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// Bytes this message holds (text and every wire form), for memory
    /// accounting.
    pub fn footprint(&self) -> usize {
        self.data.len()
            + self.id_text.len()
            + self.event.as_deref().map_or(0, str::len)
            + self.sse.len()
            + self.sse_chunk.len()
            + self.ws_frame.len()
            + self.json.len()
    }
}

/// Some messages after a reader's cursor can no longer be delivered
/// (evicted, or the cursor belongs to another history). The reader is told
/// so, instead of silently missing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The cursor text as the client sent it.
    pub requested: String,
    /// The oldest message still kept, from which the replay resumes; `None`
    /// when nothing is kept.
    pub oldest: Option<MessageId>,
}

impl Gap {
    /// The gap as an SSE event: `event: gap`, one `data:` line of JSON
    /// `{"requested":"…","oldest":"…"}` (`oldest` empty when nothing is
    /// kept). It has no `id:` line: it is not a message, so it must not
    /// move the browser's `Last-Event-ID`.
    pub fn sse_event(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(b"{\"requested\":");
        self.write_fields(&mut body);
        body.push(b'}');
        // The JSON writer escapes every CR and LF, so this is one data line.
        let body = String::from_utf8_lossy(&body);
        sse::encode_event(out, None, Some("gap"), &body);
    }

    /// The gap as a WebSocket message: `{"gap":true,"requested":"…",
    /// "oldest":"…"}` (no `id`: it is not a message).
    pub fn ws_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"gap\":true,\"requested\":");
        self.write_fields(out);
        out.push(b'}');
    }

    /// `"<requested>","oldest":"<oldest>"`, shared by both forms.
    fn write_fields(&self, out: &mut Vec<u8>) {
        json::write_str(out, &self.requested);
        out.extend_from_slice(b",\"oldest\":");
        match self.oldest {
            Some(id) => json::write_str(out, &id.to_string()),
            None => out.extend_from_slice(b"\"\""),
        }
    }
}

/// What a reader gets from a topic after its cursor.
#[derive(Debug, Clone)]
pub struct Replay {
    /// At most the requested number of messages after the cursor, oldest
    /// first.
    pub messages: Vec<Arc<Message>>,
    /// Set when messages between the cursor and `messages` are gone.
    pub gap: Option<Gap>,
    /// The cursor for the next request: the id of the last message in
    /// `messages`, or when there is none, the position the reader is at
    /// (the newest id, or `<epoch>-0` for a topic without messages).
    pub last_id: MessageId,
}

impl Replay {
    /// The body of a poll or short-poll answer:
    /// `{"messages":[…],"last_id":"…","timeout":false,"gap":false}`.
    /// `timeout` says the long poll expired with nothing new.
    pub fn write_poll_json(&self, out: &mut Vec<u8>, timeout: bool) {
        let messages_len: usize = self.messages.iter().map(|m| m.json.len() + 1).sum();
        out.reserve(messages_len + 80);
        out.extend_from_slice(b"{\"messages\":[");
        for (i, message) in self.messages.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&message.json);
        }
        out.extend_from_slice(b"],\"last_id\":");
        json::write_str(out, &self.last_id.to_string());
        out.extend_from_slice(if timeout {
            b",\"timeout\":true"
        } else {
            b",\"timeout\":false"
        });
        out.extend_from_slice(if self.gap.is_some() {
            b",\"gap\":true}"
        } else {
            b",\"gap\":false}"
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sse::{EventStreamParser, SseEvent};

    fn id(epoch: u64, seq: u64) -> MessageId {
        MessageId { epoch, seq }
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn wire_forms_of_a_named_message() {
        let m = Message::new(id(7, 3), Some("price"), "a\nb", Instant::now());
        assert_eq!(&*m.id_text, "7-3");
        assert_eq!(text(&m.sse), "id: 7-3\nevent: price\ndata: a\ndata: b\n\n");
        assert_eq!(
            text(&m.sse_chunk),
            "26\r\nid: 7-3\nevent: price\ndata: a\ndata: b\n\n\r\n"
        );
        assert_eq!(
            text(&m.json),
            r#"{"id":"7-3","event":"price","data":"a\nb"}"#
        );
        // RFC 6455 §5.2: FIN + opcode 1 (text), then an unmasked 7-bit length.
        assert_eq!(m.ws_frame[0], 0x81);
        assert_eq!(usize::from(m.ws_frame[1]), m.json.len());
        assert_eq!(&m.ws_frame[2..], &m.json[..]);
    }

    #[test]
    fn unnamed_message_is_message_in_json_and_has_no_event_line() {
        let m = Message::new(id(1, 1), None, "hi", Instant::now());
        assert_eq!(text(&m.sse), "id: 1-1\ndata: hi\n\n");
        assert_eq!(
            text(&m.json),
            r#"{"id":"1-1","event":"message","data":"hi"}"#
        );
        assert_eq!(m.event_name(), "message");
    }

    #[test]
    fn large_message_gets_extended_lengths() {
        let data = "x".repeat(70_000);
        let m = Message::new(id(1, 1), None, &data, Instant::now());
        // 127: a 64-bit length follows.
        assert_eq!(m.ws_frame[1], 127);
        let len = u64::from_be_bytes(m.ws_frame[2..10].try_into().unwrap());
        assert_eq!(len as usize, m.json.len());
        let size = format!("{:x}\r\n", m.sse.len());
        assert!(m.sse_chunk.starts_with(size.as_bytes()));
        assert!(m.sse_chunk.ends_with(b"\n\n\r\n"));
    }

    #[test]
    fn gap_forms() {
        let gap = Gap {
            requested: "3-9".into(),
            oldest: Some(id(5, 1)),
        };
        let mut out = Vec::new();
        gap.sse_event(&mut out);
        assert_eq!(
            text(&out),
            "event: gap\ndata: {\"requested\":\"3-9\",\"oldest\":\"5-1\"}\n\n"
        );
        // A browser sees it as a `gap` event that leaves Last-Event-ID alone.
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        parser.feed(&out, &mut events);
        assert_eq!(
            events,
            [SseEvent {
                event_type: "gap".into(),
                data: r#"{"requested":"3-9","oldest":"5-1"}"#.into(),
                last_event_id: String::new(),
            }]
        );

        let mut out = Vec::new();
        let gap = Gap {
            requested: "3-9".into(),
            oldest: None,
        };
        gap.ws_json(&mut out);
        assert_eq!(text(&out), r#"{"gap":true,"requested":"3-9","oldest":""}"#);
    }

    #[test]
    fn poll_json() {
        let t = Instant::now();
        let replay = Replay {
            messages: vec![
                Arc::new(Message::new(id(2, 1), None, "a", t)),
                Arc::new(Message::new(id(2, 2), Some("e"), "\"b\"", t)),
            ],
            gap: None,
            last_id: id(2, 2),
        };
        let mut out = Vec::new();
        replay.write_poll_json(&mut out, false);
        assert_eq!(
            text(&out),
            concat!(
                r#"{"messages":[{"id":"2-1","event":"message","data":"a"},"#,
                r#"{"id":"2-2","event":"e","data":"\"b\""}],"#,
                r#""last_id":"2-2","timeout":false,"gap":false}"#
            )
        );

        let empty = Replay {
            messages: Vec::new(),
            gap: Some(Gap {
                requested: "1-1".into(),
                oldest: None,
            }),
            last_id: id(2, 0),
        };
        let mut out = Vec::new();
        empty.write_poll_json(&mut out, true);
        assert_eq!(
            text(&out),
            r#"{"messages":[],"last_id":"2-0","timeout":true,"gap":true}"#
        );
    }
}

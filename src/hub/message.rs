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
use crate::wire::{chunked as chunk, json, sse, ws_frame};

/// A slice of a buffer shared by reference count: cloning it, or queueing
/// it on a thousand connections, copies no bytes.
#[derive(Clone, Debug)]
pub struct SharedBytes {
    buf: Arc<[u8]>,
    start: usize,
    end: usize,
}

impl SharedBytes {
    /// The bytes `buf[start..end]`, sharing `buf`. A range that does not
    /// fit is clamped to it.
    pub fn slice(buf: &Arc<[u8]>, start: usize, end: usize) -> SharedBytes {
        let end = end.min(buf.len());
        SharedBytes {
            buf: Arc::clone(buf),
            start: start.min(end),
            end,
        }
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> SharedBytes {
        let end = v.len();
        SharedBytes {
            buf: v.into(),
            start: 0,
            end,
        }
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

/// A published message with its wire forms, encoded once at publish time
/// and shared by the history and every subscriber it is sent to.
///
/// The text is held twice, not five times: the SSE block is a slice of its
/// own HTTP chunk, and the JSON object is the payload of its own WebSocket
/// frame. A full history of 1,000 messages of 1 MiB costs about 2 GiB, not
/// 5.
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    /// `id` as written on the wire (`<epoch>-<seq>`).
    pub id_text: Box<str>,
    /// The event name given at publish time; `None` is the event `message`.
    pub event: Option<Box<str>>,
    pub published_at: Instant,
    /// The SSE event block: `id:`, `event:` (when named), `data:` lines,
    /// the empty line. Written as-is on an HTTP/1.0 (close-delimited)
    /// stream. A slice of `sse_chunk`.
    pub sse: SharedBytes,
    /// The same block framed as one HTTP/1.1 chunk (RFC 9112 §7.1:
    /// `chunk-size CRLF chunk-data CRLF`, the size in hex): what a chunked
    /// SSE stream — the common case — writes.
    pub sse_chunk: SharedBytes,
    /// A complete unmasked server text frame whose payload is `json`.
    pub ws_frame: SharedBytes,
    /// `{"id":"…","event":"…","data":"…"}`. A slice of `ws_frame`.
    pub json: SharedBytes,
}

impl Message {
    /// Encodes every wire form of a message. The hub calls it once per
    /// publish; `event` must already be a valid name (or `None`).
    pub fn new(id: MessageId, event: Option<&str>, data: &str, published_at: Instant) -> Message {
        let id_text = id.to_string();

        let mut sse_block = Vec::with_capacity(data.len() + 48);
        sse::encode_event(&mut sse_block, Some(&id_text), event, data);
        let mut chunk = Vec::with_capacity(sse_block.len() + 20);
        chunk::write_chunk_header(&mut chunk, sse_block.len());
        let block_at = chunk.len();
        chunk.extend_from_slice(&sse_block);
        chunk.extend_from_slice(b"\r\n");
        drop(sse_block);
        let chunk: Arc<[u8]> = chunk.into();
        let sse = SharedBytes::slice(&chunk, block_at, chunk.len() - 2);

        let mut json_object = Vec::with_capacity(data.len() + 48);
        json::write_message(&mut json_object, &id_text, event.unwrap_or("message"), data);
        let (header, header_len) =
            ws_frame::server_header(true, ws_frame::Opcode::Text, json_object.len());
        let mut frame = Vec::with_capacity(header_len + json_object.len());
        frame.extend_from_slice(&header[..header_len]);
        frame.extend_from_slice(&json_object);
        drop(json_object);
        let frame: Arc<[u8]> = frame.into();
        let json = SharedBytes::slice(&frame, header_len, frame.len());

        Message {
            id,
            id_text: id_text.into(),
            event: event.map(Into::into),
            published_at,
            sse,
            sse_chunk: SharedBytes::slice(&chunk, 0, chunk.len()),
            ws_frame: SharedBytes::slice(&frame, 0, frame.len()),
            json,
        }
    }

    /// The event name as an `EventSource` reports it.
    pub fn event_name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// Bytes this message holds, for memory accounting.
    pub fn footprint(&self) -> usize {
        self.id_text.len()
            + self.event.as_deref().map_or(0, str::len)
            + self.sse_chunk.len()
            + self.ws_frame.len()
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

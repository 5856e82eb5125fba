//! A published message, and what a reader is told about a topic: the
//! replay after a cursor, and the gap when some of it is gone.
//!
//! Fan-out is the hot path of a push server (one publish, thousands of
//! subscribers), and history is where its memory goes (a thousand kept
//! messages per topic). So a message holds its text once, and every wire
//! form is three slices — `[prefix, body, suffix]` — that a writer queues
//! by reference to the message and sends with one `writev`:
//!
//! - the prefix and suffix are small: the id, the event name, the topic,
//!   the JSON keys, an HTTP/1.1 chunk-size line or a WebSocket frame
//!   header. They are built the first time a subscriber needs that form.
//! - the body is the payload itself whenever the encoding leaves its bytes
//!   alone — the common case. Only where an encoding must change bytes is a
//!   transformed copy kept, built lazily, for the forms that need it: SSE
//!   turns each line break into a new `data:` line; a JSON string escapes
//!   `"`, `\` and control characters; a JSON payload on a line-oriented
//!   form (NDJSON, a multi-topic SSE `data:` line) loses its raw line
//!   breaks.
//!
//! Before working on this file, read the WHATWG HTML "Server-sent events"
//! section (§9.2.5 and §9.2.6, the stream format and how a browser reads
//! it), RFC 8259 §7 (JSON strings), RFC 9112 §7.1 (chunked coding) and
//! RFC 6455 §5.2 (frame header).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{EventName, MessageId, TopicName};
use crate::wire::{chunked as chunk, json, ws_frame};

/// What a payload is (DESIGN.md "Payloads"), recorded with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// UTF-8 text: a JSON string in every JSON form, the `data:` text on
    /// SSE.
    Text,
    /// A JSON value the caller has already validated: embedded as it is in
    /// every JSON form (`"data":{"a":1}`), its text the `data:` on SSE. The
    /// hub trusts the caller here; text that is not JSON would make every
    /// JSON form of the message invalid.
    Json,
}

/// A form in which a message goes on the wire. See [`Message::parts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// A single-topic SSE event: `id:`, `event:` when named, one `data:`
    /// line per line of the payload, the empty line. `chunked`: the same
    /// bytes as one HTTP/1.1 chunk (an HTTP/1.0 stream is close-delimited
    /// and writes the event bare).
    Sse { chunked: bool },
    /// The JSON object `{"id","event","data"}` alone: the elements of a
    /// poll body.
    Json,
    /// A WebSocket text frame (unmasked, FIN) whose payload is [`Json`](Self::Json).
    Ws,
    /// An NDJSON line `{"id","event","data"}\n` (the HTTP streaming
    /// transport), bare or as one chunk.
    Ndjson { chunked: bool },
    /// `{"topic","id","event","data"}`: a multi-topic poll element.
    MultiJson,
    /// A WebSocket text frame of [`MultiJson`](Self::MultiJson) (`GET /ws`).
    MultiWs,
    /// An NDJSON line of [`MultiJson`](Self::MultiJson).
    MultiNdjson { chunked: bool },
    /// The tail of a multi-topic SSE event: `data: {"topic","id","event",
    /// "data"}\n\n`. Its `id:` is the connection's own combined cursor, so
    /// the connection writes `id:` and `event:` itself, then this tail.
    /// `chunked`: the tail as a chunk of its own (chunk boundaries mean
    /// nothing to an SSE reader, so the `id:`/`event:` lines may be the
    /// chunk before).
    MultiSseTail { chunked: bool },
}

/// The forms grouped by the prefix and suffix they share: the chunked and
/// bare forms of a family are one buffer (`HEX CRLF` + prefix, suffix +
/// `CRLF`), and the framed and bare JSON objects one too (frame header +
/// prefix), so each family is built once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Sse,
    Json,
    Ndjson,
    MultiJson,
    MultiNdjson,
    MultiSseTail,
}

const FAMILIES: usize = 6;

impl WireFormat {
    /// The family, and whether the form has the family's outer wrapping
    /// (a chunk, or a WebSocket frame header).
    fn family(self) -> (Family, bool) {
        match self {
            WireFormat::Sse { chunked } => (Family::Sse, chunked),
            WireFormat::Json => (Family::Json, false),
            WireFormat::Ws => (Family::Json, true),
            WireFormat::Ndjson { chunked } => (Family::Ndjson, chunked),
            WireFormat::MultiJson => (Family::MultiJson, false),
            WireFormat::MultiWs => (Family::MultiJson, true),
            WireFormat::MultiNdjson { chunked } => (Family::MultiNdjson, chunked),
            WireFormat::MultiSseTail { chunked } => (Family::MultiSseTail, chunked),
        }
    }

    /// Every form, for tests and fuzzing.
    pub const ALL: [WireFormat; 12] = [
        WireFormat::Sse { chunked: false },
        WireFormat::Sse { chunked: true },
        WireFormat::Json,
        WireFormat::Ws,
        WireFormat::Ndjson { chunked: false },
        WireFormat::Ndjson { chunked: true },
        WireFormat::MultiJson,
        WireFormat::MultiWs,
        WireFormat::MultiNdjson { chunked: false },
        WireFormat::MultiNdjson { chunked: true },
        WireFormat::MultiSseTail { chunked: false },
        WireFormat::MultiSseTail { chunked: true },
    ];
}

/// Which bytes a family's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// The payload as published.
    Payload,
    /// The SSE form: each line break replaced by `\ndata: `.
    SseLines,
    /// The JSON form: a text payload escaped (without its quotes), a JSON
    /// payload with its raw CR and LF turned into spaces.
    JsonForm,
}

/// One family's prefix and suffix in one buffer:
/// `bytes = lead ++ prefix ++ suffix ++ trail`, where `lead` and `trail`
/// are the chunk-size line and the chunk's CRLF (or the frame header and
/// nothing), present only in the wrapped form. A body of at most
/// [`INLINE_BODY`] bytes lies between prefix and suffix (`inline`).
#[derive(Debug)]
struct Head {
    bytes: Box<[u8]>,
    lead: usize,
    split: usize,
    trail: usize,
    inline: bool,
}

/// Bodies up to this long are copied into each form's head, so that a
/// small message is written as one slice instead of three. Fan-out
/// writes carry a few small messages each, and every slice costs the
/// queue a step and the kernel a copy of its own; a copy of 256 bytes
/// costs less than either. Larger bodies stay shared with the history.
pub const INLINE_BODY: usize = 256;

/// Every family, in [`Family`] order.
const ALL_FAMILIES: [Family; FAMILIES] = [
    Family::Sse,
    Family::Json,
    Family::Ndjson,
    Family::MultiJson,
    Family::MultiNdjson,
    Family::MultiSseTail,
];

/// What one scan of the payload at publish time learns: whether each
/// transformation changes bytes, and how long its result is — so the
/// message's memory is known (and charged) before any copy is built.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// The payload has a CR or LF.
    line_breaks: bool,
    /// Length of the SSE body (the payload's if no line breaks).
    sse_len: usize,
    /// The JSON string escaping (text) changes bytes.
    escapes: bool,
    /// Length of the JSON body in the forms that use it.
    json_len: usize,
}

impl Shape {
    fn of(data: &[u8], kind: PayloadKind) -> Shape {
        let mut line_breaks = false;
        let mut sse_len = 0;
        let mut escaped_len = 0;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            // WHATWG HTML §9.2.5: CRLF, a lone CR and a lone LF each end a
            // line; each becomes "\ndata: " (7 bytes). A CRLF is counted at
            // its LF.
            let crlf_head = b == b'\r' && data.get(i + 1) == Some(&b'\n');
            if b == b'\r' || b == b'\n' {
                line_breaks = true;
                sse_len += if crlf_head { 0 } else { 7 };
            } else {
                sse_len += 1;
            }
            escaped_len += escaped_width(data, i);
            i += 1;
        }
        let (escapes, json_len) = match kind {
            PayloadKind::Text => (escaped_len != data.len(), escaped_len),
            PayloadKind::Json => (false, data.len()),
        };
        Shape {
            line_breaks,
            sse_len,
            escapes,
            json_len,
        }
    }
}

/// How many bytes `data[i]` takes inside a JSON string as
/// [`json::write_str`] writes it (RFC 8259 §7); U+2028 and U+2029 (E2 80
/// A8/A9) become a 6-byte `\u` escape, charged to their first byte.
fn escaped_width(data: &[u8], i: usize) -> usize {
    match data[i] {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 2,
        0x00..=0x1F => 6,
        0xE2 if matches!(data.get(i + 1..i + 3), Some([0x80, 0xA8 | 0xA9])) => 6,
        0x80 | 0xA8 | 0xA9 if is_separator_tail(data, i) => 0,
        _ => 1,
    }
}

/// `data[i]` is the second or third byte of an E2 80 A8/A9 sequence.
fn is_separator_tail(data: &[u8], i: usize) -> bool {
    let starts_at = |start: Option<usize>| {
        start.is_some_and(|s| matches!(data.get(s..s + 3), Some([0xE2, 0x80, 0xA8 | 0xA9])))
    };
    match data[i] {
        0x80 => starts_at(i.checked_sub(1)),
        _ => starts_at(i.checked_sub(2)),
    }
}

/// The most bytes one family's head can take: the chunk-size line or frame
/// header (at most 18), `data: `, the keys and quotes of the longest
/// object, `\n\n` and CRLF (under 80 together), and the names.
fn head_bound(topic: &str, id: &str, event: &str) -> usize {
    96 + topic.len() + id.len() + event.len()
}

/// A published message, shared by the history and every subscriber it is
/// sent to. See the module documentation.
#[derive(Debug)]
pub struct Message {
    pub id: MessageId,
    /// `id` as written on the wire (`<epoch>-<seq>`).
    pub id_text: Box<str>,
    pub topic: TopicName,
    /// The event name given at publish time; `None` is the event `message`.
    pub event: Option<EventName>,
    pub kind: PayloadKind,
    pub published_at: Instant,
    /// The text, once.
    data: Arc<str>,
    shape: Shape,
    sse_body: OnceLock<Box<[u8]>>,
    json_body: OnceLock<Box<[u8]>>,
    heads: [OnceLock<Head>; FAMILIES],
}

impl Message {
    /// A message of `data` (text, or JSON the caller has validated — see
    /// [`PayloadKind`]). Nothing is encoded yet: each form is built the
    /// first time [`Message::parts`] is asked for it.
    pub fn new(
        topic: &TopicName,
        id: MessageId,
        event: Option<&EventName>,
        data: &str,
        kind: PayloadKind,
        published_at: Instant,
    ) -> Message {
        Message {
            id,
            id_text: id.to_string().into(),
            topic: topic.clone(),
            event: event.cloned(),
            kind,
            published_at,
            shape: Shape::of(data.as_bytes(), kind),
            data: data.into(),
            sse_body: OnceLock::new(),
            json_body: OnceLock::new(),
            heads: Default::default(),
        }
    }

    /// The payload as published.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The event name as an `EventSource` reports it.
    pub fn event_name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// The message in `format`, as three slices to write one after the
    /// other (`writev`): a small prefix, the body — the payload itself
    /// unless this form must change its bytes — and a small suffix.
    pub fn parts(&self, format: WireFormat) -> [&[u8]; 3] {
        let (family, wrapped) = format.family();
        let head = self.head(family);
        let (start, end) = if wrapped {
            (0, head.bytes.len())
        } else {
            (head.lead, head.bytes.len() - head.trail)
        };
        if head.inline {
            return [&head.bytes[start..end], &[], &[]];
        }
        [
            &head.bytes[start..head.split],
            self.body(family),
            &head.bytes[head.split..end],
        ]
    }

    /// The length of [`Message::parts`] together.
    pub fn wire_len(&self, format: WireFormat) -> usize {
        self.parts(format).iter().map(|p| p.len()).sum()
    }

    /// Appends the form's bytes to `out` (a copy: for replies built whole,
    /// such as a poll body or the first block of a stream).
    pub fn write(&self, format: WireFormat, out: &mut Vec<u8>) {
        let parts = self.parts(format);
        out.reserve(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(p);
        }
    }

    /// The most memory this message can hold once every form has been
    /// built: the struct, the payload, the transformed copies its bytes
    /// call for, and a bound on every family's prefix and suffix. Charged
    /// in full at publish, so the history's byte limits bound real memory
    /// whatever the subscribers later ask for.
    pub fn footprint(&self) -> usize {
        let names =
            self.id_text.len() + self.topic.len() + self.event.as_deref().map_or(0, str::len);
        let heads = FAMILIES * head_bound(&self.topic, &self.id_text, self.event_name());
        let inlined: usize = ALL_FAMILIES
            .iter()
            .map(|&f| self.body_len(f))
            .filter(|&len| len <= INLINE_BODY)
            .sum();
        let sse = if self.shape.line_breaks {
            self.shape.sse_len
        } else {
            0
        };
        let json = if self.json_transformed() {
            self.shape.json_len
        } else {
            0
        };
        // Two reference counts ahead of the payload in its Arc.
        std::mem::size_of::<Message>() + 16 + self.data.len() + names + heads + inlined + sse + json
    }

    /// The JSON body differs from the payload: text that needs escaping,
    /// or JSON with raw line breaks (on the line-oriented forms).
    fn json_transformed(&self) -> bool {
        match self.kind {
            PayloadKind::Text => self.shape.escapes,
            PayloadKind::Json => self.shape.line_breaks,
        }
    }

    /// Which body a family writes.
    fn body_kind(&self, family: Family) -> Body {
        match family {
            Family::Sse if self.shape.line_breaks => Body::SseLines,
            Family::Sse => Body::Payload,
            // A JSON payload is embedded raw where a line break is fine.
            Family::Json | Family::MultiJson if self.kind == PayloadKind::Json => Body::Payload,
            _ if self.json_transformed() => Body::JsonForm,
            _ => Body::Payload,
        }
    }

    fn body(&self, family: Family) -> &[u8] {
        match self.body_kind(family) {
            Body::Payload => self.data.as_bytes(),
            Body::SseLines => self
                .sse_body
                .get_or_init(|| sse_lines(self.data.as_bytes())),
            Body::JsonForm => self.json_body.get_or_init(|| match self.kind {
                PayloadKind::Text => escaped(&self.data),
                PayloadKind::Json => one_line(self.data.as_bytes()),
            }),
        }
    }

    fn body_len(&self, family: Family) -> usize {
        match self.body_kind(family) {
            Body::Payload => self.data.len(),
            Body::SseLines => self.shape.sse_len,
            Body::JsonForm => self.shape.json_len,
        }
    }

    fn head(&self, family: Family) -> &Head {
        self.heads[family as usize].get_or_init(|| self.build_head(family))
    }

    fn build_head(&self, family: Family) -> Head {
        let body_len = self.body_len(family);
        let quote: &[u8] = match self.kind {
            PayloadKind::Text => b"\"",
            PayloadKind::Json => b"",
        };
        let mut prefix = Vec::with_capacity(128);
        let mut suffix = Vec::with_capacity(8);
        match family {
            Family::Sse => {
                // The names hold no CR or LF (their type), so each is one
                // field line as it is.
                prefix.extend_from_slice(b"id: ");
                prefix.extend_from_slice(self.id_text.as_bytes());
                prefix.push(b'\n');
                if let Some(event) = &self.event {
                    prefix.extend_from_slice(b"event: ");
                    prefix.extend_from_slice(event.as_bytes());
                    prefix.push(b'\n');
                }
                prefix.extend_from_slice(b"data: ");
                // The data's last line, then the empty line that dispatches
                // the event (§9.2.6).
                suffix.extend_from_slice(b"\n\n");
            }
            Family::Json | Family::Ndjson | Family::MultiJson | Family::MultiNdjson => {
                let with_topic = matches!(family, Family::MultiJson | Family::MultiNdjson);
                self.object_prefix(&mut prefix, with_topic);
                prefix.extend_from_slice(quote);
                suffix.extend_from_slice(quote);
                suffix.push(b'}');
                if matches!(family, Family::Ndjson | Family::MultiNdjson) {
                    suffix.push(b'\n');
                }
            }
            Family::MultiSseTail => {
                // JSON has no raw line break in the body this family uses,
                // so the object is one `data:` line.
                prefix.extend_from_slice(b"data: ");
                self.object_prefix(&mut prefix, true);
                prefix.extend_from_slice(quote);
                suffix.extend_from_slice(quote);
                suffix.extend_from_slice(b"}\n\n");
            }
        }
        let inner = prefix.len() + body_len + suffix.len();
        let inline = body_len <= INLINE_BODY;
        let held = if inline { body_len } else { 0 };
        let mut bytes = Vec::with_capacity(prefix.len() + held + suffix.len() + 20);
        let trail: &[u8] = match family {
            Family::Json | Family::MultiJson => {
                // RFC 6455 §5.2: FIN, opcode 1 (text), unmasked from a
                // server (§5.1), the shortest length encoding.
                let (header, n) = ws_frame::server_header(true, ws_frame::Opcode::Text, inner);
                bytes.extend_from_slice(&header[..n]);
                b""
            }
            _ => {
                // RFC 9112 §7.1: chunk-size (hex) CRLF chunk-data CRLF.
                chunk::write_chunk_header(&mut bytes, inner);
                b"\r\n"
            }
        };
        let lead = bytes.len();
        bytes.extend_from_slice(&prefix);
        if inline {
            bytes.extend_from_slice(self.body(family));
        }
        let split = bytes.len();
        bytes.extend_from_slice(&suffix);
        bytes.extend_from_slice(trail);
        Head {
            bytes: bytes.into_boxed_slice(),
            lead,
            split,
            trail: trail.len(),
            inline,
        }
    }

    /// `{["topic":"T",]"id":"I","event":"E","data":` — the names need no
    /// escaping (their type), but go through the JSON writer all the same.
    fn object_prefix(&self, out: &mut Vec<u8>, with_topic: bool) {
        out.push(b'{');
        if with_topic {
            out.extend_from_slice(b"\"topic\":");
            json::write_str(out, &self.topic);
            out.push(b',');
        }
        out.extend_from_slice(b"\"id\":");
        json::write_str(out, &self.id_text);
        out.extend_from_slice(b",\"event\":");
        json::write_str(out, self.event_name());
        out.extend_from_slice(b",\"data\":");
    }
}

/// The SSE body: the payload with each line ending (CRLF, CR or LF,
/// WHATWG HTML §9.2.5) replaced by `\ndata: `, so that between the
/// prefix's `data: ` and the suffix's `\n` every line of the message is a
/// `data:` line of its own — a browser joins them back with LF (§9.2.6).
fn sse_lines(data: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut rest = data;
    while let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        out.extend_from_slice(&rest[..end]);
        out.extend_from_slice(b"\ndata: ");
        let ending = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + ending..];
    }
    out.extend_from_slice(rest);
    out.into_boxed_slice()
}

/// A text payload as the inside of a JSON string literal.
fn escaped(data: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(data.len() + 16);
    json::write_str(&mut out, data);
    // The literal without its quotes: the quotes are in the head.
    out.pop();
    out.remove(0);
    out.into_boxed_slice()
}

/// A JSON payload on one line. RFC 8259 §2: outside strings, CR and LF are
/// insignificant whitespace, and inside them they must be escaped — so in
/// valid JSON every raw CR or LF is whitespace, and a space in its place
/// is the same value.
fn one_line(data: &[u8]) -> Box<[u8]> {
    data.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect()
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
        self.write_sse(out, None);
    }

    /// The SSE event, naming its topic on a multi-topic stream:
    /// `data: {"topic":"…","requested":"…","oldest":"…"}`.
    pub fn write_sse(&self, out: &mut Vec<u8>, topic: Option<&TopicName>) {
        let mut body = Vec::with_capacity(64);
        body.push(b'{');
        self.write_fields(&mut body, topic);
        body.push(b'}');
        // The JSON writer escapes every CR and LF, so this is one data line.
        let body = String::from_utf8_lossy(&body);
        crate::wire::sse::encode_event(out, None, Some("gap"), &body);
    }

    /// The gap as a WebSocket message: `{"gap":true,"requested":"…",
    /// "oldest":"…"}` (no `id`: it is not a message).
    pub fn ws_json(&self, out: &mut Vec<u8>) {
        self.write_json(out, None);
    }

    /// `{"gap":true,["topic":"…",]"requested":"…","oldest":"…"}`: the
    /// WebSocket message and the NDJSON line (without its LF), naming the
    /// topic on a multi-topic connection.
    pub fn write_json(&self, out: &mut Vec<u8>, topic: Option<&TopicName>) {
        out.extend_from_slice(b"{\"gap\":true,");
        self.write_fields(out, topic);
        out.push(b'}');
    }

    /// `["topic":"<topic>",]"requested":"<requested>","oldest":"<oldest>"`,
    /// shared by every form.
    fn write_fields(&self, out: &mut Vec<u8>, topic: Option<&TopicName>) {
        if let Some(topic) = topic {
            out.extend_from_slice(b"\"topic\":");
            json::write_str(out, topic);
            out.push(b',');
        }
        out.extend_from_slice(b"\"requested\":");
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
    /// The messages after the cursor within the [`super::ReplayLimit`],
    /// oldest first.
    pub messages: Vec<Arc<Message>>,
    /// Set when messages between the cursor and `messages` are gone.
    pub gap: Option<Gap>,
    /// The cursor for the next request: the id of the last message in
    /// `messages`, or when there is none, the position the reader is at
    /// (the newest id, or `<epoch>-0` for a topic without messages).
    pub last_id: MessageId,
}

impl Replay {
    /// The body of a single-topic poll or short-poll answer:
    /// `{"messages":[…],"last_id":"…","timeout":false,"gap":false}`.
    /// `timeout` says the long poll expired with nothing new.
    pub fn write_poll_json(&self, out: &mut Vec<u8>, timeout: bool) {
        out.extend_from_slice(b"{\"messages\":[");
        self.write_messages(out, false);
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

    /// The messages as JSON objects joined by `,` (no brackets), with
    /// `"topic"` first when `with_topic`: a multi-topic poll body lists
    /// several topics' replays one after the other (a `,` between two
    /// non-empty lists is the caller's).
    pub fn write_messages(&self, out: &mut Vec<u8>, with_topic: bool) {
        let format = if with_topic {
            WireFormat::MultiJson
        } else {
            WireFormat::Json
        };
        let len: usize = self.messages.iter().map(|m| m.wire_len(format) + 1).sum();
        out.reserve(len);
        for (i, message) in self.messages.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            message.write(format, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sse::{encode_event, EventStreamParser, SseEvent};

    fn id(epoch: u64, seq: u64) -> MessageId {
        MessageId { epoch, seq }
    }

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    fn topic(name: &str) -> TopicName {
        TopicName::parse(name).unwrap()
    }

    fn message(event: Option<&str>, data: &str, kind: PayloadKind) -> Message {
        let event = event.map(|e| EventName::parse(e).unwrap());
        Message::new(
            &topic("news"),
            id(7, 3),
            event.as_ref(),
            data,
            kind,
            Instant::now(),
        )
    }

    fn form(m: &Message, format: WireFormat) -> String {
        let mut out = Vec::new();
        m.write(format, &mut out);
        assert_eq!(out.len(), m.wire_len(format));
        String::from_utf8(out).unwrap()
    }

    /// Every form's bytes, for a payload that needs no transformation.
    #[test]
    fn every_form_of_a_named_text_message() {
        let m = message(Some("price"), "hi", PayloadKind::Text);
        let cases: &[(WireFormat, &str)] = &[
            (WireFormat::Sse { chunked: false }, "id: 7-3\nevent: price\ndata: hi\n\n"),
            (
                WireFormat::Sse { chunked: true },
                "1f\r\nid: 7-3\nevent: price\ndata: hi\n\n\r\n",
            ),
            (WireFormat::Json, r#"{"id":"7-3","event":"price","data":"hi"}"#),
            (
                WireFormat::Ndjson { chunked: false },
                "{\"id\":\"7-3\",\"event\":\"price\",\"data\":\"hi\"}\n",
            ),
            (
                WireFormat::Ndjson { chunked: true },
                "29\r\n{\"id\":\"7-3\",\"event\":\"price\",\"data\":\"hi\"}\n\r\n",
            ),
            (
                WireFormat::MultiJson,
                r#"{"topic":"news","id":"7-3","event":"price","data":"hi"}"#,
            ),
            (
                WireFormat::MultiNdjson { chunked: false },
                "{\"topic\":\"news\",\"id\":\"7-3\",\"event\":\"price\",\"data\":\"hi\"}\n",
            ),
            (
                WireFormat::MultiSseTail { chunked: false },
                "data: {\"topic\":\"news\",\"id\":\"7-3\",\"event\":\"price\",\"data\":\"hi\"}\n\n",
            ),
            (
                WireFormat::MultiSseTail { chunked: true },
                "3f\r\ndata: {\"topic\":\"news\",\"id\":\"7-3\",\"event\":\"price\",\"data\":\"hi\"}\n\n\r\n",
            ),
        ];
        for (format, expected) in cases {
            assert_eq!(form(&m, *format), *expected, "{format:?}");
            // A chunk's size line counts exactly the bare form.
            if let Some((size, rest)) = expected.split_once("\r\n") {
                if let Ok(size) = usize::from_str_radix(size, 16) {
                    assert_eq!(size, rest.len() - 2, "{format:?}");
                }
            }
            // A small body is copied into the form: one slice to write.
            assert!(
                m.parts(*format)[1..].iter().all(|p| p.is_empty()),
                "{format:?}"
            );
        }
        // RFC 6455 §5.2: FIN + opcode 1 (text), then an unmasked 7-bit length.
        let json = form(&m, WireFormat::Json);
        let ws = m.parts(WireFormat::Ws);
        assert_eq!(ws[0][..2], [0x81, json.len() as u8]);
        let framed = |format| {
            let mut out = Vec::new();
            m.write(format, &mut out);
            out
        };
        assert_eq!(&framed(WireFormat::Ws)[2..], json.as_bytes());
        let multi = form(&m, WireFormat::MultiJson);
        assert_eq!(&framed(WireFormat::MultiWs)[2..], multi.as_bytes());
        assert!(m.sse_body.get().is_none() && m.json_body.get().is_none());
    }

    /// A body past [`INLINE_BODY`] is the payload itself in every form
    /// that does not change its bytes; one at the limit is one slice.
    #[test]
    fn large_bodies_are_shared_and_small_ones_inlined() {
        for len in [INLINE_BODY, INLINE_BODY + 1] {
            let data = "x".repeat(len);
            let m = message(Some("price"), &data, PayloadKind::Text);
            for f in WireFormat::ALL {
                let parts = m.parts(f);
                if len <= INLINE_BODY {
                    assert!(parts[1..].iter().all(|p| p.is_empty()), "{f:?}");
                    assert!(parts[0].windows(len).any(|w| w == data.as_bytes()));
                } else {
                    assert!(std::ptr::eq(parts[1], m.data().as_bytes()), "{f:?}");
                }
            }
            assert!(m.sse_body.get().is_none() && m.json_body.get().is_none());
        }
    }

    #[test]
    fn unnamed_message_is_message_in_json_and_has_no_event_line() {
        let m = message(None, "hi", PayloadKind::Text);
        assert_eq!(
            form(&m, WireFormat::Sse { chunked: false }),
            "id: 7-3\ndata: hi\n\n"
        );
        assert_eq!(
            form(&m, WireFormat::Json),
            r#"{"id":"7-3","event":"message","data":"hi"}"#
        );
        assert_eq!(m.event_name(), "message");
    }

    /// A payload with line breaks and quotes: SSE and JSON each build
    /// their own copy, and only those forms use one.
    #[test]
    fn transformed_bodies_are_built_only_for_the_forms_that_need_them() {
        let m = message(Some("e"), "a\r\nb\"c\nd", PayloadKind::Text);
        assert!(m.sse_body.get().is_none() && m.json_body.get().is_none());
        assert_eq!(
            form(&m, WireFormat::Sse { chunked: false }),
            "id: 7-3\nevent: e\ndata: a\ndata: b\"c\ndata: d\n\n"
        );
        assert!(m.sse_body.get().is_some() && m.json_body.get().is_none());
        assert_eq!(
            form(&m, WireFormat::Json),
            r#"{"id":"7-3","event":"e","data":"a\r\nb\"c\nd"}"#
        );
        assert!(m.json_body.get().is_some());
        assert_eq!(
            form(&m, WireFormat::MultiSseTail { chunked: false }),
            "data: {\"topic\":\"news\",\"id\":\"7-3\",\"event\":\"e\",\"data\":\"a\\r\\nb\\\"c\\nd\"}\n\n"
        );
        // A payload with only quotes: SSE still shares the payload.
        let quoted = format!("say \"hi\" {}", "x".repeat(INLINE_BODY));
        let m = message(None, &quoted, PayloadKind::Text);
        let sse = m.parts(WireFormat::Sse { chunked: true });
        assert!(std::ptr::eq(sse[1], m.data().as_bytes()));
        assert!(!std::ptr::eq(
            m.parts(WireFormat::Ws)[1],
            m.data().as_bytes()
        ));
    }

    /// A JSON payload is embedded raw; its line breaks stay on the forms
    /// where they are harmless and become spaces on line-oriented ones.
    #[test]
    fn json_payloads() {
        let m = message(None, "{\"a\":1}", PayloadKind::Json);
        assert_eq!(
            form(&m, WireFormat::Json),
            r#"{"id":"7-3","event":"message","data":{"a":1}}"#
        );
        assert_eq!(
            form(&m, WireFormat::Sse { chunked: false }),
            "id: 7-3\ndata: {\"a\":1}\n\n"
        );
        let long = format!("[{}1]", "1,".repeat(INLINE_BODY));
        let m = message(None, &long, PayloadKind::Json);
        for f in WireFormat::ALL {
            assert!(std::ptr::eq(m.parts(f)[1], m.data().as_bytes()), "{f:?}");
        }

        let pretty = "{\r\n  \"a\": [1,\n 2]\n}";
        let m = message(None, pretty, PayloadKind::Json);
        let mut ws = Vec::new();
        m.write(WireFormat::Ws, &mut ws);
        assert_eq!(
            ws[2..],
            *format!(r#"{{"id":"7-3","event":"message","data":{pretty}}}"#).as_bytes()
        );
        assert_eq!(
            form(&m, WireFormat::Ndjson { chunked: false }),
            "{\"id\":\"7-3\",\"event\":\"message\",\"data\":{    \"a\": [1,  2] }}\n"
        );
        assert_eq!(
            form(&m, WireFormat::MultiSseTail { chunked: false }),
            "data: {\"topic\":\"news\",\"id\":\"7-3\",\"event\":\"message\",\"data\":{    \"a\": [1,  2] }}\n\n"
        );
        // On SSE a browser reads back the JSON text, line breaks as LF.
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        parser.feed(
            form(&m, WireFormat::Sse { chunked: false }).as_bytes(),
            &mut events,
        );
        assert_eq!(events[0].data, "{\n  \"a\": [1,\n 2]\n}");
    }

    /// What a browser reads from the SSE form is what
    /// `wire::sse::encode_event` (the reference encoder) says, for every
    /// kind of line ending and empty line.
    #[test]
    fn sse_form_reads_back_as_the_reference_encoding() {
        for data in [
            "",
            "a",
            "\n",
            "\r",
            "\r\n",
            "a\n\nb",
            "a\r\rb\r\n",
            " lead\n trail ",
            "\n\r\n\r",
        ] {
            let m = message(Some("ev"), data, PayloadKind::Text);
            let ours = form(&m, WireFormat::Sse { chunked: false });
            let mut reference = Vec::new();
            encode_event(&mut reference, Some("7-3"), Some("ev"), data);
            let read = |bytes: &[u8]| {
                let mut parser = EventStreamParser::new();
                let mut events: Vec<SseEvent> = Vec::new();
                parser.feed(bytes, &mut events);
                events
            };
            assert_eq!(read(ours.as_bytes()), read(&reference), "{data:?}");
            assert_eq!(m.shape.sse_len, m.body(Family::Sse).len(), "{data:?}");
        }
    }

    #[test]
    fn escaped_lengths_match_the_json_writer() {
        for data in [
            "",
            "plain",
            "\"\\",
            "\u{0}\u{1f}\t\u{8}\u{c}",
            "\u{2028}x\u{2029}",
            "é\u{2027}\u{202a}€",
            "\u{e2}",
        ] {
            let mut reference = Vec::new();
            json::write_str(&mut reference, data);
            let shape = Shape::of(data.as_bytes(), PayloadKind::Text);
            assert_eq!(shape.json_len, reference.len() - 2, "{data:?}");
            assert_eq!(shape.escapes, reference.len() - 2 != data.len(), "{data:?}");
        }
    }

    #[test]
    fn large_message_gets_extended_lengths() {
        let data = "x".repeat(70_000);
        let m = message(None, &data, PayloadKind::Text);
        let frame = m.parts(WireFormat::Ws);
        // 127: a 64-bit length follows.
        assert_eq!(frame[0][1], 127);
        let len = u64::from_be_bytes(frame[0][2..10].try_into().unwrap());
        assert_eq!(len as usize, m.wire_len(WireFormat::Json));
        let sse = m.wire_len(WireFormat::Sse { chunked: false });
        let size = format!("{sse:x}\r\n");
        assert!(m.parts(WireFormat::Sse { chunked: true })[0].starts_with(size.as_bytes()));
        assert!(m.parts(WireFormat::Sse { chunked: true })[2].ends_with(b"\n\n\r\n"));
    }

    /// The footprint charged at publish covers everything the message
    /// holds after every form has been built, and is not much more than
    /// the payload for a large plain message.
    #[test]
    fn footprint_bounds_what_is_built() {
        let long_event = "e".repeat(64);
        for data in ["x", "a\nb\"c", &"\n".repeat(1000), &"\u{1}".repeat(1000)] {
            for event in [None, Some(long_event.as_str())] {
                let m = message(event, data, PayloadKind::Text);
                let charged = m.footprint();
                let mut held = std::mem::size_of::<Message>() + 16 + data.len();
                for f in WireFormat::ALL {
                    m.parts(f);
                }
                held += m.sse_body.get().map_or(0, |b| b.len());
                held += m.json_body.get().map_or(0, |b| b.len());
                for (head, family) in m.heads.iter().zip(ALL_FAMILIES) {
                    let head = head.get().unwrap();
                    let inlined = if head.inline { m.body_len(family) } else { 0 };
                    assert!(
                        head.bytes.len() - inlined
                            <= head_bound(&m.topic, &m.id_text, m.event_name())
                    );
                    held += head.bytes.len();
                }
                assert!(held <= charged, "{data:?}: holds {held}, charged {charged}");
            }
        }
        let m = message(None, &"x".repeat(60_000), PayloadKind::Text);
        assert!(m.footprint() < 61_500);
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

        // On a multi-topic connection the gap names its topic.
        let mut out = Vec::new();
        gap.write_json(&mut out, Some(&topic("news")));
        assert_eq!(
            text(&out),
            r#"{"gap":true,"topic":"news","requested":"3-9","oldest":""}"#
        );
        let mut out = Vec::new();
        gap.write_sse(&mut out, Some(&topic("news")));
        assert_eq!(
            text(&out),
            "event: gap\ndata: {\"topic\":\"news\",\"requested\":\"3-9\",\"oldest\":\"\"}\n\n"
        );
    }

    #[test]
    fn poll_json() {
        let t = Instant::now();
        let name = topic("t");
        let e = EventName::parse("e").unwrap();
        let replay = Replay {
            messages: vec![
                Arc::new(Message::new(
                    &name,
                    id(2, 1),
                    None,
                    "a",
                    PayloadKind::Text,
                    t,
                )),
                Arc::new(Message::new(
                    &name,
                    id(2, 2),
                    Some(&e),
                    "\"b\"",
                    PayloadKind::Text,
                    t,
                )),
                Arc::new(Message::new(
                    &name,
                    id(2, 3),
                    None,
                    "[1]",
                    PayloadKind::Json,
                    t,
                )),
            ],
            gap: None,
            last_id: id(2, 3),
        };
        let mut out = Vec::new();
        replay.write_poll_json(&mut out, false);
        assert_eq!(
            text(&out),
            concat!(
                r#"{"messages":[{"id":"2-1","event":"message","data":"a"},"#,
                r#"{"id":"2-2","event":"e","data":"\"b\""},"#,
                r#"{"id":"2-3","event":"message","data":[1]}],"#,
                r#""last_id":"2-3","timeout":false,"gap":false}"#
            )
        );
        let mut out = Vec::new();
        replay.write_messages(&mut out, true);
        assert!(text(&out)
            .starts_with(r#"{"topic":"t","id":"2-1","event":"message","data":"a"},{"topic":"t""#));

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

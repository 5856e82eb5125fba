//! Server-Sent Events: the `text/event-stream` format, both ways.
//!
//! Before working on this file, read the WHATWG HTML Living Standard,
//! §9.2.5 "Parsing an event stream" (the byte-level format: UTF-8, the BOM,
//! the three line endings) and §9.2.6 "Interpreting an event stream" (what
//! each line means, and the dispatch steps). They are two pages long, and
//! every rule below is enforced next to a comment quoting them.
//!
//! The server only *writes* this format: [`encode_event`],
//! [`encode_comment`] and [`encode_retry`]. [`EventStreamParser`] is the
//! browser's side, the algorithm an `EventSource` runs; tests, examples
//! and load generators use it to read our streams exactly as a browser
//! would, so "the browser sees the text that was published" is a property
//! we can check by machine (see `fuzz/props/sse_roundtrip.rs`).
//!
//! ```text
//!   id: 1796160691510066-42          <- the cursor the browser sends back as Last-Event-ID
//!   event: price               <- absent for plain messages: the type is then "message"
//!   data: first line           <- one data line per line of the text
//!   data: second line
//!                              <- an empty line dispatches the event
//! ```

/// Appends one event: `id: <id>` (when `Some`), `event: <name>` (when
/// `Some`), one `data: <line>` per line of `data`, then the empty line
/// that dispatches it.
///
/// `data` is split on CRLF, CR and LF (§9.2.5: those are the three ways a
/// line can end), so a CR inside the text can never end a line the parser
/// did not expect. The browser joins the data lines with LF (§9.2.6:
/// "append the field value to the data buffer, then append a single U+000A
/// LINE FEED"), so it sees the text with every line ending normalized to
/// LF — the only change, and one the format cannot avoid.
///
/// Empty data is written as a single `data:` line. It *is* dispatched, with
/// data `""`: the dispatch rule "if the data buffer is an empty string,
/// return" applies to a buffer no data line touched, while one `data:`
/// line leaves the buffer holding `"\n"`, whose final LF is then removed.
/// Likewise a text ending in a line break gets a final empty `data:` line,
/// so that trailing LF survives (§9.2.6 removes only one LF).
///
/// `id` and `event` are single-line by construction (the hub formats ids
/// and validates event names); as a defence, any CR or LF in them is
/// dropped rather than written, so no argument can inject a field or end
/// the event early. An `id` containing U+0000 is written as given and, per
/// §9.2.6, ignored by the browser.
pub fn encode_event(out: &mut Vec<u8>, id: Option<&str>, event: Option<&str>, data: &str) {
    out.reserve(data.len() + 32);
    if let Some(id) = id {
        write_field(out, b"id", id);
    }
    if let Some(event) = event {
        write_field(out, b"event", event);
    }
    let mut rest = data.as_bytes();
    loop {
        match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(end) => {
                write_data_line(out, &rest[..end]);
                // §9.2.5: CRLF is one line ending, not two.
                let ending = if rest[end..].starts_with(b"\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + ending..];
            }
            None => {
                write_data_line(out, rest);
                break;
            }
        }
    }
    out.push(b'\n');
}

/// `data: <line>\n`, or `data:\n` for an empty line. The space after the
/// colon is part of the format: §9.2.6 removes exactly one leading space
/// from a value, so a line that itself starts with a space keeps it.
fn write_data_line(out: &mut Vec<u8>, line: &[u8]) {
    if line.is_empty() {
        out.extend_from_slice(b"data:\n");
    } else {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

/// `<name>: <value>\n`, with any CR or LF of `value` dropped (see
/// [`encode_event`]).
fn write_field(out: &mut Vec<u8>, name: &[u8], value: &str) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    push_without_line_breaks(out, value);
    out.push(b'\n');
}

fn push_without_line_breaks(out: &mut Vec<u8>, text: &str) {
    for piece in text.as_bytes().split(|&b| b == b'\r' || b == b'\n') {
        out.extend_from_slice(piece);
    }
}

/// Appends a comment, `: <text>` and an empty line. Browsers ignore it
/// (§9.2.6: "if the line starts with a U+003A COLON character, ignore the
/// line"); it keeps proxies and NAT tables from closing an idle stream.
/// The empty line dispatches nothing: no data line came before it. Any CR
/// or LF in `text` is dropped, so a comment can never become a field.
pub fn encode_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b": ");
    push_without_line_breaks(out, text);
    out.extend_from_slice(b"\n\n");
}

/// Appends `retry: <ms>` and an empty line: the browser waits `ms`
/// milliseconds before reconnecting a dropped stream (§9.2.6 "retry").
pub fn encode_retry(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(b"retry: ");
    out.extend_from_slice(ms.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Whether a `Content-Type` value announces an event stream, as
/// `EventSource` decides it (§9.2.2: a response whose MIME type's essence
/// is not `text/event-stream` fails the connection).
/// Parameters are ignored: the stream is always UTF-8, whatever `charset`
/// says (WPT `format-utf-8`).
pub fn is_event_stream(content_type: &[u8]) -> bool {
    let essence = match content_type.iter().position(|&b| b == b';') {
        Some(semicolon) => &content_type[..semicolon],
        None => content_type,
    };
    // HTTP whitespace around the essence is not part of it.
    let essence = essence.trim_ascii();
    // Type and subtype are ASCII case-insensitive (RFC 9110 §8.3.1).
    essence.eq_ignore_ascii_case(b"text/event-stream")
}

/// One dispatched event, as a `MessageEvent` would carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `"message"` when the event had none (or an
    /// empty one).
    pub event_type: String,
    /// The data lines joined with LF.
    pub data: String,
    /// The event source's last event ID string at dispatch time: the last
    /// `id:` seen on this stream, even in an earlier event.
    pub last_event_id: String,
}

/// Default bound on one event's size, in bytes (see
/// [`EventStreamParser::with_max_event_bytes`]).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// UTF-8 encoding of U+FEFF, the byte order mark.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// The client side of an event stream: the algorithm of §9.2.5 and §9.2.6,
/// fed bytes as they arrive, in reads of any size.
///
/// Memory is bounded: a line being collected and the data buffer of the
/// event being built may each hold at most `max_event_bytes` (comments are
/// skipped without being stored, whatever their length). **An event that
/// would exceed the bound is dropped whole**, never delivered truncated: the
/// line that crossed it is skipped to its end, the rest of the event's data
/// is ignored, and at its empty line nothing is dispatched; the count is in
/// [`oversized_events`](Self::oversized_events). Its `id:` and `retry:`
/// lines that fitted still take effect, as they would in a browser that had
/// the memory.
#[derive(Debug)]
pub struct EventStreamParser {
    max_event_bytes: usize,
    /// How many bytes of a possible BOM have been matched at the start of
    /// the stream; `None` once the start of the stream is behind us.
    bom_matched: Option<usize>,
    /// The last read ended with a CR: an LF starting the next read belongs
    /// to the same CRLF line ending.
    after_cr: bool,
    /// What is done with the bytes of the current line.
    line_mode: LineMode,
    /// The current line's bytes, while `line_mode` is `Collect`.
    line: Vec<u8>,
    /// §9.2.5: "a data buffer, an event type buffer, and a last event ID
    /// buffer must be associated with it."
    data: String,
    event_type: String,
    id_buffer: String,
    /// The event source's "last event ID string", set at dispatch.
    last_event_id: String,
    /// The reconnection time last set by a `retry:` field.
    retry: Option<u64>,
    /// The event being built went over `max_event_bytes`.
    oversized: bool,
    oversized_events: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineMode {
    /// Store the bytes: the line is a field.
    Collect,
    /// The line is a comment: nothing in it matters, so store nothing.
    Comment,
    /// The line grew past the bound: drop the rest of it.
    Skip,
}

impl Default for EventStreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStreamParser {
    /// A parser at the start of a stream, bounded by
    /// [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser whose lines and data buffer hold at most `max` bytes each
    /// (see the type's documentation for what happens past it).
    pub fn with_max_event_bytes(max: usize) -> Self {
        EventStreamParser {
            max_event_bytes: max,
            bom_matched: Some(0),
            after_cr: false,
            line_mode: LineMode::Collect,
            line: Vec::new(),
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            oversized: false,
            oversized_events: 0,
        }
    }

    /// Parses the next bytes of the stream, pushing each dispatched event
    /// onto `out`. The bytes may split a line, a CRLF pair or a UTF-8
    /// sequence anywhere: the result is the same as for one big read.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        // §9.2.5: "The UTF-8 decode algorithm strips one leading UTF-8 Byte
        // Order Mark (BOM), if any." One, at the start of the stream only: a
        // second BOM is content (WPT `format-bom-2`). It may arrive split
        // over reads, so the bytes matched so far are remembered.
        if let Some(matched) = self.bom_matched {
            let mut n = matched;
            let mut i = 0;
            while n < BOM.len() && i < bytes.len() && bytes[i] == BOM[n] {
                n += 1;
                i += 1;
            }
            if n == BOM.len() {
                self.bom_matched = None;
                bytes = &bytes[i..];
            } else if i == bytes.len() {
                // Every byte so far matched: a BOM, or not, is still to come.
                self.bom_matched = Some(n);
                return;
            } else {
                // Not a BOM: the bytes that looked like one are content.
                self.bom_matched = None;
                self.feed_lines(&BOM[..n], out);
                bytes = &bytes[i..];
            }
        }
        self.feed_lines(bytes, out);
    }

    /// Splits bytes into lines. §9.2.5: a line ends with "a CRLF pair, a
    /// single LF not preceded by a CR, and a single CR not followed by an
    /// LF". So a line ends at the first CR or LF, and an LF right after a
    /// CR — even one that comes in the next read — ends nothing.
    fn feed_lines(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) {
        while let Some((&first, rest)) = bytes.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    bytes = rest;
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\r' || b == b'\n') {
                Some(end) => {
                    let whole_line_here = self.line.is_empty()
                        && self.line_mode == LineMode::Collect
                        && end <= self.max_event_bytes;
                    if whole_line_here {
                        // The common case: the line is all in this read, so
                        // it is interpreted where it lies, never copied.
                        self.interpret_line(&bytes[..end], out);
                    } else {
                        self.take_line_bytes(&bytes[..end]);
                        self.end_line(out);
                    }
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                }
                None => {
                    self.take_line_bytes(bytes);
                    return;
                }
            }
        }
    }

    /// Adds bytes to the current (unfinished) line, within the bound.
    fn take_line_bytes(&mut self, part: &[u8]) {
        if part.is_empty() {
            return;
        }
        if self.line_mode == LineMode::Collect && self.line.is_empty() && part[0] == b':' {
            // §9.2.6: "If the line starts with a U+003A COLON character (:)
            // — ignore the line." Known from its first byte, so a comment
            // of any length costs no memory.
            self.line_mode = LineMode::Comment;
        }
        match self.line_mode {
            LineMode::Collect => {
                if self.line.len() + part.len() > self.max_event_bytes {
                    self.line = Vec::new();
                    self.line_mode = LineMode::Skip;
                    self.mark_oversized();
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            LineMode::Comment | LineMode::Skip => {}
        }
    }

    /// The current line is complete: interpret it, then start the next.
    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let mode = std::mem::replace(&mut self.line_mode, LineMode::Collect);
        if mode == LineMode::Collect {
            let line = std::mem::take(&mut self.line);
            self.interpret_line(&line, out);
            // Keep the allocation for the next line.
            self.line = line;
            self.line.clear();
        }
    }

    /// §9.2.6, "Lines must be processed, in the order they are received, as
    /// follows". The line is raw bytes: the field name is compared as bytes
    /// (the four names are ASCII, and an invalid UTF-8 sequence decodes to
    /// U+FFFD, which no name contains), and only values are decoded.
    fn interpret_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        // "If the line is empty (a blank line) — dispatch the event."
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            // "If the line starts with a U+003A COLON character — ignore the
            // line." (Comments usually never get here; see take_line_bytes.)
            Some(0) => return,
            // "If the line contains a U+003A COLON character — collect the
            // characters on the line before the first colon, and let field be
            // that string. Collect the characters on the line after the first
            // colon, and let value be that string. If value starts with a
            // U+0020 SPACE character, remove it from value."
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            // "Otherwise, the string is not empty but does not contain a
            // colon — process the field using the whole line as the field
            // name, and the empty string as the field value."
            None => (line, &b""[..]),
        };
        // "Field names must be compared literally, with no case folding."
        match field {
            // "Set the event type buffer to field value."
            b"event" => self.event_type = decode(value),
            // "Append the field value to the data buffer, then append a
            // single U+000A LINE FEED (LF) character to the data buffer."
            b"data" => {
                if self.oversized {
                    return;
                }
                let value = String::from_utf8_lossy(value);
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    self.mark_oversized();
                    return;
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            // "If the field value does not contain U+0000 NULL, then set the
            // last event ID buffer to the field value. Otherwise, ignore the
            // field."
            b"id" if !value.contains(&0) => self.id_buffer = decode(value),
            // "If the field value consists of only ASCII digits, then
            // interpret the field value as an integer in base ten, and set
            // the event stream's reconnection time to that integer.
            // Otherwise, ignore the field." An empty value sets nothing (WPT
            // `format-field-retry-empty`), and neither does one too large
            // for a u64 of milliseconds — 585 million years.
            b"retry" => {
                if let Some(ms) = parse_decimal(value) {
                    self.retry = Some(ms);
                }
            }
            // "Otherwise — the field is ignored." (And an `id` with a NUL.)
            _ => {}
        }
    }

    /// §9.2.6, the steps "to dispatch the event" for web browsers.
    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        // 1. "Set the last event ID string of the event source to the value
        //    of the last event ID buffer. The buffer does not get reset."
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let event_type = std::mem::take(&mut self.event_type);
        let mut data = std::mem::take(&mut self.data);
        if std::mem::replace(&mut self.oversized, false) {
            // Our bound, not the spec's: the event is dropped whole.
            self.oversized_events += 1;
            return;
        }
        // 2. "If the data buffer is an empty string, set the data buffer and
        //    the event type buffer to the empty string and return." (Both
        //    were emptied above.)
        if data.is_empty() {
            return;
        }
        // 3. "If the data buffer's last character is a U+000A LINE FEED (LF)
        //    character, then remove the last character from the data buffer."
        if data.ends_with('\n') {
            data.pop();
        }
        // 5, 6. The type is "message", unless "the event type buffer has a
        //    value other than the empty string" (WPT
        //    `format-field-event-empty`).
        let event_type = if event_type.is_empty() {
            String::from("message")
        } else {
            event_type
        };
        out.push(SseEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
        });
        // 7. "Set the data buffer and the event type buffer to the empty
        //    string." (Done by the `take`s above.)
    }

    fn mark_oversized(&mut self) {
        self.oversized = true;
        self.data = String::new();
    }

    /// The stream ended (the connection closed).
    ///
    /// §9.2.6: "Once the end of the file is reached, any pending data must be
    /// discarded. (If the file ends in the middle of an event, before the
    /// final empty line, the incomplete event is not dispatched.)" So the
    /// unfinished line and event are dropped — an `id:` they carried too
    /// (WPT `format-data-before-final-empty-line`).
    ///
    /// The parser is then ready for the next connection's stream, as an
    /// `EventSource` reconnects: the last event ID and the reconnection time
    /// are kept, and a BOM is stripped again at the new stream's start.
    pub fn finish(&mut self) {
        self.bom_matched = Some(0);
        self.after_cr = false;
        self.line_mode = LineMode::Collect;
        self.line.clear();
        self.data.clear();
        self.event_type.clear();
        self.oversized = false;
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// The reconnection time set by the last valid `retry:` field, in
    /// milliseconds; `None` if the stream never set one.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The event source's last event ID string: what a reconnecting
    /// browser sends as `Last-Event-ID` (empty: it sends none).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// How many events were dropped for exceeding the size bound.
    pub fn oversized_events(&self) -> u64 {
        self.oversized_events
    }
}

/// §9.2.5: "Streams must be decoded using the UTF-8 decode algorithm",
/// which replaces each invalid sequence with U+FFFD. Lines split only at CR
/// and LF, which never occur inside a multi-byte sequence, so decoding each
/// value on its own gives the same text as decoding the whole stream.
fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A non-empty run of ASCII digits as a base-ten u64; `None` for anything
/// else, including a value that overflows.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(id: Option<&str>, event: Option<&str>, data: &str) -> String {
        let mut out = Vec::new();
        encode_event(&mut out, id, event, data);
        String::from_utf8(out).unwrap()
    }

    /// Parses a whole stream, then the same stream one byte at a time, and
    /// demands the same events and state both ways.
    fn parse(stream: &[u8]) -> (Vec<SseEvent>, EventStreamParser) {
        let mut whole = EventStreamParser::new();
        let mut events = Vec::new();
        whole.feed(stream, &mut events);
        whole.finish();

        let mut bytewise = EventStreamParser::new();
        let mut events_bytewise = Vec::new();
        for b in stream {
            bytewise.feed(std::slice::from_ref(b), &mut events_bytewise);
        }
        bytewise.finish();
        assert_eq!(events, events_bytewise, "whole vs byte by byte");
        assert_eq!(whole.last_event_id(), bytewise.last_event_id());
        assert_eq!(whole.retry(), bytewise.retry());
        (events, whole)
    }

    fn datas(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    fn msg(event_type: &str, data: &str, last_event_id: &str) -> SseEvent {
        SseEvent {
            event_type: event_type.into(),
            data: data.into(),
            last_event_id: last_event_id.into(),
        }
    }

    // ---- Encoder ---------------------------------------------------------

    #[test]
    fn encodes_id_event_and_data() {
        assert_eq!(
            encode(Some("7-1"), Some("price"), "42"),
            "id: 7-1\nevent: price\ndata: 42\n\n"
        );
        assert_eq!(encode(None, None, "hi"), "data: hi\n\n");
    }

    #[test]
    fn encodes_each_line_ending_as_a_new_data_line() {
        assert_eq!(encode(None, None, "a\nb"), "data: a\ndata: b\n\n");
        assert_eq!(encode(None, None, "a\rb"), "data: a\ndata: b\n\n");
        // CRLF is one line ending; CR CR is two.
        assert_eq!(encode(None, None, "a\r\nb"), "data: a\ndata: b\n\n");
        assert_eq!(encode(None, None, "a\r\rb"), "data: a\ndata:\ndata: b\n\n");
        assert_eq!(encode(None, None, "a\n\r"), "data: a\ndata:\ndata:\n\n");
    }

    #[test]
    fn encodes_edge_texts() {
        assert_eq!(encode(None, None, ""), "data:\n\n");
        assert_eq!(encode(None, None, "a\n"), "data: a\ndata:\n\n");
        assert_eq!(encode(None, None, "\n"), "data:\ndata:\n\n");
        // A leading space survives: the parser strips only the one we add.
        assert_eq!(encode(None, None, " x"), "data:  x\n\n");
        assert_eq!(
            encode(None, None, ": not a comment"),
            "data: : not a comment\n\n"
        );
    }

    #[test]
    fn id_and_event_cannot_inject_lines() {
        assert_eq!(
            encode(Some("1\r\ndata: evil"), Some("a\nb"), "x"),
            "id: 1data: evil\nevent: ab\ndata: x\n\n"
        );
        let mut out = Vec::new();
        encode_comment(&mut out, "a\r\ndata: b");
        assert_eq!(out, b": adata: b\n\n");
    }

    #[test]
    fn encodes_comment_and_retry() {
        let mut out = Vec::new();
        encode_comment(&mut out, "heartbeat");
        encode_retry(&mut out, 3000);
        assert_eq!(out, b": heartbeat\n\nretry: 3000\n\n");
        let (events, parser) = parse(&out);
        assert!(events.is_empty());
        assert_eq!(parser.retry(), Some(3000));
    }

    #[test]
    fn encoded_texts_parse_back_with_lf_line_endings() {
        let texts = [
            "",
            "x",
            "a\nb",
            "a\rb",
            "a\r\nb",
            "trailing\n",
            "trailing\r\n",
            "\n",
            "\r\n\r\n",
            "\n\n\n",
            " leading space",
            "  two",
            "tab\there",
            "nul\0inside",
            "\u{feff}bom inside",
            "é 世界 🎉 \u{2028}",
            "id: fake\nevent: fake\n\ndata: fake",
            ":colon first",
        ];
        for text in texts {
            for (id, event) in [(None, None), (Some("3-9"), Some("tick"))] {
                let mut wire = Vec::new();
                encode_retry(&mut wire, 1000);
                encode_comment(&mut wire, "hello");
                encode_event(&mut wire, id, event, text);
                let (events, _) = parse(&wire);
                let expected = text.replace("\r\n", "\n").replace('\r', "\n");
                assert_eq!(
                    events,
                    [msg(event.unwrap_or("message"), &expected, id.unwrap_or(""))],
                    "text {text:?}"
                );
            }
        }
    }

    // ---- Parser: the web-platform-tests `eventsource/format-*` cases -------
    //
    // Their server script answers `message + "\n\n" + "\n"`, or `message +
    // "\n"` with `newline=none`; the streams below include that suffix.

    #[test]
    fn wpt_format_bom() {
        // Only the first BOM is stripped; a later one is part of a field name.
        let (events, _) = parse(b"\xEF\xBB\xBFdata:1\n\n\xEF\xBB\xBFdata:2\n\ndata:3\n\n\n");
        assert_eq!(datas(&events), ["1", "3"]);
    }

    #[test]
    fn wpt_format_bom_2() {
        // Two BOMs: the second makes the first field name "\u{feff}data".
        let (events, _) = parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata:1\n\ndata:2\n\ndata:3\n\n\n");
        assert_eq!(datas(&events), ["2", "3"]);
    }

    #[test]
    fn bom_prefix_that_is_not_a_bom_is_content() {
        // EF BB then 'x': not a BOM; the bytes are content (U+FFFD each),
        // and here they make an unknown field name, so the line is ignored.
        let (events, _) = parse(b"\xEF\xBBx\ndata:1\n\n");
        assert_eq!(datas(&events), ["1"]);
        let (events, _) = parse(b"\xEF\n\ndata:1\n\n");
        assert_eq!(datas(&events), ["1"]);
    }

    #[test]
    fn wpt_format_comments() {
        let long = "x".repeat(2 * 1024);
        let stream =
            format!("data:1\r:\0\n:\r\ndata:2\n:{long}\rdata:3\n:data:fail\r:{long}\ndata:4\n\n");
        let (events, _) = parse(stream.as_bytes());
        assert_eq!(datas(&events), ["1\n2\n3\n4"]);
    }

    #[test]
    fn wpt_format_data_before_final_empty_line() {
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        parser.feed(
            b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n",
            &mut events,
        );
        parser.finish();
        // The unfinished event is discarded, and its id with it.
        assert_eq!(events, [msg("message", "test1", "")]);
        assert_eq!(parser.last_event_id(), "");
        assert_eq!(parser.retry(), Some(1000));
        // The reconnected stream starts from the last dispatched id.
        parser.feed(b"data:test1\n\n", &mut events);
        assert_eq!(events[1], msg("message", "test1", ""));
    }

    #[test]
    fn wpt_format_field_data() {
        let (events, _) = parse(b"data:\n\ndata\ndata\n\ndata:test\n\n\n");
        assert_eq!(datas(&events), ["", "\n", "test"]);
    }

    #[test]
    fn wpt_format_field_event() {
        let (events, _) = parse(b"event:test\ndata:x\n\ndata:x\n\n\n");
        assert_eq!(events, [msg("test", "x", ""), msg("message", "x", "")]);
    }

    #[test]
    fn wpt_format_field_event_empty() {
        let (events, _) = parse(b"event: \ndata:data\n\n\n");
        assert_eq!(events, [msg("message", "data", "")]);
    }

    #[test]
    fn wpt_format_field_id() {
        let (events, parser) = parse("id: …\nretry: 200\ndata: hello\n\n\n".as_bytes());
        assert_eq!(events, [msg("message", "hello", "…")]);
        assert_eq!(parser.last_event_id(), "…");
        assert_eq!(parser.retry(), Some(200));
    }

    #[test]
    fn wpt_format_field_id_null() {
        // An id containing U+0000 anywhere is ignored entirely.
        for id in ["\0\0", "x\0", "\0x", "x\0x", " \0"] {
            let stream = format!("id: {id}\nretry: 200\ndata: hello\n\n");
            let (events, parser) = parse(stream.as_bytes());
            assert_eq!(events, [msg("message", "hello", "")], "id {id:?}");
            assert_eq!(parser.last_event_id(), "");
        }
    }

    #[test]
    fn wpt_format_field_id_persists_and_resets() {
        // The last event ID persists across events without an id...
        let (events, _) = parse(b"id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n");
        let ids: Vec<_> = events.iter().map(|e| e.last_event_id.as_str()).collect();
        assert_eq!(ids, ["1", "1", "2", "2"]);
        // ...and an empty `id` resets it, with or without the colon.
        for reset in ["id: \n", "id\n"] {
            let stream = format!("id: 1\ndata: 1\n\n{reset}data:2\n\ndata:3\n\n");
            let (events, parser) = parse(stream.as_bytes());
            let ids: Vec<_> = events.iter().map(|e| e.last_event_id.as_str()).collect();
            assert_eq!(ids, ["1", "", ""], "reset {reset:?}");
            assert_eq!(parser.last_event_id(), "");
        }
    }

    #[test]
    fn id_alone_is_committed_at_the_empty_line() {
        // Dispatch step 1 runs even when there is no data to dispatch.
        let (events, parser) = parse(b"id: 5\n\n");
        assert!(events.is_empty());
        assert_eq!(parser.last_event_id(), "5");
    }

    #[test]
    fn wpt_format_field_parsing() {
        let stream = "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n";
        let (events, _) = parse(stream.as_bytes());
        assert_eq!(datas(&events), ["\0\n 2\n1\n3\n\n4"]);
    }

    #[test]
    fn wpt_format_field_retry() {
        // Base ten, leading zero included ("03000" is not octal).
        let (events, parser) = parse(b"retry:03000\ndata:x\n\n\n");
        assert_eq!(datas(&events), ["x"]);
        assert_eq!(parser.retry(), Some(3000));
    }

    #[test]
    fn wpt_format_field_retry_bogus() {
        let (_, parser) = parse(b"retry:3000\nretry:1000x\ndata:x\n\n\n");
        assert_eq!(parser.retry(), Some(3000));
        for bogus in [
            "retry: 1 2",
            "retry:-5",
            "retry:+5",
            "retry:1.5",
            "retry:99999999999999999999",
        ] {
            let stream = format!("retry:3000\n{bogus}\n\n");
            assert_eq!(parse(stream.as_bytes()).1.retry(), Some(3000), "{bogus:?}");
        }
        // Exactly one leading space is removed before the digits are read.
        assert_eq!(parse(b"retry: 7\n").1.retry(), Some(7));
        assert_eq!(parse(b"retry:  7\n").1.retry(), None);
        // Field names are case-sensitive.
        assert_eq!(parse(b"Retry: 7\n").1.retry(), None);
    }

    #[test]
    fn wpt_format_field_retry_empty() {
        let (events, parser) = parse(b"retry\ndata:test\n\n\n");
        assert_eq!(datas(&events), ["test"]);
        assert_eq!(parser.retry(), None);
    }

    #[test]
    fn wpt_format_field_unknown() {
        let stream = b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n\n";
        let (events, _) = parse(stream);
        assert_eq!(datas(&events), ["test\n\ntest"]);
    }

    #[test]
    fn wpt_format_leading_space() {
        let (events, _) = parse(b"data:\ttest\rdata: \ndata:test\n\n\n");
        assert_eq!(datas(&events), ["\ttest\n\ntest"]);
    }

    #[test]
    fn wpt_format_newlines() {
        let (events, _) = parse(b"data:test\r\ndata\ndata:test\r\n\r\n");
        assert_eq!(datas(&events), ["test\n\ntest"]);
    }

    #[test]
    fn wpt_format_null_character() {
        let (events, _) = parse(b"data:\0\n\n\n\n");
        assert_eq!(datas(&events), ["\0"]);
    }

    #[test]
    fn wpt_format_utf_8() {
        let (events, _) = parse(b"data:ok\xE2\x80\xA6\n\n\n");
        assert_eq!(datas(&events), ["ok…"]);
        // Invalid UTF-8 decodes to U+FFFD, split across reads or not.
        let (events, _) = parse(b"data:\xE2\x80\n\ndata:\xFF\n\n");
        assert_eq!(datas(&events), ["\u{fffd}", "\u{fffd}"]);
    }

    #[test]
    fn wpt_format_mime() {
        // format-mime-trailing-semicolon, format-utf-8 (charset ignored),
        // format-mime-bogus, format-mime-valid-bogus.
        assert!(is_event_stream(b"text/event-stream"));
        assert!(is_event_stream(b"text/event-stream;"));
        assert!(is_event_stream(b"text/event-stream;charset=windows-1252"));
        assert!(is_event_stream(b"Text/Event-Stream ; charset=utf-8"));
        assert!(!is_event_stream(b"x bogus"));
        assert!(!is_event_stream(b"text/x-bogus"));
        assert!(!is_event_stream(b"text/event-streams"));
        assert!(!is_event_stream(b""));
    }

    #[test]
    fn unfinished_event_at_end_is_discarded() {
        let (events, _) = parse(b"data:1\n\ndata:2\n");
        assert_eq!(datas(&events), ["1"]);
        // An unterminated final line is not a line.
        let (events, _) = parse(b"data:1\n\ndata:2");
        assert_eq!(datas(&events), ["1"]);
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_ending() {
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        parser.feed(b"data:a\r", &mut events);
        parser.feed(b"\ndata:b\r", &mut events);
        parser.feed(b"\n\r", &mut events);
        parser.feed(b"\n", &mut events);
        assert_eq!(datas(&events), ["a\nb"]);
    }

    #[test]
    fn bom_split_across_reads() {
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        for b in b"\xEF\xBB\xBFdata:1\n\n" {
            parser.feed(std::slice::from_ref(b), &mut events);
        }
        assert_eq!(datas(&events), ["1"]);
    }

    #[test]
    fn reconnected_stream_strips_its_own_bom_and_keeps_the_id() {
        let mut parser = EventStreamParser::new();
        let mut events = Vec::new();
        parser.feed(b"id: 4\ndata:a\n\n", &mut events);
        parser.finish();
        parser.feed(b"\xEF\xBB\xBFdata:b\n\n", &mut events);
        assert_eq!(events, [msg("message", "a", "4"), msg("message", "b", "4")]);
    }

    #[test]
    fn oversized_event_is_dropped_whole() {
        let mut parser = EventStreamParser::with_max_event_bytes(16);
        let mut events = Vec::new();
        // One line over the bound.
        parser.feed(
            b"data:0123456789abcdefXYZ\ndata:tail\n\ndata:ok\n\n",
            &mut events,
        );
        // Many lines, together over the bound.
        parser.feed(
            b"data:0123456\ndata:0123456\ndata:0123456\n\ndata:ok2\n\n",
            &mut events,
        );
        assert_eq!(datas(&events), ["ok", "ok2"]);
        assert_eq!(parser.oversized_events(), 2);
        // A comment of any length costs nothing and breaks nothing.
        let comment = format!(":{}\ndata:fine\n\n", "c".repeat(1000));
        parser.feed(comment.as_bytes(), &mut events);
        assert_eq!(datas(&events), ["ok", "ok2", "fine"]);
        assert_eq!(parser.oversized_events(), 2);
        // An id in an oversized event still counts: it fitted.
        parser.feed(b"id: 9\ndata:0123456789abcdefXYZ\n\n", &mut events);
        assert_eq!(parser.last_event_id(), "9");
    }
}

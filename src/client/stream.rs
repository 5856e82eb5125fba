//! An HTTP-streaming client: `GET /topics/{t}/stream?after=ID`, a
//! long-lived `application/x-ndjson` response read one JSON line at a
//! time.
//!
//! Before working on this file, read the NDJSON convention (one JSON text
//! per line, lines ended by `\n`, a `\r` before it tolerated) and RFC 9112
//! §7.1 (chunked transfer coding): the server sends each line as a chunk
//! on HTTP/1.1 and runs the body to the close on HTTP/1.0, and neither the
//! chunks nor the reads line up with the lines.
//!
//! **The difference from `EventSource`.** An event stream names each
//! event's id in the stream and the browser reconnects by itself, sending
//! the last one as `Last-Event-ID`. An NDJSON stream has no such framing:
//! the id is a field of each JSON line, and the server never reconnects
//! anyone. This client keeps the id of the last message it returned and,
//! when the stream drops, opens it again with `?after=<that id>` itself —
//! so a resumed stream carries exactly the messages it missed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use crate::wire::chunked::ChunkedDecoder;

use super::conn::Conn;
use super::{ClientError, Delivery, Stats};

/// The longest line [`NdjsonReader::new`] is given by default: a 1 MiB
/// message whose every byte the server had to escape as `\u00XX`, plus
/// its id and event name.
pub const DEFAULT_MAX_LINE: usize = 6 * (1 << 20) + 1024;

/// What one line of the stream says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamItem {
    /// A message or a gap notice (`{"gap":true,"requested","oldest"}`).
    Delivery(Delivery),
    /// An empty line: the server's keep-alive while the topic is idle. No
    /// JSON text is empty, so it cannot be mistaken for a message.
    Heartbeat,
}

/// Splits a byte stream into NDJSON lines and reads each: the pure half of
/// [`StreamClient`], fed whatever bytes arrive, however they are cut.
#[derive(Clone, Debug)]
pub struct NdjsonReader {
    /// The start of a line whose `\n` has not arrived yet.
    partial: Vec<u8>,
    /// The longest line accepted (without its line end). A longer one is a
    /// [`ClientError::Protocol`], found as soon as that many bytes are
    /// held without a `\n`, so the buffer never grows past it.
    max_line: usize,
}

impl NdjsonReader {
    pub fn new(max_line: usize) -> NdjsonReader {
        NdjsonReader {
            partial: Vec::new(),
            max_line,
        }
    }

    /// Bytes of an unfinished line held for the next [`feed`](Self::feed).
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Reads the lines `bytes` completes into `out`, in order, and keeps
    /// the unfinished rest. On an error the items of the lines before the
    /// bad one are already in `out`; the stream is then unusable.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamItem>) -> Result<(), ClientError> {
        let mut rest = bytes;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (piece, after) = rest.split_at(nl);
            rest = &after[1..];
            if self.partial.len() + piece.len() > self.max_line {
                return Err(self.too_long());
            }
            let item = if self.partial.is_empty() {
                read_line(piece)?
            } else {
                self.partial.extend_from_slice(piece);
                let line = std::mem::take(&mut self.partial);
                read_line(&line)?
            };
            out.push(item);
        }
        if self.partial.len() + rest.len() > self.max_line {
            return Err(self.too_long());
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The stream ended: a line without its `\n` is incomplete, not a
    /// message (the server ends every line it sends).
    pub fn finish(&mut self) -> Result<(), ClientError> {
        if self.partial.is_empty() {
            Ok(())
        } else {
            let n = self.partial.len();
            self.partial.clear();
            Err(ClientError::Protocol(format!(
                "the stream ended inside a line ({n} bytes)"
            )))
        }
    }

    fn too_long(&self) -> ClientError {
        ClientError::Protocol(format!("a line longer than {} bytes", self.max_line))
    }
}

/// One line, without its `\n`.
fn read_line(line: &[u8]) -> Result<StreamItem, ClientError> {
    // NDJSON: a line may end with `\r\n`; the `\r` is not part of the JSON.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Ok(StreamItem::Heartbeat);
    }
    // RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
    let text = std::str::from_utf8(line)
        .map_err(|e| ClientError::Protocol(format!("a line that is not UTF-8: {e}")))?;
    Delivery::from_json(text).map(StreamItem::Delivery)
}

/// A connected NDJSON stream that resumes itself.
///
/// ```no_run
/// # fn main() -> Result<(), pushwire::client::ClientError> {
/// use pushwire::client::{Delivery, StreamClient};
/// let addr = "127.0.0.1:8080".parse().unwrap();
/// let mut stream = StreamClient::connect(addr, "clock", Some("earliest"))?;
/// while let Some(delivery) = stream.next_delivery()? {
///     match delivery {
///         Delivery::Message(m) => println!("{} {}: {}", m.id, m.event, m.data),
///         Delivery::Gap { requested, oldest } => println!("lost {requested}..{oldest}"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StreamClient {
    addr: SocketAddr,
    topic: String,
    conn: Option<Conn>,
    /// `Some` while the body is chunked (HTTP/1.1), `None` when it runs to
    /// the close (HTTP/1.0).
    chunked: Option<ChunkedDecoder>,
    lines: NdjsonReader,
    ready: VecDeque<StreamItem>,
    /// Body bytes waiting for the line reader (reused).
    body: Vec<u8>,
    /// Where a resumed stream starts: the id of the last message returned,
    /// else the cursor the stream was opened with.
    cursor: Option<String>,
    auto_resume: bool,
    /// A message arrived on the current connection: a drop after it is
    /// worth resuming; one before it is the server refusing to stream.
    delivered_since_open: bool,
    http10: bool,
    heartbeats: u64,
    resumes: u64,
    timeout: Option<Duration>,
    stats: Stats,
}

impl StreamClient {
    /// Opens the stream of `topic` after the cursor `after` (`"earliest"`
    /// for everything kept; `None` starts live, and a drop before the
    /// first message then resumes live too, so pass a cursor when every
    /// message counts).
    pub fn connect(
        addr: SocketAddr,
        topic: &str,
        after: Option<&str>,
    ) -> Result<StreamClient, ClientError> {
        let mut client = StreamClient::connect_lazy(addr, topic, after);
        client.open()?;
        Ok(client)
    }

    /// Like [`connect`](Self::connect), but speaks HTTP/1.0, so the body
    /// is close-delimited instead of chunked.
    pub fn connect_http10(
        addr: SocketAddr,
        topic: &str,
        after: Option<&str>,
    ) -> Result<StreamClient, ClientError> {
        let mut client = StreamClient::connect_lazy(addr, topic, after);
        client.http10 = true;
        client.open()?;
        Ok(client)
    }

    fn connect_lazy(addr: SocketAddr, topic: &str, after: Option<&str>) -> StreamClient {
        StreamClient {
            addr,
            topic: topic.to_string(),
            conn: None,
            chunked: None,
            lines: NdjsonReader::new(DEFAULT_MAX_LINE),
            ready: VecDeque::new(),
            body: Vec::new(),
            cursor: after.map(str::to_string),
            auto_resume: true,
            delivered_since_open: false,
            http10: false,
            heartbeats: 0,
            resumes: 0,
            timeout: None,
            stats: Stats::default(),
        }
    }

    /// Bounds each read (and the connect of a resume). With a timeout set,
    /// [`next_delivery`](Self::next_delivery) returns an `Io` error of kind
    /// `WouldBlock` or `TimedOut` when nothing came in time, and can simply
    /// be called again: no byte is lost.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.timeout = timeout;
        if let Some(conn) = &self.conn {
            conn.stream.set_read_timeout(timeout)?;
        }
        Ok(())
    }

    /// Whether a dropped stream is opened again by itself (the default);
    /// when off, [`next_delivery`](Self::next_delivery) returns `Ok(None)`
    /// at the end of the stream and [`resume`](Self::resume) is the
    /// caller's to call.
    pub fn set_auto_resume(&mut self, on: bool) {
        self.auto_resume = on;
    }

    /// The traffic so far, over every connection this client made.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The cursor a resume sends as `?after=`: the id of the last message
    /// returned, or the cursor the stream was opened with.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Empty lines (heartbeats) received so far.
    pub fn heartbeats(&self) -> u64 {
        self.heartbeats
    }

    /// Times the stream was opened again after a drop.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    /// Opens the stream again after [`cursor`](Self::cursor), dropping the
    /// current connection if there is one.
    pub fn resume(&mut self) -> Result<(), ClientError> {
        self.resumes += 1;
        self.open()
    }

    fn open(&mut self) -> Result<(), ClientError> {
        self.conn = None;
        self.ready.clear();
        self.lines = NdjsonReader::new(self.lines.max_line);
        self.delivered_since_open = false;
        let mut conn = Conn::connect(self.addr, self.timeout, &mut self.stats)?;
        let mut target = format!("/topics/{}/stream", self.topic);
        if let Some(after) = &self.cursor {
            target.push_str("?after=");
            target.push_str(after);
        }
        let version = if self.http10 { "1.0" } else { "1.1" };
        let request = format!(
            "GET {target} HTTP/{version}\r\nHost: {}\r\nAccept: application/x-ndjson\r\n\r\n",
            self.addr
        );
        self.stats.requests += 1;
        conn.send(request.as_bytes(), &mut self.stats)?;
        let head = conn.read_head(&mut self.stats)?;
        if head.status != 200 {
            let body =
                super::http::read_body(&mut conn, head.framing(false)?, 64 * 1024, &mut self.stats)
                    .unwrap_or_default();
            return Err(ClientError::Status {
                status: head.status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let content_type = head.header("Content-Type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-ndjson") {
            return Err(ClientError::Protocol(format!(
                "not an NDJSON stream: Content-Type {content_type:?}"
            )));
        }
        self.chunked = head.stream_decoder()?;
        self.conn = Some(conn);
        Ok(())
    }

    /// The next message or gap, waiting for it. Heartbeats are counted
    /// ([`heartbeats`](Self::heartbeats)) and skipped. When the stream
    /// drops after delivering something, it is resumed (see the module
    /// docs); `Ok(None)` is an end that resuming would not mend — the
    /// stream ended before delivering anything, or auto-resume is off.
    pub fn next_delivery(&mut self) -> Result<Option<Delivery>, ClientError> {
        loop {
            match self.next_item()? {
                Some(StreamItem::Heartbeat) => continue,
                Some(StreamItem::Delivery(d)) => return Ok(Some(d)),
                None if self.auto_resume && self.delivered_since_open => self.resume()?,
                None => return Ok(None),
            }
        }
    }

    /// The next line of the current connection, heartbeats included;
    /// `Ok(None)` once it has ended (no resume).
    pub fn next_item(&mut self) -> Result<Option<StreamItem>, ClientError> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                match &item {
                    StreamItem::Heartbeat => self.heartbeats += 1,
                    StreamItem::Delivery(Delivery::Message(m)) => {
                        self.cursor = Some(m.id.clone());
                        self.delivered_since_open = true;
                    }
                    StreamItem::Delivery(Delivery::Gap { .. }) => {}
                }
                return Ok(Some(item));
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            // First whatever is already buffered, then read more.
            let mut done = if conn.buffered().is_empty() {
                conn.fill(&mut self.stats)? == 0
            } else {
                false
            };
            let mut items = Vec::new();
            let fed = match self.chunked.as_mut() {
                Some(decoder) => {
                    self.body.clear();
                    let progress = decoder
                        .decode(conn.buffered(), &mut self.body, usize::MAX)
                        .map_err(|e| ClientError::Protocol(format!("chunked stream: {e}")))?;
                    conn.consume(progress.consumed);
                    done |= progress.done;
                    self.lines.feed(&self.body, &mut items)
                }
                None => {
                    let r = self.lines.feed(conn.buffered(), &mut items);
                    let n = conn.buffered().len();
                    conn.consume(n);
                    r
                }
            };
            self.ready.extend(items);
            if let Err(e) = fed {
                self.conn = None;
                return Err(e);
            }
            if done {
                self.conn = None;
                // A line cut by the drop is lost with it; the resume asks
                // for it again by the cursor.
                let _ = self.lines.finish();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientMessage;

    fn items(reader: &mut NdjsonReader, bytes: &[u8]) -> Vec<StreamItem> {
        let mut out = Vec::new();
        reader.feed(bytes, &mut out).unwrap();
        out
    }

    fn message(id: &str, event: &str, data: &str) -> StreamItem {
        StreamItem::Delivery(Delivery::Message(ClientMessage {
            id: id.into(),
            event: event.into(),
            data: data.into(),
        }))
    }

    /// The lines the server writes: a gap, a message, a heartbeat.
    const STREAM: &[u8] = b"{\"gap\":true,\"requested\":\"1-1\",\"oldest\":\"2-1\"}\n\
        {\"id\":\"2-1\",\"event\":\"message\",\"data\":\"a\\nb\"}\n\n";

    #[test]
    fn reads_gap_message_and_heartbeat() {
        let mut r = NdjsonReader::new(DEFAULT_MAX_LINE);
        assert_eq!(
            items(&mut r, STREAM),
            vec![
                StreamItem::Delivery(Delivery::Gap {
                    requested: "1-1".into(),
                    oldest: "2-1".into()
                }),
                message("2-1", "message", "a\nb"),
                StreamItem::Heartbeat,
            ]
        );
        assert_eq!(r.pending(), 0);
        r.finish().unwrap();
    }

    #[test]
    fn byte_at_a_time_reads_the_same() {
        let mut whole = NdjsonReader::new(DEFAULT_MAX_LINE);
        let expected = items(&mut whole, STREAM);
        let mut split = NdjsonReader::new(DEFAULT_MAX_LINE);
        let mut got = Vec::new();
        for b in STREAM {
            split.feed(std::slice::from_ref(b), &mut got).unwrap();
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn reads_what_the_server_writes() {
        let mut line = Vec::new();
        crate::wire::json::write_message(&mut line, "7-3", "tick", "say \"hi\"\n\u{1}");
        line.push(b'\n');
        let mut r = NdjsonReader::new(DEFAULT_MAX_LINE);
        assert_eq!(
            items(&mut r, &line),
            vec![message("7-3", "tick", "say \"hi\"\n\u{1}")]
        );
    }

    #[test]
    fn crlf_line_ends_are_tolerated() {
        let mut r = NdjsonReader::new(DEFAULT_MAX_LINE);
        assert_eq!(
            items(
                &mut r,
                b"{\"id\":\"1-1\",\"event\":\"e\",\"data\":\"x\"}\r\n\r\n"
            ),
            vec![message("1-1", "e", "x"), StreamItem::Heartbeat]
        );
    }

    #[test]
    fn an_unfinished_line_waits_and_is_an_error_at_the_end() {
        let mut r = NdjsonReader::new(DEFAULT_MAX_LINE);
        assert_eq!(items(&mut r, b"{\"id\":\"1-1\""), vec![]);
        assert_eq!(r.pending(), 11);
        assert!(matches!(r.finish(), Err(ClientError::Protocol(_))));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_before_its_end_arrives() {
        let mut r = NdjsonReader::new(8);
        let mut out = Vec::new();
        r.feed(b"12345678", &mut out).unwrap();
        assert!(matches!(
            r.feed(b"9", &mut out),
            Err(ClientError::Protocol(_))
        ));
        assert!(r.pending() <= 8);
    }

    #[test]
    fn not_json_and_not_utf8_are_errors_after_the_good_lines() {
        let mut r = NdjsonReader::new(DEFAULT_MAX_LINE);
        let mut out = Vec::new();
        assert!(matches!(
            r.feed(b"\n{nope}\n", &mut out),
            Err(ClientError::Json(_))
        ));
        assert_eq!(out, vec![StreamItem::Heartbeat]);
        let mut r = NdjsonReader::new(DEFAULT_MAX_LINE);
        assert!(matches!(
            r.feed(b"\"\xff\"\n", &mut Vec::new()),
            Err(ClientError::Protocol(_))
        ));
    }
}

//! An event-stream client: `GET /topics/{t}/sse`, read as a browser's
//! `EventSource` reads it.
//!
//! The bytes go through two decoders: the chunked transfer coding (the
//! server streams HTTP/1.1 responses chunked) and then
//! [`EventStreamParser`], the WHATWG algorithm itself, so what this client
//! reports is what a browser would dispatch — event type, data and the
//! last event ID to resume from.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use crate::wire::chunked::ChunkedDecoder;
use crate::wire::sse::{is_event_stream, EventStreamParser, SseEvent};

use super::conn::Conn;
use super::{ClientError, Stats};

/// A connected event stream.
///
/// ```no_run
/// # fn main() -> Result<(), pushwire::client::ClientError> {
/// use pushwire::client::SseClient;
/// let addr = "127.0.0.1:8080".parse().unwrap();
/// let mut sse = SseClient::connect(addr, "clock", None)?;
/// while let Some(event) = sse.next_event()? {
///     println!("{} {}: {}", event.last_event_id, event.event_type, event.data);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SseClient {
    addr: SocketAddr,
    topic: String,
    conn: Option<Conn>,
    /// `Some` while the body is chunked (HTTP/1.1), `None` when it runs to
    /// the close (HTTP/1.0).
    chunked: Option<ChunkedDecoder>,
    parser: EventStreamParser,
    /// Events parsed and not yet returned.
    ready: VecDeque<SseEvent>,
    /// Body bytes waiting for the parser (reused).
    body: Vec<u8>,
    timeout: Option<Duration>,
    stats: Stats,
}

impl SseClient {
    /// Opens the stream of `topic`, resuming after `last_event_id` when
    /// given (sent as the `Last-Event-ID` header, as a reconnecting browser
    /// does; `"earliest"` asks for everything kept).
    pub fn connect(
        addr: SocketAddr,
        topic: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, ClientError> {
        let mut client = SseClient {
            addr,
            topic: topic.to_string(),
            conn: None,
            chunked: None,
            parser: EventStreamParser::new(),
            ready: VecDeque::new(),
            body: Vec::new(),
            timeout: None,
            stats: Stats::default(),
        };
        client.open(last_event_id)?;
        Ok(client)
    }

    /// Bounds each read (and the connect and handshake of a
    /// [`reconnect`](Self::reconnect)). With a timeout set,
    /// [`next_event`](Self::next_event) returns an `Io` error of kind
    /// `WouldBlock` or `TimedOut` when nothing came in time, and can simply
    /// be called again: no byte is lost.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.timeout = timeout;
        if let Some(conn) = &self.conn {
            conn.stream.set_read_timeout(timeout)?;
        }
        Ok(())
    }

    /// The traffic so far, over every connection this client made.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The ID of the last event received: where a reconnect resumes.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The reconnection delay the server asked for (`retry:`), in ms.
    pub fn retry_ms(&self) -> Option<u64> {
        self.parser.retry()
    }

    /// Opens the stream again after it ended, resuming after the last
    /// event received — what `EventSource` does by itself.
    pub fn reconnect(&mut self) -> Result<(), ClientError> {
        self.parser.finish();
        self.ready.clear();
        let last = self.parser.last_event_id().to_string();
        self.open((!last.is_empty()).then_some(last.as_str()))
    }

    fn open(&mut self, last_event_id: Option<&str>) -> Result<(), ClientError> {
        self.conn = None;
        let mut conn = Conn::connect(self.addr, self.timeout, &mut self.stats)?;
        let mut request = format!(
            "GET /topics/{}/sse HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
            self.topic, self.addr
        );
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
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
        // WHATWG HTML §9.2.3: anything but text/event-stream fails the
        // connection.
        let content_type = head.header("Content-Type").unwrap_or("");
        if !is_event_stream(content_type.as_bytes()) {
            return Err(ClientError::Protocol(format!(
                "not an event stream: Content-Type {content_type:?}"
            )));
        }
        self.chunked = head.stream_decoder()?;
        self.conn = Some(conn);
        Ok(())
    }

    /// The next event, waiting for it; `Ok(None)` once the stream has
    /// ended (the server closed it: call [`reconnect`](Self::reconnect) to
    /// resume). Comments (`: heartbeat`) and `retry:` lines are consumed
    /// silently, as a browser does.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            // First whatever is already buffered, then read more.
            let ended = if conn.buffered().is_empty() {
                conn.fill(&mut self.stats)? == 0
            } else {
                false
            };
            let mut events = Vec::new();
            let mut done = ended;
            match self.chunked.as_mut() {
                Some(decoder) => {
                    self.body.clear();
                    let progress = decoder
                        .decode(conn.buffered(), &mut self.body, usize::MAX)
                        .map_err(|e| ClientError::Protocol(format!("chunked stream: {e}")))?;
                    conn.consume(progress.consumed);
                    done |= progress.done;
                    self.parser.feed(&self.body, &mut events);
                }
                None => {
                    self.parser.feed(conn.buffered(), &mut events);
                    let n = conn.buffered().len();
                    conn.consume(n);
                }
            }
            self.ready.extend(events);
            if done {
                // §9.2.6: an event the stream ended in the middle of is
                // not dispatched; `reconnect` calls `finish` for that.
                self.conn = None;
            }
        }
    }
}

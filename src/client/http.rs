//! Plain HTTP/1.1 requests over one keep-alive connection: publish, the
//! short poll and the long poll.
//!
//! One request at a time, no pipelining: the client writes a request,
//! reads its whole response, and keeps the connection for the next one
//! when the server allows it (RFC 9112 §9.3). A connection the server
//! closed while it sat idle is noticed on the next request and replaced —
//! see [`HttpClient::request`] for when a request is retried.

use std::net::SocketAddr;
use std::time::Duration;

use crate::wire::chunked::{ChunkedDecoder, ChunkedLimits};

use super::conn::{Conn, Framing, ResponseHead};
use super::{json, Batch, ClientError, Stats};

/// The largest response body [`HttpClient`] accepts. A poll response holds
/// at most `max_batch` messages (default 1000) of at most 1 MiB each, so a
/// real one can be large; this is a bound, not an expectation.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;

/// How long a request may wait on the socket beyond what it asked the
/// server for (a long poll's `timeout`).
const SLACK: Duration = Duration::from_secs(10);

/// A whole response.
#[derive(Clone, Debug)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, ClientError> {
        std::str::from_utf8(&self.body)
            .map_err(|_| ClientError::Protocol("response body is not UTF-8".into()))
    }

    /// `Err(ClientError::Status)` unless the status is 2xx.
    fn success(self) -> Result<Response, ClientError> {
        if (200..300).contains(&self.head.status) {
            Ok(self)
        } else {
            Err(ClientError::Status {
                status: self.head.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
            })
        }
    }
}

/// A blocking HTTP/1.1 client for one server, reusing its connection.
///
/// Topic names, event names and cursors are put in the request target as
/// given: the names the server accepts need no percent-encoding, and any
/// other is answered 400 ([`ClientError::Status`]).
///
/// ```no_run
/// # fn main() -> Result<(), pushwire::client::ClientError> {
/// use pushwire::client::HttpClient;
/// let mut http = HttpClient::new("127.0.0.1:8080".parse().unwrap());
/// let id = http.post("news", None, "hello")?;
/// let batch = http.poll("news", Some(&id), 30)?; // waits for the next one
/// println!("{} new, next cursor {}", batch.messages.len(), batch.last_id);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    conn: Option<Conn>,
    timeout: Duration,
    max_body: usize,
    stats: Stats,
}

impl HttpClient {
    /// A client for the server at `addr`. Nothing is connected until the
    /// first request.
    pub fn new(addr: SocketAddr) -> HttpClient {
        HttpClient {
            addr,
            conn: None,
            timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
            stats: Stats::default(),
        }
    }

    /// How long connecting, writing and each read may take (default 30 s;
    /// a long poll adds its own timeout to it).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The traffic so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// `POST /topics/{topic}[?event=…]` with `data` as the body; returns
    /// the new message's id.
    pub fn post(
        &mut self,
        topic: &str,
        event: Option<&str>,
        data: &str,
    ) -> Result<String, ClientError> {
        let target = match event {
            Some(e) => format!("/topics/{topic}?event={e}"),
            None => format!("/topics/{topic}"),
        };
        let res = self
            .request(
                "POST",
                &target,
                &[("Content-Type", "text/plain; charset=utf-8")],
                data.as_bytes(),
            )?
            .success()?;
        let value = json::parse(res.text()?)?;
        value
            .get("id")
            .and_then(json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("publish answer has no \"id\"".into()))
    }

    /// The short poll, `GET /topics/{topic}/messages[?after=…]`: what the
    /// topic holds after the cursor (everything kept, without one).
    pub fn messages(&mut self, topic: &str, after: Option<&str>) -> Result<Batch, ClientError> {
        let target = with_after(format!("/topics/{topic}/messages"), after);
        let res = self.request("GET", &target, &[], b"")?.success()?;
        Batch::from_json(res.text()?)
    }

    /// The long poll, `GET /topics/{topic}/poll?after=…&timeout=…`: answers
    /// as soon as there is something after the cursor, or after
    /// `timeout_secs` with `timeout: true`. Without a cursor it waits for
    /// the next message.
    pub fn poll(
        &mut self,
        topic: &str,
        after: Option<&str>,
        timeout_secs: u64,
    ) -> Result<Batch, ClientError> {
        let target = with_after(format!("/topics/{topic}/poll"), after);
        let sep = if after.is_some() { '&' } else { '?' };
        let target = format!("{target}{sep}timeout={timeout_secs}");
        let wait = Duration::from_secs(timeout_secs) + SLACK;
        let res = self
            .request_with_timeout("GET", &target, &[], b"", self.timeout.max(wait))?
            .success()?;
        Batch::from_json(res.text()?)
    }

    /// `GET path` (any path: `/healthz`, `/stats`, …), whatever the status.
    pub fn get(&mut self, target: &str) -> Result<Response, ClientError> {
        self.request("GET", target, &[], b"")
    }

    /// Sends one request and reads its whole response, whatever its status.
    ///
    /// If the request went out on a connection kept from an earlier one
    /// and the server closed it before a single byte of response came back,
    /// the request is sent once more on a new connection: that is how a
    /// keep-alive connection the server timed out while idle shows itself
    /// (RFC 9112 §9.3.1 allows retrying when no response was received; the
    /// server's idle close means it did not process the request).
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, ClientError> {
        self.request_with_timeout(method, target, headers, body, self.timeout)
    }

    fn request_with_timeout(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        read_timeout: Duration,
    ) -> Result<Response, ClientError> {
        let mut bytes = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            bytes.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            bytes.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        bytes.push_str("\r\n");
        let mut bytes = bytes.into_bytes();
        bytes.extend_from_slice(body);

        let reused = self.conn.is_some();
        match self.exchange(&bytes, method == "HEAD", read_timeout) {
            Err(ClientError::Closed) if reused => {
                self.conn = None;
                self.exchange(&bytes, method == "HEAD", read_timeout)
            }
            other => other,
        }
    }

    /// One request and its response on the current (or a new) connection.
    fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        read_timeout: Duration,
    ) -> Result<Response, ClientError> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => Conn::connect(self.addr, Some(self.timeout), &mut self.stats)?,
        };
        conn.stream.set_read_timeout(Some(read_timeout))?;
        self.stats.requests += 1;
        if let Err(e) = conn.send(request, &mut self.stats) {
            // A write to a connection the server has closed fails only
            // sometimes (the first write after a FIN usually succeeds):
            // treat it as the same "closed" either way.
            return Err(match e.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    ClientError::Closed
                }
                _ => e.into(),
            });
        }
        let head = match conn.read_head(&mut self.stats) {
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(ClientError::Closed)
            }
            other => other?,
        };
        let framing = head.framing(head_request)?;
        let body = read_body(&mut conn, framing, self.max_body, &mut self.stats)?;
        if head.keep_alive() && framing != Framing::UntilClose {
            self.conn = Some(conn);
        }
        Ok(Response { head, body })
    }
}

fn with_after(mut target: String, after: Option<&str>) -> String {
    if let Some(after) = after {
        target.push_str("?after=");
        target.push_str(after);
    }
    target
}

/// Reads a whole body delimited by `framing`, at most `max` bytes.
pub(crate) fn read_body(
    conn: &mut Conn,
    framing: Framing,
    max: usize,
    stats: &mut Stats,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::Protocol(format!("response body over {max} bytes"));
    let mut body = Vec::new();
    match framing {
        Framing::Length(n) => {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(too_large)?;
            while body.len() < n {
                if conn.buffered().is_empty() && conn.fill(stats)? == 0 {
                    return Err(ClientError::Protocol(
                        "connection closed inside a response body".into(),
                    ));
                }
                let take = conn.buffered().len().min(n - body.len());
                body.extend_from_slice(&conn.buffered()[..take]);
                conn.consume(take);
            }
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
            loop {
                let progress = decoder
                    .decode(conn.buffered(), &mut body, max)
                    .map_err(|e| ClientError::Protocol(format!("chunked body: {e}")))?;
                conn.consume(progress.consumed);
                if progress.done {
                    break;
                }
                if conn.fill(stats)? == 0 {
                    return Err(ClientError::Protocol(
                        "connection closed inside a chunked body".into(),
                    ));
                }
            }
        }
        Framing::UntilClose => loop {
            body.extend_from_slice(conn.buffered());
            let n = conn.buffered().len();
            conn.consume(n);
            if body.len() > max {
                return Err(too_large());
            }
            if conn.fill(stats)? == 0 {
                break;
            }
        },
    }
    Ok(body)
}

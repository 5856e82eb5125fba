//! A blocking TCP connection with a read buffer and byte counters, and the
//! HTTP/1.1 response-head reader every client starts with.
//!
//! Before working on this file, read RFC 9112 §4 (status line), §5 (field
//! lines) and §6.3 (how a response's body length is decided). A client
//! reading responses from a server it trusts can be simpler than a server
//! reading requests from strangers, but not sloppier: the head is bounded,
//! line endings are CRLF, and a response whose length is ambiguous is
//! refused, because reading the next response from the wrong offset is
//! how a keep-alive connection goes wrong.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{ClientError, Stats};

/// The largest response head a client reads before giving up.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How much one read asks the kernel for.
const READ_CHUNK: usize = 16 * 1024;

/// A connected socket, the bytes read from it but not yet used, and the
/// traffic counters of the client that owns it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: TcpStream,
    /// Bytes received and not yet consumed: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
}

impl Conn {
    pub fn connect(
        addr: SocketAddr,
        timeout: Option<Duration>,
        stats: &mut Stats,
    ) -> io::Result<Conn> {
        let stream = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t)?,
            None => TcpStream::connect(addr)?,
        };
        // Requests and frames are written whole; Nagle would only delay
        // the small ones (and every latency this crate's examples measure).
        stream.set_nodelay(true)?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        stats.connections += 1;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            start: 0,
        })
    }

    /// The bytes received and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads once more from the socket, appending to the buffer. Returns
    /// the number of bytes read: 0 is the end of the stream. A read
    /// timeout comes back as `WouldBlock`/`TimedOut` with nothing lost:
    /// the buffer is untouched, so the caller may simply call again.
    pub fn fill(&mut self, stats: &mut Stats) -> io::Result<usize> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            // Keep the buffer from creeping forward forever.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let result = loop {
            match self.stream.read(&mut self.buf[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        stats.bytes_received += n as u64;
        result
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8], stats: &mut Stats) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        stats.bytes_sent += bytes.len() as u64;
        Ok(())
    }

    /// Reads until a whole response head is buffered, then parses and
    /// consumes it. Interim (1xx) responses are skipped (RFC 9110 §15.2: a
    /// client MUST be able to parse one, and may ignore it) — except `101
    /// Switching Protocols`, which is the answer a WebSocket waits for.
    pub fn read_head(&mut self, stats: &mut Stats) -> Result<ResponseHead, ClientError> {
        loop {
            if let Some(end) = find_head_end(self.buffered()) {
                let head = parse_head(&self.buffered()[..end])?;
                self.consume(end);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                return Ok(head);
            }
            if self.buffered().len() > MAX_RESPONSE_HEAD {
                return Err(ClientError::Protocol("response head too large".into()));
            }
            if self.fill(stats)? == 0 {
                return Err(if self.buffered().is_empty() {
                    ClientError::Closed
                } else {
                    ClientError::Protocol("connection closed inside a response head".into())
                });
            }
        }
    }
}

/// The length of the head at the start of `buf`, its empty line included,
/// if it is all there.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A response's status line and header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    pub status: u16,
    pub reason: String,
    /// Field names as sent; look them up with [`ResponseHead::header`].
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// Parses a whole response head: the status line, the field lines and
    /// the empty line that ends them (`HTTP/1.1 200 OK\r\n…\r\n\r\n`),
    /// as strictly as the clients read one. For callers that read their
    /// own socket and want the same rules.
    pub fn parse(head: &[u8]) -> Result<ResponseHead, ClientError> {
        if find_head_end(head) != Some(head.len()) {
            return Err(ClientError::Protocol(
                "a response head ends with its first empty line".into(),
            ));
        }
        parse_head(head)
    }

    /// The first field named `name` (ASCII case-insensitive, RFC 9110
    /// §5.1).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether some field `name` lists `token` (a comma-separated list,
    /// compared case-insensitively: `Connection: keep-alive, Upgrade`).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the server keeps the connection open after this response
    /// (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`; HTTP/1.0
    /// only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        if self.has_token("Connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.has_token("Connection", "keep-alive")
    }

    /// How the body after this head is delimited (RFC 9112 §6.3), for a
    /// response to a request of method `HEAD` or not.
    /// How an endless streaming body (SSE, NDJSON) is read: chunked, with
    /// its decoder, or until close (HTTP/1.0). A `Content-Length` cannot
    /// frame a stream that never ends.
    pub fn stream_decoder(
        &self,
    ) -> Result<Option<crate::wire::chunked::ChunkedDecoder>, ClientError> {
        use crate::wire::chunked::{ChunkedDecoder, ChunkedLimits};
        match self.framing(false)? {
            Framing::Chunked => Ok(Some(ChunkedDecoder::new(ChunkedLimits::default()))),
            Framing::UntilClose => Ok(None),
            Framing::Length(_) => Err(ClientError::Protocol(
                "an endless stream with a Content-Length".into(),
            )),
        }
    }

    pub fn framing(&self, head_request: bool) -> Result<Framing, ClientError> {
        // §6.3 rule 1: no body after HEAD, 1xx, 204 or 304, whatever the
        // fields say.
        if head_request || (100..200).contains(&self.status) || matches!(self.status, 204 | 304) {
            return Ok(Framing::Length(0));
        }
        let te: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Transfer-Encoding"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect();
        if !te.is_empty() {
            // §6.3 rule 3: chunked must be the final coding, else the body
            // runs to the close. We know no other coding, so anything but
            // exactly `chunked` is refused rather than misread.
            if te.len() == 1 && te[0].eq_ignore_ascii_case("chunked") {
                return Ok(Framing::Chunked);
            }
            return Err(ClientError::Protocol(format!(
                "unsupported Transfer-Encoding: {}",
                te.join(", ")
            )));
        }
        let mut length = None;
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            // §6.3 rule 5: differing or invalid lengths are an
            // unrecoverable error.
            let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            let n = value.parse::<u64>().ok().filter(|_| ok).ok_or_else(|| {
                ClientError::Protocol(format!("invalid Content-Length: {value:?}"))
            })?;
            if length.is_some_and(|l| l != n) {
                return Err(ClientError::Protocol("conflicting Content-Length".into()));
            }
            length = Some(n);
        }
        Ok(match length {
            Some(n) => Framing::Length(n),
            // §6.3 rule 8: otherwise the body is everything until close.
            None => Framing::UntilClose,
        })
    }
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Parses a response head (the bytes up to and including its empty line).
fn parse_head(bytes: &[u8]) -> Result<ResponseHead, ClientError> {
    let bad = |what: &str| ClientError::Protocol(format!("malformed response head: {what}"));
    // The head is ASCII by RFC 9112 §5.5 in every field we read; a server
    // that sends other bytes gets them replaced rather than trusted.
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let rest = status_line
        .strip_prefix("HTTP/1.")
        .ok_or_else(|| bad("not HTTP/1.x"))?;
    let minor_version = match rest.as_bytes().first() {
        Some(b'0') => 0,
        Some(b'1') => 1,
        _ => return Err(bad("unknown HTTP version")),
    };
    let rest = rest[1..]
        .strip_prefix(' ')
        .ok_or_else(|| bad("status line"))?;
    let code = rest.get(..3).ok_or_else(|| bad("status code"))?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("status code"));
    }
    let status: u16 = code.parse().map_err(|_| bad("status code"))?;
    let reason = match &rest[3..] {
        "" => "",
        r => r.strip_prefix(' ').ok_or_else(|| bad("status line"))?,
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue; // the head's final empty line (and the split's tail)
        }
        if line.contains('\r') || line.contains('\n') {
            return Err(bad("bare CR or LF"));
        }
        // RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS,
        // and no whitespace between the name and the colon.
        let (name, value) = line.split_once(':').ok_or_else(|| bad("field line"))?;
        if name.is_empty() || name.ends_with([' ', '\t']) || name.starts_with([' ', '\t']) {
            return Err(bad("field name"));
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    Ok(ResponseHead {
        minor_version,
        status,
        reason: reason.to_string(),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> ResponseHead {
        parse_head(text.as_bytes()).unwrap()
    }

    #[test]
    fn status_line_and_fields() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length:  5 \r\n\r\n");
        assert_eq!(
            (h.minor_version, h.status, h.reason.as_str()),
            (1, 200, "OK")
        );
        assert_eq!(h.header("Content-Length"), Some("5"));
        assert_eq!(h.framing(false).unwrap(), Framing::Length(5));
        assert_eq!(h.framing(true).unwrap(), Framing::Length(0));
        assert!(h.keep_alive());
        // An empty reason phrase is allowed (RFC 9112 §4).
        assert_eq!(head("HTTP/1.1 204 \r\n\r\n").status, 204);
        assert_eq!(head("HTTP/1.1 204\r\n\r\n").reason, "");
    }

    #[test]
    fn framing_rules() {
        let chunked = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.framing(false).unwrap(), Framing::Chunked);
        let close = head("HTTP/1.0 200 OK\r\n\r\n");
        assert_eq!(close.framing(false).unwrap(), Framing::UntilClose);
        assert!(!close.keep_alive());
        let ka = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(ka.keep_alive());
        let closing = head("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        assert!(!closing.keep_alive());
        let not_modified = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
        assert_eq!(not_modified.framing(false).unwrap(), Framing::Length(0));
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ] {
            assert!(head(bad).framing(false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: v\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: b\nc\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn public_parse_wants_exactly_one_head() {
        let h =
            ResponseHead::parse(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
                .unwrap();
        assert_eq!((h.status, h.header("upgrade")), (101, Some("websocket")));
        assert!(ResponseHead::parse(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(ResponseHead::parse(b"HTTP/1.1 200 OK\r\n\r\nbody").is_err());
    }

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n\r"), None);
    }
}

//! One HTTP/1.1 connection, sans-IO (RFC 9112).
//!
//! Before working on this file, read RFC 9112 §6 (message body length),
//! §9 (connection management: persistence, pipelining) and RFC 9110 §10.1.1
//! (`Expect: 100-continue`).
//!
//! The driver calls, in this order, for as long as the connection lives:
//!
//! 1. [`HttpConn::poll_request`] with every unconsumed input byte. It
//!    answers `Ok(None)` (need more bytes; an interim `100 Continue` may
//!    have been written), `Err` (the peer broke a rule: answer
//!    [`HttpError::status`] with `Connection: close` and read no more), or
//!    a complete [`Request`] whose head and body start at `input[0]`.
//! 2. The application writes a response (see [`write_response`]).
//! 3. [`HttpConn::finish_request`], which says how many input bytes the
//!    request occupied and readies the parser for the next pipelined one.
//!
//! Nothing here reads the clock: `now` is passed in, and
//! [`HttpConn::poll_timeout`] says when the driver should call
//! [`HttpConn::handle_timeout`].

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::wire::chunked::{ChunkedDecoder, ChunkedError, ChunkedLimits};
use crate::wire::http1::{
    request_framing, BodyFraming, HeadError, HeadLimits, HeadParser, Method, RequestHead, Version,
};
use crate::Config;

/// The limits one connection enforces, copied from [`Config`].
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub head: HeadLimits,
    pub chunked: ChunkedLimits,
    pub max_body_bytes: usize,
    pub max_requests: u64,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl HttpLimits {
    pub fn from_config(c: &Config) -> HttpLimits {
        HttpLimits {
            head: HeadLimits {
                max_head_bytes: c.max_head_bytes,
                max_headers: c.max_headers,
                max_uri_bytes: c.max_uri_bytes,
            },
            chunked: ChunkedLimits {
                max_ext_bytes: c.max_chunk_ext_bytes,
                max_trailer_bytes: c.max_trailer_bytes,
            },
            max_body_bytes: c.max_body_bytes,
            max_requests: c.max_requests_per_connection,
            header_read_timeout: c.header_read_timeout,
            body_read_timeout: c.body_read_timeout,
        }
    }
}

/// Why a connection's request stream cannot go on. Each variant says which
/// status the peer gets before the connection closes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HttpError {
    #[error("bad request head: {0}")]
    Head(#[from] HeadError),
    #[error("bad chunked body: {0}")]
    Chunked(#[from] ChunkedError),
    /// RFC 9110 §15.5.14: the body is larger than we are willing to take.
    /// Detected from Content-Length before a byte of the body is read.
    #[error("body of {0} bytes is over the limit")]
    BodyTooLarge(u64),
    /// The head did not arrive within the header-read deadline (slowloris).
    #[error("request head not complete before the deadline")]
    HeadTimeout,
    /// The body did not arrive within the body-read deadline.
    #[error("request body not complete before the deadline")]
    BodyTimeout,
}

impl HttpError {
    /// The status to answer with (always followed by closing).
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Head(e) => e.status(),
            HttpError::Chunked(e) => e.status(),
            HttpError::BodyTooLarge(_) => 413,
            HttpError::HeadTimeout | HttpError::BodyTimeout => 408,
        }
    }
}

/// Where the connection is in reading the current request.
#[derive(Debug)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// The head is parsed; `Content-Length` bytes follow it.
    Length { len: usize },
    /// The head is parsed; a chunked body follows, decoded into `body`.
    Chunked {
        decoder: ChunkedDecoder,
        /// Input bytes after the head the decoder has consumed.
        consumed: usize,
        done: bool,
    },
}

/// A complete request: head and body, borrowed from the input.
#[derive(Debug)]
pub struct Request<'a> {
    pub head: &'a RequestHead,
    /// The bytes the head's spans index.
    pub buf: &'a [u8],
    pub body: &'a [u8],
    /// Whether the connection stays open after the response (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// [`path`](Self::path), found once: routing asks for it several
    /// times per request.
    path: &'a str,
}

impl<'a> Request<'a> {
    pub fn method(&self) -> Method {
        self.head.method
    }

    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The request-target as sent.
    pub fn target(&self) -> &'a str {
        self.head.target(self.buf)
    }

    /// The path of the target: origin-form up to `?`; for absolute-form
    /// (RFC 9112 §3.2.2, which a server MUST accept) the path after the
    /// authority.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The query string, without `?` (empty when there is none).
    pub fn query(&self) -> &'a str {
        let target = self.target();
        match target.find('?') {
            Some(q) => &target[q + 1..],
            None => "",
        }
    }

    /// The first value of query parameter `name`, as sent (no
    /// percent-decoding: every value this server takes is of a charset
    /// that needs none, so a `%` simply makes it invalid).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        query_param(self.query(), name)
    }

    /// The host the request is for: an absolute-form target's authority,
    /// else the Host field. RFC 9112 §3.2.2: "When an origin server
    /// receives a request with an absolute-form of request-target, the
    /// origin server MUST ignore the received Host header field (if any)
    /// and instead use the host information of the request-target."
    pub fn host(&self) -> Option<&'a [u8]> {
        let target = self.target().as_bytes();
        if !target.starts_with(b"/") {
            if let Some(authority) = crate::wire::http1::target_authority(target) {
                return Some(authority);
            }
        }
        self.header("host").map(crate::wire::http1::trim_ows)
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.head.header(self.buf, name)
    }
}

/// The path of request-target `target`: origin-form up to `?`; for
/// absolute-form (RFC 9112 §3.2.2, which a server MUST accept) the path
/// after the authority.
fn path_of(target: &str) -> &str {
    // Origin-form (RFC 9112 §3.2.1), what every client but a proxy sends,
    // starts with `/`: no authority to look for.
    let target = if target.starts_with('/') {
        target
    } else {
        match target.find("://") {
            Some(i) => {
                let rest = &target[i + 3..];
                match rest.find('/') {
                    Some(j) => &rest[j..],
                    None => "/",
                }
            }
            None => target,
        }
    };
    // A byte loop: targets are short, and this runs for every request.
    match target.bytes().position(|b| b == b'?') {
        Some(q) => &target[..q],
        None => target,
    }
}

/// The first value of `name` in an `a=1&b=2` query string.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// The request-reading half of an HTTP/1.1 connection.
#[derive(Debug)]
pub struct HttpConn {
    limits: HttpLimits,
    parser: HeadParser,
    head: RequestHead,
    phase: Phase,
    /// A chunked body, decoded. (A Content-Length body is borrowed from
    /// the input instead.)
    body: Vec<u8>,
    /// Whether `100 Continue` was sent for the current request.
    sent_continue: bool,
    /// Requests answered so far on this connection.
    served: u64,
    /// When the current head's first byte arrived (slowloris deadline).
    head_started: Option<Instant>,
    /// When the current body started (its deadline).
    body_started: Option<Instant>,
}

impl HttpConn {
    /// The target of the head just parsed, whose request was refused
    /// (`input` as given to [`HttpConn::poll_request`]).
    pub fn refused_target<'a>(&self, input: &'a [u8]) -> &'a str {
        if self.head.len == 0 || self.head.len > input.len() {
            return "";
        }
        self.head.target(input)
    }

    /// The request whose head is parsed and whose body is still coming,
    /// with its body empty: what may be judged before the body is read.
    pub fn awaiting_body<'a>(&'a self, input: &'a [u8]) -> Option<Request<'a>> {
        if matches!(self.phase, Phase::Head) || self.head.len > input.len() {
            return None;
        }
        Some(Request {
            head: &self.head,
            buf: input,
            body: &[],
            keep_alive: false,
            path: path_of(self.head.target(input)),
        })
    }

    pub fn new(limits: HttpLimits) -> HttpConn {
        HttpConn {
            limits,
            parser: HeadParser::new(),
            head: RequestHead::default(),
            phase: Phase::Head,
            body: Vec::new(),
            sent_continue: false,
            served: 0,
            head_started: None,
            body_started: None,
        }
    }

    /// Requests answered on this connection.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Whether a request is partly received (bytes of a head or a body).
    pub fn in_progress(&self) -> bool {
        self.head_started.is_some() || !matches!(self.phase, Phase::Head)
    }

    /// Whether the current request's head is still to come or to finish
    /// (no body is being read).
    pub fn awaiting_head(&self) -> bool {
        matches!(self.phase, Phase::Head)
    }

    /// Parses the request at the start of `input` as far as it goes.
    ///
    /// `interim` receives `HTTP/1.1 100 Continue` when the client asked for
    /// it and the body is still to come, or the request asks to upgrade.
    pub fn poll_request<'a>(
        &'a mut self,
        input: &'a [u8],
        now: Instant,
        interim: &mut Vec<u8>,
    ) -> Result<Option<Request<'a>>, HttpError> {
        if let Phase::Head = self.phase {
            if input.is_empty() {
                return Ok(None);
            }
            self.head_started.get_or_insert(now);
            if !self
                .parser
                .parse(input, &self.limits.head, &mut self.head)?
            {
                return Ok(None);
            }
            self.head_started = None;
            self.phase = match request_framing(&self.head, input)? {
                BodyFraming::Empty => Phase::Length { len: 0 },
                BodyFraming::Length(len) => {
                    // RFC 9110 §15.5.14: refuse before reading the body; the
                    // connection closes, so the body is never read as a
                    // request of its own.
                    if len > self.limits.max_body_bytes as u64 {
                        return Err(HttpError::BodyTooLarge(len));
                    }
                    Phase::Length { len: len as usize }
                }
                BodyFraming::Chunked => Phase::Chunked {
                    decoder: ChunkedDecoder::new(self.limits.chunked),
                    consumed: 0,
                    done: false,
                },
            };
            self.body_started = Some(now);
        }

        let head_len = self.head.len;
        let body_here = input.len() - head_len;
        let complete = match &mut self.phase {
            Phase::Head => unreachable!("the head phase returned above"),
            Phase::Length { len } => body_here >= *len,
            Phase::Chunked {
                decoder,
                consumed,
                done,
            } => {
                if !*done {
                    let progress = decoder.decode(
                        &input[head_len + *consumed..],
                        &mut self.body,
                        self.limits.max_body_bytes,
                    )?;
                    *consumed += progress.consumed;
                    *done = progress.done;
                }
                *done
            }
        };
        if !complete {
            self.maybe_continue(input, interim);
            return Ok(None);
        }
        self.body_started = None;
        // RFC 9110 §7.8: "If a server receives both an Upgrade and an
        // Expect header field with the "100-continue" expectation …, the
        // server MUST send a 100 (Continue) response before sending a 101
        // (Switching Protocols) response." Sent whatever the answer: a
        // refusal after a 100 is an ordinary final response.
        if self.head.header(input, "upgrade").is_some() {
            self.maybe_continue(input, interim);
        }
        let keep_alive = self.keep_alive(input);
        let body = match &self.phase {
            Phase::Length { len } => &input[head_len..head_len + *len],
            _ => &self.body[..],
        };
        Ok(Some(Request {
            head: &self.head,
            buf: input,
            body,
            keep_alive,
            path: path_of(self.head.target(input)),
        }))
    }

    /// RFC 9110 §10.1.1: a server that receives `100-continue` and intends
    /// to read the body sends `100 Continue` first — once, and only while
    /// the body has not started arriving (sending it later is allowed but
    /// pointless). HTTP/1.0 clients do not understand 1xx (RFC 9110 §15.2).
    fn maybe_continue(&mut self, input: &[u8], interim: &mut Vec<u8>) {
        if self.sent_continue || self.head.version != Version::Http11 {
            return;
        }
        let expects = self
            .head
            .header(input, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects {
            interim.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.sent_continue = true;
        }
    }

    /// RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 persists
    /// only with `keep-alive`.
    fn keep_alive(&self, input: &[u8]) -> bool {
        if self.served + 1 >= self.limits.max_requests {
            return false;
        }
        match self.head.version {
            Version::Http11 => !self.head.has_token(input, "connection", "close"),
            Version::Http10 => self.head.has_token(input, "connection", "keep-alive"),
        }
    }

    /// Ends the current request: returns how many input bytes it occupied
    /// (head and body), which the driver drops before the next
    /// [`poll_request`](Self::poll_request).
    pub fn finish_request(&mut self) -> usize {
        let used = self.head.len
            + match &self.phase {
                Phase::Head => 0,
                Phase::Length { len } => *len,
                Phase::Chunked { consumed, .. } => *consumed,
            };
        self.phase = Phase::Head;
        self.body.clear();
        if self.body.capacity() > 64 * 1024 {
            self.body = Vec::new();
        }
        self.sent_continue = false;
        self.served += 1;
        self.head_started = None;
        self.body_started = None;
        used
    }

    /// Releases per-request memory held for reuse (the header vector), so
    /// a connection that leaves HTTP (a WebSocket, a stream) costs less.
    pub fn shrink(&mut self) {
        self.head.headers = Vec::new();
        self.body = Vec::new();
    }

    /// When the request in progress runs out of time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.head_started, self.body_started) {
            (Some(t), _) => Some(t + self.limits.header_read_timeout),
            (None, Some(t)) => Some(t + self.limits.body_read_timeout),
            (None, None) => None,
        }
    }

    /// Whether the request in progress is past its deadline.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HttpError> {
        if let Some(t) = self.head_started {
            if now >= t + self.limits.header_read_timeout {
                return Err(HttpError::HeadTimeout);
            }
        }
        if let Some(t) = self.body_started {
            if now >= t + self.limits.body_read_timeout {
                return Err(HttpError::BodyTimeout);
            }
        }
        Ok(())
    }
}

/// How the body of a response is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `Content-Length` and these bytes.
    Fixed,
    /// A stream of unknown length: chunked on HTTP/1.1 (RFC 9112 §7.1),
    /// delimited by closing the connection on HTTP/1.0 (§6.3 rule 8).
    Stream,
    /// No body and no Content-Length (204, 101).
    None,
}

/// What a response head needs to know of its request and connection.
#[derive(Clone, Copy, Debug)]
pub struct ResponseCtx<'a> {
    pub version: Version,
    /// HEAD: the head says what GET would have sent, with no body
    /// (RFC 9110 §9.3.2).
    pub head_only: bool,
    pub keep_alive: bool,
    /// The cached `Date` value (RFC 9110 §6.6.1: an origin server with a
    /// clock MUST send Date).
    pub date: &'a [u8],
}

/// Appends a whole response: status line, headers, framing, body.
///
/// `headers` are extra fields (the caller guarantees they hold no CR/LF).
/// Returns whether the connection stays open after it.
pub fn write_response(
    out: &mut Vec<u8>,
    ctx: &ResponseCtx,
    status: u16,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
    kind: BodyKind,
) -> bool {
    // A close-delimited stream cannot keep the connection.
    let keep_alive =
        ctx.keep_alive && !(kind == BodyKind::Stream && ctx.version == Version::Http10);
    // RFC 9112 §2.5: "A server SHOULD send a response version equal to
    // the highest version to which the server is conformant that has a
    // major version less than or equal to the one received in the
    // request." An HTTP/1.0 client gets `HTTP/1.1` and 1.0 framing (no
    // chunked, close unless keep-alive was asked for).
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, status as u64);
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(ctx.date);
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match kind {
        BodyKind::Fixed => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, body.len() as u64);
            out.extend_from_slice(b"\r\n");
        }
        BodyKind::Stream if ctx.version == Version::Http11 => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        BodyKind::Stream | BodyKind::None => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if ctx.version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if kind == BodyKind::Fixed && !ctx.head_only {
        out.extend_from_slice(body);
    }
    keep_alive
}

/// Appends the decimal form of `n` without allocating.
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The reason phrase for the statuses this server sends (RFC 9110 §15).
pub fn reason(status: u16) -> &'static str {
    // RFC 9110 §15 (and RFC 6585 for 428, 429, 431): the reason phrase is
    // advisory (RFC 9112 §4), but a client's log reads better with the
    // registered one than with a placeholder.
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Formats an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`, from seconds since the Unix epoch.
pub fn http_date(unix_secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let weekday = DAYS[(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;

    let mut d = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    d[..3].copy_from_slice(weekday);
    two(&mut d[5..7], day);
    d[8..11].copy_from_slice(MONTHS[month - 1]);
    d[12] = b'0' + (year / 1000 % 10) as u8;
    d[13] = b'0' + (year / 100 % 10) as u8;
    d[14] = b'0' + (year / 10 % 10) as u8;
    d[15] = b'0' + (year % 10) as u8;
    two(&mut d[17..19], secs / 3600);
    two(&mut d[20..22], secs / 60 % 60);
    two(&mut d[23..25], secs % 60);
    d
}

fn two(dst: &mut [u8], n: u64) {
    dst[0] = b'0' + (n / 10 % 10) as u8;
    dst[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> HttpConn {
        HttpConn::new(HttpLimits::from_config(&Config::default()))
    }

    #[test]
    fn imf_fixdate_matches_rfc_example() {
        // RFC 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT".
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn every_status_the_server_sends_has_its_registered_reason() {
        // RFC 9110 §15.5.2: 401 is "Unauthorized" (it was "Unknown").
        assert_eq!(reason(401), "Unauthorized");
        assert_eq!(reason(429), "Too Many Requests");
        // Each status written anywhere in the server (src/), looked up.
        for status in [
            101, 200, 204, 400, 401, 403, 404, 405, 408, 413, 414, 426, 431, 500, 501, 503, 505,
        ] {
            assert_ne!(reason(status), "Unknown", "{status}");
        }
        assert_eq!(reason(299), "Unknown");
    }

    #[test]
    fn pipelined_requests_come_out_in_order() {
        let mut c = conn();
        let now = Instant::now();
        let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let mut at = 0;
        let mut seen = Vec::new();
        let mut interim = Vec::new();
        while let Some(req) = c.poll_request(&input[at..], now, &mut interim).unwrap() {
            seen.push((req.path().to_string(), req.body.to_vec(), req.keep_alive));
            at += c.finish_request();
        }
        assert_eq!(at, input.len());
        assert_eq!(
            seen,
            vec![
                ("/a".to_string(), vec![], true),
                ("/b".to_string(), b"abc".to_vec(), true),
                ("/c".to_string(), vec![], false),
            ]
        );
    }

    #[test]
    fn chunked_body_is_decoded_and_the_next_request_kept() {
        let mut c = conn();
        let now = Instant::now();
        let input = b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut interim = Vec::new();
        let req = c.poll_request(input, now, &mut interim).unwrap().unwrap();
        assert_eq!(req.body, b"abcde");
        let used = c.finish_request();
        let req = c
            .poll_request(&input[used..], now, &mut interim)
            .unwrap()
            .unwrap();
        assert_eq!(req.path(), "/");
    }

    #[test]
    fn expect_continue_is_answered_once_before_the_body() {
        let mut c = conn();
        let now = Instant::now();
        let mut input =
            b"POST /t HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
                .to_vec();
        let mut interim = Vec::new();
        assert!(c.poll_request(&input, now, &mut interim).unwrap().is_none());
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        input.push(b'h');
        assert!(c.poll_request(&input, now, &mut interim).unwrap().is_none());
        assert_eq!(interim.len(), 25, "sent once");
        input.push(b'i');
        let req = c.poll_request(&input, now, &mut interim).unwrap().unwrap();
        assert_eq!(req.body, b"hi");
    }

    #[test]
    fn expect_continue_with_an_upgrade_gets_its_100_before_the_101() {
        // RFC 9110 §7.8: no body to wait for, but the 100 still comes first.
        let mut c = conn();
        let input = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nExpect: 100-continue\r\n\r\n";
        let mut interim = Vec::new();
        assert!(c
            .poll_request(input, Instant::now(), &mut interim)
            .unwrap()
            .is_some());
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        // Without Upgrade, a request without a body needs no 100.
        let mut c = conn();
        let input = b"GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n";
        let mut interim = Vec::new();
        assert!(c
            .poll_request(input, Instant::now(), &mut interim)
            .unwrap()
            .is_some());
        assert!(interim.is_empty());
    }

    #[test]
    fn oversized_content_length_is_refused_before_the_body() {
        let mut c = conn();
        let input = b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n";
        let err = c
            .poll_request(input, Instant::now(), &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn http10_keep_alive_only_when_asked() {
        let now = Instant::now();
        let mut c = conn();
        let req = c
            .poll_request(b"GET / HTTP/1.0\r\n\r\n", now, &mut Vec::new())
            .unwrap()
            .unwrap();
        assert!(!req.keep_alive);
        let mut c = conn();
        let req = c
            .poll_request(
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                now,
                &mut Vec::new(),
            )
            .unwrap()
            .unwrap();
        assert!(req.keep_alive);
    }

    #[test]
    fn slow_head_times_out() {
        let mut c = conn();
        let t0 = Instant::now();
        assert!(c
            .poll_request(b"GET / HT", t0, &mut Vec::new())
            .unwrap()
            .is_none());
        let deadline = c.poll_timeout().unwrap();
        assert!(c
            .handle_timeout(deadline - Duration::from_millis(1))
            .is_ok());
        assert_eq!(c.handle_timeout(deadline), Err(HttpError::HeadTimeout));
    }

    #[test]
    fn absolute_form_path_and_query() {
        let mut c = conn();
        let req = c
            .poll_request(
                b"GET http://example.com/topics/a/poll?after=1-2&timeout=5 HTTP/1.1\r\nHost: example.com\r\n\r\n",
                Instant::now(),
                &mut Vec::new(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(req.path(), "/topics/a/poll");
        assert_eq!(req.query_param("after"), Some("1-2"));
        assert_eq!(req.query_param("timeout"), Some("5"));
        assert_eq!(req.query_param("nope"), None);
        assert_eq!(req.host(), Some(&b"example.com"[..]));
        // RFC 9112 §3.2.2: the target's authority, not Host.
        let mut c = conn();
        let req = c
            .poll_request(
                b"GET http://evil:81/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                Instant::now(),
                &mut Vec::new(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(req.host(), Some(&b"evil:81"[..]));
        let mut c = conn();
        let req = c
            .poll_request(
                b"GET /a HTTP/1.1\r\nHost:  x:8 \r\n\r\n",
                Instant::now(),
                &mut Vec::new(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(req.host(), Some(&b"x:8"[..]));
    }

    #[test]
    fn response_framing() {
        let ctx = ResponseCtx {
            version: Version::Http11,
            head_only: false,
            keep_alive: true,
            date: b"Sun, 06 Nov 1994 08:49:37 GMT",
        };
        let mut out = Vec::new();
        assert!(write_response(
            &mut out,
            &ctx,
            200,
            Some("text/plain"),
            &[],
            b"ok",
            BodyKind::Fixed
        ));
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
        );
        let ctx10 = ResponseCtx {
            version: Version::Http10,
            ..ctx
        };
        let mut out = Vec::new();
        assert!(!write_response(
            &mut out,
            &ctx10,
            200,
            None,
            &[],
            b"",
            BodyKind::Stream
        ));
        assert!(out.ends_with(b"Connection: close\r\n\r\n"));
        // RFC 9112 §2.5: the version we speak, with 1.0's framing (no
        // chunked for a stream: it ends with the connection).
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(!out.windows(8).any(|w| w == b"chunked\r"));
    }
}

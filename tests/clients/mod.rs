//! Small test clients for the push transports, written against the wire
//! format rather than the server's internals: an SSE reader (our own
//! chunked decoder feeding `EventStreamParser`, the browser's algorithm),
//! a WebSocket client that masks its frames as RFC 6455 §5.3 demands,
//! a keep-alive long-poll client, and a JSON reader for the answers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use pushwire::wire::sse::{EventStreamParser, SseEvent};
use pushwire::wire::ws_frame::{apply_mask, FrameHeader, Opcode};
use pushwire::wire::ws_handshake::accept_key;

use crate::support::{find, read_response, Response, TestServer};

/// Waits for `cond` to hold, checking every few milliseconds; panics with
/// `what` if it does not within `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `GET /stats`, one counter.
pub fn stat(server: &TestServer, name: &str) -> u64 {
    let r = crate::support::get(server, "/stats");
    assert_eq!(r.status, 200);
    let v = Json::parse(&r.text());
    v.get(name)
        .and_then(Json::as_u64)
        .unwrap_or_else(|| panic!("no {name} in {}", r.text()))
}

/// Waits until the `/stats` counter `name` satisfies `cond`.
pub fn wait_stat(server: &TestServer, name: &str, limit: Duration, cond: impl Fn(u64) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let last = stat(server, name);
        if cond(last) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on /stats {name} (last {last})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `POST /topics/{topic}[?event=]` on a fresh keep-alive connection;
/// returns the id. (Keep-alive on purpose: a publish on a connection that
/// closes after it is its own test, `publish_with_connection_close_*`.)
pub fn publish(server: &TestServer, topic: &str, event: Option<&str>, data: &str) -> String {
    let path = match event {
        Some(e) => format!("/topics/{topic}?event={e}"),
        None => format!("/topics/{topic}"),
    };
    let r = Poller::new(server.addr).post(&path, data.as_bytes());
    assert_eq!(r.status, 200, "publish: {}", r.text());
    Json::parse(&r.text())
        .get("id")
        .and_then(Json::as_str)
        .expect("id")
        .to_string()
}

/// Splits an id into `(epoch, seq)`, checking its `<epoch>-<seq>` form.
pub fn split_id(id: &str) -> (u64, u64) {
    let (e, s) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("id {id:?} has no '-'"));
    (
        e.parse().unwrap_or_else(|_| panic!("epoch of {id:?}")),
        s.parse().unwrap_or_else(|_| panic!("seq of {id:?}")),
    )
}

// ---- JSON ---------------------------------------------------------------------

/// Just enough JSON to read the server's answers (RFC 8259, strict).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document; panics (failing the test) on bad JSON.
    pub fn parse(text: &str) -> Json {
        let b = text.as_bytes();
        let mut at = 0;
        let v = parse_value(b, &mut at).unwrap_or_else(|| panic!("bad JSON: {text:?}"));
        skip_ws(b, &mut at);
        assert_eq!(at, b.len(), "trailing bytes after JSON: {text:?}");
        v
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as u64),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }

    /// A string field, panicking if it is missing.
    pub fn str_field(&self, key: &str) -> &str {
        self.get(key)
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("no string {key:?} in {self:?}"))
    }
}

fn skip_ws(b: &[u8], at: &mut usize) {
    while *at < b.len() && matches!(b[*at], b' ' | b'\t' | b'\r' | b'\n') {
        *at += 1;
    }
}

fn parse_value(b: &[u8], at: &mut usize) -> Option<Json> {
    skip_ws(b, at);
    match *b.get(*at)? {
        b'{' => {
            *at += 1;
            let mut fields = Vec::new();
            skip_ws(b, at);
            if b.get(*at) == Some(&b'}') {
                *at += 1;
                return Some(Json::Obj(fields));
            }
            loop {
                skip_ws(b, at);
                let Json::Str(k) = parse_value(b, at)? else {
                    return None;
                };
                skip_ws(b, at);
                (b.get(*at) == Some(&b':')).then_some(())?;
                *at += 1;
                let v = parse_value(b, at)?;
                fields.push((k, v));
                skip_ws(b, at);
                match b.get(*at)? {
                    b',' => *at += 1,
                    b'}' => {
                        *at += 1;
                        return Some(Json::Obj(fields));
                    }
                    _ => return None,
                }
            }
        }
        b'[' => {
            *at += 1;
            let mut items = Vec::new();
            skip_ws(b, at);
            if b.get(*at) == Some(&b']') {
                *at += 1;
                return Some(Json::Arr(items));
            }
            loop {
                items.push(parse_value(b, at)?);
                skip_ws(b, at);
                match b.get(*at)? {
                    b',' => *at += 1,
                    b']' => {
                        *at += 1;
                        return Some(Json::Arr(items));
                    }
                    _ => return None,
                }
            }
        }
        b'"' => parse_string(b, at).map(Json::Str),
        b't' if b[*at..].starts_with(b"true") => {
            *at += 4;
            Some(Json::Bool(true))
        }
        b'f' if b[*at..].starts_with(b"false") => {
            *at += 5;
            Some(Json::Bool(false))
        }
        b'n' if b[*at..].starts_with(b"null") => {
            *at += 4;
            Some(Json::Null)
        }
        _ => {
            let start = *at;
            while *at < b.len() && matches!(b[*at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                *at += 1;
            }
            std::str::from_utf8(&b[start..*at])
                .ok()?
                .parse()
                .ok()
                .map(Json::Num)
        }
    }
}

fn parse_string(b: &[u8], at: &mut usize) -> Option<String> {
    *at += 1; // the opening quote
    let mut out: Vec<u8> = Vec::new();
    loop {
        let c = *b.get(*at)?;
        *at += 1;
        match c {
            b'"' => return String::from_utf8(out).ok(),
            b'\\' => {
                let e = *b.get(*at)?;
                *at += 1;
                let ch = match e {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let hi = hex4(b, at)?;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            (b.get(*at..*at + 2)? == b"\\u").then_some(())?;
                            *at += 2;
                            let lo = hex4(b, at)?;
                            (0xDC00..0xE000).contains(&lo).then_some(())?;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            hi
                        };
                        char::from_u32(code)?
                    }
                    _ => return None,
                };
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
            // RFC 8259 §7: control characters must be escaped.
            0..=0x1F => return None,
            _ => out.push(c),
        }
    }
}

fn hex4(b: &[u8], at: &mut usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(*at..*at + 4)?).ok()?;
    *at += 4;
    u32::from_str_radix(s, 16).ok()
}

// ---- reading a response head ----------------------------------------------------

/// A response head: status and fields.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads until the end of a response head; returns it and leaves what
/// follows in `buf`.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Head {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = text.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad status line in {text:?}"));
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            return Head { status, headers };
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).expect("read head");
        assert!(n > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads into `buf` once, waiting at most until `deadline`. Returns
/// `Some(0)` at end of stream, `None` if the deadline passed.
fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Option<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    s.set_read_timeout(Some(left)).unwrap();
    let mut chunk = [0u8; 64 * 1024];
    match s.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(n)
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) if e.kind() == ErrorKind::Interrupted => Some(usize::MAX),
        // A reset ends the stream like a FIN does, for our purposes.
        Err(_) => Some(0),
    }
}

// ---- SSE ----------------------------------------------------------------------

/// An incremental chunked-body decoder (RFC 9112 §7.1), independent of
/// the server's own, so a framing bug on either side shows.
#[derive(Debug)]
enum Chunking {
    Size,
    Data(usize),
    DataEnd,
    Done,
}

/// An event stream read as a browser would: head, then (de-chunked) body
/// bytes fed to `EventStreamParser`.
pub struct SseClient {
    pub stream: TcpStream,
    pub head: Head,
    /// Undecoded bytes received.
    wire: Vec<u8>,
    /// `None` for a close-delimited body (HTTP/1.0).
    chunking: Option<Chunking>,
    /// The body as received, after de-chunking.
    pub body: Vec<u8>,
    parser: EventStreamParser,
    events: VecDeque<SseEvent>,
    pub closed: bool,
}

impl SseClient {
    /// Opens `GET path` (HTTP/1.1) with extra header lines, and expects 200.
    pub fn open(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> SseClient {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n");
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let c = SseClient::send(addr, req.as_bytes());
        assert_eq!(c.head.status, 200, "SSE {path}: {:?}", c.head);
        c
    }

    /// Sends a raw request and reads the response head; the body is read
    /// as an event stream (chunked if the head says so).
    pub fn send(addr: SocketAddr, req: &[u8]) -> SseClient {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(req).unwrap();
        let mut wire = Vec::new();
        let head = read_head(&mut stream, &mut wire);
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let mut c = SseClient {
            stream,
            head,
            wire: Vec::new(),
            chunking: chunked.then_some(Chunking::Size),
            body: Vec::new(),
            parser: EventStreamParser::new(),
            events: VecDeque::new(),
            closed: false,
        };
        c.take_wire(wire);
        c
    }

    fn take_wire(&mut self, bytes: Vec<u8>) {
        self.wire.extend_from_slice(&bytes);
        let start = self.body.len();
        match &mut self.chunking {
            None => {
                self.body.append(&mut self.wire);
            }
            Some(state) => loop {
                match *state {
                    Chunking::Size => {
                        let Some(end) = find(&self.wire, b"\r\n") else {
                            break;
                        };
                        let line = std::str::from_utf8(&self.wire[..end]).expect("size line");
                        let size = usize::from_str_radix(line.split(';').next().unwrap(), 16)
                            .unwrap_or_else(|_| panic!("bad chunk size {line:?}"));
                        assert!(size > 0 || line == "0", "chunk size line {line:?}");
                        self.wire.drain(..end + 2);
                        *state = if size == 0 {
                            Chunking::Done
                        } else {
                            Chunking::Data(size)
                        };
                    }
                    Chunking::Data(left) => {
                        if self.wire.is_empty() {
                            break;
                        }
                        let n = left.min(self.wire.len());
                        self.body.extend(self.wire.drain(..n));
                        *state = if n == left {
                            Chunking::DataEnd
                        } else {
                            Chunking::Data(left - n)
                        };
                    }
                    Chunking::DataEnd => {
                        if self.wire.len() < 2 {
                            break;
                        }
                        assert_eq!(&self.wire[..2], b"\r\n", "chunk data not ended by CRLF");
                        self.wire.drain(..2);
                        *state = Chunking::Size;
                    }
                    Chunking::Done => break,
                }
            },
        }
        let mut out = Vec::new();
        self.parser.feed(&self.body[start..], &mut out);
        self.events.extend(out);
    }

    /// The stream's last chunk (`0\r\n`) arrived.
    pub fn ended(&self) -> bool {
        matches!(self.chunking, Some(Chunking::Done))
    }

    /// Reads once (at most until `deadline`); false if nothing came.
    fn pump(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let mut got = Vec::new();
        match read_some(&mut self.stream, &mut got, deadline) {
            None => false,
            Some(0) => {
                self.closed = true;
                false
            }
            Some(_) => {
                self.take_wire(got);
                true
            }
        }
    }

    /// The next event, if one arrives within `limit`.
    pub fn next_event_within(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.closed || Instant::now() >= deadline {
                return None;
            }
            self.pump(deadline);
        }
    }

    /// The next event; panics if none comes within 5 s.
    pub fn next_event(&mut self) -> SseEvent {
        self.next_event_within(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no SSE event within 5 s (closed: {})", self.closed))
    }

    /// The next `n` events.
    pub fn events(&mut self, n: usize) -> Vec<SseEvent> {
        (0..n).map(|_| self.next_event()).collect()
    }

    /// Reads until the body holds `needle` (e.g. `b": heartbeat\n"`).
    pub fn wait_for_bytes(&mut self, needle: &[u8], limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if find(&self.body, needle).is_some() {
                return true;
            }
            if self.closed || Instant::now() >= deadline {
                return false;
            }
            self.pump(deadline);
        }
    }

    /// Reads (and keeps) everything until the server closes; true if it
    /// did within `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.closed && Instant::now() < deadline {
            self.pump(deadline);
        }
        self.closed
    }

    /// Events already parsed and not yet taken.
    pub fn pending(&self) -> usize {
        self.events.len()
    }

    /// The `retry:` value the stream set.
    pub fn retry(&self) -> Option<u64> {
        self.parser.retry()
    }
}

// ---- WebSocket ----------------------------------------------------------------

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame (1005 if it has none).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, Opcode::Close, "not a close frame: {self:?}");
        match self.payload.get(..2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => 1005,
        }
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("UTF-8 payload")
    }
}

/// The client key of RFC 6455 §1.3's example.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A WebSocket client: masks every frame (unless told not to, to test the
/// server's refusal) with a key that changes per frame.
pub struct WsClient {
    pub stream: TcpStream,
    pub head: Head,
    buf: Vec<u8>,
    mask_seed: u32,
    pub closed: bool,
}

impl WsClient {
    /// Runs the handshake on `path` and checks the 101 answer.
    pub fn connect(addr: SocketAddr, path: &str) -> WsClient {
        WsClient::connect_with(addr, path, &[])
    }

    pub fn connect_with(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> WsClient {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let head = read_head(&mut stream, &mut buf);
        assert_eq!(head.status, 101, "handshake on {path}: {head:?}");
        // RFC 6455 §1.3: the sample key's accept value.
        assert_eq!(
            head.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(
            head.header("sec-websocket-accept").unwrap(),
            accept_key(SAMPLE_KEY.as_bytes())
        );
        WsClient {
            stream,
            head,
            buf,
            mask_seed: 0x1234_5678,
            closed: false,
        }
    }

    /// Sends one frame, masked or not.
    pub fn send_frame(&mut self, fin: bool, opcode: Opcode, payload: &[u8], masked: bool) {
        self.mask_seed = self
            .mask_seed
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let key = self.mask_seed.to_be_bytes();
        let header = FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: masked.then_some(key),
            payload_len: payload.len() as u64,
        };
        let mut out = Vec::with_capacity(header.header_len() + payload.len());
        header.emit(&mut out);
        let at = out.len();
        out.extend_from_slice(payload);
        if masked {
            apply_mask(&mut out[at..], key, 0);
        }
        // The server may close while we write (1009 before the whole
        // payload is read): a write error is then expected.
        let _ = self.stream.write_all(&out);
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, Opcode::Text, text.as_bytes(), true);
    }

    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(true, Opcode::Binary, data, true);
    }

    /// Sends a close frame with `code`.
    pub fn send_close(&mut self, code: u16) {
        self.send_frame(true, Opcode::Close, &code.to_be_bytes(), true);
    }

    /// The next frame within `limit`, or `None` (timeout or end of stream).
    pub fn recv_frame_within(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some((h, len)) = FrameHeader::parse(&self.buf).expect("server frame header") {
                assert!(
                    h.mask.is_none(),
                    "RFC 6455 §5.1: a server frame is unmasked"
                );
                assert_eq!(h.rsv, 0, "no extension was negotiated");
                let total = len + h.payload_len as usize;
                if self.buf.len() >= total {
                    let payload = self.buf[len..total].to_vec();
                    self.buf.drain(..total);
                    return Some(Frame {
                        fin: h.fin,
                        opcode: h.opcode,
                        payload,
                    });
                }
            }
            if self.closed {
                return None;
            }
            match read_some(&mut self.stream, &mut self.buf, deadline) {
                None => return None,
                Some(0) => self.closed = true,
                Some(_) => {}
            }
        }
    }

    /// The next frame; panics if none comes within 5 s.
    pub fn recv_frame(&mut self) -> Frame {
        self.recv_frame_within(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no WebSocket frame within 5 s (closed: {})", self.closed))
    }

    /// The next data message (pings answered, pongs skipped, fragments
    /// joined): `(opcode of the first frame, payload)`. A close frame is
    /// returned as is.
    pub fn recv_message(&mut self) -> Frame {
        let mut first: Option<Frame> = None;
        loop {
            let f = self.recv_frame();
            match f.opcode {
                Opcode::Ping => self.send_frame(true, Opcode::Pong, &f.payload, true),
                Opcode::Pong => {}
                Opcode::Close => return f,
                Opcode::Continuation => {
                    let m = first.as_mut().expect("continuation without a start");
                    m.payload.extend_from_slice(&f.payload);
                    if f.fin {
                        m.fin = true;
                        return first.unwrap();
                    }
                }
                _ => {
                    assert!(first.is_none(), "new message inside a fragmented one");
                    if f.fin {
                        return f;
                    }
                    first = Some(f);
                }
            }
        }
    }

    /// The next data message as JSON.
    pub fn recv_json(&mut self) -> Json {
        let m = self.recv_message();
        assert_eq!(m.opcode, Opcode::Text, "expected a text message: {m:?}");
        Json::parse(m.text())
    }

    /// Reads frames until a close frame; returns its code. Fails if the
    /// connection ends (or 5 s pass) without one.
    pub fn expect_close(&mut self) -> u16 {
        loop {
            let f = self.recv_frame();
            if f.opcode == Opcode::Close {
                return f.close_code();
            }
        }
    }

    /// True if the server closes the TCP connection within `limit` (what
    /// arrives before is discarded).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.closed {
            self.buf.clear();
            match read_some(&mut self.stream, &mut self.buf, deadline) {
                None => return false,
                Some(0) => self.closed = true,
                Some(_) => {}
            }
        }
        true
    }
}

// ---- long poll ----------------------------------------------------------------

/// One message of a poll answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl Msg {
    pub fn from_json(v: &Json) -> Msg {
        assert_eq!(v.keys(), ["id", "event", "data"], "message fields: {v:?}");
        Msg {
            id: v.str_field("id").to_string(),
            event: v.str_field("event").to_string(),
            data: v.str_field("data").to_string(),
        }
    }
}

/// A poll or short-poll answer.
#[derive(Debug, Clone)]
pub struct PollAnswer {
    pub messages: Vec<Msg>,
    pub last_id: String,
    pub timeout: bool,
    pub gap: bool,
}

impl PollAnswer {
    pub fn from_response(r: &Response) -> PollAnswer {
        assert_eq!(r.status, 200, "poll: {} {}", r.status, r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = Json::parse(&r.text());
        assert_eq!(
            v.keys(),
            ["messages", "last_id", "timeout", "gap"],
            "poll body: {}",
            r.text()
        );
        PollAnswer {
            messages: v
                .get("messages")
                .and_then(Json::as_array)
                .expect("messages")
                .iter()
                .map(Msg::from_json)
                .collect(),
            last_id: v.str_field("last_id").to_string(),
            timeout: v.get("timeout").and_then(Json::as_bool).expect("timeout"),
            gap: v.get("gap").and_then(Json::as_bool).expect("gap"),
        }
    }

    pub fn data(&self) -> Vec<&str> {
        self.messages.iter().map(|m| m.data.as_str()).collect()
    }
}

/// A client that polls over one keep-alive connection.
pub struct Poller {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Poller {
    pub fn new(addr: SocketAddr) -> Poller {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Poller {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends `GET path` and returns the raw response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(path);
        self.read()
    }

    /// Sends `GET path` without waiting for the answer.
    pub fn send(&mut self, path: &str) {
        self.stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
    }

    /// Reads the next response.
    pub fn read(&mut self) -> Response {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        read_response(&mut self.stream, &mut self.buf, false)
    }

    /// `POST path` with `body` on this connection (kept alive).
    pub fn post(&mut self, path: &str, body: &[u8]) -> Response {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).unwrap();
        self.read()
    }

    /// Publishes `data` on this connection; returns the id.
    pub fn publish(&mut self, topic: &str, data: &str) -> String {
        let r = self.post(&format!("/topics/{topic}"), data.as_bytes());
        assert_eq!(r.status, 200, "publish: {}", r.text());
        Json::parse(&r.text()).str_field("id").to_string()
    }

    /// `GET path` as a poll answer.
    pub fn poll(&mut self, path: &str) -> PollAnswer {
        PollAnswer::from_response(&self.get(path))
    }
}

//! Test clients for the push transports.
//!
//! Where a test only needs what any client does — publish, poll, read a
//! topic's events or messages — it uses the library's own clients
//! (`pushwire::client`: [`HttpClient`], [`SseClient`], [`WsClient`], and
//! its strict JSON reader), re-exported here with checks of the exact
//! answer shapes on top. What stays here is what those clients will not
//! do on purpose: [`RawSse`] keeps the raw body and reads it with its own
//! chunked decoder (so a framing bug on either side shows), [`RawWs`]
//! sends unmasked, fragmented or broken frames and hands back raw frames,
//! and [`Poller`] pipelines requests on one connection.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use pushwire::client::json::{self, Value};
pub use pushwire::client::{
    Batch, ClientMessage, Delivery, HttpClient, ResponseHead, SseClient, WsClient, WsMessage,
};
use pushwire::wire::sse::{EventStreamParser, SseEvent};
use pushwire::wire::ws_frame::{write_frame, write_masked_frame, FrameHeader, Opcode};
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
    let r = HttpClient::new(server.addr).get("/stats").expect("/stats");
    assert_eq!(r.status(), 200);
    let text = r.text().expect("UTF-8 /stats");
    parse_json(text)
        .get(name)
        .and_then(Value::as_f64)
        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
        .unwrap_or_else(|| panic!("no counter {name} in {text}")) as u64
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
    HttpClient::new(server.addr)
        .post(topic, event, data)
        .unwrap_or_else(|e| panic!("publish to {topic}: {e}"))
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

// ---- JSON and the answer shapes -------------------------------------------------

/// Parses a whole JSON document with the library's strict reader;
/// panics (failing the test) on anything it refuses.
pub fn parse_json(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

/// What the tests ask of a JSON value beyond the library's accessors.
pub trait JsonExt {
    /// An object's keys, in the order written (empty for a non-object).
    fn keys(&self) -> Vec<&str>;
    /// A string member, panicking if it is missing.
    fn str_field(&self, key: &str) -> &str;
}

impl JsonExt for Value {
    fn keys(&self) -> Vec<&str> {
        match self {
            Value::Object(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    fn str_field(&self, key: &str) -> &str {
        self.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string {key:?} in {self:?}"))
    }
}

/// Checks that `v` is a message with exactly the fields
/// `{"id","event","data"}`, in that order.
fn check_message_shape(v: &Value) {
    assert_eq!(v.keys(), ["id", "event", "data"], "message fields: {v:?}");
}

/// A message as the polls and the WebSocket send it, its shape checked.
pub fn message_json(text: &str) -> ClientMessage {
    check_message_shape(&parse_json(text));
    match Delivery::from_json(text).unwrap_or_else(|e| panic!("{e}: {text}")) {
        Delivery::Message(m) => m,
        gap => panic!("expected a message, got {gap:?}"),
    }
}

/// A poll or short-poll answer, its status, type and shape checked:
/// `{"messages":[…],"last_id","timeout","gap"}`, in that order.
pub fn batch_of(status: u16, content_type: Option<&str>, text: &str) -> Batch {
    assert_eq!(status, 200, "poll: {status} {text}");
    assert_eq!(content_type, Some("application/json"));
    let v = parse_json(text);
    assert_eq!(
        v.keys(),
        ["messages", "last_id", "timeout", "gap"],
        "poll body: {text}"
    );
    for m in v
        .get("messages")
        .and_then(Value::as_array)
        .expect("messages")
    {
        check_message_shape(m);
    }
    Batch::from_json(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// [`batch_of`] a raw response.
pub fn batch(r: &Response) -> Batch {
    batch_of(r.status, r.header("content-type"), &r.text())
}

/// The data of a batch's messages.
pub trait BatchExt {
    fn data(&self) -> Vec<&str>;
}

impl BatchExt for Batch {
    fn data(&self) -> Vec<&str> {
        self.messages.iter().map(|m| m.data.as_str()).collect()
    }
}

/// Publishing and polling with the library's HTTP client, panicking on
/// failure, each answer's shape checked.
pub trait HttpExt {
    /// `POST /topics/{topic}`; returns the id.
    fn publish(&mut self, topic: &str, data: &str) -> String;
    /// `GET target` (a poll or short poll, query included) as a batch.
    fn batch(&mut self, target: &str) -> Batch;
}

impl HttpExt for HttpClient {
    fn publish(&mut self, topic: &str, data: &str) -> String {
        self.post(topic, None, data)
            .unwrap_or_else(|e| panic!("publish to {topic}: {e}"))
    }

    fn batch(&mut self, target: &str) -> Batch {
        let r = self
            .get(target)
            .unwrap_or_else(|e| panic!("GET {target}: {e}"));
        batch_of(
            r.status(),
            r.head.header("content-type"),
            r.text().expect("UTF-8 body"),
        )
    }
}

/// The next message of a library [`WsClient`] within 5 s, its shape
/// checked.
pub fn ws_message(ws: &mut WsClient) -> ClientMessage {
    ws.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match ws.recv() {
        Ok(WsMessage::Text(text)) => message_json(&text),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The next text of a library [`WsClient`] within 5 s, as JSON.
pub fn ws_json(ws: &mut WsClient) -> Value {
    ws.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match ws.recv() {
        Ok(WsMessage::Text(text)) => parse_json(&text),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// True if no message reaches a library [`WsClient`] within `limit`.
pub fn ws_quiet(ws: &mut WsClient, limit: Duration) -> bool {
    ws.set_read_timeout(Some(limit)).unwrap();
    match ws.recv() {
        Err(e) if e.is_timeout() => true,
        Err(e) => panic!("WebSocket failed: {e}"),
        Ok(_) => false,
    }
}

/// Opens a library [`SseClient`] on `topic` (resuming after
/// `last_event_id`), its reads bounded so that a test cannot hang.
pub fn sse(server: &TestServer, topic: &str, last_event_id: Option<&str>) -> SseClient {
    let mut sse = SseClient::connect(server.addr, topic, last_event_id)
        .unwrap_or_else(|e| panic!("SSE {topic}: {e}"));
    sse.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    sse
}

/// The next event of a library [`SseClient`]; panics if the stream ends
/// or its read timeout passes first.
pub fn sse_event(sse: &mut SseClient) -> SseEvent {
    match sse.next_event() {
        Ok(Some(e)) => e,
        Ok(None) => panic!("the event stream ended"),
        Err(e) => panic!("no SSE event: {e}"),
    }
}

// ---- reading a response head ----------------------------------------------------

/// Reads until the end of a response head and parses it with the
/// library's (strict) head parser; leaves what follows in `buf`.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> ResponseHead {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = ResponseHead::parse(&buf[..end + 4])
                .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&buf[..end])));
            buf.drain(..end + 4);
            return head;
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
pub struct RawSse {
    pub stream: TcpStream,
    pub head: ResponseHead,
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

impl RawSse {
    /// Opens `GET path` (HTTP/1.1) with extra header lines, and expects 200.
    pub fn open(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> RawSse {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n");
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let c = RawSse::send(addr, req.as_bytes());
        assert_eq!(c.head.status, 200, "SSE {path}: {:?}", c.head);
        c
    }

    /// Sends a raw request and reads the response head; the body is read
    /// as an event stream (chunked if the head says so).
    pub fn send(addr: SocketAddr, req: &[u8]) -> RawSse {
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
        let mut c = RawSse {
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
pub struct RawWs {
    pub stream: TcpStream,
    pub head: ResponseHead,
    buf: Vec<u8>,
    mask_seed: u32,
    pub closed: bool,
}

impl RawWs {
    /// Runs the handshake on `path` and checks the 101 answer.
    pub fn connect(addr: SocketAddr, path: &str) -> RawWs {
        RawWs::connect_with(addr, path, &[])
    }

    pub fn connect_with(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> RawWs {
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
        RawWs {
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
        let mut out = Vec::with_capacity(payload.len() + 14);
        if masked {
            write_masked_frame(&mut out, fin, opcode, payload, self.mask_seed.to_be_bytes());
        } else {
            write_frame(&mut out, fin, opcode, payload);
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
    pub fn recv_json(&mut self) -> Value {
        let m = self.recv_message();
        assert_eq!(m.opcode, Opcode::Text, "expected a text message: {m:?}");
        parse_json(m.text())
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

// ---- pipelined requests ---------------------------------------------------------

/// Requests on one keep-alive connection, written and read separately, so
/// that a test can pipeline them or leave a poll parked.
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

    /// `GET path` as a poll answer.
    pub fn batch(&mut self, path: &str) -> Batch {
        batch(&self.get(path))
    }
}

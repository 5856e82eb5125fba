//! One accepted connection and the protocol it currently speaks.

use std::time::Instant;

use mio::net::TcpStream;

use crate::hub::MessageId;
use crate::proto::http::HttpConn;
use crate::proto::ws::WsSession;
use crate::wire::chunked;
use crate::wire::http1::Version;

use super::outq::OutQueue;

/// What a connection is doing. A connection starts in `Http`; a response
/// may turn it into an event stream, a parked long poll or a WebSocket.
pub enum Mode {
    /// Reading requests and answering them (keep-alive, pipelining).
    Http(Box<HttpConn>),
    /// An SSE response in progress. Input is read only to notice a
    /// hang-up; the stream ends when the connection does.
    Sse(SseStream),
    /// A long poll waiting for a message or its deadline. Pipelined input
    /// stays buffered until it is answered.
    Parked(Box<ParkedPoll>),
    /// A WebSocket session: on a topic, or the echo endpoint.
    Ws(Box<WsConn>),
}

pub struct SseStream {
    pub topic: Box<str>,
    /// Chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
    pub chunked: bool,
    /// When the stream last carried anything (for heartbeats).
    pub last_write: Instant,
}

pub struct ParkedPoll {
    pub http: Box<HttpConn>,
    pub topic: Box<str>,
    /// The cursor the answer continues from.
    pub after: MessageId,
    pub deadline: Instant,
    pub version: Version,
    pub keep_alive: bool,
    pub head_only: bool,
}

pub struct WsConn {
    pub session: WsSession,
    /// `None` for `/echo`.
    pub topic: Option<Box<str>>,
}

/// An accepted connection.
pub struct Conn {
    pub stream: TcpStream,
    /// Received bytes not consumed yet (empty, without capacity, when
    /// idle: an idle connection holds no buffer memory).
    pub inbuf: Vec<u8>,
    pub out: OutQueue,
    pub mode: Mode,
    /// The deadline this connection is registered under in the timers.
    pub deadline: Option<Instant>,
    /// When the connection last finished a request or was accepted (the
    /// keep-alive idle clock).
    pub idle_since: Instant,
    /// WRITABLE interest is registered (only while bytes are queued).
    pub writable_interest: bool,
    /// Reading is paused: the outbound queue is over its cap, or the input
    /// buffer is full while a poll is parked.
    pub read_paused: bool,
    /// The peer closed its sending side.
    pub peer_closed: bool,
    /// Close as soon as the outbound queue is empty (or at `deadline`).
    pub close_after_flush: bool,
}

impl Conn {
    /// Ends a subscriber's stream on purpose, and closes the connection
    /// once what is queued is written: a WebSocket gets a close frame with
    /// `code` (RFC 6455 §7.4.1), a chunked SSE stream its last chunk, so it
    /// ends as a chunked body should (RFC 9112 §7.1).
    pub fn end_stream(&mut self, code: u16, reason: &str, now: Instant) {
        match &mut self.mode {
            Mode::Ws(ws) => {
                let mut out = Vec::new();
                ws.session.close(code, reason, now, &mut out);
                self.out.push(&out);
            }
            Mode::Sse(s) if s.chunked => {
                let mut last = Vec::with_capacity(5);
                chunked::encode_last(&mut last);
                self.out.push(&last);
            }
            _ => {}
        }
        self.close_after_flush = true;
        self.idle_since = now;
    }
}

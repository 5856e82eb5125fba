//! A WebSocket client (RFC 6455), blocking, on the crate's session.
//!
//! Before working on this file, read RFC 6455 §4.1 (the client's opening
//! handshake and what it must check in the answer), §5.3 (why and how a
//! client masks) and RFC 7692 §5 (offering permessage-deflate). The
//! framing rules are not here: this client drives a [`WsSession`] in the
//! [`Role::Client`] role, the same rule set the server runs, mirrored — it
//! masks what it sends, with keys from the operating system, and refuses
//! masked frames from the server.
//!
//! Received frames are reassembled (and inflated) into [`WsMessage`]s by
//! the session; pings are answered on the spot and pongs are dropped, so a
//! caller only ever sees data and the close.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::proto::ws::{MessageKind, Role, WsDeflate, WsLimits, WsSession};
use crate::wire::rand;
use crate::wire::ws_extensions::{parse_answer, DeflateParams};
use crate::wire::ws_frame::{write_masked_frame, Opcode, MAX_CONTROL_PAYLOAD};
use crate::wire::ws_handshake::accept_key;

use super::conn::Conn;
use super::{ClientError, Stats};

/// The largest message [`WsClient::recv`] reassembles (the server's own
/// default bound on `/echo`).
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// What [`WsClient::connect_with_deflate`] offers (RFC 7692 §7.1.2.2: the
/// server may choose our window; we accept any it names).
const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A whole message, or the end of the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Vec<u8>),
    /// The server's close frame: its status code and reason, if it gave
    /// one (RFC 6455 §5.5.1). The client has answered it already.
    Close(Option<(u16, String)>),
}

/// A connected WebSocket.
///
/// ```no_run
/// # fn main() -> Result<(), pushwire::client::ClientError> {
/// use pushwire::client::{WsClient, WsMessage};
/// let addr = "127.0.0.1:8080".parse().unwrap();
/// let mut ws = WsClient::connect(addr, "/topics/chat/ws")?;
/// ws.send_text("hello")?;
/// if let WsMessage::Text(json) = ws.recv()? {
///     println!("{json}"); // {"id":"…","event":"message","data":"hello"}
/// }
/// ws.close(1000, "bye")?;
/// # Ok(()) }
/// ```
pub struct WsClient {
    conn: Conn,
    session: WsSession,
    /// Messages the session completed that `recv` has not returned yet.
    inbox: VecDeque<WsMessage>,
    /// The conversation is over (close received, or the stream ended).
    closed: bool,
    stats: Stats,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("conn", &self.conn)
            .field("open", &self.session.is_open())
            .field("deflate", &self.session.deflate())
            .field("closed", &self.closed)
            .finish()
    }
}

fn client_limits() -> WsLimits {
    WsLimits {
        max_frame_bytes: DEFAULT_MAX_MESSAGE as u64,
        max_message_bytes: DEFAULT_MAX_MESSAGE,
        max_fragments: usize::MAX,
        close_timeout: Duration::from_secs(5),
        // The client drives no timers; these never fire.
        ping_interval: Duration::MAX,
        pong_timeout: Duration::MAX,
    }
}

impl WsClient {
    /// Connects and runs the opening handshake for `target` (a path with
    /// its query, e.g. `/topics/chat/ws?after=1712345678-41`).
    pub fn connect(addr: SocketAddr, target: &str) -> Result<WsClient, ClientError> {
        Self::connect_timeout(addr, target, None)
    }

    /// [`connect`](Self::connect), with a bound on connecting and on each
    /// read and write (also after the handshake: see
    /// [`set_read_timeout`](Self::set_read_timeout)).
    pub fn connect_timeout(
        addr: SocketAddr,
        target: &str,
        timeout: Option<Duration>,
    ) -> Result<WsClient, ClientError> {
        Self::open(addr, target, timeout, false)
    }

    /// [`connect_timeout`](Self::connect_timeout), offering
    /// permessage-deflate (RFC 7692). Whether the server accepted is
    /// [`deflate`](Self::deflate); messages are inflated either way.
    pub fn connect_with_deflate(
        addr: SocketAddr,
        target: &str,
        timeout: Option<Duration>,
    ) -> Result<WsClient, ClientError> {
        Self::open(addr, target, timeout, true)
    }

    fn open(
        addr: SocketAddr,
        target: &str,
        timeout: Option<Duration>,
        offer_deflate: bool,
    ) -> Result<WsClient, ClientError> {
        let mut stats = Stats::default();
        let mut conn = Conn::connect(addr, timeout, &mut stats)?;
        // RFC 6455 §4.1: "a randomly selected 16-byte value that has been
        // base64-encoded".
        let key = STANDARD.encode(random_bytes::<16>());
        let extensions = if offer_deflate {
            format!("Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n")
        } else {
            String::new()
        };
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
        );
        stats.requests += 1;
        conn.send(request.as_bytes(), &mut stats)?;
        let head = conn.read_head(&mut stats)?;
        // RFC 6455 §4.1, the client's checks of the answer, in order:
        // 1. anything but 101 is ordinary HTTP (an error here).
        if head.status != 101 {
            let body = super::http::read_body(
                &mut conn,
                head.framing(false)
                    .unwrap_or(super::conn::Framing::Length(0)),
                64 * 1024,
                &mut stats,
            )
            .unwrap_or_default();
            return Err(ClientError::Status {
                status: head.status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        // 2, 3. "Upgrade: websocket" and "Connection: Upgrade" (tokens,
        //    case-insensitive), else "the client MUST _Fail the WebSocket
        //    Connection_".
        if !head.has_token("Upgrade", "websocket") || !head.has_token("Connection", "Upgrade") {
            return Err(ClientError::Protocol(
                "101 without Upgrade: websocket / Connection: Upgrade".into(),
            ));
        }
        // 4. Sec-WebSocket-Accept must be base64(SHA-1(key + GUID)): proof
        //    that the server read *this* handshake, not a cached answer.
        if head.header("Sec-WebSocket-Accept") != Some(accept_key(key.as_bytes()).as_str()) {
            return Err(ClientError::Protocol("wrong Sec-WebSocket-Accept".into()));
        }
        // 5. An extension we did not offer, or an answer that is not one
        //    our offer allows (RFC 7692 §5), fails the connection. 6. We
        //    asked for no subprotocol, so the server may not pick one.
        let deflate = match (head.header("Sec-WebSocket-Extensions"), offer_deflate) {
            (None, _) => None,
            (Some(answer), true) => Some(parse_answer(answer.as_bytes()).ok_or_else(|| {
                ClientError::Protocol(format!("unacceptable extension answer: {answer}"))
            })?),
            (Some(_), false) => {
                return Err(ClientError::Protocol(
                    "server chose an extension we did not offer".into(),
                ))
            }
        };
        if head.header("Sec-WebSocket-Protocol").is_some() {
            return Err(ClientError::Protocol(
                "server chose a subprotocol we did not offer".into(),
            ));
        }
        let mut session = WsSession::with_role(Role::Client, client_limits(), Instant::now());
        session.set_deflate(deflate.map(|params| WsDeflate {
            params,
            level: 6,
            threshold: 0,
        }));
        Ok(WsClient {
            conn,
            session,
            inbox: VecDeque::new(),
            closed: false,
            stats,
        })
    }

    /// The permessage-deflate terms the server agreed to, if any.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.session.deflate().map(|d| d.params)
    }

    /// Bounds each read. With a timeout set, [`recv`](Self::recv) returns
    /// an `Io` error of kind `WouldBlock` or `TimedOut` when nothing came
    /// in time; call it again to go on: a frame that was half read stays
    /// with the session, and a message half reassembled stays kept.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.conn.stream.set_read_timeout(timeout)?;
        Ok(())
    }

    /// The traffic so far (the handshake counts as one request).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sends one text message in one frame (compressed if agreed).
    pub fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_frame(Opcode::Text, text.as_bytes())
    }

    /// Sends one binary message in one frame (compressed if agreed).
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.send_frame(Opcode::Binary, data)
    }

    /// Sends a ping (its pong is consumed by [`recv`](Self::recv)).
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.send_frame(Opcode::Ping, payload)
    }

    /// Sends one frame, masked with a fresh key (RFC 6455 §5.3: "The
    /// masking key MUST be derived from a strong source of entropy", new
    /// for each frame, so that script-chosen payloads cannot steer the
    /// bytes an intermediary sees). Data, ping, pong and close go through
    /// the session; any other opcode is written as it is (a test tool's
    /// way to send what no session would).
    pub fn send_frame(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), ClientError> {
        if !self.session.is_open() {
            return Err(ClientError::Protocol("close already sent".into()));
        }
        if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(ClientError::Protocol(
                "control frame payload over 125 bytes".into(),
            ));
        }
        let mut out = Vec::new();
        match opcode {
            Opcode::Text => self.session.send(MessageKind::Text, payload, &mut out),
            Opcode::Binary => self.session.send(MessageKind::Binary, payload, &mut out),
            Opcode::Ping => self.session.ping(payload, &mut out),
            Opcode::Pong => self.session.pong(payload, &mut out),
            Opcode::Close => {
                let (code, reason) = match payload {
                    [hi, lo, reason @ ..] => (
                        u16::from_be_bytes([*hi, *lo]),
                        String::from_utf8_lossy(reason).into_owned(),
                    ),
                    _ => (1005, String::new()),
                };
                self.session.close(code, &reason, Instant::now(), &mut out);
            }
            other => write_masked_frame(&mut out, true, other, payload, random_bytes::<4>()),
        }
        self.conn.send(&out, &mut self.stats)?;
        Ok(())
    }

    /// The next message. Pings are answered with a pong carrying the same
    /// payload (§5.5.2) and pongs are dropped on the way. A close frame
    /// from the server is answered (§5.5.1: "the endpoint MUST send a Close
    /// frame in response") and returned as [`WsMessage::Close`]; after
    /// that, or if the server just hung up, this returns
    /// [`ClientError::Closed`]. A frame that breaks the protocol fails the
    /// connection (the session sends the close frame of the broken rule)
    /// and comes back as [`ClientError::Protocol`].
    pub fn recv(&mut self) -> Result<WsMessage, ClientError> {
        loop {
            if let Some(message) = self.inbox.pop_front() {
                return Ok(message);
            }
            if self.closed {
                return Err(ClientError::Closed);
            }
            if self.session.wants_close_transport() {
                self.closed = true;
                if let Some(e) = self.session.error() {
                    return Err(ClientError::Protocol(format!("WebSocket: {e}")));
                }
                continue;
            }
            self.read_some()?;
        }
    }

    /// Hands what is buffered to the session, or reads more when it could
    /// use none of it.
    fn read_some(&mut self) -> Result<(), ClientError> {
        let was_open = self.session.is_open();
        let mut input = self.conn.buffered().to_vec();
        let mut out = Vec::new();
        let mut got = Vec::new();
        let used = self.session.handle_read(
            &mut input,
            Instant::now(),
            &mut out,
            &mut |kind, payload, _| {
                got.push(match kind {
                    // The session delivers only valid UTF-8 as text.
                    MessageKind::Text => {
                        WsMessage::Text(String::from_utf8_lossy(payload).into_owned())
                    }
                    MessageKind::Binary => WsMessage::Binary(payload.to_vec()),
                })
            },
        );
        self.conn.consume(used);
        self.inbox.extend(got);
        if !out.is_empty() {
            // Pongs and the close echo; the server may be gone already.
            let _ = self.conn.send(&out, &mut self.stats);
        }
        let peer_closed = self.session.wants_close_transport() && self.session.error().is_none();
        if was_open && peer_closed {
            // The server's close frame, answered by the session.
            let reason = match self.session.close_code() {
                None | Some(1005) | Some(1006) => None,
                Some(code) => Some((
                    code,
                    self.session.peer_close_reason().unwrap_or("").to_string(),
                )),
            };
            self.inbox.push_back(WsMessage::Close(reason));
        }
        if used > 0 || self.session.wants_close_transport() {
            return Ok(());
        }
        if self.conn.fill(&mut self.stats)? == 0 {
            self.session.handle_eof();
            self.closed = true;
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// Starts the closing handshake and waits for the server's close
    /// frame (messages still in flight are dropped), then shuts the
    /// socket. RFC 6455 §7.1.1: the server closes the TCP connection
    /// first, so a client waits for the end of the stream.
    pub fn close(mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        if self.session.is_open() && !self.closed {
            let mut out = Vec::new();
            self.session.close(code, reason, Instant::now(), &mut out);
            self.conn.send(&out, &mut self.stats)?;
        }
        if self.conn.stream.read_timeout()?.is_none() {
            self.conn
                .stream
                .set_read_timeout(Some(Duration::from_secs(5)))?;
        }
        while !self.closed && !self.session.wants_close_transport() {
            match self.read_some() {
                Ok(()) => {}
                Err(ClientError::Closed) => break,
                Err(e) => return Err(e),
            }
        }
        let _ = self.conn.stream.shutdown(std::net::Shutdown::Both);
        Ok(())
    }
}

/// `N` unpredictable bytes from the operating system's generator
/// ([`rand::fill`]): handshake nonces and masking keys.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    rand::bytes::<N>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes::<16>();
        let b = random_bytes::<16>();
        assert_ne!(a, b);
        assert_ne!(random_bytes::<4>(), random_bytes::<4>());
    }
}

//! A WebSocket client (RFC 6455), blocking, on the crate's frame codec.
//!
//! Before working on this file, read RFC 6455 §4.1 (the client's opening
//! handshake and what it must check in the answer), §5.3 (why and how a
//! client masks) and §5.4–§5.5 (fragments and control frames). The server
//! side of all this is `proto/ws.rs`; this is its mirror image: it masks
//! what it sends and refuses masked frames from the server.
//!
//! Received frames are reassembled into [`WsMessage`]s; pings are answered
//! on the spot and pongs are dropped, so a caller only ever sees data and
//! the close.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::wire::ws_frame::{write_masked_frame, FrameHeader, Opcode, MAX_CONTROL_PAYLOAD};
use crate::wire::ws_handshake::accept_key;

use super::conn::Conn;
use super::{ClientError, Stats};

/// The largest message [`WsClient::recv`] reassembles (the server's own
/// default bound on `/echo`).
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

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
#[derive(Debug)]
pub struct WsClient {
    conn: Conn,
    /// The opcode and bytes of a fragmented message being reassembled.
    partial: Option<(Opcode, Vec<u8>)>,
    max_message: usize,
    /// We sent a close frame.
    close_sent: bool,
    /// The conversation is over (close received, or the stream ended).
    closed: bool,
    stats: Stats,
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
        let mut stats = Stats::default();
        let mut conn = Conn::connect(addr, timeout, &mut stats)?;
        // RFC 6455 §4.1: "a randomly selected 16-byte value that has been
        // base64-encoded".
        let key = STANDARD.encode(random_bytes::<16>());
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
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
        // 5, 6. We asked for no extension and no subprotocol, so the
        //    server may not pick one.
        if head.header("Sec-WebSocket-Extensions").is_some()
            || head.header("Sec-WebSocket-Protocol").is_some()
        {
            return Err(ClientError::Protocol(
                "server chose an extension or subprotocol we did not offer".into(),
            ));
        }
        Ok(WsClient {
            conn,
            partial: None,
            max_message: DEFAULT_MAX_MESSAGE,
            close_sent: false,
            closed: false,
            stats,
        })
    }

    /// Bounds each read. With a timeout set, [`recv`](Self::recv) returns
    /// an `Io` error of kind `WouldBlock` or `TimedOut` when nothing came
    /// in time; call it again to go on: a frame that was half read stays
    /// buffered, and a message half reassembled stays kept.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.conn.stream.set_read_timeout(timeout)?;
        Ok(())
    }

    /// The traffic so far (the handshake counts as one request).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Sends one text message in one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_frame(Opcode::Text, text.as_bytes())
    }

    /// Sends one binary message in one frame.
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
    /// bytes an intermediary sees).
    pub fn send_frame(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), ClientError> {
        if self.close_sent {
            return Err(ClientError::Protocol("close already sent".into()));
        }
        if opcode.is_control() && payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(ClientError::Protocol(
                "control frame payload over 125 bytes".into(),
            ));
        }
        if opcode == Opcode::Close {
            self.close_sent = true;
        }
        let mut frame = Vec::new();
        write_masked_frame(&mut frame, true, opcode, payload, random_bytes::<4>());
        self.conn.send(&frame, &mut self.stats)?;
        Ok(())
    }

    /// The next message. Pings are answered with a pong carrying the same
    /// payload (§5.5.2) and pongs are dropped on the way. A close frame
    /// from the server is answered (§5.5.1: "the endpoint MUST send a Close
    /// frame in response") and returned as [`WsMessage::Close`]; after
    /// that, or if the server just hung up, this returns
    /// [`ClientError::Closed`].
    pub fn recv(&mut self) -> Result<WsMessage, ClientError> {
        loop {
            if self.closed {
                return Err(ClientError::Closed);
            }
            if let Some(message) = self.next_frame()? {
                return Ok(message);
            }
        }
    }

    /// Reads and handles one frame; a whole message when it completes one.
    fn next_frame(&mut self) -> Result<Option<WsMessage>, ClientError> {
        let fail = |why: &str| ClientError::Protocol(format!("WebSocket: {why}"));
        let (header, header_len) = loop {
            match FrameHeader::parse(self.conn.buffered()) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(e) => return Err(fail(&e.to_string())),
            }
            if self.conn.fill(&mut self.stats)? == 0 {
                self.closed = true;
                return Err(ClientError::Closed);
            }
        };
        // §5.1: "A client MUST close a connection if it detects a masked
        // frame." §5.2: RSV bits only with a negotiated extension (none).
        if header.mask.is_some() {
            return Err(fail("masked frame from the server"));
        }
        if header.rsv != 0 {
            return Err(fail("RSV bit set without an extension"));
        }
        if header.opcode.is_control() && (!header.fin || header.payload_len > 125) {
            // §5.5: "All control frames MUST have a payload length of 125
            // bytes or less and MUST NOT be fragmented."
            return Err(fail("fragmented or oversized control frame"));
        }
        let so_far = self.partial.as_ref().map_or(0, |(_, b)| b.len());
        let len = usize::try_from(header.payload_len)
            .ok()
            .filter(|&n| so_far.saturating_add(n) <= self.max_message)
            .ok_or_else(|| fail("message larger than the client's bound"))?;
        // Wait for the whole frame before consuming any of it, so that a
        // read timeout in the middle loses nothing.
        while self.conn.buffered().len() < header_len + len {
            if self.conn.fill(&mut self.stats)? == 0 {
                self.closed = true;
                return Err(ClientError::Closed);
            }
        }
        let payload = self.conn.buffered()[header_len..header_len + len].to_vec();
        self.conn.consume(header_len + len);

        match header.opcode {
            Opcode::Ping => {
                if !self.close_sent {
                    self.send_frame(Opcode::Pong, &payload)?;
                }
                Ok(None)
            }
            Opcode::Pong => Ok(None),
            Opcode::Close => {
                let reason = match payload.len() {
                    0 => None,
                    1 => return Err(fail("close frame with a 1-byte payload")),
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        let text = String::from_utf8(payload[2..].to_vec())
                            .map_err(|_| fail("close reason is not UTF-8"))?;
                        Some((code, text))
                    }
                };
                if !self.close_sent {
                    // Echo the status code, as §5.5.1 suggests.
                    let echo = reason.as_ref().map(|(c, _)| c.to_be_bytes().to_vec());
                    let _ = self.send_frame(Opcode::Close, echo.as_deref().unwrap_or(&[]));
                }
                self.closed = true;
                Ok(Some(WsMessage::Close(reason)))
            }
            Opcode::Text | Opcode::Binary => {
                if self.partial.is_some() {
                    // §5.4: a new data frame inside a fragmented message.
                    return Err(fail("data frame inside a fragmented message"));
                }
                if header.fin {
                    return finish(header.opcode, payload).map(Some);
                }
                self.partial = Some((header.opcode, payload));
                Ok(None)
            }
            Opcode::Continuation => {
                let Some((opcode, mut data)) = self.partial.take() else {
                    return Err(fail("continuation frame with no message to continue"));
                };
                data.extend_from_slice(&payload);
                if header.fin {
                    return finish(opcode, data).map(Some);
                }
                self.partial = Some((opcode, data));
                Ok(None)
            }
            Opcode::Reserved(op) => Err(fail(&format!("reserved opcode 0x{op:x}"))),
        }
    }

    /// Starts the closing handshake and waits for the server's close
    /// frame (messages still in flight are dropped), then shuts the
    /// socket. RFC 6455 §7.1.1: the server closes the TCP connection
    /// first, so a client waits for the end of the stream.
    pub fn close(mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        if !self.close_sent && !self.closed {
            let mut payload = code.to_be_bytes().to_vec();
            // Cut the reason at a char boundary within the 125-byte limit.
            let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload.extend_from_slice(&reason.as_bytes()[..end]);
            self.send_frame(Opcode::Close, &payload)?;
        }
        if self.conn.stream.read_timeout()?.is_none() {
            self.conn
                .stream
                .set_read_timeout(Some(Duration::from_secs(5)))?;
        }
        while !self.closed {
            match self.next_frame() {
                Ok(_) => {}
                Err(ClientError::Closed) => break,
                Err(e) => return Err(e),
            }
        }
        let _ = self.conn.stream.shutdown(std::net::Shutdown::Both);
        Ok(())
    }
}

fn finish(opcode: Opcode, data: Vec<u8>) -> Result<WsMessage, ClientError> {
    if opcode == Opcode::Text {
        // §8.1: a text message is UTF-8, checked once it is whole (a
        // character may be split between fragments).
        String::from_utf8(data)
            .map(WsMessage::Text)
            .map_err(|_| ClientError::Protocol("WebSocket: text message is not UTF-8".into()))
    } else {
        Ok(WsMessage::Binary(data))
    }
}

/// `N` unpredictable bytes from the standard library alone.
///
/// `RandomState::new()` carries SipHash keys drawn from the operating
/// system's random source (once per thread, then varied per call), so
/// hashing a counter and the clock with it gives output that someone
/// without those keys cannot predict. Good enough for handshake keys and
/// masking keys, whose job is to be unguessable by a script choosing
/// payloads; not meant for secrets.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.write_u128(nanos);
        let word = h.finish().to_ne_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
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

    #[test]
    fn text_must_be_utf8() {
        assert_eq!(
            finish(Opcode::Text, "é".into()).unwrap(),
            WsMessage::Text("é".into())
        );
        assert!(finish(Opcode::Text, vec![0xC3]).is_err());
        assert_eq!(
            finish(Opcode::Binary, vec![0xC3]).unwrap(),
            WsMessage::Binary(vec![0xC3])
        );
    }
}

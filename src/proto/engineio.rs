//! Engine.IO v4 sessions, server side, sans-IO.
//!
//! Before working on this file, read the Engine.IO protocol
//! (socketio/engine.io-protocol, README: "Handshake", "Heartbeat",
//! "Upgrade", "Message"), then `wire/engineio.rs`, and for behaviour the
//! protocol leaves open, the reference server: engine.io `lib/server.ts`
//! (`verify`, `handshake`), `lib/socket.ts` (`schedulePing`, `onPacket`,
//! `maybeUpgrade`, `onClose`) and `lib/transports/polling.ts`
//! (`onPollRequest`, `onDataRequest`, `onClose`).
//!
//! # Driving the sessions
//!
//! [`Sessions`] is the whole Engine.IO server: a table of sessions keyed by
//! sid. The server core routes to it, and calls, as things happen:
//!
//! - [`handle_http`](Sessions::handle_http) for every polling request on
//!   the Engine.IO path, with its method, query string and complete body.
//!   The answer is either a response to write now, or [`HttpAnswer::Park`]:
//!   the GET waits, and is answered later by a [`Transmit::PollResponse`].
//! - [`handle_ws_request`](Sessions::handle_ws_request) for a WebSocket
//!   upgrade request on the path, *before* answering 101: an error is a
//!   plain HTTP response; a sid binds the WebSocket to its session.
//! - [`handle_ws_message`](Sessions::handle_ws_message) for each complete
//!   WebSocket message, and [`handle_ws_closed`](Sessions::handle_ws_closed)
//!   when that WebSocket ends.
//! - [`handle_timeout`](Sessions::handle_timeout) when
//!   [`poll_timeout`](Sessions::poll_timeout) has come.
//!
//! After each call it drains [`poll_transmit`](Sessions::poll_transmit)
//! (bytes for a parked GET or a WebSocket) and
//! [`poll_event`](Sessions::poll_event) (messages for the application,
//! upgrades, closes). [`send`](Sessions::send) and
//! [`close`](Sessions::close) are the application's side.
//!
//! Nothing here reads the clock or touches a socket: `now` comes in, and
//! the scenario tests run whole sessions in simulated time.
//!
//! # Routing, for the server core
//!
//! | request on the Engine.IO path | call | answer |
//! |---|---|---|
//! | any method, no `Upgrade: websocket` | `handle_http(method, query, body)` once the body is complete | `Respond`/`Opened`: write it; `Park(sid)`: hold the request for that sid's next `Transmit::PollResponse` |
//! | `GET` with `Upgrade: websocket` | `handle_ws_request(query)` before the 101 | `Err(e)`: `e.answer()` as a plain response; `Ok(sid)`: 101, then the WebSocket belongs to `sid` |
//! | a WebSocket message | `handle_ws_message(sid, binary, data)` | an `Err` has already queued `Transmit::CloseWs` |
//! | the WebSocket ends | `handle_ws_closed(sid)` | |
//! | a parked GET's connection ends | `handle_poll_aborted(sid)` | the session closes, as the reference does |
//! | the head of a `POST` (every one, before `handle_http`) | `handle_post_head(query)` | `Err(e)`: `e.answer()` once its body is in; the session has closed |
//! | a POST's connection ends before its body | `handle_post_aborted(query)` | |
//!
//! Set the WebSocket's message limit to `max_payload` (or above: the
//! session checks it too). Bodies are handed over whole; the heads are
//! what lets a session see two POSTs overlap, as the reference does
//! (one GET and one POST at a time). CORS and origin checks belong to
//! the core, before these calls.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use thiserror::Error;

use crate::wire::engineio::{
    decode_payload, encode_payload, Data, EioError, ErrorCode, OpenPacket, Packet, PacketType,
    PayloadLimits, Query,
};

/// The settings of an Engine.IO server.
#[derive(Clone, Debug)]
pub struct EioConfig {
    /// Time between the server's pings (the handshake's `pingInterval`).
    pub ping_interval: Duration,
    /// Time the client has to answer a ping with a pong (`pingTimeout`).
    /// Without the pong the session closes ("ping timeout"); this is also
    /// how an abandoned session expires.
    pub ping_timeout: Duration,
    /// Largest polling request body and WebSocket message (`maxPayload`).
    /// Over it: 413 (polling) or close 1009 (WebSocket), and the session
    /// closes.
    pub max_payload: usize,
    /// Time a WebSocket that wants to take over a polling session has to
    /// finish the upgrade (`2probe` … `5`). After it the WebSocket is
    /// closed and the session goes on polling.
    pub upgrade_timeout: Duration,
    /// Most sessions at once. A handshake over it gets 503 and no session.
    pub max_sessions: usize,
    /// Most packets waiting for the client's next poll. A session over it
    /// is closed ("buffer full"): its client has stopped polling, or polls
    /// slower than the application sends.
    pub max_buffered_packets: usize,
}

impl Default for EioConfig {
    fn default() -> Self {
        EioConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            upgrade_timeout: Duration::from_millis(10_000),
            max_sessions: 10_000,
            max_buffered_packets: 1_000,
        }
    }
}

/// A session id: 20 random bytes, as 27 characters of base64url (RFC 4648
/// §5). 160 bits cannot be guessed, and the sid is all that authenticates
/// a polling request to its session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; Sid::LEN]);

impl Sid {
    /// Characters in a sid.
    pub const LEN: usize = 27;

    pub fn from_bytes(bytes: [u8; 20]) -> Sid {
        let mut text = [0u8; Sid::LEN];
        // 20 bytes are exactly 27 characters without padding.
        let _ = URL_SAFE_NO_PAD.encode_slice(bytes, &mut text);
        Sid(text)
    }

    /// Reads a sid sent back by a client; anything that is not 27
    /// base64url characters is no sid of ours.
    pub fn parse(text: &str) -> Option<Sid> {
        base64url_chars(text.as_bytes()).map(Sid)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exactly `N` base64url characters (RFC 4648 §5, no padding), as they
/// came; anything else is `None`. Sids, and the node tags that start
/// them in a cluster, are read with it.
pub fn base64url_chars<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if !text
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    {
        return None;
    }
    text.try_into().ok()
}

/// A fresh sid from the kernel's random source (`/dev/urandom`).
pub fn random_sid() -> io::Result<Sid> {
    let mut bytes = [0u8; 20];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(Sid::from_bytes(bytes))
}

/// Where sids come from: [`random_sid`] in a server, a counter in tests.
pub type SidSource = Box<dyn FnMut() -> io::Result<Sid> + Send>;

/// The two transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Polling,
    WebSocket,
}

impl Transport {
    pub fn from_query(name: &str) -> Option<Transport> {
        match name {
            "polling" => Some(Transport::Polling),
            "websocket" => Some(Transport::WebSocket),
            _ => None,
        }
    }
}

/// Why a session ended (the reference server's close reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close packet, or its WebSocket ended.
    TransportClose,
    /// The transport broke a rule: a second GET while one was waiting.
    TransportError,
    /// No pong within `pingTimeout` of a ping.
    PingTimeout,
    /// The client sent a packet that is not one.
    ParseError,
    /// A polling body or WebSocket message over `maxPayload`.
    PayloadTooLarge,
    /// More than `max_buffered_packets` waiting for a poll.
    BufferFull,
    /// The application closed it.
    ForcedClose,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::PayloadTooLarge => "payload too large",
            CloseReason::BufferFull => "buffer full",
            CloseReason::ForcedClose => "forced close",
        }
    }
}

/// What a session tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EioEvent {
    /// The session was opened by a handshake (always its first event).
    Opened,
    /// A message from the client.
    Message(Data),
    /// The session moved from polling to its WebSocket.
    Upgraded,
    /// The session ended; it takes no more input and sends nothing more.
    Closed(CloseReason),
}

/// Bytes for the server to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Answer the parked GET: 200, [`POLL_CONTENT_TYPE`], this body.
    PollResponse(Vec<u8>),
    /// One message on the session's WebSocket.
    WsMessage { binary: bool, data: Vec<u8> },
    /// Close the session's WebSocket (after the messages before this) with
    /// this close code.
    CloseWs(u16),
}

/// The content type of polling responses (engine.io polling.ts).
pub const POLL_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// The content type of the `ok` that answers a POST.
pub const POST_CONTENT_TYPE: &str = "text/html";
/// The content type of an error body.
pub const ERROR_CONTENT_TYPE: &str = "application/json";

/// A request the sessions refuse, named after the rule it breaks. Each
/// carries its HTTP status and, where the reference server has one, its
/// Engine.IO error code for the `{"code","message"}` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SessionError {
    /// `transport` missing or neither `polling` nor `websocket`.
    #[error("Transport unknown")]
    TransportUnknown,
    /// The sid names no open session (never did, expired, or closed).
    #[error("Session ID unknown")]
    UnknownSid,
    /// A handshake (no sid) must be a GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// A request on a transport the session is not using: polling after
    /// the upgrade, a second WebSocket, a method other than GET and POST.
    #[error("Bad request")]
    TransportMismatch,
    /// polling.ts `onPollRequest`: "overlap from client", a GET while
    /// another is waiting. The session closes, as the reference does.
    #[error("Bad request")]
    DuplicateGet,
    /// polling.ts `onDataRequest`: "data request overlap from client", a
    /// POST while another one's body is still coming. The session closes.
    #[error("Bad request")]
    DuplicatePost,
    /// `EIO` is not `4`.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// The body or message is not a valid payload, or is over maxPayload.
    #[error("{0}")]
    Packet(#[from] EioError),
    /// [`EioConfig::max_sessions`] sessions are open already.
    #[error("too many sessions")]
    TooManySessions,
    /// The random source failed: no sid can be made.
    #[error("no random sid")]
    NoRandomness,
}

impl SessionError {
    pub fn status(&self) -> u16 {
        match self {
            SessionError::Packet(e) => e.status(),
            SessionError::TooManySessions => 503,
            SessionError::NoRandomness => 500,
            _ => self.code().map_or(400, ErrorCode::status),
        }
    }

    /// The reference server's error code for the JSON body.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            SessionError::TransportUnknown => ErrorCode::TransportUnknown,
            SessionError::UnknownSid => ErrorCode::UnknownSid,
            SessionError::BadHandshakeMethod => ErrorCode::BadHandshakeMethod,
            SessionError::TransportMismatch
            | SessionError::DuplicateGet
            | SessionError::DuplicatePost => ErrorCode::BadRequest,
            SessionError::UnsupportedProtocolVersion => ErrorCode::UnsupportedProtocolVersion,
            SessionError::Packet(EioError::PayloadTooLarge { .. }) => return None,
            SessionError::Packet(_) => ErrorCode::BadRequest,
            SessionError::TooManySessions | SessionError::NoRandomness => return None,
        })
    }

    /// The response for it: the JSON body when there is a code, else the
    /// error's text.
    pub fn answer(&self) -> HttpAnswer {
        let mut body = Vec::new();
        let content_type = match self.code() {
            Some(code) => {
                code.write_body(&mut body);
                ERROR_CONTENT_TYPE
            }
            None => {
                body.extend_from_slice(self.to_string().as_bytes());
                POLL_CONTENT_TYPE
            }
        };
        HttpAnswer::Respond {
            status: self.status(),
            content_type,
            body,
        }
    }
}

/// The answer to a polling request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpAnswer {
    Respond {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A handshake opened session `sid`: answer 200,
    /// [`POLL_CONTENT_TYPE`], `body` (the open packet). The sid is here so
    /// the server can keep what it knows of the handshake request (its
    /// origin, its token) for the session's later requests.
    Opened { sid: Sid, body: Vec<u8> },
    /// Keep the GET open: a [`Transmit::PollResponse`] for this sid
    /// answers it.
    Park(Sid),
}

impl HttpAnswer {
    fn ok(content_type: &'static str, body: Vec<u8>) -> HttpAnswer {
        HttpAnswer::Respond {
            status: 200,
            content_type,
            body,
        }
    }
}

/// What a GET gets from a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollOutcome {
    /// Answer now with this payload.
    Respond(Vec<u8>),
    /// Nothing to send yet: park the request.
    Park,
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// Closed by the application on polling with no GET waiting: the close
    /// packet waits for the next GET, until this time.
    Closing {
        until: Instant,
    },
    Closed,
}

/// The polling → WebSocket upgrade (protocol README, "Upgrade").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upgrade {
    None,
    /// A WebSocket is attached; its `2probe` has not come yet.
    Attached {
        until: Instant,
    },
    /// `3probe` was sent; waiting for `5`. Meanwhile a GET with nothing to
    /// send gets a noop at once, so the client's poll ends and it can
    /// pause polling (socket.ts `maybeUpgrade`, its `check`).
    Probed {
        until: Instant,
    },
}

/// One Engine.IO session. Usually driven through [`Sessions`].
pub struct EioSession {
    sid: Sid,
    config: EioConfig,
    transport: Transport,
    phase: Phase,
    upgrade: Upgrade,
    /// A GET is parked, waiting for packets.
    get_parked: bool,
    /// polling.ts `dataReq`: a POST's head has come and its body has not
    /// been handed over yet ([`handle_post_head`](Self::handle_post_head)).
    post_open: bool,
    /// Packets for the next poll (polling only).
    outbox: Vec<Packet>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<EioEvent>,
    /// When the next ping is due (while no pong is awaited).
    next_ping: Instant,
    /// When the awaited pong is late.
    pong_deadline: Option<Instant>,
    /// The deadline [`Sessions`] has this session filed under in its
    /// timer index (what `poll_timeout` said when it last looked).
    filed: Option<Instant>,
}

impl EioSession {
    /// Opens a session on `transport`: the open packet is the first thing
    /// it sends (the handshake GET's answer, or the first WebSocket
    /// message), and the first ping is due one `pingInterval` from now.
    pub fn new(sid: Sid, transport: Transport, config: EioConfig, now: Instant) -> EioSession {
        let upgrades: &[&str] = match transport {
            Transport::Polling => &["websocket"],
            Transport::WebSocket => &[],
        };
        let open = OpenPacket {
            sid: sid.as_str(),
            upgrades,
            ping_interval_ms: config.ping_interval.as_millis() as u64,
            ping_timeout_ms: config.ping_timeout.as_millis() as u64,
            max_payload: config.max_payload,
        }
        .to_text();
        let mut s = EioSession {
            sid,
            next_ping: now + config.ping_interval,
            config,
            transport,
            phase: Phase::Open,
            upgrade: Upgrade::None,
            get_parked: false,
            post_open: false,
            outbox: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            pong_deadline: None,
            filed: None,
        };
        s.send_packet(Packet::text(PacketType::Open, &open[1..]));
        s.events.push_back(EioEvent::Opened);
        s
    }

    pub fn sid(&self) -> Sid {
        self.sid
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Open: not closing or closed.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Packets or transmits wait to be handed out: a message written to
    /// the transport directly now would overtake them.
    pub fn has_pending(&self) -> bool {
        !self.transmits.is_empty() || !self.outbox.is_empty()
    }

    /// Packets waiting for the client's next poll (polling only), and
    /// their bytes: the packets are what `max_buffered_packets` counts.
    pub fn buffered(&self) -> (usize, usize) {
        let bytes = self.outbox.iter().map(|p| p.data.len()).sum();
        (self.outbox.len(), bytes)
    }

    /// Closed and nothing left to hand out: the table may drop it.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Closed && self.transmits.is_empty() && self.events.is_empty()
    }

    /// A polling GET. Judges the clock first, so that a request that comes
    /// after the session's deadline finds it closed even if the timer has
    /// not fired yet.
    pub fn handle_poll_get(&mut self, now: Instant) -> Result<PollOutcome, SessionError> {
        self.handle_timeout(now);
        if let Phase::Closing { .. } = self.phase {
            let body = self.take_payload();
            self.phase = Phase::Closed;
            return Ok(PollOutcome::Respond(body));
        }
        if self.phase != Phase::Open {
            return Err(SessionError::UnknownSid);
        }
        if self.transport != Transport::Polling {
            return Err(SessionError::TransportMismatch);
        }
        if self.get_parked {
            // polling.ts: "overlap from client" is a transport error; the
            // waiting GET is ended with a close packet.
            self.close_with(CloseReason::TransportError, PacketType::Close);
            return Err(SessionError::DuplicateGet);
        }
        if !self.outbox.is_empty() {
            return Ok(PollOutcome::Respond(self.take_payload()));
        }
        if let Upgrade::Probed { .. } = self.upgrade {
            return Ok(PollOutcome::Respond(vec![PacketType::Noop.digit()]));
        }
        self.get_parked = true;
        Ok(PollOutcome::Park)
    }

    /// The head of a polling POST, before its body is read. polling.ts
    /// `onDataRequest` takes a POST on arrival, not when its body ends, so
    /// a second POST while one is on its way is "data request overlap
    /// from client": a transport error, and the session closes. A POST
    /// the session would refuse anyway is left to
    /// [`handle_poll_post`](Self::handle_poll_post).
    pub fn handle_post_head(&mut self, now: Instant) -> Result<(), SessionError> {
        self.handle_timeout(now);
        if self.phase != Phase::Open || self.transport != Transport::Polling {
            return Ok(());
        }
        if self.post_open {
            self.post_open = false;
            self.close_with(CloseReason::TransportError, PacketType::Close);
            return Err(SessionError::DuplicatePost);
        }
        self.post_open = true;
        Ok(())
    }

    /// The connection of the POST whose head came ended before its body
    /// did (polling.ts cleans `dataReq` up on the request's `close`).
    pub fn handle_post_aborted(&mut self) {
        self.post_open = false;
    }

    /// A polling POST with its whole body; `Ok` is answered `ok`.
    pub fn handle_poll_post(&mut self, body: &[u8], now: Instant) -> Result<(), SessionError> {
        // The POST whose head was announced is this one: it is done.
        self.post_open = false;
        self.handle_timeout(now);
        if self.phase != Phase::Open {
            return Err(SessionError::UnknownSid);
        }
        if self.transport != Transport::Polling {
            return Err(SessionError::TransportMismatch);
        }
        let limits = PayloadLimits {
            max_payload: self.config.max_payload,
        };
        let packets = match decode_payload(body, limits) {
            Ok(p) => p,
            Err(e) => {
                self.close_with(reason_for(e), PacketType::Close);
                return Err(e.into());
            }
        };
        for p in packets {
            if self.phase != Phase::Open {
                break;
            }
            self.on_packet(p, now);
        }
        Ok(())
    }

    /// The parked GET's connection ended before it was answered.
    /// polling.ts: "poll connection closed prematurely" is a transport
    /// error, and the session closes (a client that went away mid-poll
    /// would otherwise look, on its next GET, like one polling twice).
    pub fn handle_poll_aborted(&mut self, _now: Instant) {
        if self.get_parked && self.phase == Phase::Open {
            self.get_parked = false;
            self.close_with(CloseReason::TransportError, PacketType::Close);
            // Nobody is left to read the answer.
            self.transmits
                .retain(|t| !matches!(t, Transmit::PollResponse(_)));
        }
    }

    /// A WebSocket wants to take over this polling session.
    pub fn handle_ws_attach(&mut self, now: Instant) -> Result<(), SessionError> {
        self.handle_timeout(now);
        if self.phase != Phase::Open {
            return Err(SessionError::UnknownSid);
        }
        // server.ts: "transport has already been upgraded" (or is being).
        if self.transport != Transport::Polling || self.upgrade != Upgrade::None {
            return Err(SessionError::TransportMismatch);
        }
        self.upgrade = Upgrade::Attached {
            until: now + self.config.upgrade_timeout,
        };
        Ok(())
    }

    /// One complete message from the session's WebSocket.
    pub fn handle_ws_message(
        &mut self,
        binary: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        self.handle_timeout(now);
        if self.phase != Phase::Open {
            return Err(SessionError::UnknownSid);
        }
        let probing = self.transport == Transport::Polling;
        if probing && self.upgrade == Upgrade::None {
            return Err(SessionError::TransportMismatch);
        }
        let packet = if data.len() > self.config.max_payload {
            Err(EioError::PayloadTooLarge {
                limit: self.config.max_payload,
            })
        } else if binary {
            Ok(Packet::decode_binary(data))
        } else {
            std::str::from_utf8(data)
                .map_err(|_| EioError::NotUtf8)
                .and_then(Packet::decode_text)
        };
        if probing {
            self.on_probe_packet(packet.ok());
            return Ok(());
        }
        match packet {
            Ok(p) => {
                self.on_packet(p, now);
                Ok(())
            }
            Err(e) => {
                self.transmits.push_back(Transmit::CloseWs(e.close_code()));
                self.close_with(reason_for(e), PacketType::Close);
                Err(e.into())
            }
        }
    }

    /// The session's WebSocket ended (closed by the peer, or broken).
    pub fn handle_ws_closed(&mut self, _now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        match self.transport {
            // The probe went away: the session goes on polling.
            Transport::Polling => self.upgrade = Upgrade::None,
            Transport::WebSocket => self.close_with(CloseReason::TransportClose, PacketType::Noop),
        }
        // Whatever was still to be written there has nowhere to go, and
        // the WebSocket needs no closing.
        self.transmits
            .retain(|t| matches!(t, Transmit::PollResponse(_)));
    }

    /// socket.ts `maybeUpgrade`: `2probe` → `3probe`, then `5` switches
    /// transports; anything else ends the attempt.
    fn on_probe_packet(&mut self, packet: Option<Packet>) {
        let probe = Data::Text("probe".into());
        match (self.upgrade, packet) {
            (Upgrade::Attached { until }, Some(p))
                if p.kind == PacketType::Ping && p.data == probe =>
            {
                self.transmits.push_back(ws_text(PacketType::Pong, "probe"));
                self.upgrade = Upgrade::Probed { until };
                if self.get_parked && self.outbox.is_empty() {
                    self.get_parked = false;
                    self.transmits
                        .push_back(Transmit::PollResponse(vec![PacketType::Noop.digit()]));
                }
            }
            (Upgrade::Probed { .. }, Some(p)) if p.kind == PacketType::Upgrade => {
                self.upgrade = Upgrade::None;
                self.transport = Transport::WebSocket;
                // The old transport's last word: a waiting GET ends empty.
                let leftover = std::mem::take(&mut self.outbox);
                if self.get_parked {
                    self.get_parked = false;
                    self.transmits
                        .push_back(Transmit::PollResponse(vec![PacketType::Noop.digit()]));
                }
                for p in leftover {
                    self.send_packet(p);
                }
                self.events.push_back(EioEvent::Upgraded);
            }
            _ => {
                self.upgrade = Upgrade::None;
                self.transmits.push_back(Transmit::CloseWs(1002));
            }
        }
    }

    /// socket.ts `onPacket`, for the transport in use.
    fn on_packet(&mut self, p: Packet, now: Instant) {
        match p.kind {
            PacketType::Pong => {
                // Protocol README, "Heartbeat": pings go out "at regular
                // intervals". The next is due one interval after the one
                // answered (socket.ts counts from the pong instead, so each
                // round trip delays the next ping, and a client that must
                // also CONNECT within connectTimeout sees its third ping
                // late). A pong nobody asked for changes nothing: a client
                // that keeps sending them must not postpone the pings that
                // would find it gone.
                if self.pong_deadline.take().is_some() {
                    self.next_ping = (self.next_ping + self.config.ping_interval).max(now);
                }
            }
            PacketType::Message => self.events.push_back(EioEvent::Message(p.data)),
            // polling.ts `onData` / websocket: a close packet from the
            // client ends the session; a waiting GET ends with a noop.
            PacketType::Close => {
                if self.transport == Transport::WebSocket {
                    self.transmits.push_back(Transmit::CloseWs(1000));
                }
                self.close_with(CloseReason::TransportClose, PacketType::Noop)
            }
            // The server pings in v4; open, upgrade (outside an upgrade)
            // and noop from a client mean nothing.
            PacketType::Ping | PacketType::Open | PacketType::Upgrade | PacketType::Noop => {}
        }
    }

    /// Sends a message to the client.
    pub fn send(&mut self, data: Data) {
        if self.phase == Phase::Open {
            self.send_packet(Packet::message(data));
        }
    }

    fn send_packet(&mut self, p: Packet) {
        match self.transport {
            Transport::WebSocket => {
                let (binary, data) = p.encode_ws();
                self.transmits
                    .push_back(Transmit::WsMessage { binary, data });
            }
            Transport::Polling => {
                if self.outbox.len() >= self.config.max_buffered_packets {
                    self.close_with(CloseReason::BufferFull, PacketType::Close);
                    return;
                }
                self.outbox.push(p);
            }
        }
    }

    /// A POST whose body was refused before it was read, for being over
    /// every body this server takes (so over `maxPayload` too): the
    /// session ends as for any payload over `maxPayload` (server.ts: 413,
    /// and the session closes).
    pub fn refuse_payload(&mut self) {
        if self.phase == Phase::Open {
            self.close_with(CloseReason::PayloadTooLarge, PacketType::Close);
        }
    }

    /// The application ends the session: the client is told with a close
    /// packet (polling) or the WebSocket is closed.
    pub fn close(&mut self, now: Instant) {
        if self.phase != Phase::Open {
            return;
        }
        match self.transport {
            Transport::WebSocket => {
                self.transmits.push_back(Transmit::CloseWs(1000));
                self.close_with(CloseReason::ForcedClose, PacketType::Close);
            }
            Transport::Polling if self.get_parked => {
                self.outbox.push(Packet::new(PacketType::Close));
                let body = self.take_payload();
                self.get_parked = false;
                self.transmits.push_back(Transmit::PollResponse(body));
                self.close_with(CloseReason::ForcedClose, PacketType::Close);
            }
            Transport::Polling => {
                // polling.ts `doClose`: the close packet waits for the
                // client's next GET, for a while.
                self.outbox.push(Packet::new(PacketType::Close));
                self.events
                    .push_back(EioEvent::Closed(CloseReason::ForcedClose));
                if self.upgrade != Upgrade::None {
                    self.upgrade = Upgrade::None;
                    self.transmits.push_back(Transmit::CloseWs(1000));
                }
                self.phase = Phase::Closing {
                    until: now + self.config.ping_timeout,
                };
            }
        }
    }

    /// Ends the session now: a waiting GET is answered with `last` (a
    /// close packet when the server ends it, a noop when the client did),
    /// an upgrading WebSocket is closed.
    fn close_with(&mut self, reason: CloseReason, last: PacketType) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.get_parked {
            self.get_parked = false;
            self.transmits
                .push_back(Transmit::PollResponse(vec![last.digit()]));
        }
        if self.transport == Transport::Polling && self.upgrade != Upgrade::None {
            self.transmits.push_back(Transmit::CloseWs(1000));
        }
        if self.transport == Transport::WebSocket
            && !self
                .transmits
                .iter()
                .any(|t| matches!(t, Transmit::CloseWs(_)))
        {
            self.transmits.push_back(Transmit::CloseWs(1000));
        }
        self.upgrade = Upgrade::None;
        self.outbox.clear();
        self.phase = Phase::Closed;
        self.events.push_back(EioEvent::Closed(reason));
    }

    fn take_payload(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        encode_payload(&self.outbox, &mut body);
        self.outbox = Vec::new();
        body
    }

    /// Timers: the ping, its pong's deadline, the upgrade's deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => return,
            Phase::Closing { until } => {
                if now >= until {
                    self.phase = Phase::Closed;
                    self.outbox.clear();
                }
                return;
            }
            Phase::Open => {}
        }
        if self.pong_deadline.is_none() && now >= self.next_ping {
            // Counted from when the ping was due, not from when this call
            // came: a late timer must not give the client extra time. A
            // ping whose answer is already late is not sent at all.
            let deadline = self.next_ping + self.config.ping_timeout;
            if now < deadline {
                self.send_packet(Packet::new(PacketType::Ping));
            }
            self.pong_deadline = Some(deadline);
        }
        if let Some(deadline) = self.pong_deadline {
            if now >= deadline {
                self.close_with(CloseReason::PingTimeout, PacketType::Close);
                return;
            }
        }
        if let Upgrade::Attached { until } | Upgrade::Probed { until } = self.upgrade {
            if now >= until {
                self.upgrade = Upgrade::None;
                self.transmits.push_back(Transmit::CloseWs(1000));
            }
        }
    }

    /// When [`handle_timeout`](EioSession::handle_timeout) must be called
    /// next; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = match self.phase {
            Phase::Closed => return None,
            Phase::Closing { until } => return Some(until),
            Phase::Open => self.pong_deadline.unwrap_or(self.next_ping),
        };
        Some(match self.upgrade {
            Upgrade::Attached { until } | Upgrade::Probed { until } => t.min(until),
            Upgrade::None => t,
        })
    }

    /// The next bytes to write. A parked GET is answered here, when
    /// packets wait: so everything the application sent in one turn goes
    /// out in one payload.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        if self.get_parked && !self.outbox.is_empty() {
            self.get_parked = false;
            return Some(Transmit::PollResponse(self.take_payload()));
        }
        // Drained: an idle session holds no queue memory.
        self.transmits = VecDeque::new();
        None
    }

    pub fn poll_event(&mut self) -> Option<EioEvent> {
        let e = self.events.pop_front();
        if e.is_none() {
            self.events = VecDeque::new();
        }
        e
    }
}

/// Files `session` in `timers` under its deadline now, if that moved.
fn refile(timers: &mut BTreeSet<(Instant, Sid)>, session: &mut EioSession) {
    let next = session.poll_timeout();
    if next == session.filed {
        return;
    }
    if let Some(old) = session.filed {
        timers.remove(&(old, session.sid));
    }
    if let Some(t) = next {
        timers.insert((t, session.sid));
    }
    session.filed = next;
}

fn reason_for(e: EioError) -> CloseReason {
    match e {
        EioError::PayloadTooLarge { .. } => CloseReason::PayloadTooLarge,
        _ => CloseReason::ParseError,
    }
}

fn ws_text(kind: PacketType, text: &str) -> Transmit {
    let (binary, data) = Packet::text(kind, text).encode_ws();
    Transmit::WsMessage { binary, data }
}

/// Every Engine.IO session of a server, by sid.
pub struct Sessions {
    config: EioConfig,
    /// Boxed: a table slot holds only a pointer, so the table's spare
    /// capacity costs little per idle session.
    sessions: HashMap<Sid, Box<EioSession>>,
    new_sid: SidSource,
    /// Every session's next deadline, earliest first, refiled whenever a
    /// call on the session may have moved it: asking for the earliest, and
    /// finding the due ones, costs O(log n) per session involved rather
    /// than a scan of every session on every turn of the loop.
    timers: BTreeSet<(Instant, Sid)>,
    /// Sessions that may have transmits or events; duplicates are fine.
    touched_transmit: VecDeque<Sid>,
    touched_event: VecDeque<Sid>,
}

impl Sessions {
    /// A server whose sids come from [`random_sid`].
    pub fn new(config: EioConfig) -> Sessions {
        Sessions::with_sid_source(config, Box::new(random_sid))
    }

    pub fn with_sid_source(config: EioConfig, new_sid: SidSource) -> Sessions {
        Sessions {
            config,
            sessions: HashMap::new(),
            new_sid,
            timers: BTreeSet::new(),
            touched_transmit: VecDeque::new(),
            touched_event: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &EioConfig {
        &self.config
    }

    /// Where new sids come from from now on (see [`SidSource`]).
    pub fn set_sid_source(&mut self, new_sid: SidSource) {
        self.new_sid = new_sid;
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn get(&self, sid: Sid) -> Option<&EioSession> {
        self.sessions.get(&sid).map(|s| &**s)
    }

    /// Open sessions on polling and on WebSocket (a scan: for metrics).
    pub fn count_by_transport(&self) -> (usize, usize) {
        let mut counts = (0, 0);
        for s in self.sessions.values().filter(|s| s.is_open()) {
            match s.transport {
                Transport::Polling => counts.0 += 1,
                Transport::WebSocket => counts.1 += 1,
            }
        }
        counts
    }

    fn touch(&mut self, sid: Sid) {
        self.touched_transmit.push_back(sid);
        self.touched_event.push_back(sid);
    }

    fn open(&mut self, transport: Transport, now: Instant) -> Result<Sid, SessionError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(SessionError::TooManySessions);
        }
        let sid = (self.new_sid)().map_err(|_| SessionError::NoRandomness)?;
        if self.sessions.contains_key(&sid) {
            return Err(SessionError::NoRandomness);
        }
        let mut session = Box::new(EioSession::new(sid, transport, self.config.clone(), now));
        refile(&mut self.timers, &mut session);
        self.sessions.insert(sid, session);
        self.touch(sid);
        Ok(sid)
    }

    /// server.ts `verify` for a request that names a session: it must be
    /// open, and on the transport the request uses.
    fn lookup(&mut self, sid: &str, now: Instant) -> Result<Sid, SessionError> {
        let sid = Sid::parse(sid).ok_or(SessionError::UnknownSid)?;
        let session = self
            .sessions
            .get_mut(&sid)
            .ok_or(SessionError::UnknownSid)?;
        session.handle_timeout(now);
        refile(&mut self.timers, session);
        self.touch(sid);
        Ok(sid)
    }

    /// A polling request: `method` as sent, `query` the raw query string,
    /// `body` the complete body (empty for a GET).
    pub fn handle_http(
        &mut self,
        method: &str,
        query: &str,
        body: &[u8],
        now: Instant,
    ) -> HttpAnswer {
        match self.http(method, query, body, now) {
            Ok(answer) => answer,
            Err(e) => e.answer(),
        }
    }

    fn http(
        &mut self,
        method: &str,
        query: &str,
        body: &[u8],
        now: Instant,
    ) -> Result<HttpAnswer, SessionError> {
        let q = Query::parse(query);
        // server.ts `verify`: the transport first.
        if q.transport.and_then(Transport::from_query) != Some(Transport::Polling) {
            return Err(if q.transport == Some("websocket") {
                SessionError::TransportMismatch
            } else {
                SessionError::TransportUnknown
            });
        }
        let Some(sid) = q.sid else {
            // A handshake.
            if method != "GET" {
                return Err(SessionError::BadHandshakeMethod);
            }
            if q.eio != Some("4") {
                return Err(SessionError::UnsupportedProtocolVersion);
            }
            let sid = self.open(Transport::Polling, now)?;
            // The open packet is waiting, so the handshake never parks.
            return match self.with_session(sid, |s| s.handle_poll_get(now))? {
                PollOutcome::Respond(body) => Ok(HttpAnswer::Opened { sid, body }),
                PollOutcome::Park => Ok(HttpAnswer::Park(sid)),
            };
        };
        let sid = self.lookup(sid, now)?;
        match method {
            "GET" => match self.with_session(sid, |s| s.handle_poll_get(now))? {
                PollOutcome::Respond(body) => Ok(HttpAnswer::ok(POLL_CONTENT_TYPE, body)),
                PollOutcome::Park => Ok(HttpAnswer::Park(sid)),
            },
            "POST" => {
                self.with_session(sid, |s| s.handle_poll_post(body, now))?;
                Ok(HttpAnswer::ok(POST_CONTENT_TYPE, b"ok".to_vec()))
            }
            _ => Err(SessionError::TransportMismatch),
        }
    }

    fn with_session<T>(
        &mut self,
        sid: Sid,
        f: impl FnOnce(&mut EioSession) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let session = self
            .sessions
            .get_mut(&sid)
            .ok_or(SessionError::UnknownSid)?;
        self.touched_transmit.push_back(sid);
        self.touched_event.push_back(sid);
        let r = f(session);
        refile(&mut self.timers, session);
        r
    }

    /// A WebSocket upgrade request on the Engine.IO path, before the 101.
    /// Without a sid it opens a session on WebSocket (its open packet is the
    /// first transmit); with one it starts that session's upgrade. The
    /// WebSocket then belongs to the returned sid.
    pub fn handle_ws_request(&mut self, query: &str, now: Instant) -> Result<Sid, SessionError> {
        let q = Query::parse(query);
        if q.transport.and_then(Transport::from_query) != Some(Transport::WebSocket) {
            return Err(if q.transport == Some("polling") {
                SessionError::TransportMismatch
            } else {
                SessionError::TransportUnknown
            });
        }
        match q.sid {
            None => {
                if q.eio != Some("4") {
                    return Err(SessionError::UnsupportedProtocolVersion);
                }
                self.open(Transport::WebSocket, now)
            }
            Some(sid) => {
                let sid = self.lookup(sid, now)?;
                self.with_session(sid, |s| s.handle_ws_attach(now))?;
                Ok(sid)
            }
        }
    }

    /// One complete message from the WebSocket bound to `sid`. An error
    /// has already queued the close of that WebSocket.
    pub fn handle_ws_message(
        &mut self,
        sid: Sid,
        binary: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        self.with_session(sid, |s| s.handle_ws_message(binary, data, now))
    }

    /// The head of a polling POST for `query`'s session has come and its
    /// body is still to be read ([`EioSession::handle_post_head`]). A
    /// driver that reads bodies in pieces calls this for every POST, at
    /// its head, and then [`handle_http`](Self::handle_http) with the
    /// whole body (or [`handle_post_aborted`](Self::handle_post_aborted));
    /// one that never calls it simply sees no overlaps. `Err` is the
    /// overlapping POST's answer: the session has closed.
    pub fn handle_post_head(&mut self, query: &str, now: Instant) -> Result<(), SessionError> {
        let Some(sid) = Self::polling_sid(query) else {
            return Ok(());
        };
        match self.with_session(sid, |s| s.handle_post_head(now)) {
            Err(SessionError::UnknownSid) => Ok(()),
            r => r,
        }
    }

    /// The POST announced by [`handle_post_head`](Self::handle_post_head)
    /// ended before its body was complete.
    pub fn handle_post_aborted(&mut self, query: &str) {
        self.on_polling_session(query, EioSession::handle_post_aborted);
    }

    /// Runs `f` on the session a polling request's query names, if any.
    fn on_polling_session(&mut self, query: &str, f: impl FnOnce(&mut EioSession)) {
        if let Some(sid) = Self::polling_sid(query) {
            let _ = self.with_session(sid, |s| {
                f(s);
                Ok(())
            });
        }
    }

    /// The session a polling request's query names.
    fn polling_sid(query: &str) -> Option<Sid> {
        let q = Query::parse(query);
        if q.transport.and_then(Transport::from_query) != Some(Transport::Polling) {
            return None;
        }
        q.sid.and_then(Sid::parse)
    }

    /// The connection of `sid`'s parked GET ended unanswered.
    pub fn handle_poll_aborted(&mut self, sid: Sid, now: Instant) {
        let _ = self.with_session(sid, |s| {
            s.handle_poll_aborted(now);
            Ok(())
        });
    }

    /// The WebSocket bound to `sid` ended.
    pub fn handle_ws_closed(&mut self, sid: Sid, now: Instant) {
        let _ = self.with_session(sid, |s| {
            s.handle_ws_closed(now);
            Ok(())
        });
    }

    /// Runs every session's timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<Sid> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, sid)| *sid)
            .collect();
        for sid in due {
            let _ = self.with_session(sid, |s| {
                s.handle_timeout(now);
                Ok(())
            });
        }
    }

    /// The earliest deadline of any session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Drops a finished session and its timer.
    fn remove(&mut self, sid: Sid) {
        if let Some(s) = self.sessions.remove(&sid) {
            if let Some(t) = s.filed {
                self.timers.remove(&(t, sid));
            }
        }
    }

    /// Sends a message to a session's client; `false` if there is no such
    /// open session.
    pub fn send(&mut self, sid: Sid, data: Data) -> bool {
        self.with_session(sid, |s| {
            let open = s.is_open();
            s.send(data);
            Ok(open)
        })
        .unwrap_or(false)
    }

    /// A polling POST for `query`'s session refused for its size before
    /// its body was read ([`EioSession::refuse_payload`]).
    pub fn refuse_payload(&mut self, query: &str) {
        self.on_polling_session(query, EioSession::refuse_payload);
    }

    /// Closes a session from the server's side.
    pub fn close(&mut self, sid: Sid, now: Instant) {
        let _ = self.with_session(sid, |s| {
            s.close(now);
            Ok(())
        });
    }

    /// The next bytes to write, and for which session.
    pub fn poll_transmit(&mut self) -> Option<(Sid, Transmit)> {
        while let Some(&sid) = self.touched_transmit.front() {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if let Some(t) = s.poll_transmit() {
                    return Some((sid, t));
                }
                if s.is_finished() {
                    self.remove(sid);
                }
            }
            self.touched_transmit.pop_front();
        }
        None
    }

    /// The next event for the application, and from which session.
    pub fn poll_event(&mut self) -> Option<(Sid, EioEvent)> {
        while let Some(&sid) = self.touched_event.front() {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if let Some(e) = s.poll_event() {
                    return Some((sid, e));
                }
                if s.is_finished() {
                    self.remove(sid);
                }
            }
            self.touched_event.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> Sid {
        Sid::from_bytes([n; 20])
    }

    #[test]
    fn sid_is_27_base64url_characters_and_parses_back() {
        let s = sid(0xfb);
        assert_eq!(s.as_str().len(), Sid::LEN);
        assert_eq!(Sid::parse(s.as_str()), Some(s));
        assert!(s
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse(&"+".repeat(27)), None);
        let a = random_sid().unwrap();
        let b = random_sid().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn handshake_then_ping_pong_in_simulated_time() {
        let t0 = Instant::now();
        let config = EioConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..EioConfig::default()
        };
        let mut s = EioSession::new(sid(1), Transport::Polling, config, t0);
        let PollOutcome::Respond(open) = s.handle_poll_get(t0).unwrap() else {
            panic!("the handshake answers at once");
        };
        assert!(open.starts_with(b"0{\"sid\":"));
        assert_eq!(s.handle_poll_get(t0).unwrap(), PollOutcome::Park);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(300)));
        s.handle_timeout(t0 + Duration::from_millis(300));
        assert_eq!(
            s.poll_transmit(),
            Some(Transmit::PollResponse(b"2".to_vec()))
        );
        let t1 = t0 + Duration::from_millis(350);
        s.handle_poll_post(b"3", t1).unwrap();
        // A fixed cadence: the next ping is due one interval after the
        // last one, however late its pong came.
        let t2 = t0 + Duration::from_millis(600);
        assert_eq!(s.poll_timeout(), Some(t2));
        // An unasked-for pong does not postpone it.
        s.handle_poll_post(b"3", t1).unwrap();
        assert_eq!(s.poll_timeout(), Some(t2));
        // No pong this time: closed at the ping's due time + pingTimeout.
        s.handle_timeout(t2);
        s.handle_timeout(t2 + Duration::from_millis(199));
        assert!(s.is_open());
        s.handle_timeout(t2 + Duration::from_millis(200));
        assert!(!s.is_open());
        assert_eq!(s.poll_event(), Some(EioEvent::Opened));
        assert_eq!(
            s.poll_event(),
            Some(EioEvent::Closed(CloseReason::PingTimeout))
        );
    }

    /// The index holds exactly one entry per session with a deadline, the
    /// one its `poll_timeout` gives.
    fn assert_index_is_exact(s: &Sessions) {
        let mut want: Vec<(Instant, Sid)> = s
            .sessions
            .values()
            .filter_map(|x| x.poll_timeout().map(|t| (t, x.sid)))
            .collect();
        want.sort();
        let have: Vec<(Instant, Sid)> = s.timers.iter().copied().collect();
        assert_eq!(have, want);
        assert_eq!(s.poll_timeout(), want.first().map(|(t, _)| *t));
    }

    #[test]
    fn every_ping_and_ping_timeout_fires_on_its_millisecond_from_the_index() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let config = EioConfig {
            ping_interval: ms(300),
            ping_timeout: ms(200),
            ..EioConfig::default()
        };
        let mut n = 0u8;
        let mut s = Sessions::with_sid_source(
            config,
            Box::new(move || {
                n += 1;
                Ok(sid(n))
            }),
        );
        // Twenty WebSocket sessions, one every 10 ms; the even ones answer
        // their pings, the odd ones never do.
        let mut opened = Vec::new();
        let mut pings: Vec<(Sid, Duration)> = Vec::new();
        let mut closed: Vec<(Sid, Duration)> = Vec::new();
        for step in 0..=1500u64 {
            let now = t0 + ms(step);
            if step % 10 == 0 && opened.len() < 20 {
                let id = s
                    .handle_ws_request("EIO=4&transport=websocket", now)
                    .unwrap();
                opened.push((id, step));
            }
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            while let Some((id, t)) = s.poll_transmit() {
                if t == (Transmit::WsMessage {
                    binary: false,
                    data: b"2".to_vec(),
                }) {
                    pings.push((id, now - t0));
                    let i = opened.iter().position(|(o, _)| *o == id).unwrap();
                    if i % 2 == 0 {
                        s.handle_ws_message(id, false, b"3", now).unwrap();
                    }
                }
            }
            while let Some((id, e)) = s.poll_event() {
                if e == EioEvent::Closed(CloseReason::PingTimeout) {
                    closed.push((id, now - t0));
                }
            }
            assert_index_is_exact(&s);
        }
        for (i, (id, at)) in opened.iter().enumerate() {
            let mine: Vec<u64> = pings
                .iter()
                .filter(|(p, _)| p == id)
                .map(|(_, d)| d.as_millis() as u64)
                .collect();
            let gone: Vec<u64> = closed
                .iter()
                .filter(|(p, _)| p == id)
                .map(|(_, d)| d.as_millis() as u64)
                .collect();
            if i % 2 == 0 {
                let want: Vec<u64> = (1..)
                    .map(|k| at + 300 * k)
                    .take_while(|t| *t <= 1500)
                    .collect();
                assert_eq!(mine, want, "session {i}");
                assert!(gone.is_empty());
            } else {
                assert_eq!(mine, vec![at + 300], "session {i}");
                assert_eq!(gone, vec![at + 500], "session {i}");
            }
        }
        // The ones that timed out are gone from the table and the index.
        assert_eq!(s.len(), 10);
        assert_eq!(s.timers.len(), 10);
    }
}

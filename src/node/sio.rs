//! Engine.IO and Socket.IO served from the core: the glue between the
//! connections of `conn.rs` and the sans-IO servers of `proto/engineio.rs`
//! and `proto/socketio.rs`, and namespace `/` onto the hub.
//!
//! Before working on this file, read the module docs of
//! `proto/engineio.rs` (its routing table is what this file implements)
//! and `proto/socketio.rs`, then DESIGN "Socket.IO".
//!
//! # How a session meets the connections
//!
//! An Engine.IO session outlives the HTTP requests that carry it, so it
//! lives here, in [`SioGlue`], not in a connection. A connection only
//! *carries* a session for a while:
//!
//! - a polling GET with nothing to send parks in [`Phase::EioParked`]
//!   (`conn.rs`), recorded in `polls` by sid; the session's
//!   `Transmit::PollResponse` answers it and it goes back to HTTP;
//! - a WebSocket on the path is a [`WsRole::Eio`] connection, recorded in
//!   `sockets` by sid; `Transmit::WsMessage` / `CloseWs` go to it.
//!
//! The sessions are driven inside the node's `handle_*` calls, and what
//! they want written is applied to the connections in [`Node::sio_flush`],
//! which every `handle_*` runs (through `run_pending`) once the
//! connection it was handling is back in its slot. The sessions' timers
//! (pings, ping timeouts, the connect timeout) are one more deadline of
//! [`Node::poll_timeout`].
//!
//! # Namespace `/` onto the hub
//!
//! [`HubNamespace`] runs inside the Socket.IO server, which cannot reach
//! the hub, so it only records what its sockets ask (connect, events,
//! disconnect) in an [`Inbox`]; [`Node::sio_flush`] carries them out
//! against the hub and answers their acks. A Socket.IO socket's
//! subscriptions are hub subscribers numbered from [`SIO_SUBS`] up, so
//! the fan-out tells them from connections without a lookup.
//!
//! A message reaches a socket as `EVENT(name, data, {topic, id})`: its
//! packet text is written once per message and shared by every socket.
//! Binary: see [`BINARY_ENCODING`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::client::json::Value;
use crate::hub::{self, Cursor, EventName, Message, PayloadKind, ReplayLimit, Transport};
use crate::proto::engineio::{
    EioConfig, EioEvent, HttpAnswer, SessionError, Sessions, Sid, SidSource, Transmit,
    Transport as EioTransport, ERROR_CONTENT_TYPE, POLL_CONTENT_TYPE,
};
use crate::proto::http::Request;
use crate::proto::redis::relay::{self, NodeTag, PollMethod, Relay};
use crate::proto::socketio::{
    AckId, DisconnectReason, Event as SioEvent, Namespace, SioConfig, SioServer,
    SocketAddr as SioAddr, SocketCtx,
};
use crate::proto::ws::{MessageKind, WsDeflate, WsLimits, WsSession};
use crate::wire::http1::Method;
use crate::wire::jws::{Claims, Verifier};
use crate::wire::socketio::{placeholder, placeholder_num, to_json, RESERVED_EVENTS};
use crate::wire::{json, ws_handshake};
use crate::Config;

use super::app::{self, Next};
use super::cluster::{PublishFrom, Sync};
use super::conn::{EngineKind, Phase, State, Subs, TopicName, WsConn, WsRole, MAX_SUBS};
use super::outq::OutQueue;
use super::{new_sub, slot_of, start_position, ConnId, Ctx, Event, Node};

/// Hub subscriber numbers from here up are Socket.IO sockets
/// (`SIO_SUBS + socket × MAX_SUBS + slot`); below are connections.
pub(crate) const SIO_SUBS: usize = 1 << (usize::BITS - 2);

/// The `encoding` of a binary payload on the hub. A Socket.IO `publish`
/// whose data is a binary attachment, or holds them nested, is stored
/// with each as the JSON object
/// `{"encoding":"base64","data":"<standard base64>"}`: text-only
/// transports (SSE, polls, JSON frames) carry exactly that, and
/// Socket.IO sockets get the bytes back as attachments, where they were.
/// (Any JSON payload holding objects of exactly that shape, whoever
/// published it, reaches Socket.IO sockets with those as binary.)
pub const BINARY_ENCODING: &str = "base64";

/// Messages read from the history per step of a Socket.IO replay.
const REPLAY_BATCH: usize = 64;

/// The Socket.IO and Engine.IO servers of a node and where their
/// sessions are carried.
pub(crate) struct SioGlue {
    server: SioServer,
    /// The Engine.IO-only echo server and its path.
    echo: Option<(String, Sessions)>,
    /// The connection parked on each session's GET.
    polls: HashMap<Sid, ConnId>,
    /// Polling POSTs whose head has come and whose body is still being
    /// read, by connection ([`SioGlue::post_head`]).
    posts: HashMap<ConnId, PostHead>,
    /// Cluster mode: this node's tag, the start of its sids.
    pub(super) tag: Option<NodeTag>,
    /// Cluster mode: the GETs parked on this node's sessions from other
    /// nodes, and where their answers go.
    pub(super) remote_polls: HashMap<Sid, (NodeTag, relay::Waiter)>,
    /// Cluster mode: this node's sessions whose WebSocket another node
    /// carries (it reached that node, not this one).
    pub(super) carried: HashMap<Sid, Carrier>,
    /// The WebSocket connection of each session (its transport, or the
    /// one probing to become it).
    sockets: HashMap<Sid, ConnId>,
    inbox: Arc<Mutex<Inbox>>,
    /// Namespace `/` sockets, by number (see [`SIO_SUBS`]).
    socks: Vec<Option<HubSock>>,
    free: Vec<usize>,
    /// The socket number of each connection's `/` socket.
    by_sid: HashMap<Sid, usize>,
    /// The sockets whose token expires, by when (tokens on): found
    /// without a scan of every socket.
    expiries: BTreeSet<(Instant, usize)>,
    /// The earliest session deadline, kept so that asking is cheap.
    deadline: Option<Instant>,
    /// A session was touched since `deadline` was computed.
    dirty: bool,
    /// Connection state recovery on namespace `/` (`--sio-recovery`).
    recovery: bool,
    /// Cluster mode: subscribes waiting for their topic's first sync with
    /// Redis, and when they give up.
    waiting: Vec<(Instant, HubCall)>,
    /// Cluster mode: subscribes whose cursor is past the mirror, waiting
    /// for one fresh read of their topic from Redis.
    refreshing: Vec<HubCall>,
    /// Subscriptions (socket, slot) whose replay waits for its client to
    /// take what is queued (see [`replay`]); a set, so a subscription
    /// resubscribed while it waits is in it once.
    replaying: BTreeSet<(usize, usize)>,
    /// Sockets whose client took something since (a poll answered, a
    /// WebSocket's queue written): only their replays are looked at, so
    /// replays that wait cost nothing per turn.
    nudged: BTreeSet<usize>,
}

/// Where the WebSocket of one of this node's sessions is, when another
/// node carries it: that node, and the connection and ticket it named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Carrier {
    pub(super) node: NodeTag,
    pub(super) waiter: relay::Waiter,
    pub(super) engine: EngineKind,
}

/// A namespace `/` socket.
struct HubSock {
    addr: SioAddr,
    subs: Subs,
    /// What its token allows (tokens on).
    claims: Option<Box<Claims>>,
    /// When that token expires: the socket is disconnected then.
    expires: Option<Instant>,
}

/// What namespace `/` recorded for the node, and what it needs to judge
/// a CONNECT by itself.
struct Inbox {
    verifier: Option<Verifier>,
    /// The wall-clock second (token `exp`/`nbf`).
    date_secs: u64,
    /// The token of each session's handshake request (`Authorization` or
    /// `?token=`), used when CONNECT carries none.
    tokens: HashMap<Sid, String>,
    calls: Vec<HubCall>,
    /// Where recovery pids come from.
    new_pid: SidSource,
}

enum HubCall {
    Connect {
        addr: SioAddr,
        claims: Option<Claims>,
        /// The offset a recovering client presented.
        resume: Option<String>,
    },
    Event {
        addr: SioAddr,
        name: String,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
        ack: Option<AckId>,
    },
    Disconnect {
        addr: SioAddr,
    },
}

fn lock(inbox: &Mutex<Inbox>) -> MutexGuard<'_, Inbox> {
    // One thread uses it; a poisoned lock still holds consistent data.
    inbox.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where sids come from: the kernel's randomness (a sid is all that
/// authenticates a polling request). In cluster mode an Engine.IO sid
/// starts with the node's tag, so that the other nodes know where to
/// relay its requests (`proto/redis/relay.rs`).
fn sid_source(tag: Option<NodeTag>) -> SidSource {
    Box::new(move || {
        let sid = crate::proto::engineio::random_sid()?;
        Ok(tag.map_or(sid, |t| t.stamp(sid)))
    })
}

/// Sids from a counter: the same on every run (see
/// [`Node::use_counter_sids`]). The counter is in the last bytes, which
/// a node's tag leaves alone.
fn counter_sids(tag: Option<NodeTag>) -> SidSource {
    let mut n: u32 = 0;
    Box::new(move || {
        n = n.wrapping_add(1);
        let mut bytes = [0u8; 20];
        bytes[16..].copy_from_slice(&n.to_be_bytes());
        let sid = Sid::from_bytes(bytes);
        Ok(tag.map_or(sid, |t| t.stamp(sid)))
    })
}

/// `{"message","data":{"status"}}`: a refused CONNECT's payload.
fn connect_refusal(status: u16, message: &str) -> Value {
    Value::Object(vec![
        ("message".into(), Value::String(message.into())),
        (
            "data".into(),
            Value::Object(vec![("status".into(), Value::from(f64::from(status)))]),
        ),
    ])
}

/// `{"error":{"status","message"}}`: a refused request's ack.
fn error_ack(status: u16, message: &str) -> Value {
    Value::Object(vec![(
        "error".into(),
        Value::Object(vec![
            ("status".into(), Value::from(f64::from(status))),
            ("message".into(), Value::String(message.into())),
        ]),
    )])
}

/// Namespace `/` of the binary: subscribe, unsubscribe and publish on the
/// hub (DESIGN "Socket.IO").
struct HubNamespace {
    inbox: Arc<Mutex<Inbox>>,
    /// Connection state recovery (see [`with_offset`]).
    recovery: bool,
}

impl Namespace for HubNamespace {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        let mut inbox = lock(&self.inbox);
        let claims = match &inbox.verifier {
            None => None,
            Some(verifier) => {
                // DESIGN "Security": Bearer, else ?token=, else the CONNECT
                // payload's {token}; the CONNECT's own token wins here, as
                // it is the freshest the client has.
                let token = auth
                    .get("token")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| inbox.tokens.get(&socket.addr().eio).cloned());
                let Some(token) = token else {
                    return Err(connect_refusal(401, "a token is required"));
                };
                match verifier.verify(token.as_bytes(), inbox.date_secs) {
                    Ok(c) => Some(c),
                    Err(e) => return Err(connect_refusal(e.status(), &e.to_string())),
                }
            }
        };
        // Recovery: the client presents the pid of its CONNECT reply and
        // the offset of the last event it got. The offset is a combined
        // cursor, which holds all there is to resume; keeping the pid says
        // "recovered" to the client.
        let mut resume = None;
        if self.recovery {
            let pid = auth.get("pid").and_then(Value::as_str).and_then(Sid::parse);
            let offset = auth.get("offset").and_then(Value::as_str);
            match (pid, offset) {
                (Some(pid), Some(offset)) => {
                    resume = Some(offset.to_string());
                    socket.set_pid(pid);
                }
                _ => {
                    if let Ok(pid) = (inbox.new_pid)() {
                        socket.set_pid(pid);
                    }
                }
            }
        }
        inbox.calls.push(HubCall::Connect {
            addr: socket.addr().clone(),
            claims,
            resume,
        });
        Ok(())
    }

    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &SioEvent<'_>) {
        lock(&self.inbox).calls.push(HubCall::Event {
            addr: socket.addr().clone(),
            name: event.name.to_string(),
            args: event.args.to_vec(),
            attachments: event.attachments.to_vec(),
            ack: event.ack,
        });
    }

    fn on_disconnect(&mut self, socket: &SioAddr, _id: Sid, _reason: DisconnectReason) {
        lock(&self.inbox).calls.push(HubCall::Disconnect {
            addr: socket.clone(),
        });
    }
}

impl SioGlue {
    /// `tag`: this node's, in cluster mode (its sids start with it).
    pub(crate) fn new(cfg: &Config, tag: Option<NodeTag>) -> SioGlue {
        let eio = EioConfig {
            ping_interval: cfg.sio_ping_interval,
            ping_timeout: cfg.sio_ping_timeout,
            max_payload: cfg.sio_max_payload,
            max_sessions: cfg.sio_max_sessions,
            max_buffered_packets: cfg.sio_max_buffered_packets,
            ..EioConfig::default()
        };
        let config = SioConfig {
            eio: eio.clone(),
            connect_timeout: cfg.sio_connect_timeout,
            ..SioConfig::default()
        };
        let inbox = Arc::new(Mutex::new(Inbox {
            verifier: crate::security::token_verifier(cfg),
            date_secs: 0,
            tokens: HashMap::new(),
            calls: Vec::new(),
            new_pid: sid_source(None),
        }));
        let mut server = SioServer::with_parts(
            config,
            Sessions::with_sid_source(eio.clone(), sid_source(tag)),
            sid_source(None),
        );
        server.register(
            "/",
            Box::new(HubNamespace {
                inbox: Arc::clone(&inbox),
                recovery: cfg.sio_recovery,
            }),
        );
        SioGlue {
            server,
            echo: cfg
                .engineio_echo_path
                .clone()
                .map(|path| (path, Sessions::with_sid_source(eio, sid_source(tag)))),
            polls: HashMap::new(),
            posts: HashMap::new(),
            tag,
            remote_polls: HashMap::new(),
            carried: HashMap::new(),
            sockets: HashMap::new(),
            inbox,
            socks: Vec::new(),
            free: Vec::new(),
            by_sid: HashMap::new(),
            expiries: BTreeSet::new(),
            deadline: None,
            dirty: false,
            recovery: cfg.sio_recovery,
            waiting: Vec::new(),
            refreshing: Vec::new(),
            replaying: BTreeSet::new(),
            nudged: BTreeSet::new(),
        }
    }

    /// Which server a request path belongs to, if any (with or without
    /// its trailing `/`, as clients are configured both ways).
    pub(crate) fn engine_for(&self, path: &str) -> Option<EngineKind> {
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        // Every request asks this: most paths are told apart by their
        // start, without trimming.
        let echo_start = self.echo.as_ref().map(|(p, _)| p.trim_end_matches('/'));
        if !path.starts_with("/socket.io") && echo_start.is_none_or(|p| !path.starts_with(p)) {
            return None;
        }
        if same(path, "/socket.io/") {
            return Some(EngineKind::SocketIo);
        }
        match &self.echo {
            Some((p, _)) if same(path, p) => Some(EngineKind::EngineIo),
            _ => None,
        }
    }

    pub(crate) fn set_date(&mut self, secs: u64) {
        lock(&self.inbox).date_secs = secs;
    }

    /// Registers a namespace's handlers (replacing the hub's for `/`).
    pub(crate) fn register(&mut self, name: &str, handlers: Box<dyn Namespace + Send>) {
        self.server.register(name, handlers);
    }

    /// The echo server answers each message with itself.
    fn echo_events(sessions: &mut Sessions) {
        while let Some((sid, event)) = sessions.poll_event() {
            if let EioEvent::Message(data) = event {
                sessions.send(sid, data);
            }
        }
    }

    fn http(
        &mut self,
        engine: EngineKind,
        method: &str,
        query: &str,
        body: &[u8],
        now: Instant,
    ) -> HttpAnswer {
        self.dirty = true;
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => {
                let a = s.handle_http(method, query, body, now);
                Self::echo_events(s);
                a
            }
            _ => self.server.handle_http(method, query, body, now),
        }
    }

    /// A polling POST refused for its size before its body was read (see
    /// [`refuse_post`]): its session ends, as for any payload over
    /// `maxPayload`.
    fn refuse_payload(&mut self, engine: EngineKind, query: &str) {
        self.dirty = true;
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => s.refuse_payload(query),
            _ => self.server.refuse_payload(query),
        }
    }

    fn ws_request(
        &mut self,
        engine: EngineKind,
        query: &str,
        now: Instant,
    ) -> Result<Sid, SessionError> {
        self.dirty = true;
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => s.handle_ws_request(query, now),
            _ => self.server.handle_ws_request(query, now),
        }
    }

    /// One complete message from the WebSocket of session `sid`.
    pub(crate) fn ws_message(
        &mut self,
        engine: EngineKind,
        sid: Sid,
        binary: bool,
        data: &[u8],
        now: Instant,
    ) {
        self.dirty = true;
        // An error has queued the WebSocket's close already.
        let _ = match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => {
                let r = s.handle_ws_message(sid, binary, data, now);
                Self::echo_events(s);
                r
            }
            _ => self.server.handle_ws_message(sid, binary, data, now),
        };
    }

    fn ws_closed(&mut self, engine: EngineKind, sid: Sid, now: Instant) {
        self.dirty = true;
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => {
                s.handle_ws_closed(sid, now);
                Self::echo_events(s);
            }
            _ => self.server.handle_ws_closed(sid, now),
        }
    }

    /// The head of a polling POST on connection `id` has come and its
    /// body not yet: its session learns of it now, as polling.ts
    /// `onDataRequest` does on arrival, so that a second POST meanwhile is
    /// an overlap. Once per request.
    pub(crate) fn post_head(&mut self, id: ConnId, path: &str, query: &str, now: Instant) {
        if self.posts.contains_key(&id) {
            return;
        }
        let Some(engine) = self.engine_for(path) else {
            return;
        };
        let overlap = self.announce_post(engine, query, now).is_err();
        let head = PostHead {
            engine,
            query: query.to_owned(),
            overlap,
        };
        self.posts.insert(id, head);
    }

    /// Tells `query`'s session of a POST's head; `Err` if it overlaps
    /// another (the session has closed).
    fn announce_post(
        &mut self,
        engine: EngineKind,
        query: &str,
        now: Instant,
    ) -> Result<(), SessionError> {
        self.dirty = true;
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => s.handle_post_head(query, now),
            _ => self.server.handle_post_head(query, now),
        }
    }

    /// Connection `id` ended with a POST's body unfinished.
    fn post_aborted(&mut self, id: ConnId) {
        if let Some(p) = self.posts.remove(&id) {
            self.undo_post(p.engine, &p.query, Some(p.overlap));
        }
    }

    /// A POST whose head its session saw (`overlap` is `Some`) will not be
    /// handed to it.
    fn undo_post(&mut self, engine: EngineKind, query: &str, overlap: Option<bool>) {
        if overlap != Some(false) {
            return;
        }
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => s.handle_post_aborted(query),
            _ => self.server.handle_post_aborted(query),
        }
    }

    fn poll_aborted(&mut self, engine: EngineKind, sid: Sid, now: Instant) {
        self.dirty = true;
        match (engine, &mut self.echo) {
            (EngineKind::EngineIo, Some((_, s))) => {
                s.handle_poll_aborted(sid, now);
                Self::echo_events(s);
            }
            _ => self.server.handle_poll_aborted(sid, now),
        }
    }

    /// Runs the sessions' timers that are due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.dirty = true;
        // DESIGN "Security": a socket ends when its token does. DISCONNECT
        // (not a broken connection) so that the client does not simply
        // reconnect with the same token.
        while let Some(&(t, n)) = self.expiries.first() {
            if t > now {
                break;
            }
            self.expiries.pop_first();
            if let Some(Some(s)) = self.socks.get(n) {
                let addr = s.addr.clone();
                self.server.disconnect(&addr);
            }
        }
        self.server.handle_timeout(now);
        if let Some((_, s)) = &mut self.echo {
            s.handle_timeout(now);
            Self::echo_events(s);
        }
    }

    /// Open Engine.IO sessions on polling and on WebSocket (both servers),
    /// and connected Socket.IO sockets: for `/metrics`.
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let (mut polling, mut ws) = self.server.engine().count_by_transport();
        if let Some((_, s)) = &self.echo {
            let (p, w) = s.count_by_transport();
            polling += p;
            ws += w;
        }
        (polling, ws, self.server.socket_count())
    }

    /// The earliest session deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    fn refresh_deadline(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let echo = self.echo.as_ref().and_then(|(_, s)| s.poll_timeout());
        let expiry = self.expiries.first().map(|(t, _)| *t);
        let waiting = self.waiting.iter().map(|(d, _)| *d).min();
        self.deadline = [self.server.poll_timeout(), echo, expiry, waiting]
            .into_iter()
            .flatten()
            .min();
    }

    fn poll_transmit(&mut self) -> Option<(Sid, Transmit)> {
        if let Some(t) = self.server.poll_transmit() {
            return Some(t);
        }
        self.echo.as_mut().and_then(|(_, s)| s.poll_transmit())
    }
}

/// One Engine.IO message onto the WebSocket `conn` (the session's own,
/// or one carried for another node). DESIGN "Limits": a queue that
/// already holds more than its cap is a slow reader; the WebSocket ends
/// (so does the session: "transport close" on the server's side) and
/// the client reconnects.
fn write_eio_message(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut super::Conn,
    binary: bool,
    data: &[u8],
    now: Instant,
) {
    if conn.out.len() > ctx.cfg.subscriber_queue_bytes {
        ctx.stats.slow_disconnects += 1;
        ctx.trace(|| format!("[{id}] Engine.IO WebSocket cut off: too slow"));
        conn.out.clear_unstarted();
        super::end_stream(ctx, id, conn, 1008, "subscriber too slow", now);
    } else if let State::WebSocket(ws) = &mut conn.state {
        let kind = if binary {
            MessageKind::Binary
        } else {
            MessageKind::Text
        };
        ws.session.send(kind, data, &mut conn.out);
    }
}

// ---- requests on the Engine.IO paths ---------------------------------------

/// The token a handshake request carries, for a CONNECT that brings none.
fn remember_token(ctx: &mut Ctx, engine: EngineKind, sid: Sid, req: &Request) {
    // Only Socket.IO's CONNECT reads it (and only its closes forget it).
    if ctx.verifier.is_none() || engine != EngineKind::SocketIo {
        return;
    }
    if let Some(token) = app::sio_request_token(req) {
        lock(&ctx.sio.inbox).tokens.insert(sid, token);
    }
}

/// Answers one request on an Engine.IO path: a polling request (answered
/// now, or parked), or a WebSocket upgrade.
pub(crate) fn http_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    engine: EngineKind,
    now: Instant,
) -> Next {
    // HEAD is answered as GET would be, without content (RFC 9110
    // §9.3.2): Engine.IO refuses it (a handshake is a GET, a poll a GET
    // or a POST), and the refusal's head must not be followed by a body.
    let meta = app::ReqMeta::of(req);
    if req.method() == Method::Options {
        return app::sio_preflight(ctx, out, req);
    }
    // DESIGN "Security": a page on a foreign origin may not open a
    // session (and so may not publish through one). server.ts
    // `allowRequest` refusals are code 4, "Forbidden".
    if !app::sio_origin_allowed(ctx, req) {
        ctx.stats.auth_failures += 1;
        let body = br#"{"code":4,"message":"Forbidden"}"#;
        return app::sio_respond(ctx, out, meta, 403, ERROR_CONTENT_TYPE, body);
    }
    // polling.ts takes a POST on arrival: its session saw the head of one
    // whose body came later (`post_head`); one that came whole is
    // announced now. `Some(true)`: it overlaps another.
    let overlap = (req.method() == Method::Post).then(|| match ctx.sio.posts.remove(&id) {
        Some(p) => p.overlap,
        None => ctx.sio.announce_post(engine, req.query(), now).is_err(),
    });
    let upgrade = req
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    if upgrade {
        ctx.sio.undo_post(engine, req.query(), overlap);
        return ws_request(ctx, id, out, req, engine, now);
    }
    if let Some(next) = relay_request(ctx, id, out, req, engine, now) {
        ctx.sio.undo_post(engine, req.query(), overlap);
        return next;
    }
    let answer = if overlap == Some(true) {
        SessionError::DuplicatePost.answer()
    } else {
        ctx.sio
            .http(engine, req.method().as_str(), req.query(), req.body, now)
    };
    if let Some(sid) = crate::wire::engineio::Query::parse(req.query()).sid {
        nudge(ctx, Sid::parse(sid));
    }
    match answer {
        HttpAnswer::Respond {
            status,
            content_type,
            body,
        } => app::sio_respond(ctx, out, meta, status, content_type, &body),
        HttpAnswer::Opened { sid, body } => {
            remember_token(ctx, engine, sid, req);
            app::sio_respond(ctx, out, meta, 200, POLL_CONTENT_TYPE, &body)
        }
        HttpAnswer::Park(sid) => {
            ctx.sio.polls.insert(sid, id);
            Next::EioPark {
                sid,
                engine,
                version: req.version(),
                keep_alive: req.keep_alive,
            }
        }
    }
}

/// Cluster mode: a polling request for a session that another node holds
/// (its sid starts with that node's tag) is relayed to that node over
/// Redis, and this connection waits for its answer (`AwaitingBroker`):
/// a GET as long as the owner may hold it (until its next ping, plus
/// `redis_timeout`), a POST `redis_timeout`. No node reading the owner's
/// channel (`PUBLISH` counts them), or no answer in time, is the
/// session's end: 400, "Session ID unknown". `None`: not relayed.
///
/// The origin was checked here, where the request's headers are; the
/// owner applies the rest (the session's own rules, CONNECT's token).
fn relay_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    engine: EngineKind,
    now: Instant,
) -> Option<Next> {
    let (_, owner) = foreign_owner(ctx, req.query())?;
    let own = ctx.sio.tag?;
    let method = match req.method() {
        Method::Get => PollMethod::Get,
        Method::Post => PollMethod::Post,
        // The owner would refuse it too: answered here, as ours.
        _ => return None,
    };
    let cluster = ctx.cluster.as_mut()?;
    let (waiter, named) = relay_ticket(cluster, id);
    let relay = Relay::Request {
        from: own,
        waiter: named,
        engine: relay_engine(engine),
        method,
        query: req.query(),
        body: req.body,
    };
    let mut payload = Vec::with_capacity(req.body.len() + 128);
    let sent = match relay::write(&relay, &mut payload) {
        Ok(()) => cluster.relay(owner, &payload, Some(waiter)),
        Err(e) => Err(super::cluster::Failure {
            status: 400,
            message: e.to_string(),
        }),
    };
    let (version, keep_alive) = (req.version(), req.keep_alive);
    Some(match sent {
        Ok(()) => {
            ctx.stats.sio_relayed += 1;
            ctx.trace(|| {
                format!(
                    "[{id}] Engine.IO {} relayed to node {owner:?}",
                    method.as_str()
                )
            });
            let wait = match method {
                PollMethod::Get => ctx.cfg.sio_ping_interval + ctx.cfg.redis_timeout,
                PollMethod::Post => ctx.cfg.redis_timeout,
            };
            app::await_relay(waiter.ticket, now + wait, version, keep_alive)
        }
        Err(f) => {
            let ct = "text/plain; charset=utf-8";
            app::sio_respond(
                ctx,
                out,
                app::ReqMeta::of(req),
                f.status,
                ct,
                f.message.as_bytes(),
            )
        }
    })
}

/// Cluster mode, on the node that holds the session: a request another
/// node relayed (see [`relay_request`]) is answered as if it were ours,
/// and the answer goes back the same way; a GET with nothing to send
/// waits in `remote_polls` for the session's next `PollResponse`.
fn relayed_request(ctx: &mut Ctx, request: &Relay<'_>, now: Instant) {
    let &Relay::Request {
        from,
        waiter,
        engine,
        method,
        query,
        body,
    } = request
    else {
        return;
    };
    let engine = engine_kind(engine);
    // A relayed POST comes whole: its head is announced with it, so that
    // it overlaps a local POST still being read, as any other would.
    let overlap = method == PollMethod::Post && ctx.sio.announce_post(engine, query, now).is_err();
    let answer = if overlap {
        SessionError::DuplicatePost.answer()
    } else {
        ctx.sio.http(engine, method.as_str(), query, body, now)
    };
    let sid = crate::wire::engineio::Query::parse(query)
        .sid
        .and_then(Sid::parse);
    nudge(ctx, sid);
    match answer {
        HttpAnswer::Respond {
            status,
            content_type,
            body,
        } => send_answer(ctx, from, waiter, status, content_type, &body),
        HttpAnswer::Opened { body, .. } => {
            send_answer(ctx, from, waiter, 200, POLL_CONTENT_TYPE, &body)
        }
        HttpAnswer::Park(sid) => {
            ctx.sio.remote_polls.insert(sid, (from, waiter));
        }
    }
}

/// Sends a relayed request's answer back to the node it came from.
fn send_answer(
    ctx: &mut Ctx,
    to: NodeTag,
    waiter: relay::Waiter,
    status: u16,
    content_type: &str,
    body: &[u8],
) {
    let answer = Relay::Answer {
        waiter,
        status,
        content_type,
        body,
    };
    let mut payload = Vec::with_capacity(body.len() + 64);
    let Some(cluster) = ctx.cluster.as_mut() else {
        return;
    };
    // Lost if Redis is down: the asking node answers its client when its
    // wait runs out.
    if relay::write(&answer, &mut payload).is_ok() && cluster.relay(to, &payload, None).is_err() {
        ctx.log
            .push("pushwire: a relayed Engine.IO answer was lost: Redis is down".into());
    }
}

/// A WebSocket on an Engine.IO path: the handshake is checked before the
/// session is asked, so a bad handshake leaves no session behind.
fn ws_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    engine: EngineKind,
    now: Instant,
) -> Next {
    let meta = app::ReqMeta::of(req);
    let accept = match app::validate_upgrade(ctx, req) {
        Ok(a) => a,
        Err(e) => {
            let status = e.status();
            let body = e.to_string().into_bytes();
            let ct = "text/plain; charset=utf-8";
            let extra = e.extra_headers();
            return app::sio_respond_with(ctx, out, meta, status, ct, extra, &body);
        }
    };
    if let Some(next) = carry_ws(ctx, id, out, req, engine, &accept, now) {
        return next;
    }
    let fresh = !req.query().split('&').any(|p| p.starts_with("sid="));
    let sid = match ctx.sio.ws_request(engine, req.query(), now) {
        Ok(sid) => sid,
        // server.ts `onWebSocket`: a second WebSocket for a session that
        // has upgraded, or is upgrading, is accepted and closed at once
        // (the client sees a close, not a failed handshake).
        Err(SessionError::TransportMismatch) if !fresh => {
            let mut head = Vec::new();
            ws_handshake::write_accept(&mut head, &accept);
            out.push(&head);
            let mut session = WsSession::new(WsLimits::from_config(&ctx.cfg), now);
            session.hold_failures();
            session.close(1000, "", now, out);
            return Next::Ws(Box::new(WsConn {
                session,
                role: WsRole::Echo,
                subs: Subs::default(),
                claims: None,
                expires: None,
            }));
        }
        Err(e) => {
            let HttpAnswer::Respond {
                status,
                content_type,
                body,
            } = e.answer()
            else {
                return Next::Close;
            };
            return app::sio_respond(ctx, out, meta, status, content_type, &body);
        }
    };
    if fresh {
        remember_token(ctx, engine, sid, req);
    }
    ctx.sio.sockets.insert(sid, id);
    ctx.trace(|| format!("[{id}] Engine.IO WebSocket for {sid} ({engine:?})"));
    accept_eio_ws(ctx, out, &accept, WsRole::Eio { sid, engine }, now)
}

/// The 101 of an Engine.IO WebSocket, and the connection it becomes.
fn accept_eio_ws(
    ctx: &Ctx,
    out: &mut OutQueue,
    accept: &ws_handshake::Accept,
    role: WsRole,
    now: Instant,
) -> Next {
    let mut head = Vec::new();
    ws_handshake::write_accept(&mut head, accept);
    out.push(&head);
    let mut limits = WsLimits::from_config(&ctx.cfg);
    // One over maxPayload: the session itself refuses what is over it
    // (close 1009, and the session ends), bigger never gets buffered.
    limits.max_message_bytes = ctx.cfg.sio_max_payload.saturating_add(1);
    let mut session = WsSession::new(limits, now);
    session.hold_failures();
    session.set_deflate(accept.deflate.map(|p| WsDeflate::from_config(p, &ctx.cfg)));
    session.set_trace(ctx.cfg.trace);
    Next::Ws(Box::new(WsConn {
        session,
        role,
        subs: Subs::default(),
        claims: None,
        expires: None,
    }))
}

/// A fresh ticket for connection `id`, and the same as a relayed message
/// names it.
fn relay_ticket(
    cluster: &mut super::cluster::Cluster,
    id: ConnId,
) -> (super::cluster::Waiter, relay::Waiter) {
    let waiter = cluster.ticket(id);
    let named = relay::Waiter {
        conn: id as u64,
        ticket: waiter.ticket,
    };
    (waiter, named)
}

fn relay_engine(engine: EngineKind) -> relay::Engine {
    match engine {
        EngineKind::SocketIo => relay::Engine::SocketIo,
        EngineKind::EngineIo => relay::Engine::EngineIo,
    }
}

fn engine_kind(engine: relay::Engine) -> EngineKind {
    match engine {
        relay::Engine::SocketIo => EngineKind::SocketIo,
        relay::Engine::EngineIo => EngineKind::EngineIo,
    }
}

/// A polling POST to `path` refused for its size before its body was
/// read (the HTTP layer's 413). Its session ends, as for any payload over
/// `maxPayload`: here, or (cluster mode) on the node that holds it, told
/// with `R`. Nothing waits for that node; if Redis cannot take it, the
/// session ends at its ping timeout instead.
pub(crate) fn refuse_post(ctx: &mut Ctx, path: &str, query: &str) {
    let Some(engine) = ctx.sio.engine_for(path) else {
        return;
    };
    let Some((_, owner)) = foreign_owner(ctx, query) else {
        ctx.sio.refuse_payload(engine, query);
        return;
    };
    let (Some(from), Some(cluster)) = (ctx.sio.tag, ctx.cluster.as_mut()) else {
        return;
    };
    let refused = Relay::Refused {
        from,
        engine: relay_engine(engine),
        query,
    };
    let mut payload = Vec::new();
    if relay::write(&refused, &mut payload).is_ok() && cluster.relay(owner, &payload, None).is_ok()
    {
        ctx.stats.sio_relayed += 1;
    }
}

/// Cluster mode: the node that holds the session `query` names, when it
/// is another node than this one.
fn foreign_owner(ctx: &Ctx, query: &str) -> Option<(Sid, NodeTag)> {
    let own = ctx.sio.tag?;
    let sid = crate::wire::engineio::Query::parse(query).sid?;
    let owner = NodeTag::of_sid(sid).filter(|&o| o != own)?;
    Some((Sid::parse(sid)?, owner))
}

/// Cluster mode: a WebSocket for a session that another node holds (a
/// polling session's upgrade that the balancer sent here) is *carried*:
/// this node runs the WebSocket (handshake, frames, deflate, its limits)
/// and the owner the session, each message crossing Redis
/// (`proto/redis/relay.rs`, `O` to `C`). The owner's verdict on the
/// session comes after the 101, so a refusal is a close (as server.ts
/// does for a second WebSocket); no node reading the owner's channel
/// closes it at once. `None`: not another node's session.
fn carry_ws(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    engine: EngineKind,
    accept: &ws_handshake::Accept,
    now: Instant,
) -> Option<Next> {
    let (sid, owner) = foreign_owner(ctx, req.query())?;
    let own = ctx.sio.tag?;
    let cluster = ctx.cluster.as_mut()?;
    let (waiter, named) = relay_ticket(cluster, id);
    let open = Relay::WsOpen {
        from: own,
        waiter: named,
        engine: relay_engine(engine),
        query: req.query(),
    };
    let mut payload = Vec::with_capacity(req.query().len() + 64);
    let sent = match relay::write(&open, &mut payload) {
        Ok(()) => cluster.relay(owner, &payload, Some(waiter)),
        Err(e) => Err(super::cluster::Failure {
            status: 400,
            message: e.to_string(),
        }),
    };
    if let Err(f) = sent {
        let ct = "text/plain; charset=utf-8";
        let body = f.message.as_bytes();
        let meta = app::ReqMeta::of(req);
        return Some(app::sio_respond(ctx, out, meta, f.status, ct, body));
    }
    ctx.stats.sio_carried += 1;
    ctx.trace(|| format!("[{id}] Engine.IO WebSocket for {sid}, carried for node {owner:?}"));
    let role = WsRole::Carried {
        sid,
        owner,
        ticket: waiter.ticket,
        drain: false,
    };
    Some(accept_eio_ws(ctx, out, accept, role, now))
}

/// Sends one carried-WebSocket message to node `to`. Not sent while
/// Redis is down: losing Redis ended every carried WebSocket and carried
/// session already ([`Node::carriers_lost`]). What the edge says of a
/// WebSocket it still carries (a message, a drain) names it to be told
/// when no node read it: the owner is gone, and so is the session
/// ([`Node::carried_unheard`] closes the WebSocket then, rather than at
/// the client's ping timeout).
fn send_relay(ctx: &mut Ctx, to: NodeTag, relay: &Relay<'_>) {
    let Some(cluster) = ctx.cluster.as_mut() else {
        return;
    };
    let heard = match *relay {
        Relay::WsIn { waiter, .. } | Relay::WsDrained { waiter, .. } => {
            ConnId::try_from(waiter.conn)
                .ok()
                .map(|conn| super::cluster::Waiter {
                    conn,
                    ticket: waiter.ticket,
                })
        }
        _ => None,
    };
    let mut payload = Vec::new();
    if cluster.is_up() && relay::write(relay, &mut payload).is_ok() {
        let _ = cluster.relay(to, &payload, heard);
    }
}

/// The edge's side of a carried WebSocket: a message from its client,
/// or its end (`gone`), told to the owner.
pub(super) fn carry_in(ctx: &mut Ctx, id: ConnId, role: WsRole, message: Option<(bool, &[u8])>) {
    let (
        WsRole::Carried {
            sid, owner, ticket, ..
        },
        Some(from),
    ) = (role, ctx.sio.tag)
    else {
        return;
    };
    let waiter = relay::Waiter {
        conn: id as u64,
        ticket,
    };
    let relay = match message {
        Some((binary, data)) => Relay::WsIn {
            from,
            waiter,
            sid,
            binary,
            data,
        },
        None => Relay::WsGone { from, waiter, sid },
    };
    send_relay(ctx, owner, &relay);
}

/// On the owner: a WebSocket another node opened for one of our
/// sessions is asked of the session as our own would be; refused, it is
/// closed there.
fn carried_open(
    ctx: &mut Ctx,
    from: NodeTag,
    waiter: relay::Waiter,
    engine: relay::Engine,
    query: &str,
    now: Instant,
) {
    let engine = engine_kind(engine);
    let code = match ctx.sio.ws_request(engine, query, now) {
        Ok(sid) => {
            let carrier = Carrier {
                node: from,
                waiter,
                engine,
            };
            ctx.trace(|| format!("Engine.IO WebSocket for {sid} carried by node {from:?}"));
            ctx.sio.carried.insert(sid, carrier);
            return;
        }
        // server.ts `onWebSocket`: a second WebSocket is closed at once.
        Err(SessionError::TransportMismatch) => 1000,
        // RFC 6455 §7.4.1: 1008, a message that violates policy (no such
        // session, or not one for this transport).
        Err(_) => 1008,
    };
    send_relay(ctx, from, &Relay::WsClose { waiter, code });
}

/// On the owner: the carrier of `sid` if `from`/`waiter` name it (a
/// message from a WebSocket that has since been replaced is not).
fn carrier_of(ctx: &Ctx, sid: Sid, from: NodeTag, waiter: relay::Waiter) -> Option<Carrier> {
    ctx.sio
        .carried
        .get(&sid)
        .copied()
        .filter(|c| c.node == from && c.waiter == waiter)
}

/// On the owner: what a carrying node tells about one of our sessions'
/// WebSockets. A message for no carrier of ours closes the WebSocket it
/// came from.
fn carried_message(ctx: &mut Ctx, relay: &Relay<'_>, now: Instant) {
    match *relay {
        Relay::WsOpen {
            from,
            waiter,
            engine,
            query,
        } => carried_open(ctx, from, waiter, engine, query, now),
        Relay::WsIn {
            from,
            waiter,
            sid,
            binary,
            data,
        } => match carrier_of(ctx, sid, from, waiter) {
            Some(c) => ctx.sio.ws_message(c.engine, sid, binary, data, now),
            None => send_relay(ctx, from, &Relay::WsClose { waiter, code: 1008 }),
        },
        Relay::WsDrained { from, waiter, sid } if carrier_of(ctx, sid, from, waiter).is_some() => {
            nudge(ctx, Some(sid));
        }
        Relay::WsGone { from, waiter, sid } => {
            if let Some(c) = carrier_of(ctx, sid, from, waiter) {
                ctx.sio.carried.remove(&sid);
                ctx.sio.ws_closed(c.engine, sid, now);
            }
        }
        _ => {}
    }
}

/// A connection stops carrying a session (called by `step` as it leaves
/// `from`): a parked GET that was not answered aborts its poll, a
/// WebSocket that ends tells its session.
pub(super) fn on_leave(ctx: &mut Ctx, id: ConnId, state: &State, to: Phase, now: Instant) {
    match state {
        State::Http(_) => ctx.sio.post_aborted(id),
        State::EioPoll(p) if to != Phase::EioParked && ctx.sio.polls.get(&p.sid) == Some(&id) => {
            ctx.sio.polls.remove(&p.sid);
            ctx.sio.poll_aborted(p.engine, p.sid, now);
        }
        State::WebSocket(ws) if to != Phase::WebSocket => match ws.role {
            WsRole::Eio { sid, engine } if ctx.sio.sockets.get(&sid) == Some(&id) => {
                ctx.sio.sockets.remove(&sid);
                ctx.sio.ws_closed(engine, sid, now);
            }
            role @ WsRole::Carried { .. } => carry_in(ctx, id, role, None),
            _ => {}
        },
        _ => {}
    }
}

/// Answers a parked Engine.IO GET with `body` and turns the connection
/// back to HTTP; requests pipelined behind it are answered next.
pub(super) fn answer_poll(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut super::Conn,
    body: &[u8],
    now: Instant,
) {
    let State::EioPoll(p) = &conn.state else {
        return;
    };
    if ctx.sio.polls.get(&p.sid) == Some(&id) {
        ctx.sio.polls.remove(&p.sid);
    }
    // Only a GET parks: its answer has its body.
    let meta = app::ReqMeta::with_body(p.version, p.keep_alive);
    let next = app::sio_respond(ctx, &mut conn.out, meta, 200, POLL_CONTENT_TYPE, body);
    app::log_answered(ctx, id, now);
    app::resume_after_wait(
        ctx,
        id,
        conn,
        next,
        Event::PollAnswered,
        now,
        |old| match old {
            State::EioPoll(p) => State::Http(p.http),
            other => other,
        },
    );
}

// ---- namespace `/` onto the hub ----------------------------------------------

fn sub_number(sock: usize, slot: usize) -> usize {
    SIO_SUBS + sock * MAX_SUBS + slot
}

/// A polling POST whose head its session has seen.
struct PostHead {
    engine: EngineKind,
    query: String,
    /// Another POST of the session was on its way: the session closed,
    /// and this one is answered "Bad request".
    overlap: bool,
}

/// A message as the packet every socket receives: its text (written
/// once) and its attachments.
pub(crate) struct Encoded {
    text: String,
    attachments: Vec<Vec<u8>>,
}

/// Most attachments a message is sent with (socket.io-parser's limit,
/// as [`SioLimits`]' default): binaries past it stay base64 objects.
const MAX_OUT_ATTACHMENTS: usize = 10;

/// The bytes of `v` if it is a binary payload object,
/// `{"encoding":"base64","data":"<standard base64>"}`.
fn binary_object(v: &Value) -> Option<Vec<u8>> {
    let Value::Object(members) = v else {
        return None;
    };
    if members.len() != 2 || v.get("encoding")?.as_str()? != BINARY_ENCODING {
        return None;
    }
    STANDARD.decode(v.get("data")?.as_str()?).ok()
}

/// A JSON message's binary payload objects, wherever they are in it
/// (the data itself, or nested in objects and arrays), as attachments:
/// the data with a placeholder for each, and the bytes. `None` when it
/// holds none.
fn binary_payload(msg: &Message) -> Option<(Value, Vec<Vec<u8>>)> {
    if msg.kind != PayloadKind::Json || !msg.data().contains(BINARY_ENCODING) {
        return None;
    }
    fn walk(v: &mut Value, found: &mut Vec<Vec<u8>>) {
        if found.len() == MAX_OUT_ATTACHMENTS {
            return;
        }
        if let Some(bytes) = binary_object(v) {
            *v = placeholder(found.len());
            found.push(bytes);
            return;
        }
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, found)),
            Value::Object(members) => members.iter_mut().for_each(|(_, m)| walk(m, found)),
            _ => {}
        }
    }
    let mut v = crate::client::json::parse(msg.data()).ok()?;
    let mut found = Vec::new();
    walk(&mut v, &mut found);
    (!found.is_empty()).then_some((v, found))
}

/// A Socket.IO `publish`'s data with its attachments put back where
/// their placeholders stand, each as a binary payload object; an error
/// for a placeholder that names no attachment.
fn inline_attachments(v: &Value, attachments: &[Vec<u8>]) -> Result<Value, (u16, String)> {
    if let Some(num) = placeholder_num(v) {
        let bytes = num
            .and_then(|i| attachments.get(i))
            .ok_or((400, "a placeholder names no attachment".to_string()))?;
        return Ok(Value::Object(vec![
            ("encoding".into(), Value::String(BINARY_ENCODING.into())),
            ("data".into(), Value::String(STANDARD.encode(bytes))),
        ]));
    }
    Ok(match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| inline_attachments(i, attachments))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, m)| Ok((k.clone(), inline_attachments(m, attachments)?)))
                .collect::<Result<_, (u16, String)>>()?,
        ),
        other => other.clone(),
    })
}

/// A message as `socket.on(EVENT, (data, meta))`. An event name the
/// client's parser refuses (socket.io-parser `isPayloadValid`: a reserved
/// name such as `connect` would end the connection) arrives as `message`,
/// its name in `meta.event`: delivered, never silently skipped. So does
/// `gap`, the name of this server's own notice of lost history, which a
/// message must not pass for. `None` only for text that could not be
/// written.
pub(crate) fn encode_message(msg: &Message) -> Option<Encoded> {
    let named = msg.event_name();
    let reserved = RESERVED_EVENTS.contains(&named) || named == "gap";
    let event = if reserved { "message" } else { named };
    let binary = binary_payload(msg);
    let mut text = Vec::with_capacity(msg.data().len() + event.len() + 64);
    // `<type>[<n>-][JSON]` for namespace `/` (no `/,`): EVENT, or
    // BINARY_EVENT with its attachments.
    match &binary {
        Some((_, found)) => {
            text.push(b'5');
            app::push_num(&mut text, found.len());
            text.extend_from_slice(b"-[");
        }
        None => text.extend_from_slice(b"2["),
    }
    json::write_str(&mut text, event);
    text.push(b',');
    match (&binary, msg.kind) {
        (Some((data, _)), _) => text.extend_from_slice(to_json(data).as_bytes()),
        (None, PayloadKind::Json) => text.extend_from_slice(msg.data().as_bytes()),
        (None, PayloadKind::Text) => json::write_str(&mut text, msg.data()),
    }
    text.extend_from_slice(b",{\"topic\":");
    json::write_str(&mut text, msg.topic.as_str());
    text.extend_from_slice(b",\"id\":");
    json::write_str(&mut text, &msg.id_text);
    if reserved {
        text.extend_from_slice(b",\"event\":");
        json::write_str(&mut text, named);
    }
    text.extend_from_slice(b"}]");
    let text = String::from_utf8(text).ok()?;
    Some(Encoded {
        text,
        attachments: binary.map(|(_, found)| found).unwrap_or_default(),
    })
}

/// Connection state recovery on namespace `/`: an event's last argument
/// is the socket's combined cursor after it (`A=ID,B=ID`, the grammar of
/// `wire::cursor`), which socket.io-client keeps as its `offset` and
/// presents on reconnect; the server resumes every topic named there.
/// The cursor needs no escaping: topic names and ids are JSON-safe.
fn with_offset(text: &str, subs: &Subs) -> String {
    let body = text.strip_suffix(']').unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() + 32 * subs.len() + 4);
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(b",\"");
    subs.write_cursor(&mut out);
    out.extend_from_slice(b"\"]");
    String::from_utf8(out).unwrap_or_default()
}

/// A message's WebSocket frames for Socket.IO sockets, each built on
/// first need and shared by every socket that takes it: plain, and
/// compressed once for sockets that negotiated permessage-deflate with
/// our window (every answer declares `server_no_context_takeover`, so
/// one compressed frame serves them all, RFC 7692 §7.2.1).
#[derive(Default)]
struct SharedFrames {
    plain: Option<Arc<[u8]>>,
    deflated: Option<Arc<[u8]>>,
}

impl SharedFrames {
    /// The Engine.IO message `4<packet>` as a frame for `ws`, or `None`
    /// when the session must write it itself (a deflate window other
    /// than ours).
    fn frame(&mut self, cfg: &Config, ws: &WsSession, text: &str) -> Option<Arc<[u8]>> {
        let len = text.len() + 1;
        match ws.deflate() {
            Some(d) if len >= d.threshold as usize => {
                if d.params.server_max_window_bits < cfg.ws_deflate_server_window_bits {
                    return None;
                }
                let frame = self.deflated.get_or_insert_with(|| {
                    crate::proto::ws_deflate::compress_message(
                        &[b"4", text.as_bytes()],
                        crate::wire::ws_frame::Opcode::Text,
                        cfg.ws_deflate_level.min(9),
                        cfg.ws_deflate_server_window_bits,
                    )
                    .into()
                });
                Some(Arc::clone(frame))
            }
            _ => {
                let frame = self.plain.get_or_insert_with(|| {
                    let mut payload = Vec::with_capacity(len);
                    payload.push(b'4');
                    payload.extend_from_slice(text.as_bytes());
                    let mut frame = Vec::with_capacity(len + 10);
                    crate::proto::ws::write_message(&mut frame, MessageKind::Text, &payload);
                    frame.into()
                });
                Some(Arc::clone(frame))
            }
        }
    }
}

/// What a fan-out did for Socket.IO sockets.
#[derive(Default)]
pub(super) struct Delivered {
    pub(super) count: u64,
    /// WebSocket connections whose queue was already over its cap.
    pub(super) too_slow: Vec<ConnId>,
}

/// Live delivery of `msg` to its Socket.IO subscribers (the fan-out's
/// part for them). A socket whose session is on WebSocket with nothing
/// waiting gets the shared frame on its connection's queue directly;
/// any other (polling, upgrading, binary) goes through its session.
pub(super) fn deliver(
    ctx: &mut Ctx,
    conns: &mut [Option<Box<super::Conn>>],
    subs: &[usize],
    msg: &Message,
) -> Delivered {
    let mut done = Delivered::default();
    let Some(encoded) = encode_message(msg) else {
        return done;
    };
    let mut frames = SharedFrames::default();
    // With recovery, a one-topic socket's offset is `topic=id`: the same
    // for every such socket, so its text (and frame) is shared too.
    let single = ctx.sio.recovery.then(|| {
        let mut one = Subs::default();
        let mut sub = new_sub(&msg.topic, msg.id);
        sub.catching_up = false;
        one.insert(sub);
        with_offset(&encoded.text, &one)
    });
    let Ctx {
        sio, cfg, ready, ..
    } = ctx;
    for &number in subs {
        let (sock, slot) = (
            (number - SIO_SUBS) / MAX_SUBS,
            (number - SIO_SUBS) % MAX_SUBS,
        );
        let Some(Some(s)) = sio.socks.get_mut(sock) else {
            continue;
        };
        let Some(sub) = s.subs.get_mut(slot) else {
            continue;
        };
        // Its replay will read this message from the history, in order.
        if sub.catching_up {
            continue;
        }
        // Queued already by the replay of a subscribe in the same turn.
        if sub.cursor.epoch == msg.id.epoch && msg.id.seq <= sub.cursor.seq {
            continue;
        }
        sub.cursor = msg.id;
        let sid = s.addr.eio;
        // A socket of several topics has an offset of its own.
        let mut own = match &single {
            Some(_) if s.subs.len() != 1 => {
                Some((with_offset(&encoded.text, &s.subs), SharedFrames::default()))
            }
            _ => None,
        };
        let (text, frames): (&str, &mut SharedFrames) = match &mut own {
            Some((t, f)) => (t.as_str(), f),
            None => (single.as_deref().unwrap_or(&encoded.text), &mut frames),
        };
        let direct = encoded.attachments.is_empty()
            && sio.server.is_connected(&s.addr)
            && sio.server.engine().get(sid).is_some_and(|e| {
                e.is_open() && e.transport() == EioTransport::WebSocket && !e.has_pending()
            });
        let conn_id = sio.sockets.get(&sid).copied();
        if let (true, Some(id)) = (direct, conn_id) {
            let Some(conn) = conns.get_mut(id).and_then(Option::as_deref_mut) else {
                continue;
            };
            let State::WebSocket(ws) = &conn.state else {
                continue;
            };
            if let Some(frame) = frames.frame(cfg, &ws.session, text) {
                // DESIGN "Limits": only a queue that already holds more
                // than its cap is a slow reader.
                if conn.out.len() > cfg.subscriber_queue_bytes {
                    done.too_slow.push(id);
                    continue;
                }
                conn.out.push_shared(&frame);
                if !conn.ready {
                    conn.ready = true;
                    ready.push_back(id);
                }
                done.count += 1;
                continue;
            }
        }
        if sio.server.send_encoded(&s.addr, text, &encoded.attachments) {
            done.count += 1;
            sio.dirty = true;
        }
    }
    done
}

/// Carries out what namespace `/` recorded; `true` if there was anything.
fn run_calls(ctx: &mut Ctx, now: Instant) -> bool {
    let mut calls = std::mem::take(&mut lock(&ctx.sio.inbox).calls);
    let waited = ctx.sio.waiting.len();
    if calls.is_empty() && waited == 0 {
        return false;
    }
    let fresh = calls.len();
    // Subscribes that waited for their topic's sync run again first; past
    // their deadline they are refused (503), as every request that waits
    // for Redis is.
    let mut retry = Vec::new();
    for (deadline, call) in std::mem::take(&mut ctx.sio.waiting) {
        if now < deadline {
            retry.push(call);
            continue;
        }
        if let HubCall::Event {
            addr,
            ack: Some(ack),
            ..
        } = call
        {
            let refused = error_ack(503, "the topic did not sync with Redis in time");
            ctx.sio.server.ack(&addr, ack, vec![refused], Vec::new());
        }
    }
    retry.append(&mut calls);
    let calls = retry;
    ctx.sio.dirty = true;
    for call in calls {
        match call {
            HubCall::Connect {
                addr,
                claims,
                resume,
            } => {
                let expires = claims
                    .as_ref()
                    .and_then(Claims::expires_at)
                    .map(|exp| now + Duration::from_secs(exp.saturating_sub(ctx.date_secs)));
                let sock = HubSock {
                    addr: addr.clone(),
                    subs: Subs::default(),
                    claims: claims.map(Box::new),
                    expires,
                };
                let n = match ctx.sio.free.pop() {
                    Some(n) => {
                        ctx.sio.socks[n] = Some(sock);
                        n
                    }
                    None => {
                        ctx.sio.socks.push(Some(sock));
                        ctx.sio.socks.len() - 1
                    }
                };
                ctx.sio.by_sid.insert(addr.eio, n);
                if let Some(t) = expires {
                    ctx.sio.expiries.insert((t, n));
                }
                if let Some(offset) = resume {
                    resume_topics(ctx, &addr, &offset);
                }
            }
            HubCall::Disconnect { addr } => {
                let Some(n) = ctx.sio.by_sid.remove(&addr.eio) else {
                    continue;
                };
                if let Some(sock) = ctx.sio.socks.get_mut(n).and_then(Option::take) {
                    if let Some(t) = sock.expires {
                        ctx.sio.expiries.remove(&(t, n));
                    }
                    for (slot, sub) in sock.subs.iter() {
                        ctx.hub.unsubscribe(&sub.topic, sub_number(n, slot));
                    }
                    ctx.sio.free.push(n);
                }
            }
            HubCall::Event {
                addr,
                name,
                args,
                attachments,
                ack,
            } => {
                let Some(&n) = ctx.sio.by_sid.get(&addr.eio) else {
                    continue;
                };
                let reply = match name.as_str() {
                    "subscribe" if refresh_first(ctx, n, &args, now) => {
                        ctx.sio.refreshing.push(HubCall::Event {
                            addr: addr.clone(),
                            name,
                            args,
                            attachments,
                            ack,
                        });
                        continue;
                    }
                    "subscribe" => match cluster_sync(ctx, &args, now) {
                        Ok(true) => subscribe(ctx, n, &args, now),
                        Ok(false) => {
                            // Waits for its topic, and runs again then.
                            let deadline = now + ctx.cfg.redis_timeout;
                            ctx.sio.waiting.push((
                                deadline,
                                HubCall::Event {
                                    addr: addr.clone(),
                                    name,
                                    args,
                                    attachments,
                                    ack,
                                },
                            ));
                            continue;
                        }
                        Err(refused) => Err(refused),
                    },
                    "unsubscribe" => unsubscribe(ctx, n, &args),
                    "publish" => publish(ctx, n, &args, &attachments, ack, now),
                    _ => Err((
                        404,
                        format!("unknown event {name:?}: subscribe, unsubscribe or publish"),
                    )),
                };
                let value = match reply {
                    Ok(Some(v)) => v,
                    Ok(None) => continue,
                    Err((status, message)) => error_ack(status, &message),
                };
                if let Some(ack) = ack {
                    ctx.sio.server.ack(&addr, ack, vec![value], Vec::new());
                }
            }
        }
    }
    // Progress: new calls, or a waiting subscribe that ran or gave up (a
    // subscribe still waiting is no reason to come back at once).
    fresh > 0 || ctx.sio.waiting.len() != waited
}

/// An ack's value now, `Ok(None)` when it comes later (cluster mode:
/// Redis gives a publish's id; a subscribe waits for its topic's sync),
/// or a refusal.
type Reply = Result<Option<Value>, (u16, String)>;

fn topic_arg(args: &[Value]) -> Result<TopicName, (u16, String)> {
    let name = args
        .first()
        .and_then(Value::as_str)
        .ok_or((400, "the first argument is the topic name".to_string()))?;
    TopicName::parse(name).map_err(|e| (e.status(), e.to_string()))
}

/// `subscribe(TOPIC, {after}, ack)`: joins, replays after the cursor,
/// acks `{"last_id","gap"}`.
fn subscribe(ctx: &mut Ctx, n: usize, args: &[Value], now: Instant) -> Reply {
    let topic = topic_arg(args)?;
    let after = args
        .get(1)
        .and_then(|o| o.get("after"))
        .and_then(Value::as_str);
    let cursor = hub::parse_cursor(after).map_err(|e| (e.status(), e.to_string()))?;
    join(ctx, n, &topic, &cursor, after.unwrap_or(""), now)
}

/// Joins `topic` at `cursor` (`text` as the client wrote it), replays
/// what follows, and answers with the ack's `{"last_id","gap"}`.
fn join(
    ctx: &mut Ctx,
    n: usize,
    topic: &TopicName,
    cursor: &Cursor,
    text: &str,
    now: Instant,
) -> Reply {
    let topic = topic.clone();
    let max = ctx.cfg.max_topics_per_connection.clamp(1, MAX_SUBS);
    let Some(Some(sock)) = ctx.sio.socks.get_mut(n) else {
        return Err((410, "gone".into()));
    };
    if sock
        .claims
        .as_ref()
        .is_some_and(|c| !c.may_subscribe(&topic))
    {
        return Err((
            403,
            format!("the token does not allow subscribing to {topic}"),
        ));
    }
    // Subscribing again moves the subscription to the new cursor.
    if let Some(slot) = sock.subs.find(&topic) {
        sock.subs.remove(slot);
        ctx.hub.unsubscribe(&topic, sub_number(n, slot));
    }
    if sock.subs.len() >= max {
        return Err((400, format!("more than {max} topics on one connection")));
    }
    let start =
        start_position(ctx, &topic, cursor, text, now).map_err(|e| (e.status(), e.to_string()))?;
    let Some(Some(sock)) = ctx.sio.socks.get_mut(n) else {
        return Err((410, "gone".into()));
    };
    // Live messages wait in the history until the replay has caught up
    // (and are read from there, in order).
    let sub = new_sub(&topic, start.last_id);
    let Some(slot) = sock.subs.insert(sub) else {
        return Err((400, "too many topics".into()));
    };
    if let Err(e) = ctx
        .hub
        .subscribe(&topic, sub_number(n, slot), Transport::SocketIo)
    {
        sock.subs.remove(slot);
        return Err((e.status(), e.to_string()));
    }
    if !replay(ctx, n, slot, 0, now) {
        ctx.sio.replaying.insert((n, slot));
    }
    let position = match ctx.sio.socks.get(n) {
        Some(Some(sock)) => sock.subs.get(slot).map_or(start.last_id, |s| s.cursor),
        _ => start.last_id,
    };
    let last_id = ctx.hub.last_id(&topic).unwrap_or(position).to_string();
    Ok(Some(Value::Object(vec![
        ("last_id".into(), Value::String(last_id)),
        ("gap".into(), Value::Bool(start.gap.is_some())),
    ])))
}

/// What a replay may add before it waits for its client: half of
/// `subscriber_queue_bytes`, so that a replay never makes its own socket
/// look like a slow reader, and for polling half of
/// `sio_max_buffered_packets`, the other half being for what comes
/// meanwhile (acks, pings, other topics' messages). `queued`: what the
/// WebSocket connection's queue holds now. `None`: the session is gone.
fn replay_room(ctx: &Ctx, sid: Sid, queued: usize) -> Option<Room> {
    let e = ctx.sio.server.engine().get(sid)?;
    let half = ctx.cfg.subscriber_queue_bytes / 2;
    Some(match e.transport() {
        EioTransport::Polling => {
            let (packets, bytes) = e.buffered();
            Room {
                packets: (ctx.cfg.sio_max_buffered_packets / 2).saturating_sub(packets),
                bytes: half.saturating_sub(bytes),
            }
        }
        EioTransport::WebSocket => Room {
            packets: usize::MAX,
            bytes: half.saturating_sub(queued),
        },
    })
}

/// See [`replay_room`].
#[derive(Clone, Copy, Debug)]
struct Room {
    packets: usize,
    bytes: usize,
}

impl Room {
    /// Another message fits: a message is at most two packets (its text
    /// and one attachment); in bytes the first message of a batch always
    /// fits, as in every replay, so that a reader gets past it.
    fn fits(self) -> bool {
        self.packets >= 2 && self.bytes > 0
    }

    fn limit(self) -> ReplayLimit {
        ReplayLimit {
            messages: REPLAY_BATCH.min(self.packets / 2),
            bytes: self.bytes,
        }
    }

    fn take(&mut self, text: &str, attachments: &[Vec<u8>]) {
        self.packets = self.packets.saturating_sub(1 + attachments.len());
        let bytes = attachments.iter().map(Vec::len).sum::<usize>() + text.len();
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// Replays socket `n`'s subscription in `slot` from its cursor, batch by
/// batch, until it has caught up (`true`: live messages reach it from now
/// on) or its client must first take what is queued (`false`:
/// [`run_replays`] goes on when it has), so that a replay holds at most
/// [`replay_room`], however long the history. `queued`: what the
/// connection's queue holds now (0 when not known). History evicted under
/// a replay that waited is told to the socket as the event `gap`
/// `{"topic","requested","oldest"}`, as the multi-topic transports tell
/// it, and the replay resumes at the oldest message kept.
fn replay(ctx: &mut Ctx, n: usize, slot: usize, queued: usize, now: Instant) -> bool {
    let Some(Some(sock)) = ctx.sio.socks.get(n) else {
        return true;
    };
    let Some(mut room) = replay_room(ctx, sock.addr.eio, queued) else {
        return true; // the session is gone
    };
    loop {
        let Some(Some(sock)) = ctx.sio.socks.get(n) else {
            return true;
        };
        let Some(sub) = sock.subs.get(slot) else {
            return true;
        };
        if !room.fits() {
            return false;
        }
        let (topic, position, addr) = (sub.topic.clone(), sub.cursor, sock.addr.clone());
        let text = position.to_string();
        let Ok(batch) = ctx
            .hub
            .replay(&topic, &Cursor::After(position), &text, now, room.limit())
        else {
            return true;
        };
        if let Some(gap) = &batch.gap {
            let oldest = gap.oldest.map(|o| o.to_string()).unwrap_or_default();
            let told = Value::Object(vec![
                ("topic".into(), Value::String(topic.to_string())),
                ("requested".into(), Value::String(gap.requested.clone())),
                ("oldest".into(), Value::String(oldest)),
            ]);
            ctx.sio.server.emit(&addr, "gap", vec![told], Vec::new());
        }
        let Some(last) = batch.messages.last().map(|m| m.id) else {
            return caught_up(ctx, n, slot, batch.last_id);
        };
        if last == position {
            return caught_up(ctx, n, slot, position);
        }
        for m in &batch.messages {
            let Some(Some(sock)) = ctx.sio.socks.get_mut(n) else {
                return true;
            };
            if let Some(sub) = sock.subs.get_mut(slot) {
                sub.cursor = m.id;
            }
            if let Some(e) = encode_message(m) {
                let text = match ctx.sio.recovery {
                    true => with_offset(&e.text, &sock.subs),
                    false => e.text,
                };
                ctx.sio.server.send_encoded(&addr, &text, &e.attachments);
                room.take(&text, &e.attachments);
            }
        }
        ctx.sio.dirty = true;
    }
}

/// The topic of Socket.IO subscription `number` started a new history
/// (a `DELETE`; in cluster mode, an epoch Redis started afresh): the
/// socket replays from where it stood, which is told as the event `gap`
/// (its cursor is of another epoch), then goes on live. Until then live
/// messages wait in the history, as for a `subscribe`.
pub(super) fn restart_sub(ctx: &mut Ctx, number: usize) {
    let (n, slot) = (
        (number - SIO_SUBS) / MAX_SUBS,
        (number - SIO_SUBS) % MAX_SUBS,
    );
    let Some(Some(sock)) = ctx.sio.socks.get_mut(n) else {
        return;
    };
    let Some(sub) = sock.subs.get_mut(slot) else {
        return;
    };
    sub.catching_up = true;
    ctx.sio.replaying.insert((n, slot));
    ctx.sio.nudged.insert(n);
}

/// The replay has read all there is: live messages from now on.
fn caught_up(ctx: &mut Ctx, n: usize, slot: usize, at: hub::MessageId) -> bool {
    if let Some(Some(sock)) = ctx.sio.socks.get_mut(n) {
        if let Some(sub) = sock.subs.get_mut(slot) {
            if sub.cursor.epoch != at.epoch || sub.cursor.seq < at.seq {
                sub.cursor = at;
            }
            sub.catching_up = false;
        }
    }
    true
}

/// The client of session `sid` took something: its replays that wait
/// are looked at next ([`run_replays`]).
fn nudge(ctx: &mut Ctx, sid: Option<Sid>) {
    if ctx.sio.replaying.is_empty() {
        return;
    }
    if let Some(&n) = sid.and_then(|sid| ctx.sio.by_sid.get(&sid)) {
        ctx.sio.nudged.insert(n);
    }
}

/// `handle_sent`: a connection's queue was written; if it carries an
/// Engine.IO session on WebSocket, that session's replays may go on.
///
/// A carried WebSocket whose owner asked to hear it (a replay of the
/// session waits) tells it once its queue is empty: `D`.
pub(super) fn on_sent(ctx: &mut Ctx, id: ConnId, conn: &mut super::Conn) {
    let State::WebSocket(ws) = &mut conn.state else {
        return;
    };
    match &mut ws.role {
        WsRole::Eio { sid, .. } if !ctx.sio.replaying.is_empty() => nudge(ctx, Some(*sid)),
        WsRole::Carried {
            sid,
            owner,
            ticket,
            drain,
        } if *drain && conn.out.is_empty() => {
            *drain = false;
            let (Some(from), owner) = (ctx.sio.tag, *owner) else {
                return;
            };
            let waiter = relay::Waiter {
                conn: id as u64,
                ticket: *ticket,
            };
            let sid = *sid;
            send_relay(ctx, owner, &Relay::WsDrained { from, waiter, sid });
        }
        _ => {}
    }
}

/// Goes on with the replays of the sockets whose clients took something
/// since they waited (a polling client's next poll, a WebSocket's queue
/// written out: each is a `handle_*` that ends in [`Node::sio_flush`]);
/// `true` if any wrote something.
fn run_replays(ctx: &mut Ctx, conns: &[Option<Box<super::Conn>>], now: Instant) -> bool {
    if ctx.sio.nudged.is_empty() {
        return false;
    }
    let mut wrote = false;
    for n in std::mem::take(&mut ctx.sio.nudged) {
        let slots: Vec<usize> = ctx
            .sio
            .replaying
            .range((n, 0)..=(n, usize::MAX))
            .map(|&(_, slot)| slot)
            .collect();
        for slot in slots {
            ctx.sio.replaying.remove(&(n, slot));
            let Some(Some(sock)) = ctx.sio.socks.get(n) else {
                continue;
            };
            let Some(before) = sock
                .subs
                .get(slot)
                .filter(|s| s.catching_up)
                .map(|s| s.cursor)
            else {
                continue;
            };
            let queued = ctx
                .sio
                .sockets
                .get(&sock.addr.eio)
                .and_then(|&id| conns.get(id))
                .and_then(Option::as_deref)
                .map_or(0, |c| c.out.len());
            let done = replay(ctx, n, slot, queued, now);
            let after = match ctx.sio.socks.get(n) {
                Some(Some(sock)) => sock.subs.get(slot).map(|s| s.cursor),
                _ => None,
            };
            wrote |= after != Some(before);
            if !done {
                ctx.sio.replaying.insert((n, slot));
            }
        }
    }
    wrote
}

/// A recovering socket rejoins every topic of its offset where it stood,
/// as if it had sent `subscribe(topic, {after})` for each (so the token
/// and, in cluster mode, the topic's sync apply); a malformed offset
/// resumes nothing.
fn resume_topics(ctx: &mut Ctx, addr: &SioAddr, offset: &str) {
    let limits = crate::wire::cursor::CursorLimits::from_config(&ctx.cfg);
    let Ok(cursor) = crate::wire::cursor::CombinedCursor::parse(offset, &limits) else {
        return;
    };
    let mut inbox = lock(&ctx.sio.inbox);
    for t in cursor.topics() {
        let after = match t.cursor {
            Cursor::After(id) => id.to_string(),
            _ => "earliest".to_string(),
        };
        inbox.calls.push(HubCall::Event {
            addr: addr.clone(),
            name: "subscribe".into(),
            args: vec![
                Value::String(t.topic.clone()),
                Value::Object(vec![("after".into(), Value::String(after))]),
            ],
            attachments: Vec::new(),
            ack: None,
        });
    }
}

fn unsubscribe(ctx: &mut Ctx, n: usize, args: &[Value]) -> Reply {
    let topic = topic_arg(args)?;
    if ctx.cluster.is_some() {
        cancel_waiting(ctx, n, &topic);
    }
    if let Some(Some(sock)) = ctx.sio.socks.get_mut(n) {
        if let Some(slot) = sock.subs.find(&topic) {
            sock.subs.remove(slot);
            ctx.hub.unsubscribe(&topic, sub_number(n, slot));
        }
    }
    Ok(Some(Value::Object(vec![(
        "topic".into(),
        Value::String(topic.to_string()),
    )])))
}

/// `publish(TOPIC, DATA, {event}, ack)`: acks `{"id"}`. A string is
/// published as text, any other JSON value as JSON, a binary attachment
/// as [`BINARY_ENCODING`].
fn publish(
    ctx: &mut Ctx,
    n: usize,
    args: &[Value],
    attachments: &[Vec<u8>],
    ack: Option<AckId>,
    now: Instant,
) -> Reply {
    let topic = topic_arg(args)?;
    if let Some(Some(sock)) = ctx.sio.socks.get(n) {
        if sock.claims.as_ref().is_some_and(|c| !c.may_publish(&topic)) {
            return Err((
                403,
                format!("the token does not allow publishing to {topic}"),
            ));
        }
    }
    let event = match args
        .get(2)
        .and_then(|o| o.get("event"))
        .and_then(Value::as_str)
    {
        Some(e) => Some(EventName::parse(e).map_err(|e| (e.status(), e.to_string()))?),
        None => None,
    };
    let data = args.get(1).unwrap_or(&Value::Null);
    let (text, kind) = match data {
        Value::String(s) => (s.clone(), PayloadKind::Text),
        // A BINARY_EVENT: each attachment, wherever its placeholder is
        // (the data itself, or nested), becomes a binary payload object.
        other if !attachments.is_empty() => (
            to_json(&inline_attachments(other, attachments)?),
            PayloadKind::Json,
        ),
        other => (to_json(other), PayloadKind::Json),
    };
    if text.len() > ctx.cfg.max_message_bytes {
        return Err((413, "message too large".into()));
    }
    // Cluster mode: Redis gives the id; the ack waits for it.
    if let Some(c) = ctx.cluster.as_mut() {
        let from = match (ack, ctx.sio.socks.get(n)) {
            (Some(ack), Some(Some(sock))) => PublishFrom::SocketIo {
                eio: sock.addr.eio,
                ack,
            },
            _ => PublishFrom::Nobody,
        };
        c.publish(from, &topic, event.as_ref(), &text, kind)
            .map_err(|f| (f.status, f.message))?;
        return Ok(None);
    }
    let msg = super::publish(ctx, None, &topic, event.as_ref(), &text, kind, now)
        .map_err(|e| (e.status(), e.to_string()))?;
    Ok(Some(Value::Object(vec![(
        "id".into(),
        Value::String(msg.id_text.to_string()),
    )])))
}

/// Cluster mode: whether a subscribe's topic is in sync with Redis (it
/// starts following it if need be); `Ok(false)`: wait for it. Without
/// Redis every topic is.
fn cluster_sync(ctx: &mut Ctx, args: &[Value], now: Instant) -> Result<bool, (u16, String)> {
    let Some(c) = ctx.cluster.as_mut() else {
        return Ok(true);
    };
    // A bad name is refused by the subscribe itself.
    let Ok(topic) = topic_arg(args) else {
        return Ok(true);
    };
    match c.sync(&topic, ctx.hub.last_id(&topic), ctx.cfg.redis_linger, now) {
        Sync::Live => Ok(true),
        Sync::Pending => Ok(false),
        Sync::Down => Err((503, "Redis is unavailable".into())),
    }
}

/// A cluster publish's id (or failure) came back from Redis: the ack the
/// socket waited for.
pub(super) fn answer_publish(
    ctx: &mut Ctx,
    eio: Sid,
    ack: AckId,
    result: Result<hub::MessageId, super::cluster::Failure>,
) {
    let value = match result {
        Ok(id) => Value::Object(vec![("id".into(), Value::String(id.to_string()))]),
        Err(f) => error_ack(f.status, &f.message),
    };
    let addr = SioAddr {
        eio,
        nsp: "/".into(),
    };
    ctx.sio.server.ack(&addr, ack, vec![value], Vec::new());
    ctx.sio.dirty = true;
}

// ---- cluster mode: cursors from other nodes -----------------------------------

/// Whether a subscribe must first wait for one fresh read of its topic
/// from Redis (and that read is asked for): its topic is in sync, but its
/// cursor is past the mirror or of another epoch — it may be one another
/// node just handed out, its message still on its way here by pub/sub —
/// so judging it now could tell the socket `gap` for a message that
/// exists. `/ws` subscribes and HTTP requests wait the same way.
fn refresh_first(ctx: &mut Ctx, n: usize, args: &[Value], now: Instant) -> bool {
    let Some(c) = ctx.cluster.as_mut() else {
        return false;
    };
    let Ok(topic) = topic_arg(args) else {
        return false;
    };
    let after = args
        .get(1)
        .and_then(|o| o.get("after"))
        .and_then(Value::as_str);
    let Ok(Cursor::After(want)) = hub::parse_cursor(after) else {
        return false;
    };
    // A refusal needs no read (and no read for a topic the token does
    // not allow).
    let allowed = match ctx.sio.socks.get(n) {
        Some(Some(sock)) => sock.claims.as_ref().is_none_or(|c| c.may_subscribe(&topic)),
        _ => false,
    };
    if !allowed || !c.is_up() {
        return false;
    }
    let have = ctx.hub.last_id(&topic);
    if c.sync(&topic, have, ctx.cfg.redis_linger, now) != Sync::Live {
        return false; // the first sync reads Redis anyway (cluster_sync)
    }
    let ahead = super::ahead_of(want, have);
    if ahead {
        c.refresh_read(&topic);
    }
    ahead
}

/// Runs the subscribes whose fresh read is over (done, or failed with the
/// connection: then against the mirror, as every request on a live topic
/// while Redis is down, which refuses a cursor past it); `true` if any
/// ran.
fn run_refreshed(ctx: &mut Ctx, now: Instant) -> bool {
    if ctx.sio.refreshing.is_empty() {
        return false;
    }
    let mut ran = false;
    for call in std::mem::take(&mut ctx.sio.refreshing) {
        let HubCall::Event {
            addr,
            name,
            args,
            attachments,
            ack,
        } = call
        else {
            continue;
        };
        let reading = match (ctx.cluster.as_ref(), topic_arg(&args)) {
            (Some(c), Ok(topic)) => c.reading(&topic),
            _ => false,
        };
        if reading {
            ctx.sio.refreshing.push(HubCall::Event {
                addr,
                name,
                args,
                attachments,
                ack,
            });
            continue;
        }
        ran = true;
        let Some(&n) = ctx.sio.by_sid.get(&addr.eio) else {
            continue; // the socket is gone
        };
        let reply = match cluster_sync(ctx, &args, now) {
            Ok(true) => subscribe(ctx, n, &args, now),
            Ok(false) => {
                // Unfollowed meanwhile: it waits for the first sync.
                let deadline = now + ctx.cfg.redis_timeout;
                let call = HubCall::Event {
                    addr,
                    name,
                    args,
                    attachments,
                    ack,
                };
                ctx.sio.waiting.push((deadline, call));
                continue;
            }
            Err(refused) => Err(refused),
        };
        if let Some(ack) = ack {
            let value = match reply {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err((status, message)) => error_ack(status, &message),
            };
            ctx.sio.server.ack(&addr, ack, vec![value], Vec::new());
        }
    }
    ctx.sio.dirty |= ran;
    ran
}

/// An unsubscribe overtakes the socket's subscribes to `topic` that still
/// wait for Redis: they are refused (409) before it is acked, so the
/// socket ends unsubscribed, as it asked last.
fn cancel_waiting(ctx: &mut Ctx, n: usize, topic: &TopicName) {
    let Some(Some(sock)) = ctx.sio.socks.get(n) else {
        return;
    };
    let eio = sock.addr.eio;
    let overtaken = |call: &HubCall| match call {
        HubCall::Event { addr, args, .. } => {
            addr.eio == eio && topic_arg(args).is_ok_and(|t| t == *topic)
        }
        _ => false,
    };
    let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut ctx.sio.waiting)
        .into_iter()
        .partition(|(_, call)| overtaken(call));
    ctx.sio.waiting = kept;
    let (more, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut ctx.sio.refreshing)
        .into_iter()
        .partition(|call| overtaken(call));
    ctx.sio.refreshing = kept;
    for call in gone.into_iter().map(|(_, c)| c).chain(more) {
        if let HubCall::Event {
            addr,
            ack: Some(ack),
            ..
        } = call
        {
            let value = error_ack(409, "unsubscribed before the topic was in sync");
            ctx.sio.server.ack(&addr, ack, vec![value], Vec::new());
        }
    }
}

// ---- the node's side -----------------------------------------------------------

impl Node {
    /// Registers Socket.IO handlers for namespace `name` (`/` or
    /// `/something`) on `/socket.io/`. Registering `/` replaces the hub's
    /// namespace (subscribe/publish) with the application's.
    ///
    /// Panics if `name` does not start with `/` or contains `,` (the
    /// server's own configuration, never a peer's input).
    pub fn register_namespace(&mut self, name: &str, handlers: Box<dyn Namespace + Send>) {
        self.ctx.sio.register(name, handlers);
    }

    /// Engine.IO sids, Socket.IO ids and pids from counters instead of
    /// the kernel's randomness, so that two runs of one script give the
    /// same bytes: for simulated-time harnesses (`sim::Harness`, whose
    /// fuzz property compares a run fed whole with one fed byte by byte).
    /// Never for a server: anyone could then guess a session's sid.
    pub fn use_counter_sids(&mut self) {
        let sio = &mut self.ctx.sio;
        sio.server
            .set_sid_sources(counter_sids(sio.tag), counter_sids(None));
        if let Some((_, s)) = &mut sio.echo {
            s.set_sid_source(counter_sids(sio.tag));
        }
        lock(&sio.inbox).new_pid = counter_sids(None);
    }

    /// Applies everything the Engine.IO sessions want written to the
    /// connections that carry them, and carries out namespace `/`'s
    /// requests, until nothing is left.
    pub(super) fn sio_flush(&mut self, now: Instant) {
        loop {
            let mut any = run_calls(&mut self.ctx, now);
            any |= run_refreshed(&mut self.ctx, now);
            any |= run_replays(&mut self.ctx, &self.conns, now);
            while let Some((sid, t)) = self.ctx.sio.poll_transmit() {
                any = true;
                self.sio_apply(sid, t, now);
            }
            while let Some((sid, _)) = self.ctx.sio.server.poll_closed() {
                lock(&self.ctx.sio.inbox).tokens.remove(&sid);
            }
            if !any {
                break;
            }
        }
        self.ctx.sio.refresh_deadline();
    }

    /// Cluster mode: a message another node relayed to this one.
    pub(super) fn sio_relayed(&mut self, payload: &[u8], now: Instant) {
        match relay::parse(payload) {
            Ok(request @ Relay::Request { .. }) => relayed_request(&mut self.ctx, &request, now),
            Ok(Relay::Refused { engine, query, .. }) => {
                self.ctx.sio.refuse_payload(engine_kind(engine), query);
            }
            Ok(Relay::Answer {
                waiter,
                status,
                content_type,
                body,
            }) => {
                let Ok(conn) = ConnId::try_from(waiter.conn) else {
                    return;
                };
                let answer = app::BrokerAnswer::Relayed {
                    status,
                    content_type: content_type.to_string(),
                    body: body.to_vec(),
                };
                let w = super::cluster::Waiter {
                    conn,
                    ticket: waiter.ticket,
                };
                self.wake(w, Some(answer), now);
            }
            Ok(Relay::WsOut {
                waiter,
                binary,
                drain,
                data,
            }) => self.carried_out(waiter, binary, drain, data, now),
            Ok(Relay::WsClose { waiter, code }) => {
                if let Some(id) = self.carried_conn(waiter) {
                    if let Some(conn) = slot_of(&mut self.conns, id) {
                        super::end_stream(&mut self.ctx, id, conn, code, "", now);
                    }
                    self.settle(id, now);
                }
            }
            Ok(relay) => carried_message(&mut self.ctx, &relay, now),
            Err(e) => self
                .ctx
                .log
                .push(format!("pushwire: relayed message ignored: {e}")),
        }
    }

    /// On the edge: the connection of the carried WebSocket `waiter`
    /// names, if it is still that one.
    fn carried_conn(&mut self, waiter: relay::Waiter) -> Option<ConnId> {
        let id = ConnId::try_from(waiter.conn).ok()?;
        let conn = self.conns.get(id)?.as_deref()?;
        match &conn.state {
            State::WebSocket(ws) => match ws.role {
                WsRole::Carried { ticket, .. } if ticket == waiter.ticket => Some(id),
                _ => None,
            },
            _ => None,
        }
    }

    /// On the edge: the owner's message for the client of a carried
    /// WebSocket, written as the owner's own WebSocket would write it.
    fn carried_out(
        &mut self,
        waiter: relay::Waiter,
        binary: bool,
        drain: bool,
        data: &[u8],
        now: Instant,
    ) {
        let Some(id) = self.carried_conn(waiter) else {
            return;
        };
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return;
        };
        write_eio_message(&mut self.ctx, id, conn, binary, data, now);
        if let State::WebSocket(ws) = &mut conn.state {
            if let WsRole::Carried { drain: asked, .. } = &mut ws.role {
                *asked |= drain;
            }
        }
        self.settle(id, now);
        // Already written out (nothing else was queued): told at once.
        if drain {
            if let Some(conn) = slot_of(&mut self.conns, id) {
                if conn.out.is_empty() {
                    on_sent(&mut self.ctx, id, conn);
                }
            }
        }
    }

    /// Redis was lost: what carried WebSockets sent, or were sent, since
    /// may be lost, and a lost message must not go untold. Every carried
    /// WebSocket of this node closes (1011, RFC 6455 §7.4.1: an
    /// unexpected condition), and every session of this node that
    /// another node carries ends as if its WebSocket had closed; their
    /// clients reconnect (and, with `--sio-recovery`, recover).
    pub(super) fn carriers_lost(&mut self, now: Instant) {
        for (sid, c) in std::mem::take(&mut self.ctx.sio.carried) {
            self.ctx.sio.ws_closed(c.engine, sid, now);
        }
        let carried: Vec<ConnId> = (0..self.conns.len())
            .filter(|&id| {
                matches!(
                    self.conns[id].as_deref().map(|c| &c.state),
                    Some(State::WebSocket(ws)) if matches!(ws.role, WsRole::Carried { .. })
                )
            })
            .collect();
        for id in carried {
            if let Some(conn) = slot_of(&mut self.conns, id) {
                super::end_stream(&mut self.ctx, id, conn, 1011, "Redis connection lost", now);
            }
            self.settle(id, now);
        }
    }

    /// On the edge: a carried WebSocket whose `O`, `M` or `D` reached no
    /// node (no node reads its owner's channel) has no session: it is
    /// closed.
    /// `false`: `w` is no carried WebSocket's.
    pub(super) fn carried_unheard(&mut self, w: super::cluster::Waiter, now: Instant) -> bool {
        let waiter = relay::Waiter {
            conn: w.conn as u64,
            ticket: w.ticket,
        };
        let Some(id) = self.carried_conn(waiter) else {
            return false;
        };
        if let Some(conn) = slot_of(&mut self.conns, id) {
            // RFC 6455 §7.4.1: 1008, policy (no such session).
            super::end_stream(&mut self.ctx, id, conn, 1008, "Session ID unknown", now);
        }
        self.settle(id, now);
        true
    }

    fn sio_apply(&mut self, sid: Sid, t: Transmit, now: Instant) {
        match t {
            Transmit::PollResponse(body) => {
                nudge(&mut self.ctx, Some(sid));
                if let Some((from, waiter)) = self.ctx.sio.remote_polls.remove(&sid) {
                    send_answer(&mut self.ctx, from, waiter, 200, POLL_CONTENT_TYPE, &body);
                    return;
                }
                let Some(&id) = self.ctx.sio.polls.get(&sid) else {
                    return;
                };
                if let Some(conn) = slot_of(&mut self.conns, id) {
                    answer_poll(&mut self.ctx, id, conn, &body, now);
                }
                self.settle(id, now);
            }
            Transmit::WsMessage { binary, data } => {
                let Some(&id) = self.ctx.sio.sockets.get(&sid) else {
                    if let Some(c) = self.ctx.sio.carried.get(&sid).copied() {
                        // A replay that waits for room hears when the
                        // carrier has written this out.
                        let drain = self.ctx.sio.by_sid.get(&sid).is_some_and(|&n| {
                            let mut slots = self.ctx.sio.replaying.range((n, 0)..=(n, usize::MAX));
                            slots.next().is_some()
                        });
                        let relay = Relay::WsOut {
                            waiter: c.waiter,
                            binary,
                            drain,
                            data: &data,
                        };
                        send_relay(&mut self.ctx, c.node, &relay);
                    }
                    return;
                };
                let Some(conn) = slot_of(&mut self.conns, id) else {
                    return;
                };
                write_eio_message(&mut self.ctx, id, conn, binary, &data, now);
                self.settle(id, now);
            }
            Transmit::CloseWs(code) => {
                let Some(id) = self.ctx.sio.sockets.remove(&sid) else {
                    if let Some(c) = self.ctx.sio.carried.remove(&sid) {
                        let relay = Relay::WsClose {
                            waiter: c.waiter,
                            code,
                        };
                        send_relay(&mut self.ctx, c.node, &relay);
                    }
                    return;
                };
                if let Some(conn) = slot_of(&mut self.conns, id) {
                    super::end_stream(&mut self.ctx, id, conn, code, "", now);
                }
                self.settle(id, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{EventName, MessageId};

    fn message(data: &str, kind: PayloadKind, event: Option<&str>) -> Message {
        let topic = TopicName::parse("news").unwrap();
        let event = event.map(|e| EventName::parse(e).unwrap());
        Message::new(
            &topic,
            MessageId { epoch: 7, seq: 3 },
            event.as_ref(),
            data,
            kind,
            Instant::now(),
        )
    }

    use std::time::Duration;

    use crate::node::sim::Harness;

    fn harness() -> Harness {
        Harness::new(Config {
            sio_ping_interval: Duration::from_millis(300),
            sio_ping_timeout: Duration::from_millis(200),
            ..Config::default()
        })
    }

    fn get(sid: &str) -> Vec<u8> {
        format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: t\r\n\r\n")
            .into_bytes()
    }

    /// A polling handshake on a new connection; its sid.
    fn handshake(h: &mut Harness) -> (ConnId, String) {
        let c = h.connect();
        h.send(
            c,
            b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        let text = h.take_text(c);
        let at = text.find("{\"sid\":\"").expect("an open packet") + 8;
        (c, text[at..at + Sid::LEN].to_string())
    }

    #[test]
    fn a_parked_get_waits_in_its_state_and_the_ping_answers_it_on_time() {
        let mut h = harness();
        let (c, sid) = handshake(&mut h);
        h.send(c, &get(&sid));
        assert_eq!(h.node.conns[c].as_ref().unwrap().phase(), Phase::EioParked);
        assert_eq!(h.take_text(c), "");
        h.advance(Duration::from_millis(299));
        assert_eq!(h.take_text(c), "", "no ping before pingInterval");
        h.advance(Duration::from_millis(1));
        let answer = h.take_text(c);
        assert!(answer.ends_with("\r\n\r\n2"), "{answer}");
        assert_eq!(h.node.conns[c].as_ref().unwrap().phase(), Phase::Http);
        // No pong: the session ends at the ping's due time + pingTimeout.
        h.advance(Duration::from_millis(199));
        assert_eq!(h.node.ctx.sio.server.engine().len(), 1);
        h.advance(Duration::from_millis(1));
        assert_eq!(h.node.ctx.sio.server.engine().len(), 0);
    }

    #[test]
    fn a_parked_get_that_hangs_up_ends_its_session_and_pipelining_waits() {
        let mut h = harness();
        let (c, sid) = handshake(&mut h);
        // A GET and a pipelined request behind it: the second waits.
        let mut two = get(&sid);
        two.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        h.send(c, &two);
        assert_eq!(h.take_text(c), "");
        h.publish("x", "unrelated");
        assert_eq!(h.take_text(c), "");
        h.advance(Duration::from_millis(300));
        let both = h.take_text(c);
        assert!(both.contains("\r\n\r\n2HTTP/1.1 200 OK"), "{both}");
        h.send(c, &get(&sid));
        assert!(h
            .node
            .ctx
            .sio
            .polls
            .contains_key(&Sid::parse(&sid).unwrap()));
        h.eof(c);
        assert!(h.node.ctx.sio.polls.is_empty());
        assert_eq!(h.node.ctx.sio.server.engine().len(), 0);
    }

    fn post_head(sid: &str, len: usize) -> Vec<u8> {
        format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: t\r\n\
             Content-Type: text/plain\r\nContent-Length: {len}\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_post_while_another_posts_body_is_coming_is_refused_and_ends_the_session() {
        let mut h = harness();
        let (c, sid) = handshake(&mut h);
        h.send(c, &get(&sid));
        // The first POST's head and part of its body.
        let (a, b) = (h.connect(), h.connect());
        let mut first = post_head(&sid, 6);
        first.extend_from_slice(b"4he");
        h.send(a, &first);
        assert_eq!(h.take_text(a), "");
        // A second, whole, overlaps it (polling.ts: "data request
        // overlap from client").
        let mut second = post_head(&sid, 3);
        second.extend_from_slice(b"4hi");
        h.send(b, &second);
        let refused = h.take_text(b);
        assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
        assert!(
            refused.ends_with(r#"{"code":3,"message":"Bad request"}"#),
            "{refused}"
        );
        // The parked GET is ended with a close packet, the session is gone,
        // and the first POST's body finds no session.
        assert!(h.take_text(c).ends_with("\r\n\r\n1"));
        h.send(a, b"llo");
        let late = h.take_text(a);
        assert!(
            late.ends_with(r#"{"code":1,"message":"Session ID unknown"}"#),
            "{late}"
        );
        assert!(h.node.ctx.sio.posts.is_empty());
    }

    #[test]
    fn a_post_cut_off_mid_body_does_not_make_the_next_one_overlap() {
        let mut h = harness();
        let (_, sid) = handshake(&mut h);
        let a = h.connect();
        let mut first = post_head(&sid, 6);
        first.extend_from_slice(b"4he");
        h.send(a, &first);
        h.eof(a);
        assert!(h.node.ctx.sio.posts.is_empty());
        // The next POST (two pongs) arrives in pieces, on one connection,
        // and is fine.
        let b = h.connect();
        h.send(b, &post_head(&sid, 3));
        h.send(b, b"3\x1e");
        h.send(b, b"3");
        let ok = h.take_text(b);
        assert!(ok.ends_with("\r\n\r\nok"), "{ok}");
        let mut whole = post_head(&sid, 2);
        whole.extend_from_slice(b"40");
        h.send(b, &whole);
        let ok = h.take_text(b);
        assert!(ok.ends_with("\r\n\r\nok"), "{ok}");
        assert_eq!(h.node.ctx.sio.server.engine().len(), 1);
    }

    /// A client's text frame (masked with the zero key, RFC 6455 §5.3).
    fn frame(text: &str) -> Vec<u8> {
        assert!(text.len() < 126);
        let mut f = vec![0x81, 0x80 | text.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(text.as_bytes());
        f
    }

    /// A connection upgraded to an Engine.IO session on WebSocket.
    fn websocket_session(h: &mut Harness) -> ConnId {
        let c = h.connect();
        h.send(
            c,
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: t\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(h.take_text(c).starts_with("HTTP/1.1 101"));
        c
    }

    #[test]
    fn a_websocket_socket_that_does_not_read_is_cut_off_at_its_queue_cap() {
        let mut h = Harness::new(Config {
            subscriber_queue_bytes: 16 * 1024,
            ws_deflate: false,
            ..Config::default()
        });
        let c = websocket_session(&mut h);
        h.send(c, &frame("40"));
        h.send(c, &frame(r#"42["subscribe","s"]"#));
        assert!(h.take_text(c).contains("40{\"sid\""));
        // The client stops reading.
        h.clients.get_mut(&c).unwrap().window = 0;
        let big = "x".repeat(6 * 1024);
        for _ in 0..3 {
            h.publish("s", &big);
        }
        assert_eq!(h.node.stats().slow_disconnects, 0, "at the cap, not over");
        assert_eq!(h.node.ctx.sio.server.engine().len(), 1);
        h.publish("s", &big);
        h.publish("s", &big);
        assert_eq!(h.node.stats().slow_disconnects, 1);
        // Its session is over, and its subscription with it.
        assert_eq!(h.node.ctx.sio.server.engine().len(), 0);
        let topic = TopicName::parse("s").unwrap();
        assert!(h.node.hub().subscribers(&topic).is_empty());
    }

    #[test]
    fn a_deleted_topic_is_told_as_a_gap_event_and_the_new_epoch_follows() {
        let mut h = Harness::new(Config {
            ws_deflate: false,
            ..Config::default()
        });
        let c = websocket_session(&mut h);
        h.send(c, &frame("40"));
        h.send(c, &frame(r#"42["subscribe","d"]"#));
        assert!(h.take_text(c).contains("40{\"sid\""));
        let old = h.publish("d", "before");
        assert!(h.take_text(c).contains("\"before\""));
        // DESIGN: "DELETE … subscribers of it are told gap".
        let admin = h.connect();
        h.send(admin, b"DELETE /topics/d HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(h.take_text(admin).starts_with("HTTP/1.1 200"));
        let told = h.take_text(c);
        let gap = format!(r#"42["gap",{{"topic":"d","requested":"{old}","oldest":""}}]"#);
        assert!(told.ends_with(&gap), "{told:?}");
        // The next message is the new epoch's first, and comes once.
        let new = h.publish("d", "after");
        let (new_epoch, old_epoch) = (new.split('-').next(), old.split('-').next());
        assert!(
            new.ends_with("-1") && new_epoch != old_epoch,
            "{new} after {old}"
        );
        let told = h.take_text(c);
        assert_eq!(told.matches("\"after\"").count(), 1, "{told:?}");
        assert!(told.contains(&new), "{told:?}");
    }

    #[test]
    fn a_text_message_is_one_event_with_its_meta() {
        let e = encode_message(&message("hi \"you\"", PayloadKind::Text, None)).unwrap();
        assert_eq!(
            e.text,
            r#"2["message","hi \"you\"",{"topic":"news","id":"7-3"}]"#
        );
        assert!(e.attachments.is_empty());
        let e = encode_message(&message(r#"{"a":1}"#, PayloadKind::Json, Some("tick"))).unwrap();
        assert_eq!(e.text, r#"2["tick",{"a":1},{"topic":"news","id":"7-3"}]"#);
    }

    #[test]
    fn a_base64_payload_is_a_binary_event_and_a_reserved_name_comes_as_message() {
        let data = r#"{"encoding":"base64","data":"AAEC"}"#;
        let e = encode_message(&message(data, PayloadKind::Json, None)).unwrap();
        assert_eq!(
            e.text,
            r#"51-["message",{"_placeholder":true,"num":0},{"topic":"news","id":"7-3"}]"#
        );
        assert_eq!(e.attachments, vec![vec![0u8, 1, 2]]);
        // The same text as text stays text.
        let e = encode_message(&message(data, PayloadKind::Text, None)).unwrap();
        assert!(e.text.starts_with("2[\"message\",\"{"));
        // socket.io-client would drop the connection on `connect`: it
        // arrives as `message`, with its name in the meta.
        let e = encode_message(&message("x", PayloadKind::Text, Some("connect"))).unwrap();
        assert_eq!(
            e.text,
            r#"2["message","x",{"topic":"news","id":"7-3","event":"connect"}]"#
        );
        // `gap` is the server's own notice: a message so named is not one.
        let e = encode_message(&message("x", PayloadKind::Text, Some("gap"))).unwrap();
        assert!(e.text.starts_with(r#"2["message","x",{"#), "{}", e.text);
        assert!(e.text.ends_with(r#""event":"gap"}]"#), "{}", e.text);
    }

    fn post(sid: &str, body: &str) -> Vec<u8> {
        format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: t\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// The packets of the poll answers in `text` (several answers, when
    /// pipelined), one list per answer.
    fn payloads(text: &str) -> Vec<Vec<String>> {
        text.split("HTTP/1.1 200 OK")
            .filter_map(|r| r.split_once("\r\n\r\n"))
            .map(|(_, body)| body.split('\x1e').map(str::to_string).collect())
            .collect()
    }

    /// A polling session with namespace `/` connected: its GET connection,
    /// a connection for its POSTs, and its sid.
    fn connected_socket(h: &mut Harness) -> (ConnId, ConnId, String) {
        let (c, sid) = handshake(h);
        let p = h.connect();
        h.send(p, &post(&sid, "40"));
        h.send(c, &get(&sid));
        assert!(h.take_text(c).contains("40{\"sid\""));
        (c, p, sid)
    }

    /// A polling socket that subscribed from `earliest` to `topic`, which
    /// holds `kept` messages `m0`, `m1`, … (`ack`: the subscribe's ack id,
    /// or none).
    fn replaying(cfg: Config, topic: &str, kept: usize, ack: &str) -> (Harness, ConnId, String) {
        let mut h = Harness::new(cfg);
        for i in 0..kept {
            h.publish(topic, &format!("m{i}"));
        }
        let (c, p, sid) = connected_socket(&mut h);
        let subscribe = format!(r#"42{ack}["subscribe","{topic}",{{"after":"earliest"}}]"#);
        h.send(p, &post(&sid, &subscribe));
        (h, c, sid)
    }

    /// The text of a `message` event's packet.
    fn message_text(packet: &str) -> Option<String> {
        let rest = packet.strip_prefix("42[\"message\",\"")?;
        rest.split('"').next().map(str::to_string)
    }

    #[test]
    fn a_long_replay_over_polling_comes_in_batches_as_the_client_polls() {
        let cfg = Config {
            sio_max_buffered_packets: 20,
            ..Config::default()
        };
        let (mut h, c, sid) = replaying(cfg, "t", 100, "1");
        // The waiting replay is looked at again only when its client
        // polls, not on every turn of the loop.
        h.publish("elsewhere", "x");
        assert_eq!(h.node.ctx.sio.replaying.len(), 1);
        assert!(h.node.ctx.sio.nudged.is_empty());
        let mut got = Vec::new();
        let mut acked = false;
        for round in 0..40 {
            if round == 2 {
                // Live messages during the replay wait their turn.
                h.publish("t", "live-1");
                h.publish("t", "live-2");
            }
            h.send(c, &get(&sid));
            let answers = payloads(&h.take_text(c));
            assert_eq!(answers.len(), 1, "round {round}");
            let packets = &answers[0];
            // Half of the buffer for the replay, and the ack beside it.
            assert!(packets.len() <= 11, "round {round}: {}", packets.len());
            for packet in packets {
                if packet.starts_with("431[") {
                    acked = true;
                } else if let Some(text) = message_text(packet) {
                    got.push(text);
                }
            }
            if got.len() == 102 {
                break;
            }
        }
        let mut want: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        want.extend(["live-1".to_string(), "live-2".to_string()]);
        assert_eq!(got, want);
        assert!(acked);
        // Caught up: the next live message comes at once, and the session
        // was never closed for a full buffer.
        assert_eq!(h.node.ctx.sio.server.engine().len(), 1);
        assert!(h.node.ctx.sio.replaying.is_empty());
        h.send(c, &get(&sid));
        h.publish("t", "live-3");
        let answers = payloads(&h.take_text(c));
        assert!(
            answers[0][0].starts_with("42[\"message\",\"live-3\""),
            "{answers:?}"
        );
    }

    #[test]
    fn a_replay_longer_than_the_queue_cap_over_websocket_is_not_cut_off() {
        let mut h = Harness::new(Config {
            subscriber_queue_bytes: 16 * 1024,
            ws_deflate: false,
            ..Config::default()
        });
        let pad = "x".repeat(1000);
        for i in 0..40 {
            h.publish("w", &format!("p{i}-{pad}"));
        }
        let c = websocket_session(&mut h);
        h.send(c, &frame("40"));
        assert!(h.take_text(c).contains("40{\"sid\""));
        let sub = r#"421["subscribe","w",{"after":"earliest"}]"#;
        h.send(c, &frame(sub));
        h.publish("w", &format!("p40-{pad}"));
        let text = h.take_text(c);
        let got: Vec<&str> = text
            .split("42[\"message\",\"")
            .skip(1)
            .map(|m| m.split('-').next().unwrap())
            .collect();
        let want: Vec<String> = (0..41).map(|i| format!("p{i}")).collect();
        assert_eq!(got, want);
        assert!(text.contains("431[{\"last_id\""));
        assert_eq!(h.node.stats().slow_disconnects, 0);
        assert_eq!(h.node.ctx.sio.server.engine().len(), 1);
    }

    #[test]
    fn history_evicted_under_a_waiting_replay_is_told_as_a_gap_event() {
        let cfg = Config {
            sio_max_buffered_packets: 20,
            history_messages: 30,
            ..Config::default()
        };
        let (mut h, c, sid) = replaying(cfg, "g", 30, "");
        let mut got = Vec::new();
        let mut gaps = Vec::new();
        for round in 0..20 {
            if round == 1 {
                // The history moves on past where the replay stands.
                for i in 30..70 {
                    h.publish("g", &format!("m{i}"));
                }
            }
            h.send(c, &get(&sid));
            for packet in &payloads(&h.take_text(c))[0] {
                if let Some(text) = message_text(packet) {
                    got.push(text);
                } else if packet.starts_with("42[\"gap\",") {
                    gaps.push(packet.clone());
                }
            }
            if got.last().map(String::as_str) == Some("m69") {
                break;
            }
        }
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(
            gaps[0].contains(r#"{"topic":"g","requested":""#),
            "{}",
            gaps[0]
        );
        // Up to where the first part reached, then from the oldest kept.
        let first = got.iter().position(|m| m == "m40").expect("resumed at m40");
        let want: Vec<String> = (0..first).chain(40..70).map(|i| format!("m{i}")).collect();
        assert_eq!(got, want);
        // m40 is the topic's 41st message.
        let epoch = h
            .node
            .hub()
            .last_id(&TopicName::parse("g").unwrap())
            .unwrap()
            .epoch;
        let oldest = format!(r#""oldest":"{epoch}-41"}}]"#);
        assert!(gaps[0].ends_with(&oldest), "{}", gaps[0]);
    }
}

//! Socket.IO v5 over Engine.IO v4, server side, sans-IO.
//!
//! Before working on this file, read the Socket.IO protocol
//! (socketio/socket.io-protocol, README: "Exchange protocol", "Connection
//! to a namespace", "Sending and receiving data", "Acknowledgement",
//! "Connection state recovery"), then `proto/engineio.rs` and
//! `wire/socketio.rs`. For what the protocol leaves open this follows the
//! reference server: socket.io `lib/client.ts` (`connect`, `ondecoded`,
//! the connect timeout), `lib/namespace.ts` (`_add`), `lib/socket.ts`
//! (`_onconnect`, `onevent`, `ack`, `_onclose`) and the session-aware
//! adapter of connection state recovery.
//!
//! # The application's side
//!
//! A library user registers a [`Namespace`] per namespace name; the server
//! calls it when a client connects to it ([`Namespace::on_connect`], which
//! may refuse), sends an event ([`Namespace::on_event`]), acknowledges one
//! of ours ([`Namespace::on_ack`]) or goes away
//! ([`Namespace::on_disconnect`]). Each call gets a [`SocketCtx`] to emit,
//! acknowledge and disconnect with. Outside a call, [`SioServer::emit`]
//! reaches any socket by its [`SocketAddr`].
//!
//! # The server core's side
//!
//! [`SioServer`] has the driving interface of
//! [`Sessions`] (see its routing table) — `handle_http`,
//! `handle_ws_request`, `handle_ws_message`, `handle_ws_closed`,
//! `handle_poll_aborted`,
//! `handle_timeout`, `poll_timeout`, `poll_transmit` — and runs the
//! namespaces' handlers inside those calls. After each call the core
//! drains `poll_transmit` and `poll_closed`.

//!
//! # Not supported
//!
//! Engine.IO v3 (`EIO=3`) and its JSONP and `b64` polling; rooms and
//! broadcasts (the hub's business, reached through [`SioServer::emit`]);
//! timeouts on our own acknowledgement requests (an unanswered one is
//! forgotten after [`SioConfig::max_pending_acks`]); replaying, on
//! recovery, events emitted while the client was away (only the ones it
//! missed before the connection broke come back); a custom parser.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::client::json::Value;
use crate::proto::engineio::{
    random_sid, CloseReason, EioConfig, EioEvent, HttpAnswer, SessionError, Sessions, Sid,
    SidSource, Transmit,
};
use crate::wire::engineio::Data;
use crate::wire::socketio::{Decoder, Message, Packet, PacketType, SioLimits, RESERVED_EVENTS};

/// The settings of a Socket.IO server.
#[derive(Clone, Debug)]
pub struct SioConfig {
    pub eio: EioConfig,
    pub limits: SioLimits,
    /// Time a client has, from the Engine.IO handshake, to connect to a
    /// namespace (client.ts `connectTimeout`). Without a CONNECT by then
    /// the Engine.IO session is closed.
    pub connect_timeout: Duration,
    /// Connection state recovery: how long the state of a socket whose
    /// connection broke is kept for it to come back to
    /// (`maxDisconnectionDuration`). `None`: no recovery, and CONNECT
    /// replies carry no `pid`.
    pub recovery_window: Option<Duration>,
    /// Most events kept per socket for recovery; older ones are dropped
    /// first, and a client that missed one of those is not recovered.
    pub recovery_max_packets: usize,
    /// Most bytes of events kept per socket for recovery (same policy).
    pub recovery_max_bytes: usize,
    /// Most disconnected sockets kept for recovery at once; over it the
    /// oldest is forgotten.
    pub recovery_max_sessions: usize,
    /// Most namespaces one connection may join at once. A CONNECT over it
    /// gets CONNECT_ERROR.
    pub max_namespaces_per_client: usize,
    /// Most of our acknowledgement requests a socket may leave unanswered;
    /// over it the oldest is forgotten (its ack, if it ever comes, is
    /// ignored).
    pub max_pending_acks: usize,
}

impl Default for SioConfig {
    fn default() -> Self {
        SioConfig {
            eio: EioConfig::default(),
            limits: SioLimits::default(),
            connect_timeout: Duration::from_millis(45_000),
            recovery_window: None,
            recovery_max_packets: 100,
            recovery_max_bytes: 1 << 20,
            recovery_max_sessions: 10_000,
            max_namespaces_per_client: 16,
            max_pending_acks: 1_000,
        }
    }
}

/// An acknowledgement id.
pub type AckId = u64;

/// Where a socket is: its connection and its namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SocketAddr {
    pub eio: Sid,
    pub nsp: String,
}

/// Why a socket left its namespace (the reference's disconnect reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// The application disconnected it.
    ServerNamespaceDisconnect,
    /// The connection ended, for this Engine.IO reason.
    Transport(CloseReason),
    /// The client sent something that is not a Socket.IO packet.
    ParseError,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::Transport(r) => r.as_str(),
            DisconnectReason::ParseError => "parse error",
        }
    }

    /// socket.ts `RECOVERABLE_DISCONNECT_REASONS`: a broken connection
    /// may be recovered, a deliberate goodbye may not.
    fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::Transport(
                CloseReason::TransportClose
                    | CloseReason::TransportError
                    | CloseReason::PingTimeout
                    | CloseReason::ForcedClose
            )
        )
    }
}

/// An event from a client.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The name (a numeric name, which the protocol allows, as its JSON).
    pub name: &'a str,
    pub args: &'a [Value],
    /// The binary attachments its placeholders name.
    pub attachments: &'a [Vec<u8>],
    /// The client wants an acknowledgement with this id
    /// ([`SocketCtx::ack`]).
    pub ack: Option<AckId>,
}

/// A namespace's handlers. All have defaults but `on_event`.
pub trait Namespace {
    /// A client connects, with its handshake `auth` (`{}` when it sent
    /// none). `Err(data)` refuses with CONNECT_ERROR carrying `data`
    /// (usually `{"message":"…"}`), and nothing emitted here is sent.
    /// Emits of an accepted connection follow the CONNECT reply.
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        let _ = (socket, auth);
        Ok(())
    }

    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>);

    /// The client acknowledged our [`SocketCtx::emit_with_ack`] `id`.
    fn on_ack(
        &mut self,
        socket: &mut SocketCtx<'_>,
        id: AckId,
        args: &[Value],
        attachments: &[Vec<u8>],
    ) {
        let _ = (socket, id, args, attachments);
    }

    /// The socket left the namespace; it can no longer be reached.
    fn on_disconnect(&mut self, socket: &SocketAddr, id: Sid, reason: DisconnectReason) {
        let _ = (socket, id, reason);
    }
}

/// What a handler sends.
enum Outgoing {
    Emit {
        event: String,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
        ack: Option<AckId>,
    },
    Ack {
        id: AckId,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
    },
    Disconnect,
    /// An event for another socket (rooms, broadcasts): sent after this
    /// handler's own output, if that socket is still connected.
    EmitTo {
        to: SocketAddr,
        event: String,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
    },
}

/// One socket as a handler sees it.
pub struct SocketCtx<'a> {
    addr: &'a SocketAddr,
    state: &'a mut SocketState,
    out: &'a mut Vec<Outgoing>,
}

impl SocketCtx<'_> {
    /// The Socket.IO id (the `sid` of the CONNECT reply; not the
    /// Engine.IO one).
    pub fn id(&self) -> Sid {
        self.state.id
    }

    pub fn addr(&self) -> &SocketAddr {
        self.addr
    }

    pub fn nsp(&self) -> &str {
        &self.addr.nsp
    }

    /// Whether this connection recovered a previous one's state
    /// (connection state recovery).
    pub fn recovered(&self) -> bool {
        self.state.recovered
    }

    pub fn emit(&mut self, event: &str, args: Vec<Value>) {
        self.emit_binary(event, args, Vec::new());
    }

    /// Emits with binary attachments: `args` name them with
    /// [`placeholder`](crate::wire::socketio::placeholder)s.
    ///
    /// A reserved name ([`RESERVED_EVENTS`]) is not sent: the client's
    /// parser would refuse the packet and drop the connection.
    pub fn emit_binary(&mut self, event: &str, args: Vec<Value>, attachments: Vec<Vec<u8>>) {
        if RESERVED_EVENTS.contains(&event) {
            return;
        }
        self.out.push(Outgoing::Emit {
            event: event.to_string(),
            args,
            attachments,
            ack: None,
        });
    }

    /// Emits and asks the client to acknowledge; its answer comes to
    /// [`Namespace::on_ack`] with the returned id.
    /// A reserved name is not sent (as for [`emit_binary`](Self::emit_binary)),
    /// and its ack never comes.
    pub fn emit_with_ack(&mut self, event: &str, args: Vec<Value>) -> AckId {
        self.emit_binary_with_ack(event, args, Vec::new())
    }

    /// [`emit_with_ack`](Self::emit_with_ack) with binary attachments.
    pub fn emit_binary_with_ack(
        &mut self,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
    ) -> AckId {
        let id = self.state.next_ack;
        self.state.next_ack += 1;
        if RESERVED_EVENTS.contains(&event) {
            return id;
        }
        self.out.push(Outgoing::Emit {
            event: event.to_string(),
            args,
            attachments,
            ack: Some(id),
        });
        id
    }

    /// Answers the client's event that carried ack `id`.
    pub fn ack(&mut self, id: AckId, args: Vec<Value>, attachments: Vec<Vec<u8>>) {
        self.out.push(Outgoing::Ack {
            id,
            args,
            attachments,
        });
    }

    /// The `pid` the CONNECT reply carries, for a namespace that does its
    /// own connection state recovery (the client presents it again, with
    /// the `offset` of the last event it got, in its next CONNECT's auth).
    /// Only [`Namespace::on_connect`] can set it in time for the reply.
    pub fn set_pid(&mut self, pid: Sid) {
        self.state.pid = Some(pid);
    }

    /// Disconnects this socket from its namespace (the connection stays).
    pub fn disconnect(&mut self) {
        self.out.push(Outgoing::Disconnect);
    }

    /// Emits to another socket (of any namespace): how a handler speaks
    /// to the rest of a room it keeps. A socket that is gone by then is
    /// skipped; a reserved name is not sent.
    pub fn emit_to(&mut self, to: &SocketAddr, event: &str, args: Vec<Value>) {
        if RESERVED_EVENTS.contains(&event) {
            return;
        }
        self.out.push(Outgoing::EmitTo {
            to: to.clone(),
            event: event.to_string(),
            args,
            attachments: Vec::new(),
        });
    }
}

/// A connected socket.
struct SocketState {
    id: Sid,
    /// Connection state recovery: the private id the client presents to
    /// recover this socket.
    pid: Option<Sid>,
    recovered: bool,
    next_ack: AckId,
    /// Our emits still waiting for the client's ACK, oldest first.
    pending_acks: VecDeque<AckId>,
    /// Recent events, for recovery: (offset, the packet as sent).
    log: VecDeque<(u64, Message)>,
    log_bytes: usize,
}

/// A connection's sockets by namespace. A list, not a map: a connection
/// joins one namespace or a few (at most
/// [`SioConfig::max_namespaces_per_client`]), and an idle connection
/// should not carry a hash table for one entry.
#[derive(Default)]
struct Sockets(Vec<(String, SocketState)>);

impl Sockets {
    fn position(&self, nsp: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| n == nsp)
    }

    fn contains_key(&self, nsp: &str) -> bool {
        self.position(nsp).is_some()
    }

    fn get_mut(&mut self, nsp: &str) -> Option<&mut SocketState> {
        let at = self.position(nsp)?;
        Some(&mut self.0[at].1)
    }

    fn insert(&mut self, nsp: String, state: SocketState) {
        match self.position(&nsp) {
            Some(at) => self.0[at].1 = state,
            None => {
                self.0.reserve_exact(1);
                self.0.push((nsp, state));
            }
        }
    }

    fn remove(&mut self, nsp: &str) -> Option<SocketState> {
        let at = self.position(nsp)?;
        Some(self.0.remove(at).1)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl IntoIterator for Sockets {
    type Item = (String, SocketState);
    type IntoIter = std::vec::IntoIter<(String, SocketState)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// One Engine.IO connection.
struct Client {
    decoder: Decoder,
    sockets: Sockets,
    /// Until the first CONNECT: when the connection is given up.
    connect_deadline: Option<Instant>,
}

/// A socket whose connection broke, kept for recovery.
struct Saved {
    nsp: String,
    state: SocketState,
    expires: Instant,
}

/// A Socket.IO server: the Engine.IO sessions, the connections on them
/// and the namespaces' handlers.
pub struct SioServer {
    config: SioConfig,
    eio: Sessions,
    /// Boxed, as the Engine.IO sessions are: little spare table per idle
    /// connection.
    clients: HashMap<Sid, Box<Client>>,
    /// Every client's `connect_deadline`, earliest first: the connect
    /// timeout is found without a scan of every client.
    connect_timers: BTreeSet<(Instant, Sid)>,
    namespaces: HashMap<String, Box<dyn Namespace + Send>>,
    new_id: SidSource,
    /// By pid.
    saved: HashMap<Sid, Saved>,
    /// pids in the order they were saved, to expire and cap.
    saved_order: VecDeque<Sid>,
    next_offset: u64,
    /// Engine.IO sessions that ended, for [`poll_closed`](Self::poll_closed).
    closed: VecDeque<(Sid, CloseReason)>,
}

impl SioServer {
    pub fn new(config: SioConfig) -> SioServer {
        let eio = Sessions::new(config.eio.clone());
        SioServer::with_parts(config, eio, Box::new(random_sid))
    }

    /// With the Engine.IO sessions and the source of Socket.IO ids and
    /// pids given (tests make both deterministic).
    pub fn with_parts(config: SioConfig, eio: Sessions, new_id: SidSource) -> SioServer {
        SioServer {
            config,
            eio,
            clients: HashMap::new(),
            connect_timers: BTreeSet::new(),
            namespaces: HashMap::new(),
            new_id,
            saved: HashMap::new(),
            saved_order: VecDeque::new(),
            next_offset: 0,
            closed: VecDeque::new(),
        }
    }

    /// Registers the handlers of namespace `name` (`/` or `/something`).
    /// A CONNECT to a namespace that has none is refused with
    /// `{"message":"Invalid namespace"}`.
    ///
    /// Panics if `name` does not start with `/` or contains `,`: such a
    /// name cannot be written in a packet (it is the server's own
    /// configuration, never a peer's input).
    pub fn register(&mut self, name: &str, handlers: Box<dyn Namespace + Send>) {
        assert!(
            name.starts_with('/') && !name.contains(','),
            "namespace {name:?}: must start with '/' and contain no ','"
        );
        self.namespaces.insert(name.to_string(), handlers);
    }

    pub fn engine(&self) -> &Sessions {
        &self.eio
    }

    /// A polling POST refused for its size before it was read: its
    /// session ends ([`Sessions::refuse_payload`]).
    pub fn refuse_payload(&mut self, query: &str) {
        self.eio.refuse_payload(query);
    }

    /// Where new Engine.IO sids and Socket.IO ids come from from now on
    /// (simulated-time harnesses make both deterministic).
    pub fn set_sid_sources(&mut self, eio: SidSource, ids: SidSource) {
        self.eio.set_sid_source(eio);
        self.new_id = ids;
    }

    /// A polling POST's head, before its body; see
    /// [`Sessions::handle_post_head`].
    pub fn handle_post_head(&mut self, query: &str, now: Instant) -> Result<(), SessionError> {
        let r = self.eio.handle_post_head(query, now);
        self.process(now);
        r
    }

    /// See [`Sessions::handle_post_aborted`].
    pub fn handle_post_aborted(&mut self, query: &str) {
        self.eio.handle_post_aborted(query);
    }

    /// A polling request; see [`Sessions::handle_http`].
    pub fn handle_http(
        &mut self,
        method: &str,
        query: &str,
        body: &[u8],
        now: Instant,
    ) -> HttpAnswer {
        let answer = self.eio.handle_http(method, query, body, now);
        self.process(now);
        answer
    }

    /// A WebSocket upgrade request; see [`Sessions::handle_ws_request`].
    pub fn handle_ws_request(&mut self, query: &str, now: Instant) -> Result<Sid, SessionError> {
        let r = self.eio.handle_ws_request(query, now);
        self.process(now);
        r
    }

    /// One complete WebSocket message; see [`Sessions::handle_ws_message`].
    pub fn handle_ws_message(
        &mut self,
        sid: Sid,
        binary: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SessionError> {
        let r = self.eio.handle_ws_message(sid, binary, data, now);
        self.process(now);
        r
    }

    /// A parked GET's connection ended; see [`Sessions::handle_poll_aborted`].
    pub fn handle_poll_aborted(&mut self, sid: Sid, now: Instant) {
        self.eio.handle_poll_aborted(sid, now);
        self.process(now);
    }

    pub fn handle_ws_closed(&mut self, sid: Sid, now: Instant) {
        self.eio.handle_ws_closed(sid, now);
        self.process(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.eio.handle_timeout(now);
        while let Some(&(t, sid)) = self.connect_timers.first() {
            if t > now {
                break;
            }
            self.connect_timers.pop_first();
            // client.ts: "no namespace joined yet, close the client".
            if let Some(c) = self.clients.get_mut(&sid) {
                c.connect_deadline = None;
            }
            self.eio.close(sid, now);
        }
        while let Some(pid) = self.saved_order.front() {
            match self.saved.get(pid) {
                Some(s) if s.expires > now => break,
                _ => {
                    let pid = *pid;
                    self.saved.remove(&pid);
                    self.saved_order.pop_front();
                }
            }
        }
        self.process(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let connect = self.connect_timers.first().map(|(t, _)| *t);
        let saved = self
            .saved_order
            .front()
            .and_then(|pid| self.saved.get(pid))
            .map(|s| s.expires);
        [self.eio.poll_timeout(), connect, saved]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<(Sid, Transmit)> {
        self.eio.poll_transmit()
    }

    /// An Engine.IO session that ended (after its last transmits were
    /// queued), so the core can forget what it keeps by sid. Drained by
    /// the core after each call, like `poll_transmit`.
    pub fn poll_closed(&mut self) -> Option<(Sid, CloseReason)> {
        self.closed.pop_front()
    }

    /// Emits to a socket from outside a handler; `false` if it is not
    /// connected (a socket kept for recovery is not reachable until its
    /// client comes back).
    pub fn emit(
        &mut self,
        to: &SocketAddr,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
    ) -> bool {
        let out = vec![Outgoing::Emit {
            event: event.to_string(),
            args,
            attachments,
            ack: None,
        }];
        if self
            .clients
            .get(&to.eio)
            .is_some_and(|c| c.sockets.contains_key(&to.nsp))
        {
            self.flush(to, out);
            return true;
        }
        false
    }

    /// Disconnects a socket from its namespace.
    pub fn disconnect(&mut self, to: &SocketAddr) {
        self.flush(to, vec![Outgoing::Disconnect]);
    }

    /// Answers, from outside a handler, the client's event that carried
    /// ack `id` (an application that decides later, after asking someone
    /// else); `false` if the socket is not connected.
    pub fn ack(
        &mut self,
        to: &SocketAddr,
        id: AckId,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
    ) -> bool {
        if !self.is_connected(to) {
            return false;
        }
        self.flush(
            to,
            vec![Outgoing::Ack {
                id,
                args,
                attachments,
            }],
        );
        true
    }

    /// Sockets connected to a namespace now, over every connection (a
    /// scan: for metrics).
    pub fn socket_count(&self) -> usize {
        self.clients.values().map(|c| c.sockets.len()).sum()
    }

    /// Whether a socket is connected to its namespace now.
    pub fn is_connected(&self, to: &SocketAddr) -> bool {
        self.clients
            .get(&to.eio)
            .is_some_and(|c| c.sockets.contains_key(&to.nsp))
    }

    /// Sends an already encoded packet (its text, as
    /// [`Message::encode`] writes it, and its attachments) to a socket:
    /// one encoding serves every receiver of a fan-out. No offset is
    /// added and nothing is kept for recovery. `false` if the socket is
    /// not connected.
    pub fn send_encoded(&mut self, to: &SocketAddr, text: &str, attachments: &[Vec<u8>]) -> bool {
        if !self.is_connected(to) {
            return false;
        }
        self.eio.send(to.eio, Data::Text(text.to_string()));
        for a in attachments {
            self.eio.send(to.eio, Data::Binary(a.clone()));
        }
        true
    }

    /// Ends an Engine.IO connection from the server's side (every socket
    /// on it leaves its namespace).
    pub fn close(&mut self, sid: Sid, now: Instant) {
        self.eio.close(sid, now);
        self.process(now);
    }

    /// Every event the Engine.IO sessions have, through the handlers.
    fn process(&mut self, now: Instant) {
        while let Some((sid, event)) = self.eio.poll_event() {
            match event {
                EioEvent::Opened => {
                    let deadline = now + self.config.connect_timeout;
                    self.connect_timers.insert((deadline, sid));
                    self.clients.insert(
                        sid,
                        Box::new(Client {
                            decoder: Decoder::new(self.config.limits),
                            sockets: Sockets::default(),
                            connect_deadline: Some(deadline),
                        }),
                    );
                }
                EioEvent::Upgraded => {}
                EioEvent::Message(data) => self.on_message(sid, data, now),
                EioEvent::Closed(reason) => {
                    self.closed.push_back((sid, reason));
                    self.on_closed(sid, DisconnectReason::Transport(reason), now)
                }
            }
        }
    }

    fn on_message(&mut self, sid: Sid, data: Data, now: Instant) {
        let Some(client) = self.clients.get_mut(&sid) else {
            return;
        };
        let decoded = match &data {
            Data::Text(t) => client.decoder.handle_text(t),
            Data::Binary(b) => client.decoder.handle_binary(b),
        };
        match decoded {
            Ok(Some(message)) => self.on_packet(sid, message, now),
            Ok(None) => {}
            // client.ts `onerror`: a packet that is not one closes the
            // connection.
            Err(_) => {
                self.on_closed(sid, DisconnectReason::ParseError, now);
                self.eio.close(sid, now);
            }
        }
    }

    fn on_packet(&mut self, sid: Sid, message: Message, now: Instant) {
        let Some(client) = self.clients.get_mut(&sid) else {
            return;
        };
        let Message {
            packet,
            attachments,
        } = message;
        let connected = client.sockets.contains_key(&packet.nsp);
        let addr = SocketAddr {
            eio: sid,
            nsp: packet.nsp.clone(),
        };
        match (packet.kind, connected) {
            (PacketType::Connect, false) => self.on_connect(addr, packet.data, now),
            (PacketType::Disconnect, true) => {
                if let Some(state) = client.sockets.remove(&addr.nsp) {
                    if let Some(ns) = self.namespaces.get_mut(&addr.nsp) {
                        ns.on_disconnect(
                            &addr,
                            state.id,
                            DisconnectReason::ClientNamespaceDisconnect,
                        );
                    }
                }
            }
            (PacketType::Event | PacketType::BinaryEvent, true) => {
                let Some((name, args)) = event_parts(&packet) else {
                    return;
                };
                let event = Event {
                    name: &name,
                    args,
                    attachments: &attachments,
                    ack: packet.id,
                };
                self.call(&addr, |ns, ctx| ns.on_event(ctx, &event));
            }
            (PacketType::Ack | PacketType::BinaryAck, true) => {
                let Some(id) = packet.id else { return };
                let Some(state) = client.sockets.get_mut(&addr.nsp) else {
                    return;
                };
                let Some(at) = state.pending_acks.iter().position(|&a| a == id) else {
                    return;
                };
                state.pending_acks.remove(at);
                let args = match &packet.data {
                    Some(Value::Array(a)) => a.as_slice(),
                    _ => &[],
                };
                self.call(&addr, |ns, ctx| ns.on_ack(ctx, id, args, &attachments));
            }
            // client.ts `ondecoded`: any other packet for a namespace in
            // the wrong state ("invalid state") closes the connection.
            _ => {
                self.on_closed(sid, DisconnectReason::ParseError, now);
                self.eio.close(sid, now);
            }
        }
    }

    fn on_connect(&mut self, addr: SocketAddr, auth: Option<Value>, now: Instant) {
        let sid = addr.eio;
        let auth = auth.unwrap_or(Value::Object(Vec::new()));
        let too_many = self
            .clients
            .get(&sid)
            .is_some_and(|c| c.sockets.len() >= self.config.max_namespaces_per_client);
        if !self.namespaces.contains_key(&addr.nsp) || too_many {
            let message = if too_many {
                "Too many namespaces"
            } else {
                "Invalid namespace"
            };
            let mut p = Packet::new(PacketType::ConnectError, &addr.nsp);
            p.data = Some(Value::Object(vec![(
                "message".into(),
                Value::String(message.into()),
            )]));
            self.write(sid, p, Vec::new());
            return;
        }

        // Connection state recovery: a known pid, in this namespace, whose
        // log still holds the offset the client last saw.
        let mut missed = Vec::new();
        let mut state = None;
        if self.config.recovery_window.is_some() {
            if let Some(restored) = self.restore(&addr.nsp, &auth, &mut missed) {
                state = Some(restored);
            }
        }
        let mut state = match state {
            Some(s) => s,
            None => {
                let Ok(id) = (self.new_id)() else {
                    self.eio.close(sid, now);
                    return;
                };
                let pid = match self.config.recovery_window {
                    Some(_) => (self.new_id)().ok(),
                    None => None,
                };
                SocketState {
                    id,
                    pid,
                    recovered: false,
                    next_ack: 0,
                    pending_acks: VecDeque::new(),
                    log: VecDeque::new(),
                    log_bytes: 0,
                }
            }
        };

        let mut out = Vec::new();
        let verdict = match self.namespaces.get_mut(&addr.nsp) {
            Some(ns) => {
                let mut ctx = SocketCtx {
                    addr: &addr,
                    state: &mut state,
                    out: &mut out,
                };
                ns.on_connect(&mut ctx, &auth)
            }
            None => return,
        };
        match verdict {
            Err(data) => {
                let mut p = Packet::new(PacketType::ConnectError, &addr.nsp);
                p.data = Some(data);
                self.write(sid, p, Vec::new());
            }
            Ok(()) => {
                // socket.ts `_onconnect`: `{"sid"}`, and `{"pid"}` with
                // recovery.
                let mut reply = vec![("sid".to_string(), Value::String(state.id.to_string()))];
                if let Some(pid) = state.pid {
                    reply.push(("pid".to_string(), Value::String(pid.to_string())));
                }
                let mut p = Packet::new(PacketType::Connect, &addr.nsp);
                p.data = Some(Value::Object(reply));
                let Some(client) = self.clients.get_mut(&sid) else {
                    return;
                };
                if let Some(t) = client.connect_deadline.take() {
                    self.connect_timers.remove(&(t, sid));
                }
                client.sockets.insert(addr.nsp.clone(), state);
                self.write(sid, p, Vec::new());
                for m in missed {
                    self.write(sid, m.packet, m.attachments);
                }
                self.flush(&addr, out);
            }
        }
    }

    /// Takes back a saved socket for a client that presents its `pid`
    /// and the `offset` of the last event it got.
    fn restore(
        &mut self,
        nsp: &str,
        auth: &Value,
        missed: &mut Vec<Message>,
    ) -> Option<SocketState> {
        let pid = Sid::parse(auth.get("pid")?.as_str()?)?;
        let offset: u64 = auth.get("offset")?.as_str()?.parse().ok()?;
        let saved = self.saved.get(&pid)?;
        if saved.nsp != nsp {
            return None;
        }
        // The log must reach back to the offset: otherwise something the
        // client never got is gone, and recovering would hide that.
        let known = saved.state.log.iter().any(|(o, _)| *o == offset);
        if !known {
            return None;
        }
        // Taken out even if the handler then refuses the connection: a
        // pid presented by a client that fails its handshake is spent.
        let mut saved = self.saved.remove(&pid)?;
        self.saved_order.retain(|p| *p != pid);
        missed.extend(
            saved
                .state
                .log
                .iter()
                .filter(|(o, _)| *o > offset)
                .map(|(_, m)| m.clone()),
        );
        saved.state.recovered = true;
        saved.state.pending_acks.clear();
        Some(saved.state)
    }

    fn on_closed(&mut self, sid: Sid, reason: DisconnectReason, now: Instant) {
        let Some(client) = self.clients.remove(&sid) else {
            return;
        };
        if let Some(t) = client.connect_deadline {
            self.connect_timers.remove(&(t, sid));
        }
        for (nsp, state) in client.sockets {
            let addr = SocketAddr { eio: sid, nsp };
            if let Some(ns) = self.namespaces.get_mut(&addr.nsp) {
                ns.on_disconnect(&addr, state.id, reason);
            }
            if let (Some(window), Some(pid), true) = (
                self.config.recovery_window,
                state.pid,
                reason.is_recoverable(),
            ) {
                if self.saved.len() >= self.config.recovery_max_sessions {
                    if let Some(old) = self.saved_order.pop_front() {
                        self.saved.remove(&old);
                    }
                }
                self.saved_order.push_back(pid);
                self.saved.insert(
                    pid,
                    Saved {
                        nsp: addr.nsp,
                        state,
                        expires: now + window,
                    },
                );
            }
        }
    }

    /// Runs one handler of the socket at `addr`, then sends what it said.
    fn call(
        &mut self,
        addr: &SocketAddr,
        f: impl FnOnce(&mut (dyn Namespace + Send), &mut SocketCtx<'_>),
    ) {
        let mut out = Vec::new();
        let (Some(ns), Some(client)) = (
            self.namespaces.get_mut(&addr.nsp),
            self.clients.get_mut(&addr.eio),
        ) else {
            return;
        };
        let Some(state) = client.sockets.get_mut(&addr.nsp) else {
            return;
        };
        let mut ctx = SocketCtx {
            addr,
            state,
            out: &mut out,
        };
        f(ns.as_mut(), &mut ctx);
        self.flush(addr, out);
    }

    /// Sends a handler's output to its socket.
    fn flush(&mut self, addr: &SocketAddr, out: Vec<Outgoing>) {
        for o in out {
            let Some(state) = self
                .clients
                .get_mut(&addr.eio)
                .and_then(|c| c.sockets.get_mut(&addr.nsp))
            else {
                return;
            };
            match o {
                Outgoing::Emit {
                    event,
                    mut args,
                    attachments,
                    ack,
                } => {
                    if let Some(id) = ack {
                        if state.pending_acks.len() >= self.config.max_pending_acks {
                            state.pending_acks.pop_front();
                        }
                        state.pending_acks.push_back(id);
                    }
                    // Recovery: an event without ack carries its offset as
                    // its last argument, and is kept for a client that may
                    // have missed it (the session-aware adapter's
                    // `broadcast`).
                    let logged = self.config.recovery_window.is_some() && ack.is_none();
                    if logged {
                        self.next_offset += 1;
                        args.push(Value::String(self.next_offset.to_string()));
                    }
                    let mut data = Vec::with_capacity(args.len() + 1);
                    data.push(Value::String(event));
                    data.extend(args);
                    let mut p = Packet::new(PacketType::Event, &addr.nsp);
                    p.data = Some(Value::Array(data));
                    p.id = ack;
                    if logged {
                        let m = Message {
                            packet: p.clone(),
                            attachments: attachments.clone(),
                        };
                        let size = m.attachments.iter().map(Vec::len).sum::<usize>() + 64;
                        state.log.push_back((self.next_offset, m));
                        state.log_bytes += size;
                        while state.log.len() > self.config.recovery_max_packets
                            || state.log_bytes > self.config.recovery_max_bytes
                        {
                            match state.log.pop_front() {
                                Some((_, old)) => {
                                    state.log_bytes = state.log_bytes.saturating_sub(
                                        old.attachments.iter().map(Vec::len).sum::<usize>() + 64,
                                    )
                                }
                                None => break,
                            }
                        }
                    }
                    self.write(addr.eio, p, attachments);
                }
                Outgoing::Ack {
                    id,
                    args,
                    attachments,
                } => {
                    let mut p = Packet::new(PacketType::Ack, &addr.nsp);
                    p.id = Some(id);
                    p.data = Some(Value::Array(args));
                    self.write(addr.eio, p, attachments);
                }
                Outgoing::EmitTo {
                    to,
                    event,
                    args,
                    attachments,
                } => {
                    let connected = self
                        .clients
                        .get(&to.eio)
                        .is_some_and(|c| c.sockets.contains_key(&to.nsp));
                    if connected {
                        let one = vec![Outgoing::Emit {
                            event,
                            args,
                            attachments,
                            ack: None,
                        }];
                        self.flush(&to, one);
                    }
                }
                Outgoing::Disconnect => {
                    if let Some(state) = self
                        .clients
                        .get_mut(&addr.eio)
                        .and_then(|c| c.sockets.remove(&addr.nsp))
                    {
                        self.write(
                            addr.eio,
                            Packet::new(PacketType::Disconnect, &addr.nsp),
                            Vec::new(),
                        );
                        if let Some(ns) = self.namespaces.get_mut(&addr.nsp) {
                            ns.on_disconnect(
                                addr,
                                state.id,
                                DisconnectReason::ServerNamespaceDisconnect,
                            );
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Encodes one packet and its attachments into Engine.IO messages.
    fn write(&mut self, sid: Sid, packet: Packet, attachments: Vec<Vec<u8>>) {
        let message = Message {
            packet,
            attachments,
        };
        let (text, atts) = message.encode();
        let text = String::from_utf8(text).unwrap_or_default();
        self.eio.send(sid, Data::Text(text));
        for a in atts {
            self.eio.send(sid, Data::Binary(a.clone()));
        }
    }
}

/// An event's name and arguments; a numeric name as its JSON.
fn event_parts(packet: &Packet) -> Option<(String, &[Value])> {
    let Some(Value::Array(items)) = &packet.data else {
        return None;
    };
    let (first, args) = items.split_first()?;
    let name = match first {
        Value::String(s) => s.clone(),
        other => crate::wire::socketio::to_json(other),
    };
    Some((name, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Namespace for Echo {
        fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>) {
            socket.emit(event.name, event.args.to_vec());
            // Reserved names never reach the wire.
            socket.emit("disconnect", Vec::new());
        }
    }

    fn server() -> (SioServer, Sid, Instant) {
        let mut n = 0u8;
        // Pings far apart, so that only the connect timeout can close.
        let config = SioConfig {
            eio: EioConfig {
                ping_interval: Duration::from_secs(600),
                ..EioConfig::default()
            },
            ..SioConfig::default()
        };
        let eio = Sessions::with_sid_source(
            config.eio.clone(),
            Box::new(move || {
                n += 1;
                Ok(Sid::from_bytes([n; 20]))
            }),
        );
        let mut s =
            SioServer::with_parts(config, eio, Box::new(|| Ok(Sid::from_bytes([0xAA; 20]))));
        s.register("/", Box::new(Echo));
        let now = Instant::now();
        let sid = s
            .handle_ws_request("EIO=4&transport=websocket", now)
            .unwrap();
        (s, sid, now)
    }

    fn texts(s: &mut SioServer) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((_, t)) = s.poll_transmit() {
            if let Transmit::WsMessage { data, .. } = t {
                out.push(String::from_utf8(data).unwrap());
            }
        }
        out
    }

    #[test]
    fn connect_reply_then_echo() {
        let (mut s, sid, now) = server();
        s.handle_ws_message(sid, false, b"40", now).unwrap();
        s.handle_ws_message(sid, false, b"42[\"hi\",1]", now)
            .unwrap();
        let out = texts(&mut s);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].starts_with("0{\"sid\":"));
        let sio_sid = Sid::from_bytes([0xAA; 20]);
        assert_eq!(out[1], format!("40{{\"sid\":\"{sio_sid}\"}}"));
        assert_eq!(out[2], "42[\"hi\",1]");
    }

    #[test]
    fn connect_timeout_closes_a_connection_that_never_joins() {
        let (mut s, _, now) = server();
        let timeout = SioConfig::default().connect_timeout;
        assert_eq!(s.poll_timeout(), Some(now + timeout));
        s.handle_timeout(now + timeout - Duration::from_millis(1));
        assert!(std::iter::from_fn(|| s.poll_transmit())
            .all(|(_, t)| !matches!(t, Transmit::CloseWs(_))));
        s.handle_timeout(now + timeout);
        let closes: Vec<_> = std::iter::from_fn(|| s.poll_transmit())
            .filter(|(_, t)| matches!(t, Transmit::CloseWs(_)))
            .collect();
        assert_eq!(closes.len(), 1);
    }

    #[test]
    fn only_broken_connections_are_recoverable() {
        assert!(DisconnectReason::Transport(CloseReason::PingTimeout).is_recoverable());
        assert!(DisconnectReason::Transport(CloseReason::TransportClose).is_recoverable());
        assert!(!DisconnectReason::ClientNamespaceDisconnect.is_recoverable());
        assert!(!DisconnectReason::ParseError.is_recoverable());
    }
}

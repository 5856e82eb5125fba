//! The sans-IO server: every connection's state, the hub, parked polls,
//! timers and every policy, with no socket and no clock.
//!
//! Before working on this module, read `conn.rs` (the states and the one
//! table of transitions) and docs/protocol.md. The driver (`server/`,
//! or a test harness) owns the sockets and the clock and calls, in this
//! order on each turn of its loop:
//!
//! 1. [`Node::set_date`] with the wall-clock second (for `Date:` headers);
//! 2. for each readiness event: [`Node::handle_accept`] for a new
//!    connection; then, while [`Node::wants_read`], [`Node::handle_read`]
//!    (or [`Node::handle_read_direct`], which may write at once) with the
//!    bytes read, [`Node::handle_eof`] when the peer closed its
//!    side, [`Node::handle_reset`] when the socket failed;
//!    [`Node::handle_publish`] / [`Node::handle_shutdown`] for commands
//!    from other threads;
//! 3. [`Node::handle_timeout`] (it is cheap when nothing is due);
//! 4. for each id from [`Node::poll_ready`]: write what
//!    [`Node::poll_transmit`] gives and report it with
//!    [`Node::handle_sent`] until the socket would block, then ask
//!    [`Node::poll_status`] whether to close, wait for WRITABLE, or read
//!    again (reading paused at a queue cap resumes there: the driver is
//!    told, never left to guess, and nothing recurses);
//!    A driver may stop after some of them to look at its sockets again
//!    (the rest stay queued, first in first out);
//! 5. sleep until [`Node::poll_timeout`], or not at all while
//!    [`Node::has_ready`].
//!
//! Every `handle_*` takes `now`; nothing here reads a clock, so every
//! scenario (keep-alive, heartbeats, linger, expiry) runs in simulated
//! time in the tests.

mod app;
pub mod assets;
mod cluster;
mod conn;
mod mux_sse;
pub mod outq;
mod routes;
pub mod sim;
mod sio;
mod timers;

use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hub::{
    Cursor, EventName, Hub, HubError, HubLimits, Message, MessageId, PayloadKind, ReplayLimit,
    WireFormat,
};
use crate::proto::http::{http_date, HttpConn, HttpLimits};
use crate::proto::longpoll::Parking;
use crate::proto::ws::MessageKind;
use crate::wire::{chunked, sse};
use crate::Config;

pub use self::cluster::{UpstreamAction, UpstreamId, UPSTREAM};
pub use self::conn::{next as next_phase, Event, Phase, TRANSITIONS};
use self::conn::{Closing, Conn, State, StreamKind, Sub, TopicName};
use self::outq::OutQueue;
pub use self::routes::{route, Miss, Route};

/// A connection's number while it is open (the driver's slab index and
/// mio token). Numbers are reused after a close.
pub type ConnId = usize;

/// How long a connection that is closing may take to take its last bytes.
pub const LINGER: Duration = Duration::from_secs(5);

/// How long shutdown waits for queued bytes to drain.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Messages read from the history per step of a replay: a replay is
/// queued a batch at a time while the subscriber's queue has room.
const REPLAY_BATCH: usize = 64;

/// What the driver does with a connection after writing to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnStatus {
    /// Keep it. `want_write`: bytes are still queued (wait for WRITABLE).
    /// `read_now`: reading had paused and may resume; the socket raises
    /// no new edge for bytes that arrived meanwhile, so read at once.
    Open { want_write: bool, read_now: bool },
    /// Close the socket; the core has forgotten the connection.
    Close,
}

/// A connection refused at accept: the driver writes these bytes once
/// (best effort) and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub &'static [u8]);

/// Counters, served at `GET /stats`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub accepted: u64,
    pub refused_over_limit: u64,
    pub requests: u64,
    pub published: u64,
    pub deliveries: u64,
    /// Subscribers cut off because their outbound queue was over its cap.
    pub slow_disconnects: u64,
    pub polls_parked: u64,
    pub polls_woken: u64,
    pub polls_expired: u64,
    /// Live deliveries by transport (see [`Transport::ALL`] order of
    /// [`TRANSPORTS`]).
    pub deliveries_by: [u64; 4],
    /// Requests refused, by status.
    pub refused: std::collections::BTreeMap<u16, u64>,
    /// Refusals for a missing or bad token (401) or a forbidden origin or
    /// topic (403).
    pub auth_failures: u64,
    /// Open connections by what they do (see [`CONN_KINDS`]).
    pub conns_by: [u64; 7],
    /// Engine.IO polling requests relayed to the node that holds their
    /// session (cluster mode).
    pub sio_relayed: u64,
    /// Engine.IO WebSockets carried for the node that holds their
    /// session (cluster mode).
    pub sio_carried: u64,
}

/// The transports live deliveries are counted under.
pub const TRANSPORTS: [&str; 4] = ["sse", "stream", "ws", "socketio"];

/// What a connection does, as counted in [`Stats::conns_by`].
pub const CONN_KINDS: [&str; 7] = ["http", "poll", "sse", "stream", "ws", "closing", "closed"];

fn conn_kind(state: &State) -> usize {
    match state {
        State::Http(_) => 0,
        State::Parked(_) | State::EioPoll(_) => 1,
        State::Streaming(s) => match s.kind {
            StreamKind::Sse => 2,
            StreamKind::Ndjson => 3,
        },
        State::WebSocket(_) => 4,
        State::Closing(_) => 5,
        State::Closed => 6,
        State::AwaitingBroker(_) => 0,
    }
}

/// What the core shares between connections: everything but the
/// connections themselves, so a handler can hold one connection and the
/// context at once without taking the connection out of its slot.
pub(crate) struct Ctx {
    cfg: Arc<Config>,
    hub: Hub,
    parking: Parking,
    http_limits: HttpLimits,
    /// The `Date` header value and the second it was formatted for.
    date: [u8; 29],
    date_secs: u64,
    /// Each connection's deadline (and stale queue entries; see
    /// `timers.rs`).
    timers: timers::Timers,
    /// Connections with something for the driver to do.
    ready: std::collections::VecDeque<ConnId>,
    /// Messages published while handling a connection; fanned out when
    /// that handling is over (a WebSocket sender receives its own).
    pending: Vec<(TopicName, Arc<Message>)>,
    stats: Stats,
    live: usize,
    shutdown_at: Option<Instant>,
    /// Topics whose subscribers a debug request asked to drop.
    drops: Vec<TopicName>,
    /// Topics deleted while handling a connection: their live subscribers
    /// are told `gap` when that handling is over.
    deletions: Vec<(TopicName, crate::hub::Deleted)>,
    /// Trace lines (with `--trace`) for the driver to print.
    log: Vec<String>,
    /// Each connection's serial, by id: trace and access-log lines name a
    /// connection by it, as ids (slab slots) are reused.
    serials: Vec<u64>,
    /// The serial of the last connection accepted (the first is 1).
    last_serial: u64,
    /// Each connection's access-log state, by id (only with
    /// `--access-log`; see [`Conn`]).
    access: Vec<Option<Box<conn::AccessLog>>>,
    /// Where a response is built before it is queued.
    scratch: Vec<u8>,
    /// Publish to queued-on-subscribers latency, once per fan-out.
    latency: crate::wire::prometheus::LatencyHistogram,
    /// The process's memory and descriptors, as the driver last read them.
    process: crate::procstat::ProcStat,
    /// When the node started (for `uptime`).
    started: Option<Instant>,
    /// The latest `now` given (for durations in the access log).
    last_now: Instant,
    /// The last response's status and body length (for the access log).
    last_reply: (u16, usize),
    /// Which origins may publish and open WebSockets.
    origins: crate::security::OriginPolicy,
    /// Token verification, when `--auth-secret` is set.
    verifier: Option<crate::wire::jws::Verifier>,
    /// The Socket.IO and Engine.IO servers (node/sio.rs).
    sio: sio::SioGlue,
    /// The Redis engine (`--redis`); `None`: the hub alone, in memory.
    cluster: Option<Box<cluster::Cluster>>,
    /// A connection whose wait for Redis ran out, while its request is
    /// read again: that request is answered 503 instead of waiting again.
    sync_expired: Option<ConnId>,
    /// A connection whose request is read again after its topics were
    /// looked at afresh in Redis: it is answered from the mirror now.
    sync_refreshed: Option<ConnId>,
    /// The driver's read buffer (address, length) while
    /// [`Node::handle_read_direct`] lends it: an echoed payload that lies
    /// in it is queued by range, not copied.
    lend: Option<(usize, usize)>,
    /// Set while [`Node::handle_read`] feeds a connection: its WebSocket
    /// session stops after each message (`WsSession::step_messages`), and
    /// the read goes on once the message has been acted on and fanned out.
    step_ws: bool,
}

impl Ctx {
    /// Connection `id`'s access-log state (with `--access-log`).
    pub(crate) fn access_mut(&mut self, id: ConnId) -> Option<&mut conn::AccessLog> {
        self.access.get_mut(id).and_then(Option::as_deref_mut)
    }

    fn trace(&mut self, line: impl FnOnce() -> String) {
        if self.cfg.trace {
            self.log.push(line());
        }
    }

    /// How trace and access-log lines name connection `id`: `[serial]`,
    /// never reused while the process lives.
    pub(crate) fn conn_tag(&self, id: ConnId) -> ConnTag {
        ConnTag(self.serials.get(id).copied().unwrap_or(0))
    }

    /// A trace line about connection `id`, after its tag.
    pub(crate) fn trace_conn(&mut self, id: ConnId, line: impl FnOnce() -> String) {
        if self.cfg.trace {
            let tag = self.conn_tag(id);
            self.log.push(format!("{tag} {}", line()));
        }
    }
}

/// A connection's serial as log lines show it: `[7]`, or `[-]` for no
/// connection (a publish from outside, an internal step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnTag(u64);

impl std::fmt::Display for ConnTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("[-]"),
            n => write!(f, "[{n}]"),
        }
    }
}

/// The sans-IO push server. See the module documentation for the order
/// in which a driver calls it.
pub struct Node {
    ctx: Ctx,
    conns: Vec<Option<Box<Conn>>>,
    free: Vec<ConnId>,
}

impl Node {
    /// A node with an empty hub. `epoch_base` is the wall-clock time in
    /// microseconds since the Unix epoch (see [`Hub::new`]).
    pub fn new(cfg: Arc<Config>, epoch_base: u64) -> Node {
        let started = Instant::now();
        let mut log = Vec::new();
        // Config::validate has refused a URL that does not parse.
        // Cluster mode: the start of this node's Engine.IO sids, so the
        // other nodes can relay their requests here.
        let tag = match cfg.redis {
            Some(_) => match crate::proto::redis::relay::NodeTag::random() {
                Ok(t) => Some(t),
                Err(e) => {
                    log.push(format!("pushwire: no random node tag: {e}"));
                    None
                }
            },
            None => None,
        };
        let cluster = cfg.redis.as_deref().zip(tag).and_then(|(url, tag)| {
            match cluster::Cluster::new(&cfg, url, epoch_base, tag, started) {
                Ok(c) => Some(Box::new(c)),
                Err(e) => {
                    log.push(format!("pushwire: --redis: {e}"));
                    None
                }
            }
        });
        let mut hub = Hub::new(HubLimits::from_config(&cfg), epoch_base);
        // On Redis the hub is a mirror: nothing may number a message here.
        hub.set_mirror(cluster.is_some());
        Node {
            ctx: Ctx {
                hub,
                parking: Parking::new(cfg.max_parked_polls),
                http_limits: HttpLimits::from_config(&cfg),
                date: http_date(0),
                date_secs: 0,
                timers: timers::Timers::default(),
                ready: std::collections::VecDeque::new(),
                pending: Vec::new(),
                stats: Stats::default(),
                live: 0,
                shutdown_at: None,
                drops: Vec::new(),
                deletions: Vec::new(),
                log,
                serials: Vec::new(),
                last_serial: 0,
                access: Vec::new(),
                scratch: Vec::new(),
                latency: crate::wire::prometheus::LatencyHistogram::new(),
                process: crate::procstat::ProcStat::default(),
                started: None,
                last_now: started,
                last_reply: (0, 0),
                // Config::validate has refused a policy that does not parse.
                origins: crate::security::OriginPolicy::new(
                    &cfg.allowed_origins,
                    cfg.cors_origin.as_deref(),
                )
                .unwrap_or_default(),
                verifier: crate::security::token_verifier(&cfg),
                sio: sio::SioGlue::new(&cfg, tag),
                cluster,
                sync_expired: None,
                sync_refreshed: None,
                lend: None,
                step_ws: false,
                cfg,
            },
            conns: Vec::new(),
            free: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.ctx.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    /// Open connections.
    pub fn live(&self) -> usize {
        self.ctx.live
    }

    /// The hub, for inspection.
    pub fn hub(&self) -> &Hub {
        &self.ctx.hub
    }

    /// The wall-clock second, for `Date:` (formatted once per second).
    pub fn set_date(&mut self, unix_secs: u64) {
        if unix_secs != self.ctx.date_secs {
            self.ctx.date_secs = unix_secs;
            self.ctx.date = http_date(unix_secs);
            self.ctx.sio.set_date(unix_secs);
        }
    }

    /// The process's RSS and open descriptors for `/metrics` (the driver
    /// reads them; the core reads nothing).
    pub fn set_process_stats(&mut self, p: crate::procstat::ProcStat) {
        self.ctx.process = p;
    }

    /// Trace lines produced since the last call.
    pub fn poll_log(&mut self) -> std::vec::Drain<'_, String> {
        self.ctx.log.drain(..)
    }

    // ---- inputs -----------------------------------------------------------

    /// A new connection. Over `max_connections` (or shutting down) it is
    /// refused with bytes to write once.
    pub fn handle_accept(&mut self, now: Instant) -> Result<ConnId, Refused> {
        self.ctx.stats.accepted += 1;
        // The hub's clock starts at the first event (see `Hub::observe`):
        // how a request's bytes were split cannot move an epoch.
        self.ctx.hub.observe(now);
        if self.ctx.live >= self.ctx.cfg.max_connections || self.ctx.shutdown_at.is_some() {
            self.ctx.stats.refused_over_limit += 1;
            return Err(Refused(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
            ));
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        self.ctx.live += 1;
        self.ctx.started.get_or_insert(now);
        self.ctx.stats.conns_by[0] += 1;
        let http = Box::new(HttpConn::new(self.ctx.http_limits));
        let conn = Box::new(Conn::new(http, now));
        if self.ctx.cfg.access_log {
            if self.ctx.access.len() <= id {
                self.ctx.access.resize_with(id + 1, || None);
            }
            self.ctx.access[id] = Some(Box::default());
        }
        self.conns[id] = Some(conn);
        self.ctx.last_serial += 1;
        if self.ctx.serials.len() <= id {
            self.ctx.serials.resize(id + 1, 0);
        }
        self.ctx.serials[id] = self.ctx.last_serial;
        self.ctx.trace_conn(id, || "accepted".to_string());
        self.settle(id, now);
        Ok(id)
    }

    /// Bounds the wait for `id`'s first request: its head must be whole
    /// within `header_read_timeout` of the accept, or the connection is
    /// closed (408 if part of a head came). The driver calls this for a TLS
    /// connection, whose handshake the core never sees: a client that
    /// stalls its handshake, or finishes it and sends nothing, would
    /// otherwise hold its socket and session for the keep-alive timeout.
    pub fn bound_first_request(&mut self, id: ConnId, now: Instant) {
        if let Some(conn) = slot_of(&mut self.conns, id) {
            conn.first_head_due = true;
        }
        self.settle(id, now);
    }

    /// Bytes read from connection `id`. The core consumes what it can and
    /// keeps an unfinished tail; `input` may be changed in place (a
    /// WebSocket payload is unmasked where it lies).
    pub fn handle_read(&mut self, id: ConnId, input: &mut [u8], now: Instant) {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return; // spurious: the connection is gone
        };
        if conn.inbuf.is_empty() {
            // The common case: process straight from the driver's buffer
            // and keep only an unfinished tail.
            let used = self.feed_stepped(id, input, now);
            if let Some(conn) = slot_of(&mut self.conns, id) {
                if used < input.len() && keeps_input(conn) {
                    conn.inbuf.extend_from_slice(&input[used..]);
                }
            }
        } else {
            conn.inbuf.extend_from_slice(input);
            let mut buf = std::mem::take(&mut conn.inbuf);
            let used = self.feed_stepped(id, &mut buf, now).min(buf.len());
            buf.drain(..used);
            if let Some(conn) = slot_of(&mut self.conns, id) {
                if keeps_input(conn) && !buf.is_empty() {
                    conn.inbuf = buf;
                }
            }
        }
        self.settle(id, now);
        self.run_pending(now);
        if self.ctx.cluster.is_some() {
            // A request may have been answered by the engine at once (a
            // refresh with nothing to ask).
            self.apply_cluster(now);
        }
        self.release_held(id, now);
    }

    /// Feeds `input` to connection `id`; a WebSocket session stops after
    /// each message with more to read, and that message is acted on and
    /// fanned out (`settle`, `run_pending`) before the rest is fed. Returns
    /// the bytes consumed.
    fn feed_stepped(&mut self, id: ConnId, input: &mut [u8], now: Instant) -> usize {
        let mut at = 0;
        loop {
            let Some(conn) = slot_of(&mut self.conns, id) else {
                return input.len();
            };
            self.ctx.step_ws = true;
            let used = feed(&mut self.ctx, id, conn, &mut input[at..], now);
            self.ctx.step_ws = false;
            at += used;
            if at >= input.len() || !ws_paused(conn) {
                return at;
            }
            self.settle(id, now);
            self.run_pending(now);
        }
    }

    /// A WebSocket protocol error found in this read, held while the
    /// messages before it were answered and fanned out (the sender's own
    /// copies included; see `WsSession::hold_failures`): acted on now, so
    /// the peer gets the same bytes however its input was split.
    fn release_held(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return;
        };
        let Conn { state, out, .. } = &mut *conn;
        // Closing too: the messages before the held failure may have
        // closed the session (an Engine.IO session ended by its packet).
        let (State::WebSocket(ws) | State::Closing(Closing { ws: Some(ws) })) = state else {
            return;
        };
        if ws.session.fail_held(out) {
            app::after_ws_input(&mut self.ctx, id, conn, now);
            self.settle(id, now);
        }
    }

    /// [`handle_read`](Self::handle_read), and what it queues that lies in
    /// `input` (a WebSocket echo, unmasked in place) is written to `sock`
    /// at once, from `input`, without a copy; what the socket does not
    /// take is copied into the queue before this returns, so the driver
    /// may reuse `input` afterwards. A write error resets the connection.
    pub fn handle_read_direct<W: std::io::Write>(
        &mut self,
        id: ConnId,
        input: &mut [u8],
        sock: &mut W,
        now: Instant,
    ) {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return;
        };
        if !conn.inbuf.is_empty() || !conn.out.is_empty() {
            // A tail to join, or a socket already behind: nothing to gain.
            return self.handle_read(id, input, now);
        }
        let ctx = &mut self.ctx;
        ctx.lend = Some((input.as_ptr() as usize, input.len()));
        ctx.step_ws = true;
        let used = feed(ctx, id, conn, input, now);
        ctx.step_ws = false;
        ctx.lend = None;
        let paused = ws_paused(conn);
        if conn.out.has_lent() {
            let written = conn.out.flush_lent(input, sock);
            conn.out.release(input);
            match written {
                Ok(n) => {
                    if let Some(log) = ctx.access_mut(id) {
                        log.sent += n as u64;
                    }
                }
                Err(_) => step(ctx, id, conn, Event::Reset, now, |_| State::Closed),
            }
        }
        if used < input.len() && keeps_input(conn) {
            conn.inbuf.extend_from_slice(&input[used..]);
        }
        self.settle(id, now);
        self.run_pending(now);
        if paused {
            // The session stopped after a message: the rest, kept above,
            // is read on the stepped path.
            return self.handle_read(id, &mut [], now);
        }
        self.release_held(id, now);
    }

    /// The peer closed its sending side of `id`.
    pub fn handle_eof(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return;
        };
        let ctx = &mut self.ctx;
        conn.peer_closed = true;
        match &mut conn.state {
            State::WebSocket(ws) => ws.session.handle_eof(),
            State::Closing(Closing { ws: Some(ws) }) => ws.session.handle_eof(),
            _ => {}
        }
        // Nothing more will be asked: what has not started going out to a
        // subscriber or a parked poll is dropped; answers to requests
        // already received still go (they are whole responses).
        if matches!(
            conn.phase(),
            Phase::Parked | Phase::EioParked | Phase::Streaming | Phase::WebSocket
        ) {
            ctx.trace_conn(id, || "peer hung up".to_string());
            conn.out.clear_unstarted();
        }
        step(ctx, id, conn, Event::PeerEof, now, close_state);
        self.settle(id, now);
        self.run_pending(now);
    }

    /// The socket of `id` failed: the connection is closed at once.
    pub fn handle_reset(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return;
        };
        step(&mut self.ctx, id, conn, Event::Reset, now, |_| {
            State::Closed
        });
        self.settle(id, now);
        self.run_pending(now);
    }

    /// Publishes from outside any connection (another thread, through the
    /// driver), exactly as `POST /topics/{topic}` would.
    pub fn handle_publish(
        &mut self,
        topic: &str,
        event: Option<&str>,
        data: &str,
        now: Instant,
    ) -> Result<String, HubError> {
        let topic = TopicName::parse(topic)?;
        let event = event.map(EventName::parse).transpose()?;
        if let Some(c) = self.ctx.cluster.as_mut() {
            // On Redis the id comes later, by the reply; this caller does
            // not wait for it (an empty id says so).
            c.publish(
                cluster::PublishFrom::Nobody,
                &topic,
                event.as_ref(),
                data,
                PayloadKind::Text,
            )
            .map_err(|_| HubError::BrokerUnavailable)?;
            return Ok(String::new());
        }
        let msg = publish(
            &mut self.ctx,
            None,
            &topic,
            event.as_ref(),
            data,
            PayloadKind::Text,
            now,
        )?;
        self.run_pending(now);
        Ok(msg.id_text.to_string())
    }

    /// Begins shutdown: no more connections are taken, every connection
    /// gets its goodbye (WebSocket close 1001, the last chunk of every
    /// stream, an answer to every parked poll), and queued bytes get
    /// [`SHUTDOWN_GRACE`] to drain.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.ctx.shutdown_at.is_some() {
            return;
        }
        self.ctx.log.push("pushwire: shutting down".into());
        self.ctx.shutdown_at = Some(now + SHUTDOWN_GRACE);
        for id in 0..self.conns.len() {
            let Some(conn) = slot_of(&mut self.conns, id) else {
                continue;
            };
            let ctx = &mut self.ctx;
            if conn.phase() == Phase::Parked {
                app::answer_parked(ctx, id, conn, now, true);
            }
            if conn.phase() == Phase::EioParked {
                // Engine.IO: a close packet tells the client the session
                // is over.
                sio::answer_poll(ctx, id, conn, b"1", now);
            }
            end_stream(ctx, id, conn, 1001, "server shutting down", now);
            self.settle(id, now);
        }
        self.run_pending(now);
    }

    /// Runs every deadline that has passed: keep-alive and request
    /// timeouts, heartbeats, poll expiry, WebSocket pings, linger, and
    /// the hub's evictions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ctx.hub.handle_timeout(now);
        self.ctx.sio.handle_timeout(now);
        self.cluster_timeout(now);
        while let Some((id, stamp)) = self.ctx.timers.pop_due(now) {
            let Some(conn) = slot_of(&mut self.conns, id) else {
                continue;
            };
            if let Some(stamp) = stamp {
                let registered = conn.deadline.map(|d| (d, slot_kind(conn.deadline_queued)));
                if !self.ctx.timers.is_current(stamp, registered) {
                    continue; // the connection moved its deadline since
                }
            }
            conn.deadline = None;
            match deadline_of(&self.ctx.cfg, conn) {
                // The entry was early (see `settle`): the real deadline is
                // registered again there.
                Some(d) if d > now => {}
                None => {}
                Some(_) => on_deadline(&mut self.ctx, id, conn, now),
            }
            self.settle(id, now);
        }
        let conns = &self.conns;
        self.ctx.timers.compact(self.ctx.live, |id| {
            let conn = conns.get(id)?.as_deref()?;
            conn.deadline.filter(|_| conn.deadline_queued)
        });
        self.run_pending(now);
    }

    // ---- outputs ----------------------------------------------------------

    /// Whether the driver should read from `id` now (false while its queue
    /// is over the cap, or after the peer closed).
    pub fn wants_read(&self, id: ConnId) -> bool {
        match self.conns.get(id).and_then(Option::as_deref) {
            Some(c) => !c.read_paused && !c.peer_closed && c.phase() != Phase::Closed,
            None => false,
        }
    }

    /// The next connection with something for the driver to do: bytes to
    /// write, a close, or reading to resume.
    ///
    /// First in, first out: a driver that writes only so many connections
    /// before it looks at its sockets again (see [`Node::has_ready`])
    /// comes back to the ones it has not reached, and messages that
    /// arrive meanwhile join their queues, to leave in the same write.
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        while let Some(id) = self.ctx.ready.pop_front() {
            if let Some(conn) = slot_of(&mut self.conns, id) {
                conn.ready = false;
                return Some(id);
            }
        }
        None
    }

    /// Whether connections wait in the ready queue: a driver that stopped
    /// taking them to read its sockets polls without sleeping.
    pub fn has_ready(&self) -> bool {
        !self.ctx.ready.is_empty()
    }

    /// Fills `slices` with bytes queued for `id`; returns how many slices.
    pub fn poll_transmit<'a>(&'a self, id: ConnId, slices: &mut [IoSlice<'a>]) -> usize {
        match self.conns.get(id).and_then(Option::as_deref) {
            Some(c) => c.out.fill(slices),
            None => 0,
        }
    }

    /// `n` bytes of `id`'s queue were written.
    pub fn handle_sent(&mut self, id: ConnId, n: usize, now: Instant) {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return;
        };
        conn.out.consume(n);
        if let Some(log) = self.ctx.access_mut(id) {
            log.sent += n as u64;
        }
        sio::on_sent(&mut self.ctx, id, conn);
        self.settle(id, now);
        self.run_pending(now);
    }

    /// What the driver does with `id` after writing what it could. `Close`
    /// also frees the id.
    pub fn poll_status(&mut self, id: ConnId) -> ConnStatus {
        let Some(conn) = slot_of(&mut self.conns, id) else {
            return ConnStatus::Close;
        };
        if conn.phase() == Phase::Closed {
            let log = self.ctx.access.get_mut(id).and_then(Option::take);
            let sent = log.as_ref().map_or(0, |l| l.sent);
            let open = log.and_then(|mut l| l.open_entry.take());
            if let Some((since, entry, kind)) = open {
                let secs = self.ctx.date_secs;
                let took = self.ctx.last_now.saturating_duration_since(since);
                let status = if kind == "ws" { 101 } else { 200 };
                self.ctx.log.push(format!(
                    "{secs} {entry} {status} {sent} {:.3}s {kind}",
                    took.as_secs_f64()
                ));
            }
            self.ctx.stats.conns_by[conn_kind(&conn.state)] -= 1;
            if let Some(d) = conn.deadline {
                let slot = slot_kind(conn.deadline_queued);
                self.ctx.timers.remove(d, id, slot);
            }
            self.conns[id] = None;
            self.free.push(id);
            self.ctx.live -= 1;
            return ConnStatus::Close;
        }
        let cfg = &self.ctx.cfg;
        let was_paused = conn.read_paused;
        conn.read_paused = over_cap(cfg, conn);
        ConnStatus::Open {
            want_write: !conn.out.is_empty(),
            read_now: was_paused && !conn.read_paused && !conn.peer_closed,
        }
    }

    /// The earliest deadline: the driver sleeps until then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.ctx.timers.first();
        let engine = self.ctx.cluster.as_ref().and_then(|c| c.poll_timeout());
        for t in [
            self.ctx.hub.poll_timeout(),
            self.ctx.shutdown_at,
            self.ctx.sio.poll_timeout(),
            engine,
        ]
        .into_iter()
        .flatten()
        {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        next
    }

    /// The peer address of `id`, for the access log.
    pub fn set_peer(&mut self, id: ConnId, peer: std::net::SocketAddr) {
        if slot_of(&mut self.conns, id).is_some() {
            if let Some(log) = self.ctx.access_mut(id) {
                log.peer = Some(peer);
            }
        }
    }

    /// Bytes the core holds for `id`: its unread input and its unwritten
    /// output (what the memory bounds of `Config` bound).
    pub fn held_bytes(&self, id: ConnId) -> (usize, usize) {
        match self.conns.get(id).and_then(Option::as_deref) {
            Some(c) => (c.inbuf.len(), c.out.len()),
            None => (0, 0),
        }
    }

    /// Shutting down: the driver stops accepting.
    pub fn is_shutting_down(&self) -> bool {
        self.ctx.shutdown_at.is_some()
    }

    /// Shutdown is over: every connection is gone, or the grace ran out.
    pub fn is_finished(&self, now: Instant) -> bool {
        match self.ctx.shutdown_at {
            Some(at) => self.ctx.live == 0 || now >= at,
            None => false,
        }
    }

    // ---- internals ----------------------------------------------------------

    /// After anything happened to `id`: checks whether it is done closing,
    /// continues a replay, updates its deadline, and puts it in the ready
    /// queue when the driver has something to do. (Every `handle_*` then
    /// runs the fan-out of what was published meanwhile.)
    fn settle(&mut self, id: ConnId, now: Instant) {
        self.ctx.last_now = now;
        if let Some(conn) = slot_of(&mut self.conns, id) {
            let ctx = &mut self.ctx;
            continue_replay(ctx, conn, now);
            if conn.phase() == Phase::Closing && conn.out.is_empty() && closing_done(conn) {
                step(ctx, id, conn, Event::Flushed, now, |_| State::Closed);
            }
            // Lazy timers: a deadline that moves later (every message
            // pushes back a heartbeat) keeps its old entry, which fires
            // early and is looked at again; only an earlier one is added.
            let deadline = deadline_of(&ctx.cfg, conn);
            let keep_entry = matches!((conn.deadline, deadline), (Some(reg), Some(d)) if reg <= d);
            if !keep_entry && deadline != conn.deadline {
                if let Some(d) = conn.deadline {
                    ctx.timers.remove(d, id, slot_kind(conn.deadline_queued));
                }
                if let Some(d) = deadline {
                    let slot = ctx.timers.insert(d, id, now);
                    conn.deadline_queued = slot == timers::Slot::Queue;
                }
                conn.deadline = deadline;
            }
            let resume = conn.read_paused && !over_cap(&ctx.cfg, conn);
            if !conn.ready && (!conn.out.is_empty() || conn.phase() == Phase::Closed || resume) {
                conn.ready = true;
                ctx.ready.push_back(id);
            }
            if !conn.read_paused && over_cap(&ctx.cfg, conn) {
                conn.read_paused = true;
            }
        }
    }

    /// Fans out every pending message: its shared bytes go to each
    /// subscriber's queue, and every poll parked on its topic is answered.
    fn run_pending(&mut self, now: Instant) {
        self.sio_flush(now);
        for topic in std::mem::take(&mut self.ctx.drops) {
            for sid in subscriber_conns(&self.ctx, &topic) {
                if let Some(conn) = slot_of(&mut self.conns, sid) {
                    end_stream(&mut self.ctx, sid, conn, 1012, "dropped for a test", now);
                    self.settle(sid, now);
                }
            }
        }
        for (topic, deleted) in std::mem::take(&mut self.ctx.deletions) {
            // Every live subscriber stood at the end of the dropped
            // history: it is told `gap` and stands at the new epoch's 0.
            for &sub in &deleted.subscribers {
                if sub >= sio::SIO_SUBS {
                    sio::restart_sub(&mut self.ctx, sub);
                    continue;
                }
                let (sid, slot) = conn::sub_of(sub);
                let Some(conn) = slot_of(&mut self.conns, sid) else {
                    continue;
                };
                let Some(format) = Format::of(&conn.state) else {
                    continue;
                };
                if let Some(s) = conn.state.subs_mut().and_then(|s| s.get_mut(slot)) {
                    s.cursor = deleted.last_id;
                    format.queue_gap(&mut conn.out, &deleted.gap, &topic);
                }
                self.settle(sid, now);
            }
            // A parked poll's cursor is of the dropped history: answered
            // now, it is told the gap and given the new epoch's 0.
            for pid in self.ctx.parking.wake(&topic) {
                if let Some(conn) = slot_of(&mut self.conns, pid) {
                    self.ctx.stats.polls_woken += 1;
                    app::answer_parked(&mut self.ctx, pid, conn, now, false);
                    self.settle(pid, now);
                }
            }
        }
        while !self.ctx.pending.is_empty() {
            let batch = std::mem::take(&mut self.ctx.pending);
            for (topic, msg) in batch {
                let mut cut = Vec::new();
                // Compressed once, on first need, for every deflate
                // subscriber of this message (single- and multi-topic form).
                let mut deflated = Deflated::default();
                // Multi-topic SSE events, once per combined cursor.
                let mut events = mux_sse::SharedEvents::default();
                let mut delivered = false;
                let mut sio_subs = Vec::new();
                let Ctx {
                    hub,
                    cfg,
                    stats,
                    ready,
                    log,
                    serials,
                    ..
                } = &mut self.ctx;
                // The subscriber list is read in place while connections
                // are written to: no copy of 5,000 ids per publish.
                for &sub in hub.subscribers(&topic) {
                    if sub >= sio::SIO_SUBS {
                        sio_subs.push(sub);
                        continue;
                    }
                    let (sid, slot) = conn::sub_of(sub);
                    let Some(conn) = self.conns.get_mut(sid).and_then(Option::as_deref_mut) else {
                        continue;
                    };
                    match deliver(cfg, conn, slot, &msg, &mut deflated, &mut events, now) {
                        Delivery::Queued(t) => {
                            stats.deliveries += 1;
                            stats.deliveries_by[t] += 1;
                            delivered = true;
                            if cfg.trace {
                                let tag = ConnTag(serials.get(sid).copied().unwrap_or(0));
                                log.push(format!(
                                    "{tag} -> id {} event {}",
                                    msg.id_text,
                                    msg.event_name()
                                ));
                            }
                            if !conn.ready {
                                conn.ready = true;
                                ready.push_back(sid);
                            }
                        }
                        Delivery::TooSlow => cut.push(sid),
                        Delivery::Skipped => {}
                    }
                }
                if !sio_subs.is_empty() {
                    let done = sio::deliver(&mut self.ctx, &mut self.conns, &sio_subs, &msg);
                    self.ctx.stats.deliveries += done.count;
                    self.ctx.stats.deliveries_by[3] += done.count;
                    delivered |= done.count > 0;
                    cut.extend(done.too_slow);
                }
                if delivered {
                    self.ctx
                        .latency
                        .record(now.saturating_duration_since(msg.published_at));
                }
                for sid in cut {
                    if let Some(conn) = slot_of(&mut self.conns, sid) {
                        let ctx = &mut self.ctx;
                        ctx.stats.slow_disconnects += 1;
                        let cap = ctx.cfg.subscriber_queue_bytes;
                        ctx.trace_conn(sid, || {
                            format!("cut off: queue over its cap ({cap} bytes)")
                        });
                        // What was kept of the queue ends on a frame or
                        // chunk boundary.
                        conn.out.clear_unstarted();
                        // RFC 6455 §7.4.1: 1008, the endpoint's policy.
                        end_stream(ctx, sid, conn, 1008, "subscriber too slow", now);
                        self.settle(sid, now);
                    }
                }
                for pid in self.ctx.parking.wake(&topic) {
                    if let Some(conn) = slot_of(&mut self.conns, pid) {
                        let ctx = &mut self.ctx;
                        ctx.stats.polls_woken += 1;
                        ctx.trace_conn(pid, || format!("long poll woken by {}", msg.id_text));
                        app::answer_parked(ctx, pid, conn, now, false);
                        self.settle(pid, now);
                    }
                }
            }
        }
        self.sio_flush(now);
        if !self.ctx.pending.is_empty() {
            self.run_pending(now);
        }
    }
}

/// The connection's WebSocket session stopped after a message, with
/// input left (see `WsSession::step_messages`).
fn ws_paused(conn: &Conn) -> bool {
    match &conn.state {
        State::WebSocket(ws) | State::Closing(Closing { ws: Some(ws) }) => ws.session.paused(),
        _ => false,
    }
}

/// The connections subscribed to `topic` (SSE, stream, WebSocket; a
/// multi-topic one once), not counting Socket.IO sockets.
pub(crate) fn subscriber_conns(ctx: &Ctx, topic: &TopicName) -> Vec<ConnId> {
    let mut conns: Vec<ConnId> = ctx
        .hub
        .subscribers(topic)
        .iter()
        .filter(|&&s| s < sio::SIO_SUBS)
        .map(|&s| conn::sub_of(s).0)
        .collect();
    conns.sort_unstable();
    conns.dedup();
    conns
}

/// Where a connection's registered deadline is, by its flag.
fn slot_kind(queued: bool) -> timers::Slot {
    if queued {
        timers::Slot::Queue
    } else {
        timers::Slot::Tree
    }
}

fn slot_of(conns: &mut [Option<Box<Conn>>], id: ConnId) -> Option<&mut Conn> {
    conns.get_mut(id).and_then(Option::as_deref_mut)
}

/// Moves `conn` by `event`. The table in `conn.rs` says where it leads;
/// `make` builds the new state's data from the old state. Leaving a
/// subscription or a parked poll undoes it in the hub and the parking
/// table. An event the table does not plan for closes the connection.
fn step(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    event: Event,
    now: Instant,
    make: impl FnOnce(State) -> State,
) {
    let from = conn.phase();
    if from == Phase::Closed {
        return; // waiting for the driver to drop it: nothing more happens
    }
    let Some(to) = conn::next(from, event) else {
        let tag = ctx.conn_tag(id);
        ctx.log.push(format!(
            "{tag} bug: {event:?} in {from:?} is not a transition"
        ));
        leave(ctx, id, &mut conn.state);
        ctx.stats.conns_by[conn_kind(&conn.state)] -= 1;
        ctx.stats.conns_by[6] += 1;
        conn.state = State::Closed;
        return;
    };
    if from != to {
        sio::on_leave(ctx, id, &conn.state, to, now);
    }
    if !matches!(to, Phase::Streaming | Phase::WebSocket) {
        unsubscribe_all(ctx, id, &mut conn.state);
    }
    if from == Phase::Parked && to != Phase::Parked {
        ctx.parking.remove(id);
    }
    let old = std::mem::replace(&mut conn.state, State::Closed);
    let old_kind = conn_kind(&old);
    let mut new = make(old);
    if new.phase() != to {
        let tag = ctx.conn_tag(id);
        ctx.log.push(format!(
            "{tag} bug: {event:?} in {from:?} leads to {to:?}, not {:?}",
            new.phase()
        ));
        leave(ctx, id, &mut new);
        new = State::Closed;
    }
    ctx.stats.conns_by[old_kind] -= 1;
    ctx.stats.conns_by[conn_kind(&new)] += 1;
    if from != to {
        if matches!(to, Phase::Closing) {
            conn.idle_since = now;
        }
        ctx.trace_conn(id, || format!("{from:?} -> {to:?} ({event:?})"));
    }
    conn.state = new;
}

/// Undoes what a state holds in the hub (used when a bug forces a close).
fn leave(ctx: &mut Ctx, id: ConnId, state: &mut State) {
    unsubscribe_all(ctx, id, state);
    if state.phase() == Phase::Parked {
        ctx.parking.remove(id);
    }
}

/// Ends every subscription a state holds, in the hub too.
fn unsubscribe_all(ctx: &mut Ctx, id: ConnId, state: &mut State) {
    let Some(subs) = state.subs_mut() else {
        return;
    };
    let slots: Vec<usize> = subs.iter().map(|(slot, _)| slot).collect();
    for slot in slots {
        if let Some(sub) = subs.remove(slot) {
            ctx.hub.unsubscribe(&sub.topic, conn::sub_id(id, slot));
        }
    }
}

/// The `Closing` state for a state being left: a WebSocket keeps its
/// session to finish the closing handshake.
fn close_state(old: State) -> State {
    match old {
        State::WebSocket(ws) => State::Closing(Closing { ws: Some(ws) }),
        State::Closing(c) => State::Closing(c),
        _ => State::Closing(Closing { ws: None }),
    }
}

/// Whether a closing connection waits for nothing more once its queue is
/// empty.
fn closing_done(conn: &Conn) -> bool {
    match &conn.state {
        State::Closing(Closing { ws: Some(ws) }) => {
            ws.session.wants_close_transport() || conn.peer_closed
        }
        _ => true,
    }
}

/// Whether input left over after `feed` must be kept for later.
fn keeps_input(conn: &Conn) -> bool {
    match &conn.state {
        State::Http(_)
        | State::Parked(_)
        | State::EioPoll(_)
        | State::WebSocket(_)
        | State::AwaitingBroker(_) => true,
        State::Closing(c) => c.ws.is_some(),
        State::Streaming(_) | State::Closed => false,
    }
}

/// Reading stops while the peer does not take what we send (an echo
/// client that never reads must not grow our memory), and while a parked
/// poll's pipelined input fills the buffer.
fn over_cap(cfg: &Config, conn: &Conn) -> bool {
    let cap = match conn.phase() {
        Phase::WebSocket => cfg.subscriber_queue_bytes,
        _ => cfg.max_outbound_bytes,
    };
    conn.out.len() > cap || conn.inbuf.len() > cfg.max_head_bytes + cfg.max_body_bytes
}

/// Feeds `input` to whatever the connection speaks; returns the bytes
/// consumed. A request that upgrades to WebSocket hands the rest of the
/// input to the new session.
fn feed(ctx: &mut Ctx, id: ConnId, conn: &mut Conn, input: &mut [u8], now: Instant) -> usize {
    let mut at = 0;
    loop {
        let before = conn.phase();
        let used = match &conn.state {
            State::Http(_) => app::process_http(ctx, id, conn, &mut input[at..], now),
            State::WebSocket(_) | State::Closing(Closing { ws: Some(_) }) => {
                app::process_ws(ctx, id, conn, &mut input[at..], now)
            }
            // Stays buffered until the poll is answered.
            State::Parked(_) | State::EioPoll(_) | State::AwaitingBroker(_) => 0,
            // A stream's request is answered: later input is ignored (a
            // client does not pipeline after an event stream); a closing
            // connection reads only to avoid a reset that would destroy
            // its last response.
            State::Streaming(_) | State::Closing(_) | State::Closed => input.len() - at,
        };
        at += used;
        let upgraded = before == Phase::Http && conn.phase() == Phase::WebSocket;
        if !upgraded || at >= input.len() {
            return at;
        }
    }
}

/// The one deadline a connection is registered under.
fn deadline_of(cfg: &Config, conn: &Conn) -> Option<Instant> {
    match &conn.state {
        State::Http(http) => {
            let due = http
                .poll_timeout()
                .unwrap_or(conn.idle_since + cfg.keep_alive_timeout);
            Some(first_head_by(cfg, conn).map_or(due, |f| f.min(due)))
        }
        State::Parked(p) => Some(p.deadline),
        // The session's timers answer it (node/sio.rs).
        State::EioPoll(_) => None,
        State::AwaitingBroker(a) => Some(a.deadline),
        State::Streaming(s) => {
            let beat = s.last_write + cfg.heartbeat_interval;
            Some(s.expires.as_deref().map_or(beat, |&e| e.min(beat)))
        }
        State::WebSocket(ws) => match (ws.session.poll_timeout(), ws.expires) {
            (Some(t), Some(e)) => Some(t.min(e)),
            (t, e) => t.or(e),
        },
        State::Closing(c) => {
            let linger = conn.idle_since + LINGER;
            Some(
                match c.ws.as_ref().and_then(|ws| ws.session.poll_timeout()) {
                    Some(t) => t.min(linger),
                    None => linger,
                },
            )
        }
        State::Closed => None,
    }
}

/// When a connection bound by [`Node::bound_first_request`] must have
/// its first request head, while that head is still to come (the accept
/// is `idle_since` until a request is served).
fn first_head_by(cfg: &Config, conn: &Conn) -> Option<Instant> {
    match &conn.state {
        State::Http(http) if conn.first_head_due && http.served() == 0 && http.awaiting_head() => {
            Some(conn.idle_since + cfg.header_read_timeout)
        }
        _ => None,
    }
}

/// A connection's deadline passed.
fn on_deadline(ctx: &mut Ctx, id: ConnId, conn: &mut Conn, now: Instant) {
    let first_head_late = first_head_by(&ctx.cfg, conn).is_some_and(|by| now >= by);
    match &mut conn.state {
        State::Http(http) if first_head_late => {
            if http.in_progress() {
                let e = crate::proto::http::HttpError::HeadTimeout;
                app::answer_error(ctx, id, conn, &e.to_string(), e.status(), now);
            } else {
                ctx.trace_conn(id, || "no request within the header deadline".to_string());
                step(ctx, id, conn, Event::Deadline, now, |_| State::Closed);
            }
        }
        State::Http(http) => {
            if http.in_progress() {
                if let Err(e) = http.handle_timeout(now) {
                    app::answer_error(ctx, id, conn, &e.to_string(), e.status(), now);
                }
            } else if now >= conn.idle_since + ctx.cfg.keep_alive_timeout {
                ctx.trace_conn(id, || "keep-alive timeout".to_string());
                step(ctx, id, conn, Event::Deadline, now, |_| State::Closed);
            }
        }
        // Answered by its session's timers, never by a deadline of its own.
        State::EioPoll(_) => {}
        State::Parked(_) => {
            ctx.stats.polls_expired += 1;
            app::answer_parked(ctx, id, conn, now, true);
        }
        State::AwaitingBroker(_) => {
            app::answer_broker(ctx, id, conn, Some(app::BrokerAnswer::TimedOut), now)
        }
        State::Streaming(s) if s.expires.as_deref().is_some_and(|&e| e <= now) => {
            // Revocation by expiry: a long-lived stream ends when its token
            // does (DESIGN "Security").
            ctx.trace_conn(id, || "token expired".to_string());
            end_stream(ctx, id, conn, 1008, "token expired", now);
        }
        State::WebSocket(ws) if ws.expires.is_some_and(|e| e <= now) => {
            ctx.trace_conn(id, || "token expired".to_string());
            // RFC 6455 §7.4.1: 1008, the endpoint's policy.
            end_stream(ctx, id, conn, 1008, "token expired", now);
        }
        State::Streaming(s) => {
            // Proxies and browsers drop silent streams, so an idle stream
            // carries a comment.
            let mut block = Vec::with_capacity(16);
            match s.kind {
                StreamKind::Sse => sse::encode_comment(&mut block, "heartbeat"),
                // NDJSON: an empty line, which no JSON value is.
                StreamKind::Ndjson => block.push(b'\n'),
            }
            push_block(&mut conn.out, s.chunked, &block);
            s.last_write = now;
        }
        State::WebSocket(ws) => {
            ws.session.handle_timeout(now, &mut conn.out);
            app::trace_ws(ctx, id, &mut ws.session);
            if ws.session.wants_close_transport() {
                step(ctx, id, conn, Event::WsClosing, now, close_state);
            }
        }
        State::Closing(c) => {
            if let Some(ws) = &mut c.ws {
                ws.session.handle_timeout(now, &mut conn.out);
            }
            if now >= conn.idle_since + LINGER
                || c.ws
                    .as_ref()
                    .is_none_or(|ws| ws.session.wants_close_transport())
            {
                step(ctx, id, conn, Event::Deadline, now, |_| State::Closed);
            }
        }
        State::Closed => {}
    }
}

/// Ends a connection on purpose, its goodbye queued after what is queued:
/// a WebSocket gets a close frame with `code` (RFC 6455 §7.4.1), a chunked
/// stream its last chunk, so it ends as a chunked body should (RFC 9112
/// §7.1). An idle HTTP connection just closes.
fn end_stream(ctx: &mut Ctx, id: ConnId, conn: &mut Conn, code: u16, reason: &str, now: Instant) {
    match &mut conn.state {
        State::WebSocket(ws) => {
            ws.session.close(code, reason, now, &mut conn.out);
            app::trace_ws(ctx, id, &mut ws.session);
        }
        State::Streaming(s) if s.chunked => chunked_last(&mut conn.out),
        State::Http(http) if http.in_progress() => return,
        State::Parked(_) | State::Closing(_) | State::Closed => return,
        _ => {}
    }
    step(ctx, id, conn, Event::Ended, now, close_state);
}

fn chunked_last(out: &mut OutQueue) {
    let mut last = Vec::with_capacity(5);
    chunked::encode_last(&mut last);
    out.push(&last);
}

/// What happened when a message was offered to a subscriber.
enum Delivery {
    /// Queued, on the transport numbered as in [`TRANSPORTS`].
    Queued(usize),
    /// The queue already holds more than its cap: cut off.
    TooSlow,
    /// Not for this connection now (closing, or still replaying history,
    /// which will include this message).
    Skipped,
}

/// Queues one live message for subscription `slot` of a connection.
/// A message's WebSocket frames compressed with permessage-deflate
/// (RFC 7692 §7.2.1), `[single-topic, multi-topic]`: every answer we give
/// declares `server_no_context_takeover`, so one compressed frame serves
/// every subscriber that negotiated deflate with our window.
#[derive(Default)]
struct Deflated([Option<Arc<[u8]>>; 2]);

impl Deflated {
    fn frame(&mut self, cfg: &Config, msg: &Message, multi: bool) -> &Arc<[u8]> {
        self.0[usize::from(multi)].get_or_insert_with(|| {
            let json = if multi {
                WireFormat::MultiJson
            } else {
                WireFormat::Json
            };
            let frame = crate::proto::ws_deflate::compress_message(
                &msg.parts(json),
                crate::wire::ws_frame::Opcode::Text,
                cfg.ws_deflate_fanout_level.min(9),
                cfg.ws_deflate_server_window_bits,
            );
            frame.into()
        })
    }
}

/// The compressed frame for a subscriber that can take it: it negotiated
/// deflate with a window at least ours, and the message is over the
/// threshold.
fn deflated_for<'d>(
    cfg: &Config,
    conn: &Conn,
    msg: &Message,
    format: Format,
    deflated: &'d mut Deflated,
) -> Option<&'d Arc<[u8]>> {
    let (State::WebSocket(ws), Format::Ws { multi }) = (&conn.state, format) else {
        return None;
    };
    let d = ws.session.deflate()?;
    let json = if multi {
        WireFormat::MultiJson
    } else {
        WireFormat::Json
    };
    let big_enough = msg.wire_len(json) >= d.threshold as usize;
    let our_window = d.params.server_max_window_bits >= cfg.ws_deflate_server_window_bits;
    (big_enough && our_window).then(|| deflated.frame(cfg, msg, multi))
}

fn deliver(
    cfg: &Config,
    conn: &mut Conn,
    slot: usize,
    msg: &Arc<Message>,
    deflated: &mut Deflated,
    events: &mut mux_sse::SharedEvents,
    now: Instant,
) -> Delivery {
    let Some(format) = Format::of(&conn.state) else {
        return Delivery::Skipped;
    };
    let Some(sub) = conn.state.subs().and_then(|s| s.get(slot)) else {
        return Delivery::Skipped;
    };
    // Still replaying: the replay will reach this message in the history.
    // Already past it: the replay queued it (it was published during the
    // same turn as the subscribe). Either way it must not come twice.
    let queued_already = sub.cursor.epoch == msg.id.epoch && msg.id.seq <= sub.cursor.seq;
    if sub.catching_up || queued_already {
        return Delivery::Skipped;
    }
    // DESIGN "Limits": only a queue that already holds more than its cap
    // is a slow reader. A single large message on an empty queue is not,
    // or one big publish would cut off every subscriber of its topic.
    if conn.out.len() > cfg.subscriber_queue_bytes {
        return Delivery::TooSlow;
    }
    if let Some(frame) = deflated_for(cfg, conn, msg, format, deflated) {
        let frame = Arc::clone(frame);
        if let Some(sub) = conn.state.subs_mut().and_then(|s| s.get_mut(slot)) {
            sub.cursor = msg.id;
        }
        conn.out.push_shared(&frame);
        return Delivery::Queued(2);
    }
    queue_message(conn, format, slot, msg, Some(events));
    if let State::Streaming(s) = &mut conn.state {
        s.last_write = now;
    }
    Delivery::Queued(match format {
        Format::Sse { .. } | Format::MultiSse { .. } => 0,
        Format::Ndjson { .. } => 1,
        Format::Ws { .. } => 2,
    })
}

/// The wire form a subscriber receives messages in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Single-topic SSE events, each its own HTTP/1.1 chunk or
    /// close-delimited.
    Sse { chunked: bool },
    /// Multi-topic SSE: `id:` is the connection's combined cursor after
    /// the event, `data:` the JSON object with its topic.
    MultiSse { chunked: bool },
    /// NDJSON lines (with `"topic"` when `multi`).
    Ndjson { chunked: bool, multi: bool },
    /// WebSocket text frames of JSON (with `"topic"` when `multi`).
    Ws { multi: bool },
}

impl Format {
    /// The form a connection in `state` receives, if it receives any now.
    fn of(state: &State) -> Option<Format> {
        match state {
            State::Streaming(s) => Some(Format::of_stream(s)),
            State::WebSocket(ws) if ws.session.is_open() => Some(Format::Ws {
                multi: ws.role == conn::WsRole::Multi,
            }),
            _ => None,
        }
    }

    pub(crate) fn of_stream(s: &conn::Stream) -> Format {
        match (s.kind, s.multi) {
            (StreamKind::Sse, false) => Format::Sse { chunked: s.chunked },
            (StreamKind::Sse, true) => Format::MultiSse { chunked: s.chunked },
            (StreamKind::Ndjson, multi) => Format::Ndjson {
                chunked: s.chunked,
                multi,
            },
        }
    }

    /// The hub's form for all but the multi-topic SSE head.
    fn wire(self) -> WireFormat {
        match self {
            Format::Sse { chunked } => WireFormat::Sse { chunked },
            Format::MultiSse { chunked } => WireFormat::MultiSseTail { chunked },
            Format::Ndjson {
                chunked,
                multi: false,
            } => WireFormat::Ndjson { chunked },
            Format::Ndjson {
                chunked,
                multi: true,
            } => WireFormat::MultiNdjson { chunked },
            Format::Ws { multi: false } => WireFormat::Ws,
            Format::Ws { multi: true } => WireFormat::MultiWs,
        }
    }

    /// Queues a gap notice for `topic`: an SSE `gap` event, a JSON line,
    /// a text frame.
    pub(crate) fn queue_gap(self, out: &mut OutQueue, gap: &crate::hub::Gap, topic: &TopicName) {
        let mut block = Vec::with_capacity(96);
        match self {
            Format::Sse { chunked } => {
                gap.write_sse(&mut block, None);
                push_block(out, chunked, &block);
            }
            Format::MultiSse { chunked } => {
                gap.write_sse(&mut block, Some(topic));
                push_block(out, chunked, &block);
            }
            Format::Ndjson { chunked, multi } => {
                gap.write_json(&mut block, multi.then_some(topic));
                block.push(b'\n');
                push_block(out, chunked, &block);
            }
            Format::Ws { multi } => {
                gap.write_json(&mut block, multi.then_some(topic));
                crate::proto::ws::write_message(out, MessageKind::Text, &block);
            }
        }
    }
}

/// Queues a block of a streaming response, as a chunk when `chunked`.
fn push_block(out: &mut OutQueue, chunked: bool, block: &[u8]) {
    if chunked {
        let mut framed = Vec::with_capacity(block.len() + 8);
        chunked::write_chunk_header(&mut framed, block.len());
        framed.extend_from_slice(block);
        framed.extend_from_slice(b"\r\n");
        out.push(&framed);
    } else {
        out.push(block);
    }
}

/// Queues `msg` for subscription `slot` in `format`, and moves that
/// subscription's cursor past it. The message's bytes are shared with
/// every other subscriber; a multi-topic SSE event's `id:` line (the
/// connection's combined cursor) is shared, with `shared`, by every
/// subscriber of this message at the same cursor, and otherwise written
/// for this connection.
fn queue_message(
    conn: &mut Conn,
    format: Format,
    slot: usize,
    msg: &Arc<Message>,
    shared: Option<&mut mux_sse::SharedEvents>,
) {
    let Some(subs) = conn.state.subs_mut() else {
        return;
    };
    if let Format::MultiSse { chunked } = format {
        if let Some((slots, cache)) = subs.with_cursor() {
            // Moves the slot's cursor itself, knowing the one before.
            mux_sse::queue_event(&mut conn.out, slots, cache, slot, msg, chunked, shared);
            return;
        }
    }
    if let Some(sub) = subs.get_mut(slot) {
        sub.cursor = msg.id;
    }
    if let Format::MultiSse { chunked } = format {
        // One topic on `/sse?topic=`: its cursor is short to write.
        let mut cursor = Vec::new();
        subs.write_cursor(&mut cursor);
        mux_sse::queue_own(&mut conn.out, &cursor, msg, chunked);
        return;
    }
    conn.out.push_message(msg, format.wire());
}

/// Continues each catching-up subscription's replay while the queue has
/// room: history is queued a batch at a time, so replaying a long history
/// never holds more than about the queue cap, and live messages wait in
/// the history until the replay reaches them (never out of order, never
/// twice).
fn continue_replay(ctx: &mut Ctx, conn: &mut Conn, now: Instant) {
    let cap = ctx.cfg.subscriber_queue_bytes;
    let Some(format) = Format::of(&conn.state) else {
        return;
    };
    let catching: Vec<usize> = match conn.state.subs_mut() {
        Some(subs) if subs.may_replay() => {
            let catching: Vec<usize> = subs
                .iter()
                .filter(|(_, s)| s.catching_up)
                .map(|(slot, _)| slot)
                .collect();
            if catching.is_empty() {
                subs.replayed();
            }
            catching
        }
        _ => return,
    };
    for slot in catching {
        loop {
            if conn.out.len() > cap / 2 {
                return;
            }
            let Some(sub) = conn.state.subs().and_then(|s| s.get(slot)) else {
                break;
            };
            let topic = sub.topic.clone();
            let cursor = Cursor::After(sub.cursor);
            let text = sub.cursor.to_string();
            let limit = ReplayLimit {
                messages: REPLAY_BATCH,
                bytes: cap,
            };
            let Ok(replay) = ctx.hub.replay(&topic, &cursor, &text, now, limit) else {
                break;
            };
            if let Some(gap) = &replay.gap {
                format.queue_gap(&mut conn.out, gap, &topic);
            }
            let mut queued = 0;
            for m in &replay.messages {
                if conn.out.len() > cap {
                    break;
                }
                queue_message(conn, format, slot, m, None);
                queued += 1;
            }
            let Some(sub) = conn.state.subs_mut().and_then(|s| s.get_mut(slot)) else {
                break;
            };
            if queued == 0 {
                // Nothing to queue: the reader stands where the replay says
                // (after a gap, in the topic's current history).
                sub.cursor = replay.last_id;
            }
            // Caught up: everything the history holds is queued.
            let newest = ctx.hub.last_id(&topic);
            let done = queued == replay.messages.len()
                && (replay.messages.is_empty() || replay.messages.last().map(|m| m.id) == newest);
            sub.catching_up = !done;
            if done {
                // Caught up, so subscribed: from now on the name is the
                // hub's, not a copy per subscriber.
                if let Some(shared) = ctx.hub.shared_name(&sub.topic) {
                    sub.topic = shared;
                }
                break;
            }
        }
    }
}

/// Where a subscriber starts: its cursor read against the topic (the gap,
/// if one, and the position before the first message to replay). The
/// messages themselves are queued by [`continue_replay`], bounded by the
/// queue.
fn start_position(
    ctx: &mut Ctx,
    topic: &TopicName,
    cursor: &Cursor,
    cursor_text: &str,
    now: Instant,
) -> Result<crate::hub::Replay, HubError> {
    let none = ReplayLimit {
        messages: 0,
        bytes: 0,
    };
    refuse_beyond_mirror(ctx, topic, cursor)?;
    ctx.hub.replay(topic, cursor, cursor_text, now, none)
}

/// `want` is past `have`, this node's newest id of a topic, or of
/// another epoch: a position this node has not seen (yet).
pub(crate) fn ahead_of(want: crate::hub::MessageId, have: Option<crate::hub::MessageId>) -> bool {
    have.is_some_and(|h| want.epoch != h.epoch || want.seq > h.seq)
}

/// Cluster mode with Redis unreachable: a cursor past what this node's
/// mirror holds, or of another epoch, comes from a history the mirror has
/// not seen (an id another node handed out, or a Redis that restarted).
/// Answered from the mirror it would be a false gap and a replay of what
/// the client has, so it is refused (503: try again) until the link is
/// back; a cursor the mirror covers is served from it.
pub(crate) fn refuse_beyond_mirror(
    ctx: &Ctx,
    topic: &TopicName,
    cursor: &Cursor,
) -> Result<(), HubError> {
    let down = ctx.cluster.as_ref().is_some_and(|c| !c.is_up());
    match cursor {
        Cursor::After(want) if down && ahead_of(*want, ctx.hub.last_id(topic)) => {
            Err(HubError::BrokerUnavailable)
        }
        _ => Ok(()),
    }
}

/// Publishes into the hub; the fan-out runs when the current handling is
/// over. `from` is the publishing connection, for the trace.
fn publish(
    ctx: &mut Ctx,
    from: Option<ConnId>,
    topic: &TopicName,
    event: Option<&EventName>,
    data: &str,
    kind: PayloadKind,
    now: Instant,
) -> Result<Arc<Message>, HubError> {
    let msg = ctx.hub.publish(topic, event, data, kind, now)?;
    ctx.stats.published += 1;
    let tag = from.map_or(ConnTag(0), |id| ctx.conn_tag(id));
    ctx.trace(|| {
        format!(
            "{tag} published {} on {topic} (event {}, {} bytes, {kind:?})",
            msg.id_text,
            msg.event_name(),
            data.len()
        )
    });
    ctx.pending.push((topic.clone(), Arc::clone(&msg)));
    Ok(msg)
}

/// A subscription standing at `cursor`, with its replay still to queue.
fn new_sub(topic: &TopicName, cursor: MessageId) -> Sub {
    Sub {
        topic: topic.clone(),
        cursor,
        catching_up: true,
    }
}

#[cfg(test)]
mod tests;

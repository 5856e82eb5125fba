//! The event loop: the only code that touches sockets, the clock or mio.
//!
//! One thread, one `mio::Poll`. Connections live in a slab keyed by their
//! `Token`. Every socket is edge-triggered, so reads and accepts drain
//! until `WouldBlock`; a short write leaves the rest in the connection's
//! [`OutQueue`] and WRITABLE interest is registered only while bytes are
//! queued. Each connection has at most one deadline in a `BTreeSet`, and
//! the loop sleeps until the earliest one (or the hub's next eviction).
//!
//! The protocol work is done by the sans-IO machines in `proto/` and the
//! hub; this module moves bytes and time between them and the kernel.

mod app;
mod assets;
mod conn;
mod direct;
mod outq;
mod routes;
mod signal;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::hub::{Hub, HubError, HubLimits};
use crate::proto::http::{http_date, HttpConn, HttpLimits};
use crate::proto::longpoll::Parking;
use crate::Config;

use self::conn::{Conn, Mode};
pub use self::routes::{route, Miss, Route};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);

/// Size of the loop's shared read buffer. Reads land here first and only
/// the unconsumed tail of a read is copied into the connection, so idle
/// connections hold no read buffer at all.
const READ_CHUNK: usize = 64 * 1024;

/// How long a connection that is closing may take to take its last bytes.
const LINGER: Duration = Duration::from_secs(5);

/// How long shutdown waits for queued bytes to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Counters, served at `GET /stats`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub accepted: u64,
    pub refused_over_limit: u64,
    pub requests: u64,
    pub published: u64,
    pub deliveries: u64,
    /// Subscribers cut off because their outbound queue reached its cap.
    pub slow_disconnects: u64,
    pub polls_parked: u64,
    pub polls_woken: u64,
    pub polls_expired: u64,
}

/// A request to the loop from another thread (see [`Handle`]).
enum Command {
    Publish {
        topic: String,
        event: Option<String>,
        data: String,
        reply: Sender<Result<String, HubError>>,
    },
    Shutdown,
}

/// Talks to a running [`Server`] from another thread: publish messages
/// into its hub, or stop it.
#[derive(Clone)]
pub struct Handle {
    tx: Sender<Command>,
    waker: Arc<Waker>,
}

impl Handle {
    /// Publishes `data` to `topic` (with an optional event name) and
    /// returns the message id, exactly as `POST /topics/{topic}` would.
    pub fn publish(
        &self,
        topic: &str,
        event: Option<&str>,
        data: &str,
    ) -> Result<String, HubError> {
        let (reply, rx) = mpsc::channel();
        let cmd = Command::Publish {
            topic: topic.to_string(),
            event: event.map(str::to_string),
            data: data.to_string(),
            reply,
        };
        if self.tx.send(cmd).is_err() || self.waker.wake().is_err() {
            return Err(HubError::Stopped);
        }
        rx.recv().unwrap_or(Err(HubError::Stopped))
    }

    /// Asks the server to shut down as on SIGTERM.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
        let _ = self.waker.wake();
    }
}

/// The `Date` header value, formatted once per second.
struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    fn new() -> DateCache {
        let mut d = DateCache {
            secs: u64::MAX,
            text: [0; 29],
        };
        d.update();
        d
    }

    fn update(&mut self) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs != self.secs {
            self.secs = secs;
            self.text = http_date(secs);
        }
    }
}

/// The push server: listener, connections, hub, parked polls, timers.
pub struct Server {
    cfg: Arc<Config>,
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    conns: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    live: usize,
    timers: BTreeSet<(Instant, usize)>,
    hub: Hub,
    parking: Parking,
    http_limits: HttpLimits,
    date: DateCache,
    /// The shared read buffer.
    rbuf: Vec<u8>,
    /// Where responses for the connection being processed are built.
    wbuf: Vec<u8>,
    /// Messages published while handling a connection, fanned out once
    /// that connection is back in the slab (a WebSocket sender receives
    /// its own message).
    pending: Vec<(Box<str>, Arc<crate::hub::Message>)>,
    /// Connections given bytes by a fan-out, flushed once per loop turn.
    dirty: Vec<usize>,
    stats: Stats,
    commands: Receiver<Command>,
    handle: Handle,
    shutdown_at: Option<Instant>,
}

impl Server {
    /// Binds the listening socket. Nothing is served until [`run`](Self::run).
    pub fn bind(cfg: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(cfg.listen)?;
        widen_backlog(&listener);
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, commands) = mpsc::channel();
        // Microseconds: a server restarted a moment after the last one
        // must still start every history on an epoch of its own.
        let epoch_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Ok(Server {
            hub: Hub::new(HubLimits::from_config(&cfg), epoch_base),
            parking: Parking::new(cfg.max_parked_polls),
            http_limits: HttpLimits::from_config(&cfg),
            cfg: Arc::new(cfg),
            poll,
            listener: Some(listener),
            local_addr,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            timers: BTreeSet::new(),
            date: DateCache::new(),
            rbuf: vec![0; READ_CHUNK],
            wbuf: Vec::with_capacity(READ_CHUNK),
            pending: Vec::new(),
            dirty: Vec::new(),
            stats: Stats::default(),
            commands,
            handle: Handle { tx, waker },
            shutdown_at: None,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to publish into this server or stop it from other threads.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serves until SIGINT/SIGTERM or [`Handle::shutdown`], then drains
    /// what can be drained and returns.
    pub fn run(mut self) -> io::Result<()> {
        signal::install();
        let mut events = Events::with_capacity(1024);
        loop {
            if signal::requested() && self.shutdown_at.is_none() {
                self.begin_shutdown(Instant::now());
            }
            if let Some(at) = self.shutdown_at {
                if self.live == 0 || Instant::now() >= at {
                    return Ok(());
                }
            }
            let timeout = self.next_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue; // a signal: checked at the top
                }
                return Err(e);
            }
            self.date.update();
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => self.run_commands(now),
                    Token(id) => {
                        if event.is_writable() {
                            self.on_writable(id, now);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(id, now);
                        }
                    }
                }
            }
            self.run_timers(Instant::now());
            self.flush_dirty(Instant::now());
        }
    }

    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        let mut next = self.timers.first().map(|&(t, _)| t);
        if let Some(h) = self.hub.poll_timeout() {
            next = Some(next.map_or(h, |n| n.min(h)));
        }
        if let Some(s) = self.shutdown_at {
            next = Some(next.map_or(s, |n| n.min(s)));
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    // ---- accepting --------------------------------------------------------

    fn accept(&mut self, now: Instant) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the process is out of descriptors.
                    // Accepting again at once would spin; the next readiness
                    // edge comes with the next connection attempt.
                    eprintln!("pushwire: accept: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        self.stats.accepted += 1;
        if self.live >= self.cfg.max_connections {
            // Refused politely: one best-effort write, then close.
            self.stats.refused_over_limit += 1;
            let _ = stream.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n",
            );
            return;
        }
        let _ = stream.set_nodelay(true);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(id), Interest::READABLE)
        {
            eprintln!("pushwire: register: {e}");
            self.free.push(id);
            return;
        }
        if self.cfg.trace {
            eprintln!("[{id}] accepted from {peer}");
        }
        self.live += 1;
        self.conns[id] = Some(Box::new(Conn {
            stream,
            inbuf: Vec::new(),
            out: Default::default(),
            mode: Mode::Http(Box::new(HttpConn::new(self.http_limits))),
            deadline: None,
            idle_since: now,
            writable_interest: false,
            read_paused: false,
            peer_closed: false,
            close_after_flush: false,
        }));
        // Bytes may already be waiting (edge-triggered: no new edge for them).
        self.on_readable(id, now);
    }

    // ---- reading ------------------------------------------------------------

    fn take(&mut self, id: usize) -> Option<Box<Conn>> {
        self.conns.get_mut(id).and_then(Option::take)
    }

    fn on_readable(&mut self, id: usize, now: Instant) {
        let Some(mut conn) = self.take(id) else {
            return; // spurious: the connection is gone
        };
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let mut gone = false;
        while !conn.read_paused && !conn.peer_closed {
            match conn.stream.read(&mut rbuf) {
                Ok(0) => conn.peer_closed = true,
                Ok(n) => {
                    if conn.inbuf.is_empty() {
                        // The common case: process straight from the read
                        // buffer and keep only an unfinished tail.
                        let used = self.process(id, &mut conn, &mut rbuf[..n], now);
                        if used < n && !conn.close_after_flush {
                            conn.inbuf.extend_from_slice(&rbuf[used..n]);
                        }
                    } else {
                        conn.inbuf.extend_from_slice(&rbuf[..n]);
                        let mut input = std::mem::take(&mut conn.inbuf);
                        let used = self.process(id, &mut conn, &mut input, now);
                        input.drain(..used.min(input.len()));
                        if !conn.close_after_flush {
                            conn.inbuf = input;
                        }
                    }
                    self.check_pause(&mut conn);
                    // epoll(7): with edge-triggered readiness on a stream
                    // socket, a read shorter than asked for means the
                    // receive queue is empty, and any later data raises a
                    // new edge. Skipping the read that would only say
                    // WouldBlock saves a system call per event.
                    if n < rbuf.len() && !conn.close_after_flush {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    gone = true;
                    break;
                }
            }
            // A closing WebSocket keeps reading: the peer's close frame is
            // the end of the closing handshake (RFC 6455 §7.1.2).
            if conn.close_after_flush && !matches!(conn.mode, Mode::Ws(_)) {
                break;
            }
        }
        self.rbuf = rbuf;
        if conn.inbuf.is_empty() && conn.inbuf.capacity() > 0 {
            conn.inbuf = Vec::new();
        }
        if gone {
            self.close(id, conn, "read error");
            self.run_pending(now);
            return;
        }
        if conn.peer_closed {
            self.on_peer_closed(id, &mut conn, now);
        }
        self.finish(id, conn, now);
    }

    /// Reading stops while the peer does not take what we send (backpressure:
    /// an echo client that never reads must not grow our memory), and while
    /// a parked poll's pipelined input fills the buffer.
    fn check_pause(&self, conn: &mut Conn) {
        // One message may overshoot the cap (an echoed 16 MiB message is
        // queued whole); then reading waits until the queue drains.
        let cap = match conn.mode {
            Mode::Ws(_) => self.cfg.subscriber_queue_bytes,
            _ => self.cfg.max_outbound_bytes,
        };
        let input_cap = self.cfg.max_head_bytes + self.cfg.max_body_bytes;
        // Responses built in this turn wait in the loop's write buffer
        // until `finish` queues them: they count as queued already.
        let queued = conn.out.len() + self.wbuf.len();
        conn.read_paused = queued > cap || conn.inbuf.len() > input_cap;
    }

    /// Feeds `input` to the connection's protocol; returns how many bytes
    /// it consumed.
    fn process(&mut self, id: usize, conn: &mut Conn, input: &mut [u8], now: Instant) -> usize {
        let mut at = 0;
        loop {
            let used = match conn.mode {
                Mode::Http(_) => self.process_http(id, conn, &mut input[at..], now),
                Mode::Ws(_) => self.process_ws(id, conn, &mut input[at..], now),
                // A stream's request is answered: later input is ignored
                // (a client does not pipeline after an event stream).
                Mode::Sse(_) => input.len() - at,
                // Stays buffered until the poll is answered.
                Mode::Parked(_) => 0,
            };
            at += used;
            // An HTTP request may have turned the connection into a
            // WebSocket: its remaining bytes belong to the session.
            let switched_to_ws = matches!(conn.mode, Mode::Ws(_)) && used > 0;
            if !switched_to_ws || at >= input.len() || conn.close_after_flush {
                break;
            }
        }
        at
    }

    fn on_peer_closed(&mut self, id: usize, conn: &mut Conn, now: Instant) {
        match &mut conn.mode {
            // Requests already received are still answered; then close.
            Mode::Http(_) => conn.close_after_flush = true,
            Mode::Ws(ws) => {
                ws.session.handle_eof();
                conn.close_after_flush = true;
                conn.out.clear_unstarted();
            }
            Mode::Sse(_) | Mode::Parked(_) => {
                // A hang-up is noticed at once, not at the next heartbeat
                // or the poll's deadline.
                if self.cfg.trace {
                    eprintln!("[{id}] peer hung up");
                }
                conn.close_after_flush = true;
                conn.out.clear_unstarted();
            }
        }
        let _ = now;
    }

    // ---- writing ------------------------------------------------------------

    fn on_writable(&mut self, id: usize, now: Instant) {
        let Some(conn) = self.take(id) else {
            return;
        };
        self.finish(id, conn, now);
    }

    /// Flushes a connection's output, updates its interest and deadline,
    /// and puts it back in the slab (or closes it).
    fn finish(&mut self, id: usize, conn: Box<Conn>, now: Instant) {
        let resume = self.settle(id, conn);
        // Messages published while handling the connection are fanned out
        // now that it is back in the slab (a WebSocket sender receives its
        // own message) — or gone: a publish on a connection that closes
        // right after it is delivered all the same.
        self.run_pending(now);
        if resume {
            // Edge-triggered: bytes that arrived while paused raise no new
            // event, so read them now.
            self.on_readable(id, now);
        }
    }

    /// Flushes, then closes or puts the connection back with its interest
    /// and deadline updated. Returns whether reading should resume.
    fn settle(&mut self, id: usize, mut conn: Box<Conn>) -> bool {
        // Responses built for this connection go out in one write. With
        // nothing queued before them they are written straight from the
        // loop's buffer, and only what the socket does not take is copied.
        if !self.wbuf.is_empty() {
            if conn.out.is_empty() {
                let mut at = 0;
                while at < self.wbuf.len() {
                    match conn.stream.write(&self.wbuf[at..]) {
                        Ok(0) => break,
                        Ok(n) => at += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            self.wbuf.clear();
                            self.close(id, conn, "write error");
                            return false;
                        }
                    }
                }
                conn.out.push(&self.wbuf[at..]);
            } else {
                conn.out.push(&self.wbuf);
            }
            self.wbuf.clear();
        }
        if !conn.out.is_empty() {
            match conn.out.flush(&mut conn.stream) {
                Ok(_) => {}
                Err(_) => {
                    self.close(id, conn, "write error");
                    return false;
                }
            }
        }
        if conn.close_after_flush {
            let ws_done = match &conn.mode {
                Mode::Ws(ws) => ws.session.wants_close_transport() || conn.peer_closed,
                _ => true,
            };
            if conn.out.is_empty() && ws_done {
                self.close(id, conn, "done");
                return false;
            }
        }
        let was_paused = conn.read_paused;
        self.check_pause(&mut conn);
        let want_write = !conn.out.is_empty();
        if want_write != conn.writable_interest {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, Token(id), interest)
                .is_err()
            {
                self.close(id, conn, "reregister failed");
                return false;
            }
            conn.writable_interest = want_write;
        }
        // Lazy timers: a deadline that moves later (every message pushes
        // back a WebSocket's ping) keeps its old entry, which fires early
        // and is re-checked; only an earlier deadline is re-inserted.
        let deadline = self.deadline_of(&conn);
        let keep_entry = matches!((conn.deadline, deadline), (Some(reg), Some(d)) if reg <= d);
        if !keep_entry && deadline != conn.deadline {
            if let Some(d) = conn.deadline {
                self.timers.remove(&(d, id));
            }
            if let Some(d) = deadline {
                self.timers.insert((d, id));
            }
            conn.deadline = deadline;
        }
        let resume = was_paused && !conn.read_paused && !conn.peer_closed;
        self.conns[id] = Some(conn);
        resume
    }

    /// The one deadline a connection is registered under.
    fn deadline_of(&self, conn: &Conn) -> Option<Instant> {
        if conn.close_after_flush {
            return Some(match &conn.mode {
                Mode::Ws(ws) => ws
                    .session
                    .poll_timeout()
                    .unwrap_or(conn.idle_since + LINGER),
                _ => conn.idle_since + LINGER,
            });
        }
        match &conn.mode {
            Mode::Http(http) => Some(
                http.poll_timeout()
                    .unwrap_or(conn.idle_since + self.cfg.keep_alive_timeout),
            ),
            Mode::Sse(s) => Some(s.last_write + self.cfg.heartbeat_interval),
            Mode::Parked(p) => Some(p.deadline),
            Mode::Ws(ws) => ws.session.poll_timeout(),
        }
    }

    /// Flushes the connections a fan-out gave bytes to.
    fn flush_dirty(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            if let Some(conn) = self.take(id) {
                self.finish(id, conn, now);
            }
        }
    }

    // ---- closing ------------------------------------------------------------

    fn close(&mut self, id: usize, mut conn: Box<Conn>, why: &str) {
        if self.cfg.trace {
            eprintln!("[{id}] closed ({why})");
        }
        if let Some(d) = conn.deadline {
            self.timers.remove(&(d, id));
        }
        match &conn.mode {
            Mode::Sse(s) => {
                if let Ok(t) = crate::hub::TopicName::parse(&s.topic) {
                    self.hub.unsubscribe(&t, id);
                }
            }
            Mode::Ws(ws) => {
                if let Some(Ok(t)) = ws.topic.as_deref().map(crate::hub::TopicName::parse) {
                    self.hub.unsubscribe(&t, id);
                }
            }
            Mode::Parked(_) => self.parking.remove(id),
            Mode::Http(_) => {}
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        drop(conn);
        self.live -= 1;
        self.free.push(id);
    }

    // ---- time ---------------------------------------------------------------

    fn run_timers(&mut self, now: Instant) {
        self.hub.handle_timeout(now);
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, id));
            let Some(mut conn) = self.take(id) else {
                continue;
            };
            conn.deadline = None;
            match self.deadline_of(&conn) {
                // The entry was early (see `finish`): re-register the real one.
                Some(d) if d > now => {
                    self.timers.insert((d, id));
                    conn.deadline = Some(d);
                    self.conns[id] = Some(conn);
                    continue;
                }
                None => {
                    self.conns[id] = Some(conn);
                    continue;
                }
                Some(_) => {}
            }
            if self.on_deadline(id, &mut conn, now) {
                self.close(id, conn, "deadline");
            } else {
                self.finish(id, conn, now);
            }
        }
    }

    /// A connection's deadline passed. Returns true to close it now.
    fn on_deadline(&mut self, id: usize, conn: &mut Conn, now: Instant) -> bool {
        if conn.close_after_flush {
            if let Mode::Ws(ws) = &mut conn.mode {
                let mut out = std::mem::take(&mut self.wbuf);
                ws.session.handle_timeout(now, &mut out);
                self.wbuf = out;
                return ws.session.wants_close_transport()
                    && now >= conn.idle_since + LINGER.min(self.cfg.ws_close_timeout);
            }
            return true; // the peer did not take its last bytes in time
        }
        match &mut conn.mode {
            Mode::Http(http) => {
                if http.in_progress() {
                    if let Err(e) = http.handle_timeout(now) {
                        self.answer_error(conn, &e.to_string(), e.status());
                        conn.idle_since = now;
                    }
                    false
                } else {
                    now >= conn.idle_since + self.cfg.keep_alive_timeout
                }
            }
            Mode::Sse(s) => {
                // RFC-less but essential: proxies and browsers drop silent
                // streams, so an idle stream carries a comment.
                let mut block = Vec::with_capacity(16);
                crate::wire::sse::encode_comment(&mut block, "heartbeat");
                if s.chunked {
                    crate::wire::chunked::encode_chunk(&mut self.wbuf, &block);
                } else {
                    self.wbuf.extend_from_slice(&block);
                }
                s.last_write = now;
                false
            }
            Mode::Parked(_) => {
                self.stats.polls_expired += 1;
                self.answer_parked(id, conn, now, true);
                false
            }
            Mode::Ws(ws) => {
                let mut out = std::mem::take(&mut self.wbuf);
                ws.session.handle_timeout(now, &mut out);
                self.wbuf = out;
                if ws.session.wants_close_transport() {
                    conn.close_after_flush = true;
                    conn.idle_since = now;
                }
                self.drain_ws_trace(id, conn);
                false
            }
        }
    }

    // ---- commands from other threads -------------------------------------------

    fn run_commands(&mut self, now: Instant) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Publish {
                    topic,
                    event,
                    data,
                    reply,
                } => {
                    let result = self.publish(&topic, event.as_deref(), &data, now);
                    let _ = reply.send(result.map(|m| m.id_text.to_string()));
                    self.run_pending(now);
                }
                Command::Shutdown => self.begin_shutdown(now),
            }
        }
    }

    /// Stops accepting, says goodbye on every connection (WebSocket close
    /// 1001, the last chunk of every event stream, an answer to every
    /// parked poll), then gives queued bytes a short grace period.
    fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_at.is_some() {
            return;
        }
        eprintln!("pushwire: shutting down");
        self.shutdown_at = Some(now + SHUTDOWN_GRACE);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        for id in 0..self.conns.len() {
            let Some(mut conn) = self.take(id) else {
                continue;
            };
            if let Mode::Parked(_) = conn.mode {
                self.answer_parked(id, &mut conn, now, true);
            }
            conn.end_stream(1001, "server shutting down", now);
            self.finish(id, conn, now);
        }
    }
}

/// Pending connections the kernel may queue before `accept`.
const LISTEN_BACKLOG: i32 = 4096;

/// mio listens with a backlog of 128: a crowd of clients reconnecting at
/// once after a restart overflows it, and the kernel drops their SYNs and
/// makes them retry a second later. Calling listen(2) again on a listening
/// socket only updates its backlog (capped by net.core.somaxconn).
fn widen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn listen(fd: i32, backlog: i32) -> i32;
    }
    // SAFETY: the descriptor is a valid, bound, listening socket owned by
    // `listener` for the duration of the call.
    unsafe {
        listen(listener.as_raw_fd(), LISTEN_BACKLOG);
    }
}

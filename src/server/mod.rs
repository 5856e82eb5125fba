//! The driver: the only code that touches sockets, the clock or mio. It
//! moves bytes and time between the kernel and the sans-IO core
//! ([`crate::node::Node`]) and decides nothing about protocols.
//!
//! One thread, one `mio::Poll`. Every socket is edge-triggered, so
//! accepts and reads drain until `WouldBlock` (or a short read, see
//! `read_conn`); writes go out as `writev` of what the core has queued,
//! and WRITABLE interest is registered only while bytes remain. The loop
//! sleeps until the core's earliest deadline.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::hub::HubError;
use crate::node::outq::{FEW_IOVECS, MAX_IOVECS};
use crate::node::{ConnId, ConnStatus, Node, UpstreamAction, UPSTREAM};
use crate::proto::tls::{server_config, ServerConfig, TlsSession};
use crate::Config;

pub use crate::node::{route, Miss, Route, Stats};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// The Redis engine's socket (`--redis`).
const UPSTREAM_TOKEN: Token = Token(usize::MAX - 3);

/// Size of the loop's shared read buffer. Reads land here and the core
/// keeps only an unconsumed tail, so idle connections hold no buffer.
const READ_CHUNK: usize = 64 * 1024;

/// Connections written before the loop looks at its sockets again. A
/// message fanned out to 5,000 subscribers is tens of milliseconds of
/// writes: in slices of this many, a request that arrives meanwhile is
/// read and answered within a slice, and a message published meanwhile
/// joins the queues not yet written, to leave in the same write.
const WRITES_PER_TURN: usize = 512;

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

    /// Asks the server to shut down: goodbyes on every connection, a
    /// short grace for queued bytes, then [`Server::run`] returns. This is
    /// the only way a server stops (the binary calls it on SIGINT and
    /// SIGTERM), so two servers in one process never stop each other.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
        let _ = self.waker.wake();
    }
}

/// The push server: a listener, its sockets, and the core.
pub struct Server {
    node: Node,
    poll: Poll,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    /// Sockets by connection id (the core's ids are the mio tokens).
    sockets: Vec<Option<Socket>>,
    rbuf: Vec<u8>,
    commands: Receiver<Command>,
    handle: Handle,
    last_second: u64,
    tls: Option<Arc<ServerConfig>>,
    /// Plaintext out of TLS records, handed to the core.
    plain: Vec<u8>,
    /// TLS connections with records the socket did not take on a read.
    tls_pending: Vec<ConnId>,
    /// Small slices of TLS plaintext gathered into one record.
    tls_gather: Vec<u8>,
    started: Instant,
    /// The Redis engine's socket, while it has one.
    upstream: Option<Upstream>,
}

/// The socket to Redis: the core says when to open and close it and what
/// to write; this only moves the bytes.
struct Upstream {
    stream: TcpStream,
    /// The non-blocking connect has completed.
    connected: bool,
}

struct Socket {
    stream: TcpStream,
    /// WRITABLE interest is registered (only while bytes are queued).
    writable: bool,
    /// On a TLS listener: the session between the socket's ciphertext and
    /// the core's plaintext. Records not yet written wait in it.
    tls: Option<Box<Tls>>,
}

struct Tls {
    session: TlsSession,
}

/// Plaintext taken from the core's queue into TLS records at a time. More
/// is taken only once the socket has taken every record, so at most this
/// much waits in rustls and the core's queue caps stay the bound on memory.
const TLS_BATCH: usize = 256 * 1024;

/// RFC 8446 §5.1: a record carries at most 2^14 bytes of plaintext.
const MAX_RECORD_PLAINTEXT: usize = 1 << 14;

impl Server {
    /// Binds the listening socket. Nothing is served until [`run`](Self::run).
    pub fn bind(cfg: Config) -> io::Result<Server> {
        cfg.validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(cert), Some(key)) => {
                let cert = std::fs::read(cert)?;
                let key = std::fs::read(key)?;
                let config = server_config(&cert, &key)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
                Some(config)
            }
            _ => None,
        };
        keep_freed_memory();
        let poll = Poll::new()?;
        let mut listener = listen(cfg.listen, cfg.reuse_port)?;
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
        let mut node = Node::new(Arc::new(cfg), epoch_base);
        node.set_date(unix_secs());
        Ok(Server {
            node,
            poll,
            listener: Some(listener),
            local_addr,
            sockets: Vec::new(),
            rbuf: vec![0; READ_CHUNK],
            commands,
            handle: Handle { tx, waker },
            last_second: 0,
            tls,
            plain: Vec::new(),
            tls_pending: Vec::new(),
            tls_gather: Vec::new(),
            started: Instant::now(),
            upstream: None,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the listener speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A handle to publish into this server or stop it from other threads.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Registers Socket.IO handlers for namespace `name` on
    /// `/socket.io/` (see [`crate::proto::socketio::Namespace`]). Without
    /// a registration, namespace `/` is the hub's (subscribe, publish);
    /// registering `/` replaces it.
    ///
    /// Panics if `name` does not start with `/` or contains `,`.
    pub fn namespace(
        &mut self,
        name: &str,
        handlers: impl crate::proto::socketio::Namespace + Send + 'static,
    ) -> &mut Server {
        self.node.register_namespace(name, Box::new(handlers));
        self
    }

    /// Serves until [`Handle::shutdown`], then drains what can be drained
    /// and returns.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if self.node.is_finished(now) {
                return Ok(());
            }
            // Connections left in the ready queue: look at the sockets
            // and come straight back to them.
            let timeout = if self.node.has_ready() {
                Some(Duration::ZERO)
            } else {
                self.node
                    .poll_timeout()
                    .map(|t| t.saturating_duration_since(now))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let secs = unix_secs();
            if secs != self.last_second {
                // Once a second: the Date header, and what /metrics says
                // of the process.
                self.last_second = secs;
                self.node.set_date(secs);
                self.node.set_process_stats(crate::procstat::read());
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    WAKER => self.run_commands(now),
                    UPSTREAM_TOKEN => self.upstream_event(event, now),
                    Token(id) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // Data and the peer's FIN can come in one edge:
                            // then the read must go on to find the end.
                            let to_end = event.is_read_closed() || event.is_error();
                            self.read_conn(id, to_end, now);
                        }
                        if event.is_writable() {
                            self.flush(id, now);
                        }
                    }
                }
            }
            self.node.handle_timeout(Instant::now());
            self.service_upstream(Instant::now());
            self.service(Instant::now());
            // Serving may have read requests that need Redis.
            self.service_upstream(Instant::now());
            let trace = self.node.config().trace;
            let elapsed = self.started.elapsed().as_secs_f64();
            for line in self.node.poll_log() {
                if trace {
                    // Seconds since start: trace lines are read against
                    // each other, not against the wall clock.
                    eprintln!("{elapsed:10.6} {line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }

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
                    // EMFILE and friends: out of descriptors. Accepting
                    // again at once would spin; the next connection
                    // attempt raises the next edge.
                    eprintln!("pushwire: accept: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let id = match self.node.handle_accept(now) {
            Ok(id) => id,
            Err(refused) => {
                let _ = stream.write(refused.0);
                return;
            }
        };
        self.node.set_peer(id, peer);
        let _ = stream.set_nodelay(true);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(id), Interest::READABLE)
        {
            eprintln!("pushwire: register: {e}");
            self.node.handle_reset(id, now);
            self.node.poll_status(id);
            return;
        }
        if self.sockets.len() <= id {
            self.sockets.resize_with(id + 1, || None);
        }
        let tls = match &self.tls {
            Some(config) => match TlsSession::new(Arc::clone(config)) {
                Ok(session) => Some(Box::new(Tls { session })),
                Err(_) => {
                    self.node.handle_reset(id, now);
                    self.node.poll_status(id);
                    return;
                }
            },
            None => None,
        };
        if tls.is_some() {
            // The handshake and then the first request head within the
            // header deadline, not the keep-alive timeout.
            self.node.bound_first_request(id, now);
        }
        self.sockets[id] = Some(Socket {
            stream,
            writable: false,
            tls,
        });
        // Bytes, and even the peer's FIN, may already be waiting
        // (edge-triggered: no new edge for them).
        self.read_conn(id, true, now);
    }

    /// Reads while the core wants input. `to_end`: the peer has closed
    /// its side, so a short read is not the end of what there is to read.
    fn read_conn(&mut self, id: ConnId, to_end: bool, now: Instant) {
        while self.node.wants_read(id) {
            let Some(sock) = self.sockets.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            match sock.stream.read(&mut self.rbuf) {
                Ok(0) => {
                    self.node.handle_eof(id, now);
                    return;
                }
                Ok(n) if sock.tls.is_some() => {
                    let tls = sock.tls.as_mut().expect("checked");
                    if tls
                        .session
                        .handle_read_in_place(&mut self.rbuf[..n])
                        .is_err()
                    {
                        // The alert (if any) goes out once; this connection
                        // alone is closed (a plaintext request included).
                        let _ = send_records(&mut sock.stream, &mut tls.session);
                        self.node.handle_reset(id, now);
                        return;
                    }
                    self.plain.clear();
                    tls.session.take_plaintext(&mut self.plain);
                    if !self.plain.is_empty() {
                        self.node.handle_read(id, &mut self.plain, now);
                    }
                    // Handshake records go out now; what the core answers
                    // comes through the ready queue.
                    match send_records(&mut sock.stream, &mut tls.session) {
                        Err(_) => {
                            self.node.handle_reset(id, now);
                            return;
                        }
                        // The socket is full: serviced (and WRITABLE asked
                        // for) with the ready connections.
                        Ok(false) => self.tls_pending.push(id),
                        Ok(true) => {}
                    }
                    if n < self.rbuf.len() && !to_end {
                        return;
                    }
                }
                Ok(n) => {
                    // An echo goes out from the read buffer itself.
                    self.node
                        .handle_read_direct(id, &mut self.rbuf[..n], &mut sock.stream, now);
                    // epoll(7): with edge-triggered readiness on a stream
                    // socket, a read shorter than asked for means the
                    // receive queue is empty, and later data raises a new
                    // edge. Skipping the read that would only say
                    // WouldBlock saves a system call per event.
                    if n < self.rbuf.len() && !to_end {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.node.handle_reset(id, now);
                    return;
                }
            }
        }
    }

    /// Services the connections the core has something for, at most
    /// [`WRITES_PER_TURN`] of them; the rest wait for the next turn.
    fn service(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.tls_pending) {
            self.flush(id, now);
        }
        for _ in 0..WRITES_PER_TURN {
            let Some(id) = self.node.poll_ready() else {
                return;
            };
            self.flush(id, now);
        }
    }

    /// Writes what the core queued for `id`, then does what it says.
    fn flush(&mut self, id: ConnId, now: Instant) {
        let Some(sock) = self.sockets.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if let Some(tls) = sock.tls.as_mut() {
            // Records go from rustls straight to the socket; the core's
            // plaintext becomes records only while the socket takes them
            // all (see TLS_BATCH).
            let mut sent = send_records(&mut sock.stream, &mut tls.session);
            while let Ok(true) = sent {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = self.node.poll_transmit(id, &mut slices);
                if n == 0 {
                    break;
                }
                let mut taken = 0;
                let gather = &mut self.tls_gather;
                for s in &slices[..n] {
                    let take = s.len().min(TLS_BATCH - taken);
                    let part = &s[..take];
                    // Every record costs both ends a header, a tag and an
                    // AEAD pass, so slices that fit one record together
                    // (a response's head and body, pipelined answers, a
                    // frame header and a small payload) go out as one.
                    if gather.len() + part.len() > MAX_RECORD_PLAINTEXT {
                        tls.session.write_plaintext(gather);
                        gather.clear();
                    }
                    if part.len() < MAX_RECORD_PLAINTEXT {
                        gather.extend_from_slice(part);
                    } else {
                        tls.session.write_plaintext(part);
                    }
                    taken += take;
                    if taken == TLS_BATCH {
                        break;
                    }
                }
                tls.session.write_plaintext(gather);
                gather.clear();
                self.node.handle_sent(id, taken, now);
                sent = send_records(&mut sock.stream, &mut tls.session);
            }
            if sent.is_err() {
                self.node.handle_reset(id, now);
            }
        }
        loop {
            if sock.tls.is_some() {
                break;
            }
            // A few slices first (most queues are short), all of them
            // only when those are not enough.
            let mut few = [IoSlice::new(&[]); FEW_IOVECS];
            let mut many;
            let mut n = self.node.poll_transmit(id, &mut few);
            let slices: &[IoSlice] = if n < FEW_IOVECS {
                &few
            } else {
                many = [IoSlice::new(&[]); MAX_IOVECS];
                n = self.node.poll_transmit(id, &mut many);
                &many
            };
            if n == 0 {
                break;
            }
            match sock.stream.write_vectored(&slices[..n]) {
                Ok(0) => {
                    self.node.handle_reset(id, now);
                    break;
                }
                Ok(k) => self.node.handle_sent(id, k, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.node.handle_reset(id, now);
                    break;
                }
            }
        }
        match self.node.poll_status(id) {
            ConnStatus::Close => {
                if let Some(mut sock) = self.sockets.get_mut(id).and_then(Option::take) {
                    if let Some(tls) = sock.tls.as_mut() {
                        // RFC 8446 §6.1: close_notify before closing, best
                        // effort.
                        tls.session.close_notify();
                        let _ = send_records(&mut sock.stream, &mut tls.session);
                    }
                    let _ = self.poll.registry().deregister(&mut sock.stream);
                }
            }
            ConnStatus::Open {
                want_write,
                read_now,
            } => {
                let Some(sock) = self.sockets.get_mut(id).and_then(Option::as_mut) else {
                    return;
                };
                let want_write =
                    want_write || sock.tls.as_ref().is_some_and(|t| t.session.wants_write());
                if want_write != sock.writable {
                    let interest = if want_write {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    if self
                        .poll
                        .registry()
                        .reregister(&mut sock.stream, Token(id), interest)
                        .is_err()
                    {
                        self.node.handle_reset(id, now);
                    }
                    sock.writable = want_write;
                }
                if read_now {
                    // Reading had paused at a queue cap; bytes that came
                    // meanwhile raise no edge. Reading may queue more, and
                    // the connection comes back through the ready queue.
                    self.read_conn(id, false, now);
                }
            }
        }
    }

    /// Does what the engine asks for its socket (connect, close), then
    /// writes what it has queued.
    fn service_upstream(&mut self, now: Instant) {
        while let Some(action) = self.node.poll_upstream() {
            match action {
                UpstreamAction::Close { .. } => {
                    if let Some(mut up) = self.upstream.take() {
                        let _ = self.poll.registry().deregister(&mut up.stream);
                    }
                }
                UpstreamAction::Connect { addr, .. } => {
                    if let Some(mut up) = self.upstream.take() {
                        let _ = self.poll.registry().deregister(&mut up.stream);
                    }
                    match self.connect_upstream(&addr) {
                        Ok(up) => self.upstream = Some(up),
                        Err(e) => self.node.handle_upstream_error(UPSTREAM, e.kind(), now),
                    }
                }
            }
        }
        self.write_upstream(now);
    }

    /// Starts a non-blocking connect (the name is resolved here, blocking:
    /// use an address, not a name that needs DNS, for a reconnect that
    /// never stalls the loop).
    fn connect_upstream(&mut self, addr: &str) -> io::Result<Upstream> {
        use std::net::ToSocketAddrs;
        // `localhost` resolves to ::1 first on many systems, while Redis
        // listens on 127.0.0.1 by default: IPv4 first.
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let target = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let mut stream = TcpStream::connect(target)?;
        let _ = stream.set_nodelay(true);
        self.poll.registry().register(
            &mut stream,
            UPSTREAM_TOKEN,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(Upstream {
            stream,
            connected: false,
        })
    }

    fn write_upstream(&mut self, now: Instant) {
        loop {
            let Some(up) = self.upstream.as_mut().filter(|u| u.connected) else {
                return;
            };
            let Some(bytes) = self.node.upstream_transmit(UPSTREAM) else {
                return;
            };
            match up.stream.write(bytes) {
                Ok(0) => {
                    self.node
                        .handle_upstream_error(UPSTREAM, io::ErrorKind::WriteZero, now);
                    return;
                }
                Ok(n) => self.node.handle_upstream_sent(UPSTREAM, n, now),
                // The next WRITABLE edge brings us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.node.handle_upstream_error(UPSTREAM, e.kind(), now);
                    return;
                }
            }
        }
    }

    fn upstream_event(&mut self, event: &mio::event::Event, now: Instant) {
        let Some(up) = self.upstream.as_mut() else {
            return;
        };
        if !up.connected {
            // connect(2): the socket becomes writable when the connect
            // completed or failed; SO_ERROR (take_error) says which.
            if !(event.is_writable() || event.is_error() || event.is_write_closed()) {
                return;
            }
            match (up.stream.take_error(), up.stream.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    up.connected = true;
                    self.node.handle_upstream_connected(UPSTREAM, now);
                }
                (Ok(Some(e)) | Err(e), _) | (_, Err(e)) => {
                    if e.kind() == io::ErrorKind::NotConnected && !event.is_error() {
                        return; // still in progress: a spurious edge
                    }
                    self.node.handle_upstream_error(UPSTREAM, e.kind(), now);
                    return;
                }
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            loop {
                let Some(up) = self.upstream.as_mut() else {
                    return;
                };
                match up.stream.read(&mut self.rbuf) {
                    Ok(0) => {
                        self.node.handle_upstream_eof(UPSTREAM, now);
                        return;
                    }
                    Ok(n) => self
                        .node
                        .handle_upstream_read(UPSTREAM, &self.rbuf[..n], now),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.node.handle_upstream_error(UPSTREAM, e.kind(), now);
                        return;
                    }
                }
            }
        }
    }

    fn run_commands(&mut self, now: Instant) {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Publish {
                    topic,
                    event,
                    data,
                    reply,
                } => {
                    let result = self
                        .node
                        .handle_publish(&topic, event.as_deref(), &data, now);
                    let _ = reply.send(result);
                }
                Command::Shutdown => {
                    self.node.handle_shutdown(now);
                    if let Some(mut l) = self.listener.take() {
                        let _ = self.poll.registry().deregister(&mut l);
                    }
                }
            }
        }
    }
}

/// glibc returns the top of the heap to the kernel whenever 128 KiB of it
/// is free, so a server that queues and frees a 64 KiB burst per read pays
/// a `brk` call and fresh page faults for every burst (measured: one `brk`
/// per three echoed 16 KiB messages). Keeping up to 32 MiB of freed memory
/// for reuse removes that; memory is still bounded by `Config`.
fn keep_freed_memory() {
    // SAFETY: mallopt only sets a tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    }
}

/// Writes the session's records as far as the socket takes them (each
/// call one `write` of the session's buffer): `Ok(true)` when none are left,
/// `Ok(false)` when the rest waits for WRITABLE.
fn send_records(stream: &mut TcpStream, session: &mut TlsSession) -> io::Result<bool> {
    while session.wants_write() {
        match session.write_tls_to(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Pending connections the kernel may queue before `accept`. mio's 128
/// overflows when a crowd reconnects at once after a restart: the kernel
/// drops their SYNs and they retry a second later.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listening socket on `addr`, with `SO_REUSEADDR` (a
/// restart does not wait for TIME_WAIT) and, when asked, `SO_REUSEPORT`
/// (several processes share one port; the kernel spreads connections).
fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use std::os::fd::FromRawFd;
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket calls on a descriptor this function owns until
    // it is handed to `TcpListener`; every pointer passed is to a local of
    // the size given.
    unsafe {
        let fd = libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let close_err = |fd| {
            let e = io::Error::last_os_error();
            libc::close(fd);
            Err(e)
        };
        let one: libc::c_int = 1;
        let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let opt = &one as *const libc::c_int as *const libc::c_void;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, opt, size) != 0 {
            return close_err(fd);
        }
        if reuse_port && libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, opt, size) != 0
        {
            return close_err(fd);
        }
        let (storage, len) = sockaddr(addr);
        if libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) != 0 {
            return close_err(fd);
        }
        if libc::listen(fd, LISTEN_BACKLOG) != 0 {
            return close_err(fd);
        }
        Ok(TcpListener::from_raw_fd(fd))
    }
}

/// `addr` as a C socket address.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough for any sockaddr.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

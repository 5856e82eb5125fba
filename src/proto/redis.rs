//! The Redis client connection, sans-IO.
//!
//! Before working on this file, read [`crate::wire::resp`] and, in the
//! Redis documentation, "Redis serialization protocol specification"
//! (sections "Pipelining", "RESP3 and HELLO", "Pushes") and "Redis Pub/Sub"
//! (the subscribe/message reply shapes in RESP2 and RESP3).
//!
//! # Driving a connection
//!
//! The driver owns the socket and the clock. For one TCP connection:
//!
//! 1. [`RedisConn::new`] (once), then connect the socket to
//!    [`RedisConfig::addr`] ([`handle_connect_started`](RedisConn::handle_connect_started)
//!    arms the connect timeout); when it is connected, call
//!    [`handle_connected`](RedisConn::handle_connected); if the connect
//!    fails, [`handle_io_error`](RedisConn::handle_io_error).
//! 2. [`command`](RedisConn::command), [`subscribe`](RedisConn::subscribe)
//!    and [`unsubscribe`](RedisConn::unsubscribe) at any time; commands
//!    issued before the handshake is done wait for it.
//! 3. Whenever the socket is writable: [`poll_transmit`](RedisConn::poll_transmit),
//!    write, then [`consumed`](RedisConn::consumed) with how many bytes
//!    went out and `now`. A short write is normal.
//! 4. Whenever bytes are read: [`handle_read`](RedisConn::handle_read);
//!    on EOF [`handle_eof`](RedisConn::handle_eof), on a socket error
//!    [`handle_io_error`](RedisConn::handle_io_error).
//! 5. After each of these: drain [`poll_event`](RedisConn::poll_event), and
//!    sleep no later than [`poll_timeout`](RedisConn::poll_timeout); when it
//!    comes, [`handle_timeout`](RedisConn::handle_timeout).
//! 6. After [`RedisEvent::Failed`], close the socket, wait
//!    [`Backoff::next_delay`], call [`reset`](RedisConn::reset) and start
//!    again at 1. Subscriptions are restored by the connection itself;
//!    commands that had no reply are lost (they may or may not have run).
//!
//! # Decisions
//!
//! - Replies are matched to requests by order (RESP has no request ids):
//!   Redis answers every command of one connection in the order sent, so
//!   the n-th reply that is not a push belongs to the n-th command.
//! - `HELLO 3` is sent first (with `AUTH` inside it when a password is
//!   configured); a server that does not know HELLO or RESP3 answers with
//!   an error, and the connection falls back to RESP2 with a separate
//!   `AUTH`. Then `SELECT` when the database is not 0. User commands are
//!   held until all of that succeeded, so none runs unauthenticated or in
//!   the wrong database.
//! - Pub/sub: in RESP3 confirmations and messages are pushes (`>`), so
//!   commands and subscriptions share one connection. In RESP2 they are
//!   arrays, told apart from replies only by context (confirmations come
//!   where SUBSCRIBE's reply would; `message` arrays only while
//!   subscribed); use a connection of its own for subscriptions there, as
//!   Redis only allows pub/sub commands and PING on a subscribed RESP2
//!   connection. Either way a SUBSCRIBE counts as pending until each of its
//!   channels is confirmed, so an error in its place is
//!   [`RedisError::SubscribeRefused`], never taken for the next reply, and
//!   a confirmation that never comes times out like a reply.
//! - A reply's timer starts when the request's last byte was handed to the
//!   socket ([`consumed`](RedisConn::consumed)), not when it was queued: a
//!   slow link to Redis is measured, our own queue is not.
//!
//! # Not supported
//!
//! - `CLIENT REPLY OFF|SKIP` and `MONITOR`: they break the one reply per
//!   command that matching relies on.
//! - Blocking commands (`BLPOP`, `XREAD BLOCK`) on a shared connection:
//!   every reply behind them waits, and past `reply_timeout` the
//!   connection fails.
//! - `PSUBSCRIBE` and `SSUBSCRIBE` are not offered (a `pmessage` is
//!   understood). Cluster redirections (`MOVED`, `ASK`) come back as error
//!   replies; Sentinel and `rediss://` (TLS) are not spoken.
//! - A reply that arrives in many reads is scanned again from its start on
//!   each read (without copying: [`crate::wire::resp::scan`]): the cost
//!   per read is its number of elements so far; a long bulk string is
//!   skipped by its length. A resumable parser would make it constant.

pub mod broker;
pub mod follow;
pub mod relay;

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::wire::resp::{command_len, encode_command, parse, scan, RespError, RespLimits, Value};

/// Unparsed input above which a reply is scanned for completeness before
/// it is parsed: below it, building a reply that turns out incomplete
/// costs less than walking it twice.
const SCAN_FIRST: usize = 16 * 1024;

/// Every limit of one connection.
#[derive(Debug, Clone, Copy)]
pub struct RedisLimits {
    /// How long a sent request may wait for its reply. Past it the
    /// connection fails with [`RedisError::Timeout`]: a server that stopped
    /// answering one request will not answer the ones behind it.
    pub reply_timeout: Duration,
    /// How long a connect may take ([`RedisConn::handle_connect_started`]
    /// to [`RedisConn::handle_connected`]). Past it the connection fails
    /// with [`RedisError::ConnectTimeout`].
    pub connect_timeout: Duration,
    /// Most requests sent or held without a reply yet. At it,
    /// [`RedisConn::command`] refuses with [`RedisError::TooManyPending`].
    pub max_pending: usize,
    /// Most bytes of commands queued and not yet written. At it,
    /// [`RedisConn::command`] refuses with [`RedisError::OutputFull`].
    pub max_output_bytes: usize,
    /// Most bytes read and not yet parsed (one incomplete reply). Over it
    /// the connection fails with [`RedisError::ReplyTooLarge`].
    pub max_input_bytes: usize,
    /// Most events waiting for [`RedisConn::poll_event`]. Over it the
    /// connection fails with [`RedisError::EventsNotPolled`]: a driver
    /// that never polls would otherwise buffer every pub/sub message.
    pub max_events: usize,
    /// Most channels subscribed at once. Over it
    /// [`RedisConn::subscribe`] refuses with [`RedisError::TooManyChannels`].
    pub max_channels: usize,
    /// Limits on each reply's values.
    pub resp: RespLimits,
}

impl Default for RedisLimits {
    fn default() -> Self {
        RedisLimits {
            reply_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_pending: 10_000,
            max_output_bytes: 64 * 1024 * 1024,
            max_input_bytes: 64 * 1024 * 1024 + 1024,
            max_events: 65_536,
            max_channels: 65_536,
            resp: RespLimits::default(),
        }
    }
}

/// Where and how to connect: read from `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
#[derive(Clone)]
pub struct RedisConfig {
    /// A name or an address; IPv6 without its brackets.
    pub host: String,
    pub port: u16,
    /// The database `SELECT`ed after connecting (0: none sent).
    pub db: u32,
    /// For `AUTH`; `None` with a password is the user `default`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Try `HELLO 3` first (on by default). Off: RESP2 from the start.
    pub resp3: bool,
    pub limits: RedisLimits,
}

/// The password is never printed: a config ends up in logs and panics.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("resp3", &self.resp3)
            .field("limits", &self.limits)
            .finish()
    }
}

impl RedisConfig {
    /// Reads a `redis://` URL. Percent-escapes in the user and password
    /// are decoded (RFC 3986 §2.1), so a password may hold `@` or `:`.
    pub fn from_url(url: &str) -> Result<RedisConfig, RedisError> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or(RedisError::InvalidUrl("not a redis:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.find(':') {
                    Some(i) => (&info[..i], Some(&info[i + 1..])),
                    None => (info, None),
                };
                let user = percent_decode(user)?;
                let pass = pass.map(percent_decode).transpose()?;
                // `redis://secret@host` is how many tools write a bare
                // password: a user without a password is a password.
                match pass {
                    None => (None, Some(user)),
                    Some(p) => ((!user.is_empty()).then_some(user), Some(p)),
                }
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or(RedisError::InvalidUrl("unclosed '['"))?;
            let port = &v6[end + 1..];
            let port = match port.strip_prefix(':') {
                Some(p) => Some(p),
                None if port.is_empty() => None,
                None => return Err(RedisError::InvalidUrl("junk after ']'")),
            };
            (&v6[..end], port)
        } else {
            match hostport.rfind(':') {
                Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(RedisError::InvalidUrl("no host"));
        }
        let port = match port {
            None => 6379,
            Some(p) => decimal(p)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or(RedisError::InvalidUrl("port is not 1..=65535"))?,
        };
        let db = match path {
            "" => 0,
            p => decimal(p)
                .and_then(|d| u32::try_from(d).ok())
                .ok_or(RedisError::InvalidUrl("database is not a number"))?,
        };
        Ok(RedisConfig {
            host: host.to_string(),
            port,
            db,
            username,
            password,
            resp3: true,
            limits: RedisLimits::default(),
        })
    }

    /// `HOST:PORT`, as `std::net::ToSocketAddrs` reads it.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn percent_decode(s: &str) -> Result<String, RedisError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(RedisError::InvalidUrl("bad percent-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| RedisError::InvalidUrl("userinfo is not UTF-8"))
}

/// Names a request; its reply comes back as [`RedisEvent::Reply`] with the
/// same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Which protocol the handshake settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

/// What the connection tells its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisEvent {
    /// The handshake is done: held commands are on their way and
    /// subscriptions are being restored. The driver resets its backoff.
    Ready,
    /// The reply to a [`RedisConn::command`]. An error reply (`-ERR …`) is
    /// a reply too: the connection is fine, the command was refused.
    Reply { id: RequestId, value: Value },
    /// A message published to a subscribed channel (RESP2 `message` array
    /// or RESP3 push).
    Message { channel: Vec<u8>, payload: Vec<u8> },
    /// Redis confirmed a subscription; `count` is how many it now holds.
    Subscribed { channel: Vec<u8>, count: i64 },
    /// Redis confirmed an unsubscription.
    Unsubscribed { channel: Vec<u8>, count: i64 },
    /// A RESP3 push of a kind we do not use (client tracking's
    /// `invalidate`, …), kept for the layer above to judge.
    Push(Vec<Value>),
    /// The connection is unusable; close the socket and reconnect after a
    /// backoff. Requests without a reply are lost.
    Failed(RedisError),
}

/// Why the connection or a call failed. [`RedisError::status`] is what an
/// HTTP request that needed Redis is answered with.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RedisError {
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(&'static str),
    #[error("Redis sent something that is not RESP: {0}")]
    Protocol(#[from] RespError),
    /// A reply arrived with no request waiting for it.
    #[error("reply without a request")]
    UnexpectedReply,
    /// A pub/sub array or push without the shape Redis documents.
    #[error("malformed pub/sub message")]
    MalformedPubSub,
    #[error("reply larger than the input limit")]
    ReplyTooLarge,
    #[error("no reply within the timeout")]
    Timeout,
    #[error("connect did not complete within the timeout")]
    ConnectTimeout,
    #[error("connection closed by Redis")]
    ConnectionClosed,
    /// The socket failed; the kind is what the OS said (`ConnectionReset`).
    #[error("socket error: {0:?}")]
    Io(std::io::ErrorKind),
    /// `HELLO`, `AUTH` or `SELECT` was refused; the text is Redis's.
    #[error("Redis refused the handshake: {0}")]
    HandshakeRefused(String),
    /// SUBSCRIBE or UNSUBSCRIBE was answered by an error; the text is
    /// Redis's.
    #[error("Redis refused the subscription: {0}")]
    SubscribeRefused(String),
    #[error("too many requests without a reply")]
    TooManyPending,
    #[error("too many bytes of commands not yet written")]
    OutputFull,
    #[error("too many channels subscribed")]
    TooManyChannels,
    #[error("events not polled")]
    EventsNotPolled,
    /// The connection failed and has not been [`reset`](RedisConn::reset).
    #[error("connection failed; reset it")]
    NotConnected,
}

impl RedisError {
    /// 502 when Redis broke the protocol, 504 when it did not answer in
    /// time, 503 when it is unreachable or we are over a limit (try
    /// again later), 500 for our own configuration.
    pub fn status(&self) -> u16 {
        match self {
            RedisError::InvalidUrl(_) => 500,
            RedisError::Protocol(_)
            | RedisError::UnexpectedReply
            | RedisError::MalformedPubSub
            | RedisError::ReplyTooLarge => 502,
            RedisError::Timeout | RedisError::ConnectTimeout => 504,
            _ => 503,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No socket yet, or [`RedisConn::reset`] since the last one.
    Idle,
    /// A connect is in progress (until the deadline).
    Connecting(Instant),
    Handshake,
    Ready,
    Failed,
}

/// What the next reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Hello,
    Auth,
    Select,
    User(RequestId),
    /// This many `subscribe`/`unsubscribe` confirmations, one per channel
    /// named, in order.
    Confirmations(usize),
}

#[derive(Debug)]
struct Pending {
    expect: Expect,
    /// Total bytes queued once this request's last byte was.
    end: u64,
    deadline: Option<Instant>,
}

/// A sans-IO Redis client connection (see the module comment for how to
/// drive it).
pub struct RedisConn {
    config: RedisConfig,
    state: State,
    protocol: Protocol,
    next_id: u64,
    out: Vec<u8>,
    /// Bytes of `out` already written.
    out_head: usize,
    queued_total: u64,
    written_total: u64,
    pending: VecDeque<Pending>,
    /// How many entries at the front of `pending` have their deadline set.
    stamped: usize,
    /// Handshake replies still awaited.
    handshake_left: usize,
    /// User commands issued before the handshake finished.
    held_out: Vec<u8>,
    held: VecDeque<(RequestId, usize)>,
    input: Vec<u8>,
    events: VecDeque<RedisEvent>,
    /// Channels the user wants; restored after every reconnect.
    wanted: BTreeSet<Vec<u8>>,
    /// Channels Redis confirmed on this socket.
    confirmed: BTreeSet<Vec<u8>>,
}

/// Sizes, not bytes: the output holds the password while HELLO or AUTH
/// is queued.
impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("protocol", &self.protocol)
            .field("pending", &self.pending_len())
            .field(
                "unwritten",
                &(self.out.len() - self.out_head + self.held_out.len()),
            )
            .field("input", &self.input.len())
            .field("events", &self.events.len())
            .field("channels", &self.wanted.len())
            .finish()
    }
}

impl RedisConn {
    pub fn new(config: RedisConfig) -> RedisConn {
        RedisConn {
            protocol: if config.resp3 {
                Protocol::Resp3
            } else {
                Protocol::Resp2
            },
            config,
            state: State::Idle,
            next_id: 0,
            out: Vec::new(),
            out_head: 0,
            queued_total: 0,
            written_total: 0,
            pending: VecDeque::new(),
            stamped: 0,
            handshake_left: 0,
            held_out: Vec::new(),
            held: VecDeque::new(),
            input: Vec::new(),
            events: VecDeque::new(),
            wanted: BTreeSet::new(),
            confirmed: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// The protocol in use, once the handshake chose it.
    pub fn protocol(&self) -> Option<Protocol> {
        matches!(self.state, State::Ready).then_some(self.protocol)
    }

    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Requests sent or held that have no reply yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.held.len()
    }

    /// The channels subscribed to (or to be, once connected).
    pub fn channels(&self) -> impl Iterator<Item = &[u8]> {
        self.wanted.iter().map(Vec::as_slice)
    }

    /// A non-blocking connect was started at `now`: if it has not
    /// completed by [`RedisLimits::connect_timeout`], the connection fails
    /// with [`RedisError::ConnectTimeout`]. (A driver that connects
    /// blocking skips this.)
    pub fn handle_connect_started(&mut self, now: Instant) {
        if self.state == State::Idle {
            self.state = State::Connecting(now + self.config.limits.connect_timeout);
        }
    }

    /// The socket is connected: queue the handshake.
    pub fn handle_connected(&mut self, now: Instant) {
        let _ = now;
        if !matches!(self.state, State::Idle | State::Connecting(_)) {
            return;
        }
        self.state = State::Handshake;
        self.protocol = Protocol::Resp2;
        if self.config.resp3 {
            let user = self.config.username.clone();
            let user = user.as_deref().unwrap_or("default");
            match self.config.password.clone() {
                Some(pass) => self.send_internal(
                    &[b"HELLO", b"3", b"AUTH", user.as_bytes(), pass.as_bytes()],
                    Expect::Hello,
                ),
                None => self.send_internal(&[b"HELLO", b"3"], Expect::Hello),
            }
        } else {
            self.queue_resp2_handshake();
        }
        self.maybe_ready();
    }

    /// Queues a command; its reply comes back as [`RedisEvent::Reply`]
    /// with the returned id. Commands are pipelined: there is no need to
    /// wait for a reply before sending the next.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<RequestId, RedisError> {
        if self.state == State::Failed {
            return Err(RedisError::NotConnected);
        }
        if self.pending_len() >= self.config.limits.max_pending {
            return Err(RedisError::TooManyPending);
        }
        let len = command_len(args);
        let unwritten = self.out.len() - self.out_head + self.held_out.len();
        if unwritten + len > self.config.limits.max_output_bytes {
            return Err(RedisError::OutputFull);
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        if self.state == State::Ready {
            self.send(args, Expect::User(id));
        } else {
            encode_command(&mut self.held_out, args);
            self.held.push_back((id, len));
        }
        Ok(id)
    }

    /// Subscribes to `channels` (those not already subscribed), now if
    /// ready, else as soon as the handshake is done; and again after every
    /// reconnect. Confirmations come as [`RedisEvent::Subscribed`].
    pub fn subscribe(&mut self, channels: &[&[u8]]) -> Result<(), RedisError> {
        if self.state == State::Failed {
            return Err(RedisError::NotConnected);
        }
        let new: Vec<&[u8]> = dedup(channels)
            .into_iter()
            .filter(|c| !self.wanted.contains(*c))
            .collect();
        if self.wanted.len() + new.len() > self.config.limits.max_channels {
            return Err(RedisError::TooManyChannels);
        }
        if new.is_empty() {
            return Ok(());
        }
        self.wanted.extend(new.iter().map(|c| c.to_vec()));
        if self.state == State::Ready {
            self.send_pubsub(b"SUBSCRIBE", &new);
        }
        Ok(())
    }

    /// Unsubscribes from those of `channels` that are subscribed.
    pub fn unsubscribe(&mut self, channels: &[&[u8]]) -> Result<(), RedisError> {
        if self.state == State::Failed {
            return Err(RedisError::NotConnected);
        }
        let gone: Vec<&[u8]> = dedup(channels)
            .into_iter()
            .filter(|c| self.wanted.contains(*c))
            .collect();
        for c in &gone {
            self.wanted.remove(*c);
        }
        if self.state == State::Ready && !gone.is_empty() {
            self.send_pubsub(b"UNSUBSCRIBE", &gone);
        }
        Ok(())
    }

    /// Bytes to write, if any. Write as many as the socket takes and report
    /// them with [`consumed`](Self::consumed).
    pub fn poll_transmit(&self) -> Option<&[u8]> {
        let rest = &self.out[self.out_head..];
        (!rest.is_empty() && self.state != State::Failed).then_some(rest)
    }

    /// `n` bytes of [`poll_transmit`](Self::poll_transmit) were written at
    /// `now`; every request now wholly written starts its reply timer.
    pub fn consumed(&mut self, n: usize, now: Instant) {
        let n = n.min(self.out.len() - self.out_head);
        self.out_head += n;
        self.written_total += n as u64;
        if self.out_head == self.out.len() {
            self.out.clear();
            self.out_head = 0;
        } else if self.out_head > 64 * 1024 && self.out_head * 2 > self.out.len() {
            self.out.drain(..self.out_head);
            self.out_head = 0;
        }
        let deadline = now + self.config.limits.reply_timeout;
        while let Some(p) = self.pending.get_mut(self.stamped) {
            if p.end > self.written_total {
                break;
            }
            p.deadline = Some(deadline);
            self.stamped += 1;
        }
    }

    /// Bytes read from the socket. Replies, messages and the handshake's
    /// progress come out as events. An error fails the connection; it is
    /// also queued as [`RedisEvent::Failed`], so a driver may rely on
    /// events alone.
    pub fn handle_read(&mut self, bytes: &[u8], now: Instant) -> Result<(), RedisError> {
        let _ = now;
        match self.state {
            State::Failed => return Err(RedisError::NotConnected),
            // Redis never speaks first; bytes before our first command are
            // not a reply to anything.
            State::Idle | State::Connecting(_) => return self.fail(RedisError::UnexpectedReply),
            _ => {}
        }
        self.input.extend_from_slice(bytes);
        let mut at = 0;
        let result = loop {
            let rest = &self.input[at..];
            // A large reply arrives in many reads; checking that it is whole
            // first (no copies) keeps each read from building it again.
            if rest.len() > SCAN_FIRST {
                match scan(rest, &self.config.limits.resp) {
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(RedisError::Protocol(e)),
                    Ok(Some(_)) => {}
                }
            }
            match parse(rest, &self.config.limits.resp) {
                Ok(Some((value, n))) => {
                    at += n;
                    if let Err(e) = self.handle_value(value) {
                        break Err(e);
                    }
                    if self.events.len() > self.config.limits.max_events {
                        break Err(RedisError::EventsNotPolled);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(RedisError::Protocol(e)),
            }
        };
        self.input.drain(..at);
        match result {
            Err(e) => self.fail(e),
            Ok(()) if self.input.len() > self.config.limits.max_input_bytes => {
                self.fail(RedisError::ReplyTooLarge)
            }
            Ok(()) => Ok(()),
        }
    }

    /// The peer closed the connection (a read returned 0 bytes).
    pub fn handle_eof(&mut self) {
        if matches!(
            self.state,
            State::Connecting(_) | State::Handshake | State::Ready
        ) {
            let _ = self.fail(RedisError::ConnectionClosed);
        }
    }

    /// Connecting, reading or writing failed (a reset, a refused
    /// connection, …): like [`handle_eof`](Self::handle_eof), but the
    /// reason says what happened.
    pub fn handle_io_error(&mut self, kind: std::io::ErrorKind) {
        if matches!(
            self.state,
            State::Idle | State::Connecting(_) | State::Handshake | State::Ready
        ) {
            let _ = self.fail(RedisError::Io(kind));
        }
    }

    /// When the connect or the oldest written request times out, if one
    /// is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Connecting(deadline) => Some(deadline),
            State::Handshake | State::Ready => self.pending.front().and_then(|p| p.deadline),
            _ => None,
        }
    }

    /// The time from [`poll_timeout`](Self::poll_timeout) has come (early
    /// or spurious calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|d| d <= now) {
            let e = match self.state {
                State::Connecting(_) => RedisError::ConnectTimeout,
                _ => RedisError::Timeout,
            };
            let _ = self.fail(e);
        }
    }

    pub fn poll_event(&mut self) -> Option<RedisEvent> {
        self.events.pop_front()
    }

    /// Forgets the last socket, ready for a new one: every buffer and
    /// request is dropped; subscriptions are kept, to be restored.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.out.clear();
        self.out_head = 0;
        self.queued_total = 0;
        self.written_total = 0;
        self.pending.clear();
        self.stamped = 0;
        self.handshake_left = 0;
        self.held_out.clear();
        self.held.clear();
        self.input.clear();
        self.confirmed.clear();
    }

    fn fail(&mut self, e: RedisError) -> Result<(), RedisError> {
        self.state = State::Failed;
        self.events.push_back(RedisEvent::Failed(e.clone()));
        Err(e)
    }

    fn send(&mut self, args: &[&[u8]], expect: Expect) {
        encode_command(&mut self.out, args);
        self.queued_total += command_len(args) as u64;
        self.pending.push_back(Pending {
            expect,
            end: self.queued_total,
            deadline: None,
        });
    }

    fn send_internal(&mut self, args: &[&[u8]], expect: Expect) {
        self.handshake_left += 1;
        self.send(args, expect);
    }

    fn send_pubsub(&mut self, verb: &[u8], channels: &[&[u8]]) {
        let mut args = Vec::with_capacity(channels.len() + 1);
        args.push(verb);
        args.extend_from_slice(channels);
        // One confirmation per channel, in the reply stream where the
        // command's reply would be: an array in RESP2, a push in RESP3
        // (Redis writes it while executing the command, so it is in order
        // with the replies around it).
        self.send(&args, Expect::Confirmations(channels.len()));
    }

    fn queue_resp2_handshake(&mut self) {
        if let Some(pass) = self.config.password.clone() {
            match self.config.username.clone() {
                Some(user) => {
                    self.send_internal(&[b"AUTH", user.as_bytes(), pass.as_bytes()], Expect::Auth)
                }
                None => self.send_internal(&[b"AUTH", pass.as_bytes()], Expect::Auth),
            }
        }
        self.queue_select();
    }

    fn queue_select(&mut self) {
        if self.config.db != 0 {
            let db = self.config.db.to_string();
            self.send_internal(&[b"SELECT", db.as_bytes()], Expect::Select);
        }
    }

    fn maybe_ready(&mut self) {
        if self.state != State::Handshake || self.handshake_left > 0 {
            return;
        }
        self.state = State::Ready;
        self.events.push_back(RedisEvent::Ready);
        let wanted: Vec<Vec<u8>> = self.wanted.iter().cloned().collect();
        if !wanted.is_empty() {
            let refs: Vec<&[u8]> = wanted.iter().map(Vec::as_slice).collect();
            self.send_pubsub(b"SUBSCRIBE", &refs);
        }
        let held_out = std::mem::take(&mut self.held_out);
        self.out.extend_from_slice(&held_out);
        while let Some((id, len)) = self.held.pop_front() {
            self.queued_total += len as u64;
            self.pending.push_back(Pending {
                expect: Expect::User(id),
                end: self.queued_total,
                deadline: None,
            });
        }
    }

    fn pop_pending(&mut self) -> Option<Expect> {
        let p = self.pending.pop_front()?;
        self.stamped = self.stamped.saturating_sub(1);
        Some(p.expect)
    }

    fn handle_value(&mut self, value: Value) -> Result<(), RedisError> {
        // RESP3 attributes annotate the value after them; a push keeps
        // being a push with them (its metadata is not ours to use).
        let value = match value {
            Value::Attributed { value, .. } if matches!(*value, Value::Push(_)) => *value,
            other => other,
        };
        let confirming = matches!(
            self.pending.front().map(|p| p.expect),
            Some(Expect::Confirmations(_))
        );
        let kind = pubsub_kind(&value);
        let pubsub = match &value {
            Value::Push(_) => true,
            // RESP2: only context tells a pub/sub array from a reply.
            Value::Array(_) => {
                self.protocol == Protocol::Resp2
                    && kind.is_some()
                    && (confirming || !self.confirmed.is_empty())
            }
            _ => false,
        };
        if pubsub {
            let (Value::Push(items) | Value::Array(items)) = value else {
                return Err(RedisError::MalformedPubSub);
            };
            self.handle_pubsub(items)?;
            if confirming && matches!(kind, Some(b"subscribe" | b"unsubscribe")) {
                if let Some(p) = self.pending.front_mut() {
                    if let Expect::Confirmations(n) = &mut p.expect {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.pop_pending();
                        }
                    }
                }
            }
            return Ok(());
        }
        match self.pop_pending() {
            None => Err(RedisError::UnexpectedReply),
            // Where its confirmations belong came a reply: SUBSCRIBE itself
            // was refused (an ACL, …).
            Some(Expect::Confirmations(_)) => {
                Err(RedisError::SubscribeRefused(error_string(&value)))
            }
            Some(Expect::User(id)) => {
                self.events.push_back(RedisEvent::Reply { id, value });
                Ok(())
            }
            Some(step) => self.handle_handshake(step, value),
        }
    }

    fn handle_handshake(&mut self, step: Expect, value: Value) -> Result<(), RedisError> {
        self.handshake_left = self.handshake_left.saturating_sub(1);
        match (step, value.error_text()) {
            (Expect::Hello, Some(text)) => {
                // A server before Redis 6 does not know HELLO ("ERR unknown
                // command"); one that knows it but not RESP3 says NOPROTO.
                // Either way, RESP2 it is; anything else (WRONGPASS) is a
                // refusal.
                let lower = text.to_ascii_lowercase();
                if lower.starts_with(b"noproto") || contains(&lower, b"unknown command") {
                    self.protocol = Protocol::Resp2;
                    self.queue_resp2_handshake();
                } else {
                    return Err(RedisError::HandshakeRefused(error_string(&value)));
                }
            }
            (Expect::Hello, None) => {
                self.protocol = Protocol::Resp3;
                self.queue_select();
            }
            (_, Some(_)) => return Err(RedisError::HandshakeRefused(error_string(&value))),
            (_, None) => {}
        }
        self.maybe_ready();
        Ok(())
    }

    fn handle_pubsub(&mut self, items: Vec<Value>) -> Result<(), RedisError> {
        let mut it = items.into_iter();
        let kind = it
            .next()
            .and_then(bytes_of)
            .ok_or(RedisError::MalformedPubSub)?;
        let rest: Vec<Value> = it.collect();
        let event = match (kind.as_slice(), rest.as_slice()) {
            (b"message", [channel, payload]) | (b"pmessage", [_, channel, payload]) => {
                RedisEvent::Message {
                    channel: channel
                        .as_bytes()
                        .ok_or(RedisError::MalformedPubSub)?
                        .to_vec(),
                    payload: payload
                        .as_bytes()
                        .ok_or(RedisError::MalformedPubSub)?
                        .to_vec(),
                }
            }
            (b"subscribe", [channel, count]) => {
                let channel = channel
                    .as_bytes()
                    .ok_or(RedisError::MalformedPubSub)?
                    .to_vec();
                let count = count.as_int().ok_or(RedisError::MalformedPubSub)?;
                self.confirmed.insert(channel.clone());
                RedisEvent::Subscribed { channel, count }
            }
            (b"unsubscribe", [channel, count]) => {
                // No channel (null) when nothing was subscribed.
                let channel = channel.as_bytes().unwrap_or_default().to_vec();
                let count = count.as_int().ok_or(RedisError::MalformedPubSub)?;
                self.confirmed.remove(&channel);
                RedisEvent::Unsubscribed { channel, count }
            }
            (b"message" | b"pmessage" | b"subscribe" | b"unsubscribe", _) => {
                return Err(RedisError::MalformedPubSub)
            }
            _ => {
                let mut all = vec![Value::Bulk(kind)];
                all.extend(rest);
                RedisEvent::Push(all)
            }
        };
        self.events.push_back(event);
        Ok(())
    }
}

fn dedup<'a>(channels: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut seen = BTreeSet::new();
    channels
        .iter()
        .copied()
        .filter(|c| seen.insert(*c))
        .collect()
}

fn bytes_of(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::Bulk(b) | Value::Simple(b) => Some(b),
        Value::Verbatim { text, .. } => Some(text),
        _ => None,
    }
}

/// The pub/sub kind of a RESP2 array (`message`, `subscribe`, …), if it
/// has that shape.
fn pubsub_kind(v: &Value) -> Option<&'static [u8]> {
    let first = v.as_items()?.first()?.as_bytes()?;
    [
        &b"message"[..],
        b"pmessage",
        b"subscribe",
        b"unsubscribe",
        b"psubscribe",
        b"punsubscribe",
    ]
    .into_iter()
    .find(|k| *k == first)
}

fn error_string(v: &Value) -> String {
    String::from_utf8_lossy(v.error_text().unwrap_or(b"unexpected reply")).into_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reconnect delays: exponential from `initial` to `max`, each one "equal
/// jitter" (half the step plus a random part of the other half), so a
/// fleet of nodes that lost Redis together does not reconnect together.
/// The randomness is a seeded generator, not the clock: deterministic in
/// tests, different per node when seeded per node.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    state: u64,
}

impl Backoff {
    /// `seed` picks the jitter sequence (0 is replaced by a fixed value:
    /// the generator needs a nonzero state).
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The wait before the next connection attempt; each call is one
    /// attempt more.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 {
            0
        } else {
            self.random() % (nanos + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// A connection succeeded: the next failure starts from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts since the last [`reset`](Self::reset).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// xorshift64*: plenty for spreading reconnects.
    fn random(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> RedisConfig {
        RedisConfig::from_url(url).unwrap()
    }

    fn cmd(args: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_command(&mut out, args);
        out
    }

    /// Takes everything queued for the wire, as a socket that takes all.
    fn take(conn: &mut RedisConn, now: Instant) -> Vec<u8> {
        let out = conn.poll_transmit().map(<[u8]>::to_vec).unwrap_or_default();
        conn.consumed(out.len(), now);
        out
    }

    fn events(conn: &mut RedisConn) -> Vec<RedisEvent> {
        std::iter::from_fn(|| conn.poll_event()).collect()
    }

    const HELLO_REPLY: &[u8] = b"%1\r\n$5\r\nproto\r\n:3\r\n";

    #[test]
    fn urls() {
        let c = config("redis://127.0.0.1:6380/2");
        assert_eq!((c.host.as_str(), c.port, c.db), ("127.0.0.1", 6380, 2));
        assert_eq!(c.addr(), "127.0.0.1:6380");
        assert_eq!((c.username, c.password), (None, None));
        let c = config("redis://localhost");
        assert_eq!((c.host.as_str(), c.port, c.db), ("localhost", 6379, 0));
        let c = config("redis://alice:p%40ss:w@[::1]:7000/15");
        assert_eq!((c.host.as_str(), c.port, c.db), ("::1", 7000, 15));
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("p@ss:w"));
        assert_eq!(c.addr(), "[::1]:7000");
        let mut conn = RedisConn::new(c);
        conn.handle_connected(Instant::now());
        let shown = format!("{conn:?}");
        assert!(
            !shown.contains("p@ss") && shown.contains("<redacted>"),
            "{shown}"
        );
        let c = config("redis://:secret@h");
        assert_eq!((c.username, c.password.as_deref()), (None, Some("secret")));
        let c = config("redis://secret@h");
        assert_eq!((c.username, c.password.as_deref()), (None, Some("secret")));
        for bad in [
            "http://h",
            "redis://",
            "redis://h:0",
            "redis://h:65536",
            "redis://h:x",
            "redis://h/x",
            "redis://[::1",
            "redis://a:%zz@h",
        ] {
            assert!(
                matches!(RedisConfig::from_url(bad), Err(RedisError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn handshake_hello_auth_select_then_held_commands() {
        let now = Instant::now();
        let mut c = RedisConn::new(config("redis://bob:pw@h/3"));
        let early = c.command(&[b"PING"]).unwrap();
        assert_eq!(c.poll_transmit(), None);
        c.handle_connected(now);
        assert_eq!(
            take(&mut c, now),
            cmd(&[b"HELLO", b"3", b"AUTH", b"bob", b"pw"])
        );
        c.handle_read(HELLO_REPLY, now).unwrap();
        assert_eq!(take(&mut c, now), cmd(&[b"SELECT", b"3"]));
        assert!(events(&mut c).is_empty());
        c.handle_read(b"+OK\r\n", now).unwrap();
        assert_eq!(events(&mut c), vec![RedisEvent::Ready]);
        assert_eq!(c.protocol(), Some(Protocol::Resp3));
        assert_eq!(take(&mut c, now), cmd(&[b"PING"]));
        c.handle_read(b"+PONG\r\n", now).unwrap();
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Reply {
                id: early,
                value: Value::Simple(b"PONG".to_vec())
            }]
        );
    }

    #[test]
    fn hello_unknown_falls_back_to_resp2_auth() {
        let now = Instant::now();
        let mut c = RedisConn::new(config("redis://:pw@h"));
        c.handle_connected(now);
        assert_eq!(
            take(&mut c, now),
            cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"pw"])
        );
        c.handle_read(b"-ERR unknown command 'HELLO'\r\n", now)
            .unwrap();
        assert_eq!(take(&mut c, now), cmd(&[b"AUTH", b"pw"]));
        c.handle_read(b"+OK\r\n", now).unwrap();
        assert_eq!(events(&mut c), vec![RedisEvent::Ready]);
        assert_eq!(c.protocol(), Some(Protocol::Resp2));
    }

    #[test]
    fn wrong_password_is_a_refused_handshake() {
        let now = Instant::now();
        let mut c = RedisConn::new(config("redis://:bad@h"));
        c.handle_connected(now);
        take(&mut c, now);
        let e = c
            .handle_read(b"-WRONGPASS invalid username-password pair\r\n", now)
            .unwrap_err();
        assert!(matches!(e, RedisError::HandshakeRefused(ref t) if t.starts_with("WRONGPASS")));
        assert_eq!(e.status(), 503);
        assert_eq!(events(&mut c), vec![RedisEvent::Failed(e)]);
        assert_eq!(c.command(&[b"PING"]), Err(RedisError::NotConnected));
    }

    #[test]
    fn resp2_without_auth_is_ready_at_once() {
        let now = Instant::now();
        let mut cfg = config("redis://h");
        cfg.resp3 = false;
        let mut c = RedisConn::new(cfg);
        c.handle_connected(now);
        assert_eq!(events(&mut c), vec![RedisEvent::Ready]);
        assert_eq!(c.poll_transmit(), None);
    }

    fn ready(resp3: bool) -> RedisConn {
        let now = Instant::now();
        let mut cfg = config("redis://h");
        cfg.resp3 = resp3;
        let mut c = RedisConn::new(cfg);
        c.handle_connected(now);
        if resp3 {
            take(&mut c, now);
            c.handle_read(HELLO_REPLY, now).unwrap();
        }
        assert_eq!(events(&mut c), vec![RedisEvent::Ready]);
        c
    }

    #[test]
    fn pipelined_replies_match_in_order_even_split_byte_by_byte() {
        let now = Instant::now();
        let mut c = ready(true);
        let a = c.command(&[b"GET", b"a"]).unwrap();
        let b = c.command(&[b"INCR", b"b"]).unwrap();
        take(&mut c, now);
        for byte in b"$1\r\nx\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n:7\r\n" {
            c.handle_read(&[*byte], now).unwrap();
        }
        assert_eq!(
            events(&mut c),
            vec![
                RedisEvent::Reply {
                    id: a,
                    value: Value::Bulk(b"x".to_vec())
                },
                RedisEvent::Message {
                    channel: b"ch".to_vec(),
                    payload: b"hi".to_vec()
                },
                RedisEvent::Reply {
                    id: b,
                    value: Value::Integer(7)
                },
            ]
        );
    }

    #[test]
    fn a_large_reply_in_small_reads_is_one_reply() {
        let now = Instant::now();
        let mut c = ready(true);
        let id = c.command(&[b"XRANGE", b"s", b"-", b"+"]).unwrap();
        take(&mut c, now);
        let items: Vec<Value> = (0..5000)
            .map(|i| Value::Bulk(format!("entry {i}").into_bytes()))
            .collect();
        let mut reply = Vec::new();
        Value::Array(items.clone()).encode(&mut reply);
        assert!(reply.len() > 4 * SCAN_FIRST);
        for piece in reply.chunks(1000) {
            c.handle_read(piece, now).unwrap();
        }
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Reply {
                id,
                value: Value::Array(items)
            }]
        );
    }

    #[test]
    fn a_reply_nobody_asked_for_fails_the_connection() {
        let now = Instant::now();
        let mut c = ready(true);
        assert_eq!(
            c.handle_read(b"+OK\r\n", now),
            Err(RedisError::UnexpectedReply)
        );
        let mut c = ready(true);
        c.command(&[b"PING"]).unwrap();
        assert_eq!(
            c.handle_read(b"+OK\n", now),
            Err(RedisError::Protocol(RespError::BareLf))
        );
    }

    #[test]
    fn resp2_subscriber_mode() {
        let now = Instant::now();
        let mut c = ready(false);
        c.subscribe(&[b"a", b"b", b"a"]).unwrap();
        assert_eq!(take(&mut c, now), cmd(&[b"SUBSCRIBE", b"a", b"b"]));
        // A message on `a` may come before `b` is confirmed.
        c.handle_read(
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
            now,
        )
        .unwrap();
        let ping = c.command(&[b"PING"]).unwrap();
        take(&mut c, now);
        c.handle_read(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", now)
            .unwrap();
        assert_eq!(
            events(&mut c),
            vec![
                RedisEvent::Subscribed {
                    channel: b"a".to_vec(),
                    count: 1
                },
                RedisEvent::Message {
                    channel: b"a".to_vec(),
                    payload: b"1".to_vec()
                },
                RedisEvent::Subscribed {
                    channel: b"b".to_vec(),
                    count: 2
                },
                RedisEvent::Reply {
                    id: ping,
                    value: Value::Array(vec![Value::Bulk(b"pong".to_vec()), Value::Bulk(vec![])])
                },
            ]
        );
        c.unsubscribe(&[b"a", b"zzz"]).unwrap();
        assert_eq!(take(&mut c, now), cmd(&[b"UNSUBSCRIBE", b"a"]));
        c.handle_read(b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n", now)
            .unwrap();
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Unsubscribed {
                channel: b"a".to_vec(),
                count: 1
            }]
        );
        assert_eq!(c.channels().collect::<Vec<_>>(), vec![&b"b"[..]]);
    }

    #[test]
    fn a_refused_subscribe_is_not_taken_for_the_next_reply() {
        let now = Instant::now();
        let mut c = ready(true);
        c.subscribe(&[b"secret"]).unwrap();
        let get = c.command(&[b"GET", b"k"]).unwrap();
        take(&mut c, now);
        // The confirmation is pending like a reply: it has a timer.
        assert!(c.poll_timeout().is_some());
        let e = c
            .handle_read(b"-NOPERM this user has no permissions to access the 'secret' channel\r\n$1\r\nv\r\n", now)
            .unwrap_err();
        assert!(matches!(e, RedisError::SubscribeRefused(ref t) if t.starts_with("NOPERM")));
        let events = events(&mut c);
        assert!(!events
            .iter()
            .any(|e| matches!(e, RedisEvent::Reply { id, .. } if *id == get)));
    }

    #[test]
    fn resp3_confirmations_are_pushes_in_reply_order() {
        let now = Instant::now();
        let mut c = ready(true);
        c.subscribe(&[b"a", b"b"]).unwrap();
        let ping = c.command(&[b"PING"]).unwrap();
        take(&mut c, now);
        c.handle_read(
            b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n+PONG\r\n",
            now,
        )
        .unwrap();
        assert_eq!(
            events(&mut c),
            vec![
                RedisEvent::Subscribed {
                    channel: b"a".to_vec(),
                    count: 1
                },
                RedisEvent::Subscribed {
                    channel: b"b".to_vec(),
                    count: 2
                },
                RedisEvent::Reply {
                    id: ping,
                    value: Value::Simple(b"PONG".to_vec())
                },
            ]
        );
        assert_eq!(c.pending_len(), 0);
    }

    #[test]
    fn subscriptions_are_restored_after_reconnect() {
        let now = Instant::now();
        let mut c = ready(true);
        c.subscribe(&[b"x"]).unwrap();
        take(&mut c, now);
        c.handle_eof();
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Failed(RedisError::ConnectionClosed)]
        );
        c.reset();
        c.handle_connected(now);
        assert_eq!(take(&mut c, now), cmd(&[b"HELLO", b"3"]));
        c.handle_read(HELLO_REPLY, now).unwrap();
        assert_eq!(take(&mut c, now), cmd(&[b"SUBSCRIBE", b"x"]));
    }

    #[test]
    fn the_reply_timer_starts_when_the_request_is_written() {
        let t0 = Instant::now();
        let timeout = RedisLimits::default().reply_timeout;
        let mut c = ready(true);
        // Ready after HELLO: nothing outstanding, no timer.
        assert_eq!(c.poll_timeout(), None);
        c.command(&[b"PING"]).unwrap();
        assert_eq!(c.poll_timeout(), None, "not written yet");
        let t1 = t0 + Duration::from_secs(1);
        let n = c.poll_transmit().unwrap().len();
        c.consumed(n - 1, t1);
        assert_eq!(c.poll_timeout(), None, "last byte not written yet");
        c.consumed(1, t1);
        assert_eq!(c.poll_timeout(), Some(t1 + timeout));
        c.handle_timeout(t1 + timeout - Duration::from_millis(1));
        assert!(c.is_ready());
        c.handle_timeout(t1 + timeout);
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Failed(RedisError::Timeout)]
        );
        assert_eq!(RedisError::Timeout.status(), 504);
    }

    #[test]
    fn limits_refuse_commands_and_oversized_replies() {
        let now = Instant::now();
        let mut cfg = config("redis://h");
        cfg.limits.max_pending = 3;
        cfg.limits.max_input_bytes = 8;
        cfg.limits.max_output_bytes = 70;
        let mut c = RedisConn::new(cfg);
        c.handle_connected(now);
        c.command(&[b"GET", b"a"]).unwrap();
        assert_eq!(c.command(&[&[b'x'; 60][..]]), Err(RedisError::OutputFull));
        c.command(&[b"GET", b"b"]).unwrap();
        // HELLO is pending too: 3 of 3.
        assert_eq!(c.pending_len(), 3);
        assert_eq!(c.command(&[b"GET", b"c"]), Err(RedisError::TooManyPending));
        take(&mut c, now);
        assert_eq!(
            c.handle_read(b"$100\r\n0123456789", now),
            Err(RedisError::ReplyTooLarge)
        );
    }

    #[test]
    fn a_connect_that_hangs_or_is_refused_fails_by_name() {
        let t0 = Instant::now();
        let mut c = RedisConn::new(config("redis://h"));
        c.handle_connect_started(t0);
        let deadline = t0 + RedisLimits::default().connect_timeout;
        assert_eq!(c.poll_timeout(), Some(deadline));
        c.handle_timeout(deadline);
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Failed(RedisError::ConnectTimeout)]
        );
        c.reset();
        c.handle_io_error(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            events(&mut c),
            vec![RedisEvent::Failed(RedisError::Io(
                std::io::ErrorKind::ConnectionRefused
            ))]
        );
        c.reset();
        c.handle_connect_started(t0);
        c.handle_connected(t0);
        assert_eq!(c.poll_timeout(), None, "HELLO not written yet");
    }

    #[test]
    fn a_push_with_attributes_is_still_a_push() {
        let now = Instant::now();
        let mut c = ready(true);
        let ping = c.command(&[b"PING"]).unwrap();
        take(&mut c, now);
        c.handle_read(
            b"|1\r\n+ttl\r\n:3\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\np\r\n+PONG\r\n",
            now,
        )
        .unwrap();
        assert_eq!(
            events(&mut c),
            vec![
                RedisEvent::Message {
                    channel: b"c".to_vec(),
                    payload: b"p".to_vec()
                },
                RedisEvent::Reply {
                    id: ping,
                    value: Value::Simple(b"PONG".to_vec())
                },
            ]
        );
    }

    #[test]
    fn backoff_grows_jitters_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 42);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let step = Duration::from_millis(100 << i.min(6)).min(Duration::from_secs(5));
            assert!(*d >= step / 2 && *d <= step, "{i}: {d:?} vs {step:?}");
        }
        assert!(delays[11] <= Duration::from_secs(5));
        // Same seed, same sequence; another seed, another one.
        let mut again = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 42);
        assert_eq!(
            (0..12).map(|_| again.next_delay()).collect::<Vec<_>>(),
            delays
        );
        let mut other = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), 7);
        assert_ne!(
            (0..12).map(|_| other.next_delay()).collect::<Vec<_>>(),
            delays
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}

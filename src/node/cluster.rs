//! The Redis engine: the node's side of `--redis` (DESIGN.md "Cluster
//! (Redis)").
//!
//! Before working on this file, read [`crate::proto::redis`] (the
//! connection), [`crate::proto::redis::broker`] (keys and scripts) and
//! [`crate::proto::redis::follow`] (replay, then live, with gaps).
//!
//! # Shape
//!
//! - **Mirror.** Transports read the in-memory [`crate::hub::Hub`] as they
//!   do without Redis. In cluster mode a topic's hub entry is a mirror of
//!   Redis: messages come in with the ids Redis gave them
//!   ([`crate::hub::Hub::insert`]), so fan-out, replay, parked polls and
//!   gap rules are the memory mode's own code. A message is decoded once
//!   per node; the node holds one Redis subscription per topic.
//! - **Following.** A topic is followed (its live channel subscribed, then a
//!   [`TopicFollower`] replays the stream after the mirror's last id) while
//!   this node has a subscriber of it, and `redis_linger` longer, so polls
//!   that come and go find it warm. A request that needs a topic not yet in
//!   sync waits (its bytes stay unread; it is parsed again when the topic
//!   is live), bounded by `redis_timeout`.
//! - **Publishing** is asynchronous: the request waits in
//!   `Phase::AwaitingBroker` for the publish script's reply; the message
//!   reaches the mirror by the live channel like everybody else's.
//! - **One connection.** Commands and pub/sub share one RESP3 connection:
//!   Redis answers a connection in order, so a `SUBSCRIBE` sent before a
//!   replay is in force before the replay runs — the follower's "subscribe
//!   first, then read the stream" holds by construction, with no wait for
//!   the confirmation. (RESP2 cannot carry both on one connection; Redis 6
//!   or later is required.)
//! - **Sans-IO.** The engine owns the [`RedisConn`]; the driver connects
//!   the socket and moves bytes ([`UpstreamAction`], the `*_upstream*`
//!   methods of [`Node`]), and never decides anything.
//!
//! # Failure
//!
//! When the connection fails, every call in flight fails (publishes: 503),
//! the socket is closed and reopened after a [`Backoff`]. Followed topics
//! stay served from the mirror; after the reconnect each follower reads
//! the stream after its last seq, so what pub/sub lost is filled in or
//! reported as a gap. Redis that came back empty has no meta keys: the
//! follow script starts a new epoch, which every subscriber is told as a
//! gap. Publishes while the link is down are refused at once (503), and
//! commands in flight are bounded by `redis_max_pending`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::hub::{Cursor, EventName, MessageId, PayloadKind, TopicName};
use crate::proto::mux::MuxRef;
use crate::proto::redis::broker::{self, HistoryLimits, Record, Script, TopicKeys};
use crate::proto::redis::follow::{FollowEvent, FollowLimits, TopicFollower};
use crate::proto::redis::{Backoff, RedisConfig, RedisConn, RedisEvent, RequestId};
use crate::wire::resp::Value;
use crate::Config;

use super::conn::{self, State};
use super::{slot_of, ConnId, Node};

/// Names one upstream (Redis) socket of the node. There is one today
/// ([`UPSTREAM`]); the number leaves room for one per shard.
pub type UpstreamId = usize;

/// The one Redis connection.
pub const UPSTREAM: UpstreamId = 0;

/// What the driver does for the engine's sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamAction {
    /// Open a non-blocking TCP connection to `addr` (`host:port`) for
    /// `id`; then report [`Node::handle_upstream_connected`] or
    /// [`Node::handle_upstream_error`].
    Connect { id: UpstreamId, addr: String },
    /// Close the socket of `id`: the engine has given it up.
    Close { id: UpstreamId },
}

/// A connection waiting for the engine, and which wait of it (connection
/// ids are reused; a ticket is not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub conn: ConnId,
    pub ticket: u64,
}

/// Who is told a publish's id.
#[derive(Clone, Debug)]
pub(crate) enum PublishFrom {
    /// `POST /topics/{t}`, waiting in `AwaitingBroker`.
    Http(Waiter),
    /// A `/ws` publish command: acked with its `ref`.
    Mux {
        conn: ConnId,
        reference: Option<MuxRef>,
    },
    /// A single-topic WebSocket or a publish from another thread: nobody
    /// waits for the id.
    Nobody,
}

/// Why a call failed: the status an HTTP request is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    fn unavailable(message: &str) -> Failure {
        Failure {
            status: 503,
            message: message.to_string(),
        }
    }
}

/// Whether a topic's mirror can serve a request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sync {
    /// In sync (or was, and Redis is down: the mirror serves what it has).
    Live,
    /// Its first replay is on its way.
    Pending,
    /// Never synced and Redis is unreachable: 503.
    Down,
}

/// What the engine has for the node to apply, in order.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The next message of a followed topic: into its mirror.
    Record(TopicName, Record),
    /// Where a followed topic stands after a replay or a gap.
    Position(TopicName, MessageId),
    /// Connections whose topics became live (or whose Redis went down):
    /// they try their requests again.
    Wake(Vec<Waiter>),
    Published(PublishFrom, Result<MessageId, Failure>),
    /// A `DELETE`: `None` for a topic Redis does not know.
    Deleted(Waiter, TopicName, Result<Option<(u64, MessageId)>, Failure>),
}

/// What a command in flight is for.
#[derive(Debug)]
enum Call {
    ScriptLoad,
    Publish {
        from: PublishFrom,
        topic: TopicName,
        event: Option<EventName>,
        kind: PayloadKind,
        data: String,
        retried: bool,
    },
    Follow {
        topic: TopicName,
        generation: u64,
        after: Option<u64>,
        count: usize,
        retried: bool,
    },
    Delete {
        waiter: Waiter,
        topic: TopicName,
        retried: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No socket; (re)connect at this time.
    Down {
        retry_at: Instant,
    },
    /// Connecting or in the handshake.
    Connecting,
    Up,
}

/// A topic this node follows.
#[derive(Debug)]
struct Followed {
    topic: TopicName,
    follower: TopicFollower,
    /// Tells a stale replay reply (of an earlier follow) from this one's.
    generation: u64,
    /// A replay is in flight.
    outstanding: bool,
    /// A replay is wanted but could not be sent (the link is down).
    unsent: bool,
    /// The first replay is done: the mirror serves requests.
    live: bool,
    /// Followed at least until then (subscribers extend it).
    keep_until: Instant,
    waiters: Vec<Waiter>,
}

/// The Redis engine's state (see the module documentation).
#[derive(Debug)]
pub(crate) struct Cluster {
    conn: RedisConn,
    link: Link,
    backoff: Backoff,
    actions: VecDeque<UpstreamAction>,
    publish_script: Script,
    follow_script: Script,
    delete_script: Script,
    calls: HashMap<RequestId, Call>,
    topics: HashMap<Box<str>, Followed>,
    outcomes: Vec<Outcome>,
    history: HistoryLimits,
    follow_limits: FollowLimits,
    /// How long a meta key the engine creates lives without a publish.
    meta_ttl_ms: u64,
    timeout: Duration,
    linger: Duration,
    check_interval: Duration,
    next_check: Instant,
    next_ticket: u64,
    next_generation: u64,
    /// Lines for the node's log.
    pub log: Vec<String>,
}

impl Cluster {
    /// The engine for `cfg.redis` (validated by `Config::validate`), first
    /// connecting at `now`.
    pub fn new(cfg: &Config, url: &str, seed: u64, now: Instant) -> Result<Cluster, String> {
        let mut redis = RedisConfig::from_url(url).map_err(|e| e.to_string())?;
        redis.resp3 = true;
        redis.limits.reply_timeout = cfg.redis_timeout;
        redis.limits.connect_timeout = cfg.redis_timeout;
        redis.limits.max_pending = cfg.redis_max_pending.max(1);
        let age_ms = u64::try_from(cfg.history_age.as_millis()).unwrap_or(u64::MAX);
        Ok(Cluster {
            conn: RedisConn::new(redis),
            link: Link::Down { retry_at: now },
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5), seed),
            actions: VecDeque::new(),
            publish_script: Script::publish(),
            follow_script: Script::new(broker::FOLLOW_SCRIPT),
            delete_script: Script::new(broker::DELETE_SCRIPT),
            calls: HashMap::new(),
            topics: HashMap::new(),
            outcomes: Vec::new(),
            history: HistoryLimits {
                max_len: cfg.history_messages.max(1),
                max_age_ms: age_ms,
            },
            follow_limits: FollowLimits {
                page: cfg.max_batch.clamp(1, 1000),
                max_buffered: 10_000,
            },
            meta_ttl_ms: age_ms.max(1000),
            timeout: cfg.redis_timeout,
            linger: cfg.redis_linger,
            check_interval: cfg.redis_check_interval.max(Duration::from_millis(10)),
            next_check: now + cfg.redis_check_interval,
            next_ticket: 1,
            next_generation: 1,
            log: Vec::new(),
        })
    }

    pub fn is_up(&self) -> bool {
        self.link == Link::Up
    }

    /// A fresh ticket for a waiting connection.
    pub fn ticket(&mut self, conn: ConnId) -> Waiter {
        self.next_ticket += 1;
        Waiter {
            conn,
            ticket: self.next_ticket,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many topics this node follows.
    pub fn followed(&self) -> usize {
        self.topics.len()
    }

    // ---- publishing and deleting -------------------------------------------

    /// Queues the publish script for one message. Refused at once (503)
    /// when Redis is known to be down or too many commands are in flight:
    /// nothing is buffered for later.
    pub fn publish(
        &mut self,
        from: PublishFrom,
        topic: &TopicName,
        event: Option<&EventName>,
        data: &str,
        kind: PayloadKind,
    ) -> Result<(), Failure> {
        if self.link != Link::Up {
            return Err(Failure::unavailable("Redis is unavailable"));
        }
        let call = Call::Publish {
            from,
            topic: topic.clone(),
            event: event.cloned(),
            kind,
            data: data.to_string(),
            retried: false,
        };
        self.send(call)
    }

    /// Queues `DELETE /topics/{t}`'s script.
    pub fn delete(&mut self, waiter: Waiter, topic: &TopicName) -> Result<(), Failure> {
        if self.link != Link::Up {
            return Err(Failure::unavailable("Redis is unavailable"));
        }
        self.send(Call::Delete {
            waiter,
            topic: topic.clone(),
            retried: false,
        })
    }

    fn command_of(&self, call: &Call) -> Option<broker::Command> {
        Some(match call {
            Call::ScriptLoad => return None,
            Call::Publish {
                topic,
                event,
                kind,
                data,
                retried,
                ..
            } => {
                let ev = event.as_ref().map(|e| e.as_str());
                let k = broker_kind(*kind);
                if *retried {
                    broker::publish_eval(&self.publish_script, topic, ev, k, data, self.history)
                } else {
                    broker::publish(&self.publish_script, topic, ev, k, data, self.history)
                }
            }
            Call::Follow {
                topic,
                after,
                count,
                retried,
                ..
            } => broker::follow(
                &self.follow_script,
                topic,
                *after,
                *count,
                self.meta_ttl_ms,
                *retried,
            ),
            Call::Delete { topic, retried, .. } => {
                broker::delete(&self.delete_script, topic, self.meta_ttl_ms, *retried)
            }
        })
    }

    fn send(&mut self, call: Call) -> Result<(), Failure> {
        let Some(cmd) = self.command_of(&call) else {
            return Ok(());
        };
        match self.conn.command(&cmd.args()) {
            Ok(id) => {
                self.calls.insert(id, call);
                Ok(())
            }
            Err(e) => Err(Failure {
                status: 503,
                message: e.to_string(),
            }),
        }
    }

    // ---- following ---------------------------------------------------------

    /// Whether `topic`'s mirror can serve a request now; starts following
    /// it if need be (from `mirror_last`, the mirror's newest id, if it has
    /// one). Keeps it followed for `keep` from `now` at least.
    pub fn sync(
        &mut self,
        topic: &TopicName,
        mirror_last: Option<MessageId>,
        keep: Duration,
        now: Instant,
    ) -> Sync {
        let until = now + keep.max(self.linger);
        if let Some(f) = self.topics.get_mut(topic.as_str()) {
            f.keep_until = f.keep_until.max(until);
            return if f.live {
                Sync::Live
            } else if self.link == Link::Up || self.link == Link::Connecting {
                Sync::Pending
            } else {
                Sync::Down
            };
        }
        if self.link != Link::Up {
            return Sync::Down;
        }
        let keys = TopicKeys::new(topic);
        if self.conn.subscribe(&[&keys.channel]).is_err() {
            return Sync::Down;
        }
        let cursor = match mirror_last {
            Some(id) if id.seq > 0 => Cursor::After(id),
            _ => Cursor::Earliest,
        };
        self.next_generation += 1;
        self.topics.insert(
            topic.as_str().into(),
            Followed {
                topic: topic.clone(),
                follower: TopicFollower::new(cursor, self.follow_limits),
                generation: self.next_generation,
                outstanding: false,
                unsent: false,
                live: false,
                keep_until: until,
                waiters: Vec::new(),
            },
        );
        self.settle_topic(topic.as_str(), false);
        match self.topics.get(topic.as_str()) {
            Some(f) if f.live => Sync::Live,
            _ => Sync::Pending,
        }
    }

    /// `waiter` tries again when `topic` is live (or Redis is down).
    pub fn wait_for(&mut self, topic: &TopicName, waiter: Waiter) {
        if let Some(f) = self.topics.get_mut(topic.as_str()) {
            if !f.waiters.contains(&waiter) {
                f.waiters.push(waiter);
            }
        }
    }

    /// Topics whose linger ran out; the node says for each whether it
    /// still has subscribers ([`Cluster::keep`]) or not
    /// ([`Cluster::unfollow`]).
    pub fn lingering(&self, now: Instant) -> Vec<TopicName> {
        self.topics
            .values()
            .filter(|f| f.keep_until <= now && f.waiters.is_empty())
            .map(|f| f.topic.clone())
            .collect()
    }

    pub fn keep(&mut self, topic: &TopicName, now: Instant) {
        if let Some(f) = self.topics.get_mut(topic.as_str()) {
            f.keep_until = now + self.linger;
        }
    }

    /// Stops following `topic`: its channel is unsubscribed. The mirror
    /// keeps what it has; following again reads on from its last id.
    pub fn unfollow(&mut self, topic: &TopicName) {
        if self.topics.remove(topic.as_str()).is_some() {
            let keys = TopicKeys::new(topic);
            let _ = self.conn.unsubscribe(&[&keys.channel]);
        }
    }

    /// Sends the follower's replay requests, reports its events, and marks
    /// it live once it has nothing more to ask.
    fn settle_topic(&mut self, key: &str, report_position: bool) {
        let Some(f) = self.topics.get_mut(key) else {
            return;
        };
        let mut gap = false;
        while let Some(event) = f.follower.poll_event() {
            match event {
                FollowEvent::Message(record) => {
                    self.outcomes.push(Outcome::Record(f.topic.clone(), record))
                }
                FollowEvent::Gap(_) => gap = true,
            }
        }
        if report_position || gap {
            if let Some(id) = f.follower.last_id() {
                self.outcomes.push(Outcome::Position(f.topic.clone(), id));
            }
        }
        if !f.outstanding {
            let can_send =
                matches!(self.link, Link::Up | Link::Connecting) && !self.conn.is_failed();
            if let Some(req) = f.follower.poll_request() {
                if can_send {
                    let call = Call::Follow {
                        topic: f.topic.clone(),
                        generation: f.generation,
                        after: req.after,
                        count: req.count,
                        retried: false,
                    };
                    let cmd = broker::follow(
                        &self.follow_script,
                        &f.topic,
                        req.after,
                        req.count,
                        self.meta_ttl_ms,
                        false,
                    );
                    match self.conn.command(&cmd.args()) {
                        Ok(id) => {
                            self.calls.insert(id, call);
                            f.outstanding = true;
                            f.unsent = false;
                        }
                        Err(_) => {
                            f.follower.handle_replay_failed();
                            f.unsent = true;
                        }
                    }
                } else {
                    f.follower.handle_replay_failed();
                    f.unsent = true;
                }
            }
        }
        if !f.live && !f.outstanding && !f.unsent {
            f.live = true;
            let waiters = std::mem::take(&mut f.waiters);
            if !waiters.is_empty() {
                self.outcomes.push(Outcome::Wake(waiters));
            }
        }
    }

    // ---- the connection ----------------------------------------------------

    pub fn poll_action(&mut self) -> Option<UpstreamAction> {
        self.actions.pop_front()
    }

    pub fn transmit(&self) -> Option<&[u8]> {
        self.conn.poll_transmit()
    }

    pub fn handle_sent(&mut self, n: usize, now: Instant) {
        self.conn.consumed(n, now);
    }

    pub fn handle_connected(&mut self, now: Instant) {
        self.conn.handle_connected(now);
        self.drain(now);
    }

    pub fn handle_read(&mut self, bytes: &[u8], now: Instant) {
        let _ = self.conn.handle_read(bytes, now);
        self.drain(now);
    }

    pub fn handle_eof(&mut self, now: Instant) {
        self.conn.handle_eof();
        self.drain(now);
    }

    pub fn handle_error(&mut self, kind: std::io::ErrorKind, now: Instant) {
        self.conn.handle_io_error(kind);
        self.drain(now);
    }

    /// The earliest time [`Cluster::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = Some(self.next_check);
        for t in [
            self.conn.poll_timeout(),
            match self.link {
                Link::Down { retry_at } => Some(retry_at),
                _ => None,
            },
        ]
        .into_iter()
        .flatten()
        {
            next = next.map(|n| n.min(t));
        }
        next
    }

    /// Reconnects when the backoff is over, times out what Redis did not
    /// answer, and runs the periodic position check. Returns whether the
    /// check ran (the node then looks at lingering topics).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if let Link::Down { retry_at } = self.link {
            if retry_at <= now {
                self.conn.reset();
                self.conn.handle_connect_started(now);
                self.link = Link::Connecting;
                self.actions.push_back(UpstreamAction::Connect {
                    id: UPSTREAM,
                    addr: self.conn.config().addr(),
                });
            }
        }
        self.conn.handle_timeout(now);
        self.drain(now);
        if self.next_check > now {
            return false;
        }
        self.next_check = now + self.check_interval;
        // Pub/sub is at-most-once: a message lost on a quiet topic shows no
        // hole until the next one. A cheap read after the last seq finds it.
        let keys: Vec<Box<str>> = self.topics.keys().cloned().collect();
        for key in keys {
            if let Some(f) = self.topics.get_mut(&key) {
                if f.live && !f.outstanding && self.link == Link::Up {
                    f.follower.handle_resubscribed();
                }
            }
            self.settle_topic(&key, false);
        }
        true
    }

    /// Handles every event of the connection.
    fn drain(&mut self, now: Instant) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                RedisEvent::Ready => self.on_ready(),
                RedisEvent::Reply { id, value } => self.on_reply(id, value),
                RedisEvent::Message { channel, payload } => self.on_live(&channel, &payload),
                RedisEvent::Failed(e) => self.on_failed(&e.to_string(), now),
                RedisEvent::Subscribed { .. }
                | RedisEvent::Unsubscribed { .. }
                | RedisEvent::Push(_) => {}
            }
        }
    }

    fn on_ready(&mut self) {
        if self.conn.protocol() != Some(crate::proto::redis::Protocol::Resp3) {
            // Pub/sub and commands share this connection: RESP2 cannot.
            self.log
                .push("pushwire: Redis did not accept RESP3 (Redis 6 or later is needed)".into());
        }
        self.link = Link::Up;
        self.backoff.reset();
        self.log.push("pushwire: Redis connected".into());
        for script in [
            &self.publish_script,
            &self.follow_script,
            &self.delete_script,
        ] {
            if let Ok(id) = self.conn.command(&script.load().args()) {
                self.calls.insert(id, Call::ScriptLoad);
            }
        }
        // Whatever was published while we were away never came by pub/sub.
        let keys: Vec<Box<str>> = self.topics.keys().cloned().collect();
        for key in keys {
            if let Some(f) = self.topics.get_mut(&key) {
                if !f.outstanding {
                    f.follower.handle_resubscribed();
                }
                f.unsent = false;
            }
            self.settle_topic(&key, false);
        }
    }

    fn on_failed(&mut self, why: &str, now: Instant) {
        let delay = self.backoff.next_delay();
        self.log.push(format!(
            "pushwire: Redis connection failed ({why}); retrying in {delay:?}"
        ));
        self.link = Link::Down {
            retry_at: now + delay,
        };
        self.actions
            .push_back(UpstreamAction::Close { id: UPSTREAM });
        let failure = Failure::unavailable("Redis connection lost");
        for (_, call) in self.calls.drain() {
            match call {
                Call::ScriptLoad => {}
                Call::Publish { from, .. } => self
                    .outcomes
                    .push(Outcome::Published(from, Err(failure.clone()))),
                Call::Delete { waiter, topic, .. } => {
                    self.outcomes
                        .push(Outcome::Deleted(waiter, topic, Err(failure.clone())))
                }
                Call::Follow { topic, .. } => {
                    if let Some(f) = self.topics.get_mut(topic.as_str()) {
                        f.outstanding = false;
                        f.unsent = true;
                        f.follower.handle_replay_failed();
                    }
                }
            }
        }
        // Requests waiting for a first sync are answered now (503), not at
        // their deadline.
        let mut waiters = Vec::new();
        for f in self.topics.values_mut() {
            waiters.append(&mut f.waiters);
        }
        if !waiters.is_empty() {
            self.outcomes.push(Outcome::Wake(waiters));
        }
    }

    fn on_reply(&mut self, id: RequestId, value: Value) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        // After a restart or SCRIPT FLUSH Redis has forgotten the scripts:
        // the same call once more as EVAL, which caches it again.
        if broker::is_noscript(&value) {
            let retried = match &mut call {
                Call::Publish { retried, .. }
                | Call::Follow { retried, .. }
                | Call::Delete { retried, .. } => retried,
                Call::ScriptLoad => return,
            };
            if !*retried {
                *retried = true;
                if let Some(cmd) = self.command_of(&call) {
                    if let Ok(id) = self.conn.command(&cmd.args()) {
                        self.calls.insert(id, call);
                        return;
                    }
                }
            }
        }
        match call {
            Call::ScriptLoad => {}
            Call::Publish { from, .. } => {
                let result = broker::parse_publish(&value).map_err(|e| Failure {
                    status: e.status(),
                    message: e.to_string(),
                });
                self.outcomes.push(Outcome::Published(from, result));
            }
            Call::Delete { waiter, topic, .. } => {
                let result = broker::parse_delete(&value).map_err(|e| Failure {
                    status: e.status(),
                    message: e.to_string(),
                });
                self.outcomes.push(Outcome::Deleted(waiter, topic, result));
            }
            Call::Follow {
                topic, generation, ..
            } => {
                let Some(f) = self.topics.get_mut(topic.as_str()) else {
                    return;
                };
                if f.generation != generation {
                    return;
                }
                f.outstanding = false;
                match broker::parse_replay(&value) {
                    Ok(replay) => f.follower.handle_replay(replay),
                    Err(e) => {
                        // Asked again at the next check, not at once: a
                        // Redis that answers nonsense would be asked in a
                        // loop.
                        self.log
                            .push(format!("pushwire: replay of {topic} refused: {e}"));
                        f.follower.handle_replay_failed();
                        f.unsent = true;
                        return;
                    }
                }
                self.settle_topic(topic.as_str(), true);
            }
        }
    }

    fn on_live(&mut self, channel: &[u8], payload: &[u8]) {
        let Some(topic) = broker::topic_of_channel(channel) else {
            return;
        };
        let Some(f) = self.topics.get_mut(topic) else {
            return;
        };
        if payload == broker::DELETED_NOTICE {
            // The history was dropped and a new epoch begun: reading on
            // finds the new epoch and reports the gap.
            f.follower.handle_resubscribed();
        } else {
            match broker::parse_live(payload) {
                Ok(record) => f.follower.handle_live(record),
                Err(e) => {
                    self.log
                        .push(format!("pushwire: live message on {topic} ignored: {e}"));
                    return;
                }
            }
        }
        let key: Box<str> = topic.into();
        self.settle_topic(&key, false);
    }

    /// What the node is to apply.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }
}

fn broker_kind(kind: PayloadKind) -> broker::PayloadKind {
    match kind {
        PayloadKind::Text => broker::PayloadKind::Text,
        PayloadKind::Json => broker::PayloadKind::Json,
    }
}

fn hub_kind(kind: broker::PayloadKind) -> PayloadKind {
    match kind {
        broker::PayloadKind::Text => PayloadKind::Text,
        broker::PayloadKind::Json => PayloadKind::Json,
    }
}

// ---- the node's side -------------------------------------------------------

impl Node {
    /// Whether this node runs on Redis (`--redis`).
    pub fn is_clustered(&self) -> bool {
        self.ctx.cluster.is_some()
    }

    /// The next thing the driver does for an upstream socket, if any. Call
    /// after every `handle_*`, until `None`.
    pub fn poll_upstream(&mut self) -> Option<UpstreamAction> {
        self.ctx.cluster.as_mut()?.poll_action()
    }

    /// Bytes to write to upstream `id`; report what was written with
    /// [`Node::handle_upstream_sent`].
    pub fn upstream_transmit(&self, id: UpstreamId) -> Option<&[u8]> {
        let _ = id;
        self.ctx.cluster.as_ref()?.transmit()
    }

    pub fn handle_upstream_sent(&mut self, id: UpstreamId, n: usize, now: Instant) {
        let _ = id;
        if let Some(c) = self.ctx.cluster.as_mut() {
            c.handle_sent(n, now);
        }
    }

    /// The non-blocking connect of `id` completed.
    pub fn handle_upstream_connected(&mut self, id: UpstreamId, now: Instant) {
        let _ = id;
        if let Some(c) = self.ctx.cluster.as_mut() {
            c.handle_connected(now);
        }
        self.apply_cluster(now);
    }

    /// Bytes read from upstream `id`.
    pub fn handle_upstream_read(&mut self, id: UpstreamId, bytes: &[u8], now: Instant) {
        let _ = id;
        if let Some(c) = self.ctx.cluster.as_mut() {
            c.handle_read(bytes, now);
        }
        self.apply_cluster(now);
    }

    /// Redis closed upstream `id`.
    pub fn handle_upstream_eof(&mut self, id: UpstreamId, now: Instant) {
        let _ = id;
        if let Some(c) = self.ctx.cluster.as_mut() {
            c.handle_eof(now);
        }
        self.apply_cluster(now);
    }

    /// Connecting, reading or writing upstream `id` failed.
    pub fn handle_upstream_error(
        &mut self,
        id: UpstreamId,
        kind: std::io::ErrorKind,
        now: Instant,
    ) {
        let _ = id;
        if let Some(c) = self.ctx.cluster.as_mut() {
            c.handle_error(kind, now);
        }
        self.apply_cluster(now);
    }

    /// The engine's part of [`Node::handle_timeout`].
    pub(crate) fn cluster_timeout(&mut self, now: Instant) {
        let Some(c) = self.ctx.cluster.as_mut() else {
            return;
        };
        if c.handle_timeout(now) {
            for topic in c.lingering(now) {
                let c = self.ctx.cluster.as_mut().expect("checked");
                if self.ctx.hub.subscribers(&topic).is_empty() {
                    c.unfollow(&topic);
                } else {
                    c.keep(&topic, now);
                }
            }
        }
        self.apply_cluster(now);
    }

    /// Applies what the engine produced: mirror updates, answers to
    /// waiting connections; then the fan-out.
    pub(crate) fn apply_cluster(&mut self, now: Instant) {
        loop {
            let Some(c) = self.ctx.cluster.as_mut() else {
                return;
            };
            let outcomes = c.take_outcomes();
            for line in c.log.drain(..) {
                self.ctx.log.push(line);
            }
            if outcomes.is_empty() {
                break;
            }
            for outcome in outcomes {
                self.apply_outcome(outcome, now);
            }
        }
        self.run_pending(now);
    }

    fn apply_outcome(&mut self, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Record(topic, record) => {
                let event = record
                    .event
                    .as_deref()
                    .and_then(|e| EventName::parse(e).ok());
                let inserted = self.ctx.hub.insert(
                    &topic,
                    record.id,
                    event.as_ref(),
                    &record.data,
                    hub_kind(record.kind),
                    now,
                );
                match inserted {
                    Ok(Some((msg, fresh))) => {
                        if fresh {
                            self.restart_topic(&topic, now);
                        }
                        self.ctx.pending.push((topic, msg));
                    }
                    Ok(None) => {}
                    Err(e) => self.ctx.log.push(format!(
                        "pushwire: {topic}: {} not mirrored: {e}",
                        record.id
                    )),
                }
            }
            Outcome::Position(topic, id) => {
                if self.ctx.hub.last_id(&topic) != Some(id) {
                    if let Ok(true) = self.ctx.hub.mirror_position(&topic, id) {
                        self.restart_topic(&topic, now);
                    }
                }
            }
            Outcome::Wake(waiters) => {
                for w in waiters {
                    self.wake(w, None, now);
                }
            }
            Outcome::Published(from, result) => {
                if result.is_ok() {
                    self.ctx.stats.published += 1;
                }
                match from {
                    PublishFrom::Http(w) => {
                        let answer = super::app::BrokerAnswer::Published(result);
                        self.wake(w, Some(answer), now)
                    }
                    PublishFrom::Mux { conn, reference } => {
                        if let Some(c) = slot_of(&mut self.conns, conn) {
                            super::app::answer_mux_publish(c, reference, result);
                            self.settle(conn, now);
                        }
                    }
                    PublishFrom::Nobody => {}
                }
            }
            Outcome::Deleted(w, topic, result) => self.wake(
                w,
                Some(super::app::BrokerAnswer::Deleted(topic, result)),
                now,
            ),
        }
    }

    /// Every live subscriber of `topic` is replayed from its own cursor
    /// (the mirror's history started afresh: what it missed is a gap), and
    /// every parked poll on it is answered.
    fn restart_topic(&mut self, topic: &TopicName, now: Instant) {
        let subs: Vec<usize> = self.ctx.hub.subscribers(topic).to_vec();
        for s in subs {
            let (cid, slot) = conn::sub_of(s);
            if let Some(c) = slot_of(&mut self.conns, cid) {
                if let Some(sub) = c.state.subs_mut().and_then(|x| x.get_mut(slot)) {
                    sub.catching_up = true;
                }
                self.settle(cid, now);
            }
        }
        for pid in self.ctx.parking.wake(topic) {
            if let Some(c) = slot_of(&mut self.conns, pid) {
                super::app::answer_parked(&mut self.ctx, pid, c, now, false);
                self.settle(pid, now);
            }
        }
    }

    /// A connection waiting in `AwaitingBroker` under `w`: answered with
    /// `answer`, or (none) its request is read again.
    fn wake(&mut self, w: Waiter, answer: Option<super::app::BrokerAnswer>, now: Instant) {
        let Some(c) = slot_of(&mut self.conns, w.conn) else {
            return;
        };
        match &c.state {
            State::AwaitingBroker(a) if a.ticket == w.ticket => {}
            _ => return,
        }
        super::app::answer_broker(&mut self.ctx, w.conn, c, answer, now);
        self.settle(w.conn, now);
    }
}

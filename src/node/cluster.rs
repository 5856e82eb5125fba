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

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::hub::{Cursor, EventName, MessageId, PayloadKind, TopicName};
use crate::proto::mux::MuxRef;
use crate::proto::redis::broker::{self, HistoryLimits, Record, Script, TopicKeys, TopicState};
use crate::proto::redis::follow::{FollowEvent, FollowLimits, TopicFollower};
use crate::proto::redis::relay::NodeTag;
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
    /// A Socket.IO `publish` on namespace `/` of Engine.IO session `eio`:
    /// acked with ack id `ack` (node/sio.rs).
    SocketIo {
        eio: crate::proto::engineio::Sid,
        ack: crate::proto::socketio::AckId,
    },
}

/// Why a call failed: the status an HTTP request is answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    /// 503: nothing was done (Redis is unreachable); trying again is safe.
    fn unavailable(message: &str) -> Failure {
        Failure {
            status: 503,
            message: message.to_string(),
        }
    }

    /// 504 (RFC 9110 §15.6.5, no timely answer from the upstream): the
    /// command went to Redis and its answer never came, so what it did is
    /// unknown — a publish may be stored and delivered. A client that
    /// tries again may publish twice.
    fn unanswered(what: &str) -> Failure {
        Failure {
            status: 504,
            message: format!("Redis did not answer: the {what} may have happened"),
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
    /// A message another node relayed to this one, as it came.
    Relayed(Vec<u8>),
    /// A relayed request reached no node: the one it was for is gone.
    Unheard(Waiter),
    /// The connection to Redis was lost: relayed messages sent or on
    /// their way meanwhile are lost too.
    LinkLost,
    /// Connections whose topics became live (or whose Redis went down):
    /// they try their requests again.
    Wake(Vec<Waiter>),
    /// `/ws` subscribe commands that waited for their topic: run again.
    MuxRetry(Vec<(ConnId, Vec<u8>)>),
    Published(PublishFrom, Result<MessageId, Failure>),
    /// A `DELETE`: `None` for a topic Redis does not know.
    Deleted(Waiter, TopicName, Result<Option<(u64, MessageId)>, Failure>),
    /// `GET /topics/{t}`: `None` for a topic Redis does not know.
    Info(Waiter, TopicName, Result<Option<TopicState>, Failure>),
    /// `GET /topics`: a page of topics, and whether more follow.
    Listed(
        Waiter,
        Result<(Vec<(TopicName, TopicState)>, bool), Failure>,
    ),
}

/// Most topic names one `GET /topics` collects from SCAN (they are sorted
/// before a page is cut); past it the listing is of those found first.
const MAX_LIST_NAMES: usize = 100_000;

/// Most SCAN pages one `GET /topics` reads (`SCAN_COUNT` keys each).
const MAX_SCAN_PAGES: usize = 10_000;
const SCAN_COUNT: usize = 1000;

/// A `GET /topics` in progress: SCAN pages, then one info call per topic
/// of the page.
#[derive(Debug)]
struct Listing {
    waiter: Waiter,
    prefix: String,
    after: Option<String>,
    limit: usize,
    names: BTreeSet<String>,
    pages: usize,
    infos: Vec<(TopicName, Option<TopicState>)>,
    left: usize,
    more: bool,
}

/// What a command in flight is for.
#[derive(Debug)]
enum Call {
    ScriptLoad,
    /// A `PUBLISH` to another node's relay channel. Its reply counts the
    /// subscribers that got it: none means no node holds that channel,
    /// and the request's waiter (if it is one) is told at once. The
    /// answer itself comes back as a message on ours.
    Relay {
        waiter: Option<Waiter>,
    },
    /// The message itself is not kept while Redis works on it (commands
    /// in flight hold no payloads): on NOSCRIPT it is refused, not resent.
    Publish {
        from: PublishFrom,
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
    Presence {
        topic: TopicName,
        counts: Option<[usize; 5]>,
        retried: bool,
    },
    Info {
        waiter: Waiter,
        topic: TopicName,
        /// Part of a listing: its number and this topic's place in it.
        listing: Option<(u64, usize)>,
        retried: bool,
    },
    Scan {
        listing: u64,
        cursor: u64,
        prefix: String,
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
    /// A refresh was asked while a replay was in flight (which may have
    /// run before what the refresh is for): read once more after it.
    again: bool,
    /// A replay is wanted but could not be sent (the link is down).
    unsent: bool,
    /// The first replay is done: the mirror serves requests.
    live: bool,
    /// Followed at least until then (subscribers extend it).
    keep_until: Instant,
    waiters: Vec<Waiter>,
    /// `/ws` subscribe commands (their frames) waiting for the first sync.
    mux_waiters: Vec<(ConnId, Vec<u8>)>,
}

/// Most `/ws` subscribe commands waiting for one topic's first sync;
/// beyond it they are refused (503) rather than held.
const MAX_MUX_WAITERS: usize = 10_000;

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
    presence_script: Script,
    info_script: Script,
    /// This node's name in presence entries.
    node_name: String,
    /// Where other nodes send this node what they relay to it
    /// ([`crate::proto::redis::relay`]).
    relay_channel: Vec<u8>,
    listings: HashMap<u64, Listing>,
    next_listing: u64,
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
    pub fn new(
        cfg: &Config,
        url: &str,
        seed: u64,
        tag: NodeTag,
        now: Instant,
    ) -> Result<Cluster, String> {
        let mut redis = RedisConfig::from_url(url).map_err(|e| e.to_string())?;
        redis.resp3 = true;
        redis.limits.reply_timeout = cfg.redis_timeout;
        redis.limits.connect_timeout = cfg.redis_timeout;
        redis.limits.max_pending = cfg.redis_max_pending.max(1);
        let age_ms = u64::try_from(cfg.history_age.as_millis()).unwrap_or(u64::MAX);
        let max_input = redis.limits.max_input_bytes;
        let mut conn = RedisConn::new(redis);
        // Kept across reconnects by the connection itself.
        let relay_channel = tag.channel();
        conn.subscribe(&[&relay_channel])
            .map_err(|e| e.to_string())?;
        Ok(Cluster {
            conn,
            link: Link::Down { retry_at: now },
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5), seed),
            actions: VecDeque::new(),
            publish_script: Script::publish(),
            follow_script: Script::new(broker::FOLLOW_SCRIPT),
            delete_script: Script::new(broker::DELETE_SCRIPT),
            presence_script: Script::new(broker::PRESENCE_SCRIPT),
            info_script: Script::new(broker::TOPIC_INFO_SCRIPT),
            node_name: format!("{seed:x}"),
            relay_channel,
            listings: HashMap::new(),
            next_listing: 0,
            calls: HashMap::new(),
            topics: HashMap::new(),
            outcomes: Vec::new(),
            history: HistoryLimits {
                max_len: cfg.history_messages.max(1),
                max_age_ms: age_ms,
            },
            follow_limits: FollowLimits {
                // A replay's reply must fit the connection's input limit
                // (past it the connection fails, and would fail again on
                // the same replay): as many of the largest messages as fit
                // in half of it.
                page: (max_input / 2 / cfg.max_message_bytes.max(1)).clamp(1, 1000),
                // Live messages held while a replay is out; past it they are
                // dropped and read again from the stream.
                max_buffered: 1000,
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

    /// Sends `payload` to the relay channel of node `to`; `waiter` is told
    /// ([`Outcome::Unheard`]) if no node reads that channel. Refused at
    /// once while Redis is down.
    pub fn relay(
        &mut self,
        to: NodeTag,
        payload: &[u8],
        waiter: Option<Waiter>,
    ) -> Result<(), Failure> {
        if self.link != Link::Up {
            return Err(Failure::unavailable("Redis is unreachable"));
        }
        let channel = to.channel();
        let id = self
            .conn
            .command(&[b"PUBLISH", &channel, payload])
            .map_err(|e| Failure::unavailable(&e.to_string()))?;
        self.calls.insert(id, Call::Relay { waiter });
        Ok(())
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
        let ev = event.map(|e| e.as_str());
        let cmd = broker::publish(
            &self.publish_script,
            topic,
            ev,
            broker_kind(kind),
            data,
            self.history,
        );
        match self.conn.command(&cmd.args()) {
            Ok(id) => {
                self.calls.insert(id, Call::Publish { from });
                Ok(())
            }
            Err(e) => Err(Failure {
                status: 503,
                message: e.to_string(),
            }),
        }
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

    /// Records this node's subscriber counts of `topic` (`None`: it has
    /// none and stops following), for every node's `GET /topics`. Entries
    /// live three check intervals unless refreshed.
    pub fn presence(&mut self, topic: &TopicName, counts: Option<[usize; 5]>) {
        if self.link == Link::Up {
            let _ = self.send(Call::Presence {
                topic: topic.clone(),
                counts,
                retried: false,
            });
        }
    }

    /// Queues `GET /topics/{t}`'s read.
    pub fn topic_info(&mut self, waiter: Waiter, topic: &TopicName) -> Result<(), Failure> {
        if self.link != Link::Up {
            return Err(Failure::unavailable("Redis is unavailable"));
        }
        self.send(Call::Info {
            waiter,
            topic: topic.clone(),
            listing: None,
            retried: false,
        })
    }

    /// Starts `GET /topics`: every topic starting with `prefix` (SCAN),
    /// sorted, those after `after`, at most `limit`.
    pub fn list_topics(
        &mut self,
        waiter: Waiter,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(), Failure> {
        if self.link != Link::Up {
            return Err(Failure::unavailable("Redis is unavailable"));
        }
        self.next_listing += 1;
        let n = self.next_listing;
        self.send(Call::Scan {
            listing: n,
            cursor: 0,
            prefix: prefix.to_string(),
        })?;
        self.listings.insert(
            n,
            Listing {
                waiter,
                prefix: prefix.to_string(),
                after: after.map(str::to_string),
                limit,
                names: BTreeSet::new(),
                pages: 0,
                infos: Vec::new(),
                left: 0,
                more: false,
            },
        );
        Ok(())
    }

    /// A SCAN page of listing `n` came in: scan on, or ask for the page's
    /// topics.
    fn on_scan(&mut self, n: u64, value: &Value) {
        let Some(l) = self.listings.get_mut(&n) else {
            return;
        };
        let (cursor, names) = match broker::parse_scan(value) {
            Ok(page) => page,
            Err(e) => {
                let l = self.listings.remove(&n).expect("checked");
                let f = Failure {
                    status: e.status(),
                    message: e.to_string(),
                };
                self.outcomes.push(Outcome::Listed(l.waiter, Err(f)));
                return;
            }
        };
        for name in names {
            if l.names.len() < MAX_LIST_NAMES && name.starts_with(l.prefix.as_str()) {
                l.names.insert(name);
            }
        }
        l.pages += 1;
        if cursor != 0 && l.pages < MAX_SCAN_PAGES && l.names.len() < MAX_LIST_NAMES {
            let prefix = l.prefix.clone();
            let call = Call::Scan {
                listing: n,
                cursor,
                prefix,
            };
            if self.send(call).is_err() {
                let l = self.listings.remove(&n).expect("checked");
                let f = Failure::unavailable("too many Redis commands in flight");
                self.outcomes.push(Outcome::Listed(l.waiter, Err(f)));
            }
            return;
        }
        let after = l.after.clone();
        let mut page: Vec<TopicName> = l
            .names
            .iter()
            .filter(|name| after.as_deref().is_none_or(|a| name.as_str() > a))
            .take(l.limit + 1)
            .filter_map(|name| TopicName::parse(name).ok())
            .collect();
        l.more = page.len() > l.limit;
        page.truncate(l.limit);
        l.names = BTreeSet::new();
        l.left = page.len();
        l.infos = page.iter().map(|t| (t.clone(), None)).collect();
        let waiter = l.waiter;
        if page.is_empty() {
            let l = self.listings.remove(&n).expect("checked");
            self.outcomes
                .push(Outcome::Listed(l.waiter, Ok((Vec::new(), false))));
            return;
        }
        for (i, topic) in page.into_iter().enumerate() {
            let call = Call::Info {
                waiter,
                topic,
                listing: Some((n, i)),
                retried: false,
            };
            if self.send(call).is_err() {
                let l = self.listings.remove(&n).expect("checked");
                let f = Failure::unavailable("too many Redis commands in flight");
                self.outcomes.push(Outcome::Listed(l.waiter, Err(f)));
                return;
            }
        }
    }

    /// One topic of a listing came in; the listing is answered with the
    /// last.
    fn on_listed_info(&mut self, n: u64, i: usize, result: Result<Option<TopicState>, Failure>) {
        let Some(l) = self.listings.get_mut(&n) else {
            return;
        };
        match result {
            Ok(state) => {
                if let Some(slot) = l.infos.get_mut(i) {
                    slot.1 = state;
                }
            }
            Err(f) => {
                let l = self.listings.remove(&n).expect("checked");
                self.outcomes.push(Outcome::Listed(l.waiter, Err(f)));
                return;
            }
        }
        l.left = l.left.saturating_sub(1);
        if l.left == 0 {
            let l = self.listings.remove(&n).expect("checked");
            // A topic deleted between SCAN and its read is left out.
            let page = l
                .infos
                .into_iter()
                .filter_map(|(t, s)| s.map(|s| (t, s)))
                .collect();
            self.outcomes
                .push(Outcome::Listed(l.waiter, Ok((page, l.more))));
        }
    }

    fn command_of(&self, call: &Call) -> Option<broker::Command> {
        Some(match call {
            Call::ScriptLoad | Call::Relay { .. } | Call::Publish { .. } => return None,
            Call::Presence {
                topic,
                counts,
                retried,
            } => broker::presence(
                &self.presence_script,
                topic,
                &self.node_name,
                *counts,
                3 * u64::try_from(self.check_interval.as_millis()).unwrap_or(u64::MAX / 4),
                *retried,
            ),
            Call::Info { topic, retried, .. } => {
                broker::topic_info(&self.info_script, topic, &self.node_name, *retried)
            }
            Call::Scan { cursor, prefix, .. } => broker::scan_topics(*cursor, prefix, SCAN_COUNT),
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
        if mirror_last.is_none() && self.topics.get(topic.as_str()).is_some_and(|f| f.live) {
            // The hub freed the mirror (idle past history_age): follow the
            // topic afresh rather than serve a history of the hub's own.
            self.unfollow(topic);
        }
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
                again: false,
                unsent: false,
                live: false,
                keep_until: until,
                waiters: Vec::new(),
                mux_waiters: Vec::new(),
            },
        );
        self.settle_topic(topic.as_str(), false);
        match self.topics.get(topic.as_str()) {
            Some(f) if f.live => Sync::Live,
            _ => Sync::Pending,
        }
    }

    /// `waiter` tries again once `topic` has been read afresh from Redis
    /// (a position check now), or Redis is down.
    pub fn refresh(&mut self, topic: &TopicName, waiter: Waiter) {
        let Some(f) = self.topics.get_mut(topic.as_str()) else {
            return;
        };
        if f.outstanding {
            f.again = true;
        } else {
            f.follower.handle_resubscribed();
        }
        f.waiters.push(waiter);
        self.settle_topic(topic.as_str(), false);
    }

    /// Asks for one fresh read of `topic` from Redis, for a Socket.IO
    /// subscribe that waits while [`Cluster::reading`].
    pub fn refresh_read(&mut self, topic: &TopicName) {
        let Some(f) = self.topics.get_mut(topic.as_str()) else {
            return;
        };
        if f.outstanding {
            f.again = true;
        } else {
            f.follower.handle_resubscribed();
        }
        self.settle_topic(topic.as_str(), false);
    }

    /// Whether a read of `topic` from Redis is in flight, or wanted after
    /// the one in flight. Each is bounded by `redis_timeout`: past it the
    /// connection fails, and with it every read (a read wanted while the
    /// link is down is not waited for).
    pub fn reading(&self, topic: &TopicName) -> bool {
        let up = self.link == Link::Up;
        self.topics
            .get(topic.as_str())
            .is_some_and(|f| f.outstanding || (f.again && up))
    }

    /// [`Cluster::refresh`] for a `/ws` subscribe command; `false`: it
    /// runs now (too many wait).
    pub fn refresh_mux(&mut self, topic: &TopicName, conn: ConnId, frame: &[u8]) -> bool {
        if !self.wait_mux(topic, conn, frame) {
            return false;
        }
        if let Some(f) = self.topics.get_mut(topic.as_str()) {
            if f.outstanding {
                f.again = true;
            } else {
                f.follower.handle_resubscribed();
            }
        }
        self.settle_topic(topic.as_str(), false);
        true
    }

    /// `waiter` tries again when `topic` is live (or Redis is down).
    pub fn wait_for(&mut self, topic: &TopicName, waiter: Waiter) {
        if let Some(f) = self.topics.get_mut(topic.as_str()) {
            if !f.waiters.contains(&waiter) {
                f.waiters.push(waiter);
            }
        }
    }

    /// A `/ws` subscribe command runs again when `topic` is live (or Redis
    /// is down); `false`: too many wait already.
    pub fn wait_mux(&mut self, topic: &TopicName, conn: ConnId, frame: &[u8]) -> bool {
        match self.topics.get_mut(topic.as_str()) {
            Some(f) if f.mux_waiters.len() < MAX_MUX_WAITERS => {
                f.mux_waiters.push((conn, frame.to_vec()));
                true
            }
            _ => false,
        }
    }

    /// Topics whose linger ran out; the node says for each whether it
    /// still has subscribers ([`Cluster::keep`]) or not
    /// ([`Cluster::unfollow`]).
    pub fn lingering(&self, now: Instant) -> Vec<TopicName> {
        self.topics
            .values()
            .filter(|f| f.keep_until <= now && f.waiters.is_empty() && f.mux_waiters.is_empty())
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
            self.presence(topic, None);
        }
    }

    /// The topics this node follows.
    pub fn followed_topics(&self) -> Vec<TopicName> {
        self.topics.values().map(|f| f.topic.clone()).collect()
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
        if !f.outstanding && !f.unsent {
            // In sync: first time, or after a refresh.
            f.live = true;
            let waiters = std::mem::take(&mut f.waiters);
            if !waiters.is_empty() {
                self.outcomes.push(Outcome::Wake(waiters));
            }
            let mux = std::mem::take(&mut f.mux_waiters);
            if !mux.is_empty() {
                self.outcomes.push(Outcome::MuxRetry(mux));
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
            &self.presence_script,
            &self.info_script,
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
        self.outcomes.push(Outcome::LinkLost);
        let failure = Failure::unavailable("Redis connection lost");
        for (_, call) in self.calls.drain() {
            match call {
                Call::ScriptLoad | Call::Relay { .. } => {}
                // Sent, and never answered: done or not, nobody knows.
                Call::Publish { from, .. } => self.outcomes.push(Outcome::Published(
                    from,
                    Err(Failure::unanswered("publish")),
                )),
                Call::Delete { waiter, topic, .. } => self.outcomes.push(Outcome::Deleted(
                    waiter,
                    topic,
                    Err(Failure::unanswered("delete")),
                )),
                Call::Follow { topic, .. } => {
                    if let Some(f) = self.topics.get_mut(topic.as_str()) {
                        f.outstanding = false;
                        f.unsent = true;
                        f.follower.handle_replay_failed();
                    }
                }
                Call::Info {
                    waiter,
                    topic,
                    listing: None,
                    ..
                } => self
                    .outcomes
                    .push(Outcome::Info(waiter, topic, Err(failure.clone()))),
                Call::Presence { .. } | Call::Info { .. } | Call::Scan { .. } => {}
            }
        }
        for (_, l) in self.listings.drain() {
            self.outcomes
                .push(Outcome::Listed(l.waiter, Err(failure.clone())));
        }
        // Requests waiting for a first sync are answered now (503), not at
        // their deadline.
        let mut waiters = Vec::new();
        let mut mux = Vec::new();
        for f in self.topics.values_mut() {
            waiters.append(&mut f.waiters);
            mux.append(&mut f.mux_waiters);
        }
        if !waiters.is_empty() {
            self.outcomes.push(Outcome::Wake(waiters));
        }
        if !mux.is_empty() {
            self.outcomes.push(Outcome::MuxRetry(mux));
        }
    }

    fn on_reply(&mut self, id: RequestId, value: Value) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        // After a restart or SCRIPT FLUSH Redis has forgotten the scripts:
        // the same call once more as EVAL, which caches it again.
        if broker::is_noscript(&value) {
            if let Call::Publish { from } = call {
                // The scripts are loaded on every connect, before any
                // publish: only SCRIPT FLUSH gets here. Load it again; this
                // one is refused (the payload was not kept to resend).
                if let Ok(id) = self.conn.command(&self.publish_script.load().args()) {
                    self.calls.insert(id, Call::ScriptLoad);
                }
                let f = Failure::unavailable("Redis lost the publish script; try again");
                self.outcomes.push(Outcome::Published(from, Err(f)));
                return;
            }
            let retried = match &mut call {
                Call::Follow { retried, .. }
                | Call::Delete { retried, .. }
                | Call::Presence { retried, .. }
                | Call::Info { retried, .. } => retried,
                Call::ScriptLoad
                | Call::Relay { .. }
                | Call::Scan { .. }
                | Call::Publish { .. } => return,
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
            Call::Relay {
                waiter: Some(waiter),
            } if value == Value::Integer(0) => self.outcomes.push(Outcome::Unheard(waiter)),
            Call::ScriptLoad | Call::Relay { .. } | Call::Presence { .. } => {}
            Call::Scan { listing, .. } => self.on_scan(listing, &value),
            Call::Info {
                waiter,
                topic,
                listing,
                ..
            } => {
                let result = broker::parse_topic_info(&value).map_err(|e| Failure {
                    status: e.status(),
                    message: e.to_string(),
                });
                match listing {
                    Some((n, i)) => self.on_listed_info(n, i, result),
                    None => self.outcomes.push(Outcome::Info(waiter, topic, result)),
                }
            }
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
                    Ok(replay) => {
                        f.follower.handle_replay(replay);
                        if std::mem::take(&mut f.again) {
                            f.follower.handle_resubscribed();
                        }
                    }
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
        if channel == self.relay_channel {
            self.outcomes.push(Outcome::Relayed(payload.to_vec()));
            return;
        }
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
            // Presence: this node's counts of what it follows, for the
            // other nodes' GET /topics.
            let topics = self.ctx.cluster.as_deref().map(Cluster::followed_topics);
            for topic in topics.unwrap_or_default() {
                let counts = super::app::local_topic_info(&self.ctx, &topic).map(|i| {
                    let s = i.subscribers_by_transport;
                    [s.sse, s.ws, s.poll, s.stream, s.socketio]
                });
                let c = self.ctx.cluster.as_mut().expect("checked");
                c.presence(&topic, Some(counts.unwrap_or_default()));
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
            Outcome::Relayed(payload) => self.sio_relayed(&payload, now),
            Outcome::LinkLost => self.carriers_lost(now),
            Outcome::Unheard(w) => {
                if !self.carried_unheard(w, now) {
                    let answer = super::app::BrokerAnswer::TimedOut;
                    self.wake(w, Some(answer), now)
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
                // Messages mirrored before the wake go out first: a poll
                // read again must not be woken by a message it has seen.
                self.run_pending(now);
                for w in waiters {
                    self.wake(w, None, now);
                }
            }
            Outcome::MuxRetry(frames) => {
                self.run_pending(now);
                for (cid, frame) in frames {
                    if let Some(c) = slot_of(&mut self.conns, cid) {
                        super::app::retry_mux(&mut self.ctx, cid, c, &frame, now);
                        self.settle(cid, now);
                    }
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
                    PublishFrom::SocketIo { eio, ack } => {
                        super::sio::answer_publish(&mut self.ctx, eio, ack, result);
                    }
                }
            }
            Outcome::Deleted(w, topic, result) => self.wake(
                w,
                Some(super::app::BrokerAnswer::Deleted(topic, result)),
                now,
            ),
            Outcome::Info(w, topic, result) => {
                self.wake(w, Some(super::app::BrokerAnswer::Info(topic, result)), now)
            }
            Outcome::Listed(w, result) => {
                self.wake(w, Some(super::app::BrokerAnswer::Listed(result)), now)
            }
        }
    }

    /// Every live subscriber of `topic` is replayed from its own cursor
    /// (the mirror's history started afresh: what it missed is a gap), and
    /// every parked poll on it is answered.
    fn restart_topic(&mut self, topic: &TopicName, now: Instant) {
        let subs: Vec<usize> = self.ctx.hub.subscribers(topic).to_vec();
        for s in subs {
            if s >= super::sio::SIO_SUBS {
                super::sio::restart_sub(&mut self.ctx, s);
                continue;
            }
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
    pub(super) fn wake(
        &mut self,
        w: Waiter,
        answer: Option<super::app::BrokerAnswer>,
        now: Instant,
    ) {
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

#[cfg(test)]
mod tests {
    //! The engine in simulated time against a scripted Redis: a few lines
    //! of Redis semantics (the three scripts, SUBSCRIBE, pub/sub) fed
    //! through the upstream API as RESP, so every scenario is exact and
    //! instant — including the ones a real Redis will not stage on cue
    //! (a lost pub/sub message, a restart that loses everything).

    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::time::Duration;

    use super::*;
    use crate::node::sim::Harness;
    use crate::wire::resp::{parse, RespLimits};

    #[derive(Default)]
    struct FakeTopic {
        epoch: Option<u64>,
        seq: u64,
        stream: BTreeMap<u64, [Vec<u8>; 3]>,
    }

    /// Just enough Redis: HELLO, SCRIPT LOAD, (UN)SUBSCRIBE, and our three
    /// scripts (recognised by their SHA1 or text).
    struct FakeRedis {
        up: bool,
        connected: bool,
        /// Live messages are dropped, as pub/sub does during a reconnect.
        lose_live: bool,
        /// Replies are withheld (a Redis that stopped answering).
        mute: bool,
        topics: HashMap<String, FakeTopic>,
        subscribed: BTreeSet<Vec<u8>>,
        input: Vec<u8>,
        /// Pushes caused by other nodes, for the next [`FakeRedis::serve`].
        pending_push: Vec<u8>,
        /// What the node published with `PUBLISH` (its relays), in order.
        published: Vec<(Vec<u8>, Vec<u8>)>,
        /// Channels other (imagined) nodes read: a `PUBLISH` there reaches
        /// one subscriber, anywhere else none.
        others: BTreeSet<Vec<u8>>,
        clock: u64,
        publish: Script,
        follow: Script,
        delete: Script,
    }

    fn bulk(b: impl AsRef<[u8]>) -> Value {
        Value::Bulk(b.as_ref().to_vec())
    }

    fn topic_of_key(key: &[u8]) -> String {
        let s = String::from_utf8_lossy(key);
        let start = s.find('{').unwrap() + 1;
        let end = s.rfind('}').unwrap();
        s[start..end].to_string()
    }

    impl FakeRedis {
        fn new() -> FakeRedis {
            FakeRedis {
                up: true,
                connected: false,
                lose_live: false,
                mute: false,
                topics: HashMap::new(),
                subscribed: BTreeSet::new(),
                input: Vec::new(),
                pending_push: Vec::new(),
                published: Vec::new(),
                others: BTreeSet::new(),
                clock: 1_796_100_000_000_000,
                publish: Script::publish(),
                follow: Script::new(broker::FOLLOW_SCRIPT),
                delete: Script::new(broker::DELETE_SCRIPT),
            }
        }

        fn new_epoch(&mut self) -> u64 {
            self.clock += 1_000;
            self.clock
        }

        /// Redis restarts empty: the node sees its connection close.
        fn restart_empty(&mut self, h: &mut Harness) {
            self.topics.clear();
            self.subscribed.clear();
            self.input.clear();
            self.connected = false;
            h.node.handle_upstream_eof(UPSTREAM, h.now);
            h.settle();
        }

        fn is_script(&self, name: &[u8], script: &Script) -> bool {
            name == script.sha1.as_bytes() || name == script.text.as_bytes()
        }

        /// Answers one command; pushes go out before the reply, as Redis
        /// writes a script's PUBLISH to a subscriber before the script's
        /// own reply on the same connection.
        fn command(&mut self, args: &[Vec<u8>], out: &mut Vec<u8>) {
            let verb = args[0].to_ascii_uppercase();
            let reply = match verb.as_slice() {
                b"HELLO" => Value::Map(vec![(bulk("proto"), Value::Integer(3))]),
                b"SCRIPT" => bulk("sha"),
                b"SUBSCRIBE" | b"UNSUBSCRIBE" => {
                    for ch in &args[1..] {
                        if verb == b"SUBSCRIBE" {
                            self.subscribed.insert(ch.clone());
                        } else {
                            self.subscribed.remove(ch);
                        }
                        let kind = if verb == b"SUBSCRIBE" {
                            "subscribe"
                        } else {
                            "unsubscribe"
                        };
                        let n = self.subscribed.len() as i64;
                        Value::Push(vec![bulk(kind), bulk(ch), Value::Integer(n)]).encode(out);
                    }
                    return;
                }
                b"EVALSHA" | b"EVAL" => self.script(args, out),
                b"PUBLISH" => {
                    self.published.push((args[1].clone(), args[2].clone()));
                    Value::Integer(i64::from(self.others.contains(&args[1])))
                }
                _ => Value::Error(b"ERR unknown".to_vec()),
            };
            reply.encode(out);
        }

        fn script(&mut self, args: &[Vec<u8>], out: &mut Vec<u8>) -> Value {
            let name = args[1].clone();
            let topic = topic_of_key(&args[3]);
            let argv = &args[5..];
            if self.is_script(&name, &self.publish.clone()) {
                if self.topics.get(&topic).is_none_or(|t| t.epoch.is_none()) {
                    let epoch = self.new_epoch();
                    let t = self.topics.entry(topic.clone()).or_default();
                    *t = FakeTopic {
                        epoch: Some(epoch),
                        ..FakeTopic::default()
                    };
                }
                let t = self.topics.get_mut(&topic).unwrap();
                t.seq += 1;
                let (epoch, seq) = (t.epoch.unwrap(), t.seq);
                t.stream
                    .insert(seq, [argv[2].clone(), argv[3].clone(), argv[4].clone()]);
                let max = String::from_utf8_lossy(&argv[1]).parse::<usize>().unwrap();
                while t.stream.len() > max {
                    t.stream.pop_first();
                }
                if self.subscribed.contains(&argv[0]) && !self.lose_live {
                    let mut payload = format!("{epoch}-{seq}\n").into_bytes();
                    for part in [&argv[2], &argv[3]] {
                        payload.extend_from_slice(part);
                        payload.push(b'\n');
                    }
                    payload.extend_from_slice(&argv[4]);
                    Value::Push(vec![bulk("message"), bulk(&argv[0]), bulk(payload)]).encode(out);
                }
                return Value::Array(vec![bulk(epoch.to_string()), bulk(seq.to_string())]);
            }
            if self.is_script(&name, &self.follow.clone()) {
                if self.topics.get(&topic).is_none_or(|t| t.epoch.is_none()) {
                    let epoch = self.new_epoch();
                    self.topics.insert(
                        topic.clone(),
                        FakeTopic {
                            epoch: Some(epoch),
                            ..FakeTopic::default()
                        },
                    );
                    return Value::Array(vec![
                        bulk(epoch.to_string()),
                        Value::Integer(0),
                        Value::Null,
                        Value::Array(vec![]),
                    ]);
                }
                let t = &self.topics[&topic];
                let start = match argv[0].as_slice() {
                    b"-" => 0,
                    n => String::from_utf8_lossy(n).parse().unwrap(),
                };
                let count: usize = String::from_utf8_lossy(&argv[1]).parse().unwrap();
                let entries = t
                    .stream
                    .range(start..)
                    .take(count)
                    .map(|(seq, [e, k, d])| {
                        Value::Array(vec![
                            bulk(format!("{seq}-0")),
                            Value::Array(vec![
                                bulk("e"),
                                bulk(e),
                                bulk("k"),
                                bulk(k),
                                bulk("d"),
                                bulk(d),
                            ]),
                        ])
                    })
                    .collect();
                let oldest = match t.stream.keys().next() {
                    Some(seq) => bulk(format!("{seq}-0")),
                    None => Value::Null,
                };
                return Value::Array(vec![
                    bulk(t.epoch.unwrap().to_string()),
                    bulk(t.seq.to_string()),
                    oldest,
                    Value::Array(entries),
                ]);
            }
            if self.is_script(&name, &self.delete.clone()) {
                let Some(t) = self.topics.get(&topic).filter(|t| t.epoch.is_some()) else {
                    return Value::Null;
                };
                let n = t.stream.len() as i64;
                let epoch = self.new_epoch();
                self.topics.insert(
                    topic,
                    FakeTopic {
                        epoch: Some(epoch),
                        ..FakeTopic::default()
                    },
                );
                if self.subscribed.contains(&argv[0]) {
                    Value::Push(vec![bulk("message"), bulk(&argv[0]), bulk(&argv[1])]).encode(out);
                }
                return Value::Array(vec![Value::Integer(n), bulk(epoch.to_string())]);
            }
            Value::Error(b"NOSCRIPT No matching script".to_vec())
        }

        /// Does what the node asks until nothing is left: connects, reads
        /// its commands, answers them.
        fn serve(&mut self, h: &mut Harness) {
            for _ in 0..1000 {
                let mut busy = false;
                while let Some(action) = h.node.poll_upstream() {
                    busy = true;
                    match action {
                        UpstreamAction::Connect { .. } if self.up => {
                            self.connected = true;
                            self.input.clear();
                            self.subscribed.clear();
                            h.node.handle_upstream_connected(UPSTREAM, h.now);
                        }
                        UpstreamAction::Connect { .. } => h.node.handle_upstream_error(
                            UPSTREAM,
                            std::io::ErrorKind::ConnectionRefused,
                            h.now,
                        ),
                        UpstreamAction::Close { .. } => self.connected = false,
                    }
                }
                if self.connected {
                    if let Some(bytes) = h.node.upstream_transmit(UPSTREAM) {
                        let bytes = bytes.to_vec();
                        h.node.handle_upstream_sent(UPSTREAM, bytes.len(), h.now);
                        self.input.extend_from_slice(&bytes);
                        busy = true;
                    }
                    if !self.mute {
                        let mut out = std::mem::take(&mut self.pending_push);
                        while let Ok(Some((v, n))) = parse(&self.input, &RespLimits::default()) {
                            self.input.drain(..n);
                            let args: Vec<Vec<u8>> = v
                                .as_items()
                                .unwrap()
                                .iter()
                                .map(|a| a.as_bytes().unwrap().to_vec())
                                .collect();
                            self.command(&args, &mut out);
                        }
                        if !out.is_empty() {
                            busy = true;
                            h.node.handle_upstream_read(UPSTREAM, &out, h.now);
                        }
                    }
                }
                h.settle();
                if !busy {
                    return;
                }
            }
            panic!("the node and the fake Redis never settled");
        }

        /// Another node's publish: straight into the fake.
        /// Another node relays `payload` to this one (on its channel).
        fn relay_in(&mut self, h: &Harness, payload: &[u8]) {
            let channel = h.node.ctx.sio.tag.unwrap().channel();
            Value::Push(vec![bulk("message"), bulk(channel), bulk(payload)])
                .encode(&mut self.pending_push);
        }

        fn publish_elsewhere(&mut self, topic: &str, data: &str) -> MessageId {
            let limits = HistoryLimits {
                max_len: 1000,
                max_age_ms: 0,
            };
            let cmd = broker::publish(
                &self.publish,
                topic,
                None,
                broker::PayloadKind::Text,
                data,
                limits,
            );
            let mut out = Vec::new();
            let reply = self.script(&cmd.0, &mut out);
            self.pending_push.extend_from_slice(&out);
            broker::parse_publish(&reply).unwrap()
        }
    }

    fn config() -> Config {
        Config {
            redis: Some("redis://127.0.0.1:6379".into()),
            redis_timeout: Duration::from_millis(500),
            ..Config::default()
        }
    }

    /// A node connected to a fake Redis.
    fn start() -> (Harness, FakeRedis) {
        let mut h = Harness::new(config());
        let mut redis = FakeRedis::new();
        h.advance(Duration::from_millis(1));
        redis.serve(&mut h);
        assert!(h.node.ctx.cluster.as_ref().unwrap().is_up());
        (h, redis)
    }

    /// Time passes with the fake Redis answering all along (as a driver
    /// connects and reads at once), in steps of 50 ms.
    fn pass(h: &mut Harness, redis: &mut FakeRedis, d: Duration) {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() {
            let s = step.min(left);
            h.advance(s);
            redis.serve(h);
            left -= s;
        }
    }

    fn request(h: &mut Harness, redis: &mut FakeRedis, text: &str) -> usize {
        let id = h.connect();
        h.send(id, text.as_bytes());
        redis.serve(h);
        id
    }

    fn post(topic: &str, body: &str) -> String {
        format!(
            "POST /topics/{topic} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn get(target: &str) -> String {
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n")
    }

    fn sse_events(text: &str) -> Vec<(String, String)> {
        // (id or event name, data) of each event after the head.
        let body = text
            .split("\r\n\r\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("\r\n\r\n");
        let mut events = Vec::new();
        for block in body.split("\n\n") {
            let mut key = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    key = v.to_string();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    key = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_string();
                }
            }
            if !data.is_empty() {
                events.push((key, data));
            }
        }
        events
    }

    #[test]
    fn publish_answers_redis_id_and_the_message_comes_back_by_the_mirror() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/t/sse"));
        let c = request(&mut h, &mut redis, &post("t", "hello"));
        let text = h.take_text(c);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let epoch = redis.topics["t"].epoch.unwrap();
        assert!(
            text.ends_with(&format!("{{\"id\":\"{epoch}-1\"}}")),
            "{text}"
        );
        assert_eq!(
            sse_events(&h.text(sub)),
            [(format!("{epoch}-1"), "hello".to_string())]
        );
        // Pipelined behind a publish: answered after it, in order.
        let both = format!("{}{}", post("t", "a"), post("t", "b"));
        let c = request(&mut h, &mut redis, &both);
        let text = h.take_text(c);
        let first = text.find(&format!("{epoch}-2")).unwrap();
        let second = text.find(&format!("{epoch}-3")).unwrap();
        assert!(first < second, "{text}");
        assert_eq!(h.node.stats().published, 3);
    }

    #[test]
    fn publish_while_redis_is_down_is_503_in_bounded_time() {
        let (mut h, mut redis) = start();
        // Redis stops answering: the publish waits redis_timeout, no more,
        // and is told that it may have happened (504: it was sent).
        redis.mute = true;
        let c = request(&mut h, &mut redis, &post("t", "x"));
        assert_eq!(h.text(c), "");
        h.advance(Duration::from_millis(500));
        redis.serve(&mut h);
        let text = h.take_text(c);
        assert!(text.starts_with("HTTP/1.1 504"), "{text}");
        assert!(text.contains("may have happened"), "{text}");
        // Meanwhile the connection failed (its reply timed out too), and
        // reconnecting is refused: a publish now is 503 at once.
        redis.up = false;
        redis.mute = false;
        redis.serve(&mut h);
        let c = request(&mut h, &mut redis, &post("t", "y"));
        assert!(h.take_text(c).starts_with("HTTP/1.1 503"));
        let c = request(&mut h, &mut redis, &get("/healthz"));
        assert!(h.take_text(c).starts_with("HTTP/1.1 503"));
        // Redis back: the backoff retries on its own.
        redis.up = true;
        pass(&mut h, &mut redis, Duration::from_secs(6));
        let c = request(&mut h, &mut redis, &post("t", "z"));
        assert!(h.take_text(c).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn a_subscriber_resumes_from_a_cursor_issued_by_another_node() {
        let (mut h, mut redis) = start();
        let ids: Vec<MessageId> = (1..=3)
            .map(|i| redis.publish_elsewhere("r", &format!("m{i}")))
            .collect();
        let sse = format!(
            "GET /topics/r/sse HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {}\r\n\r\n",
            ids[0]
        );
        let sub = request(&mut h, &mut redis, &sse);
        assert_eq!(
            sse_events(&h.text(sub)),
            [
                (ids[1].to_string(), "m2".to_string()),
                (ids[2].to_string(), "m3".to_string())
            ]
        );
        // Then live: another node's publish arrives by pub/sub.
        let id4 = redis.publish_elsewhere("r", "m4");
        redis.serve(&mut h);
        assert_eq!(sse_events(&h.text(sub)).last().unwrap().0, id4.to_string());
        // A short poll resumes the same way, with no gap.
        let c = request(
            &mut h,
            &mut redis,
            &get(&format!("/topics/r/messages?after={}", ids[2])),
        );
        let text = h.take_text(c);
        assert!(text.contains("\"data\":\"m4\""), "{text}");
        assert!(text.contains("\"gap\":false"), "{text}");
    }

    #[test]
    fn a_hole_in_pub_sub_is_filled_from_the_stream() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/h/sse"));
        redis.publish_elsewhere("h", "m1");
        redis.serve(&mut h);
        // Pub/sub loses m2; m3 shows the hole, and the stream fills it.
        redis.lose_live = true;
        redis.publish_elsewhere("h", "m2");
        redis.lose_live = false;
        redis.publish_elsewhere("h", "m3");
        redis.serve(&mut h);
        let data: Vec<String> = sse_events(&h.text(sub)).into_iter().map(|e| e.1).collect();
        assert_eq!(data, ["m1", "m2", "m3"]);
        // On a quiet topic no later message shows the hole: the periodic
        // position check finds it.
        redis.lose_live = true;
        redis.publish_elsewhere("h", "m4");
        redis.lose_live = false;
        redis.serve(&mut h);
        assert_eq!(sse_events(&h.text(sub)).len(), 3);
        pass(&mut h, &mut redis, Duration::from_secs(6));
        let data: Vec<String> = sse_events(&h.text(sub)).into_iter().map(|e| e.1).collect();
        assert_eq!(data, ["m1", "m2", "m3", "m4"]);
    }

    #[test]
    fn redis_back_empty_is_a_new_epoch_and_a_gap_never_a_stale_replay() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/e/sse"));
        let old = redis.publish_elsewhere("e", "before");
        redis.serve(&mut h);
        redis.restart_empty(&mut h);
        pass(&mut h, &mut redis, Duration::from_secs(6));
        let events = sse_events(&h.text(sub));
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].0, "gap");
        assert!(events[1].1.contains(&old.to_string()), "{events:?}");
        // The new epoch counts from 1, and old cursors are a gap.
        let new = redis.publish_elsewhere("e", "after");
        redis.serve(&mut h);
        assert_ne!(new.epoch, old.epoch);
        assert_eq!(new.seq, 1);
        assert_eq!(
            sse_events(&h.text(sub))[2],
            (new.to_string(), "after".to_string())
        );
        let c = request(
            &mut h,
            &mut redis,
            &get(&format!("/topics/e/messages?after={old}")),
        );
        let text = h.take_text(c);
        assert!(text.contains("\"gap\":true"), "{text}");
        assert!(!text.contains("before"), "{text}");
    }

    #[test]
    fn a_request_for_a_topic_not_in_sync_waits_and_is_bounded() {
        let (mut h, mut redis) = start();
        redis.publish_elsewhere("w", "kept");
        // Redis is slow: the short poll waits for the topic's first sync.
        redis.mute = true;
        let c = request(&mut h, &mut redis, &get("/topics/w/messages"));
        assert_eq!(h.text(c), "");
        redis.mute = false;
        redis.serve(&mut h);
        let text = h.take_text(c);
        assert!(text.contains("\"data\":\"kept\""), "{text}");
        // A topic whose sync never comes: 503 at redis_timeout.
        redis.mute = true;
        let c = request(&mut h, &mut redis, &get("/topics/never/messages"));
        h.advance(Duration::from_millis(500));
        let text = h.take_text(c);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    }

    #[test]
    fn delete_starts_a_new_epoch_and_tells_subscribers_gap() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/d/sse"));
        redis.publish_elsewhere("d", "old");
        redis.serve(&mut h);
        let c = request(
            &mut h,
            &mut redis,
            "DELETE /topics/d HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        let text = h.take_text(c);
        let epoch = redis.topics["d"].epoch.unwrap();
        assert!(
            text.contains(&format!("\"last_id\":\"{epoch}-0\"")),
            "{text}"
        );
        assert!(text.contains("\"dropped_messages\":1"), "{text}");
        let events = sse_events(&h.text(sub));
        assert_eq!(events.last().unwrap().0, "gap", "{events:?}");
        let c = request(
            &mut h,
            &mut redis,
            "DELETE /topics/zz HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        assert!(h.take_text(c).starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn with_redis_unreachable_a_cursor_past_the_mirror_is_503_not_a_false_gap() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/a/sse"));
        let seen = redis.publish_elsewhere("a", "m1");
        redis.serve(&mut h);
        assert_eq!(sse_events(&h.text(sub)).len(), 1, "mirrored");
        // Redis goes away; meanwhile another node hands out the next id.
        h.node.handle_upstream_eof(UPSTREAM, h.now);
        h.settle();
        let newer = seen.with_seq(seen.seq + 1);
        for target in [
            format!("/topics/a/messages?after={newer}"),
            format!("/topics/a/poll?after={newer}&timeout=1"),
            format!("/topics/a/sse?last_event_id={newer}"),
            format!("/topics/a/stream?after={newer}"),
            format!("/messages?topic=a&after=a={newer}"),
            "/topics/a/messages?after=5-5".to_string(),
        ] {
            let c = request(&mut h, &mut redis, &get(&target));
            let text = h.take_text(c);
            // Not "gap" and the whole history again: try again later.
            assert!(text.starts_with("HTTP/1.1 503 "), "{target}: {text}");
            assert!(text.contains("Retry-After: 1"), "{target}: {text}");
        }
        // A cursor the mirror covers is served from it.
        let c = request(
            &mut h,
            &mut redis,
            &get(&format!("/topics/a/messages?after={seen}")),
        );
        let text = h.take_text(c);
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert!(text.contains("\"gap\":false"), "{text}");
    }

    #[test]
    fn a_cursor_just_issued_by_another_node_is_not_a_gap() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/a/sse"));
        // Another node published; its pub/sub message is still on the way
        // when a client arrives here with the id it was given.
        let id = redis.publish_elsewhere("a", "m1");
        let c = h.connect();
        h.send(c, get(&format!("/topics/a/messages?after={id}")).as_bytes());
        assert_eq!(h.text(c), "", "waits for a fresh look at Redis");
        redis.serve(&mut h);
        let text = h.take_text(c);
        assert!(text.contains("\"messages\":[]"), "{text}");
        assert!(text.contains("\"gap\":false"), "{text}");
        assert_eq!(sse_events(&h.text(sub)).len(), 1);
        // A cursor of a history Redis never had is still a gap.
        let c = request(&mut h, &mut redis, &get("/topics/a/messages?after=5-5"));
        let text = h.take_text(c);
        assert!(text.contains("\"gap\":true"), "{text}");
        assert!(text.contains("m1"), "{text}");
    }

    fn ws_text(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        crate::wire::ws_frame::write_masked_frame(
            &mut out,
            true,
            crate::wire::ws_frame::Opcode::Text,
            text.as_bytes(),
            [1, 2, 3, 4],
        );
        out
    }

    #[test]
    fn a_ws_subscribe_waits_for_its_topic_and_a_ws_publish_is_acked_with_redis_id() {
        let (mut h, mut redis) = start();
        let old = redis.publish_elsewhere("m", "kept");
        let ws = request(
            &mut h,
            &mut redis,
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(h.take_text(ws).starts_with("HTTP/1.1 101 "));
        // Redis is slow: the subscribe's ack waits for the topic's sync,
        // then names Redis's last id, and the replay follows.
        redis.mute = true;
        h.send(
            ws,
            &ws_text(r#"{"type":"subscribe","topic":"m","after":"earliest","ref":1}"#),
        );
        redis.serve(&mut h);
        assert_eq!(h.text(ws), "");
        redis.mute = false;
        redis.serve(&mut h);
        let text = h.take_text(ws);
        assert!(text.contains(&format!("\"last_id\":\"{old}\"")), "{text}");
        assert!(text.contains("kept"), "{text}");
        // A publish is acked with the id Redis gave, and comes back.
        h.send(
            ws,
            &ws_text(r#"{"type":"publish","topic":"m","data":"new","ref":2}"#),
        );
        redis.serve(&mut h);
        let text = h.take_text(ws);
        let new = MessageId {
            epoch: old.epoch,
            seq: 2,
        };
        assert!(
            text.contains(&format!("\"ref\":2,\"id\":\"{new}\"")),
            "{text}"
        );
        assert!(text.contains("\"data\":\"new\""), "{text}");
        // Redis down: a publish is refused at once, with its ref.
        redis.restart_empty(&mut h);
        redis.up = false;
        h.send(
            ws,
            &ws_text(r#"{"type":"publish","topic":"m","data":"x","ref":3}"#),
        );
        let text = h.take_text(ws);
        assert!(text.contains("\"status\":503"), "{text}");
    }

    fn start_with(cfg: Config) -> (Harness, FakeRedis) {
        let mut h = Harness::new(cfg);
        let mut redis = FakeRedis::new();
        h.advance(Duration::from_millis(1));
        redis.serve(&mut h);
        (h, redis)
    }

    #[test]
    fn a_recovering_socket_rejoins_its_topics_once_they_are_in_sync() {
        let (mut h, mut redis) = start_with(Config {
            sio_recovery: true,
            ..config()
        });
        let c = sio_socket(&mut h, &mut redis);
        h.send(c, &ws_text(r#"421["subscribe","v"]"#));
        redis.serve(&mut h);
        h.take_text(c);
        let first = redis.publish_elsewhere("v", "one");
        redis.serve(&mut h);
        let pid = "AAAAAAAAAAAAAAAAAAAAAAAAAAA";
        h.eof(c);
        pass(&mut h, &mut redis, Duration::from_secs(40));
        assert_eq!(h.node.ctx.cluster.as_ref().unwrap().followed(), 0);
        // Published while this node did not follow the topic: its mirror
        // does not have it. A socket that comes back here with its offset
        // while Redis is slow gets nothing from the unsynced mirror...
        let second = redis.publish_elsewhere("v", "two");
        let d = request(
            &mut h,
            &mut redis,
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        h.take_text(d);
        redis.mute = true;
        h.send(
            d,
            &ws_text(&format!(r#"40{{"pid":"{pid}","offset":"v={first}"}}"#)),
        );
        redis.serve(&mut h);
        let text = h.take_text(d);
        assert!(text.contains("40{\"sid\""), "{text}");
        assert!(!text.contains("\"two\""), "{text}");
        // ...and what it missed once the topic is in sync.
        redis.mute = false;
        redis.serve(&mut h);
        let text = h.take_text(d);
        assert!(
            text.contains(&format!(
                r#""two",{{"topic":"v","id":"{second}"}},"v={second}"]"#
            )),
            "{text}"
        );
        assert!(!text.contains("\"one\""), "{text}");
    }

    /// A Socket.IO socket on WebSocket, joined to namespace `/`.
    fn sio_socket(h: &mut Harness, redis: &mut FakeRedis) -> usize {
        let c = request(
            h,
            redis,
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(h.take_text(c).starts_with("HTTP/1.1 101 "));
        h.send(c, &ws_text("40"));
        assert!(h.take_text(c).contains("40{\"sid\""));
        c
    }

    #[test]
    fn a_socketio_subscribe_waits_for_its_topic_while_the_socket_flows() {
        let (mut h, mut redis) = start();
        let old = redis.publish_elsewhere("s", "kept");
        let c = sio_socket(&mut h, &mut redis);
        // Redis is slow: the subscribe's ack waits for the topic's sync...
        redis.mute = true;
        h.send(c, &ws_text(r#"421["subscribe","s",{"after":"earliest"}]"#));
        redis.serve(&mut h);
        assert_eq!(h.text(c), "");
        // ...while the socket's other packets are answered.
        h.send(c, &ws_text(r#"422["nonsense"]"#));
        let text = h.take_text(c);
        assert!(text.contains(r#"432[{"error":{"status":404"#), "{text}");
        redis.mute = false;
        redis.serve(&mut h);
        let text = h.take_text(c);
        let replay = text.find(&format!("\"kept\",{{\"topic\":\"s\",\"id\":\"{old}\"}}"));
        let ack = text.find(&format!("431[{{\"last_id\":\"{old}\",\"gap\":false}}]"));
        assert!(replay.is_some() && ack.is_some(), "{text}");
        assert!(replay < ack, "the replay comes before the ack: {text}");
        // Then live, by the mirror.
        let next = redis.publish_elsewhere("s", "live");
        redis.serve(&mut h);
        let text = h.take_text(c);
        assert!(
            text.contains(&format!("\"live\",{{\"topic\":\"s\",\"id\":\"{next}\"}}")),
            "{text}"
        );
        // Presence counts the socket, and the topic stays followed.
        let t = TopicName::parse("s").unwrap();
        assert_eq!(
            h.node
                .hub()
                .topic_info(&t)
                .unwrap()
                .subscribers_by_transport
                .socketio,
            1
        );
    }

    #[test]
    fn a_socketio_subscribe_whose_topic_never_syncs_is_refused_at_redis_timeout() {
        let (mut h, mut redis) = start();
        let c = sio_socket(&mut h, &mut redis);
        redis.mute = true;
        h.send(c, &ws_text(r#"421["subscribe","never"]"#));
        redis.serve(&mut h);
        h.advance(Duration::from_millis(499));
        assert_eq!(h.text(c), "");
        h.advance(Duration::from_millis(1));
        let text = h.take_text(c);
        assert!(text.contains(r#"431[{"error":{"status":503"#), "{text}");
        let t = TopicName::parse("never").unwrap();
        assert!(h.node.hub().subscribers(&t).is_empty());
    }

    #[test]
    fn an_unsubscribe_overtakes_a_socketio_subscribe_that_waits() {
        let (mut h, mut redis) = start();
        let c = sio_socket(&mut h, &mut redis);
        redis.mute = true;
        h.send(c, &ws_text(r#"421["subscribe","o"]"#));
        h.send(c, &ws_text(r#"422["unsubscribe","o"]"#));
        let text = h.take_text(c);
        let refused = text.find(r#"431[{"error":{"status":409"#);
        let acked = text.find(r#"432[{"topic":"o"}]"#);
        assert!(refused.is_some() && refused < acked, "{text}");
        redis.mute = false;
        redis.serve(&mut h);
        assert_eq!(h.take_text(c), "");
        let t = TopicName::parse("o").unwrap();
        assert!(h.node.hub().subscribers(&t).is_empty());
    }

    #[test]
    fn a_socketio_publish_is_acked_with_redis_id_and_comes_back_once() {
        let (mut h, mut redis) = start();
        let c = sio_socket(&mut h, &mut redis);
        h.send(c, &ws_text(r#"421["subscribe","p"]"#));
        redis.serve(&mut h);
        assert!(h.take_text(c).contains("431[{\"last_id\""));
        h.send(c, &ws_text(r#"422["publish","p","hi",{"event":"note"}]"#));
        redis.serve(&mut h);
        let text = h.take_text(c);
        let epoch = redis.topics["p"].epoch.unwrap();
        let id = format!("{epoch}-1");
        assert!(
            text.contains(&format!("432[{{\"id\":\"{id}\"}}]")),
            "{text}"
        );
        let event = format!("[\"note\",\"hi\",{{\"topic\":\"p\",\"id\":\"{id}\"}}]");
        assert_eq!(text.matches(&event).count(), 1, "{text}");
        assert_eq!(h.node.stats().published, 1);
        // An HTTP subscriber on the same node sees the same id.
        let sse = request(
            &mut h,
            &mut redis,
            &get("/topics/p/sse?last_event_id=earliest"),
        );
        assert!(h
            .text(sse)
            .contains(&format!("id: {id}\nevent: note\ndata: hi\n")));
        // Redis down: refused at once, with the ack.
        redis.restart_empty(&mut h);
        redis.up = false;
        h.send(c, &ws_text(r#"423["publish","p","x"]"#));
        let text = h.take_text(c);
        assert!(text.contains(r#"433[{"error":{"status":503"#), "{text}");
    }

    #[test]
    fn a_socketio_cursor_from_another_node_is_read_afresh_not_a_gap() {
        let (mut h, mut redis) = start();
        let c = sio_socket(&mut h, &mut redis);
        h.send(c, &ws_text(r#"421["subscribe","a"]"#));
        redis.serve(&mut h);
        h.take_text(c);
        let d = sio_socket(&mut h, &mut redis);
        // Another node published m1 and m2; their pub/sub messages are
        // still on the way when a client brings m1's id.
        let first = redis.publish_elsewhere("a", "m1");
        let second = redis.publish_elsewhere("a", "m2");
        let sub = format!(r#"425["subscribe","a",{{"after":"{first}"}}]"#);
        h.send(d, &ws_text(&sub));
        assert_eq!(h.text(d), "", "waits for a fresh look at Redis");
        redis.serve(&mut h);
        let text = h.take_text(d);
        assert!(!text.contains("\"m1\""), "{text}");
        assert_eq!(text.matches("\"m2\"").count(), 1, "{text}");
        assert!(
            text.contains(&format!("435[{{\"last_id\":\"{second}\",\"gap\":false}}]")),
            "{text}"
        );
        // The first socket got both, once each.
        let text = h.take_text(c);
        assert_eq!(text.matches("\"m1\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"m2\"").count(), 1, "{text}");
    }

    #[test]
    fn a_socketio_subscribe_waiting_for_a_fresh_read_is_answered_when_redis_fails() {
        let (mut h, mut redis) = start();
        let c = sio_socket(&mut h, &mut redis);
        h.send(c, &ws_text(r#"421["subscribe","f"]"#));
        redis.serve(&mut h);
        h.take_text(c);
        let id = redis.publish_elsewhere("f", "m1");
        // Redis goes silent with the fresh read in flight, and again
        // wanted after it (a second such subscribe).
        redis.mute = true;
        let sub = format!(r#"42{{n}}["subscribe","f",{{"after":"{id}"}}]"#);
        h.send(c, &ws_text(&sub.replace("{n}", "2")));
        h.send(c, &ws_text(&sub.replace("{n}", "3")));
        redis.serve(&mut h);
        assert_eq!(h.text(c), "");
        // The read times out with the connection: both are answered, and
        // since the mirror never saw that id, with a refusal to try again
        // (not a false gap and the history again).
        h.advance(Duration::from_millis(500));
        let text = h.take_text(c);
        for ack in ["432", "433"] {
            let refusal = format!(r#"{ack}[{{"error":{{"status":503,"#);
            assert!(text.contains(&refusal), "{text}");
        }
    }

    #[test]
    fn a_topic_a_socket_left_is_unfollowed_after_the_linger() {
        // Pings far apart: this client does not answer them.
        let (mut h, mut redis) = start_with(Config {
            sio_ping_interval: Duration::from_secs(3600),
            ..config()
        });
        let c = sio_socket(&mut h, &mut redis);
        h.send(c, &ws_text(r#"42["subscribe","l"]"#));
        h.send(c, &ws_text(r#"42["subscribe","k"]"#));
        redis.serve(&mut h);
        assert_eq!(h.node.ctx.cluster.as_ref().unwrap().followed(), 2);
        pass(&mut h, &mut redis, Duration::from_secs(40));
        assert_eq!(
            h.node.ctx.cluster.as_ref().unwrap().followed(),
            2,
            "subscribed"
        );
        h.send(c, &ws_text(r#"42["unsubscribe","l"]"#));
        pass(&mut h, &mut redis, Duration::from_secs(40));
        let followed = h.node.ctx.cluster.as_ref().unwrap().followed_topics();
        assert_eq!(followed, [TopicName::parse("k").unwrap()]);
        // The socket ends: its last topic goes too.
        h.eof(c);
        pass(&mut h, &mut redis, Duration::from_secs(40));
        assert_eq!(h.node.ctx.cluster.as_ref().unwrap().followed(), 0);
    }

    #[test]
    fn a_topic_is_followed_while_subscribed_plus_its_linger_then_read_on_from_the_mirror() {
        let (mut h, mut redis) = start();
        let sub = request(&mut h, &mut redis, &get("/topics/l/sse"));
        redis.publish_elsewhere("l", "m1");
        redis.serve(&mut h);
        assert!(redis.subscribed.contains(b"pushwire:{l}:live".as_slice()));
        // The subscriber leaves; the topic is kept for the linger (30 s).
        h.eof(sub);
        pass(&mut h, &mut redis, Duration::from_secs(20));
        assert_eq!(h.node.ctx.cluster.as_ref().unwrap().followed(), 1);
        pass(&mut h, &mut redis, Duration::from_secs(20));
        assert_eq!(h.node.ctx.cluster.as_ref().unwrap().followed(), 0);
        // Only the node's own relay channel is left.
        assert!(
            redis
                .subscribed
                .iter()
                .all(|c| c.starts_with(b"pushwire:node:")),
            "its channel is unsubscribed"
        );
        // Published meanwhile: a new subscriber here gets it from the
        // stream, read on after what the mirror already has.
        let m2 = redis.publish_elsewhere("l", "m2");
        let c = request(
            &mut h,
            &mut redis,
            &get("/topics/l/messages?after=earliest"),
        );
        let text = h.take_text(c);
        assert!(text.contains("m1") && text.contains("m2"), "{text}");
        assert!(text.contains(&format!("\"last_id\":\"{m2}\"")), "{text}");
        assert!(text.contains("\"gap\":false"), "{text}");
    }

    // ---- polling sessions relayed between nodes ----------------------------

    const OTHER: &str = "OtherNd1";

    /// The query of a polling request for a session of node `OTHER`.
    fn foreign_query() -> String {
        format!("EIO=4&transport=polling&sid={OTHER}0123456789abcdefghi")
    }

    fn relays_to(redis: &FakeRedis, tag: &str) -> Vec<String> {
        let channel = format!("pushwire:node:{tag}").into_bytes();
        redis
            .published
            .iter()
            .filter(|(c, _)| *c == channel)
            .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    /// Engine.IO's answer for a session that is gone.
    fn assert_unknown_sid(text: &str) {
        assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
        assert!(text.ends_with(r#"{"code":1,"message":"Session ID unknown"}"#));
    }

    #[test]
    fn a_request_for_another_nodes_session_is_relayed_and_its_answer_written() {
        let (mut h, mut redis) = start();
        redis
            .others
            .insert(format!("pushwire:node:{OTHER}").into_bytes());
        let own = h.node.ctx.sio.tag.unwrap();
        let q = foreign_query();
        let c = request(
            &mut h,
            &mut redis,
            &format!("POST /socket.io/?{q} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n40"),
        );
        let sent = relays_to(&redis, OTHER);
        assert_eq!(sent.len(), 1);
        let head = format!("Q {} {c} ", own.as_str());
        assert!(sent[0].starts_with(&head), "{sent:?}");
        assert!(sent[0].ends_with(&format!(" s POST\n{q}\n40")), "{sent:?}");
        assert_eq!(h.take_text(c), "", "it waits for the owner");
        // The owner's answer, with the waiter's ticket as it was sent.
        let ticket = sent[0].split(' ').nth(3).unwrap().to_string();
        redis.relay_in(&h, format!("A {c} {ticket} 200\ntext/html\nok").as_bytes());
        redis.serve(&mut h);
        let text = h.take_text(c);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/html\r\n") && text.ends_with("\r\n\r\nok"));
        // An answer for a wait that is over (a stale ticket) is dropped.
        redis.relay_in(&h, format!("A {c} {ticket} 200\ntext/html\nok").as_bytes());
        redis.serve(&mut h);
        assert_eq!(h.take_text(c), "");
        assert_eq!(h.node.stats().sio_relayed, 1);
    }

    #[test]
    fn a_relayed_get_waits_its_ping_interval_plus_redis_timeout_and_no_more() {
        let (mut h, mut redis) = start();
        redis
            .others
            .insert(format!("pushwire:node:{OTHER}").into_bytes());
        let c = request(
            &mut h,
            &mut redis,
            &get(&format!("/socket.io/?{}", foreign_query())),
        );
        let started = h.now;
        let wait = h.node.config().sio_ping_interval + h.node.config().redis_timeout;
        pass(&mut h, &mut redis, wait - Duration::from_millis(50));
        assert_eq!(h.take_text(c), "", "still within its wait");
        pass(&mut h, &mut redis, Duration::from_millis(50));
        assert_eq!(h.now - started, wait);
        assert_unknown_sid(&h.take_text(c));
    }

    #[test]
    fn a_request_for_a_node_nobody_reads_is_unknown_at_once() {
        let (mut h, mut redis) = start();
        // No node reads OTHER's channel: PUBLISH reaches nobody.
        let c = request(
            &mut h,
            &mut redis,
            &get(&format!("/socket.io/?{}", foreign_query())),
        );
        assert_eq!(relays_to(&redis, OTHER).len(), 1);
        assert_unknown_sid(&h.take_text(c));
    }

    /// A polling session opened on this node; returns its sid.
    fn own_session(h: &mut Harness, redis: &mut FakeRedis) -> String {
        let c = request(h, redis, &get("/socket.io/?EIO=4&transport=polling"));
        let text = h.take_text(c);
        text.split("\"sid\":\"").nth(1).unwrap()[..27].to_string()
    }

    #[test]
    fn a_get_relayed_to_the_owner_parks_and_its_ping_goes_back_on_time() {
        let (mut h, mut redis) = start();
        // A session of this node, opened and connected here.
        let sid = own_session(&mut h, &mut redis);
        assert_eq!(
            &sid[..8],
            h.node.ctx.sio.tag.unwrap().as_str(),
            "its tag starts it"
        );
        let opened = h.now;
        let q = format!("EIO=4&transport=polling&sid={sid}");
        // Another node relays a POST (answered at once) and a GET (parked).
        redis.relay_in(&h, format!("Q {OTHER} 7 1 s POST\n{q}\n40").as_bytes());
        redis.serve(&mut h);
        assert_eq!(relays_to(&redis, OTHER), ["A 7 1 200\ntext/html\nok"]);
        redis.relay_in(&h, format!("Q {OTHER} 7 2 s GET\n{q}\n").as_bytes());
        redis.serve(&mut h);
        let back = relays_to(&redis, OTHER);
        assert_eq!(back.len(), 2);
        assert!(back[1].starts_with("A 7 2 200\ntext/plain; charset=UTF-8\n40{\"sid\":"));
        redis.relay_in(&h, format!("Q {OTHER} 7 3 s GET\n{q}\n").as_bytes());
        redis.serve(&mut h);
        assert_eq!(
            relays_to(&redis, OTHER).len(),
            2,
            "nothing to send: it waits"
        );
        // The first ping, at exactly the ping interval, answers it.
        let ping = h.node.config().sio_ping_interval;
        let left = ping - (h.now - opened) - Duration::from_millis(50);
        pass(&mut h, &mut redis, left);
        assert_eq!(relays_to(&redis, OTHER).len(), 2);
        pass(&mut h, &mut redis, Duration::from_millis(50));
        assert_eq!(
            relays_to(&redis, OTHER).last().unwrap(),
            "A 7 3 200\ntext/plain; charset=UTF-8\n2"
        );
        assert!(h.node.ctx.sio.remote_polls.is_empty());
        // A relayed message that does not parse is logged, not acted on.
        redis.relay_in(&h, b"Z nonsense\n");
        redis.serve(&mut h);
        assert_eq!(relays_to(&redis, OTHER).len(), 3);
    }

    // ---- WebSockets carried for the node that holds their session ----------

    fn upgrade(target: &str) -> String {
        format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    }

    /// An unmasked server frame of `text` (under 126 bytes).
    fn server_text(text: &str) -> Vec<u8> {
        let mut f = vec![0x81, text.len() as u8];
        f.extend_from_slice(text.as_bytes());
        f
    }

    #[test]
    fn a_websocket_for_another_nodes_session_is_carried_both_ways() {
        let (mut h, mut redis) = start();
        redis
            .others
            .insert(format!("pushwire:node:{OTHER}").into_bytes());
        let own = h.node.ctx.sio.tag.unwrap();
        let own = own.as_str();
        let sid = format!("{OTHER}0123456789abcdefghi");
        let q = format!("EIO=4&transport=websocket&sid={sid}");
        let c = request(&mut h, &mut redis, &upgrade(&format!("/socket.io/?{q}")));
        assert!(h.take_text(c).starts_with("HTTP/1.1 101 "));
        let sent = relays_to(&redis, OTHER);
        let ticket: u64 = sent[0].split(' ').nth(3).unwrap().parse().unwrap();
        assert_eq!(sent, [format!("O {own} {c} {ticket} s\n{q}\n")]);
        assert_eq!(h.node.stats().sio_carried, 1);
        // The client's messages go to the owner as they came...
        h.send(c, &ws_text("2probe"));
        redis.serve(&mut h);
        let last = relays_to(&redis, OTHER).pop().unwrap();
        assert_eq!(last, format!("M {own} {c} {ticket} t\n{sid}\n2probe"));
        // ...and the owner's are written to the client.
        redis.relay_in(&h, format!("W {c} {ticket} t 0\n3probe").as_bytes());
        redis.serve(&mut h);
        assert_eq!(h.clients[&c].received, server_text("3probe"));
        h.take_text(c);
        // A message for an earlier WebSocket on this connection id is not
        // this one's.
        redis.relay_in(&h, format!("W {c} {} t 0\n4stale", ticket + 1).as_bytes());
        redis.serve(&mut h);
        assert_eq!(h.take_text(c), "");
        // Asked to, it tells the owner once what it was sent is written
        // out: at once when the client reads...
        let before = relays_to(&redis, OTHER).len();
        redis.relay_in(&h, format!("W {c} {ticket} t 1\n4one").as_bytes());
        redis.serve(&mut h);
        assert_eq!(h.clients[&c].received, server_text("4one"));
        let sent = relays_to(&redis, OTHER);
        assert_eq!(sent.len(), before + 1);
        assert_eq!(sent[before], format!("D {own} {c} {ticket}\n{sid}\n"));
        // ...or when it has read it all, and only once.
        h.clients.get_mut(&c).unwrap().window = 0;
        redis.relay_in(&h, format!("W {c} {ticket} t 1\n4two").as_bytes());
        redis.relay_in(&h, format!("W {c} {ticket} t 0\n4three").as_bytes());
        redis.serve(&mut h);
        assert_eq!(
            relays_to(&redis, OTHER).len(),
            before + 1,
            "not written yet"
        );
        h.open_window(c, 3);
        redis.serve(&mut h);
        assert_eq!(
            relays_to(&redis, OTHER).len(),
            before + 1,
            "not all written"
        );
        h.open_window(c, 100);
        redis.serve(&mut h);
        let sent = relays_to(&redis, OTHER);
        assert_eq!(sent.len(), before + 2);
        assert_eq!(sent[before + 1], format!("D {own} {c} {ticket}\n{sid}\n"));
        h.take_text(c);
        // The owner closes it: the close frame, and the edge says it is
        // gone.
        redis.relay_in(&h, format!("C {c} {ticket} 1000\n").as_bytes());
        redis.serve(&mut h);
        assert_eq!(h.clients[&c].received, [0x88, 2, 0x03, 0xe8]);
        let last = relays_to(&redis, OTHER).pop().unwrap();
        assert_eq!(last, format!("X {own} {c} {ticket}\n{sid}\n"));
    }

    #[test]
    fn a_carried_websocket_whose_owner_nobody_reads_is_closed_at_once() {
        let (mut h, mut redis) = start();
        let q = format!("EIO=4&transport=websocket&sid={OTHER}0123456789abcdefghi");
        let c = request(&mut h, &mut redis, &upgrade(&format!("/socket.io/?{q}")));
        let bytes = std::mem::take(&mut h.clients.get_mut(&c).unwrap().received);
        assert!(bytes.starts_with(b"HTTP/1.1 101 "));
        // RFC 6455 §7.4.1: 1008 (0x03f0), and the reason.
        assert!(
            bytes.ends_with(b"\x88\x14\x03\xf0Session ID unknown"),
            "{bytes:?}"
        );
    }

    #[test]
    fn a_carried_websocket_whose_owner_has_gone_is_closed_at_its_next_message() {
        let (mut h, mut redis) = start();
        let owner = format!("pushwire:node:{OTHER}").into_bytes();
        redis.others.insert(owner.clone());
        let q = format!("EIO=4&transport=websocket&sid={OTHER}0123456789abcdefghi");
        let c = request(&mut h, &mut redis, &upgrade(&format!("/socket.io/?{q}")));
        assert!(h.take_text(c).starts_with("HTTP/1.1 101 "));
        h.send(c, &ws_text("2probe"));
        redis.serve(&mut h);
        assert_eq!(h.take_text(c), "", "heard: still open");
        // The owner stops reading its channel (it died): the next message
        // the client sends reaches nobody, and the WebSocket is closed
        // then, not at the client's ping timeout. RFC 6455 §7.4.1: 1008.
        redis.others.remove(&owner);
        h.send(c, &ws_text("42[\"x\"]"));
        redis.serve(&mut h);
        let bytes = std::mem::take(&mut h.clients.get_mut(&c).unwrap().received);
        assert_eq!(bytes, b"\x88\x14\x03\xf0Session ID unknown");
    }

    #[test]
    fn a_client_that_closes_a_carried_websocket_is_told_to_the_owner() {
        let (mut h, mut redis) = start();
        redis
            .others
            .insert(format!("pushwire:node:{OTHER}").into_bytes());
        let sid = format!("{OTHER}0123456789abcdefghi");
        let q = format!("EIO=4&transport=websocket&sid={sid}");
        let c = request(&mut h, &mut redis, &upgrade(&format!("/socket.io/?{q}")));
        let ticket = relays_to(&redis, OTHER)[0]
            .split(' ')
            .nth(3)
            .unwrap()
            .to_string();
        h.eof(c);
        redis.serve(&mut h);
        let own = h.node.ctx.sio.tag.unwrap();
        let last = relays_to(&redis, OTHER).pop().unwrap();
        assert_eq!(last, format!("X {} {c} {ticket}\n{sid}\n", own.as_str()));
    }

    /// A session of this node, on WebSocket through another node's
    /// carrier (`OTHER`, connection 7, ticket 1); returns its sid.
    fn carried_session(h: &mut Harness, redis: &mut FakeRedis) -> String {
        let sid = own_session(h, redis);
        let q = format!("EIO=4&transport=websocket&sid={sid}");
        for relay in [
            format!("O {OTHER} 7 1 s\n{q}\n"),
            format!("M {OTHER} 7 1 t\n{sid}\n2probe"),
            format!("M {OTHER} 7 1 t\n{sid}\n5"),
            format!("M {OTHER} 7 1 t\n{sid}\n40"),
        ] {
            redis.relay_in(h, relay.as_bytes());
            redis.serve(h);
        }
        let sent = relays_to(redis, OTHER);
        assert!(sent[0] == "W 7 1 t 0\n3probe", "{sent:?}");
        assert!(sent[1].starts_with("W 7 1 t 0\n40{\"sid\""), "{sent:?}");
        redis.published.clear();
        sid
    }

    #[test]
    fn a_replay_over_a_carried_websocket_goes_on_as_the_edge_drains() {
        let (mut h, mut redis) = start_with(Config {
            subscriber_queue_bytes: 16 * 1024,
            ..config()
        });
        let pad = "x".repeat(1000);
        for i in 0..40 {
            redis.publish_elsewhere("w", &format!("p{i}-{pad}"));
        }
        let sid = carried_session(&mut h, &mut redis);
        let subscribe = r#"421["subscribe","w",{"after":"earliest"}]"#;
        redis.relay_in(
            &h,
            format!("M {OTHER} 7 1 t\n{sid}\n{subscribe}").as_bytes(),
        );
        redis.serve(&mut h);
        // Each batch (half the queue cap) asks to hear that it was
        // written out, and the next waits for that; the last does not ask.
        let mut got = Vec::new();
        let mut acked = false;
        let mut batches = 0;
        loop {
            let sent = std::mem::take(&mut redis.published);
            let sent: Vec<String> = sent
                .iter()
                .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
                .collect();
            assert!(!sent.is_empty(), "the replay stalled after {got:?}");
            batches += 1;
            for w in &sent {
                let (_, packet) = w.split_once('\n').unwrap();
                if packet.starts_with("431[") {
                    acked = true;
                } else {
                    let m = packet.strip_prefix("42[\"message\",\"").unwrap();
                    got.push(m.split('-').next().unwrap().to_string());
                }
            }
            let asks = sent
                .last()
                .unwrap()
                .split('\n')
                .next()
                .unwrap()
                .ends_with(" 1");
            assert!(asks, "batch {batches} asks");
            let before = got.len();
            pass(&mut h, &mut redis, Duration::from_millis(10));
            assert!(redis.published.is_empty(), "waits for the drain");
            assert_eq!(got.len(), before);
            redis.relay_in(&h, format!("D {OTHER} 7 1\n{sid}\n").as_bytes());
            redis.serve(&mut h);
            if got.len() == 40 {
                break;
            }
        }
        assert!(acked);
        // Caught up: live messages follow, and no longer ask.
        redis.publish_elsewhere("w", "live");
        redis.serve(&mut h);
        let sent = relays_to(&redis, OTHER);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(
            sent[0].starts_with("W 7 1 t 0\n42[\"message\",\"live\""),
            "{sent:?}"
        );
        let want: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        assert_eq!(got, want);
        assert!(batches >= 4, "{batches} batches for 40 kB at 8 kB each");
    }

    #[test]
    fn losing_redis_closes_carried_websockets_and_ends_carried_sessions() {
        let (mut h, mut redis) = start();
        redis
            .others
            .insert(format!("pushwire:node:{OTHER}").into_bytes());
        // One session of ours carried elsewhere, one of OTHER's carried here.
        let sid = carried_session(&mut h, &mut redis);
        let q = format!("EIO=4&transport=websocket&sid={OTHER}0123456789abcdefghi");
        let c = request(&mut h, &mut redis, &upgrade(&format!("/socket.io/?{q}")));
        assert!(h.take_text(c).starts_with("HTTP/1.1 101 "));
        assert_eq!(
            h.node.ctx.sio.counts(),
            (0, 1, 1),
            "on WebSocket, connected"
        );
        h.node.handle_upstream_eof(UPSTREAM, h.now);
        h.settle();
        // RFC 6455 §7.4.1: 1011 (0x03f3).
        let bytes = std::mem::take(&mut h.clients.get_mut(&c).unwrap().received);
        assert!(
            bytes.starts_with(b"\x88\x17\x03\xf3Redis connection lost"),
            "{bytes:?}"
        );
        assert!(h.node.ctx.sio.carried.is_empty());
        assert_eq!(h.node.ctx.sio.counts(), (0, 0, 0), "{sid}: ended");
    }

    #[test]
    fn the_owner_runs_the_upgrade_of_a_websocket_another_node_carries() {
        let (mut h, mut redis) = start();
        // A polling session of this node, connected, with a GET parked.
        let sid = own_session(&mut h, &mut redis);
        let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let body = "40";
        let connect = format!(
            "POST {poll} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        request(&mut h, &mut redis, &connect);
        let g = request(&mut h, &mut redis, &get(&poll));
        assert!(h.take_text(g).contains("40{\"sid\""));
        h.send(g, get(&poll).as_bytes());
        redis.serve(&mut h);
        assert_eq!(h.take_text(g), "", "parked");
        // Another node carries its WebSocket: the session accepts it...
        let q = format!("EIO=4&transport=websocket&sid={sid}");
        redis.relay_in(&h, format!("O {OTHER} 7 1 s\n{q}\n").as_bytes());
        redis.serve(&mut h);
        assert_eq!(relays_to(&redis, OTHER), Vec::<String>::new());
        assert!(h
            .node
            .ctx
            .sio
            .carried
            .contains_key(&crate::proto::engineio::Sid::parse(&sid).unwrap()));
        // ...and answers its probe there, and the parked GET with a noop.
        redis.relay_in(&h, format!("M {OTHER} 7 1 t\n{sid}\n2probe").as_bytes());
        redis.serve(&mut h);
        assert_eq!(relays_to(&redis, OTHER), ["W 7 1 t 0\n3probe"]);
        assert!(h.take_text(g).ends_with("\r\n\r\n6"));
        // A second WebSocket for the session is closed (server.ts), and a
        // message from no carrier of ours closes the WebSocket it came from.
        redis.relay_in(&h, format!("O {OTHER} 8 2 s\n{q}\n").as_bytes());
        redis.relay_in(&h, format!("M {OTHER} 9 3 t\n{sid}\n5").as_bytes());
        redis.serve(&mut h);
        let sent = relays_to(&redis, OTHER);
        assert_eq!(sent[1..], ["C 8 2 1000\n", "C 9 3 1008\n"]);
        // Upgraded: what the session sends goes to the carrier, a ping
        // at its interval among it.
        redis.relay_in(&h, format!("M {OTHER} 7 1 t\n{sid}\n5").as_bytes());
        redis.relay_in(
            &h,
            format!("M {OTHER} 7 1 t\n{sid}\n42[\"nonsense\"]").as_bytes(),
        );
        redis.serve(&mut h);
        let ping = h.node.config().sio_ping_interval;
        pass(&mut h, &mut redis, ping);
        let sent = relays_to(&redis, OTHER);
        assert!(sent.contains(&"W 7 1 t 0\n2".to_string()), "{sent:?}");
        // The carrier's WebSocket ends: so does the session (its
        // transport closed), and nothing more is sent to it.
        redis.relay_in(&h, format!("X {OTHER} 7 1\n{sid}\n").as_bytes());
        redis.serve(&mut h);
        assert!(h.node.ctx.sio.carried.is_empty());
        let n = relays_to(&redis, OTHER).len();
        pass(&mut h, &mut redis, ping * 2);
        assert_eq!(relays_to(&redis, OTHER).len(), n);
        let g = request(&mut h, &mut redis, &get(&poll));
        assert_unknown_sid(&h.take_text(g));
    }
}

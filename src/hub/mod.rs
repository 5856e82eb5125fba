//! The hub: topics, their message histories, and who listens to them.
//!
//! Before working on this module, read DESIGN.md "The HTTP interface",
//! especially "Cursors": this module is where those rules live.
//!
//! The hub is plain data, driven by the event loop: no sockets, no clock
//! (every call that needs the time takes `now`), no threads. The loop calls
//! [`Hub::publish`] and then queues the returned [`Message`] (its
//! [`Message::parts`] in each subscriber's [`WireFormat`]) for each of
//! [`Hub::subscribers`]; it calls [`Hub::replay`] when a
//! reader arrives with a cursor; and it sleeps until
//! [`Hub::poll_timeout`], then calls [`Hub::handle_timeout`].
//!
//! Costs, for the numbers a push server meets (thousands of subscribers on
//! one topic, many idle topics):
//! - publish: O(1) amortised plus one scan of the payload (no wire form is
//!   encoded until a subscriber needs it); a new topic adds O(log topics)
//!   for the name index;
//! - byte eviction: O(1) amortised per evicted message — the total limit
//!   takes the front of one publish-ordered queue, never a search for the
//!   oldest topic;
//! - subscribe, unsubscribe: O(1) (a list and each member's position in it);
//! - replay: O(messages returned);
//! - a page of topics: O(log topics + page);
//! - age eviction: O(log topics) per topic that has something due — a
//!   min-heap of deadlines, never a scan of every topic.
//!
//! Memory is bounded by [`HubLimits`]: every kept message is charged what
//! it can come to hold (its [`Message::footprint`]: the payload once, the
//! transformed copies its bytes call for, its prefixes and suffixes, and
//! the hub's bookkeeping), and the charges are capped per topic
//! (`history_bytes_per_topic`) and in all (`history_bytes_total`), on top
//! of `history_messages` per topic and `max_topics` topics.
//!
//! Topic names are [`TopicName`]s: validated once, where a request comes
//! in, never again here.

mod id;
mod message;
mod name;

pub use id::{parse_cursor, Cursor, CursorError, MessageId};
pub use message::{Gap, Message, PayloadKind, Replay, WireFormat, INLINE_BODY};
pub use name::{is_name_byte, EventName, TopicName, MAX_EVENT_BYTES, MAX_TOPIC_BYTES};

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

/// The hub's share of [`crate::Config`].
#[derive(Clone, Debug)]
pub struct HubLimits {
    /// Messages kept per topic; the oldest is evicted past it.
    pub history_messages: usize,
    /// Age after which a kept message is evicted; also how long a topic
    /// with nothing kept and no subscriber lives on after its last use.
    pub history_age: Duration,
    /// Most topics at once; creating one more is refused (503).
    pub max_topics: usize,
    /// Largest message text, in bytes (413 past it).
    pub max_message_bytes: usize,
    /// Bytes kept per topic (each message charged its
    /// [`Message::footprint`] plus the hub's bookkeeping); the oldest
    /// messages are evicted past it.
    pub history_bytes_per_topic: usize,
    /// Bytes kept by the whole hub, counted the same way; past it, the
    /// globally oldest message goes first, from whichever topic holds it.
    pub history_bytes_total: usize,
}

impl HubLimits {
    pub fn from_config(c: &crate::Config) -> Self {
        HubLimits {
            history_messages: c.history_messages,
            history_age: c.history_age,
            max_topics: c.max_topics,
            max_message_bytes: c.max_message_bytes,
            history_bytes_per_topic: c.history_bytes_per_topic,
            history_bytes_total: c.history_bytes_total,
        }
    }
}

/// How much one replay may return (see [`Hub::replay`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayLimit {
    /// Most messages.
    pub messages: usize,
    /// Most bytes of message data (payloads as published). Always at least
    /// one message, however large, when `messages` allows one: a reader
    /// must be able to get past any message.
    pub bytes: usize,
}

impl ReplayLimit {
    /// Everything after the cursor: a stream's replay, which is bounded by
    /// the history itself.
    pub const ALL: ReplayLimit = ReplayLimit {
        messages: usize::MAX,
        bytes: usize::MAX,
    };

    /// A poll or short-poll response: `max_batch` and `max_batch_bytes`.
    pub fn from_config(c: &crate::Config) -> Self {
        ReplayLimit {
            messages: c.max_batch,
            bytes: c.max_batch_bytes,
        }
    }
}

/// Whether `t` is a valid topic name (see [`TopicName::parse`]).
pub fn valid_topic(t: &str) -> bool {
    (1..=MAX_TOPIC_BYTES).contains(&t.len()) && t.bytes().all(is_name_byte)
}

/// Whether `e` is a valid event name (see [`EventName::parse`]).
pub fn valid_event(e: &str) -> bool {
    (1..=MAX_EVENT_BYTES).contains(&e.len()) && e.bytes().all(is_name_byte)
}

/// What the event loop hands the hub for a connection: its token.
pub type SubscriberId = usize;

/// Most subscribers one topic holds (see [`HubError::TooManySubscribers`]).
pub const MAX_TOPIC_SUBSCRIBERS: usize = u32::MAX as usize;

/// Where a subscriber is in its topic's list, and how it is connected: 8
/// bytes, so that an entry of the positions map is 16 (it is one per
/// subscriber: 5,000 idle SSE streams on one topic are 5,000 entries).
#[derive(Clone, Copy, Debug)]
struct Position {
    index: u32,
    transport: Transport,
}

/// How a subscriber is connected, for the per-transport counts of
/// [`TopicInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Sse,
    Ws,
    /// A long poll, while it is parked.
    Poll,
    /// HTTP streaming (NDJSON).
    Stream,
    SocketIo,
}

impl Transport {
    pub const ALL: [Transport; 5] = [
        Transport::Sse,
        Transport::Ws,
        Transport::Poll,
        Transport::Stream,
        Transport::SocketIo,
    ];

    /// The name used in `/topics` JSON.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::Poll => "poll",
            Transport::Stream => "stream",
            Transport::SocketIo => "socketio",
        }
    }
}

/// Subscriber counts of one topic, by transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberCounts {
    pub sse: usize,
    pub ws: usize,
    pub poll: usize,
    pub stream: usize,
    pub socketio: usize,
}

impl SubscriberCounts {
    pub fn get(&self, transport: Transport) -> usize {
        match transport {
            Transport::Sse => self.sse,
            Transport::Ws => self.ws,
            Transport::Poll => self.poll,
            Transport::Stream => self.stream,
            Transport::SocketIo => self.socketio,
        }
    }

    fn slot(&mut self, transport: Transport) -> &mut usize {
        match transport {
            Transport::Sse => &mut self.sse,
            Transport::Ws => &mut self.ws,
            Transport::Poll => &mut self.poll,
            Transport::Stream => &mut self.stream,
            Transport::SocketIo => &mut self.socketio,
        }
    }

    pub fn total(&self) -> usize {
        Transport::ALL.iter().map(|&t| self.get(t)).sum()
    }
}

/// One topic as `GET /topics` and `GET /topics/{t}` report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: TopicName,
    pub subscribers_by_transport: SubscriberCounts,
    pub kept_messages: usize,
    /// Bytes charged to the kept messages (see
    /// [`HubLimits::history_bytes_per_topic`]).
    pub kept_bytes: usize,
    /// The oldest kept message; `None` when nothing is kept.
    pub first_id: Option<MessageId>,
    /// The newest id of this history, kept or not (`<epoch>-0` before the
    /// first message).
    pub last_id: MessageId,
    pub epoch: u64,
}

/// What [`Hub::delete`] tells the caller: who was listening, and the gap
/// to tell each of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The topic's subscribers; they stay subscribed and receive the new
    /// history live.
    pub subscribers: Vec<SubscriberId>,
    /// `requested` is the last id of the dropped history (where every live
    /// subscriber stood), `oldest` is `None`: nothing is kept.
    pub gap: Gap,
    /// `<new epoch>-0`: where a live subscriber stands now.
    pub last_id: MessageId,
    /// Messages dropped from the history.
    pub dropped_messages: usize,
}

/// Why the hub refused a request; each variant carries its HTTP status
/// and WebSocket close code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HubError {
    /// The topic name breaks the name rule (see [`TopicName::parse`]): 400.
    #[error("invalid topic name (1-128 bytes of A-Z a-z 0-9 . _ : -)")]
    InvalidTopic,
    /// The event name breaks the name rule (see [`EventName::parse`]): 400.
    #[error("invalid event name (1-64 bytes of A-Z a-z 0-9 . _ : -)")]
    InvalidEvent,
    /// The message is larger than `max_message_bytes`: 413.
    #[error("message of {size} bytes is over the limit of {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    /// Creating the topic would exceed `max_topics`: 503 (the client may
    /// retry; idle topics are freed over time).
    #[error("too many topics (limit {limit})")]
    TooManyTopics { limit: usize },
    /// The topic has [`MAX_TOPIC_SUBSCRIBERS`] subscribers already: 503,
    /// or close 1013. (Out of reach in practice: the connection limit and
    /// memory end far sooner; it keeps positions in 32 bits.)
    #[error("too many subscribers on one topic (limit {MAX_TOPIC_SUBSCRIBERS})")]
    TooManySubscribers,
    /// The server that owns the hub has stopped (a publish from another
    /// thread found no one to take it): 503.
    #[error("the server is stopping")]
    Stopped,
    /// The Redis engine cannot take the request now (Redis is down, or too
    /// many commands are in flight): 503, or close 1013 (try again later).
    #[error("Redis is unavailable")]
    BrokerUnavailable,
}

impl HubError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HubError::InvalidTopic | HubError::InvalidEvent => 400,
            HubError::MessageTooLarge { .. } => 413,
            HubError::TooManyTopics { .. }
            | HubError::TooManySubscribers
            | HubError::Stopped
            | HubError::BrokerUnavailable => 503,
        }
    }

    /// The WebSocket close code to end a single-topic socket with.
    pub fn close_code(&self) -> u16 {
        match self {
            // RFC 6455 §7.4.1: 1008, a message that violates the
            // endpoint's policy — the generic code when no other fits.
            HubError::InvalidTopic | HubError::InvalidEvent => 1008,
            // RFC 6455 §7.4.1: 1009, a message too big to process.
            HubError::MessageTooLarge { .. } => 1009,
            // 1013 Try Again Later (IANA WebSocket close code registry,
            // RFC 6455 §11.7): the server is at a limit that frees itself.
            HubError::TooManyTopics { .. }
            | HubError::TooManySubscribers
            | HubError::BrokerUnavailable => 1013,
            // RFC 6455 §7.4.1: 1001, "going away, such as a server going
            // down".
            HubError::Stopped => 1001,
        }
    }
}

/// Counters for `/stats` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    pub topics: usize,
    /// Messages kept in all histories.
    pub messages: usize,
    /// Subscriptions, over all topics.
    pub subscribers: usize,
    /// Bytes charged to the kept messages (see
    /// [`HubLimits::history_bytes_total`]).
    pub kept_bytes: usize,
}

/// How soon a topic that has subscribers but nothing kept is looked at
/// again, when `history_age` is shorter (zero).
const MIN_RECHECK: Duration = Duration::from_secs(1);

/// A message in a topic's history.
#[derive(Debug)]
struct Kept {
    /// Publish order over the whole hub: the total byte limit evicts the
    /// smallest first.
    order: u64,
    /// What the message is charged (see [`charge`]).
    bytes: usize,
    message: Arc<Message>,
}

/// The bytes a kept message is charged: its own footprint, and the hub's
/// bookkeeping for it (its [`Kept`] slot, and up to two entries of
/// [`Hub::order`] between compactions).
fn charge(message: &Message) -> usize {
    message.footprint() + std::mem::size_of::<Kept>() + 2 * std::mem::size_of::<(u64, Arc<str>)>()
}

/// One topic: a history and its listeners.
#[derive(Debug)]
struct Topic {
    /// The epoch of this history (see [`Hub::new`]).
    epoch: u64,
    /// The seq of the newest message ever published in this epoch, kept or
    /// not (0 before the first).
    last_seq: u64,
    /// Kept messages, oldest first. Their seqs are consecutive and end at
    /// `last_seq`: eviction only ever takes from the front.
    history: VecDeque<Kept>,
    /// The sum of `history`'s charges.
    kept_bytes: usize,
    subscribers: Vec<SubscriberId>,
    /// Each subscriber's index in `subscribers` (so that unsubscribing is
    /// a `swap_remove` instead of a search through thousands) and its
    /// transport.
    positions: HashMap<SubscriberId, Position>,
    counts: SubscriberCounts,
    /// The last publish or replay. With nothing kept and no subscriber, the
    /// topic is freed `history_age` after it. `None` until the hub has been
    /// given a time at all (a `subscribe` before anything else).
    touched: Option<Instant>,
    /// The topic has its entry in [`Hub::timers`].
    armed: bool,
}

impl Topic {
    fn new(epoch: u64, touched: Option<Instant>) -> Topic {
        Topic {
            epoch,
            last_seq: 0,
            history: VecDeque::new(),
            kept_bytes: 0,
            subscribers: Vec::new(),
            positions: HashMap::new(),
            counts: SubscriberCounts::default(),
            touched,
            armed: false,
        }
    }

    /// The first seq still deliverable: the oldest kept, or, with nothing
    /// kept, the seq the next message will get.
    fn first_kept_seq(&self) -> u64 {
        match self.history.front() {
            Some(k) => k.message.id.seq,
            None => self.last_seq.saturating_add(1),
        }
    }

    /// When this topic next needs attention: its oldest message's expiry,
    /// or, with nothing kept, the end of its idle time. `None`: no time is
    /// known yet, or the age is too large to add to an `Instant`.
    fn deadline(&self, age: Duration) -> Option<Instant> {
        match self.history.front() {
            Some(k) => k.message.published_at.checked_add(age),
            None => self.touched?.checked_add(age),
        }
    }

    /// Evicts the oldest kept message; returns its charge.
    fn pop_front(&mut self) -> Option<usize> {
        let kept = self.history.pop_front()?;
        self.kept_bytes -= kept.bytes;
        Some(kept.bytes)
    }

    /// Evicts while `over` says the history is over a limit; returns how
    /// many messages and bytes went.
    fn evict_while(&mut self, over: impl Fn(&Topic) -> bool) -> Evicted {
        let mut evicted = Evicted::default();
        while !self.history.is_empty() && over(self) {
            if let Some(bytes) = self.pop_front() {
                evicted.messages += 1;
                evicted.bytes += bytes;
            }
        }
        evicted
    }

    fn id(&self, seq: u64) -> MessageId {
        MessageId {
            epoch: self.epoch,
            seq,
        }
    }

    fn info(&self, name: &str) -> TopicInfo {
        TopicInfo {
            name: TopicName::from_checked(name),
            subscribers_by_transport: self.counts,
            kept_messages: self.history.len(),
            kept_bytes: self.kept_bytes,
            first_id: self.history.front().map(|k| k.message.id),
            last_id: self.id(self.last_seq),
            epoch: self.epoch,
        }
    }
}

/// Messages and bytes evicted at once.
#[derive(Clone, Copy, Debug, Default)]
struct Evicted {
    messages: usize,
    bytes: usize,
}

/// Topics, histories and subscriptions. See the module documentation.
#[derive(Debug)]
pub struct Hub {
    limits: HubLimits,
    epoch_base: u64,
    /// The first `now` the hub was given: epochs count time from it.
    start: Option<Instant>,
    /// The latest `now` seen, for `subscribe`, which is not given one.
    last_now: Option<Instant>,
    /// The epoch of the newest history.
    last_epoch: u64,
    topics: HashMap<Arc<str>, Topic>,
    /// The topic names in order, for `GET /topics` pages (`?prefix=`,
    /// `?after_topic=`) without sorting every topic per request.
    names: BTreeSet<Arc<str>>,
    /// One entry per armed topic: a time at or before which it may next
    /// need attention. Entries are never updated in place: a topic's
    /// deadline only ever moves later (its oldest message goes, or it is
    /// used again), so an entry that pops too early is pushed back with the
    /// right time. That keeps publish free of heap work.
    timers: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    /// `(order, topic)` of every kept message, in publish order: the front
    /// is the globally oldest, which the total byte limit evicts first.
    /// Messages evicted otherwise (count, age, per-topic bytes, delete)
    /// leave their entry behind; it is recognised as gone when it reaches
    /// the front, and [`Hub::compact_order`] drops such entries before they
    /// outnumber the kept messages.
    order: VecDeque<(u64, Arc<str>)>,
    next_order: u64,
    kept_messages: usize,
    kept_bytes: usize,
    subscriptions: usize,
    /// Ids are assigned elsewhere (the Redis engine): [`Hub::publish`]
    /// is refused, since an id numbered here would be the one Redis gives
    /// the next real message, which would then be dropped as a duplicate.
    mirror: bool,
    /// Where each freed topic stood (epoch, last seq): a topic freed while
    /// idle comes back in the same history, numbering on, so a client
    /// that had read everything is not told a gap by a new epoch, and one
    /// that had not is (its messages are older than the oldest kept). At
    /// most `max_topics` are remembered, the oldest forgotten first (that
    /// topic then starts a new epoch: a gap, the safe side). Redis mode
    /// has the same from its meta key, which outlives the history.
    retired: HashMap<Arc<str>, Retired>,
    /// `retired`'s names by when they were retired, oldest first; an entry
    /// whose `number` is not its name's in `retired` is stale (the topic
    /// came back since) and is skipped.
    retired_order: VecDeque<(u64, Arc<str>)>,
    retired_count: u64,
}

/// Where a freed topic stood (see [`Hub::retired`]).
#[derive(Clone, Copy, Debug)]
struct Retired {
    epoch: u64,
    last_seq: u64,
    /// Its entry in [`Hub::retired_order`].
    number: u64,
}

impl Hub {
    /// An empty hub.
    ///
    /// `epoch_base` is the wall-clock time at start, in microseconds since
    /// the Unix epoch. A new history's epoch is the time it starts, in
    /// microseconds since the Unix epoch — `epoch_base` plus the
    /// microseconds elapsed since the first `now` the hub was given — or
    /// the previous epoch + 1 if that is larger (several histories started
    /// in one microsecond). So epochs strictly increase within a run, and a
    /// restarted server, whose `epoch_base` is read after the previous run
    /// ended, issues epochs above every epoch of the run before (a topic
    /// cannot be created faster than one per microsecond for long enough
    /// to run ahead of the clock by a restart's duration). An old cursor is
    /// thus always recognised as "another history", never read as a
    /// position in a new one. (A wall clock stepped backwards between runs
    /// is the one thing this cannot see.)
    pub fn new(limits: HubLimits, epoch_base: u64) -> Self {
        Hub {
            limits,
            epoch_base,
            start: None,
            last_now: None,
            last_epoch: 0,
            topics: HashMap::new(),
            names: BTreeSet::new(),
            timers: BinaryHeap::new(),
            order: VecDeque::new(),
            next_order: 0,
            kept_messages: 0,
            kept_bytes: 0,
            subscriptions: 0,
            mirror: false,
            retired: HashMap::new(),
            retired_order: VecDeque::new(),
            retired_count: 0,
        }
    }

    /// Remembers where a freed topic stood (see [`Hub::retired`]).
    fn retire(&mut self, name: Arc<str>, epoch: u64, last_seq: u64) {
        if self.mirror || self.limits.max_topics == 0 {
            return;
        }
        while self.retired.len() >= self.limits.max_topics {
            let Some((number, oldest)) = self.retired_order.pop_front() else {
                break;
            };
            if self
                .retired
                .get(&oldest)
                .is_some_and(|r| r.number == number)
            {
                self.retired.remove(&oldest);
            }
        }
        self.retired_count += 1;
        let number = self.retired_count;
        let position = Retired {
            epoch,
            last_seq,
            number,
        };
        self.retired.insert(name.clone(), position);
        self.retired_order.push_back((number, name));
        // Stale entries (topics that came back) are dropped before they
        // outnumber the live ones.
        if self.retired_order.len() > 2 * self.retired.len() + 16 {
            let retired = &self.retired;
            self.retired_order
                .retain(|(n, name)| retired.get(name).is_some_and(|r| r.number == *n));
        }
    }

    /// Makes this hub a mirror: messages come in by [`Hub::insert`] only,
    /// and [`Hub::publish`] answers [`HubError::BrokerUnavailable`] (503).
    pub fn set_mirror(&mut self, mirror: bool) {
        self.mirror = mirror;
    }

    /// Records the time a caller passed in. The first one is the `now`
    /// epochs count from: a driver that gives it at its first event makes
    /// every epoch a function of the events' times alone, not of which
    /// call happened to reach the hub first.
    pub fn observe(&mut self, now: Instant) {
        self.start.get_or_insert(now);
        self.last_now = Some(now);
    }

    /// The topic named `name`, created with a fresh epoch if it does not
    /// exist, and the map's key for it. `now`, when given, counts as a use.
    fn topic_mut(
        &mut self,
        name: &TopicName,
        now: Option<Instant>,
    ) -> Result<(Arc<str>, &mut Topic), HubError> {
        let full = self.topics.len() >= self.limits.max_topics;
        // The map's own key when the topic exists (a reference count, not
        // an allocation, on the publish path); a new one otherwise.
        let key: Arc<str> = match self.topics.get_key_value(name.as_str()) {
            Some((key, _)) => Arc::clone(key),
            None => name.as_str().into(),
        };
        let topic = match self.topics.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                if full {
                    return Err(HubError::TooManyTopics {
                        limit: self.limits.max_topics,
                    });
                }
                // A freed topic comes back where it stood.
                let (epoch, last_seq) = match self.retired.remove(name.as_str()) {
                    Some(r) => (r.epoch, r.last_seq),
                    None => (
                        next_epoch(
                            &mut self.last_epoch,
                            self.epoch_base,
                            self.start,
                            self.last_now,
                        ),
                        0,
                    ),
                };
                self.names.insert(key.clone());
                let mut topic = Topic::new(epoch, self.last_now);
                topic.last_seq = last_seq;
                entry.insert(topic)
            }
        };
        if now.is_some() {
            topic.touched = now;
        }
        if !topic.armed {
            if let Some(deadline) = topic.deadline(self.limits.history_age) {
                self.timers.push(Reverse((deadline, key.clone())));
                topic.armed = true;
            }
        }
        Ok((key, topic))
    }

    /// Publishes `data` to `topic` (created on first use) and returns the
    /// message, which every subscriber's queue then shares.
    ///
    /// `kind` says what `data` is; a [`PayloadKind::Json`] payload must
    /// already have been validated as JSON by the caller.
    ///
    /// Past a limit, the oldest messages are evicted: the topic's own
    /// (`history_messages`, `history_bytes_per_topic`) and then the
    /// globally oldest (`history_bytes_total`). A message larger than the
    /// byte limits is still delivered to live subscribers, and evicted at
    /// once.
    ///
    /// Errors: [`HubError::MessageTooLarge`] (413),
    /// [`HubError::TooManyTopics`] (503).
    pub fn publish(
        &mut self,
        topic: &TopicName,
        event: Option<&EventName>,
        data: &str,
        kind: PayloadKind,
        now: Instant,
    ) -> Result<Arc<Message>, HubError> {
        if self.mirror {
            return Err(HubError::BrokerUnavailable);
        }
        if data.len() > self.limits.max_message_bytes {
            return Err(HubError::MessageTooLarge {
                size: data.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        self.observe(now);
        let keep = self.limits.history_messages;
        let per_topic = self.limits.history_bytes_per_topic;
        let order = self.next_order;
        let (key, t) = self.topic_mut(topic, Some(now))?;
        t.last_seq = t.last_seq.saturating_add(1);
        let message = Arc::new(Message::new(
            topic,
            t.id(t.last_seq),
            event,
            data,
            kind,
            now,
        ));
        let bytes = charge(&message);
        t.history.push_back(Kept {
            order,
            bytes,
            message: Arc::clone(&message),
        });
        t.kept_bytes += bytes;
        let evicted = t.evict_while(|t| t.history.len() > keep || t.kept_bytes > per_topic);
        self.next_order += 1;
        self.kept_messages = self.kept_messages + 1 - evicted.messages;
        self.kept_bytes = self.kept_bytes + bytes - evicted.bytes;
        self.order.push_back((order, key));
        self.evict_over_total();
        self.compact_order();
        Ok(message)
    }

    /// Appends a message whose id was assigned elsewhere (the Redis
    /// engine's mirror of a topic, see `node::cluster`). Returns the
    /// message and whether the history was started afresh for it; `None`
    /// when the topic already holds that seq (a duplicate: ignored).
    ///
    /// - same epoch, the next seq: appended, as [`Hub::publish`] would;
    /// - another epoch: the old history is dropped and this one begins at
    ///   `id` (what came before it in that epoch is not kept);
    /// - same epoch, a seq past the next: the kept history is dropped, so
    ///   that a cursor inside the hole reads as older than the oldest kept
    ///   (a gap), never as a position from which nothing is missing.
    ///
    /// After a fresh start (`true`), a live subscriber's position may not
    /// be followed by this message: the caller replays each one from its
    /// cursor, which reports the gap.
    pub fn insert(
        &mut self,
        topic: &TopicName,
        id: MessageId,
        event: Option<&EventName>,
        data: &str,
        kind: PayloadKind,
        now: Instant,
    ) -> Result<Option<(Arc<Message>, bool)>, HubError> {
        if data.len() > self.limits.max_message_bytes {
            return Err(HubError::MessageTooLarge {
                size: data.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        if id.seq == 0 {
            return Ok(None);
        }
        self.observe(now);
        let keep = self.limits.history_messages;
        let per_topic = self.limits.history_bytes_per_topic;
        let order = self.next_order;
        let (key, t) = self.topic_mut(topic, Some(now))?;
        if t.epoch == id.epoch && id.seq <= t.last_seq {
            return Ok(None);
        }
        let fresh = t.epoch != id.epoch || id.seq > t.last_seq.saturating_add(1);
        let mut dropped = Evicted::default();
        if fresh {
            dropped = t.evict_while(|_| true);
            t.epoch = id.epoch;
            t.last_seq = id.seq - 1;
        }
        t.last_seq = id.seq;
        let message = Arc::new(Message::new(topic, id, event, data, kind, now));
        let bytes = charge(&message);
        t.history.push_back(Kept {
            order,
            bytes,
            message: Arc::clone(&message),
        });
        t.kept_bytes += bytes;
        let evicted = t.evict_while(|t| t.history.len() > keep || t.kept_bytes > per_topic);
        self.next_order += 1;
        self.kept_messages = self.kept_messages + 1 - evicted.messages - dropped.messages;
        self.kept_bytes = self.kept_bytes + bytes - evicted.bytes - dropped.bytes;
        self.order.push_back((order, key));
        self.evict_over_total();
        self.compact_order();
        Ok(Some((message, fresh)))
    }

    /// Moves a mirrored topic to stand at `id` (created if need be): where
    /// its source says it is, when that is not where the last message left
    /// it (the messages in between are gone, a new epoch began, the history
    /// was deleted). The kept history is dropped unless `id` is already the
    /// newest. Returns whether it was: `true` means live subscribers must
    /// be replayed from their cursors (see [`Hub::insert`]).
    pub fn mirror_position(&mut self, topic: &TopicName, id: MessageId) -> Result<bool, HubError> {
        let (_, t) = self.topic_mut(topic, None)?;
        if t.epoch == id.epoch && t.last_seq == id.seq {
            return Ok(false);
        }
        let dropped = t.evict_while(|_| true);
        t.epoch = id.epoch;
        t.last_seq = id.seq;
        self.kept_messages -= dropped.messages;
        self.kept_bytes -= dropped.bytes;
        Ok(true)
    }

    /// Evicts the globally oldest messages while the hub is over
    /// `history_bytes_total`.
    fn evict_over_total(&mut self) {
        while self.kept_bytes > self.limits.history_bytes_total {
            let Some((order, key)) = self.order.pop_front() else {
                break;
            };
            let Some(t) = self.topics.get_mut(&key) else {
                continue;
            };
            // An entry whose message is gone already is stale: skip it.
            // One still kept is its topic's oldest, since every older kept
            // message's entry is nearer the front.
            if t.history.front().is_some_and(|k| k.order == order) {
                if let Some(bytes) = t.pop_front() {
                    self.kept_bytes -= bytes;
                    self.kept_messages -= 1;
                }
            }
        }
    }

    /// Drops the stale entries of [`Hub::order`] once they outnumber the
    /// kept messages, so it stays within twice their number (amortised
    /// O(1) per publish).
    fn compact_order(&mut self) {
        if self.order.len() <= 2 * self.kept_messages + 1024 {
            return;
        }
        let topics = &self.topics;
        // A message is kept iff its topic's oldest kept message is not
        // newer: histories only lose messages from the front.
        self.order.retain(|(order, key)| {
            topics
                .get(key)
                .and_then(|t| t.history.front())
                .is_some_and(|k| k.order <= *order)
        });
    }

    /// The subscribers of `topic`, in no particular order (empty if the
    /// topic does not exist).
    pub fn subscribers(&self, topic: &TopicName) -> &[SubscriberId] {
        self.topics
            .get(topic.as_str())
            .map_or(&[], |t| t.subscribers.as_slice())
    }

    /// The messages of `topic` after `cursor`, within `limit`, oldest
    /// first, with the gap if some are gone (DESIGN.md "Cursors"):
    ///
    /// - `Live`: none; `last_id` is the newest id (`<epoch>-0` if none).
    /// - `Earliest`: everything kept; never a gap.
    /// - `After(id)`: the messages after `id`. If `id` is of another epoch,
    ///   beyond the newest, or older than the oldest kept — that is, the
    ///   message right after it is no longer kept, whichever limit evicted
    ///   it — everything kept, and a gap whose `requested` is
    ///   `cursor_text`.
    ///
    /// `last_id` is the next request's cursor: the last message returned,
    /// or where the reader stands when none is. With `limit` smaller than
    /// what is available, the rest is had by asking again from `last_id`.
    ///
    /// The topic is created if needed, so that even an empty topic has an
    /// epoch to put in `last_id`: [`HubError::TooManyTopics`] is possible.
    pub fn replay(
        &mut self,
        topic: &TopicName,
        cursor: &Cursor,
        cursor_text: &str,
        now: Instant,
        limit: ReplayLimit,
    ) -> Result<Replay, HubError> {
        self.observe(now);
        let (_, t) = self.topic_mut(topic, Some(now))?;
        let first_kept = t.first_kept_seq();
        // The seq the reader resumes from, and whether it skipped over
        // messages that are gone.
        let (start, gap) = match *cursor {
            Cursor::Live => (t.last_seq.saturating_add(1), false),
            Cursor::Earliest => (first_kept, false),
            Cursor::After(id) => {
                let other_epoch = id.epoch != t.epoch;
                let beyond_newest = id.seq > t.last_seq;
                // The message right after `id` (seq + 1) is no longer kept.
                let evicted_after = id.seq.saturating_add(1) < first_kept;
                if other_epoch || beyond_newest || evicted_after {
                    (first_kept, true)
                } else {
                    (id.seq.saturating_add(1), false)
                }
            }
        };
        // `start >= first_kept` in every case above, so this is the index
        // of the first message to return (or the history's length).
        let skip = usize::try_from(start.saturating_sub(first_kept)).unwrap_or(usize::MAX);
        let skip = skip.min(t.history.len());
        let mut messages: Vec<Arc<Message>> = Vec::new();
        let mut bytes = 0usize;
        for kept in t.history.range(skip..) {
            if messages.len() >= limit.messages {
                break;
            }
            let len = kept.message.data().len();
            // The first message always fits: a reader must get past it.
            if !messages.is_empty() && bytes.saturating_add(len) > limit.bytes {
                break;
            }
            bytes = bytes.saturating_add(len);
            messages.push(Arc::clone(&kept.message));
        }
        let last_id = match messages.last() {
            Some(m) => m.id,
            None => t.id(start.saturating_sub(1)),
        };
        let gap = gap.then(|| Gap {
            requested: cursor_text.to_owned(),
            oldest: t.history.front().map(|k| k.message.id),
        });
        Ok(Replay {
            messages,
            gap,
            last_id,
        })
    }

    /// Adds `sub` to the subscribers of `topic` (created if needed),
    /// counted under `transport`. A second subscribe of the same
    /// subscriber changes nothing (not even its transport).
    pub fn subscribe(
        &mut self,
        topic: &TopicName,
        sub: SubscriberId,
        transport: Transport,
    ) -> Result<(), HubError> {
        let (_, t) = self.topic_mut(topic, None)?;
        let len = t.subscribers.len();
        if let Entry::Vacant(slot) = t.positions.entry(sub) {
            if len >= MAX_TOPIC_SUBSCRIBERS {
                return Err(HubError::TooManySubscribers);
            }
            // Below u32::MAX, checked above.
            let index = len as u32;
            slot.insert(Position { index, transport });
            t.subscribers.push(sub);
            *t.counts.slot(transport) += 1;
            self.subscriptions += 1;
        }
        Ok(())
    }

    /// Removes `sub` from the subscribers of `topic`, if it is one. The
    /// topic itself stays until [`Hub::handle_timeout`] finds it idle.
    pub fn unsubscribe(&mut self, topic: &TopicName, sub: SubscriberId) {
        let Some(t) = self.topics.get_mut(topic.as_str()) else {
            return;
        };
        let Some(Position { index, transport }) = t.positions.remove(&sub) else {
            return;
        };
        let index = index as usize;
        if index < t.subscribers.len() {
            t.subscribers.swap_remove(index);
            // The last subscriber moved into the hole: record where.
            if let Some(&moved) = t.subscribers.get(index) {
                if let Some(position) = t.positions.get_mut(&moved) {
                    // `index` came from a u32 and is below the length.
                    position.index = index as u32;
                }
            }
        }
        let count = t.counts.slot(transport);
        *count = count.saturating_sub(1);
        self.subscriptions -= 1;
    }

    /// Drops `topic`'s history and starts a new one: the next message is
    /// `<new epoch>-1`, so every old cursor reads as another history (a
    /// gap). Subscribers stay subscribed; the caller tells each of them the
    /// returned gap. `None` if the topic does not exist (nothing is
    /// created).
    pub fn delete(&mut self, topic: &TopicName) -> Option<Deleted> {
        // A freed topic is forgotten too: its next message starts afresh.
        self.retired.remove(topic.as_str());
        let t = self.topics.get_mut(topic.as_str())?;
        let old_last = t.id(t.last_seq);
        let dropped = t.evict_while(|_| true);
        t.epoch = next_epoch(
            &mut self.last_epoch,
            self.epoch_base,
            self.start,
            self.last_now,
        );
        t.last_seq = 0;
        self.kept_messages -= dropped.messages;
        self.kept_bytes -= dropped.bytes;
        // Its entries in `order` are stale now; the next compaction drops
        // them.
        Some(Deleted {
            subscribers: t.subscribers.clone(),
            gap: Gap {
                requested: old_last.to_string(),
                oldest: None,
            },
            last_id: t.id(0),
            dropped_messages: dropped.messages,
        })
    }

    /// `topic`'s stats, if it exists (asking does not create it).
    pub fn topic_info(&self, topic: &TopicName) -> Option<TopicInfo> {
        self.topics.get(topic.as_str()).map(|t| t.info(topic))
    }

    /// A page of topics sorted by name: those starting with `prefix`,
    /// after `after_topic` (exclusive) when given, at most `limit`. The
    /// next page starts after the last name returned.
    pub fn topics(&self, prefix: &str, after_topic: Option<&str>, limit: usize) -> Vec<TopicInfo> {
        let from = match after_topic {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        self.names
            .range::<str, _>((from, Bound::Unbounded))
            .take_while(|name| name.starts_with(prefix))
            .take(limit)
            .filter_map(|name| self.topics.get(name).map(|t| t.info(name)))
            .collect()
    }

    /// Evicts the messages older than `history_age`, and frees the topics
    /// that have no subscriber, nothing kept, and no use for `history_age`
    /// (a later use starts a fresh epoch). Only the topics whose deadline
    /// has come are looked at.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.observe(now);
        let age = self.limits.history_age;
        // Published at or before the cutoff: older than `age`. No cutoff:
        // `age` reaches back before any `Instant`, so nothing is that old.
        let cutoff = now.checked_sub(age);
        // Each turn pops one entry and pushes back at most one, due after
        // `now`: the loop ends.
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, name))) = self.timers.pop() else {
                break;
            };
            let Some(t) = self.topics.get_mut(&name) else {
                continue;
            };
            if let Some(cutoff) = cutoff {
                let evicted = t.evict_while(|t| {
                    t.history
                        .front()
                        .is_some_and(|k| k.message.published_at <= cutoff)
                });
                self.kept_messages -= evicted.messages;
                self.kept_bytes -= evicted.bytes;
            }
            let idle = t.touched.is_some_and(|touched| Some(touched) <= cutoff);
            if t.history.is_empty() && t.subscribers.is_empty() && idle {
                let (epoch, last_seq) = (t.epoch, t.last_seq);
                self.topics.remove(&name);
                self.names.remove(&name);
                self.retire(name, epoch, last_seq);
                continue;
            }
            match t.deadline(age) {
                // Subscribers keep an idle topic alive; look again later.
                Some(deadline) if deadline <= now => {
                    self.timers
                        .push(Reverse((now + age.max(MIN_RECHECK), name)));
                }
                Some(deadline) => self.timers.push(Reverse((deadline, name))),
                None => t.armed = false,
            }
        }
    }

    /// When [`Hub::handle_timeout`] should next be called: the earliest
    /// eviction or idle deadline (possibly early, never late).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((due, _))| *due)
    }

    /// Topics, kept messages and bytes, and subscriptions, counted as they
    /// change.
    pub fn stats(&self) -> HubStats {
        HubStats {
            topics: self.topics.len(),
            messages: self.kept_messages,
            subscribers: self.subscriptions,
            kept_bytes: self.kept_bytes,
        }
    }

    /// The id of the newest message published to `topic` (`<epoch>-0`
    /// before the first), if the topic exists.
    pub fn last_id(&self, topic: &TopicName) -> Option<MessageId> {
        self.topics.get(topic.as_str()).map(|t| t.id(t.last_seq))
    }

    /// `topic` as the hub holds it, if the topic exists: a subscriber that
    /// keeps this instead of its own copy adds no allocation for the name.
    pub fn shared_name(&self, topic: &TopicName) -> Option<TopicName> {
        self.topics
            .get_key_value(topic.as_str())
            .map(|(key, _)| TopicName::from_key(key))
    }
}

/// The epoch for a history starting now (see [`Hub::new`]).
fn next_epoch(
    last: &mut u64,
    base_micros: u64,
    start: Option<Instant>,
    now: Option<Instant>,
) -> u64 {
    let elapsed = match (start, now) {
        (Some(start), Some(now)) => now.saturating_duration_since(start).as_micros(),
        _ => 0,
    };
    let elapsed = u64::try_from(elapsed).unwrap_or(u64::MAX);
    let from_clock = base_micros.saturating_add(elapsed);
    *last = from_clock.max(last.saturating_add(1));
    *last
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: Duration = Duration::from_secs(60);

    fn limits(history_messages: usize) -> HubLimits {
        HubLimits {
            history_messages,
            history_age: AGE,
            max_topics: 100,
            max_message_bytes: 1024,
            history_bytes_per_topic: usize::MAX,
            history_bytes_total: usize::MAX,
        }
    }

    fn tn(name: &str) -> TopicName {
        TopicName::parse(name).unwrap()
    }

    fn ev(name: &str) -> Option<EventName> {
        Some(EventName::parse(name).unwrap())
    }

    /// At most `messages`, no byte limit.
    fn lim(messages: usize) -> ReplayLimit {
        ReplayLimit {
            messages,
            bytes: usize::MAX,
        }
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    /// Seqs of the replayed messages.
    fn seqs(r: &Replay) -> Vec<u64> {
        r.messages.iter().map(|m| m.id.seq).collect()
    }

    fn after(id: MessageId) -> Cursor {
        Cursor::After(id)
    }

    /// A hub with `n` messages published to "t" at `t0` (seq 1..=n), and
    /// the topic's epoch.
    fn hub_with(history: usize, n: u64, t0: Instant) -> (Hub, u64) {
        let mut hub = Hub::new(limits(history), 1_700_000_000_000_000);
        for i in 1..=n {
            hub.publish(&tn("t"), None, &format!("m{i}"), PayloadKind::Text, t0)
                .unwrap();
        }
        let epoch = hub
            .replay(&tn("t"), &Cursor::Live, "", t0, lim(0))
            .unwrap()
            .last_id
            .epoch;
        (hub, epoch)
    }

    fn replay(hub: &mut Hub, cursor: Cursor, now: Instant, max: usize) -> Replay {
        let text = match cursor {
            Cursor::After(id) => id.to_string(),
            _ => String::new(),
        };
        hub.replay(&tn("t"), &cursor, &text, now, lim(max)).unwrap()
    }

    #[test]
    fn names() {
        assert!(valid_topic("a"));
        assert!(valid_topic("chat.room-1_b:c"));
        assert!(valid_topic(&"x".repeat(128)));
        assert!(!valid_topic(&"x".repeat(129)));
        assert!(!valid_topic(""));
        for bad in ["a b", "a/b", "a%20b", "é", "a\nb", "a\0", "a?b", "a#b"] {
            assert!(!valid_topic(bad), "{bad:?}");
            assert!(!valid_event(bad), "{bad:?}");
        }
        assert!(valid_event(&"e".repeat(64)));
        assert!(!valid_event(&"e".repeat(65)));
        assert!(!valid_event(""));
    }

    #[test]
    fn publish_numbers_from_one_and_refuses_bad_input() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 1_700_000_000_000_000);
        let a = hub
            .publish(&tn("t"), None, "a", PayloadKind::Text, t0)
            .unwrap();
        let b = hub
            .publish(&tn("t"), ev("tick").as_ref(), "b", PayloadKind::Text, t0)
            .unwrap();
        assert_eq!(a.id.seq, 1);
        assert_eq!(b.id.seq, 2);
        assert_eq!(a.id.epoch, b.id.epoch);
        // The epoch is the history's start time in milliseconds.
        assert_eq!(a.id.epoch, 1_700_000_000_000_000);
        assert_eq!(&*a.id_text, &format!("{}-1", a.id.epoch));
        assert_eq!(b.event.as_deref(), Some("tick"));

        let err = |r: Result<Arc<Message>, HubError>| r.unwrap_err();
        // Bad names never reach the hub: their types refuse them.
        let e = TopicName::parse("bad topic").unwrap_err();
        assert_eq!(
            (e.clone(), e.status(), e.close_code()),
            (HubError::InvalidTopic, 400, 1008)
        );
        let e = EventName::parse("bad\nevent").unwrap_err();
        assert_eq!(
            (e.clone(), e.status(), e.close_code()),
            (HubError::InvalidEvent, 400, 1008)
        );
        // The limit itself is allowed; one byte over is not.
        hub.publish(&tn("t"), None, &"x".repeat(1024), PayloadKind::Text, t0)
            .unwrap();
        let e = err(hub.publish(&tn("t"), None, &"x".repeat(1025), PayloadKind::Text, t0));
        assert_eq!(
            e,
            HubError::MessageTooLarge {
                size: 1025,
                limit: 1024
            }
        );
        assert_eq!((e.status(), e.close_code()), (413, 1009));
        assert_eq!(
            (HubError::Stopped.status(), HubError::Stopped.close_code()),
            (503, 1001)
        );
        assert_eq!(hub.stats().messages, 3);
    }

    #[test]
    fn too_many_topics() {
        let t0 = Instant::now();
        let mut hub = Hub::new(
            HubLimits {
                max_topics: 2,
                ..limits(10)
            },
            0,
        );
        hub.publish(&tn("a"), None, "x", PayloadKind::Text, t0)
            .unwrap();
        hub.subscribe(&tn("b"), 1, Transport::Sse).unwrap();
        let e = hub
            .publish(&tn("c"), None, "x", PayloadKind::Text, t0)
            .unwrap_err();
        assert_eq!(e, HubError::TooManyTopics { limit: 2 });
        assert_eq!((e.status(), e.close_code()), (503, 1013));
        assert!(hub
            .replay(&tn("c"), &Cursor::Live, "", t0, lim(10))
            .is_err());
        assert!(hub.subscribe(&tn("c"), 1, Transport::Sse).is_err());
        // Existing topics still work.
        hub.publish(&tn("b"), None, "x", PayloadKind::Text, t0)
            .unwrap();
        assert_eq!(hub.stats().topics, 2);
    }

    #[test]
    fn cursor_before_the_first_message() {
        let t0 = Instant::now();
        let (mut hub, epoch) = hub_with(10, 0, t0);
        let zero = MessageId { epoch, seq: 0 };
        // A live reader of an empty topic stands at <epoch>-0...
        let live = replay(&mut hub, Cursor::Live, t0, 100);
        assert_eq!((seqs(&live), live.gap, live.last_id), (vec![], None, zero));
        // ...and from there, it is up to date: no gap, nothing new.
        let r = replay(&mut hub, after(zero), t0, 100);
        assert_eq!((seqs(&r), r.gap, r.last_id), (vec![], None, zero));
        // Once messages come, it gets them all, without a gap.
        for text in ["a", "b", "c"] {
            hub.publish(&tn("t"), None, text, PayloadKind::Text, t0)
                .unwrap();
        }
        let r = replay(&mut hub, after(zero), t0, 100);
        assert_eq!((seqs(&r), r.gap), (vec![1, 2, 3], None));
        assert_eq!(r.last_id, MessageId { epoch, seq: 3 });
    }

    #[test]
    fn every_cursor_case() {
        let t0 = Instant::now();
        // Keep 3 of 5: seqs 3, 4, 5 are kept; 1 and 2 were evicted.
        let (mut hub, epoch) = hub_with(3, 5, t0);
        let id = |seq| MessageId { epoch, seq };
        let newest = id(5);

        // Live: nothing, positioned at the newest.
        let r = replay(&mut hub, Cursor::Live, t0, 100);
        assert_eq!((seqs(&r), r.gap.clone(), r.last_id), (vec![], None, newest));

        // Earliest: all kept, never a gap.
        let r = replay(&mut hub, Cursor::Earliest, t0, 100);
        assert_eq!(
            (seqs(&r), r.gap.clone(), r.last_id),
            (vec![3, 4, 5], None, newest)
        );

        // The seq just before the oldest kept: nothing was missed.
        let r = replay(&mut hub, after(id(2)), t0, 100);
        assert_eq!((seqs(&r), r.gap.clone()), (vec![3, 4, 5], None));

        // Inside the history: the rest of it.
        let r = replay(&mut hub, after(id(4)), t0, 100);
        assert_eq!(
            (seqs(&r), r.gap.clone(), r.last_id),
            (vec![5], None, newest)
        );

        // Up to date.
        let r = replay(&mut hub, after(newest), t0, 100);
        assert_eq!((seqs(&r), r.gap.clone(), r.last_id), (vec![], None, newest));

        let gap = Some(Gap {
            requested: String::new(),
            oldest: Some(id(3)),
        });
        let with_text = |text: String| {
            gap.clone().map(|g| Gap {
                requested: text,
                ..g
            })
        };
        // One older: message 2 is gone. Everything kept, flagged.
        let r = replay(&mut hub, after(id(1)), t0, 100);
        assert_eq!(
            (seqs(&r), r.gap.clone()),
            (vec![3, 4, 5], with_text(format!("{epoch}-1")))
        );
        assert_eq!(r.last_id, newest);
        let r = replay(&mut hub, after(id(0)), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![3, 4, 5], true));

        // Another epoch, older or newer: another history.
        for other in [epoch - 1, epoch + 1, 0] {
            let cursor = MessageId {
                epoch: other,
                seq: 4,
            };
            let r = replay(&mut hub, after(cursor), t0, 100);
            assert_eq!(
                (seqs(&r), r.gap.clone()),
                (vec![3, 4, 5], with_text(cursor.to_string()))
            );
        }

        // Beyond the newest: we never issued it (in this history).
        let r = replay(&mut hub, after(id(6)), t0, 100);
        assert_eq!(
            (seqs(&r), r.gap.clone()),
            (vec![3, 4, 5], with_text(format!("{epoch}-6")))
        );
        let r = replay(&mut hub, after(id(u64::MAX)), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![3, 4, 5], true));

        // The gap carries the cursor text as sent.
        let r = hub
            .replay(&tn("t"), &after(id(1)), "as-sent", t0, lim(100))
            .unwrap();
        assert_eq!(r.gap.unwrap().requested, "as-sent");
    }

    #[test]
    fn max_batch_truncates_and_last_id_resumes() {
        let t0 = Instant::now();
        let (mut hub, epoch) = hub_with(100, 10, t0);
        let mut cursor = Cursor::Earliest;
        let mut got = Vec::new();
        for expected in [vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10], vec![]] {
            let r = replay(&mut hub, cursor, t0, 4);
            assert_eq!(seqs(&r), expected);
            assert!(r.gap.is_none());
            // last_id points at the last message returned.
            let last = expected.last().copied().unwrap_or(10);
            assert_eq!(r.last_id, MessageId { epoch, seq: last });
            got.extend(seqs(&r));
            cursor = after(r.last_id);
        }
        assert_eq!(got, (1..=10).collect::<Vec<_>>());

        // A gap with truncation: the rest is had without a second gap.
        let (mut hub, epoch) = hub_with(5, 10, t0); // keeps 6..=10
        let r = replay(&mut hub, after(MessageId { epoch, seq: 2 }), t0, 2);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![6, 7], true));
        let r = replay(&mut hub, after(r.last_id), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![8, 9, 10], false));

        // max = 0 accounts for nothing: last_id stays before the first
        // undelivered message.
        let r = replay(&mut hub, Cursor::Earliest, t0, 0);
        assert_eq!(r.last_id, MessageId { epoch, seq: 5 });
        let r = replay(&mut hub, after(r.last_id), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![6, 7, 8, 9, 10], false));
    }

    #[test]
    fn count_eviction_keeps_the_newest() {
        let t0 = Instant::now();
        let (mut hub, _) = hub_with(3, 1000, t0);
        let r = replay(&mut hub, Cursor::Earliest, t0, 100);
        assert_eq!(seqs(&r), [998, 999, 1000]);
        assert_eq!(hub.stats().messages, 3);
        // Keeping nothing: every reader with a cursor sees the gap.
        let (mut hub, epoch) = hub_with(0, 2, t0);
        assert_eq!(hub.stats().messages, 0);
        let r = replay(&mut hub, after(MessageId { epoch, seq: 1 }), t0, 100);
        assert_eq!(r.gap.map(|g| g.oldest), Some(None));
        assert_eq!(r.last_id, MessageId { epoch, seq: 2 });
    }

    #[test]
    fn age_eviction() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(100), 1_700_000_000_000_000);
        assert_eq!(hub.poll_timeout(), None);
        let m1 = hub
            .publish(&tn("t"), None, "1", PayloadKind::Text, t0)
            .unwrap();
        hub.publish(&tn("t"), None, "2", PayloadKind::Text, secs(t0, 10))
            .unwrap();
        hub.publish(&tn("t"), None, "3", PayloadKind::Text, secs(t0, 20))
            .unwrap();
        let epoch = m1.id.epoch;
        // The first deadline is the oldest message's expiry.
        assert_eq!(hub.poll_timeout(), Some(secs(t0, 60)));
        hub.handle_timeout(secs(t0, 59));
        assert_eq!(hub.stats().messages, 3);
        // At exactly `age`, the message is old enough to go.
        hub.handle_timeout(secs(t0, 60));
        assert_eq!(hub.stats().messages, 2);
        assert_eq!(hub.poll_timeout(), Some(secs(t0, 70)));
        // Many deadlines passed at once: one call handles them all.
        hub.handle_timeout(secs(t0, 75));
        let r = replay(&mut hub, Cursor::Earliest, secs(t0, 75), 100);
        assert_eq!(seqs(&r), [3]);
        // A reader whose next message was evicted by age gets a gap.
        let r = replay(
            &mut hub,
            after(MessageId { epoch, seq: 1 }),
            secs(t0, 75),
            100,
        );
        assert_eq!(
            (seqs(&r), r.gap.map(|g| g.oldest)),
            (vec![3], Some(Some(m1.id.with_seq(3))))
        );
    }

    #[test]
    fn an_idle_topic_is_freed_and_comes_back_where_it_stood() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(100), 1_700_000_000_000_000);
        let first = hub
            .publish(&tn("t"), None, "x", PayloadKind::Text, t0)
            .unwrap()
            .id;
        let old = hub
            .publish(&tn("t"), None, "y", PayloadKind::Text, t0)
            .unwrap()
            .id;
        hub.handle_timeout(secs(t0, 60));
        // The messages expired; with no subscriber and no use since, the
        // topic is gone.
        assert_eq!(hub.stats(), HubStats::default());
        assert_eq!(hub.last_id(&tn("t")), None);
        assert_eq!(hub.poll_timeout(), None);
        // A reader that had everything missed nothing: no gap, and it
        // stays where it was.
        let r = replay(&mut hub, after(old), secs(t0, 61), 100);
        assert_eq!((&r.gap, r.last_id), (&None, old), "{r:?}");
        // One that had not is told: what it lacks is gone.
        let r = replay(&mut hub, after(first), secs(t0, 61), 100);
        assert_eq!(
            r.gap,
            Some(Gap {
                requested: first.to_string(),
                oldest: None
            })
        );
        // Numbering goes on in the same history.
        let next = hub
            .publish(&tn("t"), None, "z", PayloadKind::Text, secs(t0, 62))
            .unwrap()
            .id;
        assert_eq!(next, old.with_seq(3));
        // A cursor of another history is still a gap.
        let r = replay(&mut hub, after(mid(5, 5)), secs(t0, 62), 100);
        assert!(r.gap.is_some());
    }

    #[test]
    fn freed_topics_are_remembered_up_to_max_topics_and_a_delete_forgets() {
        let t0 = Instant::now();
        let mut lim = limits(100);
        lim.max_topics = 2;
        let mut hub = Hub::new(lim, 1_700_000_000_000_000);
        let mut ids = Vec::new();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let at = secs(t0, 100 * i as u64);
            let id = hub
                .publish(&tn(name), None, "m", PayloadKind::Text, at)
                .unwrap()
                .id;
            hub.handle_timeout(secs(t0, 100 * i as u64 + 60));
            assert_eq!(hub.stats().topics, 0);
            ids.push(id);
        }
        // "a" was forgotten for "c" (at most two): it starts a new epoch.
        assert_eq!(hub.retired.len(), 2);
        let now = secs(t0, 400);
        let again = |hub: &mut Hub, name: &str| {
            hub.publish(&tn(name), None, "n", PayloadKind::Text, now)
                .unwrap()
                .id
        };
        assert_ne!(again(&mut hub, "a").epoch, ids[0].epoch);
        assert_eq!(again(&mut hub, "b"), ids[1].with_seq(2));
        hub.handle_timeout(now + AGE);
        // A delete forgets a freed topic: its next message starts afresh.
        assert_eq!(hub.delete(&tn("c")), None);
        assert_ne!(again(&mut hub, "c").epoch, ids[2].epoch);
        hub.handle_timeout(now + AGE * 2);
        // Retiring and reviving one topic over and over leaves no trail.
        for i in 0..100u64 {
            let at = secs(now, 1000 + 100 * i);
            hub.publish(&tn("d"), None, "m", PayloadKind::Text, at)
                .unwrap();
            hub.handle_timeout(at + Duration::from_secs(60));
        }
        assert!(hub.retired_order.len() <= 2 * hub.retired.len() + 16);
    }

    #[test]
    fn a_used_or_subscribed_topic_is_not_freed() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(100), 1_700_000_000_000_000);
        // A topic created by a reader (a long poll on an empty topic)
        // lives `age` after its last use, keeping its epoch for the poller.
        let first = replay(&mut hub, Cursor::Live, t0, 100).last_id;
        replay(&mut hub, after(first), secs(t0, 50), 100);
        hub.handle_timeout(secs(t0, 60));
        assert_eq!(hub.last_id(&tn("t")), Some(first));
        hub.handle_timeout(secs(t0, 110));
        assert_eq!(hub.last_id(&tn("t")), None);

        // A subscriber keeps a topic whose history expired.
        let m = hub
            .publish(&tn("s"), None, "x", PayloadKind::Text, secs(t0, 200))
            .unwrap();
        hub.subscribe(&tn("s"), 7, Transport::Sse).unwrap();
        hub.handle_timeout(secs(t0, 260));
        hub.handle_timeout(secs(t0, 900));
        assert_eq!(hub.stats().messages, 0);
        assert_eq!(hub.last_id(&tn("s")), Some(m.id));
        // Its reader is up to date; one a message behind gets a gap.
        let r = hub
            .replay(&tn("s"), &after(m.id), "", secs(t0, 900), lim(9))
            .unwrap();
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![], false));
        let r = hub
            .replay(
                &tn("s"),
                &after(m.id.with_seq(0)),
                "",
                secs(t0, 900),
                lim(9),
            )
            .unwrap();
        assert_eq!(r.gap.map(|g| g.oldest), Some(None));
        // Once it leaves, the topic goes at its next deadline.
        hub.unsubscribe(&tn("s"), 7);
        let due = hub.poll_timeout().unwrap();
        hub.handle_timeout(due);
        assert_eq!(hub.last_id(&tn("s")), None);
        assert_eq!(hub.stats(), HubStats::default());
    }

    #[test]
    fn zero_age_evicts_at_once_and_never_spins() {
        let t0 = Instant::now();
        let mut hub = Hub::new(
            HubLimits {
                history_age: Duration::ZERO,
                ..limits(10)
            },
            0,
        );
        hub.publish(&tn("t"), None, "x", PayloadKind::Text, t0)
            .unwrap();
        hub.subscribe(&tn("t"), 1, Transport::Sse).unwrap();
        hub.handle_timeout(t0);
        assert_eq!(hub.stats().messages, 0);
        assert_eq!(hub.stats().topics, 1);
        assert!(hub.poll_timeout().unwrap() > t0);
    }

    #[test]
    fn huge_age_never_expires_and_never_panics() {
        let t0 = Instant::now();
        let mut hub = Hub::new(
            HubLimits {
                history_age: Duration::MAX,
                ..limits(10)
            },
            u64::MAX,
        );
        hub.publish(&tn("t"), None, "x", PayloadKind::Text, t0)
            .unwrap();
        hub.handle_timeout(secs(t0, 1_000_000));
        assert_eq!(hub.stats().messages, 1);
        assert_eq!(hub.poll_timeout(), None);
    }

    #[test]
    fn epochs_increase_strictly() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 1_700_000_000_000_000);
        let mut last = 0;
        for i in 0..50 {
            let m = hub
                .publish(&tn(&format!("t{i}")), None, "x", PayloadKind::Text, t0)
                .unwrap();
            assert!(m.id.epoch > last);
            last = m.id.epoch;
        }
        // Time moves the epoch with it: a minute later, it is a minute on.
        let m = hub
            .publish(&tn("later"), None, "x", PayloadKind::Text, secs(t0, 60))
            .unwrap();
        assert_eq!(m.id.epoch, 1_700_000_060_000_000);
    }

    #[test]
    fn many_subscribers_on_one_topic() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 0);
        hub.publish(&tn("t"), None, "x", PayloadKind::Text, t0)
            .unwrap();
        let n = 5000;
        for sub in 0..n {
            hub.subscribe(&tn("t"), sub, Transport::Sse).unwrap();
        }
        hub.subscribe(&tn("t"), 42, Transport::Sse).unwrap(); // again: no change
        assert_eq!(hub.stats().subscribers, n);
        // Remove every third, in a scrambled order.
        let mut removed: Vec<usize> = (0..n).filter(|s| s % 3 == 0).collect();
        removed.sort_by_key(|s| (s * 7919) % n);
        for &sub in &removed {
            hub.unsubscribe(&tn("t"), sub);
            hub.unsubscribe(&tn("t"), sub); // twice: no change
        }
        hub.unsubscribe(&tn("nowhere"), 1);
        let mut left = hub.subscribers(&tn("t")).to_vec();
        left.sort_unstable();
        let expected: Vec<usize> = (0..n).filter(|s| s % 3 != 0).collect();
        assert_eq!(left, expected);
        assert_eq!(hub.stats().subscribers, expected.len());
        assert!(hub.subscribers(&tn("nowhere")).is_empty());
        // The positions index is still right: remove all the rest.
        for sub in expected {
            hub.unsubscribe(&tn("t"), sub);
        }
        assert!(hub.subscribers(&tn("t")).is_empty());
        assert_eq!(hub.stats().subscribers, 0);
    }

    #[test]
    fn subscribe_before_any_time_is_known() {
        let mut hub = Hub::new(limits(10), 0);
        hub.subscribe(&tn("t"), 1, Transport::Sse).unwrap();
        assert_eq!(hub.poll_timeout(), None);
        // The first use with a time arms the topic's deadline.
        let t0 = Instant::now();
        hub.publish(&tn("t"), None, "x", PayloadKind::Text, t0)
            .unwrap();
        assert_eq!(hub.poll_timeout(), Some(secs(t0, 60)));
    }

    #[test]
    fn message_is_shared_not_copied() {
        let t0 = Instant::now();
        let (mut hub, _) = hub_with(10, 1, t0);
        let a = replay(&mut hub, Cursor::Earliest, t0, 10);
        let b = replay(&mut hub, Cursor::Earliest, t0, 10);
        assert!(Arc::ptr_eq(&a.messages[0], &b.messages[0]));
    }

    /// A hub whose only limits are bytes; each "t" message's charge.
    fn byte_hub(per_topic: usize, total: usize) -> Hub {
        Hub::new(
            HubLimits {
                history_bytes_per_topic: per_topic,
                history_bytes_total: total,
                ..limits(1000)
            },
            1_700_000_000_000_000,
        )
    }

    fn charge_of(hub: &mut Hub, topic: &str, data: &str, t0: Instant) -> usize {
        let m = hub
            .publish(&tn(topic), None, data, PayloadKind::Text, t0)
            .unwrap();
        charge(&m)
    }

    #[test]
    fn per_topic_bytes_evict_oldest_first_and_are_a_gap() {
        let t0 = Instant::now();
        // Room for three 100-byte messages of this topic, not four.
        let one = charge_of(
            &mut byte_hub(usize::MAX, usize::MAX),
            "t",
            &"x".repeat(100),
            t0,
        );
        let mut hub = byte_hub(3 * one + one / 2, usize::MAX);
        let mut ids = Vec::new();
        for _ in 0..5 {
            let m = hub
                .publish(&tn("t"), None, &"x".repeat(100), PayloadKind::Text, t0)
                .unwrap();
            ids.push(m.id);
        }
        let r = replay(&mut hub, Cursor::Earliest, t0, 100);
        assert_eq!(seqs(&r), [3, 4, 5]);
        assert_eq!(hub.stats().messages, 3);
        assert_eq!(hub.stats().kept_bytes, 3 * one);
        assert_eq!(hub.topic_info(&tn("t")).unwrap().kept_bytes, 3 * one);
        // A reader at 1 needed 2, which the byte limit evicted: a gap.
        let r = replay(&mut hub, after(ids[0]), t0, 100);
        assert_eq!(
            (seqs(&r), r.gap.map(|g| g.oldest)),
            (vec![3, 4, 5], Some(Some(ids[2])))
        );
        // A reader at 2 missed nothing.
        let r = replay(&mut hub, after(ids[1]), t0, 100);
        assert_eq!((seqs(&r), r.gap), (vec![3, 4, 5], None));
        // Other topics are not charged for this one.
        hub.publish(&tn("u"), None, "y", PayloadKind::Text, t0)
            .unwrap();
        assert_eq!(hub.topic_info(&tn("u")).unwrap().kept_messages, 1);
    }

    #[test]
    fn message_over_the_byte_limit_is_delivered_but_not_kept() {
        let t0 = Instant::now();
        let mut hub = byte_hub(10, usize::MAX);
        let m = hub
            .publish(&tn("t"), None, "hello", PayloadKind::Text, t0)
            .unwrap();
        assert_eq!(m.data(), "hello");
        assert_eq!(
            hub.stats(),
            HubStats {
                topics: 1,
                ..HubStats::default()
            }
        );
        let r = replay(&mut hub, after(m.id.with_seq(0)), t0, 100);
        assert_eq!(r.gap.map(|g| g.oldest), Some(None));
    }

    #[test]
    fn total_bytes_evict_the_globally_oldest_across_topics() {
        let t0 = Instant::now();
        let data = "x".repeat(100);
        let one = charge_of(&mut byte_hub(usize::MAX, usize::MAX), "a", &data, t0);
        // Every name here has one byte, so every message has the same charge.
        let mut hub = byte_hub(usize::MAX, 4 * one);
        let publish = |hub: &mut Hub, topic: &str, at: u64| {
            hub.publish(&tn(topic), None, &data, PayloadKind::Text, secs(t0, at))
                .unwrap()
                .id
        };
        let a1 = publish(&mut hub, "a", 0);
        let b1 = publish(&mut hub, "b", 1);
        let a2 = publish(&mut hub, "a", 2);
        let _c1 = publish(&mut hub, "c", 3);
        assert_eq!(hub.stats().messages, 4);
        // The fifth evicts a1 (the oldest of all), then the sixth b1 —
        // though topic "a" holds more.
        let _c2 = publish(&mut hub, "c", 4);
        assert_eq!(hub.topic_info(&tn("a")).unwrap().first_id, Some(a2));
        assert_eq!(hub.topic_info(&tn("b")).unwrap().kept_messages, 1);
        let _c3 = publish(&mut hub, "c", 5);
        assert_eq!(hub.topic_info(&tn("b")).unwrap().kept_messages, 0);
        assert_eq!(hub.stats().messages, 4);
        assert_eq!(hub.stats().kept_bytes, 4 * one);
        // Readers that needed the evicted ones are told.
        let r = hub
            .replay(&tn("a"), &after(a1.with_seq(0)), "x", secs(t0, 6), lim(10))
            .unwrap();
        assert_eq!((r.gap.is_some(), r.messages[0].id), (true, a2));
        let r = hub
            .replay(&tn("b"), &after(b1.with_seq(0)), "x", secs(t0, 6), lim(10))
            .unwrap();
        assert_eq!(r.gap.map(|g| g.oldest), Some(None));
        // One reading from a1 missed nothing.
        let r = hub
            .replay(&tn("a"), &after(a1), "x", secs(t0, 6), lim(10))
            .unwrap();
        assert_eq!((r.gap, r.messages.len()), (None, 1));
    }

    #[test]
    fn order_queue_stays_bounded_when_other_limits_evict() {
        let t0 = Instant::now();
        // Count eviction does all the work; the total is never reached.
        let mut hub = Hub::new(limits(2), 0);
        for i in 0..20_000 {
            let topic = tn(&format!("t{}", i % 7));
            hub.publish(&topic, None, "x", PayloadKind::Text, t0)
                .unwrap();
        }
        assert_eq!(hub.stats().messages, 14);
        assert!(hub.order.len() <= 2 * 14 + 1024 + 1, "{}", hub.order.len());
        // Deleted histories leave stale entries too; the total limit skips them.
        for i in 0..7 {
            hub.delete(&tn(&format!("t{i}"))).unwrap();
        }
        assert_eq!(hub.stats().messages, 0);
        hub.limits.history_bytes_total = 0;
        hub.publish(&tn("t0"), None, "y", PayloadKind::Text, t0)
            .unwrap();
        assert_eq!((hub.stats().messages, hub.stats().kept_bytes), (0, 0));
    }

    #[test]
    fn replay_bytes_limit_always_returns_one() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(100), 0);
        for len in [10, 10, 10, 50, 10] {
            hub.publish(&tn("t"), None, &"x".repeat(len), PayloadKind::Text, t0)
                .unwrap();
        }
        let mut cursor = Cursor::Earliest;
        let mut pages = Vec::new();
        loop {
            let limit = ReplayLimit {
                messages: 100,
                bytes: 25,
            };
            let r = hub.replay(&tn("t"), &cursor, "", t0, limit).unwrap();
            if r.messages.is_empty() {
                break;
            }
            pages.push(seqs(&r));
            cursor = after(r.last_id);
        }
        // 10+10 fit in 25; 10 alone (50 would not fit after it); 50 alone,
        // over the limit, because a page always has one; then 10.
        assert_eq!(pages, [vec![1, 2], vec![3], vec![4], vec![5]]);
        // The message count still applies, and 0 still means none.
        let r = hub
            .replay(&tn("t"), &Cursor::Earliest, "", t0, lim(0))
            .unwrap();
        assert!(r.messages.is_empty());
        let config = crate::Config::default();
        assert_eq!(
            ReplayLimit::from_config(&config),
            ReplayLimit {
                messages: 1000,
                bytes: 1024 * 1024
            }
        );
    }

    #[test]
    fn topics_are_listed_by_name_and_paged() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 0);
        for name in ["news.b", "chat", "news.a", "news", "newsy", "zoo"] {
            hub.publish(&tn(name), None, "x", PayloadKind::Text, t0)
                .unwrap();
        }
        let names = |infos: Vec<TopicInfo>| -> Vec<String> {
            infos.iter().map(|i| i.name.to_string()).collect()
        };
        assert_eq!(
            names(hub.topics("", None, 100)),
            ["chat", "news", "news.a", "news.b", "newsy", "zoo"]
        );
        assert_eq!(names(hub.topics("news.", None, 100)), ["news.a", "news.b"]);
        assert_eq!(names(hub.topics("news", None, 2)), ["news", "news.a"]);
        assert_eq!(
            names(hub.topics("news", Some("news.a"), 2)),
            ["news.b", "newsy"]
        );
        assert_eq!(
            names(hub.topics("news", Some("newsy"), 2)),
            Vec::<String>::new()
        );
        // A cursor before the prefix starts at the prefix.
        assert_eq!(names(hub.topics("z", Some("a"), 9)), ["zoo"]);
        assert_eq!(names(hub.topics("", Some("zzz"), 9)), Vec::<String>::new());
        assert!(hub.topics("nothing", None, 9).is_empty());
        assert!(hub.topics("", None, 0).is_empty());
        // Freed topics leave the listing.
        hub.handle_timeout(secs(t0, 60));
        assert!(hub.topics("", None, 100).is_empty());
    }

    #[test]
    fn topic_info_counts_subscribers_by_transport_and_creates_nothing() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 0);
        assert_eq!(hub.topic_info(&tn("t")), None);
        assert_eq!(hub.stats().topics, 0);
        let m1 = hub
            .publish(&tn("t"), None, "one", PayloadKind::Text, t0)
            .unwrap();
        let m2 = hub
            .publish(&tn("t"), None, "{}", PayloadKind::Json, t0)
            .unwrap();
        for (sub, transport) in [
            (1, Transport::Sse),
            (2, Transport::Sse),
            (3, Transport::Ws),
            (4, Transport::Poll),
            (5, Transport::Stream),
            (6, Transport::SocketIo),
        ] {
            hub.subscribe(&tn("t"), sub, transport).unwrap();
        }
        // Again, under another transport: still one subscription.
        hub.subscribe(&tn("t"), 1, Transport::Ws).unwrap();
        let info = hub.topic_info(&tn("t")).unwrap();
        let expected = SubscriberCounts {
            sse: 2,
            ws: 1,
            poll: 1,
            stream: 1,
            socketio: 1,
        };
        assert_eq!(info.subscribers_by_transport, expected);
        assert_eq!(info.subscribers_by_transport.total(), 6);
        assert_eq!(info.subscribers_by_transport.get(Transport::Sse), 2);
        assert_eq!(
            (info.kept_messages, info.first_id, info.last_id, info.epoch),
            (2, Some(m1.id), m2.id, m1.id.epoch)
        );
        assert_eq!(info.kept_bytes, charge(&m1) + charge(&m2));
        hub.unsubscribe(&tn("t"), 1);
        hub.unsubscribe(&tn("t"), 3);
        hub.unsubscribe(&tn("t"), 3);
        let counts = hub.topic_info(&tn("t")).unwrap().subscribers_by_transport;
        assert_eq!((counts.sse, counts.ws, counts.total()), (1, 0, 4));
        let names: Vec<&str> = Transport::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["sse", "ws", "poll", "stream", "socketio"]);
    }

    #[test]
    fn delete_starts_a_new_epoch_and_reports_the_gap() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 1_700_000_000_000_000);
        assert_eq!(hub.delete(&tn("t")), None);
        assert_eq!(hub.stats().topics, 0);
        hub.publish(&tn("t"), None, "a", PayloadKind::Text, t0)
            .unwrap();
        let old = hub
            .publish(&tn("t"), None, "b", PayloadKind::Text, t0)
            .unwrap()
            .id;
        hub.subscribe(&tn("t"), 9, Transport::Sse).unwrap();
        let deleted = hub.delete(&tn("t")).unwrap();
        assert_eq!(deleted.subscribers, [9]);
        assert_eq!(
            deleted.gap,
            Gap {
                requested: old.to_string(),
                oldest: None
            }
        );
        assert!(deleted.last_id.epoch > old.epoch);
        assert_eq!((deleted.last_id.seq, deleted.dropped_messages), (0, 2));
        assert_eq!((hub.stats().messages, hub.stats().kept_bytes), (0, 0));
        // Subscribers stay; the next message is the new epoch's first.
        assert_eq!(hub.subscribers(&tn("t")), [9]);
        let next = hub
            .publish(&tn("t"), None, "c", PayloadKind::Text, t0)
            .unwrap()
            .id;
        assert_eq!(next, deleted.last_id.with_seq(1));
        // An old cursor is another history: everything kept, and a gap.
        let r = replay(&mut hub, after(old), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![1], true));
        let info = hub.topic_info(&tn("t")).unwrap();
        assert_eq!((info.epoch, info.first_id), (next.epoch, Some(next)));
    }

    fn mid(epoch: u64, seq: u64) -> MessageId {
        MessageId { epoch, seq }
    }

    fn insert(hub: &mut Hub, id: MessageId, t0: Instant) -> Option<bool> {
        hub.insert(&tn("t"), id, None, "x", PayloadKind::Text, t0)
            .unwrap()
            .map(|(m, fresh)| {
                assert_eq!(m.id, id);
                fresh
            })
    }

    #[test]
    fn insert_mirrors_ids_given_elsewhere_and_drops_what_a_hole_skipped() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 1);
        // The first message of a mirror starts its history at its own id.
        assert_eq!(insert(&mut hub, mid(500, 3), t0), Some(true));
        assert_eq!(insert(&mut hub, mid(500, 4), t0), Some(false));
        // A duplicate (or an older seq) changes nothing.
        assert_eq!(insert(&mut hub, mid(500, 4), t0), None);
        assert_eq!(insert(&mut hub, mid(500, 1), t0), None);
        assert_eq!(hub.last_id(&tn("t")), Some(mid(500, 4)));
        // A cursor before the mirror's start is a gap, not a silent skip.
        let r = replay(&mut hub, after(mid(500, 1)), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![3, 4], true));
        let r = replay(&mut hub, after(mid(500, 2)), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![3, 4], false));
        // A seq jump empties the history before it: a cursor in the hole
        // reads as older than the oldest kept.
        assert_eq!(insert(&mut hub, mid(500, 8), t0), Some(true));
        let r = replay(&mut hub, after(mid(500, 4)), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![8], true));
        assert_eq!((hub.stats().messages, hub.stats().topics), (1, 1));
        // Another epoch: a history of its own, old cursors are a gap.
        assert_eq!(insert(&mut hub, mid(900, 1), t0), Some(true));
        let r = replay(&mut hub, after(mid(500, 8)), t0, 100);
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![1], true));
        assert_eq!(hub.stats().messages, 1);
        // The limits apply as on publish.
        for seq in 2..=20 {
            insert(&mut hub, mid(900, seq), t0);
        }
        assert_eq!(hub.stats().messages, 10);
        let big = "x".repeat(1025);
        let e = hub.insert(&tn("t"), mid(900, 21), None, &big, PayloadKind::Text, t0);
        assert_eq!(e.unwrap_err().status(), 413);
        // A seq of 0 is no message.
        assert_eq!(insert(&mut hub, mid(900, 0), t0), None);
    }

    #[test]
    fn a_mirror_refuses_to_number_messages_itself() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 1);
        hub.set_mirror(true);
        let e = hub.publish(&tn("t"), None, "x", PayloadKind::Text, t0);
        assert_eq!(e.unwrap_err(), HubError::BrokerUnavailable);
        assert_eq!(insert(&mut hub, mid(5, 1), t0), Some(true));
    }

    #[test]
    fn mirror_position_moves_a_topic_where_its_source_stands() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 1);
        // An empty topic of a known epoch: `<epoch>-0` is a cursor of it.
        assert!(hub.mirror_position(&tn("t"), mid(700, 0)).unwrap());
        let r = replay(&mut hub, after(mid(700, 0)), t0, 100);
        assert_eq!(
            (seqs(&r), r.gap.is_some(), r.last_id),
            (vec![], false, mid(700, 0))
        );
        assert_eq!(insert(&mut hub, mid(700, 1), t0), Some(false));
        assert_eq!(insert(&mut hub, mid(700, 2), t0), Some(false));
        // Where it already is: nothing changes.
        assert!(!hub.mirror_position(&tn("t"), mid(700, 2)).unwrap());
        assert_eq!(hub.stats().messages, 2);
        // Ahead (the messages in between are gone): history dropped.
        assert!(hub.mirror_position(&tn("t"), mid(700, 5)).unwrap());
        assert_eq!((hub.stats().messages, hub.stats().kept_bytes), (0, 0));
        let r = replay(&mut hub, after(mid(700, 2)), t0, 100);
        assert_eq!((r.gap.is_some(), r.last_id), (true, mid(700, 5)));
        // A new epoch (the history was deleted elsewhere).
        assert!(hub.mirror_position(&tn("t"), mid(800, 0)).unwrap());
        assert_eq!(hub.topic_info(&tn("t")).unwrap().epoch, 800);
    }
}

//! The hub: topics, their message histories, and who listens to them.
//!
//! Before working on this module, read DESIGN.md "The HTTP interface",
//! especially "Cursors": this module is where those rules live.
//!
//! The hub is plain data, driven by the event loop: no sockets, no clock
//! (every call that needs the time takes `now`), no threads. The loop calls
//! [`Hub::publish`] and then writes the returned [`Message`]'s pre-encoded
//! bytes to each of [`Hub::subscribers`]; it calls [`Hub::replay`] when a
//! reader arrives with a cursor; and it sleeps until
//! [`Hub::poll_timeout`], then calls [`Hub::handle_timeout`].
//!
//! Costs, for the numbers a push server meets (thousands of subscribers on
//! one topic, many idle topics):
//! - publish: O(1) plus encoding the message once;
//! - subscribe, unsubscribe: O(1) (a list and each member's position in it);
//! - replay: O(messages returned);
//! - age eviction: O(log topics) per topic that has something due — a
//!   min-heap of deadlines, never a scan of every topic.
//!
//! Memory is bounded by [`HubLimits`]: `max_topics` topics of at most
//! `history_messages` messages of at most `max_message_bytes` bytes.

mod id;
mod message;

pub use id::{parse_cursor, Cursor, CursorError, MessageId};
pub use message::{Gap, Message, Replay, SharedBytes};

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
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
}

impl HubLimits {
    pub fn from_config(c: &crate::Config) -> Self {
        HubLimits {
            history_messages: c.history_messages,
            history_age: c.history_age,
            max_topics: c.max_topics,
            max_message_bytes: c.max_message_bytes,
        }
    }
}

/// The characters of topic and event names: `[A-Za-z0-9._:-]`. None of
/// them needs escaping in a URL path, a query, a JSON string or an SSE
/// field — and a CR or LF in an event name would inject SSE lines.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// A valid topic name: 1–128 bytes of `[A-Za-z0-9._:-]`, matched as sent
/// (DESIGN.md: no percent-decoding).
pub fn valid_topic(t: &str) -> bool {
    (1..=128).contains(&t.len()) && t.bytes().all(is_name_byte)
}

/// A valid event name: 1–64 bytes of the same set.
pub fn valid_event(e: &str) -> bool {
    (1..=64).contains(&e.len()) && e.bytes().all(is_name_byte)
}

/// What the event loop hands the hub for a connection: its token.
pub type SubscriberId = usize;

/// Why the hub refused a request; each variant carries its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HubError {
    /// The topic name breaks the name rule (see [`valid_topic`]): 400.
    #[error("invalid topic name (1-128 bytes of A-Z a-z 0-9 . _ : -)")]
    InvalidTopic,
    /// The event name breaks the name rule (see [`valid_event`]): 400.
    #[error("invalid event name (1-64 bytes of A-Z a-z 0-9 . _ : -)")]
    InvalidEvent,
    /// The message is larger than `max_message_bytes`: 413.
    #[error("message of {size} bytes is over the limit of {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    /// Creating the topic would exceed `max_topics`: 503 (the client may
    /// retry; idle topics are freed over time).
    #[error("too many topics (limit {limit})")]
    TooManyTopics { limit: usize },
    /// The server that owns the hub has stopped (a publish from another
    /// thread found no one to take it): 503.
    #[error("the server is stopping")]
    Stopped,
}

impl HubError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HubError::InvalidTopic | HubError::InvalidEvent => 400,
            HubError::MessageTooLarge { .. } => 413,
            HubError::TooManyTopics { .. } | HubError::Stopped => 503,
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
}

/// How soon a topic that has subscribers but nothing kept is looked at
/// again, when `history_age` is shorter (zero).
const MIN_RECHECK: Duration = Duration::from_secs(1);

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
    history: VecDeque<Arc<Message>>,
    subscribers: Vec<SubscriberId>,
    /// Each subscriber's index in `subscribers`, so that unsubscribing is a
    /// `swap_remove` instead of a search through thousands.
    positions: HashMap<SubscriberId, usize>,
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
            subscribers: Vec::new(),
            positions: HashMap::new(),
            touched,
            armed: false,
        }
    }

    /// The first seq still deliverable: the oldest kept, or, with nothing
    /// kept, the seq the next message will get.
    fn first_kept_seq(&self) -> u64 {
        match self.history.front() {
            Some(m) => m.id.seq,
            None => self.last_seq.saturating_add(1),
        }
    }

    /// When this topic next needs attention: its oldest message's expiry,
    /// or, with nothing kept, the end of its idle time. `None`: no time is
    /// known yet, or the age is too large to add to an `Instant`.
    fn deadline(&self, age: Duration) -> Option<Instant> {
        match self.history.front() {
            Some(m) => m.published_at.checked_add(age),
            None => self.touched?.checked_add(age),
        }
    }

    /// Drops the kept messages published at or before `cutoff`; returns
    /// how many.
    fn evict_published_by(&mut self, cutoff: Instant) -> usize {
        let before = self.history.len();
        while self
            .history
            .front()
            .is_some_and(|m| m.published_at <= cutoff)
        {
            self.history.pop_front();
        }
        before - self.history.len()
    }

    fn id(&self, seq: u64) -> MessageId {
        MessageId {
            epoch: self.epoch,
            seq,
        }
    }
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
    /// One entry per armed topic: a time at or before which it may next
    /// need attention. Entries are never updated in place: a topic's
    /// deadline only ever moves later (its oldest message goes, or it is
    /// used again), so an entry that pops too early is pushed back with the
    /// right time. That keeps publish free of heap work.
    timers: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    kept_messages: usize,
    subscriptions: usize,
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
            timers: BinaryHeap::new(),
            kept_messages: 0,
            subscriptions: 0,
        }
    }

    /// Records the time a caller passed in.
    fn observe(&mut self, now: Instant) {
        self.start.get_or_insert(now);
        self.last_now = Some(now);
    }

    /// The topic named `name` (already validated), created with a fresh
    /// epoch if it does not exist. `now`, when given, counts as a use.
    fn topic_mut(&mut self, name: &str, now: Option<Instant>) -> Result<&mut Topic, HubError> {
        let full = self.topics.len() >= self.limits.max_topics;
        // The map's own key when the topic exists (a reference count, not
        // an allocation, on the publish path); a new one otherwise.
        let key: Arc<str> = match self.topics.get_key_value(name) {
            Some((key, _)) => Arc::clone(key),
            None => name.into(),
        };
        let topic = match self.topics.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                if full {
                    return Err(HubError::TooManyTopics {
                        limit: self.limits.max_topics,
                    });
                }
                let epoch = next_epoch(
                    &mut self.last_epoch,
                    self.epoch_base,
                    self.start,
                    self.last_now,
                );
                entry.insert(Topic::new(epoch, self.last_now))
            }
        };
        if now.is_some() {
            topic.touched = now;
        }
        if !topic.armed {
            if let Some(deadline) = topic.deadline(self.limits.history_age) {
                self.timers.push(Reverse((deadline, key)));
                topic.armed = true;
            }
        }
        Ok(topic)
    }

    /// Publishes `data` to `topic` (created on first use) and returns the
    /// message, its wire forms encoded once for every subscriber.
    ///
    /// Errors: [`HubError::InvalidTopic`], [`HubError::InvalidEvent`] (400),
    /// [`HubError::MessageTooLarge`] (413), [`HubError::TooManyTopics`]
    /// (503).
    pub fn publish(
        &mut self,
        topic: &str,
        event: Option<&str>,
        data: &str,
        now: Instant,
    ) -> Result<Arc<Message>, HubError> {
        if !valid_topic(topic) {
            return Err(HubError::InvalidTopic);
        }
        if event.is_some_and(|e| !valid_event(e)) {
            return Err(HubError::InvalidEvent);
        }
        if data.len() > self.limits.max_message_bytes {
            return Err(HubError::MessageTooLarge {
                size: data.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        self.observe(now);
        let keep = self.limits.history_messages;
        let t = self.topic_mut(topic, Some(now))?;
        t.last_seq = t.last_seq.saturating_add(1);
        let message = Arc::new(Message::new(t.id(t.last_seq), event, data, now));
        t.history.push_back(Arc::clone(&message));
        // Count eviction: the oldest goes once more than `keep` are kept.
        let mut evicted = 0;
        while t.history.len() > keep {
            t.history.pop_front();
            evicted += 1;
        }
        self.kept_messages = self.kept_messages + 1 - evicted;
        Ok(message)
    }

    /// The subscribers of `topic`, in no particular order (empty if the
    /// topic does not exist).
    pub fn subscribers(&self, topic: &str) -> &[SubscriberId] {
        self.topics
            .get(topic)
            .map_or(&[], |t| t.subscribers.as_slice())
    }

    /// The messages of `topic` after `cursor`, at most `max` of them, oldest
    /// first, with the gap if some are gone (DESIGN.md "Cursors"):
    ///
    /// - `Live`: none; `last_id` is the newest id (`<epoch>-0` if none).
    /// - `Earliest`: everything kept; never a gap.
    /// - `After(id)`: the messages after `id`. If `id` is of another epoch,
    ///   beyond the newest, or older than the oldest kept — that is, the
    ///   message right after it is no longer kept — everything kept, and a
    ///   gap whose `requested` is `cursor_text`.
    ///
    /// `last_id` is the next request's cursor: the last message returned,
    /// or where the reader stands when none is. With `max` smaller than
    /// what is available, the rest is had by asking again from `last_id`.
    ///
    /// The topic is created if needed, so that even an empty topic has an
    /// epoch to put in `last_id`: [`HubError::TooManyTopics`] is possible.
    pub fn replay(
        &mut self,
        topic: &str,
        cursor: &Cursor,
        cursor_text: &str,
        now: Instant,
        max: usize,
    ) -> Result<Replay, HubError> {
        if !valid_topic(topic) {
            return Err(HubError::InvalidTopic);
        }
        self.observe(now);
        let t = self.topic_mut(topic, Some(now))?;
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
        let messages: Vec<Arc<Message>> = t.history.range(skip..).take(max).cloned().collect();
        let last_id = match messages.last() {
            Some(m) => m.id,
            None => t.id(start.saturating_sub(1)),
        };
        let gap = gap.then(|| Gap {
            requested: cursor_text.to_owned(),
            oldest: t.history.front().map(|m| m.id),
        });
        Ok(Replay {
            messages,
            gap,
            last_id,
        })
    }

    /// Adds `sub` to the subscribers of `topic` (created if needed). A
    /// second subscribe of the same subscriber changes nothing.
    pub fn subscribe(&mut self, topic: &str, sub: SubscriberId) -> Result<(), HubError> {
        if !valid_topic(topic) {
            return Err(HubError::InvalidTopic);
        }
        let t = self.topic_mut(topic, None)?;
        if let Entry::Vacant(slot) = t.positions.entry(sub) {
            slot.insert(t.subscribers.len());
            t.subscribers.push(sub);
            self.subscriptions += 1;
        }
        Ok(())
    }

    /// Removes `sub` from the subscribers of `topic`, if it is one. The
    /// topic itself stays until [`Hub::handle_timeout`] finds it idle.
    pub fn unsubscribe(&mut self, topic: &str, sub: SubscriberId) {
        let Some(t) = self.topics.get_mut(topic) else {
            return;
        };
        let Some(index) = t.positions.remove(&sub) else {
            return;
        };
        if index < t.subscribers.len() {
            t.subscribers.swap_remove(index);
            // The last subscriber moved into the hole: record where.
            if let Some(&moved) = t.subscribers.get(index) {
                t.positions.insert(moved, index);
            }
        }
        self.subscriptions -= 1;
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
                self.kept_messages -= t.evict_published_by(cutoff);
            }
            let idle = t.touched.is_some_and(|touched| Some(touched) <= cutoff);
            if t.history.is_empty() && t.subscribers.is_empty() && idle {
                self.topics.remove(&name);
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

    /// Topics, kept messages and subscriptions, counted as they change.
    pub fn stats(&self) -> HubStats {
        HubStats {
            topics: self.topics.len(),
            messages: self.kept_messages,
            subscribers: self.subscriptions,
        }
    }

    /// The id of the newest message published to `topic` (`<epoch>-0`
    /// before the first), if the topic exists.
    pub fn last_id(&self, topic: &str) -> Option<MessageId> {
        self.topics.get(topic).map(|t| t.id(t.last_seq))
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
            hub.publish("t", None, &format!("m{i}"), t0).unwrap();
        }
        let epoch = hub
            .replay("t", &Cursor::Live, "", t0, 0)
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
        hub.replay("t", &cursor, &text, now, max).unwrap()
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
        let a = hub.publish("t", None, "a", t0).unwrap();
        let b = hub.publish("t", Some("tick"), "b", t0).unwrap();
        assert_eq!(a.id.seq, 1);
        assert_eq!(b.id.seq, 2);
        assert_eq!(a.id.epoch, b.id.epoch);
        // The epoch is the history's start time in milliseconds.
        assert_eq!(a.id.epoch, 1_700_000_000_000_000);
        assert_eq!(&*a.id_text, &format!("{}-1", a.id.epoch));
        assert_eq!(b.event.as_deref(), Some("tick"));

        let err = |r: Result<Arc<Message>, HubError>| r.unwrap_err();
        let e = err(hub.publish("bad topic", None, "x", t0));
        assert_eq!((e.clone(), e.status()), (HubError::InvalidTopic, 400));
        let e = err(hub.publish("t", Some("bad\nevent"), "x", t0));
        assert_eq!((e.clone(), e.status()), (HubError::InvalidEvent, 400));
        let e = err(hub.publish("t", Some(""), "x", t0));
        assert_eq!(e, HubError::InvalidEvent);
        // The limit itself is allowed; one byte over is not.
        hub.publish("t", None, &"x".repeat(1024), t0).unwrap();
        let e = err(hub.publish("t", None, &"x".repeat(1025), t0));
        assert_eq!(
            e,
            HubError::MessageTooLarge {
                size: 1025,
                limit: 1024
            }
        );
        assert_eq!(e.status(), 413);
        assert_eq!(HubError::Stopped.status(), 503);
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
        hub.publish("a", None, "x", t0).unwrap();
        hub.subscribe("b", 1).unwrap();
        let e = hub.publish("c", None, "x", t0).unwrap_err();
        assert_eq!(e, HubError::TooManyTopics { limit: 2 });
        assert_eq!(e.status(), 503);
        assert!(hub.replay("c", &Cursor::Live, "", t0, 10).is_err());
        assert!(hub.subscribe("c", 1).is_err());
        // Existing topics still work.
        hub.publish("b", None, "x", t0).unwrap();
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
            hub.publish("t", None, text, t0).unwrap();
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
        let r = hub.replay("t", &after(id(1)), "as-sent", t0, 100).unwrap();
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
        let m1 = hub.publish("t", None, "1", t0).unwrap();
        hub.publish("t", None, "2", secs(t0, 10)).unwrap();
        hub.publish("t", None, "3", secs(t0, 20)).unwrap();
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
    fn idle_topic_is_freed_and_comes_back_with_a_fresh_epoch() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(100), 1_700_000_000_000_000);
        let m = hub.publish("t", None, "x", t0).unwrap();
        let old = m.id;
        hub.handle_timeout(secs(t0, 60));
        // The message expired; with no subscriber and no use since, the
        // topic is gone.
        assert_eq!(hub.stats(), HubStats::default());
        assert_eq!(hub.last_id("t"), None);
        assert_eq!(hub.poll_timeout(), None);
        // A later use starts a new history: the old cursor is of another
        // epoch, so the reader learns it may have missed something.
        let r = replay(&mut hub, after(old), secs(t0, 61), 100);
        assert_ne!(r.last_id.epoch, old.epoch);
        assert!(r.last_id.epoch > old.epoch);
        assert_eq!(r.last_id.seq, 0);
        assert_eq!(
            r.gap,
            Some(Gap {
                requested: old.to_string(),
                oldest: None
            })
        );
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
        assert_eq!(hub.last_id("t"), Some(first));
        hub.handle_timeout(secs(t0, 110));
        assert_eq!(hub.last_id("t"), None);

        // A subscriber keeps a topic whose history expired.
        let m = hub.publish("s", None, "x", secs(t0, 200)).unwrap();
        hub.subscribe("s", 7).unwrap();
        hub.handle_timeout(secs(t0, 260));
        hub.handle_timeout(secs(t0, 900));
        assert_eq!(hub.stats().messages, 0);
        assert_eq!(hub.last_id("s"), Some(m.id));
        // Its reader is up to date; one a message behind gets a gap.
        let r = hub.replay("s", &after(m.id), "", secs(t0, 900), 9).unwrap();
        assert_eq!((seqs(&r), r.gap.is_some()), (vec![], false));
        let r = hub
            .replay("s", &after(m.id.with_seq(0)), "", secs(t0, 900), 9)
            .unwrap();
        assert_eq!(r.gap.map(|g| g.oldest), Some(None));
        // Once it leaves, the topic goes at its next deadline.
        hub.unsubscribe("s", 7);
        let due = hub.poll_timeout().unwrap();
        hub.handle_timeout(due);
        assert_eq!(hub.last_id("s"), None);
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
        hub.publish("t", None, "x", t0).unwrap();
        hub.subscribe("t", 1).unwrap();
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
        hub.publish("t", None, "x", t0).unwrap();
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
            let m = hub.publish(&format!("t{i}"), None, "x", t0).unwrap();
            assert!(m.id.epoch > last);
            last = m.id.epoch;
        }
        // Time moves the epoch with it: a minute later, it is a minute on.
        let m = hub.publish("later", None, "x", secs(t0, 60)).unwrap();
        assert_eq!(m.id.epoch, 1_700_000_060_000_000);
    }

    #[test]
    fn many_subscribers_on_one_topic() {
        let t0 = Instant::now();
        let mut hub = Hub::new(limits(10), 0);
        hub.publish("t", None, "x", t0).unwrap();
        let n = 5000;
        for sub in 0..n {
            hub.subscribe("t", sub).unwrap();
        }
        hub.subscribe("t", 42).unwrap(); // again: no change
        assert_eq!(hub.stats().subscribers, n);
        // Remove every third, in a scrambled order.
        let mut removed: Vec<usize> = (0..n).filter(|s| s % 3 == 0).collect();
        removed.sort_by_key(|s| (s * 7919) % n);
        for &sub in &removed {
            hub.unsubscribe("t", sub);
            hub.unsubscribe("t", sub); // twice: no change
        }
        hub.unsubscribe("nowhere", 1);
        let mut left = hub.subscribers("t").to_vec();
        left.sort_unstable();
        let expected: Vec<usize> = (0..n).filter(|s| s % 3 != 0).collect();
        assert_eq!(left, expected);
        assert_eq!(hub.stats().subscribers, expected.len());
        assert!(hub.subscribers("nowhere").is_empty());
        // The positions index is still right: remove all the rest.
        for sub in expected {
            hub.unsubscribe("t", sub);
        }
        assert!(hub.subscribers("t").is_empty());
        assert_eq!(hub.stats().subscribers, 0);
    }

    #[test]
    fn subscribe_before_any_time_is_known() {
        let mut hub = Hub::new(limits(10), 0);
        hub.subscribe("t", 1).unwrap();
        assert_eq!(hub.poll_timeout(), None);
        // The first use with a time arms the topic's deadline.
        let t0 = Instant::now();
        hub.publish("t", None, "x", t0).unwrap();
        assert_eq!(hub.poll_timeout(), Some(secs(t0, 60)));
        assert!(hub.subscribe("bad topic", 1).is_err());
    }

    #[test]
    fn message_is_shared_not_copied() {
        let t0 = Instant::now();
        let (mut hub, _) = hub_with(10, 1, t0);
        let a = replay(&mut hub, Cursor::Earliest, t0, 10);
        let b = replay(&mut hub, Cursor::Earliest, t0, 10);
        assert!(Arc::ptr_eq(&a.messages[0], &b.messages[0]));
    }
}

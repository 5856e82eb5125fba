//! Following one topic on Redis: replay after a cursor, then live, with
//! no message twice, none out of order, and every loss reported as a gap.
//!
//! Before working on this file, read [`super::broker`] (the replay script
//! and the live payload) and DESIGN.md "Cursors".
//!
//! Pub/sub is at-most-once: a message published while the subscriber
//! connection is down, or dropped by Redis for a slow subscriber, is simply
//! not delivered. The stream has every message that is still kept, so the
//! follower reads it to fill any hole, and the seq numbers tell it where
//! the holes are:
//!
//! 1. The driver SUBSCRIBEs the topic's channel *first*, then starts the
//!    follower; live messages that arrive while a replay is outstanding
//!    are buffered.
//! 2. The replay (after the cursor) is delivered; buffered live messages
//!    the replay already covered are dropped by seq, the rest follow.
//! 3. Live, each message must be the last seq + 1. A smaller seq is a
//!    duplicate (dropped); a larger one is a hole: the follower asks for a
//!    replay after the last seq it delivered and buffers meanwhile. What
//!    the stream no longer has is reported as a gap. A message of another
//!    epoch means the history started afresh: a gap, then the new
//!    history from its oldest kept message.
//!
//! The driver calls [`handle_live`](TopicFollower::handle_live) for each
//! message on the channel, sends each [`poll_request`](TopicFollower::poll_request)
//! as [`super::broker::replay`] and hands its parsed reply to
//! [`handle_replay`](TopicFollower::handle_replay), and delivers
//! [`poll_event`](TopicFollower::poll_event) to the subscriber.

use std::collections::VecDeque;

use crate::hub::{Cursor, MessageId};

use super::broker::{Record, Replay};

/// Limits of one follower.
#[derive(Debug, Clone, Copy)]
pub struct FollowLimits {
    /// Records asked for per replay; more are read page by page.
    pub page: usize,
    /// Most live messages buffered while a replay is outstanding. Over it
    /// the buffer is dropped and, once the replay is in, read again from
    /// the stream (a gap for any that were evicted meanwhile): memory stays
    /// bounded, and nothing is lost that Redis still keeps.
    pub max_buffered: usize,
}

impl Default for FollowLimits {
    fn default() -> Self {
        FollowLimits {
            page: 1000,
            max_buffered: 10_000,
        }
    }
}

/// A replay to send: [`super::broker::replay`] with these arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRequest {
    /// Records after this seq; `None`: from the oldest kept.
    pub after: Option<u64>,
    pub count: usize,
}

/// Messages the subscriber could not be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowGap {
    /// The position the subscriber had (its cursor, or the last id it was
    /// given); `None` if it had none in this topic's known history.
    pub requested: Option<MessageId>,
    /// The oldest id still kept, if any.
    pub oldest: Option<MessageId>,
}

/// What the subscriber is to be given, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    Message(Record),
    Gap(FollowGap),
}

/// What the outstanding replay was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The client's cursor: it must be of the topic's current epoch.
    Cursor(MessageId),
    /// Everything kept; report `gap` first if it is set.
    Oldest { gap: Option<FollowGap> },
    /// After the last seq delivered, in the current epoch.
    Continue,
}

/// One subscriber's view of one topic (see the module comment).
#[derive(Debug)]
pub struct TopicFollower {
    limits: FollowLimits,
    epoch: Option<u64>,
    /// The last seq delivered (or accounted for by a gap) in `epoch`;
    /// `None` until the first message or replay sets it.
    last: Option<u64>,
    /// A replay asked for: queued for the driver, or sent and awaited.
    asked: Option<Purpose>,
    request: Option<ReplayRequest>,
    buffer: VecDeque<Record>,
    /// Live messages were dropped from a full buffer: read the stream
    /// again once the current replay is in.
    overflowed: bool,
    events: VecDeque<FollowEvent>,
}

impl TopicFollower {
    /// Starts following at `cursor`. [`Cursor::Live`] starts at the next
    /// message that arrives; the others ask for a replay first.
    pub fn new(cursor: Cursor, limits: FollowLimits) -> TopicFollower {
        let mut f = TopicFollower {
            limits: FollowLimits {
                page: limits.page.max(1),
                ..limits
            },
            epoch: None,
            last: None,
            asked: None,
            request: None,
            buffer: VecDeque::new(),
            overflowed: false,
            events: VecDeque::new(),
        };
        match cursor {
            Cursor::Live => {}
            Cursor::Earliest => f.ask(Purpose::Oldest { gap: None }),
            Cursor::After(id) => f.ask(Purpose::Cursor(id)),
        }
        f
    }

    /// The last id the subscriber was given (or told it missed).
    pub fn last_id(&self) -> Option<MessageId> {
        Some(MessageId {
            epoch: self.epoch?,
            seq: self.last?,
        })
    }

    /// The replay to send next, if one is needed. At most one is
    /// outstanding at a time.
    pub fn poll_request(&mut self) -> Option<ReplayRequest> {
        self.request.take()
    }

    pub fn poll_event(&mut self) -> Option<FollowEvent> {
        self.events.pop_front()
    }

    /// A message arrived on the topic's channel.
    pub fn handle_live(&mut self, record: Record) {
        if self.asked.is_some() {
            if self.buffer.len() >= self.limits.max_buffered {
                self.buffer.clear();
                self.overflowed = true;
            }
            self.buffer.push_back(record);
            return;
        }
        let id = record.id;
        match (self.epoch, self.last) {
            (Some(epoch), Some(last)) if epoch == id.epoch => {
                if id.seq <= last {
                    // Already given (by a replay, or a duplicate).
                } else if id.seq == last + 1 {
                    self.deliver(record);
                } else {
                    // A hole: pub/sub lost something. The stream may have it.
                    self.buffer.push_back(record);
                    self.ask(Purpose::Continue);
                }
            }
            (Some(epoch), last) => {
                // Another epoch: the history started afresh. Read it from
                // its start; what is gone is a gap.
                let gap = FollowGap {
                    requested: last.map(|seq| MessageId { epoch, seq }),
                    oldest: None,
                };
                self.buffer.push_back(record);
                self.ask(Purpose::Oldest { gap: Some(gap) });
            }
            (None, _) => {
                // No position yet (a live start): this message is it.
                self.epoch = Some(id.epoch);
                self.deliver(record);
            }
        }
    }

    /// The subscriber connection was re-established: whatever was
    /// published meanwhile never came by pub/sub. Read it from the stream.
    pub fn handle_resubscribed(&mut self) {
        if self.asked.is_none() && self.last.is_some() {
            self.ask(Purpose::Continue);
        }
    }

    /// The outstanding replay failed (its connection was lost): it is asked
    /// for again by the next [`poll_request`](Self::poll_request).
    pub fn handle_replay_failed(&mut self) {
        if let Some(purpose) = self.asked {
            self.request = Some(self.request_for(purpose));
        }
    }

    /// The reply to the outstanding replay.
    pub fn handle_replay(&mut self, replay: Replay) {
        let Some(purpose) = self.asked.take() else {
            return;
        };
        self.request = None;
        let Some(epoch) = replay.epoch else {
            // No meta key: the topic has no history now. Any position the
            // subscriber had is gone.
            let requested = match purpose {
                Purpose::Cursor(id) => Some(id),
                Purpose::Oldest { gap } => gap.and_then(|g| g.requested),
                Purpose::Continue => self.last_id(),
            };
            if requested.is_some() {
                self.gap(requested, None);
            }
            self.epoch = None;
            self.last = None;
            return self.settle();
        };
        match purpose {
            Purpose::Cursor(id) if id.epoch != epoch || id.seq > replay.last_seq => {
                // Another epoch's cursor, or beyond the newest: everything
                // kept, flagged as a gap (DESIGN.md "Cursors").
                let gap = FollowGap {
                    requested: Some(id),
                    oldest: None,
                };
                self.ask(Purpose::Oldest { gap: Some(gap) })
            }
            Purpose::Cursor(id) => {
                self.epoch = Some(epoch);
                self.last = Some(id.seq);
                self.take_replay(epoch, replay, true)
            }
            Purpose::Continue if self.epoch != Some(epoch) => {
                let gap = FollowGap {
                    requested: self.last_id(),
                    oldest: None,
                };
                self.ask(Purpose::Oldest { gap: Some(gap) })
            }
            Purpose::Continue => self.take_replay(epoch, replay, true),
            Purpose::Oldest { gap } => {
                if let Some(g) = gap {
                    let oldest = replay
                        .records
                        .first()
                        .map(|r| r.id)
                        .or(replay.oldest_seq.map(|seq| MessageId { epoch, seq }));
                    self.gap(g.requested, oldest);
                }
                self.epoch = Some(epoch);
                self.last = Some(0);
                self.take_replay(epoch, replay, false)
            }
        }
    }

    /// Delivers a replay's records in `epoch` after `self.last`, reporting
    /// a gap first if the stream no longer has the next one.
    fn take_replay(&mut self, epoch: u64, replay: Replay, report_gap: bool) {
        let from = self.last.unwrap_or(0);
        let first = replay.records.first().map(|r| r.id.seq);
        let missing = match first {
            Some(seq) => seq > from + 1,
            None => replay.last_seq > from,
        };
        if report_gap && missing {
            let oldest = first
                .or(replay.oldest_seq)
                .map(|seq| MessageId { epoch, seq });
            self.gap(Some(MessageId { epoch, seq: from }), oldest);
        }
        let full_page = replay.records.len() >= self.limits.page;
        for record in replay.records {
            if record.id.epoch == epoch && record.id.seq > self.last.unwrap_or(0) {
                self.deliver(record);
            }
        }
        let last = self.last.unwrap_or(0);
        if full_page && last < replay.last_seq {
            return self.ask(Purpose::Continue);
        }
        // Everything up to the newest is given or reported.
        self.last = Some(last.max(replay.last_seq));
        self.settle();
    }

    /// The replay is complete: read again if the buffer overflowed, else
    /// pass the buffered live messages through the live rules.
    fn settle(&mut self) {
        if std::mem::take(&mut self.overflowed) {
            return self.ask(if self.last.is_some() {
                Purpose::Continue
            } else {
                Purpose::Oldest { gap: None }
            });
        }
        while self.asked.is_none() {
            let Some(record) = self.buffer.pop_front() else {
                break;
            };
            self.handle_live(record);
        }
    }

    fn deliver(&mut self, record: Record) {
        self.last = Some(record.id.seq);
        self.events.push_back(FollowEvent::Message(record));
    }

    fn gap(&mut self, requested: Option<MessageId>, oldest: Option<MessageId>) {
        self.events
            .push_back(FollowEvent::Gap(FollowGap { requested, oldest }));
    }

    fn ask(&mut self, purpose: Purpose) {
        self.asked = Some(purpose);
        self.request = Some(self.request_for(purpose));
    }

    fn request_for(&self, purpose: Purpose) -> ReplayRequest {
        let after = match purpose {
            Purpose::Cursor(id) => Some(id.seq),
            Purpose::Oldest { .. } => None,
            Purpose::Continue => Some(self.last.unwrap_or(0)),
        };
        ReplayRequest {
            after,
            count: self.limits.page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::broker::PayloadKind;
    use super::*;

    const E: u64 = 100;

    fn rec(epoch: u64, seq: u64) -> Record {
        Record {
            id: MessageId { epoch, seq },
            event: None,
            kind: PayloadKind::Text,
            data: format!("{epoch}-{seq}"),
        }
    }

    fn id(epoch: u64, seq: u64) -> MessageId {
        MessageId { epoch, seq }
    }

    /// An empty stream.
    fn nothing() -> std::ops::RangeInclusive<u64> {
        std::ops::RangeInclusive::new(1, 0)
    }

    /// A topic in Redis: its epoch, and which seqs its stream still keeps.
    struct Topic {
        epoch: Option<u64>,
        kept: std::ops::RangeInclusive<u64>,
        last: u64,
    }

    impl Topic {
        fn answer(&self, req: ReplayRequest) -> Replay {
            let Some(epoch) = self.epoch else {
                return Replay {
                    epoch: None,
                    last_seq: 0,
                    oldest_seq: None,
                    records: vec![],
                };
            };
            let start = req.after.map_or(0, |a| a + 1);
            Replay {
                epoch: Some(epoch),
                last_seq: self.last,
                oldest_seq: (!self.kept.is_empty()).then(|| *self.kept.start()),
                records: self
                    .kept
                    .clone()
                    .filter(|s| *s >= start)
                    .take(req.count)
                    .map(|s| rec(epoch, s))
                    .collect(),
            }
        }
    }

    /// Answers every request from `topic` until none is left.
    fn serve(f: &mut TopicFollower, topic: &Topic) -> usize {
        let mut n = 0;
        while let Some(req) = f.poll_request() {
            f.handle_replay(topic.answer(req));
            n += 1;
        }
        n
    }

    fn events(f: &mut TopicFollower) -> Vec<FollowEvent> {
        std::iter::from_fn(|| f.poll_event()).collect()
    }

    fn msgs(epoch: u64, seqs: impl IntoIterator<Item = u64>) -> Vec<FollowEvent> {
        seqs.into_iter()
            .map(|s| FollowEvent::Message(rec(epoch, s)))
            .collect()
    }

    fn gap(requested: Option<MessageId>, oldest: Option<MessageId>) -> FollowEvent {
        FollowEvent::Gap(FollowGap { requested, oldest })
    }

    #[test]
    fn live_start_drops_duplicates_and_fills_holes_from_the_stream() {
        let mut f = TopicFollower::new(Cursor::Live, FollowLimits::default());
        assert_eq!(f.poll_request(), None);
        for s in [1, 2, 3, 2] {
            f.handle_live(rec(E, s));
        }
        assert_eq!(events(&mut f), msgs(E, 1..=3));
        // 4 was lost by pub/sub.
        f.handle_live(rec(E, 5));
        assert_eq!(
            f.poll_request(),
            Some(ReplayRequest {
                after: Some(3),
                count: 1000
            })
        );
        f.handle_live(rec(E, 6)); // buffered meanwhile
        let topic = Topic {
            epoch: Some(E),
            kept: 1..=5,
            last: 5,
        };
        f.handle_replay(topic.answer(ReplayRequest {
            after: Some(3),
            count: 1000,
        }));
        assert_eq!(events(&mut f), msgs(E, 4..=6));
        assert_eq!(f.last_id(), Some(id(E, 6)));
    }

    #[test]
    fn a_cursor_replays_then_buffered_live_messages_follow_without_repeats() {
        let mut f = TopicFollower::new(Cursor::After(id(E, 2)), FollowLimits::default());
        // Published after SUBSCRIBE, before the replay ran: in both.
        f.handle_live(rec(E, 5));
        f.handle_live(rec(E, 6));
        let topic = Topic {
            epoch: Some(E),
            kept: 1..=5,
            last: 5,
        };
        assert_eq!(serve(&mut f, &topic), 1);
        f.handle_live(rec(E, 7));
        assert_eq!(events(&mut f), msgs(E, 3..=7));
    }

    #[test]
    fn evicted_history_is_a_gap_then_what_is_kept() {
        let mut f = TopicFollower::new(Cursor::After(id(E, 2)), FollowLimits::default());
        let topic = Topic {
            epoch: Some(E),
            kept: 10..=12,
            last: 12,
        };
        serve(&mut f, &topic);
        let mut want = vec![gap(Some(id(E, 2)), Some(id(E, 10)))];
        want.extend(msgs(E, 10..=12));
        assert_eq!(events(&mut f), want);
        // Nothing kept at all: a gap without an oldest.
        let mut f = TopicFollower::new(Cursor::After(id(E, 2)), FollowLimits::default());
        let empty = Topic {
            epoch: Some(E),
            kept: nothing(),
            last: 12,
        };
        serve(&mut f, &empty);
        assert_eq!(events(&mut f), vec![gap(Some(id(E, 2)), None)]);
        assert_eq!(f.last_id(), Some(id(E, 12)));
    }

    #[test]
    fn another_epoch_or_beyond_the_newest_is_a_gap_then_everything_kept() {
        let topic = Topic {
            epoch: Some(E),
            kept: 4..=6,
            last: 6,
        };
        for cursor in [id(7, 3), id(E, 9)] {
            let mut f = TopicFollower::new(Cursor::After(cursor), FollowLimits::default());
            assert_eq!(serve(&mut f, &topic), 2);
            let mut want = vec![gap(Some(cursor), Some(id(E, 4)))];
            want.extend(msgs(E, 4..=6));
            assert_eq!(events(&mut f), want, "{cursor}");
        }
    }

    #[test]
    fn earliest_reads_page_by_page_without_a_gap() {
        let limits = FollowLimits {
            page: 2,
            max_buffered: 10,
        };
        let mut f = TopicFollower::new(Cursor::Earliest, limits);
        let topic = Topic {
            epoch: Some(E),
            kept: 3..=7,
            last: 7,
        };
        assert_eq!(serve(&mut f, &topic), 3);
        assert_eq!(events(&mut f), msgs(E, 3..=7));
    }

    #[test]
    fn a_new_epoch_live_is_a_gap_then_the_new_history() {
        let mut f = TopicFollower::new(Cursor::Live, FollowLimits::default());
        f.handle_live(rec(E, 1));
        f.handle_live(rec(E, 2));
        // The meta key was lost; the new history has had two messages.
        f.handle_live(rec(E + 1, 2));
        let topic = Topic {
            epoch: Some(E + 1),
            kept: 1..=2,
            last: 2,
        };
        serve(&mut f, &topic);
        let mut want = msgs(E, 1..=2);
        want.push(gap(Some(id(E, 2)), Some(id(E + 1, 1))));
        want.extend(msgs(E + 1, 1..=2));
        assert_eq!(events(&mut f), want);
    }

    #[test]
    fn an_unknown_topic_with_a_cursor_is_a_gap_then_live() {
        let mut f = TopicFollower::new(Cursor::After(id(E, 2)), FollowLimits::default());
        let topic = Topic {
            epoch: None,
            kept: nothing(),
            last: 0,
        };
        serve(&mut f, &topic);
        f.handle_live(rec(E + 1, 1));
        let mut want = vec![gap(Some(id(E, 2)), None)];
        want.extend(msgs(E + 1, [1]));
        assert_eq!(events(&mut f), want);
    }

    #[test]
    fn a_full_buffer_is_dropped_and_read_again_from_the_stream() {
        let limits = FollowLimits {
            page: 100,
            max_buffered: 3,
        };
        let mut f = TopicFollower::new(Cursor::After(id(E, 0)), limits);
        for s in 1..=10 {
            f.handle_live(rec(E, s));
        }
        let first = Topic {
            epoch: Some(E),
            kept: 1..=1,
            last: 1,
        };
        let req = f.poll_request().unwrap();
        f.handle_replay(first.answer(req));
        // The buffer overflowed: read again, now that all ten are kept.
        let all = Topic {
            epoch: Some(E),
            kept: 1..=10,
            last: 10,
        };
        assert_eq!(serve(&mut f, &all), 1);
        assert_eq!(events(&mut f), msgs(E, 1..=10));
    }

    /// Random runs: pub/sub drops and repeats messages, the stream keeps
    /// the last `keep`, replays are answered at random moments. Whatever
    /// happens, seqs come strictly in order, and every one skipped is
    /// announced by a gap just before; with nothing evicted, none is
    /// skipped at all.
    #[test]
    fn random_drops_repeats_and_evictions_never_reorder_or_lose_silently() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for run in 0..300 {
            let keep = if run % 2 == 0 { u64::MAX } else { 1 + next(8) };
            let page = 1 + next(5) as usize;
            let mut topic = Topic {
                epoch: Some(E),
                kept: nothing(),
                last: 0,
            };
            let publish = |topic: &mut Topic| {
                topic.last += 1;
                let start = topic.last.saturating_sub(keep - 1).max(1);
                topic.kept = start..=topic.last;
            };
            for _ in 0..next(10) {
                publish(&mut topic);
            }
            let cursor = next(topic.last + 1);
            let limits = FollowLimits {
                page,
                max_buffered: 1 + next(6) as usize,
            };
            let mut f = TopicFollower::new(Cursor::After(id(E, cursor)), limits);
            let mut outstanding = f.poll_request();
            for _ in 0..60 {
                match next(4) {
                    0 | 1 => {
                        publish(&mut topic);
                        match next(10) {
                            0..=2 => {} // lost by pub/sub
                            3 => {
                                f.handle_live(rec(E, topic.last));
                                f.handle_live(rec(E, topic.last));
                            }
                            _ => f.handle_live(rec(E, topic.last)),
                        }
                    }
                    _ => {
                        if let Some(req) = outstanding.take() {
                            f.handle_replay(topic.answer(req));
                        }
                    }
                }
                outstanding = outstanding.or_else(|| f.poll_request());
            }
            // One last message arrives, and every replay is answered.
            publish(&mut topic);
            f.handle_live(rec(E, topic.last));
            while let Some(req) = outstanding.take().or_else(|| f.poll_request()) {
                f.handle_replay(topic.answer(req));
            }
            let mut at = cursor;
            let mut gap_before = false;
            for e in events(&mut f) {
                match e {
                    FollowEvent::Gap(g) => {
                        assert!(keep != u64::MAX, "run {run}: a gap with nothing evicted");
                        assert_eq!(g.requested, Some(id(E, at)), "run {run}");
                        gap_before = true;
                    }
                    FollowEvent::Message(r) => {
                        assert!(r.id.seq > at, "run {run}: {} after {at}", r.id.seq);
                        assert!(
                            r.id.seq == at + 1 || gap_before,
                            "run {run}: {} after {at} without a gap",
                            r.id.seq
                        );
                        at = r.id.seq;
                        gap_before = false;
                    }
                }
            }
            assert_eq!(at, topic.last, "run {run}: the newest is delivered");
            assert_eq!(f.last_id(), Some(id(E, topic.last)));
        }
    }

    #[test]
    fn after_a_resubscribe_the_stream_fills_what_pubsub_missed() {
        let mut f = TopicFollower::new(Cursor::Live, FollowLimits::default());
        f.handle_live(rec(E, 1));
        f.handle_resubscribed();
        let topic = Topic {
            epoch: Some(E),
            kept: 1..=3,
            last: 3,
        };
        // The first attempt is lost with its connection.
        assert!(f.poll_request().is_some());
        f.handle_replay_failed();
        serve(&mut f, &topic);
        assert_eq!(events(&mut f), msgs(E, 1..=3));
    }
}

//! Connection deadlines, in two structures: a few queues for the
//! deadlines that arrive in order, and a B-tree for the rest.
//!
//! Most deadlines are `now + a fixed interval` (a stream's heartbeat, a
//! keep-alive timeout, a WebSocket ping), so each is no earlier than the
//! last one of the same interval: such a deadline is appended to the
//! queue whose last entry is the latest not after it (one queue per
//! interval, in effect), an 8-byte entry instead of a B-tree node (5,000
//! idle SSE streams cost ~46 bytes each in the tree, ~13 in a queue). A
//! deadline that fits no queue goes into the tree, which takes any order.
//!
//! Entries are never removed from the queue but when they are due: one
//! whose connection has since moved its deadline is stale and is told
//! apart at the front by [`Timers::pop_due`]'s caller (the connection's
//! registered deadline no longer matches). Either structure may fire a
//! little early or for a connection that no longer wants it: the core
//! looks at the connection's real deadline each time (see `settle`).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::ConnId;

/// The farthest ahead a queued deadline may be (the rest go to the
/// tree): queue entries count milliseconds from a base in 32 bits, and
/// the base moves up when the count nears its end (see `rebase`).
const QUEUE_HORIZON: Duration = Duration::from_secs(24 * 3600);

/// How many in-order queues: one per distinct interval in use (streams'
/// heartbeats, keep-alive, WebSocket pings, linger), more share the tree.
const QUEUES: usize = 4;

/// When a new entry's count passes this, the base moves up to the front.
const REBASE_AT: u32 = 1 << 31;

/// Every connection deadline. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// (deadline, connection), any order.
    tree: BTreeSet<(Instant, ConnId)>,
    /// Each: (milliseconds after `base`, rounded up; connection), in
    /// deadline order.
    queues: [VecDeque<(u32, u32)>; QUEUES],
    /// What queue entries count from: the first `now` one was added at.
    base: Option<Instant>,
}

/// Where a deadline was registered, for [`Timers::remove`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Tree,
    Queue,
}

impl Timers {
    /// Registers `deadline` for `id`, at `now`; says where it went.
    pub(crate) fn insert(&mut self, deadline: Instant, id: ConnId, now: Instant) -> Slot {
        if let Some(entry) = self.queue_entry(deadline, id, now) {
            // The queue whose last entry is the latest not after this one
            // (an empty queue last), so each interval keeps to its own.
            let fit = (0..QUEUES)
                .filter_map(|i| match self.queues[i].back() {
                    Some(&(last, _)) if last <= entry.0 => Some((Some(last), i)),
                    Some(_) => None,
                    None => Some((None, i)),
                })
                .max();
            if let Some((_, i)) = fit {
                self.queues[i].push_back(entry);
                return Slot::Queue;
            }
        }
        self.tree.insert((deadline, id));
        Slot::Tree
    }

    /// Forgets `deadline` for `id` if it is in the tree; a queue entry
    /// stays until it is due and is then found stale.
    pub(crate) fn remove(&mut self, deadline: Instant, id: ConnId, slot: Slot) {
        if slot == Slot::Tree {
            self.tree.remove(&(deadline, id));
        }
    }

    /// Whether a queue entry popped for `id` is the one `registered`
    /// (the connection's deadline as it was registered) put there.
    pub(crate) fn is_current(&self, stamp: u32, registered: Option<(Instant, Slot)>) -> bool {
        match (registered, self.base) {
            (Some((d, Slot::Queue)), Some(base)) => ms_between(base, d) == Some(stamp),
            _ => false,
        }
    }

    /// The next entry due at `now`, taken out: the tree's as
    /// `(id, None)`, the queue's as `(id, Some(stamp))` (see
    /// [`is_current`](Self::is_current)).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(ConnId, Option<u32>)> {
        let tree = self.tree.first().copied().filter(|&(t, _)| t <= now);
        let queue = self.queue_front().filter(|&(t, _, _, _)| t <= now);
        match (tree, queue) {
            (Some((t, id)), Some((q, _, _, _))) if t <= q => {
                self.tree.remove(&(t, id));
                Some((id, None))
            }
            (_, Some((_, id, stamp, i))) => {
                self.queues[i].pop_front();
                Some((id, Some(stamp)))
            }
            (Some((t, id)), None) => {
                self.tree.remove(&(t, id));
                Some((id, None))
            }
            (None, None) => None,
        }
    }

    /// The earliest deadline of either structure.
    pub(crate) fn first(&self) -> Option<Instant> {
        let tree = self.tree.first().map(|&(t, _)| t);
        let queue = self.queue_front().map(|(t, _, _, _)| t);
        match (tree, queue) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops stale queue entries once they outnumber the live
    /// connections (`registered` gives a connection's deadline if it is
    /// in the queue), so they cost at most as much as live ones however
    /// often connections move their deadlines.
    pub(crate) fn compact(&mut self, live: usize, registered: impl Fn(ConnId) -> Option<Instant>) {
        let queued: usize = self.queues.iter().map(VecDeque::len).sum();
        if queued <= 64.max(2 * live) {
            return;
        }
        let Some(base) = self.base else {
            return;
        };
        for queue in &mut self.queues {
            queue.retain(|&(stamp, id)| {
                registered(id as ConnId).is_some_and(|d| ms_between(base, d) == Some(stamp))
            });
        }
    }

    /// Entries in the queues (live or stale) and in the tree.
    #[cfg(test)]
    fn lens(&self) -> (usize, usize) {
        let queued = self.queues.iter().map(VecDeque::len).sum();
        (queued, self.tree.len())
    }

    /// `deadline` as a queue entry, if it can be one: within
    /// [`QUEUE_HORIZON`] after `now` (not already past), and `id` fits.
    fn queue_entry(&mut self, deadline: Instant, id: ConnId, now: Instant) -> Option<(u32, u32)> {
        let id = u32::try_from(id).ok()?;
        let ahead = deadline.checked_duration_since(now)?;
        if ahead > QUEUE_HORIZON {
            return None;
        }
        let base = *self.base.get_or_insert(now);
        let mut stamp = ms_between(base, deadline)?;
        if stamp >= REBASE_AT {
            self.rebase(now);
            stamp = ms_between(self.base?, deadline)?;
        }
        (stamp < REBASE_AT).then_some((stamp, id))
    }

    /// Moves the base up to the earliest entry (to `now` when the queues
    /// are empty), so that counts start again near zero: once in ~24 days
    /// of always busy queues, one pass over them.
    fn rebase(&mut self, now: Instant) {
        let Some(base) = self.base else {
            return;
        };
        let fronts = self.queues.iter().filter_map(|q| q.front());
        let Some(shift) = fronts.map(|&(stamp, _)| stamp).min() else {
            self.base = Some(now);
            return;
        };
        for entry in self.queues.iter_mut().flatten() {
            entry.0 -= shift;
        }
        self.base = Some(base + Duration::from_millis(u64::from(shift)));
    }

    /// The earliest queue front: its deadline (no earlier than the one
    /// registered), connection, stamp and queue.
    fn queue_front(&self) -> Option<(Instant, ConnId, u32, usize)> {
        let (i, &(stamp, id)) = (0..QUEUES)
            .filter_map(|i| self.queues[i].front().map(|f| (i, f)))
            .min_by_key(|(_, &(stamp, _))| stamp)?;
        let at = self.base? + Duration::from_millis(u64::from(stamp));
        Some((at, id as ConnId, stamp, i))
    }
}

/// Milliseconds from `base` to `t`, rounded up (`None` past `u32`).
fn ms_between(base: Instant, t: Instant) -> Option<u32> {
    let d = t.checked_duration_since(base)?;
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    u32::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn deadlines_in_order_are_queued_and_others_go_to_the_tree() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.insert(t0 + ms(15_000), 1, t0), Slot::Queue);
        assert_eq!(timers.insert(t0 + ms(15_000), 2, t0), Slot::Queue);
        assert_eq!(timers.insert(t0 + ms(20_000), 3, t0), Slot::Queue);
        // Earlier than the last queued: a queue of its own, while there
        // are queues; then the tree.
        for (i, id) in (4..8).enumerate() {
            let slot = if i < QUEUES - 1 {
                Slot::Queue
            } else {
                Slot::Tree
            };
            assert_eq!(timers.insert(t0 + ms(5_000 - i as u64), id, t0), slot);
        }
        // Each interval keeps to its queue: this one follows 20,000.
        assert_eq!(timers.insert(t0 + ms(20_001), 8, t0), Slot::Queue);
        assert_eq!(timers.insert(t0 + ms(5_000), 9, t0), Slot::Queue);
        // Already past, or too far ahead: the tree.
        assert_eq!(timers.insert(t0, 10, t0 + ms(1)), Slot::Tree);
        let far = t0 + QUEUE_HORIZON + ms(1);
        assert_eq!(timers.insert(far, 11, t0), Slot::Tree);
        assert_eq!(timers.lens(), (8, 3));
        assert_eq!(timers.first(), Some(t0));
    }

    #[test]
    fn entries_come_out_in_deadline_order_from_both() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.insert(t0 + ms(10), 1, t0);
        timers.insert(t0 + ms(30), 2, t0);
        timers.insert(t0 + ms(20), 3, t0); // tree
        assert_eq!(timers.pop_due(t0 + ms(9)), None);
        assert_eq!(timers.first(), Some(t0 + ms(10)));
        let order: Vec<ConnId> = std::iter::from_fn(|| timers.pop_due(t0 + ms(30)))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(order, [1, 3, 2]);
        assert_eq!(timers.first(), None);
    }

    #[test]
    fn a_queued_deadline_never_fires_before_it_is_due() {
        // Counted in whole milliseconds, rounded up.
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let due = t0 + Duration::from_micros(1_500);
        timers.insert(due, 7, t0);
        assert!(timers.first().unwrap() >= due);
        assert_eq!(timers.pop_due(due - Duration::from_micros(1)), None);
        let (id, stamp) = timers.pop_due(t0 + ms(2)).unwrap();
        assert_eq!(id, 7);
        assert!(timers.is_current(stamp.unwrap(), Some((due, Slot::Queue))));
        // A connection that has moved its deadline since finds it stale.
        let later = due + ms(5);
        assert!(!timers.is_current(stamp.unwrap(), Some((later, Slot::Queue))));
        assert!(!timers.is_current(stamp.unwrap(), Some((due, Slot::Tree))));
        assert!(!timers.is_current(stamp.unwrap(), None));
    }

    #[test]
    fn removal_takes_tree_entries_and_compaction_stale_queue_entries() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.insert(t0 + ms(100), 1, t0);
        // Already past at `now`: the tree.
        assert_eq!(timers.insert(t0, 2, t0 + ms(1)), Slot::Tree);
        timers.remove(t0, 2, Slot::Tree);
        timers.remove(t0 + ms(100), 1, Slot::Queue); // stays, stale
        assert_eq!(timers.lens(), (1, 0));
        // 200 connections move their deadline 10 times each: the stale
        // entries are dropped once they outnumber the live ones.
        let mut now = t0;
        for round in 0..10u64 {
            now += ms(1);
            for id in 0..200 {
                timers.insert(now + ms(1_000 + round), id, now);
            }
        }
        let newest = now + ms(1_009);
        timers.compact(200, |id| (id < 200).then_some(newest));
        assert_eq!(timers.lens(), (200, 0));
        // Below the threshold nothing is looked at.
        timers.compact(200, |_| None);
        assert_eq!(timers.lens(), (200, 0));
    }

    #[test]
    fn the_base_moves_up_before_counts_run_out() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let day = Duration::from_secs(24 * 3600);
        let mut now = t0;
        // Always busy: 40 days, one entry per hour, each due in an hour.
        for hour in 0..(40 * 24) {
            now = t0 + Duration::from_secs(3600 * hour);
            while timers.pop_due(now).is_some() {}
            let slot = timers.insert(now + Duration::from_secs(3600), 1, now);
            assert_eq!(slot, Slot::Queue, "hour {hour}");
        }
        assert!(now > t0 + 39 * day);
        assert_eq!(timers.first(), Some(now + Duration::from_secs(3600)));
    }
}

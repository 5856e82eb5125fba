//! Parked long-poll requests.
//!
//! A long poll (`GET /topics/{t}/poll?after=ID`) that finds nothing new is
//! not answered: its connection is *parked* until a message is published
//! to the topic or its deadline passes. Parking is just bookkeeping — no
//! thread, no timer object, no busy loop: an entry per connection, an index
//! per topic, and the deadlines in order. The event loop asks
//! [`Parking::next_deadline`] how long it may sleep.
//!
//! The driver's order of calls:
//! 1. a poll finds nothing → [`Parking::park`] (a `Full` error is answered
//!    503 at once);
//! 2. a publish → [`Parking::wake`] for its topic, then each woken
//!    connection is answered with the messages after its cursor;
//! 3. a parked client hangs up → [`Parking::remove`];
//! 4. the loop wakes at [`Parking::next_deadline`] → [`Parking::expire`],
//!    and each expired connection is answered `"timeout":true`.
//!
//! Every operation is O(log n) or better in the number of parked requests,
//! and `wake` is linear only in the requests it returns.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use thiserror::Error;

/// Why a request could not be parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParkError {
    /// `max_parked_polls` requests are parked already. Answered 503 at
    /// once: the client retries later, and memory stays bounded.
    #[error("too many parked long polls (limit {limit})")]
    Full { limit: usize },
}

impl ParkError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ParkError::Full { .. } => 503,
        }
    }
}

/// One parked request.
#[derive(Debug)]
struct Parked {
    topic: Box<str>,
    deadline: Instant,
    /// Where this connection sits in its topic's list, so that `remove` is
    /// a `swap_remove` instead of a search.
    index: usize,
}

/// Parked long-poll requests, keyed by connection.
#[derive(Debug)]
pub struct Parking {
    max_parked: usize,
    by_conn: HashMap<usize, Parked>,
    /// The connections parked on each topic. A topic with none has no
    /// entry, so the map never outgrows the parked requests.
    by_topic: HashMap<Box<str>, Vec<usize>>,
    /// Every deadline, in order; the connection breaks ties, which makes
    /// expiry order deterministic.
    deadlines: BTreeSet<(Instant, usize)>,
}

impl Parking {
    /// Parking for at most `max_parked` requests at once.
    pub fn new(max_parked: usize) -> Self {
        Parking {
            max_parked,
            by_conn: HashMap::new(),
            by_topic: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    /// Parks connection `conn` on `topic` until `deadline`. A connection
    /// parks one request at a time, so parking it again replaces its
    /// earlier entry.
    pub fn park(&mut self, conn: usize, topic: &str, deadline: Instant) -> Result<(), ParkError> {
        self.remove(conn);
        if self.by_conn.len() >= self.max_parked {
            return Err(ParkError::Full {
                limit: self.max_parked,
            });
        }
        let waiting = match self.by_topic.get_mut(topic) {
            Some(waiting) => waiting,
            None => self.by_topic.entry(topic.into()).or_default(),
        };
        let index = waiting.len();
        waiting.push(conn);
        self.deadlines.insert((deadline, conn));
        self.by_conn.insert(
            conn,
            Parked {
                topic: topic.into(),
                deadline,
                index,
            },
        );
        Ok(())
    }

    /// Removes and returns every request parked on `topic`, to be answered
    /// in one pass.
    pub fn wake(&mut self, topic: &str) -> Vec<usize> {
        let Some(woken) = self.by_topic.remove(topic) else {
            return Vec::new();
        };
        for conn in &woken {
            if let Some(parked) = self.by_conn.remove(conn) {
                self.deadlines.remove(&(parked.deadline, *conn));
            }
        }
        woken
    }

    /// Forgets `conn`'s parked request, if any (its client hung up). A
    /// connection that is not parked is no error: the event loop need not
    /// know which connections are.
    pub fn remove(&mut self, conn: usize) {
        let Some(parked) = self.by_conn.remove(&conn) else {
            return;
        };
        self.deadlines.remove(&(parked.deadline, conn));
        let Some(waiting) = self.by_topic.get_mut(&*parked.topic) else {
            return;
        };
        if parked.index < waiting.len() {
            waiting.swap_remove(parked.index);
            // The last connection of the list moved into the hole: fix its
            // recorded position.
            if let Some(&moved) = waiting.get(parked.index) {
                if let Some(moved) = self.by_conn.get_mut(&moved) {
                    moved.index = parked.index;
                }
            }
        }
        if waiting.is_empty() {
            self.by_topic.remove(&*parked.topic);
        }
    }

    /// Removes and returns the requests whose deadline is `<= now`, the
    /// earliest first.
    pub fn expire(&mut self, now: Instant) -> Vec<usize> {
        let mut expired = Vec::new();
        while let Some(&(deadline, conn)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            expired.push(conn);
            // Also pops the deadline, so the loop advances.
            self.remove(conn);
            // Should the indexes ever disagree, the deadline still goes.
            self.deadlines.remove(&(deadline, conn));
        }
        expired
    }

    /// The earliest deadline of a parked request: when the event loop must
    /// wake up at the latest to call [`expire`](Self::expire).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// How many requests are parked.
    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    /// Whether `conn` has a parked request.
    pub fn is_parked(&self, conn: usize) -> bool {
        self.by_conn.contains_key(&conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn wake_returns_everyone_on_the_topic_and_only_them() {
        let t0 = Instant::now();
        let mut p = Parking::new(100);
        p.park(1, "a", secs(t0, 30)).unwrap();
        p.park(2, "a", secs(t0, 10)).unwrap();
        p.park(3, "b", secs(t0, 20)).unwrap();
        p.park(4, "a", secs(t0, 40)).unwrap();
        assert_eq!(sorted(p.wake("a")), [1, 2, 4]);
        assert_eq!(p.len(), 1);
        assert!(p.wake("a").is_empty());
        assert!(p.wake("nobody").is_empty());
        // The woken requests' deadlines are gone too.
        assert_eq!(p.next_deadline(), Some(secs(t0, 20)));
        assert_eq!(p.expire(secs(t0, 100)), [3]);
        assert!(p.is_empty());
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn remove_keeps_the_others_reachable() {
        let t0 = Instant::now();
        let mut p = Parking::new(100);
        for conn in 0..10 {
            p.park(conn, "t", secs(t0, conn as u64)).unwrap();
        }
        // Remove from the front, middle and end of the topic's list, so
        // every swap_remove case runs.
        for conn in [0, 5, 9, 3] {
            p.remove(conn);
            assert!(!p.is_parked(conn));
        }
        p.remove(42); // not parked: nothing happens
        assert_eq!(p.len(), 6);
        assert_eq!(sorted(p.wake("t")), [1, 2, 4, 6, 7, 8]);
        assert!(p.is_empty());
        assert!(p.by_topic.is_empty());
        assert!(p.deadlines.is_empty());
    }

    #[test]
    fn expire_in_deadline_order() {
        let t0 = Instant::now();
        let mut p = Parking::new(100);
        p.park(7, "a", secs(t0, 30)).unwrap();
        p.park(8, "b", secs(t0, 10)).unwrap();
        p.park(9, "a", secs(t0, 20)).unwrap();
        p.park(6, "c", secs(t0, 20)).unwrap();
        assert_eq!(p.next_deadline(), Some(secs(t0, 10)));
        assert!(p.expire(secs(t0, 9)).is_empty());
        // A deadline equal to now has expired; ties break by connection.
        assert_eq!(p.expire(secs(t0, 20)), [8, 6, 9]);
        assert_eq!(p.next_deadline(), Some(secs(t0, 30)));
        assert_eq!(p.wake("a"), [7]);
        assert!(p.by_topic.is_empty());
    }

    #[test]
    fn full_is_503_and_frees_up() {
        let t0 = Instant::now();
        let mut p = Parking::new(2);
        p.park(1, "a", t0).unwrap();
        p.park(2, "a", t0).unwrap();
        let err = p.park(3, "a", t0).unwrap_err();
        assert_eq!(err, ParkError::Full { limit: 2 });
        assert_eq!(err.status(), 503);
        assert!(!p.is_parked(3));
        // Re-parking a parked connection does not need a free place.
        p.park(2, "b", secs(t0, 5)).unwrap();
        p.remove(1);
        p.park(3, "a", t0).unwrap();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn parking_again_replaces_the_earlier_entry() {
        let t0 = Instant::now();
        let mut p = Parking::new(10);
        p.park(1, "a", secs(t0, 5)).unwrap();
        p.park(1, "b", secs(t0, 50)).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p.wake("a").is_empty());
        assert_eq!(p.next_deadline(), Some(secs(t0, 50)));
        assert_eq!(p.wake("b"), [1]);
    }

    #[test]
    fn zero_capacity_parks_nothing() {
        let mut p = Parking::new(0);
        assert!(p.park(1, "a", Instant::now()).is_err());
        assert_eq!(p.len(), 0);
    }
}

//! Parked long-poll requests.
//!
//! A long poll (`GET /topics/{t}/poll?after=ID`, or `GET /poll?topic=A&
//! topic=B`) that finds nothing new is not answered: its connection is
//! *parked* until a message is published to one of its topics, or its
//! deadline passes. Parking is just bookkeeping — no thread, no timer
//! object, no busy loop: an entry per connection and an index per topic.
//! The deadline is the connection's own (the core's timers).
//!
//! The driver's order of calls:
//! 1. a poll finds nothing → [`Parking::park`] (a `Full` error is answered
//!    503 at once);
//! 2. a publish → [`Parking::wake`] for its topic, then each woken
//!    connection is answered with the messages after its cursor (it is no
//!    longer parked on any of its topics);
//! 3. a parked client hangs up, or its deadline passes →
//!    [`Parking::remove`].
//!
//! `park` and `remove` cost O(topics of that poll); `wake` is linear in
//! the requests it returns (times their topics), never in all parked.

use std::collections::HashMap;

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

/// Parked polls by connection and by topic.
#[derive(Debug)]
pub struct Parking {
    max_parked: usize,
    /// Each parked connection's topics, with its index in that topic's
    /// list (so leaving is a `swap_remove`, not a search).
    by_conn: HashMap<usize, Vec<(Box<str>, usize)>>,
    by_topic: HashMap<Box<str>, Vec<usize>>,
}

impl Parking {
    pub fn new(max_parked: usize) -> Self {
        Parking {
            max_parked,
            by_conn: HashMap::new(),
            by_topic: HashMap::new(),
        }
    }

    /// Parks `conn` on every topic in `topics` (a connection parked
    /// already is moved).
    pub fn park<T: AsRef<str>>(&mut self, conn: usize, topics: &[T]) -> Result<(), ParkError> {
        self.remove(conn);
        if self.by_conn.len() >= self.max_parked {
            return Err(ParkError::Full {
                limit: self.max_parked,
            });
        }
        let mut entries = Vec::with_capacity(topics.len());
        for topic in topics {
            let topic = topic.as_ref();
            let waiting = match self.by_topic.get_mut(topic) {
                Some(waiting) => waiting,
                None => self.by_topic.entry(topic.into()).or_default(),
            };
            entries.push((topic.into(), waiting.len()));
            waiting.push(conn);
        }
        self.by_conn.insert(conn, entries);
        Ok(())
    }

    /// Takes every connection parked on `topic`; each is unparked from all
    /// of its topics.
    pub fn wake(&mut self, topic: &str) -> Vec<usize> {
        let Some(woken) = self.by_topic.remove(topic) else {
            return Vec::new();
        };
        for conn in &woken {
            let Some(entries) = self.by_conn.remove(conn) else {
                continue;
            };
            for (other, index) in entries {
                if &*other != topic {
                    self.leave(&other, index);
                }
            }
        }
        woken
    }

    /// Unparks `conn` (answered, hung up, expired); no-op if not parked.
    pub fn remove(&mut self, conn: usize) {
        let Some(entries) = self.by_conn.remove(&conn) else {
            return;
        };
        for (topic, index) in entries {
            self.leave(&topic, index);
        }
    }

    /// Removes the entry at `index` of `topic`'s list, and records where
    /// the entry that moved into its place now is.
    fn leave(&mut self, topic: &str, index: usize) {
        let Some(waiting) = self.by_topic.get_mut(topic) else {
            return;
        };
        if index < waiting.len() {
            waiting.swap_remove(index);
            if let Some(&moved) = waiting.get(index) {
                if let Some(entries) = self.by_conn.get_mut(&moved) {
                    if let Some(e) = entries.iter_mut().find(|(t, _)| &**t == topic) {
                        e.1 = index;
                    }
                }
            }
        }
        if waiting.is_empty() {
            self.by_topic.remove(topic);
        }
    }

    /// Requests parked on `topic` (a multi-topic poll counts on each of
    /// its topics).
    pub fn parked_on(&self, topic: &str) -> usize {
        self.by_topic.get(topic).map_or(0, Vec::len)
    }

    /// Parked requests.
    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    pub fn is_parked(&self, conn: usize) -> bool {
        self.by_conn.contains_key(&conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<usize>) -> Vec<usize> {
        v.sort_unstable();
        v
    }

    #[test]
    fn wake_returns_everyone_on_the_topic_and_only_them() {
        let mut p = Parking::new(100);
        p.park(1, &["a"]).unwrap();
        p.park(2, &["a"]).unwrap();
        p.park(3, &["b"]).unwrap();
        p.park(4, &["a"]).unwrap();
        assert_eq!(sorted(p.wake("a")), [1, 2, 4]);
        assert_eq!(p.len(), 1);
        assert!(p.wake("a").is_empty());
        assert_eq!(p.wake("b"), [3]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_poll_on_several_topics_wakes_once_and_leaves_them_all() {
        let mut p = Parking::new(100);
        p.park(1, &["a", "b", "c"]).unwrap();
        p.park(2, &["b"]).unwrap();
        p.park(3, &["c", "a"]).unwrap();
        assert_eq!(sorted(p.wake("b")), [1, 2]);
        assert!(!p.is_parked(1));
        // 1 is gone from a and c too; 3 still waits on both.
        assert_eq!(p.wake("a"), [3]);
        assert!(p.wake("c").is_empty());
        assert!(p.is_empty());
    }

    #[test]
    fn remove_keeps_the_indexes_of_the_others_right() {
        let mut p = Parking::new(100);
        for conn in 0..10 {
            p.park(conn, &["t", "u"]).unwrap();
        }
        for conn in [0, 5, 9, 3] {
            p.remove(conn);
        }
        p.remove(42); // not parked: nothing happens
        assert_eq!(sorted(p.wake("u")), [1, 2, 4, 6, 7, 8]);
        assert!(p.wake("t").is_empty());
        assert!(p.is_empty());
    }

    #[test]
    fn parking_again_moves_and_the_limit_holds() {
        let mut p = Parking::new(2);
        p.park(1, &["a"]).unwrap();
        p.park(1, &["b"]).unwrap();
        assert!(p.wake("a").is_empty());
        p.park(2, &["a"]).unwrap();
        assert_eq!(p.park(3, &["a"]), Err(ParkError::Full { limit: 2 }));
        assert_eq!(p.len(), 2);
    }
}

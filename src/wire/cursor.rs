//! The combined cursor: one connection's position in many topics
//! (DESIGN.md "One connection, many topics").
//!
//! `TOPIC=ID` pairs joined by `,`, in the connection's topic order:
//! `news=1796160691510066-5,prices=1796160691510066-9`. `=` and `,` are not
//! topic characters, so the text splits without escapes. Each pair resumes
//! its topic exactly as a single-topic cursor would (the id syntax is
//! [`crate::hub::parse_cursor`]'s, `earliest` included); a topic the
//! cursor does not name starts as its transport starts without a cursor;
//! `earliest` alone means earliest for every topic.
//!
//! It travels as `?after=` (percent-decoded first, so `URLSearchParams`'s
//! `news%3D1-5%2Cprices%3D1-9` reads the same) and as SSE `id:` /
//! `Last-Event-ID`, which is why it is plain text with no spaces.
//!
//! The parser is strict, like the id parser: one spelling per cursor, so
//! the text a server wrote and the positions it names are interchangeable.
//! Refused (400): an empty text or pair, a pair without `=`, a topic name
//! outside the DESIGN rule, a topic named twice (which position would
//! win?), more topics than a connection may carry, a malformed id.

use std::fmt;

use thiserror::Error;

use crate::hub::{parse_cursor, valid_topic, Cursor, CursorError};

/// How many topics a combined cursor may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorLimits {
    /// Most pairs in one cursor (Config `max_topics_per_connection`, 64 by
    /// default). More: [`CombinedCursorError::TooManyTopics`] (400), found
    /// before any pair past the limit is stored.
    pub max_topics: usize,
}

impl Default for CursorLimits {
    fn default() -> Self {
        CursorLimits { max_topics: 64 }
    }
}

impl CursorLimits {
    pub fn from_config(c: &crate::Config) -> CursorLimits {
        CursorLimits {
            max_topics: c.max_topics_per_connection,
        }
    }
}

/// Why a combined cursor was refused. Every variant is the client's fault,
/// answered 400 Bad Request; `pair` counts pairs from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CombinedCursorError {
    /// The cursor was present but empty.
    #[error("empty cursor")]
    Empty,
    /// Two `,` in a row, or one at either end.
    #[error("cursor pair {pair} is empty")]
    EmptyPair { pair: usize },
    /// A pair is `TOPIC=ID`; this one has no `=`.
    #[error("cursor pair {pair} is not TOPIC=ID")]
    MissingEquals { pair: usize },
    /// DESIGN.md: a topic is 1–128 bytes of `[A-Za-z0-9._:-]`.
    #[error("cursor pair {pair} has an invalid topic name")]
    InvalidTopic { pair: usize },
    /// The same topic twice: its position would be ambiguous.
    #[error("cursor pair {pair} names a topic already named")]
    DuplicateTopic { pair: usize },
    /// More pairs than [`CursorLimits::max_topics`].
    #[error("cursor names more than {limit} topics")]
    TooManyTopics { limit: usize },
    /// The id of a pair is not a cursor ([`crate::hub::parse_cursor`]).
    #[error("cursor pair {pair}: {error}")]
    Id { pair: usize, error: CursorError },
}

impl CombinedCursorError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// One topic's position in a [`CombinedCursor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicCursor {
    pub topic: String,
    /// [`Cursor::Earliest`] or [`Cursor::After`]; never [`Cursor::Live`],
    /// which has no spelling (a topic at its live edge is simply not named).
    pub cursor: Cursor,
}

/// A position in each of several topics, in the connection's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CombinedCursor {
    /// `earliest` alone: every topic not named starts at the earliest.
    earliest: bool,
    topics: Vec<TopicCursor>,
}

impl CombinedCursor {
    /// A cursor naming no topic: each starts as its transport starts
    /// without a cursor.
    pub fn new() -> CombinedCursor {
        CombinedCursor::default()
    }

    /// `earliest`: every topic from its oldest kept message.
    pub fn earliest() -> CombinedCursor {
        CombinedCursor {
            earliest: true,
            topics: Vec::new(),
        }
    }

    /// Parses a cursor as sent (`?after=` already percent-decoded, or
    /// `Last-Event-ID`).
    pub fn parse(text: &str, limits: &CursorLimits) -> Result<CombinedCursor, CombinedCursorError> {
        if text.is_empty() {
            return Err(CombinedCursorError::Empty);
        }
        if text == "earliest" {
            return Ok(CombinedCursor::earliest());
        }
        let mut topics: Vec<TopicCursor> = Vec::new();
        for (pair, raw) in text.split(',').enumerate() {
            if pair >= limits.max_topics {
                return Err(CombinedCursorError::TooManyTopics {
                    limit: limits.max_topics,
                });
            }
            if raw.is_empty() {
                return Err(CombinedCursorError::EmptyPair { pair });
            }
            let (topic, id) = raw
                .split_once('=')
                .ok_or(CombinedCursorError::MissingEquals { pair })?;
            if !valid_topic(topic) {
                return Err(CombinedCursorError::InvalidTopic { pair });
            }
            // At most `max_topics` names, each compared once per pair: the
            // limit bounds the work as well as the memory.
            if topics.iter().any(|t| t.topic == topic) {
                return Err(CombinedCursorError::DuplicateTopic { pair });
            }
            let cursor =
                parse_cursor(Some(id)).map_err(|error| CombinedCursorError::Id { pair, error })?;
            topics.push(TopicCursor {
                topic: topic.to_owned(),
                cursor,
            });
        }
        Ok(CombinedCursor {
            earliest: false,
            topics,
        })
    }

    /// Where `topic` starts: its own pair, else [`Cursor::Earliest`] for an
    /// `earliest` cursor, else `None` (the transport's no-cursor start).
    pub fn get(&self, topic: &str) -> Option<Cursor> {
        match self.topics.iter().find(|t| t.topic == topic) {
            Some(t) => Some(t.cursor),
            None => self.earliest.then_some(Cursor::Earliest),
        }
    }

    /// Sets `topic`'s position, in place if it is named already, else
    /// after the others (so a connection that sets its topics in its own
    /// order writes them in that order). [`Cursor::Live`] forgets the
    /// topic: it has no spelling, and a topic not named starts live.
    pub fn set(&mut self, topic: &str, cursor: Cursor) {
        if cursor == Cursor::Live {
            self.remove(topic);
            return;
        }
        match self.topics.iter_mut().find(|t| t.topic == topic) {
            Some(t) => t.cursor = cursor,
            None => self.topics.push(TopicCursor {
                topic: topic.to_owned(),
                cursor,
            }),
        }
    }

    /// Forgets `topic` (an unsubscribe).
    pub fn remove(&mut self, topic: &str) {
        self.topics.retain(|t| t.topic != topic);
    }

    /// Whether this is `earliest` for every topic not named.
    pub fn is_earliest(&self) -> bool {
        self.earliest
    }

    /// The named topics, in order.
    pub fn topics(&self) -> &[TopicCursor] {
        &self.topics
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty() && !self.earliest
    }

    /// Appends the cursor's text: its pairs in order, or `earliest` for an
    /// `earliest` cursor that names no topic (one that names some is
    /// written as its pairs: the text has no spelling for both). A cursor
    /// naming nothing writes nothing, which a client sends as no cursor.
    pub fn write(&self, out: &mut String) {
        if self.topics.is_empty() {
            if self.earliest {
                out.push_str("earliest");
            }
            return;
        }
        let mut first = true;
        for t in &self.topics {
            let id = match t.cursor {
                Cursor::After(id) => Some(id),
                Cursor::Earliest => None,
                // Never stored (see `set`); a topic at its live edge is
                // simply not named.
                Cursor::Live => continue,
            };
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&t.topic);
            out.push('=');
            match id {
                Some(id) => {
                    use fmt::Write;
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{id}");
                }
                None => out.push_str("earliest"),
            }
        }
    }
}

impl fmt::Display for CombinedCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::MessageId;

    fn after(epoch: u64, seq: u64) -> Cursor {
        Cursor::After(MessageId { epoch, seq })
    }

    fn parse(text: &str) -> Result<CombinedCursor, CombinedCursorError> {
        CombinedCursor::parse(text, &CursorLimits::default())
    }

    #[test]
    fn design_example_both_ways() {
        let text = "news=1796160691510066-5,prices=1796160691510066-9";
        let c = parse(text).unwrap();
        assert_eq!(c.get("news"), Some(after(1796160691510066, 5)));
        assert_eq!(c.get("prices"), Some(after(1796160691510066, 9)));
        assert_eq!(c.get("sports"), None);
        assert_eq!(c.len(), 2);
        assert_eq!(c.to_string(), text);

        let mut built = CombinedCursor::new();
        built.set("news", after(1796160691510066, 5));
        built.set("prices", after(1796160691510066, 9));
        assert_eq!(built, c);
    }

    #[test]
    fn earliest_for_every_topic() {
        let c = parse("earliest").unwrap();
        assert!(c.is_earliest());
        assert_eq!(c.get("anything"), Some(Cursor::Earliest));
        assert_eq!(c.to_string(), "earliest");
        // A pair may say `earliest` for its own topic, as `?after=` can.
        let c = parse("a=earliest,b=3-0").unwrap();
        assert_eq!(c.get("a"), Some(Cursor::Earliest));
        assert_eq!(c.get("b"), Some(after(3, 0)));
        assert_eq!(c.get("c"), None);
        assert_eq!(c.to_string(), "a=earliest,b=3-0");
    }

    #[test]
    fn written_in_the_connections_order() {
        let mut c = CombinedCursor::new();
        c.set("zeta", after(1, 1));
        c.set("alpha", after(1, 2));
        c.set("zeta", after(1, 3));
        assert_eq!(c.to_string(), "zeta=1-3,alpha=1-2");
        c.set("zeta", Cursor::Live);
        assert_eq!(c.to_string(), "alpha=1-2");
        c.remove("alpha");
        assert_eq!(c.to_string(), "");
        assert!(c.is_empty());
    }

    #[test]
    fn strict() {
        use CombinedCursorError::*;
        let cases: &[(&str, CombinedCursorError)] = &[
            ("", Empty),
            ("a=1-1,", EmptyPair { pair: 1 }),
            (",a=1-1", EmptyPair { pair: 0 }),
            ("a=1-1,,b=1-1", EmptyPair { pair: 1 }),
            ("news", MissingEquals { pair: 0 }),
            ("earliest,a=1-1", MissingEquals { pair: 0 }),
            ("=1-1", InvalidTopic { pair: 0 }),
            ("a b=1-1", InvalidTopic { pair: 0 }),
            ("a/b=1-1", InvalidTopic { pair: 0 }),
            ("a=1-1,a=1-2", DuplicateTopic { pair: 1 }),
            (
                "a=",
                Id {
                    pair: 0,
                    error: CursorError::Empty,
                },
            ),
            (
                "a=1-1=2",
                Id {
                    pair: 0,
                    error: CursorError::NotADigit,
                },
            ),
            (
                "a=1-1,b=01-1",
                Id {
                    pair: 1,
                    error: CursorError::LeadingZero,
                },
            ),
            (
                "a=Earliest",
                Id {
                    pair: 0,
                    error: CursorError::MissingDash,
                },
            ),
            (" a=1-1", InvalidTopic { pair: 0 }),
        ];
        for (text, err) in cases {
            assert_eq!(parse(text), Err(*err), "{text:?}");
            assert_eq!(err.status(), 400);
        }
        let long = "t".repeat(129) + "=1-1";
        assert_eq!(parse(&long), Err(InvalidTopic { pair: 0 }));
        assert!(parse(&("t".repeat(128) + "=1-1")).is_ok());
    }

    #[test]
    fn topics_are_limited() {
        let pairs: Vec<String> = (0..65).map(|i| format!("t{i}=1-{i}")).collect();
        assert!(parse(&pairs[..64].join(",")).is_ok());
        assert_eq!(
            parse(&pairs.join(",")),
            Err(CombinedCursorError::TooManyTopics { limit: 64 })
        );
        let one = CursorLimits { max_topics: 1 };
        assert!(CombinedCursor::parse("a=1-1", &one).is_ok());
        assert_eq!(
            CombinedCursor::parse("a=1-1,b", &one),
            Err(CombinedCursorError::TooManyTopics { limit: 1 })
        );
        // `earliest` names no topic, so it fits any limit.
        let none = CursorLimits { max_topics: 0 };
        assert!(CombinedCursor::parse("earliest", &none).is_ok());
        assert_eq!(
            CursorLimits::from_config(&crate::Config::default()),
            CursorLimits::default()
        );
    }
}

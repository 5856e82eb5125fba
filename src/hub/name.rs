//! Topic and event names, validated once at the edge (DESIGN.md "The HTTP
//! interface": topics are 1–128 bytes and events 1–64 bytes of
//! `[A-Za-z0-9._:-]`).
//!
//! A name that reached the hub is valid by its type: the hub never checks
//! a `&str` again, and a transport cannot forget to. None of the allowed
//! characters needs escaping in a URL path, a query, a JSON string or an
//! SSE field, so the wire encoders copy names as they are — and a CR or LF
//! in an event name, which would inject SSE lines, cannot be represented.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::HubError;

/// Longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// Longest event name, in bytes.
pub const MAX_EVENT_BYTES: usize = 64;

/// The characters of topic and event names: `[A-Za-z0-9._:-]`. `=` and
/// `,` are not among them, which is what lets a combined cursor
/// (`a=1-2,b=1-3`) be split without escaping.
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

fn is_name(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(is_name_byte)
}

/// A valid topic name. See the module documentation.
///
/// Shared, not copied: a clone is a reference count, and a subscriber
/// holds the hub's own key ([`super::Hub::shared_name`]), so 5,000
/// subscribers of one topic hold its name once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// `name` if it is 1–128 bytes of `[A-Za-z0-9._:-]` (after the caller
    /// has percent-decoded it once); else [`HubError::InvalidTopic`] (400,
    /// or close 1008 on a WebSocket).
    pub fn parse(name: &str) -> Result<TopicName, HubError> {
        if is_name(name, MAX_TOPIC_BYTES) {
            Ok(TopicName(name.into()))
        } else {
            Err(HubError::InvalidTopic)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name the hub has already validated (a key of its topic map).
    pub(super) fn from_checked(name: &str) -> TopicName {
        debug_assert!(is_name(name, MAX_TOPIC_BYTES));
        TopicName(name.into())
    }

    /// The hub's key itself, shared (see [`super::Hub::shared_name`]).
    pub(super) fn from_key(key: &Arc<str>) -> TopicName {
        debug_assert!(is_name(key, MAX_TOPIC_BYTES));
        TopicName(Arc::clone(key))
    }

    /// Whether both hold one allocation (the hub's key, shared).
    pub fn shares_with(&self, other: &TopicName) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A valid event name. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(Box<str>);

impl EventName {
    /// `name` if it is 1–64 bytes of `[A-Za-z0-9._:-]`; else
    /// [`HubError::InvalidEvent`] (400, or close 1008 on a WebSocket).
    pub fn parse(name: &str) -> Result<EventName, HubError> {
        if is_name(name, MAX_EVENT_BYTES) {
            Ok(EventName(name.into()))
        } else {
            Err(HubError::InvalidEvent)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! str_like {
    ($name:ident) => {
        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

str_like!(TopicName);
str_like!(EventName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for good in ["a", "chat.room-1_b:c", "news", "A.Z_0:9-"] {
            let t = TopicName::parse(good).unwrap();
            assert_eq!((t.as_str(), &*t), (good, good));
            assert_eq!(t.to_string(), good);
        }
        let longest = "x".repeat(MAX_TOPIC_BYTES);
        assert_eq!(TopicName::parse(&longest).unwrap().len(), 128);
        let cases = [
            String::new(),
            "x".repeat(129),
            "a b".into(),
            "a/b".into(),
            "a%20b".into(), // percent-decoding is the caller's, done once
            "é".into(),
            "a\nb".into(),
            "a\r".into(),
            "a\0".into(),
            "a?b".into(),
            "a#b".into(),
            "a=1".into(), // would break a combined cursor
            "a,b".into(),
        ];
        for bad in &cases {
            assert_eq!(
                TopicName::parse(bad),
                Err(HubError::InvalidTopic),
                "{bad:?}"
            );
            assert_eq!(
                EventName::parse(bad),
                Err(HubError::InvalidEvent),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn event_names() {
        let longest = "e".repeat(MAX_EVENT_BYTES);
        assert_eq!(EventName::parse(&longest).unwrap().as_str(), longest);
        assert!(EventName::parse(&"e".repeat(65)).is_err());
        assert!(EventName::parse("").is_err());
        // A topic name may be longer than any event name.
        assert!(TopicName::parse(&"e".repeat(65)).is_ok());
    }

    #[test]
    fn names_order_as_their_text() {
        let mut names: Vec<TopicName> = ["b", "a.b", "a", "B"]
            .iter()
            .map(|n| TopicName::parse(n).unwrap())
            .collect();
        names.sort();
        let sorted: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        assert_eq!(sorted, ["B", "a", "a.b", "b"]);
    }
}

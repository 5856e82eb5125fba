//! Properties of the combined cursor (`wire/cursor.rs`).
//!
//! 1. Never panics, on any bytes (read as text, lossily).
//! 2. One spelling per cursor: a cursor that parses writes back as exactly
//!    the text parsed, and that text parses to the same cursor.
//! 3. It never names more topics than the limit, and every topic it names
//!    is one `get` finds, with the same position.
//! 4. Building the same positions with `set`, in order, gives the same
//!    cursor.
#![allow(dead_code)]

use pushwire::wire::cursor::{CombinedCursor, CursorLimits};

pub fn check(data: &[u8]) {
    // The first byte picks the limit, so both sides of it are reached.
    let (limit, rest) = match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 8), rest),
        None => (64, data),
    };
    let text = String::from_utf8_lossy(rest);
    for limits in [CursorLimits { max_topics: limit }, CursorLimits::default()] {
        let parsed = CombinedCursor::parse(&text, &limits);
        let Ok(c) = parsed else {
            assert_eq!(parsed.unwrap_err().status(), 400);
            continue;
        };
        assert!(c.len() <= limits.max_topics);
        let written = c.to_string();
        assert_eq!(written, text, "written differs from parsed");
        assert_eq!(CombinedCursor::parse(&written, &limits).as_ref(), Ok(&c));

        let mut built = if c.is_earliest() {
            CombinedCursor::earliest()
        } else {
            CombinedCursor::new()
        };
        for t in c.topics() {
            assert_eq!(c.get(&t.topic), Some(t.cursor));
            built.set(&t.topic, t.cursor);
        }
        assert_eq!(built, c);
    }
}

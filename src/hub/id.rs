//! Message ids and cursors (DESIGN.md "The HTTP interface", "Cursors").
//!
//! An id is `<epoch>-<seq>`: `seq` counts up from 1 within one history of
//! one topic, and `epoch` names that history. Whenever a topic's history
//! starts afresh (a restart, the topic freed after it went idle) it gets a
//! new epoch, so a client's old cursor can never be silently read as a
//! position in the new history: it is of another epoch, and the hub reports
//! a gap instead of skipping or repeating messages.
//!
//! Clients treat ids as opaque strings, but the server reads them back as
//! cursors, so parsing is strict: exactly the text this module formats,
//! nothing else. Every id has one spelling, which keeps "the cursor text as
//! sent" and the id it names interchangeable.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A message's position: which history (`epoch`), and where in it (`seq`,
/// from 1; `0` is the position before the first message).
///
/// The derived order compares `epoch` first; it is only meaningful between
/// ids of one topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub epoch: u64,
    pub seq: u64,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

impl MessageId {
    /// The id at `seq` in the same history.
    pub fn with_seq(self, seq: u64) -> MessageId {
        MessageId { seq, ..self }
    }
}

/// Why a cursor was refused. Every variant is the client's fault, answered
/// 400 Bad Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CursorError {
    /// `after=` (or `Last-Event-ID`) was present but empty.
    #[error("empty cursor")]
    Empty,
    /// An id is two numbers joined by `-`; there was no `-`.
    #[error("cursor is not <epoch>-<seq>: no '-'")]
    MissingDash,
    /// One side of the `-` was empty (`-5`, `5-`).
    #[error("cursor has an empty number")]
    EmptyNumber,
    /// Only ASCII digits: no sign, no space, no second `-`.
    #[error("cursor has a character other than a digit")]
    NotADigit,
    /// `07` is not how we write 7; refusing it keeps one spelling per id.
    #[error("cursor has a number with a leading zero")]
    LeadingZero,
    /// A number does not fit in 64 bits: we never issued it.
    #[error("cursor has a number too large")]
    Overflow,
}

impl CursorError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

impl FromStr for MessageId {
    type Err = CursorError;

    /// Parses exactly what `Display` writes: `<epoch>-<seq>`, two decimal
    /// numbers without sign, space or leading zero, each fitting a u64.
    fn from_str(s: &str) -> Result<MessageId, CursorError> {
        if s.is_empty() {
            return Err(CursorError::Empty);
        }
        let (epoch, seq) = s.split_once('-').ok_or(CursorError::MissingDash)?;
        Ok(MessageId {
            epoch: parse_number(epoch)?,
            seq: parse_number(seq)?,
        })
    }
}

/// A canonical decimal u64. `str::parse::<u64>` would accept `+7`, so the
/// digits are checked here, one rule per error.
fn parse_number(s: &str) -> Result<u64, CursorError> {
    let digits = s.as_bytes();
    if digits.is_empty() {
        return Err(CursorError::EmptyNumber);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(CursorError::NotADigit);
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(CursorError::LeadingZero);
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(CursorError::Overflow)
    })
}

/// Where a subscriber or poll starts reading a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// From the next message published (no cursor given).
    Live,
    /// From the oldest message kept (`earliest`), no gap reported.
    Earliest,
    /// From the message after this id.
    After(MessageId),
}

/// Reads a cursor as sent by the client (`?after=`, `?last_event_id=` or
/// `Last-Event-ID`): absent → [`Cursor::Live`], `earliest` →
/// [`Cursor::Earliest`], `<epoch>-<seq>` → [`Cursor::After`]; anything
/// else is an error (400).
pub fn parse_cursor(raw: Option<&str>) -> Result<Cursor, CursorError> {
    match raw {
        None => Ok(Cursor::Live),
        Some("earliest") => Ok(Cursor::Earliest),
        Some(text) => text.parse().map(Cursor::After),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(epoch: u64, seq: u64) -> MessageId {
        MessageId { epoch, seq }
    }

    #[test]
    fn display_and_parse_are_inverse() {
        for m in [
            id(0, 0),
            id(1712345678, 1),
            id(7, 42),
            id(u64::MAX, u64::MAX),
        ] {
            let text = m.to_string();
            assert_eq!(text.parse::<MessageId>(), Ok(m), "{text}");
        }
        assert_eq!(id(17, 3).to_string(), "17-3");
        assert_eq!(id(u64::MAX, 0).to_string(), "18446744073709551615-0");
    }

    #[test]
    fn parse_is_strict() {
        use CursorError::*;
        let cases: &[(&str, CursorError)] = &[
            ("", Empty),
            ("17", MissingDash),
            ("earliest-ish", NotADigit),
            ("-3", EmptyNumber),
            ("17-", EmptyNumber),
            ("-", EmptyNumber),
            ("+17-3", NotADigit),
            ("17-+3", NotADigit),
            ("17--3", NotADigit),
            ("17-3-1", NotADigit),
            (" 17-3", NotADigit),
            ("17-3 ", NotADigit),
            ("17-3\n", NotADigit),
            ("1_7-3", NotADigit),
            ("17-٣", NotADigit), // a non-ASCII digit
            ("017-3", LeadingZero),
            ("17-03", LeadingZero),
            ("00-0", LeadingZero),
            ("18446744073709551616-0", Overflow),
            ("0-18446744073709551616", Overflow),
            ("99999999999999999999999-1", Overflow),
        ];
        for (text, err) in cases {
            assert_eq!(text.parse::<MessageId>(), Err(*err), "{text:?}");
            assert_eq!(err.status(), 400);
        }
        // Zero itself is fine: `<epoch>-0` is the cursor before a first message.
        assert_eq!("0-0".parse(), Ok(id(0, 0)));
        assert_eq!("5-0".parse(), Ok(id(5, 0)));
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(None), Ok(Cursor::Live));
        assert_eq!(parse_cursor(Some("earliest")), Ok(Cursor::Earliest));
        assert_eq!(parse_cursor(Some("9-4")), Ok(Cursor::After(id(9, 4))));
        assert_eq!(
            parse_cursor(Some("Earliest")),
            Err(CursorError::MissingDash)
        );
        assert_eq!(parse_cursor(Some("")), Err(CursorError::Empty));
        assert_eq!(parse_cursor(Some("latest")), Err(CursorError::MissingDash));
    }
}

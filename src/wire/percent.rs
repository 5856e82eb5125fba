//! Percent-decoding of path segments and query values (RFC 3986 §2.1,
//! §2.4), and the query-string iterator built on it.
//!
//! Before working on this file, read RFC 3986 §2 (characters) and the
//! WHATWG URL Standard §5.1 (`application/x-www-form-urlencoded`, the
//! query syntax browsers write).
//!
//! DESIGN.md: path segments and query values are decoded *once*, before
//! validation, so `/topics/a%2Eb` is the topic `a.b` and `?event=ns%3Aev`
//! the event `ns:ev`; a decoded byte outside the name set is still 400 (the
//! caller's validation sees the decoded text). Decoding once matters: a
//! second pass would turn `%252F` into `/` behind the validator's back.
//!
//! Decisions:
//! - A malformed escape (`%`, `%4`, `%zz`) is an error, answered 400: RFC
//!   3986 §2.1 defines only `"%" HEXDIG HEXDIG`, and guessing what a broken
//!   escape meant is how two parsers of one URL come to disagree.
//! - Decoded bytes must be UTF-8 (`%FF` alone is refused): every name and
//!   cursor we read is text, and the hub stores text.
//! - `+` is a plus sign in a path segment (RFC 3986 gives it no meaning
//!   there), and a space in a query value, as
//!   `application/x-www-form-urlencoded` says and as browsers' forms and
//!   `URLSearchParams` write it. A literal plus in a query is `%2B`. Topic
//!   and event names cannot hold either a space or a plus, so for them the
//!   choice only decides which 400 a client gets; for other values (a
//!   token, a prefix) it is what a browser-built URL means.
//! - Hex digits are read in either case (RFC 3986 §2.1: "equivalent") and
//!   written uppercase (§2.1: "SHOULD use uppercase").
//! - The caller splits the path into segments *before* decoding each one,
//!   so `%2F` is a byte of a segment, never a separator (§2.2).

use std::borrow::Cow;

use thiserror::Error;

/// Why a path segment or query value could not be decoded. Every variant
/// is the client's fault, answered 400 Bad Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PercentError {
    /// RFC 3986 §2.1: `pct-encoded = "%" HEXDIG HEXDIG`; the text ended
    /// before two hex digits followed the `%` at `offset`.
    #[error("truncated percent-escape at byte {offset}")]
    TruncatedEscape { offset: usize },
    /// RFC 3986 §2.1: the `%` at `offset` is not followed by two hex
    /// digits.
    #[error("invalid percent-escape at byte {offset}")]
    InvalidEscape { offset: usize },
    /// The decoded bytes are not UTF-8; `offset` counts decoded bytes.
    #[error("percent-decoded text is not UTF-8 (decoded byte {offset})")]
    NotUtf8 { offset: usize },
}

impl PercentError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// Decodes one path segment (`+` stays a plus). Borrowed when there is no
/// `%` in it.
pub fn decode_path_segment(segment: &str) -> Result<Cow<'_, str>, PercentError> {
    decode(segment, Plus::Plus)
}

/// Decodes one query name or value (`+` is a space). Borrowed when there
/// is neither `%` nor `+` in it.
pub fn decode_query_value(value: &str) -> Result<Cow<'_, str>, PercentError> {
    decode(value, Plus::Space)
}

/// What a `+` means where it stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Plus {
    Plus,
    Space,
}

fn decode(text: &str, plus: Plus) -> Result<Cow<'_, str>, PercentError> {
    let bytes = text.as_bytes();
    let special = |b: &u8| *b == b'%' || (*b == b'+' && plus == Plus::Space);
    let Some(first) = bytes.iter().position(special) else {
        return Ok(Cow::Borrowed(text));
    };
    // Decoding only shrinks the text, so this is the one allocation.
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = |at: usize| -> Result<u8, PercentError> {
                    let d = *bytes
                        .get(at)
                        .ok_or(PercentError::TruncatedEscape { offset: i })?;
                    hex_value(d).ok_or(PercentError::InvalidEscape { offset: i })
                };
                // Check the first digit before asking for the second, so
                // `%z` is invalid, not truncated.
                let hi = hex(i + 1)?;
                let lo = hex(i + 2)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus == Plus::Space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|e| PercentError::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
        })
}

fn hex_value(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3: `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`,
/// the characters that never need an escape.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `text` percent-encoded for a path segment or a query name or
/// value: every byte but the unreserved ones as `%XX` (uppercase, RFC 3986
/// §2.1), so a space is `%20` and a plus `%2B` and both decoders give
/// `text` back.
pub fn encode_component(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
}

/// The query's `name=value` pairs, in order, each decoded (`+` a space). A
/// pair without `=` has the empty value; empty pairs (`a=1&&b=2`) are
/// skipped. `query` is what follows the `?`, without the fragment.
pub fn query_pairs(
    query: &str,
) -> impl Iterator<Item = Result<(Cow<'_, str>, Cow<'_, str>), PercentError>> {
    raw_pairs(query)
        .map(|(name, value)| Ok((decode_query_value(name)?, decode_query_value(value)?)))
}

/// Every value of the parameter `name` (`topic=A&topic=B` gives `A`, then
/// `B`), decoded. Names are compared decoded (`%74opic` is `topic`). A
/// pair whose *name* is malformed yields its error — it may be the name
/// asked for — while a malformed value of another parameter is left for
/// whoever asks for that one.
pub fn query_values<'a>(
    query: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Result<Cow<'a, str>, PercentError>> + 'a {
    raw_pairs(query).filter_map(move |(n, v)| match decode_query_value(n) {
        Ok(n) if n == name => Some(decode_query_value(v)),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// The first value of the parameter `name`, decoded, as in
/// [`query_values`]; `None` if it is absent.
pub fn query_value<'a>(query: &'a str, name: &str) -> Option<Result<Cow<'a, str>, PercentError>> {
    for (n, v) in raw_pairs(query) {
        match decode_query_value(n) {
            Ok(n) if n == name => return Some(decode_query_value(v)),
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
    }
    None
}

/// The pairs as written, split on `&` and then on the first `=`.
fn raw_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(text: &str) -> String {
        let mut out = String::new();
        encode_component(&mut out, text);
        out
    }

    #[test]
    fn design_examples() {
        assert_eq!(decode_query_value("%65arliest").unwrap(), "earliest");
        assert_eq!(decode_query_value("ns%3Aev").unwrap(), "ns:ev");
        assert_eq!(decode_path_segment("a%2Eb").unwrap(), "a.b");
        assert_eq!(decode_path_segment("a%2eb").unwrap(), "a.b");
    }

    #[test]
    fn borrowed_when_nothing_to_decode() {
        assert!(matches!(
            decode_path_segment("news.eu"),
            Ok(Cow::Borrowed("news.eu"))
        ));
        assert!(matches!(
            decode_path_segment("a+b"),
            Ok(Cow::Borrowed("a+b"))
        ));
        assert!(matches!(
            decode_query_value("1-2"),
            Ok(Cow::Borrowed("1-2"))
        ));
        assert!(matches!(decode_query_value("a+b"), Ok(Cow::Owned(_))));
        assert!(matches!(decode_query_value(""), Ok(Cow::Borrowed(""))));
    }

    #[test]
    fn plus_is_a_space_only_in_queries() {
        assert_eq!(decode_path_segment("a+b").unwrap(), "a+b");
        assert_eq!(decode_query_value("a+b").unwrap(), "a b");
        assert_eq!(decode_query_value("a%2Bb").unwrap(), "a+b");
        assert_eq!(decode_path_segment("a%20b").unwrap(), "a b");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        use PercentError::*;
        assert_eq!(decode_query_value("%"), Err(TruncatedEscape { offset: 0 }));
        assert_eq!(
            decode_query_value("ab%4"),
            Err(TruncatedEscape { offset: 2 })
        );
        assert_eq!(decode_query_value("%zz"), Err(InvalidEscape { offset: 0 }));
        assert_eq!(decode_query_value("%z"), Err(InvalidEscape { offset: 0 }));
        assert_eq!(decode_query_value("x%4g"), Err(InvalidEscape { offset: 1 }));
        assert_eq!(
            decode_path_segment("%%41"),
            Err(InvalidEscape { offset: 0 })
        );
        // Decoded once: `%2541` is `%41`, not `A`.
        assert_eq!(decode_path_segment("%2541").unwrap(), "%41");
        for e in [TruncatedEscape { offset: 0 }, NotUtf8 { offset: 0 }] {
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn decoded_bytes_must_be_utf8() {
        assert_eq!(decode_path_segment("%C3%A9").unwrap(), "é");
        assert_eq!(
            decode_path_segment("ab%FF"),
            Err(PercentError::NotUtf8 { offset: 2 })
        );
        // Half a character.
        assert_eq!(
            decode_query_value("%C3"),
            Err(PercentError::NotUtf8 { offset: 0 })
        );
        // Raw UTF-8 (already a `str`) passes through.
        assert_eq!(decode_path_segment("é%20x").unwrap(), "é x");
    }

    #[test]
    fn encode_then_decode() {
        // RFC 3986 §2.1's example: a space is `%20`.
        assert_eq!(enc("a b"), "a%20b");
        assert_eq!(enc("news=1-5,prices=1-9"), "news%3D1-5%2Cprices%3D1-9");
        assert_eq!(enc("A-z0.9_~"), "A-z0.9_~");
        assert_eq!(enc("+é"), "%2B%C3%A9");
        for text in ["", "a b+c", "%41", "ns:ev", "é😀\u{0}\n", "a&b=c"] {
            assert_eq!(decode_path_segment(&enc(text)).unwrap(), text);
            assert_eq!(decode_query_value(&enc(text)).unwrap(), text);
        }
    }

    #[test]
    fn repeated_parameters() {
        let q = "topic=A&after=news%3D1-5%2Cprices%3D1-9&topic=B&&%74opic=C&flag";
        let topics: Vec<_> = query_values(q, "topic").map(Result::unwrap).collect();
        assert_eq!(topics, ["A", "B", "C"]);
        assert_eq!(
            query_value(q, "after").unwrap().unwrap(),
            "news=1-5,prices=1-9"
        );
        assert_eq!(query_value(q, "flag").unwrap().unwrap(), "");
        assert!(query_value(q, "missing").is_none());
        assert!(query_value("", "topic").is_none());
        // `a=b=c`: the value is everything after the first `=`.
        assert_eq!(query_value("a=b=c", "a").unwrap().unwrap(), "b=c");
    }

    #[test]
    fn malformed_query_parts() {
        // A bad value is reported to whoever asks for it...
        let q = "after=%zz&topic=A";
        assert!(query_value(q, "after").unwrap().is_err());
        assert_eq!(query_value(q, "topic").unwrap().unwrap(), "A");
        // ...a bad name to everyone: it could be any name.
        let q = "%zz=1&topic=A";
        assert!(query_value(q, "topic").unwrap().is_err());
        let all: Vec<_> = query_values(q, "topic").collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].is_err());
        let pairs: Vec<_> = query_pairs("a=1&b+c=%41").collect();
        assert_eq!(
            pairs,
            vec![
                Ok((Cow::Borrowed("a"), Cow::Borrowed("1"))),
                Ok((Cow::Owned("b c".into()), Cow::Owned("A".into())))
            ]
        );
    }
}

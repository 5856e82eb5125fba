//! Node to node over Redis pub/sub: an Engine.IO polling request carried
//! to the node that holds its session, and that node's answer carried
//! back. This is what lets a polling Socket.IO session work behind a
//! load balancer that is not sticky.
//!
//! Before working on this file, read the module docs of
//! [`crate::proto::engineio`] (a session outlives its requests, and one
//! GET at a time waits on it) and DESIGN.md "Cluster (Redis)".
//!
//! # Who owns a session
//!
//! In cluster mode a node's sids begin with its [`NodeTag`]: the first 6
//! of the sid's 20 random bytes, which are exactly its first 8 base64url
//! characters (RFC 4648 §5: 6 bytes are 8 characters, with no padding and
//! no bits shared with the next character). The other 14 bytes stay
//! random, so a sid still cannot be guessed (112 bits), and any node can
//! tell from the sid alone which node to ask, with no lookup in Redis.
//! Each node subscribes to its own channel, [`NodeTag::channel`].
//!
//! # Messages
//!
//! One `PUBLISH` payload each; the first line is ASCII fields split by
//! single spaces, then text lines, then the body as it came (any bytes,
//! up to the end of the payload):
//!
//! ```text
//! Q <from> <conn> <ticket> <s|e> <GET|POST> LF <query> LF <body>
//! A <conn> <ticket> <status> LF <content-type> LF <body>
//! ```
//!
//! - `Q` (request) goes to the owner's channel. `<from>` is the asking
//!   node's tag; `<conn> <ticket>` name the connection waiting there
//!   ([`Waiter`]), and are sent back as they came; `s` is the Socket.IO
//!   engine, `e` the Engine.IO-only one (`--engineio-echo`, tests).
//! - `A` (answer) goes to `<from>`'s channel: what the owner would have
//!   written on its own connection, status, content type and body.
//!
//! A query never holds LF (it is a request target's, and our HTTP parser
//! refuses control characters there), nor does a content type; both are
//! checked on the way out and on the way in.

use std::fmt;
use std::io::Read as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use thiserror::Error;

use crate::proto::engineio::{base64url_chars, Sid};

/// Which node's sessions a sid belongs to: 8 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeTag([u8; NodeTag::LEN]);

impl NodeTag {
    /// Characters in a tag: 6 bytes of base64url.
    pub const LEN: usize = 8;
    /// Random bytes a tag stands for.
    pub const BYTES: usize = 6;

    /// The tag of 6 bytes (the first 6 bytes of the node's sids).
    pub fn from_bytes(bytes: [u8; NodeTag::BYTES]) -> NodeTag {
        let mut text = [0u8; NodeTag::LEN];
        let _ = URL_SAFE_NO_PAD.encode_slice(bytes, &mut text);
        NodeTag(text)
    }

    /// A fresh tag from the kernel's random source.
    pub fn random() -> std::io::Result<NodeTag> {
        let mut bytes = [0u8; NodeTag::BYTES];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(NodeTag::from_bytes(bytes))
    }

    /// `sid` with its first 6 bytes replaced by this tag's: its first 8
    /// characters become the tag, the other 21 are left as they were (the
    /// 6-byte boundary is a character boundary, so no character mixes the
    /// two).
    pub fn stamp(&self, sid: Sid) -> Sid {
        let mut text = [0u8; Sid::LEN];
        text.copy_from_slice(sid.as_str().as_bytes());
        text[..NodeTag::LEN].copy_from_slice(&self.0);
        std::str::from_utf8(&text)
            .ok()
            .and_then(Sid::parse)
            .unwrap_or(sid)
    }

    /// The tag at the start of a sid (27 base64url characters), if it is
    /// one.
    pub fn of_sid(sid: &str) -> Option<NodeTag> {
        NodeTag::parse(sid.as_bytes().get(..NodeTag::LEN)?)
    }

    /// Reads a tag: exactly 8 base64url characters.
    pub fn parse(text: &[u8]) -> Option<NodeTag> {
        base64url_chars(text).map(NodeTag)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The pub/sub channel this node reads its relayed messages on.
    pub fn channel(&self) -> Vec<u8> {
        format!("pushwire:node:{}", self.as_str()).into_bytes()
    }
}

impl fmt::Debug for NodeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeTag({})", self.as_str())
    }
}

/// The connection that waits for an answer on the asking node, and which
/// wait of it (connection ids are reused; tickets are not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Waiter {
    pub conn: u64,
    pub ticket: u64,
}

/// Which Engine.IO server of the owner the request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Socket.IO at `/socket.io/`.
    SocketIo,
    /// The Engine.IO-only echo server.
    EngineIo,
}

/// The two polling methods Engine.IO uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMethod {
    Get,
    Post,
}

impl PollMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PollMethod::Get => "GET",
            PollMethod::Post => "POST",
        }
    }
}

/// One relayed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relay<'a> {
    /// A polling request for a session of the node it is sent to.
    Request {
        from: NodeTag,
        waiter: Waiter,
        engine: Engine,
        method: PollMethod,
        query: &'a str,
        body: &'a [u8],
    },
    /// The owner's answer to a request.
    Answer {
        waiter: Waiter,
        status: u16,
        content_type: &'a str,
        body: &'a [u8],
    },
}

/// A relayed message we do not read, named after the rule it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RelayError {
    #[error("not a relay message (kind is neither Q nor A)")]
    UnknownKind,
    #[error("the header line does not have the fields of its kind")]
    BadFields,
    #[error("a node tag is not 8 base64url characters")]
    BadTag,
    #[error("a number is not decimal digits in range")]
    BadNumber,
    #[error("the engine is neither s nor e")]
    BadEngine,
    #[error("the method is neither GET nor POST")]
    BadMethod,
    #[error("the status is not 100-599")]
    BadStatus,
    #[error("a line ends before its LF")]
    MissingLine,
    #[error("a text line is not UTF-8, or holds a control character")]
    BadText,
}

/// Splits off the next line (without its LF) and what follows it.
fn line(input: &[u8]) -> Result<(&[u8], &[u8]), RelayError> {
    let at = input
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(RelayError::MissingLine)?;
    Ok((&input[..at], &input[at + 1..]))
}

/// A text line: UTF-8 with no control characters (so it cannot carry a
/// line break into the headers it ends up in).
fn text(bytes: &[u8]) -> Result<&str, RelayError> {
    let s = std::str::from_utf8(bytes).map_err(|_| RelayError::BadText)?;
    if s.chars().any(char::is_control) {
        return Err(RelayError::BadText);
    }
    Ok(s)
}

/// Decimal digits, no sign, no leading zeros except `0` itself: one
/// spelling per number, so a message reads back to the bytes it came as.
fn number(field: &[u8]) -> Result<u64, RelayError> {
    let canonical = !field.is_empty()
        && field.iter().all(u8::is_ascii_digit)
        && (field.len() == 1 || field[0] != b'0');
    if !canonical {
        return Err(RelayError::BadNumber);
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RelayError::BadNumber)
}

/// Reads one relayed message.
pub fn parse(payload: &[u8]) -> Result<Relay<'_>, RelayError> {
    let (head, rest) = line(payload)?;
    let fields: Vec<&[u8]> = head.split(|&b| b == b' ').collect();
    match fields.first().copied() {
        Some(b"Q") => {
            let [_, from, conn, ticket, engine, method] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let from = NodeTag::parse(from).ok_or(RelayError::BadTag)?;
            let waiter = Waiter {
                conn: number(conn)?,
                ticket: number(ticket)?,
            };
            let engine = match engine {
                b"s" => Engine::SocketIo,
                b"e" => Engine::EngineIo,
                _ => return Err(RelayError::BadEngine),
            };
            let method = match method {
                b"GET" => PollMethod::Get,
                b"POST" => PollMethod::Post,
                _ => return Err(RelayError::BadMethod),
            };
            let (query, body) = line(rest)?;
            Ok(Relay::Request {
                from,
                waiter,
                engine,
                method,
                query: text(query)?,
                body,
            })
        }
        Some(b"A") => {
            let [_, conn, ticket, status] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let waiter = Waiter {
                conn: number(conn)?,
                ticket: number(ticket)?,
            };
            let status = number(status)?;
            if !(100..=599).contains(&status) {
                return Err(RelayError::BadStatus);
            }
            let (content_type, body) = line(rest)?;
            Ok(Relay::Answer {
                waiter,
                status: status as u16,
                content_type: text(content_type)?,
                body,
            })
        }
        _ => Err(RelayError::UnknownKind),
    }
}

/// Writes one relayed message. A query or content type with a control
/// character cannot be written (it would not read back): `BadText`.
pub fn write(relay: &Relay<'_>, out: &mut Vec<u8>) -> Result<(), RelayError> {
    use std::io::Write as _;
    match relay {
        Relay::Request {
            from,
            waiter,
            engine,
            method,
            query,
            body,
        } => {
            text(query.as_bytes())?;
            let engine = match engine {
                Engine::SocketIo => "s",
                Engine::EngineIo => "e",
            };
            let _ = write!(
                out,
                "Q {} {} {} {engine} {}\n{query}\n",
                from.as_str(),
                waiter.conn,
                waiter.ticket,
                method.as_str()
            );
            out.extend_from_slice(body);
        }
        Relay::Answer {
            waiter,
            status,
            content_type,
            body,
        } => {
            text(content_type.as_bytes())?;
            if !(100..=599).contains(status) {
                return Err(RelayError::BadStatus);
            }
            let _ = write!(
                out,
                "A {} {} {status}\n{content_type}\n",
                waiter.conn, waiter.ticket
            );
            out.extend_from_slice(body);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag() -> NodeTag {
        NodeTag::parse(b"AbCd-_09").unwrap()
    }

    #[test]
    fn a_request_reads_back_with_its_body_as_it_came() {
        let relay = Relay::Request {
            from: tag(),
            waiter: Waiter {
                conn: 17,
                ticket: 90210,
            },
            engine: Engine::SocketIo,
            method: PollMethod::Post,
            query: "EIO=4&transport=polling&sid=AbCd-_09xxxxxxxxxxxxxxxxxxx",
            body: b"42[\"x\"]\x1e\n\nbinary\x00",
        };
        let mut out = Vec::new();
        write(&relay, &mut out).unwrap();
        assert!(out.starts_with(b"Q AbCd-_09 17 90210 s POST\nEIO=4&"));
        assert_eq!(parse(&out), Ok(relay));
    }

    #[test]
    fn an_answer_reads_back() {
        let relay = Relay::Answer {
            waiter: Waiter { conn: 0, ticket: 1 },
            status: 200,
            content_type: "text/plain; charset=UTF-8",
            body: b"",
        };
        let mut out = Vec::new();
        write(&relay, &mut out).unwrap();
        assert_eq!(out, b"A 0 1 200\ntext/plain; charset=UTF-8\n");
        assert_eq!(parse(&out), Ok(relay));
    }

    #[test]
    fn each_broken_rule_has_its_error() {
        let cases: [(&[u8], RelayError); 12] = [
            (b"X 1 2\n", RelayError::UnknownKind),
            (b"Q AbCd-_09 1 2 s GET\n", RelayError::MissingLine),
            (b"Q AbCd-_09 1 2 s\nq\n", RelayError::BadFields),
            (b"Q AbCd-_0 1 2 s GET\nq\n", RelayError::BadTag),
            (b"Q AbCd-_09 01 2 s GET\nq\n", RelayError::BadNumber),
            (b"Q AbCd-_09 1 -2 s GET\nq\n", RelayError::BadNumber),
            (b"Q AbCd-_09 1 2 x GET\nq\n", RelayError::BadEngine),
            (b"Q AbCd-_09 1 2 s PUT\nq\n", RelayError::BadMethod),
            (b"Q AbCd-_09 1 2 s GET\nq\r\n", RelayError::BadText),
            (b"A 1 2 99\nt\n", RelayError::BadStatus),
            (b"A 1 2 200 \nt\n", RelayError::BadFields),
            (b"A 1 99999999999999999999 200\nt\n", RelayError::BadNumber),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(input),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_header_value_with_a_line_break_is_not_written() {
        let relay = Relay::Answer {
            waiter: Waiter { conn: 1, ticket: 1 },
            status: 200,
            content_type: "text/html\r\nSet-Cookie: x",
            body: b"",
        };
        assert_eq!(write(&relay, &mut Vec::new()), Err(RelayError::BadText));
    }

    #[test]
    fn a_sid_names_its_node_by_its_first_eight_characters() {
        let bytes = [0xfb, 0xff, 0x00, 0x10, 0x83, 0x7e];
        let t = NodeTag::from_bytes(bytes);
        let mut sid = [0u8; 20];
        sid[..6].copy_from_slice(&bytes);
        let sid = Sid::from_bytes(sid);
        assert_eq!(NodeTag::of_sid(sid.as_str()), Some(t));
        let other = Sid::from_bytes([0xab; 20]);
        let stamped = t.stamp(other);
        assert_eq!(NodeTag::of_sid(stamped.as_str()), Some(t));
        assert_eq!(stamped.as_str()[8..], other.as_str()[8..]);
        assert_eq!(
            t.channel(),
            format!("pushwire:node:{}", t.as_str()).into_bytes()
        );
        assert_eq!(NodeTag::of_sid("short"), None);
    }
}

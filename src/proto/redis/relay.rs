//! Node to node over Redis pub/sub: an Engine.IO polling request carried
//! to the node that holds its session, and that node's answer carried
//! back; and a WebSocket that reached another node than its session's,
//! carried between the two. This is what lets a Socket.IO session work,
//! and upgrade, behind a load balancer that is not sticky.
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
//! R <from> <s|e> LF <query> LF
//!
//! O <from> <conn> <ticket> <s|e> LF <query> LF
//! M <from> <conn> <ticket> <t|b> LF <sid> LF <data>
//! D <from> <conn> <ticket> LF <sid> LF
//! X <from> <conn> <ticket> LF <sid> LF
//! W <conn> <ticket> <t|b> <0|1> LF <data>
//! C <conn> <ticket> <code> LF
//! ```
//!
//! - `Q` (request) goes to the owner's channel. `<from>` is the asking
//!   node's tag; `<conn> <ticket>` name the connection waiting there
//!   ([`Waiter`]), and are sent back as they came; `s` is the Socket.IO
//!   engine, `e` the Engine.IO-only one (`--engineio-echo`, tests).
//! - `A` (answer) goes to `<from>`'s channel: what the owner would have
//!   written on its own connection, status, content type and body.
//! - `R` (refused) goes to the owner's channel: a POST for the session of
//!   `<query>` was over every body `<from>` takes, and was answered 413
//!   there before its body was read. No answer follows; the session ends
//!   as for any payload over `maxPayload`, as it would have on its own
//!   node.
//!
//! A WebSocket for a session of another node (the upgrade of a polling
//! session whose request the balancer sent elsewhere) is *carried*: the
//! node it reached (the edge) runs the WebSocket itself (handshake,
//! frames, deflate, limits) and the owner runs the session, as if the
//! messages were its own WebSocket's.
//!
//! - `O` (opened), edge to owner: the edge accepted a WebSocket for the
//!   session of `<query>` on its connection `<conn>`; `<ticket>` tells
//!   this WebSocket from a later one on the same connection id. The
//!   owner asks its session, as for its own WebSocket, and closes the
//!   carrier with `C` if the session refuses.
//! - `M` (message), edge to owner: one message from the client, text
//!   (`t`) or binary (`b`), for session `<sid>`.
//! - `D` (drained), edge to owner: everything the owner sent is written
//!   out; sent once after a `W` that asked for it (`1`), which the owner
//!   does while a replay of the session waits for room.
//! - `X` (gone), edge to owner: the WebSocket ended at the edge.
//! - `W` (write), owner to edge: one message for the client.
//! - `C` (close), owner to edge: end the WebSocket with close `<code>`
//!   (RFC 6455 §7.4).
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
    /// `O`: a WebSocket opened at `from` for a session of the node it is
    /// sent to.
    WsOpen {
        from: NodeTag,
        waiter: Waiter,
        engine: Engine,
        query: &'a str,
    },
    /// `M`: a message from the client of a carried WebSocket.
    WsIn {
        from: NodeTag,
        waiter: Waiter,
        sid: Sid,
        binary: bool,
        data: &'a [u8],
    },
    /// `D`: the carried WebSocket has written out what it was sent.
    WsDrained {
        from: NodeTag,
        waiter: Waiter,
        sid: Sid,
    },
    /// `X`: the carried WebSocket ended at the edge.
    WsGone {
        from: NodeTag,
        waiter: Waiter,
        sid: Sid,
    },
    /// `W`: a message for the client of a carried WebSocket; `drain`
    /// asks for a `D` once it is written out.
    WsOut {
        waiter: Waiter,
        binary: bool,
        drain: bool,
        data: &'a [u8],
    },
    /// `C`: end the carried WebSocket with close `code`.
    WsClose { waiter: Waiter, code: u16 },
    /// A polling request for a session of the node it is sent to.
    Request {
        from: NodeTag,
        waiter: Waiter,
        engine: Engine,
        method: PollMethod,
        query: &'a str,
        body: &'a [u8],
    },
    /// `R`: a POST for the session of `query` refused at `from` for its
    /// size, before its body was read.
    Refused {
        from: NodeTag,
        engine: Engine,
        query: &'a str,
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
    #[error("not a relay message (kind is none of Q A R O M D X W C)")]
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
    #[error("a sid is not 27 base64url characters")]
    BadSid,
    #[error("the data type is neither t nor b")]
    BadDataType,
    #[error("the drain flag is neither 0 nor 1")]
    BadFlag,
    #[error("a close code is outside 1000-4999 (RFC 6455 §7.4)")]
    BadCloseCode,
    #[error("bytes follow the last line of a message that has no body")]
    TrailingBytes,
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

/// `<conn> <ticket>`: which waiting connection, or carried WebSocket.
fn waiter(conn: &[u8], ticket: &[u8]) -> Result<Waiter, RelayError> {
    Ok(Waiter {
        conn: number(conn)?,
        ticket: number(ticket)?,
    })
}

fn engine(field: &[u8]) -> Result<Engine, RelayError> {
    match field {
        b"s" => Ok(Engine::SocketIo),
        b"e" => Ok(Engine::EngineIo),
        _ => Err(RelayError::BadEngine),
    }
}

fn engine_str(engine: Engine) -> &'static str {
    match engine {
        Engine::SocketIo => "s",
        Engine::EngineIo => "e",
    }
}

/// `t` or `b`: whether a WebSocket message is binary (RFC 6455 §5.6).
fn data_type(field: &[u8]) -> Result<bool, RelayError> {
    match field {
        b"t" => Ok(false),
        b"b" => Ok(true),
        _ => Err(RelayError::BadDataType),
    }
}

fn data_type_str(binary: bool) -> &'static str {
    if binary {
        "b"
    } else {
        "t"
    }
}

/// The sid line of an edge's message, and what follows it.
fn sid_line(rest: &[u8]) -> Result<(Sid, &[u8]), RelayError> {
    let (sid, rest) = line(rest)?;
    let sid = std::str::from_utf8(sid)
        .ok()
        .and_then(Sid::parse)
        .ok_or(RelayError::BadSid)?;
    Ok((sid, rest))
}

/// Nothing may follow the last line of a message without a body: each
/// message has one spelling.
fn end(rest: &[u8]) -> Result<(), RelayError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(RelayError::TrailingBytes)
    }
}

/// Reads one relayed message.
pub fn parse(payload: &[u8]) -> Result<Relay<'_>, RelayError> {
    let (head, rest) = line(payload)?;
    let fields: Vec<&[u8]> = head.split(|&b| b == b' ').collect();
    let tag = |t: &[u8]| NodeTag::parse(t).ok_or(RelayError::BadTag);
    match fields.first().copied() {
        Some(b"Q") => {
            let [_, from, conn, ticket, eng, method] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let (from, waiter, engine) = (tag(from)?, waiter(conn, ticket)?, engine(eng)?);
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
        Some(b"R") => {
            let [_, from, eng] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let (from, engine) = (tag(from)?, engine(eng)?);
            let (query, rest) = line(rest)?;
            let query = text(query)?;
            end(rest)?;
            Ok(Relay::Refused {
                from,
                engine,
                query,
            })
        }
        Some(b"A") => {
            let [_, conn, ticket, status] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let waiter = waiter(conn, ticket)?;
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
        Some(b"O") => {
            let [_, from, conn, ticket, eng] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let (from, waiter, engine) = (tag(from)?, waiter(conn, ticket)?, engine(eng)?);
            let (query, rest) = line(rest)?;
            let query = text(query)?;
            end(rest)?;
            Ok(Relay::WsOpen {
                from,
                waiter,
                engine,
                query,
            })
        }
        Some(b"M") => {
            let [_, from, conn, ticket, kind] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let (from, waiter, binary) = (tag(from)?, waiter(conn, ticket)?, data_type(kind)?);
            let (sid, data) = sid_line(rest)?;
            Ok(Relay::WsIn {
                from,
                waiter,
                sid,
                binary,
                data,
            })
        }
        Some(kind @ (b"D" | b"X")) => {
            let [_, from, conn, ticket] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let (from, waiter) = (tag(from)?, waiter(conn, ticket)?);
            let (sid, rest) = sid_line(rest)?;
            end(rest)?;
            Ok(if kind == b"D" {
                Relay::WsDrained { from, waiter, sid }
            } else {
                Relay::WsGone { from, waiter, sid }
            })
        }
        Some(b"W") => {
            let [_, conn, ticket, kind, drain] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let (waiter, binary) = (waiter(conn, ticket)?, data_type(kind)?);
            let drain = match drain {
                b"0" => false,
                b"1" => true,
                _ => return Err(RelayError::BadFlag),
            };
            Ok(Relay::WsOut {
                waiter,
                binary,
                drain,
                data: rest,
            })
        }
        Some(b"C") => {
            let [_, conn, ticket, code] = fields[..] else {
                return Err(RelayError::BadFields);
            };
            let waiter = waiter(conn, ticket)?;
            let code = number(code)?;
            if !(1000..=4999).contains(&code) {
                return Err(RelayError::BadCloseCode);
            }
            end(rest)?;
            Ok(Relay::WsClose {
                waiter,
                code: code as u16,
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
            let _ = write!(
                out,
                "Q {} {} {} {} {}\n{query}\n",
                from.as_str(),
                waiter.conn,
                waiter.ticket,
                engine_str(*engine),
                method.as_str()
            );
            out.extend_from_slice(body);
        }
        Relay::Refused {
            from,
            engine,
            query,
        } => {
            text(query.as_bytes())?;
            let _ = write!(
                out,
                "R {} {}\n{query}\n",
                from.as_str(),
                engine_str(*engine)
            );
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
        Relay::WsOpen {
            from,
            waiter,
            engine,
            query,
        } => {
            text(query.as_bytes())?;
            let _ = write!(
                out,
                "O {} {} {} {}\n{query}\n",
                from.as_str(),
                waiter.conn,
                waiter.ticket,
                engine_str(*engine)
            );
        }
        Relay::WsIn {
            from,
            waiter,
            sid,
            binary,
            data,
        } => {
            let _ = write!(
                out,
                "M {} {} {} {}\n{}\n",
                from.as_str(),
                waiter.conn,
                waiter.ticket,
                data_type_str(*binary),
                sid.as_str()
            );
            out.extend_from_slice(data);
        }
        Relay::WsDrained { from, waiter, sid } | Relay::WsGone { from, waiter, sid } => {
            let kind = if matches!(relay, Relay::WsDrained { .. }) {
                'D'
            } else {
                'X'
            };
            let _ = write!(
                out,
                "{kind} {} {} {}\n{}\n",
                from.as_str(),
                waiter.conn,
                waiter.ticket,
                sid.as_str()
            );
        }
        Relay::WsOut {
            waiter,
            binary,
            drain,
            data,
        } => {
            let _ = writeln!(
                out,
                "W {} {} {} {}",
                waiter.conn,
                waiter.ticket,
                data_type_str(*binary),
                u8::from(*drain)
            );
            out.extend_from_slice(data);
        }
        Relay::WsClose { waiter, code } => {
            if !(1000..=4999).contains(code) {
                return Err(RelayError::BadCloseCode);
            }
            let _ = writeln!(out, "C {} {} {code}", waiter.conn, waiter.ticket);
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
    fn a_refusal_reads_back_and_carries_nothing_after_its_query() {
        let relay = Relay::Refused {
            from: tag(),
            engine: Engine::SocketIo,
            query: "EIO=4&transport=polling&sid=OtherNd1xxxxxxxxxxxxxxxxxxx",
        };
        let mut out = Vec::new();
        write(&relay, &mut out).unwrap();
        assert_eq!(
            out,
            b"R AbCd-_09 s\nEIO=4&transport=polling&sid=OtherNd1xxxxxxxxxxxxxxxxxxx\n"
        );
        assert_eq!(parse(&out), Ok(relay));
        out.push(b'x');
        assert_eq!(parse(&out), Err(RelayError::TrailingBytes));
        assert_eq!(parse(b"R AbCd-_09\nq\n"), Err(RelayError::BadFields));
    }

    fn sid() -> Sid {
        Sid::parse("OtherNd1xxxxxxxxxxxxxxxxxxx").unwrap()
    }

    #[test]
    fn the_messages_of_a_carried_websocket_read_back() {
        let waiter = Waiter {
            conn: 3,
            ticket: 44,
        };
        let cases = [
            (
                Relay::WsOpen {
                    from: tag(),
                    waiter,
                    engine: Engine::SocketIo,
                    query: "EIO=4&transport=websocket&sid=OtherNd1xxxxxxxxxxxxxxxxxxx",
                },
                "O AbCd-_09 3 44 s\nEIO=4&transport=websocket&sid=OtherNd1xxxxxxxxxxxxxxxxxxx\n"
                    .as_bytes(),
            ),
            (
                Relay::WsIn {
                    from: tag(),
                    waiter,
                    sid: sid(),
                    binary: true,
                    data: b"\x00\n\xff",
                },
                b"M AbCd-_09 3 44 b\nOtherNd1xxxxxxxxxxxxxxxxxxx\n\x00\n\xff",
            ),
            (
                Relay::WsDrained {
                    from: tag(),
                    waiter,
                    sid: sid(),
                },
                b"D AbCd-_09 3 44\nOtherNd1xxxxxxxxxxxxxxxxxxx\n",
            ),
            (
                Relay::WsGone {
                    from: tag(),
                    waiter,
                    sid: sid(),
                },
                b"X AbCd-_09 3 44\nOtherNd1xxxxxxxxxxxxxxxxxxx\n",
            ),
            (
                Relay::WsOut {
                    waiter,
                    binary: false,
                    drain: true,
                    data: b"3probe",
                },
                b"W 3 44 t 1\n3probe",
            ),
            (Relay::WsClose { waiter, code: 1000 }, b"C 3 44 1000\n"),
        ];
        for (relay, bytes) in cases {
            let mut out = Vec::new();
            write(&relay, &mut out).unwrap();
            assert_eq!(out, bytes, "{relay:?}");
            assert_eq!(parse(&out), Ok(relay));
        }
    }

    #[test]
    fn each_broken_rule_has_its_error() {
        let cases: [(&[u8], RelayError); 19] = [
            (b"Z 1 2\n", RelayError::UnknownKind),
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
            (b"O AbCd-_09 1 2 s\nq\nbody", RelayError::TrailingBytes),
            (
                b"M AbCd-_09 1 2 x\nOtherNd1xxxxxxxxxxxxxxxxxxx\n",
                RelayError::BadDataType,
            ),
            (b"M AbCd-_09 1 2 t\nshort\n", RelayError::BadSid),
            (
                b"X AbCd-_09 1 2\nOtherNd1xxxxxxxxxxxxxxxxxxx",
                RelayError::MissingLine,
            ),
            (b"W 1 2 t 2\n", RelayError::BadFlag),
            (b"C 1 2 999\n", RelayError::BadCloseCode),
            (b"C 1 2 1000 x\n", RelayError::BadFields),
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

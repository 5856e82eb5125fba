//! Engine.IO v4 packets and polling payloads.
//!
//! Before working on this file, read the Engine.IO protocol
//! (socketio/engine.io-protocol, README, "Protocol" and "Packet
//! encoding"), then `engine.io-parser/lib/{encodePacket,decodePacket,
//! index}.ts` of the reference implementation, whose decisions this codec
//! follows byte for byte.
//!
//! A packet is one type digit and its data:
//!
//! | type | digit | data |
//! |---|---|---|
//! | open | `0` | the handshake JSON (server → client) |
//! | close | `1` | — |
//! | ping | `2` | optional (`probe` during an upgrade) |
//! | pong | `3` | optional (`probe`) |
//! | message | `4` | text, or binary (below) |
//! | upgrade | `5` | — |
//! | noop | `6` | — |
//!
//! Over WebSocket a packet is one frame: a text frame holds the digit and
//! the text, a binary frame holds a binary message's bytes and nothing else.
//! Over HTTP long-polling a *payload* (one request or response body) holds
//! packets joined by the record separator `\x1e`; a binary message there is
//! `b` followed by the base64 of its bytes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use thiserror::Error;

use crate::wire::json::write_str;

/// Engine.IO protocol revision this codec speaks (the `EIO=4` query).
pub const PROTOCOL: u8 = 4;

/// The byte between packets of a polling payload (protocol README,
/// "Payload": "the packets are separated by the record separator `\x1e`").
pub const SEPARATOR: u8 = 0x1e;

/// The type of a packet (its leading digit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl PacketType {
    /// The digit `0`..=`6`; anything else is not a packet type.
    pub fn from_digit(b: u8) -> Option<PacketType> {
        Some(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }

    pub fn digit(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }
}

/// A packet's data: text, or the bytes of a binary message.
#[derive(Clone, PartialEq, Eq)]
pub enum Data {
    Text(String),
    Binary(Vec<u8>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::Text(s) => s.len(),
            Data::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Text(s) => write!(f, "Text({s:?})"),
            Data::Binary(b) => write!(f, "Binary({b:02x?})"),
        }
    }
}

/// One Engine.IO packet. Only a message may carry binary data: the
/// protocol has no binary form for the other types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketType,
    pub data: Data,
}

/// A packet no peer may send, named after the rule it breaks. Over polling
/// the request is answered with [`status`](EioError::status); over
/// WebSocket the connection is closed with
/// [`close_code`](EioError::close_code). Either way the reference server
/// closes the session ("parse error"), and so do we.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EioError {
    /// A packet is at least its type digit; `4hello\x1e\x1e` holds an
    /// empty one.
    #[error("empty packet")]
    EmptyPacket,
    /// The leading byte is not `0`..=`6` (nor `b` in a payload).
    #[error("unknown packet type {0:#04x}")]
    UnknownPacketType(u8),
    /// A `b` packet whose rest is not padded standard base64 (RFC 4648 §4).
    #[error("binary packet is not base64")]
    InvalidBase64,
    /// Polling payloads and text frames are UTF-8 text.
    #[error("payload is not UTF-8")]
    NotUtf8,
    /// Over `maxPayload`, the limit the server announced in its handshake.
    #[error("payload over maxPayload ({limit} bytes)")]
    PayloadTooLarge { limit: usize },
}

impl EioError {
    /// The HTTP status a polling request gets for it.
    pub fn status(&self) -> u16 {
        match self {
            EioError::PayloadTooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// The WebSocket close code (RFC 6455 §7.4.1) a WebSocket gets for it.
    pub fn close_code(&self) -> u16 {
        match self {
            EioError::PayloadTooLarge { .. } => 1009,
            EioError::NotUtf8 => 1007,
            _ => 1002,
        }
    }
}

impl Packet {
    pub fn new(kind: PacketType) -> Packet {
        Packet {
            kind,
            data: Data::Text(String::new()),
        }
    }

    pub fn text(kind: PacketType, text: impl Into<String>) -> Packet {
        Packet {
            kind,
            data: Data::Text(text.into()),
        }
    }

    /// A message packet (`4…`, or binary).
    pub fn message(data: Data) -> Packet {
        Packet {
            kind: PacketType::Message,
            data,
        }
    }

    /// Reads the text of one packet: a WebSocket text frame, or one
    /// element of a polling payload (there, [`decode_payload`] handles the
    /// `b` form first).
    pub fn decode_text(text: &str) -> Result<Packet, EioError> {
        let Some(&first) = text.as_bytes().first() else {
            return Err(EioError::EmptyPacket);
        };
        // engine.io-parser decodePacket: an unknown type is an error packet,
        // which the server answers by closing the session.
        let kind = PacketType::from_digit(first).ok_or(EioError::UnknownPacketType(first))?;
        Ok(Packet::text(kind, &text[1..]))
    }

    /// A WebSocket binary frame is a binary message, bytes as they are.
    pub fn decode_binary(bytes: &[u8]) -> Packet {
        Packet::message(Data::Binary(bytes.to_vec()))
    }

    /// Appends the packet as one element of a polling payload: the type
    /// digit and the text, or `b` and the base64 of a binary message.
    pub fn encode_polling(&self, out: &mut Vec<u8>) {
        match &self.data {
            Data::Text(s) => {
                out.push(self.kind.digit());
                out.extend_from_slice(s.as_bytes());
            }
            Data::Binary(b) => {
                out.push(b'b');
                let at = out.len();
                out.resize(at + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
                let n = STANDARD.encode_slice(b, &mut out[at..]).unwrap_or(0);
                out.truncate(at + n);
            }
        }
    }

    /// The packet as one WebSocket message: text (digit and text) or
    /// binary (the bytes alone). `true` means binary.
    pub fn encode_ws(&self) -> (bool, Vec<u8>) {
        match &self.data {
            Data::Text(s) => {
                let mut out = Vec::with_capacity(s.len() + 1);
                out.push(self.kind.digit());
                out.extend_from_slice(s.as_bytes());
                (false, out)
            }
            Data::Binary(b) => (true, b.clone()),
        }
    }
}

/// The limits a payload decoder enforces.
#[derive(Clone, Copy, Debug)]
pub struct PayloadLimits {
    /// Largest request body, in bytes: the `maxPayload` of the handshake.
    /// Over it the request is refused with 413 before any packet in it is
    /// read, and the session closes, as the reference server does. Since
    /// every packet takes at least one byte, this also bounds the number of
    /// packets in a payload.
    pub max_payload: usize,
}

/// Reads a polling payload: packets separated by `\x1e`.
///
/// Protocol README, "Payload": "each packet is prefixed by its type ... a
/// binary packet is prefixed by `b` and base64-encoded". The whole body is
/// read at once (the request has ended), so there is no "need more" here.
pub fn decode_payload(body: &[u8], limits: PayloadLimits) -> Result<Vec<Packet>, EioError> {
    if body.len() > limits.max_payload {
        return Err(EioError::PayloadTooLarge {
            limit: limits.max_payload,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| EioError::NotUtf8)?;
    let mut packets = Vec::new();
    for element in text.split(SEPARATOR as char) {
        packets.push(decode_element(element)?);
    }
    Ok(packets)
}

fn decode_element(element: &str) -> Result<Packet, EioError> {
    match element.strip_prefix('b') {
        Some(b64) => {
            let bytes = STANDARD.decode(b64).map_err(|_| EioError::InvalidBase64)?;
            Ok(Packet::message(Data::Binary(bytes)))
        }
        None => Packet::decode_text(element),
    }
}

/// Writes packets as one polling payload.
pub fn encode_payload(packets: &[Packet], out: &mut Vec<u8>) {
    for (i, p) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        p.encode_polling(out);
    }
}

/// The handshake, sent as the data of the open packet (protocol README,
/// "Handshake").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPacket<'a> {
    pub sid: &'a str,
    /// `["websocket"]` on polling, `[]` once on WebSocket.
    pub upgrades: &'a [&'a str],
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload: usize,
}

impl OpenPacket<'_> {
    /// Appends the open packet's text: `0{"sid":…,"upgrades":[…],
    /// "pingInterval":…,"pingTimeout":…,"maxPayload":…}`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(PacketType::Open.digit());
        out.extend_from_slice(b"{\"sid\":");
        write_str(out, self.sid);
        out.extend_from_slice(b",\"upgrades\":[");
        for (i, u) in self.upgrades.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, u);
        }
        out.extend_from_slice(
            format!(
                "],\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
                self.ping_interval_ms, self.ping_timeout_ms, self.max_payload
            )
            .as_bytes(),
        );
    }

    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        self.encode(&mut out);
        // Only UTF-8 went in.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The error codes of the reference server (`Server.errors` in
/// engine.io `lib/server.ts`), sent as `{"code":N,"message":"…"}` with
/// the HTTP status of [`status`](ErrorCode::status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    TransportUnknown = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    /// The message the reference server sends with the code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::TransportUnknown => "Transport unknown",
            ErrorCode::UnknownSid => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// engine.io `abortRequest`: 403 for Forbidden, 400 for all others.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Forbidden => 403,
            _ => 400,
        }
    }

    /// Appends the JSON body `{"code":N,"message":"…"}`.
    pub fn write_body(self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{{\"code\":{},\"message\":", self as u8).as_bytes());
        write_str(out, self.message());
        out.push(b'}');
    }
}

/// The Engine.IO parameters of a request's query string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Query<'a> {
    /// `EIO`: the protocol revision.
    pub eio: Option<&'a str>,
    /// `transport`: `polling` or `websocket`.
    pub transport: Option<&'a str>,
    /// `sid`: the session, absent on a handshake.
    pub sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// Picks `EIO`, `transport` and `sid` out of a raw query string (the
    /// part after `?`). Their values are protocol tokens and base64url, so
    /// nothing needs percent-decoding; an encoded value simply matches no
    /// transport or session. The first occurrence of a name wins.
    pub fn parse(query: &'a str) -> Query<'a> {
        let mut q = Query::default();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "EIO" => &mut q.eio,
                "transport" => &mut q.transport,
                "sid" => &mut q.sid,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PayloadLimits = PayloadLimits {
        max_payload: 1_000_000,
    };

    fn payload(packets: &[Packet]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_payload(packets, &mut out);
        out
    }

    #[test]
    fn protocol_readme_payload_examples() {
        // "4hello\x1e4€\x1ebAQIDBA==": two text messages and a binary one.
        let body = "4hello\x1e4€\x1ebAQIDBA==".as_bytes();
        let packets = decode_payload(body, LIMITS).unwrap();
        assert_eq!(
            packets,
            vec![
                Packet::message(Data::Text("hello".into())),
                Packet::message(Data::Text("€".into())),
                Packet::message(Data::Binary(vec![1, 2, 3, 4])),
            ]
        );
        assert_eq!(payload(&packets), body);
    }

    #[test]
    fn every_packet_type_both_ways() {
        for (text, kind, data) in [
            ("0{}", PacketType::Open, "{}"),
            ("1", PacketType::Close, ""),
            ("2", PacketType::Ping, ""),
            ("2probe", PacketType::Ping, "probe"),
            ("3probe", PacketType::Pong, "probe"),
            ("4", PacketType::Message, ""),
            ("5", PacketType::Upgrade, ""),
            ("6", PacketType::Noop, ""),
        ] {
            let p = Packet::decode_text(text).unwrap();
            assert_eq!(p, Packet::text(kind, data));
            assert_eq!(p.encode_ws(), (false, text.as_bytes().to_vec()));
            assert_eq!(payload(&[p]), text.as_bytes());
        }
    }

    #[test]
    fn binary_over_websocket_is_the_bytes_alone() {
        let p = Packet::decode_binary(&[1, 2, 3, 4]);
        assert_eq!(p, Packet::message(Data::Binary(vec![1, 2, 3, 4])));
        assert_eq!(p.encode_ws(), (true, vec![1, 2, 3, 4]));
    }

    #[test]
    fn refuses_what_the_reference_refuses() {
        assert_eq!(
            decode_payload(b"abc", LIMITS),
            Err(EioError::UnknownPacketType(b'a'))
        );
        assert_eq!(
            decode_payload(b"4a\x1e\x1e4b", LIMITS),
            Err(EioError::EmptyPacket)
        );
        assert_eq!(decode_payload(b"", LIMITS), Err(EioError::EmptyPacket));
        assert_eq!(
            decode_payload(b"b!!!", LIMITS),
            Err(EioError::InvalidBase64)
        );
        assert_eq!(decode_payload(b"4\xff", LIMITS), Err(EioError::NotUtf8));
        assert_eq!(
            Packet::decode_text("7"),
            Err(EioError::UnknownPacketType(b'7'))
        );
        let small = PayloadLimits { max_payload: 3 };
        assert_eq!(
            decode_payload(b"4abc", small),
            Err(EioError::PayloadTooLarge { limit: 3 })
        );
        assert_eq!(
            decode_payload(b"4ab", small).unwrap(),
            vec![Packet::text(PacketType::Message, "ab")]
        );
        assert_eq!(EioError::PayloadTooLarge { limit: 3 }.status(), 413);
    }

    #[test]
    fn open_packet_as_the_suite_expects() {
        let open = OpenPacket {
            sid: "lv_VI97HAXpY6yYWAAAC",
            upgrades: &["websocket"],
            ping_interval_ms: 300,
            ping_timeout_ms: 200,
            max_payload: 1_000_000,
        };
        let text = open.to_text();
        assert_eq!(
            text,
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
        );
        // And a JSON reader sees exactly those members.
        let v = crate::client::json::parse(&text[1..]).unwrap();
        assert_eq!(v.get("sid").and_then(|s| s.as_str()), Some(open.sid));
        assert_eq!(v.get("pingInterval").and_then(|n| n.as_f64()), Some(300.0));
        let ws = OpenPacket {
            upgrades: &[],
            ..open
        };
        assert!(ws.to_text().contains(r#""upgrades":[],"#));
    }

    #[test]
    fn error_bodies_and_statuses() {
        let mut out = Vec::new();
        ErrorCode::UnknownSid.write_body(&mut out);
        assert_eq!(out, br#"{"code":1,"message":"Session ID unknown"}"#);
        assert_eq!(ErrorCode::UnknownSid.status(), 400);
        assert_eq!(ErrorCode::Forbidden.status(), 403);
        assert_eq!(ErrorCode::UnsupportedProtocolVersion as u8, 5);
    }

    #[test]
    fn query_parameters() {
        let q = Query::parse("EIO=4&transport=polling&t=Nx1&sid=abc_-");
        assert_eq!(
            q,
            Query {
                eio: Some("4"),
                transport: Some("polling"),
                sid: Some("abc_-"),
            }
        );
        assert_eq!(Query::parse(""), Query::default());
        assert_eq!(Query::parse("EIO").eio, Some(""));
        assert_eq!(Query::parse("EIO=4&EIO=3").eio, Some("4"));
    }
}

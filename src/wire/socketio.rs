//! Socket.IO v5 packets, carried in Engine.IO messages.
//!
//! Before working on this file, read the Socket.IO protocol
//! (socketio/socket.io-protocol, README, "Packet format" and "Exchange
//! protocol"), then `socket.io-parser/lib/index.ts` and `binary.ts` of the
//! reference implementation: this decoder refuses what its `Decoder`
//! refuses (`decodeString`, `isPayloadValid`, `_reconstructPacket`).
//!
//! A packet is one text message:
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][JSON data]
//! ```
//!
//! | type | digit | data |
//! |---|---|---|
//! | CONNECT | `0` | optional object (the `auth` payload; the reply's `{"sid"}`) |
//! | DISCONNECT | `1` | none |
//! | EVENT | `2` | array: the event name, then its arguments |
//! | ACK | `3` | array: the acknowledgement's arguments |
//! | CONNECT_ERROR | `4` | string or object (`{"message"}`) |
//! | BINARY_EVENT | `5` | as EVENT, with `{"_placeholder":true,"num":N}` for each binary |
//! | BINARY_ACK | `6` | as ACK, with placeholders |
//!
//! A binary packet's text says how many attachments follow; each is the
//! next Engine.IO binary message, in order, and placeholder `num` N stands
//! for attachment N. Here a packet and its attachments make a [`Message`];
//! placeholders stay in the JSON as they are, and the attachments travel
//! beside it, so that echoing a binary event needs no conversion at all.
//!
//! JSON differs from JavaScript's in one way that matters: an object with a
//! duplicate key is refused (see `client/json.rs`), where `JSON.parse`
//! keeps the last one.

use thiserror::Error;

use crate::client::json::{self, Value};

/// The type of a packet (its leading digit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl PacketType {
    pub fn from_digit(b: u8) -> Option<PacketType> {
        Some(match b {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    pub fn digit(self) -> u8 {
        match self {
            PacketType::Connect => b'0',
            PacketType::Disconnect => b'1',
            PacketType::Event => b'2',
            PacketType::Ack => b'3',
            PacketType::ConnectError => b'4',
            PacketType::BinaryEvent => b'5',
            PacketType::BinaryAck => b'6',
        }
    }

    /// BINARY_EVENT and BINARY_ACK: the types with an attachment count.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

/// The event names a peer may not send: the reference parser's
/// `RESERVED_EVENTS`, which name the library's own local events.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The digits of an ack id, at most (of [`MAX_ACK_ID`]).
pub const MAX_ACK_ID_DIGITS: usize = 16;

/// The largest ack id: JavaScript's `Number.MAX_SAFE_INTEGER` (2^53 - 1),
/// so the id means the same number to a JavaScript peer as to us.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// What a decoder accepts.
#[derive(Clone, Copy, Debug)]
pub struct SioLimits {
    /// Most attachments one binary packet may announce (the reference
    /// parser's `maxAttachments`, 10). Over it the packet is refused and the
    /// connection closed. Each attachment is one Engine.IO message, so
    /// together with Engine.IO's `maxPayload` this bounds what a decoder
    /// holds while it waits for them.
    pub max_attachments: usize,
}

impl Default for SioLimits {
    fn default() -> Self {
        SioLimits {
            max_attachments: 10,
        }
    }
}

/// A packet no peer may send, named after the rule it breaks. The
/// reference server answers every one by closing the Engine.IO connection
/// (`Client.onerror`); [`close_code`](SioError::close_code) is the
/// WebSocket close code for that, [`status`](SioError::status) the HTTP
/// status for a polling request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SioError {
    /// The text is empty: there is no type digit.
    #[error("empty packet")]
    EmptyPacket,
    /// index.ts: "unknown packet type".
    #[error("unknown packet type {0:#04x}")]
    UnknownPacketType(u8),
    /// index.ts: "Illegal attachments": the count is not digits then `-`.
    #[error("illegal attachments")]
    IllegalAttachments,
    /// index.ts: "too many attachments" (over [`SioLimits::max_attachments`]).
    #[error("too many attachments")]
    TooManyAttachments,
    /// An ack id above [`MAX_ACK_ID`].
    #[error("ack id too large")]
    AckIdTooLarge,
    /// index.ts: "invalid payload": not JSON, or not the shape the type
    /// requires (`isPayloadValid`).
    #[error("invalid payload")]
    InvalidPayload,
    /// binary.ts: "illegal attachments": a placeholder whose `num` is not
    /// the index of an attachment.
    #[error("placeholder names no attachment")]
    InvalidPlaceholder,
    /// index.ts: "got plaintext data when reconstructing a packet".
    #[error("text while waiting for attachments")]
    TextDuringReassembly,
    /// index.ts: "got binary data when not reconstructing a packet".
    #[error("binary data outside a binary packet")]
    UnexpectedBinary,
}

impl SioError {
    /// RFC 6455 §7.4.1: 1002, a protocol error (1003 for stray binary,
    /// data of a type the endpoint cannot accept).
    pub fn close_code(&self) -> u16 {
        match self {
            SioError::UnexpectedBinary => 1003,
            _ => 1002,
        }
    }

    pub fn status(&self) -> u16 {
        400
    }
}

/// One Socket.IO packet, its text part.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub kind: PacketType,
    /// The namespace, `/` when the packet names none.
    pub nsp: String,
    /// The ack id: the sender wants an ACK with this id.
    pub id: Option<u64>,
    /// The JSON data, absent when the packet has none.
    pub data: Option<Value>,
    /// For binary types: how many attachments follow.
    pub attachments: usize,
}

impl Packet {
    pub fn new(kind: PacketType, nsp: &str) -> Packet {
        Packet {
            kind,
            nsp: nsp.to_string(),
            id: None,
            data: None,
            attachments: 0,
        }
    }

    /// Reads the text of one packet (index.ts `decodeString`).
    pub fn decode(text: &str, limits: SioLimits) -> Result<Packet, SioError> {
        let b = text.as_bytes();
        let first = *b.first().ok_or(SioError::EmptyPacket)?;
        let kind = PacketType::from_digit(first).ok_or(SioError::UnknownPacketType(first))?;
        let mut i = 1;

        let mut attachments = 0;
        if kind.is_binary() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            // index.ts: `buf != Number(buf) || str.charAt(i) !== "-"`.
            if i == start || b.get(i) != Some(&b'-') {
                return Err(SioError::IllegalAttachments);
            }
            // More digits than any limit: refused before they could overflow.
            if i - start > 5 {
                return Err(SioError::TooManyAttachments);
            }
            attachments = text[start..i].parse::<usize>().unwrap_or(usize::MAX);
            if attachments > limits.max_attachments {
                return Err(SioError::TooManyAttachments);
            }
            i += 1;
        }

        // index.ts: a namespace starts with `/` and runs to `,` or the end.
        let nsp = if b.get(i) == Some(&b'/') {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            let nsp = &text[start..i];
            if i < b.len() {
                i += 1; // the comma
            }
            nsp.to_string()
        } else {
            "/".to_string()
        };

        let mut id = None;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i > start {
            if i - start > MAX_ACK_ID_DIGITS {
                return Err(SioError::AckIdTooLarge);
            }
            match text[start..i].parse::<u64>() {
                Ok(n) if n <= MAX_ACK_ID => id = Some(n),
                _ => return Err(SioError::AckIdTooLarge),
            }
        }

        let data = if i < b.len() {
            let value = json::parse(&text[i..]).map_err(|_| SioError::InvalidPayload)?;
            if !payload_is_valid(kind, &value) {
                return Err(SioError::InvalidPayload);
            }
            Some(value)
        } else {
            None
        };

        Ok(Packet {
            kind,
            nsp,
            id,
            data,
            attachments,
        })
    }

    /// Appends the packet's text (index.ts `encodeAsString`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind.digit());
        if self.kind.is_binary() {
            out.extend_from_slice(self.attachments.to_string().as_bytes());
            out.push(b'-');
        }
        if !self.nsp.is_empty() && self.nsp != "/" {
            out.extend_from_slice(self.nsp.as_bytes());
            out.push(b',');
        }
        if let Some(id) = self.id {
            out.extend_from_slice(id.to_string().as_bytes());
        }
        if let Some(data) = &self.data {
            write_value(out, data);
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        self.encode(&mut out);
        // Only UTF-8 went in.
        String::from_utf8(out).unwrap_or_default()
    }

    /// For an EVENT: its name and arguments.
    pub fn event(&self) -> Option<(&str, &[Value])> {
        match (&self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(items))) => {
                match items.split_first() {
                    Some((Value::String(name), args)) => Some((name, args)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// index.ts `isPayloadValid`.
fn payload_is_valid(kind: PacketType, value: &Value) -> bool {
    match kind {
        PacketType::Connect => matches!(value, Value::Object(_)),
        // A DISCONNECT carries nothing.
        PacketType::Disconnect => false,
        PacketType::ConnectError => matches!(value, Value::String(_) | Value::Object(_)),
        PacketType::Event | PacketType::BinaryEvent => match value {
            Value::Array(items) => match items.first() {
                Some(Value::Number(_)) => true,
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                _ => false,
            },
            _ => false,
        },
        PacketType::Ack | PacketType::BinaryAck => matches!(value, Value::Array(_)),
    }
}

/// A packet and, for a binary one, its attachments (in placeholder order).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub packet: Packet,
    pub attachments: Vec<Vec<u8>>,
}

/// One Engine.IO message of a Socket.IO stream, text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl Message {
    /// The message as Engine.IO messages: the packet's text, then each
    /// attachment as a binary message. The packet's attachment count is
    /// set from the attachments (and the type made binary if there are
    /// any), so what is written always says what follows.
    pub fn encode(&self) -> (Vec<u8>, &[Vec<u8>]) {
        let mut packet = self.packet.clone();
        if !self.attachments.is_empty() {
            packet.kind = match packet.kind {
                PacketType::Event => PacketType::BinaryEvent,
                PacketType::Ack => PacketType::BinaryAck,
                other => other,
            };
        }
        packet.attachments = self.attachments.len();
        let mut out = Vec::new();
        packet.encode(&mut out);
        (out, &self.attachments)
    }
}

/// Reassembles messages from a stream of Engine.IO messages (index.ts
/// `Decoder.add` with `BinaryReconstructor`).
#[derive(Debug, Default)]
pub struct Decoder {
    limits: SioLimits,
    /// A binary packet waiting for its attachments.
    pending: Option<Message>,
}

impl Decoder {
    pub fn new(limits: SioLimits) -> Decoder {
        Decoder {
            limits,
            pending: None,
        }
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_reassembling(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes one Engine.IO message. A complete message comes out at once
    /// (`Ok(Some)`); a binary packet comes out with its last attachment.
    /// After an error the stream is unusable (the connection closes).
    pub fn handle(&mut self, frame: Frame<'_>) -> Result<Option<Message>, SioError> {
        match frame {
            Frame::Text(text) => self.handle_text(text),
            Frame::Binary(bytes) => self.handle_binary(bytes),
        }
    }

    pub fn handle_text(&mut self, text: &str) -> Result<Option<Message>, SioError> {
        if self.pending.is_some() {
            return Err(SioError::TextDuringReassembly);
        }
        let packet = Packet::decode(text, self.limits)?;
        let message = Message {
            packet,
            attachments: Vec::new(),
        };
        if message.packet.kind.is_binary() && message.packet.attachments > 0 {
            self.pending = Some(message);
            return Ok(None);
        }
        // A placeholder means something only in a BINARY_EVENT or
        // BINARY_ACK (binary.ts reconstructs those alone): in an EVENT it
        // is the sender's own data, passed on as it came.
        if message.packet.kind.is_binary() {
            check_placeholders(&message)?;
        }
        Ok(Some(message))
    }

    pub fn handle_binary(&mut self, bytes: &[u8]) -> Result<Option<Message>, SioError> {
        let Some(pending) = self.pending.as_mut() else {
            return Err(SioError::UnexpectedBinary);
        };
        pending.attachments.push(bytes.to_vec());
        if pending.attachments.len() < pending.packet.attachments {
            return Ok(None);
        }
        let Some(message) = self.pending.take() else {
            return Ok(None);
        };
        check_placeholders(&message)?;
        Ok(Some(message))
    }
}

/// binary.ts `_reconstructPacket`: every `{"_placeholder":true,…}` must
/// name an attachment by an integer `num`.
fn check_placeholders(message: &Message) -> Result<(), SioError> {
    fn walk(v: &Value, n: usize) -> bool {
        match v {
            Value::Array(items) => items.iter().all(|i| walk(i, n)),
            Value::Object(members) => match placeholder_num(v) {
                Some(num) => num.is_some_and(|i| i < n),
                None => members.iter().all(|(_, m)| walk(m, n)),
            },
            _ => true,
        }
    }
    match &message.packet.data {
        Some(data) if !walk(data, message.attachments.len()) => Err(SioError::InvalidPlaceholder),
        _ => Ok(()),
    }
}

/// `Some` when `v` is a placeholder (`"_placeholder": true`), holding the
/// attachment its `num` names, or `None` inside when `num` is not a
/// non-negative integer (binary.ts `_reconstructPacket`).
pub fn placeholder_num(v: &Value) -> Option<Option<usize>> {
    if v.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    let num = v.get("num").and_then(Value::as_f64);
    // `as` saturates: a huge `num` names no attachment either.
    Some(
        num.filter(|n| n.fract() == 0.0 && *n >= 0.0)
            .map(|n| n as usize),
    )
}

/// The placeholder that stands for attachment `num` in a binary packet.
pub fn placeholder(num: usize) -> Value {
    Value::Object(vec![
        ("_placeholder".to_string(), Value::Bool(true)),
        ("num".to_string(), Value::from(num as f64)),
    ])
}

/// Appends `v` as JSON, as `JSON.stringify` would write it: members in
/// order, numbers in JavaScript's shortest form (`1`, `0.5`, `1e+21`), `-0`
/// as `0`, and non-finite numbers as `null`. A number read from a text
/// that its `f64` would round (`12345678901234567890`, `1E400`) is written
/// as that text instead (see [`json::Number`]): a packet passed on says
/// what its sender wrote.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    crate::wire::json::write_value_with(out, v, write_number);
}

/// ECMA-262 Number::toString: the shortest digits that read back as the
/// same number, in exponent form below 1e-6 and from 1e21 up.
fn write_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_finite() {
        out.extend_from_slice(b"null");
    } else if n == 0.0 {
        out.push(b'0');
    } else if n.abs() >= 1e21 || n.abs() < 1e-6 {
        let s = format!("{n:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                out.extend_from_slice(format!("{m}e+{e}").as_bytes());
            }
            _ => out.extend_from_slice(s.as_bytes()),
        }
    } else {
        out.extend_from_slice(format!("{n}").as_bytes());
    }
}

/// Writes `v` as a JSON string (see [`write_value`]).
pub fn to_json(v: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Packet, SioError> {
        Packet::decode(text, SioLimits::default())
    }

    fn both_ways(text: &str, want: Packet) {
        let p = decode(text).unwrap();
        assert_eq!(p, want, "{text}");
        assert_eq!(p.to_text(), text);
    }

    fn arr(items: Vec<Value>) -> Value {
        Value::Array(items)
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    // The examples of the protocol README, "Packet encoding".
    #[test]
    fn readme_connect_examples() {
        both_ways("0", Packet::new(PacketType::Connect, "/"));
        both_ways(
            "0/admin,{\"token\":\"123\"}",
            Packet {
                data: Some(json::parse("{\"token\":\"123\"}").unwrap()),
                ..Packet::new(PacketType::Connect, "/admin")
            },
        );
        both_ways(
            "4{\"message\":\"Not authorized\"}",
            Packet {
                data: Some(json::parse("{\"message\":\"Not authorized\"}").unwrap()),
                ..Packet::new(PacketType::ConnectError, "/")
            },
        );
        both_ways("1/admin,", Packet::new(PacketType::Disconnect, "/admin"));
    }

    #[test]
    fn readme_event_and_ack_examples() {
        both_ways(
            "2[\"hello\",1]",
            Packet {
                data: Some(arr(vec![s("hello"), Value::from(1.0)])),
                ..Packet::new(PacketType::Event, "/")
            },
        );
        both_ways(
            "2/admin,456[\"project:delete\",123]",
            Packet {
                id: Some(456),
                data: Some(arr(vec![s("project:delete"), Value::from(123.0)])),
                ..Packet::new(PacketType::Event, "/admin")
            },
        );
        both_ways(
            "3/admin,456[]",
            Packet {
                id: Some(456),
                data: Some(arr(vec![])),
                ..Packet::new(PacketType::Ack, "/admin")
            },
        );
        both_ways(
            "51-[\"hello\",{\"_placeholder\":true,\"num\":0}]",
            Packet {
                data: Some(arr(vec![s("hello"), placeholder(0)])),
                attachments: 1,
                ..Packet::new(PacketType::BinaryEvent, "/")
            },
        );
        both_ways(
            "61-/admin,456[{\"_placeholder\":true,\"num\":0}]",
            Packet {
                id: Some(456),
                data: Some(arr(vec![placeholder(0)])),
                attachments: 1,
                ..Packet::new(PacketType::BinaryAck, "/admin")
            },
        );
    }

    #[test]
    fn namespace_without_comma_runs_to_the_end() {
        // The suite's "40/custom" and "41/custom".
        let p = decode("0/custom").unwrap();
        assert_eq!(p.nsp, "/custom");
        assert_eq!(p.data, None);
        assert_eq!(p.to_text(), "0/custom,");
    }

    #[test]
    fn refuses_what_the_reference_parser_refuses() {
        assert_eq!(decode(""), Err(SioError::EmptyPacket));
        assert_eq!(decode("abc"), Err(SioError::UnknownPacketType(b'a')));
        assert_eq!(decode("7"), Err(SioError::UnknownPacketType(b'7')));
        // The suite's "42{}", "42abc[…]" (`4` is Engine.IO's, `2` ours).
        assert_eq!(decode("2{}"), Err(SioError::InvalidPayload));
        assert_eq!(
            decode("2abc[\"message-with-ack\",1]"),
            Err(SioError::InvalidPayload)
        );
        assert_eq!(decode("2[]"), Err(SioError::InvalidPayload));
        assert_eq!(decode("2[{}]"), Err(SioError::InvalidPayload));
        assert_eq!(decode("2[\"disconnect\"]"), Err(SioError::InvalidPayload));
        assert_eq!(decode("0[]"), Err(SioError::InvalidPayload));
        assert_eq!(decode("0\"x\""), Err(SioError::InvalidPayload));
        assert_eq!(decode("1{}"), Err(SioError::InvalidPayload));
        assert_eq!(decode("3{}"), Err(SioError::InvalidPayload));
        assert_eq!(decode("4[]"), Err(SioError::InvalidPayload));
        assert_eq!(decode("5[\"a\"]"), Err(SioError::IllegalAttachments));
        assert_eq!(decode("5-[\"a\"]"), Err(SioError::IllegalAttachments));
        assert_eq!(decode("5x-[\"a\"]"), Err(SioError::IllegalAttachments));
        assert_eq!(decode("511-[\"a\"]"), Err(SioError::TooManyAttachments));
        assert_eq!(
            decode("599999999999999999999-[\"a\"]"),
            Err(SioError::TooManyAttachments)
        );
        // Up to 2^53 - 1 (the largest a JavaScript peer counts exactly).
        let max = decode("29007199254740991[\"a\"]").unwrap();
        assert_eq!(max.id, Some(MAX_ACK_ID));
        for too_large in ["29007199254740992[\"a\"]", "212345678901234567[\"a\"]"] {
            assert_eq!(decode(too_large), Err(SioError::AckIdTooLarge));
        }
        // A number is a valid event name; a CONNECT_ERROR may be a string.
        assert!(decode("2[1]").is_ok());
        assert!(decode("4\"nope\"").is_ok());
    }

    #[test]
    fn binary_reassembly() {
        let mut d = Decoder::new(SioLimits::default());
        let text =
            "52-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
        assert_eq!(d.handle_text(text), Ok(None));
        assert!(d.is_reassembling());
        assert_eq!(d.handle_binary(&[1, 2, 3]), Ok(None));
        let m = d.handle_binary(&[4, 5, 6]).unwrap().unwrap();
        assert!(!d.is_reassembling());
        assert_eq!(m.attachments, vec![vec![1, 2, 3], vec![4, 5, 6]]);
        assert_eq!(
            m.packet.event().map(|(n, a)| (n, a.len())),
            Some(("message", 2))
        );
        // And back: the same text, then the same attachments.
        let (out, atts) = m.encode();
        assert_eq!(out, text.as_bytes());
        assert_eq!(atts, &m.attachments[..]);
    }

    #[test]
    fn reassembly_refusals() {
        let mut d = Decoder::new(SioLimits::default());
        assert_eq!(d.handle_binary(&[1]), Err(SioError::UnexpectedBinary));
        assert_eq!(
            d.handle_text("51-[\"a\",{\"_placeholder\":true,\"num\":0}]"),
            Ok(None)
        );
        assert_eq!(
            d.handle_text("2[\"a\"]"),
            Err(SioError::TextDuringReassembly)
        );

        let mut d = Decoder::new(SioLimits::default());
        assert_eq!(
            d.handle_text("51-[\"a\",{\"_placeholder\":true,\"num\":1}]"),
            Ok(None)
        );
        assert_eq!(d.handle_binary(&[1]), Err(SioError::InvalidPlaceholder));
        // In a plain EVENT it is data (socket.io-parser passes it on).
        let mut d = Decoder::new(SioLimits::default());
        assert!(d
            .handle_text("2[\"a\",{\"_placeholder\":true,\"num\":0}]")
            .unwrap()
            .is_some());
        // Zero attachments: the packet is complete at once.
        let mut d = Decoder::new(SioLimits::default());
        assert!(d.handle_text("50-[\"a\"]").unwrap().is_some());
    }

    #[test]
    fn numbers_as_javascript_writes_them() {
        for (n, want) in [
            (1.0, "1"),
            (-0.0, "0"),
            (0.5, "0.5"),
            (123456789.0, "123456789"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (f64::INFINITY, "null"),
        ] {
            let mut out = Vec::new();
            write_value(&mut out, &Value::from(n));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        let v = json::parse(r#"{"3":[true,null,"x\n"],"a":{}}"#).unwrap();
        assert_eq!(to_json(&v), r#"{"3":[true,null,"x\n"],"a":{}}"#);
    }
}

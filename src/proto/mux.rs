//! The `/ws` command codec: one WebSocket, many topics (DESIGN.md "One
//! connection, many topics").
//!
//! Before working on this file, read that section of DESIGN.md, then
//! `wire/json.rs` (the reader this builds on) and `hub/id.rs` (cursors).
//!
//! A client of `GET /ws` sends one JSON object per text frame:
//!
//! ```text
//! {"type":"subscribe","topic":"A","after":"ID"}
//! {"type":"unsubscribe","topic":"A"}
//! {"type":"publish","topic":"A","event":"E","data":…}
//! ```
//!
//! each with an optional `"ref"`, and the server answers each one:
//!
//! ```text
//! {"type":"ack","ref":R,"id":"…"}                      publish
//! {"type":"ack","ref":R,"topic":"A","last_id":"…"}     subscribe
//! {"type":"ack","ref":R,"topic":"A"}                   unsubscribe
//! {"type":"error","ref":R,"status":403,"message":"…"}  any refusal
//! ```
//!
//! (Messages and gaps, `{"topic","id","event","data"}` and
//! `{"gap":true,"topic","requested","oldest"}`, are written by the hub.)
//!
//! Decisions, each a place where the DESIGN leaves a choice:
//! - `ref` is a JSON string or number, kept as the text the client wrote
//!   and echoed byte for byte, so `1.0` stays `1.0` and a 20-digit number
//!   is not rounded through an `f64`. Anything else (`null`, a bool, an
//!   array, an object) is refused: a correlation key has no use for
//!   structure, and echoing one unchecked would let a client make the
//!   server write arbitrary JSON into its own replies. A reply to a
//!   command without `ref` has no `"ref"` member.
//! - `data` that is a JSON string is text; any other JSON value (`null`
//!   included) is a JSON payload, kept as the bytes written.
//! - Members other than the ones a command takes are refused: a misspelt
//!   `"aftr"` would otherwise subscribe live and silently miss the history
//!   the client asked for.
//! - Every refusal of a command's *form* is 400, an unknown `type`
//!   included: there is no resource to be missing (404) and nothing
//!   partly implemented (501), only a frame that is not one of ours. A
//!   frame or payload over its size limit is 413. Refusals of a
//!   well-formed command (403 not allowed, 503 too many topics) are the
//!   node's, written with [`MuxReply::Error`] all the same.
//! - An error keeps the command's `ref` whenever the `ref` itself was
//!   readable, so a client can tell which command failed.

use std::borrow::Cow;

use thiserror::Error;

use crate::hub::{parse_cursor, valid_event, valid_topic, Cursor, CursorError};
use crate::wire::json::{self, JsonError, JsonLimits};

/// Room for the members around a publish's `data` (`type`, `topic`,
/// `event`, `ref` and the punctuation), on top of the largest message.
pub const ENVELOPE_BYTES: usize = 4096;

/// What a command frame may hold. Each limit refuses the whole command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MuxLimits {
    /// The JSON reader's limits for a whole frame. A frame over
    /// `json.max_bytes`: [`MuxErrorKind::NotJson`] with status 413; deeper
    /// than `json.max_depth`: 400.
    pub json: JsonLimits,
    /// Longest `ref`, as written. Longer: [`MuxErrorKind::RefTooLong`]
    /// (400). It is echoed in every reply, so it is kept short.
    pub max_ref_bytes: usize,
    /// Largest publish `data` (text as decoded, JSON as written). Larger:
    /// [`MuxErrorKind::DataTooLarge`] (413), as an HTTP publish is.
    pub max_data_bytes: usize,
}

impl MuxLimits {
    pub fn from_config(c: &crate::Config) -> MuxLimits {
        let frame = c.max_message_bytes.saturating_add(ENVELOPE_BYTES);
        MuxLimits {
            json: JsonLimits {
                max_depth: json::MAX_DEPTH,
                max_bytes: frame,
                max_string_bytes: frame,
            },
            max_ref_bytes: 256,
            max_data_bytes: c.max_message_bytes,
        }
    }
}

impl Default for MuxLimits {
    fn default() -> Self {
        MuxLimits::from_config(&crate::Config::default())
    }
}

/// A command's `ref`: a JSON string or number, as the client wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MuxRef(Box<str>);

impl MuxRef {
    /// A string ref (for clients), written as a JSON string literal.
    pub fn string(s: &str) -> MuxRef {
        let mut out = Vec::new();
        json::write_str(&mut out, s);
        // The writer copies a `str` and adds ASCII: always UTF-8.
        MuxRef(String::from_utf8_lossy(&out).into())
    }

    /// A number ref (for clients).
    pub fn number(n: u64) -> MuxRef {
        MuxRef(n.to_string().into())
    }

    /// Reads a ref from its JSON text, which must be one string or one
    /// number and nothing else, within `max_bytes`.
    pub fn from_json(raw: &str, max_bytes: usize) -> Result<MuxRef, MuxErrorKind> {
        if raw.len() > max_bytes {
            return Err(MuxErrorKind::RefTooLong);
        }
        let limits = JsonLimits {
            max_depth: 0,
            max_bytes,
            max_string_bytes: max_bytes,
        };
        match json::parse_with(raw, &limits) {
            Ok(json::Value::String(_) | json::Value::Number(_)) if raw.trim() == raw => {
                Ok(MuxRef(raw.into()))
            }
            _ => Err(MuxErrorKind::InvalidRef),
        }
    }

    /// The JSON text, to be written as it is.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// The payload of a publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxData<'a> {
    /// `data` was a JSON string: this text.
    Text(Cow<'a, str>),
    /// `data` was any other JSON value: its text exactly as written
    /// (validated), to be embedded as that value.
    Json(&'a str),
}

impl MuxData<'_> {
    /// The payload's size as [`MuxLimits::max_data_bytes`] counts it.
    pub fn len(&self) -> usize {
        match self {
            MuxData::Text(t) => t.len(),
            MuxData::Json(j) => j.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxOp<'a> {
    /// `{"type":"subscribe","topic":"A","after":"ID"}`; without `after`
    /// the topic starts live, as a single-topic WebSocket does.
    Subscribe { topic: Cow<'a, str>, after: Cursor },
    /// `{"type":"unsubscribe","topic":"A"}`.
    Unsubscribe { topic: Cow<'a, str> },
    /// `{"type":"publish","topic":"A","event":"E","data":…}`; without
    /// `event` the message is the event `message`.
    Publish {
        topic: Cow<'a, str>,
        event: Option<Cow<'a, str>>,
        data: MuxData<'a>,
    },
}

/// One client command: what it asks, and the `ref` to answer it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MuxCommand<'a> {
    pub reference: Option<MuxRef>,
    pub op: MuxOp<'a>,
}

/// Why a command was refused, with the `ref` to echo if it was readable.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct MuxError {
    pub reference: Option<MuxRef>,
    pub kind: MuxErrorKind,
}

impl MuxError {
    /// The status of the `error` reply.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The `error` reply to send for this refusal.
    pub fn reply(&self) -> MuxReply<'static> {
        MuxReply::Error {
            reference: self.reference.clone(),
            status: self.status(),
            message: Cow::Owned(self.kind.to_string()),
        }
    }
}

/// The rule a command broke.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum MuxErrorKind {
    /// RFC 8259: the frame is not one JSON text (413 if over the size
    /// limit, else 400).
    #[error("not JSON: {0}")]
    NotJson(JsonError),
    /// A command is a JSON object.
    #[error("a command is a JSON object")]
    NotAnObject,
    /// Every command has a `"type"`.
    #[error("missing \"type\"")]
    MissingType,
    /// `"type"` is none of `subscribe`, `unsubscribe`, `publish`.
    #[error("unknown command type")]
    UnknownType,
    /// A member the command needs is absent.
    #[error("missing \"{0}\"")]
    MissingField(&'static str),
    /// A member has the wrong JSON type (`type`, `topic`, `event`, `after`
    /// are strings).
    #[error("\"{0}\" must be a string")]
    NotAString(&'static str),
    /// A member this command does not take.
    #[error("unknown member for this command type")]
    UnknownField,
    /// `ref` is neither a string nor a number.
    #[error("\"ref\" must be a string or a number")]
    InvalidRef,
    /// `ref` is longer than [`MuxLimits::max_ref_bytes`].
    #[error("\"ref\" too long")]
    RefTooLong,
    /// DESIGN.md: a topic is 1–128 bytes of `[A-Za-z0-9._:-]`.
    #[error("invalid topic name (1-128 bytes of A-Z a-z 0-9 . _ : -)")]
    InvalidTopic,
    /// DESIGN.md: an event name is 1–64 bytes of the same set.
    #[error("invalid event name (1-64 bytes of A-Z a-z 0-9 . _ : -)")]
    InvalidEvent,
    /// `after` is not a cursor.
    #[error("invalid \"after\": {0}")]
    InvalidCursor(CursorError),
    /// `data` is larger than [`MuxLimits::max_data_bytes`].
    #[error("data of {size} bytes is over the limit of {limit}")]
    DataTooLarge { size: usize, limit: usize },
}

impl MuxErrorKind {
    /// The status of the `error` reply: 413 for sizes, else 400.
    pub fn status(&self) -> u16 {
        match self {
            MuxErrorKind::NotJson(e) => e.status(),
            MuxErrorKind::DataTooLarge { .. } => 413,
            _ => 400,
        }
    }
}

/// The members of one command, found by name.
#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    topic: Option<&'a str>,
    after: Option<&'a str>,
    event: Option<&'a str>,
    data: Option<&'a str>,
    reference: Option<&'a str>,
    unknown: bool,
}

impl<'a> MuxCommand<'a> {
    /// Reads one text frame's payload as a command.
    pub fn parse(frame: &'a [u8], limits: &MuxLimits) -> Result<MuxCommand<'a>, MuxError> {
        let bare = |kind| MuxError {
            reference: None,
            kind,
        };
        let text = object_text(frame, &limits.json).map_err(bare)?;
        let members =
            json::members(text, &limits.json).map_err(|e| bare(MuxErrorKind::NotJson(e)))?;
        let mut f = Fields::default();
        for (name, raw) in &members {
            let slot = match &**name {
                "type" => &mut f.kind,
                "topic" => &mut f.topic,
                "after" => &mut f.after,
                "event" => &mut f.event,
                "data" => &mut f.data,
                "ref" => &mut f.reference,
                _ => {
                    f.unknown = true;
                    continue;
                }
            };
            *slot = Some(*raw);
        }
        let reference = f
            .reference
            .map(|raw| MuxRef::from_json(raw, limits.max_ref_bytes))
            .transpose()
            .map_err(bare)?;
        let op = op(&f, limits).map_err(|kind| MuxError {
            reference: reference.clone(),
            kind,
        })?;
        Ok(MuxCommand { reference, op })
    }

    /// Appends the command as a client sends it: `type`, `topic`, then the
    /// command's own members, then `ref`. [`MuxCommand::parse`] reads it
    /// back as an equal command.
    pub fn write(&self, out: &mut Vec<u8>) {
        let topic = match &self.op {
            MuxOp::Subscribe { topic, .. } => {
                out.extend_from_slice(br#"{"type":"subscribe","topic":"#);
                topic
            }
            MuxOp::Unsubscribe { topic } => {
                out.extend_from_slice(br#"{"type":"unsubscribe","topic":"#);
                topic
            }
            MuxOp::Publish { topic, .. } => {
                out.extend_from_slice(br#"{"type":"publish","topic":"#);
                topic
            }
        };
        json::write_str(out, topic);
        match &self.op {
            MuxOp::Subscribe { after, .. } => match after {
                Cursor::Live => {}
                Cursor::Earliest => out.extend_from_slice(br#","after":"earliest""#),
                Cursor::After(id) => {
                    out.extend_from_slice(br#","after":"#);
                    json::write_str(out, &id.to_string());
                }
            },
            MuxOp::Unsubscribe { .. } => {}
            MuxOp::Publish { event, data, .. } => {
                if let Some(event) = event {
                    out.extend_from_slice(br#","event":"#);
                    json::write_str(out, event);
                }
                out.extend_from_slice(br#","data":"#);
                match data {
                    MuxData::Text(t) => json::write_str(out, t),
                    MuxData::Json(j) => out.extend_from_slice(j.as_bytes()),
                }
            }
        }
        write_ref(out, self.reference.as_ref());
        out.push(b'}');
    }

    /// The topic the command is about.
    pub fn topic(&self) -> &str {
        match &self.op {
            MuxOp::Subscribe { topic, .. }
            | MuxOp::Unsubscribe { topic }
            | MuxOp::Publish { topic, .. } => topic,
        }
    }
}

/// The frame as text, if it may be a JSON object; otherwise why not. A
/// text frame is UTF-8 already (RFC 6455 §8.1), but this codec does not
/// rely on its caller for that. An object is checked once, by
/// [`json::members`]; only a frame that is not one is validated, to tell
/// "not JSON" from "JSON, but not an object".
fn object_text<'a>(frame: &'a [u8], limits: &JsonLimits) -> Result<&'a str, MuxErrorKind> {
    let not_an_object = || match json::validate(frame, limits) {
        Err(e) => MuxErrorKind::NotJson(e),
        Ok(()) => MuxErrorKind::NotAnObject,
    };
    let text = std::str::from_utf8(frame).map_err(|_| not_an_object())?;
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(not_an_object());
    }
    Ok(text)
}

/// The command's meaning, from its members.
fn op<'a>(f: &Fields<'a>, limits: &MuxLimits) -> Result<MuxOp<'a>, MuxErrorKind> {
    let kind = string(f.kind, "type")?.ok_or(MuxErrorKind::MissingType)?;
    let allowed = match &*kind {
        "subscribe" => f.event.is_none() && f.data.is_none(),
        "unsubscribe" => f.after.is_none() && f.event.is_none() && f.data.is_none(),
        "publish" => f.after.is_none(),
        _ => return Err(MuxErrorKind::UnknownType),
    };
    if f.unknown || !allowed {
        return Err(MuxErrorKind::UnknownField);
    }
    let topic = string(f.topic, "topic")?.ok_or(MuxErrorKind::MissingField("topic"))?;
    if !valid_topic(&topic) {
        return Err(MuxErrorKind::InvalidTopic);
    }
    Ok(match &*kind {
        "subscribe" => {
            let after = string(f.after, "after")?;
            let after = parse_cursor(after.as_deref()).map_err(MuxErrorKind::InvalidCursor)?;
            MuxOp::Subscribe { topic, after }
        }
        "unsubscribe" => MuxOp::Unsubscribe { topic },
        _ => {
            let event = string(f.event, "event")?;
            if event.as_deref().is_some_and(|e| !valid_event(e)) {
                return Err(MuxErrorKind::InvalidEvent);
            }
            let raw = f.data.ok_or(MuxErrorKind::MissingField("data"))?;
            let data = match json::decode_string(raw, &JsonLimits::caller_bounded()) {
                Some(text) => MuxData::Text(text),
                None => MuxData::Json(raw),
            };
            if data.len() > limits.max_data_bytes {
                return Err(MuxErrorKind::DataTooLarge {
                    size: data.len(),
                    limit: limits.max_data_bytes,
                });
            }
            MuxOp::Publish { topic, event, data }
        }
    })
}

/// A member that must be a string when present, decoded.
fn string<'a>(
    raw: Option<&'a str>,
    name: &'static str,
) -> Result<Option<Cow<'a, str>>, MuxErrorKind> {
    match raw {
        None => Ok(None),
        // Already validated by the reader: within its limits.
        Some(raw) => json::decode_string(raw, &JsonLimits::caller_bounded())
            .map(Some)
            .ok_or(MuxErrorKind::NotAString(name)),
    }
}

/// `,"ref":R` when there is one.
fn write_ref(out: &mut Vec<u8>, reference: Option<&MuxRef>) {
    if let Some(r) = reference {
        out.extend_from_slice(br#","ref":"#);
        out.extend_from_slice(r.as_json().as_bytes());
    }
}

/// The server's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MuxReply<'a> {
    /// `{"type":"ack","ref":R,"id":"…"}`: the publish got this id.
    Published {
        reference: Option<MuxRef>,
        id: Cow<'a, str>,
    },
    /// `{"type":"ack","ref":R,"topic":"A","last_id":"…"}`: subscribed;
    /// `last_id` is the topic's cursor once the replay is sent (its newest
    /// id, or `<epoch>-0`).
    Subscribed {
        reference: Option<MuxRef>,
        topic: Cow<'a, str>,
        last_id: Cow<'a, str>,
    },
    /// `{"type":"ack","ref":R,"topic":"A"}`: unsubscribed.
    Unsubscribed {
        reference: Option<MuxRef>,
        topic: Cow<'a, str>,
    },
    /// `{"type":"error","ref":R,"status":403,"message":"…"}`: refused,
    /// with the HTTP status a request would have got.
    Error {
        reference: Option<MuxRef>,
        status: u16,
        message: Cow<'a, str>,
    },
}

impl<'a> MuxReply<'a> {
    /// Appends the reply as one JSON object (a text frame's payload).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            MuxReply::Published { reference, id } => {
                out.extend_from_slice(br#"{"type":"ack""#);
                write_ref(out, reference.as_ref());
                out.extend_from_slice(br#","id":"#);
                json::write_str(out, id);
            }
            MuxReply::Subscribed {
                reference,
                topic,
                last_id,
            } => {
                out.extend_from_slice(br#"{"type":"ack""#);
                write_ref(out, reference.as_ref());
                out.extend_from_slice(br#","topic":"#);
                json::write_str(out, topic);
                out.extend_from_slice(br#","last_id":"#);
                json::write_str(out, last_id);
            }
            MuxReply::Unsubscribed { reference, topic } => {
                out.extend_from_slice(br#"{"type":"ack""#);
                write_ref(out, reference.as_ref());
                out.extend_from_slice(br#","topic":"#);
                json::write_str(out, topic);
            }
            MuxReply::Error {
                reference,
                status,
                message,
            } => {
                out.extend_from_slice(br#"{"type":"error""#);
                write_ref(out, reference.as_ref());
                out.extend_from_slice(br#","status":"#);
                out.extend_from_slice(status.to_string().as_bytes());
                out.extend_from_slice(br#","message":"#);
                json::write_str(out, message);
            }
        }
        out.push(b'}');
    }

    /// Reads a reply (the client's side, and the round trip's). An `ack`
    /// with `id` is a publish's, with `last_id` a subscribe's, with only
    /// `topic` an unsubscribe's. Returns `None` for anything else — a
    /// message or gap frame, or a malformed reply.
    pub fn parse(text: &'a str) -> Option<MuxReply<'a>> {
        let limits = JsonLimits::caller_bounded();
        let members = json::members(text, &limits).ok()?;
        let get = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, raw)| *raw);
        let str_of = |name: &str| get(name).and_then(|raw| json::decode_string(raw, &limits));
        let reference = match get("ref") {
            Some(raw) => Some(MuxRef::from_json(raw, usize::MAX).ok()?),
            None => None,
        };
        let known = |names: &[&str]| {
            members
                .iter()
                .all(|(n, _)| n == "type" || n == "ref" || names.contains(&&**n))
        };
        match &*str_of("type")? {
            "ack" if get("id").is_some() && known(&["id"]) => Some(MuxReply::Published {
                reference,
                id: str_of("id")?,
            }),
            "ack" if get("last_id").is_some() && known(&["topic", "last_id"]) => {
                Some(MuxReply::Subscribed {
                    reference,
                    topic: str_of("topic")?,
                    last_id: str_of("last_id")?,
                })
            }
            "ack" if known(&["topic"]) => Some(MuxReply::Unsubscribed {
                reference,
                topic: str_of("topic")?,
            }),
            "error" if known(&["status", "message"]) => {
                let status = get("status")?;
                Some(MuxReply::Error {
                    reference,
                    status: status
                        .parse()
                        .ok()
                        .filter(|s: &u16| s.to_string() == status)?,
                    message: str_of("message")?,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::MessageId;
    use crate::wire::json::Rule;

    fn parse(text: &str) -> Result<MuxCommand<'_>, MuxError> {
        MuxCommand::parse(text.as_bytes(), &MuxLimits::default())
    }

    fn kind(text: &str) -> MuxErrorKind {
        parse(text).unwrap_err().kind
    }

    fn written(c: &MuxCommand<'_>) -> String {
        let mut out = Vec::new();
        c.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn reply(r: &MuxReply<'_>) -> String {
        let mut out = Vec::new();
        r.write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn design_commands_both_ways() {
        let text = r#"{"type":"subscribe","topic":"A","after":"17-4"}"#;
        let c = parse(text).unwrap();
        assert_eq!(
            c,
            MuxCommand {
                reference: None,
                op: MuxOp::Subscribe {
                    topic: "A".into(),
                    after: Cursor::After(MessageId { epoch: 17, seq: 4 }),
                },
            }
        );
        assert_eq!(written(&c), text);

        let text = r#"{"type":"unsubscribe","topic":"A"}"#;
        let c = parse(text).unwrap();
        assert_eq!(c.op, MuxOp::Unsubscribe { topic: "A".into() });
        assert_eq!(written(&c), text);

        let text = r#"{"type":"publish","topic":"A","event":"E","data":"hi"}"#;
        let c = parse(text).unwrap();
        assert_eq!(
            c.op,
            MuxOp::Publish {
                topic: "A".into(),
                event: Some("E".into()),
                data: MuxData::Text("hi".into()),
            }
        );
        assert_eq!(written(&c), text);
        assert_eq!(c.topic(), "A");
    }

    #[test]
    fn data_that_is_not_a_string_is_json_kept_as_written() {
        let c = parse(r#"{"type":"publish","topic":"A","data": {"a": [1, 2.50]} }"#).unwrap();
        let MuxOp::Publish { data, event, .. } = &c.op else {
            panic!("{c:?}")
        };
        assert_eq!(*data, MuxData::Json(r#"{"a": [1, 2.50]}"#));
        assert_eq!(*event, None);
        assert_eq!(
            written(&c),
            r#"{"type":"publish","topic":"A","data":{"a": [1, 2.50]}}"#
        );
        for (raw, json) in [("null", true), ("7", true), ("[]", true), ("\"{}\"", false)] {
            let text = format!(r#"{{"type":"publish","topic":"A","data":{raw}}}"#);
            let c = parse(&text).unwrap();
            let MuxOp::Publish { data, .. } = c.op else {
                panic!()
            };
            assert_eq!(matches!(data, MuxData::Json(_)), json, "{raw}");
        }
        // A string is text, escapes decoded.
        let c = parse(r#"{"type":"publish","topic":"A","data":"a\nb"}"#).unwrap();
        let MuxOp::Publish { data, .. } = c.op else {
            panic!()
        };
        assert_eq!(data, MuxData::Text("a\nb".into()));
    }

    #[test]
    fn refs_are_echoed_verbatim() {
        for raw in [
            r#""abc""#,
            r#""a\u0041""#,
            "7",
            "1.0",
            "-3e2",
            "123456789012345678901234",
        ] {
            let text = format!(r#"{{"type":"unsubscribe","topic":"A","ref":{raw}}}"#);
            let c = parse(&text).unwrap();
            assert_eq!(c.reference.as_ref().unwrap().as_json(), raw);
            assert_eq!(written(&c), text);
            let ack = MuxReply::Published {
                reference: c.reference.clone(),
                id: "1-1".into(),
            };
            assert_eq!(
                reply(&ack),
                format!(r#"{{"type":"ack","ref":{raw},"id":"1-1"}}"#)
            );
        }
        for raw in ["null", "true", "[1]", r#"{"a":1}"#] {
            let text = format!(r#"{{"type":"unsubscribe","topic":"A","ref":{raw}}}"#);
            let e = parse(&text).unwrap_err();
            assert_eq!(
                (e.kind, e.reference),
                (MuxErrorKind::InvalidRef, None),
                "{raw}"
            );
        }
        let long = format!(
            r#"{{"type":"unsubscribe","topic":"A","ref":"{}"}}"#,
            "x".repeat(300)
        );
        assert_eq!(kind(&long), MuxErrorKind::RefTooLong);
        assert_eq!(MuxRef::string("a\"b").as_json(), r#""a\"b""#);
        assert_eq!(MuxRef::number(42).as_json(), "42");
    }

    #[test]
    fn an_error_keeps_the_ref() {
        let e = parse(r#"{"type":"subscribe","topic":"a/b","ref":"r1"}"#).unwrap_err();
        assert_eq!(e.kind, MuxErrorKind::InvalidTopic);
        assert_eq!(e.status(), 400);
        assert_eq!(
            reply(&e.reply()),
            r#"{"type":"error","ref":"r1","status":400,"message":"invalid topic name (1-128 bytes of A-Z a-z 0-9 . _ : -)"}"#
        );
    }

    #[test]
    fn refusals() {
        use MuxErrorKind::*;
        let cases: &[(&str, MuxErrorKind, u16)] = &[
            ("[1]", NotAnObject, 400),
            ("\"subscribe\"", NotAnObject, 400),
            ("{}", MissingType, 400),
            (r#"{"type":1,"topic":"A"}"#, NotAString("type"), 400),
            (r#"{"type":"nope","topic":"A"}"#, UnknownType, 400),
            (r#"{"type":"subscribe"}"#, MissingField("topic"), 400),
            (
                r#"{"type":"subscribe","topic":7}"#,
                NotAString("topic"),
                400,
            ),
            (r#"{"type":"subscribe","topic":""}"#, InvalidTopic, 400),
            (
                r#"{"type":"subscribe","topic":"A","aftr":"1-1"}"#,
                UnknownField,
                400,
            ),
            (
                r#"{"type":"subscribe","topic":"A","data":1}"#,
                UnknownField,
                400,
            ),
            (
                r#"{"type":"unsubscribe","topic":"A","after":"1-1"}"#,
                UnknownField,
                400,
            ),
            (
                r#"{"type":"publish","topic":"A","after":"1-1","data":1}"#,
                UnknownField,
                400,
            ),
            (
                r#"{"type":"subscribe","topic":"A","after":5}"#,
                NotAString("after"),
                400,
            ),
            (
                r#"{"type":"subscribe","topic":"A","after":"5"}"#,
                InvalidCursor(CursorError::MissingDash),
                400,
            ),
            (
                r#"{"type":"publish","topic":"A"}"#,
                MissingField("data"),
                400,
            ),
            (
                r#"{"type":"publish","topic":"A","event":"a b","data":1}"#,
                InvalidEvent,
                400,
            ),
            (
                r#"{"type":"publish","topic":"A","event":null,"data":1}"#,
                NotAString("event"),
                400,
            ),
        ];
        for (text, expected, status) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(&e.kind, expected, "{text}");
            assert_eq!(e.status(), *status, "{text}");
        }
        // Not JSON at all, or JSON the strict reader refuses.
        for text in [
            "",
            "{",
            "{\"type\":\"subscribe\",}",
            r#"{"type":"a","type":"b"}"#,
        ] {
            assert!(matches!(kind(text), NotJson(_)), "{text}");
        }
        assert!(matches!(
            MuxCommand::parse(b"{\"type\":\"\xff\"}", &MuxLimits::default())
                .unwrap_err()
                .kind,
            NotJson(JsonError {
                rule: Rule::InvalidUtf8,
                ..
            })
        ));
    }

    #[test]
    fn sizes() {
        let limits = MuxLimits {
            json: JsonLimits {
                max_bytes: 80,
                ..JsonLimits::default()
            },
            max_ref_bytes: 8,
            max_data_bytes: 4,
        };
        let p = |t: &str| MuxCommand::parse(t.as_bytes(), &limits).map(|_| ());
        assert!(p(r#"{"type":"publish","topic":"A","data":"abcd"}"#).is_ok());
        let e = p(r#"{"type":"publish","topic":"A","data":"abcde","ref":1}"#).unwrap_err();
        assert_eq!(e.kind, MuxErrorKind::DataTooLarge { size: 5, limit: 4 });
        assert_eq!((e.status(), e.reference), (413, Some(MuxRef::number(1))));
        let e = p(r#"{"type":"publish","topic":"A","data":[1,2,3]}"#).unwrap_err();
        assert_eq!(e.kind, MuxErrorKind::DataTooLarge { size: 7, limit: 4 });
        assert_eq!(e.status(), 413);
        let big = format!(
            r#"{{"type":"publish","topic":"A","data":"{}"}}"#,
            "x".repeat(80)
        );
        assert_eq!(p(&big).unwrap_err().status(), 413);
        assert_eq!(MuxLimits::default().max_data_bytes, 1024 * 1024);
    }

    #[test]
    fn replies_both_ways() {
        let r = Some(MuxRef::string("s1"));
        let cases = [
            (
                MuxReply::Published {
                    reference: r.clone(),
                    id: "1796160691510066-5".into(),
                },
                r#"{"type":"ack","ref":"s1","id":"1796160691510066-5"}"#,
            ),
            (
                MuxReply::Subscribed {
                    reference: r.clone(),
                    topic: "news".into(),
                    last_id: "17-0".into(),
                },
                r#"{"type":"ack","ref":"s1","topic":"news","last_id":"17-0"}"#,
            ),
            (
                MuxReply::Unsubscribed {
                    reference: None,
                    topic: "news".into(),
                },
                r#"{"type":"ack","topic":"news"}"#,
            ),
            (
                MuxReply::Error {
                    reference: Some(MuxRef::number(3)),
                    status: 403,
                    message: "not allowed to publish to \"news\"".into(),
                },
                r#"{"type":"error","ref":3,"status":403,"message":"not allowed to publish to \"news\""}"#,
            ),
        ];
        for (value, text) in cases {
            assert_eq!(reply(&value), text);
            assert_eq!(MuxReply::parse(text), Some(value));
        }
        // Message and gap frames are not replies.
        assert_eq!(
            MuxReply::parse(r#"{"topic":"a","id":"1-1","event":"message","data":"x"}"#),
            None
        );
        assert_eq!(
            MuxReply::parse(r#"{"gap":true,"topic":"a","requested":"1-1","oldest":""}"#),
            None
        );
    }
}

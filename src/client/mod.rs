//! Small blocking clients for every transport pushwire speaks — for
//! scripts, tests and the examples, and as a readable account of what a
//! client of each transport has to do.
//!
//! | transport | client | requests it makes |
//! |---|---|---|
//! | publish (`POST /topics/{t}`) | [`HttpClient::post`] | one per message |
//! | short poll (`/messages?after=`) | [`HttpClient::messages`] | one per interval |
//! | long poll (`/poll?after=&timeout=`) | [`HttpClient::poll`] | one per answer |
//! | Server-Sent Events (`/sse`) | [`SseClient`] | one per stream |
//! | HTTP streaming (`/stream?after=`) | [`StreamClient`] | one per stream (and per resume) |
//! | WebSocket (`/ws?after=`) | [`WsClient`] | one handshake |
//!
//! Every client counts what it costs on the wire ([`Stats`]: requests,
//! connections, bytes both ways), which is what
//! `examples/transport_compare.rs` reports.
//!
//! They use `std::net` blocking sockets and the crate's own codecs
//! ([`crate::wire::chunked`], [`crate::wire::sse`],
//! [`crate::wire::ws_frame`]); the JSON the server sends is read with the
//! small strict parser in [`json`]. Only `http://` is spoken: no TLS, no
//! proxies, no redirects, no compression.

pub mod json;

mod conn;
mod http;
mod sse;
mod stream;
mod ws;

use std::io;

pub use self::conn::{Framing, ResponseHead};
pub use self::http::{HttpClient, Response};
pub use self::sse::SseClient;
pub use self::stream::{NdjsonReader, StreamClient, StreamItem, DEFAULT_MAX_LINE};
pub use self::ws::{random_bytes, WsClient, WsMessage};
pub use crate::wire::sse::SseEvent;

/// What a client has cost on the wire so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent (a WebSocket handshake is one; a request sent
    /// again on a fresh connection, see [`HttpClient::request`], is two).
    pub requests: u64,
    /// TCP connections opened.
    pub connections: u64,
    /// Bytes written to the sockets: requests, bodies, frames.
    pub bytes_sent: u64,
    /// Bytes read from the sockets: heads, bodies, chunk framing, frames.
    pub bytes_received: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.requests += o.requests;
        self.connections += o.connections;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection where a response or frame was
    /// expected (or, for a WebSocket, after the close handshake).
    #[error("connection closed by the server")]
    Closed,
    /// The server answered with a status this call does not expect.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The server's bytes break a rule of HTTP, SSE or WebSocket.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A body was not the JSON this call expects.
    #[error("JSON: {0}")]
    Json(String),
}

impl From<json::JsonError> for ClientError {
    fn from(e: json::JsonError) -> Self {
        ClientError::Json(e.to_string())
    }
}

impl ClientError {
    /// A read timeout (set with `set_read_timeout`) expired: nothing is
    /// lost, the call can be repeated.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Io(e)
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

/// One message as the polls and the WebSocket describe it:
/// `{"id":"…","event":"…","data":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMessage {
    pub id: String,
    /// `message` for a message published without an event name.
    pub event: String,
    pub data: String,
}

impl ClientMessage {
    fn from_value(v: &json::Value) -> Result<ClientMessage, ClientError> {
        Ok(ClientMessage {
            id: string_field(v, "id")?,
            event: string_field(v, "event")?,
            data: string_field(v, "data")?,
        })
    }
}

/// A poll or short-poll answer:
/// `{"messages":[…],"last_id":"…","timeout":false,"gap":false}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub messages: Vec<ClientMessage>,
    /// The cursor for the next request.
    pub last_id: String,
    /// The long poll expired with nothing new.
    pub timeout: bool,
    /// Some messages after the cursor can no longer be delivered.
    pub gap: bool,
}

impl Batch {
    /// Reads a poll response body.
    pub fn from_json(text: &str) -> Result<Batch, ClientError> {
        let v = json::parse(text)?;
        let messages = v
            .get("messages")
            .and_then(json::Value::as_array)
            .ok_or_else(|| missing("messages"))?
            .iter()
            .map(ClientMessage::from_value)
            .collect::<Result<_, _>>()?;
        Ok(Batch {
            messages,
            last_id: string_field(&v, "last_id")?,
            timeout: bool_field(&v, "timeout")?,
            gap: bool_field(&v, "gap")?,
        })
    }
}

/// What one WebSocket text frame from a topic carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Message(ClientMessage),
    /// `{"gap":true,"requested":"…","oldest":"…"}`: messages after the
    /// requested cursor were lost; the replay starts at `oldest`.
    Gap {
        requested: String,
        oldest: String,
    },
}

impl Delivery {
    /// Reads a topic's WebSocket text frame.
    pub fn from_json(text: &str) -> Result<Delivery, ClientError> {
        let v = json::parse(text)?;
        if v.get("gap").and_then(json::Value::as_bool) == Some(true) {
            return Ok(Delivery::Gap {
                requested: string_field(&v, "requested")?,
                oldest: string_field(&v, "oldest")?,
            });
        }
        ClientMessage::from_value(&v).map(Delivery::Message)
    }
}

fn missing(key: &str) -> ClientError {
    ClientError::Json(format!("no {key:?} of the expected type"))
}

fn string_field(v: &json::Value, key: &str) -> Result<String, ClientError> {
    v.get(key)
        .and_then(json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| missing(key))
}

fn bool_field(v: &json::Value, key: &str) -> Result<bool, ClientError> {
    v.get(key)
        .and_then(json::Value::as_bool)
        .ok_or_else(|| missing(key))
}

#[cfg(test)]
mod tests;

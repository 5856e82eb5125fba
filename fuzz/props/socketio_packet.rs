//! Properties of the Socket.IO codec (`wire/socketio.rs`) and server
//! (`proto/socketio.rs`), on any stream of Engine.IO messages.
//!
//! 1. Round trip: a packet we accept, encoded, decodes to the same packet
//!    (numbers an `f64` would round, `1E400` among them, are written as
//!    they came), and its encoding is a fixed point.
//! 2. Reassembly round trip: the messages a decoder makes of the stream,
//!    encoded back into text and binary messages and decoded again, are
//!    the same messages.
//! 3. Whole vs split: the same stream sent to a server (the suite's echo
//!    namespace) one WebSocket message at a time, and all at once in one
//!    polling POST (binary as base64), gets the same packets back in the
//!    same order, and closes the connection in both cases or neither.
//!
//! Input: Engine.IO messages separated by 0xFF (never in UTF-8); one that
//! starts with 0x00 is binary (the rest), any other is the text of a
//! Socket.IO packet (lossily made UTF-8).
#![allow(dead_code)]

use std::time::Instant;

use pushwire::client::json::Value;
use pushwire::proto::engineio::{EioConfig, HttpAnswer, Sessions, Sid, Transmit};
use pushwire::proto::socketio::{Event, Namespace, SioConfig, SioServer, SocketCtx};
use pushwire::wire::engineio::{self, decode_payload, encode_payload, Data, PayloadLimits};
use pushwire::wire::socketio::{Decoder, Frame, Message, Packet, SioLimits};

/// More messages than this are cut (each may echo three packets, and the
/// polling session buffers at most 1000).
const MAX_FRAMES: usize = 200;

#[derive(Debug)]
enum In {
    Text(String),
    Binary(Vec<u8>),
}

fn frames(data: &[u8]) -> Vec<In> {
    data.split(|&b| b == 0xFF)
        .take(MAX_FRAMES)
        .map(|piece| match piece.split_first() {
            Some((0, rest)) => In::Binary(rest.to_vec()),
            // 0x1e separates polling packets: not part of a text here.
            _ => In::Text(String::from_utf8_lossy(piece).replace('\x1e', "\x1f")),
        })
        .collect()
}

pub fn check(data: &[u8]) {
    let input = frames(data);
    for f in &input {
        if let In::Text(t) = f {
            packet_round_trip(t);
        }
    }
    reassembly_round_trip(&input);
    whole_vs_split(&input);
}

fn packet_round_trip(text: &str) {
    let limits = SioLimits::default();
    let Ok(p) = Packet::decode(text, limits) else {
        return;
    };
    let encoded = p.to_text();
    assert_eq!(
        Packet::decode(&encoded, limits).as_ref(),
        Ok(&p),
        "{encoded}"
    );
    assert_eq!(Packet::decode(&encoded, limits).unwrap().to_text(), encoded);
}

fn decode_all(frames: &[In]) -> Vec<Message> {
    let mut d = Decoder::new(SioLimits::default());
    let mut out = Vec::new();
    for f in frames {
        let r = match f {
            In::Text(t) => d.handle(Frame::Text(t)),
            In::Binary(b) => d.handle(Frame::Binary(b)),
        };
        match r {
            Ok(Some(m)) => out.push(m),
            Ok(None) => {}
            Err(_) => break,
        }
    }
    out
}

fn reassembly_round_trip(input: &[In]) {
    let messages = decode_all(input);
    let mut again = Vec::new();
    for m in &messages {
        let (text, atts) = m.encode();
        again.push(In::Text(String::from_utf8(text).unwrap()));
        again.extend(atts.iter().map(|a| In::Binary(a.clone())));
    }
    let back = decode_all(&again);
    assert_eq!(back.len(), messages.len());
    for (a, b) in messages.iter().zip(&back) {
        assert_eq!(a.attachments, b.attachments);
        assert_eq!(a.packet.data, b.packet.data);
        assert_eq!(a.packet.id, b.packet.id);
        assert_eq!(a.packet.nsp, b.packet.nsp);
    }
}

/// The suite's namespace `/`: echo events, ack acks.
struct Echo;

impl Namespace for Echo {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        socket.emit("auth", vec![auth.clone()]);
        Ok(())
    }

    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>) {
        match event.ack {
            Some(id) => socket.ack(id, event.args.to_vec(), event.attachments.to_vec()),
            None => socket.emit_binary(
                "message-back",
                event.args.to_vec(),
                event.attachments.to_vec(),
            ),
        }
    }
}

fn server() -> SioServer {
    let counter = |mut n: u8| {
        Box::new(move || {
            n = n.wrapping_add(1);
            Ok(Sid::from_bytes([n; 20]))
        })
    };
    let config = SioConfig {
        eio: EioConfig::default(),
        ..SioConfig::default()
    };
    let eio = Sessions::with_sid_source(config.eio.clone(), counter(0));
    let mut s = SioServer::with_parts(config, eio, counter(100));
    s.register("/", Box::new(Echo));
    s.register("/custom", Box::new(Echo));
    s
}

fn eio_message(f: &In) -> engineio::Packet {
    match f {
        In::Text(t) => engineio::Packet::message(Data::Text(t.clone())),
        In::Binary(b) => engineio::Packet::message(Data::Binary(b.clone())),
    }
}

fn whole_vs_split(input: &[In]) {
    if input.is_empty() {
        return;
    }
    let now = Instant::now();

    // One WebSocket message at a time.
    let mut ws = server();
    let sid = ws
        .handle_ws_request("EIO=4&transport=websocket", now)
        .unwrap();
    let mut ws_out = Vec::new();
    let mut ws_closed = false;
    let drain = |ws: &mut SioServer, out: &mut Vec<engineio::Packet>, closed: &mut bool| {
        while let Some((s, t)) = ws.poll_transmit() {
            assert_eq!(s, sid);
            match t {
                Transmit::WsMessage { binary: true, data } => {
                    assert!(!*closed);
                    out.push(engineio::Packet::decode_binary(&data));
                }
                Transmit::WsMessage {
                    binary: false,
                    data,
                } => {
                    assert!(!*closed);
                    let text = std::str::from_utf8(&data).unwrap();
                    out.push(engineio::Packet::decode_text(text).unwrap());
                }
                Transmit::CloseWs(_) => *closed = true,
                Transmit::PollResponse(_) => panic!("no poll on a WebSocket session"),
            }
        }
    };
    drain(&mut ws, &mut ws_out, &mut ws_closed);
    ws_out.remove(0); // the open packet
    for f in input {
        if ws_closed {
            break;
        }
        let (binary, bytes) = eio_message(f).encode_ws();
        let _ = ws.handle_ws_message(sid, binary, &bytes, now);
        drain(&mut ws, &mut ws_out, &mut ws_closed);
    }

    // All at once, in one polling POST.
    let mut poll = server();
    let HttpAnswer::Opened { sid: poll_sid, .. } =
        poll.handle_http("GET", "EIO=4&transport=polling", b"", now)
    else {
        panic!("handshake");
    };
    assert_eq!(poll_sid, sid, "the same sid source");
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let packets: Vec<_> = input.iter().map(eio_message).collect();
    let mut body = Vec::new();
    encode_payload(&packets, &mut body);
    let HttpAnswer::Respond { status: 200, .. } = poll.handle_http("POST", &q, &body, now) else {
        panic!("the POST is a valid Engine.IO payload");
    };
    let mut poll_out = Vec::new();
    let mut poll_closed = false;
    let mut parked = false;
    match poll.handle_http("GET", &q, b"", now) {
        HttpAnswer::Respond {
            status: 200, body, ..
        } => {
            let limits = PayloadLimits {
                max_payload: usize::MAX,
            };
            for p in decode_payload(&body, limits).unwrap() {
                if p.kind == engineio::PacketType::Close {
                    poll_closed = true;
                } else {
                    assert!(!poll_closed);
                    poll_out.push(p);
                }
            }
        }
        HttpAnswer::Respond { status, .. } => {
            assert_eq!(status, 400);
            poll_closed = true;
        }
        HttpAnswer::Opened { .. } => panic!("not a handshake"),
        HttpAnswer::Park(_) => parked = true,
    }
    if !poll_closed && !parked {
        // Still open: a second poll would wait.
        assert!(matches!(
            poll.handle_http("GET", &q, b"", now),
            HttpAnswer::Park(_)
        ));
    }
    assert_eq!(ws_out, poll_out);
    assert_eq!(ws_closed, poll_closed);
}

//! Properties of the Engine.IO payload codec (`wire/engineio.rs`) and of
//! a session fed the input as a POST body (`proto/engineio.rs`).
//!
//! 1. Decode → encode is byte-exact: a payload we accept has exactly one
//!    spelling (text packets are copied, base64 must be canonical), so
//!    encoding what was decoded gives the input back, and decoding that
//!    gives the same packets.
//! 2. An error carries 400, or 413 only when the body is over the limit.
//! 3. Each packet also survives the WebSocket form: text frames parse back
//!    to the packet, binary frames are the message bytes.
//! 4. A session given the input as a POST never panics, answers `ok` only
//!    if the payload decodes, and is closed after a refusal.
//! 5. The same bytes read as a script of client actions (GETs, POSTs, a
//!    WebSocket upgrade and its messages, aborted polls, time passing)
//!    against the session table keep the transport rules: a parked GET is
//!    answered exactly once, a second GET while one waits is refused, no
//!    WebSocket output without a WebSocket, nothing after the close, and
//!    after `handle_timeout(now)` no deadline is left at or before `now`.
//!
//! Input: byte 0 picks the limit (small limits exercise 413), the rest is
//! the body (and, for 5, the script: one action per byte).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use pushwire::proto::engineio::{
    EioConfig, EioEvent, EioSession, HttpAnswer, Sessions, Sid, Transmit, Transport,
};
use pushwire::wire::engineio::{decode_payload, encode_payload, Data, Packet, PayloadLimits};

pub fn check(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    script(body);
    let max_payload = if pick & 1 == 0 {
        1_000_000
    } else {
        usize::from(pick >> 1)
    };
    let limits = PayloadLimits { max_payload };
    let decoded = decode_payload(body, limits);
    match &decoded {
        Ok(packets) => {
            assert!(!packets.is_empty());
            let mut out = Vec::new();
            encode_payload(packets, &mut out);
            assert_eq!(out, body, "encode must give back the payload decoded");
            assert_eq!(decode_payload(&out, limits).as_ref(), Ok(packets));
            for p in packets {
                let (binary, frame) = p.encode_ws();
                if binary {
                    assert_eq!(Packet::decode_binary(&frame), *p);
                } else {
                    let text = std::str::from_utf8(&frame).unwrap();
                    assert_eq!(Packet::decode_text(text).as_ref(), Ok(p));
                }
                if let Data::Binary(_) = p.data {
                    assert_eq!(p.kind, pushwire::wire::engineio::PacketType::Message);
                }
            }
        }
        Err(e) => {
            let too_large = body.len() > max_payload;
            assert_eq!(e.status() == 413, too_large, "{e:?}");
        }
    }

    let now = Instant::now();
    let config = EioConfig {
        max_payload,
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..EioConfig::default()
    };
    let mut s = EioSession::new(Sid::from_bytes([7; 20]), Transport::Polling, config, now);
    let _ = s.handle_poll_get(now);
    let r = s.handle_poll_post(body, now + Duration::from_millis(1));
    assert_eq!(r.is_ok(), decoded.is_ok());
    if r.is_err() {
        assert!(!s.is_open());
    }
    while s.poll_transmit().is_some() {}
    while s.poll_event().is_some() {}
    s.handle_timeout(now + Duration::from_secs(10));
    assert!(!s.is_open(), "nobody answered the ping");
}

/// What the client side knows of its session.
#[derive(Default)]
struct Model {
    parked: bool,
    ws: bool,
    closed: bool,
}

fn script(ops: &[u8]) {
    let mut now = Instant::now();
    let config = EioConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        upgrade_timeout: Duration::from_millis(1000),
        max_payload: 64,
        max_buffered_packets: 8,
        ..EioConfig::default()
    };
    let mut table = Sessions::with_sid_source(config, Box::new(|| Ok(Sid::from_bytes([9; 20]))));
    let HttpAnswer::Opened { sid, .. } =
        table.handle_http("GET", "EIO=4&transport=polling", b"", now)
    else {
        panic!("handshake");
    };
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let wq = format!("EIO=4&transport=websocket&sid={sid}");
    let mut m = Model::default();
    let bodies: [&[u8]; 8] = [b"3", b"4hi", b"1", b"4a\x1ebAQI=", b"x", b"2", b"6", b"5"];
    let frames: [&[u8]; 6] = [b"2probe", b"5", b"4hi", b"3", b"1", b"zz"];
    for &op in ops.iter().take(64) {
        let arg = usize::from(op >> 3);
        match op & 7 {
            0 => match table.handle_http("GET", &q, b"", now) {
                HttpAnswer::Park(s) => {
                    assert_eq!(s, sid);
                    assert!(!m.parked && !m.closed);
                    m.parked = true;
                }
                HttpAnswer::Respond { status, .. } => {
                    if m.parked {
                        assert_eq!(status, 400, "a second GET while one waits");
                    }
                    if m.closed {
                        assert_eq!(status, 400, "GET after the close");
                    }
                }
                HttpAnswer::Opened { .. } => panic!("not a handshake"),
            },
            1 => {
                let body = bodies[arg % bodies.len()];
                if let HttpAnswer::Respond { status: 200, .. } =
                    table.handle_http("POST", &q, body, now)
                {
                    assert!(!m.closed, "POST accepted after the close");
                }
            }
            2 => {
                if table.handle_ws_request(&wq, now).is_ok() {
                    assert!(!m.closed);
                    m.ws = true;
                }
            }
            3 => {
                let frame = frames[arg % frames.len()];
                let _ = table.handle_ws_message(sid, false, frame, now);
            }
            4 => {
                table.handle_ws_closed(sid, now);
                m.ws = false;
            }
            5 => {
                table.handle_poll_aborted(sid, now);
                m.parked = false;
            }
            _ => {
                now += Duration::from_millis(25 * (arg as u64 + 1));
                table.handle_timeout(now);
                if let Some(t) = table.poll_timeout() {
                    assert!(t > now, "a deadline left behind");
                }
            }
        }
        while let Some((s, t)) = table.poll_transmit() {
            assert_eq!(s, sid);
            match t {
                Transmit::PollResponse(_) => {
                    assert!(m.parked, "an answer for no GET");
                    m.parked = false;
                }
                Transmit::WsMessage { .. } => {
                    assert!(m.ws, "WebSocket output without a WebSocket");
                }
                Transmit::CloseWs(_) => {
                    assert!(m.ws, "closing no WebSocket");
                    m.ws = false;
                }
            }
        }
        while let Some(e) = table.poll_event() {
            if let (_, EioEvent::Closed(_)) = e {
                assert!(!m.closed, "closed twice");
                m.closed = true;
            }
        }
        // Once closed, the table forgets the session.
        if m.closed {
            assert!(table.get(sid).is_none());
            assert!(!m.parked, "a GET left hanging by the close");
        }
    }
}

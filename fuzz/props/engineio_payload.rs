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
//!
//! Input: byte 0 picks the limit (small limits exercise 413), the rest is
//! the body.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use pushwire::proto::engineio::{EioConfig, EioSession, Sid, Transport};
use pushwire::wire::engineio::{decode_payload, encode_payload, Data, Packet, PayloadLimits};

pub fn check(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
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

//! permessage-deflate over real sockets: the library client offers it,
//! the server agrees, and compressed messages go both ways on `/echo` and
//! on a topic; `--ws-deflate off` declines every offer.

mod clients;
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use clients::wait_stat;
use pushwire::client::{WsClient, WsMessage};
use pushwire::proto::ws_deflate::{deflate_into, Inflater, RSV1};
use pushwire::wire::ws_frame::{apply_mask, FrameHeader, Opcode};
use pushwire::Config;
use support::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(5));

#[test]
fn echo_is_compressed_both_ways() {
    let server = TestServer::start(Config::default());
    let mut ws = WsClient::connect_with_deflate(server.addr, "/echo", WAIT).unwrap();
    let terms = ws.deflate().expect("the server accepted the offer");
    assert!(terms.server_no_context_takeover && terms.client_no_context_takeover);
    let text = "the same line again and again\n".repeat(10_000);
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
    let before = ws.stats().bytes_received;
    ws.send_text(&text).unwrap();
    assert_eq!(ws.recv().unwrap(), WsMessage::Text(text.clone()));
    ws.send_binary(&binary).unwrap();
    assert_eq!(ws.recv().unwrap(), WsMessage::Binary(binary.clone()));
    // Short messages, under the threshold, come back too.
    ws.send_text("hi").unwrap();
    assert_eq!(ws.recv().unwrap(), WsMessage::Text("hi".into()));
    let received = ws.stats().bytes_received - before;
    assert!(
        received < (text.len() + binary.len()) as u64 / 20,
        "{received} bytes on the wire"
    );
    // The client compressed too: sent bytes are far fewer than the text.
    assert!(ws.stats().bytes_sent < text.len() as u64 / 10);
    ws.close(1000, "bye").unwrap();
}

#[test]
fn a_topic_inflates_compressed_publishes() {
    let server = TestServer::start(Config::default());
    let mut a = WsClient::connect_with_deflate(server.addr, "/topics/dfl/ws", WAIT).unwrap();
    let mut b = WsClient::connect(server.addr, "/topics/dfl/ws").unwrap();
    b.set_read_timeout(WAIT).unwrap();
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 2);
    let data = "compressible ".repeat(1000);
    a.send_text(&data).unwrap();
    for ws in [&mut a, &mut b] {
        let WsMessage::Text(json) = ws.recv().unwrap() else {
            panic!("expected text");
        };
        assert!(json.contains(&data), "{json}");
    }
}

#[test]
fn off_declines_every_offer() {
    let server = TestServer::start(Config {
        ws_deflate: false,
        ..Config::default()
    });
    let mut ws = WsClient::connect_with_deflate(server.addr, "/echo", WAIT).unwrap();
    assert_eq!(ws.deflate(), None);
    ws.send_text(&"x".repeat(5000)).unwrap();
    assert_eq!(ws.recv().unwrap(), WsMessage::Text("x".repeat(5000)));
}

#[test]
fn a_compression_bomb_gets_1009_while_inflating() {
    // The client compresses 16 MiB + 1 of zeros into a few KiB; the
    // server refuses it as over /echo's 16 MiB limit.
    let server = TestServer::start(Config::default());
    let mut ws = WsClient::connect_with_deflate(server.addr, "/echo", WAIT).unwrap();
    ws.send_binary(&vec![0u8; 16 * 1024 * 1024 + 1]).unwrap();
    assert!(ws.stats().bytes_sent < 100_000);
    match ws.recv().unwrap() {
        WsMessage::Close(Some((code, _))) => assert_eq!(code, 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

/// Opens `path` as a WebSocket on a raw socket, offering permessage-deflate
/// when `deflate`; returns the socket, the bytes read past the handshake
/// and the `Sec-WebSocket-Extensions` answer.
fn raw_ws(server: &TestServer, path: &str, deflate: bool) -> (TcpStream, Vec<u8>, Option<String>) {
    let mut s = server.connect();
    let offer = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let head = read_response(&mut s, &mut buf, true);
    assert_eq!(head.status, 101);
    let answer = head.header("sec-websocket-extensions").map(str::to_owned);
    (s, buf, answer)
}

/// Reads one whole unfragmented server frame: its header and payload.
fn raw_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> (FrameHeader, Vec<u8>) {
    loop {
        if let Some((header, len)) = FrameHeader::parse(buf).unwrap() {
            let end = len + header.payload_len as usize;
            if buf.len() >= end {
                let payload = buf[len..end].to_vec();
                buf.drain(..end);
                return (header, payload);
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).expect("a frame before the timeout");
        assert!(n > 0, "the server closed before a whole frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_topic_message_is_rsv1_for_deflate_subscribers_and_plain_for_others() {
    let server = TestServer::start(Config::default());
    let (mut zs, mut zbuf, answer) = raw_ws(&server, "/topics/rsv/ws", true);
    let answer = answer.expect("the server accepted the offer");
    assert!(answer.starts_with("permessage-deflate"), "{answer}");
    let (mut ps, mut pbuf, none) = raw_ws(&server, "/topics/rsv/ws", false);
    assert_eq!(none, None);
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 2);

    // A 2 KB JSON-ish text, well over the compression threshold.
    let data: String = (0..40)
        .map(|i| format!("{{\"sym\":\"ACME\",\"px\":{i},\"qty\":100}} "))
        .collect();
    assert_eq!(post(&server, "/topics/rsv", &data).status, 200);

    let (zh, zpayload) = raw_frame(&mut zs, &mut zbuf);
    // RFC 7692 §6: RSV1 marks the first frame of a compressed message.
    assert!(zh.fin);
    assert_eq!(zh.opcode, Opcode::Text);
    assert_eq!(zh.rsv, RSV1, "the deflate subscriber's frame is compressed");
    assert!(zpayload.len() < data.len() / 2, "{} bytes", zpayload.len());
    let mut inflater = Inflater::new(15);
    let mut text = Vec::new();
    inflater.feed(&zpayload, &mut text, 1 << 20).unwrap();
    inflater.finish(&mut text, 1 << 20).unwrap();
    let text = String::from_utf8(text).unwrap();

    let (ph, ppayload) = raw_frame(&mut ps, &mut pbuf);
    assert!(ph.fin);
    assert_eq!(ph.opcode, Opcode::Text);
    assert_eq!(ph.rsv, 0, "the plain subscriber's frame is not compressed");
    let plain = String::from_utf8(ppayload).unwrap();

    // Both carry the same JSON frame, byte for byte, with the message in it.
    assert_eq!(text, plain);
    assert!(plain.contains(&data.replace('"', "\\\"")), "{plain}");
}

/// Inflates one whole compressed message payload.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut inflater = Inflater::new(15);
    let mut text = Vec::new();
    inflater.feed(payload, &mut text, 1 << 20).unwrap();
    inflater.finish(&mut text, 1 << 20).unwrap();
    text
}

#[test]
fn echo_and_fan_out_compress_at_their_own_levels() {
    // A reply to one connection is compressed at `ws_deflate_level`, a
    // topic's message (once for all) at `ws_deflate_fanout_level`; zlib's
    // output is a function of the level, so the bytes say which was used.
    let server = TestServer::start(Config {
        ws_deflate_level: 1,
        ws_deflate_fanout_level: 9,
        ..Config::default()
    });
    let data: String = (0..200)
        .map(|i| {
            format!(
                "{{\"sym\":\"ACME\",\"px\":{},\"qty\":{}}}\n",
                i * 7 % 31,
                i % 13
            )
        })
        .collect();
    let at = |level, text: &[u8]| {
        let mut out = Vec::new();
        deflate_into(&[text], level, 15, &mut out);
        out
    };

    let (mut zs, mut zbuf, _) = raw_ws(&server, "/topics/levels/ws", true);
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 1);
    assert_eq!(post(&server, "/topics/levels", &data).status, 200);
    let (h, payload) = raw_frame(&mut zs, &mut zbuf);
    assert_eq!(h.rsv, RSV1);
    let frame = inflate(&payload);
    assert_ne!(
        at(1, &frame),
        at(9, &frame),
        "the levels differ on this text"
    );
    assert_eq!(payload, at(9, &frame), "fan-out: compressed at level 9");

    // /echo: an uncompressed text frame in (RFC 7692 §6 allows it), the
    // echo compressed at level 1.
    let (mut es, mut ebuf, _) = raw_ws(&server, "/echo", true);
    let key = [9, 8, 7, 6];
    let mut f = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: Opcode::Text,
        mask: Some(key),
        payload_len: data.len() as u64,
    }
    .emit(&mut f);
    let start = f.len();
    f.extend_from_slice(data.as_bytes());
    apply_mask(&mut f[start..], key, 0);
    es.write_all(&f).unwrap();
    let (h, payload) = raw_frame(&mut es, &mut ebuf);
    assert_eq!(h.rsv, RSV1);
    assert_eq!(inflate(&payload), data.as_bytes());
    assert_eq!(
        payload,
        at(1, data.as_bytes()),
        "echo: compressed at level 1"
    );
}

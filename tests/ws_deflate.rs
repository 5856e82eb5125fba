//! permessage-deflate over real sockets: the library client offers it,
//! the server agrees, and compressed messages go both ways on `/echo` and
//! on a topic; `--ws-deflate off` declines every offer.

mod clients;
mod support;

use std::time::Duration;

use clients::wait_stat;
use pushwire::client::{WsClient, WsMessage};
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

//! WebSocket over real sockets: the handshake and its refusals, topics
//! (replay, fan-out to every subscriber and the sender, gaps), the close
//! codes a client earns, a slow subscriber cut off with 1008, and `/echo`.

mod clients;
mod support;

use std::time::Duration;

use clients::*;
use pushwire::wire::ws_frame::Opcode;
use pushwire::Config;
use support::*;

fn config() -> Config {
    Config::default()
}

/// A topic message frame, checked to be exactly `{"id","event","data"}`.
fn message(ws: &mut RawWs) -> ClientMessage {
    let m = ws.recv_message();
    assert_eq!(m.opcode, Opcode::Text, "expected a text message: {m:?}");
    message_json(m.text())
}

/// Answers the server's close and checks the TCP connection then ends.
fn finish_close(ws: &mut RawWs, code: u16) {
    ws.send_close(code);
    assert!(
        ws.closed_within(Duration::from_secs(3)),
        "the server closes the connection after the closing handshake"
    );
}

#[test]
fn handshake_answers_101_with_the_accept_key() {
    let server = TestServer::start(config());
    let ws = RawWs::connect(server.addr, "/topics/hs/ws");
    assert_eq!(
        ws.head.header("upgrade").map(str::to_ascii_lowercase),
        Some("websocket".into())
    );
    assert!(ws
        .head
        .header("connection")
        .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")));
    assert_eq!(ws.head.header("sec-websocket-extensions"), None);
    let _echo = RawWs::connect(server.addr, "/echo");
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 1);
}

#[test]
fn handshake_refusals() {
    let mut cfg = config();
    cfg.allowed_origins = vec!["https://good.example".into()];
    let server = TestServer::start(cfg);
    let upgrade = |path: &str, lines: &str| {
        request(
            &server,
            format!(
                "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{lines}\r\n"
            )
            .as_bytes(),
        )
    };
    let key = format!("Sec-WebSocket-Key: {SAMPLE_KEY}\r\n");

    // No key.
    let r = upgrade("/topics/w/ws", "Sec-WebSocket-Version: 13\r\n");
    assert_eq!(r.status, 400, "{}", r.text());
    // A key that is not the base64 of 16 bytes.
    let r = upgrade(
        "/topics/w/ws",
        "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Version 8: 426 naming the version we speak.
    let r = upgrade(
        "/topics/w/ws",
        &format!("{key}Sec-WebSocket-Version: 8\r\n"),
    );
    assert_eq!(r.status, 426, "{}", r.text());
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let r = upgrade("/echo", &key);
    assert_eq!(r.status, 426, "no version at all");
    // An Origin outside the allow list: 403. (None: not a browser, allowed.)
    let r = upgrade(
        "/topics/w/ws",
        &format!("{key}Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n"),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = upgrade(
        "/echo",
        &format!("{key}Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n"),
    );
    assert_eq!(r.status, 403);
    RawWs::connect_with(
        server.addr,
        "/topics/w/ws",
        &[("Origin", "https://good.example")],
    );
    // A bad topic or cursor is refused before the upgrade.
    let good = format!("{key}Sec-WebSocket-Version: 13\r\n");
    assert_eq!(upgrade("/topics/a$b/ws", &good).status, 400);
    assert_eq!(upgrade("/topics/w/ws?after=nope", &good).status, 400);
    // A plain GET on a WebSocket-only path.
    let r = get(&server, "/echo");
    assert_eq!(r.status, 426);
    assert!(r
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    // Nothing refused became a subscriber.
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n <= 1);
}

#[test]
fn replay_after_a_cursor_then_live() {
    let server = TestServer::start(config());
    let id1 = publish(&server, "rp", None, "one");
    let id2 = publish(&server, "rp", Some("named"), "two");
    let id3 = publish(&server, "rp", None, "three\r\nlines");

    let mut ws = WsClient::connect(server.addr, &format!("/topics/rp/ws?after={id1}")).unwrap();
    assert_eq!(
        ws_message(&mut ws),
        ClientMessage {
            id: id2.clone(),
            event: "named".into(),
            data: "two".into()
        }
    );
    // JSON keeps every byte: no line-ending normalization here.
    assert_eq!(
        ws_message(&mut ws),
        ClientMessage {
            id: id3.clone(),
            event: "message".into(),
            data: "three\r\nlines".into()
        }
    );
    assert!(ws_quiet(&mut ws, Duration::from_millis(200)));
    let id4 = publish(&server, "rp", None, "four");
    assert_eq!(ws_message(&mut ws).id, id4);

    let mut ws = WsClient::connect(server.addr, "/topics/rp/ws?after=earliest").unwrap();
    let all: Vec<String> = (0..4).map(|_| ws_message(&mut ws).data).collect();
    assert_eq!(all, ["one", "two", "three\r\nlines", "four"]);

    // No cursor: live only.
    let mut ws = WsClient::connect(server.addr, "/topics/rp/ws").unwrap();
    assert!(ws_quiet(&mut ws, Duration::from_millis(200)));
    publish(&server, "rp", None, "five");
    assert_eq!(ws_message(&mut ws).data, "five");
}

#[test]
fn a_text_frame_reaches_every_subscriber_including_the_sender() {
    let server = TestServer::start(config());
    let mut a = RawWs::connect(server.addr, "/topics/room/ws");
    let mut b = RawWs::connect(server.addr, "/topics/room/ws");
    let mut c = RawWs::connect(server.addr, "/topics/room/ws");
    let mut other = RawWs::connect(server.addr, "/topics/elsewhere/ws");
    let mut sse = RawSse::open(server.addr, "/topics/room/sse", &[]);

    a.send_text("hi from a");
    let m = message(&mut a);
    assert_eq!(
        (m.event.as_str(), m.data.as_str()),
        ("message", "hi from a")
    );
    assert_eq!(split_id(&m.id).1, 1);
    assert_eq!(message(&mut b), m);
    assert_eq!(message(&mut c), m);
    let e = sse.next_event();
    assert_eq!(
        (e.data.as_str(), e.last_event_id.as_str()),
        ("hi from a", m.id.as_str())
    );
    assert!(other
        .recv_frame_within(Duration::from_millis(200))
        .is_none());

    // A fragmented message is published once, whole.
    b.send_frame(false, Opcode::Text, "frag".as_bytes(), true);
    b.send_frame(false, Opcode::Continuation, "men".as_bytes(), true);
    b.send_frame(true, Opcode::Continuation, "ted ✓".as_bytes(), true);
    let m2 = message(&mut b);
    assert_eq!(m2.data, "fragmented ✓");
    assert_eq!(split_id(&m2.id).1, 2);
    assert_eq!(message(&mut a), m2);
    assert_eq!(message(&mut c), m2);

    // Several frames in one write, in order.
    for i in 0..20 {
        c.send_text(&format!("burst {i}"));
    }
    for ws in [&mut a, &mut b, &mut c] {
        let got: Vec<String> = (0..20).map(|_| message(ws).data).collect();
        assert_eq!(
            got,
            (0..20).map(|i| format!("burst {i}")).collect::<Vec<_>>()
        );
    }
    // The polls see what was said.
    let p = batch(&get(&server, "/topics/room/messages"));
    assert_eq!(p.messages.len(), 22);
    assert_eq!(p.messages[0], m);
}

#[test]
fn a_binary_frame_on_a_topic_gets_1003() {
    let server = TestServer::start(config());
    let mut ws = RawWs::connect(server.addr, "/topics/bin/ws");
    ws.send_binary(&[0, 1, 2, 0xff]);
    assert_eq!(ws.expect_close(), 1003);
    finish_close(&mut ws, 1003);
    let p = batch(&get(&server, "/topics/bin/messages"));
    assert!(p.messages.is_empty(), "nothing published: {p:?}");
}

#[test]
fn a_message_over_max_message_bytes_gets_1009() {
    let mut cfg = config();
    cfg.max_message_bytes = 1024;
    let server = TestServer::start(cfg);
    let mut ws = RawWs::connect(server.addr, "/topics/big/ws");
    ws.send_text(&"x".repeat(1024));
    assert_eq!(message(&mut ws).data.len(), 1024);
    ws.send_text(&"x".repeat(1025));
    assert_eq!(ws.expect_close(), 1009);
    finish_close(&mut ws, 1009);

    // The limit holds across fragments too.
    let mut ws = RawWs::connect(server.addr, "/topics/big/ws");
    ws.send_frame(false, Opcode::Text, "x".repeat(1000).as_bytes(), true);
    ws.send_frame(true, Opcode::Continuation, "x".repeat(100).as_bytes(), true);
    assert_eq!(ws.expect_close(), 1009);
    let p = batch(&get(&server, "/topics/big/messages"));
    assert_eq!(p.messages.len(), 1);
}

#[test]
fn protocol_errors_get_their_close_codes() {
    let server = TestServer::start(config());
    // RFC 6455 §5.1: a client frame must be masked.
    let mut ws = RawWs::connect(server.addr, "/topics/err/ws");
    ws.send_frame(true, Opcode::Text, b"unmasked", false);
    assert_eq!(ws.expect_close(), 1002);
    assert!(ws.closed_within(Duration::from_secs(3)));

    // Text that is not UTF-8.
    let mut ws = RawWs::connect(server.addr, "/topics/err/ws");
    ws.send_frame(true, Opcode::Text, b"ok \xff\xfe", true);
    assert_eq!(ws.expect_close(), 1007);
    finish_close(&mut ws, 1007);
    // Split inside a code point across fragments is fine, though.
    let mut ws = RawWs::connect(server.addr, "/topics/err/ws");
    ws.send_frame(false, Opcode::Text, b"caf\xc3", true);
    ws.send_frame(true, Opcode::Continuation, b"\xa9", true);
    assert_eq!(message(&mut ws).data, "café");

    // A reserved opcode.
    let mut ws = RawWs::connect(server.addr, "/topics/err/ws");
    ws.send_frame(true, Opcode::Reserved(3), b"?", true);
    assert_eq!(ws.expect_close(), 1002);

    // Nothing invalid was published; the valid one was.
    let p = batch(&get(&server, "/topics/err/messages"));
    assert_eq!(p.data(), ["café"]);
}

#[test]
fn ping_gets_pong_and_a_clean_close_is_echoed() {
    let server = TestServer::start(config());
    for path in ["/topics/pp/ws", "/echo"] {
        let mut ws = RawWs::connect(server.addr, path);
        ws.send_frame(true, Opcode::Ping, b"are you there", true);
        let f = ws.recv_frame();
        assert_eq!(
            (f.opcode, f.payload.as_slice()),
            (Opcode::Pong, &b"are you there"[..])
        );
        // An unsolicited pong is ignored.
        ws.send_frame(true, Opcode::Pong, b"", true);
        ws.send_close(1000);
        assert_eq!(ws.expect_close(), 1000, "{path}");
        assert!(ws.closed_within(Duration::from_secs(3)));
    }
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 0);
}

#[test]
fn a_cursor_older_than_the_history_gets_a_gap_frame() {
    let mut cfg = config();
    cfg.history_messages = 3;
    let server = TestServer::start(cfg);
    let ids: Vec<String> = (1..=6)
        .map(|i| publish(&server, "gap", None, &format!("m{i}")))
        .collect();
    let mut ws =
        WsClient::connect(server.addr, &format!("/topics/gap/ws?after={}", ids[0])).unwrap();
    let gap = ws_json(&mut ws);
    assert_eq!(gap.keys(), ["gap", "requested", "oldest"], "{gap:?}");
    assert_eq!(gap.get("gap").and_then(Value::as_bool), Some(true));
    assert_eq!(gap.str_field("requested"), ids[0]);
    assert_eq!(gap.str_field("oldest"), ids[3]);
    let replay: Vec<ClientMessage> = (0..3).map(|_| ws_message(&mut ws)).collect();
    assert_eq!(
        replay.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [ids[3].as_str(), ids[4].as_str(), ids[5].as_str()]
    );
    // The oldest kept right after the cursor: no gap.
    let mut ws =
        WsClient::connect(server.addr, &format!("/topics/gap/ws?after={}", ids[2])).unwrap();
    assert_eq!(ws_message(&mut ws).id, ids[3]);
    // Beyond the newest: a gap.
    let (epoch, _) = split_id(&ids[0]);
    let mut ws =
        WsClient::connect(server.addr, &format!("/topics/gap/ws?after={epoch}-7")).unwrap();
    assert_eq!(
        ws_json(&mut ws).get("gap").and_then(Value::as_bool),
        Some(true)
    );
}

#[test]
fn a_slow_websocket_subscriber_is_cut_off_with_1008_and_resumes() {
    const SIZE: usize = 16 * 1024;
    const MAX: usize = 1000;
    let mut cfg = config();
    cfg.subscriber_queue_bytes = 64 * 1024;
    cfg.history_messages = MAX;
    let server = TestServer::start(cfg);
    let mut stalled = RawWs::connect(server.addr, "/topics/slow/ws");
    let mut healthy = sse(&server, "slow", None);
    let mut poster = HttpClient::new(server.addr);
    let mut ids = Vec::new();
    while ids.len() < MAX {
        let n = ids.len();
        ids.push(poster.publish("slow", &format!("{n:08}{}", ".".repeat(SIZE - 8))));
        // The healthy reader keeps up as it goes.
        let e = sse_event(&mut healthy);
        assert_eq!(e.last_event_id, ids[n]);
        if n % 25 == 24 && stat(&server, "slow_disconnects") >= 1 {
            break;
        }
    }
    assert_eq!(
        stat(&server, "slow_disconnects"),
        1,
        "cut off within {MAX} messages"
    );

    // Reading at last: whole messages in order, then close 1008.
    let mut got = Vec::new();
    let code = loop {
        let f = stalled.recv_message();
        if f.opcode == Opcode::Close {
            break f.close_code();
        }
        got.push(message_json(f.text()));
    };
    assert_eq!(code, 1008);
    finish_close(&mut stalled, 1008);
    assert!(!got.is_empty() && got.len() < ids.len());
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.id, ids[i], "in order, none skipped");
    }

    // It resumes by its cursor: exactly what it missed.
    let cursor = &got.last().unwrap().id;
    let mut again =
        WsClient::connect(server.addr, &format!("/topics/slow/ws?after={cursor}")).unwrap();
    for id in &ids[got.len()..] {
        assert_eq!(&ws_message(&mut again).id, id);
    }
    assert!(ws_quiet(&mut again, Duration::from_millis(200)));
    poster.publish("slow", "live again");
    assert_eq!(ws_message(&mut again).data, "live again");
    assert_eq!(sse_event(&mut healthy).data, "live again");
}

#[test]
fn echo_returns_text_binary_fragments_and_a_mebibyte() {
    let server = TestServer::start(config());
    let mut ws = RawWs::connect(server.addr, "/echo");
    ws.send_text("hello ✓");
    let f = ws.recv_message();
    assert_eq!((f.opcode, f.text()), (Opcode::Text, "hello ✓"));
    ws.send_binary(&[0, 1, 2, 0xfe, 0xff]);
    let f = ws.recv_message();
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (Opcode::Binary, &[0u8, 1, 2, 0xfe, 0xff][..])
    );
    ws.send_text("");
    assert_eq!(ws.recv_message().payload, b"");

    // Fragments come back as one message.
    ws.send_frame(false, Opcode::Binary, b"ab", true);
    ws.send_frame(true, Opcode::Continuation, b"cd", true);
    let f = ws.recv_message();
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (Opcode::Binary, &b"abcd"[..])
    );

    // 1 MiB, binary and text, byte for byte.
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    ws.send_binary(&big);
    let f = ws.recv_message();
    assert_eq!(f.opcode, Opcode::Binary);
    assert!(f.payload == big, "1 MiB binary echoed intact");
    let text: String = (0..1024 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    ws.send_text(&text);
    let f = ws.recv_message();
    assert_eq!(f.opcode, Opcode::Text);
    assert!(f.payload == text.as_bytes(), "1 MiB text echoed intact");

    ws.send_close(1000);
    assert_eq!(ws.expect_close(), 1000);
}

#[test]
fn last_words_before_a_close_reach_the_other_subscribers() {
    let server = TestServer::start(config());
    let mut listener = RawWs::connect(server.addr, "/topics/last/ws");
    let mut leaver = RawWs::connect(server.addr, "/topics/last/ws");
    // Text and close in one write: the server reads both in one go.
    let mut both = Vec::new();
    for (opcode, payload) in [
        (Opcode::Text, &b"goodbye"[..]),
        (Opcode::Close, &[3, 232][..]),
    ] {
        let h = pushwire::wire::ws_frame::FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([1, 2, 3, 4]),
            payload_len: payload.len() as u64,
        };
        h.emit(&mut both);
        let at = both.len();
        both.extend_from_slice(payload);
        pushwire::wire::ws_frame::apply_mask(&mut both[at..], [1, 2, 3, 4], 0);
    }
    std::io::Write::write_all(&mut leaver.stream, &both).unwrap();
    assert!(leaver.closed_within(Duration::from_secs(3)));
    let f = listener
        .recv_frame_within(Duration::from_secs(3))
        .expect("the listener gets the leaver's last message");
    assert_eq!(message_json(f.text()).data, "goodbye");
}

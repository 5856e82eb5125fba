//! The clients against a real [`Server`] on a loopback port, and against
//! hand-written peers for what the server never sends (fragments, pings,
//! odd framings).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::*;
use crate::wire::ws_frame::{apply_mask, FrameHeader, Opcode};
use crate::wire::ws_handshake::accept_key;
use crate::{Config, Server};

/// Runs `f` against a fresh server, then shuts the server down.
fn with_server(f: impl FnOnce(SocketAddr, &crate::Handle)) {
    let server = Server::bind(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let t = thread::spawn(move || server.run());
    f(addr, &handle);
    handle.shutdown();
    t.join().unwrap().unwrap();
}

#[test]
fn batch_and_delivery_shapes() {
    let b = Batch::from_json(
        r#"{"messages":[{"id":"5-1","event":"message","data":"a\nb"}],"last_id":"5-1","timeout":false,"gap":true}"#,
    )
    .unwrap();
    assert_eq!(b.messages[0].data, "a\nb");
    assert!(b.gap && !b.timeout);
    assert!(
        Batch::from_json(r#"{"messages":[],"last_id":"5-0","timeout":"no","gap":false}"#).is_err()
    );
    assert_eq!(
        Delivery::from_json(r#"{"gap":true,"requested":"1-9","oldest":""}"#).unwrap(),
        Delivery::Gap {
            requested: "1-9".into(),
            oldest: "".into()
        }
    );
    assert!(Delivery::from_json(r#"{"id":"1-1","event":"message"}"#).is_err());
}

#[test]
fn every_client_against_a_real_server() {
    with_server(|addr, handle| {
        // ---- plain HTTP: publish, short poll, long poll, keep-alive.
        let mut http = HttpClient::new(addr);
        let res = http.get("/healthz").unwrap();
        assert_eq!((res.status(), res.text().unwrap()), (200, "ok"));
        let id1 = http.post("t", None, "one").unwrap();
        let id2 = http.post("t", Some("greet"), "two\nlines").unwrap();
        let all = http.messages("t", None).unwrap();
        assert_eq!(all.messages.len(), 2);
        assert_eq!(all.messages[1].event, "greet");
        assert_eq!(all.messages[1].data, "two\nlines");
        assert_eq!(all.last_id, id2);
        let after = http.messages("t", Some(&id1)).unwrap();
        assert_eq!(after.messages.len(), 1);
        assert_eq!(after.messages[0].id, id2);
        // A long poll with nothing new times out...
        let started = Instant::now();
        let empty = http.poll("t", Some(&id2), 1).unwrap();
        assert!(empty.timeout && empty.messages.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(900));
        // ...and one that is waiting is answered by a publish.
        let waiter = thread::spawn(move || {
            let mut http = HttpClient::new(addr);
            http.poll("t", Some(&id2), 20).unwrap()
        });
        thread::sleep(Duration::from_millis(200));
        let id3 = handle.publish("t", None, "three").unwrap();
        let woken = waiter.join().unwrap();
        assert!(!woken.timeout);
        assert_eq!(woken.messages[0].id, id3);
        assert_eq!(woken.last_id, id3);
        let stats = http.stats();
        assert_eq!((stats.requests, stats.connections), (6, 1), "{stats:?}");
        assert!(stats.bytes_received > 0 && stats.bytes_sent > 0);
        assert!(matches!(
            http.post("bad topic!", None, "x"),
            Err(ClientError::Status { status: 400, .. })
        ));

        // ---- SSE: replay, live events, resume by Last-Event-ID.
        let mut sse = SseClient::connect(addr, "t", Some("earliest")).unwrap();
        let e = sse.next_event().unwrap().unwrap();
        assert_eq!((e.event_type.as_str(), e.data.as_str()), ("message", "one"));
        let e = sse.next_event().unwrap().unwrap();
        assert_eq!(
            (e.event_type.as_str(), e.data.as_str()),
            ("greet", "two\nlines")
        );
        assert_eq!(sse.next_event().unwrap().unwrap().data, "three");
        let id4 = handle.publish("t", None, "four").unwrap();
        let e = sse.next_event().unwrap().unwrap();
        assert_eq!(
            (e.data.as_str(), e.last_event_id.as_str()),
            ("four", id4.as_str())
        );
        assert_eq!(sse.retry_ms(), Some(3000));
        drop(sse);
        let mut resumed = SseClient::connect(addr, "t", Some(&id3)).unwrap();
        assert_eq!(resumed.next_event().unwrap().unwrap().data, "four");
        assert_eq!(resumed.stats().requests, 1);

        // ---- WebSocket on a topic: replay, own messages, gap notice.
        let mut ws = WsClient::connect(addr, &format!("/topics/t/ws?after={id3}")).unwrap();
        let WsMessage::Text(text) = ws.recv().unwrap() else {
            panic!("expected text");
        };
        assert!(matches!(Delivery::from_json(&text).unwrap(), Delivery::Message(m) if m.id == id4));
        ws.send_text("from ws").unwrap();
        let WsMessage::Text(text) = ws.recv().unwrap() else {
            panic!("expected text");
        };
        let Delivery::Message(m) = Delivery::from_json(&text).unwrap() else {
            panic!("expected a message");
        };
        assert_eq!((m.event.as_str(), m.data.as_str()), ("message", "from ws"));
        // The SSE stream still open sees the WebSocket's message too.
        assert_eq!(resumed.next_event().unwrap().unwrap().data, "from ws");
        assert_eq!(ws.stats().requests, 1);
        ws.close(1000, "done").unwrap();

        let mut gapped = WsClient::connect(addr, "/topics/t/ws?after=1-5").unwrap();
        let WsMessage::Text(text) = gapped.recv().unwrap() else {
            panic!("expected text");
        };
        assert!(matches!(
            Delivery::from_json(&text).unwrap(),
            Delivery::Gap { requested, .. } if requested == "1-5"
        ));
        gapped.close(1000, "").unwrap();

        // ---- WebSocket echo: text, binary, a ping on the way.
        let mut echo = WsClient::connect(addr, "/echo").unwrap();
        echo.ping(b"are you there").unwrap();
        echo.send_text("héllo").unwrap();
        echo.send_binary(&[0, 1, 2, 255]).unwrap();
        let big = "x".repeat(70_000); // a 64-bit length on the way back
        echo.send_text(&big).unwrap();
        assert_eq!(echo.recv().unwrap(), WsMessage::Text("héllo".into()));
        assert_eq!(echo.recv().unwrap(), WsMessage::Binary(vec![0, 1, 2, 255]));
        assert_eq!(echo.recv().unwrap(), WsMessage::Text(big));
        echo.close(1000, "bye").unwrap();

        // ---- A shut-down server ends the stream: the SSE client sees the end.
        handle.shutdown();
        assert_eq!(resumed.next_event().unwrap(), None);
    });
}

/// Reads a request head from a raw socket.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn http_framings_and_reconnect_after_idle_close() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        // First connection: a chunked answer written in awkward pieces,
        // then a Content-Length one; then the connection is closed, as a
        // server closes an idle keep-alive connection.
        let (mut s, _) = listener.accept().unwrap();
        assert!(read_head(&mut s).starts_with("GET /a HTTP/1.1\r\n"));
        for piece in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r"[..],
            b"\nabc\r\n1;ext=1\r\nd\r\n0\r\n",
            b"\r\n",
        ] {
            s.write_all(piece).unwrap();
            s.flush().unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        assert!(read_head(&mut s).starts_with("GET /b "));
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        drop(s);
        // Second connection: an HTTP/1.0 answer delimited by the close.
        let (mut s, _) = listener.accept().unwrap();
        assert!(read_head(&mut s).starts_with("GET /c "));
        s.write_all(b"HTTP/1.0 200 OK\r\n\r\nto the end").unwrap();
    });
    let mut http = HttpClient::new(addr);
    assert_eq!(http.get("/a").unwrap().body, b"abcd");
    assert_eq!(http.get("/b").unwrap().body, b"hi");
    thread::sleep(Duration::from_millis(50));
    assert_eq!(http.get("/c").unwrap().body, b"to the end");
    peer.join().unwrap();
    let stats = http.stats();
    // /c went out twice: on the closed connection, then on a new one.
    assert_eq!((stats.requests, stats.connections), (4, 2), "{stats:?}");
}

/// Writes one unmasked server frame.
fn frame(s: &mut TcpStream, fin: bool, opcode: Opcode, payload: &[u8]) {
    let mut out = Vec::new();
    crate::wire::ws_frame::write_frame(&mut out, fin, opcode, payload);
    s.write_all(&out).unwrap();
}

/// Reads one client frame and unmasks it, checking that it was masked.
fn read_frame(s: &mut TcpStream) -> (Opcode, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if let Some((h, n)) = FrameHeader::parse(&buf).unwrap() {
            let key = h.mask.expect("client frames are masked");
            let mut payload = vec![0; h.payload_len as usize];
            s.read_exact(&mut payload).unwrap();
            assert_eq!(n, buf.len());
            apply_mask(&mut payload, key, 0);
            return (h.opcode, payload);
        }
        s.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
}

#[test]
fn websocket_fragments_pings_and_close() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let head = read_head(&mut s);
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        write!(
            s,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(key.as_bytes())
        )
        .unwrap();
        // "hé" split inside the é, with a ping between the fragments.
        frame(&mut s, false, Opcode::Text, b"h\xC3");
        frame(&mut s, true, Opcode::Ping, b"p");
        frame(&mut s, true, Opcode::Continuation, b"\xA9");
        assert_eq!(read_frame(&mut s), (Opcode::Pong, b"p".to_vec()));
        frame(&mut s, true, Opcode::Close, b"\x03\xe8bye");
        let (op, payload) = read_frame(&mut s);
        assert_eq!((op, payload.as_slice()), (Opcode::Close, &b"\x03\xe8"[..]));
    });
    let mut ws = WsClient::connect(addr, "/x").unwrap();
    assert_eq!(ws.recv().unwrap(), WsMessage::Text("hé".into()));
    assert_eq!(
        ws.recv().unwrap(),
        WsMessage::Close(Some((1000, "bye".into())))
    );
    assert!(matches!(ws.recv(), Err(ClientError::Closed)));
    peer.join().unwrap();
}

#[test]
fn websocket_handshake_is_checked() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        read_head(&mut s);
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            .unwrap();
    });
    assert!(matches!(
        WsClient::connect(addr, "/x"),
        Err(ClientError::Protocol(_))
    ));
    peer.join().unwrap();
}

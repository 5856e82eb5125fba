//! DESIGN "Security" over real sockets: the origin rule for publishing
//! and WebSockets, HS256 tokens on every transport, admin-only topic
//! management, and a stream ended when its token expires.

mod clients;
mod support;

use std::io::{Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clients::*;
use pushwire::wire::jws::sign;
use pushwire::wire::ws_frame::Opcode;
use pushwire::Config;
use support::*;

const SECRET: &[u8] = b"a test secret of some length";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: &str) -> String {
    sign(claims.as_bytes(), SECRET)
}

fn with_tokens() -> Config {
    Config {
        auth_secret: Some(SECRET.to_vec()),
        ..Config::default()
    }
}

/// Sends `req` and reads the one response.
fn send(server: &TestServer, req: String) -> Response {
    request(server, req.as_bytes())
}

fn publish_as(server: &TestServer, topic: &str, headers: &str, body: &str) -> Response {
    send(
        server,
        format!(
            "POST /topics/{topic} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            server.addr,
            body.len()
        ),
    )
}

fn kept(server: &TestServer, topic: &str) -> usize {
    get(server, &format!("/topics/{topic}/messages"))
        .text()
        .matches("\"id\":")
        .count()
}

#[test]
fn a_foreign_origin_cannot_publish_and_nothing_is_published() {
    let server = TestServer::start(Config::default());
    let r = publish_as(&server, "o", "Origin: http://evil.example\r\n", "x");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(kept(&server, "o"), 0);
    // The server's own origin (matching Host) and no Origin at all pass.
    let own = format!("Origin: http://{}\r\n", server.addr);
    assert_eq!(publish_as(&server, "o", &own, "a").status, 200);
    assert_eq!(publish_as(&server, "o", "", "b").status, 200);
    assert_eq!(kept(&server, "o"), 2);
    // `Origin: null` (sandboxed frames, file: pages) is foreign.
    let r = publish_as(&server, "o", "Origin: null\r\n", "x");
    assert_eq!(r.status, 403);
    // Two Origin fields (RFC 6454 §7.3: never sent by a user agent) are
    // refused whichever comes first, and publish nothing.
    for two in [
        format!(
            "Origin: http://{}\r\nOrigin: http://evil.example\r\n",
            server.addr
        ),
        format!(
            "Origin: http://evil.example\r\nOrigin: http://{}\r\n",
            server.addr
        ),
    ] {
        assert_eq!(publish_as(&server, "o", &two, "x").status, 400);
    }
    assert_eq!(kept(&server, "o"), 2);
    // An absolute-form target names the host the origin is checked
    // against, not Host (RFC 9112 §3.2.2).
    let r = send(
        &server,
        format!(
            "POST http://evil.example/topics/o HTTP/1.1\r\nHost: {}\r\nOrigin: http://{}\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
            server.addr, server.addr
        ),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // And a Host that is not uri-host [":" port] is a bad request.
    let r = send(
        &server,
        "GET /healthz HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".into(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(kept(&server, "o"), 2);
}

#[test]
fn allowed_origins_and_the_cors_origin_may_publish() {
    let server = TestServer::start(Config {
        allowed_origins: vec!["https://app.example".into()],
        cors_origin: Some("http://cors.example:8000".into()),
        ..Config::default()
    });
    for origin in ["https://app.example", "http://cors.example:8000"] {
        let r = publish_as(&server, "o", &format!("Origin: {origin}\r\n"), "x");
        assert_eq!(r.status, 200, "{origin}");
    }
    let r = publish_as(&server, "o", "Origin: https://other.example\r\n", "x");
    assert_eq!(r.status, 403);
    let any = TestServer::start(Config {
        allowed_origins: vec!["*".into()],
        ..Config::default()
    });
    let r = publish_as(&any, "o", "Origin: https://other.example\r\n", "x");
    assert_eq!(r.status, 200);
}

#[test]
fn a_foreign_origin_cannot_open_a_websocket() {
    let server = TestServer::start(Config::default());
    for path in ["/topics/w/ws", "/ws", "/echo"] {
        let mut s = server.connect();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n",
            server.addr
        )
        .unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.status, 403, "{path}");
    }
    // Same origin (the test client's Host is `t`): opens.
    let ws = RawWs::connect_with(server.addr, "/topics/w/ws", &[("Origin", "http://t")]);
    assert_eq!(ws.head.status, 101);
}

#[test]
fn tokens_are_needed_and_must_be_valid_and_for_the_topic() {
    let server = TestServer::start(with_tokens());
    // None, malformed, wrong key, alg none, expired: 401 with a challenge.
    let r = publish_as(&server, "news.a", "", "x");
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Bearer")));
    let wrong_key = sign(br#"{"publish":["*"]}"#, b"another secret of some length");
    let none = "eyJhbGciOiJub25lIn0.eyJwdWJsaXNoIjpbIioiXX0.";
    let expired = token(&format!(r#"{{"publish":["*"],"exp":{}}}"#, now() - 3600));
    for bad in ["garbage", wrong_key.as_str(), none, expired.as_str()] {
        let r = publish_as(
            &server,
            "news.a",
            &format!("Authorization: Bearer {bad}\r\n"),
            "x",
        );
        assert_eq!(r.status, 401, "{bad}: {}", r.text());
    }
    // Valid, but not for this topic: 403; for it: 200.
    let t = token(r#"{"publish":["news.*"],"subscribe":["news.*"]}"#);
    let auth = format!("Authorization: Bearer {t}\r\n");
    assert_eq!(publish_as(&server, "sport", &auth, "x").status, 403);
    assert_eq!(publish_as(&server, "news.a", &auth, "x").status, 200);
    // A subscribe-only token cannot publish.
    let reader = token(r#"{"subscribe":["*"]}"#);
    let auth_r = format!("Authorization: Bearer {reader}\r\n");
    assert_eq!(publish_as(&server, "news.a", &auth_r, "x").status, 403);

    // Subscribing: every poll transport checks, `?token=` for EventSource.
    assert_eq!(get(&server, "/topics/news.a/messages").status, 401);
    let r = get(&server, &format!("/topics/news.a/messages?token={t}"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"data\":\"x\""));
    let r = get(&server, &format!("/topics/sport/messages?token={t}"));
    assert_eq!(r.status, 403);
    let r = get(
        &server,
        &format!("/messages?topic=news.a&topic=sport&token={t}"),
    );
    assert_eq!(
        r.status, 403,
        "every topic of a multi-topic request is checked"
    );
    let r = get(&server, &format!("/topics/news.a/poll?timeout=0&token={t}"));
    assert_eq!(r.status, 200);
    let r = get(&server, &format!("/topics/sport/sse?token={t}"));
    assert_eq!(r.status, 403);
    // Tokens off for health and the pages.
    assert_eq!(get(&server, "/healthz").status, 200);
    assert_eq!(get(&server, "/").status, 200);
}

#[test]
fn topic_management_needs_an_admin_token() {
    let server = TestServer::start(with_tokens());
    let admin = token(r#"{"admin":true,"publish":["*"]}"#);
    let user = token(r#"{"subscribe":["*"],"publish":["*"]}"#);
    let auth = format!("Authorization: Bearer {admin}\r\n");
    assert_eq!(publish_as(&server, "m", &auth, "x").status, 200);
    assert_eq!(get(&server, "/topics").status, 401);
    assert_eq!(get(&server, &format!("/topics?token={user}")).status, 403);
    assert_eq!(get(&server, &format!("/topics?token={admin}")).status, 200);
    assert_eq!(get(&server, &format!("/topics/m?token={user}")).status, 403);
    assert_eq!(
        get(&server, &format!("/topics/m?token={admin}")).status,
        200
    );
    let del = |t: &str| {
        send(
            &server,
            format!("DELETE /topics/m?token={t} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(del(&user).status, 403);
    assert_eq!(del(&admin).status, 200);
}

#[test]
fn a_topic_websocket_without_publish_rights_gets_1008_and_publishes_nothing() {
    let server = TestServer::start(with_tokens());
    let reader = token(r#"{"subscribe":["t"]}"#);
    let mut ws = RawWs::connect(server.addr, &format!("/topics/t/ws?token={reader}"));
    ws.send_text("not allowed");
    let f = ws.recv_frame();
    assert_eq!(f.opcode, Opcode::Close);
    assert_eq!(u16::from_be_bytes([f.payload[0], f.payload[1]]), 1008);
    let admin = token(r#"{"subscribe":["*"]}"#);
    let r = get(&server, &format!("/topics/t/messages?token={admin}"));
    assert!(!r.text().contains("not allowed"), "{}", r.text());
}

#[test]
fn mux_commands_beyond_the_token_get_403_replies() {
    let server = TestServer::start(with_tokens());
    let t = token(r#"{"subscribe":["a"],"publish":["a"]}"#);
    let mut ws = RawWs::connect(server.addr, &format!("/ws?token={t}"));
    ws.send_text(r#"{"type":"subscribe","topic":"b","ref":1}"#);
    let reply = String::from_utf8(ws.recv_frame().payload).unwrap();
    assert!(
        reply.contains("\"type\":\"error\"") && reply.contains("\"status\":403"),
        "{reply}"
    );
    ws.send_text(r#"{"type":"publish","topic":"b","data":"x","ref":2}"#);
    let reply = String::from_utf8(ws.recv_frame().payload).unwrap();
    assert!(
        reply.contains("\"status\":403") && reply.contains("\"ref\":2"),
        "{reply}"
    );
    ws.send_text(r#"{"type":"publish","topic":"a","data":"x","ref":3}"#);
    let reply = String::from_utf8(ws.recv_frame().payload).unwrap();
    assert!(
        reply.contains("\"type\":\"ack\"") && reply.contains("\"id\""),
        "{reply}"
    );
}

#[test]
fn an_expired_token_is_refused_to_the_second_unless_a_leeway_is_set() {
    // RFC 7519 §4.1.4: now "MUST be before" exp. Five seconds past it:
    // refused (401 Unauthorized), by default...
    let t = token(&format!(r#"{{"publish":["*"],"exp":{}}}"#, now() - 5));
    let auth = format!("Authorization: Bearer {t}\r\n");
    let server = TestServer::start(with_tokens());
    let r = publish_as(&server, "skew", &auth, "x");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("expired"), "{}", r.text());
    // ...and accepted where `--auth-leeway 30` allows for clock skew.
    let server = TestServer::start(Config {
        auth_leeway: Duration::from_secs(30),
        ..with_tokens()
    });
    assert_eq!(publish_as(&server, "skew", &auth, "x").status, 200);
    let t = token(&format!(r#"{{"publish":["*"],"exp":{}}}"#, now() - 60));
    let auth = format!("Authorization: Bearer {t}\r\n");
    assert_eq!(publish_as(&server, "skew", &auth, "x").status, 401);
}

#[test]
fn a_stream_ends_when_its_token_expires() {
    let server = TestServer::start(with_tokens());
    let t = token(&format!(r#"{{"subscribe":["e"],"exp":{}}}"#, now() + 2));
    let mut s = server.connect();
    write!(s, "GET /topics/e/sse?token={t} HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let t0 = std::time::Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("not ended: {e}; got {}", String::from_utf8_lossy(&got)),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.ends_with("0\r\n\r\n"),
        "{text}"
    );
}

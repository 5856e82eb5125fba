//! The HTTP/1.1 server over real sockets: routing, keep-alive, pipelining,
//! every limit answering its status, and slow clients cut off without
//! hurting anyone else.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pushwire::Config;
use support::*;

#[test]
fn healthz_index_404_405_head() {
    let server = TestServer::start(Config::default());
    let r = get(&server, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));

    let r = get(&server, "/");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));

    assert_eq!(get(&server, "/nope").status, 404);

    let r = post(&server, "/healthz", "");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));

    let r = request(
        &server,
        b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("2"));

    let r = request(
        &server,
        b"BREW /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 501);
    let r = request(
        &server,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 501);

    let r = request(
        &server,
        b"OPTIONS /topics/a/sse HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn head_is_a_get_without_content_on_every_path_and_the_next_response_still_frames() {
    // RFC 9110 §9.3.2: a HEAD answer is GET's head with no content; RFC
    // 9112 §6.3: it ends at its header section, so a body would be read
    // as the start of the next response on the connection.
    let server = TestServer::start(Config::default());
    for (path, status) in [
        ("/healthz", 200),
        ("/topics/h/messages", 200),
        ("/metrics", 200),
        // WebSocket paths: what a GET without an upgrade gets (RFC 9110
        // §9.1: GET and HEAD MUST be supported).
        ("/echo", 426),
        ("/ws", 426),
        ("/topics/h/ws", 426),
        // Engine.IO refuses HEAD, with its error's head alone.
        ("/socket.io/?EIO=4&transport=polling", 400),
        ("/socket.io/", 400),
    ] {
        let mut s = server.connect();
        write!(
            s,
            "HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, true);
        assert_eq!(r.status, status, "HEAD {path}");
        assert!(r.body.is_empty(), "HEAD {path}");
        let next = read_response(&mut s, &mut buf, false);
        assert_eq!(
            (next.status, next.text().as_str()),
            (200, "ok"),
            "after HEAD {path}"
        );
    }
}

#[test]
fn keep_alive_reuses_the_connection_and_http10_closes() {
    let server = TestServer::start(Config::default());
    let mut s = server.connect();
    let mut buf = Vec::new();
    for _ in 0..5 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut s, Duration::from_secs(2)));

    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, &mut buf, false).status, 200);
}

#[test]
fn a_hundred_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = TestServer::start(Config::default());
    let mut s = server.connect();
    let mut batch = Vec::new();
    for i in 0..100 {
        // Alternate endpoints so order is visible in the answers.
        if i % 2 == 0 {
            batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        } else {
            batch.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
        }
    }
    s.write_all(&batch).unwrap();
    let mut buf = Vec::new();
    for i in 0..100 {
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.status, if i % 2 == 0 { 200 } else { 404 }, "response {i}");
    }
    assert!(buf.is_empty());
}

/// Sends `req` and expects `status`, `Connection: close`, and the close.
fn refused(server: &TestServer, req: &[u8], status: u16) {
    let mut s = server.connect();
    s.write_all(req).unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(
        r.status,
        status,
        "for {:?}",
        String::from_utf8_lossy(&req[..req.len().min(80)])
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        closed_within(&mut s, Duration::from_secs(2)),
        "closed after {status}"
    );
}

#[test]
fn every_limit_answers_its_status_and_closes() {
    let cfg = Config {
        max_head_bytes: 4096,
        max_headers: 20,
        max_uri_bytes: 512,
        max_body_bytes: 1000,
        max_message_bytes: 1000,
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let big = "a".repeat(5000);
    refused(
        &server,
        format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        431,
    );
    let many: String = (0..30).map(|i| format!("X-{i}: v\r\n")).collect();
    refused(
        &server,
        format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        431,
    );
    let long = "a".repeat(600);
    refused(
        &server,
        format!("GET /{long} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        414,
    );
    refused(
        &server,
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
        413,
    );
    refused(
        &server,
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
    );
    refused(
        &server,
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n",
        413,
    );
    refused(&server, b"GET / HTTP/1.1\r\n\r\n", 400);
    refused(
        &server,
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    refused(
        &server,
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    );
    refused(&server, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    refused(
        &server,
        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
        400,
    );
    refused(&server, b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400);
    // The server still serves after all of that.
    assert_eq!(get(&server, "/healthz").status, 200);
}

#[test]
fn a_smuggled_request_after_a_framing_error_is_never_answered() {
    let server = TestServer::start(Config::default());
    let mut s = server.connect();
    s.write_all(
        b"POST /topics/a HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
}

#[test]
fn expect_100_continue() {
    let server = TestServer::start(Config::default());
    let mut s = server.connect();
    s.write_all(b"POST /topics/exp HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(r.status, 100);
    s.write_all(b"hello").unwrap();
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("{\"id\":\""));
}

#[test]
fn slowloris_is_cut_off_while_others_are_served() {
    let cfg = Config {
        header_read_timeout: Duration::from_millis(800),
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let mut slow = server.connect();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let started = Instant::now();
    // Meanwhile, others are served at once.
    for _ in 0..20 {
        assert_eq!(get(&server, "/healthz").status, 200);
    }
    // Trickling bytes does not extend the deadline.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
        let _ = slow.write_all(b"X");
    }
    let mut buf = Vec::new();
    let r = read_response(&mut slow, &mut buf, false);
    assert_eq!(r.status, 408);
    assert!(closed_within(&mut slow, Duration::from_secs(2)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let cfg = Config {
        keep_alive_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).status, 200);
    assert!(closed_within(&mut s, Duration::from_secs(2)));
}

#[test]
fn connections_over_the_limit_are_refused_politely() {
    let cfg = Config {
        max_connections: 3,
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let held: Vec<_> = (0..3).map(|_| server.connect()).collect();
    // Make sure the server has accepted those three.
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = server.connect();
    let mut all = Vec::new();
    let _ = extra.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 503"));
    drop(held);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(&server, "/healthz").status, 200);
}

#[test]
fn a_request_in_pieces_byte_by_byte() {
    let server = TestServer::start(Config::default());
    let mut s = server.connect();
    for b in b"POST /topics/bytes HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" {
        s.write_all(&[*b]).unwrap();
    }
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).status, 200);
}

/// A request and the client's FIN in one segment: the request is answered
/// and the connection closed at once, not at the keep-alive timeout (the
/// read that finds the data must go on to find the end).
#[test]
fn data_and_fin_in_one_edge_are_both_handled() {
    let server = TestServer::start(Config::default());
    let mut s = server.connect();
    s.write_all(b"POST /topics/fin HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nbye")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let t0 = Instant::now();
    s.read_to_end(&mut got).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "closed at once");
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{got:?}");
    let r = get(&server, "/topics/fin/messages");
    assert!(r.text().contains("\"data\":\"bye\""));
}

/// Stopping one server stops only that one.
#[test]
fn two_servers_in_one_process_stop_independently() {
    let a = TestServer::start(Config::default());
    let b = TestServer::start(Config::default());
    a.handle.shutdown();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(&b, "/healthz").status, 200);
    drop(a);
    assert_eq!(get(&b, "/healthz").status, 200);
}

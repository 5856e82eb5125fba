//! The listener with `--tls-cert`/`--tls-key`: HTTPS, SSE and WSS through
//! a real rustls client over real sockets, ALPN `http/1.1`, and a
//! plaintext request on the TLS port closed without harming others, and
//! stalled handshakes closed at the header deadline.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use pushwire::Config;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use support::*;

struct Tls {
    server: TestServer,
    root: CertificateDer<'static>,
    _dir: std::path::PathBuf,
}

fn tls_server() -> Tls {
    tls_server_with(Config::default())
}

fn tls_server_with(cfg: Config) -> Tls {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "pushwire-tls-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start(Config {
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..cfg
    });
    Tls {
        server,
        root: ck.cert.der().clone(),
        _dir: dir,
    }
}

fn client(t: &Tls) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(t.root.clone()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let sock = t.server.connect();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    StreamOwned::new(conn, sock)
}

/// Reads until `needle` has arrived (or the stream ends).
fn read_until(s: &mut impl Read, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn https_answers_with_alpn_http11() {
    let t = tls_server();
    let mut c = client(&t);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = read_until(&mut c, "\r\n\r\nok");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]), "never h2");
}

/// An SSE stream on `topic` over TLS, past its response head.
fn sse_subscriber(t: &Tls, topic: &str) -> StreamOwned<ClientConnection, TcpStream> {
    let mut sub = client(t);
    write!(
        sub,
        "GET /topics/{topic}/sse HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    read_until(&mut sub, "retry:");
    sub
}

/// Publishes `body` to `topic` over TLS and waits for the answer.
fn publish(t: &Tls, topic: &str, body: &str) {
    let mut p = client(t);
    write!(
        p,
        "POST /topics/{topic} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_until(&mut p, "{\"id\"");
}

#[test]
fn sse_and_a_large_response_over_tls() {
    let t = tls_server();
    let mut sub = sse_subscriber(&t, "s");
    let big = "x".repeat(300_000);
    publish(&t, "s", &big);
    let got = read_until(&mut sub, "xxx\n\n");
    assert!(got.matches('x').count() >= 300_000, "{} bytes", got.len());
}

#[test]
fn wss_echo() {
    let t = tls_server();
    let mut c = client(&t);
    c.write_all(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let head = read_until(&mut c, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A masked text frame "Hello" (RFC 6455 §5.7's example).
    c.write_all(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ])
    .unwrap();
    let mut frame = [0u8; 7];
    c.read_exact(&mut frame).unwrap();
    assert_eq!(&frame, b"\x81\x05Hello");
}

#[test]
fn a_plaintext_request_on_the_tls_port_is_closed_alone() {
    let t = tls_server();
    let mut ok = client(&t);
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(read_until(&mut ok, "\r\n\r\nok").starts_with("HTTP/1.1 200"));
    let mut plain = t.server.connect();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(closed_within(&mut plain, Duration::from_secs(5)));
    // The TLS client on its kept-alive connection is still served.
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(read_until(&mut ok, "\r\n\r\nok").starts_with("HTTP/1.1 200"));
}

/// A server whose request heads (TLS handshakes included) are due within
/// 800 ms, while idle keep-alive connections may stay a minute.
fn quick_head_server() -> Tls {
    tls_server_with(Config {
        header_read_timeout: Duration::from_millis(800),
        keep_alive_timeout: Duration::from_secs(60),
        ..Config::default()
    })
}

/// Whether the server closed `s` between `at_least` and 5 s from now.
fn closed_after(s: &mut TcpStream, at_least: Duration) -> bool {
    let start = std::time::Instant::now();
    let closed = closed_within(s, Duration::from_secs(5));
    closed && start.elapsed() >= at_least
}

#[test]
fn a_connection_that_never_starts_its_handshake_is_closed_at_the_header_deadline() {
    let t = quick_head_server();
    let mut ok = client(&t);
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(read_until(&mut ok, "\r\n\r\nok").starts_with("HTTP/1.1 200"));
    let mut silent = t.server.connect();
    assert!(closed_after(&mut silent, Duration::from_millis(500)));
    // The kept-alive TLS client has been idle as long: it is still served.
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert!(read_until(&mut ok, "\r\n\r\nok").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_stalled_client_hello_is_closed_at_the_header_deadline() {
    let t = quick_head_server();
    let mut stalled = t.server.connect();
    // RFC 8446 §5.1: a handshake record header (type 22, legacy version
    // 3.1, length 512), then the start of a ClientHello, then nothing.
    stalled
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .unwrap();
    assert!(closed_after(&mut stalled, Duration::from_millis(500)));
    let mut ok = client(&t);
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(read_until(&mut ok, "\r\n\r\nok").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_finished_handshake_without_a_request_is_closed_at_the_header_deadline() {
    let t = quick_head_server();
    let mut c = client(&t);
    while c.conn.is_handshaking() {
        c.conn.complete_io(&mut c.sock).unwrap();
    }
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    // The server's close_notify (Ok(0)) or its FIN, and nothing else.
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "closed after {waited:?}, not at the header deadline"
    );
}

#[test]
fn a_partial_head_after_the_handshake_gets_408_at_the_deadline_from_accept() {
    let t = quick_head_server();
    let mut c = client(&t);
    while c.conn.is_handshaking() {
        c.conn.complete_io(&mut c.sock).unwrap();
    }
    c.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    let text = read_until(&mut c, "\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
}

/// Reads raw records off `s`'s socket until `needle` is in the plaintext;
/// returns how many records carried it.
fn records_until(s: &mut StreamOwned<ClientConnection, TcpStream>, needle: &str) -> usize {
    let (mut raw, mut plain) = (Vec::new(), String::new());
    let mut buf = [0u8; 65536];
    while !plain.contains(needle) {
        let n = s.sock.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {plain:?}");
        raw.extend_from_slice(&buf[..n]);
        s.conn.read_tls(&mut &buf[..n]).unwrap();
        s.conn.process_new_packets().unwrap();
        let mut got = Vec::new();
        let _ = s.conn.reader().read_to_end(&mut got);
        plain.push_str(&String::from_utf8_lossy(&got));
    }
    let (mut records, mut at) = (0, 0);
    while at + 5 <= raw.len() {
        records += 1;
        at += 5 + u16::from_be_bytes([raw[at + 3], raw[at + 4]]) as usize;
    }
    records
}

/// Each TLS record costs both ends a header, a tag and an AEAD pass, so an
/// SSE event (chunk size, the shared encoded message, chunk end: three
/// slices of the output queue) arrives in one record, not one per slice.
#[test]
fn an_sse_event_is_one_record() {
    let t = tls_server();
    let mut sub = sse_subscriber(&t, "r");
    publish(&t, "r", "hello");
    let records = records_until(&mut sub, "data: hello\n\n");
    assert_eq!(records, 1, "{records} records for one event");
}

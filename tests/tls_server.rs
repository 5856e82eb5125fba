//! The listener with `--tls-cert`/`--tls-key`: HTTPS, SSE and WSS through
//! a real rustls client over real sockets, ALPN `http/1.1`, and a
//! plaintext request on the TLS port closed without harming others.

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
        ..Config::default()
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

#[test]
fn sse_and_a_large_response_over_tls() {
    let t = tls_server();
    let mut sub = client(&t);
    sub.write_all(b"GET /topics/s/sse HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    read_until(&mut sub, "retry:");
    let big = "x".repeat(300_000);
    let mut p = client(&t);
    write!(
        p,
        "POST /topics/s HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    )
    .unwrap();
    read_until(&mut p, "{\"id\"");
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

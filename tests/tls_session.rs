//! The sans-IO TLS session against a real rustls client, in memory: two
//! endpoints and the byte buffers between them, no sockets, no clock.

use std::io::{Read, Write};
use std::sync::Arc;

use pushwire::proto::tls::{server_config, TlsError, TlsSession};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore};

/// A self-signed ECDSA P-256 certificate for `localhost`: (cert PEM, key
/// PEM, cert DER).
fn self_signed() -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (
        ck.cert.pem(),
        ck.key_pair.serialize_pem(),
        ck.cert.der().clone(),
    )
}

/// The client and the server, and what each has received as plaintext.
struct Pair {
    client: ClientConnection,
    server: TlsSession,
    client_got: Vec<u8>,
    server_got: Vec<u8>,
    /// The first error the server reported.
    server_err: Option<TlsError>,
    /// Deliver the client's ciphertext one byte at a time.
    bytewise: bool,
}

impl Pair {
    fn new(versions: &[&'static rustls::SupportedProtocolVersion], alpn: &[&[u8]]) -> Pair {
        let (cert, key, der) = self_signed();
        let config = server_config(cert.as_bytes(), key.as_bytes()).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let mut client_config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        client_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
        client.set_buffer_limit(None);
        Pair {
            client,
            server: TlsSession::new(config).unwrap(),
            client_got: Vec::new(),
            server_got: Vec::new(),
            server_err: None,
            bytewise: false,
        }
    }

    /// Moves bytes both ways until neither side has anything to send.
    /// Returns the client's error, if it failed.
    fn run(&mut self) -> Result<(), rustls::Error> {
        for _ in 0..100 {
            let mut to_server = Vec::new();
            while self.client.wants_write() {
                self.client.write_tls(&mut to_server).unwrap();
            }
            if !to_server.is_empty() && self.server_err.is_none() {
                let chunks: Vec<&[u8]> = if self.bytewise {
                    to_server.chunks(1).collect()
                } else {
                    vec![&to_server]
                };
                for chunk in chunks {
                    if let Err(e) = self.server.handle_read(chunk) {
                        self.server_err = Some(e);
                        break;
                    }
                }
            }
            self.server.take_plaintext(&mut self.server_got);

            let mut to_client = Vec::new();
            self.server.poll_transmit(&mut to_client);
            let mut rest = &to_client[..];
            while !rest.is_empty() {
                self.client.read_tls(&mut rest).unwrap();
                self.client.process_new_packets()?;
                read_all(&mut self.client, &mut self.client_got);
            }
            if to_server.is_empty() && to_client.is_empty() {
                return Ok(());
            }
        }
        panic!("no quiescence after 100 rounds");
    }
}

fn read_all(client: &mut ClientConnection, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match client.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
}

fn handshake_and_talk(version: &'static rustls::SupportedProtocolVersion, expect: ProtocolVersion) {
    let mut p = Pair::new(&[version], &[b"h2", b"http/1.1"]);
    p.client
        .writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    p.run().unwrap();
    assert!(p.server.handshake_done());
    assert!(!p.client.is_handshaking());
    assert_eq!(p.server.protocol_version(), Some(expect));
    assert_eq!(p.client.protocol_version(), Some(expect));
    // The client offered h2 first; we never pick it.
    assert_eq!(p.server.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(p.client.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(p.server_got, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");

    p.server
        .write_plaintext(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    p.run().unwrap();
    assert_eq!(
        p.client_got,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    );
    assert!(!p.server.wants_close());
}

#[test]
fn tls13_handshake_alpn_and_data() {
    handshake_and_talk(&rustls::version::TLS13, ProtocolVersion::TLSv1_3);
}

#[test]
fn tls12_handshake_alpn_and_data() {
    handshake_and_talk(&rustls::version::TLS12, ProtocolVersion::TLSv1_2);
}

#[test]
fn a_client_without_alpn_is_served() {
    let mut p = Pair::new(&[&rustls::version::TLS13], &[]);
    p.run().unwrap();
    assert!(p.server.handshake_done());
    assert_eq!(p.server.alpn_protocol(), None);
}

#[test]
fn a_client_offering_only_h2_is_refused() {
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"h2"]);
    let client_err = p.run().unwrap_err();
    // RFC 7301 §3.2: no_application_protocol.
    assert!(
        matches!(
            client_err,
            rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
        ),
        "{client_err:?}"
    );
    assert!(matches!(p.server_err, Some(TlsError::Protocol(_))));
    assert!(p.server.wants_close());
}

#[test]
fn large_bodies_both_ways_and_bytewise_delivery() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"http/1.1"]);
    p.bytewise = true;
    p.run().unwrap();
    p.client.writer().write_all(&big[..20_000]).unwrap();
    p.run().unwrap();
    assert_eq!(p.server_got, &big[..20_000]);

    p.bytewise = false;
    p.client.writer().write_all(&big).unwrap();
    p.server.write_plaintext(&big);
    p.run().unwrap();
    assert_eq!(&p.server_got[20_000..], &big[..]);
    assert_eq!(p.client_got, big);
}

#[test]
fn plaintext_written_before_the_handshake_is_sent_after_it() {
    let mut p = Pair::new(&[&rustls::version::TLS12], &[b"http/1.1"]);
    p.server.write_plaintext(b"early");
    p.run().unwrap();
    assert_eq!(p.client_got, b"early");
}

#[test]
fn close_notify_both_ways() {
    // The client closes: the server sees it and wants the socket closed.
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"http/1.1"]);
    p.run().unwrap();
    p.client.writer().write_all(b"bye").unwrap();
    p.client.send_close_notify();
    p.run().unwrap();
    assert_eq!(p.server_got, b"bye");
    assert!(p.server.wants_close());
    assert!(p.server_err.is_none());

    // The server closes: the client reads a clean end of stream.
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"http/1.1"]);
    p.run().unwrap();
    p.server.write_plaintext(b"last words");
    p.server.close_notify();
    p.run().unwrap();
    assert_eq!(p.client_got, b"last words");
    let state = p.client.process_new_packets().unwrap();
    assert!(state.peer_has_closed());
    let mut buf = [0u8; 8];
    assert_eq!(p.client.reader().read(&mut buf).unwrap(), 0);
}

fn fresh_session() -> TlsSession {
    let (cert, key, _) = self_signed();
    TlsSession::new(server_config(cert.as_bytes(), key.as_bytes()).unwrap()).unwrap()
}

#[test]
fn plaintext_http_on_the_tls_port_is_an_error() {
    let mut s = fresh_session();
    let err = s
        .handle_read(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap_err();
    assert!(matches!(err, TlsError::PlaintextHttp), "{err:?}");
    assert!(s.wants_close());
    let mut out = Vec::new();
    s.take_plaintext(&mut out);
    assert!(out.is_empty(), "nothing of it reaches the HTTP session");

    // Only that connection: another session on the same config is fine.
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"http/1.1"]);
    p.run().unwrap();
    assert!(p.server.handshake_done());
}

#[test]
fn garbage_is_an_error_with_an_alert() {
    for garbage in [
        &b"\x00\x01\x02\x03\x04\x05\x06\x07"[..],
        // A handshake record header claiming 64 KiB (RFC 8446 §5.1: at
        // most 2^14 + 256).
        b"\x16\x03\x01\xff\xff\x01\x00",
        // A handshake record holding a message that is not ClientHello.
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",
    ] {
        let mut s = fresh_session();
        let err = s.handle_read(garbage).unwrap_err();
        assert!(
            matches!(err, TlsError::Protocol(_)),
            "{garbage:02x?}: {err:?}"
        );
        assert!(s.wants_close());
        let mut alert = Vec::new();
        s.poll_transmit(&mut alert);
        // RFC 8446 §5.1: an alert record is content type 21.
        assert_eq!(alert.first(), Some(&21), "{garbage:02x?}: {alert:02x?}");
    }
}

/// The records in `bytes`, as (content type, length) (RFC 8446 §5.1).
fn records(mut bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let len = 5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        out.push((bytes[0], len));
        bytes = &bytes[len.min(bytes.len())..];
    }
    out
}

#[test]
fn a_refusal_sends_its_flight_then_one_alert_whatever_follows_in_the_read() {
    // A ClientHello offering only h2, and garbage after it in the same
    // read: the server's answer so far, then the alert, and nothing of
    // the garbage (rustls must not be driven over it after failing).
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"h2"]);
    let mut hello = Vec::new();
    p.client.write_tls(&mut hello).unwrap();
    hello.extend_from_slice(b"\x00\x01\x02\x03\x04\x05\x06\x07");
    let err = p.server.handle_read(&hello).unwrap_err();
    assert!(matches!(err, TlsError::Protocol(_)), "{err:?}");
    assert!(p.server.wants_close());
    let mut out = Vec::new();
    p.server.poll_transmit(&mut out);
    // RFC 8446 §5.1, §5.2: after the ServerHello the alert is encrypted,
    // 24 bytes of type 23 (a plaintext one is 7 bytes of type 21).
    let is_alert = |r: &(u8, usize)| *r == (21, 7) || *r == (23, 24);
    let recs = records(&out);
    assert_eq!(recs.first().map(|r| r.0), Some(22), "{recs:?}");
    assert!(recs.last().is_some_and(is_alert), "{recs:?}");
    assert_eq!(recs.iter().filter(|r| is_alert(r)).count(), 1, "{recs:?}");
    // Nothing more is encrypted or sent after the failure.
    p.server.write_plaintext(b"late");
    p.server.close_notify();
    assert!(!p.server.wants_write());
}

#[test]
fn a_handshake_message_split_across_records_then_a_bad_record() {
    // A ClientHello whose first record carries only part of it, then a
    // record of an unknown type: rustls still holds the first part when
    // it fails, and the alert must be had without a panic.
    let mut p = Pair::new(&[&rustls::version::TLS13], &[b"http/1.1"]);
    let mut hello = Vec::new();
    p.client.write_tls(&mut hello).unwrap();
    let body = &hello[5..];
    let mut input = vec![22, 3, 1, 0, 40];
    input.extend_from_slice(&body[..40]);
    input.extend_from_slice(b"\x07\x03\x03\x00\x01\x00");
    for whole in [true, false] {
        let mut s = fresh_session();
        let result = if whole {
            s.handle_read(&input)
        } else {
            input.chunks(3).try_for_each(|c| s.handle_read(c))
        };
        assert!(matches!(result, Err(TlsError::Protocol(_))), "{result:?}");
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert_eq!(records(&out), [(21, 7)], "whole: {whole}");
        s.close_notify();
        s.write_plaintext(b"x");
        assert!(!s.wants_write());
    }
}

#[test]
fn an_incomplete_record_waits_for_more() {
    let mut s = fresh_session();
    s.handle_read(b"\x16\x03\x01\x00").unwrap();
    assert!(!s.wants_close());
    assert!(!s.handshake_done());
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.is_empty());
}

#[test]
fn config_errors() {
    let (cert, key, _) = self_signed();
    assert!(matches!(
        server_config(b"", key.as_bytes()),
        Err(TlsError::CertificatePem(_))
    ));
    assert!(matches!(
        server_config(cert.as_bytes(), b"not a key"),
        Err(TlsError::KeyPem(_))
    ));
    // Another certificate's key.
    let (_, other_key, _) = self_signed();
    assert!(matches!(
        server_config(cert.as_bytes(), other_key.as_bytes()),
        Err(TlsError::Config(_))
    ));
    // The key where the certificate belongs.
    assert!(matches!(
        server_config(key.as_bytes(), key.as_bytes()),
        Err(TlsError::CertificatePem(_))
    ));
}

// ---- the first request's deadline, in simulated time ----------------------
//
// The core never sees a TLS handshake: the driver asks it to bound the
// first request (`Node::bound_first_request`), and the handshake's time
// counts against it, as the wait for a head would.

mod first_request {
    use std::time::Duration;

    use pushwire::node::sim::Harness;
    use pushwire::Config;

    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    fn harness() -> Harness {
        Harness::new(Config {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            ..Config::default()
        })
    }

    fn bound(h: &mut Harness) -> usize {
        let id = h.connect();
        let now = h.now;
        h.node.bound_first_request(id, now);
        h.settle();
        id
    }

    #[test]
    fn a_silent_connection_closes_at_the_header_deadline_not_the_keep_alive() {
        let mut h = harness();
        let tls = bound(&mut h);
        let plain = h.connect();
        h.advance(Duration::from_millis(9_999));
        assert!(!h.closed(tls));
        h.advance(Duration::from_millis(1));
        assert!(h.closed(tls), "closed at exactly 10 s");
        assert_eq!(h.text(tls), "", "closed silently: nothing was asked");
        // A connection the driver did not bound keeps the keep-alive clock.
        h.advance(Duration::from_secs(49));
        assert!(!h.closed(plain));
        h.advance(Duration::from_secs(1));
        assert!(h.closed(plain));
    }

    #[test]
    fn a_head_begun_late_is_408_at_the_deadline_counted_from_the_accept() {
        let mut h = harness();
        let c = bound(&mut h);
        // The handshake took 6 s; then a head starts and stalls. Its own
        // deadline (10 s from its first byte) would be at 16 s.
        h.advance(Duration::from_secs(6));
        h.send(c, b"GET /healthz HTTP/1.1\r\nHo");
        h.advance(Duration::from_millis(3_999));
        assert!(!h.closed(c));
        h.advance(Duration::from_millis(1));
        let t = h.text(c);
        assert!(t.starts_with("HTTP/1.1 408 "), "{t}");
        assert!(h.closed(c));
    }

    #[test]
    fn after_the_first_request_the_keep_alive_clock_rules() {
        let mut h = harness();
        let c = bound(&mut h);
        h.advance(Duration::from_secs(9));
        h.send(c, GET);
        assert!(h.take_text(c).starts_with("HTTP/1.1 200 OK"));
        h.advance(Duration::from_secs(59));
        assert!(!h.closed(c), "idle 59 s after its answer: still open");
        h.advance(Duration::from_secs(1));
        assert!(h.closed(c));
    }

    #[test]
    fn a_slow_first_body_is_bound_by_the_body_deadline_only() {
        let mut h = harness();
        let c = bound(&mut h);
        h.send(
            c,
            b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        );
        h.advance(Duration::from_secs(20));
        assert!(!h.closed(c), "the head came in time; the body has 60 s");
        h.send(c, b"cde");
        let t = h.take_text(c);
        assert!(t.starts_with("HTTP/1.1 200 OK"), "{t}");
    }
}

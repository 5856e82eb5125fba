//! Properties of the opening-handshake validation (`wire/ws_handshake.rs`).
//!
//! Any head bytes — parsed by the real head parser when it accepts them,
//! and by the module's naive line splitter otherwise, so that `validate`
//! also sees heads the real parser would never let through — and:
//!
//! 1. `validate` never panics, under an open and a restrictive policy.
//! 2. Accepted ⇒ the request really was a version-13 GET/1.1 upgrade: the
//!    tokens are there, there is exactly one key and it decodes (by an
//!    independent decoder here) to 16 bytes, the accept value is
//!    `accept_key` of it, the chosen subprotocol is one both sides named,
//!    the origin is allowed, and the 101 response is well formed.
//! 3. Refused ⇒ a status in {400, 403, 405, 426}, with `Upgrade` on every
//!    426, and "no Upgrade field" exactly when `is_upgrade_request` says
//!    so.
#![allow(dead_code)]

use pushwire::wire::http1::{trim_ows, HeadLimits, HeadParser, Method, RequestHead, Version};
use pushwire::wire::ws_handshake::{
    accept_key, is_upgrade_request, split_head_for_tests, validate, write_accept, HandshakeError,
    HandshakePolicy,
};

pub fn check(data: &[u8]) {
    let mut head = RequestHead::default();
    let parsed = matches!(
        HeadParser::new().parse(data, &HeadLimits::default(), &mut head),
        Ok(true)
    );
    let head = if parsed {
        Some(head)
    } else {
        split_head_for_tests(data)
    };
    let Some(head) = head else {
        return;
    };
    let none: Vec<String> = Vec::new();
    let protos: Vec<String> = vec!["chat".into(), "superchat".into()];
    let origins: Vec<String> = vec!["http://example.com".into()];
    for policy in [
        HandshakePolicy {
            subprotocols: &none,
            allowed_origins: &none,
        },
        HandshakePolicy {
            subprotocols: &protos,
            allowed_origins: &origins,
        },
    ] {
        match validate(&head, data, &policy) {
            Ok(accept) => accepted(&head, data, &policy, &accept),
            Err(e) => refused(&head, data, e),
        }
    }
}

fn accepted(
    head: &RequestHead,
    buf: &[u8],
    policy: &HandshakePolicy,
    accept: &pushwire::wire::ws_handshake::Accept,
) {
    assert_eq!(head.method, Method::Get);
    assert_eq!(head.version, Version::Http11);
    assert!(is_upgrade_request(head, buf));
    assert!(head.has_token(buf, "connection", "upgrade"));
    let keys: Vec<&[u8]> = head.headers_named(buf, "sec-websocket-key").collect();
    assert_eq!(keys.len(), 1);
    let key = trim_ows(keys[0]);
    assert_eq!(base64_decode(key).map(|k| k.len()), Some(16), "{key:?}");
    assert_eq!(accept.accept_key, accept_key(key));
    assert_eq!(accept.accept_key.len(), 28);
    let versions: Vec<&[u8]> = head.headers_named(buf, "sec-websocket-version").collect();
    assert_eq!(versions.len(), 1);
    assert_eq!(trim_ows(versions[0]), b"13");
    if let Some(p) = &accept.protocol {
        assert!(policy.subprotocols.contains(p));
        let offered = head
            .headers_named(buf, "sec-websocket-protocol")
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| trim_ows(t) == p.as_bytes());
        assert!(offered, "{p} was not offered");
    }
    if let (false, Some(o)) = (
        policy.allowed_origins.is_empty(),
        head.header(buf, "origin"),
    ) {
        assert!(policy
            .allowed_origins
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(trim_ows(o))));
    }
    let mut out = Vec::new();
    write_accept(&mut out, accept);
    assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(out.ends_with(b"\r\n\r\n"));
    let text = std::str::from_utf8(&out).expect("ASCII response");
    assert_eq!(text.matches("\r\n\r\n").count(), 1);
    assert!(text.contains(&format!("Sec-WebSocket-Accept: {}\r\n", accept.accept_key)));
}

fn refused(head: &RequestHead, buf: &[u8], e: HandshakeError) {
    assert!(matches!(e.status(), 400 | 403 | 405 | 426), "{e:?}");
    if e.status() == 426 {
        assert!(e.extra_headers().iter().any(|(n, _)| *n == "Upgrade"));
    }
    assert_eq!(
        e == HandshakeError::UpgradeRequired,
        !is_upgrade_request(head, buf)
    );
}

/// Standard base64 with padding, strictly: the oracle for the key check.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if s.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    for (i, q) in s.chunks(4).enumerate() {
        let last = i == s.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Canonical: the bits past the data are zero.
        if pad > 0 && bytes[3 - pad..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

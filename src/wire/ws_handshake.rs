//! The WebSocket opening handshake, server side (RFC 6455 §4.2).
//!
//! Before working on this file, read RFC 6455 §4.1 (what a client sends),
//! §4.2.1 (what the server must check), §4.2.2 (the 101 answer) and §4.4
//! (version negotiation), then RFC 9110 §7.8 (Upgrade) and §15.5.22 (426).
//!
//! The request head has already been parsed by `wire::http1`; here we only
//! read its fields. [`validate`] either accepts (the key to prove we read
//! the request, and the chosen subprotocol) or says which rule the request
//! broke and which HTTP status to answer with. The one extension we
//! negotiate is permessage-deflate (RFC 7692), through
//! [`validate_with_deflate`] and `wire/ws_extensions.rs`; every other
//! offer is declined by leaving it out of the answer (§9.1).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use thiserror::Error;

use crate::wire::http1::{trim_ows, Method, RequestHead, Version};
use crate::wire::ws_extensions::{self, DeflateParams, DeflatePolicy};

/// RFC 6455 §1.3: the GUID a server appends to the client's key.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the server is willing to agree to.
#[derive(Clone, Copy, Debug)]
pub struct HandshakePolicy<'a> {
    /// Subprotocols the server speaks. The first of the *client's* list
    /// that is here is chosen.
    pub subprotocols: &'a [String],
    /// Origins allowed to open a WebSocket; empty = any.
    pub allowed_origins: &'a [String],
}

/// An accepted handshake: what the 101 response must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The `Sec-WebSocket-Protocol` value, if one was agreed.
    pub protocol: Option<String>,
    /// permessage-deflate, if an offer was accepted: the answer's
    /// `Sec-WebSocket-Extensions` and the session's parameters.
    pub deflate: Option<DeflateParams>,
}

/// A request the server refuses to upgrade, named after the rule it
/// breaks. [`status`](HandshakeError::status) is the HTTP answer, with
/// [`extra_headers`](HandshakeError::extra_headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// A GET without `Upgrade: websocket` on a WebSocket-only resource.
    #[error("this resource speaks only WebSocket: send Upgrade: websocket")]
    UpgradeRequired,
    /// RFC 6455 §4.1: "The method of the request MUST be GET".
    #[error("a WebSocket handshake must use GET")]
    MethodNotGet,
    /// RFC 6455 §4.1: "the HTTP version MUST be at least 1.1".
    #[error("a WebSocket handshake needs HTTP/1.1")]
    HttpVersionTooOld,
    /// RFC 6455 §4.2.1 item 4: a `Connection` field with the `Upgrade`
    /// token.
    #[error("missing Connection: Upgrade")]
    MissingConnectionUpgrade,
    /// RFC 6455 §4.2.1 item 5: a `Sec-WebSocket-Key` field.
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    /// RFC 6455 §4.1: the key "MUST be a nonce consisting of a randomly
    /// selected 16-byte value that has been base64-encoded". A field that
    /// occurs twice is refused too: it is not a list (§11.3.1).
    #[error("Sec-WebSocket-Key is not the base64 of 16 bytes")]
    InvalidKey,
    /// RFC 6455 §4.2.2 / §4.4: a version other than 13 (or none) is
    /// answered 426 with the version we speak.
    #[error("unsupported WebSocket version: this server speaks 13")]
    UnsupportedVersion,
    /// RFC 6455 §4.2.2: "If the server does not wish to accept this
    /// connection, it MUST return an appropriate HTTP error code" — 403
    /// for an Origin outside the allow list (cross-site WebSocket
    /// hijacking, §10.2).
    #[error("origin not allowed")]
    OriginNotAllowed,
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UpgradeRequired => 426,
            HandshakeError::MethodNotGet => 405,
            HandshakeError::HttpVersionTooOld => 400,
            HandshakeError::MissingConnectionUpgrade => 400,
            HandshakeError::MissingKey => 400,
            HandshakeError::InvalidKey => 400,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginNotAllowed => 403,
        }
    }

    /// Header fields the error response must carry.
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            // RFC 9110 §15.5.22: a 426 "MUST send an Upgrade header field
            // to indicate the required protocol(s)".
            HandshakeError::UpgradeRequired => {
                &[("Upgrade", "websocket"), ("Connection", "Upgrade")]
            }
            // RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field".
            HandshakeError::MethodNotGet => &[("Allow", "GET")],
            // RFC 6455 §4.2.2: "... MUST ... send a |Sec-WebSocket-Version|
            // header field indicating the version(s) the server is capable
            // of understanding".
            HandshakeError::UnsupportedVersion => &[
                ("Sec-WebSocket-Version", "13"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
            ],
            _ => &[],
        }
    }
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2 item 5.4):
/// base64(SHA-1(key ++ GUID)). The key is used as sent, not decoded.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(client_key);
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// Whether the request asks for a WebSocket at all: an `Upgrade` field
/// listing `websocket` (RFC 9110 §7.8: a comma list, case-insensitive).
pub fn is_upgrade_request(head: &RequestHead, buf: &[u8]) -> bool {
    head.has_token(buf, "upgrade", "websocket")
}

/// Checks an opening handshake (RFC 6455 §4.2.1) against `policy`.
///
/// The checks run in the order a client most needs to hear about: first
/// whether this is a WebSocket request at all, then the HTTP framing of
/// the upgrade, then the key and version, and last the policy (Origin),
/// so that a refused origin learns nothing about the rest.
pub fn validate(
    head: &RequestHead,
    buf: &[u8],
    policy: &HandshakePolicy,
) -> Result<Accept, HandshakeError> {
    validate_with_deflate(head, buf, policy, None)
}

/// [`validate`], and with `deflate` also the permessage-deflate
/// negotiation (RFC 7692 §5): the first acceptable offer of the request's
/// `Sec-WebSocket-Extensions` fields. A header that breaks the grammar of
/// RFC 6455 §9.1 is not an error of the handshake: the connection is
/// accepted without extensions (the client learns it from the answer).
pub fn validate_with_deflate(
    head: &RequestHead,
    buf: &[u8],
    policy: &HandshakePolicy,
    deflate: Option<&DeflatePolicy>,
) -> Result<Accept, HandshakeError> {
    // RFC 6455 §4.2.1 item 3: "An |Upgrade| header field containing the
    // value "websocket", treated as an ASCII case-insensitive value."
    if !is_upgrade_request(head, buf) {
        return Err(HandshakeError::UpgradeRequired);
    }
    // RFC 6455 §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if head.method != Method::Get {
        return Err(HandshakeError::MethodNotGet);
    }
    if head.version != Version::Http11 {
        return Err(HandshakeError::HttpVersionTooOld);
    }
    // RFC 6455 §4.2.1 item 4: "A |Connection| header field that includes
    // the token "Upgrade", treated as an ASCII case-insensitive value."
    if !head.has_token(buf, "connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }

    // RFC 6455 §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a
    // base64-encoded value that, when decoded, is 16 bytes in length."
    let mut keys = head.headers_named(buf, "sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => trim_ows(k),
        (None, _) => return Err(HandshakeError::MissingKey),
        (Some(_), Some(_)) => return Err(HandshakeError::InvalidKey),
    };
    if !is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }

    // RFC 6455 §4.2.1 item 6: "A |Sec-WebSocket-Version| header field,
    // with a value of 13." Anything else, a repeated field included, gets
    // the 426 that tells the client which version to use (§4.4).
    let mut versions = head.headers_named(buf, "sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if trim_ows(v) == b"13" => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }

    // RFC 6455 §10.2: the Origin field protects against a page on another
    // site opening a socket with the user's cookies. Only browsers send
    // it, and a browser always does; a request without it is a non-browser
    // client, which the check could not stop anyway (it can send any
    // Origin it likes), so it is let through.
    if !policy.allowed_origins.is_empty() {
        if let Some(origin) = head.header(buf, "origin") {
            let origin = trim_ows(origin);
            // RFC 6454 §6.2: serialised origins are compared as strings;
            // scheme and host are case-insensitive, so we compare ASCII
            // case-insensitively.
            let allowed = policy
                .allowed_origins
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin));
            if !allowed {
                return Err(HandshakeError::OriginNotAllowed);
            }
        }
    }

    let deflate = deflate.and_then(|d| {
        let values = head.headers_named(buf, "sec-websocket-extensions");
        ws_extensions::negotiate(values, d).ok().flatten()
    });
    Ok(Accept {
        accept_key: accept_key(key),
        protocol: choose_subprotocol(head, buf, policy.subprotocols),
        deflate,
    })
}

/// RFC 6455 §4.1 / §11.3.4: the client lists subprotocols "in order of
/// preference", in one or more `Sec-WebSocket-Protocol` fields; we pick
/// the first the server speaks. Names are tokens compared exactly
/// (§4.2.2 item 5.4: "a value ... from the list provided by the client").
fn choose_subprotocol(head: &RequestHead, buf: &[u8], ours: &[String]) -> Option<String> {
    if ours.is_empty() {
        return None;
    }
    head.headers_named(buf, "sec-websocket-protocol")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim_ows)
        .find_map(|offered| ours.iter().find(|p| p.as_bytes() == offered))
        .cloned()
}

/// Whether `key` is the canonical base64 of exactly 16 bytes: 22 symbols
/// and `==`. Checking the length first bounds the decoding work.
fn is_valid_key(key: &[u8]) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// Appends the 101 response (RFC 6455 §4.2.2 item 5) to `out`.
pub fn write_accept(out: &mut Vec<u8>, accept: &Accept) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\n\
          Upgrade: websocket\r\n\
          Connection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.accept_key.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(p) = &accept.protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(d) = &accept.deflate {
        // RFC 7692 §5: the accepted offer, with the parameters we chose.
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        ws_extensions::write_answer(out, d);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A deliberately naive request-head splitter for tests and fuzzing only:
/// lines on CRLF, the request line on spaces, fields on the first colon.
/// It accepts far more than the real parser; that is the point when
/// fuzzing [`validate`] (it must hold up whatever the head contains).
#[doc(hidden)]
pub fn split_head_for_tests(buf: &[u8]) -> Option<RequestHead> {
    use crate::wire::http1::{HeaderSpan, Span};
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let mut head = RequestHead {
        len: end + 4,
        ..RequestHead::default()
    };
    let mut at = 0;
    for (i, line) in buf[..end].split(|&b| b == b'\n').enumerate() {
        let start = at;
        at += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i == 0 {
            let mut parts = line.splitn(3, |&b| b == b' ');
            let method = parts.next()?;
            let target = parts.next()?;
            let version = parts.next()?;
            head.method = Method::from_bytes(method);
            head.method_span = Span::new(start, start + method.len());
            let t0 = start + method.len() + 1;
            head.target = Span::new(t0, t0 + target.len());
            head.version = match version {
                b"HTTP/1.1" => Version::Http11,
                b"HTTP/1.0" => Version::Http10,
                _ => return None,
            };
        } else {
            let colon = line.iter().position(|&b| b == b':')?;
            let raw = &line[colon + 1..];
            let value = trim_ows(raw);
            let lead = raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
            let v0 = start + colon + 1 + lead;
            head.headers.push(HeaderSpan {
                name: Span::new(start, start + colon),
                value: Span::new(v0, v0 + value.len()),
            });
        }
    }
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3's example request.
    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn check(req: &[u8], protos: &[&str], origins: &[&str]) -> Result<Accept, HandshakeError> {
        let head = split_head_for_tests(req).expect("test head");
        let subprotocols: Vec<String> = protos.iter().map(|s| s.to_string()).collect();
        let allowed_origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        validate(
            &head,
            req,
            &HandshakePolicy {
                subprotocols: &subprotocols,
                allowed_origins: &allowed_origins,
            },
        )
    }

    fn edit(from: &str, to: &str) -> Vec<u8> {
        let s = std::str::from_utf8(RFC_REQUEST).unwrap();
        assert!(s.contains(from), "{from}");
        s.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn rfc_accept_key() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc_request_accepted() {
        let accept = check(RFC_REQUEST, &["superchat", "chat"], &[]).unwrap();
        assert_eq!(accept.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        // The client's order wins: it listed chat first.
        assert_eq!(accept.protocol.as_deref(), Some("chat"));
        let mut out = Vec::new();
        write_accept(&mut out, &accept);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\n\
              Upgrade: websocket\r\n\
              Connection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              Sec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn subprotocol_choice() {
        assert_eq!(check(RFC_REQUEST, &[], &[]).unwrap().protocol, None);
        assert_eq!(check(RFC_REQUEST, &["mqtt"], &[]).unwrap().protocol, None);
        assert_eq!(
            check(RFC_REQUEST, &["superchat"], &[])
                .unwrap()
                .protocol
                .as_deref(),
            Some("superchat")
        );
        // Subprotocol names are compared exactly.
        assert_eq!(check(RFC_REQUEST, &["Chat"], &[]).unwrap().protocol, None);
        // Several fields are one list, in order.
        let req = edit(
            "Sec-WebSocket-Protocol: chat, superchat\r\n",
            "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b , chat\r\n",
        );
        assert_eq!(
            check(&req, &["chat", "b"], &[])
                .unwrap()
                .protocol
                .as_deref(),
            Some("b")
        );
        let mut out = Vec::new();
        write_accept(&mut out, &check(RFC_REQUEST, &[], &[]).unwrap());
        assert!(!out.windows(23).any(|w| w == b"Sec-WebSocket-Protocol:"));
    }

    #[test]
    fn tokens_are_case_insensitive_lists() {
        let req = edit("Upgrade: websocket", "upgrade: WebSocket");
        let req = String::from_utf8(req).unwrap().replacen(
            "Connection: Upgrade",
            "connection: keep-alive, UPGRADE",
            1,
        );
        assert!(check(req.as_bytes(), &[], &[]).is_ok());
        let req = edit("Upgrade: websocket", "Upgrade: h2c, websocket");
        assert!(check(&req, &[], &[]).is_ok());
    }

    #[test]
    fn refusals() {
        use HandshakeError::*;
        let cases: &[(&str, &str, HandshakeError)] = &[
            ("Upgrade: websocket\r\n", "", UpgradeRequired),
            ("Upgrade: websocket", "Upgrade: websockets", UpgradeRequired),
            ("GET /chat", "POST /chat", MethodNotGet),
            ("HTTP/1.1", "HTTP/1.0", HttpVersionTooOld),
            ("Connection: Upgrade", "Connection: keep-alive", MissingConnectionUpgrade),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", MissingKey),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", InvalidKey),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", InvalidKey),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZXMh", InvalidKey),
            ("dGhlIHNhbXBsZSBub25jZQ==", "x", InvalidKey),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                InvalidKey,
            ),
            ("Sec-WebSocket-Version: 13\r\n", "", UnsupportedVersion),
            ("Version: 13", "Version: 8", UnsupportedVersion),
            ("Version: 13", "Version: 13, 8", UnsupportedVersion),
        ];
        for (from, to, want) in cases {
            let req = edit(from, to);
            assert_eq!(check(&req, &[], &[]), Err(*want), "{from:?} -> {to:?}");
        }
        assert_eq!(UpgradeRequired.status(), 426);
        assert!(UpgradeRequired
            .extra_headers()
            .contains(&("Upgrade", "websocket")));
        assert_eq!(UnsupportedVersion.status(), 426);
        assert!(UnsupportedVersion
            .extra_headers()
            .contains(&("Sec-WebSocket-Version", "13")));
        assert_eq!(InvalidKey.status(), 400);
        assert_eq!(MethodNotGet.status(), 405);
    }

    #[test]
    fn origin_policy() {
        let allowed = ["http://example.com"];
        assert!(check(RFC_REQUEST, &[], &allowed).is_ok());
        assert!(check(RFC_REQUEST, &[], &["HTTP://EXAMPLE.COM"]).is_ok());
        let err = check(RFC_REQUEST, &[], &["https://example.com"]).unwrap_err();
        assert_eq!((err, err.status()), (HandshakeError::OriginNotAllowed, 403));
        // No Origin: not a browser, let through.
        let req = edit("Origin: http://example.com\r\n", "");
        assert!(check(&req, &[], &["https://example.com"]).is_ok());
    }

    #[test]
    fn permessage_deflate_is_negotiated() {
        let req = edit(
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: x-unknown, permessage-deflate; bogus\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        );
        let head = split_head_for_tests(&req).unwrap();
        let policy = HandshakePolicy {
            subprotocols: &[],
            allowed_origins: &[],
        };
        let deflate = DeflatePolicy {
            server_max_window_bits: 15,
            client_max_window_bits: 10,
            client_no_context_takeover: true,
        };
        let accept = validate_with_deflate(&head, &req, &policy, Some(&deflate)).unwrap();
        let mut out = Vec::new();
        write_accept(&mut out, &accept);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover; client_max_window_bits=10\r\n\r\n"
            ),
            "{text}"
        );
        // Without a policy, or with a broken header: no extension.
        assert_eq!(validate(&head, &req, &policy).unwrap().deflate, None);
        let broken = edit(
            "Sec-WebSocket-Version: 13\r\n",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate;\r\n",
        );
        let head = split_head_for_tests(&broken).unwrap();
        let accept = validate_with_deflate(&head, &broken, &policy, Some(&deflate)).unwrap();
        assert_eq!(accept.deflate, None);
    }

    #[test]
    fn plain_get_is_not_an_upgrade() {
        let req = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = split_head_for_tests(req).unwrap();
        assert!(!is_upgrade_request(&head, req));
        assert!(is_upgrade_request(
            &split_head_for_tests(RFC_REQUEST).unwrap(),
            RFC_REQUEST
        ));
    }
}

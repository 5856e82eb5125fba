//! Property of the sans-IO TLS session: a fresh server session fed the
//! input whole, one byte at a time, or in pieces the input chooses,
//! reaches the same verdict every way — the same error (or none), the same
//! handshake and close state, the same plaintext — and never panics.
//!
//! Input: byte 0 is a piece length (0: one byte at a time), the rest is
//! what a client sends. Seeds are real ClientHellos, so the fuzzer starts
//! inside rustls' handshake rather than at its record header check.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use pushwire::proto::tls::{server_config, ServerConfig, TlsSession};

/// A self-signed ECDSA P-256 certificate for `localhost`, good until 2126:
/// only the server's side of the handshake is exercised, so any will do.
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUF/No3KWzhstNEpG7mrcz6o/Eg/QwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMTIzNDAzN1oYDzIxMjYxMTA3
MjM0MDM3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAT3wqZTBUuMF2fCrT4bnLf/lhUWE/i3A3UybIKB8ZENLhqmxJb458HL
/+BZ7nG43c3Cejh5uJTtSuIE/60o8jeDo1MwUTAdBgNVHQ4EFgQU6aMXsyjrPCwh
6HvdKcj3PP/nwDMwHwYDVR0jBBgwFoAU6aMXsyjrPCwh6HvdKcj3PP/nwDMwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA3oXksPGlWPvpLM4K786K
8VHRz7XMEbHtM7lHNw4JQMACIGu8TMOFWH0tWtb/Hwjg1s5oq8+u2zh9m8Aui5dt
jRHY
-----END CERTIFICATE-----
";

const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgE55zH50xLfBjQNft
VkYSVM3ZzdCLzPgOJol5Cvz35vWhRANCAAT3wqZTBUuMF2fCrT4bnLf/lhUWE/i3
A3UybIKB8ZENLhqmxJb458HL/+BZ7nG43c3Cejh5uJTtSuIE/60o8jeD
-----END PRIVATE KEY-----
";

fn config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(
            || match server_config(CERT_PEM.as_bytes(), KEY_PEM.as_bytes()) {
                Ok(c) => c,
                Err(e) => panic!("the built-in certificate: {e}"),
            },
        )
        .clone()
}

/// What a session ends up as: its first error, handshake and close state,
/// and the plaintext it produced.
#[derive(Debug, PartialEq)]
struct Verdict {
    error: Option<String>,
    handshake_done: bool,
    wants_close: bool,
    plaintext: Vec<u8>,
}

fn feed<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Verdict {
    let mut s = match TlsSession::new(config()) {
        Ok(s) => s,
        Err(e) => panic!("a fresh session: {e}"),
    };
    let mut error = None;
    let mut plaintext = Vec::new();
    for piece in pieces {
        let result = s.handle_read(piece);
        s.take_plaintext(&mut plaintext);
        // The driver sends what is queued after every read; it must be
        // drainable whatever happened.
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        if let Err(e) = result {
            error = Some(e.to_string());
            break;
        }
    }
    Verdict {
        error,
        handshake_done: s.handshake_done(),
        wants_close: s.wants_close(),
        plaintext,
    }
}

pub fn check(data: &[u8]) {
    let [piece_len, input @ ..] = data else {
        return;
    };
    let whole = feed(std::iter::once(input));
    let bytewise = feed(input.chunks(1));
    assert_eq!(whole, bytewise, "whole vs one byte at a time");
    if *piece_len > 1 {
        let pieces = feed(input.chunks(usize::from(*piece_len)));
        assert_eq!(whole, pieces, "whole vs pieces of {piece_len}");
    }
    // An error always means the connection is to be closed.
    if whole.error.is_some() {
        assert!(whole.wants_close);
    }
    // No client keys, so nothing can decrypt to plaintext.
    assert!(whole.plaintext.is_empty());
}

//! Properties of token verification:
//! - arbitrary bytes, as a token at any time, never panic;
//! - a token we sign is never refused for its envelope (split, base64url,
//!   header, signature), whatever its payload: only for its claims;
//! - a token we sign with well-formed claims verifies to those claims;
//! - changing any single byte of a signed token makes it fail.
//!
//! Input: the whole input is tried as a token and as a payload; bytes 0–1
//! choose the position to change, byte 2 the change (XORed, made
//! non-zero), and the input as lossy UTF-8 becomes a claim value.
#![allow(dead_code)]

use pushwire::wire::jws::{sign, Part, TokenError, Verifier};

const SECRET: &[u8] = b"fuzz secret";
const NOW: u64 = 1_800_000_000;

pub fn check(data: &[u8]) {
    let v = Verifier::new(SECRET);

    // Arbitrary bytes never panic, at any time.
    for now in [0, NOW, u64::MAX] {
        let _ = v.verify(data, now);
    }

    // Our envelope around any payload: only the claims can be at fault.
    if let Err(e) = v.verify(sign(data, SECRET).as_bytes(), NOW) {
        assert!(
            !matches!(
                e,
                TokenError::NotThreeParts
                    | TokenError::Base64(_)
                    | TokenError::Json {
                        part: Part::Header,
                        ..
                    }
                    | TokenError::NotAnObject(Part::Header)
                    | TokenError::MissingAlgorithm
                    | TokenError::AlgorithmNotAllowed
                    | TokenError::CriticalExtension
                    | TokenError::BadSignature
            ),
            "our own envelope refused: {e:?}"
        );
    }

    // Well-formed claims carrying the input as a string.
    let mut claims = br#"{"exp":1800000100,"subscribe":["news.*"],"publish":["t"],"sub":"#.to_vec();
    pushwire::wire::json::write_str(&mut claims, &String::from_utf8_lossy(data));
    claims.push(b'}');
    let token = sign(&claims, SECRET);
    let got = match v.verify(token.as_bytes(), NOW) {
        Ok(got) => got,
        Err(e) => panic!("signed token refused: {e:?}"),
    };
    assert!(got.may_subscribe("news.x") && got.may_publish("t") && !got.may_publish("u"));
    assert_eq!(got.expires_at(), Some(1_800_000_100));

    // Any single-byte change breaks it: base64url spellings are canonical,
    // so a changed byte is either not base64url or different signed bytes.
    let (pos, flip) = match data {
        [a, b, c, ..] => (usize::from(u16::from_le_bytes([*a, *b])), (*c).max(1)),
        _ => (data.len(), 1),
    };
    let mut bad = token.into_bytes();
    let pos = pos % bad.len();
    bad[pos] ^= flip;
    assert!(
        v.verify(&bad, NOW).is_err(),
        "changed byte {pos} by {flip:#04x} and it still verifies"
    );
}

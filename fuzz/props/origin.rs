//! Properties of the origin rule:
//! - parsing arbitrary bytes as an `Origin` or a `Host` never panics;
//! - a parsed origin serialises (RFC 6454 §6.2) to text that parses back
//!   to the same origin and serialises the same: one normal form;
//! - a parsed origin is ASCII-case-insensitive: the input uppercased
//!   parses to the same origin;
//! - the policy agrees with the parser: an origin is allowed as the
//!   server's own exactly when it equals `Origin::of_request`, and a
//!   request without `Origin` is always allowed.
//!
//! Input: up to the first 0xFF byte is the `Origin` value, the rest the
//! `Host` value; bit 0 of the last byte picks TLS.
#![allow(dead_code)]

use pushwire::security::{Origin, OriginError, OriginPolicy};

pub fn check(data: &[u8]) {
    let (origin, host) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let tls = data.last().is_some_and(|b| b & 1 == 1);

    let parsed = Origin::parse(origin);
    if let Some(o) = &parsed {
        let text = o.to_string();
        let again = Origin::parse(text.as_bytes());
        assert_eq!(again.as_ref(), Some(o), "{text:?} does not parse back");
        assert_eq!(again.map(|a| a.to_string()), Some(text.clone()));
        assert_eq!(
            Origin::parse(&origin.to_ascii_uppercase()).as_ref(),
            Some(o),
            "case changed the origin"
        );
    }

    let policy = OriginPolicy::default();
    assert_eq!(policy.check(None, Some(host), tls), Ok(()));
    let own = Origin::of_request(host, tls);
    let verdict = policy.check(Some(origin), Some(host), tls);
    let expected = match (&parsed, &own) {
        (Some(o), Some(own)) if o == own => Ok(()),
        _ => Err(OriginError::NotAllowed),
    };
    // The policy trims optional whitespace around the values; the
    // comparison above does not, so only judge inputs without it.
    let padded = |v: &[u8]| {
        v.first().is_some_and(|b| matches!(b, b' ' | b'\t'))
            || v.last().is_some_and(|b| matches!(b, b' ' | b'\t'))
    };
    if !padded(origin) && !padded(host) {
        assert_eq!(
            verdict, expected,
            "origin {origin:?} host {host:?} tls {tls}"
        );
    }

    // `*` allows everything.
    let any = OriginPolicy::from_flags("*", None).unwrap_or_default();
    assert_eq!(any.check(Some(origin), Some(host), tls), Ok(()));
}

//! Properties of the permessage-deflate negotiation
//! (`wire/ws_extensions.rs`), on any `Sec-WebSocket-Extensions` value.
//!
//! 1. Parsing never panics, and the offers it finds, written out again in
//!    a canonical form (`name; p=v, ...`), negotiate to the same result:
//!    the parser reads what the text says, not how it is spaced.
//! 2. One list or the same offers spread over two header fields give the
//!    same result (RFC 9110 §5.3: repeated fields are one list).
//! 3. An accepted offer's answer is within the rules: windows 8-15 (9-15
//!    for the server's), `client_max_window_bits` only when some offer
//!    carried it (RFC 7692 §7.1.2.2), and the answer, parsed back as a
//!    client reads it, states the same terms.
//!
//! Input: byte 0 picks the policy, the rest is the header value.
#![allow(dead_code)]

use pushwire::wire::ws_extensions::{
    negotiate, offers, parse_answer, write_answer, DeflatePolicy, Value,
};

fn policy(sel: u8) -> DeflatePolicy {
    DeflatePolicy {
        server_max_window_bits: 9 + sel % 7,
        client_max_window_bits: 8 + (sel >> 3) % 8,
        client_no_context_takeover: sel & 0x80 != 0,
    }
}

/// The offers of `value` in canonical form, one string each.
fn canonical(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut list = Vec::new();
    for offer in offers(value) {
        let offer = offer.ok()?;
        let mut text = offer.name.to_vec();
        for p in offer.params() {
            text.extend_from_slice(b"; ");
            text.extend_from_slice(p.name);
            match p.value {
                None => {}
                Some(Value::Token(t)) => {
                    text.push(b'=');
                    text.extend_from_slice(t);
                }
                Some(Value::Quoted(q)) => {
                    text.push(b'=');
                    text.extend_from_slice(q);
                }
            }
        }
        list.push(text);
    }
    Some(list)
}

pub fn check(data: &[u8]) {
    let [sel, value @ ..] = data else {
        return;
    };
    let policy = policy(*sel);
    let result = negotiate([value], &policy);

    // 1. The canonical rewriting negotiates the same.
    let list = canonical(value);
    assert_eq!(list.is_some(), result.is_ok(), "syntax verdicts agree");
    let Some(list) = list else {
        return;
    };
    let joined = list.join(&b", "[..]);
    assert_eq!(negotiate([&joined[..]], &policy), result, "canonical form");

    // 2. Split over two fields.
    let mid = list.len() / 2;
    let first = list[..mid].join(&b", "[..]);
    let second = list[mid..].join(&b", "[..]);
    assert_eq!(
        negotiate([&first[..], &second[..]], &policy),
        result,
        "two fields"
    );

    // 3. The answer.
    let Ok(Some(p)) = result else {
        return;
    };
    assert!((9..=15).contains(&p.server_max_window_bits));
    assert!((8..=15).contains(&p.client_max_window_bits));
    assert!(p.server_no_context_takeover);
    if p.answer_client_max_window_bits {
        let needle = b"client_max_window_bits";
        assert!(value.windows(needle.len()).any(|w| w == needle));
    }
    let mut out = Vec::new();
    write_answer(&mut out, &p);
    let back = parse_answer(&out).expect("our answer parses");
    assert_eq!(
        back.server_no_context_takeover,
        p.server_no_context_takeover
    );
    assert_eq!(
        back.client_no_context_takeover,
        p.client_no_context_takeover
    );
    assert_eq!(
        back.answer_server_max_window_bits,
        p.answer_server_max_window_bits
    );
    assert_eq!(
        back.answer_client_max_window_bits,
        p.answer_client_max_window_bits
    );
    if p.answer_server_max_window_bits {
        assert_eq!(back.server_max_window_bits, p.server_max_window_bits);
    }
    if p.answer_client_max_window_bits {
        assert_eq!(back.client_max_window_bits, p.client_max_window_bits);
    }
}

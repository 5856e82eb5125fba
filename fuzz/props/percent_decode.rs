//! Properties of percent-decoding (`wire/percent.rs`).
//!
//! 1. Never panics, on any text.
//! 2. Encode → decode gives the text back, with both decoders, and the
//!    encoding holds only unreserved characters and `%XX`.
//! 3. Decode → encode → decode gives the decoded text again; decoding
//!    never grows the text and borrows exactly when there was nothing to
//!    decode; an error's offset is at a `%` of the input.
//! 4. Without a `+` the path and query decoders agree.
//! 5. `query_values` and `query_value` agree with `query_pairs` when the
//!    whole query decodes.
#![allow(dead_code)]

use std::borrow::Cow;

use pushwire::wire::percent::{
    decode_path_segment, decode_query_value, encode_component, query_pairs, query_value,
    query_values, PercentError,
};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;

    let mut encoded = String::new();
    encode_component(&mut encoded, text);
    assert!(encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
    assert_eq!(decode_path_segment(&encoded).as_deref(), Ok(text));
    assert_eq!(decode_query_value(&encoded).as_deref(), Ok(text));

    let path = decode_path_segment(text);
    let query = decode_query_value(text);
    decoded(text, &path, false);
    decoded(text, &query, true);
    if !text.contains('+') {
        assert_eq!(path, query);
    }

    pairs(text);
}

fn decoded(text: &str, result: &Result<Cow<'_, str>, PercentError>, plus_is_space: bool) {
    match result {
        Ok(d) => {
            assert!(d.len() <= text.len());
            let something = text.contains('%') || (plus_is_space && text.contains('+'));
            assert_eq!(matches!(d, Cow::Owned(_)), something);
            let mut again = String::new();
            encode_component(&mut again, d);
            assert_eq!(decode_query_value(&again).as_deref(), Ok(&**d));
        }
        Err(PercentError::TruncatedEscape { offset } | PercentError::InvalidEscape { offset }) => {
            assert_eq!(text.as_bytes().get(*offset), Some(&b'%'));
        }
        Err(PercentError::NotUtf8 { .. }) => assert!(text.contains('%')),
    }
}

fn pairs(query: &str) {
    let Ok(all) = query_pairs(query).collect::<Result<Vec<_>, _>>() else {
        return;
    };
    let Some((first, _)) = all.first() else {
        assert!(query.split('&').all(str::is_empty));
        return;
    };
    let expected: Vec<&str> = all
        .iter()
        .filter(|(n, _)| n == first)
        .map(|(_, v)| &**v)
        .collect();
    let got: Vec<Cow<'_, str>> = query_values(query, first)
        .collect::<Result<_, _>>()
        .expect("the whole query decoded");
    assert_eq!(got, expected);
    assert_eq!(
        query_value(query, first).map(|r| r.unwrap()),
        expected.first().map(|v| Cow::Borrowed(*v))
    );
}

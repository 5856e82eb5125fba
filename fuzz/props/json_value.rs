//! Properties of the JSON reader and writer (`wire/json.rs`).
//!
//! 1. Never panics, on any bytes.
//! 2. The validator agrees with the reader: same verdict, same error at
//!    the same offset.
//! 3. Parse → write → parse gives the same value, the written text
//!    validates, and writing it again gives the same bytes.
//! 4. `members` agrees with the reader on every object: the same verdict,
//!    and each member's kept text parses to that member's value.
//! 5. Tighter limits only ever add their own refusal: the answer is the
//!    unlimited one, or the limit's rule.
//! 6. (Fuzzing only.) Agreement with serde_json: where we accept (and no number overflows,
//!    which serde_json refuses), serde_json reads the same value; where we
//!    refuse for a reason other than a duplicate key or depth (serde_json
//!    accepts duplicates and nests to 128), serde_json refuses too.
#![allow(dead_code)]

use pushwire::wire::json::{
    members, parse_bytes, parse_with, validate, write_value, JsonLimits, Rule, Value,
};

const WIDE: JsonLimits = JsonLimits {
    max_depth: 64,
    max_bytes: usize::MAX,
    max_string_bytes: usize::MAX,
};

pub fn check(data: &[u8]) {
    let parsed = parse_bytes(data, &WIDE);
    assert_eq!(validate(data, &WIDE), parsed.clone().map(|_| ()));

    if let Ok(v) = &parsed {
        let mut once = Vec::new();
        write_value(&mut once, v);
        assert_eq!(parse_bytes(&once, &WIDE).as_ref(), Ok(v), "{once:?}");
        assert_eq!(validate(&once, &WIDE), Ok(()));
        let mut twice = Vec::new();
        write_value(&mut twice, &parse_bytes(&once, &WIDE).unwrap());
        assert_eq!(once, twice);
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let is_object = text
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{');
        if is_object {
            match (members(text, &WIDE), &parsed) {
                (Ok(m), Ok(Value::Object(tree))) => {
                    assert_eq!(m.len(), tree.len());
                    for ((k, raw), (tk, tv)) in m.iter().zip(tree) {
                        assert_eq!(k, tk);
                        assert_eq!(parse_with(raw, &WIDE).as_ref(), Ok(tv));
                    }
                }
                (Err(e), Err(pe)) => assert_eq!(&e, pe),
                (m, p) => panic!("members {m:?} but parse {p:?}"),
            }
        }
    }

    tight_limits(data, &parsed);
    // serde_json is a dependency of the fuzz crate only; the corpus replay
    // in `cargo test` checks properties 1–5.
    #[cfg(fuzzing)]
    oracle(data, &parsed);
}

fn tight_limits(data: &[u8], wide: &Result<Value, pushwire::wire::json::JsonError>) {
    let Some(&seed) = data.first() else { return };
    let limits = JsonLimits {
        max_depth: usize::from(seed % 8),
        max_bytes: usize::from(seed) * 4,
        max_string_bytes: usize::from(seed % 16),
    };
    let tight = parse_bytes(data, &limits);
    assert_eq!(validate(data, &limits), tight.clone().map(|_| ()));
    match &tight {
        Err(e) if matches!(e.rule, Rule::TooDeep | Rule::TooLarge | Rule::StringTooLong) => {}
        other => assert_eq!(other, wide),
    }
}

#[cfg(fuzzing)]
fn oracle(data: &[u8], ours: &Result<Value, pushwire::wire::json::JsonError>) {
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match ours {
        Ok(v) if finite(v) => {
            let theirs = theirs.unwrap_or_else(|e| panic!("serde_json refused: {e}"));
            assert_eq!(canon(v), from_serde(&theirs));
        }
        Ok(_) => {}
        Err(e) if matches!(e.rule, Rule::DuplicateKey | Rule::TooDeep) => {}
        Err(e) => assert!(theirs.is_err(), "serde_json accepted what we refused: {e}"),
    }
}

#[cfg(fuzzing)]
fn finite(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.value().is_finite(),
        Value::Array(items) => items.iter().all(finite),
        Value::Object(members) => members.iter().all(|(_, v)| finite(v)),
        _ => true,
    }
}

/// Members sorted by name, as serde_json's map holds them.
#[cfg(fuzzing)]
fn canon(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(canon).collect()),
        Value::Object(members) => {
            let mut m: Vec<_> = members.iter().map(|(k, v)| (k.clone(), canon(v))).collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(m)
        }
        // serde_json reads numbers as `f64` (or exact integers that it
        // gives back as the nearest `f64`): compare those, not texts.
        Value::Number(n) => Value::from(n.value()),
        other => other.clone(),
    }
}

#[cfg(fuzzing)]
fn from_serde(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_serde).collect()),
        serde_json::Value::Object(m) => {
            let mut out: Vec<_> = m.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(out)
        }
    }
}

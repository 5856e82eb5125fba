//! Properties of the `/ws` command codec (`proto/mux.rs`).
//!
//! 1. Never panics, on any bytes, under the default and under tight
//!    limits.
//! 2. Parse → write → parse: a command read back from what the writer
//!    wrote is the same command, the written text is JSON, and writing it
//!    again gives the same bytes.
//! 3. A refusal is 400 or 413, and its `error` reply reads back with the
//!    same ref, status and message.
//! 4. Every reply, built from the input's text, reads back as itself.
#![allow(dead_code)]

use std::borrow::Cow;

use pushwire::proto::mux::{MuxCommand, MuxLimits, MuxRef, MuxReply};
use pushwire::wire::json::{validate, JsonLimits};

pub fn check(data: &[u8]) {
    let tight = MuxLimits {
        json: JsonLimits {
            max_depth: 3,
            max_bytes: 200,
            max_string_bytes: 40,
        },
        max_ref_bytes: 6,
        max_data_bytes: 10,
    };
    for limits in [MuxLimits::default(), tight] {
        match MuxCommand::parse(data, &limits) {
            Ok(c) => round_trip(&c, &limits),
            Err(e) => {
                assert!(matches!(e.status(), 400 | 413), "{e:?}");
                reply_round_trip(&e.reply());
            }
        }
    }

    let text = String::from_utf8_lossy(data);
    let reference = match data.first() {
        Some(b) if b % 3 == 0 => None,
        Some(b) if b % 3 == 1 => Some(MuxRef::number(u64::from(*b))),
        _ => Some(MuxRef::string(&text)),
    };
    let status = u16::from_le_bytes([data.get(1).copied().unwrap_or(0), 0]) + 100;
    for r in [
        MuxReply::Published {
            reference: reference.clone(),
            id: Cow::Borrowed(&text),
        },
        MuxReply::Subscribed {
            reference: reference.clone(),
            topic: Cow::Borrowed(&text),
            last_id: Cow::Borrowed("1-0"),
        },
        MuxReply::Unsubscribed {
            reference: reference.clone(),
            topic: Cow::Borrowed(&text),
        },
        MuxReply::Error {
            reference,
            status,
            message: Cow::Borrowed(&text),
        },
    ] {
        reply_round_trip(&r);
    }
}

fn round_trip(c: &MuxCommand<'_>, limits: &MuxLimits) {
    let mut once = Vec::new();
    c.write(&mut once);
    assert_eq!(validate(&once, &JsonLimits::caller_bounded()), Ok(()));
    // The writer's spelling can be longer than the client's (escapes), so
    // it is read back within the default limits.
    let wide = MuxLimits {
        json: JsonLimits::caller_bounded(),
        max_ref_bytes: limits.max_ref_bytes,
        max_data_bytes: limits.max_data_bytes,
    };
    let back = MuxCommand::parse(&once, &wide)
        .unwrap_or_else(|e| panic!("{e:?} reading back {:?}", String::from_utf8_lossy(&once)));
    assert_eq!(&back, c);
    let mut twice = Vec::new();
    back.write(&mut twice);
    assert_eq!(once, twice);
}

fn reply_round_trip(r: &MuxReply<'_>) {
    let mut out = Vec::new();
    r.write(&mut out);
    let text = std::str::from_utf8(&out).expect("replies are UTF-8");
    assert_eq!(
        validate(text.as_bytes(), &JsonLimits::caller_bounded()),
        Ok(())
    );
    assert_eq!(MuxReply::parse(text).as_ref(), Some(r), "{text}");
}

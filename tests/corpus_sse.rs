//! Replays the seed corpus of the `sse_roundtrip` fuzz target on stable
//! Rust: every input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/sse_roundtrip.rs"]
mod sse_roundtrip;

#[test]
fn sse_roundtrip_corpus() {
    let n = common::replay_corpus("sse_roundtrip", sse_roundtrip::check);
    eprintln!("sse_roundtrip: {n} inputs");
}

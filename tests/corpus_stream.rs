//! Replays the seed corpus of the `ndjson_stream` fuzz target on stable
//! Rust: every input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/ndjson_stream.rs"]
mod ndjson_stream;

#[test]
fn ndjson_stream_corpus() {
    let n = common::replay_corpus("ndjson_stream", ndjson_stream::check);
    eprintln!("ndjson_stream: {n} inputs");
}

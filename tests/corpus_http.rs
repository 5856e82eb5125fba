//! Replays the seed corpora of the HTTP fuzz targets on stable Rust: every
//! input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/http1_head.rs"]
mod http1_head;

#[path = "../fuzz/props/chunked_decode.rs"]
mod chunked_decode;

#[test]
fn http1_head_corpus() {
    let n = common::replay_corpus("http1_head", http1_head::check);
    eprintln!("http1_head: {n} inputs");
}

#[test]
fn chunked_decode_corpus() {
    let n = common::replay_corpus("chunked_decode", chunked_decode::check);
    eprintln!("chunked_decode: {n} inputs");
}

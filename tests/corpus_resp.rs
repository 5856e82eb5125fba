//! Replays the seed corpus of the RESP fuzz target on stable Rust: every
//! input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/resp.rs"]
mod resp;

#[test]
fn resp_corpus() {
    let n = common::replay_corpus("resp", resp::check);
    eprintln!("resp: {n} inputs");
}

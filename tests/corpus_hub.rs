//! Replays the seed corpus of the `hub_message` fuzz target on stable
//! Rust: every input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/hub_message.rs"]
mod hub_message;

#[test]
fn hub_message_corpus() {
    let n = common::replay_corpus("hub_message", hub_message::check);
    eprintln!("hub_message: {n} inputs");
}

#[path = "../fuzz/props/hub_ops.rs"]
mod hub_ops;

#[test]
fn hub_ops_corpus() {
    let n = common::replay_corpus("hub_ops", hub_ops::check);
    eprintln!("hub_ops: {n} inputs");
}

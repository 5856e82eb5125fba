//! Replays the seed corpus of the whole-core fuzz target on stable Rust.

mod common;

#[path = "../fuzz/props/node_conns.rs"]
mod node_conns;

#[test]
fn node_conns_corpus() {
    let n = common::replay_corpus("node_conns", node_conns::check);
    eprintln!("node_conns: {n} inputs");
}

//! Replays the seed corpus of the cluster-mode fuzz target on stable Rust.

mod common;

#[path = "../fuzz/props/cluster_upstream.rs"]
mod cluster_upstream;

#[test]
fn cluster_upstream_corpus() {
    let n = common::replay_corpus("cluster_upstream", cluster_upstream::check);
    eprintln!("cluster_upstream: {n} inputs");
}

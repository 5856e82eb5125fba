//! Replays the seed corpus of the cluster-mode fuzz target on stable Rust.

mod common;

#[path = "../fuzz/props/cluster_upstream.rs"]
mod cluster_upstream;

#[test]
fn cluster_upstream_corpus() {
    let n = common::replay_corpus("cluster_upstream", cluster_upstream::check);
    eprintln!("cluster_upstream: {n} inputs");
}

#[path = "../fuzz/props/cluster_sio.rs"]
mod cluster_sio;

#[test]
fn cluster_sio_corpus() {
    let n = common::replay_corpus("cluster_sio", cluster_sio::check);
    eprintln!("cluster_sio: {n} inputs");
}

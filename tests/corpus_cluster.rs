//! Replays the seed corpora of the cluster-mode fuzz targets on stable Rust.

// Each property is a whole module, as its fuzz target includes it, so the
// Redis script both use (`fuzz/props/scripted_redis.rs`) is loaded once
// per property here.
#![allow(clippy::duplicate_mod)]

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

#[path = "../fuzz/props/relay_message.rs"]
mod relay_message;

#[test]
fn relay_message_corpus() {
    let n = common::replay_corpus("relay_message", relay_message::check);
    eprintln!("relay_message: {n} inputs");
}

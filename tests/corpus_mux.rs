//! Replays the seed corpus of the multi-topic SSE fan-out fuzz target on
//! stable Rust.

mod common;

#[path = "../fuzz/props/mux_sse_fanout.rs"]
mod mux_sse_fanout;

#[test]
fn mux_sse_fanout_corpus() {
    let n = common::replay_corpus("mux_sse_fanout", mux_sse_fanout::check);
    eprintln!("mux_sse_fanout: {n} inputs");
}

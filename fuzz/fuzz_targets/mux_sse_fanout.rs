#![no_main]

#[path = "../props/mux_sse_fanout.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

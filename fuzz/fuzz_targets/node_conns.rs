#![no_main]

#[path = "../props/node_conns.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

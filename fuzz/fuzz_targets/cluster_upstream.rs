#![no_main]

#[path = "../props/cluster_upstream.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

#![no_main]

#[path = "../props/cluster_sio.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

#![no_main]

#[path = "../props/http1_head.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

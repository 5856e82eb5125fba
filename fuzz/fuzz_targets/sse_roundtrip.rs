#![no_main]

#[path = "../props/sse_roundtrip.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

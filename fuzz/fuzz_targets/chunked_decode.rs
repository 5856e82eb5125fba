#![no_main]

#[path = "../props/chunked_decode.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

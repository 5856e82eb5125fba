#![no_main]

#[path = "../props/percent_decode.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

#![no_main]

#[path = "../props/engineio_payload.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

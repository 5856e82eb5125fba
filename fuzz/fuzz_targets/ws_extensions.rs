#![no_main]

#[path = "../props/ws_extensions.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

#![no_main]

#[path = "../props/relay_message.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

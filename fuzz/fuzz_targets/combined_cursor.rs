#![no_main]

#[path = "../props/combined_cursor.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

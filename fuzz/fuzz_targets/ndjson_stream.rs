#![no_main]

#[path = "../props/ndjson_stream.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

#![no_main]

#[path = "../props/tls_session.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

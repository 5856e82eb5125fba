#![no_main]

#[path = "../props/hub_ops.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

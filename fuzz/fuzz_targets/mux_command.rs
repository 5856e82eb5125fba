#![no_main]

#[path = "../props/mux_command.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

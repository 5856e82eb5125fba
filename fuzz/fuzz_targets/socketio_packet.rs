#![no_main]

#[path = "../props/socketio_packet.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

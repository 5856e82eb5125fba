#![no_main]
#[path = "../props/http_conn_split.rs"]
mod props;
libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));

//! Replays the seed corpora of the fuzz targets for the small codecs of
//! `wire/` and `proto/mux.rs` on stable Rust: every input that once found a
//! bug stays a test.

mod common;

#[path = "../fuzz/props/json_value.rs"]
mod json_value;

#[path = "../fuzz/props/percent_decode.rs"]
mod percent_decode;

#[path = "../fuzz/props/combined_cursor.rs"]
mod combined_cursor;

#[path = "../fuzz/props/mux_command.rs"]
mod mux_command;

#[test]
fn json_value_corpus() {
    let n = common::replay_corpus("json_value", json_value::check);
    eprintln!("json_value: {n} inputs");
}

#[test]
fn percent_decode_corpus() {
    let n = common::replay_corpus("percent_decode", percent_decode::check);
    eprintln!("percent_decode: {n} inputs");
}

#[test]
fn combined_cursor_corpus() {
    let n = common::replay_corpus("combined_cursor", combined_cursor::check);
    eprintln!("combined_cursor: {n} inputs");
}

#[test]
fn mux_command_corpus() {
    let n = common::replay_corpus("mux_command", mux_command::check);
    eprintln!("mux_command: {n} inputs");
}

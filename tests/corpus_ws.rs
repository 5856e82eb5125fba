//! Replays the seed corpora of the WebSocket fuzz targets on stable Rust:
//! every input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/ws_frame.rs"]
mod ws_frame;

#[path = "../fuzz/props/ws_session.rs"]
mod ws_session;

#[path = "../fuzz/props/ws_handshake.rs"]
mod ws_handshake;

#[path = "../fuzz/props/ws_unmask.rs"]
mod ws_unmask;

#[test]
fn ws_frame_corpus() {
    let n = common::replay_corpus("ws_frame", ws_frame::check);
    eprintln!("ws_frame: {n} inputs");
}

#[test]
fn ws_session_corpus() {
    let n = common::replay_corpus("ws_session", ws_session::check);
    eprintln!("ws_session: {n} inputs");
}

#[test]
fn ws_handshake_corpus() {
    let n = common::replay_corpus("ws_handshake", ws_handshake::check);
    eprintln!("ws_handshake: {n} inputs");
}

#[test]
fn ws_unmask_corpus() {
    let n = common::replay_corpus("ws_unmask", ws_unmask::check);
    eprintln!("ws_unmask: {n} inputs");
}

#[path = "../fuzz/props/ws_extensions.rs"]
mod ws_extensions;

#[path = "../fuzz/props/ws_deflate_session.rs"]
mod ws_deflate_session;

#[test]
fn ws_extensions_corpus() {
    let n = common::replay_corpus("ws_extensions", ws_extensions::check);
    eprintln!("ws_extensions: {n} inputs");
}

#[test]
fn ws_deflate_session_corpus() {
    let n = common::replay_corpus("ws_deflate_session", ws_deflate_session::check);
    eprintln!("ws_deflate_session: {n} inputs");
}

//! Replays the seed corpora of the Engine.IO and Socket.IO fuzz targets on
//! stable Rust: every input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/engineio_payload.rs"]
mod engineio_payload;

#[path = "../fuzz/props/socketio_packet.rs"]
mod socketio_packet;

#[test]
fn engineio_payload_corpus() {
    let n = common::replay_corpus("engineio_payload", engineio_payload::check);
    eprintln!("engineio_payload: {n} inputs");
}

#[test]
fn socketio_packet_corpus() {
    let n = common::replay_corpus("socketio_packet", socketio_packet::check);
    eprintln!("socketio_packet: {n} inputs");
}

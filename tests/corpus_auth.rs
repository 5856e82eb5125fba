//! Replays the seed corpus of the `token` fuzz target on stable Rust:
//! every input that once found a bug stays a test.

mod common;

#[path = "../fuzz/props/token.rs"]
mod token;

#[test]
fn token_corpus() {
    let n = common::replay_corpus("token", token::check);
    eprintln!("token: {n} inputs");
}

#[path = "../fuzz/props/origin.rs"]
mod origin;

#[test]
fn origin_corpus() {
    let n = common::replay_corpus("origin", origin::check);
    eprintln!("origin: {n} inputs");
}

#[path = "../fuzz/props/tls_session.rs"]
mod tls_session;

#[test]
fn tls_session_corpus() {
    let n = common::replay_corpus("tls_session", tls_session::check);
    eprintln!("tls_session: {n} inputs");
}

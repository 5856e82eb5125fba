//! Replays the `http_conn_split` fuzz corpus on stable: whole input and
//! input in pieces must be answered alike.
mod common;

#[path = "../fuzz/props/http_conn_split.rs"]
mod http_conn_split;

#[test]
fn http_conn_split_corpus() {
    common::replay_corpus("http_conn_split", http_conn_split::check);
}

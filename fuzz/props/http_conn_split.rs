//! Property: an HTTP/1.1 connection answers the same whether its input
//! arrives whole or in pieces.
//!
//! The first bytes of the fuzzer's input choose the piece sizes; the rest
//! is the byte stream a client sends. Each complete request is described
//! (method, target, version, headers, body, keep-alive) and each error by
//! its status — the responses a server would base its answers on. Both
//! feedings must describe the same thing. (`100 Continue` may differ, and
//! is meant to: it is sent only when the body is not already here.)

use std::time::Instant;

use pushwire::proto::http::{HttpConn, HttpLimits};
use pushwire::Config;

fn limits() -> HttpLimits {
    // Small limits, so the fuzzer reaches every one of them.
    let cfg = Config {
        max_head_bytes: 2048,
        max_headers: 16,
        max_uri_bytes: 256,
        max_body_bytes: 4096,
        max_chunk_ext_bytes: 64,
        max_trailer_bytes: 256,
        ..Config::default()
    };
    HttpLimits::from_config(&cfg)
}

/// Feeds `pieces` in order; returns the description of what was answered.
fn drive<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut conn = HttpConn::new(limits());
    let now = Instant::now();
    let mut buf: Vec<u8> = Vec::new();
    let mut interim = Vec::new();
    let mut said = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match conn.poll_request(&buf, now, &mut interim) {
                Ok(None) => break,
                Err(e) => {
                    said.push(format!("error {}", e.status()));
                    return said;
                }
                Ok(Some(req)) => {
                    let mut d = format!(
                        "{} {:?} {} body={:?} keep_alive={}",
                        req.method().as_str(),
                        req.target(),
                        req.version().as_str(),
                        req.body,
                        req.keep_alive
                    );
                    for h in &req.head.headers {
                        d.push_str(&format!(
                            " [{:?}: {:?}]",
                            h.name.get(req.buf),
                            h.value.get(req.buf)
                        ));
                    }
                    let keep_alive = req.keep_alive;
                    said.push(d);
                    let used = conn.finish_request();
                    assert!(used > 0, "a request occupies bytes");
                    assert!(used <= buf.len(), "consumed more than was given");
                    buf.drain(..used);
                    if !keep_alive {
                        return said;
                    }
                }
            }
        }
    }
    said
}

pub fn check(data: &[u8]) {
    let ctrl_len = data
        .first()
        .map_or(0, |&b| (b % 8) as usize + 1)
        .min(data.len());
    let (ctrl, stream) = data.split_at(ctrl_len);
    let whole = drive(std::iter::once(stream));
    let mut sizes = ctrl.iter().map(|&b| (b % 17) as usize + 1).cycle();
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let n = sizes.next().unwrap_or(1).min(stream.len() - at);
        pieces.push(&stream[at..at + n]);
        at += n;
    }
    let split = drive(pieces.into_iter());
    assert_eq!(whole, split, "whole and split input answered differently");
}

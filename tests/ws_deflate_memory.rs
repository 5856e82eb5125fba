//! What permessage-deflate costs per connection, measured: the resident
//! set of this process before and after holding N sessions.
//!
//! One test function, so that nothing else allocates in this process
//! while it measures. `cargo test --test ws_deflate_memory -- --nocapture`
//! prints the figures.

use std::time::Instant;

use pushwire::proto::ws::{MessageKind, WsDeflate, WsLimits, WsSession};
use pushwire::proto::ws_deflate::deflate_into;
use pushwire::wire::ws_extensions::DeflateParams;
use pushwire::wire::ws_frame::{apply_mask, FrameHeader, Opcode};

const N: usize = 2000;

/// Resident bytes of this process (Linux: /proc/self/statm, in pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn session(client_no_context: bool, client_bits: u8) -> WsSession {
    let mut s = WsSession::new(WsLimits::default(), Instant::now());
    s.set_deflate(Some(WsDeflate {
        params: DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: client_no_context,
            client_max_window_bits: client_bits,
            ..DeflateParams::DEFAULT
        },
        level: 6,
        threshold: 0,
    }));
    s
}

/// A masked, compressed client text frame for `text`.
fn compressed_frame(text: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    deflate_into(&[text], 6, 15, &mut payload);
    let key = [1, 2, 3, 4];
    let mut f = Vec::new();
    FrameHeader {
        fin: true,
        rsv: 0b100,
        opcode: Opcode::Text,
        mask: Some(key),
        payload_len: payload.len() as u64,
    }
    .emit(&mut f);
    let at = f.len();
    f.extend_from_slice(&payload);
    apply_mask(&mut f[at..], key, 0);
    f
}

/// Bytes per session after each got one compressed message.
fn per_session(client_no_context: bool, client_bits: u8, frame: &[u8]) -> usize {
    let before = rss();
    let mut sessions: Vec<WsSession> = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = session(client_no_context, client_bits);
        let mut input = frame.to_vec();
        let mut out = Vec::new();
        let mut got = 0;
        s.handle_read(&mut input, Instant::now(), &mut out, &mut |k, p, _| {
            assert_eq!(k, MessageKind::Text);
            got += p.len();
        });
        assert!(got > 0 && s.is_open());
        sessions.push(s);
    }
    let after = rss();
    drop(sessions);
    after.saturating_sub(before) / N
}

#[test]
fn deflate_memory_per_connection() {
    let text = "a published message, compressible enough to be worth it ".repeat(200);
    let frame = compressed_frame(text.as_bytes());
    // Warm up the allocator and the per-thread compressor.
    per_session(true, 15, &frame);

    // The per-thread compressor, measured on a thread of its own.
    let compressor = std::thread::spawn(|| {
        let before = rss();
        let mut out = Vec::new();
        deflate_into(&[b"first message on this thread"], 6, 15, &mut out);
        rss().saturating_sub(before)
    })
    .join()
    .unwrap();
    // The per-connection level's compressor (level 1) on top of it, as a
    // thread that serves both fan-out and echoes keeps both.
    let second = std::thread::spawn(|| {
        let mut out = Vec::new();
        deflate_into(&[b"first message on this thread"], 6, 15, &mut out);
        let before = rss();
        deflate_into(&[b"first message on this thread"], 1, 15, &mut out);
        rss().saturating_sub(before)
    })
    .join()
    .unwrap();

    let idle = per_session(true, 15, &frame);
    let kept_15 = per_session(false, 15, &frame);
    let kept_12 = per_session(false, 12, &frame);
    eprintln!(
        "WsSession struct: {} bytes",
        std::mem::size_of::<WsSession>()
    );
    eprintln!("idle deflate session, client_no_context_takeover: {idle} bytes");
    eprintln!("idle session keeping a 15-bit client context: {kept_15} bytes");
    eprintln!("idle session keeping a 12-bit client context: {kept_12} bytes");
    eprintln!("per-thread compressor (15 bits, level 6): {compressor} bytes");
    eprintln!("second per-thread compressor (15 bits, level 1): {second} bytes");
    // The target: an idle deflate connection costs at most 2 KiB more
    // than the struct itself when no context is kept.
    assert!(idle <= 2048, "idle deflate session costs {idle} bytes");
    // Keeping context costs one inflate state: zlib-rs allocates it with
    // a 32 KiB window whatever the window bits, about 47 KiB in all.
    assert!(kept_15 < 64 * 1024, "{kept_15}");
    assert!(kept_12 < 64 * 1024, "{kept_12}");
}

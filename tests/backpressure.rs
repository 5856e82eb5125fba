//! A peer that sends faster than it reads must not grow the server's
//! memory: once its outbound queue passes the cap, the server stops
//! reading it, the kernel buffers fill, and the peer's own writes block.

mod support;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use pushwire::wire::ws_frame::{apply_mask, FrameHeader, Opcode};
use pushwire::Config;
use support::*;

/// A masked client frame.
fn client_frame(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::new();
    header.emit(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

#[test]
fn an_echo_client_that_never_reads_stops_being_read() {
    let cap = 256 * 1024;
    let server = TestServer::start(Config {
        subscriber_queue_bytes: cap,
        ..Config::default()
    });
    let mut s = server.connect();
    s.write_all(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).status, 101);

    // 64 KiB messages, never reading the echoes. Without backpressure the
    // server would accept all 256 MiB and queue it; with it, our writes
    // stop going through after the queue cap plus what the kernel buffers
    // on both sides hold.
    let frame = client_frame(Opcode::Binary, &vec![0x5a; 64 * 1024]);
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0usize;
    let blocked = loop {
        if sent >= 256 * 1024 * 1024 {
            break false;
        }
        // Continue the current frame where the last write stopped.
        match s.write(&frame[sent % frame.len()..]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true
            }
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(blocked, "the server kept reading: {sent} bytes taken");
    // Kernel socket buffers on loopback can hold several MiB each way;
    // what matters is that the total is bounded, far below what was offered.
    assert!(
        sent < 64 * 1024 * 1024,
        "{sent} bytes taken before blocking"
    );

    // The server is still serving everyone else.
    assert_eq!(get(&server, "/healthz").status, 200);
}

#[test]
fn a_pipelining_client_that_never_reads_stops_being_read() {
    let server = TestServer::start(Config {
        max_outbound_bytes: 64 * 1024,
        ..Config::default()
    });
    let mut s = server.connect();
    let batch = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1000);
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0usize;
    let blocked = loop {
        if sent >= 256 * 1024 * 1024 {
            break false;
        }
        match s.write(&batch[sent % batch.len()..]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true
            }
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(blocked, "the server kept reading: {sent} bytes taken");
    assert!(
        sent < 64 * 1024 * 1024,
        "{sent} bytes taken before blocking"
    );
    assert_eq!(get(&server, "/healthz").status, 200);
}

//! A peer that sends faster than it reads must not grow the server's
//! memory: once its outbound queue passes the cap, the server stops
//! reading it, the kernel buffers fill, and the peer's own writes block.

mod support;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::Duration;

use pushwire::wire::ws_frame::{write_masked_frame, Opcode};
use pushwire::Config;
use support::*;

/// Writes `unit` over and over (resuming a unit where a short write left
/// it, so the stream stays well-formed) without ever reading, until a
/// write blocks for half a second or 256 MiB went through. Returns the
/// bytes written and whether it blocked.
fn write_until_blocked(s: &mut TcpStream, unit: &[u8]) -> (usize, bool) {
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0usize;
    while sent < 256 * 1024 * 1024 {
        match s.write(&unit[sent % unit.len()..]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (sent, true)
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    (sent, false)
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
    let mut frame = Vec::new();
    let payload = vec![0x5a; 64 * 1024];
    write_masked_frame(&mut frame, true, Opcode::Binary, &payload, [1, 2, 3, 4]);
    let (sent, blocked) = write_until_blocked(&mut s, &frame);
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
    let (sent, blocked) = write_until_blocked(&mut s, &batch);
    assert!(blocked, "the server kept reading: {sent} bytes taken");
    assert!(
        sent < 64 * 1024 * 1024,
        "{sent} bytes taken before blocking"
    );
    assert_eq!(get(&server, "/healthz").status, 200);
}

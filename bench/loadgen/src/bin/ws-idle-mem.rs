//! Memory per idle WebSocket: read the server's VmRSS, open N WebSocket
//! connections (handshake, then nothing), read VmRSS again, and report
//! (after - before) / N. Kernel socket buffers are not in VmRSS: this is
//! what the server itself keeps per connection.

use std::time::{Duration, Instant};

use loadgen::mio::net::TcpStream;
use loadgen::mio::{Events, Poll};
use loadgen::{
    connect_done, read_once, rss_bytes, wait, write_some, ws_upgrade_request, Flags, Ramp,
    ReadOutcome, Url,
};

const USAGE: &str =
    "usage: ws-idle-mem --url ws://127.0.0.1:PORT/echo --pid SERVER_PID [--conns 5000] \
[--settle 2] [--connect-parallel 128]";

#[derive(PartialEq, Eq, Clone, Copy)]
enum State {
    Connecting,
    Handshake,
    Open,
    Dead,
}

struct Conn {
    s: TcpStream,
    state: State,
    woff: usize,
    /// The handshake response so far.
    head: Vec<u8>,
}

fn main() {
    let f = Flags::parse(USAGE);
    let url = Url::parse(&f.str("url", "ws://127.0.0.1:8080/echo"))
        .unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let pid: u32 = f
        .opt("pid")
        .map(|p| p.parse().expect("--pid"))
        .unwrap_or_else(|| loadgen::die(USAGE, "--pid is required"));
    let n: usize = f.num("conns", 5000);
    let settle = f.secs("settle", 2.0);
    let parallel: usize = f.num("connect-parallel", 128);

    let request = ws_upgrade_request(&url);

    std::thread::sleep(settle);
    let before = rss_bytes(pid).expect("read server VmRSS");

    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let mut ramp = Ramp::new(url.addr, n, parallel);
    let (mut open, mut dead) = (0usize, 0usize);
    let mut buf = [0u8; 4096];
    let t0 = Instant::now();
    while open + dead < n {
        ramp.fill(&poll, &mut conns, |s| Conn {
            s,
            state: State::Connecting,
            woff: 0,
            head: Vec::new(),
        })
        .expect("connect");
        if t0.elapsed() > Duration::from_secs(120) {
            eprintln!("timed out: {open} open, {dead} failed of {n}");
            std::process::exit(1);
        }
        wait(&mut poll, &mut events, Duration::from_millis(100));
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            let r = (|| -> Result<bool, String> {
                if c.state == State::Connecting {
                    if !connect_done(&c.s).map_err(|e| e.to_string())? {
                        return Ok(false);
                    }
                    c.state = State::Handshake;
                }
                if c.state != State::Handshake {
                    return Ok(false);
                }
                write_some(&mut c.s, &request, &mut c.woff).map_err(|e| e.to_string())?;
                loop {
                    match read_once(&mut c.s, &mut buf).map_err(|e| e.to_string())? {
                        ReadOutcome::Data(k) => c.head.extend_from_slice(&buf[..k]),
                        ReadOutcome::WouldBlock => break,
                        ReadOutcome::Closed => return Err("closed during handshake".into()),
                    }
                }
                if c.head.windows(4).any(|w| w == b"\r\n\r\n") {
                    if !c.head.starts_with(b"HTTP/1.1 101") {
                        return Err(format!(
                            "not upgraded: {:?}",
                            String::from_utf8_lossy(&c.head[..c.head.len().min(40)])
                        ));
                    }
                    return Ok(true);
                }
                Ok(false)
            })();
            match r {
                Ok(true) => {
                    c.state = State::Open;
                    c.head = Vec::new();
                    open += 1;
                    ramp.settled();
                }
                Ok(false) => {}
                Err(e) => {
                    if dead < 5 {
                        eprintln!("conn {i}: {e}");
                    }
                    c.state = State::Dead;
                    dead += 1;
                    ramp.settled();
                }
            }
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    let after = rss_bytes(pid).expect("read server VmRSS");
    // Still open? A server that dropped idle connections would look cheap.
    let mut closed = 0;
    for c in conns.iter_mut() {
        if let Ok(ReadOutcome::Closed) | Err(_) = read_once(&mut c.s, &mut buf) {
            closed += 1;
        }
    }
    let per = (after as f64 - before as f64) / open.max(1) as f64;
    println!(
        "ws-idle-mem url={} conns={open} failed={dead} closed_by_server={closed} rss_before_kib={} rss_after_kib={} bytes_per_conn={per:.0} connect_secs={connect_secs:.2}",
        f.str("url", ""),
        before / 1024,
        after / 1024
    );
    if dead > 0 || closed > 0 {
        std::process::exit(1);
    }
}

//! Full TLS handshakes per second: N connections at once, each connects,
//! runs a full handshake (rustls client, ring provider, no resumption),
//! sends `GET PATH` with `Connection: close`, waits for the whole
//! response (of any status), closes, and starts over. Counted over a fixed window after a
//! warm-up. With `--pid`, the server's CPU share over the window too, and
//! handshakes per second of server CPU (what the server pays per handshake,
//! whether or not this generator is the bottleneck).

use std::time::{Duration, Instant};

use loadgen::mio::{Events, Poll, Token};
use loadgen::tls::Stream;
use loadgen::{
    connect, connect_done, read_once, wait, write_some, CpuMeter, Flags, ReadOutcome, Url,
};

const USAGE: &str = "usage: tls-handshake-load --url https://127.0.0.1:PORT/healthz --ca CA_PEM \
[--conns 32] [--warmup 2] [--duration 10] [--pid SERVER_PID]";

enum State {
    Connecting,
    Request,
}

struct Conn {
    s: Stream,
    state: State,
    woff: usize,
    got: Vec<u8>,
}

fn main() {
    let f = Flags::parse(USAGE);
    let url = Url::parse(&f.str("url", "https://127.0.0.1:8080/healthz"))
        .unwrap_or_else(|e| loadgen::die(USAGE, &e));
    if !url.tls {
        loadgen::die(USAGE, "--url must be https://");
    }
    let ca = f
        .opt("ca")
        .unwrap_or_else(|| loadgen::die(USAGE, "--ca PEM is required"));
    let config =
        loadgen::tls::client_config(ca.as_ref()).unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let host = url
        .host
        .rsplit_once(':')
        .map_or(url.host.as_str(), |h| h.0)
        .to_string();
    let nconns: usize = f.num("conns", 32);
    let warmup = f.secs("warmup", 2.0);
    let duration = f.secs("duration", 10.0);
    let pid: Option<u32> = f.opt("pid").map(|p| p.parse().expect("--pid"));
    let request = loadgen::get_request(&url, "Connection: close\r\n");

    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(1024);
    let open = |poll: &Poll, i: usize| -> Conn {
        let sock = connect(poll, url.addr, Token(i)).expect("connect");
        Conn {
            s: Stream::new(sock, Some(&config), &host).expect("TLS client"),
            state: State::Connecting,
            woff: 0,
            got: Vec::new(),
        }
    };
    let mut conns: Vec<Conn> = (0..nconns).map(|i| open(&poll, i)).collect();
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut measuring = false;
    let mut cpu: Option<(Option<CpuMeter>, CpuMeter)> = None;
    let (mut count, mut failed) = (0u64, 0u64);
    let mut buf = vec![0u8; 16 * 1024];

    while Instant::now() < end {
        if !measuring && Instant::now() >= measure_from {
            measuring = true;
            count = 0;
            failed = 0;
            cpu = Some((
                pid.map(CpuMeter::start),
                CpuMeter::start(std::process::id()),
            ));
        }
        wait(&mut poll, &mut events, Duration::from_millis(50));
        let ready: Vec<usize> = events.iter().map(|e| e.token().0).collect();
        for i in ready {
            let c = &mut conns[i];
            // Ok(true): the response is complete; Err: the connection failed.
            let r = (|| -> Result<bool, String> {
                if let State::Connecting = c.state {
                    if !connect_done(c.s.tcp()).map_err(|e| e.to_string())? {
                        return Ok(false);
                    }
                    c.state = State::Request;
                }
                write_some(&mut c.s, &request, &mut c.woff).map_err(|e| e.to_string())?;
                loop {
                    let eof = match read_once(&mut c.s, &mut buf).map_err(|e| e.to_string())? {
                        ReadOutcome::Data(0) | ReadOutcome::Closed => true,
                        ReadOutcome::Data(n) => {
                            c.got.extend_from_slice(&buf[..n]);
                            false
                        }
                        ReadOutcome::WouldBlock => return Ok(false),
                    };
                    // Any whole response counts: the handshake is what is
                    // measured (a peer that serves only /echo answers 404).
                    let whole = match loadgen::parse_response_head(&c.got)? {
                        Some(head) => match head.body {
                            loadgen::BodyKind::Length(n) => c.got.len() >= head.head_len + n,
                            _ => eof,
                        },
                        None => false,
                    };
                    if whole {
                        return Ok(true);
                    }
                    if eof {
                        return Err("closed before the response".into());
                    }
                }
            })();
            match r {
                Ok(false) => {}
                Ok(true) => {
                    count += 1;
                    // Closing a socket takes it out of the poll (epoll(7)).
                    conns[i] = open(&poll, i);
                }
                Err(e) => {
                    if failed < 5 {
                        eprintln!("conn {i}: {e}");
                    }
                    failed += 1;
                    conns[i] = open(&poll, i);
                }
            }
        }
    }

    let rate = count as f64 / duration.as_secs_f64();
    let (server_cpu, self_cpu) = match &cpu {
        Some((s, me)) => (s.as_ref().map(|m| m.percent()), me.percent()),
        None => (None, 0.0),
    };
    println!(
        "tls-handshake-load url={} conns={nconns} duration={:.1}s handshakes={count} handshakes_per_sec={rate:.0} \
failed={failed} server_cpu_pct={} handshakes_per_server_cpu_sec={} loadgen_cpu_pct={self_cpu:.0}",
        f.str("url", ""),
        duration.as_secs_f64(),
        server_cpu.map_or("-".into(), |p| format!("{p:.0}")),
        server_cpu
            .filter(|&p| p > 0.0)
            .map_or("-".into(), |p| format!("{:.0}", rate / (p / 100.0))),
    );
}

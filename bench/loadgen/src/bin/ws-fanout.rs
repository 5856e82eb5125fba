//! WebSocket topic fan-out: N subscribers on one topic, one publisher, to
//! measure what permessage-deflate costs the server per delivery and what
//! it saves on the wire.
//!
//! 1. Connect N WebSocket subscribers to the subscribe URL (offering
//!    permessage-deflate without context takeover with `--deflate on`, and
//!    failing unless every one accepts).
//! 2. A publisher thread POSTs `--messages` JSON messages of about
//!    `--size` bytes at `--rate` per second over one keep-alive connection
//!    (`Content-Type: application/json`, so the server embeds each as a
//!    value). Message k is `{"seq":k,"rows":[...]}`, records whose keys
//!    repeat and whose values vary, as real feeds do.
//! 3. Wait until every subscriber has every message (or `--drain` seconds
//!    pass without progress). Server CPU time is read before the first
//!    publish and after the last delivery: CPU per delivery is their
//!    difference over the deliveries.
//!
//! Every subscriber counts its text frames and wire bytes, and checks
//! RSV1 (set on every frame with `--deflate on`, clear without). One
//! subscriber in `--check-every` decodes every frame it gets (inflating
//! it with deflate) and checks it is message k, in order.
//!
//! The URLs are templates with `{t}` for the topic, so the same tool
//! drives pushwire and the Node `ws` peer (bench/peers-node).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::mio::net::TcpStream;
use loadgen::mio::{Events, Poll};
use loadgen::{
    connect_done, cpu_time, parse_response_head, read_once, wait, write_some, CpuMeter, Flags,
    Ramp, ReadOutcome, Url,
};

const USAGE: &str = "usage: ws-fanout --sub 'ws://127.0.0.1:PORT/topics/{t}/ws' \
--pub 'http://127.0.0.1:PORT/topics/{t}' [--pid SERVER_PID] [--subs 2000] [--size 2048] \
[--messages 300] [--rate 30] [--deflate off|on] [--drain 30] [--check-every 100] \
[--connect-parallel 128]";

#[derive(PartialEq, Eq, Clone, Copy)]
enum State {
    Connecting,
    Handshake,
    Open,
    Dead,
}

struct Sub {
    s: TcpStream,
    state: State,
    woff: usize,
    buf: Vec<u8>,
    /// Text frames received (message k is the k-th, from 0).
    got: u64,
    /// Whether this subscriber decodes and checks every frame.
    checks: bool,
}

/// The body of message `k`: about `size` bytes of JSON.
fn message(k: u64, size: usize) -> Vec<u8> {
    let text = loadgen::compressible_text(size * 4);
    let rows: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b"]}"))
        .collect();
    let mut out = format!("{{\"seq\":{k},\"rows\":[").into_bytes();
    let mut i = k as usize;
    let mut first = true;
    while out.len() + 2 < size {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(rows[i % rows.len()]);
        i += 1;
    }
    out.extend_from_slice(b"]}");
    out
}

fn main() {
    let f = Flags::parse(USAGE);
    let topic = loadgen::fresh_topic("fanout");
    let sub_url = Url::with_topic(&f.str("sub", "ws://127.0.0.1:8080/topics/{t}/ws"), &topic)
        .unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let pub_url = Url::with_topic(&f.str("pub", "http://127.0.0.1:8080/topics/{t}"), &topic)
        .unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let nsubs: usize = f.num("subs", 2000);
    let size: usize = f.num("size", 2048);
    let messages: u64 = f.num("messages", 300);
    let rate: f64 = f.num("rate", 30.0);
    let drain = f.secs("drain", 30.0);
    let check_every: usize = f.num("check-every", 100).max(1);
    let parallel: usize = f.num("connect-parallel", 128);
    let pid: Option<u32> = f.opt("pid").map(|p| p.parse().expect("--pid"));
    let deflate = match f.str("deflate", "off").as_str() {
        "on" => true,
        "off" => false,
        other => loadgen::die(USAGE, &format!("--deflate: on or off, not {other:?}")),
    };
    let handshake = if deflate {
        loadgen::ws_upgrade_request_deflate(&sub_url)
    } else {
        loadgen::ws_upgrade_request(&sub_url)
    };

    // ---- 1. subscribers ----------------------------------------------------
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut subs: Vec<Sub> = Vec::with_capacity(nsubs);
    let mut ramp = Ramp::new(sub_url.addr, nsubs, parallel);
    let mut open = 0usize;
    let mut dead = 0usize;
    let mut bad = 0u64;
    let mut rsv_wrong = 0u64;
    let mut wire_bytes = 0u64;
    let mut deliveries = 0u64;
    let connect_deadline = Instant::now() + Duration::from_secs(60);
    let mut publishing: Option<(Instant, Option<Duration>, CpuMeter)> = None;
    let done = Arc::new(AtomicBool::new(false));
    let mut publisher = None;
    let mut last_progress = Instant::now();
    let mut ids = Vec::new();

    loop {
        ramp.fill(&poll, &mut subs, |s| Sub {
            s,
            state: State::Connecting,
            woff: 0,
            buf: Vec::with_capacity(4096),
            got: 0,
            checks: false,
        })
        .unwrap_or_else(|e| {
            eprintln!("connect: {e}");
            std::process::exit(1);
        });
        if publishing.is_none() && open + dead == nsubs {
            if dead > 0 {
                eprintln!("{dead} of {nsubs} subscribers failed to open");
                std::process::exit(1);
            }
            // ---- 2. the publisher ------------------------------------------
            let (url, done) = (pub_url.clone(), Arc::clone(&done));
            let cpu0 = pid.map(|p| cpu_time(p).unwrap_or_default());
            publishing = Some((Instant::now(), cpu0, CpuMeter::start(std::process::id())));
            publisher = Some(std::thread::spawn(move || {
                publish(&url, messages, size, rate, &done)
            }));
            last_progress = Instant::now();
        }
        if publishing.is_none() && Instant::now() > connect_deadline {
            eprintln!("connect phase timed out: {open} open of {nsubs}");
            std::process::exit(1);
        }
        if publishing.is_some() {
            if deliveries == messages * nsubs as u64 {
                break;
            }
            if last_progress.elapsed() > drain {
                eprintln!("no delivery for {drain:?}: stopping");
                break;
            }
        }

        wait(&mut poll, &mut events, Duration::from_millis(50));
        ids.clear();
        ids.extend(events.iter().map(|e| e.token().0));
        for &i in &ids {
            let sub = &mut subs[i];
            let r: Result<(), String> = (|| match sub.state {
                State::Dead => Ok(()),
                State::Connecting => {
                    if connect_done(&sub.s).map_err(|e| e.to_string())? {
                        sub.state = State::Handshake;
                        write_some(&mut sub.s, &handshake, &mut sub.woff)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(())
                }
                State::Handshake | State::Open => {
                    if sub.state == State::Handshake {
                        write_some(&mut sub.s, &handshake, &mut sub.woff)
                            .map_err(|e| e.to_string())?;
                    }
                    let mut chunk = [0u8; 64 * 1024];
                    loop {
                        match read_once(&mut sub.s, &mut chunk).map_err(|e| e.to_string())? {
                            ReadOutcome::Data(n) => {
                                sub.buf.extend_from_slice(&chunk[..n]);
                                if sub.state == State::Open {
                                    wire_bytes += n as u64;
                                }
                            }
                            ReadOutcome::WouldBlock => break,
                            ReadOutcome::Closed => return Err("closed by the server".into()),
                        }
                    }
                    if sub.state == State::Handshake {
                        let Some(head) = parse_response_head(&sub.buf)? else {
                            return Ok(());
                        };
                        if head.status != 101 {
                            return Err(format!("not upgraded: {}", head.status));
                        }
                        if deflate && !loadgen::accepted_deflate(&sub.buf[..head.head_len]) {
                            return Err("permessage-deflate was not accepted".into());
                        }
                        sub.buf.drain(..head.head_len);
                        wire_bytes += sub.buf.len() as u64;
                        sub.state = State::Open;
                        sub.checks = i % check_every == 0;
                        open += 1;
                        ramp.settled();
                    }
                    while let Some((b0, hlen, plen)) = frame(&sub.buf)? {
                        let op = b0 & 0x0f;
                        if op == 0x8 {
                            return Err("close frame from the server".into());
                        }
                        if op == 0x1 {
                            if (b0 & 0x40 != 0) != deflate {
                                rsv_wrong += 1;
                            }
                            if sub.checks && !is_message(&sub.buf[hlen..hlen + plen], b0, sub.got) {
                                bad += 1;
                            }
                            sub.got += 1;
                            deliveries += 1;
                        }
                        sub.buf.drain(..hlen + plen);
                    }
                    Ok(())
                }
            })();
            if let Err(e) = r {
                eprintln!("subscriber {i}: {e}");
                if sub.state != State::Open {
                    ramp.settled();
                }
                sub.state = State::Dead;
                dead += 1;
            }
        }
        if !ids.is_empty() {
            last_progress = Instant::now();
        }
    }

    let Some((t0, cpu0, me)) = publishing else {
        unreachable!("the loop ends only while publishing")
    };
    let wall = t0.elapsed();
    let server_cpu = match (pid, cpu0) {
        (Some(p), Some(c0)) => Some(cpu_time(p).unwrap_or_default().saturating_sub(c0)),
        _ => None,
    };
    done.store(true, Ordering::Relaxed);
    let published = publisher.map(|h| h.join().unwrap_or(0)).unwrap_or(0);
    let expected = messages * nsubs as u64;
    let missing = expected.saturating_sub(deliveries);
    let per = |x: f64| {
        if deliveries == 0 {
            "-".to_string()
        } else {
            format!("{:.0}", x / deliveries as f64)
        }
    };
    let (cpu_ms, cpu_ns) = match server_cpu {
        Some(c) => (format!("{}", c.as_millis()), per(c.as_nanos() as f64)),
        None => ("-".into(), "-".into()),
    };
    println!(
        "ws-fanout subs={nsubs} size={size} deflate={} messages={messages} published={published} \
deliveries={deliveries} missing={missing} bad={bad} rsv_wrong={rsv_wrong} dead={dead} \
wire_bytes_per_delivery={} wall_s={:.2} server_cpu_ms={cpu_ms} server_cpu_ns_per_delivery={cpu_ns} \
loadgen_cpu_pct={:.0}",
        if deflate { "on" } else { "off" },
        per(wire_bytes as f64),
        wall.as_secs_f64(),
        me.percent(),
    );
    if missing > 0 || bad > 0 || rsv_wrong > 0 || dead > 0 || published != messages {
        std::process::exit(1);
    }
}

/// Whether a text frame's payload is message `k`'s JSON frame: its
/// `"seq"` is k (after inflating it when RSV1 says it is compressed).
fn is_message(payload: &[u8], b0: u8, k: u64) -> bool {
    let text = if b0 & 0x40 != 0 {
        match loadgen::inflate_message(payload, 1 << 20) {
            Some(t) => t,
            None => return false,
        }
    } else {
        payload.to_vec()
    };
    let want = format!("\"data\":{{\"seq\":{k},");
    text.windows(want.len()).any(|w| w == want.as_bytes())
}

/// `(first byte, header length, payload length)` of a complete unmasked
/// unfragmented frame at the start of `b`; `None` if incomplete.
fn frame(b: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x80 == 0 {
        return Err("fragmented message (FIN clear)".into());
    }
    if b[1] & 0x80 != 0 {
        return Err("masked frame from the server".into());
    }
    let (hlen, plen) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
        127 if b.len() >= 10 => (
            10,
            u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
        ),
        126 | 127 => return Ok(None),
        n => (2, n as usize),
    };
    if b.len() < hlen + plen {
        return Ok(None);
    }
    Ok(Some((b[0], hlen, plen)))
}

/// Publishes `messages` at `rate` per second over one keep-alive
/// connection, reading each answer before the next; returns how many were
/// answered 200.
fn publish(url: &Url, messages: u64, size: usize, rate: f64, done: &AtomicBool) -> u64 {
    let mut s = std::net::TcpStream::connect(url.addr).expect("publisher connect");
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let start = Instant::now();
    let mut ok = 0;
    let mut buf = Vec::new();
    for k in 0..messages {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let due = start + Duration::from_secs_f64(k as f64 / rate.max(0.001));
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let body = message(k, size);
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            url.path,
            url.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        if s.write_all(&req).is_err() {
            break;
        }
        // One response at a time: read until its head and body are in.
        loop {
            if let Ok(Some(head)) = parse_response_head(&buf) {
                let body = match head.body {
                    loadgen::BodyKind::Length(n) => n,
                    _ => 0,
                };
                let want = head.head_len + body;
                if buf.len() >= want {
                    if head.status == 200 {
                        ok += 1;
                    } else {
                        eprintln!("publish {k}: status {}", head.status);
                    }
                    buf.drain(..want);
                    break;
                }
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return ok,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
    ok
}

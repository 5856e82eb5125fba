//! SSE fan-out: N subscribers on one topic, one publisher.
//!
//! 1. Read the server's VmRSS, connect N subscribers (`GET` the subscribe
//!    URL, wait for each 200 head), read VmRSS again: memory per idle
//!    subscriber.
//! 2. Publish for D seconds over K keep-alive connections (one request in
//!    flight on each). Each message's data is `s=<seq> t=<send time>`,
//!    padded to `--size` bytes.
//!    - `--rate R` (messages/s): an open-loop schedule, for latency at a
//!      given load.
//!    - `--rate 0`: closed loop with `--window W` messages not yet delivered
//!      to every subscriber, for the most deliveries per second the server
//!      sustains.
//! 3. Wait until every subscriber has every message (or `--drain` seconds
//!    pass without progress), then report per-delivery latency (publish
//!    write -> `data:` line read), deliveries/s and loss.
//!
//! The subscribe and publish URLs are templates with `{t}` for the topic,
//! so the same tool drives pushwire (`/topics/{t}/sse`, `POST /topics/{t}`)
//! and nchan (`/sub/{t}`, `POST /pub/{t}`).

use std::io;
use std::time::{Duration, Instant};

use loadgen::mio::net::TcpStream;
use loadgen::mio::{Events, Poll, Token};
use loadgen::{
    connect, connect_done, cpu_time, ms, ns_since, parse_response_head, post_request, read_once,
    rss_bytes, sse_lines, stamp, unstamp, write_some, BodyKind, CpuMeter, Dechunker, Flags,
    ReadOutcome, Summary, Url,
};

const USAGE: &str = "usage: sse-fanout --sub 'http://127.0.0.1:PORT/topics/{t}/sse' \
--pub 'http://127.0.0.1:PORT/topics/{t}' [--pid SERVER_PID] [--subs 5000] [--topic NAME] \
[--rate 20 | --rate 0 --window 4] [--duration 10] [--size 64] [--pub-conns 4] [--drain 10] \
[--settle 1] [--connect-parallel 128]";

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum SubState {
    Connecting,
    Head,
    Streaming,
    Dead,
}

struct Sub {
    s: TcpStream,
    state: SubState,
    woff: usize,
    /// Response head bytes, then decoded event-stream bytes not yet split
    /// into lines.
    buf: Vec<u8>,
    chunked: Option<Dechunker>,
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum PubState {
    Connecting,
    Idle,
    Busy,
    Dead,
}

struct Publisher {
    s: TcpStream,
    state: PubState,
    out: Vec<u8>,
    woff: usize,
    inbuf: Vec<u8>,
}

fn main() {
    let f = Flags::parse(USAGE);
    let topic = f
        .opt("topic")
        .unwrap_or_else(|| loadgen::fresh_topic("fanout"));
    let sub_t = f.str("sub", "http://127.0.0.1:8080/topics/{t}/sse");
    let pub_t = f.str("pub", "http://127.0.0.1:8080/topics/{t}");
    let sub_url = Url::with_topic(&sub_t, &topic).unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let pub_url = Url::with_topic(&pub_t, &topic).unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let pid: Option<u32> = f.opt("pid").map(|p| p.parse().expect("--pid"));
    let nsubs: usize = f.num("subs", 5000);
    let rate: f64 = f.num("rate", 20.0);
    let window: u64 = f.num("window", 4);
    let duration = f.secs("duration", 10.0);
    let size: usize = f.num("size", 64);
    let npub: usize = f.num("pub-conns", 4);
    let drain = f.secs("drain", 10.0);
    let settle = f.secs("settle", 1.0);
    let parallel: usize = f.num("connect-parallel", 128);

    let sub_req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        sub_url.path, sub_url.host
    )
    .into_bytes();

    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut scratch = vec![0u8; 256 * 1024];
    let base = Instant::now();

    // ---- phase 1: subscribers ----------------------------------------------
    let rss_before = pid.map(|p| rss_bytes(p).expect("server VmRSS"));
    let mut subs: Vec<Sub> = Vec::with_capacity(nsubs);
    let (mut pending, mut ready, mut dead_subs) = (0usize, 0usize, 0usize);
    let mut early_events = 0u64;
    while ready + dead_subs < nsubs {
        while subs.len() < nsubs && pending < parallel {
            let i = subs.len();
            subs.push(Sub {
                s: connect(&poll, sub_url.addr, Token(i)).expect("connect"),
                state: SubState::Connecting,
                woff: 0,
                buf: Vec::new(),
                chunked: None,
            });
            pending += 1;
        }
        if base.elapsed() > Duration::from_secs(120) {
            eprintln!("subscribe phase timed out: {ready} ready, {dead_subs} failed of {nsubs}");
            std::process::exit(1);
        }
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.expect("poll"),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let sub = &mut subs[i];
            let was = sub.state;
            if let Err(e) = drive_sub(sub, &sub_req, &mut scratch, &mut |_| early_events += 1) {
                if dead_subs < 5 {
                    eprintln!("subscriber {i}: {e}");
                }
                sub.state = SubState::Dead;
            }
            match (was, sub.state) {
                (SubState::Streaming, _) => {}
                (_, SubState::Streaming) => {
                    ready += 1;
                    pending -= 1;
                }
                (SubState::Dead, _) => {}
                (_, SubState::Dead) => {
                    dead_subs += 1;
                    pending -= 1;
                }
                _ => {}
            }
        }
    }
    let subscribe_secs = base.elapsed().as_secs_f64();
    // The publishers connect while the subscribers settle (the server
    // finishes whatever it does after answering their heads).
    let mut pubs: Vec<Publisher> = (0..npub)
        .map(|k| Publisher {
            s: connect(&poll, pub_url.addr, Token(nsubs + k)).expect("connect publisher"),
            state: PubState::Connecting,
            out: Vec::new(),
            woff: 0,
            inbuf: Vec::new(),
        })
        .collect();
    let settle_end = Instant::now() + settle;
    while Instant::now() < settle_end || pubs.iter().any(|p| p.state == PubState::Connecting) {
        if Instant::now() > settle_end + Duration::from_secs(10) {
            eprintln!("publisher connections did not connect");
            std::process::exit(1);
        }
        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
        for ev in events.iter() {
            let i = ev.token().0;
            if i >= nsubs {
                if let Err(e) = drive_pub(&mut pubs[i - nsubs], &mut scratch) {
                    eprintln!("publisher: {e}");
                    std::process::exit(1);
                }
            } else if subs[i].state == SubState::Streaming {
                if let Err(e) = drive_sub(&mut subs[i], &sub_req, &mut scratch, &mut |_| {
                    early_events += 1
                }) {
                    eprintln!("subscriber {i} while idle: {e}");
                    subs[i].state = SubState::Dead;
                    dead_subs += 1;
                }
            }
        }
    }
    let rss_after = pid.map(|p| rss_bytes(p).expect("server VmRSS"));

    // ---- phase 2: publish ----------------------------------------------------
    let mut last_seq: Vec<u64> = vec![0; nsubs];
    // Deliveries per message, indexed by seq (seq starts at 1).
    let mut delivered: Vec<u32> = vec![0];
    let mut complete = 0u64; // messages every live subscriber has
    let mut sent = 0u64;
    let mut pub_errors = 0u64;
    let mut pub_ok = 0u64;
    let mut lat: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut out_of_order = 0u64;
    let mut unknown = 0u64;
    let mut total = 0u64;
    let live = (nsubs - dead_subs) as u32;
    let server_cpu = pid.map(CpuMeter::start);
    let self_cpu0 = cpu_time(std::process::id()).unwrap_or_default();
    let pub_start = Instant::now();
    let pub_end = pub_start + duration;
    let mut last_progress = Instant::now();
    let mut first_delivery_ns: Option<u64> = None;
    let mut last_delivery_ns = 0u64;
    let mut late_publish = 0u64;
    let mut disconnected_during = 0usize;

    loop {
        let now = Instant::now();
        let publishing = now < pub_end;
        // Start as many publishes as the schedule (or window) allows.
        if publishing {
            loop {
                let due = if rate > 0.0 {
                    pub_start + Duration::from_secs_f64(sent as f64 / rate) <= now
                } else {
                    sent - complete < window
                };
                if !due {
                    break;
                }
                let Some(p) = pubs.iter_mut().find(|p| p.state == PubState::Idle) else {
                    break;
                };
                if rate > 0.0 {
                    let at = pub_start + Duration::from_secs_f64(sent as f64 / rate);
                    if now.saturating_duration_since(at) > Duration::from_millis(5) {
                        late_publish += 1;
                    }
                }
                sent += 1;
                delivered.push(0);
                p.out = post_request(&pub_url, &stamp(sent, ns_since(base), size));
                p.woff = 0;
                p.inbuf.clear();
                p.state = PubState::Busy;
                if let Err(e) = write_some(&mut p.s, &p.out, &mut p.woff) {
                    eprintln!("publisher: write: {e}");
                    p.state = PubState::Dead;
                }
            }
        } else {
            let all_in = total >= sent * live as u64;
            let pubs_done = pubs.iter().all(|p| p.state != PubState::Busy);
            if (all_in && pubs_done) || last_progress.elapsed() > drain {
                break;
            }
        }
        if pubs.iter().all(|p| p.state == PubState::Dead) {
            eprintln!("every publisher connection failed");
            break;
        }

        let timeout = if rate > 0.0 && publishing {
            let next = pub_start + Duration::from_secs_f64(sent as f64 / rate);
            next.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50))
        } else {
            Duration::from_millis(50)
        };
        match poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r.expect("poll"),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            if i >= nsubs {
                let p = &mut pubs[i - nsubs];
                match drive_pub(p, &mut scratch) {
                    Ok(Some(status)) if (200..300).contains(&status) => pub_ok += 1,
                    Ok(Some(status)) => {
                        if pub_errors < 5 {
                            eprintln!("publish answered {status}");
                        }
                        pub_errors += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("publisher: {e}");
                        pub_errors += 1;
                        p.state = PubState::Dead;
                    }
                }
                continue;
            }
            let sub = &mut subs[i];
            if sub.state != SubState::Streaming {
                continue;
            }
            let last = &mut last_seq[i];
            let now_ns = ns_since(base);
            let mut on_data = |d: &[u8]| {
                let Some((seq, t)) = unstamp(d) else {
                    unknown += 1;
                    return;
                };
                if seq == 0 || seq > sent {
                    unknown += 1;
                    return;
                }
                if seq <= *last {
                    out_of_order += 1;
                }
                *last = seq;
                total += 1;
                lat.push(now_ns.saturating_sub(t));
                first_delivery_ns.get_or_insert(now_ns);
                last_delivery_ns = now_ns;
                let c = &mut delivered[seq as usize];
                *c += 1;
                if *c == live {
                    complete += 1;
                }
            };
            if let Err(e) = drive_sub(sub, &sub_req, &mut scratch, &mut on_data) {
                if disconnected_during < 5 {
                    eprintln!("subscriber {i}: {e}");
                }
                sub.state = SubState::Dead;
                disconnected_during += 1;
            }
            last_progress = Instant::now();
        }
    }
    let server_cpu_pct = server_cpu.map(|m| m.percent());
    let wall = pub_start.elapsed().as_secs_f64();
    let self_cpu_pct = 100.0
        * cpu_time(std::process::id())
            .unwrap_or_default()
            .saturating_sub(self_cpu0)
            .as_secs_f64()
        / wall;

    let expected = sent * live as u64;
    let lost = expected.saturating_sub(total);
    let span_s = first_delivery_ns
        .map(|f0| {
            (last_delivery_ns.max(f0) as f64 - (pub_start.duration_since(base).as_nanos() as f64))
                / 1e9
        })
        .unwrap_or(0.0);
    let dps = if span_s > 0.0 {
        total as f64 / span_s
    } else {
        0.0
    };
    let s = Summary::of(&mut lat);
    let per_sub = match (rss_before, rss_after) {
        (Some(b), Some(a)) => format!(
            "{:.0}",
            (a as f64 - b as f64) / (nsubs - dead_subs).max(1) as f64
        ),
        _ => "-".into(),
    };
    println!(
        "sse-fanout sub={sub_t} subs={} failed_subs={dead_subs} disconnected={disconnected_during} rate={} window={} \
size={size} published={sent} publish_ok={pub_ok} publish_errors={pub_errors} late_publishes={late_publish} \
expected={expected} delivered={total} lost={lost} out_of_order={out_of_order} unknown={unknown} \
deliveries_per_sec={dps:.0} msgs_per_sec={:.1} p50_ms={} p99_ms={} p999_ms={} max_ms={} mean_ms={} \
rss_before_kib={} rss_after_kib={} bytes_per_sub={per_sub} subscribe_secs={subscribe_secs:.2} \
server_cpu_pct={} loadgen_cpu_pct={self_cpu_pct:.0} early_events={early_events}",
        nsubs - dead_subs,
        if rate > 0.0 { format!("{rate}") } else { "max".into() },
        if rate > 0.0 { "-".to_string() } else { window.to_string() },
        sent as f64 / duration.as_secs_f64(),
        ms(s.p50),
        ms(s.p99),
        ms(s.p999),
        ms(s.max),
        ms(s.mean),
        rss_before.map(|b| (b / 1024).to_string()).unwrap_or("-".into()),
        rss_after.map(|b| (b / 1024).to_string()).unwrap_or("-".into()),
        server_cpu_pct.map(|c| format!("{c:.0}")).unwrap_or("-".into()),
    );
    if lost > 0 || dead_subs > 0 || pub_errors > 0 || disconnected_during > 0 {
        std::process::exit(1);
    }
}

/// Advance one subscriber: finish connecting, write the request, read the
/// head, then decode the stream and hand every `data:` line to `on_data`.
fn drive_sub(
    sub: &mut Sub,
    req: &[u8],
    scratch: &mut [u8],
    on_data: &mut dyn FnMut(&[u8]),
) -> Result<(), String> {
    if sub.state == SubState::Connecting {
        if !connect_done(&sub.s).map_err(|e| format!("connect: {e}"))? {
            return Ok(());
        }
        sub.state = SubState::Head;
    }
    if sub.state == SubState::Head {
        write_some(&mut sub.s, req, &mut sub.woff).map_err(|e| format!("write: {e}"))?;
    }
    loop {
        let n = match read_once(&mut sub.s, scratch).map_err(|e| format!("read: {e}"))? {
            ReadOutcome::Data(n) => n,
            ReadOutcome::WouldBlock => return Ok(()),
            ReadOutcome::Closed => return Err("stream closed by server".into()),
        };
        let input = &scratch[..n];
        if sub.state == SubState::Head {
            sub.buf.extend_from_slice(input);
            let Some(h) = parse_response_head(&sub.buf)? else {
                if sub.buf.len() > 64 * 1024 {
                    return Err("response head too large".into());
                }
                continue;
            };
            if h.status != 200 {
                return Err(format!("subscribe answered {}", h.status));
            }
            sub.chunked = match h.body {
                BodyKind::Chunked => Some(Dechunker::default()),
                BodyKind::Close => None,
                BodyKind::Length(_) => return Err("event stream with a Content-Length".into()),
            };
            sub.state = SubState::Streaming;
            let rest = sub.buf.split_off(h.head_len);
            sub.buf.clear();
            feed(sub, &rest, on_data)?;
            continue;
        }
        // Reads land in the shared scratch buffer; only a partial line is
        // kept per subscriber.
        feed(sub, input, on_data)?;
    }
}

fn feed(sub: &mut Sub, input: &[u8], on_data: &mut dyn FnMut(&[u8])) -> Result<(), String> {
    match &mut sub.chunked {
        Some(d) => {
            d.feed(input, &mut sub.buf).map_err(|e| e.to_string())?;
            if d.done() {
                sse_lines(&mut sub.buf, &mut *on_data);
                return Err("event stream ended (last chunk)".into());
            }
        }
        None => sub.buf.extend_from_slice(input),
    }
    sse_lines(&mut sub.buf, on_data);
    Ok(())
}

/// Advance one publisher connection; `Some(status)` when a response is
/// complete (the connection is then idle again).
fn drive_pub(p: &mut Publisher, scratch: &mut [u8]) -> Result<Option<u16>, String> {
    if p.state == PubState::Connecting {
        if !connect_done(&p.s).map_err(|e| format!("connect: {e}"))? {
            return Ok(None);
        }
        p.state = PubState::Idle;
        return Ok(None);
    }
    if p.state != PubState::Busy {
        // Nothing is expected on an idle connection; a close is an error.
        if let ReadOutcome::Closed = read_once(&mut p.s, scratch).map_err(|e| e.to_string())? {
            return Err("publisher connection closed".into());
        }
        return Ok(None);
    }
    write_some(&mut p.s, &p.out, &mut p.woff).map_err(|e| format!("write: {e}"))?;
    loop {
        match read_once(&mut p.s, scratch).map_err(|e| format!("read: {e}"))? {
            ReadOutcome::Data(n) => p.inbuf.extend_from_slice(&scratch[..n]),
            ReadOutcome::WouldBlock => break,
            ReadOutcome::Closed => return Err("publisher connection closed".into()),
        }
    }
    let Some(h) = parse_response_head(&p.inbuf)? else {
        return Ok(None);
    };
    let body = &p.inbuf[h.head_len..];
    let done = match h.body {
        BodyKind::Length(n) => body.len() >= n,
        BodyKind::Chunked => {
            let mut d = Dechunker::default();
            let mut sink = Vec::new();
            d.feed(body, &mut sink).map_err(|e| e.to_string())?;
            d.done() && body.ends_with(b"\r\n\r\n")
        }
        BodyKind::Close => return Err("publish response without a length".into()),
    };
    if !done {
        return Ok(None);
    }
    p.state = PubState::Idle;
    Ok(Some(h.status))
}

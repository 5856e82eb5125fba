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
//!
//! `--topics K` spreads the messages over K topics (`NAME.0` … `NAME.K-1`,
//! message `seq` to topic `(seq - 1) % K`) and every subscriber holds all
//! K on one connection: `{t}` in the subscribe URL is the K names joined
//! by `--join` (`/sse?topic={t}` with `--join '&topic='` for pushwire,
//! `/msub/{t}` with `--join ,` for nchan's multiplexed channels), `{t}` in
//! the publish URL the one topic of each message. Each subscriber's order
//! is checked per topic: across topics the server owes no order.
//!
//! A cluster: `--sub` may hold several templates separated by spaces
//! (one per node); subscriber `i` connects to template `i % count`, and
//! `--pid` may list several processes, comma-separated (the nodes and
//! Redis): their CPU and memory are summed, and `deliveries_per_cpu_s` is
//! the deliveries per second of CPU all of them used together.
//!
//! `--format ndjson` reads an HTTP-streaming response instead
//! (pushwire's `/topics/{t}/stream`): one JSON object per line, the
//! payload in its `"data"` member; empty lines (heartbeats) are skipped.
//! Same payload, same clock, same loss check, so the two formats compare
//! line for line.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::mio::net::TcpStream;
use loadgen::mio::{Events, Poll};
use loadgen::{
    connect_done, cpu_time, get_request, ms, ns_since, parse_response_head, post_request,
    read_once, rss_bytes, sse_lines, stamp, unstamp, wait, write_some, BodyKind, CpuMeter,
    Dechunker, Flags, Ramp, ReadOutcome, Summary, Url,
};

const USAGE: &str = "usage: sse-fanout --sub 'http://127.0.0.1:PORT/topics/{t}/sse' \
--pub 'http://127.0.0.1:PORT/topics/{t}' [--pid SERVER_PID] [--subs 5000] [--topic NAME] \
[--rate 20 | --rate 0 --window 4] [--duration 10] [--size 64] [--pub-conns 8] [--drain 10] \
[--settle 1] [--connect-parallel 128] [--format sse|ndjson] [--topics 1 --join ,] \
(cluster: --sub 'URL1 URL2' --pid PID1,PID2,REDIS_PID)";

/// How a subscriber's body is cut into messages.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Format {
    /// `text/event-stream`: the `data:` lines.
    Sse,
    /// `application/x-ndjson`: one `{"id","event","data"}` per line.
    Ndjson,
}

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
    format: Format,
}

/// State the publisher threads share with the subscriber loop.
struct Shared {
    /// Messages published so far (the last seq handed out).
    sent: AtomicU64,
    /// Messages every live subscriber has received.
    complete: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    /// Publishes written more than 5 ms after their scheduled time.
    late: AtomicU64,
    running: AtomicUsize,
}

fn main() {
    let f = Flags::parse(USAGE);
    let topic = f
        .opt("topic")
        .unwrap_or_else(|| loadgen::fresh_topic("fanout"));
    let sub_t = f.str("sub", "http://127.0.0.1:8080/topics/{t}/sse");
    let pub_t = f.str("pub", "http://127.0.0.1:8080/topics/{t}");
    let ntopics: usize = f.num("topics", 1);
    if ntopics == 0 {
        loadgen::die(USAGE, "--topics is at least 1");
    }
    let join = f.str("join", ",");
    let names: Vec<String> = if ntopics == 1 {
        vec![topic.clone()]
    } else {
        (0..ntopics).map(|i| format!("{topic}.{i}")).collect()
    };
    let sub_urls: Vec<Url> = sub_t
        .split_whitespace()
        .map(|t| Url::with_topic(t, &names.join(&join)).unwrap_or_else(|e| loadgen::die(USAGE, &e)))
        .collect();
    if sub_urls.is_empty() {
        loadgen::die(USAGE, "--sub is empty");
    }
    let pub_urls: Vec<Url> = names
        .iter()
        .map(|n| Url::with_topic(&pub_t, n).unwrap_or_else(|e| loadgen::die(USAGE, &e)))
        .collect();
    let pids: Vec<u32> = f
        .opt("pid")
        .map(|p| {
            p.split(',')
                .map(|p| p.trim().parse().expect("--pid"))
                .collect()
        })
        .unwrap_or_default();
    let nsubs: usize = f.num("subs", 5000);
    let rate: f64 = f.num("rate", 20.0);
    let window: u64 = f.num("window", 4);
    let duration = f.secs("duration", 10.0);
    let size: usize = f.num("size", 64);
    let npub: usize = f.num("pub-conns", 8);
    let drain = f.secs("drain", 10.0);
    let settle = f.secs("settle", 1.0);
    let parallel: usize = f.num("connect-parallel", 128);
    let format_name = f.str("format", "sse");
    let format = match format_name.as_str() {
        "sse" => Format::Sse,
        "ndjson" => Format::Ndjson,
        other => loadgen::die(USAGE, &format!("unknown --format {other}")),
    };

    let accept = match format {
        Format::Sse => "Accept: text/event-stream\r\nCache-Control: no-cache\r\n",
        Format::Ndjson => "Accept: application/x-ndjson\r\n",
    };
    // Subscriber `i` sends request `i % len` (to its node).
    let sub_reqs: Vec<Vec<u8>> = sub_urls.iter().map(|u| get_request(u, accept)).collect();

    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut scratch = vec![0u8; 256 * 1024];
    let base = Instant::now();

    // ---- phase 1: subscribers ----------------------------------------------
    let rss_of = |pids: &[u32]| -> Option<u64> {
        (!pids.is_empty()).then(|| {
            pids.iter()
                .map(|&p| rss_bytes(p).expect("server VmRSS"))
                .sum()
        })
    };
    let rss_before = rss_of(&pids);
    let mut subs: Vec<Sub> = Vec::with_capacity(nsubs);
    let mut ramp = Ramp::spread(sub_urls.iter().map(|u| u.addr).collect(), nsubs, parallel);
    let (mut ready, mut dead_subs) = (0usize, 0usize);
    let mut early_events = 0u64;
    while ready + dead_subs < nsubs {
        ramp.fill(&poll, &mut subs, |s| Sub {
            s,
            state: SubState::Connecting,
            woff: 0,
            buf: Vec::new(),
            chunked: None,
            format,
        })
        .expect("connect");
        if base.elapsed() > Duration::from_secs(120) {
            eprintln!("subscribe phase timed out: {ready} ready, {dead_subs} failed of {nsubs}");
            std::process::exit(1);
        }
        wait(&mut poll, &mut events, Duration::from_millis(100));
        for ev in events.iter() {
            let i = ev.token().0;
            let sub = &mut subs[i];
            let was = sub.state;
            if let Err(e) = drive_sub(
                sub,
                &sub_reqs[i % sub_reqs.len()],
                &mut scratch,
                &mut |_| early_events += 1,
            ) {
                if dead_subs < 5 {
                    eprintln!("subscriber {i}: {e}");
                }
                sub.state = SubState::Dead;
            }
            match (was, sub.state) {
                (SubState::Streaming, _) => {}
                (_, SubState::Streaming) => {
                    ready += 1;
                    ramp.settled();
                }
                (SubState::Dead, _) => {}
                (_, SubState::Dead) => {
                    dead_subs += 1;
                    ramp.settled();
                }
                _ => {}
            }
        }
    }
    let subscribe_secs = base.elapsed().as_secs_f64();
    // Let the server finish whatever it does after answering the heads.
    let settle_end = Instant::now() + settle;
    while Instant::now() < settle_end {
        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
        for ev in events.iter() {
            let i = ev.token().0;
            if subs[i].state == SubState::Streaming {
                if let Err(e) = drive_sub(
                    &mut subs[i],
                    &sub_reqs[i % sub_reqs.len()],
                    &mut scratch,
                    &mut |_| early_events += 1,
                ) {
                    eprintln!("subscriber {i} while idle: {e}");
                    subs[i].state = SubState::Dead;
                    dead_subs += 1;
                }
            }
        }
    }
    let rss_after = rss_of(&pids);

    // ---- phase 2: publish ----------------------------------------------------
    // Publishers are threads with blocking connections: a publish is
    // stamped and written when it is due, whatever the subscriber loop is
    // busy with.
    let live = (nsubs - dead_subs) as u32;
    let max_msgs = if rate > 0.0 {
        (rate * duration.as_secs_f64()).ceil() as usize + 1
    } else {
        1 << 20
    };
    let shared = Arc::new(Shared {
        sent: AtomicU64::new(0),
        complete: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        late: AtomicU64::new(0),
        running: AtomicUsize::new(npub),
    });
    let pub_start = Instant::now() + Duration::from_millis(20);
    let pub_end = pub_start + duration;
    let threads: Vec<_> = (0..npub)
        .map(|_| {
            let shared = shared.clone();
            let urls = pub_urls.clone();
            std::thread::spawn(move || {
                publisher(
                    &shared,
                    &urls,
                    base,
                    pub_start,
                    pub_end,
                    rate,
                    window,
                    size,
                    max_msgs as u64,
                );
                shared.running.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();

    // Each subscriber's last seq per topic.
    let mut last_seq: Vec<u64> = vec![0; nsubs * ntopics];
    // Deliveries per message, indexed by seq (seq starts at 1).
    let mut delivered: Vec<u32> = vec![0; max_msgs + 1];
    let mut lat: Vec<u64> = Vec::with_capacity(1 << 20);
    let mut out_of_order = 0u64;
    let mut unknown = 0u64;
    let mut total = 0u64;
    let server_cpu: Vec<CpuMeter> = pids.iter().map(|&p| CpuMeter::start(p)).collect();
    let self_cpu0 = cpu_time(std::process::id()).unwrap_or_default();
    let mut last_progress = Instant::now();
    let mut first_delivery_ns: Option<u64> = None;
    let mut last_delivery_ns = 0u64;
    let mut disconnected_during = 0usize;

    loop {
        if shared.running.load(Ordering::SeqCst) == 0 {
            let sent = shared.sent.load(Ordering::SeqCst);
            if total >= sent * live as u64 || last_progress.elapsed() > drain {
                break;
            }
        } else {
            last_progress = Instant::now();
        }
        wait(&mut poll, &mut events, Duration::from_millis(20));
        for ev in events.iter() {
            let i = ev.token().0;
            let sub = &mut subs[i];
            if sub.state != SubState::Streaming {
                continue;
            }
            let last_of_sub = &mut last_seq[i * ntopics..(i + 1) * ntopics];
            let now_ns = ns_since(base);
            let mut on_data = |d: &[u8]| {
                let Some((seq, t)) = unstamp(d) else {
                    unknown += 1;
                    return;
                };
                if seq == 0 || seq as usize >= delivered.len() {
                    unknown += 1;
                    return;
                }
                let last = &mut last_of_sub[(seq - 1) as usize % ntopics];
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
                    shared.complete.fetch_add(1, Ordering::SeqCst);
                }
            };
            if let Err(e) = drive_sub(
                sub,
                &sub_reqs[i % sub_reqs.len()],
                &mut scratch,
                &mut on_data,
            ) {
                if disconnected_during < 5 {
                    eprintln!("subscriber {i}: {e}");
                }
                sub.state = SubState::Dead;
                disconnected_during += 1;
            }
            last_progress = Instant::now();
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let sent = shared.sent.load(Ordering::SeqCst);
    let pub_ok = shared.ok.load(Ordering::SeqCst);
    let pub_errors = shared.errors.load(Ordering::SeqCst);
    let late_publish = shared.late.load(Ordering::SeqCst);
    let server_cpu_pct =
        (!server_cpu.is_empty()).then(|| server_cpu.iter().map(CpuMeter::percent).sum::<f64>());
    let server_cpu_s = server_cpu.iter().map(CpuMeter::seconds).sum::<f64>();
    let per_cpu_s = if server_cpu_s > 0.0 {
        format!("{:.0}", total as f64 / server_cpu_s)
    } else {
        "-".into()
    };
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
        "sse-fanout sub={sub_t} format={format_name} topics={ntopics} subs={} failed_subs={dead_subs} disconnected={disconnected_during} rate={} window={} \
size={size} published={sent} publish_ok={pub_ok} publish_errors={pub_errors} late_publishes={late_publish} \
expected={expected} delivered={total} lost={lost} out_of_order={out_of_order} unknown={unknown} \
deliveries_per_sec={dps:.0} msgs_per_sec={:.1} p50_ms={} p99_ms={} p999_ms={} max_ms={} mean_ms={} \
rss_before_kib={} rss_after_kib={} bytes_per_sub={per_sub} subscribe_secs={subscribe_secs:.2} \
server_cpu_pct={} server_cpu_s={server_cpu_s:.2} deliveries_per_cpu_s={per_cpu_s} \
loadgen_cpu_pct={self_cpu_pct:.0} early_events={early_events}",
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
    let lines = match sub.format {
        Format::Sse => sse_lines,
        Format::Ndjson => ndjson_lines,
    };
    match &mut sub.chunked {
        Some(d) => {
            d.feed(input, &mut sub.buf).map_err(|e| e.to_string())?;
            if d.done() {
                lines(&mut sub.buf, &mut *on_data);
                return Err("stream ended (last chunk)".into());
            }
        }
        None => sub.buf.extend_from_slice(input),
    }
    lines(&mut sub.buf, on_data);
    Ok(())
}

/// Hands the `"data"` value (from its opening quote on) of every complete
/// NDJSON line to `on_data`, keeping a partial last line in `buf`. Empty
/// lines are heartbeats. A line without `"data"` (a gap notice) is handed
/// over whole, and counts as unknown: a gap in a benchmark is a loss.
fn ndjson_lines(buf: &mut Vec<u8>, mut on_data: impl FnMut(&[u8])) {
    const KEY: &[u8] = b"\"data\":";
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
        let mut line = &buf[start..start + i];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if !line.is_empty() {
            match line.windows(KEY.len()).position(|w| w == KEY) {
                Some(k) => on_data(&line[k + KEY.len()..]),
                None => on_data(line),
            }
        }
        start += i + 1;
    }
    buf.drain(..start);
}

/// One publisher thread: one blocking keep-alive connection, one request
/// in flight; message `seq` goes to `urls[(seq - 1) % urls.len()]` (all on
/// one server). With `rate > 0` message `seq` is due at `start + seq / rate`;
/// with `rate == 0` a message goes out whenever fewer than `window` are not
/// yet delivered to every subscriber.
#[allow(clippy::too_many_arguments)]
fn publisher(
    sh: &Shared,
    urls: &[Url],
    base: Instant,
    start: Instant,
    end: Instant,
    rate: f64,
    window: u64,
    size: usize,
    max_msgs: u64,
) {
    let mut s = match std::net::TcpStream::connect(urls[0].addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("publisher: connect: {e}");
            sh.errors.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut inbuf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Claim the next message, then wait until it is due.
        let seq;
        if rate > 0.0 {
            seq = sh.sent.fetch_add(1, Ordering::SeqCst) + 1;
            let due = start + Duration::from_secs_f64((seq - 1) as f64 / rate);
            if due >= end || seq > max_msgs {
                sh.sent.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            } else if now - due > Duration::from_millis(5) {
                sh.late.fetch_add(1, Ordering::SeqCst);
            }
        } else {
            loop {
                if Instant::now() >= end {
                    return;
                }
                let sent = sh.sent.load(Ordering::SeqCst);
                if sent - sh.complete.load(Ordering::SeqCst) < window
                    && sent < max_msgs
                    && sh
                        .sent
                        .compare_exchange(sent, sent + 1, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    seq = sent + 1;
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        let url = &urls[(seq - 1) as usize % urls.len()];
        let req = post_request(url, &stamp(seq, ns_since(base), size));
        if let Err(e) = s.write_all(&req) {
            eprintln!("publisher: write: {e}");
            sh.errors.fetch_add(1, Ordering::SeqCst);
            return;
        }
        inbuf.clear();
        let status = loop {
            match s.read(&mut chunk) {
                Ok(0) => {
                    eprintln!("publisher: connection closed");
                    sh.errors.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    eprintln!("publisher: read: {e}");
                    sh.errors.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
            match response_complete(&inbuf) {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => {
                    eprintln!("publisher: {e}");
                    sh.errors.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        };
        if (200..300).contains(&status) {
            sh.ok.fetch_add(1, Ordering::SeqCst);
        } else {
            if sh.errors.fetch_add(1, Ordering::SeqCst) < 5 {
                eprintln!("publish answered {status}");
            }
        }
    }
}

/// `Some(status)` once `buf` holds a whole response.
fn response_complete(buf: &[u8]) -> Result<Option<u16>, String> {
    let Some(h) = parse_response_head(buf)? else {
        return Ok(None);
    };
    let body = &buf[h.head_len..];
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
    Ok(done.then_some(h.status))
}

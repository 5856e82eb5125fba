//! Polling vs long polling vs SSE vs HTTP streaming vs WebSocket, as a
//! measurement.
//!
//! Starts a server in this process and runs one workload over each
//! transport in turn: N messages published at R per second to a topic
//! that K clients follow. Every message carries its publish time (the
//! publisher and the clients share one clock, `Instant`, in this
//! process), so each receipt gives a latency. Then, per transport, a row:
//!
//! - **requests**: HTTP requests the K clients made (a WebSocket
//!   handshake, an event stream and an NDJSON stream are one each; every
//!   poll is one);
//! - **bytes recv**: bytes the clients read from their sockets — heads,
//!   chunk framing, frame headers, JSON: everything on the wire;
//! - **msgs**: receipts, against N × K; **ok** says whether *every*
//!   client got every message, in publish order, exactly once;
//! - **p50 / p90 / p99 / max**: publish-to-receipt latency.
//!
//! ```text
//! cargo run --release --example transport_compare
//! cargo run --release --example transport_compare -- --messages 500 --rate 200 --clients 20 --interval 250
//! cargo run --example transport_compare -- --transports sse,short --size 1024
//! ```
//!
//! Flags (defaults): `--messages 200`, `--rate 100` (per second),
//! `--clients 10`, `--interval 100` (short-poll period, ms), `--size 64`
//! (payload bytes), `--transports ws,sse,stream,long,short`. It prints progress
//! to stderr and the table to stdout, and ends by itself (each transport
//! takes about N/R seconds plus a fraction).
//!
//! What to expect: WebSocket, SSE and the NDJSON stream answer in well
//! under a millisecond with one request per client (the stream's lines
//! carry the JSON of a WebSocket frame inside the chunk framing of SSE); the long poll costs one request (and a
//! response head) per answer, and its latency grows when messages come
//! faster than a round trip; the short poll costs a request per interval
//! whether or not anything happened, and delays each message by half an
//! interval on average.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use pushwire::client::{
    ClientError, Delivery, HttpClient, SseClient, Stats, StreamClient, WsClient, WsMessage,
};
use pushwire::Config;

#[path = "support/mod.rs"]
mod support;
use support::DemoServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    WebSocket,
    Sse,
    Stream,
    LongPoll,
    ShortPoll,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "WebSocket",
            Transport::Sse => "SSE",
            Transport::Stream => "HTTP stream",
            Transport::LongPoll => "long poll",
            Transport::ShortPoll => "short poll",
        }
    }

    fn parse(s: &str) -> Option<Transport> {
        Some(match s {
            "ws" | "websocket" => Transport::WebSocket,
            "sse" => Transport::Sse,
            "stream" | "ndjson" => Transport::Stream,
            "long" | "longpoll" | "poll" => Transport::LongPoll,
            "short" | "shortpoll" | "messages" => Transport::ShortPoll,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
struct Workload {
    messages: usize,
    rate: f64,
    clients: usize,
    interval: Duration,
    size: usize,
    transports: Vec<Transport>,
}

fn parse_args() -> Result<Workload, String> {
    let mut w = Workload {
        messages: 200,
        rate: 100.0,
        clients: 10,
        interval: Duration::from_millis(100),
        size: 64,
        transports: vec![
            Transport::WebSocket,
            Transport::Sse,
            Transport::Stream,
            Transport::LongPoll,
            Transport::ShortPoll,
        ],
    };
    let usage = "usage: transport_compare [--messages N] [--rate R] [--clients K] \
                 [--interval MS] [--size BYTES] [--transports ws,sse,stream,long,short]";
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{usage}"));
        let bad = |v: &str| format!("bad value {v:?} for {arg}\n{usage}");
        match arg.as_str() {
            "--messages" => {
                let v = value()?;
                w.messages = v.parse().ok().filter(|&n| n > 0).ok_or(bad(&v))?;
            }
            "--rate" => {
                let v = value()?;
                w.rate = v.parse().ok().filter(|&r: &f64| r > 0.0).ok_or(bad(&v))?;
            }
            "--clients" => {
                let v = value()?;
                w.clients = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0 && n <= 1000)
                    .ok_or(bad(&v))?;
            }
            "--interval" => {
                let v = value()?;
                let ms: u64 = v.parse().ok().filter(|&n| n > 0).ok_or(bad(&v))?;
                w.interval = Duration::from_millis(ms);
            }
            "--size" => {
                let v = value()?;
                w.size = v.parse().ok().filter(|&n| n <= 1 << 20).ok_or(bad(&v))?;
            }
            "--transports" => {
                let v = value()?;
                w.transports = v
                    .split(',')
                    .map(|t| Transport::parse(t.trim()).ok_or(bad(t)))
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => return Err(usage.to_string()),
            _ => return Err(format!("unknown flag {arg}\n{usage}")),
        }
    }
    Ok(w)
}

fn main() {
    let w = match parse_args() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let server = DemoServer::start(Config {
        // Keep every message of the run, so that a slow client is late,
        // never gapped.
        history_messages: w.messages.max(1000),
        ..Default::default()
    })
    .expect("bind 127.0.0.1:0");

    println!(
        "{} messages of {} bytes at {}/s to {} clients per transport; short poll every {} ms",
        w.messages,
        w.size,
        w.rate,
        w.clients,
        w.interval.as_millis()
    );
    let mut rows = Vec::new();
    for &t in &w.transports {
        eprintln!("running {} ...", t.name());
        rows.push((t, run_transport(t, server.addr, &server.handle, &w)));
    }
    server.stop().expect("server loop");
    print_table(&w, &rows);
}

/// What one client saw and what it cost.
#[derive(Debug, Default)]
struct ClientReport {
    stats: Stats,
    /// The sequence numbers received, in the order received.
    seqs: Vec<usize>,
    latencies: Vec<Duration>,
    gap: bool,
    error: Option<String>,
}

impl ClientReport {
    /// Records one received message: `"<seq> <publish time in µs> <padding>"`.
    fn record(&mut self, data: &str, base: Instant) {
        let now = base.elapsed();
        let mut parts = data.split(' ');
        let seq = parts.next().and_then(|s| s.parse().ok());
        let sent = parts.next().and_then(|s| s.parse::<u64>().ok());
        if let (Some(seq), Some(sent)) = (seq, sent) {
            self.seqs.push(seq);
            self.latencies
                .push(now.saturating_sub(Duration::from_micros(sent)));
        }
    }

    fn done(&self, n: usize) -> bool {
        self.seqs.last() == Some(&(n - 1))
    }
}

/// The numbers of one row.
struct Row {
    stats: Stats,
    received: usize,
    complete: usize,
    ordered: bool,
    once: bool,
    gap: bool,
    errors: Vec<String>,
    /// Sorted.
    latencies: Vec<Duration>,
    elapsed: Duration,
}

fn run_transport(t: Transport, addr: SocketAddr, handle: &pushwire::Handle, w: &Workload) -> Row {
    let topic = format!("compare-{}", t.name().replace(' ', "-").to_lowercase());
    let base = Instant::now();
    let publish_time = Duration::from_secs_f64(w.messages as f64 / w.rate);
    // However the run goes, every client gives up this long after the
    // start: the program always ends.
    let deadline = base + publish_time + Duration::from_secs(10);
    let ready = Arc::new(Barrier::new(w.clients + 1));
    let clients: Vec<_> = (0..w.clients)
        .map(|_| {
            let ready = ready.clone();
            let topic = topic.clone();
            let (n, interval) = (w.messages, w.interval);
            thread::spawn(move || {
                let mut report = ClientReport::default();
                if let Err(e) = follow(
                    t,
                    addr,
                    &topic,
                    n,
                    interval,
                    base,
                    deadline,
                    &ready,
                    &mut report,
                ) {
                    report.error = Some(e.to_string());
                }
                report
            })
        })
        .collect();
    // Every client is connected (or about to poll) before the first message.
    ready.wait();
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let pad = "x".repeat(w.size);
    for seq in 0..w.messages {
        let at = started + Duration::from_secs_f64(seq as f64 / w.rate);
        thread::sleep(at.saturating_duration_since(Instant::now()));
        let sent = base.elapsed().as_micros();
        let mut data = format!("{seq} {sent} ");
        let room = w.size.saturating_sub(data.len());
        data.push_str(&pad[..room]);
        handle.publish(&topic, None, &data).expect("publish");
    }
    let reports: Vec<ClientReport> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let elapsed = started.elapsed();

    let n = w.messages;
    let mut row = Row {
        stats: Stats::default(),
        received: 0,
        complete: 0,
        ordered: true,
        once: true,
        gap: false,
        errors: Vec::new(),
        latencies: Vec::new(),
        elapsed,
    };
    for r in reports {
        row.stats += r.stats;
        row.received += r.seqs.len();
        row.ordered &= r.seqs.windows(2).all(|p| p[0] < p[1]);
        let mut seen = vec![false; n];
        for &s in &r.seqs {
            match seen.get_mut(s) {
                Some(slot) if !*slot => *slot = true,
                _ => row.once = false,
            }
        }
        if seen.iter().all(|&s| s) {
            row.complete += 1;
        }
        row.gap |= r.gap;
        row.errors.extend(r.error);
        row.latencies.extend(r.latencies);
    }
    row.latencies.sort();
    row
}

/// One client: connects, meets the others at the barrier, then receives
/// until it has the last message or the deadline passes.
#[allow(clippy::too_many_arguments)]
fn follow(
    t: Transport,
    addr: SocketAddr,
    topic: &str,
    n: usize,
    interval: Duration,
    base: Instant,
    deadline: Instant,
    ready: &Barrier,
    r: &mut ClientReport,
) -> Result<(), ClientError> {
    // How often a blocked read wakes to look at the deadline.
    let tick = Some(Duration::from_millis(200));
    match t {
        Transport::WebSocket => {
            // `after=earliest`: even a message published before the
            // subscription was made would be replayed, not lost.
            let target = format!("/topics/{topic}/ws?after=earliest");
            let ws = WsClient::connect_timeout(addr, &target, Some(Duration::from_secs(5)));
            ready.wait();
            let mut ws = ws?;
            ws.set_read_timeout(tick)?;
            while !r.done(n) && Instant::now() < deadline {
                match ws.recv() {
                    Ok(WsMessage::Text(text)) => match Delivery::from_json(&text)? {
                        Delivery::Message(m) => r.record(&m.data, base),
                        Delivery::Gap { .. } => r.gap = true,
                    },
                    Ok(_) => {}
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        r.stats = ws.stats();
                        return Err(e);
                    }
                }
            }
            r.stats = ws.stats();
            ws.close(1000, "done")?;
        }
        Transport::Sse => {
            let sse = SseClient::connect(addr, topic, Some("earliest"));
            ready.wait();
            let mut sse = sse?;
            sse.set_read_timeout(tick)?;
            while !r.done(n) && Instant::now() < deadline {
                match sse.next_event() {
                    Ok(Some(e)) if e.event_type == "gap" => r.gap = true,
                    Ok(Some(e)) => r.record(&e.data, base),
                    Ok(None) => break,
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        r.stats = sse.stats();
                        return Err(e);
                    }
                }
            }
            r.stats = sse.stats();
        }
        Transport::Stream => {
            // `?after=earliest`, as for the others; a drop would resume
            // after the last id by itself.
            let stream = StreamClient::connect(addr, topic, Some("earliest"));
            ready.wait();
            let mut stream = stream?;
            stream.set_read_timeout(tick)?;
            while !r.done(n) && Instant::now() < deadline {
                match stream.next_delivery() {
                    Ok(Some(Delivery::Message(m))) => r.record(&m.data, base),
                    Ok(Some(Delivery::Gap { .. })) => r.gap = true,
                    Ok(None) => break,
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        r.stats = stream.stats();
                        return Err(e);
                    }
                }
            }
            r.stats = stream.stats();
        }
        Transport::LongPoll | Transport::ShortPoll => {
            ready.wait();
            let mut http = HttpClient::new(addr);
            let mut cursor = "earliest".to_string();
            // Short pollers start spread over one interval, as real ones
            // would.
            let mut next = Instant::now() + interval.mul_f64(random_fraction());
            let result = (|| -> Result<(), ClientError> {
                while !r.done(n) && Instant::now() < deadline {
                    let batch = if t == Transport::LongPoll {
                        // Parked until there is news: no rhythm to keep.
                        http.poll(topic, Some(&cursor), 2)?
                    } else {
                        thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += interval;
                        http.messages(topic, Some(&cursor))?
                    };
                    r.gap |= batch.gap;
                    for m in &batch.messages {
                        r.record(&m.data, base);
                    }
                    cursor = batch.last_id;
                }
                Ok(())
            })();
            r.stats = http.stats();
            result?;
        }
    }
    Ok(())
}

/// A number in [0, 1) from the crate's random helper.
fn random_fraction() -> f64 {
    let b = pushwire::client::random_bytes::<8>();
    (u64::from_ne_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2}", d.as_secs_f64() * 1000.0),
        None => "-".into(),
    }
}

fn print_table(w: &Workload, rows: &[(Transport, Row)]) {
    let expected = w.messages * w.clients;
    println!();
    println!(
        "{:<11} {:>8} {:>11} {:>9} {:>11} {:<14} {:>8} {:>8} {:>8} {:>8}",
        "transport",
        "requests",
        "bytes recv",
        "bytes/msg",
        "msgs",
        "ok",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    for (t, row) in rows {
        let ok = if row.complete == w.clients && row.ordered && row.once && !row.gap {
            "all, once".to_string()
        } else {
            let mut why = Vec::new();
            if row.complete < w.clients {
                why.push(format!("{}/{} full", row.complete, w.clients));
            }
            if !row.ordered {
                why.push("reordered".into());
            }
            if !row.once {
                why.push("dupes".into());
            }
            if row.gap {
                why.push("gap".into());
            }
            why.join(",")
        };
        let per_msg = if row.received == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.0}",
                row.stats.bytes_received as f64 / row.received as f64
            )
        };
        println!(
            "{:<11} {:>8} {:>11} {:>9} {:>11} {:<14} {:>8} {:>8} {:>8} {:>8}",
            t.name(),
            row.stats.requests,
            row.stats.bytes_received,
            per_msg,
            format!("{}/{}", row.received, expected),
            ok,
            ms(percentile(&row.latencies, 0.50)),
            ms(percentile(&row.latencies, 0.90)),
            ms(percentile(&row.latencies, 0.99)),
            ms(row.latencies.last().copied()),
        );
    }
    println!();
    println!(
        "requests and bytes are the clients' (the publisher uses Handle::publish, in process);"
    );
    println!("\"ok\": every client got all messages, in publish order, exactly once.");
    for (t, row) in rows {
        let connections = row.stats.connections;
        println!(
            "{:<11} {} connection(s), {} bytes sent by clients, run took {:.2} s",
            t.name(),
            connections,
            row.stats.bytes_sent,
            row.elapsed.as_secs_f64()
        );
        for e in &row.errors {
            println!("  error: {e}");
        }
    }
}

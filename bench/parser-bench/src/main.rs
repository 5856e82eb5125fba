//! Request-head parser throughput: pushwire's `HeadParser` against
//! httparse on the same heads.
//!
//! Both parsers are used the way a keep-alive server uses them: ours with
//! one `HeadParser` and one `RequestHead` reused for every request (its
//! header vector is cleared, not reallocated); httparse with a fresh
//! `[EMPTY_HEADER; 32]` and `Request` per parse, as its documentation shows.
//! Each measurement round runs one parser on one head for a fixed time;
//! rounds alternate between the two parsers and the median round counts,
//! so that drift in the machine (turbo, a neighbour's build) hits both.
//!
//! Run: `cargo run --release -p parser-bench [-- --round-ms 300 --rounds 7]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use pushwire::wire::http1::{HeadLimits, HeadParser, RequestHead};

/// The heads measured: what browsers, curl and load tools really send.
const HEADS: &[(&str, &[u8])] = &[
    (
        "browser GET (SSE, 15 headers)",
        b"GET /topics/chat/sse HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-cache\r\n\
Accept: text/event-stream\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Dest: empty\r\n\
Referer: http://localhost:8080/demo/ticker\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b; theme=dark\r\n\r\n",
    ),
    (
        "curl GET",
        b"GET /topics/chat/messages?after=1-41 HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
User-Agent: curl/7.88.1\r\n\
Accept: */*\r\n\r\n",
    ),
    (
        "wrk GET",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    ),
    (
        "POST with Content-Length (head only)",
        b"POST /topics/chat?event=note HTTP/1.1\r\n\
Host: 127.0.0.1:8080\r\n\
User-Agent: curl/7.88.1\r\n\
Accept: */*\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 11\r\n\r\nhello world",
    ),
];

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

/// Runs `f` in batches until `budget` passes; returns nanoseconds per call.
fn round(budget: Duration, mut f: impl FnMut()) -> f64 {
    const BATCH: u64 = 4096;
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for _ in 0..BATCH {
            f();
        }
        calls += BATCH;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let round_ms = flag("--round-ms", 300);
    let rounds = flag("--rounds", 7) as usize;
    let budget = Duration::from_millis(round_ms);
    let limits = HeadLimits::default();

    println!(
        "{:<38} {:>6} {:>10} {:>12} {:>10} {:>12} {:>8}",
        "head", "bytes", "ours MB/s", "ours heads/s", "httparse", "heads/s", "ours/hp"
    );
    let mut ratios = Vec::new();
    for (name, buf) in HEADS {
        // Both must agree on the head before their speed means anything.
        let mut p = HeadParser::new();
        let mut head = RequestHead::default();
        assert_eq!(p.parse(buf, &limits, &mut head), Ok(true), "{name}: ours");
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut hs);
        let hp_len = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("{name}: httparse: {other:?}"),
        };
        assert_eq!(head.len, hp_len, "{name}: head length");
        assert_eq!(
            head.headers.len(),
            req.headers.len(),
            "{name}: header count"
        );
        let head_bytes = hp_len as f64;

        let mut ours_ns = Vec::new();
        let mut hp_ns = Vec::new();
        // Warm-up: caches, branch predictors, CPU frequency.
        let warm = Duration::from_millis(round_ms / 2);
        let mut ours = || {
            let r = p.parse(black_box(buf), &limits, &mut head);
            black_box((&r, head.len, head.headers.len()));
        };
        round(warm, &mut ours);
        let hp = || {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut hs);
            let r = req.parse(black_box(buf));
            black_box((&r, req.headers.len()));
        };
        round(warm, hp);
        for _ in 0..rounds {
            ours_ns.push(round(budget, &mut ours));
            hp_ns.push(round(budget, hp));
        }
        let o = median(&mut ours_ns);
        let h = median(&mut hp_ns);
        let ratio = h / o; // throughput ratio ours/httparse
        ratios.push(ratio);
        println!(
            "{:<38} {:>6} {:>10.0} {:>12.0} {:>10.0} {:>12.0} {:>8.2}",
            name,
            hp_len,
            head_bytes / o * 1e3,
            1e9 / o,
            head_bytes / h * 1e3,
            1e9 / h,
            ratio
        );
    }
    let geo = ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64;
    println!("geometric mean ours/httparse: {:.2}", geo.exp());
}

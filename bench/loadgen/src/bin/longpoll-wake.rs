//! Long-poll wake: N clients park on the poll URL (no cursor: they wait for
//! the next message), then one message is published and every client must
//! be answered with it. Reports the wake latency of each client (publish
//! request written -> its whole response read): p50, p99, max.
//!
//! URLs are templates with `{t}` for the topic: pushwire
//! `/topics/{t}/poll?timeout=60`, nchan's long-poll subscriber `/lp/{t}`.

use std::time::{Duration, Instant};

use loadgen::mio::net::TcpStream;
use loadgen::mio::{Events, Poll, Token};
use loadgen::{
    connect, connect_done, get_request, ms, ns_since, parse_response_head, post_request, read_once,
    rss_bytes, stamp, wait, write_some, BodyKind, Dechunker, Flags, Ramp, ReadOutcome, Summary,
    Url,
};

const USAGE: &str =
    "usage: longpoll-wake --poll 'http://127.0.0.1:PORT/topics/{t}/poll?timeout=60' \
--pub 'http://127.0.0.1:PORT/topics/{t}' [--clients 5000] [--topic NAME] [--settle 2] \
[--timeout 30] [--pid SERVER_PID] [--connect-parallel 128]";

#[derive(PartialEq, Eq, Clone, Copy)]
enum State {
    Connecting,
    Parked,
    Done,
    Dead,
}

struct Client {
    s: TcpStream,
    state: State,
    woff: usize,
    buf: Vec<u8>,
}

fn main() {
    let f = Flags::parse(USAGE);
    let topic = f
        .opt("topic")
        .unwrap_or_else(|| loadgen::fresh_topic("wake"));
    let poll_t = f.str("poll", "http://127.0.0.1:8080/topics/{t}/poll?timeout=60");
    let pub_t = f.str("pub", "http://127.0.0.1:8080/topics/{t}");
    let poll_url = Url::with_topic(&poll_t, &topic).unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let pub_url = Url::with_topic(&pub_t, &topic).unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let n: usize = f.num("clients", 5000);
    let settle = f.secs("settle", 2.0);
    let timeout = f.secs("timeout", 30.0);
    let pid: Option<u32> = f.opt("pid").map(|p| p.parse().expect("--pid"));
    let parallel: usize = f.num("connect-parallel", 128);

    let req = get_request(&poll_url, "Accept: application/json\r\n");
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut scratch = vec![0u8; 64 * 1024];
    let base = Instant::now();
    let rss_before = pid.map(|p| rss_bytes(p).expect("server VmRSS"));

    // ---- park every client ---------------------------------------------------
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let mut ramp = Ramp::new(poll_url.addr, n, parallel);
    let (mut parked, mut dead) = (0usize, 0usize);
    let mut early = 0usize;
    while parked + dead < n {
        ramp.fill(&poll, &mut clients, |s| Client {
            s,
            state: State::Connecting,
            woff: 0,
            buf: Vec::new(),
        })
        .expect("connect");
        if base.elapsed() > Duration::from_secs(120) {
            eprintln!("park phase timed out: {parked} parked, {dead} failed of {n}");
            std::process::exit(1);
        }
        wait(&mut poll, &mut events, Duration::from_millis(100));
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut clients[i];
            let r = (|| -> Result<bool, String> {
                match c.state {
                    State::Connecting => {
                        if !connect_done(&c.s).map_err(|e| format!("connect: {e}"))? {
                            return Ok(false);
                        }
                        Ok(write_some(&mut c.s, &req, &mut c.woff)
                            .map_err(|e| format!("write: {e}"))?)
                    }
                    State::Parked => {
                        // Nothing may arrive before the publish.
                        match read_once(&mut c.s, &mut scratch).map_err(|e| e.to_string())? {
                            ReadOutcome::WouldBlock => Ok(false),
                            ReadOutcome::Closed => Err("closed while parked".into()),
                            ReadOutcome::Data(k) => Err(format!(
                                "answered before the publish: {:?}",
                                String::from_utf8_lossy(&scratch[..k.min(60)])
                            )),
                        }
                    }
                    _ => Ok(false),
                }
            })();
            match (c.state, r) {
                (State::Connecting, Ok(true)) => {
                    c.state = State::Parked;
                    parked += 1;
                    ramp.settled();
                }
                (_, Ok(_)) => {}
                (st, Err(e)) => {
                    if dead < 5 {
                        eprintln!("client {i}: {e}");
                    }
                    if st == State::Parked {
                        parked -= 1;
                        early += 1;
                    } else {
                        ramp.settled();
                    }
                    c.state = State::Dead;
                    dead += 1;
                }
            }
        }
    }
    let park_secs = base.elapsed().as_secs_f64();
    // Give the server time to read and park every request; anything it
    // answers meanwhile is an error.
    let settle_end = Instant::now() + settle;
    let mut publisher = connect(&poll, pub_url.addr, Token(n)).expect("connect publisher");
    let mut pub_connected = false;
    while Instant::now() < settle_end || !pub_connected {
        if Instant::now() > settle_end + Duration::from_secs(10) {
            eprintln!("publisher did not connect");
            std::process::exit(1);
        }
        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
        for ev in events.iter() {
            let i = ev.token().0;
            if i == n {
                pub_connected =
                    pub_connected || connect_done(&publisher).expect("publisher connect");
                continue;
            }
            let c = &mut clients[i];
            if c.state == State::Parked {
                match read_once(&mut c.s, &mut scratch) {
                    Ok(ReadOutcome::WouldBlock) => {}
                    other => {
                        if early < 5 {
                            let what = match other {
                                Ok(ReadOutcome::Data(k)) => {
                                    String::from_utf8_lossy(&scratch[..k.min(60)]).into_owned()
                                }
                                Ok(_) => "closed".into(),
                                Err(e) => e.to_string(),
                            };
                            eprintln!("client {i} answered before the publish: {what:?}");
                        }
                        c.state = State::Dead;
                        early += 1;
                        parked -= 1;
                        dead += 1;
                    }
                }
            }
        }
    }
    let rss_parked = pid.map(|p| rss_bytes(p).expect("server VmRSS"));

    // ---- one publish -----------------------------------------------------------
    let t_pub = ns_since(base);
    let body = stamp(1, t_pub, 32);
    let out = post_request(&pub_url, &body);
    let mut poff = 0;
    write_some(&mut publisher, &out, &mut poff).expect("publish write");
    let mut pub_resp: Vec<u8> = Vec::new();
    let mut pub_status: Option<u16> = None;
    let mut lat: Vec<u64> = Vec::with_capacity(n);
    let mut wrong = 0usize;
    let mut failed_after = 0usize;
    let deadline = Instant::now() + timeout;
    while (lat.len() + wrong + failed_after < parked || pub_status.is_none())
        && Instant::now() < deadline
    {
        wait(&mut poll, &mut events, Duration::from_millis(50));
        for ev in events.iter() {
            let i = ev.token().0;
            if i == n {
                let _ = write_some(&mut publisher, &out, &mut poff);
                while let Ok(ReadOutcome::Data(k)) = read_once(&mut publisher, &mut scratch) {
                    pub_resp.extend_from_slice(&scratch[..k]);
                }
                if pub_status.is_none() {
                    if let Ok(Some(h)) = parse_response_head(&pub_resp) {
                        pub_status = Some(h.status);
                    }
                }
                continue;
            }
            let c = &mut clients[i];
            if c.state != State::Parked {
                continue;
            }
            let r = (|| -> Result<Option<bool>, String> {
                loop {
                    match read_once(&mut c.s, &mut scratch).map_err(|e| e.to_string())? {
                        ReadOutcome::Data(k) => c.buf.extend_from_slice(&scratch[..k]),
                        ReadOutcome::WouldBlock => break,
                        ReadOutcome::Closed => break,
                    }
                }
                let Some(h) = parse_response_head(&c.buf)? else {
                    return Ok(None);
                };
                let b = &c.buf[h.head_len..];
                let body = match h.body {
                    BodyKind::Length(len) if b.len() >= len => b[..len].to_vec(),
                    BodyKind::Length(_) => return Ok(None),
                    BodyKind::Chunked => {
                        let mut d = Dechunker::default();
                        let mut out = Vec::new();
                        d.feed(b, &mut out).map_err(|e| e.to_string())?;
                        if !d.done() {
                            return Ok(None);
                        }
                        out
                    }
                    BodyKind::Close => return Err("response without a length".into()),
                };
                let ok = h.status == 200
                    && body
                        .windows(body_marker().len())
                        .any(|w| w == body_marker());
                if !ok && wrong < 3 {
                    eprintln!(
                        "client {i}: status {} body {:?}",
                        h.status,
                        String::from_utf8_lossy(&body[..body.len().min(120)])
                    );
                }
                Ok(Some(ok))
            })();
            match r {
                Ok(None) => {}
                Ok(Some(true)) => {
                    lat.push(ns_since(base) - t_pub);
                    c.state = State::Done;
                }
                Ok(Some(false)) => {
                    wrong += 1;
                    c.state = State::Done;
                }
                Err(e) => {
                    if failed_after < 3 {
                        eprintln!("client {i}: {e}");
                    }
                    failed_after += 1;
                    c.state = State::Dead;
                }
            }
        }
    }
    let answered = lat.len();
    let missing = parked - answered - wrong - failed_after;
    let s = Summary::of(&mut lat);
    let per = match (rss_before, rss_parked) {
        (Some(b), Some(a)) => format!("{:.0}", (a as f64 - b as f64) / parked.max(1) as f64),
        _ => "-".into(),
    };
    println!(
        "longpoll-wake poll={poll_t} clients={n} parked={parked} failed={dead} early_answers={early} \
answered={answered} wrong_body={wrong} errors_after_publish={failed_after} unanswered={missing} \
publish_status={} p50_ms={} p99_ms={} max_ms={} mean_ms={} bytes_per_parked={per} park_secs={park_secs:.2}",
        pub_status.map(|s| s.to_string()).unwrap_or("-".into()),
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        ms(s.mean),
    );
    if dead > 0 || wrong > 0 || failed_after > 0 || missing > 0 {
        std::process::exit(1);
    }
}

/// Bytes every answer must contain: the start of the published payload.
fn body_marker() -> &'static [u8] {
    b"s=1 t="
}

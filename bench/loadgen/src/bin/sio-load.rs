//! Socket.IO load over raw sockets: Engine.IO v4 and Socket.IO v5 written
//! here by hand (no client library), so that the generator's cost per
//! message is one frame parse and the same for every server.
//!
//! A client on WebSocket (`--mode fanout` and `--mode idle`):
//!
//! ```text
//! GET /socket.io/?EIO=4&transport=websocket   → 101, then the frame 0{"sid",…}
//! → 40                                         ← 40{"sid":…}    (CONNECT to /)
//! → 421["subscribe","ROOM",{}]                 ← 431[{…}]       (ack 1)
//! ← 42["message","s=K t=NS xxx",{"topic","id"}] …               (deliveries)
//! ← 2                                          → 3              (server pings)
//! ```
//!
//! A client by polling, then upgraded (`--mode upgrade`), as the official
//! client does it:
//!
//! ```text
//! GET  …transport=polling                      ← 0{"sid",…,"upgrades":["websocket"]}
//! POST …transport=polling&sid=S  body 40       ← ok
//! GET  …transport=polling&sid=S                ← 40{"sid":…}
//! GET  …transport=polling&sid=S  (parked)  and, on a second connection,
//! GET  …transport=websocket&sid=S              → 101
//! → 2probe                                     ← 3probe
//!                       the parked poll        ← 6 (noop)
//! → 5 (upgrade), then 421["subscribe",…]       ← 431[…]         setup done
//! ```
//!
//! Modes:
//! - `fanout`: `--clients` subscribe to one room; one more client publishes
//!   `--messages` events at `--rate` per second with
//!   `42N["publish","ROOM","s=K t=NS…",{}]` (acked). Reports latency
//!   (publish written → delivery read) percentiles, loss (must be 0),
//!   out-of-order deliveries, and deliveries per server CPU-second (server
//!   CPU read before the first publish and after the last delivery).
//! - `idle`: `--clients` connect (CONNECT acknowledged) and stay idle; the
//!   server's VmRSS before and after, over the clients: bytes per idle
//!   Socket.IO connection (kernel socket buffers are not in VmRSS).
//!   `--connect off` stops at the Engine.IO open packet: what the session
//!   costs before Socket.IO adds its socket.
//! - `upgrade`: `--clients` go through the polling handshake and the
//!   upgrade, `--parallel` at a time; setups per second, setup-time
//!   percentiles, and setups per server CPU-second.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::mio::net::TcpStream;
use loadgen::mio::{Events, Poll, Token};
use loadgen::{
    connect, connect_done, cpu_time, parse_response_head, read_once, rss_bytes, wait, write_some,
    BodyKind, CpuMeter, Flags, ReadOutcome, Summary, Url,
};

const USAGE: &str = "usage: sio-load --url http://127.0.0.1:PORT [--mode fanout|idle|upgrade] \
[--pid SERVER_PID] [--clients 5000] [--parallel 128] \
fanout: [--messages 200] [--rate 10] [--size 64] [--drain 20] \
idle: [--settle 2] [--connect on|off] \
upgrade: (--parallel is how many set up at once)";

/// Where one client is in its setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Polling: the handshake GET is out.
    PollOpen,
    /// Polling: the POST carrying CONNECT (`40`) is out.
    PollConnect,
    /// Polling: a GET is out to fetch the CONNECT reply.
    PollConnected,
    /// Polling connected; a GET is parked and the WebSocket is opening.
    Probing,
    /// WebSocket: the 101 is awaited.
    WsHandshake,
    /// WebSocket: the Engine.IO open packet (`0{…}`) is awaited.
    EioOpen,
    /// CONNECT sent over WebSocket; `40{…}` is awaited.
    SioConnect,
    /// `subscribe` sent; its ack (`431…`) is awaited.
    Subscribing,
    /// Set up: receiving.
    Ready,
    Dead,
}

/// One HTTP/1.1 or WebSocket connection's bytes.
struct Pipe {
    s: TcpStream,
    connected: bool,
    out: Vec<u8>,
    woff: usize,
    buf: Vec<u8>,
}

impl Pipe {
    fn new(s: TcpStream) -> Pipe {
        Pipe {
            s,
            connected: false,
            out: Vec::new(),
            woff: 0,
            buf: Vec::with_capacity(1024),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.woff == self.out.len() {
            self.out.clear();
            self.woff = 0;
        }
        self.out.extend_from_slice(bytes);
        self.flush()
    }

    fn flush(&mut self) -> Result<(), String> {
        if !self.connected {
            return Ok(());
        }
        write_some(&mut self.s, &self.out, &mut self.woff).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Reads all that is there. `Err` when the peer closed or failed.
    fn fill(&mut self) -> Result<usize, String> {
        let mut chunk = [0u8; 16 * 1024];
        let mut got = 0;
        loop {
            match read_once(&mut self.s, &mut chunk).map_err(|e| e.to_string())? {
                ReadOutcome::Data(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    got += n;
                }
                ReadOutcome::WouldBlock => return Ok(got),
                ReadOutcome::Closed => return Err("closed by the server".into()),
            }
        }
    }

    /// The body of a complete `Content-Length` response at the start of
    /// `buf`, removed from it; `None` while incomplete.
    fn response(&mut self) -> Result<Option<Vec<u8>>, String> {
        let Some(head) = parse_response_head(&self.buf)? else {
            return Ok(None);
        };
        if head.status != 200 {
            return Err(format!("polling answered {}", head.status));
        }
        let BodyKind::Length(n) = head.body else {
            return Err("polling answer without Content-Length".into());
        };
        if self.buf.len() < head.head_len + n {
            return Ok(None);
        }
        let body = self.buf[head.head_len..head.head_len + n].to_vec();
        self.buf.drain(..head.head_len + n);
        Ok(Some(body))
    }
}

struct Client {
    phase: Phase,
    /// The WebSocket (token 2i), once opened.
    ws: Option<Pipe>,
    /// The polling connection (token 2i+1), in `upgrade` mode.
    http: Option<Pipe>,
    sid: String,
    /// Upgrade: the WebSocket answered 101, `3probe` came, the parked
    /// poll returned.
    ws_open: bool,
    probed: bool,
    poll_done: bool,
    started: Instant,
    /// Sequence number of the next delivery expected.
    next: u64,
}

fn main() {
    let f = Flags::parse(USAGE);
    let base = f.str("url", "http://127.0.0.1:8080");
    let url = Url::parse(&base).unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let mode = f.str("mode", "fanout");
    if !["fanout", "idle", "upgrade"].contains(&mode.as_str()) {
        loadgen::die(
            USAGE,
            &format!("--mode: fanout, idle or upgrade, not {mode:?}"),
        );
    }
    let nclients: usize = f.num("clients", 5000);
    let parallel: usize = f.num("parallel", 128);
    let messages: u64 = f.num("messages", 200);
    let rate: f64 = f.num("rate", 10.0);
    let size: usize = f.num("size", 64);
    let drain = f.secs("drain", 20.0);
    let settle = f.secs("settle", 2.0);
    let pid: Option<u32> = f.opt("pid").map(|p| p.parse().expect("--pid"));
    let room = loadgen::fresh_topic("sio");
    let host = url.host.clone();
    let addr = url.addr;
    let subscribe = sio_frame(format!("421[\"subscribe\",\"{room}\",{{}}]").as_bytes());

    let rss0 = pid.map(|p| rss_bytes(p).unwrap_or(0));
    let cpu_at_start = pid.map(|p| cpu_time(p).unwrap_or_default());
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut clients: Vec<Client> = Vec::with_capacity(nclients);
    let mut settling = 0usize; // started and not yet Ready or Dead
    let (mut ready, mut dead) = (0usize, 0usize);
    let mut setup_ns: Vec<u64> = Vec::with_capacity(nclients);
    let t_base = Instant::now();
    let mut tally = Tally {
        deliveries: 0,
        out_of_order: 0,
        latencies: Vec::new(),
        t_base,
    };
    let setup_started = Instant::now();
    let mut setup_wall = None;
    let connect_deadline = Instant::now() + Duration::from_secs(120);
    let mut publishing: Option<(Instant, Option<Duration>, CpuMeter)> = None;
    let mut publisher = None;
    let done = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut last_progress = Instant::now();
    let mut ids = Vec::new();
    let eio_only = match f.str("connect", "on").as_str() {
        "on" => false,
        "off" => true,
        other => loadgen::die(USAGE, &format!("--connect: on or off, not {other:?}")),
    };
    let ctx = Ctx {
        addr,
        host: &host,
        subscribe: &subscribe,
        idle: mode == "idle",
        eio_only,
    };

    loop {
        // Start clients while fewer than `parallel` are setting up.
        while clients.len() < nclients && settling < parallel {
            let i = clients.len();
            let polling = mode == "upgrade";
            let s = connect(&poll, addr, Token(2 * i + polling as usize)).expect("connect");
            let mut pipe = Pipe::new(s);
            let phase = if polling {
                pipe.out = get(&host, "transport=polling");
                Phase::PollOpen
            } else {
                pipe.out = loadgen::get_request(
                    &Url {
                        addr,
                        tls: false,
                        host: host.clone(),
                        path: "/socket.io/?EIO=4&transport=websocket".into(),
                    },
                    WS_FIELDS,
                );
                Phase::WsHandshake
            };
            let (ws, http) = if polling {
                (None, Some(pipe))
            } else {
                (Some(pipe), None)
            };
            clients.push(Client {
                phase,
                ws,
                http,
                sid: String::new(),
                ws_open: false,
                probed: false,
                poll_done: false,
                started: Instant::now(),
                next: 0,
            });
            settling += 1;
        }
        if setup_wall.is_none() && ready + dead == nclients {
            setup_wall = Some(setup_started.elapsed());
            if mode != "fanout" {
                break;
            }
            if dead > 0 {
                eprintln!("{dead} of {nclients} clients failed to set up");
                std::process::exit(1);
            }
            let cpu0 = pid.map(|p| cpu_time(p).unwrap_or_default());
            publishing = Some((Instant::now(), cpu0, CpuMeter::start(std::process::id())));
            let (done, acked, room) = (Arc::clone(&done), Arc::clone(&acked), room.clone());
            let url = url.clone();
            publisher = Some(std::thread::spawn(move || {
                publish(&url, &room, messages, rate, size, t_base, &done, &acked)
            }));
            last_progress = Instant::now();
        }
        if setup_wall.is_none() && Instant::now() > connect_deadline {
            eprintln!("setup timed out: {ready} ready of {nclients}");
            std::process::exit(1);
        }
        if publishing.is_some() {
            if tally.deliveries >= messages * nclients as u64 {
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
        for &tok in &ids {
            let i = tok / 2;
            let c = &mut clients[i];
            if c.phase == Phase::Dead {
                continue;
            }
            let was_setting_up = c.phase != Phase::Ready;
            let r = step(c, i, tok % 2 == 1, &ctx, &poll, &mut tally);
            match r {
                Ok(()) => {
                    if was_setting_up && c.phase == Phase::Ready {
                        ready += 1;
                        settling -= 1;
                        setup_ns.push(c.started.elapsed().as_nanos() as u64);
                    }
                }
                Err(e) => {
                    if dead < 5 {
                        eprintln!("client {i} ({:?}): {e}", c.phase);
                    }
                    if was_setting_up {
                        settling -= 1;
                    }
                    c.phase = Phase::Dead;
                    c.ws = None;
                    c.http = None;
                    dead += 1;
                }
            }
        }
        if publishing.is_some() && !ids.is_empty() {
            last_progress = Instant::now();
        }
    }

    let wall = setup_wall.unwrap_or_else(|| setup_started.elapsed());
    let setup = Summary::of(&mut setup_ns);
    match mode.as_str() {
        "idle" => {
            std::thread::sleep(settle);
            // Answer whatever pings arrived while settling: a client that
            // missed one would be dropped, and counted dead below.
            drain_pings(&mut poll, &mut events, &mut clients);
            let rss1 = pid.map(|p| rss_bytes(p).unwrap_or(0));
            let alive = clients.iter().filter(|c| c.phase == Phase::Ready).count();
            let per = match (rss0, rss1) {
                (Some(a), Some(b)) if alive > 0 => {
                    format!("{}", b.saturating_sub(a) / alive as u64)
                }
                _ => "-".into(),
            };
            println!(
                "sio-load mode=idle clients={nclients} ready={alive} dead={} rss_before={} rss_after={} \
bytes_per_conn={per}",
                nclients - alive,
                rss0.map_or("-".into(), |v| v.to_string()),
                rss1.map_or("-".into(), |v| v.to_string()),
            );
            if alive != nclients {
                std::process::exit(1);
            }
        }
        "upgrade" => {
            let cpu = match (pid, cpu_at_start) {
                (Some(p), Some(c0)) => Some(cpu_time(p).unwrap_or_default().saturating_sub(c0)),
                _ => None,
            };
            let per_cpu_s = match cpu {
                Some(c) if c > Duration::ZERO => format!("{:.0}", ready as f64 / c.as_secs_f64()),
                _ => "-".into(),
            };
            println!(
                "sio-load mode=upgrade clients={nclients} parallel={parallel} ready={ready} dead={dead} \
wall_s={:.2} setups_per_s={:.0} setup_p50_ms={} setup_p99_ms={} setup_max_ms={} \
server_cpu_ms={} setups_per_server_cpu_s={per_cpu_s}",
                wall.as_secs_f64(),
                ready as f64 / wall.as_secs_f64().max(1e-9),
                loadgen::ms(setup.p50),
                loadgen::ms(setup.p99),
                loadgen::ms(setup.max),
                cpu.map_or("-".into(), |c| c.as_millis().to_string()),
            );
            if dead > 0 {
                std::process::exit(1);
            }
        }
        _ => {
            let Some((t0, cpu0, me)) = publishing else {
                unreachable!("fanout ends only while publishing")
            };
            let pub_wall = t0.elapsed();
            let server_cpu = match (pid, cpu0) {
                (Some(p), Some(c0)) => Some(cpu_time(p).unwrap_or_default().saturating_sub(c0)),
                _ => None,
            };
            done.store(true, Ordering::Relaxed);
            let published = publisher.map(|h| h.join().unwrap_or(0)).unwrap_or(0);
            let (deliveries, out_of_order) = (tally.deliveries, tally.out_of_order);
            let expected = messages * nclients as u64;
            let missing = expected.saturating_sub(deliveries);
            let lat = Summary::of(&mut tally.latencies);
            let (cpu_ms, per_cpu_s) = match server_cpu {
                Some(c) if c > Duration::ZERO => (
                    c.as_millis().to_string(),
                    format!("{:.0}", deliveries as f64 / c.as_secs_f64()),
                ),
                Some(c) => (c.as_millis().to_string(), "-".into()),
                None => ("-".into(), "-".into()),
            };
            println!(
                "sio-load mode=fanout clients={nclients} messages={messages} rate={rate} size={size} \
published={published} acked={} deliveries={deliveries} missing={missing} out_of_order={out_of_order} \
dead={dead} p50_ms={} p99_ms={} p999_ms={} max_ms={} wall_s={:.2} server_cpu_ms={cpu_ms} \
deliveries_per_server_cpu_s={per_cpu_s} loadgen_cpu_pct={:.0}",
                acked.load(Ordering::Relaxed),
                loadgen::ms(lat.p50),
                loadgen::ms(lat.p99),
                loadgen::ms(lat.p999),
                loadgen::ms(lat.max),
                pub_wall.as_secs_f64(),
                me.percent(),
            );
            if missing > 0 || out_of_order > 0 || dead > 0 || published != messages {
                std::process::exit(1);
            }
        }
    }
}

const WS_FIELDS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// A polling GET of `/socket.io/?EIO=4&QUERY`.
fn get(host: &str, query: &str) -> Vec<u8> {
    format!("GET /socket.io/?EIO=4&{query} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// A polling POST of `body` (Engine.IO packets).
fn post(host: &str, query: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /socket.io/?EIO=4&{query} HTTP/1.1\r\nHost: {host}\r\n\
Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// What every client's steps share.
struct Ctx<'a> {
    addr: SocketAddr,
    host: &'a str,
    /// The masked frame `421["subscribe","ROOM",{}]`.
    subscribe: &'a [u8],
    /// `--mode idle`: a client is set up once connected to `/`.
    idle: bool,
    /// `--mode idle --connect off`: once the Engine.IO session is open,
    /// without joining a namespace (what the session alone costs).
    eio_only: bool,
}

/// Deliveries seen, in order or not, and their latencies.
struct Tally {
    deliveries: u64,
    out_of_order: u64,
    latencies: Vec<u64>,
    t_base: Instant,
}

/// One readiness event on client `i`'s connection (`polling`: its HTTP
/// one, else its WebSocket).
fn step(
    c: &mut Client,
    i: usize,
    polling: bool,
    ctx: &Ctx,
    poll: &Poll,
    tally: &mut Tally,
) -> Result<(), String> {
    if polling {
        return step_polling(c, i, ctx, poll);
    }
    let Some(p) = c.ws.as_mut() else {
        return Ok(());
    };
    if !p.connected {
        if !connect_done(&p.s).map_err(|e| e.to_string())? {
            return Ok(());
        }
        p.connected = true;
    }
    p.flush()?;
    p.fill()?;
    if c.phase == Phase::WsHandshake || (c.phase == Phase::Probing && !c.ws_open) {
        let Some(head) = parse_response_head(&p.buf)? else {
            return Ok(());
        };
        if head.status != 101 {
            return Err(format!("not upgraded: {}", head.status));
        }
        p.buf.drain(..head.head_len);
        c.ws_open = true;
        if c.phase == Phase::WsHandshake {
            c.phase = Phase::EioOpen;
        } else {
            p.send(&sio_frame(b"2probe"))?;
        }
    }
    loop {
        let Some(p) = c.ws.as_mut() else {
            return Ok(());
        };
        let Some((op, hlen, plen)) = frame(&p.buf)? else {
            return Ok(());
        };
        let payload = p.buf[hlen..hlen + plen].to_vec();
        p.buf.drain(..hlen + plen);
        match op {
            0x1 => {}
            0x8 => return Err("close frame from the server".into()),
            0x9 | 0xa => continue, // WebSocket ping/pong: Engine.IO has its own
            _ => return Err(format!("unexpected opcode {op}")),
        }
        if payload == b"2" {
            p.send(&sio_frame(b"3"))?;
            continue;
        }
        match c.phase {
            Phase::EioOpen if payload.starts_with(b"0{") && ctx.eio_only => c.phase = Phase::Ready,
            Phase::EioOpen if payload.starts_with(b"0{") => {
                p.send(&sio_frame(b"40"))?;
                c.phase = Phase::SioConnect;
            }
            Phase::SioConnect if payload.starts_with(b"40") => {
                if ctx.idle {
                    c.phase = Phase::Ready;
                } else {
                    p.send(ctx.subscribe)?;
                    c.phase = Phase::Subscribing;
                }
            }
            Phase::Probing if payload == b"3probe" => {
                c.probed = true;
                maybe_upgrade(c, ctx)?;
            }
            Phase::Subscribing if payload.starts_with(b"431") => c.phase = Phase::Ready,
            Phase::Ready if payload.starts_with(b"42") => {
                let (seq, t) = loadgen::unstamp(&payload).ok_or("an event without a stamp")?;
                tally.deliveries += 1;
                tally
                    .latencies
                    .push(loadgen::ns_since(tally.t_base).saturating_sub(t));
                if seq != c.next {
                    tally.out_of_order += 1;
                }
                c.next = seq + 1;
            }
            phase => {
                return Err(format!(
                    "{:?} in phase {phase:?}",
                    String::from_utf8_lossy(&payload[..payload.len().min(80)])
                ))
            }
        }
    }
}

/// The polling connection of client `i` (`--mode upgrade`).
fn step_polling(c: &mut Client, i: usize, ctx: &Ctx, poll: &Poll) -> Result<(), String> {
    let host = ctx.host;
    let Some(p) = c.http.as_mut() else {
        return Ok(());
    };
    if !p.connected {
        if !connect_done(&p.s).map_err(|e| e.to_string())? {
            return Ok(());
        }
        p.connected = true;
    }
    p.flush()?;
    p.fill()?;
    while let Some(body) = c.http.as_mut().map(|p| p.response()).transpose()?.flatten() {
        let p = c.http.as_mut().ok_or("no polling connection")?;
        let polling = format!("transport=polling&sid={}", c.sid);
        match c.phase {
            Phase::PollOpen => {
                c.sid = sid_of(&body).ok_or("no sid in the handshake")?;
                if !body.windows(11).any(|w| w == b"\"websocket\"") {
                    return Err("the handshake offers no websocket upgrade".into());
                }
                p.send(&post(
                    host,
                    &format!("transport=polling&sid={}", c.sid),
                    b"40",
                ))?;
                c.phase = Phase::PollConnect;
            }
            Phase::PollConnect => {
                if body != b"ok" {
                    return Err(format!(
                        "POST answered {:?}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                p.send(&get(host, &polling))?;
                c.phase = Phase::PollConnected;
            }
            Phase::PollConnected => {
                if !body.split(|&b| b == 0x1e).any(|pk| pk.starts_with(b"40")) {
                    return Err(format!(
                        "no CONNECT reply: {:?}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                // A parked GET, as the official client always keeps one
                // out, and the WebSocket beside it.
                p.send(&get(host, &polling))?;
                let s = connect(poll, ctx.addr, Token(2 * i)).map_err(|e| e.to_string())?;
                let mut ws = Pipe::new(s);
                ws.out = format!(
                    "GET /socket.io/?EIO=4&transport=websocket&sid={} HTTP/1.1\r\nHost: {host}\r\n{WS_FIELDS}\r\n",
                    c.sid
                )
                .into_bytes();
                c.ws = Some(ws);
                c.phase = Phase::Probing;
            }
            Phase::Probing => {
                // The parked poll ends with a noop (6) once the server has
                // seen the probe; nothing is subscribed yet, so nothing
                // else can be in it.
                c.poll_done = true;
                return maybe_upgrade(c, ctx);
            }
            other => return Err(format!("a polling answer in phase {other:?}")),
        }
    }
    Ok(())
}

/// After `3probe` and the parked poll's noop: `5` commits the upgrade, and
/// the subscribe that follows is the first use of the WebSocket.
fn maybe_upgrade(c: &mut Client, ctx: &Ctx) -> Result<(), String> {
    if !(c.probed && c.poll_done) {
        return Ok(());
    }
    let ws = c.ws.as_mut().ok_or("no WebSocket")?;
    ws.send(&sio_frame(b"5"))?;
    ws.send(ctx.subscribe)?;
    c.http = None; // the polling connection is done
    c.phase = Phase::Subscribing;
    Ok(())
}

/// Answers pings on every ready client (the idle mode's settle time).
fn drain_pings(poll: &mut Poll, events: &mut Events, clients: &mut [Client]) {
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        wait(poll, events, Duration::from_millis(50));
        for e in events.iter() {
            let c = &mut clients[e.token().0 / 2];
            let Some(p) = c.ws.as_mut() else { continue };
            if p.fill().is_err() {
                c.phase = Phase::Dead;
                continue;
            }
            while let Ok(Some((op, hlen, plen))) = frame(&p.buf) {
                let ping = op == 1 && &p.buf[hlen..hlen + plen] == b"2";
                p.buf.drain(..hlen + plen);
                if ping && p.send(&sio_frame(b"3")).is_err() {
                    c.phase = Phase::Dead;
                    break;
                }
            }
        }
    }
}

/// `"sid":"…"` of an Engine.IO open packet.
fn sid_of(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find("\"sid\":\"")? + 7..];
    Some(rest[..rest.find('"')?].to_string())
}

/// A masked client text frame (RFC 6455 §5.3: a client masks every frame).
fn sio_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut v = Vec::with_capacity(payload.len() + 14);
    v.push(0x81);
    match payload.len() {
        n if n < 126 => v.push(0x80 | n as u8),
        n if n < 65536 => {
            v.push(0x80 | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(0x80 | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(&mask);
    v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    v
}

/// `(opcode, header length, payload length)` of a complete unmasked
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
    Ok(Some((b[0] & 0x0f, hlen, plen)))
}

/// The publisher: its own Socket.IO client on WebSocket (blocking, on its
/// own thread), emitting `messages` events at `rate` per second, each
/// with an ack; returns how many were written. `acked` counts the acks.
#[allow(clippy::too_many_arguments)]
fn publish(
    url: &Url,
    room: &str,
    messages: u64,
    rate: f64,
    size: usize,
    t_base: Instant,
    done: &AtomicBool,
    acked: &AtomicU64,
) -> u64 {
    let mut s = std::net::TcpStream::connect(url.addr).expect("publisher connect");
    s.set_nodelay(true).ok();
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {}\r\n{WS_FIELDS}\r\n",
        url.host
    );
    s.write_all(req.as_bytes()).expect("publisher handshake");
    let mut buf = Vec::new();
    let read_frames =
        |s: &mut std::net::TcpStream, buf: &mut Vec<u8>, until: Instant| -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            loop {
                if buf.starts_with(b"HTTP/") {
                    if let Ok(Some(h)) = parse_response_head(buf) {
                        buf.drain(..h.head_len);
                    }
                }
                while let Ok(Some((_, hlen, plen))) = frame(buf) {
                    out.push(buf[hlen..hlen + plen].to_vec());
                    buf.drain(..hlen + plen);
                }
                let left = until.saturating_duration_since(Instant::now());
                if !out.is_empty() || left.is_zero() {
                    return out;
                }
                s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .ok();
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk) {
                    Ok(0) => return out,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) => return out,
                }
            }
        };
    // Open, CONNECT, connected.
    let mut connected = false;
    let setup_until = Instant::now() + Duration::from_secs(10);
    while !connected && Instant::now() < setup_until {
        for pk in read_frames(&mut s, &mut buf, setup_until) {
            if pk.starts_with(b"0{") {
                s.write_all(&sio_frame(b"40")).ok();
            } else if pk.starts_with(b"40") {
                connected = true;
            }
        }
    }
    if !connected {
        eprintln!("publisher: no CONNECT");
        return 0;
    }
    let handle = |s: &mut std::net::TcpStream, pks: Vec<Vec<u8>>| {
        for pk in pks {
            if pk == b"2" {
                s.write_all(&sio_frame(b"3")).ok();
            } else if pk.starts_with(b"43") {
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let start = Instant::now();
    let mut written = 0;
    for k in 0..messages {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let due = start + Duration::from_secs_f64(k as f64 / rate.max(0.001));
        while Instant::now() < due {
            let pks = read_frames(&mut s, &mut buf, due);
            handle(&mut s, pks);
        }
        let data = loadgen::stamp(k, loadgen::ns_since(t_base), size);
        let data = String::from_utf8_lossy(&data);
        let ev = format!("42{}[\"publish\",\"{room}\",\"{data}\",{{}}]", k + 10);
        if s.write_all(&sio_frame(ev.as_bytes())).is_err() {
            break;
        }
        written += 1;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while acked.load(Ordering::Relaxed) < written && Instant::now() < until {
        let pks = read_frames(
            &mut s,
            &mut buf,
            Instant::now() + Duration::from_millis(100),
        );
        handle(&mut s, pks);
    }
    written
}

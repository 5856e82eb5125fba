//! Closed-loop WebSocket echo load, in the manner of uWebSockets'
//! `load_test`: N connections each send one masked text frame of S bytes,
//! wait for its echo, then send the next. Messages per second are counted
//! over a fixed window after a warm-up. Every echo is checked: opcode,
//! length, and the first and last bytes of the payload.
//!
//! `--deflate on` offers permessage-deflate without context takeover and
//! sends `--size` bytes of compressible JSON text, compressed once up
//! front (RSV1 set). Each connection inflates its first echo and checks it
//! byte for byte; every later echo must have RSV1 and the same compressed
//! bytes (no context takeover makes the server's output for one message
//! always the same), so the generator spends a compare, not an inflate,
//! per message and the server's zlib work is what is measured.
//!
//! `--url wss://...` runs the same over TLS (rustls, ring provider, full
//! handshakes), trusting the CA certificate in `--ca PEM`.

use std::time::{Duration, Instant};

use loadgen::mio::{Events, Poll};
use loadgen::{
    connect_done, read_once, wait, write_some, ws_upgrade_request, CpuMeter, Flags, Ramp,
    ReadOutcome, Url,
};

const USAGE: &str = "usage: ws-echo-load --url ws://127.0.0.1:PORT/echo [--conns 100] [--size 20] \
[--warmup 2] [--duration 10] [--connect-parallel 128] [--pid SERVER_PID] [--deflate off|on] \
[--ca CA_PEM (wss://)]";

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[derive(PartialEq, Eq)]
enum State {
    Connecting,
    Handshake,
    Echo,
    Dead,
}

struct Conn {
    s: loadgen::tls::Stream,
    state: State,
    /// Bytes of the current outgoing message (or handshake) written so far.
    woff: usize,
    rbuf: Vec<u8>,
    rlen: usize,
    /// With `--deflate on`: the first echo's compressed payload, checked
    /// by inflating it; later echoes must equal it.
    first_echo: Option<Vec<u8>>,
}

fn main() {
    let f = Flags::parse(USAGE);
    let url = Url::parse(&f.str("url", "ws://127.0.0.1:8080/echo"))
        .unwrap_or_else(|e| loadgen::die(USAGE, &e));
    let nconns: usize = f.num("conns", 100);
    let size: usize = f.num("size", 20);
    let warmup = f.secs("warmup", 2.0);
    let duration = f.secs("duration", 10.0);
    let parallel: usize = f.num("connect-parallel", 128);
    let pid: Option<u32> = f.opt("pid").map(|p| p.parse().expect("--pid"));
    let mut cpu: Option<(Option<CpuMeter>, CpuMeter)> = None;

    let deflate = match f.str("deflate", "off").as_str() {
        "on" => true,
        "off" => false,
        other => loadgen::die(USAGE, &format!("--deflate: on or off, not {other:?}")),
    };
    let payload: Vec<u8> = if deflate {
        loadgen::compressible_text(size)
    } else {
        (0..size).map(|i| b'a' + (i % 26) as u8).collect()
    };
    let frame = if deflate {
        let mut f = masked_text_frame(&loadgen::deflate_message(&payload, 6));
        f[0] |= 0x40; // RSV1: RFC 7692 §6, a compressed message
        f
    } else {
        masked_text_frame(&payload)
    };
    let handshake = if deflate {
        loadgen::ws_upgrade_request_deflate(&url)
    } else {
        ws_upgrade_request(&url)
    };
    // Server frames carry no mask: at most 10 bytes of header.
    let echo_len = size
        + if size < 126 {
            2
        } else if size < 65536 {
            4
        } else {
            10
        };
    let check = size.min(32);

    let tls = if url.tls {
        let ca = f
            .opt("ca")
            .unwrap_or_else(|| loadgen::die(USAGE, "wss:// needs --ca PEM"));
        Some(loadgen::tls::client_config(ca.as_ref()).unwrap_or_else(|e| loadgen::die(USAGE, &e)))
    } else {
        None
    };
    let tls_host = url
        .host
        .rsplit_once(':')
        .map_or(url.host.as_str(), |h| h.0)
        .to_string();
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4096);
    let mut conns: Vec<Conn> = Vec::with_capacity(nconns);
    let mut ramp = Ramp::new(url.addr, nconns, parallel);
    let mut ready = 0usize;
    let mut dead = 0usize;
    let mut bad_echo = 0u64;
    let mut count = 0u64;
    let t_start = Instant::now();
    let connect_deadline = t_start + Duration::from_secs(60);

    // Phase 1: connect and upgrade every connection, `parallel` at a time.
    // Phase 2: the echo loop starts on every connection at once.
    let mut phase_echo = false;
    let mut measure_from: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    let mut scratch_events = Vec::new();

    loop {
        let opened = ramp.fill(&poll, &mut conns, |s| Conn {
            s: loadgen::tls::Stream::new(s, tls.as_ref(), &tls_host).expect("TLS client"),
            state: State::Connecting,
            woff: 0,
            rbuf: vec![0; echo_len.max(1024) + 64],
            rlen: 0,
            first_echo: None,
        });
        if let Err(e) = opened {
            eprintln!("connect: {e}");
            std::process::exit(1);
        }
        if !phase_echo && ready + dead == nconns {
            if ready == 0 {
                eprintln!("no connection was upgraded");
                std::process::exit(1);
            }
            phase_echo = true;
            let now = Instant::now();
            measure_from = Some(now + warmup);
            end = Some(now + warmup + duration);
            // Every connection sends its first message.
            for (i, c) in conns.iter_mut().enumerate() {
                if c.state == State::Echo {
                    c.woff = 0;
                    if let Err(e) = write_some(&mut c.s, &frame, &mut c.woff) {
                        eprintln!("conn {i}: write: {e}");
                        c.state = State::Dead;
                        dead += 1;
                    }
                }
            }
        }
        if !phase_echo && Instant::now() > connect_deadline {
            eprintln!("connect phase timed out: {ready} upgraded of {nconns}");
            std::process::exit(1);
        }
        if let Some(m) = measure_from {
            if Instant::now() >= m {
                count = 0;
                bad_echo = 0;
                cpu = Some((
                    pid.map(CpuMeter::start),
                    CpuMeter::start(std::process::id()),
                ));
                measure_from = None;
            }
        }
        if let Some(e) = end {
            if Instant::now() >= e {
                break;
            }
        }

        wait(&mut poll, &mut events, Duration::from_millis(50));
        scratch_events.clear();
        scratch_events.extend(events.iter().map(|e| e.token().0));
        for &i in &scratch_events {
            let c = &mut conns[i];
            match c.state {
                State::Dead => {}
                State::Connecting => match connect_done(c.s.tcp()) {
                    Ok(false) => {}
                    Ok(true) => {
                        c.state = State::Handshake;
                        c.woff = 0;
                        if let Err(e) = write_some(&mut c.s, &handshake, &mut c.woff) {
                            eprintln!("conn {i}: handshake write: {e}");
                            c.state = State::Dead;
                            dead += 1;
                            ramp.settled();
                        }
                    }
                    Err(e) => {
                        eprintln!("conn {i}: connect: {e}");
                        c.state = State::Dead;
                        dead += 1;
                        ramp.settled();
                    }
                },
                State::Handshake => {
                    let r = (|| -> Result<bool, String> {
                        write_some(&mut c.s, &handshake, &mut c.woff).map_err(|e| e.to_string())?;
                        loop {
                            match read_once(&mut c.s, &mut c.rbuf[c.rlen..])
                                .map_err(|e| e.to_string())?
                            {
                                ReadOutcome::Data(n) => c.rlen += n,
                                ReadOutcome::WouldBlock => break,
                                ReadOutcome::Closed => return Err("closed during handshake".into()),
                            }
                            if c.rlen == c.rbuf.len() {
                                return Err("handshake response too large".into());
                            }
                        }
                        let Some(end) = c.rbuf[..c.rlen].windows(4).position(|w| w == b"\r\n\r\n")
                        else {
                            return Ok(false);
                        };
                        if !c.rbuf.starts_with(b"HTTP/1.1 101") {
                            let line = c.rbuf[..c.rlen]
                                .split(|&b| b == b'\r')
                                .next()
                                .unwrap_or(&[]);
                            return Err(format!("not upgraded: {}", String::from_utf8_lossy(line)));
                        }
                        if deflate && !loadgen::accepted_deflate(&c.rbuf[..end]) {
                            return Err("permessage-deflate was not accepted".into());
                        }
                        if end + 4 != c.rlen {
                            return Err("bytes after the 101 response".into());
                        }
                        c.rlen = 0;
                        Ok(true)
                    })();
                    match r {
                        Ok(false) => {}
                        Ok(true) => {
                            c.state = State::Echo;
                            c.woff = frame.len(); // nothing to write until phase 2
                            ready += 1;
                            ramp.settled();
                        }
                        Err(e) => {
                            eprintln!("conn {i}: {e}");
                            c.state = State::Dead;
                            dead += 1;
                            ramp.settled();
                        }
                    }
                }
                State::Echo => {
                    let r = (|| -> Result<(), String> {
                        // Finish a partly written message first.
                        write_some(&mut c.s, &frame, &mut c.woff).map_err(|e| e.to_string())?;
                        loop {
                            if c.rlen == c.rbuf.len() {
                                let n = c.rbuf.len() * 2;
                                c.rbuf.resize(n, 0);
                            }
                            let space = c.rbuf.len() - c.rlen;
                            // A read shorter than the space left drained the
                            // socket: the next byte raises a new edge, so the
                            // read that would only say WouldBlock is skipped
                            // (one syscall less per message).
                            let drained = match read_once(&mut c.s, &mut c.rbuf[c.rlen..])
                                .map_err(|e| e.to_string())?
                            {
                                ReadOutcome::Data(n) => {
                                    c.rlen += n;
                                    // Over TLS a short read says nothing
                                    // of what the socket still holds.
                                    n < space && !c.s.is_tls()
                                }
                                ReadOutcome::WouldBlock => return Ok(()),
                                ReadOutcome::Closed => return Err("closed by server".into()),
                            };
                            // One message is in flight at a time, so the
                            // buffer holds at most one echo (plus, rarely,
                            // a control frame before it).
                            loop {
                                match parse_server_frame(&c.rbuf[..c.rlen])? {
                                    None => break,
                                    Some((op, hlen, plen)) => {
                                        let total = hlen + plen;
                                        if op == 0x1 {
                                            let p = &c.rbuf[hlen..total];
                                            let good = if deflate {
                                                let rsv1 = c.rbuf[0] & 0x40 != 0;
                                                match &c.first_echo {
                                                    Some(z) => rsv1 && p == &z[..],
                                                    None => {
                                                        let ok = rsv1
                                                            && loadgen::inflate_message(
                                                                p,
                                                                size + 1,
                                                            )
                                                            .is_some_and(|m| m == payload);
                                                        if ok {
                                                            c.first_echo = Some(p.to_vec());
                                                        }
                                                        ok
                                                    }
                                                }
                                            } else {
                                                plen == size
                                                    && p[..check] == payload[..check]
                                                    && p[plen - check..] == payload[size - check..]
                                            };
                                            if !good {
                                                bad_echo += 1;
                                            }
                                            count += 1;
                                            c.rbuf.copy_within(total..c.rlen, 0);
                                            c.rlen -= total;
                                            if c.woff < frame.len() {
                                                return Err(
                                                    "echo arrived before the message was sent"
                                                        .into(),
                                                );
                                            }
                                            c.woff = 0;
                                            write_some(&mut c.s, &frame, &mut c.woff)
                                                .map_err(|e| e.to_string())?;
                                        } else if op == 0x8 {
                                            return Err(format!(
                                                "close frame from server: {:?}",
                                                &c.rbuf[hlen..total.min(hlen + 2)]
                                            ));
                                        } else {
                                            // ping/pong: ignored while busy.
                                            c.rbuf.copy_within(total..c.rlen, 0);
                                            c.rlen -= total;
                                        }
                                    }
                                }
                            }
                            if drained {
                                return Ok(());
                            }
                        }
                    })();
                    if let Err(e) = r {
                        eprintln!("conn {i}: {e}");
                        c.state = State::Dead;
                        dead += 1;
                    }
                }
            }
        }
    }

    let rate = count as f64 / duration.as_secs_f64();
    let (server_cpu, self_cpu) = match &cpu {
        Some((s, me)) => (
            s.as_ref()
                .map(|m| format!("{:.0}", m.percent()))
                .unwrap_or("-".into()),
            format!("{:.0}", me.percent()),
        ),
        None => ("-".into(), "-".into()),
    };
    println!(
        "ws-echo-load url={} conns={nconns} size={size} deflate={} duration={:.1}s messages={count} msgs_per_sec={rate:.0} \
bad_echo={bad_echo} dead_conns={dead} server_cpu_pct={server_cpu} loadgen_cpu_pct={self_cpu}",
        f.str("url", ""),
        if deflate { "on" } else { "off" },
        duration.as_secs_f64()
    );
    if dead > 0 || bad_echo > 0 {
        std::process::exit(1);
    }
}

/// A FIN text frame from a client: masked, as RFC 6455 §5.3 requires.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

/// `(opcode, header length, payload length)` of a complete unmasked frame
/// at the start of `b`, `None` if incomplete.
fn parse_server_frame(b: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x80 == 0 {
        return Err("fragmented echo (FIN clear)".into());
    }
    if b[1] & 0x80 != 0 {
        return Err("masked frame from server".into());
    }
    let (hlen, plen) = match b[1] & 0x7f {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (4, u16::from_be_bytes([b[2], b[3]]) as usize)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            (
                10,
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
            )
        }
        n => (2, n as usize),
    };
    if b.len() < hlen + plen {
        return Ok(None);
    }
    Ok(Some((b[0] & 0x0f, hlen, plen)))
}

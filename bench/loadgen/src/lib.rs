//! Shared pieces of the load generators: flags, loopback URLs, non-blocking
//! sockets on mio and a connection ramp, request and response heads, a
//! streaming chunked decoder, an SSE line splitter, latency percentiles and
//! a server's resident memory.
//!
//! Every generator is one thread driving one `mio::Poll`, so that it can be
//! pinned to one core next to a server pinned to the other, and so that the
//! generator's own cost per message is a read and a parse, nothing more.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use mio;

pub mod tls;

// ---- flags ---------------------------------------------------------------

/// `--name value` flags; every flag takes a value.
pub struct Flags {
    map: HashMap<String, String>,
    usage: &'static str,
}

impl Flags {
    /// Parse `std::env::args()`. `usage` is printed on `--help` and on error.
    pub fn parse(usage: &'static str) -> Flags {
        let mut map = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if a == "-h" || a == "--help" {
                eprintln!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = a.strip_prefix("--") else {
                die(usage, &format!("unexpected argument {a:?}"));
            };
            let Some(v) = args.next() else {
                die(usage, &format!("--{name} needs a value"));
            };
            map.insert(name.to_string(), v);
        }
        Flags { map, usage }
    }

    pub fn str(&self, name: &str, default: &str) -> String {
        self.map
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn opt(&self, name: &str) -> Option<String> {
        self.map.get(name).cloned()
    }

    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.map.get(name) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| die(self.usage, &format!("--{name}: bad number {v:?}"))),
        }
    }

    pub fn secs(&self, name: &str, default: f64) -> Duration {
        Duration::from_secs_f64(self.num(name, default))
    }
}

pub fn die(usage: &str, msg: &str) -> ! {
    eprintln!("error: {msg}\n\n{usage}");
    std::process::exit(2)
}

// ---- URLs ------------------------------------------------------------------

/// `http://127.0.0.1:PORT/path` or `ws://...`: an address and the
/// request-target. Only loopback addresses are accepted: these tools load
/// servers on this machine and nothing else.
#[derive(Clone, Debug)]
pub struct Url {
    pub addr: SocketAddr,
    /// `https://` or `wss://`.
    pub tls: bool,
    pub host: String,
    pub path: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let tls = s.starts_with("https://") || s.starts_with("wss://");
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("ws://"))
            .or_else(|| s.strip_prefix("https://"))
            .or_else(|| s.strip_prefix("wss://"))
            .ok_or_else(|| format!("{s:?}: only http://, ws://, https:// and wss:// URLs"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let host_for_parse = host.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = host_for_parse
            .parse()
            .map_err(|_| format!("{s:?}: host must be IP:PORT"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{s:?}: refusing a non-loopback address"));
        }
        Ok(Url {
            addr,
            tls,
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    /// Parse a template, replacing `{t}` with `topic`.
    pub fn with_topic(template: &str, topic: &str) -> Result<Url, String> {
        Url::parse(&template.replace("{t}", topic))
    }
}

// ---- clocks and statistics -------------------------------------------------

/// Nanoseconds since `base`, as carried in message payloads.
pub fn ns_since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Latency summary of a set of nanosecond samples.
pub struct Summary {
    pub n: usize,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: u64,
}

impl Summary {
    pub fn of(samples: &mut [u64]) -> Summary {
        if samples.is_empty() {
            return Summary {
                n: 0,
                p50: 0,
                p99: 0,
                p999: 0,
                max: 0,
                mean: 0,
            };
        }
        samples.sort_unstable();
        let at = |q: f64| {
            samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        let sum: u128 = samples.iter().map(|&s| s as u128).sum();
        Summary {
            n: samples.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: *samples.last().unwrap(),
            mean: (sum / samples.len() as u128) as u64,
        }
    }
}

/// Nanoseconds as milliseconds with three decimals.
pub fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// Resident set size of process `pid` in bytes (`VmRSS` of
/// `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            let kib: u64 = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .map_err(|_| io::Error::other("bad VmRSS"))?;
            return Ok(kib * 1024);
        }
    }
    Err(io::Error::other("no VmRSS"))
}

/// CPU time (user + system) process `pid` has used, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = &s[s.rfind(')').ok_or_else(|| io::Error::other("bad stat"))? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    // USER_HZ is 100 on every Linux this runs on.
    Ok(Duration::from_millis(ticks * 10))
}

/// Measures a process's CPU use over an interval, as a share of one core.
pub struct CpuMeter {
    pid: u32,
    cpu0: Duration,
    t0: Instant,
}

impl CpuMeter {
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter {
            pid,
            cpu0: cpu_time(pid).unwrap_or_default(),
            t0: Instant::now(),
        }
    }

    /// CPU seconds used since `start`.
    pub fn seconds(&self) -> f64 {
        cpu_time(self.pid)
            .unwrap_or_default()
            .saturating_sub(self.cpu0)
            .as_secs_f64()
    }

    /// Percent of one core used since `start`.
    pub fn percent(&self) -> f64 {
        let cpu = cpu_time(self.pid)
            .unwrap_or_default()
            .saturating_sub(self.cpu0);
        100.0 * cpu.as_secs_f64() / self.t0.elapsed().as_secs_f64().max(1e-9)
    }
}

// ---- sockets ---------------------------------------------------------------

/// Start a non-blocking connect and register it for reads and writes
/// (edge-triggered). Completion shows as the first writable event.
pub fn connect(
    poll: &mio::Poll,
    addr: SocketAddr,
    token: mio::Token,
) -> io::Result<mio::net::TcpStream> {
    let mut s = mio::net::TcpStream::connect(addr)?;
    poll.registry().register(
        &mut s,
        token,
        mio::Interest::READABLE | mio::Interest::WRITABLE,
    )?;
    Ok(s)
}

/// Opens `n` connections to one address with at most `parallel` of them
/// still setting up (connecting, or waiting for their handshake's answer),
/// so that a ramp of thousands does not overflow the server's accept queue
/// and measure SYN retransmits instead of the server.
pub struct Ramp {
    /// Connection `i` goes to `addrs[i % addrs.len()]`.
    addrs: Vec<SocketAddr>,
    n: usize,
    parallel: usize,
    /// Connections started and not yet set up or failed.
    pub pending: usize,
}

impl Ramp {
    pub fn new(addr: SocketAddr, n: usize, parallel: usize) -> Ramp {
        Ramp::spread(vec![addr], n, parallel)
    }

    /// Like [`Ramp::new`], the connections dealt round-robin over `addrs`
    /// (several servers of one cluster).
    pub fn spread(addrs: Vec<SocketAddr>, n: usize, parallel: usize) -> Ramp {
        assert!(!addrs.is_empty(), "Ramp needs an address");
        Ramp {
            addrs,
            n,
            parallel,
            pending: 0,
        }
    }

    /// Start connects until `conns` holds `n` or `parallel` are pending.
    /// `wrap` makes each new socket a connection; its token is its index in
    /// `conns`.
    pub fn fill<T>(
        &mut self,
        poll: &mio::Poll,
        conns: &mut Vec<T>,
        mut wrap: impl FnMut(mio::net::TcpStream) -> T,
    ) -> io::Result<()> {
        while conns.len() < self.n && self.pending < self.parallel {
            let addr = self.addrs[conns.len() % self.addrs.len()];
            let s = connect(poll, addr, mio::Token(conns.len()))?;
            conns.push(wrap(s));
            self.pending += 1;
        }
        Ok(())
    }

    /// A pending connection is set up, or has failed: room for another.
    pub fn settled(&mut self) {
        self.pending -= 1;
    }
}

/// Wait up to `timeout` for events. A signal interrupting the wait is no
/// error: it leaves `events` empty, as a timeout does.
pub fn wait(poll: &mut mio::Poll, events: &mut mio::Events, timeout: Duration) {
    match poll.poll(events, Some(timeout)) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
        r => r.expect("poll"),
    }
}

/// Whether a non-blocking connect has finished: `Ok(true)` connected,
/// `Ok(false)` still in progress, `Err` failed.
pub fn connect_done(s: &mio::net::TcpStream) -> io::Result<bool> {
    if let Some(e) = s.take_error()? {
        return Err(e);
    }
    match s.peer_addr() {
        Ok(_) => {
            let _ = s.set_nodelay(true);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) if e.raw_os_error() == Some(115) => Ok(false), // EINPROGRESS
        Err(e) => Err(e),
    }
}

/// Write as much of `out[*off..]` as the socket takes. `Ok(true)` when all
/// of it is written.
pub fn write_some<S: Write>(s: &mut S, out: &[u8], off: &mut usize) -> io::Result<bool> {
    while *off < out.len() {
        match s.write(&out[*off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Result of one `read` on a non-blocking socket.
pub enum ReadOutcome {
    Data(usize),
    WouldBlock,
    Closed,
}

pub fn read_once<S: Read>(s: &mut S, buf: &mut [u8]) -> io::Result<ReadOutcome> {
    loop {
        match s.read(buf) {
            Ok(0) => return Ok(ReadOutcome::Closed),
            Ok(n) => return Ok(ReadOutcome::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

// ---- HTTP responses ----------------------------------------------------------

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Length(usize),
    Chunked,
    /// Until the connection closes.
    Close,
}

/// A parsed response head.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub head_len: usize,
    pub body: BodyKind,
}

/// Parse a response head at the start of `buf`: `Ok(None)` if incomplete.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(n)) => {
            let mut body = BodyKind::Close;
            for h in r.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    let v = std::str::from_utf8(h.value).unwrap_or("").trim();
                    body = BodyKind::Length(v.parse().map_err(|_| "bad Content-Length")?);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                    && h.value.eq_ignore_ascii_case(b"chunked")
                {
                    body = BodyKind::Chunked;
                }
            }
            Ok(Some(ResponseHead {
                status: r.code.unwrap_or(0),
                head_len: n,
                body,
            }))
        }
        Err(e) => Err(format!("bad response head: {e}")),
    }
}

/// Streaming decoder of a chunked body (RFC 9112 §7.1). Feed it bytes as
/// they arrive; it appends the chunk data to `out`.
#[derive(Debug, Default)]
pub struct Dechunker {
    state: ChunkState,
    size: u64,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// The last chunk was read; trailers and the final CRLF are ignored.
    Done,
}

impl Dechunker {
    /// Decode `input`, appending data to `out`. `Err` on malformed framing.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (b as char).to_digit(16).unwrap() as u64;
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(d))
                                .ok_or("chunk size overflow")?;
                        }
                        b';' | b' ' | b'\t' => self.state = ChunkState::Ext,
                        b'\r' => self.state = ChunkState::SizeLf,
                        _ => return Err("bad chunk size"),
                    }
                }
                ChunkState::Ext => {
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\r' {
                        self.state = ChunkState::SizeLf;
                    }
                }
                ChunkState::SizeLf => {
                    if input[0] != b'\n' {
                        return Err("expected LF after chunk size");
                    }
                    input = &input[1..];
                    self.state = if self.size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data
                    };
                }
                ChunkState::Data => {
                    let n = (self.size as usize).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                }
                ChunkState::DataCr => {
                    if input[0] != b'\r' {
                        return Err("expected CR after chunk data");
                    }
                    input = &input[1..];
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    if input[0] != b'\n' {
                        return Err("expected LF after chunk data");
                    }
                    input = &input[1..];
                    self.state = ChunkState::Size;
                }
                ChunkState::Done => return Ok(()),
            }
        }
        Ok(())
    }

    /// Whether the last chunk has been seen.
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

// ---- SSE -------------------------------------------------------------------

/// Splits an event stream into lines and calls `on_data` with the value of
/// every `data:` line (WHATWG HTML §9.2.6: one optional space after the
/// colon is removed). Complete lines are consumed from `buf`; a partial
/// line stays for the next call.
pub fn sse_lines(buf: &mut Vec<u8>, mut on_data: impl FnMut(&[u8])) {
    let mut start = 0;
    while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
        let mut line = &buf[start..start + i];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if let Some(v) = line.strip_prefix(b"data:") {
            on_data(v.strip_prefix(b" ").unwrap_or(v));
        }
        start += i + 1;
    }
    buf.drain(..start);
}

/// A published message's payload: `s=<seq> t=<ns since the run's base>`,
/// padded with `x` to `size` bytes.
pub fn stamp(seq: u64, t_ns: u64, size: usize) -> Vec<u8> {
    let mut v = format!("s={seq} t={t_ns} ").into_bytes();
    while v.len() < size {
        v.push(b'x');
    }
    v
}

/// Read back `(seq, t_ns)` from a payload made by [`stamp`] (possibly
/// inside JSON: the first `s=` in `data` is used).
pub fn unstamp(data: &[u8]) -> Option<(u64, u64)> {
    let i = data.windows(2).position(|w| w == b"s=")?;
    let rest = &data[i + 2..];
    let (seq, rest) = take_num(rest)?;
    let rest = rest.strip_prefix(b" t=")?;
    let (t, _) = take_num(rest)?;
    Some((seq, t))
}

fn take_num(b: &[u8]) -> Option<(u64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let v = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    Some((v, &b[n..]))
}

/// A unique topic name for one run, so that no history from an earlier run
/// is replayed to subscribers.
pub fn fresh_topic(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{prefix}-{}-{t}", std::process::id())
}

/// A GET request for `url`; `fields` are further header lines, each ending
/// in CRLF.
pub fn get_request(url: &Url, fields: &str) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n{fields}\r\n",
        url.path, url.host
    )
    .into_bytes()
}

/// A WebSocket opening handshake for `url`, with RFC 6455 §1.3's example
/// key: the key's only job is to be echoed back hashed, and the same bytes
/// every time keep each connection's cost the same.
pub fn ws_upgrade_request(url: &Url) -> Vec<u8> {
    get_request(
        url,
        "Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    )
}

/// A POST request publishing `body` to `url`.
pub fn post_request(url: &Url, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        url.path,
        url.host,
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

// ---- permessage-deflate (RFC 7692) ----------------------------------------

/// The offer of `--deflate` runs: no context takeover either way, so that
/// every message is compressed on its own and the same message always
/// compresses to the same bytes (a generator can then check an echo or a
/// fan-out frame by comparing bytes instead of inflating each one).
pub const DEFLATE_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n";

/// A WebSocket handshake for `url` offering permessage-deflate.
pub fn ws_upgrade_request_deflate(url: &Url) -> Vec<u8> {
    get_request(
        url,
        &format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{DEFLATE_OFFER}"
        ),
    )
}

/// Whether a 101 response head accepted permessage-deflate.
pub fn accepted_deflate(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.lines()
        .any(|l| l.starts_with("sec-websocket-extensions:") && l.contains("permessage-deflate"))
}

/// One message compressed as RFC 7692 §7.2.1 says: raw DEFLATE, flushed
/// to a byte boundary, without the final 00 00 ff ff.
pub fn deflate_message(payload: &[u8], level: u32) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new_with_window_bits(Compression::new(level), false, 15);
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let mut used = 0;
    loop {
        out.reserve(4096);
        let before = c.total_in();
        c.compress_vec(&payload[used..], &mut out, FlushCompress::Sync)
            .expect("deflate");
        used += (c.total_in() - before) as usize;
        if used == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

/// Inflates one compressed message (RFC 7692 §7.2.2: the tail goes back
/// on first); `None` if it is not valid DEFLATE or inflates past `limit`.
pub fn inflate_message(payload: &[u8], limit: usize) -> Option<Vec<u8>> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut used = 0;
    loop {
        out.reserve(16 * 1024);
        let before = d.total_in();
        let status = d
            .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
            .ok()?;
        used += (d.total_in() - before) as usize;
        if out.len() > limit {
            return None;
        }
        if status == Status::StreamEnd || (used == input.len() && out.len() < out.capacity()) {
            return Some(out);
        }
    }
}

/// `size` bytes of text that compresses as real traffic does: JSON
/// records whose keys repeat and whose values vary (about 3-5x with
/// zlib level 6, where a repeated alphabet would compress 100x and
/// measure nothing).
pub fn compressible_text(size: usize) -> Vec<u8> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut x: u32 = 2463534242;
    let mut next = || {
        // xorshift32: the same text on every run.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut out = Vec::with_capacity(size + 128);
    while out.len() < size {
        let r = next();
        out.extend_from_slice(
            format!(
                "{{\"user\":\"{}-{}\",\"seq\":{},\"price\":{}.{:02},\"tags\":[\"{}\",\"{}\"]}}\n",
                words[(r & 15) as usize],
                r % 977,
                next() % 100_000,
                next() % 1000,
                next() % 100,
                words[((r >> 4) & 15) as usize],
                words[((r >> 8) & 15) as usize],
            )
            .as_bytes(),
        );
    }
    out.truncate(size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_split_anywhere() {
        let wire = b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Dechunker::default();
            let mut out = Vec::new();
            d.feed(&wire[..split], &mut out).unwrap();
            d.feed(&wire[split..], &mut out).unwrap();
            assert_eq!(out, b"hello, world");
            assert!(d.done());
        }
    }

    #[test]
    fn sse_data_lines() {
        let mut buf =
            b"retry: 3000\n\nid: 1-1\ndata: s=1 t=2 xx\r\n\ndata:s=2 t=3\n\ndata: part".to_vec();
        let mut got = Vec::new();
        sse_lines(&mut buf, |d| got.push(unstamp(d).unwrap()));
        assert_eq!(got, vec![(1, 2), (2, 3)]);
        assert_eq!(buf, b"data: part");
    }

    #[test]
    fn stamp_roundtrip_inside_json() {
        let p = stamp(42, 123456789, 64);
        assert_eq!(p.len(), 64);
        let json = format!("{{\"data\":\"{}\"}}", String::from_utf8(p).unwrap());
        assert_eq!(unstamp(json.as_bytes()), Some((42, 123456789)));
    }

    #[test]
    fn request_heads() {
        let url = Url::parse("ws://127.0.0.1:9/echo").unwrap();
        assert_eq!(
            get_request(&url, "Accept: text/event-stream\r\n"),
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\nAccept: text/event-stream\r\n\r\n"
        );
        assert_eq!(
            ws_upgrade_request(&url),
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n"
        );
    }

    #[test]
    fn deflate_roundtrip() {
        // RFC 7692 §7.2.3.1: "Hello" compressed without context takeover.
        assert_eq!(
            deflate_message(b"Hello", 6),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        assert_eq!(
            inflate_message(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100).unwrap(),
            b"Hello"
        );
        let text = compressible_text(16384);
        assert_eq!(text.len(), 16384);
        let z = deflate_message(&text, 6);
        assert!(z.len() < text.len() / 2, "{}", z.len());
        assert_eq!(inflate_message(&z, 1 << 20).unwrap(), text);
        assert_eq!(inflate_message(&z, 100), None);
    }

    #[test]
    fn loopback_only() {
        assert!(Url::parse("http://127.0.0.1:80/x").is_ok());
        assert!(Url::parse("http://10.0.0.1:80/x").is_err());
        assert_eq!(Url::parse("ws://127.0.0.1:9/echo").unwrap().path, "/echo");
    }
}

//! What permessage-deflate costs per message at each zlib setting, with
//! the backend pushwire uses (zlib-rs): the compressed size and the CPU
//! time to compress one message on its own (RFC 7692 §7.2.1: raw DEFLATE,
//! sync flush, tail removed, state reset, as `deflate_into` in
//! `src/proto/ws_deflate.rs` does) and to inflate it (a fresh inflate
//! state per message, as a server whose clients reset their context
//! does, and one state reset between messages).
//!
//!   deflate-levels [--size 16384] [--levels 0,1,2,3,4,5,6,9] [--bits 15]
//!                  [--mem-levels 8] [--ms 300] [--rounds 3] [--text echo|fanout]
//!
//! `--text echo` is `ws-echo-load --deflate on`'s text (JSON lines);
//! `--text fanout` is the frame a `ws-fanout` message becomes
//! (`{"id","event","data":{"seq","rows"}}`). One line per setting; the
//! median of `--rounds` rounds of `--ms` milliseconds counts. Run it
//! pinned (`taskset -c 1`) on a quiet core: it measures the code, not
//! the machine.

use std::time::Duration;

use flate2::{Decompress, FlushDecompress, Status};
use loadgen::Flags;
use zlib_rs::{Deflate, DeflateConfig, DeflateFlush};

const USAGE: &str = "usage: deflate-levels [--size 16384] [--levels 0,1,2,3,4,5,6,9] [--bits 15] \
[--mem-levels 8] [--ms 300] [--rounds 3] [--text echo|fanout]";

fn main() {
    let f = Flags::parse(USAGE);
    let size: usize = f.num("size", 16384);
    let levels = list(&f.str("levels", "0,1,2,3,4,5,6,9"));
    let bits = list(&f.str("bits", "15"));
    let mem_levels = list(&f.str("mem-levels", "8"));
    let ms = Duration::from_millis(f.num("ms", 300));
    let rounds: usize = f.num("rounds", 3);
    let text = match f.str("text", "echo").as_str() {
        "echo" => loadgen::compressible_text(size),
        "fanout" => fanout_frame(size),
        other => loadgen::die(USAGE, &format!("--text: echo or fanout, not {other:?}")),
    };
    println!(
        "# deflate-levels text={} bytes={} (zlib-rs; CPU ns, median of {rounds} x {} ms)",
        f.str("text", "echo"),
        text.len(),
        ms.as_millis()
    );
    println!(
        "{:>5} {:>4} {:>8} {:>10} {:>7} {:>14} {:>14} {:>14}",
        "level",
        "bits",
        "memlevel",
        "compressed",
        "ratio",
        "deflate_ns",
        "inflate_new_ns",
        "inflate_reuse_ns"
    );
    for &bits in &bits {
        for &mem_level in &mem_levels {
            for &level in &levels {
                let mut c = Deflate::new_with_config(DeflateConfig {
                    level,
                    window_bits: -bits,
                    mem_level,
                    ..DeflateConfig::default()
                });
                let mut out = Vec::with_capacity(text.len() + 64);
                compress(&mut c, &text, &mut out);
                let z = out.clone();
                assert_eq!(
                    inflate_new(&z, text.len()),
                    text,
                    "level {level} round trip"
                );
                let deflate_ns = median(rounds, ms, || {
                    compress(&mut c, &text, &mut out);
                    std::hint::black_box(&out);
                });
                let mut back = Vec::with_capacity(text.len() + 64);
                let inflate_new_ns = median(rounds, ms, || {
                    std::hint::black_box(inflate_new(&z, text.len()));
                });
                let mut d = Decompress::new_with_window_bits(false, 15);
                let inflate_reuse_ns = median(rounds, ms, || {
                    d.reset(false);
                    back.clear();
                    inflate_into(&mut d, &z, &mut back);
                    std::hint::black_box(&back);
                });
                assert_eq!(back, text);
                println!(
                    "{level:>5} {bits:>4} {mem_level:>8} {:>10} {:>7.2} {deflate_ns:>14.0} {inflate_new_ns:>14.0} {inflate_reuse_ns:>14.0}",
                    z.len(),
                    text.len() as f64 / z.len() as f64
                );
            }
        }
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn list(s: &str) -> Vec<i32> {
    s.split(',')
        .map(|x| x.trim().parse().unwrap_or_else(|_| loadgen::die(USAGE, s)))
        .collect()
}

/// One message on its own, as the server compresses it: sync flush, the
/// 00 00 ff ff tail removed, the state reset for the next message.
fn compress(c: &mut Deflate, text: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut used = 0;
    loop {
        out.reserve(text.len() / 2 + 64);
        let len = out.len();
        let spare = out.spare_capacity_mut();
        let (in0, out0) = (c.total_in(), c.total_out());
        c.compress_uninit(&text[used..], spare, DeflateFlush::SyncFlush)
            .expect("deflate");
        used += (c.total_in() - in0) as usize;
        let made = (c.total_out() - out0) as usize;
        // SAFETY: compress_uninit initialised `made` bytes of the spare
        // capacity.
        unsafe { out.set_len(len + made) };
        if used == text.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    c.reset();
}

fn inflate_new(z: &[u8], size: usize) -> Vec<u8> {
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut out = Vec::with_capacity(size + 64);
    inflate_into(&mut d, z, &mut out);
    out
}

fn inflate_into(d: &mut Decompress, z: &[u8], out: &mut Vec<u8>) {
    for part in [z, &[0, 0, 0xff, 0xff][..]] {
        let mut used = 0;
        loop {
            out.reserve(16 * 1024);
            let before = d.total_in();
            let status = d
                .decompress_vec(&part[used..], out, FlushDecompress::None)
                .expect("inflate");
            used += (d.total_in() - before) as usize;
            if status == Status::StreamEnd || (used == part.len() && out.len() < out.capacity()) {
                break;
            }
        }
    }
}

/// Median CPU nanoseconds (this thread's clock, so that time the
/// scheduler gives to others does not count) per call of `f` over
/// `rounds` rounds of `ms` of CPU time each.
fn median(rounds: usize, ms: Duration, mut f: impl FnMut()) -> f64 {
    let mut per = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = thread_cpu();
        let mut n = 0u64;
        while thread_cpu() - t < ms {
            for _ in 0..8 {
                f();
            }
            n += 8;
        }
        per.push((thread_cpu() - t).as_nanos() as f64 / n as f64);
    }
    per.sort_by(|a, b| a.total_cmp(b));
    per[per.len() / 2]
}

/// The frame pushwire sends for one `ws-fanout` message of about `size`
/// bytes: `{"id","event","data":BODY}` around the body `ws-fanout` posts
/// (`{"seq":k,"rows":[...]}`, built the same way).
fn fanout_frame(size: usize) -> Vec<u8> {
    let text = loadgen::compressible_text(size * 4);
    let rows: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b"]}"))
        .collect();
    let mut body = b"{\"seq\":1,\"rows\":[".to_vec();
    let mut i = 1;
    while body.len() + 2 < size {
        if i > 1 {
            body.push(b',');
        }
        body.extend_from_slice(rows[i % rows.len()]);
        i += 1;
    }
    body.extend_from_slice(b"]}");
    let mut f = br#"{"id":"1796160691510066-1","event":"message","data":"#.to_vec();
    f.extend_from_slice(&body);
    f.push(b'}');
    f
}

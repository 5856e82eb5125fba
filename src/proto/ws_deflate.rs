//! permessage-deflate, the codec (RFC 7692 §6, §7.2).
//!
//! Before working on this file, read RFC 7692 §6 (which frames carry the
//! "Per-Message Compressed" bit, RSV1) and §7.2 (compressing a message:
//! raw DEFLATE of RFC 1951, flushed to a byte boundary, its last four
//! bytes `00 00 ff ff` removed; decompressing: append them back), then
//! `wire/ws_extensions.rs` for the negotiation that picks the windows.
//!
//! # Memory
//!
//! No connection owns a compressor. The server always declares
//! `server_no_context_takeover` (RFC 7692 §7.1.1.1 lets it), so every
//! message is compressed on its own, by a compressor per thread and
//! level that is reset after each message ([`deflate_into`]); a message
//! published to a topic is compressed once and the frame shared
//! ([`compress_message`]). A compressor is zlib's deflate state with
//! `memLevel` 8 (flate2's choice): about 324 KiB resident at 15 window
//! bits and level 6, 312 KiB at level 1 (`tests/ws_deflate_memory.rs`
//! measures them). A thread keeps two ([`KEPT_COMPRESSORS`]: the fan-out
//! level and the per-connection one), once per thread, not per
//! connection.
//!
//! # Levels
//!
//! Who pays for a compression decides its level. A topic's message is
//! compressed once for every subscriber, so a slow level costs little per
//! delivery and buys bytes on every one (`Config::ws_deflate_fanout_level`,
//! 6). A message for one connection (an echo, a reply) is compressed per
//! send, so the default there is level 1 (`Config::ws_deflate_level`),
//! zlib-rs's "quick" strategy: on 16 KiB of JSON text it takes about a
//! quarter of level 6's CPU time for 2.8× instead of 4.3×
//! (`bench/loadgen/src/bin/deflate-levels.rs`). `memLevel` (1-9) and
//! window bits 12-15 change neither speed nor size at level 1, so they
//! stay at zlib's defaults.
//!
//! Inflate state is per connection, and exists only while it is needed:
//! [`Inflater::new`] is called when a compressed message starts, and the
//! session drops it when the message ends if the peer does not keep its
//! context (`*_no_context_takeover`, which our server asks of every client
//! by default). A peer that keeps context makes us keep its inflate state
//! for the life of the connection: [`INFLATER_BYTES`] says how much.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use thiserror::Error;

use crate::wire::ws_frame::{FrameHeader, Opcode};

/// RFC 7692 §7.2.1: the bytes a sync flush ends with, removed by the
/// sender and appended again by the receiver (§7.2.2).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// RSV1 in [`FrameHeader::rsv`]: "Per-Message Compressed" (RFC 7692 §6).
pub const RSV1: u8 = 0b100;

/// The least room an inflate step gets in the output buffer: a whole
/// 16 KiB message inflates into one allocation, with no copy on the
/// final 4-byte tail. A message never overshoots the limit (see
/// [`Inflater::feed`]).
const INFLATE_STEP: usize = 32 * 1024;

/// Why a compressed message could not be inflated. The session maps each
/// to its close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum InflateError {
    /// The payload is not a DEFLATE stream (RFC 1951).
    #[error("invalid compressed data")]
    InvalidData,
    /// The inflated message would be larger than the limit.
    #[error("message too big")]
    TooBig,
}

/// Bytes of one inflate state with the zlib-rs backend, whatever the
/// window bits: it allocates the decoding state and a 32 KiB window in one
/// block (about 47 KiB resident, measured by `tests/ws_deflate_memory.rs`).
/// The window bits a client agrees to limit what it may refer back to,
/// not what we hold.
pub const INFLATER_BYTES: usize = 47 * 1024;

/// A raw-DEFLATE decompressor for one direction of one connection.
pub struct Inflater {
    inner: Decompress,
    /// A block with BFINAL set was read: the stream is over.
    ended: bool,
}

impl Inflater {
    /// An inflater for a peer compressing with a window of `bits` (8-15).
    /// zlib inflates raw streams with at least 9 bits; a larger window
    /// than the peer's decodes its output all the same.
    pub fn new(bits: u8) -> Inflater {
        Inflater {
            inner: Decompress::new_with_window_bits(false, bits.clamp(9, 15)),
            ended: false,
        }
    }

    /// Inflates `input` (the next piece of a message's payload), appending
    /// to `out`, and fails with [`InflateError::TooBig`] as soon as `out`
    /// would hold more than `limit` bytes: output goes into the spare
    /// capacity of `out`, which is grown only up to `limit + 1` bytes, so
    /// a small input that inflates to gigabytes (a zip bomb) costs at most
    /// the limit (given an `out` that does not already hold more).
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        if input.is_empty() {
            return Ok(());
        }
        // RFC 7692 §7.2.3.4: a sender may end a message with a block that
        // has BFINAL set. What follows it in the message can never be
        // inflated (the stream is over) and is ignored, as zlib-based
        // peers do; it is bounded by the frame and message limits.
        if self.ended {
            return Ok(());
        }
        let mut used = 0;
        loop {
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if out.len() == out.capacity() {
                // Room to inflate into, never zero-filled: at least a
                // step, else as much again as the buffer holds (so a big
                // message is not copied once per step), and never past
                // `limit + 1` bytes of capacity.
                let room = INFLATE_STEP
                    .max(out.len())
                    .min((limit - out.len()).saturating_add(1));
                out.reserve_exact(room);
            }
            let spare = out.capacity() - out.len();
            let (in0, out0) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(&input[used..], out, FlushDecompress::None);
            let took = (self.inner.total_in() - in0) as usize;
            let made = (self.inner.total_out() - out0) as usize;
            used += took;
            match status {
                Err(_) => return Err(InflateError::InvalidData),
                Ok(Status::StreamEnd) => {
                    self.ended = true;
                    if out.len() > limit {
                        return Err(InflateError::TooBig);
                    }
                    return Ok(());
                }
                Ok(_) => {}
            }
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            // Done when all input is in and the output had room to spare
            // (zlib holds nothing back then); no progress at all means it
            // needs input it does not have.
            if (used == input.len() && made < spare) || (took == 0 && made == 0) {
                return Ok(());
            }
        }
    }

    /// Ends a message: RFC 7692 §7.2.2, "Append 4 octets of 0x00 0x00 0xff
    /// 0xff to the tail end of the payload of the message" and inflate.
    /// Not after a final block: the stream is complete without it.
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        if self.ended {
            return Ok(());
        }
        self.feed(&TAIL, out, limit)
    }

    /// Whether the stream ended with a final block: the next message
    /// needs a fresh inflater whatever the context-takeover terms.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// A per-thread compressor: (level, window bits, state).
struct Shared {
    level: u32,
    bits: u8,
    inner: Compress,
}

/// Compressors a thread keeps, most recently used first: one for the
/// fan-out level and one for per-connection sends (two levels by
/// default), so that a thread doing both does not build a fresh zlib
/// state (hundreds of KiB) each time it switches. A third setting
/// replaces the least recently used.
const KEPT_COMPRESSORS: usize = 2;

thread_local! {
    static COMPRESSORS: RefCell<[Option<Shared>; KEPT_COMPRESSORS]> =
        const { RefCell::new([None, None]) };
}

/// Compresses one message (the concatenation of `parts`) on its own —
/// RFC 7692 §7.2.1: raw DEFLATE, flushed with an empty stored block, the
/// trailing `00 00 ff ff` removed — appending the result to `out`.
///
/// `level` is zlib's (0-9), `bits` the window (9-15; clamped). The state
/// is reset after each message: no context is taken over (§7.1.1.1).
pub fn deflate_into(parts: &[&[u8]], level: u32, bits: u8, out: &mut Vec<u8>) {
    let level = level.min(9);
    let bits = bits.clamp(9, 15);
    COMPRESSORS.with(|cell| {
        let Ok(mut slots) = cell.try_borrow_mut() else {
            // Not reachable (nothing compresses while compressing); a
            // state of its own is correct all the same.
            let mut c = Compress::new_with_window_bits(Compression::new(level), false, bits);
            compress_one(&mut c, parts, out);
            return;
        };
        let kept = slots
            .iter()
            .position(|s| matches!(s, Some(s) if s.level == level && s.bits == bits));
        match kept {
            Some(i) => slots[..=i].rotate_right(1),
            None => {
                slots.rotate_right(1);
                slots[0] = Some(Shared {
                    level,
                    bits,
                    inner: Compress::new_with_window_bits(Compression::new(level), false, bits),
                });
            }
        }
        if let Some(shared) = slots[0].as_mut() {
            compress_one(&mut shared.inner, parts, out);
        }
    });
}

/// Capacity of the per-thread output buffer [`with_deflated`] keeps
/// between messages; a larger one (a message that compressed to more) is
/// freed after use, so a thread holds at most this much for it.
const KEPT_OUTPUT_BYTES: usize = 64 * 1024;

thread_local! {
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compresses one message as [`deflate_into`] does, into a buffer the
/// thread keeps, and hands the compressed bytes to `f`: a message sent to
/// one connection (an echo, a reply) is compressed and copied into its
/// frame without an allocation of its own.
pub fn with_deflated<R>(parts: &[&[u8]], level: u32, bits: u8, f: impl FnOnce(&[u8]) -> R) -> R {
    OUTPUT.with(|cell| {
        let Ok(mut out) = cell.try_borrow_mut() else {
            // `f` itself compressed a message: it gets a buffer of its own.
            let mut out = Vec::new();
            deflate_into(parts, level, bits, &mut out);
            return f(&out);
        };
        out.clear();
        deflate_into(parts, level, bits, &mut out);
        let r = f(&out);
        if out.capacity() > KEPT_OUTPUT_BYTES {
            *out = Vec::new();
        }
        r
    })
}

/// One message through `c`, which is left reset for the next.
fn compress_one(c: &mut Compress, parts: &[&[u8]], out: &mut Vec<u8>) {
    let start = out.len();
    for part in parts {
        run(c, part, FlushCompress::None, out);
    }
    run(c, &[], FlushCompress::Sync, out);
    // RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff)
    // from the tail end." A sync flush always ends with them.
    if out.len() >= start + 4 && out[out.len() - 4..] == TAIL {
        out.truncate(out.len() - 4);
    }
    c.reset();
}

/// Feeds `input` to the compressor with `flush`, growing `out` until the
/// compressor has nothing more to give.
fn run(c: &mut Compress, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    loop {
        out.reserve(input.len() / 2 + 64);
        let spare = out.capacity() - out.len();
        let before = c.total_in();
        if c.compress_vec(input, out, flush).is_err() {
            // Only a misuse of the stream can fail; leave the output as
            // it is (the receiver fails it as invalid data).
            return;
        }
        let took = (c.total_in() - before) as usize;
        input = &input[took..];
        let filled = out.capacity() - out.len() == 0 && spare > 0;
        if input.is_empty() && !filled {
            return;
        }
    }
}

/// A whole server frame for one message, compressed on its own: header
/// with FIN and RSV1, then the deflated payload (RFC 7692 §6, §7.2.1).
/// The server compresses each published message once with this and
/// queues the same bytes for every subscriber whose session negotiated
/// permessage-deflate with a window of at least `bits` (all our answers
/// declare `server_no_context_takeover`, so any of them can inflate it).
pub fn compress_message(parts: &[&[u8]], opcode: Opcode, level: u32, bits: u8) -> Vec<u8> {
    let mut payload = Vec::new();
    deflate_into(parts, level, bits, &mut payload);
    let header = FrameHeader {
        fin: true,
        rsv: RSV1,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut frame = Vec::with_capacity(header.header_len() + payload.len());
    header.emit(&mut frame);
    frame.extend_from_slice(&payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        i.feed(data, &mut out, limit)?;
        i.finish(&mut out, limit)?;
        Ok(out)
    }

    #[test]
    fn rfc7692_hello() {
        // RFC 7692 §7.2.3.1: "Hello" compressed, one frame.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&hello, 100).unwrap(), b"Hello");
        // §7.2.3.2: the same message sent in two fragments.
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        i.feed(&[0xf2, 0x48, 0xcd], &mut out, 100).unwrap();
        i.feed(&[0xc9, 0xc9, 0x07, 0x00], &mut out, 100).unwrap();
        i.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2 again: with context, a second "Hello" is a back
        // reference into the first.
        let mut out = Vec::new();
        i.feed(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        i.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.3: "Hello" in a stored (uncompressed) DEFLATE block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate(&stored, 100).unwrap(), b"Hello");
        // §7.2.3.4: a block with BFINAL set: the tail is not needed.
        let final_block = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        i.feed(&final_block, &mut out, 100).unwrap();
        assert!(i.ended());
        i.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn deflate_then_inflate() {
        // Emit, then parse: our compressor's output is what §7.2.3.1
        // shows for "Hello" (the tail removed), and every message comes
        // back whole, whatever its parts.
        let mut out = Vec::new();
        deflate_into(&[b"Hello"], 6, 15, &mut out);
        assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        let text = "pushwire ".repeat(1000);
        for bits in 9..=15 {
            let mut out = Vec::new();
            let (a, b) = text.as_bytes().split_at(1234);
            deflate_into(&[a, b], 1, bits, &mut out);
            assert!(out.len() < text.len() / 10, "compressed");
            assert!(!out.ends_with(&TAIL));
            let mut i = Inflater::new(bits);
            let mut back = Vec::new();
            for piece in out.chunks(7) {
                i.feed(piece, &mut back, text.len()).unwrap();
            }
            i.finish(&mut back, text.len()).unwrap();
            assert_eq!(back, text.as_bytes());
        }
        // The empty message.
        let mut out = Vec::new();
        deflate_into(&[], 6, 15, &mut out);
        assert_eq!(inflate(&out, 0).unwrap(), b"");
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        // 16 MiB of zeros deflate to about 16 KiB; with a limit of 1 MiB
        // inflating stops right after the limit, not at 16 MiB.
        let zeros = vec![0u8; 16 << 20];
        let mut bomb = Vec::new();
        deflate_into(&[&zeros], 9, 15, &mut bomb);
        assert!(bomb.len() < 40_000);
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        assert_eq!(i.feed(&bomb, &mut out, 1 << 20), Err(InflateError::TooBig));
        assert!(out.len() <= (1 << 20) + 1);
        // Exactly at the limit is fine.
        assert_eq!(inflate(&bomb, 16 << 20).unwrap().len(), 16 << 20);
    }

    #[test]
    fn kept_compressors_give_what_fresh_ones_do() {
        // Alternating levels (fan-out and per-connection sends on one
        // thread), and a third setting that evicts one, never changes the
        // output: each message is compressed from a reset state.
        let text = "{\"sym\":\"ACME\",\"px\":101.5,\"qty\":300}\n".repeat(300);
        let fresh = |level, bits| {
            let mut c = Compress::new_with_window_bits(Compression::new(level), false, bits);
            let mut out = Vec::new();
            compress_one(&mut c, &[text.as_bytes()], &mut out);
            out
        };
        let (one, six, nine_12) = (fresh(1, 15), fresh(6, 15), fresh(9, 12));
        assert_ne!(one, six);
        for _ in 0..3 {
            for (level, bits, want) in [(1, 15, &one), (6, 15, &six), (9, 12, &nine_12)] {
                let mut out = Vec::new();
                deflate_into(&[text.as_bytes()], level, bits, &mut out);
                assert_eq!(&out, want, "level {level}, {bits} bits");
                let kept = with_deflated(&[text.as_bytes()], level, bits, <[u8]>::to_vec);
                assert_eq!(&kept, want);
            }
        }
    }

    #[test]
    fn inflating_reserves_no_more_than_the_limit() {
        // The output buffer's capacity, not only its length, stays within
        // limit + 1, whatever the message inflates to.
        let zeros = vec![0u8; 4 << 20];
        let mut bomb = Vec::new();
        deflate_into(&[&zeros], 9, 15, &mut bomb);
        for limit in [0, 1, 1000, 40_000, (1 << 20) + 3] {
            let mut i = Inflater::new(15);
            let mut out = Vec::new();
            assert_eq!(i.feed(&bomb, &mut out, limit), Err(InflateError::TooBig));
            assert!(
                out.capacity() <= limit + 1,
                "{} for {limit}",
                out.capacity()
            );
        }
        // A 16 KiB message and its tail: one allocation, nothing spare
        // beyond the step.
        let text = "pushwire ".repeat(1820);
        let mut z = Vec::new();
        deflate_into(&[text.as_bytes()], 1, 15, &mut z);
        let mut i = Inflater::new(15);
        let mut out = Vec::new();
        i.feed(&z, &mut out, 16 << 20).unwrap();
        i.finish(&mut out, 16 << 20).unwrap();
        assert_eq!(out, text.as_bytes());
        assert_eq!(out.capacity(), INFLATE_STEP);
    }

    #[test]
    fn invalid_data() {
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        assert_eq!(inflate(&[0x07], 100), Err(InflateError::InvalidData));
        // Bytes after a final block are ignored.
        let junk = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x42];
        assert_eq!(inflate(&junk, 100).unwrap(), b"Hello");
    }

    #[test]
    fn compress_message_is_a_whole_frame() {
        let frame = compress_message(&[b"Hel", b"lo"], Opcode::Text, 6, 15);
        assert_eq!(
            frame,
            [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
    }
}

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
//! message is compressed on its own, by one compressor per thread that is
//! reset after each message ([`deflate_into`]); a message published to a
//! topic is compressed once and the frame shared ([`compress_message`]).
//! That compressor is zlib's deflate state with `memLevel` 8 (flate2's
//! choice): about 324 KiB resident at 15 window bits and level 6
//! (`tests/ws_deflate_memory.rs` measures it) — once per thread, not per
//! connection.
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

/// Output produced per inflate step: the most a message can overshoot the
/// limit by before it is refused is nothing (see [`Inflater::feed`]); the
/// step only bounds the size of one zero-filled extension of the buffer.
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
    /// would hold more than `limit` bytes: output is produced in steps
    /// that never go past `limit + 1`, so a small input that inflates to
    /// gigabytes (a zip bomb) costs at most the limit.
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
            let room = INFLATE_STEP.min((limit - out.len()).saturating_add(1));
            let start = out.len();
            out.resize(start + room, 0);
            let (in0, out0) = (self.inner.total_in(), self.inner.total_out());
            let status =
                self.inner
                    .decompress(&input[used..], &mut out[start..], FlushDecompress::None);
            let took = (self.inner.total_in() - in0) as usize;
            let made = (self.inner.total_out() - out0) as usize;
            out.truncate(start + made);
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
            if (used == input.len() && made < room) || (took == 0 && made == 0) {
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

/// The per-thread compressor: (level, window bits, state).
struct Shared {
    level: u32,
    bits: u8,
    inner: Compress,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<Shared>> = const { RefCell::new(None) };
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
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fresh = !matches!(&*slot, Some(s) if s.level == level && s.bits == bits);
        if fresh {
            *slot = Some(Shared {
                level,
                bits,
                inner: Compress::new_with_window_bits(Compression::new(level), false, bits),
            });
        }
        let Some(shared) = slot.as_mut() else {
            return;
        };
        let c = &mut shared.inner;
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
    });
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

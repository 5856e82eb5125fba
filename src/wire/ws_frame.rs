//! WebSocket frames (RFC 6455 §5).
//!
//! Before working on this file, read RFC 6455 §5.2 (base framing protocol:
//! the bit layout drawn below), §5.3 (client-to-server masking) and §5.5
//! (control frames). The rules about *sequences* of frames — fragmentation,
//! which frames may interleave, when a control frame is too big — belong to
//! the session (`proto/ws.rs`); this module only turns bytes into a
//! [`FrameHeader`] and back, and masks payloads.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! A header is 2 to 14 bytes: 2, plus 2 or 8 bytes of extended length, plus
//! 4 bytes of masking key. Payloads are not copied here: the session unmasks
//! them in place with [`apply_mask`], in as many pieces as they arrive in.

use thiserror::Error;

/// The longest header: 2 + 8 (64-bit length) + 4 (masking key).
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (RFC 6455 §5.2, §11.8). The reserved values stay
/// representable, so that the session can name the frame it rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// 0x0: the next fragment of a message.
    Continuation,
    /// 0x1: the first frame of a UTF-8 text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: the closing handshake (§5.5.1).
    Close,
    /// 0x9: a keep-alive or liveness probe (§5.5.2).
    Ping,
    /// 0xA: the answer to a ping, or a unidirectional heartbeat (§5.5.3).
    Pong,
    /// 0x3-0x7 (reserved data frames) and 0xB-0xF (reserved control
    /// frames). Always a 4-bit value.
    Reserved(u8),
}

impl Opcode {
    /// The opcode in the low 4 bits of `b` (the high bits are ignored: the
    /// parser hands over the byte with FIN and RSV already masked off).
    #[inline]
    pub fn from_u8(b: u8) -> Opcode {
        match b & 0x0F {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => Opcode::Reserved(other),
        }
    }

    #[inline]
    pub fn to_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
            Opcode::Reserved(b) => b & 0x0F,
        }
    }

    /// RFC 6455 §5.5: "Control frames are identified by opcodes where the
    /// most significant bit of the opcode is 1" — 0x8 to 0xF, the reserved
    /// ones included (they must obey the control-frame rules too).
    #[inline]
    pub fn is_control(self) -> bool {
        self.to_u8() & 0x08 != 0
    }

    /// A short upper-case name for traces.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Continuation => "CONT",
            Opcode::Text => "TEXT",
            Opcode::Binary => "BINARY",
            Opcode::Close => "CLOSE",
            Opcode::Ping => "PING",
            Opcode::Pong => "PONG",
            Opcode::Reserved(_) => "RESERVED",
        }
    }
}

/// Framing that no valid peer can produce, whatever the session's state.
/// Each variant carries the close code to fail the connection with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// RFC 6455 §5.2: "the most significant bit MUST be 0" in a 64-bit
    /// payload length.
    #[error("64-bit payload length with the most significant bit set")]
    LengthHighBitSet,
    /// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode
    /// the length". The rule binds the sender; we hold the peer to it,
    /// because a length that has two spellings is a length two parsers can
    /// disagree about, and because it makes parse → emit byte-exact.
    #[error("payload length not in its minimal encoding")]
    NonMinimalLength,
}

impl FrameError {
    /// RFC 6455 §7.4.1: 1002 is "a protocol error".
    pub fn close_code(&self) -> u16 {
        1002
    }
}

/// A parsed frame header: the *meaning* of the bytes drawn above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// This is the final fragment of a message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low 3 bits (RSV1 = 0b100). Nonzero only
    /// with a negotiated extension.
    pub rsv: u8,
    pub opcode: Opcode,
    /// The masking key, present on every client-to-server frame (§5.3).
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses the header at the start of `buf`.
    ///
    /// `Ok(None)` if `buf` holds less than a whole header (nothing is
    /// consumed: call again with more bytes); `Ok(Some((header, len)))`
    /// with the header's length in bytes, the payload starting at
    /// `buf[len]`. Errors only for encodings no peer may send
    /// ([`FrameError`]); every other rule is the session's to apply.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let len = 2 + ext + if masked { 4 } else { 0 };
        let Some(head) = buf.get(..len) else {
            return Ok(None);
        };

        let payload_len = match len7 {
            126 => {
                let n = u16::from_be_bytes([head[2], head[3]]) as u64;
                if n < 126 {
                    // RFC 6455 §5.2: minimal encoding (see NonMinimalLength).
                    return Err(FrameError::NonMinimalLength);
                }
                n
            }
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[2..10]);
                let n = u64::from_be_bytes(b);
                if n >> 63 != 0 {
                    // RFC 6455 §5.2: "the most significant bit MUST be 0".
                    return Err(FrameError::LengthHighBitSet);
                }
                if n <= 0xFFFF {
                    // RFC 6455 §5.2: minimal encoding (see NonMinimalLength).
                    return Err(FrameError::NonMinimalLength);
                }
                n
            }
            n => n as u64,
        };

        let mask = masked.then(|| {
            let k = &head[len - 4..];
            [k[0], k[1], k[2], k[3]]
        });
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x07,
            opcode: Opcode::from_u8(b0),
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// Bytes [`emit`](Self::emit) writes for this header.
    #[inline]
    pub fn header_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, the length in its minimal form.
    ///
    /// A `payload_len` with the high bit set is written as it is (the
    /// resulting header does not parse); `rsv` and the opcode are
    /// truncated to their 3 and 4 bits.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = self.write_to(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }

    /// Writes the header into `buf` and returns its length.
    #[inline]
    fn write_to(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        buf[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.to_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                buf[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                buf[1] = mask_bit | 126;
                buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                buf[1] = mask_bit | 127;
                buf[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            buf[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }
}

/// Server-to-client frame header (unmasked: RFC 6455 §5.1, "A server MUST
/// NOT mask any frames that it sends to the client") for a payload of `len`
/// bytes, in a stack buffer: `(buf, n)`, the header being `&buf[..n]`.
#[inline]
pub fn server_header(fin: bool, opcode: Opcode, len: usize) -> ([u8; 10], usize) {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: len as u64,
    }
    .write_to(&mut buf);
    let mut out = [0u8; 10];
    out.copy_from_slice(&buf[..10]);
    (out, n)
}

/// Any frame header in a stack buffer: `(buf, n)`, the header being
/// `&buf[..n]` (2 to 14 bytes). For frames with RSV bits (a negotiated
/// extension) or a masking key (a client).
#[inline]
pub fn header_bytes(header: &FrameHeader) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let n = header.write_to(&mut buf);
    (buf, n)
}

/// Appends a whole unmasked (server) frame to `out`: header, then payload.
pub fn write_frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8]) {
    let (header, n) = server_header(fin, opcode, payload.len());
    out.reserve(n + payload.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
}

/// Appends a whole masked (client) frame to `out`: header with `key`,
/// then the payload masked with it. RFC 6455 §5.3: a client MUST mask
/// every frame it sends, with a fresh, unpredictable key each time (the
/// caller chooses it).
pub fn write_masked_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    key: [u8; 4],
) {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: Some(key),
        payload_len: payload.len() as u64,
    };
    out.reserve(header.header_len() + payload.len());
    header.emit(out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}

/// XORs `buf` with the masking key (RFC 6455 §5.3), `offset` being the
/// position of `buf[0]` within the frame's payload — so a payload that
/// arrives in pieces is unmasked piece by piece. Masking is its own
/// inverse: the same call masks and unmasks.
///
/// §5.3: "octet i of the transformed data is the XOR of octet i of the
/// original data with octet at index i modulo 4 of the masking key". We
/// rotate the key so that it starts at `offset`, repeat it to 8 bytes, and
/// XOR a word at a time; the compiler turns the word loop into vector
/// instructions. The key is a byte pattern, so the word is built in native
/// byte order from bytes and XORed with words read the same way: no
/// endianness enters.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let k4 = u32::from_ne_bytes(key);
    let k8 = (u64::from(k4) << 32) | u64::from(k4);
    // Whole 32-byte blocks, four words each: a shape the vectoriser likes.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for word in block.chunks_exact_mut(8) {
            xor_word(word, k8);
        }
    }
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        xor_word(word, k8);
    }
    // Every block and word is a multiple of 4 bytes long, so the tail
    // starts at key index 0 again.
    for (b, k) in words.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

#[inline(always)]
fn xor_word(word: &mut [u8], k8: u64) {
    let mut w = [0u8; 8];
    w.copy_from_slice(word);
    let x = u64::from_ne_bytes(w) ^ k8;
    word.copy_from_slice(&x.to_ne_bytes());
}

/// The key as seen from payload position `offset`.
#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

/// [`apply_mask`] as §5.3 words it, one byte at a time: the reference the
/// fast version is tested and fuzzed against.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset.wrapping_add(i)) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> (FrameHeader, &[u8]) {
        let (h, n) = FrameHeader::parse(bytes).unwrap().unwrap();
        (h, &bytes[n..])
    }

    // RFC 6455 §5.7: "A single-frame unmasked text message".
    const HELLO_UNMASKED: [u8; 7] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    // RFC 6455 §5.7: "A single-frame masked text message".
    const HELLO_MASKED: [u8; 11] = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];

    #[test]
    fn rfc_single_frame_unmasked() {
        let (h, payload) = parse_all(&HELLO_UNMASKED);
        assert!(h.fin);
        assert_eq!(h.opcode, Opcode::Text);
        assert_eq!(h.mask, None);
        assert_eq!(h.payload_len, 5);
        assert_eq!(payload, b"Hello");
        let mut out = Vec::new();
        write_frame(&mut out, true, Opcode::Text, b"Hello");
        assert_eq!(out, HELLO_UNMASKED);
    }

    #[test]
    fn rfc_single_frame_masked() {
        let (h, payload) = parse_all(&HELLO_MASKED);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.header_len(), 6);
        let mut p = payload.to_vec();
        apply_mask(&mut p, h.mask.unwrap(), 0);
        assert_eq!(p, b"Hello");
        // Emit, then mask again: the RFC's bytes.
        let mut out = Vec::new();
        h.emit(&mut out);
        apply_mask(&mut p, h.mask.unwrap(), 0);
        out.extend_from_slice(&p);
        assert_eq!(out, HELLO_MASKED);
    }

    #[test]
    fn rfc_fragmented_unmasked() {
        // RFC 6455 §5.7: "A fragmented unmasked text message".
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let second = [0x80, 0x02, 0x6c, 0x6f];
        let (h, p) = parse_all(&first);
        assert!(!h.fin);
        assert_eq!((h.opcode, p), (Opcode::Text, &b"Hel"[..]));
        let (h, p) = parse_all(&second);
        assert!(h.fin);
        assert_eq!((h.opcode, p), (Opcode::Continuation, &b"lo"[..]));
        let mut out = Vec::new();
        write_frame(&mut out, false, Opcode::Text, b"Hel");
        write_frame(&mut out, true, Opcode::Continuation, b"lo");
        assert_eq!(out, [&first[..], &second[..]].concat());
    }

    #[test]
    fn rfc_ping_and_pong() {
        // RFC 6455 §5.7: "Unmasked Ping request and masked Ping response"
        // (the RFC's "masked Ping response" is a Pong, opcode 0xA).
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, p) = parse_all(&ping);
        assert_eq!((h.opcode, p), (Opcode::Ping, &b"Hello"[..]));
        assert!(h.opcode.is_control());
        let (h, p) = parse_all(&pong);
        assert_eq!(h.opcode, Opcode::Pong);
        let mut p = p.to_vec();
        apply_mask(&mut p, h.mask.unwrap(), 0);
        assert_eq!(p, b"Hello");
    }

    #[test]
    fn rfc_binary_256_and_64k() {
        // RFC 6455 §5.7: "256 bytes binary message in a single unmasked
        // frame" and "64KiB binary message in a single unmasked frame".
        let (h, n) = FrameHeader::parse(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!((h.opcode, h.payload_len, n), (Opcode::Binary, 256, 4));
        let bytes = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (h, n) = FrameHeader::parse(&bytes).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
        assert_eq!(server_header(true, Opcode::Binary, 256), {
            let mut b = [0u8; 10];
            b[..4].copy_from_slice(&[0x82, 0x7E, 0x01, 0x00]);
            (b, 4)
        });
        let (b, n) = server_header(true, Opcode::Binary, 65536);
        assert_eq!(&b[..n], &bytes);
    }

    #[test]
    fn incomplete_headers_consume_nothing() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let (h, n) = FrameHeader::parse(&full).unwrap().unwrap();
        assert_eq!((h.payload_len, n, h.mask), (65536, 14, Some([1, 2, 3, 4])));
    }

    #[test]
    fn length_rules() {
        // 64-bit length with the high bit set.
        let bad = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(FrameHeader::parse(&bad), Err(FrameError::LengthHighBitSet));
        // 5 spelled in 16 bits, 300 spelled in 64 bits.
        let long5 = [0x82, 0x7E, 0x00, 0x05];
        assert_eq!(
            FrameHeader::parse(&long5),
            Err(FrameError::NonMinimalLength)
        );
        let long300 = [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x01, 0x2C];
        assert_eq!(
            FrameHeader::parse(&long300),
            Err(FrameError::NonMinimalLength)
        );
        // The boundaries of each form.
        for len in [0u64, 125, 126, 0xFFFF, 0x1_0000, (1 << 63) - 1] {
            let h = FrameHeader {
                fin: true,
                rsv: 0,
                opcode: Opcode::Binary,
                mask: Some([9, 8, 7, 6]),
                payload_len: len,
            };
            let mut out = Vec::new();
            h.emit(&mut out);
            assert_eq!(out.len(), h.header_len());
            assert_eq!(FrameHeader::parse(&out), Ok(Some((h, out.len()))));
        }
    }

    #[test]
    fn opcodes_and_rsv_survive() {
        for b0 in 0..=255u8 {
            let (h, _) = FrameHeader::parse(&[b0, 0]).unwrap().unwrap();
            assert_eq!(h.fin, b0 & 0x80 != 0);
            assert_eq!(h.rsv, (b0 >> 4) & 7);
            assert_eq!(h.opcode.to_u8(), b0 & 0x0F);
            assert_eq!(Opcode::from_u8(h.opcode.to_u8()), h.opcode);
            assert_eq!(h.opcode.is_control(), b0 & 0x08 != 0);
            let mut out = Vec::new();
            h.emit(&mut out);
            assert_eq!(out, [b0, 0]);
        }
    }

    #[test]
    fn mask_matches_bytewise_at_every_offset_and_length() {
        let key = [0xDE, 0xAD, 0xBE, 0xEF];
        for len in 0..80 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut a = data.clone();
                let mut b = data.clone();
                apply_mask(&mut a, key, offset);
                apply_mask_bytewise(&mut b, key, offset);
                assert_eq!(a, b, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn mask_in_pieces_equals_mask_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let mut at = 0;
        for step in [1, 3, 7, 8, 13, 32, 33, 64] {
            let end = (at + step).min(pieces.len());
            apply_mask(&mut pieces[at..end], key, at);
            at = end;
        }
        apply_mask(&mut pieces[at..], key, at);
        assert_eq!(pieces, whole);
        apply_mask(&mut whole, key, 0);
        assert_eq!(whole, data);
    }
}

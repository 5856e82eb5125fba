//! The chunked transfer coding (RFC 9112 §7.1).
//!
//! Before working on this file, read RFC 9112 §7.1 (chunked), §7.1.1
//! (chunk extensions), §7.1.2 (trailer section) and the head parser's
//! module comment in [`crate::wire::http1`]. A chunked body is where a
//! request's end is decided, so any byte two parsers could read differently
//! is a smuggling vector; this decoder refuses every such byte.
//!
//! ```text
//! chunked-body   = *chunk last-chunk trailer-section CRLF
//! chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val  = token / quoted-string
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Decisions where the RFC leaves a choice:
//! - Line endings are CRLF only, as in the head ([`ChunkedError::BareLf`]).
//! - BWS is accepted exactly where the grammar puts it: before `;`, around
//!   `=`. Whitespace after the size that does not lead to a `;` (`5 \r\n`)
//!   is refused: parsers that stop reading the size at the first non-hex
//!   byte and those that do not disagree about such lines.
//! - Extensions are checked against the grammar, bounded, and ignored.
//! - Trailer fields are checked as field lines, bounded, and discarded (RFC
//!   9112 §7.1.2 lets a recipient discard what it does not merge).

use thiserror::Error;

use crate::wire::http1::{field_content_len, is_field_content, is_tchar};

/// Limits the decoder enforces (copied from [`crate::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct ChunkedLimits {
    /// Most bytes of extensions in one chunk-size line. Over it:
    /// [`ChunkedError::ExtensionTooLong`] (400).
    pub max_ext_bytes: usize,
    /// Most bytes of the trailer section, its final CRLF included. Over it:
    /// [`ChunkedError::TrailerTooLarge`] (431).
    pub max_trailer_bytes: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        ChunkedLimits {
            max_ext_bytes: 1024,
            max_trailer_bytes: 8 * 1024,
        }
    }
}

/// What one [`ChunkedDecoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input consumed; the rest is not part of this body.
    pub consumed: usize,
    /// The body and its trailer section are complete.
    pub done: bool,
}

/// A chunked body that cannot be accepted. Each variant is named after the
/// rule it breaks; [`ChunkedError::status`] is the status to answer with,
/// always followed by `Connection: close`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChunkedError {
    #[error("chunk-size is not 1*HEXDIG (RFC 9112 §7.1)")]
    InvalidChunkSize,
    #[error("chunk-size does not fit in 64 bits")]
    ChunkSizeOverflow,
    #[error("chunk extensions longer than the limit")]
    ExtensionTooLong,
    #[error("malformed chunk extension (RFC 9112 §7.1.1)")]
    InvalidExtension,
    #[error("chunk-data not followed by CRLF (RFC 9112 §7.1)")]
    MissingCrlfAfterData,
    #[error("CR not followed by LF (RFC 9112 §2.2)")]
    LoneCr,
    #[error("line ended by a bare LF; only CRLF is accepted (RFC 9112 §2.2)")]
    BareLf,
    #[error("trailer section larger than the limit")]
    TrailerTooLarge,
    #[error("malformed trailer field line (RFC 9112 §7.1.2)")]
    InvalidTrailer,
    #[error("body larger than the limit")]
    BodyTooLarge,
}

impl ChunkedError {
    /// The status code to answer with (then close the connection).
    pub fn status(&self) -> u16 {
        match self {
            ChunkedError::TrailerTooLarge => 431,
            ChunkedError::BodyTooLarge => 413,
            _ => 400,
        }
    }
}

/// Where the decoder stands; it stops anywhere, mid-line or mid-chunk, and
/// resumes there with the next input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk-size.
    SizeStart,
    /// Reading hex digits (the value so far is in `size`).
    Size,
    Ext(Ext),
    /// After the CR ending a chunk-size line.
    SizeLf,
    /// Inside chunk-data; `size` bytes remain.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer field line, or of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
    /// An error was returned; it is returned again.
    Failed(ChunkedError),
}

/// Positions in the chunk-ext grammar, one byte at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Whitespace after the size: only BWS ";" may follow.
    SizeBws,
    /// After ";": BWS, then a name.
    BeforeName,
    Name,
    /// BWS after a name: "=" or ";" follows.
    AfterName,
    /// After "=": BWS, then a token or a quoted-string.
    BeforeValue,
    Token,
    Quoted,
    /// After a backslash in a quoted-string (RFC 9110 §5.6.4).
    QuotedPair,
    /// After a value; `ws`: whitespace seen, so only ";" may follow.
    AfterValue {
        ws: bool,
    },
}

/// A streaming decoder of one chunked body: it consumes partial chunks and
/// appends the data to the caller's vector as it arrives.
#[derive(Debug)]
pub struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
    /// The chunk-size being read, then the chunk-data bytes still to come.
    size: u64,
    /// Body bytes of the chunks whose size line is complete.
    body: u64,
    ext_bytes: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    pub fn new(limits: ChunkedLimits) -> Self {
        ChunkedDecoder {
            limits,
            state: State::SizeStart,
            size: 0,
            body: 0,
            ext_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Decodes as much of `input` as it can, appending body bytes to `out`.
    ///
    /// It never consumes a byte past the end of the message (the trailer
    /// section's final CRLF), so pipelined bytes stay in `input`. If the
    /// body would exceed `max_body`, [`ChunkedError::BodyTooLarge`] is
    /// returned as soon as a chunk-size says so, before its data is read.
    /// After an error the decoder returns that error again.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: usize,
    ) -> Result<Progress, ChunkedError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let mut pos = 0;
        while pos < input.len() && self.state != State::Done {
            let step = match self.state {
                State::Data => Ok(self.data(&input[pos..], out)),
                State::TrailerValue => self.trailer_value(&input[pos..]),
                _ => self.byte(input[pos], max_body).map(|()| 1),
            };
            match step {
                Ok(n) => pos += n,
                Err(e) => {
                    self.state = State::Failed(e.clone());
                    return Err(e);
                }
            }
        }
        Ok(Progress {
            consumed: pos,
            done: self.state == State::Done,
        })
    }

    /// Copies the chunk-data at the start of `input`; returns its length.
    fn data(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        let n = usize::try_from(self.size).map_or(input.len(), |size| size.min(input.len()));
        out.extend_from_slice(&input[..n]);
        self.size -= n as u64;
        if self.size == 0 {
            self.state = State::DataCr;
        }
        n
    }

    /// Scans a trailer field value; returns the bytes consumed.
    fn trailer_value(&mut self, input: &[u8]) -> Result<usize, ChunkedError> {
        // Look no further than the trailer budget allows, plus one byte to
        // know it was exceeded.
        let budget = self.limits.max_trailer_bytes - self.trailer_bytes;
        let window = &input[..input.len().min(budget.saturating_add(1))];
        let n = field_content_len(window);
        self.trailer_bytes += n;
        if self.trailer_bytes > self.limits.max_trailer_bytes {
            return Err(ChunkedError::TrailerTooLarge);
        }
        match input.get(n) {
            None => Ok(n),
            Some(&b) => self.byte(b, 0).map(|()| n + 1),
        }
    }

    /// Advances the state machine by one byte (every state but `Data`).
    fn byte(&mut self, b: u8, max_body: usize) -> Result<(), ChunkedError> {
        match self.state {
            State::SizeStart => {
                // RFC 9112 §7.1: chunk-size = 1*HEXDIG. No sign, no "0x", no
                // leading whitespace: each is read as a size by someone.
                let digit = hex_value(b).ok_or(ChunkedError::InvalidChunkSize)?;
                self.size = 0;
                self.ext_bytes = 0;
                self.size_digit(digit, max_body)?;
                self.state = State::Size;
            }
            State::Size => match b {
                b'\r' => self.state = State::SizeLf,
                b'\n' => return Err(ChunkedError::BareLf),
                b';' => self.ext_byte(Ext::BeforeName)?,
                b' ' | b'\t' => self.ext_byte(Ext::SizeBws)?,
                _ => {
                    let digit = hex_value(b).ok_or(ChunkedError::InvalidChunkSize)?;
                    self.size_digit(digit, max_body)?;
                }
            },
            State::Ext(ext) => match b {
                b'\r' if ext_may_end(ext) => self.state = State::SizeLf,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => self.ext_byte(next_ext(ext, b)?)?,
            },
            State::SizeLf => {
                expect_lf(b)?;
                self.body += self.size;
                // RFC 9112 §7.1: the last chunk has a size of zero.
                self.state = if self.size == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
            }
            // Unreachable through `decode` (it copies data in bulk), and
            // harmless: no byte is taken as data here.
            State::Data => return Err(ChunkedError::MissingCrlfAfterData),
            // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF
            // chunk-data CRLF. Any other byte means the size lied, and
            // reading on would resynchronise on attacker-chosen bytes.
            State::DataCr if b == b'\r' => self.state = State::DataLf,
            State::DataLf if b == b'\n' => self.state = State::SizeStart,
            State::DataCr | State::DataLf => return Err(ChunkedError::MissingCrlfAfterData),
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > self.limits.max_trailer_bytes {
                    return Err(ChunkedError::TrailerTooLarge);
                }
                self.trailer_byte(b)?;
            }
            State::Done | State::Failed(_) => {}
        }
        Ok(())
    }

    fn size_digit(&mut self, digit: u8, max_body: usize) -> Result<(), ChunkedError> {
        if self.size > u64::MAX >> 4 {
            return Err(ChunkedError::ChunkSizeOverflow);
        }
        self.size = self.size << 4 | u64::from(digit);
        // Refuse as soon as the size line says the body is too large: the
        // data is never read, let alone buffered.
        if self.body.saturating_add(self.size) > max_body as u64 {
            return Err(ChunkedError::BodyTooLarge);
        }
        Ok(())
    }

    fn ext_byte(&mut self, next: Ext) -> Result<(), ChunkedError> {
        // Extensions carry nothing we use, so they only need a bound.
        self.ext_bytes += 1;
        if self.ext_bytes > self.limits.max_ext_bytes {
            return Err(ChunkedError::ExtensionTooLong);
        }
        self.state = State::Ext(next);
        Ok(())
    }

    /// RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), then the
    /// CRLF ending the body. Field lines are checked as in the head.
    fn trailer_byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        self.state = match (&self.state, b) {
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, b) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, b) if is_field_content(b) => State::TrailerValue,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(ChunkedError::LoneCr),
            (_, b'\n') => return Err(ChunkedError::BareLf),
            // Whitespace before a name (obs-fold, RFC 9112 §5.2) or a colon
            // (§5.1), a CTL in a value (RFC 9110 §5.5), a missing colon.
            _ => return Err(ChunkedError::InvalidTrailer),
        };
        Ok(())
    }
}

fn expect_lf(b: u8) -> Result<(), ChunkedError> {
    if b == b'\n' {
        Ok(())
    } else {
        // RFC 9112 §2.2: a bare CR is invalid.
        Err(ChunkedError::LoneCr)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether the size line may end (CRLF) in this extension state: not after
/// BWS (the grammar has BWS only before ";" and around "="), not halfway
/// through an extension.
fn ext_may_end(ext: Ext) -> bool {
    matches!(ext, Ext::Name | Ext::Token | Ext::AfterValue { ws: false })
}

/// RFC 9112 §7.1.1, one byte at a time:
/// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
fn next_ext(ext: Ext, b: u8) -> Result<Ext, ChunkedError> {
    let ws = b == b' ' || b == b'\t';
    Ok(match ext {
        Ext::SizeBws if ws => Ext::SizeBws,
        Ext::SizeBws if b == b';' => Ext::BeforeName,
        // Whitespace after the size not leading to ";": not a size line.
        Ext::SizeBws => return Err(ChunkedError::InvalidChunkSize),
        Ext::BeforeName if ws => Ext::BeforeName,
        Ext::BeforeName | Ext::Name if is_tchar(b) => Ext::Name,
        Ext::Name | Ext::AfterName if ws => Ext::AfterName,
        Ext::Name | Ext::AfterName if b == b'=' => Ext::BeforeValue,
        Ext::BeforeValue if ws => Ext::BeforeValue,
        Ext::BeforeValue if b == b'"' => Ext::Quoted,
        Ext::BeforeValue | Ext::Token if is_tchar(b) => Ext::Token,
        // RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E /
        // obs-text; quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ).
        Ext::Quoted if b == b'"' => Ext::AfterValue { ws: false },
        Ext::Quoted if b == b'\\' => Ext::QuotedPair,
        Ext::Quoted | Ext::QuotedPair if is_field_content(b) => Ext::Quoted,
        Ext::Token | Ext::AfterValue { .. } if ws => Ext::AfterValue { ws: true },
        Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue { .. } if b == b';' => {
            Ext::BeforeName
        }
        _ => return Err(ChunkedError::InvalidExtension),
    })
}

// ---- Encoder ---------------------------------------------------------------

/// Appends one chunk (`{hex}\r\n{data}\r\n`). Nothing for empty data: a
/// chunk of size zero is the last chunk and would end the body.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    write_chunk_header(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends just the chunk-size line for a chunk of `len` bytes, so that a
/// caller can send shared bytes without copying them; the data and its
/// CRLF follow. `len` 0 writes the last-chunk line: use [`encode_last`].
pub fn write_chunk_header(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; (usize::BITS / 4) as usize];
    let mut first = digits.len();
    let mut n = len;
    for slot in digits.iter_mut().rev() {
        *slot = HEX[n & 0xf];
        first -= 1;
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[first..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last-chunk and an empty trailer section: `0\r\n\r\n`.
pub fn encode_last(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ChunkedLimits = ChunkedLimits {
        max_ext_bytes: 64,
        max_trailer_bytes: 64,
    };

    /// Decodes `input` in one call: (body, consumed, done) or the error.
    fn whole(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut out = Vec::new();
        let p = ChunkedDecoder::new(LIMITS).decode(input, &mut out, max_body)?;
        Ok((out, p.consumed, p.done))
    }

    /// Decodes `input` one byte per call.
    fn bytewise(input: &[u8], max_body: usize) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut decoder = ChunkedDecoder::new(LIMITS);
        let mut out = Vec::new();
        let mut consumed = 0;
        for b in input {
            let p = decoder.decode(std::slice::from_ref(b), &mut out, max_body)?;
            consumed += p.consumed;
            if p.done {
                return Ok((out, consumed, true));
            }
        }
        Ok((out, consumed, false))
    }

    fn err(input: &[u8]) -> ChunkedError {
        let e = whole(input, 1 << 20).unwrap_err();
        assert_eq!(bytewise(input, 1 << 20).unwrap_err(), e);
        e
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let input = b"4\r\nWiki\r\n6;name=value;quoted=\"a \\\" b\"\r\npedia \r\nE ; flag\r\nin \r\n\r\nchunks.\r\n\
            0\r\nExpires: never\r\nX:\r\n\r\nGET / HTTP/1.1\r\n";
        let (body, consumed, done) = whole(input, 1 << 20).unwrap();
        assert_eq!(body, b"Wikipedia in \r\n\r\nchunks.");
        assert!(done);
        // Pipelined bytes after the body stay in the input.
        assert_eq!(&input[consumed..], b"GET / HTTP/1.1\r\n");
        assert_eq!(bytewise(input, 1 << 20), whole(input, 1 << 20));
    }

    #[test]
    fn last_chunk_may_have_several_zeros_and_extensions() {
        assert_eq!(whole(b"000;x=y\r\n\r\n", 10), Ok((vec![], 11, true)));
        assert_eq!(whole(b"0\r\n\r\n", 0), Ok((vec![], 5, true)));
    }

    #[test]
    fn partial_input_is_consumed_and_resumed() {
        let mut decoder = ChunkedDecoder::new(LIMITS);
        let mut out = Vec::new();
        let p = decoder.decode(b"a\r\n01234", &mut out, 100).unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 8,
                done: false
            }
        );
        let p = decoder
            .decode(b"56789\r\n0\r\n\r\nextra", &mut out, 100)
            .unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 12,
                done: true
            }
        );
        assert_eq!(out, b"0123456789");
        // Done stays done, and consumes nothing more.
        let p = decoder.decode(b"extra", &mut out, 100).unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 0,
                done: true
            }
        );
    }

    #[test]
    fn every_error_variant_is_reachable() {
        use ChunkedError::*;
        let cases: &[(&[u8], ChunkedError)] = &[
            (b"+5\r\nhello\r\n0\r\n\r\n", InvalidChunkSize),
            (b"0x5\r\nhello\r\n0\r\n\r\n", InvalidChunkSize),
            (b" 5\r\nhello\r\n0\r\n\r\n", InvalidChunkSize),
            (b"5 \r\nhello\r\n0\r\n\r\n", InvalidChunkSize),
            (b"\r\n", InvalidChunkSize),
            (b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", ExtensionTooLong),
            (b"1;\r\nx\r\n0\r\n\r\n", InvalidExtension),
            (b"1;a=\r\nx\r\n0\r\n\r\n", InvalidExtension),
            (b"1;a=\"x\r\nx\r\n0\r\n\r\n", InvalidExtension),
            (b"1;a \r\nx\r\n0\r\n\r\n", InvalidExtension),
            (b"1;a=b c\r\nx\r\n0\r\n\r\n", InvalidExtension),
            (b"1;a=\"\x00\"\r\nx\r\n0\r\n\r\n", InvalidExtension),
            (b"3\r\nabcd\r\n0\r\n\r\n", MissingCrlfAfterData),
            (b"3\r\nabc\n0\r\n\r\n", MissingCrlfAfterData),
            (b"3\rabc\r\n0\r\n\r\n", LoneCr),
            (b"0\r\nA: b\rc\r\n\r\n", LoneCr),
            (b"0\r\n\r\r\n", LoneCr),
            (b"3\nabc\r\n0\r\n\r\n", BareLf),
            (b"1;a=b\nx\r\n0\r\n\r\n", BareLf),
            (b"0\r\n\n", BareLf),
            (b"0\r\nA: b\n\r\n", BareLf),
            (b"0\r\nA: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", TrailerTooLarge),
            (b"0\r\n A: b\r\n\r\n", InvalidTrailer),
            (b"0\r\nA : b\r\n\r\n", InvalidTrailer),
            (b"0\r\nA\r\n\r\n", InvalidTrailer),
            (b"0\r\nA: \x01\r\n\r\n", InvalidTrailer),
        ];
        for (input, want) in cases {
            assert_eq!(&err(input), want, "{}", String::from_utf8_lossy(input));
        }
        // Overflow is reachable only when the body limit is not smaller.
        assert_eq!(
            whole(b"10000000000000000\r\n", usize::MAX),
            Err(ChunkSizeOverflow)
        );
        assert_eq!(
            whole(b"fffffffffffffffff", usize::MAX),
            Err(ChunkSizeOverflow)
        );
    }

    #[test]
    fn body_too_large_is_refused_from_the_size_line() {
        // The size digits alone decide: no data has arrived.
        assert_eq!(whole(b"b", 10), Err(ChunkedError::BodyTooLarge));
        assert_eq!(
            whole(b"a\r\n0123456789\r\n1", 10),
            Err(ChunkedError::BodyTooLarge)
        );
        assert!(whole(b"a\r\n0123456789\r\n0\r\n\r\n", 10).unwrap().2);
    }

    #[test]
    fn errors_are_sticky() {
        let mut decoder = ChunkedDecoder::new(LIMITS);
        let mut out = Vec::new();
        assert_eq!(
            decoder.decode(b"z", &mut out, 10),
            Err(ChunkedError::InvalidChunkSize)
        );
        assert_eq!(
            decoder.decode(b"0\r\n\r\n", &mut out, 10),
            Err(ChunkedError::InvalidChunkSize)
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(ChunkedError::BodyTooLarge.status(), 413);
        assert_eq!(ChunkedError::TrailerTooLarge.status(), 431);
        assert_eq!(ChunkedError::ExtensionTooLong.status(), 400);
    }

    #[test]
    fn encoder_round_trips() {
        let mut wire = Vec::new();
        encode_chunk(&mut wire, b"data: hello\n\n");
        encode_chunk(&mut wire, b"");
        encode_chunk(&mut wire, &[b'x'; 300]);
        encode_last(&mut wire);
        assert!(wire.starts_with(b"d\r\ndata: hello\n\n\r\n12c\r\n"));
        assert!(wire.ends_with(b"x\r\n0\r\n\r\n"));
        let (body, consumed, done) = whole(&wire, 1 << 20).unwrap();
        assert_eq!(body.len(), 13 + 300);
        assert_eq!((consumed, done), (wire.len(), true));
    }

    #[test]
    fn chunk_headers_in_hex() {
        for (len, want) in [
            (1usize, &b"1\r\n"[..]),
            (15, b"f\r\n"),
            (16, b"10\r\n"),
            (0xabcdef, b"abcdef\r\n"),
        ] {
            let mut out = Vec::new();
            write_chunk_header(&mut out, len);
            assert_eq!(out, want);
        }
        let mut out = Vec::new();
        write_chunk_header(&mut out, usize::MAX);
        assert_eq!(out.len(), usize::BITS as usize / 4 + 2);
    }
}

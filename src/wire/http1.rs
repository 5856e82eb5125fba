//! HTTP/1.1 request heads (RFC 9112).
//!
//! Before working on this file, read RFC 9112 §2 (message format), §3
//! (request line), §5 (field syntax), §6 (message body length) and RFC 9110
//! §5.5 (field values). Request smuggling lives in the gaps between two
//! parsers' readings of the same bytes, so this parser is strict: where the
//! RFC allows leniency we refuse, and say so next to the rule.
//!
//! The parser keeps no copy of the bytes: a parsed [`RequestHead`] holds
//! [`Span`]s into the caller's buffer, and its `headers` vector is reused
//! from one request to the next, so a keep-alive connection parses without
//! allocating.
//!
//! Decisions this parser makes where the RFCs leave a choice, each one the
//! stricter reading (they are also the documented disagreements with
//! `httparse`, which `tests/http1_differential.rs` checks):
//!
//! - Line endings are CRLF only. RFC 9112 §2.2 lets a recipient accept a
//!   bare LF as a line terminator; we answer [`HeadError::BareLf`] instead.
//!   A front proxy that does not split on bare LF would see one field where
//!   we would see two (`X: a\nTransfer-Encoding: chunked`): refusing is the
//!   only reading no other parser can contradict.
//! - At most [`MAX_EMPTY_LINES`] empty lines are skipped before the
//!   request-line (RFC 9112 §2.2 asks for at least one).
//! - The request-target is visible ASCII without `#` (RFC 9112 §3.2, RFC
//!   3986: non-ASCII must be percent-encoded, a fragment is never sent),
//!   and its form must match the method (§3.2.1-§3.2.4).
//! - Field values may not contain any control byte but HTAB (RFC 9110 §5.5
//!   lets a recipient keep the other CTLs "in a safe context"; nothing that
//!   reads our headers is such a context, so we refuse them).
//! - Limits: head bytes, header count and target length (431, 431, 414).

use thiserror::Error;

/// A byte range of the buffer a head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes this span covers. Never panics: a span that does not fit
    /// `buf` (a caller mixing buffers) yields the empty slice.
    #[inline]
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Request methods this server distinguishes. Any other token is `Other`
/// (its bytes are in [`RequestHead::method_span`]); the router answers it
/// 405 or 501.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Connect,
    Trace,
    Other,
}

impl Method {
    pub fn from_bytes(b: &[u8]) -> Method {
        match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other => "OTHER",
        }
    }
}

/// The protocol versions we speak. Any other `HTTP/x.y` is answered 505.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    Http10,
    #[default]
    Http11,
}

impl Version {
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header field: spans of its name and of its value with the optional
/// whitespace around it removed (RFC 9112 §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

/// A parsed request head. Its spans index the buffer it was parsed from.
#[derive(Clone, Debug, Default)]
pub struct RequestHead {
    pub method: Method,
    pub method_span: Span,
    pub target: Span,
    pub version: Version,
    /// Reused across requests: cleared, not reallocated.
    pub headers: Vec<HeaderSpan>,
    /// Bytes the head occupies at the start of the buffer, including any
    /// empty lines skipped before the request line and the final CRLF.
    pub len: usize,
}

impl RequestHead {
    /// The request-target as text (the parser admits only visible ASCII
    /// there, so this never fails on a parsed head).
    pub fn target<'a>(&self, buf: &'a [u8]) -> &'a str {
        std::str::from_utf8(self.target.get(buf)).unwrap_or("")
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        self.headers
            .iter()
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(name))
            .map(|h| h.value.get(buf))
    }

    /// Every value of the fields named `name`, in order.
    pub fn headers_named<'a>(
        &'a self,
        buf: &'a [u8],
        name: &'a str,
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |h| h.value.get(buf))
    }

    /// Whether any field named `name` carries `token` in its
    /// comma-separated list (RFC 9110 §5.6.1), ASCII case-insensitive.
    /// `Connection: keep-alive, Upgrade` has the token `upgrade`.
    pub fn has_token(&self, buf: &[u8], name: &str, token: &str) -> bool {
        self.headers_named(buf, name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
        })
    }
}

/// Strip optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
pub fn trim_ows(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Limits the head parser enforces (copied from [`crate::Config`]).
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// Over it: [`HeadError::HeadTooLarge`] (431).
    pub max_head_bytes: usize,
    /// Over it: [`HeadError::TooManyHeaders`] (431).
    pub max_headers: usize,
    /// Over it: [`HeadError::UriTooLong`] (414).
    pub max_uri_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
        }
    }
}

// ---- Byte classes ----------------------------------------------------------

const TCHAR: u8 = 1 << 0;
const TARGET: u8 = 1 << 1;
const FIELD_CONTENT: u8 = 1 << 2;

/// One lookup per byte: the scanning loops below test a bit of this table.
static CLASS: [u8; 256] = classify();

const fn classify() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" /
        // "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
        if b.is_ascii_alphanumeric() || is_tchar_symbol(b) {
            class |= TCHAR;
        }
        // RFC 9112 §3.2 and RFC 3986 §2: a request-target is visible ASCII;
        // anything else arrives percent-encoded. `#` starts a fragment, which
        // RFC 9112 §3.2 leaves out of every request-target form.
        if b > 0x20 && b < 0x7f && b != b'#' {
            class |= TARGET;
        }
        // RFC 9110 §5.5: field-content is VCHAR / obs-text, with SP and HTAB
        // inside. CR, LF and NUL are dangerous and the other CTLs (DEL too)
        // invalid: none of them is here.
        if b == b'\t' || (b >= 0x20 && b != 0x7f) {
            class |= FIELD_CONTENT;
        }
        table[i] = class;
        i += 1;
    }
    table
}

const fn is_tchar_symbol(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    )
}

/// Whether `b` may appear in a token (RFC 9110 §5.6.2): method, field name,
/// transfer coding, chunk extension name.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    CLASS[b as usize] & TCHAR != 0
}

/// Whether `b` may appear in a field value (RFC 9110 §5.5).
#[inline]
pub fn is_field_content(b: u8) -> bool {
    CLASS[b as usize] & FIELD_CONTENT != 0
}

/// Length of the run of bytes of `class` at the start of `bytes`.
///
/// Eight lookups are and-ed before one test: a branch per block instead of
/// per byte. This is the reference every faster scan below is tested
/// against, and what they fall back on for a few bytes.
#[inline]
fn run(bytes: &[u8], class: u8) -> usize {
    let mut done = 0;
    for block in bytes.chunks_exact(8) {
        if block.iter().fold(class, |all, &b| all & CLASS[b as usize]) == 0 {
            break;
        }
        done += 8;
    }
    let tail = &bytes[done..];
    done + tail
        .iter()
        .position(|&b| CLASS[b as usize] & class == 0)
        .unwrap_or(tail.len())
}

/// Length of the run of tokens bytes at the start of `bytes`.
#[inline]
pub fn token_len(bytes: &[u8]) -> usize {
    token_end(bytes, 0)
}

/// Length of the run of field-content bytes at the start of `bytes`.
#[inline]
pub fn field_content_len(bytes: &[u8]) -> usize {
    value_end(bytes, 0)
}

// The scans a head spends its time in. Each returns where the run of its
// class starting at `from` ends in `b` (`b.len()` if it does not), looking
// at no byte before `from`. On x86_64 they test 16 bytes at a time with
// SSE2 (part of the baseline, so no detection), the last partial block by
// reloading the last 16 bytes of `b`; on other targets, and for buffers
// shorter than 16 bytes, eight at a time in a u64.

/// The end of the token (RFC 9110 §5.6.2) starting at `b[from]`.
#[inline]
fn token_end(b: &[u8], from: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let from = {
        let mut from = from;
        while let Some(at) = sse2::find(b, from, sse2::token_stops) {
            // The block test flags every byte that is not ALPHA, DIGIT or
            // "-": a superset; the rarer tchars ("_", ".", "!"...) are
            // stepped over. The usual stops (":" after a name, SP after a
            // method) are not looked up.
            match b.get(at) {
                Some(&c) if c != b':' && c != b' ' && is_tchar(c) => from = at + 1,
                _ => return at,
            }
        }
        from
    };
    from + run(b.get(from..).unwrap_or_default(), TCHAR)
}

/// The end of the field-content starting at `b[from]`.
#[inline]
fn value_end(b: &[u8], from: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(at) = sse2::find(b, from, sse2::value_stops) {
        return at;
    }
    value_end_words(b, from)
}

/// [`value_end`] eight bytes at a time.
fn value_end_words(b: &[u8], from: usize) -> usize {
    // RFC 9110 §5.5: stop at a CTL (HTAB aside, which `scan` lets through
    // by the table) or DEL.
    from + scan(b.get(from..).unwrap_or_default(), FIELD_CONTENT, |x| {
        below(x, 0x20) | equal(x, 0x7f)
    })
}

/// The end of the request-target starting at `b[from]`.
#[inline]
fn target_end(b: &[u8], from: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(at) = sse2::find(b, from, sse2::target_stops) {
        return at;
    }
    target_end_words(b, from)
}

/// [`target_end`] eight bytes at a time.
fn target_end_words(b: &[u8], from: usize) -> usize {
    // Visible ASCII but `#`: stop at SP and below, DEL and above, and `#`.
    from + scan(b.get(from..).unwrap_or_default(), TARGET, |x| {
        below(x, 0x21) | equal(x, 0x7f) | (x & HIGHS) | equal(x, b'#')
    })
}

/// Sixteen bytes at a time. Each `*_stops` returns a 16-bit mask (bit i
/// for byte i) of the bytes of a block that end a run: exactly the bytes
/// outside the class for values and targets, a superset for tokens.
///
/// Each is one `unsafe` block, sound for the same two reasons: the
/// intrinsics need SSE2, which the module's `cfg` proves is enabled (it is
/// part of the x86_64 baseline), and the one load reads the 16 bytes of
/// `block`, with no alignment required (`loadu`).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_min_epu8,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8,
    };

    /// Not field-content (RFC 9110 §5.5): a CTL but HTAB, or DEL.
    #[inline(always)]
    pub fn value_stops(block: &[u8; 16]) -> u32 {
        // SAFETY: see the module.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast());
            // x <= 0x1f unsigned: min(x, 0x1f) == x (SSE2 compares only
            // signed bytes).
            let ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            let tab = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\t' as i8));
            let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
            _mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, ctl), del)) as u32
        }
    }

    /// Not a request-target byte: outside 0x21..=0x7e, or `#`.
    #[inline(always)]
    pub fn target_stops(block: &[u8; 16]) -> u32 {
        // SAFETY: see the module.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast());
            // Signed: 0x21..=0x7f are greater than 0x20, 0x80..=0xff are
            // negative.
            let visible = _mm_cmpgt_epi8(x, _mm_set1_epi8(0x20));
            let del = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f));
            let hash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'#' as i8));
            let ok = _mm_andnot_si128(_mm_or_si128(del, hash), visible);
            _mm_movemask_epi8(ok) as u32 ^ 0xffff
        }
    }

    /// Not ALPHA, DIGIT or "-": every byte that is not a tchar, and a few
    /// that are.
    #[inline(always)]
    pub fn token_stops(block: &[u8; 16]) -> u32 {
        // SAFETY: see the module.
        unsafe {
            let x = _mm_loadu_si128(block.as_ptr().cast());
            // ALPHA: (x | 0x20) - 'a' <= 25 unsigned, both cases and
            // nothing else; DIGIT: x - '0' <= 9.
            let lower = _mm_sub_epi8(
                _mm_or_si128(x, _mm_set1_epi8(0x20)),
                _mm_set1_epi8(b'a' as i8),
            );
            let alpha = _mm_cmpeq_epi8(_mm_min_epu8(lower, _mm_set1_epi8(25)), lower);
            let digit0 = _mm_sub_epi8(x, _mm_set1_epi8(b'0' as i8));
            let digit = _mm_cmpeq_epi8(_mm_min_epu8(digit0, _mm_set1_epi8(9)), digit0);
            let dash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'-' as i8));
            let ok = _mm_or_si128(_mm_or_si128(alpha, digit), dash);
            _mm_movemask_epi8(ok) as u32 ^ 0xffff
        }
    }

    /// The first byte at or after `from` that `stops` flags, or `b.len()`;
    /// `None` if `b` is shorter than a block (the caller scans it another
    /// way). Only the blocks' bits for `from` and after are read.
    #[inline(always)]
    pub fn find(b: &[u8], mut from: usize, stops: impl Fn(&[u8; 16]) -> u32) -> Option<usize> {
        while let Some(block) = b.get(from..).and_then(<[u8]>::first_chunk::<16>) {
            let flags = stops(block);
            if flags != 0 {
                return Some(from + flags.trailing_zeros() as usize);
            }
            from += 16;
        }
        // Fewer than 16 bytes left: test the last 16 of `b` and drop the
        // bits of those before `from` (already tested, or not ours to).
        let last = b.last_chunk::<16>()?;
        let Some(skip) = (from + 16).checked_sub(b.len()).filter(|&s| s < 16) else {
            return Some(b.len());
        };
        let flags = stops(last) >> skip;
        Some(if flags != 0 {
            from + flags.trailing_zeros() as usize
        } else {
            b.len()
        })
    }
}

// Eight bytes at a time ("SIMD within a register"), where SSE2 is not
// there or the buffer is shorter than its blocks.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes as a little-endian word (the first byte lowest). Only ever
/// given eight bytes; anything else loads as zero, which every `stop` flags.
#[inline(always)]
fn load(word: &[u8]) -> u64 {
    u64::from_le_bytes(word.try_into().unwrap_or([0; 8]))
}

/// Sets the high bit of the bytes of `x` less than `n` (n <= 0x80). A
/// borrow may also flag a byte above a flagged one, never below: the
/// lowest flag is exact, and it is the only one `scan` reads.
#[inline(always)]
const fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGHS
}

/// Sets the high bit of the bytes of `x` equal to `v` (same caveat).
#[inline(always)]
const fn equal(x: u64, v: u8) -> u64 {
    below(x ^ (ONES * v as u64), 1)
}

/// Length of the run of bytes of `class` at the start of `bytes`. `stop`
/// flags, for each 8-byte word, a superset of the bytes outside `class`;
/// a flagged byte the table admits (HTAB in a value) is stepped over.
#[inline(always)]
fn scan(bytes: &[u8], class: u8, stop: impl Fn(u64) -> u64) -> usize {
    let mut done = 0;
    // Long values (User-Agent, Cookie) go 32 bytes per test: four
    // independent words, or-ed.
    while let Some(block) = bytes.get(done..done + 32) {
        let flags = block
            .chunks_exact(8)
            .fold(0, |flags, word| flags | stop(load(word)));
        if flags != 0 {
            break;
        }
        done += 32;
    }
    while let Some(word) = bytes.get(done..done + 8) {
        let flags = stop(load(word));
        if flags == 0 {
            done += 8;
            continue;
        }
        let at = done + (flags.trailing_zeros() / 8) as usize;
        match bytes.get(at) {
            Some(&b) if CLASS[b as usize] & class != 0 => done = at + 1,
            _ => return at,
        }
    }
    done + run(&bytes[done..], class)
}

// ---- The head parser -------------------------------------------------------

/// Empty lines (CRLF) skipped before a request-line. RFC 9112 §2.2: "a
/// server that is expecting to receive and parse a request-line SHOULD
/// ignore at least one empty line (CRLF) received prior to the
/// request-line" (clients used to send one after a POST body). More than a
/// few is not a client being sloppy.
pub const MAX_EMPTY_LINES: u8 = 4;

/// A request head that cannot be accepted. Each variant is named after the
/// rule it breaks; [`HeadError::status`] is the status to answer with,
/// always followed by `Connection: close`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HeadError {
    #[error("CR not followed by LF (RFC 9112 §2.2)")]
    LoneCr,
    #[error("line ended by a bare LF; only CRLF is accepted (RFC 9112 §2.2)")]
    BareLf,
    #[error("too many empty lines before the request-line (RFC 9112 §2.2)")]
    TooManyEmptyLines,
    #[error("method is not a token (RFC 9112 §3.1)")]
    InvalidMethod,
    #[error("method longer than any implemented (RFC 9112 §3)")]
    MethodTooLong,
    #[error("invalid request-target (RFC 9112 §3.2)")]
    InvalidTarget,
    #[error("request-target longer than the limit")]
    UriTooLong,
    #[error("malformed HTTP-version (RFC 9112 §2.3)")]
    InvalidVersion,
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    #[error("whitespace between the start-line and the first field (RFC 9112 §2.2)")]
    WhitespaceBeforeFirstHeader,
    #[error("obsolete line folding (RFC 9112 §5.2)")]
    ObsoleteLineFolding,
    #[error("field name is not a token (RFC 9110 §5.1)")]
    InvalidHeaderName,
    #[error("whitespace between field name and colon (RFC 9112 §5.1)")]
    WhitespaceBeforeColon,
    #[error("field line without a colon (RFC 9112 §5)")]
    MissingColon,
    #[error("control byte in a field value (RFC 9110 §5.5)")]
    InvalidHeaderValue,
    #[error("request head larger than the limit")]
    HeadTooLarge,
    #[error("more header fields than the limit")]
    TooManyHeaders,
    #[error("HTTP/1.1 request without Host (RFC 9112 §3.2)")]
    MissingHost,
    #[error("more than one Host field (RFC 9112 §3.2)")]
    DuplicateHost,
    #[error("Host is not uri-host [ \":\" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2)")]
    InvalidHost,
    #[error("both Content-Length and Transfer-Encoding (RFC 9112 §6.1)")]
    ContentLengthWithTransferEncoding,
    #[error("Content-Length is not 1*DIGIT or overflows (RFC 9110 §8.6)")]
    InvalidContentLength,
    #[error("different Content-Length values (RFC 9112 §6.3)")]
    ConflictingContentLength,
    #[error("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)")]
    TransferEncodingOnHttp10,
    #[error("transfer coding not implemented (RFC 9112 §6.1)")]
    UnknownTransferCoding,
    #[error("chunked is not the final transfer coding (RFC 9112 §6.3)")]
    ChunkedNotLast,
    #[error("chunked applied more than once (RFC 9112 §6.1)")]
    ChunkedTwice,
}

impl HeadError {
    /// The status code to answer with (then close the connection).
    pub fn status(&self) -> u16 {
        match self {
            HeadError::UriTooLong => 414,
            HeadError::HeadTooLarge | HeadError::TooManyHeaders => 431,
            HeadError::UnknownTransferCoding | HeadError::MethodTooLong => 501,
            HeadError::UnsupportedVersion => 505,
            _ => 400,
        }
    }
}

/// The longest method token read: longer than every registered method
/// (`UPDATEREDIRECTREF`, 17 bytes) with room to spare.
pub const MAX_METHOD_BYTES: usize = 32;

/// Where the scan stands. The parser moves through these in the order they
/// are declared (the field-line phases compare by it), and a suspended
/// parse resumes in the state (and at the byte) it stopped at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    /// Skipping empty lines before the request-line.
    #[default]
    EmptyLines,
    Method,
    Target,
    /// `HTTP/d.d` and the CRLF ending the request-line.
    Version,
    /// At the start of a field line, or of the empty line ending the head.
    FieldStart,
    Name,
    /// Skipping the OWS after the colon.
    BeforeValue,
    Value,
}

/// A resumable request-head parser (RFC 9112 §2-§5).
///
/// Feed it the bytes received so far; it returns `Ok(false)` until the head
/// is complete. It remembers how far it has checked, so a client sending
/// one byte at a time costs linear time in total: every byte is examined
/// once, save for at most the 10 bytes of `HTTP/1.1\r\n` and the CR of a
/// CRLF split across reads.
#[derive(Debug, Default, Clone)]
pub struct HeadParser {
    state: State,
    /// Bytes of the buffer already checked.
    pos: usize,
    /// Start of the element being scanned (method, target, name, value).
    mark: usize,
    empty_lines: u8,
    /// Field lines already pushed to the caller's `head.headers`.
    fields: usize,
    name: Span,
    method: Method,
    method_span: Span,
    target: Span,
    version: Version,
}

impl HeadParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget any partial head, ready for the first byte of the next one.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Bytes of the current head already checked: the next call resumes
    /// there.
    pub fn scanned(&self) -> usize {
        self.pos
    }

    /// Parses the head at the start of `buf`.
    ///
    /// `buf` holds the unconsumed input, starting at the first byte of this
    /// request. `Ok(true)`: `head` is filled, its spans index `buf`, and
    /// `head.len` bytes of `buf` are the head. `Ok(false)`: incomplete; the
    /// next call must pass the same bytes plus any new ones, and the same
    /// `head` (the fields parsed so far are in it). `Err`: answer
    /// [`HeadError::status`] with `Connection: close` and close. After
    /// `Ok(true)` or `Err` the parser is reset for the next request.
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
        head: &mut RequestHead,
    ) -> Result<bool, HeadError> {
        // A caller that broke the contract (fewer bytes than last time,
        // another head) gets a fresh scan: slower, never wrong.
        if self.pos == 0 || self.pos > buf.len() || self.fields != head.headers.len() {
            self.reset();
            head.headers.clear();
        }
        let result = self.scan(buf, limits, head);
        if result != Ok(false) {
            self.reset();
        }
        result
    }

    fn scan(
        &mut self,
        buf: &[u8],
        limits: &HeadLimits,
        head: &mut RequestHead,
    ) -> Result<bool, HeadError> {
        // Never look past the largest head we accept: the scan stays
        // bounded whatever the peer sends.
        let end = buf.len().min(limits.max_head_bytes);
        let b = &buf[..end];
        let mut pos = self.pos;
        // Each arm consumes bytes, moves to the next state, returns, or
        // breaks out because it needs bytes not received yet.
        loop {
            match self.state {
                State::EmptyLines => match b.get(pos) {
                    None => break,
                    Some(b'\r') => {
                        let Some(next) = after_crlf(b, pos)? else {
                            break;
                        };
                        // RFC 9112 §2.2: SHOULD ignore at least one empty line.
                        if self.empty_lines == MAX_EMPTY_LINES {
                            return Err(HeadError::TooManyEmptyLines);
                        }
                        self.empty_lines += 1;
                        pos = next;
                    }
                    Some(b'\n') => return Err(HeadError::BareLf),
                    Some(_) => {
                        self.mark = pos;
                        self.state = State::Method;
                    }
                },
                State::Method => {
                    pos = token_end(b, pos);
                    // RFC 9112 §3: "A server that receives a method longer
                    // than any that it implements SHOULD respond with a 501
                    // (Not Implemented) status code."
                    if pos - self.mark > MAX_METHOD_BYTES {
                        return Err(HeadError::MethodTooLong);
                    }
                    let Some(&delim) = b.get(pos) else { break };
                    // RFC 9112 §3: request-line = method SP request-target
                    // SP HTTP-version; method = token (RFC 9110 §9.1).
                    if delim != b' ' || pos == self.mark {
                        return Err(HeadError::InvalidMethod);
                    }
                    self.method_span = Span::new(self.mark, pos);
                    self.method = Method::from_bytes(&b[self.mark..pos]);
                    pos += 1;
                    self.mark = pos;
                    self.state = State::Target;
                }
                State::Target => {
                    // Scan one byte past the limit, so that an over-long
                    // target is refused as soon as it is, not at the end of
                    // the head (RFC 9112 §3: a server receiving a target
                    // longer than it wishes to parse MUST respond 414).
                    let stop = end
                        .min(
                            self.mark
                                .saturating_add(limits.max_uri_bytes)
                                .saturating_add(1),
                        )
                        .max(pos);
                    pos = target_end(&b[..stop], pos);
                    if pos - self.mark > limits.max_uri_bytes {
                        return Err(HeadError::UriTooLong);
                    }
                    let Some(&delim) = b.get(pos) else { break };
                    match delim {
                        // RFC 9112 §3: exactly one SP; two in a row would
                        // make an empty target.
                        b' ' if pos > self.mark => {}
                        // A line ending here is an HTTP/0.9 simple request:
                        // no version.
                        b'\r' | b'\n' if pos > self.mark => return Err(HeadError::InvalidVersion),
                        _ => return Err(HeadError::InvalidTarget),
                    }
                    check_target_form(self.method, &b[self.mark..pos])?;
                    self.target = Span::new(self.mark, pos);
                    pos += 1;
                    self.state = State::Version;
                }
                State::Version => {
                    let rest = &b[pos..];
                    // The whole line at once: what the byte checks below
                    // accept when all ten bytes are there, and nothing else.
                    if let Some(line) = rest.first_chunk::<10>() {
                        let (name, minor) = (&line[..7], line[7]);
                        if name == b"HTTP/1." && line[8..] == *b"\r\n" {
                            if let Some(version) = match minor {
                                b'1' => Some(Version::Http11),
                                b'0' => Some(Version::Http10),
                                _ => None,
                            } {
                                self.version = version;
                                pos += 10;
                                self.state = State::FieldStart;
                                continue;
                            }
                        }
                    }
                    let version = &rest[..rest.len().min(8)];
                    check_version(version)?;
                    match rest.get(8) {
                        None => break,
                        Some(b'\r') => {}
                        Some(b'\n') => return Err(HeadError::BareLf),
                        Some(_) => return Err(HeadError::InvalidVersion),
                    }
                    let Some(next) = after_crlf(b, pos + 8)? else {
                        break;
                    };
                    self.version = if version[7] == b'0' {
                        Version::Http10
                    } else {
                        Version::Http11
                    };
                    pos = next;
                    self.state = State::FieldStart;
                }
                State::FieldStart | State::Name | State::BeforeValue | State::Value => {
                    if !self.field_lines(b, &mut pos, limits, head)? {
                        break;
                    }
                    head.method = self.method;
                    head.method_span = self.method_span;
                    head.target = self.target;
                    head.version = self.version;
                    head.len = pos;
                    return Ok(true);
                }
            }
        }
        self.pos = pos;
        if buf.len() > end {
            // The head did not end within the limit, and there is more.
            return Err(HeadError::HeadTooLarge);
        }
        Ok(false)
    }

    /// Scans field lines from `pos` up to the empty line ending the head
    /// (`Ok(true)`, `pos` just after it) or to the end of the bytes
    /// (`Ok(false)`, `self.state` saying where to resume). A line received
    /// whole runs straight through its phases; a line cut short resumes at
    /// the phase it stopped in.
    fn field_lines(
        &mut self,
        b: &[u8],
        pos: &mut usize,
        limits: &HeadLimits,
        head: &mut RequestHead,
    ) -> Result<bool, HeadError> {
        let mut at = *pos;
        let mut phase = self.state;
        let resume = loop {
            if phase == State::FieldStart {
                match b.get(at) {
                    None => break State::FieldStart,
                    Some(b'\r') => {
                        let Some(next) = after_crlf(b, at)? else {
                            break State::FieldStart;
                        };
                        *pos = next;
                        return Ok(true);
                    }
                    Some(b'\n') => return Err(HeadError::BareLf),
                    Some(b' ' | b'\t') => {
                        return Err(if self.fields == 0 {
                            // RFC 9112 §2.2: whitespace between the
                            // start-line and the first field MUST be
                            // rejected or the line ignored; ignoring it
                            // hides a field another parser would see.
                            HeadError::WhitespaceBeforeFirstHeader
                        } else {
                            // RFC 9112 §5.2: a server receiving obs-fold in
                            // a request MUST reject it (400) or unfold it.
                            HeadError::ObsoleteLineFolding
                        });
                    }
                    Some(_) => {
                        if self.fields == limits.max_headers {
                            return Err(HeadError::TooManyHeaders);
                        }
                        self.mark = at;
                    }
                }
            }
            if phase <= State::Name {
                at = token_end(b, at);
                let Some(&delim) = b.get(at) else {
                    break State::Name;
                };
                match delim {
                    // RFC 9110 §5.1: field-name = token.
                    b':' if at > self.mark => {}
                    // RFC 9112 §5.1: "No whitespace is allowed between the
                    // field name and colon ... a server MUST reject ...
                    // with 400" (it was a smuggling vector).
                    b' ' | b'\t' if at > self.mark => return Err(HeadError::WhitespaceBeforeColon),
                    b'\r' | b'\n' if at > self.mark => return Err(HeadError::MissingColon),
                    _ => return Err(HeadError::InvalidHeaderName),
                }
                self.name = Span::new(self.mark, at);
                at += 1;
            }
            if phase <= State::BeforeValue {
                // RFC 9112 §5: field-line = field-name ":" OWS field-value
                // OWS; the OWS is not part of the value.
                while let Some(b' ' | b'\t') = b.get(at) {
                    at += 1;
                }
                if at == b.len() {
                    break State::BeforeValue;
                }
                self.mark = at;
            }
            at = value_end(b, at);
            let Some(&delim) = b.get(at) else {
                break State::Value;
            };
            match delim {
                b'\r' => {}
                b'\n' => return Err(HeadError::BareLf),
                // RFC 9110 §5.5: CR, LF and NUL in a value are "invalid and
                // dangerous": reject or replace by SP. We reject, and the
                // other CTLs with them.
                _ => return Err(HeadError::InvalidHeaderValue),
            }
            let Some(next) = after_crlf(b, at)? else {
                break State::Value;
            };
            let value = trim_ows(&b[self.mark..at]);
            head.headers.push(HeaderSpan {
                name: self.name,
                value: Span::new(self.mark, self.mark + value.len()),
            });
            self.fields += 1;
            at = next;
            phase = State::FieldStart;
        };
        self.state = resume;
        *pos = at;
        Ok(false)
    }
}

/// At a CR: the position after its LF, `None` while the LF has not arrived.
#[inline]
fn after_crlf(b: &[u8], cr: usize) -> Result<Option<usize>, HeadError> {
    match b.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(cr + 2)),
        // RFC 9112 §2.2: a bare CR outside a content "MUST be considered
        // invalid or replaced with SP"; we consider it invalid.
        Some(_) => Err(HeadError::LoneCr),
    }
}

/// Checks the bytes received of an HTTP-version, up to 8, refusing it at
/// its first wrong byte (so a version sent a byte at a time is refused at
/// the same byte as one sent whole).
///
/// RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, and
/// HTTP-name is case-sensitive. A well-formed version we do not speak is
/// 505 (RFC 9110 §15.6.6); a digit other than ours is already that.
fn check_version(bytes: &[u8]) -> Result<(), HeadError> {
    for (i, (&b, &want)) in bytes.iter().zip(b"HTTP/1.1").enumerate() {
        let supported = match i {
            7 => b == b'0' || b == b'1',
            _ => b == want,
        };
        if !supported {
            return Err(if (i == 5 || i == 7) && b.is_ascii_digit() {
                HeadError::UnsupportedVersion
            } else {
                HeadError::InvalidVersion
            });
        }
    }
    Ok(())
}

/// RFC 9112 §3.2: which request-target forms a method may use.
fn check_target_form(method: Method, target: &[u8]) -> Result<(), HeadError> {
    let valid = match target {
        // §3.2.3: authority-form is used only, and always, with CONNECT.
        _ if method == Method::Connect => is_authority_form(target),
        // §3.2.1: origin-form = absolute-path [ "?" query ].
        [b'/', ..] => true,
        // §3.2.4: asterisk-form is used only with OPTIONS.
        b"*" => method == Method::Options,
        // §3.2.2: absolute-form = absolute-URI, which starts with a scheme.
        // RFC 9110 §4.2.1: an "http" (or "https") URI with an empty host
        // "MUST" be rejected as invalid; §4.2.4: userinfo in one is an
        // error. Its authority is what the server uses instead of Host.
        _ => has_scheme(target) && is_absolute_authority(target),
    };
    if valid {
        Ok(())
    } else {
        Err(HeadError::InvalidTarget)
    }
}

/// The authority of an `http`/`https` absolute-form target: present,
/// with a host, no userinfo, and of Host's grammar. Other schemes are not
/// this server's to judge (they are answered by path, like any target).
fn is_absolute_authority(target: &[u8]) -> bool {
    let scheme_end = target.iter().position(|&b| b == b':').unwrap_or(0);
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return true;
    }
    match target_authority(target) {
        // Not empty, and not a port alone: the host is what comes first.
        Some(authority) => {
            !matches!(authority, [] | [b':', ..])
                && !authority.contains(&b'@')
                && is_host(authority)
        }
        None => false,
    }
}

/// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
/// followed by ":".
fn has_scheme(target: &[u8]) -> bool {
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = &target[..colon];
    matches!(scheme.first(), Some(b) if b.is_ascii_alphabetic())
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// RFC 9112 §3.2: Host = uri-host [ ":" port ], where (RFC 3986 §3.2.2)
/// uri-host = IP-literal / IPv4address / reg-name and port = *DIGIT. An
/// empty value is valid (a target without an authority). A port above
/// 65535 names no TCP port: refused as well.
pub fn is_host(value: &[u8]) -> bool {
    let (host, port) = match value {
        [b'[', ..] => match value.iter().position(|&b| b == b']') {
            Some(end) => (&value[..=end], &value[end + 1..]),
            None => return false,
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &b""[..]),
        },
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => {
            digits.iter().all(u8::is_ascii_digit)
                && (digits.len() < 5 || (digits.len() == 5 && digits <= b"65535".as_slice()))
        }
        _ => false,
    };
    port_ok && is_uri_host(host)
}

/// RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]";
/// reg-name = *( unreserved / pct-encoded / sub-delims ), which covers
/// IPv4address too. The IPv6 form is checked for its alphabet and at
/// least one colon (a zone, RFC 6874 `%25` ZoneID, may follow), IPvFuture
/// for its `v` HEXDIG "." shape.
fn is_uri_host(host: &[u8]) -> bool {
    if let [b'[', inner @ .., b']'] = host {
        return match inner {
            [b'v' | b'V', rest @ ..] => match rest.iter().position(|&b| b == b'.') {
                Some(dot) => {
                    dot > 0
                        && rest[..dot].iter().all(u8::is_ascii_hexdigit)
                        && rest.len() > dot + 1
                        && rest[dot + 1..]
                            .iter()
                            .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':')
                }
                None => false,
            },
            _ => {
                let (address, zone) = match inner.windows(3).position(|w| w == b"%25") {
                    Some(at) => (&inner[..at], Some(&inner[at + 3..])),
                    None => (inner, None),
                };
                let zone_ok =
                    zone.is_none_or(|z| !z.is_empty() && z.iter().all(|&b| is_unreserved(b)));
                address.contains(&b':')
                    && address
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                    && zone_ok
            }
        };
    }
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                // pct-encoded = "%" HEXDIG HEXDIG
                if !host
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §2.2: sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" /
/// "+" / "," / ";" / "=".
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// The authority of an absolute-form target (`scheme://authority/…`),
/// `None` for a target without one.
pub fn target_authority(target: &[u8]) -> Option<&[u8]> {
    let colon = target.iter().position(|&b| b == b':')?;
    let rest = target[colon + 1..].strip_prefix(b"//")?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// RFC 9112 §3.2.3: authority-form = uri-host ":" port, without userinfo.
fn is_authority_form(target: &[u8]) -> bool {
    let Some(colon) = target.iter().rposition(|&b| b == b':') else {
        return false;
    };
    let (host, port) = (&target[..colon], &target[colon + 1..]);
    !host.is_empty()
        && !host.iter().any(|&b| matches!(b, b'/' | b'?' | b'@'))
        && !port.is_empty()
        && port.iter().all(u8::is_ascii_digit)
}

// ---- Message body length ---------------------------------------------------

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Neither Content-Length nor Transfer-Encoding: no body.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// The chunked transfer coding (see [`crate::wire::chunked`]).
    Chunked,
}

/// RFC 9112 §6 and §3.2: the semantic checks on a parsed head that decide
/// its framing. Every ambiguity is an error: a request whose length two
/// parsers could read differently is how requests get smuggled.
pub fn request_framing(head: &RequestHead, buf: &[u8]) -> Result<BodyFraming, HeadError> {
    let mut hosts = 0;
    let mut length: Option<u64> = None;
    let mut has_transfer_encoding = false;
    for field in &head.headers {
        let name = field.name.get(buf);
        let value = field.value.get(buf);
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad
            // Request) status code to any request message that contains
            // … a Host header field with an invalid field value."
            if !is_host(trim_ows(value)) {
                return Err(HeadError::InvalidHost);
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 §8.6: Content-Length = 1*DIGIT. RFC 9112 §6.3: a
            // list of identical values ("42, 42", or the field repeated)
            // MAY be taken as that value; anything else is unrecoverable.
            for element in value.split(|&b| b == b',') {
                let n = parse_content_length(trim_ows(element))?;
                if length.is_some_and(|seen| seen != n) {
                    return Err(HeadError::ConflictingContentLength);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            has_transfer_encoding = true;
        }
    }

    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
    // code to any HTTP/1.1 request message that lacks a Host header field and
    // to any request message that contains more than one Host header field".
    if hosts > 1 {
        return Err(HeadError::DuplicateHost);
    }
    if hosts == 0 && head.version == Version::Http11 {
        return Err(HeadError::MissingHost);
    }

    if has_transfer_encoding {
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding MUST be
        // treated as having faulty framing (1.0 peers do not know chunked,
        // so a proxy in between may have forwarded it as raw bytes).
        if head.version == Version::Http10 {
            return Err(HeadError::TransferEncodingOnHttp10);
        }
        // RFC 9112 §6.1: a server MAY reject a request with both, or let
        // Transfer-Encoding win. We reject: that pair is the classic
        // smuggling request, where a front end reads the Content-Length and
        // we would read chunks, and the difference becomes a second request.
        if length.is_some() {
            return Err(HeadError::ContentLengthWithTransferEncoding);
        }
        check_transfer_codings(head, buf)?;
        return Ok(BodyFraming::Chunked);
    }
    Ok(match length {
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::Empty,
    })
}

/// RFC 9110 §8.6: 1*DIGIT, as a u64 (an overflow is not a length).
fn parse_content_length(digits: &[u8]) -> Result<u64, HeadError> {
    if digits.is_empty() {
        return Err(HeadError::InvalidContentLength);
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return Err(HeadError::InvalidContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(HeadError::InvalidContentLength)
    })
}

/// The transfer codings, read as one list across every Transfer-Encoding
/// field in order (RFC 9110 §5.3), must end in a single `chunked`, the only
/// coding we implement.
fn check_transfer_codings(head: &RequestHead, buf: &[u8]) -> Result<(), HeadError> {
    let mut chunked_seen = false;
    let mut last_is_chunked = false;
    let mut unknown = false;
    for value in head.headers_named(buf, "transfer-encoding") {
        // RFC 9110 §5.6.1: empty list elements are ignored.
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                continue;
            }
            last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                // RFC 9112 §6.1: "A sender MUST NOT apply the chunked
                // transfer coding more than once to a message body".
                if chunked_seen {
                    return Err(HeadError::ChunkedTwice);
                }
                chunked_seen = true;
            } else {
                // Anything else, `identity` and parameters included: we
                // implement no other coding.
                unknown = true;
            }
        }
    }
    // RFC 9112 §6.3: if chunked is not the final coding of a request, "the
    // server MUST respond with the 400 (Bad Request) status code and then
    // close the connection": the length cannot be known.
    if !last_is_chunked {
        return Err(HeadError::ChunkedNotLast);
    }
    // RFC 9112 §6.1: a coding the server does not understand SHOULD get
    // 501 (Not Implemented).
    if unknown {
        return Err(HeadError::UnknownTransferCoding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed head with its bytes copied out, for comparisons.
    #[derive(Debug, PartialEq, Eq)]
    struct Parsed {
        method: Method,
        method_bytes: Vec<u8>,
        target: Vec<u8>,
        version: Version,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        len: usize,
    }

    fn copy_out(head: &RequestHead, buf: &[u8]) -> Parsed {
        Parsed {
            method: head.method,
            method_bytes: head.method_span.get(buf).to_vec(),
            target: head.target.get(buf).to_vec(),
            version: head.version,
            headers: head
                .headers
                .iter()
                .map(|h| (h.name.get(buf).to_vec(), h.value.get(buf).to_vec()))
                .collect(),
            len: head.len,
        }
    }

    fn parse_with(input: &[u8], limits: &HeadLimits) -> Result<Option<Parsed>, HeadError> {
        let mut parser = HeadParser::new();
        let mut head = RequestHead::default();
        Ok(parser
            .parse(input, limits, &mut head)?
            .then(|| copy_out(&head, input)))
    }

    fn parse(input: &[u8]) -> Result<Option<Parsed>, HeadError> {
        parse_with(input, &HeadLimits::default())
    }

    /// Feeds `input` one more byte per call, as a slow client would, and
    /// checks the parser never holds back more than the 10 bytes of the
    /// version line (it resumes, it does not rescan).
    fn parse_bytewise(input: &[u8], limits: &HeadLimits) -> Result<Option<Parsed>, HeadError> {
        let mut parser = HeadParser::new();
        let mut head = RequestHead::default();
        for n in 0..=input.len() {
            if parser.parse(&input[..n], limits, &mut head)? {
                return Ok(Some(copy_out(&head, &input[..n])));
            }
            assert!(
                parser.scanned() + 10 >= n,
                "rescan ahead: {} of {n}",
                parser.scanned()
            );
        }
        Ok(None)
    }

    fn err(input: &[u8]) -> HeadError {
        match parse(input) {
            Err(e) => e,
            other => panic!(
                "{:?}: expected an error, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    fn framing(input: &[u8]) -> Result<BodyFraming, HeadError> {
        let mut head = RequestHead::default();
        assert_eq!(
            HeadParser::new().parse(input, &HeadLimits::default(), &mut head),
            Ok(true)
        );
        request_framing(&head, input)
    }

    const CURL: &[u8] = b"GET /hello.txt HTTP/1.1\r\n\
        User-Agent: curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3\r\n\
        Host: www.example.com\r\n\
        Accept-Language: en, mi\r\n\r\n";

    #[test]
    fn rfc7230_example_request() {
        let p = parse(CURL).unwrap().unwrap();
        assert_eq!(p.method, Method::Get);
        assert_eq!(p.target, b"/hello.txt");
        assert_eq!(p.version, Version::Http11);
        assert_eq!(p.len, CURL.len());
        assert_eq!(p.headers.len(), 3);
        assert_eq!(
            p.headers[1],
            (b"Host".to_vec(), b"www.example.com".to_vec())
        );
        assert_eq!(p.headers[2].1, b"en, mi");
    }

    #[test]
    fn rfc9112_request_target_forms() {
        let ok: &[&[u8]] = &[
            // §3.2.1 origin-form
            b"GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
            // §3.2.2 absolute-form
            b"GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
            // §3.2.3 authority-form
            b"CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
            // §3.2.4 asterisk-form
            b"OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n",
        ];
        for input in ok {
            assert!(
                parse(input).unwrap().is_some(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let bad: &[&[u8]] = &[
            b"GET * HTTP/1.1\r\n\r\n",
            b"CONNECT /path HTTP/1.1\r\n\r\n",
            b"CONNECT user@host:80 HTTP/1.1\r\n\r\n",
            b"CONNECT host HTTP/1.1\r\n\r\n",
            b"GET where HTTP/1.1\r\n\r\n",
            b"GET 1http://x/ HTTP/1.1\r\n\r\n",
            b"GET /a#frag HTTP/1.1\r\n\r\n",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
        ];
        for input in bad {
            assert_eq!(
                err(input),
                HeadError::InvalidTarget,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_error_variant_is_reachable() {
        use HeadError::*;
        let small = HeadLimits {
            max_head_bytes: 64,
            max_headers: 2,
            max_uri_bytes: 8,
        };
        let cases: &[(&[u8], HeadError)] = &[
            (b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", LoneCr),
            (b"\r GET / HTTP/1.1\r\n\r\n", LoneCr),
            (b"GET / HTTP/1.1\r\r\n\r\n", LoneCr),
            (b"GET / HTTP/1.1\nHost: a\n\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", BareLf),
            (b"\nGET / HTTP/1.1\r\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", BareLf),
            (
                b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                TooManyEmptyLines,
            ),
            (b"G(T / HTTP/1.1\r\n\r\n", InvalidMethod),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG / HTTP/1.1\r\n\r\n",
                MethodTooLong,
            ),
            (b" GET / HTTP/1.1\r\n\r\n", InvalidMethod),
            (b"GET\t/ HTTP/1.1\r\n\r\n", InvalidMethod),
            (b"GET /a\tb HTTP/1.1\r\n\r\n", InvalidTarget),
            (b"GET / HTTP/1.1 \r\n\r\n", InvalidVersion),
            (b"GET / http/1.1\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/1.10\r\n\r\n", InvalidVersion),
            (b"GET /\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/2.0\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/0.9\r\n\r\n", UnsupportedVersion),
            (
                b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
                WhitespaceBeforeFirstHeader,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
                ObsoleteLineFolding,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n",
                ObsoleteLineFolding,
            ),
            (b"GET / HTTP/1.1\r\nHo\x0bst: a\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\n:a\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", WhitespaceBeforeColon),
            (b"GET / HTTP/1.1\r\nHost\r\n\r\n", MissingColon),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", InvalidHeaderValue),
        ];
        for (input, want) in cases {
            assert_eq!(&err(input), want, "{}", String::from_utf8_lossy(input));
            assert_eq!(
                &parse_bytewise(input, &HeadLimits::default()).unwrap_err(),
                want
            );
        }
        let limited: &[(&[u8], HeadError)] = &[
            (b"GET /123456789 HTTP/1.1\r\n\r\n", UriTooLong),
            (
                b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                TooManyHeaders,
            ),
            (
                b"GET / HTTP/1.1\r\nA: 0123456789012345678901234567890123456789xyz\r\n\r\n",
                HeadTooLarge,
            ),
        ];
        for (input, want) in limited {
            assert_eq!(&parse_with(input, &small).unwrap_err(), want);
            assert_eq!(&parse_bytewise(input, &small).unwrap_err(), want);
        }
        let framed: &[(&[u8], HeadError)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
            (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", DuplicateHost),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                ContentLengthWithTransferEncoding,
            ),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", InvalidContentLength),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                ConflictingContentLength,
            ),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingOnHttp10),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnknownTransferCoding),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ChunkedNotLast),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", ChunkedTwice),
        ];
        for (input, want) in framed {
            assert_eq!(
                &framing(input).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn host_is_uri_host_and_an_optional_port() {
        // RFC 9112 §3.2 with RFC 3986 §3.2.2's grammar.
        for good in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"example.com:",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:443",
            b"[2001:db8::7]",
            b"[v1.fe80::a+en1]",
            b"[fe80::1%25eth0]:80",
            b"example.com.",
            b"my_host",
            b"a,b",
            b"xn--bcher-kva.example",
            b"%41bc",
            b"h:65535",
        ] {
            assert!(is_host(good), "{}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"a b"[..],
            b"a, b",
            b"x:abc",
            b"x:99999999",
            b"x:65536",
            b"@",
            b"u@x",
            b"x/y",
            b"[::1",
            b"[::1]x",
            b"[zz]",
            b"[fe80::1%25]",
            b"[fe80::1%eth0]",
            b"x\"y",
            b"%4",
            b"%zz",
            b"x:1:2",
        ] {
            assert!(!is_host(bad), "{}", String::from_utf8_lossy(bad));
        }
        let err = |input: &[u8]| framing(input).unwrap_err();
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            HeadError::InvalidHost
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: x/y\r\n\r\n"),
            HeadError::InvalidHost
        );
        assert!(framing(b"GET / HTTP/1.1\r\nHost: \r\n\r\n").is_ok());
    }

    #[test]
    fn an_http_absolute_form_target_needs_a_valid_host_and_no_userinfo() {
        // RFC 9110 §4.2.1 (an empty host MUST be rejected), §4.2.4
        // (userinfo is an error).
        for bad in [
            &b"http:///healthz"[..],
            b"http://[::1/healthz",
            b"http://x:abc/healthz",
            b"http://user@x/healthz",
            b"HTTP://:80/",
            b"http:x",
        ] {
            assert_eq!(
                check_target_form(Method::Get, bad),
                Err(HeadError::InvalidTarget),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [
            &b"http://x/healthz"[..],
            b"http://x",
            b"https://[::1]:8443/a?b",
            b"urn:example:a",
        ] {
            assert_eq!(check_target_form(Method::Get, good), Ok(()));
        }
        assert_eq!(target_authority(b"http://x:1/a"), Some(&b"x:1"[..]));
        assert_eq!(target_authority(b"http://x?q"), Some(&b"x"[..]));
        assert_eq!(target_authority(b"/a"), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(HeadError::UriTooLong.status(), 414);
        assert_eq!(HeadError::HeadTooLarge.status(), 431);
        assert_eq!(HeadError::TooManyHeaders.status(), 431);
        assert_eq!(HeadError::UnknownTransferCoding.status(), 501);
        assert_eq!(HeadError::UnsupportedVersion.status(), 505);
        assert_eq!(HeadError::ObsoleteLineFolding.status(), 400);
    }

    #[test]
    fn framing_decisions() {
        let host = "Host: a\r\n";
        let req = |fields: &str| format!("POST / HTTP/1.1\r\n{host}{fields}\r\n").into_bytes();
        assert_eq!(framing(&req("")), Ok(BodyFraming::Empty));
        assert_eq!(
            framing(&req("Content-Length: 42\r\n")),
            Ok(BodyFraming::Length(42))
        );
        assert_eq!(
            framing(&req("Content-Length: 42, 42\r\n")),
            Ok(BodyFraming::Length(42))
        );
        assert_eq!(
            framing(&req("Content-Length: 42\r\ncontent-length: 42\r\n")),
            Ok(BodyFraming::Length(42))
        );
        assert_eq!(
            framing(&req("Content-Length: 18446744073709551615\r\n")),
            Ok(BodyFraming::Length(u64::MAX))
        );
        assert_eq!(
            framing(&req("Content-Length: 18446744073709551616\r\n")),
            Err(HeadError::InvalidContentLength)
        );
        for bad in ["", "0x10", "-1", "1 2", "4,", "1.0"] {
            assert_eq!(
                framing(&req(&format!("Content-Length: {bad}\r\n"))),
                Err(HeadError::InvalidContentLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            framing(&req("Transfer-Encoding: chunked\r\n")),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(&req("Transfer-Encoding: CHUNKED\r\n")),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(&req("Transfer-Encoding: , chunked\r\n")),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(&req("Transfer-Encoding: identity\r\n")),
            Err(HeadError::ChunkedNotLast)
        );
        assert_eq!(
            framing(&req("Transfer-Encoding: \r\n")),
            Err(HeadError::ChunkedNotLast)
        );
        // Two fields are one list, in order.
        assert_eq!(
            framing(&req(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"
            )),
            Err(HeadError::ChunkedNotLast)
        );
        assert_eq!(
            framing(&req("Transfer-Encoding: chunked;q=1\r\n")),
            Err(HeadError::ChunkedNotLast)
        );
        // HTTP/1.0 needs no Host.
        assert_eq!(framing(b"GET / HTTP/1.0\r\n\r\n"), Ok(BodyFraming::Empty));
    }

    #[test]
    fn values_are_trimmed_and_may_be_empty() {
        let p = parse(b"GET / HTTP/1.1\r\nA:\t x y \t\r\nB:\r\nC:   \r\nD:\xff\r\n\r\n")
            .unwrap()
            .unwrap();
        let values: Vec<&[u8]> = p.headers.iter().map(|h| h.1.as_slice()).collect();
        assert_eq!(values, [&b"x y"[..], b"", b"", b"\xff"]);
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_counted() {
        let input = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        let p = parse(input).unwrap().unwrap();
        assert_eq!(p.len, input.len() - 4);
        assert_eq!(p.target, b"/");
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        for n in 0..CURL.len() {
            assert_eq!(parse(&CURL[..n]), Ok(None), "{n}");
        }
        // A wrong version is refused from its first wrong byte.
        assert_eq!(parse(b"GET / X"), Err(HeadError::InvalidVersion));
        assert_eq!(parse(b"GET / HTTP/1."), Ok(None));
    }

    #[test]
    fn whole_and_bytewise_agree() {
        let inputs: &[&[u8]] = &[
            CURL,
            b"\r\nPOST /topics/a?event=x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Long: 01234567890123456789012345678901234567890123456789\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: \tb\t\r\n\r\n",
        ];
        for input in inputs {
            let limits = HeadLimits::default();
            assert_eq!(parse(input), parse_bytewise(input, &limits));
        }
    }

    #[test]
    fn byte_by_byte_costs_linear_time() {
        // A 16 KiB head sent one byte per read: each call examines only
        // the new byte (and at most the 10-byte version line again).
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat_n(b'a', 8000));
        input.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\nX: ");
        input.extend(std::iter::repeat_n(b'v', 8000));
        input.extend_from_slice(b"\r\n\r\n");
        let limits = HeadLimits {
            max_head_bytes: 20_000,
            ..HeadLimits::default()
        };
        let p = parse_bytewise(&input, &limits).unwrap().unwrap();
        assert_eq!(p.len, input.len());
        assert_eq!(p.headers[1].1.len(), 8000);
    }

    #[test]
    fn uri_too_long_before_the_head_ends() {
        let limits = HeadLimits {
            max_uri_bytes: 16,
            ..HeadLimits::default()
        };
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat_n(b'a', 15));
        assert_eq!(parse_with(&input, &limits), Ok(None));
        input.push(b'a');
        assert_eq!(parse_with(&input, &limits), Err(HeadError::UriTooLong));
        // Exactly at the limit is fine.
        let ok = b"GET /aaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";
        assert!(parse_with(ok, &limits).unwrap().is_some());
    }

    #[test]
    fn head_limit_is_inclusive() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let exact = HeadLimits {
            max_head_bytes: input.len(),
            ..HeadLimits::default()
        };
        assert!(parse_with(input, &exact).unwrap().is_some());
        let short = HeadLimits {
            max_head_bytes: input.len() - 1,
            ..HeadLimits::default()
        };
        assert_eq!(parse_with(input, &short), Err(HeadError::HeadTooLarge));
        assert_eq!(parse_with(&input[..input.len() - 1], &short), Ok(None));
    }

    #[test]
    fn headers_vec_is_reused_and_parser_resets() {
        let mut parser = HeadParser::new();
        let mut head = RequestHead::default();
        let limits = HeadLimits::default();
        assert_eq!(parser.parse(CURL, &limits, &mut head), Ok(true));
        let capacity = head.headers.capacity();
        let ptr = head.headers.as_ptr();
        let second = b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
        assert_eq!(parser.parse(second, &limits, &mut head), Ok(true));
        assert_eq!(head.headers.len(), 1);
        assert_eq!(
            (head.headers.capacity(), head.headers.as_ptr()),
            (capacity, ptr)
        );
        assert_eq!(head.target(second), "/b");
        // After an error, the next request parses from scratch.
        assert!(parser.parse(b"GET / HTTP/x", &limits, &mut head).is_err());
        assert_eq!(parser.parse(second, &limits, &mut head), Ok(true));
    }

    #[test]
    fn pipelined_bytes_are_not_part_of_the_head() {
        let input = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n";
        let p = parse(input).unwrap().unwrap();
        assert_eq!(&input[p.len..], b"GET /b HTTP/1.1\r\n");
    }

    #[test]
    fn field_content_len_matches_the_table() {
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut bytes = vec![b'x'; 20];
                bytes[at] = b;
                let want = if is_field_content(b) { 20 } else { at };
                assert_eq!(field_content_len(&bytes), want, "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn word_scans_match_the_table() {
        // Every byte at every offset of a buffer longer than one 32-byte
        // block: the word arithmetic must stop exactly where the table does.
        for b in 0..=255u8 {
            for at in 0..70 {
                let mut bytes = vec![b'x'; 70];
                bytes[at] = b;
                let want = |class| {
                    if CLASS[b as usize] & class != 0 {
                        70
                    } else {
                        at
                    }
                };
                assert_eq!(
                    value_end_words(&bytes, 0),
                    want(FIELD_CONTENT),
                    "value {b:#x} at {at}"
                );
                assert_eq!(
                    target_end_words(&bytes, 0),
                    want(TARGET),
                    "target {b:#x} at {at}"
                );
                assert_eq!(run(&bytes, TCHAR), want(TCHAR), "token {b:#x} at {at}");
            }
        }
    }

    /// The plain byte-table scan every faster one must agree with.
    fn table_end(b: &[u8], from: usize, class: u8) -> usize {
        b[from..]
            .iter()
            .position(|&c| CLASS[c as usize] & class == 0)
            .map_or(b.len(), |n| from + n)
    }

    #[test]
    fn block_scans_match_the_table_at_every_offset_and_length() {
        // Buffers of every length up to three 16-byte blocks, scans from
        // every offset, one byte of every value at every position after
        // it. The bytes before `from` are NUL, outside every class: a scan
        // that looked behind its start (the reloaded last block) would stop
        // there. A second byte of the same value further on checks that a
        // stepped-over token byte does not end the scan.
        for len in 0..=48 {
            for from in 0..=len {
                let mut clean = vec![0u8; from];
                clean.resize(len, b'x');
                let mut bytes = clean.clone();
                for b in 0..=255u8 {
                    for at in from..=len {
                        bytes.copy_from_slice(&clean);
                        if at < len {
                            bytes[at] = b;
                        }
                        if at + 3 < len {
                            bytes[at + 3] = b;
                        }
                        let want = |class| table_end(&bytes, from, class);
                        let case = || format!("{b:#x} at {at} of {len} from {from}");
                        assert_eq!(
                            value_end(&bytes, from),
                            want(FIELD_CONTENT),
                            "value {}",
                            case()
                        );
                        assert_eq!(target_end(&bytes, from), want(TARGET), "target {}", case());
                        assert_eq!(token_end(&bytes, from), want(TCHAR), "token {}", case());
                    }
                }
            }
        }
    }

    #[test]
    fn block_scans_match_the_table_on_mixed_runs() {
        // Runs of real header bytes with the rarer class members (HTAB in a
        // value, "_" and "." in a name, obs-text) at every alignment.
        let pieces: &[&[u8]] = &[
            b"abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            b"Sec_Fetch.Site!#$%&'*+^`|~",
            b"text/html; q=0.9,\t\xc3\xa9 \"quoted\" (comment) [x] {y} <z>",
            b"/path/to?q=1&r=%20;x=@:~",
        ];
        for piece in pieces {
            for stop in [b'\r', b':', b' ', 0x7f, 0, b'#'] {
                for pad in 0..40 {
                    let mut bytes = vec![b'a'; pad];
                    bytes.extend_from_slice(piece);
                    bytes.push(stop);
                    bytes.extend_from_slice(b"\r\n\r\n");
                    for from in 0..bytes.len() {
                        for class in [FIELD_CONTENT, TARGET, TCHAR] {
                            let got = match class {
                                FIELD_CONTENT => value_end(&bytes, from),
                                TARGET => target_end(&bytes, from),
                                _ => token_end(&bytes, from),
                            };
                            assert_eq!(got, table_end(&bytes, from, class), "{class} {pad} {from}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn accessors() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n";
        let mut head = RequestHead::default();
        HeadParser::new()
            .parse(input, &HeadLimits::default(), &mut head)
            .unwrap();
        assert_eq!(head.header(input, "host"), Some(&b"a"[..]));
        assert!(head.has_token(input, "connection", "upgrade"));
        assert!(!head.has_token(input, "connection", "close"));
    }
}

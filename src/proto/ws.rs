//! The WebSocket session, for either end (RFC 6455 §5-§7), sans-IO.
//!
//! Before working on this file, read RFC 6455 §5.1 and §5.3 (who masks),
//! §5.4 (fragmentation), §5.5 (control frames), §5.6 (data frames), §7
//! (closing the connection, and §7.4 for the status codes) and §8.1
//! (UTF-8 in text messages); then `wire/ws_frame.rs`, which this file
//! builds on, and, for compressed messages, RFC 7692 §6 and
//! `proto/ws_deflate.rs`.
//!
//! One set of rules serves both ends: a session has a [`Role`]. The
//! server requires masked frames and sends unmasked ones; the client the
//! reverse, with a fresh key from the operating system for every frame.
//!
//! # Driving a session
//!
//! The server calls, in any order and as often as things happen:
//!
//! - [`handle_read`](WsSession::handle_read) with the bytes read so far.
//!   It returns how many it consumed; the caller keeps the rest and passes
//!   them again, with more appended, on the next read. Complete messages
//!   come out through a callback, replies (pongs, the close echo) go to a
//!   [`Transmit`].
//! - [`send`](WsSession::send) and [`close`](WsSession::close) to talk.
//! - [`handle_eof`](WsSession::handle_eof) when the peer closed TCP.
//! - [`poll_timeout`](WsSession::poll_timeout) for when to wake it next,
//!   and [`handle_timeout`](WsSession::handle_timeout) when that time came.
//!
//! and after each of them checks
//! [`wants_close_transport`](WsSession::wants_close_transport): once true,
//! it flushes what is queued and closes the connection.
//!
//! # How bytes flow
//!
//! A message that arrives whole, in one frame, is unmasked in place in the
//! caller's buffer and handed to the callback from there: no copy. Any
//! other message (fragmented, or one frame split across reads) is streamed:
//! each piece of payload is unmasked and UTF-8-checked as soon as it
//! arrives and appended to a reassembly buffer that exists only while the
//! message does. So the caller never has to hold more than one frame
//! header, or one control frame (at most 139 bytes), of unconsumed input,
//! and an invalid text message fails the moment the impossible byte
//! arrives, not when the message ends.
//!
//! A compressed message (RSV1 on its first frame, permessage-deflate
//! negotiated) is inflated piece by piece as it arrives, into the same
//! reassembly buffer, in bounded steps: it fails with 1009 the moment its
//! inflated size passes the limit, however small its compressed form.

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::proto::ws_deflate::{with_deflated, InflateError, Inflater, RSV1};
use crate::wire::rand;
use crate::wire::ws_extensions::DeflateParams;
use crate::wire::ws_frame::{
    apply_mask, header_bytes, server_header, FrameError, FrameHeader, Opcode, MAX_CONTROL_PAYLOAD,
};

/// Which end of the connection a session is (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Sends masked frames, receives unmasked ones.
    Client,
}

/// permessage-deflate as agreed in the handshake, and how we use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsDeflate {
    pub params: DeflateParams,
    /// zlib level (0-9) for the messages this session compresses itself,
    /// each for this connection alone (`Config::ws_deflate_level`); a
    /// topic's messages are compressed once for all subscribers, at
    /// `Config::ws_deflate_fanout_level`, and never come through here.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear):
    /// for a few bytes, deflate costs more than it saves.
    pub threshold: u32,
}

impl WsDeflate {
    /// The agreed `params` with the level and threshold of `c`.
    pub fn from_config(params: DeflateParams, c: &crate::Config) -> Self {
        WsDeflate {
            params,
            level: c.ws_deflate_level.min(9) as u8,
            threshold: u32::try_from(c.ws_deflate_threshold).unwrap_or(u32::MAX),
        }
    }
}

/// The limits a session enforces (copied from [`crate::Config`]).
#[derive(Clone, Debug)]
pub struct WsLimits {
    /// Largest frame payload. Over it: close 1009.
    pub max_frame_bytes: u64,
    /// Largest message (all its fragments). Over it: close 1009.
    pub max_message_bytes: usize,
    /// Most frames in one message. Over it: close 1009.
    pub max_fragments: usize,
    /// Time the peer has to answer our close frame.
    pub close_timeout: Duration,
    /// Time without input after which we send a ping.
    pub ping_interval: Duration,
    /// Time after that ping within which some input must arrive.
    pub pong_timeout: Duration,
}

impl WsLimits {
    pub fn from_config(c: &crate::Config) -> Self {
        WsLimits {
            max_frame_bytes: c.ws_max_frame_bytes,
            max_message_bytes: c.ws_max_message_bytes,
            max_fragments: c.ws_max_fragments,
            close_timeout: c.ws_close_timeout,
            ping_interval: c.ws_ping_interval,
            pong_timeout: c.ws_pong_timeout,
        }
    }
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits::from_config(&crate::Config::default())
    }
}

/// Where a session writes frames: a header (at most 10 bytes, server
/// frames being unmasked) and its payload. The server implements it over
/// its outbound queue, so that a large payload can go out in a vectored
/// write instead of being copied behind its header.
pub trait Transmit {
    fn push_frame(&mut self, header: &[u8], payload: &[u8]);
}

/// Appends header and payload (tests, fuzzing, simple servers).
impl Transmit for Vec<u8> {
    fn push_frame(&mut self, header: &[u8], payload: &[u8]) {
        self.reserve(header.len() + payload.len());
        self.extend_from_slice(header);
        self.extend_from_slice(payload);
    }
}

/// The two kinds of data message (RFC 6455 §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text; a session only ever delivers valid UTF-8.
    Text,
    Binary,
}

impl MessageKind {
    pub fn opcode(self) -> Opcode {
        match self {
            MessageKind::Text => Opcode::Text,
            MessageKind::Binary => Opcode::Binary,
        }
    }
}

/// Writes one whole data message as a single unfragmented server frame,
/// uncompressed. A session's [`MessageWriter`] is the same with the
/// session's role and compression.
#[inline]
pub fn write_message<T: Transmit>(out: &mut T, kind: MessageKind, payload: &[u8]) {
    let (header, n) = server_header(true, kind.opcode(), payload.len());
    out.push_frame(&header[..n], payload);
}

/// How a session writes data messages: its role (masking) and its
/// compression. A copy of it (from [`WsSession::writer`]) lets a message
/// callback, which cannot reach the session while it is reading, answer
/// exactly as [`WsSession::send`] would — `/echo` does.
///
/// Compression needs no state of its own: every answer we give declares
/// `server_no_context_takeover`, and a client's compressor is reset after
/// each message too (a peer that keeps its inflate context decodes
/// independent messages all the same).
#[derive(Clone, Copy, Debug)]
pub struct MessageWriter {
    role: Role,
    deflate: Option<WsDeflate>,
}

impl MessageWriter {
    /// Writes one whole message in one frame: compressed when deflate was
    /// agreed and the message is at least the threshold long, masked with
    /// a fresh key when we are the client.
    pub fn send<T: Transmit>(&self, out: &mut T, kind: MessageKind, payload: &[u8]) {
        if let Some(bits) = self.compress_bits(payload.len()) {
            let Some(d) = self.deflate else { return };
            // RFC 7692 §6: RSV1 on the first (here: only) frame.
            with_deflated(&[payload], u32::from(d.level), bits, |deflated| {
                write_frame(self.role, out, RSV1, kind.opcode(), deflated)
            });
        } else {
            write_frame(self.role, out, 0, kind.opcode(), payload);
        }
    }

    /// The window to compress a message of `len` bytes with, or None to
    /// send it as it is.
    fn compress_bits(&self, len: usize) -> Option<u8> {
        let d = self.deflate?;
        if (len as u64) < u64::from(d.threshold) {
            return None;
        }
        let bits = match self.role {
            Role::Server => d.params.server_max_window_bits,
            Role::Client => d.params.client_max_window_bits,
        };
        // A window of 8 bits zlib cannot compress with (the server
        // declines such offers; a client told 8 sends uncompressed, which
        // RFC 7692 §6 always allows).
        (bits >= crate::wire::ws_extensions::MIN_COMPRESS_WINDOW_BITS).then_some(bits)
    }
}

/// Writes one unfragmented frame as `role` does: a client masks the
/// payload (a copy) with a fresh key, RFC 6455 §5.3.
fn write_frame<T: Transmit>(role: Role, out: &mut T, rsv: u8, opcode: Opcode, payload: &[u8]) {
    match role {
        Role::Server => {
            let (header, n) = header_bytes(&FrameHeader {
                fin: true,
                rsv,
                opcode,
                mask: None,
                payload_len: payload.len() as u64,
            });
            out.push_frame(&header[..n], payload);
        }
        Role::Client => {
            // RFC 6455 §5.3: "The masking key needs to be unpredictable;
            // thus, the masking key MUST be derived from a strong source of
            // entropy", new for each frame.
            let key = rand::bytes::<4>();
            let (header, n) = header_bytes(&FrameHeader {
                fin: true,
                rsv,
                opcode,
                mask: Some(key),
                payload_len: payload.len() as u64,
            });
            let mut masked = payload.to_vec();
            apply_mask(&mut masked, key, 0);
            out.push_frame(&header[..n], &masked);
        }
    }
}

/// A peer's violation of the protocol, named after the rule it broke.
/// [`close_code`](WsError::close_code) is the status the connection is
/// failed with; the `Display` text is the close reason sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum WsError {
    /// Framing no peer may send (bad length encodings).
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("reserved bits set without an extension")]
    ReservedBitsSet,
    #[error("reserved opcode")]
    ReservedOpcode(u8),
    #[error("unmasked frame from client")]
    UnmaskedFrameFromClient,
    #[error("masked frame from server")]
    MaskedFrameFromServer,
    #[error("compressed control frame")]
    CompressedControlFrame,
    #[error("compressed bit on a continuation frame")]
    CompressedContinuation,
    #[error("invalid compressed data")]
    InvalidCompressedData,
    #[error("control frame payload over 125 bytes")]
    ControlFrameTooBig,
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    #[error("continuation frame without a message")]
    ContinuationWithoutMessage,
    #[error("new message before the previous one ended")]
    MessageStartedInsideMessage,
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    #[error("close frame with a 1-byte payload")]
    CloseFrameTooShort,
    #[error("invalid close code")]
    InvalidCloseCode(u16),
    #[error("close reason is not UTF-8")]
    CloseReasonNotUtf8,
    #[error("frame too big")]
    FrameTooBig,
    #[error("message too big")]
    MessageTooBig,
    #[error("too many fragments")]
    TooManyFragments,
}

impl WsError {
    /// RFC 6455 §7.4.1: 1002 protocol error, 1007 data inconsistent with
    /// the message type, 1009 message too big to process.
    pub fn close_code(&self) -> u16 {
        match self {
            // RFC 7692 names no code for a payload that does not inflate;
            // the message's data is "not consistent with the type of the
            // message" (RFC 6455 §7.4.1), the type saying it is DEFLATE.
            WsError::InvalidUtf8 | WsError::CloseReasonNotUtf8 | WsError::InvalidCompressedData => {
                1007
            }
            WsError::FrameTooBig | WsError::MessageTooBig | WsError::TooManyFragments => 1009,
            _ => 1002,
        }
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 §7.4).
///
/// §7.4.1 defines 1000-1003 and 1007-1011 for use on the wire; 1004 is
/// reserved, and 1005, 1006 and 1015 "MUST NOT be set as a status code in
/// a Close control frame by an endpoint" (they exist only to report the
/// absence of a frame or a TLS failure). Below 1000 is unused (§7.4.2);
/// 1000-2999 is for the protocol and "extensions specified in a permanent
/// and readily available public specification": of it, besides §7.4.1's
/// own, the IANA WebSocket Close Code Number Registry (§11.7) holds 1012
/// (Service Restart), 1013 (Try Again Later) and 1014 (Bad Gateway), which
/// this server sends itself and a gateway between may send either way;
/// the rest is unassigned. 3000-4999 belong to libraries, frameworks and
/// applications and are passed through.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Incremental UTF-8 validation (RFC 3629 §4), fed in arbitrary pieces.
///
/// RFC 3629 §4's table of well-formed sequences comes down to this: the
/// lead byte says how long the character is and which range its *second*
/// byte must fall in — narrower than 80..BF after E0 (no overlong 3-byte
/// forms), ED (no surrogates), F0 (no overlong 4-byte forms) and F4
/// (nothing past U+10FFFF) — and every later byte is 80..BF. So the whole
/// state between two pieces of input is: how many continuation bytes are
/// still due, and the range the next one must be in. A byte outside it
/// fails at once — the earliest moment the text is known not to be UTF-8
/// — and the validator stays failed.
///
/// Within a piece, ASCII (the common case) is skipped 16 bytes at a time
/// and a character that is wholly present is checked in one go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Continuation bytes still due; [`INVALID`] once failed.
    due: u8,
    /// The range the next continuation byte must fall in.
    lo: u8,
    hi: u8,
}

/// `due` of a failed validator.
const INVALID: u8 = u8::MAX;

impl Default for Utf8Validator {
    fn default() -> Self {
        Utf8Validator {
            due: 0,
            lo: 0x80,
            hi: 0xBF,
        }
    }
}

/// RFC 3629 §4: for a lead byte, the number of continuation bytes and the
/// range of the first of them. None for bytes that never start a
/// character: continuation bytes, C0 and C1 (overlong 2-byte forms), and
/// F5..FF (past U+10FFFF).
#[inline(always)]
fn lead(b: u8) -> Option<(u8, u8, u8)> {
    Some(match b {
        0xC2..=0xDF => (1, 0x80, 0xBF),
        0xE0 => (2, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
        0xED => (2, 0x80, 0x9F),
        0xF0 => (3, 0x90, 0xBF),
        0xF1..=0xF3 => (3, 0x80, 0xBF),
        0xF4 => (3, 0x80, 0x8F),
        _ => return None,
    })
}

/// The high bit of every byte of a word: set only in non-ASCII bytes.
const ASCII_MASK: u64 = 0x8080_8080_8080_8080;

/// The non-ASCII bits of 8 bytes.
#[inline(always)]
fn non_ascii(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_ne_bytes(w) & ASCII_MASK
}

impl Utf8Validator {
    pub fn new() -> Self {
        Utf8Validator::default()
    }

    /// Feeds the next bytes; false once the input can no longer be UTF-8
    /// (whatever follows).
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.due == INVALID {
            return false;
        }
        let mut i = 0;
        // The end of a character begun in an earlier piece.
        if self.due > 0 {
            let n = bytes.len().min(usize::from(self.due));
            if !self.continue_with(&bytes[..n]) {
                return false;
            }
            i = n;
        }
        while i < bytes.len() {
            // ASCII: 16 bytes at a time, then byte by byte.
            while let Some(block) = bytes.get(i..i + 16) {
                if non_ascii(&block[..8]) | non_ascii(&block[8..]) != 0 {
                    break;
                }
                i += 16;
            }
            while i < bytes.len() && bytes[i] < 0x80 {
                i += 1;
            }
            let Some(&b) = bytes.get(i) else {
                break;
            };
            let Some((due, lo, hi)) = lead(b) else {
                self.due = INVALID;
                return false;
            };
            let cont = |c: u8| c & 0xC0 == 0x80;
            let second_ok = |c: u8| (lo..=hi).contains(&c);
            // The whole character is here: check it in one go.
            let whole = match (due, bytes.get(i + 1..)) {
                (1, Some(&[c1, ..])) => Some(second_ok(c1)),
                (2, Some(&[c1, c2, ..])) => Some(second_ok(c1) && cont(c2)),
                (3, Some(&[c1, c2, c3, ..])) => Some(second_ok(c1) && cont(c2) && cont(c3)),
                _ => None,
            };
            match whole {
                Some(true) => i += 1 + usize::from(due),
                Some(false) => {
                    self.due = INVALID;
                    return false;
                }
                // It continues in the next piece.
                None => {
                    *self = Utf8Validator { due, lo, hi };
                    return self.continue_with(&bytes[i + 1..]);
                }
            }
        }
        true
    }

    /// Checks continuation bytes (no more than are due).
    #[inline(always)]
    fn continue_with(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if b < self.lo || b > self.hi {
                self.due = INVALID;
                return false;
            }
            self.due -= 1;
            (self.lo, self.hi) = (0x80, 0xBF);
        }
        true
    }

    /// True if everything fed so far is whole, valid UTF-8: the check at
    /// the end of a message (§8.1: a message that ends inside a character
    /// is invalid too).
    pub fn is_complete(&self) -> bool {
        self.due == 0
    }

    /// False once an impossible sequence has been fed.
    pub fn is_valid_so_far(&self) -> bool {
        self.due != INVALID
    }
}

/// Whole-slice validation with [`Utf8Validator`].
pub fn is_utf8(bytes: &[u8]) -> bool {
    let mut v = Utf8Validator::new();
    v.feed(bytes) && v.is_complete()
}

/// Where the closing handshake stands (RFC 6455 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's, until `deadline`
    /// (None: a timeout too large to represent, i.e. never).
    Closing { deadline: Option<Instant> },
    /// Nothing more to read or send: the transport should close.
    Closed,
}

/// The data frame whose payload is being read.
#[derive(Clone, Copy, Debug)]
struct PayloadInProgress {
    /// Payload bytes not yet read.
    remaining: u64,
    /// The masking key, rotated to the next byte's position.
    key: [u8; 4],
    /// The frame ends its message.
    fin: bool,
}

/// Lines kept when the server does not drain the trace.
const MAX_TRACE_LINES: usize = 1024;

/// A WebSocket connection after the handshake, either end.
pub struct WsSession {
    limits: WsLimits,
    role: Role,
    state: State,
    /// Set between a data frame's header and the end of its payload.
    payload: Option<PayloadInProgress>,
    /// The kind of the fragmented (or streamed) message being assembled.
    message: Option<MessageKind>,
    /// Frames of `message` so far.
    fragments: usize,
    /// Payload of `message` so far (inflated, if it is compressed);
    /// unallocated between messages.
    assembly: Vec<u8>,
    /// Payload bytes of `message` as they came over the wire: the message
    /// limit applies to them as well as to what they inflate to.
    wire_len: u64,
    /// `message` had RSV1 on its first frame (RFC 7692 §6).
    compressed: bool,
    /// The agreed compression, if any.
    deflate: Option<WsDeflate>,
    /// Inflate state: created when a compressed message starts, dropped
    /// after it unless the peer keeps its LZ77 context.
    inflater: Option<Box<Inflater>>,
    utf8: Utf8Validator,
    /// The rule the peer broke, once the session failed.
    error: Option<WsError>,
    /// The reason in the peer's close frame (kept for a client only: a
    /// server has no one to tell).
    peer_reason: Option<Box<str>>,
    last_input: Instant,
    /// When our keep-alive ping went out, if it is unanswered.
    ping_sent: Option<Instant>,
    close_code: Option<u16>,
    /// One line per frame in and out, when tracing is on (boxed: every
    /// idle WebSocket carries this field, few ever trace).
    #[allow(clippy::box_collection)]
    trace: Option<Box<Vec<String>>>,
    /// A rule broken by the peer is held, not acted on, until
    /// [`fail_held`](WsSession::fail_held) (see [`hold_failures`](WsSession::hold_failures)).
    hold: bool,
    /// With `hold`: the peer's close frame arrived, and our answer (its
    /// code echoed, `None` for a frame without one) waits until the
    /// messages before it have been answered.
    held_close: Option<Option<u16>>,
    /// [`step_messages`](WsSession::step_messages) is on.
    step: bool,
    /// A message was delivered in the current step.
    delivered: bool,
    /// The last [`handle_read`](WsSession::handle_read) stopped after a
    /// message, with input left.
    paused: bool,
}

/// What one step of reading did.
enum Step {
    /// Not enough input for the next step.
    NeedMore,
    /// Consumed this many bytes (0 only when a frame ended with no more
    /// payload to read: progress all the same).
    Consumed(usize),
}

impl WsSession {
    /// A server session without extensions.
    pub fn new(limits: WsLimits, now: Instant) -> Self {
        WsSession::with_role(Role::Server, limits, now)
    }

    /// A session for `role`, without extensions (see
    /// [`set_deflate`](Self::set_deflate)).
    pub fn with_role(role: Role, limits: WsLimits, now: Instant) -> Self {
        WsSession {
            limits,
            role,
            state: State::Open,
            payload: None,
            message: None,
            fragments: 0,
            assembly: Vec::new(),
            wire_len: 0,
            compressed: false,
            deflate: None,
            inflater: None,
            utf8: Utf8Validator::new(),
            error: None,
            peer_reason: None,
            last_input: now,
            ping_sent: None,
            close_code: None,
            trace: None,
            hold: false,
            held_close: None,
            step: false,
            delivered: false,
            paused: false,
        }
    }

    /// While on, [`handle_read`](Self::handle_read) stops after each
    /// message that more input follows, and [`paused`](Self::paused) says
    /// so: its driver acts on the message (a publish fanned out to every
    /// subscriber, the sender included; an ack) before the next frame is
    /// read. What the peer receives then does not depend on how its bytes
    /// were split into reads: a ping after a publish is answered after the
    /// publish's own copy, whether the two came together or apart.
    pub fn step_messages(&mut self, on: bool) {
        self.step = on;
    }

    /// The last read stopped after a message, with input left to read.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// From now on, a protocol error found by [`handle_read`](Self::handle_read)
    /// stops the reading but is not acted on there: the messages before it
    /// in the same input are answered first, by whoever drives the session,
    /// and then [`fail_held`](Self::fail_held) closes. So what the peer
    /// gets does not depend on how its bytes were split into reads (a
    /// message and a broken frame in one read are answered as if they had
    /// come in two).
    ///
    /// The peer's close frame is held the same way: the messages before it
    /// get their answers (an ack, the sender's own copy of what it
    /// published) before our close frame answers it, as RFC 6455 §5.5.1
    /// allows ("An endpoint MAY delay sending a Close frame until its
    /// current message is sent"); nothing after it is read.
    pub fn hold_failures(&mut self) {
        self.hold = true;
    }

    /// Whether a protocol error, or the peer's close, is held. (An error
    /// is recorded without closing only when held; the driver may have
    /// started its own close since, for a message before it.)
    pub fn has_held_failure(&self) -> bool {
        self.state != State::Closed && (self.error.is_some() || self.held_close.is_some())
    }

    /// Acts on what is held: a protocol error gets the close frame with
    /// its code (RFC 6455 §7.1.7), the peer's close frame its answer; the
    /// session is closed either way. Whether anything was held.
    ///
    /// A protocol error held while the driver closed for a message before
    /// it ends the closing handshake at once, as it would had it arrived
    /// in a later read (RFC 6455 §7.1.7: no second close frame).
    pub fn fail_held<T: Transmit>(&mut self, out: &mut T) -> bool {
        if self.state == State::Closed {
            return false;
        }
        if let Some(code) = self.held_close.take() {
            self.answer_close(code, out);
            return true;
        }
        match self.error {
            Some(e) => {
                self.fail(e, out);
                true
            }
            None => false,
        }
    }

    /// Turns permessage-deflate on (as the handshake agreed) before the
    /// first frame; None turns it off.
    pub fn set_deflate(&mut self, deflate: Option<WsDeflate>) {
        self.deflate = deflate;
    }

    /// The agreed compression, if any.
    pub fn deflate(&self) -> Option<WsDeflate> {
        self.deflate
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// How this session writes messages, for a callback to use.
    pub fn writer(&self) -> MessageWriter {
        MessageWriter {
            role: self.role,
            deflate: self.deflate,
        }
    }

    /// The rule the peer broke, if the session failed the connection.
    pub fn error(&self) -> Option<WsError> {
        self.error
    }

    /// The reason the peer gave in its close frame (client sessions).
    pub fn peer_close_reason(&self) -> Option<&str> {
        self.peer_reason.as_deref()
    }

    /// Reads frames from `input`, the bytes received so far, and returns
    /// how many it consumed; the caller keeps the rest and passes them
    /// again with more appended. Payloads are unmasked in place.
    ///
    /// Each complete message goes to `on_message` (text is valid UTF-8);
    /// pongs and the close echo go to `out`. On a protocol violation the
    /// connection is failed: a close frame with the code of the broken rule
    /// is written, and all further input is consumed and ignored.
    pub fn handle_read<T: Transmit>(
        &mut self,
        input: &mut [u8],
        now: Instant,
        out: &mut T,
        on_message: &mut dyn FnMut(MessageKind, &[u8], &mut T),
    ) -> usize {
        self.paused = false;
        self.delivered = false;
        if self.state == State::Closed || self.has_held_failure() {
            return input.len();
        }
        if !input.is_empty() {
            // Any input proves the peer alive: it answers our ping as
            // well as a pong would.
            self.last_input = now;
            self.ping_sent = None;
        }
        let mut pos = 0;
        while self.state != State::Closed {
            let rest = &mut input[pos..];
            let step = if self.payload.is_some() {
                self.read_payload(rest, out, on_message)
            } else {
                self.read_frame(rest, out, on_message)
            };
            match step {
                Ok(Step::NeedMore) => return pos,
                // The peer's close, held: nothing after it is ever read.
                Ok(Step::Consumed(_)) if self.held_close.is_some() => return input.len(),
                Ok(Step::Consumed(n)) => {
                    pos += n;
                    if std::mem::take(&mut self.delivered) && self.step && pos < input.len() {
                        self.paused = true;
                        return pos;
                    }
                }
                Err(e) if self.hold && self.state == State::Open => {
                    self.trace_line(|| format!("!! {e} (held)"));
                    self.error = Some(e);
                    self.drop_message();
                    // Nothing after a broken frame is ever read.
                    return input.len();
                }
                Err(e) => self.fail(e, out),
            }
        }
        // Closed: what is left will never be read.
        input.len()
    }

    /// Reads one frame header and, for control frames and whole
    /// single-frame messages, the payload too.
    fn read_frame<T: Transmit>(
        &mut self,
        input: &mut [u8],
        out: &mut T,
        on_message: &mut dyn FnMut(MessageKind, &[u8], &mut T),
    ) -> Result<Step, WsError> {
        let Some((h, hlen)) = FrameHeader::parse(input)? else {
            return Ok(Step::NeedMore);
        };
        self.check_header(&h)?;
        // check_header proved the frame masked (server) or not (client:
        // the zero key leaves the payload as it is).
        let key = h.mask.unwrap_or_default();
        let avail = input.len() - hlen;

        if h.opcode.is_control() {
            // ≤ 125 bytes (checked): wait for all of it, it is small.
            let len = h.payload_len as usize;
            let Some(payload) = input.get_mut(hlen..hlen + len) else {
                return Ok(Step::NeedMore);
            };
            apply_mask(payload, key, 0);
            self.trace_frame("<-", &h, payload);
            self.on_control(h.opcode, payload, out)?;
            return Ok(Step::Consumed(hlen + len));
        }

        if h.opcode == Opcode::Continuation {
            self.fragments += 1;
            self.wire_len += h.payload_len;
        } else {
            let kind = match h.opcode {
                Opcode::Text => MessageKind::Text,
                _ => MessageKind::Binary,
            };
            let compressed = h.rsv & RSV1 != 0;
            // The common case: a whole message in one frame, all of it
            // here. Unmask it in place and deliver it from the caller's
            // buffer.
            if h.fin && h.payload_len <= avail as u64 && !compressed {
                let len = h.payload_len as usize;
                let payload = &mut input[hlen..hlen + len];
                apply_mask(payload, key, 0);
                self.trace_frame("<-", &h, payload);
                // RFC 6455 §8.1: text must be valid UTF-8, else §7.1.7
                // "_Fail the WebSocket Connection_" (1007, §7.4.1). Checked
                // after our close too (then only failed, not answered), so
                // that a message's fate does not depend on whether it came
                // in the read that made us close.
                if kind == MessageKind::Text && !is_utf8(payload) {
                    return Err(WsError::InvalidUtf8);
                }
                if self.state == State::Open {
                    on_message(kind, payload, out);
                    self.delivered = true;
                }
                return Ok(Step::Consumed(hlen + len));
            }
            self.message = Some(kind);
            self.fragments = 1;
            self.wire_len = h.payload_len;
            self.utf8 = Utf8Validator::new();
            self.compressed = compressed;
            if compressed && self.inflater.is_none() {
                let bits = self.peer_window_bits();
                self.inflater = Some(Box::new(Inflater::new(bits)));
            }
        }
        self.trace_frame("<-", &h, &[]);
        self.payload = Some(PayloadInProgress {
            remaining: h.payload_len,
            key,
            fin: h.fin,
        });
        Ok(Step::Consumed(hlen))
    }

    /// Reads what is here of the current data frame's payload into the
    /// message being assembled.
    fn read_payload<T: Transmit>(
        &mut self,
        input: &mut [u8],
        out: &mut T,
        on_message: &mut dyn FnMut(MessageKind, &[u8], &mut T),
    ) -> Result<Step, WsError> {
        let Some(p) = self.payload.as_mut() else {
            return Ok(Step::Consumed(0));
        };
        let n = p.remaining.min(input.len() as u64) as usize;
        if n == 0 && p.remaining > 0 {
            return Ok(Step::NeedMore);
        }
        let chunk = &mut input[..n];
        apply_mask(chunk, p.key, 0);
        p.key.rotate_left(n % 4);
        p.remaining -= n as u64;
        let done = p.remaining == 0;
        let fin = p.fin;
        // Assembled and checked after our close as well (see read_frame),
        // delivered only while open.
        {
            let start = self.assembly.len();
            let inflated = if self.compressed {
                self.inflate(|i, out, limit| i.feed(chunk, out, limit))
            } else {
                self.assembly.extend_from_slice(chunk);
                Ok(())
            };
            // What inflated before an inflate error is checked first: the
            // error that comes first in the message is the one reported,
            // however the input was split.
            if self.message == Some(MessageKind::Text) && !self.utf8.feed(&self.assembly[start..]) {
                // RFC 6455 §8.1 / Autobahn 6.4: fail as soon as the text
                // cannot be UTF-8, not at the end of the message.
                return Err(WsError::InvalidUtf8);
            }
            inflated?;
        }
        if done {
            self.payload = None;
            if fin {
                self.finish_message(out, on_message)?;
            }
        }
        Ok(Step::Consumed(n))
    }

    /// The window the peer compresses with: what our inflater keeps.
    fn peer_window_bits(&self) -> u8 {
        let p = self.deflate.map_or(DeflateParams::DEFAULT, |d| d.params);
        match self.role {
            Role::Server => p.client_max_window_bits,
            Role::Client => p.server_max_window_bits,
        }
    }

    /// Whether the peer resets its compressor after each message, so
    /// that our inflate state can go with the message.
    fn peer_resets_context(&self) -> bool {
        let p = self.deflate.map_or(DeflateParams::DEFAULT, |d| d.params);
        match self.role {
            Role::Server => p.client_no_context_takeover,
            Role::Client => p.server_no_context_takeover,
        }
    }

    /// Runs one inflate step into the reassembly buffer, bounded by the
    /// message limit.
    fn inflate(
        &mut self,
        step: impl FnOnce(&mut Inflater, &mut Vec<u8>, usize) -> Result<(), InflateError>,
    ) -> Result<(), WsError> {
        let Some(inflater) = self.inflater.as_mut() else {
            return Err(WsError::InvalidCompressedData);
        };
        step(inflater, &mut self.assembly, self.limits.max_message_bytes).map_err(|e| match e {
            // RFC 6455 §7.4.1: 1009, "a message that is too big for it to
            // process" — known while inflating, before all of it exists.
            InflateError::TooBig => WsError::MessageTooBig,
            InflateError::InvalidData => WsError::InvalidCompressedData,
        })
    }

    fn finish_message<T: Transmit>(
        &mut self,
        out: &mut T,
        on_message: &mut dyn FnMut(MessageKind, &[u8], &mut T),
    ) -> Result<(), WsError> {
        if self.compressed {
            // RFC 7692 §7.2.2: append 00 00 ff ff, then inflate the rest.
            let start = self.assembly.len();
            let inflated = self.inflate(|i, out, limit| i.finish(out, limit));
            if self.message == Some(MessageKind::Text) && !self.utf8.feed(&self.assembly[start..]) {
                return Err(WsError::InvalidUtf8);
            }
            inflated?;
            let ended = self.inflater.as_ref().is_some_and(|i| i.ended());
            if ended || self.peer_resets_context() {
                // No context to keep: no inflate state on an idle
                // connection.
                self.inflater = None;
            }
        }
        self.compressed = false;
        self.wire_len = 0;
        let kind = self.message.take();
        self.fragments = 0;
        // Released, not kept: an idle session holds no buffer.
        let message = std::mem::take(&mut self.assembly);
        let Some(kind) = kind else {
            return Ok(());
        };
        // RFC 6455 §8.1: a text message that ends inside a character is
        // not valid UTF-8 either.
        if kind == MessageKind::Text && !self.utf8.is_complete() {
            return Err(WsError::InvalidUtf8);
        }
        if self.state == State::Open {
            on_message(kind, &message, out);
            self.delivered = true;
        }
        Ok(())
    }

    /// The rules a frame header must obey, given the session's state.
    fn check_header(&self, h: &FrameHeader) -> Result<(), WsError> {
        // RFC 6455 §5.2: RSV1-3 "MUST be 0 unless an extension is
        // negotiated that defines meanings for non-zero values". The only
        // one we negotiate, permessage-deflate, defines RSV1 (RFC 7692 §6).
        let allowed = if self.deflate.is_some() { RSV1 } else { 0 };
        if h.rsv & !allowed != 0 {
            return Err(WsError::ReservedBitsSet);
        }
        // RFC 6455 §5.2: "If an unknown opcode is received, the receiving
        // endpoint MUST _Fail the WebSocket Connection_."
        if let Opcode::Reserved(op) = h.opcode {
            return Err(WsError::ReservedOpcode(op));
        }
        match (self.role, h.mask) {
            // RFC 6455 §5.1: "a server MUST close the connection upon
            // receiving a frame that is not masked".
            (Role::Server, None) => return Err(WsError::UnmaskedFrameFromClient),
            // RFC 6455 §5.1: "A client MUST close a connection if it
            // detects a masked frame."
            (Role::Client, Some(_)) => return Err(WsError::MaskedFrameFromServer),
            _ => {}
        }
        if h.rsv & RSV1 != 0 {
            // RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message
            // Compressed" bit of control frames and non-first fragments of
            // a data message."
            if h.opcode.is_control() {
                return Err(WsError::CompressedControlFrame);
            }
            if h.opcode == Opcode::Continuation {
                return Err(WsError::CompressedContinuation);
            }
        }
        if h.opcode.is_control() {
            // RFC 6455 §5.5: "All control frames MUST have a payload
            // length of 125 bytes or less and MUST NOT be fragmented."
            if h.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::ControlFrameTooBig);
            }
            if !h.fin {
                return Err(WsError::FragmentedControlFrame);
            }
            // RFC 6455 §5.4: "Control frames MAY be injected in the middle
            // of a fragmented message": nothing more to check.
            return Ok(());
        }
        // RFC 6455 §10.4: "implementations SHOULD impose a limit on frame
        // sizes and the total message size after reassembly"; §7.4.1 names
        // 1009 for it.
        if h.payload_len > self.limits.max_frame_bytes {
            return Err(WsError::FrameTooBig);
        }
        let so_far = if h.opcode == Opcode::Continuation {
            self.wire_len
        } else {
            0
        };
        match (h.opcode, self.message) {
            // RFC 6455 §5.4: a fragmented message is "a single frame with
            // the FIN bit clear and an opcode other than 0, followed by
            // zero or more frames with the FIN bit clear and the opcode set
            // to 0, and terminated by a single frame with the FIN bit set
            // and an opcode of 0". A continuation must follow a start ...
            (Opcode::Continuation, None) => Err(WsError::ContinuationWithoutMessage),
            // ... and a new start cannot come before the terminating frame
            // ("the fragments of one message MUST NOT be interleaved
            // between the fragments of another message").
            (_, Some(_)) if h.opcode != Opcode::Continuation => {
                Err(WsError::MessageStartedInsideMessage)
            }
            // A flood of tiny fragments costs a frame's work each: bounded.
            (Opcode::Continuation, Some(_)) if self.fragments >= self.limits.max_fragments => {
                Err(WsError::TooManyFragments)
            }
            _ if so_far.saturating_add(h.payload_len) > self.limits.max_message_bytes as u64 => {
                Err(WsError::MessageTooBig)
            }
            _ => Ok(()),
        }
    }

    /// A whole, unmasked control frame.
    fn on_control<T: Transmit>(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        out: &mut T,
    ) -> Result<(), WsError> {
        match opcode {
            Opcode::Ping => {
                // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an
                // endpoint MUST send a Pong frame in response ... [with]
                // identical Application data" — unless it already sent a
                // close frame (§5.5.1: after which we send nothing but
                // what we already did).
                if self.state == State::Open {
                    self.emit(out, Opcode::Pong, payload);
                }
                Ok(())
            }
            // RFC 6455 §5.5.3: "A response to an unsolicited Pong frame is
            // not expected." It was input, which already reset the
            // keep-alive timer.
            Opcode::Pong => Ok(()),
            Opcode::Close => self.on_close(payload, out),
            _ => Ok(()),
        }
    }

    fn on_close<T: Transmit>(&mut self, payload: &[u8], out: &mut T) -> Result<(), WsError> {
        if let State::Closing { .. } = self.state {
            // RFC 6455 §7.1.2: our close was answered; the handshake is
            // complete, whatever the peer's frame says.
            self.state = State::Closed;
            return Ok(());
        }
        let code = match payload {
            [] => None,
            // RFC 6455 §5.5.1: "If there is a body, the first two bytes of
            // the body MUST be a 2-byte unsigned integer".
            [_] => return Err(WsError::CloseFrameTooShort),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_close_code(code) {
                    return Err(WsError::InvalidCloseCode(code));
                }
                // RFC 6455 §5.5.1: the reason "is not guaranteed to be
                // human readable" but is UTF-8 (§7.1.6: "... if it is not
                // valid UTF-8, fail the connection").
                if !is_utf8(reason) {
                    return Err(WsError::CloseReasonNotUtf8);
                }
                if self.role == Role::Client {
                    self.peer_reason = std::str::from_utf8(reason).ok().map(Into::into);
                }
                Some(code)
            }
        };
        // 1005 is the code reserved for reporting "no status received".
        self.close_code = Some(code.unwrap_or(1005));
        if self.hold {
            // Answered by `fail_held`, after what came before it.
            self.held_close = Some(code);
            self.drop_message();
            return Ok(());
        }
        self.answer_close(code, out);
        Ok(())
    }

    /// RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not
    /// previously send a Close frame, the endpoint MUST send a Close frame
    /// in response ... typically echoing the status code it received."
    /// Then §7.1.1: the server closes the TCP connection first.
    fn answer_close<T: Transmit>(&mut self, code: Option<u16>, out: &mut T) {
        match code {
            Some(c) => self.emit(out, Opcode::Close, &c.to_be_bytes()),
            None => self.emit(out, Opcode::Close, &[]),
        }
        self.state = State::Closed;
        self.drop_message();
    }

    /// RFC 6455 §7.1.7 "_Fail the WebSocket Connection_": send a close
    /// frame with the code of the broken rule (unless we already sent
    /// one), then close the transport without waiting for an answer.
    fn fail<T: Transmit>(&mut self, err: WsError, out: &mut T) {
        self.trace_line(|| format!("!! {err} -> close {}", err.close_code()));
        self.error.get_or_insert(err);
        if self.state == State::Open {
            let code = err.close_code();
            self.write_close(out, code, &err.to_string());
            self.close_code = Some(code);
        }
        self.state = State::Closed;
        self.drop_message();
    }

    fn drop_message(&mut self) {
        self.payload = None;
        self.message = None;
        self.fragments = 0;
        self.wire_len = 0;
        self.compressed = false;
        self.assembly = Vec::new();
        self.inflater = None;
    }

    /// Sends one data message, unfragmented, compressed when deflate was
    /// agreed and the message reaches the threshold. Nothing is sent
    /// unless the session is open (RFC 6455 §5.5.1: no data after a close
    /// frame).
    pub fn send<T: Transmit>(&mut self, kind: MessageKind, payload: &[u8], out: &mut T) {
        if self.state != State::Open {
            return;
        }
        if self.trace.is_some() {
            let compressed = self.writer().compress_bits(payload.len()).is_some();
            let h = FrameHeader {
                fin: true,
                rsv: if compressed { RSV1 } else { 0 },
                opcode: kind.opcode(),
                mask: None,
                payload_len: payload.len() as u64,
            };
            self.trace_frame("->", &h, payload);
        }
        self.writer().send(out, kind, payload);
    }

    /// Sends a ping (RFC 6455 §5.5.2), its payload cut to the 125 bytes a
    /// control frame may carry. Only while open.
    pub fn ping<T: Transmit>(&mut self, payload: &[u8], out: &mut T) {
        if self.state == State::Open {
            let n = payload.len().min(MAX_CONTROL_PAYLOAD);
            self.emit(out, Opcode::Ping, &payload[..n]);
        }
    }

    /// Sends an unsolicited pong (RFC 6455 §5.5.3: "a unidirectional
    /// heartbeat"), cut to 125 bytes. Only while open.
    pub fn pong<T: Transmit>(&mut self, payload: &[u8], out: &mut T) {
        if self.state == State::Open {
            let n = payload.len().min(MAX_CONTROL_PAYLOAD);
            self.emit(out, Opcode::Pong, &payload[..n]);
        }
    }

    /// Starts the closing handshake with `code` and `reason` (cut to fit
    /// the 123 bytes a control frame leaves it, at a character boundary).
    /// The peer has `close_timeout` to answer.
    pub fn close<T: Transmit>(&mut self, code: u16, reason: &str, now: Instant, out: &mut T) {
        if self.state != State::Open {
            return;
        }
        // The peer closed first: this is our answer to it.
        if let Some(peer) = self.held_close.take() {
            self.answer_close(peer, out);
            return;
        }
        self.write_close(out, code, reason);
        self.close_code = Some(code);
        self.state = State::Closing {
            deadline: now.checked_add(self.limits.close_timeout),
        };
        // Messages still arriving will not be delivered.
        self.assembly = Vec::new();
    }

    fn write_close<T: Transmit>(&mut self, out: &mut T, code: u16, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
        self.emit(out, Opcode::Close, &payload[..2 + cut]);
    }

    /// Writes one whole uncompressed frame, traced.
    fn emit<T: Transmit>(&mut self, out: &mut T, opcode: Opcode, payload: &[u8]) {
        if self.trace.is_some() {
            let h = FrameHeader {
                fin: true,
                rsv: 0,
                opcode,
                mask: None,
                payload_len: payload.len() as u64,
            };
            self.trace_frame("->", &h, payload);
        }
        write_frame(self.role, out, 0, opcode, payload);
    }

    /// The peer closed its side of the TCP connection.
    pub fn handle_eof(&mut self) {
        if self.state != State::Closed {
            // RFC 6455 §7.1.5: a connection closed without a close frame
            // has the status 1006 (reported, never sent).
            self.close_code.get_or_insert(1006);
            self.state = State::Closed;
            self.drop_message();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to
    /// do: the keep-alive ping, the pong deadline, or the close deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            // Held and not yet acted on by whoever drives the session:
            // due now, so that it never waits for a ping to end it.
            _ if self.has_held_failure() => Some(self.last_input),
            State::Open => match self.ping_sent {
                Some(sent) => sent.checked_add(self.limits.pong_timeout),
                None => self.last_input.checked_add(self.limits.ping_interval),
            },
            State::Closing { deadline } => deadline,
            State::Closed => None,
        }
    }

    /// Does what is due at `now` (early calls do nothing).
    pub fn handle_timeout<T: Transmit>(&mut self, now: Instant, out: &mut T) {
        let Some(due) = self.poll_timeout() else {
            return;
        };
        if now < due {
            return;
        }
        if self.fail_held(out) {
            return;
        }
        match self.state {
            State::Open if self.ping_sent.is_some() => {
                // Silent for ping_interval + pong_timeout: dead. No close
                // frame: nobody would read it.
                self.trace_line(|| "!! no answer to ping: peer dead".to_string());
                self.close_code.get_or_insert(1006);
                self.state = State::Closed;
                self.drop_message();
            }
            State::Open => {
                // RFC 6455 §5.5.2: "A Ping frame MAY be sent ... as a
                // keepalive or as a means to verify that the remote
                // endpoint is still responsive."
                self.emit(out, Opcode::Ping, &[]);
                self.ping_sent = Some(now);
            }
            State::Closing { .. } => {
                // RFC 6455 §7.1.1: we waited long enough for the echo.
                self.trace_line(|| "!! close handshake timed out".to_string());
                self.state = State::Closed;
                self.drop_message();
            }
            State::Closed => {}
        }
    }

    /// Messages may still be sent and received.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True once the server should flush what is queued and close the TCP
    /// connection: the close handshake finished, a protocol error was
    /// answered, the peer went silent or away, or the close timed out.
    pub fn wants_close_transport(&self) -> bool {
        self.state == State::Closed
    }

    /// The code of the closing handshake: the peer's if it closed first
    /// (1005 for a close frame without one), ours if we did, 1006 if the
    /// connection ended without one.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Records one line per frame in and out while on.
    pub fn set_trace(&mut self, on: bool) {
        match (on, self.trace.is_some()) {
            (true, false) => self.trace = Some(Box::default()),
            (false, true) => self.trace = None,
            _ => {}
        }
    }

    /// The lines recorded since the last call.
    pub fn take_trace(&mut self) -> Vec<String> {
        self.trace
            .as_deref_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn trace_line(&mut self, line: impl FnOnce() -> String) {
        if let Some(lines) = self.trace.as_mut() {
            if lines.len() < MAX_TRACE_LINES {
                lines.push(line());
            }
        }
    }

    /// `<- FIN TEXT masked len=5 "Hello"`, `-> FIN CLOSE len=2 code=1000`.
    fn trace_frame(&mut self, dir: &str, h: &FrameHeader, payload: &[u8]) {
        self.trace_line(|| {
            let mut line = format!(
                "ws {dir} {}{}{}{} len={}",
                if h.fin { "FIN " } else { "" },
                if h.rsv & RSV1 != 0 { "RSV1 " } else { "" },
                h.opcode.name(),
                if h.mask.is_some() { " masked" } else { "" },
                h.payload_len
            );
            if h.opcode == Opcode::Close && payload.len() >= 2 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                line.push_str(&format!(" code={code}"));
                if payload.len() > 2 {
                    line.push_str(&format!(" reason={}", preview(&payload[2..])));
                }
            } else if !payload.is_empty() {
                line.push(' ');
                line.push_str(&preview(payload));
            } else if h.payload_len > 0 {
                line.push_str(" (streamed)");
            }
            line
        });
    }
}

/// The first bytes of a payload, quoted and escaped, for traces.
fn preview(payload: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = &payload[..payload.len().min(MAX)];
    let more = if payload.len() > MAX { "..." } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ws_deflate::deflate_into;
    use crate::wire::ws_frame::apply_mask_bytewise;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHeader {
            fin,
            rsv: 0,
            opcode: Opcode::from_u8(opcode),
            mask: Some(KEY),
            payload_len: payload.len() as u64,
        }
        .emit(&mut out);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask_bytewise(&mut out[start..], KEY, 0);
        out
    }

    fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
        frame(true, 0x8, &[&code.to_be_bytes()[..], reason].concat())
    }

    /// What a session did with some input.
    #[derive(Debug, Default, PartialEq)]
    struct Run {
        messages: Vec<(MessageKind, Vec<u8>)>,
        out: Vec<u8>,
        consumed: usize,
    }

    fn limits() -> WsLimits {
        WsLimits {
            max_frame_bytes: 1000,
            max_message_bytes: 2000,
            max_fragments: 4,
            close_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
        }
    }

    fn feed(s: &mut WsSession, input: &[u8], now: Instant) -> Run {
        let mut run = Run::default();
        let mut buf = input.to_vec();
        let mut got = Vec::new();
        run.consumed = s.handle_read(&mut buf, now, &mut run.out, &mut |k, p, _| {
            got.push((k, p.to_vec()))
        });
        run.messages = got;
        run
    }

    /// The frames a server wrote: (fin, opcode, payload).
    fn frames_out(mut out: &[u8]) -> Vec<(bool, Opcode, Vec<u8>)> {
        let mut frames = Vec::new();
        while !out.is_empty() {
            let (h, n) = FrameHeader::parse(out).unwrap().unwrap();
            assert_eq!(h.mask, None, "server frames are unmasked");
            let len = h.payload_len as usize;
            frames.push((h.fin, h.opcode, out[n..n + len].to_vec()));
            out = &out[n + len..];
        }
        frames
    }

    fn close_reply(out: &[u8]) -> Option<u16> {
        let frames = frames_out(out);
        let (_, op, p) = frames.last()?;
        (*op == Opcode::Close && p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]))
    }

    fn expect_failure(input: &[u8], code: u16) {
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(&mut s, input, now);
        assert_eq!(close_reply(&run.out), Some(code), "{input:02x?}");
        assert_eq!(s.close_code(), Some(code));
        assert!(s.wants_close_transport());
        assert!(!s.is_open());
        assert_eq!(
            run.consumed,
            input.len(),
            "input after a failure is ignored"
        );
    }

    #[test]
    fn rfc_masked_hello() {
        // RFC 6455 §5.7: "A single-frame masked text message".
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(frame(true, 1, b"Hello"), hello);
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(&mut s, &hello, now);
        assert_eq!(run.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
        assert_eq!((run.out.len(), run.consumed), (0, 11));
        assert!(s.is_open());
    }

    #[test]
    fn single_frame_message_is_delivered_from_the_input() {
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let mut input = frame(true, 2, b"no copy");
        let range = input.as_ptr_range();
        let mut out = Vec::new();
        let mut inside = false;
        s.handle_read(&mut input, now, &mut out, &mut |_, p, _| {
            inside = range.contains(&p.as_ptr());
        });
        assert!(inside);
    }

    #[test]
    fn fragments_with_an_interleaved_ping() {
        // RFC 6455 §5.7's fragmented "Hello", masked, with a ping between
        // the fragments (§5.4: control frames may be injected).
        let input = [
            frame(false, 1, b"Hel"),
            frame(true, 9, b"are you there"),
            frame(false, 0, b""),
            frame(true, 0, b"lo"),
        ]
        .concat();
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(&mut s, &input, now);
        assert_eq!(run.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
        assert_eq!(
            frames_out(&run.out),
            vec![(true, Opcode::Pong, b"are you there".to_vec())]
        );
        assert_eq!(run.consumed, input.len());
        assert!(
            s.assembly.capacity() == 0,
            "buffer released after the message"
        );
    }

    #[test]
    fn any_split_gives_the_same_result() {
        let input = [
            frame(true, 1, "héllo wörld ✓ 𝄞".as_bytes()),
            frame(false, 2, &[0, 1, 2]),
            frame(true, 10, b"unsolicited"),
            frame(true, 0, &[3; 300]),
            frame(true, 9, b""),
            close_frame(1000, b"bye"),
        ]
        .concat();
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let whole = feed(&mut s, &input, now);
        assert_eq!(whole.messages.len(), 2);
        assert_eq!(close_reply(&whole.out), Some(1000));
        for step in [1, 2, 3, 5, 7, 64] {
            let mut s = WsSession::new(limits(), now);
            let mut pending: Vec<u8> = Vec::new();
            let mut run = Run::default();
            for chunk in input.chunks(step) {
                pending.extend_from_slice(chunk);
                let mut got = Vec::new();
                let n = s.handle_read(&mut pending, now, &mut run.out, &mut |k, p, _| {
                    got.push((k, p.to_vec()))
                });
                assert!(
                    pending.len() - n <= 14 + 125,
                    "keeps at most a control frame"
                );
                pending.drain(..n);
                run.messages.extend(got);
                run.consumed += n;
            }
            assert_eq!(run, whole, "step {step}");
            assert_eq!(s.close_code(), Some(1000));
        }
    }

    #[test]
    fn framing_violations_are_1002() {
        let mut unmasked = Vec::new();
        crate::wire::ws_frame::write_frame(&mut unmasked, true, Opcode::Text, b"hi");
        expect_failure(&unmasked, 1002);
        let mut rsv = frame(true, 1, b"hi");
        rsv[0] |= 0x40;
        expect_failure(&rsv, 1002);
        expect_failure(&frame(true, 3, b""), 1002); // reserved data opcode
        expect_failure(&frame(true, 0xB, b""), 1002); // reserved control opcode
        expect_failure(&frame(true, 9, &[0; 126]), 1002); // control too big
        expect_failure(&frame(false, 9, b""), 1002); // fragmented control
        expect_failure(&frame(true, 0, b"x"), 1002); // continuation alone
        expect_failure(
            &[frame(false, 1, b"a"), frame(true, 1, b"b")].concat(),
            1002,
        );
        expect_failure(&[0x81, 0xFE, 0x00, 0x05, 1, 2, 3, 4], 1002); // non-minimal
                                                                     // The control-frame rules apply before the payload is here.
        expect_failure(&frame(true, 9, &[0; 126])[..8], 1002);
    }

    #[test]
    fn messages_before_a_violation_are_delivered() {
        let input = [frame(true, 1, b"ok"), frame(true, 0, b"bad")].concat();
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(&mut s, &input, now);
        assert_eq!(run.messages, vec![(MessageKind::Text, b"ok".to_vec())]);
        assert_eq!(close_reply(&run.out), Some(1002));
    }

    #[test]
    fn invalid_utf8_fails_fast_with_1007() {
        // A whole frame with an impossible sequence.
        expect_failure(&frame(true, 1, b"ok \xC0\xAF"), 1007);
        // A message ending inside a character.
        expect_failure(&frame(true, 1, "€".as_bytes()[..2].as_ref()), 1007);
        expect_failure(
            &[frame(false, 1, b"a\xF0\x9F"), frame(true, 0, b"\x98")].concat(),
            1007,
        );
        // Autobahn 6.4.3: one frame, the impossible byte in the first
        // piece to arrive: fail now, not when the frame is complete.
        let mut big = vec![b'a'; 500];
        big[10] = 0xFF;
        let f = frame(true, 1, &big);
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(&mut s, &f[..20], now);
        assert_eq!(close_reply(&run.out), Some(1007));
        // A character split between two fragments is fine.
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(
            &mut s,
            &[frame(false, 1, b"\xE2\x82"), frame(true, 0, b"\xAC")].concat(),
            now,
        );
        assert_eq!(run.messages, vec![(MessageKind::Text, "€".into())]);
        // Binary messages are not checked.
        let run = feed(&mut s, &frame(true, 2, b"\xFF"), now);
        assert_eq!(run.messages.len(), 1);
    }

    #[test]
    fn a_held_peer_close_is_answered_after_the_messages_before_it() {
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        s.hold_failures();
        // A message and the peer's close in one read: the message is
        // delivered, the close is held, and what follows is never read.
        let mut input = frame(true, 0x1, b"publish me");
        input.extend(close_frame(1000, b""));
        input.extend(frame(true, 0x1, b"after the close"));
        let run = feed(&mut s, &input, now);
        assert_eq!(run.messages, [(MessageKind::Text, b"publish me".to_vec())]);
        assert_eq!(run.consumed, input.len());
        assert!(run.out.is_empty(), "no answer yet");
        assert!(s.has_held_failure() && !s.wants_close_transport());
        assert_eq!(s.close_code(), Some(1000));
        // The reply to the message goes out first (RFC 6455 §5.5.1 lets
        // the close wait), then the close answers the peer's.
        let mut out = Vec::new();
        s.send(MessageKind::Text, b"ack", &mut out);
        assert!(s.fail_held(&mut out));
        assert_eq!(
            frames_out(&out),
            [
                (true, Opcode::Text, b"ack".to_vec()),
                (true, Opcode::Close, vec![0x03, 0xe8])
            ]
        );
        assert!(s.wants_close_transport());
        assert!(!s.fail_held(&mut out), "answered once");

        // A protocol error held behind a message whose answer was our own
        // close ends the handshake at once, as in a later read.
        let mut s = WsSession::new(limits(), now);
        s.hold_failures();
        let mut input = frame(true, 0x1, b"x");
        input.extend([0x81, 0x01, b'y']); // unmasked: 1002
        feed(&mut s, &input, now);
        let mut out = Vec::new();
        s.close(1003, "not for me", now, &mut out);
        assert!(s.has_held_failure() && !s.wants_close_transport());
        assert!(s.fail_held(&mut out));
        assert_eq!(close_reply(&out), Some(1003), "no second close frame");
        assert!(s.wants_close_transport());

        // Invalid UTF-8 after our close fails the connection too (no
        // second close frame): the same end as when it came in the read
        // that made us close, and was held.
        let mut s = WsSession::new(limits(), now);
        let mut out = Vec::new();
        s.close(1000, "", now, &mut out);
        let run = feed(&mut s, &frame(true, 0x1, b"\xff"), now);
        assert!(run.out.is_empty() && s.wants_close_transport());
        assert_eq!(s.error(), Some(WsError::InvalidUtf8));

        // Left held by its driver, it is due at once and answered by the
        // timer; an application close while held is the answer too, with
        // the peer's code.
        let mut s = WsSession::new(limits(), now);
        s.hold_failures();
        feed(&mut s, &close_frame(3001, b""), now);
        assert_eq!(s.poll_timeout(), Some(now));
        let mut out = Vec::new();
        s.handle_timeout(now, &mut out);
        assert_eq!(close_reply(&out), Some(3001));
        let mut s = WsSession::new(limits(), now);
        s.hold_failures();
        feed(&mut s, &frame(true, 0x8, &[]), now);
        let mut out = Vec::new();
        s.close(1008, "policy", now, &mut out);
        assert_eq!(frames_out(&out), [(true, Opcode::Close, vec![])]);
        assert!(s.wants_close_transport());
    }

    #[test]
    fn close_frames() {
        // Echo the peer's code, then close the transport.
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let run = feed(
            &mut s,
            &[
                close_frame(1000, "fini ✓".as_bytes()),
                frame(true, 1, b"late"),
            ]
            .concat(),
            now,
        );
        assert_eq!(
            frames_out(&run.out),
            vec![(true, Opcode::Close, vec![3, 232])]
        );
        assert!(run.messages.is_empty(), "nothing after a close frame");
        assert!(s.wants_close_transport());
        assert_eq!(s.close_code(), Some(1000));
        // An empty close frame is answered with an empty one.
        let mut s = WsSession::new(limits(), now);
        let run = feed(&mut s, &frame(true, 8, b""), now);
        assert_eq!(frames_out(&run.out), vec![(true, Opcode::Close, vec![])]);
        assert_eq!(s.close_code(), Some(1005));
        // Application codes pass.
        for code in [1001, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999] {
            let mut s = WsSession::new(limits(), now);
            let run = feed(&mut s, &close_frame(code, b""), now);
            assert_eq!(close_reply(&run.out), Some(code));
        }
        expect_failure(&frame(true, 8, &[0x03]), 1002);
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            expect_failure(&close_frame(code, b""), 1002);
        }
        expect_failure(
            &close_frame(
                1000,
                b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80",
            ),
            1007,
        );
    }

    #[test]
    fn limits_are_1009() {
        expect_failure(&frame(true, 2, &[0; 1001]), 1009);
        // Known from the header alone: fails before the payload arrives.
        expect_failure(&frame(true, 2, &[0; 1001])[..8], 1009);
        let four = [
            frame(false, 2, &[0; 1000]),
            frame(false, 0, &[0; 1000]),
            frame(true, 0, &[0; 1]),
        ]
        .concat();
        expect_failure(&four, 1009);
        let many = [
            frame(false, 1, b"a"),
            frame(false, 0, b"b"),
            frame(false, 0, b"c"),
            frame(false, 0, b"d"),
            frame(true, 0, b"e"),
        ]
        .concat();
        expect_failure(&many, 1009);
        // Exactly at every limit is fine.
        let now = Instant::now();
        let mut s = WsSession::new(limits(), now);
        let at = [
            frame(false, 2, &[0; 1000]),
            frame(false, 0, &[0; 500]),
            frame(false, 0, &[0; 499]),
            frame(true, 0, &[0; 1]),
        ]
        .concat();
        let run = feed(&mut s, &at, now);
        assert_eq!(run.messages.len(), 1);
        assert_eq!(run.messages[0].1.len(), 2000);
        assert!(s.is_open());
    }

    #[test]
    fn server_close_handshake() {
        let t0 = Instant::now();
        let mut s = WsSession::new(limits(), t0);
        let mut out = Vec::new();
        s.close(1001, "going away", t0, &mut out);
        let mut want = vec![0x03, 0xE9];
        want.extend_from_slice(b"going away");
        assert_eq!(frames_out(&out), vec![(true, Opcode::Close, want)]);
        assert!(!s.is_open() && !s.wants_close_transport());
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        // Nothing is sent or delivered any more, pings are not answered.
        out.clear();
        s.send(MessageKind::Text, b"x", &mut out);
        let run = feed(
            &mut s,
            &[frame(true, 1, b"y"), frame(true, 9, b"")].concat(),
            t0,
        );
        assert!(out.is_empty() && run.out.is_empty() && run.messages.is_empty());
        // The peer's close completes it; our code stands.
        let run = feed(&mut s, &close_frame(1000, b""), t0);
        assert!(run.out.is_empty());
        assert!(s.wants_close_transport());
        assert_eq!(s.close_code(), Some(1001));
        assert_eq!(s.poll_timeout(), None);

        // Or the deadline does.
        let mut s = WsSession::new(limits(), t0);
        s.close(1008, &"é".repeat(100), t0, &mut out);
        let (_, _, p) = frames_out(&out).pop().unwrap();
        assert!(p.len() <= 125 && std::str::from_utf8(&p[2..]).is_ok());
        s.handle_timeout(t0 + Duration::from_secs(4), &mut out);
        assert!(!s.wants_close_transport());
        s.handle_timeout(t0 + Duration::from_secs(5), &mut out);
        assert!(s.wants_close_transport());
    }

    #[test]
    fn keepalive_ping_and_dead_peer() {
        let t0 = Instant::now();
        let secs = |n| t0 + Duration::from_secs(n);
        let mut s = WsSession::new(limits(), t0);
        assert_eq!(s.poll_timeout(), Some(secs(30)));
        // Input moves the ping.
        feed(&mut s, &frame(true, 10, b""), secs(20));
        assert_eq!(s.poll_timeout(), Some(secs(50)));
        let mut out = Vec::new();
        s.handle_timeout(secs(49), &mut out);
        assert!(out.is_empty());
        s.handle_timeout(secs(50), &mut out);
        assert_eq!(frames_out(&out), vec![(true, Opcode::Ping, vec![])]);
        assert_eq!(s.poll_timeout(), Some(secs(60)));
        // Any input answers it.
        feed(&mut s, &frame(true, 2, b"x"), secs(55));
        assert_eq!(s.poll_timeout(), Some(secs(85)));
        // Silence after the next ping: dead, nothing written.
        out.clear();
        s.handle_timeout(secs(85), &mut out);
        s.handle_timeout(secs(95), &mut out);
        assert_eq!(frames_out(&out).len(), 1);
        assert!(s.wants_close_transport());
        assert_eq!(s.close_code(), Some(1006));
    }

    #[test]
    fn eof_and_huge_timeouts() {
        let t0 = Instant::now();
        let mut s = WsSession::new(limits(), t0);
        feed(&mut s, &frame(false, 1, b"half"), t0);
        s.handle_eof();
        assert!(s.wants_close_transport());
        assert_eq!(s.close_code(), Some(1006));
        let run = feed(&mut s, &frame(true, 1, b"x"), t0);
        assert_eq!((run.consumed, run.messages.len()), (7, 0));

        let never = WsLimits {
            close_timeout: Duration::MAX,
            ping_interval: Duration::MAX,
            ..limits()
        };
        let mut s = WsSession::new(never, t0);
        assert_eq!(s.poll_timeout(), None);
        let mut out = Vec::new();
        s.close(1000, "", t0, &mut out);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn send_writes_unfragmented_frames() {
        let t0 = Instant::now();
        let mut s = WsSession::new(limits(), t0);
        let mut out = Vec::new();
        s.send(MessageKind::Text, b"Hello", &mut out);
        // RFC 6455 §5.7: "A single-frame unmasked text message".
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        s.send(MessageKind::Binary, &[7; 70000], &mut out);
        assert_eq!(&out[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn trace_lines() {
        let t0 = Instant::now();
        let mut s = WsSession::new(limits(), t0);
        feed(&mut s, &frame(true, 1, b"quiet"), t0);
        assert!(s.take_trace().is_empty());
        s.set_trace(true);
        feed(
            &mut s,
            &[frame(true, 9, b"hi\n"), close_frame(1000, b"bye")].concat(),
            t0,
        );
        assert_eq!(
            s.take_trace(),
            vec![
                "ws <- FIN PING masked len=3 \"hi\\n\"",
                "ws -> FIN PONG len=3 \"hi\\n\"",
                "ws <- FIN CLOSE masked len=5 code=1000 reason=\"bye\"",
                "ws -> FIN CLOSE len=2 code=1000",
            ]
        );
        assert!(s.take_trace().is_empty());
    }

    #[test]
    fn an_idle_session_is_small() {
        let size = std::mem::size_of::<WsSession>();
        assert!(size <= 256, "WsSession is {size} bytes");
    }

    fn deflate_params(client_no_context: bool) -> WsDeflate {
        WsDeflate {
            params: DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: client_no_context,
                ..DeflateParams::DEFAULT
            },
            level: 6,
            threshold: 4,
        }
    }

    fn deflate_session(client_no_context: bool) -> WsSession {
        let mut s = WsSession::new(limits(), Instant::now());
        s.set_deflate(Some(deflate_params(client_no_context)));
        s
    }

    /// A masked client frame with RSV1 set.
    fn compressed_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = frame(fin, opcode, payload);
        f[0] |= 0x40;
        f
    }

    #[test]
    fn rfc7692_compressed_hello() {
        // RFC 7692 §7.2.3.1, masked as a client sends it.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let now = Instant::now();
        let mut s = deflate_session(false);
        let run = feed(&mut s, &compressed_frame(true, 1, &hello), now);
        assert_eq!(run.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
        // §7.2.3.2: in two fragments, RSV1 on the first only; then a
        // second message referring back into the first (context kept).
        let input = [
            compressed_frame(false, 1, &hello[..3]),
            frame(true, 9, b""),
            frame(true, 0, &hello[3..]),
            compressed_frame(true, 1, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
        ]
        .concat();
        let mut s = deflate_session(false);
        let run = feed(&mut s, &input, now);
        assert_eq!(
            run.messages,
            vec![
                (MessageKind::Text, b"Hello".to_vec()),
                (MessageKind::Text, b"Hello".to_vec())
            ]
        );
        assert!(s.inflater.is_some(), "the client keeps its context");
        // With no context takeover, the inflater goes with the message.
        let mut s = deflate_session(true);
        feed(&mut s, &compressed_frame(true, 1, &hello), now);
        assert!(s.inflater.is_none() && s.assembly.capacity() == 0);
        // Uncompressed messages still pass (RSV1 clear).
        let run = feed(&mut s, &frame(true, 2, b"plain"), now);
        assert_eq!(run.messages, vec![(MessageKind::Binary, b"plain".to_vec())]);
    }

    #[test]
    fn compressed_violations() {
        let now = Instant::now();
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let fails = |input: &[u8], code: u16| {
            let mut s = deflate_session(true);
            let run = feed(&mut s, input, now);
            assert_eq!(close_reply(&run.out), Some(code), "{input:02x?}");
        };
        // RFC 7692 §6.1: no RSV1 on control frames or continuations.
        fails(&compressed_frame(true, 9, b""), 1002);
        fails(
            &[
                compressed_frame(false, 1, &hello[..3]),
                compressed_frame(true, 0, &hello[3..]),
            ]
            .concat(),
            1002,
        );
        // RSV2 and RSV3 mean nothing to permessage-deflate.
        let mut rsv2 = frame(true, 1, b"x");
        rsv2[0] |= 0x20;
        fails(&rsv2, 1002);
        // Not DEFLATE: 1007.
        fails(&compressed_frame(true, 2, &[0x07, 0x00]), 1007);
        // Inflates to invalid UTF-8: 1007.
        let mut bad = Vec::new();
        deflate_into(&[b"ok \xC0\xAF"], 6, 15, &mut bad);
        fails(&compressed_frame(true, 1, &bad), 1007);
        // Inflates past the 2000-byte message limit: 1009, even though
        // the compressed frame is tiny.
        let mut bomb = Vec::new();
        deflate_into(&[&[b'a'; 5000]], 9, 15, &mut bomb);
        assert!(bomb.len() < 100);
        fails(&compressed_frame(true, 1, &bomb), 1009);
        // Without deflate, RSV1 is a protocol error as before.
        expect_failure(&compressed_frame(true, 1, &hello), 1002);
    }

    #[test]
    fn compressed_any_split_gives_the_same_result() {
        let mut big = Vec::new();
        let text = "compressible text, ".repeat(60);
        deflate_into(&[text.as_bytes()], 6, 15, &mut big);
        let input = [
            compressed_frame(true, 1, &big),
            frame(true, 1, b"plain"),
            compressed_frame(false, 2, &big[..10]),
            frame(true, 0, &big[10..]),
        ]
        .concat();
        let now = Instant::now();
        let whole = feed(&mut deflate_session(true), &input, now);
        assert_eq!(whole.messages.len(), 3);
        assert_eq!(whole.messages[0].1, text.as_bytes());
        for step in [1, 3, 17] {
            let mut s = deflate_session(true);
            let mut pending: Vec<u8> = Vec::new();
            let mut run = Run::default();
            for chunk in input.chunks(step) {
                pending.extend_from_slice(chunk);
                let mut got = Vec::new();
                let n = s.handle_read(&mut pending, now, &mut run.out, &mut |k, p, _| {
                    got.push((k, p.to_vec()))
                });
                pending.drain(..n);
                run.messages.extend(got);
                run.consumed += n;
            }
            assert_eq!(run, whole, "step {step}");
        }
    }

    #[test]
    fn send_compresses_over_the_threshold() {
        let mut s = deflate_session(true);
        let mut out = Vec::new();
        s.send(MessageKind::Text, b"abc", &mut out);
        // Under the threshold: as it is, RSV1 clear.
        assert_eq!(out, [0x81, 0x03, b'a', b'b', b'c']);
        out.clear();
        s.send(MessageKind::Text, b"Hello", &mut out);
        // RFC 7692 §7.2.3.1, byte for byte.
        assert_eq!(out, [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        // The writer a callback uses answers the same.
        let mut again = Vec::new();
        s.writer().send(&mut again, MessageKind::Text, b"Hello");
        assert_eq!(again, out);
    }

    /// Feeds server frames to a client session; returns its messages.
    fn client_feed(c: &mut WsSession, input: &[u8]) -> (Vec<(MessageKind, Vec<u8>)>, Vec<u8>) {
        let mut buf = input.to_vec();
        let mut got = Vec::new();
        let mut out = Vec::new();
        let n = c.handle_read(&mut buf, Instant::now(), &mut out, &mut |k, p, _| {
            got.push((k, p.to_vec()))
        });
        assert_eq!(n, input.len());
        (got, out)
    }

    #[test]
    fn client_role_is_the_mirror_image() {
        let now = Instant::now();
        let mut c = WsSession::with_role(Role::Client, limits(), now);
        // RFC 6455 §5.7's unmasked "Hello" from a server is accepted ...
        let (got, _) = client_feed(&mut c, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(got, vec![(MessageKind::Text, b"Hello".to_vec())]);
        // ... what it sends is masked, and a server session reads it ...
        let mut wire = Vec::new();
        c.send(MessageKind::Text, b"Hello", &mut wire);
        assert_eq!(wire[1], 0x85, "masked, 5 bytes");
        let mut srv = WsSession::new(limits(), now);
        let run = feed(&mut srv, &wire, now);
        assert_eq!(run.messages, vec![(MessageKind::Text, b"Hello".to_vec())]);
        // ... and a masked frame from the server is refused (§5.1).
        let (_, out) = client_feed(&mut c, &frame(true, 1, b"masked"));
        assert_eq!(c.error(), Some(WsError::MaskedFrameFromServer));
        let (h, _) = FrameHeader::parse(&out).unwrap().unwrap();
        assert!(h.mask.is_some() && h.opcode == Opcode::Close);
        // The server's close reason is kept for the client to read.
        let mut c = WsSession::with_role(Role::Client, limits(), now);
        let mut close = vec![0x88, 0x05, 0x03, 0xe8];
        close.extend_from_slice(b"bye");
        client_feed(&mut c, &close);
        assert_eq!(
            (c.close_code(), c.peer_close_reason()),
            (Some(1000), Some("bye"))
        );
    }

    #[test]
    fn a_client_session_inflates_compress_message() {
        use crate::proto::ws_deflate::compress_message;
        // One frame compressed once, read by two clients.
        let text = "{\"id\":\"1-1\",\"data\":\"fan out\"} ".repeat(20);
        let frame = compress_message(&[text.as_bytes()], Opcode::Text, 6, 15);
        assert_eq!(frame[0], 0xc1, "FIN, RSV1, text");
        for _ in 0..2 {
            let mut c = WsSession::with_role(Role::Client, limits(), Instant::now());
            c.set_deflate(Some(deflate_params(true)));
            let (got, _) = client_feed(&mut c, &[frame.clone(), frame.clone()].concat());
            assert_eq!(got.len(), 2);
            assert!(got.iter().all(|(_, m)| m == text.as_bytes()));
        }
        // And the client compresses for the server, masked.
        let mut c = WsSession::with_role(Role::Client, limits(), Instant::now());
        c.set_deflate(Some(deflate_params(true)));
        let mut wire = Vec::new();
        c.send(MessageKind::Text, text.as_bytes(), &mut wire);
        assert_eq!(wire[0], 0xc1);
        let run = feed(&mut deflate_session(true), &wire, Instant::now());
        assert_eq!(run.messages, vec![(MessageKind::Text, text.into_bytes())]);
    }

    #[test]
    fn utf8_validator_agrees_with_std() {
        // Every 1- and 2-byte string, every 3-byte string starting with a
        // lead byte of 3- or 4-byte sequences, and a walk of 4-byte ones.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for a in 0..=255u8 {
            cases.push(vec![a]);
            for b in 0..=255u8 {
                cases.push(vec![a, b]);
                if a >= 0xE0 {
                    for c in [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0] {
                        cases.push(vec![a, b, c]);
                        if a >= 0xF0 {
                            cases.push(vec![a, b, c, 0x80]);
                            cases.push(vec![a, b, c, 0xBF]);
                        }
                    }
                }
            }
        }
        cases.push("ascii only, longer than a word or two".into());
        cases.push("mixed ✓ text with 𝄞 and é in it, then more ascii".into());
        for case in &cases {
            let want = std::str::from_utf8(case).is_ok();
            assert_eq!(is_utf8(case), want, "{case:02x?}");
            // Fed a byte at a time: same verdict, and an invalid input is
            // caught at the first byte std says is wrong.
            let mut v = Utf8Validator::new();
            let mut failed_at = None;
            for (i, b) in case.iter().enumerate() {
                if !v.feed(std::slice::from_ref(b)) {
                    failed_at = Some(i);
                    break;
                }
            }
            assert_eq!(failed_at.is_none() && v.is_complete(), want, "{case:02x?}");
            if let (Some(i), Err(e)) = (failed_at, std::str::from_utf8(case)) {
                if let Some(len) = e.error_len() {
                    // std reports the longest valid prefix of the bad
                    // sequence; the byte after it is the impossible one,
                    // unless the lead byte itself is.
                    let v = e.valid_up_to();
                    let std_at = if matches!(case[v], 0xC2..=0xF4) {
                        v + len
                    } else {
                        v
                    };
                    assert_eq!(i, std_at, "{case:02x?}");
                }
            }
        }
    }
}

//! RESP, the Redis serialization protocol, versions 2 and 3.
//!
//! Before working on this file, read the Redis protocol specification
//! ("Redis serialization protocol specification", redis.io, section
//! "RESP protocol description" and the table of types), then
//! [`crate::proto::redis`], which is the only caller in the server.
//!
//! ```text
//! value       = type-byte payload
//! line        = *( any byte but CR and LF ) CRLF
//! simple      = "+" line            error     = "-" line
//! integer     = ":" [ "+" / "-" ] 1*DIGIT CRLF
//! bulk        = "$" length CRLF bytes CRLF  /  "$-1" CRLF   (RESP2 null)
//! array       = "*" count CRLF count(value) /  "*-1" CRLF   (RESP2 null)
//! null        = "_" CRLF            boolean   = "#" ( "t" / "f" ) CRLF
//! double      = "," ( number / "inf" / "-inf" / "nan" ) CRLF
//! big-number  = "(" [ "+" / "-" ] 1*DIGIT CRLF
//! bulk-error  = "!" length CRLF bytes CRLF
//! verbatim    = "=" length CRLF 3byte ":" bytes CRLF
//! map         = "%" count CRLF count(value value)
//! set         = "~" count CRLF count(value)
//! attribute   = "|" count CRLF count(value value) value
//! push        = ">" count CRLF count(value)
//! ```
//!
//! Decisions where the specification leaves a choice:
//! - Lines end in CRLF only. A bare LF or a CR not followed by LF is an
//!   error, not a line end: a reply is framed exactly one way.
//! - Streamed strings and aggregates (`$?`, `*?`, `%?` …, and the `;` and
//!   `.` chunks that go with them) are refused with
//!   [`RespError::StreamedNotSupported`]. Redis itself never sends them; a
//!   client only gets them from a module that asks for them.
//! - An attribute is returned together with the value it annotates, as
//!   [`Value::Attributed`], so a reply is always exactly one `Value`.
//! - The parser is iterative: nesting is an explicit stack bounded by
//!   [`RespLimits::max_depth`], so no input can overflow the call stack.
//!   Aggregates are not preallocated from their announced count, so memory
//!   grows only with bytes actually received.
//! - Incomplete input is `Ok(None)` and consumes nothing; the caller parses
//!   again from the same start once more bytes have arrived.

use thiserror::Error;

/// Limits the parser enforces. Every one is checked before the bytes it
/// covers are copied.
#[derive(Debug, Clone, Copy)]
pub struct RespLimits {
    /// Most bytes in one bulk string, bulk error or verbatim string. Over
    /// it: [`RespError::BulkTooLong`], checked on the length line, before
    /// any of the payload arrives.
    pub max_bulk_len: usize,
    /// Most elements in one array, set or push, or pairs in one map or
    /// attribute. Over it: [`RespError::AggregateTooLong`].
    pub max_aggregate_len: usize,
    /// Most aggregates open inside one another (a flat array is depth 1).
    /// Over it: [`RespError::TooDeep`]. This is what keeps the parser's
    /// stack bounded.
    pub max_depth: usize,
    /// Most bytes in a line-framed value (simple string, error, integer,
    /// double, big number), CRLF excluded. Over it: [`RespError::LineTooLong`].
    pub max_line_len: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        RespLimits {
            max_bulk_len: 64 * 1024 * 1024,
            max_aggregate_len: 1024 * 1024,
            max_depth: 16,
            max_line_len: 64 * 1024,
        }
    }
}

/// Longest length or count line we read: `-1` or the digits of a `u64`.
const MAX_LENGTH_LINE: usize = 20;

/// One RESP value, any type of either version.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK`: a short status text, never containing CR or LF.
    Simple(Vec<u8>),
    /// `-ERR …`: an error reply; by convention the first word is its kind.
    Error(Vec<u8>),
    /// `:1000`
    Integer(i64),
    /// `$5 hello`: binary-safe bytes.
    Bulk(Vec<u8>),
    /// `$-1`: RESP2's null bulk string (a missing key).
    NullBulk,
    /// `*2 …`
    Array(Vec<Value>),
    /// `*-1`: RESP2's null array (a timed-out blocking pop).
    NullArray,
    /// `_`: RESP3's one null.
    Null,
    /// `#t` / `#f`
    Boolean(bool),
    /// `,1.23`, `,inf`, `,-inf`, `,nan`
    Double(f64),
    /// `(3492890328409238509324850943850943825024385`: the digits, with a
    /// `-` if negative, as sent; there is no integer type wide enough here.
    BigNumber(Vec<u8>),
    /// `!21 SYNTAX invalid syntax`: an error that may hold any bytes.
    BulkError(Vec<u8>),
    /// `=15 txt:Some string`: text with a three-byte format (`txt`, `mkd`).
    Verbatim { format: [u8; 3], text: Vec<u8> },
    /// `%2 …`: key/value pairs, in the order sent.
    Map(Vec<(Value, Value)>),
    /// `~3 …`: unordered elements, kept in the order sent.
    Set(Vec<Value>),
    /// `|1 …` then a value: out-of-band metadata about that value.
    Attributed {
        attributes: Vec<(Value, Value)>,
        value: Box<Value>,
    },
    /// `>3 …`: data the server sends unasked (pub/sub messages in RESP3).
    Push(Vec<Value>),
}

/// Why bytes are not RESP. Every variant means the server we talk to broke
/// the protocol, or we are not talking to Redis; the connection cannot be
/// trusted past it. [`RespError::status`] is what a request waiting on that
/// server is answered with.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// A type byte the specification does not define.
    #[error("unknown RESP type byte 0x{0:02x}")]
    UnknownType(u8),
    #[error("CR not followed by LF (RESP: every line ends in CRLF)")]
    LoneCr,
    #[error("line ended by a bare LF (RESP: every line ends in CRLF)")]
    BareLf,
    #[error("line longer than the limit")]
    LineTooLong,
    #[error("length or count is not -1 or 1*DIGIT")]
    InvalidLength,
    #[error("bulk string longer than the limit")]
    BulkTooLong,
    #[error("aggregate with more elements than the limit")]
    AggregateTooLong,
    #[error("aggregates nested deeper than the limit")]
    TooDeep,
    #[error("bulk payload not followed by CRLF")]
    MissingCrlfAfterBulk,
    #[error("integer is not [+|-]1*DIGIT")]
    InvalidInteger,
    #[error("integer does not fit in 64 bits")]
    IntegerOverflow,
    #[error("boolean is neither t nor f")]
    InvalidBoolean,
    #[error("double is not a number, inf, -inf or nan")]
    InvalidDouble,
    #[error("big number is not [+|-]1*DIGIT")]
    InvalidBigNumber,
    #[error("null with bytes before its CRLF")]
    NullWithData,
    #[error("verbatim string without a 3-byte format and ':'")]
    VerbatimWithoutFormat,
    /// `$?`, `*?`, `;`, `.`: streamed strings and aggregates (RESP3).
    #[error("streamed RESP3 strings and aggregates are not supported")]
    StreamedNotSupported,
}

impl RespError {
    /// The HTTP status for a request that needed this server: 502 Bad
    /// Gateway, the upstream answered with something that is not RESP.
    pub fn status(&self) -> u16 {
        502
    }
}

/// What one step of the parser read: a whole value, or the head of an
/// aggregate whose elements follow.
enum Item {
    Value(Value),
    Open(Aggregate, usize),
}

#[derive(Clone, Copy)]
enum Aggregate {
    Array,
    Set,
    Push,
    Map,
    Attribute,
}

/// An aggregate being filled.
struct Frame {
    kind: Aggregate,
    /// Values still to come (pairs count twice; an attribute's annotated
    /// value once more).
    remaining: usize,
    items: Vec<Value>,
}

impl Frame {
    fn finish(self) -> Value {
        match self.kind {
            Aggregate::Array => Value::Array(self.items),
            Aggregate::Set => Value::Set(self.items),
            Aggregate::Push => Value::Push(self.items),
            Aggregate::Map => Value::Map(pairs(self.items)),
            Aggregate::Attribute => {
                let mut items = self.items;
                // `remaining` started at 2n+1, so there is always one.
                let value = items.pop().unwrap_or(Value::Null);
                Value::Attributed {
                    attributes: pairs(items),
                    value: Box::new(value),
                }
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// Parses one value from the start of `buf`.
///
/// Returns the value and how many bytes it took; `Ok(None)` if `buf` holds
/// only a prefix of a value (nothing is consumed: parse again from the same
/// start with more bytes). An error does not depend on bytes after the
/// point where it was found.
pub fn parse(buf: &[u8], limits: &RespLimits) -> Result<Option<(Value, usize)>, RespError> {
    walk(buf, limits, true)
}

/// What [`parse`] would answer, without building the value: how many bytes
/// the first value takes, `Ok(None)` if it is incomplete, or the same
/// error. It copies nothing and allocates only its stack of open
/// aggregates, so a caller waiting for a large reply can ask it on every
/// read and parse only once the reply is whole.
pub fn scan(buf: &[u8], limits: &RespLimits) -> Result<Option<usize>, RespError> {
    Ok(walk(buf, limits, false)?.map(|(_, n)| n))
}

/// The parser. Without `build`, strings are not copied and aggregates keep
/// no elements: the structure is checked, the value is a placeholder.
fn walk(buf: &[u8], limits: &RespLimits, build: bool) -> Result<Option<(Value, usize)>, RespError> {
    let mut pos = 0;
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let Some((item, n)) = parse_item(&buf[pos..], limits, build)? else {
            return Ok(None);
        };
        pos += n;
        let mut value = match item {
            Item::Value(v) => v,
            Item::Open(kind, count) => {
                if stack.len() >= limits.max_depth {
                    return Err(RespError::TooDeep);
                }
                let remaining = match kind {
                    Aggregate::Map => count * 2,
                    Aggregate::Attribute => count * 2 + 1,
                    _ => count,
                };
                let frame = Frame {
                    kind,
                    remaining,
                    // Bounded by what can have arrived: each value takes at
                    // least 3 bytes.
                    items: if build {
                        Vec::with_capacity(remaining.min((buf.len() - pos) / 3))
                    } else {
                        Vec::new()
                    },
                };
                if remaining > 0 {
                    stack.push(frame);
                    continue;
                }
                frame.finish()
            }
        };
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(Some((value, pos)));
            };
            if build {
                top.items.push(value);
            }
            top.remaining -= 1;
            if top.remaining > 0 {
                break;
            }
            // Just checked: the stack is not empty.
            let Some(done) = stack.pop() else {
                break;
            };
            value = done.finish();
        }
    }
}

/// Reads one line: the bytes before CRLF, and how many bytes the line took
/// with its CRLF. At most `max` bytes before the CRLF.
fn line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    // RESP spec, "Simple strings": "the string mustn't contain a CR (\r)
    // or LF (\n) character and is terminated by CRLF (i.e., \r\n)". The
    // same holds for every line-framed value and length.
    let window = &buf[..buf.len().min(max.saturating_add(1))];
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) if buf[i] == b'\n' => Err(RespError::BareLf),
        Some(i) => match buf.get(i + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some((&buf[..i], i + 2))),
            Some(_) => Err(RespError::LoneCr),
        },
        None if buf.len() > max => Err(RespError::LineTooLong),
        None => Ok(None),
    }
}

/// A length or count line: `Some(n)`, or `None` for `-1` (a RESP2 null).
fn length(text: &[u8]) -> Result<Option<usize>, RespError> {
    // RESP spec, "Bulk strings": the length is "one or more decimal digits
    // (0..9)"; "Null bulk strings" and "Null arrays": `-1`, RESP2 only.
    match text {
        b"-1" => Ok(None),
        b"?" => Err(RespError::StreamedNotSupported),
        [] => Err(RespError::InvalidLength),
        digits if digits.iter().all(u8::is_ascii_digit) => digits
            .iter()
            .try_fold(0usize, |n, &d| {
                n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })
            .map(Some)
            .ok_or(RespError::InvalidLength),
        _ => Err(RespError::InvalidLength),
    }
}

fn integer(text: &[u8]) -> Result<i64, RespError> {
    // RESP spec, "Integers": `:[<+|->]<value>\r\n`, "a CRLF-terminated
    // string that represents a signed, base-10, 64-bit integer".
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::InvalidInteger);
    }
    let magnitude = digits
        .iter()
        .try_fold(0i128, |n, &d| {
            let n = n * 10 + i128::from(d - b'0');
            // Past this no i64 fits either way; stop before i128 overflows.
            (n <= 1 << 63).then_some(n)
        })
        .ok_or(RespError::IntegerOverflow)?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| RespError::IntegerOverflow)
}

/// RESP3 double: `[+|-]<integral>[.<fractional>][<E|e>[sign]<exponent>]`,
/// or `inf`, `-inf`, `nan`.
fn double(text: &[u8]) -> Result<f64, RespError> {
    let unsigned = match text {
        [b'-' | b'+', rest @ ..] => rest,
        rest => rest,
    };
    match unsigned {
        b"inf" => {
            return Ok(if text[0] == b'-' {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        b"nan" => return Ok(f64::NAN),
        _ => {}
    }
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = digits(unsigned);
    if i == 0 {
        return Err(RespError::InvalidDouble);
    }
    if unsigned.get(i) == Some(&b'.') {
        let f = digits(&unsigned[i + 1..]);
        if f == 0 {
            return Err(RespError::InvalidDouble);
        }
        i += 1 + f;
    }
    if let Some(b'e' | b'E') = unsigned.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = unsigned.get(i) {
            i += 1;
        }
        let e = digits(&unsigned[i..]);
        if e == 0 {
            return Err(RespError::InvalidDouble);
        }
        i += e;
    }
    if i != unsigned.len() {
        return Err(RespError::InvalidDouble);
    }
    // The grammar above is a subset of what Rust's float parser accepts,
    // and the text is ASCII.
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::InvalidDouble)
}

/// A length-prefixed payload (`$`, `!`, `=`): the bytes, or `None` for the
/// RESP2 null, and the bytes taken from the type byte on.
#[allow(clippy::type_complexity)]
fn blob<'a>(
    buf: &'a [u8],
    limits: &RespLimits,
) -> Result<Option<(Option<&'a [u8]>, usize)>, RespError> {
    let Some((text, head)) = line(&buf[1..], MAX_LENGTH_LINE)? else {
        return Ok(None);
    };
    let head = head + 1;
    let Some(len) = length(text)? else {
        return Ok(Some((None, head)));
    };
    if len > limits.max_bulk_len {
        return Err(RespError::BulkTooLong);
    }
    let rest = &buf[head..];
    if rest.len() < len.saturating_add(2) {
        // The payload may hold any byte, so the CRLF is checked only once
        // it is all here; but a wrong byte where the CRLF goes is an error
        // as soon as it arrives.
        let tail = rest.get(len..).unwrap_or(&[]);
        if !b"\r\n".starts_with(tail) {
            return Err(RespError::MissingCrlfAfterBulk);
        }
        return Ok(None);
    }
    // RESP spec, "Bulk strings": `$<length>\r\n<data>\r\n`: the final
    // CRLF is part of the framing, not optional.
    if &rest[len..len + 2] != b"\r\n" {
        return Err(RespError::MissingCrlfAfterBulk);
    }
    Ok(Some((Some(&rest[..len]), head + len + 2)))
}

fn parse_item(
    buf: &[u8],
    limits: &RespLimits,
    build: bool,
) -> Result<Option<(Item, usize)>, RespError> {
    let copy = |b: &[u8]| if build { b.to_vec() } else { Vec::new() };
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let simple_line = |max| -> Result<Option<(&[u8], usize)>, RespError> {
        Ok(line(&buf[1..], max)?.map(|(text, n)| (text, n + 1)))
    };
    let value = |v: Value, n: usize| Ok(Some((Item::Value(v), n)));
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
            let Some((text, n)) = simple_line(limits.max_line_len)? else {
                return Ok(None);
            };
            let v = match kind {
                b'+' => Value::Simple(copy(text)),
                b'-' => Value::Error(copy(text)),
                b':' => Value::Integer(integer(text)?),
                // RESP spec, "Nulls": `_\r\n`, nothing between.
                b'_' if text.is_empty() => Value::Null,
                b'_' => return Err(RespError::NullWithData),
                // RESP spec, "Booleans": `#<t|f>\r\n`.
                b'#' => match text {
                    b"t" => Value::Boolean(true),
                    b"f" => Value::Boolean(false),
                    _ => return Err(RespError::InvalidBoolean),
                },
                b',' => Value::Double(double(text)?),
                _ => {
                    let digits = match text {
                        [b'-' | b'+', rest @ ..] => rest,
                        rest => rest,
                    };
                    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                        return Err(RespError::InvalidBigNumber);
                    }
                    // One spelling: a `+` says nothing.
                    Value::BigNumber(copy(text.strip_prefix(b"+").unwrap_or(text)))
                }
            };
            value(v, n)
        }
        b'$' | b'!' | b'=' => {
            let Some((payload, n)) = blob(buf, limits)? else {
                return Ok(None);
            };
            let v = match (kind, payload) {
                (b'$', None) => Value::NullBulk,
                (b'$', Some(p)) => Value::Bulk(copy(p)),
                // RESP3 has one null, `_`; `-1` is RESP2's, and only for
                // bulk strings and arrays.
                (_, None) => return Err(RespError::InvalidLength),
                (b'!', Some(p)) => Value::BulkError(copy(p)),
                // RESP spec, "Verbatim strings": "exactly three bytes
                // represent the data's encoding", then `:`, then the data;
                // the length counts all of it.
                (_, Some(p)) => match p {
                    [a, b, c, b':', text @ ..] => Value::Verbatim {
                        format: [*a, *b, *c],
                        text: copy(text),
                    },
                    _ => return Err(RespError::VerbatimWithoutFormat),
                },
            };
            value(v, n)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some((text, n)) = simple_line(MAX_LENGTH_LINE)? else {
                return Ok(None);
            };
            // RESP spec, "Maps", "Attributes": the count is of entries
            // (pairs), so a map holds twice as many values.
            let count = match (length(text)?, kind) {
                (None, b'*') => return value(Value::NullArray, n),
                (None, _) => return Err(RespError::InvalidLength),
                (Some(c), _) => c,
            };
            if count > limits.max_aggregate_len {
                return Err(RespError::AggregateTooLong);
            }
            let aggregate = match kind {
                b'*' => Aggregate::Array,
                b'~' => Aggregate::Set,
                b'>' => Aggregate::Push,
                b'%' => Aggregate::Map,
                _ => Aggregate::Attribute,
            };
            Ok(Some((Item::Open(aggregate, count), n)))
        }
        // The chunks and terminator of streamed values.
        b';' | b'.' => Err(RespError::StreamedNotSupported),
        other => Err(RespError::UnknownType(other)),
    }
}

impl Value {
    /// Appends the value's RESP encoding to `out`. What [`parse`] accepts,
    /// `encode` writes back in one canonical spelling (no `+` signs, no
    /// leading zeros), so encoding a parsed value twice gives the same
    /// bytes.
    ///
    /// A `Simple` or `Error` built by hand with CR or LF in it has those
    /// bytes written as spaces: a value can never smuggle a second value
    /// onto the wire.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => line_value(out, b'+', s),
            Value::Error(s) => line_value(out, b'-', s),
            Value::Integer(n) => head(out, b':', &n.to_string()),
            Value::Bulk(b) => blob_value(out, b'$', b),
            Value::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Value::Array(items) => aggregate(out, b'*', items),
            Value::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Value::Null => out.extend_from_slice(b"_\r\n"),
            Value::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Value::Double(d) => head(out, b',', &double_text(*d)),
            Value::BigNumber(digits) => line_value(out, b'(', digits),
            Value::BulkError(b) => blob_value(out, b'!', b),
            Value::Verbatim { format, text } => {
                head(out, b'=', &(text.len() + 4).to_string());
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Value::Map(pairs) => map(out, b'%', pairs),
            Value::Set(items) => aggregate(out, b'~', items),
            Value::Attributed { attributes, value } => {
                map(out, b'|', attributes);
                value.encode(out);
            }
            Value::Push(items) => aggregate(out, b'>', items),
        }
    }

    /// The bytes of a string-like value (simple, bulk, verbatim).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(b) | Value::Bulk(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            Value::Attributed { value, .. } => value.as_bytes(),
            _ => None,
        }
    }

    /// An integer reply, or a string of decimal digits (how RESP2 carries
    /// numbers inside arrays, and how Lua returns them).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            Value::Attributed { value, .. } => value.as_int(),
            other => other.as_bytes().and_then(|b| integer(b).ok()),
        }
    }

    /// The elements of an array, set or push.
    pub fn as_items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) | Value::Set(items) | Value::Push(items) => Some(items),
            Value::Attributed { value, .. } => value.as_items(),
            _ => None,
        }
    }

    /// The text of an error reply (simple or bulk), `None` for any other.
    pub fn error_text(&self) -> Option<&[u8]> {
        match self {
            Value::Error(b) | Value::BulkError(b) => Some(b),
            Value::Attributed { value, .. } => value.error_text(),
            _ => None,
        }
    }

    /// Either null: RESP2's null bulk and null array, or RESP3's null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::NullBulk | Value::NullArray)
    }
}

fn head(out: &mut Vec<u8>, kind: u8, text: &str) {
    out.push(kind);
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn line_value(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn blob_value(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    head(out, kind, &bytes.len().to_string());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, kind: u8, items: &[Value]) {
    head(out, kind, &items.len().to_string());
    for item in items {
        item.encode(out);
    }
}

fn map(out: &mut Vec<u8>, kind: u8, pairs: &[(Value, Value)]) {
    head(out, kind, &pairs.len().to_string());
    for (k, v) in pairs {
        k.encode(out);
        v.encode(out);
    }
}

/// The shortest text that parses back to exactly `d`, in the RESP3 double
/// grammar (Rust's `Debug` form: `1.0`, `1e300`, `-0.0`).
fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d:?}")
    }
}

/// Appends a command as clients send it: an array of bulk strings (the
/// specification's "Sending commands to a Redis server").
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    head(out, b'*', &args.len().to_string());
    for arg in args {
        blob_value(out, b'$', arg);
    }
}

/// How many bytes [`encode_command`] writes for `args`.
pub fn command_len(args: &[&[u8]]) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    3 + digits(args.len())
        + args
            .iter()
            .map(|a| 5 + digits(a.len()) + a.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Value {
        let (v, n) = parse(bytes, &RespLimits::default())
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(bytes)))
            .unwrap_or_else(|| panic!("{:?}: incomplete", String::from_utf8_lossy(bytes)));
        assert_eq!(n, bytes.len(), "{:?}", String::from_utf8_lossy(bytes));
        // Every strict prefix is "need more", never an error.
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut], &RespLimits::default()), Ok(None));
        }
        v
    }

    /// Parses the specification's example, checks the value, and checks
    /// that encoding it gives the example back.
    fn pair(bytes: &[u8], want: Value) {
        assert_eq!(one(bytes), want);
        let mut out = Vec::new();
        want.encode(&mut out);
        assert_eq!(out, bytes, "{:?}", String::from_utf8_lossy(&out));
    }

    fn err(bytes: &[u8]) -> RespError {
        parse(bytes, &RespLimits::default()).unwrap_err()
    }

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    fn simple(s: &str) -> Value {
        Value::Simple(s.as_bytes().to_vec())
    }

    #[test]
    fn spec_simple_strings_and_errors() {
        pair(b"+OK\r\n", simple("OK"));
        pair(
            b"-Error message\r\n",
            Value::Error(b"Error message".to_vec()),
        );
        pair(
            b"-ERR unknown command 'asdf'\r\n",
            Value::Error(b"ERR unknown command 'asdf'".to_vec()),
        );
        pair(
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            Value::Error(
                b"WRONGTYPE Operation against a key holding the wrong kind of value".to_vec(),
            ),
        );
    }

    #[test]
    fn spec_integers() {
        pair(b":0\r\n", Value::Integer(0));
        pair(b":1000\r\n", Value::Integer(1000));
        pair(b":-1\r\n", Value::Integer(-1));
        assert_eq!(one(b":+5\r\n"), Value::Integer(5));
        pair(b":9223372036854775807\r\n", Value::Integer(i64::MAX));
        pair(b":-9223372036854775808\r\n", Value::Integer(i64::MIN));
        assert_eq!(err(b":9223372036854775808\r\n"), RespError::IntegerOverflow);
        assert_eq!(
            err(b":99999999999999999999999999999999999999999\r\n"),
            RespError::IntegerOverflow
        );
        assert_eq!(err(b":\r\n"), RespError::InvalidInteger);
        assert_eq!(err(b":-\r\n"), RespError::InvalidInteger);
        assert_eq!(err(b":1 \r\n"), RespError::InvalidInteger);
    }

    #[test]
    fn spec_bulk_strings() {
        pair(b"$5\r\nhello\r\n", bulk("hello"));
        pair(b"$0\r\n\r\n", bulk(""));
        pair(b"$-1\r\n", Value::NullBulk);
        // Binary-safe: CR and LF inside the payload are data.
        pair(b"$4\r\na\r\nb\r\n", bulk("a\r\nb"));
        assert_eq!(err(b"$5\r\nhelloXY"), RespError::MissingCrlfAfterBulk);
        assert_eq!(err(b"$5\r\nhelloX"), RespError::MissingCrlfAfterBulk);
        assert_eq!(err(b"$5\r\nhello\rX"), RespError::MissingCrlfAfterBulk);
        assert_eq!(err(b"$-2\r\n"), RespError::InvalidLength);
        assert_eq!(err(b"$+5\r\nhello\r\n"), RespError::InvalidLength);
        assert_eq!(err(b"$\r\n"), RespError::InvalidLength);
        assert_eq!(err(b"$?\r\n"), RespError::StreamedNotSupported);
    }

    #[test]
    fn spec_arrays() {
        pair(b"*0\r\n", Value::Array(vec![]));
        pair(
            b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n",
            Value::Array(vec![bulk("hello"), bulk("world")]),
        );
        pair(
            b"*3\r\n:1\r\n:2\r\n:3\r\n",
            Value::Array(vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3),
            ]),
        );
        pair(
            b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n$5\r\nhello\r\n",
            Value::Array(vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3),
                Value::Integer(4),
                bulk("hello"),
            ]),
        );
        pair(
            b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
            Value::Array(vec![
                Value::Array(vec![
                    Value::Integer(1),
                    Value::Integer(2),
                    Value::Integer(3),
                ]),
                Value::Array(vec![simple("Hello"), Value::Error(b"World".to_vec())]),
            ]),
        );
        pair(b"*-1\r\n", Value::NullArray);
        pair(
            b"*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n",
            Value::Array(vec![bulk("hello"), Value::NullBulk, bulk("world")]),
        );
    }

    #[test]
    fn spec_resp3_scalars() {
        pair(b"_\r\n", Value::Null);
        pair(b"#t\r\n", Value::Boolean(true));
        pair(b"#f\r\n", Value::Boolean(false));
        pair(b",1.23\r\n", Value::Double(1.23));
        pair(b",inf\r\n", Value::Double(f64::INFINITY));
        pair(b",-inf\r\n", Value::Double(f64::NEG_INFINITY));
        assert!(matches!(one(b",nan\r\n"), Value::Double(d) if d.is_nan()));
        // "the integral part only" and exponents are allowed; ours come
        // back in the shortest exact form.
        assert_eq!(one(b",10\r\n"), Value::Double(10.0));
        assert_eq!(one(b",1.5E+3\r\n"), Value::Double(1500.0));
        pair(b",1e300\r\n", Value::Double(1e300));
        pair(
            b"(3492890328409238509324850943850943825024385\r\n",
            Value::BigNumber(b"3492890328409238509324850943850943825024385".to_vec()),
        );
        pair(b"(-1\r\n", Value::BigNumber(b"-1".to_vec()));
        assert_eq!(one(b"(+12\r\n"), Value::BigNumber(b"12".to_vec()));
        pair(
            b"!21\r\nSYNTAX invalid syntax\r\n",
            Value::BulkError(b"SYNTAX invalid syntax".to_vec()),
        );
        pair(
            b"=15\r\ntxt:Some string\r\n",
            Value::Verbatim {
                format: *b"txt",
                text: b"Some string".to_vec(),
            },
        );
        assert_eq!(err(b"_x\r\n"), RespError::NullWithData);
        assert_eq!(err(b"#x\r\n"), RespError::InvalidBoolean);
        assert_eq!(err(b",1.\r\n"), RespError::InvalidDouble);
        assert_eq!(err(b",.5\r\n"), RespError::InvalidDouble);
        assert_eq!(err(b",1e\r\n"), RespError::InvalidDouble);
        assert_eq!(err(b",infinity\r\n"), RespError::InvalidDouble);
        assert_eq!(err(b"(\r\n"), RespError::InvalidBigNumber);
        assert_eq!(err(b"(12a\r\n"), RespError::InvalidBigNumber);
        assert_eq!(err(b"=3\r\ntxt\r\n"), RespError::VerbatimWithoutFormat);
        assert_eq!(err(b"!-1\r\n"), RespError::InvalidLength);
    }

    #[test]
    fn spec_resp3_aggregates() {
        pair(
            b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            Value::Map(vec![
                (simple("first"), Value::Integer(1)),
                (simple("second"), Value::Integer(2)),
            ]),
        );
        pair(
            b"~2\r\n+a\r\n:1\r\n",
            Value::Set(vec![simple("a"), Value::Integer(1)]),
        );
        // The specification's attribute example: a map of popularity
        // scores, then the array it annotates.
        pair(
            b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
            Value::Attributed {
                attributes: vec![(
                    simple("key-popularity"),
                    Value::Map(vec![
                        (bulk("a"), Value::Double(0.1923)),
                        (bulk("b"), Value::Double(0.0012)),
                    ]),
                )],
                value: Box::new(Value::Array(vec![
                    Value::Integer(2039123),
                    Value::Integer(9543892),
                ])),
            },
        );
        pair(
            b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n",
            Value::Push(vec![bulk("message"), bulk("news"), bulk("hello")]),
        );
        pair(b"%0\r\n", Value::Map(vec![]));
        assert_eq!(err(b"%-1\r\n"), RespError::InvalidLength);
        assert_eq!(err(b"*?\r\n"), RespError::StreamedNotSupported);
        assert_eq!(err(b";4\r\nHell\r\n"), RespError::StreamedNotSupported);
    }

    #[test]
    fn line_endings_are_crlf_only() {
        assert_eq!(err(b"+OK\n"), RespError::BareLf);
        assert_eq!(err(b"+O\rK\r\n"), RespError::LoneCr);
        assert_eq!(err(b"*1\n"), RespError::BareLf);
        // A CR at the very end may still be followed by LF.
        assert_eq!(parse(b"+OK\r", &RespLimits::default()), Ok(None));
    }

    #[test]
    fn unknown_type_byte_is_named() {
        assert_eq!(err(b"@x\r\n"), RespError::UnknownType(b'@'));
        // An inline command is what a client sends, never a reply.
        assert_eq!(err(b"PING\r\n"), RespError::UnknownType(b'P'));
    }

    #[test]
    fn limits_are_checked_before_the_payload_arrives() {
        let limits = RespLimits {
            max_bulk_len: 4,
            max_aggregate_len: 2,
            max_depth: 3,
            max_line_len: 5,
        };
        assert_eq!(parse(b"$5\r\n", &limits), Err(RespError::BulkTooLong));
        assert!(parse(b"$4\r\nabcd\r\n", &limits).unwrap().is_some());
        assert_eq!(parse(b"*3\r\n", &limits), Err(RespError::AggregateTooLong));
        assert_eq!(parse(b"%3\r\n", &limits), Err(RespError::AggregateTooLong));
        assert_eq!(
            parse(b"*1\r\n*1\r\n*1\r\n*1\r\n", &limits),
            Err(RespError::TooDeep)
        );
        assert!(parse(b"*1\r\n*1\r\n*1\r\n:1\r\n", &limits)
            .unwrap()
            .is_some());
        assert_eq!(parse(b"+abcdef", &limits), Err(RespError::LineTooLong));
        assert_eq!(parse(b"+abcde", &limits), Ok(None));
        assert!(parse(b"+abcde\r\n", &limits).unwrap().is_some());
        assert_eq!(
            parse(b"$123456789012345678901", &limits),
            Err(RespError::LineTooLong)
        );
        assert_eq!(
            parse(b"$99999999999999999999999\r\n", &RespLimits::default()),
            Err(RespError::LineTooLong)
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let input = b"*1\r\n".repeat(100_000);
        assert_eq!(err(&input), RespError::TooDeep);
        let limits = RespLimits {
            max_depth: usize::MAX,
            ..RespLimits::default()
        };
        let mut input = b"*1\r\n".repeat(100_000);
        input.extend_from_slice(b"_\r\n");
        let (v, n) = parse(&input, &limits).unwrap().unwrap();
        assert_eq!(n, input.len());
        // Dropping a deep value recurses too; unwrap it iteratively.
        let mut v = v;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap();
        }
        assert_eq!(v, Value::Null);
    }

    #[test]
    fn a_huge_announced_count_allocates_nothing_up_front() {
        let limits = RespLimits {
            max_aggregate_len: usize::MAX / 4,
            ..RespLimits::default()
        };
        assert_eq!(parse(b"*1000000000000\r\n:1\r\n", &limits), Ok(None));
        assert_eq!(parse(b"%1000000000000\r\n", &limits), Ok(None));
    }

    #[test]
    fn scan_agrees_with_parse_without_building() {
        let l = RespLimits::default();
        for input in [
            &b"*2\r\n$5\r\nhello\r\n%1\r\n+a\r\n|1\r\n+k\r\n:1\r\n:2\r\n"[..],
            b"*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nwor",
            b"*1\r\n+OK\n",
            b"=3\r\ntxt\r\n",
        ] {
            for cut in 0..=input.len() {
                let part = &input[..cut];
                assert_eq!(
                    scan(part, &l),
                    parse(part, &l).map(|v| v.map(|(_, n)| n)),
                    "{:?}",
                    String::from_utf8_lossy(part)
                );
            }
        }
    }

    #[test]
    fn values_follow_one_another_in_a_buffer() {
        let buf = b"+OK\r\n:1\r\n$-1\r\n";
        let l = RespLimits::default();
        let (a, n) = parse(buf, &l).unwrap().unwrap();
        let (b, m) = parse(&buf[n..], &l).unwrap().unwrap();
        let (c, k) = parse(&buf[n + m..], &l).unwrap().unwrap();
        assert_eq!(
            (a, b, c),
            (simple("OK"), Value::Integer(1), Value::NullBulk)
        );
        assert_eq!(n + m + k, buf.len());
    }

    #[test]
    fn encode_neutralises_cr_lf_in_simple_strings() {
        let mut out = Vec::new();
        Value::Simple(b"OK\r\n+PWNED".to_vec()).encode(&mut out);
        assert_eq!(out, b"+OK  +PWNED\r\n");
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        // The specification's example: LLEN mylist.
        let mut out = Vec::new();
        encode_command(&mut out, &[b"LLEN", b"mylist"]);
        assert_eq!(out, b"*2\r\n$4\r\nLLEN\r\n$6\r\nmylist\r\n");
        assert_eq!(command_len(&[b"LLEN", b"mylist"]), out.len());
        let long = vec![b'x'; 12345];
        let args: [&[u8]; 3] = [b"SET", b"", &long];
        let mut out = Vec::new();
        encode_command(&mut out, &args);
        assert_eq!(command_len(&args), out.len());
        assert_eq!(
            one(&out),
            Value::Array(vec![bulk("SET"), bulk(""), Value::Bulk(long)])
        );
    }
}

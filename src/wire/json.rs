//! JSON (RFC 8259): a strict, bounded reader, a validator that builds
//! nothing, and the writers for everything the server sends.
//!
//! Before working on this file, read RFC 8259 §2 (the grammar), §6
//! (numbers), §7 (strings) and §8.1 (UTF-8). The server reads JSON in
//! three places: a JSON payload is validated on every publish
//! ([`validate`]), a `/ws` command is taken apart member by member
//! ([`members`]), and token claims are read as a tree ([`parse_with`]).
//! Clients and tests read the server's answers with [`parse`].
//!
//! Strict means: exactly the RFC 8259 grammar and nothing more. No
//! comments, no trailing commas, no single quotes, no leading zeros, no
//! `NaN`, no lone surrogates, no raw control characters in strings, no
//! byte order mark, no bytes after the value but whitespace, and only
//! UTF-8. An object with the same key twice is refused too: RFC 8259 §4
//! says names SHOULD be unique and that receivers disagree about
//! duplicates (first wins, last wins, error), and RFC 7493 §2.3 (I-JSON)
//! makes it a MUST NOT. Disagreeing parsers are how a value means one
//! thing to a checker and another to its user — a token whose `publish`
//! claim is read one way by us and another by the service that minted it.
//!
//! Bounded means: every size has a limit in [`JsonLimits`] (the text, each
//! string, the nesting, so a hostile `[[[[…` cannot exhaust the stack),
//! every step consumes input, and duplicate keys are found with a hash set
//! once an object is large, so a 1 MiB object of distinct keys costs
//! linear time, not quadratic.
//!
//! [`validate`] and [`parse_with`] are one parser instantiated twice (a
//! `Build` that builds a [`Value`], and one that builds nothing), so the
//! validator cannot accept a text the reader refuses, or refuse one it
//! accepts, and both report the same error at the same offset.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// The deepest nesting of arrays and objects [`parse`] accepts (and the
/// default [`JsonLimits::max_depth`]). The shapes pushwire sends are two
/// levels deep.
pub const MAX_DEPTH: usize = 64;

/// The reader recurses once per level of nesting, so however large
/// [`JsonLimits::max_depth`] is set, nesting deeper than this is refused:
/// a configuration must not be able to turn a hostile `[[[[…` into a
/// stack overflow.
pub const DEPTH_CAP: usize = 1024;

/// How much JSON the reader takes. Each limit, when reached, refuses the
/// whole text with the [`Rule`] named below; nothing is truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonLimits {
    /// Deepest nesting of arrays and objects (a scalar is depth 0,
    /// `[1]` depth 1). Deeper: [`Rule::TooDeep`] (400). Capped at
    /// [`DEPTH_CAP`].
    pub max_depth: usize,
    /// Longest text, in bytes. Longer: [`Rule::TooLarge`] (413), before any
    /// of it is read.
    pub max_bytes: usize,
    /// Longest string or member name, counted in bytes as written between
    /// its quotes (an escape counts as its length in the text). Longer:
    /// [`Rule::StringTooLong`] (400).
    pub max_string_bytes: usize,
}

impl Default for JsonLimits {
    /// The server's limits for a payload: 64 levels, 1 MiB (the default
    /// largest message), strings as long as the text.
    fn default() -> Self {
        JsonLimits {
            max_depth: MAX_DEPTH,
            max_bytes: 1024 * 1024,
            max_string_bytes: 1024 * 1024,
        }
    }
}

impl JsonLimits {
    /// The limits [`parse`] reads with: nesting bounded by [`MAX_DEPTH`],
    /// sizes bounded only by the text itself, which the caller already
    /// holds whole (a response it chose to read).
    pub const fn caller_bounded() -> JsonLimits {
        JsonLimits {
            max_depth: MAX_DEPTH,
            max_bytes: usize::MAX,
            max_string_bytes: usize::MAX,
        }
    }

    /// The payload limits for a server whose largest message is
    /// `max_message_bytes`.
    pub fn from_config(c: &crate::Config) -> JsonLimits {
        JsonLimits {
            max_depth: MAX_DEPTH,
            max_bytes: c.max_message_bytes,
            max_string_bytes: c.max_message_bytes,
        }
    }

    fn depth(&self) -> usize {
        self.max_depth.min(DEPTH_CAP)
    }
}

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every JSON number is read as an `f64`, as JavaScript reads it; one
    /// the `f64` would round keeps its text too (see [`Number`]).
    Number(Number),
    String(String),
    Array(Vec<Value>),
    /// Members in the order they were written (keys are unique).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member named `key`, if this is an object that has one.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(n.value()),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(Number::from(n))
    }
}

/// A JSON number: the `f64` it reads as, and its text when that `f64`,
/// written back, would be another number.
///
/// RFC 8259 §6: "A JSON number such as 1E400 or
/// 3.141592653589793238462643383279 may indicate potential
/// interoperability problems, since it suggests that the software that
/// created it expects receiving software to have greater capabilities for
/// numeric magnitude and precision than is widely available." The server
/// is rarely that receiving software: it relays what one client wrote to
/// others. A 64-bit id from a client that is not JavaScript
/// (`12345678901234567890`) reads as an `f64` that writes as
/// `12345678901234567000`, so such a number keeps its text, and every
/// writer here writes that text. A number the `f64` says exactly
/// (`1`, `0.1`, `1E+2`) keeps none, so a tree of ordinary numbers costs
/// no allocation for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    value: f64,
    /// `Some` only when [`Number::value`] does not say the same decimal.
    text: Option<Box<str>>,
}

impl Number {
    /// The number as JavaScript reads it (infinity past the `f64` range).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The text it was written as, when [`Number::value`] would round it.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// `text` is a number the §6 grammar accepted.
    fn read(text: &str) -> Number {
        // The §6 grammar is a subset of what `f64::from_str` accepts, so
        // this cannot fail; a huge exponent reads as infinity, as in
        // JavaScript.
        let value = text.parse().unwrap_or(f64::NAN);
        let text = (!says_exactly(value, text)).then(|| text.into());
        Number { value, text }
    }
}

impl From<f64> for Number {
    fn from(value: f64) -> Number {
        Number { value, text: None }
    }
}

/// Whether `value`, written as its shortest decimal (which is how every
/// writer here writes an `f64`), is the same number as `text`, a §6
/// number that reads as `value`.
fn says_exactly(value: f64, text: &str) -> bool {
    if !value.is_finite() {
        return false;
    }
    // At most 15 significant digits survive a trip through an `f64` in
    // its normal range (DBL_DIG), so the shortest decimal of that `f64`
    // is this one. Longer, subnormal or underflowed: compare.
    let digits = significant_digits(text);
    if digits <= 15 && (value.is_normal() || digits == 0) {
        return true;
    }
    // `Display` for `f64` is the shortest decimal that reads back exactly.
    Decimal::of(&value.to_string()) == Decimal::of(text)
}

/// How many digits of a §6 number's mantissa lie between its first and
/// last nonzero digit (`0.0120e5`: 2), without building anything.
fn significant_digits(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let mut digits = mantissa.bytes().filter(u8::is_ascii_digit);
    if !digits.any(|d| d != b'0') {
        return 0;
    }
    // `digits` now stands after the first nonzero digit.
    let mut count = 1;
    let mut run = 0;
    for d in digits {
        run += 1;
        if d != b'0' {
            count += run;
            run = 0;
        }
    }
    count
}

/// A decimal number reduced to compare: `±digits × 10^exponent`, with no
/// leading or trailing zeros in `digits` (zero: no digits, not negative).
#[derive(Debug, PartialEq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// `text` in the §6 grammar: `[-] int [. frac] [e [+|-] exp]`.
    fn of(text: &str) -> Decimal {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
            None => (unsigned, "0"),
        };
        let (exp_negative, exp_digits) = match exp.as_bytes().first() {
            Some(b'-') => (true, &exp[1..]),
            Some(b'+') => (false, &exp[1..]),
            _ => (false, exp),
        };
        // Saturates: an exponent that large is an infinity or a zero,
        // which is decided before the exponent matters.
        let magnitude = exp_digits.bytes().fold(0i64, |e, d| {
            e.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
        let frac_len = mantissa.find('.').map_or(0, |dot| mantissa.len() - dot - 1);
        let all: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        let Some(first) = all.iter().position(|&d| d != b'0') else {
            return Decimal {
                negative: false,
                digits: Vec::new(),
                exponent: 0,
            };
        };
        let last = all.iter().rposition(|&d| d != b'0').unwrap_or(first);
        let trailing = (all.len() - 1 - last) as i64;
        let exponent = if exp_negative { -magnitude } else { magnitude };
        Decimal {
            negative,
            digits: all[first..=last].to_vec(),
            exponent: exponent
                .saturating_sub(frac_len as i64)
                .saturating_add(trailing),
        }
    }
}

impl fmt::Display for Value {
    /// The value as compact JSON text, as [`write_value`] writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        write_value(&mut out, self);
        // The writer emits UTF-8: it copies `str`s and ASCII.
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Why a text is not the JSON this parser accepts, and where (a byte
/// offset into the input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {rule}")]
pub struct JsonError {
    pub offset: usize,
    pub rule: Rule,
}

impl JsonError {
    /// The HTTP status to answer a publisher with: 413 for a text over
    /// [`JsonLimits::max_bytes`], 400 for everything else.
    pub fn status(&self) -> u16 {
        match self.rule {
            Rule::TooLarge => 413,
            _ => 400,
        }
    }
}

/// The rule a text broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The text ended inside a value.
    UnexpectedEnd,
    /// A byte that no rule of the grammar allows here.
    UnexpectedByte(u8),
    /// RFC 8259 §2: only whitespace may follow the value.
    TrailingCharacters,
    /// Nesting deeper than [`JsonLimits::max_depth`].
    TooDeep,
    /// RFC 8259 §6: `int = zero / ( digit1-9 *DIGIT )`.
    LeadingZero,
    /// RFC 8259 §6: a fraction or exponent needs at least one digit.
    MissingDigits,
    /// RFC 8259 §7: control characters must be escaped.
    RawControlCharacter,
    /// RFC 8259 §7: the escapes are `\" \\ \/ \b \f \n \r \t \uXXXX`.
    InvalidEscape,
    /// RFC 8259 §7 and §8.2: a `\uD800`–`\uDBFF` escape must be followed
    /// by a `\uDC00`–`\uDFFF` one, and a low surrogate never stands alone.
    LoneSurrogate,
    /// RFC 8259 §4: names SHOULD be unique; we require it (RFC 7493 §2.3).
    DuplicateKey,
    /// RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8.
    InvalidUtf8,
    /// The text is longer than [`JsonLimits::max_bytes`].
    TooLarge,
    /// A string is longer than [`JsonLimits::max_string_bytes`].
    StringTooLong,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::UnexpectedEnd => f.write_str("unexpected end of input"),
            Rule::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            Rule::TrailingCharacters => f.write_str("characters after the value"),
            Rule::TooDeep => f.write_str("nested too deep"),
            Rule::LeadingZero => f.write_str("number with a leading zero"),
            Rule::MissingDigits => f.write_str("fraction or exponent without digits"),
            Rule::RawControlCharacter => f.write_str("unescaped control character in a string"),
            Rule::InvalidEscape => f.write_str("invalid escape in a string"),
            Rule::LoneSurrogate => f.write_str("unpaired surrogate escape"),
            Rule::DuplicateKey => f.write_str("duplicate object key"),
            Rule::InvalidUtf8 => f.write_str("not UTF-8"),
            Rule::TooLarge => f.write_str("text too large"),
            Rule::StringTooLong => f.write_str("string too long"),
        }
    }
}

/// Parses `text` as exactly one JSON value (RFC 8259 §2: `JSON-text = ws
/// value ws`), with [`JsonLimits::caller_bounded`].
pub fn parse(text: &str) -> Result<Value, JsonError> {
    parse_with(text, &JsonLimits::caller_bounded())
}

/// Parses `text` as exactly one JSON value within `limits`.
pub fn parse_with(text: &str, limits: &JsonLimits) -> Result<Value, JsonError> {
    let mut p = Parser::new(text, limits)?;
    let value = p.value::<Tree>(0)?;
    p.finish()?;
    Ok(value)
}

/// Parses bytes as received (RFC 8259 §8.1: they must be UTF-8).
pub fn parse_bytes(bytes: &[u8], limits: &JsonLimits) -> Result<Value, JsonError> {
    parse_with(utf8(bytes, limits)?, limits)
}

/// Whether `bytes` are exactly one JSON value within `limits` — the same
/// answer, and the same error, as [`parse_bytes`], without building the
/// value: only member names are decoded (to find duplicates).
pub fn validate(bytes: &[u8], limits: &JsonLimits) -> Result<(), JsonError> {
    let mut p = Parser::new(utf8(bytes, limits)?, limits)?;
    p.value::<Check>(0)?;
    p.finish()
}

/// Reads `text` as a JSON object one level deep: each member's decoded
/// name and its value's text exactly as written (validated, whitespace
/// around it trimmed), in order. This is how a command is taken apart
/// without building a tree, and how a JSON payload inside one is kept as
/// its own bytes. A text that is not an object is
/// [`Rule::UnexpectedByte`] at its first byte.
pub fn members<'a>(
    text: &'a str,
    limits: &JsonLimits,
) -> Result<Vec<(Cow<'a, str>, &'a str)>, JsonError> {
    let mut p = Parser::new(text, limits)?;
    let mut out = Vec::new();
    if p.peek()? != b'{' {
        return Err(p.unexpected());
    }
    if p.depth_limit == 0 {
        return Err(p.err(Rule::TooDeep));
    }
    let mut keys = KeySet::default();
    if p.open(b'{', b'}')? {
        loop {
            let key = p.key(&mut keys)?;
            let start = p.pos;
            p.value::<Check>(1)?;
            out.push((key, &text[start..p.pos]));
            if !p.next(b'}')? {
                break;
            }
        }
    }
    p.finish()?;
    Ok(out)
}

/// Decodes one JSON string literal (quotes included, nothing around it):
/// how a caller of [`members`] reads a member that should be a string.
/// `None` if `literal` is not exactly one string.
pub fn decode_string<'a>(literal: &'a str, limits: &JsonLimits) -> Option<Cow<'a, str>> {
    let mut p = Parser::new(literal, limits).ok()?;
    if p.peek().ok()? != b'"' {
        return None;
    }
    let s = p.string(true).ok()?;
    (p.pos == literal.len()).then_some(s)
}

/// The size limit, checked before a byte is parsed.
fn size(len: usize, limits: &JsonLimits) -> Result<(), JsonError> {
    if len > limits.max_bytes {
        return Err(JsonError {
            offset: limits.max_bytes,
            rule: Rule::TooLarge,
        });
    }
    Ok(())
}

/// RFC 8259 §8.1: "JSON text exchanged between systems that are not part
/// of a closed ecosystem MUST be encoded using UTF-8". Checked once, up
/// front (after the size), so the parser can copy runs of text whole.
fn utf8<'a>(bytes: &'a [u8], limits: &JsonLimits) -> Result<&'a str, JsonError> {
    size(bytes.len(), limits)?;
    std::str::from_utf8(bytes).map_err(|e| JsonError {
        offset: e.valid_up_to(),
        rule: Rule::InvalidUtf8,
    })
}

/// What the parser makes of each value it reads: a [`Value`] tree, or
/// nothing at all. One grammar, two outputs, so they cannot disagree.
trait Build<'a> {
    type Value;
    type Array;
    type Object;
    /// Whether string values are decoded into their text (member names
    /// always are).
    const DECODES: bool;
    fn null() -> Self::Value;
    fn boolean(b: bool) -> Self::Value;
    /// `text` is a number the RFC 8259 §6 grammar accepted.
    fn number(text: &'a str) -> Self::Value;
    fn string(s: Cow<'a, str>) -> Self::Value;
    fn array() -> Self::Array;
    fn push(array: &mut Self::Array, v: Self::Value);
    fn end_array(array: Self::Array) -> Self::Value;
    fn object() -> Self::Object;
    fn member(object: &mut Self::Object, key: Cow<'a, str>, v: Self::Value);
    fn end_object(object: Self::Object) -> Self::Value;
}

/// Builds a [`Value`].
struct Tree;

impl<'a> Build<'a> for Tree {
    type Value = Value;
    type Array = Vec<Value>;
    type Object = Vec<(String, Value)>;
    const DECODES: bool = true;
    fn null() -> Value {
        Value::Null
    }
    fn boolean(b: bool) -> Value {
        Value::Bool(b)
    }
    fn number(text: &'a str) -> Value {
        Value::Number(Number::read(text))
    }
    fn string(s: Cow<'a, str>) -> Value {
        Value::String(s.into_owned())
    }
    fn array() -> Vec<Value> {
        Vec::new()
    }
    fn push(array: &mut Vec<Value>, v: Value) {
        array.push(v);
    }
    fn end_array(array: Vec<Value>) -> Value {
        Value::Array(array)
    }
    fn object() -> Vec<(String, Value)> {
        Vec::new()
    }
    fn member(object: &mut Vec<(String, Value)>, key: Cow<'a, str>, v: Value) {
        object.push((key.into_owned(), v));
    }
    fn end_object(object: Vec<(String, Value)>) -> Value {
        Value::Object(object)
    }
}

/// Builds nothing: the validator.
struct Check;

impl<'a> Build<'a> for Check {
    type Value = ();
    type Array = ();
    type Object = ();
    const DECODES: bool = false;
    fn null() {}
    fn boolean(_: bool) {}
    fn number(_: &'a str) {}
    fn string(_: Cow<'a, str>) {}
    fn array() {}
    fn push(_: &mut (), _: ()) {}
    fn end_array(_: ()) {}
    fn object() {}
    fn member(_: &mut (), _: Cow<'a, str>, _: ()) {}
    fn end_object(_: ()) {}
}

/// The member names of one object so far. A few are compared one by one;
/// past [`KeySet::LINEAR`] they move into a hash set, so an object of many
/// distinct keys costs linear time (a quadratic scan of a 1 MiB object of
/// 100,000 keys would be billions of comparisons: a denial of service).
#[derive(Default)]
struct KeySet<'a> {
    few: Vec<Cow<'a, str>>,
    many: HashSet<Cow<'a, str>>,
}

impl<'a> KeySet<'a> {
    const LINEAR: usize = 8;

    /// Adds `key`; false if it was there already.
    fn insert(&mut self, key: Cow<'a, str>) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&key) {
                return false;
            }
            if self.few.len() < Self::LINEAR {
                self.few.push(key);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(key)
    }
}

struct Parser<'a> {
    b: &'a [u8],
    /// The same bytes as a `str`, to copy runs of UTF-8 out whole.
    text: &'a str,
    pos: usize,
    depth_limit: usize,
    max_string_bytes: usize,
}

impl<'a> Parser<'a> {
    /// A parser at the first byte of the value (leading whitespace
    /// skipped), or the size error.
    fn new(text: &'a str, limits: &JsonLimits) -> Result<Parser<'a>, JsonError> {
        size(text.len(), limits)?;
        let mut p = Parser {
            b: text.as_bytes(),
            text,
            pos: 0,
            depth_limit: limits.depth(),
            max_string_bytes: limits.max_string_bytes,
        };
        p.skip_ws();
        Ok(p)
    }

    /// RFC 8259 §2: only whitespace may follow the value.
    fn finish(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.pos != self.b.len() {
            return Err(self.err(Rule::TrailingCharacters));
        }
        Ok(())
    }

    fn err(&self, rule: Rule) -> JsonError {
        JsonError {
            offset: self.pos,
            rule,
        }
    }

    fn peek(&self) -> Result<u8, JsonError> {
        self.b
            .get(self.pos)
            .copied()
            .ok_or(self.err(Rule::UnexpectedEnd))
    }

    fn unexpected(&self) -> JsonError {
        match self.b.get(self.pos) {
            Some(&b) => self.err(Rule::UnexpectedByte(b)),
            None => self.err(Rule::UnexpectedEnd),
        }
    }

    /// RFC 8259 §2: `ws = *( %x20 / %x09 / %x0A / %x0D )`.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.b.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn literal<B: Build<'a>>(
        &mut self,
        word: &[u8],
        value: B::Value,
    ) -> Result<B::Value, JsonError> {
        for &w in word {
            self.expect(w)?;
        }
        Ok(value)
    }

    /// One value; `depth` is the nesting of the container it is in.
    fn value<B: Build<'a>>(&mut self, depth: usize) -> Result<B::Value, JsonError> {
        match self.peek()? {
            b'{' => self.object::<B>(depth + 1),
            b'[' => self.array::<B>(depth + 1),
            b'"' => self.string(B::DECODES).map(B::string),
            b't' => self.literal::<B>(b"true", B::boolean(true)),
            b'f' => self.literal::<B>(b"false", B::boolean(false)),
            b'n' => self.literal::<B>(b"null", B::null()),
            b'-' | b'0'..=b'9' => self.number().map(B::number),
            _ => Err(self.unexpected()),
        }
    }

    /// Consumes `open` and the whitespace after it; false if the container
    /// is empty (its `close` consumed too).
    fn open(&mut self, open: u8, close: u8) -> Result<bool, JsonError> {
        self.expect(open)?;
        self.skip_ws();
        if self.peek()? == close {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a member or element: true at a `,` (another follows), false
    /// at `close` (consumed).
    fn next(&mut self, close: u8) -> Result<bool, JsonError> {
        self.skip_ws();
        match self.peek()? {
            b',' => {
                self.pos += 1;
                self.skip_ws();
                Ok(true)
            }
            b if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// A member name and its `:`, refused if `keys` has it already.
    fn key(&mut self, keys: &mut KeySet<'a>) -> Result<Cow<'a, str>, JsonError> {
        let key_at = self.pos;
        if self.peek()? != b'"' {
            return Err(self.unexpected());
        }
        let key = self.string(true)?;
        if !keys.insert(key.clone()) {
            return Err(JsonError {
                offset: key_at,
                rule: Rule::DuplicateKey,
            });
        }
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Ok(key)
    }

    fn object<B: Build<'a>>(&mut self, depth: usize) -> Result<B::Value, JsonError> {
        if depth > self.depth_limit {
            return Err(self.err(Rule::TooDeep));
        }
        let mut object = B::object();
        if self.open(b'{', b'}')? {
            let mut keys = KeySet::default();
            loop {
                let key = self.key(&mut keys)?;
                let value = self.value::<B>(depth)?;
                B::member(&mut object, key, value);
                if !self.next(b'}')? {
                    break;
                }
            }
        }
        Ok(B::end_object(object))
    }

    fn array<B: Build<'a>>(&mut self, depth: usize) -> Result<B::Value, JsonError> {
        if depth > self.depth_limit {
            return Err(self.err(Rule::TooDeep));
        }
        let mut array = B::array();
        if self.open(b'[', b']')? {
            loop {
                let value = self.value::<B>(depth)?;
                B::push(&mut array, value);
                if !self.next(b']')? {
                    break;
                }
            }
        }
        Ok(B::end_array(array))
    }

    /// RFC 8259 §6:
    /// `number = [ minus ] int [ frac ] [ exp ]`,
    /// `int = zero / ( digit1-9 *DIGIT )`, `frac = "." 1*DIGIT`,
    /// `exp = ("e" / "E") [ "-" / "+" ] 1*DIGIT`.
    fn number(&mut self) -> Result<&'a str, JsonError> {
        let start = self.pos;
        if self.b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.b.get(self.pos) {
                    return Err(self.err(Rule::LeadingZero));
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return Err(self.unexpected()),
        }
        if self.b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.b.get(self.pos) {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        Ok(&self.text[start..self.pos])
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(match self.b.get(self.pos) {
                None => self.err(Rule::UnexpectedEnd),
                Some(_) => self.err(Rule::MissingDigits),
            });
        }
        Ok(())
    }

    /// RFC 8259 §7. The input is a `&str`, so it is valid UTF-8 already:
    /// runs of ordinary characters are copied whole, and only escapes are
    /// decoded one by one. A string without escapes is borrowed from the
    /// text. With `decode` false the escapes are checked, not decoded,
    /// and the result is empty.
    fn string(&mut self, decode: bool) -> Result<Cow<'a, str>, JsonError> {
        let quote_at = self.pos;
        self.expect(b'"')?;
        let start = self.pos;
        let mut out: Option<String> = None;
        loop {
            let run_start = self.pos;
            while let Some(&b) = self.b.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            if self.pos - start > self.max_string_bytes {
                return Err(JsonError {
                    offset: quote_at,
                    rule: Rule::StringTooLong,
                });
            }
            // Stopped at an ASCII byte (or the end), so this is a char
            // boundary.
            let run = &self.text[run_start..self.pos];
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(match out {
                        Some(mut s) => {
                            s.push_str(run);
                            Cow::Owned(s)
                        }
                        None if decode => Cow::Borrowed(&self.text[start..self.pos - 1]),
                        None => Cow::Borrowed(""),
                    });
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.escape()?;
                    if decode {
                        let s =
                            out.get_or_insert_with(|| String::with_capacity(self.pos - start + 16));
                        s.push_str(run);
                        s.push(c);
                    }
                }
                _ => return Err(self.err(Rule::RawControlCharacter)),
            }
        }
    }

    /// The escape after a backslash.
    fn escape(&mut self) -> Result<char, JsonError> {
        let c = match self.peek()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let at = self.pos - 1;
                self.pos += 1;
                let unit = self.hex4()?;
                return match unit {
                    // A high surrogate: its low half must follow at once.
                    0xD800..=0xDBFF => {
                        if self.b.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(JsonError {
                                offset: at,
                                rule: Rule::LoneSurrogate,
                            });
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(JsonError {
                                offset: at,
                                rule: Rule::LoneSurrogate,
                            });
                        }
                        let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        // Always a valid scalar value: 0x10000..=0x10FFFF.
                        char::from_u32(scalar).ok_or(JsonError {
                            offset: at,
                            rule: Rule::LoneSurrogate,
                        })
                    }
                    0xDC00..=0xDFFF => Err(JsonError {
                        offset: at,
                        rule: Rule::LoneSurrogate,
                    }),
                    // Outside the surrogate range every u16 is a scalar.
                    _ => char::from_u32(unit).ok_or(JsonError {
                        offset: at,
                        rule: Rule::LoneSurrogate,
                    }),
                };
            }
            _ => return Err(self.err(Rule::InvalidEscape)),
        };
        self.pos += 1;
        Ok(c)
    }

    /// Four hex digits of a `\u` escape (either case, RFC 8259 §7).
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut n = 0;
        for _ in 0..4 {
            let b = self.peek()?;
            let digit = (b as char)
                .to_digit(16)
                .ok_or(self.err(Rule::InvalidEscape))?;
            n = n * 16 + digit;
            self.pos += 1;
        }
        Ok(n)
    }
}

// ---- Writing ---------------------------------------------------------

/// Appends `s` as a JSON string literal, quotes included.
///
/// Escaped: `"` and `\` (RFC 8259 §7: "the characters that MUST be escaped:
/// quotation mark, reverse solidus, and the control characters (U+0000
/// through U+001F)"), the control characters themselves, and U+2028 LINE
/// SEPARATOR / U+2029 PARAGRAPH SEPARATOR. JSON allows those two raw, but
/// JavaScript before ES2019 treats them as line terminators inside a string
/// literal, so a raw one breaks `eval` and older JSONP-style consumers;
/// `\u2028` costs five bytes and breaks nothing. Every other character
/// (including all non-ASCII) is copied as UTF-8, which RFC 8259 §8.1
/// requires of JSON exchanged between systems.
///
/// Fast path: a table marks the few bytes that may need an escape, the
/// text is scanned for the next one, and the run before it is copied whole,
/// so ordinary text costs one scan and one copy.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[run_start..]` is not written yet; `i` is where scanning resumes.
    let mut run_start = 0;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| MAY_ESCAPE[usize::from(b)]) {
        i += offset;
        let b = bytes[i];
        let control: [u8; 6];
        // The escape, and how many input bytes it replaces.
        let (escape, len): (&[u8], usize) = match b {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            // RFC 8259 §7: the two-character escapes, where JSON has one.
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0x08 => (b"\\b", 1),
            0x0C => (b"\\f", 1),
            // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8; any
            // other character starting with E2 is copied as it is.
            0xE2 => match bytes.get(i + 1..i + 3) {
                Some([0x80, 0xA8]) => (b"\\u2028", 3),
                Some([0x80, 0xA9]) => (b"\\u2029", 3),
                _ => {
                    i += 1;
                    continue;
                }
            },
            // RFC 8259 §7: any other control character as `\u00XX`.
            _ => {
                let hex = |nibble: u8| HEX[usize::from(nibble)];
                control = [b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0x0F)];
                (&control, 1)
            }
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escape);
        i += len;
        run_start = i;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// The bytes that may need an escape: the control characters, `"`, `\`,
/// and E2, the first byte of U+2028 and U+2029.
static MAY_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[0xE2] = true;
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends one message as a JSON object:
/// `{"id":"…","event":"…","data":"…"}`.
///
/// `event` is the name an EventSource would report: `message` for a
/// message published without one (the caller passes it that way), so the
/// three transports describe a message identically.
pub fn write_message(out: &mut Vec<u8>, id: &str, event: &str, data: &str) {
    out.extend_from_slice(b"{\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"event\":");
    write_str(out, event);
    out.extend_from_slice(b",\"data\":");
    write_str(out, data);
    out.push(b'}');
}

/// Appends `v` as compact JSON text (no whitespace), members in their
/// order. [`parse`] reads it back as an equal value.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    write_value_with(out, v, write_number);
}

/// [`write_value`] with numbers written by `number` (Socket.IO writes them
/// as JavaScript does).
pub fn write_value_with(out: &mut Vec<u8>, v: &Value, number: fn(&mut Vec<u8>, f64)) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match n.text() {
            // Already in the §6 grammar: the reader checked it.
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => number(out, n.value()),
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value_with(out, item, number);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value_with(out, value, number);
            }
            out.push(b'}');
        }
    }
}

/// Appends `n` as a JSON number that reads back as the same `f64`.
///
/// Rust's `Display` for `f64` writes the shortest decimal that reads back
/// exactly, never in exponent form, which is always in the RFC 8259 §6
/// grammar (`-0` included). JSON has no infinity (§6: "Numeric values that
/// cannot be represented ... such as Infinity and NaN are not permitted"),
/// but a number too large for an `f64` reads as one, so infinity is
/// written as `1e999`, which reads back as infinity; NaN, which no JSON
/// text reads as, is written as `null`.
pub fn write_number(out: &mut Vec<u8>, n: f64) {
    use std::io::Write;
    if n.is_nan() {
        out.extend_from_slice(b"null");
    } else if n.is_infinite() {
        out.extend_from_slice(if n > 0.0 { b"1e999" } else { b"-1e999" });
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        parse(text).unwrap_err().rule
    }

    fn number(text: &str) -> Number {
        match parse(text).unwrap() {
            Value::Number(n) => n,
            other => panic!("{other:?}"),
        }
    }

    fn written(v: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_number_the_f64_says_exactly_keeps_no_text() {
        for text in [
            "0",
            "-0",
            "1",
            "0.1",
            "1E+2",
            "12.5e-1",
            "100e-2",
            "123456789012345",
            "0.30000000000000004",
            "9007199254740992",
            "1e308",
            "5e-324",
            "0.000e99999999999999999999",
        ] {
            assert_eq!(number(text).text(), None, "{text}");
        }
    }

    #[test]
    fn a_number_the_f64_would_round_is_written_as_it_came() {
        // RFC 8259 §6: magnitude and precision beyond what is widely
        // available; a relay passes them on.
        for text in [
            "12345678901234567890",
            "-9007199254740993",
            "3.141592653589793238462643383279",
            "0.1000000000000000055511151231257827",
            "1E400",
            "-1e400",
            "1e-400",
            "4.9e-324",
        ] {
            let n = number(text);
            assert_eq!(n.text(), Some(text), "{text}");
            assert_eq!(written(&Value::Number(n.clone())), text);
            assert_eq!(parse(text).unwrap(), Value::Number(n));
        }
        assert_eq!(
            number("12345678901234567890").value(),
            12345678901234567890.0
        );
        assert_eq!(number("1E400").value(), f64::INFINITY);
        assert_eq!(number("1e-400").value(), 0.0);
        // The same value computed, not read, has no text to keep.
        assert_eq!(
            written(&Value::from(12345678901234567890.0)),
            "12345678901234567000"
        );
    }

    #[test]
    fn significant_digits_are_counted_from_the_first_to_the_last_nonzero() {
        for (text, n) in [
            ("0", 0),
            ("-0.000e7", 0),
            ("7", 1),
            ("0.0120e5", 2),
            ("100", 1),
            ("1.0001", 5),
            ("-12345678901234567890", 19),
        ] {
            assert_eq!(significant_digits(text), n, "{text}");
            assert_eq!(Decimal::of(text).digits.len(), n, "{text}");
        }
    }

    #[test]
    fn decimals_reduce_to_digits_and_a_power_of_ten() {
        let d = |text| {
            let d = Decimal::of(text);
            (d.negative, String::from_utf8(d.digits).unwrap(), d.exponent)
        };
        assert_eq!(d("120.500"), (false, "1205".to_string(), -1));
        assert_eq!(d("-0.0012e3"), (true, "12".to_string(), -1));
        assert_eq!(d("1200E-2"), (false, "12".to_string(), 0));
        assert_eq!(d("-0.000"), (false, String::new(), 0));
        assert_eq!(Decimal::of("1e2"), Decimal::of("100"));
        assert_ne!(Decimal::of("1e2"), Decimal::of("-100"));
    }

    #[test]
    fn poll_response_shape() {
        let v = parse(
            r#"{"messages":[{"id":"17-1","event":"message","data":"hi"}],"last_id":"17-1","timeout":false,"gap":false}"#,
        )
        .unwrap();
        let m = &v.get("messages").unwrap().as_array().unwrap()[0];
        assert_eq!(m.get("id").unwrap().as_str(), Some("17-1"));
        assert_eq!(m.get("data").unwrap().as_str(), Some("hi"));
        assert_eq!(v.get("last_id").unwrap().as_str(), Some("17-1"));
        assert_eq!(v.get("timeout").unwrap().as_bool(), Some(false));
    }

    #[test]
    fn scalars_and_whitespace() {
        assert_eq!(parse(" \t\r\ntrue\n").unwrap(), Value::Bool(true));
        assert_eq!(parse("null").unwrap(), Value::Null);
        assert_eq!(parse("-0").unwrap(), Value::from(-0.0));
        assert_eq!(parse("12.5e-1").unwrap(), Value::from(1.25));
        assert_eq!(parse("1E+2").unwrap(), Value::from(100.0));
        assert_eq!(parse("[]").unwrap(), Value::Array(vec![]));
        assert_eq!(parse("{ }").unwrap(), Value::Object(vec![]));
        assert_eq!(
            parse("[1, [2], {\"a\": []}]").unwrap(),
            Value::Array(vec![
                Value::from(1.0),
                Value::Array(vec![Value::from(2.0)]),
                Value::Object(vec![("a".into(), Value::Array(vec![]))]),
            ])
        );
    }

    #[test]
    fn escapes_and_surrogate_pairs() {
        let v = parse(r#""a\"\\\/\b\f\n\r\t\u00e9\u2028\uD83D\uDE00""#).unwrap();
        assert_eq!(
            v.as_str(),
            Some("a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{2028}\u{1F600}")
        );
        // Raw UTF-8 is copied as it is; hex digits in either case.
        assert_eq!(parse("\"ü😀\\u00E9\"").unwrap().as_str(), Some("ü😀é"));
    }

    #[test]
    fn reads_back_what_the_server_writes() {
        let text = "tab\t nl\n cr\r quote\" bs\\ nul\u{0} ls\u{2028} ps\u{2029} emoji😀 del\u{7f}";
        let mut out = Vec::new();
        write_str(&mut out, text);
        let written = String::from_utf8(out).unwrap();
        assert_eq!(parse(&written).unwrap().as_str(), Some(text));
    }

    #[test]
    fn refuses_lone_surrogates() {
        assert_eq!(rule(r#""\uD83D""#), Rule::LoneSurrogate);
        assert_eq!(rule(r#""\uD83Dx""#), Rule::LoneSurrogate);
        assert_eq!(rule(r#""\uD83D\u0041""#), Rule::LoneSurrogate);
        assert_eq!(rule(r#""\uDE00""#), Rule::LoneSurrogate);
        assert_eq!(rule(r#""\uD83D\uD83D""#), Rule::LoneSurrogate);
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        assert_eq!(rule(""), Rule::UnexpectedEnd);
        assert_eq!(rule("[1,]"), Rule::UnexpectedByte(b']'));
        assert_eq!(rule("{\"a\":1,}"), Rule::UnexpectedByte(b'}'));
        assert_eq!(rule("{'a':1}"), Rule::UnexpectedByte(b'\''));
        assert_eq!(rule("01"), Rule::LeadingZero);
        assert_eq!(rule("-"), Rule::UnexpectedEnd);
        assert_eq!(rule("1."), Rule::UnexpectedEnd);
        assert_eq!(rule("1.e3"), Rule::MissingDigits);
        assert_eq!(rule("1e"), Rule::UnexpectedEnd);
        assert_eq!(rule("+1"), Rule::UnexpectedByte(b'+'));
        assert_eq!(rule(".5"), Rule::UnexpectedByte(b'.'));
        assert_eq!(rule("NaN"), Rule::UnexpectedByte(b'N'));
        assert_eq!(rule("tru"), Rule::UnexpectedEnd);
        assert_eq!(rule("true false"), Rule::TrailingCharacters);
        assert_eq!(rule("\"a\nb\""), Rule::RawControlCharacter);
        assert_eq!(rule(r#""\x41""#), Rule::InvalidEscape);
        assert_eq!(rule(r#""\u12G4""#), Rule::InvalidEscape);
        assert_eq!(rule("\"abc"), Rule::UnexpectedEnd);
        assert_eq!(rule("{\"a\":1,\"a\":2}"), Rule::DuplicateKey);
        assert_eq!(rule("[1 2]"), Rule::UnexpectedByte(b'2'));
        assert_eq!(rule("{\"a\" 1}"), Rule::UnexpectedByte(b'1'));
        assert_eq!(rule("\u{feff}1"), Rule::UnexpectedByte(0xEF));
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(rule(&deep), Rule::TooDeep);
        // Far deeper than any stack would take: refused, not a crash.
        assert_eq!(rule(&"{\"a\":".repeat(100_000)), Rule::TooDeep);
    }

    #[test]
    fn never_panics_on_any_prefix() {
        let text = r#"{"messages":[{"id":"1-2","event":"e","data":"\uD83D\uDE00 x"}],"n":-1.5e3,"b":[true,false,null]}"#;
        assert!(parse(text).is_ok());
        for end in 0..text.len() {
            if let Some(prefix) = text.get(..end) {
                assert!(parse(prefix).is_err(), "prefix {prefix:?} parsed");
            }
        }
    }

    fn lit(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).expect("the writer emits UTF-8")
    }

    #[test]
    fn plain_text_is_copied() {
        assert_eq!(lit(""), r#""""#);
        assert_eq!(lit("hello, world"), r#""hello, world""#);
        assert_eq!(lit("héllo → 世界 🎉"), "\"héllo → 世界 🎉\"");
    }

    #[test]
    fn quote_and_backslash() {
        assert_eq!(lit(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(lit(r"C:\path\"), r#""C:\\path\\""#);
        // A solidus may be escaped but need not be (RFC 8259 §7); we don't.
        assert_eq!(lit("</p>"), r#""</p>""#);
    }

    #[test]
    fn control_characters() {
        assert_eq!(lit("a\nb\rc\td"), r#""a\nb\rc\td""#);
        assert_eq!(lit("\u{8}\u{c}"), r#""\b\f""#);
        assert_eq!(lit("\0"), r#""\u0000""#);
        assert_eq!(lit("\u{1}\u{1f}"), r#""\u0001\u001f""#);
        // U+007F DELETE is not a JSON control character: copied raw.
        assert_eq!(lit("\u{7f}"), "\"\u{7f}\"");
        // Every control character is escaped, none is copied raw.
        for c in 0u8..0x20 {
            let out = lit(&char::from(c).to_string());
            assert!(out.bytes().all(|b| b >= 0x20), "{c:#x} -> {out:?}");
        }
    }

    #[test]
    fn line_and_paragraph_separators() {
        assert_eq!(lit("a\u{2028}b\u{2029}c"), r#""a\u2028b\u2029c""#);
        // Their neighbours in UTF-8 (same lead byte E2 80) are not escaped.
        assert_eq!(lit("\u{2027}\u{202a}…"), "\"\u{2027}\u{202a}…\"");
        // At the very end of the text.
        assert_eq!(lit("x\u{2028}"), r#""x\u2028""#);
    }

    #[test]
    fn message_object() {
        let mut out = Vec::new();
        write_message(&mut out, "17-3", "message", "line 1\nline \"2\"");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"id":"17-3","event":"message","data":"line 1\nline \"2\""}"#
        );
    }

    #[test]
    fn escapes_read_back_with_a_json_reader() {
        // A small decoder for the escapes the writer emits, to check the
        // round trip on text mixing every case.
        fn unescape(lit: &str) -> String {
            let inner = &lit[1..lit.len() - 1];
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next().unwrap() {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let n = u32::from_str_radix(&hex, 16).unwrap();
                        out.push(char::from_u32(n).unwrap());
                    }
                    other => out.push(other),
                }
            }
            out
        }
        let text = "\"q\" \\ \u{0}\u{1b}[31m\n\u{2028}é🎉\u{2029}\r\n";
        assert_eq!(unescape(&lit(text)), text);
    }

    #[test]
    fn rfc8259_examples() {
        // §13: "Here are three small JSON texts containing only values".
        assert_eq!(
            parse("\"Hello world!\"").unwrap().as_str(),
            Some("Hello world!")
        );
        assert_eq!(parse("42").unwrap(), Value::from(42.0));
        assert_eq!(parse("true").unwrap(), Value::Bool(true));
        // §13: the array of two objects.
        let text = r#"[
        {
           "precision": "zip",
           "Latitude":  37.7668,
           "Longitude": -122.3959,
           "Address":   "",
           "City":      "SAN FRANCISCO",
           "State":     "CA",
           "Zip":       "94107",
           "Country":   "US"
        },
        {
           "precision": "zip",
           "Latitude":  37.371991,
           "Longitude": -122.026020,
           "Address":   "",
           "City":      "SUNNYVALE",
           "State":     "CA",
           "Zip":       "94085",
           "Country":   "US"
        }
      ]"#;
        let v = parse(text).unwrap();
        let second = &v.as_array().unwrap()[1];
        assert_eq!(second.get("Longitude").unwrap().as_f64(), Some(-122.02602));
        assert_eq!(second.get("City").unwrap().as_str(), Some("SUNNYVALE"));
        assert_eq!(validate(text.as_bytes(), &JsonLimits::default()), Ok(()));
        // §7: "\u005C" is a reverse solidus; §7's G clef example.
        assert_eq!(parse(r#""\u005C""#).unwrap().as_str(), Some("\\"));
        assert_eq!(
            parse(r#""\uD834\uDD1E""#).unwrap().as_str(),
            Some("\u{1D11E}")
        );
    }

    #[test]
    fn validator_agrees_with_the_reader() {
        let texts = [
            "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\"}",
            "[1,]",
            "{\"a\":1,\"\\u0061\":2}",
            "\"\\uD83D\"",
            "01",
            " 3 ",
            "[[[]]]x",
            "",
        ];
        for text in texts {
            let limits = JsonLimits::default();
            assert_eq!(
                validate(text.as_bytes(), &limits),
                parse_with(text, &limits).map(|_| ()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_found_after_escapes_and_in_large_objects() {
        // The same name spelt two ways is still the same name.
        assert_eq!(rule(r#"{"a":1,"\u0061":2}"#), Rule::DuplicateKey);
        // Past the linear scan, in the hash set.
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        let distinct = format!("{}\"end\":0}}", text);
        assert!(parse(&distinct).is_ok());
        let dup = format!("{}\"k3\":0}}", text);
        let e = parse(&dup).unwrap_err();
        assert_eq!(e.rule, Rule::DuplicateKey);
        assert_eq!(e.offset, dup.len() - 7);
        assert_eq!(validate(dup.as_bytes(), &JsonLimits::default()), Err(e));
        // Nested objects each have their own names.
        assert!(parse(r#"{"a":{"a":{"a":1}},"b":{"a":2}}"#).is_ok());
    }

    #[test]
    fn limits() {
        let limits = JsonLimits {
            max_depth: 2,
            max_bytes: 16,
            max_string_bytes: 3,
        };
        assert!(validate(b"[[1]]", &limits).is_ok());
        let e = validate(b"[[[1]]]", &limits).unwrap_err();
        assert_eq!((e.rule, e.offset, e.status()), (Rule::TooDeep, 2, 400));
        let e = validate(b"[1,2,3,4,5,6,7,8,9]", &limits).unwrap_err();
        assert_eq!((e.rule, e.offset, e.status()), (Rule::TooLarge, 16, 413));
        assert!(validate(br#""abc""#, &limits).is_ok());
        let e = validate(br#"["abcd"]"#, &limits).unwrap_err();
        assert_eq!((e.rule, e.offset), (Rule::StringTooLong, 1));
        // Keys too.
        assert_eq!(
            validate(br#"{"abcd":1}"#, &limits).unwrap_err().rule,
            Rule::StringTooLong
        );
        // A configured depth past the cap is the cap.
        let deep = JsonLimits {
            max_depth: usize::MAX,
            ..JsonLimits::caller_bounded()
        };
        let text = "[".repeat(DEPTH_CAP + 1) + &"]".repeat(DEPTH_CAP + 1);
        assert_eq!(parse_with(&text, &deep).unwrap_err().rule, Rule::TooDeep);
    }

    #[test]
    fn bytes_must_be_utf8() {
        // RFC 8259 §8.1; the offset is where the bad sequence starts.
        let e = validate(b"\"ab\xff\"", &JsonLimits::default()).unwrap_err();
        assert_eq!((e.rule, e.offset), (Rule::InvalidUtf8, 3));
        assert_eq!(parse_bytes(b"\"ab\xff\"", &JsonLimits::default()), Err(e));
        // A UTF-16 text (RFC 4627 allowed it; RFC 8259 does not).
        assert_eq!(
            validate(b"\x00[\x00]", &JsonLimits::default())
                .unwrap_err()
                .rule,
            Rule::UnexpectedByte(0)
        );
        assert_eq!(
            parse_bytes("[\"é\"]".as_bytes(), &JsonLimits::default()),
            Ok(Value::Array(vec![Value::String("é".into())]))
        );
    }

    #[test]
    fn members_keeps_values_as_written() {
        let text = r#" {"type":"publish", "data" : {"a": [1, 2]} ,"n":-1.50} "#;
        let m = members(text, &JsonLimits::default()).unwrap();
        assert_eq!(
            m,
            vec![
                (Cow::Borrowed("type"), r#""publish""#),
                (Cow::Borrowed("data"), r#"{"a": [1, 2]}"#),
                (Cow::Borrowed("n"), "-1.50"),
            ]
        );
        assert_eq!(
            decode_string(m[0].1, &JsonLimits::default()),
            Some(Cow::Borrowed("publish"))
        );
        assert_eq!(decode_string(m[2].1, &JsonLimits::default()), None);
        assert_eq!(
            decode_string(r#""a\nb""#, &JsonLimits::default()).as_deref(),
            Some("a\nb")
        );
        assert!(members("{}", &JsonLimits::default()).unwrap().is_empty());
        let e = members("[1]", &JsonLimits::default()).unwrap_err();
        assert_eq!(e.rule, Rule::UnexpectedByte(b'['));
        let e = members(r#"{"a":1,"a":2}"#, &JsonLimits::default()).unwrap_err();
        assert_eq!(e.rule, Rule::DuplicateKey);
        let e = members(r#"{"a":1} x"#, &JsonLimits::default()).unwrap_err();
        assert_eq!(e.rule, Rule::TrailingCharacters);
    }

    #[test]
    fn values_round_trip_through_the_writer() {
        let texts = [
            r#"{"a":[1,-0,0.5,1e300,-2.5e-300,123456789012345680000],"b":{"c":null,"d":true,"e":false},"s":"é\n\u2028😀"}"#,
            "[]",
            "{}",
            "1e999",
            "-1e999",
            "17",
        ];
        for text in texts {
            let v = parse(text).unwrap();
            let written = v.to_string();
            assert_eq!(parse(&written), Ok(v), "{text} -> {written}");
        }
        // RFC 8259 §13's first example, written compactly.
        let v = parse(r#"{"Image": {"Width": 800, "Height": 600, "Title": "View from 15th Floor", "IDs": [116, 943, 234, 38793]}}"#).unwrap();
        assert_eq!(
            v.to_string(),
            r#"{"Image":{"Width":800,"Height":600,"Title":"View from 15th Floor","IDs":[116,943,234,38793]}}"#
        );
        let mut out = Vec::new();
        write_number(&mut out, f64::NAN);
        assert_eq!(out, b"null");
    }
}

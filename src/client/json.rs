//! Reading JSON (RFC 8259): a small, strict, bounded parser.
//!
//! Before working on this file, read RFC 8259 §2 (the grammar), §6
//! (numbers) and §7 (strings). The server only *writes* JSON
//! ([`crate::wire::json`]); this is the client's half, enough to read the
//! three shapes the server sends — a message, a poll response and a gap
//! notice — and anything else a script may meet.
//!
//! Strict means: exactly the RFC 8259 grammar and nothing more. No
//! comments, no trailing commas, no single quotes, no leading zeros, no
//! `NaN`, no lone surrogates, no raw control characters in strings, no
//! bytes after the value but whitespace. An object with the same key
//! twice is refused too: RFC 8259 §4 says names SHOULD be unique and that
//! receivers disagree about duplicates, and disagreeing parsers are how a
//! value means one thing to a checker and another to its user.
//!
//! Bounded means: the input is a `&str` the caller already holds (its size
//! is the caller's bound), nesting is limited to [`MAX_DEPTH`], so a
//! hostile `[[[[…` cannot exhaust the stack, and every step of the parser
//! consumes input.

use std::fmt;

/// The deepest nesting of arrays and objects [`parse`] accepts. The shapes
/// pushwire sends are two levels deep.
pub const MAX_DEPTH: usize = 64;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every JSON number is read as an `f64`, as JavaScript reads it.
    Number(f64),
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
            Value::Number(n) => Some(*n),
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

/// Why a text is not the JSON this parser accepts, and where (a byte
/// offset into the input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {offset}: {rule}")]
pub struct JsonError {
    pub offset: usize,
    pub rule: Rule,
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
    /// Nesting deeper than [`MAX_DEPTH`].
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
    /// RFC 8259 §4: names SHOULD be unique; we require it.
    DuplicateKey,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::UnexpectedEnd => f.write_str("unexpected end of input"),
            Rule::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            Rule::TrailingCharacters => f.write_str("characters after the value"),
            Rule::TooDeep => write!(f, "nested deeper than {MAX_DEPTH}"),
            Rule::LeadingZero => f.write_str("number with a leading zero"),
            Rule::MissingDigits => f.write_str("fraction or exponent without digits"),
            Rule::RawControlCharacter => f.write_str("unescaped control character in a string"),
            Rule::InvalidEscape => f.write_str("invalid escape in a string"),
            Rule::LoneSurrogate => f.write_str("unpaired surrogate escape"),
            Rule::DuplicateKey => f.write_str("duplicate object key"),
        }
    }
}

/// Parses `text` as exactly one JSON value (RFC 8259 §2: `JSON-text = ws
/// value ws`).
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Parser {
        b: text.as_bytes(),
        text,
        pos: 0,
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.b.len() {
        return Err(p.err(Rule::TrailingCharacters));
    }
    Ok(value)
}

struct Parser<'a> {
    b: &'a [u8],
    /// The same bytes as a `str`, to copy runs of UTF-8 out whole.
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
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

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        for &w in word {
            self.expect(w)?;
        }
        Ok(value)
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(Value::String),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.unexpected()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(Rule::TooDeep));
        }
        self.expect(b'{')?;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            let key_at = self.pos;
            if self.peek()? != b'"' {
                return Err(self.unexpected());
            }
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                return Err(JsonError {
                    offset: key_at,
                    rule: Rule::DuplicateKey,
                });
            }
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.value(depth)?;
            members.push((key, value));
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(Rule::TooDeep));
        }
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    /// RFC 8259 §6:
    /// `number = [ minus ] int [ frac ] [ exp ]`,
    /// `int = zero / ( digit1-9 *DIGIT )`, `frac = "." 1*DIGIT`,
    /// `exp = ("e" / "E") [ "-" / "+" ] 1*DIGIT`.
    fn number(&mut self) -> Result<Value, JsonError> {
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
        // The grammar above is a subset of what `f64::from_str` accepts,
        // so this cannot fail; a huge exponent reads as infinity, as in
        // JavaScript.
        let n = self.text[start..self.pos]
            .parse::<f64>()
            .map_err(|_| JsonError {
                offset: start,
                rule: Rule::MissingDigits,
            })?;
        Ok(Value::Number(n))
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
    /// decoded one by one.
    fn string(&mut self) -> Result<String, JsonError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while let Some(&b) = self.b.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Stopped at an ASCII byte (or the end), so this is a char
            // boundary.
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.escape()?;
                    out.push(c);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        parse(text).unwrap_err().rule
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
        assert_eq!(parse("-0").unwrap(), Value::Number(-0.0));
        assert_eq!(parse("12.5e-1").unwrap(), Value::Number(1.25));
        assert_eq!(parse("1E+2").unwrap(), Value::Number(100.0));
        assert_eq!(parse("[]").unwrap(), Value::Array(vec![]));
        assert_eq!(parse("{ }").unwrap(), Value::Object(vec![]));
        assert_eq!(
            parse("[1, [2], {\"a\": []}]").unwrap(),
            Value::Array(vec![
                Value::Number(1.0),
                Value::Array(vec![Value::Number(2.0)]),
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
        crate::wire::json::write_str(&mut out, text);
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
}

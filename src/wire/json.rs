//! Writing JSON (RFC 8259) — only writing: the server never parses JSON.
//!
//! Before working on this file, read RFC 8259 §7 (strings). Everything the
//! server sends as JSON is built from three shapes (a message, a poll
//! response, a gap notice), so a tiny writer is all it takes, and writing
//! it by hand keeps the bytes on the wire in plain sight.
//!
//! The only hard part is the string literal: a message's text is any
//! Unicode the publisher sent, and it must come out as a literal that every
//! JSON parser — and every JavaScript engine — reads back unchanged.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}

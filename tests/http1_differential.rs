//! Our request-head parser against `httparse`, the oracle.
//!
//! Every case states what we answer; where that differs from httparse
//! (which accepts more, and does not interpret fields at all) the case says
//! why in one line. We may be stricter than the oracle, never looser. Then
//! a seeded mutation loop compares both parsers on thousands of variations
//! of valid heads, under the same rule (see `fuzz/props/http1_head.rs`).

#[path = "../fuzz/props/http1_head.rs"]
mod http1_head;

use http1_head::{compare, parse, Verdict, LIMITS};
use pushwire::wire::http1::{BodyFraming, HeadError};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Accept(BodyFraming),
    Reject(HeadError),
}
use Expect::{Accept, Reject};

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
    /// Why we refuse what httparse accepts; empty when both agree.
    why: &'static str,
}

fn case(name: &'static str, bytes: &[u8], expect: Expect, why: &'static str) -> Case {
    Case {
        name,
        bytes: bytes.to_vec(),
        expect,
        why,
    }
}

const SEMANTIC: &str = "httparse checks syntax only; RFC 9112 framing rules are ours";

fn cases() -> Vec<Case> {
    use HeadError::*;
    let mut cases = vec![
        // ---- valid heads --------------------------------------------------
        case("minimal", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Accept(BodyFraming::Empty), ""),
        case(
            "rfc7230 curl example",
            b"GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case(
            "browser sse",
            b"GET /topics/chat/sse HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/event-stream\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nLast-Event-ID: 3-41\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: cors\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case(
            "websocket upgrade",
            b"GET /echo HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case(
            "post with length",
            b"POST /topics/a?event=tick HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            Accept(BodyFraming::Length(5)),
            "",
        ),
        case(
            "post chunked",
            b"POST /topics/a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Accept(BodyFraming::Chunked),
            "",
        ),
        case(
            "chunked in capitals",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
            Accept(BodyFraming::Chunked),
            "",
        ),
        case(
            "identical content-lengths in a list",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42, 42\r\n\r\n",
            Accept(BodyFraming::Length(42)),
            "",
        ),
        case(
            "identical content-length fields",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
            Accept(BodyFraming::Length(7)),
            "",
        ),
        case(
            "absolute-form",
            b"GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case(
            "authority-form",
            b"CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case("asterisk-form", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Accept(BodyFraming::Empty), ""),
        case("http/1.0 without host", b"GET / HTTP/1.0\r\n\r\n", Accept(BodyFraming::Empty), ""),
        case(
            "one leading empty line",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case(
            "four leading empty lines",
            b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case(
            "obs-text and tabs in values",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: \tcaf\xc3\xa9 \xff\t \r\nX-Empty:\r\n\r\n",
            Accept(BodyFraming::Empty),
            "",
        ),
        case("unknown method", b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", Accept(BodyFraming::Empty), ""),
        case("empty host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", Accept(BodyFraming::Empty), ""),
        // ---- refused by both ---------------------------------------------
        case(
            "space before colon (TE)",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            Reject(WhitespaceBeforeColon),
            "",
        ),
        case("lone CR in value", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", Reject(LoneCr), ""),
        case(
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n",
            Reject(ObsoleteLineFolding),
            "",
        ),
        case(
            "obs-fold hiding TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
            Reject(ObsoleteLineFolding),
            "",
        ),
        case("NUL in value", b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", Reject(InvalidHeaderValue), ""),
        case("DEL in value", b"GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", Reject(InvalidHeaderValue), ""),
        case("VT in value", b"GET / HTTP/1.1\r\nHost: a\x0b\r\n\r\n", Reject(InvalidHeaderValue), ""),
        case(
            "VT in name",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\x0b: chunked\r\n\r\n",
            Reject(InvalidHeaderName),
            "",
        ),
        case(
            "whitespace before first field",
            b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
            Reject(WhitespaceBeforeFirstHeader),
            "",
        ),
        case("no colon", b"GET / HTTP/1.1\r\nHost\r\n\r\n", Reject(MissingColon), ""),
        case("empty name", b"GET / HTTP/1.1\r\n: a\r\n\r\n", Reject(InvalidHeaderName), ""),
        case("http/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Reject(UnsupportedVersion), ""),
        case("http/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Reject(UnsupportedVersion), ""),
        case("lowercase version", b"GET / http/1.1\r\nHost: a\r\n\r\n", Reject(InvalidVersion), ""),
        case("space after version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Reject(InvalidVersion), ""),
        case("http/0.9 request", b"GET /\r\n\r\n", Reject(InvalidVersion), ""),
        case("double space", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Reject(InvalidTarget), ""),
        case("tab separator", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", Reject(InvalidMethod), ""),
        case("bad method byte", b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", Reject(InvalidMethod), ""),
        case("leading space", b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", Reject(InvalidMethod), ""),
        case("control in target", b"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", Reject(InvalidTarget), ""),
        case("lone CR after version", b"GET / HTTP/1.1\rHost: a\r\n\r\n", Reject(LoneCr), ""),
        // ---- refused by us only: syntax ------------------------------------
        case(
            "LF-only lines",
            b"GET / HTTP/1.1\nHost: a\n\n",
            Reject(BareLf),
            "bare LF as a line end: CRLF only, so no parser can split lines differently",
        ),
        case(
            "LF smuggling a TE line",
            b"POST / HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n",
            Reject(BareLf),
            "bare LF as a line end: CRLF only, so no parser can split lines differently",
        ),
        case(
            "bare LF leading line",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(BareLf),
            "bare LF as a line end: CRLF only",
        ),
        case(
            "five leading empty lines",
            b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(TooManyEmptyLines),
            "RFC 9112 §2.2 asks to skip at least one empty line; we skip four, not any number",
        ),
        case(
            "fragment",
            b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(InvalidTarget),
            "RFC 9112 §3.2: no request-target form has a fragment",
        ),
        case(
            "raw UTF-8 in target",
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(InvalidTarget),
            "RFC 3986: non-ASCII in a URI is percent-encoded",
        ),
        case(
            "asterisk with GET",
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(InvalidTarget),
            "RFC 9112 §3.2.4: asterisk-form only with OPTIONS",
        ),
        case(
            "CONNECT with a path",
            b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(InvalidTarget),
            "RFC 9112 §3.2.3: CONNECT takes authority-form",
        ),
        case(
            "relative target",
            b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
            Reject(InvalidTarget),
            "RFC 9112 §3.2: a target is origin-, absolute-, authority- or asterisk-form",
        ),
        // ---- refused by us only: framing -------------------------------------
        case(
            "CL.TE",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
            Reject(ContentLengthWithTransferEncoding),
            SEMANTIC,
        ),
        case(
            "TE.CL",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            Reject(ContentLengthWithTransferEncoding),
            SEMANTIC,
        ),
        case(
            "TE chunked, identity",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            Reject(ChunkedNotLast),
            SEMANTIC,
        ),
        case(
            "TE identity",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            Reject(ChunkedNotLast),
            SEMANTIC,
        ),
        case(
            "TE xchunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            Reject(ChunkedNotLast),
            SEMANTIC,
        ),
        case(
            "TE split over two fields",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
            Reject(ChunkedNotLast),
            SEMANTIC,
        ),
        case(
            "TE gzip, chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Reject(UnknownTransferCoding),
            SEMANTIC,
        ),
        case(
            "TE chunked twice",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            Reject(ChunkedTwice),
            SEMANTIC,
        ),
        case(
            "duplicate content-length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n",
            Reject(ConflictingContentLength),
            SEMANTIC,
        ),
        case(
            "content-length list differs",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            Reject(ConflictingContentLength),
            SEMANTIC,
        ),
        case(
            "content-length +5",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            Reject(InvalidContentLength),
            SEMANTIC,
        ),
        case(
            "content-length hex",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
            Reject(InvalidContentLength),
            SEMANTIC,
        ),
        case(
            "content-length empty",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            Reject(InvalidContentLength),
            SEMANTIC,
        ),
        case(
            "content-length overflow",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            Reject(InvalidContentLength),
            SEMANTIC,
        ),
        case(
            "http/1.0 with TE",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            Reject(TransferEncodingOnHttp10),
            SEMANTIC,
        ),
        case("missing host", b"GET / HTTP/1.1\r\n\r\n", Reject(MissingHost), SEMANTIC),
        case(
            "duplicate host",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            Reject(DuplicateHost),
            SEMANTIC,
        ),
    ];

    // ---- limits (refused by us only: httparse has none) ----------------------
    let mut huge = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'v', LIMITS.max_head_bytes));
    huge.extend_from_slice(b"\r\n\r\n");
    cases.push(Case {
        name: "huge header",
        bytes: huge,
        expect: Reject(HeadError::HeadTooLarge),
        why: "head size limit (431)",
    });
    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..LIMITS.max_headers {
        many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    cases.push(Case {
        name: "too many headers",
        bytes: many,
        expect: Reject(HeadError::TooManyHeaders),
        why: "field count limit (431)",
    });
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', LIMITS.max_uri_bytes));
    long.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    cases.push(Case {
        name: "long target",
        bytes: long,
        expect: Reject(HeadError::UriTooLong),
        why: "target length limit (414)",
    });
    cases
}

fn httparse_accepts(bytes: &[u8]) -> bool {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    matches!(
        httparse::Request::new(&mut fields).parse(bytes),
        Ok(httparse::Status::Complete(_))
    )
}

#[test]
fn corpus_against_httparse() {
    let cases = cases();
    assert!(cases.len() >= 60);
    for case in &cases {
        let name = case.name;
        let ours = match parse(&case.bytes, &LIMITS) {
            Ok(Some(head)) => match head.framing {
                Ok(framing) => Accept(framing),
                Err(e) => Reject(e),
            },
            Ok(None) => panic!("{name}: incomplete"),
            Err(e) => Reject(e),
        };
        assert_eq!(ours, case.expect, "{name}");
        // Same method, target, version and fields whenever both accept;
        // any syntax refusal of ours that httparse accepts is documented.
        compare(&case.bytes);
        http1_head::check(&case.bytes);

        let we_accept = matches!(ours, Accept(_));
        let they_accept = httparse_accepts(&case.bytes);
        if we_accept == they_accept {
            assert!(
                case.why.is_empty(),
                "{name}: both agree, yet a reason is listed"
            );
        } else {
            assert!(!we_accept, "{name}: we accept what httparse refuses");
            assert!(
                !case.why.is_empty(),
                "{name}: unlisted disagreement: {ours:?}"
            );
        }
    }
}

/// A fixed-seed xorshift: the same mutations on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that sit on the boundaries of the grammar.
const INTERESTING: &[u8] = b"\r\n \t:;,\"\\#/?*%0aZ\x00\x01\x0b\x7f\x80\xff";

const LINES: &[&[u8]] = &[
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 6\r\n",
    b"Host: b\r\n",
    b" folded\r\n",
    b"\r\n",
    b"\n",
];

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if at < bytes.len() => bytes[at] = INTERESTING[rng.below(INTERESTING.len())],
            1 => bytes.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => {
                // Insert a whole line just after a line end.
                let line_start = bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let line = LINES[rng.below(LINES.len())];
                bytes.splice(line_start..line_start, line.iter().copied());
            }
            _ => {
                // Drop the CR of a CRLF.
                if let Some(cr) = bytes[at..].iter().position(|&b| b == b'\r') {
                    bytes.remove(at + cr);
                }
            }
        }
    }
    bytes
}

#[test]
fn mutations_against_httparse() {
    let seeds: Vec<Vec<u8>> = cases()
        .into_iter()
        .filter(|c| matches!(c.expect, Accept(_)))
        .map(|c| c.bytes)
        .collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut agree, mut stricter) = (0, 0);
    for i in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let bytes = mutate(&mut rng, seed);
        match compare(&bytes) {
            Verdict::Agree => agree += 1,
            Verdict::Stricter(_) => stricter += 1,
        }
        if i % 16 == 0 {
            http1_head::check(&bytes);
        }
    }
    eprintln!("mutations: {agree} agreed, {stricter} refused by a documented stricter rule");
    assert!(agree > stricter);
}

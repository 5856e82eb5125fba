//! Property of the request-head parser, checked against `httparse`.
//!
//! 1. Differential: whenever we accept a head, httparse accepts it too and
//!    reads the same method, target, version, fields and length. Where we
//!    refuse what httparse accepts, the refusal must be one of the stricter
//!    rules documented in `src/wire/http1.rs` (see [`stricter_rule`]).
//! 2. Resumption: the head fed one byte at a time gives the same answer as
//!    fed whole.
//! 3. Framing: `request_framing` never panics on an accepted head, and its
//!    answer agrees with the fields it was given.
#![allow(dead_code)]

use pushwire::wire::http1::{
    request_framing, BodyFraming, HeadError, HeadLimits, HeadParser, RequestHead, Version,
};

/// The server's default limits.
pub const LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 16 * 1024,
    max_headers: 100,
    max_uri_bytes: 8 * 1024,
};

/// How our reading of some bytes compares with httparse's.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both accept the same head, both need more bytes, or both refuse.
    Agree,
    /// We refuse what httparse accepts (or waits on), by a documented rule.
    Stricter(HeadError),
}

pub fn check(data: &[u8]) {
    compare(data);
    let whole = parse(data, &LIMITS);
    assert_eq!(
        whole,
        parse_bytewise(data, &LIMITS),
        "whole vs byte-by-byte"
    );
}

/// Our answer, with the head's bytes copied out: `Ok(None)` is incomplete.
pub type Outcome = Result<Option<Head>, HeadError>;

#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: Version,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub len: usize,
    pub framing: Result<BodyFraming, HeadError>,
}

fn copy_out(head: &RequestHead, buf: &[u8]) -> Head {
    Head {
        method: head.method_span.get(buf).to_vec(),
        target: head.target.get(buf).to_vec(),
        version: head.version,
        headers: head
            .headers
            .iter()
            .map(|h| (h.name.get(buf).to_vec(), h.value.get(buf).to_vec()))
            .collect(),
        len: head.len,
        framing: request_framing(head, buf),
    }
}

pub fn parse(data: &[u8], limits: &HeadLimits) -> Outcome {
    let mut head = RequestHead::default();
    let complete = HeadParser::new().parse(data, limits, &mut head)?;
    Ok(complete.then(|| copy_out(&head, data)))
}

pub fn parse_bytewise(data: &[u8], limits: &HeadLimits) -> Outcome {
    let mut parser = HeadParser::new();
    let mut head = RequestHead::default();
    for n in 0..=data.len() {
        if parser.parse(&data[..n], limits, &mut head)? {
            return Ok(Some(copy_out(&head, &data[..n])));
        }
        // Resumes, never rescans: at most the version line is held back.
        assert!(parser.scanned() + 10 >= n);
    }
    Ok(None)
}

/// Compares our parse of `data` with httparse's; panics on a disagreement
/// that is not a documented stricter rule.
pub fn compare(data: &[u8]) -> Verdict {
    let ours = parse(data, &LIMITS);
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut fields);
    let theirs = req.parse(data);
    match (&ours, &theirs) {
        (Ok(Some(head)), Ok(httparse::Status::Complete(len))) => {
            assert_eq!(head.len, *len, "head length");
            assert_eq!(Some(&head.method[..]), req.method.map(str::as_bytes));
            assert_eq!(Some(&head.target[..]), req.path.map(str::as_bytes));
            let version = match head.version {
                Version::Http10 => 0,
                Version::Http11 => 1,
            };
            assert_eq!(Some(version), req.version);
            let theirs: Vec<(&[u8], &[u8])> = req
                .headers
                .iter()
                .map(|h| (h.name.as_bytes(), h.value))
                .collect();
            let ours: Vec<(&[u8], &[u8])> =
                head.headers.iter().map(|(n, v)| (&n[..], &v[..])).collect();
            assert_eq!(ours, theirs, "fields");
            check_framing(head);
            Verdict::Agree
        }
        (Ok(None), Ok(httparse::Status::Partial)) | (Err(_), Err(_)) => Verdict::Agree,
        (Ok(_), _) => panic!("we read {ours:?}, httparse {theirs:?}"),
        (Err(e), Ok(_)) => match stricter_rule(e, data, &req) {
            Some(_) => Verdict::Stricter(e.clone()),
            None => panic!("undocumented refusal {e:?}; httparse: {theirs:?}"),
        },
    }
}

/// The documented rules by which we refuse a head httparse accepts, each
/// checked against the bytes so that a wrong refusal is still caught.
pub fn stricter_rule(e: &HeadError, data: &[u8], req: &httparse::Request) -> Option<&'static str> {
    let bare_lf = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    Some(match e {
        HeadError::BareLf if bare_lf => "only CRLF ends a line",
        HeadError::TooManyEmptyLines if data.starts_with(&b"\r\n".repeat(5)) => {
            "a few empty lines before the request-line, not any number"
        }
        HeadError::InvalidTarget => match (req.method, req.path) {
            (Some(method), Some(path))
                if path.bytes().any(|b| b == b'#' || !b.is_ascii())
                    || method == "CONNECT"
                    || !path.starts_with('/') =>
            {
                "target: visible ASCII, no fragment, form matching the method"
            }
            // httparse waits for more of a target we refused already.
            (_, None) => "target: visible ASCII, no fragment, form matching the method",
            _ => return None,
        },
        HeadError::UriTooLong => "target length limit (414)",
        HeadError::MethodTooLong
            if req
                .method
                .is_none_or(|m| m.len() > pushwire::wire::http1::MAX_METHOD_BYTES) =>
        {
            "a method longer than any implemented (501)"
        }
        HeadError::HeadTooLarge if data.len() > LIMITS.max_head_bytes => "head size limit (431)",
        HeadError::TooManyHeaders => "field count limit (431)",
        _ => return None,
    })
}

/// The framing answer agrees with the fields it was computed from.
fn check_framing(head: &Head) {
    let named = |name: &str| {
        head.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    };
    match head.framing {
        Ok(BodyFraming::Chunked) => {
            assert!(named("transfer-encoding") && !named("content-length"))
        }
        Ok(BodyFraming::Length(_)) => {
            assert!(named("content-length") && !named("transfer-encoding"))
        }
        Ok(BodyFraming::Empty) => {
            assert!(!named("content-length") && !named("transfer-encoding"))
        }
        Err(_) => {}
    }
}

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
        buf.get(self.start as usize..self.end as usize).unwrap_or(&[])
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

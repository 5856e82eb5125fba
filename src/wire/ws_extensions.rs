//! `Sec-WebSocket-Extensions` and the permessage-deflate negotiation
//! (RFC 6455 §9.1, RFC 7692 §5 and §7.1).
//!
//! Before working on this file, read RFC 6455 §9.1 (the header's grammar)
//! and RFC 7692 §5 (how an offer is accepted or declined) and §7.1 (the
//! four extension parameters). The codec that follows the negotiation is
//! `proto/ws_deflate.rs`.
//!
//! ```text
//! Sec-WebSocket-Extensions = extension-list
//! extension-list = 1#extension
//! extension = extension-token *( ";" extension-param )
//! extension-param = token [ "=" (token | quoted-string) ]
//! ```
//!
//! A client lists offers in order of preference, possibly over several
//! header fields (one list, RFC 9110 §5.3), possibly offering
//! permessage-deflate more than once with different parameters. We accept
//! the first permessage-deflate offer we can honour and decline the rest;
//! every other extension is declined by not naming it (RFC 6455 §9.1).
//!
//! Parsing allocates nothing: offers and parameters are slices of the
//! header value, visited by iterators. A header that does not follow the
//! grammar is [`ExtensionsError::Syntax`]; the handshake then accepts the
//! connection with no extension, which every client must handle (§9.1:
//! the server's answer is the only extension agreement there is).

use thiserror::Error;

use crate::wire::http1::is_tchar;

/// The extension token of RFC 7692 §7.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest LZ77 window (as a power of two) zlib can compress raw
/// deflate with: zlib refuses `windowBits` 8 for raw streams (it would
/// silently use 9, a window the peer did not agree to).
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// A header that breaks the grammar of RFC 6455 §9.1. Nothing is
/// negotiated; the handshake itself still succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ExtensionsError {
    #[error("Sec-WebSocket-Extensions does not follow RFC 6455 §9.1 at byte {0}")]
    Syntax(usize),
}

/// One extension of the list: its name and the text of its parameters
/// (already checked against the grammar; read them with
/// [`params`](Offer::params)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer<'a> {
    pub name: &'a [u8],
    raw_params: &'a [u8],
}

/// A parameter value as written: a token, or a quoted-string with its
/// quotes (RFC 9110 §5.6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Token(&'a [u8]),
    Quoted(&'a [u8]),
}

/// One extension parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a [u8],
    pub value: Option<Value<'a>>,
}

impl<'a> Offer<'a> {
    /// The parameters, in order.
    pub fn params(&self) -> Params<'a> {
        Params {
            s: self.raw_params,
            pos: 0,
        }
    }

    pub fn is_permessage_deflate(&self) -> bool {
        // Extension tokens are registered tokens (RFC 6455 §9.1, §11.4);
        // like other HTTP tokens they compare case-insensitively.
        self.name
            .eq_ignore_ascii_case(PERMESSAGE_DEFLATE.as_bytes())
    }
}

/// The extensions of one header value, in order.
pub struct Offers<'a> {
    s: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Splits one `Sec-WebSocket-Extensions` value into its extensions.
pub fn offers(value: &[u8]) -> Offers<'_> {
    Offers {
        s: value,
        pos: 0,
        failed: false,
    }
}

fn skip_ows(s: &[u8], mut pos: usize) -> usize {
    while matches!(s.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    pos
}

fn token_end(s: &[u8], mut pos: usize) -> usize {
    while s.get(pos).is_some_and(|&b| is_tchar(b)) {
        pos += 1;
    }
    pos
}

/// The end of the quoted-string starting at `pos` (its opening quote), or
/// None if it never closes or holds a byte it may not (RFC 9110 §5.6.4:
/// qdtext is HTAB, SP, visible ASCII but `"` and `\`, and obs-text;
/// quoted-pair is `\` and one such byte).
fn quoted_end(s: &[u8], mut pos: usize) -> Option<usize> {
    pos += 1;
    loop {
        match *s.get(pos)? {
            b'"' => return Some(pos + 1),
            b'\\' => {
                let b = *s.get(pos + 1)?;
                if !(b == b'\t' || b >= 0x20) || b == 0x7F {
                    return None;
                }
                pos += 2;
            }
            b if b == b'\t' || (b >= 0x20 && b != 0x7F) => pos += 1,
            _ => return None,
        }
    }
}

/// Parses one parameter at `pos` (after the `;` and whitespace); returns
/// it and where it ends.
fn parse_param(s: &[u8], pos: usize) -> Result<(Param<'_>, usize), ExtensionsError> {
    let end = token_end(s, pos);
    if end == pos {
        return Err(ExtensionsError::Syntax(pos));
    }
    let name = &s[pos..end];
    let after = skip_ows(s, end);
    if s.get(after) != Some(&b'=') {
        return Ok((Param { name, value: None }, end));
    }
    let v0 = skip_ows(s, after + 1);
    let (value, v1) = if s.get(v0) == Some(&b'"') {
        let v1 = quoted_end(s, v0).ok_or(ExtensionsError::Syntax(v0))?;
        (Value::Quoted(&s[v0..v1]), v1)
    } else {
        let v1 = token_end(s, v0);
        if v1 == v0 {
            return Err(ExtensionsError::Syntax(v0));
        }
        (Value::Token(&s[v0..v1]), v1)
    };
    Ok((
        Param {
            name,
            value: Some(value),
        },
        v1,
    ))
}

impl<'a> Iterator for Offers<'a> {
    type Item = Result<Offer<'a>, ExtensionsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let s = self.s;
        // RFC 9110 §5.6.1: "a recipient MUST accept ... empty list
        // elements" (`a, , b`).
        let mut pos = skip_ows(s, self.pos);
        while s.get(pos) == Some(&b',') {
            pos = skip_ows(s, pos + 1);
        }
        if pos >= s.len() {
            self.pos = pos;
            return None;
        }
        let result = (|| {
            let name_end = token_end(s, pos);
            if name_end == pos {
                return Err(ExtensionsError::Syntax(pos));
            }
            let params_start = name_end;
            let mut at = name_end;
            loop {
                let next = skip_ows(s, at);
                match s.get(next) {
                    None | Some(b',') => {
                        let offer = Offer {
                            name: &s[pos..name_end],
                            raw_params: &s[params_start..at],
                        };
                        return Ok((offer, next));
                    }
                    Some(b';') => {
                        let p0 = skip_ows(s, next + 1);
                        let (_, p1) = parse_param(s, p0)?;
                        at = p1;
                    }
                    Some(_) => return Err(ExtensionsError::Syntax(next)),
                }
            }
        })();
        match result {
            Ok((offer, next)) => {
                self.pos = next;
                Some(Ok(offer))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The parameters of one offer (text already checked by [`Offers`]).
pub struct Params<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let at = skip_ows(self.s, self.pos);
        if self.s.get(at) != Some(&b';') {
            return None;
        }
        let p0 = skip_ows(self.s, at + 1);
        let (param, end) = parse_param(self.s, p0).ok()?;
        self.pos = end;
        Some(param)
    }
}

/// A window-bits value (RFC 7692 §7.1.2.1, §7.1.2.2: "a decimal integer
/// value without leading zeros between 8 to 15, inclusive"). A
/// quoted-string is unescaped first (RFC 6455 §9.1: its content "MUST
/// conform to the 'token' ABNF"), into a stack buffer: no valid value is
/// longer than two digits.
fn window_bits(value: Value<'_>) -> Option<u8> {
    let mut buf = [0u8; 2];
    let digits: &[u8] = match value {
        Value::Token(t) => t,
        Value::Quoted(q) => {
            let inner = q.get(1..q.len().saturating_sub(1))?;
            let mut n = 0;
            let mut i = 0;
            while i < inner.len() {
                let b = if inner[i] == b'\\' {
                    i += 1;
                    *inner.get(i)?
                } else {
                    inner[i]
                };
                *buf.get_mut(n)? = b;
                n += 1;
                i += 1;
            }
            &buf[..n]
        }
    };
    match digits {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// What the server is willing to agree to (copied from [`crate::Config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflatePolicy {
    /// The largest window we compress with, 9-15. A smaller one requested
    /// by the client is honoured, down to [`MIN_COMPRESS_WINDOW_BITS`].
    pub server_max_window_bits: u8,
    /// The window we ask a client to compress with, 8-15, when its offer
    /// lets us ask (it carried `client_max_window_bits`, §7.1.2.2).
    pub client_max_window_bits: u8,
    /// Ask every client to reset its compressor after each message
    /// (§7.1.1.2), so that no inflate state outlives a message.
    pub client_no_context_takeover: bool,
}

impl Default for DeflatePolicy {
    fn default() -> Self {
        DeflatePolicy {
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            client_no_context_takeover: true,
        }
    }
}

/// An agreed permessage-deflate configuration: what each side compresses
/// with, and what the answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message (§7.1.1.2):
    /// the server need not keep inflate state between messages.
    pub client_no_context_takeover: bool,
    /// The window the server compresses with (8-15).
    pub server_max_window_bits: u8,
    /// The window the client compresses with (8-15): what the server's
    /// inflater must keep.
    pub client_max_window_bits: u8,
    /// The answer names `server_max_window_bits` (only when the offer
    /// did: §7.1.2.1).
    pub answer_server_max_window_bits: bool,
    /// The answer names `client_max_window_bits` (only when the offer
    /// did: §7.1.2.2).
    pub answer_client_max_window_bits: bool,
}

impl DeflateParams {
    /// The parameters both sides use when an offer and its answer carry
    /// none: context kept, 32 KiB windows (§7.1).
    pub const DEFAULT: DeflateParams = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        answer_server_max_window_bits: false,
        answer_client_max_window_bits: false,
    };
}

/// Which of the four parameters an offer carried (to refuse duplicates).
const SERVER_NO_CONTEXT: u8 = 1;
const CLIENT_NO_CONTEXT: u8 = 2;
const SERVER_BITS: u8 = 4;
const CLIENT_BITS: u8 = 8;

/// The answer to one permessage-deflate offer, or None to decline it.
pub fn accept_offer(offer: &Offer<'_>, policy: &DeflatePolicy) -> Option<DeflateParams> {
    if !offer.is_permessage_deflate() {
        return None;
    }
    let mut seen = 0u8;
    let mut client_no_context = false;
    let mut server_bits: Option<u8> = None;
    // Some(None): offered without a value.
    let mut client_bits: Option<Option<u8>> = None;
    for p in offer.params() {
        let bit = match p.name {
            b"server_no_context_takeover" => SERVER_NO_CONTEXT,
            b"client_no_context_takeover" => CLIENT_NO_CONTEXT,
            b"server_max_window_bits" => SERVER_BITS,
            b"client_max_window_bits" => CLIENT_BITS,
            // RFC 7692 §5: decline an offer that "contains an extension
            // parameter not defined for use in an offer".
            _ => return None,
        };
        // RFC 7692 §5: decline an offer that "contains multiple extension
        // parameters with the same name".
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match bit {
            // RFC 7692 §7.1.1.1, §7.1.1.2: these "have no value"; one with
            // a value is "an extension parameter with an invalid value"
            // (§5: decline).
            SERVER_NO_CONTEXT | CLIENT_NO_CONTEXT => {
                if p.value.is_some() {
                    return None;
                }
                if bit == CLIENT_NO_CONTEXT {
                    client_no_context = true;
                }
            }
            // RFC 7692 §7.1.2.1: server_max_window_bits has a value, 8-15.
            SERVER_BITS => server_bits = Some(window_bits(p.value?)?),
            // RFC 7692 §7.1.2.2: client_max_window_bits "may have a value",
            // 8-15 if it does.
            _ => {
                client_bits = Some(match p.value {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                })
            }
        }
    }

    let ours = policy
        .server_max_window_bits
        .clamp(MIN_COMPRESS_WINDOW_BITS, 15);
    let (server_max_window_bits, answer_server) = match server_bits {
        // RFC 7692 §7.1.2.1: the answer carries "the same or smaller value
        // as the offer", and "a server declines an extension negotiation
        // offer with this parameter if the server doesn't support it". A
        // window of 8 we cannot compress with (MIN_COMPRESS_WINDOW_BITS),
        // and answering 9 would be larger than the offer allows: decline.
        Some(v) if v < MIN_COMPRESS_WINDOW_BITS => return None,
        Some(v) => (v.min(ours), true),
        // Without the parameter the client can take a 32 KiB window; any
        // smaller one we use needs no announcement.
        None => (ours, false),
    };
    let want = policy.client_max_window_bits.clamp(8, 15);
    let (client_max_window_bits, answer_client) = match client_bits {
        // RFC 7692 §7.1.2.2: we may answer a value no larger than offered.
        Some(offered) => (want.min(offered.unwrap_or(15)), true),
        // "If a received extension negotiation offer doesn't have the
        // client_max_window_bits extension parameter, the corresponding
        // extension negotiation response to the offer MUST NOT include
        // the client_max_window_bits extension parameter": the client may
        // use a 32 KiB window, and we inflate with one.
        None => (15, false),
    };
    Some(DeflateParams {
        // RFC 7692 §7.1.1.1: "A server MAY include the
        // server_no_context_takeover extension parameter in an extension
        // negotiation response even if the extension negotiation offer
        // being accepted by the response doesn't include" it. We always
        // do: each message is compressed on its own, so that a published
        // message is compressed once for all its subscribers and no
        // connection keeps a compressor.
        server_no_context_takeover: true,
        // RFC 7692 §7.1.1.2: likewise for the client's compressor.
        client_no_context_takeover: client_no_context || policy.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
        answer_server_max_window_bits: answer_server,
        answer_client_max_window_bits: answer_client,
    })
}

/// Negotiates permessage-deflate from every `Sec-WebSocket-Extensions`
/// value of a request, in order: the first offer [`accept_offer`] accepts.
/// `Ok(None)`: nothing to agree to.
pub fn negotiate<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
    policy: &DeflatePolicy,
) -> Result<Option<DeflateParams>, ExtensionsError> {
    let mut chosen = None;
    for value in values {
        for offer in offers(value) {
            let offer = offer?;
            if chosen.is_none() {
                // Keep reading: a header that breaks the grammar further
                // on is refused as a whole, wherever the break is.
                chosen = accept_offer(&offer, policy);
            }
        }
    }
    Ok(chosen)
}

/// Appends the `Sec-WebSocket-Extensions` value answering with `params`
/// (RFC 7692 §5: the accepted extension and the parameters of §7.1).
pub fn write_answer(out: &mut Vec<u8>, params: &DeflateParams) {
    out.extend_from_slice(PERMESSAGE_DEFLATE.as_bytes());
    if params.server_no_context_takeover {
        out.extend_from_slice(b"; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        out.extend_from_slice(b"; client_no_context_takeover");
    }
    let mut bits = |name: &[u8], v: u8| {
        out.extend_from_slice(b"; ");
        out.extend_from_slice(name);
        out.push(b'=');
        if v >= 10 {
            out.push(b'1');
        }
        out.push(b'0' + v % 10);
    };
    if params.answer_server_max_window_bits {
        bits(b"server_max_window_bits", params.server_max_window_bits);
    }
    if params.answer_client_max_window_bits {
        bits(b"client_max_window_bits", params.client_max_window_bits);
    }
}

/// Reads a server's answer (the client side of RFC 7692 §5): the
/// parameters it binds both sides to, or None if it is not an answer we
/// could have asked for (an unknown or repeated parameter, a bad value, a
/// second extension). The client fails the connection then (RFC 6455
/// §4.1: an extension "not present in the client's handshake").
pub fn parse_answer(value: &[u8]) -> Option<DeflateParams> {
    let mut list = offers(value);
    let answer = list.next()?.ok()?;
    if list.next().is_some() || !answer.is_permessage_deflate() {
        return None;
    }
    let mut params = DeflateParams::DEFAULT;
    let mut seen = 0u8;
    for p in answer.params() {
        let bit = match p.name {
            b"server_no_context_takeover" => SERVER_NO_CONTEXT,
            b"client_no_context_takeover" => CLIENT_NO_CONTEXT,
            b"server_max_window_bits" => SERVER_BITS,
            b"client_max_window_bits" => CLIENT_BITS,
            _ => return None,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        match bit {
            SERVER_NO_CONTEXT | CLIENT_NO_CONTEXT if p.value.is_some() => return None,
            SERVER_NO_CONTEXT => params.server_no_context_takeover = true,
            CLIENT_NO_CONTEXT => params.client_no_context_takeover = true,
            SERVER_BITS => {
                params.server_max_window_bits = window_bits(p.value?)?;
                params.answer_server_max_window_bits = true;
            }
            _ => {
                params.client_max_window_bits = window_bits(p.value?)?;
                params.answer_client_max_window_bits = true;
            }
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DeflatePolicy {
        DeflatePolicy {
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            client_no_context_takeover: false,
        }
    }

    fn answer(values: &[&str], policy: &DeflatePolicy) -> Option<String> {
        let params = negotiate(values.iter().map(|v| v.as_bytes()), policy).ok()??;
        let mut out = Vec::new();
        write_answer(&mut out, &params);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn rfc7692_examples() {
        // The plainest offer: accepted, and we always reset our context.
        assert_eq!(
            answer(&["permessage-deflate"], &policy()).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        // The client asks for a small server window and says it can
        // limit its own; we choose.
        let small = DeflatePolicy {
            client_max_window_bits: 10,
            ..policy()
        };
        assert_eq!(
            answer(
                &["permessage-deflate; client_max_window_bits; server_max_window_bits=10"],
                &small
            )
            .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits=10"
            )
        );
        // Two offers, the first declined for its window (RFC 7692 §5.2's
        // fallback pattern).
        assert_eq!(
            answer(
                &["permessage-deflate; server_max_window_bits=8, permessage-deflate"],
                &policy()
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn client_max_window_bits_only_when_offered() {
        let small = DeflatePolicy {
            client_max_window_bits: 9,
            ..policy()
        };
        let p = negotiate([b"permessage-deflate".as_slice()], &small)
            .unwrap()
            .unwrap();
        assert!(!p.answer_client_max_window_bits);
        assert_eq!(p.client_max_window_bits, 15);
        let p = negotiate(
            [b"permessage-deflate; client_max_window_bits=12".as_slice()],
            &small,
        )
        .unwrap()
        .unwrap();
        assert!(p.answer_client_max_window_bits);
        assert_eq!(p.client_max_window_bits, 9);
        // Never more than offered.
        let p = negotiate(
            [b"permessage-deflate; client_max_window_bits=8".as_slice()],
            &policy(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.client_max_window_bits, 8);
    }

    #[test]
    fn declined_offers() {
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "x-webkit-deflate-frame",
            "deflate-frame; server_max_window_bits=10",
        ] {
            assert_eq!(
                negotiate([offer.as_bytes()], &policy()),
                Ok(None),
                "{offer}"
            );
        }
    }

    #[test]
    fn quoted_values_and_lists() {
        // RFC 6455 §9.1: a quoted value unescapes to a token.
        let p = negotiate(
            [b"foo; a=\"x,y;z\", permessage-deflate; server_max_window_bits=\"1\\2\"".as_slice()],
            &policy(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.server_max_window_bits, 12);
        // Repeated fields are one list; the first acceptable offer wins.
        let p = negotiate(
            [
                b"permessage-deflate; bogus".as_slice(),
                b" ,permessage-deflate;client_no_context_takeover , permessage-deflate".as_slice(),
            ],
            &policy(),
        )
        .unwrap()
        .unwrap();
        assert!(p.client_no_context_takeover);
        // The policy can demand no context takeover of every client.
        let p = negotiate(
            [b"PerMessage-Deflate".as_slice()],
            &DeflatePolicy::default(),
        )
        .unwrap()
        .unwrap();
        assert!(p.client_no_context_takeover && p.server_no_context_takeover);
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; =1",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"unterminated",
            "permessage-deflate x",
            "permessage-deflate, ;a",
            "\"quoted\"",
            "permessage-deflate; a=\"\x01\"",
        ] {
            assert!(
                matches!(
                    negotiate([bad.as_bytes()], &policy()),
                    Err(ExtensionsError::Syntax(_))
                ),
                "{bad:?}"
            );
        }
        // A valid offer before a broken one: still refused as a whole.
        assert!(negotiate([b"permessage-deflate, x;".as_slice()], &policy()).is_err());
        assert_eq!(
            negotiate([b"".as_slice(), b" , ".as_slice()], &policy()),
            Ok(None)
        );
    }

    #[test]
    fn answers_parse_back() {
        // Emit an answer, then read it as a client would: the same terms.
        for offer in [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=11; server_max_window_bits=14",
        ] {
            let p = negotiate([offer.as_bytes()], &policy()).unwrap().unwrap();
            let mut out = Vec::new();
            write_answer(&mut out, &p);
            let back = parse_answer(&out).unwrap();
            assert_eq!(
                back.server_no_context_takeover,
                p.server_no_context_takeover
            );
            assert_eq!(
                back.client_no_context_takeover,
                p.client_no_context_takeover
            );
            if p.answer_server_max_window_bits {
                assert_eq!(back.server_max_window_bits, p.server_max_window_bits);
            }
            if p.answer_client_max_window_bits {
                assert_eq!(back.client_max_window_bits, p.client_max_window_bits);
            }
        }
        assert_eq!(parse_answer(b"permessage-deflate, foo"), None);
        assert_eq!(parse_answer(b"permessage-deflate; foo"), None);
        assert_eq!(parse_answer(b"foo"), None);
    }
}

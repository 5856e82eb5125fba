//! The origin rule: which web pages may publish or open a WebSocket.
//!
//! Before working on this file, read RFC 6454 §4 (the origin of a URI),
//! §6.2 (its ASCII serialisation) and §7 (the `Origin` header), and RFC
//! 6455 §10.2 (why a WebSocket server must check it).
//!
//! A browser attaches `Origin` to every cross-origin request, and to every
//! WebSocket handshake; a page cannot forge it. Without this check any web
//! page a user visits could publish into the user's local pushwire (the
//! browser would happily send the POST) — cross-site request forgery and
//! cross-site WebSocket hijacking. So a request that names an origin must
//! name an allowed one. A request without `Origin` did not come from a
//! page's script (curl, a server, a same-origin GET in some browsers) and
//! is judged by tokens alone.
//!
//! Allowed: the server's own origin (the scheme we serve and the `Host`
//! the request was sent to), every origin in `--allowed-origins`, and the
//! `--cors-origin` value (a page we let read our responses may also
//! write). `*` in either allows every origin.

use thiserror::Error;

/// A request refused by the origin rule; answered 403.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum OriginError {
    /// RFC 6455 §10.2 / RFC 6454 §7.3: the `Origin` is neither ours nor
    /// listed. Also a malformed or `null` origin: RFC 6454 §7.3 says
    /// `null` is sent by privacy-sensitive contexts (sandboxed frames,
    /// `file:` pages) which any site can create, so it is never trusted.
    #[error("origin not allowed")]
    NotAllowed,
}

impl OriginError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        403
    }
}

/// An entry of `--allowed-origins` (or `--cors-origin`) that is not a
/// serialised origin such as `https://example.com:8443`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("not an origin (scheme://host[:port]): {0:?}")]
pub struct InvalidOrigin(pub String);

/// A tuple origin (RFC 6454 §4): scheme, host, port, in a normal form —
/// scheme and host lowercased (§6.2 step 1 and RFC 3986 §6.2.2.1: both are
/// case-insensitive), and the scheme's default port dropped, so that
/// `HTTP://Example.COM:80` and `http://example.com` are the same origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    /// `None` for the scheme's default port.
    port: Option<u16>,
}

impl Origin {
    /// Parses the serialisation of RFC 6454 §6.2: `scheme "://" host [ ":"
    /// port ]`, ASCII, nothing after. `None` for anything else (including
    /// `null` and the space-separated list of §7.1, which no browser
    /// sends).
    pub fn parse(s: &[u8]) -> Option<Origin> {
        let sep = s.windows(3).position(|w| w == b"://")?;
        let (scheme, rest) = (&s[..sep], &s[sep + 3..]);
        // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
        let valid_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return None;
        }
        let scheme = String::from_utf8_lossy(scheme).to_ascii_lowercase();
        let (host, port) = host_port(rest)?;
        let port = port.filter(|&p| Some(p) != default_port(&scheme));
        Some(Origin { scheme, host, port })
    }

    /// The origin of a request this server received: the scheme it was
    /// served on and its `Host` (RFC 9110 §7.2: `uri-host [ ":" port ]`).
    pub fn of_request(host: &[u8], tls: bool) -> Option<Origin> {
        let scheme = if tls { "https" } else { "http" };
        let (host, port) = host_port(host)?;
        let port = port.filter(|&p| Some(p) != default_port(scheme));
        Some(Origin {
            scheme: scheme.to_string(),
            host,
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    /// RFC 6454 §6.2: the port only when it is not the default.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host [ ":" port ]` with host a reg-name, an IPv4 address or an
/// IP-literal in brackets (RFC 3986 §3.2.2). The host is lowercased. No
/// userinfo, path, query or fragment may follow.
fn host_port(s: &[u8]) -> Option<(String, Option<u16>)> {
    let (host, port) = if s.first() == Some(&b'[') {
        let end = s.iter().position(|&b| b == b']')?;
        let literal = &s[1..end];
        let valid = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
        if !valid {
            return None;
        }
        (&s[..=end], &s[end + 1..])
    } else {
        let end = s.iter().position(|&b| b == b':').unwrap_or(s.len());
        let host = &s[..end];
        // RFC 3986 §3.2.2 reg-name, less percent-encoding and sub-delims,
        // which no DNS name or browser-serialised origin contains.
        let valid = !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !valid {
            return None;
        }
        (host, &s[end..])
    };
    let port = match port {
        [] => None,
        // RFC 3986 §3.2.3: port = *DIGIT; an empty one never appears in a
        // serialised origin (RFC 6454 §6.2 writes it only when present).
        [b':', digits @ ..] if !digits.is_empty() && digits.len() <= 5 => {
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n: u32 = digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0'));
            Some(u16::try_from(n).ok()?)
        }
        _ => return None,
    };
    Some((String::from_utf8_lossy(host).to_ascii_lowercase(), port))
}

/// Which origins may publish and open WebSockets (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// `*` was configured: every origin, `null` included.
    any: bool,
    allowed: Vec<Origin>,
}

impl OriginPolicy {
    /// From the `--allowed-origins` entries and the `--cors-origin` value.
    /// With neither, only the server's own origin is allowed.
    pub fn new(
        allowed_origins: &[String],
        cors_origin: Option<&str>,
    ) -> Result<OriginPolicy, InvalidOrigin> {
        let mut policy = OriginPolicy::default();
        for entry in allowed_origins
            .iter()
            .map(String::as_str)
            .chain(cors_origin)
        {
            let entry = entry.trim();
            if entry == "*" {
                policy.any = true;
            } else if !entry.is_empty() {
                let origin = Origin::parse(entry.as_bytes())
                    .ok_or_else(|| InvalidOrigin(entry.to_string()))?;
                policy.allowed.push(origin);
            }
        }
        Ok(policy)
    }

    /// From the `--allowed-origins` flag as written: a comma-separated list.
    pub fn from_flags(
        allowed_origins: &str,
        cors_origin: Option<&str>,
    ) -> Result<OriginPolicy, InvalidOrigin> {
        let list: Vec<String> = allowed_origins.split(',').map(str::to_string).collect();
        OriginPolicy::new(&list, cors_origin)
    }

    /// Whether a request with this `Origin` and `Host` (raw header values,
    /// if present) on a TLS or plain listener may publish or open a
    /// WebSocket.
    pub fn check(
        &self,
        origin: Option<&[u8]>,
        host: Option<&[u8]>,
        tls: bool,
    ) -> Result<(), OriginError> {
        // No Origin: not a page's script; tokens alone decide.
        let Some(origin) = origin else {
            return Ok(());
        };
        if self.any {
            return Ok(());
        }
        let Some(origin) = Origin::parse(trim_ows(origin)) else {
            return Err(OriginError::NotAllowed);
        };
        let own = host.and_then(|h| Origin::of_request(trim_ows(h), tls));
        if own.as_ref() == Some(&origin) || self.allowed.contains(&origin) {
            Ok(())
        } else {
            Err(OriginError::NotAllowed)
        }
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The verifier of `--auth-secret`, allowing `--auth-leeway` of clock
/// skew; `None` without a secret (tokens off).
pub fn token_verifier(cfg: &crate::config::Config) -> Option<crate::wire::jws::Verifier> {
    use crate::wire::jws::{TokenLimits, Verifier};
    let limits = TokenLimits {
        leeway_secs: cfg.auth_leeway.as_secs(),
        ..TokenLimits::default()
    };
    let secret = cfg.auth_secret.as_deref()?;
    Some(Verifier::with_limits(secret, limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_only() -> OriginPolicy {
        OriginPolicy::new(&[], None).unwrap()
    }

    fn check(p: &OriginPolicy, origin: &str, host: &str, tls: bool) -> Result<(), OriginError> {
        p.check(Some(origin.as_bytes()), Some(host.as_bytes()), tls)
    }

    #[test]
    fn no_origin_is_judged_by_tokens_alone() {
        assert_eq!(own_only().check(None, Some(b"example.com"), false), Ok(()));
        assert_eq!(own_only().check(None, None, true), Ok(()));
    }

    #[test]
    fn own_origin() {
        let p = own_only();
        assert_eq!(
            check(&p, "http://example.com", "example.com", false),
            Ok(())
        );
        assert_eq!(
            check(&p, "HTTP://EXAMPLE.COM", "Example.com", false),
            Ok(())
        );
        // RFC 6454 §4 step 6 / §6.2: the default port is the same origin,
        // written or not, on either side.
        assert_eq!(
            check(&p, "http://example.com:80", "example.com", false),
            Ok(())
        );
        assert_eq!(
            check(&p, "http://example.com", "example.com:80", false),
            Ok(())
        );
        assert_eq!(
            check(&p, "https://example.com", "example.com:443", true),
            Ok(())
        );
        assert_eq!(
            check(&p, "http://localhost:8080", "localhost:8080", false),
            Ok(())
        );
        assert_eq!(check(&p, "http://[::1]:8080", "[::1]:8080", false), Ok(()));
        assert_eq!(
            check(&p, "http://127.0.0.1:8080", " 127.0.0.1:8080 ", false),
            Ok(())
        );
    }

    #[test]
    fn another_scheme_port_or_host_is_foreign() {
        let p = own_only();
        let no = Err(OriginError::NotAllowed);
        // RFC 6454 §3.2: same host, another scheme or port: another origin.
        assert_eq!(check(&p, "http://example.com", "example.com", true), no);
        assert_eq!(check(&p, "https://example.com", "example.com", false), no);
        assert_eq!(
            check(&p, "http://example.com:8080", "example.com", false),
            no
        );
        assert_eq!(
            check(&p, "http://example.com", "example.com:8080", false),
            no
        );
        assert_eq!(check(&p, "http://evil.example", "example.com", false), no);
        assert_eq!(
            check(&p, "http://example.com.evil", "example.com", false),
            no
        );
        // Without a Host the server's own origin is unknown.
        assert_eq!(p.check(Some(b"http://example.com"), None, false), no);
        assert_eq!(OriginError::NotAllowed.status(), 403);
    }

    #[test]
    fn null_and_malformed_origins_are_foreign() {
        let p = own_only();
        let no = Err(OriginError::NotAllowed);
        for origin in [
            "null",
            "",
            "example.com",
            "http://example.com/",
            "http://user@example.com",
            "http://example.com:",
            "http://example.com:99999",
            "http://example.com:8o",
            "http://example.com http://other.example",
            "http://exa mple.com",
            "1http://example.com",
            "http://",
            "http://[]",
        ] {
            assert_eq!(check(&p, origin, "example.com", false), no, "{origin:?}");
        }
    }

    #[test]
    fn the_list_and_the_cors_origin() {
        let p = OriginPolicy::from_flags(
            "https://app.example, http://localhost:3000",
            Some("https://docs.example"),
        )
        .unwrap();
        let host = "push.example";
        assert_eq!(check(&p, "https://app.example", host, true), Ok(()));
        assert_eq!(check(&p, "https://APP.example:443", host, true), Ok(()));
        assert_eq!(check(&p, "http://localhost:3000", host, true), Ok(()));
        assert_eq!(check(&p, "https://docs.example", host, false), Ok(()));
        assert_eq!(check(&p, "https://push.example", host, true), Ok(()));
        let no = Err(OriginError::NotAllowed);
        assert_eq!(check(&p, "http://app.example", host, true), no);
        assert_eq!(check(&p, "http://localhost:3001", host, true), no);
        assert_eq!(check(&p, "null", host, true), no);
    }

    #[test]
    fn star_allows_every_origin() {
        let p = OriginPolicy::from_flags("*", None).unwrap();
        assert_eq!(
            check(&p, "https://anything.example", "push.example", false),
            Ok(())
        );
        assert_eq!(check(&p, "null", "push.example", false), Ok(()));
        let p = OriginPolicy::new(&[], Some("*")).unwrap();
        assert_eq!(
            check(&p, "http://anything.example", "push.example", false),
            Ok(())
        );
    }

    #[test]
    fn entries_must_be_origins() {
        assert_eq!(
            OriginPolicy::from_flags("", None),
            Ok(OriginPolicy::default())
        );
        assert_eq!(
            OriginPolicy::from_flags("app.example", None),
            Err(InvalidOrigin("app.example".into()))
        );
        // `null` cannot be allowed: any site can produce it.
        assert!(OriginPolicy::from_flags("null", None).is_err());
        assert!(OriginPolicy::from_flags("https://app.example/", None).is_err());
    }

    #[test]
    fn parse_then_serialise() {
        for (input, serialised) in [
            ("http://example.com", "http://example.com"),
            ("HTTPS://Example.COM:443", "https://example.com"),
            ("https://example.com:8443", "https://example.com:8443"),
            ("http://[::1]:80", "http://[::1]"),
            ("http://localhost:08080", "http://localhost:8080"),
        ] {
            let origin = Origin::parse(input.as_bytes()).unwrap();
            assert_eq!(origin.to_string(), serialised);
            assert_eq!(Origin::parse(serialised.as_bytes()), Some(origin));
        }
    }
}

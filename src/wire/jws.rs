//! Access tokens: JWS compact serialization with HS256, and the claims
//! pushwire reads from them.
//!
//! Before working on this file, read RFC 7515 §3.1 (the compact form),
//! §4.1 (header parameters) and §5.2 (validation), RFC 7519 §4.1 (the
//! registered claims) and §7.2 (validating a JWT), and RFC 8725 (JWT best
//! current practices), which explains why almost every choice here is a
//! refusal.
//!
//! A token is `BASE64URL(header) . BASE64URL(payload) . BASE64URL(mac)`,
//! where `mac` is HMAC-SHA-256 over the first two parts as ASCII. Only
//! HS256 exists here: the secret is shared between whoever mints tokens
//! and this server, and nothing in a token may choose another algorithm
//! (RFC 8725 §2.1: `alg: none` and algorithm substitution are the classic
//! JWT attacks). The MAC is checked before the payload is read, so a
//! forged token never reaches the claims parser.
//!
//! Not supported: other algorithms, JWE, the JSON serialization, nested
//! tokens, `kid`-selected keys, `aud`/`iss` checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::client::json::{self, Value};

type HmacSha256 = Hmac<Sha256>;

/// The bounds a [`Verifier`] works within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLimits {
    /// The longest token accepted, in bytes. Longer: [`TokenError::TooLong`],
    /// before anything is decoded, so a token's size bounds every buffer
    /// the verifier allocates.
    pub max_token_bytes: usize,
    /// The most topic patterns in `publish` plus `subscribe`. More:
    /// [`TokenError::TooManyPatterns`]; each pattern is matched on every
    /// request, so the list is kept short.
    pub max_patterns: usize,
    /// Seconds of clock skew allowed between the minting host and this
    /// one, in both directions: a token is still valid `leeway_secs` after
    /// its `exp` and already valid `leeway_secs` before its `nbf`
    /// (RFC 7519 §4.1.4: "Implementers MAY provide for some small leeway").
    pub leeway_secs: u64,
}

impl Default for TokenLimits {
    fn default() -> Self {
        TokenLimits {
            max_token_bytes: 4096,
            max_patterns: 64,
            leeway_secs: 0,
        }
    }
}

/// Which of the three parts of a token a problem is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Header,
    Payload,
    Signature,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// Why a token, or a request's way of carrying one, is refused, named after
/// the rule broken. [`status`](TokenError::status) is the HTTP answer and
/// [`www_authenticate`](TokenError::www_authenticate) the challenge it
/// carries (RFC 6750 §3).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Longer than [`TokenLimits::max_token_bytes`].
    #[error("token longer than {max} bytes")]
    TooLong { max: usize },
    /// RFC 7515 §7.1: the compact form is exactly three parts joined by
    /// two periods.
    #[error("token is not three base64url parts joined by '.'")]
    NotThreeParts,
    /// RFC 7515 §2 and §3.1: each part is base64url without padding. A
    /// `=`, a `+` or `/`, or trailing bits that are not zero (two
    /// spellings of the same bytes) are refused.
    #[error("token {0} is not canonical unpadded base64url")]
    Base64(Part),
    /// RFC 7515 §5.2 step 3 (header) and RFC 7519 §7.2 step 10 (claims):
    /// the decoded part must be UTF-8 JSON (our parser also refuses
    /// duplicate names, as RFC 7515 §4 allows).
    #[error("token {part} is not valid JSON: {reason}")]
    Json { part: Part, reason: String },
    /// RFC 7515 §5.2 step 4 / RFC 7519 §7.2 step 10: the header and the
    /// claims are JSON objects.
    #[error("token {0} is not a JSON object")]
    NotAnObject(Part),
    /// RFC 7515 §4.1.1: `alg` MUST be present.
    #[error("token header has no alg")]
    MissingAlgorithm,
    /// RFC 7515 §5.2 step 5 and RFC 8725 §3.1: only HS256 is accepted —
    /// `none` and every other algorithm are refused.
    #[error("token algorithm is not HS256")]
    AlgorithmNotAllowed,
    /// RFC 7515 §4.1.11: a recipient that does not understand an extension
    /// listed in `crit` MUST reject the JWS; we understand none.
    #[error("token header lists critical extensions")]
    CriticalExtension,
    /// RFC 7515 §5.2 step 8: the MAC does not match (or is not 32 bytes).
    #[error("token signature does not verify")]
    BadSignature,
    /// RFC 7519 §4.1.4: the current time is on or after `exp` (plus the
    /// leeway).
    #[error("token expired")]
    Expired,
    /// RFC 7519 §4.1.5: the current time is before `nbf` (minus the
    /// leeway).
    #[error("token not valid yet")]
    NotYetValid,
    /// A claim of the wrong JSON type: `exp` and `nbf` are NumericDates
    /// (RFC 7519 §2: non-negative seconds), `publish` and `subscribe`
    /// arrays of strings, `admin` a boolean.
    #[error("token claim {0} has the wrong type")]
    ClaimType(&'static str),
    /// A topic pattern that is neither a topic name, a topic-name prefix
    /// followed by `*`, nor `*` alone.
    #[error("token claim {claim} holds an invalid topic pattern")]
    InvalidPattern { claim: &'static str },
    /// More patterns than [`TokenLimits::max_patterns`].
    #[error("token holds more than {max} topic patterns")]
    TooManyPatterns { max: usize },

    // Finding the token in a request (RFC 6750 §2).
    /// No `Authorization: Bearer` and no `?token=`.
    #[error("no access token")]
    Missing,
    /// An `Authorization` header with another scheme, and no `?token=`.
    #[error("Authorization scheme is not Bearer")]
    NotBearer,
    /// RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`; an empty or
    /// malformed token.
    #[error("malformed bearer token")]
    MalformedBearer,
    /// RFC 6750 §2: "Clients MUST NOT use more than one method to transmit
    /// the token in each request."
    #[error("access token sent both in Authorization and in the query")]
    TwoTokens,
}

impl TokenError {
    /// The HTTP status to answer with: 401 for a missing or invalid token
    /// (RFC 6750 §3.1 `invalid_token`); 400 for a request that carries one
    /// in a malformed way (RFC 6750 §3.1 `invalid_request`: "uses more than
    /// one method for including an access token, or is otherwise
    /// malformed").
    pub fn status(&self) -> u16 {
        match self {
            TokenError::MalformedBearer | TokenError::TwoTokens => 400,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` value for the answer (RFC 6750 §3). A request
    /// with no token gets the bare challenge: §3.1 "If the request lacks
    /// any authentication information ... SHOULD NOT include an error
    /// code".
    pub fn www_authenticate(&self) -> &'static str {
        match self {
            TokenError::Missing | TokenError::NotBearer => "Bearer",
            TokenError::MalformedBearer | TokenError::TwoTokens => {
                "Bearer error=\"invalid_request\""
            }
            _ => "Bearer error=\"invalid_token\"",
        }
    }
}

/// One entry of a `publish` or `subscribe` claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicPattern {
    /// `*`: every topic.
    Any,
    /// `news.*`: every topic starting with `news.` (stored without the
    /// `*`).
    Prefix(String),
    /// `news.local`: that topic only.
    Exact(String),
}

impl TopicPattern {
    /// Reads one pattern; `None` if it is not one. The prefix of a `*`
    /// pattern is held to the topic alphabet too, so a pattern can only
    /// ever name topics that can exist.
    pub fn parse(s: &str) -> Option<TopicPattern> {
        if s == "*" {
            return Some(TopicPattern::Any);
        }
        if let Some(prefix) = s.strip_suffix('*') {
            // A prefix of a 128-byte name is at most 127 bytes.
            return (prefix.len() < 128 && crate::hub::valid_topic(prefix))
                .then(|| TopicPattern::Prefix(prefix.to_string()));
        }
        crate::hub::valid_topic(s).then(|| TopicPattern::Exact(s.to_string()))
    }

    /// Whether `topic` is one this pattern names.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicPattern::Any => true,
            TopicPattern::Prefix(p) => topic.len() > p.len() && topic.starts_with(p.as_str()),
            TopicPattern::Exact(t) => t == topic,
        }
    }
}

/// What a verified token allows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// `exp`, in whole seconds (a fractional NumericDate is rounded down,
    /// which can only shorten a token's life).
    pub exp: Option<u64>,
    /// `nbf`, in whole seconds (rounded up, which can only delay it).
    pub nbf: Option<u64>,
    pub publish: Vec<TopicPattern>,
    pub subscribe: Vec<TopicPattern>,
    pub admin: bool,
}

impl Claims {
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|p| p.matches(topic))
    }

    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(topic))
    }

    /// The `admin` claim: topic management (listing, stats, delete).
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// When the token stops being valid (leeway not included): a
    /// long-lived stream opened with it may be ended then.
    pub fn expires_at(&self) -> Option<u64> {
        self.exp
    }
}

/// Checks tokens against one shared secret.
#[derive(Clone)]
pub struct Verifier {
    /// Keyed once; cloned per token (a copy of the two hashed key pads,
    /// not a re-keying).
    mac: HmacSha256,
    limits: TokenLimits,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Verifier")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Verifier {
    pub fn new(secret: &[u8]) -> Verifier {
        Verifier::with_limits(secret, TokenLimits::default())
    }

    pub fn with_limits(secret: &[u8], limits: TokenLimits) -> Verifier {
        Verifier {
            mac: new_mac(secret),
            limits,
        }
    }

    pub fn limits(&self) -> &TokenLimits {
        &self.limits
    }

    /// Validates `token` at `now_unix` (seconds since the epoch) in the
    /// order of RFC 7515 §5.2 and RFC 7519 §7.2: split, header, signature,
    /// then claims. Every refusal is a [`TokenError`].
    pub fn verify(&self, token: &[u8], now_unix: u64) -> Result<Claims, TokenError> {
        if token.len() > self.limits.max_token_bytes {
            return Err(TokenError::TooLong {
                max: self.limits.max_token_bytes,
            });
        }
        // RFC 7515 §7.1: header '.' payload '.' signature, nothing else.
        let mut parts = token.split(|&b| b == b'.');
        let (Some(header64), Some(payload64), Some(sig64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotThreeParts);
        };

        let header = parse_object(&decode(header64, Part::Header)?, Part::Header)?;
        check_header(&header)?;

        // RFC 7515 §5.2 step 8, with the key and algorithm fixed by us,
        // never by the token. `verify_slice` compares in constant time, so
        // the time taken reveals nothing about how much of a forged MAC
        // was right.
        let sig = decode(sig64, Part::Signature)?;
        let mut mac = self.mac.clone();
        mac.update(&token[..header64.len() + 1 + payload64.len()]);
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;

        let payload = parse_object(&decode(payload64, Part::Payload)?, Part::Payload)?;
        let claims = read_claims(&payload, self.limits.max_patterns)?;

        let leeway = self.limits.leeway_secs;
        if let Some(exp) = claims.exp {
            // RFC 7519 §4.1.4: "the current date/time MUST be before the
            // expiration date/time".
            if now_unix >= exp.saturating_add(leeway) {
                return Err(TokenError::Expired);
            }
        }
        if let Some(nbf) = claims.nbf {
            // RFC 7519 §4.1.5: "the current date/time MUST be after or
            // equal to the not-before date/time".
            if now_unix.saturating_add(leeway) < nbf {
                return Err(TokenError::NotYetValid);
            }
        }
        Ok(claims)
    }
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (RFC 2104 §2), so this cannot fail.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

/// Mints a token: `{"alg":"HS256","typ":"JWT"}` and `claims_json` as the
/// payload, exactly as given (the caller is trusted; [`Verifier::verify`]
/// will read it).
pub fn sign(claims_json: &[u8], secret: &[u8]) -> String {
    let mut token = String::new();
    URL_SAFE_NO_PAD.encode_string(br#"{"alg":"HS256","typ":"JWT"}"#, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json, &mut token);
    let mut mac = new_mac(secret);
    mac.update(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
    token
}

/// Finds the token a request carries: `Authorization: Bearer T` (RFC 6750
/// §2.1), else the `token` query parameter (§2.3; EventSource and
/// WebSocket in a browser cannot set headers). `authorization` is the
/// header's value, `query_token` the percent-decoded `token` parameter.
///
/// An `Authorization` header of another scheme (a proxy's `Basic`, say) is
/// not ours: the query token is used if there is one.
pub fn find_token<'a>(
    authorization: Option<&'a [u8]>,
    query_token: Option<&'a [u8]>,
) -> Result<&'a [u8], TokenError> {
    let bearer = match authorization.map(trim_ows) {
        Some(value) => bearer_token(value)?,
        None => None,
    };
    match (bearer, query_token) {
        (Some(_), Some(_)) => Err(TokenError::TwoTokens),
        (Some(t), None) => Ok(t),
        (None, Some(t)) if is_b64token(t) => Ok(t),
        (None, Some(_)) => Err(TokenError::MalformedBearer),
        (None, None) if authorization.is_some() => Err(TokenError::NotBearer),
        (None, None) => Err(TokenError::Missing),
    }
}

/// The token of a `Bearer` credential, `None` for another scheme.
fn bearer_token(value: &[u8]) -> Result<Option<&[u8]>, TokenError> {
    let scheme_end = value
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    // RFC 9110 §11.1: "It uses a case-insensitive token to identify the
    // authentication scheme".
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return Ok(None);
    }
    // RFC 6750 §2.1: "Bearer" 1*SP b64token.
    let token = trim_ows(rest);
    if rest.first() != Some(&b' ') || !is_b64token(token) {
        return Err(TokenError::MalformedBearer);
    }
    Ok(Some(token))
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="`.
fn is_b64token(t: &[u8]) -> bool {
    let body_end = t.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body_end > 0
        && t[..body_end]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
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

fn decode(part: &[u8], which: Part) -> Result<Vec<u8>, TokenError> {
    // URL_SAFE_NO_PAD refuses `=`, the `+` and `/` alphabet, and non-zero
    // trailing bits: each byte string has exactly one accepted spelling,
    // so a token cannot be altered without changing the bytes signed.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Base64(which))
}

fn parse_object(bytes: &[u8], part: Part) -> Result<Value, TokenError> {
    let text = std::str::from_utf8(bytes).map_err(|_| TokenError::Json {
        part,
        reason: "not UTF-8".to_string(),
    })?;
    let value = json::parse(text).map_err(|e| TokenError::Json {
        part,
        reason: e.to_string(),
    })?;
    match value {
        Value::Object(_) => Ok(value),
        _ => Err(TokenError::NotAnObject(part)),
    }
}

fn check_header(header: &Value) -> Result<(), TokenError> {
    match header.get("alg") {
        None => return Err(TokenError::MissingAlgorithm),
        // RFC 7515 §4.1.1: the value is case-sensitive.
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(_) => return Err(TokenError::AlgorithmNotAllowed),
    }
    // RFC 7515 §4.1.11: "If any of the listed extension Header Parameters
    // are not understood and supported by the recipient, then the JWS is
    // invalid." We support none, so any `crit` at all is refused.
    if header.get("crit").is_some() {
        return Err(TokenError::CriticalExtension);
    }
    Ok(())
}

fn read_claims(payload: &Value, max_patterns: usize) -> Result<Claims, TokenError> {
    let mut claims = Claims {
        exp: numeric_date(payload, "exp", f64::floor)?,
        nbf: numeric_date(payload, "nbf", f64::ceil)?,
        ..Claims::default()
    };
    claims.publish = patterns(payload, "publish", max_patterns)?;
    claims.subscribe = patterns(
        payload,
        "subscribe",
        max_patterns.saturating_sub(claims.publish.len()),
    )
    .map_err(|e| match e {
        TokenError::TooManyPatterns { .. } => TokenError::TooManyPatterns { max: max_patterns },
        e => e,
    })?;
    claims.admin = match payload.get("admin") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(TokenError::ClaimType("admin")),
    };
    Ok(claims)
}

/// RFC 7519 §2: a NumericDate is "a JSON numeric value representing the
/// number of seconds from 1970-01-01T00:00:00Z UTC ... non-integer values
/// can be represented".
fn numeric_date(
    payload: &Value,
    claim: &'static str,
    round: fn(f64) -> f64,
) -> Result<Option<u64>, TokenError> {
    match payload.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) if n.value().is_finite() && n.value() >= 0.0 => {
            // `as` saturates: a date past u64::MAX seconds is "never".
            Ok(Some(round(n.value()) as u64))
        }
        Some(_) => Err(TokenError::ClaimType(claim)),
    }
}

fn patterns(
    payload: &Value,
    claim: &'static str,
    max: usize,
) -> Result<Vec<TopicPattern>, TokenError> {
    let Some(value) = payload.get(claim) else {
        return Ok(Vec::new());
    };
    let items = value.as_array().ok_or(TokenError::ClaimType(claim))?;
    if items.len() > max {
        return Err(TokenError::TooManyPatterns { max });
    }
    items
        .iter()
        .map(|item| {
            let s = item.as_str().ok_or(TokenError::ClaimType(claim))?;
            TopicPattern::parse(s).ok_or(TokenError::InvalidPattern { claim })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515 Appendix A.1: the HS256 example. Its header is written
    /// with CRLFs and its claims have no topic patterns, so it also shows
    /// that any whitespace and unknown claims are accepted.
    const A1_TOKEN: &[u8] = b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
        .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
        .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    /// RFC 7515 Appendix A.1's key, a JWK `k` (base64url).
    fn a1_key() -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(
                "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
            )
            .unwrap()
    }

    const SECRET: &[u8] = b"pushwire test secret";
    const NOW: u64 = 1_800_000_000;

    fn verify(token: &str) -> Result<Claims, TokenError> {
        Verifier::new(SECRET).verify(token.as_bytes(), NOW)
    }

    /// A token with the given raw header and payload, signed with SECRET.
    fn forge(header: &str, payload: &str) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = new_mac(SECRET);
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    #[test]
    fn rfc7515_a1_verifies() {
        let v = Verifier::new(&a1_key());
        // exp 1300819380 (2011-03-22); no leeway by default.
        let claims = v.verify(A1_TOKEN, 1_300_819_379).unwrap();
        assert_eq!(claims.expires_at(), Some(1_300_819_380));
        assert!(!claims.is_admin());
        assert!(!claims.may_subscribe("news"));
        // RFC 7519 §4.1.4: the time "MUST be before" exp.
        assert_eq!(v.verify(A1_TOKEN, 1_300_819_380), Err(TokenError::Expired));
    }

    #[test]
    fn rfc7515_a1_mac() {
        // Our MAC over the RFC's signing input is the RFC's signature.
        let (input, sig) = A1_TOKEN.split_at(A1_TOKEN.iter().rposition(|&b| b == b'.').unwrap());
        let mut mac = new_mac(&a1_key());
        mac.update(input);
        assert_eq!(
            URL_SAFE_NO_PAD
                .encode(mac.finalize().into_bytes())
                .as_bytes(),
            &sig[1..]
        );
    }

    #[test]
    fn sign_then_verify() {
        let token = sign(
            br#"{"exp":1800000100,"nbf":1799999990,"subscribe":["news.*","*"],"publish":["news.local"],"admin":true}"#,
            SECRET,
        );
        let claims = verify(&token).unwrap();
        assert_eq!(claims.expires_at(), Some(1_800_000_100));
        assert_eq!(claims.nbf, Some(1_799_999_990));
        assert!(claims.may_publish("news.local"));
        assert!(!claims.may_publish("news.locals"));
        assert!(!claims.may_publish("news"));
        assert!(claims.may_subscribe("anything"));
        assert!(claims.is_admin());
        // Our header, as emitted.
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    }

    #[test]
    fn patterns() {
        use TopicPattern::*;
        assert_eq!(TopicPattern::parse("*"), Some(Any));
        assert_eq!(TopicPattern::parse("news.*"), Some(Prefix("news.".into())));
        assert_eq!(TopicPattern::parse("news"), Some(Exact("news".into())));
        for bad in [
            "",
            "news.**",
            "*.news",
            "ne*ws",
            "a b",
            "news/x",
            &"a".repeat(129),
        ] {
            assert_eq!(TopicPattern::parse(bad), None, "{bad:?}");
        }
        let p = TopicPattern::parse("news.*").unwrap();
        assert!(p.matches("news.local"));
        assert!(!p.matches("news."), "a prefix names longer topics only");
        assert!(!p.matches("news"));
        assert!(!p.matches("sports.news.x"));
    }

    #[test]
    fn refuses_other_algorithms() {
        let claims = r#"{"subscribe":["*"]}"#;
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":null}"#,
        ] {
            assert_eq!(
                verify(&forge(header, claims)),
                Err(TokenError::AlgorithmNotAllowed),
                "{header}"
            );
        }
        assert_eq!(
            verify(&forge(r#"{"typ":"JWT"}"#, claims)),
            Err(TokenError::MissingAlgorithm)
        );
        // RFC 7515 §6.1 / RFC 8725 §2.1: an unsecured token, empty
        // signature and all.
        let unsecured = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        );
        assert_eq!(verify(&unsecured), Err(TokenError::AlgorithmNotAllowed));
    }

    #[test]
    fn refuses_crit() {
        let t = forge(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, "{}");
        assert_eq!(verify(&t), Err(TokenError::CriticalExtension));
        let t = forge(r#"{"alg":"HS256","crit":[]}"#, "{}");
        assert_eq!(verify(&t), Err(TokenError::CriticalExtension));
    }

    #[test]
    fn refuses_a_bad_signature() {
        let token = sign(br#"{"subscribe":["*"]}"#, SECRET);
        let other = Verifier::new(b"another secret");
        assert_eq!(
            other.verify(token.as_bytes(), NOW),
            Err(TokenError::BadSignature)
        );
        // A truncated MAC is not a shorter valid one.
        let short = &token[..token.len() - 4];
        assert_eq!(verify(short), Err(TokenError::BadSignature));
        // Claims swapped in under the old signature.
        let (head, rest) = token.split_once('.').unwrap();
        let sig = rest.split_once('.').unwrap().1;
        let swapped = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(r#"{"admin":true}"#)
        );
        assert_eq!(verify(&swapped), Err(TokenError::BadSignature));
    }

    #[test]
    fn refuses_malformed_base64url() {
        let token = sign(b"{}", SECRET);
        // Padding after the header.
        let padded = token.replacen('.', "==.", 1);
        assert_eq!(verify(&padded), Err(TokenError::Base64(Part::Header)));
        // The standard alphabet.
        let (h, rest) = token.split_once('.').unwrap();
        let std_alpha = format!("{}.{rest}", h.replacen('J', "+", 1));
        assert_eq!(verify(&std_alpha), Err(TokenError::Base64(Part::Header)));
        // Non-canonical trailing bits: the MAC's last character carries 2
        // spare bits (32 bytes = 42 chars + 4 bits); flipping one of them
        // spells the same bytes another way.
        let last = token.as_bytes()[token.len() - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.iter().position(|&c| c == last).unwrap();
        let twin = alphabet[idx ^ 1] as char;
        let non_canonical = format!("{}{twin}", &token[..token.len() - 1]);
        assert_eq!(
            verify(&non_canonical),
            Err(TokenError::Base64(Part::Signature))
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        assert_eq!(verify(""), Err(TokenError::NotThreeParts));
        assert_eq!(verify("a.b"), Err(TokenError::NotThreeParts));
        let token = sign(b"{}", SECRET);
        assert_eq!(verify(&format!("{token}.")), Err(TokenError::NotThreeParts));
        let long = "a".repeat(4097);
        assert_eq!(verify(&long), Err(TokenError::TooLong { max: 4096 }));
        assert!(matches!(
            verify(&forge("{\"alg\":\"HS256\",}", "{}")),
            Err(TokenError::Json {
                part: Part::Header,
                ..
            })
        ));
        assert!(matches!(
            verify(&forge(r#"{"alg":"HS256","alg":"none"}"#, "{}")),
            Err(TokenError::Json {
                part: Part::Header,
                ..
            })
        ));
        assert_eq!(
            verify(&forge(r#"["alg","HS256"]"#, "{}")),
            Err(TokenError::NotAnObject(Part::Header))
        );
        assert!(matches!(
            verify(&sign(b"{\"exp\":", SECRET)),
            Err(TokenError::Json {
                part: Part::Payload,
                ..
            })
        ));
        assert!(matches!(
            verify(&sign(b"\xff", SECRET)),
            Err(TokenError::Json {
                part: Part::Payload,
                ..
            })
        ));
        assert_eq!(
            verify(&sign(b"3", SECRET)),
            Err(TokenError::NotAnObject(Part::Payload))
        );
    }

    #[test]
    fn claim_types() {
        for (payload, claim) in [
            (r#"{"exp":"1800000100"}"#, "exp"),
            (r#"{"exp":-1}"#, "exp"),
            (r#"{"nbf":true}"#, "nbf"),
            (r#"{"publish":"news"}"#, "publish"),
            (r#"{"subscribe":[1]}"#, "subscribe"),
            (r#"{"admin":"yes"}"#, "admin"),
        ] {
            assert_eq!(
                verify(&sign(payload.as_bytes(), SECRET)),
                Err(TokenError::ClaimType(claim)),
                "{payload}"
            );
        }
        assert_eq!(
            verify(&sign(br#"{"publish":["a b"]}"#, SECRET)),
            Err(TokenError::InvalidPattern { claim: "publish" })
        );
        let many = format!(
            r#"{{"publish":[{}],"subscribe":["x"]}}"#,
            vec!["\"a\""; 64].join(",")
        );
        assert_eq!(
            verify(&sign(many.as_bytes(), SECRET)),
            Err(TokenError::TooManyPatterns { max: 64 })
        );
    }

    #[test]
    fn time_and_leeway() {
        let v = Verifier::with_limits(
            SECRET,
            TokenLimits {
                leeway_secs: 10,
                ..TokenLimits::default()
            },
        );
        let exp = sign(br#"{"exp":1000.9}"#, SECRET);
        assert!(v.verify(exp.as_bytes(), 1009).is_ok());
        assert_eq!(v.verify(exp.as_bytes(), 1010), Err(TokenError::Expired));
        let nbf = sign(br#"{"nbf":1000.1}"#, SECRET);
        assert_eq!(v.verify(nbf.as_bytes(), 990), Err(TokenError::NotYetValid));
        assert!(v.verify(nbf.as_bytes(), 991).is_ok());
        // Far-future dates saturate instead of wrapping.
        let far = sign(br#"{"exp":1e300}"#, SECRET);
        assert!(v.verify(far.as_bytes(), u64::MAX - 1).is_ok());
    }

    #[test]
    fn every_verify_error_is_401() {
        for e in [
            TokenError::BadSignature,
            TokenError::AlgorithmNotAllowed,
            TokenError::Expired,
            TokenError::NotThreeParts,
            TokenError::Missing,
        ] {
            assert_eq!(e.status(), 401, "{e}");
        }
        assert_eq!(TokenError::Missing.www_authenticate(), "Bearer");
        assert_eq!(
            TokenError::Expired.www_authenticate(),
            "Bearer error=\"invalid_token\""
        );
    }

    #[test]
    fn finding_the_token() {
        // RFC 6750 §2.1's example.
        assert_eq!(
            find_token(Some(b"Bearer mF_9.B5f-4.1JqM"), None),
            Ok(&b"mF_9.B5f-4.1JqM"[..])
        );
        assert_eq!(
            find_token(Some(b"bearer  abc.d.e "), None),
            Ok(&b"abc.d.e"[..])
        );
        // RFC 6750 §2.3's example.
        assert_eq!(
            find_token(None, Some(b"mF_9.B5f-4.1JqM")),
            Ok(&b"mF_9.B5f-4.1JqM"[..])
        );
        assert_eq!(find_token(None, None), Err(TokenError::Missing));
        assert_eq!(
            find_token(Some(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"), Some(b"a.b.c")),
            Ok(&b"a.b.c"[..])
        );
        assert_eq!(
            find_token(Some(b"Basic YWxhZGRpbjpvcGVuc2VzYW1l"), None),
            Err(TokenError::NotBearer)
        );
        assert_eq!(
            find_token(Some(b"Bearer"), None),
            Err(TokenError::MalformedBearer)
        );
        assert_eq!(
            find_token(Some(b"Bearer "), None),
            Err(TokenError::MalformedBearer)
        );
        assert_eq!(
            find_token(Some(b"Bearer a,b"), None),
            Err(TokenError::MalformedBearer)
        );
        assert_eq!(
            find_token(Some(b"Bearer\ta"), None),
            Err(TokenError::MalformedBearer)
        );
        assert_eq!(
            find_token(None, Some(b"")),
            Err(TokenError::MalformedBearer)
        );
        assert_eq!(
            find_token(Some(b"Bearer a.b.c"), Some(b"a.b.c")),
            Err(TokenError::TwoTokens)
        );
        assert_eq!(TokenError::TwoTokens.status(), 400);
    }
}

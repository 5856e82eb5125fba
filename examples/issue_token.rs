//! Mints an access token for a server started with `--auth-secret`: a JWS
//! compact token (HS256) whose claims say which topics it may publish to
//! and subscribe to, and until when.
//!
//! ```text
//! cargo run --example issue_token -- --secret S --subscribe 'news.*' --publish news.local --ttl 3600
//! ```
//! prints the token. Use it as a header or, where a browser cannot set
//! one (EventSource), in the query:
//! ```text
//! T=$(cargo run -q --example issue_token -- --secret S --subscribe 'news.*')
//! curl -N -H "Authorization: Bearer $T" http://127.0.0.1:8080/topics/news.local/sse
//! curl -N "http://127.0.0.1:8080/topics/news.local/sse?token=$T"
//! ```
//! A pattern is a topic name, a prefix ending in `*`, or `*` alone;
//! `--publish` and `--subscribe` may be given many times. `--admin` allows
//! topic management. `--secret-file F` reads the secret from a file (its
//! trailing newline dropped), which keeps it out of the shell history.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use pushwire::wire::jws::{sign, TopicPattern};

const USAGE: &str = "usage: issue_token (--secret S | --secret-file F) [--subscribe PATTERN]... \
                     [--publish PATTERN]... [--admin] [--ttl SECONDS (3600)] [--not-before SECONDS]";

/// What the command line asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub secret: Vec<u8>,
    pub subscribe: Vec<String>,
    pub publish: Vec<String>,
    pub admin: bool,
    /// Seconds from now until `exp`.
    pub ttl: u64,
    /// Seconds from now until `nbf`, if set.
    pub not_before: Option<u64>,
}

/// Reads the arguments (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
    let mut r = Request {
        ttl: 3600,
        ..Request::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value\n{USAGE}"));
        let pattern = |v: String| match TopicPattern::parse(&v) {
            Some(_) => Ok(v),
            None => Err(format!(
                "{v:?} is not a topic pattern (a name, a prefix ending in *, or *)"
            )),
        };
        let seconds = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{v:?}: seconds expected"))
        };
        match arg.as_str() {
            "--secret" => r.secret = value()?.into_bytes(),
            "--secret-file" => {
                let path = value()?;
                let mut bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
                while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                    bytes.pop();
                }
                r.secret = bytes;
            }
            "--subscribe" => r.subscribe.push(pattern(value()?)?),
            "--publish" => r.publish.push(pattern(value()?)?),
            "--admin" => r.admin = true,
            "--ttl" => r.ttl = seconds(value()?)?,
            "--not-before" => r.not_before = Some(seconds(value()?)?),
            _ => return Err(format!("{USAGE}  ({arg}?)")),
        }
    }
    if r.secret.is_empty() {
        return Err(format!("a secret is needed\n{USAGE}"));
    }
    Ok(r)
}

/// The claims JSON for `r` at `now_unix`.
pub fn claims_json(r: &Request, now_unix: u64) -> Vec<u8> {
    use pushwire::wire::json::write_str;
    let list = |out: &mut Vec<u8>, items: &[String]| {
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, item);
        }
        out.push(b']');
    };
    let mut out = format!(
        "{{\"iat\":{now_unix},\"exp\":{}",
        now_unix.saturating_add(r.ttl)
    )
    .into_bytes();
    if let Some(nbf) = r.not_before {
        out.extend_from_slice(format!(",\"nbf\":{}", now_unix.saturating_add(nbf)).as_bytes());
    }
    out.extend_from_slice(b",\"subscribe\":");
    list(&mut out, &r.subscribe);
    out.extend_from_slice(b",\"publish\":");
    list(&mut out, &r.publish);
    if r.admin {
        out.extend_from_slice(b",\"admin\":true");
    }
    out.push(b'}');
    out
}

/// The token for `r` at `now_unix`.
pub fn mint(r: &Request, now_unix: u64) -> String {
    sign(&claims_json(r, now_unix), &r.secret)
}

fn main() {
    let request = match parse_args(std::env::args().skip(1)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("{}", mint(&request, now));
}

//! Tokens as their users make and present them: minted by the
//! `issue_token` example, found in a request, verified, and asked about
//! topics.

use pushwire::wire::jws::{find_token, TokenError, Verifier};

#[path = "../examples/issue_token.rs"]
mod issue_token;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const NOW: u64 = 1_800_000_000;

#[test]
fn the_documented_command_mints_a_token_the_server_accepts() {
    let r = issue_token::parse_args(args(&[
        "--secret",
        "S",
        "--subscribe",
        "news.*",
        "--publish",
        "news.local",
        "--ttl",
        "3600",
    ]))
    .unwrap();
    let token = issue_token::mint(&r, NOW);

    let header = format!("Bearer {token}");
    let found = find_token(Some(header.as_bytes()), None).unwrap();
    let claims = Verifier::new(b"S").verify(found, NOW + 10).unwrap();
    assert!(claims.may_subscribe("news.local"));
    assert!(claims.may_subscribe("news.world"));
    assert!(!claims.may_subscribe("sports"));
    assert!(claims.may_publish("news.local"));
    assert!(!claims.may_publish("news.world"));
    assert!(!claims.is_admin());
    assert_eq!(claims.expires_at(), Some(NOW + 3600));

    // The same token in the query, as EventSource sends it.
    let found = find_token(None, Some(token.as_bytes())).unwrap();
    assert!(Verifier::new(b"S").verify(found, NOW).is_ok());
    // Another server's secret, and after expiry.
    assert_eq!(
        Verifier::new(b"T").verify(found, NOW),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        Verifier::new(b"S").verify(found, NOW + 3600 + 30),
        Err(TokenError::Expired)
    );
}

#[test]
fn admin_not_before_and_secret_file() {
    let path = std::env::temp_dir().join(format!("pushwire-secret-{}", std::process::id()));
    std::fs::write(&path, "file secret\n").unwrap();
    let r = issue_token::parse_args(args(&[
        "--secret-file",
        path.to_str().unwrap(),
        "--admin",
        "--subscribe",
        "*",
        "--not-before",
        "600",
    ]))
    .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(r.secret, b"file secret");
    let token = issue_token::mint(&r, NOW);
    let v = Verifier::new(b"file secret");
    assert_eq!(
        v.verify(token.as_bytes(), NOW),
        Err(TokenError::NotYetValid)
    );
    let claims = v.verify(token.as_bytes(), NOW + 600).unwrap();
    assert!(claims.is_admin());
    assert!(claims.may_subscribe("anything"));
    assert!(!claims.may_publish("anything"));
}

#[test]
fn bad_command_lines() {
    assert!(
        issue_token::parse_args(args(&["--subscribe", "news"])).is_err(),
        "no secret"
    );
    assert!(issue_token::parse_args(args(&["--secret", "S", "--publish", "a b"])).is_err());
    assert!(issue_token::parse_args(args(&["--secret", "S", "--ttl", "soon"])).is_err());
    assert!(issue_token::parse_args(args(&["--secret"])).is_err());
    assert!(issue_token::parse_args(args(&["--secret", "S", "--frobnicate"])).is_err());
}

#[test]
fn claims_are_json_with_escaped_patterns() {
    let r = issue_token::parse_args(args(&["--secret", "S", "--publish", "a:b-c_d.*"])).unwrap();
    assert_eq!(
        String::from_utf8(issue_token::claims_json(&r, 100)).unwrap(),
        r#"{"iat":100,"exp":3700,"subscribe":[],"publish":["a:b-c_d.*"]}"#
    );
}

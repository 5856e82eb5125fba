//! `GET /metrics` in the Prometheus text exposition format 0.0.4, open
//! even with tokens on, and `/stats` with uptime and version.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use pushwire::Config;
use support::*;

/// Every sample line is `name{labels} value` with a name that had its
/// `# TYPE` line before it.
fn check_format(text: &str) {
    let mut typed: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
        let name = series.split('{').next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| typed.iter().any(|t| t == b))
            .unwrap_or(name);
        assert!(typed.iter().any(|t| t == base), "untyped sample {line}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "{line}"
        );
    }
}

#[test]
fn metrics_count_what_happens_and_follow_the_text_format() {
    let server = TestServer::start(Config {
        auth_secret: Some(b"a test secret of some length".to_vec()),
        ..Config::default()
    });
    // Refused without a token: counted as an auth failure and a 401.
    assert_eq!(post(&server, "/topics/m", "x").status, 401);
    let r = get(&server, "/metrics");
    assert_eq!(r.status, 200, "open with tokens on");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let text = r.text();
    check_format(&text);
    for needle in [
        "pushwire_refused_total{status=\"401\"} 1",
        "pushwire_auth_failures_total 1",
        "pushwire_connections{state=\"http\"}",
        "# TYPE pushwire_publish_latency_seconds histogram",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn deliveries_and_open_streams_are_counted_by_transport() {
    let server = TestServer::start(Config::default());
    let mut sse = server.connect();
    write!(sse, "GET /topics/c/sse HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let _ = sse.read(&mut buf).unwrap();
    assert_eq!(post(&server, "/topics/c", "hello").status, 200);
    std::thread::sleep(Duration::from_millis(100));
    let text = get(&server, "/metrics").text();
    assert!(
        text.contains("pushwire_connections{state=\"sse\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("pushwire_deliveries_total{transport=\"sse\"} 1"),
        "{text}"
    );
    assert!(text.contains("pushwire_published_total 1"));
    assert!(
        text.contains("pushwire_publish_latency_seconds_count 1"),
        "{text}"
    );
    let stats = get(&server, "/stats").text();
    assert!(stats.contains("\"version\":\"") && stats.contains("\"uptime_seconds\":"));
}

#[test]
fn socketio_sessions_sockets_and_deliveries_are_counted() {
    let server = TestServer::start(Config::default());
    let open = get(&server, "/socket.io/?EIO=4&transport=polling").text();
    let at = open.find("\"sid\":\"").expect("an open packet") + 7;
    let sid = &open[at..at + 27];
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(post(&server, &path, "40").text(), "ok");
    assert!(get(&server, &path).text().starts_with("40{\"sid\""));
    assert_eq!(post(&server, &path, r#"42["subscribe","sm"]"#).text(), "ok");
    assert_eq!(post(&server, "/topics/sm", "hello").status, 200);
    assert!(get(&server, &path)
        .text()
        .starts_with("42[\"message\",\"hello\""));
    let text = get(&server, "/metrics").text();
    check_format(&text);
    for needle in [
        "# TYPE pushwire_engineio_sessions gauge",
        "pushwire_engineio_sessions{transport=\"polling\"} 1",
        "pushwire_engineio_sessions{transport=\"websocket\"} 0",
        "pushwire_socketio_sockets 1",
        "pushwire_deliveries_total{transport=\"socketio\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

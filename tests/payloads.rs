//! JSON payloads and percent-decoding over real sockets (DESIGN.md,
//! "Payloads" and "The HTTP interface"): a `Content-Type:
//! application/json` publish is validated and embedded as a value in
//! every JSON the server writes, its text is the SSE `data:`, text stays
//! a string; path segments and query values are decoded once.

mod clients;
mod support;

use std::time::Duration;

use clients::*;
use pushwire::wire::ws_frame::Opcode;
use pushwire::Config;
use support::*;

fn config() -> Config {
    Config::default()
}

/// `POST path` with a content type; the raw response.
fn post_typed(server: &TestServer, path: &str, content_type: &str, body: &str) -> Response {
    request(
        server,
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn post_json(server: &TestServer, topic: &str, body: &str) -> String {
    let r = post_typed(
        server,
        &format!("/topics/{topic}"),
        "application/json",
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    parse_json(&r.text()).str_field("id").to_string()
}

const OBJECT: &str = r#"{"a":1,"b":[true,null,"x\n"]}"#;

#[test]
fn json_payload_is_embedded_raw_on_every_transport() {
    let server = TestServer::start(config());
    let mut sse = RawSse::open(server.addr, "/topics/j/sse", &[]);
    let mut multi = RawSse::open(server.addr, "/sse?topic=j&topic=k", &[]);
    let mut stream = RawSse::open(server.addr, "/topics/j/stream", &[]);
    let mut ws = RawWs::connect(server.addr, "/topics/j/ws");
    let mut mux = RawWs::connect(server.addr, "/ws");
    mux.send_text(r#"{"type":"subscribe","topic":"j"}"#);
    assert_eq!(mux.recv_json().str_field("type"), "ack");
    // The multi-topic stream holds two subscriptions.
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 6);

    let id = post_json(&server, "j", OBJECT);
    let embedded = format!(r#""data":{OBJECT}"#);

    // SSE: the data is the JSON text itself.
    let e = sse.next_event();
    assert_eq!(
        (e.data.as_str(), e.last_event_id.as_str()),
        (OBJECT, id.as_str())
    );
    // Multi-topic SSE: the value inside the envelope, not a string.
    let e = multi.next_event();
    assert_eq!(
        e.data,
        format!(r#"{{"topic":"j","id":"{id}","event":"message","data":{OBJECT}}}"#)
    );
    // NDJSON, topic WebSocket, multiplexed WebSocket.
    assert!(stream.wait_for_bytes(embedded.as_bytes(), Duration::from_secs(5)));
    let f = ws.recv_message();
    assert_eq!(
        f.text(),
        format!(r#"{{"id":"{id}","event":"message","data":{OBJECT}}}"#)
    );
    let f = mux.recv_message();
    assert_eq!(
        f.text(),
        format!(r#"{{"topic":"j","id":"{id}","event":"message","data":{OBJECT}}}"#)
    );
    // Polls, single and multi.
    for path in [
        "/topics/j/messages",
        "/messages?topic=j&topic=k",
        "/topics/j/poll?after=earliest",
        "/poll?topic=j&after=earliest",
    ] {
        let r = get(&server, path);
        assert_eq!(r.status, 200);
        assert!(r.text().contains(&embedded), "{path}: {}", r.text());
        parse_json(&r.text());
    }
    // Scalars and arrays are JSON values too.
    for value in ["42", "\"a string\"", "[1,2]", "null", "true"] {
        let id = post_json(&server, "scalar", value);
        let r = get(&server, "/topics/scalar/messages");
        assert!(
            r.text().contains(&format!(
                r#""id":"{id}","event":"message","data":{value}}}"#
            )),
            "{value}: {}",
            r.text()
        );
    }
}

#[test]
fn invalid_json_is_400_and_not_published() {
    let server = TestServer::start(config());
    for body in ["", "{", r#"{"a":}"#, "[1,]", "nul", "{\"a\":1} x", "'x'"] {
        let r = post_typed(&server, "/topics/bad", "application/json", body);
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
    }
    // The media type is matched whatever its case and parameters.
    let r = post_typed(
        &server,
        "/topics/bad",
        "Application/JSON; charset=utf-8",
        "{",
    );
    assert_eq!(r.status, 400);
    let r = get(&server, "/topics/bad/messages");
    assert!(batch(&r).messages.is_empty(), "{}", r.text());
}

#[test]
fn text_stays_a_string_even_when_it_looks_like_json() {
    let server = TestServer::start(config());
    let r = post_typed(&server, "/topics/t", "text/plain", OBJECT);
    assert_eq!(r.status, 200);
    publish(&server, "t", None, "plain");
    let r = get(&server, "/topics/t/messages");
    let b = batch(&r);
    assert_eq!(b.data(), [OBJECT, "plain"]);
    assert!(r.text().contains(r#""data":"{\"a\":1,"#), "{}", r.text());
    // A JSON-looking text on SSE is its text, the same as JSON's: only the
    // JSON forms differ.
    let mut sse = RawSse::open(server.addr, "/topics/t/sse?last_event_id=earliest", &[]);
    assert_eq!(sse.next_event().data, OBJECT);
}

#[test]
fn ws_publish_of_non_string_data_is_json_and_envelope_sockets_too() {
    let server = TestServer::start(config());
    let mut mux = RawWs::connect(server.addr, "/ws");
    mux.send_text(r#"{"type":"publish","topic":"w","data":{"n":[1,2]},"ref":1}"#);
    assert_eq!(mux.recv_json().str_field("type"), "ack");
    mux.send_text(r#"{"type":"publish","topic":"w","data":"{\"n\":1}","ref":2}"#);
    assert_eq!(mux.recv_json().str_field("type"), "ack");

    let mut env = RawWs::connect(server.addr, "/topics/w/ws?envelope=1");
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 1);
    env.send_text(r#"{"event":"tick","data":{"x":true}}"#);
    let f = env.recv_message();
    assert!(
        f.text().ends_with(r#""event":"tick","data":{"x":true}}"#),
        "{}",
        f.text()
    );
    env.send_text(r#"{"data":"just text"}"#);
    assert!(env
        .recv_message()
        .text()
        .ends_with(r#""data":"just text"}"#));
    // Not an envelope: 1007.
    env.send_text("[1]");
    assert_eq!(env.expect_close(), 1007);

    let r = get(&server, "/topics/w/messages");
    let text = r.text();
    assert!(text.contains(r#""data":{"n":[1,2]}"#), "{text}");
    assert!(
        text.contains(r#""data":"{\"n\":1}""#),
        "a string stays one: {text}"
    );
    assert!(
        text.contains(r#""event":"tick","data":{"x":true}"#),
        "{text}"
    );
    // Without `?envelope=1` a text frame is a text message, whatever it
    // looks like.
    let mut plain = RawWs::connect(server.addr, "/topics/w2/ws");
    plain.send_text(r#"{"data":1}"#);
    let f = plain.recv_message();
    assert_eq!(f.opcode, Opcode::Text);
    assert!(
        f.text().ends_with(r#""data":"{\"data\":1}"}"#),
        "{}",
        f.text()
    );
}

#[test]
fn path_segments_and_query_values_are_percent_decoded_once() {
    let server = TestServer::start(config());
    // `?event=ns%3Aev` is the event `ns:ev`.
    let r = post_typed(&server, "/topics/pe?event=ns%3Aev", "text/plain", "x");
    assert_eq!(r.status, 200, "{}", r.text());
    // `/topics/a%2Eb` is the topic `a.b`, on every path that names one.
    let r = post_typed(&server, "/topics/a%2Eb", "text/plain", "dotted");
    assert_eq!(r.status, 200);
    let b = batch(&get(&server, "/topics/a.b/messages"));
    assert_eq!(b.data(), ["dotted"]);
    let b = batch(&get(&server, "/topics/a%2eb/messages"));
    assert_eq!(b.data(), ["dotted"]);
    let r = get(&server, "/messages?topic=a%2Eb&topic=pe");
    assert!(r.text().contains(r#""topic":"a.b""#), "{}", r.text());
    assert!(r.text().contains(r#""event":"ns:ev""#), "{}", r.text());
    let mut sse = RawSse::open(server.addr, "/topics/pe/sse?last_event_id=%65arliest", &[]);
    let e = sse.next_event();
    assert_eq!((e.event_type.as_str(), e.data.as_str()), ("ns:ev", "x"));
    // `after=%65arliest` is `earliest`.
    let b = batch(&get(&server, "/topics/a.b/poll?after=%65arliest&timeout=0"));
    assert_eq!(b.data(), ["dotted"]);
    // Decoded once: `%252E` is the three bytes `%2E`, not a topic name.
    assert_eq!(get(&server, "/topics/a%252Eb/messages").status, 400);
    // A decoded byte outside the set is still refused.
    for path in ["/topics/a%20b", "/topics/ok?event=a%0Ab"] {
        let r = post_typed(&server, path, "text/plain", "x");
        assert_eq!(r.status, 400, "{path}: {}", r.text());
    }
    // `%2F` is a byte of the segment, not a separator: a topic with `/`.
    assert_eq!(get(&server, "/topics/a%2Fb/messages").status, 400);
    // Malformed `%`: 400, in a path and in a query.
    for path in [
        "/topics/a%2/messages",
        "/topics/a%zz/messages",
        "/topics/a%/messages",
        "/topics/x/messages?after=%6",
        "/topics/x/messages?after=%g5arliest",
        "/messages?topic=a%",
        "/sse?topic=x&last_event_id=%",
    ] {
        let r = get(&server, path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
    }
    let r = post_typed(&server, "/topics/pe?event=ns%3", "text/plain", "x");
    assert_eq!(r.status, 400, "{}", r.text());
    // Nothing refused was published.
    assert_eq!(
        batch(&get(&server, "/topics/pe/messages")).messages.len(),
        1
    );
}

//! Many topics on one connection, over real sockets: `/sse`, `/stream`,
//! `/poll`, `/messages` and `/ws` with several `topic=`s. Every transport
//! delivers every topic's messages exactly once and in order per topic;
//! the combined cursor (`A=ID,B=ID`) resumes each topic exactly, a topic
//! it does not name starts live, and a cursor that cannot be honoured is
//! a gap naming its topic (DESIGN.md, "One connection, many topics").

mod clients;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use clients::*;
use pushwire::wire::ws_frame::Opcode;
use pushwire::Config;
use support::*;

fn config() -> Config {
    Config::default()
}

/// One multiplexed delivery: `{"topic","id","event","data"}`, its shape
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicMessage {
    topic: String,
    id: String,
    event: String,
    data: String,
}

fn topic_message(v: &Value) -> TopicMessage {
    assert_eq!(
        v.keys(),
        ["topic", "id", "event", "data"],
        "multi-topic message fields: {v:?}"
    );
    TopicMessage {
        topic: v.str_field("topic").to_string(),
        id: v.str_field("id").to_string(),
        event: v.str_field("event").to_string(),
        data: v.str_field("data").to_string(),
    }
}

/// A combined cursor as a map, checking its `TOPIC=ID,…` form.
fn combined(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .map(|pair| {
            let (t, id) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("pair {pair:?} of {text:?}"));
            split_id(id);
            (t.to_string(), id.to_string())
        })
        .collect()
}

/// The next multi-topic SSE event: the message and the `id:` after it.
fn sse_message(sse: &mut RawSse) -> (TopicMessage, String) {
    let e = sse.next_event();
    assert_eq!(e.event_type, "message", "a message event: {e:?}");
    let m = topic_message(&parse_json(&e.data));
    assert_eq!(m.event, e.event_type);
    (m, e.last_event_id)
}

/// Checks that `got` holds exactly `want`'s data per topic, in order.
fn assert_per_topic(got: &[TopicMessage], want: &BTreeMap<String, Vec<String>>) {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in got {
        seen.entry(m.topic.clone())
            .or_default()
            .push(m.data.clone());
    }
    seen.retain(|_, v| !v.is_empty());
    let mut want = want.clone();
    want.retain(|_, v| !v.is_empty());
    assert_eq!(seen, want, "each topic's messages exactly once, in order");
}

/// Publishes `n` rounds over `topics`, interleaved; returns what each
/// topic was sent.
fn publish_rounds(
    server: &TestServer,
    topics: &[&str],
    from: usize,
    n: usize,
    sent: &mut BTreeMap<String, Vec<String>>,
) {
    let mut http = HttpClient::new(server.addr);
    for i in from..from + n {
        for t in topics {
            let data = format!("{t}-{i}");
            http.publish(t, &data);
            sent.entry(t.to_string()).or_default().push(data);
        }
    }
}

// ---- SSE ---------------------------------------------------------------------

#[test]
fn sse_delivers_every_topic_once_in_order_with_a_combined_id() {
    let server = TestServer::start(config());
    let mut sse = RawSse::open(server.addr, "/sse?topic=a&topic=b&topic=c", &[]);
    assert_eq!(sse.head.header("content-type"), Some("text/event-stream"));
    assert!(sse.wait_for_bytes(b"retry: 3000\n\n", Duration::from_secs(5)));
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 3);

    let mut sent = BTreeMap::new();
    publish_rounds(&server, &["a", "b", "c"], 0, 10, &mut sent);
    let mut got = Vec::new();
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..30 {
        let (m, id) = sse_message(&mut sse);
        latest.insert(m.topic.clone(), m.id.clone());
        // The `id:` is the cursor *after* this event, every topic in it.
        let cursor = combined(&id);
        assert_eq!(cursor.get(&m.topic), Some(&m.id), "{id}");
        for (t, last) in &latest {
            assert_eq!(cursor.get(t), Some(last), "{id} accounts for {t}");
        }
        assert!(
            id.starts_with("a=") && id.contains(",b=") && id.contains(",c="),
            "pairs in topic order: {id}"
        );
        got.push(m);
    }
    assert_per_topic(&got, &sent);
    assert!(sse.next_event_within(Duration::from_millis(200)).is_none());

    // A named event keeps its name on `event:` and in the JSON.
    HttpClient::new(server.addr)
        .post("b", Some("price"), "42")
        .unwrap();
    let e = sse.next_event();
    assert_eq!(e.event_type, "price");
    let m = topic_message(&parse_json(&e.data));
    assert_eq!((m.topic.as_str(), m.event.as_str()), ("b", "price"));
}

#[test]
fn sse_resumes_every_topic_from_the_last_event_id() {
    let server = TestServer::start(config());
    let path = "/sse?topic=a&topic=b&topic=c";
    let mut sse = RawSse::open(server.addr, path, &[]);
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 3);
    let mut sent = BTreeMap::new();
    publish_rounds(&server, &["a", "b", "c"], 0, 5, &mut sent);
    // Read some, then drop the connection mid-stream.
    let mut got = Vec::new();
    let mut last = String::new();
    for _ in 0..7 {
        let (m, id) = sse_message(&mut sse);
        got.push(m);
        last = id;
    }
    drop(sse);
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 0);
    publish_rounds(&server, &["a", "b", "c"], 5, 5, &mut sent);

    // The header wins over a stale query cursor, as a browser sends it.
    let stale = format!("{path}&last_event_id=a%3Dearliest");
    let mut sse = RawSse::open(server.addr, &stale, &[("Last-Event-ID", &last)]);
    for _ in 0..23 {
        got.push(sse_message(&mut sse).0);
    }
    assert!(
        sse.next_event_within(Duration::from_millis(300)).is_none(),
        "nothing doubled"
    );
    assert_per_topic(&got, &sent);

    // The same cursor in the query resumes the same way.
    let q = format!("{path}&last_event_id={}", last.replace('=', "%3D"));
    let mut again = RawSse::open(server.addr, &q, &[]);
    let replay: Vec<TopicMessage> = (0..23).map(|_| sse_message(&mut again).0).collect();
    assert_eq!(replay, got[7..]);
}

#[test]
fn sse_topic_missing_from_the_cursor_starts_live() {
    let server = TestServer::start(config());
    let a1 = publish(&server, "a", None, "a1");
    publish(&server, "a", None, "a2");
    publish(&server, "b", None, "b-old");
    let cursor = format!("a={a1}");
    let mut sse = RawSse::open(
        server.addr,
        "/sse?topic=a&topic=b",
        &[("Last-Event-ID", &cursor)],
    );
    let (m, _) = sse_message(&mut sse);
    assert_eq!((m.topic.as_str(), m.data.as_str()), ("a", "a2"));
    assert!(
        sse.next_event_within(Duration::from_millis(300)).is_none(),
        "b's history is not replayed"
    );
    publish(&server, "b", None, "b-new");
    let (m, id) = sse_message(&mut sse);
    assert_eq!((m.topic.as_str(), m.data.as_str()), ("b", "b-new"));
    assert_eq!(combined(&id).get("b"), Some(&m.id));
}

#[test]
fn sse_earliest_replays_every_topic_without_a_gap() {
    let server = TestServer::start(config());
    let mut sent = BTreeMap::new();
    publish_rounds(&server, &["x", "y"], 0, 3, &mut sent);
    let mut sse = RawSse::open(
        server.addr,
        "/sse?topic=x&topic=y&last_event_id=earliest",
        &[],
    );
    let got: Vec<TopicMessage> = (0..6).map(|_| sse_message(&mut sse).0).collect();
    assert_per_topic(&got, &sent);
    assert!(find(&sse.body, b"event: gap").is_none());
}

#[test]
fn sse_cursor_of_another_epoch_or_evicted_is_a_gap_naming_its_topic() {
    let mut cfg = config();
    cfg.history_messages = 3;
    let server = TestServer::start(cfg);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(publish(&server, "ev", None, &format!("e{i}")));
    }
    let ok = publish(&server, "fine", None, "f0");
    let (epoch, _) = split_id(&ok);
    // `ev` kept e3..e5: a cursor at e0 needs e1, evicted. `old` is a
    // cursor of another epoch.
    publish(&server, "old", None, "o0");
    let cursor = format!("ev={},fine={ok},old={}-1", ids[0], epoch + 1);
    let mut sse = RawSse::open(
        server.addr,
        "/sse?topic=ev&topic=fine&topic=old",
        &[("Last-Event-ID", &cursor)],
    );
    let mut gaps = BTreeMap::new();
    let mut got = Vec::new();
    while got.len() < 4 {
        let e = sse.next_event();
        if e.event_type == "gap" {
            let v = parse_json(&e.data);
            assert_eq!(v.keys(), ["topic", "requested", "oldest"], "{v:?}");
            assert_eq!(e.last_event_id, "", "a gap has no id: line");
            gaps.insert(
                v.str_field("topic").to_string(),
                (
                    v.str_field("requested").to_string(),
                    v.str_field("oldest").to_string(),
                ),
            );
        } else {
            got.push(topic_message(&parse_json(&e.data)));
        }
    }
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert_eq!(gaps["ev"], (ids[0].clone(), ids[3].clone()));
    assert_eq!(gaps["old"].0, format!("{}-1", epoch + 1));
    let data: Vec<&str> = got.iter().map(|m| m.data.as_str()).collect();
    assert!(data.contains(&"o0"), "{data:?}");
    let ev: Vec<&str> = got
        .iter()
        .filter(|m| m.topic == "ev")
        .map(|m| m.data.as_str())
        .collect();
    assert_eq!(ev, ["e3", "e4", "e5"]);
    assert!(got.iter().all(|m| m.topic != "fine"), "fine is up to date");
}

#[test]
fn malformed_combined_cursors_and_too_many_topics_are_400() {
    let server = TestServer::start(config());
    publish(&server, "a", None, "x");
    for cursor in [
        "a",
        "a=",
        "a=1-x",
        "=1-1",
        "a=1-1,,b=1-1",
        "a=1-1;b=1-1",
        "a%20b=1-1",
    ] {
        let q = cursor.replace('=', "%3D").replace(',', "%2C");
        for path in [
            format!("/sse?topic=a&topic=b&last_event_id={q}"),
            format!("/poll?topic=a&topic=b&after={q}&timeout=0"),
            format!("/messages?topic=a&topic=b&after={q}"),
            format!("/stream?topic=a&topic=b&after={q}"),
        ] {
            let r = get(&server, &path);
            assert_eq!(r.status, 400, "{path}: {}", r.text());
        }
        let r = request(
            &server,
            format!(
                "GET /sse?topic=a&topic=b HTTP/1.1\r\nHost: t\r\nConnection: close\r\nLast-Event-ID: {cursor}\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 400, "Last-Event-ID {cursor:?}: {}", r.text());
    }
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("topic=t{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    for base in ["/sse", "/stream", "/poll", "/messages"] {
        let r = get(&server, &format!("{base}?{}&timeout=0", many(65)));
        assert_eq!(r.status, 400, "65 topics on {base}: {}", r.text());
    }
    // 64 is the limit, not over it.
    let r = get(&server, &format!("/messages?{}", many(64)));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut sse = RawSse::open(server.addr, &format!("/sse?{}", many(64)), &[]);
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 64);
    publish(&server, "t63", None, "last");
    assert_eq!(sse_message(&mut sse).0.topic, "t63");
    // No topic, or one named twice.
    assert_eq!(get(&server, "/sse").status, 400);
    assert_eq!(get(&server, "/messages?topic=a&topic=a").status, 400);
}

// ---- NDJSON ------------------------------------------------------------------

/// The first `n` NDJSON lines of `s` (heartbeats left out), waiting up
/// to 5 s for them.
fn ndjson_lines(s: &mut RawSse, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&s.body).into_owned();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let lines: Vec<Value> = complete
            .split('\n')
            .filter(|l| !l.is_empty())
            .map(parse_json)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            !s.closed && std::time::Instant::now() < deadline,
            "{n} lines: {text}"
        );
        // Reads for a while (the needle never comes).
        s.wait_for_bytes(b"\0never", Duration::from_millis(50));
    }
}

#[test]
fn stream_carries_topics_and_resumes_by_a_combined_after() {
    let server = TestServer::start(config());
    let mut sent = BTreeMap::new();
    publish_rounds(&server, &["n1", "n2"], 0, 3, &mut sent);
    let mut s = RawSse::open(server.addr, "/stream?topic=n1&topic=n2&after=earliest", &[]);
    assert_eq!(s.head.header("content-type"), Some("application/x-ndjson"));
    let got: Vec<TopicMessage> = ndjson_lines(&mut s, 6).iter().map(topic_message).collect();
    assert_eq!(got.len(), 6);
    assert_per_topic(&got, &sent);
    // Resume after the first message of each: the rest, exactly.
    let n1 = &got.iter().find(|m| m.topic == "n1").unwrap().id;
    let n2 = &got.iter().find(|m| m.topic == "n2").unwrap().id;
    let mut s = RawSse::open(
        server.addr,
        &format!("/stream?topic=n1&topic=n2&after=n1%3D{n1}%2Cn2%3D{n2}"),
        &[],
    );
    let rest: Vec<TopicMessage> = ndjson_lines(&mut s, 4).iter().map(topic_message).collect();
    let mut want = sent.clone();
    for v in want.values_mut() {
        v.remove(0);
    }
    assert_per_topic(&rest, &want);
}

// ---- polls -------------------------------------------------------------------

/// A multi-topic poll answer: its messages, `last_id`, `timeout`, `gap`.
fn multi_batch(r: &Response) -> (Vec<TopicMessage>, String, bool, bool) {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = parse_json(&r.text());
    assert_eq!(v.keys(), ["messages", "last_id", "timeout", "gap"]);
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(topic_message)
        .collect();
    (
        msgs,
        v.str_field("last_id").to_string(),
        v.get("timeout").and_then(Value::as_bool).unwrap(),
        v.get("gap").and_then(Value::as_bool).unwrap(),
    )
}

#[test]
fn parked_multi_poll_wakes_on_any_topic_and_answers_only_it() {
    let server = TestServer::start(config());
    publish(&server, "p1", None, "old");
    let mut poller = Poller::new(server.addr);
    poller.send("/poll?topic=p1&topic=p2&topic=p3&timeout=10");
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 1);
    let id = publish(&server, "p2", None, "wake");
    let (msgs, last_id, timeout, gap) = multi_batch(&poller.read());
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        (msgs[0].topic.as_str(), msgs[0].data.as_str()),
        ("p2", "wake")
    );
    assert!(!timeout && !gap);
    let cursor = combined(&last_id);
    assert_eq!(cursor.get("p2"), Some(&id));
    assert_eq!(cursor.keys().collect::<Vec<_>>(), ["p1", "p2", "p3"]);
    assert!(last_id.starts_with("p1="), "topic order: {last_id}");

    // The next poll with that cursor parks again and wakes on p3.
    let q = last_id.replace('=', "%3D").replace(',', "%2C");
    poller.send(&format!(
        "/poll?topic=p1&topic=p2&topic=p3&after={q}&timeout=10"
    ));
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 1);
    publish(&server, "p3", Some("ev"), "three");
    let (msgs, last_id, _, _) = multi_batch(&poller.read());
    assert_eq!(
        msgs.iter()
            .map(|m| (m.topic.as_str(), m.event.as_str(), m.data.as_str()))
            .collect::<Vec<_>>(),
        [("p3", "ev", "three")]
    );
    assert_eq!(combined(&last_id).get("p2"), Some(&id));

    // Expired: nothing, timeout true, the same cursor.
    let q2 = last_id.replace('=', "%3D").replace(',', "%2C");
    let (msgs, again, timeout, _) = multi_batch(&poller.get(&format!(
        "/poll?topic=p1&topic=p2&topic=p3&after={q2}&timeout=0.2"
    )));
    assert!(msgs.is_empty() && timeout);
    assert_eq!(again, last_id);
}

#[test]
fn multi_short_poll_returns_everything_kept_then_nothing() {
    let server = TestServer::start(config());
    let mut sent = BTreeMap::new();
    publish_rounds(&server, &["s1", "s2"], 0, 4, &mut sent);
    let (msgs, last_id, timeout, gap) = multi_batch(&get(&server, "/messages?topic=s1&topic=s2"));
    assert!(!timeout && !gap);
    assert_per_topic(&msgs, &sent);
    let q = last_id.replace('=', "%3D").replace(',', "%2C");
    let (msgs, same, _, _) = multi_batch(&get(
        &server,
        &format!("/messages?topic=s1&topic=s2&after={q}"),
    ));
    assert!(msgs.is_empty());
    assert_eq!(same, last_id);
    // A topic without messages still has its `<epoch>-0` in the cursor.
    let (_, with_empty, _, _) = multi_batch(&get(&server, "/messages?topic=s1&topic=none"));
    assert!(
        split_id(&combined(&with_empty)["none"]).1 == 0,
        "{with_empty}"
    );
}

// ---- WebSocket ---------------------------------------------------------------

fn ws_send(ws: &mut RawWs, cmd: &str) -> Value {
    ws.send_text(cmd);
    ws.recv_json()
}

#[test]
fn ws_subscribe_after_replays_then_live_while_another_client_publishes() {
    let server = TestServer::start(config());
    let mut sent = BTreeMap::new();
    publish_rounds(&server, &["w1", "w2"], 0, 5, &mut sent);
    let first_w1 = HttpClient::new(server.addr)
        .messages("w1", None)
        .unwrap()
        .messages[0]
        .id
        .clone();
    sent.get_mut("w1").unwrap().remove(0);

    // Another client publishes all along, on both topics.
    let addr = server.addr;
    let publisher = std::thread::spawn(move || {
        let mut http = HttpClient::new(addr);
        let mut sent = BTreeMap::<String, Vec<String>>::new();
        for i in 0..100 {
            for t in ["w1", "w2"] {
                let data = format!("live-{t}-{i}");
                http.publish(t, &data);
                sent.entry(t.to_string()).or_default().push(data);
            }
        }
        sent
    });
    let mut ws = RawWs::connect(server.addr, "/ws");
    ws.send_text(&format!(
        r#"{{"type":"subscribe","topic":"w1","after":"{first_w1}","ref":"one"}}"#
    ));
    ws.send_text(r#"{"type":"subscribe","topic":"w2","after":"earliest","ref":2}"#);
    let mut got = Vec::new();
    let mut acks = Vec::new();
    let live = publisher.join().unwrap();
    for (t, v) in live {
        sent.get_mut(&t).unwrap().extend(v);
    }
    let total: usize = sent.values().map(Vec::len).sum();
    while got.len() < total {
        let v = ws.recv_json();
        if v.get("type").is_some() {
            acks.push(v);
        } else {
            got.push(topic_message(&v));
        }
    }
    assert!(ws.recv_frame_within(Duration::from_millis(300)).is_none());
    assert_per_topic(&got, &sent);
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!(
        acks[0].keys(),
        ["type", "ref", "topic", "last_id"],
        "{:?}",
        acks[0]
    );
    assert_eq!(acks[0].str_field("type"), "ack");
    assert_eq!(acks[0].str_field("ref"), "one");
    assert_eq!(acks[0].str_field("topic"), "w1");
    assert_eq!(acks[1].get("ref").and_then(Value::as_f64), Some(2.0));
    split_id(acks[1].str_field("last_id"));
}

#[test]
fn ws_acks_unsubscribe_publish_and_errors() {
    let server = TestServer::start(config());
    let mut ws = RawWs::connect(server.addr, "/ws");
    let ack = ws_send(&mut ws, r#"{"type":"subscribe","topic":"u","ref":7}"#);
    assert_eq!(ack.str_field("type"), "ack");
    assert_eq!(ack.get("ref").and_then(Value::as_f64), Some(7.0));

    // Publish over the same socket: the ack carries the id, and the
    // subscriber (this socket) gets the message too.
    ws.send_text(r#"{"type":"publish","topic":"u","event":"e","data":"hi","ref":"p"}"#);
    let mut ack = None;
    let mut msg = None;
    for _ in 0..2 {
        let v = ws.recv_json();
        if v.get("type").is_some() {
            ack = Some(v);
        } else {
            msg = Some(topic_message(&v));
        }
    }
    let ack = ack.expect("publish ack");
    assert_eq!(ack.keys(), ["type", "ref", "id"], "{ack:?}");
    assert_eq!(ack.str_field("ref"), "p");
    let msg = msg.expect("the message");
    assert_eq!(msg.id, ack.str_field("id"));
    assert_eq!(
        (msg.topic.as_str(), msg.event.as_str(), msg.data.as_str()),
        ("u", "e", "hi")
    );

    // Unsubscribed: no more deliveries.
    let ack = ws_send(&mut ws, r#"{"type":"unsubscribe","topic":"u","ref":"x"}"#);
    assert_eq!(ack.str_field("type"), "ack");
    assert_eq!(ack.str_field("ref"), "x");
    publish(&server, "u", None, "unheard");
    assert!(ws.recv_frame_within(Duration::from_millis(300)).is_none());

    // Errors echo the ref and carry status and message.
    for (cmd, status) in [
        (r#"{"type":"subscribe","topic":"bad topic!","ref":1}"#, 400),
        (
            r#"{"type":"publish","topic":"a$b","data":"x","ref":2}"#,
            400,
        ),
        (
            r#"{"type":"subscribe","topic":"u","after":"nope","ref":3}"#,
            400,
        ),
        (r#"{"type":"dance","topic":"u","ref":4}"#, 400),
        (r#"{"type":"subscribe","ref":5"#, 400),
        ("not json", 400),
    ] {
        let v = ws_send(&mut ws, cmd);
        assert_eq!(v.str_field("type"), "error", "{cmd}: {v:?}");
        assert_eq!(
            v.get("status").and_then(Value::as_f64),
            Some(status as f64),
            "{cmd}"
        );
        assert!(!v.str_field("message").is_empty());
        if cmd.starts_with(r#"{"type":"subscribe","topic""#) || cmd.contains("dance") {
            assert!(v.get("ref").is_some(), "{cmd}: the ref is echoed: {v:?}");
        }
    }
    // The socket still works after the errors.
    let ack = ws_send(
        &mut ws,
        r#"{"type":"publish","topic":"u","data":"ok","ref":9}"#,
    );
    assert_eq!(ack.keys(), ["type", "ref", "id"]);

    // A binary frame: 1003.
    ws.send_binary(b"\x00\x01");
    assert_eq!(ws.expect_close(), 1003);
}

#[test]
fn ws_gap_names_its_topic() {
    let mut cfg = config();
    cfg.history_messages = 2;
    let server = TestServer::start(cfg);
    let first = publish(&server, "g", None, "0");
    for i in 1..5 {
        publish(&server, "g", None, &i.to_string());
    }
    let mut ws = RawWs::connect(server.addr, "/ws");
    ws.send_text(&format!(
        r#"{{"type":"subscribe","topic":"g","after":"{first}"}}"#
    ));
    let mut frames = Vec::new();
    while frames.len() < 4 {
        let f = ws.recv_message();
        assert_eq!(f.opcode, Opcode::Text);
        frames.push(parse_json(f.text()));
    }
    let gap = frames
        .iter()
        .find(|v| v.get("gap").is_some())
        .expect("a gap");
    assert_eq!(gap.keys(), ["gap", "topic", "requested", "oldest"]);
    assert_eq!(gap.str_field("topic"), "g");
    assert_eq!(gap.str_field("requested"), first);
    let data: Vec<String> = frames
        .iter()
        .filter(|v| v.get("id").is_some())
        .map(|v| topic_message(v).data)
        .collect();
    assert_eq!(data, ["3", "4"]);
}

#[test]
fn sse_over_http10_is_close_delimited_with_the_same_events() {
    let server = TestServer::start(config());
    let mut sse = RawSse::send(
        server.addr,
        b"GET /sse?topic=h1&topic=h2 HTTP/1.0\r\nHost: t\r\n\r\n",
    );
    assert_eq!(sse.head.status, 200);
    assert_eq!(sse.head.header("transfer-encoding"), None);
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 2);
    let id1 = publish(&server, "h1", None, "one");
    HttpClient::new(server.addr)
        .post("h2", Some("named"), "two")
        .unwrap();
    let (m, cursor) = sse_message(&mut sse);
    assert_eq!((m.topic.as_str(), m.data.as_str()), ("h1", "one"));
    assert_eq!(combined(&cursor).get("h1"), Some(&id1));
    let e = sse.next_event();
    assert_eq!(e.event_type, "named");
    assert!(find(&sse.body, b"\nevent: named\ndata: {").is_some());
    assert_eq!(combined(&e.last_event_id).get("h1"), Some(&id1));
}

/// `frames` (text payloads, then a close 1000) masked, in one write: one
/// read for the server.
fn send_then_close_in_one_write(ws: &mut RawWs, texts: &[&str]) {
    use std::io::Write;
    let mut out = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let key = [1, 2, 3, i as u8];
        pushwire::wire::ws_frame::write_masked_frame(
            &mut out,
            true,
            Opcode::Text,
            t.as_bytes(),
            key,
        );
    }
    let code = 1000u16.to_be_bytes();
    pushwire::wire::ws_frame::write_masked_frame(
        &mut out,
        true,
        Opcode::Close,
        &code,
        [9, 8, 7, 6],
    );
    ws.stream.write_all(&out).unwrap();
}

#[test]
fn what_comes_before_a_close_in_the_same_read_is_answered_before_the_close() {
    // RFC 6455 §5.5.1: the close may wait for what is being sent. A client
    // that publishes and closes in one packet gets its ack on /ws, and its
    // own copy on a topic socket, before the server's close.
    let server = TestServer::start(Config::default());
    let mut ws = RawWs::connect(server.addr, "/ws");
    send_then_close_in_one_write(
        &mut ws,
        &[
            r#"{"type":"subscribe","topic":"pc"}"#,
            r#"{"type":"publish","topic":"pc","data":"y","ref":1}"#,
        ],
    );
    let mut seen = Vec::new();
    loop {
        let f = ws.recv_frame();
        if f.opcode == Opcode::Close {
            assert_eq!(f.close_code(), 1000);
            break;
        }
        seen.push(parse_json(f.text()));
    }
    let ack = seen
        .iter()
        .find(|m| m.get("ref").and_then(Value::as_f64) == Some(1.0))
        .unwrap_or_else(|| panic!("no ack for the publish: {seen:?}"));
    assert_eq!(ack.str_field("type"), "ack");
    assert!(
        seen.iter()
            .any(|m| m.get("data").and_then(Value::as_str) == Some("y")),
        "its own copy: {seen:?}"
    );

    let mut t = RawWs::connect(server.addr, "/topics/pc/ws");
    send_then_close_in_one_write(&mut t, &["m1"]);
    let m = t.recv_message();
    assert_eq!(m.opcode, Opcode::Text, "{m:?}");
    assert_eq!(parse_json(m.text()).str_field("data"), "m1");
    assert_eq!(t.expect_close(), 1000);
    assert_eq!(
        batch(&get(&server, "/topics/pc/messages")).data(),
        ["y", "m1"]
    );
}

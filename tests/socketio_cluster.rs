//! Socket.IO in cluster mode over real sockets: two pushwire nodes on one
//! real `redis-server` (started by each test on a free loopback port with
//! no persistence, killed by its PID; skipped when `redis-server` is not
//! installed). A Socket.IO socket on one node gets what HTTP and Socket.IO
//! publish on the other, with Redis's ids, in order, once; its publishes
//! reach the other node's SSE with the id its ack named; a cursor from the
//! other node resumes it.

mod clients;
#[path = "support/redis.rs"]
mod redis_support;
mod support;

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use clients::*;
use pushwire::Config;
use redis_support::RedisServer;
use support::*;

macro_rules! redis {
    () => {
        match RedisServer::start() {
            Some(s) => s,
            None => return,
        }
    };
}

fn node(redis: &RedisServer) -> TestServer {
    start_cluster_node(redis.url(), Config::default())
}

/// The least of a Socket.IO client: Engine.IO v4 on WebSocket only,
/// namespace `/`, text packets. It answers pings, and keeps the events it
/// reads while it waits for an ack.
struct SioClient {
    ws: WsClient,
    events: VecDeque<Value>,
    next_ack: u64,
}

impl SioClient {
    fn connect(server: &TestServer) -> SioClient {
        let mut ws = WsClient::connect(server.addr, "/socket.io/?EIO=4&transport=websocket")
            .expect("an Engine.IO WebSocket");
        ws.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut c = SioClient {
            ws,
            events: VecDeque::new(),
            next_ack: 1,
        };
        assert!(c.packet().starts_with("0{\"sid\""), "the open packet");
        c.ws.send_text("40").unwrap();
        assert!(c.packet().starts_with("40{\"sid\""), "the CONNECT reply");
        c
    }

    /// The next Engine.IO message that is not a ping.
    fn packet(&mut self) -> String {
        loop {
            let text = match self.ws.recv().expect("a packet") {
                WsMessage::Text(t) => t,
                other => panic!("expected text, got {other:?}"),
            };
            if text == "2" {
                self.ws.send_text("3").unwrap();
                continue;
            }
            return text;
        }
    }

    /// Emits `args` (a JSON array's members) with an ack id, and waits
    /// for the ack; events read meanwhile are kept for [`SioClient::event`].
    fn call(&mut self, args: &str) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.ws.send_text(&format!("42{id}[{args}]")).unwrap();
        let want = format!("43{id}[");
        loop {
            let p = self.packet();
            if let Some(body) = p.strip_prefix(&want) {
                let v = parse_json(&format!("[{body}"));
                return v.as_array().expect("ack arguments")[0].clone();
            }
            self.keep(&p);
        }
    }

    fn keep(&mut self, p: &str) {
        let body = p
            .strip_prefix("42")
            .unwrap_or_else(|| panic!("expected an event, got {p:?}"));
        self.events.push_back(parse_json(body));
    }

    /// The next event: `[name, data, {topic, id}]`.
    fn event(&mut self) -> Value {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        let p = self.packet();
        self.keep(&p);
        self.events.pop_front().unwrap()
    }

    /// Nothing more arrives within `limit`.
    fn quiet(&mut self, limit: Duration) -> bool {
        if !self.events.is_empty() {
            return false;
        }
        self.ws.set_read_timeout(Some(limit)).unwrap();
        let r = self.ws.recv();
        self.ws
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        match r {
            Err(e) => e.is_timeout(),
            Ok(WsMessage::Text(t)) if t == "2" => {
                self.ws.send_text("3").unwrap();
                self.quiet(limit)
            }
            Ok(_) => false,
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key} in {v:?}"))
        .to_string()
}

/// An event's (data, meta id) when it is `message` on `topic`.
fn message_on(e: &Value, topic: &str) -> (String, String) {
    let parts = e.as_array().expect("an event is an array");
    assert_eq!(parts[0].as_str(), Some("message"), "{e:?}");
    assert_eq!(str_of(&parts[2], "topic"), topic, "{e:?}");
    let data = parts[1].as_str().expect("text data").to_string();
    (data, str_of(&parts[2], "id"))
}

#[test]
fn a_socket_gets_http_and_socketio_publishes_from_the_other_node_with_redis_ids() {
    let redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let mut on_a = SioClient::connect(&a);
    let ack = on_a.call(r#""subscribe","t""#);
    assert_eq!(
        ack.get("gap").and_then(Value::as_bool),
        Some(false),
        "{ack:?}"
    );
    let start = str_of(&ack, "last_id");
    assert_eq!(split_id(&start).1, 0, "a topic Redis never saw");

    let by_http = publish(&b, "t", None, "by http");
    let mut on_b = SioClient::connect(&b);
    let ack = on_b.call(r#""publish","t","by socket.io""#);
    let by_sio = str_of(&ack, "id");
    assert_eq!(split_id(&by_http), (split_id(&start).0, 1));
    assert_eq!(split_id(&by_sio), (split_id(&start).0, 2));

    assert_eq!(
        message_on(&on_a.event(), "t"),
        ("by http".to_string(), by_http)
    );
    assert_eq!(
        message_on(&on_a.event(), "t"),
        ("by socket.io".to_string(), by_sio)
    );
    assert!(on_a.quiet(Duration::from_millis(300)), "each message once");
}

#[test]
fn a_socketio_publish_reaches_sse_on_the_other_node_with_the_acked_id() {
    let redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let mut s = sse(&b, "u", None);
    wait_stat(&b, "subscribers", Duration::from_secs(5), |n| n == 1);
    let mut on_a = SioClient::connect(&a);
    let ack = on_a.call(r#""publish","u",{"n":1},{"event":"tick"}"#);
    let id = str_of(&ack, "id");
    assert_eq!(split_id(&id).1, 1);
    let e = sse_event(&mut s);
    assert_eq!(e.last_event_id, id);
    assert_eq!(e.event_type, "tick");
    assert_eq!(e.data, r#"{"n":1}"#);
}

#[test]
fn a_cursor_from_the_other_node_resumes_a_socketio_subscribe() {
    let redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let ids: Vec<String> = (1..=3)
        .map(|i| publish(&b, "r", None, &format!("m{i}")))
        .collect();
    let mut on_a = SioClient::connect(&a);
    let ack = on_a.call(&format!(r#""subscribe","r",{{"after":"{}"}}"#, ids[0]));
    assert_eq!(str_of(&ack, "last_id"), ids[2]);
    assert_eq!(ack.get("gap").and_then(Value::as_bool), Some(false));
    // The replay came before the ack: both kept while it waited.
    assert_eq!(
        message_on(&on_a.event(), "r"),
        ("m2".to_string(), ids[1].clone())
    );
    assert_eq!(
        message_on(&on_a.event(), "r"),
        ("m3".to_string(), ids[2].clone())
    );
    assert!(on_a.quiet(Duration::from_millis(300)), "nothing else");
    // Live after the replay: B's next publish, once.
    let id4 = publish(&b, "r", None, "m4");
    assert_eq!(message_on(&on_a.event(), "r"), ("m4".to_string(), id4));
    assert!(on_a.quiet(Duration::from_millis(300)));
}

// ---- polling sessions across nodes, with no sticky routing ------------------

fn http(server: &TestServer, method: &str, target: &str, body: &[u8]) -> Response {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    request(server, &req)
}

/// Opens a polling session on `server`; returns its sid.
fn open_polling(server: &TestServer) -> String {
    let r = http(server, "GET", "/socket.io/?EIO=4&transport=polling", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let open = parse_json(r.text().strip_prefix('0').expect("an open packet"));
    str_of(&open, "sid")
}

fn polling(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

fn post_packets(server: &TestServer, sid: &str, packets: &[&str]) {
    let r = http(
        server,
        "POST",
        &polling(sid),
        packets.join("\u{1e}").as_bytes(),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

fn get_packets(server: &TestServer, sid: &str) -> Vec<String> {
    let r = http(server, "GET", &polling(sid), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    r.text().split('\u{1e}').map(str::to_string).collect()
}

/// Sends a polling GET for `sid` on a connection of its own, to be read
/// when it is answered.
fn park_get(server: &TestServer, sid: &str) -> std::net::TcpStream {
    let mut s = server.connect();
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        polling(sid)
    )
    .unwrap();
    s
}

fn metric(server: &TestServer, name: &str) -> u64 {
    let text = get(server, "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[test]
fn a_polling_session_is_served_by_whichever_node_each_request_reaches() {
    let redis = redis!();
    let (a, b) = (node(&redis), node(&redis));
    // Opened on a; every later request alternates, as a round-robin
    // balancer would send them.
    let sid = open_polling(&a);
    post_packets(&b, &sid, &["40"]);
    let connected = get_packets(&a, &sid);
    assert!(connected[0].starts_with("40{\"sid\":"), "{connected:?}");
    post_packets(&b, &sid, &[r#"421["subscribe","news",{}]"#]);
    let ack = get_packets(&b, &sid);
    assert!(ack[0].starts_with(r#"431[{"last_id":""#), "{ack:?}");

    // A GET parked through b is answered by a publish on either node.
    for publisher in [&a, &b] {
        let mut s = park_get(&b, &sid);
        std::thread::sleep(Duration::from_millis(200));
        let id = publish(publisher, "news", None, "relayed");
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.text(),
            format!(r#"42["message","relayed",{{"topic":"news","id":"{id}"}}]"#)
        );
    }
    // Its own publish, through b, is acked with Redis's id and comes back.
    post_packets(&b, &sid, &[r#"422["publish","news","mine"]"#]);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(get_packets(&b, &sid));
    }
    assert!(
        got.iter().any(|p| p.starts_with(r#"432[{"id":""#)),
        "{got:?}"
    );
    assert!(
        got.iter().any(|p| p.starts_with(r#"42["message","mine","#)),
        "{got:?}"
    );
    assert!(metric(&b, "pushwire_socketio_relayed_total") >= 6);
    assert_eq!(metric(&a, "pushwire_socketio_relayed_total"), 0);

    // A second GET while one waits is the session's end, wherever the two
    // arrive (engine.io: one GET at a time).
    let mut s = park_get(&a, &sid);
    std::thread::sleep(Duration::from_millis(100));
    let r = http(&b, "GET", &polling(&sid), b"");
    assert_eq!(r.status, 400, "{}", r.text());
    let mut buf = Vec::new();
    let first = read_response(&mut s, &mut buf, false);
    assert_eq!(
        (first.status, first.text().as_str()),
        (200, "1"),
        "a close packet"
    );
    let r = http(&b, "POST", &polling(&sid), b"3");
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
}

/// server.ts: a payload over `maxPayload` is 413 and the session's end.
/// Over the body limit of the node it reaches, a POST is refused there
/// before its body is read, and the session's own node is told (`R`).
#[test]
fn a_post_too_large_for_the_node_it_reaches_ends_the_session_on_its_own_node() {
    let redis = redis!();
    let a = node(&redis);
    let b = start_cluster_node(
        redis.url(),
        Config {
            max_body_bytes: 1024,
            ..Config::default()
        },
    );
    let sid = open_polling(&a);
    post_packets(&a, &sid, &["40"]);
    assert!(get_packets(&a, &sid)[0].starts_with("40{\"sid\":"));
    let mut parked = park_get(&a, &sid);
    std::thread::sleep(Duration::from_millis(100));
    // Only the head: the body would never be read.
    let mut s = b.connect();
    write!(
        s,
        "POST {} HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
        polling(&sid)
    )
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_response(&mut s, &mut buf, false).status, 413);
    // The GET waiting on a is ended with a close packet, and the session
    // is gone on both nodes.
    let mut buf = Vec::new();
    let closed = read_response(&mut parked, &mut buf, false);
    assert_eq!((closed.status, closed.text().as_str()), (200, "1"));
    for n in [&a, &b] {
        let r = http(n, "GET", &polling(&sid), b"");
        assert_eq!(r.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
    }
}

#[test]
fn a_session_whose_node_is_gone_is_unknown_to_the_others_in_bounded_time() {
    let redis = redis!();
    let cfg = || Config {
        sio_ping_interval: Duration::from_millis(400),
        sio_ping_timeout: Duration::from_millis(400),
        ..Config::default()
    };
    let a = start_cluster_node(redis.url(), cfg());
    let b = start_cluster_node(redis.url(), cfg());
    let sid = open_polling(&a);
    post_packets(&b, &sid, &["40"]);
    drop(a);
    for method in ["POST", "GET"] {
        let started = std::time::Instant::now();
        let r = http(&b, method, &polling(&sid), b"3");
        assert_eq!(r.status, 400, "{method}: {}", r.text());
        assert_eq!(r.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
        // redis_timeout (1.5 s), plus the ping interval for a GET.
        assert!(started.elapsed() < Duration::from_secs(4), "{method}");
    }
}

// ---- the upgrade to WebSocket, on another node than the session's ----------

/// A polling session of `server` whose Socket.IO socket on `/` is
/// connected; its sid.
fn connected_polling(server: &TestServer) -> String {
    let sid = open_polling(server);
    post_packets(server, &sid, &["40"]);
    assert!(get_packets(server, &sid)[0].starts_with("40{\"sid\":"));
    sid
}

/// Upgrades `a`'s polling session `sid` to a WebSocket on `b`, the
/// client's way: a GET parked on `a`, the probe on `b`, the noop that
/// ends the GET, `5`.
fn upgrade_on(a: &TestServer, b: &TestServer, sid: &str) -> SioClient {
    let mut parked = park_get(a, sid);
    std::thread::sleep(Duration::from_millis(100));
    let target = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let mut ws = WsClient::connect(b.addr, &target).expect("a WebSocket on b");
    ws.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    ws.send_text("2probe").unwrap();
    assert_eq!(ws.recv().unwrap(), WsMessage::Text("3probe".into()));
    let mut buf = Vec::new();
    let noop = read_response(&mut parked, &mut buf, false);
    assert_eq!((noop.status, noop.text().as_str()), (200, "6"));
    ws.send_text("5").unwrap();
    SioClient {
        ws,
        events: VecDeque::new(),
        next_ack: 2,
    }
}

#[test]
fn a_polling_session_upgrades_on_the_other_node_and_is_served_there() {
    let redis = redis!();
    let (a, b) = (node(&redis), node(&redis));
    let sid = connected_polling(&a);
    post_packets(&a, &sid, &[r#"421["subscribe","up",{}]"#]);
    assert!(get_packets(&a, &sid)[0].starts_with(r#"431[{"last_id":""#));

    let mut sio = upgrade_on(&a, &b, &sid);

    // Upgraded: a's session sends over b's WebSocket, both ways.
    let id = publish(&a, "up", None, "to b");
    assert_eq!(
        message_on(&sio.event(), "up"),
        ("to b".to_string(), id.clone())
    );
    let ack = sio.call(r#""publish","up","from b""#);
    let mine = str_of(&ack, "id");
    assert_eq!(split_id(&mine).1, split_id(&id).1 + 1);
    assert_eq!(message_on(&sio.event(), "up"), ("from b".to_string(), mine));
    assert!(sio.quiet(Duration::from_millis(300)), "each message once");
    assert_eq!(metric(&b, "pushwire_socketio_carried_total"), 1);
    assert_eq!(metric(&a, "pushwire_socketio_carried_total"), 0);
    // Polling is over for the session (it is on WebSocket now).
    let r = http(&a, "GET", &polling(&sid), b"");
    assert_eq!(r.status, 400, "{}", r.text());

    // The client closes its WebSocket: the session ends on a.
    sio.ws.close(1000, "").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = http(&a, "POST", &polling(&sid), b"3");
        if r.text() == r#"{"code":1,"message":"Session ID unknown"}"# {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_carried_websocket_whose_owner_has_gone_is_closed_at_the_next_message() {
    let redis = redis!();
    let (a, b) = (node(&redis), node(&redis));
    let sid = connected_polling(&a);
    let mut sio = upgrade_on(&a, &b, &sid);
    let ack = sio.call(r#""subscribe","t",{}"#);
    assert!(ack.get("last_id").is_some(), "{ack:?}");
    // The session's node goes: what the client sends next reaches no
    // node, and b closes the WebSocket (1008, no such session) rather
    // than leave it to the client's ping timeout.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    sio.ws.send_text("42[\"anyone\"]").unwrap();
    match sio.ws.recv() {
        Ok(WsMessage::Close(Some((code, reason)))) => {
            assert_eq!((code, reason.as_str()), (1008, "Session ID unknown"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_delete_on_one_node_is_a_gap_event_to_sockets_on_the_other() {
    let redis = redis!();
    let (a, b) = (node(&redis), node(&redis));
    let mut on_b = SioClient::connect(&b);
    on_b.call(r#""subscribe","del""#);
    let old = publish(&a, "del", None, "before");
    assert_eq!(message_on(&on_b.event(), "del").1, old);
    let r = http(&a, "DELETE", "/topics/del", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    // DESIGN: "subscribers of it are told gap", Socket.IO sockets too.
    let e = on_b.event();
    let parts = e.as_array().expect("an event is an array");
    assert_eq!(parts[0].as_str(), Some("gap"), "{e:?}");
    assert_eq!(str_of(&parts[1], "topic"), "del");
    assert_eq!(str_of(&parts[1], "requested"), old);
    // The new epoch's first message follows, once.
    let new = publish(&a, "del", None, "after");
    assert_eq!(split_id(&new).1, 1);
    assert_eq!(message_on(&on_b.event(), "del"), ("after".to_string(), new));
    assert!(on_b.quiet(Duration::from_millis(300)), "each message once");
}

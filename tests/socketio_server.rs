//! `/socket.io/` over real sockets, with a minimal Engine.IO client
//! written here: the handshake, a polling round trip, a parked GET woken
//! by a publish, the polling → WebSocket upgrade, a WebSocket-only
//! session, subscribe/publish between a Socket.IO socket and SSE both
//! ways, binary payloads, and the refusals (sessions, origins, tokens).

mod clients;
#[path = "support/redis.rs"]
mod redis_support;
mod support;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clients::*;
use pushwire::client::{WsClient, WsMessage};
use pushwire::wire::jws::sign;
use pushwire::Config;
use support::*;

const SECRET: &[u8] = b"a test secret of some length";

fn config() -> Config {
    Config {
        sio_ping_interval: Duration::from_secs(20),
        sio_ping_timeout: Duration::from_secs(20),
        ..Config::default()
    }
}

fn http(server: &TestServer, method: &str, target: &str, headers: &str, body: &[u8]) -> Response {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    request(server, &req)
}

/// Engine.IO's answer to a request for a session it does not have.
fn assert_unknown_sid(r: &Response) {
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );
}

/// A polling session: its sid, and the packets of each GET.
struct Poller<'s> {
    server: &'s TestServer,
    sid: String,
}

impl<'s> Poller<'s> {
    fn open(server: &'s TestServer) -> Poller<'s> {
        let r = http(
            server,
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            "",
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        let open = parse_json(text.strip_prefix('0').expect("an open packet"));
        let sid = open
            .get("sid")
            .and_then(|v| v.as_str())
            .unwrap()
            .to_string();
        Poller { server, sid }
    }

    fn target(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    fn post(&self, packets: &[&str]) {
        let body = packets.join("\u{1e}");
        let r = http(self.server, "POST", &self.target(), "", body.as_bytes());
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    }

    fn get(&self) -> Vec<String> {
        let r = http(self.server, "GET", &self.target(), "", b"");
        assert_eq!(r.status, 200, "{}", r.text());
        r.text().split('\u{1e}').map(str::to_string).collect()
    }

    /// Connects namespace `/` and returns the CONNECT reply.
    fn connect(&self, auth: &str) -> String {
        self.post(&[&format!("40{auth}")]);
        self.get().remove(0)
    }
}

fn ws(server: &TestServer, target: &str) -> WsClient {
    let mut ws = WsClient::connect(server.addr, target).expect("WebSocket");
    ws.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    ws
}

fn text(ws: &mut WsClient) -> String {
    match ws.recv().expect("a message") {
        WsMessage::Text(t) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn the_handshake_opens_a_session_with_the_configured_timers() {
    let server = TestServer::start(config());
    let r = http(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        "",
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    let open = parse_json(r.text().strip_prefix('0').unwrap());
    assert_eq!(open.get("sid").and_then(|v| v.as_str()).unwrap().len(), 27);
    assert_eq!(open.get("pingInterval").unwrap().as_f64(), Some(20_000.0));
    assert_eq!(open.get("maxPayload").unwrap().as_f64(), Some(1_000_000.0));
    assert_eq!(r.text().matches("websocket").count(), 1);
}

#[test]
fn a_polling_round_trip_subscribes_and_receives_an_http_publish() {
    let server = TestServer::start(config());
    let p = Poller::open(&server);
    let reply = p.connect("");
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    p.post(&[r#"421["subscribe","news",{}]"#]);
    let ack = p.get();
    assert!(
        ack[0].starts_with(r#"431[{"last_id":""#) && ack[0].ends_with(r#","gap":false}]"#),
        "{ack:?}"
    );
    let id = publish(&server, "news", Some("tick"), "hello");
    assert_eq!(
        p.get(),
        vec![format!(
            r#"42["tick","hello",{{"topic":"news","id":"{id}"}}]"#
        )]
    );
}

#[test]
fn a_parked_get_is_answered_by_a_publish_and_replays_come_first() {
    let server = TestServer::start(config());
    let first = publish(&server, "t", None, "one");
    let p = Poller::open(&server);
    p.connect("");
    p.post(&[r#"427["subscribe","t",{"after":"earliest"}]"#]);
    let got = p.get();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        format!(r#"42["message","one",{{"topic":"t","id":"{first}"}}]"#)
    );
    assert!(got[1].starts_with("437["), "{got:?}");
    // A GET with nothing to send waits, until a publish answers it.
    let mut s = server.connect();
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        p.target()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let second = publish(&server, "t", None, "two");
    let mut buf = Vec::new();
    let r = read_response(&mut s, &mut buf, false);
    assert_eq!(
        r.text(),
        format!(r#"42["message","two",{{"topic":"t","id":"{second}"}}]"#)
    );
}

#[test]
fn polling_upgrades_to_websocket_and_publishes_reach_sse() {
    let server = TestServer::start(config());
    let mut sse = sse(&server, "chat", None);
    let p = Poller::open(&server);
    let mut w = ws(
        &server,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid),
    );
    w.send_text("2probe").unwrap();
    assert_eq!(text(&mut w), "3probe");
    // During the upgrade a GET is answered with a noop at once.
    assert_eq!(p.get(), vec!["6"]);
    w.send_text("5").unwrap();
    w.send_text("40").unwrap();
    assert!(text(&mut w).starts_with("40{\"sid\":"));
    // Polling is over for this session.
    let r = http(&server, "GET", &p.target(), "", b"");
    assert_eq!(r.status, 400);
    w.send_text(r#"423["publish","chat","hi",{"event":"say"}]"#)
        .unwrap();
    let ack = text(&mut w);
    let id = ack_id(&ack);
    let e = sse_event(&mut sse);
    assert_eq!((e.event_type.as_str(), e.data.as_str()), ("say", "hi"));
    assert_eq!(e.last_event_id, id);
}

#[test]
fn a_websocket_only_session_gets_binary_back_as_binary_and_text_transports_base64() {
    let server = TestServer::start(config());
    let mut w = ws(&server, "/socket.io/?EIO=4&transport=websocket");
    let open = text(&mut w);
    assert!(
        open.starts_with("0{") && open.contains("\"upgrades\":[]"),
        "{open}"
    );
    w.send_text("40").unwrap();
    text(&mut w);
    w.send_text(r#"421["subscribe","bin"]"#).unwrap();
    assert!(text(&mut w).starts_with("431[{\"last_id\""));
    w.send_text(r#"451-2["publish","bin",{"_placeholder":true,"num":0}]"#)
        .unwrap();
    w.send_binary(&[0, 1, 2, 255]).unwrap();
    // The ack, then the delivery: the event and its attachment.
    let ack = text(&mut w);
    assert!(ack.starts_with(r#"432[{"id":""#), "{ack}");
    let event = text(&mut w);
    assert!(
        event.starts_with(r#"451-["message",{"_placeholder":true,"num":0},{"topic":"bin","id":""#),
        "{event}"
    );
    assert_eq!(w.recv().unwrap(), WsMessage::Binary(vec![0, 1, 2, 255]));
    let kept = get(&server, "/topics/bin/messages").text();
    assert!(
        kept.contains(r#""data":{"encoding":"base64","data":"AAEC/w=="}"#),
        "{kept}"
    );
    // Binaries nested in the data are kept where they are, each a base64
    // object on the hub and an attachment again on Socket.IO.
    w.send_text(
        r#"452-3["publish","bin",{"file":{"_placeholder":true,"num":1},"parts":[{"_placeholder":true,"num":0},"x"]}]"#,
    )
    .unwrap();
    w.send_binary(&[7]).unwrap();
    w.send_binary(&[1, 2, 3]).unwrap();
    assert!(text(&mut w).starts_with(r#"433[{"id":""#));
    let event = text(&mut w);
    assert!(
        event.starts_with(
            r#"452-["message",{"file":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1},"x"]},"#
        ),
        "{event}"
    );
    assert_eq!(w.recv().unwrap(), WsMessage::Binary(vec![1, 2, 3]));
    assert_eq!(w.recv().unwrap(), WsMessage::Binary(vec![7]));
    let kept = get(&server, "/topics/bin/messages").text();
    assert!(
        kept.contains(
            r#""data":{"file":{"encoding":"base64","data":"AQID"},"parts":[{"encoding":"base64","data":"Bw=="},"x"]}"#
        ),
        "{kept}"
    );
    // An SSE subscriber's message published over HTTP reaches the socket.
    let id = publish(&server, "bin", None, "from http");
    assert_eq!(
        text(&mut w),
        format!(r#"42["message","from http",{{"topic":"bin","id":"{id}"}}]"#)
    );
}

#[test]
fn numbers_an_f64_would_round_are_relayed_as_they_were_written() {
    // A client that is not JavaScript publishes a 64-bit id, a long
    // decimal and a number past the f64 range: every transport gets the
    // digits it sent (RFC 8259 §6), with or without a binary attachment
    // (whose data is rewritten around the placeholder).
    let server = TestServer::start(config());
    let mut sse = sse(&server, "big", None);
    let mut w = ws(&server, "/socket.io/?EIO=4&transport=websocket");
    text(&mut w);
    w.send_text("40").unwrap();
    text(&mut w);
    w.send_text(r#"421["subscribe","big"]"#).unwrap();
    text(&mut w);
    let data =
        r#"{"id":12345678901234567890,"pi":3.141592653589793238462643383279,"huge":1E400,"n":1e2}"#;
    w.send_text(&format!(r#"422["publish","big",{data}]"#))
        .unwrap();
    assert!(text(&mut w).starts_with(r#"432[{"id":""#));
    // `1e2` the f64 says exactly: written as JavaScript writes it.
    let kept =
        r#"{"id":12345678901234567890,"pi":3.141592653589793238462643383279,"huge":1E400,"n":100}"#;
    assert!(text(&mut w).starts_with(&format!(r#"42["message",{kept},"#)));
    assert_eq!(sse_event(&mut sse).data, kept);
    w.send_text(
        r#"451-3["publish","big",{"id":9007199254740993,"b":{"_placeholder":true,"num":0}}]"#,
    )
    .unwrap();
    w.send_binary(&[1]).unwrap();
    assert!(text(&mut w).starts_with(r#"433[{"id":""#));
    let event = text(&mut w);
    assert!(
        event.starts_with(
            r#"451-["message",{"id":9007199254740993,"b":{"_placeholder":true,"num":0}},"#
        ),
        "{event}"
    );
    assert_eq!(w.recv().unwrap(), WsMessage::Binary(vec![1]));
    let polled = get(&server, "/topics/big/messages").text();
    assert!(
        polled
            .contains(r#""data":{"id":9007199254740993,"b":{"encoding":"base64","data":"AQ=="}}"#),
        "{polled}"
    );
}

#[test]
fn refused_requests_get_engineio_error_bodies() {
    let server = TestServer::start(config());
    let r = http(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "",
        b"",
    );
    assert_unknown_sid(&r);
    let r = http(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        "",
        b"",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, r#"{"code":0,"message":"Transport unknown"}"#)
    );
    let r = http(
        &server,
        "GET",
        "/socket.io/?EIO=3&transport=polling",
        "",
        b"",
    );
    assert_eq!(r.status, 400);
    let r = http(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        "Origin: http://evil.example\r\n",
        b"",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"code":4,"message":"Forbidden"}"#)
    );
    // maxPayload: 413, and the session is over.
    let p = Poller::open(&server);
    let big = vec![b'4'; 1_000_001];
    let r = http(&server, "POST", &p.target(), "", &big);
    assert_eq!(r.status, 413);
    let r = http(&server, "GET", &p.target(), "", b"");
    assert_eq!(r.status, 400);
    // Over the HTTP body limit too (refused from its head, never read):
    // 413, and the session is over all the same.
    let p = Poller::open(&server);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n4aaa",
        p.target()
    );
    assert_eq!(request(&server, head.as_bytes()).status, 413);
    let r = http(&server, "GET", &p.target(), "", b"");
    assert_unknown_sid(&r);
    // A WebSocket version we do not speak: 426 naming ours (RFC 6455
    // §4.2.2).
    let r = http(
        &server,
        "GET",
        "/socket.io/?EIO=4&transport=websocket",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n",
        b"",
    );
    assert_eq!(
        (r.status, r.header("sec-websocket-version")),
        (426, Some("13"))
    );
    // An unknown event with an ack is told so.
    let p = Poller::open(&server);
    p.connect("");
    p.post(&[r#"429["dance"]"#]);
    assert!(p.get()[0].starts_with(r#"439[{"error":{"status":404,"#));
}

/// polling.ts `onDataRequest`: one POST at a time per session, counted
/// from its head; a second one meanwhile ends the session.
#[test]
fn a_post_while_another_posts_body_is_still_coming_ends_the_session() {
    let server = TestServer::start(config());
    let p = Poller::open(&server);
    p.connect("");
    // The first POST: its head, and the server's 100 Continue to show
    // that it has been read; the body waits.
    let mut slow = server.connect();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nExpect: 100-continue\r\n\
         Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n",
        p.target(),
        server.addr
    );
    slow.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let interim = read_response(&mut slow, &mut buf, true);
    assert_eq!(interim.status, 100);
    // The second, whole, is refused, and the session is over.
    let r = http(&server, "POST", &p.target(), "", b"3");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, r#"{"code":3,"message":"Bad request"}"#)
    );
    assert_unknown_sid(&http(&server, "GET", &p.target(), "", b""));
    slow.write_all(b"41").unwrap();
    let late = read_response(&mut slow, &mut buf, false);
    assert_unknown_sid(&late);
}

#[test]
fn tokens_are_checked_at_connect_and_per_topic() {
    let server = TestServer::start(Config {
        auth_secret: Some(SECRET.to_vec()),
        ..config()
    });
    let p = Poller::open(&server);
    let refused = p.connect("");
    assert!(
        refused.starts_with(r#"44{"message":"#) && refused.ends_with(r#""data":{"status":401}}"#),
        "{refused}"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = sign(
        format!(
            r#"{{"subscribe":["a"],"publish":["a"],"exp":{}}}"#,
            now + 600
        )
        .as_bytes(),
        SECRET,
    );
    let reply = p.connect(&format!(r#"{{"token":"{token}"}}"#));
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    p.post(&[
        r#"421["subscribe","a"]"#,
        r#"422["subscribe","b"]"#,
        r#"423["publish","b","x"]"#,
    ]);
    let got = p.get();
    assert!(got[0].starts_with("431[{\"last_id\""), "{got:?}");
    assert!(
        got[1].starts_with(r#"432[{"error":{"status":403,"#),
        "{got:?}"
    );
    assert!(
        got[2].starts_with(r#"433[{"error":{"status":403,"#),
        "{got:?}"
    );
    // The handshake's ?token= serves a CONNECT that carries none.
    let r = http(
        &server,
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&token={token}"),
        "",
        b"",
    );
    let open = parse_json(r.text().strip_prefix('0').unwrap());
    let q = Poller {
        server: &server,
        sid: open.get("sid").unwrap().as_str().unwrap().to_string(),
    };
    assert!(q.connect("").starts_with("40{\"sid\":"));
}

#[test]
fn a_token_that_expires_ends_the_socket() {
    let server = TestServer::start(Config {
        auth_secret: Some(SECRET.to_vec()),
        ..config()
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = sign(
        format!(r#"{{"subscribe":["*"],"exp":{}}}"#, now + 2).as_bytes(),
        SECRET,
    );
    let mut w = ws(
        &server,
        &format!("/socket.io/?EIO=4&transport=websocket&token={token}"),
    );
    text(&mut w);
    w.send_text("40").unwrap();
    assert!(text(&mut w).starts_with("40{"));
    // DISCONNECT for `/` when `exp` passes (within its second).
    assert_eq!(text(&mut w), "41");
}

#[test]
fn with_recovery_a_reconnecting_socket_resumes_its_topics_from_its_offset() {
    let server = TestServer::start(Config {
        sio_recovery: true,
        ..config()
    });
    let mut w = ws(&server, "/socket.io/?EIO=4&transport=websocket");
    text(&mut w);
    w.send_text("40").unwrap();
    let reply = parse_json(&text(&mut w)[2..]);
    let pid = reply
        .get("pid")
        .and_then(|v| v.as_str())
        .unwrap()
        .to_string();
    w.send_text(r#"421["subscribe","r"]"#).unwrap();
    text(&mut w);
    let first = publish(&server, "r", None, "one");
    let event = text(&mut w);
    assert_eq!(
        event,
        format!(r#"42["message","one",{{"topic":"r","id":"{first}"}},"r={first}"]"#)
    );
    drop(w);
    // The broken connection's socket leaves the topic.
    wait_for("the socket to leave", Duration::from_secs(5), || {
        get(&server, "/topics/r").text().contains(r#""socketio":0"#)
    });
    // Published while the socket is away.
    let second = publish(&server, "r", None, "two");
    let mut w = ws(&server, "/socket.io/?EIO=4&transport=websocket");
    text(&mut w);
    w.send_text(&format!(r#"40{{"pid":"{pid}","offset":"r={first}"}}"#))
        .unwrap();
    let reply = parse_json(&text(&mut w)[2..]);
    assert_eq!(
        reply.get("pid").and_then(|v| v.as_str()),
        Some(pid.as_str())
    );
    assert_eq!(
        text(&mut w),
        format!(r#"42["message","two",{{"topic":"r","id":"{second}"}},"r={second}"]"#)
    );
    // And it is subscribed again: live messages follow.
    let third = publish(&server, "r", None, "three");
    assert!(text(&mut w).contains(&format!(r#""r={third}"]"#)));
    assert!(get(&server, "/topics/r").text().contains(r#""socketio":1"#));
}

/// A cluster node on `redis` (docs/protocol.md "Cluster"), once it is up.
fn node(redis: &redis_support::RedisServer) -> TestServer {
    start_cluster_node(redis.url(), config())
}

#[test]
fn in_cluster_mode_a_socketio_publish_on_one_node_reaches_a_socket_on_the_other() {
    let Some(redis) = redis_support::RedisServer::start() else {
        return; // no redis-server installed
    };
    let a = node(&redis);
    let b = node(&redis);
    let mut on_b = ws(&b, "/socket.io/?EIO=4&transport=websocket");
    text(&mut on_b);
    on_b.send_text("40").unwrap();
    text(&mut on_b);
    // The subscribe waits for its topic's first sync, then is acked.
    on_b.send_text(r#"421["subscribe","c"]"#).unwrap();
    assert!(text(&mut on_b).starts_with(r#"431[{"last_id":""#));
    let mut on_a = ws(&a, "/socket.io/?EIO=4&transport=websocket");
    text(&mut on_a);
    on_a.send_text("40").unwrap();
    text(&mut on_a);
    on_a.send_text(r#"427["publish","c","across",{"event":"hop"}]"#)
        .unwrap();
    // Redis gives the id; the ack carries it.
    let ack = text(&mut on_a);
    let id = ack_id(&ack);
    assert_eq!(
        text(&mut on_b),
        format!(r#"42["hop","across",{{"topic":"c","id":"{id}"}}]"#)
    );
    // And an HTTP publish on A too, with the next id.
    let next = publish(&a, "c", None, "by http");
    assert_eq!(
        text(&mut on_b),
        format!(r#"42["message","by http",{{"topic":"c","id":"{next}"}}]"#)
    );
}

/// `/relay` for the embedder test: `hi` is acked with its arguments and
/// sent on to every other socket that said `hi` before.
#[derive(Default)]
struct Relay {
    seen: Vec<pushwire::proto::socketio::SocketAddr>,
}

impl pushwire::proto::socketio::Namespace for Relay {
    fn on_connect(
        &mut self,
        socket: &mut pushwire::proto::socketio::SocketCtx<'_>,
        auth: &pushwire::client::json::Value,
    ) -> Result<(), pushwire::client::json::Value> {
        match auth.get("name") {
            Some(_) => Ok(()),
            None => Err(parse_json(r#"{"message":"who are you?"}"#)),
        }
        .inspect(|_| socket.emit("welcome", Vec::new()))
    }

    fn on_event(
        &mut self,
        socket: &mut pushwire::proto::socketio::SocketCtx<'_>,
        event: &pushwire::proto::socketio::Event<'_>,
    ) {
        if event.name != "hi" {
            return;
        }
        if let Some(ack) = event.ack {
            socket.ack(ack, event.args.to_vec(), Vec::new());
        }
        for other in &self.seen {
            socket.emit_to(other, "relayed", event.args.to_vec());
        }
        self.seen.push(socket.addr().clone());
    }
}

#[test]
fn an_embedder_registers_a_namespace_with_acks_and_emits_to_other_sockets() {
    let mut server = pushwire::Server::bind(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config()
    })
    .unwrap();
    server.namespace("/relay", Relay::default());
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    let open = |connect: &str| {
        let mut w = WsClient::connect(addr, "/socket.io/?EIO=4&transport=websocket").unwrap();
        w.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        text(&mut w);
        w.send_text(connect).unwrap();
        w
    };
    let mut nobody = open("40/relay,");
    assert_eq!(text(&mut nobody), r#"44/relay,{"message":"who are you?"}"#);
    let mut a = open(r#"40/relay,{"name":"a"}"#);
    assert!(text(&mut a).starts_with("40/relay,{\"sid\":"));
    assert_eq!(text(&mut a), r#"42/relay,["welcome"]"#);
    let mut b = open(r#"40/relay,{"name":"b"}"#);
    text(&mut b);
    text(&mut b);
    a.send_text(r#"42/relay,1["hi",1]"#).unwrap();
    assert_eq!(text(&mut a), r#"43/relay,1[1]"#);
    b.send_text(r#"42/relay,2["hi","from b"]"#).unwrap();
    assert_eq!(text(&mut b), r#"43/relay,2["from b"]"#);
    assert_eq!(text(&mut a), r#"42/relay,["relayed","from b"]"#);
    // Namespace `/` is still the hub's.
    a.send_text("40").unwrap();
    assert!(text(&mut a).starts_with("40{\"sid\":"));
    drop((a, b, nobody));
    handle.shutdown();
    thread.join().unwrap().unwrap();
}

/// The id a publish ack (`43N[{"id":"…"}]`, one digit of ack id) carries.
fn ack_id(ack: &str) -> String {
    let ack = parse_json(&ack[3..]);
    ack.as_array().unwrap()[0]
        .get("id")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

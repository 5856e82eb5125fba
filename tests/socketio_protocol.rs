//! The official Socket.IO protocol suite
//! (`/work/shared/conformance/socketio/socket.io/test-suite.js`), case by
//! case, against `proto::socketio::SioServer` in simulated time: no
//! sockets, no sleeps. The namespaces are the ones the suite expects (see
//! its README): `/` emits `auth` with the handshake auth on connect,
//! answers `message` with `message-back` and the same arguments and
//! `message-with-ack` with an ack of the arguments; `/custom` emits `auth`.
//! Each test is named after its suite case ("Engine.IO protocol" cases
//! first, on `/socket.io/`, then "Socket.IO protocol").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pushwire::client::json::{self, Value};
use pushwire::proto::engineio::{EioConfig, HttpAnswer, Sessions, Sid, Transmit};
use pushwire::proto::socketio::{
    DisconnectReason, Event, Namespace, SioConfig, SioServer, SocketAddr, SocketCtx,
};

const PING_INTERVAL: u64 = 300;
const PING_TIMEOUT: u64 = 200;
const CONNECT_TIMEOUT: u64 = 1000;

/// Namespace `/` of the suite.
struct Main;

impl Namespace for Main {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        socket.emit("auth", vec![auth.clone()]);
        Ok(())
    }

    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>) {
        match (event.name, event.ack) {
            ("message", _) => socket.emit_binary(
                "message-back",
                event.args.to_vec(),
                event.attachments.to_vec(),
            ),
            ("message-with-ack", Some(id)) => {
                socket.ack(id, event.args.to_vec(), event.attachments.to_vec())
            }
            _ => {}
        }
    }
}

/// Namespace `/custom` of the suite.
struct Custom;

impl Namespace for Custom {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        socket.emit("auth", vec![auth.clone()]);
        Ok(())
    }

    fn on_event(&mut self, _: &mut SocketCtx<'_>, _: &Event<'_>) {}
}

#[derive(Default, Debug)]
struct Wire {
    poll_responses: Vec<Vec<u8>>,
    ws: Vec<(bool, Vec<u8>)>,
    ws_closed: Option<u16>,
}

struct Harness {
    server: SioServer,
    now: Instant,
    wires: HashMap<Sid, Wire>,
}

fn counter(start: u8) -> Box<dyn FnMut() -> std::io::Result<Sid> + Send> {
    let mut n = start;
    Box::new(move || {
        n = n.wrapping_add(1);
        Ok(Sid::from_bytes([n; 20]))
    })
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(|_| {})
    }

    fn with_config(adjust: impl FnOnce(&mut SioConfig)) -> Harness {
        let mut config = SioConfig {
            eio: EioConfig {
                ping_interval: Duration::from_millis(PING_INTERVAL),
                ping_timeout: Duration::from_millis(PING_TIMEOUT),
                max_payload: 1_000_000,
                ..EioConfig::default()
            },
            connect_timeout: Duration::from_millis(CONNECT_TIMEOUT),
            ..SioConfig::default()
        };
        adjust(&mut config);
        let eio = Sessions::with_sid_source(config.eio.clone(), counter(0));
        let mut server = SioServer::with_parts(config, eio, counter(100));
        server.register("/", Box::new(Main));
        server.register("/custom", Box::new(Custom));
        Harness {
            server,
            now: Instant::now(),
            wires: HashMap::new(),
        }
    }

    fn pump(&mut self) {
        while let Some((sid, t)) = self.server.poll_transmit() {
            let wire = self.wires.entry(sid).or_default();
            match t {
                Transmit::PollResponse(body) => wire.poll_responses.push(body),
                Transmit::WsMessage { binary, data } => wire.ws.push((binary, data)),
                Transmit::CloseWs(code) => wire.ws_closed = Some(code),
            }
        }
    }

    fn sleep(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(t) = self.server.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    fn request(&mut self, method: &str, query: &str, body: &[u8]) -> (u16, String) {
        let a = self.server.handle_http(method, query, body, self.now);
        self.pump();
        match a {
            HttpAnswer::Respond { status, body, .. } => (status, String::from_utf8(body).unwrap()),
            HttpAnswer::Opened { body, .. } => (200, String::from_utf8(body).unwrap()),
            HttpAnswer::Park(_) => (0, String::new()),
        }
    }

    fn init_long_polling_session(&mut self) -> Sid {
        let (status, body) = self.request("GET", "EIO=4&transport=polling", b"");
        assert_eq!(status, 200);
        let v = json::parse(&body[1..]).unwrap();
        Sid::parse(v.get("sid").unwrap().as_str().unwrap()).unwrap()
    }

    fn ws_open(&mut self, query: &str) -> Result<Sid, u16> {
        let r = self.server.handle_ws_request(query, self.now);
        self.pump();
        r.map_err(|e| e.status())
    }

    fn send(&mut self, sid: Sid, text: &str) {
        let _ = self
            .server
            .handle_ws_message(sid, false, text.as_bytes(), self.now);
        self.pump();
    }

    fn send_binary(&mut self, sid: Sid, bytes: &[u8]) {
        let _ = self.server.handle_ws_message(sid, true, bytes, self.now);
        self.pump();
    }

    fn wire(&mut self, sid: Sid) -> &mut Wire {
        self.wires.entry(sid).or_default()
    }

    /// waitFor(socket, "message"): the next WebSocket message, as text
    /// (binary ones as `<bytes:…>`).
    fn next(&mut self, sid: Sid) -> Option<String> {
        let w = self.wire(sid);
        if w.ws.is_empty() {
            return None;
        }
        let (binary, data) = w.ws.remove(0);
        Some(if binary {
            format!("<bytes:{data:?}>")
        } else {
            String::from_utf8(data).unwrap()
        })
    }

    /// waitForPackets(socket, n): the next `n` messages that are not pings.
    fn packets(&mut self, sid: Sid, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(sid) {
                Some(p) if p == "2" => {}
                Some(p) => out.push(p),
                None => break,
            }
        }
        out
    }

    fn closed(&mut self, sid: Sid) -> bool {
        self.wire(sid).ws_closed.is_some()
    }

    /// initSocketIOConnection(): WebSocket, `40`, the CONNECT reply and
    /// the `auth` event.
    fn init_socketio_connection(&mut self) -> Sid {
        let sid = self.ws_open("EIO=4&transport=websocket").unwrap();
        assert!(self.next(sid).unwrap().starts_with('0'));
        self.send(sid, "40");
        assert!(self.next(sid).unwrap().starts_with("40{\"sid\":"));
        assert_eq!(self.next(sid).as_deref(), Some("42[\"auth\",{}]"));
        sid
    }
}

fn q(sid: Sid) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

fn keys(v: &Value) -> Vec<&str> {
    match v {
        Value::Object(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
        _ => vec![],
    }
}

// Engine.IO protocol / handshake

#[test]
fn eio_handshake_polling_should_successfully_open_a_session() {
    let mut h = Harness::new();
    let (status, body) = h.request("GET", "EIO=4&transport=polling", b"");
    assert_eq!(status, 200);
    let v = json::parse(body.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(
        keys(&v),
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    assert_eq!(
        pushwire::wire::socketio::to_json(v.get("upgrades").unwrap()),
        r#"["websocket"]"#
    );
    assert_eq!(v.get("pingInterval").unwrap().as_f64(), Some(300.0));
    assert_eq!(v.get("pingTimeout").unwrap().as_f64(), Some(200.0));
    assert_eq!(v.get("maxPayload").unwrap().as_f64(), Some(1e6));
}

#[test]
fn eio_handshake_polling_should_fail_with_an_invalid_eio_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.request("GET", "transport=polling", b"").0, 400);
    assert_eq!(h.request("GET", "EIO=abc&transport=polling", b"").0, 400);
}

#[test]
fn eio_handshake_polling_should_fail_with_an_invalid_transport_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.request("GET", "EIO=4", b"").0, 400);
    assert_eq!(h.request("GET", "EIO=4&transport=abc", b"").0, 400);
}

#[test]
fn eio_handshake_polling_should_fail_with_an_invalid_request_method() {
    let mut h = Harness::new();
    assert_eq!(h.request("POST", "EIO=4&transport=polling", b"").0, 400);
    assert_eq!(h.request("PUT", "EIO=4&transport=polling", b"").0, 400);
}

#[test]
fn eio_handshake_websocket_should_successfully_open_a_session() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    let open = h.next(sid).unwrap();
    let v = json::parse(open.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(
        keys(&v),
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    assert_eq!(
        pushwire::wire::socketio::to_json(v.get("upgrades").unwrap()),
        "[]"
    );
}

#[test]
fn eio_handshake_websocket_should_fail_with_an_invalid_eio_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.ws_open("transport=websocket"), Err(400));
    assert_eq!(h.ws_open("EIO=abc&transport=websocket"), Err(400));
}

#[test]
fn eio_handshake_websocket_should_fail_with_an_invalid_transport_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.ws_open("EIO=4"), Err(400));
    assert_eq!(h.ws_open("EIO=4&transport=abc"), Err(400));
}

// Engine.IO protocol / heartbeat

#[test]
fn eio_heartbeat_polling_should_send_ping_pong_packets() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    for i in 0..3 {
        assert_eq!(h.request("GET", &q(sid), b"").0, 0, "parks");
        h.sleep(PING_INTERVAL);
        assert_eq!(
            h.wire(sid).poll_responses.get(i).map(|b| &b[..]),
            Some(&b"2"[..])
        );
        assert_eq!(h.request("POST", &q(sid), b"3"), (200, "ok".into()));
    }
}

#[test]
fn eio_heartbeat_polling_should_close_the_session_upon_ping_timeout() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.now += Duration::from_millis(PING_INTERVAL + PING_TIMEOUT);
    assert_eq!(h.request("GET", &q(sid), b"").0, 400);
}

#[test]
fn eio_heartbeat_websocket_should_send_ping_pong_packets() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    // Within the connect timeout: three pings, three pongs.
    for _ in 0..3 {
        h.sleep(PING_INTERVAL);
        assert_eq!(h.next(sid).as_deref(), Some("2"));
        h.send(sid, "3");
    }
    assert!(!h.closed(sid));
}

#[test]
fn eio_heartbeat_websocket_should_close_the_session_upon_ping_timeout() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.sleep(PING_INTERVAL + PING_TIMEOUT);
    assert!(h.closed(sid));
}

// Engine.IO protocol / close

#[test]
fn eio_close_polling_should_forcefully_close_the_session() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.request("GET", &q(sid), b"").0, 0);
    assert_eq!(h.request("POST", &q(sid), b"1").0, 200);
    assert_eq!(h.wire(sid).poll_responses, vec![b"6".to_vec()]);
    assert_eq!(h.request("GET", &q(sid), b"").0, 400);
}

#[test]
fn eio_close_websocket_should_forcefully_close_the_session() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "1");
    assert!(h.closed(sid));
}

// Engine.IO protocol / upgrade

#[test]
fn eio_upgrade_should_successfully_upgrade_from_http_long_polling_to_websocket() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.send(sid, "2probe");
    assert_eq!(h.next(sid).as_deref(), Some("3probe"));
    h.send(sid, "5");
    // And Socket.IO works over it.
    h.send(sid, "40");
    assert!(h.next(sid).unwrap().starts_with("40{\"sid\":"));
}

#[test]
fn eio_upgrade_should_ignore_http_requests_with_same_sid_after_upgrade() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.send(sid, "2probe");
    h.send(sid, "5");
    assert_eq!(h.request("GET", &q(sid), b"").0, 400);
}

#[test]
fn eio_upgrade_should_ignore_websocket_connection_with_same_sid_after_upgrade() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.send(sid, "2probe");
    h.send(sid, "5");
    assert_eq!(
        h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}")),
        Err(400)
    );
}

// Socket.IO protocol / connect

#[test]
fn connect_should_allow_connection_to_the_main_namespace() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "40");
    let data = h.next(sid).unwrap();
    let v = json::parse(data.strip_prefix("40").unwrap()).unwrap();
    assert_eq!(keys(&v), ["sid"]);
    assert!(v.get("sid").unwrap().as_str().is_some());
    assert_eq!(h.next(sid).as_deref(), Some(r#"42["auth",{}]"#));
}

#[test]
fn connect_should_allow_connection_to_the_main_namespace_with_a_payload() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, r#"40{"token":"123"}"#);
    let data = h.next(sid).unwrap();
    assert_eq!(keys(&json::parse(&data[2..]).unwrap()), ["sid"]);
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"42["auth",{"token":"123"}]"#)
    );
}

#[test]
fn connect_should_allow_connection_to_a_custom_namespace() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "40/custom,");
    let data = h.next(sid).unwrap();
    assert!(data.starts_with("40/custom,"));
    assert_eq!(keys(&json::parse(&data[10..]).unwrap()), ["sid"]);
    assert_eq!(h.next(sid).as_deref(), Some(r#"42/custom,["auth",{}]"#));
}

#[test]
fn connect_should_allow_connection_to_a_custom_namespace_with_a_payload() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, r#"40/custom,{"token":"abc"}"#);
    let data = h.next(sid).unwrap();
    assert!(data.starts_with("40/custom,"));
    assert_eq!(keys(&json::parse(&data[10..]).unwrap()), ["sid"]);
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"42/custom,["auth",{"token":"abc"}]"#)
    );
}

#[test]
fn connect_should_disallow_connection_to_an_unknown_namespace() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "40/random");
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"44/random,{"message":"Invalid namespace"}"#)
    );
}

#[test]
fn connect_should_disallow_connection_with_an_invalid_handshake() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "4abc");
    assert!(h.closed(sid));
    let (closed, _) = h.server.poll_closed().unwrap();
    assert_eq!(closed, sid);
    assert!(h.server.engine().is_empty());
}

#[test]
fn connect_should_close_the_connection_if_no_handshake_is_received() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    // Pongs keep Engine.IO alive; only the connect timeout ends it.
    for _ in 0..3 {
        h.sleep(PING_INTERVAL);
        h.send(sid, "3");
    }
    assert!(!h.closed(sid));
    h.sleep(CONNECT_TIMEOUT - 3 * PING_INTERVAL);
    assert!(h.closed(sid));
}

// Socket.IO protocol / disconnect

#[test]
fn disconnect_should_disconnect_from_the_main_namespace() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, "41");
    assert_eq!(h.next(sid), None);
    h.sleep(PING_INTERVAL);
    // The connection stays: the next thing is a ping.
    assert_eq!(h.next(sid).as_deref(), Some("2"));
}

#[test]
fn disconnect_should_connect_then_disconnect_from_a_custom_namespace() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.sleep(PING_INTERVAL);
    assert_eq!(h.next(sid).as_deref(), Some("2"));
    h.send(sid, "40/custom");
    assert!(h.next(sid).unwrap().starts_with("40/custom,"));
    assert_eq!(h.next(sid).as_deref(), Some(r#"42/custom,["auth",{}]"#));
    h.send(sid, "41/custom");
    h.send(sid, r#"42["message","message to main namespace"]"#);
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"42["message-back","message to main namespace"]"#)
    );
}

// Socket.IO protocol / message

#[test]
fn message_should_send_a_plain_text_packet() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"42["message-back",1,"2",{"3":[true]}]"#)
    );
}

#[test]
fn message_should_send_a_packet_with_binary_attachments() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(
        sid,
        r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.send_binary(sid, &[1, 2, 3]);
    h.send_binary(sid, &[4, 5, 6]);
    assert_eq!(
        h.packets(sid, 3),
        [
            r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            "<bytes:[1, 2, 3]>",
            "<bytes:[4, 5, 6]>",
        ]
    );
}

#[test]
fn message_should_send_a_plain_text_packet_with_an_ack() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"43456[1,"2",{"3":[false]}]"#)
    );
}

#[test]
fn message_should_send_a_packet_with_binary_attachments_and_an_ack() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(
        sid,
        r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.send_binary(sid, &[1, 2, 3]);
    h.send_binary(sid, &[4, 5, 6]);
    assert_eq!(
        h.packets(sid, 3),
        [
            r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            "<bytes:[1, 2, 3]>",
            "<bytes:[4, 5, 6]>",
        ]
    );
}

#[test]
fn message_should_close_the_connection_upon_invalid_format_unknown_packet_type() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, "4abc");
    assert!(h.closed(sid));
}

#[test]
fn message_should_close_the_connection_upon_invalid_format_invalid_payload_format() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, "42{}");
    assert!(h.closed(sid));
}

#[test]
fn message_should_close_the_connection_upon_invalid_format_invalid_ack_id() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#);
    assert!(h.closed(sid));
}

// Beyond the suite.

#[test]
fn socketio_over_polling_batches_connect_reply_and_auth_in_one_payload() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.request("POST", &q(sid), b"40"), (200, "ok".into()));
    let (status, body) = h.request("GET", &q(sid), b"");
    assert_eq!(status, 200);
    let parts: Vec<&str> = body.split('\x1e').collect();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].starts_with("40{\"sid\":"));
    assert_eq!(parts[1], r#"42["auth",{}]"#);
}

#[test]
fn binary_event_over_polling_is_base64() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.request("POST", &q(sid), b"40");
    h.request("GET", &q(sid), b"");
    let body = "452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQID\x1ebBAUG";
    assert_eq!(h.request("POST", &q(sid), body.as_bytes()).0, 200);
    let (_, back) = h.request("GET", &q(sid), b"");
    assert_eq!(back, body.replace("\"message\"", "\"message-back\""));
}

/// Records what a namespace saw, for the tests below.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

struct Recording {
    log: Log,
    refuse: bool,
}

impl Namespace for Recording {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, _: &Value) -> Result<(), Value> {
        if self.refuse {
            return Err(json::parse(r#"{"message":"not authorized"}"#).unwrap());
        }
        self.log
            .0
            .lock()
            .unwrap()
            .push(format!("connect recovered={}", socket.recovered()));
        socket.emit_with_ack("hello", vec![Value::Number(1.0)]);
        Ok(())
    }

    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>) {
        self.log
            .0
            .lock()
            .unwrap()
            .push(format!("event {}", event.name));
        if event.name == "bye" {
            socket.disconnect();
        }
    }

    fn on_ack(&mut self, _: &mut SocketCtx<'_>, id: u64, args: &[Value], _: &[Vec<u8>]) {
        self.log
            .0
            .lock()
            .unwrap()
            .push(format!("ack {id} {}", args.len()));
    }

    fn on_disconnect(&mut self, _: &SocketAddr, _: Sid, reason: DisconnectReason) {
        self.log
            .0
            .lock()
            .unwrap()
            .push(format!("disconnect {}", reason.as_str()));
    }
}

#[test]
fn refused_connect_is_connect_error_with_the_handler_data() {
    let mut h = Harness::new();
    h.server.register(
        "/private",
        Box::new(Recording {
            log: Log::default(),
            refuse: true,
        }),
    );
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "40/private,");
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"44/private,{"message":"not authorized"}"#)
    );
    assert_eq!(h.next(sid), None, "nothing emitted by a refused connect");
}

#[test]
fn server_emit_with_ack_and_server_disconnect() {
    let mut h = Harness::new();
    let log = Log::default();
    h.server.register(
        "/r",
        Box::new(Recording {
            log: log.clone(),
            refuse: false,
        }),
    );
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "40/r,");
    h.next(sid).unwrap();
    assert_eq!(h.next(sid).as_deref(), Some(r#"42/r,0["hello",1]"#));
    h.send(sid, r#"43/r,0["got it"]"#);
    // An ack nobody asked for is ignored.
    h.send(sid, r#"43/r,7[]"#);
    h.send(sid, r#"42/r,["bye"]"#);
    assert_eq!(h.next(sid).as_deref(), Some("41/r,"));
    assert_eq!(
        *log.0.lock().unwrap(),
        [
            "connect recovered=false",
            "ack 0 1",
            "event bye",
            "disconnect server namespace disconnect"
        ]
    );
}

#[test]
fn event_for_a_namespace_not_joined_closes_the_connection() {
    let mut h = Harness::new();
    let sid = h.init_socketio_connection();
    h.send(sid, r#"42/custom,["message"]"#);
    assert!(h.closed(sid));
}

#[test]
fn connection_state_recovery_replays_missed_events() {
    let mut h = Harness::with_config(|c| c.recovery_window = Some(Duration::from_secs(120)));
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid).unwrap();
    h.send(sid, "40");
    let reply = h.next(sid).unwrap();
    let v = json::parse(&reply[2..]).unwrap();
    assert_eq!(keys(&v), ["sid", "pid"]);
    let socket_id = v.get("sid").unwrap().as_str().unwrap().to_string();
    let pid = v.get("pid").unwrap().as_str().unwrap().to_string();
    // Every event carries its offset as its last argument.
    assert_eq!(h.next(sid).as_deref(), Some(r#"42["auth",{},"1"]"#));
    h.send(sid, r#"42["message","a"]"#);
    h.send(sid, r#"42["message","b"]"#);
    assert_eq!(
        h.next(sid).as_deref(),
        Some(r#"42["message-back","a","2"]"#)
    );
    // The connection breaks before the client reads "b".
    h.server.handle_ws_closed(sid, h.now);
    h.pump();

    let sid2 = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid2).unwrap();
    h.send(sid2, &format!(r#"40{{"pid":"{pid}","offset":"2"}}"#));
    let reply = h.next(sid2).unwrap();
    let v = json::parse(&reply[2..]).unwrap();
    assert_eq!(v.get("sid").unwrap().as_str(), Some(socket_id.as_str()));
    assert_eq!(v.get("pid").unwrap().as_str(), Some(pid.as_str()));
    assert_eq!(
        h.next(sid2).as_deref(),
        Some(r#"42["message-back","b","3"]"#)
    );
    // The handler runs again (its auth emit has a new offset).
    assert!(h.next(sid2).unwrap().starts_with(r#"42["auth",{"pid""#));
}

#[test]
fn connection_state_recovery_refuses_an_unknown_offset_or_an_expired_pid() {
    let mut h = Harness::with_config(|c| c.recovery_window = Some(Duration::from_secs(2)));
    let sid = h.init_socketio_connection_with_pid();
    let (socket_id, pid) = sid.1;
    h.server.handle_ws_closed(sid.0, h.now);
    h.pump();
    let sid2 = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid2).unwrap();
    h.send(sid2, &format!(r#"40{{"pid":"{pid}","offset":"999"}}"#));
    let v = json::parse(&h.next(sid2).unwrap()[2..]).unwrap();
    assert_ne!(v.get("sid").unwrap().as_str(), Some(socket_id.as_str()));

    // Past the window the state is gone.
    let mut h = Harness::with_config(|c| c.recovery_window = Some(Duration::from_secs(2)));
    let sid = h.init_socketio_connection_with_pid();
    let (socket_id, pid) = sid.1;
    h.server.handle_ws_closed(sid.0, h.now);
    h.pump();
    h.sleep(2_001);
    let sid2 = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.next(sid2).unwrap();
    h.send(sid2, &format!(r#"40{{"pid":"{pid}","offset":"1"}}"#));
    let v = json::parse(&h.next(sid2).unwrap()[2..]).unwrap();
    assert_ne!(v.get("sid").unwrap().as_str(), Some(socket_id.as_str()));
}

impl Harness {
    /// Connects to `/` with recovery on; returns the Engine.IO sid and the
    /// socket's (sid, pid).
    fn init_socketio_connection_with_pid(&mut self) -> (Sid, (String, String)) {
        let sid = self.ws_open("EIO=4&transport=websocket").unwrap();
        self.next(sid).unwrap();
        self.send(sid, "40");
        let v = json::parse(&self.next(sid).unwrap()[2..]).unwrap();
        self.next(sid).unwrap();
        let s = v.get("sid").unwrap().as_str().unwrap().to_string();
        let p = v.get("pid").unwrap().as_str().unwrap().to_string();
        (sid, (s, p))
    }
}

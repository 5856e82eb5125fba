//! The official Socket.IO protocol suite
//! (`/work/shared/conformance/socketio/socket.io/test-suite.js`), case by
//! case, against `proto::socketio::SioServer` in simulated time: no
//! sockets, no sleeps. The namespaces are the ones the suite expects (see
//! its README): `/` emits `auth` with the handshake auth on connect,
//! answers `message` with `message-back` and the same arguments and
//! `message-with-ack` with an ack of the arguments; `/custom` emits `auth`.
//! Each test is named after its suite case ("Engine.IO protocol" cases
//! first, on `/socket.io/`, then "Socket.IO protocol").

mod eio_harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eio_harness::{q, Harness, PING_INTERVAL, PING_TIMEOUT};
use pushwire::client::json::{self, Value};
use pushwire::proto::engineio::{EioConfig, Sessions, Sid};
use pushwire::proto::socketio::{
    DisconnectReason, Event, Namespace, SioConfig, SioServer, SocketAddr, SocketCtx,
};

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

fn counter(start: u8) -> Box<dyn FnMut() -> std::io::Result<Sid> + Send> {
    let mut n = start;
    Box::new(move || {
        n = n.wrapping_add(1);
        Ok(Sid::from_bytes([n; 20]))
    })
}

fn harness() -> Harness<SioServer> {
    harness_with(|_| {})
}

fn harness_with(adjust: impl FnOnce(&mut SioConfig)) -> Harness<SioServer> {
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
    Harness::new(server)
}

/// The suite's Socket.IO helpers, on the Engine.IO harness.
trait SocketIoClient {
    /// waitForPackets(socket, n): the next `n` messages that are not pings.
    fn packets(&mut self, sid: Sid, n: usize) -> Vec<String>;
    /// initSocketIOConnection(): WebSocket, `40`, the CONNECT reply and
    /// the `auth` event.
    fn init_socketio_connection(&mut self) -> Sid;
}

impl SocketIoClient for Harness<SioServer> {
    fn packets(&mut self, sid: Sid, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.ws_next(sid) {
                Some(p) if p == "2" => {}
                Some(p) => out.push(p),
                None => break,
            }
        }
        out
    }

    fn init_socketio_connection(&mut self) -> Sid {
        let sid = self.ws_open("EIO=4&transport=websocket").unwrap();
        assert!(self.ws_next(sid).unwrap().starts_with('0'));
        self.ws_send(sid, "40");
        assert!(self.ws_next(sid).unwrap().starts_with("40{\"sid\":"));
        assert_eq!(self.ws_next(sid).as_deref(), Some("42[\"auth\",{}]"));
        sid
    }
}

fn keys(v: &Value) -> Vec<&str> {
    match v {
        Value::Object(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
        _ => vec![],
    }
}

// Engine.IO protocol: the cases every Engine.IO server passes, on /socket.io/

#[test]
fn eio_handshake_polling_should_successfully_open_a_session() {
    eio_harness::handshake_polling_successfully_opens_a_session(&mut harness());
}

#[test]
fn eio_handshake_polling_should_fail_with_an_invalid_eio_query_parameter() {
    eio_harness::handshake_polling_fails_with_an_invalid_eio_query_parameter(&mut harness());
}

#[test]
fn eio_handshake_polling_should_fail_with_an_invalid_transport_query_parameter() {
    eio_harness::handshake_polling_fails_with_an_invalid_transport_query_parameter(&mut harness());
}

#[test]
fn eio_handshake_polling_should_fail_with_an_invalid_request_method() {
    eio_harness::handshake_polling_fails_with_an_invalid_request_method(&mut harness());
}

#[test]
fn eio_handshake_websocket_should_successfully_open_a_session() {
    eio_harness::handshake_websocket_successfully_opens_a_session(&mut harness());
}

#[test]
fn eio_handshake_websocket_should_fail_with_an_invalid_eio_query_parameter() {
    eio_harness::handshake_websocket_fails_with_an_invalid_eio_query_parameter(&mut harness());
}

#[test]
fn eio_handshake_websocket_should_fail_with_an_invalid_transport_query_parameter() {
    eio_harness::handshake_websocket_fails_with_an_invalid_transport_query_parameter(&mut harness());
}

#[test]
fn eio_heartbeat_polling_should_send_ping_pong_packets() {
    eio_harness::heartbeat_polling_sends_ping_pong_packets(&mut harness());
}

#[test]
fn eio_heartbeat_polling_should_close_the_session_upon_ping_timeout() {
    eio_harness::heartbeat_polling_closes_the_session_upon_ping_timeout(&mut harness());
}

#[test]
fn eio_heartbeat_websocket_should_send_ping_pong_packets() {
    eio_harness::heartbeat_websocket_sends_ping_pong_packets(&mut harness());
}

#[test]
fn eio_heartbeat_websocket_should_close_the_session_upon_ping_timeout() {
    eio_harness::heartbeat_websocket_closes_the_session_upon_ping_timeout(&mut harness());
}

#[test]
fn eio_close_polling_should_forcefully_close_the_session() {
    eio_harness::close_polling_forcefully_closes_the_session(&mut harness());
}

#[test]
fn eio_close_websocket_should_forcefully_close_the_session() {
    eio_harness::close_websocket_forcefully_closes_the_session(&mut harness());
}

#[test]
fn eio_upgrade_should_successfully_upgrade_from_http_long_polling_to_websocket() {
    let mut h = harness();
    let sid =
        eio_harness::upgrade_successfully_upgrades_from_http_long_polling_to_websocket(&mut h);
    // And Socket.IO works over it.
    h.ws_send(sid, "40");
    assert!(h.ws_next(sid).unwrap().starts_with("40{\"sid\":"));
}

#[test]
fn eio_upgrade_should_ignore_http_requests_with_same_sid_after_upgrade() {
    eio_harness::upgrade_ignores_http_requests_with_same_sid_after_upgrade(&mut harness());
}

#[test]
fn eio_upgrade_should_ignore_websocket_connection_with_same_sid_after_upgrade() {
    eio_harness::upgrade_ignores_websocket_connection_with_same_sid_after_upgrade(&mut harness());
}

// Socket.IO protocol / connect

#[test]
fn connect_should_allow_connection_to_the_main_namespace() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40");
    let data = h.ws_next(sid).unwrap();
    let v = json::parse(data.strip_prefix("40").unwrap()).unwrap();
    assert_eq!(keys(&v), ["sid"]);
    assert!(v.get("sid").unwrap().as_str().is_some());
    assert_eq!(h.ws_next(sid).as_deref(), Some(r#"42["auth",{}]"#));
}

#[test]
fn connect_should_allow_connection_to_the_main_namespace_with_a_payload() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, r#"40{"token":"123"}"#);
    let data = h.ws_next(sid).unwrap();
    assert_eq!(keys(&json::parse(&data[2..]).unwrap()), ["sid"]);
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"42["auth",{"token":"123"}]"#)
    );
}

#[test]
fn connect_should_allow_connection_to_a_custom_namespace() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40/custom,");
    let data = h.ws_next(sid).unwrap();
    assert!(data.starts_with("40/custom,"));
    assert_eq!(keys(&json::parse(&data[10..]).unwrap()), ["sid"]);
    assert_eq!(h.ws_next(sid).as_deref(), Some(r#"42/custom,["auth",{}]"#));
}

#[test]
fn connect_should_allow_connection_to_a_custom_namespace_with_a_payload() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, r#"40/custom,{"token":"abc"}"#);
    let data = h.ws_next(sid).unwrap();
    assert!(data.starts_with("40/custom,"));
    assert_eq!(keys(&json::parse(&data[10..]).unwrap()), ["sid"]);
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"42/custom,["auth",{"token":"abc"}]"#)
    );
}

#[test]
fn connect_should_disallow_connection_to_an_unknown_namespace() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40/random");
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"44/random,{"message":"Invalid namespace"}"#)
    );
}

#[test]
fn connect_should_disallow_connection_with_an_invalid_handshake() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "4abc");
    assert!(h.ws_closed(sid));
    let (closed, _) = h.engine.poll_closed().unwrap();
    assert_eq!(closed, sid);
    assert!(h.engine.engine().is_empty());
}

#[test]
fn connect_should_close_the_connection_if_no_handshake_is_received() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    // Pongs keep Engine.IO alive; only the connect timeout ends it.
    for _ in 0..3 {
        h.sleep(PING_INTERVAL);
        h.ws_send(sid, "3");
    }
    assert!(!h.ws_closed(sid));
    h.sleep(CONNECT_TIMEOUT - 3 * PING_INTERVAL);
    assert!(h.ws_closed(sid));
}

// Socket.IO protocol / disconnect

#[test]
fn disconnect_should_disconnect_from_the_main_namespace() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, "41");
    assert_eq!(h.ws_next(sid), None);
    h.sleep(PING_INTERVAL);
    // The connection stays: the next thing is a ping.
    assert_eq!(h.ws_next(sid).as_deref(), Some("2"));
}

#[test]
fn disconnect_should_connect_then_disconnect_from_a_custom_namespace() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.sleep(PING_INTERVAL);
    assert_eq!(h.ws_next(sid).as_deref(), Some("2"));
    h.ws_send(sid, "40/custom");
    assert!(h.ws_next(sid).unwrap().starts_with("40/custom,"));
    assert_eq!(h.ws_next(sid).as_deref(), Some(r#"42/custom,["auth",{}]"#));
    h.ws_send(sid, "41/custom");
    h.ws_send(sid, r#"42["message","message to main namespace"]"#);
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"42["message-back","message to main namespace"]"#)
    );
}

// Socket.IO protocol / message

#[test]
fn message_should_send_a_plain_text_packet() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"42["message-back",1,"2",{"3":[true]}]"#)
    );
}

#[test]
fn message_should_send_a_packet_with_binary_attachments() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(
        sid,
        r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.ws_send_binary(sid, &[1, 2, 3]);
    h.ws_send_binary(sid, &[4, 5, 6]);
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
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"43456[1,"2",{"3":[false]}]"#)
    );
}

#[test]
fn message_should_send_a_packet_with_binary_attachments_and_an_ack() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(
        sid,
        r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    );
    h.ws_send_binary(sid, &[1, 2, 3]);
    h.ws_send_binary(sid, &[4, 5, 6]);
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
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, "4abc");
    assert!(h.ws_closed(sid));
}

#[test]
fn message_should_close_the_connection_upon_invalid_format_invalid_payload_format() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, "42{}");
    assert!(h.ws_closed(sid));
}

#[test]
fn message_should_close_the_connection_upon_invalid_format_invalid_ack_id() {
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#);
    assert!(h.ws_closed(sid));
}

// Beyond the suite.

#[test]
fn socketio_over_polling_batches_connect_reply_and_auth_in_one_payload() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    assert_eq!(h.answer("POST", &q(sid), b"40"), (200, "ok".into()));
    let (status, body) = h.answer("GET", &q(sid), b"");
    assert_eq!(status, 200);
    let parts: Vec<&str> = body.split('\x1e').collect();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].starts_with("40{\"sid\":"));
    assert_eq!(parts[1], r#"42["auth",{}]"#);
}

#[test]
fn binary_event_over_polling_is_base64() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    h.answer("POST", &q(sid), b"40");
    h.answer("GET", &q(sid), b"");
    let body = "452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1ebAQID\x1ebBAUG";
    assert_eq!(h.answer("POST", &q(sid), body.as_bytes()).0, 200);
    let (_, back) = h.answer("GET", &q(sid), b"");
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
        socket.emit_with_ack("hello", vec![Value::from(1.0)]);
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
    let mut h = harness();
    h.engine.register(
        "/private",
        Box::new(Recording {
            log: Log::default(),
            refuse: true,
        }),
    );
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40/private,");
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"44/private,{"message":"not authorized"}"#)
    );
    assert_eq!(h.ws_next(sid), None, "nothing emitted by a refused connect");
}

#[test]
fn server_emit_with_ack_and_server_disconnect() {
    let mut h = harness();
    let log = Log::default();
    h.engine.register(
        "/r",
        Box::new(Recording {
            log: log.clone(),
            refuse: false,
        }),
    );
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40/r,");
    h.ws_next(sid).unwrap();
    assert_eq!(h.ws_next(sid).as_deref(), Some(r#"42/r,0["hello",1]"#));
    h.ws_send(sid, r#"43/r,0["got it"]"#);
    // An ack nobody asked for is ignored.
    h.ws_send(sid, r#"43/r,7[]"#);
    h.ws_send(sid, r#"42/r,["bye"]"#);
    assert_eq!(h.ws_next(sid).as_deref(), Some("41/r,"));
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
    let mut h = harness();
    let sid = h.init_socketio_connection();
    h.ws_send(sid, r#"42/custom,["message"]"#);
    assert!(h.ws_closed(sid));
}

#[test]
fn connection_state_recovery_replays_missed_events() {
    let mut h = harness_with(|c| c.recovery_window = Some(Duration::from_secs(120)));
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40");
    let reply = h.ws_next(sid).unwrap();
    let v = json::parse(&reply[2..]).unwrap();
    assert_eq!(keys(&v), ["sid", "pid"]);
    let socket_id = v.get("sid").unwrap().as_str().unwrap().to_string();
    let pid = v.get("pid").unwrap().as_str().unwrap().to_string();
    // Every event carries its offset as its last argument.
    assert_eq!(h.ws_next(sid).as_deref(), Some(r#"42["auth",{},"1"]"#));
    h.ws_send(sid, r#"42["message","a"]"#);
    h.ws_send(sid, r#"42["message","b"]"#);
    assert_eq!(
        h.ws_next(sid).as_deref(),
        Some(r#"42["message-back","a","2"]"#)
    );
    // The connection breaks before the client reads "b".
    h.engine.handle_ws_closed(sid, h.now);
    h.pump();

    let sid2 = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid2).unwrap();
    h.ws_send(sid2, &format!(r#"40{{"pid":"{pid}","offset":"2"}}"#));
    let reply = h.ws_next(sid2).unwrap();
    let v = json::parse(&reply[2..]).unwrap();
    assert_eq!(v.get("sid").unwrap().as_str(), Some(socket_id.as_str()));
    assert_eq!(v.get("pid").unwrap().as_str(), Some(pid.as_str()));
    assert_eq!(
        h.ws_next(sid2).as_deref(),
        Some(r#"42["message-back","b","3"]"#)
    );
    // The handler runs again (its auth emit has a new offset).
    assert!(h.ws_next(sid2).unwrap().starts_with(r#"42["auth",{"pid""#));
}

#[test]
fn connection_state_recovery_refuses_an_unknown_offset_or_an_expired_pid() {
    let mut h = harness_with(|c| c.recovery_window = Some(Duration::from_secs(2)));
    let sid = init_socketio_connection_with_pid(&mut h);
    let (socket_id, pid) = sid.1;
    h.engine.handle_ws_closed(sid.0, h.now);
    h.pump();
    let sid2 = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid2).unwrap();
    h.ws_send(sid2, &format!(r#"40{{"pid":"{pid}","offset":"999"}}"#));
    let v = json::parse(&h.ws_next(sid2).unwrap()[2..]).unwrap();
    assert_ne!(v.get("sid").unwrap().as_str(), Some(socket_id.as_str()));

    // Past the window the state is gone.
    let mut h = harness_with(|c| c.recovery_window = Some(Duration::from_secs(2)));
    let sid = init_socketio_connection_with_pid(&mut h);
    let (socket_id, pid) = sid.1;
    h.engine.handle_ws_closed(sid.0, h.now);
    h.pump();
    h.sleep(2_001);
    let sid2 = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid2).unwrap();
    h.ws_send(sid2, &format!(r#"40{{"pid":"{pid}","offset":"1"}}"#));
    let v = json::parse(&h.ws_next(sid2).unwrap()[2..]).unwrap();
    assert_ne!(v.get("sid").unwrap().as_str(), Some(socket_id.as_str()));
}

/// Connects to `/` with recovery on; returns the Engine.IO sid and the
/// socket's (sid, pid).
fn init_socketio_connection_with_pid(h: &mut Harness<SioServer>) -> (Sid, (String, String)) {
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "40");
    let v = json::parse(&h.ws_next(sid).unwrap()[2..]).unwrap();
    h.ws_next(sid).unwrap();
    let s = v.get("sid").unwrap().as_str().unwrap().to_string();
    let p = v.get("pid").unwrap().as_str().unwrap().to_string();
    (sid, (s, p))
}

//! The official Engine.IO protocol suite
//! (`/work/shared/conformance/socketio/engine.io/test-suite.js`), case by
//! case, against `proto::engineio::Sessions` in simulated time: no
//! sockets, no sleeps. The application is the suite's: it echoes every
//! message (text as text, binary as binary). Each test is named after its
//! suite case.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pushwire::proto::engineio::{EioConfig, EioEvent, HttpAnswer, Sessions, Sid, Transmit};
use pushwire::wire::engineio::Data;

const PING_INTERVAL: u64 = 300;
const PING_TIMEOUT: u64 = 200;

/// What one client connection has received.
#[derive(Default, Debug)]
struct Wire {
    /// Bodies that answered parked GETs, in order.
    poll_responses: Vec<Vec<u8>>,
    /// WebSocket messages: (binary, data).
    ws: Vec<(bool, Vec<u8>)>,
    ws_closed: Option<u16>,
}

struct Harness {
    sessions: Sessions,
    now: Instant,
    wires: HashMap<Sid, Wire>,
    closed: Vec<(Sid, String)>,
}

impl Harness {
    fn new() -> Harness {
        let mut n = 0u8;
        let config = EioConfig {
            ping_interval: Duration::from_millis(PING_INTERVAL),
            ping_timeout: Duration::from_millis(PING_TIMEOUT),
            max_payload: 1_000_000,
            ..EioConfig::default()
        };
        Harness {
            sessions: Sessions::with_sid_source(
                config,
                Box::new(move || {
                    n = n.wrapping_add(1);
                    Ok(Sid::from_bytes([n; 20]))
                }),
            ),
            now: Instant::now(),
            wires: HashMap::new(),
            closed: Vec::new(),
        }
    }

    /// Delivers what the sessions produced, and runs the echo application.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some((sid, event)) = self.sessions.poll_event() {
                progressed = true;
                match event {
                    EioEvent::Message(data) => {
                        self.sessions.send(sid, data);
                    }
                    EioEvent::Closed(reason) => self.closed.push((sid, reason.as_str().into())),
                    EioEvent::Upgraded | EioEvent::Opened => {}
                }
            }
            while let Some((sid, t)) = self.sessions.poll_transmit() {
                progressed = true;
                let wire = self.wires.entry(sid).or_default();
                match t {
                    Transmit::PollResponse(body) => wire.poll_responses.push(body),
                    Transmit::WsMessage { binary, data } => wire.ws.push((binary, data)),
                    Transmit::CloseWs(code) => wire.ws_closed = Some(code),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Moves time forward by `ms`, firing every deadline on the way.
    fn sleep(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(t) = self.sessions.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.sessions.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    fn request(&mut self, method: &str, query: &str, body: &[u8]) -> HttpAnswer {
        let a = self.sessions.handle_http(method, query, body, self.now);
        self.pump();
        a
    }

    fn get(&mut self, query: &str) -> HttpAnswer {
        self.request("GET", query, b"")
    }

    /// A GET answered at once: (status, body).
    fn get_now(&mut self, query: &str) -> (u16, String) {
        match self.get(query) {
            HttpAnswer::Respond { status, body, .. } => (status, String::from_utf8(body).unwrap()),
            HttpAnswer::Opened { body, .. } => (200, String::from_utf8(body).unwrap()),
            HttpAnswer::Park(_) => panic!("GET {query} parked"),
        }
    }

    fn post(&mut self, query: &str, body: &[u8]) -> (u16, String) {
        match self.request("POST", query, body) {
            HttpAnswer::Respond { status, body, .. } => (status, String::from_utf8(body).unwrap()),
            HttpAnswer::Opened { .. } | HttpAnswer::Park(_) => panic!("POST opened or parked"),
        }
    }

    /// initLongPollingSession(): the handshake, returning the sid.
    fn init_long_polling_session(&mut self) -> Sid {
        let (status, body) = self.get_now("EIO=4&transport=polling");
        assert_eq!(status, 200);
        let v = pushwire::client::json::parse(&body[1..]).unwrap();
        Sid::parse(v.get("sid").unwrap().as_str().unwrap()).unwrap()
    }

    fn ws_open(&mut self, query: &str) -> Result<Sid, u16> {
        let r = self.sessions.handle_ws_request(query, self.now);
        self.pump();
        r.map_err(|e| e.status())
    }

    fn ws_send(&mut self, sid: Sid, text: &str) {
        let _ = self
            .sessions
            .handle_ws_message(sid, false, text.as_bytes(), self.now);
        self.pump();
    }

    fn wire(&mut self, sid: Sid) -> &mut Wire {
        self.wires.entry(sid).or_default()
    }

    /// The next WebSocket text message not yet looked at.
    fn ws_next(&mut self, sid: Sid) -> Option<String> {
        let w = self.wire(sid);
        if w.ws.is_empty() {
            return None;
        }
        let (binary, data) = w.ws.remove(0);
        assert!(!binary);
        Some(String::from_utf8(data).unwrap())
    }
}

fn q(sid: Sid) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

fn status(a: &HttpAnswer) -> u16 {
    match a {
        HttpAnswer::Respond { status, .. } => *status,
        HttpAnswer::Opened { .. } => 200,
        HttpAnswer::Park(_) => 0,
    }
}

// handshake / HTTP long-polling

#[test]
fn handshake_polling_successfully_opens_a_session() {
    let mut h = Harness::new();
    let (status, body) = h.get_now("EIO=4&transport=polling");
    assert_eq!(status, 200);
    assert!(body.starts_with('0'));
    let v = pushwire::client::json::parse(&body[1..]).unwrap();
    let pushwire::client::json::Value::Object(members) = &v else {
        panic!()
    };
    let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    assert!(v.get("sid").unwrap().as_str().is_some());
    assert_eq!(
        pushwire::wire::socketio::to_json(v.get("upgrades").unwrap()),
        r#"["websocket"]"#
    );
    assert_eq!(v.get("pingInterval").unwrap().as_f64(), Some(300.0));
    assert_eq!(v.get("pingTimeout").unwrap().as_f64(), Some(200.0));
    assert_eq!(v.get("maxPayload").unwrap().as_f64(), Some(1_000_000.0));
}

#[test]
fn handshake_polling_fails_with_an_invalid_eio_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.get_now("transport=polling").0, 400);
    let (status, body) = h.get_now("EIO=abc&transport=polling");
    assert_eq!(status, 400);
    assert_eq!(
        body,
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
}

#[test]
fn handshake_polling_fails_with_an_invalid_transport_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.get_now("EIO=4").0, 400);
    let (status, body) = h.get_now("EIO=4&transport=abc");
    assert_eq!(status, 400);
    assert_eq!(body, r#"{"code":0,"message":"Transport unknown"}"#);
}

#[test]
fn handshake_polling_fails_with_an_invalid_request_method() {
    let mut h = Harness::new();
    let (status, body) = h.post("EIO=4&transport=polling", b"");
    assert_eq!(status, 400);
    assert_eq!(body, r#"{"code":2,"message":"Bad handshake method"}"#);
    assert_eq!(
        status_of(h.request("PUT", "EIO=4&transport=polling", b"")),
        400
    );
    assert!(h.sessions.is_empty());
}

fn status_of(a: HttpAnswer) -> u16 {
    status(&a)
}

// handshake / WebSocket

#[test]
fn handshake_websocket_successfully_opens_a_session() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    let open = h.ws_next(sid).unwrap();
    assert!(open.starts_with('0'));
    let v = pushwire::client::json::parse(&open[1..]).unwrap();
    assert_eq!(v.get("sid").unwrap().as_str(), Some(sid.as_str()));
    assert_eq!(
        pushwire::wire::socketio::to_json(v.get("upgrades").unwrap()),
        "[]"
    );
    assert_eq!(v.get("pingInterval").unwrap().as_f64(), Some(300.0));
    assert_eq!(v.get("pingTimeout").unwrap().as_f64(), Some(200.0));
    assert_eq!(v.get("maxPayload").unwrap().as_f64(), Some(1_000_000.0));
}

#[test]
fn handshake_websocket_fails_with_an_invalid_eio_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.ws_open("transport=websocket"), Err(400));
    assert_eq!(h.ws_open("EIO=abc&transport=websocket"), Err(400));
}

#[test]
fn handshake_websocket_fails_with_an_invalid_transport_query_parameter() {
    let mut h = Harness::new();
    assert_eq!(h.ws_open("EIO=4"), Err(400));
    assert_eq!(h.ws_open("EIO=4&transport=abc"), Err(400));
}

// message / HTTP long-polling

fn push_then_poll(body: &str) {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.post(&q(sid), body.as_bytes()), (200, "ok".into()));
    assert_eq!(h.get_now(&q(sid)), (200, body.into()));
}

#[test]
fn message_polling_sends_and_receives_a_payload_containing_one_plain_text_packet() {
    push_then_poll("4hello");
}

#[test]
fn message_polling_sends_and_receives_a_payload_containing_several_plain_text_packets() {
    push_then_poll("4test1\x1e4test2\x1e4test3");
}

#[test]
fn message_polling_sends_and_receives_a_payload_containing_plain_text_and_binary_packets() {
    push_then_poll("4hello\x1ebAQIDBA==");
}

#[test]
fn message_polling_closes_the_session_upon_invalid_packet_format() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.post(&q(sid), b"abc").0, 400);
    assert_eq!(h.get_now(&q(sid)).0, 400);
    assert_eq!(h.closed, vec![(sid, "parse error".to_string())]);
}

#[test]
fn message_polling_closes_the_session_upon_duplicate_poll_requests() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    h.sleep(5);
    let second = h.get(&format!("{}&t=burst", q(sid)));
    assert!([400, 500].contains(&status(&second)));
    assert_eq!(h.wire(sid).poll_responses, vec![b"1".to_vec()]);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

// message / WebSocket

#[test]
fn message_websocket_sends_and_receives_a_plain_text_packet() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    assert!(h.ws_next(sid).unwrap().starts_with('0'));
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn message_websocket_sends_and_receives_a_binary_packet() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.sessions
        .handle_ws_message(sid, true, &[1, 2, 3, 4], h.now)
        .unwrap();
    h.pump();
    assert_eq!(h.wire(sid).ws, vec![(true, vec![1, 2, 3, 4])]);
}

#[test]
fn message_websocket_closes_the_session_upon_invalid_packet_format() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "abc");
    assert!(h.wire(sid).ws_closed.is_some());
    assert!(h.sessions.is_empty());
}

// heartbeat

#[test]
fn heartbeat_polling_sends_ping_pong_packets() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    for i in 0..3 {
        assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
        h.sleep(PING_INTERVAL);
        assert_eq!(h.wire(sid).poll_responses.len(), i + 1);
        assert_eq!(h.wire(sid).poll_responses[i], b"2");
        h.sleep(10);
        assert_eq!(h.post(&q(sid), b"3"), (200, "ok".into()));
    }
}

#[test]
fn heartbeat_polling_closes_the_session_upon_ping_timeout() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    // The suite sleeps exactly pingInterval + pingTimeout, then polls:
    // the request must find the session closed even before any timer ran.
    h.now += Duration::from_millis(PING_INTERVAL + PING_TIMEOUT);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn heartbeat_websocket_sends_ping_pong_packets() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    for _ in 0..3 {
        h.sleep(PING_INTERVAL);
        assert_eq!(h.ws_next(sid).as_deref(), Some("2"));
        h.ws_send(sid, "3");
    }
    assert!(h.wire(sid).ws_closed.is_none());
}

#[test]
fn heartbeat_websocket_closes_the_session_upon_ping_timeout() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.sleep(PING_INTERVAL + PING_TIMEOUT - 1);
    assert!(h.wire(sid).ws_closed.is_none());
    h.sleep(1);
    assert!(h.wire(sid).ws_closed.is_some());
    assert_eq!(h.closed, vec![(sid, "ping timeout".to_string())]);
}

// close

#[test]
fn close_polling_forcefully_closes_the_session() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    assert_eq!(h.post(&q(sid), b"1").0, 200);
    assert_eq!(h.wire(sid).poll_responses, vec![b"6".to_vec()]);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn close_websocket_forcefully_closes_the_session() {
    let mut h = Harness::new();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "1");
    assert!(h.wire(sid).ws_closed.is_some());
    assert_eq!(h.closed, vec![(sid, "transport close".to_string())]);
}

// upgrade

#[test]
fn upgrade_successfully_upgrades_from_http_long_polling_to_websocket() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    let ws = h
        .ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    assert_eq!(ws, sid);
    h.ws_send(sid, "2probe");
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    assert_eq!(h.get_now(&q(sid)), (200, "6".into()));
    h.ws_send(sid, "5");
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn upgrade_with_a_waiting_poll_ends_it_with_a_noop() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send(sid, "2probe");
    assert_eq!(h.wire(sid).poll_responses, vec![b"6".to_vec()]);
    h.ws_send(sid, "5");
    // Pings now go over the WebSocket.
    h.sleep(PING_INTERVAL);
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    assert_eq!(h.ws_next(sid).as_deref(), Some("2"));
}

#[test]
fn upgrade_ignores_http_requests_with_same_sid_after_upgrade() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send(sid, "2probe");
    h.ws_send(sid, "5");
    assert_eq!(h.get_now(&q(sid)).0, 400);
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn upgrade_ignores_websocket_connection_with_same_sid_after_upgrade() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send(sid, "2probe");
    h.ws_send(sid, "5");
    assert_eq!(
        h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}")),
        Err(400)
    );
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn upgrade_probe_that_is_not_a_probe_closes_only_the_websocket() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send(sid, "4hello");
    assert!(h.wire(sid).ws_closed.is_some());
    // The session goes on polling.
    assert_eq!(h.post(&q(sid), b"4still"), (200, "ok".into()));
    assert_eq!(h.get_now(&q(sid)), (200, "4still".into()));
}

#[test]
fn payload_over_max_payload_is_413_and_closes() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    let body = vec![b'4'; 1_000_001];
    assert_eq!(h.post(&q(sid), &body).0, 413);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn server_close_on_polling_reaches_the_next_poll() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    h.sessions.send(sid, Data::Text("bye".into()));
    h.sessions.close(sid, h.now);
    h.pump();
    assert_eq!(h.get_now(&q(sid)), (200, "4bye\x1e1".into()));
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn an_abandoned_session_expires() {
    let mut h = Harness::new();
    h.init_long_polling_session();
    assert_eq!(h.sessions.len(), 1);
    h.sleep(PING_INTERVAL + PING_TIMEOUT);
    assert!(h.sessions.is_empty());
}

#[test]
fn a_poll_abandoned_mid_wait_closes_the_session() {
    let mut h = Harness::new();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    h.sessions.handle_poll_aborted(sid, h.now);
    h.pump();
    assert!(h.wire(sid).poll_responses.is_empty());
    assert_eq!(h.closed, vec![(sid, "transport error".to_string())]);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn the_handshake_answer_names_the_new_session() {
    let mut h = Harness::new();
    let HttpAnswer::Opened { sid, body } = h.get("EIO=4&transport=polling") else {
        panic!("a handshake opens a session");
    };
    let v = pushwire::client::json::parse(std::str::from_utf8(&body[1..]).unwrap()).unwrap();
    assert_eq!(v.get("sid").unwrap().as_str(), Some(sid.as_str()));
    assert!(h.sessions.get(sid).is_some());
}

//! Simulated time for an Engine.IO server, and the cases of the official
//! Engine.IO suite (`/work/shared/conformance/socketio/engine.io/test-suite.js`)
//! that hold for any server speaking Engine.IO v4: the bare echo server of
//! `tests/socketio_engineio.rs` and Socket.IO's `/socket.io/` of
//! `tests/socketio_protocol.rs` run the same case bodies, each against its
//! own server. No sockets, no sleeps: the harness moves a clock and fires
//! every deadline on the way.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pushwire::client::json::{self, Value};
use pushwire::proto::engineio::{EioEvent, HttpAnswer, SessionError, Sessions, Sid, Transmit};
use pushwire::proto::socketio::SioServer;

/// The suite's server settings (its README): both servers use them.
pub const PING_INTERVAL: u64 = 300;
pub const PING_TIMEOUT: u64 = 200;

/// The driving interface [`Sessions`] and [`SioServer`] share.
pub trait Engine {
    fn handle_http(&mut self, method: &str, query: &str, body: &[u8], now: Instant) -> HttpAnswer;
    fn handle_ws_request(&mut self, query: &str, now: Instant) -> Result<Sid, SessionError>;
    fn handle_ws_message(
        &mut self,
        sid: Sid,
        binary: bool,
        data: &[u8],
        now: Instant,
    ) -> Result<(), SessionError>;
    fn handle_timeout(&mut self, now: Instant);
    fn poll_timeout(&self) -> Option<Instant>;
    fn poll_transmit(&mut self) -> Option<(Sid, Transmit)>;
    /// Runs the application on what the server reported, noting each
    /// session that closed and why; whether it did anything. A
    /// [`SioServer`] runs its namespaces inside each call instead.
    fn run_app(&mut self, _closed: &mut Vec<(Sid, String)>) -> bool {
        false
    }
}

/// [`Engine`] for a server type whose inherent methods of the same names
/// it is, plus `extra` items (an application).
macro_rules! engine_for {
    ($server:ty, { $($extra:item)* }) => {
        impl Engine for $server {
            fn handle_http(
                &mut self,
                method: &str,
                query: &str,
                body: &[u8],
                now: Instant,
            ) -> HttpAnswer {
                <$server>::handle_http(self, method, query, body, now)
            }
            fn handle_ws_request(&mut self, query: &str, now: Instant) -> Result<Sid, SessionError> {
                <$server>::handle_ws_request(self, query, now)
            }
            fn handle_ws_message(
                &mut self,
                sid: Sid,
                binary: bool,
                data: &[u8],
                now: Instant,
            ) -> Result<(), SessionError> {
                <$server>::handle_ws_message(self, sid, binary, data, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$server>::handle_timeout(self, now)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$server>::poll_timeout(self)
            }
            fn poll_transmit(&mut self) -> Option<(Sid, Transmit)> {
                <$server>::poll_transmit(self)
            }
            $($extra)*
        }
    };
}

engine_for!(SioServer, {});

engine_for!(Sessions, {
    /// The Engine.IO suite's application: every message echoed back, text
    /// as text, binary as binary.
    fn run_app(&mut self, closed: &mut Vec<(Sid, String)>) -> bool {
        let mut progressed = false;
        while let Some((sid, event)) = self.poll_event() {
            progressed = true;
            match event {
                EioEvent::Message(data) => {
                    self.send(sid, data);
                }
                EioEvent::Closed(reason) => closed.push((sid, reason.as_str().into())),
                EioEvent::Upgraded | EioEvent::Opened => {}
            }
        }
        progressed
    }
});

/// What one client connection has received.
#[derive(Default, Debug)]
pub struct Wire {
    /// Bodies that answered parked GETs, in order.
    pub poll_responses: Vec<Vec<u8>>,
    /// WebSocket messages: (binary, data).
    pub ws: Vec<(bool, Vec<u8>)>,
    pub ws_closed: Option<u16>,
}

pub struct Harness<E> {
    pub engine: E,
    pub now: Instant,
    pub wires: HashMap<Sid, Wire>,
    /// Sessions the application saw close, with the reason.
    pub closed: Vec<(Sid, String)>,
}

impl<E: Engine> Harness<E> {
    pub fn new(engine: E) -> Harness<E> {
        Harness {
            engine,
            now: Instant::now(),
            wires: HashMap::new(),
            closed: Vec::new(),
        }
    }

    /// Runs the application and delivers what the server produced, until
    /// neither has anything left.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = self.engine.run_app(&mut self.closed);
            while let Some((sid, t)) = self.engine.poll_transmit() {
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
    pub fn sleep(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(t) = self.engine.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.engine.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    pub fn request(&mut self, method: &str, query: &str, body: &[u8]) -> HttpAnswer {
        let a = self.engine.handle_http(method, query, body, self.now);
        self.pump();
        a
    }

    pub fn get(&mut self, query: &str) -> HttpAnswer {
        self.request("GET", query, b"")
    }

    /// A request's (status, body); a parked GET is status 0.
    pub fn answer(&mut self, method: &str, query: &str, body: &[u8]) -> (u16, String) {
        match self.request(method, query, body) {
            HttpAnswer::Respond { status, body, .. } => (status, String::from_utf8(body).unwrap()),
            HttpAnswer::Opened { body, .. } => (200, String::from_utf8(body).unwrap()),
            HttpAnswer::Park(_) => (0, String::new()),
        }
    }

    /// A GET answered at once: (status, body).
    pub fn get_now(&mut self, query: &str) -> (u16, String) {
        let (status, body) = self.answer("GET", query, b"");
        assert_ne!(status, 0, "GET {query} parked");
        (status, body)
    }

    pub fn post(&mut self, query: &str, body: &[u8]) -> (u16, String) {
        let (status, body) = self.answer("POST", query, body);
        assert_ne!(status, 0, "a POST never parks");
        (status, body)
    }

    /// initLongPollingSession(): the handshake, returning the sid.
    pub fn init_long_polling_session(&mut self) -> Sid {
        let (status, body) = self.get_now("EIO=4&transport=polling");
        assert_eq!(status, 200);
        let v = json::parse(&body[1..]).unwrap();
        Sid::parse(v.get("sid").unwrap().as_str().unwrap()).unwrap()
    }

    pub fn ws_open(&mut self, query: &str) -> Result<Sid, u16> {
        let r = self.engine.handle_ws_request(query, self.now);
        self.pump();
        r.map_err(|e| e.status())
    }

    pub fn ws_send(&mut self, sid: Sid, text: &str) {
        let _ = self
            .engine
            .handle_ws_message(sid, false, text.as_bytes(), self.now);
        self.pump();
    }

    pub fn ws_send_binary(&mut self, sid: Sid, bytes: &[u8]) {
        let _ = self.engine.handle_ws_message(sid, true, bytes, self.now);
        self.pump();
    }

    pub fn wire(&mut self, sid: Sid) -> &mut Wire {
        self.wires.entry(sid).or_default()
    }

    /// waitFor(socket, "message"): the next WebSocket message not yet
    /// looked at, as text (a binary one as `<bytes:…>`).
    pub fn ws_next(&mut self, sid: Sid) -> Option<String> {
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

    pub fn ws_closed(&mut self, sid: Sid) -> bool {
        self.wire(sid).ws_closed.is_some()
    }
}

/// The polling query of session `sid`.
pub fn q(sid: Sid) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

fn keys(v: &Value) -> Vec<&str> {
    match v {
        Value::Object(m) => m.iter().map(|(k, _)| k.as_str()).collect(),
        _ => vec![],
    }
}

/// The handshake's JSON, members in the order the reference server sends.
fn check_open(body: &str, upgrades: &str) -> Value {
    let v = json::parse(body.strip_prefix('0').expect("an OPEN packet")).unwrap();
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
    assert!(v.get("sid").unwrap().as_str().is_some());
    assert_eq!(
        pushwire::wire::socketio::to_json(v.get("upgrades").unwrap()),
        upgrades
    );
    assert_eq!(
        v.get("pingInterval").unwrap().as_f64(),
        Some(PING_INTERVAL as f64)
    );
    assert_eq!(
        v.get("pingTimeout").unwrap().as_f64(),
        Some(PING_TIMEOUT as f64)
    );
    assert_eq!(v.get("maxPayload").unwrap().as_f64(), Some(1e6));
    v
}

// ---- handshake / HTTP long-polling -------------------------------------------

pub fn handshake_polling_successfully_opens_a_session<E: Engine>(h: &mut Harness<E>) {
    let (status, body) = h.get_now("EIO=4&transport=polling");
    assert_eq!(status, 200);
    check_open(&body, r#"["websocket"]"#);
}

pub fn handshake_polling_fails_with_an_invalid_eio_query_parameter<E: Engine>(h: &mut Harness<E>) {
    assert_eq!(h.get_now("transport=polling").0, 400);
    assert_eq!(h.get_now("EIO=abc&transport=polling").0, 400);
}

pub fn handshake_polling_fails_with_an_invalid_transport_query_parameter<E: Engine>(
    h: &mut Harness<E>,
) {
    assert_eq!(h.get_now("EIO=4").0, 400);
    assert_eq!(h.get_now("EIO=4&transport=abc").0, 400);
}

pub fn handshake_polling_fails_with_an_invalid_request_method<E: Engine>(h: &mut Harness<E>) {
    assert_eq!(h.post("EIO=4&transport=polling", b"").0, 400);
    assert_eq!(h.answer("PUT", "EIO=4&transport=polling", b"").0, 400);
}

// ---- handshake / WebSocket ---------------------------------------------------

pub fn handshake_websocket_successfully_opens_a_session<E: Engine>(h: &mut Harness<E>) {
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    let open = h.ws_next(sid).unwrap();
    let v = check_open(&open, "[]");
    assert_eq!(v.get("sid").unwrap().as_str(), Some(sid.as_str()));
}

pub fn handshake_websocket_fails_with_an_invalid_eio_query_parameter<E: Engine>(
    h: &mut Harness<E>,
) {
    assert_eq!(h.ws_open("transport=websocket"), Err(400));
    assert_eq!(h.ws_open("EIO=abc&transport=websocket"), Err(400));
}

pub fn handshake_websocket_fails_with_an_invalid_transport_query_parameter<E: Engine>(
    h: &mut Harness<E>,
) {
    assert_eq!(h.ws_open("EIO=4"), Err(400));
    assert_eq!(h.ws_open("EIO=4&transport=abc"), Err(400));
}

// ---- heartbeat -----------------------------------------------------------------

pub fn heartbeat_polling_sends_ping_pong_packets<E: Engine>(h: &mut Harness<E>) {
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

pub fn heartbeat_polling_closes_the_session_upon_ping_timeout<E: Engine>(h: &mut Harness<E>) {
    let sid = h.init_long_polling_session();
    // The suite sleeps exactly pingInterval + pingTimeout, then polls:
    // the request must find the session closed even before any timer ran.
    h.now += Duration::from_millis(PING_INTERVAL + PING_TIMEOUT);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

/// Three pings, three pongs (within Socket.IO's connect timeout).
pub fn heartbeat_websocket_sends_ping_pong_packets<E: Engine>(h: &mut Harness<E>) {
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    for _ in 0..3 {
        h.sleep(PING_INTERVAL);
        assert_eq!(h.ws_next(sid).as_deref(), Some("2"));
        h.ws_send(sid, "3");
    }
    assert!(!h.ws_closed(sid));
}

pub fn heartbeat_websocket_closes_the_session_upon_ping_timeout<E: Engine>(
    h: &mut Harness<E>,
) -> Sid {
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.sleep(PING_INTERVAL + PING_TIMEOUT - 1);
    assert!(!h.ws_closed(sid));
    h.sleep(1);
    assert!(h.ws_closed(sid));
    sid
}

// ---- close ---------------------------------------------------------------------

pub fn close_polling_forcefully_closes_the_session<E: Engine>(h: &mut Harness<E>) {
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    assert_eq!(h.post(&q(sid), b"1").0, 200);
    assert_eq!(h.wire(sid).poll_responses, vec![b"6".to_vec()]);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

pub fn close_websocket_forcefully_closes_the_session<E: Engine>(h: &mut Harness<E>) -> Sid {
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "1");
    assert!(h.ws_closed(sid));
    sid
}

// ---- upgrade -------------------------------------------------------------------

/// A polling session upgraded to WebSocket (`2probe`, `3probe`, `5`);
/// whatever answers the upgrade's probe has been read.
pub fn upgrade_successfully_upgrades_from_http_long_polling_to_websocket<E: Engine>(
    h: &mut Harness<E>,
) -> Sid {
    let sid = h.init_long_polling_session();
    let ws = h
        .ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    assert_eq!(ws, sid);
    h.ws_send(sid, "2probe");
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    h.ws_send(sid, "5");
    sid
}

/// After the upgrade a polling GET of the session is refused.
pub fn upgrade_ignores_http_requests_with_same_sid_after_upgrade<E: Engine>(
    h: &mut Harness<E>,
) -> Sid {
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send(sid, "2probe");
    h.ws_send(sid, "5");
    assert_eq!(h.get_now(&q(sid)).0, 400);
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    sid
}

/// After the upgrade a second WebSocket for the session is refused.
pub fn upgrade_ignores_websocket_connection_with_same_sid_after_upgrade<E: Engine>(
    h: &mut Harness<E>,
) -> Sid {
    let sid = h.init_long_polling_session();
    h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"))
        .unwrap();
    h.ws_send(sid, "2probe");
    h.ws_send(sid, "5");
    assert_eq!(
        h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}")),
        Err(400)
    );
    assert_eq!(h.ws_next(sid).as_deref(), Some("3probe"));
    sid
}

//! The official Engine.IO protocol suite
//! (`/work/shared/conformance/socketio/engine.io/test-suite.js`), case by
//! case, against `proto::engineio::Sessions` in simulated time: no
//! sockets, no sleeps. The application is the suite's: it echoes every
//! message (text as text, binary as binary). Each test is named after its
//! suite case.

mod eio_harness;

use std::time::Duration;

use eio_harness::{q, Harness, PING_INTERVAL, PING_TIMEOUT};
use pushwire::proto::engineio::{EioConfig, HttpAnswer, Sessions, Sid};
use pushwire::wire::engineio::Data;

fn harness() -> Harness<Sessions> {
    let mut n = 0u8;
    let config = EioConfig {
        ping_interval: Duration::from_millis(PING_INTERVAL),
        ping_timeout: Duration::from_millis(PING_TIMEOUT),
        max_payload: 1_000_000,
        ..EioConfig::default()
    };
    Harness::new(Sessions::with_sid_source(
        config,
        Box::new(move || {
            n = n.wrapping_add(1);
            Ok(Sid::from_bytes([n; 20]))
        }),
    ))
}

fn status(a: &HttpAnswer) -> u16 {
    match a {
        HttpAnswer::Respond { status, .. } => *status,
        HttpAnswer::Opened { .. } => 200,
        HttpAnswer::Park(_) => 0,
    }
}

// handshake

#[test]
fn handshake_polling_successfully_opens_a_session() {
    eio_harness::handshake_polling_successfully_opens_a_session(&mut harness());
}

#[test]
fn handshake_polling_fails_with_an_invalid_eio_query_parameter() {
    eio_harness::handshake_polling_fails_with_an_invalid_eio_query_parameter(&mut harness());
}

#[test]
fn handshake_polling_fails_with_an_invalid_transport_query_parameter() {
    eio_harness::handshake_polling_fails_with_an_invalid_transport_query_parameter(&mut harness());
}

#[test]
fn handshake_polling_fails_with_an_invalid_request_method() {
    eio_harness::handshake_polling_fails_with_an_invalid_request_method(&mut harness());
}

#[test]
fn handshake_websocket_successfully_opens_a_session() {
    eio_harness::handshake_websocket_successfully_opens_a_session(&mut harness());
}

#[test]
fn handshake_websocket_fails_with_an_invalid_eio_query_parameter() {
    eio_harness::handshake_websocket_fails_with_an_invalid_eio_query_parameter(&mut harness());
}

#[test]
fn handshake_websocket_fails_with_an_invalid_transport_query_parameter() {
    eio_harness::handshake_websocket_fails_with_an_invalid_transport_query_parameter(&mut harness());
}

// message / HTTP long-polling

fn push_then_poll(body: &str) {
    let mut h = harness();
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
    let mut h = harness();
    let sid = h.init_long_polling_session();
    assert_eq!(h.post(&q(sid), b"abc").0, 400);
    assert_eq!(h.get_now(&q(sid)).0, 400);
    assert_eq!(h.closed, vec![(sid, "parse error".to_string())]);
}

#[test]
fn message_polling_closes_the_session_upon_duplicate_poll_requests() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    h.sleep(5);
    let second = h.get(&format!("{}&t=burst", q(sid)));
    assert!([400, 500].contains(&status(&second)));
    assert_eq!(h.wire(sid).poll_responses, vec![b"1".to_vec()]);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

/// polling.ts `onDataRequest`: a POST is taken when its head comes, so
/// one that arrives while another's body is still on its way overlaps it.
#[test]
fn message_polling_closes_the_session_upon_overlapping_post_requests() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    // The first POST's head; its body is still coming.
    h.engine.handle_post_head(&q(sid), h.now).unwrap();
    // A second, whole, meanwhile.
    let second = h.engine.handle_post_head(&q(sid), h.now).unwrap_err();
    assert_eq!(second.status(), 400);
    assert_eq!(second.to_string(), "Bad request");
    h.pump();
    // The parked GET is ended with a close packet; the first POST's body
    // then finds no session.
    assert_eq!(h.wire(sid).poll_responses, vec![b"1".to_vec()]);
    assert_eq!(h.closed, vec![(sid, "transport error".to_string())]);
    assert_eq!(h.post(&q(sid), b"4hello").0, 400);
}

#[test]
fn posts_one_after_another_and_one_abandoned_mid_body_never_overlap() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    for n in 0..3 {
        h.engine.handle_post_head(&q(sid), h.now).unwrap();
        assert_eq!(
            h.post(&q(sid), format!("4m{n}").as_bytes()),
            (200, "ok".into())
        );
    }
    // A POST whose connection ends before its body does.
    h.engine.handle_post_head(&q(sid), h.now).unwrap();
    h.engine.handle_post_aborted(&q(sid));
    h.engine.handle_post_head(&q(sid), h.now).unwrap();
    assert_eq!(h.post(&q(sid), b"4m3"), (200, "ok".into()));
    // A driver that never announces heads sees whole POSTs only.
    assert_eq!(h.post(&q(sid), b"4m4"), (200, "ok".into()));
    assert!(h.closed.is_empty());
    assert_eq!(
        h.get_now(&q(sid)),
        (200, "4m0\x1e4m1\x1e4m2\x1e4m3\x1e4m4".into())
    );
}

// message / WebSocket

#[test]
fn message_websocket_sends_and_receives_a_plain_text_packet() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    assert!(h.ws_next(sid).unwrap().starts_with('0'));
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn message_websocket_sends_and_receives_a_binary_packet() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.engine
        .handle_ws_message(sid, true, &[1, 2, 3, 4], h.now)
        .unwrap();
    h.pump();
    assert_eq!(h.wire(sid).ws, vec![(true, vec![1, 2, 3, 4])]);
}

#[test]
fn message_websocket_closes_the_session_upon_invalid_packet_format() {
    let mut h = harness();
    let sid = h.ws_open("EIO=4&transport=websocket").unwrap();
    h.ws_next(sid).unwrap();
    h.ws_send(sid, "abc");
    assert!(h.wire(sid).ws_closed.is_some());
    assert!(h.engine.is_empty());
}

// heartbeat

#[test]
fn heartbeat_polling_sends_ping_pong_packets() {
    eio_harness::heartbeat_polling_sends_ping_pong_packets(&mut harness());
}

#[test]
fn heartbeat_polling_closes_the_session_upon_ping_timeout() {
    eio_harness::heartbeat_polling_closes_the_session_upon_ping_timeout(&mut harness());
}

#[test]
fn heartbeat_websocket_sends_ping_pong_packets() {
    eio_harness::heartbeat_websocket_sends_ping_pong_packets(&mut harness());
}

#[test]
fn heartbeat_websocket_closes_the_session_upon_ping_timeout() {
    let mut h = harness();
    let sid = eio_harness::heartbeat_websocket_closes_the_session_upon_ping_timeout(&mut h);
    assert_eq!(h.closed, vec![(sid, "ping timeout".to_string())]);
}

// close

#[test]
fn close_polling_forcefully_closes_the_session() {
    eio_harness::close_polling_forcefully_closes_the_session(&mut harness());
}

#[test]
fn close_websocket_forcefully_closes_the_session() {
    let mut h = harness();
    let sid = eio_harness::close_websocket_forcefully_closes_the_session(&mut h);
    assert_eq!(h.closed, vec![(sid, "transport close".to_string())]);
}

// upgrade

#[test]
fn upgrade_successfully_upgrades_from_http_long_polling_to_websocket() {
    let mut h = harness();
    let sid =
        eio_harness::upgrade_successfully_upgrades_from_http_long_polling_to_websocket(&mut h);
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn upgrade_with_a_waiting_poll_ends_it_with_a_noop() {
    let mut h = harness();
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
    let mut h = harness();
    let sid = eio_harness::upgrade_ignores_http_requests_with_same_sid_after_upgrade(&mut h);
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn upgrade_ignores_websocket_connection_with_same_sid_after_upgrade() {
    let mut h = harness();
    let sid = eio_harness::upgrade_ignores_websocket_connection_with_same_sid_after_upgrade(&mut h);
    h.ws_send(sid, "4hello");
    assert_eq!(h.ws_next(sid).as_deref(), Some("4hello"));
}

#[test]
fn upgrade_probe_that_is_not_a_probe_closes_only_the_websocket() {
    let mut h = harness();
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
    let mut h = harness();
    let sid = h.init_long_polling_session();
    let body = vec![b'4'; 1_000_001];
    assert_eq!(h.post(&q(sid), &body).0, 413);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn server_close_on_polling_reaches_the_next_poll() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    h.engine.send(sid, Data::Text("bye".into()));
    h.engine.close(sid, h.now);
    h.pump();
    assert_eq!(h.get_now(&q(sid)), (200, "4bye\x1e1".into()));
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn an_abandoned_session_expires() {
    let mut h = harness();
    h.init_long_polling_session();
    assert_eq!(h.engine.len(), 1);
    h.sleep(PING_INTERVAL + PING_TIMEOUT);
    assert!(h.engine.is_empty());
}

#[test]
fn a_poll_abandoned_mid_wait_closes_the_session() {
    let mut h = harness();
    let sid = h.init_long_polling_session();
    assert_eq!(h.get(&q(sid)), HttpAnswer::Park(sid));
    h.engine.handle_poll_aborted(sid, h.now);
    h.pump();
    assert!(h.wire(sid).poll_responses.is_empty());
    assert_eq!(h.closed, vec![(sid, "transport error".to_string())]);
    assert_eq!(h.get_now(&q(sid)).0, 400);
}

#[test]
fn the_handshake_answer_names_the_new_session() {
    let mut h = harness();
    let HttpAnswer::Opened { sid, body } = h.get("EIO=4&transport=polling") else {
        panic!("a handshake opens a session");
    };
    let v = pushwire::client::json::parse(std::str::from_utf8(&body[1..]).unwrap()).unwrap();
    assert_eq!(v.get("sid").unwrap().as_str(), Some(sid.as_str()));
    assert!(h.engine.get(sid).is_some());
}

//! Scenario tests: fake clients against the core, in simulated time.
//!
//! The [`Harness`] holds the core, N fake clients (byte queues) and one
//! `now`. Each [`Harness::settle`] delivers everything the core has queued
//! to the clients that read; [`Harness::advance`] jumps `now` from
//! deadline to deadline (each one the core's own `poll_timeout`), so a
//! keep-alive timeout of a minute runs in microseconds, deterministically,
//! with no socket and no sleep.

use std::io::IoSlice;
use std::time::Duration;

use super::outq::MAX_IOVECS;
use super::sim::Harness;
use crate::Config;

fn cfg() -> Config {
    Config::default()
}

const GET_HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn keep_alive_closes_an_idle_connection_exactly_at_its_timeout() {
    let mut h = Harness::new(Config {
        keep_alive_timeout: Duration::from_secs(60),
        ..cfg()
    });
    let c = h.connect();
    h.send(c, GET_HEALTH);
    assert!(h.take_text(c).starts_with("HTTP/1.1 200 OK\r\n"));
    h.advance(Duration::from_millis(59_999));
    assert!(!h.closed(c));
    // A request restarts the idle clock.
    h.send(c, GET_HEALTH);
    h.advance(Duration::from_secs(59));
    assert!(!h.closed(c));
    h.advance(Duration::from_secs(1));
    assert!(h.closed(c), "closed at exactly 60 s idle");
}

#[test]
fn a_slow_head_gets_408_at_the_header_deadline_while_others_are_served() {
    let mut h = Harness::new(Config {
        header_read_timeout: Duration::from_secs(10),
        ..cfg()
    });
    let slow = h.connect();
    let fast = h.connect();
    h.send(slow, b"GET /healthz HTTP/1.1\r\nHo");
    for _ in 0..9 {
        h.advance(Duration::from_secs(1));
        h.send(slow, b"s"); // a byte a second: slowloris
        h.send(fast, GET_HEALTH);
    }
    assert!(!h.closed(slow));
    assert_eq!(h.text(fast).matches("200 OK").count(), 9);
    h.advance(Duration::from_secs(1));
    let t = h.text(slow);
    assert!(t.starts_with("HTTP/1.1 408 "), "{t}");
    assert!(t.contains("Connection: close"));
    assert!(h.closed(slow));
    assert!(!h.closed(fast));
}

#[test]
fn sse_heartbeats_come_at_their_interval_and_a_message_postpones_them() {
    let mut h = Harness::new(Config {
        heartbeat_interval: Duration::from_secs(15),
        ..cfg()
    });
    let c = h.connect();
    h.send(c, b"GET /topics/t/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = h.take_text(c);
    assert!(head.contains("text/event-stream") && head.contains("retry: 3000"));
    h.advance(Duration::from_millis(14_999));
    assert_eq!(h.take_text(c), "");
    h.advance(Duration::from_millis(1));
    assert!(h.take_text(c).contains(": heartbeat"));
    h.advance(Duration::from_secs(10));
    h.publish("t", "hello");
    assert!(h.take_text(c).contains("data: hello"));
    // 15 s after the message, not after the last heartbeat.
    h.advance(Duration::from_secs(14));
    assert_eq!(h.take_text(c), "");
    h.advance(Duration::from_secs(1));
    assert!(h.take_text(c).contains(": heartbeat"));
}

#[test]
fn a_long_poll_expires_at_its_timeout_and_a_publish_wakes_it_before() {
    let mut h = Harness::new(cfg());
    let c = h.connect();
    h.send(
        c,
        b"GET /topics/t/poll?timeout=5 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    h.advance(Duration::from_millis(4_999));
    assert_eq!(h.text(c), "");
    h.advance(Duration::from_millis(1));
    let t = h.take_text(c);
    assert!(t.contains("\"timeout\":true"), "{t}");

    h.send(
        c,
        b"GET /topics/t/poll?timeout=5 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    h.advance(Duration::from_secs(2));
    let id = h.publish("t", "wake");
    let t = h.take_text(c);
    assert!(t.contains("\"data\":\"wake\"") && t.contains(&id), "{t}");
    assert!(t.contains("\"timeout\":false"));
    assert_eq!(h.node.stats().polls_woken, 1);
    assert_eq!(h.node.stats().polls_expired, 1);
}

#[test]
fn requests_pipelined_behind_a_parked_poll_are_answered_after_it_in_order() {
    let mut h = Harness::new(cfg());
    let c = h.connect();
    let mut two = b"GET /topics/t/poll?timeout=30 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    two.extend_from_slice(GET_HEALTH);
    h.send(c, &two);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.text(c), "", "nothing answered while the poll is parked");
    h.publish("t", "m");
    let t = h.take_text(c);
    let poll_at = t.find("\"data\":\"m\"").expect("poll answered");
    let health_at = t.rfind("\r\n\r\nok").expect("healthz answered");
    assert!(poll_at < health_at, "in order: {t}");
}

#[test]
fn a_client_that_never_reads_its_last_response_is_dropped_after_the_linger() {
    let mut h = Harness::new(cfg());
    let c = h.connect();
    h.clients.get_mut(&c).unwrap().window = 10;
    h.send(
        c,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(!h.closed(c));
    h.advance(super::LINGER - Duration::from_millis(1));
    assert!(!h.closed(c));
    h.advance(Duration::from_millis(1));
    assert!(h.closed(c));
}

#[test]
fn shutdown_says_goodbye_on_every_transport_and_finishes() {
    let mut h = Harness::new(cfg());
    let sse = h.connect();
    h.send(sse, b"GET /topics/t/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    let poll = h.connect();
    h.send(poll, b"GET /topics/t/poll HTTP/1.1\r\nHost: x\r\n\r\n");
    let ws = h.connect();
    h.send(
        ws,
        b"GET /topics/t/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let idle = h.connect();
    assert!(h.take_text(ws).starts_with("HTTP/1.1 101 "));
    h.node.handle_shutdown(h.now);
    h.settle();
    // The stream's last chunk, the poll's answer with Connection: close,
    // a close frame with 1001 (0x03e9), and the idle connection closed.
    assert!(h.text(sse).ends_with("0\r\n\r\n"));
    assert!(h.closed(sse));
    let p = h.text(poll);
    assert!(p.contains("Connection: close") && p.contains("\"timeout\":true"));
    assert!(h.closed(poll));
    assert_eq!(&h.clients[&ws].received[..4], &[0x88, 0x16, 0x03, 0xe9]);
    assert!(h.closed(idle));
    assert!(h.node.handle_accept(h.now).is_err(), "no more connections");
    // The WebSocket waits for the peer's close frame, at most the grace.
    assert!(!h.node.is_finished(h.now));
    h.advance(super::SHUTDOWN_GRACE);
    assert!(h.node.is_finished(h.now));
}

/// A subscriber whose queue already holds more than the cap is cut off;
/// a single message larger than the cap on an empty queue is not (one
/// big publish must not churn a whole topic).
#[test]
fn only_a_queue_already_over_its_cap_is_a_slow_reader() {
    let mut h = Harness::new(Config {
        subscriber_queue_bytes: 64 * 1024,
        ..cfg()
    });
    let c = h.connect();
    h.send(c, b"GET /topics/t/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    h.take_text(c);
    // 200,000 newlines: a 1.2 MB SSE event, far over the cap.
    let big = "\n".repeat(200_000);
    h.node.handle_publish("t", None, &big, h.now).unwrap();
    h.settle();
    assert!(!h.closed(c));
    assert_eq!(h.node.stats().slow_disconnects, 0);
    let t = h.take_text(c);
    assert_eq!(t.matches("data:").count(), 200_001);

    // Now the client stops reading: one more message fits, the next one
    // finds the queue over the cap and cuts it off.
    h.clients.get_mut(&c).unwrap().window = 0;
    let chunk = "x".repeat(40 * 1024);
    h.publish("t", &chunk);
    h.publish("t", &chunk);
    assert_eq!(h.node.stats().slow_disconnects, 0);
    h.publish("t", &chunk);
    assert_eq!(h.node.stats().slow_disconnects, 1);
    // Its stream ends on a chunk boundary with the last chunk once it
    // reads again.
    h.open_window(c, usize::MAX);
    assert!(h.text(c).ends_with("0\r\n\r\n"));
    assert!(h.closed(c));
}

/// A replay of a long history is queued as the subscriber reads, never
/// all at once: memory per connection is bounded by the queue cap.
#[test]
fn a_replay_is_queued_as_the_reader_takes_it() {
    let cap = 256 * 1024;
    let mut h = Harness::new(Config {
        subscriber_queue_bytes: cap,
        ..cfg()
    });
    let payload = "p".repeat(100_000);
    for _ in 0..100 {
        h.node.handle_publish("big", None, &payload, h.now).unwrap();
    }
    let c = h.connect();
    h.clients.get_mut(&c).unwrap().window = 0;
    h.send(
        c,
        b"GET /topics/big/sse?last_event_id=earliest HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let queued = |h: &Harness| {
        let mut s = [IoSlice::new(&[]); MAX_IOVECS];
        let n = h.node.poll_transmit(c, &mut s);
        s[..n].iter().map(|x| x.len()).sum::<usize>()
    };
    assert!(queued(&h) <= cap + 200_000, "queued {}", queued(&h));
    // Meanwhile live messages arrive: they come after the replay, once.
    h.publish("big", "live-1");
    let mut got = 0;
    let tail_has = |h: &Harness, what: &str| {
        let r = &h.clients[&c].received;
        let from = r.len().saturating_sub(200_000);
        String::from_utf8_lossy(&r[from..]).contains(what)
    };
    while !tail_has(&h, "live-1") {
        h.open_window(c, 64 * 1024);
        assert!(queued(&h) <= cap + 200_000);
        got += 1;
        assert!(got < 1000, "the replay never finished");
    }
    let t = h.text(c);
    assert_eq!(t.matches("data: ppp").count(), 100);
    assert_eq!(t.matches("live-1").count(), 1);
    assert!(!h.closed(c));
    assert_eq!(h.node.stats().slow_disconnects, 0);
}

#[test]
fn a_poll_answer_carries_at_most_max_batch_bytes() {
    let mut h = Harness::new(Config {
        max_batch_bytes: 250_000,
        ..cfg()
    });
    let payload = "q".repeat(100_000);
    for _ in 0..10 {
        h.node.handle_publish("t", None, &payload, h.now).unwrap();
    }
    let c = h.connect();
    h.send(
        c,
        b"GET /topics/t/messages?after=earliest HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let t = h.take_text(c);
    assert_eq!(t.matches("qqqq\"}").count(), 2, "two messages fit");
    // One message larger than the bound still goes out alone.
    let mut h = Harness::new(Config {
        max_batch_bytes: 10,
        ..cfg()
    });
    h.node.handle_publish("t", None, &payload, h.now).unwrap();
    let c = h.connect();
    h.send(c, b"GET /topics/t/messages HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.take_text(c).matches("qqqq\"}").count(), 1);
}

#[test]
fn a_peer_that_hangs_up_a_parked_poll_is_forgotten_at_once() {
    let mut h = Harness::new(cfg());
    let c = h.connect();
    h.send(c, b"GET /topics/t/poll HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.node.live(), 1);
    h.eof(c);
    assert!(h.closed(c));
    assert_eq!(h.node.live(), 0);
    h.publish("t", "nobody");
    assert_eq!(h.node.stats().polls_woken, 0);
}

#[test]
fn ndjson_stream_replays_then_lives_with_empty_line_heartbeats() {
    let mut h = Harness::new(Config {
        heartbeat_interval: Duration::from_secs(15),
        ..cfg()
    });
    h.publish("t", "one");
    let c = h.connect();
    h.send(
        c,
        b"GET /topics/t/stream?after=earliest HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let t = h.take_text(c);
    assert!(t.contains("Content-Type: application/x-ndjson"), "{t}");
    assert!(t.contains("\"data\":\"one\"}\n"));
    h.publish("t", "two");
    assert!(h.take_text(c).contains("\"data\":\"two\"}\n"));
    h.advance(Duration::from_secs(15));
    // An empty line in a chunk of its own: "1\r\n\n\r\n".
    assert_eq!(h.take_text(c), "1\r\n\n\r\n");
}

#[test]
fn neither_the_access_log_nor_the_trace_shows_a_token() {
    let mut h = Harness::new(Config {
        access_log: true,
        trace: true,
        ..cfg()
    });
    let c = h.connect();
    h.send(
        c,
        b"GET /topics/t/messages?after=earliest&token=eyJ.secret.sig&x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer eyJ.other.sig\r\n\r\n",
    );
    let lines: Vec<String> = h.node.poll_log().collect();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("secret") && !l.contains("other")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET /topics/t/messages?after=earliest&token=<redacted>&x=1 200")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("Authorization: <redacted>")),
        "{lines:?}"
    );
}

#[test]
fn the_access_log_has_a_line_per_request_and_per_stream_end() {
    let mut h = Harness::new(Config {
        access_log: true,
        trust_proxy: true,
        ..cfg()
    });
    let c = h.connect();
    h.node.set_peer(c, "127.0.0.1:4000".parse().unwrap());
    h.send(c, GET_HEALTH);
    h.send(c, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    h.send(
        c,
        b"GET /topics/t/poll?timeout=2 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    h.advance(Duration::from_secs(2));
    let s = h.connect();
    h.send(s, b"GET /topics/t/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    h.advance(Duration::from_secs(3));
    h.eof(s);
    let lines: Vec<String> = h.node.poll_log().collect();
    let has = |want: &str| lines.iter().any(|l| l.contains(want));
    assert!(
        has("127.0.0.1:4000 GET /healthz 200 2 0.000s http"),
        "{lines:?}"
    );
    assert!(has("127.0.0.1:4000 GET /nope 404"), "{lines:?}");
    h.send(
        c,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7, 10.0.0.1\r\n\r\n",
    );
    let forwarded: Vec<String> = h.node.poll_log().collect();
    assert!(
        forwarded[0].contains(" 192.0.2.7 GET /healthz 200"),
        "{forwarded:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET /topics/t/poll?timeout=2 200") && l.ends_with("2.000s poll")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("- GET /topics/t/sse 200") && l.ends_with("3.000s sse")),
        "{lines:?}"
    );
}

#[test]
fn an_echo_written_from_the_read_buffer_survives_a_short_write_and_the_buffer_reuse() {
    let mut h = Harness::new(cfg());
    let c = h.connect();
    h.send(
        c,
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(h.take_text(c).starts_with("HTTP/1.1 101 "));
    // Two masked text frames in one read (RFC 6455 §5.7: "Hello").
    let frame = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut input = [frame, frame].concat();
    // The socket takes 4 bytes, then is full.
    let mut sock = super::outq::FakeSocket {
        got: Vec::new(),
        per_call: 4,
        room: 4,
    };
    h.node.handle_read_direct(c, &mut input, &mut sock, h.now);
    assert_eq!(sock.got, b"\x81\x05He");
    // The driver reads into the same buffer again: the queue kept a copy.
    input.fill(0);
    h.settle();
    let rest = h.clients[&c].received.clone();
    assert_eq!(rest, b"llo\x81\x05Hello");
}

/// The `id:` of each event a multi-topic SSE client has received.
fn sse_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn subscribers_at_equal_and_at_different_cursors_each_get_their_own_combined_id() {
    let mut h = Harness::new(cfg());
    let a1 = h.publish("a", "a1");
    let b1 = h.publish("b", "b1");
    let c1 = h.publish("c", "c1");
    let open = |h: &mut Harness, path: &str| {
        let id = h.connect();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        h.send(id, req.as_bytes());
        h.take_text(id);
        id
    };
    // Two live, one resumed at the cursor the live ones stand at (equal
    // bytes, written apart), one resumed before b's message (replayed:
    // its own cursor until it is caught up), one with the topics the
    // other way round, one with another set.
    let live1 = open(&mut h, "/sse?topic=a&topic=b");
    let live2 = open(&mut h, "/sse?topic=a&topic=b");
    let at = format!("/sse?topic=a&topic=b&last_event_id=a={a1},b={b1}");
    let resumed = open(&mut h, &at);
    let b0 = b1.replace("-1", "-0");
    let before = format!("/sse?topic=a&topic=b&last_event_id=a={a1},b={b0}");
    let behind = h.connect();
    h.send(
        behind,
        format!("GET {before} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    assert_eq!(sse_ids(&h.take_text(behind)), [format!("a={a1},b={b1}")]);
    let reversed = open(&mut h, "/sse?topic=b&topic=a");
    let other = open(&mut h, "/sse?topic=a&topic=c");
    let all = [live1, live2, resumed, behind, reversed, other];

    // Nobody reads: what each queue holds is the message's event for it.
    for &c in &all {
        h.clients.get_mut(&c).unwrap().window = 0;
    }
    let a2 = h
        .node
        .handle_publish("a", Some("price"), "a2", h.now)
        .unwrap();
    h.settle();
    let first = |h: &Harness, c| {
        let mut s = [IoSlice::new(&[]); MAX_IOVECS];
        let n = h.node.poll_transmit(c, &mut s);
        (n, s[0].as_ptr() as usize)
    };
    let (n, shared) = first(&h, live1);
    assert_eq!(n, 1, "one segment: the whole event, shared");
    for c in [live2, resumed, behind] {
        assert_eq!(first(&h, c), (1, shared), "the same bytes");
    }
    assert_ne!(first(&h, reversed).1, shared);
    assert_ne!(first(&h, other).1, shared);
    for &c in &all {
        h.open_window(c, usize::MAX);
    }
    let b2 = h.publish("b", "b2");
    let want = |c| match c {
        c if c == reversed => vec![format!("b={b1},a={a2}"), format!("b={b2},a={a2}")],
        c if c == other => vec![format!("a={a2},c={c1}")],
        _ => vec![format!("a={a2},b={b1}"), format!("a={a2},b={b2}")],
    };
    for &c in &all {
        let t = h.take_text(c);
        assert_eq!(sse_ids(&t), want(c), "{t}");
        assert!(t.contains("event: price\n"));
        assert!(t.contains(&format!(
            "data: {{\"topic\":\"a\",\"id\":\"{a2}\",\"event\":\"price\",\"data\":\"a2\"}}\n\n"
        )));
    }
    // A cursor shared with others moves alone: `live1` reconnects where
    // it stands and gets the next message with its own id, while the
    // others go on.
    h.eof(live1);
    let again = open(
        &mut h,
        &format!("/sse?topic=a&topic=b&last_event_id=a={a2},b={b2}"),
    );
    h.eof(live2);
    let a3 = h.publish("a", "a3");
    assert_eq!(sse_ids(&h.take_text(again)), [format!("a={a3},b={b2}")]);
    assert_eq!(sse_ids(&h.take_text(resumed)), [format!("a={a3},b={b2}")]);
    assert_eq!(sse_ids(&h.take_text(reversed)), [format!("b={b2},a={a3}")]);
    assert_eq!(sse_ids(&h.take_text(other)), [format!("a={a3},c={c1}")]);
}

#[test]
fn the_test_drop_ends_each_subscribed_connection_once_and_counts_what_it_ends() {
    let mut h = Harness::new(Config {
        debug_endpoints: true,
        ..cfg()
    });
    let one = h.connect();
    h.send(one, b"GET /topics/t/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    // One connection subscribed twice over (a multi-topic stream of t).
    let multi = h.connect();
    h.send(
        multi,
        b"GET /sse?topic=t&topic=u HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    h.take_text(one);
    h.take_text(multi);
    let c = h.connect();
    h.send(
        c,
        b"POST /debug/drop?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(h.take_text(c).ends_with("{\"dropped\":2}"));
    assert!(h.clients[&one].closed && h.clients[&multi].closed);
}

/// A masked client frame of `payload` (under 126 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

#[test]
fn what_a_websocket_gets_does_not_depend_on_how_its_frames_were_split() {
    // A publish, a ping, a publish, a ping: the sender's own copies and
    // the pongs come in the same order whether the four frames came in
    // one read or one byte at a time (each message is acted on and fanned
    // out before the next frame is read).
    let run = |path: &str, msg: &[u8], split: bool| {
        let mut h = Harness::new(Config {
            ws_deflate: false,
            ..cfg()
        });
        let c = h.connect();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        h.send(c, head.as_bytes());
        let mut input = Vec::new();
        for ping in [b"p", b"q"] {
            input.extend(client_frame(0x1, msg));
            input.extend(client_frame(0x9, ping));
        }
        if split {
            for b in &input {
                h.send(c, std::slice::from_ref(b));
            }
        } else {
            h.send(c, &input);
        }
        std::mem::take(&mut h.clients.get_mut(&c).unwrap().received)
    };
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let publish = br#"{"type":"publish","topic":"t","data":"y","ref":1}"#;
    // On a topic socket the sender's own copy, on /ws the ack, comes
    // before the first pong.
    for (path, msg, answer) in [
        ("/topics/t/ws", &b"m"[..], &b"\"data\":\"m\""[..]),
        ("/ws", &publish[..], &b"\"type\":\"ack\""[..]),
    ] {
        let whole = run(path, msg, false);
        assert_eq!(whole, run(path, msg, true), "{path}");
        let copy = find(&whole, answer)
            .unwrap_or_else(|| panic!("{path}: {}", String::from_utf8_lossy(&whole)));
        let pong = find(&whole, &[0x8a, 1, b'p']).unwrap();
        assert!(copy < pong, "{path}: {}", String::from_utf8_lossy(&whole));
    }
}

//! The push hub over real sockets: publishing, Server-Sent Events, long
//! and short polling — ids, cursors, resume, gaps, fan-out to many
//! clients, and a stalled reader cut off without hurting the others.
//! (WebSocket topics are in `ws_topics.rs`.)

mod clients;
mod support;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use clients::*;
use pushwire::Config;
use support::*;

/// Each test's limits start from the documented defaults.
fn config() -> Config {
    Config::default()
}

/// What a browser sees of a text: every CRLF and CR turned into LF.
fn normalize_line_endings(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn seqs(msgs: &[ClientMessage]) -> Vec<u64> {
    msgs.iter().map(|m| split_id(&m.id).1).collect()
}

// ---- publish ---------------------------------------------------------------------

#[test]
fn publish_answers_ids_counting_from_one() {
    let server = TestServer::start(config());
    let r = post(&server, "/topics/p", "first");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let id1 = parse_json(&r.text()).str_field("id").to_string();
    assert_eq!(r.text(), format!("{{\"id\":\"{id1}\"}}"));
    let (epoch, seq) = split_id(&id1);
    assert_eq!(seq, 1);
    let id2 = publish(&server, "p", None, "second");
    assert_eq!(split_id(&id2), (epoch, 2));
    // Another topic counts on its own.
    assert_eq!(split_id(&publish(&server, "q", None, "x")).1, 1);
    // The longest names are accepted, and an empty message is a message.
    let topic = "t".repeat(128);
    let event = "e".repeat(64);
    assert_eq!(split_id(&publish(&server, &topic, Some(&event), "")).1, 1);
    assert_eq!(
        split_id(&publish(&server, "a.b_c:d-E9", Some("x.y_z:w-1"), "ok")).1,
        1
    );
}

#[test]
fn publish_refuses_bad_topics_events_and_bodies() {
    let mut cfg = config();
    cfg.max_message_bytes = 1024;
    let server = TestServer::start(cfg);
    let long_topic = format!("/topics/{}", "t".repeat(129));
    let long_event = format!("/topics/ok?event={}", "e".repeat(65));
    for path in [
        "/topics/a%20b",
        long_topic.as_str(),
        "/topics/a$b",
        "/topics/ok?event=",
        long_event.as_str(),
        "/topics/ok?event=a%0Db",
        "/topics/ok?event=a%0Ab",
        "/topics/ok?event=a b",
    ] {
        let mut s = server.connect();
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
                .as_bytes(),
        )
        .unwrap();
        let r = read_response(&mut s, &mut Vec::new(), false);
        // `a b` breaks the request line itself: 400 either way.
        assert_eq!(r.status, 400, "POST {path}: {}", r.text());
    }

    // Not UTF-8.
    let r = request(
        &server,
        b"POST /topics/ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 3\r\n\r\na\xffb",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Nothing refused was published.
    let a = batch(&get(&server, "/topics/ok/messages"));
    assert!(a.messages.is_empty(), "{a:?}");

    // At the limit: accepted. Over it: 413, and the connection closes.
    assert_eq!(post(&server, "/topics/ok", &"x".repeat(1024)).status, 200);
    let mut s = server.connect();
    let body = "x".repeat(1025);
    s.write_all(
        format!(
            "POST /topics/ok HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n{body}GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), false);
    assert_eq!(r.status, 413);
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "closed after 413"
    );
    let a = batch(&get(&server, "/topics/ok/messages"));
    assert_eq!(a.messages.len(), 1);
}

#[test]
fn publish_over_the_limit_says_connection_close() {
    let mut cfg = config();
    cfg.max_message_bytes = 16;
    let server = TestServer::start(cfg);
    let mut s = server.connect();
    s.write_all(
        b"POST /topics/ok HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n01234567890123456",
    )
    .unwrap();
    let r = read_response(&mut s, &mut Vec::new(), false);
    assert_eq!(r.status, 413);
    // DESIGN.md: "Bad input gets a precise answer: HTTP 400/413/... with
    // `Connection: close`" -- the client must know not to reuse it.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed_within(&mut s, Duration::from_secs(3)));
}

#[test]
fn publish_with_connection_close_reaches_subscribers_at_once() {
    let server = TestServer::start(config()); // heartbeat 15 s, poll 30 s
    let mut sse = RawSse::open(server.addr, "/topics/cc/sse", &[]);
    let mut parked = server.connect();
    parked
        .write_all(b"GET /topics/cc/poll?timeout=30 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 1);
    // The way curl -H 'Connection: close', HTTP/1.0 clients and most
    // one-shot scripts publish.
    let r = post(&server, "/topics/cc", "one-shot");
    assert_eq!(r.status, 200);
    let e = sse
        .next_event_within(Duration::from_secs(3))
        .expect("the SSE subscriber gets the message");
    assert_eq!(e.data, "one-shot");
    parked
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let a = batch(&read_response(&mut parked, &mut Vec::new(), false));
    assert_eq!(a.data(), ["one-shot"]);
}

// ---- SSE -------------------------------------------------------------------------

#[test]
fn sse_head_retry_and_live_events_named_and_not() {
    let server = TestServer::start(config());
    let mut sse = RawSse::open(server.addr, "/topics/s/sse", &[]);
    assert_eq!(sse.head.header("content-type"), Some("text/event-stream"));
    assert_eq!(sse.head.header("cache-control"), Some("no-cache"));
    assert_eq!(sse.head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(sse.head.header("content-length"), None);
    assert!(sse.wait_for_bytes(b"\n\n", Duration::from_secs(5)));
    assert!(
        sse.body.starts_with(b"retry: 3000\n\n"),
        "retry first: {:?}",
        String::from_utf8_lossy(&sse.body)
    );
    assert_eq!(sse.retry(), Some(3000));

    let id1 = publish(&server, "s", None, "hello");
    let e = sse.next_event();
    assert_eq!(
        (
            e.event_type.as_str(),
            e.data.as_str(),
            e.last_event_id.as_str()
        ),
        ("message", "hello", id1.as_str())
    );
    assert!(find(&sse.body, format!("id: {id1}\ndata: hello\n\n").as_bytes()).is_some());

    let id2 = publish(&server, "s", Some("price"), "42");
    let e = sse.next_event();
    assert_eq!(
        (
            e.event_type.as_str(),
            e.data.as_str(),
            e.last_event_id.as_str()
        ),
        ("price", "42", id2.as_str())
    );
    assert!(find(
        &sse.body,
        format!("id: {id2}\nevent: price\ndata: 42\n\n").as_bytes()
    )
    .is_some());
    // Only the named message has an event line.
    assert_eq!(
        String::from_utf8_lossy(&sse.body).matches("event:").count(),
        1
    );
}

#[test]
fn sse_message_with_every_line_ending_arrives_as_sent() {
    let server = TestServer::start(config());
    let mut sse = RawSse::open(server.addr, "/topics/lines/sse", &[]);
    let texts = [
        "a\rb\nc\r\nd",
        "line1\r\n\r\n  indented\rthird\n",
        "\n",
        "\r\n\r",
        "",
        "data: not a field\nid: nor this\n:comment?",
        "ünïcødé ✓ \u{2028} 🦀",
        "trailing CR\r",
    ];
    for t in texts {
        publish(&server, "lines", None, t);
    }
    for t in texts {
        let e = sse.next_event();
        assert_eq!(e.event_type, "message");
        assert_eq!(e.data, normalize_line_endings(t), "for {t:?}");
    }
    // The same texts are byte-exact on the polls (JSON keeps every byte).
    let a = batch(&get(&server, "/topics/lines/messages"));
    assert_eq!(a.data(), texts);
}

#[test]
fn sse_cursors_header_beats_query_earliest_and_malformed() {
    let server = TestServer::start(config());
    let ids: Vec<String> = (1..=3)
        .map(|i| publish(&server, "c", None, &format!("m{i}")))
        .collect();

    // The header wins over the query.
    let mut sse = RawSse::open(
        server.addr,
        &format!("/topics/c/sse?last_event_id={}", ids[0]),
        &[("Last-Event-ID", &ids[1])],
    );
    let e = sse.next_event();
    assert_eq!(
        (e.data.as_str(), e.last_event_id.as_str()),
        ("m3", ids[2].as_str())
    );
    assert!(sse.next_event_within(Duration::from_millis(200)).is_none());

    // The query alone.
    let mut sse = RawSse::open(
        server.addr,
        &format!("/topics/c/sse?last_event_id={}", ids[0]),
        &[],
    );
    assert_eq!(
        sse.events(2)
            .iter()
            .map(|e| e.data.as_str())
            .collect::<Vec<_>>(),
        ["m2", "m3"]
    );

    // earliest: everything, no gap event.
    let mut sse = RawSse::open(server.addr, "/topics/c/sse?last_event_id=earliest", &[]);
    let got = sse.events(3);
    assert_eq!(
        got.iter()
            .map(|e| (e.event_type.as_str(), e.data.as_str()))
            .collect::<Vec<_>>(),
        [("message", "m1"), ("message", "m2"), ("message", "m3")]
    );
    assert!(sse.next_event_within(Duration::from_millis(200)).is_none());

    // No cursor: live only.
    let mut sse = RawSse::open(server.addr, "/topics/c/sse", &[]);
    assert!(sse.next_event_within(Duration::from_millis(200)).is_none());
    publish(&server, "c", None, "m4");
    assert_eq!(sse.next_event().data, "m4");

    // Malformed cursors.
    for (query, header) in [
        ("?last_event_id=abc", None),
        ("?last_event_id=1-", None),
        ("?last_event_id=01-1", None),
        ("", Some("1-x")),
        ("", Some("latest")),
        ("?last_event_id=1-1", Some("nope")),
    ] {
        let extra = header
            .map(|h| format!("Last-Event-ID: {h}\r\n"))
            .unwrap_or_default();
        let r = request(
            &server,
            format!(
                "GET /topics/c/sse{query} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 400, "{query} {header:?}: {}", r.text());
    }
    // A bad topic on the stream too.
    assert_eq!(get(&server, "/topics/a$b/sse").status, 400);
}

#[test]
fn sse_over_http10_is_close_delimited() {
    let server = TestServer::start(config());
    let mut sse = RawSse::send(server.addr, b"GET /topics/old/sse HTTP/1.0\r\n\r\n");
    assert_eq!(sse.head.status, 200);
    assert_eq!(sse.head.header("transfer-encoding"), None);
    assert_eq!(sse.head.header("content-length"), None);
    assert_eq!(sse.head.header("content-type"), Some("text/event-stream"));
    let id = publish(&server, "old", None, "one\ntwo");
    let e = sse.next_event();
    assert_eq!(
        (e.data.as_str(), e.last_event_id.as_str()),
        ("one\ntwo", id.as_str())
    );
    // Raw event bytes, no chunk framing around them.
    assert!(sse.body.starts_with(b"retry: 3000\n\n"));
    assert!(find(
        &sse.body,
        format!("id: {id}\ndata: one\ndata: two\n\n").as_bytes()
    )
    .is_some());
}

#[test]
fn sse_heartbeats_arrive_while_idle() {
    let mut cfg = config();
    cfg.heartbeat_interval = Duration::from_millis(200);
    let server = TestServer::start(cfg);
    let mut sse = RawSse::open(server.addr, "/topics/hb/sse", &[]);
    assert!(
        sse.wait_for_bytes(b"\n\n: heartbeat\n\n", Duration::from_secs(3)),
        "no heartbeat: {:?}",
        String::from_utf8_lossy(&sse.body)
    );
    // Comments dispatch nothing.
    assert!(sse.next_event_within(Duration::from_millis(300)).is_none());
    // Heartbeats keep coming, and events still get through between them.
    let start = sse.body.len();
    assert!(sse.wait_for_bytes(b": heartbeat\n\n: heartbeat\n\n", Duration::from_secs(3)));
    publish(&server, "hb", None, "after the beat");
    assert_eq!(sse.next_event().data, "after the beat");
    assert!(sse.body.len() > start);
}

#[test]
fn sse_subscriber_that_disconnects_is_removed_promptly() {
    let server = TestServer::start(config()); // heartbeat 15 s: not what notices
    let a = RawSse::open(server.addr, "/topics/gone/sse", &[]);
    let b = RawSse::open(server.addr, "/topics/gone/sse", &[]);
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 2);
    drop(a);
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 1);
    drop(b);
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 0);
    wait_stat(&server, "connections", Duration::from_secs(2), |n| n <= 1);
}

#[test]
fn sse_resume_after_a_drop_delivers_exactly_the_missed_messages() {
    let server = TestServer::start(config());
    let mut poster = HttpClient::new(server.addr);
    for i in 0..3 {
        poster.publish("r", &format!("before {i}"));
    }
    let mut first = sse(&server, "r", None);
    let ids: Vec<String> = (0..10)
        .map(|i| poster.publish("r", &format!("m{i}")))
        .collect();
    let got: Vec<_> = (0..4).map(|_| sse_event(&mut first)).collect();
    assert_eq!(
        got.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3"]
    );
    let cursor = got[3].last_event_id.clone();
    assert_eq!(cursor, ids[3]);
    drop(first);
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 0);
    for i in 10..20 {
        poster.publish("r", &format!("m{i}"));
    }

    // As a browser reconnects: the header, while the URL keeps an old query.
    let mut sse = RawSse::open(
        server.addr,
        "/topics/r/sse?last_event_id=earliest",
        &[("Last-Event-ID", &cursor)],
    );
    let got = sse.events(16);
    let want: Vec<String> = (4..20).map(|i| format!("m{i}")).collect();
    assert_eq!(got.iter().map(|e| e.data.clone()).collect::<Vec<_>>(), want);
    assert!(
        got.iter().all(|e| e.event_type == "message"),
        "no gap event"
    );
    let got_seqs: Vec<u64> = got.iter().map(|e| split_id(&e.last_event_id).1).collect();
    assert_eq!(got_seqs, (8..=23).collect::<Vec<_>>());
    // Nothing more, and the stream is live again.
    assert!(sse.next_event_within(Duration::from_millis(200)).is_none());
    poster.publish("r", "live");
    assert_eq!(sse.next_event().data, "live");
}

// ---- long poll: 10,000 messages, exactly once -------------------------------------

/// Loops `?after=` on one keep-alive connection until `total` messages
/// came; returns them, and how many answers flagged a gap.
fn poll_loop(
    addr: std::net::SocketAddr,
    topic: &str,
    start: String,
    total: usize,
) -> (Vec<ClientMessage>, usize) {
    let mut p = HttpClient::new(addr);
    let mut cursor = start;
    let mut got = Vec::with_capacity(total);
    let mut gaps = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "poll loop stuck at {}",
            got.len()
        );
        let a = p.batch(&format!("/topics/{topic}/poll?after={cursor}&timeout=5"));
        if a.gap {
            gaps += 1;
        }
        if let Some(last) = a.messages.last() {
            assert_eq!(a.last_id, last.id, "last_id is the last message returned");
        } else {
            assert!(a.timeout, "an empty answer is a timeout: {a:?}");
        }
        cursor = a.last_id.clone();
        got.extend(a.messages);
    }
    (got, gaps)
}

#[test]
fn ten_thousand_messages_reach_looping_long_pollers_exactly_once_in_order() {
    const N: usize = 10_000;
    // History holds all N: a poller that falls behind by any amount can
    // still catch up without a gap, so "exactly once" is what is tested
    // here (the small-history case is the next test). max_batch stays at
    // its default (1000): a lagging poller catches up in batches.
    let mut cfg = config();
    cfg.history_messages = N;
    let server = TestServer::start(cfg);
    // Every poller starts at <epoch>-0: before the first message.
    let start = batch(&get(&server, "/topics/flood/messages")).last_id;
    assert_eq!(split_id(&start).1, 0);

    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, start) = (server.addr, start.clone());
            thread::spawn(move || poll_loop(addr, "flood", start, N))
        })
        .collect();
    let addr = server.addr;
    let publisher = thread::spawn(move || {
        let mut p = HttpClient::new(addr);
        (0..N)
            .map(|i| p.publish("flood", &format!("m{i}")))
            .collect::<Vec<_>>()
    });
    let ids = publisher.join().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(split_id(id).1, i as u64 + 1);
    }
    for h in pollers {
        let (got, gaps) = h.join().unwrap();
        assert_eq!(gaps, 0);
        assert_eq!(got.len(), N);
        for (i, m) in got.iter().enumerate() {
            assert_eq!(
                (m.id.as_str(), m.data.as_str()),
                (ids[i].as_str(), format!("m{i}").as_str())
            );
            assert_eq!(m.event, "message");
        }
    }
}

#[test]
fn a_poller_behind_a_small_history_is_told_of_the_gap() {
    let mut cfg = config();
    cfg.history_messages = 20;
    cfg.max_batch = 5;
    let server = TestServer::start(cfg);
    let mut poster = HttpClient::new(server.addr);
    let mut p = HttpClient::new(server.addr);
    let start = p.batch("/topics/small/messages").last_id;

    // Keeps up for a while...
    for i in 1..=3 {
        poster.publish("small", &format!("m{i}"));
    }
    let a = p.batch(&format!("/topics/small/poll?after={start}&timeout=5"));
    assert_eq!((seqs(&a.messages), a.gap), (vec![1, 2, 3], false));
    let mut cursor = a.last_id;
    // ...then falls behind by more than the history holds.
    for i in 4..=100 {
        poster.publish("small", &format!("m{i}"));
    }
    let mut seen = Vec::new();
    let mut gaps = Vec::new();
    loop {
        let a = p.batch(&format!("/topics/small/poll?after={cursor}&timeout=0"));
        if a.messages.is_empty() {
            assert!(a.timeout);
            break;
        }
        assert!(a.messages.len() <= 5);
        let first = split_id(&a.messages[0].id).1;
        let expected = split_id(&cursor).1 + 1;
        // Never a silent skip: either the next seq, or a gap flagged.
        assert!(
            first == expected || a.gap,
            "skipped {expected}..{first} silently"
        );
        if a.gap {
            gaps.push((expected, first));
        }
        cursor = a.last_id.clone();
        seen.extend(seqs(&a.messages));
    }
    // One gap, to the oldest kept (81), then the rest in order.
    assert_eq!(gaps, [(4, 81)]);
    assert_eq!(seen, (81..=100).collect::<Vec<_>>());
}

// ---- long poll: fan-out -----------------------------------------------------------

#[test]
fn a_publish_wakes_a_thousand_parked_polls() {
    const N: usize = 1000;
    const BATCH: usize = 100;
    let server = TestServer::start(config());
    // Connect in batches, each parked before the next: the listen backlog
    // is 128, and SYNs dropped past it would be retried only after 1 s.
    let mut conns: Vec<TcpStream> = Vec::with_capacity(N);
    while conns.len() < N {
        for _ in 0..BATCH {
            let mut s = server.connect();
            s.write_all(b"GET /topics/many/poll?timeout=30 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            conns.push(s);
        }
        let parked = conns.len() as u64;
        wait_stat(&server, "parked_polls", Duration::from_secs(5), |n| {
            n == parked
        });
    }
    let id = publish(&server, "many", Some("wake"), "everyone");
    let deadline = Instant::now() + Duration::from_secs(8);
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        let a = batch(&read_response(s, &mut Vec::new(), false));
        assert_eq!(
            a.messages,
            [ClientMessage {
                id: id.clone(),
                event: "wake".into(),
                data: "everyone".into()
            }],
            "poll {i}"
        );
        assert_eq!(a.last_id, id);
        assert!(!a.timeout && !a.gap);
    }
    assert_eq!(stat(&server, "parked_polls"), 0);
    assert!(stat(&server, "polls_woken") >= N as u64);
}

// ---- long poll: details -----------------------------------------------------------

#[test]
fn long_poll_timeouts() {
    let server = TestServer::start(config());
    let mut p = HttpClient::new(server.addr);

    // Nothing published: an expiry after about a second, at <epoch>-0.
    let t0 = Instant::now();
    let a = p.batch("/topics/quiet/poll?timeout=1");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "answered after {waited:?}"
    );
    assert!(a.timeout && !a.gap && a.messages.is_empty(), "{a:?}");
    let (epoch, seq) = split_id(&a.last_id);
    assert_eq!(seq, 0);

    // timeout=0: at once.
    let a = p.batch("/topics/quiet/poll?timeout=0");
    assert!(a.timeout && a.messages.is_empty());
    assert_eq!(a.last_id, format!("{epoch}-0"));

    // Messages after the cursor: at once, not a timeout.
    let id1 = publish(&server, "quiet", None, "one");
    assert_eq!(split_id(&id1), (epoch, 1));
    let a = p.batch(&format!("/topics/quiet/poll?after={epoch}-0&timeout=30"));
    assert_eq!((a.data(), a.timeout, a.gap), (vec!["one"], false, false));
    // after=earliest: everything kept.
    let a = p.batch("/topics/quiet/poll?after=earliest&timeout=30");
    assert_eq!(a.data(), ["one"]);
    // Up to date: an expiry that keeps the cursor.
    let a = p.batch(&format!("/topics/quiet/poll?after={id1}&timeout=0"));
    assert!(a.timeout && a.messages.is_empty());
    assert_eq!(a.last_id, id1);

    for bad in [
        "timeout=abc",
        "timeout=-1",
        "timeout=",
        "timeout=.5",
        "timeout=1.2345",
        "timeout=+1",
        "timeout=99999999999999999999",
        "after=&timeout=1",
        "after=x-1&timeout=1",
        "after=1-2-3&timeout=1",
    ] {
        let r = get(&server, &format!("/topics/quiet/poll?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(get(&server, "/topics/a$b/poll?timeout=0").status, 400);
    // Fractional seconds are honoured (to the millisecond).
    let t0 = Instant::now();
    let a = p.batch(&format!("/topics/quiet/poll?after={id1}&timeout=0.3"));
    assert!(a.timeout && t0.elapsed() >= Duration::from_millis(250));
    // The connection that got the answers is still usable.
    assert_eq!(p.get("/healthz").unwrap().status(), 200);
    assert_eq!(p.stats().connections, 1);
}

#[test]
fn a_parked_poll_that_hangs_up_is_removed_at_once() {
    let server = TestServer::start(config());
    let mut s = server.connect();
    s.write_all(b"GET /topics/hang/poll?timeout=30 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 1);
    drop(s);
    wait_stat(&server, "parked_polls", Duration::from_secs(2), |n| n == 0);
    assert_eq!(stat(&server, "polls_expired"), 0, "removed, not expired");
    // A later publish wakes no one and harms nothing.
    publish(&server, "hang", None, "x");
    assert_eq!(stat(&server, "polls_woken"), 0);
}

#[test]
fn requests_pipelined_behind_a_parked_poll_are_answered_after_it() {
    let server = TestServer::start(config());
    let mut p = Poller::new(server.addr);
    p.stream
        .write_all(
            b"GET /topics/pipe/poll?timeout=30 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /topics/pipe/messages HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 1);
    // Nothing is answered out of order while the poll waits.
    p.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        std::io::Read::read(&mut p.stream, &mut byte).is_err(),
        "an answer came before the parked poll's"
    );
    let id = publish(&server, "pipe", None, "wake");
    let a = batch(&p.read());
    assert_eq!(a.messages.iter().map(|m| &m.id).collect::<Vec<_>>(), [&id]);
    let r = p.read();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let a = batch(&p.read());
    assert_eq!(a.data(), ["wake"]);
    // And the connection goes on.
    assert_eq!(p.get("/healthz").status, 200);
}

// ---- short poll -------------------------------------------------------------------

#[test]
fn short_poll_returns_everything_kept_in_batches() {
    let mut cfg = config();
    cfg.max_batch = 3;
    let server = TestServer::start(cfg);
    let mut p = HttpClient::new(server.addr);

    let a = p.batch("/topics/sp/messages");
    assert!(a.messages.is_empty() && !a.timeout && !a.gap);
    let epoch = split_id(&a.last_id).0;
    assert_eq!(a.last_id, format!("{epoch}-0"));

    let ids: Vec<String> = (1..=7).map(|i| p.publish("sp", &format!("m{i}"))).collect();
    // No cursor: from the oldest kept, max_batch at a time.
    let a = p.batch("/topics/sp/messages");
    assert_eq!(a.data(), ["m1", "m2", "m3"]);
    assert_eq!(a.last_id, ids[2]);
    assert!(!a.timeout && !a.gap);
    let a = p.batch(&format!("/topics/sp/messages?after={}", a.last_id));
    assert_eq!(
        (a.data(), a.last_id.as_str()),
        (vec!["m4", "m5", "m6"], ids[5].as_str())
    );
    let a = p.batch(&format!("/topics/sp/messages?after={}", a.last_id));
    assert_eq!(
        (a.data(), a.last_id.as_str()),
        (vec!["m7"], ids[6].as_str())
    );
    let a = p.batch(&format!("/topics/sp/messages?after={}", a.last_id));
    assert!(a.messages.is_empty() && !a.timeout && !a.gap);
    assert_eq!(a.last_id, ids[6]);
    // earliest is the same as no cursor.
    assert_eq!(
        p.batch("/topics/sp/messages?after=earliest").data(),
        ["m1", "m2", "m3"]
    );
    // The long poll batches alike.
    let a = p.batch(&format!("/topics/sp/poll?after={}&timeout=5", ids[0]));
    assert_eq!(a.data(), ["m2", "m3", "m4"]);
    assert_eq!(get(&server, "/topics/sp/messages?after=7").status, 400);
}

// ---- gaps -------------------------------------------------------------------------

#[test]
fn a_cursor_older_than_the_history_is_a_gap_on_every_transport() {
    let mut cfg = config();
    cfg.history_messages = 5;
    let server = TestServer::start(cfg);
    let mut p = HttpClient::new(server.addr);
    let ids: Vec<String> = (1..=10).map(|i| p.publish("g", &format!("m{i}"))).collect();
    let kept = ["m6", "m7", "m8", "m9", "m10"];
    let epoch = split_id(&ids[0]).0;

    for path in ["poll", "messages"] {
        // The message right after the cursor is gone: a gap.
        let a = p.batch(&format!("/topics/g/{path}?after={}&timeout=5", ids[0]));
        assert_eq!(
            (a.data(), a.gap, a.timeout),
            (kept.to_vec(), true, false),
            "{path}"
        );
        assert_eq!(a.last_id, ids[9]);
        let a = p.batch(&format!("/topics/g/{path}?after={}&timeout=5", ids[3]));
        assert!(a.gap, "{path}: m5 is gone");
        // The oldest kept is right after this cursor: no gap.
        let a = p.batch(&format!("/topics/g/{path}?after={}&timeout=5", ids[4]));
        assert_eq!((a.data(), a.gap), (kept.to_vec(), false), "{path}");
        // earliest never reports a gap.
        let a = p.batch(&format!("/topics/g/{path}?after=earliest&timeout=5"));
        assert_eq!((a.data(), a.gap), (kept.to_vec(), false), "{path}");
        // Beyond the newest of this epoch: a gap too.
        let a = p.batch(&format!("/topics/g/{path}?after={epoch}-11&timeout=5"));
        assert_eq!((a.data(), a.gap), (kept.to_vec(), true), "{path}");
        // Another epoch of this topic: a gap.
        let a = p.batch(&format!("/topics/g/{path}?after={}-3&timeout=5", epoch - 1));
        assert_eq!((a.data(), a.gap), (kept.to_vec(), true), "{path}");
    }

    // SSE: an `event: gap` with no id, before the replay.
    let mut sse = RawSse::open(server.addr, "/topics/g/sse", &[("Last-Event-ID", &ids[0])]);
    let gap = sse.next_event();
    assert_eq!(gap.event_type, "gap");
    assert_eq!(gap.last_event_id, "", "a gap carries no id");
    let v = parse_json(&gap.data);
    assert_eq!(v.keys(), ["requested", "oldest"]);
    assert_eq!(v.str_field("requested"), ids[0]);
    assert_eq!(v.str_field("oldest"), ids[5]);
    let body = String::from_utf8_lossy(&sse.body).into_owned();
    let gap_at = body.find("event: gap\n").expect("gap event");
    assert!(
        !body[..gap_at].contains("id:"),
        "nothing before the gap: {body:?}"
    );
    let replay = sse.events(5);
    assert_eq!(
        replay.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        kept
    );
    assert_eq!(replay[0].last_event_id, ids[5]);
}

/// Whole seconds of the wall clock.
fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_cursor_from_before_a_restart_is_a_gap() {
    let old_id = {
        let server = TestServer::start(config());
        publish(&server, "e", None, "old 1");
        publish(&server, "e", None, "old 2")
    };
    // The restart lands in a later wall-clock second: a restart within the
    // same second is `a_restart_within_the_same_second_gets_a_new_epoch`.
    let stopped = unix_secs();
    wait_for("the next second", Duration::from_secs(2), || {
        unix_secs() > stopped
    });
    let (old_epoch, old_seq) = split_id(&old_id);
    assert_eq!(old_seq, 2);

    let server = TestServer::start(config());
    // Nothing published yet in the new history.
    let a = batch(&get(
        &server,
        &format!("/topics/e/poll?after={old_id}&timeout=0"),
    ));
    assert!(a.gap && a.messages.is_empty(), "{a:?}");
    let new_epoch = split_id(&a.last_id).0;
    assert_ne!(new_epoch, old_epoch, "a new history has a new epoch");
    assert_eq!(a.last_id, format!("{new_epoch}-0"));

    // Its seq is again 1, which the old cursor must not be read against.
    let new_id = publish(&server, "e", None, "new 1");
    assert_eq!(split_id(&new_id), (new_epoch, 1));
    let a = batch(&get(
        &server,
        &format!("/topics/e/poll?after={old_id}&timeout=5"),
    ));
    assert_eq!((a.data(), a.gap), (vec!["new 1"], true));
    let a = batch(&get(
        &server,
        &format!("/topics/e/messages?after={}-1", old_epoch),
    ));
    assert_eq!((a.data(), a.gap), (vec!["new 1"], true));
    // In the same epoch, a cursor beyond the newest: a gap.
    let a = batch(&get(
        &server,
        &format!("/topics/e/messages?after={new_epoch}-2"),
    ));
    assert_eq!((a.data(), a.gap), (vec!["new 1"], true));

    let mut sse = RawSse::open(server.addr, "/topics/e/sse", &[("Last-Event-ID", &old_id)]);
    let gap = sse.next_event();
    assert_eq!(gap.event_type, "gap");
    assert_eq!(parse_json(&gap.data).str_field("requested"), old_id);
    assert_eq!(parse_json(&gap.data).str_field("oldest"), new_id);
    assert_eq!(sse.next_event().data, "new 1");
}

#[test]
fn a_restart_within_the_same_second_gets_a_new_epoch() {
    // A crash loop, or a supervisor's quick restart: the new history of
    // topic `e` starts a few ms into the new run, as the old one did.
    let old_id = {
        let server = TestServer::start(config());
        publish(&server, "e", None, "old 1");
        publish(&server, "e", None, "old 2")
    };
    let server = TestServer::start(config());
    let new_id = publish(&server, "e", None, "new 1");
    assert_ne!(
        split_id(&new_id).0,
        split_id(&old_id).0,
        "old cursor {old_id} would be read as a position in the new history"
    );
    // What a client sees: its cursor `<epoch>-2` is read against the new
    // history, so "new 1" (seq 1) is silently skipped instead of a gap.
    let a = batch(&get(&server, &format!("/topics/e/messages?after={old_id}")));
    assert!(a.gap, "{a:?}");
    assert_eq!(a.data(), ["new 1"]);
}

// ---- a stalled reader ---------------------------------------------------------------

#[test]
fn a_stalled_sse_reader_is_cut_off_while_the_others_keep_receiving() {
    const SIZE: usize = 16 * 1024;
    const MAX: usize = 1000; // 16 MiB: far past any loopback buffering
    let mut cfg = config();
    cfg.subscriber_queue_bytes = 64 * 1024;
    cfg.history_messages = MAX;
    let server = TestServer::start(cfg);

    let mut stalled = RawSse::open(server.addr, "/topics/big/sse", &[]);
    let healthy = sse(&server, "big", None);
    let reader = thread::spawn(move || {
        let mut healthy = healthy;
        let mut got = Vec::new();
        loop {
            let e = sse_event(&mut healthy);
            if e.data == "end" {
                return (got, healthy);
            }
            got.push(e);
        }
    });

    // Publish until the stalled one is cut off (its kernel buffers and
    // then its 64 KiB queue full).
    let mut poster = HttpClient::new(server.addr);
    let mut ids = Vec::new();
    let mut cut_at = None;
    while ids.len() < MAX {
        let n = ids.len();
        let text = format!("{n:08}{}", ".".repeat(SIZE - 8));
        ids.push(poster.publish("big", &text));
        if n % 25 == 24 && stat(&server, "slow_disconnects") >= 1 {
            cut_at = Some(ids.len());
            break;
        }
    }
    let published = cut_at.expect("the stalled reader was never cut off");
    // A few more after the cut: the healthy one gets them too.
    for n in published..published + 5 {
        ids.push(poster.publish("big", &format!("{n:08}{}", ".".repeat(SIZE - 8))));
    }
    poster.publish("big", "end");
    let (got, mut healthy) = reader.join().unwrap();
    assert_eq!(got.len(), ids.len(), "the healthy reader got every message");
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.last_event_id, ids[i]);
        assert_eq!(e.data.len(), SIZE);
        assert!(e.data.starts_with(&format!("{i:08}")));
    }
    assert_eq!(stat(&server, "slow_disconnects"), 1);

    // The stalled reader, reading at last, finds a clean prefix, then the end.
    assert!(
        stalled.closed_within(Duration::from_secs(8)),
        "the stalled stream ends"
    );
    let mut prefix = Vec::new();
    while let Some(e) = stalled.next_event_within(Duration::ZERO) {
        prefix.push(e);
    }
    assert!(!prefix.is_empty() && prefix.len() < ids.len());
    for (i, e) in prefix.iter().enumerate() {
        assert_eq!(e.last_event_id, ids[i], "in order, none skipped");
    }
    wait_stat(&server, "subscribers", Duration::from_secs(2), |n| n == 1);
    // The healthy one is still subscribed and live.
    poster.publish("big", "still there");
    assert_eq!(sse_event(&mut healthy).data, "still there");

    // It resumes by its cursor and gets exactly what it missed.
    let cursor = prefix.last().unwrap().last_event_id.clone();
    let mut again = sse(&server, "big", Some(&cursor));
    let rest: Vec<_> = (prefix.len()..ids.len() + 2)
        .map(|_| sse_event(&mut again))
        .collect();
    let want: Vec<&str> = ids[prefix.len()..].iter().map(String::as_str).collect();
    assert_eq!(
        rest[..want.len()]
            .iter()
            .map(|e| e.last_event_id.as_str())
            .collect::<Vec<_>>(),
        want
    );
    assert_eq!(
        rest[want.len()..]
            .iter()
            .map(|e| e.data.as_str())
            .collect::<Vec<_>>(),
        ["end", "still there"]
    );
    assert!(rest.iter().all(|e| e.event_type == "message"));
}

// ---- CORS -------------------------------------------------------------------------

#[test]
fn cors_headers_on_every_transport_and_the_preflight() {
    let mut cfg = config();
    cfg.cors_origin = Some("https://example.com".into());
    let server = TestServer::start(cfg);
    const ORIGIN: &str = "https://example.com";

    let r = post(&server, "/topics/cors", "x");
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some(ORIGIN))
    );
    let r = get(&server, "/topics/cors/messages");
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some(ORIGIN))
    );
    let r = get(&server, "/topics/cors/poll?after=earliest");
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (200, Some(ORIGIN))
    );
    // A poll answered after parking carries it as well.
    let r = get(&server, "/topics/cors/poll?timeout=1");
    assert!(batch(&r).timeout);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    let sse = RawSse::open(server.addr, "/topics/cors/sse", &[("Origin", ORIGIN)]);
    assert_eq!(sse.head.header("access-control-allow-origin"), Some(ORIGIN));
    // Errors too: the page must be able to read why.
    let r = get(&server, "/topics/a$b/messages");
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (400, Some(ORIGIN))
    );

    let r = request(
        &server,
        b"OPTIONS /topics/a/sse HTTP/1.1\r\nHost: t\r\nOrigin: https://example.com\r\n\
          Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\n\
          Connection: close\r\n\r\n",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    let methods = r
        .header("access-control-allow-methods")
        .expect("Allow-Methods");
    assert!(methods.contains("GET"), "{methods}");
    let headers = r
        .header("access-control-allow-headers")
        .expect("Allow-Headers");
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("last-event-id"), "{headers}");
    // A page that sends its token as `Authorization: Bearer` must be
    // allowed to.
    assert!(headers.contains("authorization"), "{headers}");
    let r = request(
        &server,
        b"OPTIONS /topics/a HTTP/1.1\r\nHost: t\r\nOrigin: https://example.com\r\n\
          Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 204);
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("content-type"));
}

#[test]
fn without_cors_no_allow_origin_is_sent() {
    let server = TestServer::start(config());
    let r = post(&server, "/topics/nocors", "x");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = request(
        &server,
        b"OPTIONS /topics/a/sse HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 204);
    assert!(r.header("allow").is_some());
    assert_eq!(r.header("access-control-allow-methods"), None);
}

// ---- limits, eviction by age, shutdown ----------------------------------------------

#[test]
fn long_poll_limits_cap_and_refuse() {
    let mut cfg = config();
    cfg.poll_max_timeout = Duration::from_secs(1);
    cfg.max_parked_polls = 2;
    let server = TestServer::start(cfg);
    // timeout=30 is capped to 1 s.
    let t0 = Instant::now();
    let a = batch(&get(&server, "/topics/cap/poll?timeout=30"));
    assert!(a.timeout);
    assert!(t0.elapsed() < Duration::from_secs(5), "capped");
    // Beyond max_parked_polls: 503 at once, the parked ones unharmed.
    let mut parked: Vec<Poller> = (0..2).map(|_| Poller::new(server.addr)).collect();
    for p in &mut parked {
        p.send("/topics/cap/poll?timeout=1");
    }
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 2);
    let r = get(&server, "/topics/cap/poll?timeout=1");
    // RFC 9110 §10.2.3: the 503 says when to try again.
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    publish(&server, "cap", None, "x");
    for p in &mut parked {
        assert_eq!(batch(&p.read()).data(), ["x"]);
    }
}

#[test]
fn a_publish_with_a_chunked_body_is_one_message() {
    let server = TestServer::start(config());
    let mut p = Poller::new(server.addr);
    p.stream
        .write_all(
            b"POST /topics/ch?event=part HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
        )
        .unwrap();
    let r = p.read();
    assert_eq!(r.status, 200, "{}", r.text());
    let a = p.batch("/topics/ch/messages");
    assert_eq!(
        (a.data(), a.messages[0].event.as_str()),
        (vec!["hello, world"], "part")
    );
}

#[test]
fn messages_evicted_by_age_are_a_gap() {
    let mut cfg = config();
    cfg.history_age = Duration::from_millis(300);
    let server = TestServer::start(cfg);
    let id = publish(&server, "old", None, "soon gone");
    wait_stat(&server, "kept_messages", Duration::from_secs(3), |n| n == 0);
    let a = batch(&get(&server, "/topics/old/poll?after=earliest&timeout=0"));
    assert!(a.messages.is_empty() && !a.gap);
    let a = batch(&get(
        &server,
        &format!("/topics/old/poll?after={}-0&timeout=0", split_id(&id).0),
    ));
    assert!(a.gap, "the message after the cursor is gone: {a:?}");
    assert!(a.messages.is_empty());
}

#[test]
fn shutdown_says_goodbye_on_every_transport() {
    let server = TestServer::start(config());
    let mut sse = RawSse::open(server.addr, "/topics/bye/sse", &[]);
    let mut poll = Poller::new(server.addr);
    poll.send("/topics/bye/poll?timeout=30");
    let mut ws = RawWs::connect(server.addr, "/topics/bye/ws");
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 1);
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 2);

    let stopper = thread::spawn(move || drop(server));
    // The event stream ends with its last chunk.
    assert!(sse.closed_within(Duration::from_secs(5)));
    assert!(sse.ended(), "the stream's last chunk was sent");
    // The parked poll is answered (as an expiry) and told the connection ends.
    let r = poll.read();
    assert!(batch(&r).timeout);
    assert_eq!(r.header("connection"), Some("close"));
    // The WebSocket gets 1001.
    assert_eq!(ws.expect_close(), 1001);
    ws.send_close(1001);
    stopper.join().unwrap();
}

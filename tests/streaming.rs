//! HTTP streaming (`GET /topics/{t}/stream?after=`) over real sockets:
//! one chunked NDJSON response, history then live, heartbeats as empty
//! lines, gaps, resume by `?after=`, HTTP/1.0, HEAD, the slow-reader cut
//! and CORS — read with the library's [`StreamClient`] and, where the
//! framing itself is the point, raw.

mod clients;
mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use clients::*;
use pushwire::client::{NdjsonReader, StreamClient, StreamItem, DEFAULT_MAX_LINE};
use pushwire::wire::chunked::{ChunkedDecoder, ChunkedLimits};
use pushwire::Config;
use support::*;

/// Opens a [`StreamClient`] whose reads cannot hang a test.
fn stream(server: &TestServer, topic: &str, after: Option<&str>) -> StreamClient {
    let mut s = StreamClient::connect(server.addr, topic, after)
        .unwrap_or_else(|e| panic!("stream {topic}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    s
}

/// The next message; panics on a gap, an end or a timeout.
fn next_message(s: &mut StreamClient) -> ClientMessage {
    match s.next_delivery() {
        Ok(Some(Delivery::Message(m))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The exact bytes of one message line as the server frames it on
/// HTTP/1.1: a chunk holding `{"id","event","data"}\n`.
fn chunk_len(m: &ClientMessage) -> usize {
    let mut line = Vec::new();
    pushwire::wire::json::write_message(&mut line, &m.id, &m.event, &m.data);
    line.push(b'\n');
    format!("{:x}", line.len()).len() + 2 + line.len() + 2
}

/// The response head the server sends for `GET target`, as bytes.
fn head_bytes(server: &TestServer, request: &[u8]) -> Vec<u8> {
    let mut s = server.connect();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    while find(&buf, b"\r\n\r\n").is_none() {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "closed before the head");
        buf.extend_from_slice(&b[..n]);
    }
    buf.truncate(find(&buf, b"\r\n\r\n").unwrap() + 4);
    buf
}

#[test]
fn history_then_live_with_exact_byte_counts() {
    let server = TestServer::start(Config::default());
    let old: Vec<String> = (0..3)
        .map(|i| publish(&server, "news", None, &format!("old {i}")))
        .collect();
    let mut s = stream(&server, "news", Some("earliest"));
    let mut got: Vec<ClientMessage> = (0..3).map(|_| next_message(&mut s)).collect();
    assert_eq!(
        got.iter().map(|m| &m.id).collect::<Vec<_>>(),
        old.iter().collect::<Vec<_>>()
    );
    assert_eq!(got[2].data, "old 2");
    let live = publish(&server, "news", Some("flash"), "line one\nline \"two\"");
    let m = next_message(&mut s);
    assert_eq!(
        (m.id.as_str(), m.event.as_str(), m.data.as_str()),
        (live.as_str(), "flash", "line one\nline \"two\"")
    );
    assert_eq!(s.cursor(), Some(live.as_str()));
    got.push(m);

    // Every byte is accounted for: the request, the head, and one chunk
    // per line.
    let request = format!(
        "GET /topics/news/stream?after=earliest HTTP/1.1\r\nHost: {}\r\nAccept: application/x-ndjson\r\n\r\n",
        server.addr
    );
    let head = head_bytes(&server, request.as_bytes());
    let head_text = String::from_utf8_lossy(&head);
    assert!(head_text.starts_with("HTTP/1.1 200 "), "{head_text}");
    assert!(
        head_text.contains("Content-Type: application/x-ndjson\r\n"),
        "{head_text}"
    );
    assert!(
        head_text.contains("Transfer-Encoding: chunked\r\n"),
        "{head_text}"
    );
    let stats = s.stats();
    assert_eq!((stats.requests, stats.connections), (1, 1));
    assert_eq!(stats.bytes_sent, request.len() as u64);
    assert_eq!(
        stats.bytes_received,
        (head.len() + got.iter().map(chunk_len).sum::<usize>()) as u64
    );
}

#[test]
fn read_one_byte_at_a_time_the_lines_are_the_same() {
    let server = TestServer::start(Config::default());
    let ids: Vec<String> = ["a", "b\nc", "\u{e9}t\u{e9} \u{1F600}", ""]
        .iter()
        .map(|d| publish(&server, "bytes", None, d))
        .collect();
    let mut s = server.connect();
    s.write_all(b"GET /topics/bytes/stream?after=earliest HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The head, a byte at a time.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    let mut chunks = ChunkedDecoder::new(ChunkedLimits::default());
    let mut lines = NdjsonReader::new(DEFAULT_MAX_LINE);
    let mut items = Vec::new();
    let mut body = Vec::new();
    while items.len() < ids.len() {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        body.clear();
        let progress = chunks.decode(&byte, &mut body, usize::MAX).unwrap();
        assert_eq!(progress.consumed, 1, "a chunk decoder takes every byte");
        lines.feed(&body, &mut items).unwrap();
    }
    let got: Vec<_> = items
        .iter()
        .map(|i| match i {
            StreamItem::Delivery(Delivery::Message(m)) => (m.id.clone(), m.data.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<_> = ids
        .iter()
        .cloned()
        .zip(["a", "b\nc", "\u{e9}t\u{e9} \u{1F600}", ""].map(String::from))
        .collect();
    assert_eq!(got, want);
    assert_eq!(lines.pending(), 0);
}

#[test]
fn an_idle_stream_carries_empty_lines() {
    let cfg = Config {
        heartbeat_interval: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let mut raw = RawSse::open(server.addr, "/topics/hb/stream", &[]);
    assert!(
        raw.wait_for_bytes(b"\n\n", Duration::from_secs(3)),
        "no heartbeat: {:?}",
        String::from_utf8_lossy(&raw.body)
    );
    // Nothing but empty lines while idle.
    assert!(raw.body.iter().all(|&b| b == b'\n'), "{:?}", raw.body);

    let mut s = stream(&server, "hb", None);
    assert_eq!(s.next_item().unwrap(), Some(StreamItem::Heartbeat));
    assert_eq!(s.next_item().unwrap(), Some(StreamItem::Heartbeat));
    let id = publish(&server, "hb", None, "between beats");
    // `next_delivery` skips the beats and counts them.
    let m = next_message(&mut s);
    assert_eq!(
        (m.id.as_str(), m.data.as_str()),
        (id.as_str(), "between beats")
    );
    assert!(s.heartbeats() >= 2);
}

#[test]
fn an_old_cursor_is_a_gap_then_everything_kept() {
    let cfg = Config {
        history_messages: 3,
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let ids: Vec<String> = (0..6)
        .map(|i| publish(&server, "short", None, &i.to_string()))
        .collect();
    let mut s = stream(&server, "short", Some(&ids[0]));
    assert_eq!(
        s.next_delivery().unwrap(),
        Some(Delivery::Gap {
            requested: ids[0].clone(),
            oldest: ids[3].clone()
        })
    );
    for id in &ids[3..] {
        assert_eq!(&next_message(&mut s).id, id);
    }
    // A malformed cursor is refused with the reason.
    match StreamClient::connect(server.addr, "short", Some("nope")) {
        Err(pushwire::client::ClientError::Status { status: 400, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_resume_by_after_gives_exactly_the_missed_messages() {
    let server = TestServer::start(Config::default());
    let mut s = stream(&server, "resume", Some("earliest"));
    let first: Vec<String> = (0..3)
        .map(|i| publish(&server, "resume", None, &format!("seen {i}")))
        .collect();
    for id in &first {
        assert_eq!(&next_message(&mut s).id, id);
    }
    // Dropped here; meanwhile three more are published.
    s.set_auto_resume(false);
    let missed: Vec<String> = (0..3)
        .map(|i| publish(&server, "resume", None, &format!("missed {i}")))
        .collect();
    s.resume().unwrap();
    let got: Vec<ClientMessage> = (0..3).map(|_| next_message(&mut s)).collect();
    assert_eq!(
        got.iter().map(|m| &m.id).collect::<Vec<_>>(),
        missed.iter().collect::<Vec<_>>()
    );
    assert_eq!(got[0].data, "missed 0");
    let live = publish(&server, "resume", None, "live again");
    assert_eq!(next_message(&mut s).id, live);
    let stats = s.stats();
    assert_eq!((stats.requests, stats.connections, s.resumes()), (2, 2, 1));
}

#[test]
fn over_http10_the_stream_is_close_delimited() {
    let server = TestServer::start(Config::default());
    let id = publish(&server, "old", None, "one");
    let mut raw = RawSse::send(
        server.addr,
        b"GET /topics/old/stream?after=earliest HTTP/1.0\r\n\r\n",
    );
    assert_eq!(raw.head.status, 200);
    assert_eq!(raw.head.header("transfer-encoding"), None);
    assert_eq!(raw.head.header("content-length"), None);
    assert_eq!(
        raw.head.header("content-type"),
        Some("application/x-ndjson")
    );
    let line = format!("{{\"id\":\"{id}\",\"event\":\"message\",\"data\":\"one\"}}\n");
    assert!(raw.wait_for_bytes(line.as_bytes(), Duration::from_secs(3)));
    // No chunk framing around the line.
    assert!(raw.body.starts_with(line.as_bytes()), "{:?}", raw.body);

    let mut s = StreamClient::connect_http10(server.addr, "old", Some("earliest")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    assert_eq!(next_message(&mut s).id, id);
    let two = publish(&server, "old", None, "two");
    assert_eq!(next_message(&mut s).data, "two");
    assert_eq!(s.cursor(), Some(two.as_str()));
}

#[test]
fn head_gives_the_head_and_no_stream() {
    let server = TestServer::start(Config::default());
    publish(&server, "h", None, "kept");
    let mut s = server.connect();
    // HEAD, then a second request on the same connection: its answer
    // comes right after the head, so no body was sent in between.
    s.write_all(
        b"HEAD /topics/h/stream?after=earliest HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let head = read_response(&mut s, &mut buf, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/x-ndjson"));
    assert!(buf.is_empty() || buf.starts_with(b"HTTP/1.1 "), "{buf:?}");
    let next = read_response(&mut s, &mut buf, false);
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(stat(&server, "subscribers"), 0);
}

#[test]
fn a_stalled_reader_is_cut_off_while_the_others_keep_receiving() {
    const SIZE: usize = 16 * 1024;
    const MAX: usize = 1000; // 16 MiB: far past any loopback buffering
    let cfg = Config {
        subscriber_queue_bytes: 64 * 1024,
        history_messages: MAX + 10,
        ..Config::default()
    };
    let server = TestServer::start(cfg);

    let mut stalled = RawSse::open(server.addr, "/topics/big/stream?after=earliest", &[]);
    // This one stalls too, then reads on and resumes by itself.
    let mut resumer = stream(&server, "big", Some("earliest"));
    let healthy = stream(&server, "big", Some("earliest"));
    let reader = thread::spawn(move || {
        let mut healthy = healthy;
        let mut got = Vec::new();
        loop {
            let m = next_message(&mut healthy);
            if m.data == "end" {
                return (got, healthy);
            }
            got.push(m);
        }
    });

    let mut poster = HttpClient::new(server.addr);
    let mut ids = Vec::new();
    let mut cut = false;
    while ids.len() < MAX {
        let n = ids.len();
        ids.push(poster.publish("big", &format!("{n:08}{}", ".".repeat(SIZE - 8))));
        if n % 25 == 24 && stat(&server, "slow_disconnects") >= 2 {
            cut = true;
            break;
        }
    }
    assert!(cut, "the stalled readers were never cut off");
    let end = poster.publish("big", "end");
    let (got, mut healthy) = reader.join().unwrap();
    assert_eq!(got.len(), ids.len(), "the healthy reader got every message");
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.id, ids[i]);
        assert_eq!(m.data.len(), SIZE);
    }
    assert_eq!(stat(&server, "slow_disconnects"), 2);

    // The raw stalled reader finds a clean prefix of whole lines, then the
    // last chunk, then the close.
    assert!(
        stalled.closed_within(Duration::from_secs(8)),
        "the stalled stream ends"
    );
    assert!(stalled.ended(), "the stream ends with its last chunk");
    let mut lines = NdjsonReader::new(DEFAULT_MAX_LINE);
    let mut prefix = Vec::new();
    lines.feed(&stalled.body, &mut prefix).unwrap();
    assert_eq!(lines.pending(), 0, "no line cut in half");
    assert!(!prefix.is_empty() && prefix.len() < ids.len());
    for (i, item) in prefix.iter().enumerate() {
        match item {
            StreamItem::Delivery(Delivery::Message(m)) => assert_eq!(m.id, ids[i]),
            other => panic!("{other:?}"),
        }
    }

    // The client that stalled reads its prefix, resumes by `?after=` and
    // gets every message exactly once, in order.
    let mut all = Vec::new();
    loop {
        let m = next_message(&mut resumer);
        if m.data == "end" {
            assert_eq!(m.id, end);
            break;
        }
        all.push(m.id);
    }
    assert_eq!(all, ids);
    assert_eq!(resumer.resumes(), 1);
    assert_eq!(resumer.stats().requests, 2);

    // The healthy one is still subscribed and live.
    poster.publish("big", "still there");
    assert_eq!(next_message(&mut healthy).data, "still there");
}

#[test]
fn cors_origin_is_on_the_stream() {
    const ORIGIN: &str = "https://example.com";
    let cfg = Config {
        cors_origin: Some(ORIGIN.into()),
        ..Config::default()
    };
    let server = TestServer::start(cfg);
    let raw = RawSse::open(server.addr, "/topics/cors/stream", &[("Origin", ORIGIN)]);
    assert_eq!(raw.head.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        raw.head.header("content-type"),
        Some("application/x-ndjson")
    );
    let server2 = TestServer::start(Config::default());
    let raw = RawSse::open(server2.addr, "/topics/cors/stream", &[("Origin", ORIGIN)]);
    assert_eq!(raw.head.header("access-control-allow-origin"), None);
}

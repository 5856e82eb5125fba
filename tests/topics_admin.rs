//! Topic management over real sockets (DESIGN.md, "The HTTP interface"):
//! `GET /topics` with `?prefix=`, `?after_topic=` and `?limit=`;
//! `GET /topics/{t}` (404 for a missing topic, which asking never
//! creates); `DELETE /topics/{t}` (the history is dropped, the next
//! message starts a new epoch, live subscribers are told `gap`).

mod clients;
mod support;

use std::time::Duration;

use clients::*;
use pushwire::Config;
use support::*;

fn config() -> Config {
    Config::default()
}

fn delete(server: &TestServer, path: &str) -> Response {
    request(
        server,
        format!("DELETE {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The names on one page of `GET /topics…`, and its `next`.
fn page(server: &TestServer, path: &str) -> (Vec<String>, Option<String>) {
    let r = get(server, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = parse_json(&r.text());
    assert_eq!(v.keys(), ["topics", "next"], "{}", r.text());
    let names = v
        .get("topics")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|t| t.str_field("topic").to_string())
        .collect();
    let next = v.get("next").and_then(Value::as_str).map(str::to_string);
    (names, next)
}

#[test]
fn listing_with_prefix_and_pagination() {
    let server = TestServer::start(config());
    for t in ["news.b", "news.a", "prices", "news.c", "newsy", "alpha"] {
        publish(&server, t, None, "x");
    }
    let (all, next) = page(&server, "/topics");
    assert_eq!(
        all,
        ["alpha", "news.a", "news.b", "news.c", "newsy", "prices"]
    );
    assert_eq!(next, None);

    let (p, next) = page(&server, "/topics?prefix=news.");
    assert_eq!(p, ["news.a", "news.b", "news.c"]);
    assert_eq!(next, None);

    // Pages of two, following `next`, cover the list once.
    let mut seen = Vec::new();
    let mut path = "/topics?limit=2".to_string();
    loop {
        let (names, next) = page(&server, &path);
        assert!(names.len() <= 2);
        seen.extend(names);
        match next {
            Some(n) => path = format!("/topics?limit=2&after_topic={n}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
    let (p, next) = page(&server, "/topics?prefix=news&limit=2&after_topic=news.a");
    assert_eq!(p, ["news.b", "news.c"]);
    assert_eq!(next.as_deref(), Some("news.c"));
    let (p, _) = page(&server, "/topics?prefix=news%2E&after_topic=news%2Eb");
    assert_eq!(p, ["news.c"]);
    let (p, next) = page(&server, "/topics?prefix=zzz");
    assert!(p.is_empty() && next.is_none());
    for bad in [
        "/topics?limit=0",
        "/topics?limit=x",
        "/topics?limit=1001",
        "/topics?prefix=%",
    ] {
        assert_eq!(get(&server, bad).status, 400, "{bad}");
    }
}

#[test]
fn stats_fields_and_presence() {
    let server = TestServer::start(config());
    let first = publish(&server, "st", None, "hello");
    let last = publish(&server, "st", None, "world!");
    let _sse = RawSse::open(server.addr, "/topics/st/sse", &[]);
    let _multi = RawSse::open(server.addr, "/sse?topic=st&topic=other", &[]);
    let _ws = RawWs::connect(server.addr, "/topics/st/ws");
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 4);

    let r = get(&server, "/topics/st");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = parse_json(&r.text());
    assert_eq!(
        v.keys(),
        [
            "topic",
            "subscribers",
            "kept_messages",
            "kept_bytes",
            "first_id",
            "last_id",
            "epoch"
        ],
        "{}",
        r.text()
    );
    assert_eq!(v.str_field("topic"), "st");
    let subs = v.get("subscribers").unwrap();
    let count = |k: &str| subs.get(k).and_then(Value::as_f64).unwrap_or(-1.0);
    assert_eq!(count("total"), 3.0, "{}", r.text());
    assert_eq!(count("sse"), 2.0, "{}", r.text());
    assert_eq!(count("ws"), 1.0, "{}", r.text());
    assert_eq!(v.get("kept_messages").and_then(Value::as_f64), Some(2.0));
    assert!(v.get("kept_bytes").and_then(Value::as_f64).unwrap() >= 11.0);
    assert_eq!(v.str_field("first_id"), first);
    assert_eq!(v.str_field("last_id"), last);
    assert_eq!(
        v.get("epoch").and_then(Value::as_f64),
        Some(split_id(&first).0 as f64)
    );
    // The list carries the same entry.
    let r = get(&server, "/topics?prefix=st");
    assert!(
        r.text().contains(&format!(r#""first_id":"{first}""#)),
        "{}",
        r.text()
    );
}

#[test]
fn a_missing_topic_is_404_and_asking_does_not_create_it() {
    let server = TestServer::start(config());
    assert_eq!(get(&server, "/topics/ghost").status, 404);
    assert_eq!(get(&server, "/topics/ghost").status, 404);
    assert_eq!(delete(&server, "/topics/ghost").status, 404);
    let (names, _) = page(&server, "/topics");
    assert!(names.is_empty(), "{names:?}");
    assert_eq!(stat(&server, "topics"), 0);
    assert_eq!(get(&server, "/topics/bad%20name").status, 400);
}

#[test]
fn delete_drops_history_and_subscribers_get_a_gap_then_the_new_epoch() {
    let server = TestServer::start(config());
    let old = publish(&server, "d", None, "before");
    let mut sse = RawSse::open(server.addr, "/topics/d/sse", &[]);
    let mut multi = RawSse::open(server.addr, "/sse?topic=d&topic=other", &[]);
    let mut ws = RawWs::connect(server.addr, "/ws");
    ws.send_text(r#"{"type":"subscribe","topic":"d"}"#);
    assert_eq!(ws.recv_json().str_field("type"), "ack");
    wait_stat(&server, "subscribers", Duration::from_secs(3), |n| n == 4);
    // Long polls parked on the topic, alone and among others.
    let mut poll = Poller::new(server.addr);
    poll.send(&format!("/topics/d/poll?after={old}&timeout=20"));
    let mut multi_poll = Poller::new(server.addr);
    multi_poll.send(&format!(
        "/poll?topic=d&topic=other&after=d={old}&timeout=20"
    ));
    wait_stat(&server, "parked_polls", Duration::from_secs(3), |n| n == 2);
    // A parked long poll is a subscriber while it waits (presence).
    let info = parse_json(&get(&server, "/topics/d").text());
    let subs = info.get("subscribers").expect("subscribers");
    let count = |k: &str| subs.get(k).and_then(Value::as_f64);
    assert_eq!(
        (count("poll"), count("total")),
        (Some(2.0), Some(5.0)),
        "{info:?}"
    );
    let (listed, _) = page(&server, "/topics?prefix=d");
    assert_eq!(listed, ["d"]);
    let listing = parse_json(&get(&server, "/topics?prefix=d").text());
    let first = &listing.get("topics").and_then(Value::as_array).unwrap()[0];
    let listed_poll = first.get("subscribers").and_then(|s| s.get("poll"));
    assert_eq!(listed_poll.and_then(Value::as_f64), Some(2.0));

    let started = std::time::Instant::now();
    let r = delete(&server, "/topics/d");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = parse_json(&r.text());
    assert_eq!(v.str_field("deleted"), "d");
    assert_eq!(v.get("dropped_messages").and_then(Value::as_f64), Some(1.0));

    let e = sse.next_event();
    assert_eq!(e.event_type, "gap", "{e:?}");
    let e = multi.next_event();
    assert_eq!(e.event_type, "gap");
    assert_eq!(parse_json(&e.data).str_field("topic"), "d");
    let g = ws.recv_json();
    assert_eq!(g.get("gap").and_then(Value::as_bool), Some(true), "{g:?}");
    assert_eq!(g.str_field("topic"), "d");
    // The parked polls are answered at once: a gap, and the new epoch's 0
    // as the cursor (not the dropped history's).
    let epoch_zero = v.str_field("last_id").to_string();
    let b = batch(&poll.read());
    assert!(b.gap && !b.timeout && b.messages.is_empty(), "{b:?}");
    assert_eq!(b.last_id, epoch_zero);
    let b = batch(&multi_poll.read());
    assert!(b.gap && !b.timeout, "{b:?}");
    assert!(b.last_id.contains(&format!("d={epoch_zero}")), "{b:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not at their timeout"
    );

    // The next message is on a new epoch, and every subscriber gets it.
    let new = publish(&server, "d", None, "after");
    assert_ne!(split_id(&new).0, split_id(&old).0, "a new epoch");
    assert_eq!(split_id(&new).1, 1);
    let e = sse.next_event();
    assert_eq!(
        (e.data.as_str(), e.last_event_id.as_str()),
        ("after", new.as_str())
    );
    let e = multi.next_event();
    assert!(e.data.contains(r#""data":"after""#), "{e:?}");
    assert!(e.last_event_id.starts_with(&format!("d={new}")), "{e:?}");
    let m = ws.recv_json();
    assert_eq!(m.str_field("id"), new);

    // The history holds only the new epoch; the old cursor is a gap.
    let b = batch(&get(&server, "/topics/d/messages"));
    assert_eq!(b.data(), ["after"]);
    let b = batch(&get(&server, &format!("/topics/d/messages?after={old}")));
    assert!(b.gap, "{b:?}");
    assert_eq!(b.data(), ["after"]);
    let info = parse_json(&get(&server, "/topics/d").text());
    assert_eq!(info.str_field("first_id"), new);
    assert_eq!(
        info.get("epoch").and_then(Value::as_f64),
        Some(split_id(&new).0 as f64)
    );
}

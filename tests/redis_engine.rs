//! Cluster mode over real sockets: two pushwire nodes on one real
//! `redis-server` (started by each test on a free loopback port with no
//! persistence, killed by its PID; skipped when `redis-server` is not
//! installed). Publish on one node, receive on the other with the same
//! ids over SSE, WebSocket and long poll; resume by cursor on the other
//! node; Redis down and back empty.

mod clients;
#[path = "support/redis.rs"]
mod redis_support;
mod support;

use std::time::{Duration, Instant};

use clients::*;
use pushwire::Config;
use redis_support::RedisServer;
use support::*;

macro_rules! redis {
    () => {
        match RedisServer::start() {
            Some(s) => s,
            None => return,
        }
    };
}

fn node(redis: &RedisServer) -> TestServer {
    start_cluster_node(redis.url(), Config::default())
}

#[test]
fn publish_on_one_node_reaches_sse_ws_and_long_poll_on_the_other() {
    let redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let mut sse_b = sse(&b, "news", None);
    let mut ws_b = RawWs::connect(b.addr, "/topics/news/ws");
    let mut poll_b = Poller::new(b.addr);
    poll_b.send("/topics/news/poll?timeout=10");
    wait_stat(&b, "parked_polls", Duration::from_secs(5), |n| n == 1);
    wait_stat(&b, "subscribers", Duration::from_secs(5), |n| n == 2);

    let id = publish(&a, "news", None, "hello");
    let (_, seq) = split_id(&id);
    assert_eq!(seq, 1, "the first message of a topic Redis never saw");

    let e = sse_event(&mut sse_b);
    assert_eq!(
        (e.last_event_id.as_str(), e.data.as_str()),
        (id.as_str(), "hello")
    );
    let m = ws_b.recv_json();
    assert_eq!(m.str_field("id"), id);
    assert_eq!(m.str_field("data"), "hello");
    let batch = batch(&poll_b.read());
    assert_eq!(batch.data(), ["hello"]);
    assert_eq!(batch.messages[0].id, id);
    assert!(
        !batch.gap,
        "a long poll that waited on an empty topic missed nothing"
    );

    // A WebSocket on B publishes; A's subscribers and B's own get it.
    let mut sse_a = sse(&a, "news", Some(&id));
    ws_b.send_text("from b");
    let m = ws_b.recv_json();
    assert_eq!(m.str_field("data"), "from b");
    let e = sse_event(&mut sse_a);
    assert_eq!(e.last_event_id, m.str_field("id"));
    assert_eq!(split_id(&e.last_event_id).1, 2);
    let e = sse_event(&mut sse_b);
    assert_eq!(e.data, "from b");
}

#[test]
fn a_cursor_from_one_node_resumes_on_the_other() {
    let redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let ids: Vec<String> = (1..=3)
        .map(|i| publish(&a, "r", None, &format!("m{i}")))
        .collect();
    // SSE on B resumes after the first id it got from A.
    let mut s = sse(&b, "r", Some(&ids[0]));
    for (i, id) in ids.iter().enumerate().skip(1) {
        let e = sse_event(&mut s);
        assert_eq!(e.last_event_id, *id);
        assert_eq!(e.data, format!("m{}", i + 1));
    }
    // Short poll on B after the first: the other two, no gap.
    let mut http = pushwire::client::HttpClient::new(b.addr);
    let short = http.batch(&format!("/topics/r/messages?after={}", ids[0]));
    assert_eq!(short.data(), ["m2", "m3"]);
    assert!(!short.gap);
    assert_eq!(short.last_id, ids[2]);
    // A long poll on A after the newest waits; a publish on B answers it.
    let mut poll = Poller::new(a.addr);
    poll.send(&format!("/topics/r/poll?after={}&timeout=10", ids[2]));
    wait_stat(&a, "parked_polls", Duration::from_secs(5), |n| n == 1);
    let id4 = publish(&b, "r", None, "m4");
    let answer = batch(&poll.read());
    assert_eq!(answer.data(), ["m4"]);
    assert_eq!(answer.last_id, id4);
    assert_eq!(split_id(&id4), (split_id(&ids[0]).0, 4));
    // A cursor of a history Redis never had is a gap, with everything.
    let all = http.batch("/topics/r/messages?after=17-3");
    assert!(all.gap);
    assert_eq!(all.data(), ["m1", "m2", "m3", "m4"]);
}

#[test]
fn delete_on_one_node_tells_the_other_nodes_subscribers_gap() {
    let redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let id = publish(&a, "d", None, "old");
    let mut s = sse(&b, "d", Some(&format!("{}-0", split_id(&id).0)));
    assert_eq!(sse_event(&mut s).data, "old");
    let r = delete(&a, "/topics/d");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = parse_json(&r.text());
    let last = body.str_field("last_id").to_string();
    assert_ne!(split_id(&last).0, split_id(&id).0, "a new epoch");
    let e = sse_event(&mut s);
    assert_eq!(e.event_type, "gap");
    assert!(e.data.contains(&id), "{}", e.data);
    // The next message is seq 1 of the epoch DELETE answered, on every node.
    let next = publish(&b, "d", None, "new");
    assert_eq!(split_id(&next), (split_id(&last).0, 1));
    assert_eq!(sse_event(&mut s).data, "new");
    assert_eq!(delete(&a, "/topics/never").status, 404);
}

#[test]
fn redis_down_is_503_fast_and_an_empty_redis_after_it_is_a_gap() {
    let mut redis = redis!();
    let a = node(&redis);
    let b = node(&redis);
    let id = publish(&a, "down", None, "before");
    let mut s = sse(&b, "down", Some(&format!("{}-0", split_id(&id).0)));
    assert_eq!(sse_event(&mut s).data, "before");

    redis.stop();
    wait_for("A to notice", Duration::from_secs(5), || {
        get(&a, "/stats").text().contains("\"up\":false")
    });
    let started = Instant::now();
    let r = post(&a, "/topics/down", "lost?");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(1), "503 at once");
    // A topic no node followed cannot be served either.
    assert_eq!(get(&b, "/topics/other/messages").status, 503);

    redis.restart();
    wait_for("A to reconnect", Duration::from_secs(10), || {
        get(&a, "/stats").text().contains("\"up\":true")
    });
    let fresh = publish(&a, "down", None, "after");
    assert_ne!(split_id(&fresh).0, split_id(&id).0, "Redis lost the epoch");
    // The old stream is told what it cannot have, then the new history.
    let e = sse_event(&mut s);
    assert_eq!(e.event_type, "gap", "{e:?}");
    let e = sse_event(&mut s);
    assert_eq!(
        (e.last_event_id.as_str(), e.data.as_str()),
        (fresh.as_str(), "after")
    );
    // An old cursor on a poll is a gap too, never a stale replay.
    let mut http = pushwire::client::HttpClient::new(b.addr);
    let batch = http.batch(&format!("/topics/down/messages?after={id}"));
    assert!(batch.gap);
    assert_eq!(batch.data(), ["after"]);
}

/// `DELETE path` with the test's raw client.
fn delete(server: &TestServer, path: &str) -> Response {
    let req = format!("DELETE {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    request(server, req.as_bytes())
}

#[test]
fn topics_are_listed_across_the_cluster_with_every_nodes_subscribers() {
    let redis = redis!();
    let node_with = |redis: &RedisServer| {
        let cfg = Config {
            redis: Some(redis.url()),
            // Presence is refreshed every check: soon, for the test.
            redis_check_interval: Duration::from_millis(100),
            ..Config::default()
        };
        let server = TestServer::start(cfg);
        wait_for("the node to reach Redis", Duration::from_secs(10), || {
            get(&server, "/healthz").status == 200
        });
        server
    };
    let a = node_with(&redis);
    let b = node_with(&redis);
    let _s1 = sse(&a, "list.a", None);
    let _s2 = sse(&b, "list.a", None);
    let mut ws = RawWs::connect(b.addr, "/topics/list.a/ws");
    let id = publish(&a, "list.b", None, "x");
    // Both nodes' subscribers of list.a, seen from either node.
    wait_for("presence from both nodes", Duration::from_secs(5), || {
        let r = get(&a, "/topics/list.a");
        let v = parse_json(&r.text());
        let subs = v.get("subscribers").unwrap();
        subs.get("total").and_then(Value::as_f64) == Some(3.0)
            && subs.get("ws").and_then(Value::as_f64) == Some(1.0)
    });
    let r = get(&b, "/topics?prefix=list.");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = parse_json(&r.text());
    let topics = v.get("topics").and_then(Value::as_array).unwrap();
    let names: Vec<&str> = topics.iter().map(|t| t.str_field("topic")).collect();
    assert_eq!(names, ["list.a", "list.b"]);
    assert_eq!(topics[1].str_field("last_id"), id);
    assert_eq!(
        topics[1].get("kept_messages").and_then(Value::as_f64),
        Some(1.0)
    );
    // Pages, in name order.
    let r = get(&b, "/topics?prefix=list.&limit=1");
    let v = parse_json(&r.text());
    assert_eq!(v.str_field("next"), "list.a");
    let r = get(&b, "/topics?prefix=list.&limit=1&after_topic=list.a");
    let v = parse_json(&r.text());
    let topics = v.get("topics").and_then(Value::as_array).unwrap();
    assert_eq!(topics[0].str_field("topic"), "list.b");
    // Asking about a topic does not create it.
    assert_eq!(get(&a, "/topics/list.none").status, 404);
    assert_eq!(
        get(&a, "/topics?prefix=list.none").text(),
        "{\"topics\":[],\"next\":null}"
    );
    ws.send_close(1000);
}

#[test]
fn a_long_poll_client_hopping_over_three_nodes_gets_every_message_once_in_order() {
    let redis = redis!();
    let nodes = [node(&redis), node(&redis), node(&redis)];
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr).collect();
    let total = 60;
    // The publisher spreads its publishes over the nodes too.
    let publisher = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for i in 0..total {
            let mut http = pushwire::client::HttpClient::new(addrs[i % 3]);
            ids.push(http.publish("hop", &format!("m{i}")));
            std::thread::sleep(Duration::from_millis(3));
        }
        ids
    });
    let mut got: Vec<ClientMessage> = Vec::new();
    let mut cursor = "earliest".to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut turn = 0;
    while got.len() < total && Instant::now() < deadline {
        let mut http = pushwire::client::HttpClient::new(nodes[turn % 3].addr);
        turn += 1;
        let b = http.batch(&format!("/topics/hop/poll?after={cursor}&timeout=2"));
        assert!(!b.gap, "a gap after {cursor} on node {}", turn % 3);
        got.extend(b.messages);
        cursor = b.last_id;
    }
    let ids = publisher.join().unwrap();
    let data: Vec<String> = got.iter().map(|m| m.data.clone()).collect();
    let want: Vec<String> = (0..total).map(|i| format!("m{i}")).collect();
    assert_eq!(data, want, "every message once, in order");
    let got_ids: Vec<String> = got.into_iter().map(|m| m.id).collect();
    assert_eq!(got_ids, ids, "with the ids the publishes were answered");
}

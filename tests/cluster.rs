//! The cluster mode (`--redis`) end to end: real `redis-server`, real
//! pushwire nodes as child processes, real sockets (DESIGN.md "Cluster
//! (Redis)"; issue "Scale out on Redis").
//!
//! - publish on one node, receive on the others over every transport,
//!   with the same ids everywhere;
//! - concurrent publishes spread over the nodes share one sequence;
//! - behind a round-robin proxy (no sticky sessions) every client gets
//!   every message exactly once, in order, also when a node is killed
//!   mid-stream and the clients resume on another one by their cursors;
//! - Redis restarted empty: 503 while it is down, streams stay open, and
//!   old cursors get a gap afterwards — never silent loss, never a replay
//!   of the lost history;
//! - Redis cutting a node's connection, or stalling past the timeout:
//!   nothing lost, no hole, no gap;
//! - topic listing, deletion and presence across nodes.
//!
//! Each test starts its own Redis and nodes and kills them by PID; every
//! read has a timeout. Skipped when `redis-server` is not installed.

mod clients;
#[path = "common/cluster.rs"]
mod nodes;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clients::*;
use nodes::{Cluster, RoundRobinProxy};

/// Flags every node of these tests runs with: heartbeats every second so
/// that a test can see a stream stay open while Redis is away.
const NODE_FLAGS: &[&str] = &["--heartbeat-interval", "1"];

/// The Redis timeout (`--redis-timeout`, ms) of the outage tests,
/// and how long a publish may take to answer 503 once Redis is gone: that
/// timeout plus scheduling slack on a loaded machine.
const REDIS_TIMEOUT_MS: &str = "1000";
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(4);

/// The bound on every scenario's waiting, well above what a healthy run
/// needs on a busy two-core machine.
const PATIENCE: Duration = Duration::from_secs(60);

macro_rules! cluster {
    ($n:expr) => {
        match Cluster::start($n, NODE_FLAGS) {
            Some(c) => c,
            None => return,
        }
    };
}

fn http(addr: SocketAddr) -> HttpClient {
    let mut h = HttpClient::new(addr);
    h.set_timeout(Duration::from_secs(10));
    h
}

fn publish_on(addr: SocketAddr, topic: &str, data: &str) -> String {
    http(addr).publish(topic, data)
}

/// A request on a fresh connection: `(status, body)`.
fn call(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    let r = http(addr)
        .request(method, target, &[("Connection", "close")], body)
        .unwrap_or_else(|e| panic!("{method} {target} on {addr}: {e}"));
    (r.status(), r.text().unwrap_or("").to_string())
}

fn json_of(addr: SocketAddr, target: &str) -> Value {
    let (status, body) = call(addr, "GET", target, b"");
    assert_eq!(status, 200, "GET {target} on {addr}: {body}");
    parse_json(&body)
}

fn ids(batch: &Batch) -> Vec<&str> {
    batch.messages.iter().map(|m| m.id.as_str()).collect()
}

/// The next text frame of a library WebSocket client as a delivery.
fn ws_delivery(ws: &mut WsClient) -> Delivery {
    ws.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    match ws.recv() {
        Ok(WsMessage::Text(t)) => Delivery::from_json(&t).unwrap_or_else(|e| panic!("{e}: {t}")),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

// ---- 1. every transport, same ids on every node ------------------------------------

#[test]
fn a_publish_on_one_node_reaches_every_transport_on_the_others_with_the_same_ids() {
    let c = cluster!(3);
    let a = c.addr(0);
    // A first message on each topic, so that every subscriber starts from
    // a cursor: what it must receive then does not depend on how soon its
    // node's Redis subscription is confirmed.
    let t0 = publish_on(a, "all", "zero");
    let u0 = publish_on(a, "other", "zero");

    struct Subscribers {
        addr: SocketAddr,
        sse: SseClient,
        multi_sse: RawSse,
        ws: WsClient,
        multi_ws: WsClient,
        long_poll: Poller,
    }
    let subscribe = |addr: SocketAddr| {
        let mut sse = SseClient::connect(addr, "all", Some(&t0)).expect("SSE");
        sse.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let multi_sse = RawSse::open(
            addr,
            "/sse?topic=all&topic=other",
            &[("Last-Event-ID", &format!("all={t0},other={u0}"))],
        );
        let timeout = Some(Duration::from_secs(8));
        let ws = WsClient::connect_timeout(addr, &format!("/topics/all/ws?after={t0}"), timeout)
            .expect("topic WebSocket");
        let mut multi_ws = WsClient::connect_timeout(addr, "/ws", timeout).expect("/ws");
        multi_ws
            .send_text(&format!(
                r#"{{"type":"subscribe","topic":"all","after":"{t0}","ref":1}}"#
            ))
            .unwrap();
        let ack = ws_json(&mut multi_ws);
        assert_eq!(ack.str_field("type"), "ack", "{ack:?}");
        let mut long_poll = Poller::new(addr);
        long_poll.send(&format!("/topics/all/poll?after={t0}&timeout=30"));
        Subscribers {
            addr,
            sse,
            multi_sse,
            ws,
            multi_ws,
            long_poll,
        }
    };
    let mut others: Vec<Subscribers> = [c.addr(1), c.addr(2)].map(subscribe).into();

    let sent = [
        (None, "one"),
        (Some("named"), "two"),
        (None, "three\nlines"),
    ];
    let sent_ids: Vec<String> = sent
        .iter()
        .map(|(event, data)| http(a).post("all", *event, data).expect("publish"))
        .collect();
    let (epoch, _) = split_id(&t0);
    for (i, id) in sent_ids.iter().enumerate() {
        assert_eq!(split_id(id), (epoch, i as u64 + 2), "one sequence: {id}");
    }
    let event_of = |e: Option<&str>| e.unwrap_or("message").to_string();

    for s in &mut others {
        let node = s.addr;
        for (i, (event, data)) in sent.iter().enumerate() {
            let e = sse_event(&mut s.sse);
            assert_eq!(
                (
                    e.last_event_id.as_str(),
                    e.event_type.clone(),
                    e.data.as_str()
                ),
                (sent_ids[i].as_str(), event_of(*event), *data),
                "SSE on {node}"
            );

            let e = s.multi_sse.next_event();
            assert_eq!(e.event_type, event_of(*event), "multiplexed SSE on {node}");
            let v = parse_json(&e.data);
            assert_eq!(v.str_field("topic"), "all");
            assert_eq!(v.str_field("id"), sent_ids[i], "multiplexed SSE on {node}");
            assert_eq!(v.str_field("data"), *data);
            assert_eq!(
                e.last_event_id,
                format!("all={},other={u0}", sent_ids[i]),
                "the combined cursor after the event"
            );

            let m = ws_message(&mut s.ws);
            assert_eq!(
                (m.id.as_str(), m.event.clone(), m.data.as_str()),
                (sent_ids[i].as_str(), event_of(*event), *data),
                "topic WebSocket on {node}"
            );

            let v = ws_json(&mut s.multi_ws);
            assert_eq!(v.str_field("topic"), "all", "/ws on {node}: {v:?}");
            assert_eq!(v.str_field("id"), sent_ids[i], "/ws on {node}");
            assert_eq!(v.str_field("event"), event_of(*event));
            assert_eq!(v.str_field("data"), *data);
        }

        // The parked long poll woke up with the first message (or more);
        // polling on from its cursor collects the rest.
        let mut got = Vec::new();
        let first = batch(&s.long_poll.read());
        assert!(!first.gap && !first.timeout, "{first:?}");
        got.extend(first.messages);
        let mut cursor = got.last().map(|m| m.id.clone()).unwrap_or(t0.clone());
        while got.len() < sent.len() {
            let b = s
                .long_poll
                .batch(&format!("/topics/all/poll?after={cursor}&timeout=10"));
            assert!(!b.gap, "{b:?}");
            cursor = b.last_id.clone();
            got.extend(b.messages);
        }
        assert_eq!(
            got.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            sent_ids,
            "long poll on {node}"
        );

        // Short poll.
        let b = http(node).batch(&format!("/topics/all/messages?after={t0}"));
        assert_eq!(ids(&b), sent_ids, "short poll on {node}");
        assert_eq!(b.last_id, sent_ids[2]);
        assert!(!b.gap);
    }

    // A WebSocket publish on the third node reaches the second node's
    // subscribers and the first node's history under one id.
    others[1].ws.send_text("from-ws").unwrap();
    let own = ws_message(&mut others[1].ws);
    assert_eq!(own.data, "from-ws");
    assert_eq!(split_id(&own.id), (epoch, 5));
    let e = sse_event(&mut others[0].sse);
    assert_eq!(
        (e.last_event_id, e.data),
        (own.id.clone(), "from-ws".into())
    );
    let b = http(a).batch(&format!("/topics/all/messages?after={}", sent_ids[2]));
    assert_eq!(ids(&b), [own.id.as_str()]);
}

// ---- 2. one sequence for concurrent publishers on every node -----------------------

#[test]
fn three_hundred_concurrent_publishes_over_three_nodes_get_seq_1_to_300() {
    let c = cluster!(3);
    const THREADS_PER_NODE: usize = 10;
    const EACH: usize = 10;
    let threads: Vec<_> = (0..3 * THREADS_PER_NODE)
        .map(|t| {
            let addr = c.addr(t % 3);
            std::thread::spawn(move || {
                let mut h = http(addr);
                (0..EACH)
                    .map(|i| {
                        let data = format!("t{t}-{i}");
                        (h.publish("race", &data), data)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let published: BTreeMap<String, String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("publisher"))
        .collect();
    let n = (3 * THREADS_PER_NODE * EACH) as u64;
    assert_eq!(published.len() as u64, n, "every id distinct");
    let epochs: BTreeSet<u64> = published.keys().map(|id| split_id(id).0).collect();
    assert_eq!(epochs.len(), 1, "one history: {epochs:?}");
    let seqs: BTreeSet<u64> = published.keys().map(|id| split_id(id).1).collect();
    assert_eq!(seqs, (1..=n).collect(), "every seq once, no hole");

    // Every node reads the same history, in seq order.
    for addr in c.addrs() {
        let b = http(addr).batch("/topics/race/messages?after=earliest");
        assert!(!b.gap, "{addr}");
        let got: Vec<u64> = b.messages.iter().map(|m| split_id(&m.id).1).collect();
        assert_eq!(got, (1..=n).collect::<Vec<_>>(), "history on {addr}");
        for m in &b.messages {
            assert_eq!(published.get(&m.id), Some(&m.data), "{addr}: {m:?}");
        }
    }
}

// ---- 3. a round-robin balancer, and a node killed mid-stream -----------------------

/// What one client received, in order.
#[derive(Debug, Default)]
struct Log {
    /// `(id, data)` of each message.
    got: Vec<(String, String)>,
    gaps: usize,
    /// Connections lost and made again.
    reconnects: usize,
}

impl Log {
    fn done(&self, last: &str) -> bool {
        self.got.last().is_some_and(|(_, d)| d == last)
    }
}

/// A client that follows `topic` through the proxy until it has the
/// message `last` (or `PATIENCE` passes), resuming by its own cursor
/// whenever its connection ends.
type Follower = Box<dyn FnOnce(SocketAddr, String, String) -> Log + Send>;

fn sse_follower(first: SseClient) -> Follower {
    Box::new(move |proxy, mut cursor, last| {
        let deadline = Instant::now() + PATIENCE;
        let mut log = Log::default();
        let mut sse = Some(first);
        while !log.done(&last) && Instant::now() < deadline {
            let Some(s) = sse.as_mut() else {
                // Resume with the cursor kept here (the browser's
                // Last-Event-ID), on whichever node the proxy picks.
                std::thread::sleep(Duration::from_millis(50));
                if let Ok(mut s) = SseClient::connect(proxy, "rr", Some(&cursor)) {
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    sse = Some(s);
                }
                continue;
            };
            match s.next_event() {
                Ok(Some(e)) if e.event_type == "gap" => log.gaps += 1,
                Ok(Some(e)) => {
                    cursor = e.last_event_id.clone();
                    log.got.push((e.last_event_id, e.data));
                }
                Err(e) if e.is_timeout() => {}
                Ok(None) | Err(_) => {
                    log.reconnects += 1;
                    sse = None;
                }
            }
        }
        log
    })
}

fn ws_follower(first: WsClient) -> Follower {
    Box::new(move |proxy, mut cursor, last| {
        let deadline = Instant::now() + PATIENCE;
        let mut log = Log::default();
        let mut ws = Some(first);
        while !log.done(&last) && Instant::now() < deadline {
            let Some(w) = ws.as_mut() else {
                std::thread::sleep(Duration::from_millis(50));
                let target = format!("/topics/rr/ws?after={cursor}");
                ws = WsClient::connect_timeout(proxy, &target, Some(Duration::from_secs(2))).ok();
                continue;
            };
            match w.recv() {
                Ok(WsMessage::Text(t)) => match Delivery::from_json(&t).expect("a delivery") {
                    Delivery::Message(m) => {
                        cursor = m.id.clone();
                        log.got.push((m.id, m.data));
                    }
                    Delivery::Gap { .. } => log.gaps += 1,
                },
                Err(e) if e.is_timeout() => {}
                Ok(_) | Err(_) => {
                    log.reconnects += 1;
                    ws = None;
                }
            }
        }
        log
    })
}

/// The multiplexed WebSocket: `/ws`, then a subscribe command with the
/// cursor, again after every reconnect.
fn mws_follower(first: WsClient) -> Follower {
    Box::new(move |proxy, mut cursor, last| {
        let deadline = Instant::now() + PATIENCE;
        let mut log = Log::default();
        let subscribe = |w: &mut WsClient, cursor: &str| {
            w.send_text(&format!(
                r#"{{"type":"subscribe","topic":"rr","after":"{cursor}"}}"#
            ))
        };
        let mut ws = Some(first);
        subscribe(ws.as_mut().unwrap(), &cursor).expect("subscribe");
        while !log.done(&last) && Instant::now() < deadline {
            let Some(w) = ws.as_mut() else {
                std::thread::sleep(Duration::from_millis(50));
                ws = WsClient::connect_timeout(proxy, "/ws", Some(Duration::from_secs(2)))
                    .ok()
                    .and_then(|mut w| subscribe(&mut w, &cursor).ok().map(|_| w));
                continue;
            };
            match w.recv() {
                Ok(WsMessage::Text(t)) => {
                    let v = parse_json(&t);
                    if v.get("type").is_some() {
                        assert_eq!(v.str_field("type"), "ack", "{t}");
                    } else if v.get("gap").is_some() {
                        log.gaps += 1;
                    } else {
                        assert_eq!(v.str_field("topic"), "rr");
                        cursor = v.str_field("id").to_string();
                        log.got
                            .push((cursor.clone(), v.str_field("data").to_string()));
                    }
                }
                Err(e) if e.is_timeout() => {}
                Ok(_) | Err(_) => {
                    log.reconnects += 1;
                    ws = None;
                }
            }
        }
        log
    })
}

/// Long poll (`long: true`) or short poll, one request per connection
/// (`Connection: close`), so that each lands on the next node in turn.
fn poll_follower(long: bool) -> Follower {
    Box::new(move |proxy, mut cursor, last| {
        let deadline = Instant::now() + PATIENCE;
        let mut log = Log::default();
        while !log.done(&last) && Instant::now() < deadline {
            let target = if long {
                format!("/topics/rr/poll?after={cursor}&timeout=5")
            } else {
                std::thread::sleep(Duration::from_millis(20));
                format!("/topics/rr/messages?after={cursor}")
            };
            let mut h = http(proxy);
            let r = h.request("GET", &target, &[("Connection", "close")], b"");
            match r.ok().filter(|r| r.status() == 200) {
                Some(r) => {
                    let b = Batch::from_json(r.text().unwrap()).expect("a poll answer");
                    log.gaps += b.gap as usize;
                    log.got
                        .extend(b.messages.into_iter().map(|m| (m.id, m.data)));
                    cursor = b.last_id;
                }
                None => {
                    log.reconnects += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        log
    })
}

#[test]
fn behind_a_round_robin_proxy_every_client_gets_every_message_once_even_when_a_node_dies() {
    let mut c = cluster!(3);
    let proxy = RoundRobinProxy::start(c.addrs());
    let publisher = c.addr(0);
    const N: usize = 200;
    let start = publish_on(publisher, "rr", "start");

    // The streaming clients connect one after another, so the proxy puts
    // one SSE, one topic WebSocket and one /ws client on each node, the
    // one to be killed included.
    let mut followers: Vec<(&str, Follower)> = Vec::new();
    for _ in 0..3 {
        let mut s = SseClient::connect(proxy.addr, "rr", Some(&start)).expect("SSE via proxy");
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        followers.push(("sse", sse_follower(s)));
    }
    for _ in 0..3 {
        let target = format!("/topics/rr/ws?after={start}");
        let w = WsClient::connect_timeout(proxy.addr, &target, Some(Duration::from_secs(2)))
            .expect("WebSocket via proxy");
        followers.push(("ws", ws_follower(w)));
    }
    for _ in 0..3 {
        let w = WsClient::connect_timeout(proxy.addr, "/ws", Some(Duration::from_secs(2)))
            .expect("/ws via proxy");
        followers.push(("/ws", mws_follower(w)));
    }
    assert_eq!(proxy.spread(), [3, 3, 3], "one of each kind per node");
    followers.push(("long poll", poll_follower(true)));
    followers.push(("long poll", poll_follower(true)));
    followers.push(("short poll", poll_follower(false)));

    let last = format!("m{N}");
    let running: Vec<_> = followers
        .into_iter()
        .map(|(kind, f)| {
            let (start, last) = (start.clone(), last.clone());
            let proxy = proxy.addr;
            (kind, std::thread::spawn(move || f(proxy, start, last)))
        })
        .collect();

    let (halfway_tx, halfway) = mpsc::channel();
    let publishing = std::thread::spawn(move || {
        let mut h = http(publisher);
        (1..=N)
            .map(|k| {
                if k == N / 2 {
                    halfway_tx.send(()).unwrap();
                }
                std::thread::sleep(Duration::from_millis(4));
                h.publish("rr", &format!("m{k}"))
            })
            .collect::<Vec<String>>()
    });
    halfway.recv_timeout(PATIENCE).expect("halfway");
    c.nodes[1].kill();
    let sent = publishing.join().expect("publisher");
    let want: Vec<(String, String)> = sent
        .iter()
        .enumerate()
        .map(|(k, id)| (id.clone(), format!("m{}", k + 1)))
        .collect();

    let mut reconnects = BTreeMap::new();
    for (kind, t) in running {
        let log = t
            .join()
            .unwrap_or_else(|_| panic!("{kind} client panicked"));
        assert_eq!(log.gaps, 0, "{kind}: no gap expected: {log:?}");
        assert_eq!(
            log.got.len(),
            N,
            "{kind}: every message exactly once (reconnects {})",
            log.reconnects
        );
        assert_eq!(log.got, want, "{kind}: in order, same ids");
        *reconnects.entry(kind).or_insert(0) += log.reconnects;
    }
    // The streams on the killed node did end and resume elsewhere.
    assert!(reconnects["sse"] >= 1, "{reconnects:?}");
    assert!(reconnects["ws"] >= 1, "{reconnects:?}");
    assert!(reconnects["/ws"] >= 1, "{reconnects:?}");
}

// ---- 4. Redis restarted empty ------------------------------------------------------

fn heartbeats(body: &[u8]) -> usize {
    body.windows(b": heartbeat".len())
        .filter(|w| *w == b": heartbeat")
        .count()
}

#[test]
fn redis_restarted_empty_gives_503_meanwhile_then_a_gap_not_loss_nor_stale_replay() {
    let flags = [NODE_FLAGS, &["--redis-timeout", REDIS_TIMEOUT_MS]].concat();
    let Some(mut c) = Cluster::start(2, &flags) else {
        return;
    };
    let (a, b) = (c.addr(0), c.addr(1));
    let old: Vec<String> = (1..=3)
        .map(|i| publish_on(a, "r", &format!("old{i}")))
        .collect();
    let mut sse = RawSse::open(b, "/topics/r/sse", &[("Last-Event-ID", &old[0])]);
    let mut ws = WsClient::connect_timeout(
        b,
        &format!("/topics/r/ws?after={}", old[0]),
        Some(Duration::from_secs(8)),
    )
    .expect("WebSocket");
    let mut multi_sse = RawSse::open(
        b,
        "/sse?topic=r&topic=r.quiet",
        &[("Last-Event-ID", &format!("r={}", old[0]))],
    );
    let mut multi_ws =
        WsClient::connect_timeout(b, "/ws", Some(Duration::from_secs(8))).expect("/ws");
    multi_ws
        .send_text(&format!(
            r#"{{"type":"subscribe","topic":"r","after":"{}"}}"#,
            old[0]
        ))
        .unwrap();
    assert_eq!(ws_json(&mut multi_ws).str_field("type"), "ack");
    for id in &old[1..] {
        assert_eq!(&sse.next_event().last_event_id, id);
        assert_eq!(&ws_message(&mut ws).id, id);
        assert_eq!(parse_json(&multi_sse.next_event().data).str_field("id"), id);
        assert_eq!(ws_json(&mut multi_ws).str_field("id"), id);
    }
    // A long poll parked across the outage.
    let mut parked = Poller::new(b);
    parked.send(&format!("/topics/r/poll?after={}&timeout=60", old[2]));

    c.redis.kill();
    // Publishing answers 503 within the configured timeout, on both nodes.
    for addr in [a, b] {
        let t = Instant::now();
        let (status, body) = call(addr, "POST", "/topics/r", b"while-down");
        assert_eq!(status, 503, "publish on {addr} with Redis down: {body}");
        assert!(
            t.elapsed() < UNAVAILABLE_WITHIN,
            "503 took {:?}",
            t.elapsed()
        );
    }
    // The streams stay open: heartbeats, no events, no close.
    let beats = heartbeats(&sse.body);
    let until = Instant::now() + Duration::from_secs(10);
    while heartbeats(&sse.body) <= beats && Instant::now() < until {
        assert!(sse.next_event_within(Duration::from_millis(500)).is_none());
    }
    assert!(!sse.closed, "the SSE stream stayed open");
    assert!(
        heartbeats(&sse.body) > beats,
        "heartbeats while Redis is down"
    );
    assert!(
        ws_quiet(&mut ws, Duration::from_secs(1)),
        "WebSocket open, quiet"
    );

    c.redis.restart_empty();
    // Publishing works again once the node has reconnected.
    let until = Instant::now() + PATIENCE;
    let new = loop {
        let (status, body) = call(a, "POST", "/topics/r", b"new1");
        if status == 200 {
            break parse_json(&body).str_field("id").to_string();
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < until, "Redis never came back");
        std::thread::sleep(Duration::from_millis(200));
    };
    let (old_epoch, _) = split_id(&old[2]);
    assert_ne!(
        split_id(&new).0,
        old_epoch,
        "a new epoch, never a reused id"
    );
    assert_eq!(split_id(&new).1, 1);

    // The streams that stayed open are told of the gap, then go on.
    let e = sse
        .next_event_within(PATIENCE)
        .expect("SSE after Redis is back");
    assert_eq!(e.event_type, "gap", "the open SSE stream: {e:?}");
    let e = sse.next_event_within(PATIENCE).expect("SSE after the gap");
    assert_eq!(
        (e.last_event_id.as_str(), e.data.as_str()),
        (new.as_str(), "new1")
    );
    assert!(
        matches!(ws_delivery(&mut ws), Delivery::Gap { .. }),
        "open WebSocket"
    );
    assert_eq!(ws_message(&mut ws).id, new);
    // The multiplexed stream is told of a gap on `r` before its new
    // message; its quiet topic may be told too (its history was in the
    // Redis that was lost as well: a message published there just before
    // the crash could have been lost with it), and nothing else comes.
    let mut gaps = BTreeSet::new();
    let e = loop {
        let e = multi_sse
            .next_event_within(PATIENCE)
            .expect("multiplexed SSE");
        if e.event_type != "gap" {
            break e;
        }
        gaps.insert(parse_json(&e.data).str_field("topic").to_string());
    };
    assert!(gaps.contains("r"), "open multiplexed SSE: gaps {gaps:?}");
    assert!(gaps.is_subset(&["r".into(), "r.quiet".into()].into()));
    let v = parse_json(&e.data);
    assert_eq!(
        (v.str_field("topic"), v.str_field("id")),
        ("r", new.as_str())
    );
    assert!(e.last_event_id.starts_with(&format!("r={new}")), "{e:?}");
    let g = ws_json(&mut multi_ws);
    assert_eq!(
        g.get("gap").and_then(Value::as_bool),
        Some(true),
        "/ws: {g:?}"
    );
    assert_eq!(g.str_field("topic"), "r");
    assert_eq!(ws_json(&mut multi_ws).str_field("id"), new);
    // The parked long poll answers with the gap, and the new history.
    let mut got = batch(&parked.read());
    assert!(got.gap, "the parked long poll: {got:?}");
    if got.messages.is_empty() {
        got = parked.batch(&format!("/topics/r/poll?after={}&timeout=10", got.last_id));
    }
    assert_eq!(ids(&got), [new.as_str()], "{got:?}");

    // Old cursors on new requests, on either node: a gap, then only the
    // new history.
    for addr in [a, b] {
        let cursor = &old[2];
        let batch = http(addr).batch(&format!("/topics/r/messages?after={cursor}"));
        assert!(batch.gap, "short poll on {addr}: {batch:?}");
        assert_eq!(ids(&batch), [new.as_str()]);
        let batch = http(addr).batch(&format!("/topics/r/poll?after={cursor}&timeout=5"));
        assert!(batch.gap, "long poll on {addr}: {batch:?}");
        assert_eq!(ids(&batch), [new.as_str()]);

        let mut fresh = RawSse::open(addr, "/topics/r/sse", &[("Last-Event-ID", cursor)]);
        let e = fresh.next_event();
        assert_eq!(e.event_type, "gap", "SSE on {addr}");
        let v = parse_json(&e.data);
        assert_eq!(v.str_field("requested"), cursor);
        let e = fresh.next_event();
        assert_eq!(e.last_event_id, new, "SSE on {addr}");

        let mut fresh = WsClient::connect_timeout(
            addr,
            &format!("/topics/r/ws?after={cursor}"),
            Some(Duration::from_secs(8)),
        )
        .expect("WebSocket");
        match ws_delivery(&mut fresh) {
            Delivery::Gap { requested, .. } => assert_eq!(&requested, cursor),
            other => panic!("WebSocket on {addr}: expected a gap, got {other:?}"),
        }
        assert_eq!(ws_message(&mut fresh).id, new);
    }
}

// ---- 4b. Redis cuts or stalls a node's connection, data kept -----------------------

#[test]
fn subscriber_connections_cut_by_redis_lose_nothing_and_report_no_gap() {
    // A short position check, so that a message published while a node
    // was resubscribing is found even on a topic that then goes quiet.
    let flags = [NODE_FLAGS, &["--redis-check-interval", "500"]].concat();
    let Some(c) = Cluster::start(2, &flags) else {
        return;
    };
    let (a, b) = (c.addr(0), c.addr(1));
    let start = publish_on(a, "cut", "start");
    let mut sse = RawSse::open(b, "/topics/cut/sse", &[("Last-Event-ID", &start)]);
    let mut multi = RawSse::open(
        b,
        "/sse?topic=cut&topic=cut.quiet",
        &[("Last-Event-ID", &format!("cut={start}"))],
    );
    let mut ws = WsClient::connect_timeout(
        b,
        &format!("/topics/cut/ws?after={start}"),
        Some(Duration::from_secs(8)),
    )
    .expect("WebSocket");
    // Every subscriber is live before the cuts begin.
    let probe = publish_on(a, "cut", "probe");
    assert_eq!(sse.next_event().last_event_id, probe);
    assert!(multi.next_event().data.contains(&probe));
    assert_eq!(ws_message(&mut ws).id, probe);

    // Redis drops every connection that follows topics (node B's), again and
    // again, while node A publishes: what pub/sub did not carry must come
    // from the stream.
    let mut sent = Vec::new();
    let mut cut = 0;
    for round in 0..20 {
        cut += c.redis.kill_topic_subscribers();
        for k in 0..3 {
            sent.push(publish_on(a, "cut", &format!("r{round}-{k}")));
        }
    }
    assert!(cut > 0, "CLIENT KILL found no subscribed connection");

    let mut got = Vec::new();
    while got.len() < sent.len() {
        let e = sse.next_event_within(PATIENCE).expect("SSE");
        assert_ne!(e.event_type, "gap", "SSE: no message was lost: {e:?}");
        got.push(e.last_event_id);
    }
    assert_eq!(
        got, sent,
        "SSE: each once, in order (connections cut {cut} times)"
    );
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let e = multi.next_event_within(PATIENCE).expect("multiplexed SSE");
        assert_ne!(e.event_type, "gap", "multiplexed SSE: {e:?}");
        got.push(parse_json(&e.data).str_field("id").to_string());
    }
    assert_eq!(got, sent, "multiplexed SSE");
    let mut got = Vec::new();
    while got.len() < sent.len() {
        match ws_delivery(&mut ws) {
            Delivery::Message(m) => got.push(m.id),
            gap => panic!("WebSocket: no message was lost: {gap:?}"),
        }
    }
    assert_eq!(got, sent, "WebSocket");
}

#[test]
fn a_stalled_redis_gives_504_within_the_timeout_and_no_hole_in_the_sequence() {
    let flags = [NODE_FLAGS, &["--redis-timeout", REDIS_TIMEOUT_MS]].concat();
    let Some(c) = Cluster::start(2, &flags) else {
        return;
    };
    let (a, b) = (c.addr(0), c.addr(1));
    let start = publish_on(a, "stall", "start");
    let mut sse = RawSse::open(b, "/topics/stall/sse", &[("Last-Event-ID", &start)]);
    let probe = publish_on(a, "stall", "probe");
    assert_eq!(sse.next_event().last_event_id, probe);

    // Redis stops answering writes (it accepts the command and holds it)
    // for longer than the nodes' timeout.
    assert_eq!(
        c.redis.command(&["CLIENT", "PAUSE", "2500", "WRITE"]),
        "+OK"
    );
    let t = Instant::now();
    let (status, body) = call(a, "POST", "/topics/stall", b"during");
    // 504: the publish went to Redis and was never answered, so it may
    // still be stored (RFC 9110 §15.6.5); not the 503 of "not done".
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("may have happened"), "{body}");
    assert!(
        t.elapsed() < UNAVAILABLE_WITHIN,
        "504 took {:?}",
        t.elapsed()
    );
    assert!(sse.next_event_within(Duration::from_secs(2)).is_none());
    assert!(!sse.closed, "the stream stays open");

    // Once Redis answers again, publishing goes on; whatever happened to
    // the publish that timed out, the history and the live stream agree
    // on it, with no hole and no gap.
    let until = Instant::now() + PATIENCE;
    let after = loop {
        let (status, body) = call(a, "POST", "/topics/stall", b"after");
        if status == 200 {
            break parse_json(&body).str_field("id").to_string();
        }
        assert!(status == 503 || status == 504, "{status} {body}");
        assert!(Instant::now() < until, "Redis never answered again");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut live = Vec::new();
    while live.last() != Some(&after) {
        let e = sse.next_event_within(PATIENCE).expect("live event");
        assert_ne!(e.event_type, "gap", "{e:?}");
        live.push(e.last_event_id);
    }
    let first = split_id(&probe).1 + 1;
    let seqs: Vec<u64> = live.iter().map(|id| split_id(id).1).collect();
    assert_eq!(
        seqs,
        (first..first + seqs.len() as u64).collect::<Vec<_>>(),
        "no hole: {live:?}"
    );
    for addr in [a, b] {
        let history = http(addr).batch(&format!("/topics/stall/messages?after={probe}"));
        assert!(!history.gap, "{history:?}");
        assert_eq!(ids(&history), live, "history on {addr} = what was live");
    }
}

// ---- 5. topic management across the cluster ---------------------------------------

fn subscribers_total(addr: SocketAddr, topic: &str) -> f64 {
    json_of(addr, &format!("/topics/{topic}"))
        .get("subscribers")
        .and_then(|s| s.get("total"))
        .and_then(Value::as_f64)
        .unwrap_or(-1.0)
}

#[test]
fn a_node_lists_and_describes_a_topic_only_another_node_has_seen() {
    let c = cluster!(3);
    let (a, b, n3) = (c.addr(0), c.addr(1), c.addr(2));
    let first = publish_on(a, "adm.x", "hello");
    let second = publish_on(a, "adm.y", "hello");
    publish_on(a, "other", "x");
    let listed = json_of(b, "/topics?prefix=adm.");
    let topics = listed
        .get("topics")
        .and_then(Value::as_array)
        .expect("topics");
    let names: Vec<&str> = topics.iter().map(|t| t.str_field("topic")).collect();
    assert_eq!(names, ["adm.x", "adm.y"], "{listed:?}");
    assert_eq!(topics[0].str_field("last_id"), first);
    assert_eq!(topics[1].str_field("last_id"), second);
    let info = json_of(n3, "/topics/adm.x");
    assert_eq!(info.str_field("last_id"), first);
    assert_eq!(info.get("kept_messages").and_then(Value::as_f64), Some(1.0));
}

#[test]
fn presence_is_summed_over_the_nodes() {
    let c = cluster!(3);
    let (a, b, n3) = (c.addr(0), c.addr(1), c.addr(2));
    let first = publish_on(a, "pres", "hello");
    let _sse_a = RawSse::open(a, "/topics/pres/sse", &[("Last-Event-ID", &first)]);
    let _sse_b = RawSse::open(b, "/topics/pres/sse", &[("Last-Event-ID", &first)]);
    let _ws = WsClient::connect_timeout(
        n3,
        &format!("/topics/pres/ws?after={first}"),
        Some(Duration::from_secs(8)),
    )
    .expect("WebSocket");
    for addr in [a, b, n3] {
        // Counts are published per node with an expiry; 20 s covers
        // several refreshes.
        wait_for(
            "presence summed over 3 nodes",
            Duration::from_secs(20),
            || subscribers_total(addr, "pres") == 3.0,
        );
    }
}

#[test]
fn a_delete_on_one_node_tells_the_subscribers_on_the_others() {
    let c = cluster!(3);
    let (a, b, n3) = (c.addr(0), c.addr(1), c.addr(2));
    let first = publish_on(a, "adm.x", "hello");
    let mut sse = RawSse::open(b, "/topics/adm.x/sse", &[("Last-Event-ID", &first)]);
    let mut multi = RawSse::open(
        b,
        "/sse?topic=adm.x&topic=adm.other",
        &[("Last-Event-ID", &format!("adm.x={first}"))],
    );
    let mut ws = WsClient::connect_timeout(
        n3,
        &format!("/topics/adm.x/ws?after={first}"),
        Some(Duration::from_secs(8)),
    )
    .expect("WebSocket");
    // Every subscriber is live on its node before the delete.
    let probe = publish_on(a, "adm.x", "probe");
    assert_eq!(sse.next_event().last_event_id, probe);
    assert!(multi.next_event().data.contains(&probe));
    assert_eq!(ws_message(&mut ws).id, probe);
    // A long poll parked on B at the newest id.
    let mut poll = Poller::new(b);
    poll.send(&format!("/topics/adm.x/poll?after={probe}&timeout=20"));
    std::thread::sleep(Duration::from_millis(200));

    // DELETE on A: subscribers on B and C are told the history is gone.
    let (status, body) = call(a, "DELETE", "/topics/adm.x", b"");
    assert_eq!(status, 200, "{body}");
    let epoch_zero = parse_json(&body).str_field("last_id").to_string();
    let b_poll = batch(&poll.read());
    assert!(b_poll.gap && !b_poll.timeout, "{b_poll:?}");
    assert_eq!(b_poll.last_id, epoch_zero);
    let e = sse
        .next_event_within(PATIENCE)
        .expect("SSE on B after DELETE");
    assert_eq!(e.event_type, "gap", "{e:?}");
    let e = multi
        .next_event_within(PATIENCE)
        .expect("multiplexed SSE on B");
    assert_eq!(e.event_type, "gap", "{e:?}");
    assert_eq!(parse_json(&e.data).str_field("topic"), "adm.x");
    assert!(matches!(ws_delivery(&mut ws), Delivery::Gap { .. }));

    // The next message starts a new epoch, everywhere.
    let new = publish_on(n3, "adm.x", "again");
    assert_ne!(split_id(&new).0, split_id(&first).0);
    assert_eq!(split_id(&new).1, 1);
    let e = sse.next_event();
    assert_eq!(
        (e.last_event_id.as_str(), e.data.as_str()),
        (new.as_str(), "again")
    );
    assert!(multi.next_event().data.contains(&new));
    assert_eq!(ws_message(&mut ws).id, new);
    assert_eq!(json_of(b, "/topics/adm.x").str_field("first_id"), new);
    // The old cursor is a gap on every node.
    for addr in c.addrs() {
        let batch = http(addr).batch(&format!("/topics/adm.x/messages?after={probe}"));
        assert!(batch.gap, "{addr}: {batch:?}");
        assert_eq!(ids(&batch), [new.as_str()]);
    }
}

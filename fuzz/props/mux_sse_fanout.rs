//! Multi-topic SSE fan-out, many subscribers at once: subscribers that
//! stand at the same combined cursor share one encoded event per message,
//! the others get their own bytes; either way every event's `id:` must be
//! that connection's own cursor after the event (DESIGN.md, "One
//! connection, many topics"). The input opens streams on sets of topics
//! in various orders, live, resumed from another client's last `id:` or
//! from the earliest message, publishes, stops and resumes reading, hangs
//! up and lets time pass. For every connection, in what it received:
//! each `id:` names its topics in the order subscribed; the event's own
//! topic stands at the event's id; every other topic stands where the
//! previous `id:` left it (unless a gap on that topic came between); and
//! each topic's messages follow each other by one (unless a gap came
//! between). Nothing may panic.
//!
//! Input: operations, each a tag byte and its operands:
//! `0 k mask rot from` client k opens a stream (hanging up any before) on
//! the topics of `mask` (bits over a,b,c,d), rotated by `rot`, with the
//! cursor `from` chooses (none, another client's last `id:`, `earliest`);
//! `1 t e` a publish to topic t, named `price` when e is odd;
//! `2 k w` client k reads w × 64 more bytes (0: it stops reading);
//! `3 k` client k hangs up; `4 t` time moves by t × 100 ms.

use std::collections::HashMap;
use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::Config;

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];
const CLIENTS: usize = 6;

fn config() -> Config {
    Config {
        subscriber_queue_bytes: 8 * 1024,
        max_outbound_bytes: 8 * 1024,
        history_messages: 8,
        ..Config::default()
    }
}

/// A stream as opened: its connection and its topics in order.
struct Opened {
    conn: usize,
    topics: Vec<&'static str>,
}

/// The last `id:` line a client received, if any.
fn last_id(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .map(str::to_owned)
}

/// The next `n` bytes of the script.
fn take(rest: &mut &[u8], n: usize) -> Option<Vec<u8>> {
    (rest.len() >= n).then(|| {
        let (a, b) = rest.split_at(n);
        *rest = b;
        a.to_vec()
    })
}

/// Plays the script; returns every stream opened and the bytes its
/// connection received.
fn play(data: &[u8]) -> Vec<(Opened, Vec<u8>)> {
    let mut h = Harness::new(config());
    let mut open: Vec<Option<Opened>> = (0..CLIENTS).map(|_| None).collect();
    let mut done = Vec::new();
    let mut rest = data;
    let mut seq = 0u32;
    while let Some(tag) = take(&mut rest, 1) {
        match tag[0] % 5 {
            0 => {
                let Some(op) = take(&mut rest, 4) else { break };
                let k = usize::from(op[0]) % CLIENTS;
                let mut topics: Vec<_> = TOPICS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| op[1] & (1 << i) != 0)
                    .map(|(_, t)| *t)
                    .collect();
                if topics.is_empty() {
                    topics = vec!["a", "b"];
                }
                let n = topics.len();
                topics.rotate_left(usize::from(op[2]) % n);
                let from = match op[3] % 3 {
                    1 => open
                        .iter()
                        .flatten()
                        .nth(usize::from(op[3] / 3) % CLIENTS)
                        .and_then(|o| {
                            last_id(&String::from_utf8_lossy(&h.clients[&o.conn].received))
                        }),
                    2 => Some("earliest".to_owned()),
                    _ => None,
                };
                if let Some(old) = open[k].take() {
                    h.eof(old.conn);
                    retire(&h, old, &mut done);
                }
                let mut path = String::from("/sse?");
                for (i, t) in topics.iter().enumerate() {
                    if i > 0 {
                        path.push('&');
                    }
                    path.push_str("topic=");
                    path.push_str(t);
                }
                let header = from.map_or(String::new(), |c| format!("Last-Event-ID: {c}\r\n"));
                retire_closed(&h, &mut open, &mut done);
                let conn = h.connect();
                let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\n");
                h.send(conn, req.as_bytes());
                open[k] = Some(Opened { conn, topics });
            }
            1 => {
                let Some(op) = take(&mut rest, 2) else { break };
                let topic = TOPICS[usize::from(op[0]) % TOPICS.len()];
                let event = (op[1] % 2 == 1).then_some("price");
                seq += 1;
                let _ = h
                    .node
                    .handle_publish(topic, event, &format!("m{seq}"), h.now);
                h.settle();
            }
            2 => {
                let Some(op) = take(&mut rest, 2) else { break };
                if let Some(o) = &open[usize::from(op[0]) % CLIENTS] {
                    if op[1] == 0 {
                        h.clients.get_mut(&o.conn).unwrap().window = 0;
                    } else {
                        h.open_window(o.conn, usize::from(op[1]) * 64);
                    }
                }
            }
            3 => {
                let Some(op) = take(&mut rest, 1) else { break };
                if let Some(old) = open[usize::from(op[0]) % CLIENTS].take() {
                    h.eof(old.conn);
                    retire(&h, old, &mut done);
                }
            }
            _ => {
                let Some(op) = take(&mut rest, 1) else { break };
                h.advance(Duration::from_millis(100 * u64::from(op[0])));
            }
        }
    }
    for o in open.into_iter().flatten() {
        h.open_window(o.conn, usize::MAX / 2);
        retire(&h, o, &mut done);
    }
    done
}

/// The stream is over: it goes to `done` with what its connection
/// received.
fn retire(h: &Harness, o: Opened, done: &mut Vec<(Opened, Vec<u8>)>) {
    let got = h.clients[&o.conn].received.clone();
    done.push((o, got));
}

/// Retires the streams whose connection the core has closed (idle after
/// a refused request, cut off as a slow reader): the core gives a closed
/// connection's id to the next one it accepts, and that one's bytes are
/// not theirs.
fn retire_closed(h: &Harness, open: &mut [Option<Opened>], done: &mut Vec<(Opened, Vec<u8>)>) {
    for slot in open.iter_mut() {
        if let Some(o) = slot.take_if(|o| h.closed(o.conn)) {
            retire(h, o, done);
        }
    }
}

/// `"key":"value"` in one of our JSON objects (names and ids need no
/// escaping).
fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let at = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let len = json[at..].find('"')?;
    Some(&json[at..at + len])
}

fn seq_of(id: &str) -> (u64, u64) {
    let (e, s) = id.split_once('-').expect("an id is EPOCH-SEQ");
    (e.parse().unwrap(), s.parse().unwrap())
}

/// Checks one connection's events (see the module comment).
fn check_stream(opened: &Opened, got: &[u8]) {
    let text = String::from_utf8_lossy(got);
    // A client that stopped reading may hold half an event: only whole
    // ones (each ends its one `data:` line with the empty line) count.
    let whole = text.rfind("}\n\n").map_or(0, |at| at + 3);
    let text = &text[..whole];
    let mut id_line: Option<String> = None;
    let mut before: Option<HashMap<String, String>> = None;
    let mut gapped: Vec<String> = Vec::new();
    let mut last_of: HashMap<String, (u64, u64)> = HashMap::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("id: ") {
            id_line = Some(id.to_owned());
            continue;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let topic = field(data, "topic").expect("every event names its topic");
        let Some(id) = id_line.take() else {
            // A gap: no `id:`; the topic may stand anywhere after it.
            assert!(
                data.contains("\"requested\""),
                "an event without id: {data}"
            );
            gapped.push(topic.to_owned());
            last_of.remove(topic);
            continue;
        };
        let msg_id = field(data, "id").expect("a message has its id");
        let pairs: Vec<(String, String)> = id
            .split(',')
            .map(|p| {
                let (t, i) = p.split_once('=').expect("TOPIC=ID");
                (t.to_owned(), i.to_owned())
            })
            .collect();
        let order: Vec<&str> = pairs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(order, opened.topics, "topics in the order subscribed: {id}");
        let now: HashMap<String, String> = pairs.into_iter().collect();
        assert_eq!(
            now[topic], msg_id,
            "the event's topic stands at its id: {id}"
        );
        if let Some(before) = &before {
            for (t, i) in &now {
                if t != topic && !gapped.contains(t) {
                    assert_eq!(&before[t], i, "{t} moved without an event: {id}");
                }
            }
        }
        let (epoch, seq) = seq_of(msg_id);
        if let Some(&(e, s)) = last_of.get(topic) {
            assert_eq!((epoch, seq), (e, s + 1), "{topic}: one after the other");
        }
        last_of.insert(topic.to_owned(), (epoch, seq));
        gapped.clear();
        before = Some(now);
    }
}

pub fn check(data: &[u8]) {
    for (opened, got) in play(data) {
        check_stream(&opened, &got);
    }
}

//! The Redis client and the broker's scripts against a real `redis-server`
//! (each test starts its own on a free loopback port; skipped when
//! `redis-server` is not installed).

#[path = "support/redis.rs"]
mod support;

use std::collections::BTreeSet;

use pushwire::hub::{Cursor, MessageId};
use pushwire::proto::redis::broker::{
    self, is_noscript, parse_entries, parse_live, parse_publish, parse_replay, parse_scan,
    HistoryLimits, PayloadKind, Script, TopicKeys,
};
use pushwire::proto::redis::follow;
use pushwire::proto::redis::{Protocol, RedisConfig, RedisError, RedisEvent, RequestId};
use pushwire::wire::resp::Value;
use support::{bulk, Client, RedisServer};

macro_rules! server {
    ($($arg:expr),*) => {
        match RedisServer::start_with(&[$($arg),*]) {
            Some(s) => s,
            None => return,
        }
    };
}

const HISTORY: HistoryLimits = HistoryLimits {
    max_len: 10_000,
    max_age_ms: 0,
};

fn ready(url: &str) -> Client {
    let mut c = Client::connect(url);
    c.wait_ready();
    c
}

/// Publishes through the script, falling back to EVAL on NOSCRIPT.
fn publish(
    c: &mut Client,
    script: &Script,
    topic: &str,
    event: Option<&str>,
    data: &str,
) -> MessageId {
    let cmd = broker::publish(script, topic, event, PayloadKind::Text, data, HISTORY);
    let reply = c.call(&cmd.args());
    let reply = if is_noscript(&reply) {
        let cmd = broker::publish_eval(script, topic, event, PayloadKind::Text, data, HISTORY);
        c.call(&cmd.args())
    } else {
        reply
    };
    parse_publish(&reply).unwrap()
}

fn replay(c: &mut Client, topic: &str, after: Option<u64>, count: usize) -> broker::Replay {
    let script = Script::replay();
    let reply = c.call(&broker::replay(&script, topic, after, count).args());
    let reply = if is_noscript(&reply) {
        c.call(&script.load().args());
        c.call(&broker::replay(&script, topic, after, count).args())
    } else {
        reply
    };
    parse_replay(&reply).unwrap()
}

#[test]
fn pipelines_1000_commands_and_matches_replies_in_order() {
    let server = server!();
    let mut c = ready(&server.url());
    assert_eq!(c.conn.protocol(), Some(Protocol::Resp3));
    let ids: Vec<RequestId> = (0..1000)
        .map(|_| c.conn.command(&[b"INCR", b"counter"]).unwrap())
        .collect();
    assert_eq!(c.conn.pending_len(), 1000);
    for (i, id) in ids.into_iter().enumerate() {
        assert_eq!(c.reply(id), Value::Integer(i as i64 + 1));
    }
    assert_eq!(c.conn.pending_len(), 0);
    // RESP3 types come through: a map from HGETALL, a double, a null.
    c.call(&[b"HSET", b"h", b"f", b"v"]);
    assert_eq!(
        c.call(&[b"HGETALL", b"h"]),
        Value::Map(vec![(bulk("f"), bulk("v"))])
    );
    c.call(&[b"ZADD", b"z", b"1.5", b"m"]);
    assert_eq!(c.call(&[b"ZSCORE", b"z", b"m"]), Value::Double(1.5));
    assert_eq!(c.call(&[b"GET", b"missing"]), Value::Null);
    assert!(c.call(&[b"NOSUCHCOMMAND"]).error_text().is_some());
}

#[test]
fn pubsub_pushes_on_resp3_share_the_connection_with_commands() {
    let server = server!();
    let mut sub = ready(&server.url());
    let mut publisher = ready(&server.url());
    sub.conn.subscribe(&[b"news"]).unwrap();
    assert_eq!(sub.subscribed(), b"news");
    assert_eq!(
        publisher.call(&[b"PUBLISH", b"news", b"hello"]),
        Value::Integer(1)
    );
    assert_eq!(sub.message(), (b"news".to_vec(), b"hello".to_vec()));
    // Commands still answer in order on the subscribed connection.
    assert_eq!(sub.call(&[b"PING"]), Value::Simple(b"PONG".to_vec()));
    sub.conn.unsubscribe(&[b"news"]).unwrap();
    sub.wait_for(|e| {
        matches!(e, pushwire::proto::redis::RedisEvent::Unsubscribed { .. }).then_some(())
    });
    assert_eq!(
        publisher.call(&[b"PUBLISH", b"news", b"nobody"]),
        Value::Integer(0)
    );
}

#[test]
fn pubsub_messages_on_resp2() {
    let server = server!();
    let mut sub = Client::resp2(&server.url());
    sub.wait_ready();
    assert_eq!(sub.conn.protocol(), Some(Protocol::Resp2));
    let mut publisher = ready(&server.url());
    sub.conn.subscribe(&[b"a", b"b"]).unwrap();
    let got: BTreeSet<Vec<u8>> = [sub.subscribed(), sub.subscribed()].into();
    assert_eq!(got, [b"a".to_vec(), b"b".to_vec()].into());
    for (ch, msg) in [("a", "1"), ("b", "2"), ("a", "3")] {
        publisher.call(&[b"PUBLISH", ch.as_bytes(), msg.as_bytes()]);
    }
    assert_eq!(sub.message(), (b"a".to_vec(), b"1".to_vec()));
    assert_eq!(sub.message(), (b"b".to_vec(), b"2".to_vec()));
    assert_eq!(sub.message(), (b"a".to_vec(), b"3".to_vec()));
    // PING is allowed while subscribed, and answers as an array there.
    assert_eq!(
        sub.call(&[b"PING"]),
        Value::Array(vec![bulk("pong"), bulk("")])
    );
}

#[test]
fn auth_and_select_in_the_handshake() {
    let server = server!("--requirepass", "s3cret");
    let url = |auth: &str, db: u32| format!("redis://{auth}@127.0.0.1:{}/{db}", server.port);
    let mut two = ready(&url(":s3cret", 2));
    two.call(&[b"SET", b"k", b"in-two"]);
    let mut zero = ready(&url("default:s3cret", 0));
    assert_eq!(zero.call(&[b"GET", b"k"]), Value::Null);
    zero.call(&[b"SELECT", b"2"]);
    assert_eq!(zero.call(&[b"GET", b"k"]), bulk("in-two"));
    // RESP2 sends AUTH and SELECT as commands of their own.
    let mut config = RedisConfig::from_url(&url(":s3cret", 2)).unwrap();
    config.resp3 = false;
    let mut old = Client::with_config(config);
    old.wait_ready();
    assert_eq!(old.call(&[b"GET", b"k"]), bulk("in-two"));

    let mut wrong = Client::connect(&url(":nope", 0));
    match wrong.failure() {
        RedisError::HandshakeRefused(text) => assert!(text.starts_with("WRONGPASS"), "{text}"),
        other => panic!("{other}"),
    }
    let mut none = Client::connect(&format!("redis://127.0.0.1:{}", server.port));
    // HELLO without AUTH on a server with a password: NOAUTH.
    match none.failure() {
        RedisError::HandshakeRefused(text) => assert!(text.starts_with("NOAUTH"), "{text}"),
        other => panic!("{other}"),
    }
}

#[test]
fn publish_script_gives_seq_1_to_n_under_concurrent_publishers() {
    let server = server!();
    let url = server.url();
    let keys = TopicKeys::new("race");
    let mut sub = ready(&url);
    sub.conn.subscribe(&[&keys.channel]).unwrap();
    sub.subscribed();

    const PUBLISHERS: usize = 4;
    const EACH: usize = 250;
    let threads: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let url = url.clone();
            std::thread::spawn(move || {
                let script = Script::publish();
                let mut c = ready(&url);
                // Load once, then pipeline every publish.
                c.call(&script.load().args());
                let ids: Vec<RequestId> = (0..EACH)
                    .map(|i| {
                        let data = format!("p{p}-{i}");
                        let cmd = broker::publish(
                            &script,
                            "race",
                            None,
                            PayloadKind::Text,
                            &data,
                            HISTORY,
                        );
                        c.conn.command(&cmd.args()).unwrap()
                    })
                    .collect();
                ids.into_iter()
                    .map(|id| parse_publish(&c.reply(id)).unwrap())
                    .collect::<Vec<MessageId>>()
            })
        })
        .collect();
    let ids: Vec<MessageId> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let epochs: BTreeSet<u64> = ids.iter().map(|id| id.epoch).collect();
    assert_eq!(epochs.len(), 1, "one history: {epochs:?}");
    let seqs: BTreeSet<u64> = ids.iter().map(|id| id.seq).collect();
    let n = (PUBLISHERS * EACH) as u64;
    assert_eq!(seqs, (1..=n).collect(), "every seq once, no hole");

    // Live messages arrive in seq order with no hole.
    for want in 1..=n {
        let (channel, payload) = sub.message();
        assert_eq!(channel, keys.channel);
        let record = parse_live(&payload).unwrap();
        assert_eq!(record.id.seq, want);
        assert_eq!(record.kind, PayloadKind::Text);
        assert!(record.data.starts_with('p'));
    }
    // And the stream holds them all, in the same order.
    let r = replay(&mut sub, "race", None, 2000);
    assert_eq!(r.last_seq, n);
    assert_eq!(r.oldest_seq, Some(1));
    assert_eq!(
        r.records.iter().map(|r| r.id.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
}

#[test]
fn noscript_falls_back_to_eval() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    let cmd = broker::publish(&script, "t", None, PayloadKind::Text, "x", HISTORY);
    assert!(is_noscript(&c.call(&cmd.args())));
    let id = publish(&mut c, &script, "t", None, "x");
    assert_eq!(id.seq, 1);
    // EVAL cached it: EVALSHA works from now on.
    assert_eq!(parse_publish(&c.call(&cmd.args())).unwrap().seq, 2);
    // Redis's own SHA1 of the script is ours.
    assert_eq!(
        c.call(&script.load().args()).as_bytes(),
        Some(script.sha1.as_bytes())
    );
}

#[test]
fn epoch_is_kept_when_the_stream_is_evicted() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    let first = (1..=3)
        .map(|i| publish(&mut c, &script, "t", None, &i.to_string()))
        .collect::<Vec<_>>();
    let keys = TopicKeys::new("t");
    // What eviction or expiry does to the stream; the meta key has no TTL.
    c.call(&[b"DEL", &keys.stream]);
    let next = publish(&mut c, &script, "t", None, "4");
    assert_eq!(next, first[0].with_seq(4), "same epoch, counting on");
    let r = replay(&mut c, "t", Some(1), 100);
    assert_eq!(
        (r.epoch, r.last_seq, r.oldest_seq),
        (Some(next.epoch), 4, Some(4))
    );
    assert_eq!(r.records.len(), 1);
}

#[test]
fn a_lost_meta_key_starts_a_new_epoch() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    for i in 1..=3 {
        publish(&mut c, &script, "t", None, &i.to_string());
    }
    let old = replay(&mut c, "t", None, 10);
    let keys = TopicKeys::new("t");
    c.call(&[b"DEL", &keys.meta]);
    assert_eq!(replay(&mut c, "t", None, 10).epoch, None);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let id = publish(&mut c, &script, "t", None, "new");
    assert_ne!(Some(id.epoch), old.epoch, "a new epoch, never a reused id");
    assert_eq!(id.seq, 1);
    let r = replay(&mut c, "t", None, 10);
    assert_eq!(r.epoch, Some(id.epoch));
    // The old history is gone with its epoch: no entry of it is relabelled.
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.records[0].data, "new");
}

#[test]
fn replay_after_a_cursor_with_xrange() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    let ids: Vec<MessageId> = (1..=10)
        .map(|i| {
            let event = (i % 2 == 0).then_some("even");
            publish(&mut c, &script, "t", event, &format!("line {i}\nsecond"))
        })
        .collect();
    let epoch = ids[0].epoch;
    let r = replay(&mut c, "t", Some(4), 100);
    assert_eq!(
        r.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        ids[4..].to_vec()
    );
    assert_eq!(r.records[0].event, None);
    assert_eq!(r.records[1].event.as_deref(), Some("even"));
    assert_eq!(r.records[0].data, "line 5\nsecond");
    // A page at a time.
    let page = replay(&mut c, "t", Some(4), 2);
    assert_eq!(
        page.records.iter().map(|r| r.id.seq).collect::<Vec<_>>(),
        [5, 6]
    );
    // Nothing after the newest.
    assert!(replay(&mut c, "t", Some(10), 100).records.is_empty());
    // The plain XRANGE builder reads the same entries, on RESP2 too.
    let mut old = Client::resp2(&server.url());
    old.wait_ready();
    for client in [&mut c, &mut old] {
        let reply = client.call(&broker::xrange_after("t", 7, 100).args());
        let records = parse_entries(&reply, epoch).unwrap();
        assert_eq!(
            records.iter().map(|r| r.id).collect::<Vec<_>>(),
            ids[7..].to_vec()
        );
    }
}

#[test]
fn history_is_trimmed_to_about_max_len() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    c.call(&script.load().args());
    let limits = HistoryLimits {
        max_len: 10,
        max_age_ms: 60_000,
    };
    let ids: Vec<RequestId> = (0..1000)
        .map(|i| {
            let cmd = broker::publish(
                &script,
                "t",
                None,
                PayloadKind::Json,
                &i.to_string(),
                limits,
            );
            c.conn.command(&cmd.args()).unwrap()
        })
        .collect();
    for id in ids {
        parse_publish(&c.reply(id)).unwrap();
    }
    let r = replay(&mut c, "t", None, 10_000);
    assert_eq!(r.last_seq, 1000);
    let oldest = r.oldest_seq.unwrap();
    // `~` trims whole nodes (100 entries by default): at least 10 kept,
    // never more than a node's worth beyond.
    assert!((1000 - 110..=991).contains(&oldest), "oldest {oldest}");
    assert_eq!(r.records.len() as u64, 1000 - oldest + 1);
    assert_eq!(r.records[0].kind, PayloadKind::Json);
    let keys = TopicKeys::new("t");
    let ttl = c.call(&[b"PTTL", &keys.stream]).as_int().unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "stream ttl {ttl}");
    assert_eq!(
        c.call(&[b"PTTL", &keys.meta]),
        Value::Integer(-1),
        "meta never expires"
    );
}

#[test]
fn scan_lists_topics_by_prefix() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    for t in ["news.eu", "news.us", "sport", "news"] {
        publish(&mut c, &script, t, None, "x");
    }
    let scan_all = |c: &mut Client, prefix: &str| {
        let mut cursor = 0;
        let mut topics = BTreeSet::new();
        loop {
            let (next, page) =
                parse_scan(&c.call(&broker::scan_topics(cursor, prefix, 2).args())).unwrap();
            topics.extend(page);
            if next == 0 {
                return topics;
            }
            cursor = next;
        }
    };
    assert_eq!(
        scan_all(&mut c, "news."),
        ["news.eu", "news.us"].map(String::from).into()
    );
    assert_eq!(scan_all(&mut c, "").len(), 4);
}

/// A subscriber as the hub will run one: SUBSCRIBE first, then the
/// follower's replays on the same (RESP3) connection, live messages
/// through it, and a resubscribe after the connection is lost.
struct Subscriber {
    client: Client,
    follower: follow::TopicFollower,
    script: Script,
    topic: String,
    replay: Option<RequestId>,
    seen: Vec<follow::FollowEvent>,
}

impl Subscriber {
    fn start(url: &str, topic: &str, cursor: Cursor) -> Subscriber {
        let mut client = ready(url);
        let script = Script::replay();
        client.call(&script.load().args());
        client
            .conn
            .subscribe(&[&TopicKeys::new(topic).channel])
            .unwrap();
        client.subscribed();
        Subscriber {
            client,
            follower: follow::TopicFollower::new(cursor, Default::default()),
            script,
            topic: topic.to_string(),
            replay: None,
            seen: Vec::new(),
        }
    }

    /// One turn: send a replay if one is asked for, handle what came.
    fn step(&mut self) {
        if self.replay.is_none() && self.client.conn.is_ready() {
            if let Some(req) = self.follower.poll_request() {
                let cmd = broker::replay(&self.script, &self.topic, req.after, req.count);
                self.replay = Some(self.client.conn.command(&cmd.args()).unwrap());
            }
        }
        self.client.step();
        while let Some(event) = self.client.events.pop_front() {
            match event {
                RedisEvent::Message { payload, .. } => {
                    self.follower.handle_live(parse_live(&payload).unwrap())
                }
                RedisEvent::Reply { id, value } if Some(id) == self.replay => {
                    self.replay = None;
                    self.follower.handle_replay(parse_replay(&value).unwrap());
                }
                RedisEvent::Subscribed { .. } => self.follower.handle_resubscribed(),
                RedisEvent::Failed(_) => {
                    if self.replay.take().is_some() {
                        self.follower.handle_replay_failed();
                    }
                    self.client.reconnect();
                }
                _ => {}
            }
        }
        while let Some(e) = self.follower.poll_event() {
            self.seen.push(e);
        }
    }

    fn run_until_seq(&mut self, seq: u64) {
        let deadline = std::time::Instant::now() + support::PATIENCE;
        while self.follower.last_id().is_none_or(|id| id.seq < seq) {
            assert!(
                std::time::Instant::now() < deadline,
                "stuck at {:?}",
                self.follower.last_id()
            );
            self.step();
        }
    }
}

#[test]
fn a_follower_replays_goes_live_and_fills_what_pubsub_missed() {
    let server = server!();
    let mut publisher = ready(&server.url());
    let script = Script::publish();
    publish_range(&mut publisher, &script, 1..=100);
    let epoch = publish(&mut publisher, &script, "f", None, "101").epoch;

    let mut sub = Subscriber::start(
        &server.url(),
        "f",
        Cursor::After(MessageId { epoch, seq: 50 }),
    );
    // Published while the replay is being asked for and read.
    publish_range(&mut publisher, &script, 102..=150);
    sub.run_until_seq(150);

    // The subscriber's connection drops; what is published meanwhile never
    // comes by pub/sub.
    sub.client.stream = None;
    publish_range(&mut publisher, &script, 151..=200);
    sub.client
        .conn
        .handle_io_error(std::io::ErrorKind::ConnectionReset);
    sub.run_until_seq(200);
    publish_range(&mut publisher, &script, 201..=210);
    sub.run_until_seq(210);

    let seqs: Vec<u64> = sub
        .seen
        .iter()
        .map(|e| match e {
            follow::FollowEvent::Message(r) => {
                assert_eq!(r.id.epoch, epoch);
                assert_eq!(r.data, r.id.seq.to_string());
                r.id.seq
            }
            gap => panic!("no gap expected: {gap:?}"),
        })
        .collect();
    assert_eq!(seqs, (51..=210).collect::<Vec<_>>(), "each once, in order");
}

fn publish_range(c: &mut Client, script: &Script, seqs: std::ops::RangeInclusive<u64>) {
    for s in seqs {
        let id = publish(c, script, "f", None, &s.to_string());
        assert_eq!(id.seq, s);
    }
}

#[test]
fn deleting_a_topic_starts_a_new_epoch() {
    let server = server!();
    let mut c = ready(&server.url());
    let script = Script::publish();
    let old = publish(&mut c, &script, "gone", None, "1");
    publish(&mut c, &script, "gone", None, "2");
    assert_eq!(
        c.call(&broker::delete_topic("gone").args()),
        Value::Integer(2)
    );
    assert_eq!(replay(&mut c, "gone", None, 10).epoch, None);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let new = publish(&mut c, &script, "gone", None, "fresh");
    assert_ne!(new.epoch, old.epoch);
    assert_eq!(new.seq, 1);
}

#[test]
fn follow_and_delete_scripts_create_a_meta_key_that_lives_on_a_timer_until_a_publish() {
    let server = server!();
    let mut c = ready(&server.url());
    let follow = Script::new(broker::FOLLOW_SCRIPT);
    let keys = TopicKeys::new("ttl");
    let call = |c: &mut Client, script: &Script, cmd: broker::Command| {
        let reply = c.call(&cmd.args());
        if is_noscript(&reply) {
            c.call(&script.load().args());
            c.call(&cmd.args())
        } else {
            reply
        }
    };
    // A topic Redis never saw: a fresh epoch at seq 0, on a timer.
    let r = call(
        &mut c,
        &follow,
        broker::follow(&follow, "ttl", None, 10, 60_000, false),
    );
    let r = parse_replay(&r).unwrap();
    let epoch = r.epoch.unwrap();
    assert_eq!((r.last_seq, r.oldest_seq, r.records.len()), (0, None, 0));
    let ttl = c.call(&[b"PTTL", &keys.meta]).as_int().unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
    // Reading it again keeps the same epoch (and the timer running).
    let again = call(
        &mut c,
        &follow,
        broker::follow(&follow, "ttl", Some(0), 10, 60_000, false),
    );
    assert_eq!(parse_replay(&again).unwrap().epoch, Some(epoch));
    // The first publish continues that epoch and ends the timer.
    let script = Script::publish();
    let id = publish(&mut c, &script, "ttl", None, "one");
    assert_eq!(id, MessageId { epoch, seq: 1 });
    assert_eq!(c.call(&[b"PTTL", &keys.meta]).as_int(), Some(-1));
    // DELETE: entries dropped, a new epoch at 0, the notice published.
    let mut sub = ready(&server.url());
    sub.conn.subscribe(&[&keys.channel]).unwrap();
    assert_eq!(sub.subscribed(), keys.channel);
    let delete = Script::new(broker::DELETE_SCRIPT);
    let r = call(
        &mut c,
        &delete,
        broker::delete(&delete, "ttl", 60_000, false),
    );
    let (dropped, last) = broker::parse_delete(&r).unwrap().unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(last.seq, 0);
    assert_ne!(last.epoch, epoch);
    assert_eq!(
        sub.message(),
        (keys.channel.clone(), broker::DELETED_NOTICE.to_vec())
    );
    let r = call(
        &mut c,
        &delete,
        broker::delete(&delete, "never", 60_000, false),
    );
    assert_eq!(broker::parse_delete(&r).unwrap(), None);
    // Topic info: position, length, and other nodes' presence summed.
    let presence = Script::new(broker::PRESENCE_SCRIPT);
    let info = Script::new(broker::TOPIC_INFO_SCRIPT);
    for (node, counts) in [("n1", [1, 2, 0, 0, 0]), ("n2", [3, 0, 0, 1, 0])] {
        let cmd = broker::presence(&presence, "ttl", node, Some(counts), 10_000, false);
        call(&mut c, &presence, cmd);
    }
    let r = call(&mut c, &info, broker::topic_info(&info, "ttl", "n2", false));
    let state = broker::parse_topic_info(&r).unwrap().unwrap();
    assert_eq!(
        (state.epoch, state.last_seq, state.kept),
        (last.epoch, 0, 0)
    );
    assert_eq!(
        state.others,
        [1, 2, 0, 0, 0],
        "n2 asked: its own entry is left out"
    );
    let cmd = broker::presence(&presence, "ttl", "n1", None, 10_000, false);
    call(&mut c, &presence, cmd);
    let r = call(&mut c, &info, broker::topic_info(&info, "ttl", "n2", false));
    assert_eq!(
        broker::parse_topic_info(&r).unwrap().unwrap().others,
        [0; 5]
    );
    let r = call(
        &mut c,
        &info,
        broker::topic_info(&info, "never", "n2", false),
    );
    assert_eq!(broker::parse_topic_info(&r).unwrap(), None);
}

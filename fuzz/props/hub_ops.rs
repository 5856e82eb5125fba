//! Properties of the hub's bookkeeping (`hub/mod.rs`) under any sequence
//! of publishes, replays, subscriptions, deletes and timeouts, with small
//! count, byte and age limits so that every kind of eviction happens.
//!
//! After every step:
//! - the hub's totals are the sums of its topics' (`stats` against
//!   `topics`), and within the limits: no topic over
//!   `history_bytes_per_topic` or `history_messages`, the hub not over
//!   `history_bytes_total`;
//! - each topic's kept messages are consecutive, end at its `last_id`,
//!   and start at its `first_id`;
//! - a reader resuming from any id ever issued either gets the very next
//!   message and no gap, or a gap and everything kept — never a silent
//!   skip (DESIGN.md "Cursors"), whichever limit evicted the messages;
//! - a replay within a `ReplayLimit` holds at most its messages, and at
//!   most its bytes unless it is a single message.
//!
//! Input layout: a sequence of two-byte steps, `op` and `arg`.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use pushwire::hub::{
    Cursor, Hub, HubLimits, MessageId, PayloadKind, ReplayLimit, TopicName, Transport,
};

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];

pub fn check(data: &[u8]) {
    let limits = HubLimits {
        history_messages: 6,
        history_age: Duration::from_secs(10),
        max_topics: 3,
        max_message_bytes: 200,
        history_bytes_per_topic: 2_500,
        history_bytes_total: 5_000,
    };
    let mut hub = Hub::new(limits.clone(), 1_000_000);
    let t0 = Instant::now();
    let mut now = t0;
    // Every id the hub issued, per topic index.
    let mut issued: Vec<Vec<MessageId>> = vec![Vec::new(); TOPICS.len()];
    for step in data.chunks_exact(2) {
        let (op, arg) = (step[0], step[1]);
        let index = usize::from(op >> 4) % TOPICS.len();
        let topic = TopicName::parse(TOPICS[index]).unwrap();
        match op % 8 {
            0..=2 => {
                let text = "x\n\"".repeat(usize::from(arg) % 70);
                let kind = PayloadKind::Text;
                if let Ok(m) = hub.publish(&topic, None, &text, kind, now) {
                    issued[index].push(m.id);
                }
            }
            3 => {
                let limit = ReplayLimit {
                    messages: usize::from(arg % 5),
                    bytes: usize::from(arg) * 2,
                };
                if let Ok(r) = hub.replay(&topic, &Cursor::Earliest, "", now, limit) {
                    assert!(r.messages.len() <= limit.messages);
                    let bytes: usize = r.messages.iter().map(|m| m.data().len()).sum();
                    assert!(r.messages.len() <= 1 || bytes <= limit.bytes);
                }
            }
            4 => {
                let _ = hub.subscribe(
                    &topic,
                    usize::from(arg % 4),
                    Transport::ALL[usize::from(arg) % 5],
                );
            }
            5 => hub.unsubscribe(&topic, usize::from(arg % 4)),
            6 => {
                hub.delete(&topic);
            }
            _ => {
                now += Duration::from_millis(u64::from(arg) * 50);
                hub.handle_timeout(now);
            }
        }
        check_invariants(&mut hub, &limits, &issued, now);
    }
}

fn check_invariants(hub: &mut Hub, limits: &HubLimits, issued: &[Vec<MessageId>], now: Instant) {
    let infos = hub.topics("", None, usize::MAX);
    let stats = hub.stats();
    assert_eq!(stats.topics, infos.len());
    assert_eq!(
        stats.messages,
        infos.iter().map(|i| i.kept_messages).sum::<usize>()
    );
    assert_eq!(
        stats.kept_bytes,
        infos.iter().map(|i| i.kept_bytes).sum::<usize>()
    );
    let subscribers: usize = infos
        .iter()
        .map(|i| i.subscribers_by_transport.total())
        .sum();
    assert_eq!(stats.subscribers, subscribers);
    assert!(stats.kept_bytes <= limits.history_bytes_total);
    for info in &infos {
        assert!(info.kept_bytes <= limits.history_bytes_per_topic);
        assert!(info.kept_messages <= limits.history_messages);
        assert_eq!(info.kept_messages == 0, info.kept_bytes == 0);
        assert_eq!(hub.topic_info(&info.name).as_ref(), Some(info));
        let r = hub
            .replay(&info.name, &Cursor::Earliest, "", now, ReplayLimit::ALL)
            .unwrap();
        assert_eq!(r.messages.len(), info.kept_messages);
        assert_eq!(r.messages.first().map(|m| m.id), info.first_id);
        for (k, m) in r.messages.iter().enumerate() {
            assert_eq!(m.id.epoch, info.epoch);
            assert_eq!(
                m.id.seq + (info.kept_messages - k) as u64 - 1,
                info.last_id.seq
            );
        }
        let index = TOPICS
            .iter()
            .position(|t| *t == info.name.as_str())
            .unwrap();
        for &id in &issued[index] {
            let text = id.to_string();
            let r = hub
                .replay(&info.name, &Cursor::After(id), &text, now, ReplayLimit::ALL)
                .unwrap();
            match &r.gap {
                None => {
                    // Nothing skipped: the next message, or up to date.
                    assert_eq!(id.epoch, info.epoch);
                    match r.messages.first() {
                        Some(m) => assert_eq!(m.id.seq, id.seq + 1),
                        None => assert_eq!(id, info.last_id),
                    }
                }
                Some(gap) => {
                    assert_eq!(gap.requested, text);
                    assert_eq!(gap.oldest, info.first_id);
                    assert_eq!(r.messages.len(), info.kept_messages);
                }
            }
        }
    }
}

//! Memory per kept payload byte: 1000 messages of 60 KB of plain text,
//! no subscribers, RSS read from `/proc/self/statm` before and after.
//!
//! Run alone (other tests in the same process would disturb RSS):
//! `cargo test --test hub_memory -- --ignored --nocapture`

use std::time::Instant;

use pushwire::hub::{Cursor, Hub, HubLimits, PayloadKind, TopicName, WireFormat};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // statm counts pages; 4 KiB on the x86-64 and aarch64 Linux we run on.
    resident * 4096
}

#[test]
#[ignore = "measures process RSS: run alone with --ignored"]
fn kept_history_costs_about_its_payload() {
    const N: usize = 1000;
    const SIZE: usize = 60_000;
    let cfg = pushwire::Config {
        max_message_bytes: SIZE,
        ..Default::default()
    };
    let mut hub = Hub::new(HubLimits::from_config(&cfg), 1);
    let now = Instant::now();
    let payload = "x".repeat(SIZE);
    let topic = TopicName::parse("mem").unwrap();
    let before = rss_bytes();
    for _ in 0..N {
        hub.publish(&topic, None, &payload, PayloadKind::Text, now)
            .unwrap();
    }
    let after = rss_bytes();
    let grown = after.saturating_sub(before);
    let ratio = grown as f64 / (N * SIZE) as f64;
    eprintln!(
        "kept {} bytes of payload; RSS grew {} bytes: {ratio:.2}x",
        N * SIZE,
        grown
    );
    assert_eq!(hub.stats().messages, N);
    // The payload once, and little else.
    assert!(ratio <= 1.3, "{ratio:.2}x");

    // Subscribers of every transport arrive and replay everything: plain
    // text needs no transformed copy, so only small prefixes are built.
    let replay = hub
        .replay(
            &topic,
            &Cursor::Earliest,
            "",
            now,
            pushwire::hub::ReplayLimit::ALL,
        )
        .unwrap();
    let mut wire = 0;
    for message in &replay.messages {
        for format in WireFormat::ALL {
            wire += message.wire_len(format);
        }
    }
    let grown = rss_bytes().saturating_sub(before);
    let ratio = grown as f64 / (N * SIZE) as f64;
    eprintln!(
        "after building every wire form ({wire} bytes on the wire): RSS grew {grown} bytes: {ratio:.2}x"
    );
    assert!(ratio <= 1.3, "{ratio:.2}x");
}

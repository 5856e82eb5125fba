//! `--trace` and `--access-log` name each connection by a serial that is
//! never reused, though the core's connection ids (slab slots) are: two
//! connections one after the other in the same slot are told apart.

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::Config;

fn harness() -> Harness {
    Harness::new(Config {
        trace: true,
        access_log: true,
        keep_alive_timeout: Duration::from_secs(60),
        ..Config::default()
    })
}

fn log(h: &mut Harness) -> Vec<String> {
    h.node.poll_log().collect()
}

#[test]
fn connections_one_after_the_other_in_one_slot_have_different_ids() {
    let mut h = harness();
    let first = h.connect();
    h.send(first, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    h.eof(first);
    assert!(h.closed(first));
    let second = h.connect();
    assert_eq!(first, second, "the slot is reused");
    h.send(second, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    let lines = log(&mut h);
    let has = |want: &str| lines.iter().any(|l| l.contains(want));
    assert!(has("[1] accepted"), "{lines:?}");
    assert!(has("[2] accepted"), "{lines:?}");
    assert!(has("[1] GET /healthz HTTP/1.1"), "{lines:?}");
    // Routed answers carry their status, under the connection's serial.
    assert!(has("[1]     answered 200"), "{lines:?}");
    assert!(has("[2]     answered 404"), "{lines:?}");
    assert!(!has("[2] GET /healthz"), "{lines:?}");
    // The access log names them the same way.
    assert!(has("[1] - GET /healthz 200"), "{lines:?}");
    assert!(has("[2] - GET /nope 404"), "{lines:?}");
}

#[test]
fn published_lines_name_the_publishing_connection() {
    let mut h = harness();
    let sub = h.connect();
    h.send(sub, b"GET /topics/t/sse HTTP/1.1\r\nHost: x\r\n\r\n");
    let publisher = h.connect();
    h.send(
        publisher,
        b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    );
    h.publish("t", "from outside");
    let lines = log(&mut h);
    let published: Vec<&String> = lines.iter().filter(|l| l.contains(" published ")).collect();
    assert_eq!(published.len(), 2, "{lines:?}");
    assert!(published[0].starts_with("[2] published "), "{published:?}");
    assert!(published[1].starts_with("[-] published "), "{published:?}");
    // Deliveries name the subscriber.
    assert!(
        lines.iter().any(|l| l.starts_with("[1] -> id ")),
        "{lines:?}"
    );
}

#[test]
fn serials_keep_counting_over_many_reused_slots() {
    let mut h = harness();
    for _ in 0..5 {
        let c = h.connect();
        h.eof(c);
    }
    let lines = log(&mut h);
    let accepted: Vec<&String> = lines.iter().filter(|l| l.ends_with(" accepted")).collect();
    assert_eq!(
        accepted,
        [
            "[1] accepted",
            "[2] accepted",
            "[3] accepted",
            "[4] accepted",
            "[5] accepted"
        ]
    );
}

#[test]
fn a_broken_request_is_traced_under_its_connection() {
    let mut h = harness();
    let c = h.connect();
    h.send(
        c,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    );
    assert!(h.text(c).starts_with("HTTP/1.1 400 "), "{}", h.text(c));
    let lines = log(&mut h);
    assert!(
        lines.iter().any(|l| l.starts_with("[1]     error 400: ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("[1] Http -> Closing")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("[-]")), "{lines:?}");
}

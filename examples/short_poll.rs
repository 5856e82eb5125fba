//! Short polling: ask `GET /topics/{topic}/messages?after=<cursor>` at a
//! fixed interval and print what is new. The simplest transport there is
//! — any HTTP client, any proxy — and the most wasteful: most answers are
//! empty, and a message waits on average half an interval to be seen.
//!
//! ```text
//! cargo run --example short_poll -- --demo
//! ```
//! starts its own server, publishes a reading every 700 ms for a few
//! seconds and polls every 500 ms, printing each poll (empty ones
//! included) and the cost at the end. It stops by itself.
//!
//! Against a running server (`cargo run -- --listen 127.0.0.1:8080`):
//! ```text
//! cargo run --example short_poll -- --addr 127.0.0.1:8080 --topic news --interval 1000
//! curl -d 'hello' http://127.0.0.1:8080/topics/news      # in another terminal
//! ```

use std::thread;
use std::time::{Duration, Instant};

use pushwire::client::{ClientError, HttpClient};
use pushwire::Config;

#[path = "support/mod.rs"]
mod support;
use support::{Args, DemoServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse(
        "usage: short_poll [--addr ADDR] [--topic T] [--interval MS] | --demo",
        "news",
    )?;
    if a.demo {
        return run_demo();
    }
    println!(
        "polling http://{}/topics/{}/messages every {:?}; Ctrl-C stops",
        a.addr, a.topic, a.interval
    );
    let mut http = HttpClient::new(a.addr);
    poll_loop(&mut http, &a.topic, a.interval, None, |_| {})?;
    Ok(())
}

/// Polls every `interval` until `until` passes (forever without one).
/// The first request has no cursor, so it returns everything the topic
/// keeps; each answer's `last_id` is the next request's cursor.
fn poll_loop(
    http: &mut HttpClient,
    topic: &str,
    interval: Duration,
    until: Option<Instant>,
    mut on_poll: impl FnMut(usize),
) -> Result<(), ClientError> {
    let mut cursor: Option<String> = None;
    let mut n = 0;
    let mut next = Instant::now();
    while until.is_none_or(|u| Instant::now() < u) {
        let before = http.stats().bytes_received;
        match http.messages(topic, cursor.as_deref()) {
            Ok(batch) => {
                n += 1;
                let bytes = http.stats().bytes_received - before;
                if batch.gap {
                    println!("poll {n:>3}: (gap: messages were lost between polls)");
                }
                if batch.messages.is_empty() {
                    println!("poll {n:>3}: nothing new        ({bytes} bytes)");
                }
                for m in &batch.messages {
                    println!("poll {n:>3}: {:<16} {}  ({bytes} bytes)", m.id, m.data);
                }
                on_poll(batch.messages.len());
                cursor = Some(batch.last_id);
            }
            Err(e) if until.is_none() => eprintln!("(poll failed: {e})"),
            Err(e) => return Err(e),
        }
        // A fixed rhythm, however long the request took.
        next += interval;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

fn run_demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = DemoServer::start(Config::default())?;
    println!(
        "demo server on {}: a reading every 700 ms, a poll every 500 ms\n",
        server.addr
    );

    const READINGS: usize = 6;
    let publisher = {
        let handle = server.handle.clone();
        thread::spawn(move || {
            for i in 0..READINGS {
                thread::sleep(Duration::from_millis(700));
                let reading = format!("sensor reading {}: {:.1} °C", i + 1, 20.0 + i as f64 * 0.3);
                handle.publish("sensor", None, &reading).expect("publish");
            }
        })
    };
    let mut http = HttpClient::new(server.addr);
    let (mut received, mut empty) = (0, 0);
    let until = Instant::now() + Duration::from_millis(700 * READINGS as u64 + 800);
    poll_loop(
        &mut http,
        "sensor",
        Duration::from_millis(500),
        Some(until),
        |k| {
            received += k;
            empty += usize::from(k == 0);
        },
    )?;
    publisher.join().unwrap();
    server.stop()?;
    let s = http.stats();
    println!(
        "\n{} requests for {received}/{READINGS} readings ({empty} answered nothing new); \
         {} bytes received, {} sent, over {} connection(s)",
        s.requests, s.bytes_received, s.bytes_sent, s.connections
    );
    Ok(())
}

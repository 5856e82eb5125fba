//! A terminal chat over long polling: each line you type is a `POST
//! /topics/{topic}`, and a loop of `GET /topics/{topic}/poll?after=<cursor>`
//! receives. Each poll is parked by the server until a message comes (or
//! its timeout passes) and answers with every message after the cursor;
//! its `last_id` is the next cursor. So a client that was away simply
//! resumes: the cursor is in every request, no reconnect logic is needed.
//!
//! ```text
//! cargo run --example long_poll_chat -- --demo
//! ```
//! starts its own server and two bots who chat for a few seconds, then
//! prints how many requests each made (one per answer, plus the posts).
//!
//! Against a running server (`cargo run -- --listen 127.0.0.1:8080`):
//! ```text
//! cargo run --example long_poll_chat -- --addr 127.0.0.1:8080 --name ann
//! ```
//! It shares the default topic `lobby` and the line format with `ws_chat`
//! and the browser chat at http://127.0.0.1:8080/demo/chat: the transports
//! are interchangeable views of one topic. See a request being parked with
//! `curl 'http://127.0.0.1:8080/topics/lobby/poll?timeout=60'`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use pushwire::client::{Batch, ClientError, HttpClient, Stats};
use pushwire::Config;

#[path = "support/mod.rs"]
mod support;
use support::{chat_line, render, Args, DemoServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse(
        "usage: long_poll_chat [--addr ADDR] [--topic T] [--name N] | --demo",
        "lobby",
    )?;
    if a.demo {
        return run_demo();
    }
    interactive(a.addr, a.topic, a.name)
}

fn show(who: &str, batch: &Batch) {
    if batch.gap {
        println!("{who}(gap: some messages are no longer kept)");
    }
    for m in &batch.messages {
        println!("{who}{:<16} {}", m.id, render(&m.data));
    }
}

fn interactive(
    addr: SocketAddr,
    topic: String,
    name: String,
) -> Result<(), Box<dyn std::error::Error>> {
    println!("{name} on http://{addr}/topics/{topic} — type a line and Enter; Ctrl-D leaves");
    // Sending and receiving are two independent request streams, on two
    // connections: a parked poll occupies its connection until answered.
    let sender_topic = topic.clone();
    thread::spawn(move || {
        let mut http = HttpClient::new(addr);
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if let Err(e) = http.post(&sender_topic, None, &chat_line(&name, &line)) {
                eprintln!("(not sent: {e})");
            }
        }
        std::process::exit(0);
    });
    let mut http = HttpClient::new(addr);
    // No cursor at first: the first poll waits for the next message.
    let mut cursor: Option<String> = None;
    loop {
        match http.poll(&topic, cursor.as_deref(), 30) {
            Ok(batch) => {
                show("", &batch);
                cursor = Some(batch.last_id);
            }
            Err(e) => {
                eprintln!("(poll failed: {e}; retrying in 1 s)");
                thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn run_demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = DemoServer::start(Config::default())?;
    let addr = server.addr;
    println!("demo server on {addr}; alice and bob chat on /topics/demo by POST + long poll\n");

    let start = Instant::now();
    let end = Duration::from_millis(3500);
    let alice = vec![
        (300, "hello bob"),
        (700, "long polls are parked until something happens"),
        (1800, "(a quiet second: our parked polls just waited)"),
        (2600, "bye!"),
    ];
    let bob = vec![
        (450, "hi alice"),
        (900, "and every answer carries the cursor for the next poll"),
        (2700, "bye"),
    ];
    let said = alice.len() + bob.len();
    let a = thread::spawn(move || bot(addr, "alice", alice, start, end));
    let b = thread::spawn(move || bot(addr, "bob", bob, start, end));
    let (a, b) = (a.join().unwrap()?, b.join().unwrap()?);
    server.stop()?;
    println!("\n{said} lines said.");
    for (name, (received, polls, expired, posts)) in [("alice", a), ("bob", b)] {
        println!(
            "{name:>5}: received {received}; {} long polls ({expired} expired empty), \
             {} posts; {} bytes received in all",
            polls.requests,
            posts.requests,
            polls.bytes_received + posts.bytes_received
        );
    }
    Ok(())
}

/// One chatter: a poster following `script` and a poller running until
/// `end`. Returns (messages received, poller stats, expired polls, poster
/// stats).
fn bot(
    addr: SocketAddr,
    name: &'static str,
    script: Vec<(u64, &'static str)>,
    start: Instant,
    end: Duration,
) -> Result<(usize, Stats, u64, Stats), ClientError> {
    let poster = thread::spawn(move || -> Result<Stats, ClientError> {
        let mut http = HttpClient::new(addr);
        for (at, line) in script {
            thread::sleep(Duration::from_millis(at).saturating_sub(start.elapsed()));
            http.post("demo", None, &chat_line(name, line))?;
        }
        Ok(http.stats())
    });
    let who = format!("[{name:>5} sees] ");
    let mut http = HttpClient::new(addr);
    // `earliest`: everything the topic holds, then live. (The poster may
    // already have spoken by the time this first poll goes out.)
    let mut cursor = "earliest".to_string();
    let (mut received, mut expired) = (0, 0);
    while start.elapsed() < end {
        // A short timeout, so the demo can end on time.
        let batch = http.poll("demo", Some(&cursor), 1)?;
        if batch.timeout {
            expired += 1;
        }
        show(&who, &batch);
        received += batch.messages.len();
        cursor = batch.last_id;
    }
    let posts = poster.join().unwrap()?;
    Ok((received, http.stats(), expired, posts))
}

//! A terminal chat over WebSocket: every line you type is a text frame to
//! `/topics/{topic}/ws`, and every message on the topic (yours included)
//! comes back as a frame `{"id","event","data"}`. When the connection
//! drops, the client reconnects with `?after=<last id seen>` and the server
//! replays what it missed — no message lost, none twice.
//!
//! ```text
//! cargo run --example ws_chat -- --demo
//! ```
//! starts its own server and two bots, alice and bob, who chat for a few
//! seconds; bob drops his connection halfway and resumes by his cursor,
//! so the lines he missed are replayed to him. Nothing else is needed.
//!
//! Against a running server (`cargo run -- --listen 127.0.0.1:8080`):
//! ```text
//! cargo run --example ws_chat -- --addr 127.0.0.1:8080 --name ann
//! cargo run --example ws_chat -- --name bea          # in a second terminal
//! ```
//! and type. The default topic is `lobby`, the browser chat's default
//! room, and lines are sent as it sends them (`{"name","text","from"}`),
//! so http://127.0.0.1:8080/demo/chat joins the same conversation, and so
//! does `long_poll_chat`. `curl -N http://127.0.0.1:8080/topics/lobby/sse`
//! listens in; `curl -d hi http://127.0.0.1:8080/topics/lobby` speaks.
//! Ctrl-D (end of input) leaves with a clean close handshake.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::mpsc::{self, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use pushwire::client::{ClientError, Delivery, WsClient, WsMessage};
use pushwire::Config;

#[path = "support/mod.rs"]
mod support;
use support::{chat_line, render, Args, DemoServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse(
        "usage: ws_chat [--addr ADDR] [--topic T] [--name N] | --demo",
        "lobby",
    )?;
    if a.demo {
        return run_demo();
    }
    interactive(a.addr, &a.topic, &a.name)
}

/// One participant's connection: the socket, when there is one, and the
/// cursor to resume from when there is not.
struct Chat {
    addr: SocketAddr,
    topic: String,
    /// The id of the last message received: the `?after=` of a reconnect.
    last_id: Option<String>,
    ws: Option<WsClient>,
}

impl Chat {
    fn new(addr: SocketAddr, topic: &str) -> Chat {
        Chat {
            addr,
            topic: topic.to_string(),
            last_id: None,
            ws: None,
        }
    }

    /// Connects, resuming after the last message seen (if any).
    fn connect(&mut self) -> Result<(), ClientError> {
        let mut target = format!("/topics/{}/ws", self.topic);
        if let Some(id) = &self.last_id {
            target.push_str(&format!("?after={id}"));
        }
        self.ws = Some(WsClient::connect(self.addr, &target)?);
        Ok(())
    }

    fn say(&mut self, text: &str) -> Result<(), ClientError> {
        match self.ws.as_mut() {
            Some(ws) => ws.send_text(text),
            None => Err(ClientError::Closed),
        }
    }

    /// Hangs up without a goodbye, as a dropped network would.
    fn drop_connection(&mut self) {
        self.ws = None;
    }

    /// Receives for up to `wait`; returns what came. An error means the
    /// connection is gone (and `self.ws` is `None`): reconnect to resume.
    fn receive(&mut self, wait: Duration) -> Result<Vec<Delivery>, ClientError> {
        let mut got = Vec::new();
        let Some(ws) = self.ws.as_mut() else {
            return Err(ClientError::Closed);
        };
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(got);
            }
            ws.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            match ws.recv() {
                Ok(WsMessage::Text(text)) => {
                    let d = Delivery::from_json(&text)?;
                    if let Delivery::Message(m) = &d {
                        self.last_id = Some(m.id.clone());
                    }
                    got.push(d);
                }
                Ok(WsMessage::Binary(_)) => {}
                Ok(WsMessage::Close(why)) => {
                    self.ws = None;
                    eprintln!("server closed the connection: {why:?}");
                    return Err(ClientError::Closed);
                }
                Err(e) if e.is_timeout() => return Ok(got),
                Err(e) => {
                    self.ws = None;
                    return Err(e);
                }
            }
        }
    }
}

fn show(who: &str, d: &Delivery) {
    match d {
        Delivery::Message(m) => println!("{who}{:<16} {}", m.id, render(&m.data)),
        Delivery::Gap { requested, oldest } => {
            println!("{who}(gap: messages after {requested} are gone; resuming at {oldest:?})")
        }
    }
}

fn interactive(
    addr: SocketAddr,
    topic: &str,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    // Stdin is read by its own thread: the main thread waits on the socket.
    let (tx, lines) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut chat = Chat::new(addr, topic);
    println!("{name} on ws://{addr}/topics/{topic}/ws — type a line and Enter; Ctrl-D leaves");
    loop {
        if chat.ws.is_none() {
            match chat.connect() {
                Ok(()) => println!(
                    "(connected{})",
                    chat.last_id
                        .as_deref()
                        .map(|id| format!(", resuming after {id}"))
                        .unwrap_or_default()
                ),
                Err(e) => {
                    eprintln!("(cannot connect: {e}; retrying in 1 s)");
                    thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        // Lines typed while disconnected waited in the channel.
        loop {
            match lines.try_recv() {
                Ok(line) => {
                    if let Err(e) = chat.say(&chat_line(name, &line)) {
                        eprintln!("(send failed: {e})");
                        chat.drop_connection();
                        break;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if let Some(ws) = chat.ws.take() {
                        ws.close(1000, "bye")?;
                    }
                    return Ok(());
                }
            }
        }
        match chat.receive(Duration::from_millis(100)) {
            Ok(got) => got.iter().for_each(|d| show("", d)),
            Err(e) => eprintln!("(connection lost: {e}; reconnecting)"),
        }
    }
}

/// What a demo bot does at a moment of its script.
enum Step {
    Say(&'static str),
    /// Hang up without a close handshake.
    Drop,
    /// Connect again, `?after=` the last id seen.
    Reconnect,
}

fn run_demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = DemoServer::start(Config::default())?;
    let addr = server.addr;
    println!("demo server on {addr}; alice and bob chat on /topics/demo/ws\n");

    let start = Instant::now();
    let alice = [
        (300, Step::Say("hello bob")),
        (700, Step::Say("how is the weather?")),
        (1500, Step::Say("(bob is away) I keep talking")),
        (1800, Step::Say("bob, you will read this later")),
        (2700, Step::Say("welcome back!")),
    ];
    let bob = [
        (450, Step::Say("hi alice")),
        (900, Step::Say("sunny. brb, my train enters a tunnel")),
        (1000, Step::Drop),
        (2300, Step::Reconnect),
        (2900, Step::Say("thanks, the server replayed what I missed")),
    ];
    let end = Duration::from_millis(3500);
    let a = thread::spawn(move || bot(addr, "alice", &alice, start, end));
    let b = thread::spawn(move || bot(addr, "bob", &bob, start, end));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    server.stop()?;
    let (a, b) = (a?, b?);
    println!(
        "\n8 lines said; alice received {a}, bob {b} — each in order and once, \
         bob's missed ones replayed after his reconnect"
    );
    Ok(())
}

/// Runs a script; returns how many messages the bot received.
fn bot(
    addr: SocketAddr,
    name: &str,
    script: &[(u64, Step)],
    start: Instant,
    end: Duration,
) -> Result<usize, ClientError> {
    let who = format!("[{name:>5} sees] ");
    let mut chat = Chat::new(addr, "demo");
    chat.connect()?;
    let mut received = 0;
    let mut last_seq = 0;
    // Receives until `until` (since the start), printing as messages come
    // and checking that ids only go up: nothing twice, nothing reordered.
    let mut take = |chat: &mut Chat, until: Duration| -> Result<(), ClientError> {
        while start.elapsed() < until {
            if chat.ws.is_none() {
                thread::sleep(until.saturating_sub(start.elapsed()));
                break;
            }
            let slice = until
                .saturating_sub(start.elapsed())
                .min(Duration::from_millis(20));
            for d in chat.receive(slice)? {
                show(&who, &d);
                if let Delivery::Message(m) = &d {
                    let seq: u64 =
                        m.id.rsplit('-')
                            .next()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                    assert!(seq > last_seq, "{name} got {} after seq {last_seq}", m.id);
                    last_seq = seq;
                }
                received += 1;
            }
        }
        Ok(())
    };
    for (at, step) in script {
        take(&mut chat, Duration::from_millis(*at))?;
        match step {
            Step::Say(text) => chat.say(&chat_line(name, text))?,
            Step::Drop => {
                println!(
                    "[{name:>5}] *** connection dropped (last id seen: {})",
                    chat.last_id.as_deref().unwrap_or("-")
                );
                chat.drop_connection();
            }
            Step::Reconnect => {
                chat.connect()?;
                println!(
                    "[{name:>5}] *** reconnected with ?after={}",
                    chat.last_id.as_deref().unwrap_or("-")
                );
            }
        }
    }
    take(&mut chat, end)?;
    if let Some(ws) = chat.ws.take() {
        ws.close(1000, "bye")?;
    }
    Ok(received)
}

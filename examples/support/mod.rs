//! What the examples share and none of them is about: the command line,
//! a server of their own for `--demo`, and the chat line format. Each
//! example includes this file with
//! `#[path = "support/mod.rs"] mod support;` (cargo takes every `.rs` at
//! the top of `examples/` for an example of its own, so it lives in a
//! folder).
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use pushwire::client::json;
use pushwire::wire::json as json_out;
use pushwire::{Config, Handle, Server};

// ---- the command line ---------------------------------------------------------------

/// The flags the client examples take: where the server is, the topic,
/// who speaks, how often to poll, or `--demo` for a server of their own.
#[derive(Clone, Debug)]
pub struct Args {
    /// `--addr` (default `127.0.0.1:8080`, what `cargo run` serves).
    pub addr: SocketAddr,
    /// `--topic`.
    pub topic: String,
    /// `--name` (default `user<pid>`).
    pub name: String,
    /// `--interval`, in milliseconds on the command line (default 1000,
    /// at least 10).
    pub interval: Duration,
    /// `--demo`.
    pub demo: bool,
}

impl Args {
    /// Reads the command line. Only the flags that `usage` names are
    /// accepted, so each example's usage line is the whole truth.
    pub fn parse(usage: &str, topic: &str) -> Result<Args, String> {
        let mut a = Args {
            addr: "127.0.0.1:8080".parse().expect("a literal address"),
            topic: topic.to_string(),
            name: format!("user{}", std::process::id() % 1000),
            interval: Duration::from_millis(1000),
            demo: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let named = usage
                .split(|c: char| c.is_whitespace() || "[]|".contains(c))
                .any(|word| word == arg);
            if !named {
                return Err(format!("{usage}  ({arg}?)"));
            }
            let mut value = || args.next().ok_or(format!("{arg} needs a value\n{usage}"));
            let bad = |v: &str| format!("bad value {v:?} for {arg}\n{usage}");
            match arg.as_str() {
                "--addr" => {
                    let v = value()?;
                    a.addr = v.parse().map_err(|_| bad(&v))?;
                }
                "--topic" => a.topic = value()?,
                "--name" => a.name = value()?,
                "--interval" => {
                    let v = value()?;
                    let ms: u64 = v.parse().map_err(|_| bad(&v))?;
                    a.interval = Duration::from_millis(ms.max(10));
                }
                "--demo" => a.demo = true,
                _ => return Err(format!("{usage}  ({arg}?)")),
            }
        }
        Ok(a)
    }
}

// ---- a server of the demo's own -------------------------------------------------------

/// A server on a free port of 127.0.0.1, its event loop on a thread.
pub struct DemoServer {
    pub addr: SocketAddr,
    /// For publishing from this process and for the shutdown.
    pub handle: Handle,
    thread: JoinHandle<io::Result<()>>,
}

impl DemoServer {
    /// Starts a server with `config` (its `listen` replaced by
    /// `127.0.0.1:0`).
    pub fn start(config: Config) -> io::Result<DemoServer> {
        let server = Server::bind(Config {
            listen: "127.0.0.1:0".parse().expect("a literal address"),
            ..config
        })?;
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = thread::spawn(move || server.run());
        Ok(DemoServer {
            addr,
            handle,
            thread,
        })
    }

    /// Shuts the server down (every stream ends cleanly) and waits for it.
    pub fn stop(self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread.join().expect("the server thread panicked")
    }
}

// ---- chat lines ---------------------------------------------------------------------

/// A chat line as the browser chat (`/demo/chat`) writes it,
/// `{"name":…,"text":…,"from":…}`, so terminals and browsers can share a
/// room.
pub fn chat_line(name: &str, text: &str) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"name\":");
    json_out::write_str(&mut out, name);
    out.extend_from_slice(b",\"text\":");
    json_out::write_str(&mut out, text);
    out.extend_from_slice(b",\"from\":");
    json_out::write_str(&mut out, &format!("terminal-{}", std::process::id()));
    out.push(b'}');
    String::from_utf8(out).expect("the JSON writer writes UTF-8")
}

/// `name: text` for a chat line; anything else (`curl -d hello …`) as sent.
pub fn render(data: &str) -> String {
    let Ok(v) = json::parse(data) else {
        return data.to_string();
    };
    match (
        v.get("name").and_then(json::Value::as_str),
        v.get("text").and_then(json::Value::as_str),
    ) {
        (name, Some(text)) => format!("{}: {text}", name.unwrap_or("anonymous")),
        _ => data.to_string(),
    }
}

//! A real `redis-server` for the tests, and a blocking driver for
//! [`RedisConn`] over `std::net::TcpStream`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pushwire::proto::redis::{RedisConfig, RedisConn, RedisEvent, RequestId};
use pushwire::wire::resp::Value;

/// A `redis-server` on a free loopback port, with no persistence, killed
/// (by its PID) when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one, or returns `None` (after saying so) when `redis-server`
    /// is not installed: the caller skips its test.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        // The kernel picks a free port; redis binds it right after. A
        // race with another process is possible and fails loudly.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("pushwire-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", dir.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = RedisServer { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills this server (by its PID) and returns when its port refuses
    /// connections: Redis is down.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a new, empty server on the same port (after [`stop`]): Redis
    /// came back without its data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long any wait in these tests may take before it fails the test.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Drives one [`RedisConn`] over a blocking socket: the test's event loop.
pub struct Client {
    pub stream: Option<TcpStream>,
    pub conn: RedisConn,
    /// Events seen while waiting for something else.
    pub events: VecDeque<RedisEvent>,
}

impl Client {
    pub fn connect(url: &str) -> Client {
        Client::with_config(RedisConfig::from_url(url).unwrap())
    }

    pub fn resp2(url: &str) -> Client {
        let mut config = RedisConfig::from_url(url).unwrap();
        config.resp3 = false;
        Client::with_config(config)
    }

    /// Connects and waits for the handshake to end (in `Ready` or not:
    /// the event stays in `events`).
    pub fn with_config(config: RedisConfig) -> Client {
        let mut c = Client {
            stream: None,
            conn: RedisConn::new(config),
            events: VecDeque::new(),
        };
        c.open();
        c
    }

    /// A new socket for the connection (first or after a failure).
    pub fn open(&mut self) {
        self.conn.handle_connect_started(Instant::now());
        let stream = match TcpStream::connect(self.conn.config().addr()) {
            Ok(s) => s,
            Err(e) => return self.conn.handle_io_error(e.kind()),
        };
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        self.stream = Some(stream);
        self.conn.handle_connected(Instant::now());
    }

    /// After a failure: drop the socket, forget it, and open another.
    pub fn reconnect(&mut self) {
        self.stream = None;
        self.conn.reset();
        self.open();
    }

    /// One turn of the loop: write what is queued, read what came (at most
    /// one short wait), fire the timer. Events go to `events`.
    pub fn step(&mut self) {
        let now = Instant::now();
        if let Some(stream) = self.stream.as_mut() {
            if let Some(out) = self.conn.poll_transmit() {
                match stream.write(out) {
                    Ok(n) => self.conn.consumed(n, Instant::now()),
                    Err(e) => self.conn.handle_io_error(e.kind()),
                }
            }
            let mut buf = [0u8; 16 * 1024];
            match stream.read(&mut buf) {
                Ok(0) => self.conn.handle_eof(),
                Ok(n) => {
                    let _ = self.conn.handle_read(&buf[..n], Instant::now());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => self.conn.handle_io_error(e.kind()),
            }
        }
        self.conn.handle_timeout(now.max(Instant::now()));
        while let Some(e) = self.conn.poll_event() {
            self.events.push_back(e);
        }
    }

    /// Steps until `pick` takes an event out of `events`.
    pub fn wait_for<T>(&mut self, mut pick: impl FnMut(&RedisEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(i) = self.events.iter().position(|e| pick(e).is_some()) {
                let e = self.events.remove(i).unwrap();
                return pick(&e).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "waited too long; events: {:?}",
                self.events
            );
            self.step();
        }
    }

    pub fn wait_ready(&mut self) {
        self.wait_for(|e| match e {
            RedisEvent::Ready => Some(()),
            RedisEvent::Failed(f) => panic!("failed instead of ready: {f}"),
            _ => None,
        })
    }

    pub fn reply(&mut self, id: RequestId) -> Value {
        self.wait_for(|e| match e {
            RedisEvent::Reply { id: got, value } if *got == id => Some(value.clone()),
            RedisEvent::Failed(f) => panic!("failed waiting for {id:?}: {f}"),
            _ => None,
        })
    }

    /// Sends one command and waits for its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Value {
        let id = self.conn.command(args).unwrap();
        self.reply(id)
    }

    pub fn failure(&mut self) -> pushwire::proto::redis::RedisError {
        self.wait_for(|e| match e {
            RedisEvent::Failed(f) => Some(f.clone()),
            _ => None,
        })
    }

    pub fn message(&mut self) -> (Vec<u8>, Vec<u8>) {
        self.wait_for(|e| match e {
            RedisEvent::Message { channel, payload } => Some((channel.clone(), payload.clone())),
            RedisEvent::Failed(f) => panic!("failed waiting for a message: {f}"),
            _ => None,
        })
    }

    pub fn subscribed(&mut self) -> Vec<u8> {
        self.wait_for(|e| match e {
            RedisEvent::Subscribed { channel, .. } => Some(channel.clone()),
            RedisEvent::Failed(f) => panic!("failed waiting for a subscription: {f}"),
            _ => None,
        })
    }
}

pub fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

//! The Redis client against a misbehaving fake server (a `TcpListener` in
//! the test): replies split byte by byte, a connection reset mid-reply, a
//! reply that comes too late, a clean close, and a server without HELLO.
//! The client must report each precisely and recover with backoff.

#[path = "support/redis.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pushwire::proto::redis::{Backoff, Protocol, RedisConfig, RedisError, RedisEvent};
use pushwire::wire::resp::{parse, RespLimits, Value};
use support::{bulk, Client};

/// What the fake does on one accepted connection.
#[derive(Debug, Clone, Copy)]
enum Behavior {
    /// Answers at once.
    Normal,
    /// Answers every reply one byte per write.
    Split,
    /// Answers the handshake, then writes half of the next reply and resets the
    /// connection (RST, SO_LINGER 0).
    ResetMidReply,
    /// Answers the handshake, then waits this long before each next reply.
    Slow(Duration),
    /// Answers the handshake, then closes cleanly on the next command.
    CloseAfterHello,
    /// A server without HELLO: `-ERR unknown command`, then RESP2.
    NoHello,
}

type Seen = Arc<Mutex<Vec<(usize, Vec<Vec<u8>>)>>>;

struct Fake {
    url: String,
    seen: Seen,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    /// Serves one connection per behavior, in order.
    fn start(behaviors: Vec<Behavior>, auth: &str) -> Fake {
        Fake::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), behaviors, auth)
    }

    fn start_on(listener: TcpListener, behaviors: Vec<Behavior>, auth: &str) -> Fake {
        let url = format!(
            "redis://{auth}127.0.0.1:{}/1",
            listener.local_addr().unwrap().port()
        );
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let thread = std::thread::spawn(move || {
            // A thread per connection: a slow one must not hold up the
            // client's next attempt.
            let served: Vec<_> = behaviors
                .into_iter()
                .enumerate()
                .map(|(i, behavior)| {
                    let (stream, _) = listener.accept().unwrap();
                    let log = log.clone();
                    std::thread::spawn(move || serve(i, behavior, stream, &log))
                })
                .collect();
            for t in served {
                t.join().unwrap();
            }
        });
        Fake {
            url,
            seen,
            thread: Some(thread),
        }
    }

    fn commands(&self, conn: usize) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, args)| {
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            if !std::thread::panicking() {
                t.join().unwrap();
            }
        }
    }
}

/// Reads one command (an array of bulk strings); `None` at EOF.
fn read_command(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<Vec<u8>>> {
    loop {
        if let Some((value, n)) = parse(buf, &RespLimits::default()).unwrap() {
            buf.drain(..n);
            let Value::Array(items) = value else {
                panic!("a command is an array")
            };
            return Some(
                items
                    .iter()
                    .map(|i| i.as_bytes().unwrap().to_vec())
                    .collect(),
            );
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn reply_to(args: &[Vec<u8>], resp3: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let verb = args[0].to_ascii_uppercase();
    match verb.as_slice() {
        b"HELLO" => out.extend_from_slice(
            b"%3\r\n$6\r\nserver\r\n$4\r\nfake\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
        ),
        b"PING" => out.extend_from_slice(b"+PONG\r\n"),
        b"ECHO" => bulk_of(&args[1]).encode(&mut out),
        b"SUBSCRIBE" => {
            for (n, ch) in args[1..].iter().enumerate() {
                let items = vec![bulk("subscribe"), bulk_of(ch), Value::Integer(n as i64 + 1)];
                if resp3 {
                    Value::Push(items)
                } else {
                    Value::Array(items)
                }
                .encode(&mut out);
                // And a message on it right away, for the test to see.
                let items = vec![bulk("message"), bulk_of(ch), bulk("welcome")];
                if resp3 {
                    Value::Push(items)
                } else {
                    Value::Array(items)
                }
                .encode(&mut out);
            }
        }
        _ => out.extend_from_slice(b"+OK\r\n"),
    }
    out
}

fn bulk_of(b: &[u8]) -> Value {
    Value::Bulk(b.to_vec())
}

fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(stream);
}

fn serve(conn: usize, behavior: Behavior, mut stream: TcpStream, log: &Seen) {
    stream.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut resp3 = true;
    while let Some(args) = read_command(&mut stream, &mut buf) {
        log.lock().unwrap().push((conn, args.clone()));
        let hello = args[0].eq_ignore_ascii_case(b"HELLO");
        // The handshake and the restored subscriptions are answered; the
        // misbehaving starts with the first command after them.
        let handshake = hello
            || args[0].eq_ignore_ascii_case(b"SELECT")
            || args[0].eq_ignore_ascii_case(b"SUBSCRIBE");
        let mut reply = reply_to(&args, resp3);
        match behavior {
            Behavior::Normal => {}
            Behavior::Split => {
                for byte in reply {
                    if stream.write_all(&[byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                continue;
            }
            Behavior::ResetMidReply if !handshake => {
                let _ = stream.write_all(b"$10\r\nhel");
                std::thread::sleep(Duration::from_millis(50));
                return reset(stream);
            }
            Behavior::Slow(delay) if !handshake => std::thread::sleep(delay),
            Behavior::CloseAfterHello if !handshake => return,
            Behavior::NoHello if hello => {
                resp3 = false;
                reply = b"-ERR unknown command 'HELLO', with args beginning with: '3'\r\n".to_vec();
            }
            _ => {}
        }
        if stream.write_all(&reply).is_err() {
            return;
        }
    }
}

fn config(url: &str, timeout: Duration) -> RedisConfig {
    let mut c = RedisConfig::from_url(url).unwrap();
    c.limits.reply_timeout = timeout;
    c
}

#[test]
fn replies_split_byte_by_byte() {
    let fake = Fake::start(vec![Behavior::Split], "");
    let mut c = Client::with_config(config(&fake.url, Duration::from_secs(10)));
    c.wait_ready();
    assert_eq!(c.conn.protocol(), Some(Protocol::Resp3));
    c.conn.subscribe(&[b"ch"]).unwrap();
    let payloads: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("payload {i}\r\n$3\r\nfoo\r\n").into_bytes())
        .collect();
    let ids: Vec<_> = payloads
        .iter()
        .map(|p| c.conn.command(&[b"ECHO", p]).unwrap())
        .collect();
    assert_eq!(c.subscribed(), b"ch");
    assert_eq!(c.message(), (b"ch".to_vec(), b"welcome".to_vec()));
    for (id, p) in ids.into_iter().zip(payloads) {
        assert_eq!(c.reply(id), Value::Bulk(p));
    }
    // HELLO then SELECT 1 (the URL's database), before any user command.
    let seen = fake.commands(0);
    assert_eq!(seen[..3], ["HELLO 3", "SELECT 1", "SUBSCRIBE ch"]);
}

#[test]
fn a_server_without_hello_gets_resp2_auth_and_select() {
    let fake = Fake::start(vec![Behavior::NoHello], "u:pw@");
    let mut c = Client::with_config(config(&fake.url, Duration::from_secs(10)));
    let early = c.conn.command(&[b"ECHO", b"held"]).unwrap();
    c.wait_ready();
    assert_eq!(c.conn.protocol(), Some(Protocol::Resp2));
    assert_eq!(c.reply(early), bulk("held"));
    c.conn.subscribe(&[b"x"]).unwrap();
    assert_eq!(c.subscribed(), b"x");
    assert_eq!(c.message(), (b"x".to_vec(), b"welcome".to_vec()));
    assert_eq!(
        fake.commands(0),
        [
            "HELLO 3 AUTH u pw",
            "AUTH u pw",
            "SELECT 1",
            "ECHO held",
            "SUBSCRIBE x"
        ]
    );
}

/// Reconnects after a failure the way a driver does: wait the backoff's
/// delay, reset, open a new socket.
fn recover(c: &mut Client, backoff: &mut Backoff) -> Duration {
    let delay = backoff.next_delay();
    std::thread::sleep(delay);
    c.reconnect();
    delay
}

#[test]
fn reset_slow_and_closed_connections_are_reported_and_recovered_with_backoff() {
    let timeout = Duration::from_millis(300);
    let fake = Fake::start(
        vec![
            Behavior::ResetMidReply,
            Behavior::Slow(Duration::from_secs(2)),
            Behavior::CloseAfterHello,
            Behavior::Normal,
        ],
        "",
    );
    let mut c = Client::with_config(config(&fake.url, timeout));
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200), 1);
    c.wait_ready();
    c.conn.subscribe(&[b"keep"]).unwrap();
    c.subscribed();
    let mut failures = Vec::new();

    // 1. Reset in the middle of a reply.
    c.conn.command(&[b"ECHO", b"lost"]).unwrap();
    failures.push(c.failure());
    recover(&mut c, &mut backoff);
    c.wait_ready();

    // 2. A reply that does not come in time: the timer measures from the
    //    request's last byte on the wire.
    c.subscribed();
    let sent = Instant::now();
    c.conn.command(&[b"ECHO", b"late"]).unwrap();
    failures.push(c.failure());
    let waited = sent.elapsed();
    assert!(
        waited >= timeout && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    recover(&mut c, &mut backoff);
    c.wait_ready();

    // 3. A clean close.
    c.subscribed();
    c.conn.command(&[b"ECHO", b"closed"]).unwrap();
    failures.push(c.failure());
    recover(&mut c, &mut backoff);
    c.wait_ready();

    assert_eq!(
        failures,
        [
            RedisError::Io(std::io::ErrorKind::ConnectionReset),
            RedisError::Timeout,
            RedisError::ConnectionClosed,
        ]
    );
    assert_eq!(backoff.attempts(), 3);
    backoff.reset();

    // 4. Working again, with the subscription restored on every socket.
    assert_eq!(c.subscribed(), b"keep");
    assert_eq!(c.call(&[b"ECHO", b"back"]), bulk("back"));
    for conn in 0..4 {
        assert!(
            fake.commands(conn).contains(&"SUBSCRIBE keep".to_string()),
            "connection {conn}: {:?}",
            fake.commands(conn)
        );
    }
    assert!(!c.events.iter().any(|e| matches!(e, RedisEvent::Failed(_))));
    c.stream = None;
}

#[test]
fn failed_connection_refuses_commands_until_reset() {
    let fake = Fake::start(vec![Behavior::CloseAfterHello, Behavior::Normal], "");
    let mut c = Client::with_config(config(&fake.url, Duration::from_secs(10)));
    c.wait_ready();
    c.conn.command(&[b"PING"]).unwrap();
    assert_eq!(c.failure(), RedisError::ConnectionClosed);
    assert_eq!(c.conn.command(&[b"PING"]), Err(RedisError::NotConnected));
    c.reconnect();
    c.wait_ready();
    assert_eq!(c.call(&[b"PING"]), Value::Simple(b"PONG".to_vec()));
    c.stream = None;
}

#[test]
fn a_server_that_is_down_is_refused_then_reached_after_backoff() {
    // A port nobody listens on (for the moment).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/1");
    let mut c = Client::with_config(config(&url, Duration::from_secs(10)));
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100), 9);
    assert_eq!(
        c.failure(),
        RedisError::Io(std::io::ErrorKind::ConnectionRefused)
    );
    let held = c.conn.command(&[b"ECHO", b"x"]);
    assert_eq!(held, Err(RedisError::NotConnected), "failed until reset");
    recover(&mut c, &mut backoff);
    assert_eq!(
        c.failure(),
        RedisError::Io(std::io::ErrorKind::ConnectionRefused)
    );
    // Redis comes up on that port.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let _fake = Fake::start_on(listener, vec![Behavior::Normal], "");
    let delay = recover(&mut c, &mut backoff);
    assert!(delay >= Duration::from_millis(10), "{delay:?}");
    c.wait_ready();
    assert_eq!(c.call(&[b"ECHO", b"up"]), bulk("up"));
    c.stream = None;
}

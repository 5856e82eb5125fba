//! A cluster for the integration tests: one real `redis-server` (started
//! on a free loopback port with no persistence, restartable empty on the
//! same port), N real pushwire nodes (child processes of the built binary,
//! each on its own free port, all on that Redis), and a round-robin TCP
//! proxy in front of them — the load balancer without sticky sessions
//! that the cluster mode is meant to work behind.
//!
//! Every process here is killed by its own PID (SIGKILL where the test
//! says so, and on drop); nothing is looked up by name.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a process may take to start listening before the test fails.
const START_LIMIT: Duration = Duration::from_secs(15);

/// A port the kernel says is free now. Whoever binds it next may race
/// another process; the starters below retry on a new port when that
/// happens.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn scratch_dir(what: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pushwire-{what}-{port}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// True once something accepts on `127.0.0.1:port`.
fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Kills a child by its PID and reaps it.
fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---- Redis ---------------------------------------------------------------------

/// A `redis-server` on a fixed loopback port, with `--save ""
/// --appendonly no`: killing it loses everything, which is what the
/// "Redis restarted empty" scenario needs.
pub struct RedisProcess {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
}

impl RedisProcess {
    /// Starts one on a free port, or returns `None` (after saying so) when
    /// `redis-server` is not installed: the caller skips its test.
    pub fn start() -> Option<RedisProcess> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        for _ in 0..3 {
            let port = free_port();
            let mut redis = RedisProcess {
                child: None,
                port,
                dir: scratch_dir("redis", port),
            };
            if redis.spawn() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start on three free ports");
    }

    /// Starts `redis-server` on `self.port`; false if it exited instead
    /// (the port was taken).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if accepts(self.port) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() > deadline {
                kill_child(&mut child);
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no save — the data is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }

    /// Sends one command (as a RESP array of bulk strings) on a fresh
    /// connection and returns the first line of the reply: enough for the
    /// integer and status replies of administrative commands such as
    /// `CLIENT KILL TYPE pubsub` (":2").
    pub fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).expect("write to redis");
        let mut reply = Vec::new();
        let mut b = [0u8; 512];
        while !reply.ends_with(b"\r\n") {
            let n = s.read(&mut b).expect("redis reply");
            assert!(n > 0, "redis closed before replying to {args:?}");
            reply.extend_from_slice(&b[..n]);
        }
        let text = String::from_utf8_lossy(&reply).into_owned();
        text.lines().next().unwrap_or("").to_string()
    }

    /// Cuts the connections of the nodes that follow topics: every pub/sub
    /// client subscribed to more than one channel (a node always holds
    /// one, its relay channel, so `CLIENT KILL TYPE pubsub` would cut the
    /// publishing nodes too). Returns how many were cut.
    pub fn kill_topic_subscribers(&self) -> u32 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"*4\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n$4\r\nTYPE\r\n$6\r\npubsub\r\n")
            .expect("write to redis");
        // A bulk string: `$<len>\r\n<len bytes>\r\n`.
        let mut reply = Vec::new();
        let mut b = [0u8; 4096];
        let complete = |r: &[u8]| {
            let Some(end) = r.windows(2).position(|w| w == b"\r\n") else {
                return false;
            };
            let len: usize = String::from_utf8_lossy(&r[1..end]).parse().unwrap_or(0);
            r.len() >= end + 2 + len + 2
        };
        while !complete(&reply) {
            let n = s.read(&mut b).expect("redis reply");
            assert!(n > 0, "redis closed before replying to CLIENT LIST");
            reply.extend_from_slice(&b[..n]);
        }
        let text = String::from_utf8_lossy(&reply).into_owned();
        let mut cut = 0;
        for line in text.lines().skip(1) {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_string)
            };
            let subs: u32 = field("sub=").and_then(|n| n.parse().ok()).unwrap_or(0);
            if let (Some(id), true) = (field("id="), subs > 1) {
                let r = self.command(&["CLIENT", "KILL", "ID", &id]);
                cut += r.trim_start_matches(':').parse::<u32>().unwrap_or(0);
            }
        }
        cut
    }

    /// A new, empty `redis-server` on the same port.
    pub fn restart_empty(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_LIMIT;
        // The old socket may linger a moment; redis sets SO_REUSEADDR.
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start again on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- pushwire nodes ---------------------------------------------------------------

/// One `pushwire` process on its own free port, its stderr in a file that
/// a failing test prints.
pub struct NodeProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl NodeProcess {
    /// Starts the built binary with `--listen 127.0.0.1:PORT` and `args`,
    /// and waits until `/healthz` answers 200.
    pub fn start(args: &[String]) -> NodeProcess {
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = scratch_dir("node", port).join("stderr.log");
            let child = Command::new(env!("CARGO_BIN_EXE_pushwire"))
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("node log"))
                .spawn()
                .expect("spawn pushwire");
            let mut node = NodeProcess {
                child: Some(child),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                log,
            };
            if node.wait_healthy() {
                return node;
            }
            last_log = node.log_text();
            node.kill();
        }
        panic!("pushwire {args:?} did not start; its log:\n{last_log}");
    }

    fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if !self.is_running() {
                return false;
            }
            let mut http = pushwire::client::HttpClient::new(self.addr);
            http.set_timeout(Duration::from_secs(2));
            if http.get("/healthz").is_ok_and(|r| r.status() == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        false
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL, by PID: the node dies mid-whatever, as a crash does.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }

    /// What the node wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log_text();
            if !log.is_empty() {
                eprintln!("--- node {} stderr:\n{log}", self.addr);
            }
        }
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One Redis and `n` nodes on it.
pub struct Cluster {
    pub redis: RedisProcess,
    pub nodes: Vec<NodeProcess>,
}

impl Cluster {
    /// `n` nodes with `--redis URL` and `extra` flags; `None` (the test is
    /// skipped) when `redis-server` is not installed.
    pub fn start(n: usize, extra: &[&str]) -> Option<Cluster> {
        let redis = RedisProcess::start()?;
        let mut args = vec!["--redis".to_string(), redis.url()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let nodes = (0..n).map(|_| NodeProcess::start(&args)).collect();
        Some(Cluster { redis, nodes })
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }
}

// ---- the round-robin proxy ---------------------------------------------------------

/// A TCP proxy on a free loopback port: each new client connection goes
/// to the next backend in turn (skipping one that refuses the connect, as
/// a balancer's health check would), and bytes are copied both ways until
/// either side ends, which ends both. No stickiness of any kind.
pub struct RoundRobinProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Client connections handed to each backend so far.
    pub per_backend: Arc<Vec<AtomicUsize>>,
    /// Every socket the proxy holds, so that dropping it ends them all.
    open: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl RoundRobinProxy {
    pub fn start(backends: Vec<SocketAddr>) -> RoundRobinProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let per_backend: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let open = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, per_backend, open) = (stop.clone(), per_backend.clone(), open.clone());
            std::thread::spawn(move || {
                let mut next = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            client.set_nonblocking(false).unwrap();
                            let picked = connect_next(&backends, &mut next);
                            match picked {
                                Some((i, upstream)) => {
                                    per_backend[i].fetch_add(1, Ordering::SeqCst);
                                    splice(client, upstream, &open);
                                }
                                // Nothing is up: the client sees the close.
                                None => drop(client),
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        RoundRobinProxy {
            addr,
            stop,
            per_backend,
            open,
            thread: Some(thread),
        }
    }

    /// How many client connections each backend got.
    pub fn spread(&self) -> Vec<usize> {
        self.per_backend
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }
}

/// The next backend (from `*next` on) that accepts a connection.
fn connect_next(backends: &[SocketAddr], next: &mut usize) -> Option<(usize, TcpStream)> {
    for _ in 0..backends.len() {
        let i = *next % backends.len();
        *next += 1;
        if let Ok(s) = TcpStream::connect_timeout(&backends[i], Duration::from_secs(1)) {
            return Some((i, s));
        }
    }
    None
}

/// Copies `a` to `b` and `b` to `a`, one thread each way.
fn splice(a: TcpStream, b: TcpStream, open: &Arc<Mutex<Vec<TcpStream>>>) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    {
        let mut open = open.lock().unwrap();
        open.retain(|s| s.peer_addr().is_ok());
        for s in [&a, &b] {
            if let Ok(c) = s.try_clone() {
                open.push(c);
            }
        }
    }
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    std::thread::spawn(move || copy(a, b));
    std::thread::spawn(move || copy(b2, a2));
}

/// Copies until `from` ends or fails, then ends both sockets: a backend
/// that dies takes its client connections with it, as behind a real
/// balancer.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl Drop for RoundRobinProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

//! Real-socket helpers for the integration tests: a server on an
//! ephemeral port, and a small HTTP/1.1 client that reads responses.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pushwire::client::ResponseHead;
use pushwire::server::{Handle, Server};
use pushwire::wire::chunked::{ChunkedDecoder, ChunkedLimits};
use pushwire::Config;

/// A server on an ephemeral port of 127.0.0.1, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(mut cfg: Config) -> TestServer {
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(cfg).expect("bind");
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run().expect("server run"));
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads from `s` into `buf` until `buf` holds at least one complete
/// response, then removes and returns it. `head_only` for HEAD requests.
pub fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Response {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = ResponseHead::parse(&buf[..end + 4]).expect("a well-formed response head");
            let (status, headers) = (head.status, head.headers);
            let get = |n: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
            };
            let body_start = end + 4;
            if head_only || status == 204 || status == 304 || status / 100 == 1 {
                buf.drain(..body_start);
                return Response {
                    status,
                    headers,
                    body: Vec::new(),
                };
            }
            if let Some(len) = get("content-length") {
                let len: usize = len.parse().unwrap();
                if buf.len() >= body_start + len {
                    let body = buf[body_start..body_start + len].to_vec();
                    buf.drain(..body_start + len);
                    return Response {
                        status,
                        headers,
                        body,
                    };
                }
            } else if get("transfer-encoding").is_some() {
                if let Some((body, used)) = dechunk(&buf[body_start..]) {
                    buf.drain(..body_start + used);
                    return Response {
                        status,
                        headers,
                        body,
                    };
                }
            } else {
                // Close-delimited.
                let mut rest = Vec::new();
                let _ = s.read_to_end(&mut rest);
                buf.extend_from_slice(&rest);
                let body = buf[body_start..].to_vec();
                buf.clear();
                return Response {
                    status,
                    headers,
                    body,
                };
            }
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).expect("read response");
        assert!(
            n > 0,
            "connection closed before a whole response: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A complete chunked body at the start of `b`: (body, bytes used).
pub fn dechunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut decoder = ChunkedDecoder::new(ChunkedLimits::default());
    let mut body = Vec::new();
    let progress = decoder
        .decode(b, &mut body, usize::MAX)
        .expect("a well-formed chunked body");
    progress.done.then_some((body, progress.consumed))
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `req` on a new connection and returns the first response.
pub fn request(server: &TestServer, req: &[u8]) -> Response {
    let mut s = server.connect();
    s.write_all(req).unwrap();
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf, req.starts_with(b"HEAD "))
}

/// Reads until the peer closes (or `limit` passes); true if it closed.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut b = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

pub fn get(server: &TestServer, path: &str) -> Response {
    request(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

pub fn post(server: &TestServer, path: &str, body: &str) -> Response {
    request(
        server,
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// A node of a cluster (docs/protocol.md "Cluster"): a server on `cfg` with
/// the Redis engine at `redis_url` and a 1.5 s `redis_timeout`, returned
/// once `/stats` says Redis is up. The node connects on its first turn,
/// and publishes before that are refused with 503.
pub fn start_cluster_node(redis_url: String, cfg: Config) -> TestServer {
    let server = TestServer::start(Config {
        redis: Some(redis_url),
        redis_timeout: Duration::from_millis(1500),
        ..cfg
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(&server, "/stats")
        .text()
        .contains("\"redis\":{\"up\":true")
    {
        assert!(Instant::now() < deadline, "the node never reached Redis");
        std::thread::sleep(Duration::from_millis(5));
    }
    server
}

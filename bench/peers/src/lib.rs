//! Peer servers that pushwire's benchmarks measure against.
//!
//! Each one runs on a tokio `current_thread` runtime: one thread, one event
//! loop, like pushwire, so a comparison pinned to one core compares the
//! servers and not their thread counts.

use std::future::Future;
use std::net::SocketAddr;

/// `--listen ADDR` from the command line, else `default`.
pub fn listen_addr(default: &str) -> SocketAddr {
    let mut args = std::env::args().skip(1);
    let mut addr = default.to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => addr = args.next().expect("--listen needs ADDR"),
            "-h" | "--help" => {
                eprintln!(
                    "usage: {} [--listen 127.0.0.1:PORT]",
                    std::env::args().next().unwrap()
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    addr.parse().expect("--listen: not a socket address")
}

/// A single-threaded tokio runtime with I/O and timers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Bind a listener with a deep backlog: the load generators open thousands
/// of connections in bursts, and a shallow accept queue would measure SYN
/// retransmits, not the server.
pub fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    let sock = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .expect("socket");
    sock.set_reuseaddr(true).expect("SO_REUSEADDR");
    sock.bind(addr).expect("bind");
    sock.listen(4096).expect("listen")
}

/// The whole life of a peer server: listen on `--listen` (else `default`)
/// and hand every accepted connection, with Nagle's algorithm off (as
/// pushwire does), to a task of its own running `conn`. Never returns.
pub fn serve<F, Fut>(name: &str, default: &str, conn: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listen_addr(default);
    runtime().block_on(async move {
        let listener = bind(addr);
        eprintln!("{name} listening on {addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(conn(stream));
        }
    });
}

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

/// `--listen ADDR --cert PEM --key PEM` for the TLS peers.
pub struct TlsArgs {
    pub addr: SocketAddr,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TlsArgs {
    pub fn parse(default: &str) -> TlsArgs {
        let mut args = std::env::args().skip(1);
        let (mut addr, mut cert, mut key) = (default.to_string(), None, None);
        while let Some(a) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                "--listen" => addr = value(),
                "--cert" => cert = Some(value().into()),
                "--key" => key = Some(value().into()),
                other => panic!("unknown argument {other:?} (--listen ADDR --cert PEM --key PEM)"),
            }
        }
        TlsArgs {
            addr: addr.parse().expect("--listen: not a socket address"),
            cert: cert.expect("--cert PEM is required"),
            key: key.expect("--key PEM is required"),
        }
    }
}

/// The same TLS configuration as pushwire's (`src/proto/tls.rs`): the
/// ring provider, TLS 1.3 and 1.2, ALPN `http/1.1`, rustls' defaults
/// otherwise (its session cache included).
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .expect("--cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("--cert PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("--key PEM");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// [`serve`] over TLS: every accepted connection's handshake runs in its
/// own task, then `conn` gets the TLS stream.
pub fn serve_tls<F, Fut>(name: &str, default: &str, conn: F)
where
    F: Fn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let args = TlsArgs::parse(default);
    let acceptor = tls_acceptor(&args.cert, &args.key);
    let conn = std::sync::Arc::new(conn);
    runtime().block_on(async move {
        let listener = bind(args.addr);
        eprintln!("{name} listening on {} (TLS)", args.addr);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let conn = std::sync::Arc::clone(&conn);
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    conn(tls).await;
                }
            });
        }
    });
}

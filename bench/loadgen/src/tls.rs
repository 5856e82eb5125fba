//! TLS for the load generators: a rustls client driven by hand over a
//! non-blocking mio socket, so a generator stays one thread and one poll.
//! It reads until `WouldBlock` like a plain socket: a caller must not stop
//! at a short read (records the socket still holds raise no new edge).
//! Ciphertext comes off the socket in one `recv` of up to [`RAW_READ`]
//! bytes, not in the 4 KiB steps of rustls' own `read_tls`, and a `recv`
//! that came back short ends the turn without another that would only
//! say `WouldBlock`: the generator spends less per message, so that a
//! fast server is not measured waiting for it.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// A client configuration trusting the CA in `ca_pem`: the ring provider,
/// TLS 1.3 and 1.2, ALPN `http/1.1`, and no session resumption, so every
/// connection is a full handshake.
pub fn client_config(ca_pem: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).map_err(|e| format!("--ca: {e}"))? {
        roots
            .add(cert.map_err(|e| format!("--ca: {e}"))?)
            .map_err(|e| format!("--ca: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Ciphertext read from the socket at a time.
pub const RAW_READ: usize = 64 * 1024;

/// One client TLS connection over a non-blocking socket.
pub struct TlsClient {
    pub sock: TcpStream,
    conn: ClientConnection,
    /// Ciphertext read and not yet handed to rustls: `raw[start..end]`.
    raw: Vec<u8>,
    start: usize,
    end: usize,
    /// The last `recv` was short: the socket is empty until its next
    /// readiness edge.
    drained: bool,
}

impl TlsClient {
    /// Starts the handshake (the ClientHello goes out on the first write
    /// or read). `host` is the name the certificate must carry.
    pub fn new(sock: TcpStream, config: Arc<ClientConfig>, host: &str) -> io::Result<TlsClient> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        // Plaintext written before the handshake ends waits in rustls.
        conn.set_buffer_limit(None);
        Ok(TlsClient {
            sock,
            conn,
            raw: Vec::new(),
            start: 0,
            end: 0,
            drained: false,
        })
    }

    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Sends queued records as far as the socket takes them.
    fn send(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for TlsClient {
    /// Plaintext if any is decrypted, else reads records until there is
    /// some, the socket would block (`WouldBlock`), or it ends (`Ok(0)`).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.send()?;
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.start == self.end {
                if std::mem::take(&mut self.drained) {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                if self.raw.is_empty() {
                    self.raw = vec![0; RAW_READ];
                }
                let n = self.sock.read(&mut self.raw)?;
                if n == 0 {
                    return Ok(0);
                }
                (self.start, self.end, self.drained) = (0, n, n < self.raw.len());
            }
            let mut chunk = &self.raw[self.start..self.end];
            self.start += self.conn.read_tls(&mut chunk)?;
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Handshake answers, key updates.
            self.send()?;
        }
    }
}

impl Write for TlsClient {
    /// Takes all of `buf` (rustls buffers it) and sends what the socket
    /// takes; the rest goes with the next read or write.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.send()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A plain or a TLS connection, read and written alike.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsClient>),
}

impl Stream {
    /// `sock` as is, or with a TLS client over it when `config` is given.
    pub fn new(
        sock: TcpStream,
        config: Option<&Arc<ClientConfig>>,
        host: &str,
    ) -> io::Result<Stream> {
        Ok(match config {
            None => Stream::Plain(sock),
            Some(c) => Stream::Tls(Box::new(TlsClient::new(sock, Arc::clone(c), host)?)),
        })
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

//! TLS as a sans-IO session: ciphertext in, plaintext out, and back.
//!
//! Before working on this file, read rustls' `ConnectionCommon` docs (the
//! `read_tls` / `process_new_packets` / `reader` / `writer` / `write_tls`
//! cycle) and RFC 8446 §6.1 (closure alerts). rustls is itself sans-IO; this
//! wrapper only fixes the calling order and turns its `io::Read`/`Write`
//! plumbing into byte slices and `Vec`s, so the server core can treat a TLS
//! connection as a byte pipe that sits between the socket and the HTTP
//! session, and tests can drive it without sockets.
//!
//! The driver's order, after every socket read:
//! 1. [`TlsSession::handle_read`] with the bytes read;
//! 2. [`TlsSession::take_plaintext`] and hand that to the HTTP session;
//! 3. [`TlsSession::write_plaintext`] with whatever the HTTP session wants
//!    to send;
//! 4. [`TlsSession::poll_transmit`] and write that to the socket;
//! 5. close the socket once [`TlsSession::wants_close`] holds and the
//!    transmit queue is flushed.
//!
//! On an error from `handle_read`, still do step 4 once (it carries the
//! alert telling the peer why) and then close that connection only.
//!
//! Not supported: client certificates, 0-RTT early data, `h2`.

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
/// Re-exported so the server core names the config without naming rustls.
pub use rustls::ServerConfig;
use rustls::ServerConnection;
use thiserror::Error;

/// The only protocol we offer in ALPN (RFC 7301). Offering `h2` would make
/// browsers speak HTTP/2, which this server does not.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Why a TLS connection or configuration failed. A failed connection has
/// no HTTP status to answer with: the answer is the TLS alert rustls queues
/// (send [`TlsSession::poll_transmit`]) and closing that connection.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The first bytes of the connection look like a plaintext HTTP
    /// request, not a TLS record (RFC 8446 §5.1: a handshake record starts
    /// with content type 22). Someone used `http://` on the HTTPS port.
    #[error("plaintext HTTP on the TLS port")]
    PlaintextHttp,
    /// The peer broke the TLS protocol (bad record, failed handshake, no
    /// common version, cipher suite or ALPN protocol, bad MAC...).
    #[error("TLS: {0}")]
    Protocol(#[from] rustls::Error),
    /// `--tls-cert` holds no usable `CERTIFICATE` block.
    #[error("TLS certificate PEM: {0}")]
    CertificatePem(String),
    /// `--tls-key` holds no usable private key block (PKCS#8, PKCS#1 or
    /// SEC1).
    #[error("TLS key PEM: {0}")]
    KeyPem(String),
    /// rustls refused the certificate and key (a key that does not match
    /// the certificate, an unsupported key type).
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The server's TLS configuration from a PEM certificate chain (leaf
/// first) and a PEM private key: TLS 1.3 and 1.2, the ring provider's
/// default cipher suites, ALPN `http/1.1` only, no client authentication.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::CertificatePem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::CertificatePem("no CERTIFICATE block".into()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::KeyPem(e.to_string()))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    // RFC 7301 §3.2: a client that offers ALPN but none of ours gets the
    // `no_application_protocol` alert; a client that offers none is
    // served HTTP/1.1 all the same.
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(Arc::new(config))
}

/// One server-side TLS connection, driven with bytes (see the module docs
/// for the order of calls).
pub struct TlsSession {
    conn: ServerConnection,
    /// Decrypted bytes not yet taken. Bounded by the ciphertext handed in:
    /// the caller's read size bounds each `handle_read`, and the caller
    /// takes it all after each one.
    plaintext: Vec<u8>,
    /// Whether any byte has arrived yet (for [`TlsError::PlaintextHttp`]).
    seen_bytes: bool,
    /// The peer sent close_notify, or the connection failed.
    closing: bool,
}

impl TlsSession {
    /// A session for one accepted connection. Fails only if the config
    /// cannot serve (it has no usable protocol version).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, TlsError> {
        let mut conn = ServerConnection::new(config)?;
        // Outbound plaintext is bounded by the caller's outbound queue cap,
        // and before the handshake ends the server has nothing to say; a
        // limit here would only turn a full buffer into lost bytes.
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn,
            plaintext: Vec::new(),
            seen_bytes: false,
            closing: false,
        })
    }

    /// Feeds ciphertext read from the socket. Consumes all of it: records
    /// split across reads are kept until complete.
    pub fn handle_read(&mut self, mut ciphertext: &[u8]) -> Result<(), TlsError> {
        if !self.seen_bytes && !ciphertext.is_empty() {
            self.seen_bytes = true;
            // RFC 8446 §5.1: the first record of a connection is a
            // handshake record (type 22). An ASCII letter instead is an
            // HTTP method: say so rather than "invalid content type".
            if ciphertext[0].is_ascii_uppercase() {
                self.closing = true;
                return Err(TlsError::PlaintextHttp);
            }
        }
        while !ciphertext.is_empty() {
            // read_tls takes what fits in its record buffer; the loop hands
            // it the rest after each record is processed.
            // Its only errors are "plaintext buffer full", which cannot
            // happen as we drain it below on every turn.
            let n = self.conn.read_tls(&mut ciphertext).unwrap_or_default();
            let state = self.conn.process_new_packets().inspect_err(|_| {
                self.closing = true;
            })?;
            self.drain_plaintext();
            if state.peer_has_closed() {
                // RFC 8446 §6.1: "Any data received after a closure alert
                // has been received MUST be ignored."
                self.closing = true;
                return Ok(());
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Moves what rustls decrypted into `plaintext`: straight from its
    /// buffers (`fill_buf`), one copy, and all of it, as rustls refuses
    /// more records while 16 KiB of plaintext wait in it.
    fn drain_plaintext(&mut self) {
        let mut reader = self.conn.reader();
        loop {
            let n = match reader.fill_buf() {
                Ok([]) | Err(_) => break,
                Ok(chunk) => {
                    self.plaintext.extend_from_slice(chunk);
                    chunk.len()
                }
            };
            reader.consume(n);
        }
    }

    /// Moves the decrypted application bytes into `out` (appended).
    pub fn take_plaintext(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.plaintext);
        } else {
            out.append(&mut self.plaintext);
        }
    }

    /// Queues application bytes to encrypt. Before the handshake is done
    /// they are held and sent as soon as it is.
    pub fn write_plaintext(&mut self, bytes: &[u8]) {
        // With no buffer limit, rustls' writer accepts everything.
        let _ = self.conn.writer().write_all(bytes);
    }

    /// Appends the ciphertext to send (handshake messages, records, alerts)
    /// to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Whether records wait to be sent.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Sends queued records straight into `w` (the socket: one `writev`
    /// of rustls' buffers, no copy into a `Vec` first); returns the bytes
    /// written. What `w` does not take stays queued, so a `WouldBlock`
    /// loses nothing: call again when the socket is writable.
    pub fn write_tls_to(&mut self, w: &mut dyn std::io::Write) -> std::io::Result<usize> {
        self.conn.write_tls(w)
    }

    pub fn handshake_done(&self) -> bool {
        !self.conn.is_handshaking()
    }

    /// The ALPN protocol agreed, if the client offered one.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The TLS version agreed, once the handshake has got that far.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Queues a close_notify alert (RFC 8446 §6.1): send it with
    /// [`poll_transmit`](Self::poll_transmit) before closing, so the peer
    /// can tell our end of the stream from a truncation attack.
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The peer closed (close_notify) or the connection failed: flush
    /// [`poll_transmit`](Self::poll_transmit), then close the socket.
    pub fn wants_close(&self) -> bool {
        self.closing
    }
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshake_done", &self.handshake_done())
            .field("plaintext", &self.plaintext.len())
            .field("closing", &self.closing)
            .finish()
    }
}

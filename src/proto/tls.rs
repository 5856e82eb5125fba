//! TLS as a sans-IO session: ciphertext in, plaintext out, and back.
//!
//! Before working on this file, read rustls' `unbuffered` module docs (the
//! `process_tls_records` / `ConnectionState` cycle: `ReadTraffic`,
//! `EncodeTlsData`, `TransmitTlsData`, `WriteTraffic`) and RFC 8446 §6.1
//! (closure alerts). rustls is itself sans-IO; this wrapper only fixes the
//! calling order and owns the buffers, so the server core can treat a TLS
//! connection as a byte pipe that sits between the socket and the HTTP
//! session, and tests can drive it without sockets.
//!
//! The driver's order, after every socket read:
//! 1. [`TlsSession::handle_read`] with the bytes read (or
//!    [`TlsSession::handle_read_in_place`], which decrypts in the read
//!    buffer itself);
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

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus, WriteTraffic,
};
/// Re-exported so the server core names the config without naming rustls.
pub use rustls::ServerConfig;
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

/// Room for one record's header, content type and AEAD tag around its
/// plaintext (RFC 8446 §5.2: 5 + 1 + 16 bytes; TLS 1.2's explicit nonce
/// and tag are 5 + 8 + 16), so an `encrypt` rarely needs a second try.
const RECORD_OVERHEAD: usize = 40;

/// RFC 8446 §5.1: a record carries at most 2^14 bytes of plaintext.
const MAX_FRAGMENT: usize = 16 * 1024;

/// Buffers above this are freed once empty, so a burst does not pin its
/// size to an idle connection.
const KEEP_BUFFER: usize = 32 * 1024;

/// One server-side TLS connection, driven with bytes (see the module docs
/// for the order of calls).
///
/// It uses rustls' unbuffered API: records are decrypted where they lie
/// (in the caller's read buffer when nothing was left over from the last
/// read) and encrypted straight into `outgoing`, which the caller writes
/// to the socket; rustls' buffered API instead copies every read into
/// its own buffer in 4 KiB steps (growing and shrinking it around each
/// record) and keeps each outgoing record in a queue of its own.
pub struct TlsSession {
    conn: UnbufferedServerConnection,
    /// Ciphertext of an incomplete record (or handshake message) kept for
    /// the next read. Bounded: rustls refuses a record over 2^14 + 2048
    /// bytes and a handshake message over 64 KiB, and every complete
    /// record is processed before a read returns.
    incoming: Vec<u8>,
    /// Records to send. Bounded by what the caller writes before the
    /// socket takes it (the driver stops encrypting while records wait).
    out: Outgoing,
    /// Decrypted bytes not yet taken. Bounded by the ciphertext handed in:
    /// the caller's read size bounds each `handle_read`, and the caller
    /// takes it all after each one.
    plaintext: Vec<u8>,
    /// Plaintext written before the handshake allows application data;
    /// encrypted as soon as it does. Bounded by the caller's queue cap.
    early: Vec<u8>,
    /// Whether any byte has arrived yet (for [`TlsError::PlaintextHttp`]).
    seen_bytes: bool,
    /// The peer sent close_notify, or the connection failed.
    closing: bool,
    /// The connection failed: rustls is not driven again (what it holds of
    /// a handshake message refers to bytes that are gone).
    failed: bool,
}

/// What [`TlsSession::drive`] does once rustls allows application data.
enum Then<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

impl TlsSession {
    /// A session for one accepted connection. Fails only if the config
    /// cannot serve (it has no usable protocol version).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, TlsError> {
        Ok(TlsSession {
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            out: Outgoing::default(),
            plaintext: Vec::new(),
            early: Vec::new(),
            seen_bytes: false,
            closing: false,
            failed: false,
        })
    }

    /// Feeds ciphertext read from the socket. Consumes all of it: records
    /// split across reads are kept until complete.
    pub fn handle_read(&mut self, ciphertext: &[u8]) -> Result<(), TlsError> {
        self.check_first_bytes(ciphertext)?;
        if self.closing {
            return Ok(());
        }
        self.incoming.extend_from_slice(ciphertext);
        self.process_incoming()
    }

    /// As [`handle_read`](Self::handle_read), decrypting in `ciphertext`
    /// itself (the caller's read buffer, whose contents are then
    /// garbage): only an incomplete record at its end is copied, to wait
    /// for the next read.
    pub fn handle_read_in_place(&mut self, ciphertext: &mut [u8]) -> Result<(), TlsError> {
        if !self.incoming.is_empty() {
            return self.handle_read(ciphertext);
        }
        self.check_first_bytes(ciphertext)?;
        if self.closing {
            return Ok(());
        }
        let used = self.drive(ciphertext, Then::Nothing)?;
        if !self.closing {
            self.incoming.extend_from_slice(&ciphertext[used..]);
        }
        Ok(())
    }

    fn check_first_bytes(&mut self, ciphertext: &[u8]) -> Result<(), TlsError> {
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
        Ok(())
    }

    /// Processes `incoming` and keeps what is left of it.
    fn process_incoming(&mut self) -> Result<(), TlsError> {
        let mut incoming = std::mem::take(&mut self.incoming);
        let result = self.drive(&mut incoming, Then::Nothing);
        match result {
            Ok(used) if !self.closing => {
                incoming.drain(..used);
                if incoming.is_empty() && incoming.capacity() > KEEP_BUFFER {
                    incoming = Vec::new();
                }
                self.incoming = incoming;
                Ok(())
            }
            // RFC 8446 §6.1: "Any data received after a closure alert has
            // been received MUST be ignored."
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs rustls over `buf` until it needs more bytes, handing out what
    /// it decrypts, queueing what it encodes, and doing `then` once
    /// application data may be sent. Returns how many bytes of `buf` are
    /// done with (the rest is an incomplete record).
    fn drive(&mut self, buf: &mut [u8], mut then: Then<'_>) -> Result<usize, TlsError> {
        let TlsSession {
            conn,
            out,
            plaintext,
            early,
            closing,
            failed,
            ..
        } = self;
        let mut used = 0;
        loop {
            let UnbufferedStatus { mut discard, state } =
                conn.process_tls_records(&mut buf[used..]);
            match state {
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.inspect_err(|_| (*closing, *failed) = (true, true))?;
                        discard += record.discard;
                        plaintext.extend_from_slice(record.payload);
                    }
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => out.encode(&mut encode),
                // The records go out from `out` with the caller's next
                // write, in order, so they count as transmitted here.
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    used += discard;
                    let mut result = Ok(());
                    if !early.is_empty() {
                        result = out.encrypt(&mut traffic, &std::mem::take(early));
                    }
                    match std::mem::replace(&mut then, Then::Nothing) {
                        Then::Nothing => {}
                        Then::Encrypt(bytes) => {
                            result = result.and_then(|()| out.encrypt(&mut traffic, bytes))
                        }
                        Then::CloseNotify => out.close_notify(&mut traffic),
                    }
                    if result.is_err() {
                        *closing = true;
                    }
                    return result.map(|()| used);
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    // RFC 8446 §6.1: nothing after close_notify counts.
                    *closing = true;
                    return Ok(used + discard);
                }
                Ok(_) => {
                    // BlockedHandshake: more bytes are needed. Early data
                    // is never accepted (the config does not enable it).
                    if let Then::Encrypt(bytes) = then {
                        early.extend_from_slice(bytes);
                    }
                    return Ok(used + discard);
                }
                Err(e) => {
                    *closing = true;
                    *failed = true;
                    // rustls may still look at the bytes it has not
                    // discarded (a handshake message begun).
                    out.flush_alert(conn, &mut buf[used + discard..]);
                    return Err(e.into());
                }
            }
            used += discard;
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
        if bytes.is_empty() || self.failed {
            return;
        }
        let mut incoming = std::mem::take(&mut self.incoming);
        // Only records already processed are behind `incoming`'s bytes,
        // so this decrypts nothing new; it reaches the state in which
        // rustls encrypts. A failure here closes the connection.
        if let Ok(used) = self.drive(&mut incoming, Then::Encrypt(bytes)) {
            incoming.drain(..used);
        }
        self.incoming = incoming;
    }

    /// Appends the ciphertext to send (handshake messages, records, alerts)
    /// to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.out.pending());
        self.out.advance(self.out.pending().len());
    }

    /// Whether records wait to be sent.
    pub fn wants_write(&self) -> bool {
        !self.out.pending().is_empty()
    }

    /// Sends queued records straight into `w` (the socket: one `write`
    /// of every record queued, no copy first); returns the bytes written.
    /// What `w` does not take stays queued, so a `WouldBlock` loses
    /// nothing: call again when the socket is writable.
    pub fn write_tls_to(&mut self, w: &mut dyn std::io::Write) -> std::io::Result<usize> {
        let n = w.write(self.out.pending())?;
        self.out.advance(n);
        Ok(n)
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
    /// can tell our end of the stream from a truncation attack. Before
    /// the handshake is done there is no stream to end, and nothing is
    /// queued.
    pub fn close_notify(&mut self) {
        if self.failed {
            return;
        }
        let mut incoming = std::mem::take(&mut self.incoming);
        if let Ok(used) = self.drive(&mut incoming, Then::CloseNotify) {
            incoming.drain(..used);
        }
        self.incoming = incoming;
    }

    /// The peer closed (close_notify) or the connection failed: flush
    /// [`poll_transmit`](Self::poll_transmit), then close the socket.
    pub fn wants_close(&self) -> bool {
        self.closing
    }
}

/// Whether an encoded record is an alert. RFC 8446 §5.1: a plaintext one,
/// and any TLS 1.2 one, has content type 21 (a handshake record 22, the
/// compatibility change_cipher_spec 20). A TLS 1.3 encrypted record is
/// type 23 on the wire; an alert in it is 24 bytes (5 of header, the
/// 2-byte alert, its 1-byte inner type and a 16-byte tag; rustls pads
/// nothing), where the shortest handshake message, a KeyUpdate, makes 27.
fn is_alert_record(record: &[u8]) -> bool {
    match record.first() {
        Some(21) => true,
        Some(23) => record.len() == 24,
        _ => false,
    }
}

/// Records to send, encoded and encrypted in place: `buf[sent..end]`;
/// `buf[end..]` is room (initialised, so rustls can write into it).
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    sent: usize,
    end: usize,
}

impl Outgoing {
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..self.end]
    }

    /// `n` bytes were sent. Once all are, the buffer starts over (and a
    /// large one is freed).
    fn advance(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.end {
            self.sent = 0;
            self.end = 0;
            if self.buf.len() > KEEP_BUFFER {
                self.buf = Vec::new();
            }
        }
    }

    /// At least `n` bytes of room after `end`.
    fn room(&mut self, n: usize) {
        if self.buf.len() - self.end < n {
            self.buf.resize(self.end + n, 0);
        }
    }

    fn encode(&mut self, encode: &mut EncodeTlsData<'_, ServerConnectionData>) {
        loop {
            match encode.encode(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return;
                }
                Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    self.room(required_size)
                }
                // Only after a successful encode, which returned already.
                Err(_) => return,
            }
        }
    }

    fn encrypt(
        &mut self,
        traffic: &mut WriteTraffic<'_, ServerConnectionData>,
        bytes: &[u8],
    ) -> Result<(), TlsError> {
        self.room(bytes.len() + bytes.len().div_ceil(MAX_FRAGMENT) * RECORD_OVERHEAD);
        // RFC 8446 §5.5: a key used for too many records (EncryptExhausted)
        // must not be used again.
        self.put_records(|room| traffic.encrypt(bytes, room))
            .map_err(|_| TlsError::Protocol(rustls::Error::EncryptError))
    }

    fn close_notify(&mut self, traffic: &mut WriteTraffic<'_, ServerConnectionData>) {
        // A key past its limit sends no more, not even the goodbye.
        let _ = self.put_records(|room| traffic.queue_close_notify(room));
    }

    /// Runs `write` on the room after `end` (records rustls encrypts into
    /// it), growing the room to the size rustls asks for until they fit.
    fn put_records(
        &mut self,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
    ) -> Result<(), EncryptError> {
        loop {
            match write(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    self.room(required_size)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// After a failure rustls has queued the alert saying why, last, after
    /// any handshake messages of the same flight: encode them all and
    /// stop at the alert. rustls hands out what it queued before it looks
    /// at the input again, and that look must not happen: it would fail
    /// a second time (rustls asserts it sends one fatal alert only).
    fn flush_alert(&mut self, conn: &mut UnbufferedServerConnection, rest: &mut [u8]) {
        // The bound only guards against a flight longer than any rustls
        // sends.
        for _ in 0..16 {
            let Ok(ConnectionState::EncodeTlsData(mut encode)) =
                conn.process_tls_records(rest).state
            else {
                return;
            };
            let start = self.end;
            self.encode(&mut encode);
            if is_alert_record(&self.buf[start..self.end]) {
                return;
            }
        }
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

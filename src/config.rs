//! Every limit and timeout in one place.
//!
//! Each field says what happens when a peer reaches it. The binary turns
//! every field into a `--flag` (see `src/main.rs`); the defaults are the
//! ones documented in docs/protocol.md.

use std::net::SocketAddr;
use std::time::Duration;

/// The server's whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Set `SO_REUSEPORT` on the listener, so several processes can share
    /// one port (one per core); the kernel spreads new connections.
    pub reuse_port: bool,
    /// Log each parsed protocol event (request lines, headers, framing
    /// decisions, WebSocket frames, SSE events, long-poll park/wake/expire)
    /// to stderr in readable form.
    pub trace: bool,
    /// Log one line per answered request, and one per stream, WebSocket or
    /// long poll when it ends, to stderr: time, peer, method, target,
    /// status, bytes, duration, transport.
    pub access_log: bool,
    /// Behind a reverse proxy: the access log names the client from the
    /// first `X-Forwarded-For` value instead of the proxy's address. Off,
    /// the header is ignored (any client could send it).
    pub trust_proxy: bool,
    /// Serve `POST /debug/drop?topic=T`, which disconnects every SSE and
    /// WebSocket subscriber of a topic (the browser tests use it to prove
    /// reconnection). Off by default.
    pub debug_endpoints: bool,
    /// Serve the demo pages from this directory instead of the copies
    /// embedded at build time, so a page edit shows without a rebuild.
    /// For development: each request reads the file (a blocking read on
    /// the event loop).
    pub assets_dir: Option<std::path::PathBuf>,
    /// The official Socket.IO browser client (`socket.io.min.js` from the
    /// npm package `socket.io-client`), served at `/socket.io.min.js` for
    /// the `/demo/socketio` page. The project does not ship that bundle;
    /// unset, the path is 404 and the page says how to get it. Read on each
    /// request (a blocking read on the event loop, as `assets_dir`).
    pub socketio_client_js: Option<std::path::PathBuf>,

    // ---- HTTP/1.1 -------------------------------------------------------
    /// Largest request head (request line + headers + the empty line).
    /// At the limit: 431 Request Header Fields Too Large, then close.
    pub max_head_bytes: usize,
    /// Most header fields in one request. At the limit: 431, then close.
    pub max_headers: usize,
    /// Longest request-target. At the limit: 414 URI Too Long, then close.
    pub max_uri_bytes: usize,
    /// Largest request body (a published message). At the limit: 413
    /// Content Too Large, then close (the rest of the body is never read).
    pub max_body_bytes: usize,
    /// Most bytes of chunk extensions in one chunk-size line (they are
    /// ignored, but must be bounded). At the limit: 400, then close.
    pub max_chunk_ext_bytes: usize,
    /// Most bytes of trailer section after a chunked body. At the limit:
    /// 431, then close.
    pub max_trailer_bytes: usize,
    /// Most open connections. A connection accepted beyond it is answered
    /// 503 with `Connection: close` (best effort, one write) and closed.
    pub max_connections: usize,
    /// Time a client has to send a complete request head, counted from the
    /// first byte of that head (slowloris). At the deadline the connection
    /// is answered 408 and closed.
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body, counted from the end
    /// of its head. At the deadline: 408, then close.
    pub body_read_timeout: Duration,
    /// Time an idle keep-alive connection (no request in progress) is kept
    /// open. At the deadline it is closed silently.
    pub keep_alive_timeout: Duration,
    /// Most requests answered on one connection before `Connection: close`.
    pub max_requests_per_connection: u64,
    /// Cap on one connection's outbound queue for plain responses and
    /// pipelining. Past it the server stops reading that connection until
    /// the peer drains what is queued.
    pub max_outbound_bytes: usize,
    /// Value of `Access-Control-Allow-Origin` on the HTTP transports, and
    /// whether preflight `OPTIONS` is answered with the Allow-* headers.
    pub cors_origin: Option<String>,

    // ---- WebSocket ------------------------------------------------------
    /// Largest single frame payload. Over it: close 1009.
    pub ws_max_frame_bytes: u64,
    /// Largest reassembled message on `/echo`. Over it: close 1009.
    pub ws_max_message_bytes: usize,
    /// Most frames in one fragmented message. Memory is already bounded by
    /// the message size; this bounds the work of a flood of tiny or empty
    /// fragments that never finish a message. Over it: close 1009. (A
    /// 4 MiB message in 64-byte fragments, as Autobahn's 9.3.1 sends, is
    /// 65,537 frames.)
    pub ws_max_fragments: usize,
    /// Time to wait for the peer's close frame after ours, then the TCP
    /// connection is closed anyway.
    pub ws_close_timeout: Duration,
    /// An idle WebSocket gets a ping after this long without input.
    pub ws_ping_interval: Duration,
    /// After a ping, time the peer has to answer (with anything). Then
    /// the connection is considered dead and closed (1001 is not sent to
    /// a dead peer; the socket is dropped).
    pub ws_pong_timeout: Duration,
    /// Subprotocols the server speaks, in preference order; the first in
    /// the client's `Sec-WebSocket-Protocol` order that is here is chosen.
    pub ws_subprotocols: Vec<String>,
    /// Origins that may publish (POST, a WebSocket text frame, a `/ws` or
    /// Socket.IO publish) and open WebSockets, besides the server's own
    /// (scheme + `Host`) and the `--cors-origin` one; `*` allows all. A
    /// request whose `Origin` is none of them: 403, nothing published. A
    /// request without `Origin` (not a page's script) is judged by tokens
    /// alone.
    pub allowed_origins: Vec<String>,
    /// The HS256 secret of publish/subscribe tokens (`--auth-secret`, or
    /// `--auth-secret-file`). Set: every publish, subscribe and topic
    /// management request needs a token (none or invalid: 401; not for
    /// this topic: 403); a stream is ended when its token expires. Unset:
    /// no tokens.
    pub auth_secret: Option<Vec<u8>>,
    /// Clock skew allowed between the host that mints tokens and this one
    /// (RFC 7519 §4.1.4 "MAY provide for some small leeway"): a token is
    /// refused `auth_leeway` after its `exp` (and accepted that long
    /// before its `nbf`); a stream is ended then. Default 0: expired is
    /// refused, to the second.
    pub auth_leeway: Duration,
    /// PEM certificate chain and private key (`--tls-cert`, `--tls-key`):
    /// the listener speaks HTTPS/WSS (TLS 1.2 and 1.3, ALPN `http/1.1`).
    /// A connection that does not speak TLS is closed alone.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it.
    /// Off: offers are declined and every frame goes out uncompressed.
    pub ws_deflate: bool,
    /// zlib compression level (0-9) of a message compressed for one
    /// connection only: an `/echo` reply, a command's answer on `/ws`.
    /// Each such send pays its own compression, so the default is the
    /// fastest: level 1 (zlib-rs's "quick" strategy) compresses 16 KiB of
    /// JSON in about a quarter of level 6's CPU time, for 2.8× instead of
    /// 4.3× (`bench/README.md`, "permessage-deflate").
    pub ws_deflate_level: u32,
    /// zlib compression level (0-9) of a topic's messages, compressed once
    /// for every deflate subscriber (the frame is shared): its cost is
    /// divided by the subscribers, so the default buys ratio, level 6.
    /// Each level in use keeps one compressor per thread (about 324 KiB
    /// at level 6, less at level 1).
    pub ws_deflate_fanout_level: u32,
    /// LZ77 window the server compresses with, as a power of two (9-15).
    /// Costs no per-connection memory: the compressor is per thread
    /// (about 324 KiB resident at 15 bits, level 6, measured) and every
    /// message is compressed on its own. A client asking for a smaller window gets it
    /// (down to 9; an offer of 8 is declined).
    pub ws_deflate_server_window_bits: u8,
    /// LZ77 window we ask clients to compress with (8-15), when their
    /// offer lets us ask (clients that do not let us ask use 15). It
    /// bounds the client's compressor, not our inflater: zlib-rs allocates
    /// every inflate state with a 32 KiB window, about 47 KiB in all, held
    /// only while a compressed message arrives (unless context is kept,
    /// see below). So the default is the best ratio, 15.
    pub ws_deflate_client_window_bits: u8,
    /// Ask every client to reset its compressor after each message
    /// (RFC 7692 §7.1.1.2), so that no inflate state is kept between
    /// messages: an idle deflate connection then costs nothing extra. Off:
    /// a client that keeps its context makes the server keep an inflate
    /// state (about 47 KiB) for the life of the connection.
    pub ws_deflate_client_no_context_takeover: bool,
    /// Messages shorter than this many bytes are sent uncompressed
    /// (RSV1 clear): deflate's few bytes of framing would outweigh the
    /// saving.
    pub ws_deflate_threshold: usize,

    // ---- Hub ------------------------------------------------------------
    /// Largest published message (POST body or WebSocket text frame on a
    /// topic). Over it: 413 (HTTP) or close 1009 (WebSocket).
    pub max_message_bytes: usize,
    /// Messages kept per topic; the oldest is evicted past it.
    pub history_messages: usize,
    /// Age after which a kept message is evicted.
    pub history_age: Duration,
    /// Most topics. Publishing to or subscribing to a new topic beyond it:
    /// 503.
    pub max_topics: usize,
    /// Most messages in one poll or short-poll response (the rest is had
    /// with the returned `last_id`).
    pub max_batch: usize,
    /// Most bytes of message data (payloads as published) in one poll or
    /// short-poll response; the rest is had with the returned `last_id`.
    /// A response always carries at least one message, however large, so
    /// a reader can get past it.
    pub max_batch_bytes: usize,
    /// Bytes of history kept per topic: each kept message is charged its
    /// payload, any transformed copy its bytes call for (escaped JSON, SSE
    /// `data:` lines), its wire prefixes and the hub's bookkeeping. Past
    /// it, the topic's oldest messages are evicted, and a reader whose
    /// cursor needed one is told `gap`.
    pub history_bytes_per_topic: usize,
    /// Bytes of history kept by the whole hub, charged the same way. Past
    /// it, the globally oldest messages are evicted first (from whichever
    /// topic holds them), with the same `gap` to readers that needed them.
    /// With the default 512 MiB (and 64 MiB per topic) a default server's
    /// history stays under 512 MiB whatever clients publish, which keeps
    /// the whole process under about 1 GiB.
    pub history_bytes_total: usize,
    /// Cap on a subscriber's outbound queue (SSE or topic WebSocket). At
    /// the cap the subscriber is disconnected (SSE: the stream ends;
    /// WebSocket: close 1008), counted, and can resume by its cursor.
    pub subscriber_queue_bytes: usize,
    /// Most topics one connection carries (`/sse?topic=A&topic=B…`, the
    /// pairs of a combined cursor, `/ws` subscriptions). A request naming
    /// more, or a combined cursor with more pairs, is answered 400; a `/ws`
    /// subscribe beyond it gets an `error` reply and changes nothing.
    pub max_topics_per_connection: usize,

    // ---- SSE ------------------------------------------------------------
    /// A `: heartbeat` comment is sent after this long without an event.
    pub heartbeat_interval: Duration,
    /// The `retry:` field sent first on every stream, in milliseconds.
    pub sse_retry_ms: u64,

    // ---- Long polling ---------------------------------------------------
    /// Default long-poll wait when the request has no `timeout=`.
    pub poll_default_timeout: Duration,
    /// Largest `timeout=` honoured; larger values are capped to it.
    pub poll_max_timeout: Duration,
    /// Most parked long-poll requests at once. Beyond it a new long poll
    /// is answered 503 at once.
    pub max_parked_polls: usize,

    // ---- Socket.IO / Engine.IO ------------------------------------------
    /// Most Engine.IO sessions (Socket.IO connections, polling or
    /// WebSocket) at once. A handshake over it is answered 503.
    pub sio_max_sessions: usize,
    /// Engine.IO `maxPayload`: the largest polling body or WebSocket
    /// message a client may send. Over it: 413 (polling) or close 1009,
    /// and the session ends.
    pub sio_max_payload: usize,
    /// Engine.IO `pingInterval`: the server pings each session this often.
    pub sio_ping_interval: Duration,
    /// Engine.IO `pingTimeout`: a session whose client does not answer a
    /// ping within it is closed ("ping timeout").
    pub sio_ping_timeout: Duration,
    /// Socket.IO `connectTimeout`: a connection that joins no namespace
    /// within it is closed.
    pub sio_connect_timeout: Duration,
    /// Most packets waiting for a polling client's next GET. Over it the
    /// session is closed ("buffer full"): the client stopped polling.
    pub sio_max_buffered_packets: usize,
    /// Also serve a plain Engine.IO server at this path (`/engine.io/`),
    /// which echoes every message back: the target of the official
    /// Engine.IO test suite. Off by default.
    pub engineio_echo_path: Option<String>,
    /// Connection state recovery on namespace `/`: the CONNECT reply
    /// carries a `pid`, every event carries the socket's combined cursor
    /// as its last argument, and a client that reconnects with them
    /// (socket.io-client does by itself) resumes every topic where it
    /// stood, from the history.
    pub sio_recovery: bool,

    // ---- Cluster (Redis) ------------------------------------------------
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`: run the hub on Redis
    /// (docs/protocol.md "Cluster"); `None`: the in-memory hub alone.
    pub redis: Option<String>,
    /// How long a request that needs Redis waits: a publish for its id, a
    /// subscribe or poll for its topic's first sync, a connect, any reply.
    /// At the limit the request is answered 503 (a reply that late also
    /// fails the connection, which is then reopened).
    pub redis_timeout: Duration,
    /// How long a node keeps following a topic after its last local
    /// subscriber left (long polls that come and go find it warm). At the
    /// limit the topic's channel is unsubscribed; the next request for it
    /// waits for a new sync.
    pub redis_linger: Duration,
    /// How often each followed topic's position is checked against Redis
    /// (a message lost by pub/sub on a quiet topic is found then, not at
    /// the next message).
    pub redis_check_interval: Duration,
    /// Most Redis commands in flight. At the limit a publish is answered
    /// 503 at once: nothing waits in an unbounded queue.
    pub redis_max_pending: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            reuse_port: false,
            trace: false,
            access_log: false,
            trust_proxy: false,
            debug_endpoints: false,
            assets_dir: None,
            socketio_client_js: None,

            max_head_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 1024 * 1024,
            max_chunk_ext_bytes: 1024,
            max_trailer_bytes: 8 * 1024,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(60),
            max_requests_per_connection: u64::MAX,
            max_outbound_bytes: 4 * 1024 * 1024,
            cors_origin: None,

            ws_max_frame_bytes: 16 * 1024 * 1024,
            ws_max_message_bytes: 16 * 1024 * 1024,
            ws_max_fragments: 100_000,
            ws_close_timeout: Duration::from_secs(5),
            ws_ping_interval: Duration::from_secs(30),
            ws_pong_timeout: Duration::from_secs(30),
            ws_subprotocols: Vec::new(),
            allowed_origins: Vec::new(),
            auth_secret: None,
            auth_leeway: Duration::ZERO,
            tls_cert: None,
            tls_key: None,
            ws_deflate: true,
            ws_deflate_level: 1,
            ws_deflate_fanout_level: 6,
            ws_deflate_server_window_bits: 15,
            ws_deflate_client_window_bits: 15,
            ws_deflate_client_no_context_takeover: true,
            ws_deflate_threshold: 128,

            max_message_bytes: 1024 * 1024,
            history_messages: 1000,
            history_age: Duration::from_secs(3600),
            max_topics: 100_000,
            max_batch: 1000,
            max_batch_bytes: 1024 * 1024,
            history_bytes_per_topic: 64 * 1024 * 1024,
            history_bytes_total: 512 * 1024 * 1024,
            subscriber_queue_bytes: 1024 * 1024,
            max_topics_per_connection: 64,

            heartbeat_interval: Duration::from_secs(15),
            sse_retry_ms: 3000,

            poll_default_timeout: Duration::from_secs(30),
            poll_max_timeout: Duration::from_secs(120),
            max_parked_polls: 100_000,

            sio_max_sessions: 10_000,
            sio_max_payload: 1_000_000,
            sio_ping_interval: Duration::from_millis(25_000),
            sio_ping_timeout: Duration::from_millis(20_000),
            sio_connect_timeout: Duration::from_millis(45_000),
            sio_max_buffered_packets: 1_000,
            engineio_echo_path: None,
            sio_recovery: false,

            redis: None,
            redis_timeout: Duration::from_secs(2),
            redis_linger: Duration::from_secs(30),
            redis_check_interval: Duration::from_secs(5),
            redis_max_pending: 10_000,
        }
    }
}

impl Config {
    /// Checks what the server writes verbatim into every response: a CR or
    /// LF in the CORS origin would let it inject header lines (RFC 9110
    /// §5.5: field values contain no CR/LF).
    pub fn validate(&self) -> Result<(), String> {
        crate::security::OriginPolicy::new(&self.allowed_origins, self.cors_origin.as_deref())
            .map_err(|e| format!("--allowed-origins / --cors-origin: {e}"))?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        if let Some(url) = &self.redis {
            crate::proto::redis::RedisConfig::from_url(url).map_err(|e| format!("--redis: {e}"))?;
        }
        if self.redis_timeout.is_zero() {
            return Err("--redis-timeout must be above 0".into());
        }
        if self.auth_leeway > Duration::from_secs(3600) {
            return Err("--auth-leeway is at most 3600 seconds".into());
        }
        if self.auth_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return Err("--auth-secret must be at least 16 bytes".into());
        }
        if let Some(origin) = &self.cors_origin {
            if origin.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err("--cors-origin must not contain CR, LF or NUL".into());
            }
        }
        Ok(())
    }
}

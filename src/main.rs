//! The `pushwire` binary: flags → [`Config`] → [`Server`].

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use pushwire::server::Server;
use pushwire::Config;

/// One command-line flag: its name, its value's form, what it sets.
struct Flag {
    name: &'static str,
    value: &'static str,
    help: &'static str,
    set: fn(&mut Config, &str) -> Result<(), String>,
}

fn num<T: FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

fn secs(s: &str) -> Result<Duration, String> {
    let f: f64 = s
        .parse()
        .map_err(|_| format!("not a duration in seconds: {s:?}"))?;
    if !(0.0..=1e9).contains(&f) {
        return Err(format!("out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(f))
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off: {s:?}")),
    }
}

fn window_bits(s: &str, min: u8) -> Result<u8, String> {
    let bits: u8 = num(s)?;
    if !(min..=15).contains(&bits) {
        return Err(format!("window bits must be {min}-15: {s:?}"));
    }
    Ok(bits)
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "listen",
        value: "ADDR",
        help:
            "address to listen on: HOST:PORT, [V6]:PORT, a name, or a host alone [127.0.0.1:8080]",
        set: |c, v| {
            c.listen = listen_addr(v)?;
            Ok(())
        },
    },
    Flag {
        name: "assets-dir",
        value: "DIR",
        help: "serve the demo pages from DIR instead of the embedded copies (for editing them)",
        set: |c, v| {
            c.assets_dir = Some(v.into());
            Ok(())
        },
    },
    Flag {
        name: "socketio-client-js",
        value: "FILE",
        help: "serve FILE (socket.io-client's dist/socket.io.min.js) at /socket.io.min.js for /demo/socketio",
        set: |c, v| {
            c.socketio_client_js = Some(v.into());
            Ok(())
        },
    },
    Flag {
        name: "auth-secret",
        value: "SECRET",
        help: "require HS256 tokens (Bearer or ?token=) to publish, subscribe and manage topics (at least 16 bytes)",
        set: |c, v| {
            c.auth_secret = Some(v.as_bytes().to_vec());
            Ok(())
        },
    },
    Flag {
        name: "auth-secret-file",
        value: "FILE",
        help: "the token secret from FILE (a trailing newline is dropped; at least 16 bytes)",
        set: |c, v| {
            let mut secret = std::fs::read(v).map_err(|e| format!("{v}: {e}"))?;
            while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                secret.pop();
            }
            c.auth_secret = Some(secret);
            Ok(())
        },
    },
    Flag {
        name: "auth-leeway",
        value: "SECS",
        help: "clock skew allowed on a token's exp and nbf [0]",
        set: |c, v| {
            c.auth_leeway = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "tls-cert",
        value: "PEM",
        help: "certificate chain: the listener speaks HTTPS/WSS (with --tls-key)",
        set: |c, v| {
            c.tls_cert = Some(v.into());
            Ok(())
        },
    },
    Flag {
        name: "tls-key",
        value: "PEM",
        help: "the certificate's private key",
        set: |c, v| {
            c.tls_key = Some(v.into());
            Ok(())
        },
    },
    Flag {
        name: "max-head-bytes",
        value: "N",
        help: "largest request head; over it: 431 [16384]",
        set: |c, v| {
            c.max_head_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-headers",
        value: "N",
        help: "most header fields; over it: 431 [100]",
        set: |c, v| {
            c.max_headers = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-uri-bytes",
        value: "N",
        help: "longest request-target; over it: 414 [8192]",
        set: |c, v| {
            c.max_uri_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-body-bytes",
        value: "N",
        help: "largest request body; over it: 413 and close [1048576]",
        set: |c, v| {
            c.max_body_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-chunk-ext-bytes",
        value: "N",
        help: "most chunk-extension bytes per chunk; over it: 400 [1024]",
        set: |c, v| {
            c.max_chunk_ext_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-trailer-bytes",
        value: "N",
        help: "most trailer bytes after a chunked body; over it: 431 [8192]",
        set: |c, v| {
            c.max_trailer_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-connections",
        value: "N",
        help: "most open connections; beyond: 503 and close [10000]",
        set: |c, v| {
            c.max_connections = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "header-read-timeout",
        value: "SECS",
        help: "time to send a whole request head; then 408 and close [10]",
        set: |c, v| {
            c.header_read_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "body-read-timeout",
        value: "SECS",
        help: "time to send a whole request body; then 408 and close [60]",
        set: |c, v| {
            c.body_read_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "keep-alive-timeout",
        value: "SECS",
        help: "idle keep-alive connections are closed after it [60]",
        set: |c, v| {
            c.keep_alive_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-requests-per-connection",
        value: "N",
        help: "then Connection: close [unlimited]",
        set: |c, v| {
            c.max_requests_per_connection = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-outbound-bytes",
        value: "N",
        help: "a connection's queue cap; past it reading pauses [4194304]",
        set: |c, v| {
            c.max_outbound_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "cors-origin",
        value: "ORIGIN",
        help: "Access-Control-Allow-Origin for the HTTP transports, and preflight answers; that origin may also publish and open WebSockets",
        set: |c, v| {
            c.cors_origin = Some(v.to_string());
            Ok(())
        },
    },
    Flag {
        name: "ws-max-frame-bytes",
        value: "N",
        help: "largest WebSocket frame; over it: close 1009 [16777216]",
        set: |c, v| {
            c.ws_max_frame_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-max-message-bytes",
        value: "N",
        help: "largest message on /echo; over it: close 1009 [16777216]",
        set: |c, v| {
            c.ws_max_message_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-max-fragments",
        value: "N",
        help: "most frames in one message; over it: close 1009 [100000]",
        set: |c, v| {
            c.ws_max_fragments = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-close-timeout",
        value: "SECS",
        help: "wait for the peer's close frame, then drop [5]",
        set: |c, v| {
            c.ws_close_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-ping-interval",
        value: "SECS",
        help: "ping an idle WebSocket after it [30]",
        set: |c, v| {
            c.ws_ping_interval = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-pong-timeout",
        value: "SECS",
        help: "a peer silent this long after a ping is dead [30]",
        set: |c, v| {
            c.ws_pong_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-subprotocols",
        value: "A,B",
        help: "subprotocols spoken, in preference order",
        set: |c, v| {
            c.ws_subprotocols = list(v);
            Ok(())
        },
    },
    Flag {
        name: "allowed-origins",
        value: "A,B",
        help: "other origins that may publish and open WebSockets (* = any); others: 403 [own origin, and --cors-origin]",
        set: |c, v| {
            c.allowed_origins = list(v);
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate",
        value: "on|off",
        help: "negotiate permessage-deflate (RFC 7692) [on]",
        set: |c, v| {
            c.ws_deflate = on_off(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate-level",
        value: "0-9",
        help: "zlib level of WebSocket messages compressed for one connection (echo, replies) [1]",
        set: |c, v| {
            let level: u32 = num(v)?;
            if level > 9 {
                return Err(format!("level must be 0-9: {v:?}"));
            }
            c.ws_deflate_level = level;
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate-fanout-level",
        value: "0-9",
        help: "zlib level of topic messages, compressed once for all subscribers [6]",
        set: |c, v| {
            let level: u32 = num(v)?;
            if level > 9 {
                return Err(format!("level must be 0-9: {v:?}"));
            }
            c.ws_deflate_fanout_level = level;
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate-server-window-bits",
        value: "9-15",
        help: "LZ77 window the server compresses with (per thread, not per connection) [15]",
        set: |c, v| {
            c.ws_deflate_server_window_bits = window_bits(v, 9)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate-client-window-bits",
        value: "8-15",
        help: "LZ77 window asked of clients (bounds their compressor) [15]",
        set: |c, v| {
            c.ws_deflate_client_window_bits = window_bits(v, 8)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate-client-no-context-takeover",
        value: "on|off",
        help: "ask clients to reset their compressor per message: no idle inflate state [on]",
        set: |c, v| {
            c.ws_deflate_client_no_context_takeover = on_off(v)?;
            Ok(())
        },
    },
    Flag {
        name: "ws-deflate-threshold",
        value: "BYTES",
        help: "messages shorter than this are sent uncompressed [128]",
        set: |c, v| {
            c.ws_deflate_threshold = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-message-bytes",
        value: "N",
        help: "largest published message; over it: 413 / close 1009 [1048576]",
        set: |c, v| {
            c.max_message_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "history-messages",
        value: "N",
        help: "messages kept per topic [1000]",
        set: |c, v| {
            c.history_messages = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "history-age",
        value: "SECS",
        help: "kept messages older than this are evicted [3600]",
        set: |c, v| {
            c.history_age = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-topics",
        value: "N",
        help: "most topics; a new one beyond it: 503 [100000]",
        set: |c, v| {
            c.max_topics = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-batch",
        value: "N",
        help: "most messages in one poll response [1000]",
        set: |c, v| {
            c.max_batch = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-batch-bytes",
        value: "N",
        help: "most message bytes in one poll response (at least one message) [1048576]",
        set: |c, v| {
            c.max_batch_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-topics-per-connection",
        value: "N",
        help: "most topics on one connection; beyond: 400 or a /ws error reply [64]",
        set: |c, v| {
            c.max_topics_per_connection = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "history-bytes-per-topic",
        value: "N",
        help: "history bytes kept per topic; oldest evicted past it [67108864]",
        set: |c, v| {
            c.history_bytes_per_topic = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "history-bytes-total",
        value: "N",
        help: "history bytes kept in all, oldest first evicted past it; the default keeps a default server under ~1 GiB [536870912]",
        set: |c, v| {
            c.history_bytes_total = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "subscriber-queue-bytes",
        value: "N",
        help: "a subscriber's queue cap; at it: disconnected [1048576]",
        set: |c, v| {
            c.subscriber_queue_bytes = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "heartbeat-interval",
        value: "SECS",
        help: "SSE heartbeat comment after this long idle [15]",
        set: |c, v| {
            c.heartbeat_interval = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sse-retry-ms",
        value: "MS",
        help: "the retry: field sent first on every stream [3000]",
        set: |c, v| {
            c.sse_retry_ms = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "poll-default-timeout",
        value: "SECS",
        help: "long-poll wait without timeout= [30]",
        set: |c, v| {
            c.poll_default_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "poll-max-timeout",
        value: "SECS",
        help: "largest timeout= honoured [120]",
        set: |c, v| {
            c.poll_max_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "max-parked-polls",
        value: "N",
        help: "most parked long polls; beyond: 503 [100000]",
        set: |c, v| {
            c.max_parked_polls = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sio-max-sessions",
        value: "N",
        help: "most Engine.IO sessions (Socket.IO connections); beyond: 503 [10000]",
        set: |c, v| {
            c.sio_max_sessions = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sio-max-payload",
        value: "BYTES",
        help: "Engine.IO maxPayload: largest polling body or WebSocket message; beyond: 413 / 1009 [1000000]",
        set: |c, v| {
            c.sio_max_payload = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sio-ping-interval",
        value: "SECS",
        help: "Engine.IO pingInterval [25]",
        set: |c, v| {
            c.sio_ping_interval = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sio-ping-timeout",
        value: "SECS",
        help: "Engine.IO pingTimeout: no pong within it closes the session [20]",
        set: |c, v| {
            c.sio_ping_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sio-connect-timeout",
        value: "SECS",
        help: "Socket.IO connectTimeout: no namespace joined within it closes the connection [45]",
        set: |c, v| {
            c.sio_connect_timeout = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "sio-max-buffered-packets",
        value: "N",
        help: "packets waiting for a polling client's next GET; beyond: the session closes [1000]",
        set: |c, v| {
            c.sio_max_buffered_packets = num(v)?;
            Ok(())
        },
    },
    Flag {
        name: "engineio-echo-path",
        value: "PATH",
        help: "also serve an Engine.IO echo server at PATH, e.g. /engine.io/ (the official suite's target)",
        set: |c, v| {
            if !v.starts_with('/') {
                return Err(format!("a path starts with '/': {v:?}"));
            }
            c.engineio_echo_path = Some(v.to_string());
            Ok(())
        },
    },
    Flag {
        name: "redis",
        value: "URL",
        help: "redis://[:PASSWORD@]HOST:PORT[/DB]: run the hub on Redis (cluster mode) [off]",
        set: |c, v| {
            c.redis = Some(v.to_string());
            Ok(())
        },
    },
    Flag {
        name: "redis-timeout",
        value: "MS",
        help: "how long a request waits for Redis; then 503 [2000]",
        set: |c, v| {
            c.redis_timeout = Duration::from_millis(num(v)?);
            Ok(())
        },
    },
    Flag {
        name: "redis-linger",
        value: "SECS",
        help: "a topic stays followed this long after its last local subscriber [30]",
        set: |c, v| {
            c.redis_linger = secs(v)?;
            Ok(())
        },
    },
    Flag {
        name: "redis-check-interval",
        value: "MS",
        help: "how often followed topics are checked for lost messages [5000]",
        set: |c, v| {
            c.redis_check_interval = Duration::from_millis(num(v)?);
            Ok(())
        },
    },
    Flag {
        name: "redis-max-pending",
        value: "N",
        help: "most Redis commands in flight; beyond: 503 [10000]",
        set: |c, v| {
            c.redis_max_pending = num(v)?;
            Ok(())
        },
    },
];

fn usage() -> String {
    let switches: &[(&str, &str)] = &[
        ("-h, --help", "this text"),
        ("-V, --version", "the version"),
        ("--trace", "log every parsed protocol event to stderr"),
        (
            "--trust-proxy",
            "the access log names the client by X-Forwarded-For (only behind a proxy you run)",
        ),
        (
            "--access-log",
            "one line per request or stream end to stderr: time, peer, method, target, status, bytes, duration, transport",
        ),
        (
            "--debug-endpoints",
            "serve POST /debug/drop?topic=T (for tests)",
        ),
        (
            "--reuse-port",
            "SO_REUSEPORT: several processes share one port (one per core)",
        ),
        (
            "--sio-recovery",
            "Socket.IO connection state recovery on /: events carry a combined cursor as offset; a reconnecting client resumes its topics",
        ),
    ];
    let lefts: Vec<String> = FLAGS
        .iter()
        .map(|f| format!("--{} {}", f.name, f.value))
        .collect();
    // One column wide enough for the longest flag, so no help text runs
    // into its flag.
    let width = lefts
        .iter()
        .map(String::len)
        .chain(switches.iter().map(|(l, _)| l.len()))
        .max()
        .unwrap_or(0)
        + 2;
    let mut s = format!(
        "pushwire {}: a realtime push server (HTTP/1.1, SSE, HTTP streaming, long polling, short polling, WebSocket, Socket.IO)\n\n\
         usage: pushwire [FLAGS]\n\n\
         A default server keeps at most about 1 GiB whatever clients publish: history is\n\
         bounded per topic and in all (see --history-* below), each connection's queue\n\
         by --subscriber-queue-bytes and --max-outbound-bytes. What clients are sending\n\
         is bounded per connection, not in all: up to --max-body-bytes of a request\n\
         body (or --ws-max-message-bytes of a message on /echo) times\n\
         --max-connections; lower those where memory is tight.\n\
         SIGINT and SIGTERM stop it gracefully; SIGHUP is ignored.\n\n",
        env!("CARGO_PKG_VERSION")
    );
    for (left, help) in switches {
        s.push_str(&format!("  {left:<width$}{help}\n"));
    }
    for (f, left) in FLAGS.iter().zip(&lefts) {
        s.push_str(&format!("  {left:<width$}{}\n", f.help));
    }
    s
}

/// What the command line asks for.
enum Cli {
    Serve(Box<Config>),
    Help,
    Version,
}

fn parse(args: &[String]) -> Result<Cli, String> {
    let mut cfg = Config::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "-h" | "--help" => return Ok(Cli::Help),
            "-V" | "--version" => return Ok(Cli::Version),
            _ => {}
        }
        let Some(name) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        match name {
            "trace" => cfg.trace = true,
            "debug-endpoints" => cfg.debug_endpoints = true,
            "reuse-port" => cfg.reuse_port = true,
            "access-log" => cfg.access_log = true,
            "trust-proxy" => cfg.trust_proxy = true,
            "sio-recovery" => cfg.sio_recovery = true,
            _ => {
                let flag = FLAGS
                    .iter()
                    .find(|f| f.name == name)
                    .ok_or_else(|| format!("unknown flag --{name}"))?;
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("--{name} needs a value"))?
                    }
                };
                (flag.set)(&mut cfg, &value).map_err(|e| format!("--{name}: {e}"))?;
            }
        }
        i += 1;
    }
    cfg.validate()?;
    Ok(Cli::Serve(Box::new(cfg)))
}

/// `--listen`: `HOST:PORT`, `[v6]:PORT`, or a host alone (port 8080);
/// names are resolved (`localhost:8080`), the first address is used.
fn listen_addr(v: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = v.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 8080));
    }
    let with_port = if v
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        v.to_string()
    } else {
        format!("{v}:8080")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {v:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{v:?} resolves to no address"))
}

/// SIGINT and SIGTERM are blocked in every thread and taken by one thread
/// with `sigwait`, which then asks the server to shut down through its
/// handle (and so through mio's waker). No handler runs at an arbitrary
/// point, and no signal can fall between a check of a flag and `poll()`.
/// SIGHUP is ignored: a server started from a terminal outlives it.
fn stop_on_signals(handle: pushwire::Handle) -> Result<(), String> {
    // SAFETY: sigset and sigaction calls on locals; SIG_IGN is a valid
    // disposition. The mask is set before any thread is spawned, so every
    // thread inherits it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err("pthread_sigmask failed".into());
        }
        let mut ignore: libc::sigaction = std::mem::zeroed();
        ignore.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGHUP, &ignore, std::ptr::null_mut());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set, &mut sig) == 0 {
                    eprintln!("pushwire: signal {sig}");
                    handle.shutdown();
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(Cli::Serve(cfg)) => *cfg,
        Ok(Cli::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Version) => {
            println!("pushwire {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pushwire: {e}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pushwire: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = stop_on_signals(server.handle()) {
        eprintln!("pushwire: signals: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "pushwire: listening on {}://{}/",
        if server.is_tls() { "https" } else { "http" },
        server.local_addr()
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushwire: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listen_takes_names_v6_and_hosts_alone() {
        assert_eq!(
            listen_addr("127.0.0.1:9000").unwrap(),
            "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            listen_addr("[::1]:8080").unwrap(),
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            listen_addr("0.0.0.0").unwrap(),
            "0.0.0.0:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(listen_addr("::1").unwrap().port(), 8080);
        assert!(listen_addr("localhost:8081").unwrap().ip().is_loopback());
        assert_eq!(listen_addr("localhost").unwrap().port(), 8080);
        assert!(listen_addr("no such host.invalid:1").is_err());
    }

    #[test]
    fn help_version_and_switches() {
        assert!(matches!(parse(&args(&["-h"])), Ok(Cli::Help)));
        assert!(matches!(parse(&args(&["--help"])), Ok(Cli::Help)));
        assert!(matches!(parse(&args(&["-V"])), Ok(Cli::Version)));
        assert!(matches!(parse(&args(&["--version"])), Ok(Cli::Version)));
        let Ok(Cli::Serve(cfg)) = parse(&args(&["--assets-dir", "/tmp/x", "--reuse-port"])) else {
            panic!("flags refused");
        };
        assert_eq!(
            cfg.assets_dir.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        assert!(cfg.reuse_port);
        assert!(parse(&args(&["--cors-origin", "a\r\nX: y"])).is_err());
        assert!(parse(&args(&["--nope"])).is_err());
    }

    #[test]
    fn socketio_client_js_flag() {
        let file = "node_modules/socket.io-client/dist/socket.io.min.js";
        let Ok(Cli::Serve(cfg)) = parse(&args(&["--socketio-client-js", file])) else {
            panic!("flag refused");
        };
        assert_eq!(
            cfg.socketio_client_js.as_deref(),
            Some(std::path::Path::new(file))
        );
        let Ok(Cli::Serve(cfg)) = parse(&args(&[])) else {
            panic!("no flags refused");
        };
        assert_eq!(cfg.socketio_client_js, None);
    }

    #[test]
    fn every_flag_has_its_help_in_its_own_column() {
        let text = usage();
        for f in FLAGS {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("--{} ", f.name)))
                .unwrap_or_else(|| panic!("--{} missing from --help", f.name));
            let left = format!("--{} {}", f.name, f.value);
            let after = &line.trim_start()[left.len()..];
            assert!(after.starts_with("  "), "runs together: {line:?}");
        }
    }
}

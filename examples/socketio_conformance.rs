//! The server the official Engine.IO and Socket.IO protocol test suites
//! expect (socketio/engine.io-protocol and socketio/socket.io-protocol,
//! `test-suite/`), built with pushwire's public API:
//!
//! - `/engine.io/`: a plain Engine.IO server that echoes every message;
//! - `/socket.io/`: pingInterval 300 ms, pingTimeout 200 ms, maxPayload
//!   1,000,000, connectTimeout 1,000 ms; namespace `/` emits `auth` with
//!   the handshake's auth on connect, answers `message` with
//!   `message-back` (same arguments) and `message-with-ack` with an ack
//!   of its arguments; namespace `/custom` emits `auth`.
//!
//! ```text
//! cargo run --example socketio_conformance -- --listen 127.0.0.1:3000
//! bash ../shared/conformance/socketio/run.sh 3000
//! ```

use std::time::Duration;

use pushwire::client::json::Value;
use pushwire::proto::socketio::{Event, Namespace, SocketCtx};
use pushwire::{Config, Server};

/// `/` of the Socket.IO suite.
struct Main;

impl Namespace for Main {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        socket.emit("auth", vec![auth.clone()]);
        Ok(())
    }

    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>) {
        match event.name {
            "message" => socket.emit_binary(
                "message-back",
                event.args.to_vec(),
                event.attachments.to_vec(),
            ),
            "message-with-ack" => {
                if let Some(id) = event.ack {
                    socket.ack(id, event.args.to_vec(), event.attachments.to_vec());
                }
            }
            _ => {}
        }
    }
}

/// `/custom` of the Socket.IO suite.
struct Custom;

impl Namespace for Custom {
    fn on_connect(&mut self, socket: &mut SocketCtx<'_>, auth: &Value) -> Result<(), Value> {
        socket.emit("auth", vec![auth.clone()]);
        Ok(())
    }

    fn on_event(&mut self, _socket: &mut SocketCtx<'_>, _event: &Event<'_>) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = Config {
        listen: "127.0.0.1:3000".parse()?,
        sio_ping_interval: Duration::from_millis(300),
        sio_ping_timeout: Duration::from_millis(200),
        sio_max_payload: 1_000_000,
        sio_connect_timeout: Duration::from_millis(1_000),
        engineio_echo_path: Some("/engine.io/".into()),
        ..Config::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => cfg.listen = args.next().ok_or("--listen ADDR")?.parse()?,
            "--trace" => cfg.trace = true,
            other => return Err(format!("unknown argument {other:?} (--listen ADDR)").into()),
        }
    }
    let mut server = Server::bind(cfg)?;
    server.namespace("/", Main).namespace("/custom", Custom);
    eprintln!(
        "socketio_conformance: Engine.IO echo on http://{0}/engine.io/, Socket.IO on http://{0}/socket.io/",
        server.local_addr()
    );
    server.run()?;
    Ok(())
}

//! A Socket.IO chat with rooms and acknowledgements, written with
//! pushwire's library API: a [`Namespace`] at `/chat` keeps its rooms
//! (room name → the sockets in it) and answers three events:
//!
//! - `join(room, ack)`: joins, acks `{"room","members"}`, and tells the
//!   room `joined` `{"room","id"}`;
//! - `say(room, text, ack)`: sends `said` `{"room","from","text"}` to
//!   every member (the sender too), acks `{"delivered":N}`; a socket not
//!   in the room gets `{"error":"not in room"}`;
//! - `leave(room)`.
//!
//! ```text
//! cargo run --example socketio_chat -- --demo
//! ```
//! starts a server and two bots speaking raw Engine.IO/Socket.IO packets
//! over WebSocket (so the packets show), who join a room and talk.
//!
//! ```text
//! cargo run --example socketio_chat -- --listen 127.0.0.1:3000
//! ```
//! serves it for real clients, e.g. Node's `socket.io-client`:
//! ```js
//! const s = require("socket.io-client").io("http://127.0.0.1:3000/chat");
//! s.emit("join", "lobby", (ack) => s.emit("say", "lobby", "hi", console.log));
//! s.on("said", console.log);
//! ```
//! Namespace `/` stays the hub's (subscribe/publish), as in the binary.

use std::collections::HashMap;
use std::time::Duration;

use pushwire::client::json::Value;
use pushwire::client::{WsClient, WsMessage};
use pushwire::proto::socketio::{DisconnectReason, Event, Namespace, SocketAddr, SocketCtx};
use pushwire::{Config, Server};

/// The rooms of `/chat`.
#[derive(Default)]
struct Chat {
    rooms: HashMap<String, Vec<SocketAddr>>,
}

fn object(members: Vec<(&str, Value)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl Namespace for Chat {
    fn on_event(&mut self, socket: &mut SocketCtx<'_>, event: &Event<'_>) {
        let room = event.args.first().and_then(Value::as_str).unwrap_or("");
        if room.is_empty() {
            if let Some(ack) = event.ack {
                let error = object(vec![("error", Value::String("no room named".into()))]);
                socket.ack(ack, vec![error], Vec::new());
            }
            return;
        }
        let me = socket.addr().clone();
        match event.name {
            "join" => {
                let members = self.rooms.entry(room.to_string()).or_default();
                if !members.contains(&me) {
                    members.push(me.clone());
                }
                let joined = object(vec![
                    ("room", Value::String(room.into())),
                    ("id", Value::String(socket.id().to_string())),
                ]);
                for m in members.iter().filter(|m| **m != me) {
                    socket.emit_to(m, "joined", vec![joined.clone()]);
                }
                if let Some(ack) = event.ack {
                    let n = Value::from(members.len() as f64);
                    let reply = object(vec![("room", Value::String(room.into())), ("members", n)]);
                    socket.ack(ack, vec![reply], Vec::new());
                }
            }
            "say" => {
                let text = event.args.get(1).cloned().unwrap_or(Value::Null);
                let members = self.rooms.get(room).cloned().unwrap_or_default();
                let reply = if members.contains(&me) {
                    let said = object(vec![
                        ("room", Value::String(room.into())),
                        ("from", Value::String(socket.id().to_string())),
                        ("text", text),
                    ]);
                    for m in &members {
                        if *m == me {
                            socket.emit("said", vec![said.clone()]);
                        } else {
                            socket.emit_to(m, "said", vec![said.clone()]);
                        }
                    }
                    object(vec![("delivered", Value::from(members.len() as f64))])
                } else {
                    object(vec![("error", Value::String("not in room".into()))])
                };
                if let Some(ack) = event.ack {
                    socket.ack(ack, vec![reply], Vec::new());
                }
            }
            "leave" => {
                if let Some(members) = self.rooms.get_mut(room) {
                    members.retain(|m| *m != me);
                }
            }
            _ => {}
        }
    }

    fn on_disconnect(
        &mut self,
        socket: &SocketAddr,
        _id: pushwire::proto::engineio::Sid,
        _reason: DisconnectReason,
    ) {
        for members in self.rooms.values_mut() {
            members.retain(|m| m != socket);
        }
        self.rooms.retain(|_, m| !m.is_empty());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = Config::default();
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => cfg.listen = args.next().ok_or("--listen ADDR")?.parse()?,
            "--demo" => demo = true,
            other => {
                return Err(format!("unknown argument {other:?} (--listen ADDR | --demo)").into())
            }
        }
    }
    if demo {
        cfg.listen = "127.0.0.1:0".parse()?;
    }
    let mut server = Server::bind(cfg)?;
    server.namespace("/chat", Chat::default());
    let addr = server.local_addr();
    if !demo {
        eprintln!("socketio_chat: namespace /chat on http://{addr}/socket.io/");
        server.run()?;
        return Ok(());
    }
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    let result = run_demo(addr);
    handle.shutdown();
    let _ = thread.join();
    result
}

/// A bot: a WebSocket-only Socket.IO connection to `/chat`, speaking the
/// packets by hand.
struct Bot {
    name: &'static str,
    ws: WsClient,
}

impl Bot {
    fn connect(
        addr: std::net::SocketAddr,
        name: &'static str,
    ) -> Result<Bot, Box<dyn std::error::Error>> {
        let mut ws = WsClient::connect_timeout(
            addr,
            "/socket.io/?EIO=4&transport=websocket",
            Some(Duration::from_secs(5)),
        )?;
        ws.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut bot = Bot { name, ws };
        bot.recv()?; // the Engine.IO open packet
        bot.send("40/chat,")?;
        bot.recv()?; // CONNECT's reply, with the socket's sid
        Ok(bot)
    }

    fn send(&mut self, packet: &str) -> Result<(), Box<dyn std::error::Error>> {
        println!("{:>5} → {packet}", self.name);
        self.ws.send_text(packet)?;
        Ok(())
    }

    /// The next Socket.IO packet (answering the server's pings).
    fn recv(&mut self) -> Result<String, Box<dyn std::error::Error>> {
        loop {
            match self.ws.recv()? {
                WsMessage::Text(t) if t == "2" => self.ws.send_text("3")?,
                WsMessage::Text(t) => {
                    println!("{:>5} ← {t}", self.name);
                    return Ok(t);
                }
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
    }
}

fn run_demo(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let mut alice = Bot::connect(addr, "alice")?;
    let mut bob = Bot::connect(addr, "bob")?;
    alice.send(r#"42/chat,1["join","lobby"]"#)?;
    alice.recv()?; // ack: 1 member
    bob.send(r#"42/chat,1["join","lobby"]"#)?;
    bob.recv()?; // ack: 2 members
    alice.recv()?; // joined: bob
    alice.send(r#"42/chat,2["say","lobby","hello bob"]"#)?;
    alice.recv()?; // said (her own line)
    alice.recv()?; // ack: delivered to 2
    bob.recv()?; // said
    bob.send(r#"42/chat,2["say","kitchen","anyone?"]"#)?;
    bob.recv()?; // ack: not in room
    Ok(())
}

//! Sans-IO connection state machines. `handle_*` take input (bytes, `now`,
//! hub events); `poll_*` give output (bytes to send, the next deadline,
//! whether to close). No sockets, no clock reads: the event loop in
//! `server/` drives them, and tests drive them with simulated time.

pub mod engineio;
pub mod http;
pub mod longpoll;
pub mod mux;
pub mod redis;
pub mod socketio;
pub mod tls;
pub mod ws;
pub mod ws_deflate;

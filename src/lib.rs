//! # pushwire
//!
//! A realtime push server written from scratch on raw sockets: one mio
//! event loop that speaks HTTP/1.1, streams Server-Sent Events over chunked
//! transfer coding, parks long-poll requests, answers short polls, and runs
//! the WebSocket handshake and frame codec.
//!
//! ```text
//! bytes on a socket
//!    │   server/   the only code that imports mio: Poll, Token slab, accept,
//!    │             read-until-WouldBlock, write queues, timers, shutdown
//!    ▼
//! proto/           sans-IO connection state machines. handle_* take input
//!    │             (bytes, now, hub events); poll_* give output (bytes to
//!    │             send, next deadline, close). No sockets, no clock reads.
//!    ▼
//! wire/            pure codecs: bytes <-> values. Never panic on any input.
//!                  Incomplete input is Ok(None) and consumes nothing.
//! hub/             topics, message ids, history, subscribers, parked polls:
//!                  plain data structures, driven by proto/ and server/.
//! ```

pub mod client;
pub mod config;
pub mod hub;
pub mod node;
pub mod procstat;
pub mod proto;
pub mod security;
pub mod server;
pub mod wire;

pub use config::Config;
pub use server::{Handle, Server};

//! Pure codecs: bytes <-> values. Nothing here touches a socket or reads
//! the clock, and nothing here panics on any input. Incomplete input is a
//! normal answer ("need more"), never an error.

pub mod chunked;
pub mod cursor;
pub mod engineio;
pub mod http1;
pub mod json;
pub mod jws;
pub mod percent;
pub mod prometheus;
pub mod rand;
pub mod resp;
pub mod socketio;
pub mod sse;
pub mod ws_extensions;
pub mod ws_frame;
pub mod ws_handshake;

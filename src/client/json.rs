//! Reading JSON (RFC 8259): the strict, bounded reader of
//! [`crate::wire::json`], under the name clients have always used.
//!
//! The reader lives in `wire/` because the server reads JSON too (payloads,
//! `/ws` commands, token claims); clients, tests and examples keep calling
//! it as `client::json::parse`.

pub use crate::wire::json::*;

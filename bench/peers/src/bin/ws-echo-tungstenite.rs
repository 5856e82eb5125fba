//! WebSocket echo on `/echo` with tokio-tungstenite, one thread.

// The handshake callback's error type is tungstenite's, not ours.
#![allow(clippy::result_large_err)]

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

fn main() {
    peers::serve(
        "ws-echo-tungstenite",
        "127.0.0.1:8082",
        |stream| async move {
            let only_echo = |req: &Request, resp: Response| {
                if req.uri().path() == "/echo" {
                    Ok(resp)
                } else {
                    let mut e = ErrorResponse::new(None);
                    *e.status_mut() = StatusCode::NOT_FOUND;
                    Err(e)
                }
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, only_echo).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                // Pings are answered and closes echoed by tungstenite itself;
                // data messages come back as they came.
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        },
    );
}

//! WebSocket echo on `/echo` with fastwebsockets over tokio-rustls (upgrade
//! through hyper), one thread: `ws-echo-fastws` with TLS in front.
//!
//!   ws-echo-fastws-tls --listen 127.0.0.1:PORT --cert cert.pem --key key.pem

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn handle(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    if req.uri().path() != "/echo" || !upgrade::is_upgrade_request(&req) {
        let mut r = Response::new(Empty::new());
        *r.status_mut() = StatusCode::NOT_FOUND;
        return Ok(r);
    }
    let (resp, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = echo(fut).await;
    });
    Ok(resp)
}

fn main() {
    peers::serve_tls(
        "ws-echo-fastws-tls",
        "127.0.0.1:8085",
        |stream| async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .with_upgrades()
                .await;
        },
    );
}

//! `GET /healthz` -> 200 `ok` on hyper 1.x over tokio-rustls, HTTP/1.1
//! only, one thread: `hyper-plain` with TLS in front (the same handler,
//! headers and `pipeline_flush`).
//!
//!   hyper-plain-tls --listen 127.0.0.1:PORT --cert cert.pem --key key.pem

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = if req.method() == Method::GET && req.uri().path() == "/healthz" {
        Response::new(Full::new(Bytes::from_static(b"ok")))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

fn main() {
    peers::serve_tls("hyper-plain-tls", "127.0.0.1:8084", |stream| async move {
        let _ = http1::Builder::new()
            .pipeline_flush(true)
            .serve_connection(TokioIo::new(stream), service_fn(handle))
            .await;
    });
}

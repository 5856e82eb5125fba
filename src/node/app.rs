//! What the server does with a request: the HTTP interface of docs/protocol.md.
//!
//! A handler writes its response into the connection's own queue and
//! returns a [`Next`]: what the connection becomes. The state change itself
//! is made by `step` in `mod.rs`, by the table in `conn.rs`. Published
//! messages are fanned out after the handling is over.

use std::time::{Duration, Instant};

use crate::hub::{self, Cursor, Replay};
use crate::proto::http::{write_response, BodyKind, Request};
use crate::proto::ws::{MessageKind, WsLimits, WsSession};
use crate::wire::http1::{Method, Version};
use crate::wire::{json, sse, ws_handshake};

use super::conn::{Closing, Conn, ParkedPoll, State, Stream, StreamKind, TopicName, WsConn};
use super::outq::OutQueue;
use super::routes::{route, Miss, Route};
use super::{
    assets, close_state, new_sub, publish, start_position, step, ConnId, Ctx, Event, Format,
};

/// What a connection becomes after a response.
pub(crate) enum Next {
    /// Keep reading requests.
    Continue,
    /// Close once the response is written.
    Close,
    /// Stream events.
    Stream(Box<Stream>),
    /// Wait for a message or the deadline.
    Park(Park),
    /// Speak WebSocket.
    Ws(Box<WsConn>),
}

/// A long poll about to park.
pub(crate) struct Park {
    topic: TopicName,
    after: hub::MessageId,
    deadline: Instant,
    meta: ReqMeta,
}

/// What a response needs to know of its request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReqMeta {
    version: Version,
    /// HEAD: the head says what GET would have sent, with no body
    /// (RFC 9110 §9.3.2).
    head_only: bool,
    keep_alive: bool,
}

impl ReqMeta {
    fn of(req: &Request) -> ReqMeta {
        ReqMeta {
            version: req.version(),
            head_only: req.method() == Method::Head,
            keep_alive: req.keep_alive,
        }
    }
}

/// A response to write.
struct Reply<'a> {
    status: u16,
    content_type: Option<&'a str>,
    /// Extra header fields (the CORS header is added by `respond`).
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    kind: BodyKind,
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const NO_CACHE: (&str, &str) = ("Cache-Control", "no-cache");

impl Ctx {
    /// The one way a response is written: status line, `Date`, the CORS
    /// header when configured, framing; then what the connection does.
    fn respond(&mut self, out: &mut OutQueue, meta: ReqMeta, reply: Reply) -> Next {
        let Reply {
            status,
            content_type,
            headers: extra,
            body,
            kind,
        } = reply;
        let cors = self.cfg.cors_origin.clone();
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(extra.len() + 1);
        headers.extend_from_slice(extra);
        if let Some(origin) = cors.as_deref() {
            headers.push(("Access-Control-Allow-Origin", origin));
        }
        let ctx = crate::proto::http::ResponseCtx {
            version: meta.version,
            head_only: meta.head_only,
            // 413: the rest of a body we refused is never read, so the
            // connection cannot carry another request; say so.
            keep_alive: meta.keep_alive && status != 413 && self.shutdown_at.is_none(),
            date: &self.date,
        };
        let kind = if status == 204 || status == 304 {
            BodyKind::None
        } else {
            kind
        };
        let content_type = if kind == BodyKind::None {
            None
        } else {
            content_type
        };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let keep = write_response(&mut buf, &ctx, status, content_type, &headers, body, kind);
        out.push(&buf);
        if buf.capacity() <= 64 * 1024 {
            self.scratch = buf;
        }
        if keep {
            Next::Continue
        } else {
            Next::Close
        }
    }

    fn respond_body(
        &mut self,
        out: &mut OutQueue,
        meta: ReqMeta,
        status: u16,
        content_type: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Next {
        let reply = Reply {
            status,
            content_type: Some(content_type),
            headers: extra,
            body,
            kind: BodyKind::Fixed,
        };
        self.respond(out, meta, reply)
    }

    /// A plain-text error or notice.
    fn respond_text(&mut self, out: &mut OutQueue, meta: ReqMeta, status: u16, text: &str) -> Next {
        let mut body = Vec::with_capacity(text.len() + 1);
        body.extend_from_slice(text.as_bytes());
        body.push(b'\n');
        self.respond_body(out, meta, status, TEXT, &[], &body)
    }
}

/// Answers a broken request (the peer's fault) and closes: after a
/// framing error nothing more it sends can be trusted to start a request.
pub(crate) fn answer_error(ctx: &mut Ctx, conn: &mut Conn, why: &str, status: u16, now: Instant) {
    ctx.trace(|| format!("    error {status}: {why}"));
    let meta = ReqMeta {
        version: Version::Http11,
        head_only: false,
        keep_alive: false,
    };
    ctx.respond_text(&mut conn.out, meta, status, why);
    conn.inbuf = Vec::new();
    step(ctx, usize::MAX, conn, Event::AnsweredLast, now, close_state);
}

// ---- HTTP ------------------------------------------------------------------

/// Answers every complete request at the start of `input`; returns the
/// bytes consumed.
pub(crate) fn process_http(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    input: &mut [u8],
    now: Instant,
) -> usize {
    let mut at = 0;
    loop {
        let Conn { state, out, .. } = &mut *conn;
        let State::Http(http) = state else {
            return at;
        };
        let mut interim = Vec::new();
        let next = match http.poll_request(&input[at..], now, &mut interim) {
            Ok(None) => {
                out.push(&interim);
                return at;
            }
            Err(e) => {
                let status = e.status();
                answer_error(ctx, conn, &e.to_string(), status, now);
                return input.len();
            }
            Ok(Some(req)) => {
                out.push(&interim);
                ctx.stats.requests += 1;
                if ctx.cfg.trace {
                    trace_request(ctx, id, &req);
                }
                dispatch(ctx, id, out, &req, now)
            }
        };
        at += http.finish_request();
        conn.idle_since = now;
        match next {
            Next::Continue => step(ctx, id, conn, Event::Answered, now, |s| s),
            Next::Close => {
                step(ctx, id, conn, Event::AnsweredLast, now, close_state);
                return input.len();
            }
            Next::Stream(stream) => {
                step(ctx, id, conn, Event::StreamStarted, now, |_| {
                    State::Streaming(stream)
                });
                return input.len();
            }
            Next::Park(p) => {
                step(ctx, id, conn, Event::Parked, now, |old| match old {
                    State::Http(mut http) => {
                        http.shrink();
                        State::Parked(Box::new(ParkedPoll {
                            http,
                            topic: p.topic,
                            after: p.after,
                            deadline: p.deadline,
                            version: p.meta.version,
                            keep_alive: p.meta.keep_alive,
                            head_only: p.meta.head_only,
                        }))
                    }
                    other => other,
                });
                return at;
            }
            Next::Ws(ws) => {
                step(ctx, id, conn, Event::Upgraded, now, |_| {
                    State::WebSocket(ws)
                });
                return at;
            }
        }
    }
}

/// Routes one request and runs its handler.
fn dispatch(ctx: &mut Ctx, id: ConnId, out: &mut OutQueue, req: &Request, now: Instant) -> Next {
    let meta = ReqMeta::of(req);
    if matches!(req.method(), Method::Other | Method::Connect) {
        // RFC 9110 §9.1: a method the server does not implement (any
        // unknown one, and CONNECT: no tunnels here) SHOULD get 501.
        return ctx.respond_text(out, meta, 501, "method not implemented");
    }
    let route = match route(req.method(), req.path(), ctx.cfg.debug_endpoints) {
        Ok(r) => r,
        Err(Miss::NotFound) => return ctx.respond_text(out, meta, 404, "not found"),
        Err(Miss::MethodNotAllowed(allow)) => {
            return ctx.respond_body(
                out,
                meta,
                405,
                TEXT,
                &[("Allow", allow)],
                b"method not allowed\n",
            )
        }
        Err(Miss::Options(allow)) => return preflight(ctx, out, meta, allow),
    };
    match route {
        Route::Healthz => ctx.respond_body(out, meta, 200, TEXT, &[], b"ok"),
        Route::Page(name) | Route::Asset(name) => {
            match assets::get(name, ctx.cfg.assets_dir.as_deref()) {
                Some((bytes, ctype)) => {
                    ctx.respond_body(out, meta, 200, ctype, &[NO_CACHE], &bytes)
                }
                None => ctx.respond_text(out, meta, 404, "not found"),
            }
        }
        Route::Stats => {
            let body = stats_json(ctx);
            ctx.respond_body(out, meta, 200, JSON, &[NO_CACHE], &body)
        }
        Route::Publish(topic) => publish_request(ctx, id, out, req, topic, now),
        Route::Sse(topic) => stream_request(ctx, id, out, req, topic, StreamKind::Sse, now),
        Route::Stream(topic) => stream_request(ctx, id, out, req, topic, StreamKind::Ndjson, now),
        Route::Poll(topic) => poll_request(ctx, id, out, req, topic, now),
        Route::Messages(topic) => messages_request(ctx, out, req, topic, now),
        Route::TopicWs(topic) => ws_request(ctx, id, out, req, Some(topic), now),
        Route::Echo => ws_request(ctx, id, out, req, None, now),
        Route::DebugDrop => debug_drop(ctx, out, req),
    }
}

/// `OPTIONS`: 204 with `Allow`; with `--cors-origin`, a CORS preflight
/// answer too (so pages on that origin can use fetch and EventSource).
fn preflight(ctx: &mut Ctx, out: &mut OutQueue, meta: ReqMeta, allow: &str) -> Next {
    let mut headers = vec![("Allow", allow)];
    if ctx.cfg.cors_origin.is_some() {
        headers.push(("Access-Control-Allow-Methods", allow));
        headers.push((
            "Access-Control-Allow-Headers",
            "Content-Type, Last-Event-ID, Cache-Control",
        ));
        headers.push(("Access-Control-Max-Age", "86400"));
    }
    let reply = Reply {
        status: 204,
        content_type: None,
        headers: &headers,
        body: b"",
        kind: BodyKind::None,
    };
    ctx.respond(out, meta, reply)
}

fn stats_json(ctx: &Ctx) -> Vec<u8> {
    let s = &ctx.stats;
    let h = ctx.hub.stats();
    format!(
        "{{\"connections\":{},\"topics\":{},\"kept_messages\":{},\"subscribers\":{},\"parked_polls\":{},\"accepted\":{},\"requests\":{},\"published\":{},\"deliveries\":{},\"slow_disconnects\":{},\"refused_over_limit\":{},\"polls_woken\":{},\"polls_expired\":{}}}",
        ctx.live,
        h.topics,
        h.messages,
        h.subscribers,
        ctx.parking.len(),
        s.accepted,
        s.requests,
        s.published,
        s.deliveries,
        s.slow_disconnects,
        s.refused_over_limit,
        s.polls_woken,
        s.polls_expired,
    )
    .into_bytes()
}

// ---- publish ---------------------------------------------------------------

fn publish_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topic: &str,
    now: Instant,
) -> Next {
    let meta = ReqMeta::of(req);
    if !hub::valid_topic(topic) {
        return ctx.respond_text(out, meta, 400, "invalid topic name");
    }
    let event = req.query_param("event");
    if event.is_some_and(|e| !hub::valid_event(e)) {
        return ctx.respond_text(out, meta, 400, "invalid event name");
    }
    if req.body.len() > ctx.cfg.max_message_bytes {
        return ctx.respond_text(out, meta, 413, "message too large");
    }
    let Ok(data) = std::str::from_utf8(req.body) else {
        return ctx.respond_text(out, meta, 400, "message is not UTF-8");
    };
    match publish(ctx, Some(id), topic, event, data, now) {
        Ok(msg) => {
            let mut body = Vec::with_capacity(msg.id_text.len() + 10);
            body.extend_from_slice(b"{\"id\":");
            json::write_str(&mut body, &msg.id_text);
            body.push(b'}');
            ctx.respond_body(out, meta, 200, JSON, &[], &body)
        }
        Err(e) => ctx.respond_text(out, meta, e.status(), &e.to_string()),
    }
}

// ---- SSE and HTTP streaming ------------------------------------------------

/// `GET /topics/{t}/sse` and `GET /topics/{t}/stream`: one streaming
/// response, history after the cursor first, then live.
fn stream_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topic: &str,
    kind: StreamKind,
    now: Instant,
) -> Next {
    let meta = ReqMeta::of(req);
    if !hub::valid_topic(topic) {
        return ctx.respond_text(out, meta, 400, "invalid topic name");
    }
    let cursor_text = match kind {
        StreamKind::Sse => {
            // The header wins: a reconnecting browser sends Last-Event-ID
            // while its URL still carries the old query.
            let header = match req.header("last-event-id") {
                Some(v) if !v.is_empty() => match std::str::from_utf8(v) {
                    Ok(s) => Some(s),
                    Err(_) => return ctx.respond_text(out, meta, 400, "invalid Last-Event-ID"),
                },
                _ => None,
            };
            header.or_else(|| req.query_param("last_event_id"))
        }
        StreamKind::Ndjson => req.query_param("after"),
    };
    let cursor = match hub::parse_cursor(cursor_text) {
        Ok(c) => c,
        Err(e) => return ctx.respond_text(out, meta, 400, &e.to_string()),
    };
    let start = match start_position(ctx, topic, &cursor, cursor_text.unwrap_or(""), now) {
        Ok(r) => r,
        Err(e) => return ctx.respond_text(out, meta, e.status(), &e.to_string()),
    };
    let chunked = req.version() == Version::Http11;
    let content_type = match kind {
        StreamKind::Sse => "text/event-stream",
        StreamKind::Ndjson => "application/x-ndjson",
    };
    let headers = [
        NO_CACHE,
        // Tells buffering proxies (nginx) to pass events through at once.
        ("X-Accel-Buffering", "no"),
    ];
    let reply = Reply {
        status: 200,
        content_type: Some(content_type),
        headers: &headers,
        body: b"",
        kind: BodyKind::Stream,
    };
    let keep = ctx.respond(out, meta, reply);
    if meta.head_only {
        // HEAD: the head of the stream, and no stream.
        return if matches!(keep, Next::Continue) && chunked {
            Next::Continue
        } else {
            Next::Close
        };
    }
    if let Err(e) = ctx.hub.subscribe(topic, id) {
        // The head is out; end the stream at once.
        ctx.trace(|| format!("[{id}] subscribe failed: {e}"));
        if chunked {
            super::chunked_last(out);
        }
        return Next::Close;
    }
    // First: retry (SSE), then the gap notice; the replay follows, a batch
    // at a time as the queue drains.
    let mut first = Vec::new();
    if kind == StreamKind::Sse {
        sse::encode_retry(&mut first, ctx.cfg.sse_retry_ms);
    }
    if !first.is_empty() {
        super::push_block(out, chunked, &first);
    }
    let format = match kind {
        StreamKind::Sse => Format::Sse { chunked },
        StreamKind::Ndjson => Format::Ndjson { chunked },
    };
    if let Some(gap) = &start.gap {
        format.queue_gap(out, gap);
    }
    ctx.trace(|| {
        format!(
            "[{id}] {kind:?} stream on {topic} after {}{}",
            start.last_id,
            if start.gap.is_some() { ", a gap" } else { "" }
        )
    });
    Next::Stream(Box::new(Stream {
        kind,
        sub: new_sub(topic, start.last_id),
        chunked,
        last_write: now,
    }))
}

// ---- polls -----------------------------------------------------------------

fn poll_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topic: &str,
    now: Instant,
) -> Next {
    let meta = ReqMeta::of(req);
    if !hub::valid_topic(topic) {
        return ctx.respond_text(out, meta, 400, "invalid topic name");
    }
    let cursor_text = req.query_param("after");
    let cursor = match hub::parse_cursor(cursor_text) {
        Ok(c) => c,
        Err(e) => return ctx.respond_text(out, meta, 400, &e.to_string()),
    };
    let timeout = match req.query_param("timeout") {
        None => ctx.cfg.poll_default_timeout,
        Some(s) => match parse_timeout(s) {
            Some(t) => t.min(ctx.cfg.poll_max_timeout),
            None => return ctx.respond_text(out, meta, 400, "invalid timeout"),
        },
    };
    let replay = match ctx.hub.replay(
        topic,
        &cursor,
        cursor_text.unwrap_or(""),
        now,
        ctx.cfg.max_batch,
    ) {
        Ok(r) => r,
        Err(e) => return ctx.respond_text(out, meta, e.status(), &e.to_string()),
    };
    if !replay.messages.is_empty() || replay.gap.is_some() || timeout.is_zero() {
        let timed_out = timeout.is_zero() && replay.messages.is_empty();
        return respond_poll(ctx, out, meta, &replay, timed_out);
    }
    let deadline = now + timeout;
    if ctx.parking.park(id, topic, deadline).is_err() {
        return ctx.respond_text(out, meta, 503, "too many parked polls");
    }
    ctx.stats.polls_parked += 1;
    ctx.trace(|| {
        format!(
            "[{id}] long poll parked on {topic} after {} for {:?}",
            replay.last_id, timeout
        )
    });
    Next::Park(Park {
        topic: topic.into(),
        after: replay.last_id,
        deadline,
        meta,
    })
}

/// `timeout=S`: whole or fractional seconds (`2`, `0.5`), at most nine
/// digits before the point and three after it (milliseconds: finer is
/// below what a poll over a network can mean).
fn parse_timeout(s: &str) -> Option<Duration> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || frac.len() > 3 || !digits(whole) || !digits(frac) {
        return None;
    }
    if s.ends_with('.') {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let mut millis: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        millis *= 10;
    }
    Some(Duration::from_secs(secs) + Duration::from_millis(millis))
}

fn respond_poll(
    ctx: &mut Ctx,
    out: &mut OutQueue,
    meta: ReqMeta,
    replay: &Replay,
    timed_out: bool,
) -> Next {
    let replay = &bounded(replay, ctx.cfg.max_batch_bytes);
    let mut body = Vec::with_capacity(
        64 + replay
            .messages
            .iter()
            .map(|m| m.json.len() + 1)
            .sum::<usize>(),
    );
    replay.write_poll_json(&mut body, timed_out);
    ctx.respond_body(out, meta, 200, JSON, &[NO_CACHE], &body)
}

/// `replay` cut to at most `max_bytes` of message data, but never to
/// fewer than one message: a poll answer's size is bounded whatever the
/// history holds, and the client continues from `last_id`.
fn bounded(replay: &Replay, max_bytes: usize) -> Replay {
    let mut total = 0;
    let mut keep = 0;
    for m in &replay.messages {
        total += m.json.len();
        if keep > 0 && total > max_bytes {
            break;
        }
        keep += 1;
    }
    let messages = replay.messages[..keep].to_vec();
    let last_id = if keep < replay.messages.len() {
        messages.last().map_or(replay.last_id, |m| m.id)
    } else {
        replay.last_id
    };
    Replay {
        messages,
        gap: replay.gap.clone(),
        last_id,
    }
}

/// Answers a parked poll (woken, expired or shutting down), turns the
/// connection back to HTTP, and answers what was pipelined behind it.
pub(crate) fn answer_parked(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    now: Instant,
    timed_out: bool,
) {
    let State::Parked(p) = &conn.state else {
        return;
    };
    let after = p.after;
    let replay = match ctx.hub.replay(
        &p.topic,
        &Cursor::After(after),
        &after.to_string(),
        now,
        ctx.cfg.max_batch,
    ) {
        Ok(r) if !timed_out => r,
        _ => Replay {
            messages: Vec::new(),
            gap: None,
            last_id: after,
        },
    };
    let timed_out = timed_out || replay.messages.is_empty() && replay.gap.is_none();
    ctx.trace(|| {
        if timed_out {
            format!("[{id}] long poll expired")
        } else {
            format!(
                "[{id}] long poll answered: {} message(s)",
                replay.messages.len()
            )
        }
    });
    let meta = ReqMeta {
        version: p.version,
        head_only: p.head_only,
        keep_alive: p.keep_alive,
    };
    let next = respond_poll(ctx, &mut conn.out, meta, &replay, timed_out);
    conn.idle_since = now;
    if let Next::Close = next {
        step(ctx, id, conn, Event::AnsweredLast, now, close_state);
        return;
    }
    step(ctx, id, conn, Event::PollAnswered, now, |old| match old {
        State::Parked(p) => State::Http(p.http),
        other => other,
    });
    // Requests pipelined behind the poll waited in the input buffer.
    if !conn.inbuf.is_empty() {
        let mut input = std::mem::take(&mut conn.inbuf);
        let used = super::feed(ctx, id, conn, &mut input, now);
        input.drain(..used.min(input.len()));
        if super::keeps_input(conn) && !input.is_empty() {
            conn.inbuf = input;
        }
    }
}

fn messages_request(
    ctx: &mut Ctx,
    out: &mut OutQueue,
    req: &Request,
    topic: &str,
    now: Instant,
) -> Next {
    let meta = ReqMeta::of(req);
    if !hub::valid_topic(topic) {
        return ctx.respond_text(out, meta, 400, "invalid topic name");
    }
    let cursor_text = req.query_param("after");
    let cursor = match hub::parse_cursor(cursor_text) {
        // No cursor: a short poll returns everything kept.
        Ok(Cursor::Live) => Cursor::Earliest,
        Ok(c) => c,
        Err(e) => return ctx.respond_text(out, meta, 400, &e.to_string()),
    };
    match ctx.hub.replay(
        topic,
        &cursor,
        cursor_text.unwrap_or(""),
        now,
        ctx.cfg.max_batch,
    ) {
        Ok(replay) => respond_poll(ctx, out, meta, &replay, false),
        Err(e) => ctx.respond_text(out, meta, e.status(), &e.to_string()),
    }
}

// ---- WebSocket -------------------------------------------------------------

fn ws_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topic: Option<&str>,
    now: Instant,
) -> Next {
    let meta = ReqMeta::of(req);
    let mut cursor = Cursor::Live;
    let cursor_text = req.query_param("after");
    if let Some(t) = topic {
        if !hub::valid_topic(t) {
            return ctx.respond_text(out, meta, 400, "invalid topic name");
        }
        cursor = match hub::parse_cursor(cursor_text) {
            Ok(c) => c,
            Err(e) => return ctx.respond_text(out, meta, 400, &e.to_string()),
        };
    }
    let policy = ws_handshake::HandshakePolicy {
        subprotocols: &ctx.cfg.ws_subprotocols,
        allowed_origins: &ctx.cfg.allowed_origins,
    };
    let accept = match ws_handshake::validate(req.head, req.buf, &policy) {
        Ok(a) => a,
        Err(e) => {
            let status = e.status();
            let mut body = e.to_string().into_bytes();
            body.push(b'\n');
            return ctx.respond_body(out, meta, status, TEXT, e.extra_headers(), &body);
        }
    };
    let mut limits = WsLimits::from_config(&ctx.cfg);
    let start = match topic {
        Some(t) => {
            limits.max_message_bytes = ctx.cfg.max_message_bytes;
            match start_position(ctx, t, &cursor, cursor_text.unwrap_or(""), now) {
                Ok(r) => Some(r),
                Err(e) => return ctx.respond_text(out, meta, e.status(), &e.to_string()),
            }
        }
        None => None,
    };
    if let Some(t) = topic {
        if let Err(e) = ctx.hub.subscribe(t, id) {
            return ctx.respond_text(out, meta, e.status(), &e.to_string());
        }
    }
    let mut head = Vec::new();
    ws_handshake::write_accept(&mut head, &accept);
    out.push(&head);
    ctx.trace(|| {
        format!(
            "[{id}] WebSocket open{}{}",
            topic
                .map(|t| format!(" on {t}"))
                .unwrap_or_else(|| " (echo)".into()),
            accept
                .protocol
                .as_deref()
                .map(|p| format!(", subprotocol {p}"))
                .unwrap_or_default()
        )
    });
    let mut session = WsSession::new(limits, now);
    session.set_trace(ctx.cfg.trace);
    let mut sub = None;
    if let (Some(t), Some(start)) = (topic, start) {
        if let Some(gap) = &start.gap {
            Format::Ws.queue_gap(out, gap);
        }
        sub = Some(new_sub(t, start.last_id));
    }
    Next::Ws(Box::new(WsConn { session, sub }))
}

/// Feeds bytes to a WebSocket session (open or closing); returns the bytes
/// consumed.
pub(crate) fn process_ws(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    input: &mut [u8],
    now: Instant,
) -> usize {
    let Conn { state, out, .. } = &mut *conn;
    let ws = match state {
        State::WebSocket(ws) => ws,
        State::Closing(Closing { ws: Some(ws) }) => ws,
        _ => return 0,
    };
    let mut to_publish: Vec<Box<str>> = Vec::new();
    let mut binary_on_topic = false;
    let is_topic = ws.sub.is_some();
    let used = ws
        .session
        .handle_read(input, now, out, &mut |kind, payload, out| {
            if !is_topic {
                // /echo: the message back, as it came, by the session's
                // own writer.
                crate::proto::ws::write_message(out, kind, payload);
            } else if binary_on_topic {
                // Closing: nothing more is published.
            } else if kind == MessageKind::Binary {
                binary_on_topic = true;
            } else {
                // The session delivers only valid UTF-8 as Text.
                to_publish.push(String::from_utf8_lossy(payload).into());
            }
        });
    if binary_on_topic {
        // RFC 6455 §7.4.1: 1003, a data type the endpoint cannot accept.
        ws.session
            .close(1003, "binary messages are not accepted", now, out);
    }
    if let Some(topic) = ws.sub.as_ref().map(|s| s.topic.clone()) {
        for text in to_publish {
            if let Err(e) = publish(ctx, Some(id), &topic, None, &text, now) {
                let code = if e.status() == 413 { 1009 } else { 1011 };
                ws.session.close(code, &e.to_string(), now, out);
                break;
            }
        }
    }
    trace_ws(ctx, id, &mut ws.session);
    if ws.session.wants_close_transport() {
        step(ctx, id, conn, Event::WsClosing, now, close_state);
    }
    used
}

pub(crate) fn trace_ws(ctx: &mut Ctx, id: ConnId, session: &mut WsSession) {
    if !ctx.cfg.trace {
        return;
    }
    for line in session.take_trace() {
        ctx.log.push(format!("[{id}] {line}"));
    }
}

// ---- debug -----------------------------------------------------------------

/// Disconnects every SSE and WebSocket subscriber of `?topic=`: the
/// browser tests use it to prove that clients resume by themselves.
fn debug_drop(ctx: &mut Ctx, out: &mut OutQueue, req: &Request) -> Next {
    let meta = ReqMeta::of(req);
    let Some(topic) = req.query_param("topic").filter(|t| hub::valid_topic(t)) else {
        return ctx.respond_text(out, meta, 400, "invalid topic name");
    };
    let count = ctx.hub.subscribers(topic).len();
    ctx.drops.push(topic.into());
    let body = format!("{{\"dropped\":{count}}}");
    ctx.respond_body(out, meta, 200, JSON, &[], body.as_bytes())
}

fn trace_request(ctx: &mut Ctx, id: ConnId, req: &Request) {
    ctx.log.push(format!(
        "[{id}] {} {} {}",
        req.method().as_str(),
        req.target(),
        req.version().as_str()
    ));
    for h in &req.head.headers {
        ctx.log.push(format!(
            "[{id}]     {}: {}",
            String::from_utf8_lossy(h.name.get(req.buf)),
            String::from_utf8_lossy(h.value.get(req.buf))
        ));
    }
    // The framing decision of RFC 9112 §6.3, as it was taken.
    let framing = if req.header("transfer-encoding").is_some() {
        format!("chunked body, {} bytes decoded", req.body.len())
    } else if req.header("content-length").is_some() {
        format!("Content-Length body of {} bytes", req.body.len())
    } else {
        "no body".to_string()
    };
    ctx.log.push(format!(
        "[{id}]     {framing}; connection {}",
        if req.keep_alive {
            "kept alive"
        } else {
            "closes after"
        }
    ));
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;
    use std::time::Duration;

    #[test]
    fn timeouts_whole_and_fractional() {
        assert_eq!(parse_timeout("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_timeout("1.25"), Some(Duration::from_millis(1250)));
        assert_eq!(parse_timeout("0"), Some(Duration::ZERO));
        for bad in ["", ".5", "1.", "1.2345", "-1", "1e3", "ten", "1234567890"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
    }
}

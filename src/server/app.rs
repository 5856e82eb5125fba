//! What the server does with a request: the HTTP interface of DESIGN.md.
//!
//! Handlers write their response into `self.wbuf` (it goes out in one
//! write with the other pipelined responses) and return a [`Next`] that
//! says what the connection becomes. Published messages are fanned out
//! after the publishing connection is back in the slab.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hub::{self, Cursor, HubError, Message, Replay};
use crate::proto::http::{write_response, BodyKind, Request, ResponseCtx};
use crate::proto::ws::{MessageKind, WsDeflate, WsLimits, WsSession};
use crate::wire::http1::{Method, Version};
use crate::wire::ws_extensions::DeflatePolicy;
use crate::wire::{chunked, json, sse, ws_handshake};

use super::conn::{Conn, Mode, ParkedPoll, SseStream, WsConn};
use super::direct::DirectTx;
use super::routes::{route, Miss, Route};
use super::{assets, Server, Stats};
use crate::Config;

/// What a connection becomes after a response.
enum Next {
    /// Keep reading requests.
    Continue,
    /// Close once the response is written.
    Close,
    /// Stream events of this topic.
    Sse(SseStream),
    /// Wait for a message or the deadline.
    Park {
        topic: Box<str>,
        after: hub::MessageId,
        deadline: Instant,
        /// What the eventual answer needs to know of the request.
        version: Version,
        keep_alive: bool,
        head_only: bool,
    },
    /// Speak WebSocket.
    Ws(Box<WsConn>),
}

impl Server {
    /// Writes a complete response; returns what the connection does next.
    fn respond(
        &mut self,
        req: &Request,
        status: u16,
        content_type: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Next {
        // The common case (no CORS) borrows `extra` as it is: no allocation.
        let with_cors: Vec<(&str, &str)>;
        let headers = match self.cfg.cors_origin.as_deref() {
            None => extra,
            Some(origin) => {
                with_cors = extra
                    .iter()
                    .copied()
                    .chain([("Access-Control-Allow-Origin", origin)])
                    .collect();
                &with_cors
            }
        };
        let ctx = ResponseCtx {
            version: req.version(),
            head_only: req.method() == Method::Head,
            // 413: the rest of a body we refused is never read, so the
            // connection cannot carry another request; say so.
            keep_alive: req.keep_alive && status != 413,
            date: &self.date.text,
        };
        let kind = if status == 204 || status == 304 {
            BodyKind::None
        } else {
            BodyKind::Fixed
        };
        let keep = write_response(
            &mut self.wbuf,
            &ctx,
            status,
            (kind == BodyKind::Fixed).then_some(content_type),
            headers,
            body,
            kind,
        );
        if keep {
            Next::Continue
        } else {
            Next::Close
        }
    }

    /// A plain-text error or notice. Statuses the DESIGN says end the
    /// connection (a body we refused to read) close it.
    fn respond_text(&mut self, req: &Request, status: u16, text: &str) -> Next {
        let mut body = Vec::with_capacity(text.len() + 1);
        body.extend_from_slice(text.as_bytes());
        body.push(b'\n');
        self.respond(req, status, "text/plain; charset=utf-8", &[], &body)
    }

    /// Answers a broken request (the peer's fault) and marks the
    /// connection to close: after a framing error nothing more it sends
    /// can be trusted to start a request.
    pub(super) fn answer_error(&mut self, conn: &mut Conn, why: &str, status: u16) {
        if self.cfg.trace {
            eprintln!("    error {status}: {why}");
        }
        let ctx = ResponseCtx {
            version: Version::Http11,
            head_only: false,
            keep_alive: false,
            date: &self.date.text,
        };
        let mut body = why.as_bytes().to_vec();
        body.push(b'\n');
        write_response(
            &mut self.wbuf,
            &ctx,
            status,
            Some("text/plain; charset=utf-8"),
            &[],
            &body,
            BodyKind::Fixed,
        );
        conn.close_after_flush = true;
    }

    // ---- HTTP ------------------------------------------------------------------

    /// Answers every complete request at the start of `input`; returns the
    /// bytes consumed.
    pub(super) fn process_http(
        &mut self,
        id: usize,
        conn: &mut Conn,
        input: &mut [u8],
        now: Instant,
    ) -> usize {
        let mut at = 0;
        while let Mode::Http(http) = &mut conn.mode {
            let next = match http.poll_request(&input[at..], now, &mut self.wbuf) {
                Ok(None) => break,
                Err(e) => {
                    let status = e.status();
                    self.answer_error(conn, &e.to_string(), status);
                    return input.len();
                }
                Ok(Some(req)) => {
                    self.stats.requests += 1;
                    if self.cfg.trace {
                        trace_request(id, &req);
                    }
                    self.dispatch(id, &req, now)
                }
            };
            at += http.finish_request();
            conn.idle_since = now;
            match next {
                Next::Continue => {}
                Next::Close => {
                    conn.close_after_flush = true;
                    return input.len();
                }
                Next::Sse(stream) => {
                    let Mode::Http(http) = &mut conn.mode else {
                        unreachable!()
                    };
                    http.shrink();
                    conn.mode = Mode::Sse(stream);
                    return input.len();
                }
                Next::Park {
                    topic,
                    after,
                    deadline,
                    version,
                    keep_alive,
                    head_only,
                } => {
                    let Mode::Http(http) =
                        std::mem::replace(&mut conn.mode, Mode::Sse(placeholder_stream(now)))
                    else {
                        unreachable!()
                    };
                    conn.mode = Mode::Parked(Box::new(ParkedPoll {
                        http,
                        topic,
                        after,
                        deadline,
                        version,
                        keep_alive,
                        head_only,
                    }));
                    break;
                }
                Next::Ws(ws) => {
                    conn.mode = Mode::Ws(ws);
                    break;
                }
            }
        }
        at
    }

    /// Routes one request and runs its handler.
    fn dispatch(&mut self, id: usize, req: &Request, now: Instant) -> Next {
        if matches!(req.method(), Method::Other | Method::Connect) {
            // RFC 9110 §9.1: a method the server does not implement (any
            // unknown one, and CONNECT: no tunnels here) SHOULD get 501.
            return self.respond_text(req, 501, "method not implemented");
        }
        let route = match route(req.method(), req.path(), self.cfg.debug_endpoints) {
            Ok(r) => r,
            Err(Miss::NotFound) => return self.respond_text(req, 404, "not found"),
            Err(Miss::MethodNotAllowed(allow)) => {
                return self.respond(
                    req,
                    405,
                    "text/plain; charset=utf-8",
                    &[("Allow", allow)],
                    b"method not allowed\n",
                )
            }
            Err(Miss::Options(allow)) => return self.preflight(req, allow),
        };
        match route {
            Route::Healthz => self.respond(req, 200, "text/plain; charset=utf-8", &[], b"ok"),
            Route::Page(name) | Route::Asset(name) => {
                match assets::get(name, self.cfg.assets_dir.as_deref()) {
                    Some((bytes, ctype)) => {
                        self.respond(req, 200, ctype, &[("Cache-Control", "no-cache")], &bytes)
                    }
                    None => self.respond_text(req, 404, "not found"),
                }
            }
            Route::Stats => {
                let body = self.stats_json();
                self.respond(
                    req,
                    200,
                    "application/json",
                    &[("Cache-Control", "no-cache")],
                    &body,
                )
            }
            Route::Publish(topic) => self.publish_request(req, topic, now),
            Route::Sse(topic) => self.sse_request(id, req, topic, now),
            Route::Poll(topic) => self.poll_request(id, req, topic, now),
            Route::Messages(topic) => self.messages_request(req, topic, now),
            Route::TopicWs(topic) => self.ws_request(id, req, Some(topic), now),
            Route::Echo => self.ws_request(id, req, None, now),
            Route::DebugDrop => self.debug_drop(req, now),
        }
    }

    /// `OPTIONS`: 204 with `Allow`; with `--cors-origin`, a CORS preflight
    /// answer too (so pages on that origin can use fetch and EventSource).
    fn preflight(&mut self, req: &Request, allow: &str) -> Next {
        let mut headers = vec![("Allow", allow)];
        if self.cfg.cors_origin.is_some() {
            headers.push(("Access-Control-Allow-Methods", allow));
            headers.push((
                "Access-Control-Allow-Headers",
                "Content-Type, Last-Event-ID, Cache-Control",
            ));
            headers.push(("Access-Control-Max-Age", "86400"));
        }
        self.respond(req, 204, "", &headers, b"")
    }

    fn stats_json(&self) -> Vec<u8> {
        let s = &self.stats;
        let h = self.hub.stats();
        format!(
            "{{\"connections\":{},\"topics\":{},\"kept_messages\":{},\"subscribers\":{},\"parked_polls\":{},\"accepted\":{},\"requests\":{},\"published\":{},\"deliveries\":{},\"slow_disconnects\":{},\"refused_over_limit\":{},\"polls_woken\":{},\"polls_expired\":{}}}",
            self.live,
            h.topics,
            h.messages,
            h.subscribers,
            self.parking.len(),
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

    fn publish_request(&mut self, req: &Request, topic: &str, now: Instant) -> Next {
        if !hub::valid_topic(topic) {
            return self.respond_text(req, 400, "invalid topic name");
        }
        let event = req.query_param("event");
        if event.is_some_and(|e| !hub::valid_event(e)) {
            return self.respond_text(req, 400, "invalid event name");
        }
        if req.body.len() > self.cfg.max_message_bytes {
            return self.respond_text(req, 413, "message too large");
        }
        let Ok(data) = std::str::from_utf8(req.body) else {
            return self.respond_text(req, 400, "message is not UTF-8");
        };
        match self.publish(topic, event, data, now) {
            Ok(msg) => {
                let mut body = Vec::with_capacity(msg.id_text.len() + 10);
                body.extend_from_slice(b"{\"id\":");
                json::write_str(&mut body, &msg.id_text);
                body.push(b'}');
                self.respond(req, 200, "application/json", &[], &body)
            }
            Err(e) => {
                let status = e.status();
                self.respond_text(req, status, &e.to_string())
            }
        }
    }

    /// Publishes into the hub; the fan-out runs from [`Server::run_pending`].
    pub(super) fn publish(
        &mut self,
        topic: &str,
        event: Option<&str>,
        data: &str,
        now: Instant,
    ) -> Result<Arc<Message>, HubError> {
        let msg = self.hub.publish(topic, event, data, now)?;
        self.stats.published += 1;
        if self.cfg.trace {
            eprintln!(
                "    published {} on {topic} (event {}, {} bytes)",
                msg.id_text,
                event.unwrap_or("message"),
                data.len()
            );
        }
        self.pending.push((topic.into(), Arc::clone(&msg)));
        Ok(msg)
    }

    /// Fans out every pending message: its shared bytes go to each
    /// subscriber's queue, and every poll parked on its topic is answered
    /// in one pass.
    pub(super) fn run_pending(&mut self, now: Instant) {
        while !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            for (topic, msg) in batch {
                // The subscriber list is read in place while connections are
                // written to: disjoint fields, no copy of 5,000 ids per
                // publish.
                for &id in self.hub.subscribers(&topic) {
                    let conn = self.conns.get_mut(id).and_then(Option::as_mut);
                    if let Some(conn) = conn {
                        if deliver(id, conn, &msg, &self.cfg, &mut self.stats, now) {
                            self.dirty.push(id);
                        }
                    }
                }
                let woken = self.parking.wake(&topic);
                for id in woken {
                    if let Some(mut conn) = self.take(id) {
                        self.stats.polls_woken += 1;
                        if self.cfg.trace {
                            eprintln!("[{id}] long poll woken by {}", msg.id_text);
                        }
                        self.answer_parked(id, &mut conn, now, false);
                        self.finish(id, conn, now);
                    }
                }
            }
        }
    }

    // ---- SSE -------------------------------------------------------------------

    fn sse_request(&mut self, id: usize, req: &Request, topic: &str, now: Instant) -> Next {
        if !hub::valid_topic(topic) {
            return self.respond_text(req, 400, "invalid topic name");
        }
        // The header wins: a reconnecting browser sends Last-Event-ID while
        // its URL still carries the old query.
        let header = match req.header("last-event-id") {
            Some(v) if !v.is_empty() => match std::str::from_utf8(v) {
                Ok(s) => Some(s),
                Err(_) => return self.respond_text(req, 400, "invalid Last-Event-ID"),
            },
            _ => None,
        };
        let cursor_text = header.or_else(|| req.query_param("last_event_id"));
        let cursor = match hub::parse_cursor(cursor_text) {
            Ok(c) => c,
            Err(e) => return self.respond_text(req, 400, &e.to_string()),
        };
        let replay =
            match self
                .hub
                .replay(topic, &cursor, cursor_text.unwrap_or(""), now, usize::MAX)
            {
                Ok(r) => r,
                Err(e) => return self.respond_text(req, e.status(), &e.to_string()),
            };
        let chunked = req.version() == Version::Http11;
        let mut headers = vec![
            ("Cache-Control", "no-cache"),
            // Tells buffering proxies (nginx) to pass events through at once.
            ("X-Accel-Buffering", "no"),
        ];
        if let Some(origin) = self.cfg.cors_origin.as_deref() {
            headers.push(("Access-Control-Allow-Origin", origin));
        }
        let ctx = ResponseCtx {
            version: req.version(),
            head_only: req.method() == Method::Head,
            keep_alive: req.keep_alive,
            date: &self.date.text,
        };
        let head_only = ctx.head_only;
        let keep = write_response(
            &mut self.wbuf,
            &ctx,
            200,
            Some("text/event-stream"),
            &headers,
            b"",
            BodyKind::Stream,
        );
        if head_only {
            // HEAD: the head of the stream, and no stream.
            return if keep && chunked {
                Next::Continue
            } else {
                Next::Close
            };
        }
        if let Err(e) = self.hub.subscribe(topic, id) {
            // The head is out; end the stream at once.
            if self.cfg.trace {
                eprintln!("[{id}] subscribe failed: {e}");
            }
            return Next::Close;
        }
        // First block: retry, then the gap notice, then the replay.
        let mut first = Vec::new();
        sse::encode_retry(&mut first, self.cfg.sse_retry_ms);
        if let Some(gap) = &replay.gap {
            gap.sse_event(&mut first);
        }
        for m in &replay.messages {
            first.extend_from_slice(&m.sse);
        }
        if chunked {
            chunked::encode_chunk(&mut self.wbuf, &first);
        } else {
            self.wbuf.extend_from_slice(&first);
        }
        if self.cfg.trace {
            eprintln!(
                "[{id}] SSE on {topic}: replay {} message(s){}",
                replay.messages.len(),
                if replay.gap.is_some() {
                    " after a gap"
                } else {
                    ""
                }
            );
        }
        Next::Sse(SseStream {
            topic: topic.into(),
            chunked,
            last_write: now,
        })
    }

    // ---- polls -----------------------------------------------------------------

    fn poll_request(&mut self, id: usize, req: &Request, topic: &str, now: Instant) -> Next {
        if !hub::valid_topic(topic) {
            return self.respond_text(req, 400, "invalid topic name");
        }
        let cursor_text = req.query_param("after");
        let cursor = match hub::parse_cursor(cursor_text) {
            Ok(c) => c,
            Err(e) => return self.respond_text(req, 400, &e.to_string()),
        };
        let timeout = match req.query_param("timeout") {
            None => self.cfg.poll_default_timeout,
            Some(s) if !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()) => {
                Duration::from_secs(s.parse().unwrap_or(0)).min(self.cfg.poll_max_timeout)
            }
            Some(_) => return self.respond_text(req, 400, "invalid timeout"),
        };
        let replay = match self.hub.replay(
            topic,
            &cursor,
            cursor_text.unwrap_or(""),
            now,
            self.cfg.max_batch,
        ) {
            Ok(r) => r,
            Err(e) => return self.respond_text(req, e.status(), &e.to_string()),
        };
        if !replay.messages.is_empty() || replay.gap.is_some() || timeout.is_zero() {
            return self.respond_poll(
                req,
                &replay,
                timeout.is_zero() && replay.messages.is_empty(),
            );
        }
        let deadline = now + timeout;
        if self.parking.park(id, topic, deadline).is_err() {
            return self.respond_text(req, 503, "too many parked polls");
        }
        self.stats.polls_parked += 1;
        if self.cfg.trace {
            eprintln!(
                "[{id}] long poll parked on {topic} after {} for {}s",
                replay.last_id,
                timeout.as_secs()
            );
        }
        Next::Park {
            topic: topic.into(),
            after: replay.last_id,
            deadline,
            version: req.version(),
            keep_alive: req.keep_alive,
            head_only: req.method() == Method::Head,
        }
    }

    fn respond_poll(&mut self, req: &Request, replay: &Replay, timed_out: bool) -> Next {
        let mut body = Vec::with_capacity(
            64 + replay
                .messages
                .iter()
                .map(|m| m.json.len() + 1)
                .sum::<usize>(),
        );
        replay.write_poll_json(&mut body, timed_out);
        self.respond(
            req,
            200,
            "application/json",
            &[("Cache-Control", "no-cache")],
            &body,
        )
    }

    /// Answers a parked poll (woken, expired or shutting down) and turns
    /// the connection back to HTTP.
    pub(super) fn answer_parked(
        &mut self,
        id: usize,
        conn: &mut Conn,
        now: Instant,
        timed_out: bool,
    ) {
        let placeholder = Mode::Sse(placeholder_stream(now));
        let Mode::Parked(p) = std::mem::replace(&mut conn.mode, placeholder) else {
            return;
        };
        self.parking.remove(id);
        let after = p.after;
        let cursor = Cursor::After(after);
        let replay = match self.hub.replay(
            &p.topic,
            &cursor,
            &after.to_string(),
            now,
            self.cfg.max_batch,
        ) {
            Ok(r) if !timed_out => r,
            _ => Replay {
                messages: Vec::new(),
                gap: None,
                last_id: after,
            },
        };
        let timed_out = timed_out || replay.messages.is_empty() && replay.gap.is_none();
        if self.cfg.trace {
            if timed_out {
                eprintln!("[{id}] long poll expired on {}", p.topic);
            } else {
                eprintln!(
                    "[{id}] long poll answered: {} message(s)",
                    replay.messages.len()
                );
            }
        }
        let mut body = Vec::new();
        replay.write_poll_json(&mut body, timed_out);
        let mut headers: Vec<(&str, &str)> = vec![("Cache-Control", "no-cache")];
        if let Some(origin) = self.cfg.cors_origin.as_deref() {
            headers.push(("Access-Control-Allow-Origin", origin));
        }
        let ctx = ResponseCtx {
            version: p.version,
            head_only: p.head_only,
            keep_alive: p.keep_alive && self.shutdown_at.is_none(),
            date: &self.date.text,
        };
        let keep = write_response(
            &mut self.wbuf,
            &ctx,
            200,
            Some("application/json"),
            &headers,
            &body,
            BodyKind::Fixed,
        );
        conn.mode = Mode::Http(p.http);
        conn.idle_since = now;
        if !keep {
            conn.close_after_flush = true;
            return;
        }
        // Requests pipelined behind the poll waited in the input buffer.
        if !conn.inbuf.is_empty() {
            let mut input = std::mem::take(&mut conn.inbuf);
            let used = self.process(id, conn, &mut input, now);
            input.drain(..used.min(input.len()));
            if !conn.close_after_flush {
                conn.inbuf = input;
            }
        }
    }

    fn messages_request(&mut self, req: &Request, topic: &str, now: Instant) -> Next {
        if !hub::valid_topic(topic) {
            return self.respond_text(req, 400, "invalid topic name");
        }
        let cursor_text = req.query_param("after");
        let cursor = match hub::parse_cursor(cursor_text) {
            // No cursor: a short poll returns everything kept.
            Ok(Cursor::Live) => Cursor::Earliest,
            Ok(c) => c,
            Err(e) => return self.respond_text(req, 400, &e.to_string()),
        };
        match self.hub.replay(
            topic,
            &cursor,
            cursor_text.unwrap_or(""),
            now,
            self.cfg.max_batch,
        ) {
            Ok(replay) => self.respond_poll(req, &replay, false),
            Err(e) => self.respond_text(req, e.status(), &e.to_string()),
        }
    }

    // ---- WebSocket -------------------------------------------------------------

    fn ws_request(&mut self, id: usize, req: &Request, topic: Option<&str>, now: Instant) -> Next {
        let mut cursor = Cursor::Live;
        let cursor_text = req.query_param("after");
        if let Some(t) = topic {
            if !hub::valid_topic(t) {
                return self.respond_text(req, 400, "invalid topic name");
            }
            cursor = match hub::parse_cursor(cursor_text) {
                Ok(c) => c,
                Err(e) => return self.respond_text(req, 400, &e.to_string()),
            };
        }
        let policy = ws_handshake::HandshakePolicy {
            subprotocols: &self.cfg.ws_subprotocols,
            allowed_origins: &self.cfg.allowed_origins,
        };
        let deflate_policy = self.cfg.ws_deflate.then(|| DeflatePolicy {
            server_max_window_bits: self.cfg.ws_deflate_server_window_bits,
            client_max_window_bits: self.cfg.ws_deflate_client_window_bits,
            client_no_context_takeover: self.cfg.ws_deflate_client_no_context_takeover,
        });
        let accept = match ws_handshake::validate_with_deflate(
            req.head,
            req.buf,
            &policy,
            deflate_policy.as_ref(),
        ) {
            Ok(a) => a,
            Err(e) => {
                let status = e.status();
                let text = e.to_string();
                let extra = e.extra_headers();
                let mut body = text.into_bytes();
                body.push(b'\n');
                return self.respond(req, status, "text/plain; charset=utf-8", extra, &body);
            }
        };
        let mut limits = WsLimits::from_config(&self.cfg);
        let replay = match topic {
            Some(t) => {
                limits.max_message_bytes = self.cfg.max_message_bytes;
                match self
                    .hub
                    .replay(t, &cursor, cursor_text.unwrap_or(""), now, usize::MAX)
                {
                    Ok(r) => Some(r),
                    Err(e) => return self.respond_text(req, e.status(), &e.to_string()),
                }
            }
            None => None,
        };
        if let Some(t) = topic {
            if let Err(e) = self.hub.subscribe(t, id) {
                return self.respond_text(req, e.status(), &e.to_string());
            }
        }
        ws_handshake::write_accept(&mut self.wbuf, &accept);
        if self.cfg.trace {
            eprintln!(
                "[{id}] WebSocket open{}{}",
                topic
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_else(|| " (echo)".into()),
                accept
                    .protocol
                    .as_deref()
                    .map(|p| format!(", subprotocol {p}"))
                    .unwrap_or_default()
            );
        }
        let mut session = WsSession::new(limits, now);
        session.set_deflate(accept.deflate.map(|p| WsDeflate::from_config(p, &self.cfg)));
        session.set_trace(self.cfg.trace);
        if let Some(replay) = replay {
            if let Some(gap) = &replay.gap {
                let mut text = Vec::new();
                gap.ws_json(&mut text);
                session.send(MessageKind::Text, &text, &mut self.wbuf);
            }
            for m in &replay.messages {
                self.wbuf.extend_from_slice(&m.ws_frame);
            }
        }
        Next::Ws(Box::new(WsConn {
            session,
            topic: topic.map(Into::into),
        }))
    }

    /// Feeds bytes to a WebSocket session; returns the bytes consumed.
    pub(super) fn process_ws(
        &mut self,
        id: usize,
        conn: &mut Conn,
        input: &mut [u8],
        now: Instant,
    ) -> usize {
        let Mode::Ws(ws) = &mut conn.mode else {
            return 0;
        };
        let mut wbuf = std::mem::take(&mut self.wbuf);
        let mut to_publish: Vec<Box<str>> = Vec::new();
        let mut binary_on_topic = false;
        let is_topic = ws.topic.is_some();
        let writer = ws.session.writer();
        let mut out = DirectTx {
            buf: &mut wbuf,
            socket: &mut conn.stream,
            direct: conn.out.is_empty(),
        };
        let used = ws
            .session
            .handle_read(input, now, &mut out, &mut |kind, payload, out| {
                if !is_topic {
                    // /echo: the message back, as the session sends
                    // (compressed when negotiated).
                    writer.send(out, kind, payload);
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
                .close(1003, "binary messages are not accepted", now, &mut out);
        }
        self.wbuf = wbuf;
        if let Some(topic) = ws.topic.clone() {
            for text in to_publish {
                if let Err(e) = self.publish(&topic, None, &text, now) {
                    let mut out = std::mem::take(&mut self.wbuf);
                    let Mode::Ws(ws) = &mut conn.mode else { break };
                    let code = if e.status() == 413 { 1009 } else { 1011 };
                    ws.session.close(code, &e.to_string(), now, &mut out);
                    self.wbuf = out;
                    break;
                }
            }
        }
        self.drain_ws_trace(id, conn);
        let Mode::Ws(ws) = &mut conn.mode else {
            return used;
        };
        if ws.session.wants_close_transport() && !conn.close_after_flush {
            conn.close_after_flush = true;
            conn.idle_since = now;
        }
        used
    }

    pub(super) fn drain_ws_trace(&mut self, id: usize, conn: &mut Conn) {
        if !self.cfg.trace {
            return;
        }
        if let Mode::Ws(ws) = &mut conn.mode {
            for line in ws.session.take_trace() {
                eprintln!("[{id}] {line}");
            }
        }
    }

    // ---- debug -----------------------------------------------------------------

    /// Disconnects every SSE and WebSocket subscriber of `?topic=`: the
    /// browser tests use it to prove that clients resume by themselves.
    fn debug_drop(&mut self, req: &Request, now: Instant) -> Next {
        let Some(topic) = req.query_param("topic").filter(|t| hub::valid_topic(t)) else {
            return self.respond_text(req, 400, "invalid topic name");
        };
        let subscribers = self.hub.subscribers(topic).to_vec();
        for &id in &subscribers {
            if let Some(Some(conn)) = self.conns.get_mut(id) {
                conn.end_stream(1012, "dropped for a test", now);
                self.dirty.push(id);
            }
        }
        let body = format!("{{\"dropped\":{}}}", subscribers.len());
        self.respond(req, 200, "application/json", &[], body.as_bytes())
    }
}

/// Queues one message for one subscriber, or cuts the subscriber off if
/// its queue is at the cap (it resumes by its cursor). Returns whether the
/// connection has something new to write.
fn deliver(
    id: usize,
    conn: &mut Conn,
    msg: &Message,
    cfg: &Config,
    stats: &mut Stats,
    now: Instant,
) -> bool {
    let cap = cfg.subscriber_queue_bytes;
    if conn.close_after_flush {
        return false;
    }
    let bytes = match &conn.mode {
        Mode::Sse(s) if s.chunked => &msg.sse_chunk,
        Mode::Sse(_) => &msg.sse,
        Mode::Ws(ws) if ws.session.is_open() => &msg.ws_frame,
        _ => return false,
    };
    if conn.out.len() + bytes.len() > cap {
        stats.slow_disconnects += 1;
        // What was kept of the queue ends on a frame or chunk boundary.
        conn.out.clear_unstarted();
        // RFC 6455 §7.4.1: 1008, the endpoint's policy (a queue cap).
        conn.end_stream(1008, "subscriber too slow", now);
        if cfg.trace {
            eprintln!("[{id}] cut off: outbound queue at its cap ({cap} bytes)");
        }
        return true;
    }
    conn.out.push_shared(bytes);
    if let Mode::Sse(s) = &mut conn.mode {
        s.last_write = now;
    }
    if cfg.trace {
        let how = if matches!(conn.mode, Mode::Sse(_)) {
            "SSE event"
        } else {
            "WebSocket text frame"
        };
        eprintln!(
            "[{id}] -> {how} id {} event {} ({} bytes)",
            msg.id_text,
            msg.event_name(),
            bytes.len()
        );
    }
    stats.deliveries += 1;
    true
}

/// A stand-in mode while a connection's real one is moved out.
fn placeholder_stream(now: Instant) -> SseStream {
    SseStream {
        topic: "".into(),
        chunked: false,
        last_write: now,
    }
}

fn trace_request(id: usize, req: &Request) {
    eprintln!(
        "[{id}] {} {} {}",
        req.method().as_str(),
        req.target(),
        req.version().as_str()
    );
    for h in &req.head.headers {
        eprintln!(
            "[{id}]     {}: {}",
            String::from_utf8_lossy(h.name.get(req.buf)),
            String::from_utf8_lossy(h.value.get(req.buf))
        );
    }
    // The framing decision of RFC 9112 §6.3, as it was taken.
    let framing = if req.header("transfer-encoding").is_some() {
        format!("chunked body, {} bytes decoded", req.body.len())
    } else if req.header("content-length").is_some() {
        format!("Content-Length body of {} bytes", req.body.len())
    } else {
        "no body".to_string()
    };
    eprintln!(
        "[{id}]     {framing}; connection {}",
        if req.keep_alive {
            "kept alive"
        } else {
            "closes after"
        }
    );
}

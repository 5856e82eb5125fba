//! What the server does with a request: the HTTP interface of docs/protocol.md.
//!
//! A handler writes its response into the connection's own queue and
//! returns a [`Next`]: what the connection becomes. The state change itself
//! is made by `step` in `mod.rs`, by the table in `conn.rs`. Published
//! messages are fanned out after the handling is over.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::hub::{
    self, Cursor, EventName, PayloadKind, Replay, ReplayLimit, Transport, WireFormat,
};
use crate::proto::http::{write_response, BodyKind, Request};
use crate::proto::mux::{MuxCommand, MuxData, MuxLimits, MuxOp, MuxRef, MuxReply};
use crate::proto::ws::{MessageKind, WsDeflate, WsLimits, WsSession};
use crate::security::OriginError;
use crate::wire::cursor::{CombinedCursor, CombinedCursorError, CursorLimits};
use crate::wire::http1::{Method, Version};
use crate::wire::jws::{find_token, Claims, TokenError};
use crate::wire::percent::{self, PercentError};
use crate::wire::ws_extensions::DeflatePolicy;
use crate::wire::{json, sse, ws_handshake};

use super::cluster::{Failure, PublishFrom, Sync};
use super::conn::{
    sub_id, Awaiting, Closing, Conn, ParkedPoll, Phase, ReplyTo, State, Stream, StreamKind, Subs,
    TopicName, WsConn, WsRole, MAX_SUBS,
};
use super::outq::OutQueue;
use super::routes::{route, Miss, Route};
use super::{
    assets, close_state, new_sub, publish, start_position, step, ConnId, Ctx, Event, Format,
};
use crate::proto::redis::broker::TopicState;

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
    /// An Engine.IO polling GET waits for its session (node/sio.rs).
    EioPark {
        sid: crate::proto::engineio::Sid,
        engine: super::conn::EngineKind,
        version: Version,
        keep_alive: bool,
    },
    /// Wait for Redis (`--redis`).
    Await(Await),
}

/// A request about to wait for Redis (see [`super::conn::Awaiting`]).
pub(crate) struct Await {
    ticket: u64,
    deadline: Instant,
    /// `None`: read the request again when its topics are in sync.
    reply: Option<ReplyTo>,
    refresh: bool,
}

/// A long poll about to park.
pub(crate) struct Park {
    /// Each topic and the cursor its answer continues from.
    topics: Vec<(TopicName, hub::MessageId)>,
    multi: bool,
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
    /// A response that has its body whatever the method (the answer to a
    /// GET that waited).
    pub(crate) fn with_body(version: Version, keep_alive: bool) -> ReqMeta {
        ReqMeta {
            version,
            head_only: false,
            keep_alive,
        }
    }

    pub(crate) fn of(req: &Request) -> ReqMeta {
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
        // RFC 9110 §10.2.3: a 503 says when to come back (every limit
        // that answers 503 is one a client can wait out: connections,
        // topics, parked polls, Redis).
        let retry: &[(&str, &str)] = match status {
            503 if !extra
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("retry-after")) =>
            {
                &[("Retry-After", "1")]
            }
            _ => &[],
        };
        // The extra fields as given, unless CORS or Retry-After adds one:
        // most answers build no list.
        let with_more: Vec<(&str, &str)>;
        let headers = match (cors.as_deref(), retry.is_empty()) {
            (None, true) => extra,
            (None, false) => {
                with_more = [extra, retry].concat();
                &with_more
            }
            (Some(origin), _) => {
                with_more = [extra, retry, &[("Access-Control-Allow-Origin", origin)]].concat();
                &with_more
            }
        };
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
        self.last_reply = (status, body.len());
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let keep = write_response(&mut buf, &ctx, status, content_type, headers, body, kind);
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
pub(crate) fn answer_error(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    why: &str,
    status: u16,
    now: Instant,
) {
    ctx.trace_conn(id, || format!("    error {status}: {why}"));
    let meta = ReqMeta {
        version: Version::Http11,
        head_only: false,
        keep_alive: false,
    };
    ctx.respond_text(&mut conn.out, meta, status, why);
    conn.inbuf = Default::default();
    step(ctx, id, conn, Event::AnsweredLast, now, close_state);
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
                // An Engine.IO session sees a POST at its head (one POST
                // at a time, counted as the reference counts).
                if let Some(req) = http.awaiting_body(&input[at..]) {
                    let polling_post = req.method() == Method::Post
                        && ctx.sio.engine_for(req.path()).is_some()
                        && sio_origin_allowed(ctx, &req);
                    if polling_post {
                        ctx.sio.post_head(id, req.path(), req.query(), now);
                    }
                }
                return at;
            }
            Err(e) => {
                if let crate::proto::http::HttpError::BodyTooLarge(_) = e {
                    let target = http.refused_target(&input[at..]);
                    let (path, query) = target.split_once('?').unwrap_or((target, ""));
                    super::sio::refuse_post(ctx, path, query);
                }
                let status = e.status();
                answer_error(ctx, id, conn, &e.to_string(), status, now);
                return input.len();
            }
            Ok(Some(req)) => {
                out.push(&interim);
                ctx.stats.requests += 1;
                if ctx.cfg.trace {
                    trace_request(ctx, id, &req);
                }
                let next = dispatch(ctx, id, out, &req, now);
                if ctx.cfg.trace {
                    let status = ctx.last_reply.0;
                    let tag = ctx.conn_tag(id);
                    ctx.log.push(format!("{tag}     answered {status}"));
                }
                if ctx.cfg.access_log {
                    let (status, bytes) = ctx.last_reply;
                    let forwarded = req
                        .header("x-forwarded-for")
                        .filter(|_| ctx.cfg.trust_proxy)
                        .and_then(|v| v.split(|&b| b == b',').next())
                        .map(|v| {
                            String::from_utf8_lossy(crate::wire::http1::trim_ows(v)).into_owned()
                        });
                    let client = forwarded
                        .or_else(|| {
                            ctx.access_mut(id)
                                .and_then(|l| l.peer)
                                .map(|p| p.to_string())
                        })
                        .unwrap_or_else(|| "-".to_string());
                    let entry = format!(
                        "{} {client} {} {}",
                        ctx.conn_tag(id),
                        req.method().as_str(),
                        redacted(req.target())
                    );
                    // Long-lived answers are logged when they end, with
                    // what they sent.
                    let kind = match &next {
                        // Logged when it is read again.
                        Next::Await(a) if a.reply.is_none() => Some("await"),
                        // Logged when Redis's answer is written.
                        Next::Await(_) => Some("http"),
                        Next::Continue | Next::Close => None,
                        Next::Stream(s) if s.kind == StreamKind::Sse => Some("sse"),
                        Next::Stream(_) => Some("stream"),
                        Next::Ws(_) => Some("ws"),
                        Next::Park(_) | Next::EioPark { .. } => Some("poll"),
                    };
                    match kind {
                        None => ctx.log.push(format!(
                            "{} {entry} {status} {bytes} 0.000s http",
                            ctx.date_secs
                        )),
                        Some("await") => {}
                        Some(kind) => {
                            if let Some(log) = ctx.access_mut(id) {
                                log.open_entry = Some((now, entry.into(), kind));
                            }
                        }
                    }
                }
                next
            }
        };
        let used = http.finish_request();
        // A request waiting for its topics stays unread, to be read again.
        if !matches!(&next, Next::Await(a) if a.reply.is_none()) {
            at += used;
        }
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
                            topics: p.topics,
                            multi: p.multi,
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
            Next::EioPark {
                sid,
                engine,
                version,
                keep_alive,
            } => {
                step(ctx, id, conn, Event::EioParked, now, |old| match old {
                    State::Http(mut http) => {
                        http.shrink();
                        State::EioPoll(Box::new(super::conn::EioPoll {
                            http,
                            sid,
                            engine,
                            version,
                            keep_alive,
                        }))
                    }
                    other => other,
                });
                return at;
            }
            Next::Await(a) => {
                step(ctx, id, conn, Event::AwaitBroker, now, |old| match old {
                    State::Http(http) => State::AwaitingBroker(Box::new(Awaiting {
                        http,
                        ticket: a.ticket,
                        deadline: a.deadline,
                        reply: a.reply,
                        refresh: a.refresh,
                    })),
                    other => other,
                });
                return at;
            }
        }
    }
}

// ---- the Redis engine --------------------------------------------------------

/// What a request waiting for Redis is answered with.
pub(crate) enum BrokerAnswer {
    Published(Result<hub::MessageId, Failure>),
    Deleted(TopicName, Result<Option<(u64, hub::MessageId)>, Failure>),
    Info(TopicName, Result<Option<TopicState>, Failure>),
    Listed(Result<(Vec<(TopicName, TopicState)>, bool), Failure>),
    /// `redis_timeout` passed.
    TimedOut,
    /// The answer of the node that holds a relayed request's Engine.IO
    /// session.
    Relayed {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
}

/// A topic's stats in cluster mode: Redis's position and stream length,
/// the other nodes' subscriber counts plus this node's own (live), and the
/// bytes this node's mirror holds of it.
fn cluster_topic_info(ctx: &Ctx, topic: TopicName, s: &TopicState) -> hub::TopicInfo {
    let local = local_topic_info(ctx, &topic);
    let mut c = local
        .as_ref()
        .map(|i| i.subscribers_by_transport)
        .unwrap_or_default();
    let [sse, ws, poll, stream, socketio] = s.others.map(|n| usize::try_from(n).unwrap_or(0));
    c.sse += sse;
    c.ws += ws;
    c.poll += poll;
    c.stream += stream;
    c.socketio += socketio;
    hub::TopicInfo {
        name: topic,
        subscribers_by_transport: c,
        kept_messages: usize::try_from(s.kept).unwrap_or(usize::MAX),
        kept_bytes: local.map_or(0, |i| i.kept_bytes),
        first_id: s.oldest_seq.map(|seq| hub::MessageId {
            epoch: s.epoch,
            seq,
        }),
        last_id: hub::MessageId {
            epoch: s.epoch,
            seq: s.last_seq,
        },
        epoch: s.epoch,
    }
}

/// In cluster mode, whether `topics` can be served now: `None` (go on),
/// a wait (the request is read again once they are in sync), or 503.
/// Each topic stays followed for `keep` at least.
///
/// A cursor past the mirror's newest id, or of another epoch, may be one
/// another node just handed out (its message is on its way here by
/// pub/sub): the request waits for one fresh read of Redis before it is
/// answered, so that it is not told `gap` for a message that exists.
fn cluster_wait(
    ctx: &mut Ctx,
    id: ConnId,
    topics: &[TopicName],
    cursors: &[&Cursor],
    keep: Duration,
    now: Instant,
) -> Result<Option<Next>, Refusal> {
    let Some(c) = ctx.cluster.as_mut() else {
        return Ok(None);
    };
    let mut pending = Vec::new();
    for t in topics {
        match c.sync(t, ctx.hub.last_id(t), keep, now) {
            Sync::Live => {}
            Sync::Pending => pending.push(t),
            Sync::Down => return Err(Refusal::new(503, "Redis is unavailable")),
        }
    }
    if pending.is_empty() {
        if ctx.sync_refreshed == Some(id) || !c.is_up() {
            return Ok(None);
        }
        let ahead: Vec<&TopicName> = topics
            .iter()
            .zip(cursors)
            .filter(|(t, cursor)| match cursor {
                Cursor::After(want) => super::ahead_of(*want, ctx.hub.last_id(t)),
                _ => false,
            })
            .map(|(t, _)| t)
            .collect();
        if ahead.is_empty() {
            return Ok(None);
        }
        let w = c.ticket(id);
        for t in ahead {
            c.refresh(t, w);
        }
        return Ok(Some(Next::Await(Await {
            ticket: w.ticket,
            deadline: now + c.timeout(),
            reply: None,
            refresh: true,
        })));
    }
    if ctx.sync_expired == Some(id) {
        return Err(Refusal::new(503, "Redis did not answer in time"));
    }
    let w = c.ticket(id);
    for t in pending {
        c.wait_for(t, w);
    }
    Ok(Some(Next::Await(Await {
        ticket: w.ticket,
        deadline: now + c.timeout(),
        reply: None,
        refresh: false,
    })))
}

/// A request that waits for Redis's reply to answer it.
fn await_reply(ticket: u64, deadline: Instant, meta: ReqMeta) -> Next {
    Next::Await(Await {
        ticket,
        deadline,
        reply: Some(ReplyTo {
            version: meta.version,
            keep_alive: meta.keep_alive,
            head_only: meta.head_only,
            relayed: false,
        }),
        refresh: false,
    })
}

/// An Engine.IO polling request relayed to the node that holds its
/// session: it waits for that node's answer until `deadline`.
pub(crate) fn await_relay(
    ticket: u64,
    deadline: Instant,
    version: Version,
    keep_alive: bool,
) -> Next {
    Next::Await(Await {
        ticket,
        deadline,
        reply: Some(ReplyTo {
            version,
            keep_alive,
            head_only: false,
            relayed: true,
        }),
        refresh: false,
    })
}

/// The answer a relayed Engine.IO request gets: what the session's node
/// answered, as it answered it; or, when none came (the node is gone),
/// "Session ID unknown", as if the session had been ours and had
/// expired. `None` (and `answer` left as it was) for other waits.
fn relayed_answer(
    answer: &mut Option<BrokerAnswer>,
    relayed: bool,
) -> Option<(u16, String, Vec<u8>)> {
    use crate::proto::engineio::{HttpAnswer, SessionError};
    match answer.take() {
        Some(BrokerAnswer::Relayed {
            status,
            content_type,
            body,
        }) => Some((status, content_type, body)),
        Some(BrokerAnswer::TimedOut) | None if relayed => match SessionError::UnknownSid.answer() {
            HttpAnswer::Respond {
                status,
                content_type,
                body,
            } => Some((status, content_type.to_string(), body)),
            _ => None,
        },
        other => {
            *answer = other;
            None
        }
    }
}

/// A request waiting in `AwaitingBroker` gets what it waited for: its
/// answer (a publish, a delete, the timeout) or, for one waiting for its
/// topics, another reading of it.
pub(crate) fn answer_broker(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    mut answer: Option<BrokerAnswer>,
    now: Instant,
) {
    let State::AwaitingBroker(a) = &conn.state else {
        return;
    };
    let next = match a.reply {
        None => {
            if matches!(answer, Some(BrokerAnswer::TimedOut)) {
                ctx.sync_expired = Some(id);
            }
            if a.refresh {
                // Answered from the mirror now, whatever it holds (a
                // refresh that timed out is not a reason to fail).
                ctx.sync_refreshed = Some(id);
                ctx.sync_expired = None;
            }
            Next::Continue
        }
        Some(to) => 'answered: {
            let meta = ReqMeta {
                version: to.version,
                head_only: to.head_only,
                keep_alive: to.keep_alive,
            };
            if let Some((status, content_type, body)) = relayed_answer(&mut answer, to.relayed) {
                let next = sio_respond(ctx, &mut conn.out, meta, status, &content_type, &body);
                log_answered(ctx, id, now);
                break 'answered next;
            }
            let mut body = Vec::with_capacity(96);
            let is_stats = matches!(
                answer,
                Some(BrokerAnswer::Info(..) | BrokerAnswer::Listed(..))
            );
            let (status, ctype) = match answer {
                Some(BrokerAnswer::Published(Ok(msg_id))) => {
                    body.extend_from_slice(b"{\"id\":");
                    json::write_str(&mut body, &msg_id.to_string());
                    body.push(b'}');
                    (200, JSON)
                }
                Some(BrokerAnswer::Deleted(topic, Ok(Some((dropped, last_id))))) => {
                    body.extend_from_slice(b"{\"deleted\":");
                    json::write_str(&mut body, &topic);
                    body.extend_from_slice(b",\"dropped_messages\":");
                    push_num(&mut body, dropped as usize);
                    body.extend_from_slice(b",\"last_id\":");
                    json::write_str(&mut body, &last_id.to_string());
                    body.push(b'}');
                    (200, JSON)
                }
                Some(BrokerAnswer::Deleted(_, Ok(None)) | BrokerAnswer::Info(_, Ok(None))) => {
                    body.extend_from_slice(b"no such topic\n");
                    (404, TEXT)
                }
                Some(BrokerAnswer::Info(topic, Ok(Some(state)))) => {
                    let info = cluster_topic_info(ctx, topic, &state);
                    write_topic_info(&mut body, &info);
                    (200, JSON)
                }
                Some(BrokerAnswer::Listed(Ok((page, more)))) => {
                    body.extend_from_slice(b"{\"topics\":[");
                    let mut last = None;
                    for (i, (topic, state)) in page.into_iter().enumerate() {
                        if i > 0 {
                            body.push(b',');
                        }
                        let info = cluster_topic_info(ctx, topic, &state);
                        write_topic_info(&mut body, &info);
                        last = Some(info.name);
                    }
                    body.extend_from_slice(b"],\"next\":");
                    match last {
                        Some(name) if more => json::write_str(&mut body, &name),
                        _ => body.extend_from_slice(b"null"),
                    }
                    body.push(b'}');
                    (200, JSON)
                }
                Some(
                    BrokerAnswer::Published(Err(f))
                    | BrokerAnswer::Deleted(_, Err(f))
                    | BrokerAnswer::Info(_, Err(f))
                    | BrokerAnswer::Listed(Err(f)),
                ) => {
                    body.extend_from_slice(f.message.as_bytes());
                    body.push(b'\n');
                    (f.status, TEXT)
                }
                // RFC 9110 §15.6.5: the upstream did not answer in time;
                // what a publish or delete did is unknown.
                Some(BrokerAnswer::TimedOut | BrokerAnswer::Relayed { .. }) | None => {
                    body.extend_from_slice(b"Redis did not answer in time\n");
                    (504, TEXT)
                }
            };
            if status != 200 {
                *ctx.stats.refused.entry(status).or_default() += 1;
            }
            // Stats are of a moment: as in memory mode, not to be cached.
            let extra: &[(&str, &str)] = if is_stats { &[NO_CACHE] } else { &[] };
            let next = ctx.respond_body(&mut conn.out, meta, status, ctype, extra, &body);
            log_answered(ctx, id, now);
            next
        }
    };
    // The request read again (a wait for topics), and those pipelined
    // behind it.
    resume_after_wait(
        ctx,
        id,
        conn,
        next,
        Event::BrokerAnswered,
        now,
        |old| match old {
            State::AwaitingBroker(a) => State::Http(a.http),
            other => other,
        },
    );
    ctx.sync_expired = None;
    ctx.sync_refreshed = None;
}

/// The ack (or error) of a `/ws` publish command, once Redis answered.
pub(crate) fn answer_mux_publish(
    conn: &mut Conn,
    reference: Option<MuxRef>,
    result: Result<hub::MessageId, Failure>,
) {
    let reply = match result {
        Ok(msg_id) => MuxReply::Published {
            reference,
            id: Cow::Owned(msg_id.to_string()),
        },
        Err(f) => MuxReply::Error {
            reference,
            status: f.status,
            message: Cow::Owned(f.message),
        },
    };
    let mut text = Vec::with_capacity(96);
    reply.write(&mut text);
    if let State::WebSocket(ws) = &mut conn.state {
        if ws.role == WsRole::Multi {
            ws.session.send(MessageKind::Text, &text, &mut conn.out);
        }
    }
}

/// A request refused with a status and a reason (the peer's fault, or a
/// limit): the handler's `?` turns every lower layer's error into one.
pub(crate) struct Refusal {
    status: u16,
    message: String,
    /// RFC 6750 §3: a 401 for a missing or bad token says which.
    www_authenticate: Option<&'static str>,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            www_authenticate: None,
        }
    }
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Refusal {
        Refusal {
            status: e.status(),
            message: e.to_string(),
            www_authenticate: (e.status() == 401).then(|| e.www_authenticate()),
        }
    }
}

macro_rules! refusal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Refusal {
            fn from(e: $t) -> Refusal {
                Refusal::new(e.status(), e.to_string())
            }
        }
    )*};
}
refusal_from!(
    hub::HubError,
    hub::CursorError,
    PercentError,
    CombinedCursorError,
    json::JsonError,
    OriginError
);

type Handled = Result<Next, Refusal>;

/// Routes one request and runs its handler.
fn dispatch(ctx: &mut Ctx, id: ConnId, out: &mut OutQueue, req: &Request, now: Instant) -> Next {
    let meta = ReqMeta::of(req);
    match handle(ctx, id, out, req, now) {
        Ok(next) => next,
        Err(r) => {
            *ctx.stats.refused.entry(r.status).or_default() += 1;
            if matches!(r.status, 401 | 403) {
                ctx.stats.auth_failures += 1;
            }
            let mut body = r.message.into_bytes();
            body.push(b'\n');
            let challenge = r.www_authenticate.map(|v| ("WWW-Authenticate", v));
            let headers: &[(&str, &str)] = match &challenge {
                Some(h) => std::slice::from_ref(h),
                None => &[],
            };
            ctx.respond_body(out, meta, r.status, TEXT, headers, &body)
        }
    }
}

fn handle(ctx: &mut Ctx, id: ConnId, out: &mut OutQueue, req: &Request, now: Instant) -> Handled {
    let meta = ReqMeta::of(req);
    if matches!(req.method(), Method::Other | Method::Connect) {
        // RFC 9110 §9.1: a method the server does not implement (any
        // unknown one, and CONNECT: no tunnels here) SHOULD get 501.
        return Err(Refusal::new(501, "method not implemented"));
    }
    // `/socket.io/` and the Engine.IO echo path answer in Engine.IO's own
    // terms (its error bodies, its methods).
    if let Some(engine) = ctx.sio.engine_for(req.path()) {
        return Ok(super::sio::http_request(ctx, id, out, req, engine, now));
    }
    let route = match route(req.method(), req.path(), ctx.cfg.debug_endpoints) {
        Ok(r) => r,
        Err(Miss::NotFound) => return Err(Refusal::new(404, "not found")),
        Err(Miss::MethodNotAllowed(allow)) => {
            // RFC 9110 §15.5.6: a 405 MUST carry Allow.
            let body = b"method not allowed\n";
            return Ok(ctx.respond_body(out, meta, 405, TEXT, &[("Allow", allow)], body));
        }
        Err(Miss::Options(allow)) => return Ok(preflight(ctx, out, meta, allow)),
    };
    Ok(match route {
        // Cluster mode: a node that cannot reach Redis cannot take
        // publishes or new topics; a load balancer should send elsewhere.
        Route::Healthz if ctx.cluster.as_ref().is_some_and(|c| !c.is_up()) => {
            ctx.respond_body(out, meta, 503, TEXT, &[], b"redis unavailable")
        }
        Route::Healthz => ctx.respond_body(out, meta, 200, TEXT, &[], b"ok"),
        Route::Page(name) | Route::Asset(name) => {
            match assets::get(name, ctx.cfg.assets_dir.as_deref()) {
                Some((bytes, ctype)) => {
                    ctx.respond_body(out, meta, 200, ctype, &[NO_CACHE], &bytes)
                }
                None => return Err(Refusal::new(404, "not found")),
            }
        }
        Route::SocketIoClientJs => match socketio_client_js(&ctx.cfg) {
            Some(bytes) => ctx.respond_body(out, meta, 200, JS, &[NO_CACHE], &bytes),
            None => return Err(Refusal::new(404, SOCKETIO_CLIENT_MISSING)),
        },
        Route::Stats => {
            let body = stats_json(ctx, now);
            ctx.respond_body(out, meta, 200, JSON, &[NO_CACHE], &body)
        }
        Route::Metrics => {
            let body = metrics(ctx, now);
            let ctype = crate::wire::prometheus::CONTENT_TYPE;
            ctx.respond_body(out, meta, 200, ctype, &[NO_CACHE], &body)
        }
        Route::Topic(raw) => {
            let topic = topic_name(raw)?;
            match req.method() {
                Method::Post => publish_request(ctx, id, out, req, &topic, now)?,
                Method::Delete => {
                    check_origin(ctx, req)?;
                    need_admin(ctx, req)?;
                    delete_topic(ctx, id, out, req, &topic, now)?
                }
                _ => {
                    need_admin(ctx, req)?;
                    topic_stats(ctx, id, out, meta, &topic, now)?
                }
            }
        }
        Route::Topics => {
            need_admin(ctx, req)?;
            list_topics(ctx, id, out, req, now)?
        }
        Route::Sse(raw) => {
            let topics = vec![topic_name(raw)?];
            stream_request(ctx, id, out, req, topics, false, StreamKind::Sse, now)?
        }
        Route::Stream(raw) => {
            let topics = vec![topic_name(raw)?];
            stream_request(ctx, id, out, req, topics, false, StreamKind::Ndjson, now)?
        }
        Route::MultiSse => {
            let topics = query_topics(ctx, req)?;
            stream_request(ctx, id, out, req, topics, true, StreamKind::Sse, now)?
        }
        Route::MultiStream => {
            let topics = query_topics(ctx, req)?;
            stream_request(ctx, id, out, req, topics, true, StreamKind::Ndjson, now)?
        }
        Route::Poll(raw) => poll_request(ctx, id, out, req, vec![topic_name(raw)?], false, now)?,
        Route::MultiPoll => {
            let topics = query_topics(ctx, req)?;
            poll_request(ctx, id, out, req, topics, true, now)?
        }
        Route::Messages(raw) => {
            messages_request(ctx, id, out, req, vec![topic_name(raw)?], false, now)?
        }
        Route::MultiMessages => {
            let topics = query_topics(ctx, req)?;
            messages_request(ctx, id, out, req, topics, true, now)?
        }
        Route::TopicWs(raw) => {
            let topic = topic_name(raw)?;
            let envelope = query(req, "envelope")?.is_some_and(|v| v == "1" || v == "true");
            ws_request(
                ctx,
                id,
                out,
                req,
                WsRole::Topic { envelope },
                Some(topic),
                now,
            )?
        }
        Route::MultiWs => ws_request(ctx, id, out, req, WsRole::Multi, None, now)?,
        Route::Echo => ws_request(ctx, id, out, req, WsRole::Echo, None, now)?,
        Route::DebugDrop => debug_drop(ctx, out, req)?,
    })
}

/// `OPTIONS`: 204 with `Allow`; with `--cors-origin`, a CORS preflight
/// answer too (so pages on that origin can use fetch and EventSource).
fn preflight(ctx: &mut Ctx, out: &mut OutQueue, meta: ReqMeta, allow: &str) -> Next {
    let mut headers = vec![("Allow", allow)];
    if ctx.cfg.cors_origin.is_some() {
        headers.push(("Access-Control-Allow-Methods", allow));
        // Fetch's CORS protocol: a header the page sets that is not
        // CORS-safelisted must be named here, or the request is never
        // sent. `Authorization` carries the token (`Bearer`).
        headers.push((
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, Last-Event-ID, Cache-Control",
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

fn stats_json(ctx: &Ctx, now: Instant) -> Vec<u8> {
    let s = &ctx.stats;
    let h = ctx.hub.stats();
    let uptime = ctx
        .started
        .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
    let mut body = format!(
        "{{\"version\":\"{}\",\"uptime_seconds\":{uptime:.3},\"connections\":{},\"topics\":{},\"kept_messages\":{},\"kept_bytes\":{},\"subscribers\":{},\"parked_polls\":{},\"accepted\":{},\"requests\":{},\"published\":{},\"deliveries\":{},\"slow_disconnects\":{},\"refused_over_limit\":{},\"polls_woken\":{},\"polls_expired\":{},\"auth_failures\":{}}}",
        env!("CARGO_PKG_VERSION"),
        ctx.live,
        h.topics,
        h.messages,
        h.kept_bytes,
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
        s.auth_failures,
    )
    .into_bytes();
    if let Some(c) = ctx.cluster.as_ref() {
        // Cluster mode: whether Redis is reachable, and how many topics
        // this node follows.
        body.pop();
        body.extend_from_slice(
            format!(
                ",\"redis\":{{\"up\":{},\"followed_topics\":{}}}}}",
                c.is_up(),
                c.followed()
            )
            .as_bytes(),
        );
    }
    body
}

/// `GET /metrics`: the counters in the Prometheus text exposition format
/// 0.0.4, named by its conventions (`pushwire_*_total`, base units).
fn metrics(ctx: &Ctx, now: Instant) -> Vec<u8> {
    use crate::wire::prometheus::{MetricType, Writer};
    let s = &ctx.stats;
    let h = ctx.hub.stats();
    let mut out = Vec::with_capacity(4096);
    let mut w = Writer::new(&mut out);
    w.family(
        "pushwire_connections",
        "Open connections, by what they are doing.",
        MetricType::Gauge,
    );
    for (i, kind) in super::CONN_KINDS.iter().enumerate().take(6) {
        w.sample_u64("pushwire_connections", &[("state", kind)], s.conns_by[i]);
    }
    w.gauge(
        "pushwire_subscriptions",
        "Topic subscriptions of open connections.",
        h.subscribers as f64,
    );
    w.gauge(
        "pushwire_parked_polls",
        "Long polls waiting for a message.",
        ctx.parking.len() as f64,
    );
    w.gauge("pushwire_topics", "Topics in the hub.", h.topics as f64);
    let (polling, websocket, sockets) = ctx.sio.counts();
    w.family(
        "pushwire_engineio_sessions",
        "Open Engine.IO sessions, by transport.",
        MetricType::Gauge,
    );
    w.sample_u64(
        "pushwire_engineio_sessions",
        &[("transport", "polling")],
        polling as u64,
    );
    w.sample_u64(
        "pushwire_engineio_sessions",
        &[("transport", "websocket")],
        websocket as u64,
    );
    w.gauge(
        "pushwire_socketio_sockets",
        "Socket.IO sockets connected to a namespace.",
        sockets as f64,
    );
    if let Some(c) = ctx.cluster.as_ref() {
        w.gauge(
            "pushwire_redis_up",
            "1 while the node is connected to Redis (--redis).",
            if c.is_up() { 1.0 } else { 0.0 },
        );
        w.gauge(
            "pushwire_redis_followed_topics",
            "Topics this node follows on Redis (one subscription each).",
            c.followed() as f64,
        );
    }
    w.gauge(
        "pushwire_kept_messages",
        "Messages kept in the histories.",
        h.messages as f64,
    );
    w.gauge(
        "pushwire_kept_bytes",
        "Bytes charged to the kept messages.",
        h.kept_bytes as f64,
    );
    w.counter(
        "pushwire_accepted_total",
        "Connections accepted.",
        s.accepted,
    );
    w.counter(
        "pushwire_requests_total",
        "HTTP requests parsed.",
        s.requests,
    );
    w.counter(
        "pushwire_published_total",
        "Messages published.",
        s.published,
    );
    w.family(
        "pushwire_deliveries_total",
        "Live messages queued to subscribers, by transport.",
        MetricType::Counter,
    );
    for (i, t) in super::TRANSPORTS.iter().enumerate() {
        w.sample_u64(
            "pushwire_deliveries_total",
            &[("transport", t)],
            s.deliveries_by[i],
        );
    }
    w.counter(
        "pushwire_polls_answered_total",
        "Long polls answered by a publish.",
        s.polls_woken,
    );
    w.counter(
        "pushwire_slow_disconnects_total",
        "Subscribers cut off because their queue was over its cap.",
        s.slow_disconnects,
    );
    w.counter(
        "pushwire_socketio_relayed_total",
        "Engine.IO polling requests relayed to the node holding their session.",
        s.sio_relayed,
    );
    w.counter(
        "pushwire_socketio_carried_total",
        "Engine.IO WebSockets carried for the node holding their session.",
        s.sio_carried,
    );
    w.family(
        "pushwire_refused_total",
        "Requests refused, by HTTP status.",
        MetricType::Counter,
    );
    for (status, n) in &s.refused {
        w.sample_u64(
            "pushwire_refused_total",
            &[("status", &status.to_string())],
            *n,
        );
    }
    w.counter(
        "pushwire_auth_failures_total",
        "Requests refused for a missing or bad token (401) or a forbidden origin or topic (403).",
        s.auth_failures,
    );
    w.histogram(
        "pushwire_publish_latency_seconds",
        "Per message this node fanned out to a subscriber: from its publish here (with --redis, its arrival from Redis) until queued on every subscriber's connection of this node.",
        &ctx.latency,
    );
    if let Some(t) = ctx.started {
        w.gauge(
            "pushwire_uptime_seconds",
            "Seconds since the server took its first connection.",
            now.saturating_duration_since(t).as_secs_f64(),
        );
    }
    if let Some(rss) = ctx.process.rss_bytes {
        w.gauge(
            "process_resident_memory_bytes",
            "Resident memory of the process.",
            rss as f64,
        );
    }
    if let Some(fds) = ctx.process.open_fds {
        w.gauge(
            "process_open_fds",
            "Open file descriptors of the process.",
            fds as f64,
        );
    }
    out
}

// ---- names, queries and cursors --------------------------------------------

/// A topic named in a path segment: percent-decoded once (RFC 3986 §2.1),
/// then held to the name rule.
fn topic_name(raw: &str) -> Result<TopicName, Refusal> {
    let decoded = percent::decode_path_segment(raw)?;
    Ok(TopicName::parse(&decoded)?)
}

/// The first value of query parameter `name`, percent-decoded once.
fn query<'r>(req: &Request<'r>, name: &str) -> Result<Option<Cow<'r, str>>, Refusal> {
    Ok(percent::query_value(req.query(), name).transpose()?)
}

/// The `topic=` parameters of a multi-topic request: 1 to
/// `max_topics_per_connection` distinct names, in the order given.
fn query_topics(ctx: &Ctx, req: &Request) -> Result<Vec<TopicName>, Refusal> {
    let max = ctx.cfg.max_topics_per_connection.clamp(1, MAX_SUBS);
    let mut topics: Vec<TopicName> = Vec::new();
    for value in percent::query_values(req.query(), "topic") {
        let topic = TopicName::parse(&value?)?;
        if topics.contains(&topic) {
            return Err(Refusal::new(400, format!("topic {topic} named twice")));
        }
        if topics.len() == max {
            return Err(Refusal::new(
                400,
                format!("more than {max} topics on one connection"),
            ));
        }
        topics.push(topic);
    }
    if topics.is_empty() {
        return Err(Refusal::new(400, "no topic= given"));
    }
    Ok(topics)
}

/// Each topic's cursor from the text a request carries: a single-topic
/// cursor, or a combined `A=ID,B=ID` one. A topic the combined cursor
/// does not name starts as the transport starts without one (`missing`).
fn cursors(
    ctx: &Ctx,
    topics: &[TopicName],
    multi: bool,
    text: Option<&str>,
    missing: Cursor,
) -> Result<Vec<(Cursor, String)>, Refusal> {
    if !multi {
        let cursor = match hub::parse_cursor(text)? {
            Cursor::Live => missing,
            c => c,
        };
        return Ok(vec![(cursor, text.unwrap_or("").to_string())]);
    }
    let combined = match text {
        None => CombinedCursor::new(),
        Some(t) => CombinedCursor::parse(t, &CursorLimits::from_config(&ctx.cfg))?,
    };
    Ok(topics
        .iter()
        .map(|t| match combined.get(t) {
            Some(c) => (c, cursor_text(&c)),
            None => (missing, String::new()),
        })
        .collect())
}

// ---- security (DESIGN "Security") --------------------------------------------

/// A request that carries `Origin` (a page's script) may publish or open a
/// WebSocket only from an allowed origin: cross-site publishing from any
/// web page is refused before anything happens.
fn check_origin(ctx: &Ctx, req: &Request) -> Result<(), Refusal> {
    // RFC 6454 §7.3: a user agent "MUST NOT" send more than one Origin
    // field; with two, whichever one a check read would be arbitrary.
    let mut origins = req.head.headers_named(req.buf, "origin");
    if let (Some(_), Some(_)) = (origins.next(), origins.next()) {
        return Err(Refusal::new(
            400,
            "more than one Origin field (RFC 6454 §7.3)",
        ));
    }
    Ok(ctx
        .origins
        .check(req.header("origin"), req.host(), ctx.cfg.tls_cert.is_some())?)
}

/// The request's verified token, when tokens are on (`None` when off):
/// `Authorization: Bearer T`, else `?token=T`. None or invalid: 401.
fn claims(ctx: &Ctx, req: &Request) -> Result<Option<Claims>, Refusal> {
    let Some(verifier) = &ctx.verifier else {
        return Ok(None);
    };
    let query_token = query(req, "token")?;
    let token = find_token(
        req.header("authorization"),
        query_token.as_deref().map(str::as_bytes),
    )?;
    Ok(Some(verifier.verify(token, ctx.date_secs)?))
}

/// 403 unless `claims` (tokens on) allow `what` on `topic`.
fn allow(
    claims: Option<&Claims>,
    topic: &str,
    what: fn(&Claims, &str) -> bool,
) -> Result<(), Refusal> {
    match claims {
        Some(c) if !what(c, topic) => Err(Refusal::new(
            403,
            format!("the token does not allow this on topic {topic}"),
        )),
        _ => Ok(()),
    }
}

/// The request's token, checked for subscribing to every one of `topics`.
fn subscriber_claims(
    ctx: &Ctx,
    req: &Request,
    topics: &[TopicName],
) -> Result<Option<Claims>, Refusal> {
    let claims = claims(ctx, req)?;
    for t in topics {
        allow(claims.as_ref(), t, Claims::may_subscribe)?;
    }
    Ok(claims)
}

/// Topic management needs `admin` when tokens are on.
fn need_admin(ctx: &Ctx, req: &Request) -> Result<(), Refusal> {
    match claims(ctx, req)? {
        Some(c) if !c.is_admin() => Err(Refusal::new(403, "the token is not an admin token")),
        _ => Ok(()),
    }
}

/// When a token's `exp` falls, on the monotonic clock.
fn expiry(ctx: &Ctx, claims: Option<&Claims>, now: Instant) -> Option<Instant> {
    let exp = claims?.expires_at()?;
    Some(now + Duration::from_secs(exp.saturating_sub(ctx.date_secs)))
}

/// A cursor as a client would have written it (the `requested` of a gap).
fn cursor_text(c: &Cursor) -> String {
    match c {
        Cursor::After(id) => id.to_string(),
        Cursor::Earliest => "earliest".to_string(),
        Cursor::Live => String::new(),
    }
}

// ---- publish ---------------------------------------------------------------

fn publish_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topic: &TopicName,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    check_origin(ctx, req)?;
    allow(claims(ctx, req)?.as_ref(), topic, Claims::may_publish)?;
    let event = match query(req, "event")? {
        Some(e) => Some(EventName::parse(&e)?),
        None => None,
    };
    if req.body.len() > ctx.cfg.max_message_bytes {
        return Err(Refusal::new(413, "message too large"));
    }
    let Ok(data) = std::str::from_utf8(req.body) else {
        return Err(Refusal::new(400, "message is not UTF-8"));
    };
    let kind = payload_kind(req.header("content-type"));
    if kind == PayloadKind::Json {
        // RFC 8259: a JSON payload is embedded as a value in every JSON
        // the server writes, so it must be one.
        json::validate(req.body, &json::JsonLimits::from_config(&ctx.cfg))?;
    }
    if let Some(c) = ctx.cluster.as_mut() {
        // The id is Redis's: the answer waits for the script's reply.
        let w = c.ticket(id);
        c.publish(PublishFrom::Http(w), topic, event.as_ref(), data, kind)
            .map_err(|f| Refusal::new(f.status, f.message))?;
        return Ok(await_reply(w.ticket, now + c.timeout(), meta));
    }
    let msg = publish(ctx, Some(id), topic, event.as_ref(), data, kind, now)?;
    let mut body = Vec::with_capacity(msg.id_text.len() + 10);
    body.extend_from_slice(b"{\"id\":");
    json::write_str(&mut body, &msg.id_text);
    body.push(b'}');
    Ok(ctx.respond_body(out, meta, 200, JSON, &[], &body))
}

/// `Content-Type: application/json` (any parameters, any case: RFC 9110
/// §8.3.1) publishes JSON; anything else is text.
fn payload_kind(content_type: Option<&[u8]>) -> PayloadKind {
    let Some(ct) = content_type else {
        return PayloadKind::Text;
    };
    let media = ct.split(|&b| b == b';').next().unwrap_or(b"");
    if crate::wire::http1::trim_ows(media).eq_ignore_ascii_case(b"application/json") {
        PayloadKind::Json
    } else {
        PayloadKind::Text
    }
}

// ---- topic management ------------------------------------------------------

fn write_topic_info(out: &mut Vec<u8>, t: &hub::TopicInfo) {
    out.extend_from_slice(b"{\"topic\":");
    json::write_str(out, &t.name);
    out.extend_from_slice(b",\"subscribers\":{\"total\":");
    push_num(out, t.subscribers_by_transport.total());
    for tr in hub::Transport::ALL {
        out.push(b',');
        json::write_str(out, tr.name());
        out.push(b':');
        push_num(out, t.subscribers_by_transport.get(tr));
    }
    out.extend_from_slice(b"},\"kept_messages\":");
    push_num(out, t.kept_messages);
    out.extend_from_slice(b",\"kept_bytes\":");
    push_num(out, t.kept_bytes);
    out.extend_from_slice(b",\"first_id\":");
    match t.first_id {
        Some(id) => json::write_str(out, &id.to_string()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"last_id\":");
    json::write_str(out, &t.last_id.to_string());
    out.extend_from_slice(b",\"epoch\":");
    push_num(out, t.epoch as usize);
    out.push(b'}');
}

pub(crate) fn push_num(out: &mut Vec<u8>, n: usize) {
    crate::proto::http::push_u64(out, n as u64);
}

/// `topic`'s stats on this node: the hub's, and the long polls parked on
/// it as its `poll` subscribers (DESIGN: "subscribers per transport"; a
/// long poll is a subscriber for as long as it waits).
pub(crate) fn local_topic_info(ctx: &Ctx, topic: &TopicName) -> Option<hub::TopicInfo> {
    ctx.hub.topic_info(topic).map(|i| with_parked(ctx, i))
}

fn with_parked(ctx: &Ctx, mut info: hub::TopicInfo) -> hub::TopicInfo {
    info.subscribers_by_transport.poll += ctx.parking.parked_on(&info.name);
    info
}

/// `GET /topics/{t}`: its stats. A topic that does not exist is not
/// created by asking: 404.
fn topic_stats(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    meta: ReqMeta,
    topic: &TopicName,
    now: Instant,
) -> Handled {
    if let Some(c) = ctx.cluster.as_mut() {
        // Read from Redis (asking does not create the topic, nor follow
        // it), with every node's subscriber counts.
        let w = c.ticket(id);
        c.topic_info(w, topic)
            .map_err(|f| Refusal::new(f.status, f.message))?;
        return Ok(await_reply(w.ticket, now + c.timeout(), meta));
    }
    let Some(info) = local_topic_info(ctx, topic) else {
        return Err(Refusal::new(404, "no such topic"));
    };
    let mut body = Vec::with_capacity(256);
    write_topic_info(&mut body, &info);
    Ok(ctx.respond_body(out, meta, 200, JSON, &[NO_CACHE], &body))
}

/// `GET /topics?prefix=P&after_topic=T&limit=N`: topics in name order,
/// `next` is the `after_topic` of the next page (null on the last).
fn list_topics(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    let prefix = query(req, "prefix")?.unwrap_or_default();
    let after = query(req, "after_topic")?;
    let limit = match query(req, "limit")? {
        None => 100,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(Refusal::new(400, "limit is 1 to 1000")),
        },
    };
    if let Some(c) = ctx.cluster.as_mut() {
        let w = c.ticket(id);
        c.list_topics(w, &prefix, after.as_deref(), limit)
            .map_err(|f| Refusal::new(f.status, f.message))?;
        return Ok(await_reply(w.ticket, now + c.timeout(), meta));
    }
    // One more than asked says whether there is a next page.
    let mut topics: Vec<hub::TopicInfo> = ctx
        .hub
        .topics(&prefix, after.as_deref(), limit + 1)
        .into_iter()
        .map(|t| with_parked(ctx, t))
        .collect();
    let more = topics.len() > limit;
    topics.truncate(limit);
    let mut body = Vec::with_capacity(64 + 200 * topics.len());
    body.extend_from_slice(b"{\"topics\":[");
    for (i, t) in topics.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        write_topic_info(&mut body, t);
    }
    body.extend_from_slice(b"],\"next\":");
    match topics.last() {
        Some(last) if more => json::write_str(&mut body, &last.name),
        _ => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Ok(ctx.respond_body(out, meta, 200, JSON, &[NO_CACHE], &body))
}

/// `DELETE /topics/{t}`: the history is dropped, the next message starts
/// a new epoch, and live subscribers are told `gap`.
fn delete_topic(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topic: &TopicName,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    if let Some(c) = ctx.cluster.as_mut() {
        // Every node's subscribers are told `gap` by the notice the script
        // publishes; this node's too, through its own follower.
        let w = c.ticket(id);
        c.delete(w, topic)
            .map_err(|f| Refusal::new(f.status, f.message))?;
        return Ok(await_reply(w.ticket, now + c.timeout(), meta));
    }
    let Some(deleted) = ctx.hub.delete(topic) else {
        return Err(Refusal::new(404, "no such topic"));
    };
    let mut body = Vec::with_capacity(96);
    body.extend_from_slice(b"{\"deleted\":");
    json::write_str(&mut body, topic);
    body.extend_from_slice(b",\"dropped_messages\":");
    push_num(&mut body, deleted.dropped_messages);
    body.extend_from_slice(b",\"last_id\":");
    json::write_str(&mut body, &deleted.last_id.to_string());
    body.push(b'}');
    ctx.trace(|| {
        format!(
            "    deleted {topic}: {} message(s)",
            deleted.dropped_messages
        )
    });
    ctx.deletions.push((topic.clone(), deleted));
    Ok(ctx.respond_body(out, meta, 200, JSON, &[], &body))
}

// ---- SSE and HTTP streaming ------------------------------------------------

/// `GET /topics/{t}/sse`, `/topics/{t}/stream`, `/sse?topic=…`,
/// `/stream?topic=…`: one streaming response per connection, each topic's
/// history after its cursor first, then live.
#[allow(clippy::too_many_arguments)]
fn stream_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topics: Vec<TopicName>,
    multi: bool,
    kind: StreamKind,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    let cursor_text: Option<Cow<str>> = match kind {
        StreamKind::Sse => {
            // The header wins: a reconnecting browser sends Last-Event-ID
            // while its URL still carries the old query.
            match req.header("last-event-id") {
                Some(v) if !v.is_empty() => match std::str::from_utf8(v) {
                    Ok(s) => Some(Cow::Borrowed(s)),
                    Err(_) => return Err(Refusal::new(400, "invalid Last-Event-ID")),
                },
                _ => query(req, "last_event_id")?,
            }
        }
        StreamKind::Ndjson => query(req, "after")?,
    };
    let claims = subscriber_claims(ctx, req, &topics)?;
    let expires = expiry(ctx, claims.as_ref(), now);
    let cursors = cursors(ctx, &topics, multi, cursor_text.as_deref(), Cursor::Live)?;
    let linger = ctx.cfg.redis_linger;
    let wanted: Vec<&Cursor> = cursors.iter().map(|(c, _)| c).collect();
    if let Some(wait) = cluster_wait(ctx, id, &topics, &wanted, linger, now)? {
        return Ok(wait);
    }
    let mut starts = Vec::with_capacity(topics.len());
    for (topic, (cursor, text)) in topics.iter().zip(&cursors) {
        starts.push(start_position(ctx, topic, cursor, text, now)?);
    }
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
        return Ok(if matches!(keep, Next::Continue) && chunked {
            Next::Continue
        } else {
            Next::Close
        });
    }
    let transport = match kind {
        StreamKind::Sse => Transport::Sse,
        StreamKind::Ndjson => Transport::Stream,
    };
    let mut subs = Subs::default();
    for (topic, start) in topics.iter().zip(&starts) {
        let slot = subs
            .insert(new_sub(topic, start.last_id))
            .expect("topics are capped at MAX_SUBS");
        if let Err(e) = ctx.hub.subscribe(topic, sub_id(id, slot), transport) {
            // The head is out; end the stream at once.
            ctx.trace_conn(id, || format!("subscribe failed: {e}"));
            for (slot, sub) in subs.iter() {
                ctx.hub.unsubscribe(&sub.topic, sub_id(id, slot));
            }
            if chunked {
                super::chunked_last(out);
            }
            return Ok(Next::Close);
        }
    }
    // First: retry (SSE), then the gap notices; the replays follow, a
    // batch at a time as the queue drains.
    if kind == StreamKind::Sse {
        let mut first = Vec::new();
        sse::encode_retry(&mut first, ctx.cfg.sse_retry_ms);
        super::push_block(out, chunked, &first);
    }
    let stream = Box::new(Stream {
        kind,
        subs,
        multi,
        chunked,
        last_write: now,
        expires: expires.map(Box::new),
    });
    let format = Format::of_stream(&stream);
    for (topic, start) in topics.iter().zip(&starts) {
        if let Some(gap) = &start.gap {
            format.queue_gap(out, gap, topic);
        }
    }
    ctx.trace_conn(id, || {
        format!("{kind:?} stream on {} topic(s)", topics.len())
    });
    Ok(Next::Stream(stream))
}

// ---- polls -----------------------------------------------------------------

/// The replays of a poll over `topics`, within one response's limits.
fn poll_replays(
    ctx: &mut Ctx,
    topics: &[TopicName],
    cursors: &[(Cursor, String)],
    now: Instant,
) -> Result<Vec<Replay>, Refusal> {
    let mut left = ReplayLimit::from_config(&ctx.cfg);
    let mut replays = Vec::with_capacity(topics.len());
    for (topic, (cursor, text)) in topics.iter().zip(cursors) {
        super::refuse_beyond_mirror(ctx, topic, cursor)?;
        let r = ctx.hub.replay(topic, cursor, text, now, left)?;
        let bytes: usize = r.messages.iter().map(|m| m.data().len()).sum();
        left.messages = left.messages.saturating_sub(r.messages.len());
        left.bytes = left.bytes.saturating_sub(bytes);
        if !r.messages.is_empty() && left.bytes == 0 {
            // The first message always fits, so a later topic would get
            // one more past the budget; stop here instead.
            left.messages = 0;
        }
        replays.push(r);
    }
    Ok(replays)
}

fn poll_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topics: Vec<TopicName>,
    multi: bool,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    subscriber_claims(ctx, req, &topics)?;
    let text = query(req, "after")?;
    let cursors = cursors(ctx, &topics, multi, text.as_deref(), Cursor::Live)?;
    let timeout = match query(req, "timeout")? {
        None => ctx.cfg.poll_default_timeout,
        Some(s) => match parse_timeout(&s) {
            Some(t) => t.min(ctx.cfg.poll_max_timeout),
            None => return Err(Refusal::new(400, "invalid timeout")),
        },
    };
    let keep = ctx.cfg.redis_linger + timeout;
    let wanted: Vec<&Cursor> = cursors.iter().map(|(c, _)| c).collect();
    if let Some(wait) = cluster_wait(ctx, id, &topics, &wanted, keep, now)? {
        return Ok(wait);
    }
    let replays = poll_replays(ctx, &topics, &cursors, now)?;
    let anything = replays
        .iter()
        .any(|r| !r.messages.is_empty() || r.gap.is_some());
    if anything || timeout.is_zero() {
        let timed_out = !anything;
        return Ok(respond_poll(
            ctx, out, meta, &topics, multi, &replays, timed_out,
        ));
    }
    let deadline = now + timeout;
    ctx.parking
        .park(id, &topics)
        .map_err(|e| Refusal::new(e.status(), e.to_string()))?;
    ctx.stats.polls_parked += 1;
    ctx.trace_conn(id, || {
        format!(
            "long poll parked on {} topic(s) for {timeout:?}",
            topics.len()
        )
    });
    Ok(Next::Park(Park {
        topics: topics
            .into_iter()
            .zip(replays.iter().map(|r| r.last_id))
            .collect(),
        multi,
        deadline,
        meta,
    }))
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

/// A poll or short-poll answer:
/// `{"messages":[…],"last_id":"…","timeout":…,"gap":…}`; on a multi-topic
/// request the messages carry `"topic"` and `last_id` is the combined
/// cursor.
fn respond_poll(
    ctx: &mut Ctx,
    out: &mut OutQueue,
    meta: ReqMeta,
    topics: &[TopicName],
    multi: bool,
    replays: &[Replay],
    timed_out: bool,
) -> Next {
    let mut body = Vec::with_capacity(
        96 + replays
            .iter()
            .flat_map(|r| &r.messages)
            .map(|m| m.wire_len(WireFormat::MultiJson) + 1)
            .sum::<usize>(),
    );
    body.extend_from_slice(b"{\"messages\":[");
    let mut first = true;
    for r in replays {
        if r.messages.is_empty() {
            continue;
        }
        if !first {
            body.push(b',');
        }
        first = false;
        r.write_messages(&mut body, multi);
    }
    body.extend_from_slice(b"],\"last_id\":");
    if multi {
        let mut combined = Vec::new();
        for (i, (t, r)) in topics.iter().zip(replays).enumerate() {
            if i > 0 {
                combined.push(b',');
            }
            combined.extend_from_slice(t.as_bytes());
            combined.push(b'=');
            combined.extend_from_slice(r.last_id.to_string().as_bytes());
        }
        json::write_str(&mut body, &String::from_utf8_lossy(&combined));
    } else if let Some(r) = replays.first() {
        json::write_str(&mut body, &r.last_id.to_string());
    }
    let gap = replays.iter().any(|r| r.gap.is_some());
    body.extend_from_slice(if timed_out {
        b",\"timeout\":true"
    } else {
        b",\"timeout\":false"
    });
    body.extend_from_slice(if gap {
        b",\"gap\":true}"
    } else {
        b",\"gap\":false}"
    });
    ctx.respond_body(out, meta, 200, JSON, &[NO_CACHE], &body)
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
    let topics: Vec<TopicName> = p.topics.iter().map(|(t, _)| t.clone()).collect();
    let cursors: Vec<(Cursor, String)> = p
        .topics
        .iter()
        .map(|(_, after)| (Cursor::After(*after), after.to_string()))
        .collect();
    let replays = match (timed_out, poll_replays(ctx, &topics, &cursors, now)) {
        (false, Ok(r)) => r,
        _ => p
            .topics
            .iter()
            .map(|(_, after)| Replay {
                messages: Vec::new(),
                gap: None,
                last_id: *after,
            })
            .collect(),
    };
    let anything = replays
        .iter()
        .any(|r| !r.messages.is_empty() || r.gap.is_some());
    ctx.trace_conn(id, || {
        format!("long poll answered (timeout: {})", !anything)
    });
    let meta = ReqMeta {
        version: p.version,
        head_only: p.head_only,
        keep_alive: p.keep_alive,
    };
    let multi = p.multi;
    let next = respond_poll(
        ctx,
        &mut conn.out,
        meta,
        &topics,
        multi,
        &replays,
        !anything,
    );
    log_answered(ctx, id, now);
    // Requests pipelined behind the poll waited in the input buffer.
    resume_after_wait(
        ctx,
        id,
        conn,
        next,
        Event::PollAnswered,
        now,
        |old| match old {
            State::Parked(p) => State::Http(p.http),
            other => other,
        },
    );
}

/// The access log's line for a request answered after a wait (a parked
/// poll, a wait for Redis), now that its answer is queued.
pub(crate) fn log_answered(ctx: &mut Ctx, id: ConnId, now: Instant) {
    if let Some((since, entry, kind)) = ctx.access_mut(id).and_then(|l| l.open_entry.take()) {
        let took = now.saturating_duration_since(since).as_secs_f64();
        let (status, bytes) = ctx.last_reply;
        ctx.log.push(format!(
            "{} {entry} {status} {bytes} {took:.3}s {kind}",
            ctx.date_secs
        ));
    }
}

/// A request answered after waiting in `event`'s state: the connection
/// closes if the answer said so, else goes back to HTTP (`back`) and reads
/// the requests that were pipelined behind it, which waited in the input
/// buffer.
pub(crate) fn resume_after_wait(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    next: Next,
    event: Event,
    now: Instant,
    back: impl FnOnce(State) -> State,
) {
    conn.idle_since = now;
    if let Next::Close = next {
        step(ctx, id, conn, Event::AnsweredLast, now, close_state);
        return;
    }
    step(ctx, id, conn, event, now, back);
    if !conn.inbuf.is_empty() {
        let mut input = std::mem::take(&mut conn.inbuf);
        let used = super::feed(ctx, id, conn, &mut input, now);
        let used = used.min(input.len());
        input.drain(..used);
        if super::keeps_input(conn) && !input.is_empty() {
            conn.inbuf = input;
        }
    }
}

/// `GET /topics/{t}/messages`, `GET /messages?topic=…`: a short poll.
fn messages_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    topics: Vec<TopicName>,
    multi: bool,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    subscriber_claims(ctx, req, &topics)?;
    let text = query(req, "after")?;
    // No cursor: a short poll returns everything kept.
    let cursors = cursors(ctx, &topics, multi, text.as_deref(), Cursor::Earliest)?;
    let linger = ctx.cfg.redis_linger;
    let wanted: Vec<&Cursor> = cursors.iter().map(|(c, _)| c).collect();
    if let Some(wait) = cluster_wait(ctx, id, &topics, &wanted, linger, now)? {
        return Ok(wait);
    }
    let replays = poll_replays(ctx, &topics, &cursors, now)?;
    Ok(respond_poll(
        ctx, out, meta, &topics, multi, &replays, false,
    ))
}

// ---- WebSocket -------------------------------------------------------------

fn ws_request(
    ctx: &mut Ctx,
    id: ConnId,
    out: &mut OutQueue,
    req: &Request,
    role: WsRole,
    topic: Option<TopicName>,
    now: Instant,
) -> Handled {
    let meta = ReqMeta::of(req);
    // Cross-site WebSocket hijacking: a page on another origin may not
    // open one (RFC 6455 §10.2: the server checks Origin).
    check_origin(ctx, req)?;
    let claims = match role {
        WsRole::Echo => None,
        _ => claims(ctx, req)?,
    };
    if let Some(t) = &topic {
        allow(claims.as_ref(), t, Claims::may_subscribe)?;
    }
    let expires = expiry(ctx, claims.as_ref(), now);
    if let Some(t) = &topic {
        let linger = ctx.cfg.redis_linger;
        let cursor = hub::parse_cursor(query(req, "after")?.as_deref())?;
        let one = std::slice::from_ref(t);
        if let Some(wait) = cluster_wait(ctx, id, one, &[&cursor], linger, now)? {
            return Ok(wait);
        }
    }
    let start = match &topic {
        Some(t) => {
            let text = query(req, "after")?;
            let cursor = hub::parse_cursor(text.as_deref())?;
            Some(start_position(
                ctx,
                t,
                &cursor,
                text.as_deref().unwrap_or(""),
                now,
            )?)
        }
        None => None,
    };
    let accept = match validate_upgrade(ctx, req) {
        Ok(a) => a,
        Err(e) => {
            let status = e.status();
            let mut body = e.to_string().into_bytes();
            body.push(b'\n');
            return Ok(ctx.respond_body(out, meta, status, TEXT, e.extra_headers(), &body));
        }
    };
    let mut limits = WsLimits::from_config(&ctx.cfg);
    if role != WsRole::Echo {
        // Topic messages are bounded like any publish; a command frame
        // may add its JSON envelope around that.
        limits.max_message_bytes = ctx.cfg.max_message_bytes + crate::proto::mux::ENVELOPE_BYTES;
    }
    let mut subs = Subs::default();
    if let (Some(t), Some(start)) = (&topic, &start) {
        let slot = subs.insert(new_sub(t, start.last_id)).expect("one topic");
        ctx.hub.subscribe(t, sub_id(id, slot), Transport::Ws)?;
    }
    let mut head = Vec::new();
    ws_handshake::write_accept(&mut head, &accept);
    out.push(&head);
    ctx.trace_conn(id, || {
        format!(
            "WebSocket open ({role:?}){}{}",
            topic
                .as_ref()
                .map(|t| format!(" on {t}"))
                .unwrap_or_default(),
            accept
                .protocol
                .as_deref()
                .map(|p| format!(", subprotocol {p}"))
                .unwrap_or_default()
        )
    });
    let mut session = WsSession::new(limits, now);
    session.hold_failures();
    session.set_deflate(accept.deflate.map(|p| WsDeflate::from_config(p, &ctx.cfg)));
    session.set_trace(ctx.cfg.trace);
    if let (Some(t), Some(start)) = (&topic, &start) {
        if let Some(gap) = &start.gap {
            Format::Ws { multi: false }.queue_gap(out, gap, t);
        }
    }
    Ok(Next::Ws(Box::new(WsConn {
        session,
        role,
        subs,
        claims: claims.map(Box::new),
        expires,
    })))
}

/// What a WebSocket message asks of the core, decided while the session
/// reads and done after it.
enum WsAction {
    Publish {
        event: Option<EventName>,
        data: String,
        kind: PayloadKind,
    },
    Command(Vec<u8>),
    /// A message for the Engine.IO session (binary or not).
    Eio(bool, Vec<u8>),
    /// Close with this code and reason (RFC 6455 §7.4.1).
    Close(u16, &'static str),
}

/// RFC 6455 §4.2.1 and RFC 7692 §5: an upgrade request checked, and
/// permessage-deflate agreed, by the policy of Config. Origins are judged
/// before this, by the one policy every publish obeys.
pub(crate) fn validate_upgrade(
    ctx: &Ctx,
    req: &Request,
) -> Result<ws_handshake::Accept, ws_handshake::HandshakeError> {
    let policy = ws_handshake::HandshakePolicy {
        subprotocols: &ctx.cfg.ws_subprotocols,
        allowed_origins: &[],
    };
    let deflate_policy = ctx.cfg.ws_deflate.then(|| DeflatePolicy {
        server_max_window_bits: ctx.cfg.ws_deflate_server_window_bits,
        client_max_window_bits: ctx.cfg.ws_deflate_client_window_bits,
        client_no_context_takeover: ctx.cfg.ws_deflate_client_no_context_takeover,
    });
    ws_handshake::validate_with_deflate(req.head, req.buf, &policy, deflate_policy.as_ref())
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
    let role = ws.role;
    // An echo acts on each message as it reads it: nothing to wait for.
    ws.session
        .step_messages(ctx.step_ws && role != WsRole::Echo);
    let writer = ws.session.writer();
    let mut actions: Vec<WsAction> = Vec::new();
    // An echo straight from the driver's buffer is queued by range.
    let mut out = super::outq::Lending::new(out, ctx.lend.filter(|_| role == WsRole::Echo));
    let used = ws
        .session
        .handle_read(input, now, &mut out, &mut |kind, payload, out| {
            if matches!(actions.last(), Some(WsAction::Close(..))) {
                return; // closing: nothing more is done
            }
            match (role, kind) {
                // /echo: the message back, as it came, by the session's
                // own writer.
                (WsRole::Echo, _) => writer.send(out, kind, payload),
                // Engine.IO: text packets and binary messages alike.
                (WsRole::Eio { .. } | WsRole::Carried { .. }, kind) => {
                    actions.push(WsAction::Eio(kind == MessageKind::Binary, payload.to_vec()))
                }
                // RFC 6455 §7.4.1: 1003, a data type the endpoint cannot
                // accept.
                (_, MessageKind::Binary) => {
                    actions.push(WsAction::Close(1003, "binary messages are not accepted"))
                }
                (WsRole::Multi, MessageKind::Text) => {
                    actions.push(WsAction::Command(payload.to_vec()))
                }
                (WsRole::Topic { envelope }, MessageKind::Text) => {
                    // The session delivers only valid UTF-8 as Text.
                    let text = String::from_utf8_lossy(payload);
                    actions.push(if envelope {
                        envelope_action(&text)
                    } else {
                        WsAction::Publish {
                            event: None,
                            data: text.into_owned(),
                            kind: PayloadKind::Text,
                        }
                    });
                }
            }
        });
    for action in actions {
        let Conn { state, out, .. } = &mut *conn;
        let ws = match state {
            State::WebSocket(ws) => ws,
            _ => break,
        };
        match action {
            WsAction::Close(code, reason) => {
                ws.session.close(code, reason, now, out);
                break;
            }
            WsAction::Publish { event, data, kind } => {
                let Some(topic) = ws.subs.get(0).map(|s| s.topic.clone()) else {
                    break;
                };
                if ws.claims.as_ref().is_some_and(|c| !c.may_publish(&topic)) {
                    // A subscriber without publish rights: nothing is
                    // published, and the socket ends (RFC 6455 §7.4.1:
                    // 1008, policy).
                    ws.session
                        .close(1008, "the token does not allow publishing", now, out);
                    break;
                }
                if data.len() > ctx.cfg.max_message_bytes && ctx.cluster.is_some() {
                    // RFC 6455 §7.4.1: 1009, a message too big to process.
                    ws.session.close(1009, "message too large", now, out);
                    break;
                }
                if let Some(c) = ctx.cluster.as_mut() {
                    // The sender receives its own message by the mirror,
                    // like every subscriber.
                    let from = PublishFrom::Nobody;
                    if let Err(f) = c.publish(from, &topic, event.as_ref(), &data, kind) {
                        // 1013 Try Again Later (IANA close code registry).
                        ws.session.close(1013, &f.message, now, out);
                        break;
                    }
                } else if let Err(e) =
                    publish(ctx, Some(id), &topic, event.as_ref(), &data, kind, now)
                {
                    ws.session.close(e.close_code(), &e.to_string(), now, out);
                    break;
                }
            }
            WsAction::Command(frame) => mux_command(ctx, id, conn, &frame, now),
            WsAction::Eio(binary, data) => match role {
                WsRole::Eio { sid, engine } => ctx.sio.ws_message(engine, sid, binary, &data, now),
                WsRole::Carried { .. } => {
                    super::sio::carry_in(ctx, id, role, Some((binary, &data)))
                }
                _ => {}
            },
        }
    }
    after_ws_input(ctx, id, conn, now);
    used
}

/// After a WebSocket session read or failed: its trace lines out, and the
/// connection on to closing once the session has sent its close frame.
pub(crate) fn after_ws_input(ctx: &mut Ctx, id: ConnId, conn: &mut Conn, now: Instant) {
    let Conn { state, .. } = &mut *conn;
    if let State::WebSocket(ws) | State::Closing(Closing { ws: Some(ws) }) = state {
        trace_ws(ctx, id, &mut ws.session);
        if ws.session.wants_close_transport() && conn.phase() == Phase::WebSocket {
            step(ctx, id, conn, Event::WsClosing, now, close_state);
        }
    }
}

/// A topic socket opened with `?envelope=1`: each text frame is
/// `{"event":"E","data":…}` (`event` optional; a `data` that is not a
/// string is JSON). Anything else is not what the socket agreed to carry:
/// 1007 (RFC 6455 §7.4.1, data inconsistent with the message's type).
fn envelope_action(text: &str) -> WsAction {
    let limits = json::JsonLimits::default();
    let Ok(members) = json::members(text, &limits) else {
        return WsAction::Close(1007, "an envelope is a JSON object");
    };
    let mut event = None;
    let mut data = None;
    for (key, raw) in members {
        match &*key {
            "event" => match json::decode_string(raw, &limits).map(|e| EventName::parse(&e)) {
                Some(Ok(e)) => event = Some(e),
                _ => return WsAction::Close(1007, "invalid event name"),
            },
            "data" => data = Some(raw),
            _ => return WsAction::Close(1007, "an envelope has only event and data"),
        }
    }
    let Some(raw) = data else {
        return WsAction::Close(1007, "an envelope needs data");
    };
    match json::decode_string(raw, &limits) {
        Some(text) => WsAction::Publish {
            event,
            data: text.into_owned(),
            kind: PayloadKind::Text,
        },
        None => WsAction::Publish {
            event,
            data: raw.to_string(),
            kind: PayloadKind::Json,
        },
    }
}

/// One command on `GET /ws`: subscribe, unsubscribe or publish, answered
/// with an `ack` or an `error` that echoes its `ref`.
fn mux_command(ctx: &mut Ctx, id: ConnId, conn: &mut Conn, frame: &[u8], now: Instant) {
    let limits = MuxLimits::from_config(&ctx.cfg);
    let reply = match MuxCommand::parse(frame, &limits) {
        Err(e) => e.reply(),
        Ok(cmd) if ctx.cluster.is_some() && matches!(cmd.op, MuxOp::Publish { .. }) => {
            match cluster_mux_publish(ctx, id, conn, cmd) {
                // Acked when Redis replies.
                None => return,
                Some(refused) => refused,
            }
        }
        Ok(cmd) if ctx.cluster.is_some() && matches!(cmd.op, MuxOp::Subscribe { .. }) => {
            match cluster_mux_wait(ctx, id, &cmd, frame, now) {
                Ok(false) => run_mux(ctx, id, conn, cmd, now),
                // Run again when the topic is in sync.
                Ok(true) => return,
                Err(status) => MuxReply::Error {
                    reference: cmd.reference,
                    status,
                    message: Cow::Borrowed("Redis is unavailable"),
                },
            }
        }
        Ok(cmd) => run_mux(ctx, id, conn, cmd, now),
    };
    let mut text = Vec::with_capacity(96);
    reply.write(&mut text);
    if let State::WebSocket(ws) = &mut conn.state {
        ws.session.send(MessageKind::Text, &text, &mut conn.out);
    }
}

/// A `/ws` subscribe on Redis to a topic not yet in sync: `Ok(true)`
/// when it waits (the frame runs again once the topic is live), `Ok(false)`
/// to run it now, `Err(503)` when Redis is unreachable.
fn cluster_mux_wait(
    ctx: &mut Ctx,
    id: ConnId,
    cmd: &MuxCommand,
    frame: &[u8],
    now: Instant,
) -> Result<bool, u16> {
    let (MuxOp::Subscribe { topic, after }, Some(c)) = (&cmd.op, ctx.cluster.as_mut()) else {
        return Ok(false);
    };
    // A bad name is refused by the command itself.
    let Ok(topic) = TopicName::parse(topic) else {
        return Ok(false);
    };
    let retried = ctx.sync_expired == Some(id);
    match c.sync(&topic, ctx.hub.last_id(&topic), ctx.cfg.redis_linger, now) {
        // A cursor past the mirror: one fresh read of Redis first (see
        // `cluster_wait`).
        Sync::Live if !retried && c.is_up() => match after {
            Cursor::After(want) if super::ahead_of(*want, ctx.hub.last_id(&topic)) => {
                Ok(c.refresh_mux(&topic, id, frame))
            }
            _ => Ok(false),
        },
        Sync::Live => Ok(false),
        Sync::Down => Err(503),
        Sync::Pending if ctx.sync_expired == Some(id) => Err(503),
        Sync::Pending => c.wait_mux(&topic, id, frame).then_some(true).ok_or(503),
    }
}

/// A `/ws` subscribe that waited for its topic runs again (once: a second
/// wait is answered 503).
pub(crate) fn retry_mux(ctx: &mut Ctx, id: ConnId, conn: &mut Conn, frame: &[u8], now: Instant) {
    match &conn.state {
        State::WebSocket(ws) if ws.role == WsRole::Multi && ws.session.is_open() => {}
        _ => return,
    }
    ctx.sync_expired = Some(id);
    mux_command(ctx, id, conn, frame, now);
    ctx.sync_expired = None;
}

/// A `/ws` publish on Redis: queued, acked later by
/// [`answer_mux_publish`]; `Some` is a refusal to send now.
fn cluster_mux_publish(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    cmd: MuxCommand,
) -> Option<MuxReply<'static>> {
    let reference = cmd.reference;
    let error = |reference: Option<MuxRef>, status: u16, message: String| {
        Some(MuxReply::Error {
            reference,
            status,
            message: Cow::Owned(message),
        })
    };
    let MuxOp::Publish { topic, event, data } = cmd.op else {
        return error(reference, 500, "not a publish".into());
    };
    let State::WebSocket(ws) = &mut conn.state else {
        return error(reference, 503, "closing".into());
    };
    if ws.claims.as_ref().is_some_and(|c| !c.may_publish(&topic)) {
        let message = format!("the token does not allow publishing to {topic}");
        return error(reference, 403, message);
    }
    let topic = match TopicName::parse(&topic) {
        Ok(t) => t,
        Err(e) => return error(reference, e.status(), e.to_string()),
    };
    let event = match event.as_deref().map(EventName::parse).transpose() {
        Ok(e) => e,
        Err(e) => return error(reference, e.status(), e.to_string()),
    };
    let (text, kind) = match &data {
        MuxData::Text(t) => (&**t, PayloadKind::Text),
        MuxData::Json(raw) => (*raw, PayloadKind::Json),
    };
    if text.len() > ctx.cfg.max_message_bytes {
        return error(reference, 413, "message too large".into());
    }
    let c = ctx.cluster.as_mut()?;
    let from = PublishFrom::Mux {
        conn: id,
        reference: reference.clone(),
    };
    match c.publish(from, &topic, event.as_ref(), text, kind) {
        Ok(()) => None,
        Err(f) => error(reference, f.status, f.message),
    }
}

fn run_mux(
    ctx: &mut Ctx,
    id: ConnId,
    conn: &mut Conn,
    cmd: MuxCommand,
    now: Instant,
) -> MuxReply<'static> {
    let reference = cmd.reference;
    let error = |reference: Option<MuxRef>, status: u16, message: String| MuxReply::Error {
        reference,
        status,
        message: Cow::Owned(message),
    };
    let State::WebSocket(ws) = &mut conn.state else {
        return error(reference, 503, "closing".into());
    };
    match cmd.op {
        MuxOp::Subscribe { topic, after } => {
            let topic = match TopicName::parse(&topic) {
                Ok(t) => t,
                Err(e) => return error(reference, e.status(), e.to_string()),
            };
            if ws.claims.as_ref().is_some_and(|c| !c.may_subscribe(&topic)) {
                let message = format!("the token does not allow subscribing to {topic}");
                return error(reference, 403, message);
            }
            // Subscribing again moves the subscription to the new cursor.
            if let Some(slot) = ws.subs.find(&topic) {
                ws.subs.remove(slot);
                ctx.hub.unsubscribe(&topic, sub_id(id, slot));
            }
            let max = ctx.cfg.max_topics_per_connection.clamp(1, MAX_SUBS);
            if ws.subs.len() >= max {
                let message = format!("more than {max} topics on one connection");
                return error(reference, 400, message);
            }
            let text = cursor_text(&after);
            let start = match start_position(ctx, &topic, &after, &text, now) {
                Ok(s) => s,
                Err(e) => return error(reference, e.status(), e.to_string()),
            };
            let Some(slot) = ws.subs.insert(new_sub(&topic, start.last_id)) else {
                return error(reference, 400, "too many topics".into());
            };
            if let Err(e) = ctx.hub.subscribe(&topic, sub_id(id, slot), Transport::Ws) {
                ws.subs.remove(slot);
                return error(reference, e.status(), e.to_string());
            }
            if let Some(gap) = &start.gap {
                Format::Ws { multi: true }.queue_gap(&mut conn.out, gap, &topic);
            }
            let last_id = ctx.hub.last_id(&topic).unwrap_or(start.last_id).to_string();
            MuxReply::Subscribed {
                reference,
                topic: Cow::Owned(topic.to_string()),
                last_id: Cow::Owned(last_id),
            }
        }
        MuxOp::Unsubscribe { topic } => {
            if let Some(slot) = ws.subs.find(&topic) {
                if let Some(sub) = ws.subs.remove(slot) {
                    ctx.hub.unsubscribe(&sub.topic, sub_id(id, slot));
                }
            }
            MuxReply::Unsubscribed {
                reference,
                topic: Cow::Owned(topic.into_owned()),
            }
        }
        MuxOp::Publish { topic, event, data } => {
            if ws.claims.as_ref().is_some_and(|c| !c.may_publish(&topic)) {
                let message = format!("the token does not allow publishing to {topic}");
                return error(reference, 403, message);
            }
            let result = TopicName::parse(&topic).and_then(|topic| {
                let event = event.as_deref().map(EventName::parse).transpose()?;
                let (text, kind) = match &data {
                    MuxData::Text(t) => (&**t, PayloadKind::Text),
                    MuxData::Json(raw) => (*raw, PayloadKind::Json),
                };
                publish(ctx, Some(id), &topic, event.as_ref(), text, kind, now)
            });
            match result {
                Ok(msg) => MuxReply::Published {
                    reference,
                    id: Cow::Owned(msg.id_text.to_string()),
                },
                Err(e) => error(reference, e.status(), e.to_string()),
            }
        }
    }
}

pub(crate) fn trace_ws(ctx: &mut Ctx, id: ConnId, session: &mut WsSession) {
    if !ctx.cfg.trace {
        return;
    }
    let tag = ctx.conn_tag(id);
    for line in session.take_trace() {
        ctx.log.push(format!("{tag} {line}"));
    }
}

// ---- Engine.IO / Socket.IO (node/sio.rs) -----------------------------------

/// A response on an Engine.IO path, written by the one `respond`.
pub(crate) fn sio_respond(
    ctx: &mut Ctx,
    out: &mut OutQueue,
    meta: ReqMeta,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Next {
    sio_respond_with(ctx, out, meta, status, content_type, &[], body)
}

/// [`sio_respond`] with fields of its own (a refused WebSocket
/// handshake's `Upgrade` or `Sec-WebSocket-Version`).
pub(crate) fn sio_respond_with(
    ctx: &mut Ctx,
    out: &mut OutQueue,
    meta: ReqMeta,
    status: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Next {
    if status >= 400 {
        *ctx.stats.refused.entry(status).or_default() += 1;
    }
    // Every poll answers here: a list is built only for extra fields.
    let joined: Vec<(&str, &str)>;
    let headers: &[(&str, &str)] = if extra.is_empty() {
        &[NO_CACHE]
    } else {
        joined = [extra, &[NO_CACHE]].concat();
        &joined
    };
    ctx.respond_body(out, meta, status, content_type, headers, body)
}

/// `OPTIONS` on an Engine.IO path: the CORS preflight every path has.
pub(crate) fn sio_preflight(ctx: &mut Ctx, out: &mut OutQueue, req: &Request) -> Next {
    preflight(ctx, out, ReqMeta::of(req), "GET, POST, OPTIONS")
}

/// The origin policy every publish and WebSocket obeys.
pub(crate) fn sio_origin_allowed(ctx: &Ctx, req: &Request) -> bool {
    check_origin(ctx, req).is_ok()
}

/// The token a request carries (`Authorization: Bearer`, else
/// `?token=`), unverified.
pub(crate) fn sio_request_token(req: &Request) -> Option<String> {
    let query_token = query(req, "token").ok().flatten();
    let token = find_token(
        req.header("authorization"),
        query_token.as_deref().map(str::as_bytes),
    )
    .ok()?;
    Some(String::from_utf8_lossy(token).into_owned())
}

// ---- debug -----------------------------------------------------------------

/// Disconnects every SSE and WebSocket subscriber of `?topic=`: the
/// browser tests use it to prove that clients resume by themselves.
fn debug_drop(ctx: &mut Ctx, out: &mut OutQueue, req: &Request) -> Handled {
    let meta = ReqMeta::of(req);
    let Some(raw) = query(req, "topic")? else {
        return Err(Refusal::new(400, "no topic= given"));
    };
    let topic = TopicName::parse(&raw)?;
    // The connections it ends; Socket.IO sockets are not dropped.
    let count = super::subscriber_conns(ctx, &topic).len();
    ctx.drops.push(topic);
    let body = format!("{{\"dropped\":{count}}}");
    Ok(ctx.respond_body(out, meta, 200, JSON, &[], body.as_bytes()))
}

/// `target` with the value of its `token` query parameter hidden: a log
/// line must not hand out a bearer credential (EventSource carries its
/// token as `?token=`).
fn redacted(target: &str) -> Cow<'_, str> {
    let Some((path, query)) = target.split_once('?') else {
        return Cow::Borrowed(target);
    };
    if !query.split('&').any(|p| p.starts_with("token=")) {
        return Cow::Borrowed(target);
    }
    let pairs: Vec<&str> = query
        .split('&')
        .map(|p| {
            if p.starts_with("token=") {
                "token=<redacted>"
            } else {
                p
            }
        })
        .collect();
    Cow::Owned(format!("{path}?{}", pairs.join("&")))
}

fn trace_request(ctx: &mut Ctx, id: ConnId, req: &Request) {
    let tag = ctx.conn_tag(id);
    ctx.log.push(format!(
        "{tag} {} {} {}",
        req.method().as_str(),
        redacted(req.target()),
        req.version().as_str()
    ));
    for h in &req.head.headers {
        let name = h.name.get(req.buf);
        // The credential itself stays out of the trace.
        let value = if name.eq_ignore_ascii_case(b"authorization") {
            Cow::Borrowed("<redacted>")
        } else {
            String::from_utf8_lossy(h.value.get(req.buf))
        };
        ctx.log.push(format!(
            "{tag}     {}: {value}",
            String::from_utf8_lossy(name)
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
        "{tag}     {framing}; connection {}",
        if req.keep_alive {
            "kept alive"
        } else {
            "closes after"
        }
    ));
}

/// `GET /socket.io.min.js` without `--socketio-client-js`, or with a file
/// that cannot be read: a 404 that says how to get the bundle, which the
/// project does not ship.
const SOCKETIO_CLIENT_MISSING: &str = "the Socket.IO browser client is not configured: \
npm install socket.io-client, then start pushwire with \
--socketio-client-js node_modules/socket.io-client/dist/socket.io.min.js";

const JS: &str = "text/javascript; charset=utf-8";

/// The bytes of the file `--socketio-client-js` names, if it is set and
/// readable.
fn socketio_client_js(cfg: &crate::config::Config) -> Option<Vec<u8>> {
    std::fs::read(cfg.socketio_client_js.as_deref()?).ok()
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

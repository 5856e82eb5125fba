//! One connection: its state, and the one table of the transitions
//! between states.
//!
//! Before working on this file, read h11's `_state.py`: every transition
//! a connection can make is a row of [`TRANSITIONS`]. The rest of the core
//! reports what happened ([`Event`]) and asks the table where that leads;
//! it never decides a transition itself. An event that is not in the
//! table for the current phase is a bug in the core, not the peer's fault:
//! the connection is closed rather than left in a state nobody planned.
//!
//! ```text
//!              Answered                PollAnswered
//!            ┌─────────┐            ┌───────────────┐
//!            ▼         │   Parked   │               │
//!  accept ─▶ Http ─────┴──────────▶ Parked ─────────┘
//!            │  │ StreamStarted                          (any) ── Reset ──▶ Closed
//!            │  └───────────────▶ Streaming
//!            │ Upgraded                │ Ended, PeerEof
//!            └──────────▶ WebSocket    ▼
//!                            └─────▶ Closing ── Flushed, Deadline ──▶ Closed
//! ```

use std::time::Instant;

use crate::hub::MessageId;
use crate::proto::http::HttpConn;
use crate::proto::ws::WsSession;
use crate::wire::http1::Version;

use super::mux_sse::CursorCache;
use super::outq::OutQueue;
pub use crate::hub::TopicName;

/// What a connection is doing: the tag of [`State`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading requests and answering them (keep-alive, pipelining).
    Http,
    /// A long poll waiting for a message or its deadline. Pipelined input
    /// stays buffered until it is answered.
    Parked,
    /// A streaming response (SSE, NDJSON) in progress. Input is read only
    /// to notice a hang-up.
    Streaming,
    /// A WebSocket session: on a topic, or the echo endpoint.
    WebSocket,
    /// An Engine.IO polling GET waiting for its session to have packets
    /// (answered on a send, an upgrade's noop, a close, or the next ping
    /// at pingInterval: the session's timers, not the connection's).
    /// Pipelined input stays buffered until it is answered.
    EioParked,
    /// Writing what is queued, then closing (a WebSocket also waits for
    /// the peer's close frame). Bounded by a linger deadline.
    Closing,
    /// Gone: the driver drops the socket.
    Closed,
    /// Waiting for Redis (`--redis`): a publish's reply, or a topic's first
    /// sync before its request is read again. Pipelined input stays
    /// buffered. Bounded by `redis_timeout`.
    AwaitingBroker,
}

/// What happened to a connection: the inputs of [`TRANSITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A response was written and the connection persists.
    Answered,
    /// A response was written after which the connection closes
    /// (`Connection: close`, HTTP/1.0, a framing error, 413).
    AnsweredLast,
    /// A long poll found nothing and waits.
    Parked,
    /// A parked poll was answered (woken, expired, shutting down).
    PollAnswered,
    /// An Engine.IO polling GET found nothing to send and waits.
    EioParked,
    /// A streaming response started.
    StreamStarted,
    /// The handshake was answered with 101.
    Upgraded,
    /// The core ended the connection on purpose: a subscriber cut off at
    /// its queue cap, shutdown, a test's drop; the goodbye is queued.
    Ended,
    /// The WebSocket session decided to close (its close frame is queued
    /// or the handshake is over).
    WsClosing,
    /// The peer closed its sending side.
    PeerEof,
    /// Everything queued is written, and nothing more is awaited.
    Flushed,
    /// A deadline passed with nothing left to wait for (an idle keep-alive
    /// connection, a linger that ran out).
    Deadline,
    /// The socket failed, or the core found itself in a state it did not
    /// plan (see [`next`]).
    Reset,
    /// A request needs Redis: it waits for the reply or the topic's sync.
    AwaitBroker,
    /// What the request waited for came (or its time ran out) and the
    /// connection persists.
    BrokerAnswered,
}

use Event as E;
use Phase as P;

/// Every transition a connection can make: (from, event, to).
///
/// `Reset` leads from every phase to `Closed` and is not listed.
pub const TRANSITIONS: &[(Phase, Event, Phase)] = &[
    // Keep-alive: the next request is read on the same connection.
    (P::Http, E::Answered, P::Http),
    // RFC 9112 §9.6: after a response with `close`, nothing more is read.
    (P::Http, E::AnsweredLast, P::Closing),
    (P::Http, E::Parked, P::Parked),
    (P::Http, E::StreamStarted, P::Streaming),
    (P::Http, E::Upgraded, P::WebSocket),
    // Requests already received are answered; then the connection closes.
    (P::Http, E::PeerEof, P::Closing),
    // Shutdown: an idle keep-alive connection just closes.
    (P::Http, E::Ended, P::Closing),
    // Keep-alive timeout with no request in progress.
    (P::Http, E::Deadline, P::Closed),
    (P::Parked, E::PollAnswered, P::Http),
    (P::Parked, E::AnsweredLast, P::Closing),
    // A hang-up is noticed at once, not at the poll's deadline.
    (P::Parked, E::PeerEof, P::Closing),
    // Engine.IO polling (node/sio.rs): a GET waits for its session.
    (P::Http, E::EioParked, P::EioParked),
    (P::EioParked, E::PollAnswered, P::Http),
    (P::EioParked, E::AnsweredLast, P::Closing),
    // A hang-up ends the session's poll at once (the session closes, as
    // the reference server's "poll connection closed prematurely").
    (P::EioParked, E::PeerEof, P::Closing),
    // Shutdown: the session is abandoned with its connection.
    (P::EioParked, E::Ended, P::Closing),
    (P::Streaming, E::Ended, P::Closing),
    (P::Streaming, E::PeerEof, P::Closing),
    (P::WebSocket, E::WsClosing, P::Closing),
    (P::WebSocket, E::Ended, P::Closing),
    (P::WebSocket, E::PeerEof, P::Closing),
    // RFC 6455 §7.1.1: the closing handshake may still be finishing.
    (P::Closing, E::WsClosing, P::Closing),
    (P::Closing, E::PeerEof, P::Closing),
    (P::Closing, E::Ended, P::Closing),
    (P::Closing, E::Flushed, P::Closed),
    // The peer did not take its last bytes (or its close frame) in time.
    (P::Closing, E::Deadline, P::Closed),
    // Redis engine: a publish waits for its id, a subscribe for its topic.
    (P::Http, E::AwaitBroker, P::AwaitingBroker),
    (P::AwaitingBroker, E::BrokerAnswered, P::Http),
    (P::AwaitingBroker, E::AnsweredLast, P::Closing),
    (P::AwaitingBroker, E::PeerEof, P::Closing),
    (P::AwaitingBroker, E::Ended, P::Closing),
];

/// Where `event` leads from `from`; `None` for a pair the table does not
/// have (the caller treats it as `Reset`).
pub fn next(from: Phase, event: Event) -> Option<Phase> {
    if event == Event::Reset {
        return Some(Phase::Closed);
    }
    TRANSITIONS
        .iter()
        .find(|(f, e, _)| *f == from && *e == event)
        .map(|&(_, _, to)| to)
}

/// How a streaming response frames each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// `text/event-stream` (SSE).
    Sse,
    /// `application/x-ndjson`: one JSON object per line (HTTP streaming).
    Ndjson,
}

/// Most topics one connection can hold: its subscriptions are numbered
/// in the hub as `conn × MAX_SUBS + slot`, so fan-out finds a
/// connection's subscription without a search.
pub const MAX_SUBS: usize = 64;

/// The hub's number for slot `slot` of connection `conn`.
pub fn sub_id(conn: usize, slot: usize) -> usize {
    conn * MAX_SUBS + slot
}

/// The connection and slot behind a hub subscriber number.
pub fn sub_of(id: usize) -> (usize, usize) {
    (id / MAX_SUBS, id % MAX_SUBS)
}

/// A subscription of a connection to one topic.
#[derive(Debug)]
pub struct Sub {
    pub topic: TopicName,
    /// The newest message queued to this subscriber (or where it stands).
    pub cursor: MessageId,
    /// History is still being replayed: live messages are not queued now,
    /// they are read from the history when the queue has room, so a replay
    /// never holds more than the queue cap and never reorders.
    pub catching_up: bool,
}

/// A connection's subscriptions, by slot (see [`MAX_SUBS`]), in the order
/// the client named them: the order of its combined cursor. Most
/// connections hold one topic: that one is kept inline, and a list is
/// allocated only for a second.
#[derive(Debug, Default)]
pub struct Subs {
    slots: Slots,
}

#[derive(Debug)]
enum Slots {
    One(Option<Sub>),
    Many(Box<Many>),
}

/// Two topics or more, and the combined cursor as last written.
#[derive(Debug, Default)]
struct Many {
    slots: Vec<Option<Sub>>,
    cursor: CursorCache,
    /// Some subscription may be replaying history (see `Sub::catching_up`):
    /// set whenever one may change, cleared when none is seen replaying,
    /// so a connection of many topics is not read through at every write.
    replaying: bool,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::One(None)
    }
}

impl Subs {
    fn slots(&self) -> &[Option<Sub>] {
        match &self.slots {
            Slots::One(one) => std::slice::from_ref(one),
            Slots::Many(m) => &m.slots,
        }
    }

    fn slots_mut(&mut self) -> &mut [Option<Sub>] {
        match &mut self.slots {
            Slots::One(one) => std::slice::from_mut(one),
            Slots::Many(m) => &mut m.slots,
        }
    }

    pub fn get(&self, slot: usize) -> Option<&Sub> {
        self.slots().get(slot).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Sub> {
        self.touch();
        self.slots_mut().get_mut(slot).and_then(Option::as_mut)
    }

    /// A subscription may change: the kept cursor is checked before its
    /// next use, and a replay looked for at the next turn.
    fn touch(&mut self) {
        if let Slots::Many(m) = &mut self.slots {
            m.cursor.touch();
            m.replaying = true;
        }
    }

    /// Whether a subscription may still be replaying history (`false`:
    /// none is, and none has changed since that was seen).
    pub fn may_replay(&self) -> bool {
        match &self.slots {
            Slots::One(one) => one.as_ref().is_some_and(|s| s.catching_up),
            Slots::Many(m) => m.replaying,
        }
    }

    /// No subscription is replaying history (as seen by the caller).
    pub fn replayed(&mut self) {
        if let Slots::Many(m) = &mut self.slots {
            m.replaying = false;
        }
    }

    /// The slot of `topic`, if subscribed.
    pub fn find(&self, topic: &str) -> Option<usize> {
        self.slots()
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| &*s.topic == topic))
    }

    /// Takes the first free slot; `None` when all [`MAX_SUBS`] are used.
    pub fn insert(&mut self, sub: Sub) -> Option<usize> {
        self.touch();
        let slots = self.slots_mut();
        if let Some(free) = slots.iter().position(Option::is_none) {
            slots[free] = Some(sub);
            return Some(free);
        }
        if slots.len() >= MAX_SUBS {
            return None;
        }
        if let Slots::One(one) = &mut self.slots {
            // Growing one slot at a time keeps a two-topic connection
            // from paying for four.
            let mut v = Vec::with_capacity(2);
            v.push(one.take());
            self.slots = Slots::Many(Box::new(Many {
                slots: v,
                cursor: CursorCache::default(),
                replaying: true,
            }));
        }
        let Slots::Many(m) = &mut self.slots else {
            return None;
        };
        let v = &mut m.slots;
        v.reserve_exact(1);
        v.push(Some(sub));
        Some(v.len() - 1)
    }

    pub fn remove(&mut self, slot: usize) -> Option<Sub> {
        self.touch();
        self.slots_mut().get_mut(slot).and_then(Option::take)
    }

    /// (slot, subscription) pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Sub)> {
        self.slots()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
    }

    pub fn len(&self) -> usize {
        self.slots().iter().filter(|s| s.is_some()).count()
    }

    /// The combined cursor `A=ID,B=ID` of every subscription, in order
    /// (the grammar `wire::cursor` parses).
    ///
    /// A multi-topic SSE stream writes this for every event it carries, so
    /// it is written without `fmt`: with ten topics that machinery was a
    /// fifth of the cost of a delivery.
    pub fn write_cursor(&self, out: &mut Vec<u8>) {
        use crate::proto::http::push_u64;
        for (i, (_, sub)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(sub.topic.as_str().as_bytes());
            out.push(b'=');
            push_u64(out, sub.cursor.epoch);
            out.push(b'-');
            push_u64(out, sub.cursor.seq);
        }
    }

    /// The combined cursor as [`write_cursor`](Self::write_cursor) writes
    /// it, from bytes kept up to date part by part (two topics or more;
    /// `None` for one, which is short to write).
    #[cfg(test)]
    pub fn cursor_cached(&mut self) -> Option<&[u8]> {
        match &mut self.slots {
            Slots::One(_) => None,
            Slots::Many(m) => Some(m.cursor.refresh(&m.slots).text()),
        }
    }

    /// The slots and the kept combined cursor (two topics or more), for a
    /// multi-topic SSE event that shares its cursor with other connections.
    pub fn with_cursor(&mut self) -> Option<(&mut [Option<Sub>], &mut CursorCache)> {
        match &mut self.slots {
            Slots::One(_) => None,
            Slots::Many(m) => Some((&mut m.slots, &mut m.cursor)),
        }
    }
}

/// A streaming response in progress.
#[derive(Debug)]
pub struct Stream {
    pub kind: StreamKind,
    pub subs: Subs,
    /// Opened as `/sse?topic=…` or `/stream?topic=…`: events carry their
    /// topic (and, on SSE, the combined cursor as `id:`).
    pub multi: bool,
    /// Chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
    pub chunked: bool,
    /// When the stream last carried anything (for heartbeats).
    pub last_write: Instant,
    /// When the token it was opened with expires: the stream ends then
    /// (boxed: only streams opened with a token that expires carry one).
    pub expires: Option<Box<Instant>>,
}

/// A long poll waiting.
#[derive(Debug)]
pub struct ParkedPoll {
    pub http: Box<HttpConn>,
    /// Each topic and the cursor its answer continues from.
    pub topics: Vec<(TopicName, MessageId)>,
    /// Opened as `/poll?topic=…`: the answer lists topics and a combined
    /// cursor.
    pub multi: bool,
    pub deadline: Instant,
    pub version: Version,
    pub keep_alive: bool,
    pub head_only: bool,
}

/// Which Engine.IO server a request or WebSocket belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// `/socket.io/`: Socket.IO over Engine.IO.
    SocketIo,
    /// The Engine.IO-only echo path (`--engineio-echo-path`).
    EngineIo,
}

/// An Engine.IO polling GET waiting for its session.
#[derive(Debug)]
pub struct EioPoll {
    pub http: Box<HttpConn>,
    pub sid: crate::proto::engineio::Sid,
    pub engine: EngineKind,
    pub version: Version,
    pub keep_alive: bool,
}

/// A request waiting for Redis (see [`Phase::AwaitingBroker`]).
#[derive(Debug)]
pub struct Awaiting {
    pub http: Box<HttpConn>,
    /// Names this wait (connection ids are reused).
    pub ticket: u64,
    pub deadline: Instant,
    /// `None`: the request is still unread in the input buffer and is read
    /// again when its topics are in sync. `Some`: it was consumed and its
    /// answer is written when Redis replies.
    pub reply: Option<ReplyTo>,
    /// The wait was for a fresh look at Redis (a cursor ahead of the
    /// mirror): read again, the request does not ask for another.
    pub refresh: bool,
}

/// How to answer a consumed request later.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTo {
    pub version: Version,
    pub keep_alive: bool,
    pub head_only: bool,
    /// An Engine.IO polling request relayed to the node that holds its
    /// session (`proto/redis/relay.rs`): no answer in time means that
    /// session is gone.
    pub relayed: bool,
}

/// What a WebSocket is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsRole {
    /// `/echo`: every message back as it came.
    Echo,
    /// `/topics/{t}/ws`: one topic; a text frame is published to it
    /// (with `envelope`, a text frame is `{"event","data"}`).
    Topic { envelope: bool },
    /// `/ws`: JSON commands subscribe, unsubscribe and publish.
    Multi,
    /// The transport of Engine.IO session `sid`: every message goes to
    /// that session (text and binary).
    Eio {
        sid: crate::proto::engineio::Sid,
        engine: EngineKind,
    },
    /// Cluster mode: the WebSocket of session `sid`, which node `owner`
    /// holds; this node only carries its messages (`ticket` names this
    /// WebSocket to the owner, `drain` is set while the owner waits to
    /// hear that it was written out: `proto/redis/relay.rs`).
    Carried {
        sid: crate::proto::engineio::Sid,
        owner: crate::proto::redis::relay::NodeTag,
        ticket: u64,
        drain: bool,
    },
}

/// A WebSocket session.
pub struct WsConn {
    pub session: WsSession,
    pub role: WsRole,
    pub subs: Subs,
    /// What its token allows (tokens on), checked on every publish and
    /// `/ws` subscribe.
    pub claims: Option<Box<crate::wire::jws::Claims>>,
    /// When that token expires: the socket is closed with 1008 then.
    pub expires: Option<Instant>,
}

/// A connection on its way out.
pub struct Closing {
    /// A WebSocket finishing its closing handshake keeps its session: the
    /// peer's close frame is read, answered if need be, and ends it.
    pub ws: Option<Box<WsConn>>,
}

/// A connection's state and the data that state needs.
pub enum State {
    Http(Box<HttpConn>),
    Parked(Box<ParkedPoll>),
    EioPoll(Box<EioPoll>),
    Streaming(Box<Stream>),
    WebSocket(Box<WsConn>),
    Closing(Closing),
    Closed,
    AwaitingBroker(Box<Awaiting>),
}

impl State {
    pub fn phase(&self) -> Phase {
        match self {
            State::Http(_) => Phase::Http,
            State::Parked(_) => Phase::Parked,
            State::EioPoll(_) => Phase::EioParked,
            State::Streaming(_) => Phase::Streaming,
            State::WebSocket(_) => Phase::WebSocket,
            State::Closing(_) => Phase::Closing,
            State::Closed => Phase::Closed,
            State::AwaitingBroker(_) => Phase::AwaitingBroker,
        }
    }

    /// The topic subscriptions this state holds, if any.
    pub fn subs(&self) -> Option<&Subs> {
        match self {
            State::Streaming(s) => Some(&s.subs),
            State::WebSocket(ws) => Some(&ws.subs),
            _ => None,
        }
    }

    pub fn subs_mut(&mut self) -> Option<&mut Subs> {
        match self {
            State::Streaming(s) => Some(&mut s.subs),
            State::WebSocket(ws) => Some(&mut ws.subs),
            _ => None,
        }
    }
}

/// An accepted connection, as the core sees it: no socket, only bytes.
pub struct Conn {
    pub state: State,
    /// Received bytes not consumed yet (empty, without capacity, when
    /// idle: an idle connection holds no buffer memory).
    pub inbuf: InBuf,
    /// What is still to be written.
    pub out: OutQueue,
    /// The deadline this connection is registered under in the timers.
    pub deadline: Option<Instant>,
    /// That deadline is in the timers' in-order queue (else their tree;
    /// see `node::timers`).
    pub deadline_queued: bool,
    /// When the connection last finished a request, was accepted, or
    /// started closing (the keep-alive and linger clocks).
    pub idle_since: Instant,
    /// Reading was paused (the queue over its cap, the input buffer full
    /// while a poll is parked); the driver is told when it may resume.
    pub read_paused: bool,
    /// The peer closed its sending side.
    pub peer_closed: bool,
    /// The connection is in the core's ready queue.
    pub ready: bool,
    /// Its first request head must be whole within `header_read_timeout`
    /// of the accept (see [`crate::node::Node::bound_first_request`]).
    pub first_head_due: bool,
    // What the access log needs is kept beside the connections (only with
    // `--access-log`): without that pointer a connection is 72 bytes, an
    // allocation of 80 instead of 96.
}

/// A connection's unconsumed input: a `Vec` while it holds bytes, one
/// null pointer while it does not (most of the time, for every idle
/// connection).
// The box is the point: one pointer in every connection instead of a
// three-word Vec.
#[allow(clippy::box_collection)]
#[derive(Debug, Default)]
pub struct InBuf(Option<Box<Vec<u8>>>);

/// What an empty buffer reads as.
static NO_INPUT: Vec<u8> = Vec::new();

impl std::ops::Deref for InBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.0.as_deref().unwrap_or(&NO_INPUT)
    }
}

impl std::ops::DerefMut for InBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Vec<u8>> for InBuf {
    fn from(v: Vec<u8>) -> InBuf {
        InBuf((v.capacity() > 0).then(|| Box::new(v)))
    }
}

/// A connection's access-log state.
#[derive(Debug, Default)]
pub struct AccessLog {
    /// The peer's address, as the driver gave it.
    pub peer: Option<std::net::SocketAddr>,
    /// Bytes written to the peer in all.
    pub sent: u64,
    /// A long-lived answer in progress, for its line at the end: when it
    /// started, `peer method target`, and its transport.
    pub open_entry: Option<(Instant, Box<str>, &'static str)>,
}

impl Conn {
    pub fn new(http: Box<HttpConn>, now: Instant) -> Conn {
        Conn {
            state: State::Http(http),
            inbuf: InBuf::default(),
            out: OutQueue::default(),
            deadline: None,
            deadline_queued: false,
            idle_since: now,
            read_paused: false,
            peer_closed: false,
            ready: false,
            first_head_due: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.state.phase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [Phase; 8] = [
        P::Http,
        P::Parked,
        P::EioParked,
        P::Streaming,
        P::WebSocket,
        P::Closing,
        P::Closed,
        P::AwaitingBroker,
    ];

    #[test]
    fn the_table_has_one_row_per_pair_and_nothing_leaves_closed() {
        for (i, a) in TRANSITIONS.iter().enumerate() {
            for b in &TRANSITIONS[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "duplicate row {a:?} / {b:?}");
            }
            assert_ne!(a.0, P::Closed, "a row leaves Closed: {a:?}");
        }
        for p in PHASES {
            assert_eq!(next(p, E::Reset), Some(P::Closed));
        }
    }

    #[test]
    fn every_phase_but_closed_can_reach_closed_without_reset() {
        for start in PHASES {
            let mut seen = vec![start];
            let mut i = 0;
            while i < seen.len() {
                for &(f, e, t) in TRANSITIONS {
                    if f == seen[i] && e != E::Reset && !seen.contains(&t) {
                        seen.push(t);
                    }
                }
                i += 1;
            }
            assert!(seen.contains(&P::Closed), "{start:?} cannot end");
        }
    }

    #[test]
    fn an_idle_connection_is_one_small_allocation() {
        // 72 bytes: glibc serves it from 80-byte chunks (at 80 it took 96).
        // Every idle SSE subscriber and WebSocket holds one.
        assert!(std::mem::size_of::<Conn>() <= 72);
    }

    #[test]
    fn unplanned_events_are_refused() {
        assert_eq!(next(P::Streaming, E::Upgraded), None);
        assert_eq!(next(P::WebSocket, E::Parked), None);
        assert_eq!(next(P::Closed, E::Flushed), None);
        assert_eq!(next(P::Http, E::PollAnswered), None);
    }

    #[test]
    fn the_cached_combined_cursor_is_the_written_one_after_every_change() {
        let sub = |t: &str, seq| Sub {
            topic: TopicName::parse(t).unwrap(),
            cursor: MessageId { epoch: 7, seq },
            catching_up: false,
        };
        let mut subs = Subs::default();
        subs.insert(sub("a", 1));
        assert!(subs.cursor_cached().is_none(), "one topic is not cached");
        subs.insert(sub("b", 9));
        subs.insert(sub("c", 99));
        let check = |subs: &mut Subs| {
            let mut written = Vec::new();
            subs.write_cursor(&mut written);
            assert_eq!(subs.cursor_cached().unwrap(), &written[..]);
            String::from_utf8(written).unwrap()
        };
        assert_eq!(check(&mut subs), "a=7-1,b=7-9,c=7-99");
        // A part that grows moves the ones after it.
        subs.get_mut(1).unwrap().cursor.seq = 10;
        subs.get_mut(2).unwrap().cursor.seq = 100;
        assert_eq!(check(&mut subs), "a=7-1,b=7-10,c=7-100");
        subs.get_mut(1).unwrap().cursor = MessageId { epoch: 8, seq: 0 };
        assert_eq!(check(&mut subs), "a=7-1,b=8-0,c=7-100");
        subs.remove(0);
        assert_eq!(check(&mut subs), "b=8-0,c=7-100");
        subs.insert(sub("d", 5));
        assert_eq!(check(&mut subs), "d=7-5,b=8-0,c=7-100");
    }
}

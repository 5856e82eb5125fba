//! Multi-topic SSE events and the combined cursor they carry.
//!
//! Before working on this file, read DESIGN.md, "One connection, many
//! topics": a multi-topic SSE event's `id:` is the connection's combined
//! cursor *after* the event (`A=ID,B=ID`), so each event is, in principle,
//! this connection's own bytes. In practice it is not: every up-to-date
//! subscriber of the same topics stands at the same cursor once each topic
//! has moved once, so those subscribers hold one shared cursor
//! ([`CursorCache`] keeps an `Arc`), and a message turns each shared cursor
//! into one shared next cursor and one whole encoded event
//! ([`SharedEvents`]), queued by reference as a single-topic event is. A
//! subscriber whose cursor is its own (resumed elsewhere, still replaying,
//! another set of topics) gets its own bytes, as exact as before.

use std::sync::Arc;

use super::conn::Sub;
use super::outq::OutQueue;
use crate::hub::{Message, MessageId, WireFormat};
use crate::wire::chunked;

/// The combined cursor `A=ID,B=ID` as bytes, and for each part the slot
/// and id it was written for and where it ends in the bytes. A
/// multi-topic SSE stream writes the cursor with every event, and an
/// event moves one topic's id: that part alone is written again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CombinedCursor {
    text: Vec<u8>,
    parts: Vec<(usize, MessageId, usize)>,
}

impl CombinedCursor {
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Whether these are the bytes of `slots` as they stand.
    fn matches(&self, slots: &[Option<Sub>]) -> bool {
        let mut parts = self.parts.iter();
        for (slot, sub) in slots.iter().enumerate() {
            let Some(sub) = sub else { continue };
            match parts.next() {
                Some(&(s, id, _)) if s == slot && id == sub.cursor => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// Brings the bytes up to date with `slots`.
    fn refresh(&mut self, slots: &[Option<Sub>]) {
        let live = slots.iter().filter(|s| s.is_some()).count();
        let same_slots = live == self.parts.len()
            && slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_some())
                .zip(&self.parts)
                .all(|((slot, _), part)| slot == part.0);
        if !same_slots {
            // Subscribed or unsubscribed since: written afresh.
            self.text.clear();
            self.parts.clear();
            for (slot, sub) in slots.iter().enumerate() {
                let Some(sub) = sub else { continue };
                if !self.parts.is_empty() {
                    self.text.push(b',');
                }
                write_part(&mut self.text, sub);
                self.parts.push((slot, sub.cursor, self.text.len()));
            }
            return;
        }
        let mut part = Vec::new();
        for k in 0..self.parts.len() {
            let (slot, id, end) = self.parts[k];
            let Some(Some(sub)) = slots.get(slot) else {
                continue;
            };
            if sub.cursor == id {
                continue;
            }
            let start = if k == 0 { 0 } else { self.parts[k - 1].2 + 1 };
            part.clear();
            write_part(&mut part, sub);
            self.text.splice(start..end, part.iter().copied());
            let new_end = start + part.len();
            // The parts after this one move by the change in length.
            for later in &mut self.parts[k + 1..] {
                later.2 = later.2 + new_end - end;
            }
            self.parts[k] = (slot, sub.cursor, new_end);
        }
    }
}

/// One `TOPIC=ID` part of a combined cursor.
fn write_part(out: &mut Vec<u8>, sub: &Sub) {
    use crate::proto::http::push_u64;
    out.extend_from_slice(sub.topic.as_str().as_bytes());
    out.push(b'=');
    push_u64(out, sub.cursor.epoch);
    out.push(b'-');
    push_u64(out, sub.cursor.seq);
}

/// A connection's combined cursor as last written, possibly shared with
/// other connections standing at the same cursor (then it is copied
/// before it is changed).
#[derive(Debug, Default)]
pub struct CursorCache(Option<Arc<CombinedCursor>>);

impl CursorCache {
    /// The cursor of `slots` as they stand, written again where it moved.
    pub fn refresh(&mut self, slots: &[Option<Sub>]) -> &Arc<CombinedCursor> {
        let cursor = self.0.get_or_insert_with(Arc::default);
        if !cursor.matches(slots) {
            Arc::make_mut(cursor).refresh(slots);
        }
        cursor
    }

    /// Takes `cursor` as this connection's: the caller has checked that it
    /// is the cursor of its slots.
    pub fn share(&mut self, cursor: Arc<CombinedCursor>) {
        self.0 = Some(cursor);
    }
}

/// Distinct cursors one message shares its events among. A message
/// reaching subscribers that stand at more than this many different
/// cursors gives the others their own bytes (as exact, one copy more);
/// it bounds the per-message memory and the search.
pub const SHARED_CURSORS: usize = 32;

/// One message's multi-topic SSE events, shared by every subscriber that
/// stood at the same combined cursor: built on first need during the
/// message's fan-out, dropped after it.
#[derive(Default)]
pub struct SharedEvents {
    /// (cursor before, slot the message's topic holds in it, chunked,
    /// index into `events`): keeping the cursor before alive makes its
    /// address a sound key for the whole fan-out.
    before: Vec<(Arc<CombinedCursor>, usize, bool, usize)>,
    /// (cursor after, chunked, the whole event as queued).
    events: Vec<(Arc<CombinedCursor>, bool, Arc<[u8]>)>,
}

/// Queues `msg`, the message of slot `slot`, to a multi-topic SSE stream
/// whose subscriptions are `slots` and kept cursor `cache`, and moves the
/// slot's cursor to it. With `shared`, the event is shared with every
/// other subscriber of this message at the same cursor.
pub fn queue_event(
    out: &mut OutQueue,
    slots: &mut [Option<Sub>],
    cache: &mut CursorCache,
    slot: usize,
    msg: &Arc<Message>,
    chunked: bool,
    shared: Option<&mut SharedEvents>,
) {
    let Some(shared) = shared else {
        if let Some(Some(sub)) = slots.get_mut(slot) {
            sub.cursor = msg.id;
        }
        let cursor = cache.refresh(slots);
        queue_own(out, cursor.text(), msg, chunked);
        return;
    };
    let before = Arc::clone(cache.refresh(slots));
    if let Some(Some(sub)) = slots.get_mut(slot) {
        sub.cursor = msg.id;
    }
    let known = shared
        .before
        .iter()
        .find(|(b, s, c, _)| Arc::ptr_eq(b, &before) && *s == slot && *c == chunked)
        .map(|&(.., i)| i);
    if let Some((after, _, event)) = known.and_then(|i| shared.events.get(i)) {
        cache.share(Arc::clone(after));
        out.push_shared(event);
        return;
    }
    // Written for this connection (a copy: `before` is held), then
    // looked for among the cursors this message has already made.
    let after = cache.refresh(slots);
    let same = shared
        .events
        .iter()
        .position(|(a, c, _)| *c == chunked && **a == **after);
    let index = match same {
        Some(i) => {
            cache.share(Arc::clone(&shared.events[i].0));
            Some(i)
        }
        None if shared.events.len() < SHARED_CURSORS => {
            let event = event_bytes(after.text(), msg, chunked);
            shared
                .events
                .push((Arc::clone(after), chunked, event.into()));
            Some(shared.events.len() - 1)
        }
        None => None,
    };
    let Some(i) = index else {
        queue_own(out, cache.refresh(slots).text(), msg, chunked);
        return;
    };
    if shared.before.len() < SHARED_CURSORS {
        shared.before.push((before, slot, chunked, i));
    }
    out.push_shared(&shared.events[i].2);
}

/// The event whole: `id:` (the combined cursor after it), `event:` for a
/// named message, the shared `data:` line and the empty line; one chunk
/// when `chunked`.
fn event_bytes(cursor: &[u8], msg: &Message, chunked: bool) -> Vec<u8> {
    let tail = msg.parts(WireFormat::MultiSseTail { chunked: false });
    let mut block = Vec::with_capacity(head_len(cursor, msg) + tail_len(&tail) + 12);
    let inner = head_len(cursor, msg) + tail_len(&tail);
    if chunked {
        // RFC 9112 §7.1: chunk-size (hex) CRLF chunk-data CRLF.
        chunked::write_chunk_header(&mut block, inner);
    }
    write_head(&mut block, cursor, msg);
    for part in tail {
        block.extend_from_slice(part);
    }
    if chunked {
        block.extend_from_slice(b"\r\n");
    }
    block
}

fn tail_len(tail: &[&[u8]; 3]) -> usize {
    tail.iter().map(|p| p.len()).sum()
}

/// `id: CURSOR\n` and, for a named message, `event: NAME\n`.
fn head_len(cursor: &[u8], msg: &Message) -> usize {
    4 + cursor.len() + 1 + msg.event.as_ref().map_or(0, |e| 7 + e.len() + 1)
}

fn write_head(block: &mut Vec<u8>, cursor: &[u8], msg: &Message) {
    block.extend_from_slice(b"id: ");
    block.extend_from_slice(cursor);
    block.push(b'\n');
    // As on single-topic streams: `event:` only for a named message.
    if let Some(event) = &msg.event {
        block.extend_from_slice(b"event: ");
        block.extend_from_slice(event.as_bytes());
        block.push(b'\n');
    }
}

/// This connection's own event: its `id:`/`event:` lines written for it,
/// then the message's shared tail by reference.
pub fn queue_own(out: &mut OutQueue, cursor: &[u8], msg: &Arc<Message>, chunked: bool) {
    let head_len = head_len(cursor, msg);
    let mut block = Vec::with_capacity(head_len + 20);
    if chunked {
        chunked::write_chunk_header(&mut block, head_len);
    }
    write_head(&mut block, cursor, msg);
    if chunked {
        block.extend_from_slice(b"\r\n");
    }
    out.push_owned(block);
    out.push_message(msg, WireFormat::MultiSseTail { chunked });
}

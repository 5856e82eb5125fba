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
pub struct CursorCache {
    cursor: Option<Arc<CombinedCursor>>,
    /// A subscription may have moved since the bytes were last checked
    /// against the slots. Only then are they checked: an event that moves
    /// its topic keeps them up to date itself, so a delivery does not read
    /// every subscription of its connection.
    stale: bool,
}

impl CursorCache {
    /// The cursor of `slots` as they stand, written again where it moved.
    pub fn refresh(&mut self, slots: &[Option<Sub>]) -> &Arc<CombinedCursor> {
        let stale = std::mem::take(&mut self.stale) || self.cursor.is_none();
        let cursor = self.cursor.get_or_insert_with(Arc::default);
        if stale && !cursor.matches(slots) {
            Arc::make_mut(cursor).refresh(slots);
        }
        cursor
    }

    /// A subscription was (or may have been) changed by someone else.
    pub fn touch(&mut self) {
        self.stale = true;
    }

    /// Takes `cursor` as this connection's: the caller has checked that it
    /// is the cursor of its slots.
    pub fn share(&mut self, cursor: Arc<CombinedCursor>) {
        self.cursor = Some(cursor);
        self.stale = false;
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
        cache.touch();
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
    cache.touch();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{PayloadKind, TopicName};
    use std::io::IoSlice;
    use std::time::Instant;

    const E: u64 = 1_796_160_691_510_066;

    fn slots(cursors: &[(&str, u64)]) -> Vec<Option<Sub>> {
        cursors
            .iter()
            .map(|&(t, seq)| {
                Some(Sub {
                    topic: TopicName::parse(t).unwrap(),
                    cursor: MessageId { epoch: E, seq },
                    catching_up: false,
                })
            })
            .collect()
    }

    fn message(topic: &str, seq: u64, event: Option<&str>) -> Arc<Message> {
        let topic = TopicName::parse(topic).unwrap();
        let event = event.map(|e| crate::hub::EventName::parse(e).unwrap());
        let id = MessageId { epoch: E, seq };
        let now = Instant::now();
        Arc::new(Message::new(
            &topic,
            id,
            event.as_ref(),
            "hi",
            PayloadKind::Text,
            now,
        ))
    }

    /// What a queue holds, as segments.
    fn segments(out: &OutQueue) -> Vec<Vec<u8>> {
        let mut s = [IoSlice::new(&[]); 8];
        let n = out.fill(&mut s);
        s[..n].iter().map(|x| x.to_vec()).collect()
    }

    #[test]
    fn an_event_is_the_cursor_after_it_then_the_shared_data_line() {
        let msg = message("news", 6, Some("price"));
        let bytes = event_bytes(format!("news={E}-6,prices={E}-9").as_bytes(), &msg, true);
        let text = String::from_utf8(bytes).unwrap();
        let body = format!(
            "id: news={E}-6,prices={E}-9\nevent: price\n\
             data: {{\"topic\":\"news\",\"id\":\"{E}-6\",\"event\":\"price\",\"data\":\"hi\"}}\n\n"
        );
        // RFC 9112 §7.1: the chunk size is the data's length, in hex.
        assert_eq!(text, format!("{:x}\r\n{body}\r\n", body.len()));
        // The same bytes a connection writes for itself, framed apart.
        let mut own = OutQueue::default();
        let cursor = format!("news={E}-6,prices={E}-9");
        queue_own(&mut own, cursor.as_bytes(), &msg, false);
        assert_eq!(segments(&own).concat(), body.as_bytes());
    }

    #[test]
    fn equal_cursors_share_one_event_and_a_different_one_gets_its_own() {
        let msg = message("a", 2, None);
        let mut shared = SharedEvents::default();
        let mut conns: Vec<_> = [1, 1, 1, 0]
            .iter()
            .map(|&b_seq| {
                let slots = slots(&[("a", 1), ("b", b_seq)]);
                (OutQueue::default(), slots, CursorCache::default())
            })
            .collect();
        // Two of them already share their cursor, as after a message.
        let (_, slots0, cache0) = &mut conns[0];
        let first = Arc::clone(cache0.refresh(slots0));
        conns[1].2.share(first);
        for (out, slots, cache) in &mut conns {
            queue_event(out, slots, cache, 0, &msg, true, Some(&mut shared));
        }
        let got: Vec<_> = conns.iter().map(|(out, ..)| segments(out)).collect();
        assert!(got.iter().all(|s| s.len() == 1), "one segment each");
        assert_eq!(got[0], got[1]);
        assert_eq!(got[0], got[2], "equal bytes written apart are shared too");
        assert_ne!(got[0], got[3]);
        assert!(String::from_utf8_lossy(&got[3][0]).contains(&format!("id: a={E}-2,b={E}-0\n")));
        assert_eq!(shared.events.len(), 2);
        // All three now hold one cursor; the fourth its own.
        let held: Vec<_> = conns
            .iter_mut()
            .map(|(_, slots, cache)| Arc::as_ptr(cache.refresh(slots)))
            .collect();
        assert!(held[0] == held[1] && held[1] == held[2] && held[2] != held[3]);
    }

    #[test]
    fn a_shared_cursor_is_copied_before_one_connection_moves_it() {
        let mut one = (slots(&[("a", 1), ("b", 1)]), CursorCache::default());
        let mut two = (slots(&[("a", 1), ("b", 1)]), CursorCache::default());
        let cursor = Arc::clone(one.1.refresh(&one.0));
        two.1.share(cursor);
        // A replay (no sharing) moves `one` alone.
        let mut out = OutQueue::default();
        queue_event(
            &mut out,
            &mut one.0,
            &mut one.1,
            1,
            &message("b", 2, None),
            true,
            None,
        );
        assert_eq!(
            one.1.refresh(&one.0).text(),
            format!("a={E}-1,b={E}-2").as_bytes()
        );
        assert_eq!(
            two.1.refresh(&two.0).text(),
            format!("a={E}-1,b={E}-1").as_bytes()
        );
        // The replayed event: its own head, the message's shared tail
        // (one slice: a small body lies in it).
        assert_eq!(segments(&out).len(), 2);
    }

    #[test]
    fn past_the_bound_an_event_is_written_for_its_connection() {
        let mut shared = SharedEvents::default();
        let msg = message("a", 9, None);
        let mut texts = Vec::new();
        for b_seq in 0..(SHARED_CURSORS as u64 + 3) {
            let mut s = slots(&[("a", 8), ("b", b_seq)]);
            let mut cache = CursorCache::default();
            let mut out = OutQueue::default();
            queue_event(
                &mut out,
                &mut s,
                &mut cache,
                0,
                &msg,
                true,
                Some(&mut shared),
            );
            texts.push(String::from_utf8(segments(&out).concat()).unwrap());
        }
        assert_eq!(shared.events.len(), SHARED_CURSORS);
        for (b_seq, t) in texts.iter().enumerate() {
            assert!(t.contains(&format!("id: a={E}-9,b={E}-{b_seq}\n")), "{t}");
        }
    }
}

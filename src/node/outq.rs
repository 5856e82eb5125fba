//! A connection's outbound queue: what is still to be written.
//!
//! A short write is normal, never an error: the unwritten rest stays here
//! and goes out when the socket is WRITABLE again. Bytes come in two kinds:
//! owned bytes (a response, a pong) are appended to the last owned segment,
//! and shared bytes (a published message, encoded once for all of its
//! subscribers) are queued by reference, so a message fanned out to 5,000
//! SSE streams is in memory once. Writes are vectored, so a queue of many
//! segments leaves in one system call.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use std::sync::Arc;

use crate::hub::{Message, WireFormat};

/// Most segments handed to one `writev` (Linux's IOV_MAX is 1024).
pub const MAX_IOVECS: usize = 128;

/// Slices tried first for a write: most queues hold a response or a frame
/// or two, and setting up `MAX_IOVECS` empty slices for every write was
/// a fifth of the user-space cost of a small echo.
pub const FEW_IOVECS: usize = 8;

#[derive(Debug)]
enum Segment {
    Owned(Vec<u8>),
    /// A published message in one wire form: its prefix, its body (the
    /// payload the history holds) and its suffix, written without a copy.
    Message(Arc<Message>, WireFormat),
    /// Bytes shared by several connections (a message compressed once for
    /// every permessage-deflate subscriber).
    Shared(Arc<[u8]>),
    /// A frame whose payload still lies in the buffer the driver read it
    /// into (an echoed message, unmasked in place): the header here, the
    /// payload as a range of that buffer. Written, or copied into an
    /// `Owned` segment, before the driver's buffer is read into again
    /// (see [`Lending`]).
    Lent {
        head: [u8; LENT_HEAD],
        head_len: u8,
        start: u32,
        len: u32,
    },
}

/// The longest frame header a lent segment holds (RFC 6455 §5.2: 2 bytes,
/// 8 of extended length, 4 of masking key).
const LENT_HEAD: usize = 14;

impl Segment {
    /// The segment's bytes, as up to three slices written in order;
    /// `lent` is the buffer `Lent` segments point into.
    fn parts<'a>(&'a self, lent: &'a [u8]) -> [&'a [u8]; 3] {
        match self {
            Segment::Owned(v) => [v, &[], &[]],
            Segment::Message(m, format) => m.parts(*format),
            Segment::Shared(b) => [b, &[], &[]],
            Segment::Lent {
                head,
                head_len,
                start,
                len,
            } => {
                let (start, len) = (*start as usize, *len as usize);
                let payload = lent.get(start..start + len).unwrap_or(&[]);
                [&head[..usize::from(*head_len)], payload, &[]]
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Segment::Lent { head_len, len, .. } => usize::from(*head_len) + *len as usize,
            _ => self.parts(&[]).iter().map(|p| p.len()).sum(),
        }
    }
}

/// The queue as a WebSocket session writes to it while the driver's read
/// buffer `[base, end)` is lent to the core: a frame whose payload lies in
/// that buffer is queued by range, not copied. Whoever lends the buffer
/// writes the queue with [`OutQueue::flush_lent`] and then calls
/// [`OutQueue::release`] before the buffer is reused.
pub struct Lending<'q> {
    pub queue: &'q mut OutQueue,
    base: usize,
    end: usize,
}

impl<'q> Lending<'q> {
    /// `lent`: the buffer's address range, or `None` to copy everything.
    pub fn new(queue: &'q mut OutQueue, lent: Option<(usize, usize)>) -> Lending<'q> {
        let (base, end) = lent.map_or((0, 0), |(base, len)| (base, base + len));
        Lending { queue, base, end }
    }
}

impl crate::proto::ws::Transmit for Lending<'_> {
    fn push_frame(&mut self, header: &[u8], payload: &[u8]) {
        let at = payload.as_ptr() as usize;
        let inside = !payload.is_empty() && at >= self.base && at + payload.len() <= self.end;
        let fits = header.len() <= LENT_HEAD;
        match (
            u32::try_from(at.wrapping_sub(self.base)),
            u32::try_from(payload.len()),
        ) {
            (Ok(start), Ok(len)) if inside && fits => {
                let mut head = [0; LENT_HEAD];
                head[..header.len()].copy_from_slice(header);
                let q = self.queue.queue();
                q.len += header.len() + payload.len();
                q.lent += 1;
                q.segments.push_back(Segment::Lent {
                    head,
                    head_len: header.len() as u8,
                    start,
                    len,
                });
            }
            _ => self.queue.push_pair(header, payload),
        }
    }
}

/// Outbound bytes of one connection. An idle connection's queue is one
/// null pointer: the segments and their counts are allocated while
/// something is queued, and freed as soon as all of it is written.
#[derive(Debug, Default)]
pub struct OutQueue {
    q: Option<Box<Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    front_written: usize,
    /// Unwritten bytes in all.
    len: usize,
    /// `Lent` segments queued (they must be written or copied before the
    /// driver reads into its buffer again).
    lent: usize,
}

/// A WebSocket session writes its frames straight into the queue.
impl crate::proto::ws::Transmit for OutQueue {
    fn push_frame(&mut self, header: &[u8], payload: &[u8]) {
        self.push_pair(header, payload);
    }
}

/// Emptied queues and written byte buffers, kept for the next write of
/// any connection on this thread: a connection that answers a request or
/// echoes a message and is idle again allocates nothing on the way (most
/// connections' queues are empty again after every turn of the loop).
/// Bounded: at most [`SPARES`] of each, a ring of at most
/// [`SPARE_RING`] segments, a buffer of at most [`SPARE_BYTES`].
struct Spares {
    // The boxes are the point: an `OutQueue` takes one as it is.
    #[allow(clippy::vec_box)]
    queues: Vec<Box<Queue>>,
    bytes: Vec<Vec<u8>>,
}

/// How many emptied queues, and how many byte buffers, are kept.
const SPARES: usize = 64;
/// How many more emptied queues are kept when their ring is the smallest
/// one (a segment or four). A message fanned out to 5,000 subscribers
/// fills 5,000 queues at once and empties them in the same turn; keeping
/// them spares two allocations and two frees per delivery. At most
/// 8,192 × ~200 bytes (~1.6 MiB) are held this way.
const SMALL_SPARES: usize = 8192;
/// The ring capacity of a small queue (what a first push allocates).
const SMALL_RING: usize = 4;
/// The largest segment ring an emptied queue keeps.
const SPARE_RING: usize = 16;
/// The largest byte buffer kept (64 kept: 1 MiB at most).
const SPARE_BYTES: usize = 16 * 1024;

thread_local! {
    static SPARE: RefCell<Spares> = const {
        RefCell::new(Spares {
            queues: Vec::new(),
            bytes: Vec::new(),
        })
    };
}

/// An empty queue, kept or new.
fn take_queue() -> Box<Queue> {
    SPARE
        .try_with(|s| s.borrow_mut().queues.pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Keeps an emptied queue (its ring) for another connection.
fn keep_queue(mut q: Box<Queue>) {
    if q.segments.capacity() > SPARE_RING {
        return;
    }
    q.segments.clear();
    q.front_written = 0;
    q.len = 0;
    q.lent = 0;
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        let kept = s.queues.len();
        if kept < SPARES || (kept < SPARES + SMALL_SPARES && q.segments.capacity() <= SMALL_RING) {
            s.queues.push(q);
        }
    });
}

/// An empty byte buffer with room for `len` bytes, kept or new.
fn take_bytes(len: usize) -> Vec<u8> {
    let kept = SPARE
        .try_with(|s| s.borrow_mut().bytes.pop())
        .ok()
        .flatten();
    match kept {
        Some(mut v) => {
            v.reserve(len);
            v
        }
        None => Vec::with_capacity(len),
    }
}

/// Keeps a written segment's buffer for the next one.
fn keep_bytes(mut v: Vec<u8>) {
    if v.capacity() > SPARE_BYTES || v.capacity() == 0 {
        return;
    }
    v.clear();
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.bytes.len() < SPARES {
            s.bytes.push(v);
        }
    });
}

/// A segment written or dropped: its buffer is kept if it has one.
fn keep_segment(seg: Segment) {
    if let Segment::Owned(v) = seg {
        keep_bytes(v);
    }
}

impl OutQueue {
    fn queue(&mut self) -> &mut Queue {
        self.q.get_or_insert_with(take_queue)
    }

    /// The queue is empty: its memory goes back to the spares.
    fn empty(&mut self) {
        if let Some(mut q) = self.q.take() {
            for seg in q.segments.drain(..) {
                keep_segment(seg);
            }
            keep_queue(q);
        }
    }

    /// Queues a copy of `a` then `b` (a frame header and its payload).
    pub fn push_pair(&mut self, a: &[u8], b: &[u8]) {
        if a.is_empty() && b.is_empty() {
            return;
        }
        let q = self.queue();
        q.len += a.len() + b.len();
        if let Some(Segment::Owned(last)) = q.segments.back_mut() {
            last.reserve(a.len() + b.len());
            last.extend_from_slice(a);
            last.extend_from_slice(b);
            return;
        }
        let mut v = take_bytes(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        q.segments.push_back(Segment::Owned(v));
    }

    /// Queues `bytes`, taking the buffer rather than copying it when it
    /// starts a segment.
    pub fn push_owned(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let q = self.queue();
        q.len += bytes.len();
        if let Some(Segment::Owned(last)) = q.segments.back_mut() {
            last.extend_from_slice(&bytes);
            return;
        }
        q.segments.push_back(Segment::Owned(bytes));
    }

    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.q.as_ref().map_or(0, |q| q.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a copy of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        self.push_pair(bytes, &[]);
    }

    /// Queues a message in `format` by reference: the bytes stay the
    /// message's, shared with every other subscriber.
    pub fn push_message(&mut self, message: &Arc<Message>, format: WireFormat) {
        let len = message.wire_len(format);
        if len == 0 {
            return;
        }
        let q = self.queue();
        q.len += len;
        q.segments
            .push_back(Segment::Message(Arc::clone(message), format));
    }

    /// Queues bytes shared with other connections, by reference.
    pub fn push_shared(&mut self, bytes: &Arc<[u8]>) {
        if bytes.is_empty() {
            return;
        }
        let q = self.queue();
        q.len += bytes.len();
        q.segments.push_back(Segment::Shared(Arc::clone(bytes)));
    }

    /// Fills `slices` with the unwritten bytes, front first; returns how
    /// many slices it filled (0: nothing to write). After writing, the
    /// caller reports how much went out with [`consume`](Self::consume).
    pub fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        self.fill_lent(&[], slices)
    }

    /// [`fill`](Self::fill) while `lent` is the buffer `Lent` segments
    /// point into.
    pub fn fill_lent<'a>(&'a self, lent: &'a [u8], slices: &mut [IoSlice<'a>]) -> usize {
        let Some(q) = self.q.as_deref() else {
            return 0;
        };
        let mut n = 0;
        // What of the front segment is written already, skipped across
        // its parts.
        let mut skip = q.front_written;
        for seg in &q.segments {
            for part in seg.parts(lent) {
                let done = skip.min(part.len());
                skip -= done;
                let part = &part[done..];
                if part.is_empty() {
                    continue;
                }
                if n == slices.len() {
                    return n;
                }
                slices[n] = IoSlice::new(part);
                n += 1;
            }
        }
        n
    }

    /// Writes as much as the socket takes. `Ok(true)` when the queue is
    /// empty afterwards; `Ok(false)` when the socket would block (wait for
    /// WRITABLE). Errors other than `WouldBlock`/`Interrupted` mean the
    /// connection is gone.
    pub fn flush<W: Write>(&mut self, w: &mut W) -> io::Result<bool> {
        self.flush_lent(&[], w).map(|_| self.is_empty())
    }

    /// Writes as much as the socket takes while `lent` is the buffer
    /// `Lent` segments point into; returns the bytes written (`WouldBlock`
    /// is not an error: it stops the writing).
    pub fn flush_lent<W: Write>(&mut self, lent: &[u8], w: &mut W) -> io::Result<usize> {
        let mut sent = 0;
        while !self.is_empty() {
            let written = {
                let mut few = [IoSlice::new(&[]); FEW_IOVECS];
                let mut many;
                let mut n = self.fill_lent(lent, &mut few);
                let slices: &[IoSlice] = if n < FEW_IOVECS {
                    &few
                } else {
                    many = [IoSlice::new(&[]); MAX_IOVECS];
                    n = self.fill_lent(lent, &mut many);
                    &many
                };
                match w.write_vectored(&slices[..n]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(sent),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.consume(written);
            sent += written;
        }
        Ok(sent)
    }

    /// Whether `Lent` segments are queued.
    pub fn has_lent(&self) -> bool {
        self.q.as_ref().is_some_and(|q| q.lent > 0)
    }

    /// The lent buffer is about to be reused: every `Lent` segment still
    /// queued becomes an owned copy of its bytes.
    pub fn release(&mut self, lent: &[u8]) {
        let Some(q) = self.q.as_deref_mut() else {
            return;
        };
        if q.lent == 0 {
            return;
        }
        for seg in q.segments.iter_mut() {
            if let Segment::Lent { .. } = seg {
                let [head, payload, _] = seg.parts(lent);
                let mut v = take_bytes(head.len() + payload.len());
                v.extend_from_slice(head);
                v.extend_from_slice(payload);
                *seg = Segment::Owned(v);
            }
        }
        q.lent = 0;
    }

    /// Drops the first `n` unwritten bytes: they were written.
    pub fn consume(&mut self, n: usize) {
        let Some(q) = self.q.as_deref_mut() else {
            return;
        };
        // More than is queued cannot have been written.
        let mut n = n.min(q.len);
        q.len -= n;
        while n > 0 {
            let front_left = q.segments[0].len() - q.front_written;
            if n >= front_left {
                n -= front_left;
                q.front_written = 0;
                match q.segments.pop_front() {
                    Some(Segment::Lent { .. }) => q.lent -= 1,
                    Some(seg) => keep_segment(seg),
                    None => {}
                }
            } else {
                q.front_written += n;
                n = 0;
            }
        }
        if q.segments.is_empty() {
            // An idle connection holds no buffer memory, not even the
            // queue's ring of segments.
            self.empty();
        }
    }

    /// Drops everything queued that has not started going out, keeping a
    /// partly written segment so the peer never sees half a frame or half
    /// a chunk followed by something else (the connection is being cut
    /// off, or a close frame must jump the queue).
    pub fn clear_unstarted(&mut self) {
        let Some(q) = self.q.as_deref_mut() else {
            return;
        };
        if q.front_written == 0 {
            self.empty();
            return;
        }
        q.segments.truncate(1);
        q.len = q.segments[0].len() - q.front_written;
        q.lent = usize::from(matches!(q.segments[0], Segment::Lent { .. }));
    }
}

/// A socket for tests: takes at most `per_call` bytes per write and `room`
/// bytes in all, then says WouldBlock — every short write a real socket
/// can make.
#[cfg(test)]
pub struct FakeSocket {
    pub got: Vec<u8>,
    pub per_call: usize,
    pub room: usize,
}

#[cfg(test)]
impl Write for FakeSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(self.per_call - n).min(self.room);
            self.got.extend_from_slice(&b[..take]);
            self.room -= take;
            n += take;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spares() -> (usize, usize) {
        SPARE.with(|s| {
            let s = s.borrow();
            (s.queues.len(), s.bytes.len())
        })
    }

    #[test]
    fn a_written_queue_is_kept_for_the_next_write_and_bounded() {
        let (queues, bytes) = spares();
        let mut a = OutQueue::default();
        a.push(b"HTTP/1.1 200 OK\r\n\r\n");
        a.push(b"HTTP/1.1 200 OK\r\n\r\n");
        let mut sock = FakeSocket {
            got: Vec::new(),
            per_call: usize::MAX,
            room: usize::MAX,
        };
        assert!(a.flush(&mut sock).unwrap());
        // Idle again: nothing held by the connection, the memory kept.
        assert!(a.q.is_none());
        assert_eq!(spares(), (queues + 1, bytes + 1));
        // The next connection to write takes both.
        let mut b = OutQueue::default();
        b.push(b"x");
        assert_eq!(spares(), (queues, bytes));
        assert_eq!(sock.got.len(), 38);
        // A buffer grown over SPARE_BYTES is freed, not kept.
        b.push_owned(vec![0; SPARE_BYTES + 1]);
        b.clear_unstarted();
        assert_eq!(spares(), (queues + 1, bytes));
        // At most SPARES of each, with rings of up to SPARE_RING segments.
        let shared: Arc<[u8]> = Arc::from(&b"z"[..]);
        let mut many: Vec<OutQueue> = (0..2 * SPARES).map(|_| OutQueue::default()).collect();
        for q in &mut many {
            q.push(b"y");
            for _ in 0..SMALL_RING {
                q.push_shared(&shared);
            }
        }
        for q in &mut many {
            q.consume(1 + SMALL_RING);
        }
        assert_eq!(spares(), (SPARES, SPARES));
        // Past them, SMALL_SPARES more with the smallest ring (a fan-out
        // fills and empties thousands of these in one turn).
        let mut many: Vec<OutQueue> = (0..SPARES + SMALL_SPARES + 8)
            .map(|_| OutQueue::default())
            .collect();
        for q in &mut many {
            q.push_shared(&shared);
        }
        for q in &mut many {
            q.consume(1);
        }
        assert_eq!(spares(), (SPARES + SMALL_SPARES, SPARES));
    }

    #[test]
    fn short_writes_keep_order_across_owned_and_shared() {
        let mut q = OutQueue::default();
        let topic = crate::hub::TopicName::parse("t").unwrap();
        let id = crate::hub::MessageId { epoch: 1, seq: 2 };
        let kind = crate::hub::PayloadKind::Text;
        let now = std::time::Instant::now();
        let shared = Arc::new(Message::new(&topic, id, None, "SHARED", kind, now));
        q.push(b"ab");
        q.push(b"cd");
        q.push_message(&shared, WireFormat::Sse { chunked: false });
        q.push(b"ef");
        assert_eq!(q.len(), 28);
        // Two writes of 3 bytes, then the socket is full.
        let mut w = FakeSocket {
            got: Vec::new(),
            per_call: 3,
            room: 6,
        };
        assert!(!q.flush(&mut w).unwrap());
        assert_eq!(q.len(), 22);
        w.room = usize::MAX;
        assert!(q.flush(&mut w).unwrap());
        assert_eq!(w.got, b"abcdid: 1-2\ndata: SHARED\n\nef");
        assert!(q.is_empty());
    }

    #[test]
    fn a_lent_payload_is_written_from_the_buffer_then_copied_before_reuse() {
        let mut buf = b"..PAYLOAD..".to_vec();
        let mut q = OutQueue::default();
        let other = b"COPY".to_vec();
        {
            let range = Some((buf.as_ptr() as usize, buf.len()));
            let mut lending = Lending::new(&mut q, range);
            use crate::proto::ws::Transmit;
            lending.push_frame(&[0x81, 7], &buf[2..9]);
            // Not in the lent buffer: copied.
            lending.push_frame(&[0x81, 4], &other);
        }
        assert!(q.has_lent());
        assert_eq!(q.len(), 15);
        let mut w = FakeSocket {
            got: Vec::new(),
            per_call: 3,
            room: 4,
        };
        assert_eq!(q.flush_lent(&buf, &mut w).unwrap(), 4);
        q.release(&buf);
        assert!(!q.has_lent());
        // The driver reads into its buffer again: the queue holds its own
        // copy of what was not written.
        buf.fill(b'!');
        w.room = usize::MAX;
        assert!(q.flush(&mut w).unwrap());
        assert_eq!(w.got, b"\x81\x07PAYLOAD\x81\x04COPY");
        assert!(q.is_empty());
    }

    #[test]
    fn an_idle_queue_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<OutQueue>(),
            std::mem::size_of::<usize>()
        );
        let mut q = OutQueue::default();
        q.push(b"ab");
        q.consume(2);
        assert!(q.q.is_none());
    }
}

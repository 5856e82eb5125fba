//! A connection's outbound queue: what is still to be written.
//!
//! A short write is normal, never an error: the unwritten rest stays here
//! and goes out when the socket is WRITABLE again. Bytes come in two kinds:
//! owned bytes (a response, a pong) are appended to the last owned segment,
//! and shared bytes (a published message, encoded once for all of its
//! subscribers) are queued by reference, so a message fanned out to 5,000
//! SSE streams is in memory once. Writes are vectored, so a queue of many
//! segments leaves in one system call.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use std::sync::Arc;

use crate::hub::{Message, WireFormat};

/// Most segments handed to one `writev` (Linux's IOV_MAX is 1024).
pub const MAX_IOVECS: usize = 128;

#[derive(Debug)]
enum Segment {
    Owned(Vec<u8>),
    /// A published message in one wire form: its prefix, its body (the
    /// payload the history holds) and its suffix, written without a copy.
    Message(Arc<Message>, WireFormat),
    /// Bytes shared by several connections (a message compressed once for
    /// every permessage-deflate subscriber).
    Shared(Arc<[u8]>),
}

impl Segment {
    /// The segment's bytes, as up to three slices written in order.
    fn parts(&self) -> [&[u8]; 3] {
        match self {
            Segment::Owned(v) => [v, &[], &[]],
            Segment::Message(m, format) => m.parts(*format),
            Segment::Shared(b) => [b, &[], &[]],
        }
    }

    fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }
}

/// Outbound bytes of one connection.
#[derive(Debug, Default)]
pub struct OutQueue {
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    front_written: usize,
    /// Unwritten bytes in all.
    len: usize,
}

/// A WebSocket session writes its frames straight into the queue.
impl crate::proto::ws::Transmit for OutQueue {
    fn push_frame(&mut self, header: &[u8], payload: &[u8]) {
        self.push_pair(header, payload);
    }
}

impl OutQueue {
    /// Queues a copy of `a` then `b` (a frame header and its payload).
    pub fn push_pair(&mut self, a: &[u8], b: &[u8]) {
        if let Some(Segment::Owned(last)) = self.segments.back_mut() {
            last.reserve(a.len() + b.len());
            last.extend_from_slice(a);
            last.extend_from_slice(b);
            self.len += a.len() + b.len();
            return;
        }
        let mut v = Vec::with_capacity(a.len() + b.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        self.len += v.len();
        if !v.is_empty() {
            self.segments.push_back(Segment::Owned(v));
        }
    }

    /// Queues `bytes`, taking the buffer rather than copying it when it
    /// starts a segment.
    pub fn push_owned(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Segment::Owned(last)) = self.segments.back_mut() {
            self.len += bytes.len();
            last.extend_from_slice(&bytes);
            return;
        }
        self.len += bytes.len();
        self.segments.push_back(Segment::Owned(bytes));
    }

    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        if let Some(Segment::Owned(last)) = self.segments.back_mut() {
            last.extend_from_slice(bytes);
            return;
        }
        self.segments.push_back(Segment::Owned(bytes.to_vec()));
    }

    /// Queues a message in `format` by reference: the bytes stay the
    /// message's, shared with every other subscriber.
    pub fn push_message(&mut self, message: &Arc<Message>, format: WireFormat) {
        let len = message.wire_len(format);
        if len == 0 {
            return;
        }
        self.len += len;
        self.segments
            .push_back(Segment::Message(Arc::clone(message), format));
    }

    /// Queues bytes shared with other connections, by reference.
    pub fn push_shared(&mut self, bytes: &Arc<[u8]>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.segments.push_back(Segment::Shared(Arc::clone(bytes)));
    }

    /// Fills `slices` with the unwritten bytes, front first; returns how
    /// many slices it filled (0: nothing to write). After writing, the
    /// caller reports how much went out with [`consume`](Self::consume).
    pub fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        // What of the front segment is written already, skipped across
        // its parts.
        let mut skip = self.front_written;
        for seg in &self.segments {
            for part in seg.parts() {
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
        while self.len > 0 {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = self.fill(&mut slices);
                match w.write_vectored(&slices[..n]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            self.consume(written);
        }
        Ok(true)
    }

    /// Drops the first `n` unwritten bytes: they were written.
    pub fn consume(&mut self, n: usize) {
        // More than is queued cannot have been written.
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let front_left = self.segments[0].len() - self.front_written;
            if n >= front_left {
                n -= front_left;
                self.front_written = 0;
                self.segments.pop_front();
            } else {
                self.front_written += n;
                n = 0;
            }
        }
        if self.segments.is_empty() && self.segments.capacity() > 0 {
            // An idle connection holds no buffer memory, not even the
            // queue's ring of segments.
            self.segments = VecDeque::new();
        }
    }

    /// Drops everything queued that has not started going out, keeping a
    /// partly written segment so the peer never sees half a frame or half
    /// a chunk followed by something else (the connection is being cut
    /// off, or a close frame must jump the queue).
    pub fn clear_unstarted(&mut self) {
        if self.front_written > 0 {
            let front = self.segments.pop_front();
            self.segments = VecDeque::new();
            if let Some(front) = front {
                self.len = front.len() - self.front_written;
                self.segments.push_back(front);
            }
        } else {
            self.segments = VecDeque::new();
            self.len = 0;
        }
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
}

//! Large WebSocket payloads leave with a vectored write straight from the
//! buffer they arrived in, instead of being copied into a queue first.

use std::io::{self, IoSlice, Write};

use crate::proto::ws::Transmit;

/// Payloads at least this large are written directly when nothing is
/// queued ahead of them; smaller ones are cheaper to copy and batch.
const DIRECT_MIN: usize = 4096;

/// A [`Transmit`] over the loop's write buffer that may write to the
/// socket itself: when the connection's queue is empty, a large frame goes
/// out as `writev(buffered bytes, header, payload)`, and only what the
/// socket refuses is copied into the buffer.
pub struct DirectTx<'a, W: Write> {
    pub buf: &'a mut Vec<u8>,
    pub socket: &'a mut W,
    /// Direct writes are allowed: nothing is queued ahead and the socket
    /// has not refused anything yet in this turn.
    pub direct: bool,
}

impl<W: Write> Transmit for DirectTx<'_, W> {
    fn push_frame(&mut self, header: &[u8], payload: &[u8]) {
        if !self.direct || payload.len() < DIRECT_MIN {
            self.buf.reserve(header.len() + payload.len());
            self.buf.extend_from_slice(header);
            self.buf.extend_from_slice(payload);
            return;
        }
        let parts: [&[u8]; 3] = [self.buf, header, payload];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut written = 0;
        while written < total {
            let mut skip = written;
            let mut slices = [IoSlice::new(&[]); 3];
            let mut n = 0;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[n] = IoSlice::new(&part[skip..]);
                skip = 0;
                n += 1;
            }
            match self.socket.write_vectored(&slices[..n]) {
                Ok(0) => break,
                Ok(k) => written += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock, or an error the next flush will meet again.
                Err(_) => break,
            }
        }
        if written < total {
            // The socket is full: keep the rest, in order, and queue from
            // now on.
            self.direct = false;
        }
        let mut rest = Vec::new();
        let mut skip = written;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            rest.extend_from_slice(&part[skip..]);
            skip = 0;
        }
        *self.buf = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::outq::FakeSocket;

    #[test]
    fn order_is_kept_whatever_the_socket_takes() {
        let payload = vec![7u8; 10_000];
        for room in [0, 3, 5, 9_000, 20_000] {
            let mut sock = FakeSocket {
                got: Vec::new(),
                per_call: usize::MAX,
                room,
            };
            let mut buf = b"abc".to_vec();
            let mut tx = DirectTx {
                buf: &mut buf,
                socket: &mut sock,
                direct: true,
            };
            tx.push_frame(b"HH", &payload);
            tx.push_frame(b"hh", b"small");
            let mut all = sock.got.clone();
            all.extend_from_slice(&buf);
            let mut want = b"abcHH".to_vec();
            want.extend_from_slice(&payload);
            want.extend_from_slice(b"hhsmall");
            assert_eq!(all, want, "room {room}");
        }
    }
}

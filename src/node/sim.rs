//! A simulated driver: the core, N fake clients (byte queues) and one
//! `now`, stepped as quinn-proto's test `Pair` steps two endpoints. For
//! scenario tests and fuzzing; no sockets, no sleeps.
//!
//! [`Harness::settle`] delivers everything the core has queued to the
//! clients that read; [`Harness::advance`] jumps `now` from deadline to
//! deadline (each the core's own `poll_timeout`), so a keep-alive timeout
//! of a minute runs in microseconds, deterministically.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outq::MAX_IOVECS;
use super::{ConnId, ConnStatus, Node};
use crate::Config;

/// One fake client: what it sent that the core has not read yet, what
/// it received, and how much more it is willing to read.
#[derive(Default)]
pub struct Client {
    /// Bytes the client has sent that wait in its socket (the core reads
    /// them while it wants input).
    pub to_send: Vec<u8>,
    pub received: Vec<u8>,
    /// The client reads at most this many more bytes (its receive window):
    /// a slow reader has a small one.
    pub window: usize,
    pub closed: bool,
}

pub struct Harness {
    pub node: Node,
    pub now: Instant,
    pub clients: HashMap<ConnId, Client>,
}

impl Harness {
    pub fn new(cfg: Config) -> Harness {
        let mut node = Node::new(Arc::new(cfg), 1_796_000_000_000_000);
        node.set_date(1_796_000_000);
        // Every run of a script gives the same bytes, sids included.
        node.use_counter_sids();
        Harness {
            node,
            now: Instant::now(),
            clients: HashMap::new(),
        }
    }

    pub fn connect(&mut self) -> ConnId {
        let id = self.node.handle_accept(self.now).expect("accepted");
        self.clients.insert(
            id,
            Client {
                window: usize::MAX,
                ..Client::default()
            },
        );
        self.settle();
        id
    }

    /// The client sends `bytes` (read by the core when it wants them).
    pub fn send(&mut self, id: ConnId, bytes: &[u8]) {
        self.clients
            .get_mut(&id)
            .unwrap()
            .to_send
            .extend_from_slice(bytes);
        self.pump(id);
        self.settle();
    }

    /// Feeds a client's waiting bytes while the core wants them.
    pub fn pump(&mut self, id: ConnId) {
        loop {
            let Some(c) = self.clients.get_mut(&id) else {
                return;
            };
            if c.to_send.is_empty() || c.closed || !self.node.wants_read(id) {
                return;
            }
            let mut bytes = std::mem::take(&mut c.to_send);
            self.node.handle_read(id, &mut bytes, self.now);
        }
    }

    pub fn eof(&mut self, id: ConnId) {
        self.node.handle_eof(id, self.now);
        self.settle();
    }

    /// The client reads `n` more bytes from now on.
    pub fn open_window(&mut self, id: ConnId, n: usize) {
        let c = self.clients.get_mut(&id).unwrap();
        c.window = c.window.saturating_add(n);
        self.node.handle_sent(id, 0, self.now);
        self.settle();
    }

    /// Does what a driver does after events: write to every ready
    /// connection what its client takes, close what the core closes,
    /// resume reading where it says.
    pub fn settle(&mut self) {
        while let Some(id) = self.node.poll_ready() {
            loop {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let n = self.node.poll_transmit(id, &mut slices);
                let c = self.clients.get_mut(&id).unwrap();
                let mut taken = 0;
                for s in &slices[..n] {
                    let take = s.len().min(c.window - taken);
                    c.received.extend_from_slice(&s[..take]);
                    taken += take;
                    if taken == c.window {
                        break;
                    }
                }
                c.window -= taken;
                if taken == 0 {
                    break;
                }
                self.node.handle_sent(id, taken, self.now);
            }
            match self.node.poll_status(id) {
                ConnStatus::Close => self.clients.get_mut(&id).unwrap().closed = true,
                ConnStatus::Open { read_now, .. } => {
                    if read_now {
                        self.pump(id);
                    }
                }
            }
        }
    }

    /// Moves time forward by `d`, running each deadline on the way at
    /// its own time.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        let mut last = None;
        while let Some(t) = self.node.poll_timeout() {
            // A deadline already handled (shutdown's end stays due until
            // the driver stops) is not a reason to loop.
            if t > until || last == Some(t) {
                break;
            }
            last = Some(t);
            self.now = self.now.max(t);
            self.node.handle_timeout(self.now);
            self.settle();
        }
        self.now = until;
        self.node.handle_timeout(self.now);
        self.settle();
    }

    pub fn text(&self, id: ConnId) -> String {
        String::from_utf8_lossy(&self.clients[&id].received).into_owned()
    }

    pub fn take_text(&mut self, id: ConnId) -> String {
        let c = self.clients.get_mut(&id).unwrap();
        String::from_utf8_lossy(&std::mem::take(&mut c.received)).into_owned()
    }

    pub fn closed(&self, id: ConnId) -> bool {
        self.clients[&id].closed
    }

    pub fn publish(&mut self, topic: &str, data: &str) -> String {
        let id = self
            .node
            .handle_publish(topic, None, data, self.now)
            .unwrap();
        self.settle();
        id
    }
}

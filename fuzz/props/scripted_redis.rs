//! The Redis side of the cluster targets (`cluster_upstream`,
//! `cluster_sio`): the input plays Redis. It decides the bytes Redis
//! answers with (asked or not), when a connect completes, when Redis
//! hangs up and how time moves; the target decides what its clients do.
//!
//! Input: operations, each a tag byte and its operands: `0 k a` client k
//! (of 2) does action a (of the target's list); `1 n bytes…` Redis sends n
//! bytes; `2 t` time moves by t × 50 ms; `3` a pending connect completes;
//! `4` Redis closes the connection.
#![allow(dead_code)]

use std::time::Duration;

use pushwire::node::sim::Harness;
use pushwire::node::{UpstreamAction, UPSTREAM};

pub enum Op<'a> {
    /// Client k does action a.
    Client(usize, usize),
    Redis(&'a [u8]),
    Wait(u8),
    Connected,
    Eof,
}

/// The operations of `data`, with `actions` client actions to choose from.
pub fn script(data: &[u8], actions: usize) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    let mut rest = data;
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag % 5 {
            0 => {
                let [k, a, tail @ ..] = rest else { break };
                ops.push(Op::Client(usize::from(*k) % 2, usize::from(*a) % actions));
                rest = tail;
            }
            1 => {
                let Some((&n, tail)) = rest.split_first() else {
                    break;
                };
                let n = usize::from(n).min(tail.len());
                ops.push(Op::Redis(&tail[..n]));
                rest = &tail[n..];
            }
            2 => {
                let Some((&t, tail)) = rest.split_first() else {
                    break;
                };
                ops.push(Op::Wait(t % 16));
                rest = tail;
            }
            3 => ops.push(Op::Connected),
            _ => ops.push(Op::Eof),
        }
    }
    ops
}

/// The one Redis connection of a node, as the input plays it.
pub struct ScriptedRedis {
    connecting: bool,
    connected: bool,
    /// Redis's bytes are fed byte by byte.
    split: bool,
}

impl ScriptedRedis {
    pub fn new(split: bool) -> ScriptedRedis {
        ScriptedRedis {
            connecting: false,
            connected: false,
            split,
        }
    }

    /// Takes the node's upstream actions and everything it writes (and
    /// ignores it: the input plays Redis), then settles the node.
    pub fn drive(&mut self, h: &mut Harness) {
        while let Some(action) = h.node.poll_upstream() {
            match action {
                UpstreamAction::Connect { .. } => self.connecting = true,
                UpstreamAction::Close { .. } => {
                    self.connecting = false;
                    self.connected = false;
                }
            }
        }
        if self.connected {
            while let Some(n) = h.node.upstream_transmit(UPSTREAM).map(<[u8]>::len) {
                h.node.handle_upstream_sent(UPSTREAM, n, h.now);
            }
        }
        h.settle();
    }

    /// Plays `op` if it is Redis's or time's (then drives the node);
    /// returns a client's action for the target to do.
    pub fn play(&mut self, h: &mut Harness, op: &Op) -> Option<(usize, usize)> {
        match op {
            Op::Client(k, a) => return Some((*k, *a)),
            Op::Redis(bytes) if self.connected => {
                if self.split {
                    for b in bytes.iter() {
                        h.node
                            .handle_upstream_read(UPSTREAM, std::slice::from_ref(b), h.now);
                    }
                } else {
                    h.node.handle_upstream_read(UPSTREAM, bytes, h.now);
                }
            }
            Op::Redis(_) => {}
            Op::Wait(t) => h.advance(Duration::from_millis(50 * u64::from(*t))),
            Op::Connected if self.connecting => {
                self.connecting = false;
                self.connected = true;
                h.node.handle_upstream_connected(UPSTREAM, h.now);
            }
            Op::Connected => {}
            Op::Eof if self.connected || self.connecting => {
                h.node.handle_upstream_eof(UPSTREAM, h.now);
            }
            Op::Eof => {}
        }
        self.drive(h);
        None
    }
}

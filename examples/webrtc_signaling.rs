//! pushwire as a WebRTC signaling server: two peers find each other
//! through a topic, agree on a session, then talk directly.
//!
//! **What signaling is.** Two WebRTC peers cannot reach each other until
//! each knows two things about the other: its *session description* (SDP:
//! codecs, the data channel, the DTLS certificate fingerprint) and its *ICE
//! candidates* (addresses where it might be reachable). WebRTC defines the
//! connection but deliberately not how those messages travel; that is left
//! to the application, and it is called signaling. The flow (RFC 8829,
//! JSEP, and RFC 8838, trickle ICE):
//!
//! 1. the *offerer* creates an offer (`setLocalDescription`) and sends it;
//! 2. the *answerer* applies it (`setRemoteDescription`), creates an answer
//!    and sends that back;
//! 3. meanwhile each side sends its ICE candidates as it finds them
//!    ("trickle"), then a last message saying there are no more;
//! 4. the ICE agents test candidate pairs, the DTLS handshake runs over the
//!    pair that works, and the data channel opens — directly between the
//!    peers. The signaling server sees none of that traffic.
//!
//! **Why a push server is the natural place for it.** Signaling is a few
//! small messages that must reach the other peer *now*, in the order they
//! were sent (an answer before its offer, or a candidate before the
//! description it belongs to, is useless), while both peers are somewhere
//! behind NATs that accept no incoming connection. Both can hold an
//! outgoing connection to a push server, and one topic per room gives
//! exactly that: every message is delivered to every subscriber, in one
//! order, identified by an increasing id. Here each peer holds a WebSocket
//! to `/topics/{room}/ws`; a text frame it sends is published to the room
//! and comes back to every subscriber — the sender too, so every message
//! carries its sender's id and each peer skips its own. The WebSocket
//! starts live (no `?after=`), so an offer left from an earlier session is
//! never replayed to a newcomer.
//!
//! Two peers that both decide to offer at once collide ("glare"); the
//! browser demo (`/demo/webrtc`) gives the peers roles by id, as in
//! "perfect negotiation": the impolite one offers, and should offers still
//! collide, the polite one gives way. These two peers need only the first
//! half of that: once they know each other, the one whose name sorts first
//! makes the offer.
//!
//! **What this example fakes.** The SDP is dummy text, and the "data
//! channel" is a plain TCP connection on 127.0.0.1 to the address named in
//! the other peer's candidate — a stand-in for ICE checks, DTLS and SCTP.
//! What is real is what pushwire does: the relay, the ordering, and the
//! fact that the direct messages never pass through it (its `published`
//! counter in `/stats` counts the signaling and nothing else).
//!
//! ```text
//! cargo run --example webrtc_signaling -- --demo
//! ```
//! starts its own server and two peers, alice and bob (bob a moment
//! later), and ends with a summary line.
//!
//! Against a running server (`cargo run`), one peer per terminal:
//! ```text
//! cargo run --example webrtc_signaling -- --name alice --topic room1
//! cargo run --example webrtc_signaling -- --name bob --topic room1
//! ```
//!
//! **STUN and TURN.** Real peers on different networks need more
//! candidates than their host addresses: a STUN server tells a peer its
//! public address (a "server reflexive" candidate), and a TURN server relays
//! when no direct path exists. Neither changes the signaling: they are
//! given to the peer connection, e.g. in a browser
//! `new RTCPeerConnection({iceServers: [{urls: "stun:stun.example.org:3478"},
//! {urls: "turn:turn.example.org:3478", username: "u", credential: "p"}]})`,
//! and the extra candidates travel through pushwire like the host ones.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use pushwire::client::{json, ClientError, Delivery, HttpClient, WsClient, WsMessage};
use pushwire::wire::json as json_out;
use pushwire::Config;

#[path = "support/mod.rs"]
mod support;
use support::{Args, DemoServer};

/// How long a peer waits for the other one, for the whole signaling and
/// for the direct connection, before it gives up.
const PATIENCE: Duration = Duration::from_secs(15);

/// Candidates each peer sends (they all name its one listening socket,
/// as a browser's host, reflexive and relayed candidates may lead to one
/// working pair).
const CANDIDATES: usize = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse(
        "usage: webrtc_signaling [--addr ADDR] [--topic ROOM] [--name N] | --demo",
        "webrtc-room",
    )?;
    if a.demo {
        return run_demo();
    }
    let report = run_peer(a.addr, &a.topic, &a.name)?;
    println!("{}", report.line());
    Ok(())
}

fn run_demo() -> Result<(), Box<dyn std::error::Error>> {
    let server = DemoServer::start(Config::default())?;
    let addr = server.addr;
    let room = "webrtc-demo";
    println!("signaling server on http://{addr}/, room {room}");
    let alice = thread::spawn(move || run_peer(addr, room, "alice"));
    // Bob joins a moment later: alice's first hello reaches nobody, and
    // bob's hello is what brings them together.
    thread::sleep(Duration::from_millis(200));
    let bob = thread::spawn(move || run_peer(addr, room, "bob"));
    let alice = alice.join().expect("alice's thread")?;
    let bob = bob.join().expect("bob's thread")?;
    let published = published_count(addr)?;
    server.stop()?;

    println!("{}", alice.line());
    println!("{}", bob.line());
    let signaling = alice.sent + bob.sent;
    let direct = alice.direct + bob.direct;
    let in_order = alice.in_order && bob.in_order;
    println!(
        "summary: {signaling} signaling messages through pushwire ({}), {direct} messages peer to peer; \
         the server published {published}, so {} of the direct ones",
        if in_order { "each side's in order" } else { "OUT OF ORDER" },
        if published == signaling as u64 { "none" } else { "SOME" },
    );
    if !in_order || published != signaling as u64 || direct != 2 {
        return Err("the signaling demo did not go as it should".into());
    }
    Ok(())
}

/// `published` from `GET /stats`: every message the server accepted.
fn published_count(addr: SocketAddr) -> Result<u64, ClientError> {
    let res = HttpClient::new(addr).get("/stats")?;
    let stats = json::parse(res.text()?)?;
    stats
        .get("published")
        .and_then(json::Value::as_f64)
        .map(|n| n as u64)
        .ok_or_else(|| ClientError::Protocol("/stats has no \"published\"".into()))
}

// ---- the signaling messages ------------------------------------------------

/// What one signaling message says. On the topic it is a JSON object
/// `{"type":…,"from":…,"to":…, …}`; `to` is absent only on the first
/// hello, which is for whoever is in the room.
#[derive(Clone, Debug, PartialEq)]
enum Signal {
    Hello,
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    /// A trickled ICE candidate (RFC 8839 §5.1 syntax).
    Candidate {
        candidate: String,
    },
    /// No more candidates will come (trickle ICE's end-of-candidates).
    EndOfCandidates,
}

impl Signal {
    fn kind(&self) -> &'static str {
        match self {
            Signal::Hello => "hello",
            Signal::Offer { .. } => "offer",
            Signal::Answer { .. } => "answer",
            Signal::Candidate { .. } => "candidate",
            Signal::EndOfCandidates => "end-of-candidates",
        }
    }

    fn to_json(&self, from: &str, to: Option<&str>) -> String {
        let mut out = Vec::new();
        out.extend_from_slice(b"{\"type\":");
        json_out::write_str(&mut out, self.kind());
        out.extend_from_slice(b",\"from\":");
        json_out::write_str(&mut out, from);
        if let Some(to) = to {
            out.extend_from_slice(b",\"to\":");
            json_out::write_str(&mut out, to);
        }
        let field = match self {
            Signal::Offer { sdp } | Signal::Answer { sdp } => Some(("sdp", sdp)),
            Signal::Candidate { candidate } => Some(("candidate", candidate)),
            Signal::Hello | Signal::EndOfCandidates => None,
        };
        if let Some((name, value)) = field {
            out.push(b',');
            json_out::write_str(&mut out, name);
            out.push(b':');
            json_out::write_str(&mut out, value);
        }
        out.push(b'}');
        String::from_utf8(out).expect("the JSON writer writes UTF-8")
    }

    /// `(signal, from, to)`, or `None` for anything else on the topic.
    fn from_json(text: &str) -> Option<(Signal, String, Option<String>)> {
        let v = json::parse(text).ok()?;
        let field = |name| v.get(name).and_then(json::Value::as_str);
        let signal = match field("type")? {
            "hello" => Signal::Hello,
            "offer" => Signal::Offer {
                sdp: field("sdp")?.to_string(),
            },
            "answer" => Signal::Answer {
                sdp: field("sdp")?.to_string(),
            },
            "candidate" => Signal::Candidate {
                candidate: field("candidate")?.to_string(),
            },
            "end-of-candidates" => Signal::EndOfCandidates,
            _ => return None,
        };
        Some((
            signal,
            field("from")?.to_string(),
            field("to").map(str::to_string),
        ))
    }
}

/// A dummy session description: enough lines to look like one.
fn dummy_sdp(name: &str, kind: &str) -> String {
    format!(
        "v=0\r\no={name} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:{}\r\n",
        if kind == "offer" { "actpass" } else { "active" }
    )
}

/// A host candidate naming `addr` (RFC 8839 §5.1:
/// `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>`).
fn host_candidate(n: usize, addr: SocketAddr) -> String {
    format!(
        "candidate:{n} 1 tcp {} {} {} typ host",
        2_130_706_431 - n,
        addr.ip(),
        addr.port()
    )
}

/// The address of a candidate written by [`host_candidate`].
fn candidate_addr(candidate: &str) -> Option<SocketAddr> {
    let fields: Vec<&str> = candidate.split(' ').collect();
    format!("{}:{}", fields.get(4)?, fields.get(5)?)
        .parse()
        .ok()
}

// ---- one peer ----------------------------------------------------------------

/// What a peer did, for the summary.
struct Report {
    name: String,
    /// Signaling messages it published.
    sent: usize,
    /// Signaling messages from the other peer it received.
    received: usize,
    /// The topic ids of those, in arrival order, increased every time, and
    /// every candidate came after the description it belongs to.
    in_order: bool,
    /// Messages it sent directly to the other peer.
    direct: usize,
}

impl Report {
    fn line(&self) -> String {
        format!(
            "{:>5}: sent {} and received {} signaling messages through the server, then {} directly",
            self.name, self.sent, self.received, self.direct
        )
    }
}

/// One peer's signaling session on the room's topic.
struct Peer {
    name: String,
    ws: WsClient,
    /// The other peer, once heard from.
    remote: Option<String>,
    /// Where the other peer's candidates say it is reachable.
    remote_addrs: Vec<SocketAddr>,
    /// Where this peer listens for the direct connection: its candidate.
    local_addr: SocketAddr,
    remote_description: bool,
    local_description: bool,
    remote_done: bool,
    sent: usize,
    received: usize,
    last_seq: u64,
    in_order: bool,
}

impl Peer {
    /// Publishes `signal` to the room (addressed to the other peer once
    /// known) and prints it.
    fn send(&mut self, signal: Signal) -> Result<(), ClientError> {
        let text = signal.to_json(&self.name, self.remote.as_deref());
        self.ws.send_text(&text)?;
        self.sent += 1;
        println!("[{:>5}] → {}", self.name, signal.kind());
        Ok(())
    }

    /// Sends this peer's description and then its candidates: trickled
    /// after it, so the other side always has the description first.
    fn send_description(&mut self, signal: Signal) -> Result<(), ClientError> {
        self.send(signal)?;
        self.local_description = true;
        for n in 1..=CANDIDATES {
            self.send(Signal::Candidate {
                candidate: host_candidate(n, self.local_addr),
            })?;
        }
        self.send(Signal::EndOfCandidates)
    }

    /// Whether `name` makes the offer: the peer whose name sorts first.
    fn offers(&self) -> bool {
        self.remote.as_deref().is_some_and(|r| *self.name < *r)
    }

    fn done(&self) -> bool {
        self.local_description && self.remote_description && self.remote_done
    }

    /// Handles one message from the topic; its id is `<epoch>-<seq>`.
    fn handle(&mut self, id: &str, data: &str) -> Result<(), ClientError> {
        let Some((signal, from, to)) = Signal::from_json(data) else {
            return Ok(()); // not signaling: someone else's message on the topic
        };
        if from == self.name || to.as_deref().is_some_and(|to| to != self.name) {
            return Ok(()); // our own, sent back to us; or between two others
        }
        if self.remote.as_deref().is_some_and(|r| r != from) {
            return Ok(()); // a third peer: this one talks to one at a time
        }
        self.received += 1;
        let seq: u64 = id
            .rsplit_once('-')
            .and_then(|(_, s)| s.parse().ok())
            .unwrap_or(0);
        self.in_order &= seq > self.last_seq;
        self.last_seq = seq;
        println!(
            "[{:>5}] ← {id:<20} {} from {from}",
            self.name,
            signal.kind()
        );
        match signal {
            Signal::Hello => {
                let first_contact = self.remote.is_none();
                self.remote = Some(from);
                // A hello for the whole room comes from a newcomer, who has
                // not heard ours: answer it, addressed.
                if to.is_none() {
                    self.send(Signal::Hello)?;
                }
                if first_contact && self.offers() {
                    let sdp = dummy_sdp(&self.name, "offer");
                    self.send_description(Signal::Offer { sdp })?;
                }
            }
            Signal::Offer { .. } => {
                self.remote_description = true;
                let sdp = dummy_sdp(&self.name, "answer");
                self.send_description(Signal::Answer { sdp })?;
            }
            Signal::Answer { .. } => self.remote_description = true,
            Signal::Candidate { candidate } => {
                // The topic's single order is what guarantees this.
                self.in_order &= self.remote_description;
                self.remote_addrs.extend(candidate_addr(&candidate));
            }
            Signal::EndOfCandidates => self.remote_done = true,
        }
        Ok(())
    }
}

/// Joins `room` on the server at `addr` as `name`, signals until both
/// sides have each other's description and candidates, then exchanges one
/// message each way directly.
fn run_peer(addr: SocketAddr, room: &str, name: &str) -> Result<Report, ClientError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut peer = Peer {
        name: name.to_string(),
        ws: WsClient::connect(addr, &format!("/topics/{room}/ws"))?,
        remote: None,
        remote_addrs: Vec::new(),
        local_addr: listener.local_addr()?,
        remote_description: false,
        local_description: false,
        remote_done: false,
        sent: 0,
        received: 0,
        last_seq: 0,
        in_order: true,
    };
    peer.send(Signal::Hello)?;
    let deadline = Instant::now() + PATIENCE;
    while !peer.done() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Protocol(format!(
                "{name}: no complete signaling within {PATIENCE:?}"
            )));
        }
        peer.ws.set_read_timeout(Some(left))?;
        match peer.ws.recv()? {
            WsMessage::Text(text) => {
                if let Ok(Delivery::Message(m)) = Delivery::from_json(&text) {
                    peer.handle(&m.id, &m.data)?;
                }
            }
            WsMessage::Binary(_) => {}
            WsMessage::Close(why) => {
                return Err(ClientError::Protocol(format!("server closed: {why:?}")))
            }
        }
    }
    let remote = peer.remote.clone().unwrap_or_default();
    println!(
        "[{name:>5}] signaling complete with {remote}; connecting directly, without the server"
    );
    let direct = if peer.offers() {
        // The offerer dials the first candidate that answers, like an ICE
        // agent's first successful check.
        let mut stream = peer
            .remote_addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, PATIENCE).ok())
            .ok_or_else(|| ClientError::Protocol("no candidate answered".into()))?;
        talk(
            &mut stream,
            name,
            &format!("hello {remote}, straight to you"),
        )?
    } else {
        let mut stream = accept_within(&listener, deadline)?;
        talk(
            &mut stream,
            name,
            &format!("hi {remote}, no server in between"),
        )?
    };
    peer.ws.close(1000, "signaling done")?;
    Ok(Report {
        name: name.to_string(),
        sent: peer.sent,
        received: peer.received,
        in_order: peer.in_order,
        direct,
    })
}

/// Waits for the other peer's direct connection until `deadline`.
fn accept_within(listener: &TcpListener, deadline: Instant) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends one line and reads one line on the direct connection; returns
/// how many messages this side sent (one).
fn talk(stream: &mut TcpStream, name: &str, line: &str) -> io::Result<usize> {
    stream.set_read_timeout(Some(PATIENCE))?;
    writeln!(stream, "{line}")?;
    let mut heard = String::new();
    BufReader::new(&*stream).read_line(&mut heard)?;
    println!("[{name:>5}] direct ← {}", heard.trim_end());
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_round_trips_through_its_json() {
        let signals = [
            Signal::Hello,
            Signal::Offer {
                sdp: dummy_sdp("a", "offer"),
            },
            Signal::Answer {
                sdp: "v=0\r\n".into(),
            },
            Signal::Candidate {
                candidate: host_candidate(1, "127.0.0.1:5000".parse().unwrap()),
            },
            Signal::EndOfCandidates,
        ];
        for s in signals {
            let text = s.to_json("alice", Some("bob"));
            assert_eq!(
                Signal::from_json(&text),
                Some((s, "alice".into(), Some("bob".into())))
            );
        }
    }

    #[test]
    fn a_candidate_names_its_address() {
        let addr = "127.0.0.1:40123".parse().unwrap();
        let c = host_candidate(2, addr);
        assert_eq!(c, "candidate:2 1 tcp 2130706429 127.0.0.1 40123 typ host");
        assert_eq!(candidate_addr(&c), Some(addr));
    }
}

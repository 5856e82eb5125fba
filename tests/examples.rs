//! The examples, run as their users run them: each demo mode starts its
//! own server on a free port of 127.0.0.1, does its work, prints a summary
//! and stops by itself. These tests check the summaries, so an example
//! that stops working (or stops telling the truth) fails here.
//!
//! `cargo test --test examples` does not build the examples by itself
//! (only a plain `cargo test` does), so the first test to need them runs
//! `cargo build --examples` with this test's own profile and target
//! directory — a no-op when they are fresh.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use pushwire::client::SseClient;

/// How long one example may run. The demos take 2 to 5 s; the bound is
/// for a loaded machine, and a run past it is killed and fails.
const LIMIT: Duration = Duration::from_secs(40);

/// `target/<profile>/examples`, next to `target/<profile>/deps/<this test>`,
/// built once for all the tests of this file.
fn examples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps/<test>");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--examples", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .env("CARGO_TARGET_DIR", target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
            None => panic!("no profile directory in {exe:?}"),
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "cargo build --examples: {status}");
        profile_dir.join("examples")
    })
}

/// What a finished example printed.
struct Output {
    stdout: String,
    stderr: String,
}

impl Output {
    /// Fails, showing the whole output, unless stdout holds `needle`.
    fn expect(&self, needle: &str) {
        assert!(
            self.stdout.contains(needle),
            "no {needle:?} in the output:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// The stdout line that starts with `prefix`.
    fn line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}", self.stdout))
    }
}

/// Runs example `name` with `args`, handing each stdout line to `on_line`
/// as it comes; kills it if it runs past [`LIMIT`]. Fails unless it exits
/// successfully.
fn run(name: &str, args: &[&str], mut on_line: impl FnMut(&str)) -> Output {
    let path = examples_dir().join(name);
    let mut child = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + LIMIT;
    let mut out = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                on_line(&line);
                out.push_str(&line);
                out.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} still running after {LIMIT:?}; killed. Output:\n{out}");
            }
        }
    }
    // Stdout closed: the process is exiting.
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} closed its output but did not exit; killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    let output = Output {
        stdout: out,
        stderr: err_reader.join().unwrap(),
    };
    assert!(
        status.success(),
        "{name} {args:?}: {status}\n{}\n--- stderr:\n{}",
        output.stdout,
        output.stderr
    );
    output
}

#[test]
fn transport_compare_delivers_everything_once_on_every_transport() {
    let out = run(
        "transport_compare",
        &[
            "--messages",
            "40",
            "--rate",
            "200",
            "--clients",
            "3",
            "--interval",
            "50",
        ],
        |_| {},
    );
    out.expect("40 messages of 64 bytes at 200/s to 3 clients per transport");
    for transport in ["WebSocket", "SSE", "HTTP stream", "long poll", "short poll"] {
        let row = out.line(&format!("{transport:<11} "));
        assert!(
            row.contains(" 120/120 ") && row.contains(" all, once "),
            "{transport}: {row}"
        );
    }
    assert!(!out.stdout.contains("error:"), "{}", out.stdout);
}

#[test]
fn ws_chat_demo_replays_what_bob_missed() {
    let out = run("ws_chat", &["--demo"], |_| {});
    out.expect("[  bob] *** connection dropped");
    out.expect("[  bob] *** reconnected with ?after=");
    out.expect("bob: thanks, the server replayed what I missed");
    out.expect("8 lines said; alice received 8, bob 8");
}

#[test]
fn long_poll_chat_demo_delivers_every_line_to_both() {
    let out = run("long_poll_chat", &["--demo"], |_| {});
    out.expect("7 lines said.");
    for who in ["alice", "bob"] {
        let row = out.line(&format!("{who:>5}: "));
        assert!(row.contains(": received 7; "), "{row}");
    }
    out.expect("[  bob sees] ");
    out.expect("alice: bye!");
}

#[test]
fn short_poll_demo_sees_every_reading() {
    let out = run("short_poll", &["--demo"], |_| {});
    out.expect("sensor reading 6: 21.5 °C");
    out.expect("for 6/6 readings");
}

#[test]
fn sse_clock_serves_its_tick_on_a_free_port() {
    // While it serves, read the tick back as a subscriber would.
    let mut tick = None;
    let out = run(
        "sse_clock",
        &["--listen", "127.0.0.1:0", "--ticks", "1"],
        |line| {
            let Some(addr) = line.strip_prefix("serving on http://") else {
                return;
            };
            let addr = addr.parse().expect("the address it serves on");
            let mut sse = SseClient::connect(addr, "clock", Some("earliest")).expect("subscribe");
            sse.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            tick = sse.next_event().expect("read the stream");
        },
    );
    let published = out.line("published ");
    let tick = tick.expect("a tick before the stream ended");
    assert_eq!(tick.event_type, "tick");
    assert!(tick.data.ends_with(" UTC"), "{tick:?}");
    assert_eq!(
        published,
        format!("published {}: {}", tick.last_event_id, tick.data)
    );
}

#[test]
fn webrtc_signaling_demo_relays_the_signaling_and_not_the_chat() {
    let out = run("webrtc_signaling", &["--demo"], |_| {});
    // Bob's hello brings them together; alice's name sorts first, so she offers.
    out.expect("[alice] ← ");
    out.expect("[  bob] ← ");
    out.expect(" offer from alice");
    out.expect(" answer from bob");
    out.expect("[  bob] direct ← hello bob, straight to you");
    out.expect("[alice] direct ← hi alice, no server in between");
    let summary = out.line("summary: ");
    assert!(
        summary.contains("(each side's in order), 2 messages peer to peer")
            && summary.ends_with("so none of the direct ones"),
        "{summary}"
    );
}

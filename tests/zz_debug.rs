use pushwire::node::sim::Harness;
use pushwire::Config;
fn masked(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | op, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}
fn run(split: bool, path: &str, msg: &[u8]) -> String {
    let mut h = Harness::new(Config {
        ws_deflate: false,
        ..Config::default()
    });
    let c = h.connect();
    h.send(c, format!("GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes());
    let mut input = masked(1, msg);
    input.extend(masked(9, b"p"));
    if split {
        for b in &input {
            h.send(c, std::slice::from_ref(b));
        }
    } else {
        h.send(c, &input);
    }
    String::from_utf8_lossy(&h.clients[&c].received).into_owned()
}
#[test]
fn dbg() {
    for (path, msg) in [
        ("/topics/t/ws", &b"m"[..]),
        (
            "/ws",
            br#"{"type":"publish","topic":"t","data":"y","ref":1}"#,
        ),
    ] {
        let (w, s) = (run(false, path, msg), run(true, path, msg));
        eprintln!("{path}\nwhole {w:?}\nsplit {s:?}");
        assert_eq!(w, s);
    }
}

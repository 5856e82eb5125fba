//! A server that publishes the time to the topic `clock` every 2 seconds:
//! the smallest program that embeds pushwire and pushes from Rust code.
//!
//! ```text
//! cargo run --example sse_clock                         # serves 127.0.0.1:8080
//! cargo run --example sse_clock -- --listen 127.0.0.1:9000
//! cargo run --example sse_clock -- --ticks 3            # stop after 3 ticks
//! ```
//!
//! Watch it in another terminal, as an event stream:
//!
//! ```text
//! curl -N http://127.0.0.1:8080/topics/clock/sse
//! ```
//!
//! Each tick arrives as `id: <epoch>-<n>`, `event: tick`, `data: 12:34:56
//! UTC`. Stop curl and start it again with `-H 'Last-Event-ID: <an id>'`
//! to see the ticks it missed replayed first; or poll the same topic:
//! `curl 'http://127.0.0.1:8080/topics/clock/poll?after=<an id>'`.
//! Ctrl-C stops the server (it ends every stream cleanly first).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pushwire::{Config, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen = "127.0.0.1:8080".to_string();
    let mut ticks: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--ticks" => ticks = Some(args.next().ok_or("--ticks needs a number")?.parse()?),
            _ => {
                return Err(format!("usage: sse_clock [--listen ADDR] [--ticks N] ({arg}?)").into())
            }
        }
    }
    let server = Server::bind(Config {
        listen: listen.parse()?,
        ..Default::default()
    })?;
    let addr = server.local_addr();
    let handle = server.handle();
    println!("serving on http://{addr}");
    println!("watch:  curl -N http://{addr}/topics/clock/sse");

    // The publisher is an ordinary thread holding a Handle; `publish` goes
    // through the event loop and returns the message's id.
    let publisher = std::thread::spawn(move || {
        let mut n = 0;
        while ticks.is_none_or(|t| n < t) {
            let now = utc_time(SystemTime::now());
            match handle.publish("clock", Some("tick"), &now) {
                Ok(id) => println!("published {id}: {now}"),
                Err(_) => return, // the server stopped (Ctrl-C)
            }
            n += 1;
            std::thread::sleep(Duration::from_secs(2));
        }
        handle.shutdown();
    });
    server.run()?;
    publisher.join().ok();
    Ok(())
}

/// `HH:MM:SS UTC` for a point in time.
fn utc_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

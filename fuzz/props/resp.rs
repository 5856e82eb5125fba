//! Properties of the RESP codec (`wire/resp.rs`).
//!
//! 1. Parse → encode → parse: a parsed value encodes to bytes that parse
//!    back whole, to a value that encodes to the same bytes (one canonical
//!    spelling; comparing encodings also compares NaN doubles sanely).
//! 2. Whole vs split: reading a stream of values from the whole input and
//!    from the same bytes arriving in pieces (cut where the input says)
//!    gives the same values and the same error, and "need more" never
//!    consumes anything.
//! 3. Each strict prefix of a value is "need more", never an error.
//! 4. `encode_command` is an array of bulk strings of `command_len` bytes,
//!    and `scan` answers what `parse` does, without building.
//! 5. A `RedisConn` (RESP2, subscribed, with requests pending) fed the
//!    input whole and in pieces reports the same events.
//! 6. The broker's reply parsers take any value without panicking, and a
//!    live payload they accept has exactly one spelling.
#![allow(dead_code)]

use std::time::Instant;

use pushwire::proto::redis::broker;
use pushwire::proto::redis::{RedisConfig, RedisConn, RedisEvent};
use pushwire::wire::resp::{
    command_len, encode_command, parse, scan, RespError, RespLimits, Value,
};

fn limits() -> RespLimits {
    RespLimits {
        max_bulk_len: 1 << 16,
        max_aggregate_len: 1 << 12,
        max_depth: 8,
        max_line_len: 1 << 10,
    }
}

pub fn check(data: &[u8]) {
    let l = limits();
    let whole = read_all(data, &l);
    round_trips(&whole.0, &l);
    prefixes(data, &l);
    split(data, &whole, &l);
    commands(data, &l);
    assert_eq!(scan(data, &l), parse(data, &l).map(|v| v.map(|(_, n)| n)));
    connection(data, &l);
    broker_parsers(data, &whole.0);
}

/// Values read one after another, and how the input ended: `None` with
/// the leftover length, or the error.
type Stream = (Vec<Value>, Result<usize, RespError>);

fn read_all(data: &[u8], l: &RespLimits) -> Stream {
    let mut values = Vec::new();
    let mut at = 0;
    loop {
        match parse(&data[at..], l) {
            Ok(Some((v, n))) => {
                assert!(n > 0 && n <= data.len() - at, "consumed {n}");
                values.push(v);
                at += n;
            }
            Ok(None) => return (values, Ok(data.len() - at)),
            Err(e) => {
                assert_eq!(e.status(), 502);
                return (values, Err(e));
            }
        }
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

fn round_trips(values: &[Value], l: &RespLimits) {
    for v in values {
        let once = encode(v);
        let (back, n) = parse(&once, l)
            .unwrap_or_else(|e| {
                panic!(
                    "re-parse failed: {e} on {:?}",
                    String::from_utf8_lossy(&once)
                )
            })
            .expect("an encoded value is complete");
        assert_eq!(n, once.len());
        assert_eq!(encode(&back), once, "encoding is not canonical");
    }
}

fn prefixes(data: &[u8], l: &RespLimits) {
    if let Ok(Some((_, n))) = parse(data, l) {
        // Quadratic; keep it to small values.
        for cut in 0..n.min(512) {
            assert_eq!(parse(&data[..cut], l), Ok(None), "prefix {cut} of {n}");
        }
    }
}

/// Feeds the input in pieces whose sizes come from the input itself, and
/// parses whenever a piece arrives, as a connection does.
fn split(data: &[u8], whole: &Stream, l: &RespLimits) {
    let mut buf: Vec<u8> = Vec::new();
    let mut values = Vec::new();
    let mut fed = 0;
    let mut error = None;
    let mut step = 0usize;
    'feed: while fed < data.len() {
        let size = 1 + usize::from(data[step % data.len()] % 7);
        step += 1;
        let end = (fed + size).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            match parse(&buf, l) {
                Ok(Some((v, n))) => {
                    values.push(v);
                    buf.drain(..n);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    let ended = match error {
        Some(e) => Err(e),
        None => Ok(buf.len()),
    };
    assert_eq!(
        values.iter().map(encode).collect::<Vec<_>>(),
        whole.0.iter().map(encode).collect::<Vec<_>>(),
        "split input gave other values"
    );
    assert_eq!(ended, whole.1, "split input ended otherwise");
}

fn commands(data: &[u8], l: &RespLimits) {
    let args: Vec<&[u8]> = data.split(|&b| b == b' ').take(64).collect();
    let mut out = Vec::new();
    encode_command(&mut out, &args);
    assert_eq!(out.len(), command_len(&args));
    let (v, n) = parse(&out, l).unwrap().unwrap();
    assert_eq!(n, out.len());
    let Value::Array(items) = v else {
        panic!("a command is an array")
    };
    assert_eq!(items.len(), args.len());
    for (item, arg) in items.iter().zip(&args) {
        assert_eq!(item, &Value::Bulk(arg.to_vec()));
    }
}

fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut step = 0usize;
    while at < data.len() {
        let size = 1 + usize::from(data[(step * 7) % data.len()] % 13);
        step += 1;
        let end = (at + size).min(data.len());
        out.push(&data[at..end]);
        at = end;
    }
    out
}

fn conn_events(pieces: &[&[u8]], l: &RespLimits, now: Instant) -> Vec<RedisEvent> {
    let mut config = RedisConfig::from_url("redis://h").unwrap();
    config.resp3 = false;
    config.limits.resp = *l;
    // Above any input: the limit on unparsed bytes would otherwise depend
    // on where the pieces are cut.
    config.limits.max_input_bytes = 1 << 24;
    let mut c = RedisConn::new(config);
    c.handle_connected(now);
    c.subscribe(&[b"ch"]).unwrap();
    for _ in 0..8 {
        c.command(&[b"PING"]).unwrap();
    }
    let n = c.poll_transmit().map_or(0, <[u8]>::len);
    c.consumed(n, now);
    for piece in pieces {
        if c.handle_read(piece, now).is_err() {
            assert!(c.is_failed());
            break;
        }
    }
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn connection(data: &[u8], l: &RespLimits) {
    let now = Instant::now();
    let whole = conn_events(&[data], l, now);
    let split = conn_events(&pieces(data), l, now);
    assert_eq!(whole.len(), split.len(), "split input gave other events");
    for (a, b) in whole.iter().zip(&split) {
        // Compare through the encoding where values are involved (NaN).
        match (a, b) {
            (RedisEvent::Reply { id: i, value: v }, RedisEvent::Reply { id: j, value: w }) => {
                assert_eq!(i, j);
                assert_eq!(encode(v), encode(w));
            }
            (RedisEvent::Push(v), RedisEvent::Push(w)) => {
                assert_eq!(
                    encode(&Value::Push(v.clone())),
                    encode(&Value::Push(w.clone()))
                );
            }
            _ => assert_eq!(a, b),
        }
    }
    // At most one failure, and it is the last event.
    let failed = whole
        .iter()
        .position(|e| matches!(e, RedisEvent::Failed(_)));
    if let Some(i) = failed {
        assert_eq!(i, whole.len() - 1);
    }
}

fn broker_parsers(data: &[u8], values: &[Value]) {
    for v in values {
        let _ = broker::parse_publish(v);
        let _ = broker::parse_entries(v, 1);
        let _ = broker::parse_replay(v);
        let _ = broker::parse_scan(v);
        // A delete always starts the new history at seq 0.
        if let Ok(Some((_, id))) = broker::parse_delete(v) {
            assert_eq!(id.seq, 0);
        }
        let _ = broker::parse_topic_info(v);
    }
    if let Ok(r) = broker::parse_live(data) {
        let again = format!(
            "{}\n{}\n{}\n{}",
            r.id,
            r.event.as_deref().unwrap_or(""),
            std::str::from_utf8(r.kind.as_bytes()).unwrap(),
            r.data
        );
        assert_eq!(again.as_bytes(), data, "a live payload has one spelling");
    }
}

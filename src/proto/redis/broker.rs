//! The hub's Redis commands as pure code: key names, the publish and
//! replay scripts, and the parsers from their replies to records.
//!
//! Before working on this file, read DESIGN.md "Cluster (Redis)" and
//! [`crate::hub::MessageId`]; in the Redis documentation, "Scripting with Lua"
//! (EVALSHA, NOSCRIPT, script effects), "Redis Streams" (entry ids, XADD
//! MAXLEN, XRANGE) and SCAN.
//!
//! # Layout
//!
//! Per topic `T`, three names sharing the hash tag `{T}`, so a Redis
//! Cluster puts all of one topic's keys in one slot (a script may only
//! touch keys of one slot):
//!
//! - `pushwire:{T}:meta`, a hash: `epoch` (the history's name) and `seq`
//!   (the last seq issued). It never expires: it outlives the stream, so a
//!   topic whose history expired or was evicted keeps its epoch and
//!   counts on. A lost meta key starts a new epoch: a gap for every
//!   client, never a reused id. An epoch is Redis's `TIME` in
//!   microseconds when the history started (16 digits, like the in-memory
//!   hub's), so a new one differs from the lost one unless Redis's clock
//!   went back to that very microsecond.
//! - `pushwire:{T}:stream`, a stream: one entry per message, fields `e`
//!   (event name, empty for `message`), `k` (payload kind), `d` (data).
//! - `pushwire:{T}:live`, the pub/sub channel live messages go out on.
//!
//! # Stream entry ids
//!
//! The entry of message `<epoch>-<seq>` has the stream id `<seq>-0`, not
//! `0-<seq>`: Redis reads an incomplete id `N` as `N-0` when it starts a
//! range, so "after seq N" is `XRANGE key N+1 +` with no exclusive-range
//! syntax (`(`, Redis 6.2+) and no arithmetic on the second half, and
//! `XTRIM MINID N` keeps seq N and later. The epoch is not in the id: a
//! stream only ever holds one epoch, because the publish script deletes
//! the stream when it starts a new one.
//!
//! # Live payload
//!
//! What `PUBLISH` sends: `<epoch>-<seq> LF <event> LF <kind> LF <data>`.
//! Ids, event names and kinds never contain LF, so the first three LFs
//! split it and the data is everything after, any bytes.

use std::fmt::Write as _;

use sha1::{Digest, Sha1};
use thiserror::Error;

use crate::hub::MessageId;
use crate::wire::resp::Value;

/// Publishes one message atomically. KEYS: meta, stream. ARGV: channel,
/// history length (MAXLEN ≈), event (`""` for none), kind, data, history
/// age in ms (0: none). Returns `{epoch, seq}`.
pub const PUBLISH_SCRIPT: &str = r#"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  -- A new history. Whatever stream is left belongs to an epoch nobody can
  -- name any more; its ids would collide with the new ones.
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = string.format('%d', redis.call('HINCRBY', KEYS[1], 'seq', 1))
-- A meta key created by a follower or a delete expires while unused; one
-- that names published messages must not.
redis.call('PERSIST', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0',
  'e', ARGV[3], 'k', ARGV[4], 'd', ARGV[5])
if tonumber(ARGV[6]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[1],
  epoch .. '-' .. seq .. '\n' .. ARGV[3] .. '\n' .. ARGV[4] .. '\n' .. ARGV[5])
return {epoch, seq}
"#;

/// Reads a topic's position and history after a seq, atomically (so the
/// entries and the epoch they are labelled with belong together). KEYS:
/// meta, stream. ARGV: first stream id wanted (`N` or `-`), most entries.
/// Returns `{epoch|nil, seq, oldest stream id|nil, entries}`.
pub const REPLAY_SCRIPT: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then
  return {false, 0, false, {}}
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = false
if #first > 0 then
  oldest = first[1][1]
end
return {meta[1], meta[2], oldest,
  redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])}
"#;

/// [`REPLAY_SCRIPT`] for a node that follows a topic: a topic without a
/// meta key gets one (a fresh epoch at seq 0, the stream deleted), so
/// that `<epoch>-0`, the cursor of an empty topic, names the same history
/// on every node. KEYS: meta, stream. ARGV: first stream id wanted, most
/// entries, how long (ms) a meta key created here lives unless a publish
/// keeps it or a follower reads it again (0: for ever). Returns what
/// [`REPLAY_SCRIPT`] returns.
pub const FOLLOW_SCRIPT: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then
  local t = redis.call('TIME')
  local epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  if tonumber(ARGV[3]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return {epoch, 0, false, {}}
end
-- A meta key that still lives on a timer (nothing published yet) is kept
-- alive while some node follows the topic.
if tonumber(ARGV[3]) > 0 and redis.call('PTTL', KEYS[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = false
if #first > 0 then
  oldest = first[1][1]
end
return {meta[1], meta[2], oldest,
  redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])}
"#;

/// `DELETE /topics/{t}` on Redis: drops the stream, starts a new epoch at
/// seq 0 at once (so every node agrees on the new `<epoch>-0`), and tells
/// every node on the live channel ([`DELETED_NOTICE`]). KEYS: meta,
/// stream. ARGV: channel, notice, meta lifetime in ms as for
/// [`FOLLOW_SCRIPT`]. Returns `false` for a topic without a meta key, else
/// `{entries dropped, new epoch}`.
pub const DELETE_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local n = redis.call('XLEN', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
local t = redis.call('TIME')
local epoch = t[1] .. string.format('%06d', tonumber(t[2]))
redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return {n, epoch}
"#;

/// Records one node's subscriber counts of a topic. KEYS: presence.
/// ARGV: node name, counts (`sse ws poll stream socketio`, or empty to
/// remove the node's entry), lifetime in ms. Each entry carries its own
/// expiry (a hash field cannot expire on its own before Redis 7.4): stale
/// ones are dropped here and ignored by [`TOPIC_INFO_SCRIPT`], and the
/// whole hash expires when no node refreshes it.
pub const PRESENCE_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local exp = tonumber(string.match(fields[i + 1], '^(%d+)'))
  if exp == nil or exp < now then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', now + tonumber(ARGV[3])) .. ' ' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
"#;

/// A topic's stats as `GET /topics/{t}` reports them. KEYS: meta,
/// stream, presence. ARGV: the asking node's name (its own counts it
/// knows better). Returns `false` for a topic without a meta key, else
/// `{epoch, seq, kept, oldest stream id|false, {sse, ws, poll, stream,
/// socketio}}`, the counts summed over the other nodes' live entries.
pub const TOPIC_INFO_SCRIPT: &str = r#"
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then
  return false
end
local n = redis.call('XLEN', KEYS[2])
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local oldest = false
if #first > 0 then
  oldest = first[1][1]
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sums = {0, 0, 0, 0, 0}
local fields = redis.call('HGETALL', KEYS[3])
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local parts = {}
    for w in string.gmatch(fields[i + 1], '%d+') do
      parts[#parts + 1] = tonumber(w)
    end
    if parts[1] and parts[1] >= now then
      for j = 1, 5 do
        sums[j] = sums[j] + (parts[j + 1] or 0)
      end
    end
  end
end
return {meta[1], meta[2], n, oldest, sums}
"#;

/// What [`DELETE_SCRIPT`] publishes on the live channel. It has no LF, so
/// it is never a message (a live payload has at least three).
pub const DELETED_NOTICE: &[u8] = b"deleted";

/// The SHA1 that `EVALSHA` names a script by (hex, lowercase).
pub fn script_sha1(script: &str) -> String {
    let digest = Sha1::digest(script.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Whether a reply says the script is not in the server's cache (after a
/// restart, a failover or `SCRIPT FLUSH`): send the same call as `EVAL`
/// with the text ([`Script::eval`]), which also caches it again.
pub fn is_noscript(reply: &Value) -> bool {
    reply
        .error_text()
        .is_some_and(|t| t.starts_with(b"NOSCRIPT"))
}

/// A command as owned arguments, ready for
/// [`RedisConn::command`](super::RedisConn::command) via [`Command::args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(pub Vec<Vec<u8>>);

impl Command {
    pub fn args(&self) -> Vec<&[u8]> {
        self.0.iter().map(Vec::as_slice).collect()
    }
}

/// A Lua script with its SHA1, computed once.
#[derive(Debug, Clone)]
pub struct Script {
    pub text: &'static str,
    pub sha1: String,
}

impl Script {
    pub fn new(text: &'static str) -> Script {
        Script {
            text,
            sha1: script_sha1(text),
        }
    }

    pub fn publish() -> Script {
        Script::new(PUBLISH_SCRIPT)
    }

    pub fn replay() -> Script {
        Script::new(REPLAY_SCRIPT)
    }

    /// `SCRIPT LOAD`: sent once per connection, it makes NOSCRIPT rare.
    pub fn load(&self) -> Command {
        Command(vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), self.text.into()])
    }

    /// `EVALSHA sha 2 KEYS… ARGV…`
    pub fn evalsha(&self, keys: [&[u8]; 2], argv: &[&[u8]]) -> Command {
        self.call(b"EVALSHA", self.sha1.as_bytes(), keys, argv)
    }

    /// `EVAL text 2 KEYS… ARGV…`: the fallback after NOSCRIPT.
    pub fn eval(&self, keys: [&[u8]; 2], argv: &[&[u8]]) -> Command {
        self.call(b"EVAL", self.text.as_bytes(), keys, argv)
    }

    /// `EVALSHA` (or, `eval`, `EVAL`) with any number of keys.
    pub fn call_keys(&self, keys: &[&[u8]], argv: &[&[u8]], eval: bool) -> Command {
        let (verb, script): (&[u8], &[u8]) = if eval {
            (b"EVAL", self.text.as_bytes())
        } else {
            (b"EVALSHA", self.sha1.as_bytes())
        };
        let mut args = vec![
            verb.to_vec(),
            script.to_vec(),
            keys.len().to_string().into_bytes(),
        ];
        args.extend(keys.iter().map(|k| k.to_vec()));
        args.extend(argv.iter().map(|a| a.to_vec()));
        Command(args)
    }

    fn call(&self, verb: &[u8], script: &[u8], keys: [&[u8]; 2], argv: &[&[u8]]) -> Command {
        let mut args = vec![verb.to_vec(), script.to_vec(), b"2".to_vec()];
        args.extend(keys.iter().map(|k| k.to_vec()));
        args.extend(argv.iter().map(|a| a.to_vec()));
        Command(args)
    }
}

/// The names of one topic's keys and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicKeys {
    pub meta: Vec<u8>,
    pub stream: Vec<u8>,
    pub channel: Vec<u8>,
    /// `pushwire:{T}:presence`, a hash: each node's subscriber counts.
    pub presence: Vec<u8>,
}

const PREFIX: &str = "pushwire:{";

impl TopicKeys {
    /// `topic` must be a valid topic name ([`crate::hub::valid_topic`]):
    /// none contains `{`, `}` or a glob character, which keeps the hash tag
    /// and SCAN patterns exact.
    pub fn new(topic: &str) -> TopicKeys {
        let name = |suffix: &str| format!("{PREFIX}{topic}}}:{suffix}").into_bytes();
        TopicKeys {
            meta: name("meta"),
            stream: name("stream"),
            channel: name("live"),
            presence: name("presence"),
        }
    }
}

/// The topic a live channel belongs to (`pushwire:{T}:live` → `T`).
pub fn topic_of_channel(channel: &[u8]) -> Option<&str> {
    topic_between(channel, b"}:live")
}

fn topic_between<'a>(name: &'a [u8], suffix: &[u8]) -> Option<&'a str> {
    let inner = name.strip_prefix(PREFIX.as_bytes())?.strip_suffix(suffix)?;
    std::str::from_utf8(inner)
        .ok()
        .filter(|t| crate::hub::valid_topic(t))
}

/// How a message's data is to be embedded in JSON (DESIGN.md "Payloads").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// UTF-8 text, embedded as a JSON string.
    Text,
    /// A JSON value, embedded as itself.
    Json,
}

impl PayloadKind {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            PayloadKind::Text => b"text",
            PayloadKind::Json => b"json",
        }
    }

    pub fn from_bytes(b: &[u8]) -> Option<PayloadKind> {
        match b {
            b"text" => Some(PayloadKind::Text),
            b"json" => Some(PayloadKind::Json),
            _ => None,
        }
    }
}

/// One message as Redis holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: MessageId,
    /// `None` is the event `message`.
    pub event: Option<String>,
    pub kind: PayloadKind,
    pub data: String,
}

/// How long a topic's history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// `XADD … MAXLEN ~ n`: at least this many entries kept; Redis trims
    /// whole nodes, so a few more may be.
    pub max_len: usize,
    /// The stream expires this long after the last publish (0: never).
    /// The meta key does not: the topic keeps its epoch.
    pub max_age_ms: u64,
}

/// The `EVALSHA` that publishes `data` on `topic`; its reply goes to
/// [`parse_publish`]. On NOSCRIPT, send [`publish_eval`] with the same
/// arguments.
pub fn publish(
    script: &Script,
    topic: &str,
    event: Option<&str>,
    kind: PayloadKind,
    data: &str,
    limits: HistoryLimits,
) -> Command {
    publish_call(script, topic, event, kind, data, limits, false)
}

/// [`publish`] as `EVAL`, for after NOSCRIPT.
pub fn publish_eval(
    script: &Script,
    topic: &str,
    event: Option<&str>,
    kind: PayloadKind,
    data: &str,
    limits: HistoryLimits,
) -> Command {
    publish_call(script, topic, event, kind, data, limits, true)
}

fn publish_call(
    script: &Script,
    topic: &str,
    event: Option<&str>,
    kind: PayloadKind,
    data: &str,
    limits: HistoryLimits,
    eval: bool,
) -> Command {
    let keys = TopicKeys::new(topic);
    let max_len = limits.max_len.max(1).to_string();
    let age = limits.max_age_ms.to_string();
    let argv: [&[u8]; 6] = [
        &keys.channel,
        max_len.as_bytes(),
        event.unwrap_or("").as_bytes(),
        kind.as_bytes(),
        data.as_bytes(),
        age.as_bytes(),
    ];
    let k = [keys.meta.as_slice(), keys.stream.as_slice()];
    if eval {
        script.eval(k, &argv)
    } else {
        script.evalsha(k, &argv)
    }
}

/// Why a reply could not be read as what the hub asked for.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BrokerError {
    /// Redis answered the command with an error (OOM, a script error, …).
    #[error("Redis refused: {0}")]
    Refused(String),
    /// The reply does not have the shape our scripts and commands return:
    /// someone else writes to our keys, or the script is not ours.
    #[error("unexpected reply shape: {0}")]
    Malformed(&'static str),
}

impl BrokerError {
    /// 503 when Redis refused (try again later), 502 when it answered
    /// nonsense.
    pub fn status(&self) -> u16 {
        match self {
            BrokerError::Refused(_) => 503,
            BrokerError::Malformed(_) => 502,
        }
    }
}

fn refused(v: &Value) -> Result<(), BrokerError> {
    match v.error_text() {
        Some(t) => Err(BrokerError::Refused(
            String::from_utf8_lossy(t).into_owned(),
        )),
        None => Ok(()),
    }
}

/// A number as Redis writes it in ids and Lua strings: digits only, no
/// leading zero, fitting a u64.
fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn number_value(v: &Value) -> Option<u64> {
    match v {
        Value::Integer(n) => u64::try_from(*n).ok(),
        other => number(other.as_bytes()?),
    }
}

/// The id the publish script issued.
pub fn parse_publish(reply: &Value) -> Result<MessageId, BrokerError> {
    refused(reply)?;
    match reply.as_items() {
        Some([epoch, seq]) => Ok(MessageId {
            epoch: number_value(epoch).ok_or(BrokerError::Malformed("epoch"))?,
            seq: number_value(seq)
                .filter(|&s| s > 0)
                .ok_or(BrokerError::Malformed("seq"))?,
        }),
        _ => Err(BrokerError::Malformed("publish reply is not {epoch, seq}")),
    }
}

/// A live message from the topic's channel.
pub fn parse_live(payload: &[u8]) -> Result<Record, BrokerError> {
    let mut parts = payload.splitn(4, |&b| b == b'\n');
    let (Some(id), Some(event), Some(kind), Some(data)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BrokerError::Malformed(
            "live payload has fewer than 4 parts",
        ));
    };
    let id: MessageId = std::str::from_utf8(id)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(BrokerError::Malformed("live id"))?;
    record(id, event, kind, data)
}

fn record(id: MessageId, event: &[u8], kind: &[u8], data: &[u8]) -> Result<Record, BrokerError> {
    let event = match event {
        b"" => None,
        e => Some(
            std::str::from_utf8(e)
                .ok()
                .filter(|e| crate::hub::valid_event(e))
                .ok_or(BrokerError::Malformed("event name"))?
                .to_string(),
        ),
    };
    Ok(Record {
        id,
        event,
        kind: PayloadKind::from_bytes(kind).ok_or(BrokerError::Malformed("payload kind"))?,
        data: String::from_utf8(data.to_vec()).map_err(|_| BrokerError::Malformed("data"))?,
    })
}

/// The seq of a stream id `<seq>-0`.
fn stream_seq(id: &[u8]) -> Option<u64> {
    number(id.strip_suffix(b"-0")?)
}

/// `XRANGE stream <after+1> + COUNT count`: the entries after seq `after`
/// (see the module comment for why no `(` is needed).
pub fn xrange_after(topic: &str, after: u64, count: usize) -> Command {
    let keys = TopicKeys::new(topic);
    Command(vec![
        b"XRANGE".to_vec(),
        keys.stream,
        after.saturating_add(1).to_string().into_bytes(),
        b"+".to_vec(),
        b"COUNT".to_vec(),
        count.to_string().into_bytes(),
    ])
}

/// `DEL meta stream` (DESIGN.md `DELETE /topics/{t}`): the history is
/// dropped with its epoch, so the next publish starts a new one, and every
/// follower sees that epoch change as a gap. The reply is the number of
/// keys removed.
pub fn delete_topic(topic: &str) -> Command {
    let keys = TopicKeys::new(topic);
    Command(vec![b"DEL".to_vec(), keys.meta, keys.stream])
}

/// XRANGE entries (`[[id, [field, value, …]], …]`) as records of `epoch`.
pub fn parse_entries(reply: &Value, epoch: u64) -> Result<Vec<Record>, BrokerError> {
    refused(reply)?;
    let entries = reply
        .as_items()
        .ok_or(BrokerError::Malformed("XRANGE reply is not an array"))?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some([id, fields]) = entry.as_items() else {
            return Err(BrokerError::Malformed("stream entry is not [id, fields]"));
        };
        let seq = id
            .as_bytes()
            .and_then(stream_seq)
            .filter(|&s| s > 0)
            .ok_or(BrokerError::Malformed("stream entry id is not <seq>-0"))?;
        let flat: Vec<&Value> = match fields {
            Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
            other => other
                .as_items()
                .ok_or(BrokerError::Malformed("stream entry fields"))?
                .iter()
                .collect(),
        };
        let (mut e, mut k, mut d) = (None, None, None);
        for pair in flat.chunks(2) {
            let [name, value] = pair else {
                return Err(BrokerError::Malformed("odd number of stream fields"));
            };
            let value = value.as_bytes();
            match name.as_bytes() {
                Some(b"e") => e = value,
                Some(b"k") => k = value,
                Some(b"d") => d = value,
                _ => {}
            }
        }
        let (Some(e), Some(k), Some(d)) = (e, k, d) else {
            return Err(BrokerError::Malformed("stream entry lacks e, k or d"));
        };
        out.push(record(MessageId { epoch, seq }, e, k, d)?);
    }
    Ok(out)
}

/// Where a topic stands and what it keeps after a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// `None`: the topic has no meta key (never published, or lost).
    pub epoch: Option<u64>,
    /// The last seq issued (0 before the first message).
    pub last_seq: u64,
    /// The oldest seq kept, if any is.
    pub oldest_seq: Option<u64>,
    pub records: Vec<Record>,
}

/// The replay script's call: the topic's position and up to `count`
/// records after seq `after` (`None`: from the oldest kept).
pub fn replay(script: &Script, topic: &str, after: Option<u64>, count: usize) -> Command {
    let keys = TopicKeys::new(topic);
    let start = match after {
        Some(seq) => seq.saturating_add(1).to_string(),
        None => "-".to_string(),
    };
    let count = count.to_string();
    script.evalsha(
        [&keys.meta, &keys.stream],
        &[start.as_bytes(), count.as_bytes()],
    )
}

pub fn parse_replay(reply: &Value) -> Result<Replay, BrokerError> {
    refused(reply)?;
    let Some([epoch, seq, oldest, entries]) = reply.as_items() else {
        return Err(BrokerError::Malformed("replay reply is not 4 items"));
    };
    if epoch.is_null() {
        return Ok(Replay {
            epoch: None,
            last_seq: 0,
            oldest_seq: None,
            records: Vec::new(),
        });
    }
    let epoch = number_value(epoch).ok_or(BrokerError::Malformed("epoch"))?;
    let last_seq = number_value(seq).ok_or(BrokerError::Malformed("seq"))?;
    let oldest_seq = match oldest {
        v if v.is_null() => None,
        v => Some(
            v.as_bytes()
                .and_then(stream_seq)
                .ok_or(BrokerError::Malformed("oldest id"))?,
        ),
    };
    Ok(Replay {
        epoch: Some(epoch),
        last_seq,
        oldest_seq,
        records: parse_entries(entries, epoch)?,
    })
}

/// [`replay`] through [`FOLLOW_SCRIPT`]: `meta_ttl_ms` is how long a meta
/// key it has to create lives without a publish (0: for ever).
pub fn follow(
    script: &Script,
    topic: &str,
    after: Option<u64>,
    count: usize,
    meta_ttl_ms: u64,
    eval: bool,
) -> Command {
    let keys = TopicKeys::new(topic);
    let start = match after {
        Some(seq) => seq.saturating_add(1).to_string(),
        None => "-".to_string(),
    };
    let count = count.to_string();
    let ttl = meta_ttl_ms.to_string();
    let k = [keys.meta.as_slice(), keys.stream.as_slice()];
    let argv: [&[u8]; 3] = [start.as_bytes(), count.as_bytes(), ttl.as_bytes()];
    if eval {
        script.eval(k, &argv)
    } else {
        script.evalsha(k, &argv)
    }
}

/// The call of [`DELETE_SCRIPT`] for `topic`.
pub fn delete(script: &Script, topic: &str, meta_ttl_ms: u64, eval: bool) -> Command {
    let keys = TopicKeys::new(topic);
    let ttl = meta_ttl_ms.to_string();
    let k = [keys.meta.as_slice(), keys.stream.as_slice()];
    let argv: [&[u8]; 3] = [&keys.channel, DELETED_NOTICE, ttl.as_bytes()];
    if eval {
        script.eval(k, &argv)
    } else {
        script.evalsha(k, &argv)
    }
}

/// The reply of [`DELETE_SCRIPT`]: `None` for a topic that did not exist,
/// else the entries dropped and the new history's `<epoch>-0`.
pub fn parse_delete(reply: &Value) -> Result<Option<(u64, MessageId)>, BrokerError> {
    refused(reply)?;
    if reply.is_null() || matches!(reply, Value::Boolean(false)) {
        return Ok(None);
    }
    match reply.as_items() {
        Some([n, epoch]) => Ok(Some((
            number_value(n).ok_or(BrokerError::Malformed("dropped count"))?,
            MessageId {
                epoch: number_value(epoch).ok_or(BrokerError::Malformed("epoch"))?,
                seq: 0,
            },
        ))),
        _ => Err(BrokerError::Malformed("delete reply is not {n, epoch}")),
    }
}

/// The call of [`PRESENCE_SCRIPT`]: `counts` in [`crate::hub::Transport::ALL`]
/// order; `None` removes this node's entry.
pub fn presence(
    script: &Script,
    topic: &str,
    node: &str,
    counts: Option<[usize; 5]>,
    ttl_ms: u64,
    eval: bool,
) -> Command {
    let keys = TopicKeys::new(topic);
    let counts = counts
        .map(|c| c.iter().map(usize::to_string).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let ttl = ttl_ms.to_string();
    let argv: [&[u8]; 3] = [node.as_bytes(), counts.as_bytes(), ttl.as_bytes()];
    script.call_keys(&[&keys.presence], &argv, eval)
}

/// The call of [`TOPIC_INFO_SCRIPT`] from node `node`.
pub fn topic_info(script: &Script, topic: &str, node: &str, eval: bool) -> Command {
    let keys = TopicKeys::new(topic);
    let k: [&[u8]; 3] = [&keys.meta, &keys.stream, &keys.presence];
    script.call_keys(&k, &[node.as_bytes()], eval)
}

/// A topic as Redis holds it, for `GET /topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    pub epoch: u64,
    pub last_seq: u64,
    /// Entries in the stream.
    pub kept: u64,
    pub oldest_seq: Option<u64>,
    /// Subscribers on the other nodes, in [`crate::hub::Transport::ALL`]
    /// order.
    pub others: [u64; 5],
}

/// The reply of [`TOPIC_INFO_SCRIPT`]: `None` for a topic Redis does not
/// know.
pub fn parse_topic_info(reply: &Value) -> Result<Option<TopicState>, BrokerError> {
    refused(reply)?;
    if reply.is_null() || matches!(reply, Value::Boolean(false)) {
        return Ok(None);
    }
    let Some([epoch, seq, kept, oldest, sums]) = reply.as_items() else {
        return Err(BrokerError::Malformed("topic info is not 5 items"));
    };
    let mut others = [0u64; 5];
    let sums = sums
        .as_items()
        .ok_or(BrokerError::Malformed("presence sums"))?;
    for (slot, v) in others.iter_mut().zip(sums) {
        *slot = number_value(v).ok_or(BrokerError::Malformed("presence count"))?;
    }
    let oldest_seq = match oldest {
        v if v.is_null() || matches!(v, Value::Boolean(false)) => None,
        v => Some(
            v.as_bytes()
                .and_then(stream_seq)
                .ok_or(BrokerError::Malformed("oldest id"))?,
        ),
    };
    Ok(Some(TopicState {
        epoch: number_value(epoch).ok_or(BrokerError::Malformed("epoch"))?,
        last_seq: number_value(seq).ok_or(BrokerError::Malformed("seq"))?,
        kept: number_value(kept).ok_or(BrokerError::Malformed("kept"))?,
        oldest_seq,
        others,
    }))
}

/// `SCAN cursor MATCH pushwire:{<prefix>*}:meta COUNT count`: one page of
/// topic names. Start at cursor 0; the scan is done when the returned
/// cursor is 0 again. A page may be empty, and a topic may appear twice
/// (SCAN's own guarantees).
pub fn scan_topics(cursor: u64, prefix: &str, count: usize) -> Command {
    let mut pattern = String::from(PREFIX);
    for c in prefix.chars() {
        // Topic names have no glob characters; escape them anyway, so a
        // prefix can never widen the match.
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("*}:meta");
    Command(vec![
        b"SCAN".to_vec(),
        cursor.to_string().into_bytes(),
        b"MATCH".to_vec(),
        pattern.into_bytes(),
        b"COUNT".to_vec(),
        count.to_string().into_bytes(),
    ])
}

/// The next cursor and the topics of one SCAN page. Keys that are not a
/// valid topic's meta key are skipped.
pub fn parse_scan(reply: &Value) -> Result<(u64, Vec<String>), BrokerError> {
    refused(reply)?;
    let Some([cursor, keys]) = reply.as_items() else {
        return Err(BrokerError::Malformed("SCAN reply is not [cursor, keys]"));
    };
    let cursor = number_value(cursor).ok_or(BrokerError::Malformed("SCAN cursor"))?;
    let keys = keys.as_items().ok_or(BrokerError::Malformed("SCAN keys"))?;
    let topics = keys
        .iter()
        .filter_map(|k| topic_between(k.as_bytes()?, b"}:meta"))
        .map(str::to_string)
        .collect();
    Ok((cursor, topics))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn keys_share_the_topic_hash_tag() {
        let k = TopicKeys::new("news.eu");
        assert_eq!(k.meta, b"pushwire:{news.eu}:meta");
        assert_eq!(k.stream, b"pushwire:{news.eu}:stream");
        assert_eq!(k.channel, b"pushwire:{news.eu}:live");
        assert_eq!(topic_of_channel(&k.channel), Some("news.eu"));
        assert_eq!(topic_of_channel(b"pushwire:{a b}:live"), None);
        assert_eq!(topic_of_channel(b"other"), None);
    }

    #[test]
    fn script_sha1_is_the_hex_digest() {
        // SHA1("") from FIPS 180 test vectors.
        assert_eq!(script_sha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(Script::publish().sha1.len(), 40);
    }

    #[test]
    fn publish_builds_evalsha_and_eval() {
        let s = Script::publish();
        let limits = HistoryLimits {
            max_len: 1000,
            max_age_ms: 3_600_000,
        };
        let c = publish(&s, "t", Some("ev"), PayloadKind::Json, "{}", limits);
        let want: Vec<&[u8]> = vec![
            b"EVALSHA",
            s.sha1.as_bytes(),
            b"2",
            b"pushwire:{t}:meta",
            b"pushwire:{t}:stream",
            b"pushwire:{t}:live",
            b"1000",
            b"ev",
            b"json",
            b"{}",
            b"3600000",
        ];
        assert_eq!(c.args(), want);
        let e = publish_eval(&s, "t", None, PayloadKind::Text, "x", limits);
        assert_eq!(e.0[0], b"EVAL");
        assert_eq!(e.0[1], PUBLISH_SCRIPT.as_bytes());
        assert_eq!(e.0[7], b"");
        assert!(is_noscript(&Value::Error(
            b"NOSCRIPT No matching script. Please use EVAL.".to_vec()
        )));
        assert!(!is_noscript(&Value::Error(b"ERR x".to_vec())));
    }

    #[test]
    fn publish_reply_is_epoch_and_seq() {
        let reply = Value::Array(vec![bulk("1796160691510066"), Value::Integer(5)]);
        assert_eq!(
            parse_publish(&reply),
            Ok(MessageId {
                epoch: 1796160691510066,
                seq: 5
            })
        );
        assert_eq!(
            parse_publish(&Value::Error(b"OOM command not allowed".to_vec())),
            Err(BrokerError::Refused("OOM command not allowed".into()))
        );
        assert!(parse_publish(&Value::Array(vec![bulk("1"), Value::Integer(0)])).is_err());
        assert!(parse_publish(&Value::Array(vec![bulk("01"), Value::Integer(1)])).is_err());
    }

    #[test]
    fn live_payload_round_trip() {
        let r = parse_live(b"17-3\nev\ntext\nline one\nline two").unwrap();
        assert_eq!(
            r,
            Record {
                id: MessageId { epoch: 17, seq: 3 },
                event: Some("ev".into()),
                kind: PayloadKind::Text,
                data: "line one\nline two".into(),
            }
        );
        assert_eq!(parse_live(b"17-4\n\njson\n").unwrap().event, None);
        assert!(parse_live(b"17-4\n\njson").is_err());
        assert!(parse_live(b"17\n\njson\nx").is_err());
        assert!(parse_live(b"17-4\nbad event\njson\nx").is_err());
        assert!(parse_live(b"17-4\n\nxml\nx").is_err());
        assert!(parse_live(b"17-4\n\ntext\n\xff").is_err());
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn xrange_after_a_cursor() {
        assert_eq!(
            xrange_after("t", 5, 100).args(),
            vec![
                &b"XRANGE"[..],
                b"pushwire:{t}:stream",
                b"6",
                b"+",
                b"COUNT",
                b"100"
            ]
        );
        let reply = Value::Array(vec![
            entry("6-0", &["e", "", "k", "text", "d", "hello"]),
            entry("7-0", &["d", "{}", "k", "json", "e", "ev"]),
        ]);
        let records = parse_entries(&reply, 9).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].id, MessageId { epoch: 9, seq: 6 });
        assert_eq!(records[0].data, "hello");
        assert_eq!(records[1].event.as_deref(), Some("ev"));
        assert_eq!(records[1].kind, PayloadKind::Json);
        for bad in [
            entry("6-1", &["e", "", "k", "text", "d", "x"]),
            entry("0-0", &["e", "", "k", "text", "d", "x"]),
            entry("6-0", &["e", "", "k", "text"]),
            entry("6-0", &["e", "", "k", "text", "d"]),
        ] {
            assert!(parse_entries(&Value::Array(vec![bad]), 9).is_err());
        }
    }

    #[test]
    fn replay_reply() {
        let s = Script::replay();
        let c = replay(&s, "t", Some(2), 10);
        assert_eq!(&c.args()[5..], &[&b"3"[..], b"10"]);
        assert_eq!(replay(&s, "t", None, 10).0[5], b"-");
        let none = Value::Array(vec![
            Value::Null,
            Value::Integer(0),
            Value::Null,
            Value::Array(vec![]),
        ]);
        assert_eq!(parse_replay(&none).unwrap().epoch, None);
        let some = Value::Array(vec![
            bulk("42"),
            bulk("7"),
            bulk("6-0"),
            Value::Array(vec![entry("7-0", &["e", "", "k", "text", "d", "x"])]),
        ]);
        let r = parse_replay(&some).unwrap();
        assert_eq!((r.epoch, r.last_seq, r.oldest_seq), (Some(42), 7, Some(6)));
        assert_eq!(r.records[0].id, MessageId { epoch: 42, seq: 7 });
    }

    #[test]
    fn scan_topics_by_prefix() {
        assert_eq!(
            scan_topics(0, "news.", 100).args(),
            vec![
                &b"SCAN"[..],
                b"0",
                b"MATCH",
                b"pushwire:{news.*}:meta",
                b"COUNT",
                b"100"
            ]
        );
        assert_eq!(scan_topics(0, "a*", 1).0[3], b"pushwire:{a\\**}:meta");
        let reply = Value::Array(vec![
            bulk("17"),
            Value::Array(vec![
                bulk("pushwire:{a}:meta"),
                bulk("pushwire:{b}:stream"),
                bulk("pushwire:{bad topic}:meta"),
            ]),
        ]);
        assert_eq!(parse_scan(&reply), Ok((17, vec!["a".to_string()])));
    }
}

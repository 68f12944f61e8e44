//! The stored records: the event envelope, the history step, the trace span, the pruned
//! history base and the state cell value. Each has one binary encoding (little-endian,
//! length-prefixed, a leading format byte) and a decoder that refuses anything else with
//! [`Error::Corrupt`]; the decoders are fuzzed (`fuzz/fuzz_targets/agent_records.rs`).
//!
//! Event payloads are stored as the JSON text the caller gave (validated once, at append) and
//! parsed only by [`Event::payload`]: replaying 10K events decodes envelopes, never JSON.

use std::collections::BTreeMap;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};

/// A 32-byte BLAKE3 chain hash.
pub type Hash = [u8; 32];

/// The hash before the first event of any run.
pub const GENESIS: Hash = [0; 32];

const EVENT_FORMAT: u8 = 0xE1;
const STEP_FORMAT: u8 = 0xB1;
const SPAN_FORMAT: u8 = 0x51;
const BASE_FORMAT: u8 = 0xBA;

/// The chain hash of one event: BLAKE3 over the previous hash, the sequence, the time, the
/// type (length-prefixed) and the payload bytes. It covers everything in the envelope but the
/// step, which is bookkeeping of this store, not content.
pub fn chain_hash(prev: &Hash, seq: u64, time_ms: u64, event_type: &str, payload: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&time_ms.to_le_bytes());
    h.update(
        &u32::try_from(event_type.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    h.update(event_type.as_bytes());
    h.update(payload);
    *h.finalize().as_bytes()
}

/// One event of a run's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Dense sequence within the run (a fork continues its parent's numbering).
    pub seq: u64,
    /// The history step that appended it.
    pub step: u64,
    /// Append time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The chain hash ([`chain_hash`]) of this event.
    pub hash: Hash,
    /// The caller's event type.
    pub event_type: String,
    payload: Payload,
}

/// An event's payload: the tail of its stored envelope, sharing the engine's reference-counted
/// value rather than copying it (a replay of 10,000 events would otherwise copy each payload).
#[derive(Clone)]
struct Payload {
    envelope: cairn::Value,
    start: usize,
}

impl Payload {
    fn as_slice(&self) -> &[u8] {
        self.envelope.get(self.start..).unwrap_or_default()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Payload {}

impl std::fmt::Debug for Payload {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Payload")
            .field("bytes", &self.as_slice())
            .finish()
    }
}

impl Event {
    /// The payload's JSON text, as appended.
    pub fn payload_bytes(&self) -> &[u8] {
        self.payload.as_slice()
    }
    /// The payload, parsed now.
    pub fn payload(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(self.payload.as_slice()).map_err(|e| Error::InvalidJson {
            what: "event payload",
            reason: e.to_string(),
        })
    }

    /// Encodes the envelope.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_event(
            self.seq,
            self.step,
            self.time_ms,
            &self.hash,
            &self.event_type,
            self.payload.as_slice(),
        )
    }

    /// Decodes an envelope.
    pub fn decode(bytes: &[u8]) -> Result<Event> {
        Event::decode_value(cairn::Value::from_slice(bytes))
    }

    /// Decodes an envelope read from the engine, keeping the payload in the value it came in.
    pub(crate) fn decode_value(envelope: cairn::Value) -> Result<Event> {
        let mut r = Reader::new(&envelope, "event");
        if r.u8()? != EVENT_FORMAT {
            return Err(Error::corrupt("event", "unknown format"));
        }
        let seq = r.u64()?;
        let step = r.u64()?;
        let time_ms = r.u64()?;
        let hash = r.array32()?;
        let event_type = r.string()?;
        let payload_len = r.bytes()?.len();
        r.end()?;
        // The payload is the envelope's last field: nothing follows it.
        let start = envelope.len().saturating_sub(payload_len);
        Ok(Event {
            seq,
            step,
            time_ms,
            hash,
            event_type,
            payload: Payload { envelope, start },
        })
    }
}

pub(crate) fn encode_event(
    seq: u64,
    step: u64,
    time_ms: u64,
    hash: &Hash,
    event_type: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut w = Writer::with_capacity(1 + 24 + 32 + 8 + event_type.len() + payload.len());
    w.u8(EVENT_FORMAT)
        .u64(seq)
        .u64(step)
        .u64(time_ms)
        .raw(hash)
        .bytes(event_type.as_bytes())
        .bytes(payload);
    w.finish()
}

/// Which primitive a mutation touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Primitive {
    /// Plain key-value.
    Kv,
    /// A state cell.
    Cell,
    /// A JSON document.
    Doc,
    /// An event append.
    Event,
    /// A trace span.
    Span,
}

impl Primitive {
    fn code(self) -> u8 {
        match self {
            Primitive::Kv => 1,
            Primitive::Cell => 2,
            Primitive::Doc => 3,
            Primitive::Event => 4,
            Primitive::Span => 5,
        }
    }
    fn from_code(c: u8) -> Result<Primitive> {
        Ok(match c {
            1 => Primitive::Kv,
            2 => Primitive::Cell,
            3 => Primitive::Doc,
            4 => Primitive::Event,
            5 => Primitive::Span,
            _ => return Err(Error::corrupt("history step", "unknown primitive")),
        })
    }
}

/// What a mutation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Wrote the whole value (`after`); `before` is the value it replaced.
    Put,
    /// Removed the whole value (`before`).
    Delete,
    /// Set a JSON Pointer path of a document (`path`) to `after`; `before` was there.
    PathSet,
    /// Removed a JSON Pointer path of a document; `before` was there.
    PathDelete,
    /// Appended a record (an event or span) whose number is the key.
    Append,
}

impl Op {
    fn code(self) -> u8 {
        match self {
            Op::Put => 1,
            Op::Delete => 2,
            Op::PathSet => 3,
            Op::PathDelete => 4,
            Op::Append => 5,
        }
    }
    fn from_code(c: u8) -> Result<Op> {
        Ok(match c {
            1 => Op::Put,
            2 => Op::Delete,
            3 => Op::PathSet,
            4 => Op::PathDelete,
            5 => Op::Append,
            _ => return Err(Error::corrupt("history step", "unknown op")),
        })
    }
}

/// One mutation in a run's history. Keys are run-relative: a KV key, a cell or document
/// name, or (for appends) the event sequence or span id, big-endian.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    /// The primitive.
    pub primitive: Primitive,
    /// What was done.
    pub op: Op,
    /// The run-relative key.
    pub key: Vec<u8>,
    /// The JSON Pointer, for document path operations.
    pub path: Option<String>,
    /// The value before (cells: version u64 LE then the value; documents: JSON text).
    pub before: Option<Vec<u8>>,
    /// The value after, in the same encoding.
    pub after: Option<Vec<u8>>,
}

/// One history step: the mutations of one commit of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Commit time, ms (never earlier than the step before).
    pub time_ms: u64,
    /// The run's event count after this step.
    pub events_after: u64,
    /// The run's span count after this step.
    pub spans_after: u64,
    /// The mutations, in the order they were made.
    pub mutations: Vec<Mutation>,
}

impl Step {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + self.mutations.len() * 32);
        w.u8(STEP_FORMAT)
            .u64(self.time_ms)
            .u64(self.events_after)
            .u64(self.spans_after)
            .u32(u32::try_from(self.mutations.len()).unwrap_or(u32::MAX));
        for m in &self.mutations {
            w.u8(m.primitive.code()).u8(m.op.code()).bytes(&m.key);
            w.opt_bytes(m.path.as_deref().map(str::as_bytes));
            w.opt_bytes(m.before.as_deref());
            w.opt_bytes(m.after.as_deref());
        }
        w.finish()
    }

    /// Decodes a step record.
    pub fn decode(bytes: &[u8]) -> Result<Step> {
        let mut r = Reader::new(bytes, "history step");
        if r.u8()? != STEP_FORMAT {
            return Err(Error::corrupt("history step", "unknown format"));
        }
        let time_ms = r.u64()?;
        let events_after = r.u64()?;
        let spans_after = r.u64()?;
        let n = r.count(9)?;
        let mut mutations = Vec::with_capacity(n);
        for _ in 0..n {
            let primitive = Primitive::from_code(r.u8()?)?;
            let op = Op::from_code(r.u8()?)?;
            let key = r.bytes()?.to_vec();
            let path = match r.opt_bytes()? {
                None => None,
                Some(p) => Some(
                    String::from_utf8(p.to_vec())
                        .map_err(|_| Error::corrupt("history step", "path not UTF-8"))?,
                ),
            };
            let before = r.opt_bytes()?.map(<[u8]>::to_vec);
            let after = r.opt_bytes()?.map(<[u8]>::to_vec);
            mutations.push(Mutation {
                primitive,
                op,
                key,
                path,
                before,
                after,
            });
        }
        r.end()?;
        Ok(Step {
            time_ms,
            events_after,
            spans_after,
            mutations,
        })
    }
}

/// What a span records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpanKind {
    /// A tool call.
    ToolCall,
    /// A decision.
    Decision,
    /// A thought.
    Thought,
    /// An error.
    Error,
    /// Anything else, named.
    Custom(String),
}

impl SpanKind {
    pub(crate) fn code(&self) -> u8 {
        match self {
            SpanKind::ToolCall => 1,
            SpanKind::Decision => 2,
            SpanKind::Thought => 3,
            SpanKind::Error => 4,
            SpanKind::Custom(_) => 5,
        }
    }
}

/// One trace span. Spans are append-only: recorded once, with their duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Dense id within the run (a fork continues its parent's numbering).
    pub id: u64,
    /// The parent span, or `None` for a root.
    pub parent: Option<u64>,
    /// The kind.
    pub kind: SpanKind,
    /// A short name (tool name, decision label).
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Start time, ms since the Unix epoch.
    pub start_ms: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
    /// The content as JSON text.
    pub content: Vec<u8>,
}

impl Span {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.name.len() + self.content.len());
        w.u8(SPAN_FORMAT).u64(self.id);
        match self.parent {
            None => w.u8(0),
            Some(p) => w.u8(1).u64(p),
        };
        w.u8(self.kind.code());
        if let SpanKind::Custom(name) = &self.kind {
            w.bytes(name.as_bytes());
        }
        w.bytes(self.name.as_bytes())
            .u32(u32::try_from(self.tags.len()).unwrap_or(u32::MAX));
        for t in &self.tags {
            w.bytes(t.as_bytes());
        }
        w.u64(self.start_ms)
            .u64(self.duration_us)
            .bytes(&self.content);
        w.finish()
    }

    /// Decodes a span record.
    pub fn decode(bytes: &[u8]) -> Result<Span> {
        let mut r = Reader::new(bytes, "span");
        if r.u8()? != SPAN_FORMAT {
            return Err(Error::corrupt("span", "unknown format"));
        }
        let id = r.u64()?;
        let parent = match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            _ => return Err(Error::corrupt("span", "bad option tag")),
        };
        let kind = match r.u8()? {
            1 => SpanKind::ToolCall,
            2 => SpanKind::Decision,
            3 => SpanKind::Thought,
            4 => SpanKind::Error,
            5 => SpanKind::Custom(r.string()?),
            _ => return Err(Error::corrupt("span", "unknown kind")),
        };
        let name = r.string()?;
        let n = r.count(4)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            tags.push(r.string()?);
        }
        let start_ms = r.u64()?;
        let duration_us = r.u64()?;
        let content = r.bytes()?.to_vec();
        r.end()?;
        Ok(Span {
            id,
            parent,
            kind,
            name,
            tags,
            start_ms,
            duration_us,
            content,
        })
    }
}

/// A state cell's value and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Starts at 1 on `init`, +1 on every write.
    pub version: u64,
    /// The value.
    pub value: Vec<u8>,
}

impl Cell {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + self.value.len());
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(&self.value);
        v
    }
    /// Decodes a stored cell (version u64 LE, then the value).
    pub fn decode(bytes: &[u8]) -> Result<Cell> {
        let (head, value) = bytes
            .split_at_checked(8)
            .ok_or(Error::corrupt("cell", "truncated"))?;
        let version = u64::from_le_bytes(
            head.try_into()
                .map_err(|_| Error::corrupt("cell", "truncated"))?,
        );
        Ok(Cell {
            version,
            value: value.to_vec(),
        })
    }
}

/// A run's KV, cells and documents at one step: what a pruned history starts from.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Base {
    pub(crate) step: u64,
    pub(crate) events_after: u64,
    pub(crate) spans_after: u64,
    pub(crate) time_ms: u64,
    pub(crate) kv: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) cells: BTreeMap<String, Cell>,
    pub(crate) docs: BTreeMap<String, Vec<u8>>,
}

impl Base {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(BASE_FORMAT)
            .u64(self.step)
            .u64(self.events_after)
            .u64(self.spans_after)
            .u64(self.time_ms);
        w.u32(u32::try_from(self.kv.len()).unwrap_or(u32::MAX));
        for (k, v) in &self.kv {
            w.bytes(k).bytes(v);
        }
        w.u32(u32::try_from(self.cells.len()).unwrap_or(u32::MAX));
        for (k, c) in &self.cells {
            w.bytes(k.as_bytes()).bytes(&c.encode());
        }
        w.u32(u32::try_from(self.docs.len()).unwrap_or(u32::MAX));
        for (k, d) in &self.docs {
            w.bytes(k.as_bytes()).bytes(d);
        }
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Base> {
        let mut r = Reader::new(bytes, "history base");
        if r.u8()? != BASE_FORMAT {
            return Err(Error::corrupt("history base", "unknown format"));
        }
        let mut base = Base {
            step: r.u64()?,
            events_after: r.u64()?,
            spans_after: r.u64()?,
            time_ms: r.u64()?,
            ..Base::default()
        };
        for _ in 0..r.count(8)? {
            let k = r.bytes()?.to_vec();
            base.kv.insert(k, r.bytes()?.to_vec());
        }
        for _ in 0..r.count(8)? {
            let k = r.string()?;
            base.cells.insert(k, Cell::decode(r.bytes()?)?);
        }
        for _ in 0..r.count(8)? {
            let k = r.string()?;
            base.docs.insert(k, r.bytes()?.to_vec());
        }
        r.end()?;
        Ok(base)
    }
}

#[cfg(feature = "fuzzing")]
/// Decodes `bytes` as each record type; for the fuzz target. Returns how many decoded, and
/// checks that each decoded record re-encodes to exactly its bytes (one encoding per record).
pub fn decode_any(bytes: &[u8]) -> std::result::Result<usize, String> {
    let mut decoded = 0;
    if let Ok(e) = Event::decode(bytes) {
        if e.encode() != bytes {
            return Err("event re-encodes differently".into());
        }
        decoded += 1;
    }
    if let Ok(s) = Step::decode(bytes) {
        if s.encode() != bytes {
            return Err("step re-encodes differently".into());
        }
        decoded += 1;
    }
    if let Ok(s) = Span::decode(bytes) {
        if s.encode() != bytes {
            return Err("span re-encodes differently".into());
        }
        decoded += 1;
    }
    if let Ok(b) = Base::decode(bytes) {
        // Maps reorder keys and drop duplicates, so only a canonical base re-encodes exactly.
        let again = Base::decode(&b.encode()).map_err(|e| e.to_string())?;
        if again != b {
            return Err("base does not round-trip".into());
        }
        decoded += 1;
    }
    Ok(decoded)
}

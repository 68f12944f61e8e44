//! The per-primitive API on [`Agent`]: one-shot writes (each one commit, one history step)
//! and reads at the run's head. Event and span reads follow a fork's lineage: numbers below
//! the fork point are read from the parent's keys, shared rather than copied.

use std::collections::BTreeMap;

use crate::agent::{lineage_at, read_events_in, read_spans_in, Agent};
use crate::error::{Error, Result};
use crate::keys;
use crate::record::{chain_hash, Cell, Event, Hash, Span, SpanKind, GENESIS};
use crate::run::RunId;
use crate::tx::SpanInput;

/// What [`Agent::verify_chain`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Events checked.
    pub events: u64,
    /// The hash of the last event (or [`GENESIS`] for an empty log).
    pub head: Hash,
    /// The first sequence that is missing, out of place or whose hash does not match, if any.
    pub first_bad: Option<u64>,
}

impl ChainReport {
    /// Whether every event is present and chained.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// A filter over a run's spans; every field set must match.
#[derive(Clone, Debug, Default)]
pub struct SpanQuery {
    /// Only this kind (read from the kind index).
    pub kind: Option<SpanKind>,
    /// Only spans with this tag.
    pub tag: Option<String>,
    /// Only spans starting at or after this time (ms).
    pub from_ms: Option<u64>,
    /// Only spans starting before this time (ms).
    pub to_ms: Option<u64>,
}

/// A span and its children, for [`Agent::tree`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanNode {
    /// The span.
    pub span: Span,
    /// Its children, in id order.
    pub children: Vec<SpanNode>,
}

impl Agent {
    // ----- events ------------------------------------------------------------------------------

    /// Appends an event (one commit). See [`RunTx::append`](crate::RunTx::append).
    pub fn append(
        &self,
        run: RunId,
        event_type: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<(u64, Hash)> {
        let payload = payload.as_ref();
        self.write(run, |tx| tx.append(event_type, payload))
    }

    /// The event at `seq`, if the run has it.
    pub fn read_event(&self, run: RunId, seq: u64) -> Result<Option<Event>> {
        Ok(self
            .read_range(run, seq, seq.saturating_add(1))?
            .into_iter()
            .next())
    }

    /// Events `[from, to)`, in sequence order.
    pub fn read_range(&self, run: RunId, from: u64, to: u64) -> Result<Vec<Event>> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        read_events_in(&snap, &lineage, from, to)
    }

    /// Every event of the run.
    pub fn read_all(&self, run: RunId) -> Result<Vec<Event>> {
        self.read_range(run, 0, u64::MAX)
    }

    /// Events of one type, in sequence order (from the type index; no scan of other events).
    pub fn read_by_type(&self, run: RunId, event_type: &str) -> Result<Vec<Event>> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        let mut out = Vec::new();
        for seg in &lineage {
            let seqs: Vec<u64> = snap
                .scan_prefix(keys::event_type_prefix(seg.run, event_type))
                .filter_map(|(k, _)| keys::trailing_u64(&k))
                .filter(|s| *s >= seg.lo.events && *s < seg.hi.events)
                .collect();
            for seq in seqs {
                let raw = snap
                    .get(keys::numbered(seg.run, keys::EVENT, seq))
                    .ok_or(Error::corrupt("event", "type index without event"))?;
                out.push(Event::decode_value(raw)?);
            }
        }
        Ok(out)
    }

    /// Recomputes the hash chain from the first event and names the first bad sequence.
    pub fn verify_chain(&self, run: RunId) -> Result<ChainReport> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        let mut prev = GENESIS;
        let mut expected = 0_u64;
        for seg in &lineage {
            if expected < seg.lo.events {
                return Ok(ChainReport {
                    events: expected,
                    head: prev,
                    first_bad: Some(expected),
                });
            }
            let scan = snap.range(
                keys::numbered(seg.run, keys::EVENT, seg.lo.events)
                    ..keys::numbered(seg.run, keys::EVENT, seg.hi.events),
            )?;
            for (k, v) in scan {
                let bad = ChainReport {
                    events: expected,
                    head: prev,
                    first_bad: Some(expected),
                };
                if keys::trailing_u64(&k) != Some(expected) {
                    return Ok(bad);
                }
                let Ok(event) = Event::decode(&v) else {
                    return Ok(bad);
                };
                let hash = chain_hash(
                    &prev,
                    event.seq,
                    event.time_ms,
                    &event.event_type,
                    event.payload_bytes(),
                );
                if event.seq != expected || hash != event.hash {
                    return Ok(bad);
                }
                prev = hash;
                expected += 1;
            }
        }
        Ok(ChainReport {
            events: expected,
            head: prev,
            first_bad: None,
        })
    }

    // ----- KV ----------------------------------------------------------------------------------

    /// Sets a KV value (one commit).
    pub fn kv_put(&self, run: RunId, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(run, |tx| tx.kv_put(key, value))
    }

    /// Deletes a KV value (one commit); whether one was there.
    pub fn kv_delete(&self, run: RunId, key: &[u8]) -> Result<bool> {
        self.write(run, |tx| tx.kv_delete(key))
    }

    /// A KV value at the head.
    pub fn kv_get(&self, run: RunId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_run(run)?;
        Ok(self
            .db()
            .get(keys::named(run, keys::KV, key))?
            .map(|v| v.to_vec()))
    }

    /// KV pairs whose key starts with `prefix`, in key order.
    pub fn kv_scan(&self, run: RunId, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.get_run(run)?;
        let p = keys::named(run, keys::KV, prefix);
        let cut = keys::area(run, keys::KV).len();
        Ok(self
            .db()
            .scan_prefix(p)?
            .filter_map(|(k, v)| Some((k.get(cut..)?.to_vec(), v.to_vec())))
            .collect())
    }

    // ----- state cells -------------------------------------------------------------------------

    /// Creates a state cell at version 1.
    pub fn cell_init(&self, run: RunId, name: &str, value: &[u8]) -> Result<u64> {
        self.write(run, |tx| tx.cell_init(name, value))
    }

    /// The cell at the head.
    pub fn cell_read(&self, run: RunId, name: &str) -> Result<Option<Cell>> {
        self.get_run(run)?;
        self.db()
            .get(keys::named(run, keys::CELL, name.as_bytes()))?
            .map(|v| Cell::decode(&v))
            .transpose()
    }

    /// Sets a cell; returns the new version.
    pub fn cell_set(&self, run: RunId, name: &str, value: &[u8]) -> Result<u64> {
        self.write(run, |tx| tx.cell_set(name, value))
    }

    /// Compare-and-swap by version.
    pub fn cell_cas(&self, run: RunId, name: &str, expected: u64, value: &[u8]) -> Result<u64> {
        self.write(run, |tx| tx.cell_cas(name, expected, value))
    }

    /// Replaces the value with `f(value)`. The read and the write are one commit under the
    /// run's lock; a conflict with a writer outside this handle re-runs `f` with the new value,
    /// at most [`WRITE_ATTEMPTS_MAX`](crate::limits::WRITE_ATTEMPTS_MAX) times.
    pub fn transition(
        &self,
        run: RunId,
        name: &str,
        mut f: impl FnMut(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        self.write(run, |tx| tx.cell_transition(name, &mut f))
    }

    // ----- JSON documents ----------------------------------------------------------------------

    /// Creates a document.
    pub fn doc_create(&self, run: RunId, name: &str, value: &serde_json::Value) -> Result<()> {
        self.write(run, |tx| tx.doc_create(name, value))
    }

    /// The value at `path` of a document at the head.
    pub fn doc_get(&self, run: RunId, name: &str, path: &str) -> Result<Option<serde_json::Value>> {
        let pointer = crate::doc::parse_path(path)?;
        self.get_run(run)?;
        let raw = self
            .db()
            .get(keys::named(run, keys::DOC, name.as_bytes()))?
            .ok_or_else(|| Error::DocNotFound(name.to_owned()))?;
        let d: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|_| Error::corrupt("document", "not JSON"))?;
        Ok(crate::doc::resolve(&d, pointer).cloned())
    }

    /// Sets the value at `path`.
    pub fn doc_set(
        &self,
        run: RunId,
        name: &str,
        path: &str,
        value: &serde_json::Value,
    ) -> Result<()> {
        self.write(run, |tx| tx.doc_set(name, path, value))
    }

    /// Removes the value at `path`.
    pub fn doc_delete(&self, run: RunId, name: &str, path: &str) -> Result<()> {
        self.write(run, |tx| tx.doc_delete(name, path))
    }

    /// Destroys a document.
    pub fn doc_destroy(&self, run: RunId, name: &str) -> Result<()> {
        self.write(run, |tx| tx.doc_destroy(name))
    }

    // ----- traces ------------------------------------------------------------------------------

    /// Records a root span; returns its id.
    pub fn record(&self, run: RunId, span: &SpanInput) -> Result<u64> {
        self.write(run, |tx| tx.record(span.clone()))
    }

    /// Records a child span; returns its id.
    pub fn record_child(&self, run: RunId, parent: u64, span: &SpanInput) -> Result<u64> {
        self.write(run, |tx| tx.record_child(parent, span.clone()))
    }

    /// One span.
    pub fn span(&self, run: RunId, id: u64) -> Result<Option<Span>> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        Ok(read_spans_in(&snap, &lineage, id, id.saturating_add(1))?
            .into_iter()
            .next())
    }

    /// Every span of the run, in id order.
    pub fn spans(&self, run: RunId) -> Result<Vec<Span>> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        read_spans_in(&snap, &lineage, 0, u64::MAX)
    }

    /// Spans matching `query`, in id order. A kind reads the kind index.
    pub fn query_spans(&self, run: RunId, query: &SpanQuery) -> Result<Vec<Span>> {
        let candidates = match &query.kind {
            None => self.spans(run)?,
            Some(kind) => self.spans_indexed(run, |r| keys::span_kind_prefix(r, kind.code()))?,
        };
        Ok(candidates
            .into_iter()
            .filter(|s| {
                query.kind.as_ref().is_none_or(|k| *k == s.kind)
                    && query
                        .tag
                        .as_ref()
                        .is_none_or(|t| s.tags.iter().any(|x| x == t))
                    && query.from_ms.is_none_or(|f| s.start_ms >= f)
                    && query.to_ms.is_none_or(|t| s.start_ms < t)
            })
            .collect())
    }

    /// The children of a span, in id order (from the children index).
    pub fn children(&self, run: RunId, parent: u64) -> Result<Vec<Span>> {
        self.spans_indexed(run, |r| keys::span_child_prefix(r, Some(parent)))
    }

    /// The root spans, in id order.
    pub fn roots(&self, run: RunId) -> Result<Vec<Span>> {
        self.spans_indexed(run, |r| keys::span_child_prefix(r, None))
    }

    /// Every span as a forest under the roots.
    pub fn tree(&self, run: RunId) -> Result<Vec<SpanNode>> {
        let spans = self.spans(run)?;
        let mut children: BTreeMap<Option<u64>, Vec<Span>> = BTreeMap::new();
        for s in spans {
            children.entry(s.parent).or_default().push(s);
        }
        // Build bottom-up: ids are dense and a child's id is always above its parent's.
        let mut built: BTreeMap<u64, SpanNode> = BTreeMap::new();
        let mut all: Vec<Span> = children.values().flatten().cloned().collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.id));
        for s in all {
            let kids = children
                .get(&Some(s.id))
                .map(|v| v.iter().filter_map(|c| built.remove(&c.id)).collect())
                .unwrap_or_default();
            built.insert(
                s.id,
                SpanNode {
                    span: s,
                    children: kids,
                },
            );
        }
        Ok(built
            .into_values()
            .filter(|n| n.span.parent.is_none())
            .collect())
    }

    fn spans_indexed(&self, run: RunId, prefix: impl Fn(RunId) -> Vec<u8>) -> Result<Vec<Span>> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        let mut out = Vec::new();
        for seg in &lineage {
            let ids: Vec<u64> = snap
                .scan_prefix(prefix(seg.run))
                .filter_map(|(k, _)| keys::trailing_u64(&k))
                .filter(|id| *id >= seg.lo.spans && *id < seg.hi.spans)
                .collect();
            for id in ids {
                let raw = snap
                    .get(keys::numbered(seg.run, keys::SPAN, id))
                    .ok_or(Error::corrupt("span", "index without span"))?;
                out.push(Span::decode(&raw)?);
            }
        }
        Ok(out)
    }
}

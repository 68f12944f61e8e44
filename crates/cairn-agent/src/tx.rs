//! [`RunTx`]: the writes of one run inside one engine transaction. Every primitive's write
//! goes through here: it puts the primitive's keys, records a [`Mutation`] (with the value
//! before and after) and calls the search hook, and [`RunTx::commit`] adds the history step
//! record to the same commit. So a write and its history are never apart.

use std::time::Duration;

use crate::agent::{check_len, check_name, check_tags, Agent, Head};
use crate::doc;
use crate::error::{Error, Result};
use crate::index::{index_hook, SearchDoc};
use crate::keys;
use crate::limits;
use crate::record::{
    chain_hash, encode_event, Cell, Hash, Mutation, Op, Primitive, Span, SpanKind, Step,
};
use crate::run::RunId;

/// What [`RunTx::record`] takes: one span of a trace.
#[derive(Clone, Debug)]
pub struct SpanInput {
    /// The kind.
    pub kind: SpanKind,
    /// A short name (tool name, decision label).
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Start time, ms; `None` takes the commit's time.
    pub start_ms: Option<u64>,
    /// How long it took.
    pub duration: Duration,
    /// The content (arguments, result, thought text), as JSON.
    pub content: serde_json::Value,
}

impl SpanInput {
    /// A span of `kind` named `name`, with no tags, null content and no duration.
    pub fn new(kind: SpanKind, name: impl Into<String>) -> SpanInput {
        SpanInput {
            kind,
            name: name.into(),
            tags: Vec::new(),
            start_ms: None,
            duration: Duration::ZERO,
            content: serde_json::Value::Null,
        }
    }
}

/// The writes of one run in one engine transaction; see [`Run::transaction`](crate::Run::transaction).
#[derive(Debug)]
pub struct RunTx<'a> {
    agent: &'a Agent,
    tx: cairn::Transaction,
    head: Head,
    time_ms: u64,
    mutations: Vec<Mutation>,
}

impl<'a> RunTx<'a> {
    pub(crate) fn new(agent: &'a Agent, tx: cairn::Transaction, head: Head, time_ms: u64) -> Self {
        RunTx {
            agent,
            tx,
            head,
            time_ms,
            mutations: Vec::new(),
        }
    }

    /// The run written to.
    pub fn run(&self) -> RunId {
        self.head.info.id
    }

    fn id(&self) -> RunId {
        self.head.info.id
    }

    /// Writes the history step and commits. Returns the run's new head.
    pub(crate) fn commit(mut self) -> Result<Head> {
        if !self.mutations.is_empty() {
            let step = Step {
                time_ms: self.time_ms,
                events_after: self.head.next_event,
                spans_after: self.head.next_span,
                mutations: std::mem::take(&mut self.mutations),
            };
            self.tx.put(
                keys::numbered(self.id(), keys::STEP, self.head.next_step),
                step.encode(),
            )?;
            self.head.next_step += 1;
            self.head.last_time = self.time_ms;
        }
        self.tx.commit()?;
        Ok(self.head)
    }

    // ----- events ------------------------------------------------------------------------------

    /// Appends an event with a JSON payload (text, validated now, parsed again only on read).
    /// Returns its sequence and chain hash.
    pub fn append(&mut self, event_type: &str, payload: impl AsRef<[u8]>) -> Result<(u64, Hash)> {
        let payload = payload.as_ref();
        if event_type.is_empty() || event_type.as_bytes().contains(&0) {
            return Err(Error::InvalidInput {
                what: "event type",
                reason: "empty or contains a NUL byte".into(),
            });
        }
        check_len("event type", event_type.len(), limits::EVENT_TYPE_BYTES_MAX)?;
        check_len("event payload", payload.len(), limits::PAYLOAD_BYTES_MAX)?;
        validate_json("event payload", payload)?;
        let run = self.id();
        let seq = self.head.next_event;
        let hash = chain_hash(&self.head.last_hash, seq, self.time_ms, event_type, payload);
        let envelope = encode_event(
            seq,
            self.head.next_step,
            self.time_ms,
            &hash,
            event_type,
            payload,
        );
        self.tx
            .put(keys::numbered(run, keys::EVENT, seq), envelope)?;
        self.tx.put(keys::event_type(run, event_type, seq), [])?;
        self.mutations.push(Mutation {
            primitive: Primitive::Event,
            op: Op::Append,
            key: seq.to_be_bytes().to_vec(),
            path: None,
            before: None,
            after: None,
        });
        index_hook(
            self.agent.index(),
            &mut self.tx,
            SearchDoc::Event {
                run,
                seq,
                time_ms: self.time_ms,
                event_type,
                payload,
            },
        )?;
        self.head.next_event += 1;
        self.head.last_hash = hash;
        Ok((seq, hash))
    }

    // ----- KV ----------------------------------------------------------------------------------

    /// The KV value, as of this transaction (its own writes included).
    pub fn kv_get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tx
            .get(keys::named(self.id(), keys::KV, key))?
            .map(|v| v.to_vec()))
    }

    /// Sets a KV value.
    pub fn kv_put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        check_kv_key(key)?;
        check_len("KV value", value.len(), limits::VALUE_BYTES_MAX)?;
        let k = keys::named(self.id(), keys::KV, key);
        let before = self.tx.get(&k)?.map(|v| v.to_vec());
        self.tx.put(&k, value)?;
        self.value_mutation(Primitive::Kv, Op::Put, key, before, Some(value.to_vec()))
    }

    /// Deletes a KV value; returns whether one was there.
    pub fn kv_delete(&mut self, key: &[u8]) -> Result<bool> {
        check_kv_key(key)?;
        let k = keys::named(self.id(), keys::KV, key);
        let Some(before) = self.tx.get(&k)? else {
            return Ok(false);
        };
        self.tx.delete(&k)?;
        self.value_mutation(Primitive::Kv, Op::Delete, key, Some(before.to_vec()), None)?;
        Ok(true)
    }

    fn value_mutation(
        &mut self,
        primitive: Primitive,
        op: Op,
        key: &[u8],
        before: Option<Vec<u8>>,
        after: Option<Vec<u8>>,
    ) -> Result<()> {
        let run = self.id();
        index_hook(
            self.agent.index(),
            &mut self.tx,
            SearchDoc::Value {
                run,
                primitive,
                key,
                time_ms: self.time_ms,
                value: after.as_deref(),
            },
        )?;
        self.mutations.push(Mutation {
            primitive,
            op,
            key: key.to_vec(),
            path: None,
            before,
            after,
        });
        Ok(())
    }

    // ----- state cells -------------------------------------------------------------------------

    /// The cell, as of this transaction.
    pub fn cell_read(&mut self, name: &str) -> Result<Option<Cell>> {
        self.tx
            .get(keys::named(self.id(), keys::CELL, name.as_bytes()))?
            .map(|v| Cell::decode(&v))
            .transpose()
    }

    /// Creates a cell at version 1; [`Error::CellExists`] if it exists.
    pub fn cell_init(&mut self, name: &str, value: &[u8]) -> Result<u64> {
        check_name("cell name", name)?;
        if self.cell_read(name)?.is_some() {
            return Err(Error::CellExists(name.to_owned()));
        }
        self.cell_write(name, None, value)
    }

    /// Sets a cell (creating it at version 1); returns the new version.
    pub fn cell_set(&mut self, name: &str, value: &[u8]) -> Result<u64> {
        check_name("cell name", name)?;
        let before = self.cell_read(name)?;
        self.cell_write(name, before, value)
    }

    /// Sets a cell only if it is at `expected` version; else [`Error::VersionMismatch`]
    /// (or [`Error::CellNotFound`]).
    pub fn cell_cas(&mut self, name: &str, expected: u64, value: &[u8]) -> Result<u64> {
        check_name("cell name", name)?;
        let before = self
            .cell_read(name)?
            .ok_or_else(|| Error::CellNotFound(name.to_owned()))?;
        if before.version != expected {
            return Err(Error::VersionMismatch {
                name: name.to_owned(),
                expected,
                actual: before.version,
            });
        }
        self.cell_write(name, Some(before), value)
    }

    /// Replaces the cell's value with `f(value)`; returns the new version.
    pub fn cell_transition(
        &mut self,
        name: &str,
        f: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        check_name("cell name", name)?;
        let before = self
            .cell_read(name)?
            .ok_or_else(|| Error::CellNotFound(name.to_owned()))?;
        let next = f(&before.value)?;
        self.cell_write(name, Some(before), &next)
    }

    fn cell_write(&mut self, name: &str, before: Option<Cell>, value: &[u8]) -> Result<u64> {
        check_len("cell value", value.len(), limits::VALUE_BYTES_MAX)?;
        let version = before.as_ref().map_or(0, |c| c.version).saturating_add(1);
        let after = Cell {
            version,
            value: value.to_vec(),
        };
        let encoded = after.encode();
        self.tx.put(
            keys::named(self.id(), keys::CELL, name.as_bytes()),
            &encoded,
        )?;
        let run = self.id();
        index_hook(
            self.agent.index(),
            &mut self.tx,
            SearchDoc::Value {
                run,
                primitive: Primitive::Cell,
                key: name.as_bytes(),
                time_ms: self.time_ms,
                value: Some(value),
            },
        )?;
        self.mutations.push(Mutation {
            primitive: Primitive::Cell,
            op: Op::Put,
            key: name.as_bytes().to_vec(),
            path: None,
            before: before.map(|c| c.encode()),
            after: Some(encoded),
        });
        Ok(version)
    }

    // ----- JSON documents ----------------------------------------------------------------------

    fn doc_load(&mut self, name: &str) -> Result<Option<serde_json::Value>> {
        match self
            .tx
            .get(keys::named(self.id(), keys::DOC, name.as_bytes()))?
        {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|_| Error::corrupt("document", "not JSON")),
        }
    }

    fn doc_store(&mut self, name: &str, text: &[u8]) -> Result<()> {
        self.tx
            .put(keys::named(self.id(), keys::DOC, name.as_bytes()), text)?;
        let run = self.id();
        index_hook(
            self.agent.index(),
            &mut self.tx,
            SearchDoc::Value {
                run,
                primitive: Primitive::Doc,
                key: name.as_bytes(),
                time_ms: self.time_ms,
                value: Some(text),
            },
        )
    }

    /// The value at `path` (RFC 6901; `""` is the whole document), or `None` if the path
    /// names nothing. [`Error::DocNotFound`] if the document does not exist.
    pub fn doc_get(&mut self, name: &str, path: &str) -> Result<Option<serde_json::Value>> {
        let pointer = doc::parse_path(path)?;
        let d = self
            .doc_load(name)?
            .ok_or_else(|| Error::DocNotFound(name.to_owned()))?;
        Ok(doc::resolve(&d, pointer).cloned())
    }

    /// Creates a document; [`Error::DocExists`] if it exists.
    pub fn doc_create(&mut self, name: &str, value: &serde_json::Value) -> Result<()> {
        check_name("document name", name)?;
        doc::check_value(value)?;
        if self.doc_load(name)?.is_some() {
            return Err(Error::DocExists(name.to_owned()));
        }
        let text = doc::to_text(value)?;
        self.doc_store(name, &text)?;
        self.mutations.push(Mutation {
            primitive: Primitive::Doc,
            op: Op::Put,
            key: name.as_bytes().to_vec(),
            path: None,
            before: None,
            after: Some(text),
        });
        Ok(())
    }

    /// Sets the value at `path`, creating missing objects on the way (`jsonptr` assignment).
    pub fn doc_set(&mut self, name: &str, path: &str, value: &serde_json::Value) -> Result<()> {
        let pointer = doc::parse_path(path)?;
        doc::check_value(value)?;
        let mut d = self
            .doc_load(name)?
            .ok_or_else(|| Error::DocNotFound(name.to_owned()))?;
        let before = doc::resolve(&d, pointer).map(doc::to_text).transpose()?;
        doc::assign(&mut d, pointer, value.clone(), name)?;
        doc::check_value(&d)?;
        let text = doc::to_text(&d)?;
        self.doc_store(name, &text)?;
        self.mutations.push(Mutation {
            primitive: Primitive::Doc,
            op: Op::PathSet,
            key: name.as_bytes().to_vec(),
            path: Some(path.to_owned()),
            before,
            after: Some(doc::to_text(value)?),
        });
        Ok(())
    }

    /// Removes the value at `path` (not the root: use [`RunTx::doc_destroy`]).
    pub fn doc_delete(&mut self, name: &str, path: &str) -> Result<()> {
        let pointer = doc::parse_path(path)?;
        let mut d = self
            .doc_load(name)?
            .ok_or_else(|| Error::DocNotFound(name.to_owned()))?;
        let removed = doc::delete(&mut d, pointer).ok_or_else(|| Error::PathNotFound {
            doc: name.to_owned(),
            path: path.to_owned(),
        })?;
        let text = doc::to_text(&d)?;
        self.doc_store(name, &text)?;
        self.mutations.push(Mutation {
            primitive: Primitive::Doc,
            op: Op::PathDelete,
            key: name.as_bytes().to_vec(),
            path: Some(path.to_owned()),
            before: Some(doc::to_text(&removed)?),
            after: None,
        });
        Ok(())
    }

    /// Destroys a document; [`Error::DocNotFound`] if it does not exist.
    pub fn doc_destroy(&mut self, name: &str) -> Result<()> {
        let k = keys::named(self.id(), keys::DOC, name.as_bytes());
        let before = self
            .tx
            .get(&k)?
            .ok_or_else(|| Error::DocNotFound(name.to_owned()))?;
        self.tx.delete(&k)?;
        self.value_mutation(
            Primitive::Doc,
            Op::Delete,
            name.as_bytes(),
            Some(before.to_vec()),
            None,
        )
    }

    // ----- traces ------------------------------------------------------------------------------

    /// Records a root span; returns its id.
    pub fn record(&mut self, span: SpanInput) -> Result<u64> {
        self.record_span(None, span)
    }

    /// Records a span under `parent`; [`Error::SpanNotFound`] if the parent does not exist.
    pub fn record_child(&mut self, parent: u64, span: SpanInput) -> Result<u64> {
        if parent >= self.head.next_span {
            return Err(Error::SpanNotFound(parent));
        }
        self.record_span(Some(parent), span)
    }

    fn record_span(&mut self, parent: Option<u64>, input: SpanInput) -> Result<u64> {
        check_name("span name", &input.name)?;
        check_tags(&input.tags)?;
        if let SpanKind::Custom(kind) = &input.kind {
            check_name("span kind", kind)?;
        }
        let content = input.content.to_string().into_bytes();
        check_len("span content", content.len(), limits::PAYLOAD_BYTES_MAX)?;
        let run = self.id();
        let id = self.head.next_span;
        let span = Span {
            id,
            parent,
            kind: input.kind,
            name: input.name,
            tags: input.tags,
            start_ms: input.start_ms.unwrap_or(self.time_ms),
            duration_us: u64::try_from(input.duration.as_micros()).unwrap_or(u64::MAX),
            content,
        };
        self.tx
            .put(keys::numbered(run, keys::SPAN, id), span.encode())?;
        self.tx.put(keys::span_child(run, parent, id), [])?;
        self.tx
            .put(keys::span_kind(run, span.kind.code(), id), [])?;
        index_hook(
            self.agent.index(),
            &mut self.tx,
            SearchDoc::Span {
                run,
                id,
                start_ms: span.start_ms,
                name: &span.name,
                tags: &span.tags,
                content: &span.content,
            },
        )?;
        self.mutations.push(Mutation {
            primitive: Primitive::Span,
            op: Op::Append,
            key: id.to_be_bytes().to_vec(),
            path: None,
            before: None,
            after: None,
        });
        self.head.next_span += 1;
        Ok(id)
    }
}

fn check_kv_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidInput {
            what: "KV key",
            reason: "empty".into(),
        });
    }
    check_len("KV key", key.len(), limits::KV_KEY_BYTES_MAX)
}

fn validate_json(what: &'static str, text: &[u8]) -> Result<()> {
    serde_json::from_slice::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| Error::InvalidJson {
            what,
            reason: e.to_string(),
        })
}

//! [`Agent::search`]: keyword search (BM25) over what the agent's runs wrote, through the
//! index that every write maintains in its own commit (see `docs/agent.md`, "Search").
//!
//! An [`AgentQuery`] is a [`search::Query`](crate::search::Query) whose run filter is a
//! [`RunId`] and whose primitive filter names the agent's primitives; the results are the
//! search module's, with each hit's doc id taken apart into its run, primitive and
//! run-relative key. Guarantees: a search reads one engine snapshot, so it sees every write
//! committed at or before it and nothing after, the index's statistics included; a run filter
//! naming a run that does not exist at that snapshot is [`Error::RunNotFound`], not an empty
//! answer.

use std::ops::Range;

use cairn::Snapshot;

use crate::agent::Agent;
use crate::error::{Error, Result};
use crate::index::{agent_primitive, filter_primitive, parse_doc_id};
use crate::keys;
use crate::record::Primitive;
use crate::run::RunId;
use crate::search::{Budget, CompactReport, Query, Snippet};

/// A search over the agent's runs: text (any of its words may match) and filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentQuery {
    query: Query,
    run: Option<RunId>,
}

impl AgentQuery {
    /// A query for `text` over every run, top 10, no filters.
    pub fn new(text: impl Into<String>) -> Self {
        AgentQuery {
            query: Query::new(text),
            run: None,
        }
    }

    /// Only this run's documents, scored against the run's own statistics.
    #[must_use]
    pub fn run(mut self, run: RunId) -> Self {
        self.query = self.query.run(run.get().to_be_bytes());
        self.run = Some(run);
        self
    }

    /// Only documents of `primitive` (repeat to allow several).
    #[must_use]
    pub fn primitive(mut self, primitive: Primitive) -> Self {
        self.query = self.query.primitive(filter_primitive(primitive));
        self
    }

    /// Only documents carrying `tag` (span tags; repeat to require several).
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.query = self.query.tag(tag);
        self
    }

    /// Only documents written in `range` (ms; a span's start time).
    #[must_use]
    pub fn time_range_ms(mut self, range: Range<u64>) -> Self {
        self.query = self.query.time_range_ms(range);
        self
    }

    /// At most `top_k` hits (1 to `search::limits::TOP_K_MAX`).
    #[must_use]
    pub fn top_k(mut self, top_k: usize) -> Self {
        self.query = self.query.top_k(top_k);
        self
    }

    /// Reads at most `postings` postings, else [`Error::Search`] with `PostingsBudget`.
    #[must_use]
    pub fn postings_budget(mut self, postings: usize) -> Self {
        self.query = self.query.postings_budget(postings);
        self
    }

    /// The run filter.
    pub fn run_filter(&self) -> Option<RunId> {
        self.run
    }

    /// The search module's query this stands for.
    pub fn as_query(&self) -> &Query {
        &self.query
    }
}

/// One hit.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentHit {
    /// The run that wrote it.
    pub run: RunId,
    /// Its primitive.
    pub primitive: Primitive,
    /// The run-relative key, as in [`Change::key`](crate::Change::key): an event's sequence
    /// or a span's id (8 bytes, big-endian), a KV key, or a cell or document name. `None` for
    /// a key longer than the index's doc id limit, which the index holds as a hash.
    pub key: Option<Vec<u8>>,
    /// The write's time, ms (a span's start time).
    pub timestamp_ms: u64,
    /// BM25 score; higher is better.
    pub score: f64,
    /// Text around the first matching word.
    pub snippet: Snippet,
}

impl AgentHit {
    /// The event sequence or span id of an event or span hit.
    pub fn number(&self) -> Option<u64> {
        if !matches!(self.primitive, Primitive::Event | Primitive::Span) {
            return None;
        }
        let bytes: [u8; 8] = self.key.as_deref()?.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }
}

/// The hits, best first, and what the search read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentResults {
    /// The hits (ties: ascending doc id, so by run, then primitive, then key).
    pub hits: Vec<AgentHit>,
    /// Lists, postings, blocks and records read, and the time taken.
    pub budget: Budget,
    /// Documents in the searched scope (every run, or the filtered run).
    pub documents_in_scope: u64,
}

impl Agent {
    /// Searches the current snapshot.
    pub fn search(&self, query: &AgentQuery) -> Result<AgentResults> {
        self.search_at(&self.db().snapshot(), query)
    }

    /// Searches `snapshot`: exactly the writes committed at or before it.
    pub fn search_at(&self, snapshot: &Snapshot, query: &AgentQuery) -> Result<AgentResults> {
        if let Some(run) = query.run {
            if snapshot.get(keys::meta(run)).is_none() {
                return Err(Error::RunNotFound(run));
            }
        }
        let found = self.index().search(snapshot, &query.query)?;
        let mut hits = Vec::with_capacity(found.hits.len());
        for hit in found.hits {
            let (run, primitive, key) = parse_doc_id(&hit.doc_id)?;
            if primitive != agent_primitive(hit.primitive) {
                return Err(Error::corrupt("search document id", "primitive mismatch"));
            }
            hits.push(AgentHit {
                run,
                primitive,
                key,
                timestamp_ms: hit.timestamp_ms,
                score: hit.score,
                snippet: hit.snippet,
            });
        }
        Ok(AgentResults {
            hits,
            budget: found.budget,
            documents_in_scope: found.documents_in_scope,
        })
    }

    /// Moves up to about `postings_max` fresh postings of the search index into blocks, in one
    /// commit, so long posting lists read faster; call again while `done` is false. Searches
    /// return the same results before and after. Maintenance: run it when the agent is idle
    /// or on a timer, not on the write path.
    pub fn compact_search(&self, postings_max: usize) -> Result<CompactReport> {
        self.commit_retrying(|tx| Ok(self.index().compact(tx, postings_max)?))
    }
}

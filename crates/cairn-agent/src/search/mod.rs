//! Keyword search over an agent's memory: a BM25 inverted index kept in the engine's own
//! keyspace, under a caller-given key prefix, and maintained in the same transaction as the
//! write it indexes.
//!
//! Guarantees:
//! - **Atomic with the data.** [`Indexer::index`] and [`Indexer::remove`] only buffer writes
//!   in the caller's `cairn::Transaction`; the index changes in that commit or not at all, and
//!   inherits its durability, its crash recovery and its checkpoints.
//! - **Snapshot-exact.** [`Indexer::search`] reads one `cairn::Snapshot`: it sees every
//!   document committed at or before that version and nothing after, statistics included.
//! - **Never a full scan.** A search reads the counter shards of its scope, the posting lists
//!   of its terms and required tags, and one record per hit. Its cost grows with the lengths
//!   of those lists, not with the number of documents, and its budget report says what it
//!   read.
//! - **Exact removal.** Each document's record keeps its term list, so re-indexing or removing
//!   it deletes exactly the postings it made.
//! - **Two tiers.** `index` writes each posting as a key of its own (no two documents share
//!   one); [`Indexer::compact`], run as maintenance, moves them into blocks of up to
//!   `format::BLOCK_POSTINGS_MAX`, which a search reads several times faster. Searches merge
//!   both tiers and return the same results before and after compaction.
//! - **Low contention.** Postings are per document; no key is shared by all writers. Document
//!   and token counts live in `COUNTER_SHARDS` shards by doc id (all runs, and per run), and
//!   a term's document frequency is counted from its list at query time, not stored.
//!
//! The key layout and encodings are in [`format`](mod@format); every bound is in [`limits`]; scoring is
//! in [`bm25`]; the tokenizer in [`tokenize`]. `docs/agent-search.md` explains the choices.

pub mod bm25;
mod doc;
mod error;
pub mod format;
mod index;
pub mod limits;
mod query;
mod read;
pub mod tokenize;

pub use doc::{Doc, Primitive, PrimitiveSet};
pub use error::{CorruptionReason, Result, SearchError};
pub use format::{Counter, Record};
pub use index::{CompactReport, IndexReport};
pub use query::{Budget, Hit, Query, SearchResults, Snippet};

use limits::PREFIX_BYTES_MAX;

/// A search index under one key prefix. Cheap to clone; holds no state but its prefix, so any
/// number of handles (and threads) may index and search the same prefix.
///
/// The prefix must not be a prefix of any other key family of the database, nor of another
/// index's prefix: the index owns every key that starts with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indexer {
    prefix: Vec<u8>,
}

impl Indexer {
    /// An index under `prefix` (at most `PREFIX_BYTES_MAX` bytes; empty only if the index owns
    /// the whole database).
    pub fn new(prefix: impl Into<Vec<u8>>) -> Result<Self> {
        let prefix = prefix.into();
        if prefix.len() > PREFIX_BYTES_MAX {
            let len = prefix.len();
            let limit = "PREFIX_BYTES_MAX";
            return Err(SearchError::too_large(
                "prefix bytes",
                len,
                PREFIX_BYTES_MAX,
                limit,
            ));
        }
        Ok(Indexer { prefix })
    }

    /// Its key prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}

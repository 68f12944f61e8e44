//! The search index's error type: what the caller can do about each failure.
//!
//! Input errors (a limit broken, an empty id, a reversed time range) are found before the
//! index writes anything to the caller's transaction, so the transaction is still usable.
//! `Engine` carries the engine's own error (a `Conflict` means: retry the transaction).
//! `Corrupted` means an index key held bytes its decoder refused, or the index contradicts
//! itself (a posting with no document record): a bug or damaged data, never bad input.

use super::format::DecodeError;

/// The result type of every fallible search-index call.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// Everything that can go wrong while indexing or searching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The engine refused a read or a write (a `Conflict` is retryable).
    #[error("engine error: {0}")]
    Engine(#[from] cairn::Error),

    /// An id (`what`: doc id, run id, tag) is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which id.
        what: &'static str,
    },

    /// An input is longer (or has more parts) than its limit allows.
    #[error("{what} is {len}; the limit is {max} ({limit})")]
    TooLarge {
        /// What was too large, with its unit ("doc id bytes", "query terms", ...).
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
        /// The limit's name in `search::limits`.
        limit: &'static str,
    },

    /// A query asked for no hits (`top_k` is 0).
    #[error("top_k is 0; ask for 1 to {max} hits", max = super::limits::TOP_K_MAX)]
    TopKZero,

    /// A time range whose start is after its end.
    #[error("time range starts at {start_ms} ms, after its end at {end_ms} ms")]
    ReversedTimeRange {
        /// Start, inclusive.
        start_ms: u64,
        /// End, exclusive.
        end_ms: u64,
    },

    /// The query's terms (and required tags) have more postings than its budget allows.
    #[error(
        "the query would read more than {max} postings (its budget); narrow it by run, or \
         raise Query::postings_budget up to POSTINGS_READ_MAX"
    )]
    PostingsBudget {
        /// The budget.
        max: usize,
    },

    /// An index key held bytes that do not decode, or the index contradicts itself.
    #[error("search index damaged at key {key}: {reason}")]
    Corrupted {
        /// The key, printable.
        key: cairn::KeyDisplay,
        /// What was wrong.
        reason: CorruptionReason,
    },
}

/// Why the index is damaged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptionReason {
    /// The value did not decode.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// A posting's key does not have the documented layout.
    #[error("posting key layout: {0}")]
    KeyLayout(&'static str),
    /// A posting names a document with no record at the same snapshot.
    #[error("posting names a document with no record")]
    MissingRecord,
    /// A document's record names a term whose posting is neither fresh nor in a block.
    #[error("a recorded posting is missing from the index")]
    MissingPosting,
    /// A counter went below zero or above its range.
    #[error("counter out of range")]
    Counter,
}

impl SearchError {
    pub(crate) fn too_large(
        what: &'static str,
        len: usize,
        max: usize,
        limit: &'static str,
    ) -> Self {
        SearchError::TooLarge {
            what,
            len,
            max,
            limit,
        }
    }

    pub(crate) fn corrupted(key: &[u8], reason: impl Into<CorruptionReason>) -> Self {
        SearchError::Corrupted {
            key: cairn::KeyDisplay::new(key),
            reason: reason.into(),
        }
    }

    /// True when retrying the whole transaction may succeed (an engine `Conflict`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SearchError::Engine(error) if error.is_retryable())
    }
}

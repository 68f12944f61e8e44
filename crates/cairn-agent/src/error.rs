//! The crate's one error type. Every failure a caller can act on has its own variant; engine
//! errors pass through unchanged in [`Error::Engine`].

use crate::run::{RunId, RunStatus};

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything `cairn-agent` can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine failed (I/O, conflict after the bounded retries, a limit of its own).
    #[error(transparent)]
    Engine(#[from] cairn::Error),
    /// No run with this id exists (never created, or deleted).
    #[error("run {0} not found")]
    RunNotFound(RunId),
    /// The status transition is not in the transition table (`docs/agent.md`).
    #[error("run {run}: illegal transition {from:?} -> {to:?}")]
    IllegalTransition {
        /// The run.
        run: RunId,
        /// Its status now.
        from: RunStatus,
        /// The status asked for.
        to: RunStatus,
    },
    /// Writes are taken only while a run is `Active`.
    #[error("run {run} is {status:?}; only an active run takes writes")]
    RunNotActive {
        /// The run.
        run: RunId,
        /// Its status.
        status: RunStatus,
    },
    /// The run cannot be deleted (or pruned further) while forks read its history.
    #[error("run {run} has {forks} fork(s) that depend on its history")]
    RunHasForks {
        /// The run.
        run: RunId,
        /// How many forks depend on it.
        forks: usize,
    },
    /// An input is larger than the named limit (`crate::limits`).
    #[error("{what} is {actual} bytes or levels, over the limit of {limit}")]
    TooLarge {
        /// Which input and limit.
        what: &'static str,
        /// What was given.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// A name, tag or event type is empty or has a forbidden byte.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A payload or document is not valid JSON text.
    #[error("invalid JSON in {what}: {reason}")]
    InvalidJson {
        /// Which input.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// A JSON Pointer does not parse (RFC 6901).
    #[error("invalid JSON pointer {path:?}: {reason}")]
    BadPath {
        /// The pointer as given.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// A JSON Pointer names nothing in the document, or cannot be assigned.
    #[error("JSON pointer {path:?} not found in document {doc:?}")]
    PathNotFound {
        /// The document.
        doc: String,
        /// The pointer.
        path: String,
    },
    /// The document does not exist.
    #[error("document {0:?} not found")]
    DocNotFound(String),
    /// The document already exists.
    #[error("document {0:?} already exists")]
    DocExists(String),
    /// The state cell does not exist.
    #[error("state cell {0:?} not found")]
    CellNotFound(String),
    /// The state cell already exists (`init`).
    #[error("state cell {0:?} already exists")]
    CellExists(String),
    /// A compare-and-swap found another version.
    #[error("state cell {name:?}: expected version {expected}, found {actual}")]
    VersionMismatch {
        /// The cell.
        name: String,
        /// The version the caller expected.
        expected: u64,
        /// The version the cell has.
        actual: u64,
    },
    /// A `transition` (or any write) kept conflicting with writers outside this handle.
    #[error("gave up after {attempts} conflicting attempts")]
    Contended {
        /// Attempts made.
        attempts: u32,
    },
    /// The parent span of `record_child` does not exist in the run.
    #[error("span {0} not found")]
    SpanNotFound(u64),
    /// The replay point lies before the oldest history the run still keeps.
    #[error("run {run}: history before step {oldest} was pruned")]
    HistoryPruned {
        /// The run.
        run: RunId,
        /// The oldest step still replayable.
        oldest: u64,
    },
    /// The replay point lies past the run's end.
    #[error("run {run}: point {point} is past the run's end")]
    PointOutOfRange {
        /// The run.
        run: RunId,
        /// The point, as a step or event sequence.
        point: u64,
    },
    /// The search index refused a query (a limit, an empty filter value, a reversed time
    /// range, its postings budget) or found its own keys damaged. Engine errors from the index
    /// arrive as [`Error::Engine`] instead, so a conflict is retried like any other.
    #[error("search: {0}")]
    Search(crate::search::SearchError),
    /// A stored record does not decode: the store was written by something else or damaged.
    #[error("corrupt {what} record: {reason}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
}

impl From<crate::search::SearchError> for Error {
    fn from(error: crate::search::SearchError) -> Self {
        match error {
            crate::search::SearchError::Engine(engine) => Error::Engine(engine),
            other => Error::Search(other),
        }
    }
}

impl Error {
    pub(crate) fn corrupt(what: &'static str, reason: &'static str) -> Error {
        Error::Corrupt { what, reason }
    }
}

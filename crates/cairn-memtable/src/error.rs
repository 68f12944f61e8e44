//! The one error type of the crate, grouped by what a caller can do about each case.

use std::time::Duration;

/// A boxed error from a store or persister.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in a repository call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `insert` of a key that already holds a live record. Nothing was written.
    #[error("a record with key {key} already exists")]
    AlreadyExists {
        /// The key, as `Debug` prints it.
        key: String,
    },
    /// `update` of a key that holds no live record.
    #[error("no record with key {key}")]
    NotFound {
        /// The key, as `Debug` prints it.
        key: String,
    },
    /// `update`'s closure returned a record with another primary key. Nothing was written.
    #[error("update of {key} returned a record with key {returned}")]
    KeyChanged {
        /// The key that was updated.
        key: String,
        /// The key of the record the closure returned.
        returned: String,
    },
    /// A unique index already maps this value to another live record. Nothing was written.
    #[error("unique index {index}: the value is held by record {holder}")]
    UniqueViolation {
        /// The index name.
        index: &'static str,
        /// The key of the record holding the value, as `Debug` prints it.
        holder: String,
    },
    /// No index of this name, or an index of another kind than the query needs.
    #[error("no {wanted} index named {index}")]
    NoSuchIndex {
        /// The name asked for.
        index: String,
        /// The kind of index the query needs.
        wanted: &'static str,
    },
    /// The immutable queue is full and the backpressure policy gave up. Nothing was written.
    #[error(
        "write refused by backpressure after waiting {waited:?}: {pending} memtables wait to flush"
    )]
    Backpressure {
        /// How long the writer waited.
        waited: Duration,
        /// Memtables waiting to be flushed.
        pending: usize,
    },
    /// `flush` or `close` gave up waiting; the data stays in memory and is still being retried.
    #[error("flush did not finish within {waited:?}: {pending} memtables wait; last error: {last_error}")]
    DrainTimeout {
        /// How long it waited.
        waited: Duration,
        /// Memtables still waiting to be flushed.
        pending: usize,
        /// The persister's last error, if any.
        last_error: String,
    },
    /// The repository is closed (or closing).
    #[error("the repository is closed")]
    Closed,
    /// The persistent store failed.
    #[error("persister: {0}")]
    Persist(#[source] BoxError),
    /// The write-ahead log failed. After an error from the durability wait, the write is in
    /// memory and will be flushed, but it may not survive a crash.
    #[error("write-ahead log: {0}")]
    Wal(#[from] cairn_log::LogError),
    /// A record could not be encoded.
    #[error("encoding a record: {0}")]
    Encode(String),
    /// Stored bytes are no record of this type.
    #[error("decoding a stored record: {reason}")]
    Decode {
        /// What was wrong.
        reason: String,
    },
    /// A stored record carries a schema version this type cannot read.
    #[error("stored schema version {found}, this record type reads {expected}")]
    SchemaVersion {
        /// The version byte found.
        found: u8,
        /// [`crate::Record::SCHEMA_VERSION`].
        expected: u8,
    },
    /// Options outside their documented ranges.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The background flusher thread could not be started.
    #[error("starting the flusher thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl Error {
    /// A persister error from anything that converts into a boxed error.
    pub fn persist(error: impl Into<BoxError>) -> Self {
        Error::Persist(error.into())
    }
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

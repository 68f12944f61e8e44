//! The one error type of the engine.
//!
//! Variants are grouped by what the caller can do about them: retry (`Conflict`), fix the
//! input (`KeyEmpty`, `KeyTooLarge`, `ValueTooLarge`, `InvalidArgument`, `NotAnInteger`,
//! `Overflow`, `LimitExceeded`), reopen (`Poisoned`), look at the files (`Corrupted`,
//! `ForeignFile`, `Io`, `Locked`), stop using the handle (`Closed`, `Unsupported`), or report
//! a bug (`Internal`). Every message names the limit, the file or the reason, so a log line
//! alone tells what went wrong.

use std::fmt;
use std::path::PathBuf;

/// The result type of every fallible engine call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another commit changed something this transaction wrote (or, under `Serializable`,
    /// read) after it began. Retry the whole transaction; `Db::transaction` does that for you.
    #[error("transaction conflict on key {key}: another commit changed it after this transaction began; retry")]
    Conflict {
        /// The first conflicting key found.
        key: KeyDisplay,
    },

    /// The key was empty; keys are 1 to `KEY_BYTES_MAX` bytes.
    #[error("key is empty; keys must be 1 to {max} bytes", max = crate::limits::KEY_BYTES_MAX)]
    KeyEmpty,

    /// The key was longer than `KEY_BYTES_MAX`.
    #[error("key is {len} bytes; the limit is {max} bytes")]
    KeyTooLarge {
        /// Length of the refused key.
        len: usize,
        /// The limit it broke.
        max: usize,
    },

    /// The value was longer than `Options::max_value_bytes`.
    #[error("value is {len} bytes; the limit is {max} bytes (Options::max_value_bytes)")]
    ValueTooLarge {
        /// Length of the refused value.
        len: usize,
        /// The limit it broke.
        max: usize,
    },

    /// An argument was out of its documented range (a zero TTL, a reversed range, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// `increment` found a value that is not a decimal i64.
    #[error("value at key {key} is not a decimal 64-bit integer")]
    NotAnInteger {
        /// The key whose value could not be parsed.
        key: KeyDisplay,
    },

    /// `increment` would overflow an i64; nothing was written.
    #[error("increment of key {key} by {delta} overflows a 64-bit integer")]
    Overflow {
        /// The key being incremented.
        key: KeyDisplay,
        /// The delta that overflowed.
        delta: i64,
    },

    /// A bounded resource of one operation is full (a transaction's read set, a commit's size,
    /// ...). The operation was refused and nothing was written.
    #[error("{what}: the limit is {max} (cairn::limits::{limit})")]
    LimitExceeded {
        /// The name of the constant in `cairn::limits` that was reached.
        limit: &'static str,
        /// The limit's value.
        max: usize,
        /// What reached it.
        what: String,
    },

    /// The operating system refused to start a thread the database needs.
    #[error("could not start the {thread} thread: {source}")]
    ThreadSpawn {
        /// Which thread.
        thread: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The database handle was closed.
    #[error("the database is closed")]
    Closed,

    /// The requested feature is not available in this build or mode.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// An earlier write or fsync of the write-ahead log failed, so what reached the disk is
    /// unknown. Every later write fails with this error until the database is reopened, which
    /// recovers exactly what was made durable. Reads keep working.
    #[error("the database is poisoned by an earlier I/O failure ({cause}); reopen it")]
    Poisoned {
        /// What failed first.
        cause: String,
    },

    /// A bug in Cairn: an internal invariant did not hold. The operation failed; the database
    /// is not poisoned by it. Please report the message.
    #[error("internal error (a bug in Cairn; please report it): {reason}")]
    Internal {
        /// Which invariant failed.
        reason: String,
    },

    /// A file of the database is damaged in a way recovery must not guess about. Opening with
    /// `RecoveryMode::Salvage` keeps the longest valid prefix and reports what it dropped.
    #[error("corrupted data in {file} at byte offset {offset}: {reason}")]
    Corrupted {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// A file in the data directory belongs to another database: its header names another
    /// database id than the directory's `IDENTITY` file. Nothing was read from it or changed;
    /// remove the file (or move it back where it belongs) and open again.
    #[error("{file} belongs to another database (its header names database {found}; this directory is database {expected})")]
    ForeignFile {
        /// The foreign file.
        file: PathBuf,
        /// The id of the database in this directory.
        expected: cairn_log::DatabaseId,
        /// The id the file's header names.
        found: cairn_log::DatabaseId,
    },

    /// Another handle (in this or another process) has the data directory open.
    #[error("the data directory {path} is locked by another open database")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },

    /// A file-system call failed.
    #[error("I/O error during {operation} on {path}: {source}")]
    Io {
        /// What was being done.
        operation: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        operation: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            operation: operation.into(),
            path: path.into(),
            source,
        }
    }
}

impl Error {
    /// An error of the snapshot file at `file`.
    pub(crate) fn from_snapshot(
        error: crate::durable::snapshot_file::SnapshotError,
        file: PathBuf,
    ) -> Self {
        use crate::durable::snapshot_file::SnapshotError;
        match error {
            SnapshotError::Io { operation, source } => Error::Io {
                operation: operation.to_owned(),
                path: file,
                source,
            },
            SnapshotError::Corrupted { offset, reason } => Error::Corrupted {
                file,
                offset,
                reason,
            },
            SnapshotError::Rejected(reason) => Error::Corrupted {
                file,
                offset: 0,
                reason: format!("a snapshot entry passed its checksum but was refused: {reason}"),
            },
        }
    }
}

impl From<cairn_log::LogError> for Error {
    fn from(error: cairn_log::LogError) -> Self {
        use cairn_log::LogError;
        match error {
            LogError::Io {
                operation,
                path,
                source,
            } => Error::Io {
                operation: operation.to_owned(),
                path,
                source,
            },
            LogError::Corrupted {
                file,
                offset,
                reason,
            } => Error::Corrupted {
                file,
                offset,
                reason,
            },
            LogError::ForeignFile {
                file,
                expected,
                found,
            } => Error::ForeignFile {
                file,
                expected,
                found,
            },
            LogError::Poisoned { cause } => Error::Poisoned { cause },
            LogError::FrameTooLarge { bytes, max } => Error::InvalidArgument(format!(
                "the commit encodes to {bytes} bytes; one WAL record holds at most {max} bytes"
            )),
            LogError::Closed => Error::Closed,
            LogError::InvalidOptions { reason } => {
                Error::InvalidArgument(format!("invalid WAL options: {reason}"))
            }
            LogError::Replay(reason) => Error::Corrupted {
                file: PathBuf::new(),
                offset: 0,
                reason: format!("a WAL record passed its checksum but cannot be applied: {reason}"),
            },
            // The engine hands the log the next LSN, a valid record type and only LSNs it
            // appended: each of these is a bug in the engine, not a failed disk.
            error @ (LogError::OutOfOrder { .. }
            | LogError::InvalidRecordType { .. }
            | LogError::NotAppended { .. }) => Error::Internal {
                reason: format!("the WAL refused a call: {error}"),
            },
        }
    }
}

impl Error {
    /// True when the same operation may succeed if simply tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_log::LogError;

    #[test]
    fn log_bugs_and_bad_options_are_not_called_poisoned() {
        let bug = Error::from(LogError::OutOfOrder {
            expected_lsn: 4,
            got_lsn: 9,
        });
        assert!(matches!(bug, Error::Internal { .. }), "{bug:?}");
        let bug = Error::from(LogError::NotAppended {
            lsn: 9,
            last_appended_lsn: 4,
        });
        assert!(matches!(bug, Error::Internal { .. }), "{bug:?}");
        let bug = Error::from(LogError::InvalidRecordType { record_type: 0 });
        assert!(matches!(bug, Error::Internal { .. }), "{bug:?}");
        let options = Error::from(LogError::InvalidOptions {
            reason: "segment_bytes 1 is outside 4096..=1099511627776".into(),
        });
        assert!(matches!(options, Error::InvalidArgument(_)), "{options:?}");
        let replay = Error::from(LogError::Replay("unknown record type 7".into()));
        assert!(matches!(replay, Error::Corrupted { .. }), "{replay:?}");
        let poisoned = Error::from(LogError::Poisoned {
            cause: "disk on fire".into(),
        });
        assert!(matches!(poisoned, Error::Poisoned { .. }), "{poisoned:?}");
    }
}

/// A key rendered for an error message: printable ASCII as is, other bytes as `\xNN`,
/// cut after 64 bytes so that a 64 KiB key does not flood a log.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyDisplay(Vec<u8>);

/// How many bytes of a key an error message shows.
const KEY_DISPLAY_BYTES_MAX: usize = 64;

impl KeyDisplay {
    /// Captures (a prefix of) `key` for display.
    pub fn new(key: &[u8]) -> Self {
        let mut bytes = key.get(..KEY_DISPLAY_BYTES_MAX).unwrap_or(key).to_vec();
        if key.len() > bytes.len() {
            bytes.extend_from_slice(b"...");
        }
        KeyDisplay(bytes)
    }
}

impl fmt::Display for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &byte in &self.0 {
            if byte.is_ascii_graphic() || byte == b' ' {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for KeyDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

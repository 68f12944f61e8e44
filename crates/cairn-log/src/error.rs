//! The one error type of the log, grouped by what the caller can do about it.
//!
//! - Fix the input: [`LogError::FrameTooLarge`], [`LogError::OutOfOrder`],
//!   [`LogError::InvalidRecordType`], [`LogError::NotAppended`], [`LogError::InvalidOptions`].
//! - The data is damaged: [`LogError::Corrupted`] names the file and byte offset.
//! - A file belongs to another database: [`LogError::ForeignFile`] names it and both ids.
//! - Reopen: [`LogError::Poisoned`] (an earlier write or fsync failed, so the state of unsynced
//!   data is unknown and nothing more is acknowledged), [`LogError::Closed`].
//! - The environment failed: [`LogError::Io`] names the operation and the path.
//!
//! The enum is deliberately exhaustive: callers (the engine's error conversion) match every
//! variant, so a new variant cannot be mapped to the wrong kind of error by a catch-all.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file-system call failed.
    #[error("I/O error: {operation} {}", path.display())]
    Io {
        /// What the log was doing, e.g. "sync segment".
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The log's files are damaged in a way a crash cannot explain.
    #[error("corrupted log: {} at offset {offset}: {reason}", file.display())]
    Corrupted {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage in `file`.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A segment file belongs to another database: its header names another database id.
    /// It is never read or replayed; remove it (or move it back where it belongs) and reopen.
    #[error("{} belongs to another database (its header names database {found}, this log is database {expected})", file.display())]
    ForeignFile {
        /// The foreign file.
        file: PathBuf,
        /// The id this log was opened with.
        expected: crate::identity::DatabaseId,
        /// The id the file's header names.
        found: crate::identity::DatabaseId,
    },
    /// An earlier write or fsync failed; the log acknowledges nothing more until reopened.
    #[error("the log is poisoned by an earlier I/O failure ({cause}); reopen it")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: String,
    },
    /// A frame's payload is above the configured limit; nothing was buffered.
    #[error("frame payload of {bytes} bytes is above the limit of {max} bytes")]
    FrameTooLarge {
        /// Payload bytes the frame would have (record prefix plus body).
        bytes: usize,
        /// `LogOptions::frame_payload_bytes_max`.
        max: usize,
    },
    /// An append did not carry the next LSN; nothing was buffered.
    #[error("append out of order: expected LSN {expected_lsn}, got {got_lsn}")]
    OutOfOrder {
        /// The LSN the log expected (previous + 1).
        expected_lsn: u64,
        /// The LSN the caller passed.
        got_lsn: u64,
    },
    /// The caller's replay callback refused a record during open.
    #[error("replay refused a record: {0}")]
    Replay(String),
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
    /// Record type 0 is reserved (zeroed space must never decode as a frame).
    #[error("record type {record_type} is reserved")]
    InvalidRecordType {
        /// The refused record type.
        record_type: u8,
    },
    /// `wait_durable` was asked for an LSN that was never appended.
    #[error("LSN {lsn} was never appended (last appended: {last_appended_lsn})")]
    NotAppended {
        /// The LSN asked for.
        lsn: u64,
        /// The last LSN appended.
        last_appended_lsn: u64,
    },
    /// `LogOptions` holds a value outside its documented range.
    #[error("invalid log options: {reason}")]
    InvalidOptions {
        /// Which option and why.
        reason: String,
    },
}

impl LogError {
    /// Builds [`LogError::Io`].
    pub fn io(operation: &'static str, path: &Path, source: std::io::Error) -> Self {
        LogError::Io {
            operation,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Builds [`LogError::Corrupted`].
    pub fn corrupted(file: &Path, offset: u64, reason: impl Into<String>) -> Self {
        LogError::Corrupted {
            file: file.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn io_error_display_names_operation_and_path_and_keeps_the_source() {
        let error = LogError::io(
            "sync segment",
            Path::new("log/00000000000000000001.wal"),
            std::io::Error::other("disk on fire"),
        );
        assert_eq!(
            error.to_string(),
            "I/O error: sync segment log/00000000000000000001.wal"
        );
        assert_eq!(
            error.source().map(ToString::to_string).as_deref(),
            Some("disk on fire")
        );
    }

    #[test]
    fn corrupted_display_names_file_offset_and_reason() {
        let error = LogError::corrupted(Path::new("a.wal"), 70, "crc mismatch");
        assert_eq!(
            error.to_string(),
            "corrupted log: a.wal at offset 70: crc mismatch"
        );
    }
}

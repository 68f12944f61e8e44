//! The error type of durable streams, grouped by what the caller can do about it.
//!
//! - Fix the input: [`StreamError::InvalidName`], [`StreamError::InvalidArgument`],
//!   [`StreamError::NotFound`], [`StreamError::GroupNotFound`], [`StreamError::AlreadyExists`],
//!   [`StreamError::Truncated`].
//! - Everything the log underneath reports, including damaged files
//!   ([`LogError::Corrupted`] naming file and offset), I/O failures, poisoning and closing,
//!   arrives unchanged as [`StreamError::Log`], so one match covers both layers.
//! - Another process holds the store: [`StreamError::Locked`].
//! - Too many streams in use at once: [`StreamError::TooManyOpenStreams`] (retry later).

use std::path::PathBuf;

use crate::error::LogError;

/// Everything that can go wrong in a stream store.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A stream name outside 1 to 512 bytes of `[A-Za-z0-9._-]`; nothing was written.
    #[error("stream name {name:?} must be 1 to 512 bytes of [A-Za-z0-9._-]")]
    InvalidName {
        /// The refused name (lossily decoded).
        name: String,
    },
    /// An argument outside its documented range; nothing was written.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Which argument and why.
        reason: String,
    },
    /// No stream has this name.
    #[error("stream {name:?} does not exist")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A consumer group operation on a group the stream does not have.
    #[error("stream {stream:?} has no group {group:?}")]
    GroupNotFound {
        /// The stream's name.
        stream: String,
        /// The group asked for.
        group: String,
    },
    /// `create` of a name that exists.
    #[error("stream {name:?} already exists")]
    AlreadyExists {
        /// The name asked for.
        name: String,
    },
    /// `read` of an offset below the first readable one (removed by `truncate_before`).
    #[error("offset {offset} was truncated; the first readable offset is {first_offset}")]
    Truncated {
        /// The offset asked for.
        offset: u64,
        /// The lowest readable offset.
        first_offset: u64,
    },
    /// `open_streams_max` streams are open and none can be released (each is in use, has a
    /// pending group message or a blocked reader); nothing was done. Retry later, or raise
    /// the limit.
    #[error("{limit} streams are open and none can be released")]
    TooManyOpenStreams {
        /// The store's `open_streams_max`.
        limit: usize,
    },
    /// Another holder has the store's directory locked.
    #[error("{} is locked by another process", dir.display())]
    Locked {
        /// The store's directory.
        dir: PathBuf,
    },
    /// The log, its files or the file system failed (see [`LogError`]).
    #[error(transparent)]
    Log(#[from] LogError),
}

impl StreamError {
    /// Builds [`LogError::Corrupted`] inside [`StreamError::Log`].
    pub(crate) fn corrupted(
        file: &std::path::Path,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        StreamError::Log(LogError::corrupted(file, offset, reason))
    }

    /// Builds [`LogError::Io`] inside [`StreamError::Log`].
    pub(crate) fn io(
        operation: &'static str,
        path: &std::path::Path,
        error: std::io::Error,
    ) -> Self {
        StreamError::Log(LogError::io(operation, path, error))
    }
}

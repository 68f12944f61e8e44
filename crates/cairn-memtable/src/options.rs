//! How a repository is configured: rotation, the immutable queue and its backpressure policy,
//! flush retries, the read-through cache and the optional write-ahead log.
//!
//! [`Options::validate`] refuses values outside the documented ranges instead of clamping them.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// What a writer does when the active memtable is full and the immutable queue has no room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// Wait up to this long for the flusher to make room, then fail with
    /// [`Error::Backpressure`]. The wait is counted in `Stats::stall_time`.
    Block(Duration),
    /// Fail at once with [`Error::Backpressure`].
    FailFast,
}

/// When an acknowledged write reaches the disk, with the write-ahead log on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSync {
    /// A write returns once it is in the log's buffer; a background thread writes and syncs
    /// every 10 ms. A crash loses at most about that much, and what survives is a prefix of
    /// the write order.
    Buffered,
    /// A write returns only once its log frame is synced (group commit: concurrent writers
    /// share one sync). Nothing acknowledged is lost. A concurrent reader may see the write a
    /// moment before it is acknowledged.
    Strict,
}

/// The optional write-ahead log.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// The log directory (owned by this repository alone).
    pub dir: PathBuf,
    /// When writes become durable.
    pub sync: WalSync,
    /// Size of each log segment (default 64 MiB; at least 4 KiB). Segments are deleted once
    /// every write in them is flushed and the persister synced.
    pub segment_bytes: u64,
}

impl WalOptions {
    /// A log in `dir` with the given sync mode and the default segment size.
    pub fn new(dir: impl Into<PathBuf>, sync: WalSync) -> Self {
        WalOptions {
            dir: dir.into(),
            sync,
            segment_bytes: cairn_log::options::SEGMENT_BYTES_DEFAULT,
        }
    }
}

/// Configuration of a [`crate::Repository`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Rotate the active memtable once it holds this many bytes (default 4 MiB, at least 1).
    pub rotate_bytes: usize,
    /// Rotate a non-empty active memtable this long after it became active (default 1 s;
    /// `None`: by size only). Done by the flusher thread, and only when the queue has room.
    pub rotate_after: Option<Duration>,
    /// Immutable memtables that may wait to be flushed (default 4, 1..=1024).
    pub immutable_max: usize,
    /// What a writer does when that queue is full (default: block up to 10 s).
    pub backpressure: Backpressure,
    /// First wait after a failed flush (default 10 ms); doubled per failure up to
    /// `retry_max` (default 1 s).
    pub retry_initial: Duration,
    /// Longest wait between flush attempts.
    pub retry_max: Duration,
    /// How long `flush` and `close` wait for the queue to drain (default 30 s).
    pub drain_timeout: Duration,
    /// Records (and absences) read from the store kept in the read-through cache (default
    /// 100,000; 0 turns the cache off).
    pub cache_entries: usize,
    /// The write-ahead log, off by default.
    pub wal: Option<WalOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rotate_bytes: 4 << 20,
            rotate_after: Some(Duration::from_secs(1)),
            immutable_max: 4,
            backpressure: Backpressure::Block(Duration::from_secs(10)),
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            cache_entries: 100_000,
            wal: None,
        }
    }
}

/// Largest accepted `immutable_max`.
pub const IMMUTABLE_MAX_LIMIT: usize = 1024;

impl Options {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| Err(Error::InvalidOptions(reason.to_owned()));
        if self.rotate_bytes == 0 {
            return invalid("rotate_bytes must be at least 1");
        }
        if !(1..=IMMUTABLE_MAX_LIMIT).contains(&self.immutable_max) {
            return invalid("immutable_max must be within 1..=1024");
        }
        if self.rotate_after.is_some_and(|after| after.is_zero()) {
            return invalid("rotate_after must be positive");
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return invalid("retry_initial must be positive and at most retry_max");
        }
        if let Some(wal) = &self.wal {
            if wal.segment_bytes < cairn_log::options::SEGMENT_BYTES_MIN {
                return invalid("wal.segment_bytes must be at least 4 KiB");
            }
        }
        Ok(())
    }
}

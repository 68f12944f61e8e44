//! How a database is opened: [`Options`], [`Durability`] and [`Isolation`].
//!
//! `Options::new(path)` describes a durable database (Strict by default); `Options::in_memory()`
//! one with no files at all. Every knob has a documented default and a checked range; `Db::open`
//! refuses out-of-range settings with `Error::InvalidArgument` rather than clamping them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_log::{FileSystem, RecoveryMode, StdFileSystem};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::limits;

/// What a returned `Ok` from a commit promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// No files. Everything is lost when the process ends.
    InMemory,
    /// Acknowledged once in the WAL buffer; written and fdatasync'ed in the background every
    /// `flush_interval`, or sooner once `buffer_bytes_max` is buffered. A crash loses at most
    /// the last interval, and what survives is always a prefix of the commit order.
    Buffered {
        /// How often the background writer syncs (default 10 ms).
        flush_interval: Duration,
        /// Buffered bytes that trigger an early flush; writers wait (backpressure) at twice this.
        buffer_bytes_max: usize,
    },
    /// Acknowledged only after the commit's WAL record is fdatasync'ed. Nothing acknowledged is
    /// ever lost, and a commit is not visible to other readers before it is durable.
    Strict,
}

impl Durability {
    /// `Buffered` with the default interval (10 ms) and buffer bound (4 MiB).
    pub fn buffered() -> Self {
        Durability::Buffered {
            flush_interval: limits::BUFFERED_FLUSH_INTERVAL_DEFAULT,
            buffer_bytes_max: limits::BUFFERED_BUFFER_BYTES_DEFAULT,
        }
    }
}

/// How a transaction is isolated from concurrent commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// Reads come from one version. Commit fails with `Conflict` if another commit wrote a key
    /// in this transaction's write set after it began (first committer wins). Write skew is
    /// possible.
    #[default]
    Snapshot,
    /// `Snapshot`, and commit also fails if any key read or any range scanned changed after the
    /// transaction began: no write skew, no phantoms.
    Serializable,
}

/// Settings for `Db::open`.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) path: Option<PathBuf>,
    pub(crate) durability: Durability,
    pub(crate) max_value_bytes: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) maintenance_interval: Duration,
    pub(crate) watch_queue_events: usize,
    pub(crate) file_system: Arc<dyn FileSystem>,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) checkpoint_wal_bytes: u64,
    pub(crate) wal_segment_bytes: u64,
    pub(crate) wal_recycle_segments: usize,
    /// `None`: the log's default (`cairn_log::FRAME_PAYLOAD_BYTES_MAX`).
    pub(crate) wal_frame_payload_bytes_max: Option<usize>,
    #[cfg(feature = "sabotage")]
    pub(crate) sabotage: cairn_log::Sabotage,
}

impl Options {
    /// A durable database in directory `path`, `Durability::Strict`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Options {
            path: Some(path.as_ref().to_path_buf()),
            durability: Durability::Strict,
            ..Options::in_memory()
        }
    }

    /// A database with no files, `Durability::InMemory`.
    pub fn in_memory() -> Self {
        Options {
            path: None,
            durability: Durability::InMemory,
            max_value_bytes: limits::VALUE_BYTES_MAX_DEFAULT,
            clock: Arc::new(SystemClock),
            maintenance_interval: limits::MAINTENANCE_INTERVAL_DEFAULT,
            watch_queue_events: limits::WATCH_QUEUE_EVENTS_DEFAULT,
            file_system: Arc::new(StdFileSystem),
            recovery_mode: RecoveryMode::Strict,
            checkpoint_wal_bytes: limits::CHECKPOINT_WAL_BYTES_DEFAULT,
            wal_segment_bytes: limits::WAL_SEGMENT_BYTES_DEFAULT,
            wal_recycle_segments: limits::WAL_RECYCLE_SEGMENTS_DEFAULT,
            wal_frame_payload_bytes_max: None,
            #[cfg(feature = "sabotage")]
            sabotage: cairn_log::Sabotage::None,
        }
    }

    /// Sets the durability mode.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the largest accepted value, in bytes (1 ..= 1 GiB; default 64 MiB).
    #[must_use]
    pub fn max_value_bytes(mut self, max_value_bytes: usize) -> Self {
        self.max_value_bytes = max_value_bytes;
        self
    }

    /// Sets the clock TTL deadlines are read from (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how often the background maintainer reaps expired keys and prunes old versions
    /// (default 100 ms; `Duration::ZERO` disables the thread, leaving `Db::run_maintenance`).
    #[must_use]
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// Sets each watcher's queue capacity, in events (1 ..= 1,048,576; default 4,096).
    #[must_use]
    pub fn watch_queue_events(mut self, events: usize) -> Self {
        self.watch_queue_events = events;
        self
    }

    /// Sets the file system every file access goes through (default: `std::fs`). Tests pass a
    /// fault-injecting one.
    #[must_use]
    pub fn file_system(mut self, file_system: Arc<dyn FileSystem>) -> Self {
        self.file_system = file_system;
        self
    }

    /// Sets what recovery does with damage it cannot call a torn tail (default
    /// `RecoveryMode::Strict`: refuse to open with `Error::Corrupted`). `Salvage` opens with
    /// the longest valid prefix of the log and reports what it dropped.
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Sets how many bytes of WAL written since the last checkpoint trigger the next automatic
    /// one (1 MiB ..= 64 GiB; default 64 MiB). Automatic checkpoints run on the maintenance
    /// thread, so `maintenance_interval(Duration::ZERO)` turns them off.
    #[must_use]
    pub fn checkpoint_wal_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_wal_bytes = bytes;
        self
    }

    /// Sets the preallocated size of each WAL segment file (4 KiB ..= 1 GiB; default 64 MiB).
    #[must_use]
    pub fn wal_segment_bytes(mut self, bytes: u64) -> Self {
        self.wal_segment_bytes = bytes;
        self
    }

    /// Sets how many retired WAL segments are kept and written over as new segments instead of
    /// deleted (0 ..= 16; default 2). A write plus fdatasync into a recycled segment does not
    /// also commit a block allocation, which a new, sparse segment makes it do: measured here
    /// as about a third of a durable 1,000-key batch. The price is up to this many segments of
    /// disk kept, and one recovery trade-off (docs/design.md, "Recycled WAL segments"). 0
    /// deletes every retired segment.
    #[must_use]
    pub fn wal_recycle_segments(mut self, segments: usize) -> Self {
        self.wal_recycle_segments = segments;
        self
    }

    /// Test-only, not part of the API: lowers the largest WAL frame payload (record prefix plus
    /// commit body) from its default of 2 GiB, so tests can reach the frame limit with small
    /// commits. A database must always be reopened with the value it was written with: recovery
    /// refuses larger frames. Out of range (16 ..= 2 GiB) is refused by `Db::open`.
    #[doc(hidden)]
    #[must_use]
    pub fn test_wal_frame_payload_bytes_max(mut self, bytes: usize) -> Self {
        self.wal_frame_payload_bytes_max = Some(bytes);
        self
    }

    /// Test-only: switches on one deliberately broken build, which the crash matrix must catch.
    #[cfg(feature = "sabotage")]
    #[must_use]
    pub fn sabotage(mut self, sabotage: cairn_log::Sabotage) -> Self {
        self.sabotage = sabotage;
        self
    }

    /// Checks every setting against its documented range.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_value_bytes == 0 || self.max_value_bytes > limits::VALUE_BYTES_MAX_CEILING {
            return Err(Error::InvalidArgument(format!(
                "max_value_bytes is {}; it must be 1 to {}",
                self.max_value_bytes,
                limits::VALUE_BYTES_MAX_CEILING
            )));
        }
        if self.watch_queue_events == 0 || self.watch_queue_events > limits::WATCH_QUEUE_EVENTS_MAX
        {
            return Err(Error::InvalidArgument(format!(
                "watch_queue_events is {}; it must be 1 to {}",
                self.watch_queue_events,
                limits::WATCH_QUEUE_EVENTS_MAX
            )));
        }
        if !(limits::CHECKPOINT_WAL_BYTES_MIN..=limits::CHECKPOINT_WAL_BYTES_MAX)
            .contains(&self.checkpoint_wal_bytes)
        {
            return Err(Error::InvalidArgument(format!(
                "checkpoint_wal_bytes is {}; it must be {} to {}",
                self.checkpoint_wal_bytes,
                limits::CHECKPOINT_WAL_BYTES_MIN,
                limits::CHECKPOINT_WAL_BYTES_MAX
            )));
        }
        if !(limits::WAL_SEGMENT_BYTES_MIN..=limits::WAL_SEGMENT_BYTES_MAX)
            .contains(&self.wal_segment_bytes)
        {
            return Err(Error::InvalidArgument(format!(
                "wal_segment_bytes is {}; it must be {} to {}",
                self.wal_segment_bytes,
                limits::WAL_SEGMENT_BYTES_MIN,
                limits::WAL_SEGMENT_BYTES_MAX
            )));
        }
        if self.wal_recycle_segments > limits::WAL_RECYCLE_SEGMENTS_MAX {
            return Err(Error::InvalidArgument(format!(
                "wal_recycle_segments is {}; it must be 0 to {}",
                self.wal_recycle_segments,
                limits::WAL_RECYCLE_SEGMENTS_MAX
            )));
        }
        if let Durability::Buffered {
            flush_interval,
            buffer_bytes_max,
        } = self.durability
        {
            if flush_interval.is_zero() || flush_interval > limits::BUFFERED_FLUSH_INTERVAL_MAX {
                return Err(Error::InvalidArgument(format!(
                    "Buffered flush_interval is {flush_interval:?}; it must be above zero and at \
                     most {:?}",
                    limits::BUFFERED_FLUSH_INTERVAL_MAX
                )));
            }
            if !(limits::BUFFERED_BUFFER_BYTES_MIN..=limits::BUFFERED_BUFFER_BYTES_MAX)
                .contains(&buffer_bytes_max)
            {
                return Err(Error::InvalidArgument(format!(
                    "Buffered buffer_bytes_max is {buffer_bytes_max}; it must be {} to {}",
                    limits::BUFFERED_BUFFER_BYTES_MIN,
                    limits::BUFFERED_BUFFER_BYTES_MAX
                )));
            }
        }
        match (&self.path, self.durability) {
            (Some(path), Durability::InMemory) => Err(Error::InvalidArgument(format!(
                "durability InMemory keeps no files, but a directory ({}) was given; \
                 use Options::in_memory()",
                path.display()
            ))),
            (None, Durability::Buffered { .. } | Durability::Strict) => {
                Err(Error::InvalidArgument(
                    "Buffered and Strict durability need a directory: use Options::new(path)"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

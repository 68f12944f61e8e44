//! How a stream store is configured: durability, segment size, recovery mode, the sparse
//! index's spacing, the in-memory tail's size, and the clock that stamps messages.
//!
//! [`StreamOptions::new`] fills in the defaults; `Streams::open` refuses values outside the
//! documented ranges with `InvalidArgument` instead of clamping them.

use std::sync::Arc;
use std::time::Duration;

use crate::options::{RecoveryMode, SyncPolicy, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};

use super::error::StreamError;

/// Default segment size of a stream: 8 MiB. Smaller than the engine's WAL because a store
/// holds many streams and each preallocates its active segment.
pub const STREAM_SEGMENT_BYTES_DEFAULT: u64 = 8 << 20;
/// Default spacing of the sparse in-memory index: one entry per 4 KiB of frames.
pub const INDEX_INTERVAL_BYTES_DEFAULT: u64 = 4 << 10;
/// Default size of a stream's in-memory tail of recent batches: 1 MiB (batches not yet
/// durable are kept whatever this says).
pub const TAIL_BYTES_DEFAULT: usize = 1 << 20;

/// Milliseconds since the Unix epoch; injectable so that tests control time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// A clock that calls `now`.
    pub fn new(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    /// The system clock.
    pub fn system() -> Self {
        Clock::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
                })
        })
    }

    /// The current time.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Clock")
    }
}

/// Configuration of a stream store.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// When appends are acknowledged: [`SyncPolicy::Strict`] (after `fdatasync`, with group
    /// commit) or [`SyncPolicy::Buffered`] (in memory, synced by the store's one flush thread
    /// every `flush_interval`).
    pub sync: SyncPolicy,
    /// Preallocated size of each segment: `4 KiB..=1 TiB`, default
    /// [`STREAM_SEGMENT_BYTES_DEFAULT`].
    pub segment_bytes: u64,
    /// What open does with damage a crash cannot explain. `Strict` reads only each stream's
    /// tail; `Salvage` reads every segment so that damage anywhere is set aside.
    pub recovery: RecoveryMode,
    /// Spacing of the sparse index, in frame bytes: `1..=segment_bytes`, default
    /// [`INDEX_INTERVAL_BYTES_DEFAULT`].
    pub index_interval_bytes: u64,
    /// Bytes of recent durable batches a stream keeps in memory for reads, default
    /// [`TAIL_BYTES_DEFAULT`]; 0 keeps only batches not yet durable.
    pub tail_bytes_max: usize,
    /// Stamps every batch (a clock that steps back is clamped, see the module docs).
    pub clock: Clock,
}

impl StreamOptions {
    /// The defaults, with `sync` as given.
    pub fn new(sync: SyncPolicy) -> Self {
        StreamOptions {
            sync,
            segment_bytes: STREAM_SEGMENT_BYTES_DEFAULT,
            recovery: RecoveryMode::Strict,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            tail_bytes_max: TAIL_BYTES_DEFAULT,
            clock: Clock::system(),
        }
    }

    /// The flush interval of Buffered mode, `None` in Strict mode.
    pub(crate) fn flush_interval(&self) -> Option<Duration> {
        match self.sync {
            SyncPolicy::Strict => None,
            SyncPolicy::Buffered { flush_interval, .. } => Some(flush_interval),
        }
    }

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), StreamError> {
        let invalid = |reason: String| Err(StreamError::InvalidArgument { reason });
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return invalid(format!(
                "segment_bytes {} is outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ));
        }
        if !(1..=self.segment_bytes).contains(&self.index_interval_bytes) {
            return invalid(format!(
                "index_interval_bytes {} is outside 1..=segment_bytes",
                self.index_interval_bytes
            ));
        }
        if let SyncPolicy::Buffered {
            flush_interval,
            buffer_bytes_max,
        } = self.sync
        {
            if flush_interval.is_zero() || buffer_bytes_max == 0 {
                return invalid("flush_interval and buffer_bytes_max must be above zero".into());
            }
        }
        Ok(())
    }
}

//! How a stream store is configured: durability, segment size, recovery mode, the sparse
//! index's spacing, the in-memory tail's size, the clock that stamps messages, retention
//! (by size, age and message count, with per-stream overrides) and how often the store's
//! maintenance thread applies it.
//!
//! [`StreamOptions::new`] fills in the defaults; `Streams::open` refuses values outside the
//! documented ranges with `InvalidArgument` instead of clamping them.

use std::collections::BTreeMap;
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

/// Default bound on the segments retention deletes from one stream in one pass.
pub const RETENTION_SEGMENTS_PER_PASS_DEFAULT: usize = 16;

/// When a stream's oldest segments are deleted. Every limit is optional (`None`: no limit of
/// that kind); a sealed segment is deleted as soon as any limit says so. Retention deletes
/// whole segments only, oldest first, never the one being appended to, so a stream always
/// keeps at least its active segment, and keeps up to one segment more than a limit asks.
///
/// - `max_bytes`: a segment is deleted when the segment files after it (their length on
///   disk, preallocation included) add up to at least `max_bytes`.
/// - `max_age_ms`: a segment is deleted when every message in it is older than
///   `max_age_ms` by the store's clock, that is when the next segment's first batch is
///   stamped more than `max_age_ms` before now (timestamps never decrease, so nothing in
///   the segment is newer than that batch).
/// - `max_messages`: a segment is deleted when the messages after it number at least
///   `max_messages` (so retention never removes one of the newest `max_messages`).
/// - `respect_groups`: never delete a message some consumer group of the stream has not
///   committed: the new first offset stays at or below the lowest committed offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the segments holding the newest `max_bytes` bytes on disk.
    pub max_bytes: Option<u64>,
    /// Keep the segments holding a message at most `max_age_ms` old.
    pub max_age_ms: Option<u64>,
    /// Keep the segments holding the newest `max_messages` messages.
    pub max_messages: Option<u64>,
    /// Never delete what a consumer group has not committed.
    pub respect_groups: bool,
}

impl Retention {
    /// No limit: nothing is ever deleted by retention.
    pub const NONE: Retention = Retention {
        max_bytes: None,
        max_age_ms: None,
        max_messages: None,
        respect_groups: false,
    };

    /// True when some limit is set.
    pub fn is_limited(&self) -> bool {
        self.max_bytes.is_some() || self.max_age_ms.is_some() || self.max_messages.is_some()
    }
}

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
    /// Retention of every stream without an override; default [`Retention::NONE`].
    pub retention: Retention,
    /// Retention of the streams named here, instead of `retention`. Not persisted: give the
    /// same map at every open (or change it at run time with `Streams::set_retention`).
    pub retention_overrides: BTreeMap<String, Retention>,
    /// How often the store's maintenance thread applies retention; `None` (the default)
    /// applies it only when `Streams::apply_retention` is called. In Buffered mode the flush
    /// thread does it; in Strict mode a maintenance thread is started for it.
    pub retention_interval: Option<Duration>,
    /// Most segments one retention pass deletes from one stream, `1..`, default
    /// [`RETENTION_SEGMENTS_PER_PASS_DEFAULT`]; the rest waits for the next pass.
    pub retention_segments_per_pass: usize,
    /// Open only each stream's metadata at store open, and its log at its first use
    /// (default false: open recovers every stream's log, so that damage is reported by
    /// open). With it, open time no longer grows with the streams' logs: it reads one
    /// directory listing and one metadata file per stream.
    pub lazy_open: bool,
    /// Release a stream unused for this long (its log, file handles, in-memory tail and
    /// sparse index; a small descriptor stays), checked by the maintenance thread (started
    /// for it in Strict mode); it reopens at its next use. `None` (the default) never
    /// releases.
    pub idle_release_after: Option<Duration>,
    /// Most streams open at once, `1..`; `None` (the default) for no limit. Opening one more
    /// releases the least recently used stream that can be released; if none can, the
    /// operation fails at once with `StreamError::TooManyOpenStreams`.
    pub open_streams_max: Option<usize>,
    /// A deliberately broken build for the crash matrix, passed to every stream's log;
    /// default [`crate::Sabotage::None`].
    #[cfg(feature = "sabotage")]
    pub sabotage: crate::Sabotage,
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
            retention: Retention::NONE,
            retention_overrides: BTreeMap::new(),
            retention_interval: None,
            retention_segments_per_pass: RETENTION_SEGMENTS_PER_PASS_DEFAULT,
            lazy_open: false,
            idle_release_after: None,
            open_streams_max: None,
            #[cfg(feature = "sabotage")]
            sabotage: crate::Sabotage::None,
        }
    }

    /// The flush interval of Buffered mode, `None` in Strict mode.
    pub(crate) fn flush_interval(&self) -> Option<Duration> {
        match self.sync {
            SyncPolicy::Strict => None,
            SyncPolicy::Buffered { flush_interval, .. } => Some(flush_interval),
        }
    }

    /// The retention of stream `name` at open: its override, or the default.
    pub fn retention_of(&self, name: &str) -> Retention {
        self.retention_overrides
            .get(name)
            .copied()
            .unwrap_or(self.retention)
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
        if self.retention_segments_per_pass == 0 {
            return invalid("retention_segments_per_pass must be above zero".into());
        }
        if self
            .retention_interval
            .is_some_and(|interval| interval.is_zero())
        {
            return invalid("retention_interval must be above zero".into());
        }
        if self.idle_release_after.is_some_and(|idle| idle.is_zero()) {
            return invalid("idle_release_after must be above zero".into());
        }
        if self.open_streams_max == Some(0) {
            return invalid("open_streams_max must be above zero".into());
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

//! How a [`crate::Log`] is configured: sync policy, segment size, frame limit, recovery mode,
//! and (test builds only) the deliberately broken behaviours the crash matrix must catch.
//!
//! Every limit is a named constant; [`LogOptions::new`] fills in the defaults and
//! `Log::open` refuses values outside the documented ranges with
//! [`crate::LogError::InvalidOptions`] instead of clamping them silently.

use std::time::Duration;

use crate::error::LogError;
use crate::format::{FRAME_PAYLOAD_BYTES_MAX, RECORD_PREFIX_BYTES};
use crate::identity::DatabaseId;

/// Default preallocated size of a segment: 64 MiB, large enough that rotation (two syncs and
/// a file creation) is rare, small enough that removing a covered segment frees space soon.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// Smallest accepted segment size: 4 KiB (one page; tests use it to rotate often).
pub const SEGMENT_BYTES_MIN: u64 = 4 << 10;
/// Largest accepted configured segment size: 1 TiB (a frame larger than the configured size
/// still gets a segment that fits it).
pub const SEGMENT_BYTES_MAX: u64 = 1 << 40;
/// Most retired segments a log keeps for recycling ([`LogOptions::recycle_segments`]): 16.
pub const RECYCLE_SEGMENTS_MAX: usize = 16;
/// Default interval of the background flush in [`SyncPolicy::Buffered`]: 10 ms, the most a
/// crash may lose.
pub const FLUSH_INTERVAL_DEFAULT: Duration = Duration::from_millis(10);
/// Default buffered bytes that wake the background flush early in [`SyncPolicy::Buffered`]:
/// 4 MiB. Appends block (backpressure) while more than twice this is buffered.
pub const BUFFER_BYTES_MAX_DEFAULT: usize = 4 << 20;
/// Appends in [`SyncPolicy::Buffered`] block while more than this many times
/// `buffer_bytes_max` is buffered, so memory stays bounded when the disk falls behind.
pub const BACKPRESSURE_FACTOR: usize = 2;

/// When appended frames become durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Frames become durable when someone waits for them: the first waiter writes and syncs
    /// everything buffered for all waiters (leader/follower group commit).
    Strict,
    /// A background thread ("cairn-wal-flush") writes and syncs every `flush_interval`, and
    /// sooner once `buffer_bytes_max` is buffered. Waiting still works (it flushes itself).
    Buffered {
        /// The most time an appended frame stays only in memory (give or take one flush).
        flush_interval: Duration,
        /// Buffered bytes that wake the flush early; appends block above twice this.
        buffer_bytes_max: usize,
    },
}

impl SyncPolicy {
    /// [`SyncPolicy::Buffered`] with the default interval and buffer size.
    pub fn buffered() -> Self {
        SyncPolicy::Buffered {
            flush_interval: FLUSH_INTERVAL_DEFAULT,
            buffer_bytes_max: BUFFER_BYTES_MAX_DEFAULT,
        }
    }
}

/// What `Log::open` does with a damaged log (never with a torn tail, which is always cut).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Fail with [`LogError::Corrupted`] naming the file and offset.
    #[default]
    Strict,
    /// Keep the longest valid prefix of the log, set the rest aside and report it in
    /// `ReplayReport::salvaged`.
    Salvage,
}

/// Called when a [`SyncPolicy::Buffered`] log without its own flush thread wants a flush
/// soon (see [`LogOptions::flush_waker`]). It must be quick and must not call into the log.
#[derive(Clone)]
pub struct FlushWaker(pub std::sync::Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for FlushWaker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("FlushWaker")
    }
}

/// Deliberately broken builds for the crash matrix: each must be caught by it.
#[cfg(feature = "sabotage")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sabotage {
    /// Correct behaviour.
    #[default]
    None,
    /// Never call `sync_data` on segment files, yet report frames durable.
    AckBeforeFsync,
    /// Skip every directory sync.
    NoDirSync,
    /// Used by the engine only: drop WAL segments before the snapshot covering them is durable.
    WalDeletedBeforeSnapshotDurable,
    /// Treat any invalid frame, in any segment, as the clean end of the log: no forward scan,
    /// never `Corrupted`.
    CrcFailureIsTornTail,
    /// Recycle retired segments without setting the header flag, so readers take the stale
    /// frames after a recycled segment's own for damage.
    RecycleWithoutFlag,
}

/// Configuration of a [`crate::Log`].
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Preallocated size of each segment, header included:
    /// [`SEGMENT_BYTES_MIN`]..=[`SEGMENT_BYTES_MAX`], default [`SEGMENT_BYTES_DEFAULT`].
    pub segment_bytes: u64,
    /// When frames become durable.
    pub sync: SyncPolicy,
    /// Largest accepted frame payload (16-byte record prefix plus body), for appends and for
    /// recovery: 16..=[`FRAME_PAYLOAD_BYTES_MAX`], default [`FRAME_PAYLOAD_BYTES_MAX`]. Lowering
    /// it below frames already written makes recovery reject them.
    pub frame_payload_bytes_max: usize,
    /// What open does with a damaged log.
    pub recovery: RecoveryMode,
    /// Who runs the background flush of [`SyncPolicy::Buffered`]: `None` (the default) starts
    /// the log's own thread; `Some(waker)` starts none, and the owner instead calls
    /// [`crate::Log::flush_tick`] every `flush_interval` and whenever `waker` is called (an
    /// append crossed `buffer_bytes_max`), e.g. from a pool shared by many logs. An append
    /// that finds the buffer over its backpressure limit then flushes it itself, so a busy
    /// pool slows appends down but never stalls them.
    pub flush_waker: Option<FlushWaker>,
    /// The database the log belongs to: written into every segment header it creates, and
    /// required of every segment it opens (a segment naming another id is refused with
    /// [`crate::LogError::ForeignFile`]). Default [`DatabaseId::UNSET`], for a log that belongs
    /// to no particular database.
    pub database_id: DatabaseId,
    /// Tail-only recovery: when true, `Log::open` does not read a segment whose frames all lie
    /// at or below `after_lsn`, i.e. one followed by a segment whose first LSN is at or below
    /// `after_lsn + 1`. Only its 64-byte header is read (to check its identity and order); its
    /// frames are counted as skipped, unverified. This is sound because a segment is synced
    /// whole before the next one is created, so only the last segments can hold a torn tail.
    /// Default `false`: every segment is read and checked, as before.
    pub skip_covered_segments: bool,
    /// How many retired segments (`Log::remove_segments_through`) to keep as
    /// `{first_lsn:020}.wal.free` and turn into new segments instead of creating files:
    /// 0..=[`RECYCLE_SEGMENTS_MAX`], default 0 (every retired segment is deleted). A recycled
    /// segment's blocks are already allocated, so a write plus `sync_data` into it does not
    /// also commit a block allocation; the price is that much disk kept, and the recovery
    /// trade-off in `crate::reader`. Only files of exactly `segment_bytes` are kept.
    pub recycle_segments: usize,
    /// The deliberately broken behaviour of this build, if any.
    #[cfg(feature = "sabotage")]
    pub sabotage: Sabotage,
}

impl LogOptions {
    /// The defaults, with `sync` as given.
    pub fn new(sync: SyncPolicy) -> Self {
        LogOptions {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            sync,
            frame_payload_bytes_max: FRAME_PAYLOAD_BYTES_MAX,
            recovery: RecoveryMode::Strict,
            database_id: DatabaseId::UNSET,
            flush_waker: None,
            skip_covered_segments: false,
            recycle_segments: 0,
            #[cfg(feature = "sabotage")]
            sabotage: Sabotage::None,
        }
    }

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), LogError> {
        let invalid = |reason: String| Err(LogError::InvalidOptions { reason });
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return invalid(format!(
                "segment_bytes {} is outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ));
        }
        if !(RECORD_PREFIX_BYTES..=FRAME_PAYLOAD_BYTES_MAX).contains(&self.frame_payload_bytes_max)
        {
            return invalid(format!(
                "frame_payload_bytes_max {} is outside {RECORD_PREFIX_BYTES}..={FRAME_PAYLOAD_BYTES_MAX}",
                self.frame_payload_bytes_max
            ));
        }
        if self.recycle_segments > RECYCLE_SEGMENTS_MAX {
            return invalid(format!(
                "recycle_segments {} is above {RECYCLE_SEGMENTS_MAX}",
                self.recycle_segments
            ));
        }
        if let SyncPolicy::Buffered {
            flush_interval,
            buffer_bytes_max,
        } = self.sync
        {
            if flush_interval.is_zero() {
                return invalid("flush_interval must be above zero".to_owned());
            }
            if buffer_bytes_max == 0 {
                return invalid("buffer_bytes_max must be above zero".to_owned());
            }
        }
        Ok(())
    }

    /// True when this build must skip `sync_data` on segments.
    #[cfg_attr(
        not(feature = "sabotage"),
        expect(
            clippy::unused_self,
            reason = "reads the sabotage field in sabotage builds"
        )
    )]
    pub(crate) fn skips_segment_sync(&self) -> bool {
        #[cfg(feature = "sabotage")]
        {
            self.sabotage == Sabotage::AckBeforeFsync
        }
        #[cfg(not(feature = "sabotage"))]
        {
            false
        }
    }

    /// True when this build must skip every directory sync.
    #[cfg_attr(
        not(feature = "sabotage"),
        expect(
            clippy::unused_self,
            reason = "reads the sabotage field in sabotage builds"
        )
    )]
    pub(crate) fn skips_dir_sync(&self) -> bool {
        #[cfg(feature = "sabotage")]
        {
            self.sabotage == Sabotage::NoDirSync
        }
        #[cfg(not(feature = "sabotage"))]
        {
            false
        }
    }

    /// True when this build recycles segments without flagging them.
    #[cfg_attr(
        not(feature = "sabotage"),
        expect(
            clippy::unused_self,
            reason = "reads the sabotage field in sabotage builds"
        )
    )]
    pub(crate) fn recycles_without_flag(&self) -> bool {
        #[cfg(feature = "sabotage")]
        {
            self.sabotage == Sabotage::RecycleWithoutFlag
        }
        #[cfg(not(feature = "sabotage"))]
        {
            false
        }
    }

    /// True when this build treats any invalid frame as the clean end of the log.
    #[cfg_attr(
        not(feature = "sabotage"),
        expect(
            clippy::unused_self,
            reason = "reads the sabotage field in sabotage builds"
        )
    )]
    pub(crate) fn crc_failure_is_torn_tail(&self) -> bool {
        #[cfg(feature = "sabotage")]
        {
            self.sabotage == Sabotage::CrcFailureIsTornTail
        }
        #[cfg(not(feature = "sabotage"))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let options = LogOptions::new(SyncPolicy::Strict);
        assert_eq!(options.segment_bytes, 64 << 20);
        assert_eq!(options.frame_payload_bytes_max, FRAME_PAYLOAD_BYTES_MAX);
        assert_eq!(options.recovery, RecoveryMode::Strict);
        options.validate().expect("defaults are valid");
        LogOptions::new(SyncPolicy::buffered())
            .validate()
            .expect("buffered defaults are valid");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut options = LogOptions::new(SyncPolicy::Strict);
        options.segment_bytes = SEGMENT_BYTES_MIN - 1;
        assert!(matches!(
            options.validate(),
            Err(LogError::InvalidOptions { .. })
        ));
        let mut options = LogOptions::new(SyncPolicy::Strict);
        options.frame_payload_bytes_max = 15;
        assert!(options.validate().is_err());
        let mut options = LogOptions::new(SyncPolicy::Strict);
        options.recycle_segments = RECYCLE_SEGMENTS_MAX + 1;
        assert!(options.validate().is_err());
        let options = LogOptions::new(SyncPolicy::Buffered {
            flush_interval: Duration::ZERO,
            buffer_bytes_max: 1,
        });
        assert!(options.validate().is_err());
    }
}

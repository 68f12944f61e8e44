//! The log itself: appends, group commit, the background flusher, and recovery at open.
//!
//! Appends copy one encoded frame into an in-memory pending buffer; the mutex is held only for
//! that copy, and an append never does I/O. Frames become durable in groups:
//! - [`SyncPolicy::Strict`]: leader/follower group commit on the calling threads. A thread
//!   waiting for an LSN that is not durable becomes the leader if no one is: it takes the whole
//!   pending buffer, writes it with one positional write per segment it touches, calls
//!   `sync_data` once, publishes the durable LSN and wakes everyone. The others wait on a
//!   condition variable; whoever is still not durable then leads the next group. No lock is
//!   held across a write or a sync except the leader-only I/O state, which no one else waits
//!   on.
//! - [`SyncPolicy::Buffered`]: a thread named "cairn-wal-flush" leads a group every
//!   `flush_interval`, or sooner once `buffer_bytes_max` is buffered (woken only when the
//!   buffer crosses that size, not per append). Appends block while more than
//!   [`crate::options::BACKPRESSURE_FACTOR`] times that is buffered. `wait_durable` and `sync`
//!   work as in Strict mode. With `LogOptions::flush_waker` the log starts no thread: its
//!   owner calls [`Log::flush_tick`] (every `flush_interval`, and when the waker is called),
//!   so many logs can share a few threads, and an append over the backpressure limit leads
//!   the flush itself instead of waiting.
//!
//! Rotation: when the next frame does not fit the current segment, the leader writes what
//! fits, syncs the old segment, creates the next one (sized to fit a frame larger than a
//! segment) and continues, so the old segment is durable before anything in the new one is
//! acknowledged.
//!
//! Failure: any failed write, sync, `set_len`, creation or directory sync poisons the log. The
//! leader gets the I/O error, every other waiter of that group and every later call gets
//! [`LogError::Poisoned`], and nothing in the failed group is reported durable. A sync is
//! never retried: after a failed `fdatasync` the state of the page cache is unknown.
//!
//! Open recovers first (see [`crate::reader`] for the classification): it refuses a directory
//! holding a segment of another database ([`LogError::ForeignFile`]), replays every frame
//! above `after_lsn`, cuts a torn tail and syncs, sets aside damage in
//! [`RecoveryMode::Salvage`], and then always appends into a new segment, so a file that
//! recovery read is never written again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::LogError;
use crate::format::{to_u64, RECORD_PREFIX_BYTES, SEGMENT_DAMAGED_SUFFIX, SEGMENT_HEADER_BYTES};
use crate::frame::{encode_frame, frame_bytes_at, FrameRef};
use crate::fs::{FileHandle, FileSystem, OpenMode};
use crate::identity::DatabaseId;
use crate::options::BACKPRESSURE_FACTOR;
pub use crate::options::{LogOptions, RecoveryMode, SyncPolicy};
use crate::reader::{scan_log, LogScan, ScanSettings};
pub use crate::reader::{Dropped, TornTail};
use crate::segment::{
    create_segment, free_segment_path, recycle_segment, remove_free_segments, remove_temp_segments,
    segment_bytes_for, sync_dir, sync_segment, SegmentHeader, SyncCalls,
};

/// Capacity of the group buffer kept between groups. A larger one (left by a huge frame) is
/// shrunk back to this, so one large commit does not pin its memory for the log's lifetime.
pub const RETAINED_BUFFER_BYTES_MAX: usize = 16 << 20;

/// Name of the background flush thread of [`SyncPolicy::Buffered`].
pub const FLUSH_THREAD_NAME: &str = "cairn-wal-flush";

/// What [`Log::open`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segment files read.
    pub segments: usize,
    /// Frames passed to `apply` (LSN above `after_lsn`).
    pub frames_replayed: u64,
    /// Frames checked but not applied (LSN at or below `after_lsn`).
    pub frames_skipped: u64,
    /// The highest LSN known: the last valid frame's, or `after_lsn` if that is higher (no
    /// frame, or the log ended below the caller's snapshot). The next append takes the next LSN.
    pub last_lsn: u64,
    /// Commit version of the last valid frame read (applied or skipped); 0 if none. Segments
    /// that `LogOptions::skip_covered_segments` left unread contribute nothing here.
    pub last_version: u64,
    /// LSN of the last valid frame read (applied or skipped); `None` if the log holds none.
    /// Unlike `last_lsn`, never raised to `after_lsn`, so a caller can tell a log that ends
    /// below its snapshot.
    pub last_frame_lsn: Option<u64>,
    /// The torn tail that was cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// What [`RecoveryMode::Salvage`] set aside, one entry per file.
    pub salvaged: Vec<Dropped>,
    /// Bytes read from segment files.
    pub bytes_read: u64,
}

/// Counters since open, so that benches can report commits per fsync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Frames accepted by `append`.
    pub frames_appended: u64,
    /// Encoded bytes accepted by `append`.
    pub bytes_appended: u64,
    /// Groups written and synced (each ends with one `sync_data`).
    pub groups_written: u64,
    /// Frames written to segment files.
    pub frames_written: u64,
    /// Frame bytes written to segment files.
    pub bytes_written: u64,
    /// `sync_data` calls on segment files (groups, rotations, segment creation, recovery).
    pub syncs: u64,
    /// Segments created as new files (the one open creates included).
    pub segments_created: u64,
    /// Segments made from a retired file (`LogOptions::recycle_segments`).
    pub segments_recycled: u64,
    /// Segments `remove_segments_through` took out of the log, deleted or kept for recycling.
    pub segments_removed: u64,
}

/// Atomic counters behind [`LogStats`].
#[derive(Debug, Default)]
struct Counters {
    frames_appended: AtomicU64,
    bytes_appended: AtomicU64,
    groups_written: AtomicU64,
    frames_written: AtomicU64,
    bytes_written: AtomicU64,
    syncs: AtomicU64,
    segments_created: AtomicU64,
    segments_recycled: AtomicU64,
    segments_removed: AtomicU64,
}

/// Adds to a counter; statistics need no ordering with anything else.
fn count(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

/// Frames appended but not yet taken by a leader.
#[derive(Debug)]
struct Pending {
    /// Encoded frames, back to back.
    buffer: Vec<u8>,
    /// LSN of the first frame in `buffer` (`last_lsn + 1` when empty).
    first_lsn: u64,
    /// LSN of the last frame appended.
    last_lsn: u64,
    /// Set by `close`: appends fail from then on.
    closing: bool,
}

/// Most times a leader yields to gather the followers of the last group
/// ([`Inner::gather_followers`]).
const GATHER_YIELDS: usize = 8;

/// Leader election state of group commit.
#[derive(Debug, Default)]
struct GroupState {
    /// A leader is writing and syncing a group.
    leader_active: bool,
    /// Followers waiting for the current leader.
    waiting: usize,
    /// Followers the last leader woke when its group was durable.
    woken_by_last: usize,
}

/// The segment being appended to; only a leader touches it.
#[derive(Debug)]
struct IoState {
    file: Box<dyn FileHandle>,
    path: PathBuf,
    /// Where the next frame goes.
    write_offset: u64,
    /// The segment's preallocated size.
    segment_bytes: u64,
    /// Number of the next segment to create.
    next_segment_number: u64,
    /// Written since the last `sync_data`.
    unsynced: bool,
    /// The buffer of the previous group, cleared, swapped in for the next one.
    spare: Vec<u8>,
}

/// A segment file of this log, for `wal_bytes` and `remove_segments_through`.
#[derive(Clone, Debug)]
struct LiveSegment {
    path: PathBuf,
    first_lsn: u64,
    /// LSN of its last frame; `None` while it holds none.
    last_lsn: Option<u64>,
    /// Frame bytes written to it.
    frame_bytes: u64,
    /// Kept for recycling when retired: only a segment this log created (or recycled) and
    /// wrote in order, of exactly `segment_bytes`. A segment found at open may hold frames a
    /// crash left after a gap of unwritten bytes, with LSNs the log reuses; it is deleted.
    recyclable: bool,
}

impl LiveSegment {
    /// The last LSN it covers (the one before its first when it holds no frame).
    fn covers_through(&self) -> u64 {
        self.last_lsn
            .unwrap_or_else(|| self.first_lsn.saturating_sub(1))
    }
}

/// State shared by the [`Log`] handle and its flush thread.
#[derive(Debug)]
struct Inner {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    options: LogOptions,
    calls: SyncCalls,
    /// `Some((threshold, backpressure))` in Buffered mode.
    buffered: Option<(usize, usize)>,
    pending: Mutex<Pending>,
    /// Signalled when a leader empties the pending buffer, or on close or poison.
    space_available: Condvar,
    /// Wakes the flush thread early (buffer crossed its threshold, close, poison).
    flush_wanted: Condvar,
    group: Mutex<GroupState>,
    /// Signalled when a leader finishes a group.
    group_done: Condvar,
    io: Mutex<IoState>,
    /// Segments on disk, in LSN order; the last is the one being appended to.
    segments: Mutex<Vec<LiveSegment>>,
    /// Retired segment files (`*.wal.free`) waiting to be recycled, at most
    /// `options.recycle_segments`.
    free_segments: Mutex<Vec<PathBuf>>,
    poison_cause: Mutex<Option<String>>,
    poisoned: AtomicBool,
    closed: AtomicBool,
    durable_lsn: AtomicU64,
    last_appended_lsn: AtomicU64,
    wal_bytes: AtomicU64,
    counters: Counters,
}

/// A segmented, append-only, group-committed write-ahead log. See the module documentation.
pub struct Log {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Log")
            .field("dir", &self.inner.dir)
            .field("durable_lsn", &self.durable_lsn())
            .field("last_appended_lsn", &self.last_appended_lsn())
            .field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens (creating `dir` if needed) and recovers: replays, in LSN order, every frame with
    /// lsn > `after_lsn` through `apply`; frames with lsn <= `after_lsn` are checked but
    /// skipped. Truncates a torn tail (to the end of the last good frame, then `sync_data`)
    /// before returning. New appends always go to a new segment whose first LSN is
    /// `last_lsn + 1`.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: LogOptions,
        after_lsn: u64,
        apply: &mut dyn FnMut(&FrameRef<'_>) -> Result<(), String>,
    ) -> Result<(Log, ReplayReport), LogError> {
        options.validate()?;
        let calls = SyncCalls {
            sync_data: !options.skips_segment_sync(),
            sync_dir: !options.skips_dir_sync(),
        };
        fs.create_dir_all(dir)
            .map_err(|error| LogError::io("create log directory", dir, error))?;
        remove_temp_segments(fs.as_ref(), dir, calls)?;
        let settings = scan_settings(&options, after_lsn);
        let scan = scan_log(fs.as_ref(), dir, &settings, apply, &mut |_, _| {})?;
        refuse_foreign(&scan, options.database_id)?;
        let counters = Counters::default();
        let report = ReplayReport {
            segments: scan.kept.len(),
            frames_replayed: scan.frames_replayed,
            frames_skipped: scan.frames_skipped,
            last_lsn: scan
                .last_frame
                .map_or(after_lsn, |(lsn, _)| lsn.max(after_lsn)),
            last_version: scan.last_frame.map_or(0, |(_, version)| version),
            last_frame_lsn: scan.last_frame.map(|(lsn, _)| lsn),
            torn_tail: scan.torn_tail.clone(),
            salvaged: scan.dropped.clone(),
            bytes_read: scan.bytes_read,
        };
        let mut segments = settle_files(fs.as_ref(), &options, calls, &scan, &counters)?;
        // The free list starts empty at each open. Within one process LSNs only grow, which
        // is what makes a retired file's frames older than any segment it becomes; across a
        // recovery that can go on lower (a salvage without a snapshot) they need not be, and
        // an earlier process's rename to `.free` may not be durable yet.
        remove_free_segments(fs.as_ref(), dir, calls)?;
        let free_segments = Mutex::new(Vec::new());
        let next_segment_number = next_segment_number(&scan);
        let header = SegmentHeader {
            segment_number: next_segment_number,
            first_lsn: report.last_lsn.saturating_add(1),
            segment_bytes: options.segment_bytes,
            database_id: options.database_id,
            recycled: false,
        };
        let (path, file) = new_segment(
            fs.as_ref(),
            dir,
            (&options, calls),
            &free_segments,
            &counters,
            header,
        )?;
        segments.push(LiveSegment {
            path: path.clone(),
            first_lsn: header.first_lsn,
            last_lsn: None,
            frame_bytes: 0,
            recyclable: header.segment_bytes == options.segment_bytes,
        });
        let wal_bytes = segments.iter().map(|segment| segment.frame_bytes).sum();
        let inner = Arc::new(Inner {
            fs,
            dir: dir.to_path_buf(),
            calls,
            buffered: buffered_limits(&options.sync),
            pending: Mutex::new(Pending {
                buffer: Vec::new(),
                first_lsn: header.first_lsn,
                last_lsn: report.last_lsn,
                closing: false,
            }),
            space_available: Condvar::new(),
            flush_wanted: Condvar::new(),
            group: Mutex::new(GroupState::default()),
            group_done: Condvar::new(),
            io: Mutex::new(IoState {
                file,
                path,
                write_offset: SEGMENT_HEADER_BYTES,
                segment_bytes: header.segment_bytes,
                next_segment_number: next_segment_number.saturating_add(1),
                unsynced: false,
                spare: Vec::new(),
            }),
            segments: Mutex::new(segments),
            free_segments,
            poison_cause: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            durable_lsn: AtomicU64::new(report.last_lsn),
            last_appended_lsn: AtomicU64::new(report.last_lsn),
            wal_bytes: AtomicU64::new(wal_bytes),
            counters,
            options,
        });
        let flusher = start_flusher(&inner)?;
        let log = Log {
            inner,
            flusher: Mutex::new(flusher),
        };
        Ok((log, report))
    }

    /// Buffers one frame. The caller serializes appends and passes `lsn == previous + 1`.
    /// Never does I/O in Strict mode; in Buffered mode it blocks (backpressure) while more than
    /// twice `buffer_bytes_max` is buffered. Fails with `Poisoned`, `Closed`, `FrameTooLarge`,
    /// `OutOfOrder` or `InvalidRecordType`, and then buffers nothing.
    pub fn append(
        &self,
        record_type: u8,
        lsn: u64,
        version: u64,
        body: &[u8],
    ) -> Result<(), LogError> {
        let inner = &*self.inner;
        if record_type == 0 {
            return Err(LogError::InvalidRecordType { record_type });
        }
        self.check_frame_fits(body.len())?;
        let mut pending = inner.pending.lock();
        loop {
            if pending.closing {
                return Err(LogError::Closed);
            }
            inner.check_poisoned()?;
            let expected_lsn = pending.last_lsn.saturating_add(1);
            if lsn != expected_lsn || pending.last_lsn == u64::MAX {
                return Err(LogError::OutOfOrder {
                    expected_lsn,
                    got_lsn: lsn,
                });
            }
            match inner.buffered {
                Some((_, backpressure)) if pending.buffer.len() > backpressure => {
                    if inner.options.flush_waker.is_some() {
                        // No thread of our own to wait for: flush what is buffered here.
                        let buffered = pending.last_lsn;
                        MutexGuard::unlocked(&mut pending, || inner.make_durable(buffered))?;
                    } else {
                        inner.space_available.wait(&mut pending);
                    }
                }
                _ => break,
            }
        }
        let before = pending.buffer.len();
        encode_frame(&mut pending.buffer, record_type, lsn, version, body);
        pending.last_lsn = lsn;
        let after = pending.buffer.len();
        inner.last_appended_lsn.store(lsn, Ordering::Release);
        drop(pending);
        count(&inner.counters.frames_appended, 1);
        count(&inner.counters.bytes_appended, to_u64(after - before));
        if let Some((threshold, _)) = inner.buffered {
            if before < threshold && after >= threshold {
                match &inner.options.flush_waker {
                    Some(waker) => (waker.0)(),
                    None => {
                        inner.flush_wanted.notify_one();
                    }
                }
            }
        }
        Ok(())
    }

    /// `Err(FrameTooLarge)` when a frame with a body of `body_bytes` is above
    /// `LogOptions::frame_payload_bytes_max`, exactly as `append` would refuse it; so a caller
    /// can ask before it does anything that an append failure would have to undo.
    pub fn check_frame_fits(&self, body_bytes: usize) -> Result<(), LogError> {
        let payload_bytes = RECORD_PREFIX_BYTES.saturating_add(body_bytes);
        let max = self.inner.options.frame_payload_bytes_max;
        if payload_bytes > max {
            return Err(LogError::FrameTooLarge {
                bytes: payload_bytes,
                max,
            });
        }
        Ok(())
    }

    /// Returns once every frame up to `lsn` is synced (or fails: `Poisoned`, or the I/O error
    /// of the group this call led). Group commit on the calling threads, in both sync modes.
    pub fn wait_durable(&self, lsn: u64) -> Result<(), LogError> {
        let inner = &*self.inner;
        if lsn <= inner.durable_lsn.load(Ordering::Acquire) {
            return Ok(());
        }
        if inner.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        inner.make_durable(lsn)
    }

    /// One background flush of a [`SyncPolicy::Buffered`] log run by its owner (see
    /// `LogOptions::flush_waker`): writes and syncs what is buffered, if anything. Does nothing
    /// once the log is closing, closed or poisoned.
    pub fn flush_tick(&self) -> Result<(), LogError> {
        let inner = &*self.inner;
        {
            let pending = inner.pending.lock();
            if pending.closing
                || pending.buffer.is_empty()
                || inner.poisoned.load(Ordering::Acquire)
            {
                return Ok(());
            }
        }
        inner.make_durable(inner.last_appended_lsn.load(Ordering::Acquire))
    }

    /// `wait_durable(last appended LSN)`.
    pub fn sync(&self) -> Result<(), LogError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        self.wait_durable(self.last_appended_lsn())
    }

    /// The highest LSN known to be synced.
    pub fn durable_lsn(&self) -> u64 {
        self.inner.durable_lsn.load(Ordering::Acquire)
    }

    /// The LSN of the last frame appended (after open: the last recovered one).
    pub fn last_appended_lsn(&self) -> u64 {
        self.inner.last_appended_lsn.load(Ordering::Acquire)
    }

    /// True once a write or sync failed; the log must be reopened.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// Bytes of frames in the segments currently on disk (for the checkpoint trigger).
    pub fn wal_bytes(&self) -> u64 {
        self.inner.wal_bytes.load(Ordering::Relaxed)
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Deletes every segment, except the one being appended to, whose frames all have an
    /// LSN at or below `lsn`, then syncs the directory. Returns how many were deleted.
    pub fn remove_segments_through(&self, lsn: u64) -> Result<usize, LogError> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        inner.check_poisoned()?;
        let victims: Vec<LiveSegment> = {
            let mut segments = inner.segments.lock();
            // Segments are in LSN order, so the removable ones are a prefix.
            let removable = segments
                .iter()
                .take(segments.len().saturating_sub(1))
                .take_while(|segment| segment.covers_through() <= lsn)
                .count();
            segments.drain(..removable).collect()
        };
        // Retired files join the free list only once their new names are durable (the
        // directory sync below), so a recycling never writes into a file a crash could bring
        // back under its old segment name.
        let room = inner
            .options
            .recycle_segments
            .saturating_sub(inner.free_segments.lock().len());
        let mut retired = Vec::new();
        for (index, victim) in victims.iter().enumerate() {
            inner
                .wal_bytes
                .fetch_sub(victim.frame_bytes, Ordering::Relaxed);
            if victim.recyclable && retired.len() < room {
                let free_path = free_segment_path(&victim.path);
                if inner.fs.rename(&victim.path, &free_path).is_ok() {
                    retired.push(free_path);
                    continue;
                }
                // Not renamed: removed below like any other.
            }
            match inner.fs.remove_file(&victim.path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    // Not removed: keep them listed so that wal_bytes stays true.
                    let mut segments = inner.segments.lock();
                    for kept in victims.iter().skip(index).rev() {
                        inner
                            .wal_bytes
                            .fetch_add(kept.frame_bytes, Ordering::Relaxed);
                        segments.insert(0, kept.clone());
                    }
                    return Err(LogError::io("remove segment", &victim.path, error));
                }
            }
        }
        if !victims.is_empty() {
            if let Err(error) = sync_dir(inner.fs.as_ref(), &inner.dir, inner.calls) {
                inner.poison(&error);
                return Err(error);
            }
            count(&inner.counters.segments_removed, to_u64(victims.len()));
        }
        let mut free = inner.free_segments.lock();
        for path in retired {
            if free.len() < inner.options.recycle_segments {
                free.push(path);
            } else {
                // A concurrent removal filled the list. Best effort: a file left behind is
                // removed by the next open.
                let _ = inner.fs.remove_file(&path);
            }
        }
        Ok(victims.len())
    }

    /// Flushes, syncs and stops the flush thread. Later calls fail with `Closed`.
    pub fn close(&self) -> Result<(), LogError> {
        let inner = &*self.inner;
        {
            let mut pending = inner.pending.lock();
            if pending.closing {
                return Err(LogError::Closed);
            }
            pending.closing = true;
        }
        inner.flush_wanted.notify_all();
        inner.space_available.notify_all();
        let result = inner.make_durable(inner.last_appended_lsn.load(Ordering::Acquire));
        self.stop_flusher();
        inner.closed.store(true, Ordering::Release);
        result
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        let counters = &self.inner.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LogStats {
            frames_appended: read(&counters.frames_appended),
            bytes_appended: read(&counters.bytes_appended),
            groups_written: read(&counters.groups_written),
            frames_written: read(&counters.frames_written),
            bytes_written: read(&counters.bytes_written),
            syncs: read(&counters.syncs),
            segments_created: read(&counters.segments_created),
            segments_recycled: read(&counters.segments_recycled),
            segments_removed: read(&counters.segments_removed),
        }
    }

    /// Joins the flush thread, unless called on it (then it ends on its own).
    fn stop_flusher(&self) {
        let handle = self.flusher.lock().take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                // The thread never panics; a panic would already have been reported.
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let closing = self.inner.pending.lock().closing;
        if !closing {
            // Best effort, like a buffered writer: callers who need the outcome call close.
            let _ = self.close();
        }
        self.stop_flusher();
    }
}

impl Inner {
    /// `Err(Poisoned)` once the log is poisoned.
    fn check_poisoned(&self) -> Result<(), LogError> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let cause = self
            .poison_cause
            .lock()
            .clone()
            .unwrap_or_else(|| "an earlier write or sync failed".to_owned());
        Err(LogError::Poisoned { cause })
    }

    /// Poisons the log with `error` as the cause (the first cause wins) and wakes everyone who
    /// could be waiting for progress that will never come.
    fn poison(&self, error: &LogError) {
        {
            let mut cause = self.poison_cause.lock();
            if cause.is_none() {
                let mut text = error.to_string();
                if let Some(source) = std::error::Error::source(error) {
                    text.push_str(": ");
                    text.push_str(&source.to_string());
                }
                *cause = Some(text);
            }
        }
        self.poisoned.store(true, Ordering::Release);
        // Taking the lock orders the flag before any waiter's next check.
        drop(self.pending.lock());
        self.space_available.notify_all();
        self.flush_wanted.notify_all();
    }

    /// Group commit: returns once `lsn` is durable, leading groups as needed.
    fn make_durable(&self, lsn: u64) -> Result<(), LogError> {
        let last_appended_lsn = self.last_appended_lsn.load(Ordering::Acquire);
        if lsn > last_appended_lsn {
            return Err(LogError::NotAppended {
                lsn,
                last_appended_lsn,
            });
        }
        let mut group = self.group.lock();
        loop {
            if lsn <= self.durable_lsn.load(Ordering::Acquire) {
                return Ok(());
            }
            self.check_poisoned()?;
            if group.leader_active {
                group.waiting += 1;
                self.group_done.wait(&mut group);
                group.waiting -= 1;
                continue;
            }
            group.leader_active = true;
            let gather = group.woken_by_last > 0;
            let result = MutexGuard::unlocked(&mut group, || {
                if gather {
                    self.gather_followers();
                }
                self.flush_pending()
            });
            group.leader_active = false;
            group.woken_by_last = group.waiting;
            self.group_done.notify_all();
            result?;
        }
    }

    /// Leader only, when the last group had followers: they were woken together and are
    /// about to append again, so the leader gives up its CPU while appends keep arriving
    /// (at most [`GATHER_YIELDS`] times) and their frames join this group's sync instead of
    /// waiting a whole sync for the next one. A single writer never waits here.
    fn gather_followers(&self) {
        let mut seen = self.last_appended_lsn.load(Ordering::Acquire);
        for _ in 0..GATHER_YIELDS {
            std::thread::yield_now();
            let now = self.last_appended_lsn.load(Ordering::Acquire);
            if now == seen {
                break;
            }
            seen = now;
        }
    }

    /// Leader only: writes and syncs everything pending, then publishes the durable LSN.
    fn flush_pending(&self) -> Result<(), LogError> {
        self.check_poisoned()?;
        let mut io = self.io.lock();
        let io = &mut *io;
        let (first_lsn, last_lsn) = {
            let mut pending = self.pending.lock();
            if pending.buffer.is_empty() {
                return Ok(());
            }
            std::mem::swap(&mut pending.buffer, &mut io.spare);
            let taken = (pending.first_lsn, pending.last_lsn);
            pending.first_lsn = pending.last_lsn.saturating_add(1);
            taken
        };
        self.space_available.notify_all();
        let mut frames = std::mem::take(&mut io.spare);
        let written = self
            .write_group(io, &frames, first_lsn)
            .and_then(|()| self.sync_current(io));
        if let Err(error) = written {
            self.poison(&error);
            return Err(error);
        }
        self.durable_lsn.store(last_lsn, Ordering::Release);
        count(&self.counters.groups_written, 1);
        count(&self.counters.frames_written, last_lsn - first_lsn + 1);
        frames.clear();
        if frames.capacity() > RETAINED_BUFFER_BYTES_MAX {
            frames.shrink_to(RETAINED_BUFFER_BYTES_MAX);
        }
        io.spare = frames;
        Ok(())
    }

    /// Writes `frames` (first LSN `first_lsn`) with one write per segment, rotating when the
    /// next frame does not fit.
    fn write_group(&self, io: &mut IoState, frames: &[u8], first_lsn: u64) -> Result<(), LogError> {
        let malformed = || LogError::Poisoned {
            cause: "internal error: the pending buffer does not hold whole frames".to_owned(),
        };
        let mut cursor = 0_usize;
        let mut lsn = first_lsn;
        while cursor < frames.len() {
            let run_start = cursor;
            let run_first_lsn = lsn;
            let capacity = io.segment_bytes.saturating_sub(io.write_offset);
            let mut run_bytes = 0_u64;
            let mut frame_not_fitting = None;
            while cursor < frames.len() {
                let frame_bytes = frame_bytes_at(frames, cursor).ok_or_else(malformed)?;
                if run_bytes + to_u64(frame_bytes) > capacity {
                    frame_not_fitting = Some(frame_bytes);
                    break;
                }
                run_bytes += to_u64(frame_bytes);
                cursor += frame_bytes;
                lsn += 1;
            }
            if run_bytes > 0 {
                let run = frames.get(run_start..cursor).ok_or_else(malformed)?;
                io.file
                    .write_all_at(run, io.write_offset)
                    .map_err(|error| LogError::io("write segment", &io.path, error))?;
                io.write_offset += run_bytes;
                io.unsynced = true;
                self.record_written(run_first_lsn, lsn - 1, run_bytes);
            }
            if let Some(frame_bytes) = frame_not_fitting {
                self.rotate(io, lsn, frame_bytes)?;
            }
        }
        Ok(())
    }

    /// Syncs the current segment if it holds unsynced writes.
    fn sync_current(&self, io: &mut IoState) -> Result<(), LogError> {
        if io.unsynced {
            sync_segment(io.file.as_ref(), &io.path, self.calls)?;
            io.unsynced = false;
            if self.calls.sync_data {
                count(&self.counters.syncs, 1);
            }
        }
        Ok(())
    }

    /// Syncs the current segment and starts a new one at `first_lsn`, large enough for a first
    /// frame of `frame_bytes`.
    fn rotate(&self, io: &mut IoState, first_lsn: u64, frame_bytes: usize) -> Result<(), LogError> {
        self.sync_current(io)?;
        let header = SegmentHeader {
            segment_number: io.next_segment_number,
            first_lsn,
            segment_bytes: segment_bytes_for(self.options.segment_bytes, frame_bytes),
            database_id: self.options.database_id,
            recycled: false,
        };
        let (path, file) = new_segment(
            self.fs.as_ref(),
            &self.dir,
            (&self.options, self.calls),
            &self.free_segments,
            &self.counters,
            header,
        )?;
        io.next_segment_number = io.next_segment_number.saturating_add(1);
        io.file = file;
        io.write_offset = SEGMENT_HEADER_BYTES;
        io.segment_bytes = header.segment_bytes;
        let mut segments = self.segments.lock();
        // A segment without frames is replaced by the rename when the new one has its name.
        if segments.last().is_some_and(|last| last.path == path) {
            segments.pop();
        }
        segments.push(LiveSegment {
            path: path.clone(),
            first_lsn,
            last_lsn: None,
            frame_bytes: 0,
            recyclable: header.segment_bytes == self.options.segment_bytes,
        });
        io.path = path;
        Ok(())
    }

    /// Accounts frames `first_lsn..=last_lsn` written to the current segment.
    fn record_written(&self, first_lsn: u64, last_lsn: u64, bytes: u64) {
        if let Some(current) = self.segments.lock().last_mut() {
            current.last_lsn = Some(last_lsn);
            current.frame_bytes += bytes;
        }
        self.wal_bytes.fetch_add(bytes, Ordering::Relaxed);
        count(&self.counters.bytes_written, bytes);
        debug_assert!(last_lsn >= first_lsn);
    }
}

/// The body of the Buffered-mode flush thread: leads a group every `flush_interval`, or as
/// soon as the buffer crosses its threshold; ends on close or poison.
fn run_flusher(inner: &Inner, flush_interval: Duration) {
    let threshold = inner
        .buffered
        .map_or(usize::MAX, |(threshold, _)| threshold);
    loop {
        {
            let mut pending = inner.pending.lock();
            if pending.closing || inner.poisoned.load(Ordering::Acquire) {
                return;
            }
            if pending.buffer.len() < threshold {
                let _ = inner.flush_wanted.wait_for(&mut pending, flush_interval);
            }
            if pending.closing || inner.poisoned.load(Ordering::Acquire) {
                return;
            }
            if pending.buffer.is_empty() {
                continue;
            }
        }
        // An error has poisoned the log; the check at the top of the loop ends the thread.
        let _ = inner.make_durable(inner.last_appended_lsn.load(Ordering::Acquire));
    }
}

/// How `Log::open` scans with `options` above `after_lsn`.
fn scan_settings(options: &LogOptions, after_lsn: u64) -> ScanSettings {
    ScanSettings {
        database_id: Some(options.database_id),
        after_lsn,
        payload_bytes_max: options.frame_payload_bytes_max,
        crc_failure_is_torn_tail: options.crc_failure_is_torn_tail(),
        count_dropped: options.recovery == RecoveryMode::Salvage,
        skip_covered_segments: options.skip_covered_segments,
    }
}

/// Refuses a log directory holding a segment of another database, naming the first one.
fn refuse_foreign(scan: &LogScan, database_id: DatabaseId) -> Result<(), LogError> {
    match scan.foreign.first() {
        Some(foreign) => Err(LogError::ForeignFile {
            file: foreign.file.clone(),
            expected: database_id,
            found: foreign.database_id,
        }),
        None => Ok(()),
    }
}

/// One more than the highest segment number found, so numbers keep growing across opens.
fn next_segment_number(scan: &LogScan) -> u64 {
    scan.listed
        .iter()
        .filter_map(|listed| listed.info.as_ref().ok())
        .map(|info| info.segment_number)
        .max()
        .map_or(1, |number| number.saturating_add(1))
}

/// Starts the Buffered-mode flush thread; `None` in Strict mode.
fn start_flusher(inner: &Arc<Inner>) -> Result<Option<JoinHandle<()>>, LogError> {
    let SyncPolicy::Buffered { flush_interval, .. } = inner.options.sync else {
        return Ok(None);
    };
    if inner.options.flush_waker.is_some() {
        return Ok(None); // the owner runs `flush_tick`
    }
    let shared = Arc::clone(inner);
    std::thread::Builder::new()
        .name(FLUSH_THREAD_NAME.to_owned())
        .spawn(move || run_flusher(&shared, flush_interval))
        .map(Some)
        .map_err(|error| LogError::io("start flush thread", &inner.dir, error))
}

/// Applies what recovery decided to the files: refuses or sets aside damage, cuts a torn
/// tail, removes a last segment without frames, and syncs the last kept segment (its frames
/// were replayed and must be durable before anything after them is acknowledged). Returns the
/// segments that stay.
fn settle_files(
    fs: &dyn FileSystem,
    options: &LogOptions,
    calls: SyncCalls,
    scan: &LogScan,
    counters: &Counters,
) -> Result<Vec<LiveSegment>, LogError> {
    let mut kept = scan.kept.clone();
    if let Some(damage) = &scan.damage {
        if options.recovery == RecoveryMode::Strict {
            return Err(LogError::corrupted(
                &damage.file,
                damage.offset,
                damage.reason.clone(),
            ));
        }
        if let Some(cut) = kept.last_mut().filter(|last| last.info.path == damage.file) {
            truncate_segment(fs, &cut.info.path, damage.offset, calls, counters)?;
        }
        for listed in scan.listed.iter().skip(kept.len()) {
            let mut aside = listed.path.clone().into_os_string();
            aside.push(SEGMENT_DAMAGED_SUFFIX.trim_start_matches(".wal"));
            fs.rename(&listed.path, Path::new(&aside))
                .map_err(|error| LogError::io("set damaged segment aside", &listed.path, error))?;
        }
    } else if let Some(first_unread) = scan.listed.get(kept.len()) {
        // Without damage the scan keeps every file, so files left over mean the scan ended
        // early. Only the sabotage build (`Sabotage::CrcFailureIsTornTail`) does that, and it
        // drops the rest; anywhere else deleting them would lose acknowledged frames silently.
        if !options.crc_failure_is_torn_tail() {
            return Err(LogError::corrupted(
                &first_unread.path,
                0,
                format!(
                    "recovery stopped before this segment ({} of {} files) without finding \
                     damage; refusing to delete it",
                    kept.len() + 1,
                    scan.listed.len()
                ),
            ));
        }
        #[cfg(feature = "sabotage")]
        for listed in scan.listed.iter().skip(kept.len()) {
            fs.remove_file(&listed.path)
                .map_err(|error| LogError::io("remove segment", &listed.path, error))?;
        }
    }
    if kept.last().is_some_and(|last| last.frames == 0) {
        // Nothing to keep; the new segment's creation syncs the directory after the removal.
        if let Some(empty) = kept.pop() {
            fs.remove_file(&empty.info.path)
                .map_err(|error| LogError::io("remove empty segment", &empty.info.path, error))?;
        }
    } else if let Some(torn) = &scan.torn_tail {
        truncate_segment(fs, &torn.file, torn.offset, calls, counters)?;
    } else if let Some(last) = kept.last() {
        let file = fs
            .open(&last.info.path, OpenMode::ReadWrite)
            .map_err(|error| LogError::io("open segment", &last.info.path, error))?;
        sync_segment(file.as_ref(), &last.info.path, calls)?;
        if calls.sync_data {
            count(&counters.syncs, 1);
        }
    }
    Ok(kept
        .into_iter()
        .map(|segment| LiveSegment {
            first_lsn: segment.info.first_lsn,
            last_lsn: segment.last_lsn,
            frame_bytes: segment.frames_end - SEGMENT_HEADER_BYTES,
            recyclable: false,
            path: segment.info.path,
        })
        .collect())
}

/// `(threshold, backpressure)` bytes of the pending buffer in Buffered mode, `None` in Strict.
fn buffered_limits(sync: &SyncPolicy) -> Option<(usize, usize)> {
    match *sync {
        SyncPolicy::Strict => None,
        SyncPolicy::Buffered {
            buffer_bytes_max, ..
        } => Some((
            buffer_bytes_max,
            buffer_bytes_max.saturating_mul(BACKPRESSURE_FACTOR),
        )),
    }
}

/// Creates the segment `header` describes, from a retired file of `free` when one is there
/// and the segment has the configured size, otherwise as a new file.
fn new_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    (options, calls): (&LogOptions, SyncCalls),
    free: &Mutex<Vec<PathBuf>>,
    counters: &Counters,
    header: SegmentHeader,
) -> Result<(PathBuf, Box<dyn FileHandle>), LogError> {
    let reusable = if header.segment_bytes == options.segment_bytes {
        free.lock().pop()
    } else {
        None // an oversized segment for one large frame: a new file
    };
    let created = if let Some(free_path) = reusable {
        let header = SegmentHeader {
            recycled: !options.recycles_without_flag(),
            ..header
        };
        let created = recycle_segment(fs, dir, &free_path, header, calls)?;
        count(&counters.segments_recycled, 1);
        created
    } else {
        let created = create_segment(fs, dir, header, calls)?;
        count(&counters.segments_created, 1);
        created
    };
    if calls.sync_data {
        count(&counters.syncs, 1);
    }
    Ok(created)
}

/// Cuts `path` to `length` bytes and syncs it.
fn truncate_segment(
    fs: &dyn FileSystem,
    path: &Path,
    length: u64,
    calls: SyncCalls,
    counters: &Counters,
) -> Result<(), LogError> {
    let file = fs
        .open(path, OpenMode::ReadWrite)
        .map_err(|error| LogError::io("open segment", path, error))?;
    file.set_len(length)
        .map_err(|error| LogError::io("truncate torn tail", path, error))?;
    sync_segment(file.as_ref(), path, calls)?;
    if calls.sync_data {
        count(&counters.syncs, 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFileSystem;
    use crate::segment::ListedSegment;

    /// A scan that ends before its last listed file without reporting damage (what only the
    /// sabotage build produces) must not delete that file.
    #[test]
    fn files_after_a_clean_end_are_an_error_not_deleted() {
        let dir = std::env::temp_dir().join(format!(
            "cairn-log-settle-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let orphan = dir.join("00000000000000000009.wal");
        std::fs::write(&orphan, b"frames recovery never read").expect("write orphan");
        let scan = LogScan {
            listed: vec![ListedSegment {
                path: orphan.clone(),
                info: Err("not read".to_owned()),
                file_bytes: 26,
            }],
            ..LogScan::default()
        };
        let options = LogOptions::new(SyncPolicy::Strict);
        let calls = SyncCalls {
            sync_data: true,
            sync_dir: true,
        };
        let settled = settle_files(&StdFileSystem, &options, calls, &scan, &Counters::default());
        assert!(
            matches!(settled, Err(LogError::Corrupted { ref file, .. }) if *file == orphan),
            "{settled:?}"
        );
        assert!(orphan.exists(), "the segment was deleted");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

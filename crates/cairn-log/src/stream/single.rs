//! One stream: its [`Log`] (one frame per batch), its in-memory tail of recent batches, its
//! on-disk index, and the operations on it.
//!
//! Guarantees: offsets are dense from 0 and never reused; a batch is one frame, so it is
//! recovered whole or not at all; a reader sees only acknowledged messages (in Strict mode
//! only batches whose frame is durable, in Buffered mode every batch `append` returned for);
//! every batch not yet durable stays in the in-memory tail, so disk reads only ever look at
//! durable frames. Timestamps never decrease within a stream: a clock that steps back is
//! clamped to the stream's last timestamp, which is what lets `seek_time` search.
//!
//! Locking: one mutex per stream guards its offsets, tail and index. An append holds it only
//! to encode and buffer its frame (Strict waits for durability after releasing it, so
//! concurrent appenders share a group commit); a read holds it for its whole duration,
//! including disk reads, which serialises reads of one stream with its appends (a later step
//! can read outside the lock).

use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::LogError;
use crate::format::{to_u64, SEGMENT_HEADER_BYTES};
use crate::frame::FrameRef;
use crate::fs::{FileSystem, OpenMode};
use crate::log::Log;
use crate::options::{LogOptions, RecoveryMode};
use crate::segment::{list_segment_files, parse_segment_file_name};

use super::codec::{
    check_batch, decode_batch, encode_batch, Message, MessageRef, StreamMeta, BATCH_MESSAGES_MAX,
};
use super::error::StreamError;
use super::files::{
    read_small_file, remove_if_present, write_atomically, GROUPS_FILE, META_FILE, TEMP_SUFFIX,
};
use super::groups::{GroupInfo, GroupSet, GroupsFile, PendingEntry, GROUPS_FILE_BYTES_MAX};
use super::index::{DiskIndex, ReadBatch, STREAM_BATCH_RECORD_TYPE};
use super::notify::Notifier;
use super::options::{Retention, StreamOptions};
use super::retention::{plan, PlanInput, RetentionReport};

/// A message read from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its offset in the stream.
    pub offset: u64,
    /// When its batch was appended, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// What was appended.
    pub message: Message,
}

/// A stream's offsets, as `info` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// The lowest readable offset (equal to `next_offset` when nothing is readable).
    pub first_offset: u64,
    /// One past the last acknowledged offset: the offset the next append gets once every
    /// append in flight is acknowledged.
    pub next_offset: u64,
}

/// A recent batch kept in memory.
#[derive(Debug)]
struct TailBatch {
    lsn: u64,
    first_offset: u64,
    timestamp_ms: u64,
    messages: Vec<Message>,
    bytes: usize,
}

impl TailBatch {
    fn end_offset(&self) -> u64 {
        self.first_offset
            .saturating_add(to_u64(self.messages.len()))
    }
}

/// What the stream's lock guards.
#[derive(Debug)]
struct State {
    meta: StreamMeta,
    next_offset: u64,
    last_timestamp_ms: u64,
    tail: VecDeque<TailBatch>,
    tail_bytes: usize,
    disk: DiskIndex,
    deleted: bool,
    retention: Retention,
}

/// One open stream.
#[derive(Debug)]
pub(crate) struct Stream {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    log: Log,
    strict: bool,
    tail_bytes_max: usize,
    options: StreamOptions,
    name: String,
    id: u64,
    state: Mutex<State>,
    /// The consumer groups. Lock order: `groups`, then `state`.
    groups: Mutex<GroupSet>,
    /// Signalled when appended messages become visible, and at deletion.
    notifier: Notifier,
}

/// The last batch recovery saw: `(first offset, count, timestamp)`.
type LastBatch = (u64, u64, u64);

/// The `after_lsn` and skip setting that make `Log::open` read only the tail of the log in
/// `dir`: everything from the last segment that holds a frame (so only it, and the empty one
/// after it, are read). With `read_all` (Salvage) every segment is read; `after_lsn` then only
/// covers the LSNs below the first segment, which truncation removed.
fn tail_hint(fs: &dyn FileSystem, dir: &Path, read_all: bool) -> Result<(u64, bool), StreamError> {
    let listed = list_segment_files(fs, dir)?;
    let name_lsn = |path: &Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .and_then(parse_segment_file_name)
    };
    let Some(first) = listed.first().and_then(|entry| name_lsn(&entry.path)) else {
        return Ok((0, false));
    };
    if read_all {
        return Ok((first.saturating_sub(1), false));
    }
    let mut tail = first;
    for entry in listed.iter().rev() {
        let Some(lsn) = name_lsn(&entry.path) else {
            continue;
        };
        tail = lsn;
        if entry.info.is_err() || !segment_looks_empty(fs, &entry.path)? {
            break;
        }
    }
    Ok((tail.saturating_sub(1), true))
}

/// True when the bytes right after the segment header are zeros or missing: no frame was ever
/// written there (a non-zero start, even a torn one, is for recovery to classify).
fn segment_looks_empty(fs: &dyn FileSystem, path: &Path) -> Result<bool, StreamError> {
    let file = fs
        .open(path, OpenMode::Read)
        .map_err(|error| StreamError::io("open stream segment", path, error))?;
    let mut header = [0_u8; 6];
    let read = file
        .read_at(&mut header, SEGMENT_HEADER_BYTES)
        .map_err(|error| StreamError::io("read stream segment", path, error))?;
    Ok(header
        .get(..read)
        .unwrap_or(&[])
        .iter()
        .all(|&byte| byte == 0))
}

impl Stream {
    /// Opens (recovering) the stream in `dir` described by `meta`.
    pub fn open(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        meta: StreamMeta,
        options: &StreamOptions,
        mut log_options: LogOptions,
        retention: Retention,
    ) -> Result<Stream, StreamError> {
        let read_all = options.recovery == RecoveryMode::Salvage;
        let (after_lsn, skip) = tail_hint(fs.as_ref(), dir, read_all)?;
        log_options.skip_covered_segments = skip;
        let mut last: Option<LastBatch> = None;
        let mut apply = |frame: &FrameRef<'_>| -> Result<(), String> {
            if frame.record_type != STREAM_BATCH_RECORD_TYPE {
                return Err(format!("frame LSN {} is not a stream batch", frame.lsn));
            }
            let batch = decode_batch(frame.body)
                .map_err(|reason| format!("frame LSN {}: {reason}", frame.lsn))?;
            if let Some((first, count, _)) = last {
                if first.saturating_add(count) != frame.version {
                    return Err(format!(
                        "frame LSN {} starts at offset {} where {} was expected",
                        frame.lsn,
                        frame.version,
                        first.saturating_add(count)
                    ));
                }
            }
            last = Some((
                frame.version,
                to_u64(batch.messages.len()),
                batch.timestamp_ms,
            ));
            Ok(())
        };
        let (log, report) = Log::open(Arc::clone(fs), dir, log_options, after_lsn, &mut apply)?;
        let mut disk = DiskIndex::open(
            fs.as_ref(),
            dir,
            options.index_interval_bytes,
            crate::format::FRAME_PAYLOAD_BYTES_MAX,
            report.last_lsn,
        )?;
        if last.is_none() {
            // The tail held no frame (a torn first frame was cut): the last batch is in an
            // earlier segment, synced whole before the next one was created.
            disk.read_from(
                fs.as_ref(),
                u64::MAX,
                0,
                report.last_lsn,
                &mut |read: &mut ReadBatch| {
                    last = Some((read.first_offset, read.count, read.timestamp_ms));
                    true
                },
            )?;
        }
        let (next_offset, last_timestamp_ms) = last.map_or((0, 0), |(first, count, at)| {
            (first.saturating_add(count), at)
        });
        let groups = load_groups(fs.as_ref(), dir, &meta)?;
        let name = meta.name.clone();
        let id = meta.stream_id;
        let state = State {
            next_offset: next_offset.max(meta.first_offset),
            meta,
            last_timestamp_ms,
            tail: VecDeque::new(),
            tail_bytes: 0,
            disk,
            deleted: false,
            retention,
        };
        Ok(Stream {
            fs: Arc::clone(fs),
            dir: dir.to_path_buf(),
            log,
            strict: options.flush_interval().is_none(),
            tail_bytes_max: options.tail_bytes_max,
            options: options.clone(),
            name,
            id,
            state: Mutex::new(state),
            groups: Mutex::new(groups),
            notifier: Notifier::default(),
        })
    }

    /// The stream's numeric id (its directory's name); a re-created stream gets a new one.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The stream's log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Appends `messages` as one batch (one frame); returns their offsets once acknowledged.
    pub fn append_batch(&self, messages: &[Message]) -> Result<Range<u64>, StreamError> {
        check_batch(messages).map_err(|reason| StreamError::InvalidArgument { reason })?;
        let count = to_u64(messages.len());
        let (range, lsn) = {
            let mut state = self.state.lock();
            if state.deleted {
                return Err(StreamError::NotFound {
                    name: state.meta.name.clone(),
                });
            }
            let first = state.next_offset;
            let end = first
                .checked_add(count)
                .ok_or_else(|| StreamError::InvalidArgument {
                    reason: "the stream's offsets are exhausted".to_owned(),
                })?;
            let timestamp_ms = self.options.clock.now_ms().max(state.last_timestamp_ms);
            let mut body = Vec::new();
            encode_batch(&mut body, timestamp_ms, messages);
            let lsn = self.log.last_appended_lsn().saturating_add(1);
            self.log
                .append(STREAM_BATCH_RECORD_TYPE, lsn, first, &body)?;
            state.next_offset = end;
            state.last_timestamp_ms = timestamp_ms;
            let bytes = body.len();
            state.tail.push_back(TailBatch {
                lsn,
                first_offset: first,
                timestamp_ms,
                messages: messages.to_vec(),
                bytes,
            });
            state.tail_bytes = state.tail_bytes.saturating_add(bytes);
            self.evict(&mut state);
            (first..end, lsn)
        };
        if self.strict {
            self.log.wait_durable(lsn)?;
        }
        // The batch is visible now: wake blocked readers, if any (one atomic load if none).
        self.notifier.notify();
        Ok(range)
    }

    /// Drops durable batches from the front of the tail while it is above its size (at every
    /// append and read, so the tail shrinks once the flush made its batches durable).
    fn evict(&self, state: &mut State) {
        let durable = self.log.durable_lsn();
        while state.tail_bytes > self.tail_bytes_max {
            match state.tail.front() {
                Some(front) if front.lsn <= durable => {
                    state.tail_bytes = state.tail_bytes.saturating_sub(front.bytes);
                    state.tail.pop_front();
                }
                _ => break,
            }
        }
    }

    /// `(first offset in the tail, end of what readers may see)`.
    fn visible(&self, state: &State) -> (u64, u64) {
        let tail_start = state
            .tail
            .front()
            .map_or(state.next_offset, |batch| batch.first_offset);
        if !self.strict {
            return (tail_start, state.next_offset);
        }
        let durable = self.log.durable_lsn();
        let end = state
            .tail
            .iter()
            .take_while(|batch| batch.lsn <= durable)
            .last()
            .map_or(tail_start, TailBatch::end_offset);
        (tail_start, end)
    }

    /// The stream's offsets.
    pub fn info(&self) -> StreamInfo {
        let state = self.state.lock();
        let (_, end) = self.visible(&state);
        StreamInfo {
            first_offset: state.meta.first_offset.min(end),
            next_offset: end,
        }
    }

    /// Up to `max_messages` messages from the first readable offset at or after `from`,
    /// stopping before the message that would take the payload past `max_bytes` (the first
    /// message is returned whatever its size).
    pub fn read_range(
        &self,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        // Sized for the common read: at most a page of messages, never more than asked.
        let mut out = Vec::with_capacity(max_messages.min(BATCH_MESSAGES_MAX).min(1_024));
        let mut bytes = 0_usize;
        self.scan_range(from, max_messages, &mut |offset, timestamp_ms, message| {
            let size = message.payload_bytes();
            if !out.is_empty() && bytes.saturating_add(size) > max_bytes {
                return false;
            }
            bytes = bytes.saturating_add(size);
            out.push(StoredMessage {
                offset,
                timestamp_ms,
                message: message.to_message(),
            });
            true
        })?;
        Ok(out)
    }

    /// Calls `visit(offset, timestamp_ms, message)` with the readable messages from the first
    /// readable offset at or after `from`, in offset order, at most `max_messages` (capped at
    /// the batch limit) of them; `visit` returns false to refuse a message and stop there.
    /// Returns how many messages `visit` took. The messages are borrowed from the read buffer
    /// or the in-memory tail: nothing is allocated per message. `visit` runs under the
    /// stream's lock, so it must not call into the same stream.
    pub fn scan_range(
        &self,
        from: u64,
        max_messages: usize,
        visit: &mut dyn FnMut(u64, u64, MessageRef<'_>) -> bool,
    ) -> Result<usize, StreamError> {
        let max_messages = max_messages.min(BATCH_MESSAGES_MAX);
        let mut guard = self.state.lock();
        let state = &mut *guard;
        self.evict(state);
        let from = from.max(state.meta.first_offset);
        let (tail_start, end) = self.visible(state);
        if max_messages == 0 || from >= end {
            return Ok(0);
        }
        let mut taken = 0_usize;
        let mut full = false;
        let mut take = |offset: u64, timestamp_ms: u64, message: MessageRef<'_>| -> bool {
            if taken >= max_messages || !visit(offset, timestamp_ms, message) {
                return false;
            }
            taken += 1;
            true
        };
        if from < tail_start {
            let limit = self.log.durable_lsn();
            let wanted = u64::try_from(max_messages).unwrap_or(u64::MAX);
            state
                .disk
                .read_from(self.fs.as_ref(), from, wanted, limit, &mut |read| {
                    let timestamp_ms = read.timestamp_ms;
                    for (offset, message) in (read.decoded_from..).zip(&read.messages) {
                        if offset >= tail_start {
                            return false;
                        }
                        if offset >= from && !take(offset, timestamp_ms, *message) {
                            full = true;
                            return false;
                        }
                    }
                    // Past the last wanted offset nothing more is decoded: stop there.
                    let batch_end = read.first_offset.saturating_add(read.count);
                    batch_end < tail_start && batch_end < from.saturating_add(wanted)
                })?;
        }
        if !full {
            // The tail is in offset order: start at the first batch that ends after `from`
            // (a scan from its front cost a read of the newest messages up to 10 µs).
            let first = state
                .tail
                .partition_point(|batch| batch.end_offset() <= from);
            'batches: for batch in state.tail.range(first..) {
                for (offset, message) in (batch.first_offset..).zip(&batch.messages) {
                    if offset >= end {
                        break 'batches;
                    }
                    if offset >= from && !take(offset, batch.timestamp_ms, MessageRef::of(message))
                    {
                        break 'batches;
                    }
                }
            }
        }
        Ok(taken)
    }

    /// The message at `offset`; `None` at or past the end, `Truncated` below the first
    /// readable offset.
    pub fn read(&self, offset: u64) -> Result<Option<StoredMessage>, StreamError> {
        // One scan: offsets are dense and a scan starts at the first readable offset at or
        // after `offset`, so it shows either `offset` itself or the first readable offset
        // above it (then `offset` was truncated), or nothing.
        let mut found = None;
        let mut first_above = None;
        self.scan_range(offset, 1, &mut |at, timestamp_ms, message| {
            if at == offset {
                found = Some(StoredMessage {
                    offset,
                    timestamp_ms,
                    message: message.to_message(),
                });
            } else {
                first_above = Some(at);
            }
            true
        })?;
        // Nothing shown: past the end, or below a first readable offset at the end.
        let first_offset = match first_above {
            Some(first_offset) => first_offset,
            None if found.is_none() => self.state.lock().meta.first_offset,
            None => return Ok(found),
        };
        if offset < first_offset {
            return Err(StreamError::Truncated {
                offset,
                first_offset,
            });
        }
        Ok(found)
    }

    /// The first readable offset whose timestamp is at or after `timestamp_ms`; `None` when
    /// every readable message is older.
    pub fn seek_time(&self, timestamp_ms: u64) -> Result<Option<u64>, StreamError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        self.evict(state);
        let first_offset = state.meta.first_offset;
        let (tail_start, end) = self.visible(state);
        if first_offset >= end {
            return Ok(None);
        }
        let mut found = None;
        if first_offset < tail_start {
            let limit = self.log.durable_lsn();
            state
                .disk
                .read_from_time(self.fs.as_ref(), timestamp_ms, limit, &mut |read| {
                    if read.first_offset >= tail_start {
                        return false;
                    }
                    if read.timestamp_ms >= timestamp_ms {
                        found = Some(read.first_offset);
                        return false;
                    }
                    true
                })?;
        }
        if found.is_none() {
            found = state
                .tail
                .iter()
                .take_while(|batch| batch.first_offset < end)
                .find(|batch| batch.timestamp_ms >= timestamp_ms)
                .map(|batch| batch.first_offset);
        }
        // Timestamps never decrease, so a batch below the first readable offset that is new
        // enough means the first readable message is too.
        Ok(found
            .map(|offset| offset.max(first_offset))
            .filter(|&offset| offset < end))
    }

    /// Makes every offset below `offset` unreadable (durably) and deletes the segments wholly
    /// below it. Does nothing at or below the first readable offset; `InvalidArgument` above
    /// the next offset.
    pub fn truncate_before(&self, offset: u64) -> Result<(), StreamError> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if offset > state.next_offset {
            return Err(StreamError::InvalidArgument {
                reason: format!(
                    "cannot truncate before {offset}: the next offset is {}",
                    state.next_offset
                ),
            });
        }
        if offset <= state.meta.first_offset {
            return Ok(());
        }
        // Everything below the new first offset must be durable before the metadata says
        // so, or a crash could leave the first offset above the recovered end.
        self.log.sync()?;
        self.move_first_offset(state, offset)?;
        Ok(())
    }

    /// Writes `offset` as the first readable offset (durably), drops the tail batches below
    /// it and deletes the segments wholly below it; returns how many were deleted. Every
    /// offset below `offset` must be durable.
    fn move_first_offset(&self, state: &mut State, offset: u64) -> Result<usize, StreamError> {
        if offset > state.meta.first_offset {
            let mut meta = state.meta.clone();
            meta.first_offset = offset;
            write_atomically(self.fs.as_ref(), &self.dir, META_FILE, &meta.encode())?;
            state.meta = meta;
        }
        while state
            .tail
            .front()
            .is_some_and(|batch| batch.end_offset() <= offset)
        {
            if let Some(batch) = state.tail.pop_front() {
                state.tail_bytes = state.tail_bytes.saturating_sub(batch.bytes);
            }
        }
        let durable = self.log.durable_lsn();
        state.disk.refresh(self.fs.as_ref(), durable)?;
        let through = state.disk.last_lsn_wholly_below(offset);
        let mut removed = 0;
        if through > 0 {
            removed = self.log.remove_segments_through(through)?;
            state.disk.refresh(self.fs.as_ref(), durable)?;
        }
        Ok(removed)
    }

    /// The stream's retention.
    pub fn retention(&self) -> Retention {
        self.state.lock().retention
    }

    /// Replaces the stream's retention (in memory; the next pass applies it).
    pub fn set_retention(&self, retention: Retention) {
        self.state.lock().retention = retention;
    }

    /// One retention pass: deletes at most `budget` of the oldest segments the stream's
    /// retention lets go (see [`Retention`]) and moves the first offset, durably, to the first
    /// offset of the oldest segment kept. Holds the groups lock throughout when groups are
    /// respected, so no group commits or is created under it meanwhile.
    pub fn apply_retention(&self, budget: usize) -> Result<RetentionReport, StreamError> {
        let groups = self.groups.lock();
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let retention = state.retention;
        if state.deleted || !retention.is_limited() {
            return Ok(RetentionReport::default());
        }
        let durable = self.log.durable_lsn();
        state.disk.refresh(self.fs.as_ref(), durable)?;
        let (_, end_offset) = self.visible(state);
        let input = PlanInput {
            first_offset: state.meta.first_offset,
            end_offset,
            now_ms: self.options.clock.now_ms(),
            groups_floor: if retention.respect_groups {
                groups.min_committed()
            } else {
                None
            },
            budget,
        };
        let Some(chosen) = plan(&retention, &state.disk.summaries(), &input) else {
            return Ok(RetentionReport::default());
        };
        let before = state.meta.first_offset;
        // The new first offset starts a segment whose first batch is durable (the index
        // probes only durable segments), so everything below it is durable: no sync needed.
        let removed = self.move_first_offset(state, chosen.first_offset)?;
        Ok(RetentionReport {
            segments_removed: to_u64(removed),
            messages_removed: state.meta.first_offset.saturating_sub(before),
            streams_with_more: u64::from(chosen.more),
        })
    }

    /// What a released stream keeps: `(first offset, next offset, last timestamp)`.
    pub fn descriptor(&self) -> (u64, u64, u64) {
        let state = self.state.lock();
        (
            state.meta.first_offset,
            state.next_offset,
            state.last_timestamp_ms,
        )
    }

    /// When age retention can next delete a segment (milliseconds by the store's clock):
    /// `u64::MAX` without an age limit or with fewer than two segments holding batches.
    pub fn retention_due_ms(&self) -> u64 {
        let state = self.state.lock();
        let Some(max_age_ms) = state.retention.max_age_ms else {
            return u64::MAX;
        };
        state
            .disk
            .summaries()
            .get(1)
            .and_then(|second| second.first)
            .map_or(u64::MAX, |(_, timestamp_ms)| {
                timestamp_ms.saturating_add(max_age_ms).saturating_add(1)
            })
    }

    /// Makes everything appended durable and writes moved committed offsets, so that a
    /// release closes the log without I/O.
    pub fn settle(&self) -> Result<(), StreamError> {
        if self.log.durable_lsn() < self.log.last_appended_lsn() {
            self.log.sync()?;
        }
        self.persist_groups_if_needed()
    }

    /// True when the stream can be released without losing anything: every append is
    /// durable, the `GROUPS` file is current and no group has a pending message (pending
    /// lists live in memory only). The caller checks that nobody else holds the stream.
    pub fn releasable(&self) -> bool {
        let groups = self.groups.lock();
        !groups.has_pending()
            && !groups.needs_persist()
            && self.log.durable_lsn() >= self.log.last_appended_lsn()
            && !self.log.is_poisoned()
    }

    /// Marks the stream deleted: later appends and group operations fail with `NotFound`,
    /// the groups file is not written again, and blocked readers wake.
    pub fn mark_deleted(&self) {
        self.state.lock().deleted = true;
        self.groups.lock().deleted = true;
        self.notifier.notify();
    }

    /// True once the stream was deleted.
    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }

    /// Wakes blocked readers (at close).
    pub fn wake_waiters(&self) {
        self.notifier.notify();
    }

    /// Waits until a message at or after `from` is readable, the stream is deleted, `closed`
    /// is set, or `deadline` passes; false only in the last case.
    pub fn wait_readable(&self, from: u64, deadline: Instant, closed: &AtomicBool) -> bool {
        self.notifier.wait_until(deadline, || {
            if closed.load(Ordering::SeqCst) || self.is_deleted() {
                return true;
            }
            let info = self.info();
            info.next_offset > from.max(info.first_offset)
        })
    }

    fn not_found(&self) -> StreamError {
        StreamError::NotFound {
            name: self.name.clone(),
        }
    }

    /// Writes the `GROUPS` file if it differs from memory. Every committed offset must name
    /// durable messages only (a crash must not leave a group committed past the recovered
    /// end, where re-used offsets would be skipped), so the log is synced first when it holds
    /// anything not durable.
    fn persist_groups(&self, set: &mut GroupSet) -> Result<(), StreamError> {
        if !set.needs_persist() {
            return Ok(());
        }
        if self.log.durable_lsn() < self.log.last_appended_lsn() {
            self.log.sync()?;
        }
        let (database_id, stream_id) = {
            let state = self.state.lock();
            (state.meta.database_id, state.meta.stream_id)
        };
        let file = set.file(database_id, stream_id);
        write_atomically(self.fs.as_ref(), &self.dir, GROUPS_FILE, &file.encode())?;
        set.persisted(&file);
        Ok(())
    }

    /// Writes the `GROUPS` file if acknowledgements moved a committed offset (Buffered mode's
    /// flush thread, and close).
    pub fn persist_groups_if_needed(&self) -> Result<(), StreamError> {
        self.persist_groups(&mut self.groups.lock())
    }

    /// Creates group `group` delivering from `start`, durably; false when it exists.
    pub fn create_group(&self, group: &str, start: u64) -> Result<bool, StreamError> {
        let mut set = self.groups.lock();
        if set.deleted {
            return Err(self.not_found());
        }
        if !set.create(group, start)? {
            return Ok(false);
        }
        if let Err(error) = self.persist_groups(&mut set) {
            set.remove(group);
            return Err(error);
        }
        Ok(true)
    }

    /// Deletes group `group` and its pending messages, durably; false when it did not exist.
    pub fn delete_group(&self, group: &str) -> Result<bool, StreamError> {
        let mut set = self.groups.lock();
        if set.deleted {
            return Err(self.not_found());
        }
        if !set.remove(group) {
            return Ok(false);
        }
        self.persist_groups(&mut set)?;
        Ok(true)
    }

    /// Delivers up to `max` messages the group has not delivered, pending for `consumer`.
    pub fn read_group(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        let mut set = self.groups.lock();
        if set.deleted {
            return Err(self.not_found());
        }
        let first_offset = self.info().first_offset;
        let from = set.position(&self.name, group, first_offset)?;
        let messages = self.read_range(from, max, usize::MAX)?;
        let offsets: Vec<u64> = messages.iter().map(|message| message.offset).collect();
        set.delivered(group, consumer, &offsets, Instant::now());
        Ok(messages)
    }

    /// As `read_group`, waiting until `deadline` for messages to deliver. `Closed` when the
    /// store closes meanwhile, `NotFound` when the stream is deleted.
    pub fn read_group_blocking(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        deadline: Instant,
        closed: &AtomicBool,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        loop {
            let delivered = self.read_group(group, consumer, max)?;
            if !delivered.is_empty() || max == 0 {
                return Ok(delivered);
            }
            let position = {
                let set = self.groups.lock();
                let first_offset = self.info().first_offset;
                set.position(&self.name, group, first_offset)?
            };
            let ready = self.wait_readable(position, deadline, closed);
            if closed.load(Ordering::SeqCst) {
                return Err(LogError::Closed.into());
            }
            if !ready {
                return Ok(Vec::new());
            }
        }
    }

    /// Acknowledges the pending `offsets`; returns how many were pending. Strict: durable
    /// when it returns if it moved the committed offset.
    pub fn ack(&self, group: &str, offsets: &[u64]) -> Result<u64, StreamError> {
        let mut set = self.groups.lock();
        let count = set.ack(group, offsets);
        if self.strict && count > 0 {
            self.persist_groups(&mut set)?;
        }
        Ok(count)
    }

    /// Acknowledges everything below `offset` and moves delivery up to it. Strict: durable
    /// when it returns.
    pub fn commit(&self, group: &str, offset: u64) -> Result<(), StreamError> {
        let mut set = self.groups.lock();
        if set.deleted {
            return Err(self.not_found());
        }
        set.commit(&self.name, group, offset)?;
        if self.strict {
            self.persist_groups(&mut set)?;
        }
        Ok(())
    }

    /// Takes over up to `max` messages pending for at least `min_idle`, lowest first, for
    /// `consumer`. Pending messages truncated away are dropped, not returned.
    pub fn claim(
        &self,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Result<Vec<StoredMessage>, StreamError> {
        let mut set = self.groups.lock();
        if set.deleted {
            return Err(self.not_found());
        }
        let first_offset = self.info().first_offset;
        let offsets = set
            .claim(
                group,
                consumer,
                min_idle,
                max.min(BATCH_MESSAGES_MAX),
                first_offset,
                Instant::now(),
            )
            .ok_or_else(|| StreamError::GroupNotFound {
                stream: self.name.clone(),
                group: group.to_owned(),
            })?;
        let mut claimed = Vec::with_capacity(offsets.len());
        for offset in offsets {
            match self.read(offset) {
                Ok(Some(message)) => claimed.push(message),
                Ok(None) | Err(StreamError::Truncated { .. }) => set.drop_pending(group, offset),
                Err(error) => return Err(error),
            }
        }
        if self.strict {
            self.persist_groups(&mut set)?;
        }
        Ok(claimed)
    }

    /// Every group's summary, by name.
    pub fn group_info(&self) -> Vec<GroupInfo> {
        self.groups.lock().info()
    }

    /// Up to `max` pending messages of `group` from offset `from`.
    pub fn pending(
        &self,
        group: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<PendingEntry>, StreamError> {
        self.groups
            .lock()
            .pending(&self.name, group, from, max, Instant::now())
    }

    /// Closes the log (flushing what is buffered).
    pub fn close(&self) -> Result<(), LogError> {
        self.log.close()
    }

    /// Segments and sparse index entries known, for tests and statistics.
    pub fn index_counts(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.disk.segment_count(), state.disk.entry_count())
    }
}

/// The stream's groups as its `GROUPS` file says (none without one), after removing a temp
/// file a crash left behind.
fn load_groups(
    fs: &dyn FileSystem,
    dir: &Path,
    meta: &StreamMeta,
) -> Result<GroupSet, StreamError> {
    remove_if_present(fs, &dir.join(format!("{GROUPS_FILE}{TEMP_SUFFIX}")))?;
    let names = fs
        .list_dir(dir)
        .map_err(|error| StreamError::io("list stream directory", dir, error))?;
    if !names.iter().any(|name| name == GROUPS_FILE) {
        return Ok(GroupSet::default());
    }
    let path = dir.join(GROUPS_FILE);
    let bytes = read_small_file(fs, &path, GROUPS_FILE_BYTES_MAX)?;
    let file = GroupsFile::decode(&bytes)
        .map_err(|(offset, reason)| StreamError::corrupted(&path, offset, reason))?;
    if file.database_id != meta.database_id {
        return Err(StreamError::Log(LogError::ForeignFile {
            file: path,
            expected: meta.database_id,
            found: file.database_id,
        }));
    }
    if file.stream_id != meta.stream_id {
        return Err(StreamError::corrupted(
            &path,
            32,
            format!(
                "names stream id {} in the directory of stream {}",
                file.stream_id, meta.stream_id
            ),
        ));
    }
    Ok(GroupSet::from_file(&file))
}

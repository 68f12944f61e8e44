//! Finding messages on disk: the segments of one stream's log, a sparse in-memory index per
//! segment, and frame-by-frame reads through each segment's memory map (or positional reads
//! where the file system cannot map).
//!
//! What it keeps per segment: the offset and timestamp of its first batch (from one small
//! read of the first frame's prefix, taken when the segment is first seen, so an open never
//! reads a whole older segment), and a sparse list of `(file position, LSN, first offset,
//! timestamp)` entries, one per `index_interval_bytes` of frames. The list grows lazily: any
//! read that walks frames past the indexed end of a segment extends it, so a segment is read
//! in full at most once for indexing, and only when a read needs it.
//!
//! Guarantees: only frames at or below the LSN limit the caller passes (the log's durable
//! LSN) are read, so a frame a leader may still be writing is never looked at, and the bytes
//! read through a map are final. Every frame a read returns is decoded with its CRC checked,
//! must carry the next LSN and the next offset, and its batch must decode, else the read fails
//! with `Corrupted` naming the file and position. A frame an earlier walk already checked
//! whole, which a walk only passes, is read by its header (length, LSN, first offset, count),
//! which must say what the walk expects, else it is read and checked in full. A frame that
//! fails any check in the map is read again through `read_at`, which reports what is wrong.
//! Lengths are checked against the frame limit before the frame buffer is sized.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::format::{
    read_u64, to_u64, FRAME_BODY_OFFSET, FRAME_LSN_OFFSET, FRAME_RECORD_TYPE_OFFSET,
    FRAME_VERSION_OFFSET, SEGMENT_HEADER_BYTES,
};
use crate::frame::{check_frame_header, decode_frame, Decoded};
use crate::fs::{read_exact_at, FileHandle, FileSystem, Mapping, OpenMode};
use crate::segment::list_segments;

use super::codec::{batch_header, decode_batch_refs, MessageRef};
use super::error::StreamError;
use super::retention::SegmentSummary;

/// The record type of a stream batch frame.
pub const STREAM_BATCH_RECORD_TYPE: u8 = 1;

/// Bytes of a first-frame probe: frame header (6), LSN (8), first offset (8), timestamp (8).
const PROBE_BYTES: usize = FRAME_BODY_OFFSET + 8;

/// Where the first batch of a segment starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FirstBatch {
    /// Its first offset.
    pub offset: u64,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

/// One sparse index entry: a frame's position and what it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    position: u64,
    lsn: u64,
    first_offset: u64,
    timestamp_ms: u64,
}

/// A frame to read next: where it is and what it must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct At {
    segment: usize,
    position: u64,
    lsn: u64,
    /// The offset the frame there must start; `None` at a segment start not yet probed.
    offset: Option<u64>,
}

/// One segment file of a stream.
#[derive(Debug)]
struct DiskSegment {
    path: PathBuf,
    first_lsn: u64,
    /// The file's length when last listed.
    file_bytes: u64,
    file: Option<Box<dyn FileHandle>>,
    /// A read-only map of the file, once mapped (see [`DiskSegment::mapped_frame`]).
    map: Option<Mapping>,
    /// `file_bytes` when mapping was last tried: tried again only once the file has grown.
    map_tried_at: Option<u64>,
    /// `None` while the segment holds no durable frame.
    first: Option<FirstBatch>,
    /// Sparse entries in position order; the first is the first frame once indexed.
    entries: Vec<Entry>,
    /// The next frame not yet indexed: `(position, lsn, offset)`.
    indexed_to: (u64, u64, Option<u64>),
}

impl DiskSegment {
    fn new(path: PathBuf, first_lsn: u64, file_bytes: u64) -> Self {
        DiskSegment {
            path,
            first_lsn,
            file_bytes,
            file: None,
            map: None,
            map_tried_at: None,
            first: None,
            entries: Vec::new(),
            indexed_to: (SEGMENT_HEADER_BYTES, first_lsn, None),
        }
    }

    fn file(&mut self, fs: &dyn FileSystem) -> Result<&dyn FileHandle, StreamError> {
        if self.file.is_none() {
            let file = fs
                .open(&self.path, OpenMode::Read)
                .map_err(|error| StreamError::io("open stream segment", &self.path, error))?;
            self.file = Some(file);
        }
        self.file
            .as_deref()
            .ok_or_else(|| StreamError::corrupted(&self.path, 0, "segment handle missing"))
    }

    /// The frame at `position` when a walk may pass it unread: it lies below `indexed_to`
    /// (an earlier walk read it whole and checked its CRC, and frames there are final), the
    /// segment is mapped, and its header still says what the walk expects there (a stream
    /// batch carrying `lsn` and, if known, first offset `offset`). Returns its length in bytes,
    /// its batch's timestamp and message count, read from the map without a second CRC.
    fn checked_before(
        &self,
        position: u64,
        lsn: u64,
        offset: Option<u64>,
        payload_bytes_max: usize,
    ) -> Option<(u64, u64, u64)> {
        if position >= self.indexed_to.0 {
            return None;
        }
        let from = usize::try_from(position).ok()?;
        let rest = self.map.as_ref()?.bytes().get(from..)?;
        let frame_bytes = check_frame_header(rest.get(..6)?, payload_bytes_max)?.ok()?;
        let frame = rest.get(..frame_bytes)?;
        let record_type = *frame.get(FRAME_RECORD_TYPE_OFFSET)?;
        let version = read_u64(frame, FRAME_VERSION_OFFSET)?;
        let fits = record_type == STREAM_BATCH_RECORD_TYPE
            && read_u64(frame, FRAME_LSN_OFFSET)? == lsn
            && offset.is_none_or(|offset| offset == version);
        let body = frame.get(FRAME_BODY_OFFSET..frame_bytes.checked_sub(4)?)?;
        let (timestamp_ms, count) = batch_header(body).ok()?;
        fits.then_some((to_u64(frame_bytes), timestamp_ms, u64::from(count)))
    }

    /// The bytes of the frame at `position`, read through the segment's memory map, when the
    /// file can be mapped and the map holds a whole frame there whose header passes the
    /// checks. `None` sends the caller to `read_at`, which reports what is wrong, if anything.
    /// Callers ask only for frames at or below the durable LSN, whose bytes are final.
    fn mapped_frame(
        &mut self,
        fs: &dyn FileSystem,
        position: u64,
        payload_bytes_max: usize,
    ) -> Option<&[u8]> {
        let mapped_bytes = self.map.as_ref().map_or(0, |map| to_u64(map.bytes().len()));
        let grown = self
            .map_tried_at
            .is_none_or(|tried| self.file_bytes > tried);
        if mapped_bytes < self.file_bytes && grown {
            self.map_tried_at = Some(self.file_bytes);
            if let Ok(Some(map)) = self.file(fs).ok()?.map() {
                self.map = Some(map);
            }
        }
        let bytes = self.map.as_ref()?.bytes();
        let from = usize::try_from(position).ok()?;
        let rest = bytes.get(from..)?;
        let frame_bytes = check_frame_header(rest.get(..6)?, payload_bytes_max)?.ok()?;
        rest.get(..frame_bytes)
    }
}

/// Reads the prefix of the first frame of the segment at `path` (first LSN `first_lsn`):
/// `Ok(None)` when the segment holds no frame (zeros or the end of the file right after the
/// header). Reads [`PROBE_BYTES`] bytes, never the rest of the segment. The CRC is not
/// checked here (that would need the whole frame); the first read of the frame checks it.
pub(crate) fn probe_first_batch(
    file: &dyn FileHandle,
    path: &Path,
    first_lsn: u64,
) -> Result<Option<FirstBatch>, StreamError> {
    let mut prefix = [0_u8; PROBE_BYTES];
    let read = file
        .read_at(&mut prefix, SEGMENT_HEADER_BYTES)
        .map_err(|error| StreamError::io("read stream segment", path, error))?;
    let header = prefix.get(..read.min(6)).unwrap_or(&[]);
    if header.len() < 6 || header.iter().all(|&byte| byte == 0) {
        return Ok(None);
    }
    let bad = |reason: &str| {
        Err(StreamError::corrupted(
            path,
            SEGMENT_HEADER_BYTES,
            format!("first frame of the segment: {reason}"),
        ))
    };
    if read < PROBE_BYTES {
        return bad("shorter than a stream batch frame");
    }
    match check_frame_header(&prefix, usize::MAX) {
        Some(Ok(frame_bytes)) if frame_bytes >= PROBE_BYTES + 8 => {}
        Some(Err(reason)) => return bad(reason),
        _ => return bad("shorter than a stream batch frame"),
    }
    if prefix.get(4) != Some(&STREAM_BATCH_RECORD_TYPE) {
        return bad("not a stream batch frame");
    }
    let (Some(lsn), Some(offset), Some(timestamp_ms)) = (
        read_u64(&prefix, 6),
        read_u64(&prefix, 14),
        read_u64(&prefix, FRAME_BODY_OFFSET),
    ) else {
        return bad("shorter than a stream batch frame");
    };
    if lsn != first_lsn {
        return bad("its LSN is not the segment's first LSN");
    }
    Ok(Some(FirstBatch {
        offset,
        timestamp_ms,
    }))
}

/// One frame read from disk, with the part of its batch the reader wants decoded, borrowed
/// from the index's read buffer.
#[derive(Debug)]
pub(crate) struct ReadBatch<'a> {
    /// Its first offset.
    pub first_offset: u64,
    /// Messages in the batch.
    pub count: u64,
    /// Offset of `messages[0]`: the first offset the reader wanted, within the batch.
    pub decoded_from: u64,
    /// When the batch was appended, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The wanted messages only.
    pub messages: Vec<MessageRef<'a>>,
}

/// The segments of one stream and their sparse indexes.
#[derive(Debug)]
pub(crate) struct DiskIndex {
    dir: PathBuf,
    segments: Vec<DiskSegment>,
    interval_bytes: u64,
    payload_bytes_max: usize,
    /// Reused frame buffer.
    buffer: Vec<u8>,
    /// Bytes read ahead of the last frame read from disk.
    ahead: ReadAhead,
    /// Where the last walk stopped: a later read at or after its offset starts there
    /// instead of at an index entry (sequential readers walk no frame twice). Cleared when
    /// the segments are re-listed.
    resume: Option<At>,
}

/// Bytes of a segment read in one `read_at`: the frames a walk reads next are usually there.
const READ_AHEAD_BYTES: usize = 16 << 10;

/// A window of one segment's bytes. Only frames whose LSN was durable when the window was
/// read are served from it: their bytes were final then. Anything else (a frame being
/// written at the time, damage) is read again from the file, with the usual checks.
#[derive(Debug, Default)]
struct ReadAhead {
    /// The segment's first LSN (segments are never renumbered or reused), or `None`.
    segment: Option<u64>,
    start: u64,
    bytes: Vec<u8>,
    durable_lsn: u64,
}

impl ReadAhead {
    /// The bytes of the frame at `position` of `segment`, when the window holds all of them.
    fn frame(&self, segment: u64, position: u64, payload_bytes_max: usize) -> Option<&[u8]> {
        if self.segment != Some(segment) || position < self.start {
            return None;
        }
        let from = usize::try_from(position - self.start).ok()?;
        let rest = self.bytes.get(from..)?;
        let frame_bytes = check_frame_header(rest.get(..6)?, payload_bytes_max)?.ok()?;
        rest.get(..frame_bytes)
    }
}

/// Why a frame carrying `lsn` and first offset `version` is not the one expected at `at`,
/// or `None` when it is.
fn unexpected(at: At, lsn: u64, version: u64) -> Option<String> {
    if lsn != at.lsn {
        Some(format!(
            "frame carries LSN {lsn} where {} was expected",
            at.lsn
        ))
    } else if at.offset.is_some_and(|offset| offset != version) {
        Some(format!(
            "batch starts at offset {version} where {:?} was expected",
            at.offset
        ))
    } else {
        None
    }
}

/// Copies the frame `bytes` into `buffer` and returns it as found when it decodes with its
/// CRC checked, is a stream batch and carries an LSN at or below `lsn_limit` (its bytes were
/// final when they were read); `None` sends the caller to a checked positional read.
fn copy_final(
    buffer: &mut Vec<u8>,
    bytes: &[u8],
    payload_bytes_max: usize,
    lsn_limit: u64,
) -> Option<FrameAt> {
    buffer.clear();
    buffer.extend_from_slice(bytes);
    match decode_frame(buffer, payload_bytes_max) {
        Decoded::Frame { frame, .. }
            if frame.record_type == STREAM_BATCH_RECORD_TYPE && frame.lsn <= lsn_limit =>
        {
            Some(FrameAt::Frame {
                frame_bytes: to_u64(buffer.len()),
                lsn: frame.lsn,
                version: frame.version,
            })
        }
        _ => None,
    }
}

/// What reading one frame found.
enum FrameAt {
    /// No frame there: zeros or the end of the file.
    End,
    /// A frame of `frame_bytes` with this LSN and version; its body is in the buffer.
    Frame {
        frame_bytes: u64,
        lsn: u64,
        version: u64,
    },
}

impl DiskIndex {
    /// An index of the segments of `dir` as they are now (headers only, plus one probe of each
    /// segment whose first LSN is at or below `lsn_limit`).
    pub fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        interval_bytes: u64,
        payload_bytes_max: usize,
        lsn_limit: u64,
    ) -> Result<Self, StreamError> {
        let mut index = DiskIndex {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            interval_bytes: interval_bytes.max(1),
            payload_bytes_max,
            buffer: Vec::new(),
            ahead: ReadAhead::default(),
            resume: None,
        };
        index.refresh(fs, lsn_limit)?;
        Ok(index)
    }

    /// Re-lists the segments: keeps what is known about those still there, adds new ones,
    /// drops removed ones, and probes every segment without a known first batch whose first
    /// LSN is at or below `lsn_limit`.
    pub fn refresh(&mut self, fs: &dyn FileSystem, lsn_limit: u64) -> Result<(), StreamError> {
        let listed = list_segments(fs, &self.dir)?;
        // Positions in `resume` name segments by index, which the new list may shift.
        self.resume = None;
        let mut old = std::mem::take(&mut self.segments).into_iter().peekable();
        for info in listed {
            while old
                .next_if(|segment| segment.first_lsn < info.first_lsn)
                .is_some()
            {}
            let segment = match old.next_if(|segment| segment.first_lsn == info.first_lsn) {
                Some(mut segment) => {
                    segment.file_bytes = info.file_bytes;
                    segment
                }
                None => DiskSegment::new(info.path, info.first_lsn, info.file_bytes),
            };
            self.segments.push(segment);
        }
        for segment in &mut self.segments {
            if segment.first.is_none() && segment.first_lsn <= lsn_limit {
                let (path, first_lsn) = (segment.path.clone(), segment.first_lsn);
                segment.first = probe_first_batch(segment.file(fs)?, &path, first_lsn)?;
                if let Some(first) = segment.first {
                    segment.indexed_to.2 = Some(first.offset);
                }
            }
        }
        Ok(())
    }

    /// The LSN just below the first segment whose batches start at or above `offset`, i.e.
    /// the last LSN of the segments wholly below `offset` (0 if none). The last segment never
    /// counts (the log appends to it).
    pub fn last_lsn_wholly_below(&self, offset: u64) -> u64 {
        let mut last = 0;
        for pair in self.segments.windows(2) {
            if let [_, next] = pair {
                match next.first {
                    Some(first) if first.offset <= offset => last = next.first_lsn - 1,
                    _ => break,
                }
            }
        }
        last
    }

    /// Reads the frame at `position` of segment `segment` into the buffer.
    fn frame_at(
        &mut self,
        fs: &dyn FileSystem,
        segment: usize,
        position: u64,
        lsn_limit: u64,
    ) -> Result<FrameAt, StreamError> {
        let payload_bytes_max = self.payload_bytes_max;
        let Some(disk) = self.segments.get_mut(segment) else {
            return Ok(FrameAt::End);
        };
        if let Some(bytes) = disk.mapped_frame(fs, position, payload_bytes_max) {
            if let Some(found) = copy_final(&mut self.buffer, bytes, payload_bytes_max, lsn_limit) {
                return Ok(found);
            }
        }
        let key = disk.first_lsn;
        if let Some(bytes) = self.ahead.frame(key, position, payload_bytes_max) {
            let durable = self.ahead.durable_lsn;
            if let Some(found) = copy_final(&mut self.buffer, bytes, payload_bytes_max, durable) {
                return Ok(found);
            }
        }
        let path = disk.path.clone();
        let file = disk.file(fs)?;
        let ahead = &mut self.ahead;
        ahead.segment = None;
        ahead.bytes.resize(READ_AHEAD_BYTES, 0);
        let read = file
            .read_at(&mut ahead.bytes, position)
            .map_err(|error| StreamError::io("read stream segment", &path, error))?;
        ahead.bytes.truncate(read);
        (ahead.segment, ahead.start, ahead.durable_lsn) = (Some(key), position, lsn_limit);
        let header = ahead.bytes.get(..6).unwrap_or(&[]);
        if header.len() < 6 || header.iter().all(|&byte| byte == 0) {
            return Ok(FrameAt::End);
        }
        let frame_bytes = match check_frame_header(header, payload_bytes_max) {
            Some(Ok(frame_bytes)) => frame_bytes,
            Some(Err(reason)) => return Err(StreamError::corrupted(&path, position, reason)),
            None => return Ok(FrameAt::End),
        };
        // The length passed the payload limit, so this allocation is bounded by it.
        self.buffer.clear();
        if let Some(bytes) = ahead.bytes.get(..frame_bytes) {
            self.buffer.extend_from_slice(bytes);
        } else {
            self.buffer.resize(frame_bytes, 0);
            read_exact_at(file, &mut self.buffer, position)
                .map_err(|error| StreamError::corrupted(&path, position, error.to_string()))?;
        }
        match decode_frame(&self.buffer, payload_bytes_max) {
            Decoded::Frame { frame, .. } if frame.record_type == STREAM_BATCH_RECORD_TYPE => {
                Ok(FrameAt::Frame {
                    frame_bytes: to_u64(frame_bytes),
                    lsn: frame.lsn,
                    version: frame.version,
                })
            }
            Decoded::Frame { .. } => Err(StreamError::corrupted(
                &path,
                position,
                "frame is not a stream batch",
            )),
            Decoded::Invalid { reason } => Err(StreamError::corrupted(&path, position, reason)),
            Decoded::Incomplete => Err(StreamError::corrupted(
                &path,
                position,
                "frame cut short by the end of the file",
            )),
        }
    }

    /// The path of segment `segment`, for errors (empty if there is no such segment).
    fn path_of(&self, segment: usize) -> PathBuf {
        self.segments
            .get(segment)
            .map(|disk| disk.path.clone())
            .unwrap_or_default()
    }

    /// Walks frames from `start`, in order across segments, calling `visit` with each batch
    /// (but the checked ones passed before a non-empty `wanted`, see
    /// [`DiskIndex::read_from`]) until it returns false or no frame at or below `lsn_limit`
    /// is left. Extends the sparse
    /// index of every segment it walks past the indexed end of. Refreshes the segment list
    /// once when it runs off the last known segment below the limit.
    fn walk(
        &mut self,
        fs: &dyn FileSystem,
        mut at: At,
        lsn_limit: u64,
        wanted: Range<u64>,
        visit: &mut dyn FnMut(&mut ReadBatch) -> bool,
    ) -> Result<(), StreamError> {
        let mut refreshed = false;
        loop {
            if at.lsn > lsn_limit {
                return Ok(());
            }
            if at.segment >= self.segments.len() {
                return Ok(());
            }
            let next_first_lsn = self.segments.get(at.segment + 1).map(|next| next.first_lsn);
            if next_first_lsn == Some(at.lsn) {
                let next_offset = self
                    .segments
                    .get(at.segment + 1)
                    .and_then(|next| next.first)
                    .map(|first| first.offset);
                if at.offset.is_some() && next_offset.is_some() && next_offset != at.offset {
                    return Err(StreamError::corrupted(
                        &self.path_of(at.segment),
                        at.position,
                        "the next segment does not start at the offset this one ends at",
                    ));
                }
                at = At {
                    segment: at.segment + 1,
                    position: SEGMENT_HEADER_BYTES,
                    lsn: at.lsn,
                    offset: at.offset.or(next_offset),
                };
                continue;
            }
            if let Some((mut read, next)) = self.pass_checked(at, wanted.start) {
                self.resume = Some(at);
                // A read of messages is not shown the checked batches it passes on the way
                // to them (they end at or before the first wanted offset); a walk that wants
                // none, by time or to the end, sees every batch.
                if wanted.is_empty() && !visit(&mut read) {
                    return Ok(());
                }
                at = next;
                continue;
            }
            let (frame_bytes, lsn, version) =
                match self.frame_at(fs, at.segment, at.position, lsn_limit)? {
                    FrameAt::Frame {
                        frame_bytes,
                        lsn,
                        version,
                    } => (frame_bytes, lsn, version),
                    FrameAt::End if next_first_lsn.is_none() && !refreshed => {
                        refreshed = true;
                        self.refresh(fs, lsn_limit)?;
                        continue;
                    }
                    FrameAt::End => {
                        return Err(StreamError::corrupted(
                            &self.path_of(at.segment),
                            at.position,
                            format!("durable frame with LSN {} is missing", at.lsn),
                        ))
                    }
                };
            if let Some(reason) = unexpected(at, lsn, version) {
                return Err(StreamError::corrupted(
                    &self.path_of(at.segment),
                    at.position,
                    reason,
                ));
            }
            let index = |offset: u64| usize::try_from(offset.saturating_sub(version));
            let index = |offset: u64| index(offset).unwrap_or(usize::MAX);
            // The wanted messages stay borrowed from the read buffer until `visit` returns;
            // what the walk updates meanwhile are other fields (`segments`, `resume`).
            let body = body_of(&self.buffer);
            let mut messages = Vec::new();
            let wanted_indexes = index(wanted.start)..index(wanted.end);
            let (timestamp_ms, count) = decode_batch_refs(body, wanted_indexes, &mut messages)
                .map_err(|reason| {
                    StreamError::corrupted(&self.path_of(at.segment), at.position, reason)
                })?;
            let count = to_u64(count);
            let mut read = ReadBatch {
                first_offset: version,
                count,
                decoded_from: version.max(wanted.start),
                timestamp_ms,
                messages,
            };
            note(&mut self.segments, self.interval_bytes, at, &read);
            let next = At {
                segment: at.segment,
                position: at.position + frame_bytes,
                lsn: at.lsn + 1,
                offset: Some(version.saturating_add(count)),
            };
            if let Some(disk) = self.segments.get_mut(at.segment) {
                if disk.indexed_to.0 == at.position {
                    disk.indexed_to = (next.position, next.lsn, next.offset);
                }
            }
            self.resume = Some(at);
            if !visit(&mut read) {
                return Ok(());
            }
            at = next;
        }
    }

    /// The frame at `at` passed by its header alone, with where the walk goes next, when an
    /// earlier walk checked it ([`DiskSegment::checked_before`]) and it ends at or before
    /// `wanted_start`: only the frames a read returns are checked on every read.
    fn pass_checked(&self, at: At, wanted_start: u64) -> Option<(ReadBatch<'static>, At)> {
        let first_offset = at.offset?;
        let disk = self.segments.get(at.segment)?;
        let (frame_bytes, timestamp_ms, count) =
            disk.checked_before(at.position, at.lsn, at.offset, self.payload_bytes_max)?;
        let end = first_offset.saturating_add(count);
        if end > wanted_start {
            return None;
        }
        let read = ReadBatch {
            first_offset,
            count,
            decoded_from: first_offset.max(wanted_start),
            timestamp_ms,
            messages: Vec::new(),
        };
        let next = At {
            segment: at.segment,
            position: at.position + frame_bytes,
            lsn: at.lsn + 1,
            offset: Some(end),
        };
        Some((read, next))
    }

    /// Where to start walking: the last index entry for which `key` holds, in the last
    /// segment whose first batch satisfies `first_key` (both predicates are monotone: true
    /// then false along the stream).
    /// `target` and `field` guide the search: `key(entry)` is `field(entry) < target` or
    /// `<=`, and the entries are looked up first where `target` falls between the first and
    /// last entries' fields (see [`partition_point_from`]).
    fn start_for(
        &self,
        key: impl Fn(&Entry) -> bool,
        first_key: impl Fn(&FirstBatch) -> bool,
        (target, field): (u64, fn(&Entry) -> u64),
    ) -> Option<At> {
        let segment = self
            .segments
            .partition_point(|segment| segment.first.as_ref().is_some_and(&first_key))
            .checked_sub(1)?;
        let disk = self.segments.get(segment)?;
        let guess = interpolate(&disk.entries, target, field);
        let entry = partition_point_from(&disk.entries, guess, &key).checked_sub(1);
        let at = match entry.and_then(|index| disk.entries.get(index)) {
            Some(entry) => At {
                segment,
                position: entry.position,
                lsn: entry.lsn,
                offset: Some(entry.first_offset),
            },
            None => At {
                segment,
                position: SEGMENT_HEADER_BYTES,
                lsn: disk.first_lsn,
                offset: disk.first.map(|first| first.offset),
            },
        };
        Some(at)
    }

    /// Calls `visit` with every batch, from the one holding `offset` on, at or below
    /// `lsn_limit`, until it returns false; of each batch only the messages with offsets in
    /// `offset..offset + messages` are decoded. When `messages` is above zero, a batch an
    /// earlier walk checked that ends at or before `offset` may be passed without a call.
    pub fn read_from(
        &mut self,
        fs: &dyn FileSystem,
        offset: u64,
        messages: u64,
        lsn_limit: u64,
        visit: &mut dyn FnMut(&mut ReadBatch) -> bool,
    ) -> Result<(), StreamError> {
        self.refresh_if_unprobed(fs, lsn_limit)?;
        let start = self.start_for(
            |entry| entry.first_offset <= offset,
            |first| first.offset <= offset,
            (offset, |entry| entry.first_offset),
        );
        let Some(mut start) = start.or_else(|| self.first_position()) else {
            return Ok(());
        };
        // Where the last walk stopped, when that is past the index entry and not past
        // `offset`: a sequential reader then reads each frame once.
        if let Some(resume) = self.resume {
            let later = (resume.segment, resume.position) > (start.segment, start.position);
            if later && resume.offset.is_some_and(|first| first <= offset) {
                start = resume;
            }
        }
        let wanted = offset..offset.saturating_add(messages);
        self.walk(fs, start, lsn_limit, wanted, visit)
    }

    /// Calls `visit` with every batch from the last one stamped before `timestamp_ms` on (the
    /// first batch at or after it is then among the visited), until it returns false. No
    /// message is decoded: the batches carry their timestamps and counts only.
    pub fn read_from_time(
        &mut self,
        fs: &dyn FileSystem,
        timestamp_ms: u64,
        lsn_limit: u64,
        visit: &mut dyn FnMut(&mut ReadBatch) -> bool,
    ) -> Result<(), StreamError> {
        self.refresh_if_unprobed(fs, lsn_limit)?;
        let start = self.start_for(
            |entry| entry.timestamp_ms < timestamp_ms,
            |first| first.timestamp_ms < timestamp_ms,
            (timestamp_ms, |entry| entry.timestamp_ms),
        );
        let Some(start) = start.or_else(|| self.first_position()) else {
            return Ok(());
        };
        self.walk(fs, start, lsn_limit, 0..0, visit)
    }

    /// Refreshes when a segment holds durable frames but was listed before it had any.
    fn refresh_if_unprobed(
        &mut self,
        fs: &dyn FileSystem,
        lsn_limit: u64,
    ) -> Result<(), StreamError> {
        let unprobed = self
            .segments
            .iter()
            .any(|segment| segment.first.is_none() && segment.first_lsn <= lsn_limit);
        if unprobed || self.segments.is_empty() {
            self.refresh(fs, lsn_limit)?;
        }
        Ok(())
    }

    /// The first frame of the first segment.
    fn first_position(&self) -> Option<At> {
        let first = self.segments.first()?;
        Some(At {
            segment: 0,
            position: SEGMENT_HEADER_BYTES,
            lsn: first.first_lsn,
            offset: first.first.map(|batch| batch.offset),
        })
    }

    /// What retention needs of every segment, oldest first.
    pub fn summaries(&self) -> Vec<SegmentSummary> {
        self.segments
            .iter()
            .map(|segment| SegmentSummary {
                first: segment
                    .first
                    .map(|first| (first.offset, first.timestamp_ms)),
                file_bytes: segment.file_bytes,
            })
            .collect()
    }

    /// Segments known.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Sparse index entries held, over all segments.
    pub fn entry_count(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| segment.entries.len())
            .sum()
    }
}

/// The body of the frame in `buffer` (as `frame_at` left it).
fn body_of(buffer: &[u8]) -> &[u8] {
    let end = buffer.len().saturating_sub(4);
    buffer.get(FRAME_BODY_OFFSET..end).unwrap_or(&[])
}

/// Adds an index entry for the frame at `at` if it extends the segment's index and is far
/// enough (`interval` bytes) from the previous entry.
fn note(segments: &mut [DiskSegment], interval: u64, at: At, read: &ReadBatch<'_>) {
    let Some(disk) = segments.get_mut(at.segment) else {
        return;
    };
    if disk.indexed_to.0 != at.position {
        return;
    }
    if disk.first.is_none() {
        disk.first = Some(FirstBatch {
            offset: read.first_offset,
            timestamp_ms: read.timestamp_ms,
        });
    }
    let due = disk
        .entries
        .last()
        .is_none_or(|last| at.position >= last.position.saturating_add(interval));
    if due {
        disk.entries.push(Entry {
            position: at.position,
            lsn: at.lsn,
            first_offset: read.first_offset,
            timestamp_ms: read.timestamp_ms,
        });
    }
}

/// Where `target` would fall in `entries` if `field` grew linearly along them: an index into
/// `entries` (0 when empty). Offsets grow nearly linearly with file position when messages
/// are of similar sizes, and timestamps when the rate is steady, so this is usually within a
/// few entries of the answer. Only a starting point: the search is exact whatever it says.
fn interpolate(entries: &[Entry], target: u64, field: fn(&Entry) -> u64) -> usize {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return 0;
    };
    let (low, high) = (field(first), field(last));
    if target <= low || high <= low {
        return 0;
    }
    let last_index = entries.len() - 1;
    if target >= high {
        return last_index;
    }
    let scaled = u128::from(target - low) * last_index as u128 / u128::from(high - low);
    usize::try_from(scaled)
        .unwrap_or(last_index)
        .min(last_index)
}

/// The index of the first item for which `key` is false, exactly as
/// `items.partition_point(key)` finds it (`key` must be true then false along `items`), but
/// searched from `guess`: steps of 1, 2, 4, ... away from the guess until they cross the
/// answer, then a bisection of the last step. A lookup costs O(log d) probes for an answer
/// `d` items from the guess, near each other in memory, where a plain bisection of a long
/// list takes a cache miss at nearly every one of its log2(n) probes.
fn partition_point_from<T>(items: &[T], guess: usize, key: impl Fn(&T) -> bool) -> usize {
    let len = items.len();
    let holds = |index: usize| items.get(index).is_some_and(&key);
    // The answer lies in `low..=high`.
    let (mut low, mut high) = (0, len);
    let guess = guess.min(len);
    if holds(guess) {
        low = guess + 1;
        let mut step = 1_usize;
        while let Some(probe) = guess.checked_add(step).filter(|&probe| probe < len) {
            if holds(probe) {
                low = probe + 1;
                step = step.saturating_mul(2);
            } else {
                high = probe;
                break;
            }
        }
    } else {
        high = guess;
        let mut step = 1_usize;
        while let Some(probe) = guess.checked_sub(step) {
            if holds(probe) {
                low = probe + 1;
                break;
            }
            high = probe;
            step = step.saturating_mul(2);
        }
    }
    debug_assert!(low <= high && high <= len, "the answer stays bracketed");
    low + items
        .get(low..high)
        .map_or(0, |rest| rest.partition_point(&key))
}

#[cfg(test)]
mod tests {
    use super::{interpolate, partition_point_from, Entry};

    fn entry(first_offset: u64) -> Entry {
        Entry {
            position: 0,
            lsn: 0,
            first_offset,
            timestamp_ms: 0,
        }
    }

    #[test]
    fn a_guided_search_finds_what_a_bisection_finds_from_any_guess() {
        // Lists of every length up to 40, with runs of equal values, and every target.
        for len in 0..40_u64 {
            let values: Vec<u64> = (0..len).map(|i| i / 3 * 2).collect();
            for target in 0..=len {
                let key = |value: &u64| *value <= target;
                let expected = values.partition_point(key);
                for guess in 0..=values.len() + 2 {
                    assert_eq!(
                        partition_point_from(&values, guess, key),
                        expected,
                        "len {len}, target {target}, guess {guess}"
                    );
                }
            }
        }
    }

    #[test]
    fn interpolation_guesses_within_the_list_and_near_a_linear_answer() {
        assert_eq!(interpolate(&[], 5, |entry| entry.first_offset), 0);
        let entries: Vec<Entry> = (0..1_000).map(|i| entry(i * 40)).collect();
        let field = |entry: &Entry| entry.first_offset;
        assert_eq!(interpolate(&entries, 0, field), 0);
        assert_eq!(interpolate(&entries, u64::MAX, field), 999);
        assert_eq!(interpolate(&entries, 400 * 40 + 7, field), 400);
        // A list whose field does not grow still gives an index within it.
        let flat: Vec<Entry> = (0..10).map(|_| entry(7)).collect();
        assert!(interpolate(&flat, 7, field) < 10);
        assert!(interpolate(&flat, 100, field) < 10);
    }
}

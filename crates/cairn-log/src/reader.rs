//! Reading the log back: a sequential frame reader over one segment, the classification of
//! whatever ends a segment (clean end, torn tail, corruption), and whole-directory
//! verification. Recovery (`Log::open`) and `verify_dir` share one scan, so `cairn verify`
//! says exactly what an open would do, without modifying anything.
//!
//! Classification (the recovery contract of the design, section 4):
//! - LSNs run without gaps: each frame carries the next LSN; a segment starts right after the
//!   previous one ends (a gap is tolerated only where every missing LSN is `<= after_lsn`, i.e.
//!   covered by the caller's snapshot), and the first segment starts at or before
//!   `after_lsn + 1`.
//! - A zeroed frame header (or the end of the file) is the normal end of a segment: the rest
//!   of a preallocated segment is zeros.
//! - A non-zero invalid frame triggers a forward scan of the rest of the segment, byte by byte,
//!   for a valid frame (cheap header prefilter first, CRC only for candidates) with an LSN
//!   above the last good one. If one is found, the damage is not a crash artefact:
//!   corruption. Otherwise it is a torn tail in the last segment, and corruption in any other
//!   one, because a segment is synced whole before the next one is created.
//! - A recycled segment (header flag) holds its previous life's frames after its own, all
//!   with LSNs below its first LSN. Its first byte that is not the next frame (zeros, an
//!   invalid frame, or a valid stale frame) ends it: in a segment that is not the last, the
//!   next segment's first LSN then proves nothing is missing (the order check refuses a gap).
//!   In the last one, bytes that are not its own next frame are the previous life, which the
//!   write that would have replaced them did not reach: the end, as zeros are in a new
//!   segment. Only the segment's own next frame, damaged or torn (its LSN field says so, or
//!   the frame checks with that LSN written in), is looked past with the forward scan, which
//!   hops over intact stale frames and calls a valid newer frame corruption. Nothing is cut:
//!   the rest is the segment's normal end, the next open starts a new segment after it, and a
//!   segment found at open is never recycled (it may hold frames a crash left after such an
//!   end, with LSNs the log goes on to reuse).
//!
//! Memory stays bounded: the reader holds a window of [`READ_CHUNK_BYTES`] (more only for a
//! frame larger than that, and only after its length passed the payload limit and the bytes
//! left in the file). Trade-offs: zeros are not scanned past, so an open never reads the
//! unused part of a segment, and a crash that persisted a later page of the last group but not
//! its first one (left zeros) reads as the clean end it is; the price is that a sector of
//! acknowledged frames that reads back as zeros in the last segment is taken as the end of the
//! log too (in any earlier segment, the LSN gap to the next segment reveals it).

use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::format::{
    to_u64, to_usize, FRAME_BODY_OFFSET, FRAME_FORMAT_VERSION, FRAME_FORMAT_VERSION_OFFSET,
    FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, FRAME_RECORD_TYPE_OFFSET, FRAME_TRAILER_BYTES,
    SEGMENT_HEADER_BYTES,
};
use crate::frame::{check_frame_header, decode_frame, Decoded, FrameRef};
use crate::fs::{read_exact_at, FileHandle, FileSystem, OpenMode};
use crate::identity::DatabaseId;
use crate::segment::{list_segment_files, ListedSegment, SegmentInfo};

pub use crate::segment::list_segments;

/// Bytes the reader fetches per read: 1 MiB, large enough that replay is sequential I/O and
/// small enough to bound the memory of recovery and verification.
pub const READ_CHUNK_BYTES: usize = 1 << 20;

/// Why a [`SegmentReader`] stopped returning frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// The file ended exactly after the last frame.
    EndOfFile,
    /// The next frame header is all zeros (the preallocated, unused part of a segment).
    Zeros,
    /// The file ends inside the frame its header announces.
    Incomplete,
    /// The bytes there are not a valid frame.
    Invalid {
        /// What [`decode_frame`] rejected.
        reason: &'static str,
    },
}

/// Where and why a [`SegmentReader`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStop {
    /// Offset of the first byte that is not part of a valid frame.
    pub offset: u64,
    /// Why decoding stopped there.
    pub kind: StopKind,
}

impl FrameStop {
    /// A short description for reports.
    fn describe(&self) -> String {
        match self.kind {
            StopKind::EndOfFile => "end of file".to_owned(),
            StopKind::Zeros => "zeroed frame header".to_owned(),
            StopKind::Incomplete => "frame cut short by the end of the file".to_owned(),
            StopKind::Invalid { reason } => reason.to_owned(),
        }
    }
}

/// What lies after the place a [`SegmentReader`] stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailScan {
    /// The first valid frame after the stop whose LSN is above the floor: `(offset, lsn)`.
    pub next_frame: Option<(u64, u64)>,
    /// One past the last non-zero byte at or after the stop, if any (exact only when
    /// `next_frame` is `None`, since the scan ends at the first valid frame).
    pub nonzero_end: Option<u64>,
}

/// Iterates the frames of one segment file in order, through positional reads of at least
/// [`READ_CHUNK_BYTES`], reusing one buffer.
#[derive(Debug)]
pub struct SegmentReader {
    file: Box<dyn FileHandle>,
    path: PathBuf,
    file_bytes: u64,
    payload_bytes_max: usize,
    /// File bytes `[window_offset, window_offset + window.len())`.
    window: Vec<u8>,
    window_offset: u64,
    /// Offset of the next frame.
    position: u64,
    stop: Option<FrameStop>,
    /// Reused for candidate frames of the forward scan that do not fit the window.
    scratch: Vec<u8>,
    bytes_read: u64,
}

impl SegmentReader {
    /// Opens the segment `info` describes; frames start after the header. `payload_bytes_max`
    /// is the largest payload accepted (capped at [`FRAME_PAYLOAD_BYTES_MAX`]).
    pub fn open(
        fs: &dyn FileSystem,
        info: &SegmentInfo,
        payload_bytes_max: usize,
    ) -> Result<Self, LogError> {
        Self::open_path(fs, &info.path, payload_bytes_max)
    }

    /// Opens any file as a segment, without looking at its header (used to count what a
    /// damaged header hides).
    fn open_path(
        fs: &dyn FileSystem,
        path: &Path,
        payload_bytes_max: usize,
    ) -> Result<Self, LogError> {
        let file = fs
            .open(path, OpenMode::Read)
            .map_err(|error| LogError::io("open segment", path, error))?;
        let file_bytes = file
            .len()
            .map_err(|error| LogError::io("read segment length", path, error))?;
        Ok(SegmentReader {
            file,
            path: path.to_path_buf(),
            file_bytes,
            payload_bytes_max: payload_bytes_max.min(FRAME_PAYLOAD_BYTES_MAX),
            window: Vec::new(),
            window_offset: SEGMENT_HEADER_BYTES,
            position: SEGMENT_HEADER_BYTES,
            stop: None,
            scratch: Vec::new(),
            bytes_read: 0,
        })
    }

    /// The segment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length when opened; reading never goes past it.
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Offset of the next frame (after a stop: the stop's offset).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes read from the file so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Where and why reading stopped, once [`SegmentReader::next`] returned `None`.
    pub fn stop(&self) -> Option<FrameStop> {
        self.stop
    }

    /// Resumes decoding at `offset` (clears the stop).
    pub fn seek(&mut self, offset: u64) {
        self.position = offset;
        self.stop = None;
    }

    /// The next valid frame and its offset, or `None` once decoding stops (see
    /// [`SegmentReader::stop`]). Errors are I/O errors only; damage is a stop, not an error.
    #[expect(
        clippy::should_implement_trait,
        reason = "a lending iterator: each frame borrows the reader's buffer, which Iterator cannot express"
    )]
    pub fn next(&mut self) -> Result<Option<(u64, FrameRef<'_>)>, LogError> {
        /// What one decoding attempt concluded.
        enum Step {
            Frame {
                frame_bytes: usize,
                record_type: u8,
                lsn: u64,
                version: u64,
            },
            Stop(StopKind),
            Need(usize),
        }
        if self.stop.is_some() {
            return Ok(None);
        }
        let offset = self.position;
        let remaining = to_usize(self.file_bytes.saturating_sub(offset));
        if remaining == 0 {
            return Ok(self.stop_at(offset, StopKind::EndOfFile));
        }
        let header_bytes = remaining.min(FRAME_HEADER_BYTES);
        self.ensure_window(offset, header_bytes)?;
        if self
            .window_slice(offset, header_bytes)
            .iter()
            .all(|&byte| byte == 0)
        {
            return Ok(self.stop_at(offset, StopKind::Zeros));
        }
        let mut available = remaining.min(self.window_bytes_from(offset));
        loop {
            let bytes = self.window_slice(offset, available);
            let step = match decode_frame(bytes, self.payload_bytes_max) {
                Decoded::Frame { frame, frame_bytes } => Step::Frame {
                    frame_bytes,
                    record_type: frame.record_type,
                    lsn: frame.lsn,
                    version: frame.version,
                },
                Decoded::Invalid { reason } => Step::Stop(StopKind::Invalid { reason }),
                Decoded::Incomplete if available >= remaining => Step::Stop(StopKind::Incomplete),
                Decoded::Incomplete => match check_frame_header(bytes, self.payload_bytes_max) {
                    // The length passed its checks, so this read is bounded by the payload
                    // limit and by the bytes left in the file.
                    Some(Ok(frame_bytes)) if frame_bytes > available => {
                        Step::Need(frame_bytes.min(remaining))
                    }
                    _ => Step::Stop(StopKind::Incomplete),
                },
            };
            match step {
                Step::Need(bytes) => {
                    self.ensure_window(offset, bytes)?;
                    available = bytes;
                }
                Step::Stop(kind) => return Ok(self.stop_at(offset, kind)),
                Step::Frame {
                    frame_bytes,
                    record_type,
                    lsn,
                    version,
                } => {
                    self.position = offset + to_u64(frame_bytes);
                    let start = self.window_index(offset);
                    let body = self
                        .window
                        .get(start + FRAME_BODY_OFFSET..start + frame_bytes - FRAME_TRAILER_BYTES)
                        .unwrap_or(&[]);
                    let frame = FrameRef {
                        record_type,
                        lsn,
                        version,
                        body,
                    };
                    return Ok(Some((offset, frame)));
                }
            }
        }
    }

    /// True when the bytes at `offset` start the frame with LSN `lsn`, intact or damaged: its
    /// LSN field says `lsn`, or the frame checks once `lsn` is written into that field (a
    /// damaged LSN field). Does not move the reader.
    pub(crate) fn holds_frame_with_lsn(&mut self, offset: u64, lsn: u64) -> Result<bool, LogError> {
        let remaining = to_usize(self.file_bytes.saturating_sub(offset));
        let prefix = remaining.min(FRAME_HEADER_BYTES + 8);
        if prefix < FRAME_HEADER_BYTES + 8 {
            return Ok(false);
        }
        self.ensure_window(offset, prefix)?;
        let bytes = self.window_slice(offset, prefix);
        if bytes.get(FRAME_HEADER_BYTES..) == Some(&lsn.to_le_bytes()[..]) {
            return Ok(true);
        }
        let frame_bytes = match check_frame_header(bytes, self.payload_bytes_max) {
            Some(Ok(frame_bytes)) if frame_bytes <= remaining => frame_bytes,
            _ => return Ok(false),
        };
        self.ensure_window(offset, frame_bytes)?;
        let mut repaired = self.window_slice(offset, frame_bytes).to_vec();
        if let Some(field) = repaired.get_mut(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + 8) {
            field.copy_from_slice(&lsn.to_le_bytes());
        }
        Ok(matches!(
            decode_frame(&repaired, self.payload_bytes_max),
            Decoded::Frame { .. }
        ))
    }

    /// Scans everything after the stop for the first valid frame with an LSN above
    /// `lsn_floor`, and for the extent of non-zero bytes. Does not move the reader.
    pub fn scan_tail(&mut self, lsn_floor: u64) -> Result<TailScan, LogError> {
        let Some(stop) = self.stop else {
            return Ok(TailScan::default());
        };
        let end = self.file_bytes;
        let mut scan = TailScan::default();
        let mut chunk_start = stop.offset;
        let mut skip_until = 0_u64;
        while chunk_start < end {
            let left = to_usize(end - chunk_start);
            let chunk_bytes = left.min(READ_CHUNK_BYTES);
            // A little more than the chunk, so that headers straddling its end are seen.
            let look_bytes = left.min(READ_CHUNK_BYTES + FRAME_HEADER_BYTES);
            self.ensure_window(chunk_start, look_bytes)?;
            let start = self.window_index(chunk_start);
            let window = self.window.get(start..start + look_bytes).unwrap_or(&[]);
            if window.iter().fold(0_u8, |any, &byte| any | byte) == 0 {
                chunk_start += to_u64(chunk_bytes);
                continue;
            }
            let chunk = window.get(..chunk_bytes).unwrap_or(&[]);
            if let Some(last) = chunk.iter().rposition(|&byte| byte != 0) {
                scan.nonzero_end = Some(chunk_start + to_u64(last) + 1);
            }
            for index in 0..chunk_bytes {
                let candidate = chunk_start + to_u64(index);
                if candidate <= stop.offset || candidate < skip_until {
                    continue;
                }
                let Some(header) = window.get(index..index + FRAME_HEADER_BYTES) else {
                    break;
                };
                // Prefilter: a frame has a non-zero type and the current format version.
                if header
                    .get(FRAME_RECORD_TYPE_OFFSET)
                    .is_none_or(|&kind| kind == 0)
                    || header.get(FRAME_FORMAT_VERSION_OFFSET) != Some(&FRAME_FORMAT_VERSION)
                {
                    continue;
                }
                let Some(Ok(frame_bytes)) = check_frame_header(header, self.payload_bytes_max)
                else {
                    continue;
                };
                if to_u64(frame_bytes) > end - candidate {
                    continue;
                }
                let bytes = if let Some(bytes) = window.get(index..index + frame_bytes) {
                    bytes
                } else {
                    self.scratch.clear();
                    self.scratch.resize(frame_bytes, 0);
                    read_exact_at(self.file.as_ref(), &mut self.scratch, candidate)
                        .map_err(|error| LogError::io("read segment", &self.path, error))?;
                    self.bytes_read += to_u64(frame_bytes);
                    &self.scratch[..]
                };
                if let Decoded::Frame { frame, .. } = decode_frame(bytes, self.payload_bytes_max) {
                    if frame.lsn > lsn_floor {
                        scan.next_frame = Some((candidate, frame.lsn));
                        return Ok(scan);
                    }
                    // An intact frame: no later write touched its bytes, so no frame starts
                    // inside it. Hopping over it keeps the scan of a recycled segment's stale
                    // frames at one checksum per frame instead of a candidate per byte.
                    skip_until = candidate + to_u64(frame_bytes);
                }
            }
            chunk_start += to_u64(chunk_bytes);
        }
        Ok(scan)
    }

    /// Records a stop and returns `None` for [`SegmentReader::next`].
    fn stop_at<T>(&mut self, offset: u64, kind: StopKind) -> Option<T> {
        self.position = offset;
        self.stop = Some(FrameStop { offset, kind });
        None
    }

    /// Index of file offset `offset` in the window (saturating; callers ensured it first).
    fn window_index(&self, offset: u64) -> usize {
        to_usize(offset.saturating_sub(self.window_offset))
    }

    /// Window bytes available from file offset `offset` on.
    fn window_bytes_from(&self, offset: u64) -> usize {
        self.window.len().saturating_sub(self.window_index(offset))
    }

    /// `bytes` window bytes from file offset `offset` (empty if not loaded; callers ensure).
    fn window_slice(&self, offset: u64, bytes: usize) -> &[u8] {
        let start = self.window_index(offset);
        self.window
            .get(start..start.saturating_add(bytes))
            .unwrap_or(&[])
    }

    /// Makes the window cover file bytes `[offset, offset + bytes)`, reading at least
    /// [`READ_CHUNK_BYTES`] (or up to the end of the file) when it has to read. Callers pass
    /// `offset + bytes <= file_bytes`.
    fn ensure_window(&mut self, offset: u64, bytes: usize) -> Result<(), LogError> {
        let window_end = self.window_offset + to_u64(self.window.len());
        let end = offset.saturating_add(to_u64(bytes));
        if offset >= self.window_offset && end <= window_end {
            return Ok(());
        }
        if offset >= self.window_offset && offset <= window_end {
            let keep_from = to_usize(offset - self.window_offset);
            self.window.drain(..keep_from);
        } else {
            self.window.clear();
        }
        self.window_offset = offset;
        let file_left = to_usize(self.file_bytes.saturating_sub(offset));
        let target = bytes.max(READ_CHUNK_BYTES).min(file_left);
        let have = self.window.len();
        if target > have {
            self.window.resize(target, 0);
            #[expect(
                clippy::indexing_slicing,
                reason = "the window was just resized past `have`"
            )]
            let read = read_exact_at(
                self.file.as_ref(),
                &mut self.window[have..],
                offset + to_u64(have),
            );
            if let Err(error) = read {
                self.window.truncate(have);
                return Err(LogError::io("read segment", &self.path, error));
            }
            self.bytes_read += to_u64(target - have);
        }
        Ok(())
    }
}

/// A torn tail that recovery cut off (or that verification found): the bytes after the last
/// good frame of the last segment, which a crash left half-written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub file: PathBuf,
    /// Offset of the first byte after the last good frame; the file is cut here.
    pub offset: u64,
    /// Non-zero bytes from `offset` on (the half-written frames).
    pub bytes_dropped: u64,
}

/// A damaged part of the log that `RecoveryMode::Salvage` set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The file (cut at `offset`, or renamed to `*.wal.damaged` when `offset` is 0).
    pub file: PathBuf,
    /// Where the dropped part starts.
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
    /// Valid frames discarded after the damage in this file.
    pub frames_after: u64,
}

/// Where a damaged log goes wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The damaged file.
    pub file: PathBuf,
    /// Byte offset of the damage.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// One segment as verification (or recovery) saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSegment {
    /// The file, its header and length.
    pub info: SegmentInfo,
    /// LSN of the last valid frame, `None` if the segment holds none.
    pub last_lsn: Option<u64>,
    /// Valid frames read.
    pub frames: u64,
    /// Offset just past the last valid frame (the header size if none).
    pub frames_end: u64,
}

/// A segment whose header checks but names another database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignSegment {
    /// The file.
    pub file: PathBuf,
    /// The database its header names.
    pub database_id: DatabaseId,
}

/// What [`verify_dir`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segments that belong to another database: left out of the scan; `Log::open` refuses
    /// the directory while they are there.
    pub foreign: Vec<ForeignSegment>,
    /// Segments read, in LSN order, up to the corruption if there is one.
    pub segments: Vec<VerifiedSegment>,
    /// Segment files not read because they follow the corruption.
    pub segments_unchecked: Vec<PathBuf>,
    /// Valid frames in `segments`.
    pub frames: u64,
    /// Valid frames with an LSN above `after_lsn`, i.e. what a recovery would replay.
    pub frames_after_lsn: u64,
    /// The last valid LSN, `None` if the log holds no frame.
    pub last_lsn: Option<u64>,
    /// The torn tail a recovery would cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// The first corruption, if any; a recovery in `RecoveryMode::Strict` would fail here.
    pub corruption: Option<Corruption>,
    /// Bytes read.
    pub bytes_read: u64,
}

/// Checks every segment of `dir` the way `Log::open` would with `after_lsn`, without modifying
/// anything. With `database_id`, a segment naming another database is listed in
/// [`VerifyReport::foreign`] and left out of the scan; with `None`, every id is accepted.
/// `progress(bytes_done, bytes_total)` is called as segments are read. Damage is reported in
/// the result; only I/O failures are errors.
pub fn verify_dir(
    fs: &dyn FileSystem,
    dir: &Path,
    after_lsn: u64,
    database_id: Option<DatabaseId>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LogError> {
    let settings = ScanSettings {
        database_id,
        after_lsn,
        payload_bytes_max: FRAME_PAYLOAD_BYTES_MAX,
        crc_failure_is_torn_tail: false,
        count_dropped: false,
        skip_covered_segments: false,
    };
    let scan = scan_log(fs, dir, &settings, &mut |_| Ok(()), progress)?;
    let kept = scan.kept.len();
    Ok(VerifyReport {
        foreign: scan.foreign,
        frames: scan.kept.iter().map(|segment| segment.frames).sum(),
        frames_after_lsn: scan.frames_replayed,
        last_lsn: scan.last_frame.map(|(lsn, _)| lsn),
        segments: scan.kept,
        segments_unchecked: scan
            .listed
            .iter()
            .skip(kept)
            .filter(|listed| {
                scan.damage
                    .as_ref()
                    .is_none_or(|damage| damage.file != listed.path)
            })
            .map(|listed| listed.path.clone())
            .collect(),
        torn_tail: scan.torn_tail,
        corruption: scan.damage.map(|damage| Corruption {
            file: damage.file,
            offset: damage.offset,
            reason: damage.reason,
        }),
        bytes_read: scan.bytes_read,
    })
}

/// How [`scan_log`] runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanSettings {
    /// The database every segment must belong to; `None` accepts any.
    pub database_id: Option<DatabaseId>,
    /// Frames with an LSN at or below this are checked but not applied.
    pub after_lsn: u64,
    /// Largest accepted frame payload.
    pub payload_bytes_max: usize,
    /// Sabotage: any invalid frame is the clean end of the log.
    pub crc_failure_is_torn_tail: bool,
    /// Count what a salvage would drop (reads the damaged part and every later segment).
    pub count_dropped: bool,
    /// Leave unread every segment wholly at or below `after_lsn` (see
    /// `LogOptions::skip_covered_segments`).
    pub skip_covered_segments: bool,
}

/// Where the log goes wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Index in `LogScan::listed`.
    pub segment_index: usize,
    /// The damaged file.
    pub file: PathBuf,
    /// Offset of the damage; 0 when the whole segment is unusable (header, LSN gap).
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

/// The outcome of reading a whole log directory.
#[derive(Debug, Default)]
pub(crate) struct LogScan {
    /// Segments of another database, left out of `listed`.
    pub foreign: Vec<ForeignSegment>,
    /// Every segment file found, in LSN order, foreign ones excepted.
    pub listed: Vec<ListedSegment>,
    /// The segments that remain part of the log: a prefix of `listed`. The last one may end
    /// in a torn tail or (only with `damage`) be cut at the damage.
    pub kept: Vec<VerifiedSegment>,
    /// Frames applied (LSN above `after_lsn`).
    pub frames_replayed: u64,
    /// Frames checked but skipped (LSN at or below `after_lsn`).
    pub frames_skipped: u64,
    /// LSN and version of the last valid frame.
    pub last_frame: Option<(u64, u64)>,
    /// The torn tail of the last kept segment.
    pub torn_tail: Option<TornTail>,
    /// The first damage; `listed[kept.len()..]` are the files after it.
    pub damage: Option<Damage>,
    /// What a salvage drops (only with `count_dropped`).
    pub dropped: Vec<Dropped>,
    /// Bytes read from segment files.
    pub bytes_read: u64,
}

/// How one segment ended.
enum SegmentEnd {
    /// Frames, then only zeros (or the end of the file).
    Clean,
    /// Non-zero bytes after the last frame of the last segment, with no valid frame after.
    Torn(TornTail),
    /// Damage at an offset inside the segment.
    Damaged {
        offset: u64,
        reason: String,
        frames_after: u64,
    },
    /// Sabotage: an invalid frame taken as the end of the log.
    SabotageEnd(TornTail),
}

/// Reads the whole log in `dir`: applies frames above `after_lsn` in LSN order and classifies
/// how it ends. Never modifies a file. Damage is returned in the scan, not as an error; an
/// error from `apply` becomes [`LogError::Replay`].
pub(crate) fn scan_log(
    fs: &dyn FileSystem,
    dir: &Path,
    settings: &ScanSettings,
    apply: &mut dyn FnMut(&FrameRef<'_>) -> Result<(), String>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<LogScan, LogError> {
    let mut scan = LogScan::default();
    let mut listed = list_segment_files(fs, dir)?;
    if let Some(expected) = settings.database_id {
        listed.retain(|entry| match &entry.info {
            Ok(info) if info.database_id != expected => {
                scan.foreign.push(ForeignSegment {
                    file: entry.path.clone(),
                    database_id: info.database_id,
                });
                false
            }
            _ => true,
        });
    }
    let bytes_total: u64 = listed.iter().map(|segment| segment.file_bytes).sum();
    let mut previous_last_lsn = 0_u64;
    let mut previous_number: Option<u64> = None;
    for (index, entry) in listed.iter().enumerate() {
        let damage = |offset: u64, reason: String| Damage {
            segment_index: index,
            file: entry.path.clone(),
            offset,
            reason,
        };
        let info = match &entry.info {
            Ok(info) => info.clone(),
            Err(reason) => {
                scan.damage = Some(damage(0, format!("bad segment header: {reason}")));
                break;
            }
        };
        if let Some(reason) = check_segment_order(
            &info,
            previous_number,
            previous_last_lsn,
            settings.after_lsn,
        ) {
            scan.damage = Some(damage(0, reason));
            break;
        }
        if let Some(skipped) = skip_covered(settings, &info, listed.get(index + 1), entry) {
            scan.frames_skipped += skipped.frames;
            previous_number = Some(info.segment_number);
            previous_last_lsn = skipped.last_lsn.unwrap_or(info.first_lsn - 1);
            scan.kept.push(skipped);
            continue;
        }
        let is_last = index + 1 == listed.len();
        let (segment, end) = scan_segment(fs, info, is_last, settings, apply, &mut scan)?;
        progress(scan.bytes_read.min(bytes_total), bytes_total);
        previous_number = Some(segment.info.segment_number);
        previous_last_lsn = segment.last_lsn.unwrap_or(segment.info.first_lsn - 1);
        let frames_end = segment.frames_end;
        scan.kept.push(segment);
        match end {
            SegmentEnd::Clean => {}
            SegmentEnd::Torn(torn) => scan.torn_tail = Some(torn),
            SegmentEnd::SabotageEnd(torn) => {
                scan.torn_tail = Some(torn);
                break;
            }
            SegmentEnd::Damaged {
                offset,
                reason,
                frames_after,
            } => {
                debug_assert!(offset >= frames_end);
                if settings.count_dropped {
                    scan.dropped.push(Dropped {
                        file: entry.path.clone(),
                        offset,
                        reason: reason.clone(),
                        frames_after,
                    });
                }
                scan.damage = Some(damage(offset, reason));
                break;
            }
        }
    }
    if settings.count_dropped {
        count_dropped_segments(fs, settings, &listed, &mut scan)?;
    }
    progress(bytes_total, bytes_total);
    scan.listed = listed;
    Ok(scan)
}

/// The segment `info` as tail-only recovery leaves it, unread, when the segment after it
/// (`next`) starts at or below `after_lsn + 1`: it then holds exactly the frames
/// `info.first_lsn..next.first_lsn`, all covered. `None` when it must be read.
fn skip_covered(
    settings: &ScanSettings,
    info: &SegmentInfo,
    next: Option<&ListedSegment>,
    entry: &ListedSegment,
) -> Option<VerifiedSegment> {
    if !settings.skip_covered_segments {
        return None;
    }
    let next_first_lsn = next?.info.as_ref().ok()?.first_lsn;
    if next_first_lsn <= info.first_lsn || next_first_lsn > settings.after_lsn.saturating_add(1) {
        return None;
    }
    let frames = next_first_lsn - info.first_lsn;
    Some(VerifiedSegment {
        info: info.clone(),
        last_lsn: Some(next_first_lsn - 1),
        frames,
        // Unread: the file's length stands in for the end of its frames.
        frames_end: entry.file_bytes.max(SEGMENT_HEADER_BYTES),
    })
}

/// Checks where a segment sits in the log; `Some(reason)` if it cannot follow what was read.
fn check_segment_order(
    info: &SegmentInfo,
    previous_number: Option<u64>,
    previous_last_lsn: u64,
    after_lsn: u64,
) -> Option<String> {
    if let Some(previous) = previous_number {
        if info.segment_number <= previous {
            return Some(format!(
                "segment number {} does not follow segment number {previous}",
                info.segment_number
            ));
        }
    }
    if info.first_lsn <= previous_last_lsn {
        return Some(format!(
            "segment starts at LSN {} but the log before it already reaches LSN {previous_last_lsn}",
            info.first_lsn
        ));
    }
    // LSNs at or below `after_lsn` are covered by the caller's snapshot, so a gap made only of
    // them loses nothing.
    let ceiling = previous_last_lsn.max(after_lsn).saturating_add(1);
    if info.first_lsn > ceiling {
        return Some(format!(
            "frames missing: the log before this segment ends at LSN {previous_last_lsn} \
             (snapshot covers through {after_lsn}) but the segment starts at LSN {}",
            info.first_lsn
        ));
    }
    None
}

/// Reads one segment, applying its frames, and classifies its end.
fn scan_segment(
    fs: &dyn FileSystem,
    info: SegmentInfo,
    is_last: bool,
    settings: &ScanSettings,
    apply: &mut dyn FnMut(&FrameRef<'_>) -> Result<(), String>,
    scan: &mut LogScan,
) -> Result<(VerifiedSegment, SegmentEnd), LogError> {
    let mut reader = SegmentReader::open(fs, &info, settings.payload_bytes_max)?;
    let mut segment = VerifiedSegment {
        frames_end: SEGMENT_HEADER_BYTES,
        last_lsn: None,
        frames: 0,
        info,
    };
    let mut expected_lsn = segment.info.first_lsn;
    let recycled = segment.info.recycled;
    let mut wrong_lsn = None;
    let mut stale_at = None;
    while let Some((offset, frame)) = reader.next()? {
        if recycled && frame.lsn < segment.info.first_lsn {
            // A frame of the file's previous life: the end of this one.
            stale_at = Some(offset);
            break;
        }
        if frame.lsn != expected_lsn {
            wrong_lsn = Some((offset, frame.lsn));
            break;
        }
        if frame.lsn > settings.after_lsn {
            apply(&frame).map_err(LogError::Replay)?;
            scan.frames_replayed += 1;
        } else {
            scan.frames_skipped += 1;
        }
        scan.last_frame = Some((frame.lsn, frame.version));
        segment.last_lsn = Some(frame.lsn);
        segment.frames += 1;
        segment.frames_end = reader.position();
        expected_lsn += 1;
    }
    // Frames at or below this are not the segment's own (the previous life of a recycled one).
    let stale_floor = if recycled {
        segment.info.first_lsn - 1
    } else {
        0
    };
    let end = if let Some((offset, lsn)) = wrong_lsn {
        let frames_after =
            count_frames_from(&mut reader, offset, stale_floor, settings.count_dropped)?;
        SegmentEnd::Damaged {
            offset,
            reason: format!("frame carries LSN {lsn} where LSN {expected_lsn} was expected"),
            frames_after,
        }
    } else if recycled {
        classify_recycled_end(&mut reader, is_last, expected_lsn - 1, stale_at, settings)?
    } else {
        classify_stop(&mut reader, is_last, expected_lsn - 1, settings)?
    };
    scan.bytes_read += reader.bytes_read();
    Ok((segment, end))
}

/// Classifies why `reader` stopped; `last_lsn` is the LSN of its last good frame (or the one
/// before the segment's first).
fn classify_stop(
    reader: &mut SegmentReader,
    is_last: bool,
    last_lsn: u64,
    settings: &ScanSettings,
) -> Result<SegmentEnd, LogError> {
    let Some(stop) = reader.stop() else {
        return Ok(SegmentEnd::Clean);
    };
    let path = reader.path().to_path_buf();
    let torn = |bytes_dropped: u64| TornTail {
        file: path.clone(),
        offset: stop.offset,
        bytes_dropped,
    };
    match stop.kind {
        // Zeros are the unused, preallocated rest of a segment: its normal end.
        StopKind::EndOfFile | StopKind::Zeros => return Ok(SegmentEnd::Clean),
        StopKind::Incomplete | StopKind::Invalid { .. } if settings.crc_failure_is_torn_tail => {
            let dropped = reader.file_bytes() - stop.offset;
            return Ok(SegmentEnd::SabotageEnd(torn(dropped)));
        }
        _ => {}
    }
    let tail = reader.scan_tail(last_lsn)?;
    if let Some((next_offset, next_lsn)) = tail.next_frame {
        let frames_after = count_frames_from(reader, next_offset, 0, settings.count_dropped)?;
        return Ok(SegmentEnd::Damaged {
            offset: stop.offset,
            reason: format!(
                "{} at offset {}, yet a valid frame (LSN {next_lsn}) follows at offset {next_offset}",
                stop.describe(),
                stop.offset
            ),
            frames_after,
        });
    }
    let Some(nonzero_end) = tail.nonzero_end else {
        return Ok(SegmentEnd::Clean);
    };
    if is_last {
        return Ok(SegmentEnd::Torn(torn(nonzero_end - stop.offset)));
    }
    Ok(SegmentEnd::Damaged {
        offset: stop.offset,
        reason: format!(
            "{} at offset {} in a segment that is not the last (it was synced whole before the \
             next one was created)",
            stop.describe(),
            stop.offset
        ),
        frames_after: 0,
    })
}

/// Ends a recycled segment at its first byte that is not the next frame (`stale_at`: the
/// offset of a valid frame of the previous life that stopped the reader). Only the last
/// segment is scanned further, for a valid frame above `last_lsn`, which would be damage; any
/// other segment's end is checked by the next segment's first LSN.
fn classify_recycled_end(
    reader: &mut SegmentReader,
    is_last: bool,
    last_lsn: u64,
    stale_at: Option<u64>,
    settings: &ScanSettings,
) -> Result<SegmentEnd, LogError> {
    if stale_at.is_some() {
        // The previous life starts right after the own frames: a clean end.
        return Ok(SegmentEnd::Clean);
    }
    let Some(stop) = reader.stop() else {
        return Ok(SegmentEnd::Clean);
    };
    if !is_last || matches!(stop.kind, StopKind::EndOfFile | StopKind::Zeros) {
        return Ok(SegmentEnd::Clean);
    }
    if settings.crc_failure_is_torn_tail {
        let dropped = reader.file_bytes() - stop.offset;
        return Ok(SegmentEnd::SabotageEnd(TornTail {
            file: reader.path().to_path_buf(),
            offset: stop.offset,
            bytes_dropped: dropped,
        }));
    }
    // Bytes that are not this segment's next frame are what the file held before, left
    // there because the write that would have replaced them did not reach the disk: the end,
    // as zeros are in a new segment. Only this segment's own next frame, damaged or torn, is
    // looked past.
    if !reader.holds_frame_with_lsn(stop.offset, last_lsn.saturating_add(1))? {
        return Ok(SegmentEnd::Clean);
    }
    let tail = reader.scan_tail(last_lsn)?;
    let Some((next_offset, next_lsn)) = tail.next_frame else {
        return Ok(SegmentEnd::Clean);
    };
    let frames_after = count_frames_from(reader, next_offset, last_lsn, settings.count_dropped)?;
    Ok(SegmentEnd::Damaged {
        offset: stop.offset,
        reason: format!(
            "{} at offset {} of a recycled segment, yet a valid frame (LSN {next_lsn}) follows \
             at offset {next_offset}",
            stop.describe(),
            stop.offset
        ),
        frames_after,
    })
}

/// Counts the valid frames with an LSN above `lsn_floor` from `offset` to the end of the
/// reader's file, skipping damage (only when `enabled`; otherwise 0).
fn count_frames_from(
    reader: &mut SegmentReader,
    offset: u64,
    lsn_floor: u64,
    enabled: bool,
) -> Result<u64, LogError> {
    if !enabled {
        return Ok(0);
    }
    let mut frames = 0;
    reader.seek(offset);
    loop {
        while let Some((_, frame)) = reader.next()? {
            if frame.lsn > lsn_floor {
                frames += 1;
            }
        }
        match reader.scan_tail(lsn_floor)?.next_frame {
            // Strictly after the stop, so this terminates.
            Some((next_offset, _)) => reader.seek(next_offset),
            None => return Ok(frames),
        }
    }
}

/// Adds a [`Dropped`] for every segment file after the damage (including the damaged one when
/// it is unusable as a whole).
fn count_dropped_segments(
    fs: &dyn FileSystem,
    settings: &ScanSettings,
    listed: &[ListedSegment],
    scan: &mut LogScan,
) -> Result<(), LogError> {
    let Some(damage) = scan.damage.clone() else {
        return Ok(());
    };
    for entry in listed.iter().skip(damage.segment_index) {
        let is_damaged = entry.path == damage.file;
        if is_damaged && damage.offset > 0 {
            continue; // Reported with the frames after the damage by `scan_segment`.
        }
        let mut reader = SegmentReader::open_path(fs, &entry.path, settings.payload_bytes_max)?;
        // A recycled segment's previous life is not among what it drops.
        let floor = match &entry.info {
            Ok(info) if info.recycled => info.first_lsn - 1,
            _ => 0,
        };
        let frames_after = count_frames_from(&mut reader, SEGMENT_HEADER_BYTES, floor, true)?;
        scan.bytes_read += reader.bytes_read();
        scan.dropped.push(Dropped {
            file: entry.path.clone(),
            offset: 0,
            reason: if is_damaged {
                damage.reason.clone()
            } else {
                format!(
                    "follows the damage in {} at offset {}",
                    damage.file.display(),
                    damage.offset
                )
            },
            frames_after,
        });
    }
    Ok(())
}

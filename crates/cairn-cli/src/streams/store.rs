//! Reading a stream store's files without opening it: the identity file, each stream
//! directory's `STREAM` and `GROUPS` files, its segment files, and a frame scan of one segment.
//!
//! Everything follows the on-disk format of `docs/streams.md` through `cairn_log`'s public
//! decoders (`stream::codec`, `stream::groups`, `segment`, `reader`); nothing is written,
//! renamed or removed, and no lock is taken (the lock is only probed, see
//! [`crate::inspect::layout::probe_lock`]). A file longer than its format allows is refused
//! before it is read, so memory stays bounded whatever the directory holds. What is damaged is
//! returned as a [`Problem`] naming the file and byte offset; only a directory or file that
//! cannot be read at all is an error.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use cairn_log::format::{FRAME_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_LEN};
use cairn_log::fs::{read_exact_at, FileSystem as _, OpenMode, StdFileSystem};
use cairn_log::reader::{SegmentReader, StopKind};
use cairn_log::segment::{parse_segment_file_name, SegmentHeader, SegmentInfo};
use cairn_log::stream::codec::{
    batch_header, decode_identity, StreamMeta, IDENTITY_FILE_BYTES, META_FIXED_BYTES,
    META_TRAILER_BYTES,
};
use cairn_log::stream::groups::GROUPS_FILE_BYTES_MAX;
use cairn_log::stream::{GroupsFile, STREAM_NAME_BYTES_MAX};
use cairn_log::DatabaseId;

use crate::inspect::layout::{probe_lock, saturating_sum, LockState, LOCK_FILE_NAME};

/// The store identity file in the store directory.
pub const IDENTITY_FILE: &str = "STREAMS";
/// The metadata file in a stream directory.
pub const META_FILE: &str = "STREAM";
/// The consumer groups file in a stream directory.
pub const GROUPS_FILE: &str = "GROUPS";
/// The metadata file of a stream whose deletion a crash interrupted.
pub const DOOMED_META_FILE: &str = "STREAM.deleted";
/// Suffix of a small file being written before its rename into place.
pub const TEMP_SUFFIX: &str = ".tmp";
/// Digits of a stream directory's name (its zero-padded numeric id).
const STREAM_DIR_DIGITS: usize = 20;
/// The record type of every stream frame: one batch.
pub const STREAM_BATCH_RECORD_TYPE: u8 = 1;
/// The largest `STREAM` file: fixed part, longest name, CRC.
const META_FILE_BYTES_MAX: usize = META_FIXED_BYTES + STREAM_NAME_BYTES_MAX + META_TRAILER_BYTES;

/// Something damaged: which file, where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The byte offset in it.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl Problem {
    /// A problem in `file` at byte `offset`.
    pub fn new(file: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Problem {
            file: file.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }
}

/// The stream id a directory name carries, if it is exactly 20 digits.
pub fn parse_stream_dir_name(name: &str) -> Option<u64> {
    if name.len() != STREAM_DIR_DIGITS || !name.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// True when `dir` looks like a stream store: it holds a `STREAMS` file, or a stream directory
/// with a `STREAM` file (a store whose identity file is missing, which `verify` reports).
pub fn is_stream_store(dir: &Path) -> bool {
    if dir.join(IDENTITY_FILE).is_file() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        entry
            .file_name()
            .to_str()
            .and_then(parse_stream_dir_name)
            .is_some()
            && entry.path().join(META_FILE).is_file()
    })
}

/// What a stream directory is, by the names it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirState {
    /// It holds `STREAM`: a stream.
    Live,
    /// It holds `STREAM.deleted`: a deletion a crash interrupted, finished at the next open.
    Deleting,
    /// It holds no `STREAM`: a creation a crash interrupted, removed at the next open.
    Incomplete,
}

impl DirState {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            DirState::Live => "live",
            DirState::Deleting => "deleting",
            DirState::Incomplete => "incomplete",
        }
    }
}

/// A stream directory of the store.
#[derive(Clone, Debug)]
pub struct StreamDir {
    /// The id its name carries.
    pub id: u64,
    /// The directory.
    pub path: PathBuf,
    /// Its name (20 digits).
    pub name: String,
    /// What it is.
    pub state: DirState,
    /// The names of its entries, sorted.
    pub entries: Vec<String>,
    /// Bytes of its files.
    pub bytes: u64,
}

/// Any other entry of the store directory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OtherEntry {
    /// The name (lossy if it is not UTF-8).
    pub name: String,
    /// Its size (0 for a directory).
    pub bytes: u64,
    /// What it is.
    pub kind: &'static str,
}

/// The store directory as listed.
#[derive(Debug)]
pub struct StoreDir {
    /// The directory.
    pub dir: PathBuf,
    /// The lock probe.
    pub lock: LockState,
    /// The store identity: `None` when the file is missing.
    pub identity: Option<Result<DatabaseId, Problem>>,
    /// The stream directories, by id.
    pub streams: Vec<StreamDir>,
    /// Everything else, by name.
    pub others: Vec<OtherEntry>,
}

impl StoreDir {
    /// Lists the store in `dir` and reads its identity file. Fails if the directory cannot be
    /// listed, or holds neither a `STREAMS` file nor a stream directory.
    pub fn list(dir: &Path) -> Result<StoreDir> {
        let metadata = std::fs::metadata(dir)
            .with_context(|| format!("cannot read the stream store {}", dir.display()))?;
        if !metadata.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list the stream store {}", dir.display()))?;
        let mut store = StoreDir {
            dir: dir.to_path_buf(),
            lock: LockState::NoLockFile,
            identity: None,
            streams: Vec::new(),
            others: Vec::new(),
        };
        let mut has_identity = false;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list the stream store {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let metadata = std::fs::metadata(&path).ok();
            let is_dir = metadata.as_ref().is_some_and(std::fs::Metadata::is_dir);
            let bytes = metadata
                .as_ref()
                .filter(|metadata| metadata.is_file())
                .map_or(0, std::fs::Metadata::len);
            if let Some(id) = parse_stream_dir_name(&name).filter(|_| is_dir) {
                store.streams.push(list_stream_dir(id, path, name)?);
                continue;
            }
            let kind = if name == IDENTITY_FILE && !is_dir {
                has_identity = true;
                "store identity file"
            } else if name == LOCK_FILE_NAME && !is_dir {
                "lock file"
            } else if name == format!("{IDENTITY_FILE}{TEMP_SUFFIX}") {
                "interrupted identity file creation (removed at the next open)"
            } else if is_dir {
                "directory (not a stream directory)"
            } else {
                "not a stream store file (ignored)"
            };
            store.others.push(OtherEntry { name, bytes, kind });
        }
        store.streams.sort_by_key(|stream| stream.id);
        store
            .others
            .sort_by(|left, right| left.name.cmp(&right.name));
        if !has_identity && store.streams.is_empty() {
            bail!(
                "{} is not a stream store (no {IDENTITY_FILE} file and no stream directory)",
                dir.display()
            );
        }
        if has_identity {
            store.identity = Some(read_identity(&dir.join(IDENTITY_FILE))?);
        }
        if store
            .others
            .iter()
            .any(|other| other.name == LOCK_FILE_NAME)
        {
            store.lock = probe_lock(&dir.join(LOCK_FILE_NAME));
        }
        Ok(store)
    }

    /// The store's database id, if its identity file decoded.
    pub fn database_id(&self) -> Option<DatabaseId> {
        match &self.identity {
            Some(Ok(id)) => Some(*id),
            _ => None,
        }
    }

    /// A path relative to the store directory, for reports.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn list_stream_dir(id: u64, path: PathBuf, name: String) -> Result<StreamDir> {
    let mut entries = Vec::new();
    let mut sizes = Vec::new();
    let listing = std::fs::read_dir(&path)
        .with_context(|| format!("cannot list the stream directory {}", path.display()))?;
    for entry in listing {
        let entry = entry
            .with_context(|| format!("cannot list the stream directory {}", path.display()))?;
        entries.push(entry.file_name().to_string_lossy().into_owned());
        sizes.push(
            std::fs::metadata(entry.path())
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map_or(0, |metadata| metadata.len()),
        );
    }
    entries.sort();
    let has = |wanted: &str| entries.iter().any(|entry| entry == wanted);
    let state = if has(DOOMED_META_FILE) {
        DirState::Deleting
    } else if has(META_FILE) {
        DirState::Live
    } else {
        DirState::Incomplete
    };
    Ok(StreamDir {
        id,
        path,
        name,
        state,
        entries,
        bytes: saturating_sum(sizes.into_iter()),
    })
}

/// Reads a small file whole, refusing it (as a [`Problem`]) when it is longer than
/// `max_bytes`, before reading it. I/O errors are errors.
fn read_small(path: &Path, max_bytes: usize) -> Result<Result<Vec<u8>, Problem>> {
    let file = StdFileSystem
        .open(path, OpenMode::Read)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = file
        .len()
        .with_context(|| format!("cannot read the length of {}", path.display()))?;
    if len > u64::try_from(max_bytes).unwrap_or(u64::MAX) {
        return Ok(Err(Problem::new(
            path,
            0,
            format!("{len} bytes, longer than the format allows ({max_bytes})"),
        )));
    }
    let mut bytes = vec![0_u8; usize::try_from(len).unwrap_or(max_bytes)];
    read_exact_at(file.as_ref(), &mut bytes, 0)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Ok(bytes))
}

fn read_identity(path: &Path) -> Result<Result<DatabaseId, Problem>> {
    Ok(read_small(path, IDENTITY_FILE_BYTES)?.and_then(|bytes| {
        decode_identity(&bytes).map_err(|(offset, reason)| Problem::new(path, offset, reason))
    }))
}

/// Reads and checks a stream directory's `STREAM` file: it decodes, names the directory's id,
/// and (when `database_id` is known) the store's identity.
pub fn read_meta(
    stream: &StreamDir,
    database_id: Option<DatabaseId>,
) -> Result<Result<StreamMeta, Problem>> {
    let path = stream.path.join(META_FILE);
    let bytes = match read_small(&path, META_FILE_BYTES_MAX)? {
        Ok(bytes) => bytes,
        Err(problem) => return Ok(Err(problem)),
    };
    let meta = match StreamMeta::decode(&bytes) {
        Ok(meta) => meta,
        Err((offset, reason)) => return Ok(Err(Problem::new(&path, offset, reason))),
    };
    if meta.stream_id != stream.id {
        return Ok(Err(Problem::new(
            &path,
            32,
            format!(
                "names stream id {} in directory {}",
                meta.stream_id, stream.id
            ),
        )));
    }
    if let Some(expected) = database_id.filter(|&expected| expected != meta.database_id) {
        return Ok(Err(Problem::new(
            &path,
            16,
            format!(
                "belongs to database {} but the store is {expected}",
                meta.database_id
            ),
        )));
    }
    Ok(Ok(meta))
}

/// Reads and checks a stream directory's `GROUPS` file, if there is one.
pub fn read_groups(
    stream: &StreamDir,
    meta: &StreamMeta,
) -> Result<Result<Option<GroupsFile>, Problem>> {
    if !stream.entries.iter().any(|entry| entry == GROUPS_FILE) {
        return Ok(Ok(None));
    }
    let path = stream.path.join(GROUPS_FILE);
    let bytes = match read_small(&path, GROUPS_FILE_BYTES_MAX)? {
        Ok(bytes) => bytes,
        Err(problem) => return Ok(Err(problem)),
    };
    let file = match GroupsFile::decode(&bytes) {
        Ok(file) => file,
        Err((offset, reason)) => return Ok(Err(Problem::new(&path, offset, reason))),
    };
    if file.database_id != meta.database_id {
        return Ok(Err(Problem::new(
            &path,
            16,
            format!(
                "belongs to database {} but the stream to {}",
                file.database_id, meta.database_id
            ),
        )));
    }
    if file.stream_id != meta.stream_id {
        return Ok(Err(Problem::new(
            &path,
            32,
            format!(
                "names stream id {} in the directory of stream {}",
                file.stream_id, meta.stream_id
            ),
        )));
    }
    Ok(Ok(Some(file)))
}

/// A segment file of a stream, by name, with its header.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// Its name.
    pub name: String,
    /// The first LSN its name carries.
    pub name_lsn: u64,
    /// Its size.
    pub file_bytes: u64,
    /// The checked header, or why it does not check.
    pub info: Result<SegmentInfo, String>,
}

/// The segment files of a stream directory, by first LSN, their headers read.
pub fn list_segment_files(stream: &StreamDir) -> Result<Vec<SegmentFile>> {
    let mut segments = Vec::new();
    for name in &stream.entries {
        let Some(name_lsn) = parse_segment_file_name(name) else {
            continue;
        };
        let path = stream.path.join(name);
        let file_bytes = std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let info = read_segment_header(&path, name_lsn, file_bytes)?;
        segments.push(SegmentFile {
            name: name.clone(),
            name_lsn,
            file_bytes,
            info,
        });
    }
    segments.sort_by_key(|segment| segment.name_lsn);
    Ok(segments)
}

/// Reads and checks a segment header; the inner error says what is wrong with it.
pub fn read_segment_header(
    path: &Path,
    name_lsn: u64,
    file_bytes: u64,
) -> Result<Result<SegmentInfo, String>> {
    if file_bytes < SEGMENT_HEADER_BYTES {
        return Ok(Err("file shorter than a segment header".to_owned()));
    }
    let handle = StdFileSystem
        .open(path, OpenMode::Read)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = [0_u8; SEGMENT_HEADER_LEN];
    read_exact_at(handle.as_ref(), &mut bytes, 0)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match SegmentHeader::decode(&bytes) {
        Err(reason) => Err(reason.to_owned()),
        Ok(header) if header.first_lsn != name_lsn => Err(format!(
            "the header names first LSN {} but the file name {name_lsn}",
            header.first_lsn
        )),
        Ok(header) => Ok(SegmentInfo {
            path: path.to_path_buf(),
            segment_number: header.segment_number,
            first_lsn: header.first_lsn,
            file_bytes,
            segment_bytes: header.segment_bytes,
            database_id: header.database_id,
            recycled: header.recycled,
        }),
    })
}

/// What a frame scan of one segment found (checksums and batch headers, no message decoding).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentScan {
    /// Valid frames read, each one batch.
    pub frames: u64,
    /// Messages in those batches.
    pub messages: u64,
    /// LSN of the last valid frame.
    pub last_lsn: Option<u64>,
    /// First offset of the first batch.
    pub first_offset: Option<u64>,
    /// One past the last offset of the last batch.
    pub end_offset: Option<u64>,
    /// Timestamp of the first batch.
    pub first_timestamp_ms: Option<u64>,
    /// Timestamp of the last batch.
    pub last_timestamp_ms: Option<u64>,
    /// Bytes from the start of the file to the end of the last valid frame.
    pub bytes_used: u64,
    /// Where the scan stopped and why, when that was not the clean end of the segment (zeros
    /// or the end of the file): `(offset, reason)`.
    pub stopped: Option<(u64, String)>,
}

/// Scans the frames of a segment whose header checked.
pub fn scan_segment(info: &SegmentInfo) -> Result<SegmentScan> {
    let mut reader = SegmentReader::open(&StdFileSystem, info, FRAME_PAYLOAD_BYTES_MAX)
        .with_context(|| format!("cannot open {}", info.path.display()))?;
    let mut scan = SegmentScan {
        bytes_used: SEGMENT_HEADER_BYTES,
        ..SegmentScan::default()
    };
    let mut expected_lsn = info.first_lsn;
    loop {
        let next = reader
            .next()
            .with_context(|| format!("cannot read {}", info.path.display()))?;
        let Some((offset, frame)) = next else { break };
        let problem = if frame.lsn != expected_lsn {
            Some(format!(
                "frame carries LSN {} where LSN {expected_lsn} was expected",
                frame.lsn
            ))
        } else if frame.record_type != STREAM_BATCH_RECORD_TYPE {
            Some(format!(
                "frame LSN {} has record type {}, not a stream batch",
                frame.lsn, frame.record_type
            ))
        } else {
            None
        };
        let header = batch_header(frame.body);
        let (timestamp_ms, count) = match (problem, header) {
            (Some(reason), _) => {
                scan.stopped = Some((offset, reason));
                return Ok(scan);
            }
            (None, Err(reason)) => {
                scan.stopped = Some((offset, format!("frame LSN {}: {reason}", frame.lsn)));
                return Ok(scan);
            }
            (None, Ok(header)) => header,
        };
        if let Some(end) = scan.end_offset.filter(|&end| end != frame.version) {
            scan.stopped = Some((
                offset,
                format!(
                    "frame LSN {} starts at offset {} where {end} was expected",
                    frame.lsn, frame.version
                ),
            ));
            return Ok(scan);
        }
        scan.frames += 1;
        scan.messages += u64::from(count);
        scan.last_lsn = Some(frame.lsn);
        scan.first_offset.get_or_insert(frame.version);
        scan.end_offset = Some(frame.version.saturating_add(u64::from(count)));
        scan.first_timestamp_ms.get_or_insert(timestamp_ms);
        scan.last_timestamp_ms = Some(timestamp_ms);
        scan.bytes_used = reader.position();
        expected_lsn = expected_lsn.saturating_add(1);
    }
    if let Some(stop) = reader.stop() {
        match stop.kind {
            StopKind::EndOfFile | StopKind::Zeros => {}
            StopKind::Incomplete => {
                scan.stopped = Some((
                    stop.offset,
                    "the file ends inside the frame its header announces".to_owned(),
                ));
            }
            StopKind::Invalid { reason } => scan.stopped = Some((stop.offset, reason.to_owned())),
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_directory_names_are_twenty_digits() {
        assert_eq!(parse_stream_dir_name("00000000000000000042"), Some(42));
        assert_eq!(parse_stream_dir_name("42"), None);
        assert_eq!(parse_stream_dir_name("0000000000000000004x"), None);
        assert_eq!(parse_stream_dir_name("99999999999999999999"), None);
    }
}

//! Segment files: the header codec, file naming, listing, and crash-safe creation.
//!
//! A segment is named `{first_lsn:020}.wal`, so a plain sort of names is LSN order. It opens
//! with a 64-byte header (layout in [`crate::format`]) that repeats the first LSN, carries a
//! segment number, the preallocated size and the id of the database it belongs to, and ends
//! with a CRC. A segment whose header checks but names another database is listed as foreign:
//! never read, never replayed.
//!
//! Guarantees: a segment is created as `{name}.tmp` (header written, preallocated with
//! `set_len`, `sync_data`), then renamed to its final name, then the directory is synced; so a
//! `.wal` file whose header does not check is never a crash artefact but corruption. Trade-off:
//! creation costs two syncs (file and directory), paid once per segment, never per commit.
//!
//! Recycling: a preallocated file's blocks are holes until written, and an fdatasync after a
//! write into a hole also commits the block allocation, which costs about half again as much
//! as the write itself. So a log may keep retired segments as `{first_lsn:020}.wal.free` and
//! turn one into its next segment: renamed to `{name}.tmp`, given a new header with
//! [`SEGMENT_FLAG_RECYCLED`] set, synced, renamed into place and the directory synced, the
//! same steps as a creation. Its frames of the previous life stay after the new ones until
//! overwritten; every one of them carries an LSN below the new first LSN (a segment is
//! retired only once every LSN it holds is covered, and LSNs only grow), and the reader ends a
//! recycled segment at the first byte that is not the next frame (see `crate::reader`).

use std::path::{Path, PathBuf};

use crate::error::LogError;
use crate::format::{
    read_u32, read_u64, to_u64, SEGMENT_BYTES_OFFSET, SEGMENT_DATABASE_ID_OFFSET,
    SEGMENT_FILE_SUFFIX, SEGMENT_FIRST_LSN_OFFSET, SEGMENT_FLAGS_KNOWN, SEGMENT_FLAGS_OFFSET,
    SEGMENT_FLAG_RECYCLED, SEGMENT_FORMAT_VERSION, SEGMENT_FORMAT_VERSION_OFFSET,
    SEGMENT_FREE_SUFFIX, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_BYTES_OFFSET,
    SEGMENT_HEADER_CRC_OFFSET, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_NAME_DIGITS,
    SEGMENT_NUMBER_OFFSET, SEGMENT_TEMP_SUFFIX,
};
use crate::fs::{read_exact_at, FileHandle, FileSystem, OpenMode};
use crate::identity::DatabaseId;

/// The decoded header of a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Grows with every segment a log creates; checked to increase in LSN order.
    pub segment_number: u64,
    /// LSN of the segment's first frame (a segment without frames still names the LSN its
    /// first frame would have).
    pub first_lsn: u64,
    /// The size the file was preallocated to, header included.
    pub segment_bytes: u64,
    /// The database the segment belongs to.
    pub database_id: DatabaseId,
    /// The file is a recycled segment: stale frames (LSNs below `first_lsn`) may follow the
    /// last frame instead of zeros.
    pub recycled: bool,
}

impl SegmentHeader {
    /// The 64 header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut bytes = [0_u8; SEGMENT_HEADER_LEN];
        let header_bytes = u32::try_from(SEGMENT_HEADER_BYTES).unwrap_or(u32::MAX);
        bytes[..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[SEGMENT_FORMAT_VERSION_OFFSET..SEGMENT_HEADER_BYTES_OFFSET]
            .copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        bytes[SEGMENT_HEADER_BYTES_OFFSET..SEGMENT_NUMBER_OFFSET]
            .copy_from_slice(&header_bytes.to_le_bytes());
        bytes[SEGMENT_NUMBER_OFFSET..SEGMENT_FIRST_LSN_OFFSET]
            .copy_from_slice(&self.segment_number.to_le_bytes());
        bytes[SEGMENT_FIRST_LSN_OFFSET..SEGMENT_BYTES_OFFSET]
            .copy_from_slice(&self.first_lsn.to_le_bytes());
        bytes[SEGMENT_BYTES_OFFSET..SEGMENT_DATABASE_ID_OFFSET]
            .copy_from_slice(&self.segment_bytes.to_le_bytes());
        bytes[SEGMENT_DATABASE_ID_OFFSET..SEGMENT_FLAGS_OFFSET]
            .copy_from_slice(&self.database_id.to_bytes());
        let flags = if self.recycled {
            SEGMENT_FLAG_RECYCLED
        } else {
            0
        };
        bytes[SEGMENT_FLAGS_OFFSET..SEGMENT_HEADER_CRC_OFFSET]
            .copy_from_slice(&flags.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..SEGMENT_HEADER_CRC_OFFSET]);
        bytes[SEGMENT_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes and checks a header; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err("file shorter than a segment header");
        };
        if header.get(..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err("bad segment magic");
        }
        let covered = header.get(..SEGMENT_HEADER_CRC_OFFSET).unwrap_or(&[]);
        if read_u32(header, SEGMENT_HEADER_CRC_OFFSET) != Some(crc32c::crc32c(covered)) {
            return Err("segment header checksum mismatch");
        }
        if read_u32(header, SEGMENT_FORMAT_VERSION_OFFSET) != Some(SEGMENT_FORMAT_VERSION) {
            return Err(
                "unsupported segment format version: this build reads only version 2 \
                        (version 1, before database identities, is refused)",
            );
        }
        if read_u32(header, SEGMENT_HEADER_BYTES_OFFSET).map(u64::from)
            != Some(SEGMENT_HEADER_BYTES)
        {
            return Err("unexpected segment header size");
        }
        let Some(flags) = read_u32(header, SEGMENT_FLAGS_OFFSET) else {
            return Err("file shorter than a segment header");
        };
        if flags & !SEGMENT_FLAGS_KNOWN != 0 {
            return Err("unknown segment header flags");
        }
        let (Some(segment_number), Some(first_lsn), Some(segment_bytes), Some(database_id)) = (
            read_u64(header, SEGMENT_NUMBER_OFFSET),
            read_u64(header, SEGMENT_FIRST_LSN_OFFSET),
            read_u64(header, SEGMENT_BYTES_OFFSET),
            header
                .get(SEGMENT_DATABASE_ID_OFFSET..SEGMENT_FLAGS_OFFSET)
                .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok()),
        ) else {
            return Err("file shorter than a segment header");
        };
        if first_lsn == 0 {
            return Err("segment first LSN is 0 (LSNs start at 1)");
        }
        if segment_bytes < SEGMENT_HEADER_BYTES {
            return Err("segment size smaller than its header");
        }
        Ok(SegmentHeader {
            segment_number,
            first_lsn,
            segment_bytes,
            database_id: DatabaseId::from_bytes(database_id),
            recycled: flags & SEGMENT_FLAG_RECYCLED != 0,
        })
    }
}

/// The file name of the segment whose first frame has `first_lsn`: `{first_lsn:020}.wal`.
pub fn segment_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}{SEGMENT_FILE_SUFFIX}")
}

/// The first LSN a segment file name carries, or `None` if `name` is not exactly
/// `{20 digits}.wal`.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_FILE_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A segment file whose header checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The file.
    pub path: PathBuf,
    /// From the header.
    pub segment_number: u64,
    /// From the header (equal to the one in the name).
    pub first_lsn: u64,
    /// The file's length when listed.
    pub file_bytes: u64,
    /// The preallocated size from the header.
    pub segment_bytes: u64,
    /// The database the header names.
    pub database_id: DatabaseId,
    /// From the header: stale frames may follow the last frame.
    pub recycled: bool,
}

/// A segment file found in a directory, checked or not.
#[derive(Debug)]
pub(crate) struct ListedSegment {
    /// The file.
    pub path: PathBuf,
    /// The header, or why it does not check.
    pub info: Result<SegmentInfo, String>,
    /// The file's length when listed (also for a bad header).
    pub file_bytes: u64,
}

/// Every `{20 digits}.wal` file of `dir` with its header checked, sorted by the LSN in the
/// name. Other names are ignored.
pub(crate) fn list_segment_files(
    fs: &dyn FileSystem,
    dir: &Path,
) -> Result<Vec<ListedSegment>, LogError> {
    let names = fs
        .list_dir(dir)
        .map_err(|error| LogError::io("list log directory", dir, error))?;
    let mut found: Vec<(u64, PathBuf)> = names
        .iter()
        .filter_map(|name| Some((parse_segment_file_name(name)?, dir.join(name))))
        .collect();
    found.sort_unstable_by_key(|(first_lsn, _)| *first_lsn);
    let mut listed = Vec::with_capacity(found.len());
    for (name_lsn, path) in found {
        let (info, file_bytes) = read_segment_info(fs, &path, name_lsn)?;
        listed.push(ListedSegment {
            path,
            info,
            file_bytes,
        });
    }
    Ok(listed)
}

/// Reads and checks the header of the segment at `path` whose name carries `name_lsn`.
/// The outer error is I/O; the inner one says why the header does not check.
fn read_segment_info(
    fs: &dyn FileSystem,
    path: &Path,
    name_lsn: u64,
) -> Result<(Result<SegmentInfo, String>, u64), LogError> {
    let file = fs
        .open(path, OpenMode::Read)
        .map_err(|error| LogError::io("open segment", path, error))?;
    let file_bytes = file
        .len()
        .map_err(|error| LogError::io("read segment length", path, error))?;
    if file_bytes < SEGMENT_HEADER_BYTES {
        return Ok((
            Err("file shorter than a segment header".to_owned()),
            file_bytes,
        ));
    }
    let mut bytes = [0_u8; SEGMENT_HEADER_LEN];
    read_exact_at(file.as_ref(), &mut bytes, 0)
        .map_err(|error| LogError::io("read segment header", path, error))?;
    let info = match SegmentHeader::decode(&bytes) {
        Err(reason) => Err(reason.to_owned()),
        Ok(header) if header.first_lsn != name_lsn => Err(format!(
            "header names first LSN {} but the file name {name_lsn}",
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
    };
    Ok((info, file_bytes))
}

/// Every segment of `dir`, sorted by first LSN, with its header checked: a bad header is
/// [`LogError::Corrupted`] at offset 0 of that file.
pub fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<SegmentInfo>, LogError> {
    list_segment_files(fs, dir)?
        .into_iter()
        .map(|listed| {
            listed
                .info
                .map_err(|reason| LogError::corrupted(&listed.path, 0, reason))
        })
        .collect()
}

/// Which durability calls segment creation makes; both are `true` outside sabotage builds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SyncCalls {
    /// Call `sync_data` on segment files.
    pub sync_data: bool,
    /// Call `sync_dir` on the log directory.
    pub sync_dir: bool,
}

/// Syncs the directory unless `calls` says not to.
pub(crate) fn sync_dir(fs: &dyn FileSystem, dir: &Path, calls: SyncCalls) -> Result<(), LogError> {
    if !calls.sync_dir {
        return Ok(());
    }
    fs.sync_dir(dir)
        .map_err(|error| LogError::io("sync log directory", dir, error))
}

/// Syncs a segment file's data unless `calls` says not to.
pub(crate) fn sync_segment(
    file: &dyn FileHandle,
    path: &Path,
    calls: SyncCalls,
) -> Result<(), LogError> {
    if !calls.sync_data {
        return Ok(());
    }
    file.sync_data()
        .map_err(|error| LogError::io("sync segment", path, error))
}

/// Creates the segment `header` describes in `dir` the crash-safe way (temp file, header,
/// preallocation, sync, rename, directory sync) and returns it open for writing. An existing
/// segment of the same name is replaced atomically by the rename (only ever an empty one).
pub(crate) fn create_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    header: SegmentHeader,
    calls: SyncCalls,
) -> Result<(PathBuf, Box<dyn FileHandle>), LogError> {
    let name = segment_file_name(header.first_lsn);
    let path = dir.join(&name);
    let temp_path = dir.join(format!("{name}.tmp"));
    match fs.remove_file(&temp_path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(LogError::io("remove stale segment temp", &temp_path, error)),
    }
    {
        let temp = fs
            .open(&temp_path, OpenMode::CreateNew)
            .map_err(|error| LogError::io("create segment", &temp_path, error))?;
        temp.write_all_at(&header.encode(), 0)
            .map_err(|error| LogError::io("write segment header", &temp_path, error))?;
        temp.set_len(header.segment_bytes)
            .map_err(|error| LogError::io("preallocate segment", &temp_path, error))?;
        sync_segment(temp.as_ref(), &temp_path, calls)?;
    }
    publish_segment(fs, dir, &temp_path, path, calls)
}

/// The last steps of making a segment: renames the synced `temp_path` to `path`, syncs the
/// directory, and reopens the file by its final name (so that no file system has to follow
/// a handle across a rename).
fn publish_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    temp_path: &Path,
    path: PathBuf,
    calls: SyncCalls,
) -> Result<(PathBuf, Box<dyn FileHandle>), LogError> {
    fs.rename(temp_path, &path)
        .map_err(|error| LogError::io("rename segment into place", &path, error))?;
    sync_dir(fs, dir, calls)?;
    let file = fs
        .open(&path, OpenMode::ReadWrite)
        .map_err(|error| LogError::io("open segment", &path, error))?;
    Ok((path, file))
}

/// Turns the retired segment file `free` into the segment `header` describes (its
/// `recycled` flag set by the caller; the file is cut or extended to the header's size if it
/// differs), with the steps of [`create_segment`]: rename to the temp name, new header,
/// sync, rename into place, directory sync. A crash before the last rename leaves a temp file
/// that open removes.
pub(crate) fn recycle_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    free: &Path,
    header: SegmentHeader,
    calls: SyncCalls,
) -> Result<(PathBuf, Box<dyn FileHandle>), LogError> {
    let name = segment_file_name(header.first_lsn);
    let path = dir.join(&name);
    let temp_path = dir.join(format!("{name}.tmp"));
    fs.rename(free, &temp_path)
        .map_err(|error| LogError::io("take a free segment", free, error))?;
    {
        let temp = fs
            .open(&temp_path, OpenMode::ReadWrite)
            .map_err(|error| LogError::io("open free segment", &temp_path, error))?;
        let file_bytes = temp
            .len()
            .map_err(|error| LogError::io("read segment length", &temp_path, error))?;
        if file_bytes != header.segment_bytes {
            temp.set_len(header.segment_bytes)
                .map_err(|error| LogError::io("preallocate segment", &temp_path, error))?;
        }
        temp.write_all_at(&header.encode(), 0)
            .map_err(|error| LogError::io("write segment header", &temp_path, error))?;
        sync_segment(temp.as_ref(), &temp_path, calls)?;
    }
    publish_segment(fs, dir, &temp_path, path, calls)
}

/// The name a retired segment takes while it waits to be recycled: `{name}.free`.
pub(crate) fn free_segment_path(path: &Path) -> PathBuf {
    let mut free = path.as_os_str().to_owned();
    free.push(SEGMENT_FREE_SUFFIX.trim_start_matches(SEGMENT_FILE_SUFFIX));
    PathBuf::from(free)
}

/// Removes leftover `*.wal.tmp` files (segments whose creation a crash interrupted) and syncs
/// the directory if any were removed. Returns how many.
pub(crate) fn remove_temp_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    calls: SyncCalls,
) -> Result<usize, LogError> {
    remove_with_suffix(fs, dir, SEGMENT_TEMP_SUFFIX, "remove segment temp", calls)
}

/// Removes every retired segment (`*.wal.free`) an earlier process left, and syncs the
/// directory if any were removed. Returns how many.
pub(crate) fn remove_free_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    calls: SyncCalls,
) -> Result<usize, LogError> {
    remove_with_suffix(fs, dir, SEGMENT_FREE_SUFFIX, "remove free segment", calls)
}

/// Removes the files of `dir` whose names end in `suffix`, then syncs the directory if any
/// were removed. Returns how many.
fn remove_with_suffix(
    fs: &dyn FileSystem,
    dir: &Path,
    suffix: &str,
    action: &'static str,
    calls: SyncCalls,
) -> Result<usize, LogError> {
    let names = fs
        .list_dir(dir)
        .map_err(|error| LogError::io("list log directory", dir, error))?;
    let mut removed = 0;
    for name in names.iter().filter(|name| name.ends_with(suffix)) {
        let path = dir.join(name);
        fs.remove_file(&path)
            .map_err(|error| LogError::io(action, &path, error))?;
        removed += 1;
    }
    if removed > 0 {
        sync_dir(fs, dir, calls)?;
    }
    Ok(removed)
}

/// The size of a new segment that must hold a first frame of `frame_bytes`: the configured
/// size, or larger when the frame would not fit.
pub(crate) fn segment_bytes_for(configured_bytes: u64, frame_bytes: usize) -> u64 {
    configured_bytes.max(SEGMENT_HEADER_BYTES.saturating_add(to_u64(frame_bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_pinned_byte_by_byte() {
        let header = SegmentHeader {
            segment_number: 3,
            first_lsn: 0x0102_0304_0506_0708,
            segment_bytes: 4096,
            database_id: DatabaseId::from_bytes(*b"0123456789abcdef"),
            recycled: false,
        };
        let bytes = header.encode();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"CAIRNWAL");
        expected.extend_from_slice(&[2, 0, 0, 0]); // format_version u32
        expected.extend_from_slice(&[64, 0, 0, 0]); // header_bytes u32
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]); // segment_number u64
        expected.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]); // first_lsn u64
        expected.extend_from_slice(&[0, 0x10, 0, 0, 0, 0, 0, 0]); // segment_bytes u64 = 4096
        expected.extend_from_slice(b"0123456789abcdef"); // database_id
        expected.extend_from_slice(&[0, 0, 0, 0]); // flags
        let crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes.to_vec(), expected);
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));

        let recycled = SegmentHeader {
            recycled: true,
            ..header
        };
        let bytes = recycled.encode();
        expected.truncate(SEGMENT_FLAGS_OFFSET);
        expected.extend_from_slice(&[1, 0, 0, 0]); // flags: recycled
        let crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes.to_vec(), expected);
        assert_eq!(SegmentHeader::decode(&bytes), Ok(recycled));
    }

    #[test]
    fn unknown_header_flags_are_refused() {
        for bit in 1..32 {
            let mut bytes = SegmentHeader {
                segment_number: 1,
                first_lsn: 1,
                segment_bytes: 1 << 20,
                database_id: DatabaseId::generate(),
                recycled: true,
            }
            .encode();
            let flags = SEGMENT_FLAG_RECYCLED | (1_u32 << bit);
            bytes[SEGMENT_FLAGS_OFFSET..SEGMENT_HEADER_CRC_OFFSET]
                .copy_from_slice(&flags.to_le_bytes());
            let crc = crc32c::crc32c(&bytes[..SEGMENT_HEADER_CRC_OFFSET]);
            bytes[SEGMENT_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(
                SegmentHeader::decode(&bytes),
                Err("unknown segment header flags"),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn every_single_bit_flip_of_a_header_is_rejected() {
        let bytes = SegmentHeader {
            segment_number: 1,
            first_lsn: 1,
            segment_bytes: 1 << 20,
            database_id: DatabaseId::generate(),
            recycled: false,
        }
        .encode();
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&flipped).is_err(), "bit {bit}");
        }
        assert!(SegmentHeader::decode(&bytes[..63]).is_err());
    }

    #[test]
    fn a_version_1_header_is_refused_naming_the_versions() {
        let mut bytes = SegmentHeader {
            segment_number: 1,
            first_lsn: 1,
            segment_bytes: 1 << 20,
            database_id: DatabaseId::generate(),
            recycled: false,
        }
        .encode();
        bytes[SEGMENT_FORMAT_VERSION_OFFSET..SEGMENT_HEADER_BYTES_OFFSET]
            .copy_from_slice(&1_u32.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..SEGMENT_HEADER_CRC_OFFSET]);
        bytes[SEGMENT_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        let reason = SegmentHeader::decode(&bytes).expect_err("version 1");
        assert!(reason.contains("only version 2"), "{reason}");
    }

    #[test]
    fn names_are_zero_padded_and_parse_back() {
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.wal"),
            Some(42)
        );
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("0000000000000000042.wal"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.wal.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("0000000000000000004x.wal"), None);
        assert_eq!(parse_segment_file_name("+0000000000000000042.wal"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.wal"), None);
    }

    #[test]
    fn oversized_frames_get_a_segment_that_fits() {
        assert_eq!(segment_bytes_for(4096, 100), 4096);
        assert_eq!(segment_bytes_for(4096, 4032), 4096);
        assert_eq!(segment_bytes_for(4096, 4033), 4097);
    }
}

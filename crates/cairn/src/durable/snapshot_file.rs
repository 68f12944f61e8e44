//! The checkpoint (snapshot) file: every live entry of one MVCC version, in key order, in
//! checksummed blocks, so that recovery can bulk-build the index and replay the WAL only from
//! the snapshot's LSN.
//!
//! [`SnapshotWriter`] streams entries into blocks of about [`BLOCK_TARGET_BYTES`] and writes
//! the header last: until [`SnapshotWriter::finish`] has written it, bytes 0..80 are zeros,
//! which never pass the header checksum, so a file cut short by a crash can never be mistaken
//! for a complete snapshot. `finish` syncs the file's data but does not rename it; installing
//! it (rename, directory sync) is the caller's job.
//!
//! [`read_snapshot`] and [`decode_snapshot_bytes`] share one decoder that verifies everything
//! before it trusts it: the header checksum, every block checksum, strictly ascending keys
//! across the whole file, the entry count of every block, the block and entry totals against
//! the header and the footer, the footer checksum (which chains every block checksum), and that
//! the file ends exactly after the footer. Every length read from the file is checked against
//! [`BLOCK_BYTES_MAX`] and against the bytes actually left before anything is allocated, and no
//! input makes it panic. Any damage is reported as [`SnapshotError::Corrupted`] with the byte
//! offset where it was found.
//!
//! Trade-offs: the decoder streams, one block at a time, so its memory is bounded by the largest
//! block, but it hands entries to the caller's `visit` as it verifies them; damage found later
//! in the file is reported after earlier entries were visited, so a caller must discard what it
//! built when the load fails. The per-block and footer checksums detect damage, they do not
//! repair it: recovery falls back to the previous snapshot.

use std::io;
use std::path::Path;

use cairn_log::fs::{read_exact_at, FileHandle, FileSystem, OpenMode};
use cairn_log::DatabaseId;

// The format, little-endian throughout:
//
// header (80 bytes, at offset 0):
//   0  magic b"CAIRNSNP"          8 bytes
//   8  format_version u32         = 2
//  12  header_bytes u32           = 80
//  16  snapshot_version u64       the MVCC version the snapshot shows
//  24  wal_lsn u64                every WAL record with lsn <= this is included
//  32  entry_count u64
//  40  block_count u64
//  48  created_unix_millis u64
//  56  database_id [u8; 16]       the database the snapshot belongs to
//  72  reserved u32               = 0
//  76  header_crc u32             crc32c over bytes 0..76
//
// blocks, back to back from offset 80 (at least one entry each, none when entry_count = 0):
//   0  block_bytes u32            bytes of the entries that follow
//   4  entry_count u32
//   8  entries                    block_bytes bytes
//      block_crc u32              crc32c over block_bytes .. end of entries
//
// entry (inside a block):
//   0  key_bytes u32              1 ..= 65,536
//   4  value_bytes u32            may be 0
//   8  version u64                <= snapshot_version
//  16  deadline_millis u64        u64::MAX = no deadline
//  24  key, then value
//
// footer (32 bytes, right after the last block; the file ends with it):
//   0  magic b"CAIRNEND"          8 bytes
//   8  block_count u64            = header block_count
//  16  entry_count u64            = header entry_count
//  24  footer_crc u32             chain = 0; for each block in order:
//                                   chain = crc32c_append(chain, block_crc as 4 LE bytes);
//                                 footer_crc = crc32c_append(chain, footer bytes 0..24)
//  28  reserved u32               = 0
//
// The header is written last; until then bytes 0..80 are zeros, which fail the header check.
// Version 1 (a 64-byte header without the database id) is refused with a message naming both.

/// The snapshot file format this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;

/// Size of the header at offset 0, in bytes.
pub const SNAPSHOT_HEADER_BYTES: usize = 80;

/// Size of the footer that ends the file, in bytes.
pub const SNAPSHOT_FOOTER_BYTES: usize = 32;

/// The deadline of an entry that never expires.
pub const SNAPSHOT_DEADLINE_NONE: u64 = u64::MAX;

/// Bytes of entries the writer gathers into one block (256 KiB): large enough that the
/// per-block cost (one write, one checksum, 12 bytes) vanishes, small enough that a damaged
/// block loses little and the reader's buffer stays small. An entry larger than this gets a
/// block of its own.
pub const BLOCK_TARGET_BYTES: usize = 256 * 1024;

/// Largest value in a snapshot entry (1 GiB), the engine's hard ceiling on value size.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// Smallest key in a snapshot entry, in bytes (the engine refuses the empty key).
pub const KEY_BYTES_MIN: usize = 1;

/// Largest key in a snapshot entry (64 KiB), the engine's key limit.
pub const KEY_BYTES_MAX: usize = 65_536;

/// Largest `block_bytes` the reader accepts (1 GiB + 128 KiB): one maximal value plus a
/// maximal key plus the entry header, with room to spare. The reader refuses a larger length
/// before allocating anything for it.
pub const BLOCK_BYTES_MAX: usize = VALUE_BYTES_MAX + 128 * 1024;

/// [`SNAPSHOT_HEADER_BYTES`] as stored in the header's `header_bytes` field.
#[expect(clippy::cast_possible_truncation, reason = "80 fits in a u32")]
const HEADER_BYTES_FIELD: u32 = SNAPSHOT_HEADER_BYTES as u32;

/// The header's first bytes.
const HEADER_MAGIC: [u8; 8] = *b"CAIRNSNP";

/// The footer's first bytes.
const FOOTER_MAGIC: [u8; 8] = *b"CAIRNEND";

/// Header field offsets, for error reports (see the format above).
const HEADER_FORMAT_VERSION_OFFSET: u64 = 8;
const HEADER_HEADER_BYTES_OFFSET: u64 = 12;
const HEADER_ENTRY_COUNT_OFFSET: u64 = 32;
const HEADER_BLOCK_COUNT_OFFSET: u64 = 40;
const HEADER_DATABASE_ID_OFFSET: usize = 56;
const HEADER_RESERVED_OFFSET: u64 = 72;
const HEADER_CRC_OFFSET: usize = 76;

/// Footer field offsets, relative to the footer's start.
const FOOTER_BLOCK_COUNT_OFFSET: u64 = 8;
const FOOTER_ENTRY_COUNT_OFFSET: u64 = 16;
const FOOTER_CRC_OFFSET: usize = 24;
const FOOTER_RESERVED_OFFSET: u64 = 28;

/// `block_bytes` and `entry_count` before a block's entries.
const BLOCK_HEADER_BYTES: usize = 8;

/// Offset of a block's `entry_count` within the block.
const BLOCK_ENTRY_COUNT_OFFSET: u64 = 4;

/// The checksum after a block's entries.
const BLOCK_CRC_BYTES: usize = 4;

/// `key_bytes`, `value_bytes`, `version` and `deadline_millis` before an entry's key.
const ENTRY_HEADER_BYTES: usize = 24;

/// Offset of an entry's `version` within the entry.
const ENTRY_VERSION_OFFSET: u64 = 8;

/// The smallest entry (header plus a one-byte key and an empty value); used to check the
/// header's counts against the file's size, so a caller can pre-size from them safely.
const ENTRY_BYTES_MIN: u64 = (ENTRY_HEADER_BYTES + KEY_BYTES_MIN) as u64;

/// The smallest block around its entries.
const BLOCK_OVERHEAD_BYTES: u64 = (BLOCK_HEADER_BYTES + BLOCK_CRC_BYTES) as u64;

/// What the header says about a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The MVCC version the snapshot shows; every entry's version is at most this.
    pub snapshot_version: u64,
    /// Every WAL record with an LSN at or below this is included; replay starts after it.
    pub wal_lsn: u64,
    /// Entries in the file.
    pub entry_count: u64,
    /// Blocks in the file.
    pub block_count: u64,
    /// When the snapshot was written, in milliseconds since the Unix epoch (informational).
    pub created_unix_millis: u64,
    /// The database the snapshot belongs to. The decoder does not judge it; recovery and
    /// verification refuse a snapshot that names another database.
    pub database_id: DatabaseId,
}

/// One key's newest visible version, as stored in a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotEntry<'a> {
    /// The key, 1 ..= [`KEY_BYTES_MAX`] bytes.
    pub key: &'a [u8],
    /// The value, possibly empty.
    pub value: &'a [u8],
    /// The commit version that wrote this value.
    pub version: u64,
    /// Absolute expiry deadline in milliseconds, or [`SNAPSHOT_DEADLINE_NONE`].
    pub deadline_millis: u64,
}

/// Why writing or reading a snapshot failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file system failed; the file's state is unknown.
    #[error("snapshot I/O failed while trying to {operation}: {source}")]
    Io {
        /// What was being done, e.g. "write a block".
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a valid snapshot (damage, truncation, an unfinished file), or the
    /// writer was given entries it cannot store (keys out of order, a key or value too large);
    /// `offset` is where in the file the problem lies.
    #[error("snapshot corrupted at byte offset {offset}: {reason}")]
    Corrupted {
        /// Byte offset in the file of the damaged or refused data.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The caller's `visit` stopped the load with this reason.
    #[error("snapshot load rejected by the caller: {0}")]
    Rejected(String),
}

fn corrupted(offset: u64, reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupted {
        offset,
        reason: reason.into(),
    }
}

fn io_error(operation: &'static str) -> impl FnOnce(io::Error) -> SnapshotError {
    move |source| SnapshotError::Io { operation, source }
}

fn offset_overflow(offset: u64) -> SnapshotError {
    corrupted(offset, "offset arithmetic overflowed")
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Streams entries, in strictly ascending key order, into a new snapshot file.
///
/// Memory is one block buffer ([`BLOCK_TARGET_BYTES`] plus a few bytes) and a copy of the last
/// key; an entry larger than a block is written straight from the caller's slices. After an
/// I/O error the writer refuses further calls: the file's contents are then unknown.
pub struct SnapshotWriter {
    file: Box<dyn FileHandle>,
    /// The block being filled: a placeholder block header, then encoded entries.
    block: Vec<u8>,
    block_entry_count: u32,
    block_target_bytes: usize,
    /// Where the next block goes.
    file_offset: u64,
    snapshot_version: u64,
    wal_lsn: u64,
    created_unix_millis: u64,
    database_id: DatabaseId,
    entry_count: u64,
    block_count: u64,
    /// Every finished block's checksum chained in order; the footer checksum extends it.
    block_crc_chain: u32,
    /// The last pushed key, to check that keys strictly ascend.
    last_key: Vec<u8>,
    has_last_key: bool,
    failed: bool,
}

impl std::fmt::Debug for SnapshotWriter {
    // By hand: the derived form would print the whole block buffer.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SnapshotWriter")
            .field("snapshot_version", &self.snapshot_version)
            .field("wal_lsn", &self.wal_lsn)
            .field("entry_count", &self.entry_count)
            .field("block_count", &self.block_count)
            .field("file_offset", &self.file_offset)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl SnapshotWriter {
    /// Creates `path` (which must not exist) and writes the zeroed header placeholder.
    pub fn create(
        fs: &dyn FileSystem,
        path: &Path,
        snapshot_version: u64,
        wal_lsn: u64,
        created_unix_millis: u64,
        database_id: DatabaseId,
    ) -> Result<Self, SnapshotError> {
        let file = fs
            .open(path, OpenMode::CreateNew)
            .map_err(io_error("create the snapshot file"))?;
        file.write_all_at(&[0; SNAPSHOT_HEADER_BYTES], 0)
            .map_err(io_error("write the header placeholder"))?;
        let mut block =
            Vec::with_capacity(BLOCK_HEADER_BYTES + BLOCK_TARGET_BYTES + BLOCK_CRC_BYTES);
        block.resize(BLOCK_HEADER_BYTES, 0);
        Ok(Self {
            file,
            block,
            block_entry_count: 0,
            block_target_bytes: BLOCK_TARGET_BYTES,
            file_offset: SNAPSHOT_HEADER_BYTES as u64,
            snapshot_version,
            wal_lsn,
            created_unix_millis,
            database_id,
            entry_count: 0,
            block_count: 0,
            block_crc_chain: 0,
            last_key: Vec::new(),
            has_last_key: false,
            failed: false,
        })
    }

    /// Sets a smaller block target so tests can build many blocks from few entries.
    #[cfg(test)]
    fn with_block_target(mut self, block_target_bytes: usize) -> Self {
        self.block_target_bytes = block_target_bytes;
        self
    }

    /// Appends one entry. Its key must be strictly greater than the previous one; a key out of
    /// order, an empty or oversized key, an oversized value, or a version above the snapshot's
    /// is refused with [`SnapshotError::Corrupted`] and nothing is written.
    pub fn push(&mut self, entry: SnapshotEntry<'_>) -> Result<(), SnapshotError> {
        self.check_usable()?;
        let entry_offset = self.file_offset + (self.block.len() as u64);
        self.check_entry(&entry, entry_offset)?;
        let entry_bytes = ENTRY_HEADER_BYTES + entry.key.len() + entry.value.len();
        let block_entries_bytes = self.block.len() - BLOCK_HEADER_BYTES;
        if self.block_entry_count > 0 && block_entries_bytes + entry_bytes > self.block_target_bytes
        {
            self.flush_block()?;
        }
        if entry_bytes > self.block_target_bytes {
            self.write_entry_as_own_block(&entry, entry_bytes)?;
        } else {
            encode_entry_header(&mut self.block, &entry);
            self.block.extend_from_slice(entry.key);
            self.block.extend_from_slice(entry.value);
            self.block_entry_count += 1;
        }
        self.entry_count += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(entry.key);
        self.has_last_key = true;
        Ok(())
    }

    /// Writes the last block, the footer and then the header, and syncs the file's data.
    /// Returns the header as written. The file is not renamed: the caller installs it.
    pub fn finish(mut self) -> Result<SnapshotHeader, SnapshotError> {
        self.check_usable()?;
        if self.block_entry_count > 0 {
            self.flush_block()?;
        }
        let header = SnapshotHeader {
            snapshot_version: self.snapshot_version,
            wal_lsn: self.wal_lsn,
            entry_count: self.entry_count,
            block_count: self.block_count,
            created_unix_millis: self.created_unix_millis,
            database_id: self.database_id,
        };
        let footer = encode_footer(&header, self.block_crc_chain);
        self.file
            .write_all_at(&footer, self.file_offset)
            .map_err(io_error("write the footer"))?;
        self.file
            .write_all_at(&encode_header(&header), 0)
            .map_err(io_error("write the header"))?;
        self.file
            .sync_data()
            .map_err(io_error("sync the snapshot file"))?;
        Ok(header)
    }

    fn check_usable(&self) -> Result<(), SnapshotError> {
        if self.failed {
            return Err(SnapshotError::Io {
                operation: "continue after an earlier write failed",
                source: io::Error::other("the snapshot writer failed earlier"),
            });
        }
        Ok(())
    }

    fn check_entry(
        &self,
        entry: &SnapshotEntry<'_>,
        entry_offset: u64,
    ) -> Result<(), SnapshotError> {
        if !(KEY_BYTES_MIN..=KEY_BYTES_MAX).contains(&entry.key.len()) {
            return Err(corrupted(
                entry_offset,
                format!(
                    "key of {} bytes is outside {KEY_BYTES_MIN}..={KEY_BYTES_MAX}",
                    entry.key.len()
                ),
            ));
        }
        if entry.value.len() > VALUE_BYTES_MAX {
            return Err(corrupted(
                entry_offset,
                format!(
                    "value of {} bytes exceeds VALUE_BYTES_MAX ({VALUE_BYTES_MAX})",
                    entry.value.len()
                ),
            ));
        }
        if entry.version > self.snapshot_version {
            return Err(corrupted(
                entry_offset,
                format!(
                    "entry version {} is above the snapshot version {}",
                    entry.version, self.snapshot_version
                ),
            ));
        }
        if self.has_last_key && entry.key <= self.last_key.as_slice() {
            return Err(corrupted(
                entry_offset,
                "keys out of order: each key must be strictly greater than the previous one",
            ));
        }
        Ok(())
    }

    /// Seals the block being filled (header fields and checksum) and writes it in one call.
    fn flush_block(&mut self) -> Result<(), SnapshotError> {
        let entries_bytes = self.block.len() - BLOCK_HEADER_BYTES;
        let block_header =
            encode_block_header(entries_bytes, self.block_entry_count, self.file_offset)?;
        if let Some(placeholder) = self.block.get_mut(..BLOCK_HEADER_BYTES) {
            placeholder.copy_from_slice(&block_header);
        }
        let block_crc = crc32c::crc32c(&self.block);
        self.block.extend_from_slice(&block_crc.to_le_bytes());
        let written = self.file.write_all_at(&self.block, self.file_offset);
        let block_bytes_total = self.block.len() as u64;
        self.block.truncate(BLOCK_HEADER_BYTES);
        self.block_entry_count = 0;
        self.finish_block_write(written, block_crc, block_bytes_total, "write a block")
    }

    /// Writes an entry larger than the block target as a block of its own, straight from the
    /// caller's slices, so a large value is never copied into a buffer.
    fn write_entry_as_own_block(
        &mut self,
        entry: &SnapshotEntry<'_>,
        entry_bytes: usize,
    ) -> Result<(), SnapshotError> {
        let block_header = encode_block_header(entry_bytes, 1, self.file_offset)?;
        // The block buffer is empty here (flushed above); reuse it for the small parts.
        self.block.clear();
        self.block.extend_from_slice(&block_header);
        encode_entry_header(&mut self.block, entry);
        self.block.extend_from_slice(entry.key);
        let block_crc = crc32c::crc32c_append(crc32c::crc32c(&self.block), entry.value);
        let head_bytes = self.block.len() as u64;
        let value_offset = self.file_offset + head_bytes;
        let crc_offset = value_offset + entry.value.len() as u64;
        let written = self
            .file
            .write_all_at(&self.block, self.file_offset)
            .and_then(|()| self.file.write_all_at(entry.value, value_offset))
            .and_then(|()| self.file.write_all_at(&block_crc.to_le_bytes(), crc_offset));
        self.block.truncate(BLOCK_HEADER_BYTES);
        let block_bytes_total = crc_offset + BLOCK_CRC_BYTES as u64 - self.file_offset;
        self.finish_block_write(written, block_crc, block_bytes_total, "write a large block")
    }

    fn finish_block_write(
        &mut self,
        written: io::Result<()>,
        block_crc: u32,
        block_bytes_total: u64,
        operation: &'static str,
    ) -> Result<(), SnapshotError> {
        if let Err(source) = written {
            self.failed = true;
            return Err(SnapshotError::Io { operation, source });
        }
        self.block_crc_chain =
            crc32c::crc32c_append(self.block_crc_chain, &block_crc.to_le_bytes());
        self.block_count += 1;
        self.file_offset = self
            .file_offset
            .checked_add(block_bytes_total)
            .ok_or_else(|| offset_overflow(self.file_offset))?;
        Ok(())
    }
}

fn encode_block_header(
    entries_bytes: usize,
    entry_count: u32,
    block_offset: u64,
) -> Result<[u8; BLOCK_HEADER_BYTES], SnapshotError> {
    // The writer's limits keep every block below BLOCK_BYTES_MAX; check rather than assume.
    let block_bytes = u32::try_from(entries_bytes)
        .ok()
        .filter(|_| entries_bytes <= BLOCK_BYTES_MAX)
        .ok_or_else(|| {
            corrupted(
                block_offset,
                format!("block of {entries_bytes} bytes exceeds BLOCK_BYTES_MAX"),
            )
        })?;
    let mut encoded = [0; BLOCK_HEADER_BYTES];
    encoded[..4].copy_from_slice(&block_bytes.to_le_bytes());
    encoded[4..].copy_from_slice(&entry_count.to_le_bytes());
    Ok(encoded)
}

fn encode_entry_header(out: &mut Vec<u8>, entry: &SnapshotEntry<'_>) {
    // Both lengths were checked against KEY_BYTES_MAX and VALUE_BYTES_MAX, which fit in u32.
    let key_bytes = u32::try_from(entry.key.len()).unwrap_or(u32::MAX);
    let value_bytes = u32::try_from(entry.value.len()).unwrap_or(u32::MAX);
    let mut encoded = [0_u8; ENTRY_HEADER_BYTES];
    encoded[..4].copy_from_slice(&key_bytes.to_le_bytes());
    encoded[4..8].copy_from_slice(&value_bytes.to_le_bytes());
    encoded[8..16].copy_from_slice(&entry.version.to_le_bytes());
    encoded[16..].copy_from_slice(&entry.deadline_millis.to_le_bytes());
    out.extend_from_slice(&encoded);
}

fn encode_header(header: &SnapshotHeader) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut encoded = [0_u8; SNAPSHOT_HEADER_BYTES];
    encoded[..8].copy_from_slice(&HEADER_MAGIC);
    encoded[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    encoded[12..16].copy_from_slice(&HEADER_BYTES_FIELD.to_le_bytes());
    encoded[16..24].copy_from_slice(&header.snapshot_version.to_le_bytes());
    encoded[24..32].copy_from_slice(&header.wal_lsn.to_le_bytes());
    encoded[32..40].copy_from_slice(&header.entry_count.to_le_bytes());
    encoded[40..48].copy_from_slice(&header.block_count.to_le_bytes());
    encoded[48..56].copy_from_slice(&header.created_unix_millis.to_le_bytes());
    encoded[HEADER_DATABASE_ID_OFFSET..HEADER_DATABASE_ID_OFFSET + DatabaseId::BYTES]
        .copy_from_slice(&header.database_id.to_bytes());
    // Bytes 72..76 are the reserved field, zero.
    let header_crc = crc32c::crc32c(&encoded[..HEADER_CRC_OFFSET]);
    encoded[HEADER_CRC_OFFSET..].copy_from_slice(&header_crc.to_le_bytes());
    encoded
}

fn encode_footer(header: &SnapshotHeader, block_crc_chain: u32) -> [u8; SNAPSHOT_FOOTER_BYTES] {
    let mut encoded = [0_u8; SNAPSHOT_FOOTER_BYTES];
    encoded[..8].copy_from_slice(&FOOTER_MAGIC);
    encoded[8..16].copy_from_slice(&header.block_count.to_le_bytes());
    encoded[16..24].copy_from_slice(&header.entry_count.to_le_bytes());
    let footer_crc = crc32c::crc32c_append(block_crc_chain, &encoded[..FOOTER_CRC_OFFSET]);
    encoded[FOOTER_CRC_OFFSET..28].copy_from_slice(&footer_crc.to_le_bytes());
    // Bytes 28..32 are the reserved field, zero.
    encoded
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads and checks only the header of the snapshot at `path` (and that the file is large
/// enough for the counts it states), without reading the blocks.
pub fn read_header(fs: &dyn FileSystem, path: &Path) -> Result<SnapshotHeader, SnapshotError> {
    let mut source = FileSource::open(fs, path)?;
    decode_header(&mut source)
}

/// Reads and verifies the whole file, calling `visit` for each entry in key order.
///
/// Verifies the header checksum, every block checksum, strictly ascending keys across the
/// whole file, the entry count of every block, the block and entry totals against the header
/// and the footer, the footer checksum, and that the file ends exactly after the footer. Reads
/// one block at a time, so memory is bounded by the largest block. Any damage is
/// [`SnapshotError::Corrupted`] with its byte offset; an `Err` from `visit` stops the load and
/// comes back as [`SnapshotError::Rejected`]. Entries visited before a failure must be
/// discarded by the caller.
pub fn read_snapshot(
    fs: &dyn FileSystem,
    path: &Path,
    visit: &mut dyn FnMut(SnapshotEntry<'_>) -> Result<(), String>,
) -> Result<SnapshotHeader, SnapshotError> {
    let mut source = FileSource::open(fs, path)?;
    decode(&mut source, visit)
}

/// The same verification as [`read_snapshot`], on a snapshot held in memory (for the fuzz
/// targets and the tests).
#[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
pub fn decode_snapshot_bytes(
    bytes: &[u8],
    visit: &mut dyn FnMut(SnapshotEntry<'_>) -> Result<(), String>,
) -> Result<SnapshotHeader, SnapshotError> {
    decode(&mut BytesSource { bytes }, visit)
}

/// Where the decoder gets its bytes: a file read a block at a time, or a slice in memory.
trait SnapshotSource {
    /// Total bytes available.
    fn total_bytes(&self) -> u64;
    /// `length` bytes at `offset`. The decoder checks the range against `total_bytes` first,
    /// so a short read here means the source changed underneath and is reported as damage.
    fn read(&mut self, offset: u64, length: usize) -> Result<&[u8], SnapshotError>;
}

#[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
struct BytesSource<'a> {
    bytes: &'a [u8],
}

impl SnapshotSource for BytesSource<'_> {
    fn total_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&mut self, offset: u64, length: usize) -> Result<&[u8], SnapshotError> {
        let start = usize::try_from(offset).ok();
        let end = start.and_then(|start| start.checked_add(length));
        start
            .zip(end)
            .and_then(|(start, end)| self.bytes.get(start..end))
            .ok_or_else(|| {
                corrupted(
                    offset,
                    format!("{length} bytes needed past the end of the data"),
                )
            })
    }
}

struct FileSource {
    file: Box<dyn FileHandle>,
    total_bytes: u64,
    /// Reused for every read; grows to the largest block and no further.
    buffer: Vec<u8>,
}

impl FileSource {
    fn open(fs: &dyn FileSystem, path: &Path) -> Result<Self, SnapshotError> {
        let file = fs
            .open(path, OpenMode::Read)
            .map_err(io_error("open the snapshot file"))?;
        let total_bytes = file
            .len()
            .map_err(io_error("read the snapshot file's length"))?;
        Ok(Self {
            file,
            total_bytes,
            buffer: Vec::new(),
        })
    }
}

impl SnapshotSource for FileSource {
    fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    fn read(&mut self, offset: u64, length: usize) -> Result<&[u8], SnapshotError> {
        if self.buffer.len() < length {
            // Exact: the decoder already bounded `length` by the file's size and BLOCK_BYTES_MAX.
            self.buffer.reserve_exact(length - self.buffer.len());
            self.buffer.resize(length, 0);
        }
        let buffer = self
            .buffer
            .get_mut(..length)
            .ok_or_else(|| corrupted(offset, "read buffer too small"))?;
        match read_exact_at(self.file.as_ref(), buffer, offset) {
            Ok(()) => Ok(buffer),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(corrupted(
                offset,
                format!("the file ended inside a {length}-byte read (it shrank while being read)"),
            )),
            Err(source) => Err(SnapshotError::Io {
                operation: "read the snapshot file",
                source,
            }),
        }
    }
}

/// Reads little-endian fields one after another, never past the end of its slice.
struct FieldCursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> FieldCursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(length)?;
        let taken = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(taken)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }
}

/// The header's fields as stored, before any check.
struct RawHeader<'a> {
    magic: &'a [u8],
    format_version: u32,
    header_bytes: u32,
    header: SnapshotHeader,
    reserved: u32,
    stored_crc: u32,
}

impl<'a> RawHeader<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut fields = FieldCursor::new(bytes);
        Some(Self {
            magic: fields.take(HEADER_MAGIC.len())?,
            format_version: fields.u32()?,
            header_bytes: fields.u32()?,
            header: SnapshotHeader {
                snapshot_version: fields.u64()?,
                wal_lsn: fields.u64()?,
                entry_count: fields.u64()?,
                block_count: fields.u64()?,
                created_unix_millis: fields.u64()?,
                database_id: DatabaseId::from_bytes(
                    fields.take(DatabaseId::BYTES)?.try_into().ok()?,
                ),
            },
            reserved: fields.u32()?,
            stored_crc: fields.u32()?,
        })
    }
}

/// The footer's fields as stored, before any check.
struct RawFooter<'a> {
    magic: &'a [u8],
    block_count: u64,
    entry_count: u64,
    stored_crc: u32,
    reserved: u32,
}

impl<'a> RawFooter<'a> {
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut fields = FieldCursor::new(bytes);
        Some(Self {
            magic: fields.take(FOOTER_MAGIC.len())?,
            block_count: fields.u64()?,
            entry_count: fields.u64()?,
            stored_crc: fields.u32()?,
            reserved: fields.u32()?,
        })
    }
}

/// Reads the header and checks it, including its counts against the source's size, so that a
/// caller may pre-size from `entry_count`.
fn decode_header(source: &mut dyn SnapshotSource) -> Result<SnapshotHeader, SnapshotError> {
    let total_bytes = source.total_bytes();
    let minimum_bytes = (SNAPSHOT_HEADER_BYTES + SNAPSHOT_FOOTER_BYTES) as u64;
    if total_bytes < minimum_bytes {
        return Err(corrupted(
            total_bytes,
            format!("file of {total_bytes} bytes is shorter than a header and a footer ({minimum_bytes})"),
        ));
    }
    let bytes = source.read(0, SNAPSHOT_HEADER_BYTES)?;
    if bytes.iter().all(|&byte| byte == 0) {
        return Err(corrupted(
            0,
            "header is all zeros: the snapshot was never finished",
        ));
    }
    let Some(RawHeader {
        magic,
        format_version,
        header_bytes,
        header,
        reserved,
        stored_crc,
    }) = RawHeader::parse(bytes)
    else {
        return Err(corrupted(0, "header is too short"));
    };
    if magic != HEADER_MAGIC {
        return Err(corrupted(0, "bad header magic: not a snapshot file"));
    }
    let computed_crc = crc32c::crc32c(bytes.get(..HEADER_CRC_OFFSET).unwrap_or_default());
    if stored_crc != computed_crc {
        return Err(corrupted(
            HEADER_CRC_OFFSET as u64,
            format!("header checksum mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})"),
        ));
    }
    if format_version != SNAPSHOT_FORMAT_VERSION {
        return Err(corrupted(
            HEADER_FORMAT_VERSION_OFFSET,
            format!(
                "unsupported snapshot format version {format_version} (this build reads only \
                 version {SNAPSHOT_FORMAT_VERSION}; version 1, before database identities, is refused)"
            ),
        ));
    }
    if header_bytes != HEADER_BYTES_FIELD {
        return Err(corrupted(
            HEADER_HEADER_BYTES_OFFSET,
            format!("header size {header_bytes} is not {SNAPSHOT_HEADER_BYTES}"),
        ));
    }
    if reserved != 0 {
        return Err(corrupted(
            HEADER_RESERVED_OFFSET,
            "reserved header field is not zero",
        ));
    }
    if header.block_count > header.entry_count
        || (header.entry_count > 0 && header.block_count == 0)
    {
        return Err(corrupted(
            HEADER_BLOCK_COUNT_OFFSET,
            format!(
                "{} blocks cannot hold {} entries (every block holds at least one)",
                header.block_count, header.entry_count
            ),
        ));
    }
    let needed_bytes = header
        .entry_count
        .checked_mul(ENTRY_BYTES_MIN)
        .and_then(|bytes| bytes.checked_add(header.block_count.checked_mul(BLOCK_OVERHEAD_BYTES)?))
        .and_then(|bytes| bytes.checked_add(minimum_bytes));
    if needed_bytes.is_none_or(|needed| needed > total_bytes) {
        return Err(corrupted(
            HEADER_ENTRY_COUNT_OFFSET,
            format!(
                "{} entries in {} blocks cannot fit in a file of {total_bytes} bytes",
                header.entry_count, header.block_count
            ),
        ));
    }
    Ok(header)
}

/// Checks the footer's fixed fields against the header (its checksum is checked at the end,
/// once every block checksum is known). Returns the stored footer checksum and the 24 bytes it
/// covers.
fn decode_footer(
    source: &mut dyn SnapshotSource,
    footer_offset: u64,
    header: &SnapshotHeader,
) -> Result<(u32, [u8; FOOTER_CRC_OFFSET]), SnapshotError> {
    let bytes = source.read(footer_offset, SNAPSHOT_FOOTER_BYTES)?;
    let Some(RawFooter {
        magic,
        block_count,
        entry_count,
        stored_crc,
        reserved,
    }) = RawFooter::parse(bytes)
    else {
        return Err(corrupted(footer_offset, "footer is too short"));
    };
    if magic != FOOTER_MAGIC {
        return Err(corrupted(
            footer_offset,
            "bad footer magic: the file is truncated or has bytes after its footer",
        ));
    }
    if block_count != header.block_count {
        return Err(corrupted(
            footer_offset + FOOTER_BLOCK_COUNT_OFFSET,
            format!(
                "footer says {block_count} blocks, header says {}",
                header.block_count
            ),
        ));
    }
    if entry_count != header.entry_count {
        return Err(corrupted(
            footer_offset + FOOTER_ENTRY_COUNT_OFFSET,
            format!(
                "footer says {entry_count} entries, header says {}",
                header.entry_count
            ),
        ));
    }
    if reserved != 0 {
        return Err(corrupted(
            footer_offset + FOOTER_RESERVED_OFFSET,
            "reserved footer field is not zero",
        ));
    }
    let mut covered = [0_u8; FOOTER_CRC_OFFSET];
    if let Some(prefix) = bytes.get(..FOOTER_CRC_OFFSET) {
        covered.copy_from_slice(prefix);
    }
    Ok((stored_crc, covered))
}

/// The one decoder behind [`read_snapshot`] and [`decode_snapshot_bytes`].
fn decode<S: SnapshotSource>(
    source: &mut S,
    visit: &mut dyn FnMut(SnapshotEntry<'_>) -> Result<(), String>,
) -> Result<SnapshotHeader, SnapshotError> {
    let header = decode_header(source)?;
    let total_bytes = source.total_bytes();
    // decode_header checked that the file holds at least a header and a footer.
    let footer_offset = total_bytes - SNAPSHOT_FOOTER_BYTES as u64;
    let (stored_footer_crc, footer_covered) = decode_footer(source, footer_offset, &header)?;

    let mut ordering = KeyOrder::default();
    let mut block_crc_chain = 0_u32;
    let mut entries_seen = 0_u64;
    let mut block_offset = SNAPSHOT_HEADER_BYTES as u64;
    for _ in 0..header.block_count {
        let block = read_block(source, block_offset, footer_offset)?;
        let block_bytes_total = block.len() as u64;
        let verified = verify_and_visit_block(
            block,
            block_offset,
            &header,
            entries_seen,
            &mut ordering,
            visit,
        )?;
        entries_seen += u64::from(verified.entry_count);
        block_crc_chain = crc32c::crc32c_append(block_crc_chain, &verified.crc.to_le_bytes());
        block_offset = block_offset
            .checked_add(block_bytes_total)
            .ok_or_else(|| offset_overflow(block_offset))?;
    }
    if block_offset != footer_offset {
        return Err(corrupted(
            block_offset,
            format!(
                "{} unexpected bytes between the last block and the footer",
                footer_offset.saturating_sub(block_offset)
            ),
        ));
    }
    if entries_seen != header.entry_count {
        return Err(corrupted(
            HEADER_ENTRY_COUNT_OFFSET,
            format!(
                "header says {} entries, blocks hold {entries_seen}",
                header.entry_count
            ),
        ));
    }
    let computed_footer_crc = crc32c::crc32c_append(block_crc_chain, &footer_covered);
    if stored_footer_crc != computed_footer_crc {
        return Err(corrupted(
            footer_offset + FOOTER_CRC_OFFSET as u64,
            format!(
                "footer checksum mismatch (stored {stored_footer_crc:#010x}, computed {computed_footer_crc:#010x})"
            ),
        ));
    }
    Ok(header)
}

/// Reads one whole block (header, entries, checksum) after checking its length against
/// [`BLOCK_BYTES_MAX`] and against the bytes left before the footer.
fn read_block<S: SnapshotSource>(
    source: &mut S,
    block_offset: u64,
    footer_offset: u64,
) -> Result<&[u8], SnapshotError> {
    let space_bytes = footer_offset.saturating_sub(block_offset);
    if space_bytes < BLOCK_OVERHEAD_BYTES {
        return Err(corrupted(
            block_offset,
            "the footer starts where a block was expected: fewer blocks than the header says",
        ));
    }
    let block_header = source.read(block_offset, BLOCK_HEADER_BYTES)?;
    let block_bytes = FieldCursor::new(block_header)
        .u32()
        .ok_or_else(|| corrupted(block_offset, "block header is too short"))?;
    let entries_bytes = block_bytes as usize;
    if entries_bytes > BLOCK_BYTES_MAX {
        return Err(corrupted(
            block_offset,
            format!("block of {block_bytes} bytes exceeds BLOCK_BYTES_MAX ({BLOCK_BYTES_MAX})"),
        ));
    }
    let block_bytes_total = u64::from(block_bytes) + BLOCK_OVERHEAD_BYTES;
    if block_bytes_total > space_bytes {
        return Err(corrupted(
            block_offset,
            format!("block of {block_bytes} bytes runs past the footer ({space_bytes} bytes left)"),
        ));
    }
    source.read(
        block_offset,
        BLOCK_HEADER_BYTES + entries_bytes + BLOCK_CRC_BYTES,
    )
}

/// The last key seen, kept across blocks so ordering is checked over the whole file.
#[derive(Default)]
struct KeyOrder {
    previous_key: Vec<u8>,
    has_previous_key: bool,
}

/// What a verified block contributes to the totals and the footer checksum.
struct VerifiedBlock {
    crc: u32,
    entry_count: u32,
}

/// Verifies one block read by [`read_block`] and hands its entries to `visit`.
fn verify_and_visit_block(
    block: &[u8],
    block_offset: u64,
    header: &SnapshotHeader,
    entries_before: u64,
    ordering: &mut KeyOrder,
    visit: &mut dyn FnMut(SnapshotEntry<'_>) -> Result<(), String>,
) -> Result<VerifiedBlock, SnapshotError> {
    let crc_position = block.len().saturating_sub(BLOCK_CRC_BYTES);
    let (covered, stored_crc_bytes) = block.split_at_checked(crc_position).unwrap_or_default();
    let stored_crc = FieldCursor::new(stored_crc_bytes)
        .u32()
        .ok_or_else(|| corrupted(block_offset, "block is too short"))?;
    let computed_crc = crc32c::crc32c(covered);
    if stored_crc != computed_crc {
        return Err(corrupted(
            block_offset + crc_position as u64,
            format!("block checksum mismatch (stored {stored_crc:#010x}, computed {computed_crc:#010x})"),
        ));
    }
    let mut fields = FieldCursor::new(covered);
    let (Some(_block_bytes), Some(entry_count)) = (fields.u32(), fields.u32()) else {
        return Err(corrupted(block_offset, "block header is too short"));
    };
    let entries_left = header.entry_count.saturating_sub(entries_before);
    if entry_count == 0 || u64::from(entry_count) > entries_left {
        return Err(corrupted(
            block_offset + BLOCK_ENTRY_COUNT_OFFSET,
            format!("block entry count {entry_count} is not in 1..={entries_left}"),
        ));
    }
    let mut previous_in_block: Option<&[u8]> = None;
    for _ in 0..entry_count {
        let entry_offset = block_offset + fields.position as u64;
        let entry = decode_entry(&mut fields, entry_offset)?;
        if entry.version > header.snapshot_version {
            return Err(corrupted(
                entry_offset + ENTRY_VERSION_OFFSET,
                format!(
                    "entry version {} is above the snapshot version {}",
                    entry.version, header.snapshot_version
                ),
            ));
        }
        let ascending = match previous_in_block {
            Some(previous) => previous < entry.key,
            None => !ordering.has_previous_key || ordering.previous_key.as_slice() < entry.key,
        };
        if !ascending {
            return Err(corrupted(entry_offset, "keys out of order"));
        }
        previous_in_block = Some(entry.key);
        visit(entry).map_err(SnapshotError::Rejected)?;
    }
    if fields.remaining() != 0 {
        return Err(corrupted(
            block_offset + fields.position as u64,
            format!("{} bytes after the block's last entry", fields.remaining()),
        ));
    }
    if let Some(last_key) = previous_in_block {
        ordering.previous_key.clear();
        ordering.previous_key.extend_from_slice(last_key);
        ordering.has_previous_key = true;
    }
    Ok(VerifiedBlock {
        crc: stored_crc,
        entry_count,
    })
}

fn decode_entry<'a>(
    fields: &mut FieldCursor<'a>,
    entry_offset: u64,
) -> Result<SnapshotEntry<'a>, SnapshotError> {
    let (Some(key_bytes), Some(value_bytes), Some(version), Some(deadline_millis)) =
        (fields.u32(), fields.u32(), fields.u64(), fields.u64())
    else {
        return Err(corrupted(
            entry_offset,
            "entry header runs past the end of its block",
        ));
    };
    let key_length = key_bytes as usize;
    if !(KEY_BYTES_MIN..=KEY_BYTES_MAX).contains(&key_length) {
        return Err(corrupted(
            entry_offset,
            format!("key of {key_bytes} bytes is outside {KEY_BYTES_MIN}..={KEY_BYTES_MAX}"),
        ));
    }
    let (Some(key), Some(value)) = (fields.take(key_length), fields.take(value_bytes as usize))
    else {
        return Err(corrupted(
            entry_offset,
            format!("entry of {key_bytes}-byte key and {value_bytes}-byte value runs past the end of its block"),
        ));
    };
    Ok(SnapshotEntry {
        key,
        value,
        version,
        deadline_millis,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use cairn_log::fs::DirLock;

    use super::*;

    /// A file system in memory: enough of the trait for the writer and reader.
    #[derive(Debug, Default)]
    struct MemoryFileSystem {
        files: Mutex<HashMap<PathBuf, Arc<Mutex<Vec<u8>>>>>,
    }

    #[derive(Debug)]
    struct MemoryFile {
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    fn poisoned() -> io::Error {
        io::Error::other("lock poisoned")
    }

    impl FileHandle for MemoryFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            let bytes = self.bytes.lock().map_err(|_| poisoned())?;
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let available = bytes.get(start..).unwrap_or_default();
            let count = available.len().min(buf.len());
            buf[..count].copy_from_slice(&available[..count]);
            Ok(count)
        }

        fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
            let mut bytes = self.bytes.lock().map_err(|_| poisoned())?;
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let end = start + buf.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(buf);
            Ok(())
        }

        fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }

        fn set_len(&self, len: u64) -> io::Result<()> {
            let length = usize::try_from(len).map_err(io::Error::other)?;
            self.bytes.lock().map_err(|_| poisoned())?.resize(length, 0);
            Ok(())
        }

        fn len(&self) -> io::Result<u64> {
            Ok(self.bytes.lock().map_err(|_| poisoned())?.len() as u64)
        }
    }

    impl FileSystem for MemoryFileSystem {
        fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
            Ok(())
        }

        fn list_dir(&self, _path: &Path) -> io::Result<Vec<String>> {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }

        fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
            let mut files = self.files.lock().map_err(|_| poisoned())?;
            let bytes = match (mode, files.get(path)) {
                (OpenMode::CreateNew, Some(_)) => {
                    return Err(io::Error::from(io::ErrorKind::AlreadyExists))
                }
                (OpenMode::CreateNew, None) => {
                    let bytes = Arc::new(Mutex::new(Vec::new()));
                    files.insert(path.to_path_buf(), Arc::clone(&bytes));
                    bytes
                }
                (_, Some(bytes)) => Arc::clone(bytes),
                (_, None) => return Err(io::Error::from(io::ErrorKind::NotFound)),
            };
            Ok(Box::new(MemoryFile { bytes }))
        }

        fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }

        fn remove_file(&self, path: &Path) -> io::Result<()> {
            let mut files = self.files.lock().map_err(|_| poisoned())?;
            files
                .remove(path)
                .map(|_| ())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }

        fn sync_dir(&self, _path: &Path) -> io::Result<()> {
            Ok(())
        }

        fn lock_dir(&self, _path: &Path) -> io::Result<Box<dyn DirLock>> {
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    impl MemoryFileSystem {
        fn bytes(&self, path: &Path) -> Vec<u8> {
            let files = self.files.lock().expect("files lock");
            let file = files.get(path).expect("file exists");
            let bytes = file.lock().expect("file lock").clone();
            bytes
        }
    }

    /// An owned copy of a [`SnapshotEntry`].
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct OwnedEntry {
        key: Vec<u8>,
        value: Vec<u8>,
        version: u64,
        deadline_millis: u64,
    }

    impl OwnedEntry {
        fn borrow(&self) -> SnapshotEntry<'_> {
            SnapshotEntry {
                key: &self.key,
                value: &self.value,
                version: self.version,
                deadline_millis: self.deadline_millis,
            }
        }
    }

    const SNAPSHOT_VERSION: u64 = 1_000_000;
    const WAL_LSN: u64 = 77;
    const CREATED_UNIX_MILLIS: u64 = 1_700_000_000_123;
    const DATABASE_ID: DatabaseId = DatabaseId::from_bytes(*b"snapshot-test-id");

    /// Writes `entries` into a fresh in-memory file and returns the header and the file's bytes.
    fn write_snapshot(
        entries: &[OwnedEntry],
        block_target_bytes: usize,
    ) -> (SnapshotHeader, Vec<u8>) {
        let fs = MemoryFileSystem::default();
        let path = Path::new("snapshot");
        let mut writer = SnapshotWriter::create(
            &fs,
            path,
            SNAPSHOT_VERSION,
            WAL_LSN,
            CREATED_UNIX_MILLIS,
            DATABASE_ID,
        )
        .expect("create writer")
        .with_block_target(block_target_bytes);
        for entry in entries {
            writer.push(entry.borrow()).expect("push entry");
        }
        let header = writer.finish().expect("finish snapshot");
        (header, fs.bytes(path))
    }

    fn decode_all(bytes: &[u8]) -> Result<(SnapshotHeader, Vec<OwnedEntry>), SnapshotError> {
        let mut entries = Vec::new();
        let header = decode_snapshot_bytes(bytes, &mut |entry| {
            entries.push(OwnedEntry {
                key: entry.key.to_vec(),
                value: entry.value.to_vec(),
                version: entry.version,
                deadline_millis: entry.deadline_millis,
            });
            Ok(())
        })?;
        Ok((header, entries))
    }

    /// `count` entries with keys `key-00000000`.., values of varied lengths (some empty),
    /// varied versions and deadlines.
    fn sample_entries(count: usize) -> Vec<OwnedEntry> {
        (0..count)
            .map(|index| OwnedEntry {
                key: format!("key-{index:08}").into_bytes(),
                value: vec![u8::try_from(index % 251).expect("below 256"); (index * 37) % 300],
                version: (index as u64 * 13) % SNAPSHOT_VERSION,
                deadline_millis: if index % 3 == 0 {
                    SNAPSHOT_DEADLINE_NONE
                } else {
                    index as u64
                },
            })
            .collect()
    }

    /// Nine small entries; with a 100-byte block target they fill exactly three blocks.
    fn three_block_snapshot() -> (Vec<OwnedEntry>, Vec<u8>) {
        let entries: Vec<OwnedEntry> = (0..9_u8)
            .map(|index| OwnedEntry {
                key: vec![b'a' + index, b'k'],
                value: vec![index; usize::from(index % 4) * 3],
                version: u64::from(index) + 1,
                deadline_millis: if index == 4 {
                    5_000
                } else {
                    SNAPSHOT_DEADLINE_NONE
                },
            })
            .collect();
        let (header, bytes) = write_snapshot(&entries, 100);
        assert_eq!(header.block_count, 3, "the fixture must span three blocks");
        (entries, bytes)
    }

    fn expect_corrupted(
        result: Result<(SnapshotHeader, Vec<OwnedEntry>), SnapshotError>,
        what: &str,
    ) -> u64 {
        match result {
            Err(SnapshotError::Corrupted { offset, .. }) => offset,
            Err(other) => panic!("{what}: expected Corrupted, got {other}"),
            Ok((header, entries)) => {
                panic!("{what}: decoded {header:?} with {} entries", entries.len())
            }
        }
    }

    #[test]
    fn empty_snapshot_round_trips_as_header_and_footer_only() {
        let (header, bytes) = write_snapshot(&[], BLOCK_TARGET_BYTES);
        assert_eq!(bytes.len(), SNAPSHOT_HEADER_BYTES + SNAPSHOT_FOOTER_BYTES);
        assert_eq!(
            header,
            SnapshotHeader {
                snapshot_version: SNAPSHOT_VERSION,
                wal_lsn: WAL_LSN,
                entry_count: 0,
                block_count: 0,
                created_unix_millis: CREATED_UNIX_MILLIS,
                database_id: DATABASE_ID,
            }
        );
        let (decoded, entries) = decode_all(&bytes).expect("decode empty snapshot");
        assert_eq!(decoded, header);
        assert!(entries.is_empty());
    }

    #[test]
    fn one_entry_snapshot_matches_the_documented_layout_byte_for_byte() {
        let entry = OwnedEntry {
            key: b"k1".to_vec(),
            value: b"val".to_vec(),
            version: 9,
            deadline_millis: SNAPSHOT_DEADLINE_NONE,
        };
        let (header, bytes) = write_snapshot(std::slice::from_ref(&entry), BLOCK_TARGET_BYTES);
        assert_eq!(header.entry_count, 1);
        assert_eq!(header.block_count, 1);

        let mut expected = Vec::new();
        expected.extend_from_slice(b"CAIRNSNP");
        expected.extend_from_slice(&2_u32.to_le_bytes());
        expected.extend_from_slice(&80_u32.to_le_bytes());
        expected.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        expected.extend_from_slice(&WAL_LSN.to_le_bytes());
        expected.extend_from_slice(&1_u64.to_le_bytes());
        expected.extend_from_slice(&1_u64.to_le_bytes());
        expected.extend_from_slice(&CREATED_UNIX_MILLIS.to_le_bytes());
        expected.extend_from_slice(b"snapshot-test-id");
        expected.extend_from_slice(&0_u32.to_le_bytes());
        let header_crc = crc32c::crc32c(&expected);
        expected.extend_from_slice(&header_crc.to_le_bytes());
        assert_eq!(expected.len(), 80);

        let block_start = expected.len();
        expected.extend_from_slice(&(24_u32 + 2 + 3).to_le_bytes());
        expected.extend_from_slice(&1_u32.to_le_bytes());
        expected.extend_from_slice(&2_u32.to_le_bytes());
        expected.extend_from_slice(&3_u32.to_le_bytes());
        expected.extend_from_slice(&9_u64.to_le_bytes());
        expected.extend_from_slice(&u64::MAX.to_le_bytes());
        expected.extend_from_slice(b"k1val");
        let block_crc = crc32c::crc32c(&expected[block_start..]);
        expected.extend_from_slice(&block_crc.to_le_bytes());

        let footer_start = expected.len();
        expected.extend_from_slice(b"CAIRNEND");
        expected.extend_from_slice(&1_u64.to_le_bytes());
        expected.extend_from_slice(&1_u64.to_le_bytes());
        let chain = crc32c::crc32c_append(0, &block_crc.to_le_bytes());
        let footer_crc = crc32c::crc32c_append(chain, &expected[footer_start..]);
        expected.extend_from_slice(&footer_crc.to_le_bytes());
        expected.extend_from_slice(&0_u32.to_le_bytes());

        assert_eq!(bytes, expected);
        let (_, entries) = decode_all(&bytes).expect("decode one entry");
        assert_eq!(entries, vec![entry]);
    }

    #[test]
    fn ten_thousand_varied_entries_round_trip_including_one_larger_than_a_block() {
        let mut entries = sample_entries(10_000);
        let large_value_bytes = BLOCK_TARGET_BYTES + 12_345;
        entries[5_000].value = (0..large_value_bytes)
            .map(|index| u8::try_from(index % 256).expect("below 256"))
            .collect();
        entries[5_001].key = vec![b'k'; KEY_BYTES_MAX];
        entries[5_001].key[..12].copy_from_slice(b"key-00005001");
        let (header, bytes) = write_snapshot(&entries, BLOCK_TARGET_BYTES);
        assert_eq!(header.entry_count, 10_000);
        assert!(header.block_count >= 7, "{} blocks", header.block_count);

        let (decoded, decoded_entries) = decode_all(&bytes).expect("decode 10,000 entries");
        assert_eq!(decoded, header);
        assert_eq!(decoded_entries.len(), entries.len());
        assert_eq!(decoded_entries, entries);
        assert!(entries.iter().any(|entry| entry.value.is_empty()));
    }

    #[test]
    fn read_snapshot_and_read_header_agree_with_the_bytes_decoder_through_a_real_file() {
        let dir = std::env::temp_dir().join(format!("cairn-snapshot-file-{}", std::process::id()));
        let fs = cairn_log::fs::StdFileSystem;
        fs.create_dir_all(&dir).expect("create dir");
        let path = dir.join("snapshot.tmp");
        let _ = std::fs::remove_file(&path);
        let entries = sample_entries(3_000);
        let mut writer = SnapshotWriter::create(
            &fs,
            &path,
            SNAPSHOT_VERSION,
            WAL_LSN,
            CREATED_UNIX_MILLIS,
            DATABASE_ID,
        )
        .expect("create writer")
        .with_block_target(4_096);
        for entry in &entries {
            writer.push(entry.borrow()).expect("push");
        }
        let written = writer.finish().expect("finish");
        assert!(written.block_count > 10);

        assert_eq!(read_header(&fs, &path).expect("read header"), written);
        let mut visited = Vec::new();
        let read = read_snapshot(&fs, &path, &mut |entry| {
            visited.push((
                entry.key.to_vec(),
                entry.value.to_vec(),
                entry.version,
                entry.deadline_millis,
            ));
            Ok(())
        })
        .expect("read snapshot");
        assert_eq!(read, written);
        let expected: Vec<_> = entries
            .iter()
            .map(|entry| {
                (
                    entry.key.clone(),
                    entry.value.clone(),
                    entry.version,
                    entry.deadline_millis,
                )
            })
            .collect();
        assert_eq!(visited, expected);

        let create_again = SnapshotWriter::create(&fs, &path, 1, 1, 1, DATABASE_ID)
            .expect_err("the name is taken");
        assert!(
            matches!(create_again, SnapshotError::Io { .. }),
            "{create_again}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn header_fields_are_stored_and_read_back() {
        let (entries, bytes) = three_block_snapshot();
        let fs = MemoryFileSystem::default();
        let path = Path::new("copy");
        fs.open(path, OpenMode::CreateNew)
            .expect("create copy")
            .write_all_at(&bytes, 0)
            .expect("write copy");
        let header = read_header(&fs, path).expect("read header");
        assert_eq!(
            header,
            SnapshotHeader {
                snapshot_version: SNAPSHOT_VERSION,
                wal_lsn: WAL_LSN,
                entry_count: 9,
                block_count: 3,
                created_unix_millis: CREATED_UNIX_MILLIS,
                database_id: DATABASE_ID,
            }
        );
        assert_eq!(&bytes[..8], b"CAIRNSNP");
        assert_eq!(&bytes[bytes.len() - 32..bytes.len() - 24], b"CAIRNEND");
        let (decoded, decoded_entries) = decode_all(&bytes).expect("decode");
        assert_eq!(decoded, header);
        assert_eq!(decoded_entries, entries);
    }

    #[test]
    fn every_single_bit_flip_is_reported_as_corrupted() {
        let (_, bytes) = three_block_snapshot();
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let offset = expect_corrupted(decode_all(&damaged), &format!("bit {bit} flipped"));
            assert!(
                offset <= bytes.len() as u64,
                "bit {bit}: offset {offset} past the end"
            );
        }
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_reported_as_corrupted() {
        let (_, bytes) = three_block_snapshot();
        for length in 0..bytes.len() {
            expect_corrupted(
                decode_all(&bytes[..length]),
                &format!("truncated to {length} bytes"),
            );
        }
        let mut extended = bytes.clone();
        extended.push(0);
        expect_corrupted(decode_all(&extended), "one byte appended");
        let mut doubled_footer = bytes.clone();
        doubled_footer.extend_from_slice(&bytes[bytes.len() - SNAPSHOT_FOOTER_BYTES..]);
        expect_corrupted(decode_all(&doubled_footer), "footer repeated");
    }

    #[test]
    fn a_zeroed_header_from_an_unfinished_writer_is_corrupted_at_offset_zero() {
        let fs = MemoryFileSystem::default();
        let path = Path::new("unfinished");
        let mut writer = SnapshotWriter::create(
            &fs,
            path,
            SNAPSHOT_VERSION,
            WAL_LSN,
            CREATED_UNIX_MILLIS,
            DATABASE_ID,
        )
        .expect("create")
        .with_block_target(100);
        for entry in &three_block_snapshot().0 {
            writer.push(entry.borrow()).expect("push");
        }
        // A crash before finish: the blocks are written, the header is still zeros.
        drop(writer);
        let bytes = fs.bytes(path);
        assert!(bytes.len() > SNAPSHOT_HEADER_BYTES);
        assert!(bytes[..SNAPSHOT_HEADER_BYTES].iter().all(|&byte| byte == 0));
        assert_eq!(expect_corrupted(decode_all(&bytes), "unfinished"), 0);
        let error = read_header(&fs, path).expect_err("unfinished header");
        assert!(
            matches!(error, SnapshotError::Corrupted { offset: 0, .. }),
            "{error}"
        );

        // A finished file whose header is zeroed again is refused the same way.
        let (_, mut finished) = three_block_snapshot();
        finished[..SNAPSHOT_HEADER_BYTES].fill(0);
        assert_eq!(expect_corrupted(decode_all(&finished), "zeroed header"), 0);
    }

    #[test]
    fn keys_out_of_order_or_repeated_are_refused_and_nothing_is_written() {
        let fs = MemoryFileSystem::default();
        let path = Path::new("order");
        let mut writer = SnapshotWriter::create(&fs, path, 10, 0, 0, DATABASE_ID).expect("create");
        let entry = |key: &'static [u8]| SnapshotEntry {
            key,
            value: b"v",
            version: 1,
            deadline_millis: SNAPSHOT_DEADLINE_NONE,
        };
        writer.push(entry(b"b")).expect("first key");
        let too_long = vec![b'z'; KEY_BYTES_MAX + 1];
        for bad_key in [&b"a"[..], b"b", b"", &too_long] {
            let error = writer
                .push(SnapshotEntry {
                    key: bad_key,
                    ..entry(b"x")
                })
                .expect_err("bad key must be refused");
            assert!(matches!(error, SnapshotError::Corrupted { .. }), "{error}");
        }
        let order_error = writer.push(entry(b"a")).expect_err("out of order");
        assert!(
            order_error.to_string().contains("keys out of order"),
            "{order_error}"
        );
        let newer = writer
            .push(SnapshotEntry {
                version: 11,
                ..entry(b"c")
            })
            .expect_err("version above the snapshot");
        assert!(matches!(newer, SnapshotError::Corrupted { .. }), "{newer}");
        // The refused entries left no trace: the writer goes on and the file holds two entries.
        writer.push(entry(b"c")).expect("next key in order");
        let header = writer.finish().expect("finish");
        assert_eq!(header.entry_count, 2);
        let (_, entries) = decode_all(&fs.bytes(path)).expect("decode");
        let keys: Vec<&[u8]> = entries.iter().map(|entry| entry.key.as_slice()).collect();
        assert_eq!(keys, vec![&b"b"[..], b"c"]);
    }

    #[test]
    fn an_error_from_visit_stops_the_load_as_rejected() {
        let (_, bytes) = three_block_snapshot();
        let mut visited = 0;
        let error = decode_snapshot_bytes(&bytes, &mut |_| {
            visited += 1;
            if visited == 5 {
                Err("out of memory budget".to_owned())
            } else {
                Ok(())
            }
        })
        .expect_err("visit rejects");
        assert_eq!(visited, 5);
        match error {
            SnapshotError::Rejected(reason) => assert_eq!(reason, "out of memory budget"),
            other => panic!("expected Rejected, got {other}"),
        }
    }

    /// Reseals a block's and the footer's checksums after a test edits a block, so the decoder's
    /// structural checks (not only the checksums) are exercised.
    fn reseal(bytes: &mut [u8], block_offsets: &[usize]) {
        let mut chain = 0;
        for &offset in block_offsets {
            let entries_bytes =
                u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
            let crc_offset = offset + BLOCK_HEADER_BYTES + entries_bytes;
            let crc = crc32c::crc32c(&bytes[offset..crc_offset]);
            bytes[crc_offset..crc_offset + 4].copy_from_slice(&crc.to_le_bytes());
            chain = crc32c::crc32c_append(chain, &crc.to_le_bytes());
        }
        let footer = bytes.len() - SNAPSHOT_FOOTER_BYTES;
        let footer_crc = crc32c::crc32c_append(chain, &bytes[footer..footer + 24]);
        bytes[footer + 24..footer + 28].copy_from_slice(&footer_crc.to_le_bytes());
    }

    #[test]
    fn resealed_structural_damage_is_still_caught() {
        let entries = vec![
            OwnedEntry {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                version: 1,
                deadline_millis: 0,
            },
            OwnedEntry {
                key: b"b".to_vec(),
                value: b"2".to_vec(),
                version: 2,
                deadline_millis: 0,
            },
        ];
        let (_, bytes) = write_snapshot(&entries, BLOCK_TARGET_BYTES);
        let block = SNAPSHOT_HEADER_BYTES;
        let first_key = block + BLOCK_HEADER_BYTES + ENTRY_HEADER_BYTES;
        let second_key = first_key + 2 + ENTRY_HEADER_BYTES;
        assert_eq!(bytes[first_key], b'a');
        assert_eq!(bytes[second_key], b'b');

        let mut swapped = bytes.clone();
        swapped[first_key] = b'b';
        swapped[second_key] = b'a';
        reseal(&mut swapped, &[block]);
        assert_eq!(
            expect_corrupted(decode_all(&swapped), "swapped keys"),
            (second_key - ENTRY_HEADER_BYTES) as u64
        );

        let mut repeated = bytes.clone();
        repeated[second_key] = b'a';
        reseal(&mut repeated, &[block]);
        expect_corrupted(decode_all(&repeated), "repeated key");

        let mut newer = bytes.clone();
        let version_offset = block + BLOCK_HEADER_BYTES + 8;
        newer[version_offset..version_offset + 8]
            .copy_from_slice(&(SNAPSHOT_VERSION + 1).to_le_bytes());
        reseal(&mut newer, &[block]);
        expect_corrupted(decode_all(&newer), "version above the snapshot");

        let mut fewer = bytes.clone();
        fewer[block + 4] = 1;
        reseal(&mut fewer, &[block]);
        expect_corrupted(decode_all(&fewer), "block claims one entry of two");

        let mut huge_key = bytes.clone();
        let key_bytes_offset = block + BLOCK_HEADER_BYTES;
        huge_key[key_bytes_offset..key_bytes_offset + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut huge_key, &[block]);
        expect_corrupted(decode_all(&huge_key), "key length u32::MAX");

        let mut huge_block = bytes.clone();
        huge_block[block..block + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            expect_corrupted(decode_all(&huge_block), "block length u32::MAX"),
            block as u64
        );
    }

    #[test]
    fn random_multi_byte_damage_never_panics_and_never_decodes() {
        let (_, bytes) = three_block_snapshot();
        // xorshift64, seeded, so a failure reproduces.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..5_000 {
            let mut damaged = bytes.clone();
            for _ in 0..=(next() % 4) {
                let position = usize::try_from(next() % damaged.len() as u64).expect("fits");
                damaged[position] = u8::try_from(next() & 0xff).expect("masked");
            }
            if damaged == bytes {
                continue;
            }
            expect_corrupted(decode_all(&damaged), &format!("round {round}"));
        }
    }
}

//! The snapshot file's layout: every field's offset and size, the constants that bound them,
//! the types the writer and reader exchange ([`SnapshotHeader`], [`SnapshotEntry`],
//! [`SnapshotError`]) and the byte-level codecs of the header, the footer, the block header
//! and the entry header. Encoding here is total (every input fits, by the limits the writer
//! checks first); parsing never reads past the slice it is given and judges nothing: the
//! checks of what was parsed live in the reader.

use std::io;

use cairn_log::DatabaseId;

use crate::limits::{
    KEY_BYTES_MAX, KEY_BYTES_MIN, SNAPSHOT_BLOCK_BYTES_MAX, VALUE_BYTES_MAX_CEILING,
};

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

/// [`SNAPSHOT_HEADER_BYTES`] as stored in the header's `header_bytes` field.
#[expect(clippy::cast_possible_truncation, reason = "80 fits in a u32")]
pub(super) const HEADER_BYTES_FIELD: u32 = SNAPSHOT_HEADER_BYTES as u32;

/// The header's first bytes.
pub(super) const HEADER_MAGIC: [u8; 8] = *b"CAIRNSNP";

/// The footer's first bytes.
pub(super) const FOOTER_MAGIC: [u8; 8] = *b"CAIRNEND";

/// Header field offsets, for error reports (see the format above).
pub(super) const HEADER_FORMAT_VERSION_OFFSET: u64 = 8;
pub(super) const HEADER_HEADER_BYTES_OFFSET: u64 = 12;
pub(super) const HEADER_ENTRY_COUNT_OFFSET: u64 = 32;
pub(super) const HEADER_BLOCK_COUNT_OFFSET: u64 = 40;
pub(super) const HEADER_DATABASE_ID_OFFSET: usize = 56;
pub(super) const HEADER_RESERVED_OFFSET: u64 = 72;
pub(super) const HEADER_CRC_OFFSET: usize = 76;

/// Footer field offsets, relative to the footer's start.
pub(super) const FOOTER_BLOCK_COUNT_OFFSET: u64 = 8;
pub(super) const FOOTER_ENTRY_COUNT_OFFSET: u64 = 16;
pub(super) const FOOTER_CRC_OFFSET: usize = 24;
pub(super) const FOOTER_RESERVED_OFFSET: u64 = 28;

/// `block_bytes` and `entry_count` before a block's entries.
pub(super) const BLOCK_HEADER_BYTES: usize = 8;

/// Offset of a block's `entry_count` within the block.
pub(super) const BLOCK_ENTRY_COUNT_OFFSET: u64 = 4;

/// The checksum after a block's entries.
pub(super) const BLOCK_CRC_BYTES: usize = 4;

/// `key_bytes`, `value_bytes`, `version` and `deadline_millis` before an entry's key.
pub(super) const ENTRY_HEADER_BYTES: usize = 24;

/// Offset of an entry's `version` within the entry.
pub(super) const ENTRY_VERSION_OFFSET: u64 = 8;

/// The smallest entry (header plus a one-byte key and an empty value); used to check the
/// header's counts against the file's size, so a caller can pre-size from them safely.
pub(super) const ENTRY_BYTES_MIN: u64 = (ENTRY_HEADER_BYTES + KEY_BYTES_MIN) as u64;

// One entry of the largest key and value fits in one block, and every block length fits the
// u32 `block_bytes` field.
const _: () = assert!(
    ENTRY_HEADER_BYTES + KEY_BYTES_MAX + VALUE_BYTES_MAX_CEILING <= SNAPSHOT_BLOCK_BYTES_MAX
);
const _: () = assert!(SNAPSHOT_BLOCK_BYTES_MAX <= u32::MAX as usize);

/// The smallest block around its entries.
pub(super) const BLOCK_OVERHEAD_BYTES: u64 = (BLOCK_HEADER_BYTES + BLOCK_CRC_BYTES) as u64;

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
    /// The key, 1 ..= [`KEY_BYTES_MAX`](crate::limits::KEY_BYTES_MAX) bytes.
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

pub(super) fn corrupted(offset: u64, reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupted {
        offset,
        reason: reason.into(),
    }
}

pub(super) fn io_error(operation: &'static str) -> impl FnOnce(io::Error) -> SnapshotError {
    move |source| SnapshotError::Io { operation, source }
}

pub(super) fn offset_overflow(offset: u64) -> SnapshotError {
    corrupted(offset, "offset arithmetic overflowed")
}

pub(super) fn encode_block_header(
    entries_bytes: usize,
    entry_count: u32,
    block_offset: u64,
) -> Result<[u8; BLOCK_HEADER_BYTES], SnapshotError> {
    // The writer's limits keep every block below SNAPSHOT_BLOCK_BYTES_MAX; check rather than assume.
    let block_bytes = u32::try_from(entries_bytes)
        .ok()
        .filter(|_| entries_bytes <= SNAPSHOT_BLOCK_BYTES_MAX)
        .ok_or_else(|| {
            corrupted(
                block_offset,
                format!("block of {entries_bytes} bytes exceeds SNAPSHOT_BLOCK_BYTES_MAX"),
            )
        })?;
    let mut encoded = [0; BLOCK_HEADER_BYTES];
    encoded[..4].copy_from_slice(&block_bytes.to_le_bytes());
    encoded[4..].copy_from_slice(&entry_count.to_le_bytes());
    Ok(encoded)
}

pub(super) fn encode_entry_header(out: &mut Vec<u8>, entry: &SnapshotEntry<'_>) {
    // Both lengths were checked against KEY_BYTES_MAX and VALUE_BYTES_MAX_CEILING, which fit in
    // u32.
    let key_bytes = u32::try_from(entry.key.len()).unwrap_or(u32::MAX);
    let value_bytes = u32::try_from(entry.value.len()).unwrap_or(u32::MAX);
    let mut encoded = [0_u8; ENTRY_HEADER_BYTES];
    encoded[..4].copy_from_slice(&key_bytes.to_le_bytes());
    encoded[4..8].copy_from_slice(&value_bytes.to_le_bytes());
    encoded[8..16].copy_from_slice(&entry.version.to_le_bytes());
    encoded[16..].copy_from_slice(&entry.deadline_millis.to_le_bytes());
    out.extend_from_slice(&encoded);
}

pub(super) fn encode_header(header: &SnapshotHeader) -> [u8; SNAPSHOT_HEADER_BYTES] {
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

pub(super) fn encode_footer(
    header: &SnapshotHeader,
    block_crc_chain: u32,
) -> [u8; SNAPSHOT_FOOTER_BYTES] {
    let mut encoded = [0_u8; SNAPSHOT_FOOTER_BYTES];
    encoded[..8].copy_from_slice(&FOOTER_MAGIC);
    encoded[8..16].copy_from_slice(&header.block_count.to_le_bytes());
    encoded[16..24].copy_from_slice(&header.entry_count.to_le_bytes());
    let footer_crc = crc32c::crc32c_append(block_crc_chain, &encoded[..FOOTER_CRC_OFFSET]);
    encoded[FOOTER_CRC_OFFSET..28].copy_from_slice(&footer_crc.to_le_bytes());
    // Bytes 28..32 are the reserved field, zero.
    encoded
}

/// Reads little-endian fields one after another, never past the end of its slice.
pub(super) struct FieldCursor<'a> {
    bytes: &'a [u8],
    pub(super) position: usize,
}

impl<'a> FieldCursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    pub(super) fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(length)?;
        let taken = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(taken)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }
}

/// The header's fields as stored, before any check.
pub(super) struct RawHeader<'a> {
    pub(super) magic: &'a [u8],
    pub(super) format_version: u32,
    pub(super) header_bytes: u32,
    pub(super) header: SnapshotHeader,
    pub(super) reserved: u32,
    pub(super) stored_crc: u32,
}

impl<'a> RawHeader<'a> {
    pub(super) fn parse(bytes: &'a [u8]) -> Option<Self> {
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
pub(super) struct RawFooter<'a> {
    pub(super) magic: &'a [u8],
    pub(super) block_count: u64,
    pub(super) entry_count: u64,
    pub(super) stored_crc: u32,
    pub(super) reserved: u32,
}

impl<'a> RawFooter<'a> {
    pub(super) fn parse(bytes: &'a [u8]) -> Option<Self> {
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

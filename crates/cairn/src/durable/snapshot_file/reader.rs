//! The snapshot reader: one decoder, over a file read a block at a time or over bytes in
//! memory, that verifies everything before it trusts it (the header and footer, every block
//! checksum, key order across the whole file, the counts, the footer's checksum chain and the
//! file's exact end). Every length read from the file is checked against the bytes left and
//! against [`SNAPSHOT_BLOCK_BYTES_MAX`] before anything is allocated; no input makes it panic.

use std::io;
use std::path::Path;

use cairn_log::fs::{read_exact_at, FileHandle, FileSystem, OpenMode};

use super::format::{
    corrupted, io_error, offset_overflow, FieldCursor, RawFooter, RawHeader, SnapshotEntry,
    SnapshotError, SnapshotHeader, BLOCK_CRC_BYTES, BLOCK_ENTRY_COUNT_OFFSET, BLOCK_HEADER_BYTES,
    BLOCK_OVERHEAD_BYTES, ENTRY_BYTES_MIN, ENTRY_VERSION_OFFSET, FOOTER_BLOCK_COUNT_OFFSET,
    FOOTER_CRC_OFFSET, FOOTER_ENTRY_COUNT_OFFSET, FOOTER_MAGIC, FOOTER_RESERVED_OFFSET,
    HEADER_BLOCK_COUNT_OFFSET, HEADER_BYTES_FIELD, HEADER_CRC_OFFSET, HEADER_ENTRY_COUNT_OFFSET,
    HEADER_FORMAT_VERSION_OFFSET, HEADER_HEADER_BYTES_OFFSET, HEADER_MAGIC, HEADER_RESERVED_OFFSET,
    SNAPSHOT_FOOTER_BYTES, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_BYTES,
};
use crate::limits::{KEY_BYTES_MAX, KEY_BYTES_MIN, SNAPSHOT_BLOCK_BYTES_MAX};

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
            // Exact: the decoder already bounded `length` by the file's size and SNAPSHOT_BLOCK_BYTES_MAX.
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
/// `SNAPSHOT_BLOCK_BYTES_MAX` and against the bytes left before the footer.
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
    if entries_bytes > SNAPSHOT_BLOCK_BYTES_MAX {
        return Err(corrupted(
            block_offset,
            format!("block of {block_bytes} bytes exceeds SNAPSHOT_BLOCK_BYTES_MAX ({SNAPSHOT_BLOCK_BYTES_MAX})"),
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

//! The snapshot writer: streams entries, in strictly ascending key order, into checksummed
//! blocks of a new file, and writes the footer and then the header last, so that a file cut
//! short by a crash never passes the header check. It refuses (and writes nothing for) an
//! entry that the reader would refuse, and after an I/O error it refuses every further call.

use std::io;
use std::path::Path;

use cairn_log::fs::{FileHandle, FileSystem, OpenMode};
use cairn_log::DatabaseId;

use super::format::{
    corrupted, encode_block_header, encode_entry_header, encode_footer, encode_header, io_error,
    offset_overflow, SnapshotEntry, SnapshotError, SnapshotHeader, BLOCK_CRC_BYTES,
    BLOCK_HEADER_BYTES, BLOCK_TARGET_BYTES, ENTRY_HEADER_BYTES, SNAPSHOT_HEADER_BYTES,
};
use crate::limits::{KEY_BYTES_MAX, KEY_BYTES_MIN, VALUE_BYTES_MAX_CEILING};

/// Streams entries, in strictly ascending key order, into a new snapshot file.
///
/// Memory is one block buffer (`BLOCK_TARGET_BYTES` plus a few bytes) and a copy of the last
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
    pub(super) fn with_block_target(mut self, block_target_bytes: usize) -> Self {
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
        if entry.value.len() > VALUE_BYTES_MAX_CEILING {
            return Err(corrupted(
                entry_offset,
                format!(
                    "value of {} bytes exceeds VALUE_BYTES_MAX_CEILING ({VALUE_BYTES_MAX_CEILING})",
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

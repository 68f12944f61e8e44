//! The checkpoint (snapshot) file: every live entry of one MVCC version, in key order, in
//! checksummed blocks, so that recovery can bulk-build the index and replay the WAL only from
//! the snapshot's LSN.
//!
//! [`SnapshotWriter`] streams entries into blocks of about
//! [`BLOCK_TARGET_BYTES`](format::BLOCK_TARGET_BYTES) and writes the header last: until
//! [`SnapshotWriter::finish`] has written it, bytes 0..80 are zeros, which never pass the
//! header checksum, so a file cut short by a crash can never be mistaken for a complete
//! snapshot. `finish` syncs the file's data but does not rename it; installing
//! it (rename, directory sync) is the caller's job.
//!
//! [`read_snapshot`] and [`decode_snapshot_bytes`] share one decoder that verifies everything
//! before it trusts it: the header checksum, every block checksum, strictly ascending keys
//! across the whole file, the entry count of every block, the block and entry totals against
//! the header and the footer, the footer checksum (which chains every block checksum), and that
//! the file ends exactly after the footer. Every length read from the file is checked against
//! [`SNAPSHOT_BLOCK_BYTES_MAX`](crate::limits::SNAPSHOT_BLOCK_BYTES_MAX) and against the bytes
//! actually left before anything is allocated, and no input makes it panic. Any damage is reported as [`SnapshotError::Corrupted`] with the byte
//! offset where it was found.
//!
//! Trade-offs: the decoder streams, one block at a time, so its memory is bounded by the largest
//! block, but it hands entries to the caller's `visit` as it verifies them; damage found later
//! in the file is reported after earlier entries were visited, so a caller must discard what it
//! built when the load fails. The per-block and footer checksums detect damage, they do not
//! repair it: recovery falls back to the previous snapshot.
//!
//! The module is split along those lines: `format` holds the layout, its constants and the
//! header and footer codecs; `writer` the [`SnapshotWriter`]; `reader` the verifying decoder.

mod format;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use format::{
    SnapshotEntry, SnapshotError, SnapshotHeader, SNAPSHOT_DEADLINE_NONE, SNAPSHOT_FORMAT_VERSION,
};
#[cfg_attr(not(feature = "fuzzing"), allow(unused_imports))]
pub use reader::decode_snapshot_bytes;
pub use reader::{read_header, read_snapshot};
pub use writer::SnapshotWriter;

//! The on-disk format of the log: every layout constant in one place.
//!
//! A log is a directory of segment files. Each segment opens with a fixed 64-byte header and
//! then holds frames back to back; the preallocated space after the last frame is zeros. Both
//! layouts are repeated byte by byte in the comment below, and the unit tests of `frame` and
//! `segment` pin them with exact bytes, so a change here that is not a deliberate format change
//! fails a test. Everything is little-endian.
//!
//! Every segment header carries the identity of the database it belongs to
//! ([`crate::DatabaseId`]), so a segment copied in from another database is recognised and
//! refused instead of replayed. Its flags word says whether the file is recycled: a retired
//! segment given a new header and written over from the start, so that appends go to blocks
//! already allocated instead of holes (see `crate::segment`). Builds from before the flag
//! required the word to be zero, so they refuse a recycled segment instead of misreading it.

// Segment file `{first_lsn:020}.wal`, little-endian:
//
//   offset  bytes  field
//        0      8  magic            b"CAIRNWAL"
//        8      4  format_version   u32 = SEGMENT_FORMAT_VERSION (2)
//       12      4  header_bytes     u32 = SEGMENT_HEADER_BYTES (64)
//       16      8  segment_number   u64, grows by at least 1 with every segment created
//       24      8  first_lsn        u64, LSN of the segment's first frame (also in the name)
//       32      8  segment_bytes    u64, the size the file was preallocated to
//       40     16  database_id      the identity of the database the segment belongs to
//       56      4  flags            u32, bit 0 = SEGMENT_FLAG_RECYCLED; other bits 0
//       60      4  header_crc       u32, crc32c of bytes 0..60
//       64      .  frames, back to back; after the last frame: zeros in a new segment, the
//                  file's previous content (stale frames, all with LSNs below first_lsn, and
//                  their fragments) in a recycled one
//
// Frame, little-endian (`len` counts the payload only):
//
//   offset    bytes     field
//        0        4     len              u32, payload bytes: 16 ..= frame_payload_bytes_max
//        4        1     record_type      u8, never 0 (so zeroed space never decodes)
//        5        1     format_version   u8 = FRAME_FORMAT_VERSION (1)
//        6        8     lsn              u64  \
//       14        8     version          u64   > payload (len bytes): 16-byte record prefix,
//       22  len - 16    body                  /  then the caller's body
//  6 + len        4     crc              u32, crc32c of bytes 0 .. 6 + len

/// Bytes before a frame's payload: `len u32 | record_type u8 | format_version u8`.
pub const FRAME_HEADER_BYTES: usize = 6;
/// Bytes after a frame's payload: the `crc32c u32`.
pub const FRAME_TRAILER_BYTES: usize = 4;
/// Bytes at the start of every payload: `lsn u64 | version u64`.
pub const RECORD_PREFIX_BYTES: usize = 16;
/// Bytes of a frame around its body (header, record prefix, trailer): 26.
pub const FRAME_OVERHEAD_BYTES: usize =
    FRAME_HEADER_BYTES + RECORD_PREFIX_BYTES + FRAME_TRAILER_BYTES;
/// The frame format written and accepted by this build.
pub const FRAME_FORMAT_VERSION: u8 = 1;
/// Hard ceiling on a frame's payload (`len`); `LogOptions::frame_payload_bytes_max` can only
/// lower it. It keeps `len` far from `u32::MAX` and bounds what one frame can make a reader
/// allocate.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 1 << 31;

/// Offset of a frame's `len` field.
pub const FRAME_LEN_OFFSET: usize = 0;
/// Offset of a frame's `record_type` field.
pub const FRAME_RECORD_TYPE_OFFSET: usize = 4;
/// Offset of a frame's `format_version` field.
pub const FRAME_FORMAT_VERSION_OFFSET: usize = 5;
/// Offset of a frame's `lsn` field (the start of the payload).
pub const FRAME_LSN_OFFSET: usize = 6;
/// Offset of a frame's `version` field.
pub const FRAME_VERSION_OFFSET: usize = 14;
/// Offset of a frame's body.
pub const FRAME_BODY_OFFSET: usize = 22;

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CAIRNWAL";
/// The segment header format written and accepted by this build. Version 1 (48 bytes, no
/// database identity) is refused with a message naming both versions.
pub const SEGMENT_FORMAT_VERSION: u32 = 2;
/// Bytes of the segment header; frames start at this offset.
pub const SEGMENT_HEADER_BYTES: u64 = 64;
/// [`SEGMENT_HEADER_BYTES`] as a buffer length.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Offset of the header's `format_version` field.
pub const SEGMENT_FORMAT_VERSION_OFFSET: usize = 8;
/// Offset of the header's `header_bytes` field.
pub const SEGMENT_HEADER_BYTES_OFFSET: usize = 12;
/// Offset of the header's `segment_number` field.
pub const SEGMENT_NUMBER_OFFSET: usize = 16;
/// Offset of the header's `first_lsn` field.
pub const SEGMENT_FIRST_LSN_OFFSET: usize = 24;
/// Offset of the header's `segment_bytes` field.
pub const SEGMENT_BYTES_OFFSET: usize = 32;
/// Offset of the header's `database_id` field (16 bytes).
pub const SEGMENT_DATABASE_ID_OFFSET: usize = 40;
/// Offset of the header's flags word.
pub const SEGMENT_FLAGS_OFFSET: usize = 56;
/// Header flag: the file is a recycled segment, so stale frames of its previous life may
/// follow its last frame.
pub const SEGMENT_FLAG_RECYCLED: u32 = 1;
/// Every flag this build knows; a header with any other bit set is refused.
pub const SEGMENT_FLAGS_KNOWN: u32 = SEGMENT_FLAG_RECYCLED;
/// Offset of the header's CRC; it covers every byte before it.
pub const SEGMENT_HEADER_CRC_OFFSET: usize = 60;

/// Suffix of a segment file: `{first_lsn:020}.wal`.
pub const SEGMENT_FILE_SUFFIX: &str = ".wal";
/// Digits of the zero-padded first LSN in a segment file name (`u64::MAX` has 20).
pub const SEGMENT_NAME_DIGITS: usize = 20;
/// Suffix of a segment still being created; such leftovers are removed at open.
pub const SEGMENT_TEMP_SUFFIX: &str = ".wal.tmp";
/// Suffix of a retired segment kept for recycling (`{first_lsn:020}.wal.free`); never read,
/// only renamed back into a new segment or removed.
pub const SEGMENT_FREE_SUFFIX: &str = ".wal.free";
/// Suffix given to segments that `RecoveryMode::Salvage` set aside; never read again.
pub const SEGMENT_DAMAGED_SUFFIX: &str = ".wal.damaged";

/// Converts a length or offset to `u64`; every `usize` fits on supported targets, and the
/// fallback saturates instead of panicking.
pub(crate) fn to_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Converts a file offset or length to `usize`, saturating (a saturated value then fails the
/// bounds checks it feeds instead of wrapping).
pub(crate) fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Reads a little-endian `u32` at `offset`, or `None` if `bytes` is too short.
pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// Reads a little-endian `u64` at `offset`, or `None` if `bytes` is too short.
pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let field = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

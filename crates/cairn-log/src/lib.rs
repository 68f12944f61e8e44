//! `cairn-log`: the segmented append-only log under Cairn's engine: the frame codec,
//! preallocated segments, leader/follower group commit, tail recovery, and the narrow file-I/O
//! trait every file access goes through.
//!
//! What it guarantees: a frame reported durable survives a crash; what recovery returns is
//! always a gap-free prefix of what was appended; a torn tail (the half-written end a crash
//! leaves) is cut off before anything new is appended, while damage that a crash cannot
//! explain is reported as [`LogError::Corrupted`] naming the file and offset (or, in
//! [`RecoveryMode::Salvage`], set aside and reported). No input and no file content makes it
//! panic or allocate beyond the configured frame limit.
//!
//! Modules: [`mod@format`] (every layout constant, byte by byte), [`frame`] (pure codec),
//! [`identity`] (the database id every segment header carries),
//! [`segment`] (header, naming, creation), [`reader`] (sequential reading, classification,
//! verification), [`log`] (appends, group commit, recovery at open), [`options`], [`fs`], and
//! [`stream`] (durable message streams on top of the log).

pub mod error;
pub mod format;
pub mod frame;
pub mod fs;
pub mod identity;
pub mod log;
pub mod options;
pub mod reader;
pub mod segment;
pub mod stream;

pub use error::LogError;
pub use format::{
    FRAME_FORMAT_VERSION, FRAME_HEADER_BYTES, FRAME_OVERHEAD_BYTES, FRAME_PAYLOAD_BYTES_MAX,
    FRAME_TRAILER_BYTES, RECORD_PREFIX_BYTES, SEGMENT_HEADER_BYTES,
};
pub use frame::{decode_frame, encode_frame, encoded_frame_bytes, Decoded, FrameRef};
pub use fs::{read_exact_at, DirLock, FileHandle, FileSystem, OpenMode, StdFileSystem};
pub use identity::DatabaseId;
pub use log::{Log, LogStats, ReplayReport};
#[cfg(feature = "sabotage")]
pub use options::Sabotage;
pub use options::{FlushWaker, LogOptions, RecoveryMode, SyncPolicy, RECYCLE_SEGMENTS_MAX};
pub use reader::{
    verify_dir, Corruption, Dropped, ForeignSegment, FrameStop, SegmentReader, StopKind, TailScan,
    TornTail, VerifiedSegment, VerifyReport,
};
pub use segment::{list_segments, segment_file_name, SegmentHeader, SegmentInfo};
pub use stream::{Clock, Message, StoredMessage, StreamError, StreamInfo, StreamOptions, Streams};

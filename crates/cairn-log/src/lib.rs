//! `cairn-log`: the segmented append-only log (frame codec, preallocated segments, group
//! commit, tail recovery, and the narrow file-I/O trait every file access goes through).

pub mod fs;

pub use fs::{read_exact_at, DirLock, FileHandle, FileSystem, OpenMode, StdFileSystem};

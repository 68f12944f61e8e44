//! `FaultFs`: an in-memory [`FileSystem`] that models what survives a crash and fails any call
//! on demand, so that tests can cut the power at every I/O point of a workload.
//!
//! The model follows the contract of `cairn_log::fs`:
//! - Every file (inode) has `current` contents, `durable` contents (as of its last successful
//!   `sync_data`) and the ordered list of writes and `set_len` calls made since. Every
//!   directory has `current` entries (name to inode) and `durable` entries (as of its last
//!   `sync_dir`). Create, rename and remove change only the current entries, so a file that was
//!   created and synced but whose directory was never synced does not survive a crash.
//! - [`FaultFs::crash`] returns a new file system holding what survives a power cut, chosen by
//!   [`CrashMode`]: unsynced writes lost, kept, or all kept but the most recent one torn to a
//!   seeded-random prefix; unsynced directory operations lost or kept. The original is left
//!   untouched, so one workload can be crashed in several ways.
//! - Faults are deterministic: [`FaultRule`]s fail chosen calls (once or for good, after a
//!   number of matching calls), [`FaultFs::set_space_limit_bytes`] models a full disk, and
//!   [`FaultFs::freeze_after_mutations`] lets the first `n` mutating calls through and then
//!   fails everything, which is a power cut at I/O point `n`.
//!
//! Simplifications, each chosen to keep the model small and its behavior obvious:
//! - Paths are plain keys: `.` components are dropped, `..` is not resolved, there are no
//!   symbolic links. The roots `""` and `"/"` always exist.
//! - Directories are durable as soon as `create_dir_all` returns and are never removed; the
//!   model is about files and their names. Directories cannot be renamed.
//! - A failed write writes nothing (real disks may write part of it); a failed `sync_data`
//!   leaves the unsynced writes unsynced, so a crash may still keep or lose them.
//! - `lock_dir` keeps an in-memory set of locked directories and creates no lock file.
//! - Inodes are never freed. Memory is not bounded beyond [`FILE_BYTES_MAX`] per file: this is
//!   a test tool.
//!
//! The code follows the same lines: `crash` is the crash model (the pending changes of files
//! and directories and the image a crash leaves), `rules` the fault rules and the operation
//! log, `state` the in-memory tree behind one lock, and `facade` the [`FaultFs`] type that
//! implements [`FileSystem`] over it.

mod crash;
mod facade;
mod rules;
mod state;
#[cfg(test)]
mod tests;

#[cfg(doc)]
use cairn_log::fs::FileSystem;

pub use crash::{CrashMode, UnsyncedDirOps, UnsyncedWrites};
pub use facade::FaultFs;
pub use rules::{FaultError, FaultRule, Op, OpRecord, Persistence};

/// The largest file the model holds, in bytes. A write or `set_len` past it fails with
/// `EFBIG` instead of trying to allocate the memory (a bad offset must not take the test
/// process down).
pub const FILE_BYTES_MAX: u64 = 1 << 30;

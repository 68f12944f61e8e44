//! Durability: the write-ahead log, checkpoints and recovery, for `Buffered` and `Strict`.
//!
//! - **Commits**: each commit is one WAL frame (`record`), appended under the commit lock after
//!   its chains are published. Its LSN equals its commit version, so "every record up to LSN n"
//!   and "every commit up to version n" are the same set. `Buffered` advances the visible
//!   version at once; `Strict` advances it only once the frame is fdatasync'ed (group commit on
//!   the committing threads), so no reader sees a commit a crash could take away.
//! - **Checkpoints** (`checkpoint`): a snapshot file written from an MVCC read view without
//!   blocking writers, installed by write temp -> fsync -> rename -> fsync directory. Only then
//!   are WAL segments deleted, and only those the *older* of the two kept snapshots covers, so
//!   that a damaged newest snapshot can fall back to the older one plus the WAL.
//! - **Identity** (`identity`): a random id created with the directory; every WAL segment and
//!   snapshot header repeats it, and a file naming another database is refused.
//! - **Recovery** (`recovery`): lock the directory, load the newest snapshot that verifies,
//!   replay the WAL after it, truncate a torn tail. The result is reported by
//!   `Db::recovery_report`.
//!
//! This file holds the layer's shared data (`Durable`, the checkpoint state, the recovery
//! report) and imports none of its submodules, so each of them can depend on it.
//!
//! Any write or fsync failure poisons the log: the failed commits are not acknowledged, and
//! every later write fails with `Error::Poisoned` until the database is reopened.

pub mod checkpoint;
pub mod identity;
pub mod record;
pub(crate) mod recovery;
pub mod snapshot_file;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use cairn_log::{DatabaseId, DirLock, Dropped, FileSystem, Log, TornTail};
use parking_lot::Mutex;

use crate::types::Version;

/// The durable half of an open database: its files, its log and its lock.
#[derive(Debug)]
pub(crate) struct Durable {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
    /// The database's identity, written into every snapshot it checkpoints.
    pub(crate) database_id: DatabaseId,
    pub(crate) log: Log,
    /// True for `Strict`: commits wait for their frame to be durable before they are visible.
    pub(crate) strict: bool,
    /// Serializes checkpoints; holds what the newest kept snapshots cover.
    pub(crate) checkpoints: Mutex<CheckpointState>,
    /// Checkpoints completed since open.
    pub(crate) checkpoints_completed: AtomicU64,
    /// Automatic checkpoints that failed since open (the WAL keeps everything).
    pub(crate) checkpoint_failures: AtomicU64,
    /// WAL bytes that trigger an automatic checkpoint.
    pub(crate) checkpoint_wal_bytes: u64,
    pub(crate) report: RecoveryReport,
    #[cfg(feature = "sabotage")]
    pub(crate) sabotage: cairn_log::Sabotage,
    /// The directory lock: held until `Db::close` or the last handle is dropped.
    pub(crate) lock: Mutex<Option<Box<dyn DirLock>>>,
}

/// What the checkpointer remembers between checkpoints.
#[derive(Debug, Default)]
pub(crate) struct CheckpointState {
    /// Versions of the snapshot files on disk, oldest first (at most two after a checkpoint).
    pub(crate) kept: Vec<u64>,
    /// WAL bytes appended, as counted by the log, when the last checkpoint began.
    pub(crate) wal_bytes_at_last: u64,
}

/// A snapshot that recovery loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLoaded {
    /// The snapshot file.
    pub file: PathBuf,
    /// The version it shows.
    pub version: Version,
    /// Keys it held.
    pub entries: u64,
}

/// What opening the database did. `Db::recovery_report` returns it.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// The database's identity (from its `IDENTITY` file, or created by this open).
    pub database_id: DatabaseId,
    /// The snapshot loaded, if any.
    pub snapshot: Option<SnapshotLoaded>,
    /// Snapshot files that failed verification, newest first, with the reason; recovery fell
    /// back to an older one.
    pub snapshots_rejected: Vec<(PathBuf, String)>,
    /// Temp files of interrupted checkpoints or segment creations that were removed.
    pub temp_files_removed: usize,
    /// WAL segment files read.
    pub wal_segments: usize,
    /// WAL records applied.
    pub wal_records_replayed: u64,
    /// WAL records checked but already covered by the snapshot.
    pub wal_records_skipped: u64,
    /// The torn tail truncated, if the last write before a crash was incomplete.
    pub torn_tail: Option<TornTail>,
    /// What `RecoveryMode::Salvage` dropped (empty otherwise).
    pub salvaged: Vec<Dropped>,
    /// The newest version after recovery; the next commit gets the one after it.
    pub last_version: Version,
    /// Wall time of the whole open.
    pub duration: Duration,
}

// Without the `sabotage` feature these always answer false and do not read `self`.
#[cfg_attr(not(feature = "sabotage"), allow(clippy::unused_self))]
impl Durable {
    /// Test-only broken build: skip the directory fsync after installing a snapshot.
    pub(crate) fn skips_dir_sync(&self) -> bool {
        #[cfg(feature = "sabotage")]
        return self.sabotage == cairn_log::Sabotage::NoDirSync;
        #[cfg(not(feature = "sabotage"))]
        false
    }

    /// Test-only broken build: delete WAL segments before the new snapshot is durable.
    pub(crate) fn deletes_wal_before_snapshot(&self) -> bool {
        #[cfg(feature = "sabotage")]
        return self.sabotage == cairn_log::Sabotage::WalDeletedBeforeSnapshotDurable;
        #[cfg(not(feature = "sabotage"))]
        false
    }
}

/// Snapshot file name for version `version`: `snapshot-{version:020}.snap`.
pub fn snapshot_file_name(version: u64) -> String {
    format!("snapshot-{version:020}.snap")
}

/// The version in a snapshot file name, if `name` is one.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_round_trip_and_reject_look_alikes() {
        assert_eq!(snapshot_file_name(42), "snapshot-00000000000000000042.snap");
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(42)), Some(42));
        assert_eq!(parse_snapshot_file_name("snapshot-42.snap"), None);
        assert_eq!(
            parse_snapshot_file_name("snapshot-00000000000000000042.snap.tmp"),
            None
        );
        assert_eq!(parse_snapshot_file_name("00000000000000000042.wal"), None);
    }
}

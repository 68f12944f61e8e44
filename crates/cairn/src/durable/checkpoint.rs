//! Checkpoints: a snapshot file of the whole database at one version, so that recovery
//! replays only the WAL written since.
//!
//! The snapshot is read from an MVCC read view registered at the visible version, so writers
//! go on committing while it is written; the view only pins the versions it needs. The file is
//! installed by write temp -> fsync -> rename -> fsync directory. Only after that are WAL
//! segments deleted, and only those wholly covered by the *older* of the two snapshots kept,
//! so that a damaged newest snapshot can still fall back to the older one plus the WAL.
//! Checkpoints are serialized by `Durable::checkpoints`; they run on demand
//! (`Db::checkpoint`) and from the maintainer once `checkpoint_wal_bytes` of WAL has been
//! written since the last one.

use std::ops::Bound;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::durable::snapshot_file::{SnapshotEntry, SnapshotWriter};
use crate::durable::{snapshot_file_name, CheckpointState, Durable};
use crate::engine::Shared;
use crate::error::{Error, Result};
use crate::types::{Key, Version};

/// How many index entries the checkpoint writes per epoch pin: short pins keep memory
/// reclamation moving while a large snapshot is written.
const CHECKPOINT_CHUNK_ENTRIES: usize = 1_024;

/// What one checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// The version the snapshot shows (every commit up to it).
    pub version: Version,
    /// The installed snapshot file; `None` when the newest snapshot was already at this
    /// version and nothing was written.
    pub file: Option<PathBuf>,
    /// Live keys written.
    pub entries: u64,
    /// WAL segment files deleted.
    pub wal_segments_removed: usize,
    /// Older snapshot files deleted.
    pub snapshots_removed: usize,
    /// Wall time.
    pub duration: Duration,
}

impl Shared {
    /// Writes and installs a snapshot at the visible version, then drops what it made
    /// redundant. Writers are not blocked.
    pub(crate) fn checkpoint(&self) -> Result<CheckpointReport> {
        let durable = self.durable().ok_or_else(|| {
            Error::Unsupported("checkpoint needs a durable database (Buffered or Strict)".into())
        })?;
        self.check_open()?;
        let started = Instant::now();
        let mut state = durable.checkpoints.lock();
        state.wal_bytes_at_last = durable.log.stats().bytes_appended;
        let reader = self.register_reader();
        let version = reader.version();
        // The snapshot must never claim a commit the WAL could still lose (Buffered).
        durable.log.wait_durable(version)?;
        if state.kept.last().is_some_and(|&newest| newest >= version) {
            // Nothing new to write; still finish what an interrupted checkpoint left undone.
            let (wal_segments_removed, snapshots_removed) = drop_redundant(durable, &mut state)?;
            return Ok(CheckpointReport {
                version: Version(version),
                file: None,
                entries: 0,
                wal_segments_removed,
                snapshots_removed,
                duration: started.elapsed(),
            });
        }
        let mut wal_segments_removed = 0;
        if durable.deletes_wal_before_snapshot() {
            // Deliberately broken build: the crash matrix must catch this.
            wal_segments_removed += durable.log.remove_segments_through(version)?;
        }
        let name = snapshot_file_name(version);
        let final_path = durable.dir.join(&name);
        let temp_path = durable.dir.join(format!("{name}.tmp"));
        match durable.fs.remove_file(&temp_path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io("remove stale snapshot temp", &temp_path, error)),
        }
        let entries = self.write_snapshot(durable, &temp_path, version)?;
        drop(reader);
        durable
            .fs
            .rename(&temp_path, &final_path)
            .map_err(|error| Error::io("rename snapshot into place", &final_path, error))?;
        if !durable.skips_dir_sync() {
            durable
                .fs
                .sync_dir(&durable.dir)
                .map_err(|error| Error::io("sync directory", &durable.dir, error))?;
        }
        state.kept.push(version);
        let (removed, snapshots_removed) = drop_redundant(durable, &mut state)?;
        wal_segments_removed += removed;
        durable
            .checkpoints_completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CheckpointReport {
            version: Version(version),
            file: Some(final_path),
            entries,
            wal_segments_removed,
            snapshots_removed,
            duration: started.elapsed(),
        })
    }

    /// Runs a checkpoint when enough WAL was written since the last one (the maintainer's
    /// trigger). A failure is counted, not fatal: the WAL still holds everything.
    pub(crate) fn checkpoint_if_due(&self) {
        let Some(durable) = self.durable() else {
            return;
        };
        let due = {
            let Some(state) = durable.checkpoints.try_lock() else {
                return; // one is running
            };
            durable
                .log
                .stats()
                .bytes_appended
                .saturating_sub(state.wal_bytes_at_last)
                >= durable.checkpoint_wal_bytes
        };
        if due && !durable.log.is_poisoned() && self.checkpoint().is_err() {
            durable
                .checkpoint_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Streams every key visible at `version` into a new snapshot file at `path`, synced.
    fn write_snapshot(
        &self,
        durable: &Durable,
        path: &std::path::Path,
        version: u64,
    ) -> Result<u64> {
        let created_unix_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            });
        let snapshot_error = |error| Error::from_snapshot(error, path.to_path_buf());
        let mut writer = SnapshotWriter::create(
            durable.fs.as_ref(),
            path,
            version,
            version,
            created_unix_millis,
            durable.database_id,
        )
        .map_err(snapshot_error)?;
        let now = self.now_millis();
        let mut after: Option<Key> = None;
        loop {
            // Each chunk is written from inside its own short pin: no copy of its entries, and
            // no reference count touched. A block that fills is written out inside the pin
            // (one `pwrite` of a block, well under a millisecond).
            let guard = crossbeam_epoch::pin();
            let resume_after = after.take();
            let lower = match &resume_after {
                Some(key) => Bound::Excluded(key.as_bytes()),
                None => Bound::Unbounded,
            };
            let mut seen = 0;
            let mut last = None;
            for entry in
                self.index_range::<(Bound<&[u8]>, Bound<&[u8]>)>((lower, Bound::Unbounded), &guard)
            {
                let key = entry.key();
                entry
                    .read(|record| {
                        let Some(found) = record
                            .entry_at(version)
                            .filter(|found| !found.is_dead_at(now))
                        else {
                            return Ok(());
                        };
                        let Some(value) = found.bytes() else {
                            return Ok(());
                        };
                        writer.push(SnapshotEntry {
                            key,
                            value,
                            version: found.version,
                            deadline_millis: found.deadline_millis,
                        })
                    })
                    .map_err(snapshot_error)?;
                last = Some(key);
                seen += 1;
                if seen == CHECKPOINT_CHUNK_ENTRIES {
                    break;
                }
            }
            if seen < CHECKPOINT_CHUNK_ENTRIES {
                break;
            }
            after = last.map(Key::from_slice);
        }
        let header = writer.finish().map_err(snapshot_error)?;
        Ok(header.entry_count)
    }
}

/// Deletes what the kept snapshots make redundant: WAL segments wholly covered by the older
/// of the newest two snapshots, then every snapshot but the newest two. Returns how many
/// segments and snapshots were deleted.
fn drop_redundant(durable: &Durable, state: &mut CheckpointState) -> Result<(usize, usize)> {
    let mut wal_segments_removed = 0;
    // The WAL the older kept snapshot covers is redundant twice over.
    if let Some(&older) = state
        .kept
        .len()
        .checked_sub(2)
        .and_then(|at| state.kept.get(at))
    {
        wal_segments_removed += durable.log.remove_segments_through(older)?;
    }
    let mut snapshots_removed = 0;
    while state.kept.len() > 2 {
        let oldest = state.kept.remove(0);
        let path = durable.dir.join(snapshot_file_name(oldest));
        match durable.fs.remove_file(&path) {
            Ok(()) => snapshots_removed += 1,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io("remove old snapshot", &path, error)),
        }
    }
    if snapshots_removed > 0 && !durable.skips_dir_sync() {
        durable
            .fs
            .sync_dir(&durable.dir)
            .map_err(|error| Error::io("sync directory", &durable.dir, error))?;
    }
    Ok((wal_segments_removed, snapshots_removed))
}

//! Opening a durable database: lock, newest valid snapshot, WAL replay, torn-tail repair.
//!
//! Open = lock the directory -> remove temp files a crash left -> read the directory's
//! identity (or create it, for a directory without data files) and refuse any snapshot or WAL
//! segment that names another database (`Error::ForeignFile`) -> load the newest snapshot
//! that verifies end to end (a damaged one is reported and the older one used) -> replay every
//! WAL record after the snapshot's LSN, in LSN order, checking that LSNs run without gaps ->
//! truncate a torn tail -> restore the version counter -> ready. Every step only reads or
//! repairs what a crash can leave, so recovery is idempotent and survives being crashed
//! itself. What it did is kept as a [`RecoveryReport`].

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use cairn_log::{
    DatabaseId, Dropped, FrameRef, Log, LogError, LogOptions, RecoveryMode, SyncPolicy,
};
use parking_lot::Mutex;

use crate::durable::identity;
use crate::durable::record::{decode_commit, decode_commit_with, RECORD_TYPE_COMMIT};
use crate::durable::snapshot_file::{read_header, read_snapshot, SnapshotEntry, SnapshotHeader};
use crate::durable::{
    parse_snapshot_file_name, snapshot_file_name, CheckpointState, Durable, RecoveryReport,
    SnapshotLoaded,
};
use crate::engine::{Applying, CommitState, NewKeys, Shared};
use crate::error::{Error, Result};
use crate::mvcc::chain::NO_DEADLINE;
use crate::mvcc::record::NewRecord;
use crate::options::{Durability, Options};
use crate::types::{Mutation, Version};

/// Opens (or creates) the durable database described by `options`.
/// `flush` is the shared-service task that runs a `Buffered` log's background flush.
pub(crate) fn open_durable(
    options: &Options,
    flush: Option<crate::maintenance::FlushTask>,
) -> Result<Shared> {
    let started = Instant::now();
    let dir = options
        .path
        .clone()
        .ok_or_else(|| Error::InvalidArgument("a durable database needs a directory".into()))?;
    let fs = Arc::clone(&options.file_system);
    fs.create_dir_all(&dir)
        .map_err(|error| Error::io("create data directory", &dir, error))?;
    let lock = fs.lock_dir(&dir).map_err(|error| {
        if error.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked { path: dir.clone() }
        } else {
            Error::io("lock data directory", &dir, error)
        }
    })?;
    let mut report = RecoveryReport::default();

    let (names, snapshot_versions) =
        remove_temp_files_and_list_snapshots(fs.as_ref(), &dir, &mut report)?;
    let database_id = identity::load_or_create(fs.as_ref(), &dir, &names)?;
    report.database_id = database_id;
    refuse_foreign_snapshots(fs.as_ref(), &dir, &snapshot_versions, database_id)?;
    let (mut shared, loaded) =
        load_newest_valid_snapshot(options, &dir, &snapshot_versions, &mut report);
    let after_lsn = loaded.as_ref().map_or(0, |snapshot| snapshot.version.0);
    let mut log_options = log_options(options);
    log_options.database_id = database_id;
    log_options.flush_waker = flush.map(crate::maintenance::FlushTask::waker);
    let mut replayed = ReplayedWrites::default();
    let mut apply = |frame: &FrameRef<'_>| replayed.add(frame);
    let opened = Log::open(Arc::clone(&fs), &dir, log_options, after_lsn, &mut apply);
    shared.apply_replayed(replayed);
    let (log, replay) = opened.map_err(|error| match error {
        LogError::Replay(reason) => Error::Corrupted {
            file: dir.clone(),
            offset: 0,
            reason: format!("a WAL record passed its checksum but cannot be applied: {reason}"),
        },
        other => Error::from(other),
    })?;
    let last_version = shared.lock_commit().last_version();
    let salvage = options.recovery_mode == RecoveryMode::Salvage;
    let mut salvaged = replay.salvaged;
    check_nothing_lost(
        &dir,
        &snapshot_versions,
        after_lsn,
        last_version,
        replay.last_frame_lsn,
        salvage,
        &mut salvaged,
    )?;
    if log.last_appended_lsn() != last_version {
        return Err(Error::Corrupted {
            file: dir.clone(),
            offset: 0,
            reason: format!(
                "the WAL ends at LSN {} but the database is at version {last_version}",
                log.last_appended_lsn()
            ),
        });
    }
    if salvage && replay.last_frame_lsn.is_some_and(|lsn| lsn < after_lsn) {
        // The snapshot covers these segments; keeping them would stop the next open again.
        log.remove_segments_through(after_lsn)?;
    }
    report.wal_segments = replay.segments;
    report.wal_records_replayed = replay.frames_replayed;
    report.wal_records_skipped = replay.frames_skipped;
    report.torn_tail = replay.torn_tail;
    report.salvaged = salvaged;
    report.last_version = Version(last_version);
    report.snapshot = loaded;
    report.duration = started.elapsed();

    // Every snapshot at or below the loaded one, oldest first: a crash between installing a
    // snapshot and deleting the oldest can leave more than two, and the next checkpoint
    // deletes all but the newest two. (A rejected newer one stays, for inspection, and is
    // listed in the report.)
    let mut kept: Vec<u64> = snapshot_versions
        .iter()
        .copied()
        .filter(|&version| version <= after_lsn)
        .collect();
    kept.reverse();
    shared.attach_durable(Durable {
        strict: options.durability == Durability::Strict,
        checkpoints: Mutex::new(CheckpointState {
            kept,
            wal_bytes_at_last: log.stats().bytes_appended,
        }),
        checkpoints_completed: AtomicU64::new(0),
        checkpoint_failures: AtomicU64::new(0),
        checkpoint_wal_bytes: options.checkpoint_wal_bytes,
        report,
        #[cfg(feature = "sabotage")]
        sabotage: options.sabotage,
        fs,
        dir,
        database_id,
        log,
        lock: Mutex::new(Some(lock)),
    });
    Ok(shared)
}

/// Refuses a recovery that would silently lose commits the directory shows were made: a
/// rejected snapshot newer than everything recovered (the only snapshot damaged and the WAL
/// gone), or a WAL whose last record lies below the loaded snapshot (the WAL always reaches at
/// least the newest snapshot, which is written only once the WAL is durable through it). In
/// `RecoveryMode::Salvage` the loss is accepted and listed in `salvaged` instead.
pub(crate) fn check_nothing_lost(
    dir: &std::path::Path,
    snapshot_versions: &[u64],
    after_lsn: u64,
    last_version: u64,
    last_frame_lsn: Option<u64>,
    salvage: bool,
    salvaged: &mut Vec<Dropped>,
) -> Result<()> {
    // Newest first: the first one above what was recovered is the largest loss.
    if let Some(&lost) = snapshot_versions
        .iter()
        .find(|&&version| version > last_version)
    {
        let file = dir.join(snapshot_file_name(lost));
        let reason = format!(
            "the snapshot for version {lost} failed verification and neither an older snapshot \
             nor the WAL reaches that version (recovery reaches version {last_version})"
        );
        refuse_or_salvage(salvage, salvaged, file, reason)?;
    }
    if let Some(last_lsn) = last_frame_lsn.filter(|&lsn| lsn < after_lsn) {
        let file = dir.join(snapshot_file_name(after_lsn));
        let reason = format!(
            "the WAL ends at LSN {last_lsn}, below this snapshot's version {after_lsn}: WAL \
             records the snapshot was written after are missing"
        );
        refuse_or_salvage(salvage, salvaged, file, reason)?;
    }
    Ok(())
}

/// Refuses the directory when a snapshot's header (which checks) names another database.
/// Every snapshot is looked at, not only the one recovery loads, so that a foreign one is
/// never left for a checkpoint to delete as if it were an old snapshot of this database.
fn refuse_foreign_snapshots(
    fs: &dyn cairn_log::FileSystem,
    dir: &std::path::Path,
    snapshot_versions: &[u64],
    database_id: DatabaseId,
) -> Result<()> {
    for &version in snapshot_versions {
        let path = dir.join(snapshot_file_name(version));
        if let Some(found) = foreign_snapshot(fs, &path, database_id) {
            return Err(Error::ForeignFile {
                file: path,
                expected: database_id,
                found,
            });
        }
    }
    Ok(())
}

/// Removes what interrupted checkpoints left behind and returns the directory's names and
/// the snapshot versions on disk, newest first.
pub(crate) fn remove_temp_files_and_list_snapshots(
    fs: &dyn cairn_log::FileSystem,
    dir: &std::path::Path,
    report: &mut RecoveryReport,
) -> Result<(Vec<String>, Vec<u64>)> {
    let names = fs
        .list_dir(dir)
        .map_err(|error| Error::io("list data directory", dir, error))?;
    let mut snapshot_versions = Vec::new();
    for name in &names {
        if name.ends_with(".snap.tmp") {
            let path = dir.join(name);
            fs.remove_file(&path)
                .map_err(|error| Error::io("remove snapshot temp file", &path, error))?;
            report.temp_files_removed += 1;
        } else if let Some(version) = parse_snapshot_file_name(name) {
            snapshot_versions.push(version);
        }
    }
    snapshot_versions.sort_unstable_by(|left, right| right.cmp(left));
    Ok((names, snapshot_versions))
}

/// Loads the newest snapshot that verifies end to end into a fresh database; a damaged one
/// is recorded in the report and the next older one tried. Without any, the database starts
/// empty and the WAL must hold everything.
fn load_newest_valid_snapshot(
    options: &Options,
    dir: &std::path::Path,
    snapshot_versions: &[u64],
    report: &mut RecoveryReport,
) -> (Shared, Option<SnapshotLoaded>) {
    for &version in snapshot_versions {
        let path = dir.join(snapshot_file_name(version));
        // The header's count is unchecked until the blocks verify: it was checked against the
        // file's length (a sparse file can be huge), and is capped here by the presizing limit,
        // so no header can make this allocate more than that limit's worth.
        let keys = read_header(options.file_system.as_ref(), &path)
            .ok()
            .and_then(|header| usize::try_from(header.entry_count).ok())
            .unwrap_or(0)
            .min(crate::limits::RECOVERY_PRESIZE_KEYS_MAX);
        let candidate = Shared::with_capacity(options.clone(), keys);
        match candidate.load_snapshot(&path, version, keys) {
            Ok(entries) => {
                let loaded = SnapshotLoaded {
                    file: path,
                    version: Version(version),
                    entries,
                };
                return (candidate, Some(loaded));
            }
            Err(error) => report.snapshots_rejected.push((path, error.to_string())),
        }
    }
    (Shared::new(options.clone()), None)
}

/// The log's settings for a database opened with `options`.
fn log_options(options: &Options) -> LogOptions {
    let sync = match options.durability {
        Durability::Buffered {
            flush_interval,
            buffer_bytes_max,
        } => SyncPolicy::Buffered {
            flush_interval,
            buffer_bytes_max,
        },
        _ => SyncPolicy::Strict,
    };
    let mut log_options = LogOptions::new(sync);
    log_options.segment_bytes = options.wal_segment_bytes;
    log_options.recycle_segments = options.wal_recycle_segments;
    log_options.recovery = options.recovery_mode;
    if let Some(bytes) = options.wal_frame_payload_bytes_max {
        log_options.frame_payload_bytes_max = bytes;
    }
    #[cfg(feature = "sabotage")]
    {
        log_options.sabotage = options.sabotage;
    }
    log_options
}

impl Shared {
    /// Loads a snapshot file into this (empty) database: keys arrive sorted, so the index
    /// is built bottom-up. `presize` keys are allocated for at once (the header's count,
    /// capped). Returns the number of keys.
    fn load_snapshot(
        &self,
        path: &std::path::Path,
        named_version: u64,
        presize: usize,
    ) -> Result<u64> {
        let fs = Arc::clone(&self.options().file_system);
        let mut state = self.lock_commit();
        debug_assert_eq!(
            self.keys_indexed(),
            0,
            "a snapshot loads into an empty database"
        );
        let mut new_keys = NewKeys::for_empty_index(presize);
        let mut visit = |entry: SnapshotEntry<'_>| {
            if entry.key.is_empty() || entry.key.len() > crate::limits::KEY_BYTES_MAX {
                return Err(format!("key of {} bytes is out of range", entry.key.len()));
            }
            let record = NewRecord::single(
                entry.key,
                entry.version,
                entry.deadline_millis,
                Some(entry.value),
            );
            self.queue_new_key_locked(&mut state, &mut new_keys, record);
            Ok(())
        };
        let header = read_snapshot(fs.as_ref(), path, &mut visit)
            .map_err(|error| Error::from_snapshot(error, path.to_path_buf()))?;
        self.insert_new_keys_locked(&mut state, new_keys);
        check_snapshot_name(&header, named_version).map_err(|reason| Error::Corrupted {
            file: path.to_path_buf(),
            offset: 0,
            reason,
        })?;
        state.mark_deadlines_compacted();
        self.restore_version_locked(&mut state, header.snapshot_version, header.snapshot_version);
        Ok(header.entry_count)
    }

    /// Applies what the WAL replay collected: each key's last write, in key order, so that
    /// the index is built by nearly sequential inserts instead of random ones. With no
    /// snapshot loaded, the replay's records (built as the WAL was read) go into the index as
    /// they are: nothing is copied again.
    fn apply_replayed(&self, replayed: ReplayedWrites) {
        let Some(last_version) = replayed.last_version else {
            return;
        };
        let commits = replayed.commits;
        let writes = replayed.into_sorted();
        let mut state = self.lock_commit();
        // Size the point table once for every key the replay may add: growing it step by step
        // costs a rebuild per doubling. (Keys already in the snapshot over-reserve; a deleted
        // key reserves a place it does not take.)
        self.reserve_point_index(&mut state, writes.len());
        // Every replayed commit is visible at once, so pruning keeps only the newest entry.
        let commits = state.commits() + commits;
        self.restore_version_locked(&mut state, last_version, commits);
        // With no snapshot loaded every key is new, and asking the index for each would cost a
        // cache miss per key in a point table sized for all of them.
        let fresh = self.keys_indexed() == 0;
        let new_keys = if fresh {
            NewKeys::for_empty_index(writes.len())
        } else {
            NewKeys::default()
        };
        let each = |state: &mut CommitState, applying: &mut Applying<'_>, write: NewRecord| {
            if !fresh {
                let entry = write.record().head().as_write();
                applying.apply_locked(state, write.record().key(), entry);
            } else if !write.record().head().is_tombstone() {
                // A delete of a key nothing holds changes nothing (as in `apply_locked`).
                applying.queue_new_key_locked(state, write);
            }
        };
        self.apply_in_chunks_locked(&mut state, new_keys, writes, each);
    }
}

/// Checks one WAL frame the way replay does before applying it: a commit record whose version
/// is its LSN and whose body decodes. Returns its mutations. `cairn::verify` uses the same
/// check, so it calls a record damaged exactly when replay would refuse it.
pub(crate) fn check_commit_frame<'a>(
    frame: &FrameRef<'a>,
) -> std::result::Result<Vec<(&'a [u8], Mutation<'a>)>, String> {
    check_commit_header(frame)?;
    decode_commit(frame.body).map_err(|reason| format!("commit body: {reason}"))
}

/// The part of `check_commit_frame` before the body: a commit record whose version is its LSN.
fn check_commit_header(frame: &FrameRef<'_>) -> std::result::Result<(), String> {
    if frame.record_type != RECORD_TYPE_COMMIT {
        return Err(format!(
            "record type {} is not a commit (type {RECORD_TYPE_COMMIT})",
            frame.record_type
        ));
    }
    if frame.version != frame.lsn {
        return Err(format!(
            "record at LSN {} claims version {}; they must be equal",
            frame.lsn, frame.version
        ));
    }
    Ok(())
}

/// Checks a snapshot's header against its file name, as recovery does after decoding it:
/// the engine names a snapshot for its version and writes its WAL LSN equal to it.
pub(crate) fn check_snapshot_name(
    header: &SnapshotHeader,
    named_version: u64,
) -> std::result::Result<(), String> {
    if header.snapshot_version != named_version || header.wal_lsn != named_version {
        return Err(format!(
            "the file is named for version {named_version} but its header says version {} and \
             WAL LSN {}",
            header.snapshot_version, header.wal_lsn
        ));
    }
    Ok(())
}

/// The database a snapshot belongs to, when its header checks and names another one than
/// `database_id`.
pub(crate) fn foreign_snapshot(
    fs: &dyn cairn_log::FileSystem,
    path: &std::path::Path,
    database_id: DatabaseId,
) -> Option<DatabaseId> {
    read_header(fs, path)
        .ok()
        .map(|header| header.database_id)
        .filter(|&found| found != database_id)
}

/// The WAL's commits, folded to the last write of each key. Replaying a commit log is
/// idempotent per key (each write replaces the key's whole state, TTL deadline included), so
/// the final state is each key's last write at that write's version.
///
/// The writes are kept in a flat list in WAL order, not a hash map: a million inserts into a
/// map cost more than reading the WAL. Whenever the list has doubled since it was last
/// compacted (and holds at least `REPLAY_COMPACT_MIN`), it is sorted by key and cut to the
/// last write of each key, so memory stays within about twice the distinct keys' writes
/// however often the WAL overwrites them. The sort is stable: one key's writes keep their WAL
/// order, so the last of each run of equal keys is the newest.
#[derive(Default)]
struct ReplayedWrites {
    /// Each write as the record it would make: its key, version and value (or tombstone) in
    /// one allocation, copied once from the WAL.
    writes: Vec<NewRecord>,
    /// Writes at the front already sorted and cut to one per key.
    compacted: usize,
    last_version: Option<u64>,
    commits: u64,
}

/// The eight bytes of `key` after its first `skip`, as a big-endian integer (zeros past its
/// end): two keys whose ranks differ are ordered as their ranks are.
fn sort_rank(key: &[u8], skip: usize) -> u64 {
    let mut bytes = [0_u8; 8];
    for (to, from) in bytes.iter_mut().zip(key.iter().skip(skip)) {
        *to = *from;
    }
    u64::from_be_bytes(bytes)
}

/// The fewest writes the fold holds before it first compacts them.
const REPLAY_COMPACT_MIN: usize = 1 << 20;

impl ReplayedWrites {
    /// Folds one frame in; refuses one that is not a well-formed commit after the last.
    fn add(&mut self, frame: &FrameRef<'_>) -> std::result::Result<(), String> {
        check_commit_header(frame)?;
        if self.last_version.is_some_and(|last| frame.version <= last) {
            return Err(format!(
                "record version {} is not after version {:?}",
                frame.version, self.last_version
            ));
        }
        let (before, version) = (self.writes.len(), frame.version);
        let writes = &mut self.writes;
        let decoded = decode_commit_with(frame.body, |key, mutation| {
            writes.push(match mutation {
                Mutation::Put {
                    value,
                    deadline_millis,
                } => NewRecord::single(key, version, deadline_millis, Some(value)),
                Mutation::Delete => NewRecord::single(key, version, NO_DEADLINE, None),
            });
        });
        if let Err(reason) = decoded {
            self.writes.truncate(before);
            return Err(format!("commit body: {reason}"));
        }
        self.last_version = Some(frame.version);
        self.commits += 1;
        if self.writes.len() >= REPLAY_COMPACT_MIN.max(self.compacted.saturating_mul(2)) {
            self.compact();
        }
        Ok(())
    }

    /// Sorts the writes by key (stably) and keeps the last of each key's run.
    ///
    /// Comparing whole keys a million times is most of a replay's sort, and keys often share
    /// a long prefix (`user:000…`). So the writes are first sorted by the eight bytes after
    /// the prefix every key shares, as one integer (`sort_by_cached_key`, stable), and only
    /// runs that tie on those bytes are then sorted by their whole keys.
    fn compact(&mut self) {
        fn key(write: &NewRecord) -> &[u8] {
            write.record().key()
        }
        let shared = self.writes.first().map_or(0, |first| {
            let first = key(first);
            self.writes.iter().fold(first.len(), |shared, write| {
                let common = first
                    .iter()
                    .zip(key(write))
                    .take(shared)
                    .take_while(|(left, right)| left == right)
                    .count();
                shared.min(common)
            })
        });
        self.writes
            .sort_by_cached_key(|write| sort_rank(key(write), shared));
        for run in self.writes.chunk_by_mut(|left, right| {
            sort_rank(key(left), shared) == sort_rank(key(right), shared)
        }) {
            if run.len() > 1 {
                run.sort_by(|left, right| key(left).cmp(key(right)));
            }
        }
        // `dedup_by` keeps the first of a run; swapping each later write into the kept place
        // keeps the last instead.
        self.writes.dedup_by(|later, kept| {
            let same = key(later) == key(kept);
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        self.compacted = self.writes.len();
        debug_assert!(self
            .writes
            .windows(2)
            .all(|pair| matches!(pair, [left, right] if key(left) < key(right))));
    }

    /// Each key's last write, in key order.
    fn into_sorted(mut self) -> Vec<NewRecord> {
        if self.compacted != self.writes.len() {
            self.compact();
        }
        self.writes
    }
}

/// A loss recovery cannot repair: `Corrupted` naming `file`, unless the caller chose Salvage,
/// which records it in `salvaged` and goes on.
fn refuse_or_salvage(
    salvage: bool,
    salvaged: &mut Vec<Dropped>,
    file: std::path::PathBuf,
    reason: String,
) -> Result<()> {
    if !salvage {
        return Err(Error::Corrupted {
            file,
            offset: 0,
            reason,
        });
    }
    salvaged.push(Dropped {
        file,
        offset: 0,
        reason,
        frames_after: 0,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cairn_testkit::rng::SplitMix64;

    use crate::mvcc::chain::NO_DEADLINE;

    use super::*;

    /// The fold's compaction against a map of each key's last write. The keys share a long
    /// prefix, some tie on the eight bytes after it and differ later, some end inside them,
    /// and many repeat, within a compaction's input and across compactions.
    #[test]
    fn compaction_keeps_each_keys_last_write_in_key_order() {
        for seed in 0..6 {
            let mut rng = SplitMix64::new(seed);
            let mut fold = ReplayedWrites::default();
            let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            let suffixes = [
                "",
                "a",
                "ab",
                "abcdefgh",
                "abcdefgh0",
                "abcdefgh1",
                "abcdefgi",
            ];
            for version in 1..=3_000_u64 {
                let id = rng.below(200);
                let suffix = suffixes[rng.below(suffixes.len())];
                let key = format!("tenant/0000/user:{id}{suffix}").into_bytes();
                model.insert(key.clone(), version);
                fold.writes.push(NewRecord::single(
                    &key,
                    version,
                    NO_DEADLINE,
                    Some(&version.to_le_bytes()),
                ));
                if version % 700 == 0 {
                    fold.compact();
                    assert!(fold.writes.len() <= model.len());
                }
            }
            let folded: Vec<(Vec<u8>, u64)> = fold
                .into_sorted()
                .into_iter()
                .map(|write| (write.record().key().to_vec(), write.record().head_version()))
                .collect();
            assert_eq!(folded, model.into_iter().collect::<Vec<_>>(), "seed {seed}");
        }
    }

    #[test]
    fn a_rank_orders_keys_as_their_bytes_do() {
        let keys: [&[u8]; 6] = [b"p", b"p\0", b"pa", b"pab", b"pabcdefgh", b"pb"];
        for pair in keys.windows(2) {
            let [left, right] = pair else { continue };
            assert!(
                sort_rank(left, 1) <= sort_rank(right, 1),
                "{left:?} {right:?}"
            );
        }
        assert_eq!(
            sort_rank(b"p", 1),
            sort_rank(b"p\0", 1),
            "a tie, settled by the keys"
        );
        assert_eq!(sort_rank(b"pabcdefghX", 1), sort_rank(b"pabcdefghY", 1));
    }
}

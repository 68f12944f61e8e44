//! Recovery workloads: a [`Recovery`] times one open, checkpoint or close, one per group; the
//! rest (closing, opening, restoring the WAL, tearing a frame) is untimed, in
//! [`Workload::prepare`]. Replayed
//! WALs hold single puts in a random key order (key order is the flattering case). Opens use
//! `Strict` with warm page caches and check their [`cairn::RecoveryReport`].

use super::durability::{bench_options, fill_in_order, DataDir};
use super::{Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};
use crate::sizes::VALUE_BYTES;
use cairn::{Db, Durability};
use cairn_log::{encoded_frame_bytes, list_segments, SegmentReader, StdFileSystem};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

/// The key of the extra commits made between checkpoints and before tearing the WAL.
const MARKER_KEY: &[u8] = b"marker:bench";

/// What a [`Recovery`] times: an open, an open that cuts a torn frame, a checkpoint, or a
/// close of an open database (`close()` and dropping the last handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Open,
    TornOpen,
    Checkpoint,
    Close,
}

/// A fixture's directory, and its database if left open.
type Built = (DataDir, Option<Db>);

/// An open or a checkpoint of a built fixture; each constructor says which.
#[derive(Debug)]
pub struct Recovery {
    workload: &'static str,
    shape: Shape,
    /// WAL records every open must replay.
    records: u64,
    /// Keys of the snapshot every open must load (or every checkpoint write), if any.
    snapshot: Option<u64>,
    /// Where `prepare` tore the last frame: the offset to cut back to, the LSN to drop.
    tear: Option<(u64, u64)>,
    /// Open until the next `prepare` closes it (always open for a checkpoint).
    db: Option<Db>,
    prepared: bool,
    marker_writes: u64,
    reported: Vec<Duration>,
    /// Declared after `db`: removed after the database is closed.
    dir: DataDir,
    /// The segment files `dir` held when built, which `prepare` returns to.
    segments_built: BTreeSet<OsString>,
}

impl Recovery {
    fn new(
        workload: &'static str,
        shape: Shape,
        (dir, db): Built,
        records: usize,
        snapshot: Option<usize>,
    ) -> Result<Self> {
        Ok(Recovery {
            workload,
            shape,
            records: records as u64,
            snapshot: snapshot.map(|entries| entries as u64 + 1),
            tear: None,
            db,
            prepared: false,
            marker_writes: 0,
            reported: Vec::new(),
            segments_built: files_ending(dir.path(), ".wal")?,
            dir,
        })
    }

    /// `wal_replay`: a WAL of `entries` single-put commits, no snapshot.
    pub fn wal_replay(entries: usize) -> Result<Self> {
        let fixture = shuffled("wal-replay", entries, 0x7761_6C00, false)?;
        Recovery::new("wal_replay", Shape::Open, fixture, entries, None)
    }

    /// `wal_truncation`: a WAL of `entries` commits and a last frame `prepare` cuts in half.
    pub fn torn_tail(entries: usize) -> Result<Self> {
        let fixture = shuffled("torn-tail", entries, 0x7761_6C00, false)?;
        Recovery::new("wal_truncation", Shape::TornOpen, fixture, entries, None)
    }

    /// `snapshot_load`: a snapshot of `entries` keys (plus the marker), no WAL record after it.
    pub fn snapshot_load(entries: usize) -> Result<Self> {
        let dir = DataDir::create("snapshot-load")?;
        build_snapshot(&dir, entries)?.close()?;
        Recovery::new("snapshot_load", Shape::Open, (dir, None), 0, Some(entries))
    }

    /// `snapshot_wal_recovery`: a snapshot of `entries` keys, then `wal_records` overwrites.
    pub fn snapshot_wal(entries: usize, wal_records: usize) -> Result<Self> {
        let workload = "snapshot_wal_recovery";
        super::require_keys(workload, entries, 1)?;
        let dir = DataDir::create("snapshot-wal")?;
        let db = build_snapshot(&dir, entries)?;
        let (keys, value) = (KeySet::sequential(entries), value_of_length(VALUE_BYTES));
        let mut random = SplitMix64::new(0x7461_696C);
        for _ in 0..wal_records {
            db.put(keys.get(random.below(keys.len())), &value)?;
        }
        db.close()?;
        let built = (dir, None);
        Recovery::new(workload, Shape::Open, built, wal_records, Some(entries))
    }

    /// `close`: `db.close()` and the drop of the last handle of an in-memory database holding
    /// `entries` keys, written in a random order (1,000 to a batch) as a long-running process
    /// writes them, so that its records and values lie scattered over the heap.
    pub fn close(entries: usize) -> Result<Self> {
        let dir = DataDir::create("close")?;
        Recovery::new("close", Shape::Close, (dir, None), 0, Some(entries))
    }

    /// `snapshot_creation`: `db.checkpoint()` of `entries` keys put in a random order (with a
    /// marker write before each, since a checkpoint of an unchanged version writes nothing).
    pub fn checkpoint(entries: usize) -> Result<Self> {
        let fixture = shuffled("snapshot-creation", entries, 0x6372_6561, true)?;
        let workload = "snapshot_creation";
        Recovery::new(workload, Shape::Checkpoint, fixture, 0, Some(entries))
    }

    /// The durations the engine's own reports gave, one per measured operation.
    pub fn reported(&self) -> &[Duration] {
        &self.reported
    }

    fn failed(&self, detail: impl Into<String>) -> WorkloadError {
        WorkloadError::unexpected(self.workload, detail)
    }

    fn check(&self, holds: bool, detail: impl FnOnce() -> String) -> Result<()> {
        holds.then_some(()).ok_or_else(|| self.failed(detail()))
    }

    /// Commits the marker, closes, and cuts its frame in half; returns where.
    fn tear_next_frame(&self) -> Result<(u64, u64)> {
        let db = open(self.dir.path(), Durability::Strict)?;
        let version = db.put(MARKER_KEY, b"torn")?.get();
        db.close()?;
        let failed = |error: cairn_log::LogError| self.failed(format!("read the WAL: {error}"));
        let segments = list_segments(&StdFileSystem, self.dir.path()).map_err(failed)?;
        let last = segments.last().ok_or_else(|| self.failed("no segment"))?;
        let mut reader = SegmentReader::open(&StdFileSystem, last, usize::MAX).map_err(failed)?;
        let mut last_frame = None;
        while let Some((offset, frame)) = reader.next().map_err(failed)? {
            let frame_bytes = encoded_frame_bytes(frame.body.len()) as u64;
            last_frame = Some((offset, frame_bytes, frame.lsn));
        }
        let Some((offset, frame_bytes, lsn)) = last_frame.filter(|frame| frame.2 == version) else {
            let detail = format!("the marker commit {version} is not the last frame");
            return Err(self.failed(format!("{detail}: {last_frame:?}")));
        };
        let cut = |file: std::fs::File| file.set_len(offset + frame_bytes / 2);
        let file = OpenOptions::new()
            .write(true)
            .open(&last.path)
            .and_then(cut);
        file.map_err(|error| WorkloadError::io(self.workload, "cut the last frame", &error))?;
        Ok((offset, lsn))
    }
}

impl Workload for Recovery {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        if runs > 1 {
            return Err(self.failed(format!("one operation per timed group, asked for {runs}")));
        }
        match (self.shape, &self.db) {
            (Shape::Checkpoint, Some(db)) if !self.prepared => {
                self.marker_writes += 1;
                db.put(MARKER_KEY, self.marker_writes.to_string().as_bytes())?;
                db.sync()?;
            }
            (Shape::Checkpoint, _) => {}
            (Shape::Close, _) => {
                let db = Db::open(cairn::Options::in_memory())?;
                // `snapshot` counts a snapshot's marker key too; this database has none.
                let keys = usize::try_from(self.snapshot.map_or(0, |keys| keys.saturating_sub(1)))
                    .unwrap_or(0);
                let (key_set, value) = (KeySet::sequential(keys), value_of_length(VALUE_BYTES));
                let order = SplitMix64::new(0x636c_6f73).permutation(keys);
                let mut batch = cairn::WriteBatch::new();
                for chunk in order.chunks(1_000) {
                    batch.clear();
                    for &index in chunk {
                        batch.put(key_set.get(index), &value);
                    }
                    db.write(&batch)?;
                }
                let held = db.stats().keys_indexed;
                self.check(held == keys, || format!("{held} keys, not {keys}"))?;
                self.db = Some(db);
            }
            (shape, _) => {
                if let Some(db) = self.db.take() {
                    db.close()?;
                }
                if self.tear.is_none() {
                    let dir = self.dir.path();
                    for name in files_ending(dir, ".wal")?.difference(&self.segments_built) {
                        let path = dir.join(name);
                        let failed =
                            |error| WorkloadError::io("recovery", "remove a segment", &error);
                        std::fs::remove_file(&path).map_err(failed)?;
                    }
                    if shape == Shape::TornOpen {
                        self.tear = Some(self.tear_next_frame()?);
                    }
                }
            }
        }
        self.prepared = true;
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.prepared) {
            return Err(self.failed("an operation ran without prepare"));
        }
        if self.shape == Shape::Close {
            let db = self.db.take().ok_or_else(|| self.failed("no database"))?;
            let started = std::time::Instant::now();
            db.close()?;
            drop(db);
            self.reported.push(started.elapsed());
            return Ok(());
        }
        if self.shape == Shape::Checkpoint {
            let db = self.db.as_ref().ok_or_else(|| self.failed("no database"))?;
            let report = db.checkpoint()?;
            let wrote = report.file.is_some().then_some(report.entries);
            let expected = self.snapshot;
            let detail = || format!("the checkpoint wrote {wrote:?} keys, expected {expected:?}");
            self.check(wrote == expected, detail)?;
            self.reported.push(report.duration);
            return Ok(());
        }
        let tear = self.tear.take();
        let prepared = self.db.is_none() && (self.shape == Shape::TornOpen) == tear.is_some();
        self.check(prepared, || "an open ran without prepare".to_owned())?;
        let db = open(self.dir.path(), Durability::Strict)?;
        let report = db.recovery_report();
        self.db = Some(db);
        let loaded = report.snapshot.as_ref().map(|snapshot| snapshot.entries);
        let found = (report.wal_records_replayed, loaded);
        let expected = (self.records, self.snapshot);
        let detail =
            || format!("recovery replayed (records, snapshot keys) {found:?}, not {expected:?}");
        self.check(found == expected, detail)?;
        let last_version = report.last_version.get();
        let torn = report
            .torn_tail
            .as_ref()
            .map(|torn| (torn.offset, last_version + 1));
        let detail = || format!("expected a torn tail at {tear:?}, found {torn:?}");
        self.check(torn == tear, detail)?;
        self.reported.push(report.duration);
        Ok(())
    }
}

impl Recovery {
    /// The size of the newest snapshot file in the fixture's directory (0 when it has none).
    pub fn snapshot_bytes(&self) -> Result<u64> {
        let names = files_ending(self.dir.path(), ".snap")?;
        let Some(newest) = names.last() else {
            return Ok(0);
        };
        let path = self.dir.path().join(newest);
        let failed = |error| WorkloadError::io(self.workload, "read a snapshot's size", &error);
        Ok(std::fs::metadata(path).map_err(failed)?.len())
    }
}

/// The disk's floor under a checkpoint: a new file of the snapshot's size written in
/// 256 KiB `pwrite`s and synced once, as the snapshot writer writes it (without
/// its header, checksums, rename and directory sync). One file per run, removed before the next.
#[derive(Debug)]
pub struct SnapshotFloor {
    bytes: u64,
    block: Vec<u8>,
    written: u64,
    /// Declared last: removed after the files are.
    dir: DataDir,
}

/// One `pwrite` of [`SnapshotFloor`]: the snapshot writer's block size.
const FLOOR_WRITE_BYTES: usize = 256 * 1024;

impl SnapshotFloor {
    /// A floor of `bytes` per run.
    pub fn new(bytes: u64) -> Result<Self> {
        Ok(SnapshotFloor {
            bytes,
            block: value_of_length(FLOOR_WRITE_BYTES),
            written: 0,
            dir: DataDir::create("snapshot-floor")?,
        })
    }

    fn path(&self, run: u64) -> std::path::PathBuf {
        self.dir.path().join(format!("floor-{run}.bin"))
    }
}

impl Workload for SnapshotFloor {
    fn prepare(&mut self, _runs: usize) -> Result<()> {
        if self.written > 0 {
            let path = self.path(self.written - 1);
            let failed = |error| WorkloadError::io("snapshot_floor", "remove a file", &error);
            std::fs::remove_file(path).map_err(failed)?;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let failed = |error| WorkloadError::io("snapshot_floor", "write and sync", &error);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path(self.written))
            .map_err(failed)?;
        let mut offset = 0;
        while offset < self.bytes {
            let length = usize::try_from(self.bytes - offset)
                .map_or(FLOOR_WRITE_BYTES, |left| left.min(FLOOR_WRITE_BYTES));
            let block = self.block.get(..length).unwrap_or_default();
            file.write_all_at(block, offset).map_err(failed)?;
            offset += length as u64;
        }
        file.sync_data().map_err(failed)?;
        self.written += 1;
        Ok(())
    }
}

impl Drop for Recovery {
    fn drop(&mut self) {
        drop(self.db.as_ref().map(Db::close));
    }
}

fn open(dir: &Path, durability: Durability) -> Result<Db> {
    Ok(Db::open(bench_options(durability, Some(dir)))?)
}

/// Fixtures are written with a 64 MiB buffer flushed every 100 ms, so that writing a million
/// puts is bounded by the engine, not by the disk.
const FIXTURE_DURABILITY: Durability = Durability::Buffered {
    flush_interval: Duration::from_millis(100),
    buffer_bytes_max: 64 * 1024 * 1024,
};

fn files_ending(dir: &Path, suffix: &str) -> Result<BTreeSet<OsString>> {
    let listing = |error| WorkloadError::io("recovery", format!("list {}", dir.display()), &error);
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let name = entry.map_err(listing)?.file_name();
        if name.to_string_lossy().ends_with(suffix) {
            names.insert(name);
        }
    }
    Ok(names)
}

/// A fresh directory holding the first `entries` keys, put one commit each in random order.
fn shuffled(label: &str, entries: usize, seed: u64, keep_open: bool) -> Result<Built> {
    let dir = DataDir::create(label)?;
    let db = open(dir.path(), FIXTURE_DURABILITY)?;
    let (keys, value) = (KeySet::sequential(entries), value_of_length(VALUE_BYTES));
    for index in SplitMix64::new(seed).permutation(entries) {
        db.put(keys.get(index), &value)?;
    }
    if keep_open {
        db.sync()?;
        return Ok((dir, Some(db)));
    }
    db.close()?;
    Ok((dir, None))
}

/// Leaves a snapshot of `entries` keys (plus the marker) and nothing after it in the WAL.
fn build_snapshot(dir: &DataDir, entries: usize) -> Result<Db> {
    let db = open(dir.path(), FIXTURE_DURABILITY)?;
    let (keys, value) = (KeySet::sequential(entries), value_of_length(VALUE_BYTES));
    fill_in_order(&db, &keys, &value)?;
    db.close()?;
    let db = open(dir.path(), FIXTURE_DURABILITY)?;
    db.checkpoint()?;
    db.put(MARKER_KEY, b"0")?;
    db.sync()?;
    let report = db.checkpoint()?;
    let held = report.entries;
    let detail = format!("the fixture's snapshot holds {held} keys, not {entries} + 1");
    let holds = report.entries == entries as u64 + 1 && report.file.is_some();
    super::ensure(holds, "recovery", &detail).map(|()| db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::time_runs;

    #[test]
    fn every_shape_recovers_what_it_holds_on_every_operation_and_cleans_up() {
        let shapes = [
            Recovery::wal_replay(500),
            Recovery::torn_tail(500),
            Recovery::snapshot_load(500),
            Recovery::snapshot_wal(500, 200),
            Recovery::checkpoint(500),
            Recovery::close(500),
        ];
        for recovery in shapes {
            let mut recovery = recovery.expect("fixture");
            for _ in 0..3 {
                time_runs(&mut recovery, 1).expect("each operation checks its report");
            }
            assert_eq!(recovery.reported().len(), 3);
            assert!(recovery.run_op().is_err(), "no prepare");
            assert!(time_runs(&mut recovery, 2).is_err(), "groups of two");
            let dir = recovery.dir.path().to_path_buf();
            let files = |suffix| files_ending(&dir, suffix).expect("listing");
            match recovery.shape {
                // The segment files are what was built, however many opens ran.
                Shape::Open => {
                    recovery.prepare(1).expect("close and restore");
                    assert_eq!(files(".wal"), recovery.segments_built);
                }
                // Checkpoints keep the newest two snapshots.
                Shape::Checkpoint => {
                    assert_eq!(files(".snap").len(), 2);
                    assert!(recovery.snapshot_bytes().expect("size") > 500 * 100);
                }
                Shape::TornOpen | Shape::Close => {}
            }
            drop(recovery);
            assert!(!dir.exists(), "{} was left behind", dir.display());
        }
    }

    #[test]
    fn the_disk_floor_writes_a_file_of_the_size_asked_and_keeps_only_the_last() {
        let bytes = 600 * 1024 + 7;
        let mut floor = SnapshotFloor::new(bytes).expect("floor");
        for _ in 0..3 {
            floor.prepare(1).expect("prepare");
            floor.run_op().expect("run");
        }
        let dir = floor.dir.path().to_path_buf();
        let files = files_ending(&dir, ".bin").expect("listing");
        assert_eq!(files.len(), 1, "{files:?}");
        let size = files
            .iter()
            .map(|name| std::fs::metadata(dir.join(name)).expect("size").len())
            .sum::<u64>();
        assert_eq!(size, bytes);
        drop(floor);
        assert!(!dir.exists());
    }
}

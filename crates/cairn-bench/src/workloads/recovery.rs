//! Recovery workloads: how long opening a database takes, for each shape recovery has to
//! handle, and how long writing a snapshot takes.
//!
//! - [`Reopen::wal_replay`]: a WAL of `entries` single-put commits and no snapshot; the open replays
//!   every record.
//! - [`SnapshotCreation`]: `db.checkpoint()` of a database holding `entries` keys.
//! - [`Reopen::snapshot_load`]: a snapshot of `entries` keys and nothing after it in the WAL.
//! - [`Reopen::snapshot_wal`]: the same snapshot plus `wal_records` overwrites after it.
//! - [`Reopen::torn_tail`]: a WAL whose last frame was cut in the middle, as a crash during its
//!   write leaves it; the open must cut it off (and sync) before anything new is appended.
//!
//! Each is a [`Workload`] whose operation is the one thing timed: an open (`Db::open`, so
//! the figure is the wall time a caller waits) or a checkpoint. Everything else happens in
//! [`Workload::prepare`], untimed: closing the database the previous operation opened, putting
//! the directory back as it was built, tearing the next frame, or committing the write a new
//! checkpoint needs. A prepared workload allows exactly one operation, so drivers must time
//! them one per group (`measure_latency` with one op per sample, or `time_runs(w, 1)`);
//! anything else is an error rather than a figure that includes a close.
//!
//! Putting the directory back: every open appends into a new WAL segment (a file recovery
//! read is never written again), so after each measured open the workload deletes the segment
//! files that did not exist when the fixture was built. Without that, every open would find one
//! more (empty) segment than the one before, and the runs would not measure the same thing.
//!
//! Fixtures are written with `Buffered` durability and a large buffer (the write path is not
//! what is measured). A WAL that is replayed holds single puts, one commit per key, in a random
//! key order, and so does the database `snapshot_creation` checkpoints: their index is built
//! in no particular order, as commits arrive. (A checkpoint walks the index, and one built in
//! key order is walked several times faster: the flattering case, not measured here.) The
//! snapshots that are loaded are filled in key order, [`FILL_BATCH_KEYS`] keys per commit: a
//! snapshot file is sorted whatever order its keys arrived in, and this builds it, and the
//! replay that moves its commits into a new segment, several times faster. Measured opens use
//! `Strict`, whose open does no background work. All files stay in the page cache (the
//! fixtures were just written): the figures are warm-cache recovery, the CPU and fsync cost,
//! not the cost of reading a cold disk.
//!
//! Every open checks its [`cairn::RecoveryReport`] (records replayed, snapshot loaded, torn
//! tail found), so a recovery that silently did less is an error, not a fast number.
//!
//! [`FILL_BATCH_KEYS`]: super::durability::FILL_BATCH_KEYS

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn::{Db, Durability, RecoveryReport};
use cairn_log::{encoded_frame_bytes, list_segments, SegmentReader, StdFileSystem};

use super::durability::{bench_options, fill_in_order, DataDir};
use super::{Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};
use crate::sizes::VALUE_BYTES;

/// How often the fixture writer's background thread flushes.
pub const FIXTURE_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Buffered bytes that make the fixture writer flush early (64 MiB): large, so that writing a
/// million puts is bounded by the engine, not by waiting for the disk.
pub const FIXTURE_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// The key of the extra commits the workloads make between checkpoints and before tearing the
/// WAL. It sorts after every `key:` key, so it never collides with one.
pub const MARKER_KEY: &[u8] = b"marker:bench";

/// Suffix of a WAL segment file.
const SEGMENT_SUFFIX: &str = ".wal";

/// The Buffered mode fixtures are written with: a large buffer, flushed every 100 ms.
pub fn fixture_durability() -> Durability {
    Durability::Buffered {
        flush_interval: FIXTURE_FLUSH_INTERVAL,
        buffer_bytes_max: FIXTURE_BUFFER_BYTES,
    }
}

/// What one measured open or checkpoint reported about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryFigures {
    /// Wall time of the operation, as the caller saw it.
    pub wall: Duration,
    /// The duration the engine's own report gives (`RecoveryReport::duration` or
    /// `CheckpointReport::duration`).
    pub reported: Duration,
    /// WAL records the open replayed (0 for a checkpoint).
    pub records_replayed: u64,
    /// Keys in the snapshot loaded or written (0 when none).
    pub snapshot_entries: u64,
}

/// A data directory holding a built fixture, and the WAL segment files it held when built.
#[derive(Debug)]
struct FixtureDir {
    dir: DataDir,
    segments_built: BTreeSet<OsString>,
}

impl FixtureDir {
    /// Records the segment files `dir` holds now, the state [`FixtureDir::restore`] returns to.
    fn seal(dir: DataDir) -> Result<Self> {
        let segments_built = segment_files(dir.path())?;
        Ok(FixtureDir {
            dir,
            segments_built,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes every segment file created since the fixture was built. The database must be
    /// closed.
    fn restore(&self) -> Result<()> {
        for name in segment_files(self.path())?.difference(&self.segments_built) {
            let path = self.path().join(name);
            std::fs::remove_file(&path).map_err(|error| {
                WorkloadError::io(
                    "recovery",
                    format!("remove the new segment {}", path.display()),
                    error,
                )
            })?;
        }
        Ok(())
    }
}

/// The names of the WAL segment files in `dir`.
fn segment_files(dir: &Path) -> Result<BTreeSet<OsString>> {
    let listing = |error| WorkloadError::io("recovery", format!("list {}", dir.display()), error);
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let name = entry.map_err(listing)?.file_name();
        if name.to_string_lossy().ends_with(SEGMENT_SUFFIX) {
            names.insert(name);
        }
    }
    Ok(names)
}

/// Opens `dir` with the fixture writer's durability.
fn open_for_writing(dir: &Path) -> Result<Db> {
    Ok(Db::open(bench_options(fixture_durability(), Some(dir)))?)
}

/// Opens `dir` as the measured opens do: Strict, no maintenance thread.
fn open_for_recovery(dir: &Path) -> Result<Db> {
    Ok(Db::open(bench_options(Durability::Strict, Some(dir)))?)
}

/// Puts every key of `keys` once, one commit each, in a random order.
fn put_all_shuffled(db: &Db, keys: &KeySet, value: &[u8], seed: u64) -> Result<()> {
    for index in SplitMix64::new(seed).permutation(keys.len()) {
        db.put(keys.get(index), value)?;
    }
    Ok(())
}

/// Writes a WAL of `entries` single-put commits (keys `key_at(0..entries)`, shuffled) into a
/// fresh directory and closes the database: no snapshot.
fn build_wal(label: &str, entries: usize) -> Result<FixtureDir> {
    let dir = DataDir::create(label)?;
    let db = open_for_writing(dir.path())?;
    put_all_shuffled(
        &db,
        &KeySet::sequential(entries),
        &value_of_length(VALUE_BYTES),
        0x7761_6C00,
    )?;
    db.close()?;
    drop(db);
    FixtureDir::seal(dir)
}

/// Writes `entries` keys in batches, then leaves a snapshot of them (plus [`MARKER_KEY`]) and a WAL with
/// nothing after it: write, close, reopen (so that new commits go to a new segment),
/// checkpoint, commit the marker, checkpoint again (which deletes every segment the first
/// snapshot covers). Returns the database, still open.
fn build_snapshot(dir: &DataDir, entries: usize) -> Result<Db> {
    let db = open_for_writing(dir.path())?;
    let keys = KeySet::sequential(entries);
    fill_in_order(&db, &keys, &value_of_length(VALUE_BYTES))?;
    db.close()?;
    drop(db);
    let db = open_for_writing(dir.path())?;
    db.checkpoint()?;
    db.put(MARKER_KEY, b"0")?;
    db.sync()?;
    let report = db.checkpoint()?;
    let expected = entries as u64 + 1;
    if report.entries != expected || report.file.is_none() {
        return Err(WorkloadError::unexpected(
            "recovery",
            format!(
                "the fixture's snapshot holds {} keys (written: {}), expected {expected}",
                report.entries,
                report.file.is_some()
            ),
        ));
    }
    Ok(db)
}

/// Refuses a timed group of more than one `operation` (see the module docs).
fn one_per_group(workload: &'static str, operation: &str, runs: usize) -> Result<()> {
    if runs > 1 {
        let detail = format!(
            "one {operation} per timed group, asked for {runs} (time it one op per sample)"
        );
        return Err(WorkloadError::unexpected(workload, detail));
    }
    Ok(())
}

/// Checks an open's report against what the fixture holds.
fn check_report(
    workload: &'static str,
    report: &RecoveryReport,
    records_replayed: u64,
    snapshot_entries: Option<u64>,
) -> Result<()> {
    let loaded = report.snapshot.as_ref().map(|snapshot| snapshot.entries);
    if report.wal_records_replayed != records_replayed || loaded != snapshot_entries {
        return Err(WorkloadError::unexpected(
            workload,
            format!(
                "recovery replayed {} WAL records and loaded a snapshot of {loaded:?} keys; \
                 expected {records_replayed} records and {snapshot_entries:?}",
                report.wal_records_replayed
            ),
        ));
    }
    Ok(())
}

/// `Db::open` of a built fixture, in one of the four shapes the module docs list; each
/// constructor says which. Every open is checked against what the fixture holds.
#[derive(Debug)]
pub struct Reopen {
    workload: &'static str,
    /// WAL records every open must replay.
    records: u64,
    /// Keys of the snapshot every open must load, if any.
    snapshot: Option<u64>,
    /// True for the torn-tail shape: each open must find and cut a torn frame.
    torn: bool,
    tear: Option<Tear>,
    /// Open until the next `prepare` closes it.
    db: Option<Db>,
    /// True once `prepare` made the next open valid.
    prepared: bool,
    figures: Vec<RecoveryFigures>,
    /// Declared last: removed after the database is closed.
    fixture: FixtureDir,
}

impl Reopen {
    fn new(
        workload: &'static str,
        fixture: FixtureDir,
        records: u64,
        snapshot: Option<u64>,
    ) -> Self {
        Reopen {
            workload,
            records,
            snapshot,
            torn: false,
            tear: None,
            db: None,
            prepared: false,
            figures: Vec::new(),
            fixture,
        }
    }

    /// `wal_replay`: a WAL of `entries` single-put commits, no snapshot (written untimed;
    /// about 2 µs per entry).
    pub fn wal_replay(entries: usize) -> Result<Self> {
        let fixture = build_wal("wal-replay", entries)?;
        Ok(Reopen::new("wal_replay", fixture, entries as u64, None))
    }

    /// `snapshot_load`: a snapshot of `entries` keys (plus the marker) with no WAL record after
    /// it (built untimed: a write of every key, a replay, two checkpoints).
    pub fn snapshot_load(entries: usize) -> Result<Self> {
        let dir = DataDir::create("snapshot-load")?;
        build_snapshot(&dir, entries)?.close()?;
        let snapshot = Some(entries as u64 + 1);
        Ok(Reopen::new(
            "snapshot_load",
            FixtureDir::seal(dir)?,
            0,
            snapshot,
        ))
    }

    /// `snapshot_wal_recovery`: a snapshot of `entries` keys followed by `wal_records`
    /// single-put commits (overwrites of random keys of the snapshot) in the WAL.
    pub fn snapshot_wal(entries: usize, wal_records: usize) -> Result<Self> {
        if entries == 0 {
            return Err(WorkloadError::unexpected(
                "snapshot_wal_recovery",
                "needs at least one key in the snapshot",
            ));
        }
        let dir = DataDir::create("snapshot-wal")?;
        let db = build_snapshot(&dir, entries)?;
        let keys = KeySet::sequential(entries);
        let value = value_of_length(VALUE_BYTES);
        let mut random = SplitMix64::new(0x7461_696C);
        for _ in 0..wal_records {
            db.put(keys.get(random.below(keys.len())), &value)?;
        }
        db.close()?;
        drop(db);
        let (records, snapshot) = (wal_records as u64, Some(entries as u64 + 1));
        let fixture = FixtureDir::seal(dir)?;
        Ok(Reopen::new(
            "snapshot_wal_recovery",
            fixture,
            records,
            snapshot,
        ))
    }

    /// `wal_truncation`: a WAL of `entries` commits whose last frame was cut in the middle.
    ///
    /// `prepare` (untimed) opens the fixture, commits one more put (of [`MARKER_KEY`]),
    /// closes, and truncates the segment holding that commit halfway through its frame, as a
    /// crash during the write would leave it. The measured open must replay the `entries`
    /// commits, report the torn tail at exactly that frame, and come back at the version
    /// before it.
    pub fn torn_tail(entries: usize) -> Result<Self> {
        let fixture = build_wal("torn-tail", entries)?;
        let mut reopen = Reopen::new("wal_truncation", fixture, entries as u64, None);
        reopen.torn = true;
        Ok(reopen)
    }

    /// What every measured open reported, in order.
    pub fn figures(&self) -> &[RecoveryFigures] {
        &self.figures
    }

    /// Commits the marker, closes, and cuts its frame in half.
    fn tear_next_frame(&self) -> Result<Tear> {
        let failed = |what: String| WorkloadError::unexpected("wal_truncation", what);
        let db = open_for_recovery(self.fixture.path())?;
        let version = db.put(MARKER_KEY, b"torn")?;
        db.close()?;
        drop(db);
        let fs = StdFileSystem;
        let segments = list_segments(&fs, self.fixture.path())
            .map_err(|error| failed(format!("cannot list segments: {error}")))?;
        let last = segments
            .last()
            .ok_or_else(|| failed("the WAL has no segment".to_owned()))?;
        let mut reader = SegmentReader::open(&fs, last, usize::MAX)
            .map_err(|error| failed(format!("cannot read a segment: {error}")))?;
        let mut last_frame = None;
        while let Some((offset, frame)) = reader
            .next()
            .map_err(|error| failed(format!("cannot read a frame: {error}")))?
        {
            let frame_bytes = encoded_frame_bytes(frame.body.len()) as u64;
            last_frame = Some((offset, frame_bytes, frame.lsn));
        }
        let Some((frame_offset, frame_bytes, lsn)) = last_frame else {
            return Err(failed(format!("{} holds no frame", last.path.display())));
        };
        if lsn != version.get() {
            return Err(failed(format!(
                "the last frame has LSN {lsn}, the marker commit was {}",
                version.get()
            )));
        }
        OpenOptions::new()
            .write(true)
            .open(&last.path)
            .and_then(|file| file.set_len(frame_offset + frame_bytes / 2))
            .map_err(|error| WorkloadError::io("wal_truncation", "cut the last frame", error))?;
        Ok(Tear { frame_offset, lsn })
    }
}

/// Checks that `report` found the torn tail exactly where `tear` cut it.
fn check_tear(report: &RecoveryReport, tear: &Tear) -> Result<()> {
    match &report.torn_tail {
        Some(torn)
            if torn.offset == tear.frame_offset && report.last_version.get() + 1 == tear.lsn =>
        {
            Ok(())
        }
        other => Err(WorkloadError::unexpected(
            "wal_truncation",
            format!(
                "expected a torn tail at offset {} and version {}; the report says {other:?} \
                 and version {}",
                tear.frame_offset,
                tear.lsn - 1,
                report.last_version.get()
            ),
        )),
    }
}

impl Workload for Reopen {
    /// Closes the database the last open left and puts the directory back (tearing a new
    /// frame for the torn shape); refuses groups of more than one op.
    fn prepare(&mut self, runs: usize) -> Result<()> {
        one_per_group(self.workload, "open", runs)?;
        if let Some(db) = self.db.take() {
            db.close()?;
        }
        if !self.torn || self.tear.is_none() {
            self.fixture.restore()?;
        }
        if self.torn && self.tear.is_none() {
            self.tear = Some(self.tear_next_frame()?);
        }
        self.prepared = true;
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let tear = if self.torn {
            Some(self.tear.take().ok_or_else(|| {
                WorkloadError::unexpected("wal_truncation", "an open ran without a torn frame")
            })?)
        } else {
            None
        };
        if !std::mem::take(&mut self.prepared) || self.db.is_some() {
            return Err(WorkloadError::unexpected(
                self.workload,
                "an open ran without prepare (one open per timed group)",
            ));
        }
        let started = Instant::now();
        let db = open_for_recovery(self.fixture.path())?;
        let wall = started.elapsed();
        let report = db.recovery_report();
        self.db = Some(db);
        check_report(self.workload, &report, self.records, self.snapshot)?;
        if let Some(tear) = &tear {
            check_tear(&report, tear)?;
        }
        self.figures.push(RecoveryFigures {
            wall,
            reported: report.duration,
            records_replayed: report.wal_records_replayed,
            snapshot_entries: report
                .snapshot
                .as_ref()
                .map_or(0, |snapshot| snapshot.entries),
        });
        Ok(())
    }
}

impl Drop for Reopen {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = db.close();
        }
    }
}

/// Where a torn frame was cut.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tear {
    /// Offset of the torn frame: the length recovery must cut the segment back to.
    frame_offset: u64,
    /// The LSN of the torn frame, which recovery must drop.
    lsn: u64,
}

/// `db.checkpoint()` of an open database holding `entries` keys.
///
/// A checkpoint at a version that already has a snapshot writes nothing, so `prepare` commits
/// one overwrite of [`MARKER_KEY`] (and syncs it) before each. Every checkpoint after the
/// first also deletes what the new snapshot made redundant (the WAL below the older kept
/// snapshot, the oldest snapshot file): that is part of what a checkpoint costs.
#[derive(Debug)]
pub struct SnapshotCreation {
    db: Db,
    entries: u64,
    marker_writes: u64,
    prepared: bool,
    figures: Vec<RecoveryFigures>,
    /// Declared last: removed after the database is closed.
    dir: DataDir,
}

impl SnapshotCreation {
    /// Opens a fresh database and writes `entries` keys into it, one put each, in a random
    /// order (untimed).
    pub fn new(entries: usize) -> Result<Self> {
        let dir = DataDir::create("snapshot-creation")?;
        let db = open_for_writing(dir.path())?;
        put_all_shuffled(
            &db,
            &KeySet::sequential(entries),
            &value_of_length(VALUE_BYTES),
            0x6372_6561,
        )?;
        db.sync()?;
        Ok(SnapshotCreation {
            db,
            entries: entries as u64,
            marker_writes: 0,
            prepared: false,
            figures: Vec::new(),
            dir,
        })
    }

    /// What every measured checkpoint reported, in order.
    pub fn figures(&self) -> &[RecoveryFigures] {
        &self.figures
    }

    /// The database's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Workload for SnapshotCreation {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        one_per_group("snapshot_creation", "checkpoint", runs)?;
        if !self.prepared {
            self.marker_writes += 1;
            self.db
                .put(MARKER_KEY, self.marker_writes.to_string().as_bytes())?;
            self.db.sync()?;
            self.prepared = true;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.prepared) {
            return Err(WorkloadError::unexpected(
                "snapshot_creation",
                "a checkpoint ran without prepare: it would find nothing new to write",
            ));
        }
        let started = Instant::now();
        let report = self.db.checkpoint()?;
        let wall = started.elapsed();
        let expected = self.entries + 1;
        if report.file.is_none() || report.entries != expected {
            return Err(WorkloadError::unexpected(
                "snapshot_creation",
                format!(
                    "the checkpoint wrote {} keys (file written: {}), expected {expected}",
                    report.entries,
                    report.file.is_some()
                ),
            ));
        }
        self.figures.push(RecoveryFigures {
            wall,
            reported: report.duration,
            records_replayed: 0,
            snapshot_entries: report.entries,
        });
        Ok(())
    }
}

impl Drop for SnapshotCreation {
    fn drop(&mut self) {
        let _ = self.db.close();
    }
}

/// The median of `durations` (the lower middle for an even count), or zero when empty.
pub fn median(durations: impl IntoIterator<Item = Duration>) -> Duration {
    let mut sorted: Vec<Duration> = durations.into_iter().collect();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::time_runs;

    const ENTRIES: usize = 500;

    fn leaves_nothing_behind(path: &Path, workload: impl Workload) {
        let path = path.to_path_buf();
        drop(workload);
        assert!(!path.exists(), "{} was left behind", path.display());
    }

    #[test]
    fn wal_replay_replays_every_record_on_every_open() {
        let mut replay = Reopen::wal_replay(ENTRIES).expect("fixture");
        for _ in 0..3 {
            time_runs(&mut replay, 1).expect("the open replays everything");
        }
        assert_eq!(replay.figures().len(), 3);
        assert!(replay.figures().iter().all(|figures| {
            figures.records_replayed == ENTRIES as u64 && figures.snapshot_entries == 0
        }));
        // The segment files are what was built, however many opens ran.
        replay.prepare(1).expect("close and restore");
        let files = segment_files(replay.fixture.path()).expect("listing");
        assert_eq!(files, replay.fixture.segments_built);
        let path = replay.fixture.path().to_path_buf();
        leaves_nothing_behind(&path, replay);
    }

    #[test]
    fn an_open_without_prepare_or_in_a_group_is_refused() {
        let mut replay = Reopen::wal_replay(10).expect("fixture");
        assert!(replay.run_op().is_err(), "no prepare");
        assert!(replay.prepare(2).is_err(), "groups of two");
        assert!(time_runs(&mut replay, 2).is_err());
    }

    #[test]
    fn checkpoints_write_every_key_each_time() {
        let mut creation = SnapshotCreation::new(ENTRIES).expect("fixture");
        for _ in 0..3 {
            time_runs(&mut creation, 1).expect("each checkpoint writes a snapshot");
        }
        assert!(creation
            .figures()
            .iter()
            .all(|figures| figures.snapshot_entries == ENTRIES as u64 + 1));
        assert!(
            creation.run_op().is_err(),
            "a checkpoint needs a new commit first"
        );
        let snapshots = std::fs::read_dir(creation.dir())
            .expect("listing")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".snap"))
            })
            .count();
        assert_eq!(snapshots, 2, "the newest two snapshots are kept");
        let path = creation.dir().to_path_buf();
        leaves_nothing_behind(&path, creation);
    }

    #[test]
    fn snapshot_opens_load_the_snapshot_and_replay_only_the_tail() {
        let mut load = Reopen::snapshot_load(ENTRIES).expect("fixture");
        time_runs(&mut load, 1).expect("loads the snapshot");
        time_runs(&mut load, 1).expect("loads it again");
        assert_eq!(load.figures()[1].snapshot_entries, ENTRIES as u64 + 1);
        assert_eq!(load.figures()[1].records_replayed, 0);

        let mut recovery = Reopen::snapshot_wal(ENTRIES, 200).expect("fixture");
        time_runs(&mut recovery, 1).expect("snapshot plus tail");
        time_runs(&mut recovery, 1).expect("again");
        assert_eq!(recovery.figures()[1].records_replayed, 200);
        assert_eq!(recovery.figures()[1].snapshot_entries, ENTRIES as u64 + 1);
    }

    #[test]
    fn every_torn_open_finds_and_cuts_the_torn_frame() {
        let mut torn = Reopen::torn_tail(ENTRIES).expect("fixture");
        for _ in 0..3 {
            time_runs(&mut torn, 1).expect("recovery reports the torn tail");
        }
        assert!(torn
            .figures()
            .iter()
            .all(|figures| figures.records_replayed == ENTRIES as u64));
        let path = torn.fixture.path().to_path_buf();
        leaves_nothing_behind(&path, torn);
    }

    #[test]
    fn median_picks_the_middle() {
        let ms = Duration::from_millis;
        assert_eq!(median([ms(5), ms(1), ms(3)]), ms(3));
        assert_eq!(median([ms(4), ms(1), ms(3), ms(2)]), ms(2));
        assert_eq!(median([]), Duration::ZERO);
    }
}

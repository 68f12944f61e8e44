//! Durability workloads: what a Strict put costs against the physical floor of this disk.
//! (How Strict commits share fsyncs under concurrency is the side-by-side `group_commit`.)
//!
//! - [`ModePut`]: `put` of a random existing key in an `InMemory`, `Buffered` or `Strict`
//!   database. A Strict put is acknowledged only after its WAL frame is fdatasync'ed, so its
//!   latency is bounded below by one fdatasync of this disk.
//! - [`RawFdatasync`]: the floor, with no engine at all: a 128-byte `pwrite` at the next
//!   offset of a file preallocated with `set_len` (sparse, as WAL segments are), then
//!   `sync_data`. A Strict put that costs about one of these is as cheap as durability gets on
//!   this disk.
//! - [`measure_alternating`]: times two workloads one operation of each in turn. fdatasync
//!   latency on a virtual disk can change by an order of magnitude from one second to the next
//!   (a host's I/O throttling, a neighbour's writeback); measured in alternation, a Strict put
//!   and a raw fdatasync see the same disk, so their ratio means something even then.
//!
//! Every database lives in a fresh [`DataDir`] under the system temp directory, removed with
//! its files when the workload is dropped. Durable databases are opened with the maintenance
//! thread off, so no automatic checkpoint runs in the middle of a measurement; the WAL then
//! grows for as long as a workload runs (about 160 bytes per put), which a few seconds of
//! measurement keep to a few hundred MB.
//!
//! Trade-off: all of this measures the page cache and the disk of the machine it runs on;
//! the ratio to [`RawFdatasync`] is the figure that means something elsewhere.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn::{Db, Durability, Options, WriteBatch};

use super::{Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};
use crate::measure::{latency_histogram, latency_of, time_group, Budget, Latency, Plan};

/// Keys written per commit while filling a database (untimed): large enough that filling a
/// Strict database takes a handful of fsyncs, small enough to stay a modest WAL frame.
pub const FILL_BATCH_KEYS: usize = 1_000;

/// Size the raw fdatasync file is preallocated to, in bytes (64 MiB, a WAL segment's default).
pub const RAW_SYNC_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes each raw fdatasync operation writes before syncing: about one Strict put's frame.
pub const RAW_SYNC_WRITE_BYTES: usize = 128;

/// Attempts at finding an unused data directory name before giving up.
const DATA_DIR_ATTEMPTS_MAX: u32 = 100;

/// Distinguishes the data directories one process creates.
static DATA_DIRS_CREATED: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory under `std::env::temp_dir()`, removed with everything in it when
/// dropped. Names carry the process id, a per-process counter and the clock, so concurrent
/// runs never share one.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Creates `cairn-bench-{label}-...` under the system temp directory.
    pub fn create(label: &str) -> Result<Self> {
        let base = std::env::temp_dir();
        let mut last_error = None;
        for _ in 0..DATA_DIR_ATTEMPTS_MAX {
            let sequence = DATA_DIRS_CREATED.fetch_add(1, Ordering::Relaxed);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos());
            let path = base.join(format!(
                "cairn-bench-{label}-{}-{sequence}-{nanos}",
                std::process::id()
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(DataDir { path }),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    last_error = Some(error);
                }
                Err(error) => {
                    return Err(WorkloadError::io(
                        "data directory",
                        format!("cannot create {}", path.display()),
                        error,
                    ))
                }
            }
        }
        Err(WorkloadError::io(
            "data directory",
            format!("no unused name under {}", base.display()),
            last_error.unwrap_or_else(|| std::io::Error::other("no attempt made")),
        ))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        // Best effort: a benchmark must not fail after its figures are taken.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Options for a database of `durability` in `dir` (`None` for `InMemory`), with the
/// maintenance thread (and so automatic checkpoints) off.
pub fn bench_options(durability: Durability, dir: Option<&Path>) -> Options {
    let options = match dir {
        Some(dir) => Options::new(dir).durability(durability),
        None => Options::in_memory(),
    };
    options.maintenance_interval(Duration::ZERO)
}

/// A database of one durability mode filled with `key_at(0) .. key_at(key_count - 1)`, and
/// the directory it lives in. Dropping it closes the database, then removes the directory.
#[derive(Debug)]
pub struct DurableFixture {
    db: Db,
    keys: Arc<KeySet>,
    value_bytes: usize,
    durability: Durability,
    /// Declared last: removed after the database is closed and dropped.
    dir: Option<DataDir>,
}

impl DurableFixture {
    /// Opens a fresh database of `durability` (in a new [`DataDir`] unless `InMemory`) and
    /// fills it, [`FILL_BATCH_KEYS`] keys per commit, untimed.
    pub fn build(durability: Durability, key_count: usize, value_bytes: usize) -> Result<Self> {
        let dir = match durability {
            Durability::InMemory => None,
            _ => Some(DataDir::create(&mode_name(durability))?),
        };
        let db = Db::open(bench_options(durability, dir.as_ref().map(DataDir::path)))?;
        let keys = KeySet::sequential(key_count);
        fill_in_order(&db, &keys, &value_of_length(value_bytes))?;
        db.sync()?;
        Ok(DurableFixture {
            db,
            keys: Arc::new(keys),
            value_bytes,
            durability,
            dir,
        })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Its keys, in order.
    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// Its durability mode.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Its directory (`None` for `InMemory`).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(DataDir::path)
    }
}

impl Drop for DurableFixture {
    fn drop(&mut self) {
        // Close before the directory goes: the WAL flusher must not write into a removed file.
        let _ = self.db.close();
    }
}

/// Puts every key of `keys` with `value`, in order, [`FILL_BATCH_KEYS`] keys per commit.
pub(crate) fn fill_in_order(db: &Db, keys: &KeySet, value: &[u8]) -> Result<()> {
    let mut batch = WriteBatch::new();
    for chunk in keys.iter().collect::<Vec<_>>().chunks(FILL_BATCH_KEYS) {
        batch.clear();
        for key in chunk {
            batch.put(key, value);
        }
        db.write(&batch)?;
    }
    Ok(())
}

/// `inmemory`, `buffered` or `strict`: the name a durability mode goes by in the rows.
pub fn mode_name(durability: Durability) -> String {
    match durability {
        Durability::InMemory => "inmemory",
        Durability::Buffered { .. } => "buffered",
        _ => "strict",
    }
    .to_owned()
}

/// `put` of a value to a random existing key of a database of one durability mode.
#[derive(Debug)]
pub struct ModePut {
    fixture: DurableFixture,
    value: Vec<u8>,
    random: SplitMix64,
}

impl ModePut {
    /// A fresh database of `durability` holding `key_count` keys of `value_bytes`, whose keys
    /// the workload then overwrites.
    pub fn new(durability: Durability, key_count: usize, value_bytes: usize) -> Result<Self> {
        if key_count == 0 {
            return Err(WorkloadError::unexpected(
                "durability put",
                "needs at least one key",
            ));
        }
        let fixture = DurableFixture::build(durability, key_count, value_bytes)?;
        Ok(ModePut {
            value: value_of_length(fixture.value_bytes),
            fixture,
            random: SplitMix64::new(0x6475_7261),
        })
    }

    /// The database the puts go to.
    pub fn fixture(&self) -> &DurableFixture {
        &self.fixture
    }
}

impl Workload for ModePut {
    fn run_op(&mut self) -> Result<()> {
        let keys = &self.fixture.keys;
        let key = keys.get(self.random.below(keys.len()));
        self.fixture.db.put(key, &self.value)?;
        Ok(())
    }
}

/// The physical floor of a Strict commit: a [`RAW_SYNC_WRITE_BYTES`] positional write at the
/// next offset of a preallocated file, then `sync_data` (fdatasync). No engine involved.
#[derive(Debug)]
pub struct RawFdatasync {
    file: File,
    payload: Vec<u8>,
    next_offset: u64,
    /// Declared last: removed after the file is closed.
    dir: DataDir,
}

impl RawFdatasync {
    /// Creates the file (sparse, [`RAW_SYNC_FILE_BYTES`] long) in a fresh directory and syncs
    /// it and its length once, untimed.
    pub fn new() -> Result<Self> {
        let dir = DataDir::create("fdatasync")?;
        let path = dir.path().join("raw.sync");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|error| WorkloadError::io("raw_fdatasync", "create the file", error))?;
        file.set_len(RAW_SYNC_FILE_BYTES)
            .and_then(|()| file.sync_all())
            .map_err(|error| WorkloadError::io("raw_fdatasync", "preallocate the file", error))?;
        Ok(RawFdatasync {
            file,
            payload: value_of_length(RAW_SYNC_WRITE_BYTES),
            next_offset: 0,
            dir,
        })
    }

    /// Bytes written so far (wrapping at the end of the file).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The directory the file lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Workload for RawFdatasync {
    fn run_op(&mut self) -> Result<()> {
        let length = self.payload.len() as u64;
        if self.next_offset + length > RAW_SYNC_FILE_BYTES {
            // Wrapped: at about 0.3 ms per operation, after more than two minutes of syncs.
            self.next_offset = 0;
        }
        self.file
            .write_all_at(&self.payload, self.next_offset)
            .and_then(|()| self.file.sync_data())
            .map_err(|error| WorkloadError::io("raw_fdatasync", "write and sync", error))?;
        self.next_offset += length;
        Ok(())
    }
}

/// Measures the latency of `first` and `second` in alternation: one operation of `first`,
/// then one of `second`, each prepared (untimed) and timed on its own, until `plan`'s budget
/// is spent (for `Budget::Runs(n)`, `n` operations of each). The warm-up alternates too.
pub fn measure_alternating<A, B>(
    first: &mut A,
    second: &mut B,
    plan: Plan,
) -> Result<(Latency, Latency)>
where
    A: Workload + ?Sized,
    B: Workload + ?Sized,
{
    let warm_up_started = Instant::now();
    while warm_up_started.elapsed() < plan.warm_up {
        time_group(first, 1)?;
        time_group(second, 1)?;
    }
    let mut histograms = [latency_histogram()?, latency_histogram()?];
    let started = Instant::now();
    let mut pairs = 0_u64;
    loop {
        let spent = match plan.budget {
            Budget::Time(limit) => pairs > 0 && started.elapsed() >= limit,
            Budget::Runs(limit) => pairs >= limit,
        };
        if spent {
            break;
        }
        histograms[0].saturating_record(time_group(first, 1)?);
        histograms[1].saturating_record(time_group(second, 1)?);
        pairs += 1;
    }
    let [first, second] = histograms;
    Ok((latency_of(&first, 1), latency_of(&second, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::time_runs;

    #[test]
    fn a_data_dir_is_fresh_and_removed_on_drop() {
        let first = DataDir::create("test").expect("temp dir is writable");
        let second = DataDir::create("test").expect("temp dir is writable");
        assert_ne!(first.path(), second.path());
        let path = first.path().to_path_buf();
        std::fs::write(path.join("file"), b"x").expect("the directory is writable");
        drop(first);
        assert!(!path.exists(), "the directory and its files are removed");
        assert!(second.path().is_dir());
    }

    #[test]
    fn mode_puts_persist_and_leave_nothing_behind() {
        for durability in [
            Durability::InMemory,
            Durability::buffered(),
            Durability::Strict,
        ] {
            let mut put = ModePut::new(durability, 100, 100).expect("fresh database");
            time_runs(&mut put, 50).expect("puts succeed");
            let dir = put.fixture().dir().map(Path::to_path_buf);
            let stats = put.fixture().db().stats();
            assert_eq!(stats.keys_indexed, 100, "puts overwrite existing keys");
            if durability == Durability::InMemory {
                assert!(dir.is_none());
                assert_eq!(stats.wal_frames, 0);
            } else {
                // One frame per fill batch (100 keys fit one) and one per put.
                assert_eq!(stats.wal_frames, 51, "{durability:?}");
            }
            drop(put);
            if let Some(dir) = dir {
                assert!(!dir.exists(), "{} was left behind", dir.display());
            }
        }
    }

    #[test]
    fn raw_fdatasync_advances_and_wraps_inside_its_file() {
        let mut raw = RawFdatasync::new().expect("temp dir is writable");
        time_runs(&mut raw, 3).expect("write and sync succeed");
        assert_eq!(raw.next_offset(), 3 * RAW_SYNC_WRITE_BYTES as u64);
        raw.next_offset = RAW_SYNC_FILE_BYTES - 1;
        time_runs(&mut raw, 1).expect("write and sync succeed");
        assert_eq!(
            raw.next_offset(),
            RAW_SYNC_WRITE_BYTES as u64,
            "wrapped to the start"
        );
        let dir = raw.dir().to_path_buf();
        drop(raw);
        assert!(!dir.exists());
    }

    #[test]
    fn alternating_measurement_takes_the_same_count_of_each() {
        let mut raw = RawFdatasync::new().expect("temp dir is writable");
        let mut put = ModePut::new(Durability::Strict, 10, 100).expect("fresh database");
        let plan = Plan {
            warm_up: Duration::ZERO,
            budget: Budget::Runs(20),
        };
        let (raw_latency, put_latency) =
            measure_alternating(&mut raw, &mut put, plan).expect("both succeed");
        assert_eq!((raw_latency.samples, put_latency.samples), (20, 20));
        assert!(raw_latency.p50_ns > 0 && raw_latency.p50_ns <= raw_latency.max_ns);
        assert_eq!(raw.next_offset(), 20 * RAW_SYNC_WRITE_BYTES as u64);
        // One frame for the fill, one per put.
        assert_eq!(put.fixture().db().stats().wal_frames, 21);
    }
}

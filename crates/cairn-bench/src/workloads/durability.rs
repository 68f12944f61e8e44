//! The Strict put's physical floor and the data directories every durable store lives in.
//! [`RawFdatasync`] is a Strict commit with no engine; fdatasync latency on a virtual disk can
//! change tenfold from one second to the next, so the Strict put is timed in alternation with
//! it. Databases run with the maintenance thread off: no checkpoint runs mid-measurement,
//! except in [`StrictBatches`], which checkpoints itself so that WAL segments retire and are
//! recycled, as a long-running service's do.

use super::{Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};
use crate::sizes::{FIXTURE_KEYS, VALUE_BYTES};
use cairn::{Db, Durability, Options, WriteBatch};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Keys written per commit while filling a database (untimed): large enough that filling a
/// Strict database takes a handful of fsyncs, small enough to stay a modest WAL frame.
pub const FILL_BATCH_KEYS: usize = 1_000;
/// Size the raw fdatasync file is preallocated to, in bytes (64 MiB, a WAL segment's default).
pub const RAW_SYNC_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes each raw fdatasync operation writes before syncing: about one Strict put's frame.
pub const RAW_SYNC_WRITE_BYTES: usize = 128;
/// Bytes of a durable batch's write: about the WAL frame of 1,000 puts of 16-byte keys and
/// 100-byte values.
pub const RAW_BATCH_WRITE_BYTES: usize = 137_000;

/// Keys of each [`StrictBatches`] commit.
pub const STRICT_BATCH_KEYS: usize = 1_000;
/// WAL segment size of [`StrictBatches`] databases: 16 MiB, about 120 batches, so the setup
/// reaches a recycled segment in a few hundred batches.
pub const STRICT_BATCH_SEGMENT_BYTES: u64 = 16 << 20;
/// [`StrictBatches`] checkpoints after this many batches (about 8.7 MiB of WAL), so retired
/// segments keep the free list supplied.
pub const STRICT_BATCH_CHECKPOINT_EVERY: u64 = 64;
/// Most untimed batches the setup writes looking for a recycled segment.
pub const STRICT_BATCH_SETUP_MAX: u64 = 4_000;

/// What the raw fdatasync file is before the timed writes land in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFile {
    /// Extended with `set_len`: holes, as a fresh WAL segment is. A write into a hole makes
    /// the file system allocate blocks, which the fdatasync must then commit too.
    Sparse,
    /// Written with zeros and synced (untimed) first, as a file whose blocks already exist.
    Written,
}

/// A fresh, empty directory (never shared by concurrent runs), removed with its files on drop.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Creates `cairn-bench-{label}-...` (up to 100 names tried).
    pub fn create(label: &str) -> Result<Self> {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let mut tries = 0;
        loop {
            let sequence = CREATED.fetch_add(1, Ordering::Relaxed);
            let clock = SystemTime::now().duration_since(UNIX_EPOCH);
            let (process, nanos) = (std::process::id(), clock.map_or(0, |d| d.subsec_nanos()));
            let name = format!("cairn-bench-{label}-{process}-{sequence}-{nanos}");
            let path = std::env::temp_dir().join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(DataDir { path }),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && tries < 100 => {
                    tries += 1;
                }
                Err(error) => {
                    let action = format!("create {}", path.display());
                    return Err(WorkloadError::io("data directory", action, &error));
                }
            }
        }
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

/// Options for a database of `durability` in `dir`, with the maintenance thread off.
pub fn bench_options(durability: Durability, dir: Option<&Path>) -> Options {
    let options = match dir {
        Some(dir) => Options::new(dir).durability(durability),
        None => Options::in_memory(),
    };
    options.maintenance_interval(Duration::ZERO)
}

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

/// The physical floor of a Strict commit (see the module docs). No engine involved.
#[derive(Debug)]
pub struct RawFdatasync {
    file: File,
    kind: RawFile,
    payload: Vec<u8>,
    next_offset: u64,
    /// Declared last: removed after the file is closed.
    #[allow(dead_code, reason = "held so that it is removed on drop")]
    dir: DataDir,
}

impl RawFdatasync {
    /// Writes of [`RAW_SYNC_WRITE_BYTES`] into a sparse file: a Strict put's floor.
    pub fn new() -> Result<Self> {
        RawFdatasync::with(RAW_SYNC_WRITE_BYTES, RawFile::Sparse)
    }

    /// Writes of `write_bytes` into a file of `kind`, [`RAW_SYNC_FILE_BYTES`] long, created
    /// and synced untimed.
    pub fn with(write_bytes: usize, kind: RawFile) -> Result<Self> {
        let dir = DataDir::create("fdatasync")?;
        let mut options = OpenOptions::new();
        let file = options.read(true).write(true).create_new(true);
        let file = file
            .open(dir.path().join("raw.sync"))
            .and_then(|file| {
                prepare(&file, kind)?;
                Ok(file)
            })
            .map_err(|error| WorkloadError::io("raw_fdatasync", "create", &error))?;
        Ok(RawFdatasync {
            file,
            kind,
            payload: value_of_length(write_bytes),
            next_offset: 0,
            dir,
        })
    }
}

/// Makes `file` [`RAW_SYNC_FILE_BYTES`] of `kind`, synced.
fn prepare(file: &File, kind: RawFile) -> std::io::Result<()> {
    match kind {
        RawFile::Sparse => {
            // Cut to nothing first, so a file reused after a wrap has holes again.
            file.set_len(0)?;
            file.set_len(RAW_SYNC_FILE_BYTES)?;
        }
        RawFile::Written => {
            let zeros = vec![0_u8; 1 << 20];
            let mut offset = 0;
            while offset < RAW_SYNC_FILE_BYTES {
                file.write_all_at(&zeros, offset)?;
                offset += zeros.len() as u64;
            }
        }
    }
    file.sync_all()
}

impl Workload for RawFdatasync {
    fn run_op(&mut self) -> Result<()> {
        let length = self.payload.len() as u64;
        if self.next_offset + length > RAW_SYNC_FILE_BYTES {
            // Wrapped (for 128-byte writes, after minutes of syncs): a sparse file gets its
            // holes back, in this one operation.
            if self.kind == RawFile::Sparse {
                prepare(&self.file, self.kind)
                    .map_err(|error| WorkloadError::io("raw_fdatasync", "recreate", &error))?;
            }
            self.next_offset = 0;
        }
        let written = self.file.write_all_at(&self.payload, self.next_offset);
        let synced = written.and_then(|()| self.file.sync_data());
        synced.map_err(|error| WorkloadError::io("raw_fdatasync", "write and sync", &error))?;
        self.next_offset += length;
        Ok(())
    }
}

/// Strict [`STRICT_BATCH_KEYS`]-key batches (random keys of [`FIXTURE_KEYS`], values of
/// [`VALUE_BYTES`]) into a database of its own, checkpointing every
/// [`STRICT_BATCH_CHECKPOINT_EVERY`] batches. With `recycle`, retired WAL segments are written
/// over as new ones; without, every segment is a new, sparse file.
#[derive(Debug)]
pub struct StrictBatches {
    db: Db,
    keys: KeySet,
    random: SplitMix64,
    batch: WriteBatch,
    value: Vec<u8>,
    batches: u64,
    /// Declared last: removed after the database is closed (see `Drop`).
    dir: DataDir,
}

impl StrictBatches {
    /// The two variants, recycling first, each set up untimed to the same point: the
    /// recycling one writes until its current WAL segment is a recycled one (at most
    /// [`STRICT_BATCH_SETUP_MAX`] batches), the other as many batches.
    pub fn pair() -> Result<(Self, Self)> {
        let mut recycled = StrictBatches::new(true)?;
        while !recycled.writes_into_a_recycled_segment()? {
            if recycled.batches >= STRICT_BATCH_SETUP_MAX {
                return Err(WorkloadError::unexpected(
                    "strict_batches",
                    format!("no recycled WAL segment after {STRICT_BATCH_SETUP_MAX} batches"),
                ));
            }
            recycled.run_op()?;
        }
        let mut fresh = StrictBatches::new(false)?;
        while fresh.batches < recycled.batches {
            fresh.run_op()?;
        }
        Ok((recycled, fresh))
    }

    fn new(recycle: bool) -> Result<Self> {
        let dir = DataDir::create("strict-batches")?;
        let options = bench_options(Durability::Strict, Some(dir.path()))
            .wal_segment_bytes(STRICT_BATCH_SEGMENT_BYTES)
            .wal_recycle_segments(if recycle { 2 } else { 0 });
        let db = Db::open(options)?;
        let keys = KeySet::sequential(FIXTURE_KEYS);
        let value = value_of_length(VALUE_BYTES);
        fill_in_order(&db, &keys, &value)?;
        Ok(StrictBatches {
            db,
            keys,
            random: SplitMix64::new(0x6261_7463),
            batch: WriteBatch::new(),
            value,
            batches: 0,
            dir,
        })
    }

    /// True when the newest WAL segment of the database is a recycled file.
    fn writes_into_a_recycled_segment(&self) -> Result<bool> {
        let segments = cairn_log::list_segments(&cairn_log::StdFileSystem, self.dir.path())
            .map_err(|error| {
                WorkloadError::unexpected("strict_batches", format!("list WAL segments: {error}"))
            })?;
        Ok(segments.last().is_some_and(|segment| segment.recycled))
    }
}

impl Workload for StrictBatches {
    fn run_op(&mut self) -> Result<()> {
        self.batch.clear();
        for _ in 0..STRICT_BATCH_KEYS {
            let key = self.keys.get(self.random.below(self.keys.len()));
            self.batch.put(key, &self.value);
        }
        self.db.write(&self.batch)?;
        self.batches += 1;
        if self.batches.is_multiple_of(STRICT_BATCH_CHECKPOINT_EVERY) {
            self.db.checkpoint()?;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        STRICT_BATCH_KEYS as u64
    }
}

impl Drop for StrictBatches {
    fn drop(&mut self) {
        // Close before the directory goes: best effort, the figures are taken.
        let _ = self.db.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::time_runs;

    #[test]
    fn data_dirs_are_fresh_and_raw_fdatasync_wraps_inside_its_file() {
        let first = DataDir::create("test").expect("temp dir is writable");
        let second = DataDir::create("test").expect("temp dir is writable");
        assert_ne!(first.path(), second.path());
        let path = first.path().to_path_buf();
        std::fs::write(path.join("file"), b"x").expect("the directory is writable");
        drop(first);
        assert!(!path.exists(), "the directory and its files are removed");
        assert!(second.path().is_dir());
        let mut raw = RawFdatasync::new().expect("temp dir is writable");
        time_runs(&mut raw, 3).expect("write and sync succeed");
        assert_eq!(raw.next_offset, 3 * RAW_SYNC_WRITE_BYTES as u64);
        raw.next_offset = RAW_SYNC_FILE_BYTES - 1;
        time_runs(&mut raw, 1).expect("write and sync succeed");
        assert_eq!(raw.next_offset, RAW_SYNC_WRITE_BYTES as u64, "wrapped");
        let dir = raw.dir.path().to_path_buf();
        drop(raw);
        assert!(!dir.exists());
    }

    #[test]
    fn a_written_raw_file_has_its_blocks_and_a_sparse_one_has_holes() {
        use std::os::unix::fs::MetadataExt;
        let allocated = |raw: &RawFdatasync| {
            let metadata = raw.file.metadata().expect("metadata");
            assert_eq!(metadata.len(), RAW_SYNC_FILE_BYTES);
            metadata.blocks() * 512
        };
        let mut written = RawFdatasync::with(RAW_BATCH_WRITE_BYTES, RawFile::Written)
            .expect("temp dir is writable");
        assert!(
            allocated(&written) >= RAW_SYNC_FILE_BYTES,
            "every block is written"
        );
        let mut sparse = RawFdatasync::with(RAW_BATCH_WRITE_BYTES, RawFile::Sparse)
            .expect("temp dir is writable");
        time_runs(&mut sparse, 2).expect("write and sync succeed");
        assert!(
            allocated(&sparse) < RAW_SYNC_FILE_BYTES / 2,
            "a sparse file is mostly holes"
        );
        // A wrap gives a sparse file its holes back.
        sparse.next_offset = RAW_SYNC_FILE_BYTES - 1;
        time_runs(&mut sparse, 1).expect("write and sync succeed");
        assert_eq!(sparse.next_offset, RAW_BATCH_WRITE_BYTES as u64, "wrapped");
        assert!(allocated(&sparse) < RAW_SYNC_FILE_BYTES / 2);
        time_runs(&mut written, 1).expect("write and sync succeed");
    }
}

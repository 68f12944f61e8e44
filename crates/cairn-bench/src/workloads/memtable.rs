//! Workloads of the write-behind repository (`cairn-memtable`): the benchmark groups of the
//! memtable issue, over a no-op persister (the memtable alone) or a real one. Every operation
//! checks its result (a missing record, a wrong index answer or a refused write is an error).

use super::{ensure, run_threads, ParallelWorkload, Result, Workload, WorkloadError};
use cairn_memtable::{
    Backpressure, IndexKind, IndexSpec, IndexValue, NoopPersister, Options, Persister, Record,
    Repository, WalOptions, WalSync,
};
use cairn_testkit::{SplitMix64, TempDir};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

const WORKLOAD: &str = "memtable";

/// The benchmark record: a primary key, a unique name, a non-unique category and an ordered
/// value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchItem {
    id: u64,
    name: String,
    category: u32,
    value: i64,
}

impl BenchItem {
    fn new(id: u64) -> Self {
        BenchItem {
            id,
            name: format!("item-{id}"),
            category: u32::try_from(id % 16).unwrap_or_default(),
            value: i64::try_from(id % 1_000).unwrap_or_default(),
        }
    }
}

impl Record for BenchItem {
    type Key = u64;
    const INDEXES: &'static [IndexSpec] = &[
        IndexSpec::new("name", IndexKind::Unique),
        IndexSpec::new("category", IndexKind::NonUnique),
        IndexSpec::new("value", IndexKind::Ordered),
    ];

    fn key(&self) -> u64 {
        self.id
    }

    fn index_value(&self, index: usize) -> Option<IndexValue> {
        match index {
            0 => Some(IndexValue::from(&self.name)),
            1 => Some(IndexValue::from(self.category)),
            2 => Some(IndexValue::from(self.value)),
            _ => None,
        }
    }
}

fn failed_format() -> WorkloadError {
    WorkloadError::unexpected(WORKLOAD, "formatting a name failed")
}

fn failed(error: cairn_memtable::Error) -> WorkloadError {
    WorkloadError::client("cairn-memtable", error)
}

/// Which store is behind the repository.
pub enum Backend {
    /// Nothing: the memtable alone.
    Noop,
    /// Any persister (its own directory kept alive by the workload, if any).
    Persister(Arc<dyn Persister>, Option<Arc<TempDir>>),
}

/// A repository for benchmarks: rotation at `rotate_bytes` (never by age), a deep queue (writes measure the
/// memtable, not a stalled flusher), and optionally a Buffered write-ahead log.
pub struct Bench {
    repo: Arc<Repository<BenchItem>>,
    _dirs: Vec<Arc<TempDir>>,
}

impl Bench {
    /// Opens one.
    pub fn open(backend: Backend, rotate_bytes: usize, wal: Option<WalSync>) -> Result<Self> {
        let mut dirs = Vec::new();
        let persister: Arc<dyn Persister> = match backend {
            Backend::Noop => Arc::new(NoopPersister::new()),
            Backend::Persister(persister, dir) => {
                dirs.extend(dir);
                persister
            }
        };
        // Rotation by size only: a timed rotation would flush a read fixture into the no-op
        // persister mid-row, and its records would be gone.
        let mut options = Options {
            rotate_bytes,
            rotate_after: None,
            immutable_max: 64,
            backpressure: Backpressure::Block(Duration::from_secs(60)),
            ..Options::default()
        };
        if let Some(sync) = wal {
            let dir = Arc::new(TempDir::new("bench-memtable-wal"));
            options.wal = Some(WalOptions::new(dir.path().join("wal"), sync));
            dirs.push(dir);
        }
        let repo = Repository::open(persister, options).map_err(failed)?;
        Ok(Bench {
            repo: Arc::new(repo),
            _dirs: dirs,
        })
    }

    /// Inserts records `0..count`.
    pub fn fill(&self, count: u64) -> Result<()> {
        for id in 0..count {
            self.repo.insert(BenchItem::new(id)).map_err(failed)?;
        }
        Ok(())
    }

    /// Flushes everything (the figure a caller times for flush throughput).
    pub fn flush(&self) -> Result<()> {
        self.repo.flush().map_err(failed)
    }

    /// Keys flushed so far.
    pub fn flushed_keys(&self) -> u64 {
        self.repo.stats().flushed_keys
    }

    /// Rotations so far: layers flushed plus layers waiting to flush.
    pub fn rotations(&self) -> u64 {
        let stats = self.repo.stats();
        let waiting = u64::try_from(stats.immutable.len()).unwrap_or(u64::MAX);
        stats.flushed_layers.saturating_add(waiting)
    }
}

/// Inserts `batch` new records per operation.
pub struct Inserts {
    bench: Bench,
    next: u64,
    batch: u64,
}

impl Inserts {
    /// Inserts of `batch` records per operation into `bench`.
    pub fn new(bench: Bench, batch: u64) -> Self {
        Inserts {
            bench,
            next: 0,
            batch,
        }
    }

    /// The repository inserted into.
    pub fn bench(&self) -> &Bench {
        &self.bench
    }
}

impl Workload for Inserts {
    fn run_op(&mut self) -> Result<()> {
        for _ in 0..self.batch {
            self.bench
                .repo
                .insert(BenchItem::new(self.next))
                .map_err(failed)?;
            self.next += 1;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.batch
    }
}

/// Records per layer of [`FloorInserts`]: about what a 4 MiB memtable layer of
/// [`BenchItem`]s holds.
pub const FLOOR_LAYER_RECORDS: usize = 32_768;

type FloorMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One layer of the floor: the maps a memtable layer needs, as bare `std` collections.
struct FloorLayer {
    records: FloorMap<u64, Arc<BenchItem>>,
    order: Vec<u64>,
    unique: FloorMap<IndexValue, u64>,
    by_value: [FloorMap<IndexValue, Vec<u64>>; 2],
}

impl FloorLayer {
    /// A layer sized for a full one, as a memtable sizes its next layer.
    fn sized() -> Self {
        let hasher = foldhash::fast::RandomState::default;
        FloorLayer {
            records: FloorMap::with_capacity_and_hasher(FLOOR_LAYER_RECORDS, hasher()),
            order: Vec::with_capacity(FLOOR_LAYER_RECORDS),
            unique: FloorMap::with_capacity_and_hasher(FLOOR_LAYER_RECORDS, hasher()),
            by_value: [FloorMap::default(), FloorMap::default()],
        }
    }
}

/// The floor of an insert: the same records and index entries as [`Inserts`], written into
/// bare `std` collections (a hash map per index, a vector for key order) with no lock, no
/// tombstone, no memory accounting and no flush; a full layer is dropped in place. What a
/// memtable insert costs above this is the repository's own; what this costs is the data
/// layout's, on this machine and allocator.
pub struct FloorInserts {
    layer: FloorLayer,
    next: u64,
    batch: u64,
}

impl FloorInserts {
    /// Inserts of `batch` records per operation.
    pub fn new(batch: u64) -> Self {
        FloorInserts {
            layer: FloorLayer::sized(),
            next: 0,
            batch,
        }
    }
}

impl Workload for FloorInserts {
    fn run_op(&mut self) -> Result<()> {
        for _ in 0..self.batch {
            let item = Arc::new(BenchItem::new(self.next));
            let layer = &mut self.layer;
            let name = IndexValue::from(&item.name);
            ensure(
                !layer.unique.contains_key(&name),
                "floor",
                "a unique value repeats",
            )?;
            layer.unique.insert(name, item.id);
            for (map, value) in layer.by_value.iter_mut().zip([
                IndexValue::from(item.category),
                IndexValue::from(item.value),
            ]) {
                map.entry(value).or_default().push(item.id);
            }
            layer.order.push(item.id);
            layer.records.insert(item.id, item);
            if layer.records.len() >= FLOOR_LAYER_RECORDS {
                self.layer = FloorLayer::sized();
            }
            self.next += 1;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.batch
    }
}

/// What a read-side operation does to a record of a filled repository.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// `get` by primary key.
    Get,
    /// `by_unique`: a lookup by the unique index (the name is formatted into a reused buffer,
    /// so the row times the lookup, not an allocation of the harness).
    UniqueIndex,
    /// `update` (read-modify-write of one field).
    Update,
    /// A `get` then an `upsert`, alternating.
    Mixed,
}

/// One [`Op`] per operation on random records of a filled repository.
pub struct OnFilled {
    bench: Bench,
    keys: u64,
    rng: SplitMix64,
    op: Op,
    turn: u64,
    name: String,
}

impl OnFilled {
    /// `op` over `bench` filled with `keys` records.
    pub fn new(bench: Bench, keys: u64, op: Op) -> Result<Self> {
        bench.fill(keys)?;
        Ok(OnFilled {
            bench,
            keys,
            rng: SplitMix64::new(0x6d65_6d74),
            op,
            turn: 0,
            name: String::new(),
        })
    }
}

impl Workload for OnFilled {
    fn run_op(&mut self) -> Result<()> {
        let id = self.rng.next_u64() % self.keys;
        let repo = &self.bench.repo;
        self.turn += 1;
        match self.op {
            Op::Get => {
                let found = repo.get(&id).map_err(failed)?;
                ensure(found.is_some_and(|r| r.id == id), WORKLOAD, "get missed")
            }
            Op::UniqueIndex => {
                self.name.clear();
                write!(self.name, "item-{id}").map_err(|_| failed_format())?;
                let found = repo
                    .by_unique("name", IndexValue::from(self.name.as_str()))
                    .map_err(failed)?;
                ensure(
                    found.is_some_and(|r| r.id == id),
                    WORKLOAD,
                    "by_unique missed",
                )
            }
            Op::Update => {
                let updated = repo
                    .update(&id, |old| BenchItem {
                        value: old.value + 1,
                        ..old.clone()
                    })
                    .map_err(failed)?;
                ensure(updated.id == id, WORKLOAD, "update returned another record")
            }
            Op::Mixed if self.turn.is_multiple_of(2) => {
                let found = repo.get(&id).map_err(failed)?;
                ensure(found.is_some(), WORKLOAD, "get missed")
            }
            Op::Mixed => {
                let old = repo.upsert(BenchItem::new(id)).map_err(failed)?;
                ensure(old.is_some(), WORKLOAD, "upsert found no record")
            }
        }
    }
}

/// Deletes records inserted (untimed) by `prepare`.
pub struct Deletes {
    bench: Bench,
    pending: Vec<u64>,
    next: u64,
}

impl Deletes {
    /// Deletes over `bench`.
    pub fn new(bench: Bench) -> Self {
        Deletes {
            bench,
            pending: Vec::new(),
            next: 0,
        }
    }
}

impl Workload for Deletes {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        self.pending.clear();
        for _ in 0..runs {
            self.bench
                .repo
                .insert(BenchItem::new(self.next))
                .map_err(failed)?;
            self.pending.push(self.next);
            self.next += 1;
        }
        self.pending.reverse();
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let id = self
            .pending
            .pop()
            .ok_or_else(|| WorkloadError::unexpected(WORKLOAD, "delete without prepare"))?;
        let old = self.bench.repo.delete(&id).map_err(failed)?;
        ensure(old.is_some(), WORKLOAD, "delete found no record")
    }
}

/// `threads` threads each inserting `per_thread` new records (run) or getting random records
/// of a filled repository.
pub struct Concurrent {
    bench: Bench,
    threads: u64,
    per_thread: u64,
    reads: Option<u64>,
    round: u64,
}

impl Concurrent {
    /// Concurrent inserts.
    pub fn inserts(bench: Bench, threads: u64, per_thread: u64) -> Self {
        Concurrent {
            bench,
            threads,
            per_thread,
            reads: None,
            round: 0,
        }
    }

    /// Concurrent gets over `keys` filled records.
    pub fn reads(bench: Bench, threads: u64, per_thread: u64, keys: u64) -> Result<Self> {
        bench.fill(keys)?;
        Ok(Concurrent {
            bench,
            threads,
            per_thread,
            reads: Some(keys),
            round: 0,
        })
    }
}

impl ParallelWorkload for Concurrent {
    fn run(&mut self) -> Result<Duration> {
        self.round += 1;
        let base = self.round * self.threads * self.per_thread + (1 << 40);
        let states: Vec<u64> = (0..self.threads).collect();
        let (repo, per_thread, reads) = (&self.bench.repo, self.per_thread, self.reads);
        run_threads(states, |_, thread| {
            let mut rng = SplitMix64::new(thread ^ base);
            for n in 0..per_thread {
                if let Some(keys) = reads {
                    let id = rng.next_u64() % keys;
                    let found = repo.get(&id).map_err(failed)?;
                    ensure(found.is_some(), WORKLOAD, "get missed")?;
                } else {
                    let id = base + thread * per_thread + n;
                    repo.insert(BenchItem::new(id)).map_err(failed)?;
                }
            }
            Ok(())
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.threads * self.per_thread
    }
}

/// The peer of [`Inserts`] without the memtable: each insert written straight to a Cairn
/// database as one commit of the record and its three index entries (the keys and sizes the
/// repository's persister would write).
pub struct DirectInserts {
    db: cairn::Db,
    next: u64,
    batch: u64,
}

impl DirectInserts {
    /// Direct inserts of `batch` records per operation into `db`.
    pub fn new(db: cairn::Db, batch: u64) -> Self {
        DirectInserts { db, next: 0, batch }
    }
}

impl Workload for DirectInserts {
    fn run_op(&mut self) -> Result<()> {
        for _ in 0..self.batch {
            let item = BenchItem::new(self.next);
            let id = item.id.to_be_bytes();
            let mut record = vec![1_u8];
            record.extend_from_slice(&id);
            record.extend_from_slice(item.name.as_bytes());
            record.extend_from_slice(&item.category.to_le_bytes());
            record.extend_from_slice(&item.value.to_le_bytes());
            let mut batch = cairn::WriteBatch::new();
            batch.put([&b"r"[..], &id].concat(), &record);
            batch.put([&b"uname\0\x01"[..], item.name.as_bytes()].concat(), id);
            let category = [
                &b"ncategory\0\x01"[..],
                &item.category.to_be_bytes(),
                b"\0\x01",
                &id,
            ];
            batch.put(category.concat(), [1]);
            let value = [
                &b"nvalue\0\x01"[..],
                &item.value.to_be_bytes(),
                b"\0\x01",
                &id,
            ];
            batch.put(value.concat(), [1]);
            self.db.write(&batch)?;
            self.next += 1;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.batch
    }
}

/// The in-memory reference for gets: a well-kept concurrent cache (`moka`) holding the same
/// records, read by random key like [`Op::Get`].
pub struct MokaGets {
    cache: moka::sync::Cache<u64, Arc<BenchItem>>,
    keys: u64,
    rng: SplitMix64,
}

impl MokaGets {
    /// A cache of `keys` records, with room for all of them.
    pub fn new(keys: u64) -> Self {
        let cache = moka::sync::Cache::new(keys.saturating_mul(2));
        for id in 0..keys {
            cache.insert(id, Arc::new(BenchItem::new(id)));
        }
        MokaGets {
            cache,
            keys,
            rng: SplitMix64::new(0x6d65_6d74),
        }
    }
}

impl Workload for MokaGets {
    fn run_op(&mut self) -> Result<()> {
        let id = self.rng.next_u64() % self.keys;
        let found = self.cache.get(&id);
        ensure(
            found.is_some_and(|r| r.id == id),
            WORKLOAD,
            "moka get missed",
        )
    }
}

//! The [`Repository`]: a typed, write-behind view of a persistent store.
//!
//! Structure: one active memtable (written under the writer lock), a bounded queue of immutable
//! memtables (`Arc`s, oldest first) waiting for the flusher thread, a read-through cache of
//! records read from the store, and the optional write-ahead log.
//!
//! Guarantees:
//! - Writes are serialized by one writer lock; each sees the newest state of its key across
//!   every layer and the store (`update` is a read-modify-write with no lost update).
//! - Reads go active, immutables newest to oldest, then cache and store. The first layer that
//!   holds the key (a record or a tombstone) answers.
//! - Index queries gather candidates from every layer and the store's index entries, resolve
//!   each candidate to its newest version and keep it only if that version still matches; so a
//!   stale entry anywhere (an older layer, a half-applied batch) never shows.
//! - Rotation moves the active memtable into the queue: no record or map is cloned. A writer
//!   waits only when the active memtable is over `rotate_bytes` and the queue is full, and then
//!   by [`Backpressure`].
//! - The flusher writes layers oldest first, one [`Batch`] per layer, retrying a failed batch
//!   with backoff for as long as it takes; a layer leaves memory only after its batch applied.
//! - With the write-ahead log, a write is logged before it is applied; on open the log is
//!   replayed into the memtable and flushing resumes. Log segments are deleted only after the
//!   layers covering them are flushed and the persister synced.
//!
//! Concurrent queries are not snapshots: each record is seen at some moment of the call.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_log::{Log, LogOptions, StdFileSystem, SyncPolicy};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::keys::{
    after_value, before_value, escape_into, index_prefix, multi_key, multi_value_prefix,
    record_key, split_multi_entry, unique_key, MULTI_TAG, RECORD_TAG,
};
use crate::memtable::{Memtable, Slot};
use crate::options::{Backpressure, Options, WalSync};
use crate::persist::{Batch, Persister};
use crate::record::{
    decode_record, encode_record, encoded_len, index_values, IndexKind, IndexValue, IndexValues,
    PrimaryKey, Record,
};

/// Log record type of a put (body: the stored record).
const WAL_PUT: u8 = 1;
/// Log record type of a delete (body: the encoded primary key).
const WAL_DELETE: u8 = 2;
/// Keys read from the store per page by index queries and scans.
const STORE_PAGE_KEYS: usize = 1024;
/// Value of a non-unique index entry (the key says everything).
const MULTI_ENTRY_VALUE: &[u8] = &[1];
/// Longest idle wait of the flusher thread.
const FLUSHER_TICK_MAX: Duration = Duration::from_millis(50);

type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Figures of one memtable layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Keys held: records and tombstones.
    pub entries: usize,
    /// Of which tombstones.
    pub tombstones: usize,
    /// Memory charged.
    pub bytes: usize,
    /// Time since the layer became active.
    pub age: Duration,
}

/// What [`Repository::stats`] reports.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The active memtable.
    pub active: LayerStats,
    /// The immutable memtables waiting to flush, oldest first.
    pub immutable: Vec<LayerStats>,
    /// Layers flushed since open.
    pub flushed_layers: u64,
    /// Keys (records and tombstones) flushed since open.
    pub flushed_keys: u64,
    /// Failed flush attempts since open (each was retried).
    pub flush_retries: u64,
    /// Age of the oldest layer still waiting to flush (zero when none waits).
    pub flush_lag: Duration,
    /// Time writers spent waiting for room in the queue.
    pub stall_time: Duration,
    /// Writes refused by backpressure.
    pub backpressure_rejections: u64,
    /// Reads answered by a memtable.
    pub memory_hits: u64,
    /// Reads answered by the read-through cache.
    pub cache_hits: u64,
    /// Reads that went to the store.
    pub store_reads: u64,
    /// Entries in the read-through cache.
    pub cache_entries: usize,
    /// Frames replayed from the write-ahead log at open.
    pub wal_replayed: u64,
}

impl Stats {
    /// Share of point reads answered from memory (memtables or cache); 1.0 before any read.
    #[expect(
        clippy::cast_precision_loss,
        reason = "a ratio of counters needs no exactness"
    )]
    pub fn hit_rate(&self) -> f64 {
        let hits = self.memory_hits.saturating_add(self.cache_hits);
        let total = hits.saturating_add(self.store_reads);
        if total == 0 {
            1.0
        } else {
            hits as f64 / total as f64
        }
    }
}

/// Whether the flusher keeps up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// The last flush attempt succeeded (or none was needed).
    Healthy,
    /// Flushes are failing and being retried; nothing is dropped.
    Retrying {
        /// Failed attempts in a row.
        failures: u64,
        /// The last error.
        last_error: String,
    },
    /// The repository is closed.
    Closed,
}

#[derive(Debug, Default)]
struct Counters {
    flushed_layers: AtomicU64,
    flushed_keys: AtomicU64,
    flush_retries: AtomicU64,
    stall_nanos: AtomicU64,
    rejections: AtomicU64,
    memory_hits: AtomicU64,
    cache_hits: AtomicU64,
    store_reads: AtomicU64,
    wal_replayed: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

struct Layers<R: Record> {
    active: Memtable<R>,
    /// Oldest first.
    immutable: VecDeque<Arc<Memtable<R>>>,
}

impl<R: Record> Layers<R> {
    /// The newest slot of `key` in memory.
    fn newest(&self, key: &R::Key) -> Option<&Slot<R>> {
        self.active.slot(key).or_else(|| {
            self.immutable
                .iter()
                .rev()
                .find_map(|layer| layer.slot(key))
        })
    }

    /// Every layer, newest first.
    fn newest_first(&self) -> impl Iterator<Item = &Memtable<R>> {
        std::iter::once(&self.active).chain(self.immutable.iter().rev().map(AsRef::as_ref))
    }
}

/// The read-through cache: bounded, first in first out, invalidated per flushed key.
struct Cache<R: Record> {
    map: FastMap<R::Key, Option<Arc<R>>>,
    order: VecDeque<R::Key>,
    /// Raised by every invalidation: a store read that started before it must not populate.
    epoch: u64,
    capacity: usize,
}

impl<R: Record> Cache<R> {
    fn insert(&mut self, epoch: u64, key: R::Key, value: Option<Arc<R>>) {
        if self.capacity == 0 || epoch != self.epoch {
            return;
        }
        while self.order.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        debug_assert!(self.map.len() <= self.capacity);
    }
}

#[derive(Debug, Default)]
struct Wake {
    requested: bool,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct Progress {
    /// Number of the last layer flushed.
    flushed_through: u64,
}

struct WriterState {
    /// Scratch buffer for encoding.
    buffer: Vec<u8>,
}

struct Shared<R: Record> {
    options: Options,
    persister: Arc<dyn Persister>,
    reads_store: bool,
    writer: Mutex<WriterState>,
    /// Number the next layer gets.
    next_layer_id: AtomicU64,
    layers: RwLock<Layers<R>>,
    progress: Mutex<Progress>,
    progress_changed: Condvar,
    wake: Mutex<Wake>,
    wake_flusher: Condvar,
    cache: Mutex<Cache<R>>,
    wal: Option<Log>,
    counters: Counters,
    health: Mutex<Health>,
    closing: AtomicBool,
    /// Set by a write that leaves the active memtable at or over `rotate_bytes`, cleared once
    /// it is rotated or found under it: the next write makes room first only when it is set.
    /// Only writes grow the active memtable, and they are serialized, so a clear flag means it
    /// has room.
    over_limit: AtomicBool,
}

/// A typed write-behind repository. See the module docs.
pub struct Repository<R: Record> {
    shared: Arc<Shared<R>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl<R: Record> std::fmt::Debug for Repository<R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Repository")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Which values of an index a query wants.
enum Matcher<'a> {
    Exact(&'a IndexValue),
    Range(Bound<&'a IndexValue>, Bound<&'a IndexValue>),
    Prefix(&'a [u8]),
}

impl Matcher<'_> {
    fn matches(&self, value: &IndexValue) -> bool {
        match self {
            Matcher::Exact(wanted) => value == *wanted,
            Matcher::Range(low, high) => (*low, *high).contains(value),
            Matcher::Prefix(prefix) => value.starts_with(prefix),
        }
    }

    /// True when `value` and every larger value are past what the query wants.
    fn is_past(&self, value: &IndexValue) -> bool {
        match self {
            Matcher::Exact(wanted) => value > *wanted,
            Matcher::Range(_, high) => match high {
                Bound::Included(high) => value > *high,
                Bound::Excluded(high) => value >= *high,
                Bound::Unbounded => false,
            },
            Matcher::Prefix(prefix) => !value.starts_with(prefix) && value.as_bytes() > *prefix,
        }
    }
}

impl<R: Record> Repository<R> {
    /// Opens a repository over `persister`: checks the options, opens and replays the
    /// write-ahead log if configured, and starts the flusher thread.
    pub fn open(persister: Arc<dyn Persister>, options: Options) -> Result<Self> {
        options.validate()?;
        if R::INDEXES.len() > 255 {
            return Err(Error::InvalidOptions(
                "a record type has at most 255 indexes".to_owned(),
            ));
        }
        let mut frames: Vec<(u8, u64, Vec<u8>)> = Vec::new();
        let wal = match &options.wal {
            None => None,
            Some(wal) => {
                let sync = match wal.sync {
                    WalSync::Buffered => SyncPolicy::buffered(),
                    WalSync::Strict => SyncPolicy::Strict,
                };
                let mut log_options = LogOptions::new(sync);
                log_options.segment_bytes = wal.segment_bytes;
                // Segments are removed oldest first once flushed, so everything before the
                // first remaining one is in the store: replay starts there.
                std::fs::create_dir_all(&wal.dir).map_err(|error| {
                    cairn_log::LogError::io("create log directory", &wal.dir, error)
                })?;
                let flushed_through = cairn_log::list_segments(&StdFileSystem, &wal.dir)?
                    .first()
                    .map_or(0, |segment| segment.first_lsn.saturating_sub(1));
                let (log, _report) = Log::open(
                    Arc::new(StdFileSystem),
                    &wal.dir,
                    log_options,
                    flushed_through,
                    &mut |frame| {
                        frames.push((frame.record_type, frame.lsn, frame.body.to_vec()));
                        Ok(())
                    },
                )?;
                Some(log)
            }
        };
        let reads_store = persister.holds_data();
        let cache = Cache {
            map: FastMap::default(),
            order: VecDeque::new(),
            epoch: 0,
            capacity: options.cache_entries,
        };
        let shared = Arc::new(Shared {
            persister,
            reads_store,
            writer: Mutex::new(WriterState { buffer: Vec::new() }),
            next_layer_id: AtomicU64::new(2),
            layers: RwLock::new(Layers {
                active: Memtable::new(1),
                immutable: VecDeque::new(),
            }),
            progress: Mutex::new(Progress::default()),
            progress_changed: Condvar::new(),
            wake: Mutex::new(Wake::default()),
            wake_flusher: Condvar::new(),
            cache: Mutex::new(cache),
            wal,
            counters: Counters::default(),
            health: Mutex::new(Health::Healthy),
            closing: AtomicBool::new(false),
            over_limit: AtomicBool::new(false),
            options,
        });
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("cairn-memtable-flush".to_owned())
                .spawn(move || shared.flusher_loop())
                .map_err(Error::Thread)?
        };
        let repository = Repository {
            shared,
            flusher: Mutex::new(Some(flusher)),
        };
        repository.replay(frames)?;
        Ok(repository)
    }

    /// Applies the frames read from the write-ahead log, in log order.
    fn replay(&self, frames: Vec<(u8, u64, Vec<u8>)>) -> Result<()> {
        let shared = &*self.shared;
        for (record_type, lsn, body) in frames {
            let mut writer = shared.writer.lock();
            shared.make_room(&mut writer, true)?;
            match record_type {
                WAL_PUT => {
                    let record: R = decode_record(&body)?;
                    let key = record.key();
                    let current = shared.newest(&key)?;
                    shared.commit(
                        &mut writer,
                        &key,
                        current.as_ref(),
                        Some(Arc::new(record)),
                        Some(lsn),
                    )?;
                }
                WAL_DELETE => {
                    let key = R::Key::decode_key(&body).ok_or_else(|| Error::Decode {
                        reason: "a logged delete holds no valid key".to_owned(),
                    })?;
                    let current = shared.newest(&key)?;
                    shared.commit(&mut writer, &key, current.as_ref(), None, Some(lsn))?;
                }
                other => {
                    return Err(Error::Decode {
                        reason: format!("unknown log record type {other}"),
                    })
                }
            }
            bump(&shared.counters.wal_replayed, 1);
        }
        Ok(())
    }

    // ----- writes --------------------------------------------------------------------------

    /// Inserts a record whose key holds none. [`Error::AlreadyExists`] or
    /// [`Error::UniqueViolation`] write nothing.
    pub fn insert(&self, record: R) -> Result<()> {
        let record = Arc::new(record);
        let key = record.key();
        self.shared.write(&key, |current| {
            if current.is_some() {
                return Err(Error::AlreadyExists {
                    key: format!("{key:?}"),
                });
            }
            Ok(Some(record))
        })?;
        Ok(())
    }

    /// Inserts or replaces a record; returns the replaced one. A changed indexed field leaves
    /// no entry for the old value.
    pub fn upsert(&self, record: R) -> Result<Option<Arc<R>>> {
        let record = Arc::new(record);
        let key = record.key();
        self.shared.write(&key, |_| Ok(Some(record)))
    }

    /// Replaces the record at `key` with `change(newest record)`, atomically with respect to
    /// every other write: concurrent updates never lose one another. `change` runs under the
    /// writer lock: keep it short, and do not call the repository from it. Returns the new
    /// record; [`Error::NotFound`] when the key holds none.
    pub fn update(&self, key: &R::Key, change: impl FnOnce(&R) -> R) -> Result<Arc<R>> {
        let mut written = None;
        self.shared.write(key, |current| {
            let current = current.ok_or_else(|| Error::NotFound {
                key: format!("{key:?}"),
            })?;
            let new = Arc::new(change(current));
            let returned = new.key();
            if returned != *key {
                return Err(Error::KeyChanged {
                    key: format!("{key:?}"),
                    returned: format!("{returned:?}"),
                });
            }
            written = Some(Arc::clone(&new));
            Ok(Some(new))
        })?;
        written.ok_or_else(|| Error::NotFound {
            key: format!("{key:?}"),
        })
    }

    /// Deletes the record at `key`; returns it, or `None` when there was none (nothing is
    /// written then).
    pub fn delete(&self, key: &R::Key) -> Result<Option<Arc<R>>> {
        self.shared.write(key, |_| Ok(None))
    }

    // ----- reads ---------------------------------------------------------------------------

    /// The newest record at `key`.
    pub fn get(&self, key: &R::Key) -> Result<Option<Arc<R>>> {
        self.shared.get(key)
    }

    /// The newest records at `keys`, in the same order.
    pub fn get_many(&self, keys: &[R::Key]) -> Result<Vec<Option<Arc<R>>>> {
        let shared = &*self.shared;
        let mut out: Vec<Option<Option<Arc<R>>>> = {
            let layers = shared.layers.read();
            keys.iter()
                .map(|key| layers.newest(key).map(|slot| slot.value.clone()))
                .collect()
        };
        let answered = out.iter().filter(|found| found.is_some()).count();
        bump(&shared.counters.memory_hits, count(answered));
        if !shared.reads_store {
            return Ok(out.into_iter().map(Option::flatten).collect());
        }
        let epoch = {
            let cache = shared.cache.lock();
            for (slot, key) in out.iter_mut().zip(keys) {
                if slot.is_none() {
                    if let Some(value) = cache.map.get(key) {
                        bump(&shared.counters.cache_hits, 1);
                        *slot = Some(value.clone());
                    }
                }
            }
            cache.epoch
        };
        let missing: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, found)| found.is_none())
            .map(|(position, _)| position)
            .collect();
        if !missing.is_empty() {
            bump(&shared.counters.store_reads, count(missing.len()));
            let store_keys: Vec<Vec<u8>> = missing
                .iter()
                .filter_map(|&position| keys.get(position))
                .map(|key| record_key(&encode_pk(key)))
                .collect();
            let values = shared.persister.multi_get(&store_keys)?;
            let mut cache = shared.cache.lock();
            for (&position, value) in missing.iter().zip(values) {
                let (Some(key), Some(slot)) = (keys.get(position), out.get_mut(position)) else {
                    continue;
                };
                let record = decode_stored::<R>(key, value.as_deref())?;
                cache.insert(epoch, key.clone(), record.clone());
                *slot = Some(record);
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    /// Every live record holding `value` in the unique or non-unique (or ordered) index
    /// `index`, in key order.
    pub fn by_index(&self, index: &str, value: impl Into<IndexValue>) -> Result<Vec<Arc<R>>> {
        let value = value.into();
        let position = index_position::<R>(index, None)?;
        self.shared.query(position, &Matcher::Exact(&value))
    }

    /// The live record holding `value` in the unique index `index`, if any: what
    /// [`Repository::by_index`] returns for a unique index, without building a list.
    pub fn by_unique(&self, index: &str, value: impl Into<IndexValue>) -> Result<Option<Arc<R>>> {
        let value = value.into();
        let position = index_position::<R>(index, Some(IndexKind::Unique))?;
        if let Some(record) = self.shared.unique_in_memory(position, &value) {
            return Ok(Some(record));
        }
        let holders = self.shared.query(position, &Matcher::Exact(&value))?;
        debug_assert!(holders.len() <= 1, "a unique index has one holder at most");
        Ok(holders.into_iter().next())
    }

    /// Every live record whose value in the ordered index `index` lies in `range`, in
    /// (value, key) order.
    pub fn range_by_index(
        &self,
        index: &str,
        range: impl RangeBounds<IndexValue>,
    ) -> Result<Vec<Arc<R>>> {
        let position = index_position::<R>(index, Some(IndexKind::Ordered))?;
        let matcher = Matcher::Range(range.start_bound(), range.end_bound());
        let mut records = self.shared.query(position, &matcher)?;
        sort_by_value(&mut records, position);
        Ok(records)
    }

    /// Every live record whose value in the ordered index `index` starts with `prefix`, in
    /// (value, key) order.
    pub fn prefix_by_index(&self, index: &str, prefix: &[u8]) -> Result<Vec<Arc<R>>> {
        let position = index_position::<R>(index, Some(IndexKind::Ordered))?;
        let mut records = self.shared.query(position, &Matcher::Prefix(prefix))?;
        sort_by_value(&mut records, position);
        Ok(records)
    }

    /// Up to `limit` live records with keys after `after` (from the first when `None`), in
    /// key order. Page through everything by passing the last key returned.
    pub fn scan(&self, after: Option<&R::Key>, limit: usize) -> Result<Vec<Arc<R>>> {
        self.shared.scan(after, limit)
    }

    // ----- control -------------------------------------------------------------------------

    /// Moves the active memtable into the immutable queue now (if it holds anything),
    /// waiting for room by the backpressure policy. True when it rotated.
    pub fn rotate(&self) -> Result<bool> {
        let shared = &*self.shared;
        let mut writer = shared.writer.lock();
        if shared.layers.read().active.is_empty() {
            return Ok(false);
        }
        shared.wait_for_room(&mut writer, false)?;
        Ok(shared.try_rotate())
    }

    /// Flushes everything written before the call, waiting up to `Options::drain_timeout`.
    pub fn flush(&self) -> Result<()> {
        self.shared.drain()
    }

    /// Refuses further writes, flushes everything, stops the flusher and closes the log.
    /// On [`Error::DrainTimeout`] the repository stays readable and keeps retrying; call
    /// `close` again later.
    pub fn close(&self) -> Result<()> {
        let shared = &*self.shared;
        shared.closing.store(true, Ordering::Release);
        // A barrier: a writer that got in before the flag finishes before the drain rotates.
        drop(shared.writer.lock());
        shared.drain()?;
        self.stop_flusher();
        if let Some(wal) = &shared.wal {
            match wal.close() {
                Ok(()) | Err(cairn_log::LogError::Closed) => {}
                Err(error) => return Err(error.into()),
            }
        }
        *shared.health.lock() = Health::Closed;
        Ok(())
    }

    /// Whether the flusher keeps up.
    pub fn health(&self) -> Health {
        self.shared.health.lock().clone()
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        let shared = &*self.shared;
        let layer_stats = |layer: &Memtable<R>| LayerStats {
            entries: layer.len(),
            tombstones: layer.tombstones(),
            bytes: layer.bytes(),
            age: layer.created().elapsed(),
        };
        let (active, immutable) = {
            let layers = shared.layers.read();
            let immutable: Vec<LayerStats> = layers
                .immutable
                .iter()
                .map(|layer| layer_stats(layer))
                .collect();
            (layer_stats(&layers.active), immutable)
        };
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &shared.counters;
        Stats {
            flush_lag: immutable.first().map(|layer| layer.age).unwrap_or_default(),
            active,
            immutable,
            flushed_layers: read(&counters.flushed_layers),
            flushed_keys: read(&counters.flushed_keys),
            flush_retries: read(&counters.flush_retries),
            stall_time: Duration::from_nanos(read(&counters.stall_nanos)),
            backpressure_rejections: read(&counters.rejections),
            memory_hits: read(&counters.memory_hits),
            cache_hits: read(&counters.cache_hits),
            store_reads: read(&counters.store_reads),
            cache_entries: shared.cache.lock().map.len(),
            wal_replayed: read(&counters.wal_replayed),
        }
    }

    fn stop_flusher(&self) {
        {
            let mut wake = self.shared.wake.lock();
            wake.shutdown = true;
        }
        self.shared.wake_flusher.notify_all();
        if let Some(handle) = self.flusher.lock().take() {
            // A panicking flusher has nothing left to report; the data it held is in memory.
            let _ = handle.join();
        }
    }
}

impl<R: Record> Drop for Repository<R> {
    /// Stops the flusher without draining: call [`Repository::close`] to flush first.
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

fn encode_pk<K: PrimaryKey>(key: &K) -> Vec<u8> {
    let mut out = Vec::new();
    key.encode_key(&mut out);
    out
}

/// The record stored for `key`, checked to be that key's.
fn decode_stored<R: Record>(key: &R::Key, bytes: Option<&[u8]>) -> Result<Option<Arc<R>>> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let record: R = decode_record(bytes)?;
    if record.key() != *key {
        return Err(Error::Decode {
            reason: format!("the record stored at {key:?} has key {:?}", record.key()),
        });
    }
    Ok(Some(Arc::new(record)))
}

/// The position of index `name`; with `kind`, it must be of that kind.
fn index_position<R: Record>(name: &str, kind: Option<IndexKind>) -> Result<usize> {
    R::INDEXES
        .iter()
        .position(|spec| spec.name == name && kind.is_none_or(|kind| spec.kind == kind))
        .ok_or_else(|| Error::NoSuchIndex {
            index: name.to_owned(),
            wanted: match kind {
                None => "exact",
                Some(IndexKind::Unique) => "unique",
                Some(IndexKind::NonUnique) => "non-unique",
                Some(IndexKind::Ordered) => "ordered",
            },
        })
}

fn sort_by_value<R: Record>(records: &mut [Arc<R>], position: usize) {
    records.sort_by_cached_key(|record| (record.index_value(position), record.key()));
}

impl<R: Record> Shared<R> {
    fn index_name(position: usize) -> &'static str {
        R::INDEXES.get(position).map_or("", |spec| spec.name)
    }

    fn index_kind(position: usize) -> IndexKind {
        R::INDEXES
            .get(position)
            .map_or(IndexKind::NonUnique, |spec| spec.kind)
    }

    // ----- the write path ------------------------------------------------------------------

    /// One write of `key`: `decide` sees the newest record and returns the new state (`None`
    /// deletes). Returns the previous record.
    fn write(
        &self,
        key: &R::Key,
        decide: impl FnOnce(Option<&R>) -> Result<Option<Arc<R>>>,
    ) -> Result<Option<Arc<R>>> {
        let mut writer = self.writer.lock();
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.make_room(&mut writer, false)?;
        let current = self.newest(key)?;
        let new = decide(current.as_deref())?;
        if new.is_none() && current.is_none() {
            return Ok(None);
        }
        if let Some(new) = &new {
            self.check_unique(key, current.as_deref(), new)?;
        }
        let (lsn, active_bytes) = self.commit(&mut writer, key, current.as_ref(), new, None)?;
        if active_bytes >= self.options.rotate_bytes && self.try_rotate() {
            self.over_limit.store(false, Ordering::Release);
        }
        drop(writer);
        if let (Some(wal), Some(WalSync::Strict)) =
            (&self.wal, self.options.wal.as_ref().map(|wal| wal.sync))
        {
            wal.wait_durable(lsn)?;
        }
        Ok(current)
    }

    /// Logs (unless replaying `replayed`) and applies one write to the active memtable.
    /// Returns its log sequence number (0 without a log) and the active memtable's bytes.
    fn commit(
        &self,
        writer: &mut WriterState,
        key: &R::Key,
        current: Option<&Arc<R>>,
        new: Option<Arc<R>>,
        replayed: Option<u64>,
    ) -> Result<(u64, usize)> {
        writer.buffer.clear();
        // Without a log to write, only the encoded length is needed (for the memory charge).
        let logging = self.wal.is_some() && replayed.is_none();
        let (record_type, bytes) = if let Some(record) = &new {
            let encoded = if logging {
                encode_record(record.as_ref(), &mut writer.buffer)?;
                writer.buffer.len()
            } else {
                encoded_len(record.as_ref())?
            };
            (WAL_PUT, record.memory_bytes(encoded))
        } else {
            key.encode_key(&mut writer.buffer);
            (WAL_DELETE, writer.buffer.len())
        };
        let lsn = match (&self.wal, replayed) {
            (_, Some(lsn)) => lsn,
            (None, None) => 0,
            (Some(wal), None) => {
                let lsn = wal.last_appended_lsn().saturating_add(1);
                wal.append(record_type, lsn, lsn, &writer.buffer)?;
                lsn
            }
        };
        let prior = || current.map(|current| index_values(current.as_ref()));
        let mut layers = self.layers.write();
        layers.active.apply(key, new, prior, bytes, lsn);
        let active_bytes = layers.active.bytes();
        if active_bytes >= self.options.rotate_bytes {
            self.over_limit.store(true, Ordering::Release);
        }
        Ok((lsn, active_bytes))
    }

    /// Before a write: rotates a full active memtable, waiting for room by the policy (or
    /// without limit while replaying).
    fn make_room(&self, writer: &mut WriterState, replaying: bool) -> Result<()> {
        if !self.over_limit.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.layers.read().active.bytes() >= self.options.rotate_bytes {
            self.wait_for_room(writer, replaying)?;
            if !self.try_rotate() {
                return Ok(());
            }
        }
        self.over_limit.store(false, Ordering::Release);
        Ok(())
    }

    /// Returns once the immutable queue has room, or fails by the backpressure policy.
    fn wait_for_room(&self, _writer: &mut WriterState, unlimited: bool) -> Result<()> {
        let full =
            |shared: &Self| shared.layers.read().immutable.len() >= shared.options.immutable_max;
        if !full(self) {
            return Ok(());
        }
        let timeout = match (unlimited, self.options.backpressure) {
            (true, _) => Duration::MAX,
            (false, Backpressure::Block(timeout)) => timeout,
            (false, Backpressure::FailFast) => Duration::ZERO,
        };
        let started = Instant::now();
        self.request_flush();
        let mut progress = self.progress.lock();
        let outcome = loop {
            if !full(self) {
                break Ok(());
            }
            let waited = started.elapsed();
            let Some(left) = timeout.checked_sub(waited).filter(|left| !left.is_zero()) else {
                bump(&self.counters.rejections, 1);
                break Err(Error::Backpressure {
                    waited,
                    pending: self.layers.read().immutable.len(),
                });
            };
            self.progress_changed
                .wait_for(&mut progress, left.min(Duration::from_secs(1)));
        };
        bump(&self.counters.stall_nanos, nanos(started.elapsed()));
        outcome
    }

    /// Rotates if the active memtable holds anything and the queue has room. O(1): the
    /// memtable moves behind an `Arc`.
    fn try_rotate(&self) -> bool {
        let rotated = {
            let mut layers = self.layers.write();
            self.rotate_locked(&mut layers)
        };
        if rotated {
            self.request_flush();
        }
        rotated
    }

    /// Rotation itself, under the layers lock: false when the active memtable is empty or the
    /// queue is full.
    fn rotate_locked(&self, layers: &mut Layers<R>) -> bool {
        if layers.active.is_empty() || layers.immutable.len() >= self.options.immutable_max {
            return false;
        }
        let id = self.next_layer_id.fetch_add(1, Ordering::Relaxed);
        let next = layers.active.successor(id);
        let full = std::mem::replace(&mut layers.active, next);
        layers.immutable.push_back(Arc::new(full));
        true
    }

    fn request_flush(&self) {
        self.wake.lock().requested = true;
        self.wake_flusher.notify_all();
    }

    /// Refuses `new` if a unique index maps one of its values to another live record.
    fn check_unique(&self, key: &R::Key, current: Option<&R>, new: &R) -> Result<()> {
        for (position, spec) in R::INDEXES.iter().enumerate() {
            if spec.kind != IndexKind::Unique {
                continue;
            }
            let Some(value) = new.index_value(position) else {
                continue;
            };
            if current.is_some_and(|current| current.index_value(position).as_ref() == Some(&value))
            {
                continue;
            }
            let holders = self.query(position, &Matcher::Exact(&value))?;
            if let Some(holder) = holders.iter().find(|holder| holder.key() != *key) {
                return Err(Error::UniqueViolation {
                    index: spec.name,
                    holder: format!("{:?}", holder.key()),
                });
            }
        }
        Ok(())
    }

    // ----- the read path -------------------------------------------------------------------

    fn get(&self, key: &R::Key) -> Result<Option<Arc<R>>> {
        if let Some(value) = self
            .layers
            .read()
            .newest(key)
            .map(|slot| slot.value.clone())
        {
            bump(&self.counters.memory_hits, 1);
            return Ok(value);
        }
        self.read_through(key)
    }

    /// The newest record at `key`, without counting it as a read.
    fn newest(&self, key: &R::Key) -> Result<Option<Arc<R>>> {
        if let Some(value) = self
            .layers
            .read()
            .newest(key)
            .map(|slot| slot.value.clone())
        {
            return Ok(value);
        }
        self.read_through(key)
    }

    /// A key no memtable holds: the cache, else the store (populating the cache).
    fn read_through(&self, key: &R::Key) -> Result<Option<Arc<R>>> {
        if !self.reads_store {
            return Ok(None);
        }
        let epoch = {
            let cache = self.cache.lock();
            if let Some(value) = cache.map.get(key) {
                bump(&self.counters.cache_hits, 1);
                return Ok(value.clone());
            }
            cache.epoch
        };
        bump(&self.counters.store_reads, 1);
        let bytes = self.persister.get(&record_key(&encode_pk(key)))?;
        let record = decode_stored::<R>(key, bytes.as_deref())?;
        self.cache.lock().insert(epoch, key.clone(), record.clone());
        Ok(record)
    }

    /// The live record in memory holding `value` in the unique index `position`, if any (a
    /// value no memory layer lists may still be held in the store).
    fn unique_in_memory(&self, position: usize, value: &IndexValue) -> Option<Arc<R>> {
        let layers = self.layers.read();
        for (depth, layer) in layers.newest_first().enumerate() {
            let Some(key) = layer.index(position).and_then(|index| index.unique(value)) else {
                continue;
            };
            // A layer's index lists its live records at their current values, so when no
            // newer layer holds the key, this layer's record holds the value: no need to read
            // the record's field again.
            let newer = layers
                .newest_first()
                .take(depth)
                .find_map(|newer| newer.slot(key));
            let holder = match newer {
                None => layer.slot(key).and_then(|slot| slot.value.as_ref()),
                Some(slot) => slot
                    .value
                    .as_ref()
                    .filter(|record| record.index_value(position).as_ref() == Some(value)),
            };
            if let Some(record) = holder {
                debug_assert!(
                    record.index_value(position).as_ref() == Some(value),
                    "a layer's index is exact"
                );
                return Some(Arc::clone(record));
            }
        }
        None
    }

    /// Every live record whose value in index `position` the matcher wants, in key order.
    fn query(&self, position: usize, matcher: &Matcher<'_>) -> Result<Vec<Arc<R>>> {
        let unique_exact =
            Self::index_kind(position) == IndexKind::Unique && matches!(matcher, Matcher::Exact(_));
        let matching = |record: &R| {
            record
                .index_value(position)
                .is_some_and(|value| matcher.matches(&value))
        };
        if let (true, Matcher::Exact(value)) = (unique_exact, matcher) {
            // Fast path: a live holder in memory is the only one (the index is unique).
            if let Some(record) = self.unique_in_memory(position, value) {
                return Ok(vec![record]);
            }
        }
        let mut found: BTreeMap<R::Key, Arc<R>> = BTreeMap::new();
        // A unique value with no live holder in memory (the fast path above) goes to the store.
        if !unique_exact {
            let layers = self.layers.read();
            let mut candidates = Vec::new();
            for layer in layers.newest_first() {
                let Some(index) = layer.index(position) else {
                    continue;
                };
                match matcher {
                    Matcher::Exact(value) => index.exact(value, &mut candidates),
                    Matcher::Range(low, high) => {
                        index.range((*low, *high), |_| true, &mut candidates);
                    }
                    Matcher::Prefix(prefix) => {
                        let low = IndexValue::from_bytes(prefix);
                        index.range(
                            (Bound::Included(&low), Bound::Unbounded),
                            |value| value.starts_with(prefix),
                            &mut candidates,
                        );
                    }
                }
            }
            for key in candidates {
                if found.contains_key(&key) {
                    continue;
                }
                if let Some(Some(record)) = layers.newest(&key).map(|slot| slot.value.as_ref()) {
                    if matching(record) {
                        found.insert(key, Arc::clone(record));
                    }
                }
            }
        }
        if (unique_exact && !found.is_empty()) || !self.reads_store {
            return Ok(found.into_values().collect());
        }
        let stored = self.store_candidates(position, matcher)?;
        let to_fetch: Vec<R::Key> = {
            let layers = self.layers.read();
            stored
                .into_iter()
                .filter(|key| !found.contains_key(key) && layers.newest(key).is_none())
                .collect()
        };
        if !to_fetch.is_empty() {
            let store_keys: Vec<Vec<u8>> = to_fetch
                .iter()
                .map(|key| record_key(&encode_pk(key)))
                .collect();
            let values = self.persister.multi_get(&store_keys)?;
            for (key, value) in to_fetch.into_iter().zip(values) {
                if let Some(record) = decode_stored::<R>(&key, value.as_deref())? {
                    if matching(&record) {
                        found.insert(key, record);
                    }
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// Keys the store's index entries list for the matcher (possibly stale: checked later).
    fn store_candidates(&self, position: usize, matcher: &Matcher<'_>) -> Result<Vec<R::Key>> {
        let name = Self::index_name(position);
        let mut keys = Vec::new();
        if Self::index_kind(position) == IndexKind::Unique {
            if let Matcher::Exact(value) = matcher {
                if let Some(pk) = self.persister.get(&unique_key(name, value))? {
                    keys.extend(R::Key::decode_key(&pk));
                }
            }
            return Ok(keys);
        }
        let index = index_prefix(MULTI_TAG, name);
        let (list_prefix, mut start_after) = match matcher {
            Matcher::Exact(value) => (multi_value_prefix(name, value), None),
            Matcher::Range(low, _) => {
                let start = match low {
                    Bound::Included(low) => Some(before_value(&index, low)),
                    Bound::Excluded(low) => Some(after_value(&index, low)),
                    Bound::Unbounded => None,
                };
                (index.clone(), start)
            }
            Matcher::Prefix(prefix) => {
                let mut list_prefix = index.clone();
                escape_into(prefix, &mut list_prefix);
                (list_prefix, None)
            }
        };
        loop {
            let page =
                self.persister
                    .keys(&list_prefix, start_after.as_deref(), STORE_PAGE_KEYS)?;
            let full = page.len() >= STORE_PAGE_KEYS;
            for entry in &page {
                let Some(rest) = entry.get(index.len()..) else {
                    continue;
                };
                let Some((value, pk)) = split_multi_entry(rest) else {
                    continue;
                };
                if matcher.is_past(&value) {
                    return Ok(keys);
                }
                if matcher.matches(&value) {
                    keys.extend(R::Key::decode_key(pk));
                }
            }
            match page.into_iter().last() {
                Some(last) if full => start_after = Some(last),
                _ => return Ok(keys),
            }
        }
    }

    fn scan(&self, after: Option<&R::Key>, limit: usize) -> Result<Vec<Arc<R>>> {
        let page = limit.clamp(1, STORE_PAGE_KEYS);
        let mut out = Vec::new();
        let mut cursor: Option<R::Key> = after.cloned();
        while out.len() < limit {
            // Memory: the first `page` keys after the cursor over all layers, and their newest
            // states. Keys up to `memory_bound` are complete.
            let (mut merged, memory_bound) = {
                let layers = self.layers.read();
                let mut keys: BTreeSet<R::Key> = BTreeSet::new();
                for layer in layers.newest_first() {
                    keys.extend(
                        layer
                            .slots_after(cursor.as_ref())
                            .take(page)
                            .map(|(k, _)| k.clone()),
                    );
                }
                let bound = keys.iter().nth(page - 1).cloned();
                let merged: BTreeMap<R::Key, Option<Arc<R>>> = keys
                    .into_iter()
                    .filter(|key| bound.as_ref().is_none_or(|bound| key <= bound))
                    .filter_map(|key| {
                        let value = layers.newest(&key)?.value.clone();
                        Some((key, value))
                    })
                    .collect();
                (merged, bound)
            };
            let (stored, store_bound) = if self.reads_store {
                let start = cursor.as_ref().map(|key| record_key(&encode_pk(key)));
                let keys = self.persister.keys(&[RECORD_TAG], start.as_deref(), page)?;
                let full = keys.len() >= page;
                let stored: Vec<R::Key> = keys
                    .iter()
                    .filter_map(|key| R::Key::decode_key(key.get(1..)?))
                    .collect();
                let bound = if full { stored.last().cloned() } else { None };
                (stored, bound)
            } else {
                (Vec::new(), None)
            };
            let bound = match (memory_bound, store_bound) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let within = |key: &R::Key| bound.as_ref().is_none_or(|bound| key <= bound);
            merged.retain(|key, _| within(key));
            let mut store_only: Vec<R::Key> = Vec::new();
            {
                let layers = self.layers.read();
                for key in stored {
                    if !within(&key) || merged.contains_key(&key) {
                        continue;
                    }
                    match layers.newest(&key) {
                        Some(slot) => {
                            merged.insert(key, slot.value.clone());
                        }
                        None => store_only.push(key),
                    }
                }
            }
            if !store_only.is_empty() {
                let store_keys: Vec<Vec<u8>> = store_only
                    .iter()
                    .map(|key| record_key(&encode_pk(key)))
                    .collect();
                let values = self.persister.multi_get(&store_keys)?;
                for (key, value) in store_only.into_iter().zip(values) {
                    let record = decode_stored::<R>(&key, value.as_deref())?;
                    merged.insert(key, record);
                }
            }
            for value in merged.into_values() {
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(record) = value {
                    out.push(record);
                }
            }
            if out.len() >= limit {
                break;
            }
            match bound {
                Some(bound) => cursor = Some(bound),
                None => break,
            }
        }
        Ok(out)
    }

    // ----- flushing ------------------------------------------------------------------------

    /// Rotates and waits until every layer that holds data now is flushed.
    fn drain(&self) -> Result<()> {
        let started = Instant::now();
        let deadline = self.options.drain_timeout;
        let target = {
            let _writer = self.writer.lock();
            loop {
                let (active_empty, full) = {
                    let layers = self.layers.read();
                    (
                        layers.active.is_empty(),
                        layers.immutable.len() >= self.options.immutable_max,
                    )
                };
                if active_empty {
                    break;
                }
                if !full && self.try_rotate() {
                    break;
                }
                self.request_flush();
                let mut progress = self.progress.lock();
                if started.elapsed() >= deadline {
                    drop(progress);
                    return Err(self.drain_timeout(started));
                }
                self.progress_changed
                    .wait_for(&mut progress, Duration::from_millis(20));
            }
            self.layers.read().immutable.back().map(|layer| layer.id())
        };
        let Some(target) = target else {
            return Ok(());
        };
        self.request_flush();
        let mut progress = self.progress.lock();
        while progress.flushed_through < target {
            let Some(left) = deadline.checked_sub(started.elapsed()) else {
                drop(progress);
                return Err(self.drain_timeout(started));
            };
            self.progress_changed
                .wait_for(&mut progress, left.min(Duration::from_millis(100)));
        }
        Ok(())
    }

    fn drain_timeout(&self, started: Instant) -> Error {
        let last_error = match &*self.health.lock() {
            Health::Retrying { last_error, .. } => last_error.clone(),
            Health::Healthy | Health::Closed => String::new(),
        };
        Error::DrainTimeout {
            waited: started.elapsed(),
            pending: self.layers.read().immutable.len(),
            last_error,
        }
    }

    fn flusher_loop(&self) {
        let tick = self
            .options
            .rotate_after
            .map_or(FLUSHER_TICK_MAX, |after| (after / 4).min(FLUSHER_TICK_MAX))
            .max(Duration::from_millis(1));
        loop {
            {
                let mut wake = self.wake.lock();
                if !wake.requested && !wake.shutdown {
                    self.wake_flusher.wait_for(&mut wake, tick);
                }
                wake.requested = false;
                if wake.shutdown {
                    return;
                }
            }
            self.rotate_if_aged();
            loop {
                let oldest = self.layers.read().immutable.front().cloned();
                let Some(layer) = oldest else {
                    break;
                };
                if !self.flush_layer(&layer) {
                    return;
                }
            }
        }
    }

    /// The time rule: rotates an active memtable older than `rotate_after`, if there is room.
    /// Runs without the writer lock (a writer blocked on backpressure holds it); rotation
    /// under the layers lock alone is safe because it changes no logical state.
    fn rotate_if_aged(&self) {
        let Some(after) = self.options.rotate_after else {
            return;
        };
        let mut layers = self.layers.write();
        if layers.active.created().elapsed() >= after {
            self.rotate_locked(&mut layers);
        }
    }

    /// Writes `layer` to the persister, retrying until it applies; then drops it from the
    /// queue. False when the repository shuts down first (the layer stays in memory).
    fn flush_layer(&self, layer: &Arc<Memtable<R>>) -> bool {
        let mut backoff = self.options.retry_initial;
        let mut failures = 0_u64;
        let mut batch = None;
        loop {
            let attempt = (|| {
                if batch.is_none() {
                    // A persister that holds no data is handed an empty batch: encoding the
                    // layer for it would only compete with the writers for the CPU.
                    batch = Some(if self.reads_store {
                        build_batch(layer)?
                    } else {
                        Batch::default()
                    });
                }
                if let Some(batch) = &batch {
                    self.persister.apply(batch)?;
                }
                if self.wal.is_some() {
                    self.persister.sync()?;
                }
                Ok::<(), Error>(())
            })();
            match attempt {
                Ok(()) => break,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    bump(&self.counters.flush_retries, 1);
                    *self.health.lock() = Health::Retrying {
                        failures,
                        last_error: error.to_string(),
                    };
                    let mut wake = self.wake.lock();
                    if !wake.shutdown {
                        self.wake_flusher.wait_for(&mut wake, backoff);
                    }
                    if wake.shutdown {
                        return false;
                    }
                    backoff = backoff.saturating_mul(2).min(self.options.retry_max);
                }
            }
        }
        {
            let mut cache = self.cache.lock();
            cache.epoch = cache.epoch.wrapping_add(1);
            for (key, _) in layer.slots() {
                cache.map.remove(key);
            }
        }
        {
            let mut layers = self.layers.write();
            let front_is_layer = layers
                .immutable
                .front()
                .is_some_and(|front| Arc::ptr_eq(front, layer));
            debug_assert!(
                front_is_layer,
                "only the flusher removes layers, oldest first"
            );
            if front_is_layer {
                layers.immutable.pop_front();
            }
        }
        {
            let mut health = self.health.lock();
            if matches!(*health, Health::Retrying { .. }) {
                *health = Health::Healthy;
            }
        }
        // Counters first: a `flush()` that returns on the progress below sees them.
        bump(&self.counters.flushed_layers, 1);
        bump(&self.counters.flushed_keys, count(layer.len()));
        {
            let mut progress = self.progress.lock();
            progress.flushed_through = progress.flushed_through.max(layer.id());
        }
        self.progress_changed.notify_all();
        if let (Some(wal), lsn) = (&self.wal, layer.last_lsn()) {
            if lsn > 0 {
                if let Err(error) = wal.remove_segments_through(lsn) {
                    *self.health.lock() = Health::Retrying {
                        failures: 1,
                        last_error: format!("removing flushed log segments: {error}"),
                    };
                }
            }
        }
        true
    }
}

/// The batch that makes the store reflect `layer`: record puts and deletes, and for each key
/// the index entries of its prior version deleted and of its new version put. A key's final
/// state wins (a unique value that moved between two records of the layer is one put).
/// Record keys are unique per slot and need no merging; index entries are merged in a hash
/// map (no sorting: the batch needs each key once, not an order).
fn build_batch<R: Record>(layer: &Memtable<R>) -> Result<Batch> {
    let mut deletes: Vec<Vec<u8>> = Vec::new();
    let mut puts: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(layer.len());
    let mut entries: FastMap<Vec<u8>, Option<Vec<u8>>> = FastMap::default();
    let none: IndexValues = (0..R::INDEXES.len()).map(|_| None).collect();
    for (key, slot) in layer.slots() {
        let pk = encode_pk(key);
        let current = slot.value.as_deref().map(index_values);
        let current = current.as_ref().unwrap_or(&none);
        let prior = slot.prior.as_deref().unwrap_or(&none);
        match &slot.value {
            Some(record) => {
                let mut encoded = Vec::new();
                encode_record(record.as_ref(), &mut encoded)?;
                puts.push((record_key(&pk), encoded));
            }
            None => deletes.push(record_key(&pk)),
        }
        for (position, spec) in R::INDEXES.iter().enumerate() {
            let (old, new) = (prior.get(position), current.get(position));
            let (old, new) = (old.and_then(Option::as_ref), new.and_then(Option::as_ref));
            if old == new {
                continue;
            }
            let entry = |value: &IndexValue| match spec.kind {
                IndexKind::Unique => unique_key(spec.name, value),
                IndexKind::NonUnique | IndexKind::Ordered => multi_key(spec.name, value, &pk),
            };
            if let Some(old) = old {
                // A delete never replaces a put of the same entry: puts come from the layer's
                // final state, deletes from prior versions.
                entries.entry(entry(old)).or_insert(None);
            }
            if let Some(new) = new {
                let value = match spec.kind {
                    IndexKind::Unique => pk.clone(),
                    IndexKind::NonUnique | IndexKind::Ordered => MULTI_ENTRY_VALUE.to_vec(),
                };
                entries.insert(entry(new), Some(value));
            }
        }
    }
    for (key, state) in entries {
        match state {
            Some(value) => puts.push((key, value)),
            None => deletes.push(key),
        }
    }
    Ok(Batch::new(deletes, puts))
}

//! The shared core behind every `Db` handle: the ordered index, the commit path and reads.
//!
//! - **Index**: one `cairn_index::Index` maps each key to its *record* (`mvcc::record`: the
//!   key, its newest value and any older versions in one allocation): a copy-on-write B+tree for scans with a
//!   point table beside it for point reads, one writer (its `Writer` lives in `CommitState`,
//!   so only the commit lock's holder changes it) and lock-free readers. A commit publishes a
//!   successor record per key it changes, swapped into the leaf slot where it found the key
//!   (`Applying`: the commit's keys that share a leaf share one descent); the old one is
//!   freed by epoch once no reader can reach it. Reads take no lock.
//! - **Commit path**: one mutex (the sequencer) orders commits. A commit validates, takes the
//!   next version, publishes new chains, and only then advances the *visible* version, so a
//!   multi-key commit appears to readers all at once. Watch events are queued after the
//!   commit is visible (in `Strict` mode: once it is durable) and, except in `Strict` mode,
//!   before the lock is released, so watchers see commits in order and a woken watcher reads
//!   at least the state it was told about.
//! - **Reads**: a snapshot reader uses its registered version; a point read loads the
//!   record, then the visible version, and takes the newest entry at or below it (see
//!   `mvcc::readers` for why that order is safe against pruning). A reader may load a record
//!   from a node the writer has since replaced; that record was the key's current one when
//!   the reader entered the node, which is inside the read's own interval, so the read is
//!   still linearizable: it returns the state at some instant between its start and its end.
//! - **Bookkeeping**: `Shared`'s fields are private. A key enters the index only through
//!   `NewKeys` (queued by `queue_new_key_locked`, inserted leaf by leaf by
//!   `insert_new_keys_locked`, or built bottom-up when a load fills an empty index) and
//!   leaves only through `remove_key_locked`, which keep the counters
//!   (`versions_retained`, `keys_with_ttl`) and the deadline heap in step; the commit path,
//!   recovery and maintenance all use them.
//!
//! Everything that only decides (what a reader sees, what may be pruned) lives in
//! `mvcc::chain` as pure functions; this module is the thin layer that applies them.
//!
//! Module dependency order of the crate: each module uses only modules on earlier lines
//! (its `use crate::` lines, plus the methods other modules add to `Shared`), so no module
//! reaches itself through its imports:
//! 1. `limits`, `clock`, `mvcc::readers`, `durable::snapshot_file`
//! 2. `error`
//! 3. `value`, `mvcc::chain` and `mvcc::record`, which use one another: a record holds
//!    values, and a value inline in a record frees it when it is the record's last holder
//! 4. `types` (including `Mutation`; it re-exports `value::Value`)
//! 5. `watch`, `bounds`, `options`, `durable::record`, `batch`
//! 6. `deadlines`, `durable` (the layer's shared data only)
//! 7. `engine`, `durable::identity`
//! 8. `scan`, `durable::checkpoint`
//! 9. `maintenance` (runs `Shared::checkpoint_if_due`), `snapshot`, `transaction`
//! 10. `durable::recovery` (reserves the maintenance service's flush task), `format`, `fuzzing`
//! 11. `integrity`
//! 12. `db`

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cairn_index::{Index, LeafHint, Writer};
use crossbeam_epoch::Guard;
use parking_lot::{Mutex, MutexGuard};

use crate::deadlines::DeadlineHeap;
use crate::durable::Durable;
use crate::error::{Error, KeyDisplay, Result};
use crate::limits;
use crate::mvcc::chain::{Chain, VersionEntry, NO_DEADLINE};
use crate::mvcc::readers::{Horizon, ReadGuard, ReaderRegistry};
use crate::mvcc::record::{NewRecord, Record, Write};
use crate::options::Options;
use crate::types::{Key, Mutation, Value};
use crate::watch::WatchHub;

/// State owned by whoever holds the commit lock. Its counters change only through
/// `Shared::queue_new_key_locked`, `Shared::remove_key_locked` and the few methods below.
#[derive(Debug)]
pub(crate) struct CommitState {
    /// The index's one writer: holding the commit lock is what lets a thread change it.
    writer: Writer,
    /// The newest version handed out.
    last_version: u64,
    /// Deadlines of the keys whose newest entry has one, for the reaper.
    deadlines: DeadlineHeap,
    /// Keys in the index whose newest entry has a deadline (exact).
    keys_with_ttl: usize,
    /// Keys whose chain holds more than one entry, waiting for the maintainer to prune.
    prune_queue: Vec<Key>,
    /// Keys already pruned as far as the registered readers allow. Only a reader's release
    /// can free more of their history, so they wait here until `ReaderRegistry::releases`
    /// moves past `prune_deferred_at`, instead of being re-read every pass.
    prune_deferred: Vec<Key>,
    /// The release count when `prune_deferred` was last filled.
    prune_deferred_at: u64,
    /// Entries held by all chains together.
    versions_retained: u64,
    /// Commits applied.
    commits: u64,
    /// Keys removed by the reaper because their deadline passed.
    expired_reclaimed: u64,
    /// Old entries dropped by pruning.
    versions_pruned: u64,
}

impl CommitState {
    fn new(writer: Writer) -> Self {
        CommitState {
            writer,
            last_version: 0,
            deadlines: DeadlineHeap::default(),
            keys_with_ttl: 0,
            prune_queue: Vec::new(),
            prune_deferred: Vec::new(),
            prune_deferred_at: 0,
            versions_retained: 0,
            commits: 0,
            expired_reclaimed: 0,
            versions_pruned: 0,
        }
    }

    /// The newest version handed out.
    pub(crate) fn last_version(&self) -> u64 {
        self.last_version
    }

    /// Entries held by all chains together.
    pub(crate) fn versions_retained(&self) -> u64 {
        self.versions_retained
    }

    /// Commits applied (a recovered database counts those before the snapshot too).
    pub(crate) fn commits(&self) -> u64 {
        self.commits
    }

    /// Keys in the index whose newest entry has a deadline.
    pub(crate) fn keys_with_ttl(&self) -> usize {
        self.keys_with_ttl
    }

    /// `(deadline, key)` pairs tracked, stale ones included.
    pub(crate) fn deadlines_tracked(&self) -> usize {
        self.deadlines.len()
    }

    /// Keys removed by the reaper because their deadline passed.
    pub(crate) fn expired_reclaimed(&self) -> u64 {
        self.expired_reclaimed
    }

    /// Old entries dropped by pruning.
    pub(crate) fn versions_pruned(&self) -> u64 {
        self.versions_pruned
    }

    /// Keys waiting to be pruned, queued or deferred.
    pub(crate) fn prune_backlog(&self) -> usize {
        self.prune_queue.len() + self.prune_deferred.len()
    }

    /// See `DeadlineHeap::take_for_compaction`.
    pub(crate) fn take_deadlines_for_compaction(&mut self) -> Option<Vec<(u64, Key)>> {
        self.deadlines.take_for_compaction()
    }

    /// See `DeadlineHeap::merge_compacted`.
    pub(crate) fn merge_compacted_deadlines(&mut self, live: Vec<(u64, Key)>) {
        self.deadlines.merge_compacted(live);
    }

    /// Removes and returns the soonest `(deadline, key)` pair due at `now`, stale or not.
    pub(crate) fn pop_due_deadline(&mut self, now: u64) -> Option<(u64, Key)> {
        self.deadlines.pop_due(now)
    }

    /// Queues `key` for the maintainer's next prune.
    pub(crate) fn queue_prune(&mut self, key: Key) {
        self.prune_queue.push(key);
    }

    /// Takes the keys to prune in a pass that began at reader release count `releases`: the
    /// queue, plus the deferred keys when a reader was released since they were deferred.
    pub(crate) fn take_prune_work(&mut self, releases: u64) -> Vec<Key> {
        let mut queued = std::mem::take(&mut self.prune_queue);
        if self.prune_deferred_at != releases {
            queued.append(&mut self.prune_deferred);
        }
        queued
    }

    /// Defers `keys`, pruned as far as the readers registered at release count `releases`
    /// allow, until a reader is released.
    pub(crate) fn defer_prune(&mut self, keys: Vec<Key>, releases: u64) {
        self.prune_deferred.extend(keys);
        self.prune_deferred_at = releases;
    }

    /// Counts `entries` old entries dropped by pruning.
    pub(crate) fn count_pruned(&mut self, entries: u64) {
        self.versions_pruned += entries;
    }

    /// Counts one key reclaimed by the reaper.
    pub(crate) fn count_expired(&mut self) {
        self.expired_reclaimed += 1;
    }

    /// Declares every deadline pair held live (recovery, after loading a snapshot).
    pub(crate) fn mark_deadlines_compacted(&mut self) {
        self.deadlines.mark_compacted();
    }

    /// Takes `entries` off `versions_retained`.
    fn release_versions(&mut self, entries: u64) {
        debug_assert!(
            self.versions_retained >= entries,
            "versions_retained {} would go below zero (- {entries})",
            self.versions_retained
        );
        self.versions_retained -= entries;
    }

    /// Takes one key off `keys_with_ttl`.
    fn release_ttl(&mut self) {
        debug_assert!(self.keys_with_ttl > 0, "keys_with_ttl would go below zero");
        self.keys_with_ttl -= 1;
    }
}

/// What a chain counts for in `CommitState`: its entries and its head's deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Footprint {
    entries: u64,
    deadline_millis: u64,
}

impl Footprint {
    pub(crate) fn of(chain: &Chain) -> Self {
        Footprint {
            entries: chain.len() as u64,
            deadline_millis: chain
                .head()
                .map_or(NO_DEADLINE, |head| head.deadline_millis),
        }
    }

    pub(crate) fn of_record(record: &Record) -> Self {
        Footprint {
            entries: record.len() as u64,
            deadline_millis: record.head().deadline_millis,
        }
    }
}

/// The database's shared state. `Db` is a handle to it.
/// Its fields are private: the index changes only through `insert_new_keys_locked`,
/// `remove_key_locked`, `replace_pruned_locked` and `Applying::apply_locked`, which keep the
/// counters in step.
pub(crate) struct Shared {
    /// Key -> record, ordered for scans, with a point table for point reads. Its writer is
    /// in `commit`.
    index: Index<Record>,
    commit: Mutex<CommitState>,
    /// The newest version readers may see; never above `CommitState::last_version`.
    visible: AtomicU64,
    readers: Arc<ReaderRegistry>,
    watch: Arc<WatchHub>,
    options: Options,
    closed: AtomicBool,
    /// The WAL, checkpoints and directory lock; `None` for `Durability::InMemory`.
    durable: Option<Durable>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("keys", &self.index.len())
            .field("visible", &self.visible.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// How many records a scan asks the CPU to load ahead of the one it hands out. A scanned key
/// costs a cache miss into its record (which holds its newest value inline); with the loads
/// started this far ahead, several are in flight at once instead of one after another.
const SCAN_LOOKAHEAD: usize = 16;

/// Records of the index between two bounds, in key order from either end; see
/// `Shared::index_range`. Lends them out read-only: only `Shared` publishes records.
///
/// Each end keeps up to `SCAN_LOOKAHEAD` records taken from the tree but not yet handed
/// out: a record is prefetched when it is taken. When the tree has nothing left between the ends, one end takes from the
/// other's lookahead, so every record is handed out once whichever ends are used.
pub(crate) struct IndexRange<'g, R: RangeBounds<[u8]>> {
    tree: cairn_index::Range<'g, Record, R>,
    /// Taken from the front, in key order.
    front: VecDeque<&'g Record>,
    /// Taken from the back, in reverse key order.
    back: VecDeque<&'g Record>,
}

impl<'g, R: RangeBounds<[u8]>> IndexRange<'g, R> {
    /// Fills `ahead` from `take` up to the lookahead, prefetching as it goes.
    fn fill(ahead: &mut VecDeque<&'g Record>, mut take: impl FnMut() -> Option<&'g Record>) {
        while ahead.len() < SCAN_LOOKAHEAD {
            let Some(record) = take() else { break };
            record.prefetch();
            ahead.push_back(record);
        }
    }
}

/// One entry of an `IndexRange`: a key's current record.
pub(crate) struct IndexEntry<'g>(&'g Record);

impl<'g> IndexEntry<'g> {
    pub(crate) fn key(&self) -> &'g [u8] {
        self.0.key()
    }

    /// Runs `read` on the entry's record.
    pub(crate) fn read<T>(&self, read: impl FnOnce(&'g Record) -> T) -> T {
        read(self.0)
    }
}

impl<'g, R: RangeBounds<[u8]>> Iterator for IndexRange<'g, R> {
    type Item = IndexEntry<'g>;

    fn next(&mut self) -> Option<Self::Item> {
        let tree = &mut self.tree;
        Self::fill(&mut self.front, || tree.next().map(|(_, record)| record));
        let record = self.front.pop_front().or_else(|| self.back.pop_back())?;
        Some(IndexEntry(record))
    }
}

impl<R: RangeBounds<[u8]>> DoubleEndedIterator for IndexRange<'_, R> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let tree = &mut self.tree;
        Self::fill(&mut self.back, || {
            tree.next_back().map(|(_, record)| record)
        });
        let record = self.back.pop_front().or_else(|| self.front.pop_back())?;
        Some(IndexEntry(record))
    }
}

/// Most keys `NewKeys` queues before they go into the index: enough that a commit's new keys
/// in one leaf share its copy, few enough that a huge commit never holds millions (a load into
/// an empty index has no limit: `NewKeys::for_empty_index`).
const NEW_KEYS_QUEUED_MAX: usize = 4_096;

/// Keys a commit (or a recovery) adds, in the order queued, waiting to go into the index
/// together: `Index::insert_batch` copies each leaf once for all the keys bound for it,
/// where inserting them one by one copied it once per key.
pub(crate) struct NewKeys {
    records: Vec<NewRecord>,
    /// Most records queued before they go in.
    limit: usize,
}

impl Default for NewKeys {
    fn default() -> Self {
        NewKeys {
            records: Vec::new(),
            limit: NEW_KEYS_QUEUED_MAX,
        }
    }
}

impl NewKeys {
    /// A queue with no limit, for a load into an empty index (a recovery with no snapshot,
    /// a snapshot load): its ascending keys then go in all at once and the index builds
    /// itself bottom-up, several times faster than leaf by leaf. It holds every record of
    /// the load (about 100 bytes a key with short keys, beside the index it goes into)
    /// until the load ends. `expected` records are allocated at once (growing the list by
    /// doubling would copy it about twice over).
    pub(crate) fn for_empty_index(expected: usize) -> Self {
        NewKeys {
            records: Vec::with_capacity(expected),
            limit: usize::MAX,
        }
    }
}

/// What the writes of one commit (or one replay) share while they are applied: the read
/// horizon, the queue of new keys, one pinned guard, and the index leaf the last write found
/// (so a commit's ascending keys that share a leaf cost one descent between them).
pub(crate) struct Applying<'g> {
    shared: &'g Shared,
    horizon: HorizonCache<'g>,
    new_keys: NewKeys,
    hint: LeafHint<'g, Record>,
    guard: &'g Guard,
}

/// Most writes applied under one pinned guard (`Shared::apply_in_chunks_locked`). The
/// collector frees garbage only when a thread pins or flushes, and only what was retired two
/// epochs before, which no thread may pass while it holds a guard. A commit that pinned once
/// per key let the epoch move between its keys; one that held a guard for all of them let
/// the leaves its batches replaced pile up, and random fills of 1,000-key batches ran four
/// times slower (1.2 times with a flush every 64 keys). So a commit re-pins, and pushes the
/// collector, every this many writes; a leaf hint lasts as long.
const APPLY_CHUNK: usize = 64;

impl Applying<'_> {
    /// `Shared::queue_new_key_locked` into this commit's queue.
    pub(crate) fn queue_new_key_locked(&mut self, state: &mut CommitState, record: NewRecord) {
        self.shared
            .queue_new_key_locked(state, &mut self.new_keys, record);
    }

    /// Publishes `new_entry`, one write of `key`. Caller holds the commit lock. Returns false
    /// when it changed nothing a reader can see (a delete of a key the index does not hold).
    /// A key the index holds gets its successor record in place, found through the leaf the
    /// last write found when it is there; a new key is queued (`queue_new_key_locked`).
    pub(crate) fn apply_locked(
        &mut self,
        state: &mut CommitState,
        key: &[u8],
        new_entry: Write<'_>,
    ) -> bool {
        let new_deadline = new_entry.deadline_millis;
        let (shared, guard) = (self.shared, self.guard);
        if let Some(found) = shared
            .index
            .find_for_write(&state.writer, key, &mut self.hint, guard)
        {
            let record = found.value();
            let horizon = &mut self.horizon;
            let successor = record.successor(key, new_entry, || horizon.get());
            let old = Footprint::of_record(record);
            // The successor holds the new entry plus what it kept of the old chain.
            let kept = successor
                .as_ref()
                .map_or(0, |successor| successor.record().len() as u64);
            debug_assert!(
                kept <= old.entries + 1,
                "a successor adds one entry at most"
            );
            state.versions_pruned += old.entries + 1 - kept;
            let Some(successor) = successor else {
                // A tombstone on a chain that pruned down to tombstones only: every reader sees
                // the key as absent, so it leaves the indexes. Storing the empty chain would
                // keep an entry no maintenance pass ever removes.
                shared.remove_key_locked(state, key, old);
                return true;
            };
            let old_head_deadline = old.deadline_millis;
            debug_assert!(state.versions_retained >= old.entries);
            state.versions_retained = state.versions_retained + kept - old.entries;
            if old.entries == 1 && kept > 1 {
                state.prune_queue.push(Key::from_slice(key));
            }
            match (
                old_head_deadline != NO_DEADLINE,
                new_deadline != NO_DEADLINE,
            ) {
                (false, true) => state.keys_with_ttl += 1,
                (true, false) => state.release_ttl(),
                _ => {}
            }
            if new_deadline != NO_DEADLINE && new_deadline != old_head_deadline {
                // The old pair, if any, goes stale: the reaper skips it, compaction drops it.
                state.deadlines.push(new_deadline, Key::from_slice(key));
            }
            shared
                .index
                .replace(&mut state.writer, found, |_| successor, guard);
        } else {
            if new_entry.value.is_none() {
                // Deleting a key the index does not hold changes nothing a reader can see.
                return false;
            }
            let record = NewRecord::single(
                key,
                new_entry.version,
                new_entry.deadline_millis,
                new_entry.value,
            );
            shared.queue_new_key_locked(state, &mut self.new_keys, record);
        }
        true
    }
}

/// Per-commit cache of the read horizon: computed at most once per commit, and only when a
/// chain with history is rewritten.
pub(crate) struct HorizonCache<'a> {
    shared: &'a Shared,
    cached: Option<Horizon>,
}

impl<'a> HorizonCache<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        HorizonCache {
            shared,
            cached: None,
        }
    }

    fn get(&mut self) -> Horizon {
        self.cached
            .get_or_insert_with(|| self.shared.horizon())
            .clone()
    }
}

impl Shared {
    pub(crate) fn new(options: Options) -> Self {
        Shared::with_capacity(options, 0)
    }

    /// An empty database whose point table is sized for `keys` keys up front (recovery knows
    /// the count from the snapshot header, and growing step by step costs more).
    pub(crate) fn with_capacity(options: Options, keys: usize) -> Self {
        let (index, writer) = Index::with_capacity(keys);
        Shared {
            index,
            commit: Mutex::new(CommitState::new(writer)),
            visible: AtomicU64::new(0),
            readers: Arc::new(ReaderRegistry::default()),
            watch: Arc::new(WatchHub::default()),
            options,
            closed: AtomicBool::new(false),
            durable: None,
        }
    }

    /// Attaches the durable half of a database recovery has just built.
    pub(crate) fn attach_durable(&mut self, durable: Durable) {
        self.durable = Some(durable);
    }

    /// The WAL, checkpoints and directory lock; `None` for `Durability::InMemory`.
    pub(crate) fn durable(&self) -> Option<&Durable> {
        self.durable.as_ref()
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    pub(crate) fn watch(&self) -> &Arc<WatchHub> {
        &self.watch
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Makes every later `check_open` fail with `Error::Closed`.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The newest version readers may see.
    pub(crate) fn visible_version(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Keys in the index (live or not yet reclaimed).
    pub(crate) fn keys_indexed(&self) -> usize {
        self.index.len()
    }

    /// Readers registered now.
    pub(crate) fn readers_open(&self) -> usize {
        self.readers.count()
    }

    /// How many readers have been released so far (see `ReaderRegistry::releases`).
    pub(crate) fn reader_releases(&self) -> u64 {
        self.readers.releases()
    }

    /// What the registered readers and the visible version still need (for pruning).
    pub(crate) fn horizon(&self) -> Horizon {
        self.readers.horizon(&self.visible)
    }

    /// The index between `range`'s bounds, for scans: read-only entries.
    pub(crate) fn index_range<'g, R>(&'g self, range: R, guard: &'g Guard) -> IndexRange<'g, R>
    where
        R: RangeBounds<[u8]>,
    {
        IndexRange {
            tree: self.index.range(range, guard),
            front: VecDeque::new(),
            back: VecDeque::new(),
        }
    }

    /// Makes room in the point table for `additional` more keys (recovery's replay). Caller
    /// holds the commit lock.
    pub(crate) fn reserve_point_index(&self, state: &mut CommitState, additional: usize) {
        self.index.reserve(&mut state.writer, additional);
    }

    pub(crate) fn now_millis(&self) -> u64 {
        self.options.clock.now_millis()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub(crate) fn check_key(key: &[u8]) -> Result<()> {
        if key.len() < limits::KEY_BYTES_MIN {
            return Err(Error::KeyEmpty);
        }
        if key.len() > limits::KEY_BYTES_MAX {
            return Err(Error::KeyTooLarge {
                len: key.len(),
                max: limits::KEY_BYTES_MAX,
            });
        }
        Ok(())
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.options.max_value_bytes {
            return Err(Error::ValueTooLarge {
                len: value.len(),
                max: self.options.max_value_bytes,
            });
        }
        Ok(())
    }

    /// The absolute deadline `ttl` from now, rounded up to whole milliseconds.
    pub(crate) fn deadline_after(&self, ttl: std::time::Duration) -> Result<u64> {
        if ttl.is_zero() {
            return Err(Error::InvalidArgument(
                "ttl is zero; a TTL must be at least 1 ms (use delete to remove a key)".into(),
            ));
        }
        let ttl_millis = ttl.as_nanos().div_ceil(1_000_000);
        u64::try_from(ttl_millis)
            .ok()
            .and_then(|millis| self.now_millis().checked_add(millis))
            .filter(|&deadline| deadline != NO_DEADLINE)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("ttl of {ttl:?} overflows the clock's range"))
            })
    }

    // ----- reads -----------------------------------------------------------------------------

    /// Runs `read` on the current record of `key`, found through the point table.
    pub(crate) fn with_record<R>(&self, key: &[u8], read: impl FnOnce(&Record) -> R) -> Option<R> {
        let guard = crossbeam_epoch::pin();
        let record = self.index.get(key, &guard)?;
        Some(read(record))
    }

    /// The newest visible entry's value and version, for a point read that registers nothing.
    pub(crate) fn read_latest(&self, key: &[u8]) -> Option<(Value, u64)> {
        self.with_record(key, |record| {
            // Record first, visible version second: see `mvcc::readers`.
            let visible = self.visible.load(Ordering::Acquire);
            let found = record.entry_at(visible)?;
            let value = found.live_value(|| self.now_millis())?;
            Some((value, found.version))
        })?
    }

    /// The value and version a reader registered at `read_version` sees.
    pub(crate) fn read_at(&self, key: &[u8], read_version: u64) -> Option<(Value, u64)> {
        self.with_record(key, |record| {
            let found = record.entry_at(read_version)?;
            let value = found.live_value(|| self.now_millis())?;
            Some((value, found.version))
        })?
    }

    pub(crate) fn register_reader(&self) -> ReadGuard {
        self.readers.register(&self.visible)
    }

    /// Registers a reader at `version`, which an existing registration keeps readable.
    pub(crate) fn register_reader_at(&self, version: u64) -> ReadGuard {
        self.readers.register_at(version)
    }

    // ----- the commit path ---------------------------------------------------------------------

    pub(crate) fn lock_commit(&self) -> MutexGuard<'_, CommitState> {
        self.commit.lock()
    }

    /// Commits `mutations` under one new version, makes it durable as the durability mode
    /// requires, and makes it visible; returns the version. Takes the commit lock's guard and
    /// releases it before waiting for an fsync, so other commits can join the same group.
    /// Caller has validated everything, including the commit's size (`check_commit_bytes`).
    ///
    /// Order matters:
    /// 1. Everything that can refuse the commit (poisoned log, a body the WAL cannot hold) is
    ///    checked before anything is published, so a refused commit changes nothing: no chain,
    ///    no version, no event.
    /// 2. The chains are published first and the WAL frame appended second, so a group-commit
    ///    leader that makes a frame durable may advance `visible` past it at once.
    /// 3. Watch events go out only once the commit is visible (`Buffered` and `InMemory`: right
    ///    after the visible store, still under the commit lock, so in commit order; `Strict`:
    ///    held until the frame is durable), so a woken watcher reads what it was told about.
    pub(crate) fn commit<'k, I>(
        &self,
        mut state: MutexGuard<'_, CommitState>,
        mutations: I,
    ) -> Result<u64>
    where
        I: IntoIterator<Item = (&'k [u8], Mutation<'k>)> + Clone,
    {
        let version = state.last_version + 1;
        let Some(durable) = &self.durable else {
            let events = self.apply_commit_locked(&mut state, version, mutations);
            self.make_visible_locked(&state, version);
            self.publish_events(events, version);
            return Ok(version);
        };
        if durable.log.is_poisoned() {
            // Checked before anything is applied; a poisoning that races with this commit is
            // caught by `append` below, and then the commit never becomes visible.
            return Err(Error::Poisoned {
                cause: "an earlier write or fsync of the WAL failed".into(),
            });
        }
        // Sized once: a 1,000-key batch's body would otherwise grow by doubling, copying
        // itself about twice over. (Callers checked the size against the limit already.)
        let body_bytes = crate::durable::record::encoded_commit_bytes(mutations.clone());
        let mut body = Vec::with_capacity(body_bytes.min(limits::COMMIT_BYTES_MAX));
        crate::durable::record::encode_commit(&mut body, mutations.clone())
            .map_err(|reason| Error::Internal { reason })?;
        // The log would refuse the frame only after the chains were published: ask first.
        durable.log.check_frame_fits(body.len())?;
        let mut events = self.apply_commit_locked(&mut state, version, mutations);
        if durable.strict {
            // Not durable yet: delivered when it becomes visible, below.
            for (key, value) in events.drain(..) {
                self.watch.hold(key, value, version);
            }
        }
        durable.log.append(
            crate::durable::record::RECORD_TYPE_COMMIT,
            version,
            version,
            &body,
        )?;
        if durable.strict {
            drop(state);
            durable.log.wait_durable(version)?;
            let visible = durable.log.durable_lsn().max(version);
            self.visible.fetch_max(visible, Ordering::AcqRel);
            self.watch.release_through(visible);
        } else {
            self.make_visible_locked(&state, version);
            self.publish_events(events, version);
        }
        Ok(version)
    }

    /// Fails with `LimitExceeded` when a commit of `encoded_bytes` (its WAL body, see
    /// `durable::record::encoded_commit_bytes`) is above `limits::COMMIT_BYTES_MAX`. Called
    /// before the commit lock is taken.
    pub(crate) fn check_commit_bytes(encoded_bytes: usize) -> Result<()> {
        if encoded_bytes > limits::COMMIT_BYTES_MAX {
            return Err(Error::LimitExceeded {
                limit: "COMMIT_BYTES_MAX",
                max: limits::COMMIT_BYTES_MAX,
                what: format!("the commit encodes to {encoded_bytes} bytes"),
            });
        }
        Ok(())
    }

    /// Makes the commit at `version` visible. Caller holds the commit lock and has applied it.
    fn make_visible_locked(&self, state: &CommitState, version: u64) {
        debug_assert!(
            version <= state.last_version,
            "visible {version} would pass the last version {}",
            state.last_version
        );
        debug_assert!(
            self.visible.load(Ordering::Relaxed) < version,
            "versions become visible in order"
        );
        self.visible.store(version, Ordering::Release);
    }

    /// Sets the version counter and the visible version of a database being recovered, before
    /// its replayed writes are applied (so pruning during replay keeps only the newest entry).
    /// Caller holds the commit lock; no reader is registered yet.
    pub(crate) fn restore_version_locked(
        &self,
        state: &mut CommitState,
        version: u64,
        commits: u64,
    ) {
        debug_assert!(
            version >= state.last_version,
            "recovery moves the version forward"
        );
        state.last_version = version;
        state.commits = commits;
        self.visible.store(version, Ordering::Release);
    }

    /// Sends the events of the commit at `version` to the watchers. Caller holds the commit
    /// lock and has made `version` visible.
    fn publish_events(&self, events: Vec<(&[u8], Option<&[u8]>)>, version: u64) {
        debug_assert!(self.visible.load(Ordering::Acquire) >= version);
        for (key, value) in events {
            self.watch.publish(key, value, version);
        }
    }

    /// Applies `mutations` at `version` without publishing it. Caller holds the commit lock.
    /// Returns the watch events of the commit (none when nobody watches).
    fn apply_commit_locked<'k>(
        &self,
        state: &mut CommitState,
        version: u64,
        mutations: impl IntoIterator<Item = (&'k [u8], Mutation<'k>)>,
    ) -> Vec<(&'k [u8], Option<&'k [u8]>)> {
        debug_assert_eq!(
            version,
            state.last_version + 1,
            "a commit's version is the one after the last"
        );
        debug_assert!(self.visible.load(Ordering::Relaxed) <= state.last_version);
        state.last_version = version;
        state.commits += 1;
        let watched = !self.watch.is_idle();
        let mut events = Vec::new();
        let each = |state: &mut CommitState,
                    applying: &mut Applying<'_>,
                    (key, mutation): (&'k [u8], Mutation<'k>)| {
            let entry = match mutation {
                Mutation::Put {
                    value,
                    deadline_millis,
                } => Write {
                    version,
                    deadline_millis,
                    value: Some(value),
                },
                Mutation::Delete => Write {
                    version,
                    deadline_millis: NO_DEADLINE,
                    value: None,
                },
            };
            let changed = applying.apply_locked(state, key, entry);
            if watched && changed {
                events.push((key, entry.value));
            }
        };
        self.apply_in_chunks_locked(state, NewKeys::default(), mutations, each);
        events
    }

    /// Applies `items` with `each`, `APPLY_CHUNK` at a time under one pinned guard, then
    /// inserts the new keys they queued. Caller holds the commit lock.
    pub(crate) fn apply_in_chunks_locked<T>(
        &self,
        state: &mut CommitState,
        mut new_keys: NewKeys,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut CommitState, &mut Applying<'_>, T),
    ) {
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let guard = crossbeam_epoch::pin();
            let mut applying = Applying {
                shared: self,
                horizon: HorizonCache::new(self),
                new_keys,
                hint: LeafHint::default(),
                guard: &guard,
            };
            let mut applied = 0;
            for item in items.by_ref().take(APPLY_CHUNK) {
                each(state, &mut applying, item);
                applied += 1;
            }
            new_keys = applying.new_keys;
            if applied == APPLY_CHUNK {
                // A commit of a few keys pins as often as it did when it pinned per key; a
                // large one pushes the collector as often as that did.
                guard.flush();
            }
        }
        self.insert_new_keys_locked(state, new_keys);
    }

    /// The newest entry of `key` as the sequencer sees it (committed, maybe not yet visible).
    pub(crate) fn head_locked(&self, key: &[u8]) -> Option<VersionEntry> {
        self.with_record(key, |record| record.head().owned())
    }

    /// The version of the newest entry of `key`, 0 when the index has none.
    pub(crate) fn head_version_locked(&self, key: &[u8]) -> u64 {
        self.with_record(key, Record::head_version).unwrap_or(0)
    }

    /// A copy of the current chain of `key` (its values are shared, not copied).
    pub(crate) fn chain_of(&self, key: &[u8]) -> Option<Chain> {
        self.with_record(key, Record::to_chain)
    }

    /// Queues `record`, of a key the index does not hold, and counts it: its entries, and
    /// its deadline (a heap pair and a TTL key) if its head has one. Caller holds the commit
    /// lock and inserts `new_keys` (`insert_new_keys_locked`) before the commit becomes
    /// visible. A key not above the last queued one first sends the queue in, so a key queued
    /// twice is never inserted twice; so does a full queue, which bounds it.
    pub(crate) fn queue_new_key_locked(
        &self,
        state: &mut CommitState,
        new_keys: &mut NewKeys,
        record: NewRecord,
    ) {
        let key = record.record().key();
        let footprint = Footprint::of_record(record.record());
        if footprint.deadline_millis != NO_DEADLINE {
            state.keys_with_ttl += 1;
            state
                .deadlines
                .push(footprint.deadline_millis, Key::from_slice(key));
        }
        state.versions_retained += footprint.entries;
        let in_order = new_keys
            .records
            .last()
            .is_none_or(|last| last.record().key() < key);
        if !in_order || new_keys.records.len() >= new_keys.limit {
            let limit = new_keys.limit;
            let queued = std::mem::replace(
                new_keys,
                NewKeys {
                    records: Vec::new(),
                    limit,
                },
            );
            self.insert_new_keys_locked(state, queued);
        }
        new_keys.records.push(record);
    }

    /// Inserts the queued keys into the index, leaf by leaf. Caller holds the commit lock.
    pub(crate) fn insert_new_keys_locked(&self, state: &mut CommitState, new_keys: NewKeys) {
        if new_keys.records.is_empty() {
            return;
        }
        let queued = new_keys.records.len();
        let added = self.index.insert_batch(&mut state.writer, new_keys.records);
        debug_assert_eq!(added, queued, "a queued key was already in the index");
    }

    /// Removes `key` from the index and uncounts `removed`, the footprint of the chain it
    /// held. Caller holds the commit lock. Its heap pair, if any, goes stale.
    pub(crate) fn remove_key_locked(
        &self,
        state: &mut CommitState,
        key: &[u8],
        removed: Footprint,
    ) {
        state.release_versions(removed.entries);
        if removed.deadline_millis != NO_DEADLINE {
            state.release_ttl();
        }
        let removed = self.index.remove(&mut state.writer, key);
        debug_assert!(
            removed,
            "remove_key_locked of a key the index does not hold"
        );
    }

    /// Replaces `key`'s chain with `pruned`, the same chain less `dropped` old entries (its
    /// head, so its deadline, unchanged). Caller holds the commit lock.
    pub(crate) fn replace_pruned_locked(
        &self,
        state: &mut CommitState,
        key: &[u8],
        pruned: Chain,
        dropped: u64,
    ) {
        state.release_versions(dropped);
        let guard = crossbeam_epoch::pin();
        let record = NewRecord::new(key, pruned);
        let (_, was_new) = self
            .index
            .upsert(&mut state.writer, key, |_| record, &guard);
        debug_assert!(
            !was_new,
            "replace_pruned_locked of a key the index does not hold"
        );
    }

    /// Fails with `Conflict` if any entry in the range changed after `read_version`.
    /// Caller holds the commit lock.
    pub(crate) fn check_range_unchanged_locked(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        read_version: u64,
    ) -> Result<()> {
        if crate::bounds::bounds_are_empty(lower, upper) {
            return Ok(());
        }
        let guard = crossbeam_epoch::pin();
        for entry in self.index_range((lower, upper), &guard) {
            if entry.read(Record::head_version) > read_version {
                return Err(Error::Conflict {
                    key: KeyDisplay::new(entry.key()),
                });
            }
        }
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Never wait here: the last reference may be dropped on a maintenance worker.
        self.watch.close_all();
        if let Some(durable) = &self.durable {
            // Best effort for a `Buffered` handle dropped without `close`: its contract allows
            // losing the last interval, but there is no reason to.
            let _ = durable.log.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_above_the_byte_limit_are_refused_with_the_limit_named() {
        assert!(Shared::check_commit_bytes(limits::COMMIT_BYTES_MAX).is_ok());
        let refused = Shared::check_commit_bytes(limits::COMMIT_BYTES_MAX + 1);
        assert!(
            matches!(
                refused,
                Err(Error::LimitExceeded {
                    limit: "COMMIT_BYTES_MAX",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}

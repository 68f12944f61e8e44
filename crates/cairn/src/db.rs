//! `Db`: the handle applications hold, and every operation of the engine contract.
//!
//! A `Db` is cheap to clone and safe to share between threads; every clone is the same
//! database. Single-key writes are one commit each; `write`, `clear_prefix` and transactions
//! commit many keys under one version. Reads never block and never wait for writers.
//!
//! `Db::open` with `Options::new(dir)` opens (or creates) a durable database and recovers it;
//! `Db::in_memory` keeps no files. What a returned `Ok` promises is the `Durability` mode's
//! contract (see `options`).

use std::ops::RangeBounds;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::{BatchWrite, WriteBatch};
use crate::bounds::{as_slice_bound, bounds_are_empty, owned_bounds, prefix_bounds};
use crate::durable::checkpoint::CheckpointReport;
use crate::durable::RecoveryReport;
use crate::engine::Shared;
use crate::error::{Error, KeyDisplay, Result};
use crate::limits;
use crate::maintenance::{self, MaintenanceReport};
use crate::mvcc::chain::NO_DEADLINE;
use crate::options::{Durability, Isolation, Options};
use crate::scan::Scan;
use crate::snapshot::Snapshot;
use crate::transaction::Transaction;
use crate::types::{Key, Mutation, Value, Version};
use crate::watch::{WakeupHook, Watcher};

/// What `compare_and_swap` expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected<'a> {
    /// The key holds no live value.
    Absent,
    /// The key holds exactly these bytes.
    Value(&'a [u8]),
    /// The key's live value was written by exactly this version.
    Version(Version),
}

/// The result of `compare_and_swap`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The expectation held; the new state was committed at this version.
    Swapped(Version),
    /// The expectation did not hold; nothing was written. `current` is what was found.
    Mismatch {
        /// The live value and its version, or `None` when the key was absent.
        current: Option<(Value, Version)>,
    },
}

impl CasOutcome {
    /// True when the swap happened.
    pub fn is_swapped(&self) -> bool {
        matches!(self, CasOutcome::Swapped(_))
    }
}

/// A key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key holds no live value.
    Absent,
    /// The key never expires.
    Persistent,
    /// The key expires after this long (rounded to milliseconds).
    Expires(Duration),
}

/// Counters describing the database's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Keys held in the index, including deleted or expired keys not yet reclaimed.
    pub keys_indexed: usize,
    /// Versions held by all keys together (one per key when no history is needed).
    pub versions_retained: u64,
    /// The newest visible commit.
    pub visible_version: Version,
    /// Commits in the database's history: every version ever committed, restored by recovery.
    pub commits: u64,
    /// Keys whose newest version has a deadline.
    pub keys_with_ttl: usize,
    /// Deadlines the reaper tracks, including stale ones for keys rewritten since; compaction
    /// keeps this within about twice the live count.
    pub deadlines_tracked: usize,
    /// Expired keys whose memory the reaper reclaimed.
    pub expired_reclaimed: u64,
    /// Old versions dropped by pruning, on the commit path or by the maintainer.
    pub versions_pruned: u64,
    /// Keys whose history waits for pruning.
    pub prune_queue: usize,
    /// Open snapshots, transactions and scans.
    pub readers_open: usize,
    /// Live watchers.
    pub watchers: usize,
    /// True once a WAL write or fsync failed: every later write fails until reopen.
    pub wal_poisoned: bool,
    /// WAL frames (commits) appended since open.
    pub wal_frames: u64,
    /// WAL bytes appended since open.
    pub wal_bytes: u64,
    /// WAL write groups: each is one write and one fdatasync for every commit queued in it.
    pub wal_syncs: u64,
    /// Checkpoints completed since open.
    pub checkpoints: u64,
    /// Automatic checkpoints that failed since open (the WAL keeps everything; nothing lost).
    pub checkpoint_failures: u64,
}

/// An open Cairn database. Clone it to share it.
#[derive(Clone, Debug)]
pub struct Db {
    // Declared first, so dropped before `handles`: the last handle's drop then finds only
    // a running maintenance tick (if any) still holding the database.
    shared: Arc<Shared>,
    handles: Arc<maintenance::Handles>,
}

impl Db {
    /// Opens a database with `options`.
    pub fn open(options: Options) -> Result<Db> {
        options.validate()?;
        let interval = options.maintenance_interval;
        // A Buffered log's background flush runs on the shared service too.
        let flush = match options.durability {
            Durability::Buffered { flush_interval, .. } => {
                Some((maintenance::FlushTask::reserve(), flush_interval))
            }
            _ => None,
        };
        let shared = Arc::new(if options.durability == Durability::InMemory {
            Shared::new(options)
        } else {
            crate::durable::recovery::open_durable(&options, flush.map(|(task, _)| task))?
        });
        let handles = maintenance::Handles::start(&shared, interval, flush).map_err(|source| {
            Error::ThreadSpawn {
                thread: "maintenance",
                source,
            }
        })?;
        Ok(Db {
            shared,
            handles: Arc::new(handles),
        })
    }

    /// A database with no files. If the maintenance thread cannot be started, the database
    /// still works and `run_maintenance` reclaims memory when called.
    pub fn in_memory() -> Db {
        Db::open(Options::in_memory()).unwrap_or_else(|_| Db {
            shared: Arc::new(Shared::new(Options::in_memory())),
            handles: Arc::default(),
        })
    }

    // ----- point reads -------------------------------------------------------------------------

    /// The live value of `key`, if any.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.shared.check_open()?;
        Ok(self.shared.read_latest(key).map(|(value, _)| value))
    }

    /// The live value of `key` and the version that wrote it.
    pub fn get_versioned(&self, key: impl AsRef<[u8]>) -> Result<Option<(Value, Version)>> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.shared.check_open()?;
        Ok(self
            .shared
            .read_latest(key)
            .map(|(value, version)| (value, Version(version))))
    }

    /// True when `key` holds a live value.
    pub fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.shared.check_open()?;
        Ok(self.shared.read_latest(key).is_some())
    }

    /// The values of `keys`, in order, all read at one version.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        for key in keys {
            Shared::check_key(key.as_ref())?;
        }
        self.shared.check_open()?;
        let guard = self.shared.register_reader();
        Ok(keys
            .iter()
            .map(|key| {
                self.shared
                    .read_at(key.as_ref(), guard.version())
                    .map(|(value, _)| value)
            })
            .collect())
    }

    // ----- single-key writes -------------------------------------------------------------------

    /// Sets `key` to `value`, removing any TTL.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<Version> {
        self.put_with_deadline(key.as_ref(), value.as_ref(), NO_DEADLINE)
    }

    /// Sets `key` to `value`, expiring `ttl` from now (at least 1 ms; rounded up to whole ms).
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<Version> {
        let deadline = self.shared.deadline_after(ttl)?;
        self.put_with_deadline(key.as_ref(), value.as_ref(), deadline)
    }

    fn put_with_deadline(&self, key: &[u8], value: &[u8], deadline_millis: u64) -> Result<Version> {
        Shared::check_key(key)?;
        self.shared.check_value(value)?;
        self.shared.check_open()?;
        let mutation = Mutation::Put {
            value,
            deadline_millis,
        };
        let state = self.shared.lock_commit();
        let version = self.shared.commit(state, [(key, mutation)])?;
        Ok(Version(version))
    }

    /// Deletes `key`. Returns true when it held a live value; deleting an absent key is not
    /// an error and commits nothing.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.shared.check_open()?;
        let state = self.shared.lock_commit();
        if self.live_head_locked(key).is_none() {
            // Absent, deleted or expired: nothing a reader can see would change.
            return Ok(false);
        }
        self.shared.commit(state, [(key, Mutation::Delete)])?;
        Ok(true)
    }

    /// The live value and version of `key` as the sequencer sees it. Caller holds the lock.
    fn live_head_locked(&self, key: &[u8]) -> Option<(Value, u64, u64)> {
        let head = self.shared.head_locked(key)?;
        let value = head.live_value(|| self.shared.now_millis())?.clone();
        Some((value, head.version, head.deadline_millis))
    }

    // ----- TTL ---------------------------------------------------------------------------------

    /// The time to live of `key`.
    pub fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Ttl> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.shared.check_open()?;
        let Some(chain) = self.shared.chain_of(key) else {
            return Ok(Ttl::Absent);
        };
        let visible = self.shared.visible_version();
        let Some(found) = chain.entry_at(visible) else {
            return Ok(Ttl::Absent);
        };
        let now = self.shared.now_millis();
        if found.is_dead_at(now) {
            return Ok(Ttl::Absent);
        }
        if found.deadline_millis == NO_DEADLINE {
            return Ok(Ttl::Persistent);
        }
        Ok(Ttl::Expires(Duration::from_millis(
            found.deadline_millis - now,
        )))
    }

    /// Sets a new TTL on a live key, keeping its value. Returns false when the key is absent.
    pub fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let deadline = self.shared.deadline_after(ttl)?;
        self.rewrite_deadline(key.as_ref(), deadline)
    }

    /// Removes the TTL of a live key. Returns false when the key is absent.
    pub fn persist(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.rewrite_deadline(key.as_ref(), NO_DEADLINE)
    }

    fn rewrite_deadline(&self, key: &[u8], deadline_millis: u64) -> Result<bool> {
        Shared::check_key(key)?;
        self.shared.check_open()?;
        let state = self.shared.lock_commit();
        let Some((value, _, _)) = self.live_head_locked(key) else {
            return Ok(false);
        };
        let mutation = Mutation::Put {
            value: value.as_bytes(),
            deadline_millis,
        };
        self.shared.commit(state, [(key, mutation)])?;
        Ok(true)
    }

    // ----- read-modify-write -------------------------------------------------------------------

    /// Writes `new` (or deletes, for `None`) only if `key` matches `expected`; atomic with
    /// respect to every other commit. An expired key counts as absent.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Expected<'_>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        if let Some(value) = new {
            self.shared.check_value(value)?;
        }
        self.shared.check_open()?;
        let state = self.shared.lock_commit();
        let current = self.live_head_locked(key);
        let matches = match (&expected, &current) {
            (Expected::Absent, None) => true,
            (Expected::Value(bytes), Some((value, _, _))) => value.as_bytes() == *bytes,
            (Expected::Version(version), Some((_, found, _))) => version.0 == *found,
            _ => false,
        };
        if !matches {
            return Ok(CasOutcome::Mismatch {
                current: current.map(|(value, version, _)| (value, Version(version))),
            });
        }
        let mutation = match new {
            Some(value) => Mutation::Put {
                value,
                deadline_millis: NO_DEADLINE,
            },
            None => Mutation::Delete,
        };
        let version = self.shared.commit(state, [(key, mutation)])?;
        Ok(CasOutcome::Swapped(Version(version)))
    }

    /// Adds `delta` to the decimal i64 stored at `key` (absent counts as 0) and returns the
    /// new value. The key's TTL, if any, is kept. Overflow is `Error::Overflow`, a value that
    /// is not a decimal i64 is `Error::NotAnInteger`; neither writes anything.
    pub fn increment(&self, key: impl AsRef<[u8]>, delta: i64) -> Result<i64> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.shared.check_open()?;
        let state = self.shared.lock_commit();
        let (current, deadline_millis) = match self.live_head_locked(key) {
            None => (0, NO_DEADLINE),
            Some((value, _, deadline)) => (parse_integer(key, &value)?, deadline),
        };
        let next = current.checked_add(delta).ok_or_else(|| Error::Overflow {
            key: KeyDisplay::new(key),
            delta,
        })?;
        let text = next.to_string();
        let mutation = Mutation::Put {
            value: text.as_bytes(),
            deadline_millis,
        };
        self.shared.commit(state, [(key, mutation)])?;
        Ok(next)
    }

    // ----- batches -----------------------------------------------------------------------------

    /// Applies every write in `batch` as one atomic commit. Every key and value is checked
    /// first: a refused batch writes nothing. An empty batch commits nothing and returns the
    /// visible version.
    pub fn write(&self, batch: &WriteBatch) -> Result<Version> {
        if batch.len() > limits::COMMIT_MUTATIONS_MAX {
            return Err(Error::InvalidArgument(format!(
                "batch holds {} writes; the limit is {}",
                batch.len(),
                limits::COMMIT_MUTATIONS_MAX
            )));
        }
        let mut mutations = Vec::with_capacity(batch.len());
        for (key, write) in batch.writes() {
            Shared::check_key(key)?;
            let mutation = match write {
                BatchWrite::Put { value, ttl } => {
                    self.shared.check_value(value)?;
                    let deadline_millis = match ttl {
                        Some(ttl) => self.shared.deadline_after(ttl)?,
                        None => NO_DEADLINE,
                    };
                    Mutation::Put {
                        value,
                        deadline_millis,
                    }
                }
                BatchWrite::Delete => Mutation::Delete,
            };
            mutations.push((key, mutation));
        }
        // Last write to a key wins: keep the final occurrence, in key order.
        mutations.reverse();
        mutations.sort_by(|left, right| left.0.cmp(right.0));
        mutations.dedup_by(|later, earlier| later.0 == earlier.0);
        self.shared.check_open()?;
        if mutations.is_empty() {
            return Ok(self.version());
        }
        let pairs = || {
            mutations
                .iter()
                .map(|(key, mutation)| (key.as_bytes(), *mutation))
        };
        Shared::check_commit_bytes(crate::durable::record::encoded_commit_bytes(pairs()))?;
        let state = self.shared.lock_commit();
        let version = self.shared.commit(state, pairs())?;
        Ok(Version(version))
    }

    // ----- scans -------------------------------------------------------------------------------

    /// Live keys starting with `prefix`, in key order, read at one version. `.rev()` walks
    /// backwards. Fails with `Error::Closed` on a closed database, like every other read (a
    /// scan is an iterator of plain pairs, so it cannot report the error item by item; a scan
    /// begun before `close` keeps reading its version).
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Scan> {
        self.shared.check_open()?;
        Ok(Scan::new(
            Arc::clone(&self.shared),
            self.shared.register_reader(),
            prefix_bounds(prefix.as_ref()),
        ))
    }

    /// Live keys in `range`, in key order, read at one version. A reversed range is an error.
    pub fn range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<Scan> {
        let bounds = owned_bounds(&range)?;
        self.shared.check_open()?;
        Ok(Scan::new(
            Arc::clone(&self.shared),
            self.shared.register_reader(),
            bounds,
        ))
    }

    /// How many live keys start with `prefix`.
    pub fn count_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<usize> {
        Ok(self.scan_prefix(prefix)?.count())
    }

    /// Deletes every live key starting with `prefix` as one atomic commit; returns how many.
    /// More than `COMMIT_MUTATIONS_MAX` keys is refused with `InvalidArgument`, deleting
    /// nothing.
    pub fn clear_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<usize> {
        self.shared.check_open()?;
        let (lower, upper) = prefix_bounds(prefix.as_ref());
        let (lower, upper) = (as_slice_bound(&lower), as_slice_bound(&upper));
        if bounds_are_empty(lower, upper) {
            return Ok(0);
        }
        let state = self.shared.lock_commit();
        let now = self.shared.now_millis();
        let guard = crossbeam_epoch::pin();
        let doomed: Vec<Key> = self
            .shared
            .index_range((lower, upper), &guard)
            .filter(|entry| entry.read(|record| !record.head().is_dead_at(now)))
            .map(|entry| Key::from_slice(entry.key()))
            .take(limits::COMMIT_MUTATIONS_MAX + 1)
            .collect();
        if doomed.len() > limits::COMMIT_MUTATIONS_MAX {
            return Err(Error::InvalidArgument(format!(
                "clear_prefix would delete more than {} keys in one commit; \
                 clear longer prefixes one at a time",
                limits::COMMIT_MUTATIONS_MAX
            )));
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        drop(guard);
        // The keys are only known under the lock; nothing is published yet, so refusing here
        // still changes nothing.
        Shared::check_commit_bytes(crate::durable::record::encoded_commit_bytes(
            doomed.iter().map(|key| (key.as_bytes(), Mutation::Delete)),
        ))?;
        self.shared.commit(
            state,
            doomed.iter().map(|key| (key.as_bytes(), Mutation::Delete)),
        )?;
        Ok(doomed.len())
    }

    // ----- transactions and snapshots ----------------------------------------------------------

    /// Begins a `Snapshot`-isolated transaction.
    pub fn begin(&self) -> Transaction {
        self.begin_with(Isolation::Snapshot)
    }

    /// Begins a transaction at `isolation`.
    pub fn begin_with(&self, isolation: Isolation) -> Transaction {
        Transaction::new(Arc::clone(&self.shared), isolation)
    }

    /// Runs `body` in a `Snapshot` transaction and commits it, retrying on conflict.
    pub fn transaction<T>(&self, body: impl FnMut(&mut Transaction) -> Result<T>) -> Result<T> {
        self.transaction_with(Isolation::Snapshot, body)
    }

    /// Runs `body` in a transaction at `isolation` and commits it. On `Conflict` (from the body
    /// or from commit) it backs off and tries again, at most `TRANSACTION_ATTEMPTS_MAX` times;
    /// any other error is returned at once.
    pub fn transaction_with<T>(
        &self,
        isolation: Isolation,
        mut body: impl FnMut(&mut Transaction) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut transaction = self.begin_with(isolation);
            let outcome = body(&mut transaction).and_then(|out| {
                transaction.commit()?;
                Ok(out)
            });
            match outcome {
                Err(error)
                    if error.is_retryable() && attempt < limits::TRANSACTION_ATTEMPTS_MAX =>
                {
                    backoff(attempt);
                }
                other => return other,
            }
        }
    }

    /// A read-only view at the current version.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            shared: Arc::clone(&self.shared),
            guard: self.shared.register_reader(),
        }
    }

    // ----- watch -------------------------------------------------------------------------------

    /// Subscribes to every commit that writes a key starting with `prefix`.
    pub fn watch_prefix(&self, prefix: impl AsRef<[u8]>) -> Watcher {
        self.shared.watch().subscribe(
            prefix.as_ref(),
            self.shared.options().watch_queue_events,
            None,
        )
    }

    /// Like [`Db::watch_prefix`], and calls `wakeup` after each event is queued and when the
    /// database closes. For async adapters: the hook wakes a task, which then drains the
    /// watcher with [`Watcher::try_recv`]. The hook runs on a committing thread, which may
    /// hold the commit lock, so it must be short and must never block.
    pub fn watch_prefix_with_wakeup(
        &self,
        prefix: impl AsRef<[u8]>,
        wakeup: WakeupHook,
    ) -> Watcher {
        self.shared.watch().subscribe(
            prefix.as_ref(),
            self.shared.options().watch_queue_events,
            Some(wakeup),
        )
    }

    // ----- housekeeping ------------------------------------------------------------------------

    /// The durability mode the database was opened with.
    pub fn durability(&self) -> Durability {
        self.shared.options().durability
    }

    /// The newest visible version.
    pub fn version(&self) -> Version {
        Version(self.shared.visible_version())
    }

    /// Counters describing the database.
    pub fn stats(&self) -> Stats {
        // Read first: a running checkpoint must never make `stats` hold the commit lock long.
        let durable = self.durable_stats();
        let state = self.shared.lock_commit();
        Stats {
            keys_indexed: self.shared.keys_indexed(),
            versions_retained: state.versions_retained(),
            visible_version: self.version(),
            commits: state.commits(),
            keys_with_ttl: state.keys_with_ttl(),
            deadlines_tracked: state.deadlines_tracked(),
            expired_reclaimed: state.expired_reclaimed(),
            versions_pruned: state.versions_pruned(),
            prune_queue: state.prune_backlog(),
            readers_open: self.shared.readers_open(),
            watchers: self.shared.watch().count(),
            ..durable
        }
    }

    fn durable_stats(&self) -> Stats {
        let Some(durable) = self.shared.durable() else {
            return Stats::default();
        };
        let log = durable.log.stats();
        Stats {
            wal_poisoned: durable.log.is_poisoned(),
            wal_frames: log.frames_appended,
            wal_bytes: log.bytes_appended,
            wal_syncs: log.syncs,
            checkpoints: durable.checkpoints_completed.load(Ordering::Relaxed),
            checkpoint_failures: durable.checkpoint_failures.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }

    /// Runs one maintenance pass now, on this thread: reaps expired keys and prunes history.
    pub fn run_maintenance(&self) -> MaintenanceReport {
        self.shared.run_maintenance()
    }

    /// Makes every acknowledged commit durable: with `Buffered`, writes and fdatasyncs the WAL
    /// buffer now. With `Strict` every acknowledged commit already is; with `InMemory` there is
    /// nothing to do.
    pub fn sync(&self) -> Result<()> {
        self.shared.check_open()?;
        if let Some(durable) = self.shared.durable() {
            durable.log.sync()?;
        }
        Ok(())
    }

    /// Writes a snapshot of the database at the visible version and deletes the WAL it made
    /// redundant; see `durable::checkpoint`. Writers are not blocked. `InMemory` databases
    /// return `Error::Unsupported`.
    pub fn checkpoint(&self) -> Result<CheckpointReport> {
        self.shared.checkpoint()
    }

    /// What opening this database recovered; an empty report for `InMemory`.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.shared
            .durable()
            .map(|durable| durable.report.clone())
            .unwrap_or_default()
    }

    /// Closes the database: stops the maintainer, makes every acknowledged commit durable
    /// (`Buffered`), and refuses further operations on every handle. Watchers drain what is
    /// queued and then end. The directory lock is released, so the directory can be opened
    /// again at once. The memory goes when the last handle is dropped.
    pub fn close(&self) -> Result<()> {
        let flushed = match self.shared.durable() {
            Some(durable) if !self.shared.is_closed() => durable.log.close(),
            _ => Ok(()),
        };
        self.shared.mark_closed();
        self.handles.stop_maintenance();
        self.shared.watch().close_all();
        if let Some(durable) = self.shared.durable() {
            durable.lock.lock().take();
        }
        Ok(flushed?)
    }
}

fn parse_integer(key: &[u8], value: &[u8]) -> Result<i64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| Error::NotAnInteger {
            key: KeyDisplay::new(key),
        })
}

/// Sleeps a little longer after each failed attempt: 10 µs doubling, capped at 5 ms.
fn backoff(attempt: u32) {
    let micros = 10u64 << attempt.min(9);
    std::thread::sleep(Duration::from_micros(micros.min(5_000)));
}

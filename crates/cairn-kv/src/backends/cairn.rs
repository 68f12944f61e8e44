//! `CairnStore`: the trait on Cairn's own engine, in any durability mode.
//!
//! Reads call the engine directly on the caller's task: an engine read never blocks, so
//! there is no thread hop. Single-key writes do the same in `InMemory` and `Buffered` mode,
//! where a commit only appends to memory. In `Strict` mode a commit waits for an fdatasync,
//! so writes run on tokio's blocking pool instead of stalling the runtime; the hop costs
//! two thread wake-ups, small beside the sync it waits for. `multi_put` (up to 10,000 keys)
//! and `clear_prefix` (up to 1,000,000 keys, one commit under the engine's commit lock) run on
//! the blocking pool in every mode: they are long enough to stall a worker.
//!
//! The one stall left on a worker: a `Buffered` single-key write blocks under backpressure,
//! when more than twice `buffer_bytes_max` (default 4 MiB, so 8 MiB) waits for the background
//! flush. It then waits for that flush: one write of at most 8 MiB plus one fdatasync, so the
//! stall is bounded by the disk's time for that, and it happens only when writers outrun the
//! disk. Measured with one thread writing 1 KiB values as fast as it could for 10 s (65 MiB/s
//! of WAL, automatic checkpoints running, on a busy shared 2-core VM): 560 of 632,000 puts
//! took over 1 ms, the 99.99th percentile 20 ms and the worst 0.95 s. An application that
//! cannot afford that on a runtime worker should use `Strict` (every write off the worker) or
//! keep its write rate below the disk's. Paying a thread hop (~30-40 µs) on every ~1 µs
//! `Buffered` write to avoid it would cost the common case far more.
//!
//! Scoping is the scope's key prefix in front of every key (see `scope`), so a prefix scan,
//! `clear_prefix` and a watch are range operations of the engine's ordered index. Watch uses
//! the engine's bounded watcher queue, woken through a `tokio::sync::Notify`.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability, Expected, Options, Ttl, WatchEvent, Watcher, WriteBatch};
use smallvec::SmallVec;
use tokio::sync::Notify;

use crate::error::{KeyText, KvError, KvResult};
use crate::limits::CLEAR_PREFIX_KEYS_MAX;
use crate::scope::Scope;
use crate::store::{
    check_cas, check_entry, check_key, check_list_page, check_multi_len, check_prefix, ttl_millis,
    KeyValueStore, KvTtl, Page, StoreStats,
};
use crate::watch::{EventSource, KvEvent, KvWatcher, RecvFuture, WatchTarget};

const BACKEND: &str = "cairn";

/// Stored keys up to this long are built on the stack.
type StoredKey = SmallVec<[u8; 128]>;

/// The `KeyValueStore` trait on a Cairn [`Db`].
#[derive(Clone, Debug)]
pub struct CairnStore {
    db: Db,
    writes_block: bool,
}

impl CairnStore {
    /// Wraps an open database, in whatever durability mode it was opened.
    pub fn new(db: Db) -> Self {
        let writes_block = matches!(db.durability(), Durability::Strict);
        CairnStore { db, writes_block }
    }

    /// An `InMemory` store.
    pub fn in_memory() -> Self {
        CairnStore::new(Db::in_memory())
    }

    /// Opens (or creates and recovers) a database with `options`. Recovery reads the whole
    /// WAL, so this runs on the blocking pool.
    pub async fn open(options: Options) -> KvResult<Self> {
        let db = tokio::task::spawn_blocking(move || Db::open(options))
            .await
            .map_err(|join| KvError::backend(BACKEND, join))?
            .map_err(|error| engine_error(error, b""))?;
        Ok(CairnStore::new(db))
    }

    /// The engine handle, for what the trait does not cover (transactions, snapshots, ...).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Flushes and closes the database; later calls fail with `Closed`.
    pub async fn close(&self) -> KvResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.close())
            .await
            .map_err(|join| KvError::backend(BACKEND, join))?
            .map_err(|error| engine_error(error, b""))
    }

    /// Runs a write on tokio's blocking pool, whatever the mode: for writes long enough to
    /// stall a worker (many keys in one commit).
    async fn off_the_worker<T: Send + 'static>(
        &self,
        key_for_errors: &[u8],
        write: impl FnOnce(&Db) -> cairn::Result<T> + Send + 'static,
    ) -> KvResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || write(&db))
            .await
            .map_err(|join| KvError::backend(BACKEND, join))?
            .map_err(|error| engine_error(error, key_for_errors))
    }

    /// Runs a write: inline, or on the blocking pool in `Strict` mode.
    async fn write<T: Send + 'static>(
        &self,
        key_for_errors: &[u8],
        write: impl FnOnce(&Db) -> cairn::Result<T> + Send + 'static,
    ) -> KvResult<T> {
        let result = if self.writes_block {
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || write(&db))
                .await
                .map_err(|join| KvError::backend(BACKEND, join))?
        } else {
            write(&self.db)
        };
        result.map_err(|error| engine_error(error, key_for_errors))
    }
}

/// The smallest key above every key that starts with `prefix`; `None` when there is none.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last_kept = prefix.iter().rposition(|&byte| byte != u8::MAX)?;
    let mut upper = prefix.get(..=last_kept)?.to_vec();
    *upper.last_mut()? += 1;
    Some(upper)
}

fn stored(scope: &Scope, key: &[u8]) -> StoredKey {
    let mut stored = StoredKey::with_capacity(scope.key_prefix().len() + key.len());
    stored.extend_from_slice(scope.key_prefix());
    stored.extend_from_slice(key);
    stored
}

/// Maps an engine error to the trait's; `key` is the caller's key, for messages.
fn engine_error(error: cairn::Error, key: &[u8]) -> KvError {
    match error {
        cairn::Error::NotAnInteger { .. } => KvError::NotAnInteger {
            key: KeyText::new(key),
        },
        cairn::Error::Overflow { delta, .. } => KvError::Overflow {
            key: KeyText::new(key),
            delta: i128::from(delta),
        },
        cairn::Error::InvalidArgument(reason) => KvError::InvalidArgument(reason),
        cairn::Error::Closed => KvError::Closed,
        other => KvError::backend(BACKEND, other),
    }
}

impl KeyValueStore for CairnStore {
    async fn get(&self, scope: &Scope, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        let value = self
            .db
            .get(stored(scope, key))
            .map_err(|error| engine_error(error, key))?;
        Ok(value.map(|value| value.to_vec()))
    }

    async fn put(&self, scope: &Scope, key: &[u8], value: &[u8]) -> KvResult<()> {
        check_entry(key, value)?;
        let stored = stored(scope, key);
        if self.writes_block {
            let value = value.to_vec();
            self.write(key, move |db| db.put(stored, value)).await?;
        } else {
            self.db
                .put(stored, value)
                .map_err(|error| engine_error(error, key))?;
        }
        Ok(())
    }

    async fn delete(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        let stored = stored(scope, key);
        self.write(key, move |db| db.delete(stored)).await
    }

    async fn exists(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        self.db
            .exists(stored(scope, key))
            .map_err(|error| engine_error(error, key))
    }

    async fn list(&self, scope: &Scope, prefix: &[u8]) -> KvResult<Vec<Vec<u8>>> {
        check_prefix(prefix)?;
        let prefix_bytes = scope.key_prefix().len();
        Ok(self
            .db
            .scan_prefix(stored(scope, prefix))
            .map_err(|error| engine_error(error, prefix))?
            // Every key of the scan starts with the scope's prefix.
            .filter_map(|(key, _)| key.get(prefix_bytes..).map(<[u8]>::to_vec))
            .collect())
    }

    async fn list_page(
        &self,
        scope: &Scope,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> KvResult<Page> {
        check_list_page(prefix, start_after, limit)?;
        let prefix_bytes = scope.key_prefix().len();
        let lower_prefix = stored(scope, prefix).to_vec();
        let lower = match start_after.map(|after| stored(scope, after).to_vec()) {
            Some(after) if after >= lower_prefix => Bound::Excluded(after),
            _ => Bound::Included(lower_prefix.clone()),
        };
        let upper = prefix_successor(&lower_prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let keys = self
            .db
            .range((lower, upper))
            .map_err(|error| engine_error(error, prefix))?
            .take(limit.saturating_add(1))
            // Every key of the scan starts with the scope's prefix.
            .filter_map(|(key, _)| key.get(prefix_bytes..).map(<[u8]>::to_vec))
            .collect();
        Ok(Page::from_sorted(keys, limit))
    }

    async fn multi_get(&self, scope: &Scope, keys: &[&[u8]]) -> KvResult<Vec<Option<Vec<u8>>>> {
        check_multi_len(keys.len())?;
        for key in keys {
            check_key(key)?;
        }
        let stored_keys: Vec<StoredKey> = keys.iter().map(|key| stored(scope, key)).collect();
        let values = self
            .db
            .multi_get(&stored_keys)
            .map_err(|error| engine_error(error, b""))?;
        Ok(values
            .into_iter()
            .map(|value| value.map(|value| value.to_vec()))
            .collect())
    }

    async fn multi_put(&self, scope: &Scope, entries: &[(&[u8], &[u8])]) -> KvResult<()> {
        check_multi_len(entries.len())?;
        let mut batch = WriteBatch::new();
        for (key, value) in entries {
            check_entry(key, value)?;
            batch.put(stored(scope, key), value);
        }
        self.off_the_worker(b"", move |db| db.write(&batch)).await?;
        Ok(())
    }

    async fn put_with_ttl(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> KvResult<()> {
        check_entry(key, value)?;
        let ttl = Duration::from_millis(ttl_millis(ttl)?);
        let stored = stored(scope, key);
        if self.writes_block {
            let value = value.to_vec();
            self.write(key, move |db| db.put_with_ttl(stored, value, ttl))
                .await?;
        } else {
            self.db
                .put_with_ttl(stored, value, ttl)
                .map_err(|error| engine_error(error, key))?;
        }
        Ok(())
    }

    async fn refresh_ttl(&self, scope: &Scope, key: &[u8], ttl: Duration) -> KvResult<bool> {
        check_key(key)?;
        let ttl = Duration::from_millis(ttl_millis(ttl)?);
        let stored = stored(scope, key);
        self.write(key, move |db| db.expire(stored, ttl)).await
    }

    async fn get_ttl(&self, scope: &Scope, key: &[u8]) -> KvResult<KvTtl> {
        check_key(key)?;
        let ttl = self
            .db
            .ttl(stored(scope, key))
            .map_err(|error| engine_error(error, key))?;
        Ok(match ttl {
            Ttl::Absent => KvTtl::Absent,
            Ttl::Persistent => KvTtl::Persistent,
            Ttl::Expires(left) => KvTtl::Expires(left),
        })
    }

    async fn cas(
        &self,
        scope: &Scope,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> KvResult<bool> {
        check_cas(key, expected, new)?;
        let stored = stored(scope, key);
        let swap = move |db: &Db, expected: Option<&[u8]>, new: &[u8]| {
            let expected = expected.map_or(Expected::Absent, Expected::Value);
            db.compare_and_swap(stored, expected, Some(new))
                .map(|outcome| outcome.is_swapped())
        };
        if self.writes_block {
            let (expected, new) = (expected.map(<[u8]>::to_vec), new.to_vec());
            self.write(key, move |db| swap(db, expected.as_deref(), &new))
                .await
        } else {
            swap(&self.db, expected, new).map_err(|error| engine_error(error, key))
        }
    }

    async fn increment(&self, scope: &Scope, key: &[u8], delta: i64) -> KvResult<i64> {
        check_key(key)?;
        let stored = stored(scope, key);
        self.write(key, move |db| db.increment(stored, delta)).await
    }

    async fn watch(&self, scope: &Scope, key: &[u8]) -> KvResult<KvWatcher> {
        check_key(key)?;
        Ok(self.subscribe(WatchTarget::key(scope, key)))
    }

    async fn watch_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<KvWatcher> {
        check_prefix(prefix)?;
        Ok(self.subscribe(WatchTarget::prefix(scope, prefix)))
    }

    async fn clear_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        check_prefix(prefix)?;
        let stored = stored(scope, prefix);
        let cleared = self
            .off_the_worker(prefix, move |db| db.clear_prefix(stored))
            .await?;
        debug_assert!(cleared <= CLEAR_PREFIX_KEYS_MAX);
        Ok(cleared as u64)
    }

    async fn count_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        check_prefix(prefix)?;
        let count = self
            .db
            .count_prefix(stored(scope, prefix))
            .map_err(|error| engine_error(error, prefix))?;
        Ok(count as u64)
    }

    async fn stats(&self) -> KvResult<StoreStats> {
        let stats = self.db.stats();
        Ok(StoreStats {
            backend: BACKEND,
            keys: stats.keys_indexed as u64,
            details: vec![
                ("commits".to_owned(), stats.commits),
                ("versions_retained".to_owned(), stats.versions_retained),
                ("expired_reclaimed".to_owned(), stats.expired_reclaimed),
                ("watchers".to_owned(), stats.watchers as u64),
                ("wal_frames".to_owned(), stats.wal_frames),
                ("wal_syncs".to_owned(), stats.wal_syncs),
                ("checkpoints".to_owned(), stats.checkpoints),
            ],
        })
    }
}

impl CairnStore {
    fn subscribe(&self, target: WatchTarget) -> KvWatcher {
        let ready = Arc::new(Notify::new());
        let wake = Arc::clone(&ready);
        let watcher = self
            .db
            .watch_prefix_with_wakeup(target.stored_prefix(), Arc::new(move || wake.notify_one()));
        KvWatcher::new(CairnWatch {
            watcher,
            ready,
            target,
        })
    }
}

struct CairnWatch {
    watcher: Watcher,
    ready: Arc<Notify>,
    target: WatchTarget,
}

impl EventSource for CairnWatch {
    fn recv(&mut self) -> RecvFuture<'_> {
        Box::pin(async move {
            loop {
                while let Some(event) = self.watcher.try_recv() {
                    let event = match event {
                        WatchEvent::Put { key, value, .. } => self.target.event(&key, Some(&value)),
                        WatchEvent::Delete { key, .. } => self.target.event(&key, None),
                        WatchEvent::Lagged(lost) => Some(KvEvent::Lagged(lost)),
                        _ => None,
                    };
                    if event.is_some() {
                        return event;
                    }
                }
                if self.watcher.is_closed() && self.watcher.pending() == 0 {
                    return None;
                }
                // `notify_one` keeps a permit when nobody waits, so an event queued between
                // the drain above and this await still wakes it.
                self.ready.notified().await;
            }
        })
    }
}

//! The [`Persister`] seam between a repository and its persistent store, and the small
//! persisters that need no store: [`NoopPersister`] (benchmarks of the memtable alone) and
//! [`MemoryPersister`] (tests: an ordered map that fails, or slows down, on demand).
//!
//! A persister sees bytes only (the layout is in `keys`): batches to apply, point reads and
//! ordered key listings. Its contract:
//! - [`Persister::apply`] applies the batch's deletes, then its puts; each key appears at most
//!   once. Applying the same batch twice leaves the same state (batches are retried after a
//!   failure). A persister that can commit the whole batch atomically does; one that cannot
//!   says so in its docs ([`KvPersister`](crate::KvPersister)).
//! - Reads see every batch whose `apply` returned `Ok`.
//! - [`Persister::sync`] returns once every applied batch survives a crash; the repository
//!   calls it before it removes write-ahead log segments that the batches cover.

pub mod db;
pub mod kv;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// One flush: final states of store keys, deletes first. Built by the repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    deletes: Vec<Vec<u8>>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Batch {
    /// A batch of `deletes` then `puts`, for tools and tests that write a store directly.
    /// Each key may appear at most once in the whole batch.
    pub fn new(deletes: Vec<Vec<u8>>, puts: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        debug_assert!({
            let mut keys: Vec<&Vec<u8>> =
                deletes.iter().chain(puts.iter().map(|(k, _)| k)).collect();
            keys.sort();
            keys.windows(2).all(|pair| pair.first() != pair.last())
        });
        Batch { deletes, puts }
    }

    /// Keys to delete, applied before every put.
    pub fn deletes(&self) -> &[Vec<u8>] {
        &self.deletes
    }

    /// Keys to set, with their values, applied after every delete.
    pub fn puts(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.puts
    }

    /// Deletes plus puts.
    pub fn len(&self) -> usize {
        self.deletes.len() + self.puts.len()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.puts.is_empty()
    }
}

/// A persistent store behind a repository. See the module docs for the contract.
pub trait Persister: Send + Sync + 'static {
    /// Applies `batch`: deletes first, then puts.
    fn apply(&self, batch: &Batch) -> Result<()>;

    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The values of `keys`, in the same order.
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// At most `limit` keys starting with `prefix`, in byte order, each after `start_after`
    /// when given.
    fn keys(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize)
        -> Result<Vec<Vec<u8>>>;

    /// Returns once every applied batch is durable.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// False for a persister that never holds data: reads then skip it entirely, and each
    /// flushed layer is handed to [`Persister::apply`] as an empty batch.
    fn holds_data(&self) -> bool {
        true
    }
}

/// A persister that stores nothing: the memtable measured alone. Every read finds nothing, and
/// since it holds no data ([`Persister::holds_data`]) each flushed layer reaches it as an empty
/// batch.
#[derive(Debug, Default)]
pub struct NoopPersister {
    batches: AtomicU64,
}

impl NoopPersister {
    /// A new one.
    pub fn new() -> Self {
        NoopPersister::default()
    }

    /// Batches "applied" so far: one per flushed layer.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
}

impl Persister for NoopPersister {
    fn apply(&self, _batch: &Batch) -> Result<()> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    fn keys(&self, _: &[u8], _: Option<&[u8]>, _: usize) -> Result<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }

    fn holds_data(&self) -> bool {
        false
    }
}

/// The failure a [`MemoryPersister`] was told to produce.
#[derive(Debug, thiserror::Error)]
#[error("injected persister failure")]
pub struct InjectedFailure;

#[derive(Debug, Default)]
struct Faults {
    /// Fail this many more `apply` calls.
    fail_next: u64,
    /// Fail every `apply` while set.
    failing: bool,
    /// Sleep this long in every `apply`.
    delay: Duration,
}

/// An in-memory ordered store for tests: applies batches atomically, and fails or slows down
/// on demand. Reads never fail.
#[derive(Debug, Default)]
pub struct MemoryPersister {
    data: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    faults: Mutex<Faults>,
    applied: AtomicU64,
    failed: AtomicU64,
}

impl MemoryPersister {
    /// An empty one.
    pub fn new() -> Self {
        MemoryPersister::default()
    }

    /// Makes the next `count` calls of `apply` fail (after any delay), writing nothing.
    pub fn fail_next(&self, count: u64) {
        self.faults.lock().fail_next = count;
    }

    /// Makes every `apply` fail while `failing` is true.
    pub fn set_failing(&self, failing: bool) {
        self.faults.lock().failing = failing;
    }

    /// Makes every `apply` sleep `delay` first.
    pub fn set_delay(&self, delay: Duration) {
        self.faults.lock().delay = delay;
    }

    /// Batches applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// `apply` calls that failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// A copy of everything stored.
    pub fn contents(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.data.lock().clone()
    }
}

impl Persister for MemoryPersister {
    fn apply(&self, batch: &Batch) -> Result<()> {
        let delay = self.faults.lock().delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        {
            let mut faults = self.faults.lock();
            if faults.failing || faults.fail_next > 0 {
                faults.fail_next = faults.fail_next.saturating_sub(1);
                self.failed.fetch_add(1, Ordering::Relaxed);
                return Err(Error::persist(InjectedFailure));
            }
        }
        let mut data = self.data.lock();
        for key in batch.deletes() {
            data.remove(key);
        }
        for (key, value) in batch.puts() {
            data.insert(key.clone(), value.clone());
        }
        self.applied.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.data.lock().get(key).cloned())
    }

    fn keys(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let data = self.data.lock();
        let start = match start_after {
            Some(after) if after >= prefix => std::ops::Bound::Excluded(after.to_vec()),
            _ => std::ops::Bound::Included(prefix.to_vec()),
        };
        Ok(data
            .range((start, std::ops::Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .take(limit)
            .cloned()
            .collect())
    }
}

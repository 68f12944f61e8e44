//! [`KvPersister`]: a persister over any [`cairn_kv::KeyValueStore`] (Cairn, `SQLite`, Redis,
//! a Redis Cluster), in one [`Scope`].
//!
//! The sync/async edge: the repository is synchronous and the store is async, so the
//! persister owns a small tokio runtime (one worker thread) and blocks the calling thread on
//! each store call. A call made from inside another tokio runtime runs on a short-lived
//! scoped thread instead, because blocking on a runtime from inside one is refused by tokio;
//! such callers should still prefer `spawn_blocking` around repository calls that may miss.
//!
//! Atomicity: the trait's `multi_put` is atomic and has no delete counterpart, so a batch is
//! applied as its deletes one by one, then its puts in atomic `multi_put` chunks of at most
//! [`MULTI_ENTRIES_MAX`]. A crash or error between them leaves a prefix of the batch applied;
//! the repository retries the whole batch (applying it twice is harmless) and its index
//! queries check every entry they read against the record, so a half-applied batch is never
//! visible through the repository. With the write-ahead log on, a crash replays the batch.

use std::future::Future;
use std::sync::Arc;

use cairn_kv::limits::{LIST_PAGE_KEYS_MAX, MULTI_ENTRIES_MAX};
use cairn_kv::{KeyValueStore, Scope};

use crate::error::{Error, Result};
use crate::persist::{Batch, Persister};

/// A persister writing into a [`KeyValueStore`] under one [`Scope`].
pub struct KvPersister<S: KeyValueStore + 'static> {
    store: Arc<S>,
    scope: Scope,
    /// Always `Some` until drop, which shuts it down in the background (dropping a runtime
    /// inside another runtime's context is refused by tokio).
    runtime: Option<tokio::runtime::Runtime>,
}

impl<S: KeyValueStore + 'static> Drop for KvPersister<S> {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl<S: KeyValueStore + 'static> std::fmt::Debug for KvPersister<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("KvPersister")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The thread a persister call that came from inside a runtime panicked.
#[derive(Debug, thiserror::Error)]
#[error("the store call's helper thread panicked")]
struct HelperPanicked;

impl<S: KeyValueStore + 'static> KvPersister<S> {
    /// A persister over `store`, keeping every key in `scope`.
    pub fn new(store: Arc<S>, scope: Scope) -> Result<Self> {
        let runtime = new_runtime()?;
        Ok(KvPersister {
            store,
            scope,
            runtime: Some(runtime),
        })
    }

    /// A persister over the store `open` makes, opened on the persister's own runtime: use
    /// this for a store whose connection runs background tasks on the runtime that opened it
    /// (Redis), so they live as long as the persister.
    pub fn open<F>(scope: Scope, open: impl FnOnce() -> F) -> Result<Self>
    where
        F: Future<Output = cairn_kv::KvResult<S>>,
    {
        let runtime = new_runtime()?;
        let store = runtime.block_on(open()).map_err(Error::persist)?;
        Ok(KvPersister {
            store: Arc::new(store),
            scope,
            runtime: Some(runtime),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Runs `future` to completion on the persister's runtime.
    fn run<T: Send>(&self, future: impl Future<Output = Result<T>> + Send) -> Result<T> {
        let Some(runtime) = &self.runtime else {
            return Err(Error::Closed);
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|_| Err(Error::persist(HelperPanicked)))
        })
    }
}

/// The persister's runtime: one worker thread, I/O and timers on.
fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cairn-memtable-kv")
        .enable_all()
        .build()
        .map_err(Error::Thread)
}

impl<S: KeyValueStore + 'static> Persister for KvPersister<S> {
    fn apply(&self, batch: &Batch) -> Result<()> {
        let (store, scope) = (&*self.store, &self.scope);
        self.run(async move {
            for key in batch.deletes() {
                store.delete(scope, key).await.map_err(Error::persist)?;
            }
            for chunk in batch.puts().chunks(MULTI_ENTRIES_MAX) {
                let entries: Vec<(&[u8], &[u8])> = chunk
                    .iter()
                    .map(|(key, value)| (key.as_slice(), value.as_slice()))
                    .collect();
                store
                    .multi_put(scope, &entries)
                    .await
                    .map_err(Error::persist)?;
            }
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (store, scope) = (&*self.store, &self.scope);
        self.run(async move { store.get(scope, key).await.map_err(Error::persist) })
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let (store, scope) = (&*self.store, &self.scope);
        self.run(async move {
            let mut values = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(MULTI_ENTRIES_MAX) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                values.extend(
                    store
                        .multi_get(scope, &refs)
                        .await
                        .map_err(Error::persist)?,
                );
            }
            Ok(values)
        })
    }

    fn keys(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let (store, scope) = (&*self.store, &self.scope);
        let limit = limit.clamp(1, LIST_PAGE_KEYS_MAX);
        let start_after = start_after.filter(|after| *after >= prefix);
        self.run(async move {
            let page = store
                .list_page(scope, prefix, start_after, limit)
                .await
                .map_err(Error::persist)?;
            Ok(page.keys)
        })
    }
}

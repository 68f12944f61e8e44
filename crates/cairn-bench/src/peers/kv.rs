//! The `KeyValueStore` backends as peers, so that what the trait costs over the client it wraps
//! is the ratio between two rows. Each session owns a current-thread tokio runtime and opens
//! its own handle in it (a Redis connection's I/O task must live on the runtime that awaits
//! it). A call is first polled once: one that completes without suspending (every in-memory or
//! buffered Cairn call) costs no runtime entry, as in an async program already on a runtime;
//! one that suspends is finished with `block_on`. The trait has no entry scan or transactions.

use super::{data_dir, directory_bytes, touched, Engine, Feature, Label, Peer, Session, Store};
use crate::workloads::durability::DataDir;
use crate::workloads::{Result, WorkloadError};
use cairn::Db;
use cairn_kv::{CairnStore, KeyValueStore, KvResult, RedisStore, Scope, SqliteStore};
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::runtime::Runtime;

/// Where a kv peer's data lives: an engine, a SQLite file, or a Redis server.
enum Place {
    Cairn(Db),
    Sqlite(PathBuf),
    Redis(String),
}

/// A `KeyValueStore` backend, measured through the trait.
pub(super) struct KvPeer {
    label: Label,
    scope: Scope,
    /// Declared before `dir`: the store closes before its directory is removed.
    place: Place,
    dir: Option<DataDir>,
}

impl KvPeer {
    pub(super) fn open(label: Label, redis_url: Option<&str>) -> Result<Self> {
        static REDIS_PEERS: AtomicU64 = AtomicU64::new(0);
        let dir = data_dir(label)?;
        let (place, namespace) = match (label.engine, dir.as_ref().map(DataDir::path)) {
            (Engine::KvCairn, None) => (Place::Cairn(Db::in_memory()), None),
            (Engine::KvCairn, path) => (Place::Cairn(Store::open(label.mode, path)?), None),
            (Engine::KvSqlite, Some(path)) => (Place::Sqlite(path.join("store.sqlite3")), None),
            // A fresh namespace per Redis peer: peers sharing a server never share keys.
            (Engine::KvRedis, _) => {
                let url = redis_url.ok_or_else(|| WorkloadError::unexpected("kv", "no Redis"))?;
                let opened = REDIS_PEERS.fetch_add(1, Ordering::Relaxed);
                let namespace = format!("sessions-{}-{opened}", std::process::id());
                (Place::Redis(url.to_owned()), Some(namespace))
            }
            _ => return Err(WorkloadError::unexpected("kv", "not a KeyValueStore label")),
        };
        let scope = Scope::new("acme", namespace.as_deref().unwrap_or("sessions"))?;
        let peer = KvPeer {
            label,
            scope,
            place,
            dir,
        };
        // Create the SQLite schema (or load the Redis scripts) once, before sessions race.
        drop(peer.session()?);
        Ok(peer)
    }

    fn open_session<S, F>(&self, open: impl FnOnce() -> F) -> Result<KvSession<S>>
    where
        F: Future<Output = KvResult<S>>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let runtime = runtime.map_err(|error| WorkloadError::io("kv", "a runtime", &error))?;
        let store = runtime.block_on(open())?;
        Ok(KvSession {
            store,
            scope: self.scope.clone(),
            runtime,
        })
    }
}

impl Drop for KvPeer {
    fn drop(&mut self) {
        match &self.place {
            Place::Cairn(db) => drop(db.close()),
            // Best effort: leave the shared server as it was found.
            Place::Redis(url) => {
                let session = self.open_session(|| RedisStore::connect(url));
                drop(session.and_then(|it| it.drive(it.store.clear_prefix(&it.scope, b""))));
            }
            Place::Sqlite(_) => {}
        }
    }
}

impl Peer for KvPeer {
    fn label(&self) -> Label {
        self.label
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(match &self.place {
            Place::Cairn(db) => {
                Box::new(self.open_session(|| async { Ok(CairnStore::new(db.clone())) })?)
            }
            Place::Sqlite(path) => Box::new(self.open_session(|| {
                SqliteStore::open(Some(path.clone()), cairn_kv::SqliteSynchronous::Normal)
            })?),
            Place::Redis(url) => Box::new(self.open_session(|| RedisStore::connect(url))?),
        })
    }

    fn supports(&self, feature: Feature) -> bool {
        // The trait's `list` returns keys, not entries: no scan workload fits it.
        feature == Feature::Ttl
    }

    fn disk_bytes(&self) -> Option<u64> {
        self.dir.as_ref().map(|dir| directory_bytes(dir.path()))
    }

    fn settle(&self) -> Result<()> {
        if let (Place::Cairn(db), Some(_)) = (&self.place, &self.dir) {
            db.sync()?;
        }
        Ok(())
    }
}

struct KvSession<S> {
    store: S,
    scope: Scope,
    runtime: Runtime,
}

impl<S> KvSession<S> {
    /// Runs one trait call: polled once, finished with `block_on` only if it suspends.
    fn drive<T>(&self, call: impl Future<Output = KvResult<T>>) -> Result<T> {
        let _entered = self.runtime.enter();
        let mut call = pin!(call);
        match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => Ok(result?),
            Poll::Pending => Ok(self.runtime.block_on(call)?),
        }
    }
}

impl<S: KeyValueStore + 'static> Session for KvSession<S> {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        let value = self.drive(self.store.get(&self.scope, key))?;
        Ok(value.map(|value| touched(&value)))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.drive(self.store.put(&self.scope, key, value))
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        self.drive(self.store.delete(&self.scope, key))
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        self.drive(self.store.exists(&self.scope, key))
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        self.drive(self.store.multi_put(&self.scope, entries))
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        self.drive(self.store.cas(&self.scope, key, Some(expected), new))
    }

    fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        self.drive(self.store.put_with_ttl(&self.scope, key, value, ttl))
    }
}

//! The `KeyValueStore` backends as peers: `kv:cairn-<mode>`, `kv:sqlite-buffered` and
//! `kv:redis` run every workload through the async trait, so "what the trait costs over the
//! client it wraps" is the ratio between two rows of the same workload (`kv:sqlite-buffered`
//! against `sqlite-buffered`), not a harness of its own.
//! Each session owns a current-thread tokio runtime and opens its own handle inside it (a
//! Redis connection's I/O task must live on the runtime that awaits it; Cairn sessions share
//! the peer's one `Db`). A call is first polled once inside the runtime's context: a Cairn
//! call that completes without suspending (every in-memory and buffered operation) then costs
//! no runtime entry at all, as it would not in an async program already running on a
//! runtime. A call that suspends (I/O, a Strict commit on the blocking pool) is finished with
//! `block_on`. Keys live in one scope, `{acme:sessions}`, as a real tenant's would. The trait
//! has no entry scan and no transactions, so those workloads skip these peers.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cairn::Db;
use cairn_kv::{CairnStore, KeyValueStore, RedisStore, Scope, SqliteStore};
use tokio::runtime::Runtime;

use super::{data_dir, directory_bytes, touched, Engine, Feature, Label, Peer, Session, Store};
use crate::workloads::durability::DataDir;
use crate::workloads::{Result, WorkloadError};

/// Where a kv peer's data lives.
enum Place {
    /// An engine shared by every session.
    Cairn(Db),
    /// A SQLite file; every session opens its own store on it.
    Sqlite(PathBuf),
    /// A Redis server; every session connects.
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
    /// Opens `label`'s backend (an engine of `Engine::KvCairn`, `KvSqlite` or `KvRedis`).
    pub(super) fn open(label: Label, redis_url: Option<&str>) -> Result<Self> {
        static REDIS_PEERS: AtomicU64 = AtomicU64::new(0);
        let dir = data_dir(label)?;
        let place = match (label.engine, dir.as_ref().map(DataDir::path)) {
            (Engine::KvCairn, None) => Place::Cairn(Db::in_memory()),
            (Engine::KvCairn, path) => Place::Cairn(Store::open(label.mode, path)?),
            (Engine::KvSqlite, Some(path)) => Place::Sqlite(path.join("store.sqlite3")),
            (Engine::KvRedis, _) => match redis_url {
                Some(url) => Place::Redis(url.to_owned()),
                None => return Err(WorkloadError::unexpected("kv:redis", "no Redis server")),
            },
            _ => return Err(WorkloadError::unexpected("kv", "not a KeyValueStore label")),
        };
        // A fresh namespace per Redis peer: peers sharing a server never share keys.
        let namespace = match place {
            Place::Redis(_) => {
                let opened = REDIS_PEERS.fetch_add(1, Ordering::Relaxed);
                format!("sessions-{}-{opened}", std::process::id())
            }
            _ => "sessions".to_owned(),
        };
        let scope = Scope::new("acme", &namespace)?;
        let peer = KvPeer {
            label,
            scope,
            place,
            dir,
        };
        // Create the SQLite schema (or load the Redis scripts) once, before sessions race.
        drop(peer.kv_session()?);
        Ok(peer)
    }

    fn kv_session(&self) -> Result<KvSession> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let runtime =
            runtime.map_err(|error| WorkloadError::io("kv", "building a runtime", error))?;
        let store = match &self.place {
            Place::Cairn(db) => Handle::Cairn(CairnStore::new(db.clone())),
            Place::Sqlite(path) => {
                let open =
                    SqliteStore::open(Some(path.clone()), cairn_kv::SqliteSynchronous::Normal);
                Handle::Sqlite(runtime.block_on(open)?)
            }
            Place::Redis(url) => Handle::Redis(runtime.block_on(RedisStore::connect(url))?),
        };
        Ok(KvSession {
            store,
            scope: self.scope.clone(),
            runtime,
        })
    }
}

/// Runs one trait call: polled once in the runtime's context, finished with `block_on` only
/// if it suspends (see the module docs).
fn drive<T>(runtime: &Runtime, call: impl Future<Output = cairn_kv::KvResult<T>>) -> Result<T> {
    let _entered = runtime.enter();
    let mut future = pin!(call);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => Ok(result?),
        Poll::Pending => Ok(runtime.block_on(future)?),
    }
}

/// Makes the same trait call on whichever backend the session holds, with no boxing.
macro_rules! on_store {
    ($session:expr, $store:ident, $scope:ident => $body:expr) => {{
        let $scope = &$session.scope;
        match &$session.store {
            Handle::Cairn($store) => drive(&$session.runtime, $body),
            Handle::Sqlite($store) => drive(&$session.runtime, $body),
            Handle::Redis($store) => drive(&$session.runtime, $body),
        }
    }};
}

impl Drop for KvPeer {
    fn drop(&mut self) {
        match &self.place {
            Place::Cairn(db) => drop(db.close()),
            // Best effort: leave the shared server as it was found.
            Place::Redis(_) => {
                drop(self.kv_session().map(
                    |session| on_store!(session, store, scope => store.clear_prefix(scope, b"")),
                ))
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
        Ok(Box::new(self.kv_session()?))
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

/// One backend's handle (the trait is not object-safe: its methods return `impl Future`).
enum Handle {
    Cairn(CairnStore),
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

struct KvSession {
    store: Handle,
    scope: Scope,
    runtime: Runtime,
}

impl Session for KvSession {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        let value = on_store!(self, store, scope => store.get(scope, key))?;
        Ok(value.map(|value| touched(&value)))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        on_store!(self, store, scope => store.put(scope, key, value))
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        on_store!(self, store, scope => store.delete(scope, key))
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        on_store!(self, store, scope => store.exists(scope, key))
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        on_store!(self, store, scope => store.multi_put(scope, entries))
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        on_store!(self, store, scope => store.cas(scope, key, Some(expected), new))
    }

    fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        on_store!(self, store, scope => store.put_with_ttl(scope, key, value, ttl))
    }
}

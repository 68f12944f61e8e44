//! Workloads on the `KeyValueStore` trait: every backend side by side, each next to the client
//! it wraps used directly, so the trait's cost shows as a ratio measured in the same process.
//!
//! A [`Subject`] is what a workload drives: a [`Backend`] (Cairn in each durability mode,
//! `SQLite`, Redis) through the trait ([`Client::Store`]), or the same backend's own client used
//! the way a straightforward program would ([`Client::Raw`]: the engine's `Db`, rusqlite,
//! redis-rs; see `raw`). Workloads are written once against an internal `Target`, which
//! dispatches to either with one `match`, so a subject and its raw peer run the same workload
//! code and pay the same dispatch.
//!
//! A [`KvFixture`] is a filled store of one subject: `key_at(0) .. key_at(n - 1)` inside one
//! [`Scope`] (`{acme:sessions}`, see `fresh_scope`), each holding a value of the fixture's
//! length. The raw peers store the same bytes (scope prefix, then key), so a subject and its
//! peer hold identical data. (The engine keeps keys of up to 24 bytes inline; these 31-byte
//! stored keys are not, a cost the engine-core rows, with bare 16-byte keys, do not pay.)
//! Files live in a fresh [`DataDir`], removed with the fixture; a Redis fixture deletes its
//! keys from the server when the last clone is dropped. Cloning shares the data: read-only workloads may share a
//! fixture; one that deletes needs its own.
//!
//! Async driving: each workload owns its tokio runtime and opens its own handle on the
//! fixture's data inside it (a Redis connection's I/O task must live on the runtime that
//! awaits it). A timed group runs inside ONE `block_on`: a Cairn call completes without
//! suspending, so a `block_on` per call would measure the runtime's entry and exit, not the
//! store. Single-task workloads use a current-thread runtime; concurrent ones a multi-thread
//! runtime with two workers (this machine's core count).
//!
//! Durable Cairn fixtures run with the engine's maintenance thread off (as the `durability`
//! workloads do), so no checkpoint lands inside a measurement; `SQLite` runs in WAL mode with
//! `synchronous=NORMAL` (the backend's default), the store and its raw peer alike.

pub mod batch;
pub mod concurrent;
pub mod point;
pub mod raw;
pub mod scan;

use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability};
use cairn_kv::{CairnStore, KeyValueStore, Scope};
use tokio::runtime::Runtime;

use super::durability::{bench_options, DataDir};
pub(crate) use super::require_keys;
use super::{KeyCount, Result, WorkloadError};
use crate::keys::{value_of_length, KeySet};

/// Entries per `multi_put` while filling a fixture (untimed), and per refill of a delete
/// workload's keys.
pub const FILL_CHUNK_ENTRIES: usize = 1_000;

/// Tenant of every fixture's scope.
pub const BENCH_TENANT: &str = "acme";

/// Namespace of every fixture's scope (made unique per fixture on a shared Redis server).
pub const BENCH_NAMESPACE: &str = "sessions";

/// A backend of the `KeyValueStore` trait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `CairnStore` on an `InMemory` engine.
    CairnInMemory,
    /// `CairnStore` on a `Buffered` engine in a temp directory.
    CairnBuffered,
    /// `CairnStore` on a `Strict` engine in a temp directory.
    CairnStrict,
    /// `SqliteStore` on a file in a temp directory, `synchronous=NORMAL`.
    Sqlite,
    /// `RedisStore` on the server at `url`.
    Redis {
        /// The server, as a `redis://` URL.
        url: String,
    },
}

impl Backend {
    /// The name benchmarks use: `cairn-inmemory`, `cairn-buffered`, `cairn-strict`, `sqlite`,
    /// `redis`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::CairnInMemory => "cairn-inmemory",
            Backend::CairnBuffered => "cairn-buffered",
            Backend::CairnStrict => "cairn-strict",
            Backend::Sqlite => "sqlite",
            Backend::Redis { .. } => "redis",
        }
    }

    /// The backends that need no server: Cairn in each mode, and `SQLite`.
    pub fn local() -> Vec<Backend> {
        vec![
            Backend::CairnInMemory,
            Backend::CairnBuffered,
            Backend::CairnStrict,
            Backend::Sqlite,
        ]
    }

    /// True when an operation stays in this process's memory (no syscall, no fsync), so it
    /// takes well under a microsecond and latency samples should group several operations.
    pub fn is_in_memory(&self) -> bool {
        matches!(self, Backend::CairnInMemory | Backend::CairnBuffered)
    }
}

/// How a workload reaches a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Through the `KeyValueStore` trait.
    Store,
    /// Through the backend's own client, directly (see `raw`).
    Raw,
}

/// A backend and the client a workload drives it through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The backend.
    pub backend: Backend,
    /// Through the trait, or directly.
    pub client: Client,
}

impl Subject {
    /// `backend` through the trait.
    pub fn store(backend: Backend) -> Self {
        Subject {
            backend,
            client: Client::Store,
        }
    }

    /// `backend`'s own client, used directly.
    pub fn raw(backend: Backend) -> Self {
        Subject {
            backend,
            client: Client::Raw,
        }
    }

    /// The name in benchmark ids: the backend's name, with `-raw` for the direct client.
    pub fn name(&self) -> String {
        match self.client {
            Client::Store => self.backend.name().to_owned(),
            Client::Raw => format!("{}-raw", self.backend.name()),
        }
    }

    /// Each backend through the trait, then its raw peer.
    pub fn pairs(backends: &[Backend]) -> Vec<Subject> {
        backends
            .iter()
            .flat_map(|backend| {
                [
                    Subject::store(backend.clone()),
                    Subject::raw(backend.clone()),
                ]
            })
            .collect()
    }
}

/// A filled store of one subject. Cloning shares the data (see the module docs).
#[derive(Clone, Debug)]
pub struct KvFixture {
    subject: Subject,
    place: Arc<Place>,
    scope: Scope,
    keys: Arc<KeySet>,
    value_bytes: usize,
}

/// Where a fixture's data lives.
#[derive(Debug)]
enum Place {
    /// An engine; shared by every workload on the fixture. Declared before its directory, so
    /// the database is dropped (closed) before the directory is removed.
    Cairn { db: Db, _dir: Option<DataDir> },
    /// A `SQLite` file; every workload opens its own connection to it.
    Sqlite { path: PathBuf, _dir: DataDir },
    /// A Redis server; every workload opens its own connection. The guard deletes the
    /// fixture's keys when the last clone is dropped.
    Redis {
        url: String,
        _keys: raw::RedisScopeGuard,
    },
}

impl KvFixture {
    /// A fresh store of `subject` holding `key_count` keys with `value_bytes` values each.
    pub fn build(subject: &Subject, key_count: usize, value_bytes: usize) -> Result<KvFixture> {
        let scope = fresh_scope(subject)?;
        let place = match &subject.backend {
            Backend::CairnInMemory => Place::Cairn {
                db: Db::in_memory(),
                _dir: None,
            },
            Backend::CairnBuffered => durable_place("kv-buffered", Durability::buffered())?,
            Backend::CairnStrict => durable_place("kv-strict", Durability::Strict)?,
            Backend::Sqlite => {
                let dir = DataDir::create("kv-sqlite")?;
                let file = match subject.client {
                    Client::Store => "store.sqlite3",
                    Client::Raw => "raw.sqlite3",
                };
                Place::Sqlite {
                    path: dir.path().join(file),
                    _dir: dir,
                }
            }
            Backend::Redis { url } => Place::Redis {
                url: url.clone(),
                _keys: raw::RedisScopeGuard::new(url, scope.key_prefix()),
            },
        };
        let fixture = KvFixture {
            subject: subject.clone(),
            place: Arc::new(place),
            scope,
            keys: Arc::new(KeySet::sequential(key_count)),
            value_bytes,
        };
        fixture.fill()?;
        Ok(fixture)
    }

    /// The subject whose store this is.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }
    /// How many keys the fixture was filled with.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The length of every value it was filled with.
    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    /// Writes every key, [`FILL_CHUNK_ENTRIES`] per `multi_put`, from a session of its own.
    fn fill(&self) -> Result<()> {
        let session = Session::open(self, Flavor::CurrentThread)?;
        let value = value_of_length(self.value_bytes);
        let key_count = self.key_count();
        session.block_on(async {
            let mut start = 0;
            while start < key_count {
                let end = (start + FILL_CHUNK_ENTRIES).min(key_count);
                session.target().multi_put(start..end, &value).await?;
                start = end;
            }
            Ok(())
        })
    }
}

impl KeyCount for KvFixture {
    fn key_count(&self) -> usize {
        KvFixture::key_count(self)
    }
}

/// Checks that a Redis server answers at `url` within `timeout`: connects a `RedisStore` (which
/// loads its scripts) and redis-rs, each on a runtime of this call's own.
pub fn probe_redis(url: &str, timeout: Duration) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| WorkloadError::io("kv", "building a tokio runtime", error))?;
    runtime.block_on(async {
        let probe = async {
            cairn_kv::RedisStore::connect(url).await?;
            raw::probe(url).await
        };
        tokio::time::timeout(timeout, probe).await.map_err(|_| {
            WorkloadError::unexpected("redis", format!("no answer within {timeout:?}"))
        })?
    })
}

/// The fixture's scope: `{acme:sessions}`, a realistic tenant and namespace (15 bytes in front
/// of every 16-byte key, so stored keys are 31 bytes). A Redis fixture adds the process id
/// and a counter to the namespace, so fixtures sharing a server (in this run or another)
/// never share keys; the other backends give each fixture a store of its own.
fn fresh_scope(subject: &Subject) -> Result<Scope> {
    static REDIS_FIXTURES_BUILT: AtomicU64 = AtomicU64::new(0);
    let namespace = match subject.backend {
        Backend::Redis { .. } => format!(
            "{BENCH_NAMESPACE}-{}-{}",
            std::process::id(),
            REDIS_FIXTURES_BUILT.fetch_add(1, Ordering::Relaxed)
        ),
        _ => BENCH_NAMESPACE.to_owned(),
    };
    Ok(Scope::new(BENCH_TENANT, &namespace)?)
}

fn durable_place(label: &str, durability: Durability) -> Result<Place> {
    let dir = DataDir::create(label)?;
    let db = Db::open(bench_options(durability, Some(dir.path())))?;
    Ok(Place::Cairn {
        db,
        _dir: Some(dir),
    })
}

/// The runtime a workload drives its target on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// One thread: the caller's, inside `block_on`.
    CurrentThread,
    /// Two worker threads, for workloads of several tasks.
    MultiThread,
}

/// Worker threads of a `Flavor::MultiThread` runtime: this machine's two cores.
pub const MULTI_THREAD_WORKERS: usize = 2;

/// A runtime and a target opened inside it, keeping the fixture's data alive for as long as
/// the workload runs (a workload may outlive the fixture it was built from). Fields drop in
/// order: the target while its runtime still exists, then the data (closing a database,
/// removing a directory, deleting Redis keys), then the runtime.
pub(crate) struct Session {
    target: Arc<Target>,
    _place: Arc<Place>,
    runtime: Runtime,
}

impl Session {
    /// Builds a runtime of `flavor` and opens a target on `fixture`'s data inside it.
    pub(crate) fn open(fixture: &KvFixture, flavor: Flavor) -> Result<Session> {
        let mut builder = match flavor {
            Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(MULTI_THREAD_WORKERS);
                builder
            }
        };
        let runtime = builder
            .enable_all()
            .build()
            .map_err(|error| WorkloadError::io("kv", "building a tokio runtime", error))?;
        let target = runtime.block_on(Target::open(fixture))?;
        Ok(Session {
            target: Arc::new(target),
            _place: Arc::clone(&fixture.place),
            runtime,
        })
    }

    /// Runs `work` to completion on the session's runtime.
    pub(crate) fn block_on<T>(&self, work: impl Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }

    /// The target, for calls inside [`Session::block_on`].
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// The target, for tasks spawned on the runtime.
    pub(crate) fn shared_target(&self) -> Arc<Target> {
        Arc::clone(&self.target)
    }
}

/// What a workload drives: one subject's client, on the fixture's keys. Operations take key
/// indices, so that the trait's store gets the caller's key (and adds its scope itself) while
/// a raw client gets the stored key, formatted ahead of time as a program using it directly
/// would have it.
pub(crate) enum Target {
    Cairn(StoreTarget<CairnStore>),
    Sqlite(StoreTarget<cairn_kv::SqliteStore>),
    Redis(StoreTarget<cairn_kv::RedisStore>),
    RawCairn(raw::RawCairn),
    RawSqlite(raw::RawSqlite),
    RawRedis(raw::RawRedis),
}

/// Runs `$call` on whichever client `$target` holds: awaited for an async client, called
/// directly for the engine and rusqlite, which block.
macro_rules! dispatch {
    ($target:expr, $client:ident => $call:expr) => {
        match $target {
            Target::Cairn($client) => $call.await,
            Target::Sqlite($client) => $call.await,
            Target::Redis($client) => $call.await,
            Target::RawCairn($client) => $call,
            Target::RawSqlite($client) => $call,
            Target::RawRedis($client) => $call.await,
        }
    };
}

impl Target {
    /// Opens the subject's client on `fixture`'s data (inside the caller's runtime).
    async fn open(fixture: &KvFixture) -> Result<Target> {
        let scope = fixture.scope.clone();
        let keys = Arc::clone(&fixture.keys);
        let client = fixture.subject.client;
        Ok(match (&*fixture.place, client) {
            (Place::Cairn { db, .. }, Client::Store) => Target::Cairn(StoreTarget {
                store: CairnStore::new(db.clone()),
                scope,
                keys,
            }),
            (Place::Cairn { db, .. }, Client::Raw) => {
                Target::RawCairn(raw::RawCairn::new(db.clone(), &scope, &keys))
            }
            (Place::Sqlite { path, .. }, Client::Store) => Target::Sqlite(StoreTarget {
                store: cairn_kv::SqliteStore::open(
                    Some(path.clone()),
                    cairn_kv::SqliteSynchronous::Normal,
                )
                .await?,
                scope,
                keys,
            }),
            (Place::Sqlite { path, .. }, Client::Raw) => {
                Target::RawSqlite(raw::RawSqlite::open(path, &scope, &keys)?)
            }
            (Place::Redis { url, .. }, Client::Store) => Target::Redis(StoreTarget {
                store: cairn_kv::RedisStore::connect(url).await?,
                scope,
                keys,
            }),
            (Place::Redis { url, .. }, Client::Raw) => {
                Target::RawRedis(raw::RawRedis::connect(url, &scope, &keys).await?)
            }
        })
    }

    /// Reads key `index`; the length of the value found.
    pub(crate) async fn get(&self, index: usize) -> Result<Option<usize>> {
        dispatch!(self, client => client.get(index))
    }

    /// Sets key `index` to `value`.
    pub(crate) async fn put(&self, index: usize, value: &[u8]) -> Result<()> {
        dispatch!(self, client => client.put(index, value))
    }

    /// Sets key `index` to `value`, expiring after `ttl`.
    pub(crate) async fn put_with_ttl(
        &self,
        index: usize,
        value: &[u8],
        ttl: Duration,
    ) -> Result<()> {
        dispatch!(self, client => client.put_with_ttl(index, value, ttl))
    }

    /// Deletes key `index`; true when it held a value.
    pub(crate) async fn delete(&self, index: usize) -> Result<bool> {
        dispatch!(self, client => client.delete(index))
    }

    /// True when key `index` holds a value.
    pub(crate) async fn exists(&self, index: usize) -> Result<bool> {
        dispatch!(self, client => client.exists(index))
    }

    /// Reads the keys `indices` in one call; how many held a value.
    pub(crate) async fn multi_get(&self, indices: Range<usize>) -> Result<usize> {
        dispatch!(self, client => client.multi_get(indices))
    }

    /// Sets the keys `indices` to `value` in one atomic call.
    pub(crate) async fn multi_put(&self, indices: Range<usize>, value: &[u8]) -> Result<()> {
        dispatch!(self, client => client.multi_put(indices, value))
    }

    /// Lists the keys starting with `prefix` (a prefix of the caller's keys), in order; how
    /// many there were.
    pub(crate) async fn list(&self, prefix: &[u8]) -> Result<usize> {
        dispatch!(self, client => client.list(prefix))
    }
}

/// A backend through the `KeyValueStore` trait, on the caller's keys in one scope.
pub(crate) struct StoreTarget<S> {
    store: S,
    scope: Scope,
    keys: Arc<KeySet>,
}

impl<S: KeyValueStore> StoreTarget<S> {
    async fn get(&self, index: usize) -> Result<Option<usize>> {
        let value = self.store.get(&self.scope, self.keys.get(index)).await?;
        Ok(value.map(found_length))
    }

    async fn put(&self, index: usize, value: &[u8]) -> Result<()> {
        Ok(self
            .store
            .put(&self.scope, self.keys.get(index), value)
            .await?)
    }

    async fn put_with_ttl(&self, index: usize, value: &[u8], ttl: Duration) -> Result<()> {
        let key = self.keys.get(index);
        Ok(self
            .store
            .put_with_ttl(&self.scope, key, value, ttl)
            .await?)
    }

    async fn delete(&self, index: usize) -> Result<bool> {
        Ok(self.store.delete(&self.scope, self.keys.get(index)).await?)
    }

    async fn exists(&self, index: usize) -> Result<bool> {
        Ok(self.store.exists(&self.scope, self.keys.get(index)).await?)
    }

    async fn multi_get(&self, indices: Range<usize>) -> Result<usize> {
        let keys: Vec<&[u8]> = indices.map(|index| self.keys.get(index)).collect();
        let values = self.store.multi_get(&self.scope, &keys).await?;
        Ok(values.into_iter().flatten().map(found_length).count())
    }

    async fn multi_put(&self, indices: Range<usize>, value: &[u8]) -> Result<()> {
        let entries: Vec<(&[u8], &[u8])> =
            indices.map(|index| (self.keys.get(index), value)).collect();
        Ok(self.store.multi_put(&self.scope, &entries).await?)
    }

    async fn list(&self, prefix: &[u8]) -> Result<usize> {
        let keys = self.store.list(&self.scope, prefix).await?;
        Ok(counted(keys))
    }
}

/// The length of a value a read returned, keeping the value from the optimiser.
pub(crate) fn found_length<V: AsRef<[u8]>>(value: V) -> usize {
    let length = value.as_ref().len();
    std::hint::black_box(value);
    length
}

/// How many keys a list returned, keeping the list from the optimiser.
pub(crate) fn counted(keys: Vec<Vec<u8>>) -> usize {
    let count = keys.len();
    std::hint::black_box(keys);
    count
}

/// Ok when a read of key `index` found a value of `value_bytes`.
pub(crate) fn expect_value(
    workload: &'static str,
    index: usize,
    found: Option<usize>,
    value_bytes: usize,
) -> Result<()> {
    match found {
        Some(length) if length == value_bytes => Ok(()),
        Some(length) => Err(WorkloadError::unexpected(
            workload,
            format!("key {index} holds {length} bytes, expected {value_bytes}"),
        )),
        None => Err(WorkloadError::unexpected(
            workload,
            format!("key {index} is missing"),
        )),
    }
}

#[cfg(test)]
mod tests;

//! The stores measured side by side, behind two small traits so that one workload runs
//! unchanged against all of them: a [`Peer`] is an open store, a [`Session`] one thread's
//! handle on it. Every call is the cheapest *complete* way to do that thing with the store's
//! public API (a read is consistent, a write one commit, a batch, CAS or transaction atomic),
//! and nothing is cached that a user could not cache too. Durability is matched by [`Mode`]:
//! `Strict` syncs every commit (Cairn Strict, redb `Immediate`, fjall `SyncData`, SQLite
//! `synchronous=FULL`); `Buffered` is each store's own buffered mode (Redis as configured).

mod cairn;
mod fjall;
mod kv;
mod redb;
pub mod redis;
mod sqlite;

#[cfg(test)]
mod tests;

use crate::keys::random_bytes;
use crate::workloads::durability::DataDir;
use crate::workloads::{Result, WorkloadError};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// An enum whose variants have a name in rows and labels, with `ALL` and `name()`.
macro_rules! named {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $(#[doc = concat!("`", $text, "`")] $variant,)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant),*];

            /// The name rows and labels use.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }
    };
}

named! {
    /// How a store commits: in memory (Cairn only), buffered, or synced before returning.
    Mode { InMemory = "inmemory", Buffered = "buffered", Strict = "strict", }
}

named! {
    /// The store behind a [`Peer`]; `kv:` names a `KeyValueStore` backend through the trait.
    Engine {
        Cairn = "cairn", Redb = "redb", Fjall = "fjall", Sqlite = "sqlite", Redis = "redis",
        KvCairn = "kv:cairn", KvSqlite = "kv:sqlite", KvRedis = "kv:redis",
    }
}

impl Engine {
    /// True for a server whose configuration (not the benchmark) decides its durability.
    pub fn is_server(self) -> bool {
        matches!(self, Engine::Redis | Engine::KvRedis)
    }
}

/// Which store in which mode: `cairn-strict`, `redb-buffered`, `redis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct Label {
    pub engine: Engine,
    pub mode: Mode,
}

impl Label {
    #[allow(missing_docs, reason = "the type's docs say it")]
    pub const fn new(engine: Engine, mode: Mode) -> Self {
        Label { engine, mode }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.engine.is_server() {
            // One server, configured outside the benchmark: the mode is not ours to name.
            formatter.write_str(self.engine.name())
        } else {
            write!(formatter, "{}-{}", self.engine.name(), self.mode.name())
        }
    }
}

impl std::str::FromStr for Label {
    type Err = WorkloadError;

    /// Reads back what `Display` writes; a server's label (no mode) reads back as buffered.
    fn from_str(text: &str) -> Result<Self> {
        let engines = Engine::ALL.iter();
        let labels =
            engines.flat_map(|&engine| Mode::ALL.iter().map(move |&mode| Label::new(engine, mode)));
        let mut readable =
            labels.filter(|label| !label.engine.is_server() || label.mode == Mode::Buffered);
        let unknown = || WorkloadError::unexpected("label", format!("unknown store {text:?}"));
        let found = readable.find(|label| label.to_string() == text);
        found.ok_or_else(unknown)
    }
}

/// An operation some stores do not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub enum Feature {
    Ttl,
    OrderedScan,
    Transactions,
}

/// An open store, shared by the threads of a workload.
pub trait Peer: Send + Sync {
    /// Which store, in which mode.
    fn label(&self) -> Label;

    /// A handle for one thread.
    fn session(&self) -> Result<Box<dyn Session>>;

    /// True when the store has `feature`.
    fn supports(&self, feature: Feature) -> bool;

    /// Bytes the store's files take on disk now (`None` for a store without files).
    fn disk_bytes(&self) -> Option<u64>;

    /// Bytes a server's dataset takes (Redis's `used_memory`); `None` for an embedded store.
    fn server_memory_bytes(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Commits per fdatasync since the store opened, where the store reports it (Cairn).
    fn commits_per_sync(&self) -> Option<f64> {
        None
    }

    /// Makes everything written durable and waits for the background work a bulk load starts.
    fn settle(&self) -> Result<()> {
        Ok(())
    }
}

/// One thread's handle on a [`Peer`]; every method is one complete operation.
pub trait Session: Send {
    /// Reads `key` (its bytes, passed to `black_box`); returns the value's length if present.
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>>;

    /// Sets `key` to `value` in one commit.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key` in one commit; returns whether it held a value.
    fn delete(&mut self, key: &[u8]) -> Result<bool>;

    /// True when `key` holds a value.
    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets every `(key, value)` in one atomic commit.
    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()>;

    /// Reads every entry with `start <= key < end`, values too, from one consistent view.
    fn scan_range(&mut self, _start: &[u8], _end: &[u8]) -> Result<usize> {
        Err(lacks("an ordered scan"))
    }

    /// Reads every entry whose key starts with `prefix`, as [`Session::scan_range`] does.
    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        let mut end = prefix.to_vec();
        while end.pop_if(|last| *last == u8::MAX).is_some() {}
        let last = end
            .last_mut()
            .ok_or_else(|| lacks("successor of all-0xFF"))?;
        *last += 1;
        self.scan_range(prefix, &end)
    }

    /// Atomically: if `key` holds `expected`, sets it to `new` (one commit) and returns true.
    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool>;

    /// Reads `_read_key` (which must exist), sets each of `_writes` to `_value`, commits.
    fn transaction(&mut self, _read_key: &[u8], _writes: &[&[u8]], _value: &[u8]) -> Result<()> {
        Err(lacks("transactions"))
    }

    /// Sets `key` to `value`, expiring after `ttl`, in one commit.
    fn put_with_ttl(&mut self, _key: &[u8], _value: &[u8], _ttl: Duration) -> Result<()> {
        Err(lacks("a TTL"))
    }
}

fn lacks(what: &str) -> WorkloadError {
    WorkloadError::unexpected("session", format!("this store has no {what}"))
}

/// How many distinct values a [`ValuePool`] holds.
pub const VALUE_POOL_SIZE: usize = 1_024;

/// Distinct pseudo-random values of one length, handed out in turn, so that no store sees
/// repeated values it could compress away (flattering its disk and memory figures). Values
/// 1,024 apart repeat: far more than a compressed block holds.
#[derive(Clone, Debug)]
pub struct ValuePool {
    length: usize,
    bytes: Vec<u8>,
}

impl ValuePool {
    /// [`VALUE_POOL_SIZE`] values of `length` bytes.
    pub fn new(length: usize) -> Self {
        let bytes = random_bytes(0x5eed_0000 ^ length as u64, length * VALUE_POOL_SIZE);
        ValuePool { length, bytes }
    }

    /// The value for operation (or key) number `index`.
    #[expect(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        reason = "the slot is below VALUE_POOL_SIZE, and the pool holds that many values"
    )]
    pub fn get(&self, index: u64) -> &[u8] {
        let slot = (index % VALUE_POOL_SIZE as u64) as usize;
        &self.bytes[slot * self.length..(slot + 1) * self.length]
    }
}

/// Where a peer is reached: embedded stores get a fresh directory, Redis this URL.
#[derive(Clone, Debug)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct Places {
    pub redis_url: Option<String>,
}

/// Opens `label`'s store: embedded ones in a fresh directory, Redis in a fresh namespace.
pub fn open(label: Label, places: &Places) -> Result<Box<dyn Peer>> {
    let redis_url = || {
        let url = places.redis_url.as_deref();
        url.ok_or_else(|| WorkloadError::unexpected("redis", "no Redis server to measure"))
    };
    Ok(match label.engine {
        Engine::Cairn => Embedded::<::cairn::Db>::open(label)?,
        Engine::Redb => Embedded::<redb::Redb>::open(label)?,
        Engine::Fjall => Embedded::<fjall::Fjall>::open(label)?,
        Engine::Sqlite => Embedded::<sqlite::Sqlite>::open(label)?,
        Engine::Redis => Box::new(redis::RedisPeer::open(redis_url()?)?),
        Engine::KvRedis => Box::new(kv::KvPeer::open(label, Some(redis_url()?))?),
        Engine::KvCairn | Engine::KvSqlite => Box::new(kv::KvPeer::open(label, None)?),
    })
}

/// A fresh directory for `label`'s files, or none for a store in memory or in a server.
fn data_dir(label: Label) -> Result<Option<DataDir>> {
    let name = format!("peer-{}", label.engine.name().replace(':', "-"));
    let on_files = label.mode != Mode::InMemory && !label.engine.is_server();
    on_files.then(|| DataDir::create(&name)).transpose()
}

/// What an [`Embedded`] peer needs of its store; methods are as [`Peer`]'s, given the mode.
trait Store: Send + Sync + Sized + 'static {
    fn open(mode: Mode, dir: Option<&Path>) -> Result<Self>;

    fn session(&self) -> Result<Box<dyn Session>>;

    fn settle(&self, mode: Mode) -> Result<()>;

    fn commits_per_sync(&self, _mode: Mode) -> Option<f64> {
        None
    }

    /// Runs before the store's directory is removed.
    fn close(&self) {}
}

struct Embedded<S: Store> {
    label: Label,
    /// Declared before `dir`: the store closes before its directory is removed.
    store: S,
    dir: Option<DataDir>,
}

impl<S: Store> Embedded<S> {
    fn open(label: Label) -> Result<Box<dyn Peer>> {
        let dir = data_dir(label)?;
        let store = S::open(label.mode, dir.as_ref().map(DataDir::path))?;
        Ok(Box::new(Embedded { label, store, dir }))
    }
}

impl<S: Store> Drop for Embedded<S> {
    fn drop(&mut self) {
        self.store.close();
    }
}

impl<S: Store> Peer for Embedded<S> {
    fn label(&self) -> Label {
        self.label
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        self.store.session()
    }

    fn supports(&self, feature: Feature) -> bool {
        // Cairn has every feature; the other embedded stores have no TTL.
        self.label.engine == Engine::Cairn || feature != Feature::Ttl
    }

    fn disk_bytes(&self) -> Option<u64> {
        self.dir.as_ref().map(|dir| directory_bytes(dir.path()))
    }

    fn commits_per_sync(&self) -> Option<f64> {
        self.store.commits_per_sync(self.label.mode)
    }

    fn settle(&self) -> Result<()> {
        self.store.settle(self.label.mode)
    }
}

fn on_files(dir: Option<&Path>) -> Result<&Path> {
    dir.ok_or_else(|| WorkloadError::unexpected("open", "only Cairn runs in memory"))
}

/// Which stores a workload runs on: a commit class, with its `KeyValueStore` backends or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub enum Stores {
    Class(Mode),
    ClassAndTrait(Mode),
}

impl Stores {
    /// The labels, in table order.
    pub fn labels(self, redis: bool) -> Vec<Label> {
        use Engine::{Cairn, Fjall, KvCairn, KvRedis, KvSqlite, Redb, Redis, Sqlite};
        let (Stores::Class(mode) | Stores::ClassAndTrait(mode)) = self;
        let buffered = mode == Mode::Buffered;
        let trait_too = matches!(self, Stores::ClassAndTrait(_));
        let candidates = [
            (Cairn, Mode::InMemory, buffered),
            (Cairn, mode, true),
            (Redb, mode, true),
            (Fjall, mode, true),
            (Sqlite, mode, true),
            (Redis, mode, buffered && redis),
            (KvCairn, Mode::InMemory, trait_too && buffered),
            (KvCairn, mode, trait_too),
            (KvSqlite, mode, trait_too && buffered),
            (KvRedis, mode, trait_too && buffered && redis),
        ];
        let chosen = candidates.into_iter().filter(|(_, _, wanted)| *wanted);
        chosen
            .map(|(engine, mode, _)| Label::new(engine, mode))
            .collect()
    }
}

/// The direct client a `KeyValueStore` backend wraps, whose row its own is compared with.
pub fn raw_client(label: Label) -> Option<Label> {
    let engine = match label.engine {
        Engine::KvCairn => Engine::Cairn,
        Engine::KvSqlite => Engine::Sqlite,
        Engine::KvRedis => Engine::Redis,
        _ => return None,
    };
    Some(Label::new(engine, label.mode))
}

/// Disk space the files under `dir` take, as `du` counts it (a sparse WAL segment counts for
/// what it holds, not for its length).
fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let sizes = entries.flatten().filter_map(|entry| {
        let metadata = entry.metadata().ok()?;
        if metadata.is_dir() {
            Some(directory_bytes(&entry.path()))
        } else {
            metadata.is_file().then(|| metadata.blocks() * 512)
        }
    });
    sizes.sum()
}

fn read_key_found(found: bool) -> Result<()> {
    crate::workloads::ensure(found, "transaction", "its read key is missing")
}

fn touched(value: &[u8]) -> usize {
    std::hint::black_box(value);
    value.len()
}

fn touch_all<V: AsRef<[u8]>>(values: impl Iterator<Item = Result<V>>) -> Result<usize> {
    let mut count = 0;
    for value in values {
        touched(value?.as_ref());
        count += 1;
    }
    Ok(count)
}

/// The errors of the clients used directly, each attributed to its client by `?`.
macro_rules! client_errors {
    ($($client:literal: $($error:ty),+;)+) => {$($(
        impl From<$error> for WorkloadError {
            fn from(error: $error) -> Self {
                WorkloadError::client($client, error)
            }
        }
    )+)+};
}

client_errors! {
    "redb": ::redb::DatabaseError, ::redb::TransactionError, ::redb::TableError,
        ::redb::StorageError, ::redb::CommitError, ::redb::SetDurabilityError;
    "fjall": ::fjall::Error;
    "rusqlite": cairn_kv::backends::sqlite::rusqlite::Error;
    "redis-rs": cairn_kv::backends::redis::redis::RedisError;
    "cairn streams": cairn_log::StreamError;
}

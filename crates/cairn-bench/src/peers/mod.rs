//! The stores measured side by side: Cairn in each durability mode, and its peers (redb,
//! fjall, SQLite through rusqlite, Redis through redis-rs), each behind the same two small
//! traits so that one workload runs unchanged against all of them.
//!
//! - A [`Peer`] is an open store: a directory (or a server) and its configuration. It hands
//!   out [`Session`]s and reports what it supports and how much disk it uses.
//! - A [`Session`] is what one thread uses: Cairn, redb and fjall hand out a clone of the
//!   shared handle; SQLite opens a connection of the session's own (a rusqlite connection is
//!   not `Sync`); Redis opens a connection.
//!
//! Every call is the cheapest *complete* way to do that thing with the store's public API, as
//! a program using it directly would write it: a point read is a consistent read on its own
//! (redb opens a read transaction for it, SQLite runs a prepared `SELECT`), a write is one
//! commit, a batch is one atomic commit, a CAS and a transaction are atomic. Nothing is
//! cached on the workload's side that a user could not cache too.
//!
//! Durability is matched by [`Mode`]: `Strict` is Cairn Strict, redb `Durability::Immediate`,
//! fjall `PersistMode::SyncData` after every commit, SQLite `synchronous=FULL` (WAL mode);
//! `Buffered` is each store's own buffered mode: Cairn Buffered, redb `Durability::None`,
//! fjall without a persist call, SQLite `synchronous=NORMAL` (WAL mode). Redis is measured
//! as the server is configured (the test server keeps no files), and counts as buffered.
//! Only Cairn has an `InMemory` mode among the embedded stores.
//!
//! Dispatch is dynamic (`Box<dyn Session>`): one indirect call per operation, about a
//! nanosecond, the same for every store.

pub mod cairn;
pub mod fjall;
pub mod kv;
pub mod redb;
pub mod redis;
pub mod sqlite;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::keys::SplitMix64;
use crate::workloads::{Result, WorkloadError};

/// How a store commits: matched across stores as the module docs say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// No files at all (Cairn only).
    InMemory,
    /// Commits reach the OS (or the server) and are synced later.
    Buffered,
    /// Every commit is on disk (fdatasync) before it returns.
    Strict,
}

impl Mode {
    /// `inmemory`, `buffered`, `strict`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::InMemory => "inmemory",
            Mode::Buffered => "buffered",
            Mode::Strict => "strict",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The store behind a [`Peer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Engine {
    /// Cairn's own engine, used directly (`cairn::Db`).
    Cairn,
    /// redb.
    Redb,
    /// fjall.
    Fjall,
    /// SQLite through rusqlite.
    Sqlite,
    /// Redis through redis-rs (a server on this machine).
    Redis,
    /// Cairn through the `KeyValueStore` trait (`cairn-kv`'s `CairnStore`).
    KvCairn,
    /// SQLite through the `KeyValueStore` trait (`SqliteStore`).
    KvSqlite,
    /// Redis through the `KeyValueStore` trait (`RedisStore`).
    KvRedis,
}

impl Engine {
    /// `cairn`, `redb`, `fjall`, `sqlite`, `redis`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Cairn => "cairn",
            Engine::Redb => "redb",
            Engine::Fjall => "fjall",
            Engine::Sqlite => "sqlite",
            Engine::Redis => "redis",
            Engine::KvCairn => "kv:cairn",
            Engine::KvSqlite => "kv:sqlite",
            Engine::KvRedis => "kv:redis",
        }
    }

    /// True for a server whose configuration (not the benchmark) decides its durability.
    pub fn is_server(self) -> bool {
        matches!(self, Engine::Redis | Engine::KvRedis)
    }

    /// Every engine, Cairn first.
    pub const ALL: [Engine; 8] = [
        Engine::Cairn,
        Engine::Redb,
        Engine::Fjall,
        Engine::Sqlite,
        Engine::Redis,
        Engine::KvCairn,
        Engine::KvSqlite,
        Engine::KvRedis,
    ];
}

/// Which store in which mode: `cairn-strict`, `redb-buffered`, `redis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// The store.
    pub engine: Engine,
    /// Its commit mode.
    pub mode: Mode,
}

impl Label {
    /// A label.
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

    /// Reads back what `Display` writes: `cairn-inmemory`, `redb-strict`, `redis`.
    fn from_str(text: &str) -> Result<Self> {
        let unknown =
            |what: &str| WorkloadError::unexpected("label", format!("unknown {what} in {text:?}"));
        let (engine, mode) = match text.split_once('-') {
            Some((engine, mode)) => (engine, Some(mode)),
            None => (text, None),
        };
        let engine = Engine::ALL
            .into_iter()
            .find(|candidate| candidate.name() == engine)
            .ok_or_else(|| unknown("store"))?;
        let mode = match (engine, mode) {
            (engine, None) if engine.is_server() => Mode::Buffered,
            (_, Some(mode)) => [Mode::InMemory, Mode::Buffered, Mode::Strict]
                .into_iter()
                .find(|candidate| candidate.name() == mode)
                .ok_or_else(|| unknown("mode"))?,
            (_, None) => return Err(unknown("mode (none given)")),
        };
        Ok(Label::new(engine, mode))
    }
}

/// An operation some stores do not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// A put whose key expires by itself (`put_with_ttl`).
    Ttl,
    /// Keys kept in byte order, so that prefix and range scans read only what they return.
    OrderedScan,
    /// Read-write transactions (`Session::transaction`).
    Transactions,
}

/// An open store, shared by the threads of a workload.
pub trait Peer: Send + Sync {
    /// Which store, in which mode.
    fn label(&self) -> Label;

    /// A handle for one thread.
    fn session(&self) -> Result<Box<dyn Session>>;

    /// True when the store has `feature`. The default: ordered scans and transactions, no
    /// TTL.
    fn supports(&self, feature: Feature) -> bool {
        matches!(feature, Feature::OrderedScan | Feature::Transactions)
    }

    /// Bytes the store's files take on disk now (`None` for a store without files).
    fn disk_bytes(&self) -> Option<u64>;

    /// Bytes a server's dataset takes (Redis's `used_memory`); `None` for an embedded store,
    /// whose memory is the process's own.
    fn server_memory_bytes(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Commits per fdatasync since the store was opened, where the store reports it (Cairn's
    /// WAL frames over WAL syncs); `None` elsewhere.
    fn commits_per_sync(&self) -> Option<f64> {
        None
    }

    /// Makes everything written so far durable, and waits for background work the store
    /// starts after a bulk load (so the next measurement starts from a settled store).
    fn settle(&self) -> Result<()> {
        Ok(())
    }
}

/// One thread's handle on a [`Peer`]. Every method is one complete operation.
pub trait Session: Send {
    /// Reads `key`; returns the value's length, or `None` when absent. The value's bytes are
    /// read (passed to `black_box`), not just located.
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>>;

    /// Sets `key` to `value` in one commit.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key` in one commit; returns whether it held a value.
    fn delete(&mut self, key: &[u8]) -> Result<bool>;

    /// True when `key` holds a value. The default reads it.
    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets every `(key, value)` in one atomic commit.
    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()>;

    /// Reads every entry with `start <= key < end`, in key order, from one consistent view;
    /// returns how many there were. Values are read too.
    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize>;

    /// Reads every entry whose key starts with `prefix`, in key order, from one consistent
    /// view. The default is the key range `[prefix, successor(prefix))`; a store with a prefix
    /// call of its own uses it.
    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        match prefix_successor(prefix) {
            Some(end) => self.scan_range(prefix, &end),
            None => Err(WorkloadError::unexpected(
                "scan_prefix",
                "a prefix of 0xFF bytes has no successor",
            )),
        }
    }

    /// Atomically: if `key` holds `expected`, sets it to `new` and returns true; otherwise
    /// writes nothing and returns false. One commit when it swaps.
    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool>;

    /// One read-write transaction: reads `read_key` (which must exist), then sets each of
    /// `write_keys` to `value`, and commits atomically.
    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()>;

    /// Sets `key` to `value`, expiring after `ttl`, in one commit. Only called when the peer
    /// supports [`Feature::Ttl`].
    fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        let _ = (key, value, ttl);
        Err(WorkloadError::unexpected(
            "put_with_ttl",
            "this store has no TTL; the workload should have skipped it",
        ))
    }
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// `prefix` is all `0xFF` (or empty).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// How many distinct values a [`ValuePool`] holds.
pub const VALUE_POOL_SIZE: usize = 1_024;

/// Distinct pseudo-random values of one length, handed out in turn, so that no store sees
/// repeated values it could compress away (an LSM block of identical values would shrink to
/// nothing and flatter its disk and memory figures). Values 1,024 apart repeat: far more than
/// a compressed block holds.
#[derive(Clone, Debug)]
pub struct ValuePool {
    length: usize,
    bytes: Vec<u8>,
}

impl ValuePool {
    /// [`VALUE_POOL_SIZE`] values of `length` bytes.
    pub fn new(length: usize) -> Self {
        let mut random = SplitMix64::new(0x5eed_0000 ^ length as u64);
        let total = length * VALUE_POOL_SIZE;
        let mut bytes = Vec::with_capacity(total + 8);
        while bytes.len() < total {
            bytes.extend_from_slice(&random.next_u64().to_le_bytes());
        }
        bytes.truncate(total);
        ValuePool { length, bytes }
    }

    /// The value for operation (or key) number `index`.
    pub fn get(&self, index: u64) -> &[u8] {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the remainder is below VALUE_POOL_SIZE"
        )]
        let slot = (index % VALUE_POOL_SIZE as u64) as usize;
        &self.bytes[slot * self.length..(slot + 1) * self.length]
    }

    /// The length of every value.
    pub fn value_len(&self) -> usize {
        self.length
    }
}

/// Where a peer is reached: embedded stores get a fresh directory, Redis a URL.
#[derive(Clone, Debug)]
pub struct Places {
    /// A Redis server that answered, if any.
    pub redis_url: Option<String>,
}

/// Opens `label`'s store: embedded stores in a fresh directory of their own (removed when the
/// peer drops), Redis at `places.redis_url` (a fresh key namespace per peer).
pub fn open(label: Label, places: &Places) -> Result<Box<dyn Peer>> {
    match label.engine {
        Engine::Cairn => Ok(Box::new(cairn::CairnPeer::open(label.mode)?)),
        Engine::Redb => Ok(Box::new(redb::RedbPeer::open(label.mode)?)),
        Engine::Fjall => Ok(Box::new(fjall::FjallPeer::open(label.mode)?)),
        Engine::Sqlite => Ok(Box::new(sqlite::SqlitePeer::open(label.mode)?)),
        Engine::Redis => match &places.redis_url {
            Some(url) => Ok(Box::new(redis::RedisPeer::open(url)?)),
            None => Err(WorkloadError::unexpected(
                "redis",
                "no Redis server to measure",
            )),
        },
        Engine::KvCairn | Engine::KvSqlite | Engine::KvRedis => Ok(Box::new(kv::KvPeer::open(
            label,
            places.redis_url.as_deref(),
        )?)),
    }
}

/// Which stores a workload runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stores {
    /// Every store of the commit class: Cairn in that mode (for buffered work, also in memory),
    /// each embedded peer in that mode, and Redis for buffered work when a server answers.
    Class(Mode),
    /// [`Stores::Class`], then every `KeyValueStore` backend of the class through the trait.
    ClassAndTrait(Mode),
}

impl Stores {
    /// The labels, in table order.
    pub fn labels(self, redis: bool) -> Vec<Label> {
        let (Stores::Class(mode) | Stores::ClassAndTrait(mode)) = self;
        let mut labels = Vec::new();
        if mode == Mode::Buffered {
            labels.push(Label::new(Engine::Cairn, Mode::InMemory));
        }
        for engine in [Engine::Cairn, Engine::Redb, Engine::Fjall, Engine::Sqlite] {
            labels.push(Label::new(engine, mode));
        }
        if mode == Mode::Buffered && redis {
            labels.push(Label::new(Engine::Redis, Mode::Buffered));
        }
        if let Stores::ClassAndTrait(_) = self {
            if mode == Mode::Buffered {
                labels.push(Label::new(Engine::KvCairn, Mode::InMemory));
            }
            labels.push(Label::new(Engine::KvCairn, mode));
            if mode == Mode::Buffered {
                labels.push(Label::new(Engine::KvSqlite, Mode::Buffered));
                if redis {
                    labels.push(Label::new(Engine::KvRedis, Mode::Buffered));
                }
            }
        }
        labels
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

/// Disk space the regular files under `dir` take, recursively (0 for a missing directory):
/// allocated blocks, as `du` counts them, so a preallocated but unwritten (sparse) WAL
/// segment counts for what it holds, not for its length. Off Unix, file lengths.
pub fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if metadata.is_dir() {
            total += directory_bytes(&entry.path());
        } else if metadata.is_file() {
            total += allocated_bytes(&metadata);
        }
    }
    total
}

/// The error of a transaction whose read key is missing (it wrote nothing).
pub(crate) fn missing_read_key() -> WorkloadError {
    WorkloadError::unexpected("transaction", "the key the transaction reads is missing")
}

/// Refuses `Mode::InMemory` for an embedded peer that runs on files: Cairn is the only
/// in-memory embedded store measured.
pub(crate) fn refuse_in_memory(peer: &'static str, mode: Mode) -> Result<()> {
    if mode == Mode::InMemory {
        let detail = "this peer runs on files (Buffered or Strict)";
        return Err(WorkloadError::unexpected(peer, detail));
    }
    Ok(())
}

/// Passes a read value to `black_box` and returns its length.
pub(crate) fn touched(value: &[u8]) -> usize {
    std::hint::black_box(value);
    value.len()
}

#[cfg(unix)]
fn allocated_bytes(metadata: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // st_blocks counts 512-byte units whatever the file system's block size.
    metadata.blocks() * 512
}

#[cfg(not(unix))]
fn allocated_bytes(metadata: &std::fs::Metadata) -> u64 {
    metadata.len()
}

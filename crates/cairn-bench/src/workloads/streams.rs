//! Message-stream workloads and the logs they run on. A [`Log`] is one append-only stream as
//! each store keeps it: Cairn's [`Streams`], a `Vec` that only copies bytes (the in-memory
//! floor), fjall with big-endian offsets as keys, SQLite as an append-only table in WAL mode,
//! and a Redis Stream (pipelined `XADD`, `XRANGE`). Every read checks that it found a message
//! of the length appended, and every append that its offsets follow the previous ones.

use super::durability::DataDir;
use super::{ensure, run_threads, ParallelWorkload, Result, Workload, WorkloadError};
use crate::keys::value_of_length;
use cairn_kv::backends::redis::redis;
use cairn_kv::backends::sqlite::rusqlite::{self, params, Connection};
use cairn_log::{Message, StdFileSystem, StreamOptions, Streams, SyncPolicy};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The stream every workload writes (writer `i` of a concurrent workload: `bench-i`).
const STREAM: &str = "bench";
/// Messages one page of a replay or a range read asks for.
pub const PAGE_MESSAGES: usize = 1_000;
/// Bytes a log may take before an append workload swaps it for a fresh one, untimed.
const LOG_BYTES_BEFORE_FRESH: u64 = 256 << 20;

/// Which store keeps the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names say it")]
pub enum LogKind {
    Cairn,
    Memcpy,
    Fjall,
    Sqlite,
    Redis,
}

/// A log's store and durability: Strict returns after the append is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLabel {
    /// The store.
    pub kind: LogKind,
    /// Synced before an append returns.
    pub strict: bool,
}

impl fmt::Display for LogLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.strict { "strict" } else { "buffered" };
        match self.kind {
            LogKind::Memcpy => f.write_str("memcpy"),
            LogKind::Redis => f.write_str("redis"),
            LogKind::Cairn => write!(f, "cairn-{mode}"),
            LogKind::Fjall => write!(f, "fjall-{mode}"),
            LogKind::Sqlite => write!(f, "sqlite-{mode}"),
        }
    }
}

/// What every log is opened with: its batch (`batch` messages of `message_bytes`).
#[derive(Clone, Debug)]
pub struct LogSpec {
    /// The store.
    pub label: LogLabel,
    /// Messages per append.
    pub batch: usize,
    /// Bytes per message.
    pub message_bytes: usize,
    /// Where Redis listens, for a Redis log.
    pub redis_url: Option<String>,
    /// Cairn's segment size (`None`: the default).
    pub segment_bytes: Option<u64>,
}

impl LogSpec {
    /// A log of `label` appending `batch` messages of `message_bytes` at a time.
    pub fn new(label: LogLabel, batch: usize, message_bytes: usize, redis: Option<&str>) -> Self {
        let redis_url = redis.map(str::to_owned);
        let segment_bytes = None;
        LogSpec {
            label,
            batch,
            message_bytes,
            redis_url,
            segment_bytes,
        }
    }

    /// Opens a fresh, empty log.
    pub fn open(&self) -> Result<Box<dyn Log>> {
        let value = value_of_length(self.message_bytes);
        let values = vec![value; self.batch];
        let strict = self.label.strict;
        Ok(match self.label.kind {
            LogKind::Cairn => Box::new(CairnLog::open(self, &values)?),
            LogKind::Memcpy => Box::new(MemcpyLog::new(values)),
            LogKind::Fjall => Box::new(FjallLog::open(strict, values)?),
            LogKind::Sqlite => Box::new(SqliteLog::open(strict, values)?),
            LogKind::Redis => Box::new(RedisLog::open(self.redis_url.as_deref(), values)?),
        })
    }
}

/// One stream of one store.
pub trait Log: Send {
    /// Appends the log's batch atomically; returns the offset of its first message.
    fn append(&mut self) -> Result<u64>;
    /// Reads the message at `offset`; returns its length.
    fn read(&mut self, offset: u64) -> Result<usize>;
    /// Reads up to `count` messages from `from` on; returns how many it read.
    fn read_range(&mut self, from: u64, count: usize) -> Result<usize>;
    /// Reads `count` messages from offset 0 in pages of [`PAGE_MESSAGES`].
    fn replay(&mut self, count: u64) -> Result<u64> {
        let mut read = 0_u64;
        while read < count {
            let page =
                usize::try_from(count - read).map_or(PAGE_MESSAGES, |n| n.min(PAGE_MESSAGES));
            let got = self.read_range(read, page)?;
            ensure(got > 0, "replay", "the log ended early")?;
            read += got as u64;
        }
        Ok(read)
    }
    /// Another handle on the same stream, for a concurrent writer.
    fn writer(&self) -> Result<Box<dyn Log>>;
}

fn length_is(workload: &'static str, length: usize, expected: usize) -> Result<usize> {
    if length == expected {
        return Ok(length);
    }
    let detail = format!("read {length} bytes, appended {expected}");
    Err(WorkloadError::unexpected(workload, detail))
}

/// Cairn's [`Streams`], one stream per writer, in a directory of its own.
struct CairnLog {
    streams: Arc<Streams>,
    name: String,
    batch: Vec<Message>,
    message_bytes: usize,
    /// Declared last: removed after the store is closed.
    dir: Arc<DataDir>,
}

impl CairnLog {
    fn open(spec: &LogSpec, values: &[Vec<u8>]) -> Result<Self> {
        let dir = Arc::new(DataDir::create("streams")?);
        let sync = if spec.label.strict {
            SyncPolicy::Strict
        } else {
            SyncPolicy::buffered()
        };
        let mut options = StreamOptions::new(sync);
        if let Some(bytes) = spec.segment_bytes {
            options.segment_bytes = bytes;
        }
        let streams = Streams::open(Arc::new(StdFileSystem), dir.path(), options)?;
        let batch = values
            .iter()
            .map(|value| Message::value(value.clone()))
            .collect();
        let log = CairnLog {
            streams: Arc::new(streams),
            name: STREAM.to_owned(),
            batch,
            message_bytes: spec.message_bytes,
            dir,
        };
        log.streams.create(&log.name)?;
        Ok(log)
    }
}

impl Log for CairnLog {
    fn append(&mut self) -> Result<u64> {
        Ok(self.streams.append_batch(&self.name, &self.batch)?.start)
    }

    fn read(&mut self, offset: u64) -> Result<usize> {
        let stored = self.streams.read(&self.name, offset)?;
        let stored = stored.filter(|stored| stored.offset == offset);
        let stored = stored.ok_or_else(|| WorkloadError::unexpected("read", "offset missing"))?;
        length_is("read", stored.message.value.len(), self.message_bytes)
    }

    fn read_range(&mut self, from: u64, count: usize) -> Result<usize> {
        let messages = self
            .streams
            .read_range(&self.name, from, count, usize::MAX)?;
        for stored in &messages {
            length_is("read_range", stored.message.value.len(), self.message_bytes)?;
        }
        Ok(messages.len())
    }

    /// Through `scan_range`, in pages of [`PAGE_MESSAGES`]: each message is borrowed from
    /// the read buffer and checked (dense offsets, value length) where it lies.
    fn replay(&mut self, count: u64) -> Result<u64> {
        let message_bytes = self.message_bytes;
        let mut next = 0_u64;
        let mut wrong = None;
        while next < count {
            let before = next;
            self.streams.scan_range(
                &self.name,
                next,
                PAGE_MESSAGES,
                &mut |offset, _, message| {
                    if offset != next || message.value.len() != message_bytes {
                        wrong = Some((offset, message.value.len()));
                        return false;
                    }
                    next += 1;
                    true
                },
            )?;
            if let Some((offset, length)) = wrong {
                let detail = format!("offset {offset} with {length} bytes where {next} was next");
                return Err(WorkloadError::unexpected("replay", detail));
            }
            ensure(next > before, "replay", "the stream ended early")?;
        }
        Ok(next)
    }

    fn writer(&self) -> Result<Box<dyn Log>> {
        Ok(Box::new(CairnLog {
            streams: Arc::clone(&self.streams),
            name: self.name.clone(),
            batch: self.batch.clone(),
            message_bytes: self.message_bytes,
            dir: Arc::clone(&self.dir),
        }))
    }
}

/// The in-memory floor: messages copied into one buffer, their ends in another.
struct MemcpyLog {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    batch: Vec<Vec<u8>>,
    out: Vec<u8>,
}

impl MemcpyLog {
    fn new(batch: Vec<Vec<u8>>) -> Self {
        // Reserved whole (address space only): appends never pay a reallocation's copy.
        let capacity = usize::try_from(LOG_BYTES_BEFORE_FRESH).unwrap_or(usize::MAX);
        let (bytes, ends, out) = (Vec::with_capacity(capacity), Vec::new(), Vec::new());
        MemcpyLog {
            bytes,
            ends,
            batch,
            out,
        }
    }

    fn copy_out(&mut self, offset: u64) -> Option<usize> {
        let index = usize::try_from(offset).ok()?;
        let start = index
            .checked_sub(1)
            .map_or(Some(0), |before| self.ends.get(before).copied())?;
        let message = self.bytes.get(start..*self.ends.get(index)?)?;
        self.out.clear();
        self.out.extend_from_slice(message);
        Some(std::hint::black_box(&self.out).len())
    }
}

impl Log for MemcpyLog {
    fn append(&mut self) -> Result<u64> {
        let first = self.ends.len() as u64;
        for message in &self.batch {
            self.bytes.extend_from_slice(message);
            self.ends.push(self.bytes.len());
        }
        Ok(first)
    }

    fn read(&mut self, offset: u64) -> Result<usize> {
        let missing = || WorkloadError::unexpected("read", "offset missing");
        self.copy_out(offset).ok_or_else(missing)
    }

    fn read_range(&mut self, from: u64, count: usize) -> Result<usize> {
        let mut read = 0;
        while read < count && self.copy_out(from + read as u64).is_some() {
            read += 1;
        }
        Ok(read)
    }

    fn writer(&self) -> Result<Box<dyn Log>> {
        Err(WorkloadError::unexpected("memcpy", "one writer only"))
    }
}

/// fjall used as a log: one keyspace, the offset big-endian as the key. Concurrent writers
/// take offsets from one shared counter and commit without a lock (the most favourable way
/// for fjall; a reader may briefly see a gap, which a real log would have to prevent).
struct FjallLog {
    database: fjall::Database,
    keyspace: fjall::Keyspace,
    strict: bool,
    next: Arc<AtomicU64>,
    batch: Vec<Vec<u8>>,
    dir: Arc<DataDir>,
}

impl FjallLog {
    fn open(strict: bool, batch: Vec<Vec<u8>>) -> Result<Self> {
        let dir = Arc::new(DataDir::create("fjall-log")?);
        let database = fjall::Database::builder(dir.path()).open()?;
        let keyspace = database.keyspace(STREAM, fjall::KeyspaceCreateOptions::default)?;
        let next = Arc::new(AtomicU64::new(0));
        Ok(FjallLog {
            database,
            keyspace,
            strict,
            next,
            batch,
            dir,
        })
    }
}

impl Log for FjallLog {
    fn append(&mut self) -> Result<u64> {
        let first = self
            .next
            .fetch_add(self.batch.len() as u64, Ordering::Relaxed);
        let mut batch = self.database.batch();
        if self.strict {
            batch = batch.durability(Some(fjall::PersistMode::SyncData));
        }
        for (offset, message) in (first..).zip(&self.batch) {
            batch.insert(&self.keyspace, offset.to_be_bytes(), message);
        }
        batch.commit()?;
        Ok(first)
    }

    fn read(&mut self, offset: u64) -> Result<usize> {
        let found = self.keyspace.get(offset.to_be_bytes())?;
        let found = found.ok_or_else(|| WorkloadError::unexpected("read", "offset missing"))?;
        Ok(std::hint::black_box(found).len())
    }

    fn read_range(&mut self, from: u64, count: usize) -> Result<usize> {
        let mut read = 0;
        for entry in self.keyspace.range(from.to_be_bytes()..).take(count) {
            std::hint::black_box(entry.value()?);
            read += 1;
        }
        Ok(read)
    }

    fn writer(&self) -> Result<Box<dyn Log>> {
        Ok(Box::new(FjallLog {
            database: self.database.clone(),
            keyspace: self.keyspace.clone(),
            strict: self.strict,
            next: Arc::clone(&self.next),
            batch: self.batch.clone(),
            dir: Arc::clone(&self.dir),
        }))
    }
}

/// SQLite as an append-only table (`offset` is the rowid less one) in WAL mode:
/// `synchronous=FULL` when strict, `NORMAL` otherwise. A batch is one `BEGIN IMMEDIATE`
/// transaction; a concurrent writer is a connection of its own.
struct SqliteLog {
    connection: Connection,
    strict: bool,
    batch: Vec<Vec<u8>>,
    dir: Arc<DataDir>,
}

impl SqliteLog {
    fn open(strict: bool, batch: Vec<Vec<u8>>) -> Result<Self> {
        let dir = Arc::new(DataDir::create("sqlite-log")?);
        SqliteLog::connect(strict, batch, dir)
    }

    fn connect(strict: bool, batch: Vec<Vec<u8>>, dir: Arc<DataDir>) -> Result<Self> {
        let connection = Connection::open(dir.path().join("log.sqlite"))?;
        connection.busy_timeout(Duration::from_secs(30))?;
        let synchronous = if strict { "FULL" } else { "NORMAL" };
        connection.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
             CREATE TABLE IF NOT EXISTS log (offset INTEGER PRIMARY KEY, body BLOB NOT NULL)"
        ))?;
        Ok(SqliteLog {
            connection,
            strict,
            batch,
            dir,
        })
    }
}

fn sqlite_offset(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

impl Log for SqliteLog {
    fn append(&mut self) -> Result<u64> {
        let behavior = rusqlite::TransactionBehavior::Immediate;
        let transaction = self.connection.transaction_with_behavior(behavior)?;
        {
            let mut insert = transaction.prepare_cached("INSERT INTO log (body) VALUES (?1)")?;
            for message in &self.batch {
                insert.execute(params![message])?;
            }
        }
        let last = transaction.last_insert_rowid();
        transaction.commit()?;
        let after = u64::try_from(last).unwrap_or(0);
        Ok(after.saturating_sub(self.batch.len() as u64))
    }

    fn read(&mut self, offset: u64) -> Result<usize> {
        let select = "SELECT length(body) FROM log WHERE offset = ?1";
        let mut select = self.connection.prepare_cached(select)?;
        let length: i64 = select.query_row([sqlite_offset(offset + 1)], |row| row.get(0))?;
        Ok(usize::try_from(length).unwrap_or(0))
    }

    fn read_range(&mut self, from: u64, count: usize) -> Result<usize> {
        let select = "SELECT body FROM log WHERE offset >= ?1 ORDER BY offset LIMIT ?2";
        let mut select = self.connection.prepare_cached(select)?;
        let count = i64::try_from(count).unwrap_or(0);
        let mut rows = select.query([sqlite_offset(from + 1), count])?;
        let mut read = 0;
        while let Some(row) = rows.next()? {
            let body = row.get_ref(0)?.as_blob();
            std::hint::black_box(body.map_err(|e| WorkloadError::client("rusqlite", e))?);
            read += 1;
        }
        Ok(read)
    }

    fn writer(&self) -> Result<Box<dyn Log>> {
        let (batch, dir) = (self.batch.clone(), Arc::clone(&self.dir));
        Ok(Box::new(SqliteLog::connect(self.strict, batch, dir)?))
    }
}

/// A Redis Stream: offset `n` is entry id `0-(n+1)`, a batch one pipeline of `XADD`s.
struct RedisLog {
    connection: redis::Connection,
    key: String,
    next: u64,
    batch: Vec<Vec<u8>>,
}

impl RedisLog {
    fn open(url: Option<&str>, batch: Vec<Vec<u8>>) -> Result<Self> {
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let url = url.ok_or_else(|| WorkloadError::unexpected("redis", "no Redis server"))?;
        let client = redis::Client::open(url)?;
        let connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let opened = OPENED.fetch_add(1, Ordering::Relaxed);
        let key = format!("cairn-bench:stream:{}:{opened}", std::process::id());
        Ok(RedisLog {
            connection,
            key,
            next: 0,
            batch,
        })
    }

    fn id(offset: u64) -> String {
        format!("0-{}", offset + 1)
    }

    /// `XRANGE` from `from` to `to` (an id or `+`); returns the entries and their bytes.
    fn range(&mut self, from: u64, to: &str, count: usize) -> Result<(usize, usize)> {
        let command = redis::cmd("XRANGE")
            .arg(&self.key)
            .arg(RedisLog::id(from))
            .arg(to)
            .arg("COUNT")
            .arg(count)
            .clone();
        let entries: Vec<(String, Vec<Vec<u8>>)> = command.query(&mut self.connection)?;
        let mut bytes = 0;
        for (_, fields) in &entries {
            let value = fields.get(1);
            bytes += value
                .ok_or_else(|| WorkloadError::unexpected("xrange", "no value"))?
                .len();
        }
        Ok((entries.len(), bytes))
    }
}

impl Log for RedisLog {
    fn append(&mut self) -> Result<u64> {
        let first = self.next;
        let mut pipe = redis::pipe();
        for (offset, message) in (first..).zip(&self.batch) {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg(RedisLog::id(offset))
                .arg("v")
                .arg(message)
                .ignore();
        }
        pipe.exec(&mut self.connection)?;
        self.next += self.batch.len() as u64;
        Ok(first)
    }

    fn read(&mut self, offset: u64) -> Result<usize> {
        let (read, bytes) = self.range(offset, &RedisLog::id(offset), 1)?;
        ensure(read == 1, "read", "offset missing").map(|()| bytes)
    }

    fn read_range(&mut self, from: u64, count: usize) -> Result<usize> {
        Ok(self.range(from, "+", count)?.0)
    }

    /// Not offered: entry ids are chosen by the writer, so two writers would collide.
    fn writer(&self) -> Result<Box<dyn Log>> {
        Err(WorkloadError::unexpected("redis", "one writer only"))
    }
}

impl Drop for RedisLog {
    fn drop(&mut self) {
        // Best effort: a leftover key is namespaced and harms nothing.
        let _ = redis::cmd("UNLINK")
            .arg(&self.key)
            .exec(&mut self.connection);
    }
}

/// Appends the log's batch, checking that offsets are dense; a log past
/// `LOG_BYTES_BEFORE_FRESH` is swapped for a fresh one while untimed.
pub struct Append {
    spec: LogSpec,
    log: Box<dyn Log>,
    next: u64,
}

impl Append {
    /// A fresh log of `spec`.
    pub fn new(spec: LogSpec) -> Result<Self> {
        let log = spec.open()?;
        Ok(Append { spec, log, next: 0 })
    }
}

impl Workload for Append {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let ahead = (self.next + (runs * self.spec.batch) as u64) * self.spec.message_bytes as u64;
        if ahead > LOG_BYTES_BEFORE_FRESH {
            self.log = self.spec.open()?;
            self.next = 0;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let first = self.log.append()?;
        ensure(first == self.next, "append", "offsets are not dense")?;
        self.next += self.spec.batch as u64;
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.spec.batch as u64
    }
}

/// How a read workload picks its offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the names say it")]
pub enum ReadPattern {
    Sequential,
    Random,
    /// [`RANGE_MESSAGES`] messages from a random offset.
    Range,
    /// The whole log from offset 0.
    Replay,
}

/// Reads from a log filled with `messages` messages.
pub struct Read {
    log: Box<dyn Log>,
    messages: u64,
    pattern: ReadPattern,
    position: u64,
    message_bytes: usize,
}

/// Messages one [`ReadPattern::Range`] read asks for.
pub const RANGE_MESSAGES: usize = 100;

impl Read {
    /// Fills a log of `spec` with `messages` messages (untimed), in batches of `spec.batch`.
    pub fn new(spec: &LogSpec, messages: u64, pattern: ReadPattern) -> Result<Self> {
        let mut log = spec.open()?;
        let mut written = 0;
        while written < messages {
            written += spec.batch as u64;
            log.append()?;
        }
        Ok(Read {
            log,
            messages: written,
            pattern,
            position: 0,
            message_bytes: spec.message_bytes,
        })
    }

    /// Reads by `pattern` from now on.
    pub fn set_pattern(&mut self, pattern: ReadPattern) {
        self.pattern = pattern;
    }

    fn next_offset(&mut self) -> u64 {
        self.position = match self.pattern {
            ReadPattern::Sequential => self.position + 1,
            // A 64-bit linear congruential step: every offset, in a cache-hostile order.
            _ => self
                .position
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        };
        match self.pattern {
            ReadPattern::Sequential => self.position % self.messages,
            _ => (self.position >> 11) % self.messages,
        }
    }
}

impl Workload for Read {
    fn run_op(&mut self) -> Result<()> {
        match self.pattern {
            ReadPattern::Sequential | ReadPattern::Random => {
                let offset = self.next_offset();
                length_is("read", self.log.read(offset)?, self.message_bytes).map(drop)
            }
            ReadPattern::Range => {
                let from =
                    self.next_offset() % self.messages.saturating_sub(RANGE_MESSAGES as u64).max(1);
                let read = self.log.read_range(from, RANGE_MESSAGES)?;
                ensure(read == RANGE_MESSAGES, "read_range", "short range").map(drop)
            }
            ReadPattern::Replay => {
                let read = self.log.replay(self.messages)?;
                ensure(read == self.messages, "replay", "short replay").map(drop)
            }
        }
    }

    fn engine_ops_per_run(&self) -> u64 {
        match self.pattern {
            ReadPattern::Sequential | ReadPattern::Random => 1,
            ReadPattern::Range => RANGE_MESSAGES as u64,
            ReadPattern::Replay => self.messages,
        }
    }
}

/// `writers` threads appending to one stream, `appends` batches apiece per run. After each
/// run the offsets the appends returned must be exactly the next ones, each taken once.
pub struct ConcurrentAppends {
    logs: Vec<Box<dyn Log>>,
    next: u64,
    appends: u64,
    batch: u64,
}

impl ConcurrentAppends {
    /// A store of `spec` with `writers` handles on its stream.
    pub fn new(spec: &LogSpec, writers: usize, appends: u64) -> Result<Self> {
        let first = spec.open()?;
        let mut logs = (1..writers)
            .map(|_| first.writer())
            .collect::<Result<Vec<_>>>()?;
        logs.push(first);
        Ok(ConcurrentAppends {
            logs,
            next: 0,
            appends,
            batch: spec.batch as u64,
        })
    }
}

impl ParallelWorkload for ConcurrentAppends {
    fn run(&mut self) -> Result<Duration> {
        let appends = self.appends;
        let firsts = parking_lot::Mutex::new(Vec::new());
        let elapsed = run_threads(self.logs.iter_mut().collect(), |_, log| {
            let mine = (0..appends)
                .map(|_| log.append())
                .collect::<Result<Vec<u64>>>()?;
            firsts.lock().extend(mine);
            Ok(())
        })?;
        let mut firsts = firsts.into_inner();
        firsts.sort_unstable();
        let expected = (0..firsts.len() as u64).map(|index| self.next + index * self.batch);
        let dense = firsts.iter().copied().eq(expected);
        ensure(
            dense,
            "concurrent_writes",
            "offsets are not dense and unique",
        )?;
        self.next += firsts.len() as u64 * self.batch;
        Ok(elapsed)
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.logs.len() as u64 * self.appends * self.batch
    }
}

//! `SqliteStore`: the trait on `SQLite`, through `rusqlite` with `SQLite` compiled in.
//!
//! **Layout.** One table, `kv(key BLOB PRIMARY KEY, value BLOB NOT NULL, expires_at_millis
//! INTEGER) WITHOUT ROWID`, plus a partial index on `expires_at_millis` for the purge. The
//! key column holds [`Scope::stored_key`]: the scope's encoded prefix, then the caller's key.
//! That prefix is what keeps scopes apart; no scope's prefix is a prefix of another's.
//!
//! **Prefixes are ranges.** `list`, `count_prefix` and `clear_prefix` query
//! `key >= lower AND key < upper`, where `lower` is the stored prefix and `upper` its
//! successor (trailing `0xFF` bytes dropped, then the last byte plus one; no upper bound when
//! nothing is left). `SQLite` compares blobs with `memcmp`, so this is exactly "starts with"
//! in byte order, served by the primary key's B-tree. Never `LIKE` or `GLOB`, whose
//! wildcards and case rules would be wrong for binary keys.
//!
//! **Expiry.** A deadline is stored as Unix milliseconds. Every read filters on it, so an
//! expired row is absent at once to every call; a background thread deletes expired rows
//! in batches of [`PURGE_BATCH_ROWS`] (see `purge`) and `stats()` counts them. Deadlines use
//! the system clock: moving it moves every deadline.
//!
//! **Atomicity.** `multi_put` and `clear_prefix` are one transaction each; `cas`,
//! `increment`, `clear_prefix` and `refresh_ttl` read and write inside one `BEGIN IMMEDIATE`
//! transaction (or one statement), so no other writer — in this process or another — slips
//! in between. `put` and `cas` clear the TTL; `increment` keeps it. Input is checked first,
//! so a refused call writes nothing.
//!
//! **Watch.** Events come from this store instance: each write is published to the in-process
//! hub after its commit succeeds, while the writer connection is still held, so watchers see
//! commit order. Writes made by another process, or another `SqliteStore` on the same file,
//! are not seen: `SQLite` has no change feed across connections. `refresh_ttl` publishes a
//! `Put` of the unchanged value, as the Cairn backend does; expiry is not an event.
//!
//! **Threads (measured).** `SQLite` calls block, so they run off the async workers: on a
//! multi-thread runtime through `tokio::task::block_in_place` (the worker hands its task queue
//! to another thread and runs the call itself, so the caller never waits for a wake-up), and
//! through `spawn_blocking` on a current-thread runtime, where `block_in_place` is not
//! allowed. Outside any runtime the call runs on the caller's thread.
//!
//! A throwaway timing program compared the ways, release build, this 2-vCPU machine (shared
//! with other work, so absolute figures are noisy), 10,000 keys, 100-byte values, WAL mode
//! with `synchronous=NORMAL`, 4,000 calls per round, all ways interleaved in 9 rounds; the
//! figures are the median round's p50 / mean, in µs:
//!
//! | path, per call | get | put |
//! |---|---|---|
//! | in memory: raw `rusqlite` | 1.51 / 1.61 | 2.20 / 2.30 |
//! | in memory: this store, through the trait | 1.69 / 1.78 | 2.44 / 2.54 |
//! | file: raw `rusqlite` | 4.75 / 4.87 | 7.39 / 7.53 |
//! | file: raw `rusqlite` inside `block_in_place` | 4.68 / 4.74 | 7.24 / 6.81 |
//! | file: this store, through the trait | 4.56 / 4.68 | 5.88 / 6.01 |
//! | file: `spawn_blocking` | 36.0 / 42.7 | 38.7 / 45.3 |
//! | file: one dedicated thread, channel + oneshot reply | 19.2 / 36.7 | 20.3 / 28.9 |
//! | file: `spawn_blocking` on a current-thread runtime | 20.3 / 31.6 | 20.2 / 22.9 |
//!
//! Over four runs the store's p50 stayed within 1.09-1.15x of raw `rusqlite` in memory and
//! within noise of it on a file (0.8-1.33x, mostly under 1.0x). `block_in_place` costs no
//! measurable latency; every way that hands the call to another thread pays one or two
//! wake-ups, 4 to 10 times the work itself. Running `SQLite` inline on the worker is no
//! faster and would stall every task on that worker whenever a commit checkpoints the WAL
//! (an fsync) or, with `synchronous=FULL`, on every commit.
//!
//! **Connections.** One writer behind a mutex (every write, in commit order) and, for a file,
//! a few read-only connections (one per CPU, at least 2, at most
//! [`READER_CONNECTIONS_MAX`]): in WAL mode readers never wait for the writer, and more
//! connections than cores would only duplicate page caches. An in-memory database lives in
//! one connection, so there the writer serves reads too.
//!
//! **Durability.** WAL mode. `synchronous=NORMAL` (the default) syncs at checkpoints: a
//! power loss may drop the last commits but never corrupts the file. `synchronous=FULL` syncs
//! every commit before it returns.
//!
//! **Closing.** [`SqliteStore::close`] stops the purge thread and closes the connections off
//! the runtime. Dropping the store does the same on the dropping thread: it joins the purge
//! thread (waiting at most for one batch) and closes the connections, which may checkpoint
//! the WAL; in async code prefer `close().await` for a file store.

mod connection;
mod purge;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
/// The `rusqlite` this backend is built on, so benchmarks compare against the same client.
pub use rusqlite;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use self::connection::{ConnectionSettings, Connections};
pub use self::purge::PURGE_BATCH_ROWS;
use self::purge::{PurgeCounters, Purger};
use crate::error::{KeyText, KvError, KvResult};
use crate::limits::CLEAR_PREFIX_KEYS_MAX;
use crate::scope::Scope;
use crate::store::{
    check_cas, check_entry, check_key, check_list_page, check_multi_len, check_prefix, ttl_millis,
    KeyValueStore, KvTtl, Page, StoreStats,
};
use crate::url::SqliteSynchronous;
use crate::watch::{KvWatcher, LocalHub, WatchTarget};

const BACKEND: &str = "sqlite";

/// Most read-only connections a file store opens.
pub const READER_CONNECTIONS_MAX: usize = 16;

/// Default time between background purges of expired rows.
pub const PURGE_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);

/// Default time a call waits for another process's lock before failing with `Unavailable`.
pub const BUSY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

// ----- SQL ---------------------------------------------------------------------------------------
//
// Parameters keep one numbering per statement family. "Live" is `expires_at_millis IS NULL OR
// expires_at_millis > now`: a row whose deadline has come is treated as absent everywhere.

const SQL_GET: &str = "SELECT value FROM kv WHERE key = ?1 \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?2)";
const SQL_GET_WITH_DEADLINE: &str = "SELECT value, expires_at_millis FROM kv WHERE key = ?1 \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?2)";
const SQL_EXISTS: &str = "SELECT 1 FROM kv WHERE key = ?1 \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?2)";
const SQL_DEADLINE: &str = "SELECT expires_at_millis FROM kv WHERE key = ?1 \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?2)";
const SQL_UPSERT: &str = "INSERT INTO kv (key, value, expires_at_millis) VALUES (?1, ?2, ?3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
     expires_at_millis = excluded.expires_at_millis";
// Deletes an expired row too (reclaiming it), but reports only whether the row was live.
const SQL_DELETE: &str = "DELETE FROM kv WHERE key = ?1 \
     RETURNING expires_at_millis IS NULL OR expires_at_millis > ?2";
const SQL_REFRESH: &str = "UPDATE kv SET expires_at_millis = ?3 WHERE key = ?1 \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?2)";
const SQL_REFRESH_RETURNING: &str = "UPDATE kv SET expires_at_millis = ?3 WHERE key = ?1 \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?2) RETURNING value";
const SQL_COUNT_ALL: &str = "SELECT count(*) FROM kv";

/// One statement over a prefix range, in two texts: with an upper bound, and without one
/// (`?2` is then bound to NULL, so both texts take the same parameters).
struct RangeSql {
    bounded: &'static str,
    unbounded: &'static str,
}

macro_rules! range_sql {
    ($head:literal, $tail:literal) => {
        RangeSql {
            bounded: concat!($head, " key >= ?1 AND key < ?2 ", $tail),
            unbounded: concat!($head, " key >= ?1 AND ?2 IS NULL ", $tail),
        }
    };
}

// ?1 lower, ?2 upper, ?3 now.
const SQL_LIST: RangeSql = range_sql!(
    "SELECT key FROM kv WHERE",
    "AND (expires_at_millis IS NULL OR expires_at_millis > ?3) ORDER BY key"
);
// ?1 lower, ?2 upper, ?3 now, ?4 the cursor (NULL: none), ?5 the most rows to return.
const SQL_LIST_PAGE: RangeSql = range_sql!(
    "SELECT key FROM kv WHERE",
    "AND (?4 IS NULL OR key > ?4) \
     AND (expires_at_millis IS NULL OR expires_at_millis > ?3) ORDER BY key LIMIT ?5"
);
// ?1 lower, ?2 upper, ?3 now, ?4 the most rows worth counting.
const SQL_COUNT: RangeSql = range_sql!(
    "SELECT count(*) FROM (SELECT 1 FROM kv WHERE",
    "AND (expires_at_millis IS NULL OR expires_at_millis > ?3) LIMIT ?4)"
);
// ?1 lower, ?2 upper, ?3 now. Expired rows in the range go too; only live keys come back.
const SQL_CLEAR: RangeSql = range_sql!(
    "DELETE FROM kv WHERE",
    "RETURNING key, expires_at_millis IS NULL OR expires_at_millis > ?3"
);

// ----- options -----------------------------------------------------------------------------------

/// How to open a [`SqliteStore`]: the file (or memory), durability, and tuning.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    path: Option<PathBuf>,
    synchronous: SqliteSynchronous,
    purge_interval: Duration,
    busy_timeout: Duration,
    reader_connections: usize,
}

impl SqliteOptions {
    /// A database file at `path` (created, with its parent directory, if missing).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: Some(path.into()),
            ..SqliteOptions::in_memory()
        }
    }

    /// A private in-memory database, gone when the store is dropped.
    pub fn in_memory() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        SqliteOptions {
            path: None,
            synchronous: SqliteSynchronous::Normal,
            purge_interval: PURGE_INTERVAL_DEFAULT,
            busy_timeout: BUSY_TIMEOUT_DEFAULT,
            reader_connections: cores.clamp(2, READER_CONNECTIONS_MAX),
        }
    }

    /// `synchronous=NORMAL` (the default) or `FULL`.
    #[must_use]
    pub fn synchronous(mut self, synchronous: SqliteSynchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Time between background purges of expired rows (at least 1 ms).
    #[must_use]
    pub fn purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long a call waits for another process's lock before `Unavailable`.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Read-only connections for a file store, 1 to [`READER_CONNECTIONS_MAX`] (an in-memory
    /// store has none: its one connection serves everything).
    #[must_use]
    pub fn reader_connections(mut self, count: usize) -> Self {
        self.reader_connections = count.clamp(1, READER_CONNECTIONS_MAX);
        self
    }
}

// ----- the store ---------------------------------------------------------------------------------

/// The `KeyValueStore` trait on a `SQLite` database. See the module docs.
pub struct SqliteStore {
    shared: Arc<Shared>,
    purger: Mutex<Option<Purger>>,
    path: Option<PathBuf>,
    synchronous: SqliteSynchronous,
}

/// What the store's calls, and its purge thread, share.
struct Shared {
    connections: Connections,
    hub: Arc<LocalHub>,
    purge: PurgeCounters,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, or an in-memory one for `None`, with the
    /// given `synchronous` level and default tuning.
    pub async fn open(path: Option<PathBuf>, synchronous: SqliteSynchronous) -> KvResult<Self> {
        let options = match path {
            Some(path) => SqliteOptions::file(path),
            None => SqliteOptions::in_memory(),
        };
        SqliteStore::open_with(options.synchronous(synchronous)).await
    }

    /// An in-memory store with default tuning.
    pub async fn in_memory() -> KvResult<Self> {
        SqliteStore::open_with(SqliteOptions::in_memory()).await
    }

    /// Opens a store with `options`. Opening touches the file, so it runs off the runtime.
    pub async fn open_with(options: SqliteOptions) -> KvResult<Self> {
        run_blocking(move || SqliteStore::open_blocking(options)).await
    }

    fn open_blocking(options: SqliteOptions) -> KvResult<Self> {
        let connections = Connections::open(&ConnectionSettings {
            path: options.path.as_deref(),
            synchronous: options.synchronous,
            busy_timeout: options.busy_timeout,
            reader_connections: options.reader_connections,
        })?;
        let shared = Arc::new(Shared {
            connections,
            hub: Arc::new(LocalHub::default()),
            purge: PurgeCounters::default(),
        });
        let purger = Purger::start(Arc::downgrade(&shared), options.purge_interval)?;
        Ok(SqliteStore {
            shared,
            purger: Mutex::new(Some(purger)),
            path: options.path,
            synchronous: options.synchronous,
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The `synchronous` level the store was opened with.
    pub fn synchronous(&self) -> SqliteSynchronous {
        self.synchronous
    }

    /// Deletes every expired row now, as the background purge does; returns how many.
    pub async fn purge_expired(&self) -> KvResult<u64> {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || shared.purge_expired(|| true)).await
    }

    /// Runs `work` on the writer connection, off the async runtime, for what the trait does
    /// not cover (a `PRAGMA`, a backup, an inspection). Writes made here are not watch
    /// events, and a transaction left open would block every later write: finish it.
    pub async fn with_connection<T, F>(&self, work: F) -> KvResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || {
            shared
                .connections
                .with_writer(|connection| work(connection).sql())
        })
        .await
    }

    /// Stops the purge thread and closes every connection (the last one checkpoints the
    /// WAL into the file). Later calls fail with [`KvError::Closed`]. Closing twice is fine.
    pub async fn close(&self) -> KvResult<()> {
        let purger = self.purger.lock().take();
        let shared = Arc::clone(&self.shared);
        // Watchers end once the store closes, after draining what they have queued.
        self.shared.hub.close();
        run_blocking(move || {
            drop(purger);
            shared.connections.close()
        })
        .await
    }

    /// Runs `work` on a reader connection, off the async runtime.
    async fn read<T, F>(&self, work: F) -> KvResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> KvResult<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || shared.connections.with_reader(work)).await
    }

    /// Runs `work` on the writer connection, off the async runtime. `work` publishes its
    /// events to the hub after its commit, before it returns, so the writer is still held.
    async fn write<T, F>(&self, work: F) -> KvResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &LocalHub) -> KvResult<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        run_blocking(move || {
            let hub = &shared.hub;
            shared
                .connections
                .with_writer(|connection| work(connection, hub))
        })
        .await
    }

    fn subscribe(&self, target: WatchTarget) -> KvWatcher {
        self.shared.hub.subscribe(target)
    }
}

impl Shared {
    fn purge_expired(&self, keep_going: impl Fn() -> bool) -> KvResult<u64> {
        purge::purge_expired(&self.connections, &self.purge, now_millis(), keep_going)
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("synchronous", &self.synchronous)
            .field(
                "reader_connections",
                &self.shared.connections.reader_count(),
            )
            .finish_non_exhaustive()
    }
}

// ----- helpers -----------------------------------------------------------------------------------

/// Runs blocking `SQLite` work without stalling an async worker; see the module docs for
/// the measurements behind the choice.
async fn run_blocking<T, F>(work: F) -> KvResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> KvResult<T> + Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        Ok(_) => tokio::task::spawn_blocking(work)
            .await
            .map_err(|join| KvError::backend(BACKEND, join))?,
        // No runtime: the caller's thread is ours to block.
        Err(_) => work(),
    }
}

/// Maps `rusqlite` errors: a lock held past the busy timeout is `Unavailable` (retry later),
/// anything else is `Backend`.
fn sqlite_error(error: rusqlite::Error) -> KvError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            KvError::unavailable(BACKEND, error)
        }
        _ => KvError::backend(BACKEND, error),
    }
}

/// `.sql()?` turns a `rusqlite` result into the trait's.
trait SqlResult<T> {
    fn sql(self) -> KvResult<T>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> KvResult<T> {
        self.map_err(sqlite_error)
    }
}

/// Milliseconds since the Unix epoch, by the system clock.
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The deadline `ttl` from now, in Unix milliseconds.
fn deadline_after(ttl: Duration) -> KvResult<i64> {
    let ttl = i64::try_from(ttl_millis(ttl)?).unwrap_or(i64::MAX);
    Ok(now_millis().saturating_add(ttl))
}

/// The least byte string greater than every string starting with `prefix`, or `None` when
/// there is none (`prefix` is empty or all `0xFF`).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last_kept = prefix.iter().rposition(|&byte| byte != u8::MAX)?;
    let mut upper = prefix.get(..=last_kept)?.to_vec();
    *upper.last_mut()? += 1;
    Some(upper)
}

/// A stored prefix as a half-open key range.
struct PrefixRange {
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
}

impl PrefixRange {
    fn new(scope: &Scope, prefix: &[u8]) -> Self {
        let lower = scope.stored_key(prefix);
        let upper = prefix_successor(&lower);
        PrefixRange { lower, upper }
    }

    fn sql(&self, sql: &RangeSql) -> &'static str {
        if self.upper.is_some() {
            sql.bounded
        } else {
            sql.unbounded
        }
    }
}

/// The caller's key inside a stored key, as a `rusqlite` error when a row is not in the
/// scope (a range query never returns one; this keeps a damaged file from causing a panic).
fn user_key(scope: &Scope, stored: &[u8]) -> rusqlite::Result<Vec<u8>> {
    scope.user_key(stored).map(<[u8]>::to_vec).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "a stored key outside the scope's range".into(),
        )
    })
}

fn upsert(
    connection: &Connection,
    stored: &[u8],
    value: &[u8],
    expires_at_millis: Option<i64>,
) -> KvResult<()> {
    connection
        .prepare_cached(SQL_UPSERT)
        .sql()?
        .execute(params![stored, value, expires_at_millis])
        .sql()?;
    Ok(())
}

fn live_value(connection: &Connection, stored: &[u8], now: i64) -> KvResult<Option<Vec<u8>>> {
    connection
        .prepare_cached(SQL_GET)
        .sql()?
        .query_row(params![stored, now], |row| row.get(0))
        .optional()
        .sql()
}

/// Counts the live keys of `range`, stopping at `limit + 1`: enough to tell "over the
/// limit" without counting a huge range to its end.
fn count_live(
    connection: &Connection,
    range: &PrefixRange,
    now: i64,
    limit: usize,
) -> KvResult<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let count: i64 = connection
        .prepare_cached(range.sql(&SQL_COUNT))
        .sql()?
        .query_row(params![range.lower, range.upper, now, limit], |row| {
            row.get(0)
        })
        .sql()?;
    Ok(u64::try_from(count).unwrap_or(0))
}

fn parse_integer(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

// ----- the trait ---------------------------------------------------------------------------------

impl KeyValueStore for SqliteStore {
    async fn get(&self, scope: &Scope, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        check_key(key)?;
        let stored = scope.stored_key(key);
        self.read(move |connection| live_value(connection, &stored, now_millis()))
            .await
    }

    async fn put(&self, scope: &Scope, key: &[u8], value: &[u8]) -> KvResult<()> {
        check_entry(key, value)?;
        let (stored, value) = (scope.stored_key(key), value.to_vec());
        self.write(move |connection, hub| {
            upsert(connection, &stored, &value, None)?;
            hub.publish(&stored, Some(&value));
            Ok(())
        })
        .await
    }

    async fn delete(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        let stored = scope.stored_key(key);
        self.write(move |connection, hub| {
            // Every row is read, so the statement runs to its end and its commit's outcome
            // is reported, not lost in a reset.
            let was_live = connection
                .prepare_cached(SQL_DELETE)
                .sql()?
                .query_map(params![stored, now_millis()], |row| row.get::<_, bool>(0))
                .sql()?
                .collect::<rusqlite::Result<Vec<bool>>>()
                .sql()?
                .contains(&true);
            if was_live {
                hub.publish(&stored, None);
            }
            Ok(was_live)
        })
        .await
    }

    async fn exists(&self, scope: &Scope, key: &[u8]) -> KvResult<bool> {
        check_key(key)?;
        let stored = scope.stored_key(key);
        self.read(move |connection| {
            connection
                .prepare_cached(SQL_EXISTS)
                .sql()?
                .exists(params![stored, now_millis()])
                .sql()
        })
        .await
    }

    async fn list(&self, scope: &Scope, prefix: &[u8]) -> KvResult<Vec<Vec<u8>>> {
        check_prefix(prefix)?;
        let range = PrefixRange::new(scope, prefix);
        let scope = scope.clone();
        self.read(move |connection| {
            let mut statement = connection.prepare_cached(range.sql(&SQL_LIST)).sql()?;
            let keys = statement
                .query_map(params![range.lower, range.upper, now_millis()], |row| {
                    user_key(&scope, row.get_ref(0)?.as_blob()?)
                })
                .sql()?
                .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
                .sql()?;
            Ok(keys)
        })
        .await
    }

    async fn list_page(
        &self,
        scope: &Scope,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> KvResult<Page> {
        check_list_page(prefix, start_after, limit)?;
        let range = PrefixRange::new(scope, prefix);
        let after = start_after.map(|after| scope.stored_key(after));
        let rows = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let scope = scope.clone();
        let keys = self
            .read(move |connection| {
                let mut statement = connection.prepare_cached(range.sql(&SQL_LIST_PAGE)).sql()?;
                let keys = statement
                    .query_map(
                        params![range.lower, range.upper, now_millis(), after, rows],
                        |row| user_key(&scope, row.get_ref(0)?.as_blob()?),
                    )
                    .sql()?
                    .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
                    .sql()?;
                Ok(keys)
            })
            .await?;
        Ok(Page::from_sorted(keys, limit))
    }

    async fn multi_get(&self, scope: &Scope, keys: &[&[u8]]) -> KvResult<Vec<Option<Vec<u8>>>> {
        check_multi_len(keys.len())?;
        for key in keys {
            check_key(key)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<Vec<u8>> = keys.iter().map(|key| scope.stored_key(key)).collect();
        self.read(move |connection| {
            // One read transaction: every value comes from the same commit.
            let transaction = connection.transaction().sql()?;
            let now = now_millis();
            let values = stored
                .iter()
                .map(|stored| live_value(&transaction, stored, now))
                .collect::<KvResult<Vec<_>>>()?;
            transaction.finish().sql()?;
            Ok(values)
        })
        .await
    }

    async fn multi_put(&self, scope: &Scope, entries: &[(&[u8], &[u8])]) -> KvResult<()> {
        check_multi_len(entries.len())?;
        for (key, value) in entries {
            check_entry(key, value)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let entries: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|(key, value)| (scope.stored_key(key), value.to_vec()))
            .collect();
        self.write(move |connection, hub| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .sql()?;
            for (stored, value) in &entries {
                upsert(&transaction, stored, value, None)?;
            }
            transaction.commit().sql()?;
            for (stored, value) in &entries {
                hub.publish(stored, Some(value));
            }
            Ok(())
        })
        .await
    }

    async fn put_with_ttl(
        &self,
        scope: &Scope,
        key: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> KvResult<()> {
        check_entry(key, value)?;
        let ttl_millis = ttl_millis(ttl)?;
        let (stored, value) = (scope.stored_key(key), value.to_vec());
        self.write(move |connection, hub| {
            let deadline = deadline_after(Duration::from_millis(ttl_millis))?;
            upsert(connection, &stored, &value, Some(deadline))?;
            hub.publish(&stored, Some(&value));
            Ok(())
        })
        .await
    }

    async fn refresh_ttl(&self, scope: &Scope, key: &[u8], ttl: Duration) -> KvResult<bool> {
        check_key(key)?;
        let ttl_millis = ttl_millis(ttl)?;
        let stored = scope.stored_key(key);
        self.write(move |connection, hub| {
            let now = now_millis();
            let deadline = deadline_after(Duration::from_millis(ttl_millis))?;
            if hub.is_idle() {
                let changed = connection
                    .prepare_cached(SQL_REFRESH)
                    .sql()?
                    .execute(params![stored, now, deadline])
                    .sql()?;
                return Ok(changed > 0);
            }
            let values = connection
                .prepare_cached(SQL_REFRESH_RETURNING)
                .sql()?
                .query_map(params![stored, now, deadline], |row| {
                    row.get::<_, Vec<u8>>(0)
                })
                .sql()?
                .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
                .sql()?;
            for value in &values {
                hub.publish(&stored, Some(value));
            }
            Ok(!values.is_empty())
        })
        .await
    }

    async fn get_ttl(&self, scope: &Scope, key: &[u8]) -> KvResult<KvTtl> {
        check_key(key)?;
        let stored = scope.stored_key(key);
        self.read(move |connection| {
            let now = now_millis();
            let deadline: Option<Option<i64>> = connection
                .prepare_cached(SQL_DEADLINE)
                .sql()?
                .query_row(params![stored, now], |row| row.get(0))
                .optional()
                .sql()?;
            Ok(match deadline {
                None => KvTtl::Absent,
                Some(None) => KvTtl::Persistent,
                Some(Some(deadline)) => {
                    let left = u64::try_from(deadline.saturating_sub(now)).unwrap_or(0);
                    KvTtl::Expires(Duration::from_millis(left))
                }
            })
        })
        .await
    }

    async fn cas(
        &self,
        scope: &Scope,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> KvResult<bool> {
        check_cas(key, expected, new)?;
        let stored = scope.stored_key(key);
        let (expected, new) = (expected.map(<[u8]>::to_vec), new.to_vec());
        self.write(move |connection, hub| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .sql()?;
            let current = live_value(&transaction, &stored, now_millis())?;
            if current != expected {
                // Dropping the transaction rolls it back; nothing was written.
                return Ok(false);
            }
            upsert(&transaction, &stored, &new, None)?;
            transaction.commit().sql()?;
            hub.publish(&stored, Some(&new));
            Ok(true)
        })
        .await
    }

    async fn increment(&self, scope: &Scope, key: &[u8], delta: i64) -> KvResult<i64> {
        check_key(key)?;
        let stored = scope.stored_key(key);
        let key_text = KeyText::new(key);
        self.write(move |connection, hub| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .sql()?;
            let current: Option<(Vec<u8>, Option<i64>)> = transaction
                .prepare_cached(SQL_GET_WITH_DEADLINE)
                .sql()?
                .query_row(params![stored, now_millis()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
                .sql()?;
            let (number, deadline) = match current {
                None => (0, None),
                Some((value, deadline)) => {
                    let number = parse_integer(&value).ok_or_else(|| KvError::NotAnInteger {
                        key: key_text.clone(),
                    })?;
                    (number, deadline)
                }
            };
            let next = number.checked_add(delta).ok_or_else(|| KvError::Overflow {
                key: key_text.clone(),
                delta: i128::from(delta),
            })?;
            let text = next.to_string();
            upsert(&transaction, &stored, text.as_bytes(), deadline)?;
            transaction.commit().sql()?;
            hub.publish(&stored, Some(text.as_bytes()));
            Ok(next)
        })
        .await
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
        let range = PrefixRange::new(scope, prefix);
        self.write(move |connection, hub| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .sql()?;
            let now = now_millis();
            let live = count_live(&transaction, &range, now, CLEAR_PREFIX_KEYS_MAX)?;
            if live > CLEAR_PREFIX_KEYS_MAX as u64 {
                return Err(KvError::InvalidArgument(format!(
                    "clear_prefix would delete more than {CLEAR_PREFIX_KEYS_MAX} keys; nothing \
                     was deleted"
                )));
            }
            if live == 0 {
                return Ok(0);
            }
            // Keys are copied out only for watchers; otherwise rows are just counted.
            let collect_keys = !hub.is_idle();
            let mut cleared = 0_u64;
            let mut cleared_keys = Vec::new();
            {
                let mut statement = transaction.prepare_cached(range.sql(&SQL_CLEAR)).sql()?;
                let mut rows = statement
                    .query(params![range.lower, range.upper, now])
                    .sql()?;
                // Read to the end, so the whole range is deleted before the commit.
                while let Some(row) = rows.next().sql()? {
                    if row.get::<_, bool>(1).sql()? {
                        cleared += 1;
                        if collect_keys {
                            cleared_keys.push(row.get::<_, Vec<u8>>(0).sql()?);
                        }
                    }
                }
            }
            transaction.commit().sql()?;
            for stored in &cleared_keys {
                hub.publish(stored, None);
            }
            Ok(cleared)
        })
        .await
    }

    async fn count_prefix(&self, scope: &Scope, prefix: &[u8]) -> KvResult<u64> {
        check_prefix(prefix)?;
        let range = PrefixRange::new(scope, prefix);
        self.read(move |connection| count_live(connection, &range, now_millis(), usize::MAX))
            .await
    }

    async fn stats(&self) -> KvResult<StoreStats> {
        let keys: i64 = self
            .read(|connection| {
                connection
                    .prepare_cached(SQL_COUNT_ALL)
                    .sql()?
                    .query_row([], |row| row.get(0))
                    .sql()
            })
            .await?;
        let counters = &self.shared.purge;
        Ok(StoreStats {
            backend: BACKEND,
            keys: u64::try_from(keys).unwrap_or(0),
            details: vec![
                (
                    "purged_rows".to_owned(),
                    counters.purged_rows.load(Ordering::Relaxed),
                ),
                (
                    "purge_rounds".to_owned(),
                    counters.rounds.load(Ordering::Relaxed),
                ),
                (
                    "purge_failed_rounds".to_owned(),
                    counters.failed_rounds.load(Ordering::Relaxed),
                ),
                ("watchers".to_owned(), self.shared.hub.watchers() as u64),
                (
                    "reader_connections".to_owned(),
                    self.shared.connections.reader_count() as u64,
                ),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_drops_trailing_ff_and_adds_one() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"a\xfe\xff\xff"), Some(b"a\xff".to_vec()));
        assert_eq!(prefix_successor(b"\x00"), Some(b"\x01".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn integers_parse_like_i64_from_str() {
        assert_eq!(parse_integer(b"42"), Some(42));
        assert_eq!(parse_integer(b"+7"), Some(7));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        for refused in [
            &b""[..],
            b" 1",
            b"1 ",
            b"1.0",
            b"0x10",
            b"9223372036854775808",
            b"\xff",
        ] {
            assert_eq!(parse_integer(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn range_texts_differ_only_in_the_upper_bound() {
        for sql in [&SQL_LIST, &SQL_COUNT, &SQL_CLEAR] {
            assert!(sql.bounded.contains("key < ?2"));
            assert!(sql.unbounded.contains("?2 IS NULL"));
            assert!(!sql.unbounded.contains("key <"));
            assert!(!sql.bounded.contains("LIKE") && !sql.bounded.contains("GLOB"));
        }
    }
}

//! The raw peers: each backend's own client used directly, the way a straightforward program
//! would, on the same keys and values as the trait's workloads.
//!
//! - `RawCairn`: the engine's `Db` (`get`, `put`, `delete`, `exists`, `multi_get`, one
//!   `WriteBatch` for `multi_put`, `scan_prefix` for a list).
//! - `RawSqlite`: rusqlite on one connection behind a mutex, in WAL mode with
//!   `synchronous=NORMAL` and the backend's table shape (`kv(key BLOB PRIMARY KEY, value BLOB
//!   NOT NULL, expires_at_millis INTEGER) WITHOUT ROWID`), with cached statements: a get by
//!   primary key, `INSERT OR REPLACE`, `DELETE`, one transaction for a batch, a key range for
//!   a list. It reads without an expiry filter: it is the floor, what the key-value calls
//!   cost without the trait's semantics on top.
//! - `RawRedis`: redis-rs on one multiplexed async connection: `GET`, `SET` (`PX` for a
//!   TTL), `DEL`, `EXISTS`, `MGET`, `MSET`, and a `SCAN ... MATCH` walk for a list.
//!
//! Each peer holds the stored keys (scope prefix, then the caller's key) formatted ahead of
//! time, so its figure has no key building in it; the trait's store builds the stored key on
//! every call, which is part of what the ratio shows. The clients are the ones `cairn-kv`
//! re-exports, so the peers and the backends run the same client versions.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn::{Db, WriteBatch};
use cairn_kv::backends::redis::redis;
use cairn_kv::backends::sqlite::rusqlite;
use cairn_kv::Scope;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use super::{counted, found_length, Result, WorkloadError};
use crate::keys::KeySet;

const RUSQLITE: &str = "rusqlite";
const REDIS_RS: &str = "redis-rs";

/// How long a raw Redis connection attempt may take.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Keys one `SCAN` call of a raw list is asked to look at (its `COUNT` hint).
pub const REDIS_SCAN_PAGE_KEYS: usize = 1_000;

/// The engine, used directly.
pub(crate) struct RawCairn {
    db: Db,
    keys: Arc<KeySet>,
    scope_prefix: Vec<u8>,
}

impl RawCairn {
    pub(crate) fn new(db: Db, scope: &Scope, keys: &KeySet) -> Self {
        RawCairn {
            db,
            keys: Arc::new(keys.prefixed(scope.key_prefix())),
            scope_prefix: scope.key_prefix().to_vec(),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Result<Option<usize>> {
        Ok(self.db.get(self.keys.get(index))?.map(found_length))
    }

    pub(crate) fn put(&self, index: usize, value: &[u8]) -> Result<()> {
        self.db.put(self.keys.get(index), value)?;
        Ok(())
    }

    pub(crate) fn put_with_ttl(&self, index: usize, value: &[u8], ttl: Duration) -> Result<()> {
        self.db.put_with_ttl(self.keys.get(index), value, ttl)?;
        Ok(())
    }

    pub(crate) fn delete(&self, index: usize) -> Result<bool> {
        Ok(self.db.delete(self.keys.get(index))?)
    }

    pub(crate) fn exists(&self, index: usize) -> Result<bool> {
        Ok(self.db.exists(self.keys.get(index))?)
    }

    pub(crate) fn multi_get(&self, indices: Range<usize>) -> Result<usize> {
        let keys: Vec<&[u8]> = indices.map(|index| self.keys.get(index)).collect();
        let values = self.db.multi_get(&keys)?;
        Ok(values.into_iter().flatten().map(found_length).count())
    }

    pub(crate) fn multi_put(&self, indices: Range<usize>, value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for index in indices {
            batch.put(self.keys.get(index), value);
        }
        self.db.write(&batch)?;
        Ok(())
    }

    pub(crate) fn list(&self, prefix: &[u8]) -> Result<usize> {
        let stored_prefix = [&self.scope_prefix[..], prefix].concat();
        let keys: Vec<Vec<u8>> = self
            .db
            .scan_prefix(&stored_prefix)?
            .map(|(key, _)| key[self.scope_prefix.len()..].to_vec())
            .collect();
        Ok(counted(keys))
    }
}

// The statements a program using rusqlite directly would write.
const RAW_SQLITE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, \
     value BLOB NOT NULL, expires_at_millis INTEGER) WITHOUT ROWID";
const RAW_SQLITE_GET: &str = "SELECT value FROM kv WHERE key = ?1";
const RAW_SQLITE_EXISTS: &str = "SELECT 1 FROM kv WHERE key = ?1";
const RAW_SQLITE_PUT: &str = "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)";
const RAW_SQLITE_PUT_WITH_TTL: &str =
    "INSERT OR REPLACE INTO kv (key, value, expires_at_millis) VALUES (?1, ?2, ?3)";
const RAW_SQLITE_DELETE: &str = "DELETE FROM kv WHERE key = ?1";
const RAW_SQLITE_LIST: &str = "SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";
const RAW_SQLITE_LIST_UNBOUNDED: &str = "SELECT key FROM kv WHERE key >= ?1 ORDER BY key";

/// `SQLite` through rusqlite, directly.
pub(crate) struct RawSqlite {
    connection: Mutex<Connection>,
    keys: Arc<KeySet>,
    scope_prefix: Vec<u8>,
}

impl RawSqlite {
    /// Opens (or creates) the database at `path`: WAL mode, `synchronous=NORMAL`, the table.
    pub(crate) fn open(path: &Path, scope: &Scope, keys: &KeySet) -> Result<Self> {
        let connection = Connection::open(path).map_err(sqlite_error)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(sqlite_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(WorkloadError::unexpected(
                "sqlite-raw",
                format!("journal_mode is {mode}, not wal"),
            ));
        }
        connection
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(sqlite_error)?;
        connection
            .execute_batch(RAW_SQLITE_SCHEMA)
            .map_err(sqlite_error)?;
        Ok(RawSqlite {
            connection: Mutex::new(connection),
            keys: Arc::new(keys.prefixed(scope.key_prefix())),
            scope_prefix: scope.key_prefix().to_vec(),
        })
    }

    pub(crate) fn get(&self, index: usize) -> Result<Option<usize>> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare_cached(RAW_SQLITE_GET)
            .map_err(sqlite_error)?;
        let value: Option<Vec<u8>> = statement
            .query_row(params![self.keys.get(index)], |row| row.get(0))
            .optional()
            .map_err(sqlite_error)?;
        Ok(value.map(found_length))
    }

    pub(crate) fn put(&self, index: usize, value: &[u8]) -> Result<()> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare_cached(RAW_SQLITE_PUT)
            .map_err(sqlite_error)?;
        statement
            .execute(params![self.keys.get(index), value])
            .map_err(sqlite_error)?;
        Ok(())
    }

    pub(crate) fn put_with_ttl(&self, index: usize, value: &[u8], ttl: Duration) -> Result<()> {
        let deadline_millis = unix_millis().saturating_add(ttl.as_millis());
        let deadline_millis = i64::try_from(deadline_millis).unwrap_or(i64::MAX);
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare_cached(RAW_SQLITE_PUT_WITH_TTL)
            .map_err(sqlite_error)?;
        statement
            .execute(params![self.keys.get(index), value, deadline_millis])
            .map_err(sqlite_error)?;
        Ok(())
    }

    pub(crate) fn delete(&self, index: usize) -> Result<bool> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare_cached(RAW_SQLITE_DELETE)
            .map_err(sqlite_error)?;
        let deleted = statement
            .execute(params![self.keys.get(index)])
            .map_err(sqlite_error)?;
        Ok(deleted == 1)
    }

    pub(crate) fn exists(&self, index: usize) -> Result<bool> {
        let connection = self.connection.lock();
        let mut statement = connection
            .prepare_cached(RAW_SQLITE_EXISTS)
            .map_err(sqlite_error)?;
        statement
            .exists(params![self.keys.get(index)])
            .map_err(sqlite_error)
    }

    /// One read transaction, one cached `SELECT` per key.
    pub(crate) fn multi_get(&self, indices: Range<usize>) -> Result<usize> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction().map_err(sqlite_error)?;
        let mut found = 0;
        {
            let mut statement = transaction
                .prepare_cached(RAW_SQLITE_GET)
                .map_err(sqlite_error)?;
            for index in indices {
                let value: Option<Vec<u8>> = statement
                    .query_row(params![self.keys.get(index)], |row| row.get(0))
                    .optional()
                    .map_err(sqlite_error)?;
                if let Some(value) = value {
                    found_length(value);
                    found += 1;
                }
            }
        }
        transaction.commit().map_err(sqlite_error)?;
        Ok(found)
    }

    /// One write transaction, one cached `INSERT OR REPLACE` per entry.
    pub(crate) fn multi_put(&self, indices: Range<usize>, value: &[u8]) -> Result<()> {
        let mut connection = self.connection.lock();
        let transaction = connection.transaction().map_err(sqlite_error)?;
        {
            let mut statement = transaction
                .prepare_cached(RAW_SQLITE_PUT)
                .map_err(sqlite_error)?;
            for index in indices {
                statement
                    .execute(params![self.keys.get(index), value])
                    .map_err(sqlite_error)?;
            }
        }
        transaction.commit().map_err(sqlite_error)
    }

    /// A key range on the primary key: `[prefix, successor(prefix))`.
    pub(crate) fn list(&self, prefix: &[u8]) -> Result<usize> {
        let lower = [&self.scope_prefix[..], prefix].concat();
        let upper = prefix_successor(&lower);
        let connection = self.connection.lock();
        let mut bounds: Vec<&dyn rusqlite::ToSql> = vec![&lower];
        let sql = if let Some(upper) = &upper {
            bounds.push(upper);
            RAW_SQLITE_LIST
        } else {
            RAW_SQLITE_LIST_UNBOUNDED
        };
        let mut statement = connection.prepare_cached(sql).map_err(sqlite_error)?;
        let scope_bytes = self.scope_prefix.len();
        let keys = statement
            .query_map(bounds.as_slice(), |row| {
                let key: Vec<u8> = row.get(0)?;
                Ok(key[scope_bytes.min(key.len())..].to_vec())
            })
            .map_err(sqlite_error)?
            .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
            .map_err(sqlite_error)?;
        Ok(counted(keys))
    }
}

fn sqlite_error(error: rusqlite::Error) -> WorkloadError {
    WorkloadError::client(RUSQLITE, error)
}

/// The smallest byte string greater than every string starting with `prefix`: drop trailing
/// `0xFF` bytes, then add one to the last; `None` when nothing is left (no upper bound).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut successor = prefix.to_vec();
    while let Some(last) = successor.pop() {
        if last < u8::MAX {
            successor.push(last + 1);
            return Some(successor);
        }
    }
    None
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// Redis through redis-rs, directly, on one multiplexed connection (cloned per call, as a
/// program sharing it between tasks does).
pub(crate) struct RawRedis {
    connection: redis::aio::MultiplexedConnection,
    keys: Arc<KeySet>,
    scope_prefix: Vec<u8>,
}

impl RawRedis {
    /// Connects inside the caller's runtime, which then drives the connection.
    pub(crate) async fn connect(url: &str, scope: &Scope, keys: &KeySet) -> Result<Self> {
        Ok(RawRedis {
            connection: connect_redis(url).await?,
            keys: Arc::new(keys.prefixed(scope.key_prefix())),
            scope_prefix: scope.key_prefix().to_vec(),
        })
    }

    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let mut connection = self.connection.clone();
        command
            .query_async(&mut connection)
            .await
            .map_err(redis_error)
    }

    pub(crate) async fn get(&self, index: usize) -> Result<Option<usize>> {
        let value: Option<Vec<u8>> = self
            .query(redis::cmd("GET").arg(self.keys.get(index)))
            .await?;
        Ok(value.map(found_length))
    }

    pub(crate) async fn put(&self, index: usize, value: &[u8]) -> Result<()> {
        self.query::<()>(redis::cmd("SET").arg(self.keys.get(index)).arg(value))
            .await
    }

    pub(crate) async fn put_with_ttl(
        &self,
        index: usize,
        value: &[u8],
        ttl: Duration,
    ) -> Result<()> {
        let ttl_millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.query::<()>(
            redis::cmd("SET")
                .arg(self.keys.get(index))
                .arg(value)
                .arg("PX")
                .arg(ttl_millis),
        )
        .await
    }

    pub(crate) async fn delete(&self, index: usize) -> Result<bool> {
        let deleted: u64 = self
            .query(redis::cmd("DEL").arg(self.keys.get(index)))
            .await?;
        Ok(deleted == 1)
    }

    pub(crate) async fn exists(&self, index: usize) -> Result<bool> {
        let present: u64 = self
            .query(redis::cmd("EXISTS").arg(self.keys.get(index)))
            .await?;
        Ok(present == 1)
    }

    pub(crate) async fn multi_get(&self, indices: Range<usize>) -> Result<usize> {
        let mut command = redis::cmd("MGET");
        for index in indices {
            command.arg(self.keys.get(index));
        }
        let values: Vec<Option<Vec<u8>>> = self.query(&command).await?;
        Ok(values.into_iter().flatten().map(found_length).count())
    }

    pub(crate) async fn multi_put(&self, indices: Range<usize>, value: &[u8]) -> Result<()> {
        let mut command = redis::cmd("MSET");
        for index in indices {
            command.arg(self.keys.get(index)).arg(value);
        }
        self.query::<()>(&command).await
    }

    /// A `SCAN ... MATCH` walk to the end, then a sort: Redis keeps no key order.
    pub(crate) async fn list(&self, prefix: &[u8]) -> Result<usize> {
        let stored_prefix = [&self.scope_prefix[..], prefix].concat();
        let mut connection = self.connection.clone();
        let mut keys = scan_keys(&mut connection, &stored_prefix).await?;
        for key in &mut keys {
            key.drain(..self.scope_prefix.len());
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(counted(keys))
    }
}

async fn connect_redis(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).map_err(redis_error)?;
    let config =
        redis::AsyncConnectionConfig::new().set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(redis_error)
}

/// Connects redis-rs to `url` and checks that the server answers `PING`.
pub(crate) async fn probe(url: &str) -> Result<()> {
    let mut connection = connect_redis(url).await?;
    let reply: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(redis_error)?;
    if reply == "PONG" {
        Ok(())
    } else {
        Err(WorkloadError::unexpected(
            "redis",
            format!("PING answered {reply:?}"),
        ))
    }
}

/// Every key starting with `stored_prefix`, by a `SCAN` walk (keys may repeat).
async fn scan_keys(
    connection: &mut redis::aio::MultiplexedConnection,
    stored_prefix: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let pattern = glob_pattern(stored_prefix);
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(REDIS_SCAN_PAGE_KEYS)
            .query_async(connection)
            .await
            .map_err(redis_error)?;
        keys.extend(
            page.into_iter()
                .filter(|key| key.starts_with(stored_prefix)),
        );
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// How many keys on the server at `url` start with `stored_prefix`.
#[cfg(test)]
pub(crate) async fn count_keys(url: &str, stored_prefix: &[u8]) -> Result<usize> {
    let mut connection = connect_redis(url).await?;
    let mut keys = scan_keys(&mut connection, stored_prefix).await?;
    keys.sort_unstable();
    keys.dedup();
    Ok(keys.len())
}

/// A `MATCH` pattern for keys starting with `prefix`: its glob characters escaped, then `*`.
fn glob_pattern(prefix: &[u8]) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 8);
    for &byte in prefix {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

fn redis_error(error: redis::RedisError) -> WorkloadError {
    WorkloadError::client(REDIS_RS, error)
}

/// Deletes a Redis fixture's keys (everything under its scope prefix) when dropped, so a run
/// against a long-lived server leaves nothing behind. Best effort: a server gone by then is
/// not an error of the benchmark. The work runs on a thread of its own, so a guard may be
/// dropped anywhere, inside a runtime or not.
#[derive(Debug)]
pub(crate) struct RedisScopeGuard(Option<RedisScope>);

/// A scope's keys on one server.
#[derive(Debug)]
struct RedisScope {
    url: String,
    scope_prefix: Vec<u8>,
}

/// How long dropping a Redis fixture may spend deleting its keys.
pub const REDIS_CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys deleted per `DEL` when a Redis fixture is dropped.
const REDIS_CLEANUP_BATCH_KEYS: usize = 1_000;

impl RedisScopeGuard {
    pub(crate) fn new(url: &str, scope_prefix: &[u8]) -> Self {
        RedisScopeGuard(Some(RedisScope {
            url: url.to_owned(),
            scope_prefix: scope_prefix.to_vec(),
        }))
    }
}

impl RedisScope {
    async fn delete_keys(&self) -> Result<()> {
        let mut connection = connect_redis(&self.url).await?;
        let keys = scan_keys(&mut connection, &self.scope_prefix).await?;
        for batch in keys.chunks(REDIS_CLEANUP_BATCH_KEYS) {
            let mut command = redis::cmd("DEL");
            for key in batch {
                command.arg(key);
            }
            command
                .query_async::<u64>(&mut connection)
                .await
                .map_err(redis_error)?;
        }
        Ok(())
    }
}

impl Drop for RedisScopeGuard {
    fn drop(&mut self) {
        let Some(scope) = self.0.take() else {
            return;
        };
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let _ = runtime.block_on(async {
                tokio::time::timeout(REDIS_CLEANUP_TIMEOUT, scope.delete_keys()).await
            });
        });
        let _ = cleanup.join();
    }
}

//! The connections a [`SqliteStore`](super::SqliteStore) holds, and how each is opened.
//!
//! One writer connection behind a mutex serialises every write of the store, so a
//! read-modify-write never waits on `SQLite`'s own lock inside the process, and watch events
//! can be published in commit order while the mutex is held. For a file database a few
//! read-only connections serve reads beside it: in WAL mode a reader sees the last commit
//! and never waits for the writer. An in-memory database is private to the connection that
//! opened it, so there the writer connection serves reads too.
//!
//! Opening also settles the file: WAL journal mode (refused if the file system cannot give
//! it), the `synchronous` level, a busy timeout for other processes' locks, and the schema,
//! which is created in an empty file and checked in any other. A file that belongs to another
//! program (a different `application_id`, or tables without ours) is refused, not altered.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{SqlResult, BACKEND};
use crate::error::{KvError, KvResult};
use crate::url::SqliteSynchronous;

/// `PRAGMA application_id` of a store file: "CAKV" in ASCII.
const APPLICATION_ID: i64 = 0x4341_4B56;

/// `PRAGMA user_version` of the schema below. Bump it, and migrate, when the schema changes.
const SCHEMA_VERSION: i64 = 1;

/// The schema. `WITHOUT ROWID` keeps each row in the primary-key B-tree, so a point read is
/// one B-tree descent and a prefix is one contiguous range. The partial index holds only rows
/// with a deadline, so a key without a TTL costs no index maintenance and the purge finds
/// expired rows without a scan.
const SCHEMA: &str = "
    CREATE TABLE kv (
        key BLOB PRIMARY KEY NOT NULL,
        value BLOB NOT NULL,
        expires_at_millis INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX kv_by_expiry ON kv (expires_at_millis) WHERE expires_at_millis IS NOT NULL;
";

/// Prepared statements each connection keeps; the store uses fewer than this many texts.
const STATEMENT_CACHE_CAPACITY: usize = 32;

/// What a store needs to open its connections.
#[derive(Clone, Debug)]
pub(super) struct ConnectionSettings<'path> {
    pub(super) path: Option<&'path Path>,
    pub(super) synchronous: SqliteSynchronous,
    pub(super) busy_timeout: Duration,
    pub(super) reader_connections: usize,
}

/// The writer and the readers. A `None` slot means the store was closed.
pub(super) struct Connections {
    writer: Mutex<Option<Connection>>,
    readers: Vec<Mutex<Option<Connection>>>,
    next_reader: AtomicUsize,
}

impl Connections {
    /// Opens the writer (creating or checking the schema), then the readers.
    pub(super) fn open(settings: &ConnectionSettings<'_>) -> KvResult<Connections> {
        let writer = open_writer(settings)?;
        let mut readers = Vec::new();
        if let Some(path) = settings.path {
            for _ in 0..settings.reader_connections {
                readers.push(Mutex::new(Some(open_reader(path, settings.busy_timeout)?)));
            }
        }
        Ok(Connections {
            writer: Mutex::new(Some(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// Runs `work` on the writer connection, holding it for the whole call.
    pub(super) fn with_writer<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> KvResult<T>,
    ) -> KvResult<T> {
        let mut writer = self.writer.lock();
        work(writer.as_mut().ok_or(KvError::Closed)?)
    }

    /// Runs `work` on a reader connection: the first free one, starting from a rotating
    /// position so load spreads; when all are busy, it waits for one. Without readers (an
    /// in-memory database) the writer serves.
    pub(super) fn with_reader<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> KvResult<T>,
    ) -> KvResult<T> {
        let count = self.readers.len();
        if count == 0 {
            return self.with_writer(work);
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % count;
        let free = (0..count)
            .map(|offset| (start + offset) % count)
            .find_map(|index| self.readers.get(index)?.try_lock());
        #[expect(
            clippy::indexing_slicing,
            reason = "`start` is below `count`, the readers' length"
        )]
        let mut reader = match free {
            Some(free) => free,
            None => self.readers[start].lock(),
        };
        work(reader.as_mut().ok_or(KvError::Closed)?)
    }

    /// How many read-only connections serve reads (0: the writer serves them).
    pub(super) fn reader_count(&self) -> usize {
        self.readers.len()
    }

    /// Closes every connection, waiting for calls in flight. Readers close first, so the
    /// writer is the last connection and `SQLite` checkpoints and removes the WAL file.
    /// Closing twice is not an error.
    pub(super) fn close(&self) -> KvResult<()> {
        let mut first_error = None;
        for reader in &self.readers {
            if let Some(connection) = reader.lock().take() {
                if let Err((_, error)) = connection.close() {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(connection) = self.writer.lock().take() {
            if let Err((_, error)) = connection.close() {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), |error| Err(super::sqlite_error(error)))
    }
}

/// Opens the read-write connection and prepares the file.
fn open_writer(settings: &ConnectionSettings<'_>) -> KvResult<Connection> {
    let mut connection = match settings.path {
        Some(path) => {
            create_parent_dir(path)?;
            // No `SQLITE_OPEN_URI`: a path is a path, never parsed as a `file:` URI.
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            Connection::open_with_flags(path, flags).sql()?
        }
        None => Connection::open_in_memory().sql()?,
    };
    connection.busy_timeout(settings.busy_timeout).sql()?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    if settings.path.is_some() {
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .sql()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(KvError::backend(
                BACKEND,
                format!("the file system refused WAL journal mode (got {mode:?})"),
            ));
        }
    }
    let synchronous = match settings.synchronous {
        SqliteSynchronous::Normal => "NORMAL",
        SqliteSynchronous::Full => "FULL",
    };
    connection
        .pragma_update(None, "synchronous", synchronous)
        .sql()?;
    prepare_schema(&mut connection)?;
    Ok(connection)
}

/// Opens one read-only connection to a file the writer has already prepared.
fn open_reader(path: &Path, busy_timeout: Duration) -> KvResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).sql()?;
    connection.busy_timeout(busy_timeout).sql()?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(connection)
}

fn create_parent_dir(path: &Path) -> KvResult<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => {
            std::fs::create_dir_all(parent).map_err(|error| KvError::backend(BACKEND, error))
        }
        _ => Ok(()),
    }
}

/// Creates the schema in an empty file, or checks that a used file holds this schema.
fn prepare_schema(connection: &mut Connection) -> KvResult<()> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .sql()?;
    let application_id: i64 = transaction
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .sql()?;
    let schema_version: i64 = transaction
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .sql()?;
    match (application_id, schema_version) {
        (APPLICATION_ID, SCHEMA_VERSION) => return Ok(()),
        (0, 0) => {
            let objects: i64 = transaction
                .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
                .sql()?;
            if objects != 0 {
                return Err(KvError::backend(
                    BACKEND,
                    "the file holds tables of another program; refusing to use it as a store",
                ));
            }
            transaction.execute_batch(SCHEMA).sql()?;
            transaction
                .pragma_update(None, "application_id", APPLICATION_ID)
                .sql()?;
            transaction
                .pragma_update(None, "user_version", SCHEMA_VERSION)
                .sql()?;
        }
        (APPLICATION_ID, other) => {
            return Err(KvError::backend(
                BACKEND,
                format!(
                    "the store file has schema version {other}; this build reads version \
                     {SCHEMA_VERSION}"
                ),
            ))
        }
        (other, _) => {
            return Err(KvError::backend(
                BACKEND,
                format!(
                    "the file's application_id is {other:#x}, not a key-value store's \
                     ({APPLICATION_ID:#x}); refusing to use it"
                ),
            ))
        }
    }
    transaction.commit().sql()
}

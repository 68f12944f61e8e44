//! SQLite as a peer: rusqlite (bundled SQLite) on a file in WAL mode, one table
//! `kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`.
//!
//! The connection layout is the one SQLite's own advice gives for a multi-threaded program:
//! one writer connection shared behind a mutex (SQLite admits one writer at a time anyway,
//! and a mutex hands the turn over faster than the busy handler's sleeps), and a reader
//! connection per session, so reads run in parallel with each other and with the writer.
//! Every statement is prepared once per connection (`prepare_cached`). Reads borrow the
//! value's bytes from SQLite's row instead of copying them.
//!
//! `Mode::Strict` is `synchronous=FULL` (every commit fsyncs the WAL), `Mode::Buffered` is
//! `synchronous=NORMAL` (commits reach the OS; the WAL is synced at checkpoints). A CAS is one
//! `UPDATE ... WHERE key = ? AND value = ?`; a transaction is `BEGIN IMMEDIATE`, a `SELECT`,
//! the writes, `COMMIT`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_kv::backends::sqlite::rusqlite;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    directory_bytes, missing_read_key, refuse_in_memory, touched, Engine, Label, Mode, Peer,
    Session,
};
use crate::workloads::durability::DataDir;
use crate::workloads::{Result, WorkloadError};

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) \
     WITHOUT ROWID";
const GET: &str = "SELECT value FROM kv WHERE key = ?1";
const PUT: &str = "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)";
const DELETE: &str = "DELETE FROM kv WHERE key = ?1";
const RANGE: &str = "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";
const CAS: &str = "UPDATE kv SET value = ?3 WHERE key = ?1 AND value = ?2";

/// How long a connection waits for a lock held by another before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A SQLite database file, its shared writer connection, and the directory it lives in.
pub struct SqlitePeer {
    mode: Mode,
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    dir: DataDir,
}

impl SqlitePeer {
    /// Creates a fresh database in `mode` (`Buffered` or `Strict`).
    pub fn open(mode: Mode) -> Result<Self> {
        refuse_in_memory("sqlite", mode)?;
        let dir = DataDir::create("peer-sqlite")?;
        let path = dir.path().join("peer.sqlite");
        let writer = connect(&path, mode)?;
        writer.execute_batch(SCHEMA).map_err(sqlite_error)?;
        Ok(SqlitePeer {
            mode,
            path,
            writer: Arc::new(Mutex::new(writer)),
            dir,
        })
    }
}

/// A connection to `path` in WAL mode with `mode`'s synchronous setting.
fn connect(path: &Path, mode: Mode) -> Result<Connection> {
    let connection = Connection::open(path).map_err(sqlite_error)?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(sqlite_error)?;
    let journal: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sqlite_error)?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(WorkloadError::unexpected(
            "sqlite",
            format!("journal_mode is {journal}, not wal"),
        ));
    }
    let synchronous = if mode == Mode::Strict {
        "FULL"
    } else {
        "NORMAL"
    };
    connection
        .execute_batch(&format!("PRAGMA synchronous = {synchronous}"))
        .map_err(sqlite_error)?;
    Ok(connection)
}

impl Peer for SqlitePeer {
    fn label(&self) -> Label {
        Label::new(Engine::Sqlite, self.mode)
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(SqliteSession {
            reader: connect(&self.path, self.mode)?,
            writer: Arc::clone(&self.writer),
        }))
    }

    fn disk_bytes(&self) -> Option<u64> {
        Some(directory_bytes(self.dir.path()))
    }

    fn settle(&self) -> Result<()> {
        // Move the WAL into the database file, as SQLite's automatic checkpoint would.
        self.writer
            .lock()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(sqlite_error)
    }
}

struct SqliteSession {
    reader: Connection,
    writer: Arc<Mutex<Connection>>,
}

impl SqliteSession {
    /// One `BEGIN IMMEDIATE` transaction on the writer: committed when `body` succeeds,
    /// rolled back (dropped) when it fails.
    fn write(&self, body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()>) -> Result<()> {
        let mut writer = self.writer.lock();
        let transaction = writer
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        body(&transaction)?;
        transaction.commit().map_err(sqlite_error)
    }
}

impl Session for SqliteSession {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        let mut statement = self.reader.prepare_cached(GET).map_err(sqlite_error)?;
        statement
            .query_row(params![key], |row| Ok(touched(row.get_ref(0)?.as_blob()?)))
            .optional()
            .map_err(sqlite_error)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let writer = self.writer.lock();
        let mut statement = writer.prepare_cached(PUT).map_err(sqlite_error)?;
        statement
            .execute(params![key, value])
            .map_err(sqlite_error)?;
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let writer = self.writer.lock();
        let mut statement = writer.prepare_cached(DELETE).map_err(sqlite_error)?;
        Ok(statement.execute(params![key]).map_err(sqlite_error)? > 0)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        self.write(|transaction| {
            let mut statement = transaction.prepare_cached(PUT).map_err(sqlite_error)?;
            for (key, value) in entries {
                statement
                    .execute(params![key, value])
                    .map_err(sqlite_error)?;
            }
            Ok(())
        })
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        let mut statement = self.reader.prepare_cached(RANGE).map_err(sqlite_error)?;
        let mut rows = statement.query(params![start, end]).map_err(sqlite_error)?;
        let mut count = 0;
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            let value = row
                .get_ref(1)
                .and_then(|value| Ok(value.as_blob()?))
                .map_err(sqlite_error)?;
            touched(value);
            count += 1;
        }
        Ok(count)
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        let writer = self.writer.lock();
        let mut statement = writer.prepare_cached(CAS).map_err(sqlite_error)?;
        let changed = statement
            .execute(params![key, expected, new])
            .map_err(sqlite_error)?;
        Ok(changed == 1)
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        self.write(|transaction| {
            let mut get = transaction.prepare_cached(GET).map_err(sqlite_error)?;
            let found = get
                .query_row(params![read_key], |row| {
                    Ok(touched(row.get_ref(0)?.as_blob()?))
                })
                .optional()
                .map_err(sqlite_error)?;
            let mut put = transaction.prepare_cached(PUT).map_err(sqlite_error)?;
            for key in write_keys {
                put.execute(params![key, value]).map_err(sqlite_error)?;
            }
            // Without its read key the transaction is dropped, rolled back, uncommitted.
            found.map(drop).ok_or_else(missing_read_key)
        })
    }
}

fn sqlite_error(error: rusqlite::Error) -> WorkloadError {
    WorkloadError::client("rusqlite", error)
}

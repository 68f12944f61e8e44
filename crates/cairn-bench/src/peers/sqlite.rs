//! SQLite as a peer: rusqlite (bundled) on a file in WAL mode, one `WITHOUT ROWID` table, laid
//! out as SQLite advises for a multi-threaded program: one writer connection behind a mutex
//! (faster than the busy handler's sleeps) and a reader connection per session, statements
//! prepared once. `Strict` is `synchronous=FULL`, `Buffered` `NORMAL`. A CAS is one conditional
//! `UPDATE`; a batch and a transaction are `BEGIN IMMEDIATE`, the statements, `COMMIT`.

use super::{on_files, read_key_found, touched, Mode, Session, Store};
use crate::workloads::{Result, WorkloadError};
use cairn_kv::backends::sqlite::rusqlite;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Params, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) \
     WITHOUT ROWID";
const GET: &str = "SELECT value FROM kv WHERE key = ?1";
const PUT: &str = "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)";
const DELETE: &str = "DELETE FROM kv WHERE key = ?1";
const RANGE: &str = "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";
const CAS: &str = "UPDATE kv SET value = ?3 WHERE key = ?1 AND value = ?2";

pub(super) struct Sqlite {
    mode: Mode,
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
}

impl Store for Sqlite {
    fn open(mode: Mode, dir: Option<&Path>) -> Result<Self> {
        let path = on_files(dir)?.join("peer.sqlite");
        let writer = connect(&path, mode)?;
        writer.execute_batch(SCHEMA)?;
        let writer = Arc::new(Mutex::new(writer));
        Ok(Sqlite { mode, path, writer })
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        let reader = connect(&self.path, self.mode)?;
        Ok(Box::new(SqliteSession {
            reader,
            writer: Arc::clone(&self.writer),
        }))
    }

    fn settle(&self, _: Mode) -> Result<()> {
        // Move the WAL into the database file, as SQLite's automatic checkpoint would.
        let writer = self.writer.lock();
        Ok(writer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?)
    }
}

fn connect(path: &Path, mode: Mode) -> Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    let journal = connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
        row.get::<_, String>(0)
    });
    let journal = journal?;
    if !journal.eq_ignore_ascii_case("wal") {
        let detail = format!("journal_mode is {journal}, not wal");
        return Err(WorkloadError::unexpected("sqlite", detail));
    }
    let strict = mode == Mode::Strict;
    let synchronous = if strict { "FULL" } else { "NORMAL" };
    let pragma = format!("PRAGMA synchronous = {synchronous}");
    connection.execute_batch(&pragma)?;
    Ok(connection)
}

/// A reader connection of the session's own (a connection is not `Sync`) and the writer.
struct SqliteSession {
    reader: Connection,
    writer: Arc<Mutex<Connection>>,
}

fn execute(connection: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    let mut statement = connection.prepare_cached(sql)?;
    Ok(statement.execute(params)?)
}

fn get(connection: &Connection, key: &[u8]) -> Result<Option<usize>> {
    let mut statement = connection.prepare_cached(GET)?;
    let value = statement.query_row(params![key], |row| Ok(touched(row.get_ref(0)?.as_blob()?)));
    Ok(value.optional()?)
}

impl SqliteSession {
    /// One `BEGIN IMMEDIATE` transaction on the writer, rolled back if `body` fails.
    fn write(&self, body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()>) -> Result<()> {
        let mut writer = self.writer.lock();
        let behavior = TransactionBehavior::Immediate;
        let transaction = writer.transaction_with_behavior(behavior)?;
        body(&transaction)?;
        Ok(transaction.commit()?)
    }
}

impl Session for SqliteSession {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        get(&self.reader, key)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        execute(&self.writer.lock(), PUT, params![key, value]).map(drop)
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        Ok(execute(&self.writer.lock(), DELETE, params![key])? > 0)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        self.write(|transaction| {
            let mut statement = transaction.prepare_cached(PUT)?;
            for (key, value) in entries {
                statement.execute(params![key, value])?;
            }
            Ok(())
        })
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        let mut statement = self.reader.prepare_cached(RANGE)?;
        let mut rows = statement.query(params![start, end])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            touched(row.get_ref(1).and_then(|value| Ok(value.as_blob()?))?);
            count += 1;
        }
        Ok(count)
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        Ok(execute(&self.writer.lock(), CAS, params![key, expected, new])? == 1)
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        self.write(|transaction| {
            let found = get(transaction, read_key)?;
            let mut put = transaction.prepare_cached(PUT)?;
            for key in write_keys {
                put.execute(params![key, value])?;
            }
            // Without its read key the transaction is dropped, rolled back, uncommitted.
            read_key_found(found.is_some())
        })
    }
}

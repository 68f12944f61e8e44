//! redb as a peer: one database file in a fresh directory, one table
//! `kv: TableDefinition<&[u8], &[u8]>`, used through redb's own transactions.
//!
//! A session is an `Arc` of the shared `Database` (redb's handle is `Sync`; its readers run
//! in parallel with each other and with the one writer redb admits at a time). Every call is
//! one redb transaction, as a program using redb directly would write it:
//! - a point read is `begin_read` + `open_table` + `get`, and the value's bytes are read;
//! - a put and a batch are one write transaction each, committed once;
//! - a range scan is one read transaction walking `table.range(start..end)`, reading values;
//! - a CAS is one write transaction that reads the key, compares, and then either writes and
//!   commits or aborts (redb admits one write transaction at a time, so the read and the write
//!   are atomic against every other writer);
//! - a read-write transaction is one write transaction: the read, the writes, one commit.
//!
//! Durability: `Mode::Strict` commits with `Durability::Immediate` (redb's default: the commit
//! is on disk when `commit` returns); `Mode::Buffered` commits with `Durability::None`, redb's
//! non-durable commit (crash-consistent, rolled back to the last durable commit on a crash).
//! redb 4 needs no periodic durable commit to keep the file from growing: a non-durable commit
//! frees the pages written by earlier non-durable commits itself. [`Peer::settle`] makes the
//! buffered commits durable with one empty `Durability::Immediate` commit, which is also what
//! lets redb reuse the pages the last durable commit held. `Mode::InMemory` is refused: Cairn
//! is the only in-memory embedded store measured.
//!
//! Configuration: redb's defaults throughout (`Database::create`: a 1 GiB page cache, 4 KiB
//! pages, one writer process). The benchmark tunes no peer beyond its documented defaults,
//! except the durability mode.

use std::sync::Arc;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction,
};

use super::{
    directory_bytes, missing_read_key, refuse_in_memory, touched, Engine, Label, Mode, Peer,
    Session,
};
use crate::workloads::durability::DataDir;
use crate::workloads::{Result, WorkloadError};

/// The one table every peer call uses.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A redb database file and the directory it lives in.
pub struct RedbPeer {
    mode: Mode,
    /// Declared before `dir`: the database closes before its directory is removed.
    database: Arc<Database>,
    dir: DataDir,
}

impl RedbPeer {
    /// Creates a fresh database in `mode` (`Buffered` or `Strict`).
    pub fn open(mode: Mode) -> Result<Self> {
        refuse_in_memory("redb", mode)?;
        let dir = DataDir::create("peer-redb")?;
        let database = Database::create(dir.path().join("peer.redb")).map_err(redb_error)?;
        // Create the table once, durably, so read transactions find it from the start.
        let transaction = begin_write(&database, Mode::Strict)?;
        drop(transaction.open_table(TABLE).map_err(redb_error)?);
        transaction.commit().map_err(redb_error)?;
        Ok(RedbPeer {
            mode,
            database: Arc::new(database),
            dir,
        })
    }
}

/// A write transaction committing with `mode`'s durability.
fn begin_write(database: &Database, mode: Mode) -> Result<WriteTransaction> {
    let mut transaction = database.begin_write().map_err(redb_error)?;
    let durability = if mode == Mode::Strict {
        Durability::Immediate
    } else {
        Durability::None
    };
    transaction.set_durability(durability).map_err(redb_error)?;
    Ok(transaction)
}

impl Peer for RedbPeer {
    fn label(&self) -> Label {
        Label::new(Engine::Redb, self.mode)
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(RedbSession {
            mode: self.mode,
            database: Arc::clone(&self.database),
        }))
    }

    fn disk_bytes(&self) -> Option<u64> {
        Some(directory_bytes(self.dir.path()))
    }

    fn settle(&self) -> Result<()> {
        if self.mode == Mode::Strict {
            // Every commit is already durable.
            return Ok(());
        }
        // An empty durable commit makes every earlier non-durable commit durable.
        begin_write(&self.database, Mode::Strict)?
            .commit()
            .map_err(redb_error)
    }
}

struct RedbSession {
    mode: Mode,
    database: Arc<Database>,
}

impl RedbSession {
    /// One write transaction: `change` edits the table and says whether to commit (true) or
    /// abort (false); returns what it returned.
    fn write<T>(
        &self,
        change: impl FnOnce(&mut Table<'_, &'static [u8], &'static [u8]>) -> Result<(T, bool)>,
    ) -> Result<T> {
        let transaction = begin_write(&self.database, self.mode)?;
        let (result, commit) = change(&mut transaction.open_table(TABLE).map_err(redb_error)?)?;
        if commit {
            transaction.commit().map_err(redb_error)?;
        } else {
            transaction.abort().map_err(redb_error)?;
        }
        Ok(result)
    }
}

impl Session for RedbSession {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        let transaction = self.database.begin_read().map_err(redb_error)?;
        let table = transaction.open_table(TABLE).map_err(redb_error)?;
        let value = table.get(key).map_err(redb_error)?;
        Ok(value.map(|value| touched(value.value())))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(|table| {
            table.insert(key, value).map_err(redb_error)?;
            Ok(((), true))
        })
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        self.write(|table| {
            let removed = table.remove(key).map_err(redb_error)?.is_some();
            Ok((removed, true))
        })
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        self.write(|table| {
            for (key, value) in entries {
                table.insert(*key, *value).map_err(redb_error)?;
            }
            Ok(((), true))
        })
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        let transaction = self.database.begin_read().map_err(redb_error)?;
        let table = transaction.open_table(TABLE).map_err(redb_error)?;
        let mut count = 0;
        for entry in table.range(start..end).map_err(redb_error)? {
            let (_, value) = entry.map_err(redb_error)?;
            touched(value.value());
            count += 1;
        }
        Ok(count)
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        self.write(|table| {
            let current = table.get(key).map_err(redb_error)?;
            let matches = current.is_some_and(|current| current.value() == expected);
            if matches {
                table.insert(key, new).map_err(redb_error)?;
            }
            // A CAS that does not swap aborts: it writes nothing.
            Ok((matches, matches))
        })
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        let found = self.write(|table| {
            let current = table.get(read_key).map_err(redb_error)?;
            let found = current.map(|current| touched(current.value())).is_some();
            if found {
                for key in write_keys {
                    table.insert(*key, value).map_err(redb_error)?;
                }
            }
            Ok((found, found))
        })?;
        if found {
            Ok(())
        } else {
            Err(missing_read_key())
        }
    }
}

/// A redb error of any kind (redb has one per call family).
fn redb_error(error: impl Into<redb::Error>) -> WorkloadError {
    WorkloadError::client("redb", error.into())
}

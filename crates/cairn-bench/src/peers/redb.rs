//! redb as a peer: one file, one table `kv`, redb's defaults otherwise. Every call is one redb
//! transaction (a CAS that does not swap aborts); redb admits one writer at a time, so a CAS is
//! atomic. `Strict` commits with `Durability::Immediate`, `Buffered` with `Durability::None`
//! (crash-consistent; redb 4 frees earlier non-durable commits' pages itself); settling is one
//! empty `Immediate` commit.

use super::{on_files, read_key_found, touched, Mode, Session, Store};
use crate::workloads::Result;
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, Table};
use redb::{TableDefinition, WriteTransaction};
use std::path::Path;
use std::sync::Arc;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

type KvTable<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

#[derive(Clone)]
pub(super) struct Redb {
    mode: Mode,
    database: Arc<Database>,
}

impl Store for Redb {
    fn open(mode: Mode, dir: Option<&Path>) -> Result<Self> {
        let database = Database::create(on_files(dir)?.join("peer.redb"))?;
        let redb = Redb {
            mode,
            database: Arc::new(database),
        };
        // Create the table once, durably, so read transactions find it from the start.
        let transaction = redb.begin_write(Mode::Strict)?;
        drop(transaction.open_table(TABLE)?);
        transaction.commit()?;
        Ok(redb)
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(self.clone()))
    }

    fn settle(&self, mode: Mode) -> Result<()> {
        // Strict commits are durable already.
        if mode != Mode::Strict {
            self.begin_write(Mode::Strict)?.commit()?;
        }
        Ok(())
    }
}

impl Redb {
    fn begin_write(&self, mode: Mode) -> Result<WriteTransaction> {
        let mut transaction = self.database.begin_write()?;
        let durability = match mode {
            Mode::Strict => Durability::Immediate,
            _ => Durability::None,
        };
        transaction.set_durability(durability)?;
        Ok(transaction)
    }

    /// One write transaction, committed if `change` returns true, aborted if false.
    fn write(&self, change: impl FnOnce(&mut KvTable<'_>) -> Result<bool>) -> Result<bool> {
        let transaction = self.begin_write(self.mode)?;
        let commit = change(&mut transaction.open_table(TABLE)?)?;
        if commit {
            transaction.commit()?;
        } else {
            transaction.abort()?;
        }
        Ok(commit)
    }

    fn read(&self) -> Result<ReadOnlyTable<&'static [u8], &'static [u8]>> {
        let transaction = self.database.begin_read()?;
        Ok(transaction.open_table(TABLE)?)
    }
}

fn insert<'a>(
    table: &mut KvTable<'_>,
    entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<bool> {
    for (key, value) in entries {
        table.insert(key, value)?;
    }
    Ok(true)
}

impl Session for Redb {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        // The table (and its read transaction) must outlive the value's guard: a guard kept
        // past its transaction pins a page a concurrent commit may free (redb's debug builds
        // assert on it, which the CAS race test hit).
        let table = self.read()?;
        let value = table.get(key)?;
        Ok(value.map(|value| touched(value.value())))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(|table| insert(table, [(key, value)])).map(drop)
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let mut removed = false;
        self.write(|table| {
            removed = table.remove(key)?.is_some();
            Ok(true)
        })?;
        Ok(removed)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        self.write(|table| insert(table, entries.iter().copied()))
            .map(drop)
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        let mut count = 0;
        for entry in self.read()?.range(start..end)? {
            touched(entry?.1.value());
            count += 1;
        }
        Ok(count)
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        self.write(|table| {
            let current = table.get(key)?;
            let swaps = current.is_some_and(|current| current.value() == expected);
            Ok(swaps && insert(table, [(key, new)])?)
        })
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        let found = self.write(|table| {
            let current = table.get(read_key)?;
            let found = current.map(|current| touched(current.value())).is_some();
            Ok(found && insert(table, write_keys.iter().map(|key| (*key, value)))?)
        })?;
        read_key_found(found)
    }
}

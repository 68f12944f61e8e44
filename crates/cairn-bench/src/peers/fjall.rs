//! fjall as a peer: a plain `Database` with one keyspace, fjall's defaults otherwise; scans walk
//! a `Snapshot`. A plain keyspace has no read-modify-write, so every write takes one writer
//! mutex per peer, under which a CAS or a transaction reads and writes atomically (fjall
//! serializes writers on its journal anyway; this measured cheaper than its transactional
//! database). `Strict` commits batches with `SyncData`; `Buffered` is fjall's default.

use super::{on_files, read_key_found, touch_all, touched, Mode, Session, Store};
use crate::workloads::{Result, WorkloadError};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode, Readable};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub(super) struct Fjall {
    mode: Mode,
    database: Database,
    keyspace: Keyspace,
    /// Taken by every write, so that a CAS or a transaction reads and writes atomically.
    writer: Arc<Mutex<()>>,
}

impl Store for Fjall {
    fn open(mode: Mode, dir: Option<&Path>) -> Result<Self> {
        let database = Database::builder(on_files(dir)?).open()?;
        let keyspace = database.keyspace("kv", KeyspaceCreateOptions::default);
        let keyspace = keyspace?;
        let writer = Arc::new(Mutex::new(()));
        Ok(Fjall {
            mode,
            database,
            keyspace,
            writer,
        })
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(self.clone()))
    }

    /// Persists the journal, then waits (up to 30 s) for fjall's flushes and compactions to end.
    fn settle(&self, _: Mode) -> Result<()> {
        let database = &self.database;
        database.persist(PersistMode::SyncData)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet_polls = 0;
        while quiet_polls < 2 && Instant::now() < deadline {
            let quiet = database.outstanding_flushes() == 0 && database.active_compactions() == 0;
            quiet_polls = if quiet { quiet_polls + 1 } else { 0 };
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

impl Fjall {
    fn batch(&self) -> OwnedWriteBatch {
        let batch = self.database.batch();
        match self.mode {
            Mode::Strict => batch.durability(Some(PersistMode::SyncData)),
            _ => batch,
        }
    }

    /// Writes `entries` in one atomic commit. The caller holds the writer mutex.
    fn commit<'a>(
        &self,
        entries: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<()> {
        let mut entries = entries;
        if self.mode == Mode::Buffered && entries.len() == 1 {
            if let Some((key, value)) = entries.next() {
                return Ok(self.keyspace.insert(key, value)?);
            }
        }
        let mut batch = self.batch();
        for (key, value) in entries {
            batch.insert(&self.keyspace, key, value);
        }
        Ok(batch.commit()?)
    }
}

impl Session for Fjall {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.keyspace.get(key)?.as_deref().map(touched))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let _writer = self.writer.lock();
        self.commit(std::iter::once((key, value)))
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        let _writer = self.writer.lock();
        let existed = self.keyspace.contains_key(key)?;
        let mut batch = self.batch();
        batch.remove(&self.keyspace, key);
        batch.commit()?;
        Ok(existed)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        let _writer = self.writer.lock();
        self.commit(entries.iter().copied())
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        let snapshot = self.database.snapshot();
        let entries = snapshot.range(&self.keyspace, start..end);
        touch_all(entries.map(|entry| entry.value().map_err(WorkloadError::from)))
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        let snapshot = self.database.snapshot();
        let entries = snapshot.prefix(&self.keyspace, prefix);
        touch_all(entries.map(|entry| entry.value().map_err(WorkloadError::from)))
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        let _writer = self.writer.lock();
        let current = self.keyspace.get(key)?;
        let swaps = current.as_deref() == Some(expected);
        if swaps {
            self.commit(std::iter::once((key, new)))?;
        }
        Ok(swaps)
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        let _writer = self.writer.lock();
        let found = self.keyspace.get(read_key)?;
        read_key_found(found.as_deref().map(touched).is_some())?;
        self.commit(write_keys.iter().map(|key| (*key, value)))
    }
}

//! Cairn's engine as a peer: `cairn::Db` in any durability mode, used directly.
//!
//! A session is a clone of the `Db` (one `Arc`). Reads are `get` and `scan_prefix`/`range`,
//! writes `put` and one `WriteBatch`, a CAS is `compare_and_swap` on the value, a transaction
//! is `Db::transaction` (snapshot isolation, retried on conflict). The maintenance thread is
//! off, as in every other Cairn workload, so no checkpoint lands inside a measurement.

use std::time::Duration;

use cairn::{CasOutcome, Db, Durability, Expected, WriteBatch};

use super::{
    directory_bytes, missing_read_key, touched, Engine, Feature, Label, Mode, Peer, Session,
};
use crate::workloads::durability::{bench_options, DataDir};
use crate::workloads::Result;

/// A Cairn database and the directory it lives in (none in memory).
pub struct CairnPeer {
    mode: Mode,
    db: Db,
    dir: Option<DataDir>,
}

impl CairnPeer {
    /// Opens a fresh database in `mode`.
    pub fn open(mode: Mode) -> Result<Self> {
        let (db, dir) = open_db(mode, "peer-cairn")?;
        Ok(CairnPeer { mode, db, dir })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// A fresh database in `mode`, in a new directory named after `label` unless in memory.
pub(crate) fn open_db(mode: Mode, label: &str) -> Result<(Db, Option<DataDir>)> {
    let (durability, dir) = match mode {
        Mode::InMemory => (Durability::InMemory, None),
        Mode::Buffered => (Durability::buffered(), Some(DataDir::create(label)?)),
        Mode::Strict => (Durability::Strict, Some(DataDir::create(label)?)),
    };
    let db = Db::open(bench_options(durability, dir.as_ref().map(DataDir::path)))?;
    Ok((db, dir))
}

impl Drop for CairnPeer {
    fn drop(&mut self) {
        // Close before the directory goes; a failure here has nothing left to lose.
        let _ = self.db.close();
    }
}

impl Peer for CairnPeer {
    fn label(&self) -> Label {
        Label::new(Engine::Cairn, self.mode)
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(CairnSession {
            db: self.db.clone(),
        }))
    }

    fn supports(&self, feature: Feature) -> bool {
        match feature {
            Feature::Ttl | Feature::OrderedScan | Feature::Transactions => true,
        }
    }

    fn disk_bytes(&self) -> Option<u64> {
        self.dir.as_ref().map(|dir| directory_bytes(dir.path()))
    }

    fn commits_per_sync(&self) -> Option<f64> {
        let stats = self.db.stats();
        (self.mode == Mode::Strict && stats.wal_syncs > 0).then(|| {
            crate::measure::count_as_f64(stats.wal_frames)
                / crate::measure::count_as_f64(stats.wal_syncs)
        })
    }

    fn settle(&self) -> Result<()> {
        if self.mode != Mode::InMemory {
            self.db.sync()?;
        }
        Ok(())
    }
}

struct CairnSession {
    db: Db,
}

impl Session for CairnSession {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.db.get(key)?.map(|value| touched(value.as_bytes())))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.put(key, value)?;
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.db.delete(key)?)
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        Ok(self.db.exists(key)?)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (key, value) in entries {
            batch.put(key, value);
        }
        self.db.write(&batch)?;
        Ok(())
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        Ok(self.db.range(start..end)?.fold(0, |count, (_, value)| {
            touched(value.as_bytes());
            count + 1
        }))
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        Ok(self.db.scan_prefix(prefix)?.fold(0, |count, (_, value)| {
            touched(value.as_bytes());
            count + 1
        }))
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        Ok(matches!(
            self.db
                .compare_and_swap(key, Expected::Value(expected), Some(new))?,
            CasOutcome::Swapped(_)
        ))
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        let found = self.db.transaction(|transaction| {
            let found = transaction
                .get(read_key)?
                .map(|value| touched(value.as_bytes()));
            // Without its read key the transaction fails below, so it writes nothing.
            if found.is_some() {
                for key in write_keys {
                    transaction.put(key, value)?;
                }
            }
            Ok(found)
        })?;
        match found {
            Some(_) => Ok(()),
            None => Err(missing_read_key()),
        }
    }

    fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        self.db.put_with_ttl(key, value, ttl)?;
        Ok(())
    }
}

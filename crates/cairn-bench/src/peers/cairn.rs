//! Cairn's engine as a peer: `cairn::Db` in any durability mode, a session a clone of it. A CAS
//! is `compare_and_swap` on the value, a transaction `Db::transaction` (snapshot isolation).

use super::{read_key_found, touch_all, touched, Mode, Session, Store};
use crate::measure::count_as_f64;
use crate::workloads::durability::bench_options;
use crate::workloads::Result;
use cairn::{CasOutcome, Db, Durability, Expected, WriteBatch};
use std::path::Path;
use std::time::Duration;

impl Store for Db {
    fn open(mode: Mode, dir: Option<&Path>) -> Result<Self> {
        let durability = match mode {
            Mode::InMemory => Durability::InMemory,
            Mode::Buffered => Durability::buffered(),
            Mode::Strict => Durability::Strict,
        };
        Ok(Db::open(bench_options(durability, dir))?)
    }

    fn session(&self) -> Result<Box<dyn Session>> {
        Ok(Box::new(self.clone()))
    }

    fn settle(&self, mode: Mode) -> Result<()> {
        if mode != Mode::InMemory {
            self.sync()?;
        }
        Ok(())
    }

    fn commits_per_sync(&self, mode: Mode) -> Option<f64> {
        let stats = self.stats();
        let per_sync = || count_as_f64(stats.wal_frames) / count_as_f64(stats.wal_syncs);
        (mode == Mode::Strict && stats.wal_syncs > 0).then(per_sync)
    }

    fn close(&self) {
        // A failure here has nothing left to lose.
        let _ = Db::close(self);
    }
}

impl Session for Db {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(Db::get(self, key)?.map(|value| touched(value.as_bytes())))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(Db::put(self, key, value).map(drop)?)
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool> {
        Ok(Db::delete(self, key)?)
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        Ok(Db::exists(self, key)?)
    }

    fn put_batch(&mut self, entries: &[(&[u8], &[u8])]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (key, value) in entries {
            batch.put(key, value);
        }
        Ok(self.write(&batch).map(drop)?)
    }

    fn scan_range(&mut self, start: &[u8], end: &[u8]) -> Result<usize> {
        touch_all(self.range(start..end)?.map(|(_, value)| Ok(value)))
    }

    fn scan_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        touch_all(Db::scan_prefix(self, prefix)?.map(|(_, value)| Ok(value)))
    }

    fn compare_and_swap(&mut self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<bool> {
        let outcome = Db::compare_and_swap(self, key, Expected::Value(expected), Some(new))?;
        Ok(matches!(outcome, CasOutcome::Swapped(_)))
    }

    fn transaction(&mut self, read_key: &[u8], write_keys: &[&[u8]], value: &[u8]) -> Result<()> {
        let found = Db::transaction(self, |transaction| {
            let found = transaction.get(read_key)?;
            let found = found.map(|value| touched(value.as_bytes()));
            // Without its read key the transaction fails below, so it writes nothing.
            if found.is_some() {
                for key in write_keys {
                    transaction.put(key, value)?;
                }
            }
            Ok(found.is_some())
        })?;
        read_key_found(found)
    }

    fn put_with_ttl(&mut self, key: &[u8], value: &[u8], ttl: Duration) -> Result<()> {
        Ok(Db::put_with_ttl(self, key, value, ttl).map(drop)?)
    }
}

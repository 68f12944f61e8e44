//! Bulk workloads: 1000 sequential single-key operations per run, measured as throughput.
//!
//! "Sequential" means one after another on one thread, over the keys `key_at(0) ..
//! key_at(999)` in order: the figure is how many independent puts or gets a single caller can
//! issue per second when it has a batch of work. Each put is still its own commit (an atomic
//! multi-key commit is `Db::write`, a different workload).

use std::sync::Arc;

use cairn::Db;

use super::{require_keys, Fixture, Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet};

/// Operations in one bulk run.
pub const BULK_OPS: usize = 1_000;

/// 1000 `put`s over the first 1000 keys, in key order, each overwriting.
#[derive(Debug)]
pub struct BulkPut {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
}

impl BulkPut {
    /// Overwrites the first [`BULK_OPS`] keys of `fixture` with values as long as its own.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("bulk_put", fixture, BULK_OPS)?;
        Ok(BulkPut {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
        })
    }
}

impl Workload for BulkPut {
    fn run_op(&mut self) -> Result<()> {
        for index in 0..BULK_OPS {
            self.db.put(self.keys.get(index), &self.value)?;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_OPS as u64
    }
}

/// 1000 `get`s over the first 1000 keys, in key order, each finding its value.
#[derive(Debug)]
pub struct BulkGet {
    db: Db,
    keys: Arc<KeySet>,
}

impl BulkGet {
    /// Reads the first [`BULK_OPS`] keys of `fixture`; shares the fixture, writes nothing.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("bulk_get", fixture, BULK_OPS)?;
        Ok(BulkGet {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
        })
    }
}

impl Workload for BulkGet {
    fn run_op(&mut self) -> Result<()> {
        let mut found = 0;
        for index in 0..BULK_OPS {
            if let Some(value) = self.db.get(self.keys.get(index))? {
                std::hint::black_box(value);
                found += 1;
            }
        }
        if found == BULK_OPS {
            Ok(())
        } else {
            Err(WorkloadError::unexpected(
                "bulk_get",
                format!("found {found} of {BULK_OPS} keys"),
            ))
        }
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_OPS as u64
    }
}

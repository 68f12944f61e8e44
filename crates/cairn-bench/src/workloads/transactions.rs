//! Transaction commits, and the commit that loses a write-write conflict.
//!
//! Each committing workload runs a whole transaction per operation: `begin`, its reads and
//! buffered writes, and `commit`, on random keys of a filled database with no other writer, so
//! every commit succeeds and the figure is the cost of the transaction machinery itself
//! (reader registration, the write buffer, validation under the commit lock, publication).
//!
//! [`ConflictingCommit`] measures the other outcome: `prepare` begins transactions that each
//! buffer a put, then overwrites their keys outside them (all untimed); the timed operation is
//! the `commit` that finds the newer version and fails with `Conflict`.

use std::sync::Arc;

use cairn::{Db, Transaction};

use super::{require_keys, Fixture, Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};

/// A transaction that puts `keys_per_transaction` consecutive keys (from a random start) and
/// commits. With one key this is the `single_key_put` workload.
#[derive(Debug)]
pub struct MultiKeyPut {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    keys_per_transaction: usize,
    random: SplitMix64,
}

impl MultiKeyPut {
    /// Commits transactions of `keys_per_transaction` puts to keys of `fixture` (which it then
    /// owns).
    pub fn new(fixture: &Fixture, keys_per_transaction: usize) -> Result<Self> {
        let keys_per_transaction = keys_per_transaction.max(1);
        require_keys("multi_key_put", fixture.key_count(), keys_per_transaction)?;
        Ok(MultiKeyPut {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
            keys_per_transaction,
            random: SplitMix64::new(0x0074_786D),
        })
    }
}

impl Workload for MultiKeyPut {
    fn run_op(&mut self) -> Result<()> {
        let first = self
            .random
            .below(self.keys.len() - self.keys_per_transaction + 1);
        let mut transaction = self.db.begin();
        for index in first..first + self.keys_per_transaction {
            transaction.put(self.keys.get(index), &self.value)?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.keys_per_transaction as u64
    }
}

/// A transaction that reads a random key, changes one byte of its value, writes it back and
/// commits.
#[derive(Debug)]
pub struct ReadModifyWrite {
    db: Db,
    keys: Arc<KeySet>,
    scratch: Vec<u8>,
    random: SplitMix64,
}

impl ReadModifyWrite {
    /// Rewrites random keys of `fixture` (which it then owns).
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("read_modify_write", fixture.key_count(), 1)?;
        Ok(ReadModifyWrite {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            scratch: Vec::with_capacity(fixture.value_bytes),
            random: SplitMix64::new(0x0072_6D77),
        })
    }
}

impl Workload for ReadModifyWrite {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        let mut transaction = self.db.begin();
        let Some(value) = transaction.get(key)? else {
            return Err(WorkloadError::unexpected(
                "read_modify_write",
                format!("key {} is missing", String::from_utf8_lossy(key)),
            ));
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(&value);
        if let Some(first) = self.scratch.first_mut() {
            *first = first.wrapping_add(1);
        }
        transaction.put(key, &self.scratch)?;
        transaction.commit()?;
        Ok(())
    }
}

/// The commit of a transaction whose key another commit overwrote after it began.
#[derive(Debug)]
pub struct ConflictingCommit {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    random: SplitMix64,
    /// Transactions already overtaken by a newer write to their key.
    doomed: Vec<Transaction>,
}

impl ConflictingCommit {
    /// Makes conflicts on keys of `fixture` (which it then owns).
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("conflict_detection", fixture.key_count(), 1)?;
        Ok(ConflictingCommit {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
            random: SplitMix64::new(0x0063_6F6E),
            doomed: Vec::new(),
        })
    }
}

impl Workload for ConflictingCommit {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let needed = runs.saturating_sub(self.doomed.len());
        let mut picked = Vec::with_capacity(needed);
        for _ in 0..needed {
            let key = self.keys.get(self.random.below(self.keys.len()));
            let mut transaction = self.db.begin();
            transaction.put(key, &self.value)?;
            self.doomed.push(transaction);
            picked.push(key);
        }
        // Every transaction above has begun; each of these commits overtakes one of them.
        for key in picked {
            self.db.put(key, &self.value)?;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let Some(transaction) = self.doomed.pop() else {
            return Err(WorkloadError::unexpected(
                "conflict_detection",
                "no overtaken transaction left (prepare was not called?)",
            ));
        };
        match transaction.commit() {
            Err(error) if error.is_retryable() => Ok(()),
            Err(error) => Err(error.into()),
            Ok(version) => Err(WorkloadError::unexpected(
                "conflict_detection",
                format!("an overtaken transaction committed at {version}"),
            )),
        }
    }
}

//! Compare-and-swap: the success path, the mismatch path, and creating a key.
//!
//! [`SequentialSuccess`] swaps one key by version over and over, each time expecting the
//! version its previous swap returned. That version lives in the workload, not in the driver's
//! closure, so it stays right across every warm-up and measurement phase; a mismatch is an
//! error, never a silently measured failure path (an earlier project's benchmark measured
//! exactly that after its first phase).
//!
//! [`CreateNewKey`] needs a key that has never existed for every operation: keys come from a
//! counter that only ever grows, formatted ahead of time by `prepare`. The database grows by
//! one key per operation, as it would in a real create-heavy load.

use cairn::{CasOutcome, Db, Expected, Version};

use super::{Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet};

/// The key the single-key CAS workloads swap.
const CAS_KEY: &[u8] = b"cas:hot";

/// `compare_and_swap(key, Expected::Version(last), Some(value))` that always succeeds.
#[derive(Debug)]
pub struct SequentialSuccess {
    db: Db,
    value: Vec<u8>,
    /// The version the previous swap (or the setup put) wrote.
    expected: Version,
}

impl SequentialSuccess {
    /// A fresh database with one key, swapped with values of `value_bytes`.
    pub fn new(value_bytes: usize) -> Result<Self> {
        let db = Db::in_memory();
        let value = value_of_length(value_bytes);
        let expected = db.put(CAS_KEY, &value)?;
        Ok(SequentialSuccess {
            db,
            value,
            expected,
        })
    }
}

impl Workload for SequentialSuccess {
    fn run_op(&mut self) -> Result<()> {
        match self.db.compare_and_swap(
            CAS_KEY,
            Expected::Version(self.expected),
            Some(&self.value),
        )? {
            CasOutcome::Swapped(version) => {
                self.expected = version;
                Ok(())
            }
            CasOutcome::Mismatch { current } => Err(WorkloadError::unexpected(
                "cas/sequential_success",
                format!(
                    "expected version {}, found {:?}",
                    self.expected,
                    current.map(|(_, version)| version)
                ),
            )),
        }
    }
}

/// `compare_and_swap` expecting a version the key has moved past: always a mismatch.
#[derive(Debug)]
pub struct FailureWrongVersion {
    db: Db,
    value: Vec<u8>,
    stale: Version,
}

impl FailureWrongVersion {
    /// A fresh database with one key written twice; swaps expect the first version.
    pub fn new(value_bytes: usize) -> Result<Self> {
        let db = Db::in_memory();
        let value = value_of_length(value_bytes);
        let stale = db.put(CAS_KEY, &value)?;
        db.put(CAS_KEY, &value)?;
        Ok(FailureWrongVersion { db, value, stale })
    }
}

impl Workload for FailureWrongVersion {
    fn run_op(&mut self) -> Result<()> {
        match self
            .db
            .compare_and_swap(CAS_KEY, Expected::Version(self.stale), Some(&self.value))?
        {
            CasOutcome::Mismatch { current } => {
                std::hint::black_box(current);
                Ok(())
            }
            CasOutcome::Swapped(version) => Err(WorkloadError::unexpected(
                "cas/failure_wrong_version",
                format!(
                    "a swap expecting stale {} succeeded at {version}",
                    self.stale
                ),
            )),
        }
    }
}

/// `compare_and_swap(fresh_key, Expected::Absent, Some(value))`: creates a key every time.
#[derive(Debug)]
pub struct CreateNewKey {
    db: Db,
    value: Vec<u8>,
    /// Keys formatted by `prepare`, not yet used.
    fresh: KeySet,
    cursor: usize,
    /// The counter value the next formatted key gets; never reset.
    next_index: u64,
}

impl CreateNewKey {
    /// A fresh, empty database; every swap creates a new key holding `value_bytes`.
    pub fn new(value_bytes: usize) -> Self {
        CreateNewKey {
            db: Db::in_memory(),
            value: value_of_length(value_bytes),
            fresh: KeySet::sequential_with_prefix("new:", 0, 0),
            cursor: 0,
            next_index: 0,
        }
    }

    /// Keys created so far (plus any formatted but not yet used).
    pub fn keys_formatted(&self) -> u64 {
        self.next_index
    }
}

impl Workload for CreateNewKey {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        if self.fresh.len() - self.cursor >= runs {
            return Ok(());
        }
        let count = runs.max(crate::measure::PREPARE_RUNS_MAX);
        self.fresh = KeySet::sequential_with_prefix("new:", self.next_index, count);
        self.next_index += count as u64;
        self.cursor = 0;
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        if self.cursor >= self.fresh.len() {
            return Err(WorkloadError::unexpected(
                "cas/create_new_key",
                "no fresh key left (prepare was not called?)",
            ));
        }
        let key = self.fresh.get(self.cursor);
        self.cursor += 1;
        match self
            .db
            .compare_and_swap(key, Expected::Absent, Some(&self.value))?
        {
            CasOutcome::Swapped(_) => Ok(()),
            CasOutcome::Mismatch { .. } => Err(WorkloadError::unexpected(
                "cas/create_new_key",
                format!("key {} already existed", String::from_utf8_lossy(key)),
            )),
        }
    }
}

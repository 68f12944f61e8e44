//! The engine-only single-operation workloads: version-CAS, transactions, snapshot reads,
//! version growth, overwrites, and the `std::HashMap` reference. State an operation tracks
//! lives in the workload, so it stays right across every phase: a CAS that starts failing after
//! the first is an error, never a silently measured failure path.

use super::durability::{bench_options, fill_in_order, DataDir};
use super::{expect_value, missing, require_keys, Fixture, Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};
use crate::sizes::{FIXTURE_KEYS, VALUE_BYTES};
use cairn::{CasOutcome, Db, Durability, Expected, Snapshot, Transaction, Version};
use std::collections::HashMap;
use std::sync::{Arc, Barrier};

const CAS_KEY: &[u8] = b"cas:hot";

#[derive(Debug)]
struct Picker {
    keys: Arc<KeySet>,
    random: SplitMix64,
}

impl Picker {
    fn new(workload: &'static str, fixture: &Fixture, minimum: usize, seed: u64) -> Result<Self> {
        require_keys(workload, fixture.key_count(), minimum)?;
        let (keys, random) = (Arc::clone(&fixture.keys), SplitMix64::new(seed));
        Ok(Picker { keys, random })
    }

    fn key(&mut self) -> &[u8] {
        self.keys.get(self.random.below(self.keys.len()))
    }
}

/// `compare_and_swap` of one key, expecting the version it holds (or, `stale`, an older one).
#[derive(Debug)]
pub struct VersionCas {
    db: Db,
    value: Vec<u8>,
    expected: Version,
    stale: bool,
}

impl VersionCas {
    /// `cas/sequential_success`: a fresh database with one key of `value_bytes`.
    pub fn success(value_bytes: usize) -> Result<Self> {
        let (db, value, stale) = (Db::in_memory(), value_of_length(value_bytes), false);
        let expected = db.put(CAS_KEY, &value)?;
        Ok(VersionCas {
            db,
            value,
            expected,
            stale,
        })
    }

    /// `cas/failure_wrong_version`: the key written twice; swaps expect the first version.
    pub fn wrong_version(value_bytes: usize) -> Result<Self> {
        let mut cas = VersionCas::success(value_bytes)?;
        cas.db.put(CAS_KEY, &cas.value)?;
        cas.stale = true;
        Ok(cas)
    }
}

impl Workload for VersionCas {
    fn run_op(&mut self) -> Result<()> {
        let expected = Expected::Version(self.expected);
        let value = Some(self.value.as_slice());
        let outcome = self.db.compare_and_swap(CAS_KEY, expected, value)?;
        match (outcome, self.stale) {
            (CasOutcome::Swapped(version), false) => {
                self.expected = version;
                Ok(())
            }
            (CasOutcome::Mismatch { current }, true) => {
                std::hint::black_box(current);
                Ok(())
            }
            (outcome, stale) => {
                let expected = self.expected;
                let detail = format!("expecting {expected} (stale: {stale}) gave {outcome:?}");
                Err(WorkloadError::unexpected("cas", detail))
            }
        }
    }
}

/// `compare_and_swap(fresh_key, Expected::Absent, Some(value))`: creates a key every time.
#[derive(Debug)]
pub struct CreateNewKey {
    db: Db,
    value: Vec<u8>,
    /// Keys formatted by `prepare`; `fresh[cursor..]` are not yet used.
    fresh: KeySet,
    cursor: usize,
    next_index: u64,
}

impl CreateNewKey {
    /// A fresh, empty database; every swap creates a new key of `value_bytes`.
    pub fn new(value_bytes: usize) -> Self {
        CreateNewKey {
            db: Db::in_memory(),
            value: value_of_length(value_bytes),
            fresh: KeySet::sequential_with_prefix("new:", 0, 0),
            cursor: 0,
            next_index: 0,
        }
    }
}

impl Workload for CreateNewKey {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        if self.fresh.len() - self.cursor < runs {
            let count = runs.max(crate::measure::PREPARE_RUNS_MAX);
            self.fresh = KeySet::sequential_with_prefix("new:", self.next_index, count);
            self.next_index += count as u64;
            self.cursor = 0;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let failed = |detail: &str| Err(WorkloadError::unexpected("cas/create_new_key", detail));
        if self.cursor >= self.fresh.len() {
            return failed("no fresh key left (prepare was not called?)");
        }
        let key = self.fresh.get(self.cursor);
        self.cursor += 1;
        let value = Some(self.value.as_slice());
        match self.db.compare_and_swap(key, Expected::Absent, value)? {
            CasOutcome::Swapped(_) => Ok(()),
            CasOutcome::Mismatch { .. } => failed("a fresh key already existed"),
        }
    }
}

/// The commit of a transaction overtaken (untimed) by another commit: fails with `Conflict`.
#[derive(Debug)]
pub struct ConflictingCommit {
    db: Db,
    picker: Picker,
    value: Vec<u8>,
    /// Transactions already overtaken.
    doomed: Vec<Transaction>,
}

impl ConflictingCommit {
    /// Makes conflicts on keys of `fixture` (which it then owns).
    pub fn new(fixture: &Fixture) -> Result<Self> {
        Ok(ConflictingCommit {
            db: fixture.db.clone(),
            picker: Picker::new("conflict_detection", fixture, 1, 0x0063_6F6E)?,
            value: value_of_length(fixture.value_bytes),
            doomed: Vec::new(),
        })
    }
}

impl Workload for ConflictingCommit {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let mut picked = Vec::new();
        for _ in self.doomed.len()..runs {
            let key = self.picker.key();
            let mut transaction = self.db.begin();
            transaction.put(key, &self.value)?;
            self.doomed.push(transaction);
            picked.push(key.to_vec());
        }
        // Every transaction above has begun; each of these commits overtakes one of them.
        for key in picked {
            self.db.put(&key, &self.value)?;
        }
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        let failed = |detail: String| Err(WorkloadError::unexpected("conflict_detection", detail));
        match self.doomed.pop().map(Transaction::commit) {
            None => failed("no overtaken transaction left (prepare was not called?)".to_owned()),
            Some(Err(error)) if error.is_retryable() => Ok(()),
            Some(Err(error)) => Err(error.into()),
            Some(Ok(version)) => failed(format!("an overtaken transaction committed at {version}")),
        }
    }
}

/// `get` of a random key through one long-lived snapshot, or through a new one per read.
#[derive(Debug)]
pub struct SnapshotGet {
    db: Db,
    snapshot: Option<Snapshot>,
    picker: Picker,
}

impl SnapshotGet {
    /// `snapshot_read/get`: reads `fixture` through one snapshot taken now.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        let mut get = SnapshotGet::open_each(fixture)?;
        get.snapshot = Some(fixture.db.snapshot());
        get.picker.random = SplitMix64::new(0x0073_6E61);
        Ok(get)
    }

    /// `snapshot_read/open_and_get`: one new snapshot per read.
    pub fn open_each(fixture: &Fixture) -> Result<Self> {
        Ok(SnapshotGet {
            db: fixture.db.clone(),
            snapshot: None,
            picker: Picker::new("snapshot_read", fixture, 1, 0x006F_7067)?,
        })
    }
}

impl Workload for SnapshotGet {
    fn run_op(&mut self) -> Result<()> {
        let key = self.picker.key();
        let value = match &self.snapshot {
            Some(snapshot) => snapshot.get(key),
            None => self.db.snapshot().get(key),
        };
        expect_value("snapshot_read", key, value)
    }
}

/// What one operation of a [`Commits`] workload commits, on random keys of its fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// A put of a random existing key (the steady state of a store).
    Put,
    /// A transaction that puts this many consecutive keys (from a random start) and commits.
    Transaction(usize),
    /// A transaction that reads a random key, changes one byte of its value and writes it back.
    ReadModifyWrite,
}

/// Commits into a shared in-memory [`Fixture`], or into a `Strict` database of its own.
#[derive(Debug)]
pub struct Commits {
    db: Db,
    picker: Picker,
    commit: Commit,
    value: Vec<u8>,
    /// Set when the workload owns the database, which it then closes before the directory goes.
    dir: Option<DataDir>,
}

impl Commits {
    /// Commits into `fixture` (which it then owns, except for [`Commit::Put`]).
    pub fn new(fixture: &Fixture, commit: Commit) -> Result<Self> {
        let (workload, minimum, seed) = match commit {
            Commit::Put => ("put", 1, 0x6f76_6572),
            Commit::Transaction(keys) => ("multi_key_put", keys, 0x0074_786D),
            Commit::ReadModifyWrite => ("read_modify_write", 1, 0x0072_6D77),
        };
        Ok(Commits {
            db: fixture.db.clone(),
            picker: Picker::new(workload, fixture, minimum.max(1), seed)?,
            commit,
            value: value_of_length(fixture.value_bytes),
            dir: None,
        })
    }

    /// Puts into a fresh `Strict` database of [`FIXTURE_KEYS`] keys of [`VALUE_BYTES`].
    pub fn strict() -> Result<Self> {
        let dir = DataDir::create("strict")?;
        let db = Db::open(bench_options(Durability::Strict, Some(dir.path())))?;
        let keys = KeySet::sequential(FIXTURE_KEYS);
        fill_in_order(&db, &keys, &value_of_length(VALUE_BYTES))?;
        let (keys, value_bytes) = (Arc::new(keys), VALUE_BYTES);
        let fixture = Fixture {
            db,
            keys,
            value_bytes,
        };
        let mut put = Commits::new(&fixture, Commit::Put)?;
        put.picker.random = SplitMix64::new(0x6475_7261);
        put.dir = Some(dir);
        Ok(put)
    }

    /// Versions the database holds now.
    pub fn versions_retained(&self) -> u64 {
        self.db.stats().versions_retained
    }
}

impl Workload for Commits {
    fn run_op(&mut self) -> Result<()> {
        match self.commit {
            Commit::Put => {
                self.db.put(self.picker.key(), &self.value)?;
            }
            Commit::Transaction(count) => {
                let keys = &self.picker.keys;
                let first = self.picker.random.below(keys.len() - count + 1);
                let mut transaction = self.db.begin();
                for index in first..first + count {
                    transaction.put(keys.get(index), &self.value)?;
                }
                transaction.commit()?;
            }
            Commit::ReadModifyWrite => {
                let key = self.picker.key();
                let mut transaction = self.db.begin();
                let value = transaction.get(key)?;
                let value = value.ok_or_else(|| missing("read_modify_write", key))?;
                self.value.clear();
                self.value.extend_from_slice(&value);
                if let Some(first) = self.value.first_mut() {
                    *first = first.wrapping_add(1);
                }
                transaction.put(key, &self.value)?;
                transaction.commit()?;
            }
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        match self.commit {
            Commit::Transaction(count) => count as u64,
            _ => 1,
        }
    }
}

impl Drop for Commits {
    fn drop(&mut self) {
        if self.dir.is_some() {
            // Close before the directory goes: the WAL flusher must not write into a removed file.
            let _ = self.db.close();
        }
    }
}

/// The floor for `get_at_scale`: a plain `HashMap` of the same keys and values, each value its
/// own allocation as in a store (one shared value would stay in cache and flatter the floor).
#[derive(Debug)]
pub struct StdHashMapGet {
    map: HashMap<Box<[u8]>, Arc<[u8]>>,
    picker: Picker,
}

impl StdHashMapGet {
    /// A map with the keys and value length of `fixture`.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        let value: Arc<[u8]> = Arc::from(value_of_length(fixture.value_bytes));
        let map = (fixture.keys.iter()).map(|key| (Box::from(key), Arc::from(&value[..])));
        let map = map.collect();
        let picker = Picker::new("std hashmap get", fixture, 1, 0x0067_6574)?;
        Ok(StdHashMapGet { map, picker })
    }
}

impl Workload for StdHashMapGet {
    fn run_op(&mut self) -> Result<()> {
        let key = self.picker.key();
        let value = self.map.get(key).map(Arc::clone);
        expect_value("std hashmap get", key, value)
    }
}

/// Starts `threads` threads that each read a key and wait until all have read, then exit.
pub fn read_from_threads(fixture: &Fixture, threads: usize) -> Result<()> {
    let all_read = Barrier::new(threads);
    let (db, keys) = (&fixture.db, &fixture.keys);
    super::run_threads(vec![(); threads], |thread, ()| {
        let key = keys.get(thread % keys.len());
        let found = db.get(key)?.is_some();
        all_read.wait();
        expect_value("thread_history", key, found.then_some(()))
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::time_runs;

    #[test]
    fn strict_puts_commit_one_frame_each_and_leave_nothing_behind() {
        let mut put = Commits::strict().expect("fresh database");
        time_runs(&mut put, 50).expect("puts succeed");
        let stats = put.db.stats();
        // Puts overwrite existing keys; ten frames for the fill (1,000 keys a batch), one a put.
        assert_eq!((stats.keys_indexed, stats.wal_frames), (FIXTURE_KEYS, 60));
        let dir = put.dir.as_ref().expect("a directory").path().to_path_buf();
        drop(put);
        assert!(!dir.exists(), "the directory is removed");
    }
}

//! Writes, one session each, one commit per operation: the store's mode decides whether that
//! commit waits for an fdatasync.
//!
//! - [`Put`]: a put overwriting a random existing key (the steady state of a store; its size
//!   stays bounded however long a driver runs).
//! - [`BatchPut`]: [`BATCH_KEYS`] consecutive existing keys overwritten in one atomic commit.
//! - [`TtlPut`]: a put with a TTL of [`PUT_TTL`] (only for stores with TTLs).
//! - [`Cas`]: a compare-and-swap that succeeds, on keys of its own whose values it tracks.
//! - [`Transaction`]: read one random key, write [`TRANSACTION_WRITES`] random keys, commit.

use std::sync::Arc;
use std::time::Duration;

use crate::keys::{KeySet, SplitMix64};
use crate::peers::{Session, ValuePool};
use crate::workloads::{require_keys, Result, Workload, WorkloadError};

use super::PeerFixture;

/// Keys one [`BatchPut`] commit writes.
pub const BATCH_KEYS: usize = 1_000;

/// The TTL [`TtlPut`] writes: long enough that nothing expires during a run.
pub const PUT_TTL: Duration = Duration::from_secs(3_600);

/// Keys a [`Transaction`] writes.
pub const TRANSACTION_WRITES: usize = 3;

/// Keys the [`Cas`] workload swaps in turn.
pub const CAS_KEYS: usize = 1_000;

/// A put of a 100-byte value to a random existing key.
pub struct Put {
    session: Box<dyn Session>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    random: SplitMix64,
    puts: u64,
}

impl Put {
    /// Overwrites random keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("put", fixture, 1)?;
        Ok(Put {
            session: fixture.session()?,
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            random: SplitMix64::new(0x0070_7574),
            puts: 0,
        })
    }
}

impl Workload for Put {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        self.puts += 1;
        self.session.put(key, self.values.get(self.puts))
    }
}

/// A put with a TTL to a random existing key.
pub struct TtlPut {
    session: Box<dyn Session>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    random: SplitMix64,
    puts: u64,
}

impl TtlPut {
    /// Overwrites random keys of `fixture`, each expiring [`PUT_TTL`] from now.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("ttl_put", fixture, 1)?;
        Ok(TtlPut {
            session: fixture.session()?,
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            random: SplitMix64::new(0x0074_746c),
            puts: 0,
        })
    }
}

impl Workload for TtlPut {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        self.puts += 1;
        self.session
            .put_with_ttl(key, self.values.get(self.puts), PUT_TTL)
    }
}

/// [`BATCH_KEYS`] consecutive keys of the fixture overwritten in one commit.
pub struct BatchPut {
    session: Box<dyn Session>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    random: SplitMix64,
    batches: u64,
}

impl BatchPut {
    /// Overwrites aligned runs of [`BATCH_KEYS`] keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("batch_put", fixture, BATCH_KEYS)?;
        Ok(BatchPut {
            session: fixture.session()?,
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            random: SplitMix64::new(0x6261_7463),
            batches: 0,
        })
    }
}

impl Workload for BatchPut {
    fn run_op(&mut self) -> Result<()> {
        let runs = self.keys.len() / BATCH_KEYS;
        let first = self.random.below(runs) * BATCH_KEYS;
        self.batches += 1;
        let salt = self.batches;
        let entries: Vec<(&[u8], &[u8])> = (first..first + BATCH_KEYS)
            .map(|index| (self.keys.get(index), self.values.get(index as u64 + salt)))
            .collect();
        self.session.put_batch(&entries)
    }

    fn engine_ops_per_run(&self) -> u64 {
        BATCH_KEYS as u64
    }
}

/// A compare-and-swap that succeeds: each of [`CAS_KEYS`] keys of its own (`cas:...`, written
/// when the workload is built) moves from the value it holds to the next one of the pool.
pub struct Cas {
    session: Box<dyn Session>,
    keys: KeySet,
    values: Arc<ValuePool>,
    /// The pool index of the value each key holds.
    current: Vec<u64>,
    random: SplitMix64,
}

impl Cas {
    /// Writes the workload's keys into `fixture`'s store (untimed).
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        let mut session = fixture.session()?;
        let keys = KeySet::sequential_with_prefix("cas:", 0, CAS_KEYS);
        let values = Arc::clone(fixture.values());
        let current: Vec<u64> = (0..CAS_KEYS as u64).collect();
        let entries: Vec<(&[u8], &[u8])> = keys
            .iter()
            .zip(&current)
            .map(|(key, &slot)| (key, values.get(slot)))
            .collect();
        session.put_batch(&entries)?;
        Ok(Cas {
            session,
            keys,
            values,
            current,
            random: SplitMix64::new(0x0063_6173),
        })
    }
}

impl Workload for Cas {
    fn run_op(&mut self) -> Result<()> {
        let index = self.random.below(CAS_KEYS);
        let slot = self.current[index];
        let swapped = self.session.compare_and_swap(
            self.keys.get(index),
            self.values.get(slot),
            self.values.get(slot + 1),
        )?;
        if !swapped {
            return Err(WorkloadError::unexpected(
                "cas",
                "a CAS with the value the key holds did not swap",
            ));
        }
        self.current[index] = slot + 1;
        Ok(())
    }
}

/// A read-write transaction: read one random key, write [`TRANSACTION_WRITES`] random keys.
pub struct Transaction {
    session: Box<dyn Session>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    random: SplitMix64,
    commits: u64,
}

impl Transaction {
    /// Reads and writes random keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("transaction", fixture, 1)?;
        Ok(Transaction {
            session: fixture.session()?,
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            random: SplitMix64::new(0x7478_6e00),
            commits: 0,
        })
    }
}

impl Workload for Transaction {
    fn run_op(&mut self) -> Result<()> {
        let count = self.keys.len();
        let read_key = self.keys.get(self.random.below(count));
        let mut write_keys: [&[u8]; TRANSACTION_WRITES] = [&[]; TRANSACTION_WRITES];
        for key in &mut write_keys {
            *key = self.keys.get(self.random.below(count));
        }
        self.commits += 1;
        self.session
            .transaction(read_key, &write_keys, self.values.get(self.commits))
    }
}

/// `delete` of a key that holds a value: each timed group deletes the next keys of a fixed
/// random order, which `prepare` (untimed) wrote back first, so every delete removes a live
/// key and the store keeps its size.
pub struct Delete {
    session: Box<dyn Session>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    order: Vec<usize>,
    next: usize,
}

impl Delete {
    /// Deletes keys of `fixture` (which must be a store of its own, or shared only with
    /// workloads that tolerate the brief absence of a key).
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("delete", fixture, crate::measure::PREPARE_RUNS_MAX)?;
        Ok(Delete {
            session: fixture.session()?,
            keys: Arc::clone(fixture.keys()),
            values: Arc::clone(fixture.values()),
            order: SplitMix64::new(0x0064_656c).permutation(fixture.key_count()),
            next: 0,
        })
    }
}

impl Workload for Delete {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let (keys, values, order, next) = (&self.keys, &self.values, &self.order, self.next);
        let entries: Vec<(&[u8], &[u8])> = (0..runs)
            .map(|offset| {
                let key = keys.get(order[(next + offset) % order.len()]);
                (key, values.get(offset as u64))
            })
            .collect();
        self.session.put_batch(&entries)
    }

    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.order[self.next % self.order.len()]);
        if !self.session.delete(key)? {
            return Err(WorkloadError::unexpected(
                "delete",
                "deleting a key that holds a value removed nothing",
            ));
        }
        self.next += 1;
        Ok(())
    }
}

/// 1,000 single puts (one commit each) to consecutive keys, timed as one run: a bulk load
/// through the single-put call, as a throughput.
pub struct BulkPut {
    put: Put,
}

impl BulkPut {
    /// Overwrites `fixture`'s keys [`BATCH_KEYS`] at a time.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("bulk_put", fixture, BATCH_KEYS)?;
        Ok(BulkPut {
            put: Put::new(fixture)?,
        })
    }
}

impl Workload for BulkPut {
    fn run_op(&mut self) -> Result<()> {
        let put = &mut self.put;
        let first = put.random.below(put.keys.len() - BATCH_KEYS);
        for index in first..first + BATCH_KEYS {
            put.puts += 1;
            put.session
                .put(put.keys.get(index), put.values.get(put.puts))?;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        BATCH_KEYS as u64
    }
}

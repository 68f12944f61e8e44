//! Writes, one session each, one commit per operation: the store's mode decides whether that
//! commit waits for an fdatasync.
//!
//! - [`Put`]: a put overwriting a random existing key (the steady state of a store; its size
//!   stays bounded however long a driver runs).
//! - [`BatchPut`]: [`BATCH_KEYS`] consecutive existing keys overwritten in one atomic commit.
//! - [`Put::with_ttl`]: a put with a TTL of [`PUT_TTL`] (only for stores with TTLs).
//! - [`Cas`]: a compare-and-swap that succeeds, on keys of its own whose values it tracks.
//! - [`Transaction`]: read one random key, write [`TRANSACTION_WRITES`] random keys, commit.

use std::sync::Arc;
use std::time::Duration;

use crate::keys::{KeySet, SplitMix64};
use crate::peers::{Session, ValuePool};
use crate::workloads::{Result, Workload, WorkloadError};

use super::{Base, PeerFixture};

/// Keys one [`BatchPut`] commit writes.
pub const BATCH_KEYS: usize = 1_000;

/// The TTL [`Put::with_ttl`] writes: long enough that nothing expires during a run.
pub const PUT_TTL: Duration = Duration::from_secs(3_600);

/// Keys a [`Transaction`] writes.
pub const TRANSACTION_WRITES: usize = 3;

/// Keys the [`Cas`] workload swaps in turn.
pub const CAS_KEYS: usize = 1_000;

/// A put of a 100-byte value to a random existing key, with a TTL of [`PUT_TTL`] for
/// [`Put::with_ttl`].
pub struct Put {
    base: Base,
    ttl: Option<Duration>,
}

impl Put {
    /// Overwrites random keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        let base = Base::new("put", fixture, 1, 0x0070_7574)?;
        Ok(Put { base, ttl: None })
    }

    /// Overwrites random keys of `fixture`, each expiring [`PUT_TTL`] from now (`ttl_put`;
    /// only for stores with TTLs).
    pub fn with_ttl(fixture: &PeerFixture) -> Result<Self> {
        let base = Base::new("ttl_put", fixture, 1, 0x0074_746c)?;
        let ttl = Some(PUT_TTL);
        Ok(Put { base, ttl })
    }
}

impl Workload for Put {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.base;
        let key = base.keys.get(base.random.below(base.keys.len()));
        base.ops += 1;
        let value = base.values.get(base.ops);
        match self.ttl {
            None => base.session.put(key, value),
            Some(ttl) => base.session.put_with_ttl(key, value, ttl),
        }
    }
}

/// [`BATCH_KEYS`] consecutive keys of the fixture overwritten in one commit.
pub struct BatchPut(Base);

impl BatchPut {
    /// Overwrites aligned runs of [`BATCH_KEYS`] keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        Ok(BatchPut(Base::new(
            "batch_put",
            fixture,
            BATCH_KEYS,
            0x6261_7463,
        )?))
    }
}

impl Workload for BatchPut {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.0;
        let first = base.random.below(base.keys.len() / BATCH_KEYS) * BATCH_KEYS;
        base.ops += 1;
        let (keys, values, salt) = (&base.keys, &base.values, base.ops);
        let entries: Vec<(&[u8], &[u8])> = (first..first + BATCH_KEYS)
            .map(|index| (keys.get(index), values.get(index as u64 + salt)))
            .collect();
        base.session.put_batch(&entries)
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
pub struct Transaction(Base);

impl Transaction {
    /// Reads and writes random keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        Ok(Transaction(Base::new(
            "transaction",
            fixture,
            1,
            0x7478_6e00,
        )?))
    }
}

impl Workload for Transaction {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.0;
        let count = base.keys.len();
        let read_key = base.keys.get(base.random.below(count));
        let mut write_keys: [&[u8]; TRANSACTION_WRITES] = [&[]; TRANSACTION_WRITES];
        for key in &mut write_keys {
            *key = base.keys.get(base.random.below(count));
        }
        base.ops += 1;
        let value = base.values.get(base.ops);
        base.session.transaction(read_key, &write_keys, value)
    }
}

/// `delete` of a key that holds a value: each timed group deletes the next keys of a fixed
/// random order, which `prepare` (untimed) wrote back first, so every delete removes a live
/// key and the store keeps its size.
pub struct Delete {
    base: Base,
    order: Vec<usize>,
    next: usize,
}

impl Delete {
    /// Deletes keys of `fixture` (which must be a store of its own, or shared only with
    /// workloads that tolerate the brief absence of a key).
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        let base = Base::new("delete", fixture, crate::measure::PREPARE_RUNS_MAX, 0)?;
        let order = SplitMix64::new(0x0064_656c).permutation(fixture.key_count());
        Ok(Delete {
            base,
            order,
            next: 0,
        })
    }
}

impl Workload for Delete {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let (base, order, next) = (&mut self.base, &self.order, self.next);
        let entries: Vec<(&[u8], &[u8])> = (0..runs)
            .map(|offset| {
                let key = base.keys.get(order[(next + offset) % order.len()]);
                (key, base.values.get(offset as u64))
            })
            .collect();
        base.session.put_batch(&entries)
    }

    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.base;
        let key = base.keys.get(self.order[self.next % self.order.len()]);
        if !base.session.delete(key)? {
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
pub struct BulkPut(Base);

impl BulkPut {
    /// Overwrites `fixture`'s keys [`BATCH_KEYS`] at a time.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        Ok(BulkPut(Base::new(
            "bulk_put",
            fixture,
            BATCH_KEYS,
            0x0070_7574,
        )?))
    }
}

impl Workload for BulkPut {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.0;
        let first = base.random.below(base.keys.len() - BATCH_KEYS);
        for index in first..first + BATCH_KEYS {
            base.ops += 1;
            base.session
                .put(base.keys.get(index), base.values.get(base.ops))?;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        BATCH_KEYS as u64
    }
}

//! Single-thread workloads on a filled store: reads ([`PointRead`], [`Scan`]) and writes, one
//! commit per operation (the store's mode decides whether it waits for an fdatasync). Writes
//! overwrite existing keys, so a store's size stays bounded however long a driver runs;
//! [`Delete`] writes its keys back untimed.

use super::{expect_found, pick, Base, PeerFixture};
use crate::keys::{KeySet, SplitMix64};
use crate::workloads::{ensure, Result, Workload, WorkloadError};
use std::time::Duration;

/// Keys in the hot set of [`Read::Hot`].
pub const HOT_KEYS: usize = 1_000;
/// Gets per run of [`Read::Bulk`].
pub const BULK_GETS: usize = 1_000;

/// What a [`PointRead`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// A get of a uniformly random key (each read likely a cache miss at 1M keys).
    Uniform,
    /// A get of one of [`HOT_KEYS`] keys spread over the fixture (fixed for the run): the set
    /// stays in cache, so the figure is the store's code path, not the memory system.
    Hot,
    /// `exists` of a uniformly random key.
    Exists,
    /// [`BULK_GETS`] single gets of consecutive keys, timed as one run (a throughput).
    Bulk,
}

/// A read of a random key that holds a value.
pub struct PointRead {
    base: Base,
    read: Read,
    /// The indices [`Read::Hot`] picks from.
    hot: Vec<usize>,
}

impl PointRead {
    /// Reads `fixture`'s keys as `read` says.
    pub fn new(fixture: &PeerFixture, read: Read) -> Result<Self> {
        let minimum = if read == Read::Bulk { BULK_GETS + 1 } else { 1 };
        let base = Base::new("point_read", fixture, minimum, 0x0067_6574)?;
        let (keys, mut random) = (fixture.key_count(), SplitMix64::new(0x686f_7400));
        let hot = read == Read::Hot;
        let hot_keys = if hot { HOT_KEYS.min(keys) } else { 0 };
        let hot = (0..hot_keys).map(|_| random.below(keys)).collect();
        Ok(PointRead { base, read, hot })
    }
}

impl Workload for PointRead {
    fn run_op(&mut self) -> Result<()> {
        let Base {
            session,
            keys,
            random,
            ..
        } = &mut self.base;
        match self.read {
            Read::Uniform => {
                let key = pick(keys, random);
                expect_found("point_read", key, session.get(key)?)
            }
            Read::Hot => {
                let index = self.hot.get(random.below(self.hot.len()));
                let key = keys.get(index.copied().unwrap_or(0));
                expect_found("point_read", key, session.get(key)?)
            }
            Read::Exists => {
                let key = pick(keys, random);
                expect_found("exists", key, session.exists(key)?.then_some(1))
            }
            Read::Bulk => {
                let first = random.below(keys.len() - BULK_GETS);
                for index in first..first + BULK_GETS {
                    let key = keys.get(index);
                    expect_found("bulk_get", key, session.get(key)?)?;
                }
                Ok(())
            }
        }
    }

    fn engine_ops_per_run(&self) -> u64 {
        let ops = if self.read == Read::Bulk {
            BULK_GETS
        } else {
            1
        };
        ops as u64
    }
}

/// A scan returning exactly `length` entries: under one prefix, or a key range.
pub struct Scan {
    base: Base,
    length: usize,
    /// The prefixes of a prefix scan; `None` for a range scan.
    prefixes: Option<KeySet>,
}

impl Scan {
    /// Scans groups of `length` keys under one prefix.
    pub fn prefix(fixture: &PeerFixture, length: usize) -> Result<Self> {
        let keys = fixture.key_count();
        let prefixes = KeySet::group_prefixes(keys, length).ok_or_else(|| {
            let detail = format!("{length} keys per prefix do not divide {keys} keys into groups");
            WorkloadError::unexpected("prefix_scan", detail)
        })?;
        let base = Base::new("prefix_scan", fixture, 1, 0x7363_616e)?;
        let prefixes = Some(prefixes);
        Ok(Scan {
            base,
            length,
            prefixes,
        })
    }

    /// Scans ranges of `length` consecutive keys.
    pub fn range(fixture: &PeerFixture, length: usize) -> Result<Self> {
        let base = Base::new("range_scan", fixture, length + 1, 0x7261_6e67)?;
        let prefixes = None;
        Ok(Scan {
            base,
            length,
            prefixes,
        })
    }
}

impl Workload for Scan {
    fn run_op(&mut self) -> Result<()> {
        let Base {
            session,
            keys,
            random,
            ..
        } = &mut self.base;
        let seen = if let Some(prefixes) = &self.prefixes {
            session.scan_prefix(pick(prefixes, random))?
        } else {
            let start = random.below(keys.len() - self.length);
            session.scan_range(keys.get(start), keys.get(start + self.length))?
        };
        if seen == self.length {
            return Ok(());
        }
        let detail = format!("read {seen} entries, expected {}", self.length);
        Err(WorkloadError::unexpected("scan", detail))
    }
}

/// Keys one [`Write::Batch`] commit (or one [`Write::Bulk`] run) writes.
pub const BATCH_KEYS: usize = 1_000;
/// The TTL [`Write::TtlPut`] writes: long enough that nothing expires during a run.
pub const PUT_TTL: Duration = Duration::from_secs(3_600);
/// Keys a [`Write::Transaction`] writes.
pub const TRANSACTION_WRITES: usize = 3;
/// Keys the [`Cas`] workload swaps in turn.
pub const CAS_KEYS: usize = 1_000;

/// What a [`Writes`] workload does per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// A put of a random key.
    Put,
    /// A put of a random key with a TTL of [`PUT_TTL`] (only for stores with TTLs).
    TtlPut,
    /// [`BATCH_KEYS`] consecutive keys, aligned, overwritten in one atomic commit.
    Batch,
    /// [`BATCH_KEYS`] single puts (a commit each) to consecutive keys, timed as one run.
    Bulk,
    /// Read one random key, write [`TRANSACTION_WRITES`] random keys, commit.
    Transaction,
}

/// Overwrites of `fixture`'s keys, as a [`Write`] says.
pub struct Writes {
    base: Base,
    write: Write,
}

impl Writes {
    /// Writes to `fixture`'s keys.
    pub fn new(fixture: &PeerFixture, write: Write) -> Result<Self> {
        let (workload, keys, seed) = match write {
            Write::Put => ("put", 1, 0x0070_7574),
            Write::TtlPut => ("ttl_put", 1, 0x0074_746c),
            Write::Batch => ("batch_put", BATCH_KEYS, 0x6261_7463),
            Write::Bulk => ("bulk_put", BATCH_KEYS, 0x0070_7574),
            Write::Transaction => ("transaction", 1, 0x7478_6e00),
        };
        let base = Base::new(workload, fixture, keys, seed)?;
        Ok(Writes { base, write })
    }
}

impl Workload for Writes {
    fn run_op(&mut self) -> Result<()> {
        let Base {
            session,
            keys,
            values,
            random,
            ops,
        } = &mut self.base;
        if self.write != Write::Bulk {
            *ops += 1;
        }
        match self.write {
            Write::Put => session.put(pick(keys, random), values.get(*ops)),
            Write::TtlPut => session.put_with_ttl(pick(keys, random), values.get(*ops), PUT_TTL),
            Write::Batch => {
                let first = random.below(keys.len() / BATCH_KEYS) * BATCH_KEYS;
                let entry = |index| (keys.get(index), values.get(index as u64 + *ops));
                let entries: Vec<(&[u8], &[u8])> = (first..first + BATCH_KEYS).map(entry).collect();
                session.put_batch(&entries)
            }
            Write::Bulk => {
                let first = random.below(keys.len() - BATCH_KEYS);
                for index in first..first + BATCH_KEYS {
                    *ops += 1;
                    session.put(keys.get(index), values.get(*ops))?;
                }
                Ok(())
            }
            Write::Transaction => {
                let read_key = pick(keys, random);
                let mut write_keys: [&[u8]; TRANSACTION_WRITES] = [&[]; TRANSACTION_WRITES];
                for key in &mut write_keys {
                    *key = pick(keys, random);
                }
                session.transaction(read_key, &write_keys, values.get(*ops))
            }
        }
    }

    fn engine_ops_per_run(&self) -> u64 {
        match self.write {
            Write::Batch | Write::Bulk => BATCH_KEYS as u64,
            _ => 1,
        }
    }
}

/// A compare-and-swap that succeeds: a key moves to the next value of the pool.
pub struct Cas {
    base: Base,
    keys: KeySet,
    /// The pool index of the value each key holds.
    current: Vec<u64>,
}

impl Cas {
    /// Writes the workload's keys into `fixture`'s store (untimed).
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        let mut base = Base::new("cas", fixture, 0, 0x0063_6173)?;
        let keys = KeySet::sequential_with_prefix("cas:", 0, CAS_KEYS);
        let current: Vec<u64> = (0..CAS_KEYS as u64).collect();
        let entry = |(key, &slot)| (key, base.values.get(slot));
        let entries = keys.iter().zip(&current).map(entry);
        base.session.put_batch(&entries.collect::<Vec<_>>())?;
        Ok(Cas {
            base,
            keys,
            current,
        })
    }
}

impl Workload for Cas {
    fn run_op(&mut self) -> Result<()> {
        let Base {
            session,
            values,
            random,
            ..
        } = &mut self.base;
        let index = random.below(CAS_KEYS);
        let slot = self.current.get_mut(index);
        let slot = slot.ok_or_else(|| WorkloadError::unexpected("cas", "no such key"))?;
        let (current, next) = (values.get(*slot), values.get(*slot + 1));
        let swapped = session.compare_and_swap(self.keys.get(index), current, next)?;
        *slot += 1;
        ensure(swapped, "cas", "a CAS of the value held did not swap")
    }
}

/// `delete` of a live key: the next of a fixed random order, which `prepare` wrote back.
pub struct Delete {
    base: Base,
    order: Vec<usize>,
    next: usize,
}

impl Delete {
    /// Deletes keys of `fixture` (a store of its own).
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        let base = Base::new("delete", fixture, crate::measure::PREPARE_RUNS_MAX, 0)?;
        let (order, next) = (
            SplitMix64::new(0x0064_656c).permutation(fixture.key_count()),
            0,
        );
        Ok(Delete { base, order, next })
    }
}

fn nth<'k>(keys: &'k KeySet, order: &[usize], position: usize) -> &'k [u8] {
    keys.get(order.get(position % order.len()).copied().unwrap_or(0))
}

impl Workload for Delete {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let Base {
            session,
            keys,
            values,
            ..
        } = &mut self.base;
        let entry = |offset| {
            (
                nth(keys, &self.order, self.next + offset),
                values.get(offset as u64),
            )
        };
        let entries: Vec<(&[u8], &[u8])> = (0..runs).map(entry).collect();
        session.put_batch(&entries)
    }

    fn run_op(&mut self) -> Result<()> {
        let key = nth(&self.base.keys, &self.order, self.next);
        self.next += 1;
        let removed = self.base.session.delete(key)?;
        ensure(removed, "delete", "deleting a live key removed nothing")
    }
}

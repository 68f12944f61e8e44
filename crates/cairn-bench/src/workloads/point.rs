//! Single-key operations on a filled database: put, get, delete, exists, put with a TTL.
//!
//! Each operation picks a uniformly random key of its fixture, so a run touches the whole key
//! space and the figure includes the index's cache misses. Puts overwrite keys that already
//! exist: that is the steady state of a store, and it keeps memory bounded however long a
//! driver runs (a put of a brand-new key is what `cas::CreateNewKey` measures). The same [`Get`]
//! over fixtures of 1K to 1M keys is the `get_at_scale` regression guard against O(n) lookups.

use std::sync::Arc;
use std::time::Duration;

use cairn::Db;

use super::{expect_value, require_keys, Fixture, Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};

/// The TTL `PutWithTtl` writes: long enough that nothing expires during a run.
pub const PUT_TTL: Duration = Duration::from_secs(3_600);

/// `put` of a `value_bytes` value to a random existing key.
#[derive(Debug)]
pub struct Put {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    random: SplitMix64,
}

impl Put {
    /// Overwrites random keys of `fixture` with values of `value_bytes`.
    pub fn new(fixture: &Fixture, value_bytes: usize) -> Result<Self> {
        require_keys("put", fixture, 1)?;
        Ok(Put {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(value_bytes),
            random: SplitMix64::new(0x0070_7574),
        })
    }
}

impl Workload for Put {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        self.db.put(key, &self.value)?;
        Ok(())
    }
}

/// `put_with_ttl` of a value as long as the fixture's to a random existing key.
#[derive(Debug)]
pub struct PutWithTtl {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    random: SplitMix64,
}

impl PutWithTtl {
    /// Overwrites random keys of `fixture`, each expiring [`PUT_TTL`] from now.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("put_with_ttl", fixture, 1)?;
        Ok(PutWithTtl {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
            random: SplitMix64::new(0x0074_746C),
        })
    }
}

impl Workload for PutWithTtl {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        self.db.put_with_ttl(key, &self.value, PUT_TTL)?;
        Ok(())
    }
}

/// `get` of a random key that holds a value.
#[derive(Debug)]
pub struct Get {
    db: Db,
    keys: Arc<KeySet>,
    random: SplitMix64,
}

impl Get {
    /// Reads random keys of `fixture`; shares the fixture, writes nothing.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("get", fixture, 1)?;
        Ok(Get {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            random: SplitMix64::new(0x0067_6574),
        })
    }
}

impl Workload for Get {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        expect_value("get", key, self.db.get(key)?)
    }
}

/// `exists` of a random key that holds a value.
#[derive(Debug)]
pub struct Exists {
    db: Db,
    keys: Arc<KeySet>,
    random: SplitMix64,
}

impl Exists {
    /// Asks about random keys of `fixture`; shares the fixture, writes nothing.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("exists", fixture, 1)?;
        Ok(Exists {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            random: SplitMix64::new(0x0065_7869),
        })
    }
}

impl Workload for Exists {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        if self.db.exists(key)? {
            Ok(())
        } else {
            Err(WorkloadError::unexpected(
                "exists",
                format!("key {} is missing", String::from_utf8_lossy(key)),
            ))
        }
    }
}

/// `delete` of a live key, in a random order over the fixture's keys.
///
/// Deleting an absent key commits nothing and would measure a different, cheaper path, so
/// every timed delete hits a live key: `prepare` re-puts the whole key set (untimed) whenever
/// fewer live keys remain ahead of the cursor than the coming group needs.
#[derive(Debug)]
pub struct Delete {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    order: Vec<usize>,
    /// Deletes made so far; the next one deletes `order[next % len]`.
    next: u64,
    /// Deletes `next .. live_until` are known to hit live keys.
    live_until: u64,
}

impl Delete {
    /// Deletes keys of `fixture` (which it then owns: other workloads would find keys gone).
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("delete", fixture, crate::measure::PREPARE_RUNS_MAX)?;
        Ok(Delete {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
            order: SplitMix64::new(0x0064_656C).permutation(fixture.key_count()),
            next: 0,
            live_until: fixture.key_count() as u64,
        })
    }
}

impl Workload for Delete {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        if runs > self.keys.len() {
            return Err(WorkloadError::unexpected(
                "delete",
                format!(
                    "a group of {runs} deletes needs more than the {} keys",
                    self.keys.len()
                ),
            ));
        }
        if self.live_until - self.next >= runs as u64 {
            return Ok(());
        }
        for key in self.keys.iter() {
            self.db.put(key, &self.value)?;
        }
        self.live_until = self.next + self.keys.len() as u64;
        Ok(())
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the remainder is below the key count, a usize"
    )]
    fn run_op(&mut self) -> Result<()> {
        let slot = (self.next % self.order.len() as u64) as usize;
        let key = self.keys.get(self.order[slot]);
        self.next += 1;
        if self.db.delete(key)? {
            Ok(())
        } else {
            Err(WorkloadError::unexpected(
                "delete",
                format!(
                    "key {} was not live (prepare was not called?)",
                    String::from_utf8_lossy(key)
                ),
            ))
        }
    }
}

/// The physical reference for `get_at_scale`: a plain `std::collections::HashMap` holding the
/// same keys and values, read the same way (random key, value cloned out as an `Arc`). It has
/// no concurrency, no versions and no TTL, so it is a floor, not a peer: the ratio between its
/// 1K and 1M figures is what this machine's caches and TLB alone cost.
#[derive(Debug)]
pub struct StdHashMapGet {
    map: std::collections::HashMap<Box<[u8]>, Arc<[u8]>>,
    keys: Arc<KeySet>,
    random: SplitMix64,
}

impl StdHashMapGet {
    /// A map with the keys and value length of `fixture`.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("std hashmap get", fixture, 1)?;
        let value: Arc<[u8]> = Arc::from(value_of_length(fixture.value_bytes));
        let map = fixture
            .keys
            .iter()
            .map(|key| (Box::from(key), Arc::from(&value[..])))
            .collect();
        Ok(StdHashMapGet {
            map,
            keys: Arc::clone(&fixture.keys),
            random: SplitMix64::new(0x0067_6574),
        })
    }
}

impl Workload for StdHashMapGet {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        match self.map.get(key) {
            Some(value) => {
                std::hint::black_box(Arc::clone(value));
                Ok(())
            }
            None => Err(WorkloadError::unexpected(
                "std hashmap get",
                format!("key {} is missing", String::from_utf8_lossy(key)),
            )),
        }
    }
}

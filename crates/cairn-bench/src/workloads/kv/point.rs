//! Single-key calls through a subject: get, put, delete, exists, put with a TTL (the seed's
//! `single_operations` and `ttl_operations`).
//!
//! As the engine's `point` workloads do, each call picks a uniformly random key of the
//! fixture, and a put overwrites a key that exists (the steady state of a store, with bounded
//! memory however long a driver runs). Every call checks its result: a get finds a value of
//! the fixture's length, an exists is true, a delete removes a live key.

use std::time::Duration;

use super::{expect_value, require_keys, Flavor, KvFixture, Session, FILL_CHUNK_ENTRIES};
use crate::keys::{value_of_length, SplitMix64};
use crate::measure::PREPARE_RUNS_MAX;
use crate::workloads::{Result, Workload, WorkloadError};

/// The TTL `KvPutWithTtl` writes: long enough that nothing expires during a run.
pub const PUT_TTL: Duration = crate::workloads::point::PUT_TTL;

/// `get` of a random key that holds a value.
pub struct KvGet {
    session: Session,
    key_count: usize,
    value_bytes: usize,
    random: SplitMix64,
}

impl KvGet {
    /// Reads random keys of `fixture`; shares the fixture, writes nothing.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("single_get", fixture, 1)?;
        Ok(KvGet {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            key_count: fixture.key_count(),
            value_bytes: fixture.value_bytes(),
            random: SplitMix64::new(0x0067_6574),
        })
    }
}

impl Workload for KvGet {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvGet {
            session,
            key_count,
            value_bytes,
            random,
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                let index = random.below(*key_count);
                let found = session.target().get(index).await?;
                expect_value("single_get", index, found, *value_bytes)?;
            }
            Ok(())
        })
    }
}

/// `put` of a `value_bytes` value to a random existing key.
pub struct KvPut {
    session: Session,
    key_count: usize,
    value: Vec<u8>,
    random: SplitMix64,
}

impl KvPut {
    /// Overwrites random keys of `fixture` with values of `value_bytes` (readers sharing the
    /// fixture still find every key; with another length, their length check would fail).
    pub fn new(fixture: &KvFixture, value_bytes: usize) -> Result<Self> {
        require_keys("single_put", fixture, 1)?;
        Ok(KvPut {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            key_count: fixture.key_count(),
            value: value_of_length(value_bytes),
            random: SplitMix64::new(0x0070_7574),
        })
    }
}

impl Workload for KvPut {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvPut {
            session,
            key_count,
            value,
            random,
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                let index = random.below(*key_count);
                session.target().put(index, value).await?;
            }
            Ok(())
        })
    }
}

/// `put_with_ttl` of a value as long as the fixture's to a random existing key, expiring
/// [`PUT_TTL`] from now.
pub struct KvPutWithTtl {
    session: Session,
    key_count: usize,
    value: Vec<u8>,
    random: SplitMix64,
}

impl KvPutWithTtl {
    /// Overwrites random keys of `fixture`, each with a TTL.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("put_with_ttl", fixture, 1)?;
        Ok(KvPutWithTtl {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            key_count: fixture.key_count(),
            value: value_of_length(fixture.value_bytes()),
            random: SplitMix64::new(0x0074_746C),
        })
    }
}

impl Workload for KvPutWithTtl {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvPutWithTtl {
            session,
            key_count,
            value,
            random,
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                let index = random.below(*key_count);
                session.target().put_with_ttl(index, value, PUT_TTL).await?;
            }
            Ok(())
        })
    }
}

/// `exists` of a random key that holds a value.
pub struct KvExists {
    session: Session,
    key_count: usize,
    random: SplitMix64,
}

impl KvExists {
    /// Asks about random keys of `fixture`; shares the fixture, writes nothing.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("single_exists", fixture, 1)?;
        Ok(KvExists {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            key_count: fixture.key_count(),
            random: SplitMix64::new(0x0065_7869),
        })
    }
}

impl Workload for KvExists {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvExists {
            session,
            key_count,
            random,
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                let index = random.below(*key_count);
                if !session.target().exists(index).await? {
                    return Err(WorkloadError::unexpected(
                        "single_exists",
                        format!("key {index} is missing"),
                    ));
                }
            }
            Ok(())
        })
    }
}

/// `delete` of a live key, in a random order over the fixture's keys.
///
/// As the engine's `Delete`: deleting an absent key is a cheaper path, so every timed delete
/// hits a live key; `prepare` puts the whole key set back (untimed, [`FILL_CHUNK_ENTRIES`]
/// per `multi_put`) whenever fewer live keys remain ahead than the coming group needs.
pub struct KvDelete {
    session: Session,
    value: Vec<u8>,
    order: Vec<usize>,
    /// Deletes made so far; the next one deletes `order[next % len]`.
    next: u64,
    /// Deletes `next .. live_until` are known to hit live keys.
    live_until: u64,
}

impl KvDelete {
    /// Deletes keys of `fixture`, which it then owns: other workloads would find keys gone.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("single_delete", fixture, PREPARE_RUNS_MAX)?;
        Ok(KvDelete {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            value: value_of_length(fixture.value_bytes()),
            order: SplitMix64::new(0x0064_656C).permutation(fixture.key_count()),
            next: 0,
            live_until: fixture.key_count() as u64,
        })
    }
}

impl Workload for KvDelete {
    fn prepare(&mut self, runs: usize) -> Result<()> {
        let key_count = self.order.len();
        if runs > key_count {
            return Err(WorkloadError::unexpected(
                "single_delete",
                format!("a group of {runs} deletes needs more than the {key_count} keys"),
            ));
        }
        if self.live_until - self.next >= runs as u64 {
            return Ok(());
        }
        let KvDelete { session, value, .. } = self;
        session.block_on(async {
            let mut start = 0;
            while start < key_count {
                let end = (start + FILL_CHUNK_ENTRIES).min(key_count);
                session.target().multi_put(start..end, value).await?;
                start = end;
            }
            Ok::<_, WorkloadError>(())
        })?;
        self.live_until = self.next + key_count as u64;
        Ok(())
    }

    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the remainder is below the key count, a usize"
    )]
    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvDelete {
            session,
            order,
            next,
            ..
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                let index = order[(*next % order.len() as u64) as usize];
                *next += 1;
                if !session.target().delete(index).await? {
                    return Err(WorkloadError::unexpected(
                        "single_delete",
                        format!("key {index} was not live (prepare was not called?)"),
                    ));
                }
            }
            Ok(())
        })
    }
}

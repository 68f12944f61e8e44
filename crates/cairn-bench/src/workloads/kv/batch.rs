//! Batches through a subject (the seed's `batch_operations`), each over the keys `key_at(0) ..
//! key_at(999)` and measured as operations per second:
//!
//! - [`KvBulkPut`], [`KvBulkGet`]: 1000 single-key calls one after another, each awaited
//!   before the next: how many independent calls one caller issues per second.
//! - [`KvMultiPut`], [`KvMultiGet`]: one `multi_put` or `multi_get` of 1000 entries: what the
//!   batch calls save over the loop. A `multi_put` is atomic (one engine commit, one `SQLite`
//!   transaction, one Redis script).

use super::{expect_value, require_keys, Flavor, KvFixture, Session};
use crate::keys::value_of_length;
use crate::workloads::batch::BULK_OPS;
use crate::workloads::{Result, Workload, WorkloadError};

/// 1000 `put`s over the first 1000 keys, in key order, each overwriting.
pub struct KvBulkPut {
    session: Session,
    value: Vec<u8>,
}

impl KvBulkPut {
    /// Overwrites the first [`BULK_OPS`] keys of `fixture` with values as long as its own.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("bulk_put", fixture, BULK_OPS)?;
        Ok(KvBulkPut {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            value: value_of_length(fixture.value_bytes()),
        })
    }
}

impl Workload for KvBulkPut {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvBulkPut { session, value } = self;
        session.block_on(async {
            for _ in 0..runs {
                for index in 0..BULK_OPS {
                    session.target().put(index, value).await?;
                }
            }
            Ok(())
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_OPS as u64
    }
}

/// 1000 `get`s over the first 1000 keys, in key order, each finding its value.
pub struct KvBulkGet {
    session: Session,
    value_bytes: usize,
}

impl KvBulkGet {
    /// Reads the first [`BULK_OPS`] keys of `fixture`; shares the fixture, writes nothing.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("bulk_get", fixture, BULK_OPS)?;
        Ok(KvBulkGet {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            value_bytes: fixture.value_bytes(),
        })
    }
}

impl Workload for KvBulkGet {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvBulkGet {
            session,
            value_bytes,
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                for index in 0..BULK_OPS {
                    let found = session.target().get(index).await?;
                    expect_value("bulk_get", index, found, *value_bytes)?;
                }
            }
            Ok(())
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_OPS as u64
    }
}

/// One `multi_put` of the first 1000 keys.
pub struct KvMultiPut {
    session: Session,
    value: Vec<u8>,
}

impl KvMultiPut {
    /// Overwrites the first [`BULK_OPS`] keys of `fixture`, atomically, with values as long as
    /// its own.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("multi_put", fixture, BULK_OPS)?;
        Ok(KvMultiPut {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            value: value_of_length(fixture.value_bytes()),
        })
    }
}

impl Workload for KvMultiPut {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvMultiPut { session, value } = self;
        session.block_on(async {
            for _ in 0..runs {
                session.target().multi_put(0..BULK_OPS, value).await?;
            }
            Ok(())
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_OPS as u64
    }
}

/// One `multi_get` of the first 1000 keys, every one found.
pub struct KvMultiGet {
    session: Session,
}

impl KvMultiGet {
    /// Reads the first [`BULK_OPS`] keys of `fixture` in one call; writes nothing.
    pub fn new(fixture: &KvFixture) -> Result<Self> {
        require_keys("multi_get", fixture, BULK_OPS)?;
        Ok(KvMultiGet {
            session: Session::open(fixture, Flavor::CurrentThread)?,
        })
    }
}

impl Workload for KvMultiGet {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvMultiGet { session } = self;
        session.block_on(async {
            for _ in 0..runs {
                let found = session.target().multi_get(0..BULK_OPS).await?;
                if found != BULK_OPS {
                    return Err(WorkloadError::unexpected(
                        "multi_get",
                        format!("found {found} of {BULK_OPS} keys"),
                    ));
                }
            }
            Ok(())
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_OPS as u64
    }
}

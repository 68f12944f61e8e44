//! Reads through a `Snapshot`: the path every consistent multi-read takes.
//!
//! [`SnapshotGet`] opens one snapshot at setup and reads random keys through it, so the figure
//! is a read at a fixed registered version. [`OpenSnapshotAndGet`] opens a new snapshot for
//! every read (registering and releasing a reader each time), the cost a caller pays for a
//! one-off consistent read.

use std::sync::Arc;

use cairn::{Db, Snapshot};

use super::{expect_value, require_keys, Fixture, Result, Workload};
use crate::keys::{KeySet, SplitMix64};

/// `get` of a random key through one long-lived snapshot.
#[derive(Debug)]
pub struct SnapshotGet {
    snapshot: Snapshot,
    keys: Arc<KeySet>,
    random: SplitMix64,
}

impl SnapshotGet {
    /// Reads random keys of `fixture` through a snapshot taken now. Writes nothing; while it
    /// lives, its snapshot holds back pruning of keys written afterwards.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("snapshot_read", fixture.key_count(), 1)?;
        Ok(SnapshotGet {
            snapshot: fixture.db.snapshot(),
            keys: Arc::clone(&fixture.keys),
            random: SplitMix64::new(0x0073_6E61),
        })
    }
}

impl Workload for SnapshotGet {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        expect_value("snapshot_read", key, self.snapshot.get(key))
    }
}

/// `snapshot()` then `get` of a random key through it, then drop.
#[derive(Debug)]
pub struct OpenSnapshotAndGet {
    db: Db,
    keys: Arc<KeySet>,
    random: SplitMix64,
}

impl OpenSnapshotAndGet {
    /// Reads random keys of `fixture`, one new snapshot per read; writes nothing.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("snapshot_read", fixture.key_count(), 1)?;
        Ok(OpenSnapshotAndGet {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            random: SplitMix64::new(0x006F_7067),
        })
    }
}

impl Workload for OpenSnapshotAndGet {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        let snapshot = self.db.snapshot();
        expect_value("snapshot_read", key, snapshot.get(key))
    }
}

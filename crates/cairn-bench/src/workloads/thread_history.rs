//! Puts before and after many short-lived reader threads: a write path whose cost grew with
//! every thread the process had ever run (each key's slot once paid per-thread debts on every
//! store) shows here as a ratio well above 1; a slot with no per-thread state keeps it near 1.
//!
//! - [`Overwrite`]: a put of a random existing key of a [`Fixture`].
//! - [`read_from_threads`]: `threads` threads, all alive at once, each reading one key of the
//!   database and exiting (as a blocking pool's threads come and go).

use std::sync::{Arc, Barrier};

use cairn::Db;

use super::{require_keys, Fixture, Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};

/// A put of a random existing key: the steady state of a store.
pub struct Overwrite {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    random: SplitMix64,
}

impl Overwrite {
    /// Overwrites random keys of `fixture` with values of the fixture's length.
    pub fn new(fixture: &Fixture) -> Result<Self> {
        require_keys("overwrite", fixture.key_count(), 1)?;
        Ok(Overwrite {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
            random: SplitMix64::new(0x6f76_6572),
        })
    }
}

impl Workload for Overwrite {
    fn run_op(&mut self) -> Result<()> {
        let key = self.keys.get(self.random.below(self.keys.len()));
        self.db.put(key, &self.value)?;
        Ok(())
    }
}

/// Starts `threads` threads that each read one key of `fixture`, waits until all of them have
/// read (so all are alive at once), then lets them exit and joins them.
pub fn read_from_threads(fixture: &Fixture, threads: usize) -> Result<()> {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (db, keys, barrier) = (&fixture.db, &fixture.keys, &barrier);
                scope.spawn(move || {
                    let found = db
                        .get(keys.get(thread % keys.len()))
                        .map(|value| value.is_some());
                    barrier.wait();
                    found
                })
            })
            .collect();
        barrier.wait();
        for handle in handles {
            let found = handle
                .join()
                .map_err(|_| WorkloadError::unexpected("thread_history", "a reader panicked"))??;
            if !found {
                return Err(WorkloadError::unexpected(
                    "thread_history",
                    "a reader missed its key",
                ));
            }
        }
        Ok(())
    })
}

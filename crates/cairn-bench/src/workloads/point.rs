//! The physical reference for `get_at_scale`: a plain `std::collections::HashMap`.

use std::sync::Arc;

use super::{require_keys, Fixture, Result, Workload, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};

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
        require_keys("std hashmap get", fixture.key_count(), 1)?;
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

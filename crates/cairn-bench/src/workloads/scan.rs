//! Prefix scans of a known size inside a large database.
//!
//! A fixture's keys are zero-padded decimals, so the prefix that drops the last `d` digits of a
//! key matches exactly `10^d` keys (see `keys`). Each operation picks a random such group,
//! opens `scan_prefix` and iterates it to the end, checking it saw exactly the group: the
//! figure is seek plus `N` entries read, on a database far larger than `N`.

use std::sync::Arc;

use cairn::Db;

use super::{Fixture, Result, Workload, WorkloadError};
use crate::keys::{KeySet, SplitMix64};

/// `scan_prefix` over a random prefix matching exactly `keys_per_prefix` keys, fully iterated.
#[derive(Debug)]
pub struct PrefixScan {
    db: Db,
    prefixes: Arc<KeySet>,
    keys_per_prefix: usize,
    random: SplitMix64,
}

impl PrefixScan {
    /// Scans groups of `keys_per_prefix` keys (10, 100, 1000, ...) of `fixture`; shares the
    /// fixture, writes nothing. The fixture's key count must be a multiple of the group size.
    pub fn new(fixture: &Fixture, keys_per_prefix: usize) -> Result<Self> {
        let prefixes = KeySet::group_prefixes(fixture.key_count(), keys_per_prefix)
            .filter(|prefixes| !prefixes.is_empty())
            .ok_or_else(|| {
                WorkloadError::unexpected(
                    "prefix_scan",
                    format!(
                        "{keys_per_prefix} keys per prefix must be a power of ten dividing the \
                         fixture's {} keys",
                        fixture.key_count()
                    ),
                )
            })?;
        Ok(PrefixScan {
            db: fixture.db.clone(),
            prefixes: Arc::new(prefixes),
            keys_per_prefix,
            random: SplitMix64::new(0x0073_6361),
        })
    }
}

impl Workload for PrefixScan {
    fn run_op(&mut self) -> Result<()> {
        let prefix = self.prefixes.get(self.random.below(self.prefixes.len()));
        let mut seen = 0;
        for entry in self.db.scan_prefix(prefix)? {
            std::hint::black_box(entry);
            seen += 1;
        }
        if seen == self.keys_per_prefix {
            Ok(())
        } else {
            Err(WorkloadError::unexpected(
                "prefix_scan",
                format!(
                    "prefix {} matched {seen} keys, expected {}",
                    String::from_utf8_lossy(prefix),
                    self.keys_per_prefix
                ),
            ))
        }
    }
}

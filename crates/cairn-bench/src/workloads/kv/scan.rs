//! `list` of a prefix matching a known number of keys (the seed's `key_patterns`).
//!
//! The fixture's keys are zero-padded decimals (see `keys`), so the prefix that drops the last
//! `d` digits matches exactly `10^d` keys. Each call lists a random such group and checks it
//! got exactly the group's size. What a list costs depends on the backend's index: the engine
//! and `SQLite` seek an ordered index and read the group; Redis keeps no key order, so both
//! the store and redis-rs walk a `SCAN` over the whole keyspace of the server and sort what
//! matched, and their figure grows with every key the server holds, not with the group.

use super::{Flavor, KvFixture, Session};
use crate::keys::{KeySet, SplitMix64};
use crate::workloads::{Result, Workload, WorkloadError};

/// `list` of a random prefix matching exactly `keys_per_prefix` keys.
pub struct KvPrefixScan {
    session: Session,
    prefixes: KeySet,
    keys_per_prefix: usize,
    random: SplitMix64,
}

impl KvPrefixScan {
    /// Lists groups of `keys_per_prefix` keys (10, 100, 1000, ...) of `fixture`; shares the
    /// fixture, writes nothing. The fixture's key count must be a multiple of the group size.
    pub fn new(fixture: &KvFixture, keys_per_prefix: usize) -> Result<Self> {
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
        Ok(KvPrefixScan {
            session: Session::open(fixture, Flavor::CurrentThread)?,
            prefixes,
            keys_per_prefix,
            random: SplitMix64::new(0x0073_6361),
        })
    }
}

impl Workload for KvPrefixScan {
    fn run_op(&mut self) -> Result<()> {
        self.run_ops(1)
    }

    fn run_ops(&mut self, runs: usize) -> Result<()> {
        let KvPrefixScan {
            session,
            prefixes,
            keys_per_prefix,
            random,
        } = self;
        session.block_on(async {
            for _ in 0..runs {
                let prefix = prefixes.get(random.below(prefixes.len()));
                let listed = session.target().list(prefix).await?;
                if listed != *keys_per_prefix {
                    return Err(WorkloadError::unexpected(
                        "prefix_scan",
                        format!(
                            "prefix {} listed {listed} keys, expected {keys_per_prefix}",
                            String::from_utf8_lossy(prefix)
                        ),
                    ));
                }
            }
            Ok(())
        })
    }
}

//! Reads of a filled store: point reads and scans, one session each.
//!
//! - [`PointRead`]: a get of a random key, uniform over every key (each read likely a cache
//!   miss at 1M keys) or over a hot set of [`HOT_KEYS`] keys (the set stays in cache, so the
//!   figure is the store's code path, not the memory system).
//! - [`PrefixScan`]: every entry under a prefix matching exactly `keys_per_prefix`
//!   consecutive keys (a power of ten), read with the store's prefix call.
//! - [`RangeScan`]: `[key_i, key_{i+n})` from a random `i`, read as a key range.

use crate::keys::{KeySet, SplitMix64};
use crate::peers::Session;
use crate::workloads::{require_keys, Result, Workload, WorkloadError};

use super::{expect_found, Base, PeerFixture};

/// Keys in the hot set of [`ReadPattern::Hot`].
pub const HOT_KEYS: usize = 1_000;

/// Which keys a [`PointRead`] picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPattern {
    /// Every key of the fixture, uniformly.
    Uniform,
    /// [`HOT_KEYS`] keys spread over the fixture (fixed for the run), uniformly.
    Hot,
}

impl ReadPattern {
    /// `uniform`, `hot`.
    pub fn name(self) -> &'static str {
        match self {
            ReadPattern::Uniform => "uniform",
            ReadPattern::Hot => "hot",
        }
    }
}

/// A get of a random key that holds a value.
pub struct PointRead {
    base: Base,
    /// The indices reads pick from: every key, or the hot set.
    candidates: Option<Vec<usize>>,
}

impl PointRead {
    /// Reads `fixture`'s keys with `pattern`.
    pub fn new(fixture: &PeerFixture, pattern: ReadPattern) -> Result<Self> {
        let base = Base::new("point_read", fixture, 1, 0x0067_6574)?;
        let candidates = (pattern == ReadPattern::Hot).then(|| {
            let mut random = SplitMix64::new(0x686f_7400);
            let hot = HOT_KEYS.min(fixture.key_count());
            (0..hot)
                .map(|_| random.below(fixture.key_count()))
                .collect()
        });
        Ok(PointRead { base, candidates })
    }
}

impl Workload for PointRead {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.base;
        let index = match &self.candidates {
            None => base.random.below(base.keys.len()),
            Some(hot) => hot[base.random.below(hot.len())],
        };
        let key = base.keys.get(index);
        expect_found("point_read", key, base.session.get(key)?)
    }
}

/// A prefix scan returning exactly `keys_per_prefix` entries.
pub struct PrefixScan {
    session: Box<dyn Session>,
    prefixes: KeySet,
    keys_per_prefix: usize,
    random: SplitMix64,
}

impl PrefixScan {
    /// Scans groups of `keys_per_prefix` keys (a power of ten dividing the fixture's size).
    pub fn new(fixture: &PeerFixture, keys_per_prefix: usize) -> Result<Self> {
        let prefixes =
            KeySet::group_prefixes(fixture.key_count(), keys_per_prefix).ok_or_else(|| {
                WorkloadError::unexpected(
                    "prefix_scan",
                    format!(
                        "{keys_per_prefix} keys per prefix do not divide a fixture of {} keys \
                         into groups",
                        fixture.key_count()
                    ),
                )
            })?;
        Ok(PrefixScan {
            session: fixture.session()?,
            prefixes,
            keys_per_prefix,
            random: SplitMix64::new(0x7363_616e),
        })
    }
}

impl Workload for PrefixScan {
    fn run_op(&mut self) -> Result<()> {
        let prefix = self.prefixes.get(self.random.below(self.prefixes.len()));
        let seen = self.session.scan_prefix(prefix)?;
        expect_count("prefix_scan", seen, self.keys_per_prefix)
    }
}

/// A key-range scan returning exactly `length` entries.
pub struct RangeScan {
    base: Base,
    length: usize,
}

impl RangeScan {
    /// Scans ranges of `length` consecutive keys of `fixture`.
    pub fn new(fixture: &PeerFixture, length: usize) -> Result<Self> {
        let base = Base::new("range_scan", fixture, length + 1, 0x7261_6e67)?;
        Ok(RangeScan { base, length })
    }
}

impl Workload for RangeScan {
    fn run_op(&mut self) -> Result<()> {
        let (base, length) = (&mut self.base, self.length);
        let start = base.random.below(base.keys.len() - length);
        let (first, end) = (base.keys.get(start), base.keys.get(start + length));
        expect_count("range_scan", base.session.scan_range(first, end)?, length)
    }
}

fn expect_count(workload: &'static str, seen: usize, expected: usize) -> Result<()> {
    if seen == expected {
        Ok(())
    } else {
        Err(WorkloadError::unexpected(
            workload,
            format!("read {seen} entries, expected {expected}"),
        ))
    }
}

/// `exists` of a random key that holds a value.
pub struct Exists {
    read: PointRead,
}

impl Exists {
    /// Asks about uniformly random keys of `fixture`.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        Ok(Exists {
            read: PointRead::new(fixture, ReadPattern::Uniform)?,
        })
    }
}

impl Workload for Exists {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.read.base;
        let key = base.keys.get(base.random.below(base.keys.len()));
        if base.session.exists(key)? {
            Ok(())
        } else {
            Err(WorkloadError::unexpected(
                "exists",
                format!("key {} is missing", String::from_utf8_lossy(key)),
            ))
        }
    }
}

/// 1,000 single gets of consecutive keys, timed as one run, as a throughput.
pub struct BulkGet {
    read: PointRead,
}

/// Gets per run of [`BulkGet`].
pub const BULK_GETS: usize = 1_000;

impl BulkGet {
    /// Reads `fixture`'s keys [`BULK_GETS`] at a time.
    pub fn new(fixture: &PeerFixture) -> Result<Self> {
        require_keys("bulk_get", fixture.key_count(), BULK_GETS + 1)?;
        Ok(BulkGet {
            read: PointRead::new(fixture, ReadPattern::Uniform)?,
        })
    }
}

impl Workload for BulkGet {
    fn run_op(&mut self) -> Result<()> {
        let base = &mut self.read.base;
        let first = base.random.below(base.keys.len() - BULK_GETS);
        for index in first..first + BULK_GETS {
            let key = base.keys.get(index);
            expect_found("bulk_get", key, base.session.get(key)?)?;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_GETS as u64
    }
}

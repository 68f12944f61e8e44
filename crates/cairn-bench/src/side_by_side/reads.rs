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

use super::{expect_found, PeerFixture};

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
    session: Box<dyn Session>,
    keys: std::sync::Arc<KeySet>,
    /// The indices reads pick from: every key, or the hot set.
    candidates: Option<Vec<usize>>,
    random: SplitMix64,
}

impl PointRead {
    /// Reads `fixture`'s keys with `pattern`.
    pub fn new(fixture: &PeerFixture, pattern: ReadPattern) -> Result<Self> {
        require_keys("point_read", fixture, 1)?;
        let candidates = match pattern {
            ReadPattern::Uniform => None,
            ReadPattern::Hot => {
                let mut random = SplitMix64::new(0x686f_7400);
                let hot = HOT_KEYS.min(fixture.key_count());
                Some(
                    (0..hot)
                        .map(|_| random.below(fixture.key_count()))
                        .collect(),
                )
            }
        };
        Ok(PointRead {
            session: fixture.session()?,
            keys: std::sync::Arc::clone(fixture.keys()),
            candidates,
            random: SplitMix64::new(0x0067_6574),
        })
    }
}

impl Workload for PointRead {
    fn run_op(&mut self) -> Result<()> {
        let index = match &self.candidates {
            None => self.random.below(self.keys.len()),
            Some(hot) => hot[self.random.below(hot.len())],
        };
        let key = self.keys.get(index);
        let found = self.session.get(key)?;
        expect_found("point_read", key, found)
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
    session: Box<dyn Session>,
    keys: std::sync::Arc<KeySet>,
    length: usize,
    random: SplitMix64,
}

impl RangeScan {
    /// Scans ranges of `length` consecutive keys of `fixture`.
    pub fn new(fixture: &PeerFixture, length: usize) -> Result<Self> {
        require_keys("range_scan", fixture, length + 1)?;
        Ok(RangeScan {
            session: fixture.session()?,
            keys: std::sync::Arc::clone(fixture.keys()),
            length,
            random: SplitMix64::new(0x7261_6e67),
        })
    }
}

impl Workload for RangeScan {
    fn run_op(&mut self) -> Result<()> {
        let start = self.random.below(self.keys.len() - self.length);
        let seen = self
            .session
            .scan_range(self.keys.get(start), self.keys.get(start + self.length))?;
        expect_count("range_scan", seen, self.length)
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
        let read = &mut self.read;
        let key = read.keys.get(read.random.below(read.keys.len()));
        if read.session.exists(key)? {
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
        require_keys("bulk_get", fixture, BULK_GETS + 1)?;
        Ok(BulkGet {
            read: PointRead::new(fixture, ReadPattern::Uniform)?,
        })
    }
}

impl Workload for BulkGet {
    fn run_op(&mut self) -> Result<()> {
        let read = &mut self.read;
        let first = read.random.below(read.keys.len() - BULK_GETS);
        for index in first..first + BULK_GETS {
            let key = read.keys.get(index);
            expect_found("bulk_get", key, read.session.get(key)?)?;
        }
        Ok(())
    }

    fn engine_ops_per_run(&self) -> u64 {
        BULK_GETS as u64
    }
}

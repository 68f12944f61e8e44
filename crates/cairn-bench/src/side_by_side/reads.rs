//! Reads of a filled store: point reads ([`PointRead`]) and scans ([`Scan`]).

use super::{expect_found, pick, Base, PeerFixture};
use crate::keys::{KeySet, SplitMix64};
use crate::workloads::{Result, Workload, WorkloadError};

/// Keys in the hot set of [`Read::Hot`].
pub const HOT_KEYS: usize = 1_000;
/// Gets per run of [`Read::Bulk`].
pub const BULK_GETS: usize = 1_000;

/// What a [`PointRead`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// A get of a uniformly random key (each read likely a cache miss at 1M keys).
    Uniform,
    /// A get of one of [`HOT_KEYS`] keys spread over the fixture (fixed for the run): the set
    /// stays in cache, so the figure is the store's code path, not the memory system.
    Hot,
    /// `exists` of a uniformly random key.
    Exists,
    /// [`BULK_GETS`] single gets of consecutive keys, timed as one run (a throughput).
    Bulk,
}

/// A read of a random key that holds a value.
pub struct PointRead {
    base: Base,
    read: Read,
    /// The indices [`Read::Hot`] picks from.
    hot: Vec<usize>,
}

impl PointRead {
    /// Reads `fixture`'s keys as `read` says.
    pub fn new(fixture: &PeerFixture, read: Read) -> Result<Self> {
        let minimum = if read == Read::Bulk { BULK_GETS + 1 } else { 1 };
        let base = Base::new("point_read", fixture, minimum, 0x0067_6574)?;
        let (keys, mut random) = (fixture.key_count(), SplitMix64::new(0x686f_7400));
        let hot = read == Read::Hot;
        let hot_keys = if hot { HOT_KEYS.min(keys) } else { 0 };
        let hot = (0..hot_keys).map(|_| random.below(keys)).collect();
        Ok(PointRead { base, read, hot })
    }
}

impl Workload for PointRead {
    fn run_op(&mut self) -> Result<()> {
        let Base {
            session,
            keys,
            random,
            ..
        } = &mut self.base;
        match self.read {
            Read::Uniform => {
                let key = pick(keys, random);
                expect_found("point_read", key, session.get(key)?)
            }
            Read::Hot => {
                let index = self.hot.get(random.below(self.hot.len()));
                let key = keys.get(index.copied().unwrap_or(0));
                expect_found("point_read", key, session.get(key)?)
            }
            Read::Exists => {
                let key = pick(keys, random);
                expect_found("exists", key, session.exists(key)?.then_some(1))
            }
            Read::Bulk => {
                let first = random.below(keys.len() - BULK_GETS);
                for index in first..first + BULK_GETS {
                    let key = keys.get(index);
                    expect_found("bulk_get", key, session.get(key)?)?;
                }
                Ok(())
            }
        }
    }

    fn engine_ops_per_run(&self) -> u64 {
        let ops = if self.read == Read::Bulk {
            BULK_GETS
        } else {
            1
        };
        ops as u64
    }
}

/// A scan returning exactly `length` entries: under one prefix, or a key range.
pub struct Scan {
    base: Base,
    length: usize,
    /// The prefixes of a prefix scan; `None` for a range scan.
    prefixes: Option<KeySet>,
}

impl Scan {
    /// Scans groups of `length` keys under one prefix.
    pub fn prefix(fixture: &PeerFixture, length: usize) -> Result<Self> {
        let keys = fixture.key_count();
        let prefixes = KeySet::group_prefixes(keys, length).ok_or_else(|| {
            let detail = format!("{length} keys per prefix do not divide {keys} keys into groups");
            WorkloadError::unexpected("prefix_scan", detail)
        })?;
        let base = Base::new("prefix_scan", fixture, 1, 0x7363_616e)?;
        let prefixes = Some(prefixes);
        Ok(Scan {
            base,
            length,
            prefixes,
        })
    }

    /// Scans ranges of `length` consecutive keys.
    pub fn range(fixture: &PeerFixture, length: usize) -> Result<Self> {
        let base = Base::new("range_scan", fixture, length + 1, 0x7261_6e67)?;
        let prefixes = None;
        Ok(Scan {
            base,
            length,
            prefixes,
        })
    }
}

impl Workload for Scan {
    fn run_op(&mut self) -> Result<()> {
        let Base {
            session,
            keys,
            random,
            ..
        } = &mut self.base;
        let seen = if let Some(prefixes) = &self.prefixes {
            session.scan_prefix(pick(prefixes, random))?
        } else {
            let start = random.below(keys.len() - self.length);
            session.scan_range(keys.get(start), keys.get(start + self.length))?
        };
        if seen == self.length {
            return Ok(());
        }
        let detail = format!("read {seen} entries, expected {}", self.length);
        Err(WorkloadError::unexpected("scan", detail))
    }
}

//! The side-by-side workloads, each defined once over [`Session`], so the same code measures
//! Cairn and every peer with the same keys, the same incompressible values (a [`ValuePool`])
//! and the same random choices.

pub mod memory;
pub mod ops;
pub mod parallel;

use crate::keys::{KeySet, SplitMix64};
use crate::peers::{self, Label, Peer, Places, Session, ValuePool};
use crate::workloads::durability::FILL_BATCH_KEYS;
use crate::workloads::{missing, require_keys, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The order a fill writes its keys in: key 0, 1, ..., or a fixed random permutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub enum FillOrder {
    Sequential,
    Random,
}

/// A store filled with the first `key_count` keys, then settled.
pub struct PeerFixture {
    pub(crate) peer: Arc<dyn Peer>,
    pub(crate) keys: Arc<KeySet>,
    pub(crate) values: Arc<ValuePool>,
    /// How long the sequential fill took (settling not included): `fill/sequential`.
    pub(crate) fill_time: Duration,
}

impl PeerFixture {
    /// Opens `label`'s store and fills it with `keys` keys of `value_bytes` each.
    pub fn build(label: Label, places: &Places, keys: usize, value_bytes: usize) -> Result<Self> {
        let peer: Arc<dyn Peer> = Arc::from(peers::open(label, places)?);
        let keys = Arc::new(KeySet::sequential(keys));
        let values = Arc::new(ValuePool::new(value_bytes));
        let fill_time = fill(peer.as_ref(), &keys, &values, FillOrder::Sequential)?;
        peer.settle()?;
        Ok(PeerFixture {
            peer,
            keys,
            values,
            fill_time,
        })
    }

    /// How many keys it holds.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }
}

/// Writes every key of `keys` in `order`, [`FILL_BATCH_KEYS`] per commit; returns the time.
pub fn fill(
    peer: &dyn Peer,
    keys: &KeySet,
    values: &ValuePool,
    order: FillOrder,
) -> Result<Duration> {
    let mut session = peer.session()?;
    let indices: Vec<usize> = match order {
        FillOrder::Sequential => (0..keys.len()).collect(),
        FillOrder::Random => SplitMix64::new(0x6669_6c6c).permutation(keys.len()),
    };
    let mut batch: Vec<(&[u8], &[u8])> = Vec::with_capacity(FILL_BATCH_KEYS);
    let started = Instant::now();
    for chunk in indices.chunks(FILL_BATCH_KEYS) {
        batch.clear();
        let entry = |&index: &usize| (keys.get(index), values.get(index as u64));
        batch.extend(chunk.iter().map(entry));
        session.put_batch(&batch)?;
    }
    Ok(started.elapsed())
}

/// A session on a fixture's store, its keys and values, a random source and an op count.
pub(crate) struct Base {
    session: Box<dyn Session>,
    keys: Arc<KeySet>,
    values: Arc<ValuePool>,
    random: SplitMix64,
    ops: u64,
}

impl Base {
    fn new(workload: &'static str, fixture: &PeerFixture, keys: usize, seed: u64) -> Result<Self> {
        require_keys(workload, fixture.key_count(), keys)?;
        Ok(Base {
            session: fixture.peer.session()?,
            keys: Arc::clone(&fixture.keys),
            values: Arc::clone(&fixture.values),
            random: SplitMix64::new(seed),
            ops: 0,
        })
    }
}

fn pick<'k>(keys: &'k KeySet, random: &mut SplitMix64) -> &'k [u8] {
    keys.get(random.below(keys.len()))
}

pub(crate) fn expect_found(workload: &'static str, key: &[u8], found: Option<usize>) -> Result<()> {
    found.map(drop).ok_or_else(|| missing(workload, key))
}

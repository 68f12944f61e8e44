//! The registry of live read versions, and the read horizon it implies.
//!
//! A snapshot, transaction or scan registers its read version here for as long as it lives
//! (a [`ReadGuard`]). The [`Horizon`] is the set of versions someone may still read at: every
//! registered version plus the visible one. A chain entry that is the newest at or below no
//! horizon version (and is not newer than the visible version) can never be read again.
//!
//! Registration reads the visible version while holding the registry lock, and writers take
//! the same lock to compute the horizon; so a writer either sees a new reader or the reader
//! registers a version no older than the visible version the writer pruned against. Point reads
//! do not register: they load a key's record (its chain) first and the visible version second,
//! and pruning always keeps the newest entry at or below the visible version of the moment it
//! ran, and everything newer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

/// The read versions alive at one moment, ascending; the last is the visible version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Horizon {
    versions: SmallVec<[u64; 4]>,
}

impl Horizon {
    /// A horizon of exactly these versions (ascending; the last taken as the visible version).
    #[cfg(test)]
    pub(crate) fn from_versions(versions: &[u64]) -> Self {
        let mut versions: SmallVec<[u64; 4]> = versions.iter().copied().collect();
        versions.sort_unstable();
        versions.dedup();
        Horizon { versions }
    }

    /// The visible version: entries newer than it are not yet visible and always kept.
    pub(crate) fn visible(&self) -> u64 {
        self.versions.last().copied().unwrap_or(0)
    }

    /// True when some reader reads at a version in `[lowest, below)`.
    pub(crate) fn any_in(&self, lowest: u64, below: u64) -> bool {
        self.versions
            .iter()
            .any(|&version| lowest <= version && version < below)
    }
}

/// Live read versions, each with the number of readers at it.
#[derive(Debug, Default)]
pub(crate) struct ReaderRegistry {
    live: Mutex<BTreeMap<u64, usize>>,
    /// Readers released so far. History kept for a reader can only become prunable after a
    /// release, so the maintainer skips work when this has not moved.
    releases: AtomicU64,
}

impl ReaderRegistry {
    /// Registers a reader at the currently visible version.
    pub(crate) fn register(self: &Arc<Self>, visible: &AtomicU64) -> ReadGuard {
        let mut live = self.live.lock();
        let version = visible.load(Ordering::Acquire);
        *live.entry(version).or_insert(0) += 1;
        ReadGuard {
            registry: Arc::clone(self),
            version,
        }
    }

    /// Registers another reader at `version`, which a live guard already holds (so nothing it
    /// can see has been pruned).
    pub(crate) fn register_at(self: &Arc<Self>, version: u64) -> ReadGuard {
        *self.live.lock().entry(version).or_insert(0) += 1;
        ReadGuard {
            registry: Arc::clone(self),
            version,
        }
    }

    /// The versions some reader may still read at: every registered version, and the visible
    /// version (for point reads, which do not register).
    pub(crate) fn horizon(&self, visible: &AtomicU64) -> Horizon {
        let live = self.live.lock();
        let visible_now = visible.load(Ordering::Acquire);
        let mut versions: SmallVec<[u64; 4]> = live
            .keys()
            .copied()
            .filter(|&version| version < visible_now)
            .collect();
        versions.push(visible_now);
        Horizon { versions }
    }

    /// How many readers have been released since the registry was made.
    pub(crate) fn releases(&self) -> u64 {
        self.releases.load(Ordering::Acquire)
    }

    /// How many readers are registered.
    pub(crate) fn count(&self) -> usize {
        self.live.lock().values().sum()
    }

    fn release(&self, version: u64) {
        let mut live = self.live.lock();
        self.releases.fetch_add(1, Ordering::AcqRel);
        if let Some(count) = live.get_mut(&version) {
            *count -= 1;
            if *count == 0 {
                live.remove(&version);
            }
        }
    }
}

/// A registered read version; unregisters when dropped.
#[derive(Debug)]
pub(crate) struct ReadGuard {
    registry: Arc<ReaderRegistry>,
    version: u64,
}

impl ReadGuard {
    /// The version this reader reads at.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        self.registry.release(self.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_lists_live_readers_and_the_visible_version() {
        let registry = Arc::new(ReaderRegistry::default());
        let visible = AtomicU64::new(5);
        assert_eq!(registry.horizon(&visible), Horizon::from_versions(&[5]));
        let first = registry.register(&visible);
        visible.store(9, Ordering::Release);
        let second = registry.register(&visible);
        let third = registry.register_at(first.version());
        assert_eq!((first.version(), second.version()), (5, 9));
        assert_eq!(registry.horizon(&visible), Horizon::from_versions(&[5, 9]));
        assert_eq!(registry.count(), 3);
        drop(first);
        assert_eq!(registry.horizon(&visible), Horizon::from_versions(&[5, 9]));
        drop(third);
        assert_eq!(registry.horizon(&visible), Horizon::from_versions(&[9]));
        drop(second);
        visible.store(12, Ordering::Release);
        assert_eq!(registry.horizon(&visible), Horizon::from_versions(&[12]));
        assert_eq!(registry.horizon(&visible).visible(), 12);
        assert_eq!(registry.count(), 0);
    }
}

//! The registry of live read versions, and the watermark it implies.
//!
//! A snapshot, transaction or scan registers its read version here for as long as it lives
//! (a [`ReadGuard`]). The *watermark* is the oldest registered version, or the newest visible
//! version when nobody is registered: history at or below it, except the newest entry at or
//! below it, can never be read again.
//!
//! Registration reads the visible version while holding the registry lock, and writers take
//! the same lock to compute the watermark; so a writer either sees a new reader or the reader
//! registers a version no older than the one the writer pruned at. Point reads do not register:
//! they load a key's chain first and the visible version second, and the prune rule always
//! keeps the newest entry at or below the visible version of the moment it ran.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Live read versions, each with the number of readers at it.
#[derive(Debug, Default)]
pub(crate) struct ReaderRegistry {
    live: Mutex<BTreeMap<u64, usize>>,
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

    /// The oldest version any reader may still read.
    pub(crate) fn watermark(&self, visible: &AtomicU64) -> u64 {
        let live = self.live.lock();
        let visible_now = visible.load(Ordering::Acquire);
        live.keys()
            .next()
            .map_or(visible_now, |&oldest| oldest.min(visible_now))
    }

    /// How many readers are registered.
    pub(crate) fn count(&self) -> usize {
        self.live.lock().values().sum()
    }

    fn release(&self, version: u64) {
        let mut live = self.live.lock();
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
    fn watermark_follows_the_oldest_live_reader() {
        let registry = Arc::new(ReaderRegistry::default());
        let visible = AtomicU64::new(5);
        assert_eq!(registry.watermark(&visible), 5);
        let first = registry.register(&visible);
        visible.store(9, Ordering::Release);
        let second = registry.register(&visible);
        assert_eq!((first.version(), second.version()), (5, 9));
        assert_eq!(registry.watermark(&visible), 5);
        assert_eq!(registry.count(), 2);
        drop(first);
        assert_eq!(registry.watermark(&visible), 9);
        drop(second);
        visible.store(12, Ordering::Release);
        assert_eq!(registry.watermark(&visible), 12);
        assert_eq!(registry.count(), 0);
    }
}

//! Read-only views at one version.
//!
//! A [`Snapshot`] registers its version for as long as it lives, so pruning keeps every entry
//! it can see; reads through it never change, whatever commits afterwards. TTL is the one
//! exception: a key whose deadline passes reads as absent in every view, since expiry is judged
//! by the clock, not by the version. Drop snapshots promptly: a long-lived one holds back the
//! pruning of every key written after it.

use std::ops::RangeBounds;
use std::sync::Arc;

use crate::bounds::{owned_bounds, prefix_bounds};
use crate::engine::Shared;
use crate::error::Result;
use crate::mvcc::readers::ReadGuard;
use crate::scan::Scan;
use crate::types::{Value, Version};

/// A consistent read-only view of the database at one version.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) shared: Arc<Shared>,
    pub(crate) guard: ReadGuard,
}

impl Snapshot {
    /// The version this snapshot reads at.
    pub fn version(&self) -> Version {
        Version(self.guard.version())
    }

    /// The value of `key` at this snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<Value> {
        self.shared
            .read_at(key.as_ref(), self.guard.version())
            .map(|(value, _)| value)
    }

    /// The value of `key` and the version that wrote it.
    pub fn get_versioned(&self, key: impl AsRef<[u8]>) -> Option<(Value, Version)> {
        self.shared
            .read_at(key.as_ref(), self.guard.version())
            .map(|(value, version)| (value, Version(version)))
    }

    /// True when `key` holds a live value at this snapshot.
    pub fn exists(&self, key: impl AsRef<[u8]>) -> bool {
        self.get(key).is_some()
    }

    /// The values of `keys`, in order, all at this snapshot.
    pub fn multi_get<K: AsRef<[u8]>>(&self, keys: &[K]) -> Vec<Option<Value>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// Keys starting with `prefix`, in order, at this snapshot.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Scan {
        Scan::new(
            Arc::clone(&self.shared),
            self.shared.register_reader_at(self.guard.version()),
            prefix_bounds(prefix.as_ref()),
        )
    }

    /// Keys in `range`, in order, at this snapshot. A reversed range is an error.
    pub fn range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<Scan> {
        Ok(Scan::new(
            Arc::clone(&self.shared),
            self.shared.register_reader_at(self.guard.version()),
            owned_bounds(&range)?,
        ))
    }
}

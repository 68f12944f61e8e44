//! Write batches: many writes, one atomic commit.
//!
//! A batch is applied under one version: readers see all of it or none of it, and watchers
//! receive its events together. When a batch writes the same key twice, the last write wins.
//! Every key and value is checked before anything is applied, so a refused batch writes nothing.

use std::time::Duration;

use crate::types::Key;

/// One write a batch will make, with its value borrowed from the batch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BatchWrite<'a> {
    Put {
        value: &'a [u8],
        ttl: Option<Duration>,
    },
    Delete,
}

/// Where a put's value sits in the batch's one value buffer.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Put {
        start: usize,
        end: usize,
        ttl: Option<Duration>,
    },
    Delete,
}

/// Writes applied together by `Db::write`. The values of all its puts share one buffer, so a
/// batch of a thousand puts makes a handful of allocations, not a thousand.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    writes: Vec<(Key, Slot)>,
    values: Vec<u8>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push_put(key.as_ref(), value.as_ref(), None)
    }

    /// Adds a put that expires `ttl` after the batch commits.
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> &mut Self {
        self.push_put(key.as_ref(), value.as_ref(), Some(ttl))
    }

    fn push_put(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> &mut Self {
        let start = self.values.len();
        self.values.extend_from_slice(value);
        let end = self.values.len();
        self.writes
            .push((Key::from_slice(key), Slot::Put { start, end, ttl }));
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.writes
            .push((Key::from_slice(key.as_ref()), Slot::Delete));
        self
    }

    /// How many writes the batch holds.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// True when the batch holds no writes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Removes every write, keeping the buffers for reuse.
    pub fn clear(&mut self) {
        self.writes.clear();
        self.values.clear();
    }

    /// The writes in the order they were added, each with its value borrowed from the batch.
    pub(crate) fn writes(&self) -> impl Iterator<Item = (&Key, BatchWrite<'_>)> {
        self.writes.iter().map(|(key, slot)| {
            let write = match *slot {
                Slot::Put { start, end, ttl } => {
                    debug_assert!(start <= end && end <= self.values.len());
                    BatchWrite::Put {
                        value: self.values.get(start..end).unwrap_or_default(),
                        ttl,
                    }
                }
                Slot::Delete => BatchWrite::Delete,
            };
            (key, write)
        })
    }
}

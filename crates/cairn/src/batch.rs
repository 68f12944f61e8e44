//! Write batches: many writes, one atomic commit.
//!
//! A batch is applied under one version: readers see all of it or none of it, and watchers
//! receive its events together. When a batch writes the same key twice, the last write wins.
//! Every key and value is checked before anything is applied, so a refused batch writes nothing.

use std::time::Duration;

use crate::types::{Key, Value};

/// One write a batch will make.
#[derive(Clone, Debug)]
pub(crate) enum BatchWrite {
    Put { value: Value, ttl: Option<Duration> },
    Delete,
}

/// Writes applied together by `Db::write`.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub(crate) writes: Vec<(Key, BatchWrite)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        WriteBatch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.writes.push((
            Key::from_slice(key.as_ref()),
            BatchWrite::Put {
                value: Value::from_slice(value.as_ref()),
                ttl: None,
            },
        ));
        self
    }

    /// Adds a put that expires `ttl` after the batch commits.
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> &mut Self {
        self.writes.push((
            Key::from_slice(key.as_ref()),
            BatchWrite::Put {
                value: Value::from_slice(value.as_ref()),
                ttl: Some(ttl),
            },
        ));
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.writes
            .push((Key::from_slice(key.as_ref()), BatchWrite::Delete));
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

    /// Removes every write.
    pub fn clear(&mut self) {
        self.writes.clear();
    }
}

//! [`DbPersister`]: a persister over the Cairn engine itself, each batch one commit.
//!
//! Guarantees: a batch is one `Db::write` (atomic: a reader or a crash sees all of it or none
//! of it), durable as the database's `Durability` says; `sync` calls `Db::sync`. Every key is
//! stored under the persister's namespace prefix, so several repositories can share a database.

use std::ops::Bound;

use cairn::{Db, WriteBatch};

use crate::error::{Error, Result};
use crate::persist::{Batch, Persister};

/// A persister writing into a [`cairn::Db`] under a namespace prefix.
#[derive(Clone, Debug)]
pub struct DbPersister {
    db: Db,
    namespace: Vec<u8>,
}

impl DbPersister {
    /// Stores every key under `namespace` (may be empty when the database is this
    /// repository's alone; otherwise pick a prefix no other user of the database shares).
    pub fn new(db: Db, namespace: impl Into<Vec<u8>>) -> Self {
        DbPersister {
            db,
            namespace: namespace.into(),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn full_key(&self, key: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.namespace.len() + key.len());
        full.extend_from_slice(&self.namespace);
        full.extend_from_slice(key);
        full
    }
}

impl Persister for DbPersister {
    fn apply(&self, batch: &Batch) -> Result<()> {
        let mut write = WriteBatch::new();
        for key in batch.deletes() {
            write.delete(self.full_key(key));
        }
        for (key, value) in batch.puts() {
            write.put(self.full_key(key), value);
        }
        self.db.write(&write).map_err(Error::persist)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let value = self.db.get(self.full_key(key)).map_err(Error::persist)?;
        Ok(value.map(|value| value.to_vec()))
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let full: Vec<Vec<u8>> = keys.iter().map(|key| self.full_key(key)).collect();
        let values = self.db.multi_get(&full).map_err(Error::persist)?;
        Ok(values
            .into_iter()
            .map(|value| value.map(|value| value.to_vec()))
            .collect())
    }

    fn keys(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let full_prefix = self.full_key(prefix);
        let start = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(self.full_key(after)),
            _ => Bound::Included(full_prefix.clone()),
        };
        let scan = self
            .db
            .range::<Vec<u8>>((start, Bound::Unbounded))
            .map_err(Error::persist)?;
        let skip = self.namespace.len();
        Ok(scan
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(&full_prefix))
            .take(limit)
            .map(|key| key.get(skip..).unwrap_or_default().to_vec())
            .collect())
    }

    fn sync(&self) -> Result<()> {
        self.db.sync().map_err(Error::persist)
    }
}

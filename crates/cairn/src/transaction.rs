//! Transactions: reads at one version, writes applied in one atomic commit.
//!
//! A transaction reads the database as of its begin version, plus its own writes (in point reads
//! and in scans). Its writes are buffered in key order and applied at commit under one new
//! version. Commit validates first, under the commit lock:
//! - every key in the write set must be unchanged since begin (both isolation levels: first
//!   committer wins, so there are no lost updates);
//! - under `Serializable`, every key read and every range scanned must be unchanged too, so
//!   write skew and phantoms are refused as well.
//!
//! A failed validation returns `Error::Conflict` and writes nothing. The read and range sets
//! of a `Serializable` transaction are bounded (`limits::TRANSACTION_READ_KEYS_MAX`,
//! `TRANSACTION_READ_RANGES_MAX`); past them reads fail with `Error::LimitExceeded`. Dropping a transaction
//! without committing rolls it back. Range validation re-reads each scanned range at commit:
//! cost O(log n + k) per range, paid by serializable transactions that scan.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::Duration;

use crate::bounds::{as_slice_bound, bounds_are_empty, owned_bounds, prefix_bounds};
use crate::engine::Shared;
use crate::error::{Error, KeyDisplay, Result};
use crate::limits;
use crate::mvcc::chain::NO_DEADLINE;
use crate::mvcc::readers::ReadGuard;
use crate::options::Isolation;
use crate::scan::Scan;
use crate::types::{Key, Mutation, Value, Version};

/// A write a transaction buffers until commit. It owns its value, so the transaction's own
/// reads hand it out without a copy.
#[derive(Debug)]
enum OwnWrite {
    Put { value: Value, deadline_millis: u64 },
    Delete,
}

impl OwnWrite {
    fn as_mutation(&self) -> Mutation<'_> {
        match self {
            OwnWrite::Put {
                value,
                deadline_millis,
            } => Mutation::Put {
                value: value.as_bytes(),
                deadline_millis: *deadline_millis,
            },
            OwnWrite::Delete => Mutation::Delete,
        }
    }
}

/// An open transaction. Commit with [`Transaction::commit`]; drop to roll back.
#[derive(Debug)]
pub struct Transaction {
    shared: Arc<Shared>,
    guard: ReadGuard,
    isolation: Isolation,
    writes: BTreeMap<Key, OwnWrite>,
    /// `Serializable` only: keys read, at most `limits::TRANSACTION_READ_KEYS_MAX`.
    reads: Vec<Key>,
    /// `Serializable` only: ranges scanned, at most `limits::TRANSACTION_READ_RANGES_MAX`.
    ranges: Vec<(Bound<Key>, Bound<Key>)>,
    /// A `Serializable` scan was started past the range limit, so the read set is incomplete
    /// and commit must refuse (`scan_prefix` cannot return the error itself).
    ranges_overflowed: bool,
}

impl Transaction {
    pub(crate) fn new(shared: Arc<Shared>, isolation: Isolation) -> Self {
        let guard = shared.register_reader();
        Transaction {
            shared,
            guard,
            isolation,
            writes: BTreeMap::new(),
            reads: Vec::new(),
            ranges: Vec::new(),
            ranges_overflowed: false,
        }
    }

    /// The version this transaction reads at.
    pub fn read_version(&self) -> Version {
        Version(self.guard.version())
    }

    /// The isolation level it commits under.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// The value of `key`: this transaction's own write if it made one, else the value at its
    /// read version.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        if let Some(mutation) = self.writes.get(key) {
            return Ok(self.own_value(mutation));
        }
        if self.isolation == Isolation::Serializable {
            if self.reads.len() >= limits::TRANSACTION_READ_KEYS_MAX {
                return Err(Error::LimitExceeded {
                    limit: "TRANSACTION_READ_KEYS_MAX",
                    max: limits::TRANSACTION_READ_KEYS_MAX,
                    what: "a Serializable transaction's read set is full".into(),
                });
            }
            self.reads.push(Key::from_slice(key));
        }
        Ok(self
            .shared
            .read_at(key, self.guard.version())
            .map(|(value, _)| value))
    }

    /// True when `key` holds a live value (as `get` sees it).
    pub fn exists(&mut self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Buffers a put.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.buffer_put(key.as_ref(), value.as_ref(), NO_DEADLINE)
    }

    /// Buffers a put that expires `ttl` from now.
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<()> {
        let deadline = self.shared.deadline_after(ttl)?;
        self.buffer_put(key.as_ref(), value.as_ref(), deadline)
    }

    /// Buffers a delete.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        Shared::check_key(key)?;
        self.check_room(key)?;
        self.writes.insert(Key::from_slice(key), OwnWrite::Delete);
        Ok(())
    }

    fn buffer_put(&mut self, key: &[u8], value: &[u8], deadline_millis: u64) -> Result<()> {
        Shared::check_key(key)?;
        self.shared.check_value(value)?;
        self.check_room(key)?;
        self.writes.insert(
            Key::from_slice(key),
            OwnWrite::Put {
                value: Value::from_slice(value),
                deadline_millis,
            },
        );
        Ok(())
    }

    fn check_room(&self, key: &[u8]) -> Result<()> {
        if self.writes.len() >= limits::COMMIT_MUTATIONS_MAX && !self.writes.contains_key(key) {
            return Err(Error::InvalidArgument(format!(
                "a transaction may write at most {} keys",
                limits::COMMIT_MUTATIONS_MAX
            )));
        }
        Ok(())
    }

    fn own_value(&self, write: &OwnWrite) -> Option<Value> {
        match write {
            OwnWrite::Put {
                value,
                deadline_millis,
            } => (*deadline_millis == NO_DEADLINE || *deadline_millis > self.shared.now_millis())
                .then(|| value.clone()),
            OwnWrite::Delete => None,
        }
    }

    /// Keys starting with `prefix`, in order, as this transaction sees them. Under
    /// `Serializable`, a scan past `TRANSACTION_READ_RANGES_MAX` still reads, but the range
    /// cannot be validated, so `commit` then fails with `Error::LimitExceeded` (use `range`
    /// to get that error at once).
    pub fn scan_prefix(&mut self, prefix: impl AsRef<[u8]>) -> TransactionScan<'_> {
        let bounds = prefix_bounds(prefix.as_ref());
        if self.record_range(&bounds).is_err() {
            self.ranges_overflowed = true;
        }
        self.scan_bounds(bounds)
    }

    /// Keys in `range`, in order, as this transaction sees them. A reversed range is an error,
    /// and so (under `Serializable`) is a scan past `TRANSACTION_READ_RANGES_MAX`.
    pub fn range<K: AsRef<[u8]>>(
        &mut self,
        range: impl RangeBounds<K>,
    ) -> Result<TransactionScan<'_>> {
        let bounds = owned_bounds(&range)?;
        self.record_range(&bounds)?;
        Ok(self.scan_bounds(bounds))
    }

    /// Adds a scanned range to a `Serializable` transaction's range set, if there is room.
    fn record_range(&mut self, bounds: &(Bound<Key>, Bound<Key>)) -> Result<()> {
        if self.isolation != Isolation::Serializable {
            return Ok(());
        }
        if self.ranges.len() >= limits::TRANSACTION_READ_RANGES_MAX {
            return Err(Self::ranges_full());
        }
        self.ranges.push(bounds.clone());
        Ok(())
    }

    fn ranges_full() -> Error {
        Error::LimitExceeded {
            limit: "TRANSACTION_READ_RANGES_MAX",
            max: limits::TRANSACTION_READ_RANGES_MAX,
            what: "a Serializable transaction scanned more ranges than it can validate".into(),
        }
    }

    fn scan_bounds(&mut self, bounds: (Bound<Key>, Bound<Key>)) -> TransactionScan<'_> {
        let (lower, upper) = (as_slice_bound(&bounds.0), as_slice_bound(&bounds.1));
        let own: Vec<(Key, Option<Value>)> = if bounds_are_empty(lower, upper) {
            Vec::new()
        } else {
            self.writes
                .range::<[u8], _>((lower, upper))
                .map(|(key, mutation)| (key.clone(), self.own_value(mutation)))
                .collect()
        };
        let base = Scan::new(
            Arc::clone(&self.shared),
            self.shared.register_reader_at(self.guard.version()),
            bounds,
        );
        TransactionScan {
            base: base.peekable(),
            own: own.into_iter().peekable(),
            _transaction: std::marker::PhantomData,
        }
    }

    /// Validates and applies every buffered write under one new version. A transaction that
    /// wrote nothing commits trivially and returns its read version.
    pub fn commit(self) -> Result<Version> {
        self.shared.check_open()?;
        if self.writes.is_empty() {
            return Ok(self.read_version());
        }
        if self.ranges_overflowed {
            // Writes made on reads that cannot be validated must not commit.
            return Err(Self::ranges_full());
        }
        let read_version = self.guard.version();
        let pairs = || {
            self.writes
                .iter()
                .map(|(key, write)| (key.as_bytes(), write.as_mutation()))
        };
        Shared::check_commit_bytes(crate::durable::record::encoded_commit_bytes(pairs()))?;
        let state = self.shared.lock_commit();
        for key in self.writes.keys() {
            self.check_unchanged(key, read_version)?;
        }
        if self.isolation == Isolation::Serializable {
            for key in &self.reads {
                self.check_unchanged(key, read_version)?;
            }
            for (lower, upper) in &self.ranges {
                self.shared.check_range_unchanged_locked(
                    as_slice_bound(lower),
                    as_slice_bound(upper),
                    read_version,
                )?;
            }
        }
        let version = self.shared.commit(state, pairs())?;
        Ok(Version(version))
    }

    fn check_unchanged(&self, key: &[u8], read_version: u64) -> Result<()> {
        if self.shared.head_version_locked(key) > read_version {
            return Err(Error::Conflict {
                key: KeyDisplay::new(key),
            });
        }
        Ok(())
    }

    /// Discards every buffered write.
    pub fn rollback(self) {}
}

/// A transaction's scan: the snapshot's entries merged with the transaction's own writes.
#[derive(Debug)]
pub struct TransactionScan<'tx> {
    base: std::iter::Peekable<Scan>,
    own: std::iter::Peekable<std::vec::IntoIter<(Key, Option<Value>)>>,
    _transaction: std::marker::PhantomData<&'tx mut Transaction>,
}

impl Iterator for TransactionScan<'_> {
    type Item = (Key, Value);

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering;
        loop {
            let own_first = match (self.base.peek(), self.own.peek()) {
                (None, None) => return None,
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (Some((base_key, _)), Some((own_key, _))) => own_key.cmp(base_key),
            };
            if own_first == Ordering::Greater {
                return self.base.next();
            }
            if own_first == Ordering::Equal {
                // The transaction's own write shadows the snapshot's entry.
                self.base.next();
            }
            if let Some((key, Some(value))) = self.own.next() {
                return Some((key, value));
            }
            // An own delete (or an own put already expired) hides the key.
        }
    }
}

//! Where a command's reads and writes go: straight to the database, or, inside `EXEC`, into
//! one engine transaction that the whole `MULTI` block shares, so the block is one commit.
//!
//! Commands never touch the `Db` themselves: they read with [`Ctx::get`] and [`Ctx::scan`],
//! collect their changes in [`Writes`] and make them with [`Ctx::apply`] (one commit outside a
//! transaction), and lock their keys with [`Ctx::lock`] (a no-op inside `EXEC`, which holds
//! the locks of every key of the block).

use std::cell::RefCell;
use std::ops::Bound;
use std::time::Duration;

use cairn::{Transaction, Value, WriteBatch};
use parking_lot::MutexGuard;
use smallvec::SmallVec;

use super::{engine_error, Ctx};
use crate::keyspace;
use crate::resp::Reply;

/// Where a command's reads and writes go.
pub(crate) enum Store<'a> {
    /// The database: each [`Ctx::apply`] is one commit.
    Db,
    /// The transaction of an `EXEC`: committed once, after the block's last command.
    Tx(&'a RefCell<Transaction>),
}

/// One change: its key, then its value (a put's), at `start` in [`Writes`]'s bytes.
struct Op {
    start: usize,
    key_len: usize,
    value_len: usize,
    kind: OpKind,
}

enum OpKind {
    Put(Option<Duration>),
    Delete,
}

/// Bytes of keys and values a command's changes hold without a heap allocation: enough for
/// a small command's (a `SET`'s record, or a hash field's and its hash's metadata record; a
/// list push's chunk is often larger).
const WRITES_INLINE_BYTES: usize = 192;

/// A command's changes, made together by [`Ctx::apply`]. Every key and value is copied into
/// one buffer, inline up to [`WRITES_INLINE_BYTES`]: a small command's changes allocate
/// nothing before the engine copies them.
#[derive(Default)]
pub(crate) struct Writes {
    ops: SmallVec<[Op; 4]>,
    bytes: SmallVec<[u8; WRITES_INLINE_BYTES]>,
}

/// A change as [`Writes::iter`] gives it: the key, and a put's value and time to live.
type Change<'a> = (&'a [u8], Option<(&'a [u8], Option<Duration>)>);

impl Writes {
    pub(crate) fn new() -> Writes {
        Writes::default()
    }

    fn push(&mut self, key: &[u8], value: &[u8], kind: OpKind) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
        self.ops.push(Op {
            start,
            key_len: key.len(),
            value_len: value.len(),
            kind,
        });
    }

    pub(crate) fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.push(key.as_ref(), value.as_ref(), OpKind::Put(None));
    }

    pub(crate) fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) {
        self.push(key.as_ref(), value.as_ref(), OpKind::Put(Some(ttl)));
    }

    pub(crate) fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.push(key.as_ref(), &[], OpKind::Delete);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Changes collected.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// The changes, in the order they were made.
    fn iter(&self) -> impl Iterator<Item = Change<'_>> {
        self.ops.iter().map(|op| {
            let key_end = op.start + op.key_len;
            let key = self.bytes.get(op.start..key_end).unwrap_or_default();
            let change = match op.kind {
                OpKind::Put(ttl) => Some((
                    self.bytes
                        .get(key_end..key_end + op.value_len)
                        .unwrap_or_default(),
                    ttl,
                )),
                OpKind::Delete => None,
            };
            (key, change)
        })
    }

    /// The keys changed.
    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.iter().map(|(key, _)| key)
    }
}

impl Ctx<'_> {
    /// The record under `key`, as this command sees it (its transaction's own writes
    /// included).
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Value>, Reply> {
        let result = match &self.store {
            Store::Db => self.shared.db.get(key),
            Store::Tx(transaction) => transaction.borrow_mut().get(key),
        };
        result.map_err(|error| engine_error(&error))
    }

    /// Makes `writes`: one commit, or part of the transaction's.
    pub(crate) fn apply(&self, writes: &Writes) -> Result<(), Reply> {
        if writes.is_empty() {
            return Ok(());
        }
        self.shared.watches.touch(writes.keys());
        // A blocked read (`XREAD`, `BLPOP`, ...) waits on its keys' metadata records, which
        // every write of such a key changes.
        let wake =
            self.shared.clients.blocked() > 0 && self.shared.clients.any_blocked_on(writes.keys());
        let notify = self.shared.notify.get();
        if notify != 0 {
            let now = keyspace::now_millis();
            let mut changes = self.client.changes.borrow_mut();
            for (key, put) in writes.iter() {
                if notify & crate::notify::NEW != 0
                    && put.is_some()
                    && keyspace::is_meta_key(key)
                    && self.read(key, now)?.is_none()
                {
                    changes.note_new(key);
                }
                changes.note(key, put.is_none());
            }
        }
        let result = match &self.store {
            Store::Db => {
                let mut batch = WriteBatch::new();
                for (key, put) in writes.iter() {
                    match put {
                        Some((value, None)) => batch.put(key, value),
                        Some((value, Some(ttl))) => batch.put_with_ttl(key, value, ttl),
                        None => batch.delete(key),
                    };
                }
                self.shared.db.write(&batch).map(drop)
            }
            Store::Tx(transaction) => {
                let mut transaction = transaction.borrow_mut();
                writes.iter().try_for_each(|(key, put)| match put {
                    Some((value, None)) => transaction.put(key, value),
                    Some((value, Some(ttl))) => transaction.put_with_ttl(key, value, ttl),
                    None => transaction.delete(key),
                })
            }
        };
        result.map_err(|error| engine_error(&error))?;
        if wake {
            self.wake_readers();
        }
        Ok(())
    }

    /// [`Ctx::scan`] from the last key down. The database walks its index backwards; inside a
    /// transaction, whose scans run forward only, the range is read whole first.
    pub(crate) fn scan_rev(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        mut each: impl FnMut(&[u8], &Value) -> bool,
    ) -> Result<(), Reply> {
        if let (
            Bound::Included(low) | Bound::Excluded(low),
            Bound::Included(high) | Bound::Excluded(high),
        ) = (&lower, &upper)
        {
            if low > high {
                return Ok(());
            }
        }
        match &self.store {
            Store::Db => {
                let scan = self
                    .shared
                    .db
                    .range::<Vec<u8>>((lower, upper))
                    .map_err(|error| engine_error(&error))?;
                for (key, value) in scan.rev() {
                    if !each(&key, &value) {
                        break;
                    }
                }
            }
            Store::Tx(_) => {
                let mut records = Vec::new();
                self.scan(lower, upper, |key, value| {
                    records.push((key.to_vec(), value.clone()));
                    true
                })?;
                for (key, value) in records.iter().rev() {
                    if !each(key, value) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Calls `each` on the records between `lower` and `upper`, in key order, until it returns
    /// `false`. An empty or reversed range visits nothing.
    pub(crate) fn scan(
        &self,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        mut each: impl FnMut(&[u8], &Value) -> bool,
    ) -> Result<(), Reply> {
        let reversed = match (&lower, &upper) {
            (
                Bound::Included(low) | Bound::Excluded(low),
                Bound::Included(high) | Bound::Excluded(high),
            ) => low > high,
            _ => false,
        };
        if reversed {
            return Ok(());
        }
        match &self.store {
            Store::Db => {
                self.shared
                    .db
                    .range::<Vec<u8>>((lower, upper))
                    .map_err(|error| engine_error(&error))?
                    .for_each_while(each);
            }
            Store::Tx(transaction) => {
                let mut transaction = transaction.borrow_mut();
                let scan = transaction
                    .range::<Vec<u8>>((lower, upper))
                    .map_err(|error| engine_error(&error))?;
                for (key, value) in scan {
                    if !each(&key, &value) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// [`Ctx::scan`] over every record under `prefix`.
    pub(crate) fn scan_prefix(
        &self,
        prefix: &[u8],
        each: impl FnMut(&[u8], &Value) -> bool,
    ) -> Result<(), Reply> {
        match prefix_end(prefix) {
            Some(end) => self.scan(Bound::Included(prefix.to_vec()), Bound::Excluded(end), each),
            None => self.scan(Bound::Included(prefix.to_vec()), Bound::Unbounded, each),
        }
    }

    /// Wakes the blocked stream reads once this command's writes are committed: now,
    /// outside a transaction; after the commit (`transactions::run_block`, scripts) inside
    /// one.
    pub(crate) fn wake_readers(&self) {
        match self.store {
            Store::Db => self.shared.blocked_keys_written.notify_waiters(),
            Store::Tx(_) => self.client.wake_readers.set(true),
        }
    }

    /// How many records are under `prefix`.
    pub(crate) fn count_prefix(&self, prefix: &[u8]) -> Result<usize, Reply> {
        match self.store {
            Store::Db => self
                .shared
                .db
                .count_prefix(prefix)
                .map_err(|error| engine_error(&error)),
            Store::Tx(_) => {
                let mut count = 0;
                self.scan_prefix(prefix, |_, _| {
                    count += 1;
                    true
                })?;
                Ok(count)
            }
        }
    }

    /// Deletes every record under `prefix`.
    pub(crate) fn clear_prefix(&self, prefix: &[u8]) -> Result<(), Reply> {
        match self.store {
            Store::Db => {
                self.shared.watches.touch_prefix(prefix, |key| {
                    self.shared.db.get(key).ok().flatten().is_some()
                });
                self.shared
                    .db
                    .clear_prefix(prefix)
                    .map_err(|error| engine_error(&error))?;
                if self.shared.clients.blocked() > 0 {
                    self.wake_readers();
                }
                Ok(())
            }
            Store::Tx(_) => {
                let mut writes = Writes::new();
                self.scan_prefix(prefix, |key, _| {
                    writes.delete(key);
                    true
                })?;
                self.apply(&writes)
            }
        }
    }

    /// Locks the stripes of `engine_keys` (nothing inside `EXEC`, which holds them all).
    pub(crate) fn lock<K: AsRef<[u8]>>(&self, engine_keys: &[K]) -> Vec<MutexGuard<'_, ()>> {
        match self.store {
            Store::Db => self.shared.stripes.lock(engine_keys),
            Store::Tx(_) => Vec::new(),
        }
    }

    /// Locks every stripe (nothing inside `EXEC`).
    pub(crate) fn lock_all(&self) -> Vec<MutexGuard<'_, ()>> {
        match self.store {
            Store::Db => self.shared.stripes.lock_all(),
            Store::Tx(_) => Vec::new(),
        }
    }
}

/// The first key after every key that starts with `prefix` (`None`: there is none).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

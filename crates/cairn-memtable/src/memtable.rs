//! One memtable layer: the newest state of each key written while the layer was active
//! (a record or a tombstone), and per-index maps of the records it holds.
//!
//! Invariants (kept by [`Memtable::apply`], the one path that changes a layer):
//! - an index map lists exactly the live records of this layer that hold a value for it, at
//!   the value they hold now (an older layer may still list an older value: readers resolve
//!   every candidate to its newest version before they trust it);
//! - `prior` of a slot is the index values of the version the store will hold when this layer
//!   is flushed (the newest version in older layers or the store at the layer's first write of
//!   the key), so a flush deletes exactly the stale entries;
//! - `bytes` is the sum of the slots' sizes.
//!
//! - `order` holds exactly the keys of `records` (the hash map answers point reads; the ordered
//!   set answers scans).
//!
//! A layer is mutable only while it is the active one; rotation moves it, unchanged, behind an
//! `Arc` into the immutable queue.

use std::collections::hash_map;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use crate::key_set::KeySet;
use crate::record::{IndexKind, IndexValue, IndexValues, Record};

type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The state of one key in one layer.
#[derive(Debug)]
pub(crate) struct Slot<R: Record> {
    /// The record, or `None` for a tombstone.
    pub(crate) value: Option<Arc<R>>,
    /// Index values of the version the store holds when this layer flushes (`None`: absent).
    /// Boxed: most slots (new keys) have none, and a small slot keeps the hash map dense.
    pub(crate) prior: Option<Box<IndexValues>>,
    /// Memory charged for this slot.
    bytes: usize,
}

/// One index of one layer.
#[derive(Debug)]
pub(crate) enum LayerIndex<K> {
    /// Value -> the one record of this layer holding it.
    Unique(FastMap<IndexValue, K>),
    /// Value -> every record of this layer holding it, in key order (exact lookups only).
    /// Each (value, key) pair is one set entry, so a value held by millions of records costs
    /// what any other does.
    NonUnique(FastMap<IndexValue, KeySet<K>>),
    /// As `NonUnique`, plus the distinct values in order for range and prefix queries. A
    /// write finds its value's keys by hash; the ordered set changes only when a value
    /// appears in or leaves the layer (and appends when it is above every other).
    Ordered {
        keys: FastMap<IndexValue, KeySet<K>>,
        values: KeySet<IndexValue>,
    },
}

impl<K: Ord + Clone + std::hash::Hash> LayerIndex<K> {
    /// An empty index with room for `capacity` distinct values.
    fn new(kind: IndexKind, capacity: usize) -> Self {
        match kind {
            IndexKind::Unique => LayerIndex::Unique(map_with_capacity(capacity)),
            IndexKind::NonUnique => LayerIndex::NonUnique(map_with_capacity(capacity)),
            IndexKind::Ordered => LayerIndex::Ordered {
                keys: map_with_capacity(capacity),
                values: KeySet::default(),
            },
        }
    }

    /// Distinct values listed.
    fn values(&self) -> usize {
        match self {
            LayerIndex::Unique(map) => map.len(),
            LayerIndex::NonUnique(map) => map.len(),
            LayerIndex::Ordered { keys, .. } => keys.len(),
        }
    }

    fn insert(&mut self, value: IndexValue, key: &K) {
        match self {
            LayerIndex::Unique(map) => {
                map.insert(value, key.clone());
            }
            LayerIndex::NonUnique(map) => {
                map.entry(value).or_default().insert(key.clone());
            }
            LayerIndex::Ordered { keys, values } => match keys.entry(value) {
                hash_map::Entry::Occupied(mut entry) => entry.get_mut().insert(key.clone()),
                hash_map::Entry::Vacant(entry) => {
                    values.insert(entry.key().clone());
                    entry.insert(KeySet::default()).insert(key.clone());
                }
            },
        }
    }

    /// Unlists `key` from `value`; one map lookup per map.
    fn remove(&mut self, value: IndexValue, key: &K) {
        match self {
            LayerIndex::Unique(map) => {
                if let hash_map::Entry::Occupied(entry) = map.entry(value) {
                    if entry.get() == key {
                        entry.remove();
                    }
                }
            }
            LayerIndex::NonUnique(map) => {
                if let hash_map::Entry::Occupied(mut entry) = map.entry(value) {
                    entry.get_mut().remove(key);
                    if entry.get().is_empty() {
                        entry.remove();
                    }
                }
            }
            LayerIndex::Ordered { keys, values } => {
                if let hash_map::Entry::Occupied(mut entry) = keys.entry(value) {
                    entry.get_mut().remove(key);
                    if entry.get().is_empty() {
                        let (value, _) = entry.remove_entry();
                        values.remove(&value);
                    }
                }
            }
        }
    }

    /// The key this layer lists under exactly `value` in a unique index (`None` for the
    /// other kinds).
    pub(crate) fn unique(&self, value: &IndexValue) -> Option<&K> {
        match self {
            LayerIndex::Unique(map) => map.get(value),
            LayerIndex::NonUnique(_) | LayerIndex::Ordered { .. } => None,
        }
    }

    /// Keys this layer lists under exactly `value`.
    pub(crate) fn exact(&self, value: &IndexValue, out: &mut Vec<K>) {
        match self {
            LayerIndex::Unique(map) => out.extend(map.get(value).cloned()),
            LayerIndex::NonUnique(map) => {
                out.extend(map.get(value).into_iter().flat_map(KeySet::iter).cloned());
            }
            LayerIndex::Ordered { keys, .. } => {
                out.extend(keys.get(value).into_iter().flat_map(KeySet::iter).cloned());
            }
        }
    }

    /// Keys this layer lists under values within `range`, in (value, key) order, stopping at
    /// the first value for which `more` is false (ordered indexes only; others list nothing).
    /// A range whose start lies after its end holds nothing.
    pub(crate) fn range(
        &self,
        range: (Bound<&IndexValue>, Bound<&IndexValue>),
        more: impl Fn(&IndexValue) -> bool,
        out: &mut Vec<K>,
    ) {
        if !is_valid_range(range) {
            return;
        }
        let LayerIndex::Ordered { keys, values } = self else {
            return;
        };
        let (low, high) = range;
        let below_high = |value: &IndexValue| match high {
            Bound::Included(high) => value <= high,
            Bound::Excluded(high) => value < high,
            Bound::Unbounded => true,
        };
        for value in values
            .after(low)
            .take_while(|value| below_high(value) && more(value))
        {
            debug_assert!(keys.contains_key(value), "every ordered value has keys");
            out.extend(keys.get(value).into_iter().flat_map(KeySet::iter).cloned());
        }
    }
}

/// False for bounds `BTreeSet::range` refuses (start after end, or equal and both excluded).
pub(crate) fn is_valid_range((low, high): (Bound<&IndexValue>, Bound<&IndexValue>)) -> bool {
    use Bound::{Excluded, Included, Unbounded};
    match (low, high) {
        (Unbounded, _) | (_, Unbounded) => true,
        (Included(low), Included(high)) => low <= high,
        (Included(low) | Excluded(low), Excluded(high)) | (Excluded(low), Included(high)) => {
            low < high
        }
    }
}

fn map_with_capacity<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
}

/// A memtable layer.
#[derive(Debug)]
pub(crate) struct Memtable<R: Record> {
    records: FastMap<R::Key, Slot<R>>,
    order: KeySet<R::Key>,
    indexes: Vec<LayerIndex<R::Key>>,
    bytes: usize,
    tombstones: usize,
    created: Instant,
    /// Number of the layer: 1, 2, 3, ... in rotation order.
    id: u64,
    /// Highest write-ahead log sequence number written into the layer (0: none).
    last_lsn: u64,
}

/// Fixed memory charged per slot besides the record: the map node, key and bookkeeping.
const SLOT_OVERHEAD_BYTES: usize = 64;

impl<R: Record> Memtable<R> {
    /// The first layer, numbered `id`.
    pub(crate) fn new(id: u64) -> Self {
        Self::with_capacities(id, 0, &vec![0; R::INDEXES.len()])
    }

    /// The layer after this one, numbered `id`, its maps sized as this one's ended: growing
    /// a large hash map rehashes all of it, a pause in the middle of a writer's insert.
    pub(crate) fn successor(&self, id: u64) -> Self {
        let values: Vec<usize> = self.indexes.iter().map(LayerIndex::values).collect();
        Self::with_capacities(id, self.records.len(), &values)
    }

    /// An empty layer with room for `keys` keys and `values[i]` distinct values of index `i`.
    fn with_capacities(id: u64, keys: usize, values: &[usize]) -> Self {
        debug_assert_eq!(values.len(), R::INDEXES.len());
        let indexes = R::INDEXES
            .iter()
            .zip(values)
            .map(|(spec, capacity)| LayerIndex::new(spec.kind, *capacity))
            .collect();
        Memtable {
            records: map_with_capacity(keys),
            order: KeySet::default(),
            indexes,
            bytes: 0,
            tombstones: 0,
            created: Instant::now(),
            id,
            last_lsn: 0,
        }
    }

    /// The key's slot in this layer.
    pub(crate) fn slot(&self, key: &R::Key) -> Option<&Slot<R>> {
        self.records.get(key)
    }

    /// Writes the newest state of `key`. `prior` is used only when the layer has no slot for
    /// the key yet (see the module docs); `bytes` is the memory of the new state. An index
    /// whose value the write leaves unchanged is not touched.
    pub(crate) fn apply(
        &mut self,
        key: &R::Key,
        value: Option<Arc<R>>,
        prior: impl FnOnce() -> Option<IndexValues>,
        bytes: usize,
        lsn: u64,
    ) {
        let bytes = bytes.saturating_add(SLOT_OVERHEAD_BYTES);
        let is_tombstone = value.is_none();
        if let Some(slot) = self.records.get_mut(key) {
            if let Some(old) = &slot.value {
                for (position, index) in self.indexes.iter_mut().enumerate() {
                    let old_value = old.index_value(position);
                    let new_value = value.as_ref().and_then(|new| new.index_value(position));
                    if old_value == new_value {
                        continue;
                    }
                    if let Some(old_value) = old_value {
                        index.remove(old_value, key);
                    }
                    if let Some(new_value) = new_value {
                        index.insert(new_value, key);
                    }
                }
            } else {
                self.tombstones = self.tombstones.saturating_sub(1);
                Self::index_all(&mut self.indexes, key, value.as_deref());
            }
            self.bytes = self.bytes.saturating_sub(slot.bytes);
            slot.value = value;
            slot.bytes = bytes;
        } else {
            Self::index_all(&mut self.indexes, key, value.as_deref());
            let slot = Slot {
                value,
                prior: prior().map(Box::new),
                bytes,
            };
            self.records.insert(key.clone(), slot);
            self.order.insert(key.clone());
        }
        if is_tombstone {
            self.tombstones += 1;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        self.last_lsn = self.last_lsn.max(lsn);
        debug_assert_eq!(self.records.len(), self.order.len());
    }

    /// Lists `key` under each of `record`'s values.
    fn index_all(indexes: &mut [LayerIndex<R::Key>], key: &R::Key, record: Option<&R>) {
        let Some(record) = record else {
            return;
        };
        for (position, index) in indexes.iter_mut().enumerate() {
            if let Some(value) = record.index_value(position) {
                index.insert(value, key);
            }
        }
    }

    /// The layer's index number `index`.
    pub(crate) fn index(&self, index: usize) -> Option<&LayerIndex<R::Key>> {
        self.indexes.get(index)
    }

    /// Every slot, in no particular order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = (&R::Key, &Slot<R>)> {
        self.records.iter()
    }

    /// Slots with keys after `after` (all when `None`), in key order.
    pub(crate) fn slots_after(
        &self,
        after: Option<&R::Key>,
    ) -> impl Iterator<Item = (&R::Key, &Slot<R>)> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.order
            .after(start)
            .filter_map(|key| Some((key, self.records.get(key)?)))
    }

    /// Keys (records and tombstones) in the layer.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the layer holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Tombstones in the layer.
    pub(crate) fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// Memory charged to the layer.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the layer became active.
    pub(crate) fn created(&self) -> Instant {
        self.created
    }

    /// The layer's number.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Highest log sequence number in the layer.
    pub(crate) fn last_lsn(&self) -> u64 {
        self.last_lsn
    }
}

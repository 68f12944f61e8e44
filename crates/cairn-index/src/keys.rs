//! A node's keys and their pointers: one sorted run of byte strings packed into a single
//! buffer, with an entry per key holding its *head*, where its bytes end, and its pointer.
//!
//! A key's head is the 8 bytes after the prefix all keys of the node share, big-endian and
//! zero-padded, so heads are ordered like the keys. A search reads the inline samples (every
//! eighth head), then one or two cache lines of entries, and touches the key bytes only to
//! settle an equal head. The pointer sits in the same entry as the head, so the load that
//! follows a search is already in cache. 64 sixteen-byte keys cost two allocations and 36 bytes
//! a key. `Keys` is immutable: every change builds a new one (the tree is copy-on-write), and
//! construction `debug_assert!`s that the keys are strictly ascending.

use std::cmp::Ordering;
use std::sync::atomic::Ordering as MemoryOrdering;

use crossbeam_epoch::{Atomic, Guard, Pointable};
use smallvec::SmallVec;

/// One head in this many is sampled into `Keys::samples`.
const SAMPLE_STRIDE: usize = 8;

/// A key's head, the end of its bytes, and its pointer.
struct Entry<T: ?Sized + Pointable> {
    head: u64,
    end: u32,
    item: Atomic<T>,
}

impl<T: ?Sized + Pointable> Entry<T> {
    /// This entry with its end moved by `shift` (wrapping: a negative shift is a wrapped
    /// subtraction) and a copy of its pointer, for a successor node that shares the pointee.
    fn copy(&self, shift: u32, guard: &Guard) -> Entry<T> {
        Entry {
            head: self.head,
            end: self.end.wrapping_add(shift),
            item: Atomic::from(self.item.load(MemoryOrdering::Acquire, guard)),
        }
    }
}

/// Strictly ascending byte strings, each with an atomic pointer to a `T`.
pub(crate) struct Keys<T: ?Sized + Pointable> {
    /// How many bytes every key starts with.
    prefix: usize,
    /// Those bytes, inline when short, so a search checks them without touching `bytes`.
    shared: SmallVec<[u8; 16]>,
    /// Every `SAMPLE_STRIDE`th head, inline.
    samples: SmallVec<[u64; 8]>,
    /// Heads non-decreasing; ends non-decreasing, the last equal to `bytes.len()`.
    entries: SmallVec<[Entry<T>; 64]>,
    bytes: SmallVec<[u8; 1024]>,
}

/// Up to 8 bytes of `key` from `from`, big-endian, zero-padded: ordered like the keys.
fn head(key: &[u8], from: usize) -> u64 {
    let mut buffer = [0u8; 8];
    let rest = key.get(from..).unwrap_or_default();
    let take = rest.len().min(8);
    if let (Some(target), Some(source)) = (buffer.get_mut(..take), rest.get(..take)) {
        target.copy_from_slice(source);
    }
    u64::from_be_bytes(buffer)
}

/// Every `SAMPLE_STRIDE`th head of `entries`, for `Keys::samples`.
fn sample<T: ?Sized + Pointable>(entries: &[Entry<T>]) -> SmallVec<[u64; 8]> {
    entries
        .iter()
        .step_by(SAMPLE_STRIDE)
        .map(|entry| entry.head)
        .collect()
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<T: ?Sized + Pointable> Keys<T> {
    /// Packs `pairs`, whose keys must be strictly ascending.
    pub(crate) fn build<'k>(pairs: impl IntoIterator<Item = (&'k [u8], Atomic<T>)>) -> Keys<T> {
        // Both buffers are allocated at their final size: growing them and shrinking them into
        // boxes left the system allocator with holes that cost more memory than the keys.
        let pairs = pairs.into_iter();
        let mut entries = SmallVec::with_capacity(pairs.size_hint().0);
        let mut keys: SmallVec<[&[u8]; 64]> = SmallVec::new();
        let mut total = 0usize;
        for (key, item) in pairs {
            total += key.len();
            let end = u32::try_from(total).unwrap_or(u32::MAX);
            entries.push(Entry { head: 0, end, item });
            keys.push(key);
        }
        let mut bytes = SmallVec::with_capacity(total);
        for key in keys {
            bytes.extend_from_slice(key);
        }
        let mut keys = Keys {
            prefix: 0,
            shared: SmallVec::new(),
            samples: SmallVec::new(),
            entries,
            bytes,
        };
        let count = keys.len();
        keys.prefix = match count {
            0 => 0,
            // Sorted, so the first and last keys share the least.
            _ => common_prefix(keys.get(0), keys.get(count - 1)),
        };
        keys.shared = SmallVec::from_slice(keys.get(0).get(..keys.prefix).unwrap_or_default());
        let mut start = 0;
        for entry in &mut keys.entries {
            let end = entry.end as usize;
            entry.head = head(keys.bytes.get(start..end).unwrap_or_default(), keys.prefix);
            start = end;
        }
        keys.samples = sample(&keys.entries);
        debug_assert!(keys.is_strictly_ascending(), "keys out of order");
        keys
    }

    /// An empty block.
    pub(crate) fn empty() -> Keys<T> {
        Keys::build(std::iter::empty())
    }

    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of key data held.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    fn start(&self, index: usize) -> usize {
        match index.checked_sub(1) {
            None => 0,
            Some(previous) => self
                .entries
                .get(previous)
                .map_or(0, |entry| entry.end as usize),
        }
    }

    /// Key `index`; the empty slice past the end (callers check `len` first).
    pub(crate) fn get(&self, index: usize) -> &[u8] {
        let start = self.start(index);
        let end = self
            .entries
            .get(index)
            .map_or(start, |entry| entry.end as usize);
        self.bytes.get(start..end).unwrap_or_default()
    }

    /// The pointer of key `index`.
    pub(crate) fn item(&self, index: usize) -> Option<&Atomic<T>> {
        self.entries.get(index).map(|entry| &entry.item)
    }

    /// Key `index` with a copy of its pointer, for a successor node (which shares the pointee).
    pub(crate) fn copy(&self, index: usize, guard: &Guard) -> (&[u8], Atomic<T>) {
        let item = self.entries.get(index).map_or_else(Atomic::null, |entry| {
            Atomic::from(entry.item.load(MemoryOrdering::Acquire, guard))
        });
        (self.get(index), item)
    }

    /// This node with `key` and `item` inserted at `index` (where `search` put it), built by
    /// copying the two runs around it: no key is re-read and no head recomputed. `None` when
    /// the node is empty or `key` lacks the node's shared prefix; then `build` the successor.
    pub(crate) fn with_inserted(
        &self,
        index: usize,
        key: &[u8],
        item: Atomic<T>,
        guard: &Guard,
    ) -> Option<Keys<T>> {
        if self.entries.is_empty() || !key.starts_with(&self.shared) || index > self.len() {
            return None;
        }
        let start = self.start(index);
        let added = u32::try_from(key.len()).ok()?;
        let (before, after) = self.entries.split_at(index);
        let mut entries = SmallVec::with_capacity(self.len() + 1);
        entries.extend(before.iter().map(|entry| entry.copy(0, guard)));
        entries.push(Entry {
            head: head(key, self.prefix),
            end: u32::try_from(start).ok()?.saturating_add(added),
            item,
        });
        entries.extend(after.iter().map(|entry| entry.copy(added, guard)));
        let (low, high) = self.bytes.split_at(start.min(self.bytes.len()));
        let mut bytes = SmallVec::with_capacity(self.bytes.len() + key.len());
        bytes.extend_from_slice(low);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(high);
        Some(self.successor(entries, bytes))
    }

    /// This node without key `index`, built by copying the runs around it. The shared prefix
    /// stays (every remaining key still has it). `None` when nothing would remain.
    pub(crate) fn without(&self, index: usize, guard: &Guard) -> Option<Keys<T>> {
        if self.len() < 2 || index >= self.len() {
            return None;
        }
        let start = self.start(index);
        let end = self
            .entries
            .get(index)
            .map_or(start, |entry| entry.end as usize);
        let removed = u32::try_from(end - start).ok()?;
        let (before, after) = self.entries.split_at(index);
        let mut entries = SmallVec::with_capacity(self.len() - 1);
        entries.extend(before.iter().map(|entry| entry.copy(0, guard)));
        entries.extend(
            after
                .iter()
                .skip(1)
                .map(|entry| entry.copy(0u32.wrapping_sub(removed), guard)),
        );
        let mut bytes = SmallVec::with_capacity(self.bytes.len() - (end - start));
        bytes.extend_from_slice(self.bytes.get(..start).unwrap_or_default());
        bytes.extend_from_slice(self.bytes.get(end..).unwrap_or_default());
        Some(self.successor(entries, bytes))
    }

    /// A node of these `entries` and `bytes` under this node's prefix, with fresh samples.
    fn successor(&self, entries: SmallVec<[Entry<T>; 64]>, bytes: SmallVec<[u8; 1024]>) -> Keys<T> {
        let keys = Keys {
            prefix: self.prefix,
            shared: self.shared.clone(),
            samples: sample(&entries),
            entries,
            bytes,
        };
        debug_assert!(keys.is_strictly_ascending(), "keys out of order");
        debug_assert_eq!(
            keys.entries.last().map_or(0, |entry| entry.end as usize),
            keys.bytes.len(),
            "the last key ends where the bytes do"
        );
        keys
    }

    /// Copies of keys `range` with their pointers.
    pub(crate) fn copies<'a>(
        &'a self,
        range: std::ops::Range<usize>,
        guard: &'a Guard,
    ) -> impl Iterator<Item = (&'a [u8], Atomic<T>)> + 'a {
        range.map(move |index| self.copy(index, guard))
    }

    /// `Ok(i)` if key `i` equals `key`, else `Err(i)` where `key` would be inserted.
    pub(crate) fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let count = self.len();
        if count == 0 {
            return Err(0);
        }
        let key_prefix = key.get(..self.prefix.min(key.len())).unwrap_or_default();
        match key_prefix.cmp(&self.shared) {
            Ordering::Less => return Err(0),
            Ordering::Greater => return Err(count),
            Ordering::Equal if key.len() < self.prefix => return Err(0),
            Ordering::Equal => {}
        }
        let wanted = head(key, self.prefix);
        // The first head >= `wanted` lies after the last sample below it, up to the next one.
        let block = self.samples.partition_point(|&sample| sample < wanted);
        let low = block
            .checked_sub(1)
            .map_or(0, |before| before * SAMPLE_STRIDE + 1);
        let high = (block * SAMPLE_STRIDE).min(count);
        let stretch = self.entries.get(low..high).unwrap_or_default();
        let mut index = low + stretch.partition_point(|entry| entry.head < wanted);
        // Equal heads: settle by the bytes after the prefix.
        let rest = key.get(self.prefix..).unwrap_or_default();
        while self
            .entries
            .get(index)
            .is_some_and(|entry| entry.head == wanted)
        {
            let candidate = self.get(index).get(self.prefix..).unwrap_or_default();
            match candidate.cmp(rest) {
                Ordering::Less => index += 1,
                Ordering::Equal => return Ok(index),
                Ordering::Greater => return Err(index),
            }
        }
        Err(index)
    }

    /// The pointers, consumed (for freeing a tree that is going away).
    pub(crate) fn into_items(self) -> impl Iterator<Item = Atomic<T>> {
        self.entries.into_iter().map(|entry| entry.item)
    }

    /// The pointer of `key`, or where `key` would be inserted.
    pub(crate) fn find(&self, key: &[u8]) -> Result<&Atomic<T>, usize> {
        let index = self.search(key)?;
        debug_assert!(index < self.len());
        self.entries
            .get(index)
            .map(|entry| &entry.item)
            .ok_or(index)
    }

    fn is_strictly_ascending(&self) -> bool {
        (1..self.len()).all(|index| self.get(index - 1) < self.get(index))
    }
}

impl<T: ?Sized + Pointable> std::fmt::Debug for Keys<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&[u8]]) -> Keys<u8> {
        Keys::build(list.iter().map(|key| (*key, Atomic::null())))
    }

    #[test]
    fn search_finds_every_key_and_every_gap() {
        let keys = keys(&[b"b", b"bb", b"d", b"f"]);
        assert_eq!(keys.len(), 4);
        assert_eq!(keys.search(b"a"), Err(0));
        assert_eq!(keys.search(b"b"), Ok(0));
        assert_eq!(keys.search(b"ba"), Err(1));
        assert_eq!(keys.search(b"bb"), Ok(1));
        assert_eq!(keys.search(b"c"), Err(2));
        assert_eq!(keys.search(b"f"), Ok(3));
        assert_eq!(keys.search(b"g"), Err(4));
        assert_eq!(keys.get(4), b"");
        assert_eq!(keys.byte_len(), 5);
        assert!(keys.item(4).is_none());
    }

    /// The copying insert and removal build the same node as `build` from the same keys.
    #[test]
    fn inserting_and_removing_by_copying_matches_a_rebuild() {
        // It pins the collector throughout: not while a model check counts its frees.
        let _exclusive = crate::model::EXCLUSIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let guard = &crossbeam_epoch::pin();
        // The first and last keys fix the shared prefix at `key/`; the rest go between.
        let mut held = vec![b"key/000".to_vec(), b"key/999".to_vec()];
        let mut node = keys(&[b"key/000", b"key/999"]);
        let middle: Vec<Vec<u8>> = (1..40u32)
            .map(|index| format!("key/{:03}", index * 7).into_bytes())
            .collect();
        for key in middle.into_iter().rev() {
            let index = node.search(&key).expect_err("absent");
            node = node
                .with_inserted(index, &key, Atomic::null(), guard)
                .expect("shares the prefix");
            held.insert(index, key);
            let rebuilt = keys(&held.iter().map(Vec::as_slice).collect::<Vec<_>>());
            assert_eq!(node.bytes, rebuilt.bytes);
            assert_eq!(node.samples, rebuilt.samples);
            for (index, key) in held.iter().enumerate() {
                assert_eq!(node.get(index), key.as_slice());
                assert_eq!(node.search(key), Ok(index));
            }
        }
        assert!(
            node.with_inserted(0, b"other", Atomic::null(), guard)
                .is_none(),
            "a key without the shared prefix needs a rebuild"
        );
        while held.len() > 1 {
            let index = held.len() / 3;
            node = node.without(index, guard).expect("keys remain");
            held.remove(index);
            for (index, key) in held.iter().enumerate() {
                assert_eq!(node.get(index), key.as_slice());
                assert_eq!(node.search(key), Ok(index));
            }
            assert_eq!(node.byte_len(), held.iter().map(Vec::len).sum::<usize>());
        }
        assert!(
            node.without(0, guard).is_none(),
            "the last key is not copied away"
        );
    }

    #[test]
    fn search_agrees_with_a_plain_search_on_shared_prefixes_and_equal_heads() {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for a in 0..4u8 {
            for len in 0..12 {
                let mut key = b"run/0001/".to_vec();
                key.extend(std::iter::repeat_n(b'x', len));
                key.push(a);
                all.push(key);
            }
        }
        all.sort();
        all.dedup();
        let keys = Keys::<u8>::build(all.iter().map(|key| (key.as_slice(), Atomic::null())));
        let mut probes = all.clone();
        probes.extend([
            b"".to_vec(),
            b"run".to_vec(),
            b"run/0001".to_vec(),
            b"run/0002".to_vec(),
            b"s".to_vec(),
        ]);
        for probe in probes {
            assert_eq!(keys.search(&probe), all.binary_search(&probe), "{probe:?}");
            let mut longer = probe.clone();
            longer.push(0);
            assert_eq!(
                keys.search(&longer),
                all.binary_search(&longer),
                "{longer:?}"
            );
        }
    }
}

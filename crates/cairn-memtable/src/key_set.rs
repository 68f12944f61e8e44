//! [`KeySet`]: an ordered set of primary keys that appends ascending keys in O(1).
//!
//! A layer keeps its keys in order (for scans) and, per index value, the keys holding it. Most
//! keys arrive in ascending order (sequence numbers, timestamps, ids), and a B-tree pays its
//! full descent, and a linear search of the rightmost node at each level, for every one of
//! them. `KeySet` keeps a sorted `tail` vector beside the tree: a key above every key in the
//! set is pushed onto it, anything else goes to the tree.
//!
//! Invariants (kept by [`KeySet::insert`] and [`KeySet::remove`], the only paths that change
//! a set):
//! - `tail` is strictly ascending;
//! - every key in `tree` is below every key in `tail`, so iteration is the tree, then the tail;
//! - no key is in both.
//!
//! A key that lands inside the tail's span (or a removal from its middle) first moves the
//! whole tail into the tree, unless the tail is short (`SMALL` keys), which takes it in place.
//! A key moves into the tree at most once, so this costs O(log n) per key amortized, whatever
//! the order of the writes.

use std::collections::BTreeSet;
use std::ops::Bound;

/// A tail this short takes keys anywhere in its span (and below it, when the tree is empty)
/// and gives them up in place, by a move of at most this many keys: a small set (the keys of
/// one index value, say) then never builds a tree at all.
const SMALL: usize = 32;

/// An ordered set of keys. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct KeySet<K> {
    tree: BTreeSet<K>,
    tail: Vec<K>,
}

impl<K> Default for KeySet<K> {
    fn default() -> Self {
        KeySet {
            tree: BTreeSet::new(),
            tail: Vec::new(),
        }
    }
}

impl<K: Ord + Clone> KeySet<K> {
    /// Adds `key` (a key already present is left as it is).
    pub(crate) fn insert(&mut self, key: K) {
        let small = self.tail.len() < SMALL;
        match self.tail.last() {
            Some(last) if key > *last => self.tail.push(key),
            None if self.tree.last().is_none_or(|last| key > *last) => self.tail.push(key),
            None => {
                self.tree.insert(key);
            }
            Some(_) => {
                let below = self.tail.first().is_some_and(|first| key < *first);
                match self.tail.binary_search(&key) {
                    Ok(_) => {}
                    // A short tail takes any key above the tree in place.
                    Err(at) if small && (!below || self.tree.is_empty()) => {
                        self.tail.insert(at, key);
                    }
                    Err(_) if below => {
                        self.tree.insert(key);
                    }
                    Err(_) => {
                        self.spill();
                        self.tree.insert(key);
                    }
                }
            }
        }
        self.check();
    }

    /// Removes `key`; false when it was not in the set.
    pub(crate) fn remove(&mut self, key: &K) -> bool {
        let in_tail = self.tail.first().is_some_and(|first| key >= first);
        let removed = if !in_tail {
            self.tree.remove(key)
        } else if self.tail.last() == Some(key) {
            self.tail.pop().is_some()
        } else if let Ok(at) = self.tail.binary_search(key) {
            if self.tail.len() <= SMALL {
                self.tail.remove(at);
                true
            } else {
                self.spill();
                self.tree.remove(key)
            }
        } else {
            false
        };
        self.check();
        removed
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.tree.len() + self.tail.len()
    }

    /// True when the set holds no key.
    pub(crate) fn is_empty(&self) -> bool {
        self.tree.is_empty() && self.tail.is_empty()
    }

    /// Every key, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &K> {
        self.tree.iter().chain(&self.tail)
    }

    /// Keys above `after` (all when `Unbounded`), in order.
    pub(crate) fn after(&self, after: Bound<&K>) -> impl Iterator<Item = &K> {
        let skip = match after {
            Bound::Unbounded => 0,
            Bound::Excluded(key) => self.tail.partition_point(|k| k <= key),
            Bound::Included(key) => self.tail.partition_point(|k| k < key),
        };
        self.tree
            .range((after, Bound::Unbounded))
            .chain(self.tail.get(skip..).unwrap_or_default())
    }

    /// Moves the tail into the tree: built in bulk (linear) and appended when the tail is a
    /// good share of the tree, one insert at a time otherwise, so a spill costs the smaller of
    /// the two.
    fn spill(&mut self) {
        if self.tail.len().saturating_mul(8) >= self.tree.len() {
            let mut moved: BTreeSet<K> = self.tail.drain(..).collect();
            self.tree.append(&mut moved);
        } else {
            self.tree.extend(self.tail.drain(..));
        }
    }

    /// The invariants, in debug builds (the tail is checked at its ends and boundary; a full
    /// sortedness check would make every debug-build insert linear).
    fn check(&self) {
        if let (Some(first), Some(last)) = (self.tail.first(), self.tail.last()) {
            debug_assert!(first <= last, "the tail is ascending");
            debug_assert!(
                self.tree.last().is_none_or(|top| top < first),
                "the tree sorts below the tail"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_testkit::SplitMix64;

    /// Random inserts and removals, ascending runs mixed with keys inside and below the tail,
    /// checked after every step against a `BTreeSet`.
    #[test]
    fn behaves_as_an_ordered_set() {
        for seed in 0..20 {
            let mut rng = SplitMix64::new(seed);
            let mut set = KeySet::default();
            let mut model = BTreeSet::new();
            let mut next = 0_u64;
            for _ in 0..2_000 {
                let roll = rng.next_u64() % 10;
                let key = if roll < 6 {
                    next += 1 + rng.next_u64() % 3;
                    next
                } else {
                    rng.next_u64() % (next + 2)
                };
                if roll == 9 || roll == 8 {
                    assert_eq!(
                        set.remove(&key),
                        model.remove(&key),
                        "seed {seed} key {key}"
                    );
                } else {
                    set.insert(key);
                    model.insert(key);
                }
                assert_eq!(set.len(), model.len(), "seed {seed}");
                assert_eq!(set.is_empty(), model.is_empty());
            }
            assert!(set.iter().eq(model.iter()), "seed {seed}");
            for probe in [0, 1, next / 2, next, next + 1] {
                let excluded = set.after(Bound::Excluded(&probe));
                assert!(excluded.eq(model.range((Bound::Excluded(probe), Bound::Unbounded))));
                let included = set.after(Bound::Included(&probe));
                assert!(included.eq(model.range(probe..)));
            }
        }
    }

    #[test]
    fn ascending_keys_stay_in_the_tail() {
        let mut set = KeySet::default();
        for key in 0..1_000_u64 {
            set.insert(key);
        }
        assert!(set.tree.is_empty());
        assert_eq!(set.tail.len(), 1_000);
        assert!(set.remove(&999));
        assert!(set.tree.is_empty(), "removing the last key pops it");
        assert!(set.remove(&500));
        assert_eq!(set.tail.len(), 0, "a removal inside the tail spills it");
        assert_eq!(set.len(), 998);
    }

    #[test]
    fn a_small_set_never_builds_a_tree() {
        let mut rng = SplitMix64::new(3);
        let mut set = KeySet::default();
        let mut model = BTreeSet::new();
        for _ in 0..5_000 {
            let key = rng.next_u64() % 64;
            if model.len() >= SMALL || rng.next_u64().is_multiple_of(3) {
                assert_eq!(set.remove(&key), model.remove(&key));
            } else {
                set.insert(key);
                model.insert(key);
            }
            assert!(
                set.tree.is_empty(),
                "in any order, up to {SMALL} keys stay in the tail"
            );
            assert!(set.iter().eq(model.iter()));
        }
    }
}

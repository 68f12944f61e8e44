//! The deadline heap: a min-heap of `(deadline, key)` pairs that tells the reaper which keys
//! expire next, with its own compaction rule.
//!
//! A pair is pushed whenever a key's newest entry gets a new deadline. It goes stale when the
//! key is rewritten: the reaper skips stale pairs, and compaction drops them once the heap has
//! more than doubled since the last compaction, which keeps it within about twice the number
//! of live deadlines at an O(1) amortized cost per push. Which pairs are live is decided by the
//! caller (it reads the chains); this type only keeps the heap and the rule.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::mvcc::chain::NO_DEADLINE;
use crate::types::Key;

/// Pairs allowed on top of twice the live count before compaction is due, so that a small
/// heap is never compacted over and over.
const COMPACTION_SLACK: usize = 1_024;

/// `(deadline, key)` pairs, soonest first; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct DeadlineHeap {
    heap: BinaryHeap<Reverse<(u64, Key)>>,
    /// Heap size right after the last compaction: the live count, as of then.
    after_compaction: usize,
}

impl DeadlineHeap {
    /// Pairs held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Records that `key`'s newest entry now expires at `deadline`.
    pub(crate) fn push(&mut self, deadline: u64, key: Key) {
        debug_assert_ne!(deadline, NO_DEADLINE, "only real deadlines go on the heap");
        self.heap.push(Reverse((deadline, key)));
    }

    /// Removes and returns the soonest pair if its deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<(u64, Key)> {
        let due = self
            .heap
            .peek()
            .is_some_and(|Reverse((deadline, _))| *deadline <= now);
        if !due {
            return None;
        }
        self.heap.pop().map(|Reverse(pair)| pair)
    }

    /// True when the heap has more than doubled since it was last compacted, so at least half
    /// of it may be stale.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.heap.len() > 2 * self.after_compaction + COMPACTION_SLACK
    }

    /// Takes every pair out when compaction is due (the heap is left empty and keeps taking
    /// pushes), so the caller can filter them without holding its lock; `None` otherwise.
    /// The survivors go back with `merge_compacted`.
    pub(crate) fn take_for_compaction(&mut self) -> Option<Vec<(u64, Key)>> {
        if !self.needs_compaction() {
            return None;
        }
        let taken = std::mem::take(&mut self.heap);
        Some(
            taken
                .into_vec()
                .into_iter()
                .map(|Reverse(pair)| pair)
                .collect(),
        )
    }

    /// Puts back the pairs of a compaction that are still live (duplicates dropped), merged
    /// with whatever was pushed meanwhile, and records the new size as the live count.
    pub(crate) fn merge_compacted(&mut self, live: Vec<(u64, Key)>) {
        let mut live: Vec<Reverse<(u64, Key)>> = live.into_iter().map(Reverse).collect();
        live.sort_unstable();
        live.dedup();
        let mut merged = BinaryHeap::from(live);
        merged.append(&mut self.heap);
        self.after_compaction = merged.len();
        self.heap = merged;
    }

    /// Declares every pair held live, as compaction would leave them (recovery: a snapshot's
    /// pairs are exact).
    pub(crate) fn mark_compacted(&mut self) {
        self.after_compaction = self.heap.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_due_pairs_soonest_first() {
        let mut heap = DeadlineHeap::default();
        heap.push(30, Key::from("c"));
        heap.push(10, Key::from("a"));
        heap.push(20, Key::from("b"));
        assert_eq!(heap.pop_due(5), None);
        assert_eq!(heap.pop_due(20), Some((10, Key::from("a"))));
        assert_eq!(heap.pop_due(20), Some((20, Key::from("b"))));
        assert_eq!(heap.pop_due(20), None);
        assert_eq!(heap.len(), 1);
    }

    #[test]
    fn compaction_is_due_once_the_heap_has_doubled() {
        let mut heap = DeadlineHeap::default();
        for deadline in 0..=COMPACTION_SLACK as u64 {
            assert!(heap.take_for_compaction().is_none());
            heap.push(deadline + 1, Key::from("k"));
        }
        let taken = heap.take_for_compaction().expect("due above the slack");
        assert_eq!(taken.len(), COMPACTION_SLACK + 1);
        assert_eq!(heap.len(), 0);
        // One pair was pushed during the filtering; the survivors come back deduplicated.
        heap.push(7, Key::from("new"));
        heap.merge_compacted(vec![(3, Key::from("k")), (3, Key::from("k"))]);
        assert_eq!(heap.len(), 2);
        assert!(!heap.needs_compaction());
        assert_eq!(heap.pop_due(u64::MAX - 1), Some((3, Key::from("k"))));
        assert_eq!(heap.pop_due(u64::MAX - 1), Some((7, Key::from("new"))));
    }
}

//! A key's version chain, and the pure rules for reading and pruning it.
//!
//! A chain is immutable once published; a commit builds a successor and swaps it in. The
//! rules, all pure functions of their arguments so they can be tested alone:
//! - **read**: a reader at version `r` sees the newest entry with `version <= r`; if that entry
//!   is a tombstone or its deadline has passed, the key is absent. It never falls through to
//!   an older entry.
//! - **prune** (given a watermark `w` at or below every live reader's version): keep every entry
//!   newer than `w`, plus the newest entry at or below `w`; then drop tombstones at the bottom,
//!   since "a tombstone" and "nothing" read the same. A chain that prunes to nothing can leave
//!   the index.
//!
//! So a key overwritten a million times with no snapshot open holds at most two entries (the
//! newest, and the one before it until the maintainer prunes it), whatever its history.

use smallvec::SmallVec;

use crate::types::Value;

/// Deadline meaning "never expires".
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

/// One version of one key.
#[derive(Clone, Debug)]
pub(crate) struct VersionEntry {
    /// The commit that wrote it.
    pub(crate) version: u64,
    /// Absolute expiry in clock milliseconds; `NO_DEADLINE` for none.
    pub(crate) deadline_millis: u64,
    /// `None` is a tombstone.
    pub(crate) value: Option<Value>,
}

impl VersionEntry {
    /// True when the entry reads as absent at `now_millis`.
    pub(crate) fn is_dead_at(&self, now_millis: u64) -> bool {
        self.value.is_none() || self.deadline_millis <= now_millis
    }

    /// The live value at `now_millis`, if any. Reads the clock only when there is a deadline.
    pub(crate) fn live_value(&self, now: impl FnOnce() -> u64) -> Option<&Value> {
        let value = self.value.as_ref()?;
        if self.deadline_millis != NO_DEADLINE && self.deadline_millis <= now() {
            return None;
        }
        Some(value)
    }
}

/// A key's versions, newest first. Two entries are stored inline: the steady state of an
/// overwritten key.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub(crate) entries: SmallVec<[VersionEntry; 2]>,
}

impl Chain {
    /// A chain of one entry.
    pub(crate) fn single(entry: VersionEntry) -> Self {
        let mut entries = SmallVec::new();
        entries.push(entry);
        Chain { entries }
    }

    /// The newest entry (a published chain is never empty).
    pub(crate) fn head(&self) -> Option<&VersionEntry> {
        self.entries.first()
    }

    /// The version of the newest entry, or 0 for an empty chain.
    pub(crate) fn head_version(&self) -> u64 {
        self.head().map_or(0, |entry| entry.version)
    }

    /// The entry a reader at `read_version` sees: the newest with `version <= read_version`.
    pub(crate) fn entry_at(&self, read_version: u64) -> Option<&VersionEntry> {
        self.entries
            .iter()
            .find(|entry| entry.version <= read_version)
    }

    /// The chain after `newest` is committed on top of this one, pruned at `watermark`.
    pub(crate) fn successor(&self, newest: VersionEntry, watermark: u64) -> Chain {
        let mut entries: SmallVec<[VersionEntry; 2]> = SmallVec::new();
        entries.push(newest);
        for entry in &self.entries {
            let keep_going = entry.version > watermark;
            entries.push(entry.clone());
            if !keep_going {
                break;
            }
        }
        let mut chain = Chain { entries };
        chain.drop_bottom_tombstones();
        chain
    }

    /// This chain pruned at `watermark`, or `None` when pruning changes nothing.
    pub(crate) fn pruned(&self, watermark: u64) -> Option<Chain> {
        let keep = self
            .entries
            .iter()
            .position(|entry| entry.version <= watermark)
            .map_or(self.entries.len(), |index| index + 1);
        let mut chain = Chain {
            entries: self.entries[..keep].iter().cloned().collect(),
        };
        chain.drop_bottom_tombstones();
        (chain.entries.len() != self.entries.len()).then_some(chain)
    }

    /// A tombstone with nothing below it reads exactly like no entry at all.
    fn drop_bottom_tombstones(&mut self) {
        while self
            .entries
            .last()
            .is_some_and(|entry| entry.value.is_none())
        {
            self.entries.pop();
        }
    }

    /// How many versions the chain holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(version: u64, text: &str) -> VersionEntry {
        VersionEntry {
            version,
            deadline_millis: NO_DEADLINE,
            value: Some(Value::from(text)),
        }
    }

    fn tombstone(version: u64) -> VersionEntry {
        VersionEntry {
            version,
            deadline_millis: NO_DEADLINE,
            value: None,
        }
    }

    fn versions(chain: &Chain) -> Vec<u64> {
        chain.entries.iter().map(|entry| entry.version).collect()
    }

    #[test]
    fn reader_sees_newest_entry_at_or_below_its_version() {
        let chain = Chain::single(put(3, "a"))
            .successor(put(5, "b"), 0)
            .successor(put(9, "c"), 0);
        assert_eq!(versions(&chain), vec![9, 5, 3]);
        assert!(chain.entry_at(2).is_none());
        assert_eq!(chain.entry_at(4).map(|entry| entry.version), Some(3));
        assert_eq!(chain.entry_at(5).map(|entry| entry.version), Some(5));
        assert_eq!(chain.entry_at(100).map(|entry| entry.version), Some(9));
    }

    #[test]
    fn successor_keeps_one_entry_at_or_below_the_watermark() {
        let mut chain = Chain::single(put(1, "a"));
        for version in 2..1_000 {
            chain = chain.successor(put(version, "x"), version - 1);
            assert!(chain.len() <= 2, "chain grew to {}", chain.len());
        }
        assert_eq!(versions(&chain), vec![999, 998]);
    }

    #[test]
    fn successor_keeps_history_a_reader_still_needs() {
        let mut chain = Chain::single(put(1, "a"));
        for version in 2..10 {
            chain = chain.successor(put(version, "x"), 1);
        }
        assert_eq!(chain.len(), 9);
        assert_eq!(chain.entry_at(1).map(|entry| entry.version), Some(1));
    }

    #[test]
    fn pruning_at_the_head_drops_history_and_tombstones() {
        let chain = Chain::single(put(1, "a")).successor(tombstone(2), 0);
        assert_eq!(versions(&chain), vec![2, 1]);
        let pruned = chain.pruned(2).expect("pruning changes the chain");
        assert!(pruned.entries.is_empty(), "a lone tombstone prunes away");
        let chain = Chain::single(put(1, "a")).successor(put(2, "b"), 0);
        let pruned = chain.pruned(2).expect("pruning changes the chain");
        assert_eq!(versions(&pruned), vec![2]);
        assert!(pruned.pruned(2).is_none(), "pruning is idempotent");
    }

    #[test]
    fn deadline_hides_a_value_without_falling_through() {
        let expiring = VersionEntry {
            version: 2,
            deadline_millis: 50,
            value: Some(Value::from("new")),
        };
        let chain = Chain::single(put(1, "old")).successor(expiring, 0);
        let seen = chain.entry_at(10).expect("entry at v2");
        assert!(seen.live_value(|| 49).is_some());
        assert!(seen.live_value(|| 50).is_none());
        assert!(seen.is_dead_at(50));
    }
}

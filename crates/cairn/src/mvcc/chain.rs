//! A key's version chain, and the pure rules for reading and pruning it.
//!
//! A chain is immutable once published; a commit builds a successor and swaps it in. The
//! rules, all pure functions of their arguments so they can be tested alone:
//! - **read**: a reader at version `r` sees the newest entry with `version <= r`; if that entry
//!   is a tombstone or its deadline has passed, the key is absent. It never falls through to
//!   an older entry.
//! - **prune** (given the [`Horizon`]: every live read version plus the visible version): keep
//!   every entry newer than the visible version, and each entry that is the newest at or below
//!   some horizon version; drop the rest. Then drop tombstones at the bottom, since "a
//!   tombstone" and "nothing" read the same. A chain that prunes to nothing leaves the index.
//!
//! So a chain holds at most (live readers + 2) entries whatever its history: a key overwritten
//! a million times with no snapshot open holds at most two (the newest, and the one before it
//! until the maintainer prunes it), and one long-lived snapshot adds one more, not a million.

use smallvec::SmallVec;

use crate::mvcc::readers::Horizon;
use crate::value::Value;

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
    #[cfg(test)]
    pub(crate) fn single(entry: VersionEntry) -> Self {
        let mut entries = SmallVec::new();
        entries.push(entry);
        Chain { entries }
    }

    /// The newest entry (a published chain is never empty).
    pub(crate) fn head(&self) -> Option<&VersionEntry> {
        self.entries.first()
    }

    /// The entry a reader at `read_version` sees: the newest with `version <= read_version`.
    pub(crate) fn entry_at(&self, read_version: u64) -> Option<&VersionEntry> {
        self.entries
            .iter()
            .find(|entry| entry.version <= read_version)
    }

    /// The chain after `newest` is committed on top of this one, pruned to `horizon`. With one
    /// old entry no horizon can change the outcome, so `horizon` is only asked for when the old
    /// chain has history.
    /// Takes the chain by value: what it keeps moves, nothing is cloned. The engine applies
    /// the same rules to a record in place (`Record::successor`, which is tested against this).
    #[cfg(test)]
    pub(crate) fn successor(
        self,
        newest: VersionEntry,
        horizon: impl FnOnce() -> Horizon,
    ) -> Chain {
        let mut entries: SmallVec<[VersionEntry; 2]> = SmallVec::new();
        entries.push(newest);
        if self.entries.len() <= 1 {
            entries.extend(self.entries);
        } else {
            let horizon = horizon();
            let newer: SmallVec<[u64; 4]> = std::iter::once(u64::MAX)
                .chain(self.entries.iter().map(|entry| entry.version))
                .collect();
            entries.extend(
                self.entries
                    .into_iter()
                    .zip(newer)
                    .filter(|(entry, newer)| Self::keeps(entry.version, *newer, &horizon))
                    .map(|(entry, _)| entry),
            );
        }
        let mut chain = Chain { entries };
        drop_bottom_tombstones(&mut chain.entries);
        chain
    }

    /// This chain pruned to `horizon`, or `None` when pruning changes nothing.
    pub(crate) fn pruned(&self, horizon: &Horizon) -> Option<Chain> {
        let mut chain = Chain {
            entries: Self::retained(&self.entries, horizon).cloned().collect(),
        };
        drop_bottom_tombstones(&mut chain.entries);
        (chain.entries.len() != self.entries.len()).then_some(chain)
    }

    /// The entries (newest first) some reader in `horizon` can still see.
    fn retained<'a>(
        entries: &'a [VersionEntry],
        horizon: &'a Horizon,
    ) -> impl Iterator<Item = &'a VersionEntry> + 'a {
        // An entry is seen by readers in [its version, the next newer entry's version).
        let newer_versions = std::iter::once(u64::MAX).chain(entries.iter().map(|e| e.version));
        entries
            .iter()
            .zip(newer_versions)
            .filter(move |(entry, newer)| Self::keeps(entry.version, *newer, horizon))
            .map(|(entry, _)| entry)
    }

    /// True when some reader in `horizon` can see the entry at `version`, whose next newer
    /// entry is at version `newer` (`u64::MAX` for the newest): it is newer than the visible
    /// version, or a reader's version lies in [`version`, `newer`).
    pub(crate) fn keeps(version: u64, newer: u64, horizon: &Horizon) -> bool {
        version > horizon.visible() || horizon.any_in(version, newer)
    }

    /// How many versions the chain holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Drops the tombstones at the bottom of `entries` (newest first): a tombstone with nothing
/// below it reads exactly like no entry at all.
pub(crate) fn drop_bottom_tombstones(entries: &mut SmallVec<[VersionEntry; 2]>) {
    while entries.last().is_some_and(|entry| entry.value.is_none()) {
        entries.pop();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn put(version: u64, text: &str) -> VersionEntry {
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

    fn horizon(versions: &[u64]) -> Horizon {
        Horizon::from_versions(versions)
    }

    #[test]
    fn reader_sees_newest_entry_at_or_below_its_version() {
        let chain = Chain::single(put(3, "a"))
            .successor(put(5, "b"), || horizon(&[3]))
            .successor(put(9, "c"), || horizon(&[3, 5]));
        assert_eq!(versions(&chain), vec![9, 5, 3]);
        assert!(chain.entry_at(2).is_none());
        assert_eq!(chain.entry_at(4).map(|entry| entry.version), Some(3));
        assert_eq!(chain.entry_at(5).map(|entry| entry.version), Some(5));
        assert_eq!(chain.entry_at(100).map(|entry| entry.version), Some(9));
    }

    #[test]
    fn successor_keeps_only_the_newest_and_the_visible_entry() {
        let mut chain = Chain::single(put(1, "a"));
        for version in 2..1_000 {
            chain = chain.successor(put(version, "x"), || horizon(&[version - 1]));
            assert!(chain.len() <= 2, "chain grew to {}", chain.len());
        }
        assert_eq!(versions(&chain), vec![999, 998]);
    }

    #[test]
    fn successor_keeps_what_a_long_lived_reader_sees_and_nothing_more() {
        let mut chain = Chain::single(put(1, "a"));
        for version in 2..1_000 {
            chain = chain.successor(put(version, "x"), || horizon(&[1, version - 1]));
            assert!(chain.len() <= 3, "chain grew to {}", chain.len());
        }
        assert_eq!(versions(&chain), vec![999, 998, 1]);
        assert_eq!(chain.entry_at(1).map(|entry| entry.version), Some(1));
        assert_eq!(chain.entry_at(998).map(|entry| entry.version), Some(998));
    }

    #[test]
    fn entries_newer_than_the_visible_version_are_never_pruned() {
        let chain = Chain {
            entries: [put(7, "c"), put(6, "b"), put(5, "a"), put(2, "z")]
                .into_iter()
                .collect(),
        };
        let pruned = chain.pruned(&horizon(&[5])).expect("v2 is unreachable");
        assert_eq!(versions(&pruned), vec![7, 6, 5]);
    }

    #[test]
    fn pruning_at_the_head_drops_history_and_tombstones() {
        let chain = Chain::single(put(1, "a")).successor(tombstone(2), || horizon(&[1]));
        assert_eq!(versions(&chain), vec![2, 1]);
        let pruned = chain
            .pruned(&horizon(&[2]))
            .expect("pruning changes the chain");
        assert!(pruned.entries.is_empty(), "a lone tombstone prunes away");
        let chain = Chain::single(put(1, "a")).successor(put(2, "b"), || horizon(&[1]));
        let pruned = chain
            .pruned(&horizon(&[2]))
            .expect("pruning changes the chain");
        assert_eq!(versions(&pruned), vec![2]);
        assert!(
            pruned.pruned(&horizon(&[2])).is_none(),
            "pruning is idempotent"
        );
    }

    #[test]
    fn deadline_hides_a_value_without_falling_through() {
        let expiring = VersionEntry {
            version: 2,
            deadline_millis: 50,
            value: Some(Value::from("new")),
        };
        let chain = Chain::single(put(1, "old")).successor(expiring, || horizon(&[1]));
        let seen = chain.entry_at(10).expect("entry at v2");
        assert!(seen.live_value(|| 49).is_some());
        assert!(seen.live_value(|| 50).is_none());
        assert!(seen.is_dead_at(50));
    }
}

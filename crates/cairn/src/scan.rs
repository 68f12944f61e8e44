//! Ordered scans: `scan_prefix` and `range`, forward and reverse.
//!
//! A scan is a range read on the ordered index at one registered read version, so it sees one
//! consistent state however long it runs, and costs O(log n + k) for k entries. It reads the
//! index in chunks of `SCAN_CHUNK_ENTRIES`: each chunk is one traversal, and between chunks the
//! scan re-seeks past the last key it saw. So an iterator pins no index memory between calls
//! and can be held as long as the caller likes; what it does pin is its read version, which
//! keeps the history it can see from being pruned until it is dropped.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::engine::Shared;
use crate::error::{Error, Result};
use crate::limits::SCAN_CHUNK_ENTRIES;
use crate::mvcc::readers::ReadGuard;
use crate::types::{Key, Value};

/// Most index entries one chunk examines, visible or not, before it returns what it has.
const SCAN_CHUNK_EXAMINED_MAX: usize = SCAN_CHUNK_ENTRIES * 8;

/// The range of keys starting with `prefix`: `[prefix, successor(prefix))`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<Key>, Bound<Key>) {
    let lower = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        Bound::Included(Key::from_slice(prefix))
    };
    let mut successor = prefix.to_vec();
    while successor.last() == Some(&u8::MAX) {
        successor.pop();
    }
    let upper = match successor.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(Key::from_slice(&successor))
        }
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// Owned bounds from any `RangeBounds` over byte strings; a reversed range is an error.
pub(crate) fn owned_bounds<K: AsRef<[u8]>>(
    range: &impl RangeBounds<K>,
) -> Result<(Bound<Key>, Bound<Key>)> {
    let own = |bound: Bound<&K>| match bound {
        Bound::Included(key) => Bound::Included(Key::from_slice(key.as_ref())),
        Bound::Excluded(key) => Bound::Excluded(Key::from_slice(key.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    };
    let lower = own(range.start_bound());
    let upper = own(range.end_bound());
    if let (
        Bound::Included(start) | Bound::Excluded(start),
        Bound::Included(end) | Bound::Excluded(end),
    ) = (&lower, &upper)
    {
        if start > end {
            return Err(Error::InvalidArgument(format!(
                "range start {start:?} is after its end {end:?}"
            )));
        }
    }
    Ok((lower, upper))
}

pub(crate) fn as_slice_bound(bound: &Bound<Key>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_bytes()),
        Bound::Excluded(key) => Bound::Excluded(key.as_bytes()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// True when no key can lie between the bounds (so a range call must not be made: ordered
/// collections panic on some of these).
pub(crate) fn bounds_are_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    match (lower, upper) {
        (Bound::Included(start), Bound::Included(end)) => start > end,
        (Bound::Included(start) | Bound::Excluded(start), Bound::Excluded(end))
        | (Bound::Excluded(start), Bound::Included(end)) => start >= end,
        _ => false,
    }
}

/// An iterator over `(key, value)` pairs in key order (or reverse, with `.rev()`), all read at
/// one version.
#[derive(Debug)]
pub struct Scan {
    shared: Arc<Shared>,
    guard: ReadGuard,
    lower: Bound<Key>,
    upper: Bound<Key>,
    front: VecDeque<(Key, Value)>,
    back: VecDeque<(Key, Value)>,
    /// Every index entry between the bounds has been examined.
    exhausted: bool,
}

impl Scan {
    pub(crate) fn new(
        shared: Arc<Shared>,
        guard: ReadGuard,
        (lower, upper): (Bound<Key>, Bound<Key>),
    ) -> Self {
        let exhausted = bounds_are_empty(as_slice_bound(&lower), as_slice_bound(&upper));
        Scan {
            shared,
            guard,
            lower,
            upper,
            front: VecDeque::new(),
            back: VecDeque::new(),
            exhausted,
        }
    }

    /// The version this scan reads at.
    pub fn version(&self) -> crate::Version {
        crate::Version(self.guard.version())
    }

    /// Reads one chunk from the index into the front (forward) or back buffer, under one
    /// epoch guard, and moves that side's bound past the last entry examined.
    fn fill(&mut self, forward: bool) {
        let read_version = self.guard.version();
        let mut now_millis = None;
        let mut examined = 0;
        let mut reached_end = true;
        let guard = crossbeam_epoch::pin();
        let mut range = self.shared.index.range::<[u8], _>(
            (as_slice_bound(&self.lower), as_slice_bound(&self.upper)),
            &guard,
        );
        let mut last_key = None;
        loop {
            let next = if forward {
                range.next()
            } else {
                range.next_back()
            };
            let Some(entry) = next else { break };
            examined += 1;
            let live = entry.value().read(|chain| {
                let found = chain.entry_at(read_version)?;
                found
                    .live_value(|| *now_millis.get_or_insert_with(|| self.shared.now_millis()))
                    .cloned()
            });
            if let Some(value) = live {
                let item = (entry.key().clone(), value);
                if forward {
                    self.front.push_back(item);
                } else {
                    self.back.push_front(item);
                }
            }
            let buffered = if forward {
                self.front.len()
            } else {
                self.back.len()
            };
            if buffered >= SCAN_CHUNK_ENTRIES || examined >= SCAN_CHUNK_EXAMINED_MAX {
                last_key = Some(entry.key());
                reached_end = false;
                break;
            }
        }
        if let Some(key) = last_key {
            let bound = Bound::Excluded(key.clone());
            if forward {
                self.lower = bound;
            } else {
                self.upper = bound;
            }
        }
        if reached_end || bounds_are_empty(as_slice_bound(&self.lower), as_slice_bound(&self.upper))
        {
            self.exhausted = true;
        }
    }
}

impl Iterator for Scan {
    type Item = (Key, Value);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.front.pop_front() {
                return Some(item);
            }
            if self.exhausted {
                return self.back.pop_front();
            }
            self.fill(true);
        }
    }
}

impl DoubleEndedIterator for Scan {
    fn next_back(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.back.pop_back() {
                return Some(item);
            }
            if self.exhausted {
                return self.front.pop_back();
            }
            self.fill(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefix() {
        let (lower, upper) = prefix_bounds(b"ab");
        assert_eq!(lower, Bound::Included(Key::from("ab")));
        assert_eq!(upper, Bound::Excluded(Key::from("ac")));
        let (_, upper) = prefix_bounds(&[b'a', 0xff, 0xff]);
        assert_eq!(upper, Bound::Excluded(Key::from_slice(b"b")));
        let (lower, upper) = prefix_bounds(&[0xff]);
        assert_eq!(lower, Bound::Included(Key::from_slice(&[0xff])));
        assert_eq!(upper, Bound::Unbounded);
        assert_eq!(prefix_bounds(b""), (Bound::Unbounded, Bound::Unbounded));
    }

    #[test]
    fn empty_and_reversed_bounds_are_recognised() {
        let a: &[u8] = b"a";
        let b: &[u8] = b"b";
        assert!(bounds_are_empty(Bound::Included(b), Bound::Included(a)));
        assert!(bounds_are_empty(Bound::Excluded(a), Bound::Excluded(a)));
        assert!(bounds_are_empty(Bound::Included(a), Bound::Excluded(a)));
        assert!(!bounds_are_empty(Bound::Included(a), Bound::Included(a)));
        assert!(!bounds_are_empty(Bound::Unbounded, Bound::Excluded(a)));
        assert!(owned_bounds(&(b"b".as_slice()..b"a".as_slice())).is_err());
        assert!(owned_bounds(&(b"a".as_slice()..b"a".as_slice())).is_ok());
    }
}

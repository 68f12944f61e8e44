//! Ordered scans: `scan_prefix` and `range`, forward and reverse.
//!
//! A scan is a range read on the ordered index at one registered read version, so it sees one
//! consistent state however long it runs, and costs O(log n + k) for k entries. It reads the
//! index in chunks of `SCAN_CHUNK_ENTRIES`: each chunk is one traversal, and between chunks the
//! scan re-seeks past the last key it saw. So an iterator pins no index memory between calls
//! and can be held as long as the caller likes; what it does pin is its read version, which
//! keeps the history it can see from being pruned until it is dropped.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use crate::bounds::{as_slice_bound, bounds_are_empty};
use crate::engine::Shared;
use crate::limits::SCAN_CHUNK_ENTRIES;
use crate::mvcc::readers::ReadGuard;
use crate::types::{Key, Value};

/// Most index entries one chunk examines, visible or not, before it returns what it has.
const SCAN_CHUNK_EXAMINED_MAX: usize = SCAN_CHUNK_ENTRIES * 8;

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
        let mut range = self.shared.index_range(
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
            let live = entry.read(|record| {
                let found = record.entry_at(read_version)?;
                found.live_value(|| *now_millis.get_or_insert_with(|| self.shared.now_millis()))
            });
            if let Some(value) = live {
                let item = (Key::from_slice(entry.key()), value);
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
            let bound = Bound::Excluded(Key::from_slice(key));
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

impl Scan {
    /// Calls `visit` on each remaining pair in key order until it returns `false`, without
    /// the copy of each key that the iterator makes: `visit` borrows the key from the index.
    /// It reads the same version and in the same chunks as the iterator, and runs while one
    /// chunk of the index is pinned, so it should be short (copying out what it keeps).
    pub fn for_each_while(mut self, mut visit: impl FnMut(&[u8], &Value) -> bool) {
        while let Some((key, value)) = self.front.pop_front() {
            if !visit(key.as_bytes(), &value) {
                return;
            }
        }
        let read_version = self.guard.version();
        let mut now_millis = None;
        while !self.exhausted {
            let guard = crossbeam_epoch::pin();
            let mut range = self.shared.index_range(
                (as_slice_bound(&self.lower), as_slice_bound(&self.upper)),
                &guard,
            );
            let mut examined = 0;
            let mut resume = None;
            for entry in range.by_ref() {
                examined += 1;
                let live = entry.read(|record| {
                    let found = record.entry_at(read_version)?;
                    found.live_value(|| *now_millis.get_or_insert_with(|| self.shared.now_millis()))
                });
                if let Some(value) = live {
                    if !visit(entry.key(), &value) {
                        return;
                    }
                }
                if examined >= SCAN_CHUNK_EXAMINED_MAX {
                    resume = Some(Key::from_slice(entry.key()));
                    break;
                }
            }
            match resume {
                Some(key) => self.lower = Bound::Excluded(key),
                None => self.exhausted = true,
            }
            if bounds_are_empty(as_slice_bound(&self.lower), as_slice_bound(&self.upper)) {
                self.exhausted = true;
            }
        }
        for (key, value) in std::mem::take(&mut self.back) {
            if !visit(key.as_bytes(), &value) {
                return;
            }
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

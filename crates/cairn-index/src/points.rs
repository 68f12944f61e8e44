//! The point table: an open-addressing hash table from keys to values the tree owns, for
//! point reads that skip the descent. One writer (the index's), readers without locks.
//!
//! A slot is a 64-bit tag (the key's hash with bit 1 set; 0 marks an empty slot, 1 a removed
//! one) and a pointer to the value, which holds its own key: a reader confirms a hit by
//! comparing keys, never by the hash alone. The writer finds a value's slot by the pointer
//! itself, so a value whose `key()` lies can give wrong answers but never leave a slot behind
//! pointing at freed memory. Probing is linear and bounded by the table's size.
//!
//! Publication order, which the reads rely on:
//! - an insert stores the pointer, then the tag (`Release`), so a reader that sees the tag
//!   (`Acquire`) sees the pointer;
//! - a replacement swaps the pointer; a removal stores the removed tag, then a null pointer.
//!   A reader may still load the pointer it replaced: that value is freed only after the index
//!   has taken it out of the tree *and* this table, through the epoch collector, so it stays
//!   valid while the reader is pinned.
//!
//! The table grows (or is rebuilt at the same size when removals fill it) once live and
//! removed slots pass three quarters of it: the writer builds the new table, publishes it, and
//! defers the old one. That copy is O(n) for the one write that triggers it.
//!
//! Safety: the pointers are borrowed from the tree under the rules of `tree`'s module
//! documentation; this table never frees a value. Its own tables are freed through the
//! collector once replaced, and at drop.

use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_epoch::{Atomic, Guard, Owned, Pointable, Shared};

use crate::model;
use crate::Keyed;

const EMPTY: u64 = 0;
const REMOVED: u64 = 1;
/// The smallest table.
const MIN_SLOTS: usize = 16;

/// A tag and the address of a value (0 for none): the address `Pointable::init` gave it,
/// which `Pointable::deref` turns back into a reference.
struct Slot {
    tag: AtomicU64,
    item: AtomicUsize,
}

struct Table {
    slots: Box<[Slot]>,
}

impl Table {
    fn with_slots(count: usize) -> Table {
        debug_assert!(count.is_power_of_two());
        Table {
            slots: (0..count)
                .map(|_| Slot {
                    tag: AtomicU64::new(EMPTY),
                    item: AtomicUsize::new(0),
                })
                .collect(),
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }
}

/// Where a probe for `tag` starts.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the mask keeps the index in range"
)]
fn home(tag: u64, mask: usize) -> usize {
    (tag >> 32 ^ tag) as usize & mask
}

/// Key hash to values the tree owns.
pub(crate) struct Points<V: ?Sized> {
    table: Atomic<Table>,
    hasher: foldhash::fast::RandomState,
    /// Live entries; live plus removed slots, for the growth rule. Changed by the writer only.
    live: AtomicUsize,
    used: AtomicUsize,
    values: PhantomData<fn(&V)>,
}

/// The address a slot stores for `value`. For a value the tree owns it is the address
/// `Pointable::init` returned, so `Pointable::deref` of it is `value` again (checked in
/// debug builds where it is stored).
fn address_of<V: ?Sized>(value: &V) -> usize {
    std::ptr::from_ref(value).cast::<u8>() as usize
}

impl<V: Keyed + ?Sized> Points<V> {
    /// A table sized for `keys` entries.
    pub(crate) fn with_capacity(keys: usize) -> Points<V> {
        Points {
            table: Atomic::new(Table::with_slots(
                Self::slots_for(keys).unwrap_or(MIN_SLOTS),
            )),
            hasher: foldhash::fast::RandomState::default(),
            live: AtomicUsize::new(0),
            used: AtomicUsize::new(0),
            values: PhantomData,
        }
    }

    /// Slots for `keys` entries at most half full; `None` past what an address space holds.
    fn slots_for(keys: usize) -> Option<usize> {
        keys.checked_mul(2)?
            .checked_next_power_of_two()
            .map(|slots| slots.max(MIN_SLOTS))
    }

    fn tag(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key) | 2
    }

    fn load<'g>(&self, guard: &'g Guard) -> &'g Table {
        let table = self.table.load(Ordering::Acquire, guard);
        debug_assert!(!table.is_null());
        // SAFETY: the table pointer is never null (set at construction, replaced only by a
        // new table) and a replaced table is deferred, so it outlives `guard`.
        unsafe { table.deref() }
    }

    /// The value under `key`.
    pub(crate) fn get<'g>(&self, key: &[u8], guard: &'g Guard) -> Option<&'g V> {
        let table = self.load(guard);
        let tag = self.tag(key);
        let mask = table.mask();
        let mut index = home(tag, mask);
        for _ in 0..table.slots.len() {
            let slot = table.slots.get(index)?;
            model::step();
            match slot.tag.load(Ordering::Acquire) {
                EMPTY => return None,
                found if found == tag => {
                    model::step();
                    let item = slot.item.load(Ordering::Acquire);
                    if item != 0 {
                        // SAFETY: a non-zero address here is a value the tree still owns, or
                        // one unlinked after this reader pinned (module documentation); it
                        // came from `Pointable::init`.
                        let value: &'g V = unsafe { <V as Pointable>::deref(item) };
                        if value.key() == key {
                            return Some(value);
                        }
                    }
                }
                _ => {}
            }
            index = (index + 1) & mask;
        }
        None
    }

    /// The slot on `tag`'s probe that holds `item` (found by identity, not by the key, so a
    /// value whose `key()` disagrees cannot hide from the writer), or the first free slot on
    /// the probe when `item` is `None` or not there.
    fn find_slot(table: &Table, tag: u64, item: Option<usize>) -> (Option<&Slot>, bool) {
        let mask = table.mask();
        let mut index = home(tag, mask);
        let mut free = None;
        for _ in 0..table.slots.len() {
            let Some(slot) = table.slots.get(index) else {
                break;
            };
            match slot.tag.load(Ordering::Relaxed) {
                EMPTY => return (free.or(Some(slot)), false),
                REMOVED => {
                    free = free.or(Some(slot));
                }
                found if found == tag => {
                    let held = slot.item.load(Ordering::Relaxed);
                    if item == Some(held) {
                        return (Some(slot), true);
                    }
                }
                _ => {}
            }
            index = (index + 1) & mask;
        }
        (free, false)
    }

    /// Points `key` at `value`, in place of `old` (the value `key` held, if any). Writer only.
    pub(crate) fn set(&self, key: &[u8], old: Option<&V>, value: &V, guard: &Guard) {
        self.set_tagged(self.tag(key), old, value, guard);
    }

    /// Adds `values`, each under its own key, none of which the table holds. Writer only.
    /// Each one's home slot is prefetched a few values ahead: a batch of keys scattered over
    /// a large table otherwise waits for one cache miss at a time.
    pub(crate) fn set_new(&self, values: &[&V], guard: &Guard) {
        const AHEAD: usize = 8;
        let tags: Vec<u64> = values.iter().map(|value| self.tag(value.key())).collect();
        let start = |tag: u64| {
            let table = self.load(guard);
            if let Some(slot) = table.slots.get(home(tag, table.mask())) {
                crate::prefetch(slot);
            }
        };
        tags.iter().take(AHEAD).for_each(|&tag| start(tag));
        for (at, (&tag, value)) in tags.iter().zip(values).enumerate() {
            if let Some(&ahead) = tags.get(at + AHEAD) {
                start(ahead);
            }
            self.set_tagged(tag, None, value, guard);
        }
    }

    /// `set` with the key's tag already computed.
    fn set_tagged(&self, tag: u64, old: Option<&V>, value: &V, guard: &Guard) {
        let old = old.map(address_of);
        let pointer = address_of(value);
        // SAFETY: `value` is one the tree owns (the caller's contract), allocated by
        // `Pointable::init`, and the writer holds it pinned.
        debug_assert!(std::ptr::eq(
            unsafe { <V as Pointable>::deref(pointer) },
            value
        ));
        if let (Some(slot), true) = Self::find_slot(self.load(guard), tag, old) {
            model::step();
            slot.item.store(pointer, Ordering::Release);
            return;
        }
        if (self.used.load(Ordering::Relaxed) + 1) * 4 > self.load(guard).slots.len() * 3 {
            self.rebuild(self.live.load(Ordering::Relaxed) + 1, guard);
        }
        let (Some(slot), _) = Self::find_slot(self.load(guard), tag, None) else {
            return;
        };
        let was_removed = slot.tag.load(Ordering::Relaxed) == REMOVED;
        slot.item.store(pointer, Ordering::Release);
        model::step();
        slot.tag.store(tag, Ordering::Release);
        self.live.fetch_add(1, Ordering::Relaxed);
        if !was_removed {
            self.used.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets `value`, stored under `key`. Writer only.
    pub(crate) fn remove(&self, key: &[u8], value: &V, guard: &Guard) {
        let tag = self.tag(key);
        let item = address_of(value);
        if let (Some(slot), true) = Self::find_slot(self.load(guard), tag, Some(item)) {
            slot.tag.store(REMOVED, Ordering::Release);
            model::step();
            slot.item.store(0, Ordering::Release);
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Copies the live entries into a table sized for `keys`, publishes it and defers the old
    /// one. Writer only.
    fn rebuild(&self, keys: usize, guard: &Guard) {
        let old = self.load(guard);
        let Some(slots) = Self::slots_for(keys) else {
            return;
        };
        let table = Table::with_slots(slots);
        let mask = table.mask();
        for slot in &old.slots {
            let tag = slot.tag.load(Ordering::Relaxed);
            if tag == EMPTY || tag == REMOVED {
                continue;
            }
            let mut index = home(tag, mask);
            while let Some(target) = table.slots.get(index) {
                if target.tag.load(Ordering::Relaxed) == EMPTY {
                    target
                        .item
                        .store(slot.item.load(Ordering::Relaxed), Ordering::Relaxed);
                    target.tag.store(tag, Ordering::Relaxed);
                    break;
                }
                index = (index + 1) & mask;
            }
        }
        let old = self.table.swap(Owned::new(table), Ordering::AcqRel, guard);
        // SAFETY: the old table is unlinked; readers that hold it are pinned.
        unsafe { guard.defer_destroy(old) };
        self.used
            .store(self.live.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Makes room for `additional` more entries without growing on the way. Writer only.
    pub(crate) fn reserve(&self, additional: usize, guard: &Guard) {
        let wanted = self.live.load(Ordering::Relaxed).saturating_add(additional);
        // A reservation no table could hold is only a hint: the table grows as keys come.
        if Self::slots_for(wanted).is_some_and(|slots| slots > self.load(guard).slots.len()) {
            self.rebuild(wanted, guard);
        }
    }

    /// Slots in the current table (for memory accounting).
    pub(crate) fn slots(&self) -> usize {
        self.load(&crossbeam_epoch::pin()).slots.len()
    }
}

impl<V: ?Sized> Drop for Points<V> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader holds the table; it is owned here alone.
        let table = std::mem::replace(&mut self.table, Atomic::null());
        let table: Shared<'_, Table> =
            table.load(Ordering::Relaxed, unsafe { crossbeam_epoch::unprotected() });
        if !table.is_null() {
            drop(unsafe { table.into_owned() });
        }
    }
}

//! A key's slot: one atomically swappable pointer to its current version chain, read without
//! a lock and freed through epoch-based reclamation. This is the engine's only `unsafe` code.
//!
//! Why not `ArcSwap`: every `ArcSwap::store` pays the outstanding "debts" of every thread that
//! ever loaded from an `ArcSwap`, so the cost of a write grew with the number of threads the
//! process had ever run. A slot instead swaps a raw pointer and hands the old value to
//! `crossbeam-epoch` (the reclamation scheme the ordered index already uses), which frees it
//! once no pinned thread can still hold it: a write costs one swap and one deferred free,
//! whatever the thread history.
//!
//! The safety argument, which every `unsafe` block below relies on:
//! 1. The pointer is never null and always comes from `Owned::new`: it is set in `new` and
//!    replaced only by `replace`, both with a freshly boxed value.
//! 2. A reader ([`Slot::read`]) pins the default collector, loads the pointer (`Acquire`,
//!    pairing with the `AcqRel` swap that published it, so the value's contents are visible)
//!    and uses the reference only inside the closure, while the guard is pinned and `&self`
//!    is borrowed.
//! 3. A writer ([`Slot::replace`]) swaps in the new value and *defers* destruction of the old
//!    one on a guard of the same default collector. `crossbeam-epoch` runs the destructor only
//!    after every thread pinned at the time of the swap has unpinned, so no reader from (2)
//!    can still hold it. The old value may be dropped on another thread: hence `T: Send`.
//! 4. `Drop` has `&mut self`: no `read` can be running on this slot (it would borrow `&self`),
//!    and readers of values swapped out earlier are covered by (3). So the current value is
//!    freed at once, and exactly once, since (1) guarantees it is not also deferred.
//!
//! Writers need no lock for memory safety (the swap is atomic); the engine serializes them
//! under its commit lock anyway, because a successor chain is computed from the current one.
//! The protocol is model-checked by the shuttle test at the end of this module.

use std::sync::atomic::Ordering;

use crossbeam_epoch::{Atomic, Owned};

/// An atomically replaceable `T`, read without locks, old values freed by epoch.
pub(crate) struct Slot<T: Send + 'static> {
    current: Atomic<T>,
}

impl<T: Send + 'static> Slot<T> {
    /// A slot holding `value`.
    pub(crate) fn new(value: T) -> Self {
        Slot {
            current: Atomic::new(value),
        }
    }

    /// Runs `read` on the current value. The reference cannot outlive the call.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        let guard = crossbeam_epoch::pin();
        model::step();
        let current = self.current.load(Ordering::Acquire, &guard);
        model::step();
        debug_assert!(!current.is_null(), "a slot always holds a value");
        // SAFETY: (1) the pointer is non-null and points to a live boxed `T`; (2)/(3) it is not
        // freed before `guard` is dropped, which happens after `read` returns, and the
        // reference does not escape `read`.
        let value = unsafe { current.deref() };
        read(value)
    }

    /// Makes `value` the current value; the old one is freed once no reader can hold it.
    pub(crate) fn replace(&self, value: T) {
        let guard = crossbeam_epoch::pin();
        let old = self
            .current
            .swap(Owned::new(value), Ordering::AcqRel, &guard);
        model::step();
        debug_assert!(!old.is_null(), "a slot always holds a value");
        // SAFETY: (3) `old` was the current value until the swap above, so no later reader can
        // load it; readers that loaded it before are pinned, and the collector of `guard` (the
        // default one, which `read` pins too) frees it only after they all unpin. Nothing else
        // frees it: it is no longer in the slot, so `Drop` will not see it.
        unsafe { guard.defer_destroy(old) };
    }
}

impl<T: Send + 'static> Drop for Slot<T> {
    fn drop(&mut self) {
        // SAFETY: (4) `&mut self` means no `read` of this slot is running, and the current
        // value has never been handed to the collector, so taking ownership frees it once.
        // `unprotected` is sound because nothing else can touch the slot now.
        let current = unsafe {
            self.current
                .load(Ordering::Relaxed, crossbeam_epoch::unprotected())
                .into_owned()
        };
        drop(current);
    }
}

impl<T: Send + 'static + std::fmt::Debug> std::fmt::Debug for Slot<T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.read(|value| formatter.debug_tuple("Slot").field(value).finish())
    }
}

/// Scheduling points for the model check: under the shuttle test they let another simulated
/// thread run between the steps of `read` and `replace`; everywhere else they compile to
/// nothing.
mod model {
    #[cfg(test)]
    thread_local! {
        /// Set by the model-checking test while it runs under shuttle on this thread.
        pub(super) static ACTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[inline]
    pub(super) fn step() {
        #[cfg(test)]
        if ACTIVE.with(std::cell::Cell::get) {
            shuttle::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    /// A value that records its own destruction, so a read of a freed value is caught.
    struct Tracked {
        /// Padding first: an allocator reuses the first words of freed memory.
        padding: [u64; 4],
        id: u64,
        freed: Arc<parking_lot::Mutex<HashSet<u64>>>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            let newly = self.freed.lock().insert(self.id);
            assert!(newly, "value {} freed twice", self.id);
        }
    }

    fn tracked(id: u64, freed: &Arc<parking_lot::Mutex<HashSet<u64>>>) -> Tracked {
        Tracked {
            padding: [id; 4],
            id,
            freed: Arc::clone(freed),
        }
    }

    /// Two readers and a writer that replaces the value three times: every read sees a value
    /// that is not freed, ids never go backwards for one reader, and every value is freed
    /// exactly once by the end. Shuttle explores thread interleavings at every step of `read`
    /// and `replace` (plus its own points inside `parking_lot`-free shuttle primitives).
    #[test]
    fn readers_never_see_a_freed_value_and_every_value_is_freed_once() {
        let test = || {
            model::ACTIVE.with(|active| active.set(true));
            let freed = Arc::new(parking_lot::Mutex::new(HashSet::new()));
            let slot = Arc::new(Slot::new(tracked(0, &freed)));
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let slot = Arc::clone(&slot);
                    let freed = Arc::clone(&freed);
                    shuttle::thread::spawn(move || {
                        let mut last = 0;
                        for _ in 0..3 {
                            let id = slot.read(|value| {
                                shuttle::thread::yield_now();
                                let id = value.id;
                                assert_eq!(value.padding, [id; 4], "read a freed value");
                                assert!(!freed.lock().contains(&id), "read freed value {id}");
                                id
                            });
                            assert!(id >= last, "read {id} after {last}");
                            last = id;
                        }
                    })
                })
                .collect();
            let writer = {
                let slot = Arc::clone(&slot);
                let freed = Arc::clone(&freed);
                shuttle::thread::spawn(move || {
                    for id in 1..=3 {
                        slot.replace(tracked(id, &freed));
                    }
                })
            };
            for reader in readers {
                reader.join().expect("reader");
            }
            writer.join().expect("writer");
            assert_eq!(slot.read(|value| value.id), 3);
            drop(slot);
            // Values swapped out are freed by the collector later; push it until they are.
            for _ in 0..1_000 {
                if freed.lock().len() == 4 {
                    break;
                }
                crossbeam_epoch::pin().flush();
            }
            assert_eq!(freed.lock().len(), 4, "a value was leaked");
            model::ACTIVE.with(|active| active.set(false));
        };
        shuttle::check_random(test, 2_000);
    }

    #[test]
    fn drop_frees_the_current_value_at_once() {
        let freed = Arc::new(parking_lot::Mutex::new(HashSet::new()));
        let slot = Slot::new(tracked(1, &freed));
        assert_eq!(slot.read(|value| value.id), 1);
        drop(slot);
        assert!(freed.lock().contains(&1));
    }
}

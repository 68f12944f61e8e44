//! Background maintenance: reaping expired keys and pruning old versions.
//!
//! Expired keys are invisible the moment their deadline passes (reads check the clock); this
//! module reclaims their memory. It also prunes version chains that grew history a reader once
//! needed. Work is done in slices of `MAINTENANCE_SLICE_KEYS` keys, each under the commit lock
//! and each short, so writers are never stalled for long. `Db::run_maintenance` runs one full
//! pass on the caller's thread (tests with a manual clock use it); a background thread runs the
//! same pass every `Options::maintenance_interval`, followed by an automatic checkpoint when
//! enough WAL has been written since the last one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::engine::Shared;
use crate::limits::MAINTENANCE_SLICE_KEYS;
use crate::mvcc::chain::NO_DEADLINE;
use crate::types::Key;

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Expired keys removed from the index.
    pub expired_reclaimed: u64,
    /// Old versions dropped from chains.
    pub versions_pruned: u64,
    /// Keys removed because nothing visible was left in them.
    pub keys_removed: u64,
    /// Chains the prune step read (queued keys; deferred ones only after a reader's release).
    pub chains_examined: u64,
}

impl Shared {
    /// One full maintenance pass: compact the deadline heap if it has doubled, reap what has
    /// expired, then prune queued chains.
    pub(crate) fn run_maintenance(&self) -> MaintenanceReport {
        let mut report = MaintenanceReport::default();
        self.compact_deadlines();
        while self.reap_slice(&mut report) {}
        self.prune_queued(&mut report);
        report
    }

    /// Drops stale `(deadline, key)` pairs. The heap is taken out under the lock, filtered
    /// without it (chains are read lock-free; a pair kept by mistake is harmless, and a key
    /// that gets a deadline meanwhile pushes a fresh pair), and merged back under the lock.
    fn compact_deadlines(&self) {
        let taken = {
            let mut state = self.lock_commit();
            if !state.deadlines_need_compaction() {
                return;
            }
            std::mem::take(&mut state.deadlines)
        };
        let mut live: Vec<Reverse<(u64, Key)>> = taken
            .into_vec()
            .into_iter()
            .filter(|Reverse((deadline, key))| {
                self.with_chain(key, |chain| {
                    chain
                        .head()
                        .is_some_and(|head| head.deadline_millis == *deadline)
                })
                .unwrap_or(false)
            })
            .collect();
        live.sort_unstable();
        live.dedup();
        let mut merged = BinaryHeap::from(live);
        let mut state = self.lock_commit();
        merged.append(&mut state.deadlines);
        state.deadlines_after_compaction = merged.len();
        state.deadlines = merged;
    }

    /// Reaps up to one slice of expired keys; returns true when more may be due.
    fn reap_slice(&self, report: &mut MaintenanceReport) -> bool {
        let mut state = self.lock_commit();
        let now = self.now_millis();
        let horizon = self.readers.horizon(&self.visible);
        for _ in 0..MAINTENANCE_SLICE_KEYS {
            let due = state
                .deadlines
                .peek()
                .is_some_and(|Reverse((deadline, _))| *deadline <= now);
            if !due {
                return false;
            }
            let Some(Reverse((deadline, key))) = state.deadlines.pop() else {
                return false;
            };
            let Some(chain) = self.chain_of(&key) else {
                continue;
            };
            let Some(head) = chain.head() else { continue };
            if head.deadline_millis != deadline || !head.is_dead_at(now) {
                // Stale: the key was rewritten after this deadline was set.
                continue;
            }
            if head.version > self.visible.load(std::sync::atomic::Ordering::Acquire) {
                // A Strict commit still waiting for its fsync: readers see the older entry.
                // Pruning takes over once the commit is visible.
                state.prune_queue.push(key);
                continue;
            }
            let pruned = chain.pruned(&horizon);
            let remaining = pruned.as_ref().unwrap_or(&chain);
            if remaining.len() <= 1 {
                // Only the expired entry (or nothing) is left: no reader can see anything.
                state.versions_retained -= chain.len() as u64;
                state.keys_with_ttl -= 1;
                state.expired_reclaimed += 1;
                report.expired_reclaimed += 1;
                self.remove_key_locked(&key);
            } else {
                // A snapshot still sees older history; pruning finishes the job later.
                state.prune_queue.push(key);
            }
        }
        true
    }

    /// Prunes every chain queued before this pass began, one slice per lock hold.
    fn prune_queued(&self, report: &mut MaintenanceReport) {
        let releases_at_start = self.readers.releases();
        let queued = {
            let mut state = self.lock_commit();
            let mut queued = std::mem::take(&mut state.prune_queue);
            if state.prune_deferred_at != releases_at_start {
                queued.append(&mut state.prune_deferred);
            }
            queued
        };
        let mut still_queued = Vec::new();
        for slice in queued.chunks(MAINTENANCE_SLICE_KEYS) {
            let mut state = self.lock_commit();
            let now = self.now_millis();
            let horizon = self.readers.horizon(&self.visible);
            for key in slice {
                report.chains_examined += 1;
                let Some(chain) = self.chain_of(key) else {
                    continue;
                };
                let Some(pruned) = chain.pruned(&horizon) else {
                    if chain.len() > 1 {
                        still_queued.push(key.clone());
                    }
                    continue;
                };
                let dropped = (chain.len() - pruned.len()) as u64;
                state.versions_pruned += dropped;
                report.versions_pruned += dropped;
                let dead = pruned.len() == 0
                    || (pruned.len() == 1
                        && pruned.head().is_some_and(|head| head.is_dead_at(now)));
                if dead {
                    state.versions_retained -= chain.len() as u64;
                    if chain
                        .head()
                        .is_some_and(|head| head.deadline_millis != NO_DEADLINE)
                    {
                        state.keys_with_ttl -= 1;
                    }
                    report.keys_removed += 1;
                    self.remove_key_locked(key);
                } else {
                    state.versions_retained -= dropped;
                    if pruned.len() > 1 {
                        still_queued.push(key.clone());
                    }
                    if let Some(slot) = self.points.get(key.as_bytes(), &self.points.guard()) {
                        slot.replace(pruned);
                    }
                }
            }
        }
        let mut state = self.lock_commit();
        state.prune_deferred.extend(still_queued);
        state.prune_deferred_at = releases_at_start;
    }
}

/// Tells the maintenance thread to stop.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    pub(crate) fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    /// Waits up to `interval`; returns true once stop was requested.
    fn wait(&self, interval: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.wake.wait_for(&mut stopped, interval);
        }
        *stopped
    }
}

/// Starts the background maintainer. It holds only a weak reference, so it never keeps a
/// database alive, and exits once the database is gone or `stop` is signalled.
pub(crate) fn spawn(
    shared: Weak<Shared>,
    stop: Arc<StopSignal>,
    interval: Duration,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("cairn-maintainer".into())
        .spawn(move || {
            while !stop.wait(interval) {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.run_maintenance();
                shared.checkpoint_if_due();
            }
        })
}

//! Background maintenance: reaping expired keys and pruning old versions.
//!
//! Expired keys are invisible the moment their deadline passes (reads check the clock); this
//! module reclaims their memory. It also prunes version chains that grew history a reader once
//! needed. Work is done in slices of `MAINTENANCE_SLICE_KEYS` keys, each under the commit lock
//! and each short, so writers are never stalled for long. `Db::run_maintenance` runs one full
//! pass on the caller's thread (tests with a manual clock use it); in the background, the same
//! pass runs every `Options::maintenance_interval`, followed by an automatic checkpoint when
//! enough WAL has been written since the last one.
//!
//! The background passes of every database in the process share one small service of at
//! most [`MAINTENANCE_WORKERS_MAX`] threads, named [`MAINTENANCE_THREAD_NAME`], so a process
//! with thousands of databases does not run thousands of maintainers. It holds only weak
//! references: a dropped database's work stops. Dropping the last `Db` handle cancels the
//! database's tick and waits for a running one, so the directory lock is free once the drop
//! returns. Trade-off: a long checkpoint occupies a worker, delaying other databases' passes
//! (never their commits: reads and writes never wait for maintenance).

/// Name of the shared maintenance service's threads.
pub const MAINTENANCE_THREAD_NAME: &str = "cairn-maintainer";

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::engine::{Footprint, Shared};
use crate::limits::{MAINTENANCE_SLICE_KEYS, MAINTENANCE_WORKERS_MAX};
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
        let Some(taken) = self.lock_commit().take_deadlines_for_compaction() else {
            return;
        };
        let live: Vec<(u64, Key)> = taken
            .into_iter()
            .filter(|(deadline, key)| {
                self.with_record(key, |record| record.head().deadline_millis == *deadline)
                    .unwrap_or(false)
            })
            .collect();
        self.lock_commit().merge_compacted_deadlines(live);
    }

    /// Reaps up to one slice of expired keys; returns true when more may be due.
    fn reap_slice(&self, report: &mut MaintenanceReport) -> bool {
        let mut state = self.lock_commit();
        let now = self.now_millis();
        let horizon = self.horizon();
        for _ in 0..MAINTENANCE_SLICE_KEYS {
            let Some((deadline, key)) = state.pop_due_deadline(now) else {
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
            if head.version > self.visible_version() {
                // A Strict commit still waiting for its fsync: readers see the older entry.
                // Pruning takes over once the commit is visible.
                state.queue_prune(key);
                continue;
            }
            let pruned = chain.pruned(&horizon);
            let remaining = pruned.as_ref().unwrap_or(&chain);
            if remaining.len() <= 1 {
                // Only the expired entry (or nothing) is left: no reader can see anything.
                self.remove_key_locked(&mut state, &key, Footprint::of(&chain));
                state.count_expired();
                report.expired_reclaimed += 1;
            } else {
                // A snapshot still sees older history; pruning finishes the job later.
                state.queue_prune(key);
            }
        }
        true
    }

    /// Prunes every chain queued before this pass began, one slice per lock hold.
    fn prune_queued(&self, report: &mut MaintenanceReport) {
        let releases_at_start = self.reader_releases();
        let queued = self.lock_commit().take_prune_work(releases_at_start);
        let mut still_queued = Vec::new();
        for slice in queued.chunks(MAINTENANCE_SLICE_KEYS) {
            let mut state = self.lock_commit();
            let now = self.now_millis();
            let horizon = self.horizon();
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
                state.count_pruned(dropped);
                report.versions_pruned += dropped;
                let dead = pruned.len() == 0
                    || (pruned.len() == 1
                        && pruned.head().is_some_and(|head| head.is_dead_at(now)));
                if dead {
                    report.keys_removed += 1;
                    self.remove_key_locked(&mut state, key, Footprint::of(&chain));
                } else {
                    if pruned.len() > 1 {
                        still_queued.push(key.clone());
                    }
                    self.replace_pruned_locked(&mut state, key, pruned, dropped);
                }
            }
        }
        self.lock_commit()
            .defer_prune(still_queued, releases_at_start);
    }
}

/// The process-wide maintenance service: at most [`MAINTENANCE_WORKERS_MAX`] threads, shared
/// by every open database, run each database's periodic ticks: the maintenance tick (a
/// maintenance pass, then an automatic checkpoint when one is due) and, for `Buffered`, the
/// WAL flush tick. Ticks are kept in a min-heap by due time; a worker sleeps until the
/// earliest is due. A task can be woken early (`wake`): its generation moves on, so the
/// entries already in the heap for it go stale and are skipped, and it never runs twice per
/// due time. Each task holds only a `Weak` reference, so it never keeps a database alive, and
/// stops once the database is gone.
struct Service {
    queue: Mutex<Queue>,
    /// Signalled when a tick is added that may be due before the ones a worker waits for.
    wake: Condvar,
}

/// The service's schedule.
#[derive(Default)]
struct Queue {
    /// `(due, task id, generation)`, earliest first.
    due: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    /// Registered tasks by id with their current generation; a cancelled one is removed.
    tasks: HashMap<u64, (Arc<Task>, u64)>,
    next_id: u64,
    /// Worker threads started (they live as long as the process).
    workers: usize,
    /// Workers waiting for a tick to come due.
    idle: usize,
}

/// What a task's tick does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tick {
    /// A maintenance pass, then an automatic checkpoint if one is due.
    Maintenance,
    /// One background flush of a `Buffered` WAL.
    Flush,
}

/// One database's periodic tick.
struct Task {
    shared: Weak<Shared>,
    interval: Duration,
    tick: Tick,
    /// Held while the tick runs; `true` once cancelled. Cancelling takes it, so it waits for
    /// a running tick to finish.
    cancelled: Mutex<bool>,
}

/// The service, started on first use.
fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| Service {
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
    })
}

impl Service {
    /// A task id, for a task registered later (so a waker can name it before it exists).
    fn reserve_id(&self) -> u64 {
        let mut queue = self.queue.lock();
        let id = queue.next_id;
        queue.next_id += 1;
        id
    }

    /// Schedules task `id`'s tick every `interval`, starting a worker if none is idle and the
    /// bound allows. Fails only when no worker exists and none can be started.
    fn register(
        &'static self,
        id: u64,
        shared: Weak<Shared>,
        interval: Duration,
        tick: Tick,
    ) -> io::Result<Registration> {
        let task = Arc::new(Task {
            shared,
            interval,
            tick,
            cancelled: Mutex::new(false),
        });
        let mut queue = self.queue.lock();
        if queue.idle == 0 && queue.workers < MAINTENANCE_WORKERS_MAX {
            let spawned = std::thread::Builder::new()
                .name(MAINTENANCE_THREAD_NAME.into())
                .spawn(move || self.work());
            match spawned {
                Ok(_) => queue.workers += 1,
                // The workers already running serve this database too.
                Err(error) if queue.workers == 0 => return Err(error),
                Err(_) => {}
            }
        }
        queue.tasks.insert(id, (Arc::clone(&task), 0));
        queue.due.push(Reverse((Instant::now() + interval, id, 0)));
        drop(queue);
        self.wake.notify_one();
        Ok(Registration { id, task })
    }

    /// Runs task `id` as soon as a worker is free, instead of at its next due time.
    fn wake_now(&self, id: u64) {
        let mut queue = self.queue.lock();
        let Some((_, generation)) = queue.tasks.get_mut(&id) else {
            return;
        };
        *generation += 1;
        let generation = *generation;
        queue.due.push(Reverse((Instant::now(), id, generation)));
        drop(queue);
        self.wake.notify_one();
    }

    /// A worker: runs due ticks, forever.
    fn work(&self) {
        loop {
            let (id, task, generation) = self.next_due();
            let keep = {
                let mut cancelled = task.cancelled.lock();
                if !*cancelled {
                    match task.shared.upgrade() {
                        Some(shared) => {
                            match task.tick {
                                Tick::Maintenance => {
                                    shared.run_maintenance();
                                    shared.checkpoint_if_due();
                                }
                                Tick::Flush => {
                                    if let Some(durable) = shared.durable() {
                                        // A failure poisons the log; commits report it.
                                        let _ = durable.log.flush_tick();
                                    }
                                }
                            }
                            // Dropped under the guard: if this was the last reference, the
                            // database (and its directory lock) is gone before a waiting
                            // cancel returns.
                            drop(shared);
                        }
                        None => *cancelled = true,
                    }
                }
                !*cancelled
            };
            let mut queue = self.queue.lock();
            match queue.tasks.get(&id).map(|(_, current)| *current) {
                Some(current) if keep => {
                    // Woken meanwhile: that entry is in the heap already.
                    if current == generation {
                        queue
                            .due
                            .push(Reverse((Instant::now() + task.interval, id, generation)));
                    }
                }
                _ => {
                    queue.tasks.remove(&id);
                }
            }
        }
    }

    /// Waits for the earliest tick to come due and takes it off the schedule; stale entries
    /// (of a cancelled task, or of a generation a wake replaced) are dropped.
    fn next_due(&self) -> (u64, Arc<Task>, u64) {
        let mut queue = self.queue.lock();
        loop {
            let now = Instant::now();
            match queue.due.peek().copied() {
                Some(Reverse((due, id, generation))) if due <= now => {
                    queue.due.pop();
                    if let Some((task, current)) = queue.tasks.get(&id) {
                        if *current == generation {
                            return (id, Arc::clone(task), generation);
                        }
                    }
                }
                next => {
                    queue.idle += 1;
                    match next {
                        Some(Reverse((due, _, _))) => {
                            self.wake.wait_until(&mut queue, due);
                        }
                        None => self.wake.wait(&mut queue),
                    }
                    queue.idle -= 1;
                }
            }
        }
    }
}

/// A database's place in the maintenance service.
struct Registration {
    id: u64,
    task: Arc<Task>,
}

impl Registration {
    /// Stops the tick; waits for a running one to finish. Idempotent.
    fn cancel(&self) {
        *self.task.cancelled.lock() = true;
        service().queue.lock().tasks.remove(&self.id);
    }
}

/// The flush task of a `Buffered` database, reserved before its log is opened so that the
/// log's waker can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlushTask {
    id: u64,
}

impl FlushTask {
    /// Reserves a task id on the shared service.
    pub(crate) fn reserve() -> Self {
        FlushTask {
            id: service().reserve_id(),
        }
    }

    /// The waker the log calls when its buffer crosses `buffer_bytes_max`.
    pub(crate) fn waker(self) -> cairn_log::FlushWaker {
        cairn_log::FlushWaker(Arc::new(move || service().wake_now(self.id)))
    }
}

/// Held by every `Db` handle (shared by its clones): when the last one goes, the database's
/// ticks are cancelled, waiting for a running one (a checkpoint, say) to end, so that the
/// database, and with it the directory lock, is released by the time the drop returns
/// (unless a transaction, snapshot or scan still holds it).
#[derive(Default)]
pub(crate) struct Handles {
    maintenance: Option<Registration>,
    flush: Option<Registration>,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Handles")
            .field("maintained", &self.maintenance.is_some())
            .field("flushed", &self.flush.is_some())
            .finish()
    }
}

impl Handles {
    /// Schedules `shared`'s maintenance every `interval` (none for a zero interval) and, for
    /// a `Buffered` database, its WAL flush every `flush_interval`, on the shared service.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        interval: Duration,
        flush: Option<(FlushTask, Duration)>,
    ) -> io::Result<Self> {
        let mut handles = Handles::default();
        if let Some((task, flush_interval)) = flush {
            handles.flush = Some(service().register(
                task.id,
                Arc::downgrade(shared),
                flush_interval,
                Tick::Flush,
            )?);
        }
        if !interval.is_zero() {
            let id = service().reserve_id();
            handles.maintenance = Some(service().register(
                id,
                Arc::downgrade(shared),
                interval,
                Tick::Maintenance,
            )?);
        }
        Ok(handles)
    }

    /// Stops the background ticks, waiting for running ones to finish.
    pub(crate) fn stop_maintenance(&self) {
        for registration in [&self.maintenance, &self.flush].into_iter().flatten() {
            registration.cancel();
        }
    }
}

impl Drop for Handles {
    fn drop(&mut self) {
        self.stop_maintenance();
    }
}

//! Several tasks on one subject at once (the seed's `concurrent_access`): concurrent reads,
//! and a mixed 80/20 read/write load.
//!
//! A run spawns its tasks on the workload's own multi-thread runtime (two workers: this
//! machine's cores), lets each make a fixed number of calls on random keys (each task with its
//! own generator, reseeded every run), awaits them all, and reports the wall time from the
//! first spawn to the last completion. All tasks share one handle on the subject, as the
//! tasks of one program share one store: one engine, one `SqliteStore` (whose connections it
//! pools) or one rusqlite connection behind a mutex, one multiplexed Redis connection. With
//! more tasks than workers, the extra tasks show what a subject does with calls in flight
//! (Redis pipelines them over its one connection; the others run them in turn).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{require_keys, Backend, Flavor, KvFixture, Session, Target};
use crate::keys::{value_of_length, SplitMix64};
use crate::workloads::concurrent::{expect_none_missing, seed_for, MIXED_WRITE_ONE_IN};
use crate::workloads::{ParallelWorkload, Result, WorkloadError};

/// Calls each task makes in one run when a subject's calls stay in memory: a run is then
/// tens of milliseconds, long against spawning the tasks.
pub const OPS_PER_TASK_IN_MEMORY: u64 = 20_000;

/// Calls each task makes in one run when each call is a syscall, a thread hop or an fsync
/// away: a run stays under a second.
pub const OPS_PER_TASK_OTHERWISE: u64 = 1_000;

/// Calls per task in one run for `backend`.
pub fn ops_per_task(backend: &Backend) -> u64 {
    if backend.is_in_memory() {
        OPS_PER_TASK_IN_MEMORY
    } else {
        OPS_PER_TASK_OTHERWISE
    }
}

/// `tasks` tasks, each making `reads_per_task` random `get`s of keys that exist.
pub struct KvConcurrentReads {
    session: Session,
    tasks: usize,
    reads_per_task: u64,
    key_count: usize,
    runs: u64,
}

impl KvConcurrentReads {
    /// Reads `fixture` (shared, unchanged) from `tasks` tasks.
    pub fn new(fixture: &KvFixture, tasks: usize, reads_per_task: u64) -> Result<Self> {
        require_keys("concurrent_reads", fixture, 1)?;
        Ok(KvConcurrentReads {
            session: Session::open(fixture, Flavor::MultiThread)?,
            tasks: tasks.max(1),
            reads_per_task,
            key_count: fixture.key_count(),
            runs: 0,
        })
    }
}

impl ParallelWorkload for KvConcurrentReads {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let (run, reads, key_count) = (self.runs, self.reads_per_task, self.key_count);
        run_tasks(&self.session, self.tasks, move |target, task| async move {
            let mut random = SplitMix64::new(seed_for(0x7265_6164, run, task));
            let mut missing = 0_u64;
            for _ in 0..reads {
                if target.get(random.below(key_count)).await?.is_none() {
                    missing += 1;
                }
            }
            expect_none_missing("concurrent_reads", missing)
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.tasks as u64 * self.reads_per_task
    }
}

/// `tasks` tasks, each making `ops_per_task` calls on random keys: 4 in 5 a `get`, 1 in 5 a
/// `put` of a value as long as the fixture's.
pub struct KvMixedReadWrite {
    session: Session,
    tasks: usize,
    ops_per_task: u64,
    key_count: usize,
    value: Arc<[u8]>,
    runs: u64,
}

impl KvMixedReadWrite {
    /// Reads and overwrites keys of `fixture` from `tasks` tasks.
    pub fn new(fixture: &KvFixture, tasks: usize, ops_per_task: u64) -> Result<Self> {
        require_keys("mixed_workload", fixture, 1)?;
        Ok(KvMixedReadWrite {
            session: Session::open(fixture, Flavor::MultiThread)?,
            tasks: tasks.max(1),
            ops_per_task,
            key_count: fixture.key_count(),
            value: Arc::from(value_of_length(fixture.value_bytes())),
            runs: 0,
        })
    }
}

impl ParallelWorkload for KvMixedReadWrite {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let (run, ops, key_count) = (self.runs, self.ops_per_task, self.key_count);
        let value = Arc::clone(&self.value);
        run_tasks(&self.session, self.tasks, move |target, task| {
            let value = Arc::clone(&value);
            async move {
                let mut random = SplitMix64::new(seed_for(0x6D69_7865, run, task));
                let mut missing = 0_u64;
                for _ in 0..ops {
                    let write = random.next_u64().is_multiple_of(MIXED_WRITE_ONE_IN);
                    let index = random.below(key_count);
                    if write {
                        target.put(index, &value).await?;
                    } else if target.get(index).await?.is_none() {
                        missing += 1;
                    }
                }
                expect_none_missing("mixed_workload", missing)
            }
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.tasks as u64 * self.ops_per_task
    }
}

/// Spawns `body(target, task)` for `tasks` tasks on the session's runtime, awaits them all, and
/// returns the wall time from the first spawn to the last completion, or the first error.
fn run_tasks<F, Body>(session: &Session, tasks: usize, body: Body) -> Result<Duration>
where
    Body: Fn(Arc<Target>, usize) -> F,
    F: std::future::Future<Output = Result<()>> + Send + 'static,
{
    session.block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| tokio::spawn(body(session.shared_target(), task)))
            .collect();
        let mut outcomes = Vec::with_capacity(tasks);
        for handle in handles {
            outcomes.push(handle.await);
        }
        let elapsed = start.elapsed();
        for outcome in outcomes {
            match outcome {
                Ok(result) => result?,
                Err(_) => {
                    return Err(WorkloadError::unexpected(
                        "concurrent_access",
                        "a task panicked or was cancelled",
                    ))
                }
            }
        }
        Ok(elapsed)
    })
}

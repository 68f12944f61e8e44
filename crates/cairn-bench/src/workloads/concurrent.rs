//! Multi-threaded workloads: concurrent reads, and a mixed 80/20 read/write load.
//!
//! Each run starts its threads with `std::thread::scope`, lets every thread do a fixed number
//! of operations on random keys (each thread with its own generator, reseeded every run), joins
//! them, and reports the wall time of the whole. Thread start-up is inside that time, so a run
//! must be long (tens of thousands of operations per thread) for it not to matter. Comparing
//! runs at 1 and 2 threads tells whether reads scale; on a 2-vCPU machine, 4 and 8 threads
//! show the cost of oversubscription, not more parallelism.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::Db;

use super::{require_keys, Fixture, ParallelWorkload, Result, WorkloadError};
use crate::keys::{value_of_length, KeySet, SplitMix64};

/// One write in this many operations of the mixed workload: 80 % reads, 20 % writes.
pub const MIXED_WRITE_ONE_IN: u64 = 5;

/// `threads` threads, each doing `reads_per_thread` random `get`s of keys that exist.
#[derive(Debug)]
pub struct ConcurrentReads {
    db: Db,
    keys: Arc<KeySet>,
    threads: usize,
    reads_per_thread: u64,
    runs: u64,
}

impl ConcurrentReads {
    /// Reads `fixture` (shared, unchanged) from `threads` threads.
    pub fn new(fixture: &Fixture, threads: usize, reads_per_thread: u64) -> Result<Self> {
        require_keys("concurrent_reads", fixture, 1)?;
        Ok(ConcurrentReads {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            threads: threads.max(1),
            reads_per_thread,
            runs: 0,
        })
    }
}

impl ParallelWorkload for ConcurrentReads {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let (db, keys, reads) = (&self.db, &*self.keys, self.reads_per_thread);
        let run = self.runs;
        run_threads("concurrent_reads", self.threads, |thread| {
            let mut random = SplitMix64::new(seed_for(0x7265_6164, run, thread));
            let mut missing = 0_u64;
            for _ in 0..reads {
                match db.get(keys.get(random.below(keys.len())))? {
                    Some(value) => {
                        std::hint::black_box(value);
                    }
                    None => missing += 1,
                }
            }
            expect_none_missing("concurrent_reads", missing)
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.threads as u64 * self.reads_per_thread
    }
}

/// `threads` threads, each doing `ops_per_thread` operations on random keys: 4 in 5 a `get`,
/// 1 in 5 a `put` of a value as long as the fixture's.
#[derive(Debug)]
pub struct MixedReadWrite {
    db: Db,
    keys: Arc<KeySet>,
    value: Vec<u8>,
    threads: usize,
    ops_per_thread: u64,
    runs: u64,
}

impl MixedReadWrite {
    /// Reads and overwrites keys of `fixture` (which it then owns) from `threads` threads.
    pub fn new(fixture: &Fixture, threads: usize, ops_per_thread: u64) -> Result<Self> {
        require_keys("mixed_workload", fixture, 1)?;
        Ok(MixedReadWrite {
            db: fixture.db.clone(),
            keys: Arc::clone(&fixture.keys),
            value: value_of_length(fixture.value_bytes),
            threads: threads.max(1),
            ops_per_thread,
            runs: 0,
        })
    }
}

impl ParallelWorkload for MixedReadWrite {
    fn run(&mut self) -> Result<Duration> {
        self.runs += 1;
        let (db, keys, value) = (&self.db, &*self.keys, &self.value[..]);
        let (ops, run) = (self.ops_per_thread, self.runs);
        run_threads("mixed_workload", self.threads, |thread| {
            let mut random = SplitMix64::new(seed_for(0x6D69_7865, run, thread));
            let mut missing = 0_u64;
            for _ in 0..ops {
                let write = random.next_u64().is_multiple_of(MIXED_WRITE_ONE_IN);
                let key = keys.get(random.below(keys.len()));
                if write {
                    db.put(key, value)?;
                } else if let Some(found) = db.get(key)? {
                    std::hint::black_box(found);
                } else {
                    missing += 1;
                }
            }
            expect_none_missing("mixed_workload", missing)
        })
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.threads as u64 * self.ops_per_thread
    }
}

/// A distinct seed for each (workload, run, thread).
pub(crate) fn seed_for(salt: u64, run: u64, thread: usize) -> u64 {
    salt ^ run.wrapping_mul(0x1_0000_0001) ^ ((thread as u64) << 48)
}

pub(crate) fn expect_none_missing(workload: &'static str, missing: u64) -> Result<()> {
    if missing == 0 {
        Ok(())
    } else {
        Err(WorkloadError::unexpected(
            workload,
            format!("{missing} reads found no value"),
        ))
    }
}

/// Runs `body(thread_index)` on `threads` scoped threads and returns the wall time from the
/// first spawn to the last join, or the first error any thread returned.
fn run_threads<F>(workload: &'static str, threads: usize, body: F) -> Result<Duration>
where
    F: Fn(usize) -> Result<()> + Sync,
{
    let body = &body;
    let start = Instant::now();
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| scope.spawn(move || body(thread)))
            .collect();
        handles
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect()
    });
    let elapsed = start.elapsed();
    for outcome in outcomes {
        match outcome {
            Ok(result) => result?,
            Err(_) => return Err(WorkloadError::unexpected(workload, "a thread panicked")),
        }
    }
    Ok(elapsed)
}

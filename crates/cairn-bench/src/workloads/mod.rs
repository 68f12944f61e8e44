//! The workload traits, and the engine-only workloads. A [`Workload`] is built untimed, then
//! timed in groups of operations, with the state an operation consumes restored untimed by
//! [`Workload::prepare`]. Every operation checks its result: a wrong result is an error, not a
//! fast number.

pub mod agent;
pub mod agent_search;
pub mod durability;
pub mod engine;
pub mod memtable;
pub mod recovery;
pub mod stream_system;
pub mod streams;

use crate::keys::{value_of_length, KeySet};
use cairn::Db;
use std::io;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong while running a workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The engine refused an operation.
    #[error("engine error: {0}")]
    Engine(#[from] cairn::Error),
    /// A `KeyValueStore` call failed.
    #[error("key-value store error: {0}")]
    Kv(#[from] cairn_kv::KvError),
    /// A client used directly (rusqlite, redis-rs, ...) failed.
    #[error("{0}: {1}")]
    Client(&'static str, #[source] BoxError),
    /// An operation returned what the setup rules out, or a file operation failed.
    #[error("{0}: {1}")]
    Unexpected(&'static str, String),
}

impl WorkloadError {
    pub(crate) fn unexpected(workload: &'static str, detail: impl Into<String>) -> Self {
        WorkloadError::Unexpected(workload, detail.into())
    }

    pub(crate) fn client(client: &'static str, source: impl Into<BoxError>) -> Self {
        WorkloadError::Client(client, source.into())
    }

    pub(crate) fn io(workload: &'static str, action: impl Into<String>, error: &io::Error) -> Self {
        WorkloadError::Unexpected(workload, format!("{}: {error}", action.into()))
    }
}

/// The result type of every workload call.
pub type Result<T, E = WorkloadError> = std::result::Result<T, E>;

/// A single-threaded workload: a prepared state and one repeatable operation.
pub trait Workload {
    /// Untimed: makes the next `_runs` (at most 1,024) calls of `run_op` valid.
    fn prepare(&mut self, _runs: usize) -> Result<()> {
        Ok(())
    }

    /// Timed: one operation.
    fn run_op(&mut self) -> Result<()>;

    /// Timed: `runs` operations in a row, after `prepare(runs)`.
    fn run_ops(&mut self, runs: usize) -> Result<()> {
        for _ in 0..runs {
            self.run_op()?;
        }
        Ok(())
    }

    /// How many engine operations one `run_op` makes (1000 for a bulk workload).
    fn engine_ops_per_run(&self) -> u64 {
        1
    }
}

/// A multi-threaded workload: a fixed amount of work spread over threads.
pub trait ParallelWorkload {
    /// Runs the work once, starting and joining the threads; returns the wall time.
    fn run(&mut self) -> Result<Duration>;

    /// How many engine operations one `run` makes, over all threads.
    fn engine_ops_per_run(&self) -> u64;
}

/// An in-memory database filled with the first `key_count` keys, each holding the same value.
/// Cloning shares the database: give each workload that writes a fixture of its own.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The filled database.
    pub db: Db,
    /// Its keys, in order.
    pub keys: Arc<KeySet>,
    /// The length of every stored value.
    pub value_bytes: usize,
}

impl Fixture {
    /// How many keys the fixture holds.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Builds the fixture of `key_count` keys of `value_bytes` each.
    pub fn build(key_count: usize, value_bytes: usize) -> Result<Fixture> {
        let db = Db::in_memory();
        let keys = KeySet::sequential(key_count);
        let value = value_of_length(value_bytes);
        for key in keys.iter() {
            db.put(key, &value)?;
        }
        Ok(Fixture {
            db,
            keys: Arc::new(keys),
            value_bytes,
        })
    }
}

/// Runs `work` for each of `states` on threads released together; returns their wall time.
pub(crate) fn run_threads<S: Send>(
    states: Vec<S>,
    work: impl Fn(usize, S) -> Result<()> + Sync,
) -> Result<Duration> {
    let barrier = Barrier::new(states.len() + 1);
    std::thread::scope(|scope| {
        let (work, barrier) = (&work, &barrier);
        let spawn = |(thread, state)| {
            scope.spawn(move || {
                barrier.wait();
                work(thread, state)
            })
        };
        let threads: Vec<_> = states.into_iter().enumerate().map(spawn).collect();
        barrier.wait();
        let started = Instant::now();
        let panicked = |_| WorkloadError::unexpected("threads", "a thread panicked");
        for thread in threads {
            thread.join().map_err(panicked)??;
        }
        Ok(started.elapsed())
    })
}

pub(crate) fn ensure(holds: bool, workload: &'static str, detail: &str) -> Result<()> {
    let failed = || WorkloadError::unexpected(workload, detail);
    holds.then_some(()).ok_or_else(failed)
}

pub(crate) fn require_keys(workload: &'static str, keys: usize, minimum: usize) -> Result<()> {
    let detail = format!("needs a fixture of at least {minimum} keys, got {keys}");
    ensure(keys >= minimum, workload, &detail)
}

pub(crate) fn missing(workload: &'static str, key: &[u8]) -> WorkloadError {
    let detail = format!("key {} is missing", String::from_utf8_lossy(key));
    WorkloadError::unexpected(workload, detail)
}

/// Ok when a read found a value (kept from the optimiser), an error naming `key` when not.
pub(crate) fn expect_value<T>(workload: &'static str, key: &[u8], value: Option<T>) -> Result<()> {
    let value = value.ok_or_else(|| missing(workload, key))?;
    std::hint::black_box(value);
    Ok(())
}

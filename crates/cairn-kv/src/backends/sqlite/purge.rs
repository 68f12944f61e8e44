//! Reclaiming expired rows: a background thread that deletes them in bounded batches.
//!
//! Reads filter on `expires_at_millis`, so an expired row is invisible the moment its
//! deadline passes; this thread only gives the space back. Each round deletes rows whose
//! deadline is at or before the round's start, [`PURGE_BATCH_ROWS`] per statement, each batch
//! its own short transaction on the writer connection, so writers wait at most one batch.
//! Rows that expire during a round are left to the next one, which keeps a round bounded.
//!
//! The thread holds only a weak reference to the store and sleeps on a condition variable
//! between rounds; stopping it wakes it at once and joins it, which waits at most for the
//! batch in progress. A plain thread rather than a runtime task: the store is usable, and
//! dropped, from any runtime or none, and the purge must not stall an async worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::params;

use super::connection::Connections;
use super::{Shared, SqlResult, BACKEND};
use crate::error::{KvError, KvResult};

/// Rows one purge statement deletes at most, so a batch holds the writer only briefly.
pub const PURGE_BATCH_ROWS: usize = 1_000;

const SQL_PURGE_BATCH: &str = "DELETE FROM kv WHERE key IN \
     (SELECT key FROM kv WHERE expires_at_millis <= ?1 LIMIT ?2)";

/// Running totals for `stats()`.
#[derive(Debug, Default)]
pub(super) struct PurgeCounters {
    pub(super) purged_rows: AtomicU64,
    pub(super) rounds: AtomicU64,
    pub(super) failed_rounds: AtomicU64,
}

/// Deletes every row that expired at or before `now_millis`, in batches, until a batch
/// comes back short or `keep_going` says stop. Returns the rows deleted.
pub(super) fn purge_expired(
    connections: &Connections,
    counters: &PurgeCounters,
    now_millis: i64,
    keep_going: impl Fn() -> bool,
) -> KvResult<u64> {
    let batch_rows = i64::try_from(PURGE_BATCH_ROWS).unwrap_or(i64::MAX);
    let mut purged = 0_u64;
    let outcome = loop {
        let deleted = connections.with_writer(|connection| {
            connection
                .prepare_cached(SQL_PURGE_BATCH)
                .sql()?
                .execute(params![now_millis, batch_rows])
                .sql()
        });
        match deleted {
            Ok(deleted) => {
                purged += deleted as u64;
                counters
                    .purged_rows
                    .fetch_add(deleted as u64, Ordering::Relaxed);
                if deleted < PURGE_BATCH_ROWS || !keep_going() {
                    break Ok(purged);
                }
            }
            Err(error) => break Err(error),
        }
    };
    counters.rounds.fetch_add(1, Ordering::Relaxed);
    if outcome.is_err() {
        counters.failed_rounds.fetch_add(1, Ordering::Relaxed);
    }
    outcome
}

/// The background purge thread of one store; stopped and joined on drop.
pub(super) struct Purger {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    /// Sleeps up to `interval`; true once a stop was asked.
    fn sleep(&self, interval: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            // A spurious or early wake-up only runs a round early, which is harmless.
            let _ = self.changed.wait_for(&mut stopped, interval);
        }
        *stopped
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.changed.notify_all();
    }
}

impl Purger {
    /// Starts a thread that purges `shared` every `interval` until stopped or the store is
    /// gone.
    pub(super) fn start(shared: Weak<Shared>, interval: Duration) -> KvResult<Purger> {
        let signal = Arc::new(StopSignal::default());
        let thread_signal = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("kv-sqlite-purge".to_owned())
            .spawn(move || {
                while !thread_signal.sleep(interval) {
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    // A failed round (the file locked by another process past the busy
                    // timeout, say) is counted in `stats()` and retried next round; the
                    // rows stay invisible meanwhile.
                    let _ = shared.purge_expired(|| !thread_signal.is_stopped());
                }
            })
            .map_err(|error| KvError::backend(BACKEND, error))?;
        Ok(Purger {
            signal,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (at most the batch in progress). Idempotent.
    pub(super) fn stop(&mut self) {
        self.signal.stop();
        if let Some(thread) = self.thread.take() {
            // The thread never panics by design; if it did, there is nothing left to stop.
            let _ = thread.join();
        }
    }
}

impl Drop for Purger {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Time, injected.
//!
//! TTL deadlines are absolute milliseconds read from a [`Clock`]. Production uses
//! [`SystemClock`] (milliseconds since the Unix epoch); tests use [`ManualClock`] and move time
//! by hand, so every expiry test is deterministic. A clock must never go backwards by more than
//! the caller is prepared to see keys "un-expire": expiry is judged against the clock at read
//! time.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now", in milliseconds.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since an epoch fixed for the life of the database.
    fn now_millis(&self) -> u64;
}

/// Wall-clock time: milliseconds since the Unix epoch.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        // A system clock before 1970 reads as 0 rather than panicking.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now_millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `start_millis`.
    pub fn new(start_millis: u64) -> Self {
        ManualClock {
            now_millis: Arc::new(AtomicU64::new(start_millis)),
        }
    }

    /// Moves time forward by `millis` (saturating).
    pub fn advance_millis(&self, millis: u64) {
        let mut current = self.now_millis.load(Ordering::Acquire);
        loop {
            let next = current.saturating_add(millis);
            match self.now_millis.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(observed) => current = observed,
            }
        }
    }

    /// Sets the time to `millis`.
    pub fn set_millis(&self, millis: u64) {
        self.now_millis.store(millis, Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.now_millis.load(Ordering::Acquire)
    }
}

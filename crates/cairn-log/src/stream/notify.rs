//! Wake-ups for blocking reads: a condition variable that the writer side signals only when
//! someone waits.
//!
//! Guarantees: [`Notifier::notify`] costs one atomic load when nobody waits (the append
//! path's price); no wake-up is lost: a waiter registers (`waiters += 1`) before it checks
//! its condition under the notifier's mutex, and a notifier that changed the condition
//! before it read `waiters` either sees the registration (and takes the mutex, so the waiter
//! is either before its check or asleep on the condvar) or was ordered before it (so the
//! check sees the change). Messages never travel through here: a woken waiter reads the
//! stream itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Wakes the threads waiting for a change (an append to a stream, a stream's creation).
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    waiters: AtomicUsize,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Notifier {
    /// Wakes every waiter; one atomic load when there is none. Call after the change is
    /// visible to a waiter's condition, and without holding a lock that condition takes.
    pub fn notify(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            drop(self.lock.lock());
            self.changed.notify_all();
        }
    }

    /// Waits until `ready` is true (checked under the notifier's mutex, first at once) or
    /// `deadline` passes; returns the last `ready`. `ready` must not call [`Self::notify`]
    /// of this notifier.
    pub fn wait_until(&self, deadline: Instant, mut ready: impl FnMut() -> bool) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.lock.lock();
        let result = loop {
            if ready() {
                break true;
            }
            if self.changed.wait_until(&mut guard, deadline).timed_out() {
                break ready();
            }
        };
        drop(guard);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_waiter_wakes_on_notify_and_times_out_without() {
        let notifier = Arc::new(Notifier::default());
        let flag = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        assert!(
            !notifier.wait_until(started + Duration::from_millis(30), || {
                flag.load(Ordering::SeqCst)
            })
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        let writer = {
            let notifier = Arc::clone(&notifier);
            let flag = Arc::clone(&flag);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                flag.store(true, Ordering::SeqCst);
                notifier.notify();
            })
        };
        let started = Instant::now();
        assert!(notifier.wait_until(started + Duration::from_secs(30), || {
            flag.load(Ordering::SeqCst)
        }));
        assert!(started.elapsed() < Duration::from_secs(10));
        writer.join().expect("writer");
        assert_eq!(notifier.waiters.load(Ordering::SeqCst), 0);
    }
}

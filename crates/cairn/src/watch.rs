//! Change feeds: `Db::watch_prefix`.
//!
//! Each watcher owns a bounded queue. A commit pushes one event per written key whose bytes
//! start with the watcher's prefix, after the commit is visible and while it still holds the
//! commit lock, so every watcher sees commits in version order, and a watcher woken by an
//! event reads (at least) the value the event carries. In `Strict` mode a commit is not visible until it is durable, and
//! neither are its events: they are held in version order and delivered once the commit
//! becomes visible, so a watcher never learns of a commit a reader cannot see yet, nor of one
//! whose fsync failed. A push never waits: when a queue is full its newest event is folded
//! into a [`WatchEvent::Lagged`] marker that counts what was lost, so a slow watcher costs a
//! writer one short lock and never a wait. Expiry is not an event: a key whose deadline passes
//! simply reads as absent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::types::{Key, Value, Version};

/// One change seen by a watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// `key` was set to `value` by commit `version`.
    Put {
        /// The key written.
        key: Key,
        /// Its new value.
        value: Value,
        /// The commit that wrote it.
        version: Version,
    },
    /// `key` was deleted by commit `version`.
    Delete {
        /// The key deleted.
        key: Key,
        /// The commit that deleted it.
        version: Version,
    },
    /// The watcher fell behind and this many events were dropped here.
    Lagged(u64),
}

/// Called after every event pushed to a watcher's queue and when the watcher closes, so an
/// async adapter can wake its task instead of parking a thread in `recv`. It runs on a
/// committing thread, which may hold the commit lock: it must be short and must never block.
pub type WakeupHook = Arc<dyn Fn() + Send + Sync>;

struct Subscriber {
    prefix: Vec<u8>,
    capacity: usize,
    queue: Mutex<VecDeque<WatchEvent>>,
    ready: Condvar,
    closed: AtomicBool,
    wakeup: Option<WakeupHook>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Subscriber")
            .field("prefix", &self.prefix)
            .field("capacity", &self.capacity)
            .field("closed", &self.closed)
            .field("wakeup", &self.wakeup.is_some())
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    fn push(&self, event: WatchEvent) {
        let mut queue = self.queue.lock();
        if queue.len() < self.capacity {
            queue.push_back(event);
        } else if let Some(WatchEvent::Lagged(lost)) = queue.back_mut() {
            *lost += 1;
        } else {
            // Full: fold the newest queued event and this one into a marker.
            queue.pop_back();
            queue.push_back(WatchEvent::Lagged(2));
        }
        drop(queue);
        self.ready.notify_one();
        self.wake();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let queue = self.queue.lock();
        self.ready.notify_all();
        drop(queue);
        self.wake();
    }

    fn wake(&self) {
        if let Some(wakeup) = &self.wakeup {
            wakeup();
        }
    }
}

/// All watchers of one database.
#[derive(Debug, Default)]
pub(crate) struct WatchHub {
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    count: AtomicUsize,
    /// `Strict` mode: events of commits not yet durable, in version order. They are
    /// delivered by `release_through` once the commit is visible, so a watcher never sees a
    /// commit before a reader could, nor one whose fsync failed.
    held: Mutex<VecDeque<HeldEvent>>,
    held_count: AtomicUsize,
}

/// A change waiting for its commit to become visible, or (`change: None`) a marker for
/// `lost` changes folded away when the queue was full; `version` is the newest one's.
#[derive(Debug)]
struct HeldEvent {
    change: Option<(Key, Option<Value>)>,
    lost: u64,
    version: u64,
}

impl WatchHub {
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        prefix: &[u8],
        capacity: usize,
        wakeup: Option<WakeupHook>,
    ) -> Watcher {
        let subscriber = Arc::new(Subscriber {
            prefix: prefix.to_vec(),
            capacity,
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            closed: AtomicBool::new(false),
            wakeup,
        });
        let mut subscribers = self.subscribers.write();
        subscribers.push(Arc::clone(&subscriber));
        self.count.store(subscribers.len(), Ordering::Release);
        Watcher {
            hub: Arc::downgrade(self),
            subscriber,
        }
    }

    /// True when nobody watches: the commit path skips building events.
    pub(crate) fn is_idle(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Delivers a change to every watcher whose prefix matches `key`. The value is copied out
    /// of the commit only when a watcher matches.
    pub(crate) fn publish(&self, key: &[u8], value: Option<&[u8]>, version: u64) {
        self.deliver(key, version, || value.map(Value::from_slice));
    }

    /// Delivers a change to every matching watcher; `value` is called at most once, and every
    /// matching watcher shares what it made.
    fn deliver(&self, key: &[u8], version: u64, value: impl FnOnce() -> Option<Value>) {
        let subscribers = self.subscribers.read();
        let mut value = Some(value);
        let mut owned: Option<(Key, Option<Value>)> = None;
        for subscriber in subscribers.iter() {
            if key.starts_with(&subscriber.prefix) {
                let (key, value) = owned
                    .get_or_insert_with(|| {
                        (Key::from_slice(key), value.take().and_then(|make| make()))
                    })
                    .clone();
                let version = Version(version);
                let event = match value {
                    Some(value) => WatchEvent::Put {
                        key,
                        value,
                        version,
                    },
                    None => WatchEvent::Delete { key, version },
                };
                subscriber.push(event);
            }
        }
    }

    /// Tells every watcher that `lost` events were dropped before they could be delivered.
    fn publish_lagged(&self, lost: u64) {
        for subscriber in self.subscribers.read().iter() {
            subscriber.push(WatchEvent::Lagged(lost));
        }
    }

    /// Holds a change until `release_through` reaches its version. Caller holds the commit
    /// lock, so held events are in version order. At most `limits::WATCH_HELD_EVENTS_MAX` are
    /// held: beyond that the newest are folded into one lag marker, delivered to every watcher
    /// as `WatchEvent::Lagged` (it cannot tell whose they were), so a burst of commits waiting
    /// for one fsync never grows this queue without bound and never waits.
    pub(crate) fn hold(&self, key: &[u8], value: Option<&[u8]>, version: u64) {
        let mut held = self.held.lock();
        if held.len() < crate::limits::WATCH_HELD_EVENTS_MAX {
            held.push_back(HeldEvent {
                change: Some((Key::from_slice(key), value.map(Value::from_slice))),
                lost: 0,
                version,
            });
        } else if let Some(last) = held.back_mut().filter(|last| last.change.is_none()) {
            last.lost += 1;
            last.version = version;
        } else if let Some(last) = held.back_mut() {
            // Full: fold the newest held event and this one into a marker.
            last.change = None;
            last.lost = 2;
            last.version = version;
        }
        self.held_count.store(held.len(), Ordering::Release);
    }

    /// Delivers every held change of a version up to `visible`, oldest first.
    pub(crate) fn release_through(&self, visible: u64) {
        if self.held_count.load(Ordering::Acquire) == 0 {
            return;
        }
        // Delivering under the `held` lock keeps two releasing threads from interleaving.
        let mut held = self.held.lock();
        while held.front().is_some_and(|event| event.version <= visible) {
            if let Some(event) = held.pop_front() {
                match event.change {
                    Some((key, value)) => self.deliver(&key, event.version, || value),
                    None => self.publish_lagged(event.lost),
                }
            }
        }
        self.held_count.store(held.len(), Ordering::Release);
    }

    /// Wakes every watcher for good: the database is gone.
    pub(crate) fn close_all(&self) {
        for subscriber in self.subscribers.read().iter() {
            subscriber.close();
        }
    }

    fn unsubscribe(&self, target: &Arc<Subscriber>) {
        let mut subscribers = self.subscribers.write();
        subscribers.retain(|subscriber| !Arc::ptr_eq(subscriber, target));
        self.count.store(subscribers.len(), Ordering::Release);
    }
}

/// A subscription to changes under one prefix. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Watcher {
    hub: Weak<WatchHub>,
    subscriber: Arc<Subscriber>,
}

impl Watcher {
    /// The next event, waiting for one; `None` once the database is closed and the queue empty.
    pub fn recv(&self) -> Option<WatchEvent> {
        let mut queue = self.subscriber.queue.lock();
        loop {
            if let Some(event) = queue.pop_front() {
                return Some(event);
            }
            if self.subscriber.closed.load(Ordering::Acquire) {
                return None;
            }
            self.subscriber.ready.wait(&mut queue);
        }
    }

    /// The next event, waiting at most `timeout`; `None` on timeout or once closed and empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<WatchEvent> {
        let deadline = Instant::now() + timeout;
        let mut queue = self.subscriber.queue.lock();
        loop {
            if let Some(event) = queue.pop_front() {
                return Some(event);
            }
            if self.subscriber.closed.load(Ordering::Acquire) {
                return None;
            }
            if self
                .subscriber
                .ready
                .wait_until(&mut queue, deadline)
                .timed_out()
            {
                return queue.pop_front();
            }
        }
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<WatchEvent> {
        self.subscriber.queue.lock().pop_front()
    }

    /// Events queued now.
    pub fn pending(&self) -> usize {
        self.subscriber.queue.lock().len()
    }

    /// True once the database is closed: no event will arrive after those already queued.
    pub fn is_closed(&self) -> bool {
        self.subscriber.closed.load(Ordering::Acquire)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(&self.subscriber);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_folds_events_into_a_lag_marker() {
        let hub = Arc::new(WatchHub::default());
        let watcher = hub.subscribe(b"k", 3, None);
        for version in 1..=10 {
            hub.publish(b"k1", Some(b"v"), version);
        }
        hub.publish(b"other", Some(b"v"), 11);
        assert_eq!(watcher.pending(), 3);
        let first = watcher.try_recv();
        assert!(matches!(
            first,
            Some(WatchEvent::Put {
                version: Version(1),
                ..
            })
        ));
        assert!(matches!(
            watcher.try_recv(),
            Some(WatchEvent::Put {
                version: Version(2),
                ..
            })
        ));
        assert_eq!(watcher.try_recv(), Some(WatchEvent::Lagged(8)));
        assert_eq!(watcher.try_recv(), None);
        drop(watcher);
        assert!(hub.is_idle());
    }

    #[test]
    fn held_events_are_bounded_and_overflow_becomes_one_lag_marker() {
        let hub = Arc::new(WatchHub::default());
        let watcher = hub.subscribe(b"k", 1 << 20, None);
        let max = crate::limits::WATCH_HELD_EVENTS_MAX;
        let total = max as u64 + 10;
        for version in 1..=total {
            hub.hold(b"k1", Some(b"v"), version);
        }
        assert_eq!(
            hub.held.lock().len(),
            max,
            "the held queue grew past its limit"
        );
        hub.release_through(total - 1);
        assert_eq!(
            hub.held.lock().len(),
            1,
            "the marker waits for its newest version"
        );
        hub.release_through(total);
        assert_eq!(hub.held.lock().len(), 0);
        assert_eq!(watcher.pending(), max);
        let mut puts = 0;
        let mut lost = 0;
        while let Some(event) = watcher.try_recv() {
            match event {
                WatchEvent::Put { .. } => puts += 1,
                WatchEvent::Lagged(n) => lost += n,
                WatchEvent::Delete { .. } => unreachable!("no delete was held"),
            }
        }
        assert_eq!(
            puts + lost,
            total,
            "every held change is delivered or counted as lost"
        );
        assert_eq!(lost, 11);
    }
}

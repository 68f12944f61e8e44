//! Watching keys: [`KvEvent`], [`KvWatcher`], and the in-process fan-out some backends use.
//!
//! A watcher belongs to one scope and sees only that scope's keys, with the scope stripped.
//! Its buffer is bounded ([`WATCH_QUEUE_EVENTS`] for the fan-out here; the engine's own
//! queue for Cairn): when it is full, the newest events fold into one [`KvEvent::Lagged`]
//! marker counting what was lost, so a slow watcher costs a writer a short lock and never a
//! wait. Dropping a watcher unsubscribes it.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::limits::WATCH_QUEUE_EVENTS;
use crate::scope::Scope;

/// One change seen by a watcher. Keys are the caller's keys, without the scope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvEvent {
    /// `key` was set to `value`.
    Put {
        /// The key written.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
    },
    /// `key` was deleted (by `delete`, `clear_prefix`, or a `cas`).
    Delete {
        /// The key deleted.
        key: Vec<u8>,
    },
    /// The watcher fell behind and this many events were dropped here.
    Lagged(u64),
}

/// A future a backend's event source returns.
pub type RecvFuture<'source> = Pin<Box<dyn Future<Output = Option<KvEvent>> + Send + 'source>>;

/// Where a watcher's events come from; each backend supplies one.
pub trait EventSource: Send {
    /// The next event, waiting for one; `None` once the store is closed or gone.
    fn recv(&mut self) -> RecvFuture<'_>;
}

/// A subscription to changes under one key or prefix of one scope.
pub struct KvWatcher {
    source: Box<dyn EventSource>,
}

impl KvWatcher {
    /// Wraps a backend's event source.
    pub fn new(source: impl EventSource + 'static) -> Self {
        KvWatcher {
            source: Box::new(source),
        }
    }

    /// The next event, waiting for one; `None` once the store is closed. Cancel-safe: an
    /// event is never lost by dropping the future (wrap it in `tokio::time::timeout` freely).
    pub async fn recv(&mut self) -> Option<KvEvent> {
        self.source.recv().await
    }
}

impl fmt::Debug for KvWatcher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("KvWatcher").finish_non_exhaustive()
    }
}

/// What a watcher matches: one stored key, or every stored key under a stored prefix.
#[derive(Clone, Debug)]
pub(crate) struct WatchTarget {
    scope: Scope,
    stored: Vec<u8>,
    exact: bool,
}

impl WatchTarget {
    pub(crate) fn key(scope: &Scope, key: &[u8]) -> Self {
        WatchTarget {
            scope: scope.clone(),
            stored: scope.stored_key(key),
            exact: true,
        }
    }

    pub(crate) fn prefix(scope: &Scope, prefix: &[u8]) -> Self {
        WatchTarget {
            scope: scope.clone(),
            stored: scope.stored_key(prefix),
            exact: false,
        }
    }

    /// The stored prefix to subscribe to (the stored key itself for one key).
    #[cfg_attr(not(feature = "cairn"), allow(dead_code))]
    pub(crate) fn stored_prefix(&self) -> &[u8] {
        &self.stored
    }

    /// The event for a write of `stored_key`, or `None` when it is not watched.
    pub(crate) fn event(&self, stored_key: &[u8], value: Option<&[u8]>) -> Option<KvEvent> {
        let matches = if self.exact {
            stored_key == self.stored.as_slice()
        } else {
            stored_key.starts_with(&self.stored)
        };
        if !matches {
            return None;
        }
        let key = self.scope.user_key(stored_key)?.to_vec();
        Some(match value {
            Some(value) => KvEvent::Put {
                key,
                value: value.to_vec(),
            },
            None => KvEvent::Delete { key },
        })
    }
}

/// In-process fan-out: a store publishes each committed write, every matching watcher gets
/// it in its own bounded queue. Used by backends whose server has no change feed of its own.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
#[derive(Default)]
pub(crate) struct LocalHub {
    subscribers: Mutex<Vec<Arc<LocalSubscriber>>>,
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
struct LocalSubscriber {
    target: WatchTarget,
    queue: Mutex<VecDeque<KvEvent>>,
    ready: Notify,
    /// Set when the store closes or drops the hub: `recv` drains the queue, then ends.
    closed: std::sync::atomic::AtomicBool,
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
impl LocalSubscriber {
    fn push(&self, event: KvEvent) {
        let mut queue = self.queue.lock();
        if queue.len() < WATCH_QUEUE_EVENTS {
            queue.push_back(event);
        } else if let Some(KvEvent::Lagged(lost)) = queue.back_mut() {
            *lost += 1;
        } else {
            queue.pop_back();
            queue.push_back(KvEvent::Lagged(2));
        }
        drop(queue);
        self.ready.notify_one();
    }
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
impl LocalHub {
    /// True when nobody watches, so a writer can skip building events.
    pub(crate) fn is_idle(&self) -> bool {
        self.subscribers.lock().is_empty()
    }

    /// Delivers a write of `stored_key` (`None`: a delete) to every matching watcher.
    pub(crate) fn publish(&self, stored_key: &[u8], value: Option<&[u8]>) {
        for subscriber in self.subscribers.lock().iter() {
            if let Some(event) = subscriber.target.event(stored_key, value) {
                subscriber.push(event);
            }
        }
    }

    pub(crate) fn subscribe(self: &Arc<Self>, target: WatchTarget) -> KvWatcher {
        let subscriber = Arc::new(LocalSubscriber {
            target,
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        self.subscribers.lock().push(Arc::clone(&subscriber));
        KvWatcher::new(LocalWatch {
            hub: Arc::downgrade(self),
            subscriber,
        })
    }

    pub(crate) fn watchers(&self) -> usize {
        self.subscribers.lock().len()
    }

    /// Ends every watcher: each drains what it has queued, then `recv` returns `None`.
    pub(crate) fn close(&self) {
        for subscriber in self.subscribers.lock().iter() {
            subscriber.close();
        }
    }
}

impl LocalSubscriber {
    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.ready.notify_one();
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        for subscriber in self.subscribers.get_mut().iter() {
            subscriber.close();
        }
    }
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
struct LocalWatch {
    hub: std::sync::Weak<LocalHub>,
    subscriber: Arc<LocalSubscriber>,
}

impl EventSource for LocalWatch {
    fn recv(&mut self) -> RecvFuture<'_> {
        Box::pin(async move {
            loop {
                if let Some(event) = self.subscriber.queue.lock().pop_front() {
                    return Some(event);
                }
                if self
                    .subscriber
                    .closed
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    return None;
                }
                // `notify_one` stores a permit when nobody waits, so a push between the
                // check above and this await is not lost.
                self.subscriber.ready.notified().await;
            }
        })
    }
}

impl Drop for LocalWatch {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.subscribers
                .lock()
                .retain(|subscriber| !Arc::ptr_eq(subscriber, &self.subscriber));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::KvResult;

    #[tokio::test]
    async fn local_hub_filters_by_scope_and_folds_overflow() -> KvResult<()> {
        let hub = Arc::new(LocalHub::default());
        let scope = Scope::new("t", "n")?;
        let other = Scope::new("t", "n2")?;
        let mut watcher = hub.subscribe(WatchTarget::prefix(&scope, b"a"));
        let mut exact = hub.subscribe(WatchTarget::key(&scope, b"ab"));
        hub.publish(&other.stored_key(b"a1"), Some(b"x"));
        hub.publish(&scope.stored_key(b"b1"), Some(b"x"));
        hub.publish(&scope.stored_key(b"abc"), Some(b"v"));
        hub.publish(&scope.stored_key(b"ab"), None);
        assert_eq!(
            watcher.recv().await,
            Some(KvEvent::Put {
                key: b"abc".to_vec(),
                value: b"v".to_vec()
            })
        );
        assert_eq!(
            watcher.recv().await,
            Some(KvEvent::Delete {
                key: b"ab".to_vec()
            })
        );
        assert_eq!(
            exact.recv().await,
            Some(KvEvent::Delete {
                key: b"ab".to_vec()
            })
        );
        for _ in 0..WATCH_QUEUE_EVENTS + 10 {
            hub.publish(&scope.stored_key(b"a"), None);
        }
        let mut seen = 0_u64;
        let mut lost = 0_u64;
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(10), watcher.recv()).await
        {
            match event {
                KvEvent::Lagged(count) => lost += count,
                _ => seen += 1,
            }
        }
        assert_eq!(seen + lost, (WATCH_QUEUE_EVENTS + 10) as u64);
        assert!(lost > 0);
        drop(watcher);
        drop(exact);
        assert!(hub.is_idle());

        // A watcher waiting when the hub closes, or is dropped, wakes and ends.
        let mut waiting = hub.subscribe(WatchTarget::prefix(&scope, b""));
        let waiter = tokio::spawn(async move { waiting.recv().await });
        tokio::task::yield_now().await;
        hub.close();
        assert_eq!(waiter.await.ok(), Some(None));
        let mut orphan = hub.subscribe(WatchTarget::prefix(&scope, b""));
        drop(hub);
        assert_eq!(orphan.recv().await, None);
        Ok(())
    }
}

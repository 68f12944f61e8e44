//! Pub/sub: channels and patterns, and each subscriber's outbox.
//!
//! `PUBLISH` never waits for a subscriber: it appends the message to each subscriber's
//! outbox and wakes its connection, which writes it out. An outbox is bounded by
//! [`OUTBOX_BYTES_MAX`] (Redis's default hard limit for pub/sub clients, 32 MiB): a
//! subscriber that does not read falls behind until its outbox is full, and then its
//! connection is closed, as Redis closes it. Memory per subscriber stays bounded, and the
//! publisher and every other client are unaffected.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::glob;
use crate::resp::Reply;

/// The most bytes of messages one subscriber may have waiting.
pub const OUTBOX_BYTES_MAX: usize = 32 * 1024 * 1024;

/// A subscriber's waiting messages.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    messages: Mutex<VecDeque<Reply>>,
    bytes: AtomicUsize,
    /// Set when the outbox overflowed: the connection closes.
    overflowed: AtomicBool,
    /// Wakes the connection when a message arrives.
    pub(crate) wake: Notify,
    /// Wakes the connection when the outbox overflows, even while it is writing.
    pub(crate) cut: Notify,
}

impl Outbox {
    fn push(&self, message: Reply, bytes: usize) {
        if self.overflowed.load(Ordering::SeqCst) {
            return;
        }
        if self.bytes.fetch_add(bytes, Ordering::SeqCst) + bytes > OUTBOX_BYTES_MAX {
            self.overflowed.store(true, Ordering::SeqCst);
            self.messages.lock().clear();
            self.cut.notify_one();
        } else {
            self.messages.lock().push_back(message);
        }
        self.wake.notify_one();
    }

    /// Takes every waiting message; `None` once the outbox has overflowed.
    pub(crate) fn drain(&self) -> Option<Vec<Reply>> {
        if self.overflowed.load(Ordering::SeqCst) {
            return None;
        }
        let messages: Vec<Reply> = self.messages.lock().drain(..).collect();
        self.bytes.store(0, Ordering::SeqCst);
        Some(messages)
    }
}

/// One subscription: the client and its outbox.
#[derive(Clone, Debug)]
struct Subscriber {
    id: u64,
    outbox: Arc<Outbox>,
}

/// Every channel's and pattern's subscribers.
#[derive(Debug, Default)]
pub(crate) struct PubSub {
    channels: Mutex<HashMap<Bytes, Vec<Subscriber>>>,
    patterns: Mutex<Vec<(Bytes, Subscriber)>>,
}

impl PubSub {
    pub(crate) fn subscribe(&self, channel: &Bytes, id: u64, outbox: &Arc<Outbox>) {
        let mut channels = self.channels.lock();
        let subscribers = channels.entry(channel.clone()).or_default();
        if !subscribers.iter().any(|subscriber| subscriber.id == id) {
            subscribers.push(Subscriber {
                id,
                outbox: Arc::clone(outbox),
            });
        }
    }

    pub(crate) fn unsubscribe(&self, channel: &[u8], id: u64) {
        let mut channels = self.channels.lock();
        if let Some(subscribers) = channels.get_mut(channel) {
            subscribers.retain(|subscriber| subscriber.id != id);
            if subscribers.is_empty() {
                channels.remove(channel);
            }
        }
    }

    pub(crate) fn psubscribe(&self, pattern: &Bytes, id: u64, outbox: &Arc<Outbox>) {
        let mut patterns = self.patterns.lock();
        if !patterns
            .iter()
            .any(|(existing, subscriber)| existing == pattern && subscriber.id == id)
        {
            patterns.push((
                pattern.clone(),
                Subscriber {
                    id,
                    outbox: Arc::clone(outbox),
                },
            ));
        }
    }

    pub(crate) fn punsubscribe(&self, pattern: &[u8], id: u64) {
        self.patterns
            .lock()
            .retain(|(existing, subscriber)| !(existing == pattern && subscriber.id == id));
    }

    /// The channels with a subscriber whose names match `pattern` (all of them without one).
    pub(crate) fn active_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.channels
            .lock()
            .keys()
            .filter(|channel| pattern.is_none_or(|pattern| glob::matches(pattern, channel)))
            .cloned()
            .collect()
    }

    /// The subscribers of `channel` (patterns aside).
    pub(crate) fn subscribers(&self, channel: &[u8]) -> usize {
        self.channels.lock().get(channel).map_or(0, Vec::len)
    }

    /// The distinct patterns some client subscribes to.
    pub(crate) fn distinct_patterns(&self) -> usize {
        let patterns = self.patterns.lock();
        let distinct: std::collections::HashSet<&Bytes> =
            patterns.iter().map(|(pattern, _)| pattern).collect();
        distinct.len()
    }

    /// Delivers `payload` on `channel`; how many subscriptions received it.
    pub(crate) fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let bytes = channel.len() + payload.len() + 32;
        let mut received = 0;
        if let Some(subscribers) = self.channels.lock().get(channel) {
            for subscriber in subscribers {
                let message = Reply::Push(vec![
                    Reply::bulk("message"),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(payload.clone()),
                ]);
                subscriber.outbox.push(message, bytes);
                received += 1;
            }
        }
        for (pattern, subscriber) in self.patterns.lock().iter() {
            if glob::matches(pattern, channel) {
                let message = Reply::Push(vec![
                    Reply::bulk("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(payload.clone()),
                ]);
                subscriber.outbox.push(message, bytes + pattern.len());
                received += 1;
            }
        }
        received
    }
}

//! Change events for Redis watchers: the channel names, the payload decoder, and the
//! watcher itself.
//!
//! Every write script `PUBLISH`es its change on the scope's channel (`channel`) in the same
//! atomic step as the write, so a subscriber receives a scope's events in commit order and
//! with the value. A watcher owns one pub/sub connection, subscribed to its scope's channel
//! (the `SUBSCRIBE` is confirmed before `watch` returns, so every later write is seen), and
//! keeps the events its [`WatchTarget`] matches.
//!
//! Buffering: a forwarding task reads the connection as fast as messages arrive and moves
//! each matching event into the watcher's own queue of at most [`WATCH_QUEUE_EVENTS`]. When
//! that queue is full, the newest events fold into one [`KvEvent::Lagged`] counting them, as
//! for the other backends. Between the socket and the forwarding task, the client library
//! keeps an unbounded channel; the task drains it continuously, so only a burst waiting for
//! the task's next turn on the runtime sits there. Redis itself closes a subscriber whose
//! output buffer passes `client-output-buffer-limit pubsub` (32 MiB by default), which only
//! a stalled runtime or a huge burst (a `clear_prefix` of a million keys) can reach.
//!
//! A lost subscription (that limit, a server restart, a network fault) is re-established,
//! trying the nodes in turn, up to [`RESUBSCRIBE_ATTEMPTS`] times with a growing pause.
//! Events published while it was down are lost and their number is unknown, so the watcher
//! then receives `KvEvent::Lagged(1)`, meaning "at least one event may be missing; re-read
//! what you watch". If every attempt fails, or the store is dropped, `recv` returns `None`
//! once the queue is drained.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::PubSubStream;
use tokio::sync::Notify;

use crate::error::{KvError, KvResult};
use crate::limits::WATCH_QUEUE_EVENTS;
use crate::scope::Scope;
use crate::watch::{EventSource, KvEvent, RecvFuture, WatchTarget};

use super::connection::{redis_error, BACKEND, CONNECT_TIMEOUT};

/// How many times a lost subscription is re-established before the watcher gives up.
pub const RESUBSCRIBE_ATTEMPTS: u32 = 8;

/// The pause before the first re-subscription; it doubles each attempt up to
/// [`RESUBSCRIBE_PAUSE_MAX`].
const RESUBSCRIBE_PAUSE_MIN: Duration = Duration::from_millis(50);
const RESUBSCRIBE_PAUSE_MAX: Duration = Duration::from_secs(2);

/// What every event channel of a store on database `db` starts with. Pub/sub ignores the
/// database number, so it is part of the name: stores on two databases of one server never
/// see each other's events.
pub(super) fn channel_prefix(db: i64) -> Box<[u8]> {
    format!("cairn-kv:events:{db}:").into_bytes().into()
}

/// The channel a scope's events are published on: `cairn-kv:events:<db>:<scope prefix>`.
pub(super) fn channel(channel_prefix: &[u8], scope: &Scope) -> Vec<u8> {
    let mut channel = Vec::with_capacity(channel_prefix.len() + scope.key_prefix().len());
    channel.extend_from_slice(channel_prefix);
    channel.extend_from_slice(scope.key_prefix());
    channel
}

/// A decoded change: the stored key, and its new value (`None`: deleted).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Change<'payload> {
    pub(super) stored_key: &'payload [u8],
    pub(super) value: Option<&'payload [u8]>,
}

/// The changes in one message, in order (see `scripts` for the format). Decoding stops at
/// the first malformed byte, so a message someone else published on the channel yields
/// nothing (or only what precedes the damage); the watcher ignores it.
pub(super) fn decode(payload: &[u8]) -> impl Iterator<Item = Change<'_>> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        let (change, after) = decode_one(rest)?;
        rest = after;
        Some(change)
    })
}

fn decode_one(payload: &[u8]) -> Option<(Change<'_>, &[u8])> {
    let (&kind, rest) = payload.split_first()?;
    let (stored_key, rest) = length_prefixed(rest)?;
    match kind {
        b'P' => {
            let (value, rest) = length_prefixed(rest)?;
            Some((
                Change {
                    stored_key,
                    value: Some(value),
                },
                rest,
            ))
        }
        b'D' => Some((
            Change {
                stored_key,
                value: None,
            },
            rest,
        )),
        _ => None,
    }
}

/// `<decimal length> ":" <that many bytes>`, and what follows.
fn length_prefixed(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = input.iter().take(11).position(|&byte| byte == b':')?;
    let (digits, rest) = input.split_at_checked(colon)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let body = rest.get(1..)?;
    (len <= body.len()).then(|| body.split_at(len))
}

/// Where a watcher connects: the server, or a cluster's seed nodes in order. Classic
/// pub/sub messages reach every node of a cluster, so any one node serves.
#[derive(Clone, Debug)]
pub(super) struct SubscribeNodes(pub(super) Arc<[redis::Client]>);

impl SubscribeNodes {
    /// A connection subscribed to `channel` (confirmed), from the first node that answers.
    async fn subscribe(&self, channel: &[u8]) -> KvResult<PubSubStream> {
        let mut last_error = None;
        for client in self.0.iter() {
            let attempt = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok::<_, redis::RedisError>(pubsub.into_on_message())
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(error)) => last_error = Some(redis_error(error)),
                Err(elapsed) => last_error = Some(KvError::unavailable(BACKEND, elapsed)),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            KvError::InvalidArgument("no Redis node to subscribe to".to_owned())
        }))
    }
}

/// A watcher's queue, shared by its forwarding task and its `recv`.
struct WatchQueue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<KvEvent>,
    /// No more events will come (the store is gone or the subscription could not be
    /// re-established).
    closed: bool,
}

impl WatchQueue {
    fn push(&self, event: KvEvent) {
        let mut state = self.state.lock();
        let events = &mut state.events;
        if events.len() < WATCH_QUEUE_EVENTS {
            events.push_back(event);
        } else if let Some(KvEvent::Lagged(lost)) = events.back_mut() {
            *lost = lost.saturating_add(match event {
                KvEvent::Lagged(more) => more,
                _ => 1,
            });
        } else {
            // The newest queued event and this one become one marker.
            events.pop_back();
            let lost = match event {
                KvEvent::Lagged(more) => more.saturating_add(1),
                _ => 2,
            };
            events.push_back(KvEvent::Lagged(lost));
        }
        drop(state);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }
}

/// Subscribes a new watcher for `target` and starts its forwarding task. Returns once the
/// subscription is confirmed.
pub(super) async fn watch(
    nodes: &SubscribeNodes,
    channel: Vec<u8>,
    target: WatchTarget,
    store_alive: tokio::sync::watch::Receiver<()>,
    live_watchers: &Arc<AtomicUsize>,
) -> KvResult<RedisWatch> {
    let stream = nodes.subscribe(&channel).await?;
    let queue = Arc::new(WatchQueue {
        state: Mutex::new(QueueState::default()),
        ready: Notify::new(),
    });
    let forwarder = tokio::spawn(forward(
        stream,
        Forwarding {
            nodes: nodes.clone(),
            channel,
            target,
            queue: Arc::clone(&queue),
            store_alive,
        },
    ));
    live_watchers.fetch_add(1, Ordering::Relaxed);
    Ok(RedisWatch {
        queue,
        forwarder,
        live_watchers: Arc::clone(live_watchers),
    })
}

struct Forwarding {
    nodes: SubscribeNodes,
    channel: Vec<u8>,
    target: WatchTarget,
    queue: Arc<WatchQueue>,
    store_alive: tokio::sync::watch::Receiver<()>,
}

/// Why a subscription stopped delivering.
enum Stopped {
    StoreGone,
    ConnectionLost,
}

/// The forwarding task: moves matching events into the queue until the store is gone or
/// the subscription is lost for good.
async fn forward(mut stream: PubSubStream, mut forwarding: Forwarding) {
    loop {
        match forwarding.pump(&mut stream).await {
            Stopped::StoreGone => break,
            Stopped::ConnectionLost => match forwarding.resubscribe().await {
                Some(fresh) => {
                    stream = fresh;
                    forwarding.queue.push(KvEvent::Lagged(1));
                }
                None => break,
            },
        }
    }
    forwarding.queue.close();
}

impl Forwarding {
    async fn pump(&mut self, stream: &mut PubSubStream) -> Stopped {
        loop {
            let next = pin!(stream.next());
            let gone = pin!(self.store_alive.changed());
            match select(next, gone).await {
                Either::Left((Some(message), _)) => {
                    for change in decode(message.get_payload_bytes()) {
                        if let Some(event) = self.target.event(change.stored_key, change.value) {
                            self.queue.push(event);
                        }
                    }
                }
                Either::Left((None, _)) => return Stopped::ConnectionLost,
                // The store's sender never sends; `changed` completes only when it drops.
                Either::Right(_) => return Stopped::StoreGone,
            }
        }
    }

    async fn resubscribe(&mut self) -> Option<PubSubStream> {
        let mut pause = RESUBSCRIBE_PAUSE_MIN;
        for _ in 0..RESUBSCRIBE_ATTEMPTS {
            let sleep = pin!(tokio::time::sleep(pause));
            let gone = pin!(self.store_alive.changed());
            if let Either::Right(_) = select(sleep, gone).await {
                return None;
            }
            if let Ok(stream) = self.nodes.subscribe(&self.channel).await {
                return Some(stream);
            }
            pause = (pause * 2).min(RESUBSCRIBE_PAUSE_MAX);
        }
        None
    }
}

/// A Redis watcher: its queue and its forwarding task, which stops when it drops (closing
/// its pub/sub connection).
pub(super) struct RedisWatch {
    queue: Arc<WatchQueue>,
    forwarder: tokio::task::JoinHandle<()>,
    live_watchers: Arc<AtomicUsize>,
}

impl EventSource for RedisWatch {
    fn recv(&mut self) -> RecvFuture<'_> {
        Box::pin(async move {
            loop {
                {
                    let mut state = self.queue.state.lock();
                    if let Some(event) = state.events.pop_front() {
                        return Some(event);
                    }
                    if state.closed {
                        return None;
                    }
                }
                // `notify_one` stores a permit when nobody waits, so a push between the
                // check above and this await is not lost.
                self.queue.ready.notified().await;
            }
        })
    }
}

impl Drop for RedisWatch {
    fn drop(&mut self) {
        self.forwarder.abort();
        self.live_watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(stored_key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
        let mut payload = vec![if value.is_some() { b'P' } else { b'D' }];
        payload.extend_from_slice(format!("{}:", stored_key.len()).as_bytes());
        payload.extend_from_slice(stored_key);
        if let Some(value) = value {
            payload.extend_from_slice(format!("{}:", value.len()).as_bytes());
            payload.extend_from_slice(value);
        }
        payload
    }

    #[test]
    fn payloads_round_trip_for_any_bytes() {
        let awkward: [&[u8]; 5] = [b"k", b"1:2", b"P3:abc", b"\x00\xff:", &[b':'; 40]];
        let values = [None, Some(&b""[..]), Some(b"v:1"), Some(b"\x00D0:")];
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for key in awkward {
            for value in values {
                let payload = encode(key, value);
                let change = Change {
                    stored_key: key,
                    value,
                };
                assert_eq!(
                    decode(&payload).collect::<Vec<_>>(),
                    [change],
                    "{payload:?}"
                );
                batch.extend_from_slice(&payload);
                expected.push(Change {
                    stored_key: key,
                    value,
                });
            }
        }
        assert_eq!(decode(&batch).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn malformed_payloads_are_ignored() {
        for payload in [
            &b""[..],
            b"P",
            b"P:",
            b"Px:k",
            b"P5:abc",
            b"P1:k",
            b"P1:k3:ab",
            b"X1:k",
            b"P-1:k",
            b"P99999999999:k",
            b"P1:k+1:v",
        ] {
            assert_eq!(decode(payload).count(), 0, "{payload:?}");
        }
        // What precedes the damage is kept.
        assert_eq!(decode(b"D1:kD1:jX").count(), 2);
    }

    #[test]
    fn channels_differ_by_scope_and_database() -> KvResult<()> {
        let scope = Scope::new("t", "n")?;
        let other = Scope::new("t", "n2")?;
        let (db0, db1) = (channel_prefix(0), channel_prefix(1));
        assert_eq!(channel(&db0, &scope), b"cairn-kv:events:0:{t:n}".to_vec());
        assert_ne!(channel(&db0, &scope), channel(&db0, &other));
        assert_ne!(channel(&db0, &scope), channel(&db1, &scope));
        Ok(())
    }

    #[test]
    fn a_full_queue_folds_into_one_lagged_marker() {
        let queue = WatchQueue {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
        };
        let total = WATCH_QUEUE_EVENTS + 10;
        for _ in 0..total {
            queue.push(KvEvent::Delete { key: b"k".to_vec() });
        }
        let events = std::mem::take(&mut queue.state.lock().events);
        assert_eq!(events.len(), WATCH_QUEUE_EVENTS);
        let lost: u64 = events
            .iter()
            .map(|event| match event {
                KvEvent::Lagged(lost) => *lost,
                _ => 0,
            })
            .sum();
        let seen = events.len() - 1;
        assert_eq!(seen as u64 + lost, total as u64);
    }
}

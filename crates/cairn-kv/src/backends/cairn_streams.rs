//! `CairnStreams`: the `StreamStore` trait on Cairn's own durable streams, one
//! [`cairn_log::stream::Streams`] store in one directory.
//!
//! **Names.** Stream `name` of scope `(tenant, namespace)` is the core stream
//! `hex(tenant) "." hex(namespace) "." name` (lower-case hex of the UTF-8 bytes; see
//! [`core_stream_name`]). Hex digits hold no `.`, so the first two dots end the tenant and
//! the namespace and the mapping is injective whatever bytes the scope's names hold; the
//! result is at most 2·64 + 1 + 2·64 + 1 + 128 = 386 bytes of the core alphabet, within the
//! core's 512-byte name limit (raised from 128 for this). Group and consumer names go to the
//! core unchanged (the same alphabet, 1 to 128 bytes).
//!
//! **Threads.** Nothing that can wait for a disk sync or for another writer runs on a
//! runtime worker:
//! - Calls that only touch memory or read the page cache run inline: reads, `read_group`
//!   and `read_blocking`'s first attempt, `info`, and in Buffered mode appends to an
//!   existing stream and `ack`/`commit`/`claim` (their committed offsets are written by the
//!   store's flush thread).
//! - Calls that sync run on tokio's blocking pool: every Strict append, `ack`, `commit` and
//!   `claim`; in both modes the first append to a stream (creating it syncs directories),
//!   `create_group`, `trim` and `delete_stream`.
//! - A blocking read first tries without waiting, inline; only when it must really wait does
//!   it move to the blocking pool, where the thread sleeps on the stream's condition
//!   variable (appenders signal it only while someone waits). At most
//!   [`BLOCKING_WAITS_MAX`] waits run at once per store, so waits can never take every
//!   thread of the blocking pool (tokio's default is 512) from Strict appends that would
//!   wake them; a wait beyond that fails at once with `Unavailable` (retry later). A wait
//!   whose caller drops the future keeps its thread until it is woken or times out (at
//!   most [`STREAM_BLOCK_MAX`](crate::stream::STREAM_BLOCK_MAX)).
//!
//! **Where this backend differs from Redis** (both pass the same conformance suite):
//! - Durability is the store's [`SyncPolicy`]: Strict acknowledges appends after
//!   `fdatasync`, and `ack`/`commit`/`claim` after the groups file is rewritten when they
//!   move a committed offset; Buffered acknowledges from memory and syncs within the flush
//!   interval. Redis persists per its own AOF/RDB settings.
//! - **Pending lists are not durable.** Only each group's committed offset is (see
//!   `docs/streams.md`); after a restart a group delivers again from its committed offset
//!   with nothing pending, so messages that were delivered and not acknowledged, and
//!   acknowledged ones above the lowest unacknowledged, are delivered again (at least
//!   once). Redis keeps its pending entries list (with owners and delivery counts) in its
//!   persistence.
//! - Timestamps come from this process's clock and never decrease within a stream.
//! - `claim` reads each claimed message separately; a pending message truncated away is
//!   dropped and not returned (as `XAUTOCLAIM`).
//! - A blocking read on a stream deleted meanwhile keeps waiting, for the stream that
//!   replaces it (as on Redis).
//! - `create_group` accepts a `start` above the next offset (as Redis does).

use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::stream::{GroupInfo as CoreGroupInfo, StreamError};
use cairn_log::{LogError, Message, StoredMessage, Streams};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use cairn_log::{FileSystem, StdFileSystem, StreamOptions, SyncPolicy};

use crate::error::{KvError, KvResult};
use crate::scope::Scope;
use crate::stream::{
    check_messages, check_read, check_stream_name, GroupInfo, NewMessage, StreamInfo,
    StreamMessage, StreamStore,
};

const BACKEND: &str = "cairn-streams";

/// Most blocking reads (`read_blocking`, `read_group` with a timeout) waiting at once on one
/// store; see the module docs.
pub const BLOCKING_WAITS_MAX: usize = 256;

/// Times an append creates its missing stream and tries again before giving up (a stream
/// deleted again between the two each time).
const CREATE_ATTEMPTS: usize = 4;

/// The core stream name of `stream` in `scope` (see the module docs).
pub fn core_stream_name(scope: &Scope, stream: &str) -> String {
    fn hex(out: &mut String, bytes: &[u8]) {
        for byte in bytes {
            let _ = write!(out, "{byte:02x}");
        }
    }
    let mut name = String::with_capacity(
        2 * (scope.tenant().len() + scope.namespace().len()) + 2 + stream.len(),
    );
    hex(&mut name, scope.tenant().as_bytes());
    name.push('.');
    hex(&mut name, scope.namespace().as_bytes());
    name.push('.');
    name.push_str(stream);
    name
}

/// The `StreamStore` trait on a Cairn [`Streams`] store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CairnStreams {
    streams: Arc<Streams>,
    strict: bool,
    waits: Arc<Semaphore>,
}

impl CairnStreams {
    /// Wraps an open store, in whatever sync mode it was opened.
    pub fn new(streams: Streams, strict: bool) -> Self {
        CairnStreams {
            streams: Arc::new(streams),
            strict,
            waits: Arc::new(Semaphore::new(BLOCKING_WAITS_MAX)),
        }
    }

    /// Opens (creating if needed, and recovering) the store in `dir` on the real file system
    /// with `sync` and the other options at their defaults. Runs on the blocking pool.
    pub async fn open(dir: impl Into<PathBuf>, sync: SyncPolicy) -> KvResult<Self> {
        Self::open_with(Arc::new(StdFileSystem), dir, StreamOptions::new(sync)).await
    }

    /// Opens the store in `dir` on `fs` with `options`. Runs on the blocking pool.
    pub async fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: impl Into<PathBuf>,
        options: StreamOptions,
    ) -> KvResult<Self> {
        let dir = dir.into();
        let strict = matches!(options.sync, SyncPolicy::Strict);
        let streams = tokio::task::spawn_blocking(move || Streams::open(fs, &dir, options))
            .await
            .map_err(|join| KvError::backend(BACKEND, join))?
            .map_err(stream_error)?;
        Ok(CairnStreams::new(streams, strict))
    }

    /// The core store, for what the trait does not cover (seek by time, pending lists,
    /// deleting groups, ...). Its names are the encoded ones of [`core_stream_name`].
    pub fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Closes the store (syncing what is buffered, writing moved committed offsets). Later
    /// calls fail with `Closed`.
    pub async fn close(&self) -> KvResult<()> {
        self.blocking(|streams| streams.close().map_err(stream_error))
            .await
    }

    /// Runs `call` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Streams) -> KvResult<T> + Send + 'static,
    ) -> KvResult<T> {
        let streams = Arc::clone(&self.streams);
        tokio::task::spawn_blocking(move || call(&streams))
            .await
            .map_err(|join| KvError::backend(BACKEND, join))?
    }

    /// Runs `call` on the blocking pool in Strict mode, inline in Buffered mode.
    async fn syncing<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Streams) -> KvResult<T> + Send + 'static,
    ) -> KvResult<T> {
        if self.strict {
            self.blocking(call).await
        } else {
            call(&self.streams)
        }
    }

    /// A permit for one blocking wait, or `Unavailable` when [`BLOCKING_WAITS_MAX`] wait.
    fn wait_permit(&self) -> KvResult<OwnedSemaphorePermit> {
        Arc::clone(&self.waits).try_acquire_owned().map_err(|_| {
            KvError::unavailable(
                BACKEND,
                format!("{BLOCKING_WAITS_MAX} blocking reads are waiting already"),
            )
        })
    }

    async fn append_messages(
        &self,
        scope: &Scope,
        stream: &str,
        messages: &[NewMessage],
    ) -> KvResult<Range<u64>> {
        check_stream_name("stream", stream)?;
        check_messages(messages)?;
        let name = core_stream_name(scope, stream);
        let messages: Vec<Message> = messages.iter().map(core_message).collect();
        if !self.strict {
            match self.streams.append_batch(&name, &messages) {
                Err(StreamError::NotFound { .. }) => {}
                other => return other.map_err(stream_error),
            }
        }
        self.blocking(move |streams| append_creating(streams, &name, &messages))
            .await
    }
}

/// Appends, creating the stream first when it does not exist.
fn append_creating(streams: &Streams, name: &str, messages: &[Message]) -> KvResult<Range<u64>> {
    for _ in 0..CREATE_ATTEMPTS {
        match streams.append_batch(name, messages) {
            Err(StreamError::NotFound { .. }) => match streams.create(name) {
                Ok(()) | Err(StreamError::AlreadyExists { .. }) => {}
                Err(error) => return Err(stream_error(error)),
            },
            other => return other.map_err(stream_error),
        }
    }
    streams.append_batch(name, messages).map_err(stream_error)
}

fn core_message(message: &NewMessage) -> Message {
    Message {
        key: message.key.clone(),
        headers: message.headers.clone(),
        value: message.value.clone(),
    }
}

fn stream_message(stored: StoredMessage) -> StreamMessage {
    StreamMessage {
        offset: stored.offset,
        timestamp_ms: stored.timestamp_ms,
        message: NewMessage {
            key: stored.message.key,
            headers: stored.message.headers,
            value: stored.message.value,
        },
    }
}

fn stream_messages(stored: Vec<StoredMessage>) -> Vec<StreamMessage> {
    stored.into_iter().map(stream_message).collect()
}

fn group_info(group: CoreGroupInfo) -> GroupInfo {
    GroupInfo {
        name: group.name,
        delivered_up_to: group.delivered_up_to,
        committed: group.committed,
        pending: group.pending,
    }
}

/// The typed `KvError` of a core error: what the caller must fix is `InvalidArgument` (a
/// missing group or stream where one is needed included), a closed store `Closed`, too many
/// streams in use at once (`open_streams_max`) `Unavailable` (retry later), the rest
/// `Backend` with the core error as its source.
fn stream_error(error: StreamError) -> KvError {
    match error {
        StreamError::InvalidName { .. }
        | StreamError::InvalidArgument { .. }
        | StreamError::NotFound { .. }
        | StreamError::GroupNotFound { .. }
        | StreamError::AlreadyExists { .. }
        | StreamError::Truncated { .. } => KvError::InvalidArgument(error.to_string()),
        StreamError::Log(LogError::Closed) => KvError::Closed,
        StreamError::TooManyOpenStreams { .. } => KvError::unavailable(BACKEND, error),
        StreamError::Locked { .. } | StreamError::Log(_) => KvError::backend(BACKEND, error),
    }
}

/// What is left of `timeout` since `started`.
fn remaining(started: Instant, timeout: Duration) -> Duration {
    timeout.saturating_sub(started.elapsed())
}

impl StreamStore for CairnStreams {
    async fn append_batch(
        &self,
        scope: &Scope,
        stream: &str,
        messages: &[NewMessage],
    ) -> KvResult<Range<u64>> {
        self.append_messages(scope, stream, messages).await
    }

    async fn read_range(
        &self,
        scope: &Scope,
        stream: &str,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> KvResult<Vec<StreamMessage>> {
        check_stream_name("stream", stream)?;
        check_read(max_messages, Duration::ZERO)?;
        let name = core_stream_name(scope, stream);
        match self
            .streams
            .read_range(&name, from, max_messages, max_bytes)
        {
            Ok(read) => Ok(stream_messages(read)),
            Err(StreamError::NotFound { .. }) => Ok(Vec::new()),
            Err(error) => Err(stream_error(error)),
        }
    }

    async fn read_blocking(
        &self,
        scope: &Scope,
        stream: &str,
        from: u64,
        max_messages: usize,
        timeout: Duration,
    ) -> KvResult<Vec<StreamMessage>> {
        let started = Instant::now();
        check_read(max_messages, timeout)?;
        let ready = self
            .read_range(scope, stream, from, max_messages, usize::MAX)
            .await?;
        if !ready.is_empty() || timeout.is_zero() {
            return Ok(ready);
        }
        let permit = self.wait_permit()?;
        let name = core_stream_name(scope, stream);
        self.blocking(move |streams| {
            let _permit = permit;
            streams
                .read_blocking(
                    &name,
                    from,
                    max_messages,
                    usize::MAX,
                    remaining(started, timeout),
                )
                .map(stream_messages)
                .map_err(stream_error)
        })
        .await
    }

    async fn info(&self, scope: &Scope, stream: &str) -> KvResult<Option<StreamInfo>> {
        check_stream_name("stream", stream)?;
        let name = core_stream_name(scope, stream);
        let (offsets, groups) = match (self.streams.info(&name), self.streams.group_info(&name)) {
            (Ok(offsets), Ok(groups)) => (offsets, groups),
            (Err(StreamError::NotFound { .. }), _) | (_, Err(StreamError::NotFound { .. })) => {
                return Ok(None)
            }
            (Err(error), _) | (_, Err(error)) => return Err(stream_error(error)),
        };
        Ok(Some(StreamInfo {
            first_offset: offsets.first_offset,
            next_offset: offsets.next_offset,
            groups: groups.into_iter().map(group_info).collect(),
        }))
    }

    async fn trim(&self, scope: &Scope, stream: &str, before: u64) -> KvResult<()> {
        check_stream_name("stream", stream)?;
        let name = core_stream_name(scope, stream);
        self.blocking(
            move |streams| match streams.truncate_before(&name, before) {
                Err(StreamError::NotFound { .. }) if before == 0 => Ok(()),
                Err(StreamError::NotFound { .. }) => Err(KvError::InvalidArgument(format!(
                    "cannot trim before {before}: the stream does not exist (its next offset is 0)"
                ))),
                other => other.map_err(stream_error),
            },
        )
        .await
    }

    async fn delete_stream(&self, scope: &Scope, stream: &str) -> KvResult<bool> {
        check_stream_name("stream", stream)?;
        let name = core_stream_name(scope, stream);
        self.blocking(move |streams| streams.delete(&name).map_err(stream_error))
            .await
    }

    async fn create_group(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        start: u64,
    ) -> KvResult<bool> {
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        let name = core_stream_name(scope, stream);
        let group = group.to_owned();
        self.blocking(move |streams| {
            for _ in 0..CREATE_ATTEMPTS {
                match streams.create_group(&name, &group, start) {
                    Err(StreamError::NotFound { .. }) => match streams.create(&name) {
                        Ok(()) | Err(StreamError::AlreadyExists { .. }) => {}
                        Err(error) => return Err(stream_error(error)),
                    },
                    other => return other.map_err(stream_error),
                }
            }
            streams
                .create_group(&name, &group, start)
                .map_err(stream_error)
        })
        .await
    }

    async fn read_group(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        consumer: &str,
        max_messages: usize,
        timeout: Duration,
    ) -> KvResult<Vec<StreamMessage>> {
        let started = Instant::now();
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        check_stream_name("consumer", consumer)?;
        check_read(max_messages, timeout)?;
        let name = core_stream_name(scope, stream);
        let ready = self
            .streams
            .read_group(&name, group, consumer, max_messages)
            .map_err(stream_error)?;
        if !ready.is_empty() || timeout.is_zero() {
            return Ok(stream_messages(ready));
        }
        let permit = self.wait_permit()?;
        let (group, consumer) = (group.to_owned(), consumer.to_owned());
        self.blocking(move |streams| {
            let _permit = permit;
            streams
                .read_group_blocking(
                    &name,
                    &group,
                    &consumer,
                    max_messages,
                    remaining(started, timeout),
                )
                .map(stream_messages)
                .map_err(stream_error)
        })
        .await
    }

    async fn ack(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        offsets: &[u64],
    ) -> KvResult<u64> {
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        if offsets.is_empty() {
            return Ok(0);
        }
        let name = core_stream_name(scope, stream);
        let (group, offsets) = (group.to_owned(), offsets.to_vec());
        self.syncing(move |streams| match streams.ack(&name, &group, &offsets) {
            Err(StreamError::NotFound { .. }) => Ok(0),
            other => other.map_err(stream_error),
        })
        .await
    }

    async fn commit(&self, scope: &Scope, stream: &str, group: &str, offset: u64) -> KvResult<()> {
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        let name = core_stream_name(scope, stream);
        let group = group.to_owned();
        self.syncing(move |streams| streams.commit(&name, &group, offset).map_err(stream_error))
            .await
    }

    async fn claim(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max_messages: usize,
    ) -> KvResult<Vec<StreamMessage>> {
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        check_stream_name("consumer", consumer)?;
        check_read(max_messages, Duration::ZERO)?;
        let name = core_stream_name(scope, stream);
        let (group, consumer) = (group.to_owned(), consumer.to_owned());
        self.syncing(move |streams| {
            streams
                .claim(&name, &group, &consumer, min_idle, max_messages)
                .map(stream_messages)
                .map_err(stream_error)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_log::stream::STREAM_NAME_BYTES_MAX as CORE_NAME_BYTES_MAX;

    use crate::limits::SCOPE_NAME_BYTES_MAX;
    use crate::stream::STREAM_NAME_BYTES_MAX;

    #[test]
    fn names_are_injective_and_within_the_core_limit() {
        let scope = |tenant: &str, namespace: &str| Scope::new(tenant, namespace).expect("scope");
        // Dots and bytes outside the alphabet in the scope cannot shift the boundaries.
        let pairs = [
            (scope("a.b", "c"), "d"),
            (scope("a", "b.c"), "d"),
            (scope("a", "b"), "c.d"),
            (scope("a b", "c"), "d"),
            (scope("ü", "%"), "x"),
        ];
        let names: std::collections::BTreeSet<String> = pairs
            .iter()
            .map(|(scope, stream)| core_stream_name(scope, stream))
            .collect();
        assert_eq!(names.len(), pairs.len());
        assert_eq!(core_stream_name(&scope("a", "b"), "c.d"), "61.62.c.d");
        let longest = core_stream_name(
            &scope(
                &"\u{7f}".repeat(SCOPE_NAME_BYTES_MAX),
                &"é".repeat(SCOPE_NAME_BYTES_MAX / 2),
            ),
            &"s".repeat(STREAM_NAME_BYTES_MAX),
        );
        assert_eq!(longest.len(), 386);
        assert!(longest.len() <= CORE_NAME_BYTES_MAX);
        assert!(cairn_log::stream::codec::is_valid_name(longest.as_bytes()));
    }
}

//! The `StreamStore` trait: one async API for append-only message streams, in front of
//! Cairn's stream log and Redis Streams.
//!
//! Semantics every backend keeps (the stream conformance suite checks each):
//! - Streams live in a [`Scope`] and are named by 1 to [`STREAM_NAME_BYTES_MAX`] bytes of
//!   UTF-8 from `[A-Za-z0-9._-]`; bad names are refused with `InvalidArgument` before anything
//!   is written. A stream exists from its first append; `delete_stream` removes it and its
//!   groups.
//! - Offsets are dense per stream: the first message is offset 0, each append takes the next
//!   one, and no offset is ever reused, not even after a trim (a deleted stream starts again
//!   at 0). `append_batch` is atomic: a reader sees all of a batch or none of it, and its
//!   offsets are consecutive.
//! - Every message carries the time it was appended (milliseconds since the Unix epoch, from
//!   the backend's clock), an optional key, headers and a value.
//! - `trim(before)` makes every offset below `before` unreadable; the first readable offset
//!   moves up, the next offset does not change. A stream that does not exist has next offset
//!   0: trimming it at 0 does nothing, and above 0 is `InvalidArgument`.
//! - Consumer groups deliver each message once to one member (`read_group`); a delivered
//!   message stays pending for that member until it is acknowledged (`ack`) or committed
//!   (`commit`, which acknowledges everything below an offset). A pending message idle for
//!   longer than `min_idle` can be taken over by another member (`claim`). A group's
//!   `committed` offset is the lowest offset it has not acknowledged. `read_group`, `commit`
//!   and `claim` on a group that does not exist are `InvalidArgument`; `ack` there
//!   acknowledges nothing and returns 0.
//!
//! Backends: `CairnStreams` (Cairn's own durable streams, feature `cairn`; see
//! `backends::cairn_streams`) and `RedisStore` (Redis Streams, feature `redis`).
//!
//! Offsets and Redis entry ids: the Redis backend appends with the id `0-*`, so offset `n` is
//! the entry id `0-(n+1)` and Redis's own sequence keeps offsets dense. The append time is a
//! field of the entry, not its id.

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use crate::error::{KvError, KvResult};
use crate::scope::Scope;

/// Longest stream, group or consumer name, in bytes.
pub const STREAM_NAME_BYTES_MAX: usize = 128;
/// Most messages in one `append_batch`, and most one read returns.
pub const STREAM_BATCH_MESSAGES_MAX: usize = 10_000;
/// Largest message (key, headers and value together), in bytes.
pub const STREAM_MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most payload bytes (keys, headers and values) in one `append_batch`: one batch is one
/// frame on Cairn and one command on Redis, so it stays far below Redis's 1 GiB query buffer.
pub const STREAM_BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most headers on one message.
pub const STREAM_HEADERS_MAX: usize = 64;
/// Longest blocking wait a read may ask for.
pub const STREAM_BLOCK_MAX: Duration = Duration::from_secs(300);

/// A message to append.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewMessage {
    /// An optional key (for the reader's use; streams do not index it).
    pub key: Option<Vec<u8>>,
    /// Headers, in order; names need not be unique.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The payload.
    pub value: Vec<u8>,
}

impl NewMessage {
    /// A message with only a value.
    pub fn value(value: impl Into<Vec<u8>>) -> Self {
        NewMessage {
            key: None,
            headers: Vec::new(),
            value: value.into(),
        }
    }

    /// The bytes this message counts against [`STREAM_MESSAGE_BYTES_MAX`].
    pub fn payload_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + headers + self.value.len()
    }
}

/// A message read from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamMessage {
    /// Its offset in the stream.
    pub offset: u64,
    /// When it was appended, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// What was appended.
    pub message: NewMessage,
}

/// What `info` reports about a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// The lowest readable offset (equal to `next_offset` when nothing is readable).
    pub first_offset: u64,
    /// The offset the next append gets.
    pub next_offset: u64,
    /// The stream's consumer groups, by name.
    pub groups: Vec<GroupInfo>,
}

impl StreamInfo {
    /// Readable messages: `next_offset - first_offset`.
    pub fn length(&self) -> u64 {
        self.next_offset.saturating_sub(self.first_offset)
    }
}

/// One consumer group, as `info` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's name.
    pub name: String,
    /// The next offset `read_group` delivers.
    pub delivered_up_to: u64,
    /// The lowest offset the group has not acknowledged.
    pub committed: u64,
    /// Messages delivered and not yet acknowledged.
    pub pending: u64,
}

/// The async stream API every backend implements. See the module docs for the semantics.
pub trait StreamStore: Send + Sync {
    /// Appends one message; returns its offset. The default is a batch of one.
    fn append(
        &self,
        scope: &Scope,
        stream: &str,
        message: &NewMessage,
    ) -> impl Future<Output = KvResult<u64>> + Send {
        async move {
            let offsets = self
                .append_batch(scope, stream, std::slice::from_ref(message))
                .await?;
            Ok(offsets.start)
        }
    }

    /// Appends 1 to [`STREAM_BATCH_MESSAGES_MAX`] messages atomically; returns their offsets.
    fn append_batch(
        &self,
        scope: &Scope,
        stream: &str,
        messages: &[NewMessage],
    ) -> impl Future<Output = KvResult<Range<u64>>> + Send;

    /// Up to `max_messages` messages from the first readable offset at or after `from`, in
    /// offset order, stopping before the message that would take the total payload past
    /// `max_bytes` (the first message is returned whatever its size). Empty at the head, or
    /// when the stream does not exist.
    fn read_range(
        &self,
        scope: &Scope,
        stream: &str,
        from: u64,
        max_messages: usize,
        max_bytes: usize,
    ) -> impl Future<Output = KvResult<Vec<StreamMessage>>> + Send;

    /// As `read_range`, but when nothing is readable at or after `from` it waits up to
    /// `timeout` (at most [`STREAM_BLOCK_MAX`]) for an append, and returns empty if none comes.
    fn read_blocking(
        &self,
        scope: &Scope,
        stream: &str,
        from: u64,
        max_messages: usize,
        timeout: Duration,
    ) -> impl Future<Output = KvResult<Vec<StreamMessage>>> + Send;

    /// The stream's offsets and groups, or `None` when it does not exist.
    fn info(
        &self,
        scope: &Scope,
        stream: &str,
    ) -> impl Future<Output = KvResult<Option<StreamInfo>>> + Send;

    /// Makes every offset below `before` unreadable. Trimming at or below the first readable
    /// offset does nothing; `before` above the next offset is `InvalidArgument`.
    fn trim(
        &self,
        scope: &Scope,
        stream: &str,
        before: u64,
    ) -> impl Future<Output = KvResult<()>> + Send;

    /// Deletes the stream and its groups; true when it existed.
    fn delete_stream(
        &self,
        scope: &Scope,
        stream: &str,
    ) -> impl Future<Output = KvResult<bool>> + Send;

    /// Creates consumer group `group` delivering from offset `start` (creating an empty
    /// stream if there is none); false, changing nothing, when the group exists.
    fn create_group(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        start: u64,
    ) -> impl Future<Output = KvResult<bool>> + Send;

    /// Delivers up to `max_messages` messages the group has not delivered yet to `consumer`,
    /// each pending for it from now; waits up to `timeout` (zero: not at all) when there are
    /// none. `InvalidArgument` when the group does not exist.
    fn read_group(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        consumer: &str,
        max_messages: usize,
        timeout: Duration,
    ) -> impl Future<Output = KvResult<Vec<StreamMessage>>> + Send;

    /// Acknowledges pending `offsets`; returns how many were pending.
    fn ack(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        offsets: &[u64],
    ) -> impl Future<Output = KvResult<u64>> + Send;

    /// Acknowledges every offset below `offset` and moves delivery up to it if it is behind.
    fn commit(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        offset: u64,
    ) -> impl Future<Output = KvResult<()>> + Send;

    /// Takes over up to `max_messages` messages pending for longer than `min_idle` for any
    /// member, lowest offsets first, making them pending for `consumer` from now.
    fn claim(
        &self,
        scope: &Scope,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max_messages: usize,
    ) -> impl Future<Output = KvResult<Vec<StreamMessage>>> + Send;
}

/// Refuses a stream, group or consumer name outside the documented alphabet and length.
pub fn check_stream_name(what: &str, name: &str) -> KvResult<()> {
    let ok = !name.is_empty()
        && name.len() <= STREAM_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KvError::InvalidArgument(format!(
            "{what} name {name:?} must be 1 to {STREAM_NAME_BYTES_MAX} bytes of [A-Za-z0-9._-]"
        )))
    }
}

/// Refuses a batch that is empty, too long, or holds a message over the limits.
pub fn check_messages(messages: &[NewMessage]) -> KvResult<()> {
    if messages.is_empty() || messages.len() > STREAM_BATCH_MESSAGES_MAX {
        return Err(KvError::InvalidArgument(format!(
            "a batch holds 1 to {STREAM_BATCH_MESSAGES_MAX} messages, not {}",
            messages.len()
        )));
    }
    let mut total = 0_usize;
    for message in messages {
        if message.headers.len() > STREAM_HEADERS_MAX {
            return Err(KvError::InvalidArgument(format!(
                "a message has at most {STREAM_HEADERS_MAX} headers, not {}",
                message.headers.len()
            )));
        }
        let len = message.payload_bytes();
        if len > STREAM_MESSAGE_BYTES_MAX {
            return Err(KvError::ValueTooLarge {
                len,
                max: STREAM_MESSAGE_BYTES_MAX,
            });
        }
        total = total.saturating_add(len);
    }
    if total > STREAM_BATCH_BYTES_MAX {
        return Err(KvError::ValueTooLarge {
            len: total,
            max: STREAM_BATCH_BYTES_MAX,
        });
    }
    Ok(())
}

/// Refuses a read count outside 1 to [`STREAM_BATCH_MESSAGES_MAX`] or a wait above
/// [`STREAM_BLOCK_MAX`].
pub fn check_read(max_messages: usize, timeout: Duration) -> KvResult<()> {
    if max_messages == 0 || max_messages > STREAM_BATCH_MESSAGES_MAX {
        return Err(KvError::InvalidArgument(format!(
            "a read returns 1 to {STREAM_BATCH_MESSAGES_MAX} messages, not {max_messages}"
        )));
    }
    if timeout > STREAM_BLOCK_MAX {
        return Err(KvError::InvalidArgument(format!(
            "a blocking read waits at most {STREAM_BLOCK_MAX:?}, not {timeout:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_stream_name("stream", "orders.eu-1_a").is_ok());
        for bad in [
            "",
            "a b",
            "a/b",
            "ü",
            &"x".repeat(STREAM_NAME_BYTES_MAX + 1),
        ] {
            assert!(check_stream_name("stream", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn batches_and_reads_are_checked() {
        assert!(check_messages(&[]).is_err());
        assert!(check_messages(&[NewMessage::value("x")]).is_ok());
        let big = NewMessage::value(vec![0; STREAM_MESSAGE_BYTES_MAX + 1]);
        assert!(matches!(
            check_messages(&[big]),
            Err(KvError::ValueTooLarge { .. })
        ));
        let batch = vec![NewMessage::value(vec![0; STREAM_MESSAGE_BYTES_MAX]); 5];
        assert!(matches!(
            check_messages(&batch),
            Err(KvError::ValueTooLarge {
                max: STREAM_BATCH_BYTES_MAX,
                ..
            })
        ));
        assert!(check_messages(&batch[..4]).is_ok());
        assert!(check_read(0, Duration::ZERO).is_err());
        assert!(check_read(1, STREAM_BLOCK_MAX + Duration::from_millis(1)).is_err());
        assert!(check_read(STREAM_BATCH_MESSAGES_MAX, STREAM_BLOCK_MAX).is_ok());
    }
}

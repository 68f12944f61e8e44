//! `StreamStore` on Redis Streams (Redis 7.0 or later): one Redis stream per Cairn stream.
//!
//! **Keys.** A stream is stored at `"stream:" <scope prefix> <name>` (see [`stream_key`]).
//! Every key-value key is `<scope prefix> <key>` and so starts with `{`; a stream key starts
//! with `s`, so no key-value key of any scope is ever a stream key, whatever bytes it holds,
//! and the key-value `SCAN`s (which match from the scope's `{`) never see a stream. The
//! scope's `{tenant:namespace}` is still the first `{...}` in the key (stream names have no
//! braces, and the scope prefix has no `}` inside), so it is the Cluster hash tag: a scope's
//! streams live in the slot of its key-value keys.
//!
//! **Offsets.** Every append uses the entry id `0-*`: Redis keeps the milliseconds part at 0
//! and takes the next sequence number, so offset `n` is entry id `0-(n+1)` and offsets are
//! dense. The stream's last generated id survives trims, so offsets are never reused while
//! the key lives. An entry is `t` (the append time, in milliseconds, from the server's
//! `TIME`), `k` (the key, when there is one), `h<name>` per header, in order, and `v` (the
//! value). Appends are one Lua script (`EVALSHA`) per call, so a batch is atomic and its
//! offsets consecutive.
//!
//! Where Redis differs from Cairn's own stream log, or adds a limit of its own:
//! - **Entries from other clients.** An entry whose id is not `0-<n>` (an `XADD ... *` from
//!   another client) is reported as a `Backend` error by every read that meets it, and makes
//!   every later append fail: `0-*` must be above the stream's last id.
//! - **No seek by time.** Entry ids carry no time (their milliseconds part is 0), so Redis
//!   cannot range over append times. The trait has no such call either; the time is a field.
//! - **Timestamps** come from the clock of the server that owns the slot, one reading per
//!   append call (every message of a batch has the same one). They follow that clock, so
//!   they are not guaranteed to rise with offsets if it is set back, or after a failover.
//! - **Batch size.** A batch is one command, and Redis closes a connection whose command
//!   passes its `client-query-buffer-limit` (1 GiB by default), failing every other call in
//!   flight on the store's shared connection; the trait's `STREAM_BATCH_BYTES_MAX` (64 MiB)
//!   keeps every batch far below it. A batch runs as one script: a large one holds the server
//!   meanwhile (and is held in its memory three times over while it runs: the command, the
//!   script's arguments, the entries).
//! - **`max_bytes`** is applied by the client: `XRANGE` returns up to `max_messages`
//!   entries whatever their size, and the reply is cut afterwards.
//! - **Blocking reads** (`read_blocking`, and `read_group` with a timeout) first try without
//!   waiting on the command connection; only then is `XREAD`/`XREADGROUP ... BLOCK` sent, on a
//!   connection of its own (see `blocking`), so a wait never stalls other calls. The wait is
//!   rounded up to whole milliseconds.
//! - **Retention** is by `trim` only: Redis holds every entry in memory until trimmed. `trim`
//!   is exact (`XTRIM ... MINID`, not `~`), so it costs time in proportion to what it
//!   removes.
//! - **`delete_stream`** is `DEL`: the stream and its groups go, and the next append gets
//!   offset 0 again. A `read_blocking` waiting on the stream meanwhile keeps waiting, for an
//!   entry at or after its `from` in the stream that replaces it.
//! - **Groups** are Redis consumer groups: `delivered_up_to` is the group's last delivered
//!   id, the pending messages are its pending entries list, and `committed` is derived (the
//!   lowest pending offset, or `delivered_up_to` when none is pending): Redis keeps no
//!   committed offset of its own. Consumers are created by Redis on their first read and
//!   never removed by this store. `create_group` accepts a `start` above the next offset.
//! - **`ack`** of offsets that are not pending, or in a group that does not exist, counts 0
//!   (that is `XACK`); `read_group`, `commit` and `claim` refuse a missing group with
//!   `InvalidArgument`.
//! - **`claim`** is `XAUTOCLAIM`, repeated from its cursor until `max_messages` are claimed
//!   or the pending list is walked; `min_idle` is rounded up to whole milliseconds. A pending
//!   message that was trimmed away is dropped from the pending list by it and not returned.
//! - **Cluster retries.** As for key-value writes (see `connection`), the Cluster client
//!   sends a request again when its connection dropped mid-request: an append whose reply
//!   was lost that way may be appended twice, at two offsets.
//! - `stats().keys` counts streams too: it is the server's `DBSIZE`.

use std::ops::Range;
use std::time::Duration;

use redis::{RedisError, Value};

use super::connection::{redis_error, BACKEND};
use super::scripts::{BEYOND_NEXT_CODE, SCRIPTS};
use super::RedisStore;
use crate::error::{KvError, KvResult};
use crate::scope::Scope;
use crate::stream::{
    check_messages, check_read, check_stream_name, GroupInfo, NewMessage, StreamInfo,
    StreamMessage, StreamStore,
};

/// What every stream's Redis key starts with, before its scope.
const STREAM_KEY_PREFIX: &[u8] = b"stream:";

/// Pending entries one step of `commit` acknowledges.
const COMMIT_PAGE_ENTRIES: usize = 1_000;

/// The Redis key of `stream` in `scope`: `"stream:" <scope prefix> <name>`. It cannot equal
/// any key-value key, which always starts with the scope's `{`; and its first `{...}` is the
/// scope's, so it hashes to the scope's slot (see the module docs).
fn stream_key(scope: &Scope, stream: &str) -> Vec<u8> {
    let prefix = scope.key_prefix();
    let mut key = Vec::with_capacity(STREAM_KEY_PREFIX.len() + prefix.len() + stream.len());
    key.extend_from_slice(STREAM_KEY_PREFIX);
    key.extend_from_slice(prefix);
    key.extend_from_slice(stream.as_bytes());
    key
}

/// The entry id of `offset`, `0-(offset+1)`; `None` for the one offset no entry can have.
fn entry_id(offset: u64) -> Option<String> {
    offset
        .checked_add(1)
        .map(|sequence| format!("0-{sequence}"))
}

/// The id just below `offset`'s, `0-offset`: where `XREAD` starts after, and a group's last
/// delivered id when it delivers `offset` next.
fn id_below(offset: u64) -> String {
    format!("0-{offset}")
}

/// The sequence of an entry id `0-<sequence>`.
fn sequence(id: &[u8]) -> KvResult<u64> {
    std::str::from_utf8(id)
        .ok()
        .and_then(|text| text.strip_prefix("0-"))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| foreign_id(id))
}

/// The offset of the entry with id `id`.
fn offset_of(id: &[u8]) -> KvResult<u64> {
    sequence(id)?.checked_sub(1).ok_or_else(|| foreign_id(id))
}

fn foreign_id(id: &[u8]) -> KvError {
    KvError::backend(
        BACKEND,
        format!(
            "the stream holds the entry id \"{}\", which no Cairn append makes",
            id.escape_ascii()
        ),
    )
}

/// Refuses a batch whose payloads add up to more than `max` bytes.
/// Milliseconds, rounded up.
fn millis_up(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

fn unexpected(what: &str, value: &Value) -> KvError {
    let kind = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) | Value::Set(_) => "an array",
        Value::Map(_) => "a map",
        _ => "another kind of reply",
    };
    KvError::backend(BACKEND, format!("expected {what} from Redis, got {kind}"))
}

fn bytes(value: Value) -> KvResult<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Ok(text.into_bytes()),
        Value::Int(number) => Ok(number.to_string().into_bytes()),
        other => Err(unexpected("a string", &other)),
    }
}

fn integer(value: Value) -> KvResult<u64> {
    match value {
        Value::Int(number) => u64::try_from(number).map_err(|_| unexpected("a count", &value)),
        other => {
            let text = bytes(other)?;
            std::str::from_utf8(&text)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| {
                    KvError::backend(
                        BACKEND,
                        format!(
                            "expected a count from Redis, got \"{}\"",
                            text.escape_ascii()
                        ),
                    )
                })
        }
    }
}

/// An array reply's items; nil is empty.
fn array(value: Value) -> KvResult<Vec<Value>> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected("an array", &other)),
    }
}

/// A flat `name, value, ...` array (RESP2) or a map (RESP3), as pairs.
fn pairs(value: Value) -> KvResult<Vec<(Value, Value)>> {
    if let Value::Map(pairs) = value {
        return Ok(pairs);
    }
    let mut items = array(value)?.into_iter();
    let mut pairs = Vec::with_capacity(items.len() / 2);
    while let Some(name) = items.next() {
        let value = items
            .next()
            .ok_or_else(|| KvError::backend(BACKEND, "a field without a value in a reply"))?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// One entry, `[id, [field, value, ...]]`; `None` when its fields are nil (an entry deleted
/// while pending, as older servers report it).
fn decode_entry(entry: Value) -> KvResult<Option<StreamMessage>> {
    let mut parts = array(entry)?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err(KvError::backend(
            BACKEND,
            "a stream entry without an id and fields",
        ));
    };
    let offset = offset_of(&bytes(id)?)?;
    if matches!(fields, Value::Nil) {
        return Ok(None);
    }
    let mut timestamp_ms = None;
    let mut value = None;
    let mut message = NewMessage::default();
    for (name, field) in pairs(fields)? {
        match bytes(name)?.as_slice() {
            b"t" => {
                timestamp_ms = Some(integer(field)?);
            }
            b"k" => message.key = Some(bytes(field)?),
            b"v" => value = Some(bytes(field)?),
            [b'h', header @ ..] => message.headers.push((header.to_vec(), bytes(field)?)),
            other => {
                return Err(KvError::backend(
                    BACKEND,
                    format!(
                        "entry {offset} has the field \"{}\", which no Cairn append writes",
                        other.escape_ascii()
                    ),
                ))
            }
        }
    }
    let (Some(timestamp_ms), Some(value)) = (timestamp_ms, value) else {
        return Err(KvError::backend(
            BACKEND,
            format!("entry {offset} lacks its time or its value"),
        ));
    };
    message.value = value;
    Ok(Some(StreamMessage {
        offset,
        timestamp_ms,
        message,
    }))
}

/// An array of entries, as `XRANGE` and `XAUTOCLAIM` return them.
fn decode_entries(entries: Value) -> KvResult<Vec<StreamMessage>> {
    let mut messages = Vec::new();
    for entry in array(entries)? {
        messages.extend(decode_entry(entry)?);
    }
    Ok(messages)
}

/// An `XREAD` or `XREADGROUP` reply for one stream: nil, `[[key, entries]]` (RESP2) or
/// `{key: entries}` (RESP3).
fn decode_read_reply(reply: Value) -> KvResult<Vec<StreamMessage>> {
    let per_stream = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        other => array(other)?
            .into_iter()
            .map(|stream| {
                array(stream)?
                    .into_iter()
                    .nth(1)
                    .ok_or_else(|| KvError::backend(BACKEND, "a stream reply without entries"))
            })
            .collect::<KvResult<Vec<_>>>()?,
    };
    let mut messages = Vec::new();
    for entries in per_stream {
        messages.extend(decode_entries(entries)?);
    }
    Ok(messages)
}

/// The longest run of `messages` whose payload fits `max_bytes`; the first always stays.
fn within_bytes(mut messages: Vec<StreamMessage>, max_bytes: usize) -> Vec<StreamMessage> {
    let mut total: usize = 0;
    let mut kept = 0;
    for message in &messages {
        total = total.saturating_add(message.message.payload_bytes());
        if kept > 0 && total > max_bytes {
            break;
        }
        kept += 1;
    }
    messages.truncate(kept);
    messages
}

/// Maps a Redis error of a call naming `group`: `NOGROUP` is `InvalidArgument`.
fn group_error(stream: &str, group: &str, error: RedisError) -> KvError {
    if error.code() == Some("NOGROUP") {
        KvError::InvalidArgument(format!("stream {stream:?} has no consumer group {group:?}"))
    } else {
        redis_error(error)
    }
}

impl RedisStore {
    /// `XREADGROUP ... >` for `consumer`, waiting up to `timeout` (zero: not at all).
    async fn read_group_once(
        &self,
        key: &[u8],
        group: &str,
        consumer: &str,
        max_messages: usize,
        timeout: Duration,
    ) -> Result<Value, RedisError> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(max_messages);
        if timeout.is_zero() {
            command.arg("STREAMS").arg(key).arg(">");
            self.shared.connection.query(&command).await
        } else {
            command
                .arg("BLOCK")
                .arg(millis_up(timeout))
                .arg("STREAMS")
                .arg(key)
                .arg(">");
            self.shared.blocking.query(&command, key, timeout).await
        }
    }
}

impl StreamStore for RedisStore {
    async fn append_batch(
        &self,
        scope: &Scope,
        stream: &str,
        messages: &[NewMessage],
    ) -> KvResult<Range<u64>> {
        check_stream_name("stream", stream)?;
        check_messages(messages)?;
        let script = &SCRIPTS.stream_append;
        let mut command = script.evalsha(1);
        command.arg(stream_key(scope, stream)).arg(messages.len());
        let mut header_field = Vec::new();
        for message in messages {
            match &message.key {
                Some(key) => command.arg("1").arg(key),
                None => command.arg("0").arg(""),
            };
            command.arg(message.headers.len());
            for (name, value) in &message.headers {
                header_field.clear();
                header_field.push(b'h');
                header_field.extend_from_slice(name);
                command.arg(&header_field).arg(value);
            }
            command.arg(&message.value);
        }
        let (first, last): (Vec<u8>, Vec<u8>) = self
            .run_script(script, &command)
            .await
            .map_err(redis_error)?;
        let start = offset_of(&first)?;
        let end = offset_of(&last)?.saturating_add(1);
        if end.checked_sub(start) != Some(messages.len() as u64) {
            return Err(KvError::backend(
                BACKEND,
                format!(
                    "{} messages were appended at offsets {start}..{end}",
                    messages.len()
                ),
            ));
        }
        Ok(start..end)
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
        let Some(start) = entry_id(from) else {
            return Ok(Vec::new());
        };
        let reply: Value = self
            .query(
                redis::cmd("XRANGE")
                    .arg(stream_key(scope, stream))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(max_messages),
            )
            .await?;
        Ok(within_bytes(decode_entries(reply)?, max_bytes))
    }

    async fn read_blocking(
        &self,
        scope: &Scope,
        stream: &str,
        from: u64,
        max_messages: usize,
        timeout: Duration,
    ) -> KvResult<Vec<StreamMessage>> {
        check_stream_name("stream", stream)?;
        check_read(max_messages, timeout)?;
        let ready = self
            .read_range(scope, stream, from, max_messages, usize::MAX)
            .await?;
        if !ready.is_empty() || timeout.is_zero() {
            return Ok(ready);
        }
        let key = stream_key(scope, stream);
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(max_messages)
            .arg("BLOCK")
            .arg(millis_up(timeout))
            .arg("STREAMS")
            .arg(&key)
            .arg(id_below(from));
        let reply = self
            .shared
            .blocking
            .query(&command, &key, timeout)
            .await
            .map_err(redis_error)?;
        decode_read_reply(reply)
    }

    async fn info(&self, scope: &Scope, stream: &str) -> KvResult<Option<StreamInfo>> {
        check_stream_name("stream", stream)?;
        let script = &SCRIPTS.stream_info;
        let mut command = script.evalsha(1);
        command.arg(stream_key(scope, stream));
        let reply: Value = self
            .run_script(script, &command)
            .await
            .map_err(redis_error)?;
        if matches!(reply, Value::Nil) {
            return Ok(None);
        }
        let mut items = array(reply)?.into_iter();
        let (Some(last), Some(first)) = (items.next(), items.next()) else {
            return Err(KvError::backend(
                BACKEND,
                "a stream summary without its ids",
            ));
        };
        let next_offset = sequence(&bytes(last)?)?;
        let first = bytes(first)?;
        let first_offset = if first.is_empty() {
            next_offset
        } else {
            offset_of(&first)?
        };
        let mut groups = Vec::new();
        while let Some(name) = items.next() {
            let (Some(delivered), Some(pending), Some(lowest)) =
                (items.next(), items.next(), items.next())
            else {
                return Err(KvError::backend(BACKEND, "a group summary cut short"));
            };
            let delivered_up_to = sequence(&bytes(delivered)?)?;
            let lowest = bytes(lowest)?;
            groups.push(GroupInfo {
                name: String::from_utf8_lossy(&bytes(name)?).into_owned(),
                delivered_up_to,
                committed: if lowest.is_empty() {
                    delivered_up_to
                } else {
                    offset_of(&lowest)?
                },
                pending: integer(pending)?,
            });
        }
        groups.sort_by(|left, right| left.name.cmp(&right.name));
        Ok(Some(StreamInfo {
            first_offset,
            next_offset,
            groups,
        }))
    }

    async fn trim(&self, scope: &Scope, stream: &str, before: u64) -> KvResult<()> {
        check_stream_name("stream", stream)?;
        if before == 0 {
            return Ok(());
        }
        let beyond = || {
            KvError::InvalidArgument(format!(
                "cannot trim stream {stream:?} below offset {before}: it is above the next offset"
            ))
        };
        let min_id = entry_id(before).ok_or_else(beyond)?;
        let script = &SCRIPTS.stream_trim;
        let mut command = script.evalsha(1);
        command
            .arg(stream_key(scope, stream))
            .arg(before)
            .arg(min_id);
        match self.run_script::<u64>(script, &command).await {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some(BEYOND_NEXT_CODE) => {
                Err(KvError::InvalidArgument(format!(
                    "stream {stream:?}: {}",
                    error.detail().unwrap_or("trimming above the next offset")
                )))
            }
            Err(error) => Err(redis_error(error)),
        }
    }

    async fn delete_stream(&self, scope: &Scope, stream: &str) -> KvResult<bool> {
        check_stream_name("stream", stream)?;
        let deleted: i64 = self
            .query(redis::cmd("DEL").arg(stream_key(scope, stream)))
            .await?;
        Ok(deleted == 1)
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
        let mut command = redis::cmd("XGROUP");
        command
            .arg("CREATE")
            .arg(stream_key(scope, stream))
            .arg(group)
            .arg(id_below(start))
            .arg("MKSTREAM");
        match self.shared.connection.query::<Value>(&command).await {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(false),
            Err(error) => Err(redis_error(error)),
        }
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
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        check_stream_name("consumer", consumer)?;
        check_read(max_messages, timeout)?;
        let key = stream_key(scope, stream);
        // Without waiting first, on the command connection: a busy group needs no
        // connection of its own.
        let reply = self
            .read_group_once(&key, group, consumer, max_messages, Duration::ZERO)
            .await
            .map_err(|error| group_error(stream, group, error))?;
        let ready = decode_read_reply(reply)?;
        if !ready.is_empty() || timeout.is_zero() {
            return Ok(ready);
        }
        let reply = self
            .read_group_once(&key, group, consumer, max_messages, timeout)
            .await
            .map_err(|error| group_error(stream, group, error))?;
        decode_read_reply(reply)
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
        let ids: Vec<String> = offsets
            .iter()
            .filter_map(|&offset| entry_id(offset))
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let acked: u64 = self
            .query(
                redis::cmd("XACK")
                    .arg(stream_key(scope, stream))
                    .arg(group)
                    .arg(ids),
            )
            .await?;
        Ok(acked)
    }

    async fn commit(&self, scope: &Scope, stream: &str, group: &str, offset: u64) -> KvResult<()> {
        check_stream_name("stream", stream)?;
        check_stream_name("group", group)?;
        let script = &SCRIPTS.stream_commit;
        let mut command = script.evalsha(1);
        command
            .arg(stream_key(scope, stream))
            .arg(group)
            .arg(offset)
            .arg(id_below(offset))
            .arg(COMMIT_PAGE_ENTRIES);
        self.run_script::<u64>(script, &command)
            .await
            .map_err(|error| group_error(stream, group, error))?;
        Ok(())
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
        let key = stream_key(scope, stream);
        let min_idle = millis_up(min_idle);
        let mut claimed = Vec::new();
        let mut cursor = b"0-0".to_vec();
        loop {
            let wanted = max_messages.saturating_sub(claimed.len());
            let reply: Value = self
                .shared
                .connection
                .query(
                    redis::cmd("XAUTOCLAIM")
                        .arg(&key)
                        .arg(group)
                        .arg(consumer)
                        .arg(min_idle)
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(wanted),
                )
                .await
                .map_err(|error| group_error(stream, group, error))?;
            // `[next cursor, claimed entries, ids of entries no longer in the stream]`.
            let mut parts = array(reply)?.into_iter();
            let (Some(next), Some(entries)) = (parts.next(), parts.next()) else {
                return Err(KvError::backend(BACKEND, "an XAUTOCLAIM reply cut short"));
            };
            claimed.extend(decode_entries(entries)?);
            cursor = bytes(next)?;
            if cursor == b"0-0" || claimed.len() >= max_messages {
                break;
            }
        }
        claimed.truncate(max_messages);
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_never_equal_key_value_keys() -> KvResult<()> {
        let scope = Scope::new("t", "n")?;
        let key = stream_key(&scope, "orders");
        assert_eq!(key, b"stream:{t:n}orders".to_vec());
        // Every key-value key starts with the scope's `{`; a stream key never does.
        assert!(!key.starts_with(scope.key_prefix()));
        assert!(scope.user_key(&key).is_none());
        // The same hash tag, so the same slot.
        assert_eq!(
            redis::cluster_routing::Slot::for_key(&key),
            redis::cluster_routing::Slot::for_key(scope.stored_key(b"anything"))
        );
        Ok(())
    }

    #[test]
    fn offsets_and_ids_map_one_to_one() -> KvResult<()> {
        assert_eq!(entry_id(0).as_deref(), Some("0-1"));
        assert_eq!(entry_id(41).as_deref(), Some("0-42"));
        assert_eq!(entry_id(u64::MAX), None);
        assert_eq!(id_below(0), "0-0");
        assert_eq!(offset_of(b"0-1")?, 0);
        assert_eq!(offset_of(b"0-42")?, 41);
        assert_eq!(sequence(b"0-0")?, 0);
        for foreign in [&b"0-0"[..], b"1700000000000-0", b"0-", b"0-+1", b"x"] {
            assert!(offset_of(foreign).is_err(), "{}", foreign.escape_ascii());
        }
        Ok(())
    }

    #[test]
    fn waits_round_up_to_milliseconds() {
        assert_eq!(millis_up(Duration::ZERO), 0);
        assert_eq!(millis_up(Duration::from_micros(1)), 1);
        assert_eq!(millis_up(Duration::from_millis(100)), 100);
        assert_eq!(millis_up(Duration::from_micros(100_001)), 101);
    }

    #[test]
    fn entries_decode_and_refuse_foreign_fields() -> KvResult<()> {
        let text = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let entry = Value::Array(vec![
            text("0-3"),
            Value::Array(vec![
                text("t"),
                text("1700000000123"),
                text("k"),
                text("key"),
                text("hname"),
                text("1"),
                text("hname"),
                text("2"),
                text("v"),
                text("value"),
            ]),
        ]);
        let message = decode_entry(entry)?;
        assert_eq!(
            message,
            Some(StreamMessage {
                offset: 2,
                timestamp_ms: 1_700_000_000_123,
                message: NewMessage {
                    key: Some(b"key".to_vec()),
                    headers: vec![
                        (b"name".to_vec(), b"1".to_vec()),
                        (b"name".to_vec(), b"2".to_vec())
                    ],
                    value: b"value".to_vec(),
                },
            })
        );
        let foreign = Value::Array(vec![
            text("0-1"),
            Value::Array(vec![
                text("t"),
                text("1"),
                text("x"),
                text("1"),
                text("v"),
                text(""),
            ]),
        ]);
        assert!(decode_entry(foreign).is_err());
        Ok(())
    }

    #[test]
    fn max_bytes_keeps_the_first_message() {
        let message = |offset, size| StreamMessage {
            offset,
            timestamp_ms: 0,
            message: NewMessage::value(vec![0; size]),
        };
        let offsets = |messages: Vec<StreamMessage>| -> Vec<u64> {
            messages.iter().map(|message| message.offset).collect()
        };
        let all = vec![message(0, 10), message(1, 10), message(2, 10)];
        assert_eq!(offsets(within_bytes(all.clone(), 0)), [0]);
        assert_eq!(offsets(within_bytes(all.clone(), 19)), [0]);
        assert_eq!(offsets(within_bytes(all.clone(), 20)), [0, 1]);
        assert_eq!(offsets(within_bytes(all, usize::MAX)), [0, 1, 2]);
    }
}

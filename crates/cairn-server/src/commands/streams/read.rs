//! `XREAD` and `XREADGROUP`: reads of one or more streams after an id, a group's new entries
//! (each made pending for the consumer and the group moved past them, in one commit), or a
//! consumer's pending entries. A read that finds nothing and may block leaves a
//! [`Blocked`] for the connection to wait on.

use bytes::Bytes;

use super::id::parse_strict_id;
use super::pending::{pending_key, walk_pending};
use super::{damaged, entry_reply, Stream};
use crate::commands::strings::at;
use crate::commands::{int_arg, is, syntax_error, Blocked, Ctx, Store, Writes};
use crate::keyspace::{self, encode_group, encode_pending, group_last_id, StreamId};
use crate::resp::{Protocol, Reply};

/// What `XREAD`'s and `XREADGROUP`'s options say.
struct ReadArgs<'a> {
    count: usize,
    /// `BLOCK`'s milliseconds (0: forever).
    block: Option<u64>,
    /// `GROUP`'s group and consumer.
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    keys: &'a [Bytes],
    ids: &'a [Bytes],
    /// Where the ids start in `args`.
    ids_at: usize,
}

fn parse_read(args: &[Bytes], group_read: bool) -> Result<ReadArgs<'_>, Reply> {
    let mut parsed = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        keys: &[],
        ids: &[],
        ids_at: 0,
    };
    let mut streams_at = None;
    let mut i = 1;
    while let Some(option) = args.get(i) {
        let more = args.len() - i - 1;
        if is(option, "block") && more > 0 {
            let timeout = crate::resp::parse::parse_i64(at(args, i + 1))
                .ok_or_else(|| Reply::err("timeout is not an integer or out of range"))?;
            parsed.block =
                Some(u64::try_from(timeout).map_err(|_| Reply::err("timeout is negative"))?);
            i += 2;
        } else if is(option, "count") && more > 0 {
            let count = int_arg(at(args, i + 1))?;
            parsed.count = usize::try_from(count.max(0)).unwrap_or(usize::MAX);
            i += 2;
        } else if is(option, "streams") && more > 0 {
            streams_at = Some(i + 1);
            break;
        } else if is(option, "group") && more >= 2 {
            if !group_read {
                return Err(Reply::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            parsed.group = Some((at(args, i + 1), at(args, i + 2)));
            i += 3;
        } else if is(option, "noack") {
            if !group_read {
                return Err(Reply::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            parsed.noack = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
    }
    let Some(streams_at) = streams_at else {
        return Err(syntax_error());
    };
    let rest = args.get(streams_at..).unwrap_or_default();
    if rest.len() % 2 != 0 {
        return Err(Reply::err(
            "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    if group_read && parsed.group.is_none() {
        return Err(Reply::err("Missing GROUP option for XREADGROUP"));
    }
    let (keys, ids) = rest.split_at(rest.len() / 2);
    parsed.keys = keys;
    parsed.ids = ids;
    parsed.ids_at = streams_at + keys.len();
    Ok(parsed)
}

/// Where a read of one stream starts.
#[derive(Clone, Copy)]
enum ReadFrom {
    /// Entries after this id.
    After(StreamId),
    /// A group's new entries (`>`).
    New,
    /// The consumer's pending entries after this id.
    History(StreamId),
}

pub(crate) fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_or_block(ctx, args, false)
}

pub(crate) fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    read_or_block(ctx, args, true)
}

/// Runs [`read`]; a read that has to wait is left in [`super::Client::blocked`].
fn read_or_block(ctx: &mut Ctx<'_>, args: &[Bytes], group_read: bool) -> Reply {
    match read(ctx, args, group_read) {
        Ok((reply, blocked)) => {
            ctx.client.blocked = blocked;
            reply
        }
        Err(error) => error,
    }
}

/// `XREAD` and (`group_read`) `XREADGROUP`: the reply, and what to wait for when the read
/// found nothing and may block.
fn read(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    group_read: bool,
) -> Result<(Reply, Option<Blocked>), Reply> {
    let parsed = parse_read(args, group_read)?;
    let now = keyspace::now_millis();
    let meta_keys = parsed
        .keys
        .iter()
        .map(|key| ctx.meta_key(key))
        .collect::<Result<Vec<_>, _>>()?;
    let _locks = if group_read {
        ctx.lock(&meta_keys)
    } else {
        Vec::new()
    };
    let mut starts = Vec::with_capacity(parsed.keys.len());
    let mut resolved: Option<Vec<Bytes>> = None;
    for (index, (key, id)) in parsed.keys.iter().zip(parsed.ids).enumerate() {
        let stream = read_awaited(ctx, key, now)?;
        if let Some((group, _)) = parsed.group {
            check_group(ctx, key, stream.as_ref(), group)?;
        }
        let start =
            match id.as_ref() {
                b"$" if group_read => return Err(Reply::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the \
                     history of this consumer by specifying a proper ID, or use the > ID to get \
                     new messages. The $ ID would just return an empty result set.",
                )),
                b"$" => {
                    let last = stream.map_or(StreamId::MIN, |stream| stream.header.last_id);
                    let rewritten = resolved.get_or_insert_with(|| args.to_vec());
                    if let Some(slot) = rewritten.get_mut(parsed.ids_at + index) {
                        *slot = Bytes::from(last.to_string());
                    }
                    ReadFrom::After(last)
                }
                b">" if group_read => ReadFrom::New,
                b">" => {
                    return Err(Reply::err(
                        "The > ID can be specified only when calling XREADGROUP using the GROUP \
                     <group> <consumer> option.",
                    ))
                }
                other if group_read => ReadFrom::History(parse_strict_id(other)?),
                other => ReadFrom::After(parse_strict_id(other)?),
            };
        starts.push(start);
    }
    let mut served = Vec::new();
    for (key, start) in parsed.keys.iter().zip(starts) {
        let Some(stream) = read_awaited(ctx, key, now)? else {
            continue;
        };
        let entries = match (start, parsed.group) {
            (ReadFrom::After(after), _) => {
                let Some(from) = after.next() else { continue };
                let mut entries = Vec::new();
                ctx.entries(&stream, from, StreamId::MAX, |id, value| {
                    entries.push(entry_reply(id, value)?);
                    Ok(parsed.count == 0 || entries.len() < parsed.count)
                })?;
                if entries.is_empty() {
                    continue;
                }
                entries
            }
            (ReadFrom::New, Some((group, consumer))) => {
                let entries = deliver_new(ctx, &stream, group, consumer, &parsed, now)?;
                if entries.is_empty() {
                    continue;
                }
                entries
            }
            (ReadFrom::History(after), Some((group, consumer))) => {
                history(ctx, &stream, group, consumer, after, parsed.count)?
            }
            _ => continue,
        };
        served.push((Reply::Bulk(key.clone()), Reply::Array(entries)));
    }
    if !served.is_empty() {
        return Ok((streams_reply(ctx.client.protocol, served), None));
    }
    let blocked = match (parsed.block, &ctx.store) {
        (Some(millis), Store::Db) => {
            // A group read also waits on its group's record, so `XGROUP DESTROY` wakes it.
            let mut keys = meta_keys;
            if let Some((group, _)) = parsed.group {
                for key in parsed.keys {
                    if let Some(stream) = read_awaited(ctx, key, now)? {
                        keys.push(stream.group_key(group));
                    }
                }
            }
            Some(Blocked {
                args: resolved.unwrap_or_else(|| args.to_vec()),
                timeout: (millis > 0).then(|| std::time::Duration::from_millis(millis)),
                keys,
            })
        }
        _ => None,
    };
    Ok((Reply::NullArray, blocked))
}

/// Checks that `group` exists on the stream under `key`, with Redis's errors: a blocked read
/// that runs again is told its wait ended under it.
fn check_group(
    ctx: &Ctx<'_>,
    key: &[u8],
    stream: Option<&Stream>,
    group: &[u8],
) -> Result<(), Reply> {
    let exists = match stream {
        Some(stream) => ctx.get(&stream.group_key(group))?.is_some(),
        None => false,
    };
    if exists {
        return Ok(());
    }
    if ctx.client.rerun {
        return Err(Reply::Error(
            if stream.is_some() {
                "NOGROUP the consumer group this client was blocked on no longer exists"
            } else {
                "UNBLOCKED the stream key no longer exists"
            }
            .to_owned(),
        ));
    }
    Err(Reply::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    )))
}

/// The stream under `key` for a read. A blocked `XREAD` that runs again waits on past a key
/// that now holds another type, as Redis's does; a group read's is gone (`None`).
fn read_awaited(ctx: &Ctx<'_>, key: &[u8], now: u64) -> Result<Option<Stream>, Reply> {
    match ctx.read_stream(key, now) {
        Err(Reply::Error(text)) if ctx.client.rerun && text.starts_with("WRONGTYPE") => Ok(None),
        other => other,
    }
}

/// The reply of a read that served some streams: an array of (key, entries) pairs under
/// RESP2, a map under RESP3, as Redis sends it.
fn streams_reply(protocol: Protocol, served: Vec<(Reply, Reply)>) -> Reply {
    match protocol {
        Protocol::Resp2 => Reply::Array(
            served
                .into_iter()
                .map(|(key, entries)| Reply::Array(vec![key, entries]))
                .collect(),
        ),
        Protocol::Resp3 => Reply::Map(served),
    }
}

/// `XREADGROUP ... >`: the entries after the group's last delivered one, each made pending
/// for `consumer` (unless `NOACK`), and the group moved past them; one commit.
fn deliver_new(
    ctx: &Ctx<'_>,
    stream: &Stream,
    group: &[u8],
    consumer: &[u8],
    parsed: &ReadArgs<'_>,
    now: u64,
) -> Result<Vec<Reply>, Reply> {
    let group_key = stream.group_key(group);
    let Some(record) = ctx.get(&group_key)? else {
        return Ok(Vec::new());
    };
    let last = group_last_id(record.as_bytes()).ok_or_else(damaged)?;
    let Some(from) = last.next() else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    ctx.entries(stream, from, StreamId::MAX, |id, value| {
        entries.push(entry_reply(id, value)?);
        ids.push(id);
        Ok(parsed.count == 0 || entries.len() < parsed.count)
    })?;
    let Some(&newest) = ids.last() else {
        return Ok(entries);
    };
    let mut writes = Writes::new();
    ctx.touch_consumer(stream, group, consumer, now, &mut writes)?;
    if !parsed.noack {
        let prefix = stream.pending_prefix(group);
        let pending = encode_pending(now, 1, consumer);
        for id in &ids {
            let mut key = prefix.clone();
            key.extend_from_slice(&id.to_key_bytes());
            writes.put(key, &pending);
        }
    }
    writes.put(group_key, encode_group(newest));
    ctx.apply(&writes)?;
    Ok(entries)
}

/// `XREADGROUP ... id`: the consumer's pending entries after `after` (a deleted entry as its
/// id and a null). Each entry still in the stream counts as delivered again now, as in
/// Redis.
fn history(
    ctx: &Ctx<'_>,
    stream: &Stream,
    group: &[u8],
    consumer: &[u8],
    after: StreamId,
    count: usize,
) -> Result<Vec<Reply>, Reply> {
    let Some(from) = after.next() else {
        return Ok(Vec::new());
    };
    let mut mine = Vec::new();
    walk_pending(ctx, stream, group, (from, StreamId::MAX), |pending| {
        if pending.consumer == consumer {
            mine.push(pending);
        }
        count == 0 || mine.len() < count
    })?;
    let now = keyspace::now_millis();
    let mut writes = Writes::new();
    ctx.touch_consumer(stream, group, consumer, now, &mut writes)?;
    let mut replies = Vec::with_capacity(mine.len());
    for pending in mine {
        match ctx.get(&stream.entry_key(pending.id))? {
            Some(value) => {
                replies.push(entry_reply(pending.id, value.as_bytes())?);
                writes.put(
                    pending_key(stream, group, pending.id),
                    encode_pending(now, pending.deliveries + 1, consumer),
                );
            }
            None => replies.push(Reply::Array(vec![
                Reply::Bulk(Bytes::from(pending.id.to_string())),
                Reply::NullArray,
            ])),
        }
    }
    ctx.apply(&writes)?;
    Ok(replies)
}

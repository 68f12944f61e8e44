//! Pending entries and the commands over them: `XPENDING` (the summary and the extended
//! form), `XCLAIM`, `XAUTOCLAIM`, and `XINFO` (`STREAM`, `GROUPS`, `CONSUMERS`, `HELP`), with
//! Redis 7.0's replies
//! and errors.
//!
//! A pending entry is one record (`Stream::pending_prefix` and the id) holding its delivery
//! time, its delivery count and its consumer ([`Pending`]). Claims rewrite it in the command's
//! commit, and make the claiming consumer seen (`Ctx::touch_consumer`), creating it, as
//! Redis does. A consumer is a record of its own (`Stream::consumer_prefix` and its name)
//! holding when it was last seen; `XINFO` also counts a consumer named by a pending entry
//! without such a record (one a database written before consumer records holds), as seen
//! at its latest delivery.

use bytes::Bytes;

use super::id::{parse_interval_id, parse_strict_id};
use super::{damaged, entry_reply, Stream};
use crate::commands::strings::at;
use crate::commands::{int_arg, is, syntax_error, Ctx, Writes};
use crate::keyspace::{self, encode_pending, group_last_id, StreamId};
use crate::resp::Reply;

/// One pending entry.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) id: StreamId,
    pub(super) delivered_ms: u64,
    pub(super) deliveries: u64,
    pub(super) consumer: Vec<u8>,
}

impl Pending {
    fn decode(id: StreamId, value: &[u8]) -> Option<Pending> {
        let (delivered_ms, deliveries, consumer) = keyspace::decode_pending(value)?;
        Some(Pending {
            id,
            delivered_ms,
            deliveries,
            consumer: consumer.to_vec(),
        })
    }

    fn idle(&self, now: u64) -> u64 {
        now.saturating_sub(self.delivered_ms)
    }
}

/// The engine key of `group`'s pending entry `id`.
pub(super) fn pending_key(stream: &Stream, group: &[u8], id: StreamId) -> Vec<u8> {
    let mut key = stream.pending_prefix(group);
    key.extend_from_slice(&id.to_key_bytes());
    key
}

/// Calls `each` on `group`'s pending entries with ids from `from` through `to`, in id order,
/// until it returns `false`.
pub(super) fn walk_pending(
    ctx: &Ctx<'_>,
    stream: &Stream,
    group: &[u8],
    (from, to): (StreamId, StreamId),
    mut each: impl FnMut(Pending) -> bool,
) -> Result<(), Reply> {
    if from > to {
        return Ok(());
    }
    let prefix = stream.pending_prefix(group);
    let mut upper = prefix.clone();
    upper.extend_from_slice(&to.to_key_bytes());
    let mut failed = false;
    ctx.scan(
        std::ops::Bound::Included(pending_key(stream, group, from)),
        std::ops::Bound::Included(upper),
        |engine_key, value| {
            let pending = engine_key
                .get(prefix.len()..)
                .and_then(StreamId::from_key_bytes)
                .and_then(|id| Pending::decode(id, value.as_bytes()));
            let Some(pending) = pending else {
                failed = true;
                return false;
            };
            each(pending)
        },
    )?;
    if failed {
        return Err(damaged());
    }
    Ok(())
}

/// The live stream under `args[1]` and its group `args[2]`, or `NOGROUP` as `XPENDING`,
/// `XCLAIM` and `XAUTOCLAIM` report it.
fn stream_and_group(ctx: &Ctx<'_>, args: &[Bytes], now: u64) -> Result<Stream, Reply> {
    let (key, group) = (at(args, 1), at(args, 2));
    let no_group = || {
        Reply::Error(format!(
            "NOGROUP No such key '{}' or consumer group '{}'",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(group)
        ))
    };
    let stream = ctx.read_stream(key, now)?.ok_or_else(no_group)?;
    if ctx.get(&stream.group_key(group))?.is_none() {
        return Err(no_group());
    }
    Ok(stream)
}

pub(crate) fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    xpending_run(ctx, args).unwrap_or_else(|error| error)
}

fn xpending_run(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    // The extended form's arguments are checked before the key is looked up, as in Redis.
    let extended = if args.len() > 3 {
        let mut i = 3;
        let mut min_idle = 0;
        if is(at(args, 3), "idle") {
            min_idle = u64::try_from(int_arg(at(args, 4))?.max(0)).unwrap_or(0);
            i = 5;
        }
        if args.len() < i + 3 || args.len() > i + 4 {
            return Err(syntax_error());
        }
        let (from, from_excluded) = parse_interval_id(at(args, i), 0)?;
        let (to, to_excluded) = parse_interval_id(at(args, i + 1), u64::MAX)?;
        let count = usize::try_from(int_arg(at(args, i + 2))?.max(0)).unwrap_or(0);
        let from = if from_excluded {
            from.next()
        } else {
            Some(from)
        };
        let to = if to_excluded { to.prev() } else { Some(to) };
        let consumer = args.get(i + 3).map(|consumer| consumer.to_vec());
        Some((min_idle, from, to, count, consumer))
    } else {
        None
    };
    let now = keyspace::now_millis();
    let stream = stream_and_group(ctx, args, now)?;
    let group = at(args, 2);
    let Some((min_idle, from, to, count, consumer)) = extended else {
        return summary(ctx, &stream, group);
    };
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(Reply::Array(Vec::new()));
    };
    let mut rows = Vec::new();
    if count > 0 {
        walk_pending(ctx, &stream, group, (from, to), |pending| {
            let wanted = consumer
                .as_ref()
                .is_none_or(|consumer| *consumer == pending.consumer);
            if wanted && pending.idle(now) >= min_idle {
                rows.push(Reply::Array(vec![
                    Reply::Bulk(Bytes::from(pending.id.to_string())),
                    Reply::Bulk(Bytes::from(pending.consumer.clone())),
                    count_reply(pending.idle(now)),
                    count_reply(pending.deliveries),
                ]));
            }
            rows.len() < count
        })?;
    }
    Ok(Reply::Array(rows))
}

fn count_reply(value: u64) -> Reply {
    Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// `XPENDING key group`: how many, the least and greatest id, and each consumer's count.
fn summary(ctx: &Ctx<'_>, stream: &Stream, group: &[u8]) -> Result<Reply, Reply> {
    let mut total = 0u64;
    let mut bounds: Option<(StreamId, StreamId)> = None;
    let mut consumers = std::collections::BTreeMap::<Vec<u8>, u64>::new();
    walk_pending(
        ctx,
        stream,
        group,
        (StreamId::MIN, StreamId::MAX),
        |pending| {
            total += 1;
            bounds = Some(bounds.map_or((pending.id, pending.id), |(low, _)| (low, pending.id)));
            *consumers.entry(pending.consumer).or_default() += 1;
            true
        },
    )?;
    let Some((low, high)) = bounds else {
        return Ok(Reply::Array(vec![
            Reply::Integer(0),
            Reply::Null,
            Reply::Null,
            Reply::NullArray,
        ]));
    };
    Ok(Reply::Array(vec![
        count_reply(total),
        Reply::Bulk(Bytes::from(low.to_string())),
        Reply::Bulk(Bytes::from(high.to_string())),
        Reply::Array(
            consumers
                .into_iter()
                .map(|(consumer, count)| {
                    Reply::Array(vec![
                        Reply::Bulk(Bytes::from(consumer)),
                        Reply::Bulk(Bytes::from(count.to_string())),
                    ])
                })
                .collect(),
        ),
    ]))
}

/// `XCLAIM key group consumer min-idle-time id... [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]`.
pub(crate) fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    xclaim_run(ctx, args).unwrap_or_else(|error| error)
}

fn xclaim_run(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let now = keyspace::now_millis();
    let meta_key = ctx.meta_key(at(args, 1))?;
    let _locks = ctx.lock(&[&meta_key]);
    let stream = stream_and_group(ctx, args, now)?;
    let (group, consumer) = (at(args, 2), at(args, 3));
    let min_idle = u64::try_from(
        crate::resp::parse::parse_i64(at(args, 4))
            .ok_or_else(|| Reply::err("Invalid min-idle-time argument for XCLAIM"))?
            .max(0),
    )
    .unwrap_or(0);
    let mut ids = Vec::new();
    let mut i = 5;
    while let Some(arg) = args.get(i) {
        match parse_strict_id(arg) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        i += 1;
    }
    let (mut delivered, mut retry_count, mut force, mut just_id) = (None, None, false, false);
    while let Some(option) = args.get(i) {
        let value = |name: &str| {
            crate::resp::parse::parse_i64(at(args, i + 1))
                .ok_or_else(|| Reply::err(format!("Invalid {name} option argument for XCLAIM")))
        };
        if is(option, "force") {
            force = true;
        } else if is(option, "justid") {
            just_id = true;
        } else if is(option, "idle") && args.len() > i + 1 {
            delivered = Some(i64::try_from(now).unwrap_or(i64::MAX) - value("IDLE")?);
            i += 1;
        } else if is(option, "time") && args.len() > i + 1 {
            delivered = Some(value("TIME")?);
            i += 1;
        } else if is(option, "retrycount") && args.len() > i + 1 {
            retry_count = Some(u64::try_from(value("RETRYCOUNT")?).unwrap_or(0));
            i += 1;
        } else if is(option, "lastid") && args.len() > i + 1 {
            parse_strict_id(at(args, i + 1))?;
            i += 1;
        } else {
            return Err(Reply::err(format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
        i += 1;
    }
    // A delivery time in the future or before 1970 is taken as now, as Redis does.
    let delivered_ms = delivered
        .and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms <= now)
        .unwrap_or(now);
    let mut writes = Writes::new();
    let mut claimed = Vec::new();
    let mut touched = false;
    // What this command already changed: an id named twice is claimed twice, as in Redis.
    let mut changed = std::collections::HashMap::new();
    for id in ids {
        let key = pending_key(&stream, group, id);
        let record: Option<Vec<u8>> = match changed.get(&id) {
            Some(value) => Option::clone(value),
            None => ctx.get(&key)?.map(|value| value.to_vec()),
        };
        let pending = match record {
            Some(value) => Pending::decode(id, &value).ok_or_else(damaged)?,
            // FORCE makes the entry pending, delivered once, whatever the minimum idle
            // time (Redis's new NACK).
            None if force && ctx.get(&stream.entry_key(id))?.is_some() => Pending {
                id,
                delivered_ms: 0,
                deliveries: 1,
                consumer: Vec::new(),
            },
            None => continue,
        };
        let Some(entry) = ctx.get(&stream.entry_key(id))? else {
            // Deleted from the stream: it leaves the pending list, as in Redis.
            writes.delete(&key);
            changed.insert(id, None);
            continue;
        };
        if pending.idle(now) < min_idle {
            continue;
        }
        if !touched {
            ctx.touch_consumer(&stream, group, consumer, now, &mut writes)?;
            touched = true;
        }
        let deliveries = retry_count.unwrap_or(pending.deliveries + u64::from(!just_id));
        let record = encode_pending(delivered_ms, deliveries, consumer);
        writes.put(&key, &record);
        changed.insert(id, Some(record));
        claimed.push(if just_id {
            Reply::Bulk(Bytes::from(id.to_string()))
        } else {
            entry_reply(id, entry.as_bytes())?
        });
    }
    ctx.apply(&writes)?;
    Ok(Reply::Array(claimed))
}

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`.
pub(crate) fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    xautoclaim_run(ctx, args).unwrap_or_else(|error| error)
}

fn xautoclaim_run(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let min_idle = crate::resp::parse::parse_i64(at(args, 4))
        .ok_or_else(|| Reply::err("Invalid min-idle-time argument for XAUTOCLAIM"))?;
    let min_idle = u64::try_from(min_idle).unwrap_or(0);
    let (start, start_excluded) = parse_interval_id(at(args, 5), 0)?;
    let start = if start_excluded {
        Some(
            start
                .next()
                .ok_or_else(|| Reply::err("invalid start ID for the interval"))?,
        )
    } else {
        Some(start)
    };
    let (mut count, mut just_id) = (100usize, false);
    let mut i = 6;
    while let Some(option) = args.get(i) {
        if is(option, "count") && args.len() > i + 1 {
            // Redis's bound: a count whose scan (ten tries an entry) cannot overflow.
            count = crate::resp::parse::parse_i64(at(args, i + 1))
                .filter(|count| (1..=i64::MAX / 16).contains(count))
                .and_then(|count| usize::try_from(count).ok())
                .ok_or_else(|| Reply::err("COUNT must be > 0"))?;
            i += 2;
        } else if is(option, "justid") {
            just_id = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
    }
    let now = keyspace::now_millis();
    let meta_key = ctx.meta_key(at(args, 1))?;
    let _locks = ctx.lock(&[&meta_key]);
    let stream = stream_and_group(ctx, args, now)?;
    let (group, consumer) = (at(args, 2), at(args, 3));
    // Redis's walk: at most 10 x COUNT entries examined; a deleted entry leaves the pending
    // list and counts toward COUNT whatever its idle time; the cursor is the entry after
    // the last one examined (0-0 at the end). Read first, then changed, since the scan
    // cannot read the stream while it runs.
    let attempts = count.saturating_mul(10);
    let mut window = Vec::new();
    if let Some(start) = start {
        walk_pending(ctx, &stream, group, (start, StreamId::MAX), |pending| {
            window.push(pending);
            window.len() <= attempts
        })?;
    }
    let mut writes = Writes::new();
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut touched = false;
    let mut next = StreamId::MIN;
    let mut left = count;
    for (examined, pending) in window.into_iter().enumerate() {
        if left == 0 || examined >= attempts {
            next = pending.id;
            break;
        }
        let key = pending_key(&stream, group, pending.id);
        let id_reply = Reply::Bulk(Bytes::from(pending.id.to_string()));
        let Some(entry) = ctx.get(&stream.entry_key(pending.id))? else {
            writes.delete(&key);
            deleted.push(id_reply);
            left -= 1;
            continue;
        };
        if pending.idle(now) < min_idle {
            continue;
        }
        if !touched {
            ctx.touch_consumer(&stream, group, consumer, now, &mut writes)?;
            touched = true;
        }
        let deliveries = pending.deliveries + u64::from(!just_id);
        writes.put(&key, encode_pending(now, deliveries, consumer));
        claimed.push(if just_id {
            id_reply
        } else {
            entry_reply(pending.id, entry.as_bytes())?
        });
        left -= 1;
    }
    ctx.apply(&writes)?;
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}

/// `XINFO STREAM key`, `XINFO GROUPS key`, `XINFO CONSUMERS key group` and `XINFO HELP`.
pub(crate) fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    xinfo_run(ctx, args).unwrap_or_else(|error| error)
}

fn xinfo_run(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let given = String::from_utf8_lossy(at(args, 1)).into_owned();
    let subcommand = given.to_ascii_lowercase();
    let arity_fits = match subcommand.as_str() {
        "stream" | "groups" => args.len() == 3,
        "consumers" => args.len() == 4,
        "help" => args.len() == 2,
        _ => {
            return Err(Reply::err(format!(
                "unknown subcommand '{given}'. Try XINFO HELP."
            )))
        }
    };
    if !arity_fits {
        return Err(crate::commands::wrong_arity(&format!("xinfo|{subcommand}")));
    }
    if subcommand == "help" {
        return Ok(xinfo_help());
    }
    let now = keyspace::now_millis();
    let stream = ctx
        .read_stream(at(args, 2), now)?
        .ok_or_else(|| Reply::err("no such key"))?;
    match subcommand.as_str() {
        "consumers" => {
            let group = at(args, 3);
            if ctx.get(&stream.group_key(group))?.is_none() {
                return Err(Reply::Error(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(group),
                    String::from_utf8_lossy(at(args, 2))
                )));
            }
            let consumers = consumers_of(ctx, &stream, group)?;
            Ok(Reply::Array(
                consumers
                    .into_iter()
                    .map(|(name, consumer)| {
                        Reply::Map(vec![
                            (Reply::bulk("name"), Reply::Bulk(Bytes::from(name))),
                            (Reply::bulk("pending"), count_reply(consumer.pending)),
                            (
                                Reply::bulk("idle"),
                                count_reply(now.saturating_sub(consumer.seen_ms)),
                            ),
                        ])
                    })
                    .collect(),
            ))
        }
        "groups" => groups_reply(ctx, &stream),
        _ => stream_reply(ctx, &stream),
    }
}

/// `XINFO GROUPS`: each group's name, consumers, pending entries and last delivered id.
fn groups_reply(ctx: &Ctx<'_>, stream: &Stream) -> Result<Reply, Reply> {
    let mut replies = Vec::new();
    for (name, last) in groups_of(ctx, stream)? {
        let consumers = consumers_of(ctx, stream, &name)?;
        let pending: u64 = consumers.values().map(|consumer| consumer.pending).sum();
        replies.push(Reply::Map(vec![
            (Reply::bulk("name"), Reply::Bulk(Bytes::from(name))),
            (
                Reply::bulk("consumers"),
                count_reply(u64::try_from(consumers.len()).unwrap_or(u64::MAX)),
            ),
            (Reply::bulk("pending"), count_reply(pending)),
            (
                Reply::bulk("last-delivered-id"),
                Reply::Bulk(Bytes::from(last.to_string())),
            ),
            (Reply::bulk("entries-read"), Reply::Null),
            (Reply::bulk("lag"), Reply::Null),
        ]));
    }
    Ok(Reply::Array(replies))
}

/// `XINFO STREAM`: the length, the last id, the groups, and the first and last entries.
fn stream_reply(ctx: &Ctx<'_>, stream: &Stream) -> Result<Reply, Reply> {
    let groups = groups_of(ctx, stream)?;
    let mut first = Reply::Null;
    ctx.entries(stream, StreamId::MIN, StreamId::MAX, |id, value| {
        first = entry_reply(id, value)?;
        Ok(false)
    })?;
    let last = match ctx.last_entry(stream)? {
        Some((id, value)) => entry_reply(id, &value)?,
        None => Reply::Null,
    };
    Ok(Reply::Map(vec![
        (Reply::bulk("length"), count_reply(stream.header.count)),
        (
            Reply::bulk("last-generated-id"),
            Reply::Bulk(Bytes::from(stream.header.last_id.to_string())),
        ),
        (
            Reply::bulk("groups"),
            count_reply(u64::try_from(groups.len()).unwrap_or(u64::MAX)),
        ),
        (Reply::bulk("first-entry"), first),
        (Reply::bulk("last-entry"), last),
    ]))
}

fn xinfo_help() -> Reply {
    const LINES: &[&str] = &[
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key>",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ];
    super::help_reply(LINES)
}

/// What `XINFO` shows of a consumer.
#[derive(Default)]
struct ConsumerInfo {
    pending: u64,
    seen_ms: u64,
    /// Whether it has a record; a consumer without one was last seen at its latest delivery.
    recorded: bool,
}

/// The consumers of `group`, by name: each consumer record, and each consumer a pending
/// entry names without one (seen at its latest delivery).
fn consumers_of(
    ctx: &Ctx<'_>,
    stream: &Stream,
    group: &[u8],
) -> Result<std::collections::BTreeMap<Vec<u8>, ConsumerInfo>, Reply> {
    let mut consumers = std::collections::BTreeMap::<Vec<u8>, ConsumerInfo>::new();
    let prefix = stream.consumer_prefix(group);
    let mut failed = false;
    ctx.scan_prefix(&prefix, |engine_key, value| {
        match (
            engine_key.get(prefix.len()..),
            keyspace::decode_consumer(value.as_bytes()),
        ) {
            (Some(name), Some(seen_ms)) => {
                consumers.insert(
                    name.to_vec(),
                    ConsumerInfo {
                        pending: 0,
                        seen_ms,
                        recorded: true,
                    },
                );
            }
            _ => failed = true,
        }
        !failed
    })?;
    if failed {
        return Err(damaged());
    }
    walk_pending(
        ctx,
        stream,
        group,
        (StreamId::MIN, StreamId::MAX),
        |entry| {
            let info = consumers.entry(entry.consumer).or_default();
            info.pending += 1;
            if !info.recorded {
                info.seen_ms = info.seen_ms.max(entry.delivered_ms);
            }
            true
        },
    )?;
    Ok(consumers)
}

/// Every group of `stream`: its name and last delivered id, in name order.
fn groups_of(ctx: &Ctx<'_>, stream: &Stream) -> Result<Vec<(Vec<u8>, StreamId)>, Reply> {
    let mut prefix = keyspace::stream_prefix(stream.db, &stream.key, stream.header.version);
    prefix.push(b'g');
    let mut groups = Vec::new();
    let mut failed = false;
    ctx.scan_prefix(&prefix, |engine_key, value| {
        match (
            engine_key.get(prefix.len()..),
            group_last_id(value.as_bytes()),
        ) {
            (Some(name), Some(last)) => groups.push((name.to_vec(), last)),
            _ => failed = true,
        }
        !failed
    })?;
    if failed {
        return Err(damaged());
    }
    Ok(groups)
}

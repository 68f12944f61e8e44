//! Streams: `XADD`, `XLEN`, `XRANGE`, `XREVRANGE`, `XDEL`, `XTRIM`, `XREAD` (with `BLOCK`),
//! `XGROUP` (`CREATE`, `SETID`, `DESTROY`, `CREATECONSUMER`, `DELCONSUMER`), `XREADGROUP`,
//! `XACK`, and (in [`pending`]) `XPENDING`, `XCLAIM`, `XAUTOCLAIM` and `XINFO`, with Redis
//! 7.0's semantics and error texts, on the ordered keyspace (`keyspace` and docs/design.md
//! have the layout).
//!
//! - A stream is a collection: a metadata record holding a [`StreamHeader`] (version, entry
//!   count, the last id given), and a record per entry under the collection's element
//!   prefix, its key ending with the id (16 bytes, big-endian), so a range of ids is a range
//!   of keys. The value holds the field-value pairs, each length-prefixed ([`encode_fields`]).
//! - A consumer group is a record under the stream prefix: `g` and the group's name, holding
//!   the last id delivered to it. Each pending entry (delivered to a consumer, not yet
//!   acknowledged) is a record `p`, the group name's length (4 bytes) and bytes, and the id,
//!   holding the delivery time, the delivery count and the consumer's name.
//! - Every command is one engine commit (or part of the `EXEC`'s), so streams take part in
//!   `MULTI`/`EXEC`, `WATCH`, `DEL`, expiry, `RENAME` and the durability gate as every other
//!   type does, and groups and pending entries survive a restart.
//! - `XREAD`/`XREADGROUP` with `BLOCK` set [`Client::blocked`] when nothing is there to read;
//!   the connection (`session`) then waits for the next commit that writes one of its streams
//!   (`Shared::blocked_keys_written`) or for the timeout, and runs the request again. Inside
//!   `MULTI` they never block, as in Redis.
//!
//! - A consumer is a record under the stream prefix: `c`, the group name's length (4 bytes)
//!   and bytes, and the consumer's name, holding when it was last seen
//!   ([`Ctx::touch_consumer`]).
//!
//! Differences from Redis (docs/design.md lists them with the others): `~` trims exactly as
//! `=` does (Redis may keep more), and `XINFO` has no `FULL` form or entry counters.

mod groups;
mod id;
mod pending;
mod read;

pub(crate) use groups::{xack, xgroup};
pub(crate) use pending::{xautoclaim, xclaim, xinfo, xpending};
pub(crate) use read::{xread, xreadgroup};

use std::ops::Bound;

use bytes::Bytes;

use id::{next_id, parse_id_arg, parse_interval_id, parse_strict_id, IdArg};

use super::strings::at;
use super::{int_arg, is, syntax_error, wrong_arity, wrong_type, Ctx, Writes};
use crate::keyspace::{self, Kind, StreamHeader, StreamId};
use crate::resp::Reply;

/// A `HELP` subcommand's reply: each line as a status, as Redis sends it.
fn help_reply(lines: &[&str]) -> Reply {
    Reply::Array(
        lines
            .iter()
            .map(|line| Reply::StatusText((*line).to_owned()))
            .collect(),
    )
}

/// Redis's error for an id that does not parse.
pub(super) fn invalid_id() -> Reply {
    Reply::err("Invalid stream ID specified as stream command argument")
}

pub(super) fn damaged() -> Reply {
    Reply::err("cairn: the header of this key is damaged")
}

/// One entry as Redis replies it: its id and its fields.
pub(super) fn entry_reply(id: StreamId, value: &[u8]) -> Result<Reply, Reply> {
    let fields = keyspace::decode_stream_fields(value).ok_or_else(damaged)?;
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(id.to_string())),
        Reply::Array(
            fields
                .into_iter()
                .map(|field| Reply::Bulk(Bytes::copy_from_slice(field)))
                .collect(),
        ),
    ]))
}

/// An opened stream: where it lives and its header.
pub(super) struct Stream {
    key: Vec<u8>,
    meta_key: Vec<u8>,
    header: StreamHeader,
    deadline: Option<u64>,
    db: u8,
}

impl Stream {
    fn entry_key(&self, id: StreamId) -> Vec<u8> {
        let mut key = keyspace::member_prefix(self.db, &self.key, self.header.version);
        key.extend_from_slice(&id.to_key_bytes());
        key
    }

    fn group_key(&self, group: &[u8]) -> Vec<u8> {
        let mut key = keyspace::stream_prefix(self.db, &self.key, self.header.version);
        key.push(b'g');
        key.extend_from_slice(group);
        key
    }

    /// The prefix of every pending entry of `group`.
    fn pending_prefix(&self, group: &[u8]) -> Vec<u8> {
        self.group_records_prefix(b'p', group)
    }

    /// The prefix of every consumer of `group`, each keyed by its name.
    fn consumer_prefix(&self, group: &[u8]) -> Vec<u8> {
        self.group_records_prefix(b'c', group)
    }

    fn consumer_key(&self, group: &[u8], consumer: &[u8]) -> Vec<u8> {
        let mut key = self.consumer_prefix(group);
        key.extend_from_slice(consumer);
        key
    }

    /// `tag`, then `group` with its length: where a kind of `group`'s records starts.
    fn group_records_prefix(&self, tag: u8, group: &[u8]) -> Vec<u8> {
        let mut key = keyspace::stream_prefix(self.db, &self.key, self.header.version);
        key.push(tag);
        key.extend_from_slice(&u32::try_from(group.len()).unwrap_or(u32::MAX).to_be_bytes());
        key.extend_from_slice(group);
        key
    }
}

impl Ctx<'_> {
    /// Makes `consumer` of `group` seen now, in `writes`, creating it if it is not there
    /// (Redis's consumer lookup as `XREADGROUP`, `XCLAIM` and `XAUTOCLAIM` make it); whether
    /// it was created. A creation is noted for its keyspace event.
    fn touch_consumer(
        &self,
        stream: &Stream,
        group: &[u8],
        consumer: &[u8],
        now: u64,
        writes: &mut Writes,
    ) -> Result<bool, Reply> {
        let key = stream.consumer_key(group, consumer);
        let created = self.get(&key)?.is_none();
        writes.put(key, keyspace::encode_consumer(now));
        if created && self.shared.notify.get() != 0 {
            self.client
                .changes
                .borrow_mut()
                .note_consumer_created(stream.db, &stream.key);
        }
        Ok(created)
    }
}

impl Ctx<'_> {
    /// The live stream under `key`, if any; `WRONGTYPE` for another type.
    fn read_stream(&self, key: &[u8], now: u64) -> Result<Option<Stream>, Reply> {
        let meta_key = self.meta_key(key)?;
        let Some(stored) = self.read(&meta_key, now)? else {
            return Ok(None);
        };
        let entry = stored.entry();
        if entry.kind != Kind::Stream {
            return Err(wrong_type());
        }
        let header = StreamHeader::decode(entry.payload).ok_or_else(damaged)?;
        Ok(Some(Stream {
            key: key.to_vec(),
            meta_key,
            header,
            deadline: entry.deadline,
            db: self.client.db,
        }))
    }

    /// A new, empty stream under `key` (not yet saved).
    fn new_stream(&self, key: &[u8]) -> Result<Stream, Reply> {
        Ok(Stream {
            key: key.to_vec(),
            meta_key: self.meta_key(key)?,
            header: StreamHeader {
                version: self.new_collection_version(),
                count: 0,
                last_id: StreamId::MIN,
            },
            deadline: None,
            db: self.client.db,
        })
    }

    /// Commits `writes` with the stream's header. An empty stream stays, as in Redis.
    fn save_stream(&self, stream: &Stream, mut writes: Writes, now: u64) -> Result<(), Reply> {
        let record = keyspace::encode(Kind::Stream, stream.deadline, &stream.header.encode());
        match stream.deadline {
            Some(deadline) => {
                let reap_after = deadline.saturating_sub(now) + keyspace::REAP_SLACK_MILLIS;
                writes.put_with_ttl(
                    &stream.meta_key,
                    record,
                    std::time::Duration::from_millis(reap_after),
                );
            }
            None => writes.put(&stream.meta_key, record),
        }
        self.apply(&writes)
    }

    /// Calls `each` on the entries with ids from `from` through `to`, in id order, until it
    /// returns `false`.
    fn entries(
        &self,
        stream: &Stream,
        from: StreamId,
        to: StreamId,
        mut each: impl FnMut(StreamId, &[u8]) -> Result<bool, Reply>,
    ) -> Result<(), Reply> {
        if from > to {
            return Ok(());
        }
        let mut failed = None;
        self.scan(
            Bound::Included(stream.entry_key(from)),
            Bound::Included(stream.entry_key(to)),
            |engine_key, value| {
                let id = engine_key
                    .len()
                    .checked_sub(16)
                    .and_then(|start| engine_key.get(start..))
                    .and_then(StreamId::from_key_bytes);
                let result = match id {
                    Some(id) => each(id, value.as_bytes()),
                    None => Err(damaged()),
                };
                match result {
                    Ok(more) => more,
                    Err(error) => {
                        failed = Some(error);
                        false
                    }
                }
            },
        )?;
        failed.map_or(Ok(()), Err)
    }
}

/// Runs `change` on the live stream under `args[1]` with its stripe locked (and the time it
/// read), or replies 0 when there is none: the shape of `XTRIM`, `XDEL` and `XACK`.
pub(super) fn change_stream(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    change: impl FnOnce(Stream, u64) -> Result<Reply, Reply>,
) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = keyspace::now_millis();
        let key = at(args, 1);
        let meta_key = ctx.meta_key(key)?;
        let _locks = ctx.lock(&[&meta_key]);
        match ctx.read_stream(key, now)? {
            Some(stream) => change(stream, now),
            None => Ok(Reply::Integer(0)),
        }
    };
    run().unwrap_or_else(|error| error)
}

impl Ctx<'_> {
    /// The stream's newest entry: the one with its last id, unless that one was deleted,
    /// then found by a walk.
    fn last_entry(&self, stream: &Stream) -> Result<Option<(StreamId, Vec<u8>)>, Reply> {
        if let Some(value) = self.get(&stream.entry_key(stream.header.last_id))? {
            return Ok(Some((stream.header.last_id, value.to_vec())));
        }
        let mut last = None;
        self.entries(stream, StreamId::MIN, StreamId::MAX, |id, value| {
            last = Some((id, value.to_vec()));
            Ok(true)
        })?;
        Ok(last)
    }
}

/// A trimming request of `XADD` or `XTRIM`.
#[derive(Clone, Copy, Debug)]
enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop the entries below this id.
    MinId(StreamId),
}

/// What `XADD`'s and `XTRIM`'s options say.
struct AddArgs {
    trim: Option<Trim>,
    /// Entries `~` trimming removes at most (0: no bound).
    limit: u64,
    nomkstream: bool,
    /// `XADD`'s id (`None`: `*`) and the position after it.
    id: Option<IdArg>,
    fields_at: usize,
}

/// Parses `XADD`'s (`xadd`) or `XTRIM`'s options as Redis does, in its order and with its
/// errors.
fn parse_add_or_trim(args: &[Bytes], xadd: bool) -> Result<AddArgs, Reply> {
    let mut parsed = AddArgs {
        trim: None,
        limit: 0,
        nomkstream: false,
        id: None,
        fields_at: args.len(),
    };
    let mut approx = false;
    let mut limit_given = false;
    let mut i = 2;
    while let Some(option) = args.get(i) {
        let more = args.len() - i - 1;
        if xadd && option.as_ref() == b"*" {
            parsed.fields_at = i + 1;
            break;
        } else if (is(option, "maxlen") || is(option, "minid")) && more > 0 {
            if parsed.trim.is_some() {
                return Err(Reply::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let next = at(args, i + 1);
            if more >= 2 && (next == b"~" || next == b"=") {
                approx = next == b"~";
                i += 1;
            }
            let threshold = at(args, i + 1);
            parsed.trim = Some(if is(option, "maxlen") {
                let max = int_arg(threshold)?;
                Trim::MaxLen(
                    u64::try_from(max)
                        .map_err(|_| Reply::err("The MAXLEN argument must be >= 0."))?,
                )
            } else {
                Trim::MinId(parse_strict_id(threshold)?)
            });
            i += 2;
        } else if is(option, "limit") && more > 0 {
            let limit = int_arg(at(args, i + 1))?;
            parsed.limit =
                u64::try_from(limit).map_err(|_| Reply::err("The LIMIT argument must be >= 0."))?;
            limit_given = true;
            i += 2;
        } else if xadd && is(option, "nomkstream") {
            parsed.nomkstream = true;
            i += 1;
        } else if xadd {
            parsed.id = Some(parse_id_arg(option, 0, true, true)?);
            parsed.fields_at = i + 1;
            break;
        } else {
            return Err(syntax_error());
        }
    }
    if parsed.limit != 0 && parsed.trim.is_none() {
        return Err(Reply::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && parsed.trim.is_none() {
        return Err(Reply::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given && !approx {
        return Err(Reply::err(
            "syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    Ok(parsed)
}

/// Removes the oldest entries `trim` asks for (at most `limit`, 0 for no bound) into
/// `writes`, counting the entry `added` (already in `writes`, not yet in the store) as the
/// newest; returns how many it removed.
fn trim_entries(
    ctx: &Ctx<'_>,
    stream: &mut Stream,
    trim: Trim,
    limit: u64,
    added: Option<StreamId>,
    writes: &mut Writes,
) -> Result<u64, Reply> {
    let bound = |wanted: u64| {
        if limit == 0 {
            wanted
        } else {
            wanted.min(limit)
        }
    };
    let mut removed = 0;
    let remove = |id: StreamId, writes: &mut Writes, removed: &mut u64| {
        writes.delete(stream.entry_key(id));
        *removed += 1;
    };
    match trim {
        Trim::MaxLen(max) => {
            let wanted = bound(stream.header.count.saturating_sub(max));
            let mut ids = Vec::new();
            if wanted > 0 {
                ctx.entries(stream, StreamId::MIN, StreamId::MAX, |id, _| {
                    ids.push(id);
                    Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX) < wanted)
                })?;
            }
            for id in ids {
                remove(id, writes, &mut removed);
            }
            if removed < wanted {
                if let Some(id) = added {
                    remove(id, writes, &mut removed);
                }
            }
        }
        Trim::MinId(min) => {
            let wanted = bound(stream.header.count);
            let mut ids = Vec::new();
            if let Some(below) = min.prev() {
                ctx.entries(stream, StreamId::MIN, below, |id, _| {
                    ids.push(id);
                    Ok(u64::try_from(ids.len()).unwrap_or(u64::MAX) < wanted)
                })?;
            }
            for id in ids
                .into_iter()
                .take(usize::try_from(wanted).unwrap_or(usize::MAX))
            {
                remove(id, writes, &mut removed);
            }
            if let Some(id) = added.filter(|id| *id < min && removed < wanted) {
                remove(id, writes, &mut removed);
            }
        }
    }
    stream.header.count -= removed;
    Ok(removed)
}

pub(crate) fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let parsed = parse_add_or_trim(args, true)?;
        let fields = args.get(parsed.fields_at..).unwrap_or_default();
        if fields.len() < 2 || fields.len() % 2 == 1 {
            return Err(wrong_arity("xadd"));
        }
        if parsed.id == Some(IdArg::Exact(StreamId::MIN)) {
            return Err(Reply::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
        let now = keyspace::now_millis();
        let key = at(args, 1);
        let meta_key = ctx.meta_key(key)?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut stream = match ctx.read_stream(key, now)? {
            Some(stream) => stream,
            None if parsed.nomkstream => return Ok(Reply::Null),
            None => ctx.new_stream(key)?,
        };
        if stream.header.last_id == StreamId::MAX {
            return Err(Reply::err(
                "The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = next_id(stream.header.last_id, parsed.id, now)?;
        let mut writes = Writes::new();
        writes.put(stream.entry_key(id), keyspace::encode_stream_fields(fields));
        stream.header.count += 1;
        stream.header.last_id = id;
        if let Some(trim) = parsed.trim {
            trim_entries(ctx, &mut stream, trim, parsed.limit, Some(id), &mut writes)?;
        }
        ctx.save_stream(&stream, writes, now)?;
        Ok(Reply::Bulk(Bytes::from(id.to_string())))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (trim, limit) = match parse_add_or_trim(args, false) {
        Ok(AddArgs {
            trim: Some(trim),
            limit,
            ..
        }) => (trim, limit),
        Ok(_) => return syntax_error(),
        Err(error) => return error,
    };
    change_stream(ctx, args, |mut stream, now| {
        let mut writes = Writes::new();
        let removed = trim_entries(ctx, &mut stream, trim, limit, None, &mut writes)?;
        if removed > 0 {
            ctx.save_stream(&stream, writes, now)?;
        }
        Ok(super::collection::count_reply(removed))
    })
}

pub(crate) fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match ctx.read_stream(at(args, 1), keyspace::now_millis()) {
        Ok(stream) => {
            super::collection::count_reply(stream.map_or(0, |stream| stream.header.count))
        }
        Err(error) => error,
    }
}

pub(crate) fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range(ctx, args, false).unwrap_or_else(|error| error)
}

pub(crate) fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range(ctx, args, true).unwrap_or_else(|error| error)
}

/// `XRANGE` and (`rev`) `XREVRANGE`.
fn range(ctx: &Ctx<'_>, args: &[Bytes], rev: bool) -> Result<Reply, Reply> {
    let (start_arg, end_arg) = if rev { (3, 2) } else { (2, 3) };
    let (mut start, start_excluded) = parse_interval_id(at(args, start_arg), 0)?;
    if start_excluded {
        start = start
            .next()
            .ok_or_else(|| Reply::err("invalid start ID for the interval"))?;
    }
    let (mut end, end_excluded) = parse_interval_id(at(args, end_arg), u64::MAX)?;
    if end_excluded {
        end = end
            .prev()
            .ok_or_else(|| Reply::err("invalid end ID for the interval"))?;
    }
    let mut count: Option<i64> = None;
    let mut i = 4;
    while let Some(option) = args.get(i) {
        if is(option, "count") && args.len() > i + 1 {
            count = Some(int_arg(at(args, i + 1))?.max(0));
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let Some(stream) = ctx.read_stream(at(args, 1), keyspace::now_millis())? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == Some(0) {
        return Ok(Reply::NullArray);
    }
    let limit = count.map_or(usize::MAX, |count| {
        usize::try_from(count).unwrap_or(usize::MAX)
    });
    if !rev {
        let mut entries = Vec::new();
        ctx.entries(&stream, start, end, |id, value| {
            entries.push(entry_reply(id, value)?);
            Ok(entries.len() < limit)
        })?;
        return Ok(Reply::Array(entries));
    }
    let mut entries = Vec::new();
    let mut failed = None;
    if start <= end {
        ctx.scan_rev(
            Bound::Included(stream.entry_key(start)),
            Bound::Included(stream.entry_key(end)),
            |engine_key, value| {
                let id = engine_key
                    .len()
                    .checked_sub(16)
                    .and_then(|at| engine_key.get(at..))
                    .and_then(StreamId::from_key_bytes);
                match id.map(|id| entry_reply(id, value.as_bytes())) {
                    Some(Ok(reply)) => entries.push(reply),
                    Some(Err(error)) => failed = Some(error),
                    None => failed = Some(damaged()),
                }
                failed.is_none() && entries.len() < limit
            },
        )?;
    }
    match failed {
        Some(error) => Err(error),
        None => Ok(Reply::Array(entries)),
    }
}

pub(crate) fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    change_stream(ctx, args, |mut stream, now| {
        let ids = args
            .iter()
            .skip(2)
            .map(|arg| parse_strict_id(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let mut writes = Writes::new();
        let mut seen = std::collections::HashSet::new();
        let mut removed = 0;
        for id in ids {
            let entry_key = stream.entry_key(id);
            if seen.insert(id) && ctx.get(&entry_key)?.is_some() {
                writes.delete(entry_key);
                removed += 1;
            }
        }
        if removed > 0 {
            stream.header.count -= removed;
            ctx.save_stream(&stream, writes, now)?;
        }
        Ok(super::collection::count_reply(removed))
    })
}

/// `XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]`: sets the id the next `*` must
/// exceed, never below the newest entry. Cairn keeps neither Redis's count of entries ever
/// added nor its greatest deleted id, so those two options are checked as Redis checks them
/// and otherwise ignored (docs/design.md section 15).
pub(crate) fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let id = parse_strict_id(at(args, 2))?;
        let mut entries_added = None;
        let mut options = args.iter().skip(3);
        while let Some(option) = options.next() {
            let more = options.len() > 0;
            if super::is(option, "entriesadded") && more {
                let added = super::int_arg(options.next().map(Bytes::as_ref).unwrap_or_default())?;
                let added = u64::try_from(added)
                    .map_err(|_| Reply::err("entries_added must be positive"))?;
                entries_added = Some(added);
            } else if super::is(option, "maxdeletedid") && more {
                let deleted =
                    parse_strict_id(options.next().map(Bytes::as_ref).unwrap_or_default())?;
                if id < deleted {
                    return Err(Reply::err(
                        "The ID specified in XSETID is smaller than the provided \
                         max_deleted_entry_id",
                    ));
                }
            } else {
                return Err(super::syntax_error());
            }
        }
        let now = keyspace::now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let Some(mut stream) = ctx.read_stream(at(args, 1), now)? else {
            return Err(Reply::err("no such key"));
        };
        if stream.header.count > 0 {
            let top = ctx.last_entry(&stream)?.map(|(top, _)| top);
            if top.is_some_and(|top| id < top) {
                return Err(Reply::err(
                    "The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if entries_added.is_some_and(|added| added < stream.header.count) {
                return Err(Reply::err(
                    "The entries_added specified in XSETID is smaller than the target stream \
                     length",
                ));
            }
        }
        stream.header.last_id = id;
        ctx.save_stream(&stream, Writes::new(), now)?;
        Ok(crate::resp::OK)
    };
    run().unwrap_or_else(|error| error)
}

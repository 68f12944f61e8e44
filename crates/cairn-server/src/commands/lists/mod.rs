//! List commands: `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`, `LPOP`, `RPOP`, `BLPOP`, `BRPOP`,
//! `LMPOP`, `BLMPOP`, `LMOVE`, `RPOPLPUSH`, `BLMOVE`, `BRPOPLPUSH`, `LRANGE`, `LLEN`,
//! `LINDEX`, `LSET`, `LTRIM`, and the edits in the middle and the search (`LREM`, `LINSERT`,
//! `LPOS`: [`edit`]). The elements are held in chunks of up to 32 ([`chunks`]): a push or
//! pop at either end rewrites the chunk there and the header, and `LRANGE` is one range scan
//! over the chunks it covers.
//!
//! `BLPOP`, `BRPOP`, `BLMPOP`, `BLMOVE` and `BRPOPLPUSH` that find every list empty leave the
//! request for the connection to wait and run again (`super::Blocked`, as blocking stream
//! reads do), woken by any committed write to one of its keys. Every blocked client is woken
//! and the first to run takes the element, where Redis serves them in the order they blocked.

mod chunks;
mod edit;
pub(crate) use edit::{linsert, lpos, lrem};

use chunks::Chunks;

use super::Writes;
use bytes::Bytes;

use super::collection::{
    blocking_pop_first, count_reply, parse_mpop, parse_timeout, pop_first, with_collection,
};
use super::strings::at;
use super::{int_arg, is, syntax_error, Blocked, Ctx, Store};
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::{BulkArray, Reply, OK};

/// `LPUSH`/`RPUSH`, and (`only_existing`) `LPUSHX`/`RPUSHX`, which push only onto a list
/// that is there.
fn push(ctx: &Ctx<'_>, args: &[Bytes], left: bool, only_existing: bool) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        if only_existing && opened.is_new() {
            return Ok(Reply::Integer(0));
        }
        let mut chunks = Chunks::default();
        for element in args.iter().skip(2) {
            chunks.push(ctx, &mut opened, left, element)?;
        }
        let mut batch = Writes::new();
        chunks.write(ctx, &opened, &mut batch);
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(count_reply(opened.header.count))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, true, false)
}

pub(crate) fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, false, false)
}

pub(crate) fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, true, true)
}

pub(crate) fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, false, true)
}

fn pop(ctx: &Ctx<'_>, args: &[Bytes], left: bool) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let wanted = match args.get(2) {
            None => None,
            Some(count) => Some(
                u64::try_from(int_arg(count)?)
                    .map_err(|_| Reply::err("value is out of range, must be positive"))?,
            ),
        };
        if args.len() > 3 {
            return Err(super::wrong_arity(if left { "lpop" } else { "rpop" }));
        }
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        if opened.is_new() {
            return Ok(if wanted.is_some() {
                Reply::NullArray
            } else {
                Reply::Null
            });
        }
        let mut chunks = Chunks::default();
        let mut popped = Vec::new();
        for _ in 0..wanted.unwrap_or(1).min(opened.header.count) {
            popped.push(Reply::Bulk(chunks.pop(ctx, &mut opened, left)?.into()));
        }
        let mut batch = Writes::new();
        chunks.write(ctx, &opened, &mut batch);
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(match wanted {
            None => popped.pop().unwrap_or(Reply::Null),
            Some(_) => Reply::Array(popped),
        })
    };
    run().unwrap_or_else(|error| error)
}

/// `BLPOP`/`BRPOP key [key ...] timeout`: pops from the first non-empty list, as
/// `[key, element]`, or waits for one (the null array at the timeout).
fn blocking_pop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> Reply {
    blocking_pop_first(ctx, args, Kind::List, |ctx, opened, batch| {
        let mut chunks = Chunks::default();
        let element = chunks.pop(ctx, opened, left)?;
        chunks.write(ctx, opened, batch);
        Ok(Reply::Array(vec![
            Reply::bulk(&opened.key),
            Reply::Bulk(element.into()),
        ]))
    })
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]` and (`blocking`) `BLMPOP timeout
/// numkeys ...`: up to `count` elements from the first non-empty list, as `[key, [element,
/// ...]]`; the null array when every list is empty (`BLMPOP`: once its timeout passes).
fn mpop(ctx: &mut Ctx<'_>, args: &[Bytes], blocking: bool) -> Reply {
    let (keys, left, count, timeout) = match parse_mpop(args, blocking, ("left", "right")) {
        Ok(parsed) => parsed,
        Err(error) => return error,
    };
    pop_first(
        ctx,
        args,
        keys,
        Kind::List,
        timeout,
        |ctx, opened, batch| {
            let mut chunks = Chunks::default();
            let mut popped = Vec::new();
            for _ in 0..count.min(opened.header.count) {
                popped.push(Reply::Bulk(chunks.pop(ctx, opened, left)?.into()));
            }
            chunks.write(ctx, opened, batch);
            Ok(Reply::Array(vec![
                Reply::bulk(&opened.key),
                Reply::Array(popped),
            ]))
        },
    )
}

pub(crate) fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    mpop(ctx, args, false)
}

pub(crate) fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    mpop(ctx, args, true)
}

/// `LEFT` (true) or `RIGHT` (false).
fn parse_end(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(syntax_error())
    }
}

/// Moves the element at one end of `source` to one end of `destination`, in one commit, and
/// returns it; `None` when `source` is empty. A woken blocking move (`ctx.client.rerun`)
/// waits on past a source that holds another type.
fn move_one(
    ctx: &Ctx<'_>,
    source: &[u8],
    destination: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Reply>, Reply> {
    let now = now_millis();
    let source_meta = ctx.meta_key(source)?;
    let destination_meta = ctx.meta_key(destination)?;
    let _locks = ctx.lock(&[&source_meta, &destination_meta]);
    let mut from = match ctx.open_collection(source, Kind::List, now) {
        Err(Reply::Error(text)) if ctx.client.rerun && text.starts_with("WRONGTYPE") => {
            return Ok(None)
        }
        other => other?,
    };
    if from.is_new() {
        return Ok(None);
    }
    let mut batch = Writes::new();
    let mut from_chunks = Chunks::default();
    if source == destination {
        let value = from_chunks.pop(ctx, &mut from, from_left)?;
        from_chunks.push(ctx, &mut from, to_left, &value)?;
        from_chunks.write(ctx, &from, &mut batch);
        ctx.save_collection(&from, Kind::List, batch, now)?;
        return Ok(Some(Reply::Bulk(value.into())));
    }
    // The destination's type is checked before anything changes.
    let mut to = ctx.open_collection(destination, Kind::List, now)?;
    let mut to_chunks = Chunks::default();
    let value = from_chunks.pop(ctx, &mut from, from_left)?;
    to_chunks.push(ctx, &mut to, to_left, &value)?;
    from_chunks.write(ctx, &from, &mut batch);
    to_chunks.write(ctx, &to, &mut batch);
    let writes = from.with_header(Kind::List, batch, now).unwrap_or_default();
    if let Some(writes) = to.with_header(Kind::List, writes, now) {
        ctx.apply(&writes)?;
    }
    Ok(Some(Reply::Bulk(value.into())))
}

/// `LMOVE`, `RPOPLPUSH`, `BLMOVE` and `BRPOPLPUSH`: `ends_at` is where `LEFT|RIGHT LEFT|RIGHT`
/// are (`None`: `RPOPLPUSH`'s right to left), `timeout_at` the blocking forms' timeout.
fn move_command(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    ends_at: Option<usize>,
    timeout_at: Option<usize>,
) -> Reply {
    let run = || -> Result<(Reply, Option<Blocked>), Reply> {
        let (from_left, to_left) = match ends_at {
            Some(at_index) => (
                parse_end(at(args, at_index))?,
                parse_end(at(args, at_index + 1))?,
            ),
            None => (false, true),
        };
        let timeout = match timeout_at {
            Some(index) => Some(parse_timeout(at(args, index))?),
            None => None,
        };
        if let Some(moved) = move_one(ctx, at(args, 1), at(args, 2), from_left, to_left)? {
            return Ok((moved, None));
        }
        let blocked = match (timeout, &ctx.store) {
            (Some(timeout), Store::Db) => Some(Blocked {
                args: args.to_vec(),
                timeout,
                keys: vec![ctx.meta_key(at(args, 1))?],
            }),
            _ => None,
        };
        Ok((
            if timeout.is_some() {
                Reply::NullArray
            } else {
                Reply::Null
            },
            blocked,
        ))
    };
    match run() {
        Ok((reply, blocked)) => {
            ctx.client.blocked = blocked;
            reply
        }
        Err(error) => error,
    }
}

pub(crate) fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_command(ctx, args, Some(3), None)
}

pub(crate) fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_command(ctx, args, None, None)
}

pub(crate) fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_command(ctx, args, Some(3), Some(5))
}

pub(crate) fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    move_command(ctx, args, None, Some(3))
}

pub(crate) fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, true)
}

pub(crate) fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    blocking_pop(ctx, args, false)
}

pub(crate) fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let index = int_arg(at(args, 2))?;
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        if opened.is_new() {
            return Err(Reply::err("no such key"));
        }
        let Some((offset, _)) = clamp(index, index, opened.header.count) else {
            return Err(Reply::err("index out of range"));
        };
        let found = chunks::locate(ctx, &opened, offset)?;
        let mut chunk =
            keyspace::ListChunk::decode(found.value.as_bytes()).ok_or_else(chunks::damaged)?;
        let within = usize::try_from(offset - found.start).unwrap_or(usize::MAX);
        if !chunk.set(within, at(args, 3)) {
            return Err(chunks::damaged());
        }
        let mut batch = Writes::new();
        batch.put(
            chunks::chunk_key(&opened, ctx.client.db, found.id),
            chunk.as_bytes(),
        );
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(OK)
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let start = int_arg(at(args, 2))?;
        let stop = int_arg(at(args, 3))?;
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        if opened.is_new() {
            return Ok(OK);
        }
        let mut batch = Writes::new();
        if let Some((first, last)) = clamp(start, stop, opened.header.count) {
            chunks::trim(ctx, &mut opened, first, last, &mut batch)?;
        } else {
            let db = ctx.client.db;
            for id in opened.header.head..opened.header.tail {
                batch.delete(chunks::chunk_key(&opened, db, id));
            }
            opened.header.head = opened.header.tail;
            opened.header.count = 0;
        }
        // Written even when nothing was trimmed: Redis sends its `ltrim` event then too.
        ctx.rewrite_collection(&opened, Kind::List, batch, now)?;
        Ok(OK)
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop(ctx, args, true)
}

pub(crate) fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    pop(ctx, args, false)
}

pub(crate) fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::List, Reply::Integer(0), |opened| {
        Ok(count_reply(opened.header.count))
    })
}

/// The offsets `LRANGE start stop` selects in a list of `len`, as Redis clamps them.
fn clamp(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let stop = if stop < 0 {
        len.saturating_add(stop)
    } else {
        stop
    };
    if start > stop || start >= len {
        return None;
    }
    let stop = stop.min(len - 1);
    Some((u64::try_from(start).ok()?, u64::try_from(stop).ok()?))
}

pub(crate) fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let bounds = int_arg(at(args, 2)).and_then(|start| Ok((start, int_arg(at(args, 3))?)));
    let (start, stop) = match bounds {
        Ok(bounds) => bounds,
        Err(error) => return error,
    };
    with_collection(ctx, args, Kind::List, Reply::Array(Vec::new()), |opened| {
        let Some((first, last)) = clamp(start, stop, opened.header.count) else {
            return Ok(Reply::Array(Vec::new()));
        };
        let mut elements = BulkArray::new();
        for chunk in chunks::covering(ctx, opened, first, last)? {
            for (index, element) in (chunk.start..).zip(chunk.elements()?) {
                if (first..=last).contains(&index) {
                    elements.push(element);
                }
            }
        }
        Ok(elements.finish())
    })
}

pub(crate) fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let index = match int_arg(at(args, 2)) {
        Ok(index) => index,
        Err(error) => return error,
    };
    with_collection(ctx, args, Kind::List, Reply::Null, |opened| {
        let Some((offset, _)) = clamp(index, index, opened.header.count) else {
            return Ok(Reply::Null);
        };
        let chunk = chunks::locate(ctx, opened, offset)?;
        let within = usize::try_from(offset - chunk.start).unwrap_or(usize::MAX);
        Ok(chunk
            .elements()?
            .get(within)
            .map_or(Reply::Null, Reply::bulk))
    })
}

#[cfg(test)]
mod tests {
    use super::clamp;

    #[test]
    fn ranges_clamp_as_redis_does() {
        assert_eq!(clamp(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp(-2, -1, 5), Some((3, 4)));
        assert_eq!(clamp(-100, 2, 5), Some((0, 2)));
        assert_eq!(clamp(3, 100, 5), Some((3, 4)));
        assert_eq!(clamp(5, 10, 5), None);
        assert_eq!(clamp(2, 1, 5), None);
        assert_eq!(clamp(0, -6, 5), None);
        assert_eq!(clamp(i64::MIN, i64::MAX, 5), Some((0, 4)));
    }
}

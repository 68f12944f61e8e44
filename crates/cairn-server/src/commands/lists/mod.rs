//! List commands: `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`, `LPOP`, `RPOP`, `BLPOP`, `BRPOP`,
//! `LMPOP`, `BLMPOP`, `LMOVE`, `RPOPLPUSH`, `BLMOVE`, `BRPOPLPUSH`, `LRANGE`, `LLEN`,
//! `LINDEX`, `LSET`, `LTRIM`, and the edits in the middle and the search (`LREM`, `LINSERT`,
//! `LPOS`: [`edit`]). An element is an element record keyed by its position (8 bytes,
//! big-endian): the header's `head` is the first position and `tail` the one after the last,
//! so a push or pop at either end writes one element and the header, and `LRANGE` is one
//! range scan.
//!
//! `BLPOP`, `BRPOP`, `BLMPOP`, `BLMOVE` and `BRPOPLPUSH` that find every list empty leave the
//! request for the connection to wait and run again (`super::Blocked`, as blocking stream
//! reads do), woken by any committed write to one of its keys. Every blocked client is woken
//! and the first to run takes the element, where Redis serves them in the order they blocked.

mod edit;
pub(crate) use edit::{linsert, lpos, lrem};

use super::Writes;
use bytes::Bytes;

use super::collection::{
    blocking_pop_first, bulk_of, count_reply, parse_mpop, parse_timeout, pop_first,
    with_collection, Opened,
};
use super::strings::at;
use super::{int_arg, is, syntax_error, Blocked, Ctx, Store};
use crate::keyspace::{now_millis, Kind};
use crate::resp::{BulkArray, Reply, OK};

fn position_key(opened: &Opened, db: u8, position: u64) -> Vec<u8> {
    opened.member_key(db, &position.to_be_bytes())
}

/// Puts `element` at the head (`left`) or the tail of a list, into `batch`.
fn push_end(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    left: bool,
    element: &[u8],
    batch: &mut Writes,
) -> Result<(), Reply> {
    let position = if left {
        opened.header.head = opened
            .header
            .head
            .checked_sub(1)
            .ok_or_else(|| Reply::err("cairn: the list has no room at its head"))?;
        opened.header.head
    } else {
        let position = opened.header.tail;
        opened.header.tail = position
            .checked_add(1)
            .ok_or_else(|| Reply::err("cairn: the list has no room at its tail"))?;
        position
    };
    batch.put(position_key(opened, ctx.client.db, position), element);
    opened.header.count += 1;
    Ok(())
}

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
        let mut batch = Writes::new();
        for element in args.iter().skip(2) {
            push_end(ctx, &mut opened, left, element, &mut batch)?;
        }
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
        let mut batch = Writes::new();
        let mut popped = Vec::new();
        for _ in 0..wanted.unwrap_or(1).min(opened.header.count) {
            let value = pop_end(ctx, &mut opened, left, &mut batch)?;
            popped.push(value.map_or(Reply::Null, |value| bulk_of(&value)));
        }
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(match wanted {
            None => popped.pop().unwrap_or(Reply::Null),
            Some(_) => Reply::Array(popped),
        })
    };
    run().unwrap_or_else(|error| error)
}

/// Takes the element at the head (`left`) or the tail of a non-empty list into `batch`.
fn pop_end(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    left: bool,
    batch: &mut Writes,
) -> Result<Option<cairn::Value>, Reply> {
    debug_assert!(opened.header.count > 0, "a pop from an empty list");
    let position = if left {
        let position = opened.header.head;
        opened.header.head += 1;
        position
    } else {
        opened.header.tail -= 1;
        opened.header.tail
    };
    let engine_key = position_key(opened, ctx.client.db, position);
    let value = ctx.element(&engine_key)?;
    batch.delete(&engine_key);
    opened.header.count -= 1;
    Ok(value)
}

/// `BLPOP`/`BRPOP key [key ...] timeout`: pops from the first non-empty list, as
/// `[key, element]`, or waits for one (the null array at the timeout).
fn blocking_pop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> Reply {
    blocking_pop_first(ctx, args, Kind::List, |ctx, opened, batch| {
        let element = pop_end(ctx, opened, left, batch)?;
        let element = element.map_or(Reply::Null, |value| bulk_of(&value));
        Ok(Reply::Array(vec![Reply::bulk(&opened.key), element]))
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
            let mut popped = Vec::new();
            for _ in 0..count.min(opened.header.count) {
                let element = pop_end(ctx, opened, left, batch)?;
                popped.push(element.map_or(Reply::Null, |value| bulk_of(&value)));
            }
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
    if source == destination {
        let value = pop_end(ctx, &mut from, from_left, &mut batch)?
            .ok_or_else(|| Reply::err("cairn: a list element record is missing"))?;
        push_end(ctx, &mut from, to_left, value.as_bytes(), &mut batch)?;
        ctx.save_collection(&from, Kind::List, batch, now)?;
        return Ok(Some(bulk_of(&value)));
    }
    // The destination's type is checked before anything changes.
    let mut to = ctx.open_collection(destination, Kind::List, now)?;
    let value = pop_end(ctx, &mut from, from_left, &mut batch)?
        .ok_or_else(|| Reply::err("cairn: a list element record is missing"))?;
    push_end(ctx, &mut to, to_left, value.as_bytes(), &mut batch)?;
    let writes = from.with_header(Kind::List, batch, now).unwrap_or_default();
    if let Some(writes) = to.with_header(Kind::List, writes, now) {
        ctx.apply(&writes)?;
    }
    Ok(Some(bulk_of(&value)))
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
        let db = ctx.client.db;
        let mut batch = Writes::new();
        batch.put(
            position_key(&opened, db, opened.header.head + offset),
            at(args, 3),
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
        let (keep_first, keep_last) = clamp(start, stop, opened.header.count).map_or(
            (opened.header.count, opened.header.count),
            |(first, last)| (first, last + 1),
        );
        let db = ctx.client.db;
        let mut batch = Writes::new();
        let head = opened.header.head;
        for position in (head..head + keep_first).chain(head + keep_last..opened.header.tail) {
            batch.delete(position_key(&opened, db, position));
        }
        if keep_first >= keep_last {
            opened.header.head = opened.header.tail;
            opened.header.count = 0;
        } else {
            opened.header.tail = head + keep_last;
            opened.header.head = head + keep_first;
            opened.header.count = keep_last - keep_first;
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
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::List, Reply::Array(Vec::new()), |opened| {
        let Some((first, last)) = clamp(start, stop, opened.header.count) else {
            return Ok(Reply::Array(Vec::new()));
        };
        let from = position_key(opened, db, opened.header.head + first);
        let to = position_key(opened, db, opened.header.head + last);
        let mut elements = BulkArray::new();
        ctx.scan(
            std::ops::Bound::Included(from),
            std::ops::Bound::Included(to),
            |_, value| {
                elements.push(value.as_bytes());
                true
            },
        )?;
        Ok(elements.finish())
    })
}

pub(crate) fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let index = match int_arg(at(args, 2)) {
        Ok(index) => index,
        Err(error) => return error,
    };
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::List, Reply::Null, |opened| {
        let Some((offset, _)) = clamp(index, index, opened.header.count) else {
            return Ok(Reply::Null);
        };
        let value = ctx.element(&position_key(opened, db, opened.header.head + offset))?;
        Ok(value.map_or(Reply::Null, |value| bulk_of(&value)))
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

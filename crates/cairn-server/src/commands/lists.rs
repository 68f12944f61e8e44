//! List commands: `LPUSH`, `RPUSH`, `LPOP`, `RPOP`, `LRANGE`, `LLEN`, `LINDEX`, `LSET`,
//! `LTRIM`. An element is
//! an element record keyed by its position (8 bytes, big-endian): the header's `head` is the
//! first position and `tail` the one after the last, so a push or pop at either end writes one
//! element and the header, and `LRANGE` is one range scan. (Inserting or removing in the
//! middle, `LINSERT` and `LREM`, would renumber the elements after it; they are not built.)

use super::Writes;
use bytes::Bytes;

use super::collection::{bulk_of, count_reply, with_collection, Opened};
use super::strings::at;
use super::{int_arg, Ctx};
use crate::keyspace::{now_millis, Kind};
use crate::resp::{BulkArray, Reply, OK};

fn position_key(opened: &Opened, db: u8, position: u64) -> Vec<u8> {
    opened.member_key(db, &position.to_be_bytes())
}

fn push(ctx: &Ctx<'_>, args: &[Bytes], left: bool) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        let db = ctx.client.db;
        let mut batch = Writes::new();
        for element in args.iter().skip(2) {
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
            batch.put(position_key(&opened, db, position), element);
            opened.header.count += 1;
        }
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(count_reply(opened.header.count))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, true)
}

pub(crate) fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    push(ctx, args, false)
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
        let db = ctx.client.db;
        let mut batch = Writes::new();
        let mut popped = Vec::new();
        for _ in 0..wanted.unwrap_or(1).min(opened.header.count) {
            let position = if left {
                let position = opened.header.head;
                opened.header.head += 1;
                position
            } else {
                opened.header.tail -= 1;
                opened.header.tail
            };
            let engine_key = position_key(&opened, db, position);
            let value = ctx.element(&engine_key)?;
            popped.push(value.map_or(Reply::Null, |value| bulk_of(&value)));
            batch.delete(&engine_key);
            opened.header.count -= 1;
        }
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(match wanted {
            None => popped.pop().unwrap_or(Reply::Null),
            Some(_) => Reply::Array(popped),
        })
    };
    run().unwrap_or_else(|error| error)
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

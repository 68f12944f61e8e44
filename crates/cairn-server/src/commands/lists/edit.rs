//! Edits in the middle of a list, and its search: `LREM`, `LINSERT`, `LPOS`.
//!
//! Elements are keyed by their positions, `head..tail` with no gaps, so removing or inserting
//! in the middle moves every element after that point by one: the command rewrites the
//! element records from the first change to the tail, and the header, in one commit. That is
//! O(n) in the list's length, as Redis's own `LREM` and `LINSERT` are. `LPOS` walks the list
//! from either end and stops at what it was asked for.

use std::ops::Bound;

use bytes::Bytes;

use super::super::collection::{count_reply, Opened};
use super::super::store::prefix_end;
use super::super::strings::at;
use super::super::{int_arg, is, syntax_error, Ctx, Writes};
use super::position_key;
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::Reply;

/// Every element of an opened list, head first.
fn elements(ctx: &Ctx<'_>, opened: &Opened) -> Result<Vec<cairn::Value>, Reply> {
    let prefix = keyspace::member_prefix(ctx.client.db, &opened.key, opened.header.version);
    let mut values = Vec::new();
    ctx.scan_prefix(&prefix, |_, value| {
        values.push(value.clone());
        true
    })?;
    if u64::try_from(values.len()).ok() != Some(opened.header.count) {
        return Err(Reply::err(
            "cairn: the list's element records do not match its header",
        ));
    }
    Ok(values)
}

/// Writes `values` into the positions from index `from` on (counted from the head), and
/// deletes the positions after them up to the old tail; the header's tail and count follow.
fn rewrite_from(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    from: usize,
    values: &[&[u8]],
    batch: &mut Writes,
) -> Result<(), Reply> {
    let db = ctx.client.db;
    let room = || Reply::err("cairn: the list has no room at its tail");
    let base = opened
        .header
        .head
        .checked_add(u64::try_from(from).map_err(|_| room())?)
        .ok_or_else(room)?;
    let mut position = base;
    for value in values {
        batch.put(position_key(opened, db, position), value);
        position = position.checked_add(1).ok_or_else(room)?;
    }
    for stale in position..opened.header.tail {
        batch.delete(position_key(opened, db, stale));
    }
    opened.header.tail = position;
    opened.header.count = position - opened.header.head;
    Ok(())
}

/// `LREM key count element`: removes the first `count` elements equal to `element` (from the
/// tail for a negative count; all of them for 0); how many it removed.
pub(crate) fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let count = int_arg(at(args, 2))?;
        let target = at(args, 3);
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        if opened.is_new() {
            return Ok(Reply::Integer(0));
        }
        let values = elements(ctx, &opened)?;
        let limit = count.unsigned_abs();
        let mut remove = vec![false; values.len()];
        let mut removed = 0_u64;
        let order: Box<dyn Iterator<Item = usize>> = if count < 0 {
            Box::new((0..values.len()).rev())
        } else {
            Box::new(0..values.len())
        };
        for index in order {
            if values
                .get(index)
                .is_some_and(|value| value.as_bytes() == target)
            {
                if let Some(flag) = remove.get_mut(index) {
                    *flag = true;
                }
                removed += 1;
                if limit != 0 && removed == limit {
                    break;
                }
            }
        }
        let Some(first) = remove.iter().position(|flag| *flag) else {
            return Ok(Reply::Integer(0));
        };
        let kept: Vec<&[u8]> = values
            .iter()
            .zip(&remove)
            .skip(first)
            .filter(|(_, flag)| !**flag)
            .map(|(value, _)| value.as_bytes())
            .collect();
        let mut batch = Writes::new();
        rewrite_from(ctx, &mut opened, first, &kept, &mut batch)?;
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(count_reply(removed))
    };
    run().unwrap_or_else(|error| error)
}

/// `LINSERT key BEFORE|AFTER pivot element`: the list's new length, -1 when `pivot` is not
/// in it, 0 when there is no list.
pub(crate) fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let before = if is(at(args, 2), "before") {
            true
        } else if is(at(args, 2), "after") {
            false
        } else {
            return Err(syntax_error());
        };
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::List, now)?;
        if opened.is_new() {
            return Ok(Reply::Integer(0));
        }
        let values = elements(ctx, &opened)?;
        let Some(pivot) = values
            .iter()
            .position(|value| value.as_bytes() == at(args, 3))
        else {
            return Ok(Reply::Integer(-1));
        };
        let at_index = if before { pivot } else { pivot + 1 };
        let moved = values.get(at_index..).unwrap_or_default();
        let mut written: Vec<&[u8]> = Vec::with_capacity(moved.len() + 1);
        written.push(at(args, 4));
        written.extend(moved.iter().map(cairn::Value::as_bytes));
        let mut batch = Writes::new();
        rewrite_from(ctx, &mut opened, at_index, &written, &mut batch)?;
        ctx.save_collection(&opened, Kind::List, batch, now)?;
        Ok(count_reply(opened.header.count))
    };
    run().unwrap_or_else(|error| error)
}

/// `LPOS`'s options.
struct Search {
    /// Which match is the first reported: 1 the first from the head, -1 the first from the
    /// tail.
    rank: i64,
    /// `COUNT`: how many matches to report as an array (0: all); `None`: one, as an integer.
    count: Option<u64>,
    /// `MAXLEN`: how many elements to compare at most (0: all).
    maxlen: u64,
}

/// Parses `LPOS`'s options, with Redis's errors.
fn parse_search(args: &[Bytes]) -> Result<Search, Reply> {
    let mut search = Search {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut index = 3;
    while let Some(option) = args.get(index) {
        let value = args.get(index + 1);
        match value {
            Some(value) if is(option, "rank") => {
                let rank = int_arg(value)?;
                if rank == i64::MIN {
                    return Err(Reply::err(
                        "value is out of range, value must between -9223372036854775807 and \
                         9223372036854775807",
                    ));
                }
                if rank == 0 {
                    return Err(Reply::err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    ));
                }
                search.rank = rank;
            }
            Some(value) if is(option, "count") => {
                search.count = Some(non_negative(value, "COUNT can't be negative")?);
            }
            Some(value) if is(option, "maxlen") => {
                search.maxlen = non_negative(value, "MAXLEN can't be negative")?;
            }
            _ => return Err(syntax_error()),
        }
        index += 2;
    }
    Ok(search)
}

/// A non-negative integer argument, or the error `message` (for a negative one and for one
/// that is not an integer, as Redis answers both).
fn non_negative(value: &[u8], message: &str) -> Result<u64, Reply> {
    int_arg(value)
        .ok()
        .and_then(|value| u64::try_from(value).ok())
        .ok_or_else(|| Reply::err(message))
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`.
pub(crate) fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let search = parse_search(args)?;
        let absent = if search.count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Null
        };
        let now = now_millis();
        let Some((header, _)) = ctx.read_collection(at(args, 1), Kind::List, now)? else {
            return Ok(absent);
        };
        let prefix = keyspace::member_prefix(ctx.client.db, at(args, 1), header.version);
        let upper = prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let lower = Bound::Included(prefix);
        let target = at(args, 2);
        let forward = search.rank > 0;
        let rank = search.rank.unsigned_abs();
        let (mut index, mut matches) = (0_u64, 0_u64);
        let mut found = Vec::new();
        let each = |_: &[u8], value: &cairn::Value| {
            if search.maxlen != 0 && index >= search.maxlen {
                return false;
            }
            let here = index;
            index += 1;
            if value.as_bytes() != target {
                return true;
            }
            matches += 1;
            if matches < rank {
                return true;
            }
            found.push(if forward {
                here
            } else {
                header.count.saturating_sub(here + 1)
            });
            match search.count {
                None => false,
                Some(0) => true,
                Some(count) => matches - rank + 1 < count,
            }
        };
        if forward {
            ctx.scan(lower, upper, each)?;
        } else {
            ctx.scan_rev(lower, upper, each)?;
        }
        Ok(match search.count {
            Some(_) => Reply::Array(found.into_iter().map(count_reply).collect()),
            None => found
                .first()
                .map_or(Reply::Null, |index| count_reply(*index)),
        })
    };
    run().unwrap_or_else(|error| error)
}

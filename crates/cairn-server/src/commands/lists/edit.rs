//! Edits in the middle of a list, and its search: `LREM`, `LINSERT`, `LPOS`.
//!
//! Chunk ids run `head..tail` with no gaps, so removing or inserting in the middle rewrites
//! the chunks from the one holding the first change to the tail, packed full, and the
//! header, in one commit ([`chunks::rewrite_from`]). That is O(n) in the list's length, as
//! Redis's own `LREM` and `LINSERT` are. `LPOS` walks the list from either end and stops at
//! what it was asked for.

use bytes::Bytes;

use super::super::collection::{count_reply, Opened};
use super::super::strings::at;
use super::super::{int_arg, is, syntax_error, Ctx, Writes};
use super::chunks::{self, Found};
use crate::keyspace::{now_millis, Kind};
use crate::resp::Reply;

/// Every chunk of an opened list, and every element with the index of its chunk in the
/// first, head first.
fn elements(chunks: &[Found]) -> Result<Vec<(usize, &[u8])>, Reply> {
    let mut elements = Vec::new();
    for (at_chunk, chunk) in chunks.iter().enumerate() {
        elements.extend(
            chunk
                .elements()?
                .into_iter()
                .map(|element| (at_chunk, element)),
        );
    }
    Ok(elements)
}

/// Rewrites an opened list from the chunk holding element `first` (an index into
/// `elements`) on, with `elements` from that chunk's first element on, as `keep` leaves them
/// and with `insert` put before the element at `insert_at`: the writes, for the caller to
/// commit with the header.
fn rewrite(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    chunks: &[Found],
    elements: &[(usize, &[u8])],
    first: usize,
    mut keep: impl FnMut(usize) -> bool,
    insert: Option<(usize, &[u8])>,
) -> Result<Writes, Reply> {
    let damaged = || Reply::err("cairn: the list's chunks do not match its header");
    let (at_chunk, _) = *elements.get(first).ok_or_else(damaged)?;
    let chunk = chunks.get(at_chunk).ok_or_else(damaged)?;
    let from = usize::try_from(chunk.start).map_err(|_| damaged())?;
    let mut written: Vec<&[u8]> = Vec::with_capacity(elements.len() - from + 1);
    for (index, (_, element)) in elements.iter().enumerate().skip(from) {
        if let Some((insert_at, inserted)) = insert {
            if insert_at == index {
                written.push(inserted);
            }
        }
        if keep(index) {
            written.push(element);
        }
    }
    if let Some((insert_at, inserted)) = insert {
        if insert_at == elements.len() {
            written.push(inserted);
        }
    }
    let mut batch = Writes::new();
    chunks::rewrite_from(ctx, opened, chunk.id, chunk.start, &written, &mut batch)?;
    Ok(batch)
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
        let found = chunks::all(ctx, &opened)?;
        let values = elements(&found)?;
        let limit = count.unsigned_abs();
        let mut remove = vec![false; values.len()];
        let mut removed = 0_u64;
        let order: Box<dyn Iterator<Item = usize>> = if count < 0 {
            Box::new((0..values.len()).rev())
        } else {
            Box::new(0..values.len())
        };
        for index in order {
            if values.get(index).is_some_and(|(_, value)| *value == target) {
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
        let batch = rewrite(
            ctx,
            &mut opened,
            &found,
            &values,
            first,
            |index| !remove.get(index).copied().unwrap_or(false),
            None,
        )?;
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
        let found = chunks::all(ctx, &opened)?;
        let values = elements(&found)?;
        let Some(pivot) = values.iter().position(|(_, value)| *value == at(args, 3)) else {
            return Ok(Reply::Integer(-1));
        };
        let at_index = if before { pivot } else { pivot + 1 };
        let batch = rewrite(
            ctx,
            &mut opened,
            &found,
            &values,
            pivot,
            |_| true,
            Some((at_index, at(args, 4))),
        )?;
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
        let Some((header, deadline)) = ctx.read_collection(at(args, 1), Kind::List, now)? else {
            return Ok(absent);
        };
        let opened = Opened::existing(ctx, at(args, 1), header, deadline)?;
        let target = at(args, 2);
        let forward = search.rank > 0;
        let rank = search.rank.unsigned_abs();
        let (mut index, mut matches) = (0_u64, 0_u64);
        let mut found = Vec::new();
        let mut each = |value: &[u8]| {
            if search.maxlen != 0 && index >= search.maxlen {
                return false;
            }
            let here = index;
            index += 1;
            if value != target {
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
        chunks::walk(ctx, &opened, forward, |chunk| {
            let elements = chunk.elements()?;
            Ok(if forward {
                elements.into_iter().all(&mut each)
            } else {
                elements.into_iter().rev().all(&mut each)
            })
        })?;
        Ok(match search.count {
            Some(_) => Reply::Array(found.into_iter().map(count_reply).collect()),
            None => found
                .first()
                .map_or(Reply::Null, |index| count_reply(*index)),
        })
    };
    run().unwrap_or_else(|error| error)
}

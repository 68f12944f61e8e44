//! Range reads and removals over a sorted set: `ZRANGE` (by rank, `BYSCORE` or `BYLEX`, `REV`,
//! `LIMIT`, `WITHSCORES`) and the older commands it stands for (`ZREVRANGE`,
//! `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`, `ZRANGEBYLEX`, `ZREVRANGEBYLEX`), `ZRANGESTORE`,
//! `ZCOUNT`, `ZLEXCOUNT`, and `ZREMRANGEBYSCORE`, `ZREMRANGEBYRANK`, `ZREMRANGEBYLEX`.
//!
//! Options and errors are checked in the order Redis's `zrangeGenericCommand` checks them:
//! the options, their conflicts, the range itself, and only then the key and its type. A score
//! range walks the score records; a lex range walks the element records, which are in member
//! byte order, so it is Redis's lex order when every score is equal (the only case Redis
//! defines: with mixed scores Cairn returns the members in byte order, Redis in an order of its
//! skip list).

use std::ops::Bound;

use bytes::Bytes;

use super::super::collection::{count_reply, with_collection, Opened};
use super::super::store::prefix_end;
use super::super::strings::at;
use super::super::{int_arg, is, syntax_error, Ctx};
use super::{
    all_scores, by_score, members_reply, parse_score, remove_members, score_of, store_members,
    Scored,
};
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::Reply;

/// What a range selects.
enum Span {
    /// Ranks `start..=stop`, a negative one counting from the end.
    Rank(i64, i64),
    /// Scores from the first bound to the second, each (score, excluded).
    Score((f64, bool), (f64, bool)),
    /// Members from the first bound to the second, in byte order.
    Lex(LexBound, LexBound),
}

/// One end of a lex range, as Redis writes it: `-`, `+`, `[member` or `(member`.
enum LexBound {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    Included(Vec<u8>),
    Excluded(Vec<u8>),
}

impl LexBound {
    fn parse(text: &[u8]) -> Option<LexBound> {
        match text.split_first() {
            Some((b'-', [])) => Some(LexBound::Lowest),
            Some((b'+', [])) => Some(LexBound::Highest),
            Some((b'[', member)) => Some(LexBound::Included(member.to_vec())),
            Some((b'(', member)) => Some(LexBound::Excluded(member.to_vec())),
            _ => None,
        }
    }
}

/// The kind of range a command reads: fixed by its name, or (`Auto`) chosen by its options.
#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range command.
struct RangeQuery {
    span: Span,
    rev: bool,
    with_scores: bool,
    /// `LIMIT offset count`: members skipped and taken at most.
    limit: Option<(usize, usize)>,
}

/// Parses the range at `args[first]` and `args[first + 1]` and the options after it. `by` and
/// `rev` are what the command's name fixes (`None`: the options choose); a `store` command
/// takes no `WITHSCORES`.
fn parse_range(
    args: &[Bytes],
    first: usize,
    by: By,
    rev: Option<bool>,
    store: bool,
) -> Result<RangeQuery, Reply> {
    let (mut by, mut rev) = (by, rev);
    let mut with_scores = false;
    let (mut offset, mut count) = (0, -1);
    let mut index = first + 2;
    while let Some(option) = args.get(index) {
        let left = args.len() - index - 1;
        if !store && is(option, "withscores") {
            with_scores = true;
        } else if is(option, "limit") && left >= 2 {
            offset = int_arg(at(args, index + 1))?;
            count = int_arg(at(args, index + 2))?;
            index += 2;
        } else if rev.is_none() && is(option, "rev") {
            rev = Some(true);
        } else if by == By::Auto && is(option, "bylex") {
            by = By::Lex;
        } else if by == By::Auto && is(option, "byscore") {
            by = By::Score;
        } else {
            return Err(syntax_error());
        }
        index += 1;
    }
    let rev = rev.unwrap_or(false);
    if count != -1 && matches!(by, By::Auto | By::Rank) {
        return Err(Reply::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && by == By::Lex {
        return Err(Reply::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut low, mut high) = (at(args, first), at(args, first + 1));
    if rev && matches!(by, By::Score | By::Lex) {
        // Given as max, then min.
        std::mem::swap(&mut low, &mut high);
    }
    let span = parse_span(by, low, high)?;
    // A negative offset selects nothing (after the key's type is checked); a negative count
    // means all.
    let limit = (offset != 0 || count != -1).then(|| match usize::try_from(offset) {
        Ok(offset) => (offset, usize::try_from(count).unwrap_or(usize::MAX)),
        Err(_) => (0, 0),
    });
    Ok(RangeQuery {
        span,
        rev,
        with_scores,
        limit,
    })
}

/// The range from `low` to `high` (min to max), read as `by` says, or Redis's error.
fn parse_span(by: By, low: &[u8], high: &[u8]) -> Result<Span, Reply> {
    Ok(match by {
        By::Score => match (parse_bound(low), parse_bound(high)) {
            (Some(min), Some(max)) => Span::Score(min, max),
            _ => return Err(Reply::err("min or max is not a float")),
        },
        By::Lex => {
            let (min, max) = lex_bounds(low, high)?;
            Span::Lex(min, max)
        }
        By::Auto | By::Rank => Span::Rank(int_arg(low)?, int_arg(high)?),
    })
}

/// The two ends of a lex range, or Redis's error for either.
fn lex_bounds(min: &[u8], max: &[u8]) -> Result<(LexBound, LexBound), Reply> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(min), Some(max)) => Ok((min, max)),
        _ => Err(Reply::err("min or max not valid string range item")),
    }
}

/// One end of a score range: a score and whether it is excluded (`(`).
fn parse_bound(text: &[u8]) -> Option<(f64, bool)> {
    match text.split_first() {
        Some((b'(', rest)) => parse_score(rest).map(|score| (score, true)),
        _ => parse_score(text).map(|score| (score, false)),
    }
}

/// The members `query` selects, in the reply's order, as (score, member).
fn select(ctx: &Ctx<'_>, opened: &Opened, query: &RangeQuery) -> Result<Scored, Reply> {
    let (skip, take) = query.limit.unwrap_or((0, usize::MAX));
    match &query.span {
        Span::Score(min, max) => {
            let mut members = in_score_range(ctx, opened, *min, *max)?;
            if query.rev {
                members.reverse();
            }
            Ok(members.into_iter().skip(skip).take(take).collect())
        }
        Span::Lex(min, max) => in_lex_range(ctx, opened, (min, max), query.rev, skip, take),
        Span::Rank(start, stop) => {
            let Some((first, last)) = rank_range(*start, *stop, opened.header.count) else {
                return Ok(Vec::new());
            };
            let take = usize::try_from(last - first + 1).unwrap_or(0);
            if !query.rev {
                let skip = usize::try_from(first).unwrap_or(usize::MAX);
                return by_score(ctx, opened, all_scores(ctx, opened), skip, take);
            }
            // Ranks counted from the highest score: forward ranks len-1-last ..= len-1-first.
            let len = opened.header.count;
            let skip = usize::try_from(len - 1 - last).unwrap_or(usize::MAX);
            let mut members = by_score(ctx, opened, all_scores(ctx, opened), skip, take)?;
            members.reverse();
            Ok(members)
        }
    }
}

/// The members between two lex bounds, in byte order (`rev`: from the last), skipping `skip`
/// and taking at most `take`, as (score, member).
fn in_lex_range(
    ctx: &Ctx<'_>,
    opened: &Opened,
    (min, max): (&LexBound, &LexBound),
    rev: bool,
    skip: usize,
    take: usize,
) -> Result<Scored, Reply> {
    let prefix = keyspace::member_prefix(ctx.client.db, &opened.key, opened.header.version);
    let engine_key = |member: &[u8]| {
        let mut key = prefix.clone();
        key.extend_from_slice(member);
        key
    };
    let lower = match min {
        LexBound::Lowest => Bound::Included(prefix.clone()),
        LexBound::Highest => return Ok(Vec::new()),
        LexBound::Included(member) => Bound::Included(engine_key(member)),
        LexBound::Excluded(member) => Bound::Excluded(engine_key(member)),
    };
    let upper = match max {
        LexBound::Lowest => return Ok(Vec::new()),
        LexBound::Highest => prefix_end(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
        LexBound::Included(member) => Bound::Included(engine_key(member)),
        LexBound::Excluded(member) => Bound::Excluded(engine_key(member)),
    };
    // An empty range: its ends cross, or meet with one of them excluded.
    if let (
        Bound::Included(low) | Bound::Excluded(low),
        Bound::Included(high) | Bound::Excluded(high),
    ) = (&lower, &upper)
    {
        let open = matches!(lower, Bound::Excluded(_)) || matches!(upper, Bound::Excluded(_));
        if low > high || (low == high && open) {
            return Ok(Vec::new());
        }
    }
    let mut members = Vec::new();
    let mut seen = 0;
    let mut damaged = false;
    let each = |key: &[u8], value: &cairn::Value| {
        seen += 1;
        if seen > skip {
            let member = key.get(prefix.len()..).unwrap_or_default().to_vec();
            match score_of(value) {
                Some(score) => members.push((score, member)),
                None => damaged = true,
            }
        }
        members.len() < take && !damaged
    };
    if take == 0 {
        return Ok(members);
    }
    if rev {
        ctx.scan_rev(lower, upper, each)?;
    } else {
        ctx.scan(lower, upper, each)?;
    }
    if damaged {
        return Err(Reply::err("cairn: a sorted-set element record is damaged"));
    }
    Ok(members)
}

/// The members whose scores lie between `min` and `max` (each a score and whether it is
/// excluded), in score order.
fn in_score_range(
    ctx: &Ctx<'_>,
    opened: &Opened,
    min: (f64, bool),
    max: (f64, bool),
) -> Result<Scored, Reply> {
    let prefix = keyspace::score_prefix(ctx.client.db, &opened.key, opened.header.version);
    let at_score = |score: f64| {
        let mut key = prefix.clone();
        key.extend_from_slice(&keyspace::sortable_score(score));
        key
    };
    // The first key past every member with `score`: the next sortable score.
    let after_score = |score: f64| {
        let next = u64::from_be_bytes(keyspace::sortable_score(score)).saturating_add(1);
        let mut key = prefix.clone();
        key.extend_from_slice(&next.to_be_bytes());
        key
    };
    let lower = if min.1 {
        Bound::Included(after_score(min.0))
    } else {
        Bound::Included(at_score(min.0))
    };
    let upper = if max.1 {
        Bound::Excluded(at_score(max.0))
    } else {
        Bound::Excluded(after_score(max.0))
    };
    let reversed = match (&lower, &upper) {
        (Bound::Included(low), Bound::Excluded(high)) => low >= high,
        _ => false,
    };
    if reversed {
        return Ok(Vec::new());
    }
    let members = by_score(ctx, opened, (lower, upper), 0, usize::MAX)?;
    Ok(members
        .into_iter()
        .filter(|(score, _)| {
            (if min.1 {
                *score > min.0
            } else {
                *score >= min.0
            }) && (if max.1 {
                *score < max.0
            } else {
                *score <= max.0
            })
        })
        .collect())
}

/// `start`..=`stop` (negative counting from the end) clamped to a set of `len` members, as
/// `ZRANGE` reads ranks; `None` when empty.
fn rank_range(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let first = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let last = if stop < 0 {
        len.saturating_add(stop)
    } else {
        stop
    }
    .min(len - 1);
    if first > last || first >= len {
        return None;
    }
    Some((u64::try_from(first).ok()?, u64::try_from(last).ok()?))
}

/// Parses and runs a range read of the sorted set under `args[1]`.
fn range_command(ctx: &Ctx<'_>, args: &[Bytes], by: By, rev: Option<bool>) -> Reply {
    let query = match parse_range(args, 2, by, rev, false) {
        Ok(query) => query,
        Err(error) => return error,
    };
    with_collection(ctx, args, Kind::ZSet, Reply::Array(Vec::new()), |opened| {
        let members = select(ctx, opened, &query)?;
        Ok(members_reply(
            members,
            query.with_scores,
            ctx.client.protocol,
        ))
    })
}

/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`.
pub(crate) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, By::Auto, None)
}

/// `ZREVRANGE key start stop [WITHSCORES]`.
pub(crate) fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, By::Rank, Some(true))
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`.
pub(crate) fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, By::Score, Some(false))
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`.
pub(crate) fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, By::Score, Some(true))
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`.
pub(crate) fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, By::Lex, Some(false))
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`.
pub(crate) fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, By::Lex, Some(true))
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`: the range of
/// `src` replaces `dst` (or deletes it when empty); its size.
pub(crate) fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let query = parse_range(args, 3, By::Auto, None, true)?;
        let now = now_millis();
        let (destination, source) = (at(args, 1), at(args, 2));
        let meta_keys = [ctx.meta_key(destination)?, ctx.meta_key(source)?];
        let _locks = ctx.lock(&meta_keys);
        let members = match ctx.read_collection(source, Kind::ZSet, now)? {
            None => Vec::new(),
            Some((header, deadline)) => select(
                ctx,
                &Opened::existing(ctx, source, header, deadline)?,
                &query,
            )?,
        };
        store_members(ctx, destination, &members, now)
    };
    run().unwrap_or_else(|error| error)
}

/// `ZCOUNT key min max`.
pub(crate) fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let bad = || Reply::err("min or max is not a float");
    let (Some(min), Some(max)) = (parse_bound(at(args, 2)), parse_bound(at(args, 3))) else {
        return bad();
    };
    with_collection(ctx, args, Kind::ZSet, Reply::Integer(0), |opened| {
        let members = in_score_range(ctx, opened, min, max)?;
        Ok(count_reply(
            u64::try_from(members.len()).unwrap_or(u64::MAX),
        ))
    })
}

/// `ZLEXCOUNT key min max`.
pub(crate) fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (min, max) = match lex_bounds(at(args, 2), at(args, 3)) {
        Ok(bounds) => bounds,
        Err(error) => return error,
    };
    with_collection(ctx, args, Kind::ZSet, Reply::Integer(0), |opened| {
        let members = in_lex_range(ctx, opened, (&min, &max), false, 0, usize::MAX)?;
        Ok(count_reply(
            u64::try_from(members.len()).unwrap_or(u64::MAX),
        ))
    })
}

/// `ZREMRANGEBYSCORE key min max`, `ZREMRANGEBYRANK key start stop` and `ZREMRANGEBYLEX key
/// min max`: removes the members in the range, and returns how many.
fn remove_range(ctx: &Ctx<'_>, args: &[Bytes], by: By) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let span = parse_span(by, at(args, 2), at(args, 3))?;
        let query = RangeQuery {
            span,
            rev: false,
            with_scores: false,
            limit: None,
        };
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::ZSet, now)?;
        if opened.is_new() {
            return Ok(Reply::Integer(0));
        }
        let members = select(ctx, &opened, &query)?;
        let batch = remove_members(ctx, &mut opened, &members);
        ctx.save_collection(&opened, Kind::ZSet, batch, now)?;
        Ok(count_reply(
            u64::try_from(members.len()).unwrap_or(u64::MAX),
        ))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_range(ctx, args, By::Score)
}

pub(crate) fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_range(ctx, args, By::Rank)
}

pub(crate) fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_range(ctx, args, By::Lex)
}

//! Sorted-set commands: `ZADD` (NX, XX, GT, LT, CH, INCR), `ZINCRBY`, `ZSCORE`, `ZMSCORE`,
//! `ZCARD`, `ZCOUNT`, `ZRANK`, `ZREVRANK`, `ZREM`, `ZRANGE` (by rank or `BYSCORE`, `REV`,
//! `LIMIT`, `WITHSCORES`; not `BYLEX`), `ZREVRANGE`, `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`,
//! `ZPOPMIN`, `ZPOPMAX`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYRANK`, `ZSCAN`. A member has two records:
//! its element record (value: the score, 8 bytes little-endian) for lookups, and a score
//! record (`keyspace::score_prefix`, then the
//! sortable score and the member) for order. Both change in one commit. Scores print as
//! Redis 7.0 prints them (`%.17g`, `resp::reply::format_g17`).

use super::Writes;
use bytes::Bytes;

use super::collection::{count_reply, remove_elements, scan_collection, with_collection, Opened};
use super::strings::at;
use super::{int_arg, is, syntax_error, Ctx};
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::reply::format_g17;
use crate::resp::Reply;

/// A score argument as Redis reads one: a float, `inf`, `+inf` or `-inf`; never NaN.
fn parse_score(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

fn not_a_float() -> Reply {
    Reply::err("value is not a valid float")
}

fn score_of(value: &cairn::Value) -> Option<f64> {
    value.as_bytes().try_into().ok().map(f64::from_le_bytes)
}

/// `ZADD`'s flags.
#[derive(Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one flag per option, as the command has"
)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// Writes `member`'s new score into `batch` (replacing its score record).
fn set_score(
    opened: &Opened,
    db: u8,
    batch: &mut Writes,
    member: &[u8],
    old: Option<f64>,
    new: f64,
) {
    if let Some(old) = old {
        batch.delete(opened.score_key(db, old, member));
    }
    batch.put(opened.member_key(db, member), new.to_le_bytes());
    batch.put(opened.score_key(db, new, member), b"");
}

pub(crate) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let mut flags = AddFlags::default();
        let mut index = 2;
        while let Some(option) = args.get(index) {
            let flag = match option.to_ascii_lowercase().as_slice() {
                b"nx" => &mut flags.nx,
                b"xx" => &mut flags.xx,
                b"gt" => &mut flags.gt,
                b"lt" => &mut flags.lt,
                b"ch" => &mut flags.ch,
                b"incr" => &mut flags.incr,
                _ => break,
            };
            *flag = true;
            index += 1;
        }
        let pairs = args.get(index..).unwrap_or_default();
        if pairs.is_empty() || pairs.len() % 2 == 1 {
            return Err(syntax_error());
        }
        if flags.nx && flags.xx {
            return Err(Reply::err(
                "XX and NX options at the same time are not compatible",
            ));
        }
        if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
            return Err(Reply::err(
                "GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if flags.incr && pairs.len() > 2 {
            return Err(Reply::err(
                "INCR option supports a single increment-element pair",
            ));
        }
        let mut parsed = Vec::with_capacity(pairs.len() / 2);
        for pair in pairs.chunks(2) {
            let [score, member] = pair else { continue };
            parsed.push((parse_score(score).ok_or_else(not_a_float)?, member));
        }
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::ZSet, now)?;
        let db = ctx.client.db;
        let mut batch = Writes::new();
        let mut scores: std::collections::HashMap<&[u8], Option<f64>> =
            std::collections::HashMap::new();
        let (mut added, mut changed) = (0, 0);
        let mut incr_result = None;
        for (score, member) in parsed {
            let old = match scores.get(&member[..]) {
                Some(old) => *old,
                None => ctx
                    .element(&opened.member_key(db, member))?
                    .as_ref()
                    .and_then(score_of),
            };
            if (flags.nx && old.is_some()) || (flags.xx && old.is_none()) {
                continue;
            }
            let new = if flags.incr {
                old.unwrap_or(0.0) + score
            } else {
                score
            };
            if new.is_nan() {
                return Err(Reply::err("resulting score is not a number (NaN)"));
            }
            if let Some(old) = old {
                if (flags.gt && new <= old) || (flags.lt && new >= old) {
                    continue;
                }
                // As Redis compares (so -0 and 0 are the same score).
                if new.partial_cmp(&old) != Some(std::cmp::Ordering::Equal) {
                    set_score(&opened, db, &mut batch, member, Some(old), new);
                    changed += 1;
                }
            } else {
                set_score(&opened, db, &mut batch, member, None, new);
                opened.header.count += 1;
                added += 1;
            }
            incr_result = Some(new);
            scores.insert(member, Some(new));
        }
        ctx.save_collection(&opened, Kind::ZSet, batch, now)?;
        Ok(if flags.incr {
            incr_result.map_or(Reply::Null, Reply::Double)
        } else if flags.ch {
            Reply::Integer(added + changed)
        } else {
            Reply::Integer(added)
        })
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some((key, increment, member)) = args
        .get(1)
        .zip(args.get(2))
        .zip(args.get(3))
        .map(|((key, increment), member)| (key.clone(), increment.clone(), member.clone()))
    else {
        return super::wrong_arity("zincrby");
    };
    let rewritten = [
        Bytes::from_static(b"zadd"),
        key,
        Bytes::from_static(b"incr"),
        increment,
        member,
    ];
    zadd(ctx, &rewritten)
}

pub(crate) fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::ZSet, Reply::Null, |opened| {
        let value = ctx.element(&opened.member_key(db, at(args, 2)))?;
        Ok(value
            .as_ref()
            .and_then(score_of)
            .map_or(Reply::Null, Reply::Double))
    })
}

pub(crate) fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::ZSet, Reply::Integer(0), |opened| {
        Ok(count_reply(opened.header.count))
    })
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT n]`: members and their scores, the scores as
/// bulk strings in either protocol, as Redis sends them (`collection::scan_collection`).
pub(crate) fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    scan_collection(ctx, args, Kind::ZSet, |value| {
        score_of(value).map(|score| Reply::bulk(format_g17(score)))
    })
}

pub(crate) fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    remove_elements(ctx, args, Kind::ZSet, |opened, member, value, batch| {
        if let Some(score) = score_of(value) {
            batch.delete(opened.score_key(db, score, member));
        }
    })
}

/// The sorted set's members in score order, as (score, member), from `from` (an engine key
/// bound) on, skipping `skip` and taking at most `take`.
fn by_score(
    ctx: &Ctx<'_>,
    opened: &Opened,
    range: (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>),
    skip: usize,
    take: usize,
) -> Result<Vec<(f64, Vec<u8>)>, Reply> {
    scored(ctx, opened, range, skip, take, false)
}

/// The sorted set's `take` members of highest score, highest first, as (score, member).
fn highest(ctx: &Ctx<'_>, opened: &Opened, take: usize) -> Result<Vec<(f64, Vec<u8>)>, Reply> {
    scored(ctx, opened, all_scores(ctx, opened), 0, take, true)
}

/// The members whose score records lie in `range`, in score order (`reverse`: highest
/// first), skipping `skip` and taking at most `take`: what [`by_score`] and [`highest`] read.
fn scored(
    ctx: &Ctx<'_>,
    opened: &Opened,
    range: (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>),
    skip: usize,
    take: usize,
    reverse: bool,
) -> Result<Vec<(f64, Vec<u8>)>, Reply> {
    let prefix = keyspace::score_prefix(ctx.client.db, &opened.key, opened.header.version);
    let mut members = Vec::new();
    let mut seen = 0;
    if take == 0 {
        return Ok(members);
    }
    let each = |engine_key: &[u8], _: &cairn::Value| {
        seen += 1;
        if seen > skip {
            let rest = engine_key.get(prefix.len()..).unwrap_or_default();
            if let Some((sortable, member)) = rest.split_first_chunk::<8>() {
                members.push((keyspace::score_from_sortable(*sortable), member.to_vec()));
            }
        }
        members.len() < take
    };
    if reverse {
        ctx.scan_rev(range.0, range.1, each)?;
    } else {
        ctx.scan(range.0, range.1, each)?;
    }
    Ok(members)
}

fn members_reply(members: Vec<(f64, Vec<u8>)>, with_scores: bool) -> Reply {
    let mut items = Vec::with_capacity(members.len() * 2);
    for (score, member) in members {
        items.push(Reply::Bulk(Bytes::from(member)));
        if with_scores {
            items.push(Reply::Double(score));
        }
    }
    Reply::Array(items)
}

/// The whole score range of a sorted set, as engine-key bounds.
fn all_scores(
    ctx: &Ctx<'_>,
    opened: &Opened,
) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    let prefix = keyspace::score_prefix(ctx.client.db, &opened.key, opened.header.version);
    let mut end = prefix.clone();
    end.extend_from_slice(&[0xff; 9]);
    (
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Excluded(end),
    )
}

/// A parsed `ZRANGE` (and the older range commands it stands for).
struct RangeQuery<'a> {
    start: &'a [u8],
    stop: &'a [u8],
    by_score: bool,
    rev: bool,
    with_scores: bool,
    /// `LIMIT offset count`: members skipped and taken (a negative count: all).
    limit: Option<(usize, usize)>,
}

/// Parses `start stop` and the options from `args[options_at..]`. `fixed` holds options the
/// command name implies (`ZREVRANGE`'s `REV`, `ZRANGEBYSCORE`'s `BYSCORE`); the old forms
/// accept only `WITHSCORES` and (by score) `LIMIT`.
fn parse_range(
    args: &[Bytes],
    by_score: bool,
    rev: bool,
    modern: bool,
) -> Result<RangeQuery<'_>, Reply> {
    let mut query = RangeQuery {
        start: at(args, 2),
        stop: at(args, 3),
        by_score,
        rev,
        with_scores: false,
        limit: None,
    };
    let mut by_lex = false;
    let mut limit_count = -1;
    let mut options = args.get(4..).unwrap_or_default().iter();
    while let Some(option) = options.next() {
        if is(option, "withscores") {
            query.with_scores = true;
        } else if is(option, "limit") && (modern || by_score) {
            let (Some(offset), Some(count)) = (options.next(), options.next()) else {
                return Err(syntax_error());
            };
            let offset = int_arg(offset)?;
            let count = int_arg(count)?;
            limit_count = count;
            // A negative offset selects nothing (after the key's type is checked); a
            // negative count means all.
            query.limit = Some(match usize::try_from(offset) {
                Ok(offset) => (offset, usize::try_from(count).unwrap_or(usize::MAX)),
                Err(_) => (0, 0),
            });
        } else if modern && is(option, "byscore") {
            query.by_score = true;
        } else if modern && is(option, "rev") {
            query.rev = true;
        } else if modern && is(option, "bylex") {
            by_lex = true;
        } else {
            return Err(syntax_error());
        }
    }
    if by_lex && query.with_scores {
        return Err(Reply::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if by_lex {
        return Err(Reply::err("ZRANGE BYLEX is not supported by Cairn"));
    }
    // As Redis checks it: a by-rank range may carry `LIMIT offset -1`, which it ignores.
    if limit_count != -1 && !query.by_score {
        return Err(Reply::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    Ok(query)
}

/// Runs a parsed range against the sorted set under `args[1]`.
fn run_range(ctx: &mut Ctx<'_>, args: &[Bytes], query: &RangeQuery<'_>) -> Reply {
    if query.by_score {
        // `REV` reads the range from max to min: its first bound is the maximum.
        let (min, max) = if query.rev {
            (query.stop, query.start)
        } else {
            (query.start, query.stop)
        };
        let bad = || Reply::err("min or max is not a float");
        let (Some(min), Some(max)) = (parse_bound(min), parse_bound(max)) else {
            return bad();
        };
        let (skip, take) = query.limit.unwrap_or((0, usize::MAX));
        return with_collection(ctx, args, Kind::ZSet, Reply::Array(Vec::new()), |opened| {
            let mut members = in_score_range(ctx, opened, min, max)?;
            if query.rev {
                members.reverse();
            }
            let members: Vec<_> = members.into_iter().skip(skip).take(take).collect();
            Ok(members_reply(members, query.with_scores))
        });
    }
    let (start, stop) = match (int_arg(query.start), int_arg(query.stop)) {
        (Ok(start), Ok(stop)) => (start, stop),
        (Err(error), _) | (_, Err(error)) => return error,
    };
    with_collection(ctx, args, Kind::ZSet, Reply::Array(Vec::new()), |opened| {
        let Some((first, last)) = rank_range(start, stop, opened.header.count) else {
            return Ok(Reply::Array(Vec::new()));
        };
        let take = usize::try_from(last - first + 1).unwrap_or(0);
        if !query.rev {
            let skip = usize::try_from(first).unwrap_or(usize::MAX);
            let members = by_score(ctx, opened, all_scores(ctx, opened), skip, take)?;
            return Ok(members_reply(members, query.with_scores));
        }
        // Ranks counted from the highest score: forward ranks len-1-last ..= len-1-first.
        let len = opened.header.count;
        let skip = usize::try_from(len - 1 - last).unwrap_or(usize::MAX);
        let mut members = by_score(ctx, opened, all_scores(ctx, opened), skip, take)?;
        members.reverse();
        Ok(members_reply(members, query.with_scores))
    })
}

/// Parses and runs one of the range commands.
fn range_command(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    by_score: bool,
    rev: bool,
    modern: bool,
) -> Reply {
    match parse_range(args, by_score, rev, modern) {
        Ok(query) => run_range(ctx, args, &query),
        Err(error) => error,
    }
}

/// `ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count] [WITHSCORES]`.
pub(crate) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, false, false, true)
}

/// `ZREVRANGE key start stop [WITHSCORES]`.
pub(crate) fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, false, true, false)
}

/// One end of a `ZRANGEBYSCORE` range: a score and whether it is excluded (`(`).
fn parse_bound(text: &[u8]) -> Option<(f64, bool)> {
    match text.split_first() {
        Some((b'(', rest)) => parse_score(rest).map(|score| (score, true)),
        _ => parse_score(text).map(|score| (score, false)),
    }
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`.
pub(crate) fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, true, false, false)
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`.
pub(crate) fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    range_command(ctx, args, true, true, false)
}

/// The members whose scores lie between `min` and `max` (each a score and whether it is
/// excluded), in score order.
fn in_score_range(
    ctx: &Ctx<'_>,
    opened: &Opened,
    min: (f64, bool),
    max: (f64, bool),
) -> Result<Vec<(f64, Vec<u8>)>, Reply> {
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
        std::ops::Bound::Included(after_score(min.0))
    } else {
        std::ops::Bound::Included(at_score(min.0))
    };
    let upper = if max.1 {
        std::ops::Bound::Excluded(at_score(max.0))
    } else {
        std::ops::Bound::Excluded(after_score(max.0))
    };
    let reversed = match (&lower, &upper) {
        (std::ops::Bound::Included(low), std::ops::Bound::Excluded(high)) => low >= high,
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

pub(crate) fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank(ctx, args, false)
}

pub(crate) fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rank(ctx, args, true)
}

/// `ZRANK` and (`rev`) `ZREVRANK`: how many members sort before `args[2]`.
fn rank(ctx: &Ctx<'_>, args: &[Bytes], rev: bool) -> Reply {
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::ZSet, Reply::Null, |opened| {
        let member = at(args, 2);
        let Some(score) = ctx
            .element(&opened.member_key(db, member))?
            .as_ref()
            .and_then(score_of)
        else {
            return Ok(Reply::Null);
        };
        let (lower, _) = all_scores(ctx, opened);
        let below = by_score(
            ctx,
            opened,
            (
                lower,
                std::ops::Bound::Excluded(opened.score_key(db, score, member)),
            ),
            0,
            usize::MAX,
        )?
        .len();
        let below = u64::try_from(below).unwrap_or(u64::MAX);
        Ok(count_reply(if rev {
            opened.header.count - 1 - below
        } else {
            below
        }))
    })
}

pub(crate) fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let absent = Reply::Array(vec![Reply::Null; args.len().saturating_sub(2)]);
    with_collection(ctx, args, Kind::ZSet, absent, |opened| {
        let mut scores = Vec::with_capacity(args.len().saturating_sub(2));
        for member in args.iter().skip(2) {
            let value = ctx.element(&opened.member_key(db, member))?;
            scores.push(
                value
                    .as_ref()
                    .and_then(score_of)
                    .map_or(Reply::Null, Reply::Double),
            );
        }
        Ok(Reply::Array(scores))
    })
}

/// Deletes `members` (each a score and member) from the sorted set, both records of each.
fn remove_members(ctx: &Ctx<'_>, opened: &mut Opened, members: &[(f64, Vec<u8>)]) -> Writes {
    let db = ctx.client.db;
    let mut batch = Writes::new();
    for (score, member) in members {
        batch.delete(opened.member_key(db, member));
        batch.delete(opened.score_key(db, *score, member));
        opened.header.count -= 1;
    }
    batch
}

/// `ZPOPMIN` and (`max`) `ZPOPMAX key [count]`.
fn zpop(ctx: &Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let count = match args.get(2) {
            None => 1,
            Some(count) => usize::try_from(int_arg(count)?)
                .map_err(|_| Reply::err("value is out of range, must be positive"))?,
        };
        if args.len() > 3 {
            return Err(syntax_error());
        }
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::ZSet, now)?;
        if opened.is_new() {
            return Ok(Reply::Array(Vec::new()));
        }
        let members = if max {
            highest(ctx, &opened, count)?
        } else {
            by_score(ctx, &opened, all_scores(ctx, &opened), 0, count)?
        };
        let batch = remove_members(ctx, &mut opened, &members);
        ctx.save_collection(&opened, Kind::ZSet, batch, now)?;
        // Under RESP3 a pop with a count returns [member, score] pairs, as Redis's does.
        if args.len() == 3 && ctx.client.protocol == crate::resp::Protocol::Resp3 {
            let pairs = members
                .into_iter()
                .map(|(score, member)| {
                    Reply::Array(vec![Reply::Bulk(Bytes::from(member)), Reply::Double(score)])
                })
                .collect();
            return Ok(Reply::Array(pairs));
        }
        Ok(members_reply(members, true))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    zpop(ctx, args, false)
}

pub(crate) fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    zpop(ctx, args, true)
}

/// `ZREMRANGEBYSCORE key min max` and (`by_rank`) `ZREMRANGEBYRANK key start stop`: removes
/// the members in the range, and returns how many.
fn remove_range(ctx: &Ctx<'_>, args: &[Bytes], by_rank: bool) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let range = if by_rank {
            Err((int_arg(at(args, 2))?, int_arg(at(args, 3))?))
        } else {
            let bad = || Reply::err("min or max is not a float");
            Ok((
                parse_bound(at(args, 2)).ok_or_else(bad)?,
                parse_bound(at(args, 3)).ok_or_else(bad)?,
            ))
        };
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::ZSet, now)?;
        if opened.is_new() {
            return Ok(Reply::Integer(0));
        }
        let members = match range {
            Ok((min, max)) => in_score_range(ctx, &opened, min, max)?,
            Err((start, stop)) => match rank_range(start, stop, opened.header.count) {
                Some((first, last)) => {
                    let skip = usize::try_from(first).unwrap_or(usize::MAX);
                    let take = usize::try_from(last - first + 1).unwrap_or(0);
                    by_score(ctx, &opened, all_scores(ctx, &opened), skip, take)?
                }
                None => Vec::new(),
            },
        };
        let batch = remove_members(ctx, &mut opened, &members);
        ctx.save_collection(&opened, Kind::ZSet, batch, now)?;
        Ok(Reply::Integer(
            i64::try_from(members.len()).unwrap_or(i64::MAX),
        ))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_range(ctx, args, false)
}

pub(crate) fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_range(ctx, args, true)
}

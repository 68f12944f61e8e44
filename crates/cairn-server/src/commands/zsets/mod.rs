//! Sorted-set commands: `ZADD` (NX, XX, GT, LT, CH, INCR), `ZINCRBY`, `ZSCORE`, `ZMSCORE`,
//! `ZCARD`, `ZRANK`, `ZREVRANK`, `ZREM`, `ZPOPMIN`, `ZPOPMAX`, `ZMPOP`, `ZRANDMEMBER`, the blocking pops
//! (`BZPOPMIN`, `BZPOPMAX`, `BZMPOP`, waiting as `BLPOP` does), `ZSCAN`; the range commands
//! (`ZRANGE` and its older forms, `ZRANGESTORE`, `ZCOUNT`, `ZLEXCOUNT`, the `ZREMRANGEBY`
//! forms: [`range`]); and the algebra (`ZUNION`, `ZINTER`, `ZDIFF`, their `STORE` forms,
//! `ZINTERCARD`: [`algebra`]). A member has two records: its element record (value: the
//! score, 8 bytes little-endian) for lookups and lex ranges, and a score record
//! (`keyspace::score_prefix`, then the sortable score and the member) for order. Both change
//! in one commit. Scores print as Redis 7.0 prints them (`%.17g`,
//! `resp::reply::format_g17`).

mod algebra;
mod range;
pub(crate) use algebra::{zdiff, zdiffstore, zinter, zintercard, zinterstore, zunion, zunionstore};
pub(crate) use range::{
    zcount, zlexcount, zrange, zrangebylex, zrangebyscore, zrangestore, zremrangebylex,
    zremrangebyrank, zremrangebyscore, zrevrange, zrevrangebylex, zrevrangebyscore,
};

use super::Writes;
use bytes::Bytes;

use super::collection::{
    blocking_pop_first, count_reply, parse_mpop, pop_first, random_command, remove_elements,
    replace_collection, scan_collection, with_collection, Opened,
};
use super::strings::at;
use super::{int_arg, syntax_error, Ctx};
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::reply::format_g17;
use crate::resp::{Protocol, Reply};

/// Members with their scores, as (score, member).
type Scored = Vec<(f64, Vec<u8>)>;

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

/// Writes `member`'s new score into `batch` (replacing its score record). A score of -0 is
/// stored as 0, as Redis's compact encoding of a small sorted set stores it.
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
    let new = if new == 0.0 { 0.0 } else { new };
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

/// `ZRANDMEMBER key [count [WITHSCORES]]` (`collection::random_command`).
pub(crate) fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    random_command(ctx, args, Kind::ZSet, Some("withscores"), &|value| {
        Reply::Double(score_of(value).unwrap_or(0.0))
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

/// Members, and with `with_scores` their scores: one flat array under RESP2, [member, score]
/// pairs under RESP3, as Redis 7.0 replies.
fn members_reply(members: Vec<(f64, Vec<u8>)>, with_scores: bool, protocol: Protocol) -> Reply {
    if with_scores && protocol == Protocol::Resp3 {
        return Reply::Array(
            members
                .into_iter()
                .map(|(score, member)| {
                    Reply::Array(vec![Reply::Bulk(Bytes::from(member)), Reply::Double(score)])
                })
                .collect(),
        );
    }
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
        let mut batch = Writes::new();
        let members = pop_members(ctx, &mut opened, max, count, &mut batch)?;
        ctx.save_collection(&opened, Kind::ZSet, batch, now)?;
        // Under RESP3 a pop with a count returns [member, score] pairs, as Redis's does;
        // without one, a flat pair in either protocol.
        let protocol = if args.len() == 3 {
            ctx.client.protocol
        } else {
            Protocol::Resp2
        };
        Ok(members_reply(members, true, protocol))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    zpop(ctx, args, false)
}

pub(crate) fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    zpop(ctx, args, true)
}

/// Takes the `count` members of lowest (`max`: highest) score from an opened sorted set into
/// `batch`, in the order popped.
fn pop_members(
    ctx: &Ctx<'_>,
    opened: &mut Opened,
    max: bool,
    count: usize,
    batch: &mut Writes,
) -> Result<Scored, Reply> {
    let members = if max {
        highest(ctx, opened, count)?
    } else {
        by_score(ctx, opened, all_scores(ctx, opened), 0, count)?
    };
    *batch = remove_members(ctx, opened, &members);
    Ok(members)
}

/// `BZPOPMIN`/`BZPOPMAX key [key ...] timeout`: the member of lowest (highest) score of the
/// first non-empty sorted set, as `[key, member, score]`, or waits for one (the null array at
/// the timeout).
fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> Reply {
    blocking_pop_first(ctx, args, Kind::ZSet, |ctx, opened, batch| {
        let mut reply = vec![Reply::bulk(&opened.key)];
        for (score, member) in pop_members(ctx, opened, max, 1, batch)? {
            reply.push(Reply::Bulk(Bytes::from(member)));
            reply.push(Reply::Double(score));
        }
        Ok(Reply::Array(reply))
    })
}

pub(crate) fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bzpop(ctx, args, false)
}

pub(crate) fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bzpop(ctx, args, true)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]` and (`blocking`) `BZMPOP timeout
/// numkeys ...`: up to `count` members from the first non-empty sorted set, as `[key,
/// [[member, score], ...]]`; the null array when every one is empty (`BZMPOP`: once its
/// timeout passes).
fn mpop(ctx: &mut Ctx<'_>, args: &[Bytes], blocking: bool) -> Reply {
    let (keys, min, count, timeout) = match parse_mpop(args, blocking, ("min", "max")) {
        Ok(parsed) => parsed,
        Err(error) => return error,
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    pop_first(
        ctx,
        args,
        keys,
        Kind::ZSet,
        timeout,
        |ctx, opened, batch| {
            let members = pop_members(ctx, opened, !min, count, batch)?;
            Ok(Reply::Array(vec![
                Reply::bulk(&opened.key),
                members_reply(members, true, Protocol::Resp3),
            ]))
        },
    )
}

pub(crate) fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    mpop(ctx, args, false)
}

pub(crate) fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    mpop(ctx, args, true)
}

/// Replaces `destination` with a sorted set of `members` (whatever it held, and its TTL), or
/// deletes it when there are none: what `ZRANGESTORE` and the algebra's `STORE` forms do. The
/// size, as their reply.
fn store_members(
    ctx: &Ctx<'_>,
    destination: &[u8],
    members: &[(f64, Vec<u8>)],
    now: u64,
) -> Result<Reply, Reply> {
    let db = ctx.client.db;
    replace_collection(
        ctx,
        destination,
        Kind::ZSet,
        members.len(),
        now,
        |opened, batch| {
            for (score, member) in members {
                set_score(opened, db, batch, member, None, *score);
            }
        },
    )
}

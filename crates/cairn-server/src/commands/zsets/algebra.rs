//! The sorted-set algebra: `ZUNION`, `ZINTER`, `ZDIFF`, their `STORE` forms, and
//! `ZINTERCARD`. A set counts as a sorted set whose scores are all 1, as in Redis.
//!
//! Scores are combined in Redis's order, so results match Redis's to the last bit: the inputs
//! from the smallest to the largest (ties in the order given), each score times its input's
//! weight, a weighted score or a sum that comes out NaN taken as 0, and `MIN`/`MAX` keeping
//! what they hold when the other side is NaN. The inputs are read whole, as Redis reads them;
//! a `STORE` form replaces its destination in one commit, whatever it held, or deletes it when
//! the result is empty.

use std::collections::HashMap;

use bytes::Bytes;

use super::super::collection::count_reply;
use super::super::strings::at;
use super::super::{int_arg, is, syntax_error, wrong_type, Ctx};
use super::{members_reply, parse_score, score_of, store_members, Scored};
use crate::keyspace::{now_millis, Collection, Kind};
use crate::resp::Reply;

/// What the command computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// How `ZUNION` and `ZINTER` combine the scores of one member.
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Folds `value` into `target`, as Redis's `zunionInterAggregate` does.
    fn fold(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// An input's header, if the key exists, and whether it is a sorted set (else a set).
type Header = Option<(Collection, bool)>;

/// A parsed command: its inputs and what to do with them.
struct Request<'a> {
    op: Op,
    keys: &'a [Bytes],
    /// Each input's header, read (and type-checked) before the options were parsed.
    headers: Vec<Header>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// `ZINTERCARD`'s `LIMIT` (0: none); `None` for the other commands.
    limit: Option<usize>,
}

/// Parses `args` from `numkeys` (at `at_numkeys`) on, checking every input's type before the
/// options, in Redis's order.
fn parse<'a>(
    ctx: &Ctx<'_>,
    args: &'a [Bytes],
    at_numkeys: usize,
    op: Op,
    storing: bool,
    counting: bool,
) -> Result<Request<'a>, Reply> {
    let numkeys = int_arg(at(args, at_numkeys))?;
    let name = String::from_utf8_lossy(at(args, 0)).to_ascii_lowercase();
    if numkeys < 1 {
        return Err(Reply::Error(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = at_numkeys + 1;
    let count = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if count > args.len() - first {
        return Err(syntax_error());
    }
    let keys = args.get(first..first + count).unwrap_or_default();
    let now = now_millis();
    let mut headers = Vec::with_capacity(keys.len());
    for key in keys {
        headers.push(input_header(ctx, key, now)?);
    }
    let mut request = Request {
        op,
        keys,
        headers,
        weights: vec![1.0; count],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: counting.then_some(0),
    };
    let mut index = first + count;
    while let Some(option) = args.get(index) {
        let remaining = args.len() - index;
        if op != Op::Diff && !counting && remaining > count && is(option, "weights") {
            let texts = args.get(index + 1..).unwrap_or_default();
            for (weight, text) in request.weights.iter_mut().zip(texts) {
                *weight =
                    parse_score(text).ok_or_else(|| Reply::err("weight value is not a float"))?;
            }
            index += 1 + count;
        } else if op != Op::Diff && !counting && remaining >= 2 && is(option, "aggregate") {
            let how = at(args, index + 1);
            request.aggregate = if is(how, "sum") {
                Aggregate::Sum
            } else if is(how, "min") {
                Aggregate::Min
            } else if is(how, "max") {
                Aggregate::Max
            } else {
                return Err(syntax_error());
            };
            index += 2;
        } else if !storing && !counting && is(option, "withscores") {
            request.with_scores = true;
            index += 1;
        } else if counting && remaining >= 2 && is(option, "limit") {
            let limit_error = || Reply::err("LIMIT can't be negative");
            let limit = int_arg(at(args, index + 1)).map_err(|_| limit_error())?;
            request.limit = Some(usize::try_from(limit).map_err(|_| limit_error())?);
            index += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(request)
}

/// The header of input `key`, if it exists, and whether it is a sorted set (else a set);
/// `WRONGTYPE` for any other type.
fn input_header(ctx: &Ctx<'_>, key: &[u8], now: u64) -> Result<Header, Reply> {
    let Some(stored) = ctx.read(&ctx.meta_key(key)?, now)? else {
        return Ok(None);
    };
    let entry = stored.entry();
    let sorted = match entry.kind {
        Kind::ZSet => true,
        Kind::Set => false,
        _ => return Err(wrong_type()),
    };
    let header = Collection::decode(entry.payload)
        .ok_or_else(|| Reply::err("cairn: the header of this key is damaged"))?;
    Ok(Some((header, sorted)))
}

/// Every member of an input with its score (1 for a set's).
fn read_input(ctx: &Ctx<'_>, key: &[u8], header: Header) -> Result<HashMap<Vec<u8>, f64>, Reply> {
    let Some((header, sorted)) = header else {
        return Ok(HashMap::new());
    };
    ctx.elements(key, &header)?
        .into_iter()
        .map(|(member, value)| {
            let score = if sorted {
                score_of(&value)
                    .ok_or_else(|| Reply::err("cairn: a sorted-set element record is damaged"))?
            } else {
                1.0
            };
            Ok((member, score))
        })
        .collect()
}

/// The result: (score, member) in Redis's order (score, then member bytes), or, for
/// `ZINTERCARD`, only how many (up to its limit).
fn compute(ctx: &Ctx<'_>, request: &Request<'_>) -> Result<(Scored, usize), Reply> {
    let mut inputs = Vec::with_capacity(request.headers.len());
    let headers = request.headers.iter().copied();
    for ((key, header), weight) in request.keys.iter().zip(headers).zip(&request.weights) {
        inputs.push((read_input(ctx, key, header)?, *weight));
    }
    if request.op != Op::Diff {
        inputs.sort_by_key(|(members, _)| members.len());
    }
    let weighted = |score: f64, weight: f64| {
        let value = score * weight;
        if value.is_nan() {
            0.0
        } else {
            value
        }
    };
    let mut result = Vec::new();
    let mut counted = 0;
    let mut inputs = inputs.into_iter();
    let (first, first_weight) = inputs.next().unwrap_or_default();
    let rest: Vec<_> = inputs.collect();
    match request.op {
        Op::Inter => {
            'members: for (member, score) in first {
                let mut total = weighted(score, first_weight);
                for (members, weight) in &rest {
                    let Some(score) = members.get(&member) else {
                        continue 'members;
                    };
                    request.aggregate.fold(&mut total, score * weight);
                }
                counted += 1;
                if let Some(limit) = request.limit {
                    if limit != 0 && counted >= limit {
                        break;
                    }
                    continue;
                }
                result.push((total, member));
            }
        }
        Op::Union => {
            let mut totals: HashMap<Vec<u8>, f64> = HashMap::new();
            for (members, weight) in std::iter::once((first, first_weight)).chain(rest) {
                for (member, score) in members {
                    let value = weighted(score, weight);
                    match totals.entry(member) {
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(value);
                        }
                        std::collections::hash_map::Entry::Occupied(mut slot) => {
                            request.aggregate.fold(slot.get_mut(), value);
                        }
                    }
                }
            }
            result = totals
                .into_iter()
                .map(|(member, total)| (total, member))
                .collect();
        }
        Op::Diff => {
            result = first
                .into_iter()
                .filter(|(member, _)| !rest.iter().any(|(members, _)| members.contains_key(member)))
                .map(|(member, score)| (score, member))
                .collect();
        }
    }
    // Scores are never NaN here; -0 and 0 are one score, ordered by member, as in Redis.
    result.sort_by(|(a, left), (b, right)| {
        a.partial_cmp(b)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| left.cmp(right))
    });
    Ok((result, counted))
}

/// `ZUNION`, `ZINTER`, `ZDIFF numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]
/// [WITHSCORES]`.
fn combine(ctx: &Ctx<'_>, args: &[Bytes], op: Op) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let request = parse(ctx, args, 1, op, false, false)?;
        let (members, _) = compute(ctx, &request)?;
        Ok(members_reply(
            members,
            request.with_scores,
            ctx.client.protocol,
        ))
    };
    run().unwrap_or_else(|error| error)
}

/// The `STORE` forms: `destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`; the
/// size of the result.
fn combine_store(ctx: &Ctx<'_>, args: &[Bytes], op: Op) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let destination = at(args, 1);
        // Every key the command may name, locked before anything is read.
        let meta_keys = std::iter::once(destination)
            .chain(args.iter().skip(3).map(|arg| &arg[..]))
            .map(|key| ctx.meta_key(key))
            .collect::<Result<Vec<_>, _>>()?;
        let _locks = ctx.lock(&meta_keys);
        let request = parse(ctx, args, 2, op, true, false)?;
        let (members, _) = compute(ctx, &request)?;
        store_members(ctx, destination, &members, now)
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine(ctx, args, Op::Union)
}

pub(crate) fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine(ctx, args, Op::Inter)
}

pub(crate) fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine(ctx, args, Op::Diff)
}

pub(crate) fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, Op::Union)
}

pub(crate) fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, Op::Inter)
}

pub(crate) fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, Op::Diff)
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`.
pub(crate) fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let request = parse(ctx, args, 1, Op::Inter, false, true)?;
        let (_, counted) = compute(ctx, &request)?;
        Ok(count_reply(u64::try_from(counted).unwrap_or(u64::MAX)))
    };
    run().unwrap_or_else(|error| error)
}

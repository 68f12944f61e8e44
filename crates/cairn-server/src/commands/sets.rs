//! Set commands: `SADD`, `SREM`, `SMEMBERS`, `SISMEMBER`, `SMISMEMBER`, `SCARD`, `SPOP`,
//! `SMOVE`, `SRANDMEMBER`, `SSCAN`, `SINTER`, `SUNION`, `SDIFF`, their `STORE` forms, and `SINTERCARD`. A
//! member is an element record with an empty value. `SMEMBERS` lists members in byte order
//! (Redis: hash order); `SPOP` takes members from a random place among the first
//! [`SPOP_WINDOW`], not uniformly from the whole set. The set algebra reads its sets whole, as
//! Redis does; a `STORE` form replaces its destination in one commit, whatever it held.

use std::collections::BTreeSet;

use super::Writes;
use bytes::Bytes;

use super::collection::{
    count_reply, random_command, remove_elements, replace_collection, scan_collection,
    with_collection,
};
use super::strings::at;
use super::{int_arg, syntax_error, Ctx};
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::Reply;

/// How far into the set `SPOP` looks for a random member.
pub const SPOP_WINDOW: usize = 64;

pub(crate) fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::Set, now)?;
        let db = ctx.client.db;
        let mut batch = Writes::new();
        let mut added = 0;
        let mut seen = std::collections::HashSet::new();
        for member in args.iter().skip(2) {
            let engine_key = opened.member_key(db, member);
            if !seen.contains(&engine_key) && ctx.element(&engine_key)?.is_none() {
                batch.put(&engine_key, b"");
                added += 1;
                opened.header.count += 1;
            }
            seen.insert(engine_key);
        }
        ctx.save_collection(&opened, Kind::Set, batch, now)?;
        Ok(Reply::Integer(added))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_elements(ctx, args, Kind::Set, |_, _, _, _| {})
}

pub(crate) fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::Set, Reply::Set(Vec::new()), |opened| {
        let members = ctx.elements(&opened.key, &opened.header)?;
        Ok(Reply::Set(
            members
                .into_iter()
                .map(|(member, _)| Reply::Bulk(Bytes::from(member)))
                .collect(),
        ))
    })
}

pub(crate) fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::Set, Reply::Integer(0), |opened| {
        let found = ctx.element(&opened.member_key(db, at(args, 2)))?.is_some();
        Ok(Reply::Integer(i64::from(found)))
    })
}

pub(crate) fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let absent = Reply::Array(vec![Reply::Integer(0); args.len().saturating_sub(2)]);
    with_collection(ctx, args, Kind::Set, absent, |opened| {
        let mut found = Vec::with_capacity(args.len().saturating_sub(2));
        for member in args.iter().skip(2) {
            let here = ctx.element(&opened.member_key(db, member))?.is_some();
            found.push(Reply::Integer(i64::from(here)));
        }
        Ok(Reply::Array(found))
    })
}

/// The members of the set under each of `keys` (an absent key is the empty set), after
/// checking every key's type first, as Redis does.
fn member_sets(ctx: &Ctx<'_>, keys: &[Bytes]) -> Result<Vec<BTreeSet<Vec<u8>>>, Reply> {
    let now = now_millis();
    let mut headers = Vec::with_capacity(keys.len());
    for key in keys {
        headers.push(ctx.read_collection(key, Kind::Set, now)?);
    }
    let mut sets = Vec::with_capacity(keys.len());
    for (key, header) in keys.iter().zip(headers) {
        let members = match header {
            Some((header, _)) => ctx
                .elements(key, &header)?
                .into_iter()
                .map(|(member, _)| member)
                .collect(),
            None => BTreeSet::new(),
        };
        sets.push(members);
    }
    Ok(sets)
}

fn set_reply(members: impl IntoIterator<Item = Vec<u8>>) -> Reply {
    Reply::Set(
        members
            .into_iter()
            .map(|member| Reply::Bulk(Bytes::from(member)))
            .collect(),
    )
}

/// What `SINTER`, `SUNION` and `SDIFF` compute from their sets.
#[derive(Clone, Copy)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

impl Algebra {
    /// The result over `sets` (the first is the one `SDIFF` subtracts from), in byte order.
    fn apply(self, sets: Vec<BTreeSet<Vec<u8>>>) -> Vec<Vec<u8>> {
        let mut sets = sets.into_iter();
        let first = sets.next().unwrap_or_default();
        let rest: Vec<_> = sets.collect();
        match self {
            Algebra::Inter => first
                .into_iter()
                .filter(|member| rest.iter().all(|set| set.contains(member)))
                .collect(),
            Algebra::Union => first
                .into_iter()
                .chain(rest.into_iter().flatten())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Algebra::Diff => first
                .into_iter()
                .filter(|member| !rest.iter().any(|set| set.contains(member)))
                .collect(),
        }
    }
}

/// `SINTER`, `SUNION`, `SDIFF key [key ...]`.
fn algebra(ctx: &Ctx<'_>, args: &[Bytes], algebra: Algebra) -> Reply {
    match member_sets(ctx, args.get(1..).unwrap_or_default()) {
        Ok(sets) => set_reply(algebra.apply(sets)),
        Err(error) => error,
    }
}

/// `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE destination key [key ...]`: the result replaces
/// `destination` (whatever it held, and its TTL), or deletes it when empty; its size.
fn algebra_store(ctx: &Ctx<'_>, args: &[Bytes], algebra: Algebra) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let keys = args.get(1..).unwrap_or_default();
        let meta_keys = keys
            .iter()
            .map(|key| ctx.meta_key(key))
            .collect::<Result<Vec<_>, _>>()?;
        let _locks = ctx.lock(&meta_keys);
        let members = algebra.apply(member_sets(ctx, keys.get(1..).unwrap_or_default())?);
        let db = ctx.client.db;
        replace_collection(
            ctx,
            at(args, 1),
            Kind::Set,
            members.len(),
            now,
            |opened, batch| {
                for member in &members {
                    batch.put(opened.member_key(db, member), b"");
                }
            },
        )
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    algebra(ctx, args, Algebra::Inter)
}

pub(crate) fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    algebra(ctx, args, Algebra::Union)
}

pub(crate) fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    algebra(ctx, args, Algebra::Diff)
}

pub(crate) fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    algebra_store(ctx, args, Algebra::Inter)
}

pub(crate) fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    algebra_store(ctx, args, Algebra::Union)
}

pub(crate) fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    algebra_store(ctx, args, Algebra::Diff)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the size of the intersection, counted
/// up to `limit` when it is not 0.
pub(crate) fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let numkeys_error = || Reply::err("numkeys should be greater than 0");
        let numkeys = usize::try_from(int_arg(at(args, 1)).map_err(|_| numkeys_error())?)
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(numkeys_error)?;
        if numkeys > args.len() - 2 {
            return Err(Reply::err(
                "Number of keys can't be greater than number of args",
            ));
        }
        let mut limit = 0;
        let mut options = args.iter().skip(2 + numkeys);
        while let Some(option) = options.next() {
            match options.next() {
                Some(value) if option.eq_ignore_ascii_case(b"limit") => {
                    limit = usize::try_from(int_arg(value).map_err(|_| limit_error())?)
                        .map_err(|_| limit_error())?;
                }
                _ => return Err(syntax_error()),
            }
        }
        let sets = member_sets(ctx, args.get(2..2 + numkeys).unwrap_or_default())?;
        let mut sets = sets.into_iter();
        let first = sets.next().unwrap_or_default();
        let rest: Vec<_> = sets.collect();
        let mut count = 0;
        for member in first {
            if limit != 0 && count >= limit {
                break;
            }
            if rest.iter().all(|set| set.contains(&member)) {
                count += 1;
            }
        }
        Ok(count_reply(u64::try_from(count).unwrap_or(u64::MAX)))
    };
    run().unwrap_or_else(|error| error)
}

fn limit_error() -> Reply {
    Reply::err("LIMIT can't be negative")
}

/// `SMOVE source destination member`, as one commit: 1 if `member` moved (or, with the
/// same set on both sides, is there), else 0. The destination changes, and is written, only
/// when the member was not in it already.
pub(crate) fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let (source, destination, member) = (at(args, 1), at(args, 2), at(args, 3));
        let source_meta = ctx.meta_key(source)?;
        let destination_meta = ctx.meta_key(destination)?;
        let _locks = ctx.lock(&[&source_meta, &destination_meta]);
        let mut from = ctx.open_collection(source, Kind::Set, now)?;
        if from.is_new() {
            return Ok(Reply::Integer(0));
        }
        let mut to = ctx.open_collection(destination, Kind::Set, now)?;
        let db = ctx.client.db;
        let member_key = from.member_key(db, member);
        let present = ctx.element(&member_key)?.is_some();
        if source == destination || !present {
            return Ok(Reply::Integer(i64::from(present)));
        }
        let mut batch = Writes::new();
        batch.delete(&member_key);
        from.header.count -= 1;
        let target_key = to.member_key(db, member);
        if ctx.element(&target_key)?.is_none() {
            batch.put(&target_key, b"");
            to.header.count += 1;
        }
        let mut writes = from.with_header(Kind::Set, batch, now).unwrap_or_default();
        if to.changed() {
            writes = to.with_header(Kind::Set, writes, now).unwrap_or_default();
        }
        ctx.apply(&writes)?;
        Ok(Reply::Integer(1))
    };
    run().unwrap_or_else(|error| error)
}

/// `SRANDMEMBER key [count]` (`collection::random_command`).
pub(crate) fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    random_command(ctx, args, Kind::Set, None, &|_| Reply::Null)
}

/// `SSCAN key cursor [MATCH pattern] [COUNT n]` (`collection::scan_collection`).
pub(crate) fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    scan_collection(ctx, args, Kind::Set, |_| None)
}

pub(crate) fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::Set, Reply::Integer(0), |opened| {
        Ok(count_reply(opened.header.count))
    })
}

pub(crate) fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let wanted = match args.get(2) {
            None => None,
            Some(count) => Some(
                usize::try_from(int_arg(count)?)
                    .map_err(|_| Reply::err("value is out of range, must be positive"))?,
            ),
        };
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::Set, now)?;
        if opened.is_new() {
            return Ok(match wanted {
                None => Reply::Null,
                Some(_) => Reply::Set(Vec::new()),
            });
        }
        let prefix = keyspace::member_prefix(ctx.client.db, &opened.key, opened.header.version);
        let take = wanted.unwrap_or(1);
        let skip = if wanted.is_none() {
            let entropy = ctx
                .shared
                .stats
                .commands_processed
                .load(std::sync::atomic::Ordering::Relaxed);
            usize::try_from(now.rotate_left(17) ^ entropy).unwrap_or(0)
                % SPOP_WINDOW.min(usize::try_from(opened.header.count).unwrap_or(1).max(1))
        } else {
            0
        };
        let mut batch = Writes::new();
        let mut popped = Vec::new();
        let mut seen = 0;
        ctx.scan_prefix(&prefix, |engine_key, _| {
            seen += 1;
            if seen > skip {
                popped.push(Reply::bulk(
                    engine_key.get(prefix.len()..).unwrap_or_default(),
                ));
                batch.delete(engine_key);
            }
            popped.len() < take
        })?;
        opened.header.count -= u64::try_from(popped.len()).unwrap_or(0);
        ctx.save_collection(&opened, Kind::Set, batch, now)?;
        Ok(match wanted {
            None => popped.pop().unwrap_or(Reply::Null),
            Some(_) => Reply::Set(popped),
        })
    };
    run().unwrap_or_else(|error| error)
}

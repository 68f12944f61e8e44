//! Set commands: `SADD`, `SREM`, `SMEMBERS`, `SISMEMBER`, `SMISMEMBER`, `SCARD`, `SPOP`,
//! `SINTER`, `SUNION`, `SDIFF`. A member is an
//! element record with an empty value. `SMEMBERS` lists members in byte order (Redis: hash
//! order); `SPOP` takes members from a random place among the first [`SPOP_WINDOW`], not
//! uniformly from the whole set.

use super::Writes;
use bytes::Bytes;

use super::collection::{count_reply, remove_elements, with_collection};
use super::strings::at;
use super::{int_arg, Ctx};
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
fn member_sets(
    ctx: &Ctx<'_>,
    keys: &[Bytes],
) -> Result<Vec<std::collections::BTreeSet<Vec<u8>>>, Reply> {
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
            None => std::collections::BTreeSet::new(),
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

pub(crate) fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let mut sets = member_sets(ctx, args.get(1..).unwrap_or_default())?.into_iter();
        let first = sets.next().unwrap_or_default();
        let rest: Vec<_> = sets.collect();
        Ok(set_reply(first.into_iter().filter(|member| {
            rest.iter().all(|set| set.contains(member))
        })))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let sets = member_sets(ctx, args.get(1..).unwrap_or_default())?;
        Ok(set_reply(
            sets.into_iter()
                .flatten()
                .collect::<std::collections::BTreeSet<_>>(),
        ))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let mut sets = member_sets(ctx, args.get(1..).unwrap_or_default())?.into_iter();
        let first = sets.next().unwrap_or_default();
        let rest: Vec<_> = sets.collect();
        Ok(set_reply(first.into_iter().filter(|member| {
            !rest.iter().any(|set| set.contains(member))
        })))
    };
    run().unwrap_or_else(|error| error)
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

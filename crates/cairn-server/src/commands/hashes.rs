//! Hash commands: `HSET`/`HMSET`, `HSETNX`, `HGET`, `HMGET`, `HGETALL`, `HKEYS`, `HVALS`,
//! `HDEL`, `HLEN`, `HEXISTS`, `HSTRLEN`, `HINCRBY`, `HINCRBYFLOAT`, `HRANDFIELD`, `HSCAN`. A field is an element record whose value is
//! the field's value. Semantics and error texts follow Redis 7.0; `HGETALL`, `HKEYS` and
//! `HVALS` list fields in byte order (Redis: hash order).

use super::Writes;
use bytes::Bytes;

use super::collection::{
    bulk_of, count_reply, random_command, remove_elements, scan_collection, with_collection,
};
use super::strings::at;
use super::{int_arg, wrong_arity, Ctx};
use crate::keyspace::{now_millis, Kind};
use crate::resp::{Reply, OK};

fn hset_generic(ctx: &Ctx<'_>, args: &[Bytes], only_new: bool) -> Result<i64, Reply> {
    let now = now_millis();
    let meta_key = ctx.meta_key(at(args, 1))?;
    let _locks = ctx.lock(&[&meta_key]);
    let mut opened = ctx.open_collection(at(args, 1), Kind::Hash, now)?;
    let db = ctx.client.db;
    let mut batch = Writes::new();
    let mut added = 0;
    let mut seen = std::collections::HashSet::new();
    for pair in args.get(2..).unwrap_or_default().chunks(2) {
        let [field, value] = pair else { continue };
        let member = opened.member_key(db, field);
        let exists = seen.contains(&member[..]) || ctx.element(&member)?.is_some();
        if !exists {
            added += 1;
            opened.header.count += 1;
        }
        if !(only_new && exists) {
            batch.put(&member, value);
        }
        seen.insert(member);
    }
    ctx.save_collection(&opened, Kind::Hash, batch, now)?;
    Ok(added)
}

pub(crate) fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 1 {
        return wrong_arity("hset");
    }
    hset_generic(ctx, args, false).map_or_else(|error| error, Reply::Integer)
}

pub(crate) fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 1 {
        return wrong_arity("hmset");
    }
    hset_generic(ctx, args, false).map_or_else(|error| error, |_| OK)
}

pub(crate) fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    hset_generic(ctx, args, true).map_or_else(|error| error, Reply::Integer)
}

pub(crate) fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::Hash, Reply::Null, |opened| {
        Ok(ctx
            .element(&opened.member_key(db, at(args, 2)))?
            .map_or(Reply::Null, |value| bulk_of(&value)))
    })
}

pub(crate) fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::Hash, Reply::Integer(0), |opened| {
        let value = ctx.element(&opened.member_key(db, at(args, 2)))?;
        Ok(count_reply(value.map_or(0, |value| {
            u64::try_from(value.as_bytes().len()).unwrap_or(u64::MAX)
        })))
    })
}

pub(crate) fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    let fields = args.len().saturating_sub(2);
    with_collection(
        ctx,
        args,
        Kind::Hash,
        Reply::Array(vec![Reply::Null; fields]),
        |opened| {
            let mut values = Vec::with_capacity(fields);
            for field in args.iter().skip(2) {
                let value = ctx.element(&opened.member_key(db, field))?;
                values.push(value.map_or(Reply::Null, |value| bulk_of(&value)));
            }
            Ok(Reply::Array(values))
        },
    )
}

pub(crate) fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::Hash, Reply::Map(Vec::new()), |opened| {
        let pairs = ctx.elements(&opened.key, &opened.header)?;
        Ok(Reply::Map(
            pairs
                .into_iter()
                .map(|(field, value)| (Reply::Bulk(Bytes::from(field)), bulk_of(&value)))
                .collect(),
        ))
    })
}

pub(crate) fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::Hash, Reply::Array(Vec::new()), |opened| {
        let pairs = ctx.elements(&opened.key, &opened.header)?;
        Ok(Reply::bulks(pairs.into_iter().map(|(field, _)| field)))
    })
}

pub(crate) fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::Hash, Reply::Array(Vec::new()), |opened| {
        let pairs = ctx.elements(&opened.key, &opened.header)?;
        Ok(Reply::Array(
            pairs.iter().map(|(_, value)| bulk_of(value)).collect(),
        ))
    })
}

pub(crate) fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    with_collection(ctx, args, Kind::Hash, Reply::Integer(0), |opened| {
        Ok(count_reply(opened.header.count))
    })
}

pub(crate) fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let db = ctx.client.db;
    with_collection(ctx, args, Kind::Hash, Reply::Integer(0), |opened| {
        let found = ctx.element(&opened.member_key(db, at(args, 2)))?.is_some();
        Ok(Reply::Integer(i64::from(found)))
    })
}

pub(crate) fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    remove_elements(ctx, args, Kind::Hash, |_, _, _, _| {})
}

/// Rewrites field `args[2]` of the hash under `args[1]` with `update`, which maps the field's
/// value (`None`: absent) to the new value and the reply: the shape of `HINCRBY` and
/// `HINCRBYFLOAT`.
fn update_field(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    update: impl FnOnce(Option<&[u8]>) -> Result<(String, Reply), Reply>,
) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let meta_key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(at(args, 1), Kind::Hash, now)?;
        let member = opened.member_key(ctx.client.db, at(args, 2));
        let current = ctx.element(&member)?;
        let (next, reply) = update(current.as_ref().map(cairn::Value::as_bytes))?;
        if current.is_none() {
            opened.header.count += 1;
        }
        let mut batch = Writes::new();
        batch.put(&member, next);
        ctx.save_collection(&opened, Kind::Hash, batch, now)?;
        Ok(reply)
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let delta = match int_arg(at(args, 3)) {
        Ok(delta) => delta,
        Err(error) => return error,
    };
    update_field(ctx, args, |current| {
        let current = match current {
            Some(value) => crate::resp::parse::parse_i64(value)
                .ok_or_else(|| Reply::err("hash value is not an integer"))?,
            None => 0,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
        Ok((next.to_string(), Reply::Integer(next)))
    })
}

/// `HINCRBYFLOAT key field increment`: as `INCRBYFLOAT`, on a hash field.
pub(crate) fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let Some(delta) = super::strings::parse_float(at(args, 3)) else {
        return Reply::err("value is not a valid float");
    };
    if !delta.is_finite() {
        return Reply::err("value is NaN or Infinity");
    }
    update_field(ctx, args, |current| {
        let current = match current {
            Some(value) => super::strings::parse_float(value)
                .ok_or_else(|| Reply::err("hash value is not a float"))?,
            None => 0.0,
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err(Reply::err("increment would produce NaN or Infinity"));
        }
        let text = crate::resp::reply::format_double(next);
        Ok((text.clone(), Reply::bulk(text)))
    })
}

/// `HRANDFIELD key [count [WITHVALUES]]` (`collection::random_command`).
pub(crate) fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    random_command(ctx, args, Kind::Hash, Some("withvalues"), &bulk_of)
}

/// `HSCAN key cursor [MATCH pattern] [COUNT n]`: every matching field and its value
/// (`collection::scan_collection`).
pub(crate) fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    scan_collection(ctx, args, Kind::Hash, |value| Some(bulk_of(value)))
}

//! String commands: `GET`, `SET` and its variants, `MGET`/`MSET`, `APPEND`, ranges, bits
//! (`SETBIT`, `GETBIT`), and the counters. Each write holds its keys' stripes for its whole read-modify-write (module
//! `state`), so it is atomic as in Redis. Semantics and error texts follow Redis 7.0.

use super::Writes;
use bytes::Bytes;

use super::{int_arg, is, syntax_error, wrong_arity, Ctx};
use crate::keyspace::{self, now_millis, Kind};
use crate::resp::reply::format_double;
use crate::resp::{Reply, OK};

/// Argument `index` (the arity check guarantees the ones a command reads).
pub(crate) fn at(args: &[Bytes], index: usize) -> &[u8] {
    args.get(index).map_or(&[], |arg| arg)
}

/// How an expiry argument counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExpireArg {
    /// `EX`: seconds from now.
    Seconds,
    /// `PX`: milliseconds from now.
    Millis,
    /// `EXAT`: a Unix time in seconds.
    AtSeconds,
    /// `PXAT`: a Unix time in milliseconds.
    AtMillis,
}

impl ExpireArg {
    fn parse(option: &[u8]) -> Option<ExpireArg> {
        [
            ("ex", ExpireArg::Seconds),
            ("px", ExpireArg::Millis),
            ("exat", ExpireArg::AtSeconds),
            ("pxat", ExpireArg::AtMillis),
        ]
        .into_iter()
        .find_map(|(name, arg)| is(option, name).then_some(arg))
    }

    /// The deadline `amount` stands for, as `SET`, `SETEX` and `GETEX` read it: it must be
    /// positive and must not overflow, or the reply is Redis's "invalid expire time" for
    /// `command`.
    pub(crate) fn deadline(self, amount: &[u8], now: u64, command: &str) -> Result<u64, Reply> {
        let amount = int_arg(amount)?;
        let invalid = || Reply::err(format!("invalid expire time in '{command}' command"));
        if amount <= 0 {
            return Err(invalid());
        }
        let millis = match self {
            ExpireArg::Seconds | ExpireArg::AtSeconds => amount.checked_mul(1000),
            ExpireArg::Millis | ExpireArg::AtMillis => Some(amount),
        }
        .ok_or_else(invalid)?;
        let absolute = match self {
            ExpireArg::Seconds | ExpireArg::Millis => {
                millis.checked_add(i64::try_from(now).unwrap_or(i64::MAX))
            }
            ExpireArg::AtSeconds | ExpireArg::AtMillis => Some(millis),
        }
        .ok_or_else(invalid)?;
        u64::try_from(absolute).map_err(|_| invalid())
    }
}

pub(crate) fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let key = ctx.meta_key(at(args, 1))?;
        Ok(match ctx.read_string(&key, now_millis())? {
            Some((value, _)) => Reply::Bulk(Bytes::from(value)),
            None => Reply::Null,
        })
    };
    run().unwrap_or_else(|error| error)
}

/// `SET`'s options.
#[derive(Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one flag per option, as the command has"
)]
struct SetOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    expire: Option<(ExpireArg, &'a [u8])>,
}

fn parse_set_options(args: &[Bytes]) -> Result<SetOptions<'_>, Reply> {
    let mut options = SetOptions::default();
    let mut index = 3;
    while let Some(option) = args.get(index) {
        let next = args.get(index + 1);
        if is(option, "nx") && !options.xx {
            options.nx = true;
        } else if is(option, "xx") && !options.nx {
            options.xx = true;
        } else if is(option, "get") {
            options.get = true;
        } else if is(option, "keepttl") && options.expire.is_none() {
            options.keep_ttl = true;
        } else if let (Some(unit), Some(amount), None, false) = (
            ExpireArg::parse(option),
            next,
            options.expire,
            options.keep_ttl,
        ) {
            options.expire = Some((unit, amount));
            index += 1;
        } else {
            return Err(syntax_error());
        }
        index += 1;
    }
    Ok(options)
}

pub(crate) fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let options = parse_set_options(args)?;
        let now = now_millis();
        let new_deadline = match options.expire {
            Some((unit, amount)) => Some(unit.deadline(amount, now, "set")?),
            None => None,
        };
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let needs_old = options.nx || options.xx || options.get || options.keep_ttl;
        let old = if needs_old {
            match ctx.read(&key, now)? {
                None => None,
                Some(stored) => {
                    let entry = stored.entry();
                    if options.get && entry.kind != Kind::String {
                        return Err(super::wrong_type());
                    }
                    Some((entry.payload.to_vec(), entry.deadline))
                }
            }
        } else {
            None
        };
        let refused = (options.nx && old.is_some()) || (options.xx && old.is_none());
        if !refused {
            let deadline = if options.keep_ttl {
                old.as_ref().and_then(|(_, deadline)| *deadline)
            } else {
                new_deadline
            };
            ctx.write_string(&key, at(args, 2), deadline, now)?;
        }
        Ok(match (options.get, old, refused) {
            (true, Some((value, _)), _) => Reply::Bulk(Bytes::from(value)),
            (true, None, _) | (false, _, true) => Reply::Null,
            (false, _, false) => OK,
        })
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        if ctx.read(&key, now)?.is_some() {
            return Ok(Reply::Integer(0));
        }
        ctx.write_string(&key, at(args, 2), None, now)?;
        Ok(Reply::Integer(1))
    };
    run().unwrap_or_else(|error| error)
}

fn set_with_expire(ctx: &Ctx<'_>, args: &[Bytes], unit: ExpireArg, command: &str) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let deadline = unit.deadline(at(args, 2), now, command)?;
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        ctx.write_string(&key, at(args, 3), Some(deadline), now)?;
        Ok(OK)
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_with_expire(ctx, args, ExpireArg::Seconds, "setex")
}

pub(crate) fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    set_with_expire(ctx, args, ExpireArg::Millis, "psetex")
}

pub(crate) fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let old = ctx.read_string(&key, now)?;
        ctx.write_string(&key, at(args, 2), None, now)?;
        Ok(old.map_or(Reply::Null, |(value, _)| Reply::Bulk(Bytes::from(value))))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let Some((value, _)) = ctx.read_string(&key, now)? else {
            return Ok(Reply::Null);
        };
        ctx.delete(&key, now)?;
        Ok(Reply::Bulk(Bytes::from(value)))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        // None: leave the TTL; Some(None): PERSIST; Some(Some(..)): a new expiry.
        let mut change: Option<Option<(ExpireArg, &[u8])>> = None;
        let mut index = 2;
        while let Some(option) = args.get(index) {
            if is(option, "persist") && change.is_none() {
                change = Some(None);
            } else if let (Some(unit), Some(amount), None) =
                (ExpireArg::parse(option), args.get(index + 1), change)
            {
                change = Some(Some((unit, amount)));
                index += 1;
            } else {
                return Err(syntax_error());
            }
            index += 1;
        }
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        // As in Redis: a missing key or a wrong type is reported before a bad expiry.
        let Some((value, deadline)) = ctx.read_string(&key, now)? else {
            return Ok(Reply::Null);
        };
        let new_deadline = match change {
            Some(Some((unit, amount))) => Some(unit.deadline(amount, now, "getex")?),
            _ => None,
        };
        match (change, new_deadline) {
            (Some(_), Some(new)) if new <= now => {
                ctx.delete(&key, now)?;
            }
            (Some(_), Some(new)) => ctx.write_string(&key, &value, Some(new), now)?,
            (Some(_), None) if deadline.is_some() => ctx.write_string(&key, &value, None, now)?,
            _ => {}
        }
        Ok(Reply::Bulk(Bytes::from(value)))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let now = now_millis();
    let mut replies = Vec::with_capacity(args.len().saturating_sub(1));
    for key in args.iter().skip(1) {
        let value = ctx
            .meta_key(key)
            .ok()
            .and_then(|key| ctx.read_string(&key, now).ok().flatten());
        replies.push(value.map_or(Reply::Null, |(value, _)| Reply::Bulk(Bytes::from(value))));
    }
    Reply::Array(replies)
}

/// The key/value pairs of `MSET` and `MSETNX`, as engine keys (the last of duplicates wins).
/// An engine key and the value to write there.
type Pair<'a> = (Vec<u8>, &'a [u8]);

fn pairs<'a>(ctx: &Ctx<'_>, args: &'a [Bytes]) -> Result<Vec<Pair<'a>>, Reply> {
    let mut pairs = Vec::with_capacity(args.len() / 2);
    for pair in args.get(1..).unwrap_or_default().chunks(2) {
        if let [key, value] = pair {
            pairs.push((ctx.meta_key(key)?, &value[..]));
        }
    }
    Ok(pairs)
}

fn write_pairs(ctx: &Ctx<'_>, pairs: &[(Vec<u8>, &[u8])]) -> Result<(), Reply> {
    let mut batch = Writes::new();
    for (key, value) in pairs {
        batch.put(key, keyspace::encode(Kind::String, None, value));
    }
    ctx.apply(&batch)
}

pub(crate) fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return wrong_arity("mset");
    }
    let run = || -> Result<Reply, Reply> {
        let pairs = pairs(ctx, args)?;
        let keys: Vec<&[u8]> = pairs.iter().map(|(key, _)| key.as_slice()).collect();
        let _locks = ctx.lock(&keys);
        write_pairs(ctx, &pairs)?;
        Ok(OK)
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return wrong_arity("msetnx");
    }
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let pairs = pairs(ctx, args)?;
        let keys: Vec<&[u8]> = pairs.iter().map(|(key, _)| key.as_slice()).collect();
        let _locks = ctx.lock(&keys);
        for key in &keys {
            if ctx.read(key, now)?.is_some() {
                return Ok(Reply::Integer(0));
            }
        }
        write_pairs(ctx, &pairs)?;
        Ok(Reply::Integer(1))
    };
    run().unwrap_or_else(|error| error)
}

/// The error for a string that would outgrow the largest value.
fn too_long() -> Reply {
    Reply::err("string exceeds maximum allowed size (proto-max-bulk-len)")
}

pub(crate) fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let (mut value, deadline) = ctx.read_string(&key, now)?.unwrap_or_default();
        let addition = at(args, 2);
        if value.len() + addition.len() > ctx.shared.config.bulk_bytes_max {
            return Err(too_long());
        }
        value.extend_from_slice(addition);
        ctx.write_string(&key, &value, deadline, now)?;
        Ok(Reply::Integer(
            i64::try_from(value.len()).unwrap_or(i64::MAX),
        ))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let key = ctx.meta_key(at(args, 1))?;
        let length = ctx
            .read_string(&key, now_millis())?
            .map_or(0, |(value, _)| value.len());
        Ok(Reply::Integer(i64::try_from(length).unwrap_or(i64::MAX)))
    };
    run().unwrap_or_else(|error| error)
}

/// The bytes `GETRANGE start end` selects from a string of `len` bytes, as Redis 7.0 clamps.
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}

pub(crate) fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let start = int_arg(at(args, 2))?;
        let end = int_arg(at(args, 3))?;
        let key = ctx.meta_key(at(args, 1))?;
        let value = ctx
            .read_string(&key, now_millis())?
            .map(|(value, _)| value)
            .unwrap_or_default();
        Ok(match clamp_range(start, end, value.len()) {
            Some((start, end)) => Reply::bulk(value.get(start..=end).unwrap_or_default()),
            None => Reply::bulk(""),
        })
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let offset = int_arg(at(args, 2))?;
        let Ok(offset) = usize::try_from(offset) else {
            return Err(Reply::err("offset is out of range"));
        };
        let patch = at(args, 3);
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let old = ctx.read_string(&key, now)?;
        let length = |value: &[u8]| Reply::Integer(i64::try_from(value.len()).unwrap_or(i64::MAX));
        if patch.is_empty() {
            return Ok(length(
                old.map(|(value, _)| value).as_deref().unwrap_or_default(),
            ));
        }
        if offset.saturating_add(patch.len()) > ctx.shared.config.bulk_bytes_max {
            return Err(too_long());
        }
        let (mut value, deadline) = old.unwrap_or_default();
        if value.len() < offset + patch.len() {
            value.resize(offset + patch.len(), 0);
        }
        if let Some(target) = value.get_mut(offset..offset + patch.len()) {
            target.copy_from_slice(patch);
        }
        ctx.write_string(&key, &value, deadline, now)?;
        Ok(length(&value))
    };
    run().unwrap_or_else(|error| error)
}

/// A bit offset as `SETBIT` and `GETBIT` read one: from 0 to the bits of the longest value a
/// request may carry (`proto-max-bulk-len`), with Redis's error otherwise.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u64, Reply> {
    checked_bit_offset(ctx, int_arg(arg).ok())
}

/// A parsed bit offset (`None`: not an integer) checked as Redis checks one: not negative,
/// and its byte below the bulk length limit.
pub(super) fn checked_bit_offset(ctx: &Ctx<'_>, offset: Option<i64>) -> Result<u64, Reply> {
    let error = || Reply::err("bit offset is not an integer or out of range");
    let offset = offset
        .and_then(|offset| u64::try_from(offset).ok())
        .ok_or_else(error)?;
    let bytes_max = u64::try_from(ctx.shared.config.bulk_bytes_max).unwrap_or(u64::MAX);
    if offset >> 3 >= bytes_max {
        return Err(error());
    }
    Ok(offset)
}

/// The byte index of bit `offset` and its mask within that byte (bit 0 is the first byte's
/// highest bit, as in Redis).
fn bit_position(offset: u64) -> (usize, u8) {
    (
        usize::try_from(offset >> 3).unwrap_or(usize::MAX),
        0x80 >> (offset & 7),
    )
}

/// `SETBIT key offset 0|1`: the bit's old value. The string grows with zero bytes to reach
/// the offset; nothing is written (and no watcher touched) when neither the bit nor the length
/// changes, as in Redis.
pub(crate) fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let offset = bit_offset(ctx, at(args, 2))?;
        let bit_error = || Reply::err("bit is not an integer or out of range");
        let on = match int_arg(at(args, 3)).map_err(|_| bit_error())? {
            0 => false,
            1 => true,
            _ => return Err(bit_error()),
        };
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let old = ctx.read_string(&key, now)?;
        let (mut value, deadline) = old.unwrap_or_default();
        let (byte, mask) = bit_position(offset);
        let grows = value.len() <= byte;
        if grows {
            value.resize(byte + 1, 0);
        }
        let was = value.get(byte).is_some_and(|current| current & mask != 0);
        if was != on || grows {
            if let Some(current) = value.get_mut(byte) {
                if on {
                    *current |= mask;
                } else {
                    *current &= !mask;
                }
            }
            ctx.write_string(&key, &value, deadline, now)?;
        }
        Ok(Reply::Integer(i64::from(was)))
    };
    run().unwrap_or_else(|error| error)
}

/// `GETBIT key offset`: the bit, 0 past the end of the string or for a missing key.
pub(crate) fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let offset = bit_offset(ctx, at(args, 2))?;
        let key = ctx.meta_key(at(args, 1))?;
        let Some((value, _)) = ctx.read_string(&key, now_millis())? else {
            return Ok(Reply::Integer(0));
        };
        let (byte, mask) = bit_position(offset);
        let set = value.get(byte).is_some_and(|current| current & mask != 0);
        Ok(Reply::Integer(i64::from(set)))
    };
    run().unwrap_or_else(|error| error)
}

fn incr_by(ctx: &Ctx<'_>, key: &[u8], delta: i64) -> Result<Reply, Reply> {
    let now = now_millis();
    let key = ctx.meta_key(key)?;
    let _locks = ctx.lock(&[&key]);
    let (current, deadline) = match ctx.read_string(&key, now)? {
        Some((value, deadline)) => (
            crate::resp::parse::parse_i64(&value).ok_or_else(super::not_an_integer)?,
            deadline,
        ),
        None => (0, None),
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
    ctx.write_string(&key, next.to_string().as_bytes(), deadline, now)?;
    Ok(Reply::Integer(next))
}

pub(crate) fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_by(ctx, at(args, 1), 1).unwrap_or_else(|error| error)
}

pub(crate) fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    incr_by(ctx, at(args, 1), -1).unwrap_or_else(|error| error)
}

pub(crate) fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    int_arg(at(args, 2))
        .and_then(|delta| incr_by(ctx, at(args, 1), delta))
        .unwrap_or_else(|error| error)
}

pub(crate) fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    int_arg(at(args, 2))
        .and_then(|delta| {
            let negated = delta
                .checked_neg()
                .ok_or_else(|| Reply::err("decrement would overflow"))?;
            incr_by(ctx, at(args, 1), negated)
        })
        .unwrap_or_else(|error| error)
}

/// A float as Redis reads one from an argument or a stored string: no spaces, not NaN.
pub(crate) fn parse_float(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

pub(crate) fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let not_a_float = || Reply::err("value is not a valid float");
        let delta = parse_float(at(args, 2)).ok_or_else(not_a_float)?;
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let (current, deadline) = match ctx.read_string(&key, now)? {
            Some((value, deadline)) => (parse_float(&value).ok_or_else(not_a_float)?, deadline),
            None => (0.0, None),
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err(Reply::err("increment would produce NaN or Infinity"));
        }
        let text = format_double(next);
        ctx.write_string(&key, text.as_bytes(), deadline, now)?;
        Ok(Reply::bulk(text))
    };
    run().unwrap_or_else(|error| error)
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn getrange_clamps_as_redis_does() {
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(3, 100, 5), Some((3, 4)));
        assert_eq!(clamp_range(-100, 1, 5), Some((0, 1)));
        assert_eq!(clamp_range(-1, -3, 5), None);
        assert_eq!(clamp_range(4, 2, 5), None);
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
    }
}

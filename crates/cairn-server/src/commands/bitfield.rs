//! `BITFIELD` and `BITFIELD_RO`: integers of 1 to 64 bits (unsigned up to 63) at any bit
//! offset of a string, read, set and incremented with Redis 7.0's overflow rules (`WRAP`,
//! `SAT`, `FAIL`) and error texts.
//!
//! - Every argument is checked before anything runs, in Redis's order, so a bad one changes
//!   nothing. Then the operations run in order on one copy of the string, and the command
//!   writes it back once, in one commit, keeping its TTL.
//! - Like `SETBIT`, a write grows the string with zero bytes to reach its highest bit; a
//!   string created or grown is written even when every operation failed its overflow check,
//!   as Redis keeps the key it made. A command sends `setbit` when an operation succeeded and
//!   changed a value or the string's size, as Redis counts its changes.
//! - Offsets stop below the bulk length limit in bytes, as `SETBIT`'s do; `#n` means `n`
//!   times the field's width.

use bytes::Bytes;

use super::strings::{at, checked_bit_offset};
use super::{int_arg, is, syntax_error, Ctx};
use crate::keyspace::now_millis;
use crate::resp::Reply;

/// What an operation does.
#[derive(Clone, Copy)]
enum Action {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// What a `SET` or `INCRBY` does with a result its field cannot hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// One operation on one field.
#[derive(Clone, Copy)]
struct Field {
    action: Action,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`.
pub(crate) fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    run(ctx, args, false).unwrap_or_else(|error| error)
}

/// `BITFIELD_RO key [GET type offset] ...`.
pub(crate) fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    run(ctx, args, true).unwrap_or_else(|error| error)
}

fn run(ctx: &Ctx<'_>, args: &[Bytes], read_only: bool) -> Result<Reply, Reply> {
    let fields = parse(ctx, args)?;
    let writes = fields
        .iter()
        .filter(|field| !matches!(field.action, Action::Get))
        .map(|field| field.offset + u64::from(field.bits) - 1)
        .max();
    let now = now_millis();
    let key = ctx.meta_key(at(args, 1))?;
    let Some(highest) = writes else {
        let value = ctx.read_string(&key, now)?.map(|(value, _)| value);
        let bytes = value.as_deref().unwrap_or_default();
        return Ok(Reply::Array(
            fields
                .iter()
                .map(|field| read_field(bytes, field))
                .collect(),
        ));
    };
    if read_only {
        return Err(Reply::err("BITFIELD_RO only supports the GET subcommand"));
    }
    let _locks = ctx.lock(&[&key]);
    let old = ctx.read_string(&key, now)?;
    let created = old.is_none();
    let (mut value, deadline) = old.unwrap_or_default();
    let needed = usize::try_from(highest >> 3)
        .ok()
        .and_then(|byte| byte.checked_add(1))
        .ok_or_else(|| Reply::err("bit offset is not an integer or out of range"))?;
    let grown = value.len() < needed;
    if grown {
        value
            .try_reserve(needed - value.len())
            .map_err(|_| Reply::err("cairn: out of memory for this string"))?;
        value.resize(needed, 0);
    }
    let mut changed = false;
    let mut succeeded = false;
    let mut replies = Vec::with_capacity(fields.len());
    for field in &fields {
        match field.action {
            Action::Get => replies.push(read_field(&value, field)),
            Action::Set(_) | Action::IncrBy(_) => {
                let old = get(&value, field);
                let Some((new, reply)) = apply(field, old) else {
                    replies.push(Reply::Null);
                    continue;
                };
                set(&mut value, field, new);
                changed |= new != old;
                succeeded = true;
                replies.push(Reply::Integer(reply));
            }
        }
    }
    let sized = grown || created;
    if changed || sized {
        ctx.write_string(&key, &value, deadline, now)?;
        if !(changed || succeeded) {
            // Created or grown, and every operation failed its overflow check: Redis keeps
            // the string it made but sends no event.
            ctx.client.changes.borrow_mut().quiet();
        }
    }
    Ok(Reply::Array(replies))
}

/// Every operation, checked in Redis's order: the subcommand and its argument count, the
/// type, the offset, then the value.
fn parse(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Vec<Field>, Reply> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut at_arg = 2;
    while let Some(name) = args.get(at_arg) {
        let left = args.len() - at_arg - 1;
        if is(name, "overflow") && left >= 1 {
            let kind = at(args, at_arg + 1);
            overflow = if is(kind, "wrap") {
                Overflow::Wrap
            } else if is(kind, "sat") {
                Overflow::Sat
            } else if is(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err("Invalid OVERFLOW type specified"));
            };
            at_arg += 2;
            continue;
        }
        let get = is(name, "get") && left >= 2;
        if !get && !((is(name, "set") || is(name, "incrby")) && left >= 3) {
            return Err(syntax_error());
        }
        let (signed, bits) = field_type(at(args, at_arg + 1))?;
        let offset = field_offset(ctx, at(args, at_arg + 2), bits)?;
        let action = if get {
            Action::Get
        } else {
            let value = int_arg(at(args, at_arg + 3))?;
            if is(name, "set") {
                Action::Set(value)
            } else {
                Action::IncrBy(value)
            }
        };
        fields.push(Field {
            action,
            signed,
            bits,
            offset,
            overflow,
        });
        at_arg += if get { 3 } else { 4 };
    }
    Ok(fields)
}

/// `i1` to `i64` or `u1` to `u63`: whether signed, and the width.
fn field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    let error = || {
        Reply::err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported \
             but i64 is.",
        )
    };
    let (signed, digits) = match arg.split_first() {
        Some((b'i', digits)) => (true, digits),
        Some((b'u', digits)) => (false, digits),
        _ => return Err(error()),
    };
    let bits = int_arg(digits).map_err(|_| error())?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(error());
    }
    u32::try_from(bits)
        .map(|bits| (signed, bits))
        .map_err(|_| error())
}

/// A bit offset, or `#n` for `n` fields of `bits` bits; below the bulk length limit in bytes.
fn field_offset(ctx: &Ctx<'_>, arg: &[u8], bits: u32) -> Result<u64, Reply> {
    let (count, times) = match arg.split_first() {
        Some((b'#', count)) => (count, i64::from(bits)),
        _ => (arg, 1),
    };
    let offset = int_arg(count)
        .ok()
        .and_then(|count| count.checked_mul(times));
    checked_bit_offset(ctx, offset)
}

/// A `GET`'s reply: the field's value, bits past the end of the string reading as 0.
fn read_field(bytes: &[u8], field: &Field) -> Reply {
    Reply::Integer(value_of(get(bytes, field), field))
}

/// The field's bits as an unsigned number (bits past the end are 0).
fn get(bytes: &[u8], field: &Field) -> u64 {
    (0..u64::from(field.bits)).fold(0, |value, index| {
        let position = field.offset + index;
        let byte = usize::try_from(position >> 3)
            .ok()
            .and_then(|at| bytes.get(at))
            .copied()
            .unwrap_or(0);
        value << 1 | u64::from(byte >> (7 - (position & 7)) & 1)
    })
}

/// Writes the low `field.bits` bits of `raw` at the field (the string covers it).
fn set(bytes: &mut [u8], field: &Field, raw: u64) {
    for index in 0..u64::from(field.bits) {
        let position = field.offset + index;
        let bit = raw >> (u64::from(field.bits) - 1 - index) & 1 == 1;
        let mask = 0x80u8 >> (position & 7);
        if let Some(byte) = usize::try_from(position >> 3)
            .ok()
            .and_then(|at| bytes.get_mut(at))
        {
            if bit {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

/// The number `raw` stands for in the field (sign-extended when signed).
fn value_of(raw: u64, field: &Field) -> i64 {
    let value = i128::from(raw);
    let half = 1i128 << (field.bits - 1);
    let number = if field.signed && value >= half {
        value - (half << 1)
    } else {
        value
    };
    i64::try_from(number).unwrap_or_default()
}

/// A `SET` or `INCRBY` on a field holding `raw`: the bits to store and the reply (the old
/// value for `SET`, the new one for `INCRBY`), or `None` when it overflows under `FAIL`.
fn apply(field: &Field, raw: u64) -> Option<(u64, i64)> {
    let old = value_of(raw, field);
    let wanted = match field.action {
        // A negative value for an unsigned field is the huge number its bits make, as in
        // Redis: out of range.
        Action::Set(value) if !field.signed => i128::from(value.cast_unsigned()),
        Action::Set(value) => i128::from(value),
        Action::IncrBy(increment) => i128::from(old) + i128::from(increment),
        Action::Get => i128::from(old),
    };
    let span = 1i128 << field.bits;
    let (min, max) = if field.signed {
        (-(span >> 1), (span >> 1) - 1)
    } else {
        (0, span - 1)
    };
    let stored = if (min..=max).contains(&wanted) {
        wanted
    } else {
        match field.overflow {
            Overflow::Fail => return None,
            Overflow::Sat if wanted > max => max,
            Overflow::Sat => min,
            Overflow::Wrap => {
                let low = wanted.rem_euclid(span);
                if field.signed && low > max {
                    low - span
                } else {
                    low
                }
            }
        }
    };
    let bits = u64::try_from(stored.rem_euclid(span)).unwrap_or_default();
    let reply = match field.action {
        Action::Set(_) => old,
        _ => i64::try_from(stored).unwrap_or_default(),
    };
    Some((bits, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(action: Action, signed: bool, bits: u32, overflow: Overflow) -> Field {
        Field {
            action,
            signed,
            bits,
            offset: 0,
            overflow,
        }
    }

    #[test]
    fn fields_read_and_write_most_significant_bit_first() {
        let mut bytes = vec![0u8; 2];
        let at_five = Field {
            offset: 5,
            ..field(Action::Get, false, 6, Overflow::Wrap)
        };
        set(&mut bytes, &at_five, 0b10_1101);
        assert_eq!(bytes, [0b0000_0101, 0b1010_0000]);
        assert_eq!(get(&bytes, &at_five), 0b10_1101);
        let signed = Field {
            signed: true,
            ..at_five
        };
        assert_eq!(value_of(get(&bytes, &signed), &signed), -19);
        // Past the end reads as zeros.
        let beyond = Field {
            offset: 14,
            ..at_five
        };
        assert_eq!(get(&bytes, &beyond), 0);
    }

    #[test]
    fn overflow_wraps_saturates_or_fails_as_redis_does() {
        let incr = |signed, bits, overflow, by, from| {
            apply(&field(Action::IncrBy(by), signed, bits, overflow), from).map(|(_, reply)| reply)
        };
        assert_eq!(incr(false, 2, Overflow::Wrap, 1, 3), Some(0));
        assert_eq!(incr(false, 2, Overflow::Sat, 10, 1), Some(3));
        assert_eq!(incr(false, 2, Overflow::Sat, -10, 1), Some(0));
        assert_eq!(incr(false, 2, Overflow::Fail, 3, 1), None);
        assert_eq!(incr(true, 8, Overflow::Wrap, 1, 127), Some(-128));
        assert_eq!(incr(true, 8, Overflow::Sat, -300, 0), Some(-128));
        assert_eq!(
            incr(true, 64, Overflow::Wrap, 1, i64::MAX.cast_unsigned()),
            Some(i64::MIN)
        );
        assert_eq!(
            incr(true, 64, Overflow::Sat, 1, i64::MAX.cast_unsigned()),
            Some(i64::MAX)
        );
        // SET replies with the old value and stores what fits.
        let set_to = |value, overflow| apply(&field(Action::Set(value), false, 4, overflow), 5);
        assert_eq!(set_to(-1, Overflow::Sat), Some((15, 5)));
        assert_eq!(set_to(-1, Overflow::Wrap), Some((15, 5)));
        assert_eq!(set_to(17, Overflow::Wrap), Some((1, 5)));
        assert_eq!(set_to(17, Overflow::Fail), None);
    }
}

//! Bitmap commands over strings: `BITCOUNT`, `BITPOS` and `BITOP` (`SETBIT` and `GETBIT` are
//! with the other string commands). Bit 0 is the most significant bit of the first byte, as
//! in Redis; ranges are in bytes, or in bits with `BIT`, and clamp as Redis 7.0 clamps them.
//! The argument checks run in Redis's order, so a missing key answers before a bad range is
//! noticed, as there. `BITOP` writes its result in one commit, without a TTL, and deletes its
//! destination when every source is empty.

use bytes::Bytes;

use super::strings::at;
use super::{int_arg, is, syntax_error, Ctx};
use crate::keyspace::now_millis;
use crate::resp::Reply;

/// A range of bits, first and last included.
#[derive(Clone, Copy)]
struct Bits {
    first: u64,
    last: u64,
}

/// Whether bit `position` of `bytes` is set (bits past the end are clear).
fn bit_at(bytes: &[u8], position: u64) -> bool {
    let byte = usize::try_from(position / 8)
        .ok()
        .and_then(|index| bytes.get(index))
        .copied()
        .unwrap_or(0);
    byte >> (7 - position % 8) & 1 == 1
}

/// `start` and `end` (bytes, or bits with `in_bits`) of a string of `len` bytes as Redis
/// clamps them: negative ones count from the end, then both are brought within the string.
/// `None` for an empty range.
fn clamp(start: i64, end: i64, len: usize, in_bits: bool) -> Option<Bits> {
    let total = i64::try_from(len)
        .unwrap_or(i64::MAX)
        .saturating_mul(if in_bits { 8 } else { 1 });
    let from_end = |index: i64| if index < 0 { total + index } else { index };
    let start = from_end(start).max(0);
    let end = from_end(end).max(0).min(total - 1);
    if start > end {
        return None;
    }
    let (start, end) = (u64::try_from(start).ok()?, u64::try_from(end).ok()?);
    Some(if in_bits {
        Bits {
            first: start,
            last: end,
        }
    } else {
        Bits {
            first: start * 8,
            last: end * 8 + 7,
        }
    })
}

/// `BYTE` or `BIT`: whether the range is in bits.
fn unit_in_bits(arg: &[u8]) -> Result<bool, Reply> {
    if is(arg, "bit") {
        Ok(true)
    } else if is(arg, "byte") {
        Ok(false)
    } else {
        Err(syntax_error())
    }
}

/// `BITCOUNT key [start end [BYTE|BIT]]`.
pub(crate) fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let key = ctx.meta_key(at(args, 1))?;
        let Some((value, _)) = ctx.read_string(&key, now_millis())? else {
            return Ok(Reply::Integer(0));
        };
        let bits = match args.len() {
            2 => clamp(0, -1, value.len(), false),
            4 | 5 => {
                let start = int_arg(at(args, 2))?;
                let end = int_arg(at(args, 3))?;
                if start < 0 && end < 0 && start > end {
                    return Ok(Reply::Integer(0));
                }
                let in_bits = match args.get(4) {
                    Some(unit) => unit_in_bits(unit)?,
                    None => false,
                };
                clamp(start, end, value.len(), in_bits)
            }
            _ => return Err(syntax_error()),
        };
        let count = bits.map_or(0, |bits| count_ones(&value, bits));
        Ok(Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX)))
    };
    run().unwrap_or_else(|error| error)
}

/// The set bits of `bytes` in `bits`: whole bytes by `count_ones`, the edges bit by bit.
fn count_ones(bytes: &[u8], bits: Bits) -> u64 {
    let mut count = 0;
    let mut position = bits.first;
    while position <= bits.last {
        if position.is_multiple_of(8) && position + 7 <= bits.last {
            let index = usize::try_from(position / 8).unwrap_or(usize::MAX);
            count += u64::from(bytes.get(index).map_or(0, |byte| byte.count_ones()));
            position += 8;
        } else {
            count += u64::from(bit_at(bytes, position));
            position += 1;
        }
    }
    count
}

/// The first bit equal to `wanted` in `bits`, skipping whole bytes that hold none.
fn first_bit(bytes: &[u8], bits: Bits, wanted: bool) -> Option<u64> {
    let skip = if wanted { 0x00 } else { 0xff };
    let mut position = bits.first;
    while position <= bits.last {
        let index = usize::try_from(position / 8).unwrap_or(usize::MAX);
        if position.is_multiple_of(8)
            && position + 7 <= bits.last
            && bytes.get(index).copied().unwrap_or(0) == skip
        {
            position += 8;
            continue;
        }
        if bit_at(bytes, position) == wanted {
            return Some(position);
        }
        position += 1;
    }
    None
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the first bit equal to `bit` in the range, or
/// -1. Looking for a 0 without an `end`, a string of 1s answers the bit just past it, as if
/// zeros followed (Redis's rule).
pub(crate) fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let bit = int_arg(at(args, 2))?;
        if bit != 0 && bit != 1 {
            return Err(Reply::err("The bit argument must be 1 or 0."));
        }
        let wanted = bit == 1;
        let key = ctx.meta_key(at(args, 1))?;
        let Some((value, _)) = ctx.read_string(&key, now_millis())? else {
            return Ok(Reply::Integer(if wanted { -1 } else { 0 }));
        };
        let (bits, end_given) = match args.len() {
            3 => (clamp(0, -1, value.len(), false), false),
            4..=6 => {
                let start = int_arg(at(args, 3))?;
                let in_bits = match args.get(5) {
                    Some(unit) => unit_in_bits(unit)?,
                    None => false,
                };
                let end = match args.get(4) {
                    Some(end) => int_arg(end)?,
                    None => -1,
                };
                (clamp(start, end, value.len(), in_bits), args.len() >= 5)
            }
            _ => return Err(syntax_error()),
        };
        let Some(bits) = bits else {
            return Ok(Reply::Integer(-1));
        };
        let found = match first_bit(&value, bits, wanted) {
            Some(position) => i64::try_from(position).unwrap_or(i64::MAX),
            None if wanted || end_given => -1,
            // The bit after the last byte of the range.
            None => i64::try_from((bits.last / 8 + 1) * 8).unwrap_or(i64::MAX),
        };
        Ok(Reply::Integer(found))
    };
    run().unwrap_or_else(|error| error)
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`: the length of the result, which is stored
/// in `destkey` (deleted when it is empty).
pub(crate) fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let op = at(args, 1);
        let combine: fn(u8, u8) -> u8 = if is(op, "and") {
            |a, b| a & b
        } else if is(op, "or") {
            |a, b| a | b
        } else if is(op, "xor") {
            |a, b| a ^ b
        } else if is(op, "not") {
            |a, _| !a
        } else {
            return Err(syntax_error());
        };
        if is(op, "not") && args.len() != 4 {
            return Err(Reply::err(
                "BITOP NOT must be called with a single source key.",
            ));
        }
        let now = now_millis();
        let target = ctx.meta_key(at(args, 2))?;
        let sources = args
            .iter()
            .skip(3)
            .map(|key| ctx.meta_key(key))
            .collect::<Result<Vec<_>, _>>()?;
        let mut locked = sources.clone();
        locked.push(target.clone());
        let _locks = ctx.lock(&locked);
        let mut inputs = Vec::with_capacity(sources.len());
        for source in &sources {
            inputs.push(ctx.read_string(source, now)?.unwrap_or_default().0);
        }
        let longest = inputs.iter().map(Vec::len).max().unwrap_or(0);
        if longest == 0 {
            ctx.delete(&target, now)?;
            return Ok(Reply::Integer(0));
        }
        let result: Vec<u8> = (0..longest)
            .map(|index| {
                let byte = |input: &Vec<u8>| input.get(index).copied().unwrap_or(0);
                let mut values = inputs.iter().map(byte);
                let first = values.next().unwrap_or(0);
                if is(op, "not") {
                    combine(first, 0)
                } else {
                    values.fold(first, combine)
                }
            })
            .collect();
        ctx.write_string(&target, &result, None, now)?;
        Ok(Reply::Integer(i64::try_from(longest).unwrap_or(i64::MAX)))
    };
    run().unwrap_or_else(|error| error)
}

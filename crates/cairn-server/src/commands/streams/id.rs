//! Stream ids as commands give them: parsing each form Redis accepts, with its errors, and
//! choosing the id `XADD` gives a new entry. An id never goes back: every added id is greater
//! than the stream's last one.

use crate::keyspace::StreamId;
use crate::resp::Reply;

use super::invalid_id;

/// Digits only, as a `u64`.
pub(super) fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// How an id argument was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdArg {
    /// `ms-seq`, or `ms` (the sequence `missing_seq`).
    Exact(StreamId),
    /// `ms-*` (only where `XADD` allows it).
    AutoSeq(u64),
}

/// Parses an id as Redis does: `-` and `+` stand for the least and greatest unless `strict`;
/// `ms` alone takes `missing_seq`; `ms-*` only when `auto_seq`.
pub(super) fn parse_id_arg(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    auto_seq: bool,
) -> Result<IdArg, Reply> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" if !strict => return Ok(IdArg::Exact(StreamId::MIN)),
        b"+" if !strict => return Ok(IdArg::Exact(StreamId::MAX)),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&byte| byte == b'-') {
        Some(dash) => (
            arg.get(..dash).unwrap_or_default(),
            Some(arg.get(dash + 1..).unwrap_or_default()),
        ),
        None => (arg, None),
    };
    let ms = parse_u64(ms).ok_or_else(invalid_id)?;
    match seq {
        None => Ok(IdArg::Exact(StreamId {
            ms,
            seq: missing_seq,
        })),
        Some(b"*") if auto_seq => Ok(IdArg::AutoSeq(ms)),
        Some(seq) => Ok(IdArg::Exact(StreamId {
            ms,
            seq: parse_u64(seq).ok_or_else(invalid_id)?,
        })),
    }
}

/// A strict id: `ms-seq` or `ms` (sequence 0).
pub(super) fn parse_strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_id_arg(arg, 0, true, false)? {
        IdArg::Exact(id) => Ok(id),
        IdArg::AutoSeq(_) => Err(invalid_id()),
    }
}

/// An interval end of `XRANGE`: `-`, `+`, an id (a missing sequence is `missing_seq`), or
/// `(id` for an exclusive end; returns the id and whether it is exclusive.
pub(super) fn parse_interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if let Some(rest) = arg.strip_prefix(b"(").filter(|rest| !rest.is_empty()) {
        return match parse_id_arg(rest, missing_seq, true, false)? {
            IdArg::Exact(id) => Ok((id, true)),
            IdArg::AutoSeq(_) => Err(invalid_id()),
        };
    }
    match parse_id_arg(arg, missing_seq, false, false)? {
        IdArg::Exact(id) => Ok((id, false)),
        IdArg::AutoSeq(_) => Err(invalid_id()),
    }
}

/// The id `XADD` gives after `last`, as Redis picks it: `*` the clock's millisecond (or the
/// next sequence of `last`'s), `ms-*` the next free sequence of `ms`, `ms-seq` itself; each
/// must be greater than `last`.
pub(super) fn next_id(last: StreamId, given: Option<IdArg>, now: u64) -> Result<StreamId, Reply> {
    let smaller = || {
        Reply::err("The ID specified in XADD is equal or smaller than the target stream top item")
    };
    let id = match given {
        None if now > last.ms => StreamId { ms: now, seq: 0 },
        None => last.next().ok_or_else(smaller)?,
        Some(IdArg::Exact(id)) => id,
        Some(IdArg::AutoSeq(ms)) if ms == last.ms => {
            let seq = last
                .seq
                .checked_add(1)
                .ok_or_else(|| Reply::err("Elements are too large to be stored"))?;
            StreamId { ms, seq }
        }
        Some(IdArg::AutoSeq(ms)) => StreamId { ms, seq: 0 },
    };
    if id <= last {
        return Err(smaller());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_parses_them() {
        let exact = |ms, seq| Ok(IdArg::Exact(StreamId { ms, seq }));
        assert_eq!(parse_id_arg(b"5", 0, true, false), exact(5, 0));
        assert_eq!(
            parse_id_arg(b"5", u64::MAX, true, false),
            exact(5, u64::MAX)
        );
        assert_eq!(parse_id_arg(b"5-7", 0, true, false), exact(5, 7));
        assert_eq!(parse_id_arg(b"-", 0, false, false), exact(0, 0));
        assert_eq!(
            parse_id_arg(b"+", 0, false, false),
            Ok(IdArg::Exact(StreamId::MAX))
        );
        assert_eq!(parse_id_arg(b"5-*", 0, true, true), Ok(IdArg::AutoSeq(5)));
        for bad in [
            &b"-"[..],
            b"+",
            b"",
            b"5-",
            b"-5",
            b"5-*",
            b"a",
            b"5-6-7",
            b"18446744073709551616",
        ] {
            assert!(parse_id_arg(bad, 0, true, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_follow_the_clock_and_never_go_back() {
        let last = StreamId { ms: 10, seq: 3 };
        assert_eq!(next_id(last, None, 20), Ok(StreamId { ms: 20, seq: 0 }));
        assert_eq!(next_id(last, None, 5), Ok(StreamId { ms: 10, seq: 4 }));
        assert_eq!(
            next_id(last, Some(IdArg::AutoSeq(10)), 0),
            Ok(StreamId { ms: 10, seq: 4 })
        );
        assert_eq!(
            next_id(last, Some(IdArg::AutoSeq(11)), 0),
            Ok(StreamId { ms: 11, seq: 0 })
        );
        assert!(next_id(last, Some(IdArg::AutoSeq(9)), 0).is_err());
        assert!(next_id(last, Some(IdArg::Exact(last)), 0).is_err());
        let full = StreamId {
            ms: 10,
            seq: u64::MAX,
        };
        assert_eq!(next_id(full, None, 0), Ok(StreamId { ms: 11, seq: 0 }));
        assert!(next_id(full, Some(IdArg::AutoSeq(10)), 0).is_err());
    }
}

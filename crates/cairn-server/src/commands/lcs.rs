//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: the longest common subsequence
//! of two strings, by Redis 7.0's dynamic program, walked back the way Redis walks it so that
//! ties resolve alike and `IDX` reports the same ranges.
//!
//! Guarantees: its table takes `(len1 + 1) * (len2 + 1) * 4` bytes, refused with Redis's
//! error above the server's bulk limit (Redis bounds it by `proto-max-bulk-len` too) and
//! reserved fallibly, so a large pair gets an error, never an abort. It reads two keys at one
//! version and writes nothing.

use bytes::Bytes;

use super::strings::at;
use super::{is, syntax_error, Ctx};
use crate::keyspace::{self, now_millis};
use crate::resp::Reply;

/// What the reply holds.
struct Options {
    len: bool,
    idx: bool,
    min_match: u64,
    with_match_len: bool,
}

fn parse_options(args: &[Bytes]) -> Result<Options, Reply> {
    let mut options = Options {
        len: false,
        idx: false,
        min_match: 0,
        with_match_len: false,
    };
    let mut rest = args.iter().skip(3);
    while let Some(option) = rest.next() {
        if is(option, "idx") {
            options.idx = true;
        } else if is(option, "len") {
            options.len = true;
        } else if is(option, "withmatchlen") {
            options.with_match_len = true;
        } else if is(option, "minmatchlen") && rest.len() > 0 {
            let value = super::int_arg(rest.next().map(Bytes::as_ref).unwrap_or_default())?;
            options.min_match = u64::try_from(value).unwrap_or(0);
        } else {
            return Err(syntax_error());
        }
    }
    if options.len && options.idx {
        return Err(Reply::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(options)
}

/// The string under `key` (empty if absent), or the error for another type.
fn string_of(ctx: &Ctx<'_>, key: &[u8], now: u64) -> Result<Vec<u8>, Reply> {
    let meta_key = ctx.meta_key(key)?;
    let Some(stored) = ctx.read(&meta_key, now)? else {
        return Ok(Vec::new());
    };
    let entry = stored.entry();
    if entry.kind != keyspace::Kind::String {
        return Err(Reply::err("The specified keys must contain string values"));
    }
    Ok(entry.payload.to_vec())
}

pub(crate) fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let a = string_of(ctx, at(args, 1), now)?;
        let b = string_of(ctx, at(args, 2), now)?;
        let options = parse_options(args)?;
        let bulk_max = ctx.shared.config.bulk_bytes_max;
        let table = Table::build(&a, &b, bulk_max)?;
        Ok(table.reply(&a, &b, &options))
    };
    run().unwrap_or_else(|error| error)
}

/// `cells[j + (b.len() + 1) * i]`: the length of the LCS of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
}

impl Table {
    fn build(a: &[u8], b: &[u8], bulk_max: usize) -> Result<Table, Reply> {
        if u32::try_from(a.len()).is_err() || u32::try_from(b.len()).is_err() {
            return Err(Reply::err("String too long for LCS"));
        }
        let width = b.len() + 1;
        let too_big = || {
            Reply::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        };
        let cells_len = (a.len() + 1).checked_mul(width).ok_or_else(too_big)?;
        if cells_len
            .checked_mul(4)
            .is_none_or(|bytes| bytes > bulk_max)
        {
            return Err(too_big());
        }
        let mut cells = Vec::new();
        if cells.try_reserve_exact(cells_len).is_err() {
            return Err(Reply::err(
                "Insufficient memory, failed allocating transient memory for LCS",
            ));
        }
        cells.resize(width, 0);
        for (i, &left) in a.iter().enumerate() {
            let row = i * width;
            cells.push(0);
            for (j, &right) in b.iter().enumerate() {
                let value = if left == right {
                    cells.get(row + j).map_or(0, |diagonal| diagonal + 1)
                } else {
                    let up = cells.get(row + j + 1).copied().unwrap_or(0);
                    let back = cells.last().copied().unwrap_or(0);
                    up.max(back)
                };
                cells.push(value);
            }
        }
        debug_assert_eq!(cells.len(), cells_len);
        Ok(Table { cells, width })
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells.get(j + self.width * i).copied().unwrap_or(0)
    }

    /// Walks the table back from its last cell as Redis does: the subsequence, and each run
    /// of matches as `(a start, a end, b start, b end)`, last run first.
    fn walk(&self, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<[usize; 4]>) {
        let mut sequence = Vec::new();
        let mut runs = Vec::new();
        let mut current: Option<[usize; 4]> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a.get(i - 1) == b.get(j - 1) {
                sequence.extend(a.get(i - 1));
                current = match current {
                    None => Some([i - 1, i - 1, j - 1, j - 1]),
                    // Contiguous with the run so far: extend it backward.
                    Some([a_start, a_end, b_start, b_end]) if a_start == i && b_start == j => {
                        Some([a_start - 1, a_end, b_start - 1, b_end])
                    }
                    Some(run) => {
                        emit = true;
                        Some(run)
                    }
                };
                if current.is_some_and(|[a_start, _, b_start, _]| a_start == 0 || b_start == 0) {
                    emit = true;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = current.is_some();
            }
            if emit {
                runs.extend(current.take());
            }
        }
        sequence.reverse();
        (sequence, runs)
    }

    fn reply(&self, a: &[u8], b: &[u8], options: &Options) -> Reply {
        let len = i64::from(self.at(a.len(), b.len()));
        if options.len {
            return Reply::Integer(len);
        }
        let (sequence, runs) = self.walk(a, b);
        if !options.idx {
            return Reply::bulk(sequence);
        }
        let number = |value: usize| Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX));
        let matches = runs
            .into_iter()
            .filter_map(|[a_start, a_end, b_start, b_end]| {
                let match_len = a_end - a_start + 1;
                if u64::try_from(match_len).unwrap_or(u64::MAX) < options.min_match {
                    return None;
                }
                let mut entry = vec![
                    Reply::Array(vec![number(a_start), number(a_end)]),
                    Reply::Array(vec![number(b_start), number(b_end)]),
                ];
                if options.with_match_len {
                    entry.push(number(match_len));
                }
                Some(Reply::Array(entry))
            })
            .collect();
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Integer(len)),
        ])
    }
}

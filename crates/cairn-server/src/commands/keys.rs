//! Key commands: `DEL`/`UNLINK`, `EXISTS`, the expiry family, `TYPE`, `KEYS`, `SCAN`,
//! `RENAME`, `COPY`, `MOVE`, `RANDOMKEY`, `OBJECT REFCOUNT`, `MEMORY USAGE`. Semantics and
//! error texts follow Redis 7.0; where they differ on purpose, docs/design.md section 15 says
//! how. `RENAME`, `COPY` and `MOVE` share one transfer of a key and its records, in one commit.

use std::ops::Bound;
use std::time::Duration;

use bytes::Bytes;

use super::strings::at;
use super::{int_arg, is, syntax_error, Ctx};
use crate::glob;
use crate::keyspace::{self, now_millis};
use crate::resp::{Reply, OK};

fn count(n: usize) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(crate) fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let keys = args
            .iter()
            .skip(1)
            .map(|key| ctx.meta_key(key))
            .collect::<Result<Vec<_>, _>>()?;
        let _locks = ctx.lock(&keys);
        let mut deleted = 0;
        for key in &keys {
            if ctx.delete(key, now)? {
                deleted += 1;
            }
        }
        Ok(count(deleted))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let mut found = 0;
        for key in args.iter().skip(1) {
            if ctx.read(&ctx.meta_key(key)?, now)?.is_some() {
                found += 1;
            }
        }
        Ok(count(found))
    };
    run().unwrap_or_else(|error| error)
}

/// `EXPIRE`'s conditions.
#[derive(Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "one flag per option, as the command has"
)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_conditions(options: &[Bytes]) -> Result<Conditions, Reply> {
    let mut conditions = Conditions::default();
    for option in options {
        if is(option, "nx") {
            conditions.nx = true;
        } else if is(option, "xx") {
            conditions.xx = true;
        } else if is(option, "gt") {
            conditions.gt = true;
        } else if is(option, "lt") {
            conditions.lt = true;
        } else {
            return Err(Reply::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if conditions.nx && (conditions.xx || conditions.gt || conditions.lt) {
        return Err(Reply::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if conditions.gt && conditions.lt {
        return Err(Reply::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    Ok(conditions)
}

/// The expiry commands: `seconds` scales the argument, `absolute` says it is a Unix time.
fn expire_generic(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    seconds: bool,
    absolute: bool,
    command: &str,
) -> Result<Reply, Reply> {
    let conditions = parse_conditions(args.get(3..).unwrap_or_default())?;
    let amount = int_arg(at(args, 2))?;
    let now = now_millis();
    let invalid = || Reply::err(format!("invalid expire time in '{command}' command"));
    let millis = if seconds {
        amount.checked_mul(1000).ok_or_else(invalid)?
    } else {
        amount
    };
    let base = if absolute {
        0
    } else {
        i64::try_from(now).unwrap_or(i64::MAX)
    };
    let when = millis.checked_add(base).ok_or_else(invalid)?;
    let key = ctx.meta_key(at(args, 1))?;
    let _locks = ctx.lock(&[&key]);
    let Some(stored) = ctx.read(&key, now)? else {
        return Ok(Reply::Integer(0));
    };
    let entry = stored.entry();
    let current = entry
        .deadline
        .map(|deadline| i64::try_from(deadline).unwrap_or(i64::MAX));
    let refused = (conditions.nx && current.is_some())
        || (conditions.xx && current.is_none())
        || (conditions.gt && current.is_none_or(|current| when <= current))
        || (conditions.lt && current.is_some_and(|current| when >= current));
    if refused {
        return Ok(Reply::Integer(0));
    }
    match u64::try_from(when) {
        Ok(deadline) if deadline > now => {
            let record = keyspace::encode(entry.kind, Some(deadline), entry.payload);
            ctx.write_record(&key, &record, Some(deadline), now)?;
        }
        // At or before now: the key expires at once.
        _ => {
            ctx.delete(&key, now)?;
        }
    }
    Ok(Reply::Integer(1))
}

pub(crate) fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, true, false, "expire").unwrap_or_else(|error| error)
}

pub(crate) fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, false, false, "pexpire").unwrap_or_else(|error| error)
}

pub(crate) fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, true, true, "expireat").unwrap_or_else(|error| error)
}

pub(crate) fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, false, true, "pexpireat").unwrap_or_else(|error| error)
}

/// What the TTL family reports: `-2` for no key, `-1` for no expiry, else `value(deadline,
/// now)`.
fn ttl_generic(ctx: &Ctx<'_>, args: &[Bytes], value: fn(u64, u64) -> u64) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        Ok(match ctx.read(&key, now)? {
            None => Reply::Integer(-2),
            Some(stored) => match stored.entry().deadline {
                None => Reply::Integer(-1),
                Some(deadline) => {
                    Reply::Integer(i64::try_from(value(deadline, now)).unwrap_or(i64::MAX))
                }
            },
        })
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |deadline, now| {
        (deadline.saturating_sub(now) + 500) / 1000
    })
}

pub(crate) fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, u64::saturating_sub)
}

pub(crate) fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |deadline, _| deadline / 1000)
}

pub(crate) fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, args, |deadline, _| deadline)
}

pub(crate) fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let key = ctx.meta_key(at(args, 1))?;
        let _locks = ctx.lock(&[&key]);
        let Some(stored) = ctx.read(&key, now)? else {
            return Ok(Reply::Integer(0));
        };
        let entry = stored.entry();
        if entry.deadline.is_none() {
            return Ok(Reply::Integer(0));
        }
        ctx.write_record(
            &key,
            &keyspace::encode(entry.kind, None, entry.payload),
            None,
            now,
        )?;
        Ok(Reply::Integer(1))
    };
    run().unwrap_or_else(|error| error)
}

pub(crate) fn type_of(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let key = ctx.meta_key(at(args, 1))?;
        Ok(Reply::Status(match ctx.read(&key, now_millis())? {
            None => "none",
            Some(stored) => stored.entry().kind.name(),
        }))
    };
    run().unwrap_or_else(|error| error)
}

/// `MEMORY USAGE key [SAMPLES count]`: the bytes of the key's records (engine key and
/// value), as Redis estimates a key's memory. A collection's element records are sampled,
/// `SAMPLES` of each kind (default 5, 0: all), and their mean size counted once per record
/// (per element, or per chunk of a list);
/// a stream's groups and pending entries are counted as far as the sample reaches. The
/// engine's own per-record overhead is not included.
pub(crate) fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = at(args, 1);
    if !is(sub, "usage") || args.len() < 3 {
        return Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try MEMORY HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    let samples = match args.get(3..).unwrap_or_default() {
        [] => 5,
        [option, count] if is(option, "samples") => match int_arg(count) {
            Ok(0) => usize::MAX,
            Ok(count) => usize::try_from(count).unwrap_or(1).max(1),
            Err(error) => return error,
        },
        _ => return syntax_error(),
    };
    memory_usage(ctx, at(args, 2), samples).unwrap_or_else(|error| error)
}

/// `OBJECT REFCOUNT key`: 1 for a live key (Cairn shares no values between keys), nil
/// otherwise. Its other subcommands describe Redis's in-memory encodings and clock, which
/// Cairn does not have.
pub(crate) fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        object_subcommand(args)?;
        let meta_key = ctx.meta_key(at(args, 2))?;
        Ok(match ctx.read(&meta_key, now_millis())? {
            Some(_) => Reply::Integer(1),
            None => Reply::Null,
        })
    };
    run().unwrap_or_else(|error| error)
}

/// Redis's errors for an `OBJECT` subcommand Cairn does not have, or of the wrong arity.
pub(crate) fn object_subcommand(args: &[Bytes]) -> Result<(), Reply> {
    let sub = at(args, 1);
    if !is(sub, "refcount") {
        return Err(Reply::err(format!(
            "unknown subcommand '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    if args.len() != 3 {
        return Err(Reply::err(
            "wrong number of arguments for 'object|refcount' command",
        ));
    }
    Ok(())
}

fn memory_usage(ctx: &Ctx<'_>, key: &[u8], samples: usize) -> Result<Reply, Reply> {
    let meta_key = ctx.meta_key(key)?;
    let Some(stored) = ctx.read(&meta_key, now_millis())? else {
        return Ok(Reply::Null);
    };
    let entry = stored.entry();
    let mut bytes = meta_key.len() + stored.len();
    // The collection's version and how many element records it has: one per element, but
    // one per chunk for a list.
    let elements = match entry.kind {
        keyspace::Kind::String => None,
        keyspace::Kind::Stream => keyspace::StreamHeader::decode(entry.payload)
            .map(|header| (header.version, header.count)),
        keyspace::Kind::List => keyspace::Collection::decode(entry.payload)
            .map(|header| (header.version, header.tail - header.head)),
        _ => {
            keyspace::Collection::decode(entry.payload).map(|header| (header.version, header.count))
        }
    };
    if let Some((version, count)) = elements {
        let db = ctx.client.db;
        let prefixes = keyspace::collection_prefixes(db, key, version);
        for (index, prefix) in prefixes.iter().enumerate() {
            let (mut records, mut record_bytes) = (0usize, 0usize);
            ctx.scan_prefix(prefix, |engine_key, value| {
                records += 1;
                record_bytes += engine_key.len() + value.len();
                records < samples
            })?;
            // Members, chunks and scores are counted in the header; a stream's group
            // records (the second prefix) are not.
            let per_element = index != 1 && records > 0;
            bytes += if per_element {
                let total = u128::from(count).max(records as u128);
                usize::try_from(record_bytes as u128 * total / records as u128)
                    .unwrap_or(usize::MAX)
            } else {
                record_bytes
            };
        }
    }
    Ok(Reply::Integer(i64::try_from(bytes).unwrap_or(i64::MAX)))
}

pub(crate) fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let pattern = at(args, 1);
    let now = now_millis();
    let mut found = Vec::new();
    let scanned = ctx.scan_prefix(
        &keyspace::meta_prefix(ctx.client.db),
        |engine_key, record| {
            let user_key = keyspace::user_key(engine_key);
            let live = keyspace::decode(record.as_bytes()).is_some_and(|entry| entry.is_live(now));
            if live && glob::matches(pattern, user_key) {
                found.push(Reply::bulk(user_key));
            }
            true
        },
    );
    match scanned {
        Ok(()) => Reply::Array(found),
        Err(error) => error,
    }
}

/// The options of `SCAN` and its relatives.
pub(crate) struct ScanOptions<'a> {
    pub(crate) pattern: Option<&'a [u8]>,
    pub(crate) count: usize,
    pub(crate) kind: Option<&'a [u8]>,
}

/// Parses `[MATCH pattern] [COUNT n] [TYPE t]`.
pub(crate) fn scan_options(options: &[Bytes]) -> Result<ScanOptions<'_>, Reply> {
    let mut parsed = ScanOptions {
        pattern: None,
        count: 10,
        kind: None,
    };
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(syntax_error)?;
        if is(option, "match") {
            parsed.pattern = Some(value);
        } else if is(option, "count") {
            parsed.count = usize::try_from(int_arg(value)?)
                .ok()
                .filter(|&count| count >= 1)
                .ok_or_else(syntax_error)?;
        } else if is(option, "type") {
            parsed.kind = Some(value);
        } else {
            return Err(syntax_error());
        }
    }
    Ok(parsed)
}

pub(crate) fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let cursor = std::str::from_utf8(at(args, 1))
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| Reply::err("invalid cursor"))?;
        let ScanOptions {
            pattern,
            count: limit,
            kind: wanted_type,
        } = scan_options(args.get(2..).unwrap_or_default())?;
        let now = now_millis();
        let prefix = keyspace::meta_prefix(ctx.client.db);
        let start = match ctx.shared.cursors.lock().resume_after(cursor) {
            Some(last) if cursor != 0 => std::ops::Bound::Excluded(last),
            _ => std::ops::Bound::Included(prefix.to_vec()),
        };
        let end =
            std::ops::Bound::Excluded(vec![ctx.client.db, prefix.last().copied().unwrap_or(0) + 1]);
        let mut found = Vec::new();
        let mut last = None;
        let mut more = false;
        let mut visited = 0;
        ctx.scan(start, end, |engine_key, record| {
            if visited == limit {
                more = true;
                return false;
            }
            visited += 1;
            let user_key = keyspace::user_key(engine_key);
            let entry = keyspace::decode(record.as_bytes());
            let keep = entry.is_some_and(|entry| {
                entry.is_live(now)
                    && pattern.is_none_or(|pattern| glob::matches(pattern, user_key))
                    && wanted_type.is_none_or(|wanted| is(wanted, entry.kind.name()))
            });
            if keep {
                found.push(Reply::bulk(user_key));
            }
            last = Some(engine_key.to_vec());
            true
        })?;
        // A page that stopped at its limit gets a cursor; one that reached the end gets 0.
        let next = match last {
            Some(last) if more => ctx.shared.cursors.lock().save(last),
            _ => 0,
        };
        Ok(Reply::Array(vec![
            Reply::bulk(next.to_string()),
            Reply::Array(found),
        ]))
    };
    run().unwrap_or_else(|error| error)
}

fn rename_generic(ctx: &Ctx<'_>, args: &[Bytes], only_new: bool) -> Result<Reply, Reply> {
    let now = now_millis();
    let source = ctx.meta_key(at(args, 1))?;
    let target = ctx.meta_key(at(args, 2))?;
    let _locks = ctx.lock(&[&source, &target]);
    let Some(stored) = ctx.read(&source, now)? else {
        return Err(Reply::err("no such key"));
    };
    if source == target {
        return Ok(if only_new { Reply::Integer(0) } else { OK });
    }
    if only_new && ctx.read(&target, now)?.is_some() {
        return Ok(Reply::Integer(0));
    }
    let db = ctx.client.db;
    let from = Place {
        db,
        key: at(args, 1),
    };
    let to = Place {
        db,
        key: at(args, 2),
    };
    transfer(ctx, &stored, from, to, Transfer::Move, now)?;
    Ok(if only_new { Reply::Integer(1) } else { OK })
}

/// A key in one database: where [`transfer`] takes a key from and puts it.
#[derive(Clone, Copy)]
struct Place<'a> {
    db: u8,
    key: &'a [u8],
}

impl Place<'_> {
    fn meta_key(self) -> Vec<u8> {
        keyspace::meta_key(self.db, self.key)
    }
}

/// Whether [`transfer`] leaves the source in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transfer {
    /// `RENAME`, `MOVE`: the source goes, and a collection keeps its version.
    Move,
    /// `COPY`: the source stays, and the copy of a collection gets a version of its own, so
    /// that the two never share element records, whatever is later renamed onto what.
    Copy,
}

/// Most records one `RENAME`, `MOVE` or `COPY` of a collection writes: the engine's limit
/// on one commit. A larger collection gets an error before its records are gathered, not
/// after, so the command never holds more than this in memory.
const TRANSFER_RECORDS_MAX: usize = cairn::limits::COMMIT_MUTATIONS_MAX / 2;

/// Writes the live key `stored` (read at `from`) to `to` in one commit, with its type,
/// deadline and, for a collection, every record it keeps beside its metadata record (which
/// hold the user key, so this is O(elements), unlike Redis's O(1) `RENAME` and `MOVE`). The
/// caller holds the locks of both keys and has decided `to` may be overwritten.
fn transfer(
    ctx: &Ctx<'_>,
    stored: &super::Stored,
    from: Place<'_>,
    to: Place<'_>,
    how: Transfer,
    now: u64,
) -> Result<(), Reply> {
    let entry = stored.entry();
    let mut payload = entry.payload.to_vec();
    let mut batch = super::Writes::new();
    if entry.kind != keyspace::Kind::String {
        let version = keyspace::version_of(entry.payload)
            .ok_or_else(|| Reply::err("cairn: the header of this key is damaged"))?;
        let new_version = match how {
            Transfer::Move => version,
            Transfer::Copy => ctx.new_collection_version(),
        };
        if let Some(word) = payload.first_chunk_mut::<8>() {
            *word = new_version.to_le_bytes();
        }
        let sources = keyspace::collection_prefixes(from.db, from.key, version);
        let targets = keyspace::collection_prefixes(to.db, to.key, new_version);
        for (source, target) in sources.iter().zip(targets) {
            let mut too_many = false;
            ctx.scan_prefix(source, |engine_key, value| {
                if batch.len() >= TRANSFER_RECORDS_MAX {
                    too_many = true;
                    return false;
                }
                let mut key = target.clone();
                key.extend_from_slice(engine_key.get(source.len()..).unwrap_or_default());
                batch.put(key, value.as_bytes());
                if how == Transfer::Move {
                    batch.delete(engine_key);
                }
                true
            })?;
            if too_many {
                return Err(Reply::err(format!(
                    "cairn: the key keeps more than {TRANSFER_RECORDS_MAX} records, too many \
                     to move or copy in one commit"
                )));
            }
        }
    }
    let record = keyspace::encode(entry.kind, entry.deadline, &payload);
    let target = to.meta_key();
    match entry.deadline {
        Some(deadline) => {
            let reap_after = deadline.saturating_sub(now) + keyspace::REAP_SLACK_MILLIS;
            batch.put_with_ttl(&target, &record, Duration::from_millis(reap_after));
        }
        None => batch.put(&target, &record),
    }
    if how == Transfer::Move {
        batch.delete(from.meta_key());
    }
    ctx.apply(&batch)
}

pub(crate) fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, false).unwrap_or_else(|error| error)
}

pub(crate) fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    rename_generic(ctx, args, true).unwrap_or_else(|error| error)
}

/// `COPY` and `MOVE` once their arguments are checked: with both keys locked, 0 if `from` is
/// absent or `to` is taken (unless `replace`), else the [`transfer`] and 1.
fn transfer_unless_taken(
    ctx: &Ctx<'_>,
    from: Place<'_>,
    to: Place<'_>,
    replace: bool,
    how: Transfer,
    now: u64,
) -> Result<Reply, Reply> {
    let (source, target) = (from.meta_key(), to.meta_key());
    let _locks = ctx.lock(&[&source, &target]);
    let Some(stored) = ctx.read(&source, now)? else {
        return Ok(Reply::Integer(0));
    };
    if !replace && ctx.read(&target, now)?.is_some() {
        return Ok(Reply::Integer(0));
    }
    transfer(ctx, &stored, from, to, how, now)?;
    Ok(Reply::Integer(1))
}

/// `COPY source destination [DB db] [REPLACE]`: 1 if copied, 0 if the source is absent or
/// the destination exists (without `REPLACE`).
pub(crate) fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let mut target_db = ctx.client.db;
        let mut replace = false;
        let mut options = args.iter().skip(3);
        while let Some(option) = options.next() {
            if is(option, "replace") {
                replace = true;
            } else if is(option, "db") {
                let Some(db) = options.next() else {
                    return Err(syntax_error());
                };
                target_db = super::connection::db_arg(db)?;
            } else {
                return Err(syntax_error());
            }
        }
        let from = Place {
            db: ctx.client.db,
            key: at(args, 1),
        };
        let to = Place {
            db: target_db,
            key: at(args, 2),
        };
        ctx.meta_key(from.key)?;
        ctx.meta_key(to.key)?;
        if from.db == to.db && from.key == to.key {
            return Err(Reply::err("source and destination objects are the same"));
        }
        transfer_unless_taken(ctx, from, to, replace, Transfer::Copy, now)
    };
    run().unwrap_or_else(|error| error)
}

/// `MOVE key db`: 1 if moved, 0 if the key is absent here or present there.
pub(crate) fn move_key(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run = || -> Result<Reply, Reply> {
        let now = now_millis();
        let target_db = super::connection::db_arg(at(args, 2))?;
        ctx.meta_key(at(args, 1))?;
        if target_db == ctx.client.db {
            return Err(Reply::err("source and destination objects are the same"));
        }
        let from = Place {
            db: ctx.client.db,
            key: at(args, 1),
        };
        let to = Place {
            db: target_db,
            key: at(args, 1),
        };
        transfer_unless_taken(ctx, from, to, false, Transfer::Move, now)
    };
    run().unwrap_or_else(|error| error)
}

/// Records one `RANDOMKEY` probe walks past (expired ones) in each direction.
const RANDOM_KEY_WALK_MAX: usize = 64;

/// Live keys one `RANDOMKEY` probe gathers, to pick among: keys packed close together (`k:1`,
/// `k:10`, `k:11`, ...) then share the probes that land near them.
const RANDOM_KEY_NEIGHBOURS: usize = 16;

/// Probes `RANDOMKEY` makes before it settles for the first live key.
const RANDOM_KEY_PROBES: usize = 4;

/// `RANDOMKEY`: a live key of the selected database picked at random, or nil.
///
/// The keys are ordered, not hashed, so the pick starts at a random point between the first
/// and the last key (drawn over the eight bytes after their common prefix), and takes one of
/// the [`RANDOM_KEY_NEIGHBOURS`] live keys just after or just before it, half and half. Every
/// key can be picked; keys beside wide gaps of the key space are picked more often than
/// others (the test `randomkey_reaches_every_key` bounds how much).
/// Inside `EXEC` the backward walks read the database's keys whole (a transaction scans
/// forward only).
pub(crate) fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    random_key(ctx, now_millis()).unwrap_or_else(|error| error)
}

fn random_key(ctx: &Ctx<'_>, now: u64) -> Result<Reply, Reply> {
    let prefix = keyspace::meta_prefix(ctx.client.db).to_vec();
    let end = || match super::store::prefix_end(&prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let mut first = None;
    ctx.scan(Bound::Included(prefix.clone()), end(), |key, _| {
        first = Some(key.to_vec());
        false
    })?;
    let mut last = None;
    ctx.scan_rev(Bound::Included(prefix.clone()), end(), |key, _| {
        last = Some(key.to_vec());
        false
    })?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Reply::Null);
    };
    let live = |value: &cairn::Value| {
        keyspace::decode(value.as_bytes()).is_some_and(|entry| entry.is_live(now))
    };
    for _ in 0..RANDOM_KEY_PROBES {
        let probe = probe_between(&first, &last);
        // One direction, picked at random; where it reaches an end of the database first,
        // the window goes on from the probe the other way, so the keys at the ends are not
        // picked more often than the others.
        let first_forward = fastrand::bool();
        let mut near = Vec::new();
        for forward in [first_forward, !first_forward] {
            let mut walked = 0;
            let mut visit = |key: &[u8], value: &cairn::Value| {
                walked += 1;
                if live(value) {
                    near.push(key.to_vec());
                }
                near.len() < RANDOM_KEY_NEIGHBOURS && walked < RANDOM_KEY_WALK_MAX
            };
            if forward {
                ctx.scan(Bound::Included(probe.clone()), end(), &mut visit)?;
            } else {
                let lower = Bound::Included(prefix.clone());
                ctx.scan_rev(lower, Bound::Excluded(probe.clone()), &mut visit)?;
            }
            if near.len() >= RANDOM_KEY_NEIGHBOURS || walked >= RANDOM_KEY_WALK_MAX {
                break;
            }
        }
        if !near.is_empty() {
            let key = near.swap_remove(fastrand::usize(..near.len()));
            return Ok(Reply::bulk(keyspace::user_key(&key)));
        }
    }
    // Nearly every record near the probes has expired (the reaper is behind): the first live
    // key, if there is one.
    let mut found = None;
    ctx.scan(Bound::Included(prefix.clone()), end(), |key, value| {
        if live(value) {
            found = Some(key.to_vec());
        }
        found.is_none()
    })?;
    Ok(found.map_or(Reply::Null, |key| Reply::bulk(keyspace::user_key(&key))))
}

/// A random key from `first` to `last` (`first <= last`): their common prefix, then eight
/// bytes drawn between theirs.
fn probe_between(first: &[u8], last: &[u8]) -> Vec<u8> {
    debug_assert!(first <= last);
    let common = first.iter().zip(last).take_while(|(a, b)| a == b).count();
    let word = |key: &[u8]| {
        let mut bytes = [0u8; 8];
        for (slot, byte) in bytes.iter_mut().zip(key.get(common..).unwrap_or_default()) {
            *slot = *byte;
        }
        u64::from_be_bytes(bytes)
    };
    let (low, high) = (word(first), word(last));
    let mut probe = first.get(..common).unwrap_or_default().to_vec();
    probe.extend_from_slice(&fastrand::u64(low..=high.max(low)).to_be_bytes());
    probe
}

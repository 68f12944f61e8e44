//! What every collection command shares: opening a collection's header under its stripe,
//! reading its elements, and committing element changes and the new header as one engine
//! commit (or deleting the key when the collection becomes empty, as Redis does).

use std::sync::atomic::Ordering;

use super::Writes;
use bytes::Bytes;

use super::{wrong_type, Ctx};
use crate::keyspace::{self, Collection, Kind};
use crate::resp::Reply;

/// A collection opened for a write: where it lives and its header (new if the key was absent).
pub(crate) struct Opened {
    /// The metadata record's engine key.
    pub(crate) meta_key: Vec<u8>,
    /// The user key.
    pub(crate) key: Vec<u8>,
    pub(crate) header: Collection,
    pub(crate) deadline: Option<u64>,
    /// The header as read (`None`: the key was absent), to tell whether it changed.
    original: Option<Collection>,
}

impl Opened {
    /// A live collection read with [`Ctx::read_collection`], for reading its elements.
    pub(crate) fn existing(
        ctx: &Ctx<'_>,
        key: &[u8],
        header: Collection,
        deadline: Option<u64>,
    ) -> Result<Opened, Reply> {
        Ok(Opened {
            meta_key: ctx.meta_key(key)?,
            key: key.to_vec(),
            header,
            deadline,
            original: Some(header),
        })
    }

    /// A new, empty collection under `key`, whatever the key holds now: committing it
    /// replaces the key (`SINTERSTORE` and its kin), and the old elements become garbage for
    /// the reclaimer.
    pub(crate) fn fresh(ctx: &Ctx<'_>, key: &[u8]) -> Result<Opened, Reply> {
        Ok(Opened {
            meta_key: ctx.meta_key(key)?,
            key: key.to_vec(),
            header: Collection::new(ctx.new_collection_version()),
            deadline: None,
            original: None,
        })
    }

    /// Whether the key was absent (the collection is being created).
    pub(crate) fn is_new(&self) -> bool {
        self.original.is_none()
    }

    /// Whether the header differs from the one read (or the collection is new).
    pub(crate) fn changed(&self) -> bool {
        self.original != Some(self.header)
    }

    /// The engine key of element `element`.
    pub(crate) fn member_key(&self, db: u8, element: &[u8]) -> Vec<u8> {
        keyspace::member_key(db, &self.key, self.header.version, element)
    }

    /// The engine key of a sorted set's score record.
    pub(crate) fn score_key(&self, db: u8, score: f64, member: &[u8]) -> Vec<u8> {
        let mut key = keyspace::score_prefix(db, &self.key, self.header.version);
        key.extend_from_slice(&keyspace::sortable_score(score));
        key.extend_from_slice(member);
        key
    }
}

impl Opened {
    /// `batch` and the write of the collection's header after it (or the key's delete when
    /// the collection is now empty); `None` when there is nothing to write. A command that
    /// changes two collections in one commit (`LMOVE`) chains two of these.
    pub(crate) fn with_header(&self, kind: Kind, mut batch: Writes, now: u64) -> Option<Writes> {
        if self.header.count == 0 {
            if self.original.is_none() && batch.is_empty() {
                return None;
            }
            batch.delete(&self.meta_key);
        } else {
            let record = keyspace::encode(kind, self.deadline, &self.header.encode());
            match self.deadline {
                Some(deadline) => {
                    let reap_after = deadline.saturating_sub(now) + keyspace::REAP_SLACK_MILLIS;
                    batch.put_with_ttl(
                        &self.meta_key,
                        record,
                        std::time::Duration::from_millis(reap_after),
                    );
                }
                None => {
                    batch.put(&self.meta_key, record);
                }
            }
        }
        Some(batch)
    }
}

impl Ctx<'_> {
    /// The live collection of `kind` under user key `key`, if any; `WRONGTYPE` for another
    /// type.
    pub(crate) fn read_collection(
        &self,
        key: &[u8],
        kind: Kind,
        now: u64,
    ) -> Result<Option<(Collection, Option<u64>)>, Reply> {
        let meta_key = self.meta_key(key)?;
        let Some(stored) = self.read(&meta_key, now)? else {
            return Ok(None);
        };
        let entry = stored.entry();
        if entry.kind != kind {
            return Err(wrong_type());
        }
        let header = Collection::decode(entry.payload)
            .ok_or_else(|| Reply::err("cairn: the header of this key is damaged"))?;
        Ok(Some((header, entry.deadline)))
    }

    /// Opens `key` as a collection of `kind` for a write; the caller holds its stripe.
    pub(crate) fn open_collection(
        &self,
        key: &[u8],
        kind: Kind,
        now: u64,
    ) -> Result<Opened, Reply> {
        let meta_key = self.meta_key(key)?;
        let existing = self.read_collection(key, kind, now)?;
        let (header, deadline) = match existing {
            Some((header, deadline)) => (header, deadline),
            None => (Collection::new(self.new_collection_version()), None),
        };
        Ok(Opened {
            meta_key,
            key: key.to_vec(),
            header,
            deadline,
            original: existing.map(|(header, _)| header),
        })
    }

    /// A version no collection has had: the engine's commit version (which only grows, across
    /// restarts too) in the high bits, a counter in the low 16.
    pub(crate) fn new_collection_version(&self) -> u64 {
        let counter = self
            .shared
            .collection_counter
            .fetch_add(1, Ordering::Relaxed)
            & 0xffff;
        (self.shared.db.version().get() << 16) | counter
    }

    /// Commits `batch` (element changes) together with the collection's new header, or with
    /// the key's deletion if the collection is now empty. Nothing is written if nothing
    /// changed.
    pub(crate) fn save_collection(
        &self,
        opened: &Opened,
        kind: Kind,
        batch: Writes,
        now: u64,
    ) -> Result<(), Reply> {
        if batch.is_empty() && !opened.changed() {
            return Ok(());
        }
        self.rewrite_collection(opened, kind, batch, now)
    }

    /// [`Ctx::save_collection`], writing the header even when nothing changed (a command that
    /// Redis counts as a write, and notifies, whatever it did).
    pub(crate) fn rewrite_collection(
        &self,
        opened: &Opened,
        kind: Kind,
        batch: Writes,
        now: u64,
    ) -> Result<(), Reply> {
        match opened.with_header(kind, batch, now) {
            Some(writes) => self.apply(&writes),
            None => Ok(()),
        }
    }

    /// The value of one element record, if present.
    pub(crate) fn element(&self, engine_key: &[u8]) -> Result<Option<cairn::Value>, Reply> {
        self.get(engine_key)
    }

    /// Every element of a collection, in element order: (element, value).
    pub(crate) fn elements(
        &self,
        key: &[u8],
        header: &Collection,
    ) -> Result<Vec<(Vec<u8>, cairn::Value)>, Reply> {
        let prefix = keyspace::member_prefix(self.client.db, key, header.version);
        let mut elements = Vec::new();
        self.scan_prefix(&prefix, |engine_key, value| {
            let element = engine_key.get(prefix.len()..).unwrap_or_default().to_vec();
            elements.push((element, value.clone()));
            true
        })?;
        Ok(elements)
    }
}

/// Runs `read` on the live collection of `kind` under `args[1]`, or returns `absent` when
/// there is none (`WRONGTYPE` for another type): the shape of every collection read.
pub(crate) fn with_collection(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    kind: Kind,
    absent: Reply,
    read: impl FnOnce(&Opened) -> Result<Reply, Reply>,
) -> Reply {
    let key = args.get(1).map_or(&[][..], |key| key);
    let run = || -> Result<Reply, Reply> {
        let now = crate::keyspace::now_millis();
        let Some((header, deadline)) = ctx.read_collection(key, kind, now)? else {
            return Ok(absent);
        };
        read(&Opened::existing(ctx, key, header, deadline)?)
    };
    run().unwrap_or_else(|error| error)
}

/// Removes the elements `args[2..]` names from the collection of `kind` under `args[1]`, as
/// `HDEL`, `SREM` and `ZREM` do: how many were there, as an integer reply. `also` deletes
/// whatever else an element keeps (a sorted set's score record).
pub(crate) fn remove_elements(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    kind: Kind,
    also: impl Fn(&Opened, &[u8], &cairn::Value, &mut super::Writes),
) -> Reply {
    let key = args.get(1).map_or(&[][..], |key| key);
    let run = || -> Result<Reply, Reply> {
        let now = crate::keyspace::now_millis();
        let meta_key = ctx.meta_key(key)?;
        let _locks = ctx.lock(&[&meta_key]);
        let mut opened = ctx.open_collection(key, kind, now)?;
        if opened.is_new() {
            return Ok(Reply::Integer(0));
        }
        let db = ctx.client.db;
        let mut batch = super::Writes::new();
        let mut removed = 0;
        let mut seen = std::collections::HashSet::new();
        for element in args.iter().skip(2) {
            if !seen.insert(element.clone()) {
                continue;
            }
            let engine_key = opened.member_key(db, element);
            if let Some(value) = ctx.element(&engine_key)? {
                batch.delete(&engine_key);
                also(&opened, element, &value, &mut batch);
                removed += 1;
                opened.header.count -= 1;
            }
        }
        ctx.save_collection(&opened, kind, batch, now)?;
        Ok(Reply::Integer(removed))
    };
    run().unwrap_or_else(|error| error)
}

/// `HSCAN`, `SSCAN` and `ZSCAN key cursor [MATCH pattern] [COUNT n]`: every matching element,
/// each followed by what `value` makes of its record (a hash's value, a sorted set's score;
/// nothing for a set), in one reply with cursor 0, as Redis answers for a small collection
/// (`COUNT` is a hint).
pub(crate) fn scan_collection(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    kind: Kind,
    value: impl Fn(&cairn::Value) -> Option<Reply>,
) -> Reply {
    // Redis's order: the cursor, then the key (absent: an empty scan, whatever the options
    // say), then its type, then the options.
    let cursor = args.get(2).and_then(|cursor| {
        std::str::from_utf8(cursor)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
    });
    if cursor.is_none() {
        return Reply::err("invalid cursor");
    }
    let empty = Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
    with_collection(ctx, args, kind, empty, |opened| {
        let pattern = super::keys::scan_options(args.get(3..).unwrap_or_default())?.pattern;
        let mut items = Vec::new();
        for (element, record) in ctx.elements(&opened.key, &opened.header)? {
            if pattern.is_none_or(|pattern| crate::glob::matches(pattern, &element)) {
                items.push(Reply::Bulk(Bytes::from(element)));
                items.extend(value(&record));
            }
        }
        Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]))
    })
}

/// A blocking command's timeout in seconds, as Redis reads it: `None` for 0 (for ever).
pub(crate) fn parse_timeout(text: &[u8]) -> Result<Option<std::time::Duration>, Reply> {
    let seconds = super::strings::parse_float(text)
        .ok_or_else(|| Reply::err("timeout is not a float or out of range"))?;
    let millis = (seconds * 1000.0).ceil();
    // Redis converts to a 64-bit integer, and what does not fit comes out negative.
    if !(0.0..9.2e18).contains(&millis) {
        return Err(Reply::err("timeout is negative"));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked to lie in 0..2^63 just above"
    )]
    let millis = millis as u64;
    Ok((millis > 0).then(|| std::time::Duration::from_millis(millis)))
}

/// The arguments of `LMPOP` and `ZMPOP`, and (`blocking`) of `BLMPOP` and `BZMPOP`, whose
/// timeout comes first: the keys, whether the end named is the first of `ends` (`LEFT`,
/// `MIN`), the count (1 without `COUNT`), and whether to wait. Redis's errors, in its order
/// (the timeout's last).
pub(crate) fn parse_mpop<'a>(
    args: &'a [Bytes],
    blocking: bool,
    ends: (&str, &str),
) -> Result<(&'a [Bytes], bool, u64, Waits), Reply> {
    let at_numkeys = if blocking { 2 } else { 1 };
    let numkeys_error = || Reply::err("numkeys should be greater than 0");
    let numkeys = super::int_arg(args.get(at_numkeys).map_or(&[][..], |arg| arg))
        .ok()
        .and_then(|count| usize::try_from(count).ok())
        .filter(|count| *count > 0)
        .ok_or_else(numkeys_error)?;
    let end_at = at_numkeys
        .checked_add(numkeys)
        .and_then(|index| index.checked_add(1))
        .filter(|index| *index < args.len())
        .ok_or_else(super::syntax_error)?;
    let end = args.get(end_at).map_or(&[][..], |arg| arg);
    let first = if super::is(end, ends.0) {
        true
    } else if super::is(end, ends.1) {
        false
    } else {
        return Err(super::syntax_error());
    };
    let mut count = None;
    let mut index = end_at + 1;
    while let Some(option) = args.get(index) {
        match args.get(index + 1) {
            Some(value) if count.is_none() && super::is(option, "count") => {
                let error = || Reply::err("count should be greater than 0");
                let value = super::int_arg(value)
                    .ok()
                    .and_then(|count| u64::try_from(count).ok())
                    .filter(|count| *count > 0)
                    .ok_or_else(error)?;
                count = Some(value);
            }
            _ => return Err(super::syntax_error()),
        }
        index += 2;
    }
    let keys = args.get(at_numkeys + 1..end_at).unwrap_or_default();
    let waits = if blocking {
        Waits::Block(parse_timeout(args.get(1).map_or(&[][..], |arg| arg))?)
    } else {
        Waits::Never
    };
    Ok((keys, first, count.unwrap_or(1), waits))
}

/// Replaces `destination` with a new collection of `kind` holding `count` elements, which
/// `fill` writes into the batch, whatever the key held (and its TTL); or deletes the key when
/// `count` is 0. What the `STORE` forms do (`SINTERSTORE`, `ZUNIONSTORE`, `ZRANGESTORE`, ...);
/// the size, as their reply.
pub(crate) fn replace_collection(
    ctx: &Ctx<'_>,
    destination: &[u8],
    kind: Kind,
    count: usize,
    now: u64,
    fill: impl FnOnce(&Opened, &mut Writes),
) -> Result<Reply, Reply> {
    if count == 0 {
        ctx.delete(&ctx.meta_key(destination)?, now)?;
        return Ok(Reply::Integer(0));
    }
    let mut opened = Opened::fresh(ctx, destination)?;
    let mut batch = Writes::new();
    fill(&opened, &mut batch);
    opened.header.count = u64::try_from(count).unwrap_or(u64::MAX);
    ctx.save_collection(&opened, kind, batch, now)?;
    Ok(count_reply(opened.header.count))
}

/// `BLPOP`, `BRPOP`, `BZPOPMIN` and `BZPOPMAX key [key ...] timeout`: [`pop_first`] over the
/// keys before the timeout, waiting until it passes.
pub(crate) fn blocking_pop_first(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    kind: Kind,
    pop: impl FnMut(&Ctx<'_>, &mut Opened, &mut Writes) -> Result<Reply, Reply>,
) -> Reply {
    let timeout = match parse_timeout(args.last().map_or(&[][..], |arg| &arg[..])) {
        Ok(timeout) => timeout,
        Err(error) => return error,
    };
    let keys = args
        .get(1..args.len().saturating_sub(1))
        .unwrap_or_default();
    pop_first(ctx, args, keys, kind, Waits::Block(timeout), pop)
}

/// Whether a pop that finds nothing waits: never (`LMPOP`), or blocks with its timeout
/// (`None`: for ever).
#[derive(Clone, Copy)]
pub(crate) enum Waits {
    Never,
    Block(Option<std::time::Duration>),
}

/// What the multi-key pops share (`BLPOP`, `BRPOP`, `LMPOP`, `BLMPOP`, `BZPOPMIN`,
/// `BZPOPMAX`, `ZMPOP`, `BZMPOP`): `pop` takes what it pops from the first of `keys` that
/// holds a non-empty collection of `kind` into the batch, which is committed with the header,
/// and makes the reply. When every one is empty: the null array and, for a blocking command
/// outside a transaction, the request is left to wait on those keys
/// (`super::Blocked`). A key of another type is `WRONGTYPE`, except for a woken blocking
/// command, which waits on past it, as Redis's does.
pub(crate) fn pop_first(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    keys: &[Bytes],
    kind: Kind,
    waits: Waits,
    mut pop: impl FnMut(&Ctx<'_>, &mut Opened, &mut Writes) -> Result<Reply, Reply>,
) -> Reply {
    let mut run = || -> Result<(Reply, Option<super::Blocked>), Reply> {
        let now = crate::keyspace::now_millis();
        let mut meta_keys = Vec::with_capacity(keys.len());
        for key in keys {
            let meta_key = ctx.meta_key(key)?;
            let _locks = ctx.lock(&[&meta_key]);
            meta_keys.push(meta_key);
            let mut opened = match ctx.open_collection(key, kind, now) {
                Err(Reply::Error(text)) if ctx.client.rerun && text.starts_with("WRONGTYPE") => {
                    continue
                }
                other => other?,
            };
            if opened.is_new() {
                continue;
            }
            let mut batch = Writes::new();
            let reply = pop(ctx, &mut opened, &mut batch)?;
            ctx.save_collection(&opened, kind, batch, now)?;
            return Ok((reply, None));
        }
        let blocked = match (waits, &ctx.store) {
            (Waits::Block(timeout), super::Store::Db) => Some(super::Blocked {
                args: args.to_vec(),
                timeout,
                keys: meta_keys,
            }),
            _ => None,
        };
        Ok((Reply::NullArray, blocked))
    };
    match run() {
        Ok((reply, blocked)) => {
            ctx.client.blocked = blocked;
            reply
        }
        Err(error) => error,
    }
}

/// Most random elements one `SRANDMEMBER`, `HRANDFIELD` or `ZRANDMEMBER` with a negative
/// count (picks that may repeat) returns: the reply is built whole before it is sent.
pub const RANDOM_PICKS_MAX: u64 = 1_000_000;

/// The `count` of `SRANDMEMBER`, `HRANDFIELD` and `ZRANDMEMBER` at `args[2]`, and whether
/// `with` (`WITHVALUES`, `WITHSCORES`) follows it; `None` without a count. Redis's errors, in
/// its order: the count's range, the arguments after it, then (with `with`) half the range.
pub(crate) fn parse_random_count(
    args: &[Bytes],
    with: Option<&str>,
) -> Result<Option<(i64, bool)>, Reply> {
    let Some(count) = args.get(2) else {
        return Ok(None);
    };
    if with.is_none() && args.len() > 3 {
        return Err(super::syntax_error());
    }
    let count = super::int_arg(count)?;
    if count == i64::MIN {
        return Err(Reply::err(
            "value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        ));
    }
    let paired = match (with, args.get(3)) {
        (_, None) => false,
        (Some(word), Some(arg)) if args.len() == 4 && super::is(arg, word) => true,
        _ => return Err(super::syntax_error()),
    };
    if paired && count.unsigned_abs() > i64::MAX.unsigned_abs() / 2 {
        return Err(Reply::err("value is out of range"));
    }
    Ok(Some((count, paired)))
}

/// Random elements of an opened collection, with their records: `count` distinct ones (all,
/// in element order, when there are no more than that), or with `repeats`, `count` picks that
/// may repeat, each uniform over the collection, in the order picked. One walk of the elements
/// up to the last one picked; memory for the picks only.
pub(crate) fn random_elements(
    ctx: &Ctx<'_>,
    opened: &Opened,
    count: u64,
    repeats: bool,
) -> Result<Vec<(Vec<u8>, cairn::Value)>, Reply> {
    let size = opened.header.count;
    if size == 0 || count == 0 {
        return Ok(Vec::new());
    }
    if !repeats && count >= size {
        return ctx.elements(&opened.key, &opened.header);
    }
    if repeats && count > RANDOM_PICKS_MAX {
        return Err(Reply::Error(format!(
            "ERR cairn: at most {RANDOM_PICKS_MAX} random picks that may repeat per call"
        )));
    }
    let mut rng = fastrand::Rng::new();
    let picks: Vec<u64> = if repeats {
        (0..count).map(|_| rng.u64(0..size)).collect()
    } else {
        // Floyd's sampling: `count` distinct indices, each subset as likely as any other.
        let mut chosen = std::collections::HashSet::new();
        for top in size - count..size {
            let pick = rng.u64(0..=top);
            chosen.insert(if chosen.contains(&pick) { top } else { pick });
        }
        chosen.into_iter().collect()
    };
    // Each index, with the places in `picks` that want it, in index order.
    let mut wanted: Vec<(u64, usize)> = picks
        .iter()
        .enumerate()
        .map(|(place, index)| (*index, place))
        .collect();
    wanted.sort_unstable();
    let mut found: Vec<Option<(Vec<u8>, cairn::Value)>> = vec![None; picks.len()];
    let prefix = keyspace::member_prefix(ctx.client.db, &opened.key, opened.header.version);
    let (mut index, mut next) = (0_u64, 0_usize);
    ctx.scan_prefix(&prefix, |engine_key, value| {
        while let Some(&(wanted_index, place)) = wanted.get(next) {
            if wanted_index != index {
                break;
            }
            let element = engine_key.get(prefix.len()..).unwrap_or_default().to_vec();
            if let Some(slot) = found.get_mut(place) {
                *slot = Some((element, value.clone()));
            }
            next += 1;
        }
        index += 1;
        next < wanted.len()
    })?;
    found
        .into_iter()
        .map(|element| {
            element.ok_or_else(|| {
                Reply::err("cairn: the collection's element records do not match its header")
            })
        })
        .collect()
}

/// A random pick's reply: the element alone, or with `value` of its record (a hash's value, a
/// sorted set's score) flat under RESP2 and in pairs under RESP3, as Redis replies.
pub(crate) fn random_reply(
    ctx: &Ctx<'_>,
    elements: Vec<(Vec<u8>, cairn::Value)>,
    value: Option<&dyn Fn(&cairn::Value) -> Reply>,
) -> Reply {
    let pairs = ctx.client.protocol == crate::resp::Protocol::Resp3;
    let mut items = Vec::with_capacity(elements.len());
    for (element, record) in elements {
        let element = Reply::Bulk(Bytes::from(element));
        match value {
            None => items.push(element),
            Some(value) if pairs => items.push(Reply::Array(vec![element, value(&record)])),
            Some(value) => {
                items.push(element);
                items.push(value(&record));
            }
        }
    }
    Reply::Array(items)
}

/// `SRANDMEMBER`, `HRANDFIELD` and `ZRANDMEMBER key [count [with]]` for a collection of
/// `kind`, `value` making the reply of a record for `with`.
pub(crate) fn random_command(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    kind: Kind,
    with: Option<&str>,
    value: &dyn Fn(&cairn::Value) -> Reply,
) -> Reply {
    let parsed = match parse_random_count(args, with) {
        Ok(parsed) => parsed,
        Err(error) => return error,
    };
    let Some((count, paired)) = parsed else {
        return with_collection(ctx, args, kind, Reply::Null, |opened| {
            let picked = random_elements(ctx, opened, 1, true)?;
            Ok(picked
                .into_iter()
                .next()
                .map_or(Reply::Null, |(element, _)| {
                    Reply::Bulk(Bytes::from(element))
                }))
        });
    };
    with_collection(ctx, args, kind, Reply::Array(Vec::new()), |opened| {
        let picked = random_elements(ctx, opened, count.unsigned_abs(), count < 0)?;
        Ok(random_reply(ctx, picked, paired.then_some(value)))
    })
}

/// A count as an integer reply.
pub(crate) fn count_reply(count: u64) -> Reply {
    Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX))
}

/// The bytes of a value as a bulk reply.
pub(crate) fn bulk_of(value: &cairn::Value) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(value.as_bytes()))
}

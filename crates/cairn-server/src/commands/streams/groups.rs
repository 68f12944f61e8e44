//! Consumer groups: `XGROUP` (`CREATE`, `SETID`, `DESTROY`, `CREATECONSUMER`,
//! `DELCONSUMER`) and `XACK`. A group's record, its consumers' and its pending entries'
//! records are laid out in `keyspace`.

use bytes::Bytes;

use super::id::{parse_id_arg, parse_strict_id, IdArg};
use super::{change_stream, invalid_id, Stream};
use crate::commands::strings::at;
use crate::commands::{int_arg, is, syntax_error, wrong_arity, Ctx, Writes};
use crate::keyspace::{self, encode_group, pending_consumer, StreamId};
use crate::resp::{Reply, OK};

pub(crate) fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    change_stream(ctx, args, |stream, _| {
        let group = at(args, 2);
        if ctx.get(&stream.group_key(group))?.is_none() {
            return Ok(Reply::Integer(0));
        }
        let ids = args
            .iter()
            .skip(3)
            .map(|arg| parse_strict_id(arg))
            .collect::<Result<Vec<_>, _>>()?;
        let prefix = stream.pending_prefix(group);
        let mut writes = Writes::new();
        let mut seen = std::collections::HashSet::new();
        let mut acked = 0;
        for id in ids {
            let mut pending_key = prefix.clone();
            pending_key.extend_from_slice(&id.to_key_bytes());
            if seen.insert(id) && ctx.get(&pending_key)?.is_some() {
                writes.delete(pending_key);
                acked += 1;
            }
        }
        ctx.apply(&writes)?;
        Ok(Reply::Integer(acked))
    })
}

/// `XGROUP`'s subcommands and the argument counts they take (Redis's arities).
fn xgroup_arity(subcommand: &str, count: usize) -> Option<bool> {
    match subcommand {
        "create" | "setid" => Some(count >= 5),
        "destroy" => Some(count == 4),
        "delconsumer" | "createconsumer" => Some(count == 5),
        "help" => Some(count == 2),
        _ => None,
    }
}

pub(crate) fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    xgroup_run(ctx, args).unwrap_or_else(|error| error)
}

fn xgroup_run(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let given = String::from_utf8_lossy(at(args, 1)).into_owned();
    let subcommand = given.to_ascii_lowercase();
    match xgroup_arity(&subcommand, args.len()) {
        None => {
            return Err(Reply::err(format!(
                "unknown subcommand '{given}'. Try XGROUP HELP."
            )))
        }
        Some(false) => return Err(wrong_arity(&format!("xgroup|{subcommand}"))),
        Some(true) => {}
    }
    let syntax = || {
        Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{given}'. Try XGROUP HELP."
        ))
    };
    if subcommand == "help" {
        return Ok(xgroup_help());
    }
    let mkstream = group_options(args, &subcommand).map_err(|()| syntax())?;
    if matches!(subcommand.as_str(), "create" | "setid") {
        check_entries_read(args)?;
    }
    let now = keyspace::now_millis();
    let key = at(args, 2);
    let meta_key = ctx.meta_key(key)?;
    let _locks = ctx.lock(&[&meta_key]);
    let existing = ctx.read_stream(key, now)?;
    let created = existing.is_none();
    let stream = match existing {
        Some(stream) => stream,
        None if subcommand == "create" && mkstream => ctx.new_stream(key)?,
        None => return Err(Reply::err(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want \
             to use the MKSTREAM option to create an empty stream automatically.",
        )),
    };
    group_change(ctx, args, &subcommand, &stream, created, now)
}

/// What `XGROUP`'s `subcommand` (all but `HELP`) does to `stream`, the key's or (`created`)
/// a new one; the caller holds the stripe.
fn group_change(
    ctx: &Ctx<'_>,
    args: &[Bytes],
    subcommand: &str,
    stream: &Stream,
    created: bool,
    now: u64,
) -> Result<Reply, Reply> {
    let key = at(args, 2);
    let group = at(args, 3);
    let group_key = stream.group_key(group);
    let group_exists = ctx.get(&group_key)?.is_some();
    let no_group = || {
        Reply::Error(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        ))
    };
    // CREATE parses the id strictly, SETID also takes `-` and `+`, as Redis does.
    let id_arg = |stream: &Stream| -> Result<StreamId, Reply> {
        match at(args, 4) {
            b"$" => Ok(stream.header.last_id),
            other if subcommand == "setid" => match parse_id_arg(other, 0, false, false)? {
                IdArg::Exact(id) => Ok(id),
                IdArg::AutoSeq(_) => Err(invalid_id()),
            },
            other => parse_strict_id(other),
        }
    };
    let mut writes = Writes::new();
    match subcommand {
        "create" => {
            let id = id_arg(stream)?;
            if group_exists {
                return Err(Reply::Error(
                    "BUSYGROUP Consumer Group name already exists".to_owned(),
                ));
            }
            writes.put(group_key, encode_group(id));
            if created {
                ctx.save_stream(stream, writes, now)?;
            } else {
                // Only the group record: the key itself is unchanged, so a `WATCH` on it
                // holds, as in Redis 7.0.
                ctx.apply(&writes)?;
            }
            Ok(OK)
        }
        "setid" => {
            if !group_exists {
                return Err(no_group());
            }
            let id = id_arg(stream)?;
            writes.put(group_key, encode_group(id));
            ctx.apply(&writes)?;
            Ok(OK)
        }
        "destroy" => {
            if !group_exists {
                return Ok(Reply::Integer(0));
            }
            writes.delete(group_key);
            for prefix in [stream.pending_prefix(group), stream.consumer_prefix(group)] {
                ctx.scan_prefix(&prefix, |engine_key, _| {
                    writes.delete(engine_key);
                    true
                })?;
            }
            ctx.apply(&writes)?;
            Ok(Reply::Integer(1))
        }
        "createconsumer" => {
            if !group_exists {
                return Err(no_group());
            }
            let consumer_key = stream.consumer_key(group, at(args, 4));
            if ctx.get(&consumer_key)?.is_some() {
                return Ok(Reply::Integer(0));
            }
            writes.put(consumer_key, keyspace::encode_consumer(now));
            ctx.apply(&writes)?;
            Ok(Reply::Integer(1))
        }
        "delconsumer" => {
            if !group_exists {
                return Err(no_group());
            }
            let consumer = at(args, 4);
            let consumer_key = stream.consumer_key(group, consumer);
            if ctx.get(&consumer_key)?.is_some() {
                writes.delete(consumer_key);
            }
            let mut removed = 0;
            ctx.scan_prefix(&stream.pending_prefix(group), |engine_key, value| {
                if pending_consumer(value.as_bytes()) == Some(consumer) {
                    writes.delete(engine_key);
                    removed += 1;
                }
                true
            })?;
            ctx.apply(&writes)?;
            Ok(Reply::Integer(removed))
        }
        _ => Err(syntax_error()),
    }
}

/// `XGROUP CREATE`'s and `SETID`'s options: whether `MKSTREAM` was given. `Err(())` for an
/// option Redis does not know there (the caller's syntax error).
fn group_options(args: &[Bytes], subcommand: &str) -> Result<bool, ()> {
    let mut mkstream = false;
    if !matches!(subcommand, "create" | "setid") {
        return Ok(false);
    }
    let mut i = 5;
    while let Some(option) = args.get(i) {
        if subcommand == "create" && is(option, "mkstream") {
            mkstream = true;
            i += 1;
        } else if is(option, "entriesread") && i + 1 < args.len() {
            i += 2;
        } else {
            return Err(());
        }
    }
    Ok(mkstream)
}

/// `ENTRIESREAD`'s value, checked as Redis checks it (the value itself is not kept).
fn check_entries_read(args: &[Bytes]) -> Result<(), Reply> {
    let mut i = 5;
    while let Some(option) = args.get(i) {
        if is(option, "entriesread") {
            if int_arg(at(args, i + 1))? < -1 {
                return Err(Reply::err("value for ENTRIESREAD must be positive or -1"));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn xgroup_help() -> Reply {
    const LINES: &[&str] = &[
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Accepted and ignored.",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID.",
        "HELP",
        "    Prints this help.",
    ];
    super::help_reply(LINES)
}

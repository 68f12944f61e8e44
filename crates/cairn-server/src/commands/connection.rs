//! Connection and server commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`,
//! `CLIENT`, `INFO`, `DBSIZE`, `FLUSHDB`/`FLUSHALL`, `TIME`, `COMMAND` (`CONFIG` is in `config`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::strings::at;
use super::{int_arg, is, wrong_arity, Ctx, COMMANDS};
use crate::keyspace::{self, DATABASES};
use crate::resp::{Protocol, Reply, OK};
use crate::state::Mode;

/// The Redis version the server reports: new enough that clients offer RESP3 and the
/// commands above, and the version the differential tests compare against.
pub const REDIS_VERSION: &str = "7.0.15";

pub(crate) fn ping(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::Status("PONG"),
        2 => Reply::bulk(at(args, 1)),
        _ => wrong_arity("ping"),
    }
}

pub(crate) fn echo(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    Reply::bulk(at(args, 1))
}

/// Compares a password in time that does not depend on where the first difference is.
fn password_matches(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = u8::from(given.len() != expected.len());
    for (index, byte) in given.iter().enumerate() {
        difference |= byte
            ^ expected
                .get(index % expected.len().max(1))
                .copied()
                .unwrap_or(0);
    }
    difference == 0
}

/// Checks `user`/`password` against `requirepass` and marks the client authenticated.
fn authenticate(ctx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> Result<(), Reply> {
    let wrong =
        || Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".to_owned());
    match &ctx.shared.config.requirepass {
        Some(expected) if user == b"default" && password_matches(password, expected.as_bytes()) => {
            ctx.client.authenticated = true;
            Ok(())
        }
        _ => Err(wrong()),
    }
}

pub(crate) fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (user, password) = match args.len() {
        2 => (&b"default"[..], at(args, 1)),
        3 => (at(args, 1), at(args, 2)),
        _ => return super::syntax_error(),
    };
    if ctx.shared.config.requirepass.is_none() && args.len() == 2 {
        return Reply::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    }
    authenticate(ctx, user, password).map_or_else(|error| error, |()| OK)
}

pub(crate) fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut protocol = ctx.client.protocol;
    let mut rest = args.get(1..).unwrap_or_default().iter();
    if let Some(version) = rest.next() {
        protocol = match int_arg(version) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Reply::Error("NOPROTO unsupported protocol version".to_owned()),
            Err(_) => return Reply::err("Protocol version is not an integer or out of range"),
        };
    }
    let mut name = None;
    while let Some(option) = rest.next() {
        if is(option, "auth") {
            let (Some(user), Some(password)) = (rest.next(), rest.next()) else {
                return Reply::err(format!(
                    "Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                ));
            };
            if let Err(error) = authenticate(ctx, user, password) {
                return error;
            }
        } else if is(option, "setname") {
            let Some(value) = rest.next() else {
                return Reply::err("Syntax error in HELLO option 'setname'");
            };
            name = Some(value.clone());
        } else {
            return Reply::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            ));
        }
    }
    if !ctx.client.authenticated {
        return Reply::Error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time"
                .to_owned(),
        );
    }
    if let Some(name) = name {
        if let Err(error) = set_name(ctx, &name) {
            return error;
        }
    }
    ctx.client.protocol = protocol;
    let number = i64::from(protocol == Protocol::Resp3) + 2;
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Integer(number)),
        (
            Reply::bulk("id"),
            Reply::Integer(i64::try_from(ctx.client.id).unwrap_or(i64::MAX)),
        ),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ])
}

pub(crate) fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match db_arg(at(args, 1)) {
        Ok(db) => {
            ctx.client.db = db;
            ctx.shared
                .clients
                .update(ctx.client.id, |entry| entry.db = db);
            OK
        }
        Err(error) => error,
    }
}

/// A database index argument (`SELECT`, `COPY ... DB`, `MOVE`), with Redis's errors: not an
/// integer of 32 bits, or not one of the [`DATABASES`].
pub(crate) fn db_arg(arg: &[u8]) -> Result<u8, Reply> {
    let index = int_arg(arg)?;
    if i32::try_from(index).is_err() {
        return Err(super::not_an_integer());
    }
    u8::try_from(index)
        .ok()
        .filter(|db| usize::from(*db) < DATABASES)
        .ok_or_else(|| Reply::err("DB index is out of range"))
}

pub(crate) fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    ctx.client.closing = true;
    OK
}

fn set_name(ctx: &Ctx<'_>, name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&byte| !(b'!'..=b'~').contains(&byte)) {
        return Err(Reply::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    ctx.shared
        .clients
        .update(ctx.client.id, |entry| entry.name = name);
    Ok(())
}

/// One `CLIENT LIST` line.
fn client_line(id: u64, entry: &crate::state::ClientEntry) -> String {
    format!(
        "id={id} addr={} laddr={} fd=0 name={} age={} idle=0 flags=N db={} sub=0 psub=0 \
         ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
         omem=0 tot-mem=0 events=r cmd=client|list user=default redir=-1 resp=2\n",
        entry.addr,
        entry.local,
        entry.name,
        entry.created.elapsed().as_secs(),
        entry.db
    )
}

pub(crate) fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = at(args, 1);
    let id = ctx.client.id;
    let clients = &ctx.shared.clients;
    if is(sub, "id") && args.len() == 2 {
        Reply::Integer(i64::try_from(id).unwrap_or(i64::MAX))
    } else if is(sub, "setname") && args.len() == 3 {
        set_name(ctx, at(args, 2)).map_or_else(|error| error, |()| OK)
    } else if is(sub, "getname") && args.len() == 2 {
        match clients.read(id, |entry| entry.name.clone()) {
            Some(name) if !name.is_empty() => Reply::bulk(name),
            _ => Reply::Null,
        }
    } else if is(sub, "list") {
        Reply::bulk(clients.list(client_line).concat())
    } else if is(sub, "info") && args.len() == 2 {
        Reply::bulk(
            clients
                .read(id, |entry| client_line(id, entry))
                .unwrap_or_default(),
        )
    } else if is(sub, "setinfo") && args.len() == 4 {
        OK
    } else if is(sub, "kill") {
        client_kill(ctx, args)
    } else if is(sub, "unblock") && (args.len() == 3 || args.len() == 4) {
        client_unblock(ctx, args).unwrap_or_else(|error| error)
    } else if is(sub, "reply") && args.len() == 3 {
        if ctx.client.set_replies(at(args, 2)) {
            OK
        } else {
            super::syntax_error()
        }
    } else {
        Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: ends client `id`'s blocking read as a timeout or with
/// `UNBLOCKED`'s error; 1 if it was blocked, else 0. Checked in Redis's order.
fn client_unblock(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Reply, Reply> {
    let with_error = match args.get(3) {
        None => false,
        Some(reason) if is(reason, "timeout") => false,
        Some(reason) if is(reason, "error") => true,
        Some(_) => {
            return Err(Reply::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let id = u64::try_from(int_arg(at(args, 2))?).unwrap_or(0);
    let unblocked = ctx
        .shared
        .clients
        .read(id, |entry| entry.unblock.unblock(with_error))
        .unwrap_or(false);
    Ok(Reply::Integer(i64::from(unblocked)))
}

/// `CLIENT KILL addr` (the old form: `OK` or an error) or `CLIENT KILL <filter value>...`
/// with `ID`, `ADDR`, `LADDR` and `SKIPME` (the new form: how many were killed).
fn client_kill(ctx: &Ctx<'_>, args: &[Bytes]) -> Reply {
    let me = ctx.client.id;
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(at(args, 2)).into_owned();
        let killed = ctx
            .shared
            .clients
            .kill(|_, entry| entry.addr.to_string() == addr);
        return if killed == 0 {
            Reply::err("No such client")
        } else {
            OK
        };
    }
    let mut filters: Vec<(&[u8], String)> = Vec::new();
    let mut skip_me = true;
    let mut rest = args.get(2..).unwrap_or_default().chunks(2);
    for pair in rest.by_ref() {
        let [filter, value] = pair else {
            return super::syntax_error();
        };
        let value = String::from_utf8_lossy(value).into_owned();
        if is(filter, "skipme") {
            skip_me = is(value.as_bytes(), "yes");
        } else if is(filter, "id") || is(filter, "addr") || is(filter, "laddr") {
            filters.push((filter, value));
        } else {
            return super::syntax_error();
        }
    }
    let killed = ctx.shared.clients.kill(|id, entry| {
        if skip_me && id == me {
            return false;
        }
        filters.iter().all(|(filter, value)| {
            if is(filter, "id") {
                id.to_string() == *value
            } else if is(filter, "addr") {
                entry.addr.to_string() == *value
            } else {
                entry.local.to_string() == *value
            }
        })
    });
    Reply::Integer(i64::try_from(killed).unwrap_or(i64::MAX))
}

pub(crate) fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let shared = ctx.shared;
    let wanted: Vec<String> = args
        .iter()
        .skip(1)
        .map(|arg| String::from_utf8_lossy(arg).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|section| section == "all" || section == "everything" || section == "default");
    let show = |section: &str| all || wanted.iter().any(|wanted| wanted == section);
    let mut text = String::new();
    if show("server") {
        let _ = write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
             os:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            std::env::consts::OS,
            std::process::id(),
            shared.config.bind.port(),
            shared.started.elapsed().as_secs()
        );
    }
    if show("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\r\n",
            shared.clients.connected(),
            shared.config.maxclients,
            shared.clients.blocked()
        );
    }
    if show("persistence") {
        let durable = shared.config.mode != Mode::Memory;
        let _ = write!(
            text,
            "# Persistence\r\nloading:0\r\naof_enabled:{}\r\n\r\n",
            u8::from(durable)
        );
    }
    if show("stats") {
        let stats = &shared.stats;
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             rejected_connections:{}\r\n\r\n",
            stats.connections_received.load(Ordering::Relaxed),
            stats.commands_processed.load(Ordering::Relaxed),
            stats.connections_rejected.load(Ordering::Relaxed)
        );
    }
    if show("cairn") {
        let engine = shared.db.stats();
        let _ = write!(
            text,
            "# Cairn\r\ncairn_durability:{}\r\ncairn_version:{}\r\ncairn_syncs:{}\r\n\
             cairn_keys_indexed:{}\r\ncairn_elements_reclaimed:{}\r\n\r\n",
            match shared.config.mode {
                Mode::Memory => "memory",
                Mode::Buffered => "buffered",
                Mode::Strict => "strict",
            },
            shared.db.version().get(),
            shared.stats.syncs.load(Ordering::Relaxed),
            engine.keys_indexed,
            shared.stats.elements_reclaimed.load(Ordering::Relaxed)
        );
    }
    if show("keyspace") {
        text.push_str("# Keyspace\r\n");
        for db in 0..DATABASES {
            let db = u8::try_from(db).unwrap_or(0);
            let keys = shared
                .db
                .count_prefix(keyspace::meta_prefix(db))
                .unwrap_or(0);
            if keys > 0 {
                let _ = write!(text, "db{db}:keys={keys},expires=0,avg_ttl=0\r\n");
            }
        }
    }
    Reply::bulk(text)
}

pub(crate) fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    match ctx.count_prefix(&keyspace::meta_prefix(ctx.client.db)) {
        Ok(keys) => Reply::Integer(i64::try_from(keys).unwrap_or(i64::MAX)),
        Err(error) => error,
    }
}

fn flush_options(args: &[Bytes]) -> Result<(), Reply> {
    match args.get(1..).unwrap_or_default() {
        [] => Ok(()),
        [mode] if is(mode, "sync") || is(mode, "async") => Ok(()),
        _ => Err(super::syntax_error()),
    }
}

fn flush(ctx: &Ctx<'_>, dbs: impl Iterator<Item = u8>) -> Reply {
    let _locks = ctx.lock_all();
    for db in dbs {
        if let Err(error) = ctx.clear_prefix(&keyspace::db_prefix(db)) {
            return error;
        }
    }
    OK
}

pub(crate) fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(error) = flush_options(args) {
        return error;
    }
    flush(ctx, std::iter::once(ctx.client.db))
}

pub(crate) fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if let Err(error) = flush_options(args) {
        return error;
    }
    flush(ctx, (0..DATABASES).filter_map(|db| u8::try_from(db).ok()))
}

pub(crate) fn time(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::bulks([now.as_secs().to_string(), now.subsec_micros().to_string()])
}

fn command_info(spec: &super::Spec) -> Reply {
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(spec.arity),
        Reply::Set(spec.flags.iter().map(|flag| Reply::Status(flag)).collect()),
        Reply::Integer(spec.keys.0),
        Reply::Integer(spec.keys.1),
        Reply::Integer(spec.keys.2),
        Reply::Set(Vec::new()),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

pub(crate) fn command(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = at(args, 1);
    if args.len() == 1 {
        Reply::Array(COMMANDS.iter().map(command_info).collect())
    } else if is(sub, "count") && args.len() == 2 {
        Reply::Integer(i64::try_from(COMMANDS.len()).unwrap_or(i64::MAX))
    } else if is(sub, "list") && args.len() == 2 {
        Reply::bulks(COMMANDS.iter().map(|spec| spec.name))
    } else if is(sub, "info") {
        let named = args.get(2..).unwrap_or_default();
        if named.is_empty() {
            return Reply::Array(COMMANDS.iter().map(command_info).collect());
        }
        Reply::Array(
            named
                .iter()
                .map(|name| super::lookup(name).map_or(Reply::NullArray, command_info))
                .collect(),
        )
    } else if is(sub, "docs") {
        // No documentation strings: clients treat an empty map as "no docs".
        Reply::Map(Vec::new())
    } else {
        Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::password_matches;

    #[test]
    fn passwords_match_only_when_equal() {
        assert!(password_matches(b"secret", b"secret"));
        assert!(!password_matches(b"secreT", b"secret"));
        assert!(!password_matches(b"secret!", b"secret"));
        assert!(!password_matches(b"", b"secret"));
        assert!(!password_matches(b"x", b""));
        assert!(password_matches(b"", b""));
    }
}

//! Lua scripts: `EVAL`, `EVALSHA` and `SCRIPT` (`LOAD`, `EXISTS`, `FLUSH`), on Lua 5.1 as in
//! Redis, so clients that write through scripts (Cairn's own `KeyValueStore` Redis backend
//! among them) work unchanged.
//!
//! - A script runs atomically, as in Redis: it holds every stripe lock, so no other write
//!   runs meanwhile, and its commands read and write one engine transaction, committed once
//!   when the script returns. Unlike Redis, a script that fails halfway (a Lua error, an error
//!   raised by `redis.call`, the time or memory limit) commits nothing. Inside `EXEC` it joins
//!   the block's transaction.
//! - `redis.call` and `redis.pcall` run any command except those Redis keeps out of scripts
//!   (flag `noscript`: connection state, `MULTI`, pub/sub subscriptions, `EVAL` itself).
//!   Replies convert to Lua and back with Redis's RESP2 rules: integers, strings, `false` for
//!   nulls, tables for arrays, `{ok=...}` and `{err=...}` for status and error replies.
//!   `redis.error_reply`, `redis.status_reply`, `redis.sha1hex` and `redis.log` (which writes
//!   nothing) are there; the `cjson`, `cmsgpack`, `struct` and `bit` libraries are not.
//! - Limits: a script runs at most [`SCRIPT_TIME_MAX`] and allocates at most
//!   [`SCRIPT_MEMORY_MAX`]; the script cache holds at most [`CACHE_SCRIPTS_MAX`] scripts
//!   (`SCRIPT FLUSH` empties it; a full cache refuses new scripts with an error).
//! - Each runtime worker thread keeps one Lua state, with the compiled scripts, reused by
//!   every script it runs; only the string library, the table library and `math` are loaded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, RegistryKey, StdLib, Value};
use parking_lot::Mutex;

use super::strings::at;
use super::{engine_error, int_arg, is, lookup, Ctx, Store};
use crate::resp::{Reply, OK};

/// The longest a script may run.
pub const SCRIPT_TIME_MAX: Duration = Duration::from_secs(5);

/// The most memory one Lua state may hold.
pub const SCRIPT_MEMORY_MAX: usize = 64 * 1024 * 1024;

/// The most scripts the cache holds.
pub const CACHE_SCRIPTS_MAX: usize = 10_000;

/// The scripts loaded so far, by SHA-1 (lower-case hex).
#[derive(Debug, Default)]
pub(crate) struct ScriptCache {
    scripts: Mutex<HashMap<String, Arc<str>>>,
}

impl ScriptCache {
    /// Adds `source`; its SHA-1, or an error when the cache is full.
    fn add(&self, source: &[u8]) -> Result<(String, Arc<str>), Reply> {
        let sha = sha1_smol::Sha1::from(source).digest().to_string();
        let mut scripts = self.scripts.lock();
        if let Some(found) = scripts.get(&sha) {
            return Ok((sha, Arc::clone(found)));
        }
        if scripts.len() >= CACHE_SCRIPTS_MAX {
            return Err(Reply::err(format!(
                "cairn: the script cache is full ({CACHE_SCRIPTS_MAX} scripts); SCRIPT FLUSH \
                 empties it"
            )));
        }
        let text: Arc<str> = String::from_utf8_lossy(source).into();
        scripts.insert(sha.clone(), Arc::clone(&text));
        Ok((sha, text))
    }

    fn get(&self, sha: &str) -> Option<Arc<str>> {
        self.scripts.lock().get(sha).cloned()
    }
}

/// One worker thread's Lua state and the scripts it compiled.
struct Vm {
    lua: Lua,
    compiled: HashMap<String, RegistryKey>,
}

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// A fresh Lua state with Redis's `redis` table (less `call` and `pcall`, which each run
/// sets for its own context).
fn new_vm() -> mlua::Result<Vm> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH,
        LuaOptions::new(),
    )?;
    lua.set_memory_limit(SCRIPT_MEMORY_MAX)?;
    let redis = lua.create_table()?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.set("err", text)?;
            Ok(table)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, text: mlua::String| {
            let table = lua.create_table()?;
            table.set("ok", text)?;
            Ok(table)
        })?,
    )?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, text: mlua::String| {
            Ok(sha1_smol::Sha1::from(&text.as_bytes()[..])
                .digest()
                .to_string())
        })?,
    )?;
    redis.set("log", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.set(name, level)?;
    }
    lua.globals().set("redis", redis)?;
    // As Redis: reading an undefined global is an error, not nil, and globals are read-only.
    lua.load(
        "setmetatable(_G, {\n\
           __index = function(_, name)\n\
             error(\"Script attempted to access nonexistent global variable '\" .. tostring(name) .. \"'\", 2)\n\
           end,\n\
           __newindex = function(_, name)\n\
             error(\"Attempt to modify a readonly table\", 2)\n\
           end,\n\
         })",
    )
    .set_name("=cairn")
    .exec()?;
    Ok(Vm {
        lua,
        compiled: HashMap::new(),
    })
}

/// Compiles `source` on this thread's Lua state, as Redis does before it caches a script:
/// one that does not compile is refused and not kept.
fn check_compiles(source: &[u8]) -> Result<(), Reply> {
    let sha = sha1_smol::Sha1::from(source).digest().to_string();
    let text = String::from_utf8_lossy(source);
    with_vm(|vm| compiled(vm, &sha, &text).map(drop)).map_err(|error| {
        Reply::err(format!(
            "Error compiling script (new function): {}",
            lua_message(&error)
        ))
    })
}

/// Adds `source` to the cache once it compiles.
fn load(ctx: &Ctx<'_>, source: &[u8]) -> Result<(String, Arc<str>), Reply> {
    let sha = sha1_smol::Sha1::from(source).digest().to_string();
    if let Some(text) = ctx.shared.scripts.get(&sha) {
        return Ok((sha, text));
    }
    check_compiles(source)?;
    ctx.shared.scripts.add(source)
}

/// Runs `f` on this thread's Lua state, made on first use.
fn with_vm<R>(f: impl FnOnce(&mut Vm) -> mlua::Result<R>) -> mlua::Result<R> {
    VM.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(new_vm()?);
        }
        match slot.as_mut() {
            Some(vm) => f(vm),
            None => Err(mlua::Error::runtime("cairn: no Lua state")),
        }
    })
}

pub(crate) fn eval(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let run_loaded = || {
        let (keys, arguments) = split_keys(args)?;
        let (sha, source) = load(ctx, at(args, 1))?;
        Ok((keys, arguments, sha, source))
    };
    match run_loaded() {
        Ok((keys, arguments, sha, source)) => run(ctx, keys, arguments, &sha, &source),
        Err(error) => error,
    }
}

pub(crate) fn evalsha(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (keys, arguments) = match split_keys(args) {
        Ok(split) => split,
        Err(error) => return error,
    };
    let sha = String::from_utf8_lossy(at(args, 1)).to_ascii_lowercase();
    match ctx.shared.scripts.get(&sha) {
        Some(source) => run(ctx, keys, arguments, &sha, &source),
        None => Reply::Error("NOSCRIPT No matching script. Please use EVAL.".to_owned()),
    }
}

/// `EVAL`'s keys and arguments, after its key count, checked as Redis checks it.
fn split_keys(args: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), Reply> {
    let numkeys = int_arg(at(args, 2))?;
    let rest = args.get(3..).unwrap_or_default();
    let numkeys =
        usize::try_from(numkeys).map_err(|_| Reply::err("Number of keys can't be negative"))?;
    if numkeys > rest.len() {
        return Err(Reply::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(numkeys))
}

pub(crate) fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = at(args, 1);
    if is(sub, "load") && args.len() == 3 {
        return match load(ctx, at(args, 2)) {
            Ok((sha, _)) => Reply::Bulk(Bytes::from(sha)),
            Err(error) => error,
        };
    }
    if is(sub, "exists") && args.len() >= 3 {
        let found = args
            .iter()
            .skip(2)
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Reply::Integer(i64::from(ctx.shared.scripts.get(&sha).is_some()))
            })
            .collect();
        return Reply::Array(found);
    }
    if is(sub, "flush") && args.len() <= 3 {
        ctx.shared.scripts.scripts.lock().clear();
        return OK;
    }
    Reply::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// `FUNCTION FLUSH` and `FUNCTION LIST`. Cairn runs scripts (`EVAL`) but keeps no function
/// libraries (`FUNCTION LOAD` is not supported), so there is never a function to flush or
/// list; clients and test harnesses that clear them first get Redis's replies.
pub(crate) fn function(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = at(args, 1);
    let mode = args.get(2);
    let mode_fits = mode.is_none_or(|mode| is(mode, "async") || is(mode, "sync"));
    if is(sub, "flush") && args.len() <= 3 && mode_fits {
        return OK;
    }
    if is(sub, "list") {
        return Reply::Array(Vec::new());
    }
    Reply::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// Runs script `sha` (`source`) with `keys` and `arguments`.
fn run(ctx: &mut Ctx<'_>, keys: &[Bytes], arguments: &[Bytes], sha: &str, source: &str) -> Reply {
    match &ctx.store {
        Store::Tx(transaction) => {
            let transaction = *transaction;
            run_in(ctx, transaction, sha, source, keys, arguments)
        }
        Store::Db => {
            let shared = ctx.shared;
            let _locks = shared.stripes.lock_all();
            let transaction = RefCell::new(shared.db.begin());
            let reply = run_in(ctx, &transaction, sha, source, keys, arguments);
            if matches!(reply, Reply::Error(_)) {
                ctx.client.events.clear();
                ctx.client.wake_readers.set(false);
                return reply;
            }
            match transaction.into_inner().commit() {
                Ok(_) => {
                    ctx.client.events.publish(&shared.notify, &shared.pubsub);
                    if ctx.client.wake_readers.take() {
                        shared.blocked_keys_written.notify_waiters();
                    }
                    reply
                }
                Err(error) => {
                    ctx.client.events.clear();
                    ctx.client.wake_readers.set(false);
                    engine_error(&error)
                }
            }
        }
    }
}

/// Runs the script against `transaction` on this thread's Lua state.
fn run_in(
    ctx: &mut Ctx<'_>,
    transaction: &RefCell<cairn::Transaction>,
    sha: &str,
    source: &str,
    keys: &[Bytes],
    arguments: &[Bytes],
) -> Reply {
    let mut outcome = None;
    let compiled_ok = with_vm(|vm| {
        let function = compiled(vm, sha, source)?;
        outcome = Some(call(
            &vm.lua,
            &function,
            sha,
            ctx,
            transaction,
            keys,
            arguments,
        ));
        vm.lua.remove_hook();
        Ok(())
    });
    match (compiled_ok, outcome) {
        (Err(error), _) => Reply::err(format!(
            "Error compiling script (new function): {}",
            lua_message(&error)
        )),
        (Ok(()), None) => Reply::err("cairn: the script did not run"),
        (Ok(()), Some(Ok(reply) | Err(Failure::Command(reply)))) => reply,
        (Ok(()), Some(Err(Failure::Lua(error)))) => {
            let message = lua_message(&error);
            // "user_script:LINE: ..." names the line, as Redis reports it.
            let line = message
                .strip_prefix("user_script:")
                .and_then(|rest| rest.split(':').next())
                .unwrap_or("0");
            Reply::err(format!("{message} script: {sha}, on @user_script:{line}."))
        }
    }
}

/// The line a stack frame is at (a function, since `Debug::current_line` itself binds a
/// narrower lifetime than `inspect_stack` wants).
fn line_of(debug: &mlua::Debug<'_>) -> Option<usize> {
    debug.current_line()
}

/// A Lua error's message, without mlua's wrapping or the traceback.
fn lua_message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::RuntimeError(message) | mlua::Error::SyntaxError { message, .. } => {
            message.lines().next().unwrap_or_default().to_owned()
        }
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        mlua::Error::MemoryError(_) => format!(
            "cairn: the script used more than {} MiB",
            SCRIPT_MEMORY_MAX / (1024 * 1024)
        ),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The script's function, compiled once per Lua state.
fn compiled(vm: &mut Vm, sha: &str, source: &str) -> mlua::Result<Function> {
    if let Some(key) = vm.compiled.get(sha) {
        return vm.lua.registry_value(key);
    }
    if vm.compiled.len() >= CACHE_SCRIPTS_MAX {
        for (_, key) in vm.compiled.drain() {
            vm.lua.remove_registry_value(key)?;
        }
    }
    let function = vm
        .lua
        .load(source)
        .set_name("=user_script")
        .into_function()?;
    let key = vm.lua.create_registry_value(function.clone())?;
    vm.compiled.insert(sha.to_owned(), key);
    Ok(function)
}

/// Why a script failed.
enum Failure {
    /// `redis.call` got an error reply: it becomes the script's reply, as in Redis.
    Command(Reply),
    /// Lua itself failed (a runtime error, a limit).
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(error: mlua::Error) -> Failure {
        Failure::Lua(error)
    }
}

/// Sets `KEYS`, `ARGV`, `redis.call` and `redis.pcall` for this run and calls the script.
fn call(
    lua: &Lua,
    function: &Function,
    sha: &str,
    ctx: &mut Ctx<'_>,
    transaction: &RefCell<cairn::Transaction>,
    keys: &[Bytes],
    arguments: &[Bytes],
) -> Result<Reply, Failure> {
    let globals = lua.globals();
    globals.raw_set("KEYS", strings_table(lua, keys)?)?;
    globals.raw_set("ARGV", strings_table(lua, arguments)?)?;
    let started = Instant::now();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(10_000),
        move |_, _| {
            if started.elapsed() > SCRIPT_TIME_MAX {
                Err(mlua::Error::runtime(format!(
                    "cairn: the script ran longer than {} s and was stopped; nothing it wrote \
                     was committed",
                    SCRIPT_TIME_MAX.as_secs()
                )))
            } else {
                Ok(mlua::VmState::Continue)
            }
        },
    )?;
    let shared = ctx.shared;
    let client: &mut super::Client = ctx.client;
    let failed: RefCell<Option<Reply>> = RefCell::new(None);
    let client = RefCell::new(&mut *client);
    let run_command = |lua: &Lua, args: MultiValue| -> mlua::Result<(Reply, Value)> {
        let args = match command_args(args) {
            Ok(args) => args,
            Err(text) => {
                let reply = Reply::err(text);
                let value = to_lua(lua, &reply)?;
                return Ok((reply, value));
            }
        };
        let reply = match args.first().and_then(|name| lookup(name)) {
            None => Reply::err("Unknown Redis command called from script"),
            Some(spec) if spec.flags.contains(&"noscript") || spec.name == "eval" => {
                Reply::err("This Redis command is not allowed from script")
            }
            Some(spec) if !super::arity_fits(spec, args.len()) => {
                Reply::err("Wrong number of args calling Redis command from script")
            }
            Some(spec) => {
                let mut client = client.borrow_mut();
                let reply = (spec.handler)(
                    &mut Ctx {
                        shared,
                        client: &mut client,
                        store: Store::Tx(transaction),
                    },
                    &args,
                );
                super::note_events(shared, &mut client, spec, &args);
                reply
            }
        };
        let value = to_lua(lua, &reply)?;
        Ok((reply, value))
    };
    let result = lua.scope(|scope| {
        let redis: mlua::Table = lua.globals().get("redis")?;
        redis.set(
            "call",
            scope.create_function_mut(|lua, args: MultiValue| {
                let (reply, value) = run_command(lua, args)?;
                if let Reply::Error(text) = &reply {
                    // As Redis: the command's error, then where the script called it.
                    let line = lua.inspect_stack(1, line_of).flatten().unwrap_or(0);
                    let text = format!("{text} script: {sha}, on @user_script:{line}.");
                    *failed.borrow_mut() = Some(Reply::Error(text.clone()));
                    return Err(mlua::Error::runtime(text));
                }
                Ok(value)
            })?,
        )?;
        redis.set(
            "pcall",
            scope.create_function_mut(|lua, args: MultiValue| Ok(run_command(lua, args)?.1))?,
        )?;
        function.call::<Value>(MultiValue::new())
    });
    match result {
        Ok(value) => Ok(from_lua(&value)),
        Err(error) => Err(match failed.into_inner() {
            Some(reply) => Failure::Command(reply),
            None => Failure::Lua(error),
        }),
    }
}

fn strings_table(lua: &Lua, items: &[Bytes]) -> mlua::Result<mlua::Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (index, item) in items.iter().enumerate() {
        table.raw_set(index + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

/// `redis.call`'s arguments as a request: strings and numbers, as Redis takes them.
fn command_args(args: MultiValue) -> Result<Vec<Bytes>, &'static str> {
    if args.is_empty() {
        return Err("Please specify at least one argument for this redis lib call");
    }
    args.into_iter()
        .map(|arg| match arg {
            Value::String(text) => Ok(Bytes::copy_from_slice(&text.as_bytes())),
            Value::Integer(number) => Ok(Bytes::from(number.to_string())),
            Value::Number(number) => Ok(Bytes::from(format_number(number))),
            _ => Err("Lua redis lib command arguments must be strings or integers"),
        })
        .collect()
}

/// A Lua number as Redis passes it to a command (`%.17g`).
fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e17 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "integral and within i64, checked just above"
        )]
        let whole = number as i64;
        whole.to_string()
    } else {
        format!("{number}")
    }
}

/// A reply as Lua sees it (Redis's RESP2 conversion).
fn to_lua(lua: &Lua, reply: &Reply) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Status(text) => status_table(lua, text)?,
        Reply::StatusText(text) => status_table(lua, text)?,
        Reply::Error(text) => {
            let table = lua.create_table()?;
            table.set("err", text.as_str())?;
            Value::Table(table)
        }
        Reply::Integer(number) => Value::Integer(*number),
        Reply::Boolean(flag) => Value::Integer(i64::from(*flag)),
        Reply::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        Reply::Double(number) => {
            Value::String(lua.create_string(crate::resp::reply::format_g17(*number))?)
        }
        Reply::Null | Reply::NullArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Many(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
        Reply::Map(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (index, (key, value)) in pairs.iter().enumerate() {
                table.raw_set(2 * index + 1, to_lua(lua, key)?)?;
                table.raw_set(2 * index + 2, to_lua(lua, value)?)?;
            }
            Value::Table(table)
        }
        Reply::Encoded(bytes) => {
            let table = lua.create_table()?;
            for (index, item) in crate::resp::reply::decode_bulk_array(bytes)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                table.raw_set(index + 1, lua.create_string(item)?)?;
            }
            Value::Table(table)
        }
    })
}

/// A Lua number as Redis turns it into an integer reply: a C cast, which on x86-64 gives the
/// least `i64` for a number out of range or NaN (Lua 5.1 numbers are doubles, so an `INCR`
/// reply near the top of the range comes back this way too).
fn truncate(number: f64) -> i64 {
    // 2^63: the first double above every i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if number.is_nan() || !(-LIMIT..LIMIT).contains(&number) {
        return i64::MIN;
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "in range, checked just above; truncation toward zero is Redis's"
    )]
    let whole = number as i64;
    whole
}

fn status_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.set("ok", text)?;
    Ok(Value::Table(table))
}

/// The script's result as a reply (Redis's conversion): numbers truncate to integers, `true`
/// is 1, `false` and `nil` are null, a table with `err` or `ok` is an error or a status, any
/// other table is an array up to its first `nil`.
fn from_lua(value: &Value) -> Reply {
    match value {
        Value::Boolean(true) => Reply::Integer(1),
        Value::Integer(number) => Reply::Integer(*number),
        Value::Number(number) => Reply::Integer(truncate(*number)),
        Value::String(text) => Reply::Bulk(Bytes::copy_from_slice(&text.as_bytes())),
        Value::Table(table) => {
            if let Ok(Value::String(text)) = table.raw_get::<Value>("err") {
                return Reply::Error(text.to_string_lossy());
            }
            if let Ok(Value::String(text)) = table.raw_get::<Value>("ok") {
                return Reply::StatusText(text.to_string_lossy());
            }
            let mut items = Vec::new();
            for index in 1.. {
                match table.raw_get::<Value>(index) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(item) => items.push(from_lua(&item)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Null,
    }
}

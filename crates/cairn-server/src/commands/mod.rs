//! The command table and dispatch: each command's name, arity and flags (what `COMMAND`
//! reports), and the function that runs it against the shared state.
//!
//! [`dispatch`] checks, in Redis's order: the command exists, the client is authenticated (or
//! the command is allowed before), the argument count fits the arity. Errors use Redis's
//! texts. Commands are grouped by what they touch: [`strings`] (and [`bits`], [`bitfield`], [`lcs`]), [`keys`],
//! [`hashes`], [`lists`], [`sets`], [`zsets`] (sharing [`collection`]), [`streams`],
//! [`transactions`], [`scripting`] (Lua), [`pubsub`], [`config`], and [`connection`] (the
//! connection and the server). Every command reads and writes through [`store`], which sends
//! them to the database or to the transaction of an `EXEC`.

mod bitfield;
mod bits;
mod collection;
mod config;
mod connection;
pub use collection::RANDOM_PICKS_MAX;
pub use connection::REDIS_VERSION;
mod hashes;
mod keys;
mod lcs;
mod lists;
mod pubsub;
mod scripting;
mod sets;
mod store;
mod streams;
mod strings;
mod transactions;
mod zsets;

pub(crate) use config::LayoutHints;
pub(crate) use scripting::ScriptCache;
pub(crate) use store::{Store, Writes};

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use bytes::Bytes;
use cairn::Error;

use crate::keyspace::{self, Entry, Kind};
use crate::resp::{Protocol, Reply};
use crate::state::Shared;

/// A connection's own state.
#[derive(Debug)]
pub(crate) struct Client {
    /// The registry id (`CLIENT ID`).
    pub(crate) id: u64,
    /// The selected database.
    pub(crate) db: u8,
    /// The reply protocol.
    pub(crate) protocol: Protocol,
    /// Whether the client may run every command.
    pub(crate) authenticated: bool,
    /// Set by `QUIT`: close after replying.
    pub(crate) closing: bool,
    /// `MULTI`'s queue and `WATCH`'s keys.
    pub(crate) transaction: transactions::TransactionState,
    /// Channels and patterns, and the outbox of their messages.
    pub(crate) subscriptions: pubsub::Subscriptions,
    /// Set by a blocking stream read that found nothing: the connection waits and runs it
    /// again (`session`).
    pub(crate) blocked: Option<Blocked>,
    /// What the running command wrote, while keyspace notifications are on (`notify`).
    pub(crate) changes: std::cell::RefCell<crate::notify::Changes>,
    /// Keyspace events not yet published.
    pub(crate) events: crate::notify::Events,
    /// Set while a blocked read runs again (`session`): it then answers as Redis answers a
    /// woken client (a key that changed type is waited on; a group that is gone is an
    /// error).
    pub(crate) rerun: bool,
    /// Set when the running transaction wrote something blocked reads wait on: they are
    /// woken after its commit.
    pub(crate) wake_readers: std::cell::Cell<bool>,
    /// `CLIENT REPLY`: which replies the client gets.
    replies: Replies,
}

/// Which replies a client gets (`CLIENT REPLY ON|OFF|SKIP`). Pub/sub confirmations and
/// messages (`Reply::Push`) go out whatever this says, as in Redis 7.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replies {
    On,
    Off,
    /// Drop this many more command replies (`SKIP`'s own and the next command's), then on.
    Skip(u8),
}

impl Client {
    /// Encodes `reply` into `output` unless `CLIENT REPLY` silenced it. Called once per
    /// command reply, in order.
    pub(crate) fn send(&mut self, reply: &Reply, output: &mut Vec<u8>) {
        let silenced = match self.replies {
            Replies::On => false,
            Replies::Off => true,
            Replies::Skip(left) => {
                self.replies = match left.checked_sub(1) {
                    Some(left) if left > 0 => Replies::Skip(left),
                    _ => Replies::On,
                };
                true
            }
        };
        if !silenced || reply.is_push() {
            reply.encode(self.protocol, output);
        }
    }

    /// `CLIENT REPLY`: `mode` is `ON`, `OFF` or `SKIP` (any case); `false` for anything else.
    pub(crate) fn set_replies(&mut self, mode: &[u8]) -> bool {
        self.replies = if is(mode, "on") {
            Replies::On
        } else if is(mode, "off") {
            Replies::Off
        } else if is(mode, "skip") {
            Replies::Skip(2)
        } else {
            return false;
        };
        true
    }
}

/// A blocking read (`XREAD ... BLOCK`) that found nothing yet.
#[derive(Debug)]
pub(crate) struct Blocked {
    /// The request to run again: the original, with each `$` replaced by the id it stood for
    /// when the read began.
    pub(crate) args: Vec<Bytes>,
    /// How long to wait before replying with the null array (`None`: for ever).
    pub(crate) timeout: Option<std::time::Duration>,
    /// The engine keys of the streams it reads: a write that deletes or replaces one wakes
    /// it (`Ctx::apply`).
    pub(crate) keys: Vec<Vec<u8>>,
}

impl Client {
    /// A new connection's state: database 0, RESP2, nothing queued or watched.
    pub(crate) fn new(id: u64, authenticated: bool) -> Client {
        Client {
            id,
            db: 0,
            protocol: Protocol::Resp2,
            authenticated,
            closing: false,
            transaction: transactions::TransactionState::default(),
            subscriptions: pubsub::Subscriptions::default(),
            blocked: None,
            changes: std::cell::RefCell::default(),
            events: crate::notify::Events::default(),
            rerun: false,
            wake_readers: std::cell::Cell::new(false),
            replies: Replies::On,
        }
    }
}

/// What a command runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) client: &'a mut Client,
    /// Where its reads and writes go (`store`).
    pub(crate) store: Store<'a>,
}

type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> Reply;

/// One command of the table.
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    /// Redis's arity: `n` exactly `n` arguments (the name counts), `-n` at least `n`.
    pub(crate) arity: i64,
    pub(crate) flags: &'static [&'static str],
    /// Positions of the first and last key and the step between keys (0, 0, 0: no keys;
    /// a negative last counts from the end).
    pub(crate) keys: (i64, i64, i64),
    handler: Handler,
}

impl Spec {
    /// Whether the command may write.
    pub(crate) fn writes(&self) -> bool {
        self.flags.contains(&"write")
    }
}

/// A request whose command was looked up, and checked, once: what a pipelined batch and a
/// `MULTI` queue hold, so that running them looks nothing up again.
pub(crate) struct Request {
    pub(crate) spec: &'static Spec,
    pub(crate) args: Vec<Bytes>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("command", &self.spec.name)
            .field("args", &self.args.len())
            .finish()
    }
}

const WRITE: &[&str] = &["write", "denyoom"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const READ: &[&str] = &["readonly"];
const READ_FAST: &[&str] = &["readonly", "fast"];
const READ_BLOCKING: &[&str] = &["readonly", "blocking", "movablekeys"];
/// A read whose keys follow a count (`SINTERCARD numkeys key ...`).
const READ_MOVABLE: &[&str] = &["readonly", "movablekeys"];
/// A write whose input keys follow a count (`ZUNIONSTORE dst numkeys key ...`): it never
/// joins a pipelined batch, and inside `EXEC` the block holds every stripe.
const WRITE_MOVABLE: &[&str] = &["write", "denyoom", "movablekeys"];
const WRITE_BLOCKING: &[&str] = &["write", "blocking", "movablekeys"];
const LIST_BLOCKING: &[&str] = &["write", "blocking"];
/// `PING`'s: a connection command that scripts may run too.
const CONN_IN_SCRIPTS: &[&str] = &["loading", "stale", "fast"];
const SCRIPT_RUN: &[&str] = &["noscript", "write", "movablekeys"];
const ADMIN: &[&str] = &["admin", "noscript"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
/// The commands a client may send before it authenticates.
const NO_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth"];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $handler:path) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            handler: $handler,
        }
    };
}

/// Every command the server knows, in no particular order.
pub(crate) static COMMANDS: &[Spec] = &[
    // Connection and server.
    spec!("ping", -1, CONN_IN_SCRIPTS, (0, 0, 0), connection::ping),
    spec!("echo", 2, READ_FAST, (0, 0, 0), connection::echo),
    spec!("hello", -1, NO_AUTH, (0, 0, 0), connection::hello),
    spec!("auth", -2, NO_AUTH, (0, 0, 0), connection::auth),
    spec!("select", 2, CONN, (0, 0, 0), connection::select),
    spec!("quit", -1, NO_AUTH, (0, 0, 0), connection::quit),
    spec!("client", -2, CONN, (0, 0, 0), connection::client),
    spec!("info", -1, READ, (0, 0, 0), connection::info),
    spec!("dbsize", 1, READ, (0, 0, 0), connection::dbsize),
    spec!("flushdb", -1, WRITE, (0, 0, 0), connection::flushdb),
    spec!("flushall", -1, WRITE, (0, 0, 0), connection::flushall),
    spec!("time", 1, READ_FAST, (0, 0, 0), connection::time),
    spec!("command", -1, CONN, (0, 0, 0), connection::command),
    spec!("config", -2, ADMIN, (0, 0, 0), config::config),
    // Pub/sub.
    spec!("subscribe", -2, CONN, (0, 0, 0), pubsub::subscribe),
    spec!("unsubscribe", -1, CONN, (0, 0, 0), pubsub::unsubscribe),
    spec!("psubscribe", -2, CONN, (0, 0, 0), pubsub::psubscribe),
    spec!("punsubscribe", -1, CONN, (0, 0, 0), pubsub::punsubscribe),
    spec!("publish", 3, READ_FAST, (0, 0, 0), pubsub::publish),
    spec!("pubsub", -2, CONN, (0, 0, 0), pubsub::pubsub),
    // Transactions.
    spec!("multi", 1, CONN, (0, 0, 0), transactions::multi),
    spec!("exec", 1, CONN, (0, 0, 0), transactions::exec),
    spec!("discard", 1, CONN, (0, 0, 0), transactions::discard),
    spec!("watch", -2, CONN, (1, -1, 1), transactions::watch),
    spec!("unwatch", 1, CONN, (0, 0, 0), transactions::unwatch),
    // Strings.
    spec!("get", 2, READ_FAST, (1, 1, 1), strings::get),
    spec!("set", -3, WRITE, (1, 1, 1), strings::set),
    spec!("setnx", 3, WRITE_FAST, (1, 1, 1), strings::setnx),
    spec!("setex", 4, WRITE, (1, 1, 1), strings::setex),
    spec!("psetex", 4, WRITE, (1, 1, 1), strings::psetex),
    spec!("getset", 3, WRITE_FAST, (1, 1, 1), strings::getset),
    spec!("getdel", 2, WRITE_FAST, (1, 1, 1), strings::getdel),
    spec!("getex", -2, WRITE_FAST, (1, 1, 1), strings::getex),
    spec!("mget", -2, READ_FAST, (1, -1, 1), strings::mget),
    spec!("mset", -3, WRITE, (1, -1, 2), strings::mset),
    spec!("msetnx", -3, WRITE, (1, -1, 2), strings::msetnx),
    spec!("append", 3, WRITE_FAST, (1, 1, 1), strings::append),
    spec!("strlen", 2, READ_FAST, (1, 1, 1), strings::strlen),
    spec!("getrange", 4, READ, (1, 1, 1), strings::getrange),
    spec!("substr", 4, READ, (1, 1, 1), strings::getrange),
    spec!("setrange", 4, WRITE, (1, 1, 1), strings::setrange),
    spec!("setbit", 4, WRITE, (1, 1, 1), strings::setbit),
    spec!("getbit", 3, READ_FAST, (1, 1, 1), strings::getbit),
    spec!("incr", 2, WRITE_FAST, (1, 1, 1), strings::incr),
    spec!("decr", 2, WRITE_FAST, (1, 1, 1), strings::decr),
    spec!("incrby", 3, WRITE_FAST, (1, 1, 1), strings::incrby),
    spec!("decrby", 3, WRITE_FAST, (1, 1, 1), strings::decrby),
    spec!(
        "incrbyfloat",
        3,
        WRITE_FAST,
        (1, 1, 1),
        strings::incrbyfloat
    ),
    // Keys.
    spec!("del", -2, WRITE, (1, -1, 1), keys::del),
    spec!("unlink", -2, WRITE_FAST, (1, -1, 1), keys::del),
    spec!("exists", -2, READ_FAST, (1, -1, 1), keys::exists),
    spec!("expire", -3, WRITE_FAST, (1, 1, 1), keys::expire),
    spec!("pexpire", -3, WRITE_FAST, (1, 1, 1), keys::pexpire),
    spec!("expireat", -3, WRITE_FAST, (1, 1, 1), keys::expireat),
    spec!("pexpireat", -3, WRITE_FAST, (1, 1, 1), keys::pexpireat),
    spec!("ttl", 2, READ_FAST, (1, 1, 1), keys::ttl),
    spec!("pttl", 2, READ_FAST, (1, 1, 1), keys::pttl),
    spec!("expiretime", 2, READ_FAST, (1, 1, 1), keys::expiretime),
    spec!("pexpiretime", 2, READ_FAST, (1, 1, 1), keys::pexpiretime),
    spec!("persist", 2, WRITE_FAST, (1, 1, 1), keys::persist),
    spec!("type", 2, READ_FAST, (1, 1, 1), keys::type_of),
    spec!("keys", 2, READ, (0, 0, 0), keys::keys),
    spec!("scan", -2, READ, (0, 0, 0), keys::scan),
    spec!("rename", 3, WRITE, (1, 2, 1), keys::rename),
    spec!("renamenx", 3, WRITE_FAST, (1, 2, 1), keys::renamenx),
    spec!("memory", -2, READ, (2, 2, 1), keys::memory),
    spec!("object", -2, READ, (2, 2, 1), keys::object),
    spec!("copy", -3, WRITE, (1, 2, 1), keys::copy),
    spec!("lcs", -3, READ, (1, 2, 1), lcs::lcs),
    spec!("bitcount", -2, READ, (1, 1, 1), bits::bitcount),
    spec!("bitpos", -3, READ, (1, 1, 1), bits::bitpos),
    spec!("bitop", -4, WRITE, (2, -1, 1), bits::bitop),
    spec!("bitfield", -2, WRITE, (1, 1, 1), bitfield::bitfield),
    spec!(
        "bitfield_ro",
        -2,
        READ_FAST,
        (1, 1, 1),
        bitfield::bitfield_ro
    ),
    spec!("randomkey", 1, READ, (0, 0, 0), keys::randomkey),
    spec!("move", 3, WRITE_FAST, (1, 1, 1), keys::move_key),
    // Hashes.
    spec!("hset", -4, WRITE_FAST, (1, 1, 1), hashes::hset),
    spec!("hmset", -4, WRITE_FAST, (1, 1, 1), hashes::hmset),
    spec!("hsetnx", 4, WRITE_FAST, (1, 1, 1), hashes::hsetnx),
    spec!("hget", 3, READ_FAST, (1, 1, 1), hashes::hget),
    spec!("hmget", -3, READ_FAST, (1, 1, 1), hashes::hmget),
    spec!("hgetall", 2, READ, (1, 1, 1), hashes::hgetall),
    spec!("hkeys", 2, READ, (1, 1, 1), hashes::hkeys),
    spec!("hvals", 2, READ, (1, 1, 1), hashes::hvals),
    spec!("hdel", -3, WRITE_FAST, (1, 1, 1), hashes::hdel),
    spec!("hlen", 2, READ_FAST, (1, 1, 1), hashes::hlen),
    spec!("hexists", 3, READ_FAST, (1, 1, 1), hashes::hexists),
    spec!("hstrlen", 3, READ_FAST, (1, 1, 1), hashes::hstrlen),
    spec!("hincrby", 4, WRITE_FAST, (1, 1, 1), hashes::hincrby),
    spec!(
        "hincrbyfloat",
        4,
        WRITE_FAST,
        (1, 1, 1),
        hashes::hincrbyfloat
    ),
    spec!("hscan", -3, READ, (1, 1, 1), hashes::hscan),
    // Lists.
    spec!("lpush", -3, WRITE_FAST, (1, 1, 1), lists::lpush),
    spec!("rpush", -3, WRITE_FAST, (1, 1, 1), lists::rpush),
    spec!("lpop", -2, WRITE_FAST, (1, 1, 1), lists::lpop),
    spec!("blpop", -3, LIST_BLOCKING, (1, -2, 1), lists::blpop),
    spec!("lpushx", -3, WRITE_FAST, (1, 1, 1), lists::lpushx),
    spec!("rpushx", -3, WRITE_FAST, (1, 1, 1), lists::rpushx),
    spec!("lmove", 5, WRITE, (1, 2, 1), lists::lmove),
    spec!("rpoplpush", 3, WRITE, (1, 2, 1), lists::rpoplpush),
    spec!("blmove", 6, LIST_BLOCKING, (1, 2, 1), lists::blmove),
    spec!("brpoplpush", 4, LIST_BLOCKING, (1, 2, 1), lists::brpoplpush),
    spec!("brpop", -3, LIST_BLOCKING, (1, -2, 1), lists::brpop),
    spec!("lmpop", -4, WRITE_MOVABLE, (0, 0, 0), lists::lmpop),
    spec!("blmpop", -5, WRITE_BLOCKING, (0, 0, 0), lists::blmpop),
    spec!("rpop", -2, WRITE_FAST, (1, 1, 1), lists::rpop),
    spec!("lrange", 4, READ, (1, 1, 1), lists::lrange),
    spec!("llen", 2, READ_FAST, (1, 1, 1), lists::llen),
    spec!("lindex", 3, READ, (1, 1, 1), lists::lindex),
    spec!("lrem", 4, WRITE, (1, 1, 1), lists::lrem),
    spec!("linsert", 5, WRITE, (1, 1, 1), lists::linsert),
    spec!("lpos", -3, READ, (1, 1, 1), lists::lpos),
    spec!("lset", 4, WRITE, (1, 1, 1), lists::lset),
    spec!("ltrim", 4, WRITE, (1, 1, 1), lists::ltrim),
    // Sets.
    spec!("sadd", -3, WRITE_FAST, (1, 1, 1), sets::sadd),
    spec!("srem", -3, WRITE_FAST, (1, 1, 1), sets::srem),
    spec!("smembers", 2, READ, (1, 1, 1), sets::smembers),
    spec!("sismember", 3, READ_FAST, (1, 1, 1), sets::sismember),
    spec!("scard", 2, READ_FAST, (1, 1, 1), sets::scard),
    spec!("smismember", -3, READ_FAST, (1, 1, 1), sets::smismember),
    spec!("sinter", -2, READ, (1, -1, 1), sets::sinter),
    spec!("sunion", -2, READ, (1, -1, 1), sets::sunion),
    spec!("sdiff", -2, READ, (1, -1, 1), sets::sdiff),
    spec!("spop", -2, WRITE_FAST, (1, 1, 1), sets::spop),
    spec!("smove", 4, WRITE_FAST, (1, 2, 1), sets::smove),
    spec!("sscan", -3, READ, (1, 1, 1), sets::sscan),
    spec!("srandmember", -2, READ, (1, 1, 1), sets::srandmember),
    spec!("hrandfield", -2, READ, (1, 1, 1), hashes::hrandfield),
    spec!("zrandmember", -2, READ, (1, 1, 1), zsets::zrandmember),
    spec!("sinterstore", -3, WRITE, (1, -1, 1), sets::sinterstore),
    spec!("sunionstore", -3, WRITE, (1, -1, 1), sets::sunionstore),
    spec!("sdiffstore", -3, WRITE, (1, -1, 1), sets::sdiffstore),
    spec!("sintercard", -3, READ_MOVABLE, (0, 0, 0), sets::sintercard),
    // Sorted sets.
    spec!("zadd", -4, WRITE_FAST, (1, 1, 1), zsets::zadd),
    spec!("zincrby", 4, WRITE_FAST, (1, 1, 1), zsets::zincrby),
    spec!("zscore", 3, READ_FAST, (1, 1, 1), zsets::zscore),
    spec!("zcard", 2, READ_FAST, (1, 1, 1), zsets::zcard),
    spec!("zcount", 4, READ_FAST, (1, 1, 1), zsets::zcount),
    spec!("zrank", 3, READ_FAST, (1, 1, 1), zsets::zrank),
    spec!("zrevrank", 3, READ_FAST, (1, 1, 1), zsets::zrevrank),
    spec!("zmscore", -3, READ_FAST, (1, 1, 1), zsets::zmscore),
    spec!("zrevrange", -4, READ, (1, 1, 1), zsets::zrevrange),
    spec!("zrem", -3, WRITE_FAST, (1, 1, 1), zsets::zrem),
    spec!("zscan", -3, READ, (1, 1, 1), zsets::zscan),
    spec!("zrangebylex", -4, READ, (1, 1, 1), zsets::zrangebylex),
    spec!("zrevrangebylex", -4, READ, (1, 1, 1), zsets::zrevrangebylex),
    spec!("zlexcount", 4, READ_FAST, (1, 1, 1), zsets::zlexcount),
    spec!("zremrangebylex", 4, WRITE, (1, 1, 1), zsets::zremrangebylex),
    spec!("zrangestore", -5, WRITE, (1, 2, 1), zsets::zrangestore),
    spec!("zunion", -3, READ_MOVABLE, (0, 0, 0), zsets::zunion),
    spec!("zinter", -3, READ_MOVABLE, (0, 0, 0), zsets::zinter),
    spec!("zdiff", -3, READ_MOVABLE, (0, 0, 0), zsets::zdiff),
    spec!("zintercard", -3, READ_MOVABLE, (0, 0, 0), zsets::zintercard),
    spec!(
        "zunionstore",
        -4,
        WRITE_MOVABLE,
        (0, 0, 0),
        zsets::zunionstore
    ),
    spec!(
        "zinterstore",
        -4,
        WRITE_MOVABLE,
        (0, 0, 0),
        zsets::zinterstore
    ),
    spec!(
        "zdiffstore",
        -4,
        WRITE_MOVABLE,
        (0, 0, 0),
        zsets::zdiffstore
    ),
    spec!("zrange", -4, READ, (1, 1, 1), zsets::zrange),
    spec!("zrangebyscore", -4, READ, (1, 1, 1), zsets::zrangebyscore),
    spec!(
        "zrevrangebyscore",
        -4,
        READ,
        (1, 1, 1),
        zsets::zrevrangebyscore
    ),
    spec!("zpopmin", -2, WRITE_FAST, (1, 1, 1), zsets::zpopmin),
    spec!("zpopmax", -2, WRITE_FAST, (1, 1, 1), zsets::zpopmax),
    spec!("bzpopmin", -3, LIST_BLOCKING, (1, -2, 1), zsets::bzpopmin),
    spec!("bzpopmax", -3, LIST_BLOCKING, (1, -2, 1), zsets::bzpopmax),
    spec!("zmpop", -4, WRITE_MOVABLE, (0, 0, 0), zsets::zmpop),
    spec!("bzmpop", -5, WRITE_BLOCKING, (0, 0, 0), zsets::bzmpop),
    spec!(
        "zremrangebyscore",
        4,
        WRITE,
        (1, 1, 1),
        zsets::zremrangebyscore
    ),
    spec!(
        "zremrangebyrank",
        4,
        WRITE,
        (1, 1, 1),
        zsets::zremrangebyrank
    ),
    // Scripting.
    spec!("eval", -3, SCRIPT_RUN, (0, 0, 0), scripting::eval),
    spec!("evalsha", -3, SCRIPT_RUN, (0, 0, 0), scripting::evalsha),
    spec!("script", -2, ADMIN, (0, 0, 0), scripting::script),
    spec!("function", -2, ADMIN, (0, 0, 0), scripting::function),
    // Streams.
    spec!("xadd", -5, WRITE_FAST, (1, 1, 1), streams::xadd),
    spec!("xlen", 2, READ_FAST, (1, 1, 1), streams::xlen),
    spec!("xrange", -4, READ, (1, 1, 1), streams::xrange),
    spec!("xrevrange", -4, READ, (1, 1, 1), streams::xrevrange),
    spec!("xdel", -3, WRITE_FAST, (1, 1, 1), streams::xdel),
    spec!("xsetid", -3, WRITE_FAST, (1, 1, 1), streams::xsetid),
    spec!("xtrim", -4, WRITE, (1, 1, 1), streams::xtrim),
    spec!("xread", -4, READ_BLOCKING, (0, 0, 0), streams::xread),
    spec!(
        "xreadgroup",
        -7,
        WRITE_BLOCKING,
        (0, 0, 0),
        streams::xreadgroup
    ),
    spec!("xack", -4, WRITE_FAST, (1, 1, 1), streams::xack),
    spec!("xgroup", -2, WRITE, (2, 2, 1), streams::xgroup),
    spec!("xpending", -3, READ, (1, 1, 1), streams::xpending),
    spec!("xclaim", -6, WRITE_FAST, (1, 1, 1), streams::xclaim),
    spec!("xautoclaim", -6, WRITE_FAST, (1, 1, 1), streams::xautoclaim),
    spec!("xinfo", -2, READ, (2, 2, 1), streams::xinfo),
];

/// Looks a command up by its name, in any case.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    // Names are the table's own, not a client's: a fixed seed cannot be attacked.
    type Table = HashMap<&'static [u8], &'static Spec, foldhash::fast::FixedState>;
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|spec| (spec.name.as_bytes(), spec))
            .collect()
    });
    let mut lower = [0u8; 32];
    let folded = lower.get_mut(..name.len())?;
    folded.copy_from_slice(name);
    folded.make_ascii_lowercase();
    table.get(&*folded).copied()
}

/// Runs one request (`args[0]` is the command name) and returns its reply.
pub(crate) fn dispatch(shared: &Shared, client: &mut Client, args: &[Bytes]) -> Reply {
    let Some(name) = args.first() else {
        return Reply::err("empty command");
    };
    shared
        .stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let Some(spec) = lookup(name) else {
        client.transaction.fail();
        return unknown_command(name, args.get(1..).unwrap_or_default());
    };
    if !client.authenticated && !spec.flags.contains(&"no_auth") {
        client.transaction.fail();
        return Reply::Error("NOAUTH Authentication required.".to_owned());
    }
    if !arity_fits(spec, args.len()) {
        if spec.name == "exec" {
            // As Redis: a malformed EXEC ends any transaction, and says why (even outside
            // one).
            transactions::discard_all(shared, client);
            return Reply::Error(
                "EXECABORT Transaction discarded because of: wrong number of arguments for \
                 'exec' command"
                    .to_owned(),
            );
        }
        client.transaction.fail();
        return wrong_arity(spec.name);
    }
    if client.subscriptions.count() > 0 && client.protocol == Protocol::Resp2 {
        if !pubsub::allowed_when_subscribed(spec.name) {
            return Reply::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
                 RESET are allowed in this context",
                spec.name
            ));
        }
        if spec.name == "ping" {
            return pubsub::subscribed_ping(args);
        }
    }
    if client.transaction.in_multi() && !transactions::runs_inside_multi(spec) {
        // Redis looks a container command's subcommand up as it queues it.
        let checked = match spec.name {
            "object" => keys::object_subcommand(args),
            "pubsub" => pubsub::pubsub_subcommand(args),
            _ => Ok(()),
        };
        if let Err(error) = checked {
            client.transaction.fail();
            return error;
        }
        client.transaction.queue(spec, args);
        return Reply::Status("QUEUED");
    }
    run_checked(shared, client, spec, args)
}

/// Runs a request that passed `dispatch`'s checks, outside a transaction.
fn run_checked(shared: &Shared, client: &mut Client, spec: &Spec, args: &[Bytes]) -> Reply {
    let reply = (spec.handler)(
        &mut Ctx {
            shared,
            client,
            store: Store::Db,
        },
        args,
    );
    note_events(shared, client, spec, args);
    client.events.publish(&shared.notify, &shared.pubsub);
    reply
}

/// Turns what the command `spec` just ran wrote into its keyspace events (`notify`).
pub(crate) fn note_events(shared: &Shared, client: &mut Client, spec: &Spec, args: &[Bytes]) {
    let changes = client.changes.take();
    if shared.notify.get() == 0 {
        return;
    }
    client
        .events
        .record_command(spec.name, args, changes, client.db);
}

/// Whether `count` arguments (the name included) fit `spec`'s arity.
pub(crate) fn arity_fits(spec: &Spec, count: usize) -> bool {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    (spec.arity > 0 && count == spec.arity) || (spec.arity < 0 && count >= -spec.arity)
}

fn unknown_command(name: &[u8], rest: &[Bytes]) -> Reply {
    let mut text = format!(
        "unknown command '{}', with args beginning with: ",
        clip(name)
    );
    for arg in rest {
        let _ = write!(text, "'{}' ", clip(arg));
    }
    Reply::err(text)
}

/// Up to 128 bytes of `bytes` as text, as Redis quotes arguments in errors.
fn clip(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.get(..128).unwrap_or(bytes)).into_owned()
}

pub(crate) fn wrong_arity(name: &str) -> Reply {
    Reply::err(format!("wrong number of arguments for '{name}' command"))
}

pub(crate) fn syntax_error() -> Reply {
    Reply::err("syntax error")
}

pub(crate) fn not_an_integer() -> Reply {
    Reply::err("value is not an integer or out of range")
}

pub(crate) fn wrong_type() -> Reply {
    Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".to_owned())
}

/// The reply for an engine error.
pub(crate) fn engine_error(error: &Error) -> Reply {
    match error {
        Error::ValueTooLarge { .. } => {
            Reply::err("string exceeds maximum allowed size (proto-max-bulk-len)")
        }
        Error::KeyTooLarge { .. } => Reply::err("key too large"),
        other => Reply::err(format!("cairn: {other}")),
    }
}

/// An argument as an `i64`, or Redis's error.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    crate::resp::parse::parse_i64(arg).ok_or_else(not_an_integer)
}

/// Whether `arg` is `option`, in any case.
pub(crate) fn is(arg: &[u8], option: &str) -> bool {
    arg.eq_ignore_ascii_case(option.as_bytes())
}

/// A string's bytes and deadline.
pub(crate) type StringValue = (Vec<u8>, Option<u64>);

/// A key's live record, read at the engine's latest version.
pub(crate) struct Stored {
    record: cairn::Value,
}

impl Stored {
    /// The record's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.record.as_bytes().len()
    }

    pub(crate) fn entry(&self) -> Entry<'_> {
        keyspace::decode(self.record.as_bytes()).unwrap_or(Entry {
            kind: Kind::String,
            deadline: None,
            payload: &[],
        })
    }
}

impl Ctx<'_> {
    /// The engine key of `key` in the selected database, or the error for a key too long.
    pub(crate) fn meta_key(&self, key: &[u8]) -> Result<Vec<u8>, Reply> {
        if key.len() > keyspace::KEY_BYTES_MAX {
            return Err(Reply::err("key too large"));
        }
        Ok(keyspace::meta_key(self.client.db, key))
    }

    /// The live record under `engine_key`, if any; an undecodable record is an error.
    pub(crate) fn read(&self, engine_key: &[u8], now: u64) -> Result<Option<Stored>, Reply> {
        let Some(record) = self.get(engine_key)? else {
            return Ok(None);
        };
        match keyspace::decode(record.as_bytes()) {
            None => Err(Reply::err(
                "cairn: the record of this key is damaged (not a known type)",
            )),
            Some(entry) if !entry.is_live(now) => Ok(None),
            Some(_) => Ok(Some(Stored { record })),
        }
    }

    /// The live string under `engine_key`: its bytes and deadline, `None` if absent, or
    /// `WRONGTYPE`.
    pub(crate) fn read_string(
        &self,
        engine_key: &[u8],
        now: u64,
    ) -> Result<Option<StringValue>, Reply> {
        match self.read(engine_key, now)? {
            None => Ok(None),
            Some(stored) => {
                let entry = stored.entry();
                if entry.kind != Kind::String {
                    return Err(wrong_type());
                }
                Ok(Some((entry.payload.to_vec(), entry.deadline)))
            }
        }
    }

    /// Writes a string record (the caller holds the key's stripe).
    pub(crate) fn write_string(
        &self,
        engine_key: &[u8],
        payload: &[u8],
        deadline: Option<u64>,
        now: u64,
    ) -> Result<(), Reply> {
        self.write_record(
            engine_key,
            &keyspace::encode(Kind::String, deadline, payload),
            deadline,
            now,
        )
    }

    /// Writes an encoded record whose deadline is `deadline` (the caller holds the stripe).
    /// A deadline already past deletes the key instead, as Redis does.
    pub(crate) fn write_record(
        &self,
        engine_key: &[u8],
        record: &[u8],
        deadline: Option<u64>,
        now: u64,
    ) -> Result<(), Reply> {
        let mut writes = Writes::new();
        match deadline {
            None => writes.put(engine_key, record),
            Some(deadline) if deadline < now => writes.delete(engine_key),
            Some(deadline) => {
                let reap_after = deadline - now + keyspace::REAP_SLACK_MILLIS;
                writes.put_with_ttl(
                    engine_key,
                    record,
                    std::time::Duration::from_millis(reap_after),
                );
            }
        }
        self.apply(&writes)
    }

    /// Deletes `engine_key`'s record, if there is one (so deleting nothing touches no
    /// watcher, as in Redis); whether a live key was there.
    pub(crate) fn delete(&self, engine_key: &[u8], now: u64) -> Result<bool, Reply> {
        let Some(record) = self.get(engine_key)? else {
            return Ok(false);
        };
        // One read of the record, checked as `read` checks it.
        let live = keyspace::decode(record.as_bytes())
            .ok_or_else(|| {
                Reply::err("cairn: the record of this key is damaged (not a known type)")
            })?
            .is_live(now);
        let mut writes = Writes::new();
        writes.delete(engine_key);
        self.apply(&writes)?;
        Ok(live)
    }
}

/// The command of a request that may join a pipelined batch (`run_batch`): a data command on
/// keys, with a valid arity, from an authenticated client outside `MULTI` and subscribed mode.
/// `None` for any other request, which runs through [`dispatch`].
pub(crate) fn batchable(client: &Client, args: &[Bytes]) -> Option<&'static Spec> {
    let spec = args.first().and_then(|name| lookup(name))?;
    (arity_fits(spec, args.len())
        && spec.keys.0 != 0
        && spec.name != "watch"
        && !spec.flags.contains(&"blocking")
        && client.authenticated
        && !client.transaction.in_multi()
        && client.subscriptions.count() == 0)
        .then_some(spec)
}

/// Runs requests that each passed [`batchable`], in order. Several of them that write run
/// as one engine transaction, committed once, holding the stripes of all their keys: a
/// pipeline of writes costs one commit, not one per command, and is atomic besides. A single
/// request, or a batch that only reads, runs as usual.
pub(crate) fn run_batch(shared: &Shared, client: &mut Client, batch: &[Request]) -> Vec<Reply> {
    let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    shared
        .stats
        .commands_processed
        .fetch_add(count, Ordering::Relaxed);
    if batch.len() < 2 || !batch.iter().any(|request| request.spec.writes()) {
        return batch
            .iter()
            .map(|request| run_checked(shared, client, request.spec, &request.args))
            .collect();
    }
    let keys = {
        let ctx = Ctx {
            shared,
            client: &mut *client,
            store: Store::Db,
        };
        transactions::keys_to_lock(&ctx, batch)
    };
    let _locks = match keys {
        Some(keys) => shared.stripes.lock(&keys),
        None => shared.stripes.lock_all(),
    };
    match transactions::run_block(shared, client, batch) {
        Ok(replies) => replies,
        Err(error) => vec![error; batch.len()],
    }
}

/// Releases what a closing connection holds in shared state (its watches and
/// subscriptions).
pub(crate) fn release(shared: &Shared, client: &mut Client) {
    transactions::unwatch_all(shared, client);
    pubsub::release(shared, client);
}

/// Whether a request walks a whole database (`KEYS`, `FLUSHDB`, `FLUSHALL`, `DBSIZE`, `INFO`),
/// so the connection runs it off the runtime's worker thread.
pub(crate) fn runs_long(args: &[Bytes]) -> bool {
    args.first()
        .and_then(|name| lookup(name))
        .is_some_and(|spec| {
            matches!(
                spec.name,
                "keys" | "flushdb" | "flushall" | "dbsize" | "info"
            )
        })
}

//! Keyspace notifications (`notify-keyspace-events`), as Redis sends them: a command that
//! changes a key publishes `__keyspace@<db>__:<key>` with the event's name and
//! `__keyevent@<db>__:<event>` with the key, each when its class is switched on.
//!
//! - The classes and their letters are Redis's (`K`, `E`, `g`, `$`, `l`, `s`, `h`, `z`, `t`,
//!   `x`, `e`, `m`, `n`, `d`, `A`), set with `CONFIG SET notify-keyspace-events` and read back
//!   in Redis's canonical order. Off by default, as in Redis; then an event costs one atomic
//!   load.
//! - Which events a command makes follows from what it wrote: while notifications are on,
//!   `Ctx::apply` records each metadata record a command puts or deletes ([`Changes`]), and
//!   [`Events::record_command`] turns those into Redis's events for that command, in Redis's
//!   order (`lpop`, then `del` when the pop emptied the list; `rename_from`, then
//!   `rename_to`). A command that changed nothing sends nothing, as in Redis. The events are
//!   published once the command's commit is made (after the whole block for `EXEC` and
//!   pipelined batches), so a subscriber that reads the key on an event sees the change.
//! - Publishing goes through the pub/sub outboxes, which never block: a subscriber that does
//!   not read is cut off, never the writer.
//! - `new` (class `n`) is sent when a command puts a key where no live key was; while the
//!   class is on, `Ctx::apply` reads each metadata record it is about to put to know.
//! - Not sent: `expired` (the engine reaps expired records silently, so nothing tells the
//!   server when a key's deadline passed), `evicted` (nothing is evicted) and `keymiss`.
//!   Their letters are accepted.

use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

/// `g`: generic commands (`DEL`, `EXPIRE`, `RENAME`, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted-set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expiry events (accepted, not sent).
const EXPIRED: u32 = 1 << 8;
/// `e`: eviction events (accepted, never sent: nothing is evicted).
const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses (accepted, not sent).
const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (accepted; there are no modules).
const MODULE: u32 = 1 << 12;
/// `n`: new keys.
pub const NEW: u32 = 1 << 13;
/// `K`: publish on `__keyspace@<db>__:<key>`.
const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
const KEYEVENT: u32 = 1 << 1;
/// `A`: every class but `m` and `n`.
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The letters of the classes, in the order Redis prints them.
const CLASS_LETTERS: [(char, u32); 11] = [
    ('g', GENERIC),
    ('$', STRING),
    ('l', LIST),
    ('s', SET),
    ('h', HASH),
    ('z', ZSET),
    ('x', EXPIRED),
    ('e', EVICTED),
    ('t', STREAM),
    ('d', MODULE),
    ('n', NEW),
];

/// Parses a `notify-keyspace-events` value; `None` for a letter Redis does not know.
pub fn parse_flags(text: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &byte in text {
        flags |= match byte {
            b'A' => ALL,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b'm' => KEY_MISS,
            other => {
                CLASS_LETTERS
                    .iter()
                    .find(|(letter, _)| u32::from(other) == u32::from(*letter))?
                    .1
            }
        };
    }
    Some(flags)
}

/// The canonical text of `flags`, as `CONFIG GET` shows it.
pub fn format_flags(flags: u32) -> String {
    let mut text = String::new();
    if flags & ALL == ALL {
        text.push('A');
    } else {
        for (letter, class) in CLASS_LETTERS {
            if flags & class != 0 {
                text.push(letter);
            }
        }
    }
    for (letter, flag) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
        if flags & flag != 0 {
            text.push(letter);
        }
    }
    text
}

/// The server's setting: which events are published.
#[derive(Debug, Default)]
pub(crate) struct Setting {
    flags: AtomicU32,
}

impl Setting {
    pub(crate) fn get(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }
}

/// What one command wrote, while notifications are on: each metadata record it put or
/// deleted (database, user key, deleted), whether it put or deleted any other record, the
/// streams it created a consumer on, the keys it added (while `n` is on), and whether its
/// writes make no event of their own.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    keys: Vec<(u8, Bytes, bool)>,
    other_deletes: bool,
    other_writes: bool,
    consumers_created: Vec<(u8, Bytes)>,
    new_keys: Vec<(u8, Bytes)>,
    /// The command's writes make no event of their own (a `new` still goes out).
    quiet: bool,
}

impl Changes {
    /// Marks the command's writes as making no event of their own: a `BITFIELD` whose every
    /// operation failed keeps the string it created or grew, and Redis sends nothing for it
    /// but `new`.
    pub(crate) fn quiet(&mut self) {
        self.quiet = true;
    }

    /// Records that the command is about to put `engine_key`, a metadata record, where no
    /// live key was (`new`, sent before the command's own events, as Redis sends it when
    /// the key is added). Noted only while the `n` class is on: it takes a read.
    pub(crate) fn note_new(&mut self, engine_key: &[u8]) {
        if let [db, b'k', key @ ..] = engine_key {
            // A key a command writes twice is new once.
            if !self
                .new_keys
                .iter()
                .any(|(seen_db, seen)| seen_db == db && seen == key)
            {
                self.new_keys.push((*db, Bytes::copy_from_slice(key)));
            }
        }
    }

    /// Records that the command created a consumer in a group of stream `key` of database
    /// `db` (`xgroup-createconsumer`, sent before the command's own events, as Redis sends
    /// it when the consumer appears).
    pub(crate) fn note_consumer_created(&mut self, db: u8, key: &[u8]) {
        self.consumers_created
            .push((db, Bytes::copy_from_slice(key)));
    }

    /// Records a put (`deleted` false) or delete of `engine_key`.
    pub(crate) fn note(&mut self, engine_key: &[u8], deleted: bool) {
        match engine_key {
            [db, b'k', key @ ..] => self.keys.push((*db, Bytes::copy_from_slice(key), deleted)),
            _ if deleted => self.other_deletes = true,
            _ => self.other_writes = true,
        }
    }
}

/// The class and name of the event a command makes on a key it writes, as Redis names it;
/// `None` for a command that makes none.
fn command_event(name: &str, args: &[Bytes]) -> Option<(u32, &'static str)> {
    let has = |option: &str| {
        args.iter()
            .skip(2)
            .any(|arg| arg.eq_ignore_ascii_case(option.as_bytes()))
    };
    Some(match name {
        "set" | "setnx" | "setex" | "psetex" | "getset" | "mset" | "msetnx" | "bitop" => {
            (STRING, "set")
        }
        "append" => (STRING, "append"),
        "setrange" => (STRING, "setrange"),
        "setbit" | "bitfield" => (STRING, "setbit"),
        "incr" | "decr" | "incrby" | "decrby" => (STRING, "incrby"),
        "incrbyfloat" => (STRING, "incrbyfloat"),
        "del" | "unlink" | "getdel" => (GENERIC, "del"),
        "persist" => (GENERIC, "persist"),
        "getex" if has("persist") => (GENERIC, "persist"),
        "expire" | "pexpire" | "expireat" | "pexpireat" | "getex" => (GENERIC, "expire"),
        "rename" | "renamenx" => (GENERIC, "rename_to"),
        "copy" => (GENERIC, "copy_to"),
        "move" => (GENERIC, "move_to"),
        "hset" | "hmset" | "hsetnx" => (HASH, "hset"),
        "hdel" => (HASH, "hdel"),
        "hincrby" => (HASH, "hincrby"),
        "hincrbyfloat" => (HASH, "hincrbyfloat"),
        // A move's events are chosen by `move_events`; this marks it as making some.
        "lpush" | "lpushx" | "lmove" | "blmove" | "rpoplpush" | "brpoplpush" => (LIST, "lpush"),
        "rpush" | "rpushx" => (LIST, "rpush"),
        "lpop" | "blpop" => (LIST, "lpop"),
        "rpop" | "brpop" => (LIST, "rpop"),
        "lset" => (LIST, "lset"),
        "ltrim" => (LIST, "ltrim"),
        "lrem" => (LIST, "lrem"),
        "linsert" => (LIST, "linsert"),
        "sadd" => (SET, "sadd"),
        // SMOVE's events are chosen in `record_command`; this marks it as making some.
        "srem" | "smove" => (SET, "srem"),
        "spop" => (SET, "spop"),
        "sinterstore" => (SET, "sinterstore"),
        "sunionstore" => (SET, "sunionstore"),
        "sdiffstore" => (SET, "sdiffstore"),
        "zadd" if has("incr") => (ZSET, "zincr"),
        "zadd" => (ZSET, "zadd"),
        "zincrby" => (ZSET, "zincr"),
        "zrem" => (ZSET, "zrem"),
        "zpopmin" | "bzpopmin" => (ZSET, "zpopmin"),
        "zpopmax" | "bzpopmax" => (ZSET, "zpopmax"),
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => return mpop_event(name, args),
        "zremrangebyscore" => (ZSET, "zremrangebyscore"),
        "zremrangebyrank" => (ZSET, "zremrangebyrank"),
        "zremrangebylex" => (ZSET, "zremrangebylex"),
        "zrangestore" => (ZSET, "zrangestore"),
        "zunionstore" => (ZSET, "zunionstore"),
        "zinterstore" => (ZSET, "zinterstore"),
        "zdiffstore" => (ZSET, "zdiffstore"),
        "xadd" => (STREAM, "xadd"),
        "xtrim" => (STREAM, "xtrim"),
        "xdel" => (STREAM, "xdel"),
        "xsetid" => (STREAM, "xsetid"),
        "xgroup" => (STREAM, xgroup_event(args.get(1)?)?),
        _ => return None,
    })
}

/// The event of a multi-key pop (`LMPOP`, `ZMPOP` and their blocking forms), by the end its
/// arguments name after the keys.
fn mpop_event(name: &str, args: &[Bytes]) -> Option<(u32, &'static str)> {
    let numkeys_at = if name.starts_with('b') { 2 } else { 1 };
    let numkeys: usize = std::str::from_utf8(args.get(numkeys_at)?)
        .ok()?
        .parse()
        .ok()?;
    let end = args.get(numkeys_at.checked_add(numkeys)?.checked_add(1)?)?;
    let first = |word: &[u8]| end.eq_ignore_ascii_case(word);
    Some(if name.ends_with("lmpop") {
        (LIST, if first(b"left") { "lpop" } else { "rpop" })
    } else {
        (ZSET, if first(b"min") { "zpopmin" } else { "zpopmax" })
    })
}

fn xgroup_event(subcommand: &[u8]) -> Option<&'static str> {
    let lower = subcommand.to_ascii_lowercase();
    Some(match lower.as_slice() {
        b"create" => "xgroup-create",
        b"setid" => "xgroup-setid",
        b"destroy" => "xgroup-destroy",
        b"createconsumer" => "xgroup-createconsumer",
        b"delconsumer" => "xgroup-delconsumer",
        _ => return None,
    })
}

/// The pop and push events of a list move (`LMOVE` and its kin), by the ends it names.
fn move_events(name: &str, args: &[Bytes]) -> Option<(&'static str, &'static str)> {
    let left = |index: usize| {
        args.get(index)
            .is_some_and(|end| end.eq_ignore_ascii_case(b"left"))
    };
    match name {
        "rpoplpush" | "brpoplpush" => Some(("rpop", "lpush")),
        "lmove" | "blmove" => Some((
            if left(3) { "lpop" } else { "rpop" },
            if left(4) { "lpush" } else { "rpush" },
        )),
        _ => None,
    }
}

/// Whether `name` sets an expiry along with a value (`SET ... EX`, `SETEX`): Redis sends
/// `expire` after `set`.
fn sets_expiry(name: &str, args: &[Bytes]) -> bool {
    match name {
        "setex" | "psetex" => true,
        "set" => args.iter().skip(3).any(|arg| {
            ["ex", "px", "exat", "pxat"]
                .iter()
                .any(|option| arg.eq_ignore_ascii_case(option.as_bytes()))
        }),
        _ => false,
    }
}

/// One recorded event.
#[derive(Debug)]
struct Event {
    class: u32,
    name: &'static str,
    db: u8,
    key: Bytes,
}

/// A client's events not yet published: those of its running command or block.
#[derive(Debug, Default)]
pub(crate) struct Events {
    pending: Vec<Event>,
}

impl Events {
    /// Records event `name` of `class` on `key` of database `db`.
    pub(crate) fn record(&mut self, class: u32, name: &'static str, db: u8, key: &[u8]) {
        self.pending.push(Event {
            class,
            name,
            db,
            key: Bytes::copy_from_slice(key),
        });
    }

    /// Records the events of command `name` (lower case) with `args`, from what it wrote.
    /// `db` is the client's database, for a command that wrote no metadata record.
    pub(crate) fn record_command(
        &mut self,
        name: &str,
        args: &[Bytes],
        mut changes: Changes,
        db: u8,
    ) {
        let mut new_keys = std::mem::take(&mut changes.new_keys);
        for (db, key) in std::mem::take(&mut changes.consumers_created) {
            self.record(STREAM, "xgroup-createconsumer", db, &key);
        }
        // Redis deletes the target of these and adds it again: it is new even when it
        // replaced a key, and its `new` comes before every other event of the command.
        let adds_target = matches!(name, "rename" | "renamenx" | "move" | "copy");
        if adds_target {
            for (db, key, deleted) in &changes.keys {
                if !deleted && !new_keys.iter().any(|(d, k)| d == db && k == key) {
                    new_keys.push((*db, key.clone()));
                }
            }
        }
        let start = self.pending.len();
        if !changes.quiet {
            self.record_changes(name, args, changes, db);
        }
        if adds_target {
            let tail = self.pending.split_off(start.min(self.pending.len()));
            for (db, key) in new_keys {
                self.record(NEW, "new", db, &key);
            }
            self.pending.extend(tail);
        } else if !new_keys.is_empty() {
            self.place_new(start, new_keys);
        }
    }

    /// Puts a `new` event for each of `new_keys` just before the first event on that key
    /// from `start` on, as Redis sends it when it adds the key, before the command's event on
    /// it; a key with no such event gets its `new` at `start`.
    fn place_new(&mut self, start: usize, mut new_keys: Vec<(u8, Bytes)>) {
        let tail = self.pending.split_off(start.min(self.pending.len()));
        let new_event = |(db, key): (u8, Bytes)| Event {
            class: NEW,
            name: "new",
            db,
            key,
        };
        let mut placed = Vec::with_capacity(tail.len() + new_keys.len());
        for event in tail {
            if let Some(at) = new_keys
                .iter()
                .position(|(db, key)| *db == event.db && *key == event.key)
            {
                placed.push(new_event(new_keys.remove(at)));
            }
            placed.push(event);
        }
        self.pending.extend(new_keys.into_iter().map(new_event));
        self.pending.extend(placed);
    }

    /// The command's own events, from what it wrote.
    fn record_changes(&mut self, name: &str, args: &[Bytes], changes: Changes, db: u8) {
        let Some((class, event)) = command_event(name, args) else {
            return;
        };
        if let Some((pop, push)) = move_events(name, args) {
            // Redis's order: the push onto the destination, the pop from the source, then
            // the source's `del` when the move emptied it. Nothing moved, nothing sent.
            let (Some(source), Some(destination)) = (args.get(1), args.get(2)) else {
                return;
            };
            let Some(&(db, ..)) = changes.keys.first() else {
                return;
            };
            self.record(LIST, push, db, destination);
            self.record(LIST, pop, db, source);
            if changes
                .keys
                .iter()
                .any(|(_, key, deleted)| *deleted && key == source)
            {
                self.record(GENERIC, "del", db, source);
            }
            return;
        }
        if name == "smove" {
            // Redis's order: `srem` on the source, its `del` when the move emptied it, then
            // `sadd` on the destination only when the member was not there already.
            let (Some(source), Some(destination)) = (args.get(1), args.get(2)) else {
                return;
            };
            let Some(&(db, ..)) = changes.keys.first() else {
                return;
            };
            self.record(SET, "srem", db, source);
            let change = |wanted: &[u8]| {
                changes
                    .keys
                    .iter()
                    .find(|(_, key, _)| key == wanted)
                    .map(|(_, _, deleted)| *deleted)
            };
            if change(source) == Some(true) {
                self.record(GENERIC, "del", db, source);
            }
            if change(destination) == Some(false) {
                self.record(SET, "sadd", db, destination);
            }
            return;
        }
        if matches!(name, "rename" | "renamenx" | "move") {
            // The source's delete and the target's put, in Redis's order.
            let mut keys = changes.keys;
            keys.sort_by_key(|(_, _, deleted)| !deleted);
            let (from, to) = if name == "move" {
                ("move_from", "move_to")
            } else {
                ("rename_from", "rename_to")
            };
            for (db, key, deleted) in keys {
                self.record(GENERIC, if deleted { from } else { to }, db, &key);
            }
            return;
        }
        let touched_only_records =
            changes.keys.is_empty() && (changes.other_writes || changes.other_deletes);
        if touched_only_records && name == "xgroup" {
            if let Some(key) = args.get(2) {
                self.record(class, event, db, key);
            }
        }
        for (db, key, deleted) in changes.keys {
            match (deleted, event) {
                // A `STORE` form with an empty result deletes its destination: only `del`.
                (
                    true,
                    "del" | "expire" | "persist" | "sinterstore" | "sunionstore" | "sdiffstore"
                    | "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore",
                ) => {
                    self.record(GENERIC, "del", db, &key);
                }
                // So does a `BITOP` whose sources are all empty.
                (true, _) if name == "bitop" => self.record(GENERIC, "del", db, &key),
                (true, _) => {
                    self.record(class, event, db, &key);
                    self.record(GENERIC, "del", db, &key);
                }
                (false, _) => {
                    self.record(class, event, db, &key);
                    if sets_expiry(name, args) {
                        self.record(GENERIC, "expire", db, &key);
                    }
                    if name == "xadd" && changes.other_deletes {
                        self.record(STREAM, "xtrim", db, &key);
                    }
                }
            }
        }
    }

    /// Publishes every recorded event the setting wants, in order, and forgets them all.
    pub(crate) fn publish(&mut self, setting: &Setting, pubsub: &crate::pubsub::PubSub) {
        if self.pending.is_empty() {
            return;
        }
        let flags = setting.get();
        for event in self.pending.drain(..) {
            if flags & event.class == 0 {
                continue;
            }
            if flags & KEYSPACE != 0 {
                let mut channel = format!("__keyspace@{}__:", event.db).into_bytes();
                channel.extend_from_slice(&event.key);
                pubsub.publish(
                    &Bytes::from(channel),
                    &Bytes::from_static(event.name.as_bytes()),
                );
            }
            if flags & KEYEVENT != 0 {
                let channel = format!("__keyevent@{}__:{}", event.db, event.name);
                pubsub.publish(&Bytes::from(channel), &event.key);
            }
        }
    }

    /// Forgets the recorded events (a block that did not commit).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_and_print_as_redis_does() {
        for (given, shown) in [
            ("KEA", "AKE"),
            ("Kgz", "gzK"),
            ("", ""),
            ("AKEnm", "AKEm"),
            ("E$lt", "$ltE"),
            ("gg", "g"),
        ] {
            let flags = parse_flags(given.as_bytes()).expect("valid");
            assert_eq!(format_flags(flags), shown, "{given}");
        }
        assert_eq!(parse_flags(b"Kq"), None);
        assert_eq!(parse_flags(b"a"), None);
    }
}

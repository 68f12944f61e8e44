//! `CONFIG GET`, `CONFIG SET` and `CONFIG RESETSTAT`.
//!
//! Most settings are the command line's and only read here. Three kinds change while the
//! server runs:
//! - `notify-keyspace-events` (`notify`);
//! - Redis's encoding thresholds (`hash-max-listpack-entries` and the others of
//!   [`LAYOUT_HINTS`], with their older `ziplist` names). Redis uses them to choose a compact
//!   or a general layout per key. Cairn has one layout per type (docs/design.md §15), so they
//!   are accepted, checked as Redis checks them, remembered for `CONFIG GET`, and change
//!   nothing else; clients and test suites that tune them keep working.
//! - `save`, only to `""`: Cairn takes no RDB snapshots, so "no snapshot points" is already
//!   true. Its durability is `--durability`'s.
//!
//! A `CONFIG SET` of several settings checks them all before it changes any, as Redis does.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::strings::at;
use super::{is, Ctx};
use crate::resp::{Reply, OK};
use crate::state::Mode;

/// An encoding threshold: its name, its older name, Redis's default, and whether it may be
/// negative (`list-max-listpack-size` counts kilobytes as -1 to -5).
struct Hint {
    name: &'static str,
    alias: Option<&'static str>,
    default: i64,
    signed: bool,
}

/// Redis 7.0's encoding thresholds and their defaults.
const LAYOUT_HINTS: &[Hint] = &[
    hint(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        128,
    ),
    hint(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        64,
    ),
    Hint {
        signed: true,
        ..hint("list-max-listpack-size", Some("list-max-ziplist-size"), -2)
    },
    hint("list-compress-depth", None, 0),
    hint("set-max-intset-entries", None, 512),
    hint(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        128,
    ),
    hint(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        64,
    ),
    hint("stream-node-max-bytes", None, 4096),
    hint("stream-node-max-entries", None, 100),
];

const fn hint(name: &'static str, alias: Option<&'static str>, default: i64) -> Hint {
    Hint {
        name,
        alias,
        default,
        signed: false,
    }
}

/// The encoding thresholds clients set: remembered, never read by the keyspace.
#[derive(Debug, Default)]
pub(crate) struct LayoutHints {
    set: Mutex<HashMap<&'static str, i64>>,
}

impl LayoutHints {
    fn get(&self, hint: &Hint) -> i64 {
        self.set
            .lock()
            .get(hint.name)
            .copied()
            .unwrap_or(hint.default)
    }
}

/// Finds the threshold `name` (either of its names, any case).
fn find_hint(name: &[u8]) -> Option<&'static Hint> {
    LAYOUT_HINTS
        .iter()
        .find(|hint| is(name, hint.name) || hint.alias.is_some_and(|alias| is(name, alias)))
}

pub(crate) fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = at(args, 1);
    if is(sub, "resetstat") && args.len() == 2 {
        ctx.shared.stats.reset();
        return OK;
    }
    if is(sub, "set") {
        return config_set(ctx, args);
    }
    if !is(sub, "get") || args.len() < 3 {
        return Reply::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    let mut pairs = Vec::new();
    for (name, value) in settings(ctx) {
        let wanted = args
            .iter()
            .skip(2)
            .any(|pattern| crate::glob::matches(&pattern.to_ascii_lowercase(), name.as_bytes()));
        if wanted {
            pairs.push((Reply::bulk(name), Reply::bulk(value)));
        }
    }
    Reply::Map(pairs)
}

/// Every setting `CONFIG GET` reports, with its value now.
fn settings(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let config = &ctx.shared.config;
    let timeout = config.timeout.map_or(0, |timeout| timeout.as_secs());
    let yes_no = |flag: bool| if flag { "yes" } else { "no" }.to_owned();
    let mut settings = vec![
        ("bind", config.bind.ip().to_string()),
        ("port", config.bind.port().to_string()),
        ("databases", crate::keyspace::DATABASES.to_string()),
        ("maxclients", config.maxclients.to_string()),
        ("timeout", timeout.to_string()),
        ("protected-mode", yes_no(config.protected_mode)),
        ("proto-max-bulk-len", config.bulk_bytes_max.to_string()),
        ("appendonly", yes_no(config.mode != Mode::Memory)),
        (
            "appendfsync",
            match config.mode {
                Mode::Strict => "always",
                Mode::Buffered => "everysec",
                Mode::Memory => "no",
            }
            .to_owned(),
        ),
        ("save", String::new()),
        ("maxmemory", "0".to_owned()),
        (
            "notify-keyspace-events",
            crate::notify::format_flags(ctx.shared.notify.get()),
        ),
    ];
    for hint in LAYOUT_HINTS {
        let value = ctx.shared.layout_hints.get(hint).to_string();
        if let Some(alias) = hint.alias {
            settings.push((alias, value.clone()));
        }
        settings.push((hint.name, value));
    }
    settings
}

/// One checked change of a `CONFIG SET`.
enum Change {
    Notify(u32),
    Hint(&'static Hint, i64),
    /// `save ""`: already so.
    Nothing,
}

/// `CONFIG SET name value [name value ...]`: checks every pair, then applies them all.
fn config_set(ctx: &Ctx<'_>, args: &[Bytes]) -> Reply {
    let pairs = args.get(2..).unwrap_or_default();
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return super::wrong_arity("config|set");
    }
    let mut changes = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let (name, value) = (at(pair, 0), at(pair, 1));
        let change = match check(name, value) {
            Ok(change) => change,
            Err(reply) => return reply,
        };
        let canonical = match &change {
            Change::Notify(_) => "notify-keyspace-events",
            Change::Hint(hint, _) => hint.name,
            Change::Nothing => "save",
        };
        if seen.contains(&canonical) {
            return failed(name, "duplicate parameter");
        }
        seen.push(canonical);
        changes.push(change);
    }
    for change in changes {
        match change {
            Change::Notify(flags) => ctx.shared.notify.set(flags),
            Change::Hint(hint, value) => {
                ctx.shared.layout_hints.set.lock().insert(hint.name, value);
            }
            Change::Nothing => {}
        }
    }
    OK
}

/// Checks one `name value` pair of `CONFIG SET`.
fn check(name: &[u8], value: &[u8]) -> Result<Change, Reply> {
    if is(name, "notify-keyspace-events") {
        return crate::notify::parse_flags(value)
            .map(Change::Notify)
            .ok_or_else(|| {
                failed(
                    name,
                    "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
                )
            });
    }
    if is(name, "save") {
        return if value.iter().all(u8::is_ascii_whitespace) {
            Ok(Change::Nothing)
        } else {
            Err(failed(
                name,
                "Cairn takes no snapshots; its durability is set by --durability",
            ))
        };
    }
    let Some(hint) = find_hint(name) else {
        return Err(Reply::err(format!(
            "Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(name)
        )));
    };
    let parsed = std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse::<i64>().ok());
    match parsed {
        Some(parsed) if parsed >= 0 || hint.signed => Ok(Change::Hint(hint, parsed)),
        Some(_) => Err(failed(name, "argument must be greater or equal to 0")),
        None => Err(failed(name, "argument couldn't be parsed into an integer")),
    }
}

/// Redis's text for a refused `CONFIG SET` argument.
fn failed(name: &[u8], why: &str) -> Reply {
    Reply::err(format!(
        "CONFIG SET failed (possibly related to argument '{}') - {why}",
        String::from_utf8_lossy(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::{check, find_hint, Change, LAYOUT_HINTS};

    #[test]
    fn thresholds_are_found_by_either_name_and_checked() {
        assert_eq!(
            find_hint(b"HASH-MAX-ZIPLIST-ENTRIES").map(|hint| hint.name),
            Some("hash-max-listpack-entries")
        );
        assert!(find_hint(b"maxmemory").is_none());
        assert!(matches!(
            check(b"zset-max-ziplist-value", b"16"),
            Ok(Change::Hint(_, 16))
        ));
        assert!(check(b"zset-max-ziplist-value", b"-1").is_err());
        assert!(matches!(
            check(b"list-max-ziplist-size", b"-1"),
            Ok(Change::Hint(_, -1))
        ));
        assert!(check(b"set-max-intset-entries", b"many").is_err());
        assert!(matches!(check(b"save", b""), Ok(Change::Nothing)));
        assert!(check(b"save", b"900 1").is_err());
        assert!(check(b"maxmemory", b"1").is_err());
        assert_eq!(LAYOUT_HINTS.len(), 9);
    }
}

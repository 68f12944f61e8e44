//! Every bound the `KeyValueStore` trait enforces, the same for every backend.
//!
//! Input that breaks a limit is refused with a typed error naming the limit before anything
//! is written, so a program behaves the same on Cairn, `SQLite` and Redis.

/// Longest tenant or namespace name, in bytes (UTF-8).
pub const SCOPE_NAME_BYTES_MAX: usize = 64;

/// Longest key, in bytes. Scope names are stored beside the key, so this stays well inside
/// the engine's own 64 KiB key limit whatever the scope.
pub const KEY_BYTES_MAX: usize = 32 * 1024;

/// Largest value, in bytes: the engine's default, and far below Redis's and `SQLite`'s own.
pub const VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most keys in one `multi_get` or entries in one `multi_put`. One atomic `multi_put` is one
/// engine commit, one `SQLite` transaction or one Redis script; this keeps each bounded.
pub const MULTI_ENTRIES_MAX: usize = 10_000;

/// Most keys one `list_page` returns (its `limit` is 1 to this). A larger `limit` is refused
/// with `InvalidArgument`: page through a large scope instead.
pub const LIST_PAGE_KEYS_MAX: usize = 10_000;

/// Most keys one `clear_prefix` deletes; more is refused and deletes nothing (the engine's
/// per-commit limit).
pub const CLEAR_PREFIX_KEYS_MAX: usize = 1_000_000;

/// Shortest time to live, in milliseconds. A shorter non-zero duration is rounded up to it.
pub const TTL_MILLIS_MIN: u64 = 1;

/// Longest time to live, in milliseconds (about 100 years).
pub const TTL_MILLIS_MAX: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// Events a watcher buffers before it reports `KvEvent::Lagged` (backends that buffer on the
/// client side: `SQLite` and Redis; Cairn uses the engine's own bounded queue).
pub const WATCH_QUEUE_EVENTS: usize = 4_096;

//! Every limit the engine enforces, in one place, units last.
//!
//! A limit is a promise: input above it is refused with a typed error that names the limit,
//! and nothing is written. Queues and buffers are bounded by the limits here, and each one
//! states what happens when it is full.

/// Smallest key, in bytes. The empty key is refused: it cannot be told apart from "no key"
/// in several backends, and a prefix of every key would make `scan_prefix(b"")` ambiguous.
pub const KEY_BYTES_MIN: usize = 1;

/// Largest key, in bytes (64 KiB).
pub const KEY_BYTES_MAX: usize = 65_536;

/// Default largest value, in bytes (64 MiB). `Options::max_value_bytes` changes it.
pub const VALUE_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;

/// Hard ceiling for `Options::max_value_bytes` (1 GiB): a WAL frame's length field is a u32.
pub const VALUE_BYTES_MAX_CEILING: usize = 1024 * 1024 * 1024;

/// Most mutations in one atomic commit (batch, transaction or `clear_prefix`).
pub const COMMIT_MUTATIONS_MAX: usize = 1_000_000;

/// Default capacity of one watcher's queue, in events. When it is full the oldest undelivered
/// events are folded into one `WatchEvent::Lagged(n)` marker: a watcher never slows a writer.
pub const WATCH_QUEUE_EVENTS_DEFAULT: usize = 4_096;

/// How many keys one maintenance slice examines while holding the commit lock; the lock is
/// released between slices so that a large reap never stalls writers for long.
pub const MAINTENANCE_SLICE_KEYS: usize = 1_024;

/// How many entries a scan reads from the index per chunk. A chunk is read under one index
/// traversal; between chunks the scan re-seeks, so no iterator pins memory for long.
pub const SCAN_CHUNK_ENTRIES: usize = 128;

/// How many attempts `Db::transaction` makes before it returns the last `Conflict`.
pub const TRANSACTION_ATTEMPTS_MAX: u32 = 16;

/// Default WAL bytes written between automatic checkpoints (64 MiB).
pub const CHECKPOINT_WAL_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Smallest accepted `Options::checkpoint_wal_bytes` (1 MiB).
pub const CHECKPOINT_WAL_BYTES_MIN: u64 = 1024 * 1024;

/// Largest accepted `Options::checkpoint_wal_bytes` (64 GiB).
pub const CHECKPOINT_WAL_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Default preallocated size of one WAL segment file (64 MiB).
pub const WAL_SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Smallest accepted `Options::wal_segment_bytes` (4 KiB; tests use small segments to
/// exercise rotation).
pub const WAL_SEGMENT_BYTES_MIN: u64 = 4 * 1024;

/// Largest accepted `Options::wal_segment_bytes` (1 GiB).
pub const WAL_SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Most keys recovery sizes the point index for up front from a snapshot header's entry
/// count (1,048,576). The count is not trusted before the blocks verify, so a damaged header
/// (in a large sparse file, say) can cost at most this much presizing; a larger snapshot
/// grows the index as it loads.
pub const RECOVERY_PRESIZE_KEYS_MAX: usize = 1 << 20;

/// Most threads of the process-wide maintenance service (4), whatever the number of open
/// databases: they run every database's periodic maintenance pass and automatic checkpoint.
pub const MAINTENANCE_WORKERS_MAX: usize = 4;

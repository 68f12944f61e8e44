//! Every limit the engine enforces, in one place, units last.
//!
//! A limit is a promise: input above it is refused with a typed error that names the limit,
//! and nothing is written. Queues and buffers are bounded by the limits here, and each one
//! states what happens when it is full. Limits that depend on each other are tied together by
//! `const` assertions, so changing one without the other fails the build.

use std::time::Duration;

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

/// Largest commit, in bytes of its encoded WAL body (1.5 GiB): what one WAL frame holds with
/// room to spare (a frame's payload is at most 2 GiB). Counted as 4 bytes plus, per mutation,
/// its key and value and 17 bytes of framing (5 for a delete). A batch, transaction or
/// `clear_prefix` above it is refused with `Error::LimitExceeded` before the commit lock is
/// taken, and nothing is written. One put of the largest key and value always fits.
pub const COMMIT_BYTES_MAX: usize = 1536 * 1024 * 1024;

// A commit at the limit fits one WAL frame, and one put of the largest key and value fits the
// limit (4 bytes of count, 17 of framing).
const _: () = assert!(
    COMMIT_BYTES_MAX + cairn_log::RECORD_PREFIX_BYTES <= cairn_log::FRAME_PAYLOAD_BYTES_MAX
);
const _: () = assert!(4 + 17 + KEY_BYTES_MAX + VALUE_BYTES_MAX_CEILING <= COMMIT_BYTES_MAX);
const _: () = assert!(KEY_BYTES_MIN <= KEY_BYTES_MAX);
const _: () = assert!(VALUE_BYTES_MAX_DEFAULT <= VALUE_BYTES_MAX_CEILING);

/// Largest block a snapshot reader accepts, in bytes of entries (1 GiB + 128 KiB): one entry
/// of the largest key and value plus its 24-byte header, with room to spare. The reader
/// refuses a larger length before allocating anything for it.
pub const SNAPSHOT_BLOCK_BYTES_MAX: usize = VALUE_BYTES_MAX_CEILING + 128 * 1024;

// One entry of the largest key and value fits in one snapshot block, and a block's length fits
// its u32 field.
const _: () = assert!(24 + KEY_BYTES_MAX + VALUE_BYTES_MAX_CEILING <= SNAPSHOT_BLOCK_BYTES_MAX);
const _: () = assert!(SNAPSHOT_BLOCK_BYTES_MAX <= u32::MAX as usize);

/// Default capacity of one watcher's queue, in events. When it is full the oldest undelivered
/// events are folded into one `WatchEvent::Lagged(n)` marker: a watcher never slows a writer.
pub const WATCH_QUEUE_EVENTS_DEFAULT: usize = 4_096;

/// Largest accepted `Options::watch_queue_events` (1,048,576 events).
pub const WATCH_QUEUE_EVENTS_MAX: usize = 1 << 20;

const _: () = assert!(0 < WATCH_QUEUE_EVENTS_DEFAULT);
const _: () = assert!(WATCH_QUEUE_EVENTS_DEFAULT <= WATCH_QUEUE_EVENTS_MAX);

/// Default interval of `Durability::Buffered`'s background flush (10 ms).
pub const BUFFERED_FLUSH_INTERVAL_DEFAULT: Duration = Duration::from_millis(10);

/// Longest accepted `Durability::Buffered` flush interval (60 s); the shortest is anything
/// above zero.
pub const BUFFERED_FLUSH_INTERVAL_MAX: Duration = Duration::from_secs(60);

const _: () = assert!(!BUFFERED_FLUSH_INTERVAL_DEFAULT.is_zero());
const _: () =
    assert!(BUFFERED_FLUSH_INTERVAL_DEFAULT.as_nanos() <= BUFFERED_FLUSH_INTERVAL_MAX.as_nanos());

/// Default bytes `Durability::Buffered` buffers before it flushes early (4 MiB); writers wait
/// (backpressure) at twice this.
pub const BUFFERED_BUFFER_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// Smallest accepted `Durability::Buffered` `buffer_bytes_max` (4 KiB).
pub const BUFFERED_BUFFER_BYTES_MIN: usize = 4 * 1024;

/// Largest accepted `Durability::Buffered` `buffer_bytes_max` (1 GiB).
pub const BUFFERED_BUFFER_BYTES_MAX: usize = 1 << 30;

const _: () = assert!(BUFFERED_BUFFER_BYTES_MIN <= BUFFERED_BUFFER_BYTES_DEFAULT);
const _: () = assert!(BUFFERED_BUFFER_BYTES_DEFAULT <= BUFFERED_BUFFER_BYTES_MAX);

/// Default interval of the background maintenance pass (100 ms); `Duration::ZERO` turns the
/// pass (and automatic checkpoints) off.
pub const MAINTENANCE_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);

/// Most watch events held back in `Strict` mode, where a commit's events wait until its WAL
/// frame is durable. Beyond it the newest held events are folded into one lag marker that
/// every watcher receives as `WatchEvent::Lagged`: a commit never waits for watchers.
pub const WATCH_HELD_EVENTS_MAX: usize = 65_536;

/// How many keys one maintenance slice examines while holding the commit lock; the lock is
/// released between slices so that a large reap never stalls writers for long.
pub const MAINTENANCE_SLICE_KEYS: usize = 1_024;

/// How many entries a scan reads from the index per chunk. A chunk is read under one index
/// traversal; between chunks the scan re-seeks, so no iterator pins memory for long.
pub const SCAN_CHUNK_ENTRIES: usize = 128;

/// Most keys a `Serializable` transaction may read (its read set, validated at commit). A
/// read beyond it fails with `Error::LimitExceeded`; a transaction that needs more should
/// read at a coarser grain (a range) or run at `Snapshot` isolation.
pub const TRANSACTION_READ_KEYS_MAX: usize = 1_000_000;

/// Most ranges (scans) a `Serializable` transaction may read (its range set, each re-read at
/// commit). A scan beyond it fails with `Error::LimitExceeded`.
pub const TRANSACTION_READ_RANGES_MAX: usize = 10_000;

/// How many attempts `Db::transaction` makes before it returns the last `Conflict`.
pub const TRANSACTION_ATTEMPTS_MAX: u32 = 16;

/// Default WAL bytes written between automatic checkpoints (64 MiB).
pub const CHECKPOINT_WAL_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Smallest accepted `Options::checkpoint_wal_bytes` (1 MiB).
pub const CHECKPOINT_WAL_BYTES_MIN: u64 = 1024 * 1024;

/// Largest accepted `Options::checkpoint_wal_bytes` (64 GiB).
pub const CHECKPOINT_WAL_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

const _: () = assert!(CHECKPOINT_WAL_BYTES_MIN <= CHECKPOINT_WAL_BYTES_DEFAULT);
const _: () = assert!(CHECKPOINT_WAL_BYTES_DEFAULT <= CHECKPOINT_WAL_BYTES_MAX);

/// Default preallocated size of one WAL segment file (64 MiB).
pub const WAL_SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// Smallest accepted `Options::wal_segment_bytes` (4 KiB; tests use small segments to
/// exercise rotation).
pub const WAL_SEGMENT_BYTES_MIN: u64 = 4 * 1024;

/// Largest accepted `Options::wal_segment_bytes` (1 GiB).
pub const WAL_SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Default `Options::wal_recycle_segments`: 2 retired WAL segments kept for reuse. A
/// checkpoint retires about one segment per `checkpoint_wal_bytes` of WAL, so two keep a
/// rotation supplied between checkpoints.
pub const WAL_RECYCLE_SEGMENTS_DEFAULT: usize = 2;

/// Largest accepted `Options::wal_recycle_segments` (the log's own ceiling).
pub const WAL_RECYCLE_SEGMENTS_MAX: usize = cairn_log::RECYCLE_SEGMENTS_MAX;

const _: () = assert!(WAL_RECYCLE_SEGMENTS_DEFAULT <= WAL_RECYCLE_SEGMENTS_MAX);

const _: () = assert!(WAL_SEGMENT_BYTES_MIN <= WAL_SEGMENT_BYTES_DEFAULT);
const _: () = assert!(WAL_SEGMENT_BYTES_DEFAULT <= WAL_SEGMENT_BYTES_MAX);

/// Most keys recovery sizes the point index for up front from a snapshot header's entry
/// count (1,048,576). The count is not trusted before the blocks verify, so a damaged header
/// (in a large sparse file, say) can cost at most this much presizing; a larger snapshot
/// grows the index as it loads.
pub const RECOVERY_PRESIZE_KEYS_MAX: usize = 1 << 20;

/// Most threads of the process-wide maintenance service (4), whatever the number of open
/// databases: they run every database's periodic maintenance pass and automatic checkpoint.
pub const MAINTENANCE_WORKERS_MAX: usize = 4;

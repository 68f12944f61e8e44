//! The sizes every driver uses: value lengths, fixture sizes, per-thread operation counts.
//!
//! One place, so that a criterion figure and a `cairn bench` figure describe the same workload.

/// Value length of most workloads, in bytes.
pub const VALUE_BYTES: usize = 100;
/// Value length of the large-value variants, in bytes.
pub const LARGE_VALUE_BYTES: usize = 10 * 1024;
/// Keys in the fixture of the single-key, transaction and snapshot workloads.
pub const FIXTURE_KEYS: usize = 10_000;
/// Keys in the fixture of the concurrent workloads.
pub const CONCURRENT_FIXTURE_KEYS: usize = 100_000;
/// Keys in the largest database, shared by `key_patterns` and `get_at_scale`.
pub const LARGEST_KEYS: usize = 1_000_000;

/// Entries in the recovery workloads' databases: the WAL of `wal_replay`, the database of
/// `snapshot_creation`, the snapshot of `snapshot_load` and `snapshot_wal_recovery` (the published
/// "1M").
pub const RECOVERY_ENTRIES: usize = 1_000_000;
/// [`RECOVERY_ENTRIES`] in quick mode.
pub const RECOVERY_ENTRIES_QUICK: usize = 100_000;
/// WAL records after the snapshot in `snapshot_wal_recovery`.
pub const RECOVERY_WAL_RECORDS: usize = 100_000;
/// [`RECOVERY_WAL_RECORDS`] in quick mode.
pub const RECOVERY_WAL_RECORDS_QUICK: usize = 10_000;
/// Intact WAL records before the torn frame of `wal_truncation`: few, so that the figure is
/// mostly the repair (and the open around it), not the replay.
pub const TORN_TAIL_ENTRIES: usize = 1_000;
/// Writer threads of the Strict group-commit workload.
pub const GROUP_COMMIT_WRITERS: [usize; 4] = [1, 4, 16, 64];
/// Strict puts each writer makes in one run of the group-commit workload: a run of 64 writers
/// is about a second at the targeted 10K commits/s.
pub const GROUP_COMMITS_PER_WRITER: u64 = 256;
/// [`GROUP_COMMITS_PER_WRITER`] in quick mode.
pub const GROUP_COMMITS_PER_WRITER_QUICK: u64 = 64;

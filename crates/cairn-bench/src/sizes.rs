//! The sizes every driver uses.

/// Value length of most workloads, in bytes.
pub const VALUE_BYTES: usize = 100;
/// Value length of the large-value variants, in bytes.
pub const LARGE_VALUE_BYTES: usize = 10 * 1024;
/// Keys in the fixture of the single-key, transaction and snapshot workloads.
pub const FIXTURE_KEYS: usize = 10_000;
/// Entries in the recovery workloads' databases (the published "1M").
pub const RECOVERY_ENTRIES: usize = 1_000_000;
/// [`RECOVERY_ENTRIES`] in quick mode.
pub const RECOVERY_ENTRIES_QUICK: usize = 100_000;
/// WAL records after the snapshot in `snapshot_wal_recovery`.
pub const RECOVERY_WAL_RECORDS: usize = 100_000;
/// [`RECOVERY_WAL_RECORDS`] in quick mode.
pub const RECOVERY_WAL_RECORDS_QUICK: usize = 10_000;
/// Intact WAL records before the torn frame: few, so the figure is mostly the repair.
pub const TORN_TAIL_ENTRIES: usize = 1_000;
/// Writer threads of the Strict group-commit workload.
pub const GROUP_COMMIT_WRITERS: [usize; 4] = [1, 4, 16, 64];

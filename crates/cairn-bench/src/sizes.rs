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

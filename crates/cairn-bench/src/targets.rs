//! Targets and goals: the bounds a measured figure is checked against, and where each
//! comes from.
//!
//! A row may carry a *target* (it passes when it meets it) and a *goal* (reported, never
//! failed on). Most targets are figures that earlier systems Cairn replaces published for the
//! same workload ([`Source`] names which); goals are the project's own. A [`Limit`] is one
//! bound with the text the table shows and its source; the numbers live here, in one place.
//!
//! Where an earlier system published a target and a looser "acceptable" bound (snapshot write
//! and load, snapshot + WAL recovery, WAL truncation), the row passes on the acceptable bound,
//! which its text names after the target ("< 100 ms (500 ms ok)"), and the goal is the target
//! itself.
//!
//! [`crate::registry::gates`] lists the CI performance gate: a few ratios measured in the same run, with margins
//! generous enough for a noisy machine (no 2x regression in latency, no 50 % in throughput,
//! recovery within its bound).

/// Where a bound comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Published by the embedded database Cairn replaces (durability modes, KV, CAS,
    /// transactions, snapshots, WAL and recovery benchmarks).
    EmbeddedDatabase,
    /// Published by the async key-value library whose `KeyValueStore` trait Cairn keeps.
    KeyValueLibrary,
    /// Published by the benchmark report whose store had O(n) lookups (the scaling guard).
    ScalingReport,
    /// The project's own goal.
    Cairn,
    /// A target of the project's own: a guard against a regression it once had.
    Guard,
    /// The CI performance gate: a regression margin, not a claim.
    Gate,
}

impl Source {
    /// How the docs name it.
    pub fn describe(self) -> &'static str {
        match self {
            Source::EmbeddedDatabase => "published by the embedded database Cairn replaces",
            Source::KeyValueLibrary => "published by the key-value library Cairn replaces",
            Source::ScalingReport => "from the benchmark report whose store had O(n) lookups",
            Source::Cairn => "Cairn's own goal",
            Source::Guard => "Cairn's own: a guard against a regression it once had",
            Source::Gate => "CI regression gate",
        }
    }
}

/// Which side of a bound passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// Strictly below.
    Below(f64),
    /// Below or equal.
    AtMost(f64),
    /// Strictly above.
    Above(f64),
    /// Above or equal.
    AtLeast(f64),
}

/// A bound, how the report writes it, and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// The bound on the checked value.
    pub bound: Bound,
    /// Its text in the table and the JSON, e.g. `< 1 µs`.
    pub text: &'static str,
    /// Where it comes from.
    pub source: Source,
}

impl Limit {
    /// True when `value` is on the passing side.
    pub fn is_met_by(&self, value: f64) -> bool {
        match self.bound {
            Bound::Below(limit) => value < limit,
            Bound::AtMost(limit) => value <= limit,
            Bound::Above(limit) => value > limit,
            Bound::AtLeast(limit) => value >= limit,
        }
    }
}

const fn limit(bound: Bound, text: &'static str) -> Limit {
    from(Source::EmbeddedDatabase, bound, text)
}

const fn goal(bound: Bound, text: &'static str) -> Limit {
    from(Source::Cairn, bound, text)
}

/// A limit from `source`.
pub(crate) const fn from(source: Source, bound: Bound, text: &'static str) -> Limit {
    Limit {
        bound,
        text,
        source,
    }
}

// Latency bounds apply to p50, in nanoseconds.

/// get at 1M keys, target.
pub const GET_LARGEST: Limit = limit(Bound::Below(1_000.0), "< 1 µs");
/// get at 1M keys, goal.
pub const GET_LARGEST_GOAL: Limit = goal(Bound::AtMost(300.0), "<= 300 ns");
/// p50 at 1M keys over p50 at 1K keys, target.
pub const GET_SCALING: Limit = from(Source::ScalingReport, Bound::AtMost(2.0), "<= 2x");
/// The goal "flat from 1K to 1M keys", read as within 20 %.
pub const GET_SCALING_GOAL: Limit = goal(Bound::AtMost(1.2), "flat (<= 1.2x)");
/// put / delete / exists, target.
pub const POINT_OP: Limit = limit(Bound::Below(1_000.0), "< 1 µs");
/// put, goal.
pub const PUT_GOAL: Limit = goal(Bound::AtMost(500.0), "<= 500 ns");
/// `put_with_ttl`, target.
pub const PUT_WITH_TTL: Limit = limit(Bound::Below(2_000.0), "< 2 µs");
/// `put_with_ttl` p50 over put p50, goal.
pub const PUT_WITH_TTL_GOAL: Limit = goal(Bound::AtMost(1.1), "<= 1.1x put");
/// bulk put / get throughput, target.
pub const BULK: Limit = limit(Bound::Above(1_000_000.0), "> 1M ops/s");
/// bulk put / get throughput, goal.
pub const BULK_GOAL: Limit = goal(Bound::AtLeast(3_000_000.0), ">= 3M ops/s");
/// Read throughput at 2 threads over 1 thread, target ("linear", on 2 vCPUs).
pub const READ_SCALING: Limit = limit(Bound::AtLeast(1.7), ">= 1.7x");
/// Read throughput at 2 threads over 1 thread, goal.
pub const READ_SCALING_GOAL: Limit = goal(Bound::AtLeast(1.8), ">= 1.8x");
/// Mixed 80/20 throughput on 2 threads, target.
pub const MIXED: Limit = limit(Bound::Above(500_000.0), "> 500K ops/s");
/// Mixed 80/20 throughput on 2 threads, goal.
pub const MIXED_GOAL: Limit = goal(Bound::AtLeast(2_000_000.0), ">= 2M ops/s");
/// Prefix scan of 1000 keys, target.
pub const PREFIX_SCAN_1000: Limit = limit(Bound::Below(100_000.0), "< 100 µs");
/// Prefix scan of 1000 keys, goal.
pub const PREFIX_SCAN_1000_GOAL: Limit = goal(Bound::AtMost(30_000.0), "<= 30 µs");
/// CAS, target.
pub const CAS: Limit = limit(Bound::Below(5_000.0), "< 5 µs");
/// CAS, goal.
pub const CAS_GOAL: Limit = goal(Bound::AtMost(1_000.0), "<= 1 µs");
/// Versions one key retains after a million overwrites with no snapshot open: target and goal.
pub const VERSIONS_RETAINED: Limit = limit(Bound::AtMost(2.0), "<= 2");

// Durability. Latencies are p50, in nanoseconds.

/// Buffered put p50, target.
pub const BUFFERED_PUT: Limit = limit(Bound::Below(30_000.0), "< 30 µs");
/// Buffered put p50, goal.
pub const BUFFERED_PUT_GOAL: Limit = goal(Bound::AtMost(2_000.0), "<= 2 µs");
/// Buffered puts per second on one thread, target ("50K+ ops/s").
pub const BUFFERED_PUT_RATE: Limit = limit(Bound::AtLeast(50_000.0), ">= 50K ops/s");
/// Buffered puts per second on one thread, goal.
pub const BUFFERED_PUT_RATE_GOAL: Limit = goal(Bound::AtLeast(400_000.0), ">= 400K ops/s");
/// Strict put p50 over raw fdatasync p50 (both measured in the same run), target.
pub const STRICT_OVER_FDATASYNC: Limit = limit(Bound::AtMost(1.5), "<= 1.5x");
/// Strict put p50 over raw fdatasync p50, goal.
pub const STRICT_OVER_FDATASYNC_GOAL: Limit = goal(Bound::AtMost(1.2), "<= 1.2x");
/// Strict commits per second with 16 writers (group commit): target and goal.
pub const GROUP_COMMIT_16: Limit = limit(Bound::AtLeast(10_000.0), ">= 10K commits/s");

// Recovery, at 1M entries. Values are p50 wall times, in ns.

/// WAL replay of 1M entries: target and goal.
pub const WAL_REPLAY: Limit = limit(Bound::Below(300e6), "< 300 ms");
/// Snapshot write of 1M keys: passes on the published acceptable bound.
pub const SNAPSHOT_WRITE: Limit = limit(Bound::Below(500e6), "< 100 ms (500 ms ok)");
/// Snapshot write of 1M keys: the published target proper.
pub const SNAPSHOT_WRITE_GOAL: Limit = goal(Bound::Below(100e6), "< 100 ms");
/// Snapshot load of 1M keys: passes on the published acceptable bound.
pub const SNAPSHOT_LOAD: Limit = limit(Bound::Below(1e9), "< 200 ms (1 s ok)");
/// Snapshot load of 1M keys: the published target proper.
pub const SNAPSHOT_LOAD_GOAL: Limit = goal(Bound::Below(200e6), "< 200 ms");
/// Snapshot + WAL recovery: passes on the published acceptable bound.
pub const SNAPSHOT_WAL_RECOVERY: Limit = limit(Bound::Below(2e9), "< 500 ms (2 s ok)");
/// Snapshot + WAL recovery: the published target proper.
pub const SNAPSHOT_WAL_RECOVERY_GOAL: Limit = goal(Bound::Below(500e6), "< 500 ms");
/// Opening a WAL with a torn tail ("WAL truncation"): passes on the acceptable
/// bound.
pub const WAL_TRUNCATION: Limit = limit(Bound::Below(100e6), "< 10 ms (100 ms ok)");
/// Opening a WAL with a torn tail: the published target proper.
pub const WAL_TRUNCATION_GOAL: Limit = goal(Bound::Below(10e6), "< 10 ms");

// KeyValueStore backends, through the trait. Latencies are p50, in nanoseconds;
// ratios are the speed through the trait over the speed of the wrapped client, in the same
// run (the earlier "within 1.2x of raw" becomes "at least 1 / 1.2 of raw's speed").

/// Cairn `InMemory` get / put through the trait, target.
pub const KV_CAIRN_POINT: Limit = from(Source::KeyValueLibrary, Bound::Below(1_000.0), "< 1 µs");
/// `SQLite` get / put through the trait, target.
pub const KV_SQLITE_POINT: Limit =
    from(Source::KeyValueLibrary, Bound::Below(100_000.0), "< 100 µs");
/// `SQLite` bulk operations through the trait, target.
pub const KV_SQLITE_BULK: Limit = from(
    Source::KeyValueLibrary,
    Bound::Above(10_000.0),
    "> 10K ops/s",
);
/// `SQLite` through the trait: its speed over the `sqlite` peer's, goal (within 1.2x).
pub const KV_SQLITE_OVER_RAW_GOAL: Limit = goal(Bound::AtLeast(1.0 / 1.2), ">= 0.83x raw");
/// Redis get / put through the trait, target.
pub const KV_REDIS_POINT: Limit =
    from(Source::KeyValueLibrary, Bound::Below(1_000_000.0), "< 1 ms");
/// Redis through the trait: its speed over the `redis` peer's, goal (within 1.1x).
pub const KV_REDIS_OVER_RAW_GOAL: Limit = goal(Bound::AtLeast(1.0 / 1.1), ">= 0.91x raw");

/// Put p50 after 256 short-lived reader threads over put p50 before them: Cairn's own
/// target (a write path must not slow with the process's thread history).
pub const THREAD_HISTORY: Limit = from(Source::Guard, Bound::AtMost(1.5), "<= 1.5x");

/// Goal of a side-by-side ratio row: Cairn faster than the peer.
pub const CAIRN_AHEAD: Limit = goal(Bound::Above(1.0), "> 1.00x (Cairn ahead)");

/// Every bound, with the rows it checks: the table `docs/benchmarks.md` carries (generated
/// by [`markdown_table`], and checked against it by a test).
pub const ALL: &[(&str, &Limit)] = &[
    (
        "`peers/get_at_scale/1000000/cairn-inmemory` p50",
        &GET_LARGEST,
    ),
    ("the same, goal", &GET_LARGEST_GOAL),
    ("`peers/get_at_scale/1000000 vs 1000`", &GET_SCALING),
    ("the same, goal", &GET_SCALING_GOAL),
    (
        "`peers/{put/buffered,exists,delete}/cairn-inmemory` p50",
        &POINT_OP,
    ),
    ("`peers/put/buffered/cairn-inmemory`, goal", &PUT_GOAL),
    ("`peers/ttl_put/cairn-inmemory` p50", &PUT_WITH_TTL),
    ("`peers/ttl_put vs put/buffered`, goal", &PUT_WITH_TTL_GOAL),
    (
        "`peers/bulk_{put,get}/1000/cairn-inmemory` (and `kv:cairn-inmemory`)",
        &BULK,
    ),
    ("the same, goal", &BULK_GOAL),
    ("`peers/concurrent_reads/2 vs 1`", &READ_SCALING),
    ("the same, goal", &READ_SCALING_GOAL),
    ("`peers/mixed_80_20/2/cairn-inmemory`", &MIXED),
    ("the same, goal", &MIXED_GOAL),
    (
        "`peers/scan/prefix_1000/cairn-inmemory` p50",
        &PREFIX_SCAN_1000,
    ),
    ("the same, goal", &PREFIX_SCAN_1000_GOAL),
    ("`peers/cas/cairn-inmemory`, `cas/*` p50", &CAS),
    ("the same, goal", &CAS_GOAL),
    ("`version_growth/versions_retained`", &VERSIONS_RETAINED),
    ("`peers/put/buffered/cairn-buffered` p50", &BUFFERED_PUT),
    ("the same, goal", &BUFFERED_PUT_GOAL),
    (
        "`peers/put_rate/buffered/cairn-buffered`",
        &BUFFERED_PUT_RATE,
    ),
    ("the same, goal", &BUFFERED_PUT_RATE_GOAL),
    (
        "`durability/strict_put vs raw_fdatasync`",
        &STRICT_OVER_FDATASYNC,
    ),
    ("the same, goal", &STRICT_OVER_FDATASYNC_GOAL),
    ("`peers/group_commit/16/cairn-strict`", &GROUP_COMMIT_16),
    ("`recovery/wal_replay/1000000`", &WAL_REPLAY),
    ("`recovery/snapshot_creation/1000000`", &SNAPSHOT_WRITE),
    ("the same, goal", &SNAPSHOT_WRITE_GOAL),
    ("`recovery/snapshot_load/1000000`", &SNAPSHOT_LOAD),
    ("the same, goal", &SNAPSHOT_LOAD_GOAL),
    (
        "`recovery/snapshot_wal_recovery/1000000+100000`",
        &SNAPSHOT_WAL_RECOVERY,
    ),
    ("the same, goal", &SNAPSHOT_WAL_RECOVERY_GOAL),
    ("`recovery/wal_truncation/1000`", &WAL_TRUNCATION),
    ("the same, goal", &WAL_TRUNCATION_GOAL),
    (
        "`peers/{get/100,put/buffered}/kv:cairn-inmemory` p50",
        &KV_CAIRN_POINT,
    ),
    (
        "`peers/{get/100,put/buffered}/kv:sqlite-buffered` p50",
        &KV_SQLITE_POINT,
    ),
    (
        "`peers/bulk_{put,get}/1000/kv:sqlite-buffered`",
        &KV_SQLITE_BULK,
    ),
    (
        "`peers/*/kv:sqlite-buffered vs sqlite-buffered`, goal",
        &KV_SQLITE_OVER_RAW_GOAL,
    ),
    (
        "`peers/{get/100,put/buffered}/kv:redis` p50",
        &KV_REDIS_POINT,
    ),
    ("`peers/*/kv:redis vs redis`, goal", &KV_REDIS_OVER_RAW_GOAL),
    (
        "`peers/*/cairn vs <store>` of reads, scans, buffered writes, group commit",
        &CAIRN_AHEAD,
    ),
];

/// [`ALL`] as a Markdown table: rows checked, bound, kind (target or goal), source.
pub fn markdown_table() -> String {
    use std::fmt::Write as _;

    let mut table =
        String::from("| rows checked | bound | kind | where it comes from |\n|---|---|---|---|\n");
    for (rows, limit) in ALL {
        let kind = if limit.source == Source::Cairn {
            "goal"
        } else {
            "target"
        };
        let _ = writeln!(
            table,
            "| {rows} | {} | {kind} | {} |",
            limit.text,
            limit.source.describe()
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_carry_the_generated_targets_table() {
        let docs = include_str!("../../../docs/benchmarks.md");
        assert!(
            docs.contains(&markdown_table()),
            "docs/benchmarks.md's targets table is stale; regenerate it with `cairn bench --targets`"
        );
    }

    #[test]
    fn bounds_include_or_exclude_their_edge() {
        assert!(GET_LARGEST.is_met_by(999.0));
        assert!(!GET_LARGEST.is_met_by(1_000.0));
        assert!(GET_LARGEST_GOAL.is_met_by(300.0));
        assert!(!BULK.is_met_by(1_000_000.0));
        assert!(READ_SCALING.is_met_by(1.7));
        assert!(!READ_SCALING.is_met_by(1.69));
        assert!(!VERSIONS_RETAINED.is_met_by(3.0));
    }

    #[test]
    fn acceptable_bounds_pass_between_target_and_acceptable() {
        // 300 ms: over the snapshot write target, within its acceptable bound.
        assert!(SNAPSHOT_WRITE.is_met_by(300e6));
        assert!(!SNAPSHOT_WRITE_GOAL.is_met_by(300e6));
        assert!(!SNAPSHOT_WRITE.is_met_by(500e6));
        assert!(SNAPSHOT_LOAD.is_met_by(999e6) && !SNAPSHOT_LOAD.is_met_by(1e9));
        assert!(SNAPSHOT_WAL_RECOVERY_GOAL.is_met_by(499e6));
        assert!(WAL_TRUNCATION.is_met_by(50e6) && !WAL_TRUNCATION_GOAL.is_met_by(50e6));
        assert!(!WAL_REPLAY.is_met_by(300e6));
        assert!(STRICT_OVER_FDATASYNC.is_met_by(1.5) && !STRICT_OVER_FDATASYNC_GOAL.is_met_by(1.3));
        assert!(GROUP_COMMIT_16.is_met_by(10_000.0) && !GROUP_COMMIT_16.is_met_by(9_999.0));
        assert!(BUFFERED_PUT_RATE.is_met_by(50_000.0) && !BUFFERED_PUT.is_met_by(30_000.0));
    }

    #[test]
    fn key_value_targets_keep_their_bounds() {
        assert!(KV_CAIRN_POINT.is_met_by(999.0) && !KV_CAIRN_POINT.is_met_by(1_000.0));
        assert!(KV_SQLITE_POINT.is_met_by(99_999.0) && !KV_SQLITE_POINT.is_met_by(100_000.0));
        assert!(KV_SQLITE_BULK.is_met_by(10_001.0) && !KV_SQLITE_BULK.is_met_by(10_000.0));
        assert!(
            KV_SQLITE_OVER_RAW_GOAL.is_met_by(0.84) && !KV_SQLITE_OVER_RAW_GOAL.is_met_by(0.82)
        );
        assert!(KV_REDIS_POINT.is_met_by(999_999.0) && !KV_REDIS_POINT.is_met_by(1e6));
        assert!(KV_REDIS_OVER_RAW_GOAL.is_met_by(0.92) && !KV_REDIS_OVER_RAW_GOAL.is_met_by(0.9));
    }
}

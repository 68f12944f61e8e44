//! Targets and goals: the bounds a figure (a latency's p50, in ns) is checked against, and where
//! each comes from ([`Source`]). A row passes when it meets its *target*; its *goal* (the
//! project's own) is reported, never failed on. A target with a looser "acceptable" bound
//! passes on that ("< 100 ms (500 ms ok)"), its goal being the target itself.

/// Where a bound comes from, as [`Source::describe`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "`describe` says what each is")]
pub enum Source {
    EmbeddedDatabase,
    KeyValueLibrary,
    ScalingReport,
    Cairn,
    Streams,
    AgentState,
    WriteBehind,
    RespServer,
    Guard,
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
            Source::Streams => {
                "Cairn's streams target, tighter than the message log it replaces published"
            }
            Source::AgentState => {
                "Cairn's agent-state target, tighter than the agent store it replaces published"
            }
            Source::WriteBehind => {
                "Cairn's write-behind target, the top of the range the cache it replaces published"
            }
            Source::RespServer => {
                "Cairn's RESP-server target, against redis-server measured in the same run"
            }
            Source::Guard => "Cairn's own: a guard against a regression it once had",
            Source::Gate => "CI regression gate",
        }
    }
}

/// Which side of a bound passes: `<`, `<=`, `>`, `>=`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs, reason = "the names say it")]
pub enum Bound {
    Below(f64),
    AtMost(f64),
    Above(f64),
    AtLeast(f64),
}

/// A bound, how the report writes it (`< 1 µs`), and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// The bound on the checked value.
    pub bound: Bound,
    /// Its text in the table and the JSON.
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

pub(crate) const fn from(source: Source, bound: Bound, text: &'static str) -> Limit {
    Limit {
        bound,
        text,
        source,
    }
}

/// Defines each limit as a constant and [`ALL`] as the table of them, in order.
macro_rules! limits {
    ($($(#[$doc:meta])* $name:ident = $source:ident $bound:ident($value:expr), $text:literal
        for $rows:literal;)*) => {
        $($(#[$doc])*
        #[doc = concat!("`", $text, "` on ", $rows, ".")]
        pub const $name: Limit = from(Source::$source, Bound::$bound($value), $text);)*
        /// Every bound with the rows it checks: the table [`markdown_table`] writes for the docs.
        pub const ALL: &[(&str, &Limit)] = &[$(($rows, &$name)),*];
    };
}

limits! {
    GET_LARGEST = EmbeddedDatabase Below(1_000.0), "< 1 µs"
        for "`peers/get_at_scale/1000000/cairn-inmemory` p50";
    GET_LARGEST_GOAL = Cairn AtMost(300.0), "<= 300 ns" for "the same, goal";
    GET_SCALING = ScalingReport AtMost(2.0), "<= 2x" for "`peers/get_at_scale/1000000 vs 1000`";
    GET_SCALING_GOAL = Cairn AtMost(1.2), "flat (<= 1.2x)" for "the same, goal";
    POINT_OP = EmbeddedDatabase Below(1_000.0), "< 1 µs"
        for "`peers/{put/buffered,exists,delete}/cairn-inmemory` p50";
    PUT_GOAL = Cairn AtMost(500.0), "<= 500 ns" for "`peers/put/buffered/cairn-inmemory`, goal";
    PUT_WITH_TTL = EmbeddedDatabase Below(2_000.0), "< 2 µs" for "`peers/ttl_put/cairn-inmemory` p50";
    PUT_WITH_TTL_GOAL = Cairn AtMost(1.1), "<= 1.1x put" for "`peers/ttl_put vs put/buffered`, goal";
    BULK = EmbeddedDatabase Above(1_000_000.0), "> 1M ops/s"
        for "`peers/bulk_{put,get}/1000/cairn-inmemory` (and `kv:cairn-inmemory`)";
    BULK_GOAL = Cairn AtLeast(3_000_000.0), ">= 3M ops/s" for "the same, goal";
    READ_SCALING = EmbeddedDatabase AtLeast(1.7), ">= 1.7x" for "`peers/concurrent_reads/2 vs 1`";
    READ_SCALING_GOAL = Cairn AtLeast(1.8), ">= 1.8x" for "the same, goal";
    MIXED = EmbeddedDatabase Above(500_000.0), "> 500K ops/s"
        for "`peers/mixed_80_20/2/cairn-inmemory`";
    MIXED_GOAL = Cairn AtLeast(2_000_000.0), ">= 2M ops/s" for "the same, goal";
    PREFIX_SCAN_1000 = EmbeddedDatabase Below(100_000.0), "< 100 µs"
        for "`peers/scan/prefix_1000/cairn-inmemory` p50";
    PREFIX_SCAN_1000_GOAL = Cairn AtMost(30_000.0), "<= 30 µs" for "the same, goal";
    CAS = EmbeddedDatabase Below(5_000.0), "< 5 µs" for "`peers/cas/cairn-inmemory`, `cas/*` p50";
    CAS_GOAL = Cairn AtMost(1_000.0), "<= 1 µs" for "the same, goal";
    VERSIONS_RETAINED = EmbeddedDatabase AtMost(2.0), "<= 2"
        for "`version_growth/versions_retained`";
    BUFFERED_PUT = EmbeddedDatabase Below(30_000.0), "< 30 µs"
        for "`peers/put/buffered/cairn-buffered` p50";
    BUFFERED_PUT_GOAL = Cairn AtMost(2_000.0), "<= 2 µs" for "the same, goal";
    BUFFERED_PUT_RATE = EmbeddedDatabase AtLeast(50_000.0), ">= 50K ops/s"
        for "`peers/put_rate/buffered/cairn-buffered`";
    BUFFERED_PUT_RATE_GOAL = Cairn AtLeast(400_000.0), ">= 400K ops/s" for "the same, goal";
    STRICT_OVER_FDATASYNC = EmbeddedDatabase AtMost(1.5), "<= 1.5x"
        for "`durability/strict_put vs raw_fdatasync`";
    STRICT_OVER_FDATASYNC_GOAL = Cairn AtMost(1.2), "<= 1.2x" for "the same, goal";
    GROUP_COMMIT_16 = EmbeddedDatabase AtLeast(10_000.0), ">= 10K commits/s"
        for "`peers/group_commit/16/cairn-strict`";
    WAL_REPLAY = EmbeddedDatabase Below(300e6), "< 300 ms" for "`recovery/wal_replay/1000000`";
    SNAPSHOT_WRITE = EmbeddedDatabase Below(500e6), "< 100 ms (500 ms ok)"
        for "`recovery/snapshot_creation/1000000`";
    SNAPSHOT_WRITE_GOAL = Cairn Below(100e6), "< 100 ms" for "the same, goal";
    SNAPSHOT_LOAD = EmbeddedDatabase Below(1e9), "< 200 ms (1 s ok)"
        for "`recovery/snapshot_load/1000000`";
    SNAPSHOT_LOAD_GOAL = Cairn Below(200e6), "< 200 ms" for "the same, goal";
    SNAPSHOT_WAL_RECOVERY = EmbeddedDatabase Below(2e9), "< 500 ms (2 s ok)"
        for "`recovery/snapshot_wal_recovery/1000000+100000`";
    SNAPSHOT_WAL_RECOVERY_GOAL = Cairn Below(500e6), "< 500 ms" for "the same, goal";
    CLOSE = Cairn Below(100e6), "< 100 ms" for "`recovery/close/1000000`";
    WAL_TRUNCATION = EmbeddedDatabase Below(100e6), "< 10 ms (100 ms ok)"
        for "`recovery/wal_truncation/1000`";
    WAL_TRUNCATION_GOAL = Cairn Below(10e6), "< 10 ms" for "the same, goal";
    // KeyValueStore backends, through the trait. A ratio is the speed through the trait over
    // the wrapped client's, in the same run ("within 1.2x of raw" is ">= 1 / 1.2 of its speed").
    KV_CAIRN_POINT = KeyValueLibrary Below(1_000.0), "< 1 µs"
        for "`peers/{get/100,put/buffered}/kv:cairn-inmemory` p50";
    KV_SQLITE_POINT = KeyValueLibrary Below(100_000.0), "< 100 µs"
        for "`peers/{get/100,put/buffered}/kv:sqlite-buffered` p50";
    KV_SQLITE_BULK = KeyValueLibrary Above(10_000.0), "> 10K ops/s"
        for "`peers/bulk_{put,get}/1000/kv:sqlite-buffered`";
    KV_SQLITE_OVER_RAW_GOAL = Cairn AtLeast(1.0 / 1.2), ">= 0.83x raw"
        for "`peers/*/kv:sqlite-buffered vs sqlite-buffered`, goal";
    KV_REDIS_POINT = KeyValueLibrary Below(1_000_000.0), "< 1 ms"
        for "`peers/{get/100,put/buffered}/kv:redis` p50";
    KV_REDIS_OVER_RAW_GOAL = Cairn AtLeast(1.0 / 1.1), ">= 0.91x raw"
        for "`peers/*/kv:redis vs redis`, goal";
    // Message streams: the store's own targets (docs/streams.md, "Targets").
    STREAM_BATCHED = Streams AtLeast(10e6), ">= 10M msg/s"
        for "`core_operations/batch_write_throughput/{1000,10000}/cairn-buffered`";
    STREAM_APPEND_P99 = Streams AtMost(5_000.0), "p99 <= 5 µs"
        for "`core_operations/single_write_latency/64/cairn-buffered p99`";
    STREAM_STRICT_OVER_FDATASYNC = Streams AtMost(1.2), "<= 1.2x"
        for "`core_operations/strict_write_latency/64/cairn-strict vs raw-fdatasync`";
    STREAM_WRITER_SCALING = Streams AtLeast(10.0), ">= 10x"
        for "`core_operations/concurrent_writes/16 vs 1/cairn-strict`";
    STREAM_READ_P99 = Streams AtMost(1_000.0), "p99 <= 1 µs"
        for "`core_operations/read_operations/{sequential,random}/cairn-buffered p99`";
    STREAM_REPLAY = Streams AtLeast(10e6), ">= 10M msg/s"
        for "`integration_operations/streaming_api/replay/cairn-buffered`";
    STREAM_OPEN = Streams AtMost(50e6), "<= 50 ms"
        for "`system_operations/recovery_operations/{1GiB,4GiB}/cairn-buffered`";
    STREAM_INACTIVE_BYTES = Streams AtMost(256.0), "<= 256 B"
        for "`system_operations/memory_efficiency/100000/cairn`";
    // Agent state (docs/agent.md, docs/agent-search.md).
    AGENT_APPEND = AgentState AtMost(2_000.0), "<= 2 µs"
        for "`event_microbenchmarks/append/cairn` p50";
    AGENT_REPLAY_1K = AgentState AtMost(1e6), "<= 1 ms" for "`replay_simulation/1000/cairn` p50";
    AGENT_REPLAY_10K = AgentState AtMost(10e6), "<= 10 ms"
        for "`replay_simulation/10000/cairn` p50";
    AGENT_DIFF_1K = AgentState AtMost(1e6), "<= 1 ms" for "`diff_runs/1000/cairn` p50";
    AGENT_SEARCH = AgentState AtMost(1e6), "<= 1 ms" for "`agent_search/*/cairn` p50";
    // The write-behind repository (docs/memtable.md).
    MEMTABLE_INSERT = WriteBehind AtLeast(2e6), ">= 2M ops/s"
        for "`memtable_sequential_inserts/*/noop/throughput`";
    MEMTABLE_GET = WriteBehind AtLeast(10e6), ">= 10M ops/s"
        for "`memtable_get_operations/noop/throughput`";
    MEMTABLE_INDEX = WriteBehind AtLeast(5e6), ">= 5M ops/s"
        for "`memtable_index_lookups/noop/throughput`";
    MEMTABLE_WRITE = WriteBehind AtLeast(2e6), ">= 2M ops/s"
        for "`memtable_{delete,update}_operations/noop/throughput`";
    MEMTABLE_ROTATION_P99 = WriteBehind AtMost(10.0), "<= 10x"
        for "`memtable_rotation_flush/insert/noop p99 over p50`";
    MEMTABLE_WAL = WriteBehind AtMost(2.0), "<= 2x"
        for "`memtable_sequential_inserts/1000 wal-buffered vs noop`";
    RESP_MEMORY = RespServer AtLeast(1.0), ">= 1.0x"
        for "`resp_server/default_suite{,_p16}/<test>/cairn-memory vs redis`";
    RESP_STRICT = RespServer AtLeast(1.5), ">= 1.5x"
        for "`resp_server/durable_writes/strict/{SET,INCR}/cairn-strict vs redis-always`";
    CAIRN_AHEAD = Cairn Above(1.0), "> 1.00x (Cairn ahead)"
        for "`peers/*/cairn vs <store>` of reads, scans, buffered writes, group commit";
}

/// Put p50 after 256 short-lived reader threads over put p50 before them: Cairn's own guard.
pub const THREAD_HISTORY: Limit = from(Source::Guard, Bound::AtMost(1.5), "<= 1.5x");

/// [`ALL`] as a Markdown table: rows checked, bound, kind (target or goal), source.
pub fn markdown_table() -> String {
    use std::fmt::Write as _;

    let mut table =
        String::from("| rows checked | bound | kind | where it comes from |\n|---|---|---|---|\n");
    for (rows, limit) in ALL {
        let goal = limit.source == Source::Cairn;
        let kind = if goal { "goal" } else { "target" };
        let source = limit.source.describe();
        let _ = writeln!(table, "| {rows} | {} | {kind} | {source} |", limit.text);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_carry_the_generated_targets_table() {
        let docs = include_str!("../../../docs/benchmarks.md");
        let stale = "docs/benchmarks.md: stale targets table; regenerate: `cairn bench --targets`";
        assert!(docs.contains(&markdown_table()), "{stale}");
    }

    #[test]
    fn bounds_include_or_exclude_their_edge() {
        // (limit, a value that passes, a value that fails), a target beside its goal.
        #[rustfmt::skip]
        let cases = [
            (GET_LARGEST, 999.0, 1_000.0), (GET_LARGEST_GOAL, 300.0, 301.0),
            (BULK, 1_000_001.0, 1_000_000.0), (READ_SCALING, 1.7, 1.69),
            (VERSIONS_RETAINED, 2.0, 3.0),
            // Acceptable bounds pass between the target and the acceptable bound.
            (SNAPSHOT_WRITE, 300e6, 500e6), (SNAPSHOT_WRITE_GOAL, 99e6, 300e6),
            (SNAPSHOT_LOAD, 999e6, 1e9), (SNAPSHOT_WAL_RECOVERY_GOAL, 499e6, 500e6),
            (WAL_TRUNCATION, 50e6, 100e6), (WAL_TRUNCATION_GOAL, 9e6, 50e6),
            (WAL_REPLAY, 299e6, 300e6),
            (STRICT_OVER_FDATASYNC, 1.5, 1.51), (STRICT_OVER_FDATASYNC_GOAL, 1.2, 1.3),
            (GROUP_COMMIT_16, 10_000.0, 9_999.0),
            (BUFFERED_PUT_RATE, 50_000.0, 49_999.0), (BUFFERED_PUT, 29_999.0, 30_000.0),
            (KV_CAIRN_POINT, 999.0, 1_000.0),
            (KV_SQLITE_POINT, 99_999.0, 100_000.0), (KV_SQLITE_BULK, 10_001.0, 10_000.0),
            (KV_SQLITE_OVER_RAW_GOAL, 0.84, 0.82),
            (KV_REDIS_POINT, 999_999.0, 1e6), (KV_REDIS_OVER_RAW_GOAL, 0.92, 0.9),
        ];
        for (limit, passes, fails) in cases {
            assert!(limit.is_met_by(passes), "{} passes {passes}", limit.text);
            assert!(!limit.is_met_by(fails), "{} fails {fails}", limit.text);
        }
    }
}

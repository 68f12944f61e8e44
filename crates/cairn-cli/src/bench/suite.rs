//! The suite `cairn bench` runs: which workload each row measures, how, and what it is
//! checked against.
//!
//! A [`Step`] builds one workload from `cairn_bench::workloads`, measures it with a driver of
//! `cairn_bench::measure`, and turns the figures into rows with their targets. Steps are named
//! as the criterion benches are, so a row and a bench of the same name measure the same code.
//! A [`Derived`] row divides two measured rows (1M-key get over 1K-key get, 2-thread reads
//! over 1-thread reads); it appears once both inputs have been measured in this run, so the
//! peers share one process and one machine state.
//!
//! Read-only workloads share fixtures by key count (the 1M-key database is built once and
//! reused by the scans and the 1M-key get); workloads that write get a fixture of their own.
//!
//! The `durability` and `recovery` steps work on files: each builds its database in a fresh
//! temp directory that is removed when the step ends. A recovery row times whole opens (or
//! checkpoints), one per sample, a few per row; its step name has no size, its row name does
//! (`recovery/wal_replay/1000000`), because quick mode runs the recovery workloads at a tenth
//! of the size, where the 1M targets are not checked.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use cairn::Durability;
use cairn_bench::peers::Places;
use cairn_bench::sizes::{
    CONCURRENT_FIXTURE_KEYS, FIXTURE_KEYS, GROUP_COMMITS_PER_WRITER,
    GROUP_COMMITS_PER_WRITER_QUICK, GROUP_COMMIT_WRITERS, LARGEST_KEYS, LARGE_VALUE_BYTES,
    RECOVERY_ENTRIES, RECOVERY_ENTRIES_QUICK, RECOVERY_WAL_RECORDS, RECOVERY_WAL_RECORDS_QUICK,
    TORN_TAIL_ENTRIES, VALUE_BYTES,
};
use cairn_bench::workloads::batch::{BulkGet, BulkPut, BULK_OPS};
use cairn_bench::workloads::cas::{CreateNewKey, FailureWrongVersion, SequentialSuccess};
use cairn_bench::workloads::concurrent::{ConcurrentReads, MixedReadWrite};
use cairn_bench::workloads::durability::{
    measure_alternating, ModePut, RawFdatasync, StrictGroupCommit,
};
use cairn_bench::workloads::kv::{Backend, KvFixture};
use cairn_bench::workloads::point::{Delete, Exists, Get, Put, PutWithTtl, StdHashMapGet};
use cairn_bench::workloads::recovery::{
    self, RecoveryFigures, SnapshotCreation, SnapshotLoad, SnapshotWalRecovery, TornTailRepair,
    WalReplay,
};
use cairn_bench::workloads::scan::PrefixScan;
use cairn_bench::workloads::snapshots::{OpenSnapshotAndGet, SnapshotGet};
use cairn_bench::workloads::transactions::{ConflictingCommit, MultiKeyPut, ReadModifyWrite};
use cairn_bench::workloads::versions::HotKeyPut;
use cairn_bench::{measure, Budget, Fixture, ParallelWorkload, Plan, Throughput, Workload};

use super::report::{self, Row};
use super::targets;

/// Overwrites of one key before its retained versions are counted.
const HOT_KEY_PUTS: u64 = 1_000_000;
/// Operations timed together per latency sample, for operations of about a microsecond or less.
pub const POINT_OPS_PER_SAMPLE: u32 = 16;
/// Operations per latency sample for longer operations (transactions, scans).
const ONE_OP_PER_SAMPLE: u32 = 1;
/// Timed opens (or checkpoints) per recovery row: each is a large fraction of a second at 1M
/// entries, and the row reports their median.
const RECOVERY_RUNS: u64 = 5;
/// [`RECOVERY_RUNS`] in quick mode.
const RECOVERY_RUNS_QUICK: u64 = 3;

/// State shared by the steps of one run.
pub struct Context {
    quick: bool,
    shared: BTreeMap<usize, Fixture>,
    /// Key-value stores by subject name (see `kv`), filled once per run.
    pub(super) kv_fixtures: BTreeMap<String, KvFixture>,
    /// Side-by-side stores (see `peers`), filled once per run.
    pub(super) peer_fixtures: super::peers::PeerFixtures,
    /// Where the side-by-side peers are reached (the Redis server, if any).
    pub(super) places: Places,
    /// Measurement time per row, when `--seconds` overrides the mode's.
    seconds: Option<Duration>,
    status: Box<dyn FnMut(&str)>,
    /// The step running now, for status messages.
    step: String,
}

impl Context {
    /// A run in quick or full mode; `status` is told what a long setup is doing. `seconds`
    /// overrides the measurement time of every timed row; `places` says where the
    /// side-by-side peers are.
    pub fn new(
        quick: bool,
        seconds: Option<Duration>,
        places: Places,
        status: Box<dyn FnMut(&str)>,
    ) -> Self {
        Context {
            quick,
            shared: BTreeMap::new(),
            kv_fixtures: BTreeMap::new(),
            peer_fixtures: super::peers::PeerFixtures::default(),
            places,
            seconds,
            status,
            step: String::new(),
        }
    }

    /// True in quick mode.
    pub(super) fn quick(&self) -> bool {
        self.quick
    }

    pub(super) fn latency_plan(&self) -> Plan {
        let (warm_up, measure_for) = if self.quick {
            (Duration::from_millis(50), Duration::from_millis(200))
        } else {
            (Duration::from_millis(300), Duration::from_secs(2))
        };
        plan(warm_up, self.seconds.unwrap_or(measure_for))
    }

    pub(super) fn throughput_plan(&self) -> Plan {
        self.latency_plan()
    }

    pub(super) fn parallel_plan(&self) -> Plan {
        let (warm_up, measure_for) = if self.quick {
            (Duration::from_millis(20), Duration::from_millis(300))
        } else {
            (Duration::from_millis(200), Duration::from_secs(2))
        };
        plan(warm_up, self.seconds.unwrap_or(measure_for))
    }

    fn ops_per_thread(&self) -> u64 {
        if self.quick {
            50_000
        } else {
            200_000
        }
    }

    /// Entries of the recovery databases: 1M, or 100K in quick mode.
    fn recovery_entries(&self) -> usize {
        if self.quick {
            RECOVERY_ENTRIES_QUICK
        } else {
            RECOVERY_ENTRIES
        }
    }

    /// WAL records after the snapshot in snapshot + WAL recovery.
    fn recovery_wal_records(&self) -> usize {
        if self.quick {
            RECOVERY_WAL_RECORDS_QUICK
        } else {
            RECOVERY_WAL_RECORDS
        }
    }

    /// How many opens (or checkpoints) a recovery row times.
    fn recovery_plan(&self) -> Plan {
        Plan {
            warm_up: Duration::ZERO,
            budget: Budget::Runs(if self.quick {
                RECOVERY_RUNS_QUICK
            } else {
                RECOVERY_RUNS
            }),
        }
    }

    /// Strict puts per writer in one run of the group-commit workload.
    fn group_commits_per_writer(&self) -> u64 {
        if self.quick {
            GROUP_COMMITS_PER_WRITER_QUICK
        } else {
            GROUP_COMMITS_PER_WRITER
        }
    }

    /// Tells the status line that the current step is building something large.
    pub(super) fn building(&mut self, what: &str) {
        (self.status)(&format!("{}: building {what}", self.step));
    }

    /// Tells the status line that the current step is measuring again.
    pub(super) fn building_done(&mut self) {
        (self.status)(&self.step);
    }

    /// A read-only fixture of `keys` keys with 100-byte values, built on first request.
    fn shared_fixture(&mut self, keys: usize) -> Result<Fixture> {
        if let Some(fixture) = self.shared.get(&keys) {
            return Ok(fixture.clone());
        }
        (self.status)(&format!("{}: building a {keys}-key database", self.step));
        let fixture = Fixture::build(keys, VALUE_BYTES)
            .with_context(|| format!("building a {keys}-key database"))?;
        (self.status)(&self.step);
        self.shared.insert(keys, fixture.clone());
        Ok(fixture)
    }

    fn latency<W: Workload + ?Sized>(
        &self,
        workload: &mut W,
        ops_per_sample: u32,
    ) -> Result<cairn_bench::Latency> {
        Ok(measure::measure_latency(
            workload,
            self.latency_plan(),
            ops_per_sample,
        )?)
    }
}

/// A fixture for one workload that writes.
fn own_fixture(keys: usize, value_bytes: usize) -> Result<Fixture> {
    Fixture::build(keys, value_bytes)
        .with_context(|| format!("building a {keys}-key database of {value_bytes}-byte values"))
}

fn plan(warm_up: Duration, measure_for: Duration) -> Plan {
    Plan {
        warm_up,
        budget: Budget::Time(measure_for),
    }
}

type StepFn = dyn Fn(&mut Context, &str) -> Result<Vec<Row>>;

/// What a step measures, for `--kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Latency rows only.
    Latency,
    /// Throughput rows only.
    Throughput,
    /// Both, or neither (ratios, counts, memory): run by `--kind latency` and
    /// `--kind throughput` alike.
    Other,
}

impl Kind {
    /// True when a step of this kind runs under `--kind wanted`.
    pub fn selected_by(self, wanted: Kind) -> bool {
        self == wanted || self == Kind::Other || wanted == Kind::Other
    }
}

/// One measured workload, producing one or more rows.
pub struct Step {
    /// The workload's name (its criterion id), also the first row's name.
    pub name: String,
    /// A name shared by a family of steps (`kv`), which `--filter` also matches.
    pub section: Option<&'static str>,
    /// What the step measures.
    pub kind: Kind,
    run: Box<StepFn>,
}

impl Step {
    pub(super) fn new(
        name: impl Into<String>,
        run: impl Fn(&mut Context, &str) -> Result<Vec<Row>> + 'static,
    ) -> Self {
        Step {
            name: name.into(),
            section: None,
            kind: Kind::Other,
            run: Box::new(run),
        }
    }

    /// Says what the step measures.
    pub(super) fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// Puts the step in `section`.
    pub(super) fn in_section(mut self, section: &'static str) -> Self {
        self.section = Some(section);
        self
    }

    /// True when `filter` is part of the step's name or is its section.
    pub fn matches(&self, filter: &str) -> bool {
        self.name.contains(filter) || self.section == Some(filter)
    }

    /// Runs the step: builds its workload, measures it, returns its rows.
    pub fn run(&self, context: &mut Context) -> Result<Vec<Row>> {
        context.step.clone_from(&self.name);
        (self.run)(context, &self.name).with_context(|| format!("workload {}", self.name))
    }
}

/// A step that measures the latency of one workload and checks its p50 with `check`.
fn latency_step<W: Workload + 'static>(
    name: impl Into<String>,
    ops_per_sample: u32,
    build: impl Fn(&mut Context) -> Result<W> + 'static,
    check: impl Fn(Row) -> Row + 'static,
) -> Step {
    Step::new(name, move |context, name| {
        let mut workload = build(context)?;
        let latency = context.latency(&mut workload, ops_per_sample)?;
        Ok(vec![check(latency_row(name, &latency))])
    })
    .with_kind(Kind::Latency)
}

/// A step that measures the throughput of one single-threaded workload.
fn throughput_step<W: Workload + 'static>(
    name: impl Into<String>,
    build: impl Fn(&mut Context) -> Result<W> + 'static,
    check: impl Fn(Row) -> Row + 'static,
) -> Step {
    Step::new(name, move |context, name| {
        let mut workload = build(context)?;
        let throughput = measure::measure_throughput(&mut workload, context.throughput_plan())?;
        Ok(vec![check(Row::throughput(name, &throughput))])
    })
    .with_kind(Kind::Throughput)
}

/// A step that measures the throughput of one multi-threaded workload.
fn parallel_step<P: ParallelWorkload + 'static>(
    name: impl Into<String>,
    build: impl Fn(&mut Context) -> Result<P> + 'static,
    check: impl Fn(Row) -> Row + 'static,
) -> Step {
    Step::new(name, move |context, name| {
        let mut workload = build(context)?;
        let throughput = measure::measure_parallel(&mut workload, context.parallel_plan())?;
        let row = Row::throughput(name, &throughput)
            .note("wall time of whole runs, thread start-up included");
        Ok(vec![check(row)])
    })
    .with_kind(Kind::Throughput)
}

pub(super) fn latency_row(name: &str, latency: &cairn_bench::Latency) -> Row {
    let row = Row::latency(name, latency);
    if latency.ops_per_sample > 1 {
        let note = format!(
            "each sample is the mean of {} consecutive ops",
            latency.ops_per_sample
        );
        row.note(&note)
    } else {
        row
    }
}

fn informational(row: Row) -> Row {
    row
}

/// Every step, in the order of the criterion groups, then the key-value steps for
/// `kv_backends` (see `kv`).
#[expect(
    clippy::too_many_lines,
    reason = "one flat list of the suite's steps reads better than the same list split up"
)]
pub fn steps(kv_backends: &[Backend], quick: bool) -> Vec<Step> {
    let mut steps = Vec::new();

    // single_operations
    for value_bytes in [VALUE_BYTES, LARGE_VALUE_BYTES] {
        let is_small = value_bytes == VALUE_BYTES;
        steps.push(latency_step(
            format!("single_operations/single_put/{value_bytes}"),
            POINT_OPS_PER_SAMPLE,
            move |_| {
                let fixture = own_fixture(FIXTURE_KEYS, value_bytes)?;
                Ok(Put::new(&fixture, value_bytes)?)
            },
            move |row| {
                if is_small {
                    row.target(&targets::POINT_OP).goal(&targets::PUT_GOAL)
                } else {
                    row
                }
            },
        ));
        steps.push(latency_step(
            format!("single_operations/single_get/{value_bytes}"),
            POINT_OPS_PER_SAMPLE,
            move |_| {
                let fixture = own_fixture(FIXTURE_KEYS, value_bytes)?;
                Ok(Get::new(&fixture)?)
            },
            informational,
        ));
    }
    steps.push(latency_step(
        "single_operations/single_delete",
        POINT_OPS_PER_SAMPLE,
        |_| Ok(Delete::new(&own_fixture(FIXTURE_KEYS, VALUE_BYTES)?)?),
        |row| row.target(&targets::POINT_OP),
    ));
    steps.push(latency_step(
        "single_operations/single_exists",
        POINT_OPS_PER_SAMPLE,
        |context| Ok(Exists::new(&context.shared_fixture(FIXTURE_KEYS)?)?),
        |row| row.target(&targets::POINT_OP),
    ));

    // batch_operations
    steps.push(throughput_step(
        format!("batch_operations/bulk_put/{BULK_OPS}"),
        |_| Ok(BulkPut::new(&own_fixture(FIXTURE_KEYS, VALUE_BYTES)?)?),
        |row| row.target(&targets::BULK).goal(&targets::BULK_GOAL),
    ));
    steps.push(throughput_step(
        format!("batch_operations/bulk_get/{BULK_OPS}"),
        |context| Ok(BulkGet::new(&context.shared_fixture(FIXTURE_KEYS)?)?),
        |row| row.target(&targets::BULK).goal(&targets::BULK_GOAL),
    ));

    // concurrent_access
    for threads in [1, 2, 4, 8] {
        steps.push(parallel_step(
            format!("concurrent_access/concurrent_reads/{threads}"),
            move |context| {
                let fixture = context.shared_fixture(CONCURRENT_FIXTURE_KEYS)?;
                Ok(ConcurrentReads::new(
                    &fixture,
                    threads,
                    context.ops_per_thread(),
                )?)
            },
            informational,
        ));
    }
    steps.push(parallel_step(
        "concurrent_access/mixed_workload/2",
        |context| {
            let fixture = own_fixture(CONCURRENT_FIXTURE_KEYS, VALUE_BYTES)?;
            Ok(MixedReadWrite::new(&fixture, 2, context.ops_per_thread())?)
        },
        |row| row.target(&targets::MIXED).goal(&targets::MIXED_GOAL),
    ));

    // key_patterns
    for keys_per_prefix in [10, 100, 1_000] {
        steps.push(latency_step(
            format!("key_patterns/prefix_scan/{keys_per_prefix}"),
            ONE_OP_PER_SAMPLE,
            move |context| {
                let fixture = context.shared_fixture(LARGEST_KEYS)?;
                Ok(PrefixScan::new(&fixture, keys_per_prefix)?)
            },
            move |row| {
                if keys_per_prefix == 1_000 {
                    row.target(&targets::PREFIX_SCAN_1000)
                        .goal(&targets::PREFIX_SCAN_1000_GOAL)
                } else {
                    row
                }
            },
        ));
    }

    // ttl_operations: measured next to its peer, a plain put, for the goal's ratio.
    steps.push(Step::new("ttl_operations/put_with_ttl", |context, name| {
        let mut put = Put::new(&own_fixture(FIXTURE_KEYS, VALUE_BYTES)?, VALUE_BYTES)?;
        let put = context.latency(&mut put, POINT_OPS_PER_SAMPLE)?;
        let mut ttl = PutWithTtl::new(&own_fixture(FIXTURE_KEYS, VALUE_BYTES)?)?;
        let ttl = context.latency(&mut ttl, POINT_OPS_PER_SAMPLE)?;
        let ratio = measure::count_as_f64(ttl.p50_ns) / measure::count_as_f64(put.p50_ns.max(1));
        let row = latency_row(name, &ttl)
            .target(&targets::PUT_WITH_TTL)
            .goal_on(&targets::PUT_WITH_TTL_GOAL, ratio)
            .annotate(&format!(
                "{ratio:.2}x put at {}",
                report::format_nanos(put.p50_ns)
            ));
        Ok(vec![row])
    }));

    // transaction_commit
    steps.push(latency_step(
        "transaction_commit/single_key_put",
        ONE_OP_PER_SAMPLE,
        |_| {
            Ok(MultiKeyPut::new(
                &own_fixture(FIXTURE_KEYS, VALUE_BYTES)?,
                1,
            )?)
        },
        informational,
    ));
    for keys in [3, 5, 10] {
        steps.push(latency_step(
            format!("transaction_commit/multi_key_put/{keys}"),
            ONE_OP_PER_SAMPLE,
            move |_| {
                let fixture = own_fixture(FIXTURE_KEYS, VALUE_BYTES)?;
                Ok(MultiKeyPut::new(&fixture, keys)?)
            },
            informational,
        ));
    }
    steps.push(latency_step(
        "transaction_commit/read_modify_write",
        ONE_OP_PER_SAMPLE,
        |_| {
            Ok(ReadModifyWrite::new(&own_fixture(
                FIXTURE_KEYS,
                VALUE_BYTES,
            )?)?)
        },
        informational,
    ));

    // cas
    let cas = |row: Row| row.target(&targets::CAS).goal(&targets::CAS_GOAL);
    steps.push(latency_step(
        "cas/sequential_success",
        POINT_OPS_PER_SAMPLE,
        |_| Ok(SequentialSuccess::new(VALUE_BYTES)?),
        cas,
    ));
    steps.push(latency_step(
        "cas/failure_wrong_version",
        POINT_OPS_PER_SAMPLE,
        |_| Ok(FailureWrongVersion::new(VALUE_BYTES)?),
        cas,
    ));
    steps.push(latency_step(
        "cas/create_new_key",
        POINT_OPS_PER_SAMPLE,
        |_| Ok(CreateNewKey::new(VALUE_BYTES)),
        cas,
    ));

    // snapshot_read
    steps.push(latency_step(
        "snapshot_read/get",
        POINT_OPS_PER_SAMPLE,
        |context| Ok(SnapshotGet::new(&context.shared_fixture(FIXTURE_KEYS)?)?),
        informational,
    ));
    steps.push(latency_step(
        "snapshot_read/open_and_get",
        POINT_OPS_PER_SAMPLE,
        |context| {
            Ok(OpenSnapshotAndGet::new(
                &context.shared_fixture(FIXTURE_KEYS)?,
            )?)
        },
        informational,
    ));

    // conflict_detection
    steps.push(latency_step(
        "conflict_detection/write_write_conflict",
        ONE_OP_PER_SAMPLE,
        |_| {
            Ok(ConflictingCommit::new(&own_fixture(
                FIXTURE_KEYS,
                VALUE_BYTES,
            )?)?)
        },
        informational,
    ));

    // version_growth: exactly HOT_KEY_PUTS overwrites, then count what the key retains.
    steps.push(Step::new("version_growth/hot_key_put", |_, name| {
        let mut hot = HotKeyPut::new(VALUE_BYTES);
        let plan = Plan {
            warm_up: Duration::ZERO,
            budget: Budget::Runs(HOT_KEY_PUTS),
        };
        let latency = measure::measure_latency(&mut hot, plan, POINT_OPS_PER_SAMPLE)?;
        let explained = format!(
            "stats().versions_retained after {} puts to one key",
            hot.puts()
        );
        Ok(vec![
            latency_row(name, &latency),
            Row::versions(
                "version_growth/versions_retained",
                hot.versions_retained(),
                &explained,
            )
            .target(&targets::VERSIONS_RETAINED)
            .goal(&targets::VERSIONS_RETAINED)
            .annotate(&format!("after {} puts", hot.puts())),
        ])
    }));

    // get_at_scale
    for keys in [1_000, 10_000, 100_000, LARGEST_KEYS] {
        steps.push(latency_step(
            format!("get_at_scale/uniform_get/{keys}"),
            POINT_OPS_PER_SAMPLE,
            move |context| Ok(Get::new(&context.shared_fixture(keys)?)?),
            move |row| {
                if keys == LARGEST_KEYS {
                    row.target(&targets::GET_LARGEST)
                        .goal(&targets::GET_LARGEST_GOAL)
                } else {
                    row
                }
            },
        ));
    }
    // The floor: what a plain single-threaded HashMap costs on this machine at both ends.
    for keys in [1_000, LARGEST_KEYS] {
        steps.push(latency_step(
            format!("get_at_scale/std_hashmap_reference/{keys}"),
            POINT_OPS_PER_SAMPLE,
            move |context| Ok(StdHashMapGet::new(&context.shared_fixture(keys)?)?),
            |row| row,
        ));
    }

    steps.extend(durability_steps());
    steps.extend(recovery_steps());
    steps.extend(super::kv::steps(kv_backends, quick));
    steps.extend(super::peers::steps(quick));
    steps
}

/// Seed 002's `durability` group: one put per mode (the Strict put in alternation with the raw
/// fdatasync floor it is compared with), then Strict group commit from 1 to 64 writers.
fn durability_steps() -> Vec<Step> {
    let mut steps = vec![
        mode_put_step(
            "durability/inmemory_put",
            Durability::InMemory,
            informational,
            informational,
        ),
        mode_put_step(
            "durability/buffered_put",
            Durability::buffered(),
            |row| {
                row.target(&targets::BUFFERED_PUT)
                    .goal(&targets::BUFFERED_PUT_GOAL)
            },
            |row| {
                row.target(&targets::BUFFERED_PUT_RATE)
                    .goal(&targets::BUFFERED_PUT_RATE_GOAL)
            },
        ),
        strict_put_step(),
    ];
    for writers in GROUP_COMMIT_WRITERS {
        steps.push(Step::new(
            format!("durability/strict_group_commit/{writers}"),
            move |context, name| {
                let mut workload = StrictGroupCommit::new(
                    writers,
                    context.group_commits_per_writer(),
                    FIXTURE_KEYS,
                    VALUE_BYTES,
                )?;
                let throughput = measure::measure_parallel(&mut workload, context.parallel_plan())?;
                let counts = workload.sync_counts();
                let row = Row::throughput(name, &throughput)
                    .annotate(&format!("{:.1} commits/fsync", counts.commits_per_sync()))
                    .note(&format!(
                        "Strict puts from {writers} writer threads released together (start-up \
                         not timed); commits per fsync = WAL frames / WAL syncs from db.stats() \
                         over all runs = {} / {}",
                        counts.frames, counts.syncs
                    ));
                Ok(vec![if writers == 16 {
                    row.target(&targets::GROUP_COMMIT_16)
                        .goal(&targets::GROUP_COMMIT_16)
                } else {
                    row
                }])
            },
        ));
    }
    steps
}

/// The Strict put and the raw fdatasync, measured in alternation so that both see the same
/// disk (see `measure_alternating`), and their ratio. Throughput is derived from the mean put
/// latency of the same measurement, for the same reason.
fn strict_put_step() -> Step {
    Step::new("durability/strict_put", |context, name| {
        let mut raw = RawFdatasync::new()?;
        let mut put = ModePut::new(Durability::Strict, FIXTURE_KEYS, VALUE_BYTES)?;
        let (raw, put) = measure_alternating(&mut raw, &mut put, context.latency_plan())?;
        let seconds = put.mean_ns * measure::count_as_f64(put.samples) / 1e9;
        let throughput = Throughput {
            runs: put.samples,
            engine_ops: put.samples,
            measured: Duration::from_secs_f64(seconds.max(0.0)),
            ops_per_sec: if put.mean_ns > 0.0 {
                1e9 / put.mean_ns
            } else {
                0.0
            },
        };
        Ok(vec![
            latency_row("durability/raw_fdatasync", &raw).note(
                "128-byte pwrite at the next offset of a 64 MiB file preallocated with set_len \
                 (as WAL segments are), then fdatasync: the floor of a Strict commit; timed in \
                 alternation with durability/strict_put",
            ),
            latency_row(name, &put).annotate("seed ~2 ms"),
            Row::throughput(&format!("{name}/throughput"), &throughput)
                .note("1 / mean latency of the Strict puts timed for durability/strict_put"),
            Row::ratio(
                "durability/strict_put vs raw_fdatasync",
                measure::count_as_f64(put.p50_ns),
                measure::count_as_f64(raw.p50_ns),
                "Strict put p50 over raw fdatasync p50, timed in alternation (one of each in \
                 turn), so both see the same disk",
            )
            .target(&targets::STRICT_OVER_FDATASYNC)
            .goal(&targets::STRICT_OVER_FDATASYNC_GOAL),
        ])
    })
}

/// A step measuring a put in a mode without fsync on the commit path twice: its latency
/// (row `name`, 16 puts per sample as for the other point operations) and its single-thread
/// throughput (row `name/throughput`).
fn mode_put_step(
    name: &str,
    durability: Durability,
    check_latency: impl Fn(Row) -> Row + 'static,
    check_throughput: impl Fn(Row) -> Row + 'static,
) -> Step {
    Step::new(name, move |context, name| {
        let mut workload = ModePut::new(durability, FIXTURE_KEYS, VALUE_BYTES)?;
        let latency = context.latency(&mut workload, POINT_OPS_PER_SAMPLE)?;
        let throughput = measure::measure_throughput(&mut workload, context.throughput_plan())?;
        Ok(vec![
            check_latency(latency_row(name, &latency)),
            check_throughput(Row::throughput(&format!("{name}/throughput"), &throughput)),
        ])
    })
}

/// What a recovery row is checked against at full size.
#[derive(Clone)]
struct RecoveryLimits {
    target: targets::Limit,
    goal: targets::Limit,
}

/// A step timing one-shot recovery operations of one workload, one per sample. `build`
/// returns the workload and the row's size parameter; `figures` reads back what the engine
/// reported about each operation.
fn recovery_step<W: Workload + 'static>(
    name: &str,
    explained: &'static str,
    build: impl Fn(&mut Context) -> Result<(W, String)> + 'static,
    figures: fn(&W) -> &[RecoveryFigures],
    limits: RecoveryLimits,
) -> Step {
    Step::new(name, move |context, name| {
        let (mut workload, size) = build(context)?;
        (context.status)(&context.step);
        let latency =
            measure::measure_latency(&mut workload, context.recovery_plan(), ONE_OP_PER_SAMPLE)?;
        let row = recovery_row(&format!("{name}/{size}"), &latency, figures(&workload));
        Ok(vec![if context.quick {
            row.note(&format!(
                "{explained}. Quick mode: a tenth of the 1M entries the targets are for; not \
                 checked"
            ))
        } else {
            row.target(&limits.target)
                .goal(&limits.goal)
                .note(explained)
        }])
    })
}

/// A latency row of whole opens or checkpoints: p50 / max of the wall times, annotated with the
/// number of runs and the median of the engine's own reported durations.
fn recovery_row(name: &str, latency: &cairn_bench::Latency, figures: &[RecoveryFigures]) -> Row {
    let reported = recovery::median(figures.iter().map(|figures| figures.reported));
    Row::latency(name, latency).annotate(&format!(
        "{} runs; engine report p50 {}",
        latency.samples,
        report::format_nanos(u64::try_from(reported.as_nanos()).unwrap_or(u64::MAX))
    ))
}

/// Seed 002's `recovery` group.
fn recovery_steps() -> Vec<Step> {
    vec![
        recovery_step(
            "recovery/wal_replay",
            "Db::open of a WAL of N single-put commits (16-byte keys, 100-byte values), no \
             snapshot, warm page cache",
            |context| {
                let entries = context.recovery_entries();
                context.building(&format!("a WAL of {entries} commits"));
                Ok((WalReplay::new(entries)?, entries.to_string()))
            },
            WalReplay::figures,
            RecoveryLimits {
                target: targets::WAL_REPLAY,
                goal: targets::WAL_REPLAY,
            },
        ),
        recovery_step(
            "recovery/snapshot_creation",
            "db.checkpoint() of N keys: write, fsync, rename, fsync dir, drop what it made \
             redundant",
            |context| {
                let entries = context.recovery_entries();
                context.building(&format!("a database of {entries} keys"));
                Ok((SnapshotCreation::new(entries)?, entries.to_string()))
            },
            SnapshotCreation::figures,
            RecoveryLimits {
                target: targets::SNAPSHOT_WRITE,
                goal: targets::SNAPSHOT_WRITE_GOAL,
            },
        ),
        recovery_step(
            "recovery/snapshot_load",
            "Db::open of a snapshot of N keys with no WAL record after it, warm page cache",
            |context| {
                let entries = context.recovery_entries();
                context.building(&format!("a snapshot of {entries} keys"));
                Ok((SnapshotLoad::new(entries)?, entries.to_string()))
            },
            SnapshotLoad::figures,
            RecoveryLimits {
                target: targets::SNAPSHOT_LOAD,
                goal: targets::SNAPSHOT_LOAD_GOAL,
            },
        ),
        recovery_step(
            "recovery/snapshot_wal_recovery",
            "Db::open of a snapshot of N keys plus M overwrites in the WAL after it, warm page \
             cache",
            |context| {
                let (entries, records) =
                    (context.recovery_entries(), context.recovery_wal_records());
                context.building(&format!(
                    "a snapshot of {entries} keys and {records} WAL records"
                ));
                Ok((
                    SnapshotWalRecovery::new(entries, records)?,
                    format!("{entries}+{records}"),
                ))
            },
            SnapshotWalRecovery::figures,
            RecoveryLimits {
                target: targets::SNAPSHOT_WAL_RECOVERY,
                goal: targets::SNAPSHOT_WAL_RECOVERY_GOAL,
            },
        ),
        // The same size in both modes, so always checked; measured next to an intact open of
        // the same WAL, so the repair's own cost shows.
        Step::new("recovery/wal_truncation", |context, name| {
            let plan = context.recovery_plan();
            let mut intact = WalReplay::new(TORN_TAIL_ENTRIES)?;
            let intact = measure::measure_latency(&mut intact, plan, ONE_OP_PER_SAMPLE)?;
            let mut torn = TornTailRepair::new(TORN_TAIL_ENTRIES)?;
            let latency = measure::measure_latency(&mut torn, plan, ONE_OP_PER_SAMPLE)?;
            let row = recovery_row(
                &format!("{name}/{TORN_TAIL_ENTRIES}"),
                &latency,
                TornTailRepair::figures(&torn),
            )
            .annotate(&format!(
                "intact open p50 {}",
                report::format_nanos(intact.p50_ns)
            ))
            .target(&targets::WAL_TRUNCATION)
            .goal(&targets::WAL_TRUNCATION_GOAL)
            .note(
                "Db::open of a WAL of N commits whose last frame was cut in half: the report's \
                 torn_tail is checked, the segment cut back and synced; intact = the same WAL \
                 without the torn frame",
            );
            Ok(vec![row])
        }),
    ]
}

/// A row computed from two measured rows: `numerator.value / denominator.value`.
pub struct Derived {
    /// The row's name.
    pub name: &'static str,
    /// The row whose value is divided.
    pub numerator: &'static str,
    /// The row it is divided by.
    pub denominator: &'static str,
    explained: &'static str,
    target: Option<targets::Limit>,
    goal: Option<targets::Limit>,
}

impl Derived {
    /// The derived row, once both inputs are among `rows`.
    pub fn compute(&self, rows: &[Row]) -> Option<Row> {
        let find = |name: &str| rows.iter().find(|row| row.name == name);
        let (numerator, denominator) = (find(self.numerator)?, find(self.denominator)?);
        let mut row = Row::ratio(
            self.name,
            numerator.value,
            denominator.value,
            self.explained,
        );
        if let Some(target) = &self.target {
            row = row.target(target);
        }
        if let Some(goal) = &self.goal {
            row = row.goal(goal);
        }
        Some(row)
    }
}

/// Every derived row.
pub fn derived() -> Vec<Derived> {
    vec![
        Derived {
            name: "concurrent_access/concurrent_reads/2 vs 1",
            numerator: "concurrent_access/concurrent_reads/2",
            denominator: "concurrent_access/concurrent_reads/1",
            explained: "read throughput on 2 threads over 1 thread",
            target: Some(targets::READ_SCALING),
            goal: Some(targets::READ_SCALING_GOAL),
        },
        Derived {
            name: "get_at_scale/uniform_get/1000000 vs 1000",
            numerator: "get_at_scale/uniform_get/1000000",
            denominator: "get_at_scale/uniform_get/1000",
            explained: "get p50 at 1M keys over get p50 at 1K keys",
            target: Some(targets::GET_SCALING),
            goal: Some(targets::GET_SCALING_GOAL),
        },
        Derived {
            name: "get_at_scale/std_hashmap_reference/1000000 vs 1000",
            numerator: "get_at_scale/std_hashmap_reference/1000000",
            denominator: "get_at_scale/std_hashmap_reference/1000",
            explained: "the same ratio for a plain HashMap: what caches and TLB alone cost",
            target: None,
            goal: None,
        },
        Derived {
            name: "get_at_scale/uniform_get/1000000 vs std_hashmap_reference",
            numerator: "get_at_scale/uniform_get/1000000",
            denominator: "get_at_scale/std_hashmap_reference/1000000",
            explained: "Cairn get p50 over plain HashMap get p50, both at 1M keys",
            target: None,
            goal: None,
        },
    ]
}

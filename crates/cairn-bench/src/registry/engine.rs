//! The engine-only entries: workloads no peer can run, because they measure something only
//! Cairn has (its fdatasync floor, recovery, version pruning, snapshots, conflict detection,
//! version-CAS and transaction shapes) or a reference that is not a store (`std::HashMap`).
//!
//! The `recovery` entries time whole opens (or checkpoints), one per sample, a few per row;
//! their row names carry the size (`recovery/wal_replay/1000000`) because quick mode runs them
//! at a tenth of it, where the 1M targets are not checked.

use std::time::Duration;

use cairn::Durability;

use crate::measure::{self, count_as_f64, Latency, Throughput};
use crate::report::{format_nanos, Row};
use crate::sizes::{
    FIXTURE_KEYS, RECOVERY_ENTRIES, RECOVERY_ENTRIES_QUICK, RECOVERY_WAL_RECORDS,
    RECOVERY_WAL_RECORDS_QUICK, TORN_TAIL_ENTRIES, VALUE_BYTES,
};
use crate::targets::{self, Bound, Limit, Source};
use crate::workloads::cas::{CreateNewKey, FailureWrongVersion, SequentialSuccess};
use crate::workloads::durability::{measure_alternating, ModePut, RawFdatasync};
use crate::workloads::point::StdHashMapGet;
use crate::workloads::recovery::{self, RecoveryFigures, Reopen, SnapshotCreation};
use crate::workloads::snapshots::{OpenSnapshotAndGet, SnapshotGet};
use crate::workloads::thread_history::{read_from_threads, Overwrite};
use crate::workloads::transactions::{ConflictingCommit, MultiKeyPut, ReadModifyWrite};
use crate::workloads::versions::HotKeyPut;
use crate::workloads::{Fixture, Result, Workload};

use super::side_by_side::{latency_row, POINT_OPS_PER_SAMPLE};
use super::{Context, Derived, Entry, Kind, Timed};

/// Overwrites of one key before its retained versions are counted.
const HOT_KEY_PUTS: u64 = 1_000_000;
/// Timed opens (or checkpoints) per recovery row, full and quick.
const RECOVERY_RUNS: (u64, u64) = (5, 3);

type Build = dyn Fn(&mut Context) -> Result<Box<dyn Workload>>;

/// A latency entry over one engine workload; `check` adds its target.
fn latency(
    name: impl Into<String>,
    ops_per_sample: u32,
    build: impl Fn(&mut Context) -> Result<Box<dyn Workload>> + 'static,
    check: impl Fn(Row) -> Row + 'static,
) -> Entry {
    let build: std::sync::Arc<Build> = std::sync::Arc::new(build);
    let timed_build = std::sync::Arc::clone(&build);
    Entry::new(name, Kind::Latency, move |context, name| {
        let mut workload = build(context)?;
        let latency =
            measure::measure_latency(&mut *workload, context.latency_plan(), ops_per_sample)?;
        Ok(vec![check(latency_row(name, &latency))])
    })
    .timed_by(move |context| Ok(cairn_only(timed_build(context)?)))
}

fn boxed<W: Workload + 'static>(workload: Result<W>) -> Result<Box<dyn Workload>> {
    Ok(Box::new(workload?))
}

/// A fixture of its own for a workload that writes.
fn own_fixture() -> Result<Fixture> {
    Fixture::build(FIXTURE_KEYS, VALUE_BYTES)
}

/// A latency entry with no target.
fn plain(
    name: impl Into<String>,
    ops_per_sample: u32,
    build: impl Fn(&mut Context) -> Result<Box<dyn Workload>> + 'static,
) -> Entry {
    latency(name, ops_per_sample, build, |row| row)
}

/// Every engine-only entry.
pub fn entries(quick: bool) -> Vec<Entry> {
    let cas = |row: Row| row.target(&targets::CAS).goal(&targets::CAS_GOAL);
    let point = POINT_OPS_PER_SAMPLE;
    let mut entries = vec![
        latency(
            "cas/sequential_success",
            point,
            |_| boxed(SequentialSuccess::new(VALUE_BYTES)),
            cas,
        ),
        latency(
            "cas/failure_wrong_version",
            point,
            |_| boxed(FailureWrongVersion::new(VALUE_BYTES)),
            cas,
        ),
        latency(
            "cas/create_new_key",
            point,
            |_| boxed(Ok(CreateNewKey::new(VALUE_BYTES))),
            cas,
        ),
        plain("transaction_commit/single_key_put", 1, |_| {
            boxed(MultiKeyPut::new(&own_fixture()?, 1))
        }),
    ];
    for keys in [3, 5, 10] {
        entries.push(plain(
            format!("transaction_commit/multi_key_put/{keys}"),
            1,
            move |_| boxed(MultiKeyPut::new(&own_fixture()?, keys)),
        ));
    }
    entries.extend([
        plain("transaction_commit/read_modify_write", 1, |_| {
            boxed(ReadModifyWrite::new(&own_fixture()?))
        }),
        plain("snapshot_read/get", point, |context| {
            boxed(SnapshotGet::new(&context.engine_fixture(FIXTURE_KEYS)?))
        }),
        plain("snapshot_read/open_and_get", point, |context| {
            boxed(OpenSnapshotAndGet::new(
                &context.engine_fixture(FIXTURE_KEYS)?,
            ))
        }),
        plain("conflict_detection/write_write_conflict", 1, |_| {
            boxed(ConflictingCommit::new(&own_fixture()?))
        }),
        version_growth(),
    ]);
    // The floor of `peers/get_at_scale`: what a plain single-threaded HashMap costs here.
    for keys in [1_000, super::READ_KEYS_QUICK, super::READ_KEYS] {
        if quick && keys > super::READ_KEYS_QUICK {
            continue;
        }
        let name = format!("get_at_scale/std_hashmap_reference/{keys}");
        entries.push(plain(name, point, move |context| {
            boxed(StdHashMapGet::new(&context.engine_fixture(keys)?))
        }));
    }
    entries.push(thread_history());
    entries.push(strict_put());
    entries.extend(recovery_entries());
    entries
}

/// The one workload a `timed_by` of an engine entry hands out, named `cairn`.
fn cairn_only(workload: Box<dyn Workload>) -> Vec<(String, Timed)> {
    vec![("cairn".to_owned(), Timed::Single(workload))]
}

/// Ratios of engine rows, and of side-by-side rows over the `std::HashMap` reference.
pub fn derived(quick: bool) -> Vec<Derived> {
    let largest = super::read_keys(quick);
    let reference = |keys: usize| format!("get_at_scale/std_hashmap_reference/{keys}");
    let cairn = |keys: usize| format!("peers/get_at_scale/{keys}/cairn-inmemory");
    vec![
        Derived::new(
            format!("{} vs 1000", reference(largest)),
            reference(largest),
            reference(1_000),
            "the same ratio for a plain HashMap: what caches and TLB alone cost",
        ),
        Derived::new(
            format!("get_at_scale/{largest} cairn vs std_hashmap_reference"),
            cairn(largest),
            reference(largest),
            "Cairn get p50 over plain HashMap get p50, same key count",
        ),
    ]
}

/// The CI gate (generous, same-run ratios): a point read against the `std::HashMap`
/// reference, a Strict put against raw fdatasync, and a 100K-entry recovery against its bound.
pub fn gates(quick: bool) -> Vec<(String, Limit)> {
    let largest = super::read_keys(quick);
    let entries = if quick {
        RECOVERY_ENTRIES_QUICK
    } else {
        RECOVERY_ENTRIES
    };
    vec![
        (
            format!("get_at_scale/{largest} cairn vs std_hashmap_reference"),
            GATE_GET_OVER_HASHMAP,
        ),
        (
            "durability/strict_put vs raw_fdatasync".to_owned(),
            GATE_STRICT_OVER_FDATASYNC,
        ),
        (
            format!("recovery/wal_replay/{entries}"),
            if quick {
                GATE_WAL_REPLAY
            } else {
                GATE_WAL_REPLAY_FULL
            },
        ),
        (THREAD_HISTORY_RATIO.to_owned(), GATE_THREAD_HISTORY),
    ]
}

/// Reader threads started and ended between the two put measurements of `thread_history`.
pub const HISTORY_THREADS: usize = 256;
/// The ratio row of `thread_history`.
const THREAD_HISTORY_RATIO: &str = "thread_history/put after vs before 256 threads";
/// Gate: puts after the reader threads over puts before them; the target is 1.5x.
pub const GATE_THREAD_HISTORY: Limit = targets::from(Source::Gate, Bound::AtMost(2.0), "<= 2x");

/// Puts into a read-fixture-sized in-memory database, then [`HISTORY_THREADS`] short-lived
/// reader threads, then the same puts again: their p50s, and the ratio.
fn thread_history() -> Entry {
    Entry::new("thread_history", Kind::Latency, |context, _| {
        let fixture = context.engine_fixture(context.read_keys())?;
        let mut put = Overwrite::new(&fixture)?;
        // One second each, whatever the mode or `--seconds`: the row is about the steady
        // state after the threads are gone. Right after they exit a long-running process
        // pays a transient (not yet profiled; likely the cleanup of exited threads) that a
        // 50 ms measurement would report instead: over 100x for the first tens of ms in a
        // CI run, flat after (docs/benchmarks.md).
        let plan = measure::Plan {
            warm_up: Duration::from_millis(100),
            budget: measure::Budget::Time(Duration::from_secs(1)),
        };
        let before = measure::measure_latency(&mut put, plan, POINT_OPS_PER_SAMPLE)?;
        context.building(&format!("{HISTORY_THREADS} reader threads"));
        read_from_threads(&fixture, HISTORY_THREADS)?;
        context.building_done();
        let after = measure::measure_latency(&mut put, plan, POINT_OPS_PER_SAMPLE)?;
        let keys = fixture.key_count();
        Ok(vec![
            latency_row(&format!("thread_history/put_before/{keys}"), &before),
            latency_row(
                &format!("thread_history/put_after_256_threads/{keys}"),
                &after,
            ),
            Row::ratio(
                THREAD_HISTORY_RATIO,
                count_as_f64(after.p50_ns),
                count_as_f64(before.p50_ns),
                "put p50 after 256 short-lived reader threads over put p50 before them",
            )
            .target(&targets::THREAD_HISTORY),
        ])
    })
    .timed_by(|context| {
        let fixture = context.engine_fixture(context.read_keys())?;
        read_from_threads(&fixture, HISTORY_THREADS)?;
        Ok(cairn_only(Box::new(Overwrite::new(&fixture)?)))
    })
}

/// Gate: Cairn's get over a plain `HashMap`'s at the same size. Measured 1.2x (1M keys) and
/// 1.6x to 2.65x (100K keys, 0.05 s rows, in CI-mode runs) in December 2026; a build whose
/// get was 1 µs slower measured 4.47x and fails.
pub const GATE_GET_OVER_HASHMAP: Limit = targets::from(Source::Gate, Bound::AtMost(4.0), "<= 4x");
/// Gate: a Strict put over a raw fdatasync; the target is 1.5x, twice it fails.
pub const GATE_STRICT_OVER_FDATASYNC: Limit =
    targets::from(Source::Gate, Bound::AtMost(3.0), "<= 3x");
/// Gate: WAL replay of 100K single-put commits (quick mode's size). Measured 155 ms on an
/// idle machine in December 2026 (the 1M target, 300 ms, is not met yet); twice that fails.
pub const GATE_WAL_REPLAY: Limit = targets::from(Source::Gate, Bound::Below(320e6), "< 320 ms");
/// Gate: WAL replay of 1M commits (full mode): measured 1.44 s in November 2026.
pub const GATE_WAL_REPLAY_FULL: Limit = targets::from(Source::Gate, Bound::Below(3.2e9), "< 3.2 s");

/// Exactly [`HOT_KEY_PUTS`] overwrites of one key, then the versions it retains.
fn version_growth() -> Entry {
    Entry::new("version_growth/hot_key_put", Kind::Other, |_, name| {
        let mut hot = HotKeyPut::new(VALUE_BYTES);
        let plan = measure::Plan {
            warm_up: Duration::ZERO,
            budget: measure::Budget::Runs(HOT_KEY_PUTS),
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
    })
    .timed_by(|_| Ok(cairn_only(Box::new(HotKeyPut::new(VALUE_BYTES)))))
}

/// The Strict put and the raw fdatasync, measured in alternation so that both see the same
/// disk, and their ratio. Throughput is 1 / the mean latency of the same measurement.
fn strict_put() -> Entry {
    Entry::new("durability/strict_put", Kind::Latency, |context, name| {
        let mut raw = RawFdatasync::new()?;
        let mut put = ModePut::new(Durability::Strict, FIXTURE_KEYS, VALUE_BYTES)?;
        let (raw, put) = measure_alternating(&mut raw, &mut put, context.latency_plan())?;
        let ops_per_sec = if put.mean_ns > 0.0 {
            1e9 / put.mean_ns
        } else {
            0.0
        };
        let throughput = Throughput {
            runs: put.samples,
            engine_ops: put.samples,
            measured: Duration::from_secs_f64(
                (put.mean_ns * count_as_f64(put.samples) / 1e9).max(0.0),
            ),
            ops_per_sec,
        };
        Ok(vec![
            latency_row("durability/raw_fdatasync", &raw).note(
                "128-byte pwrite at the next offset of a 64 MiB preallocated file, then \
                 fdatasync: the floor of a Strict commit; timed in alternation with strict_put",
            ),
            latency_row(name, &put),
            Row::throughput(&format!("{name}/throughput"), &throughput)
                .note("1 / mean latency of the Strict puts timed for durability/strict_put"),
            Row::ratio(
                "durability/strict_put vs raw_fdatasync",
                count_as_f64(put.p50_ns),
                count_as_f64(raw.p50_ns),
                "Strict put p50 over raw fdatasync p50, timed in alternation",
            )
            .target(&targets::STRICT_OVER_FDATASYNC)
            .goal(&targets::STRICT_OVER_FDATASYNC_GOAL),
        ])
    })
    .timed_by(|_| {
        Ok(vec![
            (
                "raw_fdatasync".to_owned(),
                Timed::Single(Box::new(RawFdatasync::new()?)),
            ),
            (
                "strict_put".to_owned(),
                Timed::Single(Box::new(ModePut::new(
                    Durability::Strict,
                    FIXTURE_KEYS,
                    VALUE_BYTES,
                )?)),
            ),
        ])
    })
}

/// A latency row of whole opens or checkpoints, annotated with the number of runs and the
/// median of the engine's own reported durations.
fn recovery_row(name: &str, latency: &Latency, figures: &[RecoveryFigures]) -> Row {
    let reported = recovery::median(figures.iter().map(|figures| figures.reported));
    Row::latency(name, latency).annotate(&format!(
        "{} runs; engine report p50 {}",
        latency.samples,
        format_nanos(u64::try_from(reported.as_nanos()).unwrap_or(u64::MAX))
    ))
}

/// One recovery entry: `build` makes the workload for the run's sizes and names them.
fn recovery_entry<W: Workload + 'static>(
    name: &'static str,
    explained: &'static str,
    build: fn(usize, usize) -> Result<(W, String)>,
    figures: fn(&W) -> &[RecoveryFigures],
    target: Limit,
    goal: Limit,
) -> Entry {
    Entry::new(name, Kind::Latency, move |context, name| {
        context.building("its files");
        let (mut workload, size) = build_sized(context, build)?;
        context.building_done();
        let plan = context.runs_plan(RECOVERY_RUNS.0, RECOVERY_RUNS.1);
        let latency = measure::measure_latency(&mut workload, plan, 1)?;
        let row = recovery_row(&format!("{name}/{size}"), &latency, figures(&workload));
        Ok(vec![if context.quick() {
            row.note(&format!(
                "{explained}. Quick mode: a tenth of the 1M entries; not checked"
            ))
        } else {
            row.target(&target).goal(&goal).note(explained)
        }])
    })
    .timed_by(move |context| Ok(cairn_only(Box::new(build_sized(context, build)?.0))))
}

/// `build` called with the run's recovery sizes: entries, and WAL records after a snapshot.
fn build_sized<W>(context: &Context, build: fn(usize, usize) -> Result<W>) -> Result<W> {
    if context.quick() {
        build(RECOVERY_ENTRIES_QUICK, RECOVERY_WAL_RECORDS_QUICK)
    } else {
        build(RECOVERY_ENTRIES, RECOVERY_WAL_RECORDS)
    }
}

fn recovery_entries() -> Vec<Entry> {
    vec![
        recovery_entry(
            "recovery/wal_replay",
            "Db::open of a WAL of N single-put commits, no snapshot, warm page cache",
            |entries, _| Ok((Reopen::wal_replay(entries)?, entries.to_string())),
            Reopen::figures,
            targets::WAL_REPLAY,
            targets::WAL_REPLAY,
        ),
        recovery_entry(
            "recovery/snapshot_creation",
            "db.checkpoint() of N keys: write, fsync, rename, fsync dir, drop what it made \
             redundant",
            |entries, _| Ok((SnapshotCreation::new(entries)?, entries.to_string())),
            SnapshotCreation::figures,
            targets::SNAPSHOT_WRITE,
            targets::SNAPSHOT_WRITE_GOAL,
        ),
        recovery_entry(
            "recovery/snapshot_load",
            "Db::open of a snapshot of N keys with no WAL record after it, warm page cache",
            |entries, _| Ok((Reopen::snapshot_load(entries)?, entries.to_string())),
            Reopen::figures,
            targets::SNAPSHOT_LOAD,
            targets::SNAPSHOT_LOAD_GOAL,
        ),
        recovery_entry(
            "recovery/snapshot_wal_recovery",
            "Db::open of a snapshot of N keys plus M overwrites in the WAL after it",
            |entries, records| {
                let size = format!("{entries}+{records}");
                Ok((Reopen::snapshot_wal(entries, records)?, size))
            },
            Reopen::figures,
            targets::SNAPSHOT_WAL_RECOVERY,
            targets::SNAPSHOT_WAL_RECOVERY_GOAL,
        ),
        wal_truncation(),
    ]
}

/// The torn-tail open, the same size in both modes (so always checked), next to an intact
/// open of the same WAL so the repair's own cost shows.
fn wal_truncation() -> Entry {
    Entry::new("recovery/wal_truncation", Kind::Latency, |context, name| {
        let plan = context.runs_plan(RECOVERY_RUNS.0, RECOVERY_RUNS.1);
        let mut intact = Reopen::wal_replay(TORN_TAIL_ENTRIES)?;
        let intact = measure::measure_latency(&mut intact, plan, 1)?;
        let mut torn = Reopen::torn_tail(TORN_TAIL_ENTRIES)?;
        let latency = measure::measure_latency(&mut torn, plan, 1)?;
        let row = recovery_row(
            &format!("{name}/{TORN_TAIL_ENTRIES}"),
            &latency,
            torn.figures(),
        )
        .annotate(&format!("intact open p50 {}", format_nanos(intact.p50_ns)))
        .target(&targets::WAL_TRUNCATION)
        .goal(&targets::WAL_TRUNCATION_GOAL)
        .note(
            "Db::open of a WAL of N commits whose last frame was cut in half: torn_tail \
                 checked, the segment cut back and synced",
        );
        Ok(vec![row])
    })
    .timed_by(|_| Ok(cairn_only(Box::new(Reopen::torn_tail(TORN_TAIL_ENTRIES)?))))
}

//! The engine-only entries (fdatasync floor, recovery, version pruning, snapshots, conflicts,
//! version-CAS) and the `std::HashMap` reference. Recovery rows carry their size in the name.

use super::side_by_side::{latency_row, POINT_OPS_PER_SAMPLE};
use super::{by_mode, Context, Derived, Entry, Kind, Timed};
use crate::measure::{self, count_as_f64, median, Budget, Latency, Plan, Throughput};
use crate::report::{format_nanos, Row};
use crate::sizes::{
    FIXTURE_KEYS, RECOVERY_ENTRIES, RECOVERY_ENTRIES_QUICK, RECOVERY_WAL_RECORDS,
    RECOVERY_WAL_RECORDS_QUICK, TORN_TAIL_ENTRIES, VALUE_BYTES,
};
use crate::targets::{self as t, Bound, Limit, Source};
use crate::workloads::durability::{
    RawFdatasync, RawFile, StrictBatches, RAW_BATCH_WRITE_BYTES, STRICT_BATCH_CHECKPOINT_EVERY,
};
use crate::workloads::engine::{
    read_from_threads, Commit, Commits, ConflictingCommit, CreateNewKey, SnapshotGet,
    StdHashMapGet, VersionCas,
};
use crate::workloads::recovery::{Recovery, SnapshotFloor};
use crate::workloads::{Fixture, Result, Workload};
use std::sync::Arc;
use std::time::Duration;

const HOT_KEY_PUTS: u64 = 1_000_000;
/// Timed opens (or checkpoints) per recovery row, full and quick.
const RECOVERY_RUNS: (u64, u64) = (5, 3);
/// Reader threads started and ended between the two put measurements of `thread_history`.
pub const HISTORY_THREADS: usize = 256;
const THREAD_HISTORY_RATIO: &str = "thread_history/put after vs before 256 threads";

/// Gate: puts after the reader threads over puts before them; the target is 1.5x.
pub const GATE_THREAD_HISTORY: Limit = t::from(Source::Gate, Bound::AtMost(2.0), "<= 2x");
/// Gate: Cairn's get over a plain `HashMap`'s at the same size. Measured 1.2x (1M keys) and
/// 1.6x to 2.65x (100K keys, 0.05 s rows, in CI-mode runs) in December 2026; a build whose
/// get was 1 µs slower measured 4.47x and fails.
pub const GATE_GET_OVER_HASHMAP: Limit = t::from(Source::Gate, Bound::AtMost(4.0), "<= 4x");
/// Gate: a Strict put over a raw fdatasync; the target is 1.5x, twice it fails.
pub const GATE_STRICT_OVER_FDATASYNC: Limit = t::from(Source::Gate, Bound::AtMost(3.0), "<= 3x");
/// Gate: WAL replay of 100K single-put commits (quick mode's size). Measured 155 ms on an
/// idle machine in December 2026 (the 1M target, 300 ms, is not met yet); twice that fails.
pub const GATE_WAL_REPLAY: Limit = t::from(Source::Gate, Bound::Below(320e6), "< 320 ms");
/// Gate: WAL replay of 1M commits (full mode): measured 1.44 s in November 2026.
pub const GATE_WAL_REPLAY_FULL: Limit = t::from(Source::Gate, Bound::Below(3.2e9), "< 3.2 s");

/// A latency entry over one engine workload, with the CAS target and goal if `cas`.
fn latency(
    name: impl Into<String>,
    ops_per_sample: u32,
    cas: bool,
    build: impl Fn(&mut Context) -> Result<Box<dyn Workload>> + 'static,
) -> Entry {
    let build = Arc::new(build);
    let timed_build = Arc::clone(&build);
    Entry::new(name, Kind::Latency, move |context, name| {
        let plan = context.latency_plan();
        let latency = measure::measure_latency(&mut *build(context)?, plan, ops_per_sample)?;
        let (target, goal) = (cas.then_some(&t::CAS), cas.then_some(&t::CAS_GOAL));
        Ok(vec![latency_row(name, &latency).check(target, goal)])
    })
    .timed_by(move |context| Ok(cairn_only(timed_build(context)?)))
}

fn boxed<W: Workload + 'static>(workload: Result<W>) -> Result<Box<dyn Workload>> {
    Ok(Box::new(workload?))
}

fn own_fixture() -> Result<Fixture> {
    Fixture::build(FIXTURE_KEYS, VALUE_BYTES)
}

fn cairn_only(workload: Box<dyn Workload>) -> Vec<(String, Timed)> {
    vec![("cairn".to_owned(), Timed::Single(workload))]
}

/// Every engine-only entry.
#[rustfmt::skip]
pub fn entries(quick: bool) -> Vec<Entry> {
    let point = POINT_OPS_PER_SAMPLE;
    let commits = |commit| move |_: &mut Context| boxed(Commits::new(&own_fixture()?, commit));
    let snapshot = |context: &mut Context| context.engine_fixture(FIXTURE_KEYS);
    let mut entries = vec![
        latency("cas/sequential_success", point, true, |_| boxed(VersionCas::success(VALUE_BYTES))),
        latency("cas/failure_wrong_version", point, true, |_| {
            boxed(VersionCas::wrong_version(VALUE_BYTES))
        }),
        latency("cas/create_new_key", point, true, |_| boxed(Ok(CreateNewKey::new(VALUE_BYTES)))),
        latency("transaction_commit/single_key_put", 1, false, commits(Commit::Transaction(1))),
    ];
    for keys in [3, 5, 10] {
        let name = format!("transaction_commit/multi_key_put/{keys}");
        entries.push(latency(name, 1, false, commits(Commit::Transaction(keys))));
    }
    entries.extend([
        latency("transaction_commit/read_modify_write", 1, false, commits(Commit::ReadModifyWrite)),
        latency("snapshot_read/get", point, false, move |c| boxed(SnapshotGet::new(&snapshot(c)?))),
        latency("snapshot_read/open_and_get", point, false, move |c| {
            boxed(SnapshotGet::open_each(&snapshot(c)?))
        }),
        latency("conflict_detection/write_write_conflict", 1, false, |_| {
            boxed(ConflictingCommit::new(&own_fixture()?))
        }),
        version_growth(),
    ]);
    // The floor of `peers/get_at_scale`: what a plain single-threaded HashMap costs here.
    for keys in [1_000, super::READ_KEYS_QUICK, super::READ_KEYS] {
        if keys <= super::read_keys(quick) {
            let name = format!("get_at_scale/std_hashmap_reference/{keys}");
            entries.push(latency(name, point, false, move |context| {
                boxed(StdHashMapGet::new(&context.engine_fixture(keys)?))
            }));
        }
    }
    entries.extend([
        thread_history(),
        strict_put(),
        raw_batch_sync(),
        strict_batches(),
    ]);
    for (name, explained, target, goal) in [
        ("wal_replay", "Db::open of a WAL of N single-put commits, no snapshot, warm page cache",
            t::WAL_REPLAY, t::WAL_REPLAY),
        ("snapshot_creation", "db.checkpoint() of N keys: write, fsync, rename, fsync dir, drop \
            what it made redundant",
            t::SNAPSHOT_WRITE, t::SNAPSHOT_WRITE_GOAL),
        ("snapshot_load",
            "Db::open of a snapshot of N keys with no WAL record after it, warm page cache",
            t::SNAPSHOT_LOAD, t::SNAPSHOT_LOAD_GOAL),
        ("snapshot_wal_recovery",
            "Db::open of a snapshot of N keys plus M overwrites in the WAL after it",
            t::SNAPSHOT_WAL_RECOVERY, t::SNAPSHOT_WAL_RECOVERY_GOAL),
        ("close", "db.close() and the drop of its last handle, N keys written in a random order",
            t::CLOSE, t::CLOSE),
    ] {
        entries.push(recovery_entry(name, explained, target, goal));
    }
    entries.push(wal_truncation());
    entries
}

/// Ratios of engine rows, and of side-by-side rows over the `std::HashMap` reference.
#[rustfmt::skip]
pub fn derived(quick: bool) -> Vec<Derived> {
    let largest = super::read_keys(quick);
    let reference = |keys: usize| format!("get_at_scale/std_hashmap_reference/{keys}");
    vec![
        Derived::new(format!("{} vs 1000", reference(largest)),
            [reference(largest), reference(1_000)],
            "the same ratio for a plain HashMap: what caches and TLB alone cost", None, None),
        Derived::new(format!("get_at_scale/{largest} cairn vs std_hashmap_reference"),
            [format!("peers/get_at_scale/{largest}/cairn-inmemory"), reference(largest)],
            "Cairn get p50 over plain HashMap get p50, same key count", None, None),
    ]
}

/// The CI gate: generous bounds, mostly on same-run ratios.
#[rustfmt::skip]
pub fn gates(quick: bool) -> Vec<(String, Limit)> {
    let largest = super::read_keys(quick);
    let quick_replay = (RECOVERY_ENTRIES_QUICK, GATE_WAL_REPLAY);
    let (entries, replay) = by_mode(quick, quick_replay, (RECOVERY_ENTRIES, GATE_WAL_REPLAY_FULL));
    vec![
        (format!("get_at_scale/{largest} cairn vs std_hashmap_reference"), GATE_GET_OVER_HASHMAP),
        ("durability/strict_put vs raw_fdatasync".to_owned(), GATE_STRICT_OVER_FDATASYNC),
        (format!("recovery/wal_replay/{entries}"), replay),
        (THREAD_HISTORY_RATIO.to_owned(), GATE_THREAD_HISTORY),
    ]
}

/// Puts, then [`HISTORY_THREADS`] short-lived reader threads, then the same puts again.
fn thread_history() -> Entry {
    Entry::new("thread_history", Kind::Latency, |context, _| {
        let fixture = context.engine_fixture(context.read_keys())?;
        let mut put = Commits::new(&fixture, Commit::Put)?;
        // One second each, whatever the mode or `--seconds`: the row is about the steady
        // state. Right after the threads exit a process pays a transient (over 100x for the
        // first tens of ms in a CI run, flat after) that a 50 ms row would report instead.
        let second = Budget::Time(Duration::from_secs(1));
        let plan = Plan::new(Duration::from_millis(100), second);
        let before = measure::measure_latency(&mut put, plan, POINT_OPS_PER_SAMPLE)?;
        context.building(&format!("{HISTORY_THREADS} reader threads"));
        read_from_threads(&fixture, HISTORY_THREADS)?;
        context.building_done();
        let after = measure::measure_latency(&mut put, plan, POINT_OPS_PER_SAMPLE)?;
        let (keys, after_name) = (fixture.key_count(), "thread_history/put_after_256_threads");
        let explained = "put p50 after 256 short-lived reader threads over put p50 before them";
        let (after_p50, before_p50) = (count_as_f64(after.p50_ns), count_as_f64(before.p50_ns));
        let ratio = Row::ratio(THREAD_HISTORY_RATIO, after_p50, before_p50, explained);
        Ok(vec![
            latency_row(&format!("thread_history/put_before/{keys}"), &before),
            latency_row(&format!("{after_name}/{keys}"), &after),
            ratio.target(&t::THREAD_HISTORY),
        ])
    })
    .timed_by(|context| {
        let fixture = context.engine_fixture(context.read_keys())?;
        read_from_threads(&fixture, HISTORY_THREADS)?;
        Ok(cairn_only(Box::new(Commits::new(&fixture, Commit::Put)?)))
    })
}

/// Exactly [`HOT_KEY_PUTS`] overwrites of one key, then the versions it retains.
fn version_growth() -> Entry {
    Entry::new("version_growth/hot_key_put", Kind::Other, |_, name| {
        let mut hot = hot_key()?;
        let plan = Plan::new(Duration::ZERO, Budget::Runs(HOT_KEY_PUTS));
        let latency = measure::measure_latency(&mut hot, plan, POINT_OPS_PER_SAMPLE)?;
        let puts = latency.samples * u64::from(latency.ops_per_sample);
        let explained = format!("stats().versions_retained after {puts} puts to one key");
        let versions = hot.versions_retained();
        let versions = Row::versions("version_growth/versions_retained", versions, &explained);
        let bound = Some(&t::VERSIONS_RETAINED);
        Ok(vec![
            latency_row(name, &latency),
            versions
                .check(bound, bound)
                .annotate(&format!("after {puts} puts")),
        ])
    })
    .timed_by(|_| Ok(cairn_only(Box::new(hot_key()?))))
}

fn hot_key() -> Result<Commits> {
    Commits::new(&Fixture::build(1, VALUE_BYTES)?, Commit::Put)
}

/// The latency plan for each of two workloads timed in a round robin: a round robin's time
/// budget is per workload, so half each keeps the pair to the plan.
fn pair_plan(context: &Context) -> Plan {
    let Plan { warm_up, budget } = context.latency_plan();
    let budget = match budget {
        Budget::Time(limit) => Budget::Time(limit / 2),
        runs @ Budget::Runs(_) => runs,
    };
    Plan::new(warm_up / 2, budget)
}

/// The Strict put and the raw fdatasync, timed in alternation, and their ratio.
fn strict_put() -> Entry {
    Entry::new("durability/strict_put", Kind::Latency, |context, name| {
        let (mut raw, mut put) = (RawFdatasync::new()?, Commits::strict()?);
        let pair: &mut [&mut dyn Workload] = &mut [&mut raw, &mut put];
        let plan = pair_plan(context);
        let latencies = measure::measure_latency_round_robin(pair, plan, 1, Some(Duration::ZERO))?;
        let [raw, put]: [Latency; 2] = latencies
            .try_into()
            .map_err(|_| super::nothing_to_measure("strict_put"))?;
        let seconds = put.mean_ns * count_as_f64(put.samples) / 1e9;
        let measured = Duration::from_secs_f64(seconds.max(0.0));
        let throughput = Throughput::new(put.samples, put.samples, measured);
        let (put_p50, raw_p50) = (count_as_f64(put.p50_ns), count_as_f64(raw.p50_ns));
        let explained = "Strict put p50 over raw fdatasync p50, timed in alternation";
        let ratio_name = format!("{name} vs raw_fdatasync");
        let ratio = Row::ratio(&ratio_name, put_p50, raw_p50, explained);
        let bounds = (&t::STRICT_OVER_FDATASYNC, &t::STRICT_OVER_FDATASYNC_GOAL);
        let raw_note = "128-byte pwrite at the next offset of a 64 MiB preallocated file, then \
            fdatasync: the floor of a Strict commit; timed in alternation with strict_put";
        Ok(vec![
            latency_row("durability/raw_fdatasync", &raw).note(raw_note),
            latency_row(name, &put),
            Row::throughput(&format!("{name}/throughput"), &throughput)
                .note("1 / mean latency of the Strict puts timed for durability/strict_put"),
            ratio.check(Some(bounds.0), Some(bounds.1)),
        ])
    })
    .timed_by(|_| {
        let raw = Timed::Single(Box::new(RawFdatasync::new()?));
        let put = Timed::Single(Box::new(Commits::strict()?));
        Ok(vec![
            ("raw_fdatasync".into(), raw),
            ("strict_put".into(), put),
        ])
    })
}

/// A durable batch's write and fdatasync into a sparse file and into one already written,
/// timed in alternation: what a fresh WAL segment's holes cost every Strict batch.
fn raw_batch_sync() -> Entry {
    let name = "durability/raw_fdatasync_batch";
    Entry::new(name, Kind::Latency, |context, name| {
        let mut sparse = RawFdatasync::with(RAW_BATCH_WRITE_BYTES, RawFile::Sparse)?;
        let mut written = RawFdatasync::with(RAW_BATCH_WRITE_BYTES, RawFile::Written)?;
        let pair: &mut [&mut dyn Workload] = &mut [&mut sparse, &mut written];
        let plan = pair_plan(context);
        let latencies = measure::measure_latency_round_robin(pair, plan, 1, Some(Duration::ZERO))?;
        let [sparse, written]: [Latency; 2] = latencies
            .try_into()
            .map_err(|_| super::nothing_to_measure("raw_fdatasync_batch"))?;
        let note = "137,000-byte pwrite at the next offset of a 64 MiB file, then fdatasync; \
            the two files timed in alternation";
        let ratio = Row::ratio(
            &format!("{name} sparse over written"),
            count_as_f64(sparse.p50_ns),
            count_as_f64(written.p50_ns),
            "p50 into a sparse (set_len) file over p50 into a file written beforehand",
        );
        Ok(vec![
            latency_row(&format!("{name}/sparse"), &sparse)
                .note(&format!("{note}; the file made with set_len (holes)")),
            latency_row(&format!("{name}/written"), &written).note(&format!(
                "{note}; the file written with zeros and synced first"
            )),
            ratio,
        ])
    })
}

/// Strict 1,000-key batches into recycled WAL segments and into new (sparse) ones, timed in
/// alternation: what segment recycling saves a durable batch in a database past its first
/// checkpoints.
fn strict_batches() -> Entry {
    let name = "durability/strict_batch_1000";
    Entry::new(name, Kind::Latency, |context, name| {
        context.building("two databases past their first checkpoints");
        let (mut recycled, mut fresh) = StrictBatches::pair()?;
        context.building_done();
        let pair: &mut [&mut dyn Workload] = &mut [&mut recycled, &mut fresh];
        let plan = pair_plan(context);
        let latencies = measure::measure_latency_round_robin(pair, plan, 1, Some(Duration::ZERO))?;
        let [recycled, fresh]: [Latency; 2] = latencies
            .try_into()
            .map_err(|_| super::nothing_to_measure("strict_batch_1000"))?;
        let note = format!(
            "WriteBatch of 1,000 random puts (16-byte keys, 100-byte values) into a Strict \
             database of 10,000 keys with 16 MiB WAL segments, a checkpoint every \
             {STRICT_BATCH_CHECKPOINT_EVERY} batches; the two databases timed in alternation"
        );
        let ratio = Row::ratio(
            &format!("{name} new over recycled"),
            count_as_f64(fresh.p50_ns),
            count_as_f64(recycled.p50_ns),
            "p50 with every WAL segment a new, sparse file over p50 with retired segments \
             recycled (the default)",
        );
        Ok(vec![
            latency_row(&format!("{name}/recycled"), &recycled)
                .note(&format!("{note}; retired segments recycled (the default)")),
            latency_row(&format!("{name}/new_segments"), &fresh)
                .note(&format!("{note}; wal_recycle_segments(0)")),
            ratio,
        ])
    })
}

/// Times whole opens or checkpoints of `recovery`, noting the engine's own reported p50.
fn measure_recovery(context: &Context, name: &str, recovery: &mut Recovery) -> Result<Row> {
    let plan = context.runs_plan(RECOVERY_RUNS.0, RECOVERY_RUNS.1);
    let latency = measure::measure_latency(recovery, plan, 1)?;
    let reported = format_nanos(measure::nanos(median(recovery.reported().iter().copied())));
    let runs = latency.samples;
    let annotation = format!("{runs} runs; engine report p50 {reported}");
    Ok(Row::latency(name, &latency).annotate(&annotation))
}

/// `recovery/<name>`, at the run's recovery sizes: entries, and WAL records after a snapshot.
fn recovery_entry(name: &'static str, note: &'static str, target: Limit, goal: Limit) -> Entry {
    let build = move |context: &Context| -> Result<(Recovery, String)> {
        let quick = (RECOVERY_ENTRIES_QUICK, RECOVERY_WAL_RECORDS_QUICK);
        let full = (RECOVERY_ENTRIES, RECOVERY_WAL_RECORDS);
        let (entries, records) = by_mode(context.quick, quick, full);
        let size = entries.to_string();
        Ok(match name {
            "wal_replay" => (Recovery::wal_replay(entries)?, size),
            "snapshot_creation" => (Recovery::checkpoint(entries)?, size),
            "snapshot_load" => (Recovery::snapshot_load(entries)?, size),
            "close" => (Recovery::close(entries)?, size),
            _ => {
                let recovery = Recovery::snapshot_wal(entries, records)?;
                (recovery, format!("{size}+{records}"))
            }
        })
    };
    let entry = format!("recovery/{name}");
    let entry = Entry::new(entry, Kind::Latency, move |context, name| {
        context.building("its files");
        let (mut recovery, size) = build(context)?;
        context.building_done();
        let mut row = measure_recovery(context, &format!("{name}/{size}"), &mut recovery)?;
        let mut rows = Vec::new();
        if name.ends_with("snapshot_creation") {
            // The disk's floor for a file of the snapshot's size, measured right after.
            let mut floor = SnapshotFloor::new(recovery.snapshot_bytes()?)?;
            let plan = context.runs_plan(RECOVERY_RUNS.0, RECOVERY_RUNS.1);
            let latency = measure::measure_latency(&mut floor, plan, 1)?;
            let floor_ns = measure::count_as_f64(latency.p50_ns.max(1));
            let ratio = row
                .p50
                .map_or(0.0, |p50| measure::count_as_f64(p50) / floor_ns);
            row = row.annotate(&format!("{ratio:.2}x the disk floor"));
            let floor_note = "a new file of the snapshot's size written in 256 KiB pwrites and \
                synced once: the disk's floor under the checkpoint above, measured right after it";
            rows.push(
                Row::latency(&format!("{name}_disk_floor/{size}"), &latency).note(floor_note),
            );
        }
        let quick = format!("{note}. Quick mode: a tenth of the 1M entries; not checked");
        let full = row.clone().check(Some(&target), Some(&goal)).note(note);
        rows.insert(0, by_mode(context.quick, row.note(&quick), full));
        Ok(rows)
    });
    entry.timed_by(move |context| Ok(cairn_only(Box::new(build(context)?.0))))
}

/// The torn-tail open, the same size in both modes, next to an intact open of the same WAL.
fn wal_truncation() -> Entry {
    Entry::new("recovery/wal_truncation", Kind::Latency, |context, name| {
        let plan = context.runs_plan(RECOVERY_RUNS.0, RECOVERY_RUNS.1);
        let mut intact = Recovery::wal_replay(TORN_TAIL_ENTRIES)?;
        let intact = measure::measure_latency(&mut intact, plan, 1)?;
        let mut torn = torn_tail()?;
        let row = measure_recovery(context, &format!("{name}/{TORN_TAIL_ENTRIES}"), &mut torn)?;
        let row = row.annotate(&format!("intact open p50 {}", format_nanos(intact.p50_ns)));
        let note = "Db::open of a WAL of N commits whose last frame was cut in half: torn_tail \
            checked, the segment cut back and synced";
        let bounds = (&t::WAL_TRUNCATION, &t::WAL_TRUNCATION_GOAL);
        Ok(vec![row.check(Some(bounds.0), Some(bounds.1)).note(note)])
    })
    .timed_by(|_| Ok(cairn_only(Box::new(torn_tail()?))))
}

fn torn_tail() -> Result<Recovery> {
    Recovery::torn_tail(TORN_TAIL_ENTRIES)
}

//! The `memtable_*` entries: the write-behind repository's benchmark groups, over a no-op
//! persister (the memtable alone) and, for inserts and rotation, over real stores (the Cairn
//! engine in Strict mode, `SQLite`). Each row reports the p50/p99 latency of its operation and
//! a throughput row derived from the mean; concurrent rows report throughput.

use super::side_by_side::latency_row;
use super::{Context, Derived, Entry, Kind};
use crate::measure::{self, count_as_f64, Throughput};
use crate::report::Row;
use crate::targets::{self as t, Limit};
use crate::workloads::memtable::{
    Backend, Bench, Concurrent, Deletes, DirectInserts, FloorInserts, Inserts, MokaGets, OnFilled,
    Op,
};
use crate::workloads::{Result, Workload, WorkloadError};
use cairn_memtable::{DbPersister, WalSync};
use cairn_testkit::TempDir;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records a read-side fixture holds.
const FILLED_KEYS: u64 = 10_000;
/// Rotation threshold of most rows: large enough that rotation is rare.
const ROTATE_BYTES: usize = 4 << 20;
/// Rotation threshold of the rotation rows: a rotation every few hundred inserts.
const ROTATE_BYTES_SMALL: usize = 64 << 10;

/// A direct-insert workload and the directory its database lives in.
struct DirectOwned {
    inserts: DirectInserts,
    _dir: TempDir,
}

impl Workload for DirectOwned {
    fn run_op(&mut self) -> Result<()> {
        self.inserts.run_op()
    }

    fn engine_ops_per_run(&self) -> u64 {
        self.inserts.engine_ops_per_run()
    }
}

/// The latency row of `workload`'s operation and a throughput row from its mean.
fn latency_and_rate(
    context: &Context,
    name: &str,
    workload: &mut dyn Workload,
    ops_per_sample: u32,
) -> Result<Vec<Row>> {
    let latency = measure::measure_latency(workload, context.latency_plan(), ops_per_sample)?;
    Ok(rate_rows(name, workload, &latency))
}

/// The latency row of a measured workload and a throughput row from its mean.
fn rate_rows(name: &str, workload: &dyn Workload, latency: &measure::Latency) -> Vec<Row> {
    // Each sample is the mean of `ops_per_sample` operations, each of `per_run` engine ops.
    let (per_run, grouped) = (
        workload.engine_ops_per_run(),
        u64::from(latency.ops_per_sample.max(1)),
    );
    let operations = latency.samples.saturating_mul(grouped);
    let seconds = latency.mean_ns * count_as_f64(operations) / 1e9;
    let measured = Duration::from_secs_f64(seconds.max(0.0));
    let ops = operations.saturating_mul(per_run);
    let throughput = Throughput::new(latency.samples, ops, measured);
    let rate = Row::throughput(&format!("{name}/throughput"), &throughput)
        .note("operations over the mean latency of the samples timed for the row above");
    let rate = match throughput_target(name) {
        Some(target) => rate.target(target),
        None => rate,
    };
    vec![latency_row(name, latency), rate]
}

/// The target of a row's throughput, by the row's name.
fn throughput_target(name: &str) -> Option<&'static Limit> {
    let inserts = name.starts_with("memtable_sequential_inserts/") && name.ends_with("/noop");
    match name {
        _ if inserts => Some(&t::MEMTABLE_INSERT),
        "memtable_get_operations/noop" => Some(&t::MEMTABLE_GET),
        "memtable_index_lookups/noop" => Some(&t::MEMTABLE_INDEX),
        "memtable_delete_operations/noop" | "memtable_update_operations/noop" => {
            Some(&t::MEMTABLE_WRITE)
        }
        _ => None,
    }
}

/// Inserts with the Buffered write-ahead log over inserts without it, and inserts over their
/// floor (the same entries in bare `std` collections).
pub fn derived(_quick: bool) -> Vec<Derived> {
    let row = |store: &str| format!("memtable_sequential_inserts/1000/{store}");
    let explained = "p50 of 1,000 inserts with the Buffered write-ahead log over without it";
    let name = "memtable_sequential_inserts/1000 wal-buffered vs noop";
    let wal = Derived::new(
        name,
        [row("wal-buffered"), row("noop")],
        explained,
        Some(t::MEMTABLE_WAL),
        None,
    );
    let floor = Derived::new(
        "memtable_sequential_inserts/1000 noop vs floor",
        [row("noop"), row("floor")],
        "p50 of 1,000 memtable inserts over the same entries written into bare std collections",
        None,
        None,
    );
    vec![wal, floor]
}

fn single(
    name: String,
    ops_per_sample: u32,
    build: impl Fn(&mut Context) -> Result<Box<dyn Workload>> + 'static,
) -> Entry {
    Entry::new(name, Kind::Latency, move |context, name| {
        let mut workload = build(context)?;
        latency_and_rate(context, name, &mut *workload, ops_per_sample)
    })
}

fn noop(rotate_bytes: usize) -> Result<Bench> {
    Bench::open(Backend::Noop, rotate_bytes, None)
}

fn cairn_strict(rotate_bytes: usize) -> Result<Bench> {
    let dir = Arc::new(TempDir::new("bench-memtable-db"));
    let options = cairn::Options::new(dir.path()).durability(cairn::Durability::Strict);
    let db = cairn::Db::open(options)?;
    let persister = Arc::new(DbPersister::new(db, Vec::new()));
    Bench::open(Backend::Persister(persister, Some(dir)), rotate_bytes, None)
}

fn sqlite(rotate_bytes: usize) -> Result<Bench> {
    let dir = Arc::new(TempDir::new("bench-memtable-sqlite"));
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| WorkloadError::io("memtable", "start a runtime", &error))?;
    let store = runtime.block_on(cairn_kv::SqliteStore::open(
        Some(dir.path().join("kv.sqlite3")),
        cairn_kv::SqliteSynchronous::Normal,
    ))?;
    let scope = cairn_kv::Scope::new("bench", "memtable")?;
    let persister = cairn_memtable::KvPersister::new(Arc::new(store), scope)
        .map_err(|error| WorkloadError::client("cairn-memtable", error))?;
    Bench::open(
        Backend::Persister(Arc::new(persister), Some(dir)),
        rotate_bytes,
        None,
    )
}

/// Single inserts while the memtable rotates every 64 KiB: the latency row, its throughput,
/// and the p99 over the p50 (the cost of rotation to the writer that crosses the threshold).
/// An error if the run rotated fewer than twice: the figure would then say nothing.
fn rotation_inserts(context: &Context, name: &str, bench: Bench) -> Result<Vec<Row>> {
    let mut inserts = Inserts::new(bench, 1);
    let before = inserts.bench().rotations();
    let latency = measure::measure_latency(&mut inserts, context.latency_plan(), 1)?;
    let rotations = inserts.bench().rotations().saturating_sub(before);
    if rotations < 2 {
        let detail = format!("{name}: {rotations} rotations while measured");
        return Err(WorkloadError::unexpected("memtable_rotation_flush", detail));
    }
    let ratio = Row::ratio(
        &format!("{name} p99 over p50"),
        count_as_f64(latency.p99_ns),
        count_as_f64(latency.p50_ns),
        "p99 of single inserts over their p50, across the rotations of the run",
    )
    .note(&format!(
        "p99 of single inserts over their p50, across {rotations} rotations with room in the queue"
    ));
    let ratio = if name.ends_with("/noop") {
        ratio.target(&t::MEMTABLE_ROTATION_P99)
    } else {
        ratio
    };
    let mut rows = rate_rows(name, &inserts, &latency);
    rows.push(ratio);
    Ok(rows)
}

/// Inserts into `bench` until `keys` are in, then times `flush()`: keys flushed per second.
fn flush_throughput(name: &str, bench: &Bench, keys: u64) -> Result<Row> {
    let before = bench.flushed_keys();
    bench.fill(keys)?;
    let started = Instant::now();
    bench.flush()?;
    let measured = started.elapsed();
    let flushed = bench.flushed_keys().saturating_sub(before);
    let detail = format!("flushed {flushed} of {keys} keys");
    if flushed < keys {
        return Err(WorkloadError::unexpected("memtable_rotation_flush", detail));
    }
    let throughput = Throughput::new(1, keys, measured);
    Ok(Row::throughput(name, &throughput).note(
        "records inserted with rotation every 64 KiB, then flush() timed until the store holds \
         them all (what was flushed during the inserts is not counted in the time)",
    ))
}

/// Gets from the repository and, in the same entry, from moka holding the same records: both
/// latency rows side by side, and the repository's speed over moka's.
fn gets(point: u32) -> Entry {
    Entry::new(
        "memtable_get_operations/noop",
        Kind::Latency,
        move |context, name| {
            let mut repo = OnFilled::new(noop(ROTATE_BYTES)?, FILLED_KEYS, Op::Get)?;
            let mut rows = latency_and_rate(context, name, &mut repo, point)?;
            let mut moka = MokaGets::new(FILLED_KEYS);
            let moka_name = "memtable_get_operations/moka";
            let moka_rows = latency_and_rate(context, moka_name, &mut moka, point)?;
            let workload = "memtable_get_operations";
            let p50 = |rows: &[Row]| rows.first().map_or(0.0, |row| row.value);
            let ratio = Row::ratio(
                &format!("{workload}/cairn vs moka"),
                p50(&moka_rows),
                p50(&rows),
                "moka's p50 get over the repository's; above 1.00x the repository is ahead",
            )
            .check(None, Some(&t::CAIRN_AHEAD))
            .side_by_side(workload, "moka");
            if let Some(first) = rows.first_mut() {
                *first = first.clone().side_by_side(workload, "cairn");
            }
            let mut moka_rows = moka_rows.into_iter();
            rows.extend(
                moka_rows
                    .next()
                    .map(|row| row.side_by_side(workload, "moka")),
            );
            rows.extend(moka_rows);
            rows.push(ratio);
            Ok(rows)
        },
    )
}

/// The `memtable_sequential_inserts` entries: the no-op rows, their floor, and the rows over
/// real stores with their direct peer.
fn insert_entries() -> Vec<Entry> {
    let mut entries = Vec::new();
    for batch in [100_u64, 1_000, 10_000] {
        let name = format!("memtable_sequential_inserts/{batch}/noop");
        entries.push(single(name, 1, move |_| {
            Ok(Box::new(Inserts::new(noop(ROTATE_BYTES)?, batch)))
        }));
    }
    // The floor: the same records and index entries in bare `std` collections (no lock, no
    // accounting, no flush), a layer of FLOOR_LAYER_RECORDS dropped in place when full.
    entries.push(single(
        "memtable_sequential_inserts/1000/floor".into(),
        1,
        |_| Ok(Box::new(FloorInserts::new(1_000))),
    ));
    entries.push(single(
        "memtable_sequential_inserts/1000/wal-buffered".into(),
        1,
        |_| {
            let bench = Bench::open(Backend::Noop, ROTATE_BYTES, Some(WalSync::Buffered))?;
            Ok(Box::new(Inserts::new(bench, 1_000)))
        },
    ));
    entries.push(single(
        "memtable_sequential_inserts/1000/cairn-strict".into(),
        1,
        |_| Ok(Box::new(Inserts::new(cairn_strict(ROTATE_BYTES)?, 1_000))),
    ));
    // The peer: the same records and index entries written straight to Cairn (Strict), one
    // commit per record, without the memtable.
    entries.push(single(
        "memtable_sequential_inserts/10/direct-cairn-strict".into(),
        1,
        |_| {
            let dir = TempDir::new("bench-memtable-direct");
            let options = cairn::Options::new(dir.path()).durability(cairn::Durability::Strict);
            let db = cairn::Db::open(options)?;
            Ok(Box::new(DirectOwned {
                inserts: DirectInserts::new(db, 10),
                _dir: dir,
            }))
        },
    ));
    entries.push(single(
        "memtable_sequential_inserts/1000/sqlite".into(),
        1,
        |_| Ok(Box::new(Inserts::new(sqlite(ROTATE_BYTES)?, 1_000))),
    ));
    entries
}

/// Every `memtable_*` entry.
pub fn entries(quick: bool) -> Vec<Entry> {
    let mut entries = insert_entries();
    for threads in [2_u64, 4, 8, 16] {
        let name = format!("memtable_concurrent_inserts/{threads}/noop");
        entries.push(Entry::new(name, Kind::Throughput, move |context, name| {
            let per_thread = if context.quick { 2_000 } else { 10_000 };
            let mut workload = Concurrent::inserts(noop(ROTATE_BYTES)?, threads, per_thread);
            let throughput = measure::measure_parallel(&mut workload, context.parallel_plan())?;
            Ok(vec![Row::throughput(name, &throughput)])
        }));
    }
    let point = 16;
    entries.push(gets(point));
    for (group, op) in [
        ("memtable_index_lookups", Op::UniqueIndex),
        ("memtable_mixed_read_write", Op::Mixed),
        ("memtable_update_operations", Op::Update),
    ] {
        entries.push(single(format!("{group}/noop"), point, move |_| {
            Ok(Box::new(OnFilled::new(
                noop(ROTATE_BYTES)?,
                FILLED_KEYS,
                op,
            )?))
        }));
    }
    entries.push(single(
        "memtable_delete_operations/noop".into(),
        point,
        |_| Ok(Box::new(Deletes::new(noop(ROTATE_BYTES)?))),
    ));
    entries.push(Entry::new(
        "memtable_concurrent_read_heavy/8/noop",
        Kind::Throughput,
        |context, name| {
            let per_thread = if context.quick { 20_000 } else { 100_000 };
            let bench = noop(ROTATE_BYTES)?;
            let mut workload = Concurrent::reads(bench, 8, per_thread, FILLED_KEYS)?;
            let throughput = measure::measure_parallel(&mut workload, context.parallel_plan())?;
            Ok(vec![Row::throughput(name, &throughput)])
        },
    ));
    // Single inserts while the memtable rotates every 64 KiB: the p99 shows what rotation
    // costs a writer; then the flush throughput into each store.
    for (store, open) in [
        ("noop", noop as fn(usize) -> Result<Bench>),
        ("cairn-strict", cairn_strict),
    ] {
        let name = format!("memtable_rotation_flush/insert/{store}");
        entries.push(Entry::new(name, Kind::Latency, move |context, name| {
            rotation_inserts(context, name, open(ROTATE_BYTES_SMALL)?)
        }));
    }
    let flush_keys = if quick { 20_000 } else { 100_000 };
    for (store, open) in [
        ("cairn-strict", cairn_strict as fn(usize) -> Result<Bench>),
        ("sqlite", sqlite),
    ] {
        let name = format!("memtable_rotation_flush/flush_throughput/{store}");
        entries.push(Entry::new(name, Kind::Throughput, move |_, name| {
            let bench = open(ROTATE_BYTES_SMALL)?;
            Ok(vec![flush_throughput(name, &bench, flush_keys)?])
        }));
    }
    entries
}

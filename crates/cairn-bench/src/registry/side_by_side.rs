//! The side-by-side entries: one workload, every store that can run it, in the same run.
//!
//! Each entry reports one row per store (`peers/<workload>/<store>`), then ratio rows: Cairn's
//! speed over each peer's (`peers/<workload>/cairn vs <store>`, above 1.00x Cairn is ahead;
//! the Cairn row compared is the workload's commit class, `cairn-buffered` or
//! `cairn-strict`), and each `KeyValueStore` backend's speed over the client it wraps
//! (`peers/<workload>/kv:sqlite-buffered vs sqlite-buffered`, below 1.00x the trait costs
//! something). Targets sit on the row of the store they were set for: the engine's on
//! `cairn-inmemory` (or the mode they name), the key-value library's on `kv:*`.
//!
//! Single-thread workloads are timed in turns (about 25 ms per store per turn), so every store
//! sees the same machine state; multi-threaded ones run one store after the other. Stores are
//! filled once per run and shared: read fixtures hold 1M keys (100K in quick mode), write
//! fixtures 10,000 keys whose values the writes overwrite.

use std::process::Command;
use std::sync::Arc;

use crate::measure::{self, count_as_f64, Throughput};
use crate::peers::{raw_client, Engine, Feature, Label, Mode, Places, Stores};
use crate::report::Row;
use crate::side_by_side::memory::{self, MemoryFigures};
use crate::side_by_side::parallel::{Concurrent, Fill, Load};
use crate::side_by_side::reads::{PointRead, Read, Scan};
use crate::side_by_side::writes::{Cas, Delete, Write, Writes};
use crate::side_by_side::{FillOrder, PeerFixture};
use crate::sizes::{FIXTURE_KEYS, GROUP_COMMIT_WRITERS, LARGE_VALUE_BYTES, VALUE_BYTES};
use crate::targets::{self as t, Limit};
use crate::workloads::{ParallelWorkload, Result, Workload, WorkloadError};

use super::{nothing_to_measure, Context, Derived, Entry, Kind, Timed};

/// The tag of fixtures every workload may share (see [`Context::peer_fixture`]).
pub const SHARED: &str = "shared";
/// Operations timed together per latency sample, for operations of about a microsecond.
pub const POINT_OPS_PER_SAMPLE: u32 = 16;
/// Commits per run of a group-commit workload, over all writers (quick mode: a quarter).
const GROUP_COMMITS_PER_RUN: u64 = 2_048;
/// Operations per thread per run of the mixed and concurrent-read workloads.
const PARALLEL_OPS_PER_THREAD: u64 = 100_000;
/// Threads of the mixed workload: this machine's cores.
const MIXED_THREADS: usize = 2;

const IN_MEMORY: Label = Label::new(Engine::Cairn, Mode::InMemory);
const BUFFERED: Label = Label::new(Engine::Cairn, Mode::Buffered);
const STRICT: Label = Label::new(Engine::Cairn, Mode::Strict);
const KV_IN_MEMORY: Label = Label::new(Engine::KvCairn, Mode::InMemory);
const KV_SQLITE: Label = Label::new(Engine::KvSqlite, Mode::Buffered);
const KV_REDIS: Label = Label::new(Engine::KvRedis, Mode::Buffered);
const BUFFERED_CLASS: Stores = Stores::Class(Mode::Buffered);

type BuildSingle = dyn Fn(&PeerFixture) -> Result<Box<dyn Workload>>;
type BuildParallel = dyn Fn(&PeerFixture, &Context) -> Result<Box<dyn ParallelWorkload>>;

/// How a side-by-side workload is built and timed.
#[derive(Clone)]
enum How {
    /// Single-thread latency percentiles, `n` operations per sample.
    Latency(u32, Arc<BuildSingle>),
    /// Single-thread operations per second.
    Throughput(Arc<BuildSingle>),
    /// Multi-threaded runs, one store after the other.
    Parallel(Arc<BuildParallel>),
}

/// What a side-by-side entry runs, on which stores, checked against what.
#[derive(Clone)]
struct Spec {
    workload: String,
    stores: Stores,
    /// Keys of its fixture; `None` for the read fixture, 1M (100K in quick mode).
    keys: Option<usize>,
    value_bytes: usize,
    /// The fixture's tag: a workload that deletes gets one of its own.
    tag: &'static str,
    feature: Option<Feature>,
    /// Ratio rows against Cairn carry the goal "Cairn ahead".
    ahead: bool,
    /// Targets (and goals) on one store's row each.
    checks: Vec<(Label, Limit, Option<Limit>)>,
    explained: &'static str,
}

impl Spec {
    fn new(workload: impl Into<String>, stores: Stores, keys: Option<usize>) -> Self {
        Spec {
            workload: workload.into(),
            stores,
            keys,
            value_bytes: VALUE_BYTES,
            tag: SHARED,
            feature: None,
            ahead: false,
            checks: Vec::new(),
            explained: "",
        }
    }

    /// Ratios against Cairn carry the goal "Cairn ahead"; `explained` (if any) notes rows.
    fn ahead(self, explained: &'static str) -> Self {
        Spec {
            ahead: true,
            explained,
            ..self
        }
    }

    fn explained(self, explained: &'static str) -> Self {
        Spec { explained, ..self }
    }

    fn needs(self, feature: Feature) -> Self {
        Spec {
            feature: Some(feature),
            ..self
        }
    }

    fn check(mut self, label: Label, target: Limit, goal: Option<Limit>) -> Self {
        self.checks.push((label, target, goal));
        self
    }

    fn row_name(&self, label: Label) -> String {
        format!("peers/{}/{label}", self.workload)
    }

    /// The stores this workload runs on, with their fixtures.
    fn fixtures(&self, context: &mut Context) -> Result<Vec<(Label, Arc<PeerFixture>)>> {
        let keys = self.keys.unwrap_or_else(|| context.read_keys());
        let mut fixtures = Vec::new();
        for label in self.stores.labels(context.has_redis()) {
            let fixture = context.peer_fixture(label, keys, self.value_bytes, self.tag)?;
            if self
                .feature
                .is_none_or(|feature| fixture.peer.supports(feature))
            {
                fixtures.push((label, fixture));
            }
        }
        if fixtures.is_empty() {
            return Err(nothing_to_measure("side-by-side"));
        }
        Ok(fixtures)
    }

    /// The rows of one workload: one per store (targets checked), then the ratio rows.
    fn rows(&self, measured: &[(Label, Row, f64)]) -> Vec<Row> {
        let (Stores::Class(class) | Stores::ClassAndTrait(class)) = self.stores;
        let speed_of = |wanted: Label| {
            let found = measured.iter().find(|(label, _, _)| *label == wanted);
            found.map(|(_, _, speed)| *speed)
        };
        let (mut rows, mut ratios) = (Vec::new(), Vec::new());
        for (label, mut row, speed) in measured.iter().cloned() {
            for (_, target, goal) in self.checks.iter().filter(|(checked, ..)| *checked == label) {
                row = row.target(target);
                if let Some(goal) = goal {
                    row = row.goal(goal);
                }
            }
            rows.push(row.side_by_side(&self.workload, &label.to_string()));
            let (goal, ratio) = if let Some(raw) = raw_client(label) {
                let Some(raw_speed) = speed_of(raw) else {
                    continue;
                };
                let goal = match label.engine {
                    Engine::KvSqlite => Some(t::KV_SQLITE_OVER_RAW_GOAL),
                    Engine::KvRedis => Some(t::KV_REDIS_OVER_RAW_GOAL),
                    _ => None,
                };
                // Not a Cairn-against-peer ratio, so not marked side by side: tables and
                // charts list it on its own line.
                let explained = "speed through the KeyValueStore trait over the wrapped client's";
                let name = format!("peers/{}/{label} vs {raw}", self.workload);
                (goal, Row::ratio(&name, speed, raw_speed, explained))
            } else if label.engine != Engine::Cairn {
                let Some(cairn) = speed_of(Label::new(Engine::Cairn, class)) else {
                    continue;
                };
                let explained = "Cairn's speed over the peer's; above 1.00x Cairn is ahead";
                let name = format!("peers/{}/cairn vs {label}", self.workload);
                let ratio = Row::ratio(&name, cairn, speed, explained);
                (
                    self.ahead.then_some(t::CAIRN_AHEAD),
                    ratio.side_by_side(&self.workload, &label.to_string()),
                )
            } else {
                continue;
            };
            ratios.push(match goal {
                Some(goal) => ratio.goal(&goal),
                None => ratio,
            });
        }
        rows.extend(ratios);
        for row in rows
            .iter_mut()
            .filter(|row| row.note.is_none() && !self.explained.is_empty())
        {
            row.note = Some(self.explained.to_owned());
        }
        rows
    }

    /// The entry that times this workload on every store as `how` says.
    fn entry(self, how: How) -> Entry {
        let kind = match how {
            How::Latency(..) => Kind::Latency,
            How::Throughput(_) | How::Parallel(_) => Kind::Throughput,
        };
        let (spec, timed_how) = (Arc::new(self), how.clone());
        let timed_spec = Arc::clone(&spec);
        Entry::new(
            format!("peers/{}", spec.workload),
            kind,
            move |context, _| {
                let fixtures = spec.fixtures(context)?;
                let mut measured = Vec::new();
                let build = match &how {
                    How::Latency(_, build) | How::Throughput(build) => build,
                    How::Parallel(build) => {
                        for (label, fixture) in fixtures {
                            let mut workload = build(&fixture, context)?;
                            let throughput =
                                measure::measure_parallel(&mut *workload, context.parallel_plan())?;
                            let mut row = Row::throughput(&spec.row_name(label), &throughput);
                            if let Some(per_sync) = fixture.peer.commits_per_sync() {
                                row = row.annotate(&format!("{per_sync:.1} commits/fsync"));
                            }
                            measured.push((label, row, throughput.ops_per_sec));
                        }
                        return Ok(spec.rows(&measured));
                    }
                };
                let mut workloads = fixtures
                    .iter()
                    .map(|(_, fixture)| build(fixture))
                    .collect::<Result<Vec<_>>>()?;
                let mut dyns: Vec<&mut dyn Workload> = workloads
                    .iter_mut()
                    .map(|w| &mut **w as &mut dyn Workload)
                    .collect();
                let plan = context.latency_plan();
                let labels = fixtures.iter().map(|(label, _)| *label);
                if let How::Latency(ops, _) = &how {
                    let latencies =
                        measure::measure_latency_round_robin(&mut dyns, plan, *ops, None)?;
                    for (label, latency) in labels.zip(latencies) {
                        let speed = 1e9 / count_as_f64(latency.p50_ns.max(1));
                        measured.push((label, latency_row(&spec.row_name(label), &latency), speed));
                    }
                } else {
                    let throughputs = measure::measure_throughput_round_robin(&mut dyns, plan)?;
                    for (label, throughput) in labels.zip(throughputs) {
                        let row = Row::throughput(&spec.row_name(label), &throughput);
                        measured.push((label, row, throughput.ops_per_sec));
                    }
                }
                Ok(spec.rows(&measured))
            },
        )
        .timed_by(move |context| {
            let fixtures = timed_spec.fixtures(context)?;
            let timed = |(label, fixture): (Label, Arc<PeerFixture>)| {
                let workload = match &timed_how {
                    How::Latency(_, build) | How::Throughput(build) => {
                        Timed::Single(build(&fixture)?)
                    }
                    How::Parallel(build) => Timed::Parallel(build(&fixture, context)?),
                };
                Ok((label.to_string(), workload))
            };
            fixtures.into_iter().map(timed).collect()
        })
    }
}

/// A latency row, noting how samples were grouped.
pub(crate) fn latency_row(name: &str, latency: &measure::Latency) -> Row {
    let row = Row::latency(name, latency);
    if latency.ops_per_sample > 1 {
        let grouped = latency.ops_per_sample;
        row.note(&format!(
            "each sample is the mean of {grouped} consecutive ops"
        ))
    } else {
        row
    }
}

fn single<W: Workload + 'static>(
    build: impl Fn(&PeerFixture) -> Result<W> + 'static,
) -> Arc<BuildSingle> {
    Arc::new(move |fixture| Ok(Box::new(build(fixture)?)))
}

fn parallel<P: ParallelWorkload + 'static>(
    build: impl Fn(&PeerFixture, &Context) -> Result<P> + 'static,
) -> How {
    How::Parallel(Arc::new(move |fixture, context| {
        Ok(Box::new(build(fixture, context)?))
    }))
}

/// A workload on the buffered class's stores, over the write fixture.
fn buffered(workload: impl Into<String>) -> Spec {
    Spec::new(workload, BUFFERED_CLASS, Some(FIXTURE_KEYS))
}

/// A workload on the buffered class's stores, over the read fixture.
fn reads(workload: impl Into<String>) -> Spec {
    Spec::new(workload, BUFFERED_CLASS, None)
}

/// A workload on the buffered class's stores and every `KeyValueStore` backend, over the
/// write fixture.
fn with_trait(workload: impl Into<String>) -> Spec {
    Spec::new(
        workload,
        Stores::ClassAndTrait(Mode::Buffered),
        Some(FIXTURE_KEYS),
    )
}

/// A workload on the Strict class's stores, over the write fixture.
fn strict(workload: impl Into<String>) -> Spec {
    Spec::new(workload, Stores::Class(Mode::Strict), Some(FIXTURE_KEYS))
}

/// Every side-by-side entry: one flat table of the workloads.
#[rustfmt::skip]
pub fn entries(quick: bool) -> Vec<Entry> {
    let point = |build| How::Latency(POINT_OPS_PER_SAMPLE, build);
    let one = |build| How::Latency(1, build);
    let read = |kind| single(move |fixture| PointRead::new(fixture, kind));
    let write = |kind| single(move |fixture| Writes::new(fixture, kind));
    let scaled = |context: &Context, full| context.scaled(full, 4);
    let mut entries = vec![fill_sequential(), fill_random()];
    for (name, kind) in [("uniform", Read::Uniform), ("hot", Read::Hot)] {
        entries.push(reads(format!("point_read/{name}")).ahead("").entry(point(read(kind))));
    }
    let sizes = [1_000, 10_000, 100_000, 1_000_000].into_iter();
    for keys in sizes.filter(|&keys| keys <= super::read_keys(quick)) {
        let mut spec = Spec::new(format!("get_at_scale/{keys}"), BUFFERED_CLASS, Some(keys))
            .ahead("a get of a random key of an N-key store");
        if keys == super::READ_KEYS {
            spec = spec.check(IN_MEMORY, t::GET_LARGEST, Some(t::GET_LARGEST_GOAL));
        }
        entries.push(spec.entry(point(read(Read::Uniform))));
    }
    for value_bytes in [VALUE_BYTES, LARGE_VALUE_BYTES] {
        let mut spec = Spec { value_bytes, ..with_trait(format!("get/{value_bytes}")).ahead("") };
        if value_bytes == VALUE_BYTES {
            spec = spec.check(KV_IN_MEMORY, t::KV_CAIRN_POINT, Some(t::GET_LARGEST_GOAL))
                .check(KV_SQLITE, t::KV_SQLITE_POINT, None)
                .check(KV_REDIS, t::KV_REDIS_POINT, None);
        }
        entries.push(spec.entry(point(read(Read::Uniform))));
    }
    let spec = buffered("exists").check(IN_MEMORY, t::POINT_OP, None);
    entries.push(spec.entry(point(read(Read::Exists))));
    for length in [10, 100, 1_000] {
        let mut spec = reads(format!("scan/prefix_{length}")).needs(Feature::OrderedScan).ahead("");
        if length == 1_000 {
            spec = spec.check(IN_MEMORY, t::PREFIX_SCAN_1000, Some(t::PREFIX_SCAN_1000_GOAL));
        }
        entries.push(spec.entry(one(single(move |fixture| Scan::prefix(fixture, length)))));
    }
    let spec = reads("scan/range_100").needs(Feature::OrderedScan).ahead("");
    entries.push(spec.entry(one(single(|fixture| Scan::range(fixture, 100)))));
    let spec = with_trait("put/buffered").ahead("")
        .check(IN_MEMORY, t::POINT_OP, Some(t::PUT_GOAL))
        .check(BUFFERED, t::BUFFERED_PUT, Some(t::BUFFERED_PUT_GOAL))
        .check(KV_IN_MEMORY, t::KV_CAIRN_POINT, Some(t::PUT_GOAL))
        .check(KV_SQLITE, t::KV_SQLITE_POINT, None)
        .check(KV_REDIS, t::KV_REDIS_POINT, None);
    entries.push(spec.entry(point(write(Write::Put))));
    let spec = buffered(format!("put/buffered_{LARGE_VALUE_BYTES}"));
    entries.push(Spec { value_bytes: LARGE_VALUE_BYTES, ..spec }.entry(point(write(Write::Put))));
    let spec = buffered("put_rate/buffered")
        .check(BUFFERED, t::BUFFERED_PUT_RATE, Some(t::BUFFERED_PUT_RATE_GOAL));
    entries.push(spec.entry(How::Throughput(write(Write::Put))));
    let spec = Spec::new("put/strict", Stores::ClassAndTrait(Mode::Strict), Some(FIXTURE_KEYS));
    entries.push(spec.entry(one(write(Write::Put))));
    let spec = Spec { tag: "delete", ..buffered("delete") }.check(IN_MEMORY, t::POINT_OP, None);
    entries.push(spec.entry(point(single(Delete::new))));
    for (name, explained, build) in [
        ("bulk_put/1000", "1,000 single puts (a commit each) per run", write(Write::Bulk)),
        ("bulk_get/1000", "1,000 single gets per run", read(Read::Bulk)),
    ] {
        let spec = with_trait(name).ahead(explained)
            .check(IN_MEMORY, t::BULK, Some(t::BULK_GOAL))
            .check(KV_IN_MEMORY, t::BULK, None)
            .check(KV_SQLITE, t::KV_SQLITE_BULK, None);
        entries.push(spec.entry(How::Throughput(build)));
    }
    let spec = strict("batch_1000/strict").explained("one atomic, durable commit of 1,000 keys");
    entries.push(spec.entry(one(write(Write::Batch))));
    for writers in GROUP_COMMIT_WRITERS {
        let explained = "Strict puts from N writer threads released together";
        let mut spec = strict(format!("group_commit/{writers}")).explained(explained);
        spec.ahead = writers > 1;
        if writers == 16 {
            spec = spec.check(STRICT, t::GROUP_COMMIT_16, Some(t::GROUP_COMMIT_16));
        }
        entries.push(spec.entry(parallel(move |fixture, context| {
            Concurrent::group_commit(fixture, writers, scaled(context, GROUP_COMMITS_PER_RUN))
        })));
    }
    let spec = buffered(format!("mixed_80_20/{MIXED_THREADS}"))
        .ahead("2 threads, 1 put in 5, random keys of a 10,000-key store")
        .check(IN_MEMORY, t::MIXED, Some(t::MIXED_GOAL));
    entries.push(spec.entry(parallel(move |fixture, context| {
        let ops = scaled(context, PARALLEL_OPS_PER_THREAD);
        Concurrent::new(fixture, Load::Mixed, MIXED_THREADS, ops)
    })));
    for threads in [1, 2, 4, 8] {
        let spec = reads(format!("concurrent_reads/{threads}"))
            .explained("N threads reading random keys; wall time of whole runs");
        entries.push(spec.entry(parallel(move |fixture, context| {
            Concurrent::new(fixture, Load::Reads, threads, scaled(context, PARALLEL_OPS_PER_THREAD))
        })));
    }
    let spec = buffered("ttl_put").needs(Feature::Ttl).check(IN_MEMORY, t::PUT_WITH_TTL, None);
    entries.push(spec.entry(point(write(Write::TtlPut))));
    let spec = buffered("cas").check(IN_MEMORY, t::CAS, Some(t::CAS_GOAL));
    entries.push(spec.entry(point(single(Cas::new))));
    let spec = buffered("transaction").needs(Feature::Transactions);
    let spec = spec.explained("read 1 key, write 3, commit atomically");
    entries.push(spec.entry(point(write(Write::Transaction))));
    entries.push(memory_entry());
    entries
}

/// Ratios between side-by-side rows that carry a target or goal of their own.
#[rustfmt::skip]
pub fn derived(quick: bool) -> Vec<Derived> {
    let cairn = |workload: &str| format!("peers/{workload}/{IN_MEMORY}");
    let mut derived = vec![
        Derived::new("peers/concurrent_reads/2 vs 1",
            [cairn("concurrent_reads/2"), cairn("concurrent_reads/1")],
            "cairn-inmemory read throughput on 2 threads over 1 thread",
            Some(t::READ_SCALING), Some(t::READ_SCALING_GOAL)),
        Derived::new("peers/ttl_put vs put/buffered", [cairn("ttl_put"), cairn("put/buffered")],
            "cairn-inmemory put_with_ttl p50 over put p50", None, Some(t::PUT_WITH_TTL_GOAL)),
    ];
    if !quick {
        derived.push(Derived::new("peers/get_at_scale/1000000 vs 1000",
            [cairn("get_at_scale/1000000"), cairn("get_at_scale/1000")],
            "cairn-inmemory get p50 at 1M keys over get p50 at 1K keys",
            Some(t::GET_SCALING), Some(t::GET_SCALING_GOAL)));
    }
    derived
}

/// `fill/sequential`: how fast each store took the read fixture's keys, 1,000 per commit.
fn fill_sequential() -> Entry {
    let explained = "one fill of the read fixture: keys in order, 1,000 per commit";
    let spec = Spec {
        explained,
        ..reads("fill/sequential")
    };
    Entry::new(
        "peers/fill/sequential",
        Kind::Throughput,
        move |context, _| {
            let mut measured = Vec::new();
            for (label, fixture) in spec.fixtures(context)? {
                let keys = fixture.key_count() as u64;
                let throughput = Throughput::new(1, keys, fixture.fill_time);
                let row = Row::throughput(&spec.row_name(label), &throughput);
                measured.push((label, row, throughput.ops_per_sec));
            }
            Ok(spec.rows(&measured))
        },
    )
}

/// `fill/random`: the same keys in a random order into a fresh store, once per store.
fn fill_random() -> Entry {
    let explained = "one fill of a fresh store: keys in random order, 1,000 per commit";
    let spec = Spec {
        explained,
        ..reads("fill/random")
    };
    Entry::new("peers/fill/random", Kind::Throughput, move |context, _| {
        let keys = context.read_keys();
        let mut measured = Vec::new();
        for label in spec.stores.labels(context.has_redis()) {
            let mut fill = Fill::new(label, context.places(), keys, FillOrder::Random);
            let throughput = measure::measure_parallel(&mut fill, context.runs_plan(1, 1))?;
            let row = Row::throughput(&spec.row_name(label), &throughput);
            measured.push((label, row, throughput.ops_per_sec));
        }
        Ok(spec.rows(&measured))
    })
}

/// The memory tier: each buffered store filled in a child process of its own
/// (`cairn bench --memory-probe LABEL --keys N`), since resident memory belongs to a process.
fn memory_entry() -> Entry {
    Entry::new("peers/memory", Kind::Other, |context, _| {
        let keys = context.read_keys();
        let mut rows = Vec::new();
        for label in BUFFERED_CLASS.labels(context.has_redis()) {
            context.building(&format!("{label} in a child process"));
            let figures = run_memory_probe(label, context.places(), keys)?;
            let kind = if figures.server_bytes.is_some() {
                "the server's used_memory growth"
            } else {
                "the process's RSS growth"
            };
            let per_key = format!("{kind} over {keys} keys of 100-byte values, per key");
            let peak = format!("VmHWM of a process that filled {keys} keys");
            let disk = format!("the store's files after {keys} keys, settled, per key");
            let peak_rss = figures.server_bytes.is_none().then_some(figures.peak_rss);
            for (workload, bytes, explained) in [
                (
                    "memory/bytes_per_key",
                    Some(figures.bytes_per_key()),
                    per_key,
                ),
                ("memory/peak_rss", peak_rss, peak),
                (
                    "memory/disk_bytes_per_key",
                    figures.disk_bytes_per_key(),
                    disk,
                ),
            ] {
                if let Some(bytes) = bytes {
                    let row = Row::bytes(&format!("peers/{workload}/{label}"), bytes, &explained);
                    rows.push(row.side_by_side(workload, &label.to_string()));
                }
            }
        }
        context.building_done();
        Ok(rows)
    })
}

/// Runs the `cairn` binary (this process's own) as `bench --memory-probe LABEL --keys N`.
fn run_memory_probe(label: Label, places: &Places, keys: usize) -> Result<MemoryFigures> {
    let failed = |detail: String| WorkloadError::unexpected("memory", format!("{label}: {detail}"));
    let exe = std::env::current_exe().map_err(|error| failed(error.to_string()))?;
    let mut command = Command::new(exe);
    command.args([
        "bench",
        "--memory-probe",
        &label.to_string(),
        "--keys",
        &keys.to_string(),
    ]);
    if let Some(url) = &places.redis_url {
        command.args(["--redis", url]);
    }
    let output = command
        .output()
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!(
            "the probe failed ({}): {}",
            output.status,
            stderr.trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|line| line.starts_with("memory "));
    MemoryFigures::parse_line(
        line.ok_or_else(|| failed("the probe printed no figures".to_owned()))?,
    )
}

/// The child's side of the memory probe: fills `label`'s store and returns its line.
pub fn memory_probe(label: &str, keys: usize, redis_url: &str) -> Result<String> {
    let places = Places {
        redis_url: Some(redis_url.to_owned()),
    };
    Ok(memory::probe(label.parse()?, &places, keys)?.to_line())
}

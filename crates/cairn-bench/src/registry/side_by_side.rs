//! The side-by-side entries: one workload, every store that can run it, in the same run. Each
//! reports a row per store (`peers/<workload>/<store>`), then Cairn's speed over each peer's
//! (`.../cairn vs <store>`) and each `KeyValueStore` backend's over the client it wraps
//! (`.../kv:sqlite-buffered vs sqlite-buffered`). Single-thread workloads are timed in turns.

use super::{nothing_to_measure, Context, Derived, Entry, Kind, Timed};
use crate::measure::{self, count_as_f64, Throughput};
use crate::peers::{raw_client, Engine, Feature, Label, Mode, Places, Stores};
use crate::report::Row;
use crate::side_by_side::memory::{self, MemoryFigures};
use crate::side_by_side::ops::{Cas, Delete, PointRead, Read, Scan, Write, Writes};
use crate::side_by_side::parallel::{Concurrent, Fill, Load};
use crate::side_by_side::{FillOrder, PeerFixture};
use crate::sizes::{FIXTURE_KEYS, GROUP_COMMIT_WRITERS, LARGE_VALUE_BYTES, VALUE_BYTES};
use crate::targets::{self as t, Limit};
use crate::workloads::{ParallelWorkload, Result, Workload, WorkloadError};
use std::process::Command;
use std::sync::Arc;

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
const WITH_TRAIT: Stores = Stores::ClassAndTrait(Mode::Buffered);
const STRICT_CLASS: Stores = Stores::Class(Mode::Strict);
/// Fixture sizes: the write fixture, and the read fixture (the run's read key count).
const WRITE: Option<usize> = Some(FIXTURE_KEYS);
const READ: Option<usize> = None;

type Build = Arc<dyn Fn(&PeerFixture, &Context) -> Result<Timed>>;

/// What a side-by-side entry runs, on which stores, checked against what.
#[derive(Clone)]
struct Spec {
    workload: String,
    stores: Stores,
    /// Keys of its fixture; `None` for the read fixture.
    keys: Option<usize>,
    value_bytes: usize,
    /// The fixture's tag: a workload that deletes gets one of its own.
    tag: &'static str,
    feature: Option<Feature>,
    ahead: bool,
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
    fn ahead(mut self, explained: &'static str) -> Self {
        self.ahead = true;
        self.explained(explained)
    }

    fn explained(mut self, explained: &'static str) -> Self {
        self.explained = explained;
        self
    }

    fn needs(mut self, feature: Feature) -> Self {
        self.feature = Some(feature);
        self
    }

    fn check(mut self, label: Label, target: Limit, goal: Option<Limit>) -> Self {
        self.checks.push((label, target, goal));
        self
    }

    fn throughput(&self, label: Label, throughput: &Throughput) -> (Label, Row, f64) {
        let row = Row::throughput(&format!("peers/{}/{label}", self.workload), throughput);
        (label, row, throughput.ops_per_sec)
    }

    fn fixtures(&self, context: &mut Context) -> Result<Vec<(Label, Arc<PeerFixture>)>> {
        let keys = self.keys.unwrap_or_else(|| context.read_keys());
        let mut fixtures = Vec::new();
        for label in self.stores.labels(context.has_redis()) {
            let fixture = context.peer_fixture(label, keys, self.value_bytes, self.tag)?;
            let supported = self.feature.is_none_or(|f| fixture.peer.supports(f));
            if supported {
                fixtures.push((label, fixture));
            }
        }
        let found = !fixtures.is_empty();
        found
            .then_some(fixtures)
            .ok_or_else(|| nothing_to_measure("side-by-side"))
    }

    /// The rows of one workload: one per store (targets checked), then the ratio rows.
    fn rows(&self, measured: &[(Label, Row, f64)]) -> Vec<Row> {
        let (Stores::Class(class) | Stores::ClassAndTrait(class)) = self.stores;
        let speed_of = |wanted: Label| measured.iter().find(|m| m.0 == wanted).map(|m| m.2);
        let (mut rows, mut ratios) = (Vec::new(), Vec::new());
        for (label, row, speed) in measured {
            let subject = label.to_string();
            let mut row = row.clone().side_by_side(&self.workload, &subject);
            for (_, target, goal) in self.checks.iter().filter(|check| check.0 == *label) {
                row = row.check(Some(target), goal.as_ref());
            }
            rows.push(row);
            if let Some(raw) = raw_client(*label) {
                let Some(raw_speed) = speed_of(raw) else {
                    continue;
                };
                let goal = match label.engine {
                    Engine::KvSqlite => Some(t::KV_SQLITE_OVER_RAW_GOAL),
                    Engine::KvRedis => Some(t::KV_REDIS_OVER_RAW_GOAL),
                    _ => None,
                };
                // Not Cairn against a peer, so not marked side by side: tables and charts list
                // it on its own line.
                let explained = "speed through the KeyValueStore trait over the wrapped client's";
                let name = format!("peers/{}/{label} vs {raw}", self.workload);
                let ratio = Row::ratio(&name, *speed, raw_speed, explained);
                ratios.push(ratio.check(None, goal.as_ref()));
            } else if label.engine != Engine::Cairn {
                let Some(cairn) = speed_of(Label::new(Engine::Cairn, class)) else {
                    continue;
                };
                let explained = "Cairn's speed over the peer's; above 1.00x Cairn is ahead";
                let name = format!("peers/{}/cairn vs {label}", self.workload);
                let goal = self.ahead.then_some(&t::CAIRN_AHEAD);
                let ratio = Row::ratio(&name, cairn, *speed, explained).check(None, goal);
                ratios.push(ratio.side_by_side(&self.workload, &subject));
            }
        }
        rows.extend(ratios);
        if !self.explained.is_empty() {
            for row in rows.iter_mut().filter(|row| row.note.is_none()) {
                row.note = Some(self.explained.to_owned());
            }
        }
        rows
    }

    /// The entry: latencies of `ops_per_sample` ops or (`None`) throughputs.
    fn entry(self, ops_per_sample: Option<u32>, build: Build) -> Entry {
        let kind = ops_per_sample.map_or(Kind::Throughput, |_| Kind::Latency);
        let spec = Arc::new(self);
        let (timed_spec, timed_build) = (Arc::clone(&spec), Arc::clone(&build));
        let name = format!("peers/{}", spec.workload);
        Entry::new(name, kind, move |context, _| {
            let (mut measured, mut singles) = (Vec::new(), Vec::new());
            for (label, fixture) in spec.fixtures(context)? {
                match build(&fixture, context)? {
                    Timed::Single(workload) => singles.push((label, workload)),
                    Timed::Parallel(mut workload) => {
                        let plan = context.parallel_plan();
                        let throughput = measure::measure_parallel(&mut *workload, plan)?;
                        let (label, mut row, speed) = spec.throughput(label, &throughput);
                        if let Some(per_sync) = fixture.peer.commits_per_sync() {
                            row = row.annotate(&format!("{per_sync:.1} commits/fsync"));
                        }
                        measured.push((label, row, speed));
                    }
                }
            }
            let (labels, mut boxes): (Vec<Label>, Vec<_>) = singles.into_iter().unzip();
            let dyns = boxes.iter_mut().map(|w| &mut **w as &mut dyn Workload);
            let mut dyns: Vec<&mut dyn Workload> = dyns.collect();
            let plan = context.latency_plan();
            if let Some(ops) = ops_per_sample {
                let latencies = measure::measure_latency_round_robin(&mut dyns, plan, ops, None)?;
                for (label, latency) in labels.into_iter().zip(latencies) {
                    let name = format!("peers/{}/{label}", spec.workload);
                    let speed = 1e9 / count_as_f64(latency.p50_ns.max(1));
                    measured.push((label, latency_row(&name, &latency), speed));
                }
            } else {
                let throughputs = measure::measure_throughput_round_robin(&mut dyns, plan)?;
                for (label, throughput) in labels.into_iter().zip(throughputs) {
                    measured.push(spec.throughput(label, &throughput));
                }
            }
            Ok(spec.rows(&measured))
        })
        .timed_by(move |context| {
            let fixtures = timed_spec.fixtures(context)?;
            let timed = |(label, fixture): (Label, Arc<PeerFixture>)| {
                Ok((label.to_string(), timed_build(&fixture, context)?))
            };
            fixtures.into_iter().map(timed).collect()
        })
    }
}

pub(crate) fn latency_row(name: &str, latency: &measure::Latency) -> Row {
    let (mut row, grouped) = (Row::latency(name, latency), latency.ops_per_sample);
    let note = format!("each sample is the mean of {grouped} consecutive ops");
    row.note = (grouped > 1).then_some(note);
    row
}

fn single<W: Workload + 'static>(build: impl Fn(&PeerFixture) -> Result<W> + 'static) -> Build {
    Arc::new(move |fixture, _| Ok(Timed::Single(Box::new(build(fixture)?))))
}

fn parallel<P: ParallelWorkload + 'static>(
    build: impl Fn(&PeerFixture, &Context) -> Result<P> + 'static,
) -> Build {
    Arc::new(move |fixture, context| Ok(Timed::Parallel(Box::new(build(fixture, context)?))))
}

/// Every side-by-side entry.
#[rustfmt::skip]
pub fn entries(quick: bool) -> Vec<Entry> {
    let (point, one) = (Some(POINT_OPS_PER_SAMPLE), Some(1));
    let read = |kind| single(move |fixture| PointRead::new(fixture, kind));
    let write = |kind| single(move |fixture| Writes::new(fixture, kind));
    let mut entries = vec![fill(FillOrder::Sequential), fill(FillOrder::Random)];
    for (name, kind) in [("uniform", Read::Uniform), ("hot", Read::Hot)] {
        let spec = Spec::new(format!("point_read/{name}"), BUFFERED_CLASS, READ).ahead("");
        entries.push(spec.entry(point, read(kind)));
    }
    let sizes = [1_000, 10_000, 100_000, 1_000_000].into_iter();
    for keys in sizes.filter(|&keys| keys <= super::read_keys(quick)) {
        let mut spec = Spec::new(format!("get_at_scale/{keys}"), BUFFERED_CLASS, Some(keys))
            .ahead("a get of a random key of an N-key store");
        if keys == super::READ_KEYS {
            spec = spec.check(IN_MEMORY, t::GET_LARGEST, Some(t::GET_LARGEST_GOAL));
        }
        entries.push(spec.entry(point, read(Read::Uniform)));
    }
    for value_bytes in [VALUE_BYTES, LARGE_VALUE_BYTES] {
        let spec = Spec::new(format!("get/{value_bytes}"), WITH_TRAIT, WRITE).ahead("");
        let mut spec = Spec { value_bytes, ..spec };
        if value_bytes == VALUE_BYTES {
            spec = spec.check(KV_IN_MEMORY, t::KV_CAIRN_POINT, Some(t::GET_LARGEST_GOAL))
                .check(KV_SQLITE, t::KV_SQLITE_POINT, None)
                .check(KV_REDIS, t::KV_REDIS_POINT, None);
        }
        entries.push(spec.entry(point, read(Read::Uniform)));
    }
    let spec = Spec::new("exists", BUFFERED_CLASS, WRITE).check(IN_MEMORY, t::POINT_OP, None);
    entries.push(spec.entry(point, read(Read::Exists)));
    for length in [10, 100, 1_000] {
        let spec = Spec::new(format!("scan/prefix_{length}"), BUFFERED_CLASS, READ);
        let mut spec = spec.needs(Feature::OrderedScan).ahead("");
        if length == 1_000 {
            spec = spec.check(IN_MEMORY, t::PREFIX_SCAN_1000, Some(t::PREFIX_SCAN_1000_GOAL));
        }
        entries.push(spec.entry(one, single(move |fixture| Scan::prefix(fixture, length))));
    }
    let spec = Spec::new("scan/range_100", BUFFERED_CLASS, READ).needs(Feature::OrderedScan);
    entries.push(spec.ahead("").entry(one, single(|fixture| Scan::range(fixture, 100))));
    let spec = Spec::new("put/buffered", WITH_TRAIT, WRITE).ahead("")
        .check(IN_MEMORY, t::POINT_OP, Some(t::PUT_GOAL))
        .check(BUFFERED, t::BUFFERED_PUT, Some(t::BUFFERED_PUT_GOAL))
        .check(KV_IN_MEMORY, t::KV_CAIRN_POINT, Some(t::PUT_GOAL))
        .check(KV_SQLITE, t::KV_SQLITE_POINT, None)
        .check(KV_REDIS, t::KV_REDIS_POINT, None);
    entries.push(spec.entry(point, write(Write::Put)));
    let spec = Spec::new(format!("put/buffered_{LARGE_VALUE_BYTES}"), BUFFERED_CLASS, WRITE);
    entries.push(Spec { value_bytes: LARGE_VALUE_BYTES, ..spec }.entry(point, write(Write::Put)));
    let spec = Spec::new("put_rate/buffered", BUFFERED_CLASS, WRITE)
        .check(BUFFERED, t::BUFFERED_PUT_RATE, Some(t::BUFFERED_PUT_RATE_GOAL));
    entries.push(spec.entry(None, write(Write::Put)));
    let spec = Spec::new("put/strict", Stores::ClassAndTrait(Mode::Strict), WRITE);
    entries.push(spec.entry(one, write(Write::Put)));
    let spec = Spec { tag: "delete", ..Spec::new("delete", BUFFERED_CLASS, WRITE) };
    entries.push(spec.check(IN_MEMORY, t::POINT_OP, None).entry(point, single(Delete::new)));
    for (name, explained, build) in [
        ("bulk_put/1000", "1,000 single puts (a commit each) per run", write(Write::Bulk)),
        ("bulk_get/1000", "1,000 single gets per run", read(Read::Bulk)),
    ] {
        let spec = Spec::new(name, WITH_TRAIT, WRITE).ahead(explained)
            .check(IN_MEMORY, t::BULK, Some(t::BULK_GOAL))
            .check(KV_IN_MEMORY, t::BULK, None)
            .check(KV_SQLITE, t::KV_SQLITE_BULK, None);
        entries.push(spec.entry(None, build));
    }
    let spec = Spec::new("batch_1000/strict", STRICT_CLASS, WRITE);
    let spec = spec.explained("one atomic, durable commit of 1,000 keys");
    entries.push(spec.entry(one, write(Write::Batch)));
    entries.extend(threaded());
    let spec = Spec::new("ttl_put", BUFFERED_CLASS, WRITE).needs(Feature::Ttl);
    entries.push(spec.check(IN_MEMORY, t::PUT_WITH_TTL, None).entry(point, write(Write::TtlPut)));
    let spec = Spec::new("cas", BUFFERED_CLASS, WRITE).check(IN_MEMORY, t::CAS, Some(t::CAS_GOAL));
    entries.push(spec.entry(point, single(Cas::new)));
    let spec = Spec::new("transaction", BUFFERED_CLASS, WRITE).needs(Feature::Transactions);
    let spec = spec.explained("read 1 key, write 3, commit atomically");
    entries.push(spec.entry(point, write(Write::Transaction)));
    entries.push(memory_entry());
    entries
}

#[rustfmt::skip]
fn threaded() -> Vec<Entry> {
    let scaled = |context: &Context, full| context.scaled(full, 4);
    let mut entries = Vec::new();
    for writers in GROUP_COMMIT_WRITERS {
        let spec = Spec::new(format!("group_commit/{writers}"), STRICT_CLASS, WRITE);
        let mut spec = spec.explained("Strict puts from N writer threads released together");
        spec.ahead = writers > 1;
        if writers == 16 {
            spec = spec.check(STRICT, t::GROUP_COMMIT_16, Some(t::GROUP_COMMIT_16));
        }
        entries.push(spec.entry(None, parallel(move |fixture, context| {
            Concurrent::group_commit(fixture, writers, scaled(context, GROUP_COMMITS_PER_RUN))
        })));
    }
    let spec = Spec::new(format!("mixed_80_20/{MIXED_THREADS}"), BUFFERED_CLASS, WRITE)
        .ahead("2 threads, 1 put in 5, random keys of a 10,000-key store")
        .check(IN_MEMORY, t::MIXED, Some(t::MIXED_GOAL));
    entries.push(spec.entry(None, parallel(move |fixture, context| {
        let ops = scaled(context, PARALLEL_OPS_PER_THREAD);
        Concurrent::new(fixture, Load::Mixed, MIXED_THREADS, ops)
    })));
    for threads in [1, 2, 4, 8] {
        let spec = Spec::new(format!("concurrent_reads/{threads}"), BUFFERED_CLASS, READ)
            .explained("N threads reading random keys; wall time of whole runs");
        entries.push(spec.entry(None, parallel(move |fixture, context| {
            Concurrent::new(fixture, Load::Reads, threads, scaled(context, PARALLEL_OPS_PER_THREAD))
        })));
    }
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

/// `fill/sequential` (the read fixture's fill) and `fill/random` (into a fresh store).
fn fill(order: FillOrder) -> Entry {
    let (name, explained) = match order {
        FillOrder::Sequential => (
            "fill/sequential",
            "one fill of the read fixture: keys in order, 1,000 per commit",
        ),
        FillOrder::Random => (
            "fill/random",
            "one fill of a fresh store: keys in random order, 1,000 per commit",
        ),
    };
    let (spec, entry) = (
        Spec::new(name, BUFFERED_CLASS, READ),
        format!("peers/{name}"),
    );
    let spec = spec.explained(explained);
    Entry::new(entry, Kind::Throughput, move |context, _| {
        let mut measured = Vec::new();
        if order == FillOrder::Sequential {
            for (label, fixture) in spec.fixtures(context)? {
                let keys = fixture.key_count() as u64;
                let throughput = Throughput::new(1, keys, fixture.fill_time);
                measured.push(spec.throughput(label, &throughput));
            }
        } else {
            for label in spec.stores.labels(context.has_redis()) {
                let mut fill = Fill::new(label, &context.places, context.read_keys(), order);
                let throughput = measure::measure_parallel(&mut fill, context.runs_plan(1, 1))?;
                measured.push(spec.throughput(label, &throughput));
            }
        }
        Ok(spec.rows(&measured))
    })
}

/// The memory tier: each buffered store filled in a child process of its own.
fn memory_entry() -> Entry {
    Entry::new("peers/memory", Kind::Other, |context, _| {
        let keys = context.read_keys();
        let mut rows = Vec::new();
        for label in BUFFERED_CLASS.labels(context.has_redis()) {
            context.building(&format!("{label} in a child process"));
            let figures = run_memory_probe(label, &context.places, keys)?;
            let grown = match figures.server_bytes {
                Some(_) => "the server's used_memory growth",
                None => "the process's RSS growth",
            };
            let (per_key, disk_per_key) = (figures.bytes_per_key(), figures.disk_bytes_per_key());
            let peak_rss = figures.server_bytes.is_none().then_some(figures.peak_rss);
            let per_key_explained = format!("{grown} over {keys} keys of 100-byte values, per key");
            let peak = format!("VmHWM of a process that filled {keys} keys");
            let disk = format!("the store's files after {keys} keys, settled, per key");
            let figures = [
                ("memory/bytes_per_key", Some(per_key), per_key_explained),
                ("memory/peak_rss", peak_rss, peak),
                ("memory/disk_bytes_per_key", disk_per_key, disk),
            ];
            for (workload, bytes, explained) in figures {
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
    let io_failed = |error: std::io::Error| failed(error.to_string());
    let exe = std::env::current_exe().map_err(io_failed)?;
    let mut command = Command::new(exe);
    let (label_arg, keys_arg) = (label.to_string(), keys.to_string());
    command.args(["bench", "--memory-probe", &label_arg, "--keys", &keys_arg]);
    if let Some(url) = &places.redis_url {
        command.args(["--redis", url]);
    }
    let output = command.output().map_err(io_failed)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().find(|line| line.starts_with("memory ")) {
        Some(line) if output.status.success() => MemoryFigures::parse_line(line),
        _ => {
            let (status, stderr) = (output.status, String::from_utf8_lossy(&output.stderr));
            let stderr = stderr.trim();
            Err(failed(format!("the probe failed ({status}): {stderr}")))
        }
    }
}

/// The child's side of the memory probe: fills `label`'s store and returns its line.
pub fn memory_probe(label: &str, keys: usize, redis_url: &str) -> Result<String> {
    if label == "streams" {
        return crate::workloads::stream_system::memory_probe(keys as u64);
    }
    let redis_url = Some(redis_url.to_owned());
    Ok(memory::probe(label.parse()?, &Places { redis_url }, keys)?.to_line())
}

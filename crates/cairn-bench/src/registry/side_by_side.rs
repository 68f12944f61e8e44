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

use crate::measure::{self, count_as_f64, Latency, Throughput};
use crate::peers::{raw_client, Engine, Feature, Label, Mode, Stores};
use crate::report::Row;
use crate::side_by_side::memory::{self, MemoryFigures};
use crate::side_by_side::parallel::{Fill, GroupCommit, Mixed};
use crate::side_by_side::reads::{BulkGet, Exists, PointRead, PrefixScan, RangeScan, ReadPattern};
use crate::side_by_side::writes::{BatchPut, BulkPut, Cas, Delete, Put, Transaction};
use crate::side_by_side::{FillOrder, PeerFixture};
use crate::sizes::{FIXTURE_KEYS, GROUP_COMMIT_WRITERS, LARGE_VALUE_BYTES, VALUE_BYTES};
use crate::targets::{self, Limit};
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

/// How many keys a workload's fixture holds.
#[derive(Clone, Copy)]
enum Keys {
    /// The read fixture: 1M (100K in quick mode).
    Read,
    /// Exactly this many.
    Exactly(usize),
}

/// A target (and goal) on one store's row.
type Check = (Label, Limit, Option<Limit>);

type BuildSingle = dyn Fn(&PeerFixture) -> Result<Box<dyn Workload>>;
type BuildParallel = dyn Fn(&PeerFixture, &Context) -> Result<Box<dyn ParallelWorkload>>;

/// What a side-by-side entry runs, on which stores, checked against what.
#[derive(Clone)]
struct Spec {
    workload: String,
    stores: Stores,
    keys: Keys,
    value_bytes: usize,
    tag: &'static str,
    feature: Option<Feature>,
    /// Ratio rows against Cairn carry the goal "Cairn ahead".
    ahead_goal: bool,
    checks: Vec<Check>,
    explained: &'static str,
}

impl Spec {
    fn new(workload: impl Into<String>, stores: Stores, keys: Keys) -> Self {
        Spec {
            workload: workload.into(),
            stores,
            keys,
            value_bytes: VALUE_BYTES,
            tag: SHARED,
            feature: None,
            ahead_goal: false,
            checks: Vec::new(),
            explained: "",
        }
    }

    fn values(mut self, value_bytes: usize) -> Self {
        self.value_bytes = value_bytes;
        self
    }

    fn own_fixture(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }

    fn needs(mut self, feature: Feature) -> Self {
        self.feature = Some(feature);
        self
    }

    fn ahead(mut self) -> Self {
        self.ahead_goal = true;
        self
    }

    fn check(mut self, label: Label, target: Limit, goal: Option<Limit>) -> Self {
        self.checks.push((label, target, goal));
        self
    }

    fn target(self, label: Label, target: Limit) -> Self {
        self.check(label, target, None)
    }

    fn explained(mut self, explained: &'static str) -> Self {
        self.explained = explained;
        self
    }

    fn name(&self) -> String {
        format!("peers/{}", self.workload)
    }

    fn row_name(&self, label: Label) -> String {
        format!("peers/{}/{label}", self.workload)
    }

    /// The stores this workload runs on, with their fixtures.
    fn fixtures(&self, context: &mut Context) -> Result<Vec<(Label, Arc<PeerFixture>)>> {
        let keys = match self.keys {
            Keys::Read => context.read_keys(),
            Keys::Exactly(keys) => keys,
        };
        let mut fixtures = Vec::new();
        for label in self.stores.labels(context.has_redis()) {
            let fixture = context.peer_fixture(label, keys, self.value_bytes, self.tag)?;
            if self
                .feature
                .is_none_or(|feature| fixture.peer().supports(feature))
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
        let class = match self.stores {
            Stores::Class(mode) | Stores::ClassAndTrait(mode) => mode,
        };
        let reference = Label::new(Engine::Cairn, class);
        let speed_of = |wanted: Label| {
            measured
                .iter()
                .find(|(label, _, _)| *label == wanted)
                .map(|(_, _, speed)| *speed)
        };
        let mut rows = Vec::new();
        let mut ratios = Vec::new();
        for (label, row, speed) in measured {
            let mut row = row.clone();
            for (checked, target, goal) in &self.checks {
                if checked == label {
                    row = row.target(target);
                    if let Some(goal) = goal {
                        row = row.goal(goal);
                    }
                }
            }
            rows.push(row.side_by_side(&self.workload, &label.to_string()));
            let subject = label.to_string();
            if let Some(raw) = raw_client(*label) {
                if let Some(raw_speed) = speed_of(raw) {
                    // Not a Cairn-against-peer ratio, so not marked side by side: tables
                    // and charts list it on its own line.
                    let ratio = Row::ratio(
                        &format!("peers/{}/{label} vs {raw}", self.workload),
                        *speed,
                        raw_speed,
                        "speed through the KeyValueStore trait over the wrapped client's",
                    );
                    ratios.push(match trait_goal(*label) {
                        Some(goal) => ratio.goal(&goal),
                        None => ratio,
                    });
                }
            } else if label.engine != Engine::Cairn {
                if let Some(cairn) = speed_of(reference) {
                    let ratio = Row::ratio(
                        &format!("peers/{}/cairn vs {label}", self.workload),
                        cairn,
                        *speed,
                        "Cairn's speed over the peer's; above 1.00x Cairn is ahead",
                    )
                    .side_by_side(&self.workload, &subject);
                    ratios.push(if self.ahead_goal {
                        ratio.goal(&targets::CAIRN_AHEAD)
                    } else {
                        ratio
                    });
                }
            }
        }
        rows.extend(ratios);
        if !self.explained.is_empty() {
            for row in &mut rows {
                if row.note.is_none() {
                    row.note = Some(self.explained.to_owned());
                }
            }
        }
        rows
    }
}

/// The goal of a `KeyValueStore` backend's speed over its wrapped client's.
fn trait_goal(label: Label) -> Option<Limit> {
    match label.engine {
        Engine::KvSqlite => Some(targets::KV_SQLITE_OVER_RAW_GOAL),
        Engine::KvRedis => Some(targets::KV_REDIS_OVER_RAW_GOAL),
        _ => None,
    }
}

/// How a single-thread side-by-side workload is timed.
#[derive(Clone, Copy)]
enum Timing {
    /// Latency percentiles, `n` operations per sample.
    Latency(u32),
    /// Operations per second.
    Throughput,
}

fn latency_speed(latency: &Latency) -> f64 {
    1e9 / count_as_f64(latency.p50_ns.max(1))
}

/// A latency row, noting how samples were grouped.
pub(crate) fn latency_row(name: &str, latency: &Latency) -> Row {
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

/// A single-thread workload on every store of `spec`, timed in turns.
fn single(
    spec: Spec,
    timing: Timing,
    build: impl Fn(&PeerFixture) -> Result<Box<dyn Workload>> + 'static,
) -> Entry {
    let build: Arc<BuildSingle> = Arc::new(build);
    let spec = Arc::new(spec);
    let kind = match timing {
        Timing::Latency(_) => Kind::Latency,
        Timing::Throughput => Kind::Throughput,
    };
    let run_spec = Arc::clone(&spec);
    let run_build = Arc::clone(&build);
    Entry::new(spec.name(), kind, move |context, _| {
        let fixtures = run_spec.fixtures(context)?;
        let mut workloads = fixtures
            .iter()
            .map(|(_, fixture)| run_build(fixture))
            .collect::<Result<Vec<_>>>()?;
        let mut dyns: Vec<&mut dyn Workload> = Vec::with_capacity(workloads.len());
        for workload in &mut workloads {
            dyns.push(workload.as_mut());
        }
        let measured: Vec<(Label, Row, f64)> = match timing {
            Timing::Latency(ops_per_sample) => measure::measure_latency_round_robin(
                &mut dyns,
                context.latency_plan(),
                ops_per_sample,
            )?
            .into_iter()
            .zip(&fixtures)
            .map(|(latency, (label, _))| {
                let row = latency_row(&run_spec.row_name(*label), &latency);
                (*label, row, latency_speed(&latency))
            })
            .collect(),
            Timing::Throughput => {
                measure::measure_throughput_round_robin(&mut dyns, context.latency_plan())?
                    .into_iter()
                    .zip(&fixtures)
                    .map(|(throughput, (label, _))| {
                        let row = Row::throughput(&run_spec.row_name(*label), &throughput);
                        (*label, row, throughput.ops_per_sec)
                    })
                    .collect()
            }
        };
        Ok(run_spec.rows(&measured))
    })
    .timed_by(move |context| {
        spec.fixtures(context)?
            .into_iter()
            .map(|(label, fixture)| Ok((label.to_string(), Timed::Single(build(&fixture)?))))
            .collect()
    })
}

/// A multi-threaded workload on every store of `spec`, one store after the other.
fn parallel(
    spec: Spec,
    build: impl Fn(&PeerFixture, &Context) -> Result<Box<dyn ParallelWorkload>> + 'static,
) -> Entry {
    let build: Arc<BuildParallel> = Arc::new(build);
    let spec = Arc::new(spec);
    let (run_spec, run_build) = (Arc::clone(&spec), Arc::clone(&build));
    Entry::new(spec.name(), Kind::Throughput, move |context, _| {
        let mut measured = Vec::new();
        for (label, fixture) in run_spec.fixtures(context)? {
            let mut workload = run_build(&fixture, context)?;
            let throughput = measure::measure_parallel(&mut *workload, context.parallel_plan())?;
            let mut row = Row::throughput(&run_spec.row_name(label), &throughput);
            if let Some(per_sync) = fixture.peer().commits_per_sync() {
                row = row.annotate(&format!("{per_sync:.1} commits/fsync"));
            }
            measured.push((label, row, throughput.ops_per_sec));
        }
        Ok(run_spec.rows(&measured))
    })
    .timed_by(move |context| {
        let fixtures = spec.fixtures(context)?;
        let timed = |(label, fixture): (Label, Arc<PeerFixture>)| {
            Ok((
                label.to_string(),
                Timed::Parallel(build(&fixture, context)?),
            ))
        };
        fixtures.into_iter().map(timed).collect()
    })
}

fn boxed<W: Workload + 'static>(workload: Result<W>) -> Result<Box<dyn Workload>> {
    Ok(Box::new(workload?))
}

fn boxed_parallel<P: ParallelWorkload + 'static>(
    workload: Result<P>,
) -> Result<Box<dyn ParallelWorkload>> {
    Ok(Box::new(workload?))
}

const BUFFERED_CLASS: Stores = Stores::Class(Mode::Buffered);
const WRITES: Keys = Keys::Exactly(FIXTURE_KEYS);

/// A workload on the buffered class's stores, over the write fixture.
fn buffered(workload: impl Into<String>) -> Spec {
    Spec::new(workload, BUFFERED_CLASS, WRITES)
}

/// A workload on the buffered class's stores, over the read fixture.
fn reads(workload: impl Into<String>) -> Spec {
    Spec::new(workload, BUFFERED_CLASS, Keys::Read)
}

/// A workload on the buffered class's stores and every `KeyValueStore` backend, over the
/// write fixture.
fn with_trait(workload: impl Into<String>) -> Spec {
    Spec::new(workload, Stores::ClassAndTrait(Mode::Buffered), WRITES)
}

/// Every side-by-side entry.
#[expect(
    clippy::too_many_lines,
    reason = "one flat list of the workloads reads better than the same list split up"
)]
pub fn entries(quick: bool) -> Vec<Entry> {
    let point = Timing::Latency(POINT_OPS_PER_SAMPLE);
    let one = Timing::Latency(1);
    let mut entries = vec![fill_sequential(), fill_random()];
    for pattern in [ReadPattern::Uniform, ReadPattern::Hot] {
        let spec = reads(format!("point_read/{}", pattern.name())).ahead();
        entries.push(single(spec, point, move |f| {
            boxed(PointRead::new(f, pattern))
        }));
    }
    let largest = super::read_keys(quick);
    for keys in [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|&k| k <= largest)
    {
        let mut spec = Spec::new(
            format!("get_at_scale/{keys}"),
            BUFFERED_CLASS,
            Keys::Exactly(keys),
        )
        .ahead()
        .explained("a get of a random key of an N-key store");
        if keys == super::READ_KEYS {
            spec = spec.check(
                IN_MEMORY,
                targets::GET_LARGEST,
                Some(targets::GET_LARGEST_GOAL),
            );
        }
        entries.push(single(spec, point, uniform_get));
    }
    for value_bytes in [VALUE_BYTES, LARGE_VALUE_BYTES] {
        let mut spec = with_trait(format!("get/{value_bytes}"))
            .values(value_bytes)
            .ahead();
        if value_bytes == VALUE_BYTES {
            spec = spec
                .check(
                    KV_IN_MEMORY,
                    targets::KV_CAIRN_POINT,
                    Some(targets::GET_LARGEST_GOAL),
                )
                .target(KV_SQLITE, targets::KV_SQLITE_POINT)
                .target(KV_REDIS, targets::KV_REDIS_POINT);
        }
        entries.push(single(spec, point, uniform_get));
    }
    let spec = buffered("exists").target(IN_MEMORY, targets::POINT_OP);
    entries.push(single(spec, point, |f| boxed(Exists::new(f))));
    for keys_per_prefix in [10, 100, 1_000] {
        let mut spec = reads(format!("scan/prefix_{keys_per_prefix}"))
            .needs(Feature::OrderedScan)
            .ahead();
        if keys_per_prefix == 1_000 {
            let goal = Some(targets::PREFIX_SCAN_1000_GOAL);
            spec = spec.check(IN_MEMORY, targets::PREFIX_SCAN_1000, goal);
        }
        entries.push(single(spec, one, move |f| {
            boxed(PrefixScan::new(f, keys_per_prefix))
        }));
    }
    let spec = reads("scan/range_100").needs(Feature::OrderedScan).ahead();
    entries.push(single(spec, one, |f| boxed(RangeScan::new(f, 100))));
    let spec = with_trait("put/buffered")
        .ahead()
        .check(IN_MEMORY, targets::POINT_OP, Some(targets::PUT_GOAL))
        .check(
            BUFFERED,
            targets::BUFFERED_PUT,
            Some(targets::BUFFERED_PUT_GOAL),
        )
        .check(
            KV_IN_MEMORY,
            targets::KV_CAIRN_POINT,
            Some(targets::PUT_GOAL),
        )
        .target(KV_SQLITE, targets::KV_SQLITE_POINT)
        .target(KV_REDIS, targets::KV_REDIS_POINT);
    entries.push(single(spec, point, put));
    let spec = buffered(format!("put/buffered_{LARGE_VALUE_BYTES}")).values(LARGE_VALUE_BYTES);
    entries.push(single(spec, point, put));
    let goal = Some(targets::BUFFERED_PUT_RATE_GOAL);
    let spec = buffered("put_rate/buffered").check(BUFFERED, targets::BUFFERED_PUT_RATE, goal);
    entries.push(single(spec, Timing::Throughput, put));
    let spec = Spec::new("put/strict", Stores::ClassAndTrait(Mode::Strict), WRITES);
    entries.push(single(spec, one, put));
    let spec = buffered("delete")
        .own_fixture("delete")
        .target(IN_MEMORY, targets::POINT_OP);
    entries.push(single(spec, point, |f| boxed(Delete::new(f))));
    let spec = bulk("bulk_put/1000").explained("1,000 single puts (a commit each) per run");
    entries.push(single(spec, Timing::Throughput, |f| boxed(BulkPut::new(f))));
    let spec = bulk("bulk_get/1000").explained("1,000 single gets per run");
    entries.push(single(spec, Timing::Throughput, |f| boxed(BulkGet::new(f))));
    let spec = Spec::new("batch_1000/strict", Stores::Class(Mode::Strict), WRITES)
        .explained("one atomic, durable commit of 1,000 keys");
    entries.push(single(spec, one, |f| boxed(BatchPut::new(f))));
    for writers in GROUP_COMMIT_WRITERS {
        let mut spec = Spec::new(
            format!("group_commit/{writers}"),
            Stores::Class(Mode::Strict),
            WRITES,
        )
        .explained("Strict puts from N writer threads released together");
        if writers > 1 {
            spec = spec.ahead();
        }
        if writers == 16 {
            let goal = Some(targets::GROUP_COMMIT_16);
            spec = spec.check(STRICT, targets::GROUP_COMMIT_16, goal);
        }
        entries.push(parallel(spec, move |fixture, context| {
            let commits = context.scaled(GROUP_COMMITS_PER_RUN, 4);
            boxed_parallel(GroupCommit::new(fixture, writers, commits))
        }));
    }
    let spec = buffered(format!("mixed_80_20/{MIXED_THREADS}"))
        .ahead()
        .check(IN_MEMORY, targets::MIXED, Some(targets::MIXED_GOAL))
        .explained("2 threads, 1 put in 5, random keys of a 10,000-key store");
    entries.push(parallel(spec, |fixture, context| {
        let ops = context.scaled(PARALLEL_OPS_PER_THREAD, 4);
        boxed_parallel(Mixed::new(fixture, MIXED_THREADS, ops))
    }));
    for threads in [1, 2, 4, 8] {
        let spec = reads(format!("concurrent_reads/{threads}"))
            .explained("N threads reading random keys; wall time of whole runs");
        entries.push(parallel(spec, move |fixture, context| {
            let ops = context.scaled(PARALLEL_OPS_PER_THREAD, 4);
            boxed_parallel(Mixed::reads_only(fixture, threads, ops))
        }));
    }
    let spec = buffered("ttl_put")
        .needs(Feature::Ttl)
        .target(IN_MEMORY, targets::PUT_WITH_TTL);
    entries.push(single(spec, point, |f| boxed(Put::with_ttl(f))));
    let spec = buffered("cas").check(IN_MEMORY, targets::CAS, Some(targets::CAS_GOAL));
    entries.push(single(spec, point, |f| boxed(Cas::new(f))));
    let spec = buffered("transaction")
        .needs(Feature::Transactions)
        .explained("read 1 key, write 3, commit atomically");
    entries.push(single(spec, point, |f| boxed(Transaction::new(f))));
    entries.push(memory_entry());
    entries
}

/// The bulk workloads' spec: every buffered store and backend, with the bulk targets.
fn bulk(workload: &str) -> Spec {
    with_trait(workload)
        .ahead()
        .check(IN_MEMORY, targets::BULK, Some(targets::BULK_GOAL))
        .target(KV_IN_MEMORY, targets::BULK)
        .target(KV_SQLITE, targets::KV_SQLITE_BULK)
}

fn uniform_get(fixture: &PeerFixture) -> Result<Box<dyn Workload>> {
    boxed(PointRead::new(fixture, ReadPattern::Uniform))
}

fn put(fixture: &PeerFixture) -> Result<Box<dyn Workload>> {
    boxed(Put::new(fixture))
}

/// Ratios between side-by-side rows that carry a target or goal of their own.
pub fn derived(quick: bool) -> Vec<Derived> {
    let cairn = |workload: &str| format!("peers/{workload}/{IN_MEMORY}");
    let mut derived = vec![
        Derived::new(
            "peers/concurrent_reads/2 vs 1",
            cairn("concurrent_reads/2"),
            cairn("concurrent_reads/1"),
            "cairn-inmemory read throughput on 2 threads over 1 thread",
        )
        .target(targets::READ_SCALING, Some(targets::READ_SCALING_GOAL)),
        Derived::new(
            "peers/ttl_put vs put/buffered",
            cairn("ttl_put"),
            cairn("put/buffered"),
            "cairn-inmemory put_with_ttl p50 over put p50",
        )
        .goal(targets::PUT_WITH_TTL_GOAL),
    ];
    if !quick {
        derived.push(
            Derived::new(
                "peers/get_at_scale/1000000 vs 1000",
                cairn("get_at_scale/1000000"),
                cairn("get_at_scale/1000"),
                "cairn-inmemory get p50 at 1M keys over get p50 at 1K keys",
            )
            .target(targets::GET_SCALING, Some(targets::GET_SCALING_GOAL)),
        );
    }
    derived
}

/// The side-by-side rows of the CI gate: none yet (the gate's ratios are engine rows).
pub fn gates(_quick: bool) -> Vec<(String, Limit)> {
    Vec::new()
}

/// `fill/sequential`: how fast each store took the read fixture's keys, 1,000 per commit.
fn fill_sequential() -> Entry {
    let spec = Spec::new("fill/sequential", BUFFERED_CLASS, Keys::Read)
        .explained("one fill of the read fixture: keys in order, 1,000 per commit");
    Entry::new(spec.name(), Kind::Throughput, move |context, _| {
        let keys = context.read_keys();
        let mut measured = Vec::new();
        for (label, _) in spec.fixtures(context)? {
            let fixture = context
                .built_fixture(label, keys)
                .ok_or_else(|| nothing_to_measure("fill/sequential"))?;
            let throughput = Throughput {
                runs: 1,
                engine_ops: keys as u64,
                measured: fixture.fill_time(),
                ops_per_sec: count_as_f64(keys as u64)
                    / fixture.fill_time().as_secs_f64().max(1e-9),
            };
            let row = Row::throughput(&spec.row_name(label), &throughput);
            measured.push((label, row, throughput.ops_per_sec));
        }
        Ok(spec.rows(&measured))
    })
}

/// `fill/random`: the same keys in a random order into a fresh store, once per store.
fn fill_random() -> Entry {
    let spec = Spec::new("fill/random", BUFFERED_CLASS, Keys::Read)
        .explained("one fill of a fresh store: keys in random order, 1,000 per commit");
    Entry::new(spec.name(), Kind::Throughput, move |context, _| {
        let keys = context.read_keys();
        let plan = context.runs_plan(1, 1);
        let mut measured = Vec::new();
        for label in spec.stores.labels(context.has_redis()) {
            let mut fill = Fill::new(label, context.places(), keys, FillOrder::Random);
            let throughput = measure::measure_parallel(&mut fill, plan)?;
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
            let figures = run_memory_probe(label, context, keys)?;
            let subject = label.to_string();
            let kind = if figures.server_bytes.is_some() {
                "the server's used_memory growth"
            } else {
                "the process's RSS growth"
            };
            let mut add = |workload: &str, bytes: u64, explained: String| {
                rows.push(
                    Row::bytes(&format!("peers/{workload}/{label}"), bytes, &explained)
                        .side_by_side(workload, &subject),
                );
            };
            add(
                "memory/bytes_per_key",
                figures.bytes_per_key(),
                format!("{kind} over {keys} keys of 100-byte values, per key"),
            );
            if figures.server_bytes.is_none() {
                add(
                    "memory/peak_rss",
                    figures.peak_rss,
                    format!("VmHWM of a process that filled {keys} keys"),
                );
            }
            if let Some(disk) = figures.disk_bytes_per_key() {
                add(
                    "memory/disk_bytes_per_key",
                    disk,
                    format!("the store's files after {keys} keys, settled, per key"),
                );
            }
        }
        context.building_done();
        Ok(rows)
    })
}

/// Runs the `cairn` binary (this process's own) as `bench --memory-probe LABEL --keys N`.
fn run_memory_probe(label: Label, context: &Context, keys: usize) -> Result<MemoryFigures> {
    let failed = |detail: String| WorkloadError::unexpected("memory", format!("{label}: {detail}"));
    let exe = std::env::current_exe().map_err(|error| failed(error.to_string()))?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "--memory-probe", &label.to_string(), "--keys"])
        .arg(keys.to_string());
    if let Some(url) = &context.places().redis_url {
        command.args(["--redis", url]);
    }
    let output = command
        .output()
        .map_err(|error| failed(error.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!(
            "the probe failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("memory "))
        .ok_or_else(|| failed("the probe printed no figures".to_owned()))?;
    MemoryFigures::parse_line(line)
}

/// The child's side of the memory probe: fills `label`'s store and returns its line.
pub fn memory_probe(label: &str, keys: usize, redis_url: &str) -> Result<String> {
    let label: Label = label.parse()?;
    let places = crate::peers::Places {
        redis_url: Some(redis_url.to_owned()),
    };
    Ok(memory::probe(label, &places, keys)?.to_line())
}

//! The side-by-side rows of `cairn bench`: Cairn and its peers (redb, fjall, SQLite, Redis)
//! on the same workloads, in the same process run (`cairn_bench::side_by_side`).
//!
//! Each step measures one workload against every store that shares it and reports one row per
//! store (`peers/<workload>/<subject>`, e.g. `peers/point_read/uniform/redb-buffered`), then a
//! ratio row per peer (`peers/<workload>/cairn vs <subject>`): Cairn's speed over the peer's,
//! so above 1.00x means Cairn is ahead. For latency that is the peer's p50 over Cairn's; for
//! throughput Cairn's ops/s over the peer's. The Cairn row compared is the one in the
//! workload's commit class (`cairn-buffered` or `cairn-strict`); `cairn-inmemory` is shown
//! beside it for reads and buffered writes. The ratio rows of point reads, scans, buffered
//! writes and group commit carry the goal "Cairn ahead" (reported, never failed on).
//!
//! Single-thread workloads are timed in turns (round robin, about 25 ms per store per turn),
//! so every store sees the same machine state; multi-threaded ones (fills, group commit,
//! mixed) run one store after the other. Stores are filled once per run and shared by the
//! workloads that use them: the read fixtures hold 1M keys (100K in quick mode), the write
//! fixtures 10,000 keys whose values the writes overwrite.
//!
//! The memory tier runs each store in a child process (`cairn bench --memory-probe`), since
//! resident memory belongs to a whole process.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use cairn_bench::measure::{self, count_as_f64};
use cairn_bench::peers::{labels_for, Engine, Feature, Label, Mode, Places};
use cairn_bench::side_by_side::memory::{self, MemoryFigures};
use cairn_bench::side_by_side::parallel::{Fill, GroupCommit, Mixed};
use cairn_bench::side_by_side::reads::{PointRead, PrefixScan, RangeScan, ReadPattern};
use cairn_bench::side_by_side::writes::{BatchPut, Cas, Put, Transaction, TtlPut, BATCH_KEYS};
use cairn_bench::side_by_side::{FillOrder, PeerFixture};
use cairn_bench::sizes::{FIXTURE_KEYS, GROUP_COMMIT_WRITERS};
use cairn_bench::{Budget, Latency, ParallelWorkload, Plan, Throughput, Workload};

use super::report::Row;
use super::suite::{latency_row, Context, Kind, Step, POINT_OPS_PER_SAMPLE};
use super::targets;

/// The name every side-by-side step also answers to in `--filter`.
pub const SECTION: &str = "peers";

/// Keys of the read fixtures: 1M, or 100K in quick mode.
const READ_KEYS: usize = 1_000_000;
/// [`READ_KEYS`] in quick mode.
const READ_KEYS_QUICK: usize = 100_000;
/// Commits per run of a group-commit workload, over all writers (quick mode: a quarter).
const GROUP_COMMITS_PER_RUN: u64 = 2_048;
/// Operations per thread per run of the mixed workload.
const MIXED_OPS_PER_THREAD: u64 = 100_000;
/// Threads of the mixed workload: this machine's cores.
const MIXED_THREADS: usize = 2;
/// Keys per prefix of the prefix scan; keys per range of the range scan.
const PREFIX_SCAN_KEYS: usize = 1_000;
const RANGE_SCAN_KEYS: usize = 100;

/// Stores filled once per run, by label and key count.
#[derive(Default)]
pub struct PeerFixtures {
    filled: BTreeMap<(Label, usize), Arc<PeerFixture>>,
}

impl Context {
    /// The fixture of `label` with `keys` keys, built (and filled) on first request.
    fn peer_fixture(&mut self, label: Label, keys: usize) -> Result<Arc<PeerFixture>> {
        if let Some(fixture) = self.peer_fixtures.filled.get(&(label, keys)) {
            return Ok(Arc::clone(fixture));
        }
        self.building(&format!("a {keys}-key {label} store"));
        let fixture = Arc::new(
            PeerFixture::build(label, &self.places, keys)
                .with_context(|| format!("filling a {keys}-key {label} store"))?,
        );
        self.building_done();
        self.peer_fixtures
            .filled
            .insert((label, keys), Arc::clone(&fixture));
        Ok(fixture)
    }

    fn read_keys(&self) -> usize {
        if self.quick() {
            READ_KEYS_QUICK
        } else {
            READ_KEYS
        }
    }

    fn labels(&self, mode: Mode) -> Vec<Label> {
        labels_for(mode, self.places.redis_url.is_some())
    }
}

/// Whether a workload's ratio rows carry the goal "Cairn ahead of the peer".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    CairnAhead,
    None,
}

/// Every side-by-side step.
pub fn steps(quick: bool) -> Vec<Step> {
    let mut steps = vec![fill_sequential_step(), fill_random_step()];
    for pattern in [ReadPattern::Uniform, ReadPattern::Hot] {
        steps.push(read_step(
            &format!("point_read/{}", pattern.name()),
            POINT_OPS_PER_SAMPLE,
            None,
            move |fixture| Ok(PointRead::new(fixture, pattern)?),
        ));
    }
    let largest = if quick { READ_KEYS_QUICK } else { READ_KEYS };
    for keys in [1_000, 10_000, 100_000, 1_000_000] {
        if keys > largest {
            continue;
        }
        steps.push(read_step(
            &format!("get_at_scale/{keys}"),
            POINT_OPS_PER_SAMPLE,
            Some(keys),
            move |fixture| Ok(PointRead::new(fixture, ReadPattern::Uniform)?),
        ));
    }
    steps.push(read_step(
        &format!("scan/prefix_{PREFIX_SCAN_KEYS}"),
        1,
        None,
        |fixture| Ok(PrefixScan::new(fixture, PREFIX_SCAN_KEYS)?),
    ));
    steps.push(read_step(
        &format!("scan/range_{RANGE_SCAN_KEYS}"),
        1,
        None,
        |fixture| Ok(RangeScan::new(fixture, RANGE_SCAN_KEYS)?),
    ));
    steps.push(write_step(
        "put/buffered",
        Mode::Buffered,
        POINT_OPS_PER_SAMPLE,
        Goal::CairnAhead,
        None,
        |fixture| Ok(Put::new(fixture)?),
    ));
    steps.push(write_step(
        "put/strict",
        Mode::Strict,
        1,
        Goal::None,
        None,
        |fixture| Ok(Put::new(fixture)?),
    ));
    steps.push(write_step(
        &format!("batch_{BATCH_KEYS}/strict"),
        Mode::Strict,
        1,
        Goal::None,
        None,
        |fixture| Ok(BatchPut::new(fixture)?),
    ));
    for writers in GROUP_COMMIT_WRITERS {
        steps.push(group_commit_step(writers));
    }
    steps.push(mixed_step());
    steps.push(write_step(
        "ttl_put",
        Mode::Buffered,
        POINT_OPS_PER_SAMPLE,
        Goal::None,
        Some(Feature::Ttl),
        |fixture| Ok(TtlPut::new(fixture)?),
    ));
    steps.push(write_step(
        "cas",
        Mode::Buffered,
        POINT_OPS_PER_SAMPLE,
        Goal::None,
        None,
        |fixture| Ok(Cas::new(fixture)?),
    ));
    steps.push(write_step(
        "transaction",
        Mode::Buffered,
        POINT_OPS_PER_SAMPLE,
        Goal::None,
        None,
        |fixture| Ok(Transaction::new(fixture)?),
    ));
    steps.push(memory_step());
    steps
        .into_iter()
        .map(|step| step.in_section(SECTION))
        .collect()
}

fn row_name(workload: &str, label: Label) -> String {
    format!("{SECTION}/{workload}/{label}")
}

/// The Cairn label a workload of `mode` compares peers with.
fn reference(mode: Mode) -> Label {
    Label::new(Engine::Cairn, mode)
}

/// The rows of one workload: one per store, then Cairn against each peer.
fn side_by_side_rows(
    workload: &str,
    mode: Mode,
    measured: Vec<(Label, Row, f64)>,
    goal: Goal,
    explained: &str,
) -> Vec<Row> {
    let reference_speed = measured
        .iter()
        .find(|(label, _, _)| *label == reference(mode))
        .map(|(_, _, speed)| *speed);
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (label, row, speed) in measured {
        if let Some(cairn) = reference_speed {
            if label.engine != Engine::Cairn {
                let ratio = Row::ratio(
                    &format!("{SECTION}/{workload}/cairn vs {label}"),
                    cairn,
                    speed,
                    &format!(
                        "{} speed over {label}'s ({explained}); above 1.00x Cairn is ahead",
                        reference(mode)
                    ),
                )
                .side_by_side(workload, &label.to_string());
                ratios.push(if goal == Goal::CairnAhead {
                    ratio.goal(&targets::CAIRN_AHEAD)
                } else {
                    ratio
                });
            }
        }
        rows.push(row.side_by_side(workload, &label.to_string()));
    }
    rows.extend(ratios);
    rows
}

/// Speed of a latency figure: operations per second at the p50.
fn latency_speed(latency: &Latency) -> f64 {
    1e9 / count_as_f64(latency.p50_ns.max(1))
}

/// Latency of one workload on the read fixture of every store that shares it, in turns.
fn read_step<W: Workload + 'static>(
    workload: &str,
    ops_per_sample: u32,
    keys: Option<usize>,
    build: impl Fn(&PeerFixture) -> Result<W> + 'static,
) -> Step {
    let workload = workload.to_owned();
    let needs_order = workload.starts_with("scan/");
    Step::new(format!("{SECTION}/{workload}"), move |context, _| {
        let keys = keys.unwrap_or_else(|| context.read_keys());
        let mut measured = Vec::new();
        let mut labels = Vec::new();
        for label in context.labels(Mode::Buffered) {
            let fixture = context.peer_fixture(label, keys)?;
            if needs_order && !fixture.peer().supports(Feature::OrderedScan) {
                continue;
            }
            measured.push(build(&fixture)?);
            labels.push(label);
        }
        let latencies = round_robin_latency(context, &mut measured, ops_per_sample)?;
        let rows = labels
            .into_iter()
            .zip(latencies)
            .map(|(label, latency)| {
                let speed = latency_speed(&latency);
                (
                    label,
                    latency_row(&row_name(&workload, label), &latency),
                    speed,
                )
            })
            .collect();
        Ok(side_by_side_rows(
            &workload,
            Mode::Buffered,
            rows,
            Goal::CairnAhead,
            &format!("p50 latency on a {keys}-key store"),
        ))
    })
    .with_kind(Kind::Latency)
}

fn round_robin_latency<W: Workload>(
    context: &Context,
    workloads: &mut [W],
    ops_per_sample: u32,
) -> Result<Vec<Latency>> {
    let mut dyns: Vec<&mut dyn Workload> = workloads
        .iter_mut()
        .map(|workload| workload as &mut dyn Workload)
        .collect();
    Ok(measure::measure_latency_round_robin(
        &mut dyns,
        context.latency_plan(),
        ops_per_sample,
    )?)
}

/// Latency of one write workload on the write fixture of every store of `mode`'s class that
/// has `feature`, in turns.
fn write_step<W: Workload + 'static>(
    workload: &str,
    mode: Mode,
    ops_per_sample: u32,
    goal: Goal,
    feature: Option<Feature>,
    build: impl Fn(&PeerFixture) -> Result<W> + 'static,
) -> Step {
    let workload = workload.to_owned();
    Step::new(format!("{SECTION}/{workload}"), move |context, _| {
        let mut measured = Vec::new();
        let mut labels = Vec::new();
        for label in context.labels(mode) {
            let fixture = context.peer_fixture(label, FIXTURE_KEYS)?;
            if feature.is_some_and(|feature| !fixture.peer().supports(feature)) {
                continue;
            }
            measured.push(build(&fixture)?);
            labels.push(label);
        }
        let ops_per_run = measured.first().map_or(1, Workload::engine_ops_per_run);
        let latencies = round_robin_latency(context, &mut measured, ops_per_sample)?;
        let rows = labels
            .into_iter()
            .zip(latencies)
            .map(|(label, latency)| {
                let speed = latency_speed(&latency);
                let mut row = latency_row(&row_name(&workload, label), &latency);
                if ops_per_run > 1 {
                    row = row.annotate(&super::report::format_rate(
                        speed * count_as_f64(ops_per_run),
                    ));
                }
                (label, row, speed)
            })
            .collect();
        Ok(side_by_side_rows(
            &workload,
            mode,
            rows,
            goal,
            "p50 latency of one commit",
        ))
    })
    .with_kind(Kind::Latency)
}

/// Throughput of a multi-threaded workload for each label, one store after the other.
fn parallel_rows<P: ParallelWorkload>(
    context: &Context,
    workload: &str,
    labels: &[Label],
    plan: Plan,
    mut build: impl FnMut(Label) -> Result<P>,
    mut annotate: impl FnMut(Label, &P, Row) -> Row,
) -> Result<Vec<(Label, Row, f64)>> {
    let _ = context;
    let mut rows = Vec::new();
    for &label in labels {
        let mut parallel = build(label)?;
        let throughput: Throughput = measure::measure_parallel(&mut parallel, plan)?;
        let row = annotate(
            label,
            &parallel,
            Row::throughput(&row_name(workload, label), &throughput),
        );
        rows.push((label, row, throughput.ops_per_sec));
    }
    Ok(rows)
}

/// `fill/sequential`: how fast each store took the read fixture's keys, 1,000 per commit.
fn fill_sequential_step() -> Step {
    Step::new(format!("{SECTION}/fill/sequential"), |context, _| {
        let keys = context.read_keys();
        let mut rows = Vec::new();
        for label in context.labels(Mode::Buffered) {
            let fixture = context.peer_fixture(label, keys)?;
            let seconds = fixture.fill_time().as_secs_f64();
            let throughput = Throughput {
                runs: 1,
                engine_ops: keys as u64,
                measured: fixture.fill_time(),
                ops_per_sec: if seconds > 0.0 {
                    count_as_f64(keys as u64) / seconds
                } else {
                    0.0
                },
            };
            let row = Row::throughput(&row_name("fill/sequential", label), &throughput)
                .note("one fill of the read fixture: keys in order, 1,000 per commit");
            rows.push((label, row, throughput.ops_per_sec));
        }
        Ok(side_by_side_rows(
            "fill/sequential",
            Mode::Buffered,
            rows,
            Goal::None,
            "keys per second",
        ))
    })
    .with_kind(Kind::Throughput)
}

/// `fill/random`: the same keys in a random order into a fresh store, once per store.
fn fill_random_step() -> Step {
    Step::new(format!("{SECTION}/fill/random"), |context, _| {
        let keys = context.read_keys();
        let labels = context.labels(Mode::Buffered);
        let places = context.places.clone();
        let plan = Plan {
            warm_up: Duration::ZERO,
            budget: Budget::Runs(1),
        };
        let rows = parallel_rows(
            context,
            "fill/random",
            &labels,
            plan,
            |label| Ok(Fill::new(label, &places, keys, FillOrder::Random)),
            |_, _, row| {
                row.note("one fill of a fresh store: keys in random order, 1,000 per commit")
            },
        )?;
        Ok(side_by_side_rows(
            "fill/random",
            Mode::Buffered,
            rows,
            Goal::None,
            "keys per second",
        ))
    })
    .with_kind(Kind::Throughput)
}

/// The write fixture of each of `labels`.
fn write_fixtures(
    context: &mut Context,
    labels: &[Label],
) -> Result<BTreeMap<Label, Arc<PeerFixture>>> {
    labels
        .iter()
        .map(|&label| Ok((label, context.peer_fixture(label, FIXTURE_KEYS)?)))
        .collect()
}

/// Strict puts from `writers` threads on each Strict store.
fn group_commit_step(writers: usize) -> Step {
    let workload = format!("group_commit/{writers}");
    Step::new(format!("{SECTION}/{workload}"), move |context, _| {
        let labels = context.labels(Mode::Strict);
        let commits = if context.quick() {
            GROUP_COMMITS_PER_RUN / 4
        } else {
            GROUP_COMMITS_PER_RUN
        };
        let fixtures = write_fixtures(context, &labels)?;
        let plan = context.parallel_plan();
        let rows = parallel_rows(
            context,
            &workload,
            &labels,
            plan,
            |label| {
                let fixture = fixtures
                    .get(&label)
                    .context("every Strict label has a fixture")?;
                Ok(GroupCommit::new(fixture, writers, commits)?)
            },
            |label, _, row| {
                let row = row.note(&format!(
                    "Strict puts from {writers} writer threads, {commits} per run in all"
                ));
                match fixtures
                    .get(&label)
                    .and_then(|fixture| fixture.peer().commits_per_sync())
                {
                    Some(per_sync) => row.annotate(&format!("{per_sync:.1} commits/fsync")),
                    None => row,
                }
            },
        )?;
        let goal = if writers > 1 {
            Goal::CairnAhead
        } else {
            Goal::None
        };
        Ok(side_by_side_rows(
            &workload,
            Mode::Strict,
            rows,
            goal,
            "commits per second",
        ))
    })
    .with_kind(Kind::Throughput)
}

/// Mixed 80/20 on two threads on each buffered store.
fn mixed_step() -> Step {
    let workload = format!("mixed_80_20/{MIXED_THREADS}");
    Step::new(format!("{SECTION}/{workload}"), move |context, _| {
        let labels = context.labels(Mode::Buffered);
        let fixtures = write_fixtures(context, &labels)?;
        let ops = if context.quick() {
            MIXED_OPS_PER_THREAD / 4
        } else {
            MIXED_OPS_PER_THREAD
        };
        let plan = context.parallel_plan();
        let rows = parallel_rows(
            context,
            &workload,
            &labels,
            plan,
            |label| {
                let fixture = fixtures.get(&label).context("every label has a fixture")?;
                Ok(Mixed::new(fixture, MIXED_THREADS, ops)?)
            },
            |_, _, row| row.note("2 threads, 1 put in 5, random keys of a 10,000-key store"),
        )?;
        Ok(side_by_side_rows(
            &workload,
            Mode::Buffered,
            rows,
            Goal::CairnAhead,
            "operations per second",
        ))
    })
    .with_kind(Kind::Throughput)
}

/// The memory tier: each buffered store (and Cairn in memory) filled in a child process.
fn memory_step() -> Step {
    Step::new(format!("{SECTION}/memory"), |context, _| {
        let keys = context.read_keys();
        let mut rows = Vec::new();
        for label in context.labels(Mode::Buffered) {
            context.building(&format!("{label} in a child process"));
            let figures = run_memory_probe(label, &context.places, keys)
                .with_context(|| format!("memory probe of {label}"))?;
            let subject = label.to_string();
            let per_key = figures.bytes_per_key();
            let memory_kind = if figures.server_bytes.is_some() {
                "the server's used_memory growth"
            } else {
                "the process's RSS growth"
            };
            rows.push(
                Row::bytes(
                    &row_name("memory/bytes_per_key", label),
                    per_key,
                    &format!("{memory_kind} over {keys} keys of 100-byte values, per key"),
                )
                .side_by_side("memory/bytes_per_key", &subject),
            );
            if figures.server_bytes.is_none() {
                rows.push(
                    Row::bytes(
                        &row_name("memory/peak_rss", label),
                        figures.peak_rss,
                        &format!("VmHWM of a process that filled {keys} keys"),
                    )
                    .side_by_side("memory/peak_rss", &subject),
                );
            }
            if let Some(disk) = figures.disk_bytes_per_key() {
                rows.push(
                    Row::bytes(
                        &row_name("memory/disk_bytes_per_key", label),
                        disk,
                        &format!("the store's files after {keys} keys, settled, per key"),
                    )
                    .side_by_side("memory/disk_bytes_per_key", &subject),
                );
            }
        }
        context.building_done();
        Ok(rows)
    })
    .with_kind(Kind::Other)
}

/// Runs this binary as `cairn bench --memory-probe LABEL --keys N` and reads its figures.
fn run_memory_probe(label: Label, places: &Places, keys: usize) -> Result<MemoryFigures> {
    let exe = std::env::current_exe().context("finding the cairn binary")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "--memory-probe", &label.to_string(), "--keys"])
        .arg(keys.to_string());
    if let Some(url) = &places.redis_url {
        command.args(["--redis", url]);
    }
    let output = command.output().context("starting the probe")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the probe failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let line = stdout
        .lines()
        .find(|line| line.starts_with("memory "))
        .context("the probe printed no figures")?;
    Ok(MemoryFigures::parse_line(line)?)
}

/// `cairn bench --memory-probe LABEL --keys N`: the child's side. Prints one line.
pub fn memory_probe(label: &str, keys: usize, redis_url: &str) -> Result<()> {
    let label: Label = label.parse()?;
    let places = Places {
        redis_url: Some(redis_url.to_owned()),
    };
    let figures = memory::probe(label, &places, keys)?;
    println!("{}", figures.to_line());
    Ok(())
}

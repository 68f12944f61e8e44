//! `cairn bench`: run the engine-core workloads in this process and check their targets.
//!
//! The run prints the machine and date, shows a progress bar on stderr (one step per
//! workload; plain lines instead when stderr is not a terminal), then prints a table of every
//! row with its seed target and `DESIGN.md` goal, and the line `N passed, M missed`. A MISS is
//! a result, not an error: the exit code stays 0 (a `validate` mode that fails on a miss is
//! separate work). A workload that goes wrong (an engine error, a get that finds nothing) is
//! an error: the other workloads still run and report, then the command exits 1.
//!
//! `--json FILE` writes the same rows with every percentile; the file is created before
//! anything is measured, so a bad path fails at once instead of after the run.
//!
//! The key-value rows (see `kv`) measure every `KeyValueStore` backend next to its raw client.
//! Redis is measured when a server answers at `--redis URL` or `--start-redis` starts one;
//! otherwise one note says the Redis rows were skipped and why, and the run goes on.

mod kv;
mod peers;
mod report;
mod suite;
mod targets;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::machine::{utc_now, Machine};
use cairn_bench::peers::Places;
use cairn_bench::workloads::kv::Backend;
use kv::RedisChoice;
pub use kv::REDIS_URL_DEFAULT;
use report::Row;
use std::time::Duration;
use suite::{Context, Derived, Kind, Step};

/// What `cairn bench` was asked to do.
#[derive(Debug)]
pub struct Settings {
    /// Short measurements.
    pub quick: bool,
    /// Where to write the JSON results, if anywhere.
    pub json: Option<PathBuf>,
    /// Only workloads whose name contains this (or whose section it names).
    pub filter: Option<String>,
    /// The Redis server to measure, if one answers there.
    pub redis_url: String,
    /// Start a throwaway Redis server instead of using `redis_url`.
    pub start_redis: bool,
    /// Measurement time of every timed row, overriding the mode's.
    pub seconds: Option<Duration>,
    /// Only latency or only throughput steps.
    pub kind: Option<KindArg>,
    /// Instead of a run: the memory probe of one store with this many keys (see `peers`).
    pub memory_probe: Option<(String, usize)>,
}

/// `--kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Latency rows.
    Latency,
    /// Throughput rows.
    Throughput,
}

impl KindArg {
    fn kind(self) -> Kind {
        match self {
            KindArg::Latency => Kind::Latency,
            KindArg::Throughput => Kind::Throughput,
        }
    }
}

/// A workload that failed, and why.
#[derive(Debug, Serialize)]
struct Failure {
    name: String,
    error: String,
}

/// The JSON document `--json` writes.
#[derive(Serialize)]
struct JsonReport<'a> {
    tool: &'static str,
    version: &'static str,
    mode: &'static str,
    build: &'static str,
    date: &'a str,
    machine: &'a Machine,
    filter: Option<&'a str>,
    notes: &'a [String],
    elapsed_seconds: f64,
    passed: usize,
    missed: usize,
    failed: &'a [Failure],
    results: &'a [Row],
}

/// Runs the benchmark as `settings` say.
pub fn run(settings: &Settings) -> Result<()> {
    if let Some((store, keys)) = &settings.memory_probe {
        return peers::memory_probe(store, *keys, &settings.redis_url);
    }
    let started = Instant::now();
    // Declared before the steps run and dropped after them: a server started here outlives
    // every store that uses it.
    let redis = if wants_key_value_rows(settings.filter.as_deref()) {
        RedisChoice::resolve(&settings.redis_url, settings.start_redis)
    } else {
        RedisChoice::resolve_not_needed()
    };
    let (mut steps, derived) = select(
        settings.filter.as_deref(),
        &kv::backends(&redis),
        settings.quick,
    )?;
    if let Some(kind) = settings.kind {
        steps.retain(|step| step.kind.selected_by(kind.kind()));
        if steps.is_empty() {
            bail!("no workload of kind {kind:?} matches the filter");
        }
    }
    let places = Places {
        redis_url: match &redis.backend {
            Some(Backend::Redis { url }) => Some(url.clone()),
            _ => None,
        },
    };
    let json_file = match &settings.json {
        Some(path) => Some(
            File::create(path)
                .with_context(|| format!("cannot create the JSON file {}", path.display()))?,
        ),
        None => None,
    };
    let machine = Machine::detect();
    let date = utc_now();
    let mode = if settings.quick { "quick" } else { "full" };
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut notes = notes(settings.quick, cairn_bench::measure::timer_overhead_ns());
    if steps
        .iter()
        .any(|step| step.section == Some(peers::SECTION))
    {
        notes.push(peers_note());
    }
    if steps.iter().any(|step| step.section == Some(kv::SECTION)) {
        notes.push(kv_note());
    }
    if steps
        .iter()
        .any(|step| matches!(step.section, Some(kv::SECTION | peers::SECTION)))
    {
        notes.extend(redis.described());
        notes.extend(redis.skipped.clone());
    }

    let mut out = io::stdout().lock();
    writeln!(
        out,
        "cairn bench: {mode} mode, {build} build, cairn {}",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(
        out,
        "machine: {} CPUs, {} ({})",
        machine.cpus, machine.cpu_model, machine.platform
    )?;
    writeln!(out, "date:    {date}")?;
    for note in &notes {
        writeln!(out, "note:    {note}")?;
    }
    writeln!(out)?;
    out.flush()?;

    let context = |status| Context::new(settings.quick, settings.seconds, places.clone(), status);
    let (rows, failures) = run_steps(&steps, &derived, context)?;

    write_table_with_failures(&mut out, &rows, &failures)?;
    let (passed, missed) = report::tally(&rows);
    let informational = rows.iter().filter(|row| row.pass.is_none()).count();
    let elapsed = started.elapsed();
    writeln!(
        out,
        "({} rows: {informational} informational; ran in {:.1} s)",
        rows.len(),
        elapsed.as_secs_f64()
    )?;
    writeln!(out, "{passed} passed, {missed} missed")?;
    out.flush()?;

    if let (Some(file), Some(path)) = (json_file, &settings.json) {
        let document = JsonReport {
            tool: "cairn bench",
            version: env!("CARGO_PKG_VERSION"),
            mode,
            build,
            date: &date,
            machine: &machine,
            filter: settings.filter.as_deref(),
            notes: &notes,
            elapsed_seconds: elapsed.as_secs_f64(),
            passed,
            missed,
            failed: &failures,
            results: &rows,
        };
        let mut writer = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut writer, &document)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(writer))
            .and_then(|()| writer.flush())
            .with_context(|| format!("cannot write the JSON file {}", path.display()))?;
    }
    if !failures.is_empty() {
        bail!(
            "{} workload(s) failed: {}",
            failures.len(),
            failures
                .iter()
                .map(|failure| failure.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// True when a run with `filter` may include key-value rows (so Redis is worth looking for).
fn wants_key_value_rows(filter: Option<&str>) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    let every_backend = kv::backends_for_filter();
    suite::steps(&every_backend, false).iter().any(|step| {
        matches!(step.section, Some(kv::SECTION | peers::SECTION)) && step.matches(filter)
    })
}

/// The steps whose name contains `filter` (or whose section it is), plus the inputs of the
/// derived rows it names; and the derived rows whose inputs are all among them.
fn select(
    filter: Option<&str>,
    kv_backends: &[Backend],
    quick: bool,
) -> Result<(Vec<Step>, Vec<Derived>)> {
    let all = suite::steps(kv_backends, quick);
    let Some(filter) = filter else {
        return Ok((all, suite::derived()));
    };
    let mut wanted: Vec<&str> = Vec::new();
    for derived in suite::derived() {
        if derived.name.contains(filter) {
            wanted.extend([derived.numerator, derived.denominator]);
        }
    }
    let names: Vec<String> = all.iter().map(|step| step.name.clone()).collect();
    let steps: Vec<Step> = all
        .into_iter()
        .filter(|step| step.matches(filter) || wanted.contains(&step.name.as_str()))
        .collect();
    if steps.is_empty() {
        bail!(
            "no workload name contains {filter:?}; the workloads are:\n  {}",
            names.join("\n  ")
        );
    }
    let selected = |name: &str| steps.iter().any(|step| step.name == name);
    let derived = suite::derived()
        .into_iter()
        .filter(|derived| selected(derived.numerator) && selected(derived.denominator))
        .collect();
    Ok((steps, derived))
}

/// Runs every step in order with a progress bar; a derived row is added as soon as its
/// inputs are measured.
fn run_steps(
    steps: &[Step],
    derived: &[Derived],
    context: impl FnOnce(Box<dyn FnMut(&str)>) -> Context,
) -> Result<(Vec<Row>, Vec<Failure>)> {
    let progress = ProgressBar::new(steps.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let status_bar = progress.clone();
    let mut context = context(Box::new(move |status: &str| {
        status_bar.set_message(status.to_owned());
    }));
    let mut rows: Vec<Row> = Vec::new();
    let mut failures = Vec::new();
    let mut emitted = vec![false; derived.len()];
    for (index, step) in steps.iter().enumerate() {
        progress.set_message(step.name.clone());
        if progress.is_hidden() {
            let _ = writeln!(
                io::stderr(),
                "[{}/{}] {}",
                index + 1,
                steps.len(),
                step.name
            );
        }
        match step.run(&mut context) {
            Ok(new_rows) => rows.extend(new_rows),
            Err(error) => failures.push(Failure {
                name: step.name.clone(),
                error: format!("{error:#}"),
            }),
        }
        for (done, row) in emitted.iter_mut().zip(derived) {
            if !*done {
                if let Some(row) = row.compute(&rows) {
                    rows.push(row);
                    *done = true;
                }
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok((rows, failures))
}

fn write_table_with_failures(
    out: &mut impl Write,
    rows: &[Row],
    failures: &[Failure],
) -> io::Result<()> {
    report::write_table(out, rows)?;
    for failure in failures {
        writeln!(out, "FAILED {}: {}", failure.name, failure.error)?;
    }
    writeln!(out)
}

fn peers_note() -> String {
    "peers rows (peers/<workload>/<store>): Cairn and redb, fjall, SQLite (rusqlite, WAL) and \
     Redis on the same workload in this run; `cairn vs X` is Cairn's speed over X's (above \
     1.00x Cairn is ahead). Strict = Cairn Strict, redb Durability::Immediate, fjall \
     PersistMode::SyncData per commit, SQLite synchronous=FULL; buffered = each store's own \
     buffered mode. Single-thread rows are timed in turns of ~25 ms per store."
        .to_owned()
}

fn kv_note() -> String {
    "kv rows (group/op/backend/param): each KeyValueStore backend through the trait, then \
     its raw client (-raw: the engine's Db, rusqlite, redis-rs) on the same workload; get and \
     put are timed in alternation (turns of ~25 ms each), and `X vs X-raw` is the ratio \
     of their p50s. Each workload drives its calls inside one block_on of a current-thread \
     tokio runtime it owns."
        .to_owned()
}

fn notes(quick: bool, timer_overhead_ns: u64) -> Vec<String> {
    let mut notes = vec![
        format!(
            "latency rows show p50 / p99 per operation (p95, p99.9 in --json). Point operations \
             are timed in groups of {group} consecutive ops, each sample being the group's mean \
             (one Instant::now() costs ~{timer_overhead_ns} ns here), so their p99 understates \
             a single op's p99; transactions, scans and conflicting commits are timed one op \
             per sample.",
            group = suite::POINT_OPS_PER_SAMPLE
        ),
        "throughput rows: engine ops per second of measured time; concurrent rows time whole \
         runs on fresh threads (std::thread::scope), start-up included."
            .to_owned(),
        "PASS/MISS compares with the seed target; a check mark after a goal means the \
         DESIGN.md goal is met too. Rows without a target are informational."
            .to_owned(),
    ];
    if quick {
        notes.push(
            "quick mode: 0.2 s per row (cairn-strict bulk_put, 1000 fsyncs per run, is left \
             out); omit --quick for 2 s per row."
                .to_owned(),
        );
    }
    if cfg!(debug_assertions) {
        notes.push("DEBUG BUILD: these figures mean nothing; run with --release.".to_owned());
    }
    notes
}

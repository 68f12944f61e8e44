//! `cairn bench`: run the engine-core workloads in this process and check their targets.
//!
//! The run prints the machine and date, shows a progress bar on stderr (one step per
//! workload; plain lines instead when stderr is not a terminal), then prints a table of every
//! row with its seed target and `DESIGN.md` goal, and the line `N passed, M missed`. A MISS is
//! a result, not an error: the exit code stays 0 unless `--validate` asks to fail on one, with
//! exit code 3 ([`EXIT_TARGETS_MISSED`]) after listing the misses. A workload that goes wrong
//! (an engine error, a get that finds nothing) is an error: the other workloads still run and
//! report, then the command exits 1 (with or without `--validate`).
//!
//! Outputs of a run (see `saved`, `compare`, `plot` and `markdown`):
//! - `--json FILE` writes the same rows with every percentile, plus the header, as one
//!   document (`saved::SavedRun`).
//! - `--from-json FILE` measures nothing: it loads a saved run and does everything else as if
//!   its rows had just been measured (header, table, and the outputs below); `--filter` then
//!   keeps the rows whose name contains it.
//! - `--compare FILE` prints, after the table, each row's change against a saved run as a
//!   speed ratio, marking changes beyond `--compare-threshold` (default 10 %).
//! - `--plot DIR` writes an SVG chart per side-by-side workload group and `ratios.svg`.
//! - `--markdown FILE` writes the report the docs include.
//!
//! Every output file is opened (and every saved run read) before anything is measured, so a
//! bad path fails at once instead of after the run; output files are only emptied when their
//! new content is written.
//!
//! The key-value rows (see `kv`) measure every `KeyValueStore` backend next to its raw client.
//! Redis is measured when a server answers at `--redis URL` or `--start-redis` starts one;
//! otherwise one note says the Redis rows were skipped and why, and the run goes on.

mod compare;
mod kv;
mod markdown;
mod peers;
mod plot;
mod report;
mod saved;
mod side_by_side;
mod suite;
mod targets;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::machine::{utc_now, Machine};
use cairn_bench::peers::Places;
use cairn_bench::workloads::kv::Backend;
pub use compare::THRESHOLD_PCT_DEFAULT;
use kv::RedisChoice;
pub use kv::REDIS_URL_DEFAULT;
use report::Row;
use saved::{Failure, OutputFile, SavedRun};
use std::time::Duration;
use suite::{Context, Derived, Kind, Step};

/// The exit code of `cairn bench --validate` when a row missed its seed target.
pub const EXIT_TARGETS_MISSED: u8 = 3;

/// What `cairn bench` was asked to do.
#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent command-line flags"
)]
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
    /// Load these saved rows instead of measuring.
    pub from_json: Option<PathBuf>,
    /// Compare the rows with this saved run.
    pub compare: Option<PathBuf>,
    /// The change, in percent, beyond which a comparison marks a row.
    pub compare_threshold_pct: f64,
    /// Write SVG charts into this directory.
    pub plot: Option<PathBuf>,
    /// Write a Markdown report to this file.
    pub markdown: Option<PathBuf>,
    /// Fail (with [`EXIT_TARGETS_MISSED`]) when a row misses its seed target.
    pub validate: bool,
    /// Print every row in full (the default table has a line per workload).
    pub wide: bool,
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

/// How a run that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// `--validate` found rows that missed their seed target (listed on stdout).
    TargetsMissed,
}

/// The output files and the saved run to compare with, all opened before the run.
struct Outputs {
    json: Option<OutputFile>,
    markdown: Option<OutputFile>,
    baseline: Option<(SavedRun, PathBuf)>,
}

impl Outputs {
    fn open(settings: &Settings) -> Result<Self> {
        let baseline = match &settings.compare {
            Some(path) => Some((SavedRun::load(path)?, path.clone())),
            None => None,
        };
        if let Some(dir) = &settings.plot {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the chart directory {}", dir.display()))?;
        }
        let open = |path: &Option<PathBuf>, what: &str| {
            path.as_deref()
                .map(|path| OutputFile::open(path, what))
                .transpose()
        };
        Ok(Outputs {
            json: open(&settings.json, "JSON")?,
            markdown: open(&settings.markdown, "Markdown")?,
            baseline,
        })
    }
}

/// Runs the benchmark (or loads a saved run) and writes every output `settings` ask for.
pub fn run(settings: &Settings) -> Result<Outcome> {
    if let Some((store, keys)) = &settings.memory_probe {
        peers::memory_probe(store, *keys, &settings.redis_url)?;
        return Ok(Outcome::Done);
    }
    // Read before the outputs are opened: `--from-json F --json F` rewrites F.
    let loaded = match &settings.from_json {
        Some(path) => {
            let mut run = SavedRun::load(path)?;
            if let Some(filter) = &settings.filter {
                run.retain_matching(filter)
                    .with_context(|| format!("in {}", path.display()))?;
            }
            Some((run, path))
        }
        None => None,
    };
    let outputs = Outputs::open(settings)?;
    let document = match loaded {
        Some((run, path)) => {
            let mut out = io::stdout().lock();
            run.write_header(&mut out, Some(path))?;
            out.flush()?;
            run
        }
        None => measure(settings)?,
    };
    finish(settings, outputs, &document)
}

/// Prints the table and the tally, then writes the outputs; fails on failed workloads, then
/// (with `--validate`) reports missed targets.
fn finish(settings: &Settings, outputs: Outputs, document: &SavedRun) -> Result<Outcome> {
    let mut out = io::stdout().lock();
    let rows = &document.results;
    report::write_table(&mut out, document, settings.wide)?;
    let informational = rows.iter().filter(|row| row.pass.is_none()).count();
    writeln!(
        out,
        "({} rows: {informational} informational; ran in {:.1} s)",
        rows.len(),
        document.elapsed_seconds
    )?;
    writeln!(
        out,
        "{} passed, {} missed",
        document.passed, document.missed
    )?;
    out.flush()?;

    if let Some(file) = outputs.json {
        file.replace_with("JSON", |writer| document.save(writer))?;
    }
    if let Some((baseline, path)) = &outputs.baseline {
        writeln!(out)?;
        compare::write_comparison(
            &mut out,
            path,
            baseline,
            document,
            settings.compare_threshold_pct,
        )?;
    }
    let charts = match &settings.plot {
        Some(dir) => {
            let charts = plot::write_charts(dir, rows)?;
            let written = charts.groups.len() + usize::from(charts.ratios.is_some());
            if written == 0 {
                writeln!(out, "plot: no side-by-side rows, no chart written")?;
            } else {
                writeln!(out, "plot: {written} chart(s) written to {}", dir.display())?;
            }
            Some(charts)
        }
        None => None,
    };
    if let Some(file) = outputs.markdown {
        let path = file.path().to_owned();
        let report_dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        file.replace_with("Markdown", |writer| {
            markdown::write_report(
                writer,
                document,
                charts.as_ref().map(|charts| (charts, report_dir.as_path())),
            )
        })?;
        writeln!(out, "markdown: report written to {}", path.display())?;
    }
    out.flush()?;

    let failures = &document.failed;
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
    if settings.validate {
        let misses: Vec<&Row> = rows.iter().filter(|row| row.pass == Some(false)).collect();
        if !misses.is_empty() {
            writeln!(
                out,
                "validate: {} row(s) missed their seed target:",
                misses.len()
            )?;
            for row in misses {
                writeln!(
                    out,
                    "  MISS {}: {} (seed target {})",
                    row.name,
                    row.figure,
                    row.target.as_deref().unwrap_or("-")
                )?;
            }
            out.flush()?;
            return Ok(Outcome::TargetsMissed);
        }
        writeln!(out, "validate: every row with a seed target met it")?;
    }
    Ok(Outcome::Done)
}

/// Measures the selected workloads, printing the header first and the progress meanwhile.
fn measure(settings: &Settings) -> Result<SavedRun> {
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

    let mut document = SavedRun {
        tool: saved::TOOL.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        mode: mode.to_owned(),
        build: build.to_owned(),
        command: Some(saved::command_line()),
        date,
        machine,
        filter: settings.filter.clone(),
        notes,
        elapsed_seconds: 0.0,
        passed: 0,
        missed: 0,
        failed: Vec::new(),
        results: Vec::new(),
    };
    let mut out = io::stdout().lock();
    document.write_header(&mut out, None)?;
    out.flush()?;
    drop(out);

    let context = |status| Context::new(settings.quick, settings.seconds, places.clone(), status);
    let (rows, failures) = run_steps(&steps, &derived, context)?;

    (document.passed, document.missed) = report::tally(&rows);
    document.results = rows;
    document.failed = failures;
    document.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(document)
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

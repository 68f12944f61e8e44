//! `cairn bench`: run the registry's workloads (`cairn_bench::registry`) in this process and
//! check their targets. This module selects, drives and prints; what runs lives in the
//! registry.
//!
//! The run prints the machine and date, shows a progress bar on stderr (one step per
//! workload; plain lines instead when stderr is not a terminal), then prints a table of every
//! row with its target and goal, and the line `N passed, M missed`. A MISS is
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
//! `--gate` checks the CI performance gate (`cairn_bench::registry::gates`: same-run ratios
//! with generous margins) and exits with [`EXIT_GATE_FAILED`] when one fails.
//!
//! Redis is measured when a server answers at `--redis URL` or `--start-redis` starts one;
//! otherwise one note says the Redis rows were skipped and why, and the run goes on.

mod compare;
mod markdown;
mod plot;
mod redis;
mod report;
mod saved;
mod side_by_side;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use cairn_bench::peers::Places;
use cairn_bench::registry::{self, Context, Derived, Entry, Kind};
use indicatif::{ProgressBar, ProgressStyle};

use crate::machine::{utc_now, Machine};
pub use compare::THRESHOLD_PCT_DEFAULT;
use redis::RedisChoice;
pub use redis::REDIS_URL_DEFAULT;
use report::Row;
use saved::{Failure, OutputFile, SavedRun};

/// The exit code of `cairn bench --validate` when a row missed its target.
pub const EXIT_TARGETS_MISSED: u8 = 3;
/// The exit code of `cairn bench --gate` when a gate row failed or is missing.
pub const EXIT_GATE_FAILED: u8 = 4;

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
    /// Fail (with [`EXIT_TARGETS_MISSED`]) when a row misses its target.
    pub validate: bool,
    /// Instead of a run: print every target and goal, with where each comes from.
    pub targets: bool,
    /// Fail (with [`EXIT_GATE_FAILED`]) when a CI gate row fails or is missing.
    pub gate: bool,
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
    /// `--validate` found rows that missed their target (listed on stdout).
    TargetsMissed,
    /// `--gate` found a gate row that failed or is missing (listed on stdout).
    GateFailed,
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
    if settings.targets {
        print!("{}", cairn_bench::targets::markdown_table());
        return Ok(Outcome::Done);
    }
    if let Some((store, keys)) = &settings.memory_probe {
        let line = registry::side_by_side::memory_probe(store, *keys, &settings.redis_url)?;
        println!("{line}");
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
    let tally = (document.passed, document.missed);
    writeln!(out, "{} passed, {} missed", tally.0, tally.1)?;
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
        let names: Vec<&str> = failures
            .iter()
            .map(|failure| failure.name.as_str())
            .collect();
        bail!("{} workload(s) failed: {}", names.len(), names.join(", "));
    }
    if settings.validate {
        let misses: Vec<&Row> = rows.iter().filter(|row| row.pass == Some(false)).collect();
        if !misses.is_empty() {
            let count = misses.len();
            writeln!(out, "validate: {count} row(s) missed their target:")?;
            for row in misses {
                writeln!(
                    out,
                    "  MISS {}: {} (target {})",
                    row.name,
                    row.figure,
                    row.target.as_deref().unwrap_or("-")
                )?;
            }
            out.flush()?;
            return Ok(Outcome::TargetsMissed);
        }
        writeln!(out, "validate: every row with a target met it")?;
    }
    if settings.gate {
        return check_gates(&mut out, document);
    }
    Ok(Outcome::Done)
}

/// `--gate`: every gate row of the run's mode must exist and meet its bound.
fn check_gates(out: &mut impl Write, document: &SavedRun) -> Result<Outcome> {
    let quick = document.mode == "quick";
    let mut failed = 0;
    for (name, limit) in registry::gates(quick) {
        let row = document.results.iter().find(|row| row.name == name);
        let verdict = match row {
            Some(row) if limit.is_met_by(row.value) => "ok  ",
            _ => {
                failed += 1;
                "FAIL"
            }
        };
        let figure = row.map_or("missing from this run", |row| row.figure.as_str());
        writeln!(out, "gate {verdict} {name}: {figure} (gate {})", limit.text)?;
    }
    out.flush()?;
    Ok(if failed == 0 {
        Outcome::Done
    } else {
        Outcome::GateFailed
    })
}

/// Measures the selected workloads, printing the header first and the progress meanwhile.
fn measure(settings: &Settings) -> Result<SavedRun> {
    let started = Instant::now();
    let (mut entries, derived) = select(settings.filter.as_deref(), settings.quick)?;
    if let Some(kind) = settings.kind {
        entries.retain(|entry| entry.kind.selected_by(kind.kind()));
        if entries.is_empty() {
            bail!("no workload of kind {kind:?} matches the filter");
        }
    }
    // Declared before the entries run and dropped after them: a server started here outlives
    // every store that uses it.
    let redis = if entries.iter().any(|entry| entry.name.starts_with("peers/")) {
        RedisChoice::resolve(&settings.redis_url, settings.start_redis)
    } else {
        RedisChoice::not_needed()
    };
    let places = Places {
        redis_url: redis.url.clone(),
    };
    let mut notes = notes(settings.quick, cairn_bench::measure::timer_overhead_ns());
    notes.extend(redis.described());
    let mut document = SavedRun {
        tool: saved::TOOL.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        mode: if settings.quick { "quick" } else { "full" }.to_owned(),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_owned(),
        command: Some(saved::command_line()),
        date: utc_now(),
        machine: Machine::detect(),
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

    let context = |status| Context::new(settings.quick, settings.seconds, places, status);
    let (rows, failures) = run_entries(&entries, &derived, context)?;
    (document.passed, document.missed) = report::tally(&rows);
    document.results = rows;
    document.failed = failures;
    document.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(document)
}

/// The entries whose name contains `filter`, plus the inputs of the derived rows it names;
/// and the derived rows whose inputs are all among them.
fn select(filter: Option<&str>, quick: bool) -> Result<(Vec<Entry>, Vec<Derived>)> {
    let all = registry::entries(quick);
    let Some(filter) = filter else {
        return Ok((all, registry::derived(quick)));
    };
    let mut wanted: Vec<String> = Vec::new();
    for derived in registry::derived(quick) {
        if derived.name.contains(filter) {
            wanted.extend([derived.numerator, derived.denominator]);
        }
    }
    let names: Vec<String> = all.iter().map(|entry| entry.name.clone()).collect();
    let entries: Vec<Entry> = all
        .into_iter()
        .filter(|entry| entry.matches(filter) || wanted.iter().any(|row| entry.makes(row)))
        .collect();
    if entries.is_empty() {
        bail!(
            "no workload name contains {filter:?}; the workloads are:\n  {}",
            names.join("\n  ")
        );
    }
    Ok((entries, registry::derived(quick)))
}

/// Runs every entry in order with a progress bar; a derived row is added as soon as its
/// inputs are measured.
fn run_entries(
    entries: &[Entry],
    derived: &[Derived],
    context: impl FnOnce(Box<dyn FnMut(&str)>) -> Context,
) -> Result<(Vec<Row>, Vec<Failure>)> {
    let progress = ProgressBar::new(entries.len() as u64);
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
    for (index, entry) in entries.iter().enumerate() {
        progress.set_message(entry.name.clone());
        if progress.is_hidden() {
            let (step, steps) = (index + 1, entries.len());
            let _ = writeln!(io::stderr(), "[{step}/{steps}] {}", entry.name);
        }
        match entry.run(&mut context) {
            Ok(new_rows) => rows.extend(new_rows),
            Err(error) => failures.push(Failure {
                name: entry.name.clone(),
                error: format!("{:#}", anyhow::Error::from(error)),
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

fn notes(quick: bool, timer_overhead_ns: u64) -> Vec<String> {
    let mut notes = vec![
        format!(
            "latency: p50 / p99 per op; point ops are timed {} at a time (a clock read costs \
             ~{timer_overhead_ns} ns), so their p99 understates one op's",
            registry::side_by_side::POINT_OPS_PER_SAMPLE
        ),
        "peers/<workload>/<store>: every store on the same workload in this run, timed in \
         turns; `cairn vs X` is Cairn's speed over X's (> 1.00x: Cairn ahead); `kv:X vs X` is \
         the KeyValueStore trait's speed over the client it wraps"
            .to_owned(),
        "strict = fdatasync per commit (Cairn Strict, redb Immediate, fjall SyncData, SQLite \
         FULL); buffered = each store's own buffered mode"
            .to_owned(),
        "PASS/MISS: the row's target; a check mark: its goal is met too".to_owned(),
    ];
    if quick {
        notes.push("quick mode: 0.2 s per row, 100K-key read fixtures".to_owned());
    }
    if cfg!(debug_assertions) {
        notes.push("DEBUG BUILD: these figures mean nothing; run with --release.".to_owned());
    }
    notes
}

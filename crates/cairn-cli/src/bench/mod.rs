//! `cairn bench`: runs the registry's workloads in this process, or loads a saved run, then
//! prints the table and writes the outputs asked for. A MISS is a result: the exit code stays 0
//! unless `--validate` ([`EXIT_TARGETS_MISSED`]) or `--gate` ([`EXIT_GATE_FAILED`]) asks. A
//! failed workload is an error: the others still run and report, then the command exits 1.
//! Every output file is opened and every saved run read before anything is measured, so a bad
//! path fails at once. Without a Redis server one note says the Redis rows were skipped and why.

mod markdown;
mod plot;
mod report;
mod saved;

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use cairn_bench::peers::{redis::RedisPeer, Places};
use cairn_bench::registry::{self, Context, Derived, Entry, Kind};
use cairn_testkit::redis_server::RedisServer;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{BenchArgs, KindArg};
use report::Row;
use saved::{Failure, SavedRun};

const EXIT_TARGETS_MISSED: u8 = 3;
const EXIT_GATE_FAILED: u8 = 4;

pub fn run(settings: &BenchArgs) -> Result<ExitCode> {
    if settings.targets {
        print!("{}", cairn_bench::targets::markdown_table());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(store) = &settings.memory_probe {
        let line = registry::side_by_side::memory_probe(store, settings.keys, &settings.redis)?;
        println!("{line}");
        return Ok(ExitCode::SUCCESS);
    }
    // Read before the outputs are opened: `--from-json F --json F` rewrites F.
    let load = |path: &Option<PathBuf>| path.as_deref().map(SavedRun::load).transpose();
    let (mut loaded, from_json) = (load(&settings.from_json)?, settings.from_json.as_deref());
    if let (Some(run), Some(filter), Some(path)) = (&mut loaded, &settings.filter, from_json) {
        let in_file = || format!("in {}", path.display());
        run.retain_matching(filter).with_context(in_file)?;
    }
    let baseline = load(&settings.compare)?;
    if let Some(dir) = &settings.plot {
        let error = || format!("cannot create the chart directory {}", dir.display());
        std::fs::create_dir_all(dir).with_context(error)?;
    }
    // Opened (never emptied) before the run so that a bad path fails at once, and replaced
    // only once the new content is ready: a run that stops early leaves the previous file.
    for (path, what) in [(&settings.json, "JSON"), (&settings.markdown, "Markdown")] {
        let Some(path) = path else { continue };
        let file = OpenOptions::new().append(true).create(true).open(path);
        file.with_context(|| format!("cannot create the {what} file {}", path.display()))?;
    }
    if let Some(run) = &loaded {
        run.write_header(&mut io::stdout().lock(), from_json)?;
    }
    let run = loaded.map_or_else(|| measure(settings), Ok)?;
    let mut out = io::stdout().lock();
    report::write_table(&mut out, &run, settings.wide)?;
    if let Some(path) = &settings.json {
        replace(path, "JSON", serde_json::to_string_pretty(&run)? + "\n")?;
    }
    if let (Some(before), Some(path)) = (&baseline, &settings.compare) {
        let threshold = settings.compare_threshold;
        saved::write_comparison(&mut out, path, before, &run, threshold)?;
    }
    if let Some(dir) = &settings.plot {
        match plot::write_charts(dir, &run.results)? {
            0 => writeln!(out, "plot: no side-by-side rows, no chart written")?,
            n => writeln!(out, "plot: {n} chart(s) written to {}", dir.display())?,
        }
    }
    if let Some(path) = &settings.markdown {
        let mut report = Vec::new();
        markdown::write_report(&mut report, &run, settings.plot.as_deref(), path)?;
        replace(path, "Markdown", report)?;
        writeln!(out, "markdown: report written to {}", path.display())?;
    }
    check(&mut out, settings, &run)
}

fn replace(path: &Path, what: &str, content: impl AsRef<[u8]>) -> Result<()> {
    let error = || format!("cannot write the {what} file {}", path.display());
    std::fs::write(path, content).with_context(error)
}

/// Fails on failed workloads; then lists the rows that missed their target (`--validate`)
/// and checks that every gate row of the run's mode exists and meets its bound (`--gate`).
fn check(out: &mut impl Write, settings: &BenchArgs, run: &SavedRun) -> Result<ExitCode> {
    out.flush()?;
    if !run.failed.is_empty() {
        let names: Vec<&str> = run.failed.iter().map(|it| it.name.as_str()).collect();
        bail!("{} workload(s) failed: {}", names.len(), names.join(", "));
    }
    let miss = |row: &&Row| row.pass == Some(false);
    let misses: Vec<&Row> = run.results.iter().filter(miss).collect();
    if settings.validate && misses.is_empty() {
        writeln!(out, "validate: every row with a target met it")?;
    } else if settings.validate {
        let count = misses.len();
        writeln!(out, "validate: {count} row(s) missed their target:")?;
        for row in misses {
            let target = row.target.as_deref().unwrap_or("-");
            writeln!(out, "  MISS {}: {} (target {target})", row.name, row.figure)?;
        }
        out.flush()?;
        return Ok(ExitCode::from(EXIT_TARGETS_MISSED));
    }
    let mut all_met = true;
    let gates = registry::gates(run.mode == "quick");
    for (name, limit) in gates.into_iter().filter(|_| settings.gate) {
        let row = run.results.iter().find(|row| row.name == name);
        let met = row.is_some_and(|row| limit.is_met_by(row.value));
        all_met &= met;
        let verdict = if met { "ok  " } else { "FAIL" };
        let figure = row.map_or("missing from this run", |row| row.figure.as_str());
        writeln!(out, "gate {verdict} {name}: {figure} (gate {})", limit.text)?;
    }
    out.flush()?;
    Ok(ExitCode::from(if all_met { 0 } else { EXIT_GATE_FAILED }))
}

/// Measures the selected workloads, printing the header first and the progress meanwhile.
fn measure(settings: &BenchArgs) -> Result<SavedRun> {
    let (started, quick) = (Instant::now(), settings.quick);
    let (mut entries, derived) = select(settings.filter.as_deref(), quick)?;
    if let Some(kind) = settings.kind {
        let wanted = match kind {
            KindArg::Latency => Kind::Latency,
            KindArg::Throughput => Kind::Throughput,
        };
        entries.retain(|entry| entry.kind.selected_by(wanted));
        if entries.is_empty() {
            bail!("no workload of kind {kind:?} matches the filter");
        }
    }
    let mut notes = notes(quick);
    // Declared before the entries run and dropped after them: a server started here outlives
    // every store that uses it.
    let (mut server, mut redis_url) = (None, None);
    if entries.iter().any(Entry::may_use_redis) {
        let url = &settings.redis;
        let (answered, found) = if settings.start_redis {
            let started = RedisServer::start().map(|it| server.insert(it).url());
            let why = |e| format!("--start-redis could not start redis-server: {e}");
            let found = "a redis-server started for this run at";
            (started.map_err(why), found)
        } else {
            let hint = "pass --redis URL or --start-redis";
            let opened = RedisPeer::open(url).map(|_| url.clone());
            let why = |e| format!("no server answered at {url} ({e}); {hint}");
            (opened.map_err(why), "the server at")
        };
        notes.push(match &answered {
            Ok(url) => format!("Redis: {found} {url}"),
            Err(why) => format!("Redis rows skipped: {why}"),
        });
        redis_url = answered.ok();
    }
    if settings.late {
        let aged = cairn_bench::late::age_process(cairn_bench::late::LATE_KEYS, |step| {
            eprintln!("{step}");
        });
        notes.push(aged.to_string());
    }
    let mut run = SavedRun::new(quick, settings.filter.clone(), notes);
    run.write_header(&mut io::stdout().lock(), None)?;
    let context = |status| Context::new(quick, settings.seconds, Places { redis_url }, status);
    (run.results, run.failed) = run_entries(&entries, &derived, context)?;
    (run.passed, run.missed) = cairn_bench::report::tally(&run.results);
    run.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(run)
}

/// The entries whose name contains `filter`, plus the inputs of the derived rows it names;
/// and the derived rows (each is added once all its inputs are measured).
fn select(filter: Option<&str>, quick: bool) -> Result<(Vec<Entry>, Vec<Derived>)> {
    let (all, derived) = (registry::entries(quick), registry::derived(quick));
    let Some(filter) = filter else {
        return Ok((all, derived));
    };
    let wanted: Vec<&String> = (derived.iter())
        .filter(|derived| derived.name.contains(filter))
        .flat_map(|derived| [&derived.numerator, &derived.denominator])
        .collect();
    let names = (all.iter()).fold(String::new(), |names, it| names + "\n  " + &it.name);
    let entries: Vec<Entry> = (all.into_iter())
        .filter(|entry| entry.matches(filter) || wanted.iter().any(|row| entry.makes(row)))
        .collect();
    if entries.is_empty() {
        bail!("no workload name contains {filter:?}; the workloads are:{names}");
    }
    Ok((entries, derived))
}

/// Runs every entry in order; a derived row is added as soon as its inputs are measured.
fn run_entries(
    entries: &[Entry],
    derived: &[Derived],
    context: impl FnOnce(Box<dyn FnMut(&str)>) -> Context,
) -> Result<(Vec<Row>, Vec<Failure>)> {
    let progress = ProgressBar::new(entries.len() as u64);
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}");
    let style = style.context("progress bar template")?;
    progress.set_style(style.progress_chars("=> "));
    let status_bar = progress.clone();
    let mut context = context(Box::new(move |status: &str| {
        status_bar.set_message(status.to_owned());
    }));
    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    let mut pending: Vec<&Derived> = derived.iter().collect();
    for (step, entry) in (1..).zip(entries) {
        progress.set_message(entry.name.clone());
        if progress.is_hidden() {
            let _ = writeln!(io::stderr(), "[{step}/{}] {}", entries.len(), entry.name);
        }
        match entry.run(&mut context) {
            Ok(new_rows) => rows.extend(new_rows),
            Err(error) => {
                let name = entry.name.clone();
                let error = format!("{:#}", anyhow::Error::from(error));
                failures.push(Failure { name, error });
            }
        }
        pending.retain(|derived| derived.compute(&rows).map(|row| rows.push(row)).is_none());
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok((rows, failures))
}

/// How the rows were measured: printed after the `--wide` table and in the report.
fn notes(quick: bool) -> Vec<String> {
    let per_sample = registry::side_by_side::POINT_OPS_PER_SAMPLE;
    let timer_overhead_ns = cairn_bench::measure::timer_overhead_ns();
    let mut notes = vec![
        format!(
            "latency: p50 / p99 per op; point ops are timed {per_sample} at a time (a clock \
             read costs ~{timer_overhead_ns} ns), so their p99 understates one op's"
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

//! Saved runs: the JSON that `--json` writes and `--from-json` and `--compare` read, and the
//! comparison of two runs. Loading checks the `tool` field (later fields may be absent) and
//! recomputes each row's figure, so a loaded run prints like the live one; any other file is
//! an error naming it, never a panic. A compared row's change is a speed ratio in the row's
//! better direction (above 1: this run is better), marked beyond the threshold either way
//! (`1 + PCT/100` or its inverse, so 2x better and 2x worse count the same).

use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::report::{self, Better, Row};
use crate::machine::{utc_now, Machine};

const TOOL: &str = "cairn bench";
#[cfg(debug_assertions)]
const BUILD: &str = "debug";
#[cfg(not(debug_assertions))]
const BUILD: &str = "release";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

/// A run: how, when and where it measured (`mode`: quick or full; `build`: release or debug),
/// its tally, the failed workloads, and every row in the order measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedRun {
    pub tool: String,
    pub version: String,
    pub mode: String,
    pub build: String,
    pub command: Option<String>,
    pub date: String,
    pub machine: Machine,
    pub filter: Option<String>,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub elapsed_seconds: f64,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub missed: usize,
    #[serde(default)]
    pub failed: Vec<Failure>,
    pub results: Vec<Row>,
}

impl SavedRun {
    /// A run of this process, started now, with nothing measured yet.
    pub fn new(quick: bool, filter: Option<String>, notes: Vec<String>) -> Self {
        let arguments: Vec<String> = (std::env::args_os().skip(1))
            .map(|argument| argument.to_string_lossy().into_owned())
            .collect();
        let quoted = shlex::try_join(arguments.iter().map(String::as_str));
        let command = format!("cairn {}", quoted.unwrap_or_else(|_| arguments.join(" ")));
        SavedRun {
            tool: TOOL.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            mode: if quick { "quick" } else { "full" }.to_owned(),
            build: BUILD.to_owned(),
            command: Some(command),
            date: utc_now(),
            machine: Machine::detect(),
            filter,
            notes,
            elapsed_seconds: 0.0,
            passed: 0,
            missed: 0,
            failed: Vec::new(),
            results: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the saved run {}", path.display()))?;
        let context = || {
            let path = path.display();
            format!("{path} is not a JSON file written by `cairn bench --json`")
        };
        let mut run: SavedRun = serde_json::from_str(&text).with_context(context)?;
        if run.tool != TOOL {
            let error = anyhow::anyhow!("its tool is {:?}, not {TOOL:?}", run.tool);
            return Err(error.context(context()));
        }
        run.results.iter_mut().for_each(Row::refresh_figure);
        Ok(run)
    }

    /// Keeps only the rows whose name contains `filter`; an error when none does.
    pub fn retain_matching(&mut self, filter: &str) -> Result<()> {
        let names: Vec<String> = self.results.iter().map(|row| row.name.clone()).collect();
        self.results.retain(|row| row.name.contains(filter));
        self.failed.retain(|failure| failure.name.contains(filter));
        if self.results.is_empty() && self.failed.is_empty() {
            let names = names.join("\n  ");
            bail!("no row name contains {filter:?}; the rows are:\n  {names}");
        }
        let earlier = self.filter.take().map(|it| format!("{it}, then "));
        self.filter = Some(earlier.unwrap_or_default() + filter);
        (self.passed, self.missed) = cairn_bench::report::tally(&self.results);
        Ok(())
    }

    /// Prints the header; `loaded_from` names a loaded run's file.
    pub fn write_header(&self, out: &mut impl Write, loaded_from: Option<&Path>) -> io::Result<()> {
        let (mode, build) = (&self.mode, self.build_text());
        write!(out, "cairn bench: {mode} mode, {build}")?;
        if let Some(path) = loaded_from {
            write!(out, " (loaded from {})", path.display())?;
        }
        let machine = self.machine_text();
        writeln!(out, "\nmachine: {machine}\ndate:    {}\n", self.date)?;
        out.flush()
    }

    /// `2 CPUs, AMD EPYC (linux-x86_64)`.
    pub fn machine_text(&self) -> String {
        let machine = &self.machine;
        let (cpus, model, platform) = (machine.cpus, &machine.cpu_model, &machine.platform);
        format!("{cpus} CPUs, {model} ({platform})")
    }

    pub fn build_text(&self) -> String {
        format!("{} build, cairn {}", self.build, self.version)
    }
}

/// The speed ratio of `after` over `before` in their better direction (above 1: `after` is
/// better); `None` when the units differ or a value is zero, negative or not finite.
pub fn speed_ratio(before: &Row, after: &Row) -> Option<f64> {
    let usable = |value: f64| value.is_finite() && value > 0.0;
    if before.unit != after.unit || !usable(before.value) || !usable(after.value) {
        return None;
    }
    let ratio = match after.better() {
        Better::Lower => before.value / after.value,
        Better::Higher => after.value / before.value,
    };
    ratio.is_finite().then_some(ratio)
}

/// `better` or `WORSE` when a speed ratio is beyond `threshold_pct` either way, else empty.
fn verdict(ratio: f64, threshold_pct: f64) -> &'static str {
    let limit = 1.0 + threshold_pct / 100.0;
    match ratio {
        _ if ratio > limit => "better",
        _ if ratio * limit < 1.0 => "WORSE",
        _ => "",
    }
}

/// Prints the comparison of `after` (this run) with `before` (the saved run at `path`): both
/// runs, warnings, then every row of either run (this run's first), the change and its mark.
pub fn write_comparison(
    out: &mut impl Write,
    path: &Path,
    before: &SavedRun,
    after: &SavedRun,
    threshold_pct: f64,
) -> io::Result<()> {
    let [old, new] = [before, after].map(|run| {
        let (date, machine, mode) = (&run.date, run.machine_text(), &run.mode);
        format!("{date}, {machine}, {mode} mode, {}", run.build_text())
    });
    writeln!(
        out,
        "\ncomparison with {}\n  change: speed ratio after/before in each row's better \
         direction (> 1: better), marked beyond {threshold_pct} %\n  before: {old}\n  after : \
         {new}",
        path.display()
    )?;
    let differ = |what: &str, [old, new]: [String; 2], why: &str| {
        let text = format!("the runs are {what} ({old} before, {new} after): {why}");
        (old != new).then_some(text)
    };
    let build = |which: &str, SavedRun { build, .. }: &SavedRun| {
        let text = format!("the {which} run is a {build} build: its figures mean nothing");
        (build != "release").then_some(text)
    };
    let machines = [before, after].map(SavedRun::machine_text);
    let modes = [before, after].map(|run| run.mode.clone());
    let not_the_code = "changes may come from the machine, not the code";
    let warnings = [
        differ("from different machines", machines, not_the_code),
        build("saved", before),
        build("current", after),
        differ("in different modes", modes, "quick figures are noisier"),
    ];
    for warning in warnings.into_iter().flatten() {
        writeln!(out, "warning: {warning}")?;
    }
    let rows = after.results.iter().chain(&before.results);
    let names = report::unique(rows.map(|row| row.name.as_str()));
    let figure = |row: Option<&Row>| row.map_or_else(|| "-".into(), Row::headline);
    let lines = names.into_iter().map(|name| {
        let [earlier, later] =
            [before, after].map(|run| run.results.iter().find(|it| it.name == name));
        let ratio = earlier.zip(later).and_then(|(a, b)| speed_ratio(a, b));
        let mark = match (earlier, later, ratio) {
            (None, ..) => "added",
            (_, None, _) => "removed",
            (.., None) => "n/a",
            (.., Some(ratio)) => verdict(ratio, threshold_pct),
        };
        let ratio = ratio.map_or_else(|| "-".into(), |ratio| format!("{ratio:.2}x"));
        let name = report::shorten(name, 60);
        [name, figure(earlier), figure(later), ratio, mark.into()]
    });
    let lines: Vec<[String; 5]> = lines.collect();
    // The marks, in the order the summary line counts them.
    let marks = ["better", "WORSE", "", "n/a", "added", "removed"];
    let count = marks.map(|mark| lines.iter().filter(|[.., it]| it == mark).count());
    let headers = ["workload", "before", "after", "change", ""];
    let table = report::terminal_table(headers, lines, &[1, 2, 3]);
    writeln!(out, "\n{}", table.trim_fmt())?;
    let [better, worse, within, not_comparable, added, removed] = count;
    let compared = better + worse + within + not_comparable;
    writeln!(
        out,
        "{compared} rows compared: {better} better, {worse} worse beyond {threshold_pct} %, \
         {within} within; {not_comparable} not comparable; {added} added, {removed} removed\n"
    )
}

#[cfg(test)]
mod tests {
    use super::super::report::Unit::{Bytes, Nanoseconds as Ns, OpsPerSecond as Ops, Ratio};
    use super::*;
    use cairn_bench::targets;

    #[test]
    fn the_speed_ratio_follows_each_rows_better_direction() {
        let at = |unit, value| {
            let mut row = Row::default().side_by_side("w", "cairn-strict");
            (row.unit, row.value) = (unit, value);
            row
        };
        let other = |value| Row::ratio("x vs x-raw", value, 1.0, "an overhead");
        let (scaling, goal) = (&targets::READ_SCALING, &targets::GET_SCALING_GOAL);
        let pairs = [
            (at(Ns, 200.0), at(Ns, 100.0), Some(2.0)),
            (at(Ops, 200.0), at(Ops, 100.0), Some(0.5)),
            (at(Bytes, 100.0), at(Bytes, 400.0), Some(0.25)),
            // Cairn's speed over a peer's, then an overhead: better higher, then lower.
            (at(Ratio, 2.0), at(Ratio, 3.0), Some(1.5)),
            (other(1.0), other(2.0), Some(0.5)),
            // A bound says it first (`flat (<= 1.2x)` is a bound below).
            (other(1.0), other(2.0).target(scaling), Some(2.0)),
            (other(1.0), at(Ratio, 2.0).goal(goal), Some(0.5)),
            (at(Ns, 0.0), at(Ns, 1.0), None),
            (at(Ns, f64::NAN), at(Ns, 1.0), None),
            (at(Bytes, 1.0), at(Ns, 1.0), None),
        ];
        for (before, after, ratio) in pairs {
            assert_eq!(speed_ratio(&before, &after), ratio, "{after:?}");
        }
        // The threshold is exclusive, and applies to a ratio and its inverse alike.
        let by_10_pct = |ratio| verdict(ratio, 10.0);
        let verdicts = [1.10, 1.11, 1.0 / 1.10, 1.0 / 1.11].map(by_10_pct);
        assert_eq!(verdicts, ["", "better", "", "WORSE"]);
        assert_eq!([verdict(0.95, 1.0), verdict(1.0, 0.0)], ["WORSE", ""]);
    }
}

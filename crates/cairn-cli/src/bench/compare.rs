//! `--compare FILE`: this run's rows next to a saved run's, as speed ratios.
//!
//! Rows are matched by name. For each pair the change is a *speed ratio* in the row's better
//! direction ([`Row::better`]): before / after for latencies and sizes, after / before for
//! throughputs and speed-ups, so above 1 always means this run is better. A change beyond the
//! threshold (`--compare-threshold PCT`, a ratio above `1 + PCT/100` or below its inverse, so
//! that 2x better and 2x worse count the same) is marked `better` or `WORSE`. Rows only in one
//! run are listed as `added` or `removed`; a pair whose units differ, or with a zero or
//! non-finite value, has no change (`n/a`). The header names both runs' dates, machines, modes
//! and builds, and warns when the machines or modes differ or either run is a debug build,
//! since the figures then say little about the code.

use std::io::{self, Write};
use std::path::Path;

use super::report::{self, Better, Row};
use super::saved::{describe_machine, SavedRun};

/// The default `--compare-threshold`, in percent.
pub const THRESHOLD_PCT_DEFAULT: f64 = 10.0;

/// The marks of a change, in the order the summary line counts them.
const MARKS: [&str; 6] = ["better", "WORSE", "", "n/a", "added", "removed"];

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
        _ if ratio > limit => MARKS[0],
        _ if ratio * limit < 1.0 => MARKS[1],
        _ => MARKS[2],
    }
}

/// Every row of either run (this run's in order, then those only in the saved run) as its
/// cells: name, figure before, figure after, speed ratio, mark.
fn changes(before: &[Row], after: &[Row], threshold_pct: f64) -> Vec<[String; 5]> {
    let mut names: Vec<&str> = Vec::new();
    for row in after.iter().chain(before) {
        if !names.contains(&row.name.as_str()) {
            names.push(&row.name);
        }
    }
    let find = |rows: &'_ [Row], name: &str| rows.iter().find(|row| row.name == name).cloned();
    let figure = |row: &Option<Row>| row.as_ref().map_or_else(|| "-".into(), Row::headline);
    let lines = names.into_iter().map(|name| {
        let (earlier, later) = (find(before, name), find(after, name));
        let ratio = earlier.as_ref().zip(later.as_ref());
        let ratio = ratio.and_then(|(earlier, later)| speed_ratio(earlier, later));
        let mark = match (&earlier, &later, ratio) {
            (None, ..) => MARKS[4],
            (_, None, _) => MARKS[5],
            (.., None) => MARKS[3],
            (.., Some(ratio)) => verdict(ratio, threshold_pct),
        };
        let ratio = ratio.map_or_else(|| "-".into(), |ratio| format!("{ratio:.2}x"));
        let name = report::shorten(name, 60);
        [name, figure(&earlier), figure(&later), ratio, mark.into()]
    });
    lines.collect()
}

/// Warnings about runs whose figures do not compare well.
fn warnings(before: &SavedRun, after: &SavedRun) -> Vec<String> {
    let mut warnings = Vec::new();
    if before.machine != after.machine {
        let [before, after] = [before, after].map(|run| describe_machine(&run.machine));
        warnings.push(format!(
            "the runs are from different machines ({before} before, {after} after): changes \
             may come from the machine, not the code"
        ));
    }
    for (which, run) in [("saved", before), ("current", after)] {
        if run.build != "release" {
            let build = &run.build;
            warnings.push(format!(
                "the {which} run is a {build} build: its figures mean nothing"
            ));
        }
    }
    if before.mode != after.mode {
        let (before, after) = (&before.mode, &after.mode);
        warnings.push(format!(
            "the runs are in different modes ({before} before, {after} after): quick figures \
             are noisier"
        ));
    }
    warnings
}

/// Prints the comparison of `after` (this run) with `before` (the saved run at `path`).
pub fn write_comparison(
    out: &mut impl Write,
    path: &Path,
    before: &SavedRun,
    after: &SavedRun,
    threshold_pct: f64,
) -> io::Result<()> {
    writeln!(out, "comparison with {}", path.display())?;
    writeln!(
        out,
        "  change: speed ratio after/before in each row's better direction (> 1: better), \
         marked beyond {threshold_pct} %"
    )?;
    for (label, run) in [("before", before), ("after ", after)] {
        let machine = describe_machine(&run.machine);
        let (date, mode, build, version) = (&run.date, &run.mode, &run.build, &run.version);
        writeln!(
            out,
            "  {label}: {date}, {machine}, {mode} mode, {build} build, cairn {version}"
        )?;
    }
    for warning in warnings(before, after) {
        writeln!(out, "warning: {warning}")?;
    }
    let changes = changes(&before.results, &after.results, threshold_pct);
    let count = MARKS.map(|mark| changes.iter().filter(|line| line[4] == mark).count());
    let mut table = report::terminal_table(["workload", "before", "after", "change", ""]);
    table.add_rows(changes);
    report::right_align(&mut table, &[1, 2, 3]);
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
    use super::super::report::Unit;
    use super::super::side_by_side::test_rows;
    use super::*;
    use cairn_bench::targets;

    fn row(unit: Unit, value: f64) -> Row {
        test_rows::measured("w", "s", unit, value)
    }

    #[test]
    fn the_speed_ratio_follows_each_rows_direction() {
        let ratio = |before: Row, after: Row| speed_ratio(&before, &after).expect("comparable");
        let latency = ratio(row(Unit::Nanoseconds, 200.0), row(Unit::Nanoseconds, 100.0));
        let rate = ratio(
            row(Unit::OpsPerSecond, 200.0),
            row(Unit::OpsPerSecond, 100.0),
        );
        let memory = ratio(row(Unit::Bytes, 100.0), row(Unit::Bytes, 400.0));
        let speedup = ratio(
            test_rows::ratio("w", "s", 2.0),
            test_rows::ratio("w", "s", 3.0),
        );
        let overhead = |value| row(Unit::Ratio, value).target(&targets::GET_SCALING);
        let overhead = ratio(overhead(1.0), overhead(2.0));
        let ratios = [latency, rate, memory, speedup, overhead].map(|ratio| format!("{ratio:.2}"));
        assert_eq!(ratios, ["2.00", "0.50", "0.25", "1.50", "0.50"]);
        let (zero, nan) = (
            row(Unit::Nanoseconds, 0.0),
            row(Unit::Nanoseconds, f64::NAN),
        );
        assert_eq!(speed_ratio(&zero, &row(Unit::Nanoseconds, 1.0)), None);
        assert_eq!(speed_ratio(&nan, &row(Unit::Nanoseconds, 1.0)), None);
        assert_eq!(
            speed_ratio(&row(Unit::Bytes, 1.0), &row(Unit::Nanoseconds, 1.0)),
            None
        );
    }

    #[test]
    fn the_threshold_is_symmetric_and_exclusive() {
        let verdicts = [
            (1.10, 10.0),
            (1.11, 10.0),
            (1.0 / 1.10, 10.0),
            (1.0 / 1.11, 10.0),
        ];
        let verdicts = verdicts.map(|(ratio, threshold)| verdict(ratio, threshold));
        assert_eq!(verdicts, ["", "better", "", "WORSE"]);
        assert_eq!([verdict(0.95, 1.0), verdict(1.0, 0.0)], ["WORSE", ""]);
    }
}

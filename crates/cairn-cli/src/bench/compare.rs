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
        _ if ratio > limit => "better",
        _ if ratio * limit < 1.0 => "WORSE",
        _ => "",
    }
}

/// Prints the comparison of `after` (this run) with `before` (the saved run at `path`): every
/// row of either run (this run's in order, then those only in the saved run) with both
/// figures, the speed ratio and its mark.
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
    if before.machine != after.machine {
        let [before, after] = [before, after].map(|run| describe_machine(&run.machine));
        writeln!(
            out,
            "warning: the runs are from different machines ({before} before, {after} after): \
             changes may come from the machine, not the code"
        )?;
    }
    for (which, run) in [("saved", before), ("current", after)] {
        if run.build != "release" {
            let build = &run.build;
            writeln!(
                out,
                "warning: the {which} run is a {build} build: its figures mean nothing"
            )?;
        }
    }
    if before.mode != after.mode {
        let (before, after) = (&before.mode, &after.mode);
        writeln!(
            out,
            "warning: the runs are in different modes ({before} before, {after} after): quick \
             figures are noisier"
        )?;
    }

    let mut names: Vec<&str> = Vec::new();
    for row in after.results.iter().chain(&before.results) {
        if !names.contains(&row.name.as_str()) {
            names.push(&row.name);
        }
    }
    let figure = |row: Option<&Row>| row.map_or_else(|| "-".into(), Row::headline);
    let mut count = [0; MARKS.len()];
    let lines = names.into_iter().map(|name| {
        let [earlier, later] =
            [before, after].map(|run| run.results.iter().find(|row| row.name == name));
        let ratio = earlier
            .zip(later)
            .and_then(|(earlier, later)| speed_ratio(earlier, later));
        let mark = match (earlier, later, ratio) {
            (None, ..) => "added",
            (_, None, _) => "removed",
            (.., None) => "n/a",
            (.., Some(ratio)) => verdict(ratio, threshold_pct),
        };
        if let Some(counted) = MARKS.iter().zip(&mut count).find(|(it, _)| **it == mark) {
            *counted.1 += 1;
        }
        let ratio = ratio.map_or_else(|| "-".into(), |ratio| format!("{ratio:.2}x"));
        let name = report::shorten(name, 60);
        [name, figure(earlier), figure(later), ratio, mark.into()]
    });
    let headers = ["workload", "before", "after", "change", ""];
    let table = report::terminal_table(&headers, lines.collect::<Vec<_>>(), &[1, 2, 3]);
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
    use super::super::report::{test_rows::row, Unit};
    use super::*;
    use cairn_bench::targets;

    #[test]
    fn the_speed_ratio_follows_each_rows_better_direction() {
        let at = |unit, value| row("w", "s", unit, value);
        let other = |value| Row::ratio("x vs x-raw", value, 1.0, "an overhead");
        let (ns, ratio) = (Unit::Nanoseconds, Unit::Ratio);
        let pairs = [
            (at(ns, 200.0), at(ns, 100.0), Some(2.0)),
            (
                at(Unit::OpsPerSecond, 200.0),
                at(Unit::OpsPerSecond, 100.0),
                Some(0.5),
            ),
            (at(Unit::Bytes, 100.0), at(Unit::Bytes, 400.0), Some(0.25)),
            // Cairn's speed over a peer's, then an overhead: better higher, then lower.
            (at(ratio, 2.0), at(ratio, 3.0), Some(1.5)),
            (other(1.0), other(2.0), Some(0.5)),
            // A bound says it first (`flat (<= 1.2x)` is a bound below).
            (
                other(1.0),
                other(2.0).target(&targets::READ_SCALING),
                Some(2.0),
            ),
            (
                other(1.0),
                at(ratio, 2.0).goal(&targets::GET_SCALING_GOAL),
                Some(0.5),
            ),
            (at(ns, 0.0), at(ns, 1.0), None),
            (at(ns, f64::NAN), at(ns, 1.0), None),
            (at(Unit::Bytes, 1.0), at(ns, 1.0), None),
        ];
        for (before, after, ratio) in pairs {
            assert_eq!(speed_ratio(&before, &after), ratio, "{after:?}");
        }
    }

    #[test]
    fn the_threshold_is_symmetric_and_exclusive() {
        let cases = [
            (1.10, 10.0),
            (1.11, 10.0),
            (1.0 / 1.10, 10.0),
            (1.0 / 1.11, 10.0),
        ];
        let verdicts = cases.map(|(ratio, threshold)| verdict(ratio, threshold));
        assert_eq!(verdicts, ["", "better", "", "WORSE"]);
        assert_eq!([verdict(0.95, 1.0), verdict(1.0, 0.0)], ["WORSE", ""]);
    }
}

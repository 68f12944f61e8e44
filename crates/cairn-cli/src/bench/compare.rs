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

use comfy_table::CellAlignment;

use super::report::{self, Better, Row};
use super::saved::{describe_machine, SavedRun};

/// The default `--compare-threshold`, in percent.
pub const THRESHOLD_PCT_DEFAULT: f64 = 10.0;

/// How one row moved between the runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Better by more than the threshold.
    Better,
    /// Worse by more than the threshold.
    Worse,
    /// Within the threshold.
    Within,
    /// Not comparable (different units, or a zero figure).
    NotComparable,
    /// Only in this run.
    Added,
    /// Only in the saved run.
    Removed,
}

/// One line of the comparison.
#[derive(Debug)]
pub struct Change<'a> {
    /// The row's name.
    pub name: &'a str,
    /// The saved run's row.
    pub before: Option<&'a Row>,
    /// This run's row.
    pub after: Option<&'a Row>,
    /// The speed ratio, when both rows exist and compare.
    pub ratio: Option<f64>,
    /// What the ratio means against the threshold.
    pub verdict: Verdict,
}

/// The speed ratio of `after` over `before` in their better direction (above 1: `after` is
/// better); `None` when the units differ or a value is zero, negative or not finite.
pub fn speed_ratio(before: &Row, after: &Row) -> Option<f64> {
    if before.unit != after.unit {
        return None;
    }
    let usable = |value: f64| value.is_finite() && value > 0.0;
    if !usable(before.value) || !usable(after.value) {
        return None;
    }
    let ratio = match after.better() {
        Better::Lower => before.value / after.value,
        Better::Higher => after.value / before.value,
    };
    ratio.is_finite().then_some(ratio)
}

/// Whether a speed ratio is beyond `threshold_pct` either way.
pub fn verdict(ratio: f64, threshold_pct: f64) -> Verdict {
    let limit = 1.0 + threshold_pct / 100.0;
    if ratio > limit {
        Verdict::Better
    } else if ratio * limit < 1.0 {
        Verdict::Worse
    } else {
        Verdict::Within
    }
}

/// Every row of either run: this run's rows in order, then those only in the saved run.
pub fn changes<'a>(before: &'a [Row], after: &'a [Row], threshold_pct: f64) -> Vec<Change<'a>> {
    let find = |rows: &'a [Row], name: &str| rows.iter().find(|row| row.name == name);
    let mut changes: Vec<Change<'a>> = Vec::new();
    for row in after {
        if changes.iter().any(|change| change.name == row.name) {
            continue;
        }
        let earlier = find(before, &row.name);
        let ratio = earlier.and_then(|earlier| speed_ratio(earlier, row));
        let verdict = match (earlier, ratio) {
            (None, _) => Verdict::Added,
            (Some(_), None) => Verdict::NotComparable,
            (Some(_), Some(ratio)) => verdict(ratio, threshold_pct),
        };
        changes.push(Change {
            name: &row.name,
            before: earlier,
            after: Some(row),
            ratio,
            verdict,
        });
    }
    for row in before {
        if find(after, &row.name).is_none() && !changes.iter().any(|c| c.name == row.name) {
            changes.push(Change {
                name: &row.name,
                before: Some(row),
                after: None,
                ratio: None,
                verdict: Verdict::Removed,
            });
        }
    }
    changes
}

/// Warnings about runs whose figures do not compare well.
pub fn warnings(before: &SavedRun, after: &SavedRun) -> Vec<String> {
    let mut warnings = Vec::new();
    if before.machine != after.machine {
        warnings.push(format!(
            "the runs are from different machines ({} before, {} after): changes may come \
             from the machine, not the code",
            describe_machine(&before.machine),
            describe_machine(&after.machine)
        ));
    }
    for (which, run) in [("saved", before), ("current", after)] {
        if run.build != "release" {
            warnings.push(format!(
                "the {which} run is a {} build: its figures mean nothing",
                run.build
            ));
        }
    }
    if before.mode != after.mode {
        warnings.push(format!(
            "the runs are in different modes ({} before, {} after): quick figures are noisier",
            before.mode, after.mode
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
        writeln!(
            out,
            "  {label}: {}, {}, {} mode, {} build, cairn {}",
            run.date,
            describe_machine(&run.machine),
            run.mode,
            run.build,
            run.version
        )?;
    }
    for warning in warnings(before, after) {
        writeln!(out, "warning: {warning}")?;
    }
    writeln!(out)?;

    let changes = changes(&before.results, &after.results, threshold_pct);
    let mut table = report::terminal_table(["workload", "before", "after", "change", ""]);
    table.add_rows(changes.iter().map(cells));
    for column in 1..=3 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(out, "{}", table.trim_fmt())?;
    let count = |wanted: Verdict| {
        changes
            .iter()
            .filter(|change| change.verdict == wanted)
            .count()
    };
    writeln!(
        out,
        "{} rows compared: {} better, {} worse beyond {threshold_pct} %, {} within; {} not \
         comparable; {} added, {} removed",
        changes.len() - count(Verdict::Added) - count(Verdict::Removed),
        count(Verdict::Better),
        count(Verdict::Worse),
        count(Verdict::Within),
        count(Verdict::NotComparable),
        count(Verdict::Added),
        count(Verdict::Removed)
    )?;
    writeln!(out)
}

fn cells(change: &Change<'_>) -> [String; 5] {
    let figure = |row: Option<&Row>| row.map_or_else(|| "-".to_owned(), Row::headline);
    let mark = match change.verdict {
        Verdict::Better => "better",
        Verdict::Worse => "WORSE",
        Verdict::Within => "",
        Verdict::NotComparable => "n/a",
        Verdict::Added => "added",
        Verdict::Removed => "removed",
    };
    [
        report::shorten(change.name, 60),
        figure(change.before),
        figure(change.after),
        change
            .ratio
            .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}x")),
        mark.to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::report::Unit;
    use super::super::targets;
    use super::*;

    fn row(name: &str, unit: Unit, value: f64) -> Row {
        let mut row = Row::ratio(name, value, 1.0, "test");
        row.unit = unit;
        row.value = value;
        row.refresh_figure();
        row
    }

    #[test]
    fn the_speed_ratio_follows_each_units_direction() {
        let ratio = |unit, before, after| {
            speed_ratio(&row("a", unit, before), &row("a", unit, after))
                .expect("positive figures compare")
        };
        // Latency halved: twice as fast.
        assert!((ratio(Unit::Nanoseconds, 200.0, 100.0) - 2.0).abs() < 1e-9);
        // Throughput halved: half as fast.
        assert!((ratio(Unit::OpsPerSecond, 200.0, 100.0) - 0.5).abs() < 1e-9);
        // Memory grew 4x: a quarter as good.
        assert!((ratio(Unit::Bytes, 100.0, 400.0) - 0.25).abs() < 1e-9);
        // A side-by-side speed-up grew: better.
        let mut before = row("peers/w/cairn vs redis", Unit::Ratio, 2.0).side_by_side("w", "redis");
        let mut after = before.clone();
        after.value = 3.0;
        let speedup = speed_ratio(&before, &after).expect("comparable");
        assert!((speedup - 1.5).abs() < 1e-9);
        // An overhead ratio with a `<=` target grew: worse.
        before = row("x vs x-raw", Unit::Ratio, 1.0).target(&targets::GET_SCALING);
        after = before.clone();
        after.value = 2.0;
        let overhead = speed_ratio(&before, &after).expect("comparable");
        assert!((overhead - 0.5).abs() < 1e-9);
        // Nothing to compare.
        assert!(speed_ratio(
            &row("a", Unit::Nanoseconds, 0.0),
            &row("a", Unit::Nanoseconds, 1.0)
        )
        .is_none());
        assert!(speed_ratio(
            &row("a", Unit::Nanoseconds, 1.0),
            &row("a", Unit::Bytes, 1.0)
        )
        .is_none());
        assert!(speed_ratio(
            &row("a", Unit::Nanoseconds, f64::NAN),
            &row("a", Unit::Nanoseconds, 1.0)
        )
        .is_none());
    }

    #[test]
    fn the_threshold_is_symmetric_and_exclusive() {
        assert_eq!(verdict(1.10, 10.0), Verdict::Within);
        assert_eq!(verdict(1.11, 10.0), Verdict::Better);
        assert_eq!(verdict(1.0 / 1.10, 10.0), Verdict::Within);
        assert_eq!(verdict(1.0 / 1.11, 10.0), Verdict::Worse);
        assert_eq!(verdict(0.95, 10.0), Verdict::Within);
        assert_eq!(verdict(0.95, 1.0), Verdict::Worse);
        assert_eq!(verdict(1.0, 0.0), Verdict::Within);
    }

    #[test]
    fn rows_match_by_name_and_the_rest_are_added_or_removed() {
        let before = [
            row("get", Unit::Nanoseconds, 100.0),
            row("put", Unit::Nanoseconds, 100.0),
            row("gone", Unit::OpsPerSecond, 1.0),
        ];
        let after = [
            row("new", Unit::Nanoseconds, 5.0),
            row("put", Unit::Nanoseconds, 300.0),
            row("get", Unit::Nanoseconds, 95.0),
        ];
        let changes = changes(&before, &after, 10.0);
        let verdicts: Vec<(&str, Verdict)> = changes
            .iter()
            .map(|change| (change.name, change.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("new", Verdict::Added),
                ("put", Verdict::Worse),
                ("get", Verdict::Within),
                ("gone", Verdict::Removed)
            ]
        );
        let line = cells(&changes[1]);
        assert_eq!(line[1], "100 ns");
        assert_eq!(line[2], "300 ns");
        assert_eq!(line[3], "0.33x");
        assert_eq!(line[4], "WORSE");
    }
}

//! The table `cairn bench` prints (the rows are `cairn_bench::report`'s).
//!
//! The default table fits [`MAX_WIDTH`] columns: a side-by-side workload (Cairn and its peers)
//! is one line with Cairn's figure, the best peer and Cairn's speed over it; every other row
//! is one line with its figure and PASS/MISS. `--wide` prints every row in full instead.

use std::io::{self, Write};

pub use cairn_bench::report::{format_value, tally, Better, Row, Unit};
use comfy_table::{CellAlignment, ContentArrangement, LineStyle, Table, TableStyle};

use super::compare::speed_ratio;
use super::saved::SavedRun;
use super::side_by_side::{self, Workload};

/// The widest line the default table prints.
pub const MAX_WIDTH: usize = 120;

/// The columns of the full (`--wide`) table and the Markdown report's other rows.
pub const WIDE_HEADERS: [&str; 5] = ["workload", "measured", "target", "goal", "result"];

/// The columns of the default table.
const SUMMARY_HEADERS: [&str; 6] = [
    "workload",
    "cairn",
    "best peer",
    "vs best",
    "result",
    "goal",
];

/// One row's cells under [`WIDE_HEADERS`]: the full figure, and a check mark after a goal met.
pub fn wide_cells(row: &Row) -> [String; 5] {
    let goal = match (&row.goal, row.goal_met) {
        (Some(goal), Some(true)) => format!("{goal} ✓"),
        (goal, _) => goal.clone().unwrap_or_else(|| "-".into()),
    };
    let result = match row.pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "-",
    };
    let target = row.target.clone().unwrap_or_else(|| "-".into());
    [
        row.name.clone(),
        row.figure.clone(),
        target,
        goal,
        result.into(),
    ]
}

const LEGEND: &str = "\
cairn: p50 or rate (side by side: the Cairn mode peers are compared with); best peer: the fastest other store;
vs best: Cairn's speed over it (above 1x: Cairn ahead); result: PASS/MISS against the target; goal: ✓ met, ✗ not.
Every row, percentile, target and note: --wide or --json.";

/// Prints the run's table, its failed workloads, then a short legend; with `wide`, every row
/// as measured (figure, target, goal) and the run's notes instead.
pub fn write_table(out: &mut impl Write, run: &SavedRun, wide: bool) -> io::Result<()> {
    let mut table;
    if wide {
        table = terminal_table(WIDE_HEADERS);
        table.add_rows(run.results.iter().map(wide_cells));
    } else {
        table = terminal_table(SUMMARY_HEADERS);
        table.add_rows(summary(&run.results));
        right_align(&mut table, &[1, 3]);
        table
            .set_width(u16::try_from(MAX_WIDTH).unwrap_or(u16::MAX))
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_truncation_indicator("…");
        for row in table.row_iter_mut() {
            row.max_height(1);
        }
    }
    writeln!(out, "{}", table.trim_fmt())?;
    let width = if wide { usize::MAX } else { MAX_WIDTH };
    for failure in &run.failed {
        let line = format!("FAILED {}: {}", failure.name, failure.error);
        writeln!(out, "{}", shorten(&line, width))?;
    }
    if wide {
        writeln!(out)?;
        run.notes
            .iter()
            .try_for_each(|note| writeln!(out, "note: {note}"))
    } else {
        writeln!(out, "\n{LEGEND}")
    }
}

/// A table for the terminal with these `headers`: no borders, a rule under the header, two
/// spaces between columns.
pub fn terminal_table<const N: usize>(headers: [&str; N]) -> Table {
    let mut table = Table::new();
    let style = TableStyle::new().header_separator(LineStyle::none().fill('-'));
    table.load_style(style).set_header(headers);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// Right-aligns the `columns` of `table`.
pub fn right_align(table: &mut Table, columns: &[usize]) {
    for column in table.column_iter_mut() {
        if columns.contains(&column.index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// The default table's lines, in the order measured: one per side-by-side workload, one per
/// other row.
fn summary(rows: &[Row]) -> Vec<[String; 6]> {
    let groups = side_by_side::measured_groups(rows);
    let ratios = side_by_side::ratio_workloads(rows);
    let mut lines = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let Some(name) = row.workload.as_deref().filter(|_| row.subject.is_some()) else {
            let [result, goal] = marks(&[row]);
            let blank = String::new;
            lines.push([
                shorten(&row.name, 48),
                row.headline(),
                blank(),
                blank(),
                result,
                goal,
            ]);
            continue;
        };
        // A workload's line goes where its first row was.
        let same = |other: &Row| other.workload == row.workload && other.unit == row.unit;
        let workload = (groups.iter().flat_map(|group| &group.workloads))
            .find(|workload| workload.name == name && workload.unit == row.unit);
        if let Some(workload) = workload.filter(|_| rows.iter().position(same) == Some(index)) {
            let ratios = ratios.iter().find(|ratios| ratios.name == name);
            lines.push(side_by_side_line(
                workload,
                ratios.map_or(&[], |ratios| &ratios.rows),
            ));
        }
    }
    lines
}

/// One workload's line: Cairn's figure (in the mode peers are compared with: not in-memory,
/// when there is another), the peer Cairn is least ahead of, and Cairn's speed over it (the
/// ratio row's, or from the two figures).
fn side_by_side_line(workload: &Workload<'_>, ratios: &[&Row]) -> [String; 6] {
    let subject = |row: &Row| row.subject.clone().unwrap_or_default();
    // The KeyValueStore backends (`kv:*`) are Cairn's own trait over stores, not peers.
    let (cairns, peers): (Vec<&Row>, Vec<&Row>) = (workload.rows.iter())
        .filter(|row| !subject(row).starts_with("kv:"))
        .partition(|row| side_by_side::engine(&subject(row)) == "cairn");
    let cairn = (cairns.into_iter()).min_by_key(|row| subject(row).ends_with("-inmemory"));
    let best = (peers.into_iter())
        .filter_map(|peer| {
            let ratio = ratios.iter().find(|ratio| ratio.subject == peer.subject);
            let ratio = ratio
                .map(|ratio| ratio.value)
                .or_else(|| speed_ratio(peer, cairn?))?;
            ratio.is_finite().then_some((peer, ratio))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let all: Vec<&Row> = workload.rows.iter().chain(ratios).copied().collect();
    let [result, goal] = marks(&all);
    [
        shorten(workload.name, 48),
        cairn.map(Row::headline).unwrap_or_default(),
        best.map(|(peer, _)| format!("{} {}", subject(peer), peer.headline()))
            .unwrap_or_default(),
        best.map(|(_, ratio)| format!("{ratio:.2}x"))
            .unwrap_or_default(),
        result,
        goal,
    ]
}

/// `MISS` when a row missed its target, else `PASS` when one met it; `✗` when a row missed
/// its goal, else `✓` when one met it.
fn marks(rows: &[&Row]) -> [String; 2] {
    let mark = |checks: Vec<bool>, [met, missed]: [&str; 2]| match checks.first() {
        _ if checks.contains(&false) => missed.to_owned(),
        Some(_) => met.to_owned(),
        None => String::new(),
    };
    [
        mark(
            rows.iter().filter_map(|row| row.pass).collect(),
            ["PASS", "MISS"],
        ),
        mark(
            rows.iter().filter_map(|row| row.goal_met).collect(),
            ["✓", "✗"],
        ),
    ]
}

/// `text` cut to `width` characters by an ellipsis in the middle (the ends of a name tell
/// rows apart: the group and the parameter).
pub fn shorten(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    let head = (width - 1) * 2 / 5;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - (width - 1 - head)).collect();
    format!("{start}…{end}")
}

#[cfg(test)]
mod tests {
    use super::super::side_by_side::test_rows::{measured, ratio};
    use super::*;
    use cairn_bench::report::{format_bytes, format_nanos, format_rate, nearest_count};
    use cairn_bench::targets;
    use cairn_bench::Latency;

    #[test]
    fn figures_are_formatted_with_sensible_units() {
        let nanos = [412, 1_250, 35_210, 1_200_000].map(format_nanos);
        assert_eq!(nanos, ["412 ns", "1.25 µs", "35.2 µs", "1.20 ms"]);
        assert_eq!(
            [512_300.0, 3.21e6].map(format_rate),
            ["512K ops/s", "3.21M ops/s"]
        );
        let bytes = [118, 1_023, 1_229, 35 << 20, 5 << 29].map(format_bytes);
        assert_eq!(bytes, ["118 B", "1023 B", "1.2 KiB", "35.0 MiB", "2.5 GiB"]);
        assert_eq!(format_value(Unit::Nanoseconds, 411.6), "412 ns");
        assert_eq!(format_value(Unit::Versions, 2.0), "2 versions");
        assert_eq!([-3.0, f64::NAN, 1e30].map(nearest_count), [0, 0, u64::MAX]);
    }

    #[test]
    fn a_saved_row_loads_back_with_the_same_figure() {
        let latency = Latency {
            samples: 100,
            ops_per_sample: 16,
            p50_ns: 412,
            p95_ns: 900,
            p99_ns: 1_250,
            p999_ns: 4_000,
            max_ns: 9_000,
            mean_ns: 500.0,
        };
        let live = Row::latency("recovery/wal_replay/1000", &latency)
            .annotate("12 runs")
            .target(&targets::POINT_OP)
            .side_by_side("point_read/uniform", "cairn-buffered");
        assert_eq!(live.figure, "p50 412 ns / p99 1.25 µs (12 runs)");
        let json = serde_json::to_string(&live).expect("a row serializes");
        assert!(
            !json.contains("\"figure\""),
            "the figure is not saved: {json}"
        );
        let mut loaded: Row = serde_json::from_str(&json).expect("a saved row loads");
        loaded.refresh_figure();
        assert_eq!(
            (loaded.figure, loaded.pass, loaded.p999),
            (live.figure, Some(true), Some(4_000))
        );
        // Rows saved before annotations and side-by-side fields existed load too.
        let older = r#"{"name":"a","unit":"ops/s","p50":null,"p95":null,"p99":null,"p999":null,
            "ops_per_sec":512300.0,"value":512300.0,"target":"> 1M ops/s","goal":null,
            "pass":false,"goal_met":null,"note":null}"#;
        let mut row: Row = serde_json::from_str(older).expect("an older row loads");
        row.refresh_figure();
        assert_eq!(row.figure, "512K ops/s");
        assert!(serde_json::from_str::<Row>(&older.replace("ops/s", "furlongs")).is_err());
    }

    #[test]
    fn the_better_direction_follows_the_bound_then_the_unit() {
        let ratio_row = |name: &str| Row::ratio(name, 2.0, 1.0, "test");
        assert_eq!(
            ratio_row("x vs x-raw").better(),
            Better::Lower,
            "an overhead"
        );
        let scaling = ratio_row("reads/2 vs 1").target(&targets::READ_SCALING);
        assert_eq!(scaling.better(), Better::Higher);
        let speedup = ratio("w", "redb-strict", 2.0);
        assert_eq!(
            speedup.better(),
            Better::Higher,
            "Cairn's speed over a peer's"
        );
        let capped = ratio_row("scaling").goal(&targets::GET_SCALING_GOAL);
        assert_eq!(
            capped.better(),
            Better::Lower,
            "`flat (<= 1.2x)` is a bound below"
        );
        assert_eq!(Row::bytes("m", 1, "test").better(), Better::Lower);
    }

    #[test]
    fn side_by_side_rows_collapse_to_one_line_per_workload() {
        let latency =
            |subject, value| measured("point_read/hot", subject, Unit::Nanoseconds, value);
        let rows = vec![
            latency("cairn-inmemory", 100.0),
            latency("cairn-buffered", 200.0),
            latency("redb-buffered", 900.0),
            latency("fjall-buffered", 500.0),
            ratio("point_read/hot", "redb-buffered", 4.5).goal(&targets::CAIRN_AHEAD),
            ratio("point_read/hot", "fjall-buffered", 2.5).goal(&targets::CAIRN_AHEAD),
            measured("memory/rss", "cairn-buffered", Unit::Bytes, 4096.0),
            measured("memory/rss", "redis", Unit::Bytes, 2048.0),
            Row::ratio("a/b", 3.0, 2.0, "test").target(&targets::GET_SCALING),
        ];
        let lines = [
            [
                "point_read/hot",
                "200 ns",
                "fjall-buffered 500 ns",
                "2.50x",
                "",
                "✓",
            ],
            ["memory/rss", "4.0 KiB", "redis 2.0 KiB", "0.50x", "", ""],
            ["a/b", "1.50x", "", "", "PASS", ""],
        ];
        assert_eq!(summary(&rows), lines.map(|line| line.map(str::to_owned)));
        assert_eq!(shorten("abcdefghij", 6), "ab…hij");
    }
}

//! Result rows, the table `cairn bench` prints, and the JSON it writes.
//!
//! A [`Row`] is one measured (or derived) figure: a latency (p50/p99 shown, all percentiles
//! kept), a throughput, a ratio between two rows, or a count. Its `value` is the number the
//! target and goal are checked against: p50 for latency rows, ops/s for throughput rows.
//! Rows without a target are informational: they show what the targets leave out (other
//! value sizes, thread counts, transaction shapes) and count neither as passed nor missed.

use std::io::{self, Write};

use cairn_bench::measure::count_as_f64;
use cairn_bench::{Latency, Throughput};
use serde::Serialize;

use super::targets::Limit;

/// What a row's `value` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Unit {
    /// Nanoseconds per operation (p50).
    #[serde(rename = "ns")]
    Nanoseconds,
    /// Engine operations per second.
    #[serde(rename = "ops/s")]
    OpsPerSecond,
    /// One figure divided by another.
    #[serde(rename = "x")]
    Ratio,
    /// Versions held by the database.
    #[serde(rename = "versions")]
    Versions,
    /// Bytes (memory or disk).
    #[serde(rename = "bytes")]
    Bytes,
}

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The workload, named as its criterion bench is (`group/function/parameter`).
    pub name: String,
    /// What `value` counts.
    pub unit: Unit,
    /// p50 latency, ns (latency rows).
    pub p50: Option<u64>,
    /// p95 latency, ns (latency rows).
    pub p95: Option<u64>,
    /// p99 latency, ns (latency rows).
    pub p99: Option<u64>,
    /// p99.9 latency, ns (latency rows).
    pub p999: Option<u64>,
    /// Throughput (throughput rows).
    pub ops_per_sec: Option<f64>,
    /// The figure checked against the target and goal.
    pub value: f64,
    /// The seed target, if the row has one.
    pub target: Option<&'static str>,
    /// The goal from `DESIGN.md`, if the row has one.
    pub goal: Option<&'static str>,
    /// Whether the seed target was met; `None` for rows without one.
    pub pass: Option<bool>,
    /// Whether the goal was met; `None` for rows without one.
    pub goal_met: Option<bool>,
    /// How the figure was obtained, when that is not obvious.
    pub note: Option<String>,
    /// The side-by-side workload the row belongs to (`point_read/uniform`), for rows that
    /// measure one store among its peers; `None` for Cairn-only rows.
    pub workload: Option<String>,
    /// The store and mode measured (`cairn-buffered`, `redb-strict`, `redis`); for a ratio
    /// row, the peer Cairn is compared with.
    pub subject: Option<String>,
    /// The "measured" column.
    #[serde(skip)]
    pub figure: String,
}

impl Row {
    fn new(name: &str, unit: Unit, value: f64, figure: String) -> Self {
        Row {
            name: name.to_owned(),
            unit,
            p50: None,
            p95: None,
            p99: None,
            p999: None,
            ops_per_sec: None,
            value,
            target: None,
            goal: None,
            pass: None,
            goal_met: None,
            note: None,
            workload: None,
            subject: None,
            figure,
        }
    }

    /// A latency row; its value is the p50.
    pub fn latency(name: &str, latency: &Latency) -> Self {
        let figure = format!(
            "p50 {} / p99 {}",
            format_nanos(latency.p50_ns),
            format_nanos(latency.p99_ns)
        );
        let mut row = Row::new(
            name,
            Unit::Nanoseconds,
            count_as_f64(latency.p50_ns),
            figure,
        );
        row.p50 = Some(latency.p50_ns);
        row.p95 = Some(latency.p95_ns);
        row.p99 = Some(latency.p99_ns);
        row.p999 = Some(latency.p999_ns);
        row
    }

    /// A throughput row; its value is ops/s.
    pub fn throughput(name: &str, throughput: &Throughput) -> Self {
        let mut row = Row::new(
            name,
            Unit::OpsPerSecond,
            throughput.ops_per_sec,
            format_rate(throughput.ops_per_sec),
        );
        row.ops_per_sec = Some(throughput.ops_per_sec);
        row
    }

    /// A ratio row, `numerator / denominator` (0 when the denominator is 0).
    pub fn ratio(name: &str, numerator: f64, denominator: f64, explained: &str) -> Self {
        let ratio = if denominator > 0.0 {
            numerator / denominator
        } else {
            0.0
        };
        Row::new(name, Unit::Ratio, ratio, format!("{ratio:.2}x")).note(explained)
    }

    /// A size in bytes (fractional for a per-key figure).
    pub fn bytes(name: &str, bytes: f64, explained: &str) -> Self {
        Row::new(name, Unit::Bytes, bytes, format_bytes(bytes)).note(explained)
    }

    /// A count of retained versions.
    pub fn versions(name: &str, versions: u64, explained: &str) -> Self {
        Row::new(
            name,
            Unit::Versions,
            count_as_f64(versions),
            format!("{versions} versions"),
        )
        .note(explained)
    }

    /// Checks the row's value against a seed target.
    pub fn target(mut self, limit: &Limit) -> Self {
        self.target = Some(limit.text);
        self.pass = Some(limit.is_met_by(self.value));
        self
    }

    /// Checks the row's value against a goal.
    pub fn goal(self, limit: &Limit) -> Self {
        let value = self.value;
        self.goal_on(limit, value)
    }

    /// Checks `value` (some figure other than the row's own, such as a ratio to a peer)
    /// against a goal.
    pub fn goal_on(mut self, limit: &Limit, value: f64) -> Self {
        self.goal = Some(limit.text);
        self.goal_met = Some(limit.is_met_by(value));
        self
    }

    /// Adds to the measured column, e.g. a ratio to a peer.
    pub fn annotate(mut self, text: &str) -> Self {
        self.figure = format!("{} ({text})", self.figure);
        self
    }

    /// Marks the row as `subject`'s figure on the side-by-side `workload`.
    pub fn side_by_side(mut self, workload: &str, subject: &str) -> Self {
        self.workload = Some(workload.to_owned());
        self.subject = Some(subject.to_owned());
        self
    }

    /// Explains how the figure was obtained.
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }
}

/// `412 ns`, `1.25 µs`, `35.2 µs`, `1.20 ms`.
pub fn format_nanos(nanos: u64) -> String {
    let value = count_as_f64(nanos);
    match nanos {
        0..=999 => format!("{nanos} ns"),
        1_000..=9_999 => format!("{:.2} µs", value / 1e3),
        10_000..=999_999 => format!("{:.1} µs", value / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", value / 1e6),
        _ => format!("{:.2} s", value / 1e9),
    }
}

/// `118 B`, `1.2 KiB`, `35.0 MiB`.
pub fn format_bytes(bytes: f64) -> String {
    const KIB: f64 = 1_024.0;
    if bytes >= KIB * KIB {
        format!("{:.1} MiB", bytes / (KIB * KIB))
    } else if bytes >= KIB {
        format!("{:.1} KiB", bytes / KIB)
    } else {
        format!("{bytes:.0} B")
    }
}

/// `512K ops/s`, `3.21M ops/s`.
pub fn format_rate(ops_per_sec: f64) -> String {
    if ops_per_sec >= 1e6 {
        format!("{:.2}M ops/s", ops_per_sec / 1e6)
    } else if ops_per_sec >= 1e3 {
        format!("{:.0}K ops/s", ops_per_sec / 1e3)
    } else {
        format!("{ops_per_sec:.0} ops/s")
    }
}

/// How many rows met their target and how many missed it.
pub fn tally(rows: &[Row]) -> (usize, usize) {
    let passed = rows.iter().filter(|row| row.pass == Some(true)).count();
    let missed = rows.iter().filter(|row| row.pass == Some(false)).count();
    (passed, missed)
}

/// Writes the table: workload, measured, seed target, goal, result.
pub fn write_table(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    const HEADERS: [&str; 5] = [
        "workload",
        "measured",
        "seed target",
        "DESIGN.md goal",
        "result",
    ];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let result = match row.pass {
                Some(true) => "PASS",
                Some(false) => "MISS",
                None => "-",
            };
            let goal = match (row.goal, row.goal_met) {
                (Some(text), Some(true)) => format!("{text} ✓"),
                (Some(text), _) => text.to_owned(),
                (None, _) => "-".to_owned(),
            };
            [
                row.name.clone(),
                row.figure.clone(),
                row.target.unwrap_or("-").to_owned(),
                goal,
                result.to_owned(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|header| header.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADERS.map(str::to_owned);
    write_line(out, &header, &widths)?;
    write_line(out, &widths.map(|width| "-".repeat(width)), &widths)?;
    for line in &cells {
        write_line(out, line, &widths)?;
    }
    Ok(())
}

fn write_line(out: &mut impl Write, cells: &[String; 5], widths: &[usize; 5]) -> io::Result<()> {
    let [name, figure, target, goal, result] = cells;
    let [name_width, figure_width, target_width, goal_width, _] = *widths;
    writeln!(
        out,
        "{name:<name_width$}  {figure:<figure_width$}  {target:<target_width$}  \
         {goal:<goal_width$}  {result}"
    )
}

#[cfg(test)]
mod tests {
    use super::super::targets;
    use super::*;

    #[test]
    fn figures_are_formatted_with_sensible_units() {
        assert_eq!(format_nanos(412), "412 ns");
        assert_eq!(format_nanos(1_250), "1.25 µs");
        assert_eq!(format_nanos(35_210), "35.2 µs");
        assert_eq!(format_nanos(1_200_000), "1.20 ms");
        assert_eq!(format_rate(512_300.0), "512K ops/s");
        assert_eq!(format_rate(3_210_000.0), "3.21M ops/s");
    }

    #[test]
    fn rows_check_targets_and_the_table_lines_up() {
        let pass = Row::ratio("a/b", 3.0, 2.0, "test").target(&targets::GET_SCALING);
        let miss = Row::ratio("a/longer_name", 5.0, 2.0, "test").target(&targets::GET_SCALING);
        let info = Row::ratio("c", 1.0, 0.0, "test");
        assert_eq!(pass.pass, Some(true));
        assert_eq!(miss.pass, Some(false));
        assert!(
            info.value.abs() < f64::EPSILON,
            "a zero denominator gives 0"
        );
        let rows = [pass, miss, info];
        assert_eq!(tally(&rows), (1, 1));
        let mut table = Vec::new();
        write_table(&mut table, &rows).expect("writing to a Vec cannot fail");
        let table = String::from_utf8(table).expect("the table is UTF-8");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5);
        let column = lines[0].find("measured").expect("header has the column");
        assert!(lines[2..]
            .iter()
            .all(|line| line.chars().nth(column) != Some(' ')));
        assert!(lines[3].ends_with("MISS"));
    }
}

//! The table `cairn bench` prints. The rows themselves are `cairn_bench::report`'s.

use std::io::{self, Write};

pub use cairn_bench::report::{format_value, nearest_count, tally, Better, Row, Unit};
/// The columns of the table.
pub const TABLE_HEADERS: [&str; 5] = ["workload", "measured", "target", "goal", "result"];

/// One row's cells under [`TABLE_HEADERS`].
pub fn table_cells(row: &Row) -> [String; 5] {
    let result = match row.pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "-",
    };
    let goal = match (row.goal.as_deref(), row.goal_met) {
        (Some(text), Some(true)) => format!("{text} ✓"),
        (Some(text), _) => text.to_owned(),
        (None, _) => "-".to_owned(),
    };
    [
        row.name.clone(),
        row.figure.clone(),
        row.target.as_deref().unwrap_or("-").to_owned(),
        goal,
        result.to_owned(),
    ]
}

/// Writes the table: workload, measured, seed target, goal, result.
pub fn write_table(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    let cells: Vec<[String; 5]> = rows.iter().map(table_cells).collect();
    let mut widths = TABLE_HEADERS.map(|header| header.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = TABLE_HEADERS.map(str::to_owned);
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
        assert_eq!(format_bytes(118), "118 B");
        assert_eq!(format_bytes(1_023), "1023 B");
        assert_eq!(format_bytes(1_229), "1.2 KiB");
        assert_eq!(format_bytes(35 * 1024 * 1024), "35.0 MiB");
        assert_eq!(format_bytes(5 << 29), "2.5 GiB");
        assert_eq!(format_value(Unit::Nanoseconds, 411.6), "412 ns");
        assert_eq!(format_value(Unit::Ratio, 1.254), "1.25x");
        assert_eq!(format_value(Unit::Versions, 2.0), "2 versions");
        assert_eq!(nearest_count(-3.0), 0);
        assert_eq!(nearest_count(f64::NAN), 0);
        assert_eq!(nearest_count(1e30), u64::MAX);
        let bytes = Row::bytes("peers/memory/uniform/redis", 1_229, "resident");
        assert_eq!(bytes.figure, "1.2 KiB");
        assert_eq!(bytes.unit, Unit::Bytes);
    }

    fn sample_latency() -> Latency {
        Latency {
            samples: 100,
            ops_per_sample: 16,
            p50_ns: 412,
            p95_ns: 900,
            p99_ns: 1_250,
            p999_ns: 4_000,
            max_ns: 9_000,
            mean_ns: 500.0,
        }
    }

    #[test]
    fn a_saved_row_loads_back_with_the_same_figure() {
        let live = Row::latency("recovery/wal_replay/1000", &sample_latency())
            .annotate("12 runs")
            .annotate("intact open p50 300 ns")
            .target(&targets::POINT_OP)
            .side_by_side("point_read/uniform", "cairn-buffered");
        assert_eq!(
            live.figure,
            "p50 412 ns / p99 1.25 µs (12 runs) (intact open p50 300 ns)"
        );
        let json = serde_json::to_string(&live).expect("a row serializes");
        assert!(
            !json.contains("\"figure\""),
            "the figure is not saved: {json}"
        );
        let mut loaded: Row = serde_json::from_str(&json).expect("a saved row loads");
        assert!(
            loaded.figure.is_empty(),
            "loading alone leaves the figure empty"
        );
        loaded.refresh_figure();
        assert_eq!(loaded.figure, live.figure);
        assert_eq!(loaded.target.as_deref(), Some("< 1 µs"));
        assert_eq!(loaded.pass, Some(true));
        assert_eq!(loaded.subject.as_deref(), Some("cairn-buffered"));
        assert_eq!(loaded.p999, Some(4_000));
    }

    #[test]
    fn rows_saved_before_annotations_and_subjects_existed_still_load() {
        let json = r#"{"name":"a","unit":"ops/s","p50":null,"p95":null,"p99":null,
            "p999":null,"ops_per_sec":512300.0,"value":512300.0,"target":"> 1M ops/s",
            "goal":null,"pass":false,"goal_met":null,"note":null}"#;
        let mut row: Row = serde_json::from_str(json).expect("an older row loads");
        row.refresh_figure();
        assert_eq!(row.figure, "512K ops/s");
        assert!(row.workload.is_none() && row.annotations.is_empty());
        let unknown_unit = json.replace("ops/s", "furlongs");
        assert!(serde_json::from_str::<Row>(&unknown_unit).is_err());
    }

    #[test]
    fn the_better_direction_follows_the_bound_then_the_unit() {
        let latency = Row::latency("a", &sample_latency());
        assert_eq!(latency.better(), Better::Lower);
        let rate = Row::throughput(
            "b",
            &Throughput {
                runs: 1,
                engine_ops: 10,
                measured: std::time::Duration::from_secs(1),
                ops_per_sec: 10.0,
            },
        );
        assert_eq!(rate.better(), Better::Higher);
        let overhead = Row::ratio("x vs x-raw", 2.0, 1.0, "test");
        assert_eq!(overhead.better(), Better::Lower);
        let scaling = Row::ratio("reads/2 vs 1", 2.0, 1.0, "test").target(&targets::READ_SCALING);
        assert_eq!(scaling.better(), Better::Higher);
        let speedup = Row::ratio("peers/w/cairn vs redb-strict", 2.0, 1.0, "test")
            .side_by_side("w", "redb-strict");
        assert_eq!(speedup.better(), Better::Higher);
        let capped = Row::ratio("scaling", 1.0, 1.0, "test").goal(&targets::GET_SCALING_GOAL);
        assert_eq!(
            capped.better(),
            Better::Lower,
            "`flat (<= 1.2x)` is a bound below"
        );
        assert_eq!(Row::bytes("m", 1, "test").better(), Better::Lower);
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

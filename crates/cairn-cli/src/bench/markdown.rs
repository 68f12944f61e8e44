//! `--markdown FILE`: the run as a Markdown report, the page the benchmark docs include.
//!
//! In order: a header (date, machine, mode, build, version, the command that measured); for
//! the side-by-side rows, one table per workload group (a line per workload, a column per
//! subject, each cell the subject's figure), with the group's chart linked under it when
//! `--plot` wrote one; the headline table of Cairn's speed over each peer's (a line per
//! workload, a column per peer) with `ratios.svg` linked; then every other row as the terminal
//! table shows it (workload, measured, seed target, goal, result), the pass/miss count, any
//! failed workload, and the run's notes. Chart links are relative to FILE's directory, so the
//! report and the charts can move together. Cell text is escaped so that a `|` cannot break a
//! table.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use super::plot::Charts;
use super::report::{self, Row, Unit};
use super::saved::{describe_machine, SavedRun};
use super::side_by_side::{self, describe_measure, Group, Workload};

/// Where the charts of `--plot` are: the charts, and the directory the report is written to
/// (their links are relative to it).
pub type ChartLinks<'a> = Option<(&'a Charts, &'a Path)>;

/// Writes the report of `run`, linking the `charts`.
pub fn write_report(
    out: &mut impl Write,
    run: &SavedRun,
    charts: ChartLinks<'_>,
) -> io::Result<()> {
    write_header(out, run)?;
    let groups = side_by_side::measured_groups(&run.results);
    if !groups.is_empty() {
        write_groups(out, &groups, charts)?;
    }
    let ratios = side_by_side::ratio_workloads(&run.results);
    if !ratios.is_empty() {
        write_ratios(out, &ratios, charts)?;
    }
    let others: Vec<&Row> = run
        .results
        .iter()
        .filter(|row| !side_by_side::is_side_by_side(row))
        .collect();
    if !others.is_empty() {
        let only_table = groups.is_empty() && ratios.is_empty();
        writeln!(
            out,
            "## {}",
            if only_table { "Results" } else { "Other rows" }
        )?;
        writeln!(out)?;
        write_table_row(out, report::TABLE_HEADERS.iter().copied())?;
        write_table_row(out, report::TABLE_HEADERS.iter().map(|_| "---"))?;
        for row in others {
            let cells = report::table_cells(row);
            write_table_row(out, cells.iter().map(String::as_str))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{} passed, {} missed.", run.passed, run.missed)?;
    if !run.failed.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Failed workloads")?;
        writeln!(out)?;
        for failure in &run.failed {
            writeln!(out, "- {}: {}", code(&failure.name), text(&failure.error))?;
        }
    }
    if !run.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Notes")?;
        writeln!(out)?;
        for note in &run.notes {
            writeln!(out, "- {}", text(note))?;
        }
    }
    Ok(())
}

/// The title and what measured: date, machine, mode, build, version, command, filter.
fn write_header(out: &mut impl Write, run: &SavedRun) -> io::Result<()> {
    writeln!(out, "# `cairn bench` results")?;
    writeln!(out)?;
    writeln!(out, "- date: {}", run.date)?;
    writeln!(out, "- machine: {}", describe_machine(&run.machine))?;
    writeln!(
        out,
        "- mode: {}, {} build, cairn {}",
        run.mode, run.build, run.version
    )?;
    writeln!(
        out,
        "- command: {}",
        code(run.command.as_deref().unwrap_or("not recorded"))
    )?;
    if let Some(filter) = &run.filter {
        writeln!(out, "- filter: {}", code(filter))?;
    }
    writeln!(out)
}

/// A table per group of measured side-by-side rows, each with its chart.
fn write_groups(
    out: &mut impl Write,
    groups: &[Group<'_>],
    charts: ChartLinks<'_>,
) -> io::Result<()> {
    writeln!(out, "## Side by side")?;
    writeln!(out)?;
    writeln!(
        out,
        "Cairn and its peers on the same workloads, one column per store and durability \
         mode (`-inmemory`: no disk; `-buffered`: commits reach the OS, synced in the \
         background; `-strict`: every commit synced before it returns)."
    )?;
    for group in groups {
        writeln!(out)?;
        writeln!(out, "### {}", text(group.name))?;
        writeln!(out)?;
        let mut units: Vec<Unit> = Vec::new();
        for workload in &group.workloads {
            if !units.contains(&workload.unit) {
                units.push(workload.unit);
            }
        }
        let measures: Vec<&str> = units.iter().map(|unit| measure_text(*unit)).collect();
        writeln!(out, "{}.", capitalized(&measures.join("; ")))?;
        writeln!(out)?;
        let subjects = group.subjects();
        write_matrix(out, &group.workloads, &subjects, &subjects, |row| {
            row.figure.clone()
        })?;
        let chart = charts.and_then(|(charts, report_dir)| {
            let (_, path) = charts.groups.iter().find(|(name, _)| name == group.name)?;
            Some(relative_link(report_dir, path))
        });
        if let Some(link) = chart {
            writeln!(out)?;
            writeln!(out, "![{}: Cairn and its peers]({link})", text(group.name))?;
        }
    }
    writeln!(out)
}

/// The headline: Cairn's speed over each peer's, per workload, with the ratio chart.
fn write_ratios(
    out: &mut impl Write,
    ratios: &[Workload<'_>],
    charts: ChartLinks<'_>,
) -> io::Result<()> {
    writeln!(out, "## Cairn against its peers")?;
    writeln!(out)?;
    writeln!(
        out,
        "Cairn's speed over each peer's on the same workload: above 1x Cairn is ahead \
         (peer p50 over Cairn's p50 for latencies, Cairn's rate over the peer's for \
         throughputs)."
    )?;
    writeln!(out)?;
    let peers = side_by_side::subjects(
        ratios
            .iter()
            .flat_map(|workload| workload.rows.iter().copied()),
    );
    let headers: Vec<String> = peers.iter().map(|peer| format!("vs {peer}")).collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    write_matrix(out, ratios, &peers, &headers, Row::headline)?;
    let chart = charts
        .and_then(|(charts, report_dir)| Some(relative_link(report_dir, charts.ratios.as_ref()?)));
    if let Some(link) = chart {
        writeln!(out)?;
        writeln!(out, "![Cairn's speed relative to each peer]({link})")?;
    }
    writeln!(out)
}

/// What a cell of `unit` shows.
fn measure_text(unit: Unit) -> &'static str {
    match unit {
        Unit::Nanoseconds => "latency cells: p50 / p99 per operation, lower is better",
        unit => describe_measure(unit),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A table: a line per workload, a column per subject (headed `headers`), each cell
/// `cell(row)` (`–` where the subject was not measured).
fn write_matrix(
    out: &mut impl Write,
    workloads: &[Workload<'_>],
    subjects: &[&str],
    headers: &[&str],
    cell: impl Fn(&Row) -> String,
) -> io::Result<()> {
    write_table_row(
        out,
        std::iter::once("workload").chain(headers.iter().copied()),
    )?;
    write_table_row(
        out,
        std::iter::once("---").chain(headers.iter().map(|_| "---:")),
    )?;
    for workload in workloads {
        let cells: Vec<String> = subjects
            .iter()
            .map(|subject| {
                workload
                    .row_of(subject)
                    .map_or_else(|| "–".to_owned(), &cell)
            })
            .collect();
        write_table_row(
            out,
            std::iter::once(workload.name).chain(cells.iter().map(String::as_str)),
        )?;
    }
    Ok(())
}

fn write_table_row<'a>(
    out: &mut impl Write,
    cells: impl IntoIterator<Item = &'a str>,
) -> io::Result<()> {
    let cells: Vec<String> = cells.into_iter().map(table_cell).collect();
    writeln!(out, "| {} |", cells.join(" | "))
}

/// A table cell: `|` escaped, line breaks flattened.
fn table_cell(cell: &str) -> String {
    text(cell).replace('|', "\\|")
}

/// Prose: line breaks flattened, and a `<` that could open an HTML tag escaped (`<= 2x`
/// stays as it is).
fn text(text: &str) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    let mut escaped = String::with_capacity(flat.len());
    let mut chars = flat.chars().peekable();
    while let Some(c) = chars.next() {
        let opens_tag = chars
            .peek()
            .is_some_and(|next| next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?'));
        if c == '<' && opens_tag {
            escaped.push_str("&lt;");
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Inline code, with a fence longer than any backtick run inside.
fn code(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!(
        "{fence}{pad}{}{pad}{fence}",
        text.replace(['\n', '\r'], " ")
    )
}

/// The path of `target` relative to the directory `from`, with `/` separators; in `<...>`
/// when it holds a space, so that Markdown keeps it whole.
pub fn relative_link(from: &Path, target: &Path) -> String {
    let from = normalized(from);
    let target = normalized(target);
    let from_parts: Vec<Component<'_>> = from.components().collect();
    let target_parts: Vec<Component<'_>> = target.components().collect();
    let common = from_parts
        .iter()
        .zip(&target_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from_parts.len() - common];
    parts.extend(
        target_parts[common..]
            .iter()
            .map(|part| part.as_os_str().to_string_lossy().into_owned()),
    );
    let link = parts.join("/");
    if link.contains(char::is_whitespace) || link.contains(['(', ')', '<', '>']) {
        format!("<{}>", link.replace('<', "%3C").replace('>', "%3E"))
    } else {
        link
    }
}

/// `path` made absolute (against the current directory) with `.` and `..` resolved by name.
fn normalized(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::super::saved::SavedRun;
    use super::super::targets;
    use super::*;
    use crate::machine::Machine;

    fn run(results: Vec<Row>) -> SavedRun {
        let (passed, missed) = report::tally(&results);
        SavedRun {
            tool: "cairn bench".to_owned(),
            version: "0.1.0".to_owned(),
            mode: "full".to_owned(),
            build: "release".to_owned(),
            command: Some("cairn bench --markdown a|b.md".to_owned()),
            date: "2026-01-02 03:04:05 UTC".to_owned(),
            machine: Machine {
                cpus: 2,
                cpu_model: "Test CPU".to_owned(),
                platform: "linux-x86_64".to_owned(),
            },
            filter: None,
            notes: vec!["a note".to_owned()],
            elapsed_seconds: 1.0,
            passed,
            missed,
            failed: Vec::new(),
            results,
        }
    }

    use super::super::side_by_side::test_rows;

    fn measured(workload: &str, subject: &str, value: f64) -> Row {
        test_rows::measured(workload, subject, Unit::Nanoseconds, value)
    }

    fn ratio(workload: &str, subject: &str, value: f64) -> Row {
        test_rows::ratio(workload, subject, value)
    }

    fn report(run: &SavedRun, charts: Option<(&Charts, &Path)>) -> String {
        let mut out = Vec::new();
        write_report(&mut out, run, charts).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the report is UTF-8")
    }

    /// The lines of the table that starts with `header`.
    fn table<'a>(report: &'a str, header: &str) -> Vec<&'a str> {
        report
            .lines()
            .skip_while(|line| !line.starts_with(header))
            .take_while(|line| line.starts_with('|'))
            .collect()
    }

    #[test]
    fn side_by_side_rows_make_a_table_per_group_and_a_ratio_table() {
        let results = vec![
            measured("point_read/uniform", "redb-strict", 900.0),
            measured("point_read/uniform", "cairn-buffered", 300.0),
            measured("point_read/hot", "cairn-buffered", 200.0),
            measured("scan/short", "cairn-buffered", 5_000.0),
            ratio("point_read/uniform", "redb-strict", 3.0),
            ratio("scan/short", "fjall-buffered", 0.5),
            Row::ratio("get_at_scale/x vs y", 1.0, 2.0, "test").target(&targets::GET_SCALING),
        ];
        let charts = Charts {
            groups: vec![(
                "point_read".to_owned(),
                PathBuf::from("/r/docs/bench/point_read.svg"),
            )],
            ratios: Some(PathBuf::from("/r/docs/bench/ratios.svg")),
        };
        let text = report(&run(results), Some((&charts, Path::new("/r/docs"))));

        assert!(text.starts_with("# `cairn bench` results\n"));
        assert!(text.contains("- machine: 2 CPUs, Test CPU (linux-x86_64)"));
        assert!(text.contains("- command: `cairn bench --markdown a|b.md`"));
        let point_read = table(&text, "| workload | cairn-buffered | redb-strict |");
        assert_eq!(point_read.len(), 4, "header, rule, two workloads:\n{text}");
        assert_eq!(point_read[1], "| --- | ---: | ---: |");
        assert_eq!(point_read[2], "| point_read/uniform | 300 ns | 900 ns |");
        assert_eq!(point_read[3], "| point_read/hot | 200 ns | – |");
        assert!(text.contains("### scan\n"));
        assert!(text.contains("![point_read: Cairn and its peers](bench/point_read.svg)"));
        assert!(!text.contains("scan.svg"), "no link to a chart not written");

        let ratios = table(&text, "| workload | vs redb-strict | vs fjall-buffered |");
        assert_eq!(ratios.len(), 4, "{text}");
        assert_eq!(ratios[2], "| point_read/uniform | 3.00x | – |");
        assert_eq!(ratios[3], "| scan/short | – | 0.50x |");
        assert!(text.contains("](bench/ratios.svg)"));

        let others = table(&text, "| workload | measured |");
        assert_eq!(others.len(), 3, "only the Cairn-only row: {text}");
        assert_eq!(
            others[2],
            "| get_at_scale/x vs y | 0.50x | <= 2x | - | PASS |"
        );
        assert!(text.contains("1 passed, 0 missed."));
        assert!(text.contains("## Notes\n\n- a note"));
    }

    #[test]
    fn a_run_without_peers_is_one_escaped_table() {
        let mut row = Row::ratio("a|b <c>", 1.0, 1.0, "test");
        row.note = None;
        let text = report(&run(vec![row]), None);
        assert!(!text.contains("## Side by side") && !text.contains("against its peers"));
        assert!(text.contains("## Results"));
        assert!(
            text.contains("| a\\|b &lt;c> | 1.00x | - | - | - |"),
            "{text}"
        );
    }

    #[test]
    fn links_are_relative_to_the_report() {
        let link = |from: &str, to: &str| relative_link(Path::new(from), Path::new(to));
        assert_eq!(link("/r/docs/bench", "/r/docs/bench/a.svg"), "a.svg");
        assert_eq!(link("/r/docs", "/r/docs/bench/a.svg"), "bench/a.svg");
        assert_eq!(link("/r/docs/x", "/r/charts/a.svg"), "../../charts/a.svg");
        assert_eq!(link("/r/./docs/../docs", "/r/docs/a.svg"), "a.svg");
        assert_eq!(link("/r", "/r/my charts/a.svg"), "<my charts/a.svg>");
        let here = std::env::current_dir().expect("a current directory");
        assert_eq!(
            relative_link(&here.join("docs"), Path::new("charts/a.svg")),
            "../charts/a.svg",
            "relative paths are taken from the current directory"
        );
        assert_eq!(code("a `b` c"), "``a `b` c``");
        assert_eq!(code("`x"), "`` `x ``");
    }
}

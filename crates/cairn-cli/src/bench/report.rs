//! The terminal table, and the grouping of side-by-side rows (a `workload` measured for each
//! `subject`; a ratio row is Cairn's speed over that subject's) shared with the report and
//! charts. Subjects come in [`SUBJECT_ORDER`], unknown ones after; groups and workloads keep
//! the order measured. The default table fits [`MAX_WIDTH`] columns: a line per side-by-side
//! workload (Cairn, the best peer, Cairn's speed over it) and per other row.

use std::io::{self, Write};

pub use cairn_bench::report::{format_value, Better, Row, Unit};
use comfy_table::{CellAlignment, ContentArrangement, LineStyle, Table, TableStyle};

use super::saved::{speed_ratio, SavedRun};

const MAX_WIDTH: usize = 120;

/// The columns of the `--wide` table and of the Markdown report's other rows.
pub const WIDE_HEADERS: [&str; 5] = ["workload", "measured", "target", "goal", "result"];

const SUBJECT_ORDER: &str = "cairn-inmemory cairn-buffered cairn-strict redb-buffered \
                             redb-strict fjall-buffered fjall-strict sqlite-buffered \
                             sqlite-strict redis";

const LEGEND: &str = "\
cairn: p50 or rate (side by side: the Cairn mode peers are compared with); best peer: the fastest other store;
vs best: Cairn's speed over it (above 1x: Cairn ahead); result: PASS/MISS against the target; goal: ✓ met, ✗ not.
Every row, percentile, target and note: --wide or --json.";

pub fn subject(row: &Row) -> &str {
    row.subject.as_deref().unwrap_or("?")
}

/// The engine of a subject: its part before the first `-` (`cairn`, `redb`, `redis`).
pub fn engine(subject: &str) -> &str {
    subject.split('-').next().unwrap_or(subject)
}

pub fn describe_measure(unit: Unit) -> &'static str {
    match unit {
        Unit::Nanoseconds => "p50 latency per operation, lower is better",
        Unit::OpsPerSecond => "throughput, higher is better",
        Unit::Bytes => "bytes held, lower is better",
        Unit::Versions => "versions retained, lower is better",
        Unit::Ratio => "ratio",
    }
}

/// One side-by-side workload's rows of one unit, sorted by subject; `first` is the index of
/// its first row in the run.
#[derive(Debug)]
pub struct Workload<'a> {
    pub name: &'a str,
    pub unit: Unit,
    first: usize,
    pub rows: Vec<&'a Row>,
}

impl Workload<'_> {
    pub fn row_of(&self, wanted: &str) -> Option<&Row> {
        self.rows.iter().copied().find(|row| subject(row) == wanted)
    }
}

/// Every side-by-side workload of `rows`, one per (workload, unit), in the order measured.
pub fn workloads(rows: &[Row]) -> Vec<Workload<'_>> {
    let side_by_side = (rows.iter().enumerate()).filter(|(_, row)| row.subject.is_some());
    let found = group_by(side_by_side, |(_, row)| (row.workload.as_deref(), row.unit));
    let found = found.into_iter().filter_map(|((name, unit), rows)| {
        let first = rows.first()?.0;
        let mut rows: Vec<&Row> = rows.into_iter().map(|(_, row)| row).collect();
        rows.sort_by_key(|row| rank(row));
        Some(Workload {
            name: name?,
            unit,
            first,
            rows,
        })
    });
    found.collect()
}

/// A row's subject's place in [`SUBJECT_ORDER`], after it when unknown (a stable sort by it
/// keeps unknown subjects in the order they appeared).
fn rank(row: &Row) -> usize {
    let position = SUBJECT_ORDER.split(' ').position(|it| it == subject(row));
    position.unwrap_or(usize::MAX)
}

/// The measured (not ratio) workloads by group, in the order measured.
pub fn groups<'a, 'r>(workloads: &'a [Workload<'r>]) -> Vec<(&'r str, Vec<&'a Workload<'r>>)> {
    let measured = workloads.iter().filter(|it| it.unit != Unit::Ratio);
    group_by(measured, |it| it.name.split('/').next().unwrap_or(it.name))
}

/// The distinct subjects of `workloads`, in subject order.
pub fn subjects<'r>(workloads: &[&Workload<'r>]) -> Vec<&'r str> {
    let mut rows: Vec<&Row> = workloads.iter().flat_map(|it| it.rows.clone()).collect();
    rows.sort_by_key(|row| rank(row));
    unique(rows.into_iter().map(subject))
}

/// `items` by `key`, keys and items in the order they first come.
fn group_by<K: PartialEq, T>(
    all: impl Iterator<Item = T>,
    key: impl Fn(&T) -> K,
) -> Vec<(K, Vec<T>)> {
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in all {
        let key = key(&item);
        match groups.iter_mut().find(|(known, _)| *known == key) {
            Some((_, members)) => members.push(item),
            None => groups.push((key, vec![item])),
        }
    }
    groups
}

/// `items` without repeats, in the order they first come.
pub fn unique<T: PartialEq + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let groups = group_by(items, |item| *item);
    groups.into_iter().map(|(item, _)| item).collect()
}

/// One row's cells under [`WIDE_HEADERS`]: the full figure, and a check mark after a goal met.
pub fn wide_cells(row: &Row) -> Vec<String> {
    let goal = match (&row.goal, row.goal_met) {
        (Some(goal), Some(true)) => format!("{goal} ✓"),
        (goal, _) => goal.clone().unwrap_or_else(|| "-".into()),
    };
    let [result, _] = marks(&[row], "-");
    let target = row.target.clone().unwrap_or_else(|| "-".into());
    vec![row.name.clone(), row.figure.clone(), target, goal, result]
}

/// Prints the run's table, its failed workloads, then a short legend; with `wide`, every row
/// as measured (figure, target, goal) and the run's notes instead.
pub fn write_table(out: &mut impl Write, run: &SavedRun, wide: bool) -> io::Result<()> {
    let width = if wide { usize::MAX } else { MAX_WIDTH };
    let table = if wide {
        terminal_table(WIDE_HEADERS, run.results.iter().map(wide_cells), &[])
    } else {
        let headers = "workload,cairn,best peer,vs best,result,goal".split(',');
        let mut table = terminal_table(headers, summary(&run.results), &[1, 3]);
        let width = u16::try_from(MAX_WIDTH).unwrap_or(u16::MAX);
        table.set_width(width).set_truncation_indicator("…");
        table.set_content_arrangement(ContentArrangement::Dynamic);
        for row in table.row_iter_mut() {
            row.max_height(1);
        }
        table
    };
    writeln!(out, "{}", table.trim_fmt())?;
    for failure in &run.failed {
        let line = format!("FAILED {}: {}", failure.name, failure.error);
        writeln!(out, "{}", shorten(&line, width))?;
    }
    writeln!(out)?;
    let notes = run
        .notes
        .iter()
        .filter(|_| wide)
        .map(|note| format!("note: {note}"));
    for line in notes.chain((!wide).then(|| LEGEND.to_owned())) {
        writeln!(out, "{line}")?;
    }
    let info = run.results.iter().filter(|row| row.pass.is_none()).count();
    let (all, secs) = (run.results.len(), run.elapsed_seconds);
    writeln!(
        out,
        "({all} rows: {info} informational; ran in {secs:.1} s)"
    )?;
    writeln!(out, "{} passed, {} missed", run.passed, run.missed)
}

/// A table for the terminal: no borders, a rule under the header, two spaces between columns,
/// the columns `right` right-aligned.
pub fn terminal_table<L: Into<comfy_table::Row>>(
    headers: impl Into<comfy_table::Row>,
    lines: impl IntoIterator<Item = L>,
    right: &[usize],
) -> Table {
    let mut table = Table::new();
    let style = TableStyle::new().header_separator(LineStyle::none().fill('-'));
    table.load_style(style).set_header(headers).add_rows(lines);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
        if right.contains(&column.index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The default table's lines, in the order measured: a side-by-side workload's line where its
/// first row was, one line per other row.
fn summary(rows: &[Row]) -> Vec<[String; 6]> {
    let workloads = workloads(rows);
    let lines = rows.iter().enumerate().filter_map(|(index, row)| {
        if row.workload.is_none() || row.subject.is_none() {
            let [result, goal] = marks(&[row], "");
            let (name, figure) = (shorten(&row.name, 48), row.headline());
            return Some([name, figure, String::new(), String::new(), result, goal]);
        }
        let first = |it: &&Workload<'_>| it.first == index && it.unit != Unit::Ratio;
        let workload = workloads.iter().find(first)?;
        let ratios = |it: &&Workload<'_>| it.name == workload.name && it.unit == Unit::Ratio;
        let ratios = workloads.iter().find(ratios).map_or(&[][..], |it| &it.rows);
        Some(side_by_side_line(workload, ratios))
    });
    lines.collect()
}

/// One workload's line: Cairn's figure (in the mode peers are compared with: not in-memory,
/// when there is another), the peer Cairn is least ahead of, and Cairn's speed over it (the
/// ratio row's, or from the two figures).
fn side_by_side_line<'r>(workload: &Workload<'r>, ratios: &[&Row]) -> [String; 6] {
    // The KeyValueStore backends (`kv:*`) are Cairn's own trait over stores, not peers.
    let (cairns, peers): (Vec<&Row>, Vec<&Row>) = (workload.rows.iter())
        .filter(|row| !subject(row).starts_with("kv:"))
        .partition(|row| engine(subject(row)) == "cairn");
    let cairns = cairns.into_iter();
    let cairn = cairns.min_by_key(|row| subject(row).ends_with("-inmemory"));
    let ratio_to = |peer: &'r Row| {
        let row = ratios.iter().find(|it| it.subject == peer.subject);
        let ratio = row
            .map(|it| it.value)
            .or_else(|| speed_ratio(peer, cairn?))?;
        ratio.is_finite().then_some((peer, ratio))
    };
    let best = peers.into_iter().filter_map(ratio_to);
    let best = best.min_by(|a, b| a.1.total_cmp(&b.1));
    let best_peer = best.map(|(peer, _)| format!("{} {}", subject(peer), peer.headline()));
    let best_ratio = best.map(|(_, ratio)| format!("{ratio:.2}x"));
    let all: Vec<&Row> = workload.rows.iter().chain(ratios).copied().collect();
    let [result, goal] = marks(&all, "");
    let (name, cairn) = (shorten(workload.name, 48), cairn.map(Row::headline));
    let [cairn, best_peer, best_ratio] =
        [cairn, best_peer, best_ratio].map(Option::unwrap_or_default);
    [name, cairn, best_peer, best_ratio, result, goal]
}

/// `MISS` when a row missed its target, else `PASS` when one met it; `✗` when a row missed
/// its goal, else `✓` when one met it; `none` without targets or goals.
fn marks(rows: &[&Row], none: &str) -> [String; 2] {
    let mark = |checks: Vec<bool>, [met, missed]: [&str; 2]| match checks.first() {
        _ if checks.contains(&false) => missed.to_owned(),
        Some(_) => met.to_owned(),
        None => none.to_owned(),
    };
    let passes = rows.iter().filter_map(|row| row.pass).collect();
    let goals = rows.iter().filter_map(|row| row.goal_met).collect();
    [mark(passes, ["PASS", "MISS"]), mark(goals, ["✓", "✗"])]
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

//! `--markdown FILE`: the run as a Markdown report: a header, a table per side-by-side group
//! (a column per subject, its `--plot` chart linked), Cairn's speed over each peer's
//! (`ratios.svg` linked), the other rows as `--wide` shows them, the tally, failures and notes.
//! Cells are escaped so that no `|` breaks a table; chart links are relative to FILE's folder.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use comfy_table::{presets, CellAlignment, Table};

use super::plot;
use super::report::{self, Row, Unit, Workload};
use super::saved::{Failure, SavedRun};

/// Writes the report of `run` bound for `path`; `charts`: the `--plot` directory, if any.
pub fn write_report(
    out: &mut impl Write,
    run: &SavedRun,
    charts: Option<&Path>,
    path: &Path,
) -> io::Result<()> {
    let (date, machine, mode, build) = (&run.date, run.machine_text(), &run.mode, run.build_text());
    let command = code(run.command.as_deref().unwrap_or("not recorded"));
    write!(
        out,
        "# `cairn bench` results\n\n- date: {date}\n- machine: {machine}\n- mode: {mode}, \
         {build}\n- command: {command}\n"
    )?;
    if let Some(filter) = &run.filter {
        writeln!(out, "- filter: {}", code(filter))?;
    }
    let mut report_dir = normalized(path);
    report_dir.pop();
    let link = |file: &str| charts.map(|dir| relative_link(&report_dir, &dir.join(file)));
    let workloads = report::workloads(&run.results);
    let groups = report::groups(&workloads);
    if !groups.is_empty() {
        writeln!(
            out,
            "\n## Side by side\n\nCairn and its peers on the same workloads, one column per \
             store and durability mode (`-inmemory`: no disk; `-buffered`: commits reach the \
             OS, synced in the background; `-strict`: every commit synced before it returns)."
        )?;
    }
    for (group, members) in &groups {
        let measures = report::unique(members.iter().map(|workload| match workload.unit {
            Unit::Nanoseconds => "latency cells: p50 / p99 per operation, lower is better",
            unit => report::describe_measure(unit),
        }));
        let measures = measures.join("; ");
        let (first, rest) = measures.split_at(measures.chars().next().map_or(0, char::len_utf8));
        let (title, first) = (text(group), first.to_uppercase());
        writeln!(out, "\n### {title}\n\n{first}{rest}.\n")?;
        write_matrix(out, members)?;
        if let Some(link) = link(&plot::file_name(group)) {
            writeln!(out, "\n![{title}: Cairn and its peers]({link})")?;
        }
    }
    let ratio = |it: &&Workload<'_>| it.unit == Unit::Ratio;
    let ratios: Vec<&Workload<'_>> = workloads.iter().filter(ratio).collect();
    if !ratios.is_empty() {
        writeln!(
            out,
            "\n## Cairn against its peers\n\nCairn's speed over each peer's on the same \
             workload: above 1x Cairn is ahead (peer p50 over Cairn's p50 for latencies, \
             Cairn's rate over the peer's for throughputs).\n"
        )?;
        write_matrix(out, &ratios)?;
        if let Some(link) = link(plot::RATIOS_FILE) {
            writeln!(out, "\n![Cairn's speed relative to each peer]({link})")?;
        }
    }
    let other = |row: &&Row| row.workload.is_none() || row.subject.is_none();
    let others = run.results.iter().filter(other).map(report::wide_cells);
    let mut others: Vec<Vec<String>> = others.collect();
    if !others.is_empty() {
        let only = groups.is_empty() && ratios.is_empty();
        let title = if only { "Results" } else { "Other rows" };
        writeln!(out, "\n## {title}\n")?;
        others.insert(0, report::WIDE_HEADERS.map(str::to_owned).into());
        write_table(out, others, false)?;
    }
    writeln!(out, "\n{} passed, {} missed.", run.passed, run.missed)?;
    let failure = |it: &Failure| format!("{}: {}", code(&it.name), text(&it.error));
    let failed: Vec<String> = run.failed.iter().map(failure).collect();
    let notes = run.notes.iter().map(|note| text(note)).collect();
    for (title, items) in [("Failed workloads", failed), ("Notes", notes)] {
        if !items.is_empty() {
            writeln!(out, "\n## {title}\n")?;
        }
        for item in items {
            writeln!(out, "- {item}")?;
        }
    }
    Ok(())
}

/// A table: a line per workload, a column per subject (`vs <subject>` for ratios), each cell
/// the row's figure, or for ratios its value (`–` where the subject was not measured).
fn write_matrix(out: &mut impl Write, workloads: &[&Workload<'_>]) -> io::Result<()> {
    let vs = workloads.first().is_some_and(|it| it.unit == Unit::Ratio);
    let prefix = if vs { "vs " } else { "" };
    let cell = |it: &Row| if vs { it.headline() } else { it.figure.clone() };
    let subjects = report::subjects(workloads);
    let headers = subjects.iter().map(|subject| format!("{prefix}{subject}"));
    let mut lines = vec![std::iter::once("workload".into()).chain(headers).collect()];
    for workload in workloads {
        let mut line = vec![workload.name.to_owned()];
        for subject in &subjects {
            line.push(workload.row_of(subject).map_or("–".into(), &cell));
        }
        lines.push(line);
    }
    write_table(out, lines, true)
}

/// A Markdown table of escaped cells, headers first; with `figures`, every column after the
/// first is right-aligned (`---:`).
fn write_table(out: &mut impl Write, mut lines: Vec<Vec<String>>, figures: bool) -> io::Result<()> {
    for cell in lines.iter_mut().flatten() {
        *cell = text(cell).replace('|', "\\|");
    }
    let mut lines = lines.into_iter();
    let mut table = Table::new();
    let headers = lines.next().unwrap_or_default();
    table.load_style(presets::ASCII_MARKDOWN);
    table.set_header(headers).add_rows(lines);
    for column in table.column_iter_mut().skip(1).filter(|_| figures) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    let mut lines: Vec<String> = table.lines().collect();
    // The rule under the header: `|------|-----:|-----:|`.
    if let Some(rule) = lines.get_mut(1).filter(|_| figures) {
        *rule = rule.replace("-|", ":|").replacen(":|", "-|", 1);
    }
    writeln!(out, "{}", lines.join("\n"))
}

/// Prose: line breaks flattened, and a `<` that could open an HTML tag escaped (`<= 2x`
/// stays as it is).
fn text(text: &str) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    let mut parts = flat.split('<');
    let first = parts.next().unwrap_or_default().to_owned();
    parts.fold(first, |mut escaped, part| {
        let tag = part.starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c));
        escaped.push_str(if tag { "&lt;" } else { "<" });
        escaped.push_str(part);
        escaped
    })
}

/// Inline code, with a fence longer than any backtick run inside.
fn code(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = " ".repeat(usize::from(text.starts_with('`') || text.ends_with('`')));
    let flat = text.replace(['\n', '\r'], " ");
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// The path of `target` relative to the directory `from`, with `/` separators; in `<...>`
/// when it holds a space, so that Markdown keeps it whole.
fn relative_link(from: &Path, target: &Path) -> String {
    let (from, target) = (normalized(from), normalized(target));
    let pairs = from.components().zip(target.components());
    let common = pairs.take_while(|(a, b)| a == b).count();
    let up = from.components().skip(common).map(|_| "..".to_owned());
    let down = target.components().skip(common);
    let down = down.map(|part| part.as_os_str().to_string_lossy().into_owned());
    let link = up.chain(down).collect::<Vec<_>>().join("/");
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
            Component::ParentDir => drop(normal.pop()),
            other => normal.push(other),
        }
    }
    normal
}

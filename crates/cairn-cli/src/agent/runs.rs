//! `cairn agent list` and `cairn agent show`: the runs of a database, and one run with its
//! event log and its traces as a tree. Both read one run record per run (`list` reads the
//! status index when filtering) and never write.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use cairn_agent::{Agent, Event, RunId, RunInfo, RunQuery, RunStatus, SpanKind, SpanNode};
use serde::Serialize;

use super::{json_text, open, printable, shorten, status_name};
use crate::inspect::{print_document, Outcome};
use crate::machine::format_unix_millis;
use crate::streams::table;

/// Longest payload or content shown on a text line, in characters.
const TEXT_PREVIEW_CHARS: usize = 100;

/// A run's record, as printed.
#[derive(Debug, Serialize)]
struct RunRow {
    id: u64,
    name: String,
    status: &'static str,
    tags: Vec<String>,
    metadata: serde_json::Value,
    /// The logical parent (`RunSpec::parent`).
    parent: Option<u64>,
    /// The run this one was forked from, and where.
    fork: Option<ForkRow>,
    created_ms: u64,
    updated_ms: u64,
}

#[derive(Debug, Serialize)]
struct ForkRow {
    parent: u64,
    step: u64,
    events: u64,
    spans: u64,
}

impl From<&RunInfo> for RunRow {
    fn from(info: &RunInfo) -> Self {
        RunRow {
            id: info.id.get(),
            name: info.name.clone(),
            status: status_name(info.status),
            tags: info.tags.clone(),
            metadata: info.metadata.clone(),
            parent: info.parent.map(RunId::get),
            fork: info.fork.map(|fork| ForkRow {
                parent: fork.parent.get(),
                step: fork.step,
                events: fork.events,
                spans: fork.spans,
            }),
            created_ms: info.created_ms,
            updated_ms: info.updated_ms,
        }
    }
}

/// `cairn agent list DIR [--status S] [--json]`.
pub fn list(dir: &Path, status: Option<RunStatus>, json: bool) -> Result<Outcome> {
    let agent = open(dir)?;
    let runs = agent.query(&RunQuery {
        status,
        ..RunQuery::default()
    })?;
    let rows: Vec<RunRow> = runs.iter().map(RunRow::from).collect();
    print_document(json, &rows, |out, rows| print_runs(out, rows))?;
    Ok(Outcome::Intact)
}

fn print_runs(out: &mut impl Write, rows: &[RunRow]) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no runs");
    }
    let lines = rows.iter().map(|row| {
        vec![
            row.id.to_string(),
            row.name.clone(),
            row.status.to_owned(),
            row.tags.join(","),
            row.fork.as_ref().map_or_else(String::new, |fork| {
                format!("{} @ step {}", fork.parent, fork.step)
            }),
            format_unix_millis(row.created_ms),
            format_unix_millis(row.updated_ms),
        ]
    });
    let headers = [
        "run", "name", "status", "tags", "fork of", "created", "updated",
    ];
    writeln!(out, "{}", table(headers, lines, &[0]))?;
    out.flush()
}

/// One event, as `show` prints it.
#[derive(Debug, Serialize)]
struct EventRow {
    seq: u64,
    step: u64,
    time_ms: u64,
    #[serde(rename = "type")]
    event_type: String,
    payload: serde_json::Value,
    hash: String,
}

impl From<&Event> for EventRow {
    fn from(event: &Event) -> Self {
        EventRow {
            seq: event.seq,
            step: event.step,
            time_ms: event.time_ms,
            event_type: event.event_type.clone(),
            payload: json_text(event.payload_bytes()),
            hash: super::hex(&event.hash),
        }
    }
}

/// One span and its children.
#[derive(Debug, Serialize)]
struct SpanRow {
    id: u64,
    kind: String,
    name: String,
    tags: Vec<String>,
    start_ms: u64,
    duration_us: u64,
    content: serde_json::Value,
    children: Vec<SpanRow>,
}

impl SpanRow {
    /// The tree under `node`, built without recursion (a trace may be deep).
    fn tree(node: &SpanNode) -> SpanRow {
        let leaf = |node: &SpanNode| SpanRow {
            id: node.span.id,
            kind: kind_name(&node.span.kind),
            name: node.span.name.clone(),
            tags: node.span.tags.clone(),
            start_ms: node.span.start_ms,
            duration_us: node.span.duration_us,
            content: json_text(&node.span.content),
            children: Vec::new(),
        };
        // Post-order: a node is finished once all its children are.
        let mut stack: Vec<(&SpanNode, SpanRow, usize)> = vec![(node, leaf(node), 0)];
        loop {
            let Some((current, _, next)) = stack.last_mut() else {
                return leaf(node);
            };
            if let Some(child) = current.children.get(*next) {
                *next += 1;
                stack.push((child, leaf(child), 0));
                continue;
            }
            let Some((_, done, _)) = stack.pop() else {
                return leaf(node);
            };
            match stack.last_mut() {
                Some((_, parent, _)) => parent.children.push(done),
                None => return done,
            }
        }
    }
}

fn kind_name(kind: &SpanKind) -> String {
    match kind {
        SpanKind::ToolCall => "tool_call".into(),
        SpanKind::Decision => "decision".into(),
        SpanKind::Thought => "thought".into(),
        SpanKind::Error => "error".into(),
        SpanKind::Custom(name) => name.clone(),
    }
}

/// What `show --json` prints.
#[derive(Debug, Serialize)]
struct ShowDocument {
    run: RunRow,
    events: Vec<EventRow>,
    traces: Vec<SpanRow>,
}

/// `cairn agent show DIR RUN [--json]`.
pub fn show(dir: &Path, run: RunId, json: bool) -> Result<Outcome> {
    let agent = open(dir)?;
    let document = read_run(&agent, run)?;
    print_document(json, &document, print_run)?;
    Ok(Outcome::Intact)
}

fn read_run(agent: &Agent, run: RunId) -> Result<ShowDocument> {
    let info = agent.get_run(run)?;
    let events = agent.read_all(run)?;
    let traces = agent.tree(run)?;
    Ok(ShowDocument {
        run: RunRow::from(&info),
        events: events.iter().map(EventRow::from).collect(),
        traces: traces.iter().map(SpanRow::tree).collect(),
    })
}

fn print_run(out: &mut impl Write, document: &ShowDocument) -> io::Result<()> {
    let run = &document.run;
    writeln!(out, "run {} {:?}: {}", run.id, run.name, run.status)?;
    if !run.tags.is_empty() {
        writeln!(out, "  tags: {}", run.tags.join(", "))?;
    }
    if let Some(parent) = run.parent {
        writeln!(out, "  parent: run {parent}")?;
    }
    if let Some(fork) = &run.fork {
        writeln!(
            out,
            "  fork of run {} at step {} ({} events, {} spans inherited)",
            fork.parent, fork.step, fork.events, fork.spans
        )?;
    }
    writeln!(
        out,
        "  created {}, updated {}",
        format_unix_millis(run.created_ms),
        format_unix_millis(run.updated_ms)
    )?;
    writeln!(out, "events: {}", document.events.len())?;
    for event in &document.events {
        writeln!(
            out,
            "  #{} step {} {} {} {}",
            event.seq,
            event.step,
            format_unix_millis(event.time_ms),
            printable(event.event_type.as_bytes()),
            shorten(
                &printable(event.payload.to_string().as_bytes()),
                TEXT_PREVIEW_CHARS
            )
        )?;
    }
    let spans = count(&document.traces);
    writeln!(out, "traces: {spans} span(s)")?;
    // Depth first, children indented under their parent.
    let mut stack: Vec<(&SpanRow, usize)> = document.traces.iter().rev().map(|s| (s, 1)).collect();
    while let Some((span, depth)) = stack.pop() {
        let tags = if span.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", span.tags.join(", "))
        };
        writeln!(
            out,
            "{:indent$}#{} {} {} {:.3} ms{tags} {}",
            "",
            span.id,
            printable(span.kind.as_bytes()),
            printable(span.name.as_bytes()),
            // Display only: microseconds to milliseconds.
            std::time::Duration::from_micros(span.duration_us).as_secs_f64() * 1000.0,
            shorten(
                &printable(span.content.to_string().as_bytes()),
                TEXT_PREVIEW_CHARS
            ),
            indent = depth * 2
        )?;
        stack.extend(span.children.iter().rev().map(|c| (c, depth + 1)));
    }
    out.flush()
}

fn count(spans: &[SpanRow]) -> usize {
    let mut total = 0;
    let mut stack: Vec<&SpanRow> = spans.iter().collect();
    while let Some(span) = stack.pop() {
        total += 1;
        stack.extend(&span.children);
    }
    total
}

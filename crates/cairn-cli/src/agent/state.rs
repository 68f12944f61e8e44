//! `cairn agent replay`, `cairn agent diff` and `cairn agent verify`: a run's state at a point
//! of its history (folded from its history records, never read from its current keys), the
//! differences between two runs, and the recomputation of a run's hash chain.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use cairn_agent::{Agent, At, Change, ChangeKind, Event, Primitive, RunId, RunState};
use serde::Serialize;

use super::{bytes_json, hex, json_text, open, primitive_name, printable, shorten};
use crate::inspect::{ignore_closed_stdout, print_document, write_json, Outcome};

/// Longest value shown on a text line, in characters.
const TEXT_PREVIEW_CHARS: usize = 100;

/// What `replay --json` prints.
#[derive(Debug, Serialize)]
struct ReplayDocument {
    run: u64,
    /// The event the replay stops after, or `None` for the run's end.
    upto_event: Option<u64>,
    steps: u64,
    events: usize,
    spans: usize,
    kv: Vec<KvRow>,
    cells: Vec<CellRow>,
    docs: Vec<DocRow>,
}

#[derive(Debug, Serialize)]
struct KvRow {
    key: serde_json::Value,
    value: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct CellRow {
    name: String,
    version: u64,
    value: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct DocRow {
    name: String,
    value: serde_json::Value,
}

/// `cairn agent replay DIR RUN [--upto SEQ] [--json]`: the state right after the commit that
/// appended event `SEQ`, or at the run's end.
pub fn replay(dir: &Path, run: RunId, upto: Option<u64>, json: bool) -> Result<Outcome> {
    let agent = open(dir)?;
    let at = upto.map_or(At::End, At::Event);
    let state = agent.replay_run(run, at)?;
    let document = replay_document(run, upto, &state);
    print_document(json, &document, print_replay)?;
    Ok(Outcome::Intact)
}

fn replay_document(run: RunId, upto: Option<u64>, state: &RunState) -> ReplayDocument {
    ReplayDocument {
        run: run.get(),
        upto_event: upto,
        steps: state.steps,
        events: state.events.len(),
        spans: state.spans.len(),
        kv: state
            .kv
            .iter()
            .map(|(key, value)| KvRow {
                key: bytes_json(key),
                value: bytes_json(value),
            })
            .collect(),
        cells: state
            .cells
            .iter()
            .map(|(name, cell)| CellRow {
                name: name.clone(),
                version: cell.version,
                value: bytes_json(&cell.value),
            })
            .collect(),
        docs: state
            .docs
            .iter()
            .map(|(name, value)| DocRow {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => printable(text.as_bytes()),
        other => shorten(&other.to_string(), TEXT_PREVIEW_CHARS),
    }
}

fn print_replay(out: &mut impl Write, document: &ReplayDocument) -> io::Result<()> {
    let point = document
        .upto_event
        .map_or_else(|| "its end".to_owned(), |seq| format!("event {seq}"));
    writeln!(
        out,
        "run {} at {point}: {} steps, {} events, {} spans",
        document.run, document.steps, document.events, document.spans
    )?;
    writeln!(out, "kv: {}", document.kv.len())?;
    for row in &document.kv {
        writeln!(
            out,
            "  {} = {}",
            value_text(&row.key),
            shorten(&value_text(&row.value), TEXT_PREVIEW_CHARS)
        )?;
    }
    writeln!(out, "cells: {}", document.cells.len())?;
    for row in &document.cells {
        writeln!(
            out,
            "  {} (v{}) = {}",
            printable(row.name.as_bytes()),
            row.version,
            shorten(&value_text(&row.value), TEXT_PREVIEW_CHARS)
        )?;
    }
    writeln!(out, "docs: {}", document.docs.len())?;
    for row in &document.docs {
        writeln!(
            out,
            "  {} = {}",
            printable(row.name.as_bytes()),
            shorten(&row.value.to_string(), TEXT_PREVIEW_CHARS)
        )?;
    }
    out.flush()
}

/// One differing key, as printed.
#[derive(Debug, Serialize)]
struct ChangeRow {
    primitive: &'static str,
    /// KV key, cell or document name, or span id.
    key: serde_json::Value,
    kind: &'static str,
    left: serde_json::Value,
    right: serde_json::Value,
}

/// One side of the first event divergence.
#[derive(Debug, Serialize)]
struct EventSide {
    seq: u64,
    #[serde(rename = "type")]
    event_type: String,
    payload: serde_json::Value,
    hash: String,
}

impl From<&Event> for EventSide {
    fn from(event: &Event) -> Self {
        EventSide {
            seq: event.seq,
            event_type: event.event_type.clone(),
            payload: json_text(event.payload_bytes()),
            hash: hex(&event.hash),
        }
    }
}

/// What `diff --json` prints.
#[derive(Debug, Serialize)]
struct DiffDocument {
    left: u64,
    right: u64,
    same: bool,
    changes: Vec<ChangeRow>,
    /// Events equal in both logs (same sequence, content and hash), from 0.
    common_events: u64,
    left_event: Option<EventSide>,
    right_event: Option<EventSide>,
}

/// `cairn agent diff DIR RUN_A RUN_B [--json]`: the two runs' current states compared.
pub fn diff(dir: &Path, left: RunId, right: RunId, json: bool) -> Result<Outcome> {
    let agent = open(dir)?;
    let diff = agent.diff_runs(left, right)?;
    let mut changes = Vec::with_capacity(diff.changes.len());
    for change in &diff.changes {
        changes.push(change_row(&agent, left, right, change)?);
    }
    let document = DiffDocument {
        left: left.get(),
        right: right.get(),
        same: diff.is_empty(),
        changes,
        common_events: diff.events.common,
        left_event: diff.events.left.as_ref().map(EventSide::from),
        right_event: diff.events.right.as_ref().map(EventSide::from),
    };
    print_document(json, &document, print_diff)?;
    Ok(Outcome::Intact)
}

fn change_row(agent: &Agent, left: RunId, right: RunId, change: &Change) -> Result<ChangeRow> {
    let kind = match change.kind {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
    };
    let (key, left_value, right_value) = match change.primitive {
        // A span's values are its encoded records: show the spans' names instead.
        Primitive::Span => {
            let id = <[u8; 8]>::try_from(change.key.as_slice())
                .map(u64::from_be_bytes)
                .ok();
            let name = |run: RunId, present: bool| -> Result<serde_json::Value> {
                let span = match (id, present) {
                    (Some(id), true) => agent.span(run, id)?,
                    _ => None,
                };
                Ok(span.map_or(serde_json::Value::Null, |s| s.name.into()))
            };
            (
                id.map_or_else(|| bytes_json(&change.key), serde_json::Value::from),
                name(left, change.left.is_some())?,
                name(right, change.right.is_some())?,
            )
        }
        Primitive::Doc => (
            bytes_json(&change.key),
            change
                .left
                .as_deref()
                .map_or(serde_json::Value::Null, json_text),
            change
                .right
                .as_deref()
                .map_or(serde_json::Value::Null, json_text),
        ),
        _ => (
            bytes_json(&change.key),
            change
                .left
                .as_deref()
                .map_or(serde_json::Value::Null, bytes_json),
            change
                .right
                .as_deref()
                .map_or(serde_json::Value::Null, bytes_json),
        ),
    };
    Ok(ChangeRow {
        primitive: primitive_name(change.primitive),
        key,
        kind,
        left: left_value,
        right: right_value,
    })
}

fn print_diff(out: &mut impl Write, document: &DiffDocument) -> io::Result<()> {
    if document.same {
        return writeln!(
            out,
            "runs {} and {} have the same state and events",
            document.left, document.right
        );
    }
    writeln!(
        out,
        "run {} -> run {}: {} change(s)",
        document.left,
        document.right,
        document.changes.len()
    )?;
    for change in &document.changes {
        let side = |value: &serde_json::Value| match value {
            serde_json::Value::Null => "-".to_owned(),
            other => shorten(&value_text(other), TEXT_PREVIEW_CHARS / 2),
        };
        writeln!(
            out,
            "  {:<7} {:<5} {}: {} -> {}",
            change.kind,
            change.primitive,
            value_text(&change.key),
            side(&change.left),
            side(&change.right)
        )?;
    }
    let event = |side: Option<&EventSide>| {
        side.map_or_else(
            || "(none)".to_owned(),
            |e| format!("#{} {}", e.seq, printable(e.event_type.as_bytes())),
        )
    };
    if document.left_event.is_none() && document.right_event.is_none() {
        writeln!(out, "events: the same {} event(s)", document.common_events)?;
    } else {
        writeln!(
            out,
            "events: {} in common, then left {} / right {}",
            document.common_events,
            event(document.left_event.as_ref()),
            event(document.right_event.as_ref())
        )?;
    }
    out.flush()
}

/// What `verify --json` prints.
#[derive(Debug, Serialize)]
struct VerifyDocument {
    run: u64,
    intact: bool,
    events: u64,
    /// The last event's hash (or the genesis hash of an empty log).
    head: String,
    /// The first sequence that is missing, out of place, undecodable or whose hash does not
    /// match.
    first_bad: Option<u64>,
}

/// `cairn agent verify DIR RUN [--json]`: exit 0 when the chain is intact, 1 when not.
pub fn verify(dir: &Path, run: RunId, json: bool) -> Result<Outcome> {
    let agent = open(dir)?;
    let report = agent.verify_chain(run)?;
    let document = VerifyDocument {
        run: run.get(),
        intact: report.is_intact(),
        events: report.events,
        head: hex(&report.head),
        first_bad: report.first_bad,
    };
    let mut out = io::stdout().lock();
    ignore_closed_stdout(if json {
        write_json(&mut out, &document)
    } else {
        match document.first_bad {
            None => writeln!(
                out,
                "run {}: chain intact, {} event(s), head {}",
                document.run, document.events, document.head
            ),
            Some(seq) => writeln!(
                out,
                "run {}: chain BROKEN at sequence {seq} ({} event(s) checked)",
                document.run, document.events
            ),
        }
    })?;
    Ok(if document.intact {
        Outcome::Intact
    } else {
        Outcome::Damaged
    })
}

//! `cairn agent`: the agent state (`cairn-agent`) of a data directory, for people and scripts.
//!
//! - `list` ([`runs::list`]): the runs, optionally of one status.
//! - `show` ([`runs::show`]): one run: its record, its event log, and its traces as a tree.
//! - `replay` ([`state::replay`]): a run's KV, cells and documents at an event (or its end).
//! - `diff` ([`state::diff`]): what differs between two runs' current states, and where their
//!   event logs diverge.
//! - `verify` ([`state::verify`]): a run's hash chain recomputed; exit 1 names the first bad
//!   sequence.
//! - `search` ([`find::search`]): BM25 keyword search over every run or one.
//!
//! Every command prints text, or one JSON document with `--json`. Unlike `cairn inspect`,
//! these open the database through the engine (recovery included), so they take its lock: a
//! database another process has open is refused with a message saying so, and nothing waits.
//! They open the agent state without its orphan check ([`cairn_agent::Agent::open_for_reading`])
//! and only read: no run's status changes, no key is written. A directory that holds no Cairn
//! data is refused before the engine could create a database in it. Exit codes are those of
//! the offline commands: 0 done, 1 a broken chain (`verify`), 2 could not run.

pub mod find;
pub mod runs;
pub mod state;

use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use cairn::{Db, Options};
use cairn_agent::{Agent, Primitive, RunId, RunStatus};

use crate::inspect::escape::escape_bytes;
use crate::inspect::layout::DataDir;

/// Opens the agent state of the data directory `dir` for reading.
pub fn open(dir: &Path) -> Result<Agent> {
    let listing = DataDir::list(dir)?;
    if listing.is_foreign() {
        bail!(
            "{} holds no Cairn data (no snapshot, WAL segment or identity file)",
            dir.display()
        );
    }
    let db = Db::open(Options::new(dir)).map_err(|error| match error {
        cairn::Error::Locked { path } => anyhow!(
            "the database in {} is open in another process; close it there, then run this again",
            path.display()
        ),
        other => anyhow!(other).context(format!("cannot open the database in {}", dir.display())),
    })?;
    Agent::open_for_reading(db).context("cannot read the agent state")
}

/// A run id as given on the command line.
pub fn parse_run(text: &str) -> Result<RunId, String> {
    text.parse::<u64>()
        .map(RunId::from_u64)
        .map_err(|_| format!("{text:?} is not a run id (a number)"))
}

/// A status by its name (`active`, `paused`, ...).
pub fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::ALL
        .into_iter()
        .find(|status| status_name(*status) == text.to_ascii_lowercase())
        .ok_or_else(|| {
            let names: Vec<&str> = RunStatus::ALL.into_iter().map(status_name).collect();
            format!("{text:?} is not a status (one of {})", names.join(", "))
        })
}

/// A primitive by its name (`event`, `span`, `kv`, `cell`, `doc`).
pub fn parse_primitive(text: &str) -> Result<Primitive, String> {
    PRIMITIVES
        .into_iter()
        .find(|primitive| primitive_name(*primitive) == text.to_ascii_lowercase())
        .ok_or_else(|| format!("{text:?} is not a primitive (event, span, kv, cell or doc)"))
}

const PRIMITIVES: [Primitive; 5] = [
    Primitive::Event,
    Primitive::Span,
    Primitive::Kv,
    Primitive::Cell,
    Primitive::Doc,
];

/// A status's name, as `list --status` takes it.
pub fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Active => "active",
        RunStatus::Paused => "paused",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Archived => "archived",
        RunStatus::Orphaned => "orphaned",
    }
}

/// A primitive's name, as `search --primitive` takes it.
pub fn primitive_name(primitive: Primitive) -> &'static str {
    match primitive {
        Primitive::Event => "event",
        Primitive::Span => "span",
        Primitive::Kv => "kv",
        Primitive::Cell => "cell",
        Primitive::Doc => "doc",
    }
}

/// Bytes for a terminal line: UTF-8 text without control characters as is, anything else
/// escaped (`\xNN`).
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => escape_bytes(bytes),
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
    }
}

/// Bytes for JSON: a string when they are UTF-8, else `{"hex": "..."}`.
fn bytes_json(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::Value::String(text.to_owned()),
        Err(_) => serde_json::json!({ "hex": hex(bytes) }),
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A JSON text as a JSON value (it was validated when written; anything else as a string).
fn json_text(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| bytes_json(bytes))
}

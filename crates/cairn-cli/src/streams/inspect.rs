//! `cairn streams inspect DIR`: what a stream store holds, per stream: name, id, first and
//! next offset, segments (first and last LSN, offset range, bytes), total bytes, consumer
//! groups with their committed offsets. `--json` prints the same as one document.
//!
//! How: the `STREAM` and `GROUPS` files are decoded, and every segment gets a frame scan
//! (checksums and the batch header of each frame, not the messages), one window at a time.
//! It judges nothing: a scan that stops early or a file that does not decode is shown in its
//! row, and `cairn verify` says whether that is a torn tail or damage. It fails (exit 2) only
//! when the directory is not a stream store or cannot be read.
//!
//! Read-only: no lock is taken (the lock file is only probed, and a held lock is reported):
//! a running writer may append meanwhile, so the last segment may show fewer frames than the
//! writer has, and a frame being written may show as a stop. In Buffered mode, messages the
//! writer has acknowledged but not yet flushed are not on disk and not counted.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use cairn_log::stream::codec::StreamMeta;

use super::store::{
    list_segment_files, read_groups, read_meta, scan_segment, DirState, OtherEntry, SegmentFile,
    StoreDir, StreamDir,
};
use super::table;
use crate::inspect::escape::format_unix_millis;
use crate::inspect::layout::LockState;
use crate::inspect::{print_document, Outcome};

/// One segment of a stream.
#[derive(Debug, Serialize)]
struct SegmentRow {
    file: String,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    frames: u64,
    messages: u64,
    /// The first offset of its first batch.
    first_offset: Option<u64>,
    /// One past the last offset of its last batch.
    end_offset: Option<u64>,
    first_timestamp_ms: Option<u64>,
    last_timestamp_ms: Option<u64>,
    /// Bytes from the start of the file to the end of the last valid frame.
    bytes_used: u64,
    file_bytes: u64,
    /// Why the header does not check, or where and why the frame scan stopped early.
    note: Option<String>,
}

/// One consumer group of a stream.
#[derive(Debug, Serialize)]
struct GroupRow {
    name: String,
    /// The lowest offset the group has not acknowledged.
    committed: u64,
    /// Messages from the committed offset (or the first readable one) to the next offset.
    behind: u64,
}

/// One stream directory.
#[derive(Debug, Serialize)]
struct StreamRow {
    /// The directory (its id, 20 digits).
    dir: String,
    id: u64,
    /// `live`, `deleting` (a deletion the next open finishes) or `incomplete` (a creation the
    /// next open removes).
    state: &'static str,
    name: Option<String>,
    /// The first readable offset (from `STREAM`).
    first_offset: Option<u64>,
    /// One past the last offset on disk (at least the first offset).
    next_offset: Option<u64>,
    /// Readable messages: next offset minus first offset.
    messages: Option<u64>,
    segments: Vec<SegmentRow>,
    groups: Vec<GroupRow>,
    /// Bytes of every file in the directory.
    bytes: u64,
    /// What could not be decoded (`STREAM` or `GROUPS`).
    errors: Vec<String>,
}

/// The whole report (also the `--json` document).
#[derive(Debug, Serialize)]
struct InspectReport {
    dir: String,
    lock: LockState,
    database_id: Option<String>,
    /// Why the identity file is missing or does not decode.
    identity_error: Option<String>,
    streams: Vec<StreamRow>,
    other_files: Vec<OtherEntry>,
    /// Bytes of every stream directory.
    bytes: u64,
}

/// Runs `cairn streams inspect` on `dir`, printing tables (or JSON) to stdout.
pub fn run(dir: &Path, json: bool) -> Result<Outcome> {
    let store = StoreDir::list(dir)?;
    let database_id = store.database_id();
    let identity_error = match &store.identity {
        None => Some("the STREAMS identity file is missing".to_owned()),
        Some(Err(problem)) => Some(format!(
            "the STREAMS identity file at byte offset {}: {}",
            problem.offset, problem.reason
        )),
        Some(Ok(_)) => None,
    };
    let mut streams = Vec::new();
    for stream in &store.streams {
        streams.push(stream_row(&store, stream, database_id)?);
    }
    let report = InspectReport {
        dir: dir.display().to_string(),
        lock: store.lock,
        database_id: database_id.map(|id| id.to_string()),
        identity_error,
        bytes: streams
            .iter()
            .fold(0_u64, |sum, stream| sum.saturating_add(stream.bytes)),
        streams,
        other_files: store.others.clone(),
    };
    print_document(json, &report, write_text).context("cannot write to stdout")?;
    Ok(Outcome::Intact)
}

fn stream_row(
    store: &StoreDir,
    stream: &StreamDir,
    database_id: Option<cairn_log::DatabaseId>,
) -> Result<StreamRow> {
    let mut row = StreamRow {
        dir: stream.name.clone(),
        id: stream.id,
        state: stream.state.name(),
        name: None,
        first_offset: None,
        next_offset: None,
        messages: None,
        segments: Vec::new(),
        groups: Vec::new(),
        bytes: stream.bytes,
        errors: Vec::new(),
    };
    let problem_text = |problem: &super::store::Problem| -> String {
        format!(
            "{} at byte offset {}: {}",
            store.relative(&problem.file),
            problem.offset,
            problem.reason
        )
    };
    let meta = if stream.state == DirState::Live {
        match read_meta(stream, database_id)? {
            Ok(meta) => Some(meta),
            Err(problem) => {
                row.errors.push(problem_text(&problem));
                None
            }
        }
    } else {
        None
    };
    let mut end_offset = None;
    for segment in list_segment_files(stream)? {
        let segment_row = segment_row(&segment, meta.as_ref())?;
        end_offset = segment_row.end_offset.or(end_offset);
        row.segments.push(segment_row);
    }
    if let Some(meta) = &meta {
        let next = end_offset.map_or(meta.first_offset, |end| end.max(meta.first_offset));
        row.name = Some(meta.name.clone());
        row.first_offset = Some(meta.first_offset);
        row.next_offset = Some(next);
        row.messages = Some(next.saturating_sub(meta.first_offset));
        match read_groups(stream, meta)? {
            Ok(None) => {}
            Ok(Some(file)) => {
                row.groups = file
                    .committed
                    .iter()
                    .map(|(name, &committed)| GroupRow {
                        name: name.clone(),
                        committed,
                        behind: next.saturating_sub(committed.max(meta.first_offset)),
                    })
                    .collect();
            }
            Err(problem) => row.errors.push(problem_text(&problem)),
        }
    }
    Ok(row)
}

/// A segment's header and frame scan.
fn segment_row(segment: &SegmentFile, meta: Option<&StreamMeta>) -> Result<SegmentRow> {
    let mut row = SegmentRow {
        file: segment.name.clone(),
        first_lsn: None,
        last_lsn: None,
        frames: 0,
        messages: 0,
        first_offset: None,
        end_offset: None,
        first_timestamp_ms: None,
        last_timestamp_ms: None,
        bytes_used: 0,
        file_bytes: segment.file_bytes,
        note: None,
    };
    let info = match &segment.info {
        Err(reason) => {
            row.note = Some(format!("bad header: {reason}"));
            return Ok(row);
        }
        Ok(info) => info,
    };
    row.first_lsn = Some(info.first_lsn);
    if let Some(meta) = meta.filter(|meta| meta.database_id != info.database_id) {
        row.note = Some(format!(
            "belongs to database {}, not the stream's {}",
            info.database_id, meta.database_id
        ));
        return Ok(row);
    }
    let scan = scan_segment(info)?;
    row.last_lsn = scan.last_lsn;
    row.frames = scan.frames;
    row.messages = scan.messages;
    row.first_offset = scan.first_offset;
    row.end_offset = scan.end_offset;
    row.first_timestamp_ms = scan.first_timestamp_ms;
    row.last_timestamp_ms = scan.last_timestamp_ms;
    row.bytes_used = scan.bytes_used;
    row.note = scan
        .stopped
        .map(|(offset, reason)| format!("scan stopped at offset {offset}: {reason}"));
    Ok(row)
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// A range `first..end`, or `-`.
fn range(first: Option<u64>, end: Option<u64>) -> String {
    match (first, end) {
        (Some(first), Some(end)) => format!("{first}..{end}"),
        (Some(first), None) => format!("{first}.."),
        _ => "-".to_owned(),
    }
}

fn write_text(out: &mut impl Write, report: &InspectReport) -> io::Result<()> {
    writeln!(out, "stream store: {}", report.dir)?;
    let lock = match report.lock {
        LockState::NoLockFile => "no LOCK file",
        LockState::Free => "not open in any process",
        LockState::Held => {
            "HELD: the store is open in another process (read anyway; files may change while \
             they are read)"
        }
        LockState::Unknown => "unknown (the LOCK file could not be probed)",
    };
    writeln!(out, "lock: {lock}")?;
    match (&report.database_id, &report.identity_error) {
        (Some(id), _) => writeln!(out, "database id: {id}")?,
        (None, Some(error)) => writeln!(out, "database id: unknown: {error}")?,
        (None, None) => {}
    }
    writeln!(out)?;
    writeln!(out, "streams: {}", report.streams.len())?;
    if !report.streams.is_empty() {
        let rows = report.streams.iter().map(|stream| {
            vec![
                stream.name.clone().unwrap_or_else(|| "-".to_owned()),
                stream.id.to_string(),
                stream.state.to_owned(),
                or_dash(stream.first_offset),
                or_dash(stream.next_offset),
                or_dash(stream.messages),
                stream.segments.len().to_string(),
                stream.bytes.to_string(),
                stream.groups.len().to_string(),
            ]
        });
        let headers = [
            "name", "id", "state", "first", "next", "messages", "segments", "bytes", "groups",
        ];
        writeln!(
            out,
            "{}",
            render(&table(headers, rows, &[1, 3, 4, 5, 6, 7, 8]), "")
        )?;
    }
    for stream in &report.streams {
        writeln!(out)?;
        write_stream(out, stream)?;
    }
    if !report.other_files.is_empty() {
        writeln!(out)?;
        writeln!(out, "other files: {}", report.other_files.len())?;
        for other in &report.other_files {
            writeln!(
                out,
                "  {}  {} bytes  {}",
                other.name, other.bytes, other.kind
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "totals: {} stream(s), {} bytes in stream directories",
        report.streams.len(),
        report.bytes
    )?;
    out.flush()
}

/// One stream's segments and groups.
fn write_stream(out: &mut impl Write, stream: &StreamRow) -> io::Result<()> {
    let name = stream.name.as_deref().unwrap_or("?");
    writeln!(out, "stream {name} (directory {}):", stream.dir)?;
    for error in &stream.errors {
        writeln!(out, "  error: {error}")?;
    }
    if stream.segments.is_empty() {
        writeln!(out, "  no segments")?;
    } else {
        let rows = stream.segments.iter().map(|segment| {
            vec![
                segment.file.clone(),
                range(
                    segment.first_lsn,
                    segment.last_lsn.map(|lsn| lsn.saturating_add(1)),
                ),
                range(segment.first_offset, segment.end_offset),
                segment.frames.to_string(),
                segment.messages.to_string(),
                segment
                    .first_timestamp_ms
                    .map_or_else(|| "-".to_owned(), format_unix_millis),
                format!("{} / {}", segment.bytes_used, segment.file_bytes),
                segment.note.clone().unwrap_or_default(),
            ]
        });
        let headers = [
            "segment",
            "lsns",
            "offsets",
            "frames",
            "messages",
            "first batch at",
            "used / file bytes",
            "note",
        ];
        writeln!(out, "{}", render(&table(headers, rows, &[3, 4, 6]), "  "))?;
    }
    if !stream.groups.is_empty() {
        let rows = stream.groups.iter().map(|group| {
            vec![
                group.name.clone(),
                group.committed.to_string(),
                group.behind.to_string(),
            ]
        });
        let headers = ["group", "committed", "behind"];
        writeln!(out, "{}", render(&table(headers, rows, &[1, 2]), "  "))?;
    }
    Ok(())
}

/// The lines of `table`, each after `indent` and without trailing spaces.
fn render(table: &comfy_table::Table, indent: &str) -> String {
    table
        .lines()
        .map(|line| format!("{indent}{}", line.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

//! `cairn inspect DIR`: a fast table of what a data directory holds.
//!
//! For each snapshot: the header (version, WAL LSN, entries, blocks, creation time) and
//! whether it checks; blocks are not read. For each WAL segment: the header, then a scan of
//! its frames (each frame's length, checksum and LSN, never its body) giving the last LSN, the
//! frame count and the bytes in use, and where and why the scan stopped. Then leftovers of
//! crashes and salvages, other files, and totals. `--json` prints the same as one document.
//!
//! Guarantees: reads only, one frame window at a time, so it is quick on large directories
//! and bounded in memory. It judges nothing: a scan that stops early is shown, and
//! `cairn verify` says whether that is a torn tail or damage. It fails (exit 2) only when the
//! directory cannot be listed; a file that cannot be read is shown with the error.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use cairn::format::{read_header, SnapshotError};
use cairn::StdFileSystem;
use cairn_log::format::{FRAME_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_LEN};
use cairn_log::fs::{read_exact_at, FileSystem as _, OpenMode};
use cairn_log::reader::{SegmentReader, StopKind};
use cairn_log::segment::{SegmentHeader, SegmentInfo};
use serde::Serialize;

use super::escape::format_unix_millis;
use super::layout::{saturating_sum, DataDir, LockState, OtherFile, SegmentFile, SnapshotFile};
use super::{print_document, Outcome};

/// One snapshot file as its header describes it.
#[derive(Debug, Serialize)]
struct SnapshotRow {
    file: String,
    /// The version in the file name.
    name_version: u64,
    /// From the header; `None` when it does not check.
    version: Option<u64>,
    wal_lsn: Option<u64>,
    entries: Option<u64>,
    blocks: Option<u64>,
    bytes: u64,
    created_unix_millis: Option<u64>,
    created: Option<String>,
    header_valid: bool,
    /// Why the header does not check, or why the file could not be read.
    error: Option<String>,
}

/// Where and why the frame scan of a segment stopped.
#[derive(Debug, Serialize)]
struct ScanStop {
    offset: u64,
    /// `end_of_file`, `zeros` (the clean end of a preallocated segment), `recycled_end` (the
    /// end of a recycled segment's own frames, where its previous content begins),
    /// `incomplete`, `invalid`, or `lsn_out_of_order`.
    kind: &'static str,
    reason: Option<String>,
}

/// One segment file: its header and what a frame scan found.
#[derive(Debug, Serialize)]
struct SegmentRow {
    file: String,
    /// The first LSN in the file name.
    name_lsn: u64,
    segment_number: Option<u64>,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    frames: u64,
    /// Bytes from the start of the file to the end of the last valid frame.
    bytes_used: u64,
    file_bytes: u64,
    /// The preallocated size the header states.
    segment_bytes: Option<u64>,
    header_valid: bool,
    error: Option<String>,
    stop: Option<ScanStop>,
}

/// Sums over the directory.
#[derive(Debug, Default, Serialize)]
struct Totals {
    snapshots: usize,
    snapshot_bytes: u64,
    segments: usize,
    frames: u64,
    segment_bytes_used: u64,
    segment_file_bytes: u64,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    leftovers: usize,
    leftover_bytes: u64,
    bytes: u64,
}

/// The whole `inspect` report (also the `--json` document).
#[derive(Debug, Serialize)]
struct InspectReport {
    dir: String,
    lock: LockState,
    snapshots: Vec<SnapshotRow>,
    segments: Vec<SegmentRow>,
    leftovers: Vec<OtherFile>,
    other_files: Vec<OtherFile>,
    totals: Totals,
}

/// Runs `cairn inspect` on `dir`, printing a table (or JSON) to stdout.
pub fn run(dir: &Path, json: bool) -> Result<Outcome> {
    let listing = DataDir::list(dir)?;
    if listing.is_foreign() {
        bail!(
            "{} holds no Cairn files (no snapshot, WAL segment or LOCK file)",
            dir.display()
        );
    }
    let snapshots: Vec<SnapshotRow> = listing.snapshots.iter().map(snapshot_row).collect();
    let segments: Vec<SegmentRow> = listing.segments.iter().map(segment_row).collect();
    let leftovers: Vec<OtherFile> = listing.leftovers().cloned().collect();
    let other_files: Vec<OtherFile> = listing
        .others
        .iter()
        .filter(|other| !other.kind.is_leftover())
        .cloned()
        .collect();
    let totals = totals(&listing, &segments);
    let report = InspectReport {
        dir: dir.display().to_string(),
        lock: listing.lock,
        snapshots,
        segments,
        leftovers,
        other_files,
        totals,
    };
    print_document(json, &report, write_text).context("cannot write to stdout")?;
    Ok(Outcome::Intact)
}

fn snapshot_row(file: &SnapshotFile) -> SnapshotRow {
    let mut row = SnapshotRow {
        file: file.name.clone(),
        name_version: file.name_version,
        version: None,
        wal_lsn: None,
        entries: None,
        blocks: None,
        bytes: file.file_bytes,
        created_unix_millis: None,
        created: None,
        header_valid: false,
        error: None,
    };
    match read_header(&StdFileSystem, &file.path) {
        Ok(header) => {
            row.version = Some(header.snapshot_version);
            row.wal_lsn = Some(header.wal_lsn);
            row.entries = Some(header.entry_count);
            row.blocks = Some(header.block_count);
            row.created_unix_millis = Some(header.created_unix_millis);
            row.created = Some(format_unix_millis(header.created_unix_millis));
            row.header_valid = true;
            if header.snapshot_version != file.name_version {
                row.error = Some(format!(
                    "the header says version {} but the file name {}",
                    header.snapshot_version, file.name_version
                ));
            }
        }
        Err(SnapshotError::Corrupted { offset, reason }) => {
            row.error = Some(format!("at byte offset {offset}: {reason}"));
        }
        Err(error) => row.error = Some(error.to_string()),
    }
    row
}

/// Reads a segment's header and scans its frames; what goes wrong (damage, a file that cannot
/// be read) is shown in the row.
fn segment_row(file: &SegmentFile) -> SegmentRow {
    let mut row = SegmentRow {
        file: file.name.clone(),
        name_lsn: file.name_lsn,
        segment_number: None,
        first_lsn: None,
        last_lsn: None,
        frames: 0,
        bytes_used: 0,
        file_bytes: file.file_bytes,
        segment_bytes: None,
        header_valid: false,
        error: None,
        stop: None,
    };
    let header = match read_segment_header(file) {
        Ok(header) => header,
        Err(reason) => {
            row.error = Some(reason);
            return row;
        }
    };
    row.segment_number = Some(header.segment_number);
    row.first_lsn = Some(header.first_lsn);
    row.segment_bytes = Some(header.segment_bytes);
    row.bytes_used = SEGMENT_HEADER_BYTES;
    if header.first_lsn != file.name_lsn {
        row.error = Some(format!(
            "the header names first LSN {} but the file name {}",
            header.first_lsn, file.name_lsn
        ));
        return row;
    }
    row.header_valid = true;
    let info = SegmentInfo {
        path: file.path.clone(),
        segment_number: header.segment_number,
        first_lsn: header.first_lsn,
        file_bytes: file.file_bytes,
        segment_bytes: header.segment_bytes,
        database_id: header.database_id,
        recycled: header.recycled,
    };
    let scanned = scan_frames(&info, &mut row);
    if let Err(error) = scanned {
        row.error = Some(format!("cannot read the file: {error}"));
    }
    row
}

/// Scans the frames of a segment whose header checked, filling `row`.
fn scan_frames(info: &SegmentInfo, row: &mut SegmentRow) -> Result<()> {
    let mut reader = SegmentReader::open(&StdFileSystem, info, FRAME_PAYLOAD_BYTES_MAX)?;
    let mut expected_lsn = info.first_lsn;
    while let Some((offset, frame)) = reader.next()? {
        if info.recycled && frame.lsn < info.first_lsn {
            row.stop = Some(ScanStop {
                offset,
                kind: "recycled_end",
                reason: None,
            });
            return Ok(());
        }
        if frame.lsn != expected_lsn {
            row.stop = Some(ScanStop {
                offset,
                kind: "lsn_out_of_order",
                reason: Some(format!(
                    "frame carries LSN {} where LSN {expected_lsn} was expected",
                    frame.lsn
                )),
            });
            return Ok(());
        }
        row.frames += 1;
        row.last_lsn = Some(frame.lsn);
        expected_lsn = expected_lsn.saturating_add(1);
        row.bytes_used = reader.position();
    }
    if let Some(stop) = reader.stop() {
        let (kind, reason) = match stop.kind {
            StopKind::EndOfFile => ("end_of_file", None),
            StopKind::Zeros => ("zeros", None),
            // The file's previous life follows a recycled segment's own frames.
            _ if info.recycled => ("recycled_end", None),
            StopKind::Incomplete => (
                "incomplete",
                Some("the file ends inside the frame its header announces".to_owned()),
            ),
            StopKind::Invalid { reason } => ("invalid", Some(reason.to_owned())),
        };
        row.stop = Some(ScanStop {
            offset: stop.offset,
            kind,
            reason,
        });
    }
    Ok(())
}

/// Reads and checks the header of a segment; the error says what is wrong.
fn read_segment_header(file: &SegmentFile) -> Result<SegmentHeader, String> {
    if file.file_bytes < SEGMENT_HEADER_BYTES {
        return Err("file shorter than a segment header".to_owned());
    }
    let handle = StdFileSystem
        .open(&file.path, OpenMode::Read)
        .map_err(|error| format!("cannot open the file: {error}"))?;
    let mut bytes = [0_u8; SEGMENT_HEADER_LEN];
    read_exact_at(handle.as_ref(), &mut bytes, 0)
        .map_err(|error| format!("cannot read the header: {error}"))?;
    SegmentHeader::decode(&bytes).map_err(str::to_owned)
}

fn totals(listing: &DataDir, segments: &[SegmentRow]) -> Totals {
    let leftover_bytes = saturating_sum(listing.leftovers().map(|other| other.bytes));
    let other_bytes = saturating_sum(listing.others.iter().map(|other| other.bytes));
    Totals {
        snapshots: listing.snapshots.len(),
        snapshot_bytes: listing.snapshot_bytes(),
        segments: segments.len(),
        frames: segments.iter().map(|segment| segment.frames).sum(),
        segment_bytes_used: saturating_sum(segments.iter().map(|segment| segment.bytes_used)),
        segment_file_bytes: listing.segment_bytes(),
        first_lsn: segments
            .iter()
            .filter(|segment| segment.frames > 0)
            .filter_map(|segment| segment.first_lsn)
            .min(),
        last_lsn: segments.iter().filter_map(|segment| segment.last_lsn).max(),
        leftovers: listing.leftovers().count(),
        leftover_bytes,
        bytes: listing.data_bytes().saturating_add(other_bytes),
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn write_text(out: &mut impl Write, report: &InspectReport) -> io::Result<()> {
    writeln!(out, "data directory: {}", report.dir)?;
    let lock = match report.lock {
        LockState::NoLockFile => "no LOCK file",
        LockState::Free => "not open in any process",
        LockState::Held => "OPEN in another process (files may change while they are read)",
        LockState::Unknown => "unknown (the LOCK file could not be probed)",
    };
    writeln!(out, "lock: {lock}")?;
    writeln!(out)?;
    write_snapshots(out, &report.snapshots)?;
    writeln!(out)?;
    write_segments(out, &report.segments)?;
    writeln!(out)?;
    write_others(out, &report.leftovers, &report.other_files)?;
    writeln!(out)?;

    let totals = &report.totals;
    let lsn_range = match (totals.first_lsn, totals.last_lsn) {
        (Some(first), Some(last)) => format!("LSN {first}..={last}"),
        _ => "no frames".to_owned(),
    };
    writeln!(
        out,
        "totals: {} snapshot(s), {} bytes; {} segment(s), {} frames ({lsn_range}), {} of {} \
         bytes used; {} leftover(s), {} bytes; {} bytes in all",
        totals.snapshots,
        totals.snapshot_bytes,
        totals.segments,
        totals.frames,
        totals.segment_bytes_used,
        totals.segment_file_bytes,
        totals.leftovers,
        totals.leftover_bytes,
        totals.bytes
    )?;
    out.flush()
}

fn write_snapshots(out: &mut impl Write, snapshots: &[SnapshotRow]) -> io::Result<()> {
    writeln!(out, "snapshots: {}", snapshots.len())?;
    if !snapshots.is_empty() {
        let rows: Vec<Vec<String>> = snapshots
            .iter()
            .map(|row| {
                vec![
                    row.file.clone(),
                    or_dash(row.version.or(Some(row.name_version))),
                    or_dash(row.wal_lsn),
                    or_dash(row.entries),
                    row.bytes.to_string(),
                    row.created.clone().unwrap_or_else(|| "-".to_owned()),
                    if row.header_valid { "ok" } else { "INVALID" }.to_owned(),
                    row.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        write_table(
            out,
            &[
                ("file", false),
                ("version", true),
                ("wal lsn", true),
                ("entries", true),
                ("bytes", true),
                ("created", false),
                ("header", false),
                ("note", false),
            ],
            &rows,
        )?;
    }
    Ok(())
}

fn write_segments(out: &mut impl Write, segments: &[SegmentRow]) -> io::Result<()> {
    writeln!(out, "WAL segments: {}", segments.len())?;
    if !segments.is_empty() {
        let rows: Vec<Vec<String>> = segments.iter().map(segment_cells).collect();
        write_table(
            out,
            &[
                ("file", false),
                ("number", true),
                ("first lsn", true),
                ("last lsn", true),
                ("frames", true),
                ("used / file bytes", true),
                ("header", false),
                ("scan ended", false),
            ],
            &rows,
        )?;
    }
    Ok(())
}

fn write_others(
    out: &mut impl Write,
    leftovers: &[OtherFile],
    other_files: &[OtherFile],
) -> io::Result<()> {
    writeln!(out, "leftovers: {}", leftovers.len())?;
    for leftover in leftovers {
        writeln!(
            out,
            "  {}  {} bytes  {}",
            leftover.name,
            leftover.bytes,
            leftover.kind.describe()
        )?;
    }
    if !other_files.is_empty() {
        writeln!(out, "other files: {}", other_files.len())?;
        for other in other_files {
            writeln!(
                out,
                "  {}  {} bytes  {}",
                other.name,
                other.bytes,
                other.kind.describe()
            )?;
        }
    }
    Ok(())
}

fn segment_cells(row: &SegmentRow) -> Vec<String> {
    let header = if row.header_valid { "ok" } else { "INVALID" };
    let ended = match (&row.error, &row.stop) {
        (Some(error), _) => error.clone(),
        (None, Some(stop)) => match (&stop.reason, stop.kind) {
            (None, "zeros") => format!("clean (zeros from {})", stop.offset),
            (None, "recycled_end") => {
                format!("clean (recycled; earlier content from {})", stop.offset)
            }
            (None, _) => format!("clean (end of file at {})", stop.offset),
            (Some(reason), _) => format!("at offset {}: {reason}", stop.offset),
        },
        (None, None) => "-".to_owned(),
    };
    vec![
        row.file.clone(),
        or_dash(row.segment_number),
        or_dash(row.first_lsn.or(Some(row.name_lsn))),
        or_dash(row.last_lsn),
        row.frames.to_string(),
        format!("{} / {}", row.bytes_used, row.file_bytes),
        header.to_owned(),
        ended,
    ]
}

/// Writes `rows` under `columns` (name, right-aligned?), indented, columns padded to fit.
fn write_table(
    out: &mut impl Write,
    columns: &[(&str, bool)],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let mut widths: Vec<usize> = columns
        .iter()
        .map(|(name, _)| name.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|(name, _)| (*name).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(" ");
        for ((cell, width), (_, right)) in row.iter().zip(&widths).zip(columns) {
            // Writing to a String cannot fail.
            let _ = if *right {
                write!(line, " {cell:>width$} ")
            } else {
                write!(line, " {cell:<width$} ")
            };
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_left_or_right() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a.wal".to_owned(), "7".to_owned()],
            vec!["longer.wal".to_owned(), "1234".to_owned()],
        ];
        write_table(&mut out, &[("file", false), ("frames", true)], &rows).expect("to a Vec");
        assert_eq!(
            String::from_utf8(out).expect("ASCII"),
            "  file        frames\n  a.wal            7\n  longer.wal    1234\n"
        );
    }

    #[test]
    fn a_segment_row_says_where_its_scan_ended() {
        let mut row = SegmentRow {
            file: "00000000000000000001.wal".to_owned(),
            name_lsn: 1,
            segment_number: Some(1),
            first_lsn: Some(1),
            last_lsn: Some(9),
            frames: 9,
            bytes_used: 900,
            file_bytes: 4096,
            segment_bytes: Some(4096),
            header_valid: true,
            error: None,
            stop: Some(ScanStop {
                offset: 900,
                kind: "zeros",
                reason: None,
            }),
        };
        let cells = segment_cells(&row);
        assert_eq!(cells[5], "900 / 4096");
        assert_eq!(cells[7], "clean (zeros from 900)");
        row.stop = Some(ScanStop {
            offset: 900,
            kind: "invalid",
            reason: Some("frame checksum mismatch".to_owned()),
        });
        assert_eq!(
            segment_cells(&row)[7],
            "at offset 900: frame checksum mismatch"
        );
    }
}

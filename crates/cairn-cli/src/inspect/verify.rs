//! `cairn verify DIR`: a full, read-only integrity check of a data directory.
//!
//! The check is `cairn::verify`, which applies recovery's own rules (the identity and
//! foreign-file check, the choice of snapshot, the WAL classification of `Log::open`, the
//! check each record must pass before replay, the "nothing lost" rule) without changing
//! anything; this module only formats its report, as text or `--json`.
//!
//! Verdict and exit code: 0 when nothing is damaged. A torn tail of the last segment is
//! intact: recovery truncates it and it was never acknowledged; it is reported all the same.
//! 1 when anything is damaged: the report names each file and byte offset and says whether
//! `Db::open` would succeed in `RecoveryMode::Strict` (for example by falling back to an older
//! snapshot) or only in `RecoveryMode::Salvage`, or in neither (a file of another database,
//! shown as FOREIGN, or a record that passes its checksum but cannot be applied). 2 when the
//! check could not run (missing directory, no permission, an I/O error); that is an `Err` here.
//!
//! A directory holding a stream store (a `STREAMS` file, or a stream directory with a `STREAM`
//! file) is verified as one instead: see [`crate::streams::verify`].
//!
//! A progress bar over the bytes to read is drawn on stderr, only when stderr is a terminal
//! and the directory holds at least [`PROGRESS_BAR_BYTES_MIN`].

use std::io::{self, IsTerminal as _, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use cairn::IntegrityReport;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::layout::{DataDir, LockState, OtherFile};
use super::{print_document, Outcome};

/// Directories smaller than this (64 MiB) are verified without a progress bar: they take
/// well under a second, and a bar that flashes by is noise.
pub const PROGRESS_BAR_BYTES_MIN: u64 = 64 << 20;

/// How the progress bar looks: bytes read of bytes to read, and the file being read.
const PROGRESS_TEMPLATE: &str = "verifying [{bar:30}] {bytes}/{total_bytes} {wide_msg}";

/// One snapshot file as verification saw it.
#[derive(Debug, Serialize)]
struct SnapshotCheck {
    file: String,
    name_version: u64,
    version: Option<u64>,
    wal_lsn: Option<u64>,
    entries: Option<u64>,
    bytes: u64,
    valid: bool,
    /// It belongs to another database.
    foreign: bool,
}

/// One piece of damage.
#[derive(Clone, Debug, Serialize)]
struct Damage {
    /// `identity`, `foreign`, `snapshot`, `wal` (a frame, a segment header, LSN continuity),
    /// `record` (a frame that passes its checksum but whose content is wrong) or `lost`.
    kind: &'static str,
    file: String,
    offset: u64,
    /// The record's LSN, for `record` damage.
    lsn: Option<u64>,
    reason: String,
}

/// The torn tail of the last segment.
#[derive(Debug, Serialize)]
struct TornTailReport {
    file: String,
    offset: u64,
    bytes_dropped: u64,
}

/// What the WAL holds.
#[derive(Debug, Default, Serialize)]
struct WalCheck {
    /// Segment files read (up to the damage, if any).
    segments: usize,
    /// Segment files after the damage, not read.
    segments_unchecked: Vec<String>,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    /// Valid frames, each one commit record.
    records: u64,
    /// Records with an LSN above the snapshot's: what recovery replays.
    records_after_snapshot: u64,
    /// Records whose body decoded.
    records_decoded: u64,
    puts: u64,
    deletes: u64,
    bytes_read: u64,
    torn_tail: Option<TornTailReport>,
}

/// Whether `Db::open` would succeed, per recovery mode.
#[derive(Debug, Serialize)]
struct OpenVerdict {
    strict: bool,
    salvage: bool,
    explanation: String,
}

/// The whole `verify` report (also the `--json` document).
#[derive(Debug, Serialize)]
struct VerifyReport {
    dir: String,
    status: &'static str,
    exit_code: u8,
    lock: LockState,
    /// The database id from the identity file, as 32 hex digits.
    database_id: Option<String>,
    snapshots: Vec<SnapshotCheck>,
    /// The snapshot recovery would load (the newest valid one).
    snapshot_used: Option<String>,
    /// WAL records at or below this LSN are covered by that snapshot.
    replay_after_lsn: u64,
    wal: WalCheck,
    /// Files that belong to another database.
    foreign: Vec<String>,
    damage: Vec<Damage>,
    /// Damaged records counted beyond the ones listed.
    damaged_records_not_listed: u64,
    would_open: OpenVerdict,
    leftovers: Vec<OtherFile>,
    notes: Vec<String>,
}

/// Runs `cairn verify` on `dir`, printing a summary (or JSON) to stdout.
pub fn run(dir: &Path, json: bool) -> Result<Outcome> {
    if crate::streams::is_stream_store(dir) {
        return crate::streams::verify::run(dir, json);
    }
    let listing = DataDir::list(dir)?;
    if listing.is_foreign() {
        bail!(
            "{} holds no Cairn files (no snapshot, WAL segment or LOCK file)",
            dir.display()
        );
    }
    let progress = progress_bar(listing.data_bytes())?;
    let mut notes = Vec::new();
    if listing.lock == LockState::Held {
        notes.push(
            "the database is open in another process: its files may change while they are \
             read, so damage at the end of the WAL may be a write in progress"
                .to_owned(),
        );
    }
    let mut shown: Option<std::path::PathBuf> = None;
    let checked = cairn::verify_with_progress(dir, &mut |file, bytes| {
        if shown.as_deref() != Some(file) {
            progress.set_message(file_name(file));
            shown = Some(file.to_path_buf());
        }
        progress.inc(bytes);
    })
    .with_context(|| format!("cannot verify {}", dir.display()))?;
    progress.finish_and_clear();

    let outcome = if checked.is_intact() {
        Outcome::Intact
    } else {
        Outcome::Damaged
    };
    let report = VerifyReport {
        dir: dir.display().to_string(),
        status: match outcome {
            Outcome::Intact => "intact",
            Outcome::Damaged => "damaged",
        },
        exit_code: outcome.exit_code(),
        lock: listing.lock,
        database_id: checked.database_id.map(|id| id.to_string()),
        snapshots: checked.snapshots.iter().map(snapshot_check).collect(),
        snapshot_used: checked.snapshot_used.as_deref().map(file_name),
        replay_after_lsn: checked.replay_after_lsn,
        wal: wal_check(&checked),
        foreign: checked.foreign_files().map(file_name).collect(),
        damage: checked
            .damage
            .iter()
            .map(|found| Damage {
                kind: found.kind.name(),
                file: file_name(&found.file),
                offset: found.offset,
                lsn: found.lsn,
                reason: found.reason.clone(),
            })
            .collect(),
        damaged_records_not_listed: checked.damaged_records_not_listed,
        would_open: OpenVerdict {
            strict: checked.would_open.strict,
            salvage: checked.would_open.salvage,
            explanation: checked.would_open.explanation.clone(),
        },
        leftovers: listing.leftovers().cloned().collect(),
        notes,
    };
    print_document(json, &report, write_text).context("cannot write to stdout")?;
    Ok(outcome)
}

fn snapshot_check(check: &cairn::SnapshotCheck) -> SnapshotCheck {
    SnapshotCheck {
        file: file_name(&check.file),
        name_version: check.name_version,
        version: check.header.map(|header| header.snapshot_version),
        wal_lsn: check.header.map(|header| header.wal_lsn),
        entries: check.header.map(|header| header.entry_count),
        bytes: check.bytes,
        valid: check.valid,
        foreign: check.foreign,
    }
}

fn wal_check(checked: &IntegrityReport) -> WalCheck {
    let wal = &checked.wal;
    WalCheck {
        segments: wal.segments.len(),
        segments_unchecked: wal
            .segments_unchecked
            .iter()
            .map(|path| file_name(path))
            .collect(),
        first_lsn: checked.records.first_lsn,
        last_lsn: wal.last_lsn,
        records: wal.frames,
        records_after_snapshot: wal.frames_after_lsn,
        records_decoded: checked.records.decoded,
        puts: checked.records.puts,
        deletes: checked.records.deletes,
        bytes_read: wal.bytes_read,
        torn_tail: wal.torn_tail.as_ref().map(|torn| TornTailReport {
            file: file_name(&torn.file),
            offset: torn.offset,
            bytes_dropped: torn.bytes_dropped,
        }),
    }
}

/// The progress bar: drawn only on a terminal and for directories of at least
/// [`PROGRESS_BAR_BYTES_MIN`].
fn progress_bar(total_bytes: u64) -> Result<ProgressBar> {
    if total_bytes < PROGRESS_BAR_BYTES_MIN || !io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(PROGRESS_TEMPLATE)
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    Ok(bar)
}

/// The last component of `path`, for reports.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The snapshot lines of the text report.
fn write_snapshots(out: &mut impl Write, report: &VerifyReport) -> io::Result<()> {
    writeln!(out, "snapshots: {} checked", report.snapshots.len())?;
    for snapshot in &report.snapshots {
        if snapshot.valid {
            writeln!(
                out,
                "  {}  ok: version {}, {} entries, {} bytes{}",
                snapshot.file,
                snapshot.version.unwrap_or(snapshot.name_version),
                snapshot.entries.unwrap_or(0),
                snapshot.bytes,
                if report.snapshot_used.as_deref() == Some(snapshot.file.as_str()) {
                    " (recovery loads this one)"
                } else {
                    ""
                }
            )?;
        } else {
            writeln!(
                out,
                "  {}  {}",
                snapshot.file,
                if snapshot.foreign {
                    "FOREIGN (belongs to another database)"
                } else {
                    "DAMAGED"
                }
            )?;
        }
    }
    Ok(())
}

fn write_text(out: &mut impl Write, report: &VerifyReport) -> io::Result<()> {
    writeln!(out, "data directory: {}", report.dir)?;
    if let Some(id) = &report.database_id {
        writeln!(out, "database id: {id}")?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    write_snapshots(out, report)?;
    let wal = &report.wal;
    let range = match (wal.first_lsn, wal.last_lsn) {
        (Some(first), Some(last)) => format!("LSN {first}..={last}"),
        _ => "no records".to_owned(),
    };
    writeln!(
        out,
        "WAL: {} segment(s), {range}: {} records ({} after LSN {}, which recovery replays), \
         {} decoded: {} puts, {} deletes; {} bytes read",
        wal.segments,
        wal.records,
        wal.records_after_snapshot,
        report.replay_after_lsn,
        wal.records_decoded,
        wal.puts,
        wal.deletes,
        wal.bytes_read
    )?;
    if let Some(torn) = &wal.torn_tail {
        writeln!(
            out,
            "torn tail: {} at byte offset {}: {} bytes of an unfinished write (never \
             acknowledged; recovery truncates it)",
            torn.file, torn.offset, torn.bytes_dropped
        )?;
    }
    for leftover in &report.leftovers {
        writeln!(
            out,
            "leftover: {} ({} bytes): {}",
            leftover.name,
            leftover.bytes,
            leftover.kind.describe()
        )?;
    }
    if !report.damage.is_empty() {
        writeln!(out, "damage:")?;
        for found in &report.damage {
            let lsn = found
                .lsn
                .map_or_else(String::new, |lsn| format!(" (record LSN {lsn})"));
            if found.kind == "foreign" {
                writeln!(out, "  {}: FOREIGN: {}", found.file, found.reason)?;
            } else {
                writeln!(
                    out,
                    "  {} at byte offset {}{lsn}: {}",
                    found.file, found.offset, found.reason
                )?;
            }
        }
        if report.damaged_records_not_listed > 0 {
            writeln!(
                out,
                "  ... and {} more damaged records",
                report.damaged_records_not_listed
            )?;
        }
        if !wal.segments_unchecked.is_empty() {
            writeln!(
                out,
                "  not read (they follow the damage): {}",
                wal.segments_unchecked.join(", ")
            )?;
        }
    }
    writeln!(out, "open: {}", report.would_open.explanation)?;
    if report.status == "intact" {
        writeln!(out, "result: INTACT")?;
    } else if report.foreign.is_empty() {
        writeln!(out, "result: DAMAGED")?;
    } else {
        writeln!(
            out,
            "result: DAMAGED/FOREIGN: {} belong(s) to another database",
            report.foreign.join(", ")
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn::DamageKind;

    #[test]
    fn the_progress_template_parses_and_small_directories_get_no_bar() {
        assert!(ProgressStyle::with_template(PROGRESS_TEMPLATE).is_ok());
        let bar = progress_bar(PROGRESS_BAR_BYTES_MIN - 1).expect("a hidden bar");
        assert!(bar.is_hidden());
    }

    #[test]
    fn every_damage_kind_has_a_distinct_name() {
        let kinds = [
            DamageKind::Identity,
            DamageKind::Foreign,
            DamageKind::Snapshot,
            DamageKind::Wal,
            DamageKind::Record,
            DamageKind::Lost,
        ];
        let mut names: Vec<&str> = kinds.iter().map(|kind| kind.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), kinds.len());
    }
}

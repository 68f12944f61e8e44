//! `cairn verify DIR`: a full, read-only integrity check of a data directory.
//!
//! Steps: every snapshot file is decoded and verified end to end (header, every block
//! checksum, key order, counts, footer); the newest one that verifies is the one recovery
//! would load. The WAL is then classified by `cairn_log::reader::verify_dir` with that
//! snapshot's LSN, which checks every frame's checksum and the LSN continuity of every segment
//! (older frames too) exactly as `Db::open` would; finally every frame it kept is read again
//! and its commit body decoded, with its record type and `version == lsn` checked.
//!
//! Verdict and exit code: 0 when nothing is damaged. A torn tail of the last segment is
//! intact: recovery truncates it and it was never acknowledged; it is reported all the same.
//! 1 when anything is damaged: the report names each file and byte offset and says whether
//! `Db::open` would succeed in `RecoveryMode::Strict` (for example by falling back to an older
//! snapshot) or only in `RecoveryMode::Salvage`, or in neither (a record that passes its
//! checksum but cannot be applied). 2 when the check could not run (missing directory, no
//! permission, an I/O error); that is an `Err` here.
//!
//! A progress bar over the bytes to read is drawn on stderr, only when stderr is a terminal
//! and the directory holds at least [`PROGRESS_BAR_BYTES_MIN`]. Memory is bounded by one
//! snapshot block and one frame window; at most [`DAMAGED_RECORDS_LISTED_MAX`] damaged
//! records are listed (all are counted).

use std::io::{self, IsTerminal as _, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use cairn::durable::record::decode_commit_body;
use cairn::durable::snapshot_file::{read_snapshot, SnapshotEntry, SnapshotError};
use cairn::StdFileSystem;
use cairn_log::format::FRAME_PAYLOAD_BYTES_MAX;
use cairn_log::reader::{verify_dir, SegmentReader, VerifiedSegment};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::layout::{saturating_sum, DataDir, LockState, OtherFile, SnapshotFile};
use super::{ignore_closed_stdout, write_json, Outcome, COMMIT_RECORD_TYPE};

/// Directories smaller than this (64 MiB) are verified without a progress bar: they take
/// well under a second, and a bar that flashes by is noise.
pub const PROGRESS_BAR_BYTES_MIN: u64 = 64 << 20;

/// Damaged WAL records listed one by one; more are counted, not listed, so that a badly
/// damaged WAL cannot make the report (or its memory) grow without bound.
pub const DAMAGED_RECORDS_LISTED_MAX: usize = 16;

/// How the progress bar looks: bytes read of bytes to read, and the file being read.
const PROGRESS_TEMPLATE: &str = "verifying [{bar:30}] {bytes}/{total_bytes} {wide_msg}";

/// Bytes an entry occupies in a snapshot besides its key and value (for progress only).
const SNAPSHOT_ENTRY_HEADER_BYTES: u64 = 24;

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
}

/// One piece of damage.
#[derive(Clone, Debug, Serialize)]
struct Damage {
    /// `snapshot`, `wal` (a frame, a segment header, LSN continuity) or `record` (a frame
    /// that passes its checksum but whose content is wrong).
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
    snapshots: Vec<SnapshotCheck>,
    /// The snapshot recovery would load (the newest valid one).
    snapshot_used: Option<String>,
    /// WAL records at or below this LSN are covered by that snapshot.
    replay_after_lsn: u64,
    wal: WalCheck,
    damage: Vec<Damage>,
    /// Damaged records counted beyond the ones listed.
    damaged_records_not_listed: u64,
    would_open: OpenVerdict,
    leftovers: Vec<OtherFile>,
    notes: Vec<String>,
}

/// Runs `cairn verify` on `dir`, printing a summary (or JSON) to stdout.
pub fn run(dir: &Path, json: bool) -> Result<Outcome> {
    let listing = DataDir::list(dir)?;
    if listing.is_foreign() {
        bail!(
            "{} holds no Cairn files (no snapshot, WAL segment or LOCK file)",
            dir.display()
        );
    }
    let progress = progress_bar(listing.data_bytes())?;
    let mut damage = Vec::new();
    let mut notes = Vec::new();
    if listing.lock == LockState::Held {
        notes.push(
            "the database is open in another process: its files may change while they are \
             read, so damage at the end of the WAL may be a write in progress"
                .to_owned(),
        );
    }

    // Snapshots, newest first: the first one that verifies is the one recovery loads.
    let mut snapshots = Vec::with_capacity(listing.snapshots.len());
    let mut snapshot_used: Option<(String, u64)> = None;
    for file in listing.snapshots.iter().rev() {
        let check = check_snapshot(file, &progress, &mut damage)?;
        if check.valid && snapshot_used.is_none() {
            snapshot_used = Some((
                check.file.clone(),
                check.version.unwrap_or(file.name_version),
            ));
        }
        snapshots.push(check);
    }
    snapshots.reverse();
    let replay_after_lsn = snapshot_used.as_ref().map_or(0, |(_, version)| *version);

    // The WAL: classified exactly as recovery would, then every kept record decoded.
    progress.set_position(listing.snapshot_bytes());
    let (classified, wal, records) = check_wal(dir, replay_after_lsn, &progress, &mut damage)?;
    progress.finish_and_clear();

    let would_open = verdict(
        &snapshots,
        snapshot_used.as_ref(),
        &wal,
        &damage,
        &records,
        &classified,
    );
    let leftovers: Vec<OtherFile> = listing.leftovers().cloned().collect();
    let outcome = if damage.is_empty() && records.not_listed == 0 {
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
        snapshots,
        snapshot_used: snapshot_used.map(|(file, _)| file),
        replay_after_lsn,
        wal,
        damage,
        damaged_records_not_listed: records.not_listed,
        would_open,
        leftovers,
        notes,
    };
    let mut out = io::stdout().lock();
    ignore_closed_stdout(if json {
        write_json(&mut out, &report)
    } else {
        write_text(&mut out, &report)
    })
    .context("cannot write to stdout")?;
    Ok(outcome)
}

/// Classifies the WAL as recovery would with `replay_after_lsn`, then decodes every record
/// the classification kept. WAL damage goes to `damage`, damaged records to the tally.
fn check_wal(
    dir: &Path,
    replay_after_lsn: u64,
    progress: &ProgressBar,
    damage: &mut Vec<Damage>,
) -> Result<(cairn_log::reader::VerifyReport, WalCheck, RecordTally)> {
    let start = progress.position();
    let classify_bar = progress.clone();
    let classified = verify_dir(
        &StdFileSystem,
        dir,
        replay_after_lsn,
        None,
        &mut |done, _total| {
            classify_bar.set_position(start.saturating_add(done));
        },
    )
    .with_context(|| format!("cannot read the WAL in {}", dir.display()))?;
    let mut wal = WalCheck {
        segments: classified.segments.len(),
        segments_unchecked: classified
            .segments_unchecked
            .iter()
            .map(|path| file_name(path))
            .collect(),
        last_lsn: classified.last_lsn,
        records: classified.frames,
        records_after_snapshot: classified.frames_after_lsn,
        bytes_read: classified.bytes_read,
        torn_tail: classified.torn_tail.as_ref().map(|torn| TornTailReport {
            file: file_name(&torn.file),
            offset: torn.offset,
            bytes_dropped: torn.bytes_dropped,
        }),
        ..WalCheck::default()
    };
    if let Some(corruption) = &classified.corruption {
        damage.push(Damage {
            kind: "wal",
            file: file_name(&corruption.file),
            offset: corruption.offset,
            lsn: None,
            reason: corruption.reason.clone(),
        });
    }
    progress.inc_length(saturating_sum(
        classified.segments.iter().map(|segment| segment.frames_end),
    ));
    let mut records = RecordTally::default();
    for segment in &classified.segments {
        decode_segment(segment, replay_after_lsn, progress, &mut wal, &mut records)?;
    }
    damage.extend(records.listed.iter().cloned());
    Ok((classified, wal, records))
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

/// Decodes and verifies one snapshot file end to end. Damage goes to `damage`; an I/O
/// error is an `Err` (the check could not run).
fn check_snapshot(
    file: &SnapshotFile,
    progress: &ProgressBar,
    damage: &mut Vec<Damage>,
) -> Result<SnapshotCheck> {
    progress.set_message(file.name.clone());
    let start = progress.position();
    let mut visit = |entry: SnapshotEntry<'_>| {
        let entry_bytes = u64::try_from(entry.key.len() + entry.value.len()).unwrap_or(u64::MAX);
        progress.inc(entry_bytes.saturating_add(SNAPSHOT_ENTRY_HEADER_BYTES));
        Ok(())
    };
    let result = read_snapshot(&StdFileSystem, &file.path, &mut visit);
    progress.set_position(start.saturating_add(file.file_bytes));
    let mut check = SnapshotCheck {
        file: file.name.clone(),
        name_version: file.name_version,
        version: None,
        wal_lsn: None,
        entries: None,
        bytes: file.file_bytes,
        valid: false,
    };
    let problem = match result {
        Ok(header) => {
            check.version = Some(header.snapshot_version);
            check.wal_lsn = Some(header.wal_lsn);
            check.entries = Some(header.entry_count);
            if header.snapshot_version != file.name_version {
                Some((
                    0,
                    format!(
                        "the header says version {} but the file name {}",
                        header.snapshot_version, file.name_version
                    ),
                ))
            } else if header.wal_lsn != header.snapshot_version {
                Some((
                    0,
                    format!(
                        "the header's WAL LSN {} differs from its version {} (the engine \
                         writes them equal)",
                        header.wal_lsn, header.snapshot_version
                    ),
                ))
            } else {
                None
            }
        }
        Err(SnapshotError::Corrupted { offset, reason }) => Some((offset, reason)),
        Err(SnapshotError::Rejected(reason)) => Some((0, reason)),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", file.path.display()))
        }
    };
    match problem {
        None => check.valid = true,
        Some((offset, reason)) => damage.push(Damage {
            kind: "snapshot",
            file: file.name.clone(),
            offset,
            lsn: None,
            reason,
        }),
    }
    Ok(check)
}

/// Damaged records found while decoding.
#[derive(Debug, Default)]
struct RecordTally {
    /// The first [`DAMAGED_RECORDS_LISTED_MAX`].
    listed: Vec<Damage>,
    /// Counted beyond those.
    not_listed: u64,
    /// Damaged records with an LSN above the snapshot's: recovery would try to apply them.
    blocking_replay: u64,
    /// The first of those, for the explanation.
    first_blocking: Option<Damage>,
}

/// Reads the `segment.frames` valid frames of a segment again and decodes each body.
fn decode_segment(
    segment: &VerifiedSegment,
    replay_after_lsn: u64,
    progress: &ProgressBar,
    wal: &mut WalCheck,
    records: &mut RecordTally,
) -> Result<()> {
    let path = &segment.info.path;
    progress.set_message(file_name(path));
    let mut reader = SegmentReader::open(&StdFileSystem, &segment.info, FRAME_PAYLOAD_BYTES_MAX)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut counted_bytes = 0;
    for _ in 0..segment.frames {
        let Some((offset, frame)) = reader
            .next()
            .with_context(|| format!("cannot read {}", path.display()))?
        else {
            bail!(
                "{} changed while it was being verified (a frame that checked is gone); \
                 is the database open?",
                path.display()
            );
        };
        if wal.first_lsn.is_none() {
            wal.first_lsn = Some(frame.lsn);
        }
        match check_record(frame.record_type, frame.lsn, frame.version, frame.body) {
            Ok(counts) => {
                wal.records_decoded += 1;
                wal.puts += counts.puts;
                wal.deletes += counts.deletes;
            }
            Err(reason) => {
                let found = Damage {
                    kind: "record",
                    file: file_name(path),
                    offset,
                    lsn: Some(frame.lsn),
                    reason,
                };
                if frame.lsn > replay_after_lsn {
                    records.blocking_replay += 1;
                    if records.first_blocking.is_none() {
                        records.first_blocking = Some(found.clone());
                    }
                }
                if records.listed.len() < DAMAGED_RECORDS_LISTED_MAX {
                    records.listed.push(found);
                } else {
                    records.not_listed += 1;
                }
            }
        }
        let position = reader.position();
        progress.inc(position.saturating_sub(counted_bytes));
        counted_bytes = position;
    }
    progress.inc(segment.frames_end.saturating_sub(counted_bytes));
    Ok(())
}

/// Mutations in one commit record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RecordCounts {
    puts: u64,
    deletes: u64,
}

/// Checks one frame's content the way recovery would before applying it.
fn check_record(
    record_type: u8,
    lsn: u64,
    version: u64,
    body: &[u8],
) -> Result<RecordCounts, String> {
    if record_type != COMMIT_RECORD_TYPE {
        return Err(format!(
            "record type {record_type} is not a commit (type {COMMIT_RECORD_TYPE})"
        ));
    }
    if version != lsn {
        return Err(format!(
            "record at LSN {lsn} claims version {version}; they must be equal"
        ));
    }
    let writes = decode_commit_body(body).map_err(|reason| format!("commit body: {reason}"))?;
    let mut counts = RecordCounts::default();
    for (_, write) in &writes {
        if write.is_some() {
            counts.puts += 1;
        } else {
            counts.deletes += 1;
        }
    }
    Ok(counts)
}

/// Says whether `Db::open` would succeed in each recovery mode, and why.
fn verdict(
    snapshots: &[SnapshotCheck],
    snapshot_used: Option<&(String, u64)>,
    wal: &WalCheck,
    damage: &[Damage],
    records: &RecordTally,
    classified: &cairn_log::reader::VerifyReport,
) -> OpenVerdict {
    if let Some(blocking) = &records.first_blocking {
        return OpenVerdict {
            strict: false,
            salvage: false,
            explanation: format!(
                "no recovery mode would open it: the record at LSN {} in {} (byte offset {}) \
                 passes its checksum but cannot be applied ({}); restore from a backup",
                blocking.lsn.unwrap_or(0),
                blocking.file,
                blocking.offset,
                blocking.reason
            ),
        };
    }
    if let Some(corruption) = &classified.corruption {
        let kept = wal.last_lsn.map_or_else(
            || "no WAL record".to_owned(),
            |lsn| format!("the WAL up to LSN {lsn}"),
        );
        return OpenVerdict {
            strict: false,
            salvage: true,
            explanation: format!(
                "RecoveryMode::Strict would fail with Error::Corrupted at {} byte offset {}; \
                 RecoveryMode::Salvage would open it, keeping {kept} and setting aside {} from \
                 byte offset {} and the {} segment file(s) after it",
                file_name(&corruption.file),
                corruption.offset,
                file_name(&corruption.file),
                corruption.offset,
                wal.segments_unchecked.len()
            ),
        };
    }
    let newest_rejected = snapshots.last().is_some_and(|newest| !newest.valid);
    let explanation = match (damage.is_empty(), newest_rejected, snapshot_used) {
        (true, _, _) => "Db::open would succeed in either recovery mode".to_owned(),
        (false, true, Some((file, _))) => format!(
            "Db::open would still succeed in either recovery mode: it rejects the damaged \
             newest snapshot and falls back to {file} plus the WAL"
        ),
        (false, true, None) => "Db::open would still succeed in either recovery mode: it \
                                rejects the damaged snapshot(s) and replays the whole WAL"
            .to_owned(),
        (false, false, _) => "Db::open would still succeed in either recovery mode: the damage \
                              lies in data it does not read (an older snapshot, or WAL records \
                              the snapshot already covers)"
            .to_owned(),
    };
    OpenVerdict {
        strict: true,
        salvage: true,
        explanation,
    }
}

/// The last component of `path`, for reports.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn write_text(out: &mut impl Write, report: &VerifyReport) -> io::Result<()> {
    writeln!(out, "data directory: {}", report.dir)?;
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
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
            writeln!(out, "  {}  DAMAGED", snapshot.file)?;
        }
    }
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
            writeln!(
                out,
                "  {} at byte offset {}{lsn}: {}",
                found.file, found.offset, found.reason
            )?;
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
    writeln!(
        out,
        "result: {}",
        if report.status == "intact" {
            "INTACT"
        } else {
            "DAMAGED"
        }
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_body(writes: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
        let mut body = u32::try_from(writes.len())
            .expect("few")
            .to_le_bytes()
            .to_vec();
        for (key, value) in writes {
            body.push(if value.is_some() { 1 } else { 2 });
            body.extend_from_slice(&u32::try_from(key.len()).expect("short").to_le_bytes());
            body.extend_from_slice(key);
            if let Some(value) = value {
                body.extend_from_slice(&u64::MAX.to_le_bytes());
                body.extend_from_slice(&u32::try_from(value.len()).expect("short").to_le_bytes());
                body.extend_from_slice(value);
            }
        }
        body
    }

    fn snapshot(name_version: u64, valid: bool) -> SnapshotCheck {
        SnapshotCheck {
            file: format!("snapshot-{name_version:020}.snap"),
            name_version,
            version: valid.then_some(name_version),
            wal_lsn: valid.then_some(name_version),
            entries: valid.then_some(3),
            bytes: 200,
            valid,
        }
    }

    fn damage(kind: &'static str, file: &str, lsn: Option<u64>) -> Damage {
        Damage {
            kind,
            file: file.to_owned(),
            offset: 70,
            lsn,
            reason: "bad".to_owned(),
        }
    }

    #[test]
    fn an_intact_directory_opens_in_either_mode() {
        let snapshots = [snapshot(5, true)];
        let used = ("snapshot-00000000000000000005.snap".to_owned(), 5);
        let verdict = verdict(
            &snapshots,
            Some(&used),
            &WalCheck::default(),
            &[],
            &RecordTally::default(),
            &cairn_log::reader::VerifyReport::default(),
        );
        assert!(verdict.strict && verdict.salvage);
        assert_eq!(
            verdict.explanation,
            "Db::open would succeed in either recovery mode"
        );
    }

    #[test]
    fn a_damaged_newest_snapshot_falls_back_to_the_older_one() {
        let snapshots = [snapshot(5, true), snapshot(9, false)];
        let used = ("snapshot-00000000000000000005.snap".to_owned(), 5);
        let found = [damage(
            "snapshot",
            "snapshot-00000000000000000009.snap",
            None,
        )];
        let verdict = verdict(
            &snapshots,
            Some(&used),
            &WalCheck::default(),
            &found,
            &RecordTally::default(),
            &cairn_log::reader::VerifyReport::default(),
        );
        assert!(verdict.strict && verdict.salvage);
        assert!(
            verdict
                .explanation
                .contains("falls back to snapshot-00000000000000000005.snap"),
            "{}",
            verdict.explanation
        );
    }

    #[test]
    fn wal_corruption_opens_only_with_salvage() {
        let classified = cairn_log::reader::VerifyReport {
            corruption: Some(cairn_log::reader::Corruption {
                file: "dir/00000000000000000027.wal".into(),
                offset: 972,
                reason: "frame checksum mismatch".to_owned(),
            }),
            ..cairn_log::reader::VerifyReport::default()
        };
        let wal = WalCheck {
            last_lsn: Some(32),
            segments_unchecked: vec!["00000000000000000053.wal".to_owned()],
            ..WalCheck::default()
        };
        let found = [damage("wal", "00000000000000000027.wal", None)];
        let verdict = verdict(
            &[],
            None,
            &wal,
            &found,
            &RecordTally::default(),
            &classified,
        );
        assert!(!verdict.strict && verdict.salvage);
        assert_eq!(
            verdict.explanation,
            "RecoveryMode::Strict would fail with Error::Corrupted at 00000000000000000027.wal \
             byte offset 972; RecoveryMode::Salvage would open it, keeping the WAL up to LSN 32 \
             and setting aside 00000000000000000027.wal from byte offset 972 and the 1 segment \
             file(s) after it"
        );
    }

    #[test]
    fn a_record_recovery_must_apply_but_cannot_opens_in_no_mode() {
        let blocking = damage("record", "00000000000000000001.wal", Some(7));
        let records = RecordTally {
            listed: vec![blocking.clone()],
            not_listed: 0,
            blocking_replay: 1,
            first_blocking: Some(blocking.clone()),
        };
        let verdict = verdict(
            &[],
            None,
            &WalCheck::default(),
            &[blocking],
            &records,
            &cairn_log::reader::VerifyReport::default(),
        );
        assert!(!verdict.strict && !verdict.salvage);
        assert!(
            verdict.explanation.starts_with(
                "no recovery mode would open it: the record at LSN 7 in 00000000000000000001.wal"
            ),
            "{}",
            verdict.explanation
        );
    }

    #[test]
    fn the_progress_template_parses_and_small_directories_get_no_bar() {
        assert!(ProgressStyle::with_template(PROGRESS_TEMPLATE).is_ok());
        let bar = progress_bar(PROGRESS_BAR_BYTES_MIN - 1).expect("a hidden bar");
        assert!(bar.is_hidden());
    }

    #[test]
    fn a_commit_record_counts_its_puts_and_deletes() {
        let body = commit_body(&[(b"a", Some(b"1")), (b"b", None), (b"c", Some(b""))]);
        assert_eq!(
            check_record(COMMIT_RECORD_TYPE, 7, 7, &body),
            Ok(RecordCounts {
                puts: 2,
                deletes: 1
            })
        );
    }

    #[test]
    fn wrong_type_version_or_body_is_damage() {
        let body = commit_body(&[(b"a", Some(b"1"))]);
        let wrong_type = check_record(2, 7, 7, &body).expect_err("type 2");
        assert!(wrong_type.contains("record type 2"), "{wrong_type}");
        let wrong_version = check_record(COMMIT_RECORD_TYPE, 7, 8, &body).expect_err("version");
        assert!(
            wrong_version.contains("claims version 8"),
            "{wrong_version}"
        );
        let cut =
            check_record(COMMIT_RECORD_TYPE, 7, 7, &body[..body.len() - 1]).expect_err("cut body");
        assert!(cut.starts_with("commit body:"), "{cut}");
    }
}

//! `cairn verify DIR` on a stream store: every file of every stream checked end to end,
//! without modifying anything.
//!
//! What is checked: the `STREAMS` identity file decodes (and exists when streams do); each
//! stream directory's `STREAM` file decodes, names its directory's id and the store's
//! database, and no two streams share a name; its `GROUPS` file, if any, decodes and names the
//! same database and stream; its segments pass `cairn_log::reader::verify_dir` (the segment
//! headers and identity, every frame's checksum and LSN continuity, and the classification
//! recovery applies: a torn tail of the last segment is cut, not damage); then every frame
//! that classification kept is decoded as a stream batch (record type, message layout,
//! offsets dense across frames and segments) and the first frame must not start above the
//! first readable offset (messages the metadata calls readable would be missing).
//!
//! Directories a crash left mid-deletion (`STREAM.deleted`) or mid-creation (no `STREAM`) are
//! reported, not checked: the next open removes them. Left-over temporary files are listed.
//!
//! Exit codes as for a data directory: 0 intact (a torn tail included), 1 damage (each named
//! by file, relative to the store, and byte offset), 2 could not run. `--json` prints the
//! report as one document with the same `status`, `exit_code`, `lock`, `database_id`,
//! `damage` (`kind`, `file`, `offset`, `lsn`, `reason`), `leftovers` and `notes` fields as a
//! data directory's, `"store": "streams"` and a `streams` array instead of the snapshot and WAL
//! fields. Damage kinds: `identity`, `metadata`, `groups`, `foreign`, `wal`, `record`, `lost`.
//! Unlike a data directory's report there is no `would_open` verdict: a stream store opens by
//! reading only each stream's tail, so damage in an older segment surfaces at read time.
//!
//! Memory stays bounded: small files are refused above their format's size before they are
//! read, and segments are read one window and one batch at a time.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context as _, Result};
use cairn_log::format::FRAME_PAYLOAD_BYTES_MAX;
use cairn_log::fs::StdFileSystem;
use cairn_log::reader::{verify_dir, SegmentReader, VerifiedSegment};
use cairn_log::stream::codec::{decode_batch, StreamMeta};
use serde::Serialize;

use super::store::{
    list_segment_files, read_groups, read_meta, DirState, StoreDir, StreamDir, GROUPS_FILE,
    IDENTITY_FILE, META_FILE, STREAM_BATCH_RECORD_TYPE, TEMP_SUFFIX,
};
use crate::inspect::layout::LockState;
use crate::inspect::{print_document, Outcome};

/// One piece of damage (the fields of a data directory's report).
#[derive(Clone, Debug, Serialize)]
struct Damage {
    kind: &'static str,
    /// The file, relative to the store directory.
    file: String,
    offset: u64,
    /// The frame's LSN, for `record` damage.
    lsn: Option<u64>,
    reason: String,
}

/// The torn tail of a stream's last segment.
#[derive(Debug, Serialize)]
struct TornTailReport {
    file: String,
    offset: u64,
    bytes_dropped: u64,
}

/// One stream directory as verification saw it.
#[derive(Debug, Serialize)]
struct StreamCheck {
    dir: String,
    id: u64,
    /// `live`, `deleting` or `incomplete` (the last two are removed by the next open and not
    /// checked).
    state: &'static str,
    name: Option<String>,
    first_offset: Option<u64>,
    /// One past the last offset of the frames that checked (at least the first offset).
    next_offset: Option<u64>,
    /// Segment files read (up to the damage, if any).
    segments: usize,
    /// Segment files after the damage, not read.
    segments_unchecked: Vec<String>,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    /// Frames (batches) that passed every check.
    frames: u64,
    messages: u64,
    /// Each group's committed offset.
    groups: BTreeMap<String, u64>,
    bytes_read: u64,
    torn_tail: Option<TornTailReport>,
    /// True when nothing in this stream is damaged.
    intact: bool,
}

/// A left-over file of an interrupted write.
#[derive(Debug, Serialize)]
struct Leftover {
    file: String,
    what: &'static str,
}

/// The whole report (also the `--json` document).
#[derive(Debug, Serialize)]
struct VerifyReport {
    dir: String,
    /// Always `streams`: tells this document from a data directory's.
    store: &'static str,
    status: &'static str,
    exit_code: u8,
    lock: LockState,
    database_id: Option<String>,
    streams: Vec<StreamCheck>,
    damage: Vec<Damage>,
    leftovers: Vec<Leftover>,
    notes: Vec<String>,
}

/// Runs `cairn verify` on the stream store `dir`.
pub fn run(dir: &Path, json: bool) -> Result<Outcome> {
    let store = StoreDir::list(dir)?;
    let mut damage = Vec::new();
    let mut notes = Vec::new();
    let mut leftovers = Vec::new();
    if store.lock == LockState::Held {
        notes.push(
            "the store is open in another process: its files may change while they are \
             read, so damage at the end of a stream may be a write in progress"
                .to_owned(),
        );
    }
    let identity_file = dir.join(IDENTITY_FILE);
    match &store.identity {
        None => damage.push(Damage {
            kind: "identity",
            file: IDENTITY_FILE.to_owned(),
            offset: 0,
            lsn: None,
            reason: "the store identity file is missing but streams exist".to_owned(),
        }),
        Some(Err(problem)) => damage.push(Damage {
            kind: "identity",
            file: store.relative(&identity_file),
            offset: problem.offset,
            lsn: None,
            reason: problem.reason.clone(),
        }),
        Some(Ok(_)) => {}
    }
    for other in &store.others {
        if other.name == format!("{IDENTITY_FILE}{TEMP_SUFFIX}") {
            leftovers.push(Leftover {
                file: other.name.clone(),
                what: "interrupted identity file creation (removed at the next open)",
            });
        }
    }
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut streams = Vec::new();
    for stream in &store.streams {
        let damage_before = damage.len();
        let mut check = check_stream(&store, stream, &mut damage, &mut leftovers)?;
        if let Some(name) = &check.name {
            if let Some(first) = names.insert(name.clone(), stream.name.clone()) {
                damage.push(Damage {
                    kind: "metadata",
                    file: store.relative(&stream.path.join(META_FILE)),
                    offset: 48,
                    lsn: None,
                    reason: format!("a second stream named {name:?} (the first is in {first})"),
                });
            }
        }
        check.intact = damage.len() == damage_before;
        streams.push(check);
    }
    let outcome = if damage.is_empty() {
        Outcome::Intact
    } else {
        Outcome::Damaged
    };
    let report = VerifyReport {
        dir: dir.display().to_string(),
        store: "streams",
        status: match outcome {
            Outcome::Intact => "intact",
            Outcome::Damaged => "damaged",
        },
        exit_code: outcome.exit_code(),
        lock: store.lock,
        database_id: store.database_id().map(|id| id.to_string()),
        streams,
        damage,
        leftovers,
        notes,
    };
    print_document(json, &report, write_text).context("cannot write to stdout")?;
    Ok(outcome)
}

/// Checks one stream directory, adding what is damaged to `damage`.
fn check_stream(
    store: &StoreDir,
    stream: &StreamDir,
    damage: &mut Vec<Damage>,
    leftovers: &mut Vec<Leftover>,
) -> Result<StreamCheck> {
    let mut check = StreamCheck {
        dir: stream.name.clone(),
        id: stream.id,
        state: stream.state.name(),
        name: None,
        first_offset: None,
        next_offset: None,
        segments: 0,
        segments_unchecked: Vec::new(),
        first_lsn: None,
        last_lsn: None,
        frames: 0,
        messages: 0,
        groups: BTreeMap::new(),
        bytes_read: 0,
        torn_tail: None,
        intact: true,
    };
    if stream.state != DirState::Live {
        return Ok(check);
    }
    collect_leftovers(store, stream, leftovers);
    let mut push =
        |kind: &'static str, file: &Path, offset: u64, lsn: Option<u64>, reason: String| {
            damage.push(Damage {
                kind,
                file: store.relative(file),
                offset,
                lsn,
                reason,
            });
        };
    let meta = match read_meta(stream, None)? {
        Ok(meta) => meta,
        Err(problem) => {
            push(
                "metadata",
                &problem.file,
                problem.offset,
                None,
                problem.reason,
            );
            return Ok(check);
        }
    };
    check.name = Some(meta.name.clone());
    check.first_offset = Some(meta.first_offset);
    if let Some(expected) = store
        .database_id()
        .filter(|&expected| expected != meta.database_id)
    {
        push(
            "foreign",
            &stream.path.join(META_FILE),
            16,
            None,
            format!(
                "the stream belongs to database {} but the store is {expected}",
                meta.database_id
            ),
        );
        return Ok(check);
    }
    match read_groups(stream, &meta)? {
        Ok(None) => {}
        Ok(Some(file)) => check.groups = file.committed,
        Err(problem) => push(
            "groups",
            &problem.file,
            problem.offset,
            None,
            problem.reason,
        ),
    }
    check_segments(store, stream, &meta, &mut check, &mut push)?;
    Ok(check)
}

/// The left-over files of interrupted writes in a stream directory.
fn collect_leftovers(store: &StoreDir, stream: &StreamDir, leftovers: &mut Vec<Leftover>) {
    for entry in &stream.entries {
        let what = if entry.ends_with(".wal.tmp") {
            "interrupted segment creation (removed at the next open)"
        } else if entry.ends_with(".wal.damaged") {
            "segment set aside by a salvage (never read again)"
        } else if entry == &format!("{META_FILE}{TEMP_SUFFIX}")
            || entry == &format!("{GROUPS_FILE}{TEMP_SUFFIX}")
        {
            "interrupted rewrite (removed at the next open)"
        } else {
            continue;
        };
        leftovers.push(Leftover {
            file: store.relative(&stream.path.join(entry)),
            what,
        });
    }
}

/// Records damage: kind, file, byte offset, frame LSN, reason.
type PushDamage<'a> = dyn FnMut(&'static str, &Path, u64, Option<u64>, String) + 'a;

/// Checks a stream's segments: the log classification, then every batch it kept.
fn check_segments(
    store: &StoreDir,
    stream: &StreamDir,
    meta: &StreamMeta,
    check: &mut StreamCheck,
    push: &mut PushDamage<'_>,
) -> Result<()> {
    let segments = list_segment_files(stream)?;
    let Some(first) = segments.first() else {
        check.next_offset = Some(meta.first_offset);
        return Ok(());
    };
    // Truncation removes whole segments from the front: LSNs below the first one are gone.
    let after_lsn = first.name_lsn.saturating_sub(1);
    let report = verify_dir(
        &StdFileSystem,
        &stream.path,
        after_lsn,
        Some(meta.database_id),
        &mut |_, _| {},
    )
    .with_context(|| format!("cannot verify {}", stream.path.display()))?;
    for foreign in &report.foreign {
        push(
            "foreign",
            &foreign.file,
            0,
            None,
            format!("the segment belongs to database {}", foreign.database_id),
        );
    }
    check.segments = report.segments.len();
    check.segments_unchecked = report
        .segments_unchecked
        .iter()
        .map(|path| store.relative(path))
        .collect();
    check.bytes_read = report.bytes_read;
    check.torn_tail = report.torn_tail.as_ref().map(|torn| TornTailReport {
        file: store.relative(&torn.file),
        offset: torn.offset,
        bytes_dropped: torn.bytes_dropped,
    });
    let batches = check_batches(&report.segments, meta.first_offset)?;
    if let Some(corruption) = &report.corruption {
        push(
            "wal",
            &corruption.file,
            corruption.offset,
            None,
            corruption.reason.clone(),
        );
    }
    if let Some(found) = batches.damage {
        push(
            found.kind,
            &found.file,
            found.offset,
            found.lsn,
            found.reason,
        );
    }
    check.first_lsn = batches.first_lsn;
    check.last_lsn = batches.last_lsn;
    check.frames = batches.frames;
    check.messages = batches.messages;
    check.bytes_read = check.bytes_read.saturating_add(batches.bytes_read);
    check.next_offset = Some(
        batches
            .end_offset
            .map_or(meta.first_offset, |end| end.max(meta.first_offset)),
    );
    Ok(())
}

/// Damage found by [`check_batches`], with its file as a full path.
struct BatchDamage {
    kind: &'static str,
    file: std::path::PathBuf,
    offset: u64,
    lsn: Option<u64>,
    reason: String,
}

/// What the batch pass found.
#[derive(Default)]
struct Batches {
    frames: u64,
    messages: u64,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    end_offset: Option<u64>,
    bytes_read: u64,
    damage: Option<BatchDamage>,
}

/// Decodes every frame the log classification kept as a stream batch, checking record type,
/// layout and dense offsets; stops at the first damage (which recovery would refuse).
fn check_batches(segments: &[VerifiedSegment], first_offset: u64) -> Result<Batches> {
    let mut batches = Batches::default();
    for segment in segments.iter().filter(|segment| segment.frames > 0) {
        let mut reader =
            SegmentReader::open(&StdFileSystem, &segment.info, FRAME_PAYLOAD_BYTES_MAX)
                .with_context(|| format!("cannot open {}", segment.info.path.display()))?;
        let mut frames = 0;
        while frames < segment.frames {
            let next = reader
                .next()
                .with_context(|| format!("cannot read {}", segment.info.path.display()))?;
            let Some((offset, frame)) = next else { break };
            frames += 1;
            let damage = |kind, reason: String| BatchDamage {
                kind,
                file: segment.info.path.clone(),
                offset,
                lsn: Some(frame.lsn),
                reason,
            };
            if frame.record_type != STREAM_BATCH_RECORD_TYPE {
                batches.damage = Some(damage(
                    "record",
                    format!("record type {}, not a stream batch", frame.record_type),
                ));
                break;
            }
            let batch = match decode_batch(frame.body) {
                Ok(batch) => batch,
                Err(reason) => {
                    batches.damage = Some(damage("record", reason.to_owned()));
                    break;
                }
            };
            match batches.end_offset {
                Some(end) if end != frame.version => {
                    batches.damage = Some(damage(
                        "record",
                        format!(
                            "the batch starts at offset {} where {end} was expected",
                            frame.version
                        ),
                    ));
                    break;
                }
                None if frame.version > first_offset => {
                    batches.damage = Some(damage(
                        "lost",
                        format!(
                            "the first batch on disk starts at offset {} but the stream's first \
                             readable offset is {first_offset}: messages {first_offset}..{} are \
                             missing",
                            frame.version, frame.version
                        ),
                    ));
                    break;
                }
                _ => {}
            }
            let count = u64::try_from(batch.messages.len()).unwrap_or(u64::MAX);
            batches.frames += 1;
            batches.messages = batches.messages.saturating_add(count);
            batches.first_lsn.get_or_insert(frame.lsn);
            batches.last_lsn = Some(frame.lsn);
            batches.end_offset = Some(frame.version.saturating_add(count));
        }
        batches.bytes_read = batches.bytes_read.saturating_add(reader.bytes_read());
        if batches.damage.is_some() {
            break;
        }
    }
    Ok(batches)
}

fn write_text(out: &mut impl Write, report: &VerifyReport) -> io::Result<()> {
    writeln!(out, "stream store: {}", report.dir)?;
    if let Some(id) = &report.database_id {
        writeln!(out, "database id: {id}")?;
    }
    for note in &report.notes {
        writeln!(out, "note: {note}")?;
    }
    writeln!(out, "streams: {} checked", report.streams.len())?;
    for stream in &report.streams {
        let name = stream.name.as_deref().unwrap_or("?");
        if stream.state != DirState::Live.name() {
            writeln!(
                out,
                "  {}: {} (the next open removes it; not checked)",
                stream.dir, stream.state
            )?;
            continue;
        }
        let offsets = match (stream.first_offset, stream.next_offset) {
            (Some(first), Some(next)) => format!("offsets {first}..{next}"),
            _ => "offsets unknown".to_owned(),
        };
        let lsns = match (stream.first_lsn, stream.last_lsn) {
            (Some(first), Some(last)) => format!(" (LSN {first}..={last})"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  {name} ({}): {}: {offsets}, {} segment(s), {} batches{lsns} holding {} messages, \
             {} group(s); {} bytes read",
            stream.dir,
            if stream.intact { "ok" } else { "DAMAGED" },
            stream.segments,
            stream.frames,
            stream.messages,
            stream.groups.len(),
            stream.bytes_read
        )?;
        if let Some(torn) = &stream.torn_tail {
            writeln!(
                out,
                "    torn tail: {} at byte offset {}: {} bytes of an unfinished write (never \
                 acknowledged; recovery truncates it)",
                torn.file, torn.offset, torn.bytes_dropped
            )?;
        }
        if !stream.segments_unchecked.is_empty() {
            writeln!(
                out,
                "    not read (they follow the damage): {}",
                stream.segments_unchecked.join(", ")
            )?;
        }
    }
    for leftover in &report.leftovers {
        writeln!(out, "leftover: {}: {}", leftover.file, leftover.what)?;
    }
    if !report.damage.is_empty() {
        writeln!(out, "damage:")?;
        for found in &report.damage {
            let lsn = found
                .lsn
                .map_or_else(String::new, |lsn| format!(" (frame LSN {lsn})"));
            writeln!(
                out,
                "  {} at byte offset {}{lsn}: {}: {}",
                found.file, found.offset, found.kind, found.reason
            )?;
        }
    }
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

    #[test]
    fn an_intact_report_says_so_and_lists_torn_tails() {
        let report = VerifyReport {
            dir: "store".to_owned(),
            store: "streams",
            status: "intact",
            exit_code: 0,
            lock: LockState::Free,
            database_id: Some(cairn_log::DatabaseId::from_bytes([1; 16]).to_string()),
            streams: vec![StreamCheck {
                dir: "00000000000000000001".to_owned(),
                id: 1,
                state: "live",
                name: Some("orders".to_owned()),
                first_offset: Some(0),
                next_offset: Some(3),
                segments: 1,
                segments_unchecked: Vec::new(),
                first_lsn: Some(1),
                last_lsn: Some(2),
                frames: 2,
                messages: 3,
                groups: BTreeMap::new(),
                bytes_read: 100,
                torn_tail: Some(TornTailReport {
                    file: "00000000000000000001/00000000000000000001.wal".to_owned(),
                    offset: 90,
                    bytes_dropped: 7,
                }),
                intact: true,
            }],
            damage: Vec::new(),
            leftovers: Vec::new(),
            notes: Vec::new(),
        };
        let mut out = Vec::new();
        write_text(&mut out, &report).expect("to a Vec");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.contains("orders (00000000000000000001): ok: offsets 0..3"));
        assert!(text.contains(
            "torn tail: 00000000000000000001/00000000000000000001.wal at byte offset 90"
        ));
        assert!(text.ends_with("result: INTACT\n"));
    }
}

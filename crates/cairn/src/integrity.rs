//! `cairn::verify`: a full, read-only integrity check of a data directory, which says what
//! `Db::open` would do with it and why.
//!
//! It shares recovery's own code rather than re-deriving its policy: the identity check and
//! the foreign-file rule, the choice of snapshot (the newest that decodes end to end and whose
//! header matches its name, as `load_newest_valid_snapshot` picks it), the classification of
//! the WAL (`cairn_log::verify_dir`, the scan `Log::open` runs, with the same database id and
//! the snapshot's LSN), the check each record must pass before replay, and the "nothing lost"
//! rule (a rejected snapshot newer than what recovery reaches, or a WAL ending below the
//! snapshot). Unlike an open, it goes on past the first problem, reads every snapshot and
//! every record (older ones too), and changes nothing: no lock is taken, no file is created,
//! truncated or removed.
//!
//! Memory is bounded by one snapshot block and one WAL read window; at most
//! [`DAMAGED_RECORDS_LISTED_MAX`] damaged records are listed (all are counted). Only I/O
//! failures (a missing directory, no permission) are errors; damage is in the report.

use std::path::{Path, PathBuf};

use cairn_log::format::FRAME_PAYLOAD_BYTES_MAX;
use cairn_log::reader::{verify_dir, SegmentReader, VerifyReport as WalReport};
use cairn_log::{DatabaseId, FileSystem, StdFileSystem};

use crate::durable::identity::{read_identity, IDENTITY_FILE_NAME};
use crate::durable::recovery::{
    check_commit_frame, check_nothing_lost, check_snapshot_name, foreign_snapshot,
};
use crate::durable::snapshot_file::{read_snapshot, SnapshotError, SnapshotHeader};
use crate::durable::{parse_snapshot_file_name, snapshot_file_name};
use crate::error::{Error, Result};
use crate::types::Mutation;

/// Damaged WAL records listed one by one; more are counted, not listed, so that a badly
/// damaged WAL cannot make the report grow without bound.
pub const DAMAGED_RECORDS_LISTED_MAX: usize = 16;

/// What kind of problem a [`Damage`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The identity file is missing (with data files present) or damaged.
    Identity,
    /// A snapshot or WAL segment belongs to another database (its header names another id).
    Foreign,
    /// A snapshot fails verification.
    Snapshot,
    /// The WAL is damaged: a frame, a segment header, LSN continuity.
    Wal,
    /// A WAL record passes its checksum but its content cannot be applied.
    Record,
    /// Commits the directory shows were made cannot be recovered (a damaged snapshot newer
    /// than everything else, or a WAL that ends below the snapshot).
    Lost,
}

impl DamageKind {
    /// A short lowercase name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            DamageKind::Identity => "identity",
            DamageKind::Foreign => "foreign",
            DamageKind::Snapshot => "snapshot",
            DamageKind::Wal => "wal",
            DamageKind::Record => "record",
            DamageKind::Lost => "lost",
        }
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// What kind of problem.
    pub kind: DamageKind,
    /// The file.
    pub file: PathBuf,
    /// Byte offset in the file (0 when the whole file is concerned).
    pub offset: u64,
    /// The record's LSN, for [`DamageKind::Record`].
    pub lsn: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

/// One snapshot file as verification saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// The file.
    pub file: PathBuf,
    /// The version its name carries.
    pub name_version: u64,
    /// Its header, when the header checks.
    pub header: Option<SnapshotHeader>,
    /// Its size.
    pub bytes: u64,
    /// True when recovery could load it.
    pub valid: bool,
    /// True when it belongs to another database.
    pub foreign: bool,
}

/// What the WAL's records hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCheck {
    /// LSN of the first record read.
    pub first_lsn: Option<u64>,
    /// Records that passed the replay check.
    pub decoded: u64,
    /// Puts in those records.
    pub puts: u64,
    /// Deletes in those records.
    pub deletes: u64,
}

/// Whether `Db::open` would succeed, per recovery mode, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenVerdict {
    /// `RecoveryMode::Strict` would open it.
    pub strict: bool,
    /// `RecoveryMode::Salvage` would open it.
    pub salvage: bool,
    /// One sentence saying why.
    pub explanation: String,
}

/// What [`verify`] found.
#[derive(Clone, Debug)]
pub struct IntegrityReport {
    /// The directory checked.
    pub dir: PathBuf,
    /// The database id from the identity file, if it is there and checks.
    pub database_id: Option<DatabaseId>,
    /// Every snapshot file, oldest first.
    pub snapshots: Vec<SnapshotCheck>,
    /// The snapshot recovery would load: the newest valid one.
    pub snapshot_used: Option<PathBuf>,
    /// WAL records at or below this LSN are covered by that snapshot.
    pub replay_after_lsn: u64,
    /// The WAL as `Log::open` would classify it.
    pub wal: WalReport,
    /// What the WAL's records hold.
    pub records: RecordCheck,
    /// Every problem found (damaged records up to [`DAMAGED_RECORDS_LISTED_MAX`]).
    pub damage: Vec<Damage>,
    /// Damaged records counted beyond the ones listed.
    pub damaged_records_not_listed: u64,
    /// What `Db::open` would do.
    pub would_open: OpenVerdict,
}

impl IntegrityReport {
    /// True when nothing is damaged (a torn tail, which recovery cuts, is not damage).
    pub fn is_intact(&self) -> bool {
        self.damage.is_empty() && self.damaged_records_not_listed == 0
    }

    /// The files that belong to another database.
    pub fn foreign_files(&self) -> impl Iterator<Item = &Path> {
        self.damage
            .iter()
            .filter(|damage| damage.kind == DamageKind::Foreign)
            .map(|damage| damage.file.as_path())
    }
}

/// Checks the data directory `dir` end to end without changing it; see the module docs.
pub fn verify(dir: impl AsRef<Path>) -> Result<IntegrityReport> {
    verify_with_progress(dir, &mut |_, _| {})
}

/// [`verify`], calling `progress(file, bytes)` with the file being read and the bytes read
/// from it since the last call, so a caller can draw a progress bar over the directory's size.
pub fn verify_with_progress(
    dir: impl AsRef<Path>,
    progress: &mut dyn FnMut(&Path, u64),
) -> Result<IntegrityReport> {
    let dir = dir.as_ref();
    let fs = StdFileSystem;
    let names = fs
        .list_dir(dir)
        .map_err(|error| Error::io("list data directory", dir, error))?;
    let mut damage = Vec::new();

    let database_id = check_identity(&fs, dir, &names, &mut damage)?;

    // Snapshots, newest first: the first that verifies is the one recovery loads.
    let mut versions: Vec<u64> = names
        .iter()
        .filter_map(|name| parse_snapshot_file_name(name))
        .collect();
    versions.sort_unstable_by(|left, right| right.cmp(left));
    let mut snapshots = Vec::with_capacity(versions.len());
    let mut snapshot_used: Option<(PathBuf, u64)> = None;
    for &version in &versions {
        let check = check_snapshot(&fs, dir, version, database_id, &mut damage, progress)?;
        if check.valid && snapshot_used.is_none() {
            snapshot_used = Some((check.file.clone(), version));
        }
        snapshots.push(check);
    }
    snapshots.reverse();
    let replay_after_lsn = snapshot_used.as_ref().map_or(0, |(_, version)| *version);

    // The WAL, classified by the scan `Log::open` runs, then every kept record checked.
    let wal_path = dir.to_path_buf();
    let mut wal_done = 0;
    let wal = verify_dir(
        &fs,
        dir,
        replay_after_lsn,
        database_id,
        &mut |done, _total| {
            progress(&wal_path, done.saturating_sub(wal_done));
            wal_done = done;
        },
    )?;
    for foreign in &wal.foreign {
        damage.push(Damage {
            kind: DamageKind::Foreign,
            file: foreign.file.clone(),
            offset: 0,
            lsn: None,
            reason: foreign_reason(foreign.database_id, database_id),
        });
    }
    if let Some(corruption) = &wal.corruption {
        damage.push(Damage {
            kind: DamageKind::Wal,
            file: corruption.file.clone(),
            offset: corruption.offset,
            lsn: None,
            reason: corruption.reason.clone(),
        });
    }
    let mut tally = RecordTally::default();
    for segment in &wal.segments {
        check_records(&fs, segment, replay_after_lsn, &mut tally, progress)?;
    }
    damage.extend(tally.listed.iter().cloned());

    let recovered = wal
        .last_lsn
        .map_or(replay_after_lsn, |lsn| lsn.max(replay_after_lsn));
    check_lost(
        dir,
        &snapshots,
        replay_after_lsn,
        recovered,
        wal.last_lsn,
        &mut damage,
    );

    let would_open = verdict(
        &snapshots,
        snapshot_used.as_ref(),
        &wal,
        &damage,
        &tally,
        recovered,
    );
    Ok(IntegrityReport {
        dir: dir.to_path_buf(),
        database_id,
        snapshots,
        snapshot_used: snapshot_used.map(|(file, _)| file),
        replay_after_lsn,
        wal,
        records: tally.check,
        damage,
        damaged_records_not_listed: tally.not_listed,
        would_open,
    })
}

/// Reads the identity as open does (open creates one only for a directory without data
/// files); a missing or damaged one is damage.
fn check_identity(
    fs: &dyn FileSystem,
    dir: &Path,
    names: &[String],
    damage: &mut Vec<Damage>,
) -> Result<Option<DatabaseId>> {
    match read_identity(fs, dir, names) {
        Ok(Some(id)) => Ok(Some(id)),
        Ok(None) => {
            let data_file = names.iter().find(|name| {
                parse_snapshot_file_name(name).is_some()
                    || cairn_log::segment::parse_segment_file_name(name).is_some()
            });
            if let Some(data_file) = data_file {
                damage.push(Damage {
                    kind: DamageKind::Identity,
                    file: dir.join(IDENTITY_FILE_NAME),
                    offset: 0,
                    lsn: None,
                    reason: format!(
                        "the directory holds data files ({data_file}, ...) but no identity \
                         file: it was written by an older format, or the file was deleted"
                    ),
                });
            }
            Ok(None)
        }
        Err(Error::Corrupted {
            file,
            offset,
            reason,
        }) => {
            damage.push(Damage {
                kind: DamageKind::Identity,
                file,
                offset,
                lsn: None,
                reason,
            });
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The rule recovery applies after replay: nothing the directory shows was committed may be
/// lost silently.
fn check_lost(
    dir: &Path,
    snapshots: &[SnapshotCheck],
    replay_after_lsn: u64,
    recovered: u64,
    wal_last_lsn: Option<u64>,
    damage: &mut Vec<Damage>,
) {
    let non_foreign: Vec<u64> = snapshots
        .iter()
        .rev()
        .filter(|snapshot| !snapshot.foreign)
        .map(|snapshot| snapshot.name_version)
        .collect();
    let mut lost = Vec::new();
    if let Err(Error::Corrupted {
        file,
        offset,
        reason,
    }) = check_nothing_lost(
        dir,
        &non_foreign,
        replay_after_lsn,
        recovered,
        wal_last_lsn,
        false,
        &mut lost,
    ) {
        damage.push(Damage {
            kind: DamageKind::Lost,
            file,
            offset,
            lsn: None,
            reason,
        });
    }
}

fn foreign_reason(found: DatabaseId, expected: Option<DatabaseId>) -> String {
    format!(
        "belongs to another database: its header names database {found}, this directory is \
         database {}",
        expected.map_or_else(|| "(unknown)".to_owned(), |id| id.to_string())
    )
}

/// Verifies one snapshot as recovery would load it (identity, every block, the name).
fn check_snapshot(
    fs: &dyn FileSystem,
    dir: &Path,
    version: u64,
    database_id: Option<DatabaseId>,
    damage: &mut Vec<Damage>,
    progress: &mut dyn FnMut(&Path, u64),
) -> Result<SnapshotCheck> {
    let path = dir.join(snapshot_file_name(version));
    let bytes = std::fs::metadata(&path).map_or(0, |metadata| metadata.len());
    let mut check = SnapshotCheck {
        file: path.clone(),
        name_version: version,
        header: None,
        bytes,
        valid: false,
        foreign: false,
    };
    if let Some(found) = database_id.and_then(|id| foreign_snapshot(fs, &path, id)) {
        check.foreign = true;
        damage.push(Damage {
            kind: DamageKind::Foreign,
            file: path,
            offset: 0,
            lsn: None,
            reason: foreign_reason(found, database_id),
        });
        progress(&check.file, bytes);
        return Ok(check);
    }
    let mut visit = |entry: crate::durable::snapshot_file::SnapshotEntry<'_>| {
        let entry_bytes = (entry.key.len() + entry.value.len()) as u64;
        progress(&path, entry_bytes.saturating_add(24));
        Ok(())
    };
    let problem = match read_snapshot(fs, &path, &mut visit) {
        Ok(header) => {
            check.header = Some(header);
            check_snapshot_name(&header, version)
                .err()
                .map(|reason| (0, reason))
        }
        Err(SnapshotError::Corrupted { offset, reason }) => Some((offset, reason)),
        Err(SnapshotError::Rejected(reason)) => Some((0, reason)),
        Err(error) => return Err(Error::from_snapshot(error, path)),
    };
    match problem {
        None => check.valid = true,
        Some((offset, reason)) => damage.push(Damage {
            kind: DamageKind::Snapshot,
            file: path,
            offset,
            lsn: None,
            reason,
        }),
    }
    Ok(check)
}

/// Damaged records found while checking.
#[derive(Debug, Default)]
struct RecordTally {
    check: RecordCheck,
    listed: Vec<Damage>,
    not_listed: u64,
    /// The first damaged record with an LSN above the snapshot's: replay would refuse it.
    first_blocking: Option<Damage>,
}

/// Reads the valid frames of one kept segment again and puts each through replay's check.
fn check_records(
    fs: &dyn FileSystem,
    segment: &cairn_log::VerifiedSegment,
    replay_after_lsn: u64,
    tally: &mut RecordTally,
    progress: &mut dyn FnMut(&Path, u64),
) -> Result<()> {
    let path = &segment.info.path;
    let mut reader = SegmentReader::open(fs, &segment.info, FRAME_PAYLOAD_BYTES_MAX)?;
    let mut counted = 0;
    for _ in 0..segment.frames {
        let Some((offset, frame)) = reader.next()? else {
            return Err(Error::Corrupted {
                file: path.clone(),
                offset: reader.position(),
                reason: "the file changed while it was being verified (a frame that checked \
                         is gone); is the database open?"
                    .to_owned(),
            });
        };
        tally.check.first_lsn.get_or_insert(frame.lsn);
        match check_commit_frame(&frame) {
            Ok(mutations) => {
                tally.check.decoded += 1;
                for (_, mutation) in &mutations {
                    match mutation {
                        Mutation::Put { .. } => tally.check.puts += 1,
                        Mutation::Delete => tally.check.deletes += 1,
                    }
                }
            }
            Err(reason) => {
                let found = Damage {
                    kind: DamageKind::Record,
                    file: path.clone(),
                    offset,
                    lsn: Some(frame.lsn),
                    reason,
                };
                if frame.lsn > replay_after_lsn && tally.first_blocking.is_none() {
                    tally.first_blocking = Some(found.clone());
                }
                if tally.listed.len() < DAMAGED_RECORDS_LISTED_MAX {
                    tally.listed.push(found);
                } else {
                    tally.not_listed += 1;
                }
            }
        }
        let position = reader.position();
        progress(path, position.saturating_sub(counted));
        counted = position;
    }
    Ok(())
}

/// The last component of `path`, for explanations.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Says whether `Db::open` would succeed in each recovery mode, and why.
fn verdict(
    snapshots: &[SnapshotCheck],
    snapshot_used: Option<&(PathBuf, u64)>,
    wal: &WalReport,
    damage: &[Damage],
    tally: &RecordTally,
    recovered: u64,
) -> OpenVerdict {
    let refuse = |explanation: String| OpenVerdict {
        strict: false,
        salvage: false,
        explanation,
    };
    if let Some(foreign) = damage
        .iter()
        .find(|damage| damage.kind == DamageKind::Foreign)
    {
        return refuse(format!(
            "no recovery mode would open it: Db::open refuses it with Error::ForeignFile, since \
             {} {}; remove that file (or move it back where it belongs)",
            file_name(&foreign.file),
            foreign.reason
        ));
    }
    if let Some(identity) = damage
        .iter()
        .find(|damage| damage.kind == DamageKind::Identity)
    {
        return refuse(format!(
            "no recovery mode would open it: Db::open refuses it with Error::Corrupted at {}: {}",
            file_name(&identity.file),
            identity.reason
        ));
    }
    if let Some(blocking) = &tally.first_blocking {
        return refuse(format!(
            "no recovery mode would open it: the record at LSN {} in {} (byte offset {}) \
             passes its checksum but cannot be applied ({}); restore from a backup",
            blocking.lsn.unwrap_or(0),
            file_name(&blocking.file),
            blocking.offset,
            blocking.reason
        ));
    }
    if let Some(corruption) = &wal.corruption {
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
    if let Some(lost) = damage.iter().find(|damage| damage.kind == DamageKind::Lost) {
        return OpenVerdict {
            strict: false,
            salvage: true,
            explanation: format!(
                "RecoveryMode::Strict would fail with Error::Corrupted at {}: {}; \
                 RecoveryMode::Salvage would open it at version {recovered} and report the loss",
                file_name(&lost.file),
                lost.reason
            ),
        };
    }
    let newest_rejected = snapshots.last().is_some_and(|newest| !newest.valid);
    let explanation = match (damage.is_empty(), newest_rejected, snapshot_used) {
        (true, _, _) => "Db::open would succeed in either recovery mode".to_owned(),
        (false, true, Some((file, _))) => format!(
            "Db::open would still succeed in either recovery mode: it rejects the damaged \
             newest snapshot and falls back to {} plus the WAL",
            file_name(file)
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

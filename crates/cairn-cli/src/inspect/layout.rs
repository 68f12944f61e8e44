//! What a data directory holds, by file name: snapshots, WAL segments, the lock file, crash
//! leftovers and anything else.
//!
//! Listing reads only names and sizes, never contents, so it is cheap and cannot fail on
//! damaged data; it fails only when the directory itself cannot be read (missing, not a
//! directory, no permission), which the commands report as "could not run". Names follow the
//! engine: `snapshot-{version:020}.snap`, `{first_lsn:020}.wal`, `LOCK`, `IDENTITY`;
//! `*.wal.tmp` are interrupted creations that the next open removes, `*.wal.damaged` are
//! segments `RecoveryMode::Salvage` set aside.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use cairn_log::segment::parse_segment_file_name;
use serde::Serialize;

/// The lock file the engine holds while a database is open.
pub const LOCK_FILE_NAME: &str = "LOCK";
/// The identity file the engine creates with the directory.
const IDENTITY_FILE_NAME: &str = "IDENTITY";
/// Prefix of a snapshot file name.
const SNAPSHOT_FILE_PREFIX: &str = "snapshot-";
/// Suffix of a snapshot file name.
const SNAPSHOT_FILE_SUFFIX: &str = ".snap";
/// Digits of the zero-padded version in a snapshot file name (`u64::MAX` has 20).
const SNAPSHOT_NAME_DIGITS: usize = 20;
/// Suffix of a snapshot whose checkpoint a crash interrupted.
const SNAPSHOT_TEMP_SUFFIX: &str = ".snap.tmp";
/// Suffix of a segment whose creation a crash interrupted.
const SEGMENT_TEMP_SUFFIX: &str = ".wal.tmp";
/// Suffix of a segment set aside by a salvage.
const SEGMENT_DAMAGED_SUFFIX: &str = ".wal.damaged";

/// A snapshot file, by name.
#[derive(Clone, Debug)]
pub struct SnapshotFile {
    /// The file.
    pub path: PathBuf,
    /// The file name.
    pub name: String,
    /// The version its name carries.
    pub name_version: u64,
    /// Its size.
    pub file_bytes: u64,
}

/// A WAL segment file, by name.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// The file.
    pub path: PathBuf,
    /// The file name.
    pub name: String,
    /// The first LSN its name carries.
    pub name_lsn: u64,
    /// Its size.
    pub file_bytes: u64,
}

/// What a file that is neither a snapshot nor a segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherKind {
    /// The engine's lock file.
    Lock,
    /// The database's identity file.
    Identity,
    /// A snapshot whose writing a crash interrupted; removed at the next open.
    SnapshotTemp,
    /// A segment whose creation a crash interrupted; removed at the next open.
    SegmentTemp,
    /// A segment a salvage set aside; never read again.
    SegmentDamaged,
    /// A subdirectory (the engine creates none).
    Directory,
    /// Anything else (the engine ignores it).
    Unknown,
}

impl OtherKind {
    /// A short explanation for the text reports.
    pub fn describe(self) -> &'static str {
        match self {
            OtherKind::Lock => "lock file",
            OtherKind::Identity => "identity file (the database id every file repeats)",
            OtherKind::SnapshotTemp => "interrupted checkpoint (removed at the next open)",
            OtherKind::SegmentTemp => "interrupted segment creation (removed at the next open)",
            OtherKind::SegmentDamaged => "segment set aside by a salvage (never read again)",
            OtherKind::Directory => "directory (not used by the engine)",
            OtherKind::Unknown => "not a Cairn file (ignored by the engine)",
        }
    }

    /// True for what a crash or a salvage leaves behind.
    pub fn is_leftover(self) -> bool {
        matches!(
            self,
            OtherKind::SnapshotTemp | OtherKind::SegmentTemp | OtherKind::SegmentDamaged
        )
    }
}

/// Any other entry of the directory.
#[derive(Clone, Debug, Serialize)]
pub struct OtherFile {
    /// The name (lossy if it is not UTF-8).
    pub name: String,
    /// What it is.
    pub kind: OtherKind,
    /// Its size (0 for a directory).
    pub bytes: u64,
}

/// Whether another process has the database open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    /// No `LOCK` file: the directory was never opened (or it was removed).
    NoLockFile,
    /// Nobody holds the lock.
    Free,
    /// Another process holds the lock: the database is open and its files may change.
    Held,
    /// The lock could not be probed (for example, no permission to open `LOCK`).
    Unknown,
}

/// The files of a data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    /// Snapshot files, oldest first.
    pub snapshots: Vec<SnapshotFile>,
    /// Segment files, by first LSN.
    pub segments: Vec<SegmentFile>,
    /// Everything else, by name.
    pub others: Vec<OtherFile>,
    /// The lock probe.
    pub lock: LockState,
}

impl DataDir {
    /// Lists `path`. Fails if it is missing, not a directory, or cannot be read.
    pub fn list(path: &Path) -> Result<DataDir> {
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read the data directory {}", path.display()))?;
        if !metadata.is_dir() {
            bail!("{} is not a directory", path.display());
        }
        let entries = std::fs::read_dir(path)
            .with_context(|| format!("cannot list the data directory {}", path.display()))?;
        let mut dir = DataDir {
            snapshots: Vec::new(),
            segments: Vec::new(),
            others: Vec::new(),
            lock: LockState::NoLockFile,
        };
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot list the data directory {}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let entry_path = entry.path();
            // A dangling symlink or an entry removed meanwhile is listed, not fatal.
            let Ok(metadata) = std::fs::metadata(&entry_path) else {
                dir.others.push(OtherFile {
                    name,
                    kind: OtherKind::Unknown,
                    bytes: 0,
                });
                continue;
            };
            let file_bytes = if metadata.is_dir() { 0 } else { metadata.len() };
            if metadata.is_file() {
                if let Some(name_version) = parse_snapshot_file_name(&name) {
                    dir.snapshots.push(SnapshotFile {
                        path: entry_path,
                        name,
                        name_version,
                        file_bytes,
                    });
                    continue;
                }
                if let Some(name_lsn) = parse_segment_file_name(&name) {
                    dir.segments.push(SegmentFile {
                        path: entry_path,
                        name,
                        name_lsn,
                        file_bytes,
                    });
                    continue;
                }
            }
            let kind = classify_other(&name, metadata.is_dir());
            dir.others.push(OtherFile {
                name,
                kind,
                bytes: file_bytes,
            });
        }
        dir.snapshots.sort_by_key(|snapshot| snapshot.name_version);
        dir.segments.sort_by_key(|segment| segment.name_lsn);
        dir.others.sort_by(|left, right| left.name.cmp(&right.name));
        if dir.others.iter().any(|other| other.kind == OtherKind::Lock) {
            dir.lock = probe_lock(&path.join(LOCK_FILE_NAME));
        }
        Ok(dir)
    }

    /// True when the directory holds nothing the engine wrote.
    pub fn is_foreign(&self) -> bool {
        self.snapshots.is_empty()
            && self.segments.is_empty()
            && !self
                .others
                .iter()
                .any(|other| other.kind != OtherKind::Unknown && other.kind != OtherKind::Directory)
    }

    /// Bytes of the snapshot files.
    pub fn snapshot_bytes(&self) -> u64 {
        saturating_sum(self.snapshots.iter().map(|snapshot| snapshot.file_bytes))
    }

    /// Bytes of the segment files.
    pub fn segment_bytes(&self) -> u64 {
        saturating_sum(self.segments.iter().map(|segment| segment.file_bytes))
    }

    /// Bytes of the snapshot and segment files: what `verify` reads.
    pub fn data_bytes(&self) -> u64 {
        self.snapshot_bytes().saturating_add(self.segment_bytes())
    }

    /// Crash and salvage leftovers.
    pub fn leftovers(&self) -> impl Iterator<Item = &OtherFile> {
        self.others.iter().filter(|other| other.kind.is_leftover())
    }
}

/// Adds sizes without overflowing: sparse files may claim sizes whose sum exceeds `u64`.
pub fn saturating_sum(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0, u64::saturating_add)
}

/// The version a snapshot file name carries, if `name` is exactly `snapshot-{20 digits}.snap`.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SNAPSHOT_FILE_PREFIX)?
        .strip_suffix(SNAPSHOT_FILE_SUFFIX)?;
    if digits.len() != SNAPSHOT_NAME_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn classify_other(name: &str, is_dir: bool) -> OtherKind {
    if is_dir {
        OtherKind::Directory
    } else if name == LOCK_FILE_NAME {
        OtherKind::Lock
    } else if name == IDENTITY_FILE_NAME {
        OtherKind::Identity
    } else if name.ends_with(SNAPSHOT_TEMP_SUFFIX) {
        OtherKind::SnapshotTemp
    } else if name.ends_with(SEGMENT_TEMP_SUFFIX) {
        OtherKind::SegmentTemp
    } else if name.ends_with(SEGMENT_DAMAGED_SUFFIX) {
        OtherKind::SegmentDamaged
    } else {
        OtherKind::Unknown
    }
}

/// Tells whether another process holds the lock, by taking a shared lock on a read-only
/// handle and releasing it at once: nothing is written, and the engine's exclusive lock makes
/// the probe fail while the database is open.
pub fn probe_lock(path: &Path) -> LockState {
    let Ok(file) = File::open(path) else {
        return LockState::Unknown;
    };
    match file.try_lock_shared() {
        Ok(()) => LockState::Free,
        Err(std::fs::TryLockError::WouldBlock) => LockState::Held,
        Err(std::fs::TryLockError::Error(_)) => LockState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_parse_and_look_alikes_do_not() {
        assert_eq!(
            parse_snapshot_file_name("snapshot-00000000000000000042.snap"),
            Some(42)
        );
        assert_eq!(parse_snapshot_file_name("snapshot-42.snap"), None);
        assert_eq!(
            parse_snapshot_file_name("snapshot-00000000000000000042.snap.tmp"),
            None
        );
        assert_eq!(
            parse_snapshot_file_name("snapshot-0000000000000000004x.snap"),
            None
        );
        assert_eq!(
            parse_snapshot_file_name("snapshot-99999999999999999999.snap"),
            None
        );
    }

    #[test]
    fn other_files_are_classified_by_name() {
        assert_eq!(classify_other("LOCK", false), OtherKind::Lock);
        assert_eq!(
            classify_other("snapshot-00000000000000000042.snap.tmp", false),
            OtherKind::SnapshotTemp
        );
        assert_eq!(
            classify_other("00000000000000000001.wal.tmp", false),
            OtherKind::SegmentTemp
        );
        assert_eq!(
            classify_other("00000000000000000001.wal.damaged", false),
            OtherKind::SegmentDamaged
        );
        assert_eq!(classify_other("notes.txt", false), OtherKind::Unknown);
        assert_eq!(classify_other("LOCK", true), OtherKind::Directory);
        assert!(OtherKind::SegmentTemp.is_leftover());
        assert!(!OtherKind::Lock.is_leftover());
    }
}

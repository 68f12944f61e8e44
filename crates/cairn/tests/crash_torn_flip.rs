//! Crash and fault matrix, damaged bytes: the WAL truncated at every byte offset of its last
//! records, every single-bit flip in a small WAL and in a small snapshot, and each snapshot
//! and segment of another database swapped into the image (refused with `ForeignFile`
//! naming it; once it is gone the database opens whole).
//!
//! Pass: recovery brings back exactly the earlier commits (a prefix of the commit order) or
//! fails with a clear `Corrupted` error naming the file; never a wrong value, never a panic.
//! A truncation inside the last records is a torn tail and must always recover.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn::{Db, Durability, Error, FileSystem as _};
use cairn_testkit::fault_fs::{CrashMode, FaultFs, UnsyncedDirOps, UnsyncedWrites};
use common::{check_recovered, fault_options, run, workload, Outcome, DB_DIR};

const KEEP_EVERYTHING: CrashMode = CrashMode {
    writes: UnsyncedWrites::Kept,
    dir_ops: UnsyncedDirOps::Kept,
};

fn files_ending(fs: &FaultFs, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs
        .list_files()
        .into_iter()
        .filter(|path| path.starts_with(DB_DIR) && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Builds a database with `steps` workload steps and no checkpoint, returns the file system,
/// the outcome and the last WAL segment.
fn small_database(steps: usize, checkpoint: bool) -> (Arc<FaultFs>, Outcome) {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(fault_options(&fs, Durability::Strict)).expect("open");
    let plan: Vec<common::Step> = workload(5, steps)
        .into_iter()
        .filter(|step| !matches!(step, common::Step::Checkpoint))
        .collect();
    let outcome = run(&db, &plan);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    if checkpoint {
        db.checkpoint().expect("checkpoint");
    }
    db.close().expect("close");
    (fs, outcome)
}

/// Recovers `image` and checks the result: a prefix with at least `lowest` commits, or a
/// `Corrupted` error when `corruption_allowed`.
fn recover(
    image: &Arc<FaultFs>,
    outcome: &Outcome,
    lowest: u64,
    corruption_allowed: bool,
) -> Result<u64, String> {
    match Db::open(fault_options(image, Durability::Strict)) {
        Ok(db) => check_recovered(&db, outcome, lowest),
        Err(Error::Corrupted { file, .. }) if corruption_allowed => {
            if file.as_os_str().is_empty() {
                return Err("Corrupted names no file".into());
            }
            Ok(u64::MAX)
        }
        Err(error) => Err(format!("recovery failed: {error}")),
    }
}

#[test]
fn wal_truncated_at_every_byte_of_its_last_records_recovers_the_earlier_commits() {
    let (fs, outcome) = small_database(40, false);
    let segments = files_ending(&fs, ".wal");
    let last: &Path = segments.last().expect("a segment");
    let bytes = fs.read_file(last).expect("segment bytes");
    // The written part ends where the zero padding starts.
    let written = bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |at| at + 1) as u64;
    let committed = outcome.states.len() as u64 - 1;
    let mut cuts = 0;
    // The segment header is written and synced before the file gets its name, so a crash
    // can only tear frames: cut anywhere after the header.
    let header_bytes = cairn_log::SEGMENT_HEADER_BYTES;
    for cut in written.saturating_sub(3_000).max(header_bytes)..=written {
        let image = fs.crash(KEEP_EVERYTHING);
        image.truncate(last, cut).expect("truncate");
        let version = recover(&image, &outcome, 0, false)
            .unwrap_or_else(|error| panic!("cut at byte {cut} of {}: {error}", last.display()));
        assert!(version <= committed);
        if cut == written {
            assert_eq!(
                version, committed,
                "an untouched WAL must recover everything"
            );
        }
        // The torn tail is gone for good: a later commit survives another reopen.
        let db = Db::open(fault_options(&image, Durability::Strict)).expect("reopen");
        db.put("after", "cut").expect("put after recovery");
        db.close().expect("close");
        let db = Db::open(fault_options(&image, Durability::Strict)).expect("reopen again");
        assert_eq!(
            db.get("after").expect("get").as_deref(),
            Some(&b"cut"[..]),
            "cut at {cut}"
        );
        cuts += 1;
    }
    assert!(cuts > 1_000, "only {cuts} cuts");
}

#[test]
fn every_bit_flip_in_a_small_wal_loses_at_most_the_last_commit_or_reports_corruption() {
    let counts =
        common::wal_bit_flip_matrix(&|fs: &Arc<FaultFs>| fault_options(fs, Durability::Strict))
            .unwrap_or_else(|error| panic!("{error}"));
    assert!(counts.flips > 10_000, "only {counts:?}");
    assert!(
        counts.corrupted > 1_000,
        "too few flips reported as corruption: {counts:?}"
    );
}

#[test]
fn every_bit_flip_in_a_small_snapshot_falls_back_or_reports_corruption() {
    let (fs, outcome) = small_database(30, true);
    let snapshots = files_ending(&fs, ".snap");
    assert_eq!(snapshots.len(), 1, "one checkpoint was taken");
    let snapshot = &snapshots[0];
    let len = fs.file_len(snapshot).expect("snapshot length");
    let committed = outcome.states.len() as u64 - 1;
    for bit in 0..len * 8 {
        let image = fs.crash(KEEP_EVERYTHING);
        image.flip_bit(snapshot, bit).expect("flip");
        // With only one snapshot and the whole WAL kept, recovery falls back to replaying the
        // WAL from the start: everything comes back, and the damaged snapshot is reported.
        let db = Db::open(fault_options(&image, Durability::Strict))
            .unwrap_or_else(|error| panic!("bit {bit}: {error}"));
        let version = check_recovered(&db, &outcome, committed)
            .unwrap_or_else(|error| panic!("bit {bit}: {error}"));
        assert_eq!(version, committed);
        assert_eq!(
            db.recovery_report().snapshots_rejected.len(),
            1,
            "bit {bit}"
        );
    }
}

#[test]
fn a_snapshot_or_segment_of_another_database_in_the_image_is_refused_and_nothing_is_replayed() {
    let (ours, outcome) = small_database(30, true);
    let (theirs, _) = small_database(60, true);
    let committed = outcome.states.len() as u64 - 1;
    let their_snapshots = files_ending(&theirs, ".snap");
    let their_segments = files_ending(&theirs, ".wal");
    let our_segments = files_ending(&ours, ".wal");
    let mut foreign: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for snapshot in &their_snapshots {
        // Under its own name, which may be newer than everything of ours.
        foreign.push((
            snapshot.clone(),
            theirs.read_file(snapshot).expect("their snapshot"),
        ));
    }
    for (index, segment) in their_segments.iter().enumerate() {
        // In place of one of ours, under our segment's name.
        let target = our_segments
            .get(index)
            .cloned()
            .unwrap_or_else(|| segment.clone());
        foreign.push((target, theirs.read_file(segment).expect("their segment")));
    }
    assert!(foreign.len() >= 2);
    for (path, bytes) in &foreign {
        let image = ours.crash(KEEP_EVERYTHING);
        let replaced = image.read_file(path);
        image
            .write_file(path, bytes)
            .expect("copy a foreign file in");
        match Db::open(fault_options(&image, Durability::Strict)) {
            Err(Error::ForeignFile { file, .. }) => assert_eq!(&file, path),
            Ok(_) => panic!("{} of another database was accepted", path.display()),
            Err(error) => panic!("{}: expected ForeignFile, got {error}", path.display()),
        }
        // Put back what was there: the database opens whole, nothing of theirs in it.
        match replaced {
            Some(original) => image.write_file(path, &original).expect("restore"),
            None => image.remove_file(path).expect("remove the foreign file"),
        }
        let db = Db::open(fault_options(&image, Durability::Strict)).expect("reopen");
        let version = check_recovered(&db, &outcome, committed)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(version, committed);
    }
}

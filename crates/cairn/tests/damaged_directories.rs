//! Damaged or unusual data directories that recovery must refuse, or handle, without losing
//! commits silently: a snapshot header whose entry count would exhaust memory, the only
//! snapshot damaged with no WAL to fall back on, a WAL that ends below the snapshot, and a
//! directory lock that must be free as soon as the last handle is dropped.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::{Db, Durability, Error, Options, RecoveryMode, WriteBatch};
use cairn_log::frame::{decode_frame, Decoded};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "cairn-damaged-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn quiet(dir: &Path) -> Options {
    Options::new(dir).maintenance_interval(Duration::ZERO)
}

/// The files of `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// A Strict database in `dir` with `keys` keys and one checkpoint at the last version.
fn checkpointed_database(dir: &Path, keys: u64) {
    let db = Db::open(quiet(dir)).expect("open");
    for index in 0..keys {
        db.put(format!("key-{index:04}"), format!("value-{index}"))
            .expect("put");
    }
    db.checkpoint().expect("checkpoint");
    db.close().expect("close");
    let report = cairn::verify(dir).expect("verify");
    assert!(report.is_intact(), "{:?}", report.damage);
    assert!(report.would_open.strict);
}

/// Recomputes a snapshot header's checksum: the last 4 bytes of the header, over the bytes
/// before them (`header_bytes` is the u32 at offset 12).
fn reseal_snapshot_header(bytes: &mut [u8]) {
    let header_bytes = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let crc_offset = header_bytes - 4;
    let crc = crc32c(&bytes[..crc_offset]);
    bytes[crc_offset..header_bytes].copy_from_slice(&crc.to_le_bytes());
}

/// crc32c (Castagnoli), bitwise: enough for a test that patches one header.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_snapshot_header_counting_billions_of_entries_in_a_sparse_file_is_refused_not_allocated() {
    let dir = TempDir::new("sparse");
    checkpointed_database(&dir.0, 10);
    let snapshot = files_ending(&dir.0, ".snap").pop().expect("a snapshot");
    let mut bytes = std::fs::read(&snapshot).expect("read the snapshot");
    // 2^31 entries in one block: 2^31 * 25 bytes is ~54 GB, a sparse file on most systems.
    let entries: u64 = 1 << 31;
    bytes[32..40].copy_from_slice(&entries.to_le_bytes());
    reseal_snapshot_header(&mut bytes);
    std::fs::write(&snapshot, &bytes).expect("write the header back");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&snapshot)
        .expect("open the snapshot");
    if file.set_len(entries * 25 + 4096).is_err() {
        eprintln!("skipped: this file system cannot hold a sparse 54 GB file");
        return;
    }
    drop(file);
    // Without a WAL to fall back on, the damaged only snapshot must be refused; before the
    // fix, sizing the index from the header aborted the process instead.
    for segment in files_ending(&dir.0, ".wal") {
        std::fs::remove_file(segment).expect("remove a segment");
    }
    match Db::open(quiet(&dir.0)) {
        Err(Error::Corrupted { file, .. }) => assert_eq!(file, snapshot),
        other => panic!("expected Corrupted naming the snapshot, got {other:?}"),
    }
}

#[test]
fn the_only_snapshot_damaged_and_no_wal_is_refused_unless_salvage_reports_it() {
    let dir = TempDir::new("only-snapshot");
    checkpointed_database(&dir.0, 20);
    for segment in files_ending(&dir.0, ".wal") {
        std::fs::remove_file(segment).expect("remove a segment");
    }
    let snapshot = files_ending(&dir.0, ".snap").pop().expect("a snapshot");
    let mut bytes = std::fs::read(&snapshot).expect("read the snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&snapshot, &bytes).expect("damage the snapshot");

    match Db::open(quiet(&dir.0)) {
        Err(Error::Corrupted { file, reason, .. }) => {
            assert_eq!(file, snapshot);
            assert!(reason.contains("version 20"), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    // `cairn::verify` agrees: the loss makes it Salvage-only.
    let report = cairn::verify(&dir.0).expect("verify");
    assert!(
        report
            .damage
            .iter()
            .any(|damage| damage.kind == cairn::DamageKind::Lost && damage.file == snapshot),
        "{:?}",
        report.damage
    );
    assert!(!report.would_open.strict && report.would_open.salvage);
    let db = Db::open(quiet(&dir.0).recovery_mode(RecoveryMode::Salvage)).expect("salvage");
    let report = db.recovery_report();
    assert_eq!(report.last_version.get(), 0);
    assert!(
        report
            .salvaged
            .iter()
            .any(|dropped| dropped.file == snapshot),
        "{:?}",
        report.salvaged
    );
    assert_eq!(report.snapshots_rejected.len(), 1);
    db.close().expect("close");
}

#[test]
fn a_wal_that_ends_below_the_snapshot_is_refused() {
    let dir = TempDir::new("wal-below");
    checkpointed_database(&dir.0, 10);
    let segments = files_ending(&dir.0, ".wal");
    assert_eq!(segments.len(), 1, "{segments:?}");
    let bytes = std::fs::read(&segments[0]).expect("read the segment");
    // Keep the header and the first 7 frames: the WAL then ends at LSN 7, the snapshot at 10.
    let mut end = usize::try_from(cairn_log::SEGMENT_HEADER_BYTES).expect("small");
    for _ in 0..7 {
        match decode_frame(&bytes[end..], usize::MAX) {
            Decoded::Frame { frame_bytes, .. } => end += frame_bytes,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    std::fs::write(&segments[0], &bytes[..end]).expect("cut the segment");

    match Db::open(quiet(&dir.0)) {
        Err(Error::Corrupted { reason, .. }) => {
            assert!(reason.contains("ends at LSN 7"), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    // Salvage keeps the snapshot, reports the gap, and the next strict open is clean again.
    let db = Db::open(quiet(&dir.0).recovery_mode(RecoveryMode::Salvage)).expect("salvage");
    assert_eq!(db.recovery_report().last_version.get(), 10);
    assert_eq!(db.recovery_report().salvaged.len(), 1);
    assert_eq!(
        db.get("key-0009").expect("get").as_deref(),
        Some(&b"value-9"[..])
    );
    db.close().expect("close");
    let db = Db::open(quiet(&dir.0)).expect("a strict open after the salvage");
    assert_eq!(db.recovery_report().last_version.get(), 10);
    db.close().expect("close");
}

/// Writes about `bytes` of WAL to `db` in batches of distinct keys starting at `first`.
fn write_wal_bytes(db: &Db, first: u64, bytes: u64) -> u64 {
    let per_key = 64_u64;
    let keys = bytes / per_key;
    for batch_start in (first..first + keys).step_by(1_000) {
        let mut batch = WriteBatch::new();
        for index in batch_start..(batch_start + 1_000).min(first + keys) {
            batch.put(format!("key-{index:010}"), [b'v'; 40]);
        }
        db.write(&batch).expect("write a batch");
    }
    first + keys
}

#[test]
fn dropping_the_last_handle_during_an_automatic_checkpoint_releases_the_lock_at_once() {
    let dir = TempDir::new("lock");
    let options = || {
        Options::new(&dir.0)
            .durability(Durability::buffered())
            .checkpoint_wal_bytes(1 << 20)
            .maintenance_interval(Duration::from_millis(1))
    };
    let mut db = Db::open(options()).expect("open");
    // Enough keys that writing a snapshot takes a while.
    let mut next_key = write_wal_bytes(&db, 0, 2 << 20);
    let mut dropped_during_a_checkpoint = 0;
    for attempt in 0..20 {
        // Wait out a checkpoint the writes above may have started, then write just enough
        // WAL for the next one.
        while !files_ending(&dir.0, ".snap.tmp").is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let checkpoints_before = db.stats().checkpoints;
        next_key = write_wal_bytes(&db, next_key, (1 << 20) + (64 << 10));
        let started = Instant::now();
        let mut seen = false;
        while started.elapsed() < Duration::from_secs(30) {
            if !files_ending(&dir.0, ".snap.tmp").is_empty() {
                seen = true;
                break;
            }
            if db.stats().checkpoints > checkpoints_before {
                break; // it came and went between two looks: try again
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        drop(db);
        db = match Db::open(options()) {
            Ok(db) => db,
            Err(error) => panic!("attempt {attempt}: reopen right after the drop failed: {error}"),
        };
        if seen {
            dropped_during_a_checkpoint += 1;
            if dropped_during_a_checkpoint == 3 {
                break;
            }
        }
    }
    assert_eq!(
        dropped_during_a_checkpoint, 3,
        "too few drops landed in a checkpoint"
    );
    db.close().expect("close");
}

/// Builds two databases, `ours` with `our_keys` keys and `theirs` with `their_keys`, each
/// checkpointed once at its last version, then closed.
fn two_databases(ours: &Path, our_keys: u64, theirs: &Path, their_keys: u64) {
    checkpointed_database(ours, our_keys);
    let db = Db::open(quiet(theirs)).expect("open theirs");
    for index in 0..their_keys {
        db.put(format!("theirs-{index:04}"), "x").expect("put");
    }
    db.checkpoint().expect("checkpoint");
    db.close().expect("close");
}

#[test]
fn a_snapshot_of_another_database_is_refused_naming_it() {
    let ours = TempDir::new("ours-snapshot");
    let theirs = TempDir::new("theirs-snapshot");
    // Their snapshot is newer than our WAL: before identities, our last commits vanished.
    two_databases(&ours.0, 10, &theirs.0, 30);
    let their_snapshot = files_ending(&theirs.0, ".snap")
        .pop()
        .expect("their snapshot");
    let copied = ours.0.join(their_snapshot.file_name().expect("a name"));
    std::fs::copy(&their_snapshot, &copied).expect("copy their snapshot in");
    let our_id = Db::open(quiet(&theirs.0))
        .map(|db| db.recovery_report().database_id)
        .expect("their database still opens");
    match Db::open(quiet(&ours.0)) {
        Err(Error::ForeignFile {
            file,
            expected,
            found,
        }) => {
            assert_eq!(file, copied);
            assert_ne!(expected, found);
            assert_eq!(found, our_id);
        }
        other => panic!("expected ForeignFile, got {other:?}"),
    }
    // `cairn::verify` says the same, naming the file, and still picks our own snapshot.
    let report = cairn::verify(&ours.0).expect("verify");
    assert!(!report.is_intact());
    assert_eq!(
        report.foreign_files().collect::<Vec<_>>(),
        vec![copied.as_path()]
    );
    assert!(!report.would_open.strict && !report.would_open.salvage);
    assert_eq!(report.replay_after_lsn, 10);
    // Nothing was changed: without the foreign file the database opens whole.
    std::fs::remove_file(&copied).expect("remove the foreign file");
    let db = Db::open(quiet(&ours.0)).expect("open");
    assert_eq!(db.recovery_report().last_version.get(), 10);
    assert_eq!(db.scan_prefix("key-").expect("open").count(), 10);
    assert_eq!(db.scan_prefix("theirs-").expect("open").count(), 0);
    db.close().expect("close");
}

#[test]
fn a_wal_segment_of_another_database_is_refused_naming_it() {
    let ours = TempDir::new("ours-wal");
    let theirs = TempDir::new("theirs-wal");
    two_databases(&ours.0, 10, &theirs.0, 30);
    let their_segment = files_ending(&theirs.0, ".wal")
        .into_iter()
        .next()
        .expect("their segment");
    // Their first segment over ours, under the same name: it checks, its LSNs run on from our
    // snapshot's, so only the identity tells it apart (before, their commits were replayed).
    let copied = ours.0.join(their_segment.file_name().expect("a name"));
    assert!(copied.exists());
    std::fs::copy(&their_segment, &copied).expect("copy their segment in");
    match Db::open(quiet(&ours.0)) {
        Err(Error::ForeignFile { file, .. }) => assert_eq!(file, copied),
        other => panic!("expected ForeignFile, got {other:?}"),
    }
    assert!(
        copied.exists(),
        "a foreign file is never removed or renamed"
    );
}

#[test]
fn a_directory_with_data_files_but_no_identity_file_is_refused() {
    let dir = TempDir::new("no-identity");
    checkpointed_database(&dir.0, 5);
    let identity = dir.0.join("IDENTITY");
    std::fs::remove_file(&identity).expect("remove the identity file");
    match Db::open(quiet(&dir.0)) {
        Err(Error::Corrupted { file, reason, .. }) => {
            assert_eq!(file, identity);
            assert!(reason.contains("no identity file"), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

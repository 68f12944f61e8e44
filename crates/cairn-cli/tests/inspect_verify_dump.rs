//! Integration tests of `cairn inspect`, `cairn verify` and `cairn dump` (test layers 4 and
//! 7 of the design: crash and fault damage, read through the real binary).
//!
//! This process writes a database with the engine (Strict, 4 KiB WAL segments so there are
//! several, a checkpoint in the middle, then puts, a batch, a delete, a TTL put and a binary
//! key), closes it, and runs the `cairn` binary as a child on the directory: `verify` must call
//! it intact with the right record count, `inspect --json` must list the snapshot and segments
//! with LSN ranges that chain, and `dump --format json` replayed into a map must equal what the
//! engine reads after reopening it in this process. Then single faults are applied to fresh copies: a flipped
//! byte in a middle frame of the first segment (exit 1 naming it), the last segment cut inside
//! its last frame (exit 0, torn tail reported), a flipped byte in the snapshot (exit 1 naming
//! it), a missing directory (exit 2). Last, for a sample of flipped bytes in every file,
//! `verify`'s verdict on each recovery mode must match what `Db::open` really does.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn::{Db, Durability, Options, RecoveryMode, WriteBatch};
use serde_json::Value as Json;

mod common;
use common::{describe, json_of, stdout_of};

/// Preallocated WAL segment size: the engine's minimum, so that a few dozen commits rotate.
const SEGMENT_BYTES: u64 = 4096;
/// Puts before the checkpoint and again after it; with 100-byte values about 26 commits fill
/// a segment, so each phase spans more than one segment.
const PUTS_PER_PHASE: usize = 40;
/// The name of the first segment (LSNs start at 1).
const FIRST_SEGMENT: &str = "00000000000000000001.wal";
/// Segment header bytes: frames start here.
const SEGMENT_HEADER_BYTES: usize = 64;
/// Frame bytes around the payload: `len u32 | type u8 | version u8` before, `crc u32` after.
const FRAME_HEADER_BYTES: usize = 6;
const FRAME_TRAILER_BYTES: usize = 4;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cairn-cli-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
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

/// What the writer did.
struct Written {
    /// The version the checkpoint's snapshot shows.
    checkpoint_version: u64,
    /// The version of the last commit.
    final_version: u64,
    /// The expected contents: key -> value.
    expected: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A binary key and value, to exercise escaping.
const BINARY_KEY: &[u8] = b"bin\x00\xff\\key";
const BINARY_VALUE: &[u8] = b"\x01\t\n\"quoted\"";
const TTL_KEY: &[u8] = b"ttl:session";

fn value_for(index: usize, round: u8) -> Vec<u8> {
    let mut value = format!("value-{index:03}-round-{round}-").into_bytes();
    value.resize(100, b'a' + round);
    value
}

/// Writes the database every test starts from and closes it.
fn write_database(dir: &Path) -> Written {
    let db = Db::open(
        Options::new(dir)
            .durability(Durability::Strict)
            .wal_segment_bytes(SEGMENT_BYTES),
    )
    .expect("open a new database");
    let mut expected = BTreeMap::new();
    for index in 0..PUTS_PER_PHASE {
        let key = format!("key-{index:03}").into_bytes();
        let value = value_for(index, 0);
        db.put(&key, &value).expect("put before the checkpoint");
        expected.insert(key, value);
    }
    let checkpoint = db.checkpoint().expect("checkpoint");
    for index in PUTS_PER_PHASE / 2..PUTS_PER_PHASE * 2 {
        let key = format!("key-{index:03}").into_bytes();
        let value = value_for(index, 1);
        db.put(&key, &value).expect("put after the checkpoint");
        expected.insert(key, value);
    }
    let mut batch = WriteBatch::new();
    batch
        .put("batch:a", "first")
        .put("batch:b", "second")
        .delete("key-001");
    db.write(&batch).expect("batch");
    expected.insert(b"batch:a".to_vec(), b"first".to_vec());
    expected.insert(b"batch:b".to_vec(), b"second".to_vec());
    expected.remove(&b"key-001"[..]);
    assert!(db.delete("key-002").expect("delete"), "key-002 was live");
    expected.remove(&b"key-002"[..]);
    db.put_with_ttl(TTL_KEY, "alive", Duration::from_secs(3_600))
        .expect("TTL put");
    expected.insert(TTL_KEY.to_vec(), b"alive".to_vec());
    db.put(BINARY_KEY, BINARY_VALUE).expect("binary put");
    expected.insert(BINARY_KEY.to_vec(), BINARY_VALUE.to_vec());
    let final_version = db.version().get();
    db.close().expect("close");
    drop(db);
    Written {
        checkpoint_version: checkpoint.version.get(),
        final_version,
        expected,
    }
}

/// Reopens the database in this process and reads every key.
fn read_back(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = Db::open(Options::new(dir).wal_segment_bytes(SEGMENT_BYTES)).expect("reopen");
    let contents = db
        .scan_prefix("")
        .expect("scan of an open database")
        .map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect();
    db.close().expect("close after reading");
    contents
}

fn cairn(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .arg(dir)
        .output()
        .expect("run the cairn binary")
}

fn u64_at(json: &Json, pointer: &str) -> u64 {
    json.pointer(pointer)
        .and_then(Json::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {json:#}"))
}

fn str_at<'a>(json: &'a Json, pointer: &str) -> &'a str {
    json.pointer(pointer)
        .and_then(Json::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {json:#}"))
}

/// The escaping `cairn dump` documents: printable ASCII as is, `\\`, `\xNN` for the rest.
fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&byte| match byte {
            b'\\' => "\\\\".to_owned(),
            b' '..=b'~' => char::from(byte).to_string(),
            _ => format!("\\x{byte:02x}"),
        })
        .collect()
}

fn escaped(contents: &BTreeMap<Vec<u8>, Vec<u8>>) -> BTreeMap<String, String> {
    contents
        .iter()
        .map(|(key, value)| (escape(key), escape(value)))
        .collect()
}

/// The frames of a segment file: `(offset, frame bytes)` of each, read with the documented
/// layout.
fn frames_of(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while let Some(len_bytes) = segment.get(offset..offset + 4) {
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        if len == 0 {
            break;
        }
        let frame_bytes = FRAME_HEADER_BYTES + len + FRAME_TRAILER_BYTES;
        frames.push((offset, frame_bytes));
        offset += frame_bytes;
    }
    frames
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| {
            Path::new(name)
                .extension()
                .is_some_and(|extension| extension == "wal")
        })
        .collect();
    names.sort();
    names
}

fn snapshot_name(version: u64) -> String {
    format!("snapshot-{version:020}.snap")
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read the file to damage");
    bytes[offset] ^= 0x5A;
    std::fs::write(path, bytes).expect("write the damaged file");
}

#[test]
fn verify_calls_an_intact_database_intact_and_counts_every_record() {
    let dir = TempDir::new("verify-intact");
    let written = write_database(&dir.0);
    assert!(written.checkpoint_version > 0);
    assert!(written.final_version > written.checkpoint_version);

    let verified = cairn(&["verify", "--json"], &dir.0);
    assert_eq!(verified.status.code(), Some(0), "{}", describe(&verified));
    let report = json_of(&verified);
    assert_eq!(str_at(&report, "/status"), "intact");
    assert_eq!(
        str_at(&report, "/snapshot_used"),
        snapshot_name(written.checkpoint_version)
    );
    assert_eq!(
        u64_at(&report, "/replay_after_lsn"),
        written.checkpoint_version
    );
    // One checkpoint keeps the whole WAL (segments go only once two snapshots cover them).
    assert_eq!(u64_at(&report, "/wal/first_lsn"), 1);
    assert_eq!(u64_at(&report, "/wal/last_lsn"), written.final_version);
    assert_eq!(u64_at(&report, "/wal/records"), written.final_version);
    assert_eq!(
        u64_at(&report, "/wal/records_decoded"),
        written.final_version
    );
    assert_eq!(
        u64_at(&report, "/wal/records_after_snapshot"),
        written.final_version - written.checkpoint_version
    );
    // Puts: 40 + 60 + 2 (batch) + 1 (TTL) + 1 (binary); deletes: 1 (batch) + 1.
    assert_eq!(u64_at(&report, "/wal/puts"), 104);
    assert_eq!(u64_at(&report, "/wal/deletes"), 2);
    assert!(report.pointer("/wal/torn_tail").is_some_and(Json::is_null));
    assert_eq!(report.pointer("/damage"), Some(&Json::Array(Vec::new())));
    assert_eq!(report["would_open"]["strict"], Json::Bool(true));

    let text = cairn(&["verify"], &dir.0);
    assert_eq!(text.status.code(), Some(0), "{}", describe(&text));
    let text_out = stdout_of(&text);
    assert!(text_out.contains("result: INTACT"), "{text_out}");
    assert!(
        text_out.contains(&format!("{} records", written.final_version)),
        "{text_out}"
    );

    // The cross-process check: the engine reopens what it wrote with every write present,
    // and that reopening leaves a directory verify still calls intact.
    assert_eq!(read_back(&dir.0), written.expected);
    let again = cairn(&["verify", "--json"], &dir.0);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert_eq!(
        u64_at(&json_of(&again), "/wal/last_lsn"),
        written.final_version
    );
}

#[test]
fn inspect_lists_the_snapshot_and_segments_whose_lsn_ranges_chain() {
    let dir = TempDir::new("inspect");
    let written = write_database(&dir.0);
    let inspected = cairn(&["inspect", "--json"], &dir.0);
    assert_eq!(inspected.status.code(), Some(0), "{}", describe(&inspected));
    let inspect = json_of(&inspected);
    let snapshots = inspect["snapshots"].as_array().expect("snapshots array");
    assert_eq!(snapshots.len(), 1, "{inspect:#}");
    assert_eq!(
        u64_at(&snapshots[0], "/version"),
        written.checkpoint_version
    );
    assert_eq!(
        u64_at(&snapshots[0], "/wal_lsn"),
        written.checkpoint_version
    );
    assert_eq!(u64_at(&snapshots[0], "/entries"), PUTS_PER_PHASE as u64);
    assert_eq!(snapshots[0]["header_valid"], Json::Bool(true));
    let segments = inspect["segments"].as_array().expect("segments array");
    assert!(
        segments.len() >= 4,
        "expected several segments: {inspect:#}"
    );
    let mut next_lsn = 1;
    for segment in segments {
        assert_eq!(segment["header_valid"], Json::Bool(true), "{segment:#}");
        assert_eq!(u64_at(segment, "/first_lsn"), next_lsn, "{segment:#}");
        assert_eq!(u64_at(segment, "/file_bytes"), SEGMENT_BYTES, "{segment:#}");
        let frames = u64_at(segment, "/frames");
        if frames > 0 {
            assert_eq!(
                u64_at(segment, "/last_lsn"),
                next_lsn + frames - 1,
                "{segment:#}"
            );
        }
        assert!(u64_at(segment, "/bytes_used") <= SEGMENT_BYTES);
        assert_eq!(str_at(segment, "/stop/kind"), "zeros", "{segment:#}");
        next_lsn += frames;
    }
    assert_eq!(next_lsn, written.final_version + 1);
    assert_eq!(u64_at(&inspect, "/totals/frames"), written.final_version);
    assert_eq!(u64_at(&inspect, "/totals/first_lsn"), 1);
    assert_eq!(u64_at(&inspect, "/totals/last_lsn"), written.final_version);
    assert_eq!(str_at(&inspect, "/lock"), "free");

    let text = cairn(&["inspect"], &dir.0);
    assert_eq!(text.status.code(), Some(0), "{}", describe(&text));
    let text_out = stdout_of(&text);
    assert!(
        text_out.contains(&snapshot_name(written.checkpoint_version)),
        "{text_out}"
    );
    assert!(text_out.contains(FIRST_SEGMENT), "{text_out}");
    assert!(
        text_out.contains(&format!("LSN 1..={}", written.final_version)),
        "{text_out}"
    );
}

/// Applies `cairn dump --format json` lines in order to an empty map, checking each line's
/// shape; returns the map and the WAL LSNs seen.
fn replay_dump(stdout: &str, checkpoint_version: u64) -> (BTreeMap<String, String>, Vec<u64>) {
    let mut replayed = BTreeMap::new();
    let mut wal_lsns = Vec::new();
    for line in stdout.lines() {
        let record: Json = serde_json::from_str(line).expect("one JSON object per line");
        match str_at(&record, "/source") {
            "snapshot" => {
                assert!(u64_at(&record, "/version") <= checkpoint_version);
                assert!(record["deadline_millis"].is_null(), "{record}");
                replayed.insert(
                    str_at(&record, "/key").to_owned(),
                    str_at(&record, "/value").to_owned(),
                );
            }
            "wal" => {
                assert_eq!(u64_at(&record, "/lsn"), u64_at(&record, "/version"));
                wal_lsns.push(u64_at(&record, "/lsn"));
                for mutation in record["mutations"].as_array().expect("mutations") {
                    let key = str_at(mutation, "/key").to_owned();
                    match str_at(mutation, "/op") {
                        "put" => {
                            let has_deadline = mutation["deadline_millis"].is_u64();
                            assert_eq!(has_deadline, key == escape(TTL_KEY), "{mutation}");
                            replayed.insert(key, str_at(mutation, "/value").to_owned());
                        }
                        "delete" => {
                            replayed.remove(&key);
                        }
                        other => panic!("unknown op {other}"),
                    }
                }
            }
            other => panic!("unknown source {other}"),
        }
    }
    (replayed, wal_lsns)
}

#[test]
fn dump_replays_to_exactly_what_the_engine_reads_after_reopening() {
    let dir = TempDir::new("dump");
    let written = write_database(&dir.0);
    let dumped = cairn(&["dump", "--format", "json"], &dir.0);
    assert_eq!(dumped.status.code(), Some(0), "{}", describe(&dumped));
    let stdout = stdout_of(&dumped);
    let snapshot_lines = stdout
        .lines()
        .filter(|line| line.starts_with(r#"{"source":"snapshot""#))
        .count();
    assert_eq!(snapshot_lines, PUTS_PER_PHASE);
    let (replayed, wal_lsns) = replay_dump(&stdout, written.checkpoint_version);
    let expected_lsns: Vec<u64> =
        (written.checkpoint_version + 1..=written.final_version).collect();
    assert_eq!(wal_lsns, expected_lsns);

    let read = read_back(&dir.0);
    assert_eq!(read, written.expected);
    assert_eq!(replayed, escaped(&read));
    assert!(replayed.contains_key(&escape(BINARY_KEY)));
}

#[test]
fn dump_text_lines_and_the_limit_and_lsn_options() {
    let dir = TempDir::new("dump-text");
    write_database(&dir.0);
    let limited = cairn(&["dump", "--limit", "3"], &dir.0);
    assert_eq!(limited.status.code(), Some(0), "{}", describe(&limited));
    let limited_out = stdout_of(&limited);
    assert_eq!(limited_out.lines().count(), 3, "{limited_out}");
    assert!(
        limited_out.starts_with(&format!(
            "snapshot\tversion=1\tkey=key-000\tvalue={}\tdeadline_millis=none\n",
            escape(&value_for(0, 0))
        )),
        "{limited_out}"
    );
    let wal_only = cairn(
        &["dump", "--wal-only", "--from-lsn", "5", "--limit", "1"],
        &dir.0,
    );
    assert_eq!(wal_only.status.code(), Some(0), "{}", describe(&wal_only));
    assert!(
        stdout_of(&wal_only).starts_with("wal\tlsn=5\tversion=5\tput\tkey=key-004\t"),
        "{}",
        describe(&wal_only)
    );
    let snapshot_only = cairn(&["dump", "--snapshot-only"], &dir.0);
    assert_eq!(
        snapshot_only.status.code(),
        Some(0),
        "{}",
        describe(&snapshot_only)
    );
    assert_eq!(stdout_of(&snapshot_only).lines().count(), PUTS_PER_PHASE);
}

#[test]
fn a_flipped_byte_in_a_middle_frame_of_the_first_segment_is_damage_named_by_file() {
    let dir = TempDir::new("flip-frame");
    write_database(&dir.0);
    let path = dir.0.join(FIRST_SEGMENT);
    let bytes = std::fs::read(&path).expect("read the first segment");
    let frames = frames_of(&bytes);
    assert!(
        frames.len() >= 10,
        "the first segment holds {} frames",
        frames.len()
    );
    let (frame_offset, frame_bytes) = frames[frames.len() / 2];
    flip_byte(&path, frame_offset + frame_bytes / 2);

    let output = cairn(&["verify", "--json"], &dir.0);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json_of(&output);
    assert_eq!(str_at(&report, "/status"), "damaged");
    assert_eq!(str_at(&report, "/damage/0/kind"), "wal");
    assert_eq!(str_at(&report, "/damage/0/file"), FIRST_SEGMENT);
    assert_eq!(u64_at(&report, "/damage/0/offset"), frame_offset as u64);
    assert_eq!(report["would_open"]["strict"], Json::Bool(false));
    assert_eq!(report["would_open"]["salvage"], Json::Bool(true));

    let text = cairn(&["verify"], &dir.0);
    assert_eq!(text.status.code(), Some(1), "{}", describe(&text));
    let text_out = stdout_of(&text);
    assert!(
        text_out.contains(&format!("{FIRST_SEGMENT} at byte offset {frame_offset}")),
        "{text_out}"
    );
    assert!(
        text_out.contains("RecoveryMode::Salvage would open it"),
        "{text_out}"
    );
    assert!(text_out.contains("result: DAMAGED"), "{text_out}");

    // dump prints what lies before the damage and exits 1.
    let dumped = cairn(&["dump", "--wal-only"], &dir.0);
    assert_eq!(dumped.status.code(), Some(1), "{}", describe(&dumped));
    assert_eq!(stdout_of(&dumped).lines().count(), frames.len() / 2);
}

#[test]
fn a_last_segment_cut_inside_its_last_frame_is_an_intact_torn_tail() {
    let dir = TempDir::new("torn");
    let written = write_database(&dir.0);
    let last = segment_names(&dir.0).pop().expect("a segment");
    let path = dir.0.join(&last);
    let bytes = std::fs::read(&path).expect("read the last segment");
    let (frame_offset, frame_bytes) = *frames_of(&bytes)
        .last()
        .expect("a frame in the last segment");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open the last segment");
    file.set_len((frame_offset + frame_bytes / 2) as u64)
        .expect("truncate inside the last frame");
    drop(file);

    let output = cairn(&["verify", "--json"], &dir.0);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let report = json_of(&output);
    assert_eq!(str_at(&report, "/status"), "intact");
    assert_eq!(str_at(&report, "/wal/torn_tail/file"), last);
    assert_eq!(
        u64_at(&report, "/wal/torn_tail/offset"),
        frame_offset as u64
    );
    assert_eq!(u64_at(&report, "/wal/last_lsn"), written.final_version - 1);
    assert_eq!(u64_at(&report, "/wal/records"), written.final_version - 1);

    let text = cairn(&["verify"], &dir.0);
    assert_eq!(text.status.code(), Some(0), "{}", describe(&text));
    assert!(
        stdout_of(&text).contains(&format!("torn tail: {last} at byte offset {frame_offset}")),
        "{}",
        describe(&text)
    );
}

#[test]
fn a_flipped_byte_in_the_snapshot_is_damage_named_by_file() {
    let dir = TempDir::new("flip-snapshot");
    let written = write_database(&dir.0);
    let name = snapshot_name(written.checkpoint_version);
    let path = dir.0.join(&name);
    let length = std::fs::metadata(&path).expect("snapshot metadata").len();
    flip_byte(&path, usize::try_from(length / 2).expect("small file"));

    let output = cairn(&["verify", "--json"], &dir.0);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json_of(&output);
    assert_eq!(str_at(&report, "/damage/0/kind"), "snapshot");
    assert_eq!(str_at(&report, "/damage/0/file"), name);
    assert_eq!(report["snapshots"][0]["valid"], Json::Bool(false));
    assert!(report["snapshot_used"].is_null());
    // The whole WAL is still there, so recovery falls back to it.
    assert_eq!(report["would_open"]["strict"], Json::Bool(true));
    assert_eq!(
        u64_at(&report, "/wal/records_after_snapshot"),
        written.final_version
    );

    let text = cairn(&["verify"], &dir.0);
    assert_eq!(text.status.code(), Some(1), "{}", describe(&text));
    assert!(
        stdout_of(&text).contains(&format!("{name} at byte offset")),
        "{}",
        describe(&text)
    );
}

#[test]
fn a_missing_directory_could_not_be_verified() {
    let dir = TempDir::new("missing");
    for command in ["verify", "inspect", "dump"] {
        let output = cairn(&[command], &dir.0.join("not-there"));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{command}: {stderr}");
        assert!(output.stdout.is_empty(), "{command}: {}", describe(&output));
    }
}

/// Copies every file of `from` into a new directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list the original") {
        let entry = entry.expect("directory entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a file");
    }
}

/// Whether the engine opens `dir` in `mode`, tried on a copy so `dir` stays as it is.
fn engine_opens(dir: &Path, mode: RecoveryMode) -> bool {
    let copy = TempDir::new("open-copy");
    copy_dir(dir, &copy.0);
    let opened = Db::open(
        Options::new(&copy.0)
            .wal_segment_bytes(SEGMENT_BYTES)
            .recovery_mode(mode),
    );
    match opened {
        Ok(db) => {
            db.close().expect("close the copy");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn verify_predicts_what_the_engine_does_with_each_flipped_byte() {
    let original = TempDir::new("predict");
    write_database(&original.0);
    let mut names: Vec<String> = segment_names(&original.0);
    names.push(snapshot_name(PUTS_PER_PHASE as u64));
    let mut cases = 0;
    let mut outcomes = [0_usize; 3];
    for name in &names {
        let length = std::fs::metadata(original.0.join(name))
            .expect("file metadata")
            .len();
        let length = usize::try_from(length).expect("small file");
        // The header, a few frames or blocks, the footer or the zeroed tail.
        let offsets = [
            0,
            20,
            44,
            60,
            100,
            length / 3,
            length / 2,
            length - 30,
            length - 1,
        ];
        for offset in offsets {
            let case = TempDir::new("predict-case");
            copy_dir(&original.0, &case.0);
            flip_byte(&case.0.join(name), offset);
            let output = cairn(&["verify", "--json"], &case.0);
            let code = output.status.code();
            assert!(
                matches!(code, Some(0 | 1)),
                "{name}@{offset}: {}",
                describe(&output)
            );
            let report = json_of(&output);
            let predicted_strict = report["would_open"]["strict"].as_bool();
            let predicted_salvage = report["would_open"]["salvage"].as_bool();
            assert_eq!(
                predicted_strict,
                Some(engine_opens(&case.0, RecoveryMode::Strict)),
                "{name}@{offset}: {report:#}"
            );
            assert_eq!(
                predicted_salvage,
                Some(engine_opens(&case.0, RecoveryMode::Salvage)),
                "{name}@{offset}: {report:#}"
            );
            let index = match (code, predicted_strict) {
                (Some(0), _) => 0,
                (_, Some(true)) => 1,
                _ => 2,
            };
            outcomes[index] += 1;
            cases += 1;
        }
    }
    assert_eq!(cases, names.len() * 9);
    // The sample must exercise every verdict: intact (flips in a zeroed tail of the last
    // segment are a torn tail), damaged but openable, and damaged needing a salvage.
    assert!(outcomes.iter().all(|&count| count > 0), "{outcomes:?}");
}

#[test]
fn a_snapshot_of_another_database_shows_as_damaged_and_foreign_naming_it() {
    let ours = TempDir::new("foreign-ours");
    let theirs = TempDir::new("foreign-theirs");
    let written = write_database(&ours.0);
    // Their snapshot is newer than everything in our WAL.
    let db = Db::open(Options::new(&theirs.0)).expect("open theirs");
    for index in 0..written.final_version + 10 {
        db.put(format!("theirs-{index}"), "x").expect("put");
    }
    let checkpoint = db.checkpoint().expect("checkpoint theirs");
    db.close().expect("close theirs");
    let name = snapshot_name(checkpoint.version.get());
    std::fs::copy(theirs.0.join(&name), ours.0.join(&name)).expect("copy their snapshot in");

    let output = cairn(&["verify", "--json"], &ours.0);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report = json_of(&output);
    assert_eq!(str_at(&report, "/damage/0/kind"), "foreign");
    assert_eq!(str_at(&report, "/damage/0/file"), name);
    assert_eq!(str_at(&report, "/foreign/0"), name);
    assert_eq!(report["would_open"]["strict"], Json::Bool(false));
    assert_eq!(report["would_open"]["salvage"], Json::Bool(false));
    // Recovery ignores the foreign file when choosing: it would load our own snapshot.
    assert_eq!(
        str_at(&report, "/snapshot_used"),
        snapshot_name(written.checkpoint_version)
    );

    let text = cairn(&["verify"], &ours.0);
    assert_eq!(text.status.code(), Some(1), "{}", describe(&text));
    let stdout = stdout_of(&text);
    assert!(
        stdout.contains(&format!("result: DAMAGED/FOREIGN: {name}")),
        "{}",
        describe(&text)
    );
    assert!(stdout.contains("Error::ForeignFile"), "{}", describe(&text));
}

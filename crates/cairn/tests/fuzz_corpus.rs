//! Fuzz corpus replay (test layer 6): every file of `fuzz/corpus/<target>/` is run through the
//! same property check as the fuzz target of that name, as an ordinary test on stable Rust.
//!
//! Four decoders read untrusted bytes: the WAL frame (`cairn_log::frame::decode_frame`), the
//! snapshot file (`decode_snapshot_bytes`), the commit record body (`decode_commit_count`) and
//! the WAL segment header (`SegmentHeader::decode`). The checks live in `fuzz_checks/mod.rs`,
//! which the fuzz targets include too, so the replay and the fuzzer check exactly the same
//! properties. Each check returns whether the input
//! decoded and asserts what must hold either way: a decoded frame, segment header or commit
//! body re-encodes to exactly its bytes; a decoded snapshot visited as many entries as its
//! header counts, keys strictly ascending.
//!
//! File names carry expectations, so the replay can fail: `valid-*` seeds must decode (and are
//! unchanged by resealing their checksums), `invalid-*` seeds must be refused; other names
//! (what the fuzzer found, `mutated-*` seeds) only have to satisfy the properties. Inputs
//! whose checksums a check can recompute are also checked resealed, as the fuzz targets do.
//!
//! The seeds come from `regenerate_seed_corpus` (ignored; run it with `--ignored` after a
//! format change), which builds them with the real encoders: `encode_frame`,
//! `SnapshotWriter`, `SegmentHeader::encode`, and a small Strict database whose WAL and
//! checkpoint supply real frames, commit bodies, a segment header and a snapshot. Regeneration
//! is reproducible (a manual clock, the snapshot's creation time pinned), so a format change
//! shows up as a diff of the corpus. Trade-off: the seeds pin the current formats; after a
//! format change the fuzzer's finds may need pruning too.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::collections::BTreeMap;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn::fuzzing::{DecodedWrite, SnapshotEntry, SnapshotWriter, SNAPSHOT_DEADLINE_NONE};
use cairn::{DatabaseId, Db, ManualClock, Options, StdFileSystem, WriteBatch};
use cairn_log::frame::{decode_frame, encode_frame, Decoded};
use cairn_log::segment::SegmentHeader;

/// Fewest files a target's corpus may hold: the seeds alone are more than this, so a smaller
/// directory means the corpus went missing.
const CORPUS_FILES_MIN: usize = 15;

/// Fewest `valid-*` seeds a target's corpus may hold.
const VALID_SEEDS_MIN: usize = 3;

/// Fewest `invalid-*` seeds a target's corpus may hold.
const INVALID_SEEDS_MIN: usize = 3;

/// Most files a target's corpus may hold; minimize (`cargo fuzz cmin`) past this.
const CORPUS_FILES_MAX: usize = 200;

/// The database id written into generated headers: a real database's is random, and a fixed
/// one keeps regeneration reproducible.
const CORPUS_DATABASE_ID: DatabaseId = DatabaseId::from_bytes(*b"fuzz-corpus-id!!");

/// Largest corpus file, so the repository stays small and the replay fast.
const CORPUS_FILE_BYTES_MAX: usize = 64 * 1024;

/// The corpus of one fuzz target.
fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

mod fuzz_checks;

use fuzz_checks::{
    check_commit_record, check_segment_header, check_snapshot, check_wal_frame, encode_commit_body,
    reseal_segment_header, reseal_snapshot, reseal_wal_frame,
};

// ---------------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------------

/// Leaves an input as it is, for the decoder without a checksum to reseal.
fn no_reseal(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

/// Runs `check` over every file of the target's corpus (and over each file resealed) and
/// fails naming every file that broke a property or its name's expectation.
fn replay(target: &str, check: fn(&[u8]) -> bool, reseal: fn(&[u8]) -> Vec<u8>) {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("read corpus {}: {error}", dir.display()))
        .map(|entry| entry.expect("list a corpus entry").path())
        .collect();
    paths.sort();
    let name_of = |path: &Path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
    };
    let names: Vec<String> = paths.iter().filter_map(|path| name_of(path)).collect();
    let count_prefixed =
        |prefix: &str| names.iter().filter(|name| name.starts_with(prefix)).count();
    assert!(
        (CORPUS_FILES_MIN..=CORPUS_FILES_MAX).contains(&paths.len()),
        "{target}: {} files, expected {CORPUS_FILES_MIN}..={CORPUS_FILES_MAX}",
        paths.len()
    );
    assert!(
        count_prefixed("valid-") >= VALID_SEEDS_MIN,
        "{target}: too few valid-* seeds"
    );
    assert!(
        count_prefixed("invalid-") >= INVALID_SEEDS_MIN,
        "{target}: too few invalid-* seeds"
    );

    let mut failures = Vec::new();
    for (path, name) in paths.iter().zip(&names) {
        let bytes = fs::read(path).unwrap_or_else(|error| panic!("read {name}: {error}"));
        assert!(
            bytes.len() <= CORPUS_FILE_BYTES_MAX,
            "{target}/{name}: {} bytes",
            bytes.len()
        );
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let decoded = check(&bytes);
            let resealed = reseal(&bytes);
            check(&resealed);
            (decoded, resealed == bytes)
        }));
        match outcome {
            Err(_) => failures.push(format!("{name}: a property failed (message above)")),
            Ok((false, _)) if name.starts_with("valid-") => {
                failures.push(format!("{name}: a valid seed was refused"));
            }
            Ok((_, false)) if name.starts_with("valid-") => {
                failures.push(format!("{name}: resealing changed a valid seed"));
            }
            Ok((true, _)) if name.starts_with("invalid-") => {
                failures.push(format!("{name}: an invalid seed decoded"));
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{target}: {failures:#?}");
}

#[test]
fn wal_frame_corpus_holds_its_properties() {
    replay("wal_frame", check_wal_frame, reseal_wal_frame);
}

#[test]
fn snapshot_corpus_holds_its_properties() {
    replay("snapshot", check_snapshot, reseal_snapshot);
}

#[test]
fn commit_record_corpus_holds_its_properties() {
    replay("commit_record", check_commit_record, no_reseal);
}

#[test]
fn segment_header_corpus_holds_its_properties() {
    replay(
        "segment_header",
        check_segment_header,
        reseal_segment_header,
    );
}

/// The reseal helpers must be faithful, or the fuzz targets would check garbage: damage that
/// only broke a checksum is repaired by resealing, so the input decodes again.
#[test]
fn resealing_repairs_a_flipped_checksum() {
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, 3, 3, b"body");
    let mut damaged = frame.clone();
    *damaged.last_mut().expect("a frame is not empty") ^= 1;
    assert!(!check_wal_frame(&damaged));
    assert_eq!(reseal_wal_frame(&damaged), frame);

    let header = SegmentHeader {
        segment_number: 2,
        first_lsn: 5,
        segment_bytes: 4096,
        database_id: CORPUS_DATABASE_ID,
        recycled: false,
    }
    .encode();
    let mut damaged = header.to_vec();
    damaged[60] ^= 1;
    assert!(!check_segment_header(&damaged));
    assert_eq!(reseal_segment_header(&damaged), header);

    let dir = scratch_dir("reseal");
    let snapshot = multi_block_snapshot(&dir);
    fs::remove_dir_all(&dir).expect("remove the reseal scratch directory");
    assert!(check_snapshot(&snapshot));
    for crc_offset in [76, snapshot.len() - 8] {
        let mut damaged = snapshot.clone();
        damaged[crc_offset] ^= 1;
        assert!(!check_snapshot(&damaged), "flip at {crc_offset}");
        assert_eq!(reseal_snapshot(&damaged), snapshot, "flip at {crc_offset}");
    }
}

// ---------------------------------------------------------------------------------------------
// Seed generation
// ---------------------------------------------------------------------------------------------

/// The seeds of one target: file name (`valid-*`, `invalid-*`, `mutated-*`) and bytes.
type Seeds = BTreeMap<String, Vec<u8>>;

/// A fresh empty scratch directory under the system temp directory.
fn scratch_dir(purpose: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cairn-fuzz-corpus-{purpose}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// `bytes` with bit `bit` flipped.
fn flip_bit(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut flipped = bytes.to_vec();
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

/// `bytes` with the little-endian u32 at `offset` replaced by `value`.
fn with_u32(bytes: &[u8], offset: usize, value: u32) -> Vec<u8> {
    let mut changed = bytes.to_vec();
    changed[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    changed
}

/// `bytes` with the little-endian u64 at `offset` replaced by `value`.
fn with_u64(bytes: &[u8], offset: usize, value: u64) -> Vec<u8> {
    let mut changed = bytes.to_vec();
    changed[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    changed
}

/// What a small Strict database wrote: its WAL segment files and snapshot files, whole.
struct DatabaseFiles {
    segments: Vec<Vec<u8>>,
    snapshots: Vec<Vec<u8>>,
}

/// Runs a few commits of every kind (put, TTL put, batch with a delete, `clear_prefix`) with a
/// checkpoint in between through a Strict database with 4 KiB segments, and returns its files.
fn database_files() -> DatabaseFiles {
    let dir = scratch_dir("database");
    let db = Db::open(
        Options::new(&dir)
            .clock(Arc::new(ManualClock::new(1_000_000)))
            .maintenance_interval(Duration::ZERO)
            .wal_segment_bytes(4096),
    )
    .expect("open a small database");
    db.put("alpha", "first value").expect("put");
    db.put_with_ttl("beta", "expires", Duration::from_secs(60))
        .expect("put with ttl");
    let mut batch = WriteBatch::new();
    batch
        .put("gamma/1", "one")
        .put("gamma/2", "")
        .delete("alpha");
    db.write(&batch).expect("batch");
    db.checkpoint().expect("checkpoint");
    db.put("delta", vec![b'd'; 300])
        .expect("put after the checkpoint");
    db.clear_prefix("gamma/").expect("clear a prefix");
    for index in 0..20_u32 {
        db.put(format!("rotate/{index:02}"), vec![b'r'; 200])
            .expect("put enough to rotate a segment");
    }
    db.close().expect("close");
    drop(db);

    let mut files = DatabaseFiles {
        segments: Vec::new(),
        snapshots: Vec::new(),
    };
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("list the database directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    for name in names {
        let bytes = fs::read(dir.join(&name)).expect("read a database file");
        let extension = Path::new(&name)
            .extension()
            .and_then(|extension| extension.to_str());
        if extension == Some("wal") {
            files.segments.push(bytes);
        } else if extension == Some("snap") {
            files.snapshots.push(bytes);
        }
    }
    fs::remove_dir_all(&dir).expect("remove the database directory");
    assert!(
        files.segments.len() >= 2,
        "{} segments",
        files.segments.len()
    );
    assert!(
        !files.snapshots.is_empty(),
        "the checkpoint wrote no snapshot"
    );
    files
}

/// Every frame of a segment file, in order, after its 64-byte header, as (frame bytes, body).
fn segment_frames(segment: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut offset = 64;
    while let Decoded::Frame { frame, frame_bytes } = decode_frame(&segment[offset..], usize::MAX) {
        frames.push((
            segment[offset..offset + frame_bytes].to_vec(),
            frame.body.to_vec(),
        ));
        offset += frame_bytes;
    }
    frames
}

/// One frame, encoded.
fn frame(record_type: u8, lsn: u64, version: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, record_type, lsn, version, body);
    out
}

fn wal_frame_seeds(database: &DatabaseFiles) -> Seeds {
    let mut seeds = Seeds::new();
    let real_frames: Vec<_> = database
        .segments
        .iter()
        .flat_map(|segment| segment_frames(segment))
        .collect();
    assert!(real_frames.len() >= 10, "{} frames", real_frames.len());
    for (index, (bytes, _)) in real_frames.iter().enumerate().take(6) {
        seeds.insert(format!("valid-database-frame-{index}"), bytes.clone());
    }
    let small = frame(1, 7, 7, b"a small body");
    seeds.insert("valid-empty-body".into(), frame(1, 1, 1, b""));
    seeds.insert("valid-small".into(), small.clone());
    seeds.insert(
        "valid-extremes".into(),
        frame(u8::MAX, u64::MAX, u64::MAX, b"x"),
    );
    seeds.insert("valid-4k-body".into(), frame(2, 9, 8, &[0xA5; 4096]));
    let mut two_frames = small.clone();
    two_frames.extend(frame(1, 8, 8, b"the next one"));
    seeds.insert("valid-followed-by-a-frame".into(), two_frames);
    let mut zeros_after = small.clone();
    zeros_after.extend([0; 64]);
    seeds.insert("valid-followed-by-zeros".into(), zeros_after);

    seeds.insert("invalid-empty".into(), Vec::new());
    seeds.insert("invalid-zeros".into(), vec![0; 64]);
    for cut in [3, 5, 6, 21, 22, small.len() - 1] {
        seeds.insert(format!("invalid-truncated-to-{cut}"), small[..cut].to_vec());
    }
    for bit in [0, 33, 41, 50, 120, 180, small.len() * 8 - 1] {
        seeds.insert(format!("invalid-bit-{bit}-flipped"), flip_bit(&small, bit));
    }
    seeds.insert("invalid-len-u32-max".into(), with_u32(&small, 0, u32::MAX));
    seeds.insert(
        "invalid-len-above-limit".into(),
        with_u32(&small, 0, (1 << 31) + 1),
    );
    seeds.insert("invalid-len-below-prefix".into(), with_u32(&small, 0, 15));
    let mut type_zero = small.clone();
    type_zero[4] = 0;
    seeds.insert("invalid-record-type-zero".into(), type_zero);
    let mut version_two = small.clone();
    version_two[5] = 2;
    seeds.insert("invalid-format-version-2".into(), version_two);
    seeds
}

/// A snapshot written by [`SnapshotWriter`] into `dir` under `name`.
fn write_snapshot(dir: &Path, name: &str, version: u64, entries: &[SnapshotEntry<'_>]) -> Vec<u8> {
    let path = dir.join(name);
    let fs_handle = StdFileSystem;
    let mut writer = SnapshotWriter::create(
        &fs_handle,
        &path,
        version,
        version,
        1_700_000_000_000,
        CORPUS_DATABASE_ID,
    )
    .expect("create a snapshot");
    for entry in entries {
        writer.push(*entry).expect("push an entry");
    }
    writer.finish().expect("finish the snapshot");
    fs::read(&path).expect("read the snapshot back")
}

fn entry<'a>(key: &'a [u8], value: &'a [u8], version: u64) -> SnapshotEntry<'a> {
    SnapshotEntry {
        key,
        value,
        version,
        deadline_millis: SNAPSHOT_DEADLINE_NONE,
    }
}

/// A three-block snapshot: the writer's blocks are 256 KiB, too large for a seed, so this
/// splices the single blocks of three small written snapshots under one header and footer
/// (counts patched, checksums recomputed) following the documented layout.
fn multi_block_snapshot(dir: &Path) -> Vec<u8> {
    let parts = [
        write_snapshot(
            dir,
            "part-a",
            9,
            &[entry(b"a", b"1", 1), entry(b"b", b"", 2)],
        ),
        write_snapshot(dir, "part-b", 9, &[entry(b"c", b"3", 3)]),
        write_snapshot(
            dir,
            "part-c",
            9,
            &[entry(b"d", b"4", 9), entry(b"e", b"5", 5)],
        ),
    ];
    let block = |part: &Vec<u8>| part[80..part.len() - 32].to_vec();
    let mut spliced = with_u64(&parts[0][..80], 32, 5);
    spliced = with_u64(&spliced, 40, 3);
    for part in &parts {
        spliced.extend(block(part));
    }
    let footer = with_u64(&parts[0][parts[0].len() - 32..], 8, 3);
    spliced.extend(with_u64(&footer, 16, 5));
    let spliced = reseal_snapshot(&spliced);
    assert!(check_snapshot(&spliced), "the spliced snapshot must decode");
    spliced
}

fn snapshot_seeds(database: &DatabaseFiles) -> Seeds {
    let dir = scratch_dir("snapshot");
    let mut seeds = Seeds::new();
    for (index, snapshot) in database.snapshots.iter().enumerate() {
        // The creation time is the wall clock's and the database id random; pinning both
        // keeps regeneration reproducible.
        let mut pinned = with_u64(snapshot, 48, 1_700_000_000_000);
        pinned[56..72].copy_from_slice(&CORPUS_DATABASE_ID.to_bytes());
        let pinned = reseal_snapshot(&pinned);
        seeds.insert(format!("valid-database-checkpoint-{index}"), pinned);
    }
    let one = write_snapshot(&dir, "one", 5, &[entry(b"key", b"value", 5)]);
    seeds.insert("valid-empty".into(), write_snapshot(&dir, "empty", 0, &[]));
    seeds.insert("valid-one-entry".into(), one.clone());
    let keys: Vec<Vec<u8>> = (0..10_u8).map(|index| vec![b'k', b'0' + index]).collect();
    let mut entries: Vec<SnapshotEntry<'_>> = keys
        .iter()
        .map(|key| entry(key, &key[1..], u64::from(key[1])))
        .collect();
    entries[3].value = b"";
    entries[4].deadline_millis = 1_700_000_060_000;
    seeds.insert(
        "valid-ten-entries".into(),
        write_snapshot(&dir, "ten", 100, &entries),
    );
    let long_key = vec![b'L'; 4096];
    let long = [entry(b"A", &[7; 8192], 1), entry(&long_key, b"after", 2)];
    seeds.insert(
        "valid-long-key-and-value".into(),
        write_snapshot(&dir, "long", 2, &long),
    );
    let three = multi_block_snapshot(&dir);
    seeds.insert("valid-three-blocks".into(), three.clone());

    seeds.insert("invalid-empty".into(), Vec::new());
    seeds.insert("invalid-zeros".into(), vec![0; 160]);
    for cut in [79, 80, 111, 116, one.len() - 32, one.len() - 1] {
        seeds.insert(format!("invalid-truncated-to-{cut}"), one[..cut].to_vec());
    }
    let mut longer = one.clone();
    longer.push(0);
    seeds.insert("invalid-trailing-byte".into(), longer);
    for bit in [0, 70, 127, 400, 500, 800, one.len() * 8 - 40] {
        seeds.insert(format!("invalid-bit-{bit}-flipped"), flip_bit(&one, bit));
    }
    let mut unfinished = three.clone();
    unfinished[..80].fill(0);
    seeds.insert("invalid-unfinished-header".into(), unfinished);
    seeds.insert(
        "invalid-block-bytes-u32-max".into(),
        with_u32(&one, 80, u32::MAX),
    );
    let resealed = |bytes: Vec<u8>| reseal_snapshot(&bytes);
    seeds.insert(
        "invalid-entry-count-u64-max".into(),
        resealed(with_u64(&three, 32, u64::MAX)),
    );
    seeds.insert(
        "invalid-key-bytes-u32-max".into(),
        resealed(with_u32(&one, 88, u32::MAX)),
    );
    seeds.insert(
        "invalid-value-bytes-u32-max".into(),
        resealed(with_u32(&one, 92, u32::MAX)),
    );
    seeds.insert(
        "invalid-entry-newer".into(),
        resealed(with_u64(&one, 96, 6)),
    );
    seeds.insert(
        "invalid-block-count-short".into(),
        resealed(with_u64(&three, 40, 2)),
    );
    let mut swapped = three.clone();
    let (first_key, second_key) = (80 + 8 + 24, 80 + 8 + 24 + 2 + 24);
    swapped.swap(first_key, second_key);
    seeds.insert("invalid-keys-out-of-order".into(), resealed(swapped));
    fs::remove_dir_all(&dir).expect("remove the snapshot scratch directory");
    seeds
}

/// One write of a hand-built commit: the key, and the value with its deadline or `None` for a
/// delete.
type SeedWrite<'a> = (&'a [u8], Option<(&'a [u8], u64)>);

/// A commit body, built by the documented layout.
fn commit_body(writes: &[SeedWrite<'_>]) -> Vec<u8> {
    let owned: Vec<DecodedWrite> = writes
        .iter()
        .map(|(key, put)| {
            (
                key.to_vec(),
                put.map(|(value, deadline)| (value.to_vec(), deadline)),
            )
        })
        .collect();
    encode_commit_body(&owned)
}

fn commit_record_seeds(database: &DatabaseFiles) -> Seeds {
    let mut seeds = Seeds::new();
    let bodies: Vec<Vec<u8>> = database
        .segments
        .iter()
        .flat_map(|segment| segment_frames(segment))
        .map(|(_, body)| body)
        .collect();
    for (index, body) in bodies.iter().enumerate().take(6) {
        seeds.insert(format!("valid-database-commit-{index}"), body.clone());
    }
    let mixed = commit_body(&[
        (b"a", Some((b"xyz", 42))),
        (b"bb", None),
        (b"c", Some((b"", u64::MAX))),
    ]);
    seeds.insert("valid-no-mutations".into(), 0_u32.to_le_bytes().to_vec());
    seeds.insert("valid-put-delete-put".into(), mixed.clone());
    let long_key = vec![b'K'; 1000];
    seeds.insert(
        "valid-long-key".into(),
        commit_body(&[(&long_key, Some((&[1; 2000], 7)))]),
    );

    seeds.insert("invalid-empty".into(), Vec::new());
    for cut in [2, 4, 5, 9, 10, 20, mixed.len() - 1] {
        seeds.insert(format!("invalid-truncated-to-{cut}"), mixed[..cut].to_vec());
    }
    let mut longer = mixed.clone();
    longer.push(0);
    seeds.insert("invalid-trailing-byte".into(), longer);
    seeds.insert(
        "invalid-count-u32-max".into(),
        with_u32(&mixed, 0, u32::MAX),
    );
    seeds.insert("invalid-count-one-more".into(), with_u32(&mixed, 0, 4));
    seeds.insert(
        "invalid-key-bytes-u32-max".into(),
        with_u32(&mixed, 5, u32::MAX),
    );
    seeds.insert("invalid-key-bytes-zero".into(), with_u32(&mixed, 5, 0));
    let mut above = 1_u32.to_le_bytes().to_vec();
    above.push(2);
    above.extend(65_537_u32.to_le_bytes());
    above.extend([b'K'; 100]);
    seeds.insert("invalid-key-bytes-above-limit".into(), above);
    seeds.insert(
        "invalid-value-bytes-u32-max".into(),
        with_u32(&mixed, 18, u32::MAX),
    );
    let mut unknown_kind = mixed.clone();
    unknown_kind[4] = 3;
    seeds.insert("invalid-unknown-kind".into(), unknown_kind);
    // A flipped byte of a key or value still decodes: the body has no checksum of its own.
    for bit in [75, 85, 180] {
        seeds.insert(format!("mutated-bit-{bit}-flipped"), flip_bit(&mixed, bit));
    }
    seeds
}

fn segment_header_seeds(database: &DatabaseFiles) -> Seeds {
    let mut seeds = Seeds::new();
    for (index, segment) in database.segments.iter().enumerate().take(3) {
        // The database id is random; pinning it keeps regeneration reproducible.
        let decoded = SegmentHeader::decode(&segment[..64]).expect("a database segment header");
        let pinned = SegmentHeader {
            database_id: CORPUS_DATABASE_ID,
            ..decoded
        };
        seeds.insert(
            format!("valid-database-segment-{index}"),
            pinned.encode().to_vec(),
        );
    }
    let header = |segment_number, first_lsn, segment_bytes| {
        SegmentHeader {
            segment_number,
            first_lsn,
            segment_bytes,
            database_id: CORPUS_DATABASE_ID,
            recycled: false,
        }
        .encode()
        .to_vec()
    };
    let first = header(0, 1, 64);
    seeds.insert("valid-smallest".into(), first.clone());
    seeds.insert(
        "valid-extremes".into(),
        header(u64::MAX, u64::MAX, u64::MAX),
    );
    let mut with_frames = header(3, 70, 4096);
    with_frames.extend(frame(1, 70, 70, b"the first frame"));
    seeds.insert("valid-followed-by-a-frame".into(), with_frames);

    seeds.insert("invalid-empty".into(), Vec::new());
    seeds.insert("invalid-zeros".into(), vec![0; 64]);
    seeds.insert("invalid-truncated-to-63".into(), first[..63].to_vec());
    for bit in [0, 64, 100, 130, 200, 330, 400, 511] {
        seeds.insert(format!("invalid-bit-{bit}-flipped"), flip_bit(&first, bit));
    }
    let resealed = |bytes: Vec<u8>| reseal_segment_header(&bytes);
    seeds.insert(
        "invalid-format-version-1".into(),
        resealed(with_u32(&first, 8, 1)),
    );
    seeds.insert(
        "invalid-header-bytes-48".into(),
        resealed(with_u32(&first, 12, 48)),
    );
    seeds.insert(
        "invalid-first-lsn-zero".into(),
        resealed(with_u64(&first, 24, 0)),
    );
    seeds.insert(
        "invalid-segment-bytes-63".into(),
        resealed(with_u64(&first, 32, 63)),
    );
    seeds.insert("valid-recycled".into(), resealed(with_u32(&first, 56, 1)));
    seeds.insert(
        "invalid-unknown-flag".into(),
        resealed(with_u32(&first, 56, 2)),
    );
    seeds
}

/// Replaces the seeds (`valid-*`, `invalid-*`, `mutated-*`) of `target`, keeping what the
/// fuzzer added.
fn write_seeds(target: &str, seeds: &Seeds) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).expect("create the corpus directory");
    for entry in fs::read_dir(&dir).expect("list the corpus") {
        let path = entry.expect("corpus entry").path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        if name.is_some_and(|name| {
            ["valid-", "invalid-", "mutated-"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        }) {
            fs::remove_file(&path).expect("remove an old seed");
        }
    }
    for (name, bytes) in seeds {
        assert!(
            bytes.len() <= CORPUS_FILE_BYTES_MAX,
            "{target}/{name}: {} bytes",
            bytes.len()
        );
        fs::write(dir.join(name), bytes).expect("write a seed");
    }
}

/// Writes the seed corpora of the four fuzz targets. Run after a format change with
/// `cargo test -p cairn --test fuzz_corpus -- --ignored regenerate_seed_corpus`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand after a format change"]
fn regenerate_seed_corpus() {
    let database = database_files();
    write_seeds("wal_frame", &wal_frame_seeds(&database));
    write_seeds("snapshot", &snapshot_seeds(&database));
    write_seeds("commit_record", &commit_record_seeds(&database));
    write_seeds("segment_header", &segment_header_seeds(&database));
}

//! Tests of the fault-injecting file system: the crash model in every mode, the fault rules,
//! the freeze, the space limit and the operation log.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_log::fs::{FileHandle, FileSystem, OpenMode};

use super::*;
use crate::rng::SplitMix64;

const DIR: &str = "data";

fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// A file system with the directory `data` created.
fn fresh() -> FaultFs {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new(DIR)).expect("create data dir");
    fs
}

fn create(fs: &FaultFs, name: &str) -> Box<dyn FileHandle> {
    fs.open(&path(name), OpenMode::CreateNew)
        .expect("create a new file")
}

const KEPT_ALL: CrashMode = CrashMode {
    writes: UnsyncedWrites::Kept,
    dir_ops: UnsyncedDirOps::Kept,
};

#[test]
fn unsynced_write_is_lost_and_synced_write_survives_power_loss() {
    let fs = fresh();
    let file = create(&fs, "wal");
    file.write_all_at(b"hello", 0).expect("write");
    file.sync_data().expect("sync data");
    fs.sync_dir(Path::new(DIR)).expect("sync dir");
    file.write_all_at(b" world", 5).expect("unsynced write");
    assert_eq!(
        fs.read_file(&path("wal")).as_deref(),
        Some(&b"hello world"[..])
    );

    let lost = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(lost.read_file(&path("wal")).as_deref(), Some(&b"hello"[..]));
    let kept = fs.crash(KEPT_ALL);
    assert_eq!(
        kept.read_file(&path("wal")).as_deref(),
        Some(&b"hello world"[..])
    );
    // The original is untouched by taking images.
    assert_eq!(
        fs.read_file(&path("wal")).as_deref(),
        Some(&b"hello world"[..])
    );
}

#[test]
fn unsynced_set_len_is_lost_and_data_reads_back_from_the_image() {
    let fs = fresh();
    fs.write_file(&path("segment"), b"abcdef").expect("fixture");
    let file = fs
        .open(&path("segment"), OpenMode::ReadWrite)
        .expect("open");
    file.set_len(2).expect("truncate");
    assert_eq!(file.len().expect("len"), 2);
    let image = fs.crash(CrashMode::POWER_LOSS);
    let reopened = image
        .open(&path("segment"), OpenMode::Read)
        .expect("reopen");
    let mut buf = [0_u8; 8];
    let read = reopened.read_at(&mut buf, 1).expect("read");
    assert_eq!(&buf[..read], b"bcdef");
    assert_eq!(reopened.read_at(&mut buf, 6).expect("read at end"), 0);
    assert_eq!(reopened.read_at(&mut buf, u64::MAX).expect("far read"), 0);
}

#[test]
fn created_and_synced_file_without_dir_sync_is_gone_after_power_loss() {
    let fs = fresh();
    let file = create(&fs, "snapshot");
    file.write_all_at(b"state", 0).expect("write");
    file.sync_data().expect("sync data");

    let lost = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(lost.read_file(&path("snapshot")), None);
    assert!(lost.list_files().is_empty());
    assert_eq!(
        lost.list_dir(Path::new(DIR)).expect("list"),
        Vec::<String>::new()
    );
    let kept_entries = fs.crash(CrashMode {
        writes: UnsyncedWrites::Lost,
        dir_ops: UnsyncedDirOps::Kept,
    });
    assert_eq!(
        kept_entries.read_file(&path("snapshot")).as_deref(),
        Some(&b"state"[..])
    );
}

#[test]
fn file_whose_name_is_durable_but_data_never_synced_is_present_and_empty() {
    let fs = fresh();
    let file = create(&fs, "wal");
    fs.sync_dir(Path::new(DIR)).expect("sync dir");
    file.write_all_at(b"unsynced", 0).expect("write");
    let lost = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(lost.read_file(&path("wal")), Some(Vec::new()));
    assert_eq!(lost.file_len(&path("wal")), Some(0));
}

#[test]
fn rename_and_remove_without_dir_sync_are_undone_by_power_loss() {
    let fs = fresh();
    fs.write_file(&path("current"), b"old").expect("fixture");
    fs.write_file(&path("temp"), b"new").expect("fixture");
    fs.write_file(&path("stale"), b"gone").expect("fixture");
    fs.rename(&path("temp"), &path("current")).expect("rename");
    fs.remove_file(&path("stale")).expect("remove");
    assert_eq!(fs.read_file(&path("current")).as_deref(), Some(&b"new"[..]));
    assert_eq!(fs.list_files(), vec![path("current")]);

    let lost = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(
        lost.read_file(&path("current")).as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(lost.read_file(&path("temp")).as_deref(), Some(&b"new"[..]));
    assert_eq!(
        lost.read_file(&path("stale")).as_deref(),
        Some(&b"gone"[..])
    );

    fs.sync_dir(Path::new(DIR)).expect("sync dir");
    let durable = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(durable.list_files(), vec![path("current")]);
    assert_eq!(
        durable.read_file(&path("current")).as_deref(),
        Some(&b"new"[..])
    );
}

#[test]
fn torn_last_write_keeps_a_seeded_prefix_and_the_old_bytes_after_it() {
    let fs = fresh();
    fs.write_file(&path("wal"), b"aaaaaaaaaa").expect("fixture");
    let other = create(&fs, "other");
    fs.sync_dir(Path::new(DIR)).expect("sync dir");
    let file = fs.open(&path("wal"), OpenMode::ReadWrite).expect("open");
    file.write_all_at(b"xx", 0).expect("earlier write");
    other
        .write_all_at(b"zzzz", 0)
        .expect("write to another file");
    file.write_all_at(b"bbbbbb", 2).expect("last write");

    let mut kept_lengths = BTreeSet::new();
    for seed in 0..32_u64 {
        let kept_bytes = SplitMix64::new(seed).below(6);
        let mut expected = b"xxaaaaaaaa".to_vec();
        expected[2..2 + kept_bytes].fill(b'b');
        let image = fs.crash(CrashMode {
            writes: UnsyncedWrites::TornLast { seed },
            dir_ops: UnsyncedDirOps::Lost,
        });
        assert_eq!(image.read_file(&path("wal")), Some(expected), "seed {seed}");
        // Only the last write is torn; the other file keeps its unsynced write.
        assert_eq!(
            image.read_file(&path("other")).as_deref(),
            Some(&b"zzzz"[..])
        );
        assert!(kept_bytes < 6);
        kept_lengths.insert(kept_bytes);
    }
    assert!(
        kept_lengths.len() > 1,
        "the prefix length depends on the seed"
    );
}

#[test]
fn torn_last_write_that_extended_the_file_leaves_it_shorter() {
    let fs = fresh();
    let file = create(&fs, "wal");
    fs.sync_dir(Path::new(DIR)).expect("sync dir");
    file.write_all_at(b"head", 0).expect("write");
    file.sync_data().expect("sync");
    file.write_all_at(b"0123456789", 4)
        .expect("unsynced append");
    let seed = 7;
    let kept_bytes = SplitMix64::new(seed).below(10);
    let image = fs.crash(CrashMode {
        writes: UnsyncedWrites::TornLast { seed },
        dir_ops: UnsyncedDirOps::Lost,
    });
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&b"0123456789"[..kept_bytes]);
    assert_eq!(image.read_file(&path("wal")), Some(expected));
}

#[test]
fn once_rule_fails_one_call_and_the_failed_write_writes_nothing() {
    let fs = fresh();
    let file = create(&fs, "wal");
    fs.fail(FaultRule::once(Op::Write, FaultError::Eio));
    let error = file.write_all_at(b"lost", 0).expect_err("injected EIO");
    assert_eq!(error.raw_os_error(), Some(5));
    assert_eq!(file.len().expect("len"), 0);
    file.write_all_at(b"kept", 0).expect("the rule is spent");
    assert_eq!(fs.read_file(&path("wal")).as_deref(), Some(&b"kept"[..]));
}

#[test]
fn forever_sync_failure_leaves_writes_unsynced() {
    let fs = fresh();
    let file = create(&fs, "wal");
    fs.sync_dir(Path::new(DIR)).expect("sync dir");
    fs.fail(FaultRule::forever(Op::SyncData, FaultError::Eio));
    file.write_all_at(b"data", 0).expect("write");
    for _ in 0..3 {
        let error = file.sync_data().expect_err("sync fails for good");
        assert_eq!(error.raw_os_error(), Some(5));
    }
    assert_eq!(
        fs.crash(CrashMode::POWER_LOSS).read_file(&path("wal")),
        Some(Vec::new())
    );
    assert_eq!(
        fs.crash(KEPT_ALL).read_file(&path("wal")).as_deref(),
        Some(&b"data"[..])
    );
    fs.clear_faults();
    file.sync_data().expect("faults cleared");
    assert_eq!(
        fs.crash(CrashMode::POWER_LOSS)
            .read_file(&path("wal"))
            .as_deref(),
        Some(&b"data"[..])
    );
}

#[test]
fn skip_lets_matching_calls_through_before_the_rule_fires() {
    let fs = fresh();
    for name in ["a", "b", "c", "d"] {
        fs.write_file(&path(name), name.as_bytes())
            .expect("fixture");
    }
    fs.fail(FaultRule::once(Op::Rename, FaultError::Eio).with_skip(2));
    fs.rename(&path("a"), &path("a2")).expect("first passes");
    fs.rename(&path("b"), &path("b2")).expect("second passes");
    let error = fs.rename(&path("c"), &path("c2")).expect_err("third fails");
    assert_eq!(error.raw_os_error(), Some(5));
    assert_eq!(fs.read_file(&path("c")).as_deref(), Some(&b"c"[..]));
    fs.rename(&path("d"), &path("d2"))
        .expect("once: fourth passes");
}

#[test]
fn path_filter_and_groups_select_the_calls_a_rule_hits() {
    let fs = fresh();
    let wal = create(&fs, "wal-0001");
    let snapshot = create(&fs, "snapshot");
    fs.fail(FaultRule::forever(Op::AnyMutation, FaultError::NoSpace).with_path_contains("wal"));
    let error = wal.write_all_at(b"x", 0).expect_err("wal writes fail");
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert_eq!(error.raw_os_error(), Some(28));
    wal.sync_data().expect_err("a sync is a mutation too");
    wal.len().expect("a read-only call passes");
    snapshot.write_all_at(b"x", 0).expect("other paths pass");
    // A rename matches when either path contains the text.
    fs.rename(&path("snapshot"), &path("wal-0002"))
        .expect_err("rename onto a wal name");

    fs.clear_faults();
    fs.fail(FaultRule::once(Op::Any, FaultError::Eio));
    fs.list_dir(Path::new(DIR)).expect_err("any call");
    fs.list_dir(Path::new(DIR)).expect("spent");
}

#[test]
fn rules_fire_in_order_and_the_first_that_fires_wins() {
    let fs = fresh();
    let file = create(&fs, "wal");
    fs.fail(FaultRule::once(Op::Write, FaultError::NoSpace));
    fs.fail(FaultRule::once(Op::Write, FaultError::Eio));
    let first = file.write_all_at(b"x", 0).expect_err("first rule");
    assert_eq!(first.raw_os_error(), Some(28));
    let second = file.write_all_at(b"x", 0).expect_err("second rule");
    assert_eq!(second.raw_os_error(), Some(5));
    file.write_all_at(b"x", 0).expect("both spent");
}

/// Seven mutating calls, with reads between them.
fn workload(fs: &FaultFs) -> io::Result<()> {
    let file = fs.open(&path("wal"), OpenMode::CreateNew)?; // 1
    file.write_all_at(b"one", 0)?; // 2
    file.sync_data()?; // 3
    fs.sync_dir(Path::new(DIR))?; // 4
    file.len()?;
    file.set_len(16)?; // 5
    fs.rename(&path("wal"), &path("log"))?; // 6
    fs.list_dir(Path::new(DIR))?;
    fs.sync_dir(Path::new(DIR))?; // 7
    Ok(())
}

#[test]
fn freeze_after_mutations_cuts_the_power_at_each_io_point() {
    let counting = fresh();
    workload(&counting).expect("the workload runs without faults");
    assert_eq!(counting.mutation_count(), 7);
    assert_eq!(counting.op_count(Op::AnyMutation), 7);
    assert_eq!(counting.op_count(Op::SyncDir), 2);
    assert_eq!(counting.op_count(Op::Any), 10);

    for point in 0..=7_u64 {
        let fs = fresh();
        fs.freeze_after_mutations(point);
        let result = workload(&fs);
        assert_eq!(fs.mutation_count(), point, "point {point}");
        if point < 7 {
            let error = result.expect_err("the workload hits the freeze");
            assert_eq!(error.raw_os_error(), Some(5));
            assert!(fs.is_frozen());
            let error = fs
                .list_dir(Path::new(DIR))
                .expect_err("every call fails once frozen");
            assert_eq!(error.raw_os_error(), Some(5));
        } else {
            result.expect("the freeze comes after the last mutation");
        }
        let indices: Vec<u64> = fs
            .op_log()
            .iter()
            .filter_map(|record| record.mutation_index)
            .collect();
        assert_eq!(indices, (0..point).collect::<Vec<_>>());
    }

    // What survives each cut: the file exists under a durable name from point 4 on.
    let fs = fresh();
    fs.freeze_after_mutations(4);
    workload(&fs).expect_err("frozen");
    let image = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(image.read_file(&path("wal")).as_deref(), Some(&b"one"[..]));
    image
        .list_dir(Path::new(DIR))
        .expect("the image is not frozen");
}

#[test]
fn space_limit_refuses_growth_past_the_limit_and_writes_nothing() {
    let fs = fresh();
    fs.set_space_limit_bytes(Some(10));
    let first = create(&fs, "first");
    first.write_all_at(&[1; 8], 0).expect("8 of 10 bytes");
    first
        .write_all_at(&[2; 2], 8)
        .expect("exactly at the limit");
    first.set_len(8).expect("back to 8 bytes");
    let error = first.write_all_at(&[2; 4], 8).expect_err("12 bytes > 10");
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert_eq!(fs.file_len(&path("first")), Some(8));
    first
        .write_all_at(&[3; 8], 0)
        .expect("rewriting in place needs no space");
    first.set_len(11).expect_err("set_len past the limit");
    let second = create(&fs, "second");
    second
        .write_all_at(&[4; 2], 0)
        .expect("exactly at the limit");
    second.write_all_at(&[4], 2).expect_err("one byte over");
    first.set_len(4).expect("shrinking frees space");
    second.write_all_at(&[4; 4], 2).expect("room again");
    fs.set_space_limit_bytes(None);
    second.write_all_at(&[5; 100], 0).expect("no limit");
}

#[test]
fn second_lock_would_block_until_the_first_is_dropped() {
    let fs = fresh();
    let first = fs.lock_dir(Path::new(DIR)).expect("first lock");
    let error = fs.lock_dir(Path::new(DIR)).expect_err("second lock");
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
    // A crash image starts with no locks.
    let image = fs.crash(CrashMode::POWER_LOSS);
    let image_lock = image.lock_dir(Path::new(DIR)).expect("lock in the image");
    drop(first);
    let again = fs.lock_dir(Path::new(DIR)).expect("lock after release");
    drop(again);
    drop(image_lock);
    let error = fs
        .lock_dir(Path::new("missing"))
        .expect_err("no such directory");
    assert_eq!(error.kind(), io::ErrorKind::NotFound);
}

#[test]
fn errors_match_std_for_missing_and_existing_names() {
    let fs = fresh();
    let missing = fs
        .open(&path("missing"), OpenMode::Read)
        .expect_err("missing file");
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    let no_dir = fs
        .open(Path::new("nodir/file"), OpenMode::CreateNew)
        .expect_err("missing directory");
    assert_eq!(no_dir.kind(), io::ErrorKind::NotFound);
    drop(create(&fs, "wal"));
    let exists = fs
        .open(&path("wal"), OpenMode::CreateNew)
        .expect_err("name taken");
    assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
    let read_only = fs.open(&path("wal"), OpenMode::Read).expect("open");
    read_only
        .write_all_at(b"x", 0)
        .expect_err("read-only handle");
    fs.remove_file(&path("wal")).expect("remove");
    assert_eq!(
        fs.remove_file(&path("wal")).expect_err("removed").kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        fs.rename(&path("wal"), &path("x"))
            .expect_err("gone")
            .kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        fs.sync_dir(Path::new("missing"))
            .expect_err("no dir")
            .kind(),
        io::ErrorKind::NotFound
    );
    let huge = create(&fs, "huge");
    assert_eq!(
        huge.write_all_at(b"x", u64::MAX)
            .expect_err("past the model limit")
            .raw_os_error(),
        None
    );
    huge.set_len(FILE_BYTES_MAX + 1)
        .expect_err("past the model limit");
}

#[test]
fn list_dir_shows_files_and_subdirectories_and_paths_normalize() {
    let fs = fresh();
    fs.create_dir_all(Path::new("data/sub/deeper"))
        .expect("nested dirs");
    drop(create(&fs, "file"));
    let mut names = fs.list_dir(Path::new("./data")).expect("list");
    names.sort();
    assert_eq!(names, vec!["file".to_owned(), "sub".to_owned()]);
    assert_eq!(
        fs.create_dir_all(&path("file/x"))
            .expect_err("a file in the way")
            .kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        fs.list_dir(&path("file"))
            .expect_err("not a directory")
            .kind(),
        io::ErrorKind::NotADirectory
    );
    fs.write_file(Path::new("/abs/dir/f"), b"1")
        .expect("absolute fixture");
    assert_eq!(
        fs.list_dir(Path::new("/abs")).expect("list"),
        vec!["dir".to_owned()]
    );
}

#[test]
fn fixture_helpers_damage_files_at_rest_and_survive_crashes() {
    let fs = FaultFs::new();
    fs.write_file(&path("snapshot"), &[0b0000_0000, 0b1111_1111])
        .expect("fixture");
    fs.flip_bit(&path("snapshot"), 9)
        .expect("flip bit 1 of byte 1");
    fs.flip_bit(&path("snapshot"), 0)
        .expect("flip bit 0 of byte 0");
    assert_eq!(
        fs.read_file(&path("snapshot")),
        Some(vec![0b0000_0001, 0b1111_1101])
    );
    fs.flip_bit(&path("snapshot"), 16)
        .expect_err("past the end");
    let image = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(
        image.read_file(&path("snapshot")),
        Some(vec![0b0000_0001, 0b1111_1101])
    );

    let file = fs
        .open(&path("snapshot"), OpenMode::ReadWrite)
        .expect("open");
    file.write_all_at(b"abc", 2).expect("unsynced write");
    fs.truncate(&path("snapshot"), 3).expect("truncate");
    let image = fs.crash(CrashMode::POWER_LOSS);
    assert_eq!(
        image.read_file(&path("snapshot")),
        Some(vec![0b0000_0001, 0b1111_1101, b'a'])
    );
    assert_eq!(image.file_len(&path("snapshot")), Some(3));
    fs.truncate(&path("missing"), 0).expect_err("no such file");
}

#[test]
fn handles_are_shared_across_threads() {
    let fs = Arc::new(fresh());
    let file: Arc<dyn FileHandle> = Arc::from(create(&fs, "wal"));
    let writers: Vec<_> = (0..4_u8)
        .map(|index| {
            let file = Arc::clone(&file);
            std::thread::spawn(move || file.write_all_at(&[index; 4], u64::from(index) * 4))
        })
        .collect();
    for writer in writers {
        writer.join().expect("no panic").expect("write");
    }
    assert_eq!(
        fs.read_file(&path("wal")),
        Some(vec![0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    );
    assert_eq!(fs.op_count(Op::Write), 4);
}

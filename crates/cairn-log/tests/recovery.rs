//! Recovery tests of the log (layer 1 and 4 of the test plan, on the standard file system):
//! round trips across reopen and rotation, torn tails cut at every byte offset, corruption in
//! the last and in earlier segments, missing segments, salvage, and read-only verification.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::path::Path;

use cairn_log::{
    list_segments, segment_file_name, verify_dir, LogError, RecoveryMode, StdFileSystem,
    SEGMENT_HEADER_BYTES,
};
use common::{
    append_all, copy_dir, flip_byte, frame_offsets, open_collect, records, segment_files,
    strict_options, Record, TempDir,
};

fn varied(lsn: u64) -> usize {
    usize::try_from(lsn * 37 % 300).expect("small")
}

/// Writes `records` into a fresh log in `dir` and closes it.
fn write_log(dir: &Path, segment_bytes: u64, records: &[Record]) {
    let (log, report, replayed) =
        open_collect(dir, strict_options(segment_bytes), 0).expect("open fresh");
    assert!(replayed.is_empty());
    assert_eq!(report.last_lsn, 0);
    append_all(&log, records);
    log.close().expect("close");
}

fn expect_corrupted(result: Result<impl Sized, LogError>) -> (std::path::PathBuf, u64, String) {
    match result {
        Err(LogError::Corrupted {
            file,
            offset,
            reason,
        }) => (file, offset, reason),
        Err(other) => panic!("expected Corrupted, got {other}"),
        Ok(_) => panic!("expected Corrupted, open succeeded"),
    }
}

#[test]
fn append_sync_reopen_returns_records_in_order() {
    let dir = TempDir::new("round-trip");
    let written = records(1, 100, varied);
    write_log(&dir.path, 1 << 20, &written);
    let (log, report, replayed) =
        open_collect(&dir.path, strict_options(1 << 20), 0).expect("reopen");
    assert_eq!(replayed, written);
    assert_eq!(report.frames_replayed, 100);
    assert_eq!(report.frames_skipped, 0);
    assert_eq!(report.last_lsn, 100);
    assert_eq!(report.last_version, 1000);
    assert_eq!(report.torn_tail, None);
    assert!(report.salvaged.is_empty());
    assert_eq!(log.last_appended_lsn(), 100);
    assert_eq!(log.durable_lsn(), 100);
    // Appends continue at the next LSN, in a new segment named after it.
    log.append(1, 101, 1010, b"next").expect("append 101");
    log.sync().expect("sync");
    assert!(dir.path.join(segment_file_name(101)).exists());
    let error = log.append(1, 103, 0, b"gap").expect_err("out of order");
    assert!(matches!(
        error,
        LogError::OutOfOrder {
            expected_lsn: 102,
            got_lsn: 103
        }
    ));
}

#[test]
fn frames_at_or_below_after_lsn_are_checked_but_skipped() {
    let dir = TempDir::new("after-lsn");
    let written = records(1, 60, varied);
    write_log(&dir.path, 4096, &written);
    let (_log, report, replayed) =
        open_collect(&dir.path, strict_options(4096), 45).expect("reopen");
    assert_eq!(replayed, written[45..].to_vec());
    assert_eq!(report.frames_skipped, 45);
    assert_eq!(report.frames_replayed, 15);
    assert_eq!(report.last_lsn, 60);
}

#[test]
fn rotation_across_small_segments_with_varied_frames() {
    let dir = TempDir::new("rotation");
    let written = records(1, 300, varied);
    let (log, _, _) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    // Several groups of different sizes, so rotation happens inside groups too.
    for chunk in written.chunks(37) {
        append_all(&log, chunk);
    }
    let stats = log.stats();
    assert_eq!(stats.frames_written, 300);
    assert!(stats.segments_created > 10, "{stats:?}");
    let wal_bytes = log.wal_bytes();
    let expected_bytes: u64 = written
        .iter()
        .map(|record| cairn_log::encoded_frame_bytes(record.body.len()) as u64)
        .sum();
    assert_eq!(wal_bytes, expected_bytes);
    log.close().expect("close");

    let segments = list_segments(&StdFileSystem, &dir.path).expect("list");
    assert!(segments.len() > 10);
    assert!(segments
        .windows(2)
        .all(|pair| pair[0].first_lsn < pair[1].first_lsn
            && pair[0].segment_number < pair[1].segment_number));
    assert!(segments.iter().all(|segment| segment.file_bytes == 4096));

    let (log, report, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    assert_eq!(replayed, written);
    assert_eq!(report.segments, segments.len());
    assert_eq!(log.wal_bytes(), expected_bytes);
}

#[test]
fn frames_larger_than_a_segment_get_their_own_segment() {
    let dir = TempDir::new("large-frames");
    let written = records(1, 12, |lsn| if lsn % 3 == 0 { 10_000 } else { 100 });
    write_log(&dir.path, 4096, &written);
    let segments = list_segments(&StdFileSystem, &dir.path).expect("list");
    let large = segments
        .iter()
        .filter(|segment| segment.segment_bytes > 4096)
        .count();
    assert_eq!(large, 4);
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    assert_eq!(replayed, written);
}

#[test]
fn a_large_first_frame_replaces_the_empty_segment_of_the_same_name() {
    let dir = TempDir::new("large-first");
    let written = records(1, 3, |lsn| if lsn == 1 { 9000 } else { 10 });
    write_log(&dir.path, 4096, &written);
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    assert_eq!(replayed, written);
}

#[test]
fn an_empty_directory_starts_at_after_lsn_plus_one() {
    let dir = TempDir::new("empty-start");
    let (log, report, replayed) = open_collect(&dir.path, strict_options(4096), 41).expect("open");
    assert!(replayed.is_empty());
    assert_eq!(report.last_lsn, 41);
    assert_eq!(report.segments, 0);
    assert_eq!(log.last_appended_lsn(), 41);
    assert_eq!(
        segment_files(&dir.path),
        vec![dir.path.join(segment_file_name(42))]
    );
    assert!(matches!(
        log.append(1, 41, 0, b""),
        Err(LogError::OutOfOrder {
            expected_lsn: 42,
            ..
        })
    ));
    append_all(&log, &records(42, 43, |_| 5));
    log.close().expect("close");
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 41).expect("reopen");
    assert_eq!(replayed, records(42, 43, |_| 5));
}

#[test]
fn reopening_without_appends_does_not_pile_up_segments() {
    let dir = TempDir::new("no-pile-up");
    write_log(&dir.path, 4096, &records(1, 5, varied));
    for _ in 0..3 {
        let (log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
        assert_eq!(replayed.len(), 5);
        log.close().expect("close");
    }
    // The segment with the frames plus the one the last open created.
    assert_eq!(segment_files(&dir.path).len(), 2);
}

#[test]
fn leftover_temp_segments_are_removed_at_open() {
    let dir = TempDir::new("temp-leftover");
    write_log(&dir.path, 4096, &records(1, 5, varied));
    let temp = dir.path.join(format!("{}.tmp", segment_file_name(6)));
    std::fs::write(&temp, b"half-created").expect("write temp");
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    assert_eq!(replayed.len(), 5);
    assert!(!temp.exists());
}

#[test]
fn a_log_ending_below_after_lsn_continues_after_after_lsn() {
    let dir = TempDir::new("below-after");
    write_log(&dir.path, 4096, &records(1, 10, varied));
    let (log, report, replayed) =
        open_collect(&dir.path, strict_options(4096), 20).expect("reopen");
    assert!(replayed.is_empty());
    assert_eq!(report.frames_skipped, 10);
    assert_eq!(report.last_lsn, 20);
    append_all(&log, &records(21, 22, varied));
    log.close().expect("close");
    // The gap 11..=20 is covered by the caller's snapshot at 20...
    let (reopened, _, replayed) =
        open_collect(&dir.path, strict_options(4096), 20).expect("reopen");
    assert_eq!(replayed, records(21, 22, varied));
    drop(reopened);
    // ...but not without it.
    let (file, offset, reason) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!(file, dir.path.join(segment_file_name(21)));
    assert_eq!(offset, 0);
    assert!(reason.contains("frames missing"), "{reason}");
}

#[test]
fn torn_tail_at_every_byte_offset_of_the_last_two_frames() {
    let reference = TempDir::new("torn-reference");
    // Body sizes chosen so that no length byte is zero (every cut leaves non-zero garbage).
    let written = records(1, 8, |lsn| 20 + usize::try_from(lsn).expect("small"));
    write_log(&reference.path, 1 << 16, &written);
    let last_segment = reference.path.join(segment_file_name(1));
    let offsets = frame_offsets(&written);
    let ends: Vec<u64> = offsets
        .iter()
        .zip(&written)
        .map(|(offset, record)| offset + cairn_log::encoded_frame_bytes(record.body.len()) as u64)
        .collect();
    let original = std::fs::read(&last_segment).expect("read segment");
    for cut in offsets[6]..ends[7] {
        let case = TempDir::new("torn-case");
        copy_dir(&reference.path, &case.path);
        let segment = case.path.join(segment_file_name(1));
        // Drop the segment the close-time reopen never created, keep only the written one.
        for file in segment_files(&case.path) {
            if file != segment {
                std::fs::remove_file(file).expect("remove");
            }
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("open segment");
        file.set_len(cut).expect("cut");
        drop(file);
        let frames_kept = ends.iter().filter(|&&frame_end| frame_end <= cut).count();
        let (log, report, replayed) = open_collect(&case.path, strict_options(4096), 0)
            .unwrap_or_else(|error| panic!("cut at {cut}: {error}"));
        assert_eq!(replayed, written[..frames_kept].to_vec(), "cut at {cut}");
        let boundary = offsets[frames_kept];
        if cut == boundary {
            assert_eq!(report.torn_tail, None, "cut at {cut}");
        } else {
            let torn = report.torn_tail.clone().expect("torn tail reported");
            assert_eq!(torn.file, segment);
            assert_eq!(torn.offset, boundary, "cut at {cut}");
            // The non-zero extent of what the cut left of the torn frame.
            let left = &original
                [usize::try_from(boundary).expect("offset")..usize::try_from(cut).expect("offset")];
            let nonzero = left
                .iter()
                .rposition(|&byte| byte != 0)
                .map_or(0, |last| last + 1);
            assert_eq!(torn.bytes_dropped, nonzero as u64, "cut at {cut}");
            assert!(torn.bytes_dropped > 0);
        }
        assert_eq!(std::fs::metadata(&segment).expect("meta").len(), boundary);
        // The garbage is gone: a later append and reopen see a clean log.
        let next = Record::for_lsn(frames_kept as u64 + 1, 3);
        append_all(&log, std::slice::from_ref(&next));
        log.close().expect("close");
        let (_log, report, replayed) =
            open_collect(&case.path, strict_options(4096), 0).expect("reopen after append");
        let mut expected = written[..frames_kept].to_vec();
        expected.push(next);
        assert_eq!(replayed, expected, "cut at {cut}");
        assert_eq!(report.torn_tail, None);
    }
    assert!(last_segment.exists());
}

#[test]
fn garbage_after_the_last_frame_is_a_torn_tail_and_is_cut() {
    let dir = TempDir::new("garbage-tail");
    let written = records(1, 4, varied);
    write_log(&dir.path, 4096, &written);
    let segment = dir.path.join(segment_file_name(1));
    let end = *frame_offsets(&written).last().expect("offsets")
        + cairn_log::encoded_frame_bytes(written[3].body.len()) as u64;
    // A half-written frame: a plausible header and some body, no valid CRC.
    let mut garbage = vec![60, 0, 0, 0, 1, 1];
    garbage.extend_from_slice(&[0xAB; 30]);
    let mut bytes = std::fs::read(&segment).expect("read");
    let start = usize::try_from(end).expect("offset");
    bytes[start..start + garbage.len()].copy_from_slice(&garbage);
    std::fs::write(&segment, bytes).expect("write");
    let (_log, report, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    assert_eq!(replayed, written);
    let torn = report.torn_tail.expect("torn tail");
    assert_eq!((torn.offset, torn.bytes_dropped), (end, 36));
    assert_eq!(std::fs::metadata(&segment).expect("meta").len(), end);
}

#[test]
fn a_flipped_byte_in_a_middle_frame_of_the_last_segment_is_corruption() {
    let dir = TempDir::new("flip-last");
    let written = records(1, 10, varied);
    write_log(&dir.path, 1 << 16, &written);
    let segment = dir.path.join(segment_file_name(1));
    let offsets = frame_offsets(&written);
    flip_byte(&segment, offsets[4] + 25, 0x10);
    let before = std::fs::read(&segment).expect("read");
    let (file, offset, reason) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!(file, segment);
    assert_eq!(offset, offsets[4]);
    assert!(reason.contains("LSN 6"), "{reason}");
    // Strict open modified nothing.
    assert_eq!(std::fs::read(&segment).expect("read"), before);
}

#[test]
fn a_flipped_length_in_the_last_segment_is_corruption_too() {
    let dir = TempDir::new("flip-len");
    let written = records(1, 10, varied);
    write_log(&dir.path, 1 << 16, &written);
    let segment = dir.path.join(segment_file_name(1));
    let offsets = frame_offsets(&written);
    flip_byte(&segment, offsets[2], 0x40);
    let (_, offset, _) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!(offset, offsets[2]);
}

/// Writes 5 segments of 4 KiB; returns the records and the segment files.
fn three_segments(dir: &Path) -> (Vec<Record>, Vec<std::path::PathBuf>) {
    let written = records(1, 100, |_| 150);
    write_log(dir, 4096, &written);
    let files = segment_files(dir);
    assert!(files.len() >= 4, "{files:?}");
    (written, files)
}

#[test]
fn a_flipped_byte_in_an_earlier_segment_is_corruption() {
    let dir = TempDir::new("flip-early");
    let (written, files) = three_segments(&dir.path);
    let offsets = frame_offsets(&written);
    flip_byte(&files[0], offsets[3] + 30, 0x01);
    let (file, offset, _) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!((file, offset), (files[0].clone(), offsets[3]));
}

#[test]
fn a_flipped_last_frame_of_an_earlier_segment_is_corruption() {
    let dir = TempDir::new("flip-early-last");
    let (written, files) = three_segments(&dir.path);
    let second_first_lsn = list_segments(&StdFileSystem, &dir.path).expect("list")[1].first_lsn;
    let last_index = usize::try_from(second_first_lsn - 2).expect("index");
    let offsets = frame_offsets(&written[..=last_index]);
    flip_byte(&files[0], offsets[last_index] + 30, 0x01);
    let (file, offset, reason) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!((file, offset), (files[0].clone(), offsets[last_index]));
    assert!(reason.contains("not the last"), "{reason}");
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let dir = TempDir::new("missing");
    let (_, files) = three_segments(&dir.path);
    std::fs::remove_file(&files[1]).expect("remove middle");
    let (file, offset, reason) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!((file, offset), (files[2].clone(), 0));
    assert!(reason.contains("frames missing"), "{reason}");
    // A log whose first segment starts after after_lsn + 1 misses frames as well.
    std::fs::remove_file(&files[0]).expect("remove first");
    let (file, _, _) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!(file, files[2]);
}

#[test]
fn a_damaged_segment_header_is_corruption() {
    let dir = TempDir::new("header");
    let (_, files) = three_segments(&dir.path);
    flip_byte(&files[1], 20, 0x01);
    let (file, offset, reason) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!((file, offset), (files[1].clone(), 0));
    assert!(reason.contains("header"), "{reason}");
    assert!(matches!(
        list_segments(&StdFileSystem, &dir.path),
        Err(LogError::Corrupted { offset: 0, .. })
    ));
}

#[test]
fn salvage_keeps_the_longest_valid_prefix_and_reports_the_drop() {
    let dir = TempDir::new("salvage");
    let (written, files) = three_segments(&dir.path);
    let segments = list_segments(&StdFileSystem, &dir.path).expect("list");
    let frames_in_first = usize::try_from(segments[1].first_lsn - 1).expect("count");
    let offsets = frame_offsets(&written[..frames_in_first]);
    flip_byte(&files[0], offsets[2] + 30, 0x01);
    let mut options = strict_options(4096);
    options.recovery = RecoveryMode::Salvage;
    let (log, report, replayed) = open_collect(&dir.path, options.clone(), 0).expect("salvage");
    assert_eq!(replayed, written[..2].to_vec());
    assert_eq!(report.last_lsn, 2);
    let dropped = &report.salvaged;
    assert_eq!(dropped.len(), files.len());
    assert_eq!(
        (dropped[0].file.clone(), dropped[0].offset),
        (files[0].clone(), offsets[2])
    );
    assert_eq!(dropped[0].frames_after, frames_in_first as u64 - 3);
    for (entry, file) in dropped.iter().zip(&files).skip(1) {
        assert_eq!((&entry.file, entry.offset), (file, 0));
    }
    // Every frame is accounted for: replayed, the damaged one, or counted as dropped.
    let frames_after: u64 = dropped.iter().map(|entry| entry.frames_after).sum();
    assert_eq!(2 + 1 + frames_after, written.len() as u64);
    for file in &files[1..] {
        let mut aside = file.clone().into_os_string();
        aside.push(".damaged");
        assert!(Path::new(&aside).exists(), "{aside:?}");
    }
    append_all(&log, &records(3, 4, varied));
    log.close().expect("close");
    let (_log, report, replayed) =
        open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    let mut expected = written[..2].to_vec();
    expected.extend(records(3, 4, varied));
    assert_eq!(replayed, expected);
    assert!(report.salvaged.is_empty());
}

#[test]
fn salvage_of_a_missing_segment_sets_the_later_ones_aside() {
    let dir = TempDir::new("salvage-gap");
    let (written, files) = three_segments(&dir.path);
    let segments = list_segments(&StdFileSystem, &dir.path).expect("list");
    std::fs::remove_file(&files[1]).expect("remove");
    let mut options = strict_options(4096);
    options.recovery = RecoveryMode::Salvage;
    let (_log, report, replayed) = open_collect(&dir.path, options, 0).expect("salvage");
    let kept = usize::try_from(segments[1].first_lsn - 1).expect("count");
    assert_eq!(replayed, written[..kept].to_vec());
    assert_eq!(report.salvaged.len(), files.len() - 2);
    assert_eq!(report.salvaged[0].file, files[2]);
    assert!(report.salvaged[0].reason.contains("frames missing"));
    assert!(report.salvaged[0].frames_after > 0);
}

#[test]
fn verify_dir_reports_without_modifying_anything() {
    let dir = TempDir::new("verify");
    let (written, files) = three_segments(&dir.path);
    let mut calls = 0;
    let report = verify_dir(&StdFileSystem, &dir.path, 0, None, &mut |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .expect("verify");
    assert!(calls >= files.len());
    assert_eq!(report.frames, written.len() as u64);
    assert_eq!(report.last_lsn, Some(written.len() as u64));
    assert_eq!(report.corruption, None);
    assert_eq!(report.torn_tail, None);
    assert_eq!(report.segments.len(), files.len());

    // A torn tail in the last segment holding frames.
    let last_with_frames = report
        .segments
        .iter()
        .rev()
        .find(|segment| segment.frames > 0)
        .expect("a segment with frames")
        .clone();
    let cut = last_with_frames.frames_end - 7;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last_with_frames.info.path)
        .expect("open");
    file.set_len(cut).expect("cut");
    drop(file);
    assert_eq!(&last_with_frames.info.path, files.last().expect("files"));
    let report = verify_dir(&StdFileSystem, &dir.path, 0, None, &mut |_, _| {}).expect("verify");
    let torn = report.torn_tail.expect("torn tail");
    assert_eq!(torn.file, last_with_frames.info.path);
    assert_eq!(report.frames, written.len() as u64 - 1);
    assert_eq!(std::fs::metadata(&torn.file).expect("meta").len(), cut);

    // A corruption in the first segment.
    flip_byte(&files[0], SEGMENT_HEADER_BYTES + 40, 0x04);
    let report = verify_dir(&StdFileSystem, &dir.path, 0, None, &mut |_, _| {}).expect("verify");
    let corruption = report.corruption.expect("corruption");
    assert_eq!(
        (corruption.file, corruption.offset),
        (files[0].clone(), SEGMENT_HEADER_BYTES)
    );
    assert_eq!(report.segments.len(), 1);
    assert_eq!(report.segments_unchecked, files[1..].to_vec());
}

#[test]
fn removed_segments_are_covered_by_after_lsn_only() {
    let dir = TempDir::new("remove");
    let written = records(1, 60, |_| 150);
    let (log, _, _) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    append_all(&log, &written);
    let before = segment_files(&dir.path).len();
    let wal_bytes_before = log.wal_bytes();
    let removed = log.remove_segments_through(30).expect("remove");
    assert!(removed >= 1);
    assert_eq!(segment_files(&dir.path).len(), before - removed);
    assert!(log.wal_bytes() < wal_bytes_before);
    assert_eq!(log.stats().segments_removed, removed as u64);
    // Everything left still reaches past 30.
    let first_kept = list_segments(&StdFileSystem, &dir.path).expect("list")[0].first_lsn;
    assert!(first_kept <= 31);
    // The active segment is never removed.
    let removed_all = log.remove_segments_through(u64::MAX).expect("remove all");
    assert!(!segment_files(&dir.path).is_empty());
    assert!(removed_all >= 1);
    log.close().expect("close");
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 60).expect("reopen");
    assert!(replayed.is_empty());
}

#[test]
fn a_zeroed_frame_header_is_the_end_of_a_segment() {
    // What a crash leaves when a later page of the last group reached the disk but its first
    // page did not: the frames after the zeros were never acknowledged.
    let dir = TempDir::new("zeroed-header");
    let written = records(1, 10, varied);
    write_log(&dir.path, 1 << 16, &written);
    let segment = dir.path.join(segment_file_name(1));
    let offsets = frame_offsets(&written);
    let mut bytes = std::fs::read(&segment).expect("read");
    let start = usize::try_from(offsets[7]).expect("offset");
    let end = usize::try_from(offsets[8]).expect("offset");
    bytes[start..end].fill(0);
    std::fs::write(&segment, bytes).expect("write");
    let (log, report, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    assert_eq!(replayed, written[..7].to_vec());
    assert_eq!(report.torn_tail, None);
    append_all(&log, &records(8, 9, |_| 3));
    log.close().expect("close");
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    let mut expected = written[..7].to_vec();
    expected.extend(records(8, 9, |_| 3));
    assert_eq!(replayed, expected);
}

#[test]
fn a_zeroed_region_in_an_earlier_segment_shows_as_missing_frames() {
    let dir = TempDir::new("zeroed-early");
    let (written, files) = three_segments(&dir.path);
    let offsets = frame_offsets(&written[..5]);
    let mut bytes = std::fs::read(&files[0]).expect("read");
    let start = usize::try_from(offsets[2]).expect("offset");
    bytes[start..start + 6].fill(0);
    std::fs::write(&files[0], bytes).expect("write");
    let (file, offset, reason) = expect_corrupted(open_collect(&dir.path, strict_options(4096), 0));
    assert_eq!((file, offset), (files[1].clone(), 0));
    assert!(reason.contains("frames missing"), "{reason}");
}

#[test]
fn a_segment_of_another_database_is_refused_naming_it_and_verify_lists_it() {
    let dir = TempDir::new("foreign");
    let ours = cairn_log::DatabaseId::generate();
    let theirs = cairn_log::DatabaseId::generate();
    let with_id = |id| {
        let mut options = strict_options(4096);
        options.database_id = id;
        options
    };
    let (log, _, _) = open_collect(&dir.path, with_id(ours), 0).expect("open ours");
    append_all(&log, &records(1, 20, varied));
    log.close().expect("close");
    let segments = segment_files(&dir.path);
    assert!(!segments.is_empty());

    match open_collect(&dir.path, with_id(theirs), 0) {
        Err(LogError::ForeignFile {
            file,
            expected,
            found,
        }) => {
            assert_eq!(file, segments[0]);
            assert_eq!((expected, found), (theirs, ours));
        }
        Err(other) => panic!("expected ForeignFile, got {other}"),
        Ok(_) => panic!("a log of another database opened"),
    }
    // Nothing was changed: the rightful owner still opens it whole.
    let (log, report, replayed) = open_collect(&dir.path, with_id(ours), 0).expect("reopen");
    assert_eq!(replayed.len(), 20);
    assert_eq!(report.last_lsn, 20);
    log.close().expect("close");

    let report =
        verify_dir(&StdFileSystem, &dir.path, 0, Some(theirs), &mut |_, _| {}).expect("verify");
    let segments = segment_files(&dir.path);
    assert_eq!(report.foreign.len(), segments.len(), "{:?}", report.foreign);
    assert!(report
        .foreign
        .iter()
        .all(|segment| segment.database_id == ours));
    let report =
        verify_dir(&StdFileSystem, &dir.path, 0, Some(ours), &mut |_, _| {}).expect("verify");
    assert!(report.foreign.is_empty());
    assert_eq!(report.last_lsn, Some(20));
}

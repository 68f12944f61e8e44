//! Recycled segments (`LogOptions::recycle_segments`): a retired segment written over from the
//! start still holds its previous life's frames after the new ones. These tests check that
//! recovery replays exactly the new frames, at every place the new content can end; that a
//! torn write into a recycled last segment reads as its end; that damage followed by a valid
//! newer frame is still corruption; and that the free list stays bounded.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::path::{Path, PathBuf};

use cairn_log::{list_segments, Log, LogError, LogOptions, SEGMENT_HEADER_BYTES};
use common::{
    append_all, copy_dir, frame_offsets, open_collect, records, strict_options, Record, TempDir,
};

const SEGMENT_BYTES: u64 = 4096;

fn recycling_options(segments: usize) -> LogOptions {
    let mut options = strict_options(SEGMENT_BYTES);
    options.recycle_segments = segments;
    options
}

fn body_bytes(lsn: u64) -> usize {
    usize::try_from(lsn * 53 % 200).expect("small")
}

fn free_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".wal.free"))
        .collect();
    files.sort();
    files
}

/// Writes `1..=last` into a fresh log, retiring everything through `last - keep` every 40
/// frames so that later segments are recycled; returns the log still open.
fn churn(dir: &Path, last: u64, keep: u64) -> Log {
    let (log, _, _) = open_collect(dir, recycling_options(2), 0).expect("open fresh");
    for chunk in records(1, last, body_bytes).chunks(40) {
        append_all(&log, chunk);
        let through = chunk.last().expect("chunk").lsn.saturating_sub(keep);
        log.remove_segments_through(through).expect("retire");
    }
    log
}

#[test]
fn recycled_segments_replay_exactly_their_own_frames() {
    let dir = TempDir::new("recycle-round-trip");
    let log = churn(&dir.path, 2_000, 100);
    let stats = log.stats();
    assert!(stats.segments_recycled > 10, "{stats:?}");
    assert!(free_files(&dir.path).len() <= 2);
    log.close().expect("close");
    let segments = list_segments(&cairn_log::StdFileSystem, &dir.path).expect("list");
    assert!(segments.iter().any(|segment| segment.recycled));
    // Recover above a floor below every kept frame: exactly the kept frames come back, in
    // order, with no frame of a segment's previous life among them.
    let first_kept = segments[0].first_lsn;
    let (log, report, replayed) =
        open_collect(&dir.path, recycling_options(2), first_kept - 1).expect("reopen");
    let expected: Vec<Record> = records(first_kept, 2_000, body_bytes);
    assert_eq!(replayed, expected);
    assert_eq!(report.last_lsn, 2_000);
    assert_eq!(report.torn_tail, None);
    // Appends go on, into a segment the open may itself have recycled.
    append_all(&log, &records(2_001, 2_100, body_bytes));
    log.close().expect("close again");
    let (_, _, replayed) =
        open_collect(&dir.path, recycling_options(2), first_kept - 1).expect("reopen again");
    assert_eq!(replayed.last().map(|record| record.lsn), Some(2_100));
    assert_eq!(replayed.len() as u64, 2_100 - first_kept + 1);
}

/// The last segment and its offset range of own frames, after `churn` and close.
fn last_recycled_segment(dir: &Path) -> (PathBuf, u64, u64) {
    let segments = list_segments(&cairn_log::StdFileSystem, dir).expect("list");
    let last = segments.last().expect("a segment");
    assert!(last.recycled, "the churn should end in a recycled segment");
    // Where a frame after the last own one would start: the end of the own frames.
    let offset = *frame_offsets(&records(last.first_lsn, 2_001, body_bytes))
        .last()
        .expect("a frame");
    let bytes = std::fs::read(&last.path).expect("read");
    let after = usize::try_from(offset).expect("offset");
    assert!(
        bytes[after..].iter().any(|&byte| byte != 0),
        "the previous life's bytes follow the own frames"
    );
    (last.path.clone(), last.first_lsn, offset)
}

#[test]
fn a_recycled_last_segment_cut_at_every_frame_boundary_recovers_that_prefix() {
    let dir = TempDir::new("recycle-prefix");
    churn(&dir.path, 2_000, 100).close().expect("close");
    let (last, first_lsn, own_end) = last_recycled_segment(&dir.path);
    let own: Vec<Record> = records(first_lsn, 2_000, body_bytes);
    let starts = frame_offsets(&own);
    // Tear frame `cut`; the stale frames of the previous life after the own ones stay.
    for cut in 0..own.len() {
        let copy = TempDir::new("recycle-prefix-copy");
        copy_dir(&dir.path, &copy.path);
        let path = copy.path.join(last.file_name().expect("name"));
        let mut bytes = std::fs::read(&path).expect("read");
        let start = usize::try_from(starts[cut]).expect("offset");
        // A torn frame: its first half kept; after it, up to the end of the own frames,
        // bytes that are no frame (what an earlier life can leave between its frames).
        let frame_bytes = cairn_log::encoded_frame_bytes(own[cut].body.len());
        let own_end = usize::try_from(own_end).expect("offset");
        for (index, byte) in bytes[start + frame_bytes / 2..own_end]
            .iter_mut()
            .enumerate()
        {
            *byte = u8::try_from(index % 251).expect("small") ^ 0x5a;
        }
        std::fs::write(&path, &bytes).expect("write");
        let (_, report, replayed) = open_collect(&copy.path, recycling_options(2), first_lsn - 1)
            .unwrap_or_else(|error| panic!("cut at frame {cut}: recovery failed: {error}"));
        assert_eq!(replayed, own[..cut].to_vec(), "cut at frame {cut}");
        assert_eq!(
            report.last_lsn,
            first_lsn + cut as u64 - 1,
            "cut at frame {cut}"
        );
    }
}

#[test]
fn damage_followed_by_a_newer_frame_in_a_recycled_last_segment_is_corruption() {
    let dir = TempDir::new("recycle-damage");
    churn(&dir.path, 2_000, 100).close().expect("close");
    let (last, first_lsn, _) = last_recycled_segment(&dir.path);
    assert!(
        2_000 - first_lsn >= 3,
        "the last segment holds a few frames"
    );
    // Flip a byte inside the first own frame's body: valid newer frames follow it.
    let offset = SEGMENT_HEADER_BYTES + 10;
    common::flip_byte(&last, offset, 0x40);
    let error = open_collect(&dir.path, recycling_options(2), first_lsn - 1)
        .expect_err("damage must not read as the end of the log");
    assert!(
        matches!(&error, LogError::Corrupted { file, .. } if *file == last),
        "{error}"
    );
}

#[test]
fn damage_in_a_recycled_segment_that_is_not_the_last_is_corruption() {
    let dir = TempDir::new("recycle-damage-earlier");
    let log = churn(&dir.path, 2_000, 100);
    // Rotate once more so the recycled segment that ended the churn is no longer the last.
    append_all(&log, &records(2_001, 2_060, body_bytes));
    log.close().expect("close");
    let segments = list_segments(&cairn_log::StdFileSystem, &dir.path).expect("list");
    let earlier = segments
        .iter()
        .rev()
        .skip(1)
        .find(|segment| segment.recycled)
        .expect("a recycled segment before the last");
    common::flip_byte(&earlier.path, SEGMENT_HEADER_BYTES + 10, 0x40);
    let error = open_collect(&dir.path, recycling_options(2), segments[0].first_lsn - 1)
        .expect_err("a lost frame in an earlier segment must be found");
    assert!(matches!(error, LogError::Corrupted { .. }), "{error}");
}

#[test]
fn the_free_list_is_bounded_and_emptied_at_open() {
    let dir = TempDir::new("recycle-bounded");
    let (log, _, _) = open_collect(&dir.path, recycling_options(1), 0).expect("open fresh");
    append_all(&log, &records(1, 400, body_bytes));
    log.remove_segments_through(400).expect("retire");
    assert_eq!(
        free_files(&dir.path).len(),
        1,
        "one kept, the others deleted"
    );
    log.close().expect("close");
    // Every free file an earlier process left is removed at open, never used: its frames
    // need not be older than the LSNs a recovery goes on with.
    std::fs::write(dir.path.join("00000000000000000000.wal.free"), b"short").expect("write");
    let (log, _, _) = open_collect(&dir.path, recycling_options(1), 400).expect("reopen");
    assert_eq!(log.stats().segments_recycled, 0);
    assert!(free_files(&dir.path).is_empty());
    log.close().expect("close");
}

#[test]
fn a_stale_frame_right_after_the_own_ones_ends_a_recycled_segment() {
    // Frames of one size: the own frames of a recycled segment end exactly where a frame of
    // its previous life starts, a valid frame with a lower LSN. That frame ends the segment,
    // in the last segment and in an earlier one, and is never replayed.
    let dir = TempDir::new("recycle-aligned");
    let same_size = |_| 100;
    let (log, _, _) = open_collect(&dir.path, recycling_options(2), 0).expect("open fresh");
    let mut last = 0;
    for chunk in records(1, 600, same_size).chunks(30) {
        append_all(&log, chunk);
        last = chunk.last().expect("chunk").lsn;
        log.remove_segments_through(last.saturating_sub(60))
            .expect("retire");
    }
    assert!(log.stats().segments_recycled > 5);
    log.close().expect("close");
    let segments = list_segments(&cairn_log::StdFileSystem, &dir.path).expect("list");
    let newest = segments.last().expect("a segment");
    assert!(newest.recycled);
    // The bytes right after the newest segment's own frames decode as a stale frame.
    let own = last - newest.first_lsn + 1;
    let end = SEGMENT_HEADER_BYTES + own * cairn_log::encoded_frame_bytes(100) as u64;
    let bytes = std::fs::read(&newest.path).expect("read");
    let after = &bytes[usize::try_from(end).expect("offset")..];
    match cairn_log::decode_frame(after, 1 << 20) {
        cairn_log::Decoded::Frame { frame, .. } => assert!(frame.lsn < newest.first_lsn),
        other => panic!("expected a stale frame after the own ones, found {other:?}"),
    }
    let first_kept = segments[0].first_lsn;
    let (log, report, replayed) =
        open_collect(&dir.path, recycling_options(2), first_kept - 1).expect("reopen");
    assert_eq!(replayed, records(first_kept, last, same_size));
    assert_eq!(report.torn_tail, None);
    // The same segment, now followed by the one this open started, reads the same way.
    append_all(&log, &records(last + 1, last + 5, same_size));
    log.close().expect("close");
    let (_, _, replayed) =
        open_collect(&dir.path, recycling_options(2), first_kept - 1).expect("reopen again");
    assert_eq!(replayed, records(first_kept, last + 5, same_size));
}

#[test]
fn a_segment_found_at_open_is_deleted_when_retired_not_recycled() {
    // A crash can leave frames after a gap of unwritten bytes in the last segment; recovery
    // ends the log before the gap and reuses those LSNs. Such a file must never be written
    // over as a recycled segment, or its leftovers would read as new frames.
    let dir = TempDir::new("recycle-found");
    let (log, _, _) = open_collect(&dir.path, recycling_options(2), 0).expect("open fresh");
    append_all(&log, &records(1, 10, body_bytes));
    log.close().expect("close");
    let found = list_segments(&cairn_log::StdFileSystem, &dir.path).expect("list");
    let found_name = found[0].path.file_name().expect("name").to_owned();
    let (log, _, _) = open_collect(&dir.path, recycling_options(2), 0).expect("reopen");
    append_all(&log, &records(11, 200, body_bytes));
    log.remove_segments_through(150).expect("retire");
    let mut free_name = found_name.clone();
    free_name.push(".free");
    assert!(!dir.path.join(&free_name).exists(), "kept for recycling");
    assert!(!dir.path.join(&found_name).exists(), "not deleted");
    assert!(
        !free_files(&dir.path).is_empty(),
        "segments this log wrote are kept"
    );
    log.close().expect("close");
}

#[test]
fn an_unwritten_own_frame_before_a_persisted_later_one_reads_as_the_end() {
    // A power cut that persisted a later page of the last group but not an earlier one: in a
    // recycled segment the earlier page still holds the previous life's bytes. That is the
    // end of the log, as zeros are in a new segment, not corruption. A damaged LSN field of
    // an own frame is still recognised as the own frame, and then a newer frame after it is.
    let dir = TempDir::new("recycle-reordered");
    churn(&dir.path, 2_000, 100).close().expect("close");
    let (last, first_lsn, _) = last_recycled_segment(&dir.path);
    let own: Vec<Record> = records(first_lsn, 2_000, body_bytes);
    assert!(own.len() >= 4, "the last segment holds a few frames");
    let starts = frame_offsets(&own);
    let cut = 1;
    let (start, end) = (starts[cut], starts[cut + 1]);
    for (damage, expect_corrupted) in [("stale bytes", false), ("LSN field", true)] {
        let copy = TempDir::new("recycle-reordered-copy");
        copy_dir(&dir.path, &copy.path);
        let path = copy.path.join(last.file_name().expect("name"));
        let mut bytes = std::fs::read(&path).expect("read");
        let (start, end) = (
            usize::try_from(start).expect("offset"),
            usize::try_from(end).expect("offset"),
        );
        if expect_corrupted {
            bytes[start + 6] ^= 0x10; // one bit of the LSN field
        } else {
            // Stand-in for the page the previous life left: no frame starts here.
            for (index, byte) in bytes[start..end].iter_mut().enumerate() {
                *byte = u8::try_from(index % 13).expect("small") | 0x80;
            }
        }
        std::fs::write(&path, &bytes).expect("write");
        let opened = open_collect(&copy.path, recycling_options(2), first_lsn - 1);
        if expect_corrupted {
            let error = opened.expect_err(damage);
            assert!(
                matches!(error, LogError::Corrupted { .. }),
                "{damage}: {error}"
            );
        } else {
            let (_, report, replayed) = opened.unwrap_or_else(|error| panic!("{damage}: {error}"));
            assert_eq!(replayed, own[..cut].to_vec(), "{damage}");
            assert_eq!(report.last_lsn, first_lsn + cut as u64 - 1, "{damage}");
        }
    }
}

#[test]
fn salvage_counts_only_the_own_frames_of_a_recycled_segment_it_sets_aside() {
    let dir = TempDir::new("recycle-salvage");
    let log = churn(&dir.path, 2_000, 100);
    append_all(&log, &records(2_001, 2_060, body_bytes));
    log.close().expect("close");
    let segments = list_segments(&cairn_log::StdFileSystem, &dir.path).expect("list");
    let [.., earlier, last] = &segments[..] else {
        panic!("at least two segments");
    };
    assert!(earlier.recycled && last.recycled, "{segments:?}");
    // Damage the first own frame of the segment before the last: the last one follows a
    // gap and is set aside whole.
    common::flip_byte(&earlier.path, SEGMENT_HEADER_BYTES + 30, 0x40);
    let mut options = recycling_options(2);
    options.recovery = cairn_log::RecoveryMode::Salvage;
    let (_, report, _) =
        open_collect(&dir.path, options, segments[0].first_lsn - 1).expect("salvage");
    let aside = report
        .salvaged
        .iter()
        .find(|dropped| dropped.file == last.path)
        .expect("the last segment is set aside");
    assert_eq!(aside.frames_after, 2_060 - last.first_lsn + 1, "{aside:?}");
}

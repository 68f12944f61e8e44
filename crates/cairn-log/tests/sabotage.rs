//! The deliberately broken builds (feature `sabotage`) really are broken the way the crash
//! matrix expects: no segment sync, no directory sync, every invalid frame taken as the end.
//! Run with `cargo test -p cairn-log --features sabotage`.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![cfg(feature = "sabotage")]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_log::{segment_file_name, Sabotage};
use common::{
    append_all, flip_byte, frame_offsets, open_collect, open_collect_on, records, segment_files,
    strict_options, FaultyFs, TempDir,
};

#[test]
fn ack_before_fsync_never_syncs_segments_yet_reports_durable() {
    let dir = TempDir::new("sabotage-ack");
    let fs = Arc::new(FaultyFs::default());
    let faults = Arc::clone(&fs.faults);
    let mut options = strict_options(4096);
    options.sabotage = Sabotage::AckBeforeFsync;
    let (log, _, _) = open_collect_on(fs, &dir.path, options, 0).expect("open");
    append_all(&log, &records(1, 80, |_| 100));
    assert_eq!(log.durable_lsn(), 80);
    assert_eq!(faults.sync_data_calls.load(Ordering::SeqCst), 0);
    assert_eq!(log.stats().syncs, 0);
}

#[test]
fn no_dir_sync_never_syncs_the_directory() {
    let dir = TempDir::new("sabotage-dir");
    let fs = Arc::new(FaultyFs::default());
    // Any directory sync would fail and poison the log.
    fs.faults.fail_sync_dir.store(true, Ordering::SeqCst);
    let mut options = strict_options(4096);
    options.sabotage = Sabotage::NoDirSync;
    let (log, _, _) = open_collect_on(fs, &dir.path, options, 0).expect("open");
    append_all(&log, &records(1, 80, |_| 100));
    assert!(log.remove_segments_through(40).expect("remove") > 0);
    assert!(!log.is_poisoned());
}

#[test]
fn crc_failure_is_torn_tail_hides_corruption_and_drops_later_segments() {
    let dir = TempDir::new("sabotage-crc");
    let written = records(1, 100, |_| 150);
    let (log, _, _) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    append_all(&log, &written);
    log.close().expect("close");
    drop(log);
    let files = segment_files(&dir.path);
    assert!(files.len() >= 4);
    let offsets = frame_offsets(&written[..5]);
    flip_byte(&files[0], offsets[3] + 30, 0x01);
    let mut options = strict_options(4096);
    options.sabotage = Sabotage::CrcFailureIsTornTail;
    let (_log, report, replayed) = open_collect(&dir.path, options, 0).expect("open");
    assert_eq!(replayed, written[..3].to_vec());
    let torn = report.torn_tail.expect("reported as a torn tail");
    assert_eq!((torn.file, torn.offset), (files[0].clone(), offsets[3]));
    assert!(report.salvaged.is_empty());
    // Everything after the damage is gone, silently: the defect the matrix must catch.
    assert_eq!(
        segment_files(&dir.path),
        vec![files[0].clone(), dir.path.join(segment_file_name(4))]
    );
}

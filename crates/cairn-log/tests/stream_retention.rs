//! Retention of durable streams through the public API: each policy (bytes on disk, age by
//! batch timestamps, message count) deletes whole old segments and moves the first offset,
//! never the active segment; consumer groups hold it back when asked; the bound per pass;
//! the maintenance thread; reopen and power loss after retention; and a seeded random run
//! checking that offsets stay dense, the first offset only grows and every kept message is
//! the one appended.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::stream::{Retention, StreamError};
use cairn_log::{Clock, FileSystem, Message, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::{CrashMode, FaultFs, SplitMix64};

const DIR: &str = "/retention";
const SEGMENT: u64 = 4096;

fn options(sync: SyncPolicy, clock: &Arc<AtomicU64>) -> StreamOptions {
    let mut options = StreamOptions::new(sync);
    options.segment_bytes = SEGMENT;
    options.index_interval_bytes = 512;
    let now = Arc::clone(clock);
    options.clock = Clock::new(move || now.load(Ordering::SeqCst));
    options
}

fn buffered() -> SyncPolicy {
    SyncPolicy::Buffered {
        flush_interval: Duration::from_millis(5),
        buffer_bytes_max: 1 << 20,
    }
}

fn open(fs: &Arc<FaultFs>, options: StreamOptions) -> Streams {
    Streams::open(fs.clone(), Path::new(DIR), options).expect("open")
}

/// Appends `count` messages whose value is their offset (padded to 100 bytes), one per batch.
fn append(streams: &Streams, name: &str, count: u64) {
    for _ in 0..count {
        let next = streams.info(name).expect("info").next_offset;
        let value = format!("{next:0100}");
        assert_eq!(
            streams
                .append(name, &Message::value(value))
                .expect("append"),
            next
        );
    }
}

fn segment_files(fs: &FaultFs, streams: &Streams) -> usize {
    let dirs = fs.list_dir(streams.dir()).expect("list");
    dirs.iter()
        .filter(|name| name.len() == 20)
        .map(|name| {
            fs.list_dir(&streams.dir().join(name))
                .expect("list stream")
                .iter()
                .filter(|file| Path::new(file).extension().is_some_and(|ext| ext == "wal"))
                .count()
        })
        .sum()
}

/// Every offset from the first readable one to the end reads back as appended, densely.
fn check_dense(streams: &Streams, name: &str) {
    let info = streams.info(name).expect("info");
    let mut from = info.first_offset;
    while from < info.next_offset {
        let read = streams
            .read_range(name, from, 1000, usize::MAX)
            .expect("read_range");
        assert!(
            !read.is_empty(),
            "nothing at {from} below {}",
            info.next_offset
        );
        for message in read {
            assert_eq!(message.offset, from);
            assert_eq!(message.message.value, format!("{from:0100}").into_bytes());
            from += 1;
        }
    }
    assert_eq!(from, info.next_offset);
    if info.first_offset > 0 {
        assert!(matches!(
            streams.read(name, info.first_offset - 1),
            Err(StreamError::Truncated { .. })
        ));
    }
}

/// Retention passes until no stream has more to delete; the segments deleted.
fn drain(streams: &Streams) -> u64 {
    let mut removed = 0;
    loop {
        let report = streams.apply_retention().expect("apply_retention");
        removed += report.segments_removed;
        if report.streams_with_more == 0 {
            return removed;
        }
    }
}

#[test]
fn count_keeps_the_newest_messages_and_the_active_segment() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let clock = Arc::new(AtomicU64::new(1_000));
        let fs = Arc::new(FaultFs::new());
        let mut options = options(sync, &clock);
        options.retention_overrides.insert(
            "kept".to_owned(),
            Retention {
                max_messages: Some(100),
                ..Retention::NONE
            },
        );
        let streams = open(&fs, options);
        streams.create("kept").expect("create");
        streams.create("other").expect("create");
        append(&streams, "kept", 400);
        append(&streams, "other", 400);
        streams.sync().expect("sync");
        let before = segment_files(&fs, &streams);
        assert!(drain(&streams) > 0);
        let info = streams.info("kept").expect("info");
        assert!(info.first_offset > 0);
        // Never one of the newest 100; at most about one segment (36 messages) more.
        assert!(info.next_offset - info.first_offset >= 100, "{info:?}");
        assert!(info.next_offset - info.first_offset < 100 + 40, "{info:?}");
        assert!(segment_files(&fs, &streams) < before);
        assert_eq!(streams.info("other").expect("info").first_offset, 0);
        check_dense(&streams, "kept");
        check_dense(&streams, "other");

        // Zero keeps only what the active segment holds, and never deletes it.
        streams
            .set_retention(
                "kept",
                Retention {
                    max_messages: Some(0),
                    ..Retention::NONE
                },
            )
            .expect("set_retention");
        drain(&streams);
        let (segments, _) = streams.index_counts("kept").expect("index_counts");
        assert_eq!(segments, 1);
        let info = streams.info("kept").expect("info");
        assert!(info.first_offset < info.next_offset, "{info:?}");
        check_dense(&streams, "kept");
        append(&streams, "kept", 50);
        check_dense(&streams, "kept");
        streams.close().expect("close");
    }
}

#[test]
fn bytes_keep_the_newest_segments_on_disk() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let fs = Arc::new(FaultFs::new());
    let mut options = options(SyncPolicy::Strict, &clock);
    options.retention = Retention {
        max_bytes: Some(2 * SEGMENT),
        ..Retention::NONE
    };
    let streams = open(&fs, options);
    streams.create("s").expect("create");
    append(&streams, "s", 300);
    assert!(segment_files(&fs, &streams) > 3);
    drain(&streams);
    // Each segment file is preallocated to SEGMENT bytes: two of them hold 2 * SEGMENT.
    assert_eq!(segment_files(&fs, &streams), 2);
    check_dense(&streams, "s");
}

#[test]
fn age_deletes_only_segments_whose_every_message_is_old() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let fs = Arc::new(FaultFs::new());
    let mut options = options(SyncPolicy::Strict, &clock);
    options.retention = Retention {
        max_age_ms: Some(5_000),
        ..Retention::NONE
    };
    let streams = open(&fs, options);
    streams.create("s").expect("create");
    // Offset n is stamped 1000 + 100 n.
    for _ in 0..300 {
        append(&streams, "s", 1);
        clock.fetch_add(100, Ordering::SeqCst);
    }
    // Now 31 000: messages stamped before 26 000 (offsets below 250) are older than 5 s.
    assert!(drain(&streams) > 0);
    let info = streams.info("s").expect("info");
    let first = streams
        .read("s", info.first_offset)
        .expect("read")
        .expect("first message");
    assert!(
        info.first_offset > 0 && info.first_offset <= 250,
        "{info:?}"
    );
    // Everything deleted was older than the limit: the message just below the first kept
    // one was at most as new as the first kept (timestamps never decrease) and its whole
    // segment was older, so the first kept segment starts before the cut-off plus a segment.
    assert!(first.timestamp_ms < 26_000 + 100 * 40, "{first:?}");
    check_dense(&streams, "s");
    // Nothing more goes until time passes.
    assert_eq!(drain(&streams), 0);
    clock.fetch_add(60_000, Ordering::SeqCst);
    drain(&streams);
    assert_eq!(streams.index_counts("s").expect("counts").0, 1);
    check_dense(&streams, "s");
}

#[test]
fn groups_hold_retention_back_when_asked() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let clock = Arc::new(AtomicU64::new(1_000));
        let fs = Arc::new(FaultFs::new());
        let mut options = options(sync, &clock);
        options.retention = Retention {
            max_messages: Some(0),
            respect_groups: true,
            ..Retention::NONE
        };
        let streams = open(&fs, options);
        streams.create("s").expect("create");
        append(&streams, "s", 300);
        assert!(streams.create_group("s", "slow", 0).expect("group"));
        assert!(streams.create_group("s", "fast", 0).expect("group"));
        streams.commit("s", "fast", 300).expect("commit");
        assert_eq!(drain(&streams), 0);
        assert_eq!(streams.info("s").expect("info").first_offset, 0);
        streams.commit("s", "slow", 120).expect("commit");
        // Buffered: the committed offset counts once the GROUPS file holds it.
        streams.close().expect("close");
        drop(streams);
        let mut options = options_again(&clock);
        options.retention.respect_groups = true;
        let streams = open(&fs, options);
        drain(&streams);
        let info = streams.info("s").expect("info");
        assert!(
            info.first_offset > 0 && info.first_offset <= 120,
            "{info:?}"
        );
        check_dense(&streams, "s");
        // Without the option, groups do not hold it back; the group then reads from the
        // first readable offset.
        let mut unguarded = streams.retention("s").expect("retention");
        unguarded.respect_groups = false;
        streams.set_retention("s", unguarded).expect("set");
        drain(&streams);
        let info = streams.info("s").expect("info");
        assert!(info.first_offset > 120, "{info:?}");
        let read = streams.read_group("s", "slow", "c", 1).expect("read_group");
        assert_eq!(read[0].offset, info.first_offset);
    }
}

fn options_again(clock: &Arc<AtomicU64>) -> StreamOptions {
    let mut options = options(SyncPolicy::Strict, clock);
    options.retention = Retention {
        max_messages: Some(0),
        ..Retention::NONE
    };
    options
}

#[test]
fn a_pass_is_bounded_and_the_maintenance_thread_applies_it() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let fs = Arc::new(FaultFs::new());
    let mut options = options(SyncPolicy::Strict, &clock);
    options.retention_segments_per_pass = 1;
    let streams = open(&fs, options.clone());
    streams.create("s").expect("create");
    append(&streams, "s", 300);
    streams
        .set_retention(
            "s",
            Retention {
                max_messages: Some(0),
                ..Retention::NONE
            },
        )
        .expect("set");
    let report = streams.apply_retention().expect("apply");
    assert_eq!((report.segments_removed, report.streams_with_more), (1, 1));
    assert!(report.messages_removed > 0);
    streams.close().expect("close");
    drop(streams);

    options.retention = Retention {
        max_messages: Some(0),
        ..Retention::NONE
    };
    options.retention_interval = Some(Duration::from_millis(5));
    let streams = open(&fs, options);
    let deadline = Instant::now() + Duration::from_secs(30);
    // After a reopen appends go to a new, empty segment; the last segment holding messages
    // stays (its end is not a batch start retention could move the first offset to).
    while streams.index_counts("s").expect("counts").0 > 2 {
        assert!(
            Instant::now() < deadline,
            "the maintenance thread did nothing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    check_dense(&streams, "s");
}

#[test]
fn retention_survives_reopen_and_power_loss() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let mut fs = Arc::new(FaultFs::new());
    let mut options = options(SyncPolicy::Strict, &clock);
    options.retention = Retention {
        max_messages: Some(50),
        ..Retention::NONE
    };
    let streams = open(&fs, options.clone());
    streams.create("s").expect("create");
    append(&streams, "s", 300);
    drain(&streams);
    let info = streams.info("s").expect("info");
    assert!(info.first_offset > 0);
    let image = fs.crash(CrashMode::POWER_LOSS);
    drop(streams);
    fs = image;
    let streams = open(&fs, options.clone());
    assert_eq!(streams.info("s").expect("info"), info);
    check_dense(&streams, "s");
    append(&streams, "s", 100);
    drain(&streams);
    check_dense(&streams, "s");
    streams.close().expect("close");
    drop(streams);
    let streams = open(&fs, options);
    check_dense(&streams, "s");
}

#[test]
fn random_runs_keep_offsets_dense_and_the_first_offset_growing() {
    let seed = std::env::var("CAIRN_STREAM_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_2e7e);
    for run in 0..4_u64 {
        let mut rng = SplitMix64::new(seed ^ run);
        let sync = if run % 2 == 0 {
            SyncPolicy::Strict
        } else {
            buffered()
        };
        let clock = Arc::new(AtomicU64::new(1_000));
        let mut fs = Arc::new(FaultFs::new());
        let options = options(sync.clone(), &clock);
        let mut streams = open(&fs, options.clone());
        streams.create("s").expect("create");
        let mut first = 0_u64;
        let mut next = 0_u64;
        for step in 0..200 {
            match rng.below(10) {
                0..=4 => {
                    let count = 1 + rng.below(20) as u64;
                    append(&streams, "s", count);
                    next += count;
                    clock.fetch_add(rng.below(50) as u64, Ordering::SeqCst);
                }
                5 => {
                    let retention = Retention {
                        max_bytes: (rng.below(2) == 0).then(|| rng.below(6) as u64 * SEGMENT),
                        max_age_ms: (rng.below(2) == 0).then(|| rng.below(2_000) as u64),
                        max_messages: (rng.below(2) == 0).then(|| rng.below(300) as u64),
                        respect_groups: rng.below(2) == 0,
                    };
                    streams.set_retention("s", retention).expect("set");
                }
                6 | 7 => {
                    streams.apply_retention().expect("apply");
                }
                8 => {
                    let to =
                        first + rng.below(usize::try_from(next - first + 1).expect("small")) as u64;
                    streams.truncate_before("s", to).expect("truncate");
                }
                _ => {
                    // Strict only: a power loss keeps everything acknowledged.
                    if matches!(sync, SyncPolicy::Strict) && rng.below(2) == 0 {
                        let image = fs.crash(CrashMode::POWER_LOSS);
                        drop(streams);
                        fs = image;
                    } else {
                        streams.close().expect("close");
                        drop(streams);
                    }
                    streams = open(&fs, options.clone());
                }
            }
            let info = streams.info("s").expect("info");
            assert!(
                info.first_offset >= first,
                "run {run} step {step}: {info:?}"
            );
            assert_eq!(info.next_offset, next, "run {run} step {step}");
            first = info.first_offset;
            check_dense(&streams, "s");
        }
    }
}

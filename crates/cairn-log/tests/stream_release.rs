//! Many streams through the public API: idle streams release their log and reopen on next
//! use with nothing lost (in both sync modes, across a power loss), what keeps a stream open
//! (pending group messages, blocked readers), the `open_streams_max` bound (least recently
//! used released first, `TooManyOpenStreams` when nothing can be), the maintenance thread,
//! lazy open touching no log, and retention and cursors across releases.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cairn_log::stream::{Retention, Start, StreamError};
use cairn_log::{Clock, FileSystem, Message, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::{CrashMode, FaultFs};

const DIR: &str = "/many";

fn buffered() -> SyncPolicy {
    SyncPolicy::Buffered {
        flush_interval: Duration::from_secs(3600),
        buffer_bytes_max: 1 << 20,
    }
}

fn options(sync: SyncPolicy) -> StreamOptions {
    let mut options = StreamOptions::new(sync);
    options.segment_bytes = 4096;
    options
}

fn open(fs: &Arc<FaultFs>, options: StreamOptions) -> Streams {
    Streams::open(fs.clone(), Path::new(DIR), options).expect("open")
}

fn value(name: &str, offset: u64) -> Vec<u8> {
    format!("{name}:{offset:040}").into_bytes()
}

fn append(streams: &Streams, name: &str, count: u64) {
    for _ in 0..count {
        let next = streams.info(name).expect("info").next_offset;
        let at = streams
            .append(name, &Message::value(value(name, next)))
            .expect("append");
        assert_eq!(at, next);
    }
}

fn check(streams: &Streams, name: &str, next: u64) {
    let info = streams.info(name).expect("info");
    assert_eq!(info.next_offset, next, "{name}");
    let mut from = info.first_offset;
    while from < next {
        let read = streams
            .read_range(name, from, 1000, usize::MAX)
            .expect("read");
        assert!(!read.is_empty());
        for message in read {
            assert_eq!(message.offset, from);
            assert_eq!(message.message.value, value(name, from));
            from += 1;
        }
    }
}

fn segment_files(fs: &FaultFs) -> usize {
    let root = Path::new(DIR);
    fs.list_dir(root)
        .expect("list")
        .iter()
        .filter(|name| name.len() == 20)
        .map(|name| {
            fs.list_dir(&root.join(name))
                .expect("list")
                .iter()
                .filter(|file| Path::new(file).extension().is_some_and(|ext| ext == "wal"))
                .count()
        })
        .sum()
}

#[test]
fn idle_streams_release_and_reopen_with_nothing_lost() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let mut fs = Arc::new(FaultFs::new());
        let streams = open(&fs, options(sync.clone()));
        for name in ["a", "b", "c"] {
            streams.create(name).expect("create");
            append(&streams, name, 100);
        }
        assert_eq!(streams.open_counts(), (3, 3));
        assert_eq!(streams.release_idle(Duration::ZERO).expect("release"), 3);
        assert_eq!(streams.open_counts(), (3, 0));
        // Offsets come from the descriptor: no reopen.
        assert_eq!(streams.info("a").expect("info").next_offset, 100);
        assert_eq!(streams.open_counts(), (3, 0));
        check(&streams, "a", 100);
        assert_eq!(streams.open_counts(), (3, 1));
        append(&streams, "a", 10);
        append(&streams, "b", 10);
        check(&streams, "b", 110);
        assert_eq!(streams.release_idle(Duration::ZERO).expect("release"), 2);
        // A release makes Buffered appends durable: a power loss now loses nothing.
        let image = fs.crash(CrashMode::POWER_LOSS);
        drop(streams);
        fs = image;
        let streams = open(&fs, options(sync));
        check(&streams, "a", 110);
        check(&streams, "b", 110);
        check(&streams, "c", 100);
        streams.close().expect("close");
    }
}

#[test]
fn pending_messages_and_blocked_readers_keep_a_stream_open() {
    let fs = Arc::new(FaultFs::new());
    let streams = Arc::new(open(&fs, options(SyncPolicy::Strict)));
    streams.create("g").expect("create");
    append(&streams, "g", 5);
    assert!(streams.create_group("g", "workers", 0).expect("group"));
    assert_eq!(
        streams
            .read_group("g", "workers", "w1", 3)
            .expect("read")
            .len(),
        3
    );
    assert!(!streams.release("g").expect("release"));
    assert_eq!(streams.ack("g", "workers", &[0, 1, 2]).expect("ack"), 3);
    assert!(streams.release("g").expect("release"));
    // The committed offset survived the release.
    let info = streams.group_info("g").expect("groups");
    assert_eq!(info[0].committed, 3);

    streams.create("w").expect("create");
    let reader = {
        let streams = Arc::clone(&streams);
        thread::spawn(move || {
            streams
                .read_blocking("w", 0, 10, usize::MAX, Duration::from_secs(30))
                .expect("read_blocking")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    // While the reader waits, the stream is held and is not released.
    thread::sleep(Duration::from_millis(30));
    assert!(!streams.release("w").expect("release"));
    append(&streams, "w", 1);
    let read = reader.join().expect("reader");
    assert_eq!(read.len(), 1);
    assert!(Instant::now() < deadline);
    assert!(streams.release("w").expect("release"));
}

#[test]
fn the_open_bound_releases_the_least_recently_used_or_fails() {
    let fs = Arc::new(FaultFs::new());
    let mut options = options(SyncPolicy::Strict);
    options.open_streams_max = Some(2);
    let streams = open(&fs, options.clone());
    for name in ["a", "b", "c", "d"] {
        streams.create(name).expect("create");
        append(&streams, name, 20);
        assert!(streams.open_counts().1 <= 2);
    }
    assert_eq!(streams.open_counts(), (4, 2));
    // Round-robin use: every stream reopens as needed, never more than two open.
    for round in 0..3 {
        for name in ["a", "b", "c", "d"] {
            append(&streams, name, 1);
            check(&streams, name, 21 + round);
            assert!(streams.open_counts().1 <= 2);
        }
    }
    // Two streams pinned by pending messages: a third cannot open.
    for name in ["a", "b"] {
        assert!(streams.create_group(name, "g", 0).expect("group"));
        assert!(!streams
            .read_group(name, "g", "c", 1)
            .expect("read")
            .is_empty());
    }
    match streams.append("c", &Message::value("x")) {
        Err(StreamError::TooManyOpenStreams { limit: 2 }) => {}
        other => panic!("expected TooManyOpenStreams, got {other:?}"),
    }
    assert!(matches!(
        streams.create("e"),
        Err(StreamError::TooManyOpenStreams { limit: 2 })
    ));
    streams.commit("a", "g", 1).expect("commit");
    append(&streams, "c", 1);
    check(&streams, "c", 24);
    streams.close().expect("close");
    // Open or released, no stream takes an append after close.
    for name in ["a", "b", "c", "d"] {
        assert!(matches!(
            streams.append(name, &Message::value("late")),
            Err(StreamError::Log(cairn_log::LogError::Closed))
        ));
    }
    drop(streams);
    // Eager open with a bound: every stream is recovered, at most two stay open.
    let streams = open(&fs, options);
    assert_eq!(streams.open_counts(), (4, 2));
    check(&streams, "d", 23);
}

#[test]
fn the_maintenance_thread_releases_idle_streams() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let fs = Arc::new(FaultFs::new());
        let mut options = options(sync);
        options.idle_release_after = Some(Duration::from_millis(20));
        let streams = open(&fs, options);
        for name in ["a", "b"] {
            streams.create(name).expect("create");
            append(&streams, name, 10);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while streams.open_counts().1 > 0 {
            assert!(Instant::now() < deadline, "nothing was released");
            thread::sleep(Duration::from_millis(5));
        }
        check(&streams, "a", 10);
        append(&streams, "b", 5);
        check(&streams, "b", 15);
    }
}

#[test]
fn lazy_open_reads_metadata_only_and_opens_on_use() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(&fs, options(SyncPolicy::Strict));
    for index in 0..20 {
        let name = format!("s{index}");
        streams.create(&name).expect("create");
        append(&streams, &name, 3);
    }
    streams.close().expect("close");
    drop(streams);
    let files = segment_files(&fs);
    let mut lazy = options(SyncPolicy::Strict);
    lazy.lazy_open = true;
    let streams = open(&fs, lazy);
    assert_eq!(streams.open_counts(), (20, 0));
    // No log was opened: an eager open would have created a segment per stream.
    assert_eq!(segment_files(&fs), files);
    assert_eq!(streams.list().len(), 20);
    check(&streams, "s7", 3);
    assert_eq!(streams.open_counts(), (20, 1));
    assert_eq!(segment_files(&fs), files + 1);
    append(&streams, "s7", 2);
    check(&streams, "s7", 5);
    assert!(streams.delete("s8").expect("delete"));
    assert_eq!(streams.open_counts(), (19, 1));
}

#[test]
fn retention_and_cursors_work_across_releases() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let fs = Arc::new(FaultFs::new());
    let mut options = options(SyncPolicy::Strict);
    let now = Arc::clone(&clock);
    options.clock = Clock::new(move || now.load(Ordering::SeqCst));
    options.retention = Retention {
        max_age_ms: Some(10_000),
        ..Retention::NONE
    };
    let streams = open(&fs, options);
    streams.create("old").expect("create");
    for _ in 0..200 {
        append(&streams, "old", 1);
        clock.fetch_add(10, Ordering::SeqCst);
    }
    let mut cursor = streams
        .cursor("old", Start::Offset(0))
        .expect("cursor")
        .with_batch(1, usize::MAX);
    assert_eq!(cursor.next_message().expect("next").expect("m").offset, 0);
    assert!(streams.release("old").expect("release"));
    // The cursor reopens the stream.
    assert_eq!(cursor.next_message().expect("next").expect("m").offset, 1);
    assert_eq!(streams.open_counts(), (1, 1));
    assert!(streams.release("old").expect("release"));
    // Nothing is old enough yet; then everything but the newest segment is.
    assert_eq!(
        streams.apply_retention().expect("apply").segments_removed,
        0
    );
    // Not due: the released stream was not reopened to find that out.
    assert_eq!(streams.open_counts(), (1, 0));
    clock.fetch_add(100_000, Ordering::SeqCst);
    let mut removed = 0;
    loop {
        let report = streams.apply_retention().expect("apply");
        removed += report.segments_removed;
        if report.streams_with_more == 0 {
            break;
        }
    }
    assert!(removed > 0);
    let info = streams.info("old").expect("info");
    assert!(info.first_offset > 0);
    check(&streams, "old", 200);
}

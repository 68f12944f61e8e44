//! Replay cursors through the public API: replay from an offset or a time across many
//! segments in bounded batches, following appends at the head (blocking, with time-outs),
//! truncation and retention under the cursor (typed error or skip), deletion, re-creation and
//! close, in both sync modes.

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

use cairn_log::stream::{Retention, Start, StreamError, Truncation};
use cairn_log::{Clock, LogError, Message, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::FaultFs;

fn buffered() -> SyncPolicy {
    SyncPolicy::Buffered {
        flush_interval: Duration::from_millis(5),
        buffer_bytes_max: 1 << 20,
    }
}

fn open(sync: SyncPolicy, clock: &Arc<AtomicU64>) -> Streams {
    let mut options = StreamOptions::new(sync);
    options.segment_bytes = 4096;
    options.index_interval_bytes = 256;
    options.tail_bytes_max = 0;
    let now = Arc::clone(clock);
    options.clock = Clock::new(move || now.load(Ordering::SeqCst));
    Streams::open(Arc::new(FaultFs::new()), Path::new("/cursor"), options).expect("open")
}

fn value(offset: u64) -> Vec<u8> {
    format!("message {offset:060}").into_bytes()
}

fn append(streams: &Streams, name: &str, count: u64) {
    for _ in 0..count {
        let next = streams.info(name).expect("info").next_offset;
        streams
            .append(name, &Message::value(value(next)))
            .expect("append");
    }
}

#[test]
fn replays_across_segments_in_bounded_batches_then_picks_up_appends() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let clock = Arc::new(AtomicU64::new(1_000));
        let streams = open(sync.clone(), &clock);
        streams.create("s").expect("create");
        append(&streams, "s", 500);
        // About 90 bytes of frame per message: the stream spans about 11 segments of 4 KiB.
        let mut cursor = streams
            .cursor("s", Start::Offset(0))
            .expect("cursor")
            .with_batch(7, usize::MAX);
        let batch = cursor.next_batch().expect("batch");
        assert_eq!(batch.len(), 7);
        assert_eq!(cursor.position(), 7);
        let mut expected = 7;
        for message in cursor.by_ref() {
            let message = message.expect("message");
            assert_eq!(message.offset, expected);
            assert_eq!(message.message.value, value(expected));
            expected += 1;
        }
        assert_eq!(expected, 500);
        if matches!(sync, SyncPolicy::Strict) {
            // Buffered may still serve everything from the in-memory tail.
            let counts = streams.index_counts("s").expect("counts");
            assert!(counts.0 > 5, "{counts:?}");
        }
        // At the head: nothing, then what is appended.
        assert!(cursor.next_message().expect("next").is_none());
        append(&streams, "s", 3);
        let offsets: Vec<u64> = cursor.by_ref().map(|m| m.expect("m").offset).collect();
        assert_eq!(offsets, [500, 501, 502]);
        // A byte bound smaller than a message still yields one message per read.
        let mut small = streams
            .cursor("s", Start::Offset(10))
            .expect("cursor")
            .with_batch(1000, 1);
        assert_eq!(small.next_batch().expect("batch").len(), 1);
        assert_eq!(small.position(), 11);
    }
}

#[test]
fn starts_at_a_time() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let streams = open(SyncPolicy::Strict, &clock);
    streams.create("s").expect("create");
    for _ in 0..200 {
        append(&streams, "s", 1);
        clock.fetch_add(10, Ordering::SeqCst);
    }
    // Offset n is stamped 1000 + 10 n.
    let mut cursor = streams.cursor("s", Start::Time(1_555)).expect("cursor");
    let first = cursor.next_message().expect("next").expect("a message");
    assert_eq!((first.offset, first.timestamp_ms), (56, 1_560));
    let mut late = streams.cursor("s", Start::Time(1_000_000)).expect("cursor");
    assert_eq!(late.position(), 200);
    assert!(late.next_message().expect("next").is_none());
    append(&streams, "s", 1);
    assert_eq!(late.next_message().expect("next").expect("new").offset, 200);
}

#[test]
fn follows_the_tail_with_blocking_reads() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let clock = Arc::new(AtomicU64::new(1_000));
        let streams = Arc::new(open(sync, &clock));
        streams.create("s").expect("create");
        append(&streams, "s", 10);
        let mut cursor = streams.cursor("s", Start::Offset(0)).expect("cursor");
        let writer = {
            let streams = Arc::clone(&streams);
            thread::spawn(move || {
                for _ in 0..20 {
                    thread::sleep(Duration::from_millis(2));
                    append(&streams, "s", 5);
                }
            })
        };
        for expected in 0..110 {
            let message = cursor
                .next_blocking(Duration::from_secs(30))
                .expect("next_blocking")
                .expect("a message before the deadline");
            assert_eq!(message.offset, expected);
            assert_eq!(message.message.value, value(expected));
        }
        writer.join().expect("writer");
        let started = Instant::now();
        assert!(cursor
            .next_blocking(Duration::from_millis(30))
            .expect("next_blocking")
            .is_none());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}

#[test]
fn truncation_under_the_cursor_is_an_error_or_skipped() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let streams = open(SyncPolicy::Strict, &clock);
    streams.create("s").expect("create");
    append(&streams, "s", 300);
    let mut strict = streams
        .cursor("s", Start::Offset(0))
        .expect("cursor")
        .with_batch(10, usize::MAX);
    let mut skipping = streams
        .cursor("s", Start::Offset(0))
        .expect("cursor")
        .with_batch(10, usize::MAX)
        .with_truncation(Truncation::Skip);
    assert_eq!(strict.next_message().expect("next").expect("m").offset, 0);
    assert_eq!(skipping.next_message().expect("next").expect("m").offset, 0);
    streams.truncate_before("s", 100).expect("truncate");
    // What was fetched is still yielded; the next read reports the gap.
    for expected in 1..10 {
        assert_eq!(
            strict.next_message().expect("next").expect("m").offset,
            expected
        );
        assert_eq!(
            skipping.next_message().expect("next").expect("m").offset,
            expected
        );
    }
    match strict.next_message() {
        Err(StreamError::Truncated {
            offset: 10,
            first_offset: 100,
        }) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
    // The error repeats until the caller moves the cursor.
    assert!(matches!(
        strict.next_message(),
        Err(StreamError::Truncated { .. })
    ));
    strict.seek(100);
    assert_eq!(strict.next_message().expect("next").expect("m").offset, 100);
    assert_eq!(
        skipping.next_message().expect("next").expect("m").offset,
        100
    );
    assert_eq!(skipping.skipped(), 90);

    // Retention under a cursor behaves the same way.
    streams
        .set_retention(
            "s",
            Retention {
                max_messages: Some(0),
                ..Retention::NONE
            },
        )
        .expect("set");
    while streams.apply_retention().expect("apply").streams_with_more > 0 {}
    let first = streams.info("s").expect("info").first_offset;
    assert!(first > 110);
    skipping.seek(101);
    let next = skipping.next_message().expect("next").expect("m");
    assert_eq!(next.offset, first);
    assert_eq!(skipping.skipped(), 90 + first - 101);
    // A cursor started below the first offset: the policy applies at its first read.
    let mut below = streams.cursor("s", Start::Offset(0)).expect("cursor");
    assert!(matches!(
        below.next_message(),
        Err(StreamError::Truncated { offset: 0, .. })
    ));
}

#[test]
fn deletion_recreation_and_close_end_the_cursor() {
    let clock = Arc::new(AtomicU64::new(1_000));
    let streams = Arc::new(open(SyncPolicy::Strict, &clock));
    streams.create("s").expect("create");
    append(&streams, "s", 5);
    let mut cursor = streams.cursor("s", Start::Offset(5)).expect("cursor");
    assert!(streams.delete("s").expect("delete"));
    streams.create("s").expect("re-create");
    append(&streams, "s", 10);
    assert!(matches!(
        cursor.next_message(),
        Err(StreamError::NotFound { .. })
    ));
    assert!(matches!(
        streams.cursor("missing", Start::Offset(0)),
        Err(StreamError::NotFound { .. })
    ));

    // A deletion wakes a blocked cursor; so does close.
    let mut waiting = streams.cursor("s", Start::Offset(10)).expect("cursor");
    let deleter = {
        let streams = Arc::clone(&streams);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            streams.delete("s").expect("delete");
        })
    };
    let started = Instant::now();
    assert!(matches!(
        waiting.next_blocking(Duration::from_secs(30)),
        Err(StreamError::NotFound { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(20));
    deleter.join().expect("deleter");

    streams.create("t").expect("create");
    let mut waiting = streams.cursor("t", Start::Offset(0)).expect("cursor");
    let closer = {
        let streams = Arc::clone(&streams);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            streams.close().expect("close");
        })
    };
    assert!(matches!(
        waiting.next_blocking(Duration::from_secs(30)),
        Err(StreamError::Log(LogError::Closed))
    ));
    closer.join().expect("closer");
}

//! Consumer groups and blocking reads of durable streams through the public API: committed
//! offsets across reopen (delivery restarts at committed, unacknowledged messages come
//! again), groups and truncation, groups deleted with their stream, a damaged or left-over
//! groups file, and blocking reads that wake on appends, on creation and on close, or time
//! out.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cairn_log::stream::{GroupInfo, StreamError};
use cairn_log::{FileSystem, LogError, Message, OpenMode, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::FaultFs;

const DIR: &str = "/groups";

fn open(fs: &Arc<FaultFs>, sync: &SyncPolicy) -> Streams {
    let mut options = StreamOptions::new(sync.clone());
    options.segment_bytes = 4096;
    Streams::open(fs.clone(), Path::new(DIR), options).expect("open")
}

fn buffered() -> SyncPolicy {
    SyncPolicy::Buffered {
        flush_interval: Duration::from_millis(5),
        buffer_bytes_max: 1 << 20,
    }
}

fn append(streams: &Streams, name: &str, count: u64) {
    for index in 0..count {
        streams
            .append(name, &Message::value(index.to_string()))
            .expect("append");
    }
}

fn offsets(messages: &[cairn_log::StoredMessage]) -> Vec<u64> {
    messages.iter().map(|message| message.offset).collect()
}

fn group(streams: &Streams, name: &str, group: &str) -> GroupInfo {
    streams
        .group_info(name)
        .expect("group_info")
        .into_iter()
        .find(|info| info.name == group)
        .expect("the group exists")
}

#[test]
fn committed_offsets_survive_reopen_and_delivery_restarts_there() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let fs = Arc::new(FaultFs::new());
        let streams = open(&fs, &sync);
        streams.create("s").expect("create");
        append(&streams, "s", 10);
        assert!(streams.create_group("s", "g", 0).expect("create_group"));
        assert!(!streams.create_group("s", "g", 5).expect("again"));
        assert!(streams.create_group("s", "late", 8).expect("create_group"));
        let read = streams.read_group("s", "g", "c", 6).expect("read_group");
        assert_eq!(offsets(&read), [0, 1, 2, 3, 4, 5]);
        assert_eq!(streams.ack("s", "g", &[0, 1, 4]).expect("ack"), 3);
        let info = group(&streams, "s", "g");
        assert_eq!(
            (info.delivered_up_to, info.committed, info.pending),
            (6, 2, 3)
        );
        let pending = streams.pending("s", "g", 0, 10).expect("pending");
        assert_eq!(
            pending
                .iter()
                .map(|entry| (entry.offset, entry.consumer.as_str(), entry.deliveries))
                .collect::<Vec<_>>(),
            [(2, "c", 1), (3, "c", 1), (5, "c", 1)]
        );
        streams.close().expect("close");
        drop(streams);

        let streams = open(&fs, &sync);
        let info = group(&streams, "s", "g");
        assert_eq!(
            (info.delivered_up_to, info.committed, info.pending),
            (2, 2, 0)
        );
        assert_eq!(group(&streams, "s", "late").committed, 8);
        // At least once: 2, 3 and 5 were not acknowledged, 4 was (above the lowest
        // unacknowledged offset, so it comes again too).
        let again = streams.read_group("s", "g", "d", 100).expect("read_group");
        assert_eq!(offsets(&again), (2..10).collect::<Vec<_>>());
        streams.commit("s", "g", 10).expect("commit");
        assert!(streams.delete_group("s", "late").expect("delete_group"));
        assert!(!streams
            .delete_group("s", "late")
            .expect("delete_group again"));
        streams.close().expect("close");
        drop(streams);

        let streams = open(&fs, &sync);
        let infos = streams.group_info("s").expect("group_info");
        assert_eq!(infos.len(), 1);
        assert_eq!((infos[0].name.as_str(), infos[0].committed), ("g", 10));
        assert!(streams
            .read_group("s", "g", "c", 10)
            .expect("read_group")
            .is_empty());
    }
}

#[test]
fn strict_acknowledgements_survive_a_crash() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(&fs, &SyncPolicy::Strict);
    streams.create("s").expect("create");
    append(&streams, "s", 5);
    streams.create_group("s", "g", 0).expect("create_group");
    streams.read_group("s", "g", "c", 5).expect("read_group");
    assert_eq!(streams.ack("s", "g", &[0, 1, 2]).expect("ack"), 3);
    let image = fs.crash(cairn_testkit::CrashMode::POWER_LOSS);
    drop(streams);
    let streams = open(&image, &SyncPolicy::Strict);
    let info = group(&streams, "s", "g");
    assert_eq!((info.committed, info.pending), (3, 0));
    let again = streams.read_group("s", "g", "c", 10).expect("read_group");
    assert_eq!(offsets(&again), [3, 4]);
}

#[test]
fn truncation_moves_delivery_and_drops_truncated_pending_messages() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(&fs, &SyncPolicy::Strict);
    streams.create("s").expect("create");
    append(&streams, "s", 10);
    streams
        .create_group("s", "behind", 0)
        .expect("create_group");
    streams
        .create_group("s", "claims", 0)
        .expect("create_group");
    let read = streams
        .read_group("s", "claims", "old", 4)
        .expect("read_group");
    assert_eq!(offsets(&read), [0, 1, 2, 3]);
    streams.truncate_before("s", 6).expect("truncate");
    // A group behind the first readable offset delivers from it.
    let read = streams
        .read_group("s", "behind", "c", 2)
        .expect("read_group");
    assert_eq!(offsets(&read), [6, 7]);
    // Pending messages truncated away are dropped by claim, not returned.
    let claimed = streams
        .claim("s", "claims", "heir", Duration::ZERO, 10)
        .expect("claim");
    assert!(claimed.is_empty(), "{:?}", offsets(&claimed));
    let info = group(&streams, "s", "claims");
    assert_eq!((info.pending, info.committed), (0, 4));
    let read = streams
        .read_group("s", "claims", "c", 100)
        .expect("read_group");
    assert_eq!(offsets(&read), [6, 7, 8, 9]);
}

#[test]
fn groups_go_with_their_stream_and_missing_ones_are_refused() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(&fs, &SyncPolicy::Strict);
    streams.create("s").expect("create");
    append(&streams, "s", 3);
    streams.create_group("s", "g", 0).expect("create_group");
    assert!(streams.delete("s").expect("delete"));
    streams.create("s").expect("create again");
    assert!(streams.group_info("s").expect("group_info").is_empty());
    assert!(matches!(
        streams.read_group("s", "g", "c", 1),
        Err(StreamError::GroupNotFound { .. })
    ));
    assert!(matches!(
        streams.commit("s", "g", 1),
        Err(StreamError::GroupNotFound { .. })
    ));
    assert_eq!(streams.ack("s", "g", &[0]).expect("ack"), 0);
    assert!(matches!(
        streams.read_group("missing", "g", "c", 1),
        Err(StreamError::NotFound { .. })
    ));
    for bad in ["", "a/b", &"x".repeat(129)] {
        assert!(matches!(
            streams.create_group("s", bad, 0),
            Err(StreamError::InvalidArgument { .. })
        ));
        assert!(matches!(
            streams.read_group("s", "g", bad, 1),
            Err(StreamError::InvalidArgument { .. })
        ));
    }
    streams.close().expect("close");
    drop(streams);
    let streams = open(&fs, &SyncPolicy::Strict);
    assert!(streams.group_info("s").expect("group_info").is_empty());
}

#[test]
fn a_damaged_groups_file_is_corrupted_and_a_temp_file_is_removed() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(&fs, &SyncPolicy::Strict);
    streams.create("s").expect("create");
    streams.create_group("s", "g", 0).expect("create_group");
    streams.close().expect("close");
    drop(streams);
    let stream_dir = Path::new(DIR).join("00000000000000000001");
    let groups = stream_dir.join("GROUPS");
    // A temp file a crash left behind is removed; the real file is kept.
    {
        let file = fs
            .open(&stream_dir.join("GROUPS.tmp"), OpenMode::CreateNew)
            .expect("create temp");
        file.write_all_at(b"half", 0).expect("write");
    }
    let streams = open(&fs, &SyncPolicy::Strict);
    assert_eq!(streams.group_info("s").expect("group_info").len(), 1);
    streams.close().expect("close");
    drop(streams);
    assert!(!fs
        .list_dir(&stream_dir)
        .expect("list")
        .contains(&"GROUPS.tmp".to_owned()));
    {
        let file = fs.open(&groups, OpenMode::ReadWrite).expect("open groups");
        file.write_all_at(&[0xFF], 20).expect("damage");
    }
    let mut options = StreamOptions::new(SyncPolicy::Strict);
    options.segment_bytes = 4096;
    match Streams::open(fs.clone(), Path::new(DIR), options) {
        Err(StreamError::Log(LogError::Corrupted { file, .. })) => assert_eq!(file, groups),
        other => panic!("expected Corrupted, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn blocking_reads_wake_on_appends_and_time_out_without() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let fs = Arc::new(FaultFs::new());
        let streams = Arc::new(open(&fs, &sync));
        streams.create("s").expect("create");
        append(&streams, "s", 2);
        // Data at hand: no wait.
        let read = streams
            .read_blocking("s", 1, 10, usize::MAX, Duration::from_secs(60))
            .expect("read_blocking");
        assert_eq!(offsets(&read), [1]);
        // Nothing comes: empty after the timeout.
        let started = Instant::now();
        let read = streams
            .read_blocking("s", 2, 10, usize::MAX, Duration::from_millis(50))
            .expect("read_blocking");
        assert!(read.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(50));
        // An append from another thread wakes the reader, and so does a stream's creation.
        let writer = {
            let streams = Arc::clone(&streams);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                streams
                    .append("s", &Message::value("late"))
                    .expect("append");
                thread::sleep(Duration::from_millis(50));
                streams.create("fresh").expect("create");
                streams
                    .append("fresh", &Message::value("first"))
                    .expect("append");
            })
        };
        let started = Instant::now();
        let read = streams
            .read_blocking("s", 2, 10, usize::MAX, Duration::from_secs(60))
            .expect("read_blocking");
        assert_eq!(offsets(&read), [2]);
        let read = streams
            .read_blocking("fresh", 0, 10, usize::MAX, Duration::from_secs(60))
            .expect("read_blocking");
        assert_eq!(read[0].message.value, b"first");
        assert!(started.elapsed() < Duration::from_secs(30));
        writer.join().expect("writer");
        // A group read waits too.
        streams.create_group("s", "g", 3).expect("create_group");
        let writer = {
            let streams = Arc::clone(&streams);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                streams.append("s", &Message::value("g")).expect("append");
            })
        };
        let read = streams
            .read_group_blocking("s", "g", "c", 10, Duration::from_secs(60))
            .expect("read_group_blocking");
        assert_eq!(offsets(&read), [3]);
        writer.join().expect("writer");
        let started = Instant::now();
        let read = streams
            .read_group_blocking("s", "g", "c", 10, Duration::from_millis(30))
            .expect("read_group_blocking");
        assert!(read.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}

#[test]
fn close_wakes_blocked_readers() {
    let fs = Arc::new(FaultFs::new());
    let streams = Arc::new(open(&fs, &SyncPolicy::Strict));
    streams.create("s").expect("create");
    let readers: Vec<_> = ["s", "missing"]
        .into_iter()
        .map(|name| {
            let streams = Arc::clone(&streams);
            thread::spawn(move || {
                streams.read_blocking(name, 0, 10, usize::MAX, Duration::from_secs(60))
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    streams.close().expect("close");
    for reader in readers {
        let result = reader.join().expect("reader");
        assert!(
            matches!(result, Err(StreamError::Log(LogError::Closed))),
            "{result:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30));
}

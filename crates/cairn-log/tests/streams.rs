//! Durable streams (`cairn_log::stream`) through the public API: names and the catalog,
//! dense offsets and atomic batches, reads from memory and from disk through the sparse
//! index, time seeks, truncation, delete, locking, tail-only recovery, and a torn tail cut at
//! every byte of a small stream's last frames.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "test offsets index small vectors; a scenario reads best as one function"
)]

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_log::stream::StreamError;
use cairn_log::{
    Clock, DirLock, FileHandle, FileSystem, LogError, Message, OpenMode, StdFileSystem,
    StreamOptions, Streams, SyncPolicy,
};
use cairn_testkit::{CrashMode, FaultFs, TempDir, UnsyncedDirOps, UnsyncedWrites};

/// A clock the test sets.
fn manual_clock() -> (Clock, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(1_000));
    let shared = Arc::clone(&now);
    (Clock::new(move || shared.load(Ordering::SeqCst)), now)
}

fn options(sync: SyncPolicy, clock: Clock) -> StreamOptions {
    let mut options = StreamOptions::new(sync);
    options.segment_bytes = 4096;
    options.index_interval_bytes = 512;
    options.tail_bytes_max = 0;
    options.clock = clock;
    options
}

fn buffered() -> SyncPolicy {
    SyncPolicy::Buffered {
        flush_interval: Duration::from_millis(5),
        buffer_bytes_max: 1 << 20,
    }
}

fn message(index: u64) -> Message {
    let size = usize::try_from(index * 37 % 200).expect("small");
    let mut message = Message::value(vec![u8::try_from(index % 251).expect("byte"); size]);
    if index.is_multiple_of(3) {
        message = message.with_key(index.to_le_bytes().to_vec());
    }
    if index.is_multiple_of(5) {
        message = message.with_header("h", format!("{index}"));
    }
    message
}

#[test]
fn names_catalog_and_delete() {
    let fs: Arc<dyn FileSystem> = Arc::new(FaultFs::new());
    let (clock, _) = manual_clock();
    let dir = Path::new("/store");
    let streams = Streams::open(
        Arc::clone(&fs),
        dir,
        options(SyncPolicy::Strict, clock.clone()),
    )
    .expect("open");
    for bad in ["", "a b", "a/b", "..\u{0}", &"x".repeat(513)] {
        assert!(matches!(
            streams.create(bad),
            Err(StreamError::InvalidName { .. })
        ));
    }
    streams.create("orders.eu-1_a").expect("create");
    streams.create("b").expect("create");
    assert!(matches!(
        streams.create("b"),
        Err(StreamError::AlreadyExists { .. })
    ));
    assert_eq!(
        streams.list(),
        vec!["b".to_owned(), "orders.eu-1_a".to_owned()]
    );
    assert!(matches!(
        streams.append("missing", &Message::value("x")),
        Err(StreamError::NotFound { .. })
    ));
    // Directories are named by id, never by the name.
    let entries = fs.list_dir(dir).expect("list");
    assert!(
        entries.iter().all(|name| !name.contains("orders")),
        "{entries:?}"
    );
    assert_eq!(
        streams.append("b", &Message::value("x")).expect("append"),
        0
    );
    assert!(streams.delete("b").expect("delete"));
    assert!(!streams.delete("b").expect("delete again"));
    streams.create("b").expect("re-create");
    assert_eq!(
        streams.append("b", &Message::value("y")).expect("append"),
        0
    );
    // A second open of a locked store is refused.
    assert!(matches!(
        Streams::open(
            Arc::clone(&fs),
            dir,
            options(SyncPolicy::Strict, clock.clone())
        ),
        Err(StreamError::Locked { .. })
    ));
    streams.close().expect("close");
    drop(streams);
    let streams =
        Streams::open(Arc::clone(&fs), dir, options(SyncPolicy::Strict, clock)).expect("reopen");
    assert_eq!(
        streams.list(),
        vec!["b".to_owned(), "orders.eu-1_a".to_owned()]
    );
    assert_eq!(
        streams
            .read("b", 0)
            .expect("read")
            .expect("there")
            .message
            .value,
        b"y"
    );
}

#[test]
fn appends_reads_seeks_and_truncation_across_segments_and_reopen() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let dir = TempDir::new("streams-rw");
        let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
        let (clock, now) = manual_clock();
        let open = || {
            Streams::open(
                Arc::clone(&fs),
                dir.path(),
                options(sync.clone(), clock.clone()),
            )
        };
        let streams = open().expect("open");
        streams.create("s").expect("create");
        let mut expected = Vec::new();
        let mut times = Vec::new();
        for round in 0..60_u64 {
            now.store(1_000 + round * 10, Ordering::SeqCst);
            if round % 4 == 0 {
                let batch: Vec<Message> = (0..5).map(|i| message(round * 5 + i)).collect();
                let range = streams.append_batch("s", &batch).expect("batch");
                assert_eq!(range, expected.len() as u64..expected.len() as u64 + 5);
                for item in batch {
                    expected.push(item);
                    times.push(1_000 + round * 10);
                }
            } else {
                let offset = streams.append("s", &message(round)).expect("append");
                assert_eq!(offset, expected.len() as u64);
                expected.push(message(round));
                times.push(1_000 + round * 10);
            }
        }
        // A clock that steps back is clamped: timestamps never decrease.
        now.store(5, Ordering::SeqCst);
        let offset = streams
            .append("s", &Message::value("late"))
            .expect("append");
        expected.push(Message::value("late"));
        times.push(*times.last().expect("some"));
        assert_eq!(
            streams
                .read("s", offset)
                .expect("read")
                .expect("there")
                .timestamp_ms,
            times[offset as usize]
        );

        let check = |streams: &Streams, first: u64| {
            let all = streams
                .read_range("s", 0, 10_000, usize::MAX)
                .expect("range");
            assert_eq!(all.len(), expected.len() - first as usize);
            for stored in &all {
                assert_eq!(
                    stored.message, expected[stored.offset as usize],
                    "offset {}",
                    stored.offset
                );
                assert_eq!(stored.timestamp_ms, times[stored.offset as usize]);
            }
            assert_eq!(all.first().map(|stored| stored.offset), Some(first));
            for offset in (first..expected.len() as u64).step_by(7) {
                let one = streams.read("s", offset).expect("read").expect("there");
                assert_eq!(one.message, expected[offset as usize]);
                let some = streams
                    .read_range("s", offset, 3, usize::MAX)
                    .expect("range");
                assert_eq!(some.len(), 3.min(expected.len() - offset as usize));
            }
            assert_eq!(
                streams.read("s", expected.len() as u64).expect("read"),
                None
            );
            // max_bytes: stops before the message that would pass it, but always returns one.
            let tiny = streams.read_range("s", first, 100, 1).expect("range");
            assert_eq!(tiny.len(), 1);
            for target in [0, 1_000, 1_001, 1_150, 1_590, 1_591, 9_999] {
                let want = (first..expected.len() as u64).find(|&o| times[o as usize] >= target);
                assert_eq!(
                    streams.seek_time("s", target).expect("seek"),
                    want,
                    "ts {target}"
                );
            }
            let info = streams.info("s").expect("info");
            assert_eq!(
                (info.first_offset, info.next_offset),
                (first, expected.len() as u64)
            );
        };
        check(&streams, 0);
        // Once durable, the tail (0 bytes here) lets go and reads come from disk.
        streams.sync().expect("sync");
        check(&streams, 0);
        let (segments, entries) = streams.index_counts("s").expect("counts");
        assert!(
            entries >= segments,
            "{entries} index entries for {segments} segments"
        );
        assert!(segments > 2, "the test must span segments: {segments}");
        streams.close().expect("close");
        drop(streams);

        let streams = open().expect("reopen");
        check(&streams, 0);
        streams.truncate_before("s", 100).expect("truncate");
        assert!(matches!(
            streams.read("s", 99),
            Err(StreamError::Truncated {
                offset: 99,
                first_offset: 100
            })
        ));
        check(&streams, 100);
        let (after, _) = streams.index_counts("s").expect("counts");
        assert!(
            after < segments,
            "truncation removed no segment: {after} of {segments}"
        );
        assert!(streams.truncate_before("s", 10_000).is_err());
        streams
            .truncate_before("s", 5)
            .expect("below the first offset does nothing");
        drop(streams);
        let streams = open().expect("reopen after truncation");
        check(&streams, 100);
        // Truncating everything keeps the next offset.
        let end = expected.len() as u64;
        streams.truncate_before("s", end).expect("truncate all");
        drop(streams);
        let streams = open().expect("reopen after truncating all");
        assert_eq!(streams.info("s").expect("info").first_offset, end);
        assert_eq!(
            streams.append("s", &Message::value("z")).expect("append"),
            end
        );
    }
}

/// A file system that counts the bytes read from each file.
#[derive(Debug)]
struct CountingFs {
    inner: Arc<dyn FileSystem>,
    reads: Arc<parking_lot_free::Counts>,
}

mod parking_lot_free {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    pub struct Counts(pub Mutex<BTreeMap<PathBuf, u64>>);
}

#[derive(Debug)]
struct CountingFile {
    inner: Box<dyn FileHandle>,
    path: PathBuf,
    reads: Arc<parking_lot_free::Counts>,
}

impl FileHandle for CountingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let read = self.inner.read_at(buf, offset)?;
        *self
            .reads
            .0
            .lock()
            .expect("lock")
            .entry(self.path.clone())
            .or_default() += read as u64;
        Ok(read)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FileSystem for CountingFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
        Ok(Box::new(CountingFile {
            inner: self.inner.open(path, mode)?,
            path: path.to_path_buf(),
            reads: Arc::clone(&self.reads),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.inner.lock_dir(path)
    }
}

#[test]
fn open_reads_only_the_tail_of_each_stream() {
    let fault = Arc::new(FaultFs::new());
    let dir = Path::new("/store");
    let (clock, _) = manual_clock();
    {
        let streams = Streams::open(
            fault.clone(),
            dir,
            options(SyncPolicy::Strict, clock.clone()),
        )
        .expect("open");
        streams.create("s").expect("create");
        for index in 0..400 {
            streams.append("s", &message(index)).expect("append");
        }
        streams.close().expect("close");
    }
    let counts = Arc::new(parking_lot_free::Counts::default());
    let counting = Arc::new(CountingFs {
        inner: fault.clone(),
        reads: Arc::clone(&counts),
    });
    let streams = Streams::open(counting, dir, options(SyncPolicy::Strict, clock)).expect("reopen");
    let reads = counts.0.lock().expect("lock").clone();
    let segment_reads: BTreeMap<&PathBuf, &u64> = reads
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    assert!(segment_reads.len() > 5, "{segment_reads:?}");
    let whole = segment_reads
        .values()
        .filter(|&&&bytes| bytes > 1024)
        .count();
    // The tail segment is read whole (once by recovery); every other one only in its header
    // and first-frame probe.
    assert!(whole <= 1, "{segment_reads:?}");
    assert_eq!(streams.info("s").expect("info").next_offset, 400);
    assert_eq!(
        streams.read("s", 17).expect("read").expect("there").message,
        message(17)
    );
}

/// Truncates the last segment holding frames at every byte of its last frames: recovery must
/// return a prefix of whole batches, never a partial batch, and keep working.
#[test]
fn a_torn_tail_is_cut_at_every_byte() {
    let base = Arc::new(FaultFs::new());
    let dir = Path::new("/store");
    let (clock, _) = manual_clock();
    let batches: Vec<Vec<Message>> = (0..6_u64)
        .map(|batch| (0..=(batch % 3)).map(|i| message(batch * 3 + i)).collect())
        .collect();
    let mut ends = Vec::new();
    {
        let streams = Streams::open(
            base.clone(),
            dir,
            options(SyncPolicy::Strict, clock.clone()),
        )
        .expect("open");
        streams.create("s").expect("create");
        for batch in &batches {
            ends.push(streams.append_batch("s", batch).expect("append").end);
        }
        // No close: the last segment keeps its frames and no empty segment follows.
    }
    let segment = base
        .list_files()
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .max_by_key(|path| {
            base.read_file(path)
                .map_or(0, |bytes| bytes.iter().rposition(|&b| b != 0).unwrap_or(0))
        })
        .expect("a segment");
    let bytes = base.read_file(&segment).expect("segment bytes");
    let used = bytes.iter().rposition(|&byte| byte != 0).expect("frames") + 1;
    let tail_start = used.saturating_sub(600).max(64);
    for cut in tail_start..=used {
        let image = base.crash(CrashMode {
            writes: UnsyncedWrites::Kept,
            dir_ops: UnsyncedDirOps::Kept,
        });
        image.truncate(&segment, cut as u64).expect("truncate");
        let streams = Streams::open(
            image.clone(),
            dir,
            options(SyncPolicy::Strict, clock.clone()),
        )
        .unwrap_or_else(|error| panic!("open after a cut at {cut}: {error}"));
        let next = streams.info("s").expect("info").next_offset;
        assert!(
            next == 0 || ends.contains(&next),
            "cut {cut}: next offset {next} splits a batch"
        );
        let all = streams
            .read_range("s", 0, 10_000, usize::MAX)
            .expect("read");
        assert_eq!(all.len() as u64, next);
        let flat: Vec<&Message> = batches.iter().flatten().collect();
        for stored in &all {
            assert_eq!(&stored.message, flat[stored.offset as usize]);
        }
        assert_eq!(
            streams
                .append("s", &Message::value("after"))
                .expect("append"),
            next
        );
        if cut == used {
            assert_eq!(next, *ends.last().expect("ends"));
        }
    }
}

#[test]
fn damage_a_crash_cannot_explain_is_corrupted_naming_the_file() {
    let base = Arc::new(FaultFs::new());
    let dir = Path::new("/store");
    let (clock, _) = manual_clock();
    {
        let streams = Streams::open(
            base.clone(),
            dir,
            options(SyncPolicy::Strict, clock.clone()),
        )
        .expect("open");
        streams.create("s").expect("create");
        for index in 0..100 {
            streams.append("s", &message(index)).expect("append");
        }
    }
    let mut segments: Vec<PathBuf> = base
        .list_files()
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    segments.sort();
    let last = segments.last().expect("segments").clone();
    // A flipped bit in the first frame of the last segment, with valid frames after it.
    base.flip_bit(&last, (64 + 30) * 8).expect("flip");
    match Streams::open(
        base.clone(),
        dir,
        options(SyncPolicy::Strict, clock.clone()),
    ) {
        Err(StreamError::Log(LogError::Corrupted { file, .. })) => assert_eq!(file, last),
        other => panic!("expected Corrupted, got {other:?}"),
    }
    // Salvage keeps the prefix before the damage.
    let mut salvage = options(SyncPolicy::Strict, clock);
    salvage.recovery = cairn_log::RecoveryMode::Salvage;
    let streams = Streams::open(base, dir, salvage).expect("salvage");
    let next = streams.info("s").expect("info").next_offset;
    assert!(next < 100);
    assert_eq!(
        streams
            .read_range("s", 0, 1000, usize::MAX)
            .expect("read")
            .len() as u64,
        next
    );
}

/// Reads read ahead of the frame they want and resume where the last read stopped: a read
/// right after each append (the window then holds the end of what was durable, zeros and
/// frames still being written), sequential and random reads, across segments, all agree with
/// what was appended.
#[test]
fn reads_between_appends_see_every_message_once_durable() {
    for sync in [SyncPolicy::Strict, buffered()] {
        let dir = TempDir::new("streams-read-ahead");
        let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
        let (clock, _) = manual_clock();
        let streams =
            Streams::open(Arc::clone(&fs), dir.path(), options(sync.clone(), clock)).expect("open");
        streams.create("s").expect("create");
        let mut expected = Vec::new();
        for index in 0..400_u64 {
            let offset = streams.append("s", &message(index)).expect("append");
            expected.push(message(index));
            streams.sync().expect("sync");
            let read = streams.read("s", offset).expect("read").expect("present");
            assert_eq!(read.message, message(index), "{sync:?}: offset {offset}");
            if index % 7 == 0 {
                let back = index / 2;
                let read = streams.read("s", back).expect("read").expect("present");
                assert_eq!(
                    read.message,
                    message(back),
                    "{sync:?}: offset {back} read back"
                );
            }
        }
        for (offset, wanted) in expected.iter().enumerate() {
            let read = streams
                .read("s", offset as u64)
                .expect("read")
                .expect("present");
            assert_eq!(
                &read.message, wanted,
                "{sync:?}: sequential offset {offset}"
            );
        }
        for step in 0..400_u64 {
            let offset = step * 263 % 400;
            let read = streams.read("s", offset).expect("read").expect("present");
            assert_eq!(
                read.message,
                message(offset),
                "{sync:?}: random offset {offset}"
            );
            let range = streams
                .read_range("s", offset, 10, usize::MAX)
                .expect("range");
            let offsets: Vec<u64> = range.iter().map(|stored| stored.offset).collect();
            let want: Vec<u64> = (offset..(offset + 10).min(400)).collect();
            assert_eq!(offsets, want, "{sync:?}: range from {offset}");
        }
    }
}

/// On the real file system sealed segments are read through memory maps. A flipped bit in a
/// sealed segment (which open does not read) is found when a read reaches it: the mapped
/// frame fails its check, the read goes through `read_at` and reports `Corrupted` naming the
/// file, and the messages of every other frame still read back intact.
#[test]
fn damage_in_a_mapped_sealed_segment_is_corrupted_on_read() {
    let dir = TempDir::new("streams-mapped-damage");
    let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
    let (clock, _) = manual_clock();
    let open = || {
        Streams::open(
            Arc::clone(&fs),
            dir.path(),
            options(SyncPolicy::Strict, clock.clone()),
        )
    };
    {
        let streams = open().expect("open");
        streams.create("s").expect("create");
        for index in 0..200 {
            streams.append("s", &message(index)).expect("append");
        }
    }
    let mut segments: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "wal") {
                segments.push(path);
            }
        }
    }
    segments.sort();
    assert!(segments.len() >= 3, "the messages span several segments");
    let first = segments.first().expect("segments").clone();
    // Byte 30 of the first frame's body: inside the first batch, far from the frame header.
    let mut bytes = std::fs::read(&first).expect("read segment");
    let at = 64 + 30;
    bytes[at] ^= 0x10;
    std::fs::write(&first, &bytes).expect("write segment");

    let streams = open().expect("open reads only the tail");
    match streams.read("s", 0) {
        Err(StreamError::Log(LogError::Corrupted { file, .. })) => assert_eq!(file, first),
        other => panic!("expected Corrupted naming {first:?}, got {other:?}"),
    }
    let last = streams.info("s").expect("info").next_offset - 1;
    let read = streams.read("s", last).expect("read").expect("present");
    assert_eq!(read.message, message(last));
}

#[test]
fn scan_range_borrows_exactly_what_read_range_copies() {
    // With the in-memory tail on, the newest messages come from memory and the rest from
    // disk; with it off, every read goes to disk.
    for tail_bytes_max in [0, 1 << 20] {
        let dir = TempDir::new("streams-scan");
        let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
        let (clock, _) = manual_clock();
        let mut stream_options = options(SyncPolicy::Strict, clock);
        stream_options.tail_bytes_max = tail_bytes_max;
        let streams = Streams::open(fs, dir.path(), stream_options).expect("open");
        streams.create("s").expect("create");
        for round in 0..40_u64 {
            let batch: Vec<Message> = (0..7).map(|i| message(round * 7 + i)).collect();
            streams.append_batch("s", &batch).expect("append");
        }
        streams.truncate_before("s", 11).expect("truncate");
        for (from, max) in [(0, 1_000), (11, 5), (100, 37), (270, 50), (280, 10), (5, 0)] {
            let copied = streams
                .read_range("s", from, max, usize::MAX)
                .expect("read");
            let mut borrowed = Vec::new();
            let taken = streams
                .scan_range("s", from, max, &mut |offset, timestamp_ms, message| {
                    borrowed.push((offset, timestamp_ms, message.to_message()));
                    true
                })
                .expect("scan");
            assert_eq!(taken, copied.len(), "from {from}, max {max}");
            let copied: Vec<_> = copied
                .into_iter()
                .map(|stored| (stored.offset, stored.timestamp_ms, stored.message))
                .collect();
            assert_eq!(borrowed, copied, "from {from}, max {max}");
            for (offset, _, message) in &borrowed {
                assert_eq!(*message, self::message(*offset), "offset {offset}");
            }
        }
        // A refusal stops the scan there: the refused message is not counted.
        let mut seen = 0;
        let taken = streams
            .scan_range("s", 20, 100, &mut |_, _, _| {
                seen += 1;
                seen <= 3
            })
            .expect("scan");
        assert_eq!((taken, seen), (3, 4));
        streams.close().expect("close");
    }
}

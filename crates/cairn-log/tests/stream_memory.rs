//! The memory an inactive stream costs, measured with a counting global allocator (live
//! bytes requested, so allocator overhead per block is not included).
//!
//! - 100 000 streams (`CAIRN_STREAM_MEMORY_COUNT`; 10 000 by default; names
//!   `stream-000000` ..., 13 bytes) are written to a store directory,
//!   and the store is opened with `lazy_open`: every stream is then inactive, held as a
//!   descriptor only. Live bytes after open minus before, divided by the streams, is the
//!   cost of an inactive stream (catalog entry, name, descriptor).
//! - 50 of them are then used (opened) and released again: the live bytes must come back
//!   to within a small margin of the inactive figure.
//!
//! Run with `--nocapture` to see the figures; the test fails above 256 bytes per stream.
//! Alone in its binary so that no other test allocates meanwhile.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    unsafe_code,
    reason = "a counting global allocator forwarding to the system one is the measurement"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::stream::StreamMeta;
use cairn_log::{FileSystem, OpenMode, StdFileSystem, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::TempDir;

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

fn delta(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only
// observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(delta(layout.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(delta(layout.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(delta(new_size) - delta(layout.size()), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Streams written: `CAIRN_STREAM_MEMORY_COUNT`, default 10 000 (the figure in
/// `docs/streams.md` is from a run with 100 000, about three minutes in a debug build).
fn stream_count() -> u64 {
    std::env::var("CAIRN_STREAM_MEMORY_COUNT")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(10_000)
}

/// Streams opened and released again.
const USED: u64 = 50;

fn name(index: u64) -> String {
    format!("stream-{index:06}")
}

#[test]
fn an_inactive_stream_costs_at_most_256_bytes() {
    let streams_total = stream_count();
    // The real file system: the in-memory one lists a directory in time linear in every
    // directory it holds, which 100 000 stream directories make quadratic.
    let temp = TempDir::new("stream-memory");
    let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
    let dir = temp.path();
    let mut options = StreamOptions::new(SyncPolicy::Strict);
    options.segment_bytes = 4096;
    options.lazy_open = true;
    let database_id = {
        let streams = Streams::open(fs.clone(), dir, options.clone()).expect("open");
        let id = streams.database_id();
        streams.close().expect("close");
        id
    };
    // Stream directories as `create` leaves them but without a segment, written directly
    // (fast: no syncs, no preallocated segment per stream).
    for index in 0..streams_total {
        let stream_id = index + 1;
        let stream_dir = dir.join(format!("{stream_id:020}"));
        fs.create_dir_all(&stream_dir).expect("mkdir");
        let meta = StreamMeta {
            database_id,
            stream_id,
            first_offset: 0,
            name: name(index),
        };
        let file = fs
            .open(&stream_dir.join("STREAM"), OpenMode::CreateNew)
            .expect("create");
        file.write_all_at(&meta.encode(), 0).expect("write");
    }

    let before = LIVE.load(Ordering::SeqCst);
    let started = Instant::now();
    let streams = Streams::open(fs.clone(), dir, options).expect("open");
    let open_time = started.elapsed();
    let inactive = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(streams.open_counts(), (streams_total, 0));
    let per_stream = inactive / isize::try_from(streams_total).expect("fits");

    for index in 0..USED {
        streams
            .append(&name(index), &cairn_log::Message::value("x"))
            .expect("append");
    }
    let used = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(streams.open_counts(), (streams_total, USED));
    assert_eq!(streams.release_idle(Duration::ZERO).expect("release"), USED);
    let released = LIVE.load(Ordering::SeqCst) - before;
    assert_eq!(streams.open_counts(), (streams_total, 0));
    let per_open = (used - released) / isize::try_from(USED).expect("fits");
    println!(
        "{streams_total} inactive streams: {inactive} bytes live, {per_stream} bytes each; \
         open in {open_time:?}; {USED} opened: {per_open} bytes more each while open; \
         after releasing them {released} bytes live"
    );
    assert!(per_stream <= 256, "{per_stream} bytes per inactive stream");
    // Releasing gives back what opening took, up to a few bytes per stream.
    assert!(
        released - inactive <= 16 * isize::try_from(USED).expect("fits"),
        "{released} live after release against {inactive} before use"
    );
    assert_eq!(
        streams.info(&name(0)).expect("info").next_offset,
        1,
        "the descriptor keeps the offsets"
    );
}

//! Layer 5: the one stream conformance suite every `StreamStore` backend passes unchanged.
//!
//! Each backend's test file builds a fresh store and expands [`stream_suite!`], which makes
//! one `#[tokio::test]` per case below. Cases use their own scopes (unique per process and
//! case), so backends may share one server between cases. Nothing here knows which backend
//! it runs on: a case that needs a backend-specific branch is a defect of the backend or of
//! the trait's docs (`cairn_kv::stream`), which is what every case checks.
//!
//! Timing: blocking reads and `claim` wait for real. Waits that must pass are hundreds of
//! milliseconds away from the checks; waits that must end are bounded by [`PATIENCE`].

#![allow(dead_code)] // every test binary includes this module; each uses all of it

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_kv::stream::{
    NewMessage, StreamInfo, StreamMessage, StreamStore, STREAM_BATCH_MESSAGES_MAX,
    STREAM_BLOCK_MAX, STREAM_HEADERS_MAX, STREAM_MESSAGE_BYTES_MAX, STREAM_NAME_BYTES_MAX,
};
use cairn_kv::{KeyValueStore, KvError, Scope};

/// Expands to one test per stream conformance case, each on a fresh store from
/// `$make_store`, an `async fn() -> impl StreamStore + 'static`. With `guarded`,
/// `$make_store` returns `(store, guard)` and the guard (a temp dir, say) lives until the
/// case ends.
macro_rules! stream_suite {
    ($make_store:path) => {
        async fn make_guarded_stream_store() -> (impl cairn_kv::stream::StreamStore + 'static, ()) {
            ($make_store().await, ())
        }
        stream_conformance::stream_suite!(guarded make_guarded_stream_store);
    };
    (guarded $make_store:path) => {
        stream_conformance::stream_suite!(@cases $make_store;
            offsets_are_dense_from_zero,
            batches_are_atomic_and_consecutive,
            read_range_windows,
            messages_round_trip,
            trim_moves_the_first_offset_only,
            offsets_are_not_reused_after_trim,
            trim_of_a_missing_stream,
            delete_stream_starts_offsets_again,
            info_of_a_missing_stream_is_none,
            streams_are_isolated_by_scope_and_name,
            read_blocking_returns_at_once_when_data_exists,
            read_blocking_times_out_empty,
            read_blocking_wakes_on_an_append,
            create_group_is_idempotent,
            read_group_delivers_each_message_once,
            ack_and_commit_move_committed,
            commit_moves_delivery_up,
            read_group_waits_for_appends,
            claim_takes_over_idle_messages_only,
            missing_groups_are_refused,
            bad_names_are_refused,
            bad_batches_and_reads_are_refused_and_write_nothing,
        );
    };
    (@cases $make_store:path; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make_store().await;
                stream_conformance::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}
pub(crate) use stream_suite;

/// The longest a call that must end may take.
const PATIENCE: Duration = Duration::from_secs(10);
/// A blocking wait that must run out.
const SHORT_WAIT: Duration = Duration::from_millis(100);
/// Every timer rounds its own way; a wait that must run out may end this much early.
const EARLY_SLACK: Duration = Duration::from_millis(20);

/// A scope of its own for `case`: unique per process and call.
fn scope(case: &str) -> Scope {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tenant = format!(
        "s{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Scope::new(&tenant, case).expect("a valid scope")
}

async fn append<S: StreamStore>(store: &S, scope: &Scope, stream: &str, value: &[u8]) -> u64 {
    store
        .append(scope, stream, &NewMessage::value(value))
        .await
        .expect("append")
}

/// Appends `count` messages valued `0`, `1`, ... (as decimal text), one call each.
async fn append_numbered<S: StreamStore>(store: &S, scope: &Scope, stream: &str, count: u64) {
    for number in 0..count {
        append(store, scope, stream, number.to_string().as_bytes()).await;
    }
}

async fn read_all<S: StreamStore>(store: &S, scope: &Scope, stream: &str) -> Vec<StreamMessage> {
    store
        .read_range(scope, stream, 0, STREAM_BATCH_MESSAGES_MAX, usize::MAX)
        .await
        .expect("read_range")
}

async fn info<S: StreamStore>(store: &S, scope: &Scope, stream: &str) -> StreamInfo {
    store
        .info(scope, stream)
        .await
        .expect("info")
        .expect("the stream exists")
}

fn offsets(messages: &[StreamMessage]) -> Vec<u64> {
    messages.iter().map(|message| message.offset).collect()
}

fn values(messages: &[StreamMessage]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|message| message.message.value.clone())
        .collect()
}

fn now_millis() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit u64")
}

macro_rules! refused {
    ($call:expr, $pattern:pat) => {
        let result = $call.await;
        assert!(
            matches!(result, Err($pattern)),
            "{} gave {:?}",
            stringify!($call),
            result.map(|_| ())
        );
    };
}

// ----- the cases -------------------------------------------------------------------------------

pub async fn offsets_are_dense_from_zero<S: StreamStore>(store: Arc<S>) {
    let scope = scope("dense");
    assert_eq!(append(&*store, &scope, "s", b"a").await, 0);
    assert_eq!(append(&*store, &scope, "s", b"b").await, 1);
    let batch: Vec<NewMessage> = [b"c", b"d", b"e"]
        .iter()
        .map(|value| NewMessage::value(*value))
        .collect();
    assert_eq!(
        store
            .append_batch(&scope, "s", &batch)
            .await
            .expect("append_batch"),
        2..5
    );
    assert_eq!(append(&*store, &scope, "s", b"f").await, 5);
    let one = store
        .append_batch(&scope, "s", &[NewMessage::value("g")])
        .await
        .expect("a batch of one");
    assert_eq!(one, 6..7);
    let all = read_all(&*store, &scope, "s").await;
    assert_eq!(offsets(&all), (0..7).collect::<Vec<_>>());
    assert_eq!(
        values(&all),
        [b"a", b"b", b"c", b"d", b"e", b"f", b"g"].map(|value| value.to_vec())
    );
    let summary = info(&*store, &scope, "s").await;
    assert_eq!(
        (summary.first_offset, summary.next_offset, summary.length()),
        (0, 7, 7)
    );
    assert!(summary.groups.is_empty());
    // Another stream of the scope has offsets of its own.
    assert_eq!(append(&*store, &scope, "other", b"x").await, 0);
}

pub async fn batches_are_atomic_and_consecutive<S: StreamStore + 'static>(store: Arc<S>) {
    const BATCH: usize = 50;
    const BATCHES_PER_WRITER: usize = 8;
    let scope = scope("batches");
    let mut writers = Vec::new();
    for writer in 0..2_u8 {
        let store = Arc::clone(&store);
        let scope = scope.clone();
        writers.push(tokio::spawn(async move {
            let mut ranges = Vec::new();
            for batch in 0..BATCHES_PER_WRITER {
                let messages: Vec<NewMessage> = (0..BATCH)
                    .map(|index| NewMessage::value(format!("{writer}:{batch}:{index}")))
                    .collect();
                let range = store
                    .append_batch(&scope, "s", &messages)
                    .await
                    .expect("append_batch");
                ranges.push((range, writer, batch));
            }
            ranges
        }));
    }
    // Meanwhile a reader must only ever see whole batches.
    let reader = {
        let store = Arc::clone(&store);
        let scope = scope.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            loop {
                let seen = read_all(&*store, &scope, "s").await.len();
                assert_eq!(seen % BATCH, 0, "a reader saw part of a batch: {seen}");
                reads += 1;
                if seen == 2 * BATCHES_PER_WRITER * BATCH {
                    return reads;
                }
            }
        })
    };
    let mut ranges = Vec::new();
    for writer in writers {
        ranges.extend(writer.await.expect("a writer"));
    }
    let reads = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the reader sees everything")
        .expect("the reader");
    assert!(reads >= 1);
    ranges.sort_by_key(|(range, _, _)| range.start);
    let mut next = 0;
    for (range, _, _) in &ranges {
        assert_eq!(range.start, next, "batches tile the offsets: {ranges:?}");
        assert_eq!(range.end - range.start, BATCH as u64);
        next = range.end;
    }
    let all = read_all(&*store, &scope, "s").await;
    assert_eq!(all.len(), 2 * BATCHES_PER_WRITER * BATCH);
    for (range, writer, batch) in &ranges {
        for offset in range.clone() {
            let index = offset - range.start;
            let message = &all[usize::try_from(offset).expect("small")];
            assert_eq!(message.offset, offset);
            assert_eq!(
                message.message.value,
                format!("{writer}:{batch}:{index}").into_bytes(),
                "a batch's messages are consecutive and in order"
            );
        }
    }
}

pub async fn read_range_windows<S: StreamStore>(store: Arc<S>) {
    let scope = scope("windows");
    // Ten messages of exactly ten payload bytes each.
    for number in 0..10_u64 {
        let value = format!("value-{number:04}");
        assert_eq!(value.len(), 10);
        append(&*store, &scope, "s", value.as_bytes()).await;
    }
    let read = |from, max_messages, max_bytes| {
        let store = Arc::clone(&store);
        let scope = scope.clone();
        async move {
            let messages = store
                .read_range(&scope, "s", from, max_messages, max_bytes)
                .await
                .expect("read_range");
            offsets(&messages)
        }
    };
    assert_eq!(read(4, 100, usize::MAX).await, [4, 5, 6, 7, 8, 9]);
    assert_eq!(read(4, 3, usize::MAX).await, [4, 5, 6]);
    assert_eq!(read(0, 1, usize::MAX).await, [0]);
    assert_eq!(read(9, 100, usize::MAX).await, [9]);
    // max_bytes stops before the message that would pass it...
    assert_eq!(read(2, 100, 25).await, [2, 3]);
    assert_eq!(read(2, 100, 30).await, [2, 3, 4]);
    // ...but the first message is returned whatever its size.
    assert_eq!(read(2, 100, 0).await, [2]);
    assert_eq!(read(2, 100, 9).await, [2]);
    // max_messages and max_bytes together: the tighter wins.
    assert_eq!(read(0, 2, 1000).await, [0, 1]);
    // Empty at the head, beyond it, and for a stream that does not exist.
    assert!(read(10, 100, usize::MAX).await.is_empty());
    assert!(read(1_000, 100, usize::MAX).await.is_empty());
    assert!(read(u64::MAX, 100, usize::MAX).await.is_empty());
    let missing = store
        .read_range(&scope, "missing", 0, 100, usize::MAX)
        .await
        .expect("read_range of a missing stream");
    assert!(missing.is_empty());
    assert!(store.info(&scope, "missing").await.expect("info").is_none());
    // A large first message, then small ones.
    let big = vec![7_u8; 64 * 1024];
    append(&*store, &scope, "big", &big).await;
    append(&*store, &scope, "big", b"small").await;
    let first = store
        .read_range(&scope, "big", 0, 100, 1024)
        .await
        .expect("read_range");
    assert_eq!(offsets(&first), [0]);
    assert_eq!(first[0].message.value, big);
}

pub async fn messages_round_trip<S: StreamStore>(store: Arc<S>) {
    let scope = scope("round-trip");
    let every_byte: Vec<u8> = (0..=255).collect();
    let sent = vec![
        NewMessage {
            key: Some(b"user:1".to_vec()),
            headers: vec![
                (b"content-type".to_vec(), b"text/plain".to_vec()),
                (b"trace".to_vec(), b"a".to_vec()),
                (b"trace".to_vec(), b"b".to_vec()),
            ],
            value: b"hello".to_vec(),
        },
        NewMessage::value(""),
        NewMessage {
            key: Some(Vec::new()),
            headers: vec![(Vec::new(), Vec::new())],
            value: every_byte.clone(),
        },
        // Header names that look like whatever a backend might store beside them.
        NewMessage {
            key: None,
            headers: vec![
                (b"t".to_vec(), b"1".to_vec()),
                (b"k".to_vec(), b"2".to_vec()),
                (b"v".to_vec(), b"3".to_vec()),
                (b"h".to_vec(), b"4".to_vec()),
                (b"hv".to_vec(), b"5".to_vec()),
                (every_byte.clone(), every_byte.clone()),
            ],
            value: b"v".to_vec(),
        },
        NewMessage {
            key: Some(every_byte.clone()),
            headers: (0..STREAM_HEADERS_MAX)
                .map(|index| (format!("h{index}").into_bytes(), vec![0; index]))
                .collect(),
            value: vec![0xA5; 1024 * 1024],
        },
    ];
    let before = now_millis();
    let first = append(&*store, &scope, "s", b"alone").await;
    let batch = store
        .append_batch(&scope, "s", &sent)
        .await
        .expect("append_batch");
    let after = now_millis();
    assert_eq!(first, 0);
    assert_eq!(batch, 1..6);
    let read = read_all(&*store, &scope, "s").await;
    assert_eq!(read.len(), 6);
    assert_eq!(read[0].message, NewMessage::value("alone"));
    for (message, expected) in read[1..].iter().zip(&sent) {
        assert_eq!(&message.message, expected, "offset {}", message.offset);
    }
    // The backend's clock, so allow for a server whose clock is a little off ours.
    let skew = 60_000;
    for message in &read {
        assert!(
            message.timestamp_ms + skew >= before && message.timestamp_ms <= after + skew,
            "timestamp {} is far from [{before}, {after}]",
            message.timestamp_ms
        );
    }
}

pub async fn trim_moves_the_first_offset_only<S: StreamStore>(store: Arc<S>) {
    let scope = scope("trim");
    append_numbered(&*store, &scope, "s", 10).await;
    store.trim(&scope, "s", 4).await.expect("trim");
    let summary = info(&*store, &scope, "s").await;
    assert_eq!((summary.first_offset, summary.next_offset), (4, 10));
    assert_eq!(summary.length(), 6);
    // Trimmed offsets are unreadable: a read from below starts at the first readable one.
    let from_zero = store
        .read_range(&scope, "s", 0, 100, usize::MAX)
        .await
        .expect("read_range");
    assert_eq!(offsets(&from_zero), [4, 5, 6, 7, 8, 9]);
    assert_eq!(from_zero[0].message.value, b"4");
    let from_two = store
        .read_range(&scope, "s", 2, 1, usize::MAX)
        .await
        .expect("read_range");
    assert_eq!(offsets(&from_two), [4]);
    // Trimming at or below the first readable offset does nothing.
    store.trim(&scope, "s", 2).await.expect("trim below");
    store.trim(&scope, "s", 4).await.expect("trim at");
    store.trim(&scope, "s", 0).await.expect("trim at zero");
    assert_eq!(info(&*store, &scope, "s").await.first_offset, 4);
    // Beyond the next offset is refused, and changes nothing.
    refused!(store.trim(&scope, "s", 11), KvError::InvalidArgument(_));
    refused!(
        store.trim(&scope, "s", u64::MAX),
        KvError::InvalidArgument(_)
    );
    let summary = info(&*store, &scope, "s").await;
    assert_eq!((summary.first_offset, summary.next_offset), (4, 10));
    // Up to the next offset empties it.
    store.trim(&scope, "s", 10).await.expect("trim all");
    let summary = info(&*store, &scope, "s").await;
    assert_eq!(
        (summary.first_offset, summary.next_offset, summary.length()),
        (10, 10, 0)
    );
    assert!(read_all(&*store, &scope, "s").await.is_empty());
}

pub async fn offsets_are_not_reused_after_trim<S: StreamStore>(store: Arc<S>) {
    let scope = scope("no-reuse");
    append_numbered(&*store, &scope, "s", 5).await;
    store.trim(&scope, "s", 5).await.expect("trim everything");
    assert_eq!(append(&*store, &scope, "s", b"after").await, 5);
    let batch = store
        .append_batch(
            &scope,
            "s",
            &[NewMessage::value("x"), NewMessage::value("y")],
        )
        .await
        .expect("append_batch");
    assert_eq!(batch, 6..8);
    let read = read_all(&*store, &scope, "s").await;
    assert_eq!(offsets(&read), [5, 6, 7]);
    assert_eq!(
        values(&read),
        [b"after".to_vec(), b"x".to_vec(), b"y".to_vec()]
    );
    store.trim(&scope, "s", 7).await.expect("trim");
    let summary = info(&*store, &scope, "s").await;
    assert_eq!((summary.first_offset, summary.next_offset), (7, 8));
}

pub async fn trim_of_a_missing_stream<S: StreamStore>(store: Arc<S>) {
    let scope = scope("trim-missing");
    // Its next offset is 0: trimming below 0 does nothing, anything above is refused.
    store.trim(&scope, "s", 0).await.expect("trim at zero");
    refused!(store.trim(&scope, "s", 1), KvError::InvalidArgument(_));
    assert!(store.info(&scope, "s").await.expect("info").is_none());
}

pub async fn delete_stream_starts_offsets_again<S: StreamStore>(store: Arc<S>) {
    let scope = scope("delete");
    append_numbered(&*store, &scope, "s", 3).await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    assert!(store.delete_stream(&scope, "s").await.expect("delete"));
    assert!(store.info(&scope, "s").await.expect("info").is_none());
    assert!(read_all(&*store, &scope, "s").await.is_empty());
    assert!(!store
        .delete_stream(&scope, "s")
        .await
        .expect("delete again"));
    assert!(!store
        .delete_stream(&scope, "never")
        .await
        .expect("delete a missing stream"));
    // A deleted stream starts again at 0, without its groups.
    assert_eq!(append(&*store, &scope, "s", b"new").await, 0);
    let summary = info(&*store, &scope, "s").await;
    assert_eq!((summary.first_offset, summary.next_offset), (0, 1));
    assert!(summary.groups.is_empty());
    refused!(
        store.read_group(&scope, "s", "g", "c", 10, Duration::ZERO),
        KvError::InvalidArgument(_)
    );
}

pub async fn info_of_a_missing_stream_is_none<S: StreamStore>(store: Arc<S>) {
    let scope = scope("info-missing");
    assert!(store.info(&scope, "s").await.expect("info").is_none());
    // Reads create nothing.
    assert!(read_all(&*store, &scope, "s").await.is_empty());
    assert!(store
        .read_blocking(&scope, "s", 0, 10, Duration::ZERO)
        .await
        .expect("read_blocking without a wait")
        .is_empty());
    assert!(store.info(&scope, "s").await.expect("info").is_none());
}

pub async fn streams_are_isolated_by_scope_and_name<S: StreamStore>(store: Arc<S>) {
    let one = scope("isolated");
    let two = scope("isolated");
    append_numbered(&*store, &one, "s", 3).await;
    assert_eq!(append(&*store, &two, "s", b"two").await, 0);
    assert_eq!(append(&*store, &one, "s.2", b"other").await, 0);
    assert_eq!(
        values(&read_all(&*store, &two, "s").await),
        [b"two".to_vec()]
    );
    assert_eq!(read_all(&*store, &one, "s").await.len(), 3);
    assert!(store.delete_stream(&two, "s").await.expect("delete"));
    assert_eq!(info(&*store, &one, "s").await.next_offset, 3);
}

pub async fn read_blocking_returns_at_once_when_data_exists<S: StreamStore>(store: Arc<S>) {
    let scope = scope("blocking-ready");
    append_numbered(&*store, &scope, "s", 3).await;
    let started = Instant::now();
    let read = store
        .read_blocking(&scope, "s", 1, 10, Duration::from_secs(60))
        .await
        .expect("read_blocking");
    assert!(
        started.elapsed() < PATIENCE,
        "waited {:?} with data ready",
        started.elapsed()
    );
    assert_eq!(offsets(&read), [1, 2]);
    let capped = store
        .read_blocking(&scope, "s", 0, 2, Duration::from_secs(60))
        .await
        .expect("read_blocking");
    assert_eq!(offsets(&capped), [0, 1]);
    // Trimmed offsets are skipped, as by read_range.
    store.trim(&scope, "s", 2).await.expect("trim");
    let after_trim = store
        .read_blocking(&scope, "s", 0, 10, Duration::from_secs(60))
        .await
        .expect("read_blocking");
    assert_eq!(offsets(&after_trim), [2]);
}

pub async fn read_blocking_times_out_empty<S: StreamStore>(store: Arc<S>) {
    let scope = scope("blocking-timeout");
    append_numbered(&*store, &scope, "s", 2).await;
    for (stream, from) in [("s", 2), ("s", 50), ("missing", 0)] {
        let started = Instant::now();
        let read = store
            .read_blocking(&scope, stream, from, 10, SHORT_WAIT)
            .await
            .expect("read_blocking");
        let waited = started.elapsed();
        assert!(read.is_empty(), "{stream} from {from}: {read:?}");
        assert!(
            waited + EARLY_SLACK >= SHORT_WAIT,
            "{stream} from {from}: returned after {waited:?}"
        );
        assert!(waited < PATIENCE, "{stream} from {from}: waited {waited:?}");
    }
    // A zero wait does not wait.
    let read = store
        .read_blocking(&scope, "s", 2, 10, Duration::ZERO)
        .await
        .expect("read_blocking");
    assert!(read.is_empty());
    assert!(store.info(&scope, "missing").await.expect("info").is_none());
}

pub async fn read_blocking_wakes_on_an_append<S: StreamStore + 'static>(store: Arc<S>) {
    let scope = scope("blocking-wake");
    append_numbered(&*store, &scope, "s", 2).await;
    for (stream, from, expected) in [("s", 2, 2), ("fresh", 0, 0)] {
        let writer = {
            let store = Arc::clone(&store);
            let scope = scope.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                // Other calls go through while the read waits.
                let started = Instant::now();
                assert!(store.info(&scope, "s").await.expect("info").is_some());
                assert!(started.elapsed() < PATIENCE);
                append(&*store, &scope, stream, b"woken").await
            })
        };
        let started = Instant::now();
        let read = store
            .read_blocking(&scope, stream, from, 10, Duration::from_secs(60))
            .await
            .expect("read_blocking");
        assert!(
            started.elapsed() < PATIENCE,
            "woke after {:?}",
            started.elapsed()
        );
        let appended = writer.await.expect("the writer");
        assert_eq!(appended, expected);
        assert_eq!(offsets(&read), [expected]);
        assert_eq!(read[0].message.value, b"woken");
    }
}

pub async fn create_group_is_idempotent<S: StreamStore>(store: Arc<S>) {
    let scope = scope("create-group");
    append_numbered(&*store, &scope, "s", 3).await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    assert!(!store
        .create_group(&scope, "s", "g", 2)
        .await
        .expect("create_group again"));
    assert!(store
        .create_group(&scope, "s", "late", 2)
        .await
        .expect("create_group at 2"));
    let summary = info(&*store, &scope, "s").await;
    let groups: Vec<(&str, u64, u64, u64)> = summary
        .groups
        .iter()
        .map(|group| {
            (
                group.name.as_str(),
                group.delivered_up_to,
                group.committed,
                group.pending,
            )
        })
        .collect();
    // The second create changed nothing: "g" still starts at 0. Groups come by name.
    assert_eq!(groups, [("g", 0, 0, 0), ("late", 2, 2, 0)]);
    let late = store
        .read_group(&scope, "s", "late", "c", 10, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&late), [2]);
    // On a missing stream, create_group makes an empty one.
    assert!(store
        .create_group(&scope, "empty", "g", 0)
        .await
        .expect("create_group on a missing stream"));
    let empty = info(&*store, &scope, "empty").await;
    assert_eq!((empty.first_offset, empty.next_offset), (0, 0));
    assert_eq!(empty.groups.len(), 1);
    assert_eq!(append(&*store, &scope, "empty", b"first").await, 0);
    let first = store
        .read_group(&scope, "empty", "g", "c", 10, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&first), [0]);
}

pub async fn read_group_delivers_each_message_once<S: StreamStore>(store: Arc<S>) {
    let scope = scope("read-group");
    append_numbered(&*store, &scope, "s", 10).await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    let mut seen = BTreeSet::new();
    let mut per_consumer = [0_usize; 2];
    for round in 0.. {
        let consumer = ["alice", "bob"][round % 2];
        let batch = store
            .read_group(&scope, "s", "g", consumer, 3, Duration::ZERO)
            .await
            .expect("read_group");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3);
        per_consumer[round % 2] += batch.len();
        for message in &batch {
            assert_eq!(
                message.message.value,
                message.offset.to_string().into_bytes()
            );
            assert!(
                seen.insert(message.offset),
                "offset {} twice",
                message.offset
            );
        }
    }
    assert_eq!(seen, (0..10).collect());
    assert!(
        per_consumer[0] > 0 && per_consumer[1] > 0,
        "{per_consumer:?}"
    );
    let group = &info(&*store, &scope, "s").await.groups[0];
    assert_eq!(
        (group.delivered_up_to, group.committed, group.pending),
        (10, 0, 10)
    );
    // Another group gets everything again.
    assert!(store
        .create_group(&scope, "s", "other", 0)
        .await
        .expect("create_group"));
    let again = store
        .read_group(&scope, "s", "other", "alice", 100, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&again), (0..10).collect::<Vec<_>>());
    // A new message goes to one member only.
    append(&*store, &scope, "s", b"10").await;
    let alice = store
        .read_group(&scope, "s", "g", "alice", 10, Duration::ZERO)
        .await
        .expect("read_group");
    let bob = store
        .read_group(&scope, "s", "g", "bob", 10, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&alice), [10]);
    assert!(bob.is_empty());
}

pub async fn ack_and_commit_move_committed<S: StreamStore>(store: Arc<S>) {
    let scope = scope("ack-commit");
    append_numbered(&*store, &scope, "s", 10).await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    let delivered = store
        .read_group(&scope, "s", "g", "c", 10, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(delivered.len(), 10);
    let group = |summary: StreamInfo| {
        let group = &summary.groups[0];
        (group.delivered_up_to, group.committed, group.pending)
    };
    assert_eq!(group(info(&*store, &scope, "s").await), (10, 0, 10));
    assert_eq!(store.ack(&scope, "s", "g", &[0, 1]).await.expect("ack"), 2);
    assert_eq!(
        store.ack(&scope, "s", "g", &[0]).await.expect("ack again"),
        0,
        "an offset no longer pending does not count"
    );
    assert_eq!(store.ack(&scope, "s", "g", &[]).await.expect("ack none"), 0);
    assert_eq!(group(info(&*store, &scope, "s").await), (10, 2, 8));
    // Acknowledging above the lowest pending offset leaves committed where it is.
    assert_eq!(store.ack(&scope, "s", "g", &[5, 7]).await.expect("ack"), 2);
    assert_eq!(group(info(&*store, &scope, "s").await), (10, 2, 6));
    // commit acknowledges everything below its offset: 2, 3 and 4 here.
    store.commit(&scope, "s", "g", 5).await.expect("commit");
    assert_eq!(group(info(&*store, &scope, "s").await), (10, 6, 3));
    // Committing lower changes nothing.
    store
        .commit(&scope, "s", "g", 3)
        .await
        .expect("commit below");
    assert_eq!(group(info(&*store, &scope, "s").await), (10, 6, 3));
    store
        .commit(&scope, "s", "g", 10)
        .await
        .expect("commit all");
    assert_eq!(group(info(&*store, &scope, "s").await), (10, 10, 0));
    // Offsets never delivered were never pending.
    assert_eq!(
        store.ack(&scope, "s", "g", &[10, 11]).await.expect("ack"),
        0
    );
}

pub async fn commit_moves_delivery_up<S: StreamStore>(store: Arc<S>) {
    let scope = scope("commit-ahead");
    append_numbered(&*store, &scope, "s", 10).await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    let first = store
        .read_group(&scope, "s", "g", "c", 2, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&first), [0, 1]);
    // Committing past what was delivered acknowledges the pending and skips the rest.
    store.commit(&scope, "s", "g", 6).await.expect("commit");
    let group = info(&*store, &scope, "s").await.groups[0].clone();
    assert_eq!(
        (group.delivered_up_to, group.committed, group.pending),
        (6, 6, 0)
    );
    let rest = store
        .read_group(&scope, "s", "g", "c", 100, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&rest), [6, 7, 8, 9]);
    let group = info(&*store, &scope, "s").await.groups[0].clone();
    assert_eq!(
        (group.delivered_up_to, group.committed, group.pending),
        (10, 6, 4)
    );
}

pub async fn read_group_waits_for_appends<S: StreamStore + 'static>(store: Arc<S>) {
    let scope = scope("read-group-wait");
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    let started = Instant::now();
    let nothing = store
        .read_group(&scope, "s", "g", "c", 10, SHORT_WAIT)
        .await
        .expect("read_group");
    let waited = started.elapsed();
    assert!(nothing.is_empty());
    assert!(
        waited + EARLY_SLACK >= SHORT_WAIT,
        "returned after {waited:?}"
    );
    assert!(waited < PATIENCE, "waited {waited:?}");
    let writer = {
        let store = Arc::clone(&store);
        let scope = scope.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            append(&*store, &scope, "s", b"late").await
        })
    };
    let started = Instant::now();
    let woken = store
        .read_group(&scope, "s", "g", "c", 10, Duration::from_secs(60))
        .await
        .expect("read_group");
    assert!(
        started.elapsed() < PATIENCE,
        "woke after {:?}",
        started.elapsed()
    );
    assert_eq!(writer.await.expect("the writer"), 0);
    assert_eq!(offsets(&woken), [0]);
    assert_eq!(woken[0].message.value, b"late");
    assert_eq!(info(&*store, &scope, "s").await.groups[0].pending, 1);
}

pub async fn claim_takes_over_idle_messages_only<S: StreamStore>(store: Arc<S>) {
    const MIN_IDLE: Duration = Duration::from_millis(500);
    let scope = scope("claim");
    append_numbered(&*store, &scope, "s", 6).await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    let old = store
        .read_group(&scope, "s", "g", "gone", 3, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&old), [0, 1, 2]);
    tokio::time::sleep(MIN_IDLE + Duration::from_millis(300)).await;
    let fresh = store
        .read_group(&scope, "s", "g", "busy", 2, Duration::ZERO)
        .await
        .expect("read_group");
    assert_eq!(offsets(&fresh), [3, 4]);
    // Lowest offsets first, at most max_messages.
    let taken = store
        .claim(&scope, "s", "g", "heir", MIN_IDLE, 2)
        .await
        .expect("claim");
    assert_eq!(offsets(&taken), [0, 1]);
    assert_eq!(values(&taken), [b"0".to_vec(), b"1".to_vec()]);
    let rest = store
        .claim(&scope, "s", "g", "heir", MIN_IDLE, 100)
        .await
        .expect("claim");
    assert_eq!(offsets(&rest), [2], "fresh messages stay with their member");
    // Claimed messages are pending for their new member from now: not idle any more.
    let again = store
        .claim(&scope, "s", "g", "other", MIN_IDLE, 100)
        .await
        .expect("claim");
    assert!(offsets(&again).is_empty(), "{:?}", offsets(&again));
    let group = info(&*store, &scope, "s").await.groups[0].clone();
    assert_eq!(
        (group.delivered_up_to, group.committed, group.pending),
        (5, 0, 5)
    );
    // The new member acknowledges what it took.
    assert_eq!(
        store.ack(&scope, "s", "g", &[0, 1, 2]).await.expect("ack"),
        3
    );
    let group = info(&*store, &scope, "s").await.groups[0].clone();
    assert_eq!((group.committed, group.pending), (3, 2));
    // With no minimum, every pending message can be taken.
    let all = store
        .claim(&scope, "s", "g", "heir", Duration::ZERO, 100)
        .await
        .expect("claim");
    assert_eq!(offsets(&all), [3, 4]);
}

pub async fn missing_groups_are_refused<S: StreamStore>(store: Arc<S>) {
    let scope = scope("missing-group");
    append_numbered(&*store, &scope, "s", 2).await;
    for stream in ["s", "missing"] {
        refused!(
            store.read_group(&scope, stream, "nope", "c", 10, Duration::ZERO),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_group(&scope, stream, "nope", "c", 10, SHORT_WAIT),
            KvError::InvalidArgument(_)
        );
    }
    assert!(store.info(&scope, "missing").await.expect("info").is_none());
    assert!(info(&*store, &scope, "s").await.groups.is_empty());
}

pub async fn bad_names_are_refused<S: StreamStore>(store: Arc<S>) {
    let scope = scope("bad-names");
    let long_name = "x".repeat(STREAM_NAME_BYTES_MAX + 1);
    let message = NewMessage::value("v");
    let wait = Duration::ZERO;
    for bad in ["", "a b", "a/b", "a:b", "{s}", "ü", long_name.as_str()] {
        refused!(
            store.append(&scope, bad, &message),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.append_batch(&scope, bad, std::slice::from_ref(&message)),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_range(&scope, bad, 0, 10, 100),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_blocking(&scope, bad, 0, 10, wait),
            KvError::InvalidArgument(_)
        );
        refused!(store.info(&scope, bad), KvError::InvalidArgument(_));
        refused!(store.trim(&scope, bad, 0), KvError::InvalidArgument(_));
        refused!(
            store.delete_stream(&scope, bad),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.create_group(&scope, bad, "g", 0),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.create_group(&scope, "s", bad, 0),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_group(&scope, "s", bad, "c", 10, wait),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_group(&scope, "s", "g", bad, 10, wait),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.ack(&scope, "s", bad, &[0]),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.commit(&scope, "s", bad, 0),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.claim(&scope, "s", "g", bad, wait, 10),
            KvError::InvalidArgument(_)
        );
    }
    // Nothing was created by the refused calls.
    assert!(store.info(&scope, "s").await.expect("info").is_none());
    // The longest name is fine.
    let longest = "n".repeat(STREAM_NAME_BYTES_MAX);
    assert_eq!(append(&*store, &scope, &longest, b"v").await, 0);
    assert!(store.delete_stream(&scope, &longest).await.expect("delete"));
}

pub async fn bad_batches_and_reads_are_refused_and_write_nothing<S: StreamStore>(store: Arc<S>) {
    let scope = scope("bad-batches");
    let message = NewMessage::value("v");
    let wait = Duration::ZERO;
    // Batches: empty, too long, too many headers, too large; each refused whole.
    refused!(
        store.append_batch(&scope, "s", &[]),
        KvError::InvalidArgument(_)
    );
    let too_many = vec![NewMessage::value("m"); STREAM_BATCH_MESSAGES_MAX + 1];
    refused!(
        store.append_batch(&scope, "s", &too_many),
        KvError::InvalidArgument(_)
    );
    let headers = NewMessage {
        key: None,
        headers: vec![(b"h".to_vec(), b"v".to_vec()); STREAM_HEADERS_MAX + 1],
        value: b"v".to_vec(),
    };
    refused!(
        store.append(&scope, "s", &headers),
        KvError::InvalidArgument(_)
    );
    refused!(
        store.append_batch(&scope, "s", &[message.clone(), headers]),
        KvError::InvalidArgument(_)
    );
    // Key, headers and value count together against the limit.
    let oversized = NewMessage {
        key: Some(vec![b'k'; 8]),
        headers: vec![(b"h".to_vec(), vec![b'h'; 8])],
        value: vec![0; STREAM_MESSAGE_BYTES_MAX - 8],
    };
    refused!(
        store.append(&scope, "s", &oversized),
        KvError::ValueTooLarge { .. }
    );
    refused!(
        store.append_batch(&scope, "s", &[message.clone(), oversized]),
        KvError::ValueTooLarge { .. }
    );
    assert!(
        store.info(&scope, "s").await.expect("info").is_none(),
        "a refused batch wrote nothing"
    );

    // Read counts and waits.
    append(&*store, &scope, "s", b"v").await;
    assert!(store
        .create_group(&scope, "s", "g", 0)
        .await
        .expect("create_group"));
    let too_long = STREAM_BLOCK_MAX + Duration::from_millis(1);
    for count in [0, STREAM_BATCH_MESSAGES_MAX + 1] {
        refused!(
            store.read_range(&scope, "s", 0, count, 100),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_blocking(&scope, "s", 0, count, wait),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.read_group(&scope, "s", "g", "c", count, wait),
            KvError::InvalidArgument(_)
        );
        refused!(
            store.claim(&scope, "s", "g", "c", wait, count),
            KvError::InvalidArgument(_)
        );
    }
    refused!(
        store.read_blocking(&scope, "s", 0, 10, too_long),
        KvError::InvalidArgument(_)
    );
    refused!(
        store.read_group(&scope, "s", "g", "c", 10, too_long),
        KvError::InvalidArgument(_)
    );
    // Nothing was delivered by the refused reads, nor appended by the refused batches.
    let summary = info(&*store, &scope, "s").await;
    assert_eq!((summary.first_offset, summary.next_offset), (0, 1));
    assert_eq!(
        (summary.groups[0].delivered_up_to, summary.groups[0].pending),
        (0, 0)
    );
}

/// For a backend that also stores keys and values: streams and keys of one scope never
/// meet, whatever the keys' bytes, and key-value calls never see or remove a stream.
pub async fn streams_and_keys_never_collide<S: StreamStore + KeyValueStore>(store: Arc<S>) {
    let scope = scope("streams-and-keys");
    append_numbered(&*store, &scope, "orders", 2).await;
    for key in [
        &b"orders"[..],
        b"stream:orders",
        b"s",
        b"stream:{x:y}orders",
    ] {
        store.put(&scope, key, b"v").await.expect("put");
        assert_eq!(
            store.get(&scope, key).await.expect("get"),
            Some(b"v".to_vec())
        );
    }
    assert_eq!(
        store.list(&scope, b"").await.expect("list"),
        [
            b"orders".to_vec(),
            b"s".to_vec(),
            b"stream:orders".to_vec(),
            b"stream:{x:y}orders".to_vec()
        ]
    );
    assert_eq!(store.count_prefix(&scope, b"").await.expect("count"), 4);
    assert_eq!(store.clear_prefix(&scope, b"").await.expect("clear"), 4);
    let summary = info(&*store, &scope, "orders").await;
    assert_eq!(summary.next_offset, 2);
    assert_eq!(read_all(&*store, &scope, "orders").await.len(), 2);
    assert!(store.delete_stream(&scope, "orders").await.expect("delete"));
    assert_eq!(store.count_prefix(&scope, b"").await.expect("count"), 0);
}

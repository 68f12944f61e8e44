//! A commit is all or nothing, and watchers hear of it only once readers can see it.
//!
//! - A commit the WAL cannot hold (its body above the frame limit, lowered here through the
//!   test-only option) is refused before anything is published: no chain, no version, no watch
//!   event; reads and compare-and-swap agree that nothing happened, the WAL is not poisoned,
//!   and the next commit succeeds and survives a reopen.
//! - A watcher woken by an event reads the value the event carries (`InMemory`, `Buffered`
//!   and `Strict`): events are published after the commit is visible.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::sync::Arc;
use std::time::Duration;

use cairn::{CasOutcome, Db, Durability, Error, Expected, Options, Value, WatchEvent, WriteBatch};
use cairn_testkit::TempDir;
use parking_lot::Mutex;

/// Frame payload limit for these tests: a few small commits fit, a 4 KiB value does not.
const FRAME_LIMIT: usize = 1_024;

fn small_frames(dir: &TempDir, durability: Durability) -> Options {
    Options::new(dir.path())
        .durability(durability)
        .maintenance_interval(Duration::ZERO)
        .test_wal_frame_payload_bytes_max(FRAME_LIMIT)
}

fn oversized_commit_changes_nothing(durability: Durability) {
    let dir = TempDir::new("oversized-commit");
    let db = Db::open(small_frames(&dir, durability)).expect("open");
    db.put("kept", "before").expect("small put");
    let watcher = db.watch_prefix("");
    let version = db.version();
    let stats = db.stats();

    let mut batch = WriteBatch::new();
    batch.put("kept", "after");
    batch.put("big", vec![7_u8; 4 * FRAME_LIMIT]);
    let refused = db.write(&batch);
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );
    let mut transaction = db.begin();
    transaction
        .put("big", vec![7_u8; 4 * FRAME_LIMIT])
        .expect("buffer");
    let refused = transaction.commit();
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{refused:?}"
    );

    assert_eq!(db.version(), version, "the version moved");
    assert_eq!(db.get("kept").expect("get"), Some(Value::from("before")));
    assert_eq!(db.get("big").expect("get"), None);
    assert_eq!(
        watcher.try_recv(),
        None,
        "an event for a commit that never happened"
    );
    let after = db.stats();
    assert_eq!(
        after.keys_indexed, stats.keys_indexed,
        "a chain was left behind"
    );
    assert_eq!(after.versions_retained, stats.versions_retained);
    assert_eq!(after.commits, stats.commits);
    assert!(!after.wal_poisoned);
    // What `get` says, compare-and-swap must agree with: the key is absent.
    let swapped = db
        .compare_and_swap("big", Expected::Absent, Some(b"small"))
        .expect("cas after a refused commit");
    assert!(matches!(swapped, CasOutcome::Swapped(_)), "{swapped:?}");
    db.put("next", "works").expect("the next commit");
    assert!(matches!(
        watcher.try_recv(),
        Some(WatchEvent::Put { ref key, .. }) if key.as_bytes() == b"big"
    ));
    db.close().expect("close");

    let db = Db::open(small_frames(&dir, durability)).expect("reopen");
    assert_eq!(db.get("kept").expect("get"), Some(Value::from("before")));
    assert_eq!(db.get("big").expect("get"), Some(Value::from("small")));
    assert_eq!(db.get("next").expect("get"), Some(Value::from("works")));
}

#[test]
fn a_commit_too_large_for_the_wal_changes_nothing_buffered() {
    oversized_commit_changes_nothing(Durability::buffered());
}

#[test]
fn a_commit_too_large_for_the_wal_changes_nothing_strict() {
    oversized_commit_changes_nothing(Durability::Strict);
}

#[test]
fn an_out_of_range_frame_limit_is_an_invalid_argument() {
    let dir = TempDir::new("frame-limit-range");
    let opened = Db::open(
        Options::new(dir.path())
            .maintenance_interval(Duration::ZERO)
            .test_wal_frame_payload_bytes_max(1),
    );
    assert!(
        matches!(opened, Err(Error::InvalidArgument(_))),
        "{opened:?}"
    );
}

/// Subscribes with a wake-up hook that reads `key` the moment an event is queued, as an async
/// adapter's woken task might, and returns what each read saw.
fn reads_on_wakeup(db: &Db, key: &'static str) -> (cairn::Watcher, Arc<Mutex<Vec<Option<Value>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = db.clone();
    let record = Arc::clone(&seen);
    let watcher = db.watch_prefix_with_wakeup(
        key,
        Arc::new(move || record.lock().push(reader.get(key).ok().flatten())),
    );
    (watcher, seen)
}

fn woken_watcher_reads_the_new_value(db: &Db) {
    db.put("w", "old").expect("put");
    let (watcher, seen) = reads_on_wakeup(db, "w");
    db.put("w", "new").expect("put");
    let mut batch = WriteBatch::new();
    batch.put("w", "newer");
    batch.put("x", "other");
    db.write(&batch).expect("batch");
    assert_eq!(
        *seen.lock(),
        vec![Some(Value::from("new")), Some(Value::from("newer"))],
        "a woken watcher read a value older than its event"
    );
    // The hook holds a handle to the database: unsubscribe to drop it.
    drop(watcher);
}

#[test]
fn a_woken_watcher_reads_the_new_value_in_memory() {
    let db = Db::open(Options::in_memory().maintenance_interval(Duration::ZERO)).expect("open");
    woken_watcher_reads_the_new_value(&db);
}

#[test]
fn a_woken_watcher_reads_the_new_value_buffered() {
    let dir = TempDir::new("watch-buffered");
    let db = Db::open(
        Options::new(dir.path())
            .durability(Durability::buffered())
            .maintenance_interval(Duration::ZERO),
    )
    .expect("open");
    woken_watcher_reads_the_new_value(&db);
}

#[test]
fn a_woken_watcher_reads_the_new_value_strict() {
    let dir = TempDir::new("watch-strict");
    let db = Db::open(Options::new(dir.path()).maintenance_interval(Duration::ZERO)).expect("open");
    woken_watcher_reads_the_new_value(&db);
}

#[test]
fn a_watcher_thread_woken_by_recv_reads_the_new_value() {
    let db = Db::open(Options::in_memory().maintenance_interval(Duration::ZERO)).expect("open");
    let watcher = db.watch_prefix("counter");
    let reader = db.clone();
    let checker = std::thread::spawn(move || {
        let mut stale = 0;
        while let Some(event) = watcher.recv_timeout(Duration::from_secs(5)) {
            if let WatchEvent::Put {
                key,
                value,
                version,
            } = event
            {
                let now = reader.get_versioned(&key).expect("get");
                if now.is_none_or(|(_, seen)| seen < version) {
                    stale += 1;
                }
                if value.as_bytes() == b"999" {
                    break;
                }
            }
        }
        stale
    });
    for round in 0..1_000 {
        db.put("counter", round.to_string()).expect("put");
    }
    assert_eq!(
        checker.join().expect("checker"),
        0,
        "stale reads after a wake-up"
    );
}

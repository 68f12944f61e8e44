//! Behaviour of the engine's features, one property per test: TTL (expiry, reaping, `ttl`,
//! `expire`, `persist`, sub-second TTLs), `watch_prefix` (matching keys only, commit order,
//! one version per batch, lag markers, a writer that never waits), bounded version growth with
//! and without snapshots, `clear_prefix` as one atomic commit, `multi_get` reading one version,
//! reverse scans, and scans across the 128-entry chunk boundaries of the index over ranges full
//! of tombstones and expired keys, with `next` and `next_back` meeting in the middle.
//!
//! Every expected result is computed independently (by counting, or from a `BTreeMap`), and
//! every time-dependent test uses a `ManualClock`, so nothing here depends on timing.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cairn::{
    Db, Isolation, Key, ManualClock, Options, Scan, Ttl, Value, Version, WatchEvent, WriteBatch,
};
use cairn_testkit::SplitMix64;

// ----- helpers ---------------------------------------------------------------------------------

fn manual_db_with(options: Options) -> (Db, ManualClock) {
    let clock = ManualClock::new(1_000_000);
    let db = Db::open(
        options
            .clock(Arc::new(clock.clone()))
            .maintenance_interval(Duration::ZERO),
    )
    .expect("open an in-memory database");
    (db, clock)
}

fn manual_db() -> (Db, ManualClock) {
    manual_db_with(Options::in_memory())
}

fn bytes(value: Option<Value>) -> Option<Vec<u8>> {
    value.map(|value| value.to_vec())
}

/// Owned `(key, value)` pairs, in the order a scan returned them.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Borrowed range bounds.
type SliceBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

fn pairs(scan: impl Iterator<Item = (Key, Value)>) -> Pairs {
    scan.map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect()
}

fn put_event(key: &str, value: &str, version: Version) -> WatchEvent {
    WatchEvent::Put {
        key: Key::from(key),
        value: Value::from(value),
        version,
    }
}

fn delete_event(key: &str, version: Version) -> WatchEvent {
    WatchEvent::Delete {
        key: Key::from(key),
        version,
    }
}

fn drain(watcher: &cairn::Watcher) -> Vec<WatchEvent> {
    std::iter::from_fn(|| watcher.try_recv()).collect()
}

// ----- TTL -------------------------------------------------------------------------------------

#[test]
fn expired_key_is_invisible_at_once_and_reclaimed_by_maintenance() {
    let (db, clock) = manual_db();
    db.put_with_ttl("session", "alice", Duration::from_millis(10))
        .expect("put with ttl");
    db.put("stays", "forever").expect("put");
    assert_eq!(
        db.ttl("session").expect("ttl"),
        Ttl::Expires(Duration::from_millis(10))
    );

    clock.advance_millis(9);
    assert_eq!(
        bytes(db.get("session").expect("get")),
        Some(b"alice".to_vec())
    );
    assert_eq!(
        db.ttl("session").expect("ttl"),
        Ttl::Expires(Duration::from_millis(1))
    );

    clock.advance_millis(1);
    // Invisible the instant the deadline is reached, to every kind of read, before any reaping.
    assert_eq!(db.get("session").expect("get"), None);
    assert_eq!(db.get_versioned("session").expect("get"), None);
    assert!(!db.exists("session").expect("exists"));
    assert_eq!(db.ttl("session").expect("ttl"), Ttl::Absent);
    assert_eq!(
        db.multi_get(&["session", "stays"]).expect("multi_get")[0],
        None
    );
    assert_eq!(db.count_prefix("s").expect("count"), 1);
    assert_eq!(
        db.scan_prefix("")
            .expect("scan of an open database")
            .rev()
            .count(),
        1
    );
    assert!(
        !db.delete("session").expect("delete"),
        "an expired key is absent"
    );

    let before = db.stats();
    assert_eq!((before.keys_indexed, before.keys_with_ttl), (2, 1));
    assert_eq!(before.expired_reclaimed, 0);

    let report = db.run_maintenance();
    assert_eq!(report.expired_reclaimed, 1);
    let after = db.stats();
    assert_eq!(after.expired_reclaimed, 1);
    assert_eq!(after.keys_indexed, 1);
    assert_eq!(after.versions_retained, 1);
    assert_eq!(after.keys_with_ttl, 0);
    assert_eq!(
        bytes(db.get("stays").expect("get")),
        Some(b"forever".to_vec())
    );

    // The key can be written again as if it had never existed.
    db.put("session", "bob").expect("put again");
    assert_eq!(db.ttl("session").expect("ttl"), Ttl::Persistent);
}

#[test]
fn ttl_expire_and_persist_report_and_change_the_deadline() {
    let (db, clock) = manual_db();
    assert_eq!(db.ttl("k").expect("ttl"), Ttl::Absent);
    assert!(!db.expire("k", Duration::from_secs(1)).expect("expire"));
    assert!(!db.persist("k").expect("persist"));
    assert_eq!(
        db.version(),
        Version::ZERO,
        "expire/persist of an absent key commit nothing"
    );

    let written = db.put("k", "v").expect("put");
    assert_eq!(db.ttl("k").expect("ttl"), Ttl::Persistent);

    assert!(db.expire("k", Duration::from_millis(250)).expect("expire"));
    assert_eq!(
        db.version().get(),
        written.get() + 1,
        "expire is one commit"
    );
    assert_eq!(
        db.ttl("k").expect("ttl"),
        Ttl::Expires(Duration::from_millis(250))
    );
    assert_eq!(
        bytes(db.get("k").expect("get")),
        Some(b"v".to_vec()),
        "value kept"
    );

    clock.advance_millis(100);
    assert_eq!(
        db.ttl("k").expect("ttl"),
        Ttl::Expires(Duration::from_millis(150))
    );
    assert!(db.persist("k").expect("persist"));
    assert_eq!(db.ttl("k").expect("ttl"), Ttl::Persistent);
    clock.advance_millis(10_000);
    assert_eq!(
        bytes(db.get("k").expect("get")),
        Some(b"v".to_vec()),
        "persisted"
    );
    assert_eq!(db.stats().keys_with_ttl, 0);

    // A plain put clears a TTL; increment keeps it; compare-and-swap clears it.
    db.put_with_ttl("n", "1", Duration::from_millis(50))
        .expect("put with ttl");
    assert_eq!(db.increment("n", 2).expect("increment"), 3);
    assert_eq!(
        db.ttl("n").expect("ttl"),
        Ttl::Expires(Duration::from_millis(50))
    );
    clock.advance_millis(50);
    assert_eq!(
        db.get("n").expect("get"),
        None,
        "increment kept the deadline"
    );
    assert_eq!(db.increment("n", 2).expect("increment of expired"), 2);
    assert_eq!(db.ttl("n").expect("ttl"), Ttl::Persistent);
    db.put_with_ttl("n", "1", Duration::from_millis(50))
        .expect("put with ttl");
    db.put("n", "2").expect("put");
    assert_eq!(db.ttl("n").expect("ttl"), Ttl::Persistent);
    db.put_with_ttl("n", "1", Duration::from_millis(50))
        .expect("put with ttl");
    let swapped = db
        .compare_and_swap("n", cairn::Expected::Value(b"1"), Some(b"9"))
        .expect("cas");
    assert!(swapped.is_swapped());
    assert_eq!(db.ttl("n").expect("ttl"), Ttl::Persistent);

    // An expired key cannot be given a new TTL or persisted: it is gone.
    db.put_with_ttl("gone", "x", Duration::from_millis(5))
        .expect("put with ttl");
    clock.advance_millis(5);
    let version = db.version();
    assert!(!db.expire("gone", Duration::from_secs(5)).expect("expire"));
    assert!(!db.persist("gone").expect("persist"));
    assert_eq!(db.version(), version);
    assert_eq!(db.get("gone").expect("get"), None);
}

#[test]
fn sub_second_ttls_round_up_to_whole_milliseconds() {
    let (db, clock) = manual_db();
    db.put_with_ttl("one-ms", "v", Duration::from_millis(1))
        .expect("1 ms ttl");
    db.put_with_ttl("one-us", "v", Duration::from_micros(1))
        .expect("1 us ttl");
    db.put_with_ttl("1.5ms", "v", Duration::from_micros(1_500))
        .expect("1.5 ms ttl");
    assert_eq!(
        db.ttl("one-ms").expect("ttl"),
        Ttl::Expires(Duration::from_millis(1))
    );
    assert_eq!(
        db.ttl("one-us").expect("ttl"),
        Ttl::Expires(Duration::from_millis(1))
    );
    assert_eq!(
        db.ttl("1.5ms").expect("ttl"),
        Ttl::Expires(Duration::from_millis(2))
    );
    assert_eq!(db.count_prefix("").expect("count"), 3, "all live at first");

    clock.advance_millis(1);
    assert_eq!(db.get("one-ms").expect("get"), None);
    assert_eq!(db.get("one-us").expect("get"), None);
    assert_eq!(bytes(db.get("1.5ms").expect("get")), Some(b"v".to_vec()));
    clock.advance_millis(1);
    assert_eq!(db.get("1.5ms").expect("get"), None);
    assert_eq!(db.run_maintenance().expired_reclaimed, 3);
    assert_eq!(db.stats().keys_indexed, 0);
}

#[test]
fn ttl_in_batches_and_transactions_and_snapshots() {
    let (db, clock) = manual_db();
    let mut batch = WriteBatch::new();
    batch
        .put_with_ttl("b:short", "1", Duration::from_millis(5))
        .put_with_ttl("b:long", "2", Duration::from_millis(50))
        .put("b:none", "3");
    db.write(&batch).expect("batch");
    let mut tx = db.begin();
    tx.put_with_ttl("t:short", "4", Duration::from_millis(5))
        .expect("tx put");
    assert_eq!(
        bytes(tx.get("t:short").expect("tx get")),
        Some(b"4".to_vec())
    );
    clock.advance_millis(5);
    // The transaction's own expiring write expires inside the transaction too.
    assert_eq!(tx.get("t:short").expect("tx get"), None);
    assert_eq!(tx.scan_prefix("").count(), 2, "b:long and b:none");
    tx.put_with_ttl("t:long", "5", Duration::from_millis(50))
        .expect("tx put");
    tx.commit().expect("commit");

    let snapshot = db.snapshot();
    assert_eq!(
        pairs(snapshot.scan_prefix("")),
        vec![
            (b"b:long".to_vec(), b"2".to_vec()),
            (b"b:none".to_vec(), b"3".to_vec()),
            (b"t:long".to_vec(), b"5".to_vec()),
        ]
    );
    clock.advance_millis(45);
    // b:long's deadline (t+50) has passed; t:long's (t+55) has not. A snapshot judges TTL by
    // the clock at read time, not by its version.
    assert_eq!(snapshot.get("b:long"), None);
    assert_eq!(bytes(snapshot.get("t:long")), Some(b"5".to_vec()));
    assert_eq!(snapshot.scan_prefix("").count(), 2);
    clock.advance_millis(5);
    assert_eq!(snapshot.get("t:long"), None);
    assert_eq!(db.count_prefix("").expect("count"), 1);
    drop(snapshot);
    db.run_maintenance();
    let stats = db.stats();
    assert_eq!((stats.keys_indexed, stats.versions_retained), (1, 1));
}

// ----- watch -----------------------------------------------------------------------------------

#[test]
fn watch_sees_matching_keys_only_in_commit_order() {
    let (db, _clock) = manual_db();
    let watcher = db.watch_prefix("user:");
    assert_eq!(db.stats().watchers, 1);

    let v1 = db.put("user:1", "ada").expect("put");
    db.put("other", "x").expect("put");
    db.put("user", "not under the prefix").expect("put");
    let v4 = db.put("user:2", "grace").expect("put");
    assert!(db.delete("user:1").expect("delete"));
    let v5 = db.version();
    assert!(!db.delete("user:9").expect("delete"), "absent");
    let v6 = db.increment("user:n", 5).expect("increment");
    assert_eq!(v6, 5);
    let v6 = db.version();
    let mut tx = db.begin();
    tx.put("user:3", "linus").expect("tx put");
    tx.put("elsewhere", "y").expect("tx put");
    let v7 = tx.commit().expect("commit");

    assert_eq!(
        drain(&watcher),
        vec![
            put_event("user:1", "ada", v1),
            put_event("user:2", "grace", v4),
            delete_event("user:1", v5),
            put_event("user:n", "5", v6),
            put_event("user:3", "linus", v7),
        ]
    );
    drop(watcher);
    assert_eq!(db.stats().watchers, 0);
}

#[test]
fn watch_events_of_one_commit_share_its_version() {
    let (db, _clock) = manual_db();
    for key in ["w:a", "w:b", "w:c"] {
        db.put(key, "0").expect("put");
    }
    let watcher = db.watch_prefix("w:");
    let all = db.watch_prefix("");

    let mut batch = WriteBatch::new();
    batch
        .put("w:z", "1")
        .delete("w:a")
        .put("x:1", "1")
        .put("w:z", "2")
        .put("w:b", "3");
    let batch_version = db.write(&batch).expect("batch");
    let cleared = db.clear_prefix("w:").expect("clear");
    assert_eq!(cleared, 3, "w:b, w:c and w:z");
    let clear_version = db.version();
    assert_eq!(clear_version.get(), batch_version.get() + 1);

    // A batch's events come in key order, the last write to a key winning, all at one version.
    assert_eq!(
        drain(&watcher),
        vec![
            delete_event("w:a", batch_version),
            put_event("w:b", "3", batch_version),
            put_event("w:z", "2", batch_version),
            delete_event("w:b", clear_version),
            delete_event("w:c", clear_version),
            delete_event("w:z", clear_version),
        ]
    );
    let everything = drain(&all);
    assert_eq!(
        everything.len(),
        7,
        "the x:1 put is seen only by the catch-all watcher"
    );
    assert!(everything.contains(&put_event("x:1", "1", batch_version)));
}

#[test]
fn full_watch_queue_folds_into_a_lag_marker_and_never_blocks_the_writer() {
    let (db, _clock) = manual_db_with(Options::in_memory().watch_queue_events(4));
    let slow = db.watch_prefix("k");
    // Nobody reads `slow`; a writer that waited for room would never finish this loop.
    let mut versions = Vec::new();
    for index in 0..100 {
        versions.push(db.put(format!("k{index:03}"), "v").expect("put"));
    }
    assert_eq!(slow.pending(), 4, "the queue stays bounded");
    let events = drain(&slow);
    assert_eq!(
        events,
        vec![
            put_event("k000", "v", versions[0]),
            put_event("k001", "v", versions[1]),
            put_event("k002", "v", versions[2]),
            WatchEvent::Lagged(97),
        ]
    );
    // Once drained, the watcher resumes with the next commit.
    let next = db.put("k-next", "w").expect("put");
    assert_eq!(slow.try_recv(), Some(put_event("k-next", "w", next)));
    // A partly drained queue keeps its order: lag markers sit where the loss happened.
    for index in 0..6 {
        db.put(format!("k{index}"), "x").expect("put");
    }
    assert_eq!(
        slow.try_recv(),
        Some(put_event("k0", "x", Version::new(next.get() + 1)))
    );
    db.put("k-last", "y").expect("put");
    let rest = drain(&slow);
    assert_eq!(rest.len(), 4);
    assert_eq!(rest[2], WatchEvent::Lagged(3));
    assert!(matches!(&rest[3], WatchEvent::Put { key, .. } if key.as_bytes() == b"k-last"));
}

#[test]
fn watcher_on_another_thread_sees_every_commit_in_order_then_ends_on_close() {
    let (db, _clock) = manual_db();
    let watcher = db.watch_prefix("t:");
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        // `recv` returns None only once the database is closed and the queue is drained.
        while let Some(event) = watcher.recv() {
            seen.push(event);
        }
        seen
    });
    let mut expected = Vec::new();
    for index in 0..1_000 {
        let key = format!("t:{}", index % 7);
        let value = index.to_string();
        let version = db.put(&key, &value).expect("put");
        expected.push(put_event(&key, &value, version));
        db.put("u:ignored", "x").expect("put");
    }
    db.close().expect("close");
    let seen = reader.join().expect("watcher thread");
    assert_eq!(seen, expected);
}

#[test]
fn expiry_is_not_a_watch_event() {
    let (db, clock) = manual_db();
    let watcher = db.watch_prefix("");
    let version = db
        .put_with_ttl("k", "v", Duration::from_millis(1))
        .expect("put");
    clock.advance_millis(5);
    db.run_maintenance();
    assert_eq!(drain(&watcher), vec![put_event("k", "v", version)]);
}

// ----- version growth --------------------------------------------------------------------------

#[test]
fn version_growth_is_bounded_without_snapshots() {
    let (db, _clock) = manual_db();
    for index in 0..100_000u32 {
        db.put("hot", index.to_le_bytes()).expect("put");
        if index % 64 == 0 {
            let stats = db.stats();
            assert!(
                stats.versions_retained <= 2,
                "after {index} updates: {} versions retained",
                stats.versions_retained
            );
        }
    }
    let stats = db.stats();
    assert!(stats.versions_retained <= 2);
    assert_eq!(stats.keys_indexed, 1);
    db.run_maintenance();
    let stats = db.stats();
    assert_eq!(stats.versions_retained, 1);
    assert_eq!(stats.prune_queue, 0);
    assert_eq!(
        bytes(db.get("hot").expect("get")),
        Some(99_999u32.to_le_bytes().to_vec())
    );
}

#[test]
fn snapshot_keeps_the_history_it_needs_and_releases_it_when_dropped() {
    let (db, _clock) = manual_db();
    db.put("hot", "original").expect("put");
    db.put("cold", "c").expect("put");
    let snapshot = db.snapshot();
    let updates = 2_000u64;
    for index in 0..updates {
        db.put("hot", index.to_string()).expect("put");
    }
    db.delete("cold").expect("delete");
    db.run_maintenance();
    let stats = db.stats();
    // Each key keeps what some reader can see: its newest entry, and the one the snapshot
    // reads. The 1,999 versions in between are unreachable and were pruned on write.
    assert_eq!(stats.versions_retained, 2 + 2);
    assert_eq!(bytes(snapshot.get("hot")), Some(b"original".to_vec()));
    assert_eq!(bytes(snapshot.get("cold")), Some(b"c".to_vec()));
    assert_eq!(db.get("cold").expect("get"), None);
    assert_eq!(
        pairs(snapshot.scan_prefix("")),
        vec![
            (b"cold".to_vec(), b"c".to_vec()),
            (b"hot".to_vec(), b"original".to_vec())
        ]
    );

    drop(snapshot);
    assert_eq!(db.stats().readers_open, 0);
    let pruned_before = db.stats().versions_pruned;
    db.run_maintenance();
    let stats = db.stats();
    assert_eq!(stats.versions_retained, 1);
    assert_eq!(stats.keys_indexed, 1);
    // hot drops the snapshot's entry; cold drops its tombstone and its old value.
    assert_eq!(stats.versions_pruned - pruned_before, 1 + 2);
    assert_eq!(
        bytes(db.get("hot").expect("get")),
        Some((updates - 1).to_string().into_bytes())
    );
}

#[test]
fn deleting_an_already_deleted_key_leaves_nothing_behind() {
    let (db, _clock) = manual_db();
    // Each way of deleting a key that is already deleted (its tombstone not yet pruned).
    db.put("batch", "v").expect("put");
    db.put("tx", "v").expect("put");
    db.put("cas", "v").expect("put");
    for key in ["batch", "tx", "cas"] {
        assert!(db.delete(key).expect("delete"));
    }
    let mut batch = WriteBatch::new();
    batch.delete("batch");
    db.write(&batch).expect("batch delete");
    let mut tx = db.begin();
    tx.delete("tx").expect("tx delete");
    tx.commit().expect("commit");
    let outcome = db
        .compare_and_swap("cas", cairn::Expected::Absent, None)
        .expect("cas");
    assert!(outcome.is_swapped());
    for key in ["batch", "tx", "cas"] {
        assert_eq!(db.get(key).expect("get"), None);
    }
    let stats = db.stats();
    assert_eq!(
        stats.keys_indexed as u64, stats.versions_retained,
        "every indexed key holds at least one version: {stats:?}"
    );
    db.run_maintenance();
    let stats = db.stats();
    assert_eq!(stats.keys_indexed, 0, "{stats:?}");
    assert_eq!(stats.versions_retained, 0, "{stats:?}");
    // Writing the keys again works as for fresh keys.
    db.put("tx", "again").expect("put");
    assert_eq!(bytes(db.get("tx").expect("get")), Some(b"again".to_vec()));
}

// ----- clear_prefix ----------------------------------------------------------------------------

#[test]
fn clear_prefix_is_one_atomic_commit() {
    let (db, clock) = manual_db();
    let mut batch = WriteBatch::new();
    for index in 0..300 {
        batch.put(format!("p:{index:04}"), "v");
    }
    batch
        .put("p:", "the prefix itself")
        .put("p", "shorter")
        .put("p;", "just after");
    batch.put_with_ttl("p:expiring", "e", Duration::from_millis(1));
    db.write(&batch).expect("batch");
    clock.advance_millis(1);
    let watcher = db.watch_prefix("p");

    let before = db.snapshot();
    let version = db.version();
    assert_eq!(db.clear_prefix("p:").expect("clear"), 301);
    assert_eq!(db.version().get(), version.get() + 1, "exactly one commit");
    let after = db.snapshot();

    assert_eq!(before.scan_prefix("p:").count(), 301);
    assert_eq!(after.scan_prefix("p:").count(), 0);
    assert_eq!(db.count_prefix("p:").expect("count"), 0);
    assert_eq!(
        pairs(db.scan_prefix("p").expect("scan of an open database")),
        vec![
            (b"p".to_vec(), b"shorter".to_vec()),
            (b"p;".to_vec(), b"just after".to_vec())
        ]
    );
    let events = drain(&watcher);
    assert_eq!(
        events.len(),
        301,
        "one delete per live key; the expired key is not one"
    );
    assert!(events.iter().all(|event| matches!(
        event,
        WatchEvent::Delete { version, .. } if *version == after.version()
    )));

    // Nothing left to clear: no commit at all.
    assert_eq!(db.clear_prefix("p:").expect("clear"), 0);
    assert_eq!(db.version(), after.version());
}

#[test]
fn clear_prefix_handles_0xff_prefixes() {
    let (db, _clock) = manual_db();
    for key in [
        &[0xff][..],
        &[0xff, 0x00],
        &[0xff, 0xff],
        &[0xff, 0xff, 0x01],
        &[0xfe, 0xff],
        &[0x00],
    ] {
        db.put(key, "v").expect("put");
    }
    assert_eq!(db.count_prefix([0xff, 0xff]).expect("count"), 2);
    assert_eq!(
        db.scan_prefix([0xff])
            .expect("scan of an open database")
            .rev()
            .count(),
        4
    );
    assert_eq!(db.clear_prefix([0xff]).expect("clear"), 4);
    let left: Vec<Vec<u8>> = db
        .scan_prefix("")
        .expect("scan of an open database")
        .map(|(key, _)| key.to_vec())
        .collect();
    assert_eq!(left, vec![vec![0x00], vec![0xfe, 0xff]]);
}

#[test]
fn concurrent_readers_see_clear_prefix_all_or_nothing() {
    let (db, _clock) = manual_db();
    let mut batch = WriteBatch::new();
    for index in 0..500 {
        batch.put(format!("c:{index:04}"), "v");
    }
    db.write(&batch).expect("batch");
    let started = Arc::new(Barrier::new(2));
    let reader = {
        let db = db.clone();
        let started = Arc::clone(&started);
        std::thread::spawn(move || {
            started.wait();
            let mut observations = 0u64;
            loop {
                let counted = db.count_prefix("c:").expect("count");
                let snapshot = db.snapshot();
                let in_snapshot = snapshot.scan_prefix("c:").rev().count();
                assert!(counted == 500 || counted == 0, "count saw {counted}");
                assert!(
                    in_snapshot == 500 || in_snapshot == 0,
                    "scan saw {in_snapshot}"
                );
                observations += 1;
                if counted == 0 && in_snapshot == 0 {
                    return observations;
                }
            }
        })
    };
    started.wait();
    assert_eq!(db.clear_prefix("c:").expect("clear"), 500);
    let observations = reader.join().expect("reader thread");
    assert!(observations >= 1);
}

// ----- multi_get -------------------------------------------------------------------------------

#[test]
fn multi_get_reads_one_version_while_writers_commit() {
    let (db, _clock) = manual_db();
    let keys = ["m:a", "m:b", "m:c", "m:d"];
    let mut batch = WriteBatch::new();
    for key in keys {
        batch.put(key, "0");
    }
    db.write(&batch).expect("batch");
    let done = Arc::new(AtomicBool::new(false));
    let last_written = Arc::new(AtomicU64::new(0));
    let writer = {
        let db = db.clone();
        let done = Arc::clone(&done);
        let last_written = Arc::clone(&last_written);
        std::thread::spawn(move || {
            for round in 1..=2_000u64 {
                if round % 2 == 0 {
                    let mut batch = WriteBatch::new();
                    for key in keys.iter().rev() {
                        batch.put(key, round.to_string());
                    }
                    db.write(&batch).expect("batch");
                } else {
                    db.transaction_with(Isolation::Serializable, |tx| {
                        for key in keys {
                            tx.put(key, round.to_string())?;
                        }
                        Ok(())
                    })
                    .expect("transaction");
                }
                last_written.store(round, Ordering::Release);
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut previous = 0u64;
    let mut reads = 0u64;
    loop {
        let finished = done.load(Ordering::Acquire);
        let floor = last_written.load(Ordering::Acquire);
        let values = db.multi_get(&keys).expect("multi_get");
        let first = values[0].clone().expect("present");
        assert!(
            values.iter().all(|value| value.as_ref() == Some(&first)),
            "multi_get mixed versions: {values:?}"
        );
        let number: u64 = std::str::from_utf8(&first)
            .expect("utf8")
            .parse()
            .expect("number");
        assert!(number >= previous, "went back from {previous} to {number}");
        assert!(
            number >= floor,
            "missed a finished commit: {number} < {floor}"
        );
        previous = number;
        let snapshot = db.snapshot();
        let through_snapshot = snapshot.multi_get(&keys);
        assert!(through_snapshot
            .iter()
            .all(|value| value == &through_snapshot[0]));
        reads += 1;
        if finished {
            break;
        }
    }
    writer.join().expect("writer thread");
    assert_eq!(previous, 2_000);
    assert!(reads >= 1);
}

// ----- scans -----------------------------------------------------------------------------------

#[test]
fn reverse_scans_mirror_forward_scans() {
    let (db, _clock) = manual_db();
    let mut expected = BTreeMap::new();
    for index in 0..600u32 {
        let key = format!("r:{:03}:{}", index % 200, index / 200).into_bytes();
        let value = index.to_string().into_bytes();
        db.put(&key, &value).expect("put");
        expected.insert(key, value);
    }
    db.put("q", "before").expect("put");
    db.put("s", "after").expect("put");
    let forward = pairs(db.scan_prefix("r:").expect("scan of an open database"));
    let reverse = pairs(
        db.scan_prefix("r:")
            .expect("scan of an open database")
            .rev(),
    );
    let mut expected: Vec<_> = expected.into_iter().collect();
    assert_eq!(forward, expected);
    expected.reverse();
    assert_eq!(reverse, expected);

    let bounds: [SliceBounds<'_>; 4] = [
        (Bound::Included(b"r:050"), Bound::Excluded(b"r:150")),
        (Bound::Excluded(b"r:050:0"), Bound::Included(b"r:150:2")),
        (Bound::Unbounded, Bound::Included(b"r:001:1")),
        (Bound::Included(b"r:199:1"), Bound::Unbounded),
    ];
    for (lower, upper) in bounds {
        let forward = pairs(db.range::<&[u8]>((lower, upper)).expect("range"));
        let mut reverse = pairs(db.range::<&[u8]>((lower, upper)).expect("range").rev());
        reverse.reverse();
        assert_eq!(forward, reverse, "{lower:?}..{upper:?}");
        assert!(forward.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }
    assert_eq!(
        db.range::<&[u8]>((
            Bound::Included(b"r:050".as_slice()),
            Bound::Excluded(b"r:150".as_slice())
        ))
        .expect("range")
        .rev()
        .count(),
        300
    );
    assert_eq!(
        pairs(db.range(b"r:199:2".as_slice()..).expect("range").rev()),
        vec![
            (b"s".to_vec(), b"after".to_vec()),
            (b"r:199:2".to_vec(), b"599".to_vec())
        ]
    );
}

/// Drains `scan` taking runs from the front and the back in a seeded pattern, checks that both
/// ends stay finished once they meet, and returns the items in key order.
fn drain_both_ends(mut scan: Scan, rng: &mut SplitMix64, max_run: usize) -> Pairs {
    let mut front = Vec::new();
    let mut back = Vec::new();
    'outer: loop {
        let from_front = rng.below(2) == 0;
        for _ in 0..=rng.below(max_run) {
            let item = if from_front {
                scan.next()
            } else {
                scan.next_back()
            };
            let Some((key, value)) = item else {
                break 'outer;
            };
            let item = (key.to_vec(), value.to_vec());
            if from_front {
                front.push(item);
            } else {
                back.push(item);
            }
        }
    }
    assert!(scan.next().is_none() && scan.next_back().is_none() && scan.next().is_none());
    back.reverse();
    front.extend(back);
    front
}

fn chunk_key(index: usize) -> Vec<u8> {
    format!("k{index:05}").into_bytes()
}

/// A database holding 3,000 keys of which exactly `live` are live; the rest are tombstones or
/// expired, including an unbroken run of 1,200 dead keys (more than one chunk examines).
fn sparse_db(live: usize, rng: &mut SplitMix64) -> (Db, ManualClock, Pairs) {
    const TOTAL: usize = 3_000;
    let (db, clock) = manual_db();
    let mut batch = WriteBatch::new();
    for index in 0..TOTAL {
        let value = format!("v{index}");
        if index % 5 == 0 {
            batch.put_with_ttl(chunk_key(index), value, Duration::from_millis(10));
        } else {
            batch.put(chunk_key(index), value);
        }
    }
    db.write(&batch).expect("fill");
    // Choose the survivors outside the dead run 1_000..2_200.
    let mut candidates: Vec<usize> = (0..TOTAL)
        .filter(|index| !(1_000..2_200).contains(index))
        .collect();
    let mut survivors = Vec::new();
    for _ in 0..live {
        let pick = rng.below(candidates.len());
        survivors.push(candidates.swap_remove(pick));
    }
    survivors.sort_unstable();
    let mut batch = WriteBatch::new();
    let mut expected = Vec::new();
    let mut survivor = survivors.iter().peekable();
    for index in 0..TOTAL {
        if survivor.peek() == Some(&&index) {
            survivor.next();
            // Rewrite survivors without a TTL so they outlive the clock advance below.
            let value = format!("live{index}");
            batch.put(chunk_key(index), &value);
            expected.push((chunk_key(index), value.into_bytes()));
        } else if index % 5 != 0 {
            batch.delete(chunk_key(index));
        }
    }
    db.write(&batch).expect("delete");
    clock.advance_millis(10);
    (db, clock, expected)
}

#[test]
fn scans_over_tombstones_cross_chunk_boundaries_without_loss_or_duplicates() {
    let mut rng = SplitMix64::new(0x5ca1_ab1e);
    for live in [0, 1, 2, 127, 128, 129, 255, 256, 257, 300, 1_000, 1_800] {
        let (db, _clock, expected) = sparse_db(live, &mut rng);
        assert_eq!(
            db.stats().keys_indexed,
            3_000,
            "the dead keys are still indexed"
        );
        assert_eq!(
            pairs(db.scan_prefix("k").expect("scan of an open database")),
            expected,
            "forward, {live} live"
        );
        let mut reverse = pairs(db.scan_prefix("k").expect("scan of an open database").rev());
        reverse.reverse();
        assert_eq!(reverse, expected, "reverse, {live} live");
        assert_eq!(db.count_prefix("k").expect("count"), live);
        for max_run in [1, 3, 127, 128, 129, 400] {
            for _ in 0..3 {
                let mixed = drain_both_ends(
                    db.scan_prefix("k").expect("scan of an open database"),
                    &mut rng,
                    max_run,
                );
                assert_eq!(
                    mixed, expected,
                    "mixed ends, {live} live, runs up to {max_run}"
                );
            }
        }
        // Ranges with random bounds inside the key space, both directions and mixed.
        for _ in 0..10 {
            let mut start = rng.below(3_001);
            let mut end = rng.below(3_001);
            if start > end {
                std::mem::swap(&mut start, &mut end);
            }
            let (lower, upper) = (chunk_key(start), chunk_key(end));
            let want: Vec<_> = expected
                .iter()
                .filter(|(key, _)| *key >= lower && *key <= upper)
                .cloned()
                .collect();
            let range = (
                Bound::Included(lower.as_slice()),
                Bound::Included(upper.as_slice()),
            );
            assert_eq!(pairs(db.range::<&[u8]>(range).expect("range")), want);
            let mixed = drain_both_ends(db.range::<&[u8]>(range).expect("range"), &mut rng, 150);
            assert_eq!(mixed, want, "mixed range {start}..={end}, {live} live");
        }
        // After maintenance the dead keys are gone, and the answers are the same.
        db.run_maintenance();
        let stats = db.stats();
        assert_eq!(stats.keys_indexed, live);
        assert_eq!(stats.versions_retained, live as u64);
        let mixed = drain_both_ends(
            db.scan_prefix("k").expect("scan of an open database"),
            &mut rng,
            64,
        );
        assert_eq!(mixed, expected, "after maintenance, {live} live");
    }
}

#[test]
fn scan_reads_one_version_while_commits_land_between_chunks() {
    let (db, _clock) = manual_db();
    let mut expected = Vec::new();
    for index in 0..1_000 {
        let value = format!("old{index}");
        db.put(chunk_key(index), &value).expect("put");
        expected.push((chunk_key(index), value.into_bytes()));
    }
    let mut rng = SplitMix64::new(7);
    let mut scan = db.scan_prefix("k").expect("scan of an open database");
    let mut seen_front = Vec::new();
    let mut seen_back = Vec::new();
    let mut step = 0usize;
    loop {
        // Between every few steps, rewrite, delete and insert keys all over the range.
        if step.is_multiple_of(5) {
            let target = rng.below(1_000);
            match rng.below(3) {
                0 => {
                    db.put(chunk_key(target), "new").expect("put");
                }
                1 => {
                    db.delete(chunk_key(target)).expect("delete");
                }
                _ => {
                    db.put(format!("k{target:05}x"), "inserted").expect("put");
                }
            }
            if step.is_multiple_of(200) {
                db.run_maintenance();
            }
        }
        step += 1;
        let item = if rng.below(3) == 0 {
            scan.next_back().map(|item| (false, item))
        } else {
            scan.next().map(|item| (true, item))
        };
        let Some((forward, (key, value))) = item else {
            break;
        };
        if forward {
            seen_front.push((key.to_vec(), value.to_vec()));
        } else {
            seen_back.push((key.to_vec(), value.to_vec()));
        }
    }
    seen_back.reverse();
    seen_front.extend(seen_back);
    assert_eq!(
        seen_front, expected,
        "the scan saw commits made after it began"
    );
    drop(scan);
    // The current state did change.
    assert_ne!(
        pairs(db.scan_prefix("k").expect("scan of an open database")),
        expected
    );
}

#[test]
fn rewriting_deadlines_keeps_the_reaper_heap_bounded() {
    let (db, clock) = manual_db();
    for round in 0..10_000u64 {
        db.put_with_ttl("hot", "v", Duration::from_millis(60_000 + round))
            .expect("put with ttl");
    }
    db.put_with_ttl("other", "v", Duration::from_millis(10))
        .expect("put with ttl");
    let before = db.stats();
    assert_eq!(before.keys_with_ttl, 2);
    assert_eq!(
        before.deadlines_tracked, 10_001,
        "one pair per new deadline"
    );

    db.run_maintenance();
    let after = db.stats();
    assert_eq!(after.keys_with_ttl, 2);
    assert_eq!(after.deadlines_tracked, 2, "stale pairs are dropped");

    // The live pairs still expire their keys.
    clock.advance_millis(70_000);
    let report = db.run_maintenance();
    assert_eq!(report.expired_reclaimed, 2);
    let last = db.stats();
    assert_eq!(
        (
            last.keys_indexed,
            last.keys_with_ttl,
            last.deadlines_tracked
        ),
        (0, 0, 0)
    );
}

#[test]
fn history_held_by_a_snapshot_is_not_reread_until_a_reader_is_released() {
    let (db, _clock) = manual_db();
    let keys: Vec<String> = (0..1_000).map(|index| format!("k{index:04}")).collect();
    for key in &keys {
        db.put(key, "old").expect("put");
    }
    let snapshot = db.snapshot();
    for key in &keys {
        db.put(key, "new").expect("put");
    }
    let first = db.run_maintenance();
    assert_eq!(first.chains_examined, 1_000);
    assert_eq!(
        first.versions_pruned, 0,
        "the snapshot needs every old value"
    );
    assert_eq!(db.stats().prune_queue, 1_000);

    // Nothing was released: the deferred chains cannot have become prunable.
    let second = db.run_maintenance();
    assert_eq!(second.chains_examined, 0);

    // Another reader's release is enough to look again, even if nothing can go yet.
    drop(db.snapshot());
    let third = db.run_maintenance();
    assert_eq!((third.chains_examined, third.versions_pruned), (1_000, 0));

    assert_eq!(snapshot.get("k0999").as_deref(), Some(&b"old"[..]));
    drop(snapshot);
    let fourth = db.run_maintenance();
    assert_eq!(
        (fourth.chains_examined, fourth.versions_pruned),
        (1_000, 1_000)
    );
    let stats = db.stats();
    assert_eq!((stats.versions_retained, stats.prune_queue), (1_000, 0));
}

//! TTL behaviour, one property per test: an expired key is invisible at once and reclaimed by
//! maintenance; `ttl`, `expire` and `persist` report and change the deadline; sub-second TTLs
//! round up to whole milliseconds; TTLs in batches, transactions and snapshots; rewriting a
//! deadline keeps the reaper's heap bounded. Every test runs on a `ManualClock`, so nothing
//! here depends on timing.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::time::Duration;

use cairn::{Ttl, Version, WriteBatch};
use common::in_memory::{bytes, manual_db, pairs};

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

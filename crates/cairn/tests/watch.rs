//! `watch_prefix`, one property per test: a watcher sees matching keys only, in commit order;
//! the events of one commit share its version; a full queue folds into a lag marker and never
//! blocks the writer; a watcher on another thread sees every commit in order and ends on
//! close; expiry is not a watch event.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::time::Duration;

use cairn::{Options, Version, WatchEvent, WriteBatch};
use common::in_memory::{delete_event, drain, manual_db, manual_db_with, put_event};

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

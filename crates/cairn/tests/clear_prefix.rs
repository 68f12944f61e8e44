//! `clear_prefix`: one atomic commit (one version, one watch batch), correct for prefixes of
//! 0xff bytes, and seen all or nothing by concurrent readers.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;
use std::sync::Barrier;
use std::time::Duration;

use cairn::{WatchEvent, WriteBatch};
use common::in_memory::{drain, manual_db, pairs};

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

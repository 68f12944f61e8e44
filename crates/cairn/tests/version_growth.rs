//! Bounded version growth: without snapshots history stays bounded; a snapshot keeps the
//! history it needs and releases it when dropped; deleting a deleted key leaves nothing; history
//! held by a snapshot is not re-read by maintenance until some reader is released.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use cairn::WriteBatch;
use common::in_memory::{bytes, manual_db, pairs};

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

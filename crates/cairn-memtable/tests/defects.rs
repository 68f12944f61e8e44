//! One test per defect of the earlier write-behind cache this crate replaces, each named
//! after the defect it rules out, plus the unique-index and backpressure rules.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_memtable::{Backpressure, Error, Health, MemoryPersister, WalOptions, WalSync};
use cairn_testkit::TempDir;
use common::{ids, item, open, split_store, test_options, Item};

fn record_key(id: u64) -> Vec<u8> {
    [&[b'r'][..], &id.to_be_bytes()].concat()
}

/// Defect: tombstones were never flushed, so deletes were lost.
#[test]
fn tombstones_are_flushed() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    repo.insert(item(1, "a", 1)).expect("insert");
    repo.insert(item(2, "b", 1)).expect("insert");
    repo.flush().expect("flush");
    assert!(store.contents().contains_key(&record_key(1)));
    assert!(repo.delete(&1).expect("delete").is_some());
    repo.close().expect("close");
    let contents = store.contents();
    assert!(
        !contents.contains_key(&record_key(1)),
        "the delete reached the store"
    );
    let (records, entries) = split_store(&contents);
    assert_eq!(records.keys().copied().collect::<Vec<_>>(), vec![2]);
    common::assert_index_entries(&entries, &records, "store");
    let cold = open(&store, test_options());
    assert_eq!(cold.get(&1).expect("get"), None);
    assert_eq!(
        ids(&cold.by_index("team", 1_u32).expect("by_index")),
        vec![2]
    );
}

/// Defect: a delete did not shadow the older layer, so deleted values came back.
#[test]
fn delete_shadows_older_layers() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    // One copy in the store, one in an immutable layer that cannot flush, then deletes.
    repo.insert(item(1, "a", 1)).expect("insert");
    repo.insert(item(2, "b", 1)).expect("insert");
    repo.flush().expect("flush");
    store.set_failing(true);
    repo.insert(item(3, "c", 1)).expect("insert");
    assert!(repo.rotate().expect("rotate"));
    repo.delete(&1).expect("delete from the store's layer");
    repo.delete(&3).expect("delete from the immutable layer");
    for id in [1, 3] {
        assert_eq!(repo.get(&id).expect("get"), None, "{id} stays deleted");
    }
    assert_eq!(
        ids(&repo.by_index("team", 1_u32).expect("by_index")),
        vec![2]
    );
    assert!(repo.by_index("email", "a").expect("by_index").is_empty());
    assert!(repo.by_index("email", "c").expect("by_index").is_empty());
    assert_eq!(ids(&repo.scan(None, 10).expect("scan")), vec![2]);
    assert_eq!(
        repo.get_many(&[1, 2, 3]).expect("get_many")[1]
            .as_ref()
            .map(|r| r.id),
        Some(2)
    );
    // The deleted emails are free again.
    repo.insert(item(4, "a", 2))
        .expect("the email of a deleted record is free");
    store.set_failing(false);
    repo.close().expect("close");
    let (records, _) = split_store(&store.contents());
    assert_eq!(records.keys().copied().collect::<Vec<_>>(), vec![2, 4]);
}

/// Defect: a secondary index mapped each value to one primary key, so records sharing a
/// non-unique value overwrote each other.
#[test]
fn non_unique_index_keeps_every_record() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    for id in 0..5 {
        repo.insert(item(id, &format!("e{id}"), 7)).expect("insert");
    }
    assert_eq!(
        ids(&repo.by_index("team", 7_u32).expect("memory")),
        vec![0, 1, 2, 3, 4]
    );
    repo.flush().expect("flush");
    for id in 5..8 {
        repo.insert(item(id, &format!("e{id}"), 7)).expect("insert");
    }
    repo.update(&1, |old| Item {
        team: 8,
        ..old.clone()
    })
    .expect("update");
    assert_eq!(
        ids(&repo.by_index("team", 7_u32).expect("store and memory")),
        vec![0, 2, 3, 4, 5, 6, 7]
    );
    repo.close().expect("close");
    let cold = open(&store, test_options());
    assert_eq!(
        ids(&cold.by_index("team", 7_u32).expect("cold")),
        vec![0, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(ids(&cold.by_index("team", 8_u32).expect("cold")), vec![1]);
}

/// Defect: one immutable slot, so a second rotation hid the first batch from reads.
#[test]
fn second_rotation_keeps_first_batch_readable() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    store.set_failing(true);
    repo.insert(item(1, "a", 1)).expect("insert");
    assert!(repo.rotate().expect("first rotation"));
    repo.insert(item(2, "b", 1)).expect("insert");
    assert!(repo.rotate().expect("second rotation"));
    repo.insert(item(3, "c", 1)).expect("insert");
    assert_eq!(repo.stats().immutable.len(), 2, "both batches wait");
    for id in 1..=3 {
        assert_eq!(repo.get(&id).expect("get").map(|r| r.id), Some(id));
    }
    assert_eq!(
        ids(&repo.by_index("team", 1_u32).expect("by_index")),
        vec![1, 2, 3]
    );
    assert_eq!(
        ids(&repo.by_index("email", "a").expect("by_index")),
        vec![1]
    );
    store.set_failing(false);
    repo.close().expect("close");
    let (records, _) = split_store(&store.contents());
    assert_eq!(records.len(), 3);
}

/// Defect: rotation cloned the whole table twice, and the writer that crossed the threshold
/// waited for the entire flush.
#[test]
fn rotation_clones_nothing_and_writer_does_not_wait_for_flush() {
    let store = Arc::new(MemoryPersister::new());
    let mut options = test_options();
    options.rotate_bytes = 4_096;
    let repo = open(&store, options);
    store.set_delay(Duration::from_millis(1_500));
    repo.insert(item(0, "e0", 1)).expect("insert");
    let before = repo.get(&0).expect("get").expect("present");
    let mut slowest = Duration::ZERO;
    let mut id = 1;
    // Write until a rotation happened (at most 1,000 writes: about 25 rotations' worth).
    while repo.stats().immutable.is_empty() && repo.stats().flushed_layers == 0 && id < 1_000 {
        let started = Instant::now();
        repo.insert(item(id, &format!("e{id}"), 1)).expect("insert");
        slowest = slowest.max(started.elapsed());
        id += 1;
    }
    assert_eq!(
        repo.stats().immutable.len(),
        1,
        "the writer rotated, the flush still runs"
    );
    // The writer that crossed the threshold rotated and returned while the flush sleeps.
    assert!(
        slowest < Duration::from_millis(500),
        "a write took {slowest:?} while a 1.5 s flush ran"
    );
    let after = repo.get(&0).expect("get").expect("present");
    assert!(
        Arc::ptr_eq(&before, &after),
        "rotation moved the record, it did not copy it"
    );
    store.set_delay(Duration::ZERO);
    repo.close().expect("close");
}

/// Defect: flush errors were logged and the data dropped.
#[test]
fn flush_errors_are_retried_and_nothing_is_dropped() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    store.fail_next(5);
    for id in 0..20 {
        repo.insert(item(id, &format!("e{id}"), 1)).expect("insert");
    }
    repo.rotate().expect("rotate");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.failed() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        repo.get(&3).expect("readable while failing").map(|r| r.id),
        Some(3)
    );
    repo.flush()
        .expect("the flush succeeds once the store recovers");
    assert!(repo.stats().flush_retries >= 5);
    assert_eq!(repo.health(), Health::Healthy);
    // Persistent failure: reported, data kept, and writers get backpressure, not loss.
    store.set_failing(true);
    repo.insert(item(100, "x", 2)).expect("insert");
    repo.rotate().expect("rotate");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(repo.health(), Health::Retrying { .. }) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        matches!(repo.health(), Health::Retrying { ref last_error, .. } if last_error.contains("injected"))
    );
    store.set_failing(false);
    repo.close().expect("close");
    let (records, entries) = split_store(&store.contents());
    assert_eq!(records.len(), 21, "every record reached the store");
    common::assert_index_entries(&entries, &records, "store");
}

/// Defect: a crash lost everything buffered. With the write-ahead log on, a repository
/// dropped without `close` (its memtables lost) gets every acknowledged write back on open.
/// The kill -9 version is `crash_kill9.rs`.
#[test]
fn crash_loses_nothing_buffered_with_the_wal() {
    for sync in [WalSync::Strict, WalSync::Buffered] {
        let dir = TempDir::new("memtable-wal");
        let store = Arc::new(MemoryPersister::new());
        let mut options = test_options();
        options.rotate_bytes = 4_096;
        options.immutable_max = 64;
        options.wal = Some(WalOptions {
            segment_bytes: 4_096,
            ..WalOptions::new(dir.path().join("wal"), sync)
        });
        {
            let repo = open(&store, options.clone());
            for id in 0..200 {
                repo.insert(item(id, &format!("e{id}"), 1)).expect("insert");
            }
            repo.flush().expect("flush");
            store.set_failing(true);
            for id in 200..300 {
                repo.insert(item(id, &format!("e{id}"), 2)).expect("insert");
            }
            for id in 0..50 {
                repo.delete(&id).expect("delete");
            }
            repo.update(&60, |old| Item {
                email: "moved".into(),
                ..old.clone()
            })
            .expect("update");
            // Buffered: what is acknowledged reaches the disk within the flush interval.
            std::thread::sleep(Duration::from_millis(100));
            // Dropped, not closed: the memtables are lost, as in a crash.
        }
        store.set_failing(false);
        let repo = open(&store, options);
        assert!(repo.stats().wal_replayed > 0);
        for id in 0..300 {
            let expected = id >= 50;
            assert_eq!(
                repo.get(&id).expect("get").is_some(),
                expected,
                "{sync:?} {id}"
            );
        }
        assert_eq!(
            ids(&repo.by_index("email", "moved").expect("by_index")),
            vec![60]
        );
        assert_eq!(repo.by_index("team", 2_u32).expect("by_index").len(), 100);
        repo.close().expect("close");
        let (records, entries) = split_store(&store.contents());
        assert_eq!(records.len(), 250);
        common::assert_index_entries(&entries, &records, "store");
    }
}

#[test]
fn unique_violation_writes_nothing() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    repo.insert(item(1, "a", 1)).expect("insert");
    repo.flush().expect("flush");
    repo.insert(item(2, "b", 1)).expect("insert");
    for (id, email) in [(3, "a"), (3, "b")] {
        match repo.insert(item(id, email, 9)) {
            Err(Error::UniqueViolation { index: "email", .. }) => {}
            other => panic!("expected a unique violation, got {other:?}"),
        }
    }
    assert!(matches!(
        repo.upsert(item(2, "a", 1)),
        Err(Error::UniqueViolation { .. })
    ));
    assert!(matches!(
        repo.update(&2, |old| Item {
            email: "a".into(),
            ..old.clone()
        }),
        Err(Error::UniqueViolation { .. })
    ));
    assert_eq!(repo.get(&3).expect("get"), None);
    assert!(repo.by_index("team", 9_u32).expect("by_index").is_empty());
    assert_eq!(
        repo.get(&2).expect("get").map(|r| r.email.clone()),
        Some("b".into())
    );
    repo.close().expect("close");
    let (records, _) = split_store(&store.contents());
    assert_eq!(records.len(), 2);
}

#[test]
fn upsert_changing_indexed_fields_leaves_no_stale_entry() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    repo.insert(item(1, "old", 1)).expect("insert");
    repo.flush().expect("flush");
    repo.upsert(Item {
        email: "mid".into(),
        team: 2,
        ..item(1, "", 0)
    })
    .expect("upsert");
    repo.rotate().expect("rotate");
    repo.upsert(Item {
        email: "new".into(),
        team: 3,
        ..item(1, "", 0)
    })
    .expect("upsert");
    for (email, team) in [("old", 1_u32), ("mid", 2)] {
        assert!(
            repo.by_index("email", email).expect("by_index").is_empty(),
            "{email}"
        );
        assert!(
            repo.by_index("team", team).expect("by_index").is_empty(),
            "{team}"
        );
    }
    assert_eq!(
        ids(&repo.by_index("email", "new").expect("by_index")),
        vec![1]
    );
    // The old values are free for other records.
    repo.insert(item(2, "old", 1)).expect("insert");
    repo.close().expect("close");
    let (records, entries) = split_store(&store.contents());
    common::assert_index_entries(&entries, &records, "store");
}

/// A unique value moving from one record to another, in one layer and across layers: the
/// old entry's delete never lands after the new entry's insert.
#[test]
fn unique_value_moves_between_records() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    repo.insert(item(1, "v", 1)).expect("insert");
    repo.insert(item(2, "w", 1)).expect("insert");
    repo.flush().expect("flush");
    // In one layer: 1 gives up v, 2 takes it.
    repo.update(&1, |old| Item {
        email: "x".into(),
        ..old.clone()
    })
    .expect("update");
    repo.update(&2, |old| Item {
        email: "v".into(),
        ..old.clone()
    })
    .expect("update");
    repo.flush().expect("flush");
    let (records, entries) = split_store(&store.contents());
    common::assert_index_entries(&entries, &records, "store");
    // Across layers: 2 gives up v in one layer, 1 takes it in the next.
    repo.update(&2, |old| Item {
        email: "y".into(),
        ..old.clone()
    })
    .expect("update");
    repo.rotate().expect("rotate");
    repo.update(&1, |old| Item {
        email: "v".into(),
        ..old.clone()
    })
    .expect("update");
    repo.close().expect("close");
    let (records, entries) = split_store(&store.contents());
    assert_eq!(records[&1].email, "v");
    common::assert_index_entries(&entries, &records, "store");
    let cold = open(&store, test_options());
    assert_eq!(
        ids(&cold.by_index("email", "v").expect("by_index")),
        vec![1]
    );
}

#[test]
fn full_queue_blocks_then_fails_and_the_stall_is_counted() {
    let store = Arc::new(MemoryPersister::new());
    let mut options = test_options();
    options.rotate_bytes = 1;
    options.immutable_max = 1;
    options.backpressure = Backpressure::Block(Duration::from_millis(50));
    let repo = open(&store, options.clone());
    store.set_failing(true);
    repo.insert(item(1, "a", 1))
        .expect("the first write rotates into the empty queue");
    repo.insert(item(2, "b", 1))
        .expect("the second fills the active memtable");
    let started = Instant::now();
    match repo.insert(item(3, "c", 1)) {
        Err(Error::Backpressure { pending: 1, .. }) => {}
        other => panic!("expected backpressure, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(50));
    let stats = repo.stats();
    assert!(stats.stall_time >= Duration::from_millis(50));
    assert_eq!(stats.backpressure_rejections, 1);
    assert_eq!(
        repo.get(&3).expect("get"),
        None,
        "a refused write wrote nothing"
    );
    store.set_failing(false);
    repo.insert(item(3, "c", 1))
        .expect("room again once the store recovers");
    repo.close().expect("close");

    let store = Arc::new(MemoryPersister::new());
    options.backpressure = Backpressure::FailFast;
    let repo = open(&store, options);
    store.set_failing(true);
    repo.insert(item(1, "a", 1)).expect("insert");
    repo.insert(item(2, "b", 1)).expect("insert");
    let started = Instant::now();
    assert!(matches!(
        repo.insert(item(3, "c", 1)),
        Err(Error::Backpressure { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(40));
    store.set_failing(false);
    repo.close().expect("close");
}

#[test]
fn read_through_populates_a_bounded_cache() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    for id in 0..50 {
        repo.insert(item(id, &format!("e{id}"), 1)).expect("insert");
    }
    repo.close().expect("close");
    let mut options = test_options();
    options.cache_entries = 10;
    let cold = open(&store, options);
    for id in 0..50 {
        assert!(cold.get(&id).expect("get").is_some());
    }
    assert!(cold.get(&3).expect("get").is_some());
    let stats = cold.stats();
    assert!(stats.cache_entries <= 10, "the cache respects its capacity");
    assert_eq!(stats.store_reads, 51);
    // A write then a flush invalidates the cached copy.
    cold.get(&49).expect("get");
    cold.update(&49, |old| Item {
        team: 5,
        ..old.clone()
    })
    .expect("update");
    cold.flush().expect("flush");
    assert_eq!(cold.get(&49).expect("get").map(|r| r.team), Some(5));
    assert!(cold.stats().hit_rate() < 1.0);
    cold.close().expect("close");
}

#[test]
fn closed_repository_refuses_writes() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    repo.insert(item(1, "a", 1)).expect("insert");
    repo.close().expect("close");
    assert!(matches!(repo.insert(item(2, "b", 1)), Err(Error::Closed)));
    assert_eq!(repo.health(), Health::Closed);
    assert_eq!(
        repo.get(&1).expect("reads still work").map(|r| r.id),
        Some(1)
    );
}

#[test]
fn inverted_and_empty_ranges_are_empty_not_a_panic() {
    use cairn_memtable::IndexValue;
    use std::ops::Bound::{Excluded, Included};
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    for id in 0..10 {
        repo.insert(item(id, &format!("e{id}"), 1)).expect("insert");
    }
    repo.rotate().expect("rotate");
    let (five, two) = (IndexValue::from(5_i64 - 50), IndexValue::from(2_i64 - 50));
    for range in [
        (Excluded(five.clone()), Excluded(five.clone())),
        (Included(five.clone()), Excluded(two.clone())),
        (Excluded(five.clone()), Included(two.clone())),
    ] {
        assert!(repo
            .range_by_index("score", range)
            .expect("range")
            .is_empty());
    }
    let one = repo
        .range_by_index("score", (Included(five.clone()), Included(five)))
        .expect("range");
    assert_eq!(ids(&one), vec![5]);
    assert!(matches!(
        repo.range_by_index("team", ..),
        Err(Error::NoSuchIndex { .. })
    ));
    repo.close().expect("close");
}

#[test]
fn by_unique_refuses_an_index_that_is_not_unique() {
    let store = Arc::new(MemoryPersister::new());
    let repo = open(&store, test_options());
    for (name, wanted) in [
        ("team", "unique"),
        ("score", "unique"),
        ("missing", "unique"),
    ] {
        match repo.by_unique(name, 1_u32) {
            Err(Error::NoSuchIndex { index, wanted: got }) => {
                assert_eq!((index.as_str(), got), (name, wanted));
            }
            other => panic!("by_unique on {name}: {other:?}"),
        }
    }
}

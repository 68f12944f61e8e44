//! Reads that must see one version: `multi_get` while writers commit, reverse scans mirroring
//! forward ones, and scans across the 128-entry chunk boundaries of the index over ranges full
//! of tombstones and expired keys, with `next` and `next_back` meeting in the middle, and while
//! commits land between chunks. Every expected result is computed independently (by counting,
//! or from a `BTreeMap`).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Isolation, ManualClock, Scan, WriteBatch};
use cairn_testkit::SplitMix64;
use common::in_memory::{manual_db, pairs, Pairs};

/// Borrowed range bounds.
type SliceBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

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

/// What `Scan::for_each_while` visits: the first `skip` pairs through the iterator, the rest
/// through the visitor, stopping after `stop` pairs in all.
fn visited(mut scan: Scan, skip: usize, stop: usize) -> Pairs {
    let mut seen: Pairs = scan
        .by_ref()
        .take(skip.min(stop))
        .map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect();
    if seen.len() < stop {
        scan.for_each_while(|key, value| {
            seen.push((key.to_vec(), value.to_vec()));
            seen.len() < stop
        });
    }
    seen
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
        for (skip, stop) in [
            (0, usize::MAX),
            (1, usize::MAX),
            (130, usize::MAX),
            (0, 129),
            (5, 300),
        ] {
            let want: Pairs = expected.iter().take(stop).cloned().collect();
            assert_eq!(
                visited(db.scan_prefix("k").expect("scan"), skip, stop),
                want,
                "visited after {skip} iterated, stopping at {stop}, {live} live"
            );
        }
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

    // A visit reads its version too, while commits land between (and during) its chunks.
    let expected: Pairs = pairs(db.scan_prefix("k").expect("scan"));
    let visit = db.scan_prefix("k").expect("scan");
    let mut seen = Vec::new();
    visit.for_each_while(|key, value| {
        seen.push((key.to_vec(), value.to_vec()));
        let target = rng.below(1_000);
        db.put(chunk_key(target), "newer").expect("put");
        db.delete(chunk_key(rng.below(1_000))).expect("delete");
        true
    });
    assert_eq!(seen, expected, "the visit saw commits made after it began");
    drop(scan);
    // The current state did change.
    assert_ne!(
        pairs(db.scan_prefix("k").expect("scan of an open database")),
        expected
    );
}

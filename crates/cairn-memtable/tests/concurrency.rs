//! Concurrency: 16 threads insert, read and `update` shared counters while small memtables
//! rotate and a slowed flusher runs. No update is lost, every insert is readable at once and
//! after `close()` the store holds exactly what the threads wrote.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use cairn_memtable::MemoryPersister;
use common::{item, open, split_store, test_options, Item};

const THREADS: u64 = 16;
const ROUNDS: u64 = 300;
const COUNTERS: u64 = 4;

#[test]
fn sixteen_threads_lose_no_update() {
    let store = Arc::new(MemoryPersister::new());
    let mut options = test_options();
    options.rotate_bytes = 8_192;
    options.rotate_after = Some(Duration::from_millis(3));
    options.immutable_max = 3;
    options.backpressure = cairn_memtable::Backpressure::Block(Duration::from_secs(30));
    let repo = Arc::new(open(&store, options));
    store.set_delay(Duration::from_micros(300));
    for counter in 0..COUNTERS {
        repo.insert(Item {
            score: 0,
            ..item(1_000_000 + counter, "", 0)
        })
        .expect("insert a counter");
    }
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let repo = Arc::clone(&repo);
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let id = thread * 10_000 + round;
                    repo.insert(item(
                        id,
                        &format!("t{thread}r{round}"),
                        u32::try_from(thread + 1).expect("small"),
                    ))
                    .expect("insert");
                    assert_eq!(repo.get(&id).expect("get").map(|r| r.id), Some(id));
                    let counter = 1_000_000 + (thread + round) % COUNTERS;
                    repo.update(&counter, |old| Item {
                        score: old.score + 1,
                        ..old.clone()
                    })
                    .expect("update");
                    if round % 50 == 0 {
                        let mine = repo
                            .by_index("team", u32::try_from(thread + 1).expect("small"))
                            .expect("by_index");
                        assert_eq!(mine.len(), usize::try_from(round + 1).expect("small"));
                    }
                }
            });
        }
    });
    let total: i64 = (0..COUNTERS)
        .map(|counter| {
            repo.get(&(1_000_000 + counter))
                .expect("get")
                .expect("present")
                .score
        })
        .sum();
    assert_eq!(
        total,
        i64::try_from(THREADS * ROUNDS).expect("small"),
        "no lost update"
    );
    assert!(
        repo.stats().flushed_layers > 1,
        "rotations and flushes ran during the test"
    );
    store.set_delay(Duration::ZERO);
    repo.close().expect("close");
    let (records, entries) = split_store(&store.contents());
    assert_eq!(
        records.len(),
        usize::try_from(THREADS * ROUNDS + COUNTERS).expect("small")
    );
    let stored_total: i64 = records
        .values()
        .filter(|r| r.id >= 1_000_000)
        .map(|r| r.score)
        .sum();
    assert_eq!(
        stored_total,
        i64::try_from(THREADS * ROUNDS).expect("small")
    );
    common::assert_index_entries(&entries, &records, "store");
}

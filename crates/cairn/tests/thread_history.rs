//! A write's cost must not grow with the number of threads the process has ever run.
//!
//! Each key's chain pointer used to be an `ArcSwap`, whose every store paid the outstanding
//! debts of every thread that had ever loaded from one: after a few hundred short-lived reader
//! threads, a put cost several times what it did before. This compares the median put time
//! before and after 256 reader threads (each doing one read while all are alive, then exiting),
//! with a bound loose enough for a busy two-core machine.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cairn::{Db, Options};

const KEYS: u64 = 50_000;
const PUTS_PER_ROUND: u32 = 20_000;
const ROUNDS: usize = 7;
const READER_THREADS: usize = 256;
/// After / before, median of the rounds. The old slot was far above this.
const SLOWDOWN_MAX: f64 = 4.0;

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Median nanoseconds per random overwrite over `ROUNDS` rounds.
fn median_put_nanos(db: &Db, seed: &mut u64) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..PUTS_PER_ROUND {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                db.put(key(*seed % KEYS), b"value-0123456789").expect("put");
            }
            started.elapsed().as_secs_f64() * 1e9 / f64::from(PUTS_PER_ROUND)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

#[test]
fn puts_do_not_slow_down_after_many_short_lived_reader_threads() {
    let db = Db::open(Options::in_memory().maintenance_interval(Duration::from_millis(50)))
        .expect("open");
    for index in 0..KEYS {
        db.put(key(index), b"value-0123456789").expect("load");
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let before = median_put_nanos(&db, &mut seed);

    let barrier = Arc::new(Barrier::new(READER_THREADS));
    let readers: Vec<_> = (0..READER_THREADS)
        .map(|_| {
            let db = db.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                // Every thread reads while all the others are alive, then they all exit.
                barrier.wait();
                let found = db.get(key(7)).expect("get").is_some();
                barrier.wait();
                found
            })
        })
        .collect();
    for reader in readers {
        assert!(reader.join().expect("reader thread"));
    }

    let after = median_put_nanos(&db, &mut seed);
    eprintln!("puts: {before:.0} ns before, {after:.0} ns after");
    assert!(
        after < before * SLOWDOWN_MAX,
        "a put took {before:.0} ns before {READER_THREADS} reader threads and {after:.0} ns after"
    );
}

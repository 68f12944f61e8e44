//! `CairnStore` specifics the shared conformance suite cannot see: which writes leave the
//! async worker.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_kv::{CairnStore, KeyValueStore, Scope};

/// Counts how often another task ran while `work` was awaited, on a one-thread runtime: zero
/// means `work` held the only worker for its whole duration.
fn ticks_during<F>(work: impl FnOnce() -> F) -> u64
where
    F: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        // Let the ticker start, then measure only what happens while `work` runs.
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::Relaxed);
        work().await;
        let during = ticks.load(Ordering::Relaxed) - before;
        ticker.abort();
        during
    })
}

#[test]
fn large_writes_run_off_the_async_worker() {
    let store = Arc::new(CairnStore::in_memory());
    let scope = Scope::new("tenant", "app").expect("scope");
    let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..10_000_u32)
        .map(|n| (format!("k{n:06}").into_bytes(), b"value".to_vec()))
        .collect();
    let pairs: Vec<(&[u8], &[u8])> = entries
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_slice()))
        .collect();

    let ticks = ticks_during(|| async {
        store.multi_put(&scope, &pairs).await.expect("multi_put");
    });
    assert!(ticks > 0, "multi_put held the async worker");

    let ticks = ticks_during(|| async {
        let cleared = store
            .clear_prefix(&scope, b"k")
            .await
            .expect("clear_prefix");
        assert_eq!(cleared, 10_000);
    });
    assert!(ticks > 0, "clear_prefix held the async worker");
}

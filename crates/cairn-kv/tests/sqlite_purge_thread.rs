//! Layer 1 (focused): dropping or closing a `SqliteStore` stops its purge thread at once,
//! however long the purge interval. Alone in its test binary, because it counts the
//! process's threads by name (Linux only).

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![cfg(all(feature = "sqlite", target_os = "linux"))]

use std::time::{Duration, Instant};

use cairn_kv::backends::sqlite::SqliteOptions;
use cairn_kv::{KvResult, SqliteStore};

/// Threads of this process named like the purge thread.
fn purge_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("list this process's threads");
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "kv-sqlite-purge")
        .count()
}

/// Waits (briefly) for the purge thread count to reach `expected`: a new thread names
/// itself once it runs, so the count may lag its start by a moment.
fn wait_for_purge_threads(expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = purge_threads();
        if count == expected || Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_close_stop_the_purge_thread() -> KvResult<()> {
    let hour = Duration::from_secs(3_600);
    assert_eq!(purge_threads(), 0);
    let dropped = SqliteStore::open_with(SqliteOptions::in_memory().purge_interval(hour)).await?;
    let closed = SqliteStore::open_with(SqliteOptions::in_memory().purge_interval(hour)).await?;
    assert_eq!(wait_for_purge_threads(2), 2);

    let started = Instant::now();
    drop(dropped);
    assert_eq!(purge_threads(), 1, "drop joined the thread");
    closed.close().await?;
    assert_eq!(purge_threads(), 0, "close joined the thread");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "stopping waited for the purge interval"
    );
    Ok(())
}

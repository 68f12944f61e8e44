//! Many databases in one process share one bounded maintenance and flush service: opening
//! hundreds of in-memory and `Buffered` databases must not start a thread or two per handle.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::PathBuf;
use std::time::Duration;

use cairn::{Db, Durability, Options};

/// The process's thread count, from `/proc/self/status` (Linux only).
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
}

/// Directories under the system temp dir, removed when dropped.
struct TempDirs(Vec<PathBuf>);

impl Drop for TempDirs {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn two_hundred_in_memory_and_fifty_buffered_databases_share_a_bounded_set_of_threads() {
    let Some(before) = threads() else {
        eprintln!("skipped: no /proc/self/status on this system");
        return;
    };
    let mut databases = Vec::new();
    for _ in 0..200 {
        let db = Db::open(Options::in_memory().maintenance_interval(Duration::from_millis(5)))
            .expect("open in memory");
        db.put("k", "v").expect("put");
        databases.push(db);
    }
    let mut dirs = TempDirs(Vec::new());
    for index in 0..50 {
        let dir = std::env::temp_dir().join(format!(
            "cairn-threads-{}-{index}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos())
        ));
        dirs.0.push(dir.clone());
        let db =
            Db::open(Options::new(&dir).durability(Durability::buffered())).expect("open buffered");
        db.put("k", "v").expect("put");
        databases.push(db);
    }
    // Let every periodic tick (maintenance and flush) run at least once.
    std::thread::sleep(Duration::from_millis(100));
    let during = threads().expect("thread count");
    let bound = before + cairn::limits::MAINTENANCE_WORKERS_MAX + 4;
    assert!(
        during <= bound,
        "{during} threads with 250 databases open ({before} before; bound {bound})"
    );
    // The background flush still runs: a Buffered commit is written and synced without a
    // sync call, within a few flush intervals.
    let buffered = databases.last().expect("a buffered database").clone();
    drop(databases);
    let syncs_before = buffered.stats().wal_syncs;
    buffered.put("later", "flushed").expect("put");
    let started = std::time::Instant::now();
    while buffered.stats().wal_syncs == syncs_before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no background flush"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    buffered.close().expect("close");
}

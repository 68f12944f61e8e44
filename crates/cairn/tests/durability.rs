//! Durable databases on the real file system: what each durability mode promises across a
//! reopen, checkpoints and the recovery report, the directory lock, TTL deadlines and the
//! version counter surviving restarts, and option validation. The crash and fault matrix is
//! in the `crash_*` files; this file covers the ordinary paths.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability, Error, Expected, ManualClock, Options, Ttl, WriteBatch};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "cairn-durability-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn quiet(options: Options) -> Options {
    options.maintenance_interval(Duration::ZERO)
}

#[test]
fn strict_commits_survive_a_reopen_with_their_versions() {
    let dir = TempDir::new("strict");
    let versions = {
        let db = Db::open(quiet(Options::new(&dir.0))).expect("open");
        let first = db.put("a", "1").expect("put");
        let mut batch = WriteBatch::new();
        batch.put("b", "2");
        batch.put("c", "3");
        let second = db.write(&batch).expect("batch");
        assert!(db.delete("a").expect("delete"));
        db.close().expect("close");
        (first, second)
    };
    let db = Db::open(quiet(Options::new(&dir.0))).expect("reopen");
    assert_eq!(db.get("a").expect("get"), None);
    let (value, version) = db.get_versioned("b").expect("get").expect("b survives");
    assert_eq!(value.as_bytes(), b"2");
    assert_eq!(version, versions.1);
    assert_eq!(db.version().get(), 3);
    let report = db.recovery_report();
    assert_eq!(report.wal_records_replayed, 3);
    assert_eq!(report.last_version.get(), 3);
    // The version counter continues where it stopped, across restarts.
    assert_eq!(db.put("d", "4").expect("put").get(), 4);
    // CAS by a version written before the restart still works.
    assert!(db
        .compare_and_swap("b", Expected::Version(versions.1), Some(b"22"))
        .expect("cas")
        .is_swapped());
}

#[test]
fn buffered_commits_are_durable_after_sync_and_after_close() {
    let dir = TempDir::new("buffered");
    {
        let db = Db::open(quiet(
            Options::new(&dir.0).durability(Durability::buffered()),
        ))
        .expect("open");
        for index in 0..1_000 {
            db.put(format!("k{index:04}"), format!("v{index}"))
                .expect("put");
        }
        db.sync().expect("sync");
        assert!(db.stats().wal_syncs >= 1);
        db.put("last", "x").expect("put");
        db.close().expect("close flushes");
    }
    let db = Db::open(quiet(Options::new(&dir.0))).expect("reopen");
    assert_eq!(db.count_prefix("k").expect("count"), 1_000);
    assert_eq!(db.get("last").expect("get").as_deref(), Some(&b"x"[..]));
}

#[test]
fn checkpoint_then_more_writes_recover_from_snapshot_plus_wal() {
    let dir = TempDir::new("checkpoint");
    {
        let db = Db::open(quiet(Options::new(&dir.0).wal_segment_bytes(4_096))).expect("open");
        for index in 0..500 {
            db.put(format!("k{index:04}"), vec![b'x'; 100])
                .expect("put");
        }
        let report = db.checkpoint().expect("checkpoint");
        assert_eq!(report.entries, 500);
        assert_eq!(report.version.get(), 500);
        for index in 500..600 {
            db.put(format!("k{index:04}"), vec![b'y'; 100])
                .expect("put");
        }
        db.delete("k0000").expect("delete");
        let second = db.checkpoint().expect("second checkpoint");
        assert_eq!(second.entries, 599);
        // The second checkpoint may drop the WAL the first snapshot covers.
        assert!(second.wal_segments_removed > 0, "{second:?}");
        db.put("after", "both").expect("put");
        assert_eq!(db.stats().checkpoints, 2);
    }
    let db = Db::open(quiet(Options::new(&dir.0))).expect("reopen");
    let report = db.recovery_report();
    let snapshot = report.snapshot.as_ref().expect("a snapshot was loaded");
    assert_eq!(snapshot.version.get(), 601);
    assert_eq!(snapshot.entries, 599);
    assert_eq!(report.wal_records_replayed, 1);
    assert_eq!(db.count_prefix("k").expect("count"), 599);
    assert_eq!(db.get("k0000").expect("get"), None);
    assert_eq!(db.get("after").expect("get").as_deref(), Some(&b"both"[..]));
    assert_eq!(db.version().get(), 602);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one() {
    let dir = TempDir::new("fallback");
    {
        let db = Db::open(quiet(Options::new(&dir.0).wal_segment_bytes(4_096))).expect("open");
        for index in 0..300 {
            db.put(format!("k{index:04}"), vec![b'x'; 50]).expect("put");
        }
        db.checkpoint().expect("first");
        for index in 300..400 {
            db.put(format!("k{index:04}"), vec![b'y'; 50]).expect("put");
        }
        db.checkpoint().expect("second");
        db.close().expect("close");
    }
    let newest = dir.0.join("snapshot-00000000000000000400.snap");
    let mut bytes = std::fs::read(&newest).expect("read newest snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&newest, bytes).expect("damage it");
    let db = Db::open(quiet(Options::new(&dir.0))).expect("reopen falls back");
    let report = db.recovery_report();
    assert_eq!(report.snapshots_rejected.len(), 1, "{report:?}");
    assert_eq!(report.snapshot.as_ref().map(|s| s.version.get()), Some(300));
    assert_eq!(report.wal_records_replayed, 100);
    assert_eq!(db.count_prefix("k").expect("count"), 400);
}

#[test]
fn ttl_deadlines_survive_a_restart_and_expired_keys_never_come_back() {
    let dir = TempDir::new("ttl");
    let clock = ManualClock::new(1_000_000);
    let options = || quiet(Options::new(&dir.0).clock(Arc::new(clock.clone())));
    {
        let db = Db::open(options()).expect("open");
        db.put_with_ttl("short", "s", Duration::from_millis(50))
            .expect("put");
        db.put_with_ttl("long", "l", Duration::from_secs(3_600))
            .expect("put");
        db.checkpoint().expect("checkpoint");
        db.put_with_ttl("after", "a", Duration::from_millis(50))
            .expect("put");
        db.close().expect("close");
    }
    clock.advance_millis(100);
    let db = Db::open(options()).expect("reopen");
    assert_eq!(db.get("short").expect("get"), None, "from the snapshot");
    assert_eq!(db.get("after").expect("get"), None, "from the WAL");
    assert!(
        matches!(db.ttl("long").expect("ttl"), Ttl::Expires(left) if left > Duration::from_secs(3_000))
    );
    let report = db.run_maintenance();
    assert_eq!(report.expired_reclaimed, 2);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = TempDir::new("lock");
    let first = Db::open(quiet(Options::new(&dir.0))).expect("open");
    let second = Db::open(quiet(Options::new(&dir.0)));
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    first.close().expect("close");
    drop(first);
    Db::open(quiet(Options::new(&dir.0))).expect("open after the first is dropped");
}

#[test]
fn strict_is_invisible_before_durable_and_group_commits_many_writers() {
    let dir = TempDir::new("group");
    let db = Db::open(quiet(Options::new(&dir.0))).expect("open");
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let db = db.clone();
            std::thread::spawn(move || {
                for index in 0..50 {
                    db.put(format!("w{writer:02}-{index:03}"), "v")
                        .expect("put");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let stats = db.stats();
    assert_eq!(stats.wal_frames, 800);
    assert!(
        stats.wal_syncs < 800,
        "no group commit: {} syncs for 800 commits",
        stats.wal_syncs
    );
    assert_eq!(db.count_prefix("w").expect("count"), 800);
}

#[test]
fn options_out_of_range_are_refused_with_a_message() {
    let dir = TempDir::new("options");
    for options in [
        Options::new(&dir.0).durability(Durability::InMemory),
        Options::in_memory().durability(Durability::Strict),
        Options::new(&dir.0).wal_segment_bytes(100),
        Options::new(&dir.0).checkpoint_wal_bytes(10),
        Options::new(&dir.0).durability(Durability::Buffered {
            flush_interval: Duration::ZERO,
            buffer_bytes_max: 1 << 20,
        }),
    ] {
        let error = Db::open(options).expect_err("refused");
        assert!(matches!(error, Error::InvalidArgument(_)), "{error}");
    }
}

#[test]
fn in_memory_databases_have_no_checkpoint_and_an_empty_report() {
    let db = Db::in_memory();
    assert!(matches!(db.checkpoint(), Err(Error::Unsupported(_))));
    assert_eq!(db.recovery_report().wal_records_replayed, 0);
    db.sync().expect("sync is a no-op");
}

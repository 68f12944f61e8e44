//! Crash and fault matrix, I/O errors: EIO on write, fsync, directory fsync and rename, once
//! and for good, and ENOSPC, injected at many points of the workload.
//!
//! Pass: nothing is acknowledged over a failed sync; after a WAL failure the handle is
//! poisoned (every later write fails with `Poisoned`, reads keep working); a failed commit is
//! absent or whole after reopening; and every acknowledged commit survives a power cut right
//! after the failure.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;

use cairn::{Db, Durability, Error};
use cairn_testkit::fault_fs::{CrashMode, FaultError, FaultFs, FaultRule, Op};
use common::{check_recovered, fault_options, run, workload};

/// Injects `rule`, runs the workload until it fails, then checks the handle and recovery.
fn check_fault(rule: FaultRule, label: &str) {
    let plan = workload(21, 160);
    let fs = Arc::new(FaultFs::new());
    fs.fail(rule);
    let Ok(db) = Db::open(fault_options(&fs, Durability::Strict)) else {
        return; // the fault hit while creating the database: nothing to acknowledge
    };
    let outcome = run(&db, &plan);
    if let Some(error) = &outcome.error {
        if error.contains("poisoned") || error.contains("I/O") || error.contains("Poisoned") {
            // After a WAL failure every write must keep failing; reads keep working.
            let poisoned = db.stats().wal_poisoned;
            if poisoned {
                let again = db.put("after-failure", "x");
                assert!(
                    matches!(again, Err(Error::Poisoned { .. })),
                    "{label}: a write after a WAL failure returned {again:?}"
                );
                let _ = db.get("a/00").expect("reads work on a poisoned handle");
            }
        }
    }
    drop(db);
    let image = fs.crash(CrashMode::POWER_LOSS);
    let recovered = Db::open(fault_options(&image, Durability::Strict))
        .unwrap_or_else(|error| panic!("{label}: recovery failed: {error}"));
    check_recovered(&recovered, &outcome, outcome.acknowledged)
        .unwrap_or_else(|error| panic!("{label}: {error}"));
}

#[test]
fn eio_once_and_forever_on_every_kind_of_call_never_loses_an_acknowledged_commit() {
    let mut cases = 0;
    for op in [
        Op::Write,
        Op::SyncData,
        Op::SyncDir,
        Op::Rename,
        Op::SetLen,
        Op::Remove,
    ] {
        for skip in [0_u64, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89] {
            for forever in [false, true] {
                let rule = if forever {
                    FaultRule::forever(op, FaultError::Eio)
                } else {
                    FaultRule::once(op, FaultError::Eio)
                }
                .with_skip(skip);
                check_fault(
                    rule,
                    &format!("EIO on {op:?} after {skip} (forever: {forever})"),
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 132);
}

#[test]
fn enospc_on_writes_and_a_full_device_never_lose_an_acknowledged_commit() {
    for skip in [0_u64, 1, 4, 16, 64] {
        check_fault(
            FaultRule::forever(Op::Write, FaultError::NoSpace).with_skip(skip),
            &format!("ENOSPC on writes after {skip}"),
        );
    }
    for limit in [10_000_u64, 30_000, 100_000] {
        let plan = workload(22, 160);
        let fs = Arc::new(FaultFs::new());
        fs.set_space_limit_bytes(Some(limit));
        let Ok(db) = Db::open(fault_options(&fs, Durability::Strict)) else {
            continue;
        };
        let outcome = run(&db, &plan);
        drop(db);
        let image = fs.crash(CrashMode::POWER_LOSS);
        image.set_space_limit_bytes(None);
        let recovered = Db::open(fault_options(&image, Durability::Strict))
            .unwrap_or_else(|error| panic!("space limit {limit}: recovery failed: {error}"));
        check_recovered(&recovered, &outcome, outcome.acknowledged)
            .unwrap_or_else(|error| panic!("space limit {limit}: {error}"));
    }
}

#[test]
fn a_failed_fsync_poisons_the_handle_and_is_never_acknowledged() {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(fault_options(&fs, Durability::Strict)).expect("open");
    let watcher = db.watch_prefix("");
    db.put("kept", "1").expect("put before the fault");
    fs.fail(FaultRule::once(Op::SyncData, FaultError::Eio));
    let failed = db.put("lost", "2");
    assert!(
        failed.is_err(),
        "a commit whose fsync failed was acknowledged"
    );
    assert!(
        matches!(watcher.try_recv(), Some(cairn::WatchEvent::Put { ref key, .. }) if key.as_bytes() == b"kept")
    );
    assert_eq!(
        watcher.try_recv(),
        None,
        "a watcher saw a Strict commit whose fsync failed"
    );
    assert_eq!(
        db.get("lost").expect("get"),
        None,
        "a failed Strict commit became visible"
    );
    // The fault was a one-off, but the handle stays poisoned: never retry an fsync.
    assert!(matches!(db.put("later", "3"), Err(Error::Poisoned { .. })));
    assert!(matches!(db.delete("kept"), Err(Error::Poisoned { .. })));
    assert_eq!(
        db.get("kept").expect("reads still work").as_deref(),
        Some(&b"1"[..])
    );
    drop(db);
    let image = fs.crash(CrashMode::POWER_LOSS);
    let db = Db::open(fault_options(&image, Durability::Strict)).expect("reopen");
    assert_eq!(db.get("kept").expect("get").as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get("lost").expect("get"), None);
    db.put("later", "3")
        .expect("a reopened database accepts writes");
}

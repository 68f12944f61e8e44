//! Crash and fault matrix, power loss: the workload of `common` is cut at every I/O point
//! (the fault-injecting file system freezes there), the machine "loses power" (unsynced data
//! and unsynced directory entries vanish, or the last write is torn, or file data survives
//! but directory entries do not), and the database is recovered. At a sample of those points
//! recovery itself is crashed at every one of its own I/O points and run again.
//!
//! Pass: every recovery succeeds, holds exactly the state after some prefix of the commit
//! order, and keeps every acknowledged Strict commit. Buffered recovers a prefix.
//! `CAIRN_SOAK=1` runs more seeds.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;

use cairn::Durability;
use cairn_testkit::fault_fs::FaultFs;
use common::{fault_options, power_loss_matrix};

fn soak() -> bool {
    std::env::var_os("CAIRN_SOAK").is_some()
}

#[test]
fn strict_survives_power_loss_at_every_io_point_and_a_second_crash_in_recovery() {
    let seeds: &[u64] = if soak() {
        &[1, 2, 3, 4, 5, 6, 7, 8]
    } else {
        &[1, 2]
    };
    for &seed in seeds {
        let counts = power_loss_matrix(seed, 240, 1, 25, &|fs: &Arc<FaultFs>| {
            fault_options(fs, Durability::Strict)
        })
        .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
        assert!(counts.crash_points > 300, "seed {seed}: only {counts:?}");
        assert!(
            counts.recovery_crash_points > 50,
            "seed {seed}: only {counts:?}"
        );
        assert!(
            counts.acknowledged_checked > 10_000,
            "seed {seed}: only {counts:?}"
        );
        assert!(
            counts.segments_recycled > 0,
            "seed {seed}: no WAL segment was recycled: {counts:?}"
        );
    }
}

#[test]
fn buffered_recovers_a_prefix_of_the_commit_order_after_power_loss() {
    // Buffered acknowledges before the fsync, so no acknowledged count is required; the state
    // must still be exactly the one after some prefix of the commits.
    let seed = 11;
    let plan = common::workload(seed, 200);
    let dry = Arc::new(FaultFs::new());
    let db = cairn::Db::open(fault_options(&dry, Durability::buffered())).expect("dry open");
    let outcome = common::run(&db, &plan);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    drop(db);
    let points = dry.mutation_count();
    for point in 0..=points {
        let fs = Arc::new(FaultFs::new());
        fs.freeze_after_mutations(point);
        let outcome = match cairn::Db::open(fault_options(&fs, Durability::buffered())) {
            Ok(db) => common::run(&db, &plan),
            Err(_) => common::Outcome {
                states: vec![common::State::new()],
                ..common::Outcome::default()
            },
        };
        let image = fs.crash(common::crash_mode(point));
        let db = cairn::Db::open(fault_options(&image, Durability::buffered()))
            .unwrap_or_else(|error| panic!("point {point}: recovery failed: {error}"));
        common::check_recovered(&db, &outcome, 0)
            .unwrap_or_else(|error| panic!("point {point}: {error}"));
    }
}

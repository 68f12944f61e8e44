//! The crash matrix must catch deliberately broken builds: a harness that cannot fail proves
//! nothing. Each test switches on one test-only sabotage (`Options::sabotage`, compiled only
//! with the `sabotage` feature) and runs the matrix test that is meant to catch it, asserting
//! that the matrix reports a failure.
//!
//! | broken build | caught by |
//! |---|---|
//! | acknowledge before fsync | power loss at every I/O point |
//! | no directory fsync after a rename | power loss at every I/O point |
//! | WAL deleted before the snapshot is durable | power loss at every I/O point |
//! | every CRC failure taken for a torn tail | every bit flip in the WAL |
//! | WAL segments recycled without the header flag | power loss at every I/O point |

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::Arc;

use cairn::Durability;
use cairn_log::Sabotage;
use cairn_testkit::fault_fs::FaultFs;
use common::{fault_options, power_loss_matrix, wal_bit_flip_matrix};

fn sabotaged(sabotage: Sabotage) -> impl Fn(&Arc<FaultFs>) -> cairn::Options {
    move |fs| fault_options(fs, Durability::Strict).sabotage(sabotage)
}

fn power_loss_catches(sabotage: Sabotage) -> String {
    // The same matrix the normal build passes, on a few seeds.
    for seed in [1_u64, 2, 3] {
        if let Err(error) = power_loss_matrix(seed, 240, 1, 25, &sabotaged(sabotage)) {
            return error;
        }
    }
    panic!("the power-loss matrix did not catch {sabotage:?}");
}

#[test]
fn ack_before_fsync_is_caught_by_the_power_loss_matrix() {
    let error = power_loss_catches(Sabotage::AckBeforeFsync);
    // Either an acknowledged commit is gone, or a segment whose header was never synced
    // makes a later recovery find it damaged.
    assert!(
        error.contains("lost acknowledged commits") || error.contains("corrupted data"),
        "{error}"
    );
    eprintln!("AckBeforeFsync caught: {error}");
}

#[test]
fn missing_directory_fsync_is_caught_by_the_power_loss_matrix() {
    let error = power_loss_catches(Sabotage::NoDirSync);
    eprintln!("NoDirSync caught: {error}");
}

#[test]
fn wal_deleted_before_the_snapshot_is_durable_is_caught_by_the_power_loss_matrix() {
    let error = power_loss_catches(Sabotage::WalDeletedBeforeSnapshotDurable);
    eprintln!("WalDeletedBeforeSnapshotDurable caught: {error}");
}

#[test]
fn recycling_without_the_header_flag_is_caught_by_the_power_loss_matrix() {
    // The stale frames after a recycled segment's own then read as damage.
    let error = power_loss_catches(Sabotage::RecycleWithoutFlag);
    assert!(error.contains("corrupted data"), "{error}");
    eprintln!("RecycleWithoutFlag caught: {error}");
}

#[test]
fn crc_failure_taken_for_a_torn_tail_is_caught_by_the_wal_bit_flip_matrix() {
    let error = wal_bit_flip_matrix(&sabotaged(Sabotage::CrcFailureIsTornTail))
        .expect_err("the bit-flip matrix did not catch CrcFailureIsTornTail");
    assert!(error.contains("lost acknowledged commits"), "{error}");
}

#[test]
fn the_same_matrices_pass_without_sabotage() {
    // Guards against the broken-build tests passing because the matrix fails on everything.
    power_loss_matrix(1, 240, 7, 0, &sabotaged(Sabotage::None)).expect("clean build passes");
    wal_bit_flip_matrix(&sabotaged(Sabotage::None)).expect("clean build passes");
}

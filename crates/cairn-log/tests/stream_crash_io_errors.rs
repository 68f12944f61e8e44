//! Stream crash matrix, I/O errors: EIO on write, fsync, directory fsync, rename, `set_len`,
//! remove and open, once and for good, and ENOSPC (injected and a full device), at many
//! points of the multi-stream workload of `stream_crash_common`, in Strict mode.
//!
//! Pass: nothing is acknowledged over a failed sync; once an append to a stream failed with
//! an I/O error, that stream refuses every later append (`Poisoned`) rather than pretending,
//! and reads keep working; after a power cut (or a crash keeping everything, or tearing the
//! last write) the store opens and every stream is one of the states its acknowledged
//! operations allow, each failed operation done whole or not at all.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod stream_crash_common;

use std::sync::Arc;

use cairn_log::stream::StreamError;
use cairn_log::{LogError, Message, SyncPolicy};
use cairn_testkit::{
    CrashMode, FaultError, FaultFs, FaultRule, Op, UnsyncedDirOps, UnsyncedWrites,
};
use stream_crash_common::{
    buffered, candidates, check_recovered, describe, open, run, workload, Outcome, Step,
    StepResult, KEEP_ALL, NAMES,
};

/// Steps of the workload.
const STEPS: usize = 90;

/// The crash images every faulted run is recovered from.
const IMAGES: [CrashMode; 3] = [
    CrashMode::POWER_LOSS,
    KEEP_ALL,
    CrashMode {
        writes: UnsyncedWrites::TornLast { seed: 7 },
        dir_ops: UnsyncedDirOps::Lost,
    },
];

/// Once an append to a stream failed with an I/O error, no later append to it (until it is
/// deleted and created again) may be acknowledged, and each must fail as `Poisoned` or
/// `NotFound`. Returns the streams left poisoned at the end.
fn check_poisoning(plan: &[Step], outcome: &Outcome, label: &str) -> Vec<usize> {
    let mut poisoned = [false; NAMES.len()];
    for (index, (step, result)) in plan.iter().zip(&outcome.results).enumerate() {
        match (step, result) {
            (Step::Create(stream), StepResult::Acknowledged) | (Step::Delete(stream), _) => {
                poisoned[*stream] = false;
            }
            (Step::Append { stream, .. }, StepResult::Acknowledged) => assert!(
                !poisoned[*stream],
                "{label}: step {index} ({}) was acknowledged after an append to the same \
                 stream failed",
                describe(step)
            ),
            (
                Step::Append { stream, .. },
                StepResult::Failed {
                    error,
                    maybe_applied,
                },
            ) => {
                if poisoned[*stream] {
                    assert!(
                        !maybe_applied,
                        "{label}: step {index} ({}) on a poisoned stream failed with {error}, \
                         not as poisoned",
                        describe(step)
                    );
                } else if *maybe_applied {
                    poisoned[*stream] = true;
                }
            }
            _ => {}
        }
    }
    (0..NAMES.len()).filter(|&s| poisoned[s]).collect()
}

/// Injects `rule`, runs the workload, then checks poisoning and recovery from every image.
fn check_fault(rule: &FaultRule, label: &str) {
    check_faulted_fs(label, &|fs| fs.fail(rule.clone()));
}

fn check_faulted_fs(label: &str, arm: &dyn Fn(&FaultFs)) {
    let plan = workload(21, STEPS);
    let fs = Arc::new(FaultFs::new());
    arm(&fs);
    let outcome = match open(fs.clone(), SyncPolicy::Strict) {
        Ok(streams) => {
            let outcome = run(&streams, &plan);
            for stream in check_poisoning(&plan, &outcome, label) {
                let name = NAMES[stream];
                let again = streams.append(name, &Message::value("after the failure"));
                assert!(
                    matches!(again, Err(StreamError::Log(LogError::Poisoned { .. }))),
                    "{label}: an append to {name} after a failed append returned {again:?}"
                );
                // Reads are not refused for the poisoning (a fault on reads may still fail them).
                let read = streams.read_range(name, 0, 10, usize::MAX);
                assert!(
                    !matches!(read, Err(StreamError::Log(LogError::Poisoned { .. }))),
                    "{label}: reads of the poisoned {name} are refused: {read:?}"
                );
            }
            drop(streams);
            outcome
        }
        // The fault hit while opening the store: nothing to acknowledge.
        Err(_) => Outcome {
            results: vec![
                StepResult::Failed {
                    error: "the store did not open".to_owned(),
                    maybe_applied: false,
                };
                plan.len()
            ],
            acknowledged_messages: 0,
        },
    };
    // Any failed step that may have written something may or may not have taken effect.
    let candidates = candidates(&plan, &outcome, &|_, result| {
        matches!(
            result,
            StepResult::Failed {
                maybe_applied: true,
                ..
            }
        )
    });
    let failures: Vec<String> = plan
        .iter()
        .zip(&outcome.results)
        .enumerate()
        .filter_map(|(index, (step, result))| match result {
            StepResult::Failed {
                error,
                maybe_applied: true,
            } => Some(format!("step {index} ({}): {error}", describe(step))),
            _ => None,
        })
        .take(4)
        .collect();
    for mode in IMAGES {
        let image = fs.crash(mode);
        image.set_space_limit_bytes(None);
        let streams = match open(image, SyncPolicy::Strict) {
            Ok(streams) => streams,
            Err(error) => {
                panic!("{label}, {mode:?}: recovery failed: {error}; first failures: {failures:#?}")
            }
        };
        check_recovered(&streams, &candidates, true).unwrap_or_else(|error| {
            panic!("{label}, {mode:?}: {error}; first failures: {failures:#?}")
        });
    }
}

#[test]
fn eio_once_and_forever_on_every_kind_of_call_never_loses_an_acknowledged_append() {
    let mut cases = 0;
    for op in [
        Op::Write,
        Op::SyncData,
        Op::SyncDir,
        Op::Rename,
        Op::SetLen,
        Op::Remove,
        Op::Open,
    ] {
        for skip in [0_u64, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
            for forever in [false, true] {
                let rule = if forever {
                    FaultRule::forever(op, FaultError::Eio)
                } else {
                    FaultRule::once(op, FaultError::Eio)
                }
                .with_skip(skip);
                check_fault(
                    &rule,
                    &format!("EIO on {op:?} after {skip} (forever: {forever})"),
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 168);
}

#[test]
fn eio_on_segment_and_metadata_files_alone() {
    for (op, path) in [
        (Op::SyncData, ".wal"),
        (Op::Write, ".wal"),
        (Op::SyncData, "STREAM.tmp"),
        (Op::Rename, "STREAM"),
        (Op::SyncDir, "/streams/0"),
    ] {
        for skip in [0_u64, 1, 4, 9, 16, 30] {
            for forever in [false, true] {
                let rule = if forever {
                    FaultRule::forever(op, FaultError::Eio)
                } else {
                    FaultRule::once(op, FaultError::Eio)
                }
                .with_path_contains(path)
                .with_skip(skip);
                check_fault(
                    &rule,
                    &format!("EIO on {op:?} of {path} after {skip} (forever: {forever})"),
                );
            }
        }
    }
}

#[test]
fn enospc_on_writes_and_a_full_device_never_lose_an_acknowledged_append() {
    for op in [Op::Write, Op::SetLen] {
        for skip in [0_u64, 1, 4, 16, 64] {
            check_fault(
                &FaultRule::forever(op, FaultError::NoSpace).with_skip(skip),
                &format!("ENOSPC on {op:?} after {skip}"),
            );
        }
    }
    for limit in [6_000_u64, 12_000, 20_000, 40_000] {
        check_faulted_fs(&format!("space limit {limit}"), &|fs| {
            fs.set_space_limit_bytes(Some(limit));
        });
    }
}

#[test]
fn a_failed_fsync_poisons_the_stream_and_is_never_acknowledged() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(fs.clone(), SyncPolicy::Strict).expect("open");
    streams.create("a").expect("create a");
    streams.create("b").expect("create b");
    assert_eq!(
        streams
            .append("a", &Message::value("kept"))
            .expect("append"),
        0
    );
    fs.fail(FaultRule::once(Op::SyncData, FaultError::Eio).with_path_contains(".wal"));
    let failed = streams.append_batch("a", &[Message::value("lost"), Message::value("lost2")]);
    assert!(
        failed.is_err(),
        "an append whose fsync failed was acknowledged"
    );
    assert_eq!(
        streams.info("a").expect("info").next_offset,
        1,
        "a Strict append whose fsync failed became visible"
    );
    assert_eq!(streams.read("a", 1).expect("read"), None);
    // The fault was a one-off, but the stream stays poisoned: never retry an fsync.
    for _ in 0..2 {
        assert!(matches!(
            streams.append("a", &Message::value("later")),
            Err(StreamError::Log(LogError::Poisoned { .. }))
        ));
    }
    assert!(
        streams.sync().is_err(),
        "sync of a poisoned stream succeeded"
    );
    assert!(streams.truncate_before("a", 1).is_err());
    assert_eq!(
        streams
            .read("a", 0)
            .expect("reads still work")
            .map(|m| m.message),
        Some(Message::value("kept"))
    );
    // Poisoning is per stream: the other stream's log never failed.
    assert_eq!(streams.append("b", &Message::value("b0")).expect("b"), 0);
    drop(streams);
    for mode in IMAGES {
        let streams = open(fs.crash(mode), SyncPolicy::Strict).expect("reopen");
        let a = streams.read_range("a", 0, 10, usize::MAX).expect("read a");
        let a: Vec<Message> = a.into_iter().map(|stored| stored.message).collect();
        assert!(
            a == [Message::value("kept")]
                || a == [
                    Message::value("kept"),
                    Message::value("lost"),
                    Message::value("lost2")
                ],
            "{mode:?}: a holds {a:?}"
        );
        assert_eq!(streams.info("b").expect("b").next_offset, 1, "{mode:?}");
        let next = streams
            .append("a", &Message::value("reopened"))
            .expect("a reopened store accepts appends");
        assert_eq!(next, a.len() as u64);
    }
}

#[test]
fn a_failed_background_flush_poisons_a_buffered_stream() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(fs.clone(), buffered()).expect("open");
    streams.create("a").expect("create");
    streams
        .append("a", &Message::value("kept"))
        .expect("append");
    streams.sync().expect("sync");
    fs.fail(FaultRule::forever(Op::SyncData, FaultError::Eio).with_path_contains(".wal"));
    // Buffered acknowledges before the flush; the flush (by the store's thread or by this
    // sync) then fails and must not be reported as success.
    streams
        .append("a", &Message::value("buffered"))
        .expect("a Buffered append is acknowledged once buffered");
    assert!(
        streams.sync().is_err(),
        "sync reported success over a failed fsync"
    );
    assert!(matches!(
        streams.append("a", &Message::value("later")),
        Err(StreamError::Log(LogError::Poisoned { .. }))
    ));
    drop(streams);
    let streams = open(fs.crash(CrashMode::POWER_LOSS), SyncPolicy::Strict).expect("reopen");
    let a = streams.read_range("a", 0, 10, usize::MAX).expect("read");
    assert_eq!(
        a.len(),
        1,
        "the unsynced append survived a power cut: {a:?}"
    );
    assert_eq!(a[0].message, Message::value("kept"));
}

/// Found by this matrix: `Streams::create` once wrote the stream's metadata file (its commit
/// point) before the stream's first segment, so a failure there left a durable stream the
/// catalog did not know; a retried `create` then made a second directory of the same name,
/// and every later open refused the store as `Corrupted` ("a second stream named").
#[test]
fn a_retried_create_after_a_failed_one_leaves_a_store_that_opens() {
    let fs = Arc::new(FaultFs::new());
    let streams = open(fs.clone(), SyncPolicy::Strict).expect("open");
    fs.fail(FaultRule::once(Op::Write, FaultError::Eio).with_path_contains(".wal"));
    assert!(streams.create("a").is_err(), "the fault did not hit create");
    streams.create("a").expect("the retried create");
    streams.append("a", &Message::value("m")).expect("append");
    drop(streams);
    for mode in IMAGES {
        let streams = open(fs.crash(mode), SyncPolicy::Strict)
            .unwrap_or_else(|error| panic!("{mode:?}: the store no longer opens: {error}"));
        assert_eq!(streams.list(), ["a"]);
        assert_eq!(streams.info("a").expect("info").next_offset, 1);
    }
}

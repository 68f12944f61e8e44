//! Group commit tests of the log (layer 1 and 4 of the test plan): Strict leader/follower
//! batching under concurrent writers, Buffered background flushing and close, the closed
//! state, and poisoning by failed writes, syncs, segment creation and directory syncs.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use cairn_log::{LogError, LogOptions, SyncPolicy};
use common::{
    append_all, open_collect, open_collect_on, records, strict_options, FaultyFs, TempDir,
};

/// Polls `condition` for up to five seconds.
fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    condition()
}

fn buffered_options(flush_interval: Duration, buffer_bytes_max: usize) -> LogOptions {
    let mut options = LogOptions::new(SyncPolicy::Buffered {
        flush_interval,
        buffer_bytes_max,
    });
    options.segment_bytes = 1 << 20;
    options
}

#[test]
fn strict_writers_share_fsyncs_and_everything_acknowledged_is_durable() {
    const THREADS: u64 = 8;
    const COMMITS_PER_THREAD: u64 = 100;
    let dir = TempDir::new("strict-threads");
    let (log, _, _) = open_collect(&dir.path, strict_options(64 << 10), 0).expect("open");
    let log = Arc::new(log);
    // The engine serializes appends under its commit lock; so does this test.
    let sequencer = Arc::new(Mutex::new(0_u64));
    let start = Arc::new(Barrier::new(usize::try_from(THREADS).expect("small")));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (log, sequencer, start) =
                (Arc::clone(&log), Arc::clone(&sequencer), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut acknowledged = Vec::new();
                for _ in 0..COMMITS_PER_THREAD {
                    let lsn = {
                        let mut last = sequencer.lock().expect("sequencer");
                        *last += 1;
                        let record = common::Record::for_lsn(*last, 40);
                        log.append(record.kind, record.lsn, record.version, &record.body)
                            .expect("append");
                        *last
                    };
                    log.wait_durable(lsn).expect("durable");
                    assert!(log.durable_lsn() >= lsn);
                    acknowledged.push(lsn);
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged: Vec<u64> = threads
        .into_iter()
        .flat_map(|thread| thread.join().expect("writer"))
        .collect();
    acknowledged.sort_unstable();
    let total = THREADS * COMMITS_PER_THREAD;
    assert_eq!(acknowledged, (1..=total).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!(stats.frames_written, total);
    assert_eq!(stats.frames_appended, total);
    assert!(
        stats.groups_written < total,
        "no group held more than one commit: {stats:?}"
    );
    assert!(stats.syncs < total, "{stats:?}");
    assert_eq!(log.durable_lsn(), total);
    log.close().expect("close");
    drop(log);
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(64 << 10), 0).expect("reopen");
    assert_eq!(replayed, records(1, total, |_| 40));
}

#[test]
fn strict_appends_do_no_io_until_someone_waits() {
    let dir = TempDir::new("strict-lazy");
    let (log, _, _) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    let before = log.stats();
    for record in records(1, 10, |_| 8) {
        log.append(record.kind, record.lsn, record.version, &record.body)
            .expect("append");
    }
    let after = log.stats();
    assert_eq!(after.groups_written, before.groups_written);
    assert_eq!(after.syncs, before.syncs);
    assert_eq!(log.durable_lsn(), 0);
    log.wait_durable(4).expect("durable");
    // The leader took everything pending: one group, one fsync.
    assert_eq!(log.durable_lsn(), 10);
    assert_eq!(log.stats().groups_written, 1);
    assert_eq!(log.stats().syncs, before.syncs + 1);
    assert!(matches!(
        log.wait_durable(11),
        Err(LogError::NotAppended {
            lsn: 11,
            last_appended_lsn: 10
        })
    ));
}

#[test]
fn buffered_appends_return_at_once_and_become_durable_after_the_interval() {
    let dir = TempDir::new("buffered-interval");
    let (log, _, _) = open_collect(
        &dir.path,
        buffered_options(Duration::from_millis(300), 1 << 20),
        0,
    )
    .expect("open");
    let written = records(1, 20, |_| 30);
    for record in &written {
        log.append(record.kind, record.lsn, record.version, &record.body)
            .expect("append");
    }
    // Far below the interval: nothing written yet.
    assert_eq!(log.stats().groups_written, 0);
    assert_eq!(log.durable_lsn(), 0);
    assert_eq!(log.last_appended_lsn(), 20);
    assert!(eventually(|| log.durable_lsn() == 20), "flusher never ran");
    assert!(log.stats().groups_written >= 1);
    // Appended after the flush, made durable by close.
    let more = records(21, 25, |_| 30);
    for record in &more {
        log.append(record.kind, record.lsn, record.version, &record.body)
            .expect("append");
    }
    log.close().expect("close");
    assert_eq!(log.durable_lsn(), 25);
    drop(log);
    let (_log, _, replayed) = open_collect(
        &dir.path,
        buffered_options(Duration::from_millis(300), 1 << 20),
        0,
    )
    .expect("reopen");
    assert_eq!(replayed.len(), 25);
    assert_eq!(replayed[..20], written[..]);
}

#[test]
fn buffered_flush_wakes_early_when_the_buffer_fills() {
    let dir = TempDir::new("buffered-threshold");
    // An interval far beyond the test's patience: only the threshold can trigger the flush.
    let (log, _, _) = open_collect(
        &dir.path,
        buffered_options(Duration::from_secs(3600), 1024),
        0,
    )
    .expect("open");
    for record in records(1, 12, |_| 100) {
        log.append(record.kind, record.lsn, record.version, &record.body)
            .expect("append");
    }
    assert!(
        eventually(|| log.durable_lsn() >= 9),
        "threshold did not wake the flusher"
    );
    // wait_durable works in Buffered mode too.
    log.wait_durable(12).expect("durable");
    assert_eq!(log.durable_lsn(), 12);
}

#[test]
fn buffered_backpressure_never_deadlocks_on_large_frames() {
    let dir = TempDir::new("buffered-backpressure");
    let (log, _, _) = open_collect(
        &dir.path,
        buffered_options(Duration::from_millis(5), 256),
        0,
    )
    .expect("open");
    // Frames larger than twice the buffer limit still get through one at a time.
    append_all(
        &log,
        &records(1, 50, |lsn| if lsn % 5 == 0 { 2000 } else { 10 }),
    );
    assert_eq!(log.durable_lsn(), 50);
}

#[test]
fn drop_flushes_a_buffered_log() {
    let dir = TempDir::new("buffered-drop");
    let written = records(1, 7, |_| 12);
    {
        let (log, _, _) = open_collect(
            &dir.path,
            buffered_options(Duration::from_secs(3600), 1 << 20),
            0,
        )
        .expect("open");
        for record in &written {
            log.append(record.kind, record.lsn, record.version, &record.body)
                .expect("append");
        }
    }
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    assert_eq!(replayed, written);
}

#[test]
fn a_closed_log_refuses_everything() {
    let dir = TempDir::new("closed");
    let (log, _, _) = open_collect(&dir.path, strict_options(4096), 0).expect("open");
    append_all(&log, &records(1, 2, |_| 1));
    log.close().expect("close");
    assert!(matches!(log.append(1, 3, 0, b""), Err(LogError::Closed)));
    assert!(matches!(log.sync(), Err(LogError::Closed)));
    assert!(matches!(log.close(), Err(LogError::Closed)));
    assert!(matches!(
        log.remove_segments_through(1),
        Err(LogError::Closed)
    ));
    // What is durable stays durable.
    log.wait_durable(2).expect("already durable");
}

#[test]
fn appends_are_checked_before_anything_is_buffered() {
    let dir = TempDir::new("append-checks");
    let mut options = strict_options(4096);
    options.frame_payload_bytes_max = 100;
    let (log, _, _) = open_collect(&dir.path, options, 0).expect("open");
    assert!(matches!(
        log.append(1, 1, 0, &[0; 85]),
        Err(LogError::FrameTooLarge {
            bytes: 101,
            max: 100
        })
    ));
    assert!(matches!(
        log.append(0, 1, 0, b""),
        Err(LogError::InvalidRecordType { record_type: 0 })
    ));
    assert_eq!(log.stats().frames_appended, 0);
    log.append(1, 1, 0, &[0; 84]).expect("at the limit");
}

#[test]
fn a_failed_sync_poisons_the_log_and_fails_every_waiter() {
    let dir = TempDir::new("fail-sync");
    let fs = Arc::new(FaultyFs::default());
    let faults = Arc::clone(&fs.faults);
    let (log, _, _) = open_collect_on(fs, &dir.path, strict_options(1 << 16), 0).expect("open");
    append_all(&log, &records(1, 3, |_| 10));
    let log = Arc::new(log);
    faults.fail_sync_data.store(true, Ordering::SeqCst);
    faults.sync_delay_millis.store(50, Ordering::SeqCst);
    let sequencer = Arc::new(Mutex::new(3_u64));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (log, sequencer) = (Arc::clone(&log), Arc::clone(&sequencer));
            std::thread::spawn(move || {
                let lsn = {
                    let mut last = sequencer.lock().expect("sequencer");
                    let record = common::Record::for_lsn(*last + 1, 10);
                    match log.append(record.kind, record.lsn, record.version, &record.body) {
                        Ok(()) => *last += 1,
                        Err(error) => return Err(error),
                    }
                    *last
                };
                log.wait_durable(lsn)
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|thread| thread.join().expect("thread"))
        .collect();
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert!(results.iter().any(|result| matches!(
        result,
        Err(LogError::Io {
            operation: "sync segment",
            ..
        })
    )));
    assert!(log.is_poisoned());
    assert_eq!(
        log.durable_lsn(),
        3,
        "nothing after the failed sync is durable"
    );
    let error = log
        .append(1, log.last_appended_lsn() + 1, 0, b"")
        .expect_err("poisoned");
    let LogError::Poisoned { cause } = error else {
        panic!("expected Poisoned, got {error}");
    };
    assert!(cause.contains("injected sync_data failure"), "{cause}");
    assert!(matches!(log.sync(), Err(LogError::Poisoned { .. })));
    // The sync was not retried: one call per failed group at most, then none.
    let calls = faults.sync_data_calls.load(Ordering::SeqCst);
    assert!(log.sync().is_err());
    assert_eq!(faults.sync_data_calls.load(Ordering::SeqCst), calls);
    // Closing reports the poison instead of pretending to flush.
    assert!(matches!(log.close(), Err(LogError::Poisoned { .. })));
}

#[test]
fn a_failed_write_poisons_the_log() {
    let dir = TempDir::new("fail-write");
    let fs = Arc::new(FaultyFs::default());
    let faults = Arc::clone(&fs.faults);
    let (log, _, _) = open_collect_on(fs, &dir.path, strict_options(1 << 16), 0).expect("open");
    faults.fail_write.store(true, Ordering::SeqCst);
    log.append(1, 1, 1, b"x").expect("append buffers");
    assert!(matches!(
        log.wait_durable(1),
        Err(LogError::Io {
            operation: "write segment",
            ..
        })
    ));
    assert_eq!(log.durable_lsn(), 0);
    assert!(matches!(
        log.wait_durable(1),
        Err(LogError::Poisoned { .. })
    ));
}

#[test]
fn a_failed_segment_creation_during_rotation_poisons_the_log() {
    let dir = TempDir::new("fail-create");
    let fs = Arc::new(FaultyFs::default());
    let faults = Arc::clone(&fs.faults);
    let (log, _, _) = open_collect_on(fs, &dir.path, strict_options(4096), 0).expect("open");
    append_all(&log, &records(1, 5, |_| 100));
    faults.fail_create.store(true, Ordering::SeqCst);
    for record in records(6, 60, |_| 100) {
        log.append(record.kind, record.lsn, record.version, &record.body)
            .expect("append buffers");
    }
    assert!(matches!(
        log.sync(),
        Err(LogError::Io {
            operation: "create segment",
            ..
        })
    ));
    assert!(log.is_poisoned());
    assert_eq!(log.durable_lsn(), 5);
    drop(log);
    // The frames that fit the old segment were written and synced before the rotation; a
    // reopen finds a gap-free prefix.
    let (_log, _, replayed) = open_collect(&dir.path, strict_options(4096), 0).expect("reopen");
    assert!(replayed.len() >= 5);
    assert_eq!(replayed, records(1, replayed.len() as u64, |_| 100));
}

#[test]
fn a_failed_directory_sync_while_removing_segments_poisons_the_log() {
    let dir = TempDir::new("fail-dir-sync");
    let fs = Arc::new(FaultyFs::default());
    let faults = Arc::clone(&fs.faults);
    let (log, _, _) = open_collect_on(fs, &dir.path, strict_options(4096), 0).expect("open");
    append_all(&log, &records(1, 60, |_| 150));
    faults.fail_sync_dir.store(true, Ordering::SeqCst);
    assert!(matches!(
        log.remove_segments_through(30),
        Err(LogError::Io {
            operation: "sync log directory",
            ..
        })
    ));
    assert!(log.is_poisoned());
    assert!(matches!(
        log.append(1, 61, 0, b""),
        Err(LogError::Poisoned { .. })
    ));
}

#[test]
fn a_buffered_log_with_an_external_flusher_wakes_it_flushes_on_tick_and_never_stalls() {
    let dir = TempDir::new("external-flush");
    let wakes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut options = LogOptions::new(SyncPolicy::Buffered {
        // Never, as far as this test is concerned: only the waker and ticks flush.
        flush_interval: Duration::from_secs(3_600),
        buffer_bytes_max: 4_096,
    });
    let counted = Arc::clone(&wakes);
    options.flush_waker = Some(cairn_log::FlushWaker(Arc::new(move || {
        counted.fetch_add(1, Ordering::Relaxed);
    })));
    let (log, _, _) = open_collect(&dir.path, options, 0).expect("open");
    // One small frame: buffered, below the threshold, not durable until a tick.
    log.append(1, 1, 1, b"first").expect("append");
    assert_eq!(log.durable_lsn(), 0);
    log.flush_tick().expect("tick");
    assert_eq!(log.durable_lsn(), 1);
    // Far past the backpressure limit, with nobody ticking: appends flush themselves.
    let body = vec![7_u8; 1_000];
    for lsn in 2..=100 {
        log.append(1, lsn, lsn, &body).expect("append never stalls");
    }
    assert!(wakes.load(Ordering::Relaxed) >= 1, "the waker was called");
    assert!(log.durable_lsn() > 1, "a blocked append flushed");
    log.flush_tick().expect("tick");
    assert_eq!(log.durable_lsn(), 100);
    log.close().expect("close");
}

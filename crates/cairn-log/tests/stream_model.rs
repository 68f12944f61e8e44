//! Seeded model test of durable streams on the fault-injecting file system: random sequences
//! of create, delete, append, batch append, read, range read, time seek, truncation, clean
//! reopen and crash-and-reopen, checked after every step against a plain in-memory model (a
//! `BTreeMap` of names to message vectors). After a crash, Strict must have lost nothing
//! acknowledged; Buffered must have kept, per stream, a prefix of what was acknowledged
//! (whole batches), with names and truncations (both synced before they return) intact.
//!
//! Consumer groups are modelled too: `create_group`, `read_group`, `ack` and `commit` are checked against a
//! model group (delivery position and pending set), and after a reopen every group must
//! deliver again from its committed offset with nothing pending. A clean reopen keeps every
//! committed offset exactly; after a crash, Strict keeps them exactly (they are durable when
//! `ack`/`commit` return), Buffered keeps a value between the last durable point (creation,
//! clean close) and the current one, never above the recovered end of the stream.
//!
//! The seed of a failing run is printed; rerun it alone with `CAIRN_STREAM_SEED=<seed>`.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "test offsets index small vectors; a scenario reads best as one function"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_log::stream::StreamError;
use cairn_log::{Clock, Message, StoredMessage, StreamOptions, Streams, SyncPolicy};
use cairn_testkit::{CrashMode, FaultFs, SplitMix64, UnsyncedDirOps, UnsyncedWrites};

const NAMES: [&str; 3] = ["a", "b.c", "d-e_f"];
const GROUPS: [&str; 2] = ["g1", "g-2"];

/// One consumer group of the model.
#[derive(Clone, Debug, Default)]
struct ModelGroup {
    delivered: u64,
    pending: BTreeSet<u64>,
    /// The committed offset at the last point it was certainly durable (Buffered crashes
    /// may recover anything from here up to the current committed offset).
    floor: u64,
}

impl ModelGroup {
    fn committed(&self) -> u64 {
        self.pending.first().copied().unwrap_or(self.delivered)
    }

    /// The state after a reopen that recovered `committed`.
    fn reopened(committed: u64) -> Self {
        ModelGroup {
            delivered: committed,
            pending: BTreeSet::new(),
            floor: committed,
        }
    }
}
const STEPS: usize = 250;

/// One stream of the model.
#[derive(Clone, Debug, Default)]
struct ModelStream {
    first: u64,
    /// `(timestamp, message)` by offset, from 0.
    messages: Vec<(u64, Message)>,
    /// Offsets at which a batch ends (a crash keeps whole batches).
    batch_ends: Vec<u64>,
    groups: BTreeMap<String, ModelGroup>,
}

fn check_groups(streams: &Streams, name: &str, model: &ModelStream) {
    let info = streams.group_info(name).expect("group_info");
    let got: Vec<(String, u64, u64, u64)> = info
        .into_iter()
        .map(|group| {
            (
                group.name,
                group.delivered_up_to,
                group.committed,
                group.pending,
            )
        })
        .collect();
    let want: Vec<(String, u64, u64, u64)> = model
        .groups
        .iter()
        .map(|(group, state)| {
            (
                group.clone(),
                state.delivered,
                state.committed(),
                state.pending.len() as u64,
            )
        })
        .collect();
    assert_eq!(got, want, "{name} groups");
}

/// One random group operation on stream `name`.
fn group_step(
    streams: &Streams,
    name: &str,
    model: &mut ModelStream,
    rng: &mut SplitMix64,
    strict: bool,
) {
    let group = GROUPS[rng.below(GROUPS.len())];
    let next = model.messages.len() as u64;
    match rng.below(10) {
        0 => {
            let start = rng.below(next as usize + 1) as u64;
            let created = streams
                .create_group(name, group, start)
                .expect("create_group");
            assert_eq!(created, !model.groups.contains_key(group), "{name}/{group}");
            model.groups.entry(group.to_owned()).or_insert(ModelGroup {
                delivered: start,
                pending: BTreeSet::new(),
                floor: start,
            });
        }
        1..=4 => {
            let max = rng.below(5) + 1;
            let consumer = ["c1", "c2"][rng.below(2)];
            match streams.read_group(name, group, consumer, max) {
                Ok(read) => {
                    let state = model.groups.get_mut(group).expect("read a missing group");
                    let from = state.delivered.max(model.first);
                    let want: Vec<u64> = (from..next).take(max).collect();
                    let got: Vec<u64> = read.iter().map(|message| message.offset).collect();
                    assert_eq!(got, want, "{name}/{group} read_group");
                    for message in &read {
                        assert_eq!(message.message, model.messages[message.offset as usize].1);
                    }
                    if let Some(&last) = want.last() {
                        state.pending.extend(want.iter().copied());
                        state.delivered = last + 1;
                    }
                }
                Err(StreamError::GroupNotFound { .. }) => {
                    assert!(!model.groups.contains_key(group));
                }
                Err(error) => panic!("read_group: {error}"),
            }
        }
        5..=7 => {
            let Some(state) = model.groups.get_mut(group) else {
                assert_eq!(streams.ack(name, group, &[0, 1]).expect("ack"), 0);
                return;
            };
            let mut offsets: Vec<u64> = state
                .pending
                .iter()
                .copied()
                .filter(|_| rng.below(2) == 0)
                .collect();
            offsets.push(rng.below(next as usize + 2) as u64);
            let want = offsets
                .iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|offset| state.pending.contains(offset))
                .count() as u64;
            assert_eq!(streams.ack(name, group, &offsets).expect("ack"), want);
            for offset in &offsets {
                state.pending.remove(offset);
            }
            if strict {
                state.floor = state.committed();
            }
        }
        _ => {
            let offset = rng.below(next as usize + 1) as u64;
            match streams.commit(name, group, offset) {
                Ok(()) => {
                    let state = model
                        .groups
                        .get_mut(group)
                        .expect("committed a missing group");
                    state.pending.retain(|&pending| pending >= offset);
                    state.delivered = state.delivered.max(offset);
                    if strict {
                        state.floor = state.committed();
                    }
                }
                Err(StreamError::GroupNotFound { .. }) => {
                    assert!(!model.groups.contains_key(group));
                }
                Err(error) => panic!("commit: {error}"),
            }
        }
    }
    check_groups(streams, name, model);
}

/// After a reopen: every group delivers from a committed offset that is exactly the model's
/// (`exact`) or between its floor and its current value, never past `next`; the model takes
/// the recovered value.
fn check_reopened_groups(
    streams: &Streams,
    name: &str,
    model: &mut ModelStream,
    exact: bool,
    step: usize,
) {
    let recovered = streams.group_info(name).expect("group_info");
    assert_eq!(
        recovered
            .iter()
            .map(|group| group.name.as_str())
            .collect::<Vec<_>>(),
        model.groups.keys().map(String::as_str).collect::<Vec<_>>(),
        "step {step}: {name} groups"
    );
    let next = model.messages.len() as u64;
    for group in recovered {
        let state = &model.groups[&group.name];
        assert_eq!(group.pending, 0, "step {step}: {name}/{}", group.name);
        assert_eq!(group.delivered_up_to, group.committed);
        // A committed offset below the first readable one delivers from there: the same.
        let effective = |offset: u64| offset.max(model.first);
        if exact {
            assert_eq!(
                effective(group.committed),
                effective(state.committed()),
                "step {step}: {name}/{} committed",
                group.name
            );
        } else {
            assert!(
                effective(state.floor) <= effective(group.committed)
                    && group.committed <= state.committed(),
                "step {step}: {name}/{} recovered committed {} outside {}..={}",
                group.name,
                group.committed,
                state.floor,
                state.committed()
            );
        }
        assert!(
            group.committed <= next.max(state.floor),
            "step {step}: {name}/{} committed {} past the end {next}",
            group.name,
            group.committed
        );
        model
            .groups
            .insert(group.name.clone(), ModelGroup::reopened(group.committed));
    }
}

fn random_message(rng: &mut SplitMix64) -> Message {
    let len = rng.below(3) * rng.below(150);
    let mut message = Message::value(vec![u8::try_from(rng.below(256)).expect("byte"); len]);
    if rng.below(3) == 0 {
        message = message.with_key(vec![1; rng.below(5)]);
    }
    if rng.below(4) == 0 {
        message = message.with_header("h", vec![2; rng.below(4)]);
    }
    message
}

fn options(sync: &SyncPolicy, clock: &Clock, rng: &mut SplitMix64) -> StreamOptions {
    let mut options = StreamOptions::new(sync.clone());
    options.segment_bytes = 4096;
    options.index_interval_bytes = [64, 512, 4096][rng.below(3)];
    options.tail_bytes_max = [0, 300, 1 << 20][rng.below(3)];
    options.clock = clock.clone();
    options
}

fn check_stream(streams: &Streams, name: &str, model: &ModelStream, rng: &mut SplitMix64) {
    let next = model.messages.len() as u64;
    let info = streams.info(name).expect("info");
    assert_eq!(
        (info.first_offset, info.next_offset),
        (model.first.min(next), next),
        "{name}"
    );
    let expect = |stored: &StoredMessage| {
        let (timestamp_ms, message) = &model.messages[stored.offset as usize];
        assert_eq!(&stored.message, message, "{name} offset {}", stored.offset);
        assert_eq!(
            stored.timestamp_ms, *timestamp_ms,
            "{name} offset {}",
            stored.offset
        );
    };
    let from = rng.below(model.messages.len() + 2) as u64;
    let max = rng.below(20) + 1;
    let range = streams
        .read_range(name, from, max, usize::MAX)
        .expect("read_range");
    let start = from.max(model.first);
    let want = (next.saturating_sub(start) as usize).min(max);
    assert_eq!(range.len(), want, "{name} read_range({from}, {max})");
    for (index, stored) in range.iter().enumerate() {
        assert_eq!(stored.offset, start + index as u64);
        expect(stored);
    }
    let offset = rng.below(model.messages.len() + 1) as u64;
    match streams.read(name, offset) {
        Ok(Some(stored)) => {
            assert!(offset >= model.first && offset < next);
            expect(&stored);
        }
        Ok(None) => assert!(offset >= next, "{name} offset {offset} missing"),
        Err(StreamError::Truncated { .. }) => assert!(offset < model.first),
        Err(error) => panic!("{name} read {offset}: {error}"),
    }
    let target = model
        .messages
        .get(rng.below(model.messages.len() + 1))
        .map_or(u64::MAX, |(timestamp_ms, _)| {
            *timestamp_ms + rng.below(2) as u64
        });
    let want = (model.first..next).find(|&offset| model.messages[offset as usize].0 >= target);
    assert_eq!(
        streams.seek_time(name, target).expect("seek"),
        want,
        "{name} seek {target}"
    );
}

fn run(seed: u64, sync: &SyncPolicy) {
    let mut rng = SplitMix64::new(seed);
    let now = Arc::new(AtomicU64::new(1_000));
    let clock_now = Arc::clone(&now);
    let clock = Clock::new(move || clock_now.load(Ordering::SeqCst));
    let dir = Path::new("/streams");
    let mut fs = Arc::new(FaultFs::new());
    let mut streams =
        Streams::open(fs.clone(), dir, options(sync, &clock, &mut rng)).expect("open");
    let mut model: BTreeMap<String, ModelStream> = BTreeMap::new();
    let strict = matches!(sync, SyncPolicy::Strict);
    for step in 0..STEPS {
        // Time moves on, and now and then steps back (timestamps are clamped).
        if rng.below(10) == 0 {
            now.fetch_sub(rng.below(50) as u64, Ordering::SeqCst);
        } else {
            now.fetch_add(rng.below(20) as u64, Ordering::SeqCst);
        }
        let name = NAMES[rng.below(NAMES.len())];
        match rng.below(100) {
            0..=4 => match streams.create(name) {
                Ok(()) => assert!(model
                    .insert(name.to_owned(), ModelStream::default())
                    .is_none()),
                Err(StreamError::AlreadyExists { .. }) => assert!(model.contains_key(name)),
                Err(error) => panic!("step {step}: create: {error}"),
            },
            5..=7 => {
                let existed = streams.delete(name).expect("delete");
                assert_eq!(existed, model.remove(name).is_some(), "step {step}: delete");
            }
            8..=49 => {
                let count = if rng.below(3) == 0 {
                    rng.below(6) + 1
                } else {
                    1
                };
                let batch: Vec<Message> = (0..count).map(|_| random_message(&mut rng)).collect();
                match streams.append_batch(name, &batch) {
                    Ok(range) => {
                        let stream = model.get_mut(name).expect("appended to a missing stream");
                        assert_eq!(range.start, stream.messages.len() as u64, "step {step}");
                        let clamped = stream
                            .messages
                            .last()
                            .map_or(0, |(timestamp_ms, _)| *timestamp_ms)
                            .max(now.load(Ordering::SeqCst));
                        stream
                            .messages
                            .extend(batch.into_iter().map(|message| (clamped, message)));
                        stream.batch_ends.push(range.end);
                    }
                    Err(StreamError::NotFound { .. }) => assert!(!model.contains_key(name)),
                    Err(error) => panic!("step {step}: append: {error}"),
                }
            }
            50..=64 => {
                if let Some(stream) = model.get(name) {
                    check_stream(&streams, name, stream, &mut rng);
                }
            }
            65..=79 => {
                if let Some(stream) = model.get_mut(name) {
                    group_step(&streams, name, stream, &mut rng, strict);
                }
            }
            80..=87 => {
                if let Some(stream) = model.get_mut(name) {
                    let next = stream.messages.len() as u64;
                    let offset = stream.first
                        + rng.below((next - stream.first.min(next)) as usize + 1) as u64;
                    streams.truncate_before(name, offset).expect("truncate");
                    stream.first = stream.first.max(offset);
                }
            }
            88..=92 => {
                streams.close().expect("close");
                drop(streams);
                streams = Streams::open(fs.clone(), dir, options(sync, &clock, &mut rng))
                    .expect("reopen");
                for (name, stream) in &mut model {
                    check_reopened_groups(&streams, name, stream, true, step);
                }
            }
            _ => {
                let mode = match rng.below(3) {
                    0 => CrashMode::POWER_LOSS,
                    1 => CrashMode {
                        writes: UnsyncedWrites::TornLast {
                            seed: rng.next_u64(),
                        },
                        dir_ops: UnsyncedDirOps::Lost,
                    },
                    _ => CrashMode {
                        writes: UnsyncedWrites::Kept,
                        dir_ops: UnsyncedDirOps::Kept,
                    },
                };
                let image = fs.crash(mode);
                drop(streams);
                fs = image;
                streams = Streams::open(fs.clone(), dir, options(sync, &clock, &mut rng))
                    .unwrap_or_else(|error| panic!("step {step}: open after crash: {error}"));
                assert_eq!(
                    streams.list(),
                    model.keys().cloned().collect::<Vec<_>>(),
                    "step {step}"
                );
                for (name, stream) in &mut model {
                    let next = streams.info(name).expect("info").next_offset;
                    let acked = stream.messages.len() as u64;
                    if strict {
                        assert_eq!(
                            next, acked,
                            "step {step}: {name} lost acknowledged messages"
                        );
                    } else {
                        assert!(next <= acked, "step {step}: {name} grew");
                        assert!(
                            next <= stream.first || next == 0 || stream.batch_ends.contains(&next),
                            "step {step}: {name} recovered part of a batch ({next})"
                        );
                        if next >= stream.first {
                            stream.messages.truncate(next as usize);
                            stream.batch_ends.retain(|&end| end <= next);
                        }
                    }
                    check_reopened_groups(&streams, name, stream, strict, step);
                }
            }
        }
    }
    for (name, stream) in &model {
        check_stream(&streams, name, stream, &mut rng);
        check_groups(&streams, name, stream);
    }
}

#[test]
fn streams_match_the_model_across_crashes() {
    let seeds: Vec<u64> = match std::env::var("CAIRN_STREAM_SEED") {
        Ok(seed) => vec![seed.parse().expect("CAIRN_STREAM_SEED is a u64")],
        Err(_) => (1..=6).map(|index| 0x5EED_0000 + index).collect(),
    };
    let policies = [
        SyncPolicy::Strict,
        SyncPolicy::Buffered {
            flush_interval: Duration::from_millis(2),
            buffer_bytes_max: 2048,
        },
    ];
    for seed in seeds {
        for sync in &policies {
            assert!(
                catch_unwind(AssertUnwindSafe(|| run(seed, sync))).is_ok(),
                "model test failed: seed {seed}, {sync:?}; rerun with CAIRN_STREAM_SEED={seed}"
            );
        }
    }
}

//! Shared by the crash and fault tests: a seeded workload, the reference states it must
//! produce, and the check that a recovered database is exactly one of those states.
//!
//! Every commit gets the next version, so the model keeps the full expected contents after
//! each version: `states[v]` is what a database at version `v` must hold. A recovered
//! database at version `v` is correct when it holds exactly `states[v]` (a prefix of the
//! commit order) and `v` is at least the number of acknowledged commits (Strict: nothing
//! acknowledged is lost). Drivers return `Err(description)` instead of panicking, so the
//! broken-build test can assert that each deliberately broken build is caught.
//!
//! `in_memory` holds the feature tests' helpers: in-memory databases on a manual clock.

#![allow(dead_code)]

pub mod in_memory;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability, Expected, Options, WriteBatch};
use cairn_testkit::fault_fs::{CrashMode, FaultFs, UnsyncedDirOps, UnsyncedWrites};
use cairn_testkit::SplitMix64;

/// Contents of a database: key -> value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of a workload.
#[derive(Clone, Debug)]
pub enum Step {
    Put(Vec<u8>, Vec<u8>),
    /// A put with a TTL long enough that the key outlives the test.
    PutTtl(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    ClearPrefix(Vec<u8>),
    /// Compare-and-swap expecting the key's current value (or absence); with `stale`, a
    /// value it does not hold, so the swap fails and commits nothing.
    Cas {
        key: Vec<u8>,
        new: Vec<u8>,
        stale: bool,
    },
    /// `increment` of a counter key (`n/NN`, decimal text).
    Increment(Vec<u8>, i64),
    /// A transaction that reads `read` and then writes every entry (one commit).
    Transaction {
        read: Vec<u8>,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    },
    Checkpoint,
}

/// The TTL of `Step::PutTtl`: far beyond any test, so the key stays live and its deadline
/// must survive recovery with it.
pub const LONG_TTL: Duration = Duration::from_secs(24 * 3_600);

/// A deterministic workload over a small key space, with values big enough to rotate 4 KiB
/// segments often, and a checkpoint every so often.
pub fn workload(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SplitMix64::new(seed);
    let key = |rng: &mut SplitMix64| {
        let prefix = ["a/", "b/", "c/"][rng.below(3)];
        format!("{prefix}{:02}", rng.below(24)).into_bytes()
    };
    let value = |rng: &mut SplitMix64, step: usize| {
        let len = [0, 8, 40, 300, 1_200][rng.below(5)];
        let mut bytes = format!("v{step}:").into_bytes();
        bytes.resize(bytes.len() + len, [b'x', b'y', b'z'][step % 3]);
        bytes
    };
    (0..steps)
        .map(|step| match rng.below(28) {
            0..=7 => Step::Put(key(&mut rng), value(&mut rng, step)),
            20..=21 => Step::PutTtl(key(&mut rng), value(&mut rng, step)),
            22..=23 => Step::Cas {
                key: key(&mut rng),
                new: value(&mut rng, step),
                stale: rng.below(4) == 0,
            },
            24..=25 => Step::Increment(
                format!("n/{:02}", rng.below(4)).into_bytes(),
                i64::try_from(rng.below(1_000)).unwrap_or(1) - 500,
            ),
            26..=27 => Step::Transaction {
                read: key(&mut rng),
                writes: (0..=rng.below(3))
                    .map(|index| {
                        let written = key(&mut rng);
                        if index > 0 && rng.below(3) == 0 {
                            (written, None)
                        } else {
                            (written, Some(value(&mut rng, step)))
                        }
                    })
                    .collect(),
            },
            8..=12 => Step::Delete(key(&mut rng)),
            13..=16 => {
                let writes = (0..=rng.below(5))
                    .map(|_| {
                        let k = key(&mut rng);
                        if rng.below(4) == 0 {
                            (k, None)
                        } else {
                            (k, Some(value(&mut rng, step)))
                        }
                    })
                    .collect();
                Step::Batch(writes)
            }
            17 => Step::ClearPrefix(["a/", "b/", "c/"][rng.below(3)].as_bytes().to_vec()),
            _ => Step::Checkpoint,
        })
        .collect()
}

/// What running a workload against a database produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `states[v]`: the expected contents at version `v` (`states[0]` is empty).
    pub states: Vec<State>,
    /// Commits acknowledged with `Ok`.
    pub acknowledged: u64,
    /// True when a step failed (the workload stopped there).
    pub failed: bool,
    /// The error that stopped it.
    pub error: Option<String>,
}

impl Outcome {
    /// The highest version a recovered database may legitimately show: every acknowledged
    /// commit plus the one in flight when the failure hit.
    pub fn attempted(&self) -> u64 {
        (self.states.len() as u64 - 1).max(self.acknowledged)
    }
}

/// Runs `steps` on `db` until the first error, recording the expected state after each
/// commit. A step that would commit nothing in the engine commits nothing in the model.
#[expect(
    clippy::too_many_lines,
    reason = "one match arm per kind of step, each a few lines: the model next to the call"
)]
pub fn run(db: &Db, steps: &[Step]) -> Outcome {
    let mut outcome = Outcome {
        states: vec![State::new()],
        ..Outcome::default()
    };
    for step in steps {
        let current = outcome.states.last().cloned().unwrap_or_default();
        let mut next = current.clone();
        let result: Result<bool, cairn::Error> = match step {
            Step::Put(key, value) => {
                next.insert(key.clone(), value.clone());
                outcome.states.push(next.clone());
                db.put(key, value).map(|_| true)
            }
            Step::PutTtl(key, value) => {
                next.insert(key.clone(), value.clone());
                outcome.states.push(next.clone());
                db.put_with_ttl(key, value, LONG_TTL).map(|_| true)
            }
            Step::Cas { key, new, stale } => {
                let held = current.get(key).cloned();
                let wrong = held.clone().map_or_else(
                    || b"absent".to_vec(),
                    |mut held| {
                        held.push(b'!');
                        held
                    },
                );
                let expected = match (&held, stale) {
                    (_, true) => Expected::Value(&wrong),
                    (Some(value), false) => Expected::Value(value),
                    (None, false) => Expected::Absent,
                };
                if !stale {
                    next.insert(key.clone(), new.clone());
                    outcome.states.push(next.clone());
                }
                db.compare_and_swap(key, expected, Some(new))
                    .map(|swapped| swapped.is_swapped())
            }
            Step::Increment(key, delta) => {
                let held = current.get(key).map_or(0, |value| {
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.parse::<i64>().ok())
                        .unwrap_or(0)
                });
                next.insert(key.clone(), (held + delta).to_string().into_bytes());
                outcome.states.push(next.clone());
                db.increment(key, *delta).map(|_| true)
            }
            Step::Transaction { read, writes } => {
                for (key, value) in writes {
                    match value {
                        Some(value) => next.insert(key.clone(), value.clone()),
                        None => next.remove(key),
                    };
                }
                outcome.states.push(next.clone());
                db.transaction(|tx| {
                    tx.get(read)?;
                    for (key, value) in writes {
                        match value {
                            Some(value) => tx.put(key, value)?,
                            None => tx.delete(key)?,
                        }
                    }
                    Ok(())
                })
                .map(|()| true)
            }
            Step::Delete(key) => {
                if next.remove(key).is_some() {
                    outcome.states.push(next.clone());
                }
                db.delete(key)
            }
            Step::Batch(writes) => {
                let mut batch = WriteBatch::new();
                for (key, value) in writes {
                    if let Some(value) = value {
                        batch.put(key, value);
                        next.insert(key.clone(), value.clone());
                    } else {
                        batch.delete(key);
                        next.remove(key);
                    }
                }
                outcome.states.push(next.clone());
                db.write(&batch).map(|_| true)
            }
            Step::ClearPrefix(prefix) => {
                next.retain(|key, _| !key.starts_with(prefix));
                if next.len() != current.len() {
                    outcome.states.push(next.clone());
                }
                db.clear_prefix(prefix).map(|cleared| cleared > 0)
            }
            Step::Checkpoint => db.checkpoint().map(|_| false),
        };
        match result {
            Ok(committed) => {
                if committed {
                    outcome.acknowledged += 1;
                }
                let expected = outcome.states.len() as u64 - 1;
                if outcome.acknowledged != expected {
                    outcome.failed = true;
                    outcome.error = Some(format!(
                        "model and engine disagree on what commits: {} acknowledged, {expected} expected",
                        outcome.acknowledged
                    ));
                    return outcome;
                }
            }
            Err(error) => {
                outcome.failed = true;
                outcome.error = Some(error.to_string());
                return outcome;
            }
        }
    }
    outcome
}

/// Every live key and value, in order.
pub fn contents(db: &Db) -> Result<State, String> {
    let scan = db.range::<&[u8]>(..).map_err(|error| error.to_string())?;
    Ok(scan
        .map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect())
}

/// Checks that `db` holds exactly `states[v]` for its version `v`, and that `v` lies between
/// `lowest` (what must have survived) and the highest version attempted.
pub fn check_recovered(db: &Db, outcome: &Outcome, lowest: u64) -> Result<u64, String> {
    let version = db.version().get();
    if version < lowest {
        return Err(format!(
            "lost acknowledged commits: recovered version {version}, but {lowest} were acknowledged"
        ));
    }
    if version > outcome.attempted() {
        return Err(format!(
            "recovered version {version} is beyond the {} commits attempted",
            outcome.attempted()
        ));
    }
    let expected = &outcome.states[usize::try_from(version).map_err(|e| e.to_string())?];
    let found = contents(db)?;
    if &found != expected {
        let wrong: Vec<String> = expected
            .keys()
            .chain(found.keys())
            .filter(|key| expected.get(*key) != found.get(*key))
            .take(3)
            .map(|key| String::from_utf8_lossy(key).into_owned())
            .collect();
        return Err(format!(
            "recovered version {version} holds the wrong contents (first differing keys: {wrong:?}); \
             not a prefix of the commit order"
        ));
    }
    Ok(version)
}

/// The directory every fault-file-system database lives in.
pub const DB_DIR: &str = "/db";

/// Options for a database on `fs`: small segments so that rotation happens often, no
/// background threads, so every I/O call happens on the test's thread in a fixed order.
pub fn fault_options(fs: &Arc<FaultFs>, durability: Durability) -> Options {
    let file_system: Arc<dyn cairn::FileSystem> = fs.clone();
    Options::new(Path::new(DB_DIR))
        .durability(durability)
        .file_system(file_system)
        .wal_segment_bytes(4_096)
        .maintenance_interval(Duration::ZERO)
}

/// The crash modes the matrix cycles through: a plain power cut, a torn last write, and
/// lost directory entries with file data kept.
pub fn crash_mode(index: u64) -> CrashMode {
    match index % 3 {
        0 => CrashMode::POWER_LOSS,
        1 => CrashMode {
            writes: UnsyncedWrites::TornLast { seed: index },
            dir_ops: UnsyncedDirOps::Kept,
        },
        _ => CrashMode {
            writes: UnsyncedWrites::Kept,
            dir_ops: UnsyncedDirOps::Lost,
        },
    }
}

/// Counts of what a matrix run checked.
#[derive(Debug, Default, Clone, Copy)]
pub struct MatrixCounts {
    pub crash_points: u64,
    pub recovery_crash_points: u64,
    pub acknowledged_checked: u64,
    /// WAL segments the fault-free run made from retired files (renames of `*.wal.free`).
    pub segments_recycled: u64,
}

/// Power loss at every I/O point of a workload (every `stride`-th point), with a second crash
/// during recovery at every `recovery_stride`-th crash point. `make_options` turns a file
/// system into the options under test (so a broken build can be switched on).
pub fn power_loss_matrix(
    seed: u64,
    steps: usize,
    stride: u64,
    recovery_stride: u64,
    make_options: &dyn Fn(&Arc<FaultFs>) -> Options,
) -> Result<MatrixCounts, String> {
    let plan = workload(seed, steps);
    let dry = Arc::new(FaultFs::new());
    let db = Db::open(make_options(&dry)).map_err(|error| format!("dry open: {error}"))?;
    let dry_outcome = run(&db, &plan);
    if let Some(error) = dry_outcome.error {
        return Err(format!("the workload fails without any fault: {error}"));
    }
    drop(db);
    let points = dry.mutation_count();
    let mut counts = MatrixCounts {
        segments_recycled: dry
            .op_log()
            .iter()
            .filter(|record| {
                record.op == cairn_testkit::fault_fs::Op::Rename
                    && record.path.to_string_lossy().ends_with(".wal.free")
            })
            .count() as u64,
        ..MatrixCounts::default()
    };
    let mut point = 0;
    while point <= points {
        let fs = Arc::new(FaultFs::new());
        fs.freeze_after_mutations(point);
        let outcome = match Db::open(make_options(&fs)) {
            Ok(db) => {
                let outcome = run(&db, &plan);
                drop(db);
                outcome
            }
            // Frozen before the database could even be created: nothing was acknowledged.
            Err(_) => Outcome {
                states: vec![State::new()],
                ..Outcome::default()
            },
        };
        let image = fs.crash(crash_mode(point));
        let context = |what: &str| {
            format!(
                "crash at I/O point {point} of {points} ({:?}): {what}",
                crash_mode(point)
            )
        };
        let db = Db::open(make_options(&image))
            .map_err(|error| context(&format!("recovery failed: {error}")))?;
        check_recovered(&db, &outcome, outcome.acknowledged).map_err(|error| context(&error))?;
        drop(db);
        counts.crash_points += 1;
        counts.acknowledged_checked += outcome.acknowledged;

        if recovery_stride > 0 && point % recovery_stride == 0 {
            // Crash again at every I/O point of recovery itself, then recover once more.
            let probe = image.crash(CrashMode::POWER_LOSS);
            let before = probe.mutation_count();
            drop(Db::open(make_options(&probe)).map_err(|error| context(&error.to_string()))?);
            let recovery_points = probe.mutation_count() - before;
            for recovery_point in 0..recovery_points {
                let second = image.crash(CrashMode {
                    writes: UnsyncedWrites::Kept,
                    dir_ops: UnsyncedDirOps::Kept,
                });
                second.freeze_after_mutations(recovery_point);
                drop(Db::open(make_options(&second)));
                let third = second.crash(crash_mode(recovery_point));
                let db = Db::open(make_options(&third)).map_err(|error| {
                    context(&format!(
                        "recovery after a crash at recovery I/O point {recovery_point}: {error}"
                    ))
                })?;
                check_recovered(&db, &outcome, outcome.acknowledged).map_err(|error| {
                    context(&format!(
                        "after a crash at recovery I/O point {recovery_point}: {error}"
                    ))
                })?;
                counts.recovery_crash_points += 1;
            }
        }
        point += stride;
    }
    Ok(counts)
}

/// What the WAL bit-flip matrix saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlipCounts {
    pub flips: u64,
    pub corrupted: u64,
    pub last_commit_dropped: u64,
}

/// Every single-bit flip in the written part of every WAL segment of a small Strict database
/// whose commits were all acknowledged. Recovery must either report `Corrupted` naming a file,
/// or bring back everything except at most the last commit (a flip in the final frame looks
/// exactly like a torn write). Anything shorter is a CRC failure silently taken for the end
/// of the log: acknowledged commits lost.
pub fn wal_bit_flip_matrix(
    make_options: &dyn Fn(&Arc<FaultFs>) -> Options,
) -> Result<FlipCounts, String> {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(make_options(&fs)).map_err(|error| format!("open: {error}"))?;
    let plan: Vec<Step> = workload(5, 24)
        .into_iter()
        .filter(|step| !matches!(step, Step::Checkpoint))
        .collect();
    let outcome = run(&db, &plan);
    if let Some(error) = &outcome.error {
        return Err(format!("workload failed without faults: {error}"));
    }
    db.close().map_err(|error| format!("close: {error}"))?;
    let committed = outcome.states.len() as u64 - 1;
    let keep = CrashMode {
        writes: UnsyncedWrites::Kept,
        dir_ops: UnsyncedDirOps::Kept,
    };
    let mut counts = FlipCounts::default();
    let mut segments: Vec<std::path::PathBuf> = fs
        .list_files()
        .into_iter()
        .filter(|path| path.to_string_lossy().ends_with(".wal"))
        .collect();
    segments.sort();
    for segment in &segments {
        let bytes = fs.read_file(segment).ok_or("segment vanished")?;
        let written = bytes
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |at| at + 1) as u64;
        for bit in 0..written * 8 {
            let image = fs.crash(keep);
            image
                .flip_bit(segment, bit)
                .map_err(|error| format!("flip: {error}"))?;
            counts.flips += 1;
            let context = format!("bit {bit} of {}", segment.display());
            match Db::open(make_options(&image)) {
                Ok(db) => {
                    let version = check_recovered(&db, &outcome, committed.saturating_sub(1))
                        .map_err(|error| format!("{context}: {error}"))?;
                    if version < committed {
                        counts.last_commit_dropped += 1;
                    }
                }
                Err(cairn::Error::Corrupted { file, .. }) => {
                    if file.as_os_str().is_empty() {
                        return Err(format!("{context}: Corrupted names no file"));
                    }
                    counts.corrupted += 1;
                }
                Err(error) => return Err(format!("{context}: recovery failed: {error}")),
            }
        }
    }
    Ok(counts)
}

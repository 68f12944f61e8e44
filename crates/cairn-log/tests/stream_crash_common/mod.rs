//! Shared by the stream crash tests on the fault-injecting file system: a seeded workload over
//! three streams (create, delete, single and batch appends, `truncate_before`, store-wide
//! `sync`), small segments so that it rotates often, the model states it may leave behind,
//! and the check that a recovered store holds one of them.
//!
//! The model is per stream name: a list of candidate states (absent, or first offset and
//! messages). An acknowledged step applies to every candidate; a failed step that may have
//! taken effect (the caller decides which) adds the candidates where it did. A recovered
//! stream must equal a candidate exactly in Strict mode; in Buffered mode its first offset must
//! equal the candidate's and its messages must be a prefix of the candidate's, ending at a
//! batch boundary, at least as long as what was made durable for sure (a `sync`, a
//! `truncate_before` or the creation acknowledged).
//!
//! Every message's content is a function of (stream name, incarnation, offset), so a message
//! moved, duplicated or mixed up with another stream's never compares equal.
//! Checks return `Err(description)` instead of panicking, so a test can assert that a broken
//! build is caught.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_log::stream::StreamError;
use cairn_log::{
    Clock, DirLock, FileHandle, FileSystem, LogError, Message, OpenMode, StreamOptions, Streams,
    SyncPolicy,
};
use cairn_testkit::{CrashMode, FaultFs, SplitMix64, UnsyncedDirOps, UnsyncedWrites};

/// The store's directory on the fault-injecting file system.
pub const STORE_DIR: &str = "/streams";

/// The stream names of the workload.
pub const NAMES: [&str; 3] = ["orders", "audit.log", "metrics-1"];

/// One step of a workload. Offsets and message contents are fixed when the plan is made,
/// from the model of a run in which every step succeeds.
#[derive(Clone, Debug)]
pub enum Step {
    Create(usize),
    Delete(usize),
    /// `append` (one message) when it holds one message, else `append_batch`.
    Append {
        stream: usize,
        messages: Vec<Message>,
        /// The offset the first message gets when every step succeeds.
        first_offset: u64,
        single: bool,
    },
    TruncateBefore(usize, u64),
    Sync,
}

/// A short description of a step, for failure messages.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Create(stream) => format!("create {}", NAMES[*stream]),
        Step::Delete(stream) => format!("delete {}", NAMES[*stream]),
        Step::Append {
            stream,
            messages,
            first_offset,
            single,
        } => format!(
            "{} of {} message(s) to {} at {first_offset}",
            if *single { "append" } else { "append_batch" },
            messages.len(),
            NAMES[*stream]
        ),
        Step::TruncateBefore(stream, offset) => {
            format!("truncate_before {} {offset}", NAMES[*stream])
        }
        Step::Sync => "sync".to_owned(),
    }
}

/// The content of message `offset` of incarnation `incarnation` of stream `stream`.
pub fn message_at(stream: usize, incarnation: u64, offset: u64) -> Message {
    let pad = usize::try_from((offset * 7_919 + incarnation * 31) % 240).unwrap_or(0);
    let mut value = format!("{}#{incarnation}@{offset}|", NAMES[stream % NAMES.len()]).into_bytes();
    value.extend(std::iter::repeat_n(
        b'a' + u8::try_from(offset % 26).unwrap_or(0),
        pad,
    ));
    let mut message = Message::value(value);
    if offset.is_multiple_of(3) {
        message = message.with_key(offset.to_le_bytes().to_vec());
    }
    if offset.is_multiple_of(5) {
        message = message.with_header("n", format!("{incarnation}"));
    }
    message
}

/// One stream of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelStream {
    pub first: u64,
    pub messages: Vec<Message>,
    /// Offsets at which batches end: a crash keeps whole batches.
    pub batch_ends: Vec<u64>,
    /// Messages durable for sure (Buffered mode loses at most the ones above).
    pub floor: u64,
}

impl ModelStream {
    fn new() -> Self {
        ModelStream {
            first: 0,
            messages: Vec::new(),
            batch_ends: Vec::new(),
            floor: 0,
        }
    }

    fn next(&self) -> u64 {
        self.messages.len() as u64
    }
}

/// The state of one name: absent or a stream.
pub type Candidate = Option<ModelStream>;

/// A deterministic workload of `steps` steps: mostly appends, now and then a create, delete,
/// truncation or store-wide sync. Streams are created before they are used.
pub fn workload(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SplitMix64::new(seed);
    let mut model: Vec<Option<(u64, u64, u64)>> = vec![None; NAMES.len()]; // (incarnation, first, next)
    let mut incarnations = [0_u64; NAMES.len()];
    let mut plan = Vec::with_capacity(steps);
    for (stream, slot) in model.iter_mut().enumerate() {
        plan.push(Step::Create(stream));
        *slot = Some((0, 0, 0));
    }
    while plan.len() < steps {
        let stream = rng.below(NAMES.len());
        let roll = rng.below(100);
        let Some((incarnation, first, next)) = model[stream] else {
            if roll < 40 {
                incarnations[stream] += 1;
                model[stream] = Some((incarnations[stream], 0, 0));
                plan.push(Step::Create(stream));
            }
            continue;
        };
        match roll {
            0..=2 => {
                model[stream] = None;
                plan.push(Step::Delete(stream));
            }
            3..=8 if next > first => {
                let offset =
                    first + 1 + rng.below(usize::try_from(next - first).unwrap_or(1)) as u64;
                model[stream] = Some((incarnation, offset, next));
                plan.push(Step::TruncateBefore(stream, offset));
            }
            9..=11 => plan.push(Step::Sync),
            _ => {
                let count = if rng.below(3) == 0 {
                    1
                } else {
                    1 + rng.below(6)
                };
                let single = count == 1 && rng.below(2) == 0;
                let messages = (next..next + count as u64)
                    .map(|offset| message_at(stream, incarnation, offset))
                    .collect();
                model[stream] = Some((incarnation, first, next + count as u64));
                plan.push(Step::Append {
                    stream,
                    messages,
                    first_offset: next,
                    single,
                });
            }
        }
    }
    plan
}

/// How one step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    Acknowledged,
    /// `delete` returned `Ok(false)`: the store knew no such stream and wrote nothing.
    NothingToDelete,
    /// Failed; `maybe_applied` is false when the error proves nothing was written (the
    /// stream was poisoned, absent or the argument refused).
    Failed {
        error: String,
        maybe_applied: bool,
    },
}

/// What running a workload did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub results: Vec<StepResult>,
    /// Acknowledged appended messages.
    pub acknowledged_messages: u64,
}

impl Outcome {
    /// The index of the first failed step.
    pub fn first_failure(&self) -> Option<usize> {
        self.results
            .iter()
            .position(|result| matches!(result, StepResult::Failed { .. }))
    }
}

/// True when `error` proves that the failed call wrote nothing.
pub fn wrote_nothing(error: &StreamError) -> bool {
    matches!(
        error,
        StreamError::NotFound { .. }
            | StreamError::AlreadyExists { .. }
            | StreamError::InvalidArgument { .. }
            | StreamError::InvalidName { .. }
            | StreamError::Truncated { .. }
            | StreamError::Log(LogError::Poisoned { .. } | LogError::Closed)
    )
}

fn failed(error: &StreamError) -> StepResult {
    StepResult::Failed {
        error: error.to_string(),
        maybe_applied: !wrote_nothing(error),
    }
}

/// Runs every step of `plan` (failures do not stop it), recording how each ended. An
/// acknowledged append must get exactly the offsets the plan expects.
pub fn run(streams: &Streams, plan: &[Step]) -> Outcome {
    let mut outcome = Outcome::default();
    for step in plan {
        let result = match step {
            Step::Create(stream) => streams.create(NAMES[*stream]).map(drop),
            Step::Delete(stream) => match streams.delete(NAMES[*stream]) {
                Ok(false) => {
                    outcome.results.push(StepResult::NothingToDelete);
                    continue;
                }
                other => other.map(drop),
            },
            Step::TruncateBefore(stream, offset) => {
                streams.truncate_before(NAMES[*stream], *offset)
            }
            Step::Sync => streams.sync(),
            Step::Append {
                stream,
                messages,
                first_offset,
                single,
            } => {
                let name = NAMES[*stream];
                let appended = if *single {
                    streams
                        .append(name, &messages[0])
                        .map(|offset| offset..offset + 1)
                } else {
                    streams.append_batch(name, messages)
                };
                match appended {
                    Ok(range)
                        if range == (*first_offset..*first_offset + messages.len() as u64) =>
                    {
                        outcome.acknowledged_messages += messages.len() as u64;
                        Ok(())
                    }
                    Ok(range) => {
                        outcome.results.push(StepResult::Failed {
                            error: format!(
                                "acknowledged at offsets {range:?}, the plan expected {first_offset}.."
                            ),
                            maybe_applied: true,
                        });
                        continue;
                    }
                    Err(error) => Err(error),
                }
            }
        };
        outcome.results.push(match result {
            Ok(()) => StepResult::Acknowledged,
            Err(error) => failed(&error),
        });
    }
    outcome
}

/// Applies `step` to one candidate. `acknowledged` raises the durable floor.
fn apply(step: &Step, candidate: &Candidate, acknowledged: bool) -> Candidate {
    let mut next = candidate.clone();
    match step {
        Step::Create(_) => {
            if next.is_none() {
                next = Some(ModelStream::new());
            }
        }
        Step::Delete(_) => next = None,
        Step::Append { messages, .. } => {
            if let Some(model) = &mut next {
                model.messages.extend(messages.iter().cloned());
                let end = model.next();
                model.batch_ends.push(end);
            }
        }
        Step::TruncateBefore(_, offset) => {
            if let Some(model) = &mut next {
                if *offset <= model.next() && *offset > model.first {
                    model.first = *offset;
                }
                if acknowledged {
                    model.floor = model.floor.max(model.next());
                }
            }
        }
        Step::Sync => {
            if let Some(model) = &mut next {
                if acknowledged {
                    model.floor = model.next();
                }
            }
        }
    }
    next
}

fn step_stream(step: &Step) -> Option<usize> {
    match step {
        Step::Create(stream)
        | Step::Delete(stream)
        | Step::TruncateBefore(stream, _)
        | Step::Append { stream, .. } => Some(*stream),
        Step::Sync => None,
    }
}

/// The most candidates one name may have; more means the fault made the model useless.
const CANDIDATES_MAX: usize = 4_096;

/// The candidate states of every name after `plan` ended as `outcome` says. A failed step
/// branches (may or may not have taken effect) when `branches(index, result)` says so.
pub fn candidates(
    plan: &[Step],
    outcome: &Outcome,
    branches: &dyn Fn(usize, &StepResult) -> bool,
) -> Vec<Vec<Candidate>> {
    let mut all: Vec<Vec<Candidate>> = vec![vec![None]; NAMES.len()];
    for (index, (step, result)) in plan.iter().zip(&outcome.results).enumerate() {
        let streams: Vec<usize> =
            step_stream(step).map_or_else(|| (0..NAMES.len()).collect(), |s| vec![s]);
        for stream in streams {
            let current = &mut all[stream];
            match result {
                StepResult::Acknowledged => {
                    for candidate in current.iter_mut() {
                        *candidate = apply(step, candidate, true);
                    }
                }
                StepResult::Failed { .. } if branches(index, result) => {
                    let extra: Vec<Candidate> = current
                        .iter()
                        .map(|candidate| apply(step, candidate, false))
                        .collect();
                    current.extend(extra);
                }
                StepResult::Failed { .. } | StepResult::NothingToDelete => {}
            }
            let mut unique: Vec<Candidate> = Vec::new();
            for candidate in current.drain(..) {
                if !unique.contains(&candidate) {
                    unique.push(candidate);
                }
            }
            assert!(
                unique.len() <= CANDIDATES_MAX,
                "{} candidate states for {}: the fault made the model useless",
                unique.len(),
                NAMES[stream]
            );
            *current = unique;
        }
    }
    all
}

/// A recovered stream: first offset and the messages from it to the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    pub first: u64,
    pub next: u64,
    pub messages: Vec<Message>,
}

/// Reads every stream of an open store whole, checking that offsets are dense.
pub fn read_store(streams: &Streams) -> Result<BTreeMap<String, Recovered>, String> {
    let mut found = BTreeMap::new();
    for name in streams.list() {
        let info = streams
            .info(&name)
            .map_err(|error| format!("info {name}: {error}"))?;
        let mut messages = Vec::new();
        let mut offset = info.first_offset;
        while offset < info.next_offset {
            let chunk = streams
                .read_range(&name, offset, 10_000, usize::MAX)
                .map_err(|error| format!("read_range {name} from {offset}: {error}"))?;
            if chunk.is_empty() {
                return Err(format!(
                    "{name}: read_range from {offset} is empty below the next offset {}",
                    info.next_offset
                ));
            }
            for stored in chunk {
                if stored.offset != offset {
                    return Err(format!(
                        "{name}: offsets not dense: {} where {offset} was expected",
                        stored.offset
                    ));
                }
                messages.push(stored.message);
                offset += 1;
            }
        }
        if offset != info.next_offset {
            return Err(format!(
                "{name}: read up to {offset}, but the next offset is {}",
                info.next_offset
            ));
        }
        found.insert(
            name,
            Recovered {
                first: info.first_offset,
                next: info.next_offset,
                messages,
            },
        );
    }
    Ok(found)
}

/// True when `recovered` is `candidate` (Strict) or a Buffered-acceptable prefix of it.
fn matches(recovered: &Recovered, candidate: &ModelStream, strict: bool) -> bool {
    if recovered.first != candidate.first || recovered.next < recovered.first {
        return false;
    }
    let Some(expected) = candidate
        .messages
        .get(to_index(recovered.first)..to_index(recovered.next))
    else {
        return false;
    };
    if expected != recovered.messages.as_slice() {
        return false;
    }
    if strict {
        return recovered.next == candidate.next();
    }
    recovered.next >= candidate.floor
        && (recovered.next == 0 || candidate.batch_ends.contains(&recovered.next))
}

fn to_index(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// Checks that every stream of `streams` is one of its candidate states.
pub fn check_recovered(
    streams: &Streams,
    candidates: &[Vec<Candidate>],
    strict: bool,
) -> Result<(), String> {
    let found = read_store(streams)?;
    for name in found.keys() {
        if !NAMES.contains(&name.as_str()) {
            return Err(format!("unexpected stream {name:?}"));
        }
    }
    for (stream, name) in NAMES.iter().enumerate() {
        let options = &candidates[stream];
        let ok = match found.get(*name) {
            None => options.iter().any(Option::is_none),
            Some(recovered) => options
                .iter()
                .flatten()
                .any(|c| matches(recovered, c, strict)),
        };
        if !ok {
            let describe = |candidate: &Candidate| match candidate {
                None => "absent".to_owned(),
                Some(model) => format!(
                    "{}..{} (durable for sure up to {})",
                    model.first,
                    model.next(),
                    model.floor
                ),
            };
            let found = found.get(*name).map_or_else(
                || "absent".to_owned(),
                |recovered| format!("{}..{}", recovered.first, recovered.next),
            );
            let expected: Vec<String> = options.iter().map(describe).collect();
            return Err(format!(
                "stream {name}: recovered {found}, which is none of the states the acknowledged \
                 operations allow: {expected:?}{}",
                if strict {
                    " (lost or invented acknowledged data)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

#[cfg(feature = "sabotage")]
thread_local! {
    /// The broken build the stores this thread opens run (`Sabotage::None` unless a test
    /// that must catch one sets it).
    pub static SABOTAGE: std::cell::Cell<cairn_log::Sabotage> =
        const { std::cell::Cell::new(cairn_log::Sabotage::None) };
}

/// Options of the crash tests: small segments (rotation every few appends), a sparse index
/// and no in-memory tail, so that reads after recovery go to disk, and a fixed clock.
pub fn stream_options(sync: SyncPolicy) -> StreamOptions {
    let mut options = StreamOptions::new(sync);
    #[cfg(feature = "sabotage")]
    {
        options.sabotage = SABOTAGE.with(std::cell::Cell::get);
    }
    options.segment_bytes = 4_096;
    options.index_interval_bytes = 512;
    options.tail_bytes_max = 0;
    options.clock = Clock::new(|| 1_700_000_000_000);
    options
}

/// Buffered mode with a short interval and a small buffer, so flushes happen while the
/// workload runs as well as at syncs.
pub fn buffered() -> SyncPolicy {
    SyncPolicy::Buffered {
        flush_interval: Duration::from_millis(2),
        buffer_bytes_max: 1_024,
    }
}

/// Opens the store on `fs`.
pub fn open(fs: Arc<dyn FileSystem>, sync: SyncPolicy) -> Result<Streams, StreamError> {
    Streams::open(fs, Path::new(STORE_DIR), stream_options(sync))
}

/// The crash modes the matrix cycles through: a plain power cut, a torn last write with
/// directory entries kept, and file data kept with unsynced directory entries lost.
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

/// Everything a crash can keep: a copy of the file system as it is.
pub const KEEP_ALL: CrashMode = CrashMode {
    writes: UnsyncedWrites::Kept,
    dir_ops: UnsyncedDirOps::Kept,
};

/// Turns the fault-injecting file system into the one the store runs on (a broken build can
/// wrap it).
pub type MakeFs<'a> = &'a dyn Fn(&Arc<FaultFs>) -> Arc<dyn FileSystem>;

/// The file system as it is.
pub fn plain_fs(fs: &Arc<FaultFs>) -> Arc<dyn FileSystem> {
    fs.clone()
}

/// A broken build, on the test side: `sync_data` of log segments returns success without
/// syncing, what `Sabotage::AckBeforeFsync` (through `StreamOptions::sabotage`) does inside
/// the log, seen from the file system. Every other call goes through.
#[derive(Debug)]
pub struct AckBeforeFsyncFs(pub Arc<dyn FileSystem>);

#[derive(Debug)]
struct AckBeforeFsyncFile {
    inner: Box<dyn FileHandle>,
    segment: bool,
}

impl FileHandle for AckBeforeFsyncFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.segment {
            Ok(())
        } else {
            self.inner.sync_data()
        }
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FileSystem for AckBeforeFsyncFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FileHandle>> {
        Ok(Box::new(AckBeforeFsyncFile {
            inner: self.0.open(path, mode)?,
            segment: path.extension().is_some_and(|extension| extension == "wal"),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir(path)
    }
    fn lock_dir(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.0.lock_dir(path)
    }
}

/// The broken build's file system.
pub fn ack_before_fsync_fs(fs: &Arc<FaultFs>) -> Arc<dyn FileSystem> {
    Arc::new(AckBeforeFsyncFs(fs.clone()))
}

/// Counts of what a matrix run checked.
#[derive(Debug, Default, Clone, Copy)]
pub struct MatrixCounts {
    pub crash_points: u64,
    pub recovery_crash_points: u64,
    pub acknowledged_checked: u64,
}

/// Opens the recovered store on `image`, checks it, then appends one message to every stream
/// and checks, after a clean reopen, that the appends are there after what was recovered.
fn recover_and_check(
    image: &Arc<FaultFs>,
    make_fs: MakeFs<'_>,
    sync: &SyncPolicy,
    candidates: &[Vec<Candidate>],
) -> Result<(), String> {
    let strict = matches!(sync, SyncPolicy::Strict);
    let streams =
        open(make_fs(image), sync.clone()).map_err(|error| format!("recovery failed: {error}"))?;
    check_recovered(&streams, candidates, strict)?;
    let before = read_store(&streams)?;
    for (name, recovered) in &before {
        let message = Message::value(format!("after recovery {name}"));
        let offset = streams
            .append(name, &message)
            .map_err(|error| format!("append to recovered {name}: {error}"))?;
        if offset != recovered.next {
            return Err(format!(
                "the recovered {name} ends at {} but the next append got offset {offset}",
                recovered.next
            ));
        }
    }
    streams
        .close()
        .map_err(|error| format!("close after recovery: {error}"))?;
    drop(streams);
    let streams = open(make_fs(image), sync.clone())
        .map_err(|error| format!("clean reopen after recovery failed: {error}"))?;
    let after = read_store(&streams)?;
    for (name, recovered) in &before {
        let mut expected = recovered.clone();
        expected.next += 1;
        expected
            .messages
            .push(Message::value(format!("after recovery {name}")));
        if after.get(name) != Some(&expected) {
            return Err(format!(
                "{name}: after an append to the recovered stream and a clean reopen it is {:?}, \
                 not the recovered {}..{} plus the new message",
                after.get(name).map(|found| (found.first, found.next)),
                recovered.first,
                recovered.next
            ));
        }
    }
    if after.len() != before.len() {
        return Err(format!(
            "a clean reopen after recovery changed the streams from {:?} to {:?}",
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// Power loss at every `stride`-th I/O point of `workload(seed, steps)` in `sync` mode, and
/// at every `recovery_stride`-th of those points (0: never) a second crash at every I/O
/// point of recovery itself. After each: the store opens and every stream is one of the
/// states the acknowledged operations allow; the recovered store accepts an append on every
/// stream and keeps it over a clean reopen.
pub fn power_loss_matrix(
    seed: u64,
    steps: usize,
    sync: &SyncPolicy,
    stride: u64,
    recovery_stride: u64,
    make_fs: MakeFs<'_>,
) -> Result<MatrixCounts, String> {
    let plan = workload(seed, steps);
    let dry = Arc::new(FaultFs::new());
    let streams =
        open(make_fs(&dry), sync.clone()).map_err(|error| format!("dry open: {error}"))?;
    let dry_outcome = run(&streams, &plan);
    if let Some(index) = dry_outcome.first_failure() {
        return Err(format!(
            "the workload fails without any fault at step {index}: {:?}",
            dry_outcome.results[index]
        ));
    }
    drop(streams);
    let points = dry.mutation_count();
    let mut counts = MatrixCounts::default();
    let mut point = 0;
    while point <= points {
        let fs = Arc::new(FaultFs::new());
        fs.freeze_after_mutations(point);
        let outcome = match open(make_fs(&fs), sync.clone()) {
            Ok(streams) => {
                let outcome = run(&streams, &plan);
                drop(streams);
                outcome
            }
            // Frozen before the store could open: nothing was acknowledged.
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
        // The file system froze at one call: only the step running then may have taken
        // effect without being acknowledged.
        let first_failure = outcome.first_failure();
        let candidates = candidates(&plan, &outcome, &|index, _| Some(index) == first_failure);
        let image = fs.crash(crash_mode(point));
        let context = |what: &str| {
            format!(
                "seed {seed}, {sync:?}: crash at I/O point {point} of {points} ({:?}), first \
                 failed step {first_failure:?} ({}): {what}",
                crash_mode(point),
                first_failure.map_or_else(|| "none".to_owned(), |index| describe(&plan[index])),
            )
        };
        recover_and_check(&image.crash(KEEP_ALL), make_fs, sync, &candidates)
            .map_err(|error| context(&error))?;
        counts.crash_points += 1;
        counts.acknowledged_checked += outcome.acknowledged_messages;

        if recovery_stride > 0 && point % recovery_stride == 0 {
            // Crash again at every I/O point of recovery itself, then recover once more.
            let probe = image.crash(KEEP_ALL);
            drop(open(make_fs(&probe), sync.clone()).map_err(|error| context(&error.to_string()))?);
            let recovery_points = probe.mutation_count();
            for recovery_point in 0..recovery_points {
                let second = image.crash(KEEP_ALL);
                second.freeze_after_mutations(recovery_point);
                drop(open(make_fs(&second), sync.clone()));
                let third = second.crash(crash_mode(recovery_point));
                recover_and_check(&third, make_fs, sync, &candidates).map_err(|error| {
                    context(&format!(
                        "after a second crash at recovery I/O point {recovery_point} of \
                         {recovery_points}: {error}"
                    ))
                })?;
                counts.recovery_crash_points += 1;
            }
        }
        point += stride;
    }
    Ok(counts)
}

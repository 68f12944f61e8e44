//! History, replay, diff, fork and retention.
//!
//! A run's history is its step records (`@a/r <run> h <step>`), one per commit, each listing
//! the commit's mutations with the values before and after; events and spans are append-only
//! records of their own, and a step records the event and span counts after it. So:
//! - [`Agent::replay_run`] folds steps `0..S` (from the newest usable pruned base, if any) and
//!   reads events `0..E` and spans `0..P` as of step `S`. It never reads the current KV, cell
//!   or document keys.
//! - A fork records `(parent, step, events, spans)`; its history, events and spans below that
//!   point are the parent's keys, read through the lineage, never copied. Its live KV, cells
//!   and documents (the current keys that head reads use) are written once, at fork time, from
//!   the replayed state: O(live state), not O(history).
//! - Pruning folds the oldest steps into a base record in the same commit that deletes them,
//!   and never past a step that a fork still reads.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn::{Snapshot, Version};
use serde_json::Value;

use crate::agent::{
    lineage_at, read_base, read_events_in, read_spans_in, read_step_in, Agent, Segment,
};
use crate::error::{Error, Result};
use crate::index::{index_hook, SearchDoc};
use crate::keys;
use crate::record::{Base, Cell, Event, Mutation, Op, Primitive, Span, Step};
use crate::run::{ForkPoint, RunId, RunInfo, RunSpec, RunStatus};

/// A point in a run's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The run's end (every step).
    End,
    /// After the first `n` steps (`Step(0)` is the empty run).
    Step(u64),
    /// Right after the commit that appended event `seq`.
    Event(u64),
    /// After every step committed at or before this engine version.
    Version(Version),
    /// After every step committed at or before this time (ms).
    Time(u64),
}

/// A run's complete state at one point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunState {
    /// Steps applied.
    pub steps: u64,
    /// KV pairs.
    pub kv: BTreeMap<Vec<u8>, Vec<u8>>,
    /// State cells.
    pub cells: BTreeMap<String, Cell>,
    /// JSON documents.
    pub docs: BTreeMap<String, Value>,
    /// Events, in sequence order.
    pub events: Vec<Event>,
    /// Spans, in id order.
    pub spans: Vec<Span>,
}

/// One step of history, with the engine version that committed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The step number.
    pub step: u64,
    /// The commit's engine version.
    pub version: Version,
    /// The step.
    pub record: Step,
}

/// How a key differs between two states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Only on the right.
    Added,
    /// Only on the left.
    Removed,
    /// On both, different.
    Changed,
}

/// One differing run-relative key. Values: KV bytes, the cell's value, a document's JSON text,
/// a span's encoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The primitive.
    pub primitive: Primitive,
    /// The run-relative key (KV key, cell or document name, span id big-endian).
    pub key: Vec<u8>,
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// The left value.
    pub left: Option<Vec<u8>>,
    /// The right value.
    pub right: Option<Vec<u8>>,
}

/// Where two event logs first differ, by hash and content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventDivergence {
    /// Events equal on both sides (same sequence, content and chain hash), from 0.
    pub common: u64,
    /// The left event at the first difference (`None` if the left log ends there).
    pub left: Option<Event>,
    /// The right event at the first difference.
    pub right: Option<Event>,
}

impl EventDivergence {
    /// Whether the logs are identical.
    pub fn is_same(&self) -> bool {
        self.left.is_none() && self.right.is_none()
    }
}

/// The difference between two states.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Differing keys, by primitive, then key.
    pub changes: Vec<Change>,
    /// The first event divergence.
    pub events: EventDivergence,
}

impl Diff {
    /// Whether the two states are the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.events.is_same()
    }
}

/// A retention policy for one run's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep the latest `n` steps replayable.
    KeepSteps(u64),
    /// Keep steps committed within this age.
    MaxAge(Duration),
}

/// What [`Agent::prune`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneReport {
    /// The oldest replayable step before.
    pub oldest_before: u64,
    /// The oldest replayable step now.
    pub oldest_after: u64,
    /// A fork that held pruning back, if one did.
    pub held_by_fork: Option<RunId>,
}

/// Archive-then-delete across runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepPolicy {
    /// Ended runs (completed, failed, cancelled) unchanged this long are archived.
    pub archive_after: Duration,
    /// Archived runs unchanged this long are deleted (unless forks depend on them).
    pub delete_after: Duration,
}

/// What [`Agent::sweep`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Runs archived.
    pub archived: Vec<RunId>,
    /// Runs deleted.
    pub deleted: Vec<RunId>,
    /// Runs due for deletion but kept because forks read their history.
    pub kept_for_forks: Vec<RunId>,
}

/// The storage a run owns (its own keys; history shared with a parent counts in the parent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSize {
    /// Event records.
    pub events: u64,
    /// History step records.
    pub steps: u64,
    /// Span records.
    pub spans: u64,
    /// Every key.
    pub keys: u64,
    /// Key and value bytes.
    pub bytes: u64,
}

impl Agent {
    /// Rebuilds the run's state at `at` by folding its history. [`Error::RunNotFound`] for an
    /// unknown run, [`Error::HistoryPruned`] before the oldest kept step.
    pub fn replay_run(&self, run: RunId, at: At) -> Result<RunState> {
        let snap = self.db().snapshot();
        Self::replay_in(&snap, run, at)
    }

    fn replay_in(snap: &Snapshot, run: RunId, at: At) -> Result<RunState> {
        let lineage = lineage_at(snap, run)?;
        let target = Self::resolve_point(snap, &lineage, at)?;
        Self::fold(snap, &lineage, target)
    }

    /// The step count after the run's last step.
    fn steps_end(snap: &Snapshot, lineage: &[Segment]) -> Result<u64> {
        let own = lineage
            .last()
            .ok_or(Error::corrupt("run", "empty lineage"))?;
        let mut end = own.lo.step;
        if let Some(b) = read_base(snap, own.run)? {
            end = end.max(b.step);
        }
        if let Some((k, _)) = snap
            .scan_prefix(keys::area(own.run, keys::STEP))
            .next_back()
        {
            let n = keys::trailing_u64(&k).ok_or(Error::corrupt("history step", "key"))?;
            end = end.max(n.saturating_add(1));
        }
        Ok(end)
    }

    /// The oldest step still stored (steps below it are folded into a base or shared).
    fn oldest_step(snap: &Snapshot, lineage: &[Segment]) -> Result<u64> {
        let mut oldest = 0;
        for seg in lineage {
            if let Some(b) = read_base(snap, seg.run)? {
                if b.step <= seg.hi.step {
                    oldest = oldest.max(b.step);
                }
            }
        }
        Ok(oldest)
    }

    fn resolve_point(snap: &Snapshot, lineage: &[Segment], at: At) -> Result<u64> {
        let run = lineage.last().map_or(RunId::from_u64(0), |s| s.run);
        let end = Self::steps_end(snap, lineage)?;
        match at {
            At::End => Ok(end),
            At::Step(n) if n <= end => Ok(n),
            At::Step(n) => Err(Error::PointOutOfRange { run, point: n }),
            At::Event(seq) => {
                let event = read_events_in(snap, lineage, seq, seq.saturating_add(1))?
                    .into_iter()
                    .next()
                    .ok_or(Error::PointOutOfRange { run, point: seq })?;
                Ok(event.step.saturating_add(1))
            }
            At::Version(v) => Self::search_steps(snap, lineage, end, |s, _| {
                step_version(snap, lineage, s).map(|sv| sv <= v)
            }),
            At::Time(t) => Self::search_steps(snap, lineage, end, |_, step| Ok(step.time_ms <= t)),
        }
    }

    /// The number of steps `s` in `oldest..end` for which `pred` holds, given that it holds
    /// for a prefix (versions and times only grow along a run's history).
    fn search_steps(
        snap: &Snapshot,
        lineage: &[Segment],
        end: u64,
        pred: impl Fn(u64, &Step) -> Result<bool>,
    ) -> Result<u64> {
        let oldest = Self::oldest_step(snap, lineage)?;
        let (mut lo, mut hi) = (oldest, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let step = read_step_in(snap, lineage, mid)?;
            if pred(mid, &step)? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == oldest && oldest > 0 {
            let run = lineage.last().map_or(RunId::from_u64(0), |s| s.run);
            return Err(Error::HistoryPruned { run, oldest });
        }
        Ok(lo)
    }

    /// Folds steps `..target` of the lineage into a state.
    fn fold(snap: &Snapshot, lineage: &[Segment], target: u64) -> Result<RunState> {
        let run = lineage.last().map_or(RunId::from_u64(0), |s| s.run);
        let mut base: Option<Base> = None;
        for seg in lineage {
            if let Some(b) = read_base(snap, seg.run)? {
                let usable = b.step >= seg.lo.step && b.step <= seg.hi.step.min(target);
                if usable && base.as_ref().is_none_or(|x| x.step < b.step) {
                    base = Some(b);
                }
            }
        }
        let mut state = RunState::default();
        let (mut events, mut spans, start) = match base {
            None => (0, 0, 0),
            Some(b) => {
                state.kv = b.kv;
                state.cells = b.cells;
                for (name, text) in b.docs {
                    let v = serde_json::from_slice(&text)
                        .map_err(|_| Error::corrupt("history base", "document not JSON"))?;
                    state.docs.insert(name, v);
                }
                (b.events_after, b.spans_after, b.step)
            }
        };
        let mut expected = start;
        for seg in lineage {
            let a = start.max(seg.lo.step);
            let b = target.min(seg.hi.step);
            if a >= b {
                continue;
            }
            let scan = snap.range(
                keys::numbered(seg.run, keys::STEP, a)..keys::numbered(seg.run, keys::STEP, b),
            )?;
            for (k, v) in scan {
                if keys::trailing_u64(&k) != Some(expected) {
                    return Err(Error::HistoryPruned {
                        run,
                        oldest: expected.saturating_add(1),
                    });
                }
                let step = Step::decode(&v)?;
                events = step.events_after;
                spans = step.spans_after;
                for m in step.mutations {
                    apply(&mut state, m)?;
                }
                expected += 1;
            }
        }
        if expected != target {
            let oldest = Self::oldest_step(snap, lineage)?;
            return Err(Error::HistoryPruned { run, oldest });
        }
        state.steps = target;
        state.events = read_events_in(snap, lineage, 0, events)?;
        state.spans = read_spans_in(snap, lineage, 0, spans)?;
        Ok(state)
    }

    /// The run's state read from its current keys (what the per-primitive reads see), for
    /// comparing with [`Agent::replay_run`] and for [`Agent::diff_runs`].
    pub fn head_state(&self, run: RunId) -> Result<RunState> {
        let snap = self.db().snapshot();
        Self::head_in(&snap, run)
    }

    fn head_in(snap: &Snapshot, run: RunId) -> Result<RunState> {
        let lineage = lineage_at(snap, run)?;
        let mut state = RunState {
            steps: Self::steps_end(snap, &lineage)?,
            ..RunState::default()
        };
        let cut = keys::area(run, keys::KV).len();
        for (k, v) in snap.scan_prefix(keys::area(run, keys::KV)) {
            state
                .kv
                .insert(k.get(cut..).unwrap_or_default().to_vec(), v.to_vec());
        }
        for (k, v) in snap.scan_prefix(keys::area(run, keys::CELL)) {
            state.cells.insert(utf8_name(&k)?, Cell::decode(&v)?);
        }
        for (k, v) in snap.scan_prefix(keys::area(run, keys::DOC)) {
            let d =
                serde_json::from_slice(&v).map_err(|_| Error::corrupt("document", "not JSON"))?;
            state.docs.insert(utf8_name(&k)?, d);
        }
        state.events = read_events_in(snap, &lineage, 0, u64::MAX)?;
        state.spans = read_spans_in(snap, &lineage, 0, u64::MAX)?;
        Ok(state)
    }

    /// History steps `[from, to)` with their commit versions.
    pub fn history(&self, run: RunId, from: u64, to: u64) -> Result<Vec<HistoryEntry>> {
        let snap = self.db().snapshot();
        let lineage = lineage_at(&snap, run)?;
        let mut out = Vec::new();
        for seg in &lineage {
            let a = from.max(seg.lo.step);
            let b = to.min(seg.hi.step);
            if a >= b {
                continue;
            }
            let scan = snap.range(
                keys::numbered(seg.run, keys::STEP, a)..keys::numbered(seg.run, keys::STEP, b),
            )?;
            for (k, v) in scan {
                let step = keys::trailing_u64(&k).ok_or(Error::corrupt("history step", "key"))?;
                let version = snap.get_versioned(&k).map_or(Version::new(0), |(_, v)| v);
                out.push(HistoryEntry {
                    step,
                    version,
                    record: Step::decode(&v)?,
                });
            }
        }
        Ok(out)
    }

    /// Compares two runs at their heads, key by run-relative key.
    ///
    /// KV, cells and documents are compared by one merged scan of each run's current keys,
    /// allocating only for the keys that differ; spans and events are read and compared in
    /// number order.
    pub fn diff_runs(&self, a: RunId, b: RunId) -> Result<Diff> {
        let snap = self.db().snapshot();
        let (left, right) = (lineage_at(&snap, a)?, lineage_at(&snap, b)?);
        let mut changes = Vec::new();
        for (kind, primitive, skip) in [
            (keys::KV, Primitive::Kv, 0),
            (keys::CELL, Primitive::Cell, 8),
            (keys::DOC, Primitive::Doc, 0),
        ] {
            merge_area(&snap, (a, b), kind, primitive, skip, &mut changes);
        }
        let spans = |lineage: &[Segment]| -> Result<BTreeMap<u64, Span>> {
            Ok(read_spans_in(&snap, lineage, 0, u64::MAX)?
                .into_iter()
                .map(|s| (s.id, s))
                .collect())
        };
        diff_map(
            &mut changes,
            Primitive::Span,
            &spans(&left)?,
            &spans(&right)?,
            |k| k.to_be_bytes().to_vec(),
            Span::encode,
        );
        let events = event_divergence(
            &read_events_in(&snap, &left, 0, u64::MAX)?,
            &read_events_in(&snap, &right, 0, u64::MAX)?,
        );
        Ok(Diff { changes, events })
    }

    /// Compares one run at two points of its history.
    pub fn diff_points(&self, run: RunId, from: At, to: At) -> Result<Diff> {
        let snap = self.db().snapshot();
        Ok(diff_states(
            &Self::replay_in(&snap, run, from)?,
            &Self::replay_in(&snap, run, to)?,
        ))
    }

    /// Creates a new active run whose state and history equal `run`'s at `at`, and which goes
    /// on independently. History, events and spans up to `at` are shared with the parent.
    pub fn fork_run(&self, run: RunId, at: At, spec: RunSpec) -> Result<RunId> {
        crate::agent::check_name("run name", &spec.name)?;
        crate::agent::check_tags(&spec.tags)?;
        self.with_run_locked(run, |_| {
            let snap = self.db().snapshot();
            let lineage = lineage_at(&snap, run)?;
            let state = Self::replay_in(&snap, run, at)?;
            let fork = ForkPoint {
                parent: run,
                step: state.steps,
                events: u64::try_from(state.events.len()).unwrap_or(u64::MAX),
                spans: u64::try_from(state.spans.len()).unwrap_or(u64::MAX),
            };
            let mut docs = Vec::with_capacity(state.docs.len());
            for (name, d) in &state.docs {
                docs.push((name.clone(), crate::doc::to_text(d)?));
            }
            let now = self.now_ms();
            self.create_run(
                &RunInfo {
                    id: RunId::from_u64(0),
                    name: spec.name,
                    tags: spec.tags,
                    metadata: spec.metadata,
                    parent: spec.parent,
                    fork: Some(fork),
                    status: RunStatus::Active,
                    created_ms: now,
                    updated_ms: now,
                },
                |tx, id| {
                    for (k, v) in &state.kv {
                        tx.put(keys::named(id, keys::KV, k), v)?;
                        index_hook(
                            self.index(),
                            tx,
                            SearchDoc::Value {
                                run: id,
                                primitive: Primitive::Kv,
                                key: k,
                                time_ms: now,
                                value: Some(v),
                            },
                        )?;
                    }
                    for (name, c) in &state.cells {
                        tx.put(keys::named(id, keys::CELL, name.as_bytes()), c.encode())?;
                        index_hook(
                            self.index(),
                            tx,
                            SearchDoc::Value {
                                run: id,
                                primitive: Primitive::Cell,
                                key: name.as_bytes(),
                                time_ms: now,
                                value: Some(&c.value),
                            },
                        )?;
                    }
                    for (name, text) in &docs {
                        tx.put(keys::named(id, keys::DOC, name.as_bytes()), text)?;
                        index_hook(
                            self.index(),
                            tx,
                            SearchDoc::Value {
                                run: id,
                                primitive: Primitive::Doc,
                                key: name.as_bytes(),
                                time_ms: now,
                                value: Some(text),
                            },
                        )?;
                    }
                    // Every run of the lineage records what the fork reads of its history,
                    // so pruning and deleting any of them respect it.
                    for seg in &lineage {
                        let upto = fork.step.min(seg.hi.step);
                        tx.put(
                            keys::numbered(seg.run, keys::FORK, id.get()),
                            upto.to_le_bytes(),
                        )?;
                    }
                    Ok(())
                },
            )
        })
    }

    /// Folds the run's oldest steps into a base record and deletes them, keeping what
    /// `policy` asks for, never past a step that a fork reads. One commit.
    pub fn prune(&self, run: RunId, policy: Retention) -> Result<PruneReport> {
        self.with_run_locked(run, |head| {
            let snap = self.db().snapshot();
            let lineage = lineage_at(&snap, run)?;
            let own = lineage
                .last()
                .copied()
                .ok_or(Error::corrupt("run", "empty lineage"))?;
            let end = head.next_step;
            let oldest = read_base(&snap, run)?
                .map_or(own.lo.step, |b| b.step)
                .max(own.lo.step);
            let mut target = match policy {
                Retention::KeepSteps(n) => end.saturating_sub(n),
                Retention::MaxAge(age) => {
                    let cutoff = self
                        .now_ms()
                        .saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
                    // Steps older than the cutoff: the first step at or after it stays.
                    let mut n = oldest;
                    for (k, v) in snap.range(
                        keys::numbered(run, keys::STEP, oldest)
                            ..keys::numbered(run, keys::STEP, end),
                    )? {
                        if Step::decode(&v)?.time_ms >= cutoff {
                            break;
                        }
                        n = keys::trailing_u64(&k).unwrap_or(n).saturating_add(1);
                    }
                    n
                }
            };
            let mut held_by_fork = None;
            for (child, at) in self.forks_of(run)? {
                if at < target {
                    target = at;
                    held_by_fork = Some(child);
                }
            }
            if target <= oldest {
                return Ok(PruneReport {
                    oldest_before: oldest,
                    oldest_after: oldest,
                    held_by_fork,
                });
            }
            let state = Self::fold(&snap, &lineage, target)?;
            let time_ms = read_step_in(&snap, &lineage, target - 1)?.time_ms;
            let mut base = Base {
                step: target,
                events_after: u64::try_from(state.events.len()).unwrap_or(u64::MAX),
                spans_after: u64::try_from(state.spans.len()).unwrap_or(u64::MAX),
                time_ms,
                kv: state.kv,
                cells: state.cells,
                docs: BTreeMap::new(),
            };
            for (name, d) in &state.docs {
                base.docs.insert(name.clone(), crate::doc::to_text(d)?);
            }
            let encoded = base.encode();
            self.db().transaction(|tx| {
                tx.put(keys::area(run, keys::BASE), &encoded)?;
                let doomed: Vec<_> = tx
                    .range(
                        keys::numbered(run, keys::STEP, oldest)
                            ..keys::numbered(run, keys::STEP, target),
                    )?
                    .map(|(k, _)| k)
                    .collect();
                for k in doomed {
                    tx.delete(k)?;
                }
                Ok(())
            })?;
            Ok(PruneReport {
                oldest_before: oldest,
                oldest_after: target,
                held_by_fork,
            })
        })
    }

    /// Archive-then-delete across runs: ended runs idle for `archive_after` are archived;
    /// archived runs idle for `delete_after` are deleted, unless forks read their history.
    pub fn sweep(&self, policy: SweepPolicy) -> Result<SweepReport> {
        let now = self.now_ms();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut report = SweepReport::default();
        for info in self.list_runs()? {
            let idle = now.saturating_sub(info.updated_ms);
            match info.status {
                RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
                    if idle >= ms(policy.archive_after) =>
                {
                    self.set_status(info.id, RunStatus::Archived)?;
                    report.archived.push(info.id);
                }
                RunStatus::Archived if idle >= ms(policy.delete_after) => {
                    match self.delete_run(info.id) {
                        Ok(()) => report.deleted.push(info.id),
                        Err(Error::RunHasForks { .. }) => report.kept_for_forks.push(info.id),
                        Err(e) => return Err(e),
                    }
                }
                _ => {}
            }
        }
        Ok(report)
    }

    /// The storage the run's own keys take.
    pub fn run_size(&self, run: RunId) -> Result<RunSize> {
        self.get_run(run)?;
        let mut size = RunSize::default();
        let kind_at = keys::run_prefix(run).len();
        for (k, v) in self.db().scan_prefix(keys::run_prefix(run))? {
            size.keys += 1;
            size.bytes += u64::try_from(k.len() + v.len()).unwrap_or(u64::MAX);
            match k.get(kind_at) {
                Some(&keys::EVENT) => size.events += 1,
                Some(&keys::STEP) => size.steps += 1,
                Some(&keys::SPAN) => size.spans += 1,
                _ => {}
            }
        }
        Ok(size)
    }
}

fn step_version(snap: &Snapshot, lineage: &[Segment], step: u64) -> Result<Version> {
    let seg = lineage
        .iter()
        .find(|s| s.lo.step <= step && step < s.hi.step)
        .ok_or(Error::corrupt("history step", "outside lineage"))?;
    snap.get_versioned(keys::numbered(seg.run, keys::STEP, step))
        .map(|(_, v)| v)
        .ok_or(Error::HistoryPruned {
            run: seg.run,
            oldest: step.saturating_add(1),
        })
}

fn utf8_name(key: &[u8]) -> Result<String> {
    let name = keys::name_of(key).ok_or(Error::corrupt("key", "short"))?;
    String::from_utf8(name.to_vec()).map_err(|_| Error::corrupt("key", "name not UTF-8"))
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::corrupt("history step", "name not UTF-8"))
}

fn json(bytes: Option<&Vec<u8>>) -> Result<Value> {
    let bytes = bytes.ok_or(Error::corrupt("history step", "missing value"))?;
    serde_json::from_slice(bytes).map_err(|_| Error::corrupt("history step", "value not JSON"))
}

/// Applies one mutation to a replayed state.
/// Folds one mutation into `state`, moving its key and value in rather than copying them.
fn apply(state: &mut RunState, m: Mutation) -> Result<()> {
    let missing = || Error::corrupt("history step", "missing value");
    match (m.primitive, m.op) {
        (Primitive::Kv, Op::Put) => {
            state.kv.insert(m.key, m.after.ok_or_else(missing)?);
        }
        (Primitive::Kv, Op::Delete) => {
            state.kv.remove(&m.key);
        }
        (Primitive::Cell, Op::Put) => {
            let cell = Cell::decode(m.after.as_deref().ok_or_else(missing)?)?;
            state.cells.insert(utf8(&m.key)?, cell);
        }
        (Primitive::Cell, Op::Delete) => {
            state.cells.remove(&utf8(&m.key)?);
        }
        (Primitive::Doc, Op::Put) => {
            state.docs.insert(utf8(&m.key)?, json(m.after.as_ref())?);
        }
        (Primitive::Doc, Op::Delete) => {
            state.docs.remove(&utf8(&m.key)?);
        }
        (Primitive::Doc, Op::PathSet | Op::PathDelete) => {
            let name = utf8(&m.key)?;
            let path = m
                .path
                .as_deref()
                .ok_or(Error::corrupt("history step", "missing path"))?;
            let pointer = crate::doc::parse_path(path)?;
            let d = state.docs.get_mut(&name).ok_or(Error::corrupt(
                "history step",
                "path op on a missing document",
            ))?;
            if m.op == Op::PathSet {
                crate::doc::assign(d, pointer, json(m.after.as_ref())?, &name)?;
            } else {
                crate::doc::delete(d, pointer);
            }
        }
        (Primitive::Event | Primitive::Span, Op::Append) => {}
        _ => return Err(Error::corrupt("history step", "mutation kind")),
    }
    Ok(())
}

fn diff_map<K: Ord + Clone, V>(
    out: &mut Vec<Change>,
    primitive: Primitive,
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
    key: impl Fn(&K) -> Vec<u8>,
    value: impl Fn(&V) -> Vec<u8>,
) {
    let mut left = a.iter().peekable();
    let mut right = b.iter().peekable();
    loop {
        let order = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((k, v)) = left.next() {
                    out.push(Change {
                        primitive,
                        key: key(k),
                        kind: ChangeKind::Removed,
                        left: Some(value(v)),
                        right: None,
                    });
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((k, v)) = right.next() {
                    out.push(Change {
                        primitive,
                        key: key(k),
                        kind: ChangeKind::Added,
                        left: None,
                        right: Some(value(v)),
                    });
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((k, va)), Some((_, vb))) = (left.next(), right.next()) {
                    let (lv, rv) = (value(va), value(vb));
                    if lv != rv {
                        out.push(Change {
                            primitive,
                            key: key(k),
                            kind: ChangeKind::Changed,
                            left: Some(lv),
                            right: Some(rv),
                        });
                    }
                }
            }
        }
    }
}

/// Compares two states key by run-relative key, and their event logs by content and hash.
pub fn diff_states(left: &RunState, right: &RunState) -> Diff {
    let mut changes = Vec::new();
    diff_map(
        &mut changes,
        Primitive::Kv,
        &left.kv,
        &right.kv,
        Clone::clone,
        Clone::clone,
    );
    diff_map(
        &mut changes,
        Primitive::Cell,
        &left.cells,
        &right.cells,
        |k| k.as_bytes().to_vec(),
        |c| c.value.clone(),
    );
    diff_map(
        &mut changes,
        Primitive::Doc,
        &left.docs,
        &right.docs,
        |k| k.as_bytes().to_vec(),
        |d| d.to_string().into_bytes(),
    );
    let spans = |s: &[Span]| {
        s.iter()
            .map(|x| (x.id, x.clone()))
            .collect::<BTreeMap<u64, Span>>()
    };
    diff_map(
        &mut changes,
        Primitive::Span,
        &spans(&left.spans),
        &spans(&right.spans),
        |k| k.to_be_bytes().to_vec(),
        Span::encode,
    );
    let events = event_divergence(&left.events, &right.events);
    Diff { changes, events }
}

fn event_divergence(left: &[Event], right: &[Event]) -> EventDivergence {
    let mut events = EventDivergence::default();
    let mut i = 0;
    loop {
        match (left.get(i), right.get(i)) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {
                events.common += 1;
                i += 1;
            }
            (x, y) => {
                events.left = x.cloned();
                events.right = y.cloned();
                break;
            }
        }
    }
    events
}

/// Merges the current keys of one area (`kind`) of two runs in key order, pushing a change for
/// every name on one side only or whose value (past `skip` bytes: a cell's version) differs.
fn merge_area(
    snap: &Snapshot,
    (a, b): (RunId, RunId),
    kind: u8,
    primitive: Primitive,
    skip: usize,
    out: &mut Vec<Change>,
) {
    let cut = keys::area(a, kind).len();
    let mut left = snap.scan_prefix(keys::area(a, kind)).peekable();
    let mut right = snap.scan_prefix(keys::area(b, kind)).peekable();
    let name = |k: &[u8]| k.get(cut..).unwrap_or_default().to_vec();
    let value = |v: &[u8]| v.get(skip..).unwrap_or_default().to_vec();
    loop {
        let order = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.get(cut..).cmp(&kb.get(cut..)),
        };
        let change = match order {
            std::cmp::Ordering::Less => left.next().map(|(k, v)| Change {
                primitive,
                key: name(&k),
                kind: ChangeKind::Removed,
                left: Some(value(&v)),
                right: None,
            }),
            std::cmp::Ordering::Greater => right.next().map(|(k, v)| Change {
                primitive,
                key: name(&k),
                kind: ChangeKind::Added,
                left: None,
                right: Some(value(&v)),
            }),
            std::cmp::Ordering::Equal => match (left.next(), right.next()) {
                (Some((k, va)), Some((_, vb))) if va.get(skip..) != vb.get(skip..) => {
                    Some(Change {
                        primitive,
                        key: name(&k),
                        kind: ChangeKind::Changed,
                        left: Some(value(&va)),
                        right: Some(value(&vb)),
                    })
                }
                _ => None,
            },
        };
        out.extend(change);
    }
}

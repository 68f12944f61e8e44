//! The [`Agent`] handle: runs (begin, status, list, query, delete), orphan detection on open,
//! and the one write path every primitive goes through.
//!
//! Writes to one run are serialized by a per-run lock held across build-and-commit, and each
//! run's counters (next step, next event sequence, last chain hash, next span id) live in
//! memory under that lock, loaded once from the run's last keys. So an append never reads or
//! retries on a shared meta key: its sequence is the next one under the lock, and the engine
//! commits the run's writes in the lock's order, which keeps sequences dense. Engine
//! conflicts (a writer outside this handle touching the same keys) are retried at most
//! [`WRITE_ATTEMPTS_MAX`](crate::limits::WRITE_ATTEMPTS_MAX) times.
//!
//! One `Agent` per database: two handles over one `Db` would each keep their own counters.
//! The handle keeps one small slot (a lock and the counters) per run it has touched that has
//! not ended; ending or deleting a run drops its slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Clock, Db, Snapshot, SystemClock};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::index;
use crate::keys;
use crate::limits;
use crate::record::{Base, Event, Hash, Span, Step, GENESIS};
use crate::run::{ForkPoint, RunId, RunInfo, RunQuery, RunSpec, RunStatus};
use crate::search::Indexer;
use crate::tx::RunTx;

/// The in-memory counters of one run, valid while its lock is held.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub(crate) info: Arc<RunInfo>,
    pub(crate) next_step: u64,
    pub(crate) next_event: u64,
    pub(crate) last_hash: Hash,
    pub(crate) next_span: u64,
    pub(crate) last_time: u64,
}

#[derive(Debug, Default)]
struct Slot {
    head: Option<Head>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    clock: Arc<dyn Clock>,
    index: Indexer,
    slots: Mutex<HashMap<RunId, Arc<Mutex<Slot>>>>,
}

/// Runs found active at open, now marked [`RunStatus::Orphaned`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanReport {
    /// The runs marked, in id order.
    pub orphaned: Vec<RunId>,
}

/// Agent state on one engine database. Cheap to clone; clones share the per-run locks.
#[derive(Clone, Debug)]
pub struct Agent {
    inner: Arc<Inner>,
}

/// A handle on one run, for grouping writes: `agent.run(id).transaction(|tx| ...)`.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    agent: &'a Agent,
    id: RunId,
}

impl Run<'_> {
    /// The run's id.
    pub fn id(&self) -> RunId {
        self.id
    }
    /// Runs `body` and commits everything it wrote as one engine commit and one history step.
    /// An error from `body` commits nothing.
    pub fn transaction<T>(&self, body: impl FnMut(&mut RunTx<'_>) -> Result<T>) -> Result<T> {
        self.agent.write(self.id, body)
    }
}

impl Agent {
    /// Opens agent state on `db` with the system clock, marking every run that was active
    /// when the last process died as orphaned. Call it once per process start.
    pub fn open(db: Db) -> Result<(Agent, OrphanReport)> {
        Agent::open_with_clock(db, Arc::new(SystemClock))
    }

    /// [`Agent::open`] with an injected clock (tests, simulations).
    pub fn open_with_clock(db: Db, clock: Arc<dyn Clock>) -> Result<(Agent, OrphanReport)> {
        let agent = Agent {
            inner: Arc::new(Inner {
                db,
                clock,
                index: index::indexer()?,
                slots: Mutex::new(HashMap::new()),
            }),
        };
        let report = agent.mark_orphans()?;
        Ok((agent, report))
    }

    /// Opens agent state on `db` without the orphan check: every run keeps the status it has
    /// stored, and nothing is written. For tools that read a database whose writer has stopped
    /// (a run shown `Active` may be one whose process died). A process that goes on writing
    /// runs opens with [`Agent::open`] instead.
    pub fn open_for_reading(db: Db) -> Result<Agent> {
        Ok(Agent {
            inner: Arc::new(Inner {
                db,
                clock: Arc::new(SystemClock),
                index: index::indexer()?,
                slots: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The engine database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The agent's search index (`index::PREFIX`).
    pub(crate) fn index(&self) -> &Indexer {
        &self.inner.index
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.clock.now_millis()
    }

    /// A handle on one run.
    pub fn run(&self, id: RunId) -> Run<'_> {
        Run { agent: self, id }
    }

    fn mark_orphans(&self) -> Result<OrphanReport> {
        let db = &self.inner.db;
        let active: Vec<RunId> = db
            .scan_prefix(keys::status_prefix(RunStatus::Active.code()))?
            .filter_map(|(k, _)| keys::trailing_u64(&k).map(RunId::from_u64))
            .collect();
        if active.is_empty() {
            return Ok(OrphanReport::default());
        }
        let now = self.now_ms();
        db.transaction(|tx| {
            for &run in &active {
                let Some(raw) = tx.get(keys::meta(run))? else {
                    continue;
                };
                let mut info = RunInfo::decode(&raw).map_err(to_engine)?;
                tx.delete(keys::status(info.status.code(), run))?;
                info.status = RunStatus::Orphaned;
                info.updated_ms = now;
                tx.put(keys::meta(run), info.encode())?;
                tx.put(keys::status(info.status.code(), run), [])?;
            }
            Ok(())
        })?;
        Ok(OrphanReport { orphaned: active })
    }

    // ----- runs --------------------------------------------------------------------------------

    /// Begins a run: `Active`, with the spec's name, tags, metadata and logical parent.
    pub fn begin_run(&self, spec: RunSpec) -> Result<RunId> {
        check_name("run name", &spec.name)?;
        check_tags(&spec.tags)?;
        check_len(
            "run metadata",
            spec.metadata.to_string().len(),
            limits::METADATA_BYTES_MAX,
        )?;
        if let Some(parent) = spec.parent {
            self.get_run(parent)?;
        }
        let now = self.now_ms();
        self.create_run(
            &RunInfo {
                id: RunId::from_u64(0),
                name: spec.name,
                tags: spec.tags,
                metadata: spec.metadata,
                parent: spec.parent,
                fork: None,
                status: RunStatus::Active,
                created_ms: now,
                updated_ms: now,
            },
            |_, _| Ok(()),
        )
    }

    /// Allocates an id and writes the run's meta (`template` with that id) and indexes, plus
    /// whatever `extra` writes, in one commit.
    pub(crate) fn create_run(
        &self,
        template: &RunInfo,
        mut extra: impl FnMut(&mut cairn::Transaction, RunId) -> Result<()>,
    ) -> Result<RunId> {
        let id = self.commit_retrying(|tx| {
            let next = match tx.get(keys::NEXT_RUN_ID)? {
                None => 1,
                Some(v) => {
                    let arr: [u8; 8] = v
                        .as_bytes()
                        .try_into()
                        .map_err(|_| Error::corrupt("run id counter", "not 8 bytes"))?;
                    u64::from_le_bytes(arr)
                }
            };
            let id = RunId::from_u64(next);
            tx.put(keys::NEXT_RUN_ID, next.saturating_add(1).to_le_bytes())?;
            let mut info = template.clone();
            info.id = id;
            tx.put(keys::meta(id), info.encode())?;
            tx.put(keys::status(info.status.code(), id), [])?;
            for tag in &info.tags {
                tx.put(keys::tag(tag, id), [])?;
            }
            extra(tx, id)?;
            Ok(id)
        })?;
        Ok(id)
    }

    /// The run's stored record.
    pub fn get_run(&self, run: RunId) -> Result<RunInfo> {
        let raw = self
            .inner
            .db
            .get(keys::meta(run))?
            .ok_or(Error::RunNotFound(run))?;
        RunInfo::decode(&raw)
    }

    /// Every run, in id order.
    pub fn list_runs(&self) -> Result<Vec<RunInfo>> {
        self.inner
            .db
            .scan_prefix(keys::META)?
            .map(|(_, v)| RunInfo::decode(&v))
            .collect()
    }

    /// Runs matching `query`, in id order. A status reads the status index, else a tag reads
    /// the tag index, else every run is read; the other conditions filter.
    pub fn query(&self, query: &RunQuery) -> Result<Vec<RunInfo>> {
        let ids: Option<Vec<RunId>> = if let Some(status) = query.status {
            Some(self.ids_under(&keys::status_prefix(status.code()))?)
        } else if let Some(tag) = &query.tag {
            Some(self.ids_under(&keys::tag_prefix(tag))?)
        } else {
            None
        };
        let runs = match ids {
            None => self.list_runs()?,
            Some(ids) => {
                let snap = self.inner.db.snapshot();
                let mut runs = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(raw) = snap.get(keys::meta(id)) {
                        runs.push(RunInfo::decode(&raw)?);
                    }
                }
                runs
            }
        };
        Ok(runs.into_iter().filter(|r| query.matches(r)).collect())
    }

    fn ids_under(&self, prefix: &[u8]) -> Result<Vec<RunId>> {
        let mut ids: Vec<RunId> = self
            .inner
            .db
            .scan_prefix(prefix)?
            .filter_map(|(k, _)| keys::trailing_u64(&k).map(RunId::from_u64))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Moves the run to `to` if the transition table allows it.
    pub fn set_status(&self, run: RunId, to: RunStatus) -> Result<()> {
        let slot = self.slot(run);
        let mut guard = slot.lock();
        let head = self.load_head(run, &mut guard)?;
        let from = head.info.status;
        if !from.can_become(to) {
            return Err(Error::IllegalTransition { run, from, to });
        }
        let mut info = RunInfo::clone(&head.info);
        info.status = to;
        info.updated_ms = self.now_ms();
        let mut tx = self.inner.db.begin();
        tx.delete(keys::status(from.code(), run))?;
        tx.put(keys::status(to.code(), run), [])?;
        tx.put(keys::meta(run), info.encode())?;
        tx.commit()?;
        if let Some(h) = guard.head.as_mut() {
            h.info = Arc::new(info);
        }
        if to.is_terminal() {
            // An ended run takes no more writes: forget its counters, so the handle's memory
            // is bounded by the runs that can still be written. A later call reloads them.
            drop(guard);
            self.inner.slots.lock().remove(&run);
        }
        Ok(())
    }

    /// Deletes the run and everything it owns (events, history, state, spans, indexes) in one
    /// commit. Refused with [`Error::RunHasForks`] while forks read its history.
    pub fn delete_run(&self, run: RunId) -> Result<()> {
        let slot = self.slot(run);
        let mut guard = slot.lock();
        let head = self.load_head(run, &mut guard)?.clone();
        let forks = self.forks_of(run)?;
        if !forks.is_empty() {
            return Err(Error::RunHasForks {
                run,
                forks: forks.len(),
            });
        }
        let ancestors: Vec<RunId> = {
            let snap = self.inner.db.snapshot();
            lineage_at(&snap, run)?
                .iter()
                .map(|s| s.run)
                .filter(|r| *r != run)
                .collect()
        };
        self.commit_retrying(|tx| {
            let owned: Vec<_> = tx
                .scan_prefix(keys::run_prefix(run))
                .map(|(k, _)| k)
                .collect();
            for k in owned {
                tx.delete(k)?;
            }
            tx.delete(keys::meta(run))?;
            tx.delete(keys::status(head.info.status.code(), run))?;
            for tag in &head.info.tags {
                tx.delete(keys::tag(tag, run))?;
            }
            for ancestor in &ancestors {
                tx.delete(keys::numbered(*ancestor, keys::FORK, run.get()))?;
            }
            index::index_drop_run(&self.inner.index, tx, run)?;
            Ok(())
        })?;
        guard.head = None;
        drop(guard);
        self.inner.slots.lock().remove(&run);
        Ok(())
    }

    /// Forks that read `run`'s history (forks of it, and forks of those), each with the step
    /// of `run`'s history it reads up to.
    pub fn forks_of(&self, run: RunId) -> Result<Vec<(RunId, u64)>> {
        self.inner
            .db
            .scan_prefix(keys::area(run, keys::FORK))?
            .map(|(k, v)| {
                let child = keys::trailing_u64(&k).ok_or(Error::corrupt("fork", "key"))?;
                let arr: [u8; 8] = v
                    .as_bytes()
                    .try_into()
                    .map_err(|_| Error::corrupt("fork", "value"))?;
                Ok((RunId::from_u64(child), u64::from_le_bytes(arr)))
            })
            .collect()
    }

    // ----- the write path ----------------------------------------------------------------------

    /// Runs `body` in a fresh engine transaction and commits it; an engine conflict starts
    /// over, at most [`WRITE_ATTEMPTS_MAX`](limits::WRITE_ATTEMPTS_MAX) times, then
    /// [`Error::Contended`]. Any other error commits nothing and is returned.
    pub(crate) fn commit_retrying<T>(
        &self,
        mut body: impl FnMut(&mut cairn::Transaction) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.inner.db.begin();
            let outcome = body(&mut tx).and_then(|out| {
                tx.commit()?;
                Ok(out)
            });
            match outcome {
                Err(Error::Engine(e)) if e.is_retryable() => {
                    if attempt >= limits::WRITE_ATTEMPTS_MAX {
                        return Err(Error::Contended { attempts: attempt });
                    }
                    std::thread::sleep(Duration::from_micros(10 << attempt.min(8)));
                }
                other => return other,
            }
        }
    }

    fn slot(&self, run: RunId) -> Arc<Mutex<Slot>> {
        Arc::clone(self.inner.slots.lock().entry(run).or_default())
    }

    /// Loads the run's head into its slot (once) and returns it.
    fn load_head<'s>(&self, run: RunId, slot: &'s mut Slot) -> Result<&'s Head> {
        if slot.head.is_none() {
            slot.head = Some(self.read_head(run)?);
        }
        slot.head.as_ref().ok_or(Error::RunNotFound(run))
    }

    fn read_head(&self, run: RunId) -> Result<Head> {
        let snap = self.inner.db.snapshot();
        let info = RunInfo::decode(&snap.get(keys::meta(run)).ok_or(Error::RunNotFound(run))?)?;
        let fork = info.fork;
        let last_step = last_numbered(&snap, run, keys::STEP)?;
        let base = read_base(&snap, run)?;
        let mut next_step = fork.map_or(0, |f| f.step);
        let mut last_time = 0;
        if let Some(b) = &base {
            next_step = next_step.max(b.step);
            last_time = b.time_ms;
        }
        if let Some((n, raw)) = &last_step {
            next_step = next_step.max(n.saturating_add(1));
            last_time = last_time.max(Step::decode(raw)?.time_ms);
        }
        let lineage = lineage_at(&snap, run)?;
        let (next_event, last_hash) = match last_numbered(&snap, run, keys::EVENT)? {
            Some((n, raw)) => (n.saturating_add(1), Event::decode(&raw)?.hash),
            None => match fork {
                Some(f) if f.events > 0 => {
                    let last = read_events_in(&snap, &lineage, f.events - 1, f.events)?
                        .into_iter()
                        .next()
                        .ok_or(Error::corrupt("event", "fork point missing"))?;
                    (f.events, last.hash)
                }
                _ => (0, GENESIS),
            },
        };
        if fork.is_some() && last_step.is_none() && base.is_none() {
            if let Some(step) = next_step.checked_sub(1) {
                if let Ok(s) = read_step_in(&snap, &lineage, step) {
                    last_time = s.time_ms;
                }
            }
        }
        let next_span = match last_numbered(&snap, run, keys::SPAN)? {
            Some((n, _)) => n.saturating_add(1),
            None => fork.map_or(0, |f| f.spans),
        };
        Ok(Head {
            info: Arc::new(info),
            next_step,
            next_event,
            last_hash,
            next_span,
            last_time,
        })
    }

    /// Runs `body` against the run under its lock and commits what it wrote as one commit and
    /// one history step. Conflicts from outside writers are retried a bounded number of times.
    pub(crate) fn write<T>(
        &self,
        run: RunId,
        mut body: impl FnMut(&mut RunTx<'_>) -> Result<T>,
    ) -> Result<T> {
        let slot = self.slot(run);
        let mut guard = slot.lock();
        let head = self.load_head(run, &mut guard)?.clone();
        if head.info.status != RunStatus::Active {
            return Err(Error::RunNotActive {
                run,
                status: head.info.status,
            });
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let time = self.now_ms().max(head.last_time);
            let mut tx = RunTx::new(self, self.inner.db.begin(), head.clone(), time);
            let outcome = body(&mut tx).and_then(|out| Ok((out, tx.commit()?)));
            match outcome {
                Ok((out, new_head)) => {
                    guard.head = Some(new_head);
                    return Ok(out);
                }
                Err(Error::Engine(e)) if e.is_retryable() => {
                    if attempt >= limits::WRITE_ATTEMPTS_MAX {
                        return Err(Error::Contended { attempts: attempt });
                    }
                    std::thread::sleep(Duration::from_micros(10 << attempt.min(8)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `body` with the run's lock held and its head loaded, for operations that must not
    /// interleave with the run's writes (fork, prune). The run need not be active.
    pub(crate) fn with_run_locked<T>(
        &self,
        run: RunId,
        body: impl FnOnce(&Head) -> Result<T>,
    ) -> Result<T> {
        let slot = self.slot(run);
        let mut guard = slot.lock();
        let head = self.load_head(run, &mut guard)?;
        body(head)
    }
}

// ----- lineage: reads that fall through to the parent up to the fork point -----------------

/// The run and its ancestors, oldest first, each with the range of steps, events and
/// spans it owns: `[lo, hi)` where `hi` is the next run's fork point.
pub(crate) fn lineage_at(snap: &Snapshot, run: RunId) -> Result<Vec<Segment>> {
    let mut chain = Vec::new();
    let mut current = run;
    let mut hi = Counts::MAX;
    loop {
        let info = RunInfo::decode(
            &snap
                .get(keys::meta(current))
                .ok_or(Error::RunNotFound(current))?,
        )?;
        let own_lo = info.fork.map_or(Counts::ZERO, |f| Counts {
            step: f.step,
            events: f.events,
            spans: f.spans,
        });
        // A fork of a fork may branch below its parent's own fork point: clip, so a segment
        // never claims numbers its child took from further up.
        let lo = own_lo.min(hi);
        chain.push(Segment {
            run: current,
            lo,
            hi,
        });
        match info.fork {
            None => break,
            Some(ForkPoint { parent, .. }) => {
                hi = lo;
                current = parent;
            }
        }
        if chain.len() > 10_000 {
            return Err(Error::corrupt("run", "fork chain too long"));
        }
    }
    chain.reverse();
    Ok(chain)
}

/// Events `[from, to)` of the run whose lineage is given, in sequence order.
pub(crate) fn read_events_in(
    snap: &Snapshot,
    lineage: &[Segment],
    from: u64,
    to: u64,
) -> Result<Vec<Event>> {
    let mut out =
        Vec::with_capacity(usize::try_from(to.saturating_sub(from).min(1 << 20)).unwrap_or(0));
    for seg in lineage {
        let a = from.max(seg.lo.events);
        let b = to.min(seg.hi.events);
        if a >= b {
            continue;
        }
        let scan = snap.range(
            keys::numbered(seg.run, keys::EVENT, a)..keys::numbered(seg.run, keys::EVENT, b),
        )?;
        for (_, v) in scan {
            out.push(Event::decode_value(v)?);
        }
    }
    Ok(out)
}

/// Spans `[from, to)`, in id order.
pub(crate) fn read_spans_in(
    snap: &Snapshot,
    lineage: &[Segment],
    from: u64,
    to: u64,
) -> Result<Vec<Span>> {
    let mut out = Vec::new();
    for seg in lineage {
        let a = from.max(seg.lo.spans);
        let b = to.min(seg.hi.spans);
        if a >= b {
            continue;
        }
        let scan = snap.range(
            keys::numbered(seg.run, keys::SPAN, a)..keys::numbered(seg.run, keys::SPAN, b),
        )?;
        for (_, v) in scan {
            out.push(Span::decode(&v)?);
        }
    }
    Ok(out)
}

/// One history step, from whichever run of the lineage owns it.
pub(crate) fn read_step_in(snap: &Snapshot, lineage: &[Segment], step: u64) -> Result<Step> {
    let seg = lineage
        .iter()
        .find(|s| s.lo.step <= step && step < s.hi.step)
        .ok_or(Error::corrupt("history step", "outside lineage"))?;
    let raw = snap
        .get(keys::numbered(seg.run, keys::STEP, step))
        .ok_or(Error::HistoryPruned {
            run: seg.run,
            oldest: step.saturating_add(1),
        })?;
    Step::decode(&raw)
}

/// Counts of a run's steps, events and spans at one point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) step: u64,
    pub(crate) events: u64,
    pub(crate) spans: u64,
}

impl Counts {
    pub(crate) const ZERO: Counts = Counts {
        step: 0,
        events: 0,
        spans: 0,
    };
    pub(crate) const MAX: Counts = Counts {
        step: u64::MAX,
        events: u64::MAX,
        spans: u64::MAX,
    };

    fn min(self, other: Counts) -> Counts {
        Counts {
            step: self.step.min(other.step),
            events: self.events.min(other.events),
            spans: self.spans.min(other.spans),
        }
    }
}

/// One run of a lineage and the numbers it owns, `[lo, hi)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub(crate) run: RunId,
    pub(crate) lo: Counts,
    pub(crate) hi: Counts,
}

/// The last numbered key of an area, with its value.
fn last_numbered(snap: &Snapshot, run: RunId, kind: u8) -> Result<Option<(u64, cairn::Value)>> {
    let last = snap.scan_prefix(keys::area(run, kind)).next_back();
    match last {
        None => Ok(None),
        Some((k, v)) => {
            let n = keys::trailing_u64(&k).ok_or(Error::corrupt("key", "short numbered key"))?;
            Ok(Some((n, v)))
        }
    }
}

pub(crate) fn read_base(snap: &Snapshot, run: RunId) -> Result<Option<Base>> {
    snap.get(keys::area(run, keys::BASE))
        .map(|raw| Base::decode(&raw))
        .transpose()
}

fn to_engine(e: Error) -> cairn::Error {
    match e {
        Error::Engine(e) => e,
        other => cairn::Error::InvalidArgument(other.to_string()),
    }
}

pub(crate) fn check_len(what: &'static str, actual: usize, limit: usize) -> Result<()> {
    if actual > limit {
        return Err(Error::TooLarge {
            what,
            actual,
            limit,
        });
    }
    Ok(())
}

pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidInput {
            what,
            reason: "empty".into(),
        });
    }
    check_len(what, name.len(), limits::NAME_BYTES_MAX)
}

pub(crate) fn check_tags(tags: &[String]) -> Result<()> {
    check_len("tag count", tags.len(), limits::TAGS_MAX)?;
    for t in tags {
        if t.is_empty() || t.as_bytes().contains(&0) {
            return Err(Error::InvalidInput {
                what: "tag",
                reason: "empty or contains a NUL byte".into(),
            });
        }
        check_len("tag", t.len(), limits::TAG_BYTES_MAX)?;
    }
    Ok(())
}

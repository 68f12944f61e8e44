//! Model test: random operations across several runs (events, KV, cells, documents, spans,
//! grouped transactions, forks, pruning, reopen) are applied both to `cairn-agent` on a
//! durable database and to an in-memory reference that keeps the full state after every
//! step. After each operation, and at random points, replays to random steps, event points
//! and the end, and diffs between runs and between points, must match the reference; so must
//! searches of the agent's index (one run or all), hit for hit, and each run's document count
//! in the index. The
//! seed is printed on failure; `CAIRN_AGENT_MODEL_SEED` replays one, `CAIRN_AGENT_MODEL_SEEDS`
//! sets how many seeds run.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "small test counters; a scenario reads best as one function"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cairn::{Db, Durability, ManualClock, Options};
use cairn_agent::{
    Agent, AgentQuery, At, ChangeKind, Error, Primitive, Retention, RunId, RunSpec, RunStatus,
    SpanInput, SpanKind,
};
use cairn_testkit::{SplitMix64, TempDir};
use serde_json::{json, Value};

/// The reference state of a run after one step.
#[derive(Clone, Debug, Default, PartialEq)]
struct MState {
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    cells: BTreeMap<String, (u64, Vec<u8>)>,
    docs: BTreeMap<String, Value>,
    /// (type, payload, time)
    events: Vec<(String, Vec<u8>, u64)>,
    /// (parent, name, start time)
    spans: Vec<(Option<u64>, String, u64)>,
}

#[derive(Clone, Debug)]
struct MRun {
    /// states[s] = state after s steps.
    states: Vec<MState>,
    /// The step after which each event exists: event seq -> step index (0-based).
    event_step: Vec<u64>,
    /// The oldest replayable step, through the lineage.
    oldest: u64,
    /// The fork step (0 for a root run) and the run's own pruned base (0 for none).
    lo: u64,
    base: u64,
    forks: Vec<(usize, u64)>,
}

impl MRun {
    /// The oldest step that replays for sure: above every base in the lineage.
    fn floor(&self) -> u64 {
        self.oldest.max(self.base)
    }
    fn head(&self) -> &MState {
        self.states.last().expect("state")
    }
}

struct Ctx {
    rng: SplitMix64,
    clock: Arc<ManualClock>,
    agent: Agent,
    ids: Vec<RunId>,
    runs: Vec<MRun>,
    dir: TempDir,
}

const KEYS: &[&[u8]] = &[b"a", b"b", b"c", b"dd", b"e/1"];
const CELLS: &[&str] = &["phase", "count"];
const DOCS: &[&str] = &["plan", "notes"];
const PATHS: &[&str] = &["/a", "/b", "/b/c", "/list", "/x/y/z"];

fn open(dir: &TempDir, clock: &Arc<ManualClock>) -> (Agent, Vec<RunId>) {
    let db = Db::open(
        Options::new(dir.path())
            .durability(Durability::buffered())
            .clock(clock.clone()),
    )
    .expect("open");
    let (agent, report) = Agent::open_with_clock(db, clock.clone()).expect("agent");
    (agent, report.orphaned)
}

impl Ctx {
    fn pick_run(&mut self) -> usize {
        self.rng.below(self.runs.len())
    }

    /// One random mutation inside a transaction; applies it to `m` too. Returns false if the
    /// operation was refused as expected (nothing to record).
    fn random_write(
        &mut self,
        tx: &mut cairn_agent::RunTx<'_>,
        m: &mut MState,
        event_steps: &mut Vec<u64>,
        step: u64,
    ) -> bool {
        let now = cairn::Clock::now_millis(&*self.clock);
        match self.rng.below(9) {
            0 | 1 => {
                let ty = ["user", "tool", "llm"][self.rng.below(3)];
                let payload = json!({"n": self.rng.below(1000), "t": ty}).to_string();
                let (seq, _) = tx.append(ty, &payload).expect("append");
                assert_eq!(seq as usize, m.events.len(), "dense sequence");
                m.events.push((ty.to_owned(), payload.into_bytes(), now));
                event_steps.push(step);
                true
            }
            2 => {
                let k = KEYS[self.rng.below(KEYS.len())];
                let v = format!("v{}", self.rng.below(100)).into_bytes();
                tx.kv_put(k, &v).expect("kv put");
                m.kv.insert(k.to_vec(), v);
                true
            }
            3 => {
                let k = KEYS[self.rng.below(KEYS.len())];
                let had = tx.kv_delete(k).expect("kv delete");
                assert_eq!(had, m.kv.remove(k).is_some());
                had
            }
            4 => {
                let name = CELLS[self.rng.below(CELLS.len())];
                let v = format!("s{}", self.rng.below(100)).into_bytes();
                match m.cells.get(name).cloned() {
                    None => {
                        assert_eq!(tx.cell_init(name, &v).expect("init"), 1);
                        m.cells.insert(name.to_owned(), (1, v));
                    }
                    Some((ver, _)) => {
                        if self.rng.below(2) == 0 {
                            let bad = ver + 1;
                            assert!(matches!(
                                tx.cell_cas(name, bad, &v),
                                Err(Error::VersionMismatch { .. })
                            ));
                            assert!(matches!(tx.cell_init(name, &v), Err(Error::CellExists(_))));
                        }
                        assert_eq!(tx.cell_cas(name, ver, &v).expect("cas"), ver + 1);
                        m.cells.insert(name.to_owned(), (ver + 1, v));
                    }
                }
                true
            }
            5 => {
                let name = DOCS[self.rng.below(DOCS.len())];
                if !m.docs.contains_key(name) {
                    let d = json!({"a": 1});
                    tx.doc_create(name, &d).expect("create");
                    m.docs.insert(name.to_owned(), d);
                    return true;
                }
                let path = PATHS[self.rng.below(PATHS.len())];
                let pointer = jsonptr::Pointer::parse(path).expect("path");
                match self.rng.below(4) {
                    0 => {
                        tx.doc_destroy(name).expect("destroy");
                        m.docs.remove(name);
                        true
                    }
                    1 => {
                        let doc = m.docs.get_mut(name).expect("doc");
                        let expected = pointer.delete(doc);
                        let got = tx.doc_delete(name, path);
                        assert_eq!(got.is_ok(), expected.is_some(), "delete {path}: {got:?}");
                        expected.is_some()
                    }
                    _ => {
                        let v = json!({"k": self.rng.below(50)});
                        let doc = m.docs.get_mut(name).expect("doc");
                        let mut trial = doc.clone();
                        let ok = pointer.assign(&mut trial, v.clone()).is_ok();
                        let got = tx.doc_set(name, path, &v);
                        assert_eq!(got.is_ok(), ok, "set {path}: {got:?}");
                        if ok {
                            *doc = trial;
                        }
                        ok
                    }
                }
            }
            6 => {
                let ty = "thought";
                let name = format!("span{}", self.rng.below(10));
                let input = SpanInput::new(SpanKind::Thought, name.clone());
                let parent = if m.spans.is_empty() || self.rng.below(2) == 0 {
                    None
                } else {
                    Some(self.rng.below(m.spans.len()) as u64)
                };
                let id = match parent {
                    None => tx.record(input).expect("record"),
                    Some(p) => tx.record_child(p, input).expect("record child"),
                };
                let _ = ty;
                assert_eq!(id as usize, m.spans.len());
                m.spans.push((parent, name, now));
                true
            }
            _ => {
                let missing = m.spans.len() as u64 + 5;
                assert!(matches!(
                    tx.record_child(missing, SpanInput::new(SpanKind::Decision, "x")),
                    Err(Error::SpanNotFound(_))
                ));
                false
            }
        }
    }

    fn step(&mut self, i: usize) {
        self.clock.advance_millis(1);
        let step = self.runs[i].states.len() as u64 - 1;
        let mut m = self.runs[i].head().clone();
        let mut event_steps = Vec::new();
        let ops = 1 + self.rng.below(3);
        let agent = self.agent.clone();
        let mut wrote = false;
        // The closure runs once here: this handle is the only writer, so nothing conflicts.
        agent
            .run(self.ids[i])
            .transaction(|tx| {
                for _ in 0..ops {
                    wrote |= self.random_write(tx, &mut m, &mut event_steps, step);
                }
                Ok(())
            })
            .expect("transaction");
        let run = &mut self.runs[i];
        if wrote || m != *run.head() {
            run.event_step.extend(event_steps);
            run.states.push(m);
        }
    }

    fn fork(&mut self, i: usize) {
        let parent = &self.runs[i];
        let lo = parent.floor();
        let end = parent.states.len() as u64 - 1;
        let at = lo + self.rng.below((end - lo + 1) as usize) as u64;
        let id = self
            .agent
            .fork_run(
                self.ids[i],
                At::Step(at),
                RunSpec::named(format!("fork of {}", self.ids[i])),
            )
            .expect("fork");
        let states = parent.states[..=at as usize].to_vec();
        let n_events = states.last().expect("s").events.len();
        let child = MRun {
            event_step: parent.event_step[..n_events].to_vec(),
            states,
            oldest: lo,
            lo: at,
            base: 0,
            forks: Vec::new(),
        };
        let next = self.runs.len();
        self.runs[i].forks.push((next, at));
        self.runs.push(child);
        self.ids.push(id);
    }

    fn prune(&mut self, i: usize) {
        let keep = self.rng.below(6) as u64;
        let report = self
            .agent
            .prune(self.ids[i], Retention::KeepSteps(keep))
            .expect("prune");
        let run = &mut self.runs[i];
        let end = run.states.len() as u64 - 1;
        let mut target = end.saturating_sub(keep);
        // Every fork below this run (forks of forks too) holds its fork point's history.
        let mut stack: Vec<usize> = run.forks.iter().map(|f| f.0).collect();
        while let Some(d) = stack.pop() {
            target = target.min(self.runs[d].lo);
            stack.extend(self.runs[d].forks.iter().map(|f| f.0));
        }
        let run = &mut self.runs[i];
        let own = run.lo.max(run.base);
        if target > own {
            run.base = target;
            // The run and every fork below it lose the steps before the new base.
            let mut stack = vec![i];
            while let Some(r) = stack.pop() {
                self.runs[r].oldest = self.runs[r].oldest.max(target);
                stack.extend(self.runs[r].forks.iter().map(|f| f.0));
            }
        }
        let run = &self.runs[i];
        assert_eq!(report.oldest_after, run.lo.max(run.base), "prune kept the wrong history: run {i} keep {keep} end {end} forks {:?} impl forks {:?} report {report:?}", run.forks, self.agent.forks_of(self.ids[i]));
    }

    fn check_state(&self, i: usize, at: u64) {
        let m = &self.runs[i].states[at as usize];
        let got = self
            .agent
            .replay_run(self.ids[i], At::Step(at))
            .expect("replay");
        assert_eq!(got.steps, at);
        assert_eq!(got.kv, m.kv, "kv at step {at} of run {i}");
        let cells: BTreeMap<String, (u64, Vec<u8>)> = got
            .cells
            .iter()
            .map(|(k, c)| (k.clone(), (c.version, c.value.clone())))
            .collect();
        assert_eq!(cells, m.cells, "cells at step {at} of run {i}");
        assert_eq!(got.docs, m.docs, "docs at step {at} of run {i}");
        let events: Vec<(String, Vec<u8>, u64)> = got
            .events
            .iter()
            .map(|e| (e.event_type.clone(), e.payload_bytes().to_vec(), e.time_ms))
            .collect();
        assert_eq!(events, m.events, "events at step {at} of run {i}");
        let spans: Vec<(Option<u64>, String, u64)> = got
            .spans
            .iter()
            .map(|s| (s.parent, s.name.clone(), s.start_ms))
            .collect();
        assert_eq!(spans, m.spans, "spans at step {at} of run {i}");
    }

    fn check_run(&mut self, i: usize) {
        let run = self.runs[i].clone();
        let end = run.states.len() as u64 - 1;
        // Head read == replay to the end.
        let head = self.agent.head_state(self.ids[i]).expect("head");
        let replayed = match self.agent.replay_run(self.ids[i], At::End) {
            Ok(r) => r,
            Err(e) => {
                let info = self.agent.get_run(self.ids[i]).expect("info");
                let hist: Vec<u64> = self
                    .agent
                    .history(self.ids[i], 0, u64::MAX)
                    .expect("h")
                    .iter()
                    .map(|h| h.step)
                    .collect();
                panic!("replay end of run {i}: {e}; fork {:?}; model lo {} base {} oldest {} end {end}; steps {hist:?}; size {:?}", info.fork, run.lo, run.base, run.oldest, self.agent.run_size(self.ids[i]));
            }
        };
        assert_eq!(
            head, replayed,
            "head read and replay to end differ for run {i}"
        );
        self.check_state(i, end);
        let floor = run.floor();
        let at = floor + self.rng.below((end - floor + 1) as usize) as u64;
        self.check_state(i, at);
        // Step 0 (the empty run) needs no history, so it stays replayable. A fork's points up
        // to its fork point may still replay through its parent, so only roots are checked.
        if floor > 1 && !self.is_fork(i) {
            let got = self.agent.replay_run(self.ids[i], At::Step(floor - 1));
            assert!(
                matches!(got, Err(Error::HistoryPruned { .. })),
                "run {i} (oldest {}, lo {}, base {}): replay before the oldest step gave {:?}",
                run.oldest,
                run.lo,
                run.base,
                got.map(|s| s.steps)
            );
        }
        // An event point replays to just after the step that appended it.
        if !run.event_step.is_empty() {
            let seq = self.rng.below(run.event_step.len());
            let step = run.event_step[seq] + 1;
            if step >= floor {
                let got = self
                    .agent
                    .replay_run(self.ids[i], At::Event(seq as u64))
                    .expect("event point");
                assert_eq!(got.steps, step);
            }
        }
        let chain = self.agent.verify_chain(self.ids[i]).expect("verify");
        assert!(chain.is_intact(), "chain of run {i}: {chain:?}");
        assert_eq!(chain.events as usize, run.head().events.len());
        // diff_points between two random kept points.
        let a = floor + self.rng.below((end - floor + 1) as usize) as u64;
        let diff = self
            .agent
            .diff_points(self.ids[i], At::Step(a), At::Step(end))
            .expect("diff points");
        assert_eq!(
            keyed(&diff),
            model_diff(&run.states[a as usize], run.head()),
            "diff_points {a}..{end} of run {i}"
        );
    }

    /// What the index holds for run `i` that contains `word` (`None`: any word), from the
    /// reference: KV and cell values (each one word here), and the events and spans the run
    /// wrote itself (those below a fork point are its parent's documents). Documents hold no
    /// strings in this test, so they are never indexed.
    fn expected_hits(&self, i: usize, word: Option<&str>) -> BTreeSet<(RunId, Primitive, Vec<u8>)> {
        let run = &self.runs[i];
        let id = self.ids[i];
        let head = run.head();
        let inherited = &run.states[run.lo as usize];
        let matches = |text: &[u8]| word.is_none_or(|w| text == w.as_bytes());
        let mut out = BTreeSet::new();
        for (k, v) in &head.kv {
            if matches(v) {
                out.insert((id, Primitive::Kv, k.clone()));
            }
        }
        for (name, (_, v)) in &head.cells {
            if matches(v) {
                out.insert((id, Primitive::Cell, name.as_bytes().to_vec()));
            }
        }
        for (seq, (ty, _, _)) in head.events.iter().enumerate().skip(inherited.events.len()) {
            if matches(ty.as_bytes()) {
                out.insert((id, Primitive::Event, (seq as u64).to_be_bytes().to_vec()));
            }
        }
        for (span, (_, name, _)) in head.spans.iter().enumerate().skip(inherited.spans.len()) {
            if matches(name.as_bytes()) {
                out.insert((id, Primitive::Span, (span as u64).to_be_bytes().to_vec()));
            }
        }
        out
    }

    fn check_search(&mut self) {
        let word = match self.rng.below(4) {
            0 => format!("v{}", self.rng.below(100)),
            1 => format!("s{}", self.rng.below(100)),
            2 => format!("span{}", self.rng.below(10)),
            _ => ["user", "tool", "llm"][self.rng.below(3)].to_owned(),
        };
        let i = self.pick_run();
        let got = |query: AgentQuery| -> BTreeSet<(RunId, Primitive, Vec<u8>)> {
            let results = self.agent.search(&query.top_k(1000)).expect("search");
            results
                .hits
                .iter()
                .map(|h| (h.run, h.primitive, h.key.clone().expect("short key")))
                .collect()
        };
        assert_eq!(
            got(AgentQuery::new(word.clone()).run(self.ids[i])),
            self.expected_hits(i, Some(&word)),
            "search {word:?} in run {i}"
        );
        let all: BTreeSet<_> = (0..self.runs.len())
            .flat_map(|r| self.expected_hits(r, Some(&word)))
            .collect();
        assert_eq!(got(AgentQuery::new(word.clone())), all, "search {word:?}");
        let in_scope = self
            .agent
            .search(&AgentQuery::new(word.clone()).run(self.ids[i]))
            .expect("search")
            .documents_in_scope;
        assert_eq!(
            in_scope as usize,
            self.expected_hits(i, None).len(),
            "documents of run {i} in the index"
        );
    }

    fn is_fork(&self, i: usize) -> bool {
        self.runs.iter().any(|r| r.forks.iter().any(|f| f.0 == i))
    }

    fn check_diff_runs(&mut self) {
        let i = self.pick_run();
        let j = self.pick_run();
        let diff = self
            .agent
            .diff_runs(self.ids[i], self.ids[j])
            .expect("diff runs");
        let (a, b) = (self.runs[i].head(), self.runs[j].head());
        assert_eq!(keyed(&diff), model_diff(a, b), "diff_runs {i} {j}");
        let common = a
            .events
            .iter()
            .zip(&b.events)
            .take_while(|(x, y)| x == y)
            .count();
        assert_eq!(
            diff.events.common as usize, common,
            "event divergence {i} {j}"
        );
        assert_eq!(diff.events.left.is_some(), a.events.len() > common);
        assert_eq!(diff.events.right.is_some(), b.events.len() > common);
        if let (Some(l), Some(r)) = (&diff.events.left, &diff.events.right) {
            assert_ne!(l.hash, r.hash, "diverging events have different hashes");
        }
    }

    fn reopen(&mut self) {
        self.agent.db().close().expect("close");
        let (agent, orphaned) = open(&self.dir, &self.clock);
        self.agent = agent;
        let mut expected: Vec<RunId> = self.ids.clone();
        expected.sort_unstable();
        assert_eq!(
            orphaned, expected,
            "every active run is reported orphaned after reopen"
        );
        for &id in &self.ids {
            assert_eq!(
                self.agent.get_run(id).expect("run").status,
                RunStatus::Orphaned
            );
            self.agent
                .set_status(id, RunStatus::Active)
                .expect("resume");
        }
    }
}

type Keyed = BTreeSet<(Primitive, Vec<u8>, &'static str)>;

fn kind(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
    }
}

fn keyed(diff: &cairn_agent::Diff) -> Keyed {
    diff.changes
        .iter()
        .map(|c| (c.primitive, c.key.clone(), kind(c.kind)))
        .collect()
}

fn diff_map<K: Ord, V: PartialEq>(
    out: &mut Keyed,
    p: Primitive,
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
    key: impl Fn(&K) -> Vec<u8>,
) {
    for (k, v) in a {
        match b.get(k) {
            None => {
                out.insert((p, key(k), "removed"));
            }
            Some(w) if w != v => {
                out.insert((p, key(k), "changed"));
            }
            Some(_) => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            out.insert((p, key(k), "added"));
        }
    }
}

fn model_diff(a: &MState, b: &MState) -> Keyed {
    let mut out = Keyed::new();
    diff_map(&mut out, Primitive::Kv, &a.kv, &b.kv, Clone::clone);
    let cells = |m: &MState| {
        m.cells
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    diff_map(&mut out, Primitive::Cell, &cells(a), &cells(b), |k| {
        k.as_bytes().to_vec()
    });
    diff_map(&mut out, Primitive::Doc, &a.docs, &b.docs, |k| {
        k.as_bytes().to_vec()
    });
    let spans = |m: &MState| {
        m.spans
            .iter()
            .enumerate()
            .map(|(i, s)| (i as u64, s.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    diff_map(&mut out, Primitive::Span, &spans(a), &spans(b), |k| {
        k.to_be_bytes().to_vec()
    });
    out
}

fn run_seed(seed: u64, ops: usize) {
    let dir = TempDir::new("agent-model");
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (agent, orphaned) = open(&dir, &clock);
    assert!(orphaned.is_empty());
    let mut ctx = Ctx {
        rng: SplitMix64::new(seed),
        clock,
        agent,
        ids: Vec::new(),
        runs: Vec::new(),
        dir,
    };
    for n in 0..3 {
        let id = ctx
            .agent
            .begin_run(RunSpec::named(format!("run {n}")).tag("model"))
            .expect("begin");
        ctx.ids.push(id);
        ctx.runs.push(MRun {
            states: vec![MState::default()],
            event_step: Vec::new(),
            oldest: 0,
            lo: 0,
            base: 0,
            forks: Vec::new(),
        });
    }
    for _ in 0..ops {
        let i = ctx.pick_run();
        match ctx.rng.below(40) {
            28..=29 if ctx.runs.len() < 12 => ctx.fork(i),
            30 => ctx.prune(i),
            31..=34 => ctx.check_run(i),
            35..=36 => ctx.check_diff_runs(),
            37 => ctx.check_search(),
            38 if ctx.rng.below(4) == 0 => ctx.reopen(),
            _ => ctx.step(i),
        }
    }
    ctx.reopen();
    for i in 0..ctx.runs.len() {
        ctx.check_run(i);
    }
    ctx.check_search();
}

#[test]
fn agent_matches_reference_model() {
    let seeds: Vec<u64> = if let Ok(s) = std::env::var("CAIRN_AGENT_MODEL_SEED") {
        vec![s.parse().expect("seed")]
    } else {
        let n: u64 = std::env::var("CAIRN_AGENT_MODEL_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(6);
        (0..n).map(|i| 0x5eed_a9e7 ^ (i * 0x9e37_79b9)).collect()
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| run_seed(seed, 400));
        if let Err(panic) = outcome {
            eprintln!("agent model test failed with seed {seed} (CAIRN_AGENT_MODEL_SEED={seed})");
            std::panic::resume_unwind(panic);
        }
    }
}

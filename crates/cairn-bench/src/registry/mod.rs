//! The registry: every workload Cairn is benchmarked on, in one list that criterion
//! (`benches/registry.rs`, through [`Entry::timed`]) and `cairn bench` (through [`Entry::run`])
//! both iterate. A [`Derived`] row divides two measured rows once both exist.

pub mod agent;
pub mod agent_search;
pub mod engine;
pub mod memtable;
pub mod resp;
pub mod side_by_side;
pub mod streams;

use crate::measure::{Budget, Plan};
use crate::peers::{Label, Places};
use crate::report::Row;
use crate::side_by_side::PeerFixture;
use crate::sizes::VALUE_BYTES;
use crate::targets::Limit;
use crate::workloads::{Fixture, ParallelWorkload, Result, Workload, WorkloadError};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What an entry measures, for `--kind`; `Other` (ratios, counts, sizes) runs under either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub enum Kind {
    Latency,
    Throughput,
    Other,
}

impl Kind {
    /// True when an entry of this kind runs under `--kind wanted`.
    pub fn selected_by(self, wanted: Kind) -> bool {
        self == wanted || self == Kind::Other || wanted == Kind::Other
    }
}

/// One workload instance criterion can time.
pub enum Timed {
    /// One operation at a time ([`crate::measure::time_runs`]).
    Single(Box<dyn Workload>),
    /// Whole multi-threaded runs.
    Parallel(Box<dyn ParallelWorkload>),
}

type RunFn = dyn Fn(&mut Context, &str) -> Result<Vec<Row>>;
type TimedFn = dyn Fn(&mut Context) -> Result<Vec<(String, Timed)>>;

/// One named workload of the registry.
pub struct Entry {
    /// Its name: the first part of every row it produces, and criterion's group.
    pub name: String,
    /// What it measures.
    pub kind: Kind,
    run: Arc<RunFn>,
    timed: Option<Arc<TimedFn>>,
}

impl Entry {
    pub(crate) fn new(
        name: impl Into<String>,
        kind: Kind,
        run: impl Fn(&mut Context, &str) -> Result<Vec<Row>> + 'static,
    ) -> Self {
        Entry {
            name: name.into(),
            kind,
            run: Arc::new(run),
            timed: None,
        }
    }

    pub(crate) fn timed_by(
        mut self,
        timed: impl Fn(&mut Context) -> Result<Vec<(String, Timed)>> + 'static,
    ) -> Self {
        self.timed = Some(Arc::new(timed));
        self
    }

    /// True when the entry measures Redis too, given a server.
    pub fn may_use_redis(&self) -> bool {
        let mut prefixes = std::iter::once("peers/").chain(streams::WITH_REDIS);
        prefixes.any(|prefix| self.name.starts_with(prefix))
    }

    /// True when `filter` is part of the name.
    pub fn matches(&self, filter: &str) -> bool {
        self.name.contains(filter)
    }

    /// True when the entry makes `row`: its name, alone or followed by `/` or a space.
    pub fn makes(&self, row: &str) -> bool {
        row.strip_prefix(self.name.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ' ']))
    }

    /// Measures the workload as `cairn bench` does; returns its rows.
    pub fn run(&self, context: &mut Context) -> Result<Vec<Row>> {
        context.step.clone_from(&self.name);
        (self.run)(context, &self.name)
    }

    /// The workloads criterion times, by store; `None` for a one-shot entry (fills, memory).
    pub fn timed(&self, context: &mut Context) -> Option<Result<Vec<(String, Timed)>>> {
        let timed = self.timed.as_ref()?;
        context.step.clone_from(&self.name);
        Some(timed(context))
    }
}

/// A row named `name` computed from two measured rows: `numerator.value / denominator.value`.
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct Derived {
    pub name: String,
    pub numerator: String,
    pub denominator: String,
    explained: &'static str,
    target: Option<Limit>,
    goal: Option<Limit>,
}

impl Derived {
    pub(crate) fn new(
        name: impl Into<String>,
        [numerator, denominator]: [String; 2],
        explained: &'static str,
        target: Option<Limit>,
        goal: Option<Limit>,
    ) -> Self {
        Derived {
            name: name.into(),
            numerator,
            denominator,
            explained,
            target,
            goal,
        }
    }

    /// The derived row, once both inputs are among `rows`.
    pub fn compute(&self, rows: &[Row]) -> Option<Row> {
        let find = |name: &str| rows.iter().find(|row| row.name == name).map(|r| r.value);
        let (numerator, denominator) = (find(&self.numerator)?, find(&self.denominator)?);
        let row = Row::ratio(&self.name, numerator, denominator, self.explained);
        Some(row.check(self.target.as_ref(), self.goal.as_ref()))
    }
}

/// Every entry, in the order a run measures them.
pub fn entries(quick: bool) -> Vec<Entry> {
    let mut entries = side_by_side::entries(quick);
    entries.extend(engine::entries(quick));
    entries.extend(streams::entries(quick));
    entries.extend(memtable::entries(quick));
    entries.extend(agent::entries(quick));
    entries.extend(agent_search::entries(quick));
    entries.extend(resp::entries(quick));
    entries
}

/// Every derived row.
pub fn derived(quick: bool) -> Vec<Derived> {
    let mut derived = side_by_side::derived(quick);
    derived.extend(engine::derived(quick));
    derived.extend(streams::derived(quick));
    derived.extend(memtable::derived(quick));
    derived
}

/// The CI gate: generous bounds, mostly on same-run ratios.
pub fn gates(quick: bool) -> Vec<(String, crate::targets::Limit)> {
    let mut gates = engine::gates(quick);
    gates.extend(streams::gates(quick));
    gates
}

/// Keys of the read fixtures: 1M, or 100K in quick mode.
pub const READ_KEYS: usize = 1_000_000;
/// [`READ_KEYS`] in quick mode.
pub const READ_KEYS_QUICK: usize = 100_000;

pub(crate) fn read_keys(quick: bool) -> usize {
    by_mode(quick, READ_KEYS_QUICK, READ_KEYS)
}

pub(crate) fn by_mode<T>(quick: bool, quick_value: T, full: T) -> T {
    if quick {
        quick_value
    } else {
        full
    }
}

/// A peer fixture's label, value length and tag (`None` for an engine fixture), and its keys.
type FixtureKey = (Option<(Label, usize, &'static str)>, usize);

type Status = Box<dyn FnMut(&str)>;

/// State shared by the entries of one run: fixtures built once, the plans, the status line.
pub struct Context {
    pub(crate) quick: bool,
    seconds: Option<Duration>,
    pub(crate) places: Places,
    fixtures: BTreeMap<FixtureKey, Box<dyn Any>>,
    status: Status,
    step: String,
}

impl Context {
    /// A run; `seconds` overrides every timed row's measurement, `status` shows long setups.
    pub fn new(quick: bool, seconds: Option<Duration>, places: Places, status: Status) -> Self {
        Context {
            quick,
            seconds,
            places,
            fixtures: BTreeMap::new(),
            status,
            step: String::new(),
        }
    }

    pub(crate) fn has_redis(&self) -> bool {
        self.places.redis_url.is_some()
    }

    pub(crate) fn read_keys(&self) -> usize {
        read_keys(self.quick)
    }

    /// `full` in full mode, divided by `divisor` in quick mode.
    pub(crate) fn scaled(&self, full: u64, divisor: u64) -> u64 {
        by_mode(self.quick, (full / divisor).max(1), full)
    }

    /// Latency and single-thread throughput rows: 0.2 s (quick) or 2 s per row.
    pub fn latency_plan(&self) -> Plan {
        self.time_plan((50, 200), (300, 2_000))
    }

    /// Multi-threaded rows.
    pub fn parallel_plan(&self) -> Plan {
        self.time_plan((20, 300), (200, 2_000))
    }

    /// Warm-up and measurement, in ms; `--seconds` overrides the latter.
    fn time_plan(&self, quick: (u64, u64), full: (u64, u64)) -> Plan {
        let (warm_up, measure_for) = if self.quick { quick } else { full };
        let measure_for = self.seconds.unwrap_or(Duration::from_millis(measure_for));
        Plan::new(Duration::from_millis(warm_up), Budget::Time(measure_for))
    }

    /// One-shot operations (opens, checkpoints): a few whole runs, their median reported.
    pub fn runs_plan(&self, full: u64, quick: u64) -> Plan {
        let runs = by_mode(self.quick, quick, full);
        Plan::new(Duration::ZERO, Budget::Runs(runs))
    }

    /// Tells the status line that the current entry is building something large.
    pub fn building(&mut self, what: &str) {
        (self.status)(&format!("{}: building {what}", self.step));
    }

    /// Tells the status line that the build is done.
    pub fn building_done(&mut self) {
        (self.status)(&self.step);
    }

    /// `label`'s store of `keys` keys, built once and shared by the entries asking for `tag`.
    pub fn peer_fixture(
        &mut self,
        label: Label,
        keys: usize,
        value_bytes: usize,
        tag: &'static str,
    ) -> Result<Arc<PeerFixture>> {
        let what = format!("a {keys}-key {label} store");
        self.fixture(Some((label, value_bytes, tag)), keys, &what, |places| {
            PeerFixture::build(label, places, keys, value_bytes).map(Arc::new)
        })
    }

    /// A read-only in-memory `Db` of `keys` keys with 100-byte values, built on first request.
    pub fn engine_fixture(&mut self, keys: usize) -> Result<Fixture> {
        let what = format!("a {keys}-key database");
        self.fixture(None, keys, &what, |_| Fixture::build(keys, VALUE_BYTES))
    }

    fn fixture<F: Any + Clone>(
        &mut self,
        peer: Option<(Label, usize, &'static str)>,
        keys: usize,
        what: &str,
        build: impl FnOnce(&Places) -> Result<F>,
    ) -> Result<F> {
        let cached = self.fixtures.get(&(peer, keys));
        if let Some(fixture) = cached.and_then(|fixture| fixture.downcast_ref::<F>()) {
            return Ok(fixture.clone());
        }
        self.building(what);
        let fixture = build(&self.places)?;
        self.building_done();
        self.fixtures
            .insert((peer, keys), Box::new(fixture.clone()));
        Ok(fixture)
    }
}

pub(crate) fn nothing_to_measure(workload: &'static str) -> WorkloadError {
    WorkloadError::unexpected(workload, "no store of this class to measure")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_derived_and_gate_row_has_its_inputs() {
        for quick in [true, false] {
            let (entries, derived) = (entries(quick), derived(quick));
            let mut names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), entries.len(), "duplicate entry names");
            let made = |row: &str| entries.iter().any(|entry| entry.makes(row));
            for row in &derived {
                for input in [&row.numerator, &row.denominator] {
                    assert!(made(input), "{}: no entry makes {input}", row.name);
                }
            }
            for (gate, _) in gates(quick) {
                let derived = derived.iter().any(|row| row.name == gate);
                assert!(made(&gate) || derived, "nothing makes gate {gate}");
            }
        }
    }

    #[test]
    fn a_derived_row_divides_its_inputs_and_checks_its_bounds() {
        let rows = [("a", 3.0), ("b", 2.0)].map(|(name, value)| Row::ratio(name, value, 1.0, ""));
        let inputs = |b: &str| ["a".to_owned(), b.to_owned()];
        let scaling = Some(crate::targets::READ_SCALING);
        let row = Derived::new("a vs b", inputs("b"), "test", scaling, None).compute(&rows);
        let row = row.expect("both inputs are there");
        assert!((row.value - 1.5).abs() < 1e-9);
        assert_eq!(row.pass, Some(false), "1.5x misses >= 1.7x");
        let missing = Derived::new("x", inputs("missing"), "test", None, None);
        assert!(missing.compute(&rows).is_none());
    }
}

//! Drivers that time workloads, with [`Workload::prepare`] called off the clock before each
//! timed group. A latency sample is the mean of a group of `ops_per_sample` operations, since a
//! clock read per operation ([`timer_overhead_ns`]) would show in a figure of a few hundred ns.
//! Several workloads are measured in turns, so that every store sees the same machine state.

use crate::workloads::{ParallelWorkload, Result, Workload, WorkloadError};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// The most operations a driver asks `prepare` to make ready at once.
pub const PREPARE_RUNS_MAX: usize = 1_024;

/// Largest latency the histogram holds (one hour, in ns); longer samples are clamped to it.
const LATENCY_NS_MAX: u64 = 3_600 * 1_000_000_000;

/// How long one workload runs before the next one's turn in a round robin: long enough that
/// its data is back in cache for most of its turn. With 5 ms turns, gets of two 10,000-key
/// in-memory stores measured about 3x slower each than measured alone; with 25 ms, as fast.
pub const ALTERNATION_TURN: Duration = Duration::from_millis(25);

/// When a measurement stops: after this wall time per workload, or exactly this many runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub enum Budget {
    Time(Duration),
    Runs(u64),
}

impl Budget {
    fn spent(self, started: Instant, runs: &[u64]) -> bool {
        match self {
            Budget::Time(limit) => {
                let count = u32::try_from(runs.len()).unwrap_or(u32::MAX);
                runs.first().is_some_and(|&first| first > 0) && started.elapsed() >= limit * count
            }
            Budget::Runs(limit) => runs.iter().all(|&done| done >= limit),
        }
    }
}

/// How long to warm up (untimed, per workload), then how much to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct Plan {
    pub warm_up: Duration,
    pub budget: Budget,
}

impl Plan {
    #[allow(missing_docs, reason = "the type's docs say it")]
    pub const fn new(warm_up: Duration, budget: Budget) -> Self {
        Plan { warm_up, budget }
    }
}

/// Per-operation latency percentiles, in ns, of `samples` samples of `ops_per_sample` ops.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs, reason = "the names say it")]
pub struct Latency {
    pub samples: u64,
    pub ops_per_sample: u32,
    pub p50_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
}

/// Engine operations per second over the time measured inside `runs` runs (0 for none).
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs, reason = "the type's docs say it")]
pub struct Throughput {
    pub runs: u64,
    pub engine_ops: u64,
    pub measured: Duration,
    pub ops_per_sec: f64,
}

impl Throughput {
    /// `engine_ops` over `measured`.
    pub fn new(runs: u64, engine_ops: u64, measured: Duration) -> Self {
        let seconds = measured.as_secs_f64();
        let ops = count_as_f64(engine_ops);
        let ops_per_sec = if seconds > 0.0 { ops / seconds } else { 0.0 };
        Throughput {
            runs,
            engine_ops,
            measured,
            ops_per_sec,
        }
    }
}

/// Runs `runs` operations, `prepare` off the clock before each chunk; returns their time.
pub fn time_runs<W: Workload + ?Sized>(workload: &mut W, runs: u64) -> Result<Duration> {
    let mut measured = Duration::ZERO;
    for first in (0..runs).step_by(PREPARE_RUNS_MAX) {
        let chunk =
            usize::try_from(runs - first).map_or(PREPARE_RUNS_MAX, |n| n.min(PREPARE_RUNS_MAX));
        workload.prepare(chunk)?;
        let start = Instant::now();
        workload.run_ops(chunk)?;
        measured += start.elapsed();
    }
    Ok(measured)
}

/// Records the latency of `workload`'s operation: a round robin of one.
pub fn measure_latency(workload: &mut dyn Workload, plan: Plan, group: u32) -> Result<Latency> {
    let latencies = measure_latency_round_robin(&mut [workload], plan, group, None)?;
    let none = || WorkloadError::unexpected("measure", "a round robin of one measured nothing");
    latencies.into_iter().next().ok_or_else(none)
}

/// Records the latency of several workloads in turns (the warm-up too): groups of
/// `ops_per_sample` operations (clamped to 1 ..= [`PREPARE_RUNS_MAX`]) of each for a turn of at
/// least `turn` ([`ALTERNATION_TURN`] when `None`; a zero turn is one group).
pub fn measure_latency_round_robin(
    workloads: &mut [&mut dyn Workload],
    plan: Plan,
    ops_per_sample: u32,
    turn: Option<Duration>,
) -> Result<Vec<Latency>> {
    let group =
        usize::try_from(ops_per_sample).map_or(PREPARE_RUNS_MAX, |n| n.clamp(1, PREPARE_RUNS_MAX));
    let histogram = || Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3);
    let histograms: Result<Vec<_>, _> = workloads.iter().map(|_| histogram()).collect();
    let failed = |error| WorkloadError::unexpected("measure", format!("histogram: {error}"));
    let mut histograms = histograms.map_err(failed)?;
    let turn = turn.unwrap_or(ALTERNATION_TURN);
    round_robin(workloads, plan, turn, |index, workload, _, record| {
        workload.prepare(group)?;
        let start = Instant::now();
        workload.run_ops(group)?;
        let per_op = (nanos(start.elapsed()) / group as u64).max(1);
        if let Some(histogram) = histograms.get_mut(index).filter(|_| record) {
            histogram.saturating_record(per_op);
        }
        Ok(group as u64)
    })?;
    let latency = |histogram: &Histogram<u64>| Latency {
        samples: histogram.len(),
        ops_per_sample: u32::try_from(group).unwrap_or(u32::MAX),
        p50_ns: histogram.value_at_quantile(0.50),
        p95_ns: histogram.value_at_quantile(0.95),
        p99_ns: histogram.value_at_quantile(0.99),
        p999_ns: histogram.value_at_quantile(0.999),
        max_ns: histogram.max(),
        mean_ns: histogram.mean(),
    };
    Ok(histograms.iter().map(latency).collect())
}

/// [`measure_latency_round_robin`] for throughput, in chunks of about a millisecond of runs.
pub fn measure_throughput_round_robin(
    workloads: &mut [&mut dyn Workload],
    plan: Plan,
) -> Result<Vec<Throughput>> {
    let mut chunks = Vec::new();
    for workload in workloads.iter_mut() {
        let mut runs = 1_u64;
        while time_runs(&mut **workload, runs)? < Duration::from_millis(1) && runs < 1 << 20 {
            runs *= 2;
        }
        chunks.push(runs);
    }
    let mut measured = vec![Duration::ZERO; workloads.len()];
    let turn = ALTERNATION_TURN;
    let runs = round_robin(workloads, plan, turn, |index, workload, left, record| {
        let chunk = chunks.get(index).map_or(1, |&chunk| chunk.min(left));
        let took = time_runs(workload, chunk)?;
        if let Some(total) = measured.get_mut(index).filter(|_| record) {
            *total += took;
        }
        Ok(chunk)
    })?;
    let figures = workloads.iter().zip(runs).zip(measured);
    let throughput = |((workload, runs), took): ((&&mut dyn Workload, u64), Duration)| {
        Throughput::new(runs, runs * workload.engine_ops_per_run(), took)
    };
    Ok(figures.map(throughput).collect())
}

/// Warms up, then calls `step` in turns lasting at least `turn` until `plan`'s budget is spent.
fn round_robin(
    workloads: &mut [&mut dyn Workload],
    plan: Plan,
    turn: Duration,
    mut step: impl FnMut(usize, &mut dyn Workload, u64, bool) -> Result<u64>,
) -> Result<Vec<u64>> {
    let mut runs = vec![0_u64; workloads.len()];
    if workloads.is_empty() {
        return Ok(runs);
    }
    let count = u32::try_from(workloads.len()).unwrap_or(u32::MAX);
    let mut take_turns = |runs: &mut [u64], limit: u64, record: bool| -> Result<()> {
        for (index, (workload, done)) in workloads.iter_mut().zip(runs).enumerate() {
            let started = Instant::now();
            while *done < limit {
                let ran = step(index, &mut **workload, limit - *done, record)?;
                *done = done.saturating_add(ran);
                if ran == 0 || started.elapsed() >= turn {
                    break;
                }
            }
        }
        Ok(())
    };
    let mut scratch = vec![0_u64; runs.len()];
    let warm = plan.warm_up * count;
    warm_up(warm, || take_turns(&mut scratch, u64::MAX, false))?;
    let started = Instant::now();
    let limit = match plan.budget {
        Budget::Runs(limit) => limit,
        Budget::Time(_) => u64::MAX,
    };
    while !plan.budget.spent(started, &runs) {
        take_turns(&mut runs, limit, true)?;
    }
    Ok(runs)
}

/// The throughput of a parallel workload: engine operations over the wall time of its runs.
pub fn measure_parallel<P: ParallelWorkload + ?Sized>(
    workload: &mut P,
    plan: Plan,
) -> Result<Throughput> {
    warm_up(plan.warm_up, || workload.run().map(drop))?;
    let started = Instant::now();
    let (mut runs, mut measured) = (0_u64, Duration::ZERO);
    while !plan.budget.spent(started, &[runs]) {
        measured += workload.run()?;
        runs += 1;
    }
    let engine_ops = runs * workload.engine_ops_per_run();
    Ok(Throughput::new(runs, engine_ops, measured))
}

/// The median cost of one `Instant::now()` call on this machine, in nanoseconds.
pub fn timer_overhead_ns() -> u64 {
    median((0..101).map(|_| {
        let start = Instant::now();
        nanos(Instant::now().duration_since(start))
    }))
}

/// The median of `values` (the lower middle for an even count), or the default when empty.
pub fn median<T: Ord + Copy + Default>(values: impl IntoIterator<Item = T>) -> T {
    let mut sorted: Vec<T> = values.into_iter().collect();
    sorted.sort_unstable();
    let middle = sorted.get(sorted.len().saturating_sub(1) / 2);
    middle.copied().unwrap_or_default()
}

/// Converts a count to `f64` for rates and ratios (exact below 2^53, ample for op counts).
#[expect(
    clippy::cast_precision_loss,
    reason = "operation counts stay far below 2^53, where f64 is exact"
)]
pub fn count_as_f64(count: u64) -> f64 {
    count as f64
}

fn warm_up(duration: Duration, mut step: impl FnMut() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < duration {
        step()?;
    }
    Ok(())
}

pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its operations; every `prepare` must come before the operations it covers.
    #[derive(Default)]
    struct Counting {
        prepared: usize,
        ran: u64,
    }

    impl Workload for Counting {
        fn prepare(&mut self, runs: usize) -> Result<()> {
            assert!(runs <= PREPARE_RUNS_MAX);
            self.prepared += runs;
            Ok(())
        }

        fn run_op(&mut self) -> Result<()> {
            assert!(self.prepared > 0, "an operation ran without prepare");
            self.prepared -= 1;
            self.ran += 1;
            Ok(())
        }
    }

    #[test]
    fn drivers_run_every_workload_exactly_the_runs_asked_prepared() {
        let mut counting = Counting::default();
        time_runs(&mut counting, 5_000).expect("counting cannot fail");
        assert_eq!(counting.ran, 5_000);
        let plan = Plan::new(Duration::ZERO, Budget::Runs(100));
        for (turn, group) in [(None, 16), (Some(Duration::ZERO), 1)] {
            let (mut first, mut second) = (Counting::default(), Counting::default());
            let pair: &mut [&mut dyn Workload] = &mut [&mut first, &mut second];
            let latencies = measure_latency_round_robin(pair, plan, group, turn).expect("counts");
            let samples = 100_u64.div_ceil(u64::from(group));
            for latency in latencies {
                assert_eq!((latency.samples, latency.ops_per_sample), (samples, group));
            }
            let ran = samples * u64::from(group);
            assert_eq!((first.ran, second.ran), (ran, ran));
        }
        let (mut first, mut second) = (Counting::default(), Counting::default());
        let pair: &mut [&mut dyn Workload] = &mut [&mut first, &mut second];
        let throughputs = measure_throughput_round_robin(pair, plan).expect("counts");
        assert!(throughputs
            .iter()
            .all(|t| t.runs == 100 && t.engine_ops == 100));
    }

    #[test]
    fn median_takes_the_lower_middle() {
        let medians = (median([5, 1, 3]), median([4, 1, 3, 2]), median::<u64>([]));
        assert_eq!(medians, (3, 2, 0));
    }
}

//! Drivers that time workloads: batches for criterion, histograms and throughputs for
//! `cairn bench`.
//!
//! - [`time_runs`] times `n` operations and returns only the time spent in them: `prepare` runs
//!   between timed chunks, off the clock. Criterion's `iter_custom` calls it.
//!
//! Every driver times a group through [`Workload::run_ops`], so a workload that must enter an
//! async runtime does so once per group, not once per operation.
//! - [`measure_latency`] records per-operation latency in an HDR histogram (3 significant
//!   digits) and reports p50/p95/p99/p99.9. A sample is one group of `ops_per_sample`
//!   consecutive operations timed together, recorded as the group's mean: for operations of a
//!   few hundred nanoseconds, one `Instant::now()` pair per operation (see
//!   [`timer_overhead_ns`]) would be a visible part of what is measured. Grouping averages
//!   the tail inside a group, so a grouped p99 understates the single-operation p99.
//! - [`measure_latency_round_robin`] and [`measure_throughput_round_robin`] do the same for
//!   several workloads in turns of [`ALTERNATION_TURN`] each, so that every store sees the
//!   same machine state; [`measure_latency`] and [`measure_throughput`] are a round robin of
//!   one.
//! - [`measure_parallel`] runs a multi-threaded workload until a budget is spent and reports
//!   engine operations per second of measured time.
//!
//! Every driver first warms the workload up (caches, allocator, branch predictors) for the
//! plan's warm-up time, then measures.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::workloads::{ParallelWorkload, Result, Workload, WorkloadError};

/// The most operations a driver asks `prepare` to make ready at once (and so the largest
/// untimed gap inside a timed batch). Workloads that consume state size their pools by it.
pub const PREPARE_RUNS_MAX: usize = 1_024;

/// Largest latency the histogram holds (one hour, in ns); longer samples are clamped to it.
const LATENCY_NS_MAX: u64 = 3_600 * 1_000_000_000;

/// When a measurement stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// After this much wall time (at least one sample or run is always taken).
    Time(Duration),
    /// After exactly this many runs of the operation (for a latency measurement, rounded up
    /// to whole samples).
    Runs(u64),
}

/// How long to warm up, then how much to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Untimed, unrecorded work before measuring.
    pub warm_up: Duration,
    /// What to measure.
    pub budget: Budget,
}

impl Budget {
    fn spent(self, elapsed: Duration, runs: u64) -> bool {
        match self {
            Budget::Time(limit) => runs > 0 && elapsed >= limit,
            Budget::Runs(limit) => runs >= limit,
        }
    }
}

/// Per-operation latency percentiles, in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    /// Samples recorded.
    pub samples: u64,
    /// Operations timed together in each sample.
    pub ops_per_sample: u32,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
    /// Mean of the samples.
    pub mean_ns: f64,
}

/// Engine operations per second over the measured time.
#[derive(Clone, Debug, PartialEq)]
pub struct Throughput {
    /// Runs of the workload's operation (or of the parallel workload) measured.
    pub runs: u64,
    /// Engine operations those runs made.
    pub engine_ops: u64,
    /// Time spent inside the runs.
    pub measured: Duration,
    /// `engine_ops / measured`.
    pub ops_per_sec: f64,
}

/// Runs `runs` operations and returns the time spent inside them; `prepare` runs off the
/// clock before every chunk of at most [`PREPARE_RUNS_MAX`] operations.
pub fn time_runs<W: Workload + ?Sized>(workload: &mut W, runs: u64) -> Result<Duration> {
    let mut left = runs;
    let mut measured = Duration::ZERO;
    while left > 0 {
        let chunk = usize::try_from(left).map_or(PREPARE_RUNS_MAX, |n| n.min(PREPARE_RUNS_MAX));
        workload.prepare(chunk)?;
        let start = Instant::now();
        workload.run_ops(chunk)?;
        measured += start.elapsed();
        left -= chunk as u64;
    }
    Ok(measured)
}

/// Records the latency of `workload`'s operation, `ops_per_sample` operations per sample
/// (clamped to 1 ..= [`PREPARE_RUNS_MAX`]): a round robin of one.
pub fn measure_latency(
    workload: &mut dyn Workload,
    plan: Plan,
    ops_per_sample: u32,
) -> Result<Latency> {
    only(measure_latency_round_robin(
        &mut [workload],
        plan,
        ops_per_sample,
    )?)
}

/// Records the latency of several workloads in turns: a turn of the first, then of the
/// second, ..., then the first again, each turn at least [`ALTERNATION_TURN`] of groups of
/// `ops_per_sample` operations, each group prepared (untimed) and timed on its own. A time
/// budget is per workload: the measurement runs until `workloads.len()` times the budget has
/// passed; `Budget::Runs(n)` is `n` runs of each, rounded up to whole groups. The warm-up
/// takes turns too. Workloads measured this way see the same machine state, second by
/// second, so their ratios hold on a noisy machine even when absolute figures drift; turns of
/// several milliseconds (rather than one group each) let each workload's data come back into
/// the caches at the start of its turn and stay there, as it would when measured alone.
pub fn measure_latency_round_robin(
    workloads: &mut [&mut dyn Workload],
    plan: Plan,
    ops_per_sample: u32,
) -> Result<Vec<Latency>> {
    let group = usize::try_from(ops_per_sample)
        .unwrap_or(PREPARE_RUNS_MAX)
        .clamp(1, PREPARE_RUNS_MAX);
    if workloads.is_empty() {
        return Ok(Vec::new());
    }
    warm_up(plan.warm_up * count_u32(workloads.len()), || {
        for workload in workloads.iter_mut() {
            take_turn(&mut **workload, group, u64::MAX, None)?;
        }
        Ok(())
    })?;
    let mut histograms = workloads
        .iter()
        .map(|_| latency_histogram())
        .collect::<Result<Vec<_>>>()?;
    let mut runs = vec![0_u64; workloads.len()];
    let runs_max = match plan.budget {
        Budget::Runs(limit) => limit,
        Budget::Time(_) => u64::MAX,
    };
    let started = Instant::now();
    loop {
        if round_robin_spent(plan.budget, started, &runs) {
            break;
        }
        for ((workload, histogram), done) in workloads
            .iter_mut()
            .zip(histograms.iter_mut())
            .zip(runs.iter_mut())
        {
            *done += take_turn(
                &mut **workload,
                group,
                runs_max.saturating_sub(*done),
                Some(histogram),
            )?;
        }
    }
    Ok(histograms
        .iter()
        .map(|histogram| latency_of(histogram, group))
        .collect())
}

/// Measures the single-thread throughput of several workloads in turns, as
/// [`measure_latency_round_robin`] does for latency: turns of at least [`ALTERNATION_TURN`],
/// each made of chunks of about a millisecond of runs, until every workload has had `plan`'s
/// budget (a time budget is per workload).
pub fn measure_throughput_round_robin(
    workloads: &mut [&mut dyn Workload],
    plan: Plan,
) -> Result<Vec<Throughput>> {
    let chunks = workloads
        .iter_mut()
        .map(|workload| runs_per_millisecond(&mut **workload))
        .collect::<Result<Vec<u64>>>()?;
    if workloads.is_empty() {
        return Ok(Vec::new());
    }
    warm_up(plan.warm_up * count_u32(workloads.len()), || {
        for (workload, &chunk) in workloads.iter_mut().zip(&chunks) {
            time_runs(&mut **workload, chunk)?;
        }
        Ok(())
    })?;
    let mut runs = vec![0_u64; workloads.len()];
    let mut measured = vec![Duration::ZERO; workloads.len()];
    let started = Instant::now();
    loop {
        if round_robin_spent(plan.budget, started, &runs) {
            break;
        }
        for (index, workload) in workloads.iter_mut().enumerate() {
            let turn = Instant::now();
            loop {
                let chunk = match plan.budget {
                    Budget::Runs(limit) => chunks[index].min(limit.saturating_sub(runs[index])),
                    Budget::Time(_) => chunks[index],
                };
                if chunk == 0 {
                    break;
                }
                measured[index] += time_runs(&mut **workload, chunk)?;
                runs[index] += chunk;
                if turn.elapsed() >= ALTERNATION_TURN {
                    break;
                }
            }
        }
    }
    Ok(workloads
        .iter()
        .zip(runs.iter().zip(&measured))
        .map(|(workload, (&runs, &measured))| {
            throughput(runs, runs * workload.engine_ops_per_run(), measured)
        })
        .collect())
}

/// True when a round robin over `runs.len()` workloads has spent `budget`: a time budget is
/// per workload, a run budget is that many runs of each.
fn round_robin_spent(budget: Budget, started: Instant, runs: &[u64]) -> bool {
    match budget {
        Budget::Time(limit) => {
            runs.first().is_some_and(|&first| first > 0)
                && started.elapsed() >= limit * count_u32(runs.len())
        }
        Budget::Runs(limit) => runs.iter().all(|&done| done >= limit),
    }
}

/// `count` as a `u32` multiplier of a duration (saturating; counts here are small).
fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// How long one workload runs before the next one's turn in a round robin:
/// long enough that a workload's data is back in cache for most of its turn. With 5 ms turns,
/// gets of two 10,000-key in-memory stores measured about 3x slower each than measured alone;
/// with 25 ms turns, as fast as alone.
pub const ALTERNATION_TURN: Duration = Duration::from_millis(25);

/// One turn of an alternating measurement: groups of `group` operations until
/// [`ALTERNATION_TURN`] has passed or `runs_left` operations are done (at least one group
/// when any are left), each recorded into `histogram` if given. Returns the operations run.
fn take_turn<W: Workload + ?Sized>(
    workload: &mut W,
    group: usize,
    runs_left: u64,
    mut histogram: Option<&mut Histogram<u64>>,
) -> Result<u64> {
    let started = Instant::now();
    let mut runs = 0_u64;
    while runs < runs_left {
        let per_op = time_group(workload, group)?;
        if let Some(histogram) = histogram.as_deref_mut() {
            histogram.saturating_record(per_op);
        }
        runs += group as u64;
        if started.elapsed() >= ALTERNATION_TURN {
            break;
        }
    }
    Ok(runs)
}

/// Prepares `group` operations (untimed), runs them as one timed group, and returns the
/// group's mean per operation in nanoseconds (at least 1).
pub(crate) fn time_group<W: Workload + ?Sized>(workload: &mut W, group: usize) -> Result<u64> {
    workload.prepare(group)?;
    let start = Instant::now();
    workload.run_ops(group)?;
    Ok((nanos(start.elapsed()) / group as u64).max(1))
}

pub(crate) fn latency_histogram() -> Result<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3).map_err(|error| {
        WorkloadError::unexpected("measure", format!("cannot create a histogram: {error}"))
    })
}

pub(crate) fn latency_of(histogram: &Histogram<u64>, group: usize) -> Latency {
    Latency {
        samples: histogram.len(),
        ops_per_sample: u32::try_from(group).unwrap_or(u32::MAX),
        p50_ns: histogram.value_at_quantile(0.50),
        p95_ns: histogram.value_at_quantile(0.95),
        p99_ns: histogram.value_at_quantile(0.99),
        p999_ns: histogram.value_at_quantile(0.999),
        max_ns: histogram.max(),
        mean_ns: histogram.mean(),
    }
}

/// Measures how many engine operations per second `workload` sustains on one thread: a
/// round robin of one.
pub fn measure_throughput(workload: &mut dyn Workload, plan: Plan) -> Result<Throughput> {
    only(measure_throughput_round_robin(&mut [workload], plan)?)
}

/// Measures the throughput of a parallel workload: total engine operations over the summed
/// wall time of its runs.
pub fn measure_parallel<P: ParallelWorkload + ?Sized>(
    workload: &mut P,
    plan: Plan,
) -> Result<Throughput> {
    warm_up(plan.warm_up, || workload.run().map(drop))?;
    let started = Instant::now();
    let mut runs = 0_u64;
    let mut measured = Duration::ZERO;
    while !plan.budget.spent(started.elapsed(), runs) {
        measured += workload.run()?;
        runs += 1;
    }
    Ok(throughput(
        runs,
        runs * workload.engine_ops_per_run(),
        measured,
    ))
}

/// The one figure of a round robin of one.
fn only<T>(mut figures: Vec<T>) -> Result<T> {
    figures.pop().ok_or_else(|| {
        WorkloadError::unexpected("measure", "a round robin of one measured nothing")
    })
}

/// The median cost of one `Instant::now()` call on this machine, in nanoseconds.
pub fn timer_overhead_ns() -> u64 {
    const CALLS: usize = 101;
    let mut costs: Vec<u64> = (0..CALLS)
        .map(|_| {
            let start = Instant::now();
            let end = Instant::now();
            nanos(end.duration_since(start))
        })
        .collect();
    costs.sort_unstable();
    costs[CALLS / 2]
}

/// Converts a count to `f64` for rates and ratios (exact below 2^53, ample for op counts).
#[expect(
    clippy::cast_precision_loss,
    reason = "operation counts stay far below 2^53, where f64 is exact"
)]
pub fn count_as_f64(count: u64) -> f64 {
    count as f64
}

fn throughput(runs: u64, engine_ops: u64, measured: Duration) -> Throughput {
    let seconds = measured.as_secs_f64();
    Throughput {
        runs,
        engine_ops,
        measured,
        ops_per_sec: if seconds > 0.0 {
            count_as_f64(engine_ops) / seconds
        } else {
            0.0
        },
    }
}

/// Runs `step` until `duration` has passed (not at all for a zero duration).
fn warm_up(duration: Duration, mut step: impl FnMut() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < duration {
        step()?;
    }
    Ok(())
}

/// How many runs take about a millisecond (at least one), found by doubling.
fn runs_per_millisecond<W: Workload + ?Sized>(workload: &mut W) -> Result<u64> {
    let mut runs = 1_u64;
    loop {
        let took = time_runs(workload, runs)?;
        if took >= Duration::from_millis(1) || runs >= 1 << 20 {
            return Ok(runs);
        }
        runs *= 2;
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::point::StdHashMapGet as Get;
    use crate::workloads::Fixture;

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
    fn time_runs_prepares_every_operation_it_runs() {
        let mut counting = Counting::default();
        time_runs(&mut counting, 5_000).expect("counting cannot fail");
        assert_eq!(counting.ran, 5_000);
        let plan = Plan {
            warm_up: Duration::ZERO,
            budget: Budget::Runs(100),
        };
        let latency = measure_latency(&mut counting, plan, 16).expect("counting cannot fail");
        assert_eq!(latency.samples, 7, "100 runs round up to 7 samples of 16");
        assert_eq!(counting.ran, 5_000 + 7 * 16);
    }

    #[test]
    fn alternating_latency_runs_both_workloads_in_equal_groups() {
        let mut first = Counting::default();
        let mut second = Counting::default();
        let plan = Plan {
            warm_up: Duration::ZERO,
            budget: Budget::Runs(100),
        };
        let latencies = measure_latency_round_robin(&mut [&mut first, &mut second], plan, 16)
            .expect("counting cannot fail");
        let (one, two) = (&latencies[0], &latencies[1]);
        assert_eq!((one.samples, two.samples), (7, 7));
        assert_eq!((first.ran, second.ran), (7 * 16, 7 * 16));
        assert_eq!(one.ops_per_sample, 16);
    }

    #[test]
    fn drivers_report_sane_figures_for_a_real_workload() {
        let fixture = Fixture::build(1_000, 100).expect("in-memory fixture");
        let mut get = Get::new(&fixture).expect("fixture has keys");
        let plan = Plan {
            warm_up: Duration::from_millis(5),
            budget: Budget::Runs(10_000),
        };
        let latency = measure_latency(&mut get, plan, 16).expect("gets find their keys");
        assert!(latency.p50_ns > 0 && latency.p50_ns <= latency.p99_ns);
        assert!(latency.p99_ns <= latency.max_ns);
        let throughput = measure_throughput(&mut get, plan).expect("gets find their keys");
        assert_eq!(throughput.engine_ops, 10_000);
        assert!(throughput.ops_per_sec > 0.0);
    }
}

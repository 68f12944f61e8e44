//! What every criterion bench of this crate shares: routines that build a workload on
//! criterion's first call and time it through `cairn_bench::measure::time_runs` (the code
//! `cairn bench` measures) on every call after, keeping the same workload across warm-up and
//! samples, so state it tracks carries over instead of being rebuilt.
//!
//! Each bench file includes this module (`mod support;`); a bench that does not use one of
//! the helpers allows the dead code for itself.

#![allow(dead_code)]

use std::time::Duration;

use cairn_bench::measure::time_runs;
use cairn_bench::{ParallelWorkload, Workload, WorkloadError};
use criterion::Bencher;

/// Setup errors: the workloads' own, or a bench parameter that does not fit.
pub type SetupResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A criterion routine that builds the workload on first call and times its operations through
/// `time_runs` on every call after, keeping the same workload for all of them.
pub fn timed<W, E>(build: impl FnOnce() -> Result<W, E>) -> impl FnMut(&mut Bencher<'_>)
where
    W: Workload,
    E: Into<Box<dyn std::error::Error>>,
{
    let mut build = Some(build);
    let mut workload: Option<W> = None;
    move |bencher| {
        let workload = built(&mut workload, &mut build);
        bencher.iter_custom(|runs| expect_ok(time_runs(workload, runs)));
    }
}

/// Like [`timed`], for a parallel workload: one criterion iteration is one run of it.
pub fn timed_parallel<P: ParallelWorkload>(
    build: impl FnOnce() -> SetupResult<P>,
) -> impl FnMut(&mut Bencher<'_>) {
    let mut build = Some(build);
    let mut workload: Option<P> = None;
    move |bencher| {
        let workload = built(&mut workload, &mut build);
        bencher.iter_custom(|runs| {
            (0..runs)
                .map(|_| expect_ok(workload.run()))
                .sum::<Duration>()
        });
    }
}

fn built<'slot, W, E>(
    slot: &'slot mut Option<W>,
    build: &mut Option<impl FnOnce() -> Result<W, E>>,
) -> &'slot mut W
where
    E: Into<Box<dyn std::error::Error>>,
{
    slot.get_or_insert_with(|| {
        let build = build.take().expect("a workload is built only once");
        build()
            .map_err(Into::into)
            .unwrap_or_else(|error| panic!("workload setup failed: {error}"))
    })
}

/// The value of a workload call, or a panic naming the error (criterion has no error path).
pub fn expect_ok<T>(result: Result<T, WorkloadError>) -> T {
    result.unwrap_or_else(|error| panic!("workload failed: {error}"))
}

//! Criterion benches of seed 002's `recovery` group: WAL replay, snapshot creation and load,
//! snapshot + WAL recovery at a million entries, and the repair of a torn WAL tail.
//!
//! Every bench drives a workload from `cairn_bench::workloads::recovery`, the code
//! `cairn bench` measures. One iteration is one open (or one checkpoint), timed through
//! `time_runs(workload, 1)`, so the untimed work around it (closing the last open, putting the
//! directory back, tearing the next frame) runs between iterations, never inside one. A
//! workload's fixture is built on the first call of its routine, so a filtered-out bench
//! writes nothing, and removed when criterion is done with it.
//!
//! An iteration takes a large fraction of a second, so each bench takes 10 flat samples of one
//! iteration each; with the fixture builds, the whole file runs in under two minutes.
//! `-- --test` runs each bench once; `-- wal_replay` filters.

use std::time::Duration;

use cairn_bench::measure::time_runs;
use cairn_bench::sizes::{RECOVERY_ENTRIES, RECOVERY_WAL_RECORDS, TORN_TAIL_ENTRIES};
use cairn_bench::workloads::recovery::{
    SnapshotCreation, SnapshotLoad, SnapshotWalRecovery, TornTailRepair, WalReplay,
};
use cairn_bench::{Workload, WorkloadError};
use criterion::{BenchmarkId, Criterion, SamplingMode};

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    recovery(&mut criterion);
    criterion.final_summary();
}

fn recovery(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("recovery");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function(
        BenchmarkId::new("wal_replay", RECOVERY_ENTRIES),
        one_at_a_time(|| WalReplay::new(RECOVERY_ENTRIES)),
    );
    group.bench_function(
        BenchmarkId::new("snapshot_creation", RECOVERY_ENTRIES),
        one_at_a_time(|| SnapshotCreation::new(RECOVERY_ENTRIES)),
    );
    group.bench_function(
        BenchmarkId::new("snapshot_load", RECOVERY_ENTRIES),
        one_at_a_time(|| SnapshotLoad::new(RECOVERY_ENTRIES)),
    );
    group.bench_function(
        BenchmarkId::new(
            "snapshot_wal_recovery",
            format!("{RECOVERY_ENTRIES}+{RECOVERY_WAL_RECORDS}"),
        ),
        one_at_a_time(|| SnapshotWalRecovery::new(RECOVERY_ENTRIES, RECOVERY_WAL_RECORDS)),
    );
    group.bench_function(
        BenchmarkId::new("wal_truncation", TORN_TAIL_ENTRIES),
        one_at_a_time(|| TornTailRepair::new(TORN_TAIL_ENTRIES)),
    );
    group.finish();
}

/// A criterion routine that builds the workload on first call, then times each iteration as
/// one prepared operation: `time_runs(workload, 1)`, summed over the iterations.
fn one_at_a_time<W: Workload>(
    build: impl FnOnce() -> Result<W, WorkloadError>,
) -> impl FnMut(&mut criterion::Bencher<'_>) {
    let mut build = Some(build);
    let mut workload: Option<W> = None;
    move |bencher| {
        let workload = workload.get_or_insert_with(|| {
            let build = build.take().expect("a workload is built only once");
            expect_ok(build())
        });
        bencher.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| expect_ok(time_runs(workload, 1)))
                .sum::<Duration>()
        });
    }
}

fn expect_ok<T>(result: Result<T, WorkloadError>) -> T {
    result.unwrap_or_else(|error| panic!("workload failed: {error}"))
}

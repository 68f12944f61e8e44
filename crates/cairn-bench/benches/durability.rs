//! Criterion benches of seed 002's `durability` group: a put in each durability mode, Strict
//! group commit at 1 to 64 writers, and the raw fdatasync floor they are compared with.
//!
//! Every bench drives a workload from `cairn_bench::workloads::durability`, the code
//! `cairn bench` measures. A workload is built on the first call of its routine (so a
//! filtered-out bench creates no files) and removed, directory and all, when criterion is done
//! with it. Commits per fsync of each group-commit bench are printed to stderr at its end.
//!
//! `cargo bench -p cairn-bench --bench durability` takes about a minute; `-- --quick` less;
//! `-- --test` runs each bench once.

use std::time::Duration;

use cairn::Durability;
use cairn_bench::measure::time_runs;
use cairn_bench::sizes::{
    FIXTURE_KEYS, GROUP_COMMITS_PER_WRITER, GROUP_COMMIT_WRITERS, VALUE_BYTES,
};
use cairn_bench::workloads::durability::{ModePut, RawFdatasync, StrictGroupCommit};
use cairn_bench::{ParallelWorkload as _, WorkloadError};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    durability(&mut criterion);
    criterion.final_summary();
}

fn durability(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("durability");
    for (name, durability) in [
        ("inmemory_put", Durability::InMemory),
        ("buffered_put", Durability::buffered()),
        ("strict_put", Durability::Strict),
    ] {
        let mut workload: Option<ModePut> = None;
        group.bench_function(name, |bencher| {
            let workload = workload.get_or_insert_with(|| {
                expect_ok(ModePut::new(durability, FIXTURE_KEYS, VALUE_BYTES))
            });
            bencher.iter_custom(|runs| expect_ok(time_runs(workload, runs)));
        });
    }
    let mut raw: Option<RawFdatasync> = None;
    group.bench_function("raw_fdatasync", |bencher| {
        let raw = raw.get_or_insert_with(|| expect_ok(RawFdatasync::new()));
        bencher.iter_custom(|runs| expect_ok(time_runs(raw, runs)));
    });
    // A run is 0.1 s (1 writer) to about a second (64 writers): 10 flat samples.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    for writers in GROUP_COMMIT_WRITERS {
        group.throughput(Throughput::Elements(
            writers as u64 * GROUP_COMMITS_PER_WRITER,
        ));
        let mut workload: Option<StrictGroupCommit> = None;
        group.bench_function(
            BenchmarkId::new("strict_group_commit", writers),
            |bencher| {
                let workload = workload.get_or_insert_with(|| {
                    expect_ok(StrictGroupCommit::new(
                        writers,
                        GROUP_COMMITS_PER_WRITER,
                        FIXTURE_KEYS,
                        VALUE_BYTES,
                    ))
                });
                bencher.iter_custom(|runs| {
                    (0..runs)
                        .map(|_| expect_ok(workload.run()))
                        .sum::<Duration>()
                });
            },
        );
        if let Some(workload) = workload {
            let counts = workload.sync_counts();
            eprintln!(
                "durability/strict_group_commit/{writers}: {:.1} commits per fsync \
                 ({} WAL frames, {} fsyncs)",
                counts.commits_per_sync(),
                counts.frames,
                counts.syncs
            );
        }
    }
    group.finish();
}

fn expect_ok<T>(result: Result<T, WorkloadError>) -> T {
    result.unwrap_or_else(|error| panic!("workload failed: {error}"))
}

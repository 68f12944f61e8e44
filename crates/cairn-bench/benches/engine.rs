//! Criterion benches of the engine core, one group per seed group of `DESIGN.md` section 7
//! plus `get_at_scale`.
//!
//! Every bench drives a workload from `cairn_bench::workloads` through
//! `cairn_bench::measure::time_runs`, the same code `cairn bench` measures. A workload is built
//! the first time criterion calls its routine (so a filtered-out bench builds nothing) and then
//! kept for every warm-up and sample: state it tracks, such as a CAS's expected version or the
//! next fresh key, carries across phases instead of being rebuilt. The 1M-key database is
//! built once per process and shared by `key_patterns` and `get_at_scale`, which only read it.
//!
//! `cargo bench -p cairn-bench` runs everything (a few minutes); `-- --test` runs each bench
//! once; `-- GROUP` filters.

mod support;

use support::{expect_ok, timed, timed_parallel};

use std::sync::OnceLock;
use std::time::Duration;

use cairn_bench::measure::time_runs;
use cairn_bench::sizes::{
    CONCURRENT_FIXTURE_KEYS, FIXTURE_KEYS, LARGEST_KEYS, LARGE_VALUE_BYTES, VALUE_BYTES,
};
use cairn_bench::workloads::batch::{BulkGet, BulkPut, BULK_OPS};
use cairn_bench::workloads::cas::{CreateNewKey, FailureWrongVersion, SequentialSuccess};
use cairn_bench::workloads::concurrent::{ConcurrentReads, MixedReadWrite};
use cairn_bench::workloads::point::{Delete, Exists, Get, Put, PutWithTtl};
use cairn_bench::workloads::scan::PrefixScan;
use cairn_bench::workloads::snapshots::{OpenSnapshotAndGet, SnapshotGet};
use cairn_bench::workloads::transactions::{ConflictingCommit, MultiKeyPut, ReadModifyWrite};
use cairn_bench::workloads::versions::HotKeyPut;
use cairn_bench::{Fixture, WorkloadError};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Operations each thread makes in one run of a concurrent workload.
const OPS_PER_THREAD: u64 = 20_000;

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    single_operations(&mut criterion);
    batch_operations(&mut criterion);
    concurrent_access(&mut criterion);
    key_patterns(&mut criterion);
    ttl_operations(&mut criterion);
    transaction_commit(&mut criterion);
    cas(&mut criterion);
    snapshot_read(&mut criterion);
    conflict_detection(&mut criterion);
    version_growth(&mut criterion);
    get_at_scale(&mut criterion);
    criterion.final_summary();
}

fn single_operations(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("single_operations");
    for value_bytes in [VALUE_BYTES, LARGE_VALUE_BYTES] {
        group.bench_function(
            BenchmarkId::new("single_put", value_bytes),
            timed(move || Put::new(&fixture(FIXTURE_KEYS, value_bytes)?, value_bytes)),
        );
        group.bench_function(
            BenchmarkId::new("single_get", value_bytes),
            timed(move || Get::new(&fixture(FIXTURE_KEYS, value_bytes)?)),
        );
    }
    group.bench_function(
        "single_delete",
        timed(|| Delete::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.bench_function(
        "single_exists",
        timed(|| Exists::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.finish();
}

fn batch_operations(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("batch_operations");
    group.sample_size(50);
    group.throughput(Throughput::Elements(BULK_OPS as u64));
    group.bench_function(
        BenchmarkId::new("bulk_put", BULK_OPS),
        timed(|| BulkPut::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.bench_function(
        BenchmarkId::new("bulk_get", BULK_OPS),
        timed(|| BulkGet::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.finish();
}

fn concurrent_access(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("concurrent_access");
    // A run is tens of milliseconds: 10 samples, and time enough to take them.
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    let shared: OnceLock<Fixture> = OnceLock::new();
    for threads in [1_u64, 2, 4, 8] {
        group.throughput(Throughput::Elements(threads * OPS_PER_THREAD));
        let shared = &shared;
        group.bench_function(
            BenchmarkId::new("concurrent_reads", threads),
            timed_parallel(move || {
                let fixture = once(shared, || fixture(CONCURRENT_FIXTURE_KEYS, VALUE_BYTES));
                ConcurrentReads::new(fixture, usize::try_from(threads)?, OPS_PER_THREAD)
                    .map_err(Into::into)
            }),
        );
    }
    group.throughput(Throughput::Elements(2 * OPS_PER_THREAD));
    group.bench_function(
        BenchmarkId::new("mixed_workload", 2),
        timed_parallel(|| {
            let fixture = fixture(CONCURRENT_FIXTURE_KEYS, VALUE_BYTES)?;
            MixedReadWrite::new(&fixture, 2, OPS_PER_THREAD).map_err(Into::into)
        }),
    );
    group.finish();
}

fn key_patterns(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("key_patterns");
    for keys_per_prefix in [10, 100, 1_000] {
        group.bench_function(
            BenchmarkId::new("prefix_scan", keys_per_prefix),
            timed(move || PrefixScan::new(largest_fixture(), keys_per_prefix)),
        );
    }
    group.finish();
}

fn ttl_operations(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("ttl_operations");
    group.bench_function(
        "put_with_ttl",
        timed(|| PutWithTtl::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.finish();
}

fn transaction_commit(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("transaction_commit");
    group.bench_function(
        "single_key_put",
        timed(|| MultiKeyPut::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?, 1)),
    );
    for keys in [3, 5, 10] {
        group.bench_function(
            BenchmarkId::new("multi_key_put", keys),
            timed(move || MultiKeyPut::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?, keys)),
        );
    }
    group.bench_function(
        "read_modify_write",
        timed(|| ReadModifyWrite::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.finish();
}

fn cas(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("cas");
    group.bench_function(
        "sequential_success",
        timed(|| SequentialSuccess::new(VALUE_BYTES)),
    );
    group.bench_function(
        "failure_wrong_version",
        timed(|| FailureWrongVersion::new(VALUE_BYTES)),
    );
    group.bench_function(
        "create_new_key",
        timed(|| Ok::<_, WorkloadError>(CreateNewKey::new(VALUE_BYTES))),
    );
    group.finish();
}

fn snapshot_read(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("snapshot_read");
    group.bench_function(
        "get",
        timed(|| SnapshotGet::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.bench_function(
        "open_and_get",
        timed(|| OpenSnapshotAndGet::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.finish();
}

fn conflict_detection(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("conflict_detection");
    group.bench_function(
        "write_write_conflict",
        timed(|| ConflictingCommit::new(&fixture(FIXTURE_KEYS, VALUE_BYTES)?)),
    );
    group.finish();
}

fn version_growth(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("version_growth");
    let mut hot: Option<HotKeyPut> = None;
    group.bench_function("hot_key_put", |bencher| {
        let workload = hot.get_or_insert_with(|| HotKeyPut::new(VALUE_BYTES));
        bencher.iter_custom(|runs| expect_ok(time_runs(workload, runs)));
    });
    group.finish();
    if let Some(workload) = hot {
        eprintln!(
            "version_growth/hot_key_put: {} puts to one key, versions_retained = {}",
            workload.puts(),
            workload.versions_retained()
        );
    }
}

fn get_at_scale(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("get_at_scale");
    for keys in [1_000, 10_000, 100_000, LARGEST_KEYS] {
        group.bench_function(
            BenchmarkId::new("uniform_get", keys),
            timed(move || {
                if keys == LARGEST_KEYS {
                    Get::new(largest_fixture())
                } else {
                    Get::new(&fixture(keys, VALUE_BYTES)?)
                }
            }),
        );
    }
    group.finish();
}

fn fixture(keys: usize, value_bytes: usize) -> Result<Fixture, WorkloadError> {
    Fixture::build(keys, value_bytes)
}

/// The 1M-key database, built on first use and shared for the rest of the process.
fn largest_fixture() -> &'static Fixture {
    static LARGEST: OnceLock<Fixture> = OnceLock::new();
    once(&LARGEST, || fixture(LARGEST_KEYS, VALUE_BYTES))
}

fn once(
    cell: &OnceLock<Fixture>,
    build: impl FnOnce() -> Result<Fixture, WorkloadError>,
) -> &Fixture {
    cell.get_or_init(|| expect_ok(build()))
}

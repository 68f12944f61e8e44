//! Criterion benches of the `KeyValueStore` backends side by side, in seed 000's groups
//! (`single_operations`, `batch_operations`, `concurrent_access`, `key_patterns`,
//! `ttl_operations`), each backend next to its raw client on the same workload.
//!
//! Ids are `group/op/subject/param`: `single_operations/single_get/sqlite/100` is a get of a
//! 100-byte value through the trait on `SQLite`, `.../sqlite-raw/100` the same get through
//! rusqlite directly. Subjects: `cairn-inmemory`, `cairn-buffered`, `cairn-strict`, `sqlite`,
//! `redis`, each with its `-raw` peer (see `cairn_bench::workloads::kv`).
//!
//! Redis: the server at `CAIRN_BENCH_REDIS_URL` if that is set; otherwise a throwaway
//! `redis-server` started from `PATH` for this run; otherwise the Redis benches are skipped
//! with a note on stderr.
//!
//! Every bench drives a workload of `cairn_bench::workloads::kv` through
//! `cairn_bench::measure::time_runs`, the code `cairn bench` measures. A workload and its
//! fixture are built on the first call of the bench's routine (so a filtered-out bench builds
//! nothing) and dropped when the bench is done, files and Redis keys with them.
//!
//! `cargo bench -p cairn-bench --bench kv` runs everything (tens of minutes); `-- --test`
//! runs each bench once; `-- single_operations/single_get` filters.

mod support;

use support::{timed, timed_parallel};

use std::cell::OnceCell;
use std::time::Duration;

use cairn_bench::sizes::{FIXTURE_KEYS, LARGE_VALUE_BYTES, VALUE_BYTES};
use cairn_bench::workloads::batch::BULK_OPS;
use cairn_bench::workloads::kv::batch::{KvBulkGet, KvBulkPut, KvMultiGet, KvMultiPut};
use cairn_bench::workloads::kv::concurrent::{ops_per_task, KvConcurrentReads, KvMixedReadWrite};
use cairn_bench::workloads::kv::point::{KvDelete, KvExists, KvGet, KvPut, KvPutWithTtl};
use cairn_bench::workloads::kv::scan::KvPrefixScan;
use cairn_bench::workloads::kv::{Backend, KvFixture, Subject};
use cairn_bench::WorkloadError;
use cairn_testkit::redis_server::RedisServer;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

/// The variable naming a Redis server to measure instead of starting one.
const REDIS_URL_VARIABLE: &str = "CAIRN_BENCH_REDIS_URL";

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    // Kept alive until every bench is done.
    let (redis, _server) = redis_backend();
    let mut backends = Backend::local();
    backends.extend(redis);
    let subjects = Subject::pairs(&backends);
    single_operations(&mut criterion, &subjects);
    batch_operations(&mut criterion, &subjects);
    concurrent_access(&mut criterion, &subjects);
    key_patterns(&mut criterion, &subjects);
    ttl_operations(&mut criterion, &subjects);
    criterion.final_summary();
}

/// The Redis backend to measure, and the server started for it (if one was).
fn redis_backend() -> (Option<Backend>, Option<RedisServer>) {
    if let Ok(url) = std::env::var(REDIS_URL_VARIABLE) {
        return (Some(Backend::Redis { url }), None);
    }
    match RedisServer::start() {
        Ok(server) => (Some(Backend::Redis { url: server.url() }), Some(server)),
        Err(error) => {
            eprintln!(
                "kv benches: skipping Redis ({error}); set {REDIS_URL_VARIABLE} to measure a \
                 running server"
            );
            (None, None)
        }
    }
}

fn single_operations(criterion: &mut Criterion, subjects: &[Subject]) {
    let mut group = criterion.benchmark_group("single_operations");
    for value_bytes in [VALUE_BYTES, LARGE_VALUE_BYTES] {
        for subject in subjects {
            group.bench_function(
                id("single_put", subject, value_bytes),
                timed(|| KvPut::new(&fixture(subject, value_bytes)?, value_bytes)),
            );
        }
        for subject in subjects {
            group.bench_function(
                id("single_get", subject, value_bytes),
                timed(|| KvGet::new(&fixture(subject, value_bytes)?)),
            );
        }
    }
    for subject in subjects {
        group.bench_function(
            id("single_delete", subject, VALUE_BYTES),
            timed(|| KvDelete::new(&fixture(subject, VALUE_BYTES)?)),
        );
    }
    for subject in subjects {
        group.bench_function(
            id("single_exists", subject, VALUE_BYTES),
            timed(|| KvExists::new(&fixture(subject, VALUE_BYTES)?)),
        );
    }
    group.finish();
}

fn batch_operations(criterion: &mut Criterion, subjects: &[Subject]) {
    let mut group = criterion.benchmark_group("batch_operations");
    // A run is 1000 calls: up to seconds for Strict puts. Flat sampling takes 10 samples of
    // equal length instead of criterion's 1 + 2 + ... + n iterations.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BULK_OPS as u64));
    for subject in subjects {
        group.bench_function(
            id("bulk_put", subject, BULK_OPS),
            timed(|| KvBulkPut::new(&fixture(subject, VALUE_BYTES)?)),
        );
        group.bench_function(
            id("bulk_get", subject, BULK_OPS),
            timed(|| KvBulkGet::new(&fixture(subject, VALUE_BYTES)?)),
        );
        group.bench_function(
            id("multi_put", subject, BULK_OPS),
            timed(|| KvMultiPut::new(&fixture(subject, VALUE_BYTES)?)),
        );
        group.bench_function(
            id("multi_get", subject, BULK_OPS),
            timed(|| KvMultiGet::new(&fixture(subject, VALUE_BYTES)?)),
        );
    }
    group.finish();
}

fn concurrent_access(criterion: &mut Criterion, subjects: &[Subject]) {
    let mut group = criterion.benchmark_group("concurrent_access");
    // A run is tens to hundreds of milliseconds: 10 flat samples, and time enough to take
    // them.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(3));
    for subject in subjects {
        let ops = ops_per_task(&subject.backend);
        // The reads share one fixture; it is dropped with this iteration.
        let shared: OnceCell<KvFixture> = OnceCell::new();
        for tasks in [1_u64, 2, 4, 8] {
            group.throughput(Throughput::Elements(tasks * ops));
            let shared = &shared;
            group.bench_function(
                id("concurrent_reads", subject, tasks),
                timed_parallel(move || {
                    let fixture = once(shared, || fixture(subject, VALUE_BYTES))?;
                    Ok(KvConcurrentReads::new(
                        fixture,
                        usize::try_from(tasks)?,
                        ops,
                    )?)
                }),
            );
        }
        group.throughput(Throughput::Elements(2 * ops));
        group.bench_function(
            id("mixed_workload", subject, 2),
            timed_parallel(|| {
                Ok(KvMixedReadWrite::new(
                    &fixture(subject, VALUE_BYTES)?,
                    2,
                    ops,
                )?)
            }),
        );
    }
    group.finish();
}

fn key_patterns(criterion: &mut Criterion, subjects: &[Subject]) {
    let mut group = criterion.benchmark_group("key_patterns");
    for subject in subjects {
        let shared: OnceCell<KvFixture> = OnceCell::new();
        for keys_per_prefix in [10, 100, 1_000] {
            let shared = &shared;
            group.bench_function(
                id("prefix_scan", subject, keys_per_prefix),
                timed(move || {
                    let fixture = once(shared, || fixture(subject, VALUE_BYTES))?;
                    KvPrefixScan::new(fixture, keys_per_prefix)
                }),
            );
        }
    }
    group.finish();
}

fn ttl_operations(criterion: &mut Criterion, subjects: &[Subject]) {
    let mut group = criterion.benchmark_group("ttl_operations");
    for subject in subjects {
        group.bench_function(
            id("put_with_ttl", subject, VALUE_BYTES),
            timed(|| KvPutWithTtl::new(&fixture(subject, VALUE_BYTES)?)),
        );
    }
    group.finish();
}

/// `op/subject/param`, inside the group's name.
fn id(op: &str, subject: &Subject, parameter: impl std::fmt::Display) -> BenchmarkId {
    BenchmarkId::new(format!("{op}/{}", subject.name()), parameter)
}

/// A fresh fixture of [`FIXTURE_KEYS`] keys.
fn fixture(subject: &Subject, value_bytes: usize) -> Result<KvFixture, WorkloadError> {
    KvFixture::build(subject, FIXTURE_KEYS, value_bytes)
}

/// The fixture in `cell`, built by `build` on first use.
fn once(
    cell: &OnceCell<KvFixture>,
    build: impl FnOnce() -> Result<KvFixture, WorkloadError>,
) -> Result<&KvFixture, WorkloadError> {
    if let Some(fixture) = cell.get() {
        return Ok(fixture);
    }
    let fixture = build()?;
    Ok(cell.get_or_init(|| fixture))
}

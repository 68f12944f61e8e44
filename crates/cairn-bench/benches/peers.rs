//! Criterion benches of the side-by-side workloads: Cairn and its peers (redb, fjall, SQLite,
//! and Redis when a server is at hand) on the same code `cairn bench` measures in its `peers`
//! rows (`cairn_bench::side_by_side`).
//!
//! Groups: `peers_point_read` (uniform and hot), `peers_scan` (a 1,000-key prefix, a 100-key
//! range), `peers_put` (buffered, strict), `peers_batch` (1,000 keys, strict), `peers_cas`,
//! `peers_transaction`, `peers_ttl_put`, `peers_group_commit` (4 and 16 writers, strict) and
//! `peers_mixed` (80/20 on 2 threads). Bench ids are `workload/store`, e.g.
//! `peers_point_read/uniform/redb-buffered`. The read stores hold 100,000 keys (the `cairn
//! bench` rows use 1M); each store is filled once per process.
//!
//! Redis: the server at `CAIRN_BENCH_REDIS_URL` if set, else a throwaway `redis-server` if one
//! is on `PATH`, else Redis is left out with a message. `cargo bench -p cairn-bench --bench
//! peers -- --test` runs each bench once; `-- peers_scan` filters.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_bench::peers::{labels_for, Feature, Label, Mode, Places};
use cairn_bench::side_by_side::parallel::{GroupCommit, Mixed};
use cairn_bench::side_by_side::reads::{PointRead, PrefixScan, RangeScan, ReadPattern};
use cairn_bench::side_by_side::writes::{BatchPut, Cas, Put, Transaction, TtlPut, BATCH_KEYS};
use cairn_bench::side_by_side::PeerFixture;
use cairn_bench::sizes::FIXTURE_KEYS;
use cairn_bench::{Workload, WorkloadError};
use cairn_testkit::redis_server::RedisServer;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use support::{expect_ok, timed, timed_parallel};

/// Keys of the read stores.
const READ_KEYS: usize = 100_000;

/// Where a Redis server to measure is named.
const REDIS_URL_VARIABLE: &str = "CAIRN_BENCH_REDIS_URL";

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(2))
        .configure_from_args();
    // Kept alive until every bench is done.
    let (places, _server) = places();
    let mut fixtures = Fixtures {
        places,
        filled: BTreeMap::new(),
    };
    point_read(&mut criterion, &mut fixtures);
    scan(&mut criterion, &mut fixtures);
    writes(&mut criterion, &mut fixtures);
    parallel(&mut criterion, &mut fixtures);
    criterion.final_summary();
}

fn places() -> (Places, Option<RedisServer>) {
    if let Ok(url) = std::env::var(REDIS_URL_VARIABLE) {
        return (
            Places {
                redis_url: Some(url),
            },
            None,
        );
    }
    match RedisServer::start() {
        Ok(server) => (
            Places {
                redis_url: Some(server.url()),
            },
            Some(server),
        ),
        Err(error) => {
            eprintln!(
                "peers benches: leaving Redis out ({error}); set {REDIS_URL_VARIABLE} to measure \
                 a running server"
            );
            (Places { redis_url: None }, None)
        }
    }
}

/// Stores filled once per process, by label and key count.
struct Fixtures {
    places: Places,
    filled: BTreeMap<(Label, usize), Arc<PeerFixture>>,
}

impl Fixtures {
    fn get(&mut self, label: Label, keys: usize) -> Arc<PeerFixture> {
        let places = &self.places;
        Arc::clone(
            self.filled
                .entry((label, keys))
                .or_insert_with(|| Arc::new(expect_ok(PeerFixture::build(label, places, keys)))),
        )
    }

    fn labels(&self, mode: Mode) -> Vec<Label> {
        labels_for(mode, self.places.redis_url.is_some())
    }
}

fn id(workload: &str, label: Label) -> BenchmarkId {
    BenchmarkId::new(workload, label)
}

fn point_read(criterion: &mut Criterion, fixtures: &mut Fixtures) {
    let mut group = criterion.benchmark_group("peers_point_read");
    for label in fixtures.labels(Mode::Buffered) {
        let fixture = fixtures.get(label, READ_KEYS);
        for pattern in [ReadPattern::Uniform, ReadPattern::Hot] {
            let fixture = Arc::clone(&fixture);
            group.bench_function(
                id(pattern.name(), label),
                timed(move || PointRead::new(&fixture, pattern)),
            );
        }
    }
    group.finish();
}

fn scan(criterion: &mut Criterion, fixtures: &mut Fixtures) {
    let mut group = criterion.benchmark_group("peers_scan");
    for label in fixtures.labels(Mode::Buffered) {
        let fixture = fixtures.get(label, READ_KEYS);
        if !fixture.peer().supports(Feature::OrderedScan) {
            continue;
        }
        let prefix = Arc::clone(&fixture);
        group.throughput(Throughput::Elements(1_000));
        group.bench_function(
            id("prefix_1000", label),
            timed(move || PrefixScan::new(&prefix, 1_000)),
        );
        group.throughput(Throughput::Elements(100));
        group.bench_function(
            id("range_100", label),
            timed(move || RangeScan::new(&fixture, 100)),
        );
    }
    group.finish();
}

/// One bench of a write workload per store of `mode` (that has `feature`).
fn write_benches<W: Workload + 'static>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    fixtures: &mut Fixtures,
    workload: &str,
    mode: Mode,
    feature: Option<Feature>,
    build: fn(&PeerFixture) -> Result<W, WorkloadError>,
) {
    for label in fixtures.labels(mode) {
        let fixture = fixtures.get(label, FIXTURE_KEYS);
        if feature.is_some_and(|feature| !fixture.peer().supports(feature)) {
            continue;
        }
        group.bench_function(id(workload, label), timed(move || build(&fixture)));
    }
}

fn writes(criterion: &mut Criterion, fixtures: &mut Fixtures) {
    let mut group = criterion.benchmark_group("peers_put");
    write_benches(
        &mut group,
        fixtures,
        "buffered",
        Mode::Buffered,
        None,
        Put::new,
    );
    group.sampling_mode(SamplingMode::Flat);
    write_benches(&mut group, fixtures, "strict", Mode::Strict, None, Put::new);
    group.finish();

    let mut group = criterion.benchmark_group("peers_batch");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH_KEYS as u64));
    write_benches(
        &mut group,
        fixtures,
        "strict",
        Mode::Strict,
        None,
        BatchPut::new,
    );
    group.finish();

    let mut group = criterion.benchmark_group("peers_cas");
    write_benches(
        &mut group,
        fixtures,
        "success",
        Mode::Buffered,
        None,
        Cas::new,
    );
    group.finish();

    let mut group = criterion.benchmark_group("peers_transaction");
    write_benches(
        &mut group,
        fixtures,
        "read1_write3",
        Mode::Buffered,
        None,
        Transaction::new,
    );
    group.finish();

    let mut group = criterion.benchmark_group("peers_ttl_put");
    write_benches(
        &mut group,
        fixtures,
        "1h",
        Mode::Buffered,
        Some(Feature::Ttl),
        TtlPut::new,
    );
    group.finish();
}

fn parallel(criterion: &mut Criterion, fixtures: &mut Fixtures) {
    let mut group = criterion.benchmark_group("peers_group_commit");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for writers in [4, 16] {
        for label in fixtures.labels(Mode::Strict) {
            let fixture = fixtures.get(label, FIXTURE_KEYS);
            group.throughput(Throughput::Elements(256));
            group.bench_function(
                id(&format!("writers_{writers}"), label),
                timed_parallel(move || Ok(GroupCommit::new(&fixture, writers, 256)?)),
            );
        }
    }
    group.finish();

    let mut group = criterion.benchmark_group("peers_mixed");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for label in fixtures.labels(Mode::Buffered) {
        let fixture = fixtures.get(label, FIXTURE_KEYS);
        group.throughput(Throughput::Elements(2 * 20_000));
        group.bench_function(
            id("80_20/2", label),
            timed_parallel(move || Ok(Mixed::new(&fixture, 2, 20_000)?)),
        );
    }
    group.finish();
}

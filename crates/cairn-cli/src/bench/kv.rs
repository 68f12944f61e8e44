//! The `KeyValueStore` rows of `cairn bench`: every backend side by side, each next to the
//! client it wraps used directly.
//!
//! Per backend (`cairn-inmemory`, `cairn-buffered`, `cairn-strict`, `sqlite`, and `redis`
//! when a server is reachable): get and put latency through the trait and through the raw
//! client, timed in alternation (turns of about 25 ms each, so both see the same machine
//! state), with a ratio row of their p50s; then bulk put and bulk get throughput (1000
//! sequential calls per run) for both, runs timed in alternation too. Rows are named as the
//! criterion benches of `benches/kv.rs` are (`single_operations/single_get/sqlite/100`,
//! `.../sqlite-raw/100`). Targets: Cairn `InMemory` get and put under 1 µs (goals: the
//! engine's 300 ns get and 500 ns put) and bulk over 1M ops/s; `SQLite` get and put under
//! 100 µs and bulk over 10K ops/s (goal: within 1.2x of raw rusqlite); Redis get and put
//! under 1 ms (goal: within 1.1x of raw redis-rs). Buffered and Strict rows are
//! informational.
//!
//! Each subject's store is filled once per run (10,000 keys of 100 bytes) and shared by its
//! rows: puts overwrite keys with values of the same length, so the gets still check every
//! value. Files live in temp directories removed at the end of the run; Redis keys are deleted
//! from the server at the end of the run.
//!
//! Redis: the server at `--redis URL` (default [`REDIS_URL_DEFAULT`]) if it answers within
//! [`REDIS_PROBE_TIMEOUT`], or a throwaway `redis-server` with `--start-redis`; otherwise the
//! run prints one note saying why the Redis rows were skipped.

use std::time::Duration;

use anyhow::{Context as _, Result};
use cairn_bench::sizes::{FIXTURE_KEYS, VALUE_BYTES};
use cairn_bench::workloads::batch::BULK_OPS;
use cairn_bench::workloads::kv::batch::{KvBulkGet, KvBulkPut};
use cairn_bench::workloads::kv::point::{KvGet, KvPut};
use cairn_bench::workloads::kv::{probe_redis, Backend, KvFixture, Subject};
use cairn_bench::{measure, Latency, Throughput, Workload};
use cairn_testkit::redis_server::RedisServer;

use super::report::Row;
use super::suite::{latency_row, Context, Step, POINT_OPS_PER_SAMPLE};
use super::targets;

/// The Redis server `cairn bench` measures unless told otherwise.
pub const REDIS_URL_DEFAULT: &str = "redis://127.0.0.1:6379";

/// How long a Redis server may take to answer before its rows are skipped.
pub const REDIS_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The name every key-value step also answers to in `--filter`.
pub const SECTION: &str = "kv";

/// The Redis server a run measures, if any: the backend to add, the server started for the
/// run (stopped when this is dropped), or the note saying why there is none.
pub struct RedisChoice {
    /// The backend, when a server answers.
    pub backend: Option<Backend>,
    /// Why the Redis rows are skipped, when they are.
    pub skipped: Option<String>,
    /// A server started for this run; kept alive until the choice is dropped.
    server: Option<RedisServer>,
}

impl RedisChoice {
    /// Starts a throwaway server if `start`, else checks that one answers at `url`.
    pub fn resolve(url: &str, start: bool) -> Self {
        if start {
            return match RedisServer::start() {
                Ok(server) => RedisChoice {
                    backend: Some(Backend::Redis { url: server.url() }),
                    skipped: None,
                    server: Some(server),
                },
                Err(error) => RedisChoice::skipped(format!(
                    "Redis rows skipped: --start-redis could not start redis-server: {error}"
                )),
            };
        }
        match probe_redis(url, REDIS_PROBE_TIMEOUT) {
            Ok(()) => RedisChoice {
                backend: Some(Backend::Redis {
                    url: url.to_owned(),
                }),
                skipped: None,
                server: None,
            },
            Err(error) => RedisChoice::skipped(format!(
                "Redis rows skipped: no Redis server answered at {url} ({error}); pass --redis \
                 URL or --start-redis"
            )),
        }
    }

    /// No Redis, and nothing to say about it: the run measures no key-value row.
    pub fn resolve_not_needed() -> Self {
        RedisChoice {
            backend: None,
            skipped: None,
            server: None,
        }
    }

    fn skipped(reason: String) -> Self {
        RedisChoice {
            backend: None,
            skipped: Some(reason),
            server: None,
        }
    }

    /// Where the measured server runs, for the report's notes.
    pub fn described(&self) -> Option<String> {
        let Some(Backend::Redis { url }) = &self.backend else {
            return None;
        };
        Some(match &self.server {
            Some(_) => format!("Redis rows: a redis-server started for this run at {url}"),
            None => format!("Redis rows: the server at {url}"),
        })
    }
}

/// The backends a run measures: the local ones, then Redis if `redis` has one.
pub fn backends(redis: &RedisChoice) -> Vec<Backend> {
    let mut backends = Backend::local();
    backends.extend(redis.backend.clone());
    backends
}

/// Every backend a run could measure, Redis included, for matching step names to a filter.
pub fn backends_for_filter() -> Vec<Backend> {
    let mut backends = Backend::local();
    backends.push(Backend::Redis {
        url: REDIS_URL_DEFAULT.to_owned(),
    });
    backends
}

/// Every key-value step for `backends`. In quick mode, Strict's bulk put (1000 fsyncs per
/// run, seconds when the disk is slow) is left out.
pub fn steps(backends: &[Backend], quick: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    for backend in backends {
        steps.push(point_step("single_get", backend, |fixture| {
            Ok(KvGet::new(fixture)?)
        }));
        steps.push(point_step("single_put", backend, |fixture| {
            Ok(KvPut::new(fixture, VALUE_BYTES)?)
        }));
        if !(quick && *backend == Backend::CairnStrict) {
            steps.push(bulk_step("bulk_put", backend, |fixture| {
                Ok(KvBulkPut::new(fixture)?)
            }));
        }
        steps.push(bulk_step("bulk_get", backend, |fixture| {
            Ok(KvBulkGet::new(fixture)?)
        }));
    }
    steps
}

/// `group/op/subject/param`, as the criterion bench names it.
fn row_name(group: &str, op: &str, subject: &Subject, parameter: usize) -> String {
    format!("{group}/{op}/{}/{parameter}", subject.name())
}

/// Latency of `op` through the trait and through the raw client, in alternation, and the
/// ratio of their p50s.
fn point_step<W: Workload + 'static>(
    op: &'static str,
    backend: &Backend,
    build: fn(&KvFixture) -> Result<W>,
) -> Step {
    let store = Subject::store(backend.clone());
    let raw = Subject::raw(backend.clone());
    let name = row_name("single_operations", op, &store, VALUE_BYTES);
    Step::new(name, move |context, name| {
        let mut through_store = build(&context.kv_fixture(&store)?)?;
        let mut through_raw = build(&context.kv_fixture(&raw)?)?;
        let ops_per_sample = if store.backend.is_in_memory() {
            POINT_OPS_PER_SAMPLE
        } else {
            1
        };
        let (store_latency, raw_latency) = measure::measure_latency_alternating(
            &mut through_store,
            &mut through_raw,
            context.latency_plan(),
            ops_per_sample,
        )?;
        let ratio = Row::ratio(
            &format!("{name} vs {}", raw.name()),
            p50(&store_latency),
            p50(&raw_latency),
            "p50 through the KeyValueStore trait over p50 of the raw client, timed in \
             alternation",
        );
        Ok(vec![
            check_point(&store.backend, op, latency_row(name, &store_latency)),
            latency_row(
                &row_name("single_operations", op, &raw, VALUE_BYTES),
                &raw_latency,
            ),
            check_ratio(&store.backend, ratio),
        ])
    })
    .in_section(SECTION)
}

/// Throughput of 1000 sequential calls of `op` through the trait and through the raw client,
/// timed in alternation (turns of about 25 ms, at least one run each); ops/s is 1000 over a run's
/// mean time.
fn bulk_step<W: Workload + 'static>(
    op: &'static str,
    backend: &Backend,
    build: fn(&KvFixture) -> Result<W>,
) -> Step {
    let store = Subject::store(backend.clone());
    let raw = Subject::raw(backend.clone());
    let name = row_name("batch_operations", op, &store, BULK_OPS);
    Step::new(name, move |context, name| {
        let mut through_store = build(&context.kv_fixture(&store)?)?;
        let mut through_raw = build(&context.kv_fixture(&raw)?)?;
        let (store_runs, raw_runs) = measure::measure_latency_alternating(
            &mut through_store,
            &mut through_raw,
            context.throughput_plan(),
            1,
        )?;
        let (store_rate, raw_rate) = (bulk_rate(&store_runs), bulk_rate(&raw_runs));
        let time_ratio = if store_rate.ops_per_sec > 0.0 {
            raw_rate.ops_per_sec / store_rate.ops_per_sec
        } else {
            0.0
        };
        let explained = "1000 sequential calls per run; runs of the trait and of the raw \
                         client timed in alternation; ops/s = 1000 / mean run time";
        Ok(vec![
            check_bulk(&store.backend, Row::throughput(name, &store_rate))
                .annotate(&format!("{time_ratio:.2}x raw time/op"))
                .note(explained),
            Row::throughput(&row_name("batch_operations", op, &raw, BULK_OPS), &raw_rate)
                .note(explained),
        ])
    })
    .in_section(SECTION)
}

/// The throughput of runs of [`BULK_OPS`] calls timed one run per sample.
fn bulk_rate(runs: &Latency) -> Throughput {
    let engine_ops = runs.samples * BULK_OPS as u64;
    let seconds = runs.mean_ns * measure::count_as_f64(runs.samples) / 1e9;
    Throughput {
        runs: runs.samples,
        engine_ops,
        measured: Duration::from_secs_f64(seconds.max(0.0)),
        ops_per_sec: if runs.mean_ns > 0.0 {
            measure::count_as_f64(BULK_OPS as u64) * 1e9 / runs.mean_ns
        } else {
            0.0
        },
    }
}

fn p50(latency: &Latency) -> f64 {
    measure::count_as_f64(latency.p50_ns)
}

/// A get or put latency row through the trait, checked against its backend's target.
fn check_point(backend: &Backend, op: &str, row: Row) -> Row {
    match backend {
        Backend::CairnInMemory => {
            let goal = if op == "single_get" {
                &targets::GET_LARGEST_GOAL
            } else {
                &targets::PUT_GOAL
            };
            row.target(&targets::KV_CAIRN_POINT).goal(goal)
        }
        Backend::Sqlite => row.target(&targets::KV_SQLITE_POINT),
        Backend::Redis { .. } => row.target(&targets::KV_REDIS_POINT),
        Backend::CairnBuffered | Backend::CairnStrict => row,
    }
}

/// A trait-over-raw ratio row, checked against its backend's goal.
fn check_ratio(backend: &Backend, row: Row) -> Row {
    match backend {
        Backend::Sqlite => row.goal(&targets::KV_SQLITE_OVER_RAW_GOAL),
        Backend::Redis { .. } => row.goal(&targets::KV_REDIS_OVER_RAW_GOAL),
        _ => row,
    }
}

/// A bulk throughput row through the trait, checked against its backend's target.
fn check_bulk(backend: &Backend, row: Row) -> Row {
    match backend {
        Backend::CairnInMemory => row.target(&targets::BULK).goal(&targets::BULK_GOAL),
        Backend::Sqlite => row.target(&targets::KV_SQLITE_BULK),
        _ => row,
    }
}

impl Context {
    /// `subject`'s store of [`FIXTURE_KEYS`] keys with [`VALUE_BYTES`] values, filled on first
    /// request and shared for the rest of the run.
    pub(super) fn kv_fixture(&mut self, subject: &Subject) -> Result<KvFixture> {
        let name = subject.name();
        if let Some(fixture) = self.kv_fixtures.get(&name) {
            return Ok(fixture.clone());
        }
        self.building(&format!("a {FIXTURE_KEYS}-key {name} store"));
        let fixture = KvFixture::build(subject, FIXTURE_KEYS, VALUE_BYTES)
            .with_context(|| format!("filling a {FIXTURE_KEYS}-key {name} store"))?;
        self.building_done();
        self.kv_fixtures.insert(name, fixture.clone());
        Ok(fixture)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kv_filter_selects_every_key_value_row_and_only_those() {
        let backends = Backend::local();
        let (steps, _) = super::super::select(Some(SECTION), &backends, false)
            .expect("the section selects steps");
        assert_eq!(steps.len(), 4 * backends.len());
        assert!(steps.iter().all(|step| step.section == Some(SECTION)));
        let names: Vec<&str> = steps.iter().map(|step| step.name.as_str()).collect();
        assert!(names.contains(&"single_operations/single_get/sqlite/100"));
        assert!(names.contains(&"batch_operations/bulk_put/cairn-strict/1000"));
        let (quick, _) = super::super::select(Some(SECTION), &backends, true)
            .expect("the section selects steps");
        assert_eq!(quick.len(), 4 * backends.len() - 1, "no Strict bulk put");
    }

    #[test]
    fn redis_rows_are_skipped_with_a_reason_when_nothing_answers() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let choice = RedisChoice::resolve("redis://127.0.0.1:1", false);
        assert!(choice.backend.is_none());
        let reason = choice.skipped.expect("a reason is given");
        assert!(reason.contains("redis://127.0.0.1:1"), "{reason}");
        assert!(backends(&RedisChoice::resolve_not_needed())
            .iter()
            .all(|backend| !matches!(backend, Backend::Redis { .. })));
    }
}

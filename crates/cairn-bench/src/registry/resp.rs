//! The RESP server entries: `redis-benchmark` against `cairn serve` (run in this process) and
//! against a `redis-server` started for the entry, in turns, in the same run.
//!
//! - `resp_server/default_suite` and `resp_server/default_suite_p16`: `redis-benchmark`'s
//!   default test suite at 50 clients, without and with 16-deep pipelining; Cairn in memory
//!   against Redis without persistence.
//! - `resp_server/durable_writes/{strict,buffered}`: `SET` and `INCR` at 50 clients; Cairn
//!   `strict` against Redis `appendfsync always`, and Cairn `buffered` against Redis
//!   `appendfsync everysec`.
//! - `resp_server/streams/{memory,memory_p16,strict}`: `XADD key * field value` at 50
//!   clients (the default suite has no stream test), in memory without and with 16-deep
//!   pipelining, and Cairn `strict` against Redis `appendfsync always`.
//!
//! Each test gives a throughput row per server (its p50 and p99 latency in the annotation,
//! from `redis-benchmark --csv`) and a ratio row, Cairn's throughput over Redis's. The
//! benchmark client runs on the same machine and takes a CPU of its own, as it does for both
//! servers. Without `redis-benchmark` and `redis-server` on `PATH` the entries report that
//! they were skipped.

use std::net::SocketAddr;
use std::process::Command;

use cairn_server::{Config, Mode, RunningServer};
use cairn_testkit::redis_server::RedisServer;
use cairn_testkit::TempDir;

use super::{by_mode, Context, Entry, Kind};
use crate::measure::Throughput;
use crate::report::Row;
use crate::targets::{self as t, Limit};
use crate::workloads::{Result, WorkloadError};

const CLIENTS: &str = "50";
const AHEAD: &str = "Cairn's throughput over Redis's; above 1.00x Cairn is ahead";

/// The entries.
pub fn entries(_quick: bool) -> Vec<Entry> {
    vec![
        Entry::new(
            "resp_server/default_suite",
            Kind::Throughput,
            |context, name| default_suite(context, name, 1),
        ),
        Entry::new(
            "resp_server/default_suite_p16",
            Kind::Throughput,
            |context, name| default_suite(context, name, 16),
        ),
        Entry::new(
            "resp_server/durable_writes",
            Kind::Throughput,
            durable_writes,
        ),
        Entry::new("resp_server/streams", Kind::Throughput, streams),
    ]
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
}

/// The row an entry gives when it cannot run here.
fn skipped(name: &str) -> Vec<Row> {
    vec![Row::ratio(
        &format!("{name}/skipped"),
        0.0,
        0.0,
        "skipped: redis-benchmark and redis-server are not on PATH (apt-get install redis-server)",
    )]
}

/// One test of a `redis-benchmark --csv` run.
struct Measured {
    test: String,
    ops_per_sec: f64,
    p50_ms: String,
    p99_ms: String,
}

/// A CSV test name as a row name: the part before ` (`, with the one duplicate renamed.
fn test_name(csv_name: &str) -> String {
    if csv_name.starts_with("LPUSH (needed") {
        return "LPUSH_for_LRANGE".to_owned();
    }
    csv_name
        .split(" (")
        .next()
        .unwrap_or(csv_name)
        .replace(' ', "_")
}

fn unquote(field: &str) -> &str {
    field.trim().trim_matches('"')
}

/// Runs `redis-benchmark` against `port` with `extra` arguments; the tests it reports.
fn redis_benchmark(port: u16, requests: u64, extra: &[&str]) -> Result<Vec<Measured>> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", CLIENTS])
        .args(["-n", &requests.to_string(), "--csv"])
        .args(extra)
        .output()
        .map_err(|error| WorkloadError::io("redis-benchmark", "run redis-benchmark", &error))?;
    if !output.status.success() {
        return Err(WorkloadError::unexpected(
            "redis-benchmark",
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut measured = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split("\",\"").map(unquote).collect();
        if let [test, rps, _, _, p50, _, p99, ..] = fields.as_slice() {
            let ops_per_sec = rps.parse().map_err(|_| {
                WorkloadError::unexpected("redis-benchmark", format!("bad CSV line: {line}"))
            })?;
            measured.push(Measured {
                test: test_name(test),
                ops_per_sec,
                p50_ms: (*p50).to_owned(),
                p99_ms: (*p99).to_owned(),
            });
        }
    }
    if measured.is_empty() {
        return Err(WorkloadError::unexpected(
            "redis-benchmark",
            format!("no results in its output: {text}"),
        ));
    }
    Ok(measured)
}

fn start_cairn(mode: Mode, dir: Option<&TempDir>) -> Result<RunningServer> {
    RunningServer::start(Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        mode,
        dir: dir.map(|dir| dir.path().to_path_buf()),
        ..Config::new()
    })
    .map_err(|error| WorkloadError::io("cairn serve", "start the server", &error))
}

fn start_redis(settings: &[&str]) -> Result<RedisServer> {
    RedisServer::start_with(settings)
        .map_err(|error| WorkloadError::io("redis-server", "start the server", &error))
}

/// The median of each test's throughput over `rounds` runs, and the last run's latencies.
fn median_by_test(rounds: &[Vec<Measured>]) -> Vec<Measured> {
    let Some(last) = rounds.last() else {
        return Vec::new();
    };
    last.iter()
        .map(|measured| {
            let mut speeds: Vec<f64> = rounds
                .iter()
                .filter_map(|round| round.iter().find(|m| m.test == measured.test))
                .map(|m| m.ops_per_sec)
                .collect();
            speeds.sort_by(f64::total_cmp);
            Measured {
                test: measured.test.clone(),
                ops_per_sec: speeds.get(speeds.len() / 2).copied().unwrap_or(0.0),
                p50_ms: measured.p50_ms.clone(),
                p99_ms: measured.p99_ms.clone(),
            }
        })
        .collect()
}

/// Runs the benchmark on both servers in turns, `rounds` times each.
fn in_turns(
    cairn_port: u16,
    redis_port: u16,
    rounds: usize,
    requests: u64,
    extra: &[&str],
) -> Result<(Vec<Measured>, Vec<Measured>)> {
    let (mut cairn, mut redis) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        cairn.push(redis_benchmark(cairn_port, requests, extra)?);
        redis.push(redis_benchmark(redis_port, requests, extra)?);
    }
    Ok((median_by_test(&cairn), median_by_test(&redis)))
}

fn throughput_row(name: &str, measured: &Measured, workload: &str, subject: &str) -> Row {
    let throughput = Throughput {
        runs: 1,
        engine_ops: 0,
        measured: std::time::Duration::ZERO,
        ops_per_sec: measured.ops_per_sec,
    };
    Row::throughput(name, &throughput)
        .annotate(&format!(
            "p50 {} ms, p99 {} ms",
            measured.p50_ms, measured.p99_ms
        ))
        .side_by_side(workload, subject)
}

/// The rows of one comparison: each server's row per test, then Cairn's speed over Redis's.
fn compare(
    name: &str,
    (cairn_label, cairn): (&str, Vec<Measured>),
    (redis_label, redis): (&str, Vec<Measured>),
    target: impl Fn(&str) -> Option<&'static Limit>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for ours in &cairn {
        let workload = format!("{name}/{}", ours.test);
        rows.push(throughput_row(
            &format!("{workload}/{cairn_label}"),
            ours,
            &workload,
            cairn_label,
        ));
        let Some(theirs) = redis.iter().find(|m| m.test == ours.test) else {
            continue;
        };
        rows.push(throughput_row(
            &format!("{workload}/{redis_label}"),
            theirs,
            &workload,
            redis_label,
        ));
        let ratio = Row::ratio(
            &format!("{workload}/{cairn_label} vs {redis_label}"),
            ours.ops_per_sec,
            theirs.ops_per_sec,
            AHEAD,
        );
        rows.push(
            ratio
                .check(target(&ours.test), Some(&t::CAIRN_AHEAD))
                .side_by_side(&workload, redis_label),
        );
    }
    rows
}

fn default_suite(context: &mut Context, name: &str, pipeline: u32) -> Result<Vec<Row>> {
    if !on_path("redis-benchmark") || !on_path("redis-server") {
        return Ok(skipped(name));
    }
    context.building("a Cairn server and a redis-server");
    let cairn = start_cairn(Mode::Memory, None)?;
    let redis = start_redis(&[])?;
    context.building_done();
    let requests = context.scaled(100_000, 5) * u64::from(pipeline.min(4));
    let rounds = by_mode(context.quick, 1, 3);
    let depth = pipeline.to_string();
    let extra: Vec<&str> = if pipeline > 1 {
        vec!["-P", &depth]
    } else {
        Vec::new()
    };
    let (ours, theirs) = in_turns(cairn.addr().port(), redis.port(), rounds, requests, &extra)?;
    Ok(compare(
        name,
        ("cairn-memory", ours),
        ("redis", theirs),
        |_| Some(&t::RESP_MEMORY),
    ))
}

fn durable_writes(context: &mut Context, name: &str) -> Result<Vec<Row>> {
    if !on_path("redis-benchmark") || !on_path("redis-server") {
        return Ok(skipped(name));
    }
    let requests = context.scaled(100_000, 5);
    let rounds = by_mode(context.quick, 1, 3);
    let mut rows = Vec::new();
    for (mode, group, cairn_label, fsync, redis_label) in [
        (
            Mode::Strict,
            "strict",
            "cairn-strict",
            "always",
            "redis-always",
        ),
        (
            Mode::Buffered,
            "buffered",
            "cairn-buffered",
            "everysec",
            "redis-everysec",
        ),
    ] {
        context.building(&format!("{cairn_label} and {redis_label} servers"));
        let dir = TempDir::new("resp-bench");
        let cairn = start_cairn(mode, Some(&dir))?;
        let redis = start_redis(&["--appendonly", "yes", "--appendfsync", fsync])?;
        context.building_done();
        let (ours, theirs) = in_turns(
            cairn.addr().port(),
            redis.port(),
            rounds,
            requests,
            &["-t", "set,incr"],
        )?;
        let strict = mode == Mode::Strict;
        rows.extend(compare(
            &format!("{name}/{group}"),
            (cairn_label, ours),
            (redis_label, theirs),
            |_| strict.then_some(&t::RESP_STRICT),
        ));
    }
    Ok(rows)
}

/// `XADD` on both servers: in memory at pipeline depths 1 and 16, then durable.
fn streams(context: &mut Context, name: &str) -> Result<Vec<Row>> {
    if !on_path("redis-benchmark") || !on_path("redis-server") {
        return Ok(skipped(name));
    }
    let requests = context.scaled(100_000, 5);
    let rounds = by_mode(context.quick, 1, 3);
    let xadd = ["xadd", "bench:stream", "*", "field", "value"];
    let mut rows = Vec::new();
    for (mode, group, cairn_label, settings, redis_label, pipeline) in [
        (
            Mode::Memory,
            "memory",
            "cairn-memory",
            &[][..],
            "redis",
            "1",
        ),
        (
            Mode::Memory,
            "memory_p16",
            "cairn-memory",
            &[],
            "redis",
            "16",
        ),
        (
            Mode::Strict,
            "strict",
            "cairn-strict",
            &["--appendonly", "yes", "--appendfsync", "always"][..],
            "redis-always",
            "1",
        ),
    ] {
        context.building(&format!("{cairn_label} and {redis_label} servers"));
        let dir = TempDir::new("resp-bench");
        let cairn = start_cairn(mode, (mode != Mode::Memory).then_some(&dir))?;
        let redis = start_redis(settings)?;
        context.building_done();
        let mut extra = vec!["-P", pipeline];
        extra.extend(xadd);
        let (mut ours, mut theirs) =
            in_turns(cairn.addr().port(), redis.port(), rounds, requests, &extra)?;
        for measured in ours.iter_mut().chain(theirs.iter_mut()) {
            "XADD".clone_into(&mut measured.test);
        }
        rows.extend(compare(
            &format!("{name}/{group}"),
            (cairn_label, ours),
            (redis_label, theirs),
            |_| None,
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::test_name;

    #[test]
    fn csv_test_names_become_row_names() {
        assert_eq!(test_name("SET"), "SET");
        assert_eq!(test_name("LRANGE_100 (first 100 elements)"), "LRANGE_100");
        assert_eq!(test_name("MSET (10 keys)"), "MSET");
        assert_eq!(
            test_name("LPUSH (needed to benchmark LRANGE)"),
            "LPUSH_for_LRANGE"
        );
    }
}

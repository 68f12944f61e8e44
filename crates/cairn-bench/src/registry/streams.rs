//! The message-stream entries, in four groups: `core_operations` (appends alone, in batches,
//! durable and from many writers; reads), `system_operations` (opening a large store after a
//! crash, segment rotation, memory per inactive stream), `integration_operations` (the batch
//! codec, a consumer group's loop, replay) and `stress_tests`. Where other stores can run the
//! workload they run it in the same run, in turns, and a ratio row gives Cairn's speed over
//! each (`<workload>/cairn vs <store>`); `memcpy` and `raw-fdatasync` are floors, not peers.

use super::side_by_side::latency_row;
use super::{by_mode, Context, Derived, Entry, Kind, Timed};
use crate::measure::{self, count_as_f64, Latency, Throughput};
use crate::report::Row;
use crate::targets::{self as t, Bound, Limit, Source};
use crate::workloads::durability::RawFdatasync;
use crate::workloads::stream_system::{
    self as system, Conversion, CrashedOpen, GroupProcessing, Stress,
};
use crate::workloads::streams::{
    Append, ConcurrentAppends, LogKind, LogLabel, LogSpec, Read, ReadPattern,
};
use crate::workloads::{ParallelWorkload, Result, Workload, WorkloadError};
use std::process::Command;
use std::time::Duration;

const MESSAGE_BYTES: usize = 64;
const SINGLE_WRITE_BYTES: [usize; 3] = [64, 1_024, 64 * 1_024];
const BATCHES: [usize; 5] = [1, 10, 100, 1_000, 10_000];
const WRITERS: [usize; 5] = [1, 4, 8, 16, 32];
/// Strict appends per run of `concurrent_writes`, over all writers (quick: a quarter).
const CONCURRENT_APPENDS_PER_RUN: u64 = 512;
/// Messages the read fixtures hold (quick: a tenth).
const READ_MESSAGES: u64 = 1_000_000;
/// Log sizes opened after a crash: full mode, then quick.
type Sizes = [(u64, &'static str); 2];
const RECOVERY_SIZES: (Sizes, Sizes) = (
    [(1 << 30, "1GiB"), (4 << 30, "4GiB")],
    [(64 << 20, "64MiB"), (256 << 20, "256MiB")],
);
/// Inactive streams of the memory probe (quick: a tenth).
const MEMORY_STREAMS: u64 = 100_000;
/// Batches each producer appends per run of the stress mix (quick: a fifth).
const STRESS_BATCHES: u64 = 200;

const CAIRN: LogLabel = LogLabel {
    kind: LogKind::Cairn,
    strict: false,
};
const CAIRN_STRICT: LogLabel = LogLabel {
    kind: LogKind::Cairn,
    strict: true,
};
const WRITER_SCALING: &str = "core_operations/concurrent_writes/16 vs 1/cairn-strict";
const STRICT_RATIO: &str = "core_operations/strict_write_latency/64/cairn-strict vs raw-fdatasync";
const AHEAD: &str = "Cairn's speed over the store's; above 1.00x Cairn is ahead";

/// Gate: the Strict append over a raw fdatasync, timed in alternation; the target is 1.2x.
pub const GATE_STRICT_APPEND: Limit = t::from(Source::Gate, Bound::AtMost(3.0), "<= 3x");
/// Gate: 16 Strict writers over one; the target is 10x, a build without group commit is 1x.
pub const GATE_WRITER_SCALING: Limit = t::from(Source::Gate, Bound::AtLeast(3.0), ">= 3x");

/// The entries that measure a Redis Stream when a server is there.
pub const WITH_REDIS: [&str; 4] = [
    "core_operations/single_write_latency",
    "core_operations/batch_write_throughput",
    "core_operations/read_operations",
    "integration_operations/streaming_api",
];

fn buffered_logs(context: &Context) -> Vec<LogLabel> {
    let kinds = [
        LogKind::Cairn,
        LogKind::Memcpy,
        LogKind::Fjall,
        LogKind::Sqlite,
        LogKind::Redis,
    ];
    let kinds = kinds
        .into_iter()
        .filter(|kind| *kind != LogKind::Redis || context.has_redis());
    kinds
        .map(|kind| LogLabel {
            kind,
            strict: false,
        })
        .collect()
}

fn strict_logs() -> Vec<LogLabel> {
    let kinds = [LogKind::Cairn, LogKind::Fjall, LogKind::Sqlite];
    kinds
        .into_iter()
        .map(|kind| LogLabel { kind, strict: true })
        .collect()
}

fn spec(context: &Context, label: LogLabel, batch: usize, bytes: usize) -> LogSpec {
    LogSpec::new(label, batch, bytes, context.places.redis_url.as_deref())
}

/// Each log's row, then Cairn's speed over each other log's: side by side with the goal
/// "Cairn ahead" for a peer, on its own line for the `memcpy` floor.
fn compare(workload: &str, measured: Vec<(LogLabel, Row, f64)>) -> Vec<Row> {
    let cairn = measured
        .iter()
        .find(|(label, ..)| label.kind == LogKind::Cairn);
    let cairn = cairn.map(|(_, _, speed)| *speed);
    let (mut rows, mut ratios) = (Vec::new(), Vec::new());
    for (label, row, speed) in measured {
        let subject = label.to_string();
        let floor = label.kind == LogKind::Memcpy;
        rows.push(if floor {
            row
        } else {
            row.side_by_side(workload, &subject)
        });
        let Some(cairn) = cairn.filter(|_| label.kind != LogKind::Cairn) else {
            continue;
        };
        let ratio = Row::ratio(
            &format!("{workload}/cairn vs {subject}"),
            cairn,
            speed,
            AHEAD,
        );
        ratios.push(if floor {
            ratio.note("the in-memory floor: messages copied into one Vec, nothing else")
        } else {
            ratio
                .check(None, Some(&t::CAIRN_AHEAD))
                .side_by_side(workload, &subject)
        });
    }
    rows.extend(ratios);
    rows
}

fn speed(latency: &Latency) -> f64 {
    1e9 / count_as_f64(latency.p50_ns.max(1))
}

fn boxed_appends(specs: &[LogSpec]) -> Result<Vec<Box<dyn Workload>>> {
    specs
        .iter()
        .map(|spec| Ok(Box::new(Append::new(spec.clone())?) as Box<dyn Workload>))
        .collect()
}

fn timed_appends(specs: &[LogSpec]) -> Result<Vec<(String, Timed)>> {
    let timed = specs.iter().zip(boxed_appends(specs)?);
    Ok(timed
        .map(|(spec, workload)| (spec.label.to_string(), Timed::Single(workload)))
        .collect())
}

/// Latencies of `workloads` (labelled), single operations, in turns of `turn`.
fn latencies(
    context: &Context,
    workloads: &mut [Box<dyn Workload>],
    turn: Option<Duration>,
) -> Result<Vec<Latency>> {
    let mut refs: Vec<&mut dyn Workload> = workloads.iter_mut().map(|w| &mut **w as _).collect();
    measure::measure_latency_round_robin(&mut refs, context.latency_plan(), 1, turn)
}

/// Every stream entry.
pub fn entries(quick: bool) -> Vec<Entry> {
    let mut entries: Vec<Entry> = SINGLE_WRITE_BYTES.into_iter().map(single_write).collect();
    entries.push(strict_write());
    entries.extend(BATCHES.into_iter().map(batch_write));
    entries.extend(WRITERS.into_iter().map(concurrent_writes));
    entries.extend([
        reads(),
        replay(),
        recovery(quick),
        rotation(),
        memory(quick),
    ]);
    entries.extend([conversion(), processing(), stress()]);
    entries
}

/// Writer scaling of the Strict append.
pub fn derived(_quick: bool) -> Vec<Derived> {
    let row = |writers: usize| format!("core_operations/concurrent_writes/{writers}/cairn-strict");
    let explained = "Strict appends per second from 16 writers over from one: group commit";
    let target = Some(t::STREAM_WRITER_SCALING);
    vec![Derived::new(
        WRITER_SCALING,
        [row(16), row(1)],
        explained,
        target,
        None,
    )]
}

/// The CI gate's stream rows.
pub fn gates(_quick: bool) -> Vec<(String, Limit)> {
    vec![
        (STRICT_RATIO.to_owned(), GATE_STRICT_APPEND),
        (WRITER_SCALING.to_owned(), GATE_WRITER_SCALING),
    ]
}

fn single_write(bytes: usize) -> Entry {
    let name = format!("core_operations/single_write_latency/{bytes}");
    let specs = move |context: &Context| -> Vec<LogSpec> {
        let labels = buffered_logs(context).into_iter();
        labels.map(|label| spec(context, label, 1, bytes)).collect()
    };
    Entry::new(name, Kind::Latency, move |context, name| {
        let specs = specs(context);
        let latencies = latencies(context, &mut boxed_appends(&specs)?, None)?;
        let mut measured = Vec::new();
        let mut tail = None;
        for (spec, latency) in specs.iter().zip(&latencies) {
            let row_name = format!("{name}/{}", spec.label);
            if spec.label == CAIRN && bytes == MESSAGE_BYTES {
                let p99 = Row::latency_p99(&format!("{row_name} p99"), latency);
                tail = Some(p99.target(&t::STREAM_APPEND_P99));
            }
            measured.push((spec.label, latency_row(&row_name, latency), speed(latency)));
        }
        let mut rows = compare(name, measured);
        rows.extend(tail);
        Ok(rows)
    })
    .timed_by(move |context| timed_appends(&specs(context)))
}

fn strict_write() -> Entry {
    let name = "core_operations/strict_write_latency/64";
    let specs = |context: &Context| -> Vec<LogSpec> {
        strict_logs()
            .into_iter()
            .map(|label| spec(context, label, 1, MESSAGE_BYTES))
            .collect()
    };
    Entry::new(name, Kind::Latency, move |context, name| {
        let specs = specs(context);
        let mut workloads = vec![Box::new(RawFdatasync::new()?) as Box<dyn Workload>];
        workloads.extend(boxed_appends(&specs)?);
        // Each operation alternates with the others': fdatasync latency drifts over seconds.
        let latencies = latencies(context, &mut workloads, Some(Duration::ZERO))?;
        let missing = || super::nothing_to_measure("strict_write_latency");
        let (raw, strict) = latencies.split_first().ok_or_else(missing)?;
        let measured = specs.iter().zip(strict);
        let measured = measured.map(|(spec, latency)| {
            let row = latency_row(&format!("{name}/{}", spec.label), latency);
            (spec.label, row, speed(latency))
        });
        let mut rows = compare(name, measured.collect());
        let raw_row = latency_row(&format!("{name}/raw-fdatasync"), raw).note(
            "128-byte pwrite into a preallocated file, then fdatasync: the floor of a Strict append",
        );
        let cairn = strict.first().map_or(0.0, |latency| count_as_f64(latency.p50_ns));
        let explained = "Strict append p50 over raw fdatasync p50, timed in alternation";
        let ratio = Row::ratio(STRICT_RATIO, cairn, count_as_f64(raw.p50_ns), explained);
        rows.extend([raw_row, ratio.target(&t::STREAM_STRICT_OVER_FDATASYNC)]);
        Ok(rows)
    })
    .timed_by(move |context| timed_appends(&specs(context)))
}

fn batch_write(batch: usize) -> Entry {
    let name = format!("core_operations/batch_write_throughput/{batch}");
    let specs = move |context: &Context| -> Vec<LogSpec> {
        let labels = buffered_logs(context).into_iter();
        labels
            .map(|label| spec(context, label, batch, MESSAGE_BYTES))
            .collect()
    };
    Entry::new(name, Kind::Throughput, move |context, name| {
        let specs = specs(context);
        let mut workloads = boxed_appends(&specs)?;
        let mut refs: Vec<&mut dyn Workload> =
            workloads.iter_mut().map(|w| &mut **w as _).collect();
        let plan = context.latency_plan();
        let throughputs = measure::measure_throughput_round_robin(&mut refs, plan)?;
        let measured = specs.iter().zip(&throughputs).map(|(spec, throughput)| {
            let mut row = Row::throughput(&format!("{name}/{}", spec.label), throughput);
            if spec.label == CAIRN && batch >= 1_000 {
                row = row.target(&t::STREAM_BATCHED);
            }
            (spec.label, row, throughput.ops_per_sec)
        });
        Ok(compare(name, measured.collect()))
    })
    .timed_by(move |context| timed_appends(&specs(context)))
}

fn concurrent_writes(writers: usize) -> Entry {
    let name = format!("core_operations/concurrent_writes/{writers}");
    let build = move |context: &Context, label| {
        let total = context.scaled(CONCURRENT_APPENDS_PER_RUN, 4);
        let appends = (total / writers as u64).max(1);
        ConcurrentAppends::new(&spec(context, label, 1, MESSAGE_BYTES), writers, appends)
    };
    Entry::new(name, Kind::Throughput, move |context, name| {
        let mut measured = Vec::new();
        for label in strict_logs() {
            let throughput =
                measure::measure_parallel(&mut build(context, label)?, context.parallel_plan())?;
            let row = Row::throughput(&format!("{name}/{label}"), &throughput);
            measured.push((label, row, throughput.ops_per_sec));
        }
        Ok(compare(name, measured))
    })
    .timed_by(move |context| {
        let workload = Box::new(build(context, CAIRN_STRICT)?) as Box<dyn ParallelWorkload>;
        Ok(vec![(CAIRN_STRICT.to_string(), Timed::Parallel(workload))])
    })
}

/// Cairn's fixture for single and range reads is appended one message at a time (a frame
/// each); every other fixture in batches of 1,000, which the peers store message by message
/// anyway. Read from a frame of 1,000 messages, one message costs the whole frame's read and
/// check (see docs/streams.md); a replay reads whole frames.
fn read_fixture(context: &Context, label: LogLabel, pattern: ReadPattern) -> Result<Read> {
    let messages = context.scaled(READ_MESSAGES, 10);
    let one_by_one = label.kind == LogKind::Cairn && pattern != ReadPattern::Replay;
    let batch = if one_by_one { 1 } else { 1_000 };
    Read::new(
        &spec(context, label, batch, MESSAGE_BYTES),
        messages,
        pattern,
    )
}

fn reads() -> Entry {
    Entry::new(
        "core_operations/read_operations",
        Kind::Latency,
        |context, name| {
            context.building("the read fixtures");
            let mut fixtures = Vec::new();
            for label in buffered_logs(context) {
                fixtures.push((
                    label,
                    read_fixture(context, label, ReadPattern::Sequential)?,
                ));
            }
            context.building_done();
            let mut rows = Vec::new();
            for (pattern, tag) in [
                (ReadPattern::Sequential, "sequential"),
                (ReadPattern::Random, "random"),
                (ReadPattern::Range, "range"),
            ] {
                let mut refs: Vec<&mut dyn Workload> = Vec::new();
                for (_, read) in &mut fixtures {
                    read.set_pattern(pattern);
                    refs.push(read);
                }
                let latencies = measure::measure_latency_round_robin(
                    &mut refs,
                    context.latency_plan(),
                    1,
                    None,
                )?;
                let workload = format!("{name}/{tag}");
                let mut measured = Vec::new();
                for ((label, _), latency) in fixtures.iter().zip(&latencies) {
                    let row_name = format!("{workload}/{label}");
                    if *label == CAIRN && pattern != ReadPattern::Range {
                        let p99 = Row::latency_p99(&format!("{row_name} p99"), latency);
                        rows.push(p99.target(&t::STREAM_READ_P99));
                    }
                    measured.push((*label, latency_row(&row_name, latency), speed(latency)));
                }
                rows.extend(compare(&workload, measured));
            }
            Ok(rows)
        },
    )
    .timed_by(|context| {
        let read = read_fixture(context, CAIRN, ReadPattern::Random)?;
        Ok(vec![(CAIRN.to_string(), Timed::Single(Box::new(read)))])
    })
}

fn replay() -> Entry {
    let name = "integration_operations/streaming_api/replay";
    Entry::new(name, Kind::Throughput, |context, name| {
        context.building("the replay fixtures");
        let mut fixtures = Vec::new();
        for label in buffered_logs(context) {
            fixtures.push((label, read_fixture(context, label, ReadPattern::Replay)?));
        }
        context.building_done();
        let mut refs: Vec<&mut dyn Workload> =
            fixtures.iter_mut().map(|(_, read)| read as _).collect();
        let throughputs =
            measure::measure_throughput_round_robin(&mut refs, context.latency_plan())?;
        let measured = fixtures
            .iter()
            .zip(&throughputs)
            .map(|((label, _), throughput)| {
                let mut row = Row::throughput(&format!("{name}/{label}"), throughput);
                if *label == CAIRN {
                    row = row.target(&t::STREAM_REPLAY);
                }
                (
                    *label,
                    row.note("every message from offset 0, in pages of 1,000"),
                    throughput.ops_per_sec,
                )
            });
        Ok(compare(name, measured.collect()))
    })
    .timed_by(|context| {
        let read = read_fixture(context, CAIRN, ReadPattern::Replay)?;
        Ok(vec![(CAIRN.to_string(), Timed::Single(Box::new(read)))])
    })
}

fn recovery(quick: bool) -> Entry {
    let sizes = by_mode(quick, RECOVERY_SIZES.1, RECOVERY_SIZES.0);
    Entry::new(
        "system_operations/recovery_operations",
        Kind::Latency,
        move |context, name| {
            let mut rows = Vec::new();
            for (bytes, size) in sizes {
                context.building(&format!("a {size} stream store"));
                let mut open = CrashedOpen::new(bytes)?;
                context.building_done();
                let latency = measure::measure_latency(&mut open, context.runs_plan(5, 3), 1)?;
                let note =
                    "Streams::open of a store whose newest segment's first frame is torn, as \
                a crash leaves it, until the stream's length is known; warm page cache";
                let row =
                    Row::latency(&format!("{name}/{size}/cairn-buffered"), &latency).note(note);
                rows.push(if quick {
                    row
                } else {
                    row.target(&t::STREAM_OPEN)
                });
            }
            Ok(rows)
        },
    )
    .timed_by(move |_| {
        let open = CrashedOpen::new(sizes[0].0)?;
        Ok(vec![(CAIRN.to_string(), Timed::Single(Box::new(open)))])
    })
}

fn rotation() -> Entry {
    let name = "system_operations/segment_rotation/1024";
    let specs = |context: &Context| -> Vec<LogSpec> {
        let mut small = spec(context, CAIRN, 1, 1_024);
        small.segment_bytes = Some(1 << 20);
        vec![small, spec(context, CAIRN, 1, 1_024)]
    };
    Entry::new(name, Kind::Latency, move |context, name| {
        let specs = specs(context);
        let latencies = latencies(context, &mut boxed_appends(&specs)?, None)?;
        let mut rows = Vec::new();
        for (latency, segments) in latencies.iter().zip(["1MiB_segments", "8MiB_segments"]) {
            let row = latency_row(&format!("{name}/{segments}/cairn-buffered"), latency);
            rows.push(row.note("1 KiB Buffered appends; p99 and max show the rotations"));
        }
        Ok(rows)
    })
    .timed_by(move |context| {
        let mut specs = specs(context);
        specs.truncate(1);
        timed_appends(&specs)
    })
}

fn memory(quick: bool) -> Entry {
    let count = by_mode(quick, MEMORY_STREAMS / 10, MEMORY_STREAMS);
    let name = "system_operations/memory_efficiency";
    Entry::new(name, Kind::Other, move |context, name| {
        context.building(&format!("{count} streams in a child process"));
        let line = run_memory_probe(count)?;
        context.building_done();
        let bad =
            || WorkloadError::unexpected("memory_efficiency", format!("bad probe line {line}"));
        let bytes = system::bytes_per_stream(&line).ok_or_else(bad)?;
        let explained = format!("RSS growth of a process opening a store of {count} inactive streams (lazy_open), per stream");
        let row = Row::bytes(&format!("{name}/{count}/cairn"), bytes, &explained);
        Ok(vec![if quick {
            row
        } else {
            row.target(&t::STREAM_INACTIVE_BYTES)
        }])
    })
}

/// Runs this process's own binary as `bench --memory-probe streams --keys N`.
fn run_memory_probe(count: u64) -> Result<String> {
    let failed = |detail: String| WorkloadError::unexpected("memory_efficiency", detail);
    let exe = std::env::current_exe().map_err(|error| failed(error.to_string()))?;
    let mut command = Command::new(exe);
    command.args([
        "bench",
        "--memory-probe",
        "streams",
        "--keys",
        &count.to_string(),
    ]);
    let output = command
        .output()
        .map_err(|error| failed(error.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().find(|line| line.starts_with("streams ")) {
        Some(line) if output.status.success() => Ok(line.to_owned()),
        _ => Err(failed(format!(
            "the probe failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// A Cairn-only throughput entry over one workload.
fn cairn_throughput<W: Workload + 'static>(
    name: &'static str,
    note: &'static str,
    build: fn() -> Result<W>,
) -> Entry {
    Entry::new(name, Kind::Throughput, move |context, name| {
        let mut workload = build()?;
        let plan = context.latency_plan();
        let throughputs = measure::measure_throughput_round_robin(&mut [&mut workload], plan)?;
        let missing = || super::nothing_to_measure("stream workload");
        let throughput = throughputs.first().ok_or_else(missing)?;
        Ok(vec![
            Row::throughput(&format!("{name}/cairn"), throughput).note(note)
        ])
    })
    .timed_by(move |_| {
        Ok(vec![(
            "cairn".to_owned(),
            Timed::Single(Box::new(build()?)),
        )])
    })
}

fn conversion() -> Entry {
    let note = "messages per second through encode_batch and decode_batch: batches of 100 \
        messages with a key, two headers and 1 KiB";
    cairn_throughput("integration_operations/message_conversion", note, || {
        Ok(Conversion::default())
    })
}

fn processing() -> Entry {
    let note = "messages per second through append_batch, read_group and ack, 100 at a time, \
        Buffered";
    cairn_throughput(
        "integration_operations/transaction_processing",
        note,
        GroupProcessing::new,
    )
}

fn stress() -> Entry {
    let name = "stress_tests/comprehensive_stress";
    let build = |context: &Context| Stress::new(context.scaled(STRESS_BATCHES, 5));
    Entry::new(name, Kind::Throughput, move |context, name| {
        let throughput: Throughput =
            measure::measure_parallel(&mut build(context)?, context.parallel_plan())?;
        let (producers, consumers) = system::STRESS_THREADS;
        let note = format!(
            "messages appended plus delivered per second: {producers} producers on a stream \
             each, {consumers} consumers draining them through a group, retention behind them"
        );
        Ok(vec![Row::throughput(
            &format!("{name}/cairn-buffered"),
            &throughput,
        )
        .note(&note)])
    })
    .timed_by(move |context| {
        let workload = Box::new(build(context)?) as Box<dyn ParallelWorkload>;
        Ok(vec![("cairn".to_owned(), Timed::Parallel(workload))])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cairn_is_compared_with_peers_side_by_side_and_with_the_floor_alone() {
        let row = |label: LogLabel| Row::ratio(&label.to_string(), 1.0, 1.0, "");
        let peer = LogLabel {
            kind: LogKind::Sqlite,
            strict: false,
        };
        let floor = LogLabel {
            kind: LogKind::Memcpy,
            strict: false,
        };
        let measured = vec![
            (CAIRN, row(CAIRN), 4.0),
            (peer, row(peer), 2.0),
            (floor, row(floor), 8.0),
        ];
        let rows = compare("w", measured);
        let find = |name: &str| rows.iter().find(|row| row.name == name).expect(name);
        assert!((find("w/cairn vs sqlite-buffered").value - 2.0).abs() < 1e-9);
        assert!(find("w/cairn vs sqlite-buffered").subject.is_some());
        assert!((find("w/cairn vs memcpy").value - 0.5).abs() < 1e-9);
        assert!(
            find("w/cairn vs memcpy").subject.is_none(),
            "the floor is not a peer"
        );
        assert_eq!(rows.len(), 5);
    }
}

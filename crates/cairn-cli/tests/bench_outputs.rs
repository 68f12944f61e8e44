//! Integration tests of `cairn bench`'s outputs, through the real binary and hand-made saved
//! runs (nothing is measured): the table (a line per workload in 120 columns; `--wide`: every
//! row), `--compare`, `--plot`, `--markdown` (chart links relative to the report), errors for
//! files that are not saved runs (exit 1, no panic), and the exit codes of `--validate`.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use serde_json::{json, Value as Json};
use tempfile::TempDir;

/// Runs `cairn bench ARGS` (split at spaces) in `dir`, checks its exit code, and returns
/// `stdout: <its stdout>stderr: <its stderr>`.
fn bench(dir: &TempDir, args: &str, code: i32) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
    command.current_dir(dir.path()).arg("bench");
    let output = command.args(args.split_whitespace()).output();
    let output = output.expect("the cairn binary runs");
    let [stdout, stderr] = [output.stdout, output.stderr].map(String::from_utf8);
    let (stdout, stderr) = (stdout.expect("UTF-8"), stderr.expect("UTF-8"));
    let text = format!("stdout: {stdout}stderr: {stderr}");
    assert_eq!(output.status.code(), Some(code), "{args}:\n{text}");
    text
}

/// Asserts that `text`, with each line's runs of white space made one space, holds each of
/// `wanted` (and none of those that start with `NOT `).
fn check(text: &str, wanted: &[&str]) {
    let words = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat: String = text.lines().map(|line| words(line) + "\n").collect();
    for want in wanted {
        match want.strip_prefix("NOT ") {
            Some(unwanted) => assert!(!flat.contains(unwanted), "{unwanted:?} in:\n{flat}"),
            None => assert!(flat.contains(want), "{want:?} not in:\n{flat}"),
        }
    }
}

fn write(dir: &TempDir, name: &str, value: &Json) {
    std::fs::write(dir.path().join(name), value.to_string()).expect("the fixture is written");
}

fn read(dir: &TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(name)).expect("the file exists")
}

fn latency(name: &str, p50: u64) -> Json {
    let (p95, p99, p999) = (p50 * 2, p50 * 3, p50 * 5);
    json!({"name": name, "unit": "ns", "p50": p50, "p95": p95, "p99": p99, "p999": p999,
           "value": p50})
}

/// A subject's row on a side-by-side workload: its latency, or Cairn's speed over it.
fn peer(workload: &str, subject: &str, p50: u64, ratio: Option<f64>) -> Json {
    let mut row = latency(&format!("peers/{workload}/{subject}"), p50);
    if let Some(ratio) = ratio {
        row = json!({"name": format!("peers/{workload}/cairn vs {subject}"), "unit": "x",
                     "value": ratio});
    }
    (row["workload"], row["subject"]) = (json!(workload), json!(subject));
    row
}

fn targeted(name: &str, p50: u64, pass: bool) -> Json {
    let mut row = latency(name, p50);
    (row["target"], row["pass"]) = (json!("< 1 µs"), json!(pass));
    row
}

fn saved_run(cpu: &str, results: &[Json]) -> Json {
    let count = |pass: bool| results.iter().filter(|row| row["pass"] == pass).count();
    json!({
        "tool": "cairn bench", "version": "0.1.0", "mode": "full", "build": "release",
        "command": "cairn bench --json latest.json", "date": "2026-01-02 03:04:05 UTC",
        "machine": {"cpus": 2, "cpu_model": cpu, "platform": "linux-x86_64"},
        "notes": ["hand-made rows"], "elapsed_seconds": 12.5,
        "passed": count(true), "missed": count(false), "results": results
    })
}

/// Writes `a.json` (Cairn and its peers on three workloads, ratios, Cairn-only rows) and
/// `b.json` (the Cairn-only row 25 % faster, a row gone since, no hot rows, another machine).
fn after_and_before(dir: &TempDir) {
    let (uniform, hot, sorted) = ("point_read/uniform", "point_read/hot", "bulk_load/sorted");
    let measured = [
        peer(uniform, "redb-buffered", 1_500, None),
        peer(uniform, "cairn-buffered", 300, None),
        peer(uniform, "sqlite-strict", 3_600, None),
    ];
    let mut after = vec![targeted("single_operations/single_get/100", 400, true)];
    after.extend(measured.clone());
    after.extend([
        peer(hot, "cairn-buffered", 200, None),
        peer(hot, "redb-buffered", 900, None),
        peer(uniform, "redb-buffered", 0, Some(5.0)),
        peer(uniform, "sqlite-strict", 0, Some(12.0)),
        peer(hot, "redb-buffered", 0, Some(4.5)),
        // Cairn ahead of nothing: its bar is not drawn.
        peer(hot, "sqlite-strict", 0, Some(0.0)),
        // Known subjects first, then the others as they come.
        peer(sorted, "zeta-store", 800, None),
        peer(sorted, "cairn-strict", 100, None),
        peer(sorted, "alpha-store", 900, None),
        latency("odd|name <b>", 5),
        // A group whose chart cannot be called ratios.svg.
        peer("ratios", "redis", 2, None),
    ]);
    let mut after = saved_run("Test CPU", &after);
    (after["command"], after["filter"]) = (json!("cairn bench `x`"), json!("`y"));
    let mut before = vec![targeted("single_operations/single_get/100", 300, true)];
    before.extend(measured);
    before.push(latency("retired/row", 50));
    write(dir, "a.json", &after);
    write(dir, "b.json", &saved_run("Other CPU", &before));
}

#[test]
fn a_saved_run_is_printed_compared_plotted_and_written_as_markdown() {
    let dir = TempDir::new().expect("a temp dir");
    after_and_before(&dir);
    std::fs::create_dir_all(dir.path().join("r/r")).expect("the report's directory");
    let args = "--from-json a.json --compare b.json --plot (charts) --markdown r/./r/../bench.md";
    let stdout = bench(&dir, &format!("{args} --json c"), 0);
    let (table, comparison) = stdout.split_once("comparison with").expect("a comparison");
    check(
        table,
        &[
            "(loaded from a.json)",
            "date: 2026-01-02 03:04:05 UTC",
            "machine: 2 CPUs, Test CPU (linux-x86_64)",
            // A line per workload: Cairn, the best peer, Cairn's speed over it; no peer row.
            "\npoint_read/uniform 300 ns redb-buffered 1.50 µs 5.00x\n",
            "NOT peers/point_read",
            "1 passed, 0 missed",
        ],
    );
    check(
        comparison,
        &[
            "warning: the runs are from different machines",
            // 300 ns before, 400 ns after is 0.75x, beyond 10 %: WORSE.
            "\nsingle_operations/single_get/100 300 ns 400 ns 0.75x WORSE\n",
            "\npeers/point_read/uniform/cairn-buffered 300 ns 300 ns 1.00x\n",
            "\npeers/point_read/hot/cairn-buffered - 200 ns - added\n",
            "\nretired/row 50 ns - - removed\n",
            "0 better, 1 worse beyond 10 %",
            "plot: 4 chart(s) written to (charts)",
        ],
    );
    let svg = |name: &str| read(&dir, &format!("(charts)/{name}.svg"));
    let (point_read, ratios) = (svg("point_read"), svg("ratios"));
    check(&point_read, &["<svg", "</svg>\n", "cairn-buffered\n"]);
    check(&point_read, &["redb-buffered\n", "sqlite-strict\n"]);
    let hot = "point_read/hot vs sqlite-strict";
    check(&ratios, &[hot, "12.00x", "\n0.1x\n"]);
    check(&svg("ratios-group"), &["2 ns"]);
    check(
        &read(&dir, "r/bench.md"),
        &[
            "- command: `` cairn bench `x` ``",
            "- filter: `` `y ``",
            "| workload | cairn-buffered | redb-buffered | sqlite-strict |",
            "| point_read/uniform | p50 300 ns / p99 900 ns | p50 1.50 µs / p99 4.50 µs | p50 3.60 µs / p99 10.8 µs |",
            "| point_read/hot | p50 200 ns / p99 600 ns | p50 900 ns / p99 2.70 µs | – |",
            "| workload | cairn-strict | zeta-store | alpha-store |",
            "![point_read: Cairn and its peers](<../(charts)/point_read.svg>)",
            "| point_read/uniform | 5.00x | 12.00x |",
            "![Cairn's speed relative to each peer](<../(charts)/ratios.svg>)",
            "| single_operations/single_get/100 | p50 400 ns / p99 1.20 µs | < 1 µs | - | PASS |",
            "| odd\\|name &lt;b> | p50 5 ns / p99 15 ns | - | - | - |",
            // Figures are right-aligned.
            "-:|",
        ],
    );
    // The rows were written back, without the figures, as a saved run that loads again;
    // --wide shows every row.
    check(&read(&dir, "c"), &["NOT \"figure\""]);
    let uniform = "peers/point_read/uniform/redb-buffered p50 1.50 µs / p99 4.50 µs";
    let wide = bench(&dir, "--from-json c --wide", 0);
    check(&wide, &[uniform, "note: hand"]);
}

#[test]
fn exit_codes_and_messages() {
    let dir = TempDir::new().expect("a temp dir");
    after_and_before(&dir);
    let fast = targeted("fast/enough", 400, true);
    let slow = targeted("too/slow", 4_000, false);
    let mut failed = saved_run("CPU", std::slice::from_ref(&slow));
    failed["failed"] = json!([{"name": "broken/workload", "error": "get found nothing"}]);
    write(&dir, "failed.json", &failed);
    let missed = saved_run("CPU", &[fast.clone(), slow]);
    write(&dir, "missed.json", &missed);
    write(&dir, "passing.json", &saved_run("CPU", &[fast]));
    let from_json = |args: &str, code, wanted: &[&str]| {
        check(&bench(&dir, &format!("--from-json {args}"), code), wanted);
    };
    let miss = "\nMISS too/slow: p50 4.00 µs / p99 12.0 µs (target < 1 µs)\n";
    let validate = "validate: 1 row(s) missed their target:";
    let not_fast = "NOT MISS fast/enough";
    from_json("missed.json --validate", 3, &[validate, miss, not_fast]);
    // A MISS is a result; a workload error stays exit 1.
    from_json("missed.json", 0, &["1 passed, 1 missed"]);
    let met = "validate: every row with a target met it";
    from_json("passing.json --validate", 0, &[met]);
    let failure = "FAILED broken/workload: get found nothing";
    let error = "stderr: error: 1 workload(s) failed: broken/workload";
    from_json("failed.json --validate", 1, &[failure, error]);
    // 0.75x is within 50 %.
    let within = "\nsingle_operations/single_get/100 300 ns 400 ns 0.75x\n";
    let args = "a.json --filter single_get --compare b.json --compare-threshold 50";
    from_json(args, 0, &[within, "NOT peers/point_read/hot"]);
    let no_row = "no row name contains \"nothing\"";
    from_json("a.json --filter nothing", 1, &[no_row]);
    // Usage errors: a negative threshold, and --quick, which measures.
    from_json("a.json --compare b.json --compare-threshold -5", 2, &[]);
    from_json("a.json --quick", 2, &[]);
    // Files that are not saved runs (4.json is absent): nothing runs, stdout stays empty.
    let furlongs = [json!({"name": "a", "unit": "furlongs", "value": 1})];
    let not_rows = json!({"tool": "cairn bench", "results": 3});
    write(&dir, "0.json", &not_rows);
    write(&dir, "1.json", &json!({"name": "x"}));
    write(&dir, "2.json", &saved_run("CPU", &furlongs));
    std::fs::write(dir.path().join("3.json"), "\u{0}\u{1}[").expect("written");
    let not_saved = "not a JSON file written by `cairn bench --json`";
    let errors = [not_saved; 4]
        .into_iter()
        .chain(["cannot read the saved run"]);
    for (at, error) in errors.enumerate() {
        let file = format!("{at}.json");
        let wanted = ["stdout: stderr: error: ", &file, error];
        from_json(&format!("{file} --filter x"), 1, &wanted);
        from_json(&format!("passing.json --compare {file}"), 1, &wanted);
    }
}

#[test]
fn the_default_table_fits_120_columns_and_wide_shows_everything() {
    let long_name = format!("key_patterns/{}/1000", "very_long_workload_name_".repeat(6));
    let recovery = "recovery/snapshot_wal_recovery/1000000+100000";
    let mut recovery = targeted(recovery, 737_150_000, false);
    recovery["target"] = json!("< 500 ms (2 s ok)");
    recovery["annotations"] = json!(["5 runs; engine report p50 737.03 ms", "intact open 1 ms"]);
    let overhead = "single_operations/single_get/cairn-inmemory/100 vs cairn-inmemory-raw";
    let mut rows = vec![recovery, latency(overhead, 2)];
    rows.push(targeted(&long_name, 82_600, true));
    // Figures in every unit, rounded to their unit.
    let units = [("ops/s", 3.21e6), ("bytes", 1229.0), ("versions", 2.0)];
    let units = units.into_iter().chain([("bytes", -3.0), ("ns", 1e30)]);
    for (at, (unit, value)) in units.enumerate() {
        rows.push(json!({"name": format!("units/{at}"), "unit": unit, "value": value}));
    }
    let stores = ["cairn-inmemory", "cairn-buffered", "redb-buffered"];
    let stores = stores.into_iter().chain(["sqlite-buffered", "redis"]);
    let workload = "put/buffered_with_a_longer_workload_name";
    for (index, store) in (1_u64..).zip(stores) {
        rows.push(peer(workload, store, 2_370 * index, None));
        rows.push(peer("get_at_scale/1000000", store, 686_000 * index, None));
        if index > 2 {
            let mut ratio = peer(workload, store, 0, Some(1435.41));
            (ratio["goal"], ratio["goal_met"]) = (json!("> 1.00x (Cairn ahead)"), json!(true));
            rows.push(ratio);
        }
    }
    let mut run = saved_run("AMD EPYC 7B13 64-Core Processor", &rows);
    run["failed"] = json!([{"name": long_name, "error": "x".repeat(300)}]);
    run["notes"] = json!(["a note of several sentences ".repeat(20)]);
    let dir = TempDir::new().expect("a temp dir");
    write(&dir, "run.json", &run);
    let output = bench(&dir, "--from-json run.json", 1); // 1: the failed workload
    let (stdout, _) = output.split_once("stderr: ").expect("stderr follows");
    for line in stdout.lines() {
        let columns = line.chars().count();
        assert!(columns <= 120, "{columns} columns:\n{line}");
    }
    check(
        stdout,
        &[
            "key_patterns/very_…",
            "MISS",
            // Cairn's buffered figure, the peer it is least ahead of, the ratio row's figure.
            &format!("\n{workload} 4.74 µs redb-buffered 7.11 µs 1435.41x ✓\n"),
            // Without a ratio row, the ratio comes from the two figures.
            "\nget_at_scale/1000000 1.37 ms redb-buffered 2.06 ms 1.50x\n",
            "\nunits/0 3.21M ops/s\nunits/1 1.2 KiB\nunits/2 2 versions\nunits/3 0 B\n",
            "\nunits/4 18446744073.71 s\n",
            // Notes are behind --wide.
            "NOT a note of several",
        ],
    );
    let wide = bench(&dir, "--from-json run.json --wide", 1);
    let figure = "p50 737.15 ms / p99 2.21 s (5 runs; engine report p50 737.03 ms)";
    check(&wide, &[&long_name, "a note of several", figure]);
}

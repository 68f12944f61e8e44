//! Integration tests of the output side of `cairn bench`, through the real binary and
//! hand-made saved runs (nothing is measured): `--from-json` prints a saved run like a live
//! one, a line per workload that fits 120 columns (`--wide`: every row); `--compare` marks
//! changes beyond the threshold and lists added and removed rows; `--plot` writes an SVG per
//! side-by-side group and `ratios.svg`; `--markdown` writes tables that link those charts
//! relative to the report; a file that is not a saved run is an error naming it (exit 1, no
//! panic); `--validate` exits 3 on a MISS and 1 on a failed workload.

use std::process::Command;

use serde_json::{json, Value as Json};

/// Runs `cairn ARGS` (split at spaces): its exit code, stdout and stderr.
fn cairn(args: &str) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args.split_whitespace())
        .output()
        .expect("the cairn binary runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// Writes `value` as the file `name` in `dir`; returns its path.
fn write(dir: &tempfile::TempDir, name: &str, value: &Json) -> String {
    let path = dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(&path, value.to_string()).expect("the fixture is written");
    path
}

fn latency(name: &str, p50: u64) -> Json {
    let (p95, p99, p999) = (p50 * 2, p50 * 3, p50 * 5);
    json!({"name": name, "unit": "ns", "p50": p50, "p95": p95, "p99": p99, "p999": p999,
           "value": p50})
}

fn peer(workload: &str, subject: &str, p50: u64) -> Json {
    let mut row = latency(&format!("peers/{workload}/{subject}"), p50);
    (row["workload"], row["subject"]) = (json!(workload), json!(subject));
    row
}

fn ratio(workload: &str, subject: &str, value: f64) -> Json {
    let name = format!("peers/{workload}/cairn vs {subject}");
    json!({"name": name, "unit": "x", "value": value, "workload": workload, "subject": subject})
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

/// The runs "after" (Cairn and two peers on two read workloads, ratios, one Cairn-only row)
/// and "before" (the Cairn-only row 30 % faster, one row that is gone since, no hot rows, on
/// another machine), written into `dir`.
fn after_and_before(dir: &tempfile::TempDir) -> (String, String) {
    let uniform = [
        peer("point_read/uniform", "redb-buffered", 1_500),
        peer("point_read/uniform", "cairn-buffered", 300),
        peer("point_read/uniform", "sqlite-strict", 3_600),
    ];
    let after = [
        &[targeted("single_operations/single_get/100", 400, true)],
        &uniform[..],
        &[
            peer("point_read/hot", "cairn-buffered", 200),
            peer("point_read/hot", "redb-buffered", 900),
            ratio("point_read/uniform", "redb-buffered", 5.0),
            ratio("point_read/uniform", "sqlite-strict", 12.0),
            ratio("point_read/hot", "redb-buffered", 4.5),
        ],
    ];
    let before = [
        &[targeted("single_operations/single_get/100", 300, true)],
        &uniform[..],
        &[latency("retired/row", 50)],
    ];
    (
        write(dir, "a.json", &saved_run("Test CPU", &after.concat())),
        write(dir, "b.json", &saved_run("Other CPU", &before.concat())),
    )
}

/// The last line of `text` that starts with `start`, asserting that it holds every `cell`.
fn line_has<'a>(text: &'a str, start: &str, cells: &[&str]) -> &'a str {
    let line = text.lines().rev().find(|line| line.starts_with(start));
    let line = line.unwrap_or_else(|| panic!("no line for {start} in:\n{text}"));
    for cell in cells {
        assert!(line.contains(cell), "{cell} in {line}");
    }
    line
}

#[test]
fn a_saved_run_is_printed_compared_plotted_and_written_as_markdown() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (after, before) = after_and_before(&dir);
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (charts, markdown, resaved) = (path("r/charts"), path("r/bench.md"), path("c.json"));
    let (code, stdout, stderr) = cairn(&format!(
        "bench --from-json {after} --compare {before} --plot {charts} --markdown {markdown} \
         --json {resaved}"
    ));
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for text in [
        "(loaded from ",
        "date:    2026-01-02 03:04:05 UTC",
        "machine: 2 CPUs, Test CPU (linux-x86_64)",
        "1 passed, 0 missed",
        "warning: the runs are from different machines",
        "0 better, 1 worse beyond 10 %",
    ] {
        assert!(stdout.contains(text), "{text} in:\n{stdout}");
    }
    // A line per workload: Cairn, the best peer, Cairn's speed over it; no peer row.
    line_has(
        &stdout,
        "point_read/uniform ",
        &["300 ns", "redb-buffered 1.50 µs", "5.00x"],
    );
    let table = stdout.split("comparison with").next().unwrap_or_default();
    assert!(!table.contains("peers/point_read"), "{table}");
    // The comparison: 300 ns before, 400 ns after is 0.75x, beyond 10 %: WORSE.
    for (start, end) in [
        ("single_operations/single_get/100 ", "0.75x  WORSE"),
        ("peers/point_read/uniform/cairn-buffered ", "1.00x"),
        ("peers/point_read/hot/cairn-buffered ", "added"),
        ("retired/row ", "removed"),
    ] {
        assert!(
            line_has(&stdout, start, &[]).ends_with(end),
            "{start}: {end}"
        );
    }

    // Charts: one per group and the ratio summary, every subject named.
    let read = |path: &str| std::fs::read_to_string(path).expect("the file exists");
    let group_chart = read(&format!("{charts}/point_read.svg"));
    assert!(group_chart.starts_with("<svg") && group_chart.trim_end().ends_with("</svg>"));
    let ratio_chart = read(&format!("{charts}/ratios.svg"));
    for (chart, text) in [
        (&group_chart, "cairn-buffered"),
        (&group_chart, "redb-buffered"),
        (&group_chart, "sqlite-strict"),
        (&ratio_chart, "vs sqlite-strict"),
        (&ratio_chart, "12.00x"),
        (&ratio_chart, "\n1x\n"),
    ] {
        assert!(chart.contains(text), "{text} in {chart}");
    }

    // The Markdown report; table cells are padded, so lines compare with spaces collapsed.
    let report = read(&markdown);
    let flat: Vec<String> = (report.lines())
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for line in [
        "- command: `cairn bench --json latest.json`",
        "| workload | cairn-buffered | redb-buffered | sqlite-strict |",
        "| point_read/uniform | p50 300 ns / p99 900 ns | p50 1.50 µs / p99 4.50 µs | p50 3.60 µs / p99 10.8 µs |",
        "| point_read/hot | p50 200 ns / p99 600 ns | p50 900 ns / p99 2.70 µs | – |",
        "![point_read: Cairn and its peers](charts/point_read.svg)",
        "| point_read/uniform | 5.00x | 12.00x |",
        "![Cairn's speed relative to each peer](charts/ratios.svg)",
        "| single_operations/single_get/100 | p50 400 ns / p99 1.20 µs | < 1 µs | - | PASS |",
    ] {
        assert!(flat.iter().any(|flat| flat == line), "{line} in:\n{report}");
    }
    assert!(report.contains("-:|"), "figures are right-aligned");

    // The rows were written back (without their computed figure) as a saved run that loads
    // again; --wide shows every row.
    assert!(!read(&resaved).contains("\"figure\""));
    let (code, again, _) = cairn(&format!("bench --from-json {resaved} --wide"));
    assert_eq!(code, Some(0));
    line_has(
        &again,
        "peers/point_read/uniform/redb-buffered ",
        &["p50 1.50 µs / p99 4.50 µs"],
    );
    assert!(again.contains("note: hand-made rows"), "{again}");
}

#[test]
fn the_threshold_and_the_filter_change_what_is_shown() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (after, before) = after_and_before(&dir);
    let (code, stdout, _) = cairn(&format!(
        "bench --from-json {after} --filter single_get --compare {before} --compare-threshold 50"
    ));
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("WORSE"), "0.75x is within 50 %: {stdout}");
    assert!(
        !stdout.contains("peers/point_read/hot"),
        "filtered out: {stdout}"
    );
    let (code, _, stderr) = cairn(&format!("bench --from-json {after} --filter nothing"));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no row name contains \"nothing\""));
    let negative = cairn(&format!("bench --compare {before} --compare-threshold -5"));
    assert_eq!(negative.0, Some(2), "a negative threshold is a usage error");
    let quick = cairn(&format!("bench --from-json {after} --quick"));
    assert_eq!(quick.0, Some(2), "--quick measures; --from-json does not");
}

#[test]
fn a_file_that_is_not_a_saved_run_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let furlongs = saved_run(
        "CPU",
        &[json!({"name": "a", "unit": "furlongs", "value": 1})],
    );
    let not_saved = [
        json!({"tool": "cairn bench", "results": 3}),
        json!({"name": "other"}),
        furlongs,
    ];
    let mut cases: Vec<(String, &str)> = (not_saved.iter().enumerate())
        .map(|(at, value)| {
            (
                write(&dir, &format!("{at}.json"), value),
                "not a JSON file written by `cairn bench --json`",
            )
        })
        .collect();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("binary.json"), "\u{0}\u{1}[").expect("written");
    cases.push((path("binary.json"), "not a JSON file"));
    cases.push((path("absent.json"), "cannot read the saved run"));
    for (path, error) in cases {
        for flag in ["--from-json", "--compare"] {
            let (code, stdout, stderr) = cairn(&format!("bench {flag} {path} --filter x"));
            assert_eq!(code, Some(1), "{flag} {path}: {stderr}");
            assert!(
                stderr.starts_with("error: ") && stderr.contains(&path),
                "{stderr}"
            );
            assert!(stderr.contains(error), "{stderr}");
            assert!(stdout.is_empty(), "nothing runs: {stdout}");
        }
    }
}

#[test]
fn validate_exits_3_on_a_miss_and_1_on_a_failed_workload() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (fast, slow) = (
        targeted("fast/enough", 400, true),
        targeted("too/slow", 4_000, false),
    );
    let mut failed = saved_run("CPU", &[slow.clone()]);
    failed["failed"] = json!([{"name": "broken/workload", "error": "get found nothing"}]);
    let missed = write(
        &dir,
        "missed.json",
        &saved_run("CPU", &[fast.clone(), slow]),
    );
    let passing = write(&dir, "passing.json", &saved_run("CPU", &[fast]));
    let failed = write(&dir, "failed.json", &failed);
    let miss_line = "  MISS too/slow: p50 4.00 µs / p99 12.0 µs (target < 1 µs)";
    for (path, flags, code, stdout_has, stderr_has) in [
        (
            &missed,
            "--validate",
            3,
            "validate: 1 row(s) missed their target:",
            "",
        ),
        (&missed, "--validate", 3, miss_line, ""),
        // A MISS is a result.
        (&missed, "", 0, "1 passed, 1 missed", ""),
        (
            &passing,
            "--validate",
            0,
            "validate: every row with a target met it",
            "",
        ),
        // A workload error stays exit 1.
        (
            &failed,
            "--validate",
            1,
            "FAILED broken/workload: get found nothing",
            "1 workload(s) failed: broken/workload",
        ),
    ] {
        let (status, stdout, stderr) = cairn(&format!("bench --from-json {path} {flags}"));
        assert_eq!(status, Some(code), "{path} {flags}: {stdout}");
        assert!(
            stdout.contains(stdout_has) && stderr.contains(stderr_has),
            "{stdout}{stderr}"
        );
        assert!(!stdout.contains("MISS fast/enough"));
    }
}

#[test]
fn the_default_table_fits_120_columns_and_wide_shows_everything() {
    let long_name = format!("key_patterns/{}/1000", "very_long_workload_name_".repeat(6));
    let mut recovery = targeted(
        "recovery/snapshot_wal_recovery/1000000+100000",
        737_150_000,
        false,
    );
    recovery["target"] = json!("< 500 ms (2 s ok)");
    recovery["annotations"] = json!(["5 runs; engine report p50 737.03 ms", "intact open 1 ms"]);
    let overhead = "single_operations/single_get/cairn-inmemory/100 vs cairn-inmemory-raw";
    let mut rows = vec![
        recovery,
        targeted(&long_name, 82_600, true),
        latency(overhead, 2),
    ];
    let stores = [
        "cairn-inmemory",
        "cairn-buffered",
        "redb-buffered",
        "sqlite-buffered",
        "redis",
    ];
    let workload = "put/buffered_with_a_longer_workload_name";
    for (index, store) in (1_u64..).zip(stores) {
        rows.push(peer(workload, store, 2_370 * index));
        rows.push(peer("get_at_scale/1000000", store, 686_000 * index));
    }
    for store in &stores[2..] {
        let mut ratio = ratio(workload, store, 1435.41);
        (ratio["goal"], ratio["goal_met"]) = (json!("> 1.00x (Cairn ahead)"), json!(true));
        rows.push(ratio);
    }
    let mut run = saved_run("AMD EPYC 7B13 64-Core Processor", &rows);
    run["failed"] = json!([{"name": long_name, "error": "x".repeat(300)}]);
    run["notes"] = json!(["a note of several sentences ".repeat(20)]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write(&dir, "run.json", &run);

    let (code, stdout, _) = cairn(&format!("bench --from-json {path}"));
    assert_eq!(code, Some(1), "the failed workload");
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 120,
            "{} columns:\n{line}",
            line.chars().count()
        );
    }
    assert!(
        stdout.contains("key_patterns/very_…") && stdout.contains("MISS"),
        "{stdout}"
    );
    // Cairn's buffered figure, the peer it is least ahead of, the ratio row's figure.
    line_has(
        &stdout,
        &format!("{workload} "),
        &["4.74 µs", "redb-buffered 7.11 µs", "1435.41x", "✓"],
    );
    // Without a ratio row, the ratio comes from the two figures.
    line_has(
        &stdout,
        "get_at_scale/1000000 ",
        &["1.37 ms", "redb-buffered 2.06 ms", "1.50x"],
    );
    assert!(
        !stdout.contains("a note of several"),
        "notes are behind --wide"
    );

    let (_, wide, _) = cairn(&format!("bench --from-json {path} --wide"));
    assert!(wide.contains(&long_name) && wide.contains("a note of several"));
    assert!(wide.contains("p50 737.15 ms / p99 2.21 s (5 runs; engine report p50 737.03 ms)"));
}

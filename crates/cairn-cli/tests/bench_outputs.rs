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

/// A temporary directory for the files of one test.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("a temp dir"))
    }

    /// The path of `name` in the directory.
    fn path(&self, name: &str) -> String {
        self.0.path().join(name).to_string_lossy().into_owned()
    }

    /// Writes `value` as the file `name`; returns its path.
    fn json(&self, name: &str, value: &Json) -> String {
        let path = self.path(name);
        std::fs::write(&path, value.to_string()).expect("the fixture is written");
        path
    }
}

fn latency(name: &str, p50: u64) -> Json {
    let (p95, p99, p999) = (p50 * 2, p50 * 3, p50 * 5);
    json!({"name": name, "unit": "ns", "p50": p50, "p95": p95, "p99": p99, "p999": p999,
           "value": p50})
}

fn peer(workload: &str, subject: &str, p50: u64) -> Json {
    let mut row = latency(&format!("peers/{workload}/{subject}"), p50);
    row["workload"] = json!(workload);
    row["subject"] = json!(subject);
    row
}

fn ratio(workload: &str, subject: &str, value: f64) -> Json {
    let name = format!("peers/{workload}/cairn vs {subject}");
    json!({"name": name, "unit": "x", "value": value, "workload": workload, "subject": subject})
}

fn targeted(name: &str, p50: u64, pass: bool) -> Json {
    let mut row = latency(name, p50);
    row["target"] = json!("< 1 µs");
    row["pass"] = json!(pass);
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

/// The run "after": Cairn and two peers on two read workloads, ratios, one Cairn-only row.
fn after_run() -> Json {
    saved_run(
        "Test CPU",
        &[
            targeted("single_operations/single_get/100", 400, true),
            peer("point_read/uniform", "redb-buffered", 1_500),
            peer("point_read/uniform", "cairn-buffered", 300),
            peer("point_read/uniform", "sqlite-strict", 3_600),
            peer("point_read/hot", "cairn-buffered", 200),
            peer("point_read/hot", "redb-buffered", 900),
            ratio("point_read/uniform", "redb-buffered", 5.0),
            ratio("point_read/uniform", "sqlite-strict", 12.0),
            ratio("point_read/hot", "redb-buffered", 4.5),
        ],
    )
}

/// The run "before": the Cairn-only row 30 % faster, one row that is gone since, no hot rows,
/// on another machine.
fn before_run() -> Json {
    saved_run(
        "Other CPU",
        &[
            targeted("single_operations/single_get/100", 300, true),
            peer("point_read/uniform", "redb-buffered", 1_500),
            peer("point_read/uniform", "cairn-buffered", 300),
            peer("point_read/uniform", "sqlite-strict", 3_600),
            latency("retired/row", 50),
        ],
    )
}

/// The last line of `text` that starts with `start`.
fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    let line = text.lines().rev().find(|line| line.starts_with(start));
    line.unwrap_or_else(|| panic!("no line for {start} in:\n{text}"))
}

#[test]
fn a_saved_run_is_printed_compared_plotted_and_written_as_markdown() {
    let dir = Dir::new();
    let (after, before) = (
        dir.json("a.json", &after_run()),
        dir.json("b.json", &before_run()),
    );
    let (charts, markdown, resaved) = (
        dir.path("r/charts"),
        dir.path("r/bench.md"),
        dir.path("c.json"),
    );
    let (code, stdout, stderr) = cairn(&format!(
        "bench --from-json {after} --compare {before} --plot {charts} --markdown {markdown} \
         --json {resaved}"
    ));
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The header, then a line per workload: Cairn, the best peer, Cairn's speed over it.
    assert!(
        stdout.contains("(loaded from ") && stdout.contains("date:    2026-01-02 03:04:05 UTC")
    );
    assert!(stdout.contains("machine: 2 CPUs, Test CPU (linux-x86_64)"));
    let uniform = line_of(&stdout, "point_read/uniform ");
    for cell in ["300 ns", "redb-buffered 1.50 µs", "5.00x"] {
        assert!(uniform.contains(cell), "{cell} in {uniform}");
    }
    let table = stdout.split("comparison with").next().unwrap_or_default();
    assert!(!table.contains("peers/point_read") && table.contains("1 passed, 0 missed"));

    // The comparison: 300 ns before, 400 ns after is 0.75x, beyond 10 %: WORSE.
    assert!(stdout.contains("warning: the runs are from different machines"));
    let slower = line_of(&stdout, "single_operations/single_get/100 ");
    assert!(
        slower.contains("0.75x") && slower.ends_with("WORSE"),
        "{slower}"
    );
    let same = line_of(&stdout, "peers/point_read/uniform/cairn-buffered ");
    assert!(same.ends_with("1.00x"), "{same}");
    assert!(line_of(&stdout, "peers/point_read/hot/cairn-buffered ").ends_with("added"));
    assert!(line_of(&stdout, "retired/row ").ends_with("removed"));
    assert!(stdout.contains("0 better, 1 worse beyond 10 %"), "{stdout}");

    // Charts: one per group and the ratio summary, every subject named.
    let read = |path: &str| std::fs::read_to_string(path).expect("the file exists");
    let group_chart = read(&format!("{charts}/point_read.svg"));
    for subject in ["cairn-buffered", "redb-buffered", "sqlite-strict"] {
        assert!(group_chart.contains(subject), "{subject} in the chart");
    }
    assert!(group_chart.starts_with("<svg") && group_chart.trim_end().ends_with("</svg>"));
    let ratio_chart = read(&format!("{charts}/ratios.svg"));
    assert!(ratio_chart.contains("vs sqlite-strict") && ratio_chart.contains("12.00x"));

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

    // The rows were written back as a saved run that loads again; --wide shows every row.
    let (code, again, _) = cairn(&format!("bench --from-json {resaved} --wide"));
    assert_eq!(code, Some(0));
    let peer_line = line_of(&again, "peers/point_read/uniform/redb-buffered ");
    assert!(
        peer_line.contains("p50 1.50 µs / p99 4.50 µs"),
        "{peer_line}"
    );
    assert!(again.contains("note: hand-made rows"), "{again}");
}

#[test]
fn the_threshold_and_the_filter_change_what_is_shown() {
    let dir = Dir::new();
    let (after, before) = (
        dir.json("a.json", &after_run()),
        dir.json("b.json", &before_run()),
    );
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
    let dir = Dir::new();
    for content in [
        json!({"tool": "cairn bench", "results": 3}),
        json!({"name": "other"}),
    ] {
        let path = dir.json("run.json", &content);
        for flag in ["--from-json", "--compare"] {
            let (code, stdout, stderr) = cairn(&format!("bench {flag} {path} --filter x"));
            assert_eq!(code, Some(1), "{flag} {content}: {stderr}");
            assert!(
                stderr.starts_with("error: ") && stderr.contains(&path),
                "{stderr}"
            );
            assert!(stderr.contains("not a JSON file written by `cairn bench --json`"));
            assert!(stdout.is_empty(), "nothing runs: {stdout}");
        }
    }
    std::fs::write(dir.path("binary.json"), "\u{0}\u{1}[").expect("written");
    let (code, _, stderr) = cairn(&format!("bench --from-json {}", dir.path("binary.json")));
    assert!(
        code == Some(1) && stderr.contains("not a JSON file"),
        "{stderr}"
    );
    let (code, _, stderr) = cairn(&format!("bench --from-json {}", dir.path("absent.json")));
    assert!(code == Some(1) && stderr.contains("cannot read the saved run"));
}

#[test]
fn validate_exits_3_on_a_miss_and_1_on_a_failed_workload() {
    let dir = Dir::new();
    let (fast, slow) = (
        targeted("fast/enough", 400, true),
        targeted("too/slow", 4_000, false),
    );
    let missed = dir.json(
        "missed.json",
        &saved_run("CPU", &[fast.clone(), slow.clone()]),
    );
    let (code, stdout, _) = cairn(&format!("bench --from-json {missed} --validate"));
    assert_eq!(code, Some(3), "{stdout}");
    assert!(stdout.contains("validate: 1 row(s) missed their target:"));
    assert!(stdout.contains("  MISS too/slow: p50 4.00 µs / p99 12.0 µs (target < 1 µs)"));
    assert!(!stdout.contains("MISS fast/enough"));
    assert_eq!(
        cairn(&format!("bench --from-json {missed}")).0,
        Some(0),
        "a MISS is a result"
    );

    let passing = dir.json("passing.json", &saved_run("CPU", &[fast]));
    let (code, stdout, _) = cairn(&format!("bench --from-json {passing} --validate"));
    assert_eq!(code, Some(0));
    assert!(stdout.contains("validate: every row with a target met it"));

    let mut failed = saved_run("CPU", &[slow]);
    failed["failed"] = json!([{"name": "broken/workload", "error": "get found nothing"}]);
    let failed = dir.json("failed.json", &failed);
    let (code, stdout, stderr) = cairn(&format!("bench --from-json {failed} --validate"));
    assert_eq!(code, Some(1), "a workload error stays exit 1");
    assert!(stdout.contains("FAILED broken/workload: get found nothing"));
    assert!(stderr.contains("1 workload(s) failed: broken/workload"));
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
    let mut rows = vec![
        recovery,
        targeted(&long_name, 82_600, true),
        latency(
            "single_operations/single_get/cairn-inmemory/100 vs cairn-inmemory-raw",
            2,
        ),
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
    let dir = Dir::new();
    let path = dir.json("run.json", &run);

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
    let put = line_of(&stdout, &format!("{workload} "));
    for cell in ["4.74 µs", "redb-buffered 7.11 µs", "1435.41x", "✓"] {
        assert!(put.contains(cell), "{cell} in {put}");
    }
    assert!(line_of(&stdout, "get_at_scale/1000000 ").contains("redb-buffered 2.06 ms"));
    assert!(
        !stdout.contains("a note of several"),
        "notes are behind --wide"
    );

    let (_, wide, _) = cairn(&format!("bench --from-json {path} --wide"));
    assert!(wide.contains(&long_name) && wide.contains("a note of several"));
    assert!(wide.contains("p50 737.15 ms / p99 2.21 s (5 runs; engine report p50 737.03 ms)"));
}

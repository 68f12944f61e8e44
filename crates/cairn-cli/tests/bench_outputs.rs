//! Integration tests of the output side of `cairn bench`, through the real binary and
//! hand-made saved runs (nothing is measured): `--from-json` prints a saved run like a live
//! one, `--compare` marks changes beyond the threshold and lists added and removed rows,
//! `--plot` writes an SVG per side-by-side group and `ratios.svg`, `--markdown` writes tables
//! that link those charts relative to the report; a file that is not a saved run is an error
//! naming it (exit 1, no panic); `--validate` exits 3 on a MISS and 1 on a failed workload;
//! the default table fits 120 columns and `--wide` shows every row.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value as Json};

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "cairn-cli-bench-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("the temp dir can be created");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn latency(name: &str, p50: u64) -> Json {
    json!({
        "name": name, "unit": "ns", "p50": p50, "p95": p50 * 2, "p99": p50 * 3,
        "p999": p50 * 5, "ops_per_sec": null, "value": p50, "target": null, "goal": null,
        "pass": null, "goal_met": null, "note": null, "workload": null, "subject": null
    })
}

fn peer(workload: &str, subject: &str, p50: u64) -> Json {
    let mut row = latency(&format!("peers/{workload}/{subject}"), p50);
    row["workload"] = json!(workload);
    row["subject"] = json!(subject);
    row
}

fn ratio(workload: &str, subject: &str, value: f64) -> Json {
    json!({
        "name": format!("peers/{workload}/cairn vs {subject}"), "unit": "x", "p50": null,
        "p95": null, "p99": null, "p999": null, "ops_per_sec": null, "value": value,
        "target": null, "goal": null, "pass": null, "goal_met": null,
        "note": "peer p50 over Cairn's p50", "workload": workload, "subject": subject
    })
}

fn targeted(name: &str, p50: u64, pass: bool) -> Json {
    let mut row = latency(name, p50);
    row["target"] = json!("< 1 µs");
    row["pass"] = json!(pass);
    row
}

fn saved_run(cpu: &str, results: &[Json]) -> Json {
    let passed = results
        .iter()
        .filter(|row| row["pass"] == json!(true))
        .count();
    let missed = results
        .iter()
        .filter(|row| row["pass"] == json!(false))
        .count();
    json!({
        "tool": "cairn bench", "version": "0.1.0", "mode": "full", "build": "release",
        "command": "cairn bench --json latest.json",
        "date": "2026-01-02 03:04:05 UTC",
        "machine": {"cpus": 2, "cpu_model": cpu, "platform": "linux-x86_64"},
        "filter": null, "notes": ["hand-made rows"], "elapsed_seconds": 12.5,
        "passed": passed, "missed": missed, "failed": [], "results": results
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

fn write_json(path: &Path, value: &Json) {
    std::fs::write(path, value.to_string()).expect("the fixture is written");
}

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .expect("the cairn binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn a_saved_run_is_printed_compared_plotted_and_written_as_markdown() {
    let dir = TempDir::new("outputs");
    let (after, before) = (dir.join("after.json"), dir.join("before.json"));
    write_json(&after, &after_run());
    write_json(&before, &before_run());
    let charts = dir.join("report/charts");
    let markdown = dir.join("report/bench.md");
    let resaved = dir.join("resaved.json");

    let output = cairn(&[
        "bench",
        "--from-json",
        arg(&after),
        "--compare",
        arg(&before),
        "--plot",
        arg(&charts),
        "--markdown",
        arg(&markdown),
        "--json",
        arg(&resaved),
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The header, then a line per workload: Cairn, the best peer, Cairn's speed over it.
    assert!(stdout.contains("(loaded from "), "{stdout}");
    assert!(stdout.contains("machine: 2 CPUs, Test CPU (linux-x86_64)"));
    assert!(stdout.contains("date:    2026-01-02 03:04:05 UTC"));
    let uniform = stdout
        .lines()
        .find(|line| line.starts_with("point_read/uniform "))
        .expect("one line for the workload");
    for cell in ["300 ns", "redb-buffered 1.50 µs", "5.00x"] {
        assert!(uniform.contains(cell), "{cell} in {uniform}");
    }
    let table = stdout.split("comparison with").next().unwrap_or_default();
    assert!(!table.contains("peers/point_read"), "{table}");
    assert!(stdout.contains("1 passed, 0 missed"));

    // The comparison: 300 ns before, 400 ns after is 0.75x, beyond 10 %: WORSE.
    assert!(stdout.contains("warning: the runs are from different machines"));
    let line_of = |name: &str| {
        stdout
            .lines()
            .rev()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"))
            .to_owned()
    };
    let slower = line_of("single_operations/single_get/100 ");
    assert!(
        slower.contains("0.75x") && slower.ends_with("WORSE"),
        "{slower}"
    );
    let same = line_of("peers/point_read/uniform/cairn-buffered ");
    assert!(same.contains("1.00x") && !same.contains("WORSE") && !same.contains("better"));
    assert!(line_of("peers/point_read/hot/cairn-buffered ").ends_with("added"));
    assert!(line_of("retired/row ").ends_with("removed"));
    assert!(stdout.contains("0 better, 1 worse beyond 10 %"), "{stdout}");

    // Charts: one per group and the ratio summary, every subject named.
    let group_chart =
        std::fs::read_to_string(charts.join("point_read.svg")).expect("the group chart exists");
    for subject in ["cairn-buffered", "redb-buffered", "sqlite-strict"] {
        assert!(group_chart.contains(subject), "{subject} in the chart");
    }
    assert!(group_chart.starts_with("<svg") && group_chart.trim_end().ends_with("</svg>"));
    let ratio_chart =
        std::fs::read_to_string(charts.join("ratios.svg")).expect("the ratio chart exists");
    assert!(ratio_chart.contains("vs sqlite-strict") && ratio_chart.contains("12.00x"));

    // The Markdown report: header, the group's table, the ratio table, links, other rows.
    let report = std::fs::read_to_string(&markdown).expect("the report exists");
    assert!(
        report.contains("- command: `cairn bench --json latest.json`"),
        "{report}"
    );
    // Table cells are padded: compare lines with runs of spaces collapsed.
    let flat: Vec<String> = (report.lines())
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for line in [
        "| workload | cairn-buffered | redb-buffered | sqlite-strict |",
        "| point_read/uniform | p50 300 ns / p99 900 ns | p50 1.50 µs / p99 4.50 µs | p50 3.60 µs / p99 10.8 µs |",
        "| point_read/hot | p50 200 ns / p99 600 ns | p50 900 ns / p99 2.70 µs | – |",
        "| point_read/uniform | 5.00x | 12.00x |",
        "| single_operations/single_get/100 | p50 400 ns / p99 1.20 µs | < 1 µs | - | PASS |",
    ] {
        assert!(flat.iter().any(|flat| flat == line), "{line} in:\n{report}");
    }
    assert!(report.contains("-:|"), "figures are right-aligned");
    assert!(report.contains("](charts/point_read.svg)"), "{report}");
    assert!(report.contains("](charts/ratios.svg)"), "{report}");

    // The rows were written back as a saved run that loads again; --wide shows every row.
    let again = cairn(&["bench", "--from-json", arg(&resaved), "--wide"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let again = text(&again.stdout);
    let peer_line = again
        .lines()
        .find(|line| line.starts_with("peers/point_read/uniform/redb-buffered "))
        .expect("the full table lists the peer row");
    assert!(
        peer_line.contains("p50 1.50 µs / p99 4.50 µs"),
        "{peer_line}"
    );
    assert!(again.contains("note: hand-made rows"), "{again}");
}

#[test]
fn the_threshold_and_the_filter_change_what_is_shown() {
    let dir = TempDir::new("threshold");
    let (after, before) = (dir.join("after.json"), dir.join("before.json"));
    write_json(&after, &after_run());
    write_json(&before, &before_run());
    let output = cairn(&[
        "bench",
        "--from-json",
        arg(&after),
        "--filter",
        "single_get",
        "--compare",
        arg(&before),
        "--compare-threshold",
        "50",
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(!stdout.contains("WORSE"), "0.75x is within 50 %: {stdout}");
    assert!(
        !stdout.contains("peers/point_read/hot"),
        "filtered out: {stdout}"
    );

    let none = cairn(&[
        "bench",
        "--from-json",
        arg(&after),
        "--filter",
        "nothing-matches",
    ]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).contains("no row name contains \"nothing-matches\""));

    let bad = cairn(&[
        "bench",
        "--compare",
        arg(&before),
        "--compare-threshold",
        "-5",
    ]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a negative threshold is a usage error"
    );
    let conflicting = cairn(&["bench", "--from-json", arg(&after), "--quick"]);
    assert_eq!(
        conflicting.status.code(),
        Some(2),
        "--quick measures; --from-json does not"
    );
}

#[test]
fn a_file_that_is_not_a_saved_run_is_a_clear_error() {
    let dir = TempDir::new("malformed");
    let cases = [
        (
            "truncated.json",
            "{\"tool\": \"cairn bench\", \"results\": [",
        ),
        (
            "other.json",
            "{\"name\": \"some other tool\", \"results\": 3}",
        ),
        ("binary.json", "\u{0}\u{1}\u{2}"),
    ];
    for (name, content) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("the fixture is written");
        for flag in ["--from-json", "--compare"] {
            let output = cairn(&["bench", flag, arg(&path), "--filter", "x"]);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{flag} {name}: {stderr}");
            assert!(stderr.starts_with("error: "), "{stderr}");
            assert!(
                stderr.contains(arg(&path)),
                "the error names the file: {stderr}"
            );
            assert!(stderr.contains("not a JSON file written by `cairn bench --json`"));
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(
                output.stdout.is_empty(),
                "nothing runs: {}",
                text(&output.stdout)
            );
        }
    }
    let missing = cairn(&["bench", "--from-json", arg(&dir.join("absent.json"))]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read the saved run"));
}

#[test]
fn validate_exits_3_on_a_miss_and_1_on_a_failed_workload() {
    let dir = TempDir::new("validate");
    let missed = dir.join("missed.json");
    write_json(
        &missed,
        &saved_run(
            "Test CPU",
            &[
                targeted("fast/enough", 400, true),
                targeted("too/slow", 4_000, false),
            ],
        ),
    );
    let output = cairn(&["bench", "--from-json", arg(&missed), "--validate"]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("validate: 1 row(s) missed their seed target:"),
        "{stdout}"
    );
    assert!(stdout.contains("  MISS too/slow: p50 4.00 µs / p99 12.0 µs (seed target < 1 µs)"));
    assert!(!stdout.contains("MISS fast/enough"));

    let without = cairn(&["bench", "--from-json", arg(&missed)]);
    assert_eq!(without.status.code(), Some(0), "a MISS alone is a result");

    let passing = dir.join("passing.json");
    write_json(
        &passing,
        &saved_run("Test CPU", &[targeted("fast/enough", 400, true)]),
    );
    let output = cairn(&["bench", "--from-json", arg(&passing), "--validate"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("validate: every row with a seed target met it"));

    let mut failed = saved_run("Test CPU", &[targeted("too/slow", 4_000, false)]);
    failed["failed"] = json!([{"name": "broken/workload", "error": "get found nothing"}]);
    let failed_path = dir.join("failed.json");
    write_json(&failed_path, &failed);
    let output = cairn(&["bench", "--from-json", arg(&failed_path), "--validate"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a workload error stays exit 1"
    );
    assert!(text(&output.stdout).contains("FAILED broken/workload: get found nothing"));
    assert!(text(&output.stderr).contains("1 workload(s) failed: broken/workload"));
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
    recovery["goal"] = json!("< 500 ms");
    recovery["goal_met"] = json!(false);
    recovery["annotations"] = json!([
        "5 runs; engine report p50 737.03 ms",
        "intact open p50 1.61 ms"
    ]);
    let mut rows = vec![
        recovery,
        targeted(&long_name, 82_600, true),
        latency(
            "single_operations/single_get/cairn-inmemory/100 vs cairn-inmemory-raw",
            2,
        ),
        latency(
            "get_at_scale/uniform_get/1000000 vs std_hashmap_reference",
            2,
        ),
    ];
    let stores = [
        "cairn-inmemory",
        "cairn-buffered",
        "redb-buffered",
        "fjall-buffered",
        "sqlite-buffered",
        "redis",
    ];
    for (index, store) in (1_u64..).zip(stores) {
        rows.push(peer(
            "put/buffered_with_a_longer_workload_name",
            store,
            2_370 * index,
        ));
        rows.push(peer("get_at_scale/1000000", store, 686_000 * index));
    }
    for store in &stores[2..] {
        let mut ratio = ratio("put/buffered_with_a_longer_workload_name", store, 1435.41);
        ratio["goal"] = json!("> 1.00x (Cairn ahead)");
        ratio["goal_met"] = json!(true);
        rows.push(ratio);
    }
    let mut run = saved_run("AMD EPYC 7B13 64-Core Processor", &rows);
    run["failed"] = json!([{"name": long_name, "error": "x".repeat(300)}]);
    run["notes"] = json!(["a note of several sentences ".repeat(20)]);
    let dir = TempDir::new("width");
    let path = dir.join("run.json");
    write_json(&path, &run);

    let output = cairn(&["bench", "--from-json", arg(&path)]);
    assert_eq!(output.status.code(), Some(1), "the failed workload");
    let stdout = text(&output.stdout);
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 120,
            "{} columns:\n{line}",
            line.chars().count()
        );
    }
    assert!(stdout.contains("key_patterns/very_…"), "{stdout}");
    let put = stdout
        .lines()
        .find(|line| line.starts_with("put/buffered_with_a_longer_workload_name "))
        .expect("one line for the side-by-side workload");
    for cell in ["4.74 µs", "redb-buffered 7.11 µs", "1435.41x", "✓"] {
        assert!(put.contains(cell), "{cell} in {put}");
    }
    assert!(stdout.contains("MISS") && !stdout.contains("a note of several"));

    let wide = text(&cairn(&["bench", "--from-json", arg(&path), "--wide"]).stdout);
    assert!(wide.contains(&long_name) && wide.contains("a note of several"));
    assert!(wide.contains("p50 737.15 ms / p99 2.21 s (5 runs; engine report p50 737.03 ms)"));
}

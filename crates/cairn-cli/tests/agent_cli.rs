//! Integration tests of `cairn agent` through the real binary.
//!
//! This process writes a database with `cairn-agent` (a clock it controls): run 1 `trip`
//! (events, a KV value, a cell, a document, a span with a child span), then completed; run 2
//! a fork of it at its end that changes the cell and appends an event; run 3 with five events,
//! the third tampered in place afterwards; run 4 left active. Then it closes the database and
//! runs the binary: every command, text and `--json`, must show what was written; `verify`
//! exits 1 naming the tampered sequence; unknown runs, non-data directories and a database
//! this process holds open end with a message and exit 2, never a panic; and no command
//! changes a run's status.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability, ManualClock, Options};
use cairn_agent::{Agent, At, RunSpec, RunStatus, SpanInput, SpanKind};
use serde_json::{json, Value as Json};
use tempfile::TempDir;

mod common;
use common::{assert_no_panic, cairn, describe, path_arg, stdout_of, temp_dir};

const T0_MS: u64 = 1_700_000_000_000;

fn open_db(dir: &Path) -> Db {
    // The lock is an `flock` on an open file: a child another test forks while this process
    // holds it open shares it until its `exec`, so an open right after a close may briefly
    // find it held. Retry for up to two seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match Db::open(Options::new(dir).durability(Durability::buffered())) {
            Err(cairn::Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            opened => return opened.expect("open the database"),
        }
    }
}

/// Writes the database described in the module documentation.
fn write_db(dir: &Path) {
    let clock = Arc::new(ManualClock::new(T0_MS));
    let (agent, _) = Agent::open_with_clock(open_db(dir), clock.clone()).expect("agent");
    let trip = agent
        .begin_run(RunSpec::named("trip").tag("travel"))
        .expect("begin");
    agent
        .append(trip, "user", r#"{"text":"book a flight to Lisbon"}"#)
        .expect("append");
    clock.advance_millis(10);
    agent.kv_put(trip, b"dest", b"Lisbon").expect("kv");
    agent.cell_init(trip, "phase", b"plan").expect("cell");
    agent
        .doc_create(trip, "itinerary", &json!({"city": "Lisbon", "nights": 3}))
        .expect("doc");
    let mut call = SpanInput::new(SpanKind::ToolCall, "search_flights");
    call.tags = vec!["tool".into()];
    call.content = json!({"to": "LIS"});
    call.duration = Duration::from_millis(42);
    let parent = agent.record(trip, &call).expect("span");
    let thought = SpanInput::new(SpanKind::Thought, "pick_cheapest");
    agent.record_child(trip, parent, &thought).expect("child");
    agent
        .append(trip, "assistant", r#"{"text":"booked TP1234"}"#)
        .expect("append");
    agent.cell_set(trip, "phase", b"done").expect("cell");
    let fork = agent
        .fork_run(trip, At::End, RunSpec::named("trip-retry"))
        .expect("fork");
    agent
        .set_status(trip, RunStatus::Completed)
        .expect("complete");
    agent.cell_set(fork, "phase", b"ask").expect("cell");
    agent
        .append(fork, "user", r#"{"text":"actually Porto"}"#)
        .expect("append");

    let broken = agent.begin_run(RunSpec::named("broken")).expect("begin");
    for n in 0..5 {
        agent
            .append(broken, "step", json!({"n": n}).to_string())
            .expect("append");
    }
    let key = [
        b"@a/r".as_slice(),
        &broken.get().to_be_bytes(),
        b"e",
        &2_u64.to_be_bytes(),
    ]
    .concat();
    let raw = agent.db().get(&key).expect("get").expect("event 2");
    let mut tampered = raw.to_vec();
    let at = tampered
        .windows(7)
        .position(|w| w == br#"{"n":2}"#)
        .expect("payload in the envelope");
    tampered[at + 5] = b'9';
    agent.db().put(&key, &tampered).expect("tamper");

    agent.begin_run(RunSpec::named("live")).expect("begin");
    assert_eq!(
        (trip.get(), fork.get(), broken.get()),
        (1, 2, 3),
        "run ids the tests name"
    );
    agent.db().close().expect("close");
}

fn fresh_db(name: &str) -> TempDir {
    let dir = temp_dir("cairn-agent-cli", name);
    write_db(dir.path());
    dir
}

/// Runs `cairn agent ARGS` and expects exit 0.
fn agent_ok(args: &[&str]) -> String {
    let mut all = vec!["agent"];
    all.extend_from_slice(args);
    let output = cairn(&all);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    stdout_of(&output)
}

/// Runs `cairn agent ARGS --json` and expects exit 0 and one JSON document.
fn agent_json(args: &[&str]) -> Json {
    let mut all = args.to_vec();
    all.push("--json");
    let text = agent_ok(&all);
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}):\n{text}"))
}

#[test]
fn list_shows_runs_and_filters_by_status() {
    let db = fresh_db("list");
    let dir = path_arg(db.path());
    let runs = agent_json(&["list", dir]);
    let names: Vec<&str> = runs
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["trip", "trip-retry", "broken", "live"]);
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["tags"], json!(["travel"]));
    assert_eq!(runs[1]["fork"]["parent"], 1);
    assert_eq!(
        runs[3]["status"], "active",
        "listing marks nothing orphaned"
    );

    let completed = agent_json(&["list", dir, "--status", "completed"]);
    assert_eq!(completed.as_array().expect("array").len(), 1);
    assert_eq!(completed[0]["id"], 1);
    let text = agent_ok(&["list", dir, "--status", "active"]);
    assert!(
        text.contains("trip-retry") && text.contains("live"),
        "{text}"
    );
    assert!(!text.contains("completed"), "{text}");
    let bad = cairn(&["agent", "list", dir, "--status", "sleepy"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a status"));
}

#[test]
fn show_prints_events_and_the_trace_tree() {
    let db = fresh_db("show");
    let dir = path_arg(db.path());
    let shown = agent_json(&["show", dir, "1"]);
    assert_eq!(shown["run"]["name"], "trip");
    let events = shown["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "user");
    assert_eq!(events[0]["payload"]["text"], "book a flight to Lisbon");
    assert_eq!(events[1]["seq"], 1);
    let traces = shown["traces"].as_array().expect("traces");
    assert_eq!(traces.len(), 1, "one root");
    assert_eq!(traces[0]["name"], "search_flights");
    assert_eq!(traces[0]["kind"], "tool_call");
    assert_eq!(traces[0]["duration_us"], 42_000);
    assert_eq!(traces[0]["children"][0]["name"], "pick_cheapest");

    let text = agent_ok(&["show", dir, "1"]);
    assert!(text.contains("run 1 \"trip\": completed"), "{text}");
    assert!(text.contains("events: 2"), "{text}");
    assert!(text.contains("traces: 2 span(s)"), "{text}");
    assert!(
        text.contains("\n  #0 tool_call search_flights 42.000 ms [tool]"),
        "{text}"
    );
    assert!(text.contains("\n    #1 thought pick_cheapest"), "{text}");
    // A fork shows the events it inherits through its parent, then its own.
    let fork = agent_json(&["show", dir, "2"]);
    assert_eq!(fork["events"].as_array().expect("events").len(), 3);
    assert_eq!(fork["run"]["fork"]["events"], 2);
}

#[test]
fn replay_shows_the_state_at_an_event_and_at_the_end() {
    let db = fresh_db("replay");
    let dir = path_arg(db.path());
    let first = agent_json(&["replay", dir, "1", "--upto", "0"]);
    assert_eq!(first["events"], 1);
    assert_eq!(first["kv"], json!([]), "the KV put came after event 0");
    let end = agent_json(&["replay", dir, "1"]);
    assert_eq!(end["events"], 2);
    assert_eq!(end["kv"], json!([{"key": "dest", "value": "Lisbon"}]));
    assert_eq!(end["cells"][0]["name"], "phase");
    assert_eq!(end["cells"][0]["value"], "done");
    assert_eq!(end["cells"][0]["version"], 2);
    assert_eq!(end["docs"][0]["value"]["nights"], 3);
    let text = agent_ok(&["replay", dir, "1"]);
    assert!(text.contains("  dest = Lisbon"), "{text}");
    assert!(text.contains("  phase (v2) = done"), "{text}");
    let past = cairn(&["agent", "replay", dir, "1", "--upto", "99"]);
    assert_eq!(past.status.code(), Some(2), "{}", describe(&past));
    assert!(String::from_utf8_lossy(&past.stderr).contains("past the run's end"));
}

#[test]
fn diff_names_changed_keys_and_the_event_divergence() {
    let db = fresh_db("diff");
    let dir = path_arg(db.path());
    let diff = agent_json(&["diff", dir, "1", "2"]);
    assert_eq!(diff["same"], false);
    assert_eq!(
        diff["changes"],
        json!([{"primitive": "cell", "key": "phase", "kind": "changed",
                "left": "done", "right": "ask"}])
    );
    assert_eq!(diff["common_events"], 2);
    assert!(diff["left_event"].is_null());
    assert_eq!(diff["right_event"]["payload"]["text"], "actually Porto");
    let text = agent_ok(&["diff", dir, "1", "2"]);
    assert!(text.contains("changed cell  phase: done -> ask"), "{text}");
    assert!(
        text.contains("2 in common, then left (none) / right #2 user"),
        "{text}"
    );
    let same = agent_ok(&["diff", dir, "3", "3"]);
    assert!(same.contains("same state and events"), "{same}");
}

#[test]
fn verify_exits_one_and_names_the_first_bad_sequence() {
    let db = fresh_db("verify");
    let dir = path_arg(db.path());
    let good = agent_ok(&["verify", dir, "1"]);
    assert!(good.contains("run 1: chain intact, 2 event(s)"), "{good}");
    let bad = cairn(&["agent", "verify", dir, "3"]);
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));
    assert!(
        stdout_of(&bad).contains("chain BROKEN at sequence 2"),
        "{}",
        describe(&bad)
    );
    let bad = cairn(&["agent", "verify", dir, "3", "--json"]);
    assert_eq!(bad.status.code(), Some(1), "{}", describe(&bad));
    let report: Json = serde_json::from_slice(&bad.stdout).expect("JSON");
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_bad"], 2);
    // A fork's chain runs through its parent's events.
    let fork: Json = agent_json(&["verify", dir, "2"]);
    assert_eq!(fork["intact"], true);
    assert_eq!(fork["events"], 3);
}

#[test]
fn search_finds_words_in_every_primitive_and_filters_by_run() {
    let db = fresh_db("search");
    let dir = path_arg(db.path());
    let results = agent_json(&["search", dir, "lisbon"]);
    let mut hits: Vec<(u64, String, Json)> = results["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["run"].as_u64().expect("run"),
                h["primitive"].as_str().expect("primitive").to_owned(),
                h["key"].clone(),
            )
        })
        .collect();
    hits.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(
        hits,
        vec![
            (1, "doc".into(), json!("itinerary")),
            (1, "event".into(), json!(0)),
            (1, "kv".into(), json!("dest")),
            (2, "doc".into(), json!("itinerary")),
            (2, "kv".into(), json!("dest")),
        ],
        "the fork's copied state is its own; its inherited event is the parent's"
    );
    assert!(results["budget"]["postings_read"].as_u64().expect("budget") >= 5);
    let first = &results["hits"][0];
    let snippet = first["snippet"].as_str().expect("snippet");
    let matched = first["matched"].as_array().expect("matched");
    let (start, end) = (
        usize::try_from(matched[0].as_u64().expect("start")).expect("usize"),
        usize::try_from(matched[1].as_u64().expect("end")).expect("usize"),
    );
    assert_eq!(snippet[start..end].to_lowercase(), "lisbon");

    let in_fork = agent_json(&["search", dir, "porto", "--run", "2"]);
    assert_eq!(in_fork["hits"].as_array().expect("hits").len(), 1);
    assert_eq!(in_fork["hits"][0]["key"], 2, "event 2 of the fork");
    let none = agent_json(&["search", dir, "porto", "--run", "1"]);
    assert_eq!(none["hits"], json!([]));
    let spans = agent_json(&[
        "search",
        dir,
        "search_flights",
        "--primitive",
        "span",
        "--tag",
        "tool",
    ]);
    assert_eq!(spans["hits"][0]["primitive"], "span");
    let text = agent_ok(&["search", dir, "lisbon", "--run", "1", "--primitive", "kv"]);
    assert!(text.contains("dest"), "{text}");
    assert!(text.contains("read 1 list(s)"), "{text}");
    let nothing = agent_ok(&["search", dir, "zanzibar"]);
    assert!(nothing.starts_with("no hits among"), "{nothing}");
}

#[test]
fn errors_end_with_a_message_not_a_panic() {
    let db = fresh_db("errors");
    let dir = path_arg(db.path());
    let unknown = cairn(&["agent", "show", dir, "99"]);
    assert_no_panic(&unknown);
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("run 99 not found"));
    let not_a_number = cairn(&["agent", "show", dir, "abc"]);
    assert_eq!(not_a_number.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_a_number.stderr).contains("not a run id"));

    let empty = temp_dir("cairn-agent-cli", "empty");
    let output = cairn(&["agent", "list", path_arg(empty.path())]);
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no Cairn data"));
    assert_eq!(
        std::fs::read_dir(empty.path()).expect("list").count(),
        0,
        "nothing was created in it"
    );
    let missing = db.path().join("missing");
    let output = cairn(&["agent", "list", path_arg(&missing)]);
    assert_no_panic(&output);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(!missing.exists());
}

#[test]
fn a_database_open_elsewhere_is_refused_with_a_message() {
    let db = fresh_db("locked");
    let dir = path_arg(db.path());
    let held = open_db(db.path());
    for args in [
        vec!["agent", "list", dir],
        vec!["agent", "search", dir, "lisbon", "--json"],
        vec!["agent", "verify", dir, "1"],
    ] {
        let output = cairn(&args);
        assert_no_panic(&output);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is open in another process"),
            "{}",
            describe(&output)
        );
        assert!(output.stdout.is_empty(), "{}", describe(&output));
    }
    held.close().expect("close");
    // Once closed, the commands run, and none of them changed a run's status.
    agent_ok(&["list", dir]);
    let agent = Agent::open_for_reading(open_db(db.path())).expect("agent");
    assert_eq!(
        agent
            .get_run(cairn_agent::RunId::from_u64(4))
            .expect("run")
            .status,
        RunStatus::Active
    );
}

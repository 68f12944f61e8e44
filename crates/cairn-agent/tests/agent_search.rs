//! Search wired into the agent: every searchable write updates the index in its own commit,
//! removals and `delete_run` take documents back, the filters select what they name, forks
//! index what they copy and what they write, and the index survives a reopen.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::unnecessary_wraps,
    reason = "hit keys are options; the helpers build them"
)]

use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability, ManualClock, Options};
use cairn_agent::search::limits::TEXT_BYTES_MAX;
use cairn_agent::{
    Agent, AgentQuery, AgentResults, At, Error, Primitive, RunId, RunSpec, SpanInput, SpanKind,
};
use cairn_testkit::TempDir;
use serde_json::json;

fn agent() -> (Agent, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000));
    let (agent, _) = Agent::open_with_clock(Db::in_memory(), clock.clone()).expect("open");
    (agent, clock)
}

/// (run, primitive, key) of every hit, in rank order.
fn found(results: &AgentResults) -> Vec<(RunId, Primitive, Option<Vec<u8>>)> {
    results
        .hits
        .iter()
        .map(|h| (h.run, h.primitive, h.key.clone()))
        .collect()
}

fn search(agent: &Agent, query: AgentQuery) -> Vec<(RunId, Primitive, Option<Vec<u8>>)> {
    found(&agent.search(&query.top_k(100)).expect("search"))
}

fn seq(n: u64) -> Option<Vec<u8>> {
    Some(n.to_be_bytes().to_vec())
}

fn key(k: &str) -> Option<Vec<u8>> {
    Some(k.as_bytes().to_vec())
}

#[test]
fn every_primitive_is_searchable_in_the_snapshot_of_its_commit() {
    let (agent, clock) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let before = agent.db().snapshot();
    agent
        .append(
            run,
            "tool_result",
            r#"{"text":"the flight to Lisbon is delayed"}"#,
        )
        .expect("append");
    let after_event = agent.db().snapshot();
    clock.advance_millis(5);
    agent
        .kv_put(run, b"note", b"Lisbon hotel booked")
        .expect("kv");
    agent
        .cell_init(run, "phase", br#"{"step":"Lisbon transfer"}"#)
        .expect("cell");
    agent
        .doc_create(run, "plan", &json!({"city": "Lisbon", "days": 3}))
        .expect("doc");
    let mut span = SpanInput::new(SpanKind::ToolCall, "search_flights");
    span.tags = vec!["travel".into()];
    span.content = json!({"query": "Lisbon flights"});
    span.duration = Duration::from_millis(3);
    agent.record(run, &span).expect("span");

    let query = || AgentQuery::new("lisbon").run(run).top_k(100);
    assert!(
        found(&agent.search_at(&before, &query()).expect("search")).is_empty(),
        "a snapshot from before the write sees nothing"
    );
    assert_eq!(
        found(&agent.search_at(&after_event, &query()).expect("search")),
        vec![(run, Primitive::Event, seq(0))],
        "the snapshot right after the append sees the event and nothing later"
    );
    let mut all = search(&agent, query());
    all.sort();
    let mut expected = vec![
        (run, Primitive::Event, seq(0)),
        (run, Primitive::Kv, key("note")),
        (run, Primitive::Cell, key("phase")),
        (run, Primitive::Doc, key("plan")),
        (run, Primitive::Span, seq(0)),
    ];
    expected.sort();
    assert_eq!(all, expected);

    let results = agent.search(&query()).expect("search");
    let event = results
        .hits
        .iter()
        .find(|h| h.primitive == Primitive::Event)
        .expect("event hit");
    assert_eq!(event.timestamp_ms, 1_000, "the event's own time");
    assert_eq!(event.number(), Some(0));
    let word = &event.snippet.text[event.snippet.matched.clone()];
    assert_eq!(word.to_lowercase(), "lisbon");
    assert!(event.score > 0.0);
    assert_eq!(results.documents_in_scope, 5);
    assert!(results.budget.postings_read >= 5);
    // The event type and the span's name are searchable too.
    assert_eq!(
        search(&agent, AgentQuery::new("tool_result")),
        vec![(run, Primitive::Event, seq(0))]
    );
    assert_eq!(
        search(&agent, AgentQuery::new("search_flights")),
        vec![(run, Primitive::Span, seq(0))]
    );
}

#[test]
fn a_transaction_that_fails_indexes_nothing() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let outcome: cairn_agent::Result<()> = agent.run(run).transaction(|tx| {
        tx.kv_put(b"k", b"phantom words")?;
        tx.append("note", r#""phantom""#)?;
        Err(Error::InvalidInput {
            what: "test",
            reason: "abort".into(),
        })
    });
    assert!(outcome.is_err());
    assert!(search(&agent, AgentQuery::new("phantom")).is_empty());
    agent
        .run(run)
        .transaction(|tx| {
            tx.kv_put(b"k", b"phantom words")?;
            tx.append("note", r#""phantom""#)?;
            Ok(())
        })
        .expect("commit");
    assert_eq!(search(&agent, AgentQuery::new("phantom")).len(), 2);
}

#[test]
fn removed_or_replaced_values_no_longer_match() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    agent.kv_put(run, b"k", b"alpha").expect("kv");
    agent.cell_init(run, "c", b"gamma").expect("cell");
    agent
        .doc_create(run, "d", &json!({"a": "delta", "b": "epsilon"}))
        .expect("doc");
    assert_eq!(search(&agent, AgentQuery::new("alpha")).len(), 1);

    agent.kv_put(run, b"k", b"beta").expect("kv overwrite");
    assert!(search(&agent, AgentQuery::new("alpha")).is_empty());
    assert_eq!(
        search(&agent, AgentQuery::new("beta")),
        vec![(run, Primitive::Kv, key("k"))]
    );
    assert!(agent.kv_delete(run, b"k").expect("delete"));
    assert!(search(&agent, AgentQuery::new("beta")).is_empty());

    agent.cell_set(run, "c", b"omega").expect("cell set");
    assert!(search(&agent, AgentQuery::new("gamma")).is_empty());
    assert_eq!(
        search(&agent, AgentQuery::new("omega")),
        vec![(run, Primitive::Cell, key("c"))]
    );
    // A value with no words leaves the index.
    agent.cell_set(run, "c", b"42").expect("cell set");
    assert!(search(&agent, AgentQuery::new("omega")).is_empty());

    agent.doc_set(run, "d", "/a", &json!(7)).expect("path set");
    assert!(search(&agent, AgentQuery::new("delta")).is_empty());
    assert_eq!(search(&agent, AgentQuery::new("epsilon")).len(), 1);
    agent.doc_delete(run, "d", "/b").expect("path delete");
    assert!(search(&agent, AgentQuery::new("epsilon")).is_empty());
    agent
        .doc_set(run, "d", "/z", &json!("zeta"))
        .expect("path set");
    assert_eq!(search(&agent, AgentQuery::new("zeta")).len(), 1);
    agent.doc_destroy(run, "d").expect("destroy");
    assert!(search(&agent, AgentQuery::new("zeta")).is_empty());
    assert_eq!(
        agent
            .search(&AgentQuery::new("anything"))
            .expect("search")
            .documents_in_scope,
        0,
        "nothing is left indexed"
    );
}

#[test]
fn delete_run_removes_its_hits_and_only_its_hits() {
    let (agent, _) = agent();
    let gone = agent.begin_run(RunSpec::named("gone")).expect("begin");
    let kept = agent.begin_run(RunSpec::named("kept")).expect("begin");
    for run in [gone, kept] {
        agent
            .append(run, "e", r#"{"t":"shared word"}"#)
            .expect("append");
        agent.kv_put(run, b"k", b"shared value").expect("kv");
        agent
            .record(run, &SpanInput::new(SpanKind::Thought, "shared"))
            .expect("span");
    }
    agent.compact_search(1_000).expect("compact");
    agent.kv_put(gone, b"fresh", b"shared fresh").expect("kv");
    assert_eq!(search(&agent, AgentQuery::new("shared")).len(), 7);
    agent.delete_run(gone).expect("delete");
    let left = search(&agent, AgentQuery::new("shared"));
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|(run, _, _)| *run == kept));
    assert!(matches!(
        agent.search(&AgentQuery::new("shared").run(gone)),
        Err(Error::RunNotFound(_))
    ));
    agent.delete_run(kept).expect("delete");
    let index_keys = agent.db().scan_prefix("@a/x").expect("scan").count();
    assert_eq!(index_keys, 0, "no index key outlives the runs");
}

#[test]
fn run_primitive_tag_and_time_filters_select_what_they_name() {
    let (agent, clock) = agent();
    let a = agent.begin_run(RunSpec::named("a")).expect("begin");
    let b = agent.begin_run(RunSpec::named("b")).expect("begin");
    agent.append(a, "e", r#""needle in a""#).expect("append");
    clock.advance_millis(100);
    agent.kv_put(b, b"k", b"needle in b").expect("kv");
    let mut span = SpanInput::new(SpanKind::ToolCall, "needle");
    span.tags = vec!["tool".into(), "x".repeat(100)];
    span.start_ms = Some(5_000);
    agent.record(b, &span).expect("span");

    let mut by_run = search(&agent, AgentQuery::new("needle").run(b));
    by_run.sort();
    assert_eq!(
        by_run,
        vec![(b, Primitive::Kv, key("k")), (b, Primitive::Span, seq(0))]
    );
    assert_eq!(
        search(&agent, AgentQuery::new("needle").run(a)),
        vec![(a, Primitive::Event, seq(0))]
    );
    assert_eq!(
        search(&agent, AgentQuery::new("needle").primitive(Primitive::Kv)),
        vec![(b, Primitive::Kv, key("k"))]
    );
    let mut two = search(
        &agent,
        AgentQuery::new("needle")
            .primitive(Primitive::Event)
            .primitive(Primitive::Span),
    );
    two.sort();
    assert_eq!(
        two,
        vec![(a, Primitive::Event, seq(0)), (b, Primitive::Span, seq(0))]
    );
    assert_eq!(
        search(&agent, AgentQuery::new("needle").tag("tool")),
        vec![(b, Primitive::Span, seq(0))]
    );
    assert!(search(&agent, AgentQuery::new("needle").tag("other")).is_empty());
    assert_eq!(
        search(&agent, AgentQuery::new("needle").time_range_ms(0..1_050)),
        vec![(a, Primitive::Event, seq(0))]
    );
    assert_eq!(
        search(
            &agent,
            AgentQuery::new("needle").time_range_ms(5_000..5_001)
        ),
        vec![(b, Primitive::Span, seq(0))],
        "a span is found at its start time"
    );
    assert!(matches!(
        agent
            .search(&AgentQuery::new("needle").time_range_ms(std::ops::Range { start: 9, end: 3 })),
        Err(Error::Search(_))
    ));
    assert!(matches!(
        agent.search(&AgentQuery::new("needle").top_k(0)),
        Err(Error::Search(_))
    ));
}

#[test]
fn a_fork_indexes_the_state_it_copies_and_what_it_writes() {
    let (agent, _) = agent();
    let parent = agent.begin_run(RunSpec::named("p")).expect("begin");
    agent
        .append(parent, "e", r#""inherited event""#)
        .expect("append");
    agent.kv_put(parent, b"k", b"inherited value").expect("kv");
    let fork = agent
        .fork_run(parent, At::End, RunSpec::named("f"))
        .expect("fork");
    agent.append(fork, "e", r#""own event""#).expect("append");

    assert_eq!(
        search(&agent, AgentQuery::new("inherited").run(fork)),
        vec![(fork, Primitive::Kv, key("k"))],
        "the copied KV value is the fork's; the parent's events stay the parent's"
    );
    assert_eq!(
        search(&agent, AgentQuery::new("own").run(fork)),
        vec![(fork, Primitive::Event, seq(1))],
        "the fork's own event continues the sequence"
    );
    assert_eq!(
        search(&agent, AgentQuery::new("inherited").run(parent)).len(),
        2
    );
    agent.kv_put(fork, b"k", b"changed").expect("kv");
    let mut everywhere = search(&agent, AgentQuery::new("inherited"));
    everywhere.sort();
    assert_eq!(
        everywhere,
        vec![
            (parent, Primitive::Kv, key("k")),
            (parent, Primitive::Event, seq(0)),
        ],
        "the fork's overwritten copy no longer matches; the parent's value still does"
    );
}

#[test]
fn oversized_text_is_cut_and_the_write_commits() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let filler = "word ".repeat(TEXT_BYTES_MAX / 5 + 10);
    // Strings are taken in document order (an object's members in key order).
    let payload = json!({"a": "beginning", "b": filler, "c": "unreachable"}).to_string();
    assert!(payload.len() > TEXT_BYTES_MAX);
    let (seq_no, _) = agent.append(run, "big", &payload).expect("append commits");
    assert_eq!(
        agent
            .read_event(run, seq_no)
            .expect("read")
            .map(|e| e.payload_bytes().len()),
        Some(payload.len())
    );
    assert_eq!(search(&agent, AgentQuery::new("beginning")).len(), 1);
    assert!(
        search(&agent, AgentQuery::new("unreachable")).is_empty(),
        "words past the cut are not indexed"
    );
    // A key too long for a doc id is indexed under its hash, and removed the same way.
    let long_key = vec![b'k'; 1_000];
    agent.kv_put(run, &long_key, b"longkey value").expect("kv");
    assert_eq!(
        search(&agent, AgentQuery::new("longkey")),
        vec![(run, Primitive::Kv, None)]
    );
    agent.kv_delete(run, &long_key).expect("delete");
    assert!(search(&agent, AgentQuery::new("longkey")).is_empty());
}

#[test]
fn the_index_survives_a_reopen() {
    let dir = TempDir::new("agent-search-reopen");
    let open = || {
        let db =
            Db::open(Options::new(dir.path()).durability(Durability::buffered())).expect("open");
        Agent::open(db).expect("agent").0
    };
    let agent = open();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    agent
        .append(run, "e", r#""durable memory""#)
        .expect("append");
    agent.kv_put(run, b"k", b"durable value").expect("kv");
    agent.compact_search(1).expect("compact some");
    agent.db().close().expect("close");
    drop(agent);

    let agent = open();
    let mut hits = search(&agent, AgentQuery::new("durable").run(run));
    hits.sort();
    assert_eq!(
        hits,
        vec![
            (run, Primitive::Kv, key("k")),
            (run, Primitive::Event, seq(0))
        ]
    );
    agent.delete_run(run).expect("delete after reopen");
    assert!(search(&agent, AgentQuery::new("durable")).is_empty());
}

#[test]
fn concurrent_writers_of_different_runs_all_commit_and_are_counted() {
    let (agent, _) = agent();
    let runs: Vec<RunId> = (0..4)
        .map(|n| {
            agent
                .begin_run(RunSpec::named(format!("w{n}")))
                .expect("begin")
        })
        .collect();
    // Every write shares words with the others and lands on the all-runs counter shards, so
    // some commits conflict there; the agent's retry makes each of them commit.
    std::thread::scope(|scope| {
        for &run in &runs {
            let agent = agent.clone();
            scope.spawn(move || {
                for n in 0..150 {
                    agent
                        .append(
                            run,
                            "step",
                            json!({"text": format!("common word {n}")}).to_string(),
                        )
                        .expect("append");
                }
            });
        }
    });
    let all = agent
        .search(&AgentQuery::new("common").top_k(1_000))
        .expect("search");
    assert_eq!(all.documents_in_scope, 600);
    assert_eq!(all.hits.len(), 600);
    for &run in &runs {
        let one = agent
            .search(&AgentQuery::new("common").run(run).top_k(1_000))
            .expect("search");
        assert_eq!(one.documents_in_scope, 150);
        assert!(one.hits.iter().all(|h| h.run == run));
    }
}

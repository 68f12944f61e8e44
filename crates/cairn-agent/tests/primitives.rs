//! Behaviour and bad input of each primitive: every refusal is a typed error and writes
//! nothing; the chain check names the first tampered event; queries use their indexes; a
//! grouped transaction commits all or nothing; delete, prune and sweep respect forks.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "small test counters; a scenario reads best as one function"
)]

use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, ManualClock};
use cairn_agent::{
    limits, Agent, At, ChangeKind, Error, Primitive, Retention, RunId, RunQuery, RunSpec,
    RunStatus, SpanInput, SpanKind, SpanQuery, SweepPolicy,
};
use serde_json::json;

fn agent() -> (Agent, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000));
    let (agent, report) = Agent::open_with_clock(Db::in_memory(), clock.clone()).expect("open");
    assert!(report.orphaned.is_empty());
    (agent, clock)
}

#[test]
fn unknown_runs_are_run_not_found_everywhere() {
    let (agent, _) = agent();
    let ghost = RunId::from_u64(42);
    assert!(matches!(agent.get_run(ghost), Err(Error::RunNotFound(r)) if r == ghost));
    assert!(matches!(
        agent.append(ghost, "t", "{}"),
        Err(Error::RunNotFound(_))
    ));
    assert!(matches!(
        agent.replay_run(ghost, At::End),
        Err(Error::RunNotFound(_))
    ));
    assert!(matches!(agent.read_all(ghost), Err(Error::RunNotFound(_))));
    assert!(matches!(
        agent.verify_chain(ghost),
        Err(Error::RunNotFound(_))
    ));
    assert!(matches!(
        agent.kv_get(ghost, b"k"),
        Err(Error::RunNotFound(_))
    ));
    assert!(matches!(
        agent.set_status(ghost, RunStatus::Paused),
        Err(Error::RunNotFound(_))
    ));
    assert!(matches!(
        agent.delete_run(ghost),
        Err(Error::RunNotFound(_))
    ));
    assert!(matches!(
        agent.fork_run(ghost, At::End, RunSpec::named("f")),
        Err(Error::RunNotFound(_))
    ));
    let real = agent.begin_run(RunSpec::named("r")).expect("begin");
    assert!(matches!(
        agent.diff_runs(real, ghost),
        Err(Error::RunNotFound(_))
    ));
    let mut spec = RunSpec::named("child");
    spec.parent = Some(ghost);
    assert!(matches!(agent.begin_run(spec), Err(Error::RunNotFound(_))));
    assert_eq!(
        agent.list_runs().expect("list").len(),
        1,
        "no refused call created a run"
    );
}

#[test]
fn status_transitions_follow_the_table() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    for (from, to) in [
        (RunStatus::Active, RunStatus::Archived),
        (RunStatus::Active, RunStatus::Orphaned),
        (RunStatus::Active, RunStatus::Active),
    ] {
        let err = agent.set_status(run, to).expect_err("illegal");
        assert!(
            matches!(err, Error::IllegalTransition { from: f, to: t, .. } if f == from && t == to)
        );
    }
    agent.set_status(run, RunStatus::Paused).expect("pause");
    assert!(matches!(
        agent.append(run, "t", "{}"),
        Err(Error::RunNotActive {
            status: RunStatus::Paused,
            ..
        })
    ));
    agent.set_status(run, RunStatus::Active).expect("resume");
    agent
        .set_status(run, RunStatus::Completed)
        .expect("complete");
    assert!(matches!(
        agent.set_status(run, RunStatus::Active),
        Err(Error::IllegalTransition { .. })
    ));
    agent.set_status(run, RunStatus::Archived).expect("archive");
    for to in RunStatus::ALL {
        assert!(agent.set_status(run, to).is_err(), "archived is final");
    }
    assert_eq!(agent.get_run(run).expect("get").status, RunStatus::Archived);
    // The table itself, exhaustively.
    let allowed = |f: RunStatus, t: RunStatus| f.can_become(t);
    let count = RunStatus::ALL
        .iter()
        .flat_map(|f| RunStatus::ALL.iter().map(move |t| (*f, *t)))
        .filter(|(f, t)| allowed(*f, *t))
        .count();
    assert_eq!(count, 4 + 4 + 3 + 3);
}

#[test]
fn oversized_and_malformed_input_is_refused_with_typed_errors() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let big = format!("\"{}\"", "x".repeat(limits::PAYLOAD_BYTES_MAX));
    assert!(matches!(
        agent.append(run, "t", &big),
        Err(Error::TooLarge {
            what: "event payload",
            ..
        })
    ));
    assert!(matches!(
        agent.append(run, "t", "{not json"),
        Err(Error::InvalidJson { .. })
    ));
    assert!(matches!(
        agent.append(run, "", "{}"),
        Err(Error::InvalidInput {
            what: "event type",
            ..
        })
    ));
    let long_type = "t".repeat(limits::EVENT_TYPE_BYTES_MAX + 1);
    assert!(matches!(
        agent.append(run, &long_type, "{}"),
        Err(Error::TooLarge {
            what: "event type",
            ..
        })
    ));
    assert!(matches!(
        agent.kv_put(run, b"", b"v"),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        agent.kv_put(run, &vec![b'k'; limits::KV_KEY_BYTES_MAX + 1], b"v"),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        agent.cell_set(run, "", b"v"),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        agent.cell_set(run, "c", &vec![0; limits::VALUE_BYTES_MAX + 1]),
        Err(Error::TooLarge { .. })
    ));
    // Documents: bad pointer, long pointer, depth, size, missing document and paths.
    agent
        .doc_create(run, "d", &json!({"a": {"b": 1}}))
        .expect("create");
    assert!(matches!(
        agent.doc_create(run, "d", &json!({})),
        Err(Error::DocExists(_))
    ));
    assert!(matches!(
        agent.doc_set(run, "d", "no-slash", &json!(1)),
        Err(Error::BadPath { .. })
    ));
    assert!(matches!(
        agent.doc_get(run, "d", "/a/~2"),
        Err(Error::BadPath { .. })
    ));
    let long = format!("/{}", "p".repeat(limits::DOC_PATH_BYTES_MAX));
    assert!(matches!(
        agent.doc_set(run, "d", &long, &json!(1)),
        Err(Error::TooLarge {
            what: "JSON pointer",
            ..
        })
    ));
    let mut deep = json!(1);
    for _ in 0..limits::DOC_DEPTH_MAX {
        deep = json!([deep]);
    }
    assert!(matches!(
        agent.doc_set(run, "d", "/deep", &deep),
        Err(Error::TooLarge {
            what: "document depth",
            ..
        })
    ));
    let huge = json!("x".repeat(limits::DOC_BYTES_MAX));
    assert!(matches!(
        agent.doc_set(run, "d", "/huge", &huge),
        Err(Error::TooLarge {
            what: "document",
            ..
        })
    ));
    assert!(matches!(
        agent.doc_set(run, "missing", "/a", &json!(1)),
        Err(Error::DocNotFound(_))
    ));
    assert!(matches!(
        agent.doc_delete(run, "d", "/nope"),
        Err(Error::PathNotFound { .. })
    ));
    agent.doc_set(run, "d", "/arr", &json!([1])).expect("array");
    assert!(
        matches!(
            agent.doc_set(run, "d", "/arr/5", &json!(1)),
            Err(Error::PathNotFound { .. })
        ),
        "index past the end"
    );
    // Cells.
    agent.cell_init(run, "c", b"1").expect("init");
    assert!(matches!(
        agent.cell_init(run, "c", b"1"),
        Err(Error::CellExists(_))
    ));
    assert!(matches!(
        agent.cell_cas(run, "c", 7, b"2"),
        Err(Error::VersionMismatch {
            expected: 7,
            actual: 1,
            ..
        })
    ));
    assert!(matches!(
        agent.cell_cas(run, "nope", 1, b"2"),
        Err(Error::CellNotFound(_))
    ));
    assert!(matches!(
        agent.transition(run, "nope", |v| Ok(v.to_vec())),
        Err(Error::CellNotFound(_))
    ));
    // Spans and runs.
    assert!(matches!(
        agent.record_child(run, 9, &SpanInput::new(SpanKind::Thought, "t")),
        Err(Error::SpanNotFound(9))
    ));
    assert!(matches!(
        agent.begin_run(RunSpec::named("")),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        agent.begin_run(RunSpec::named("r").tag("a\0b")),
        Err(Error::InvalidInput { what: "tag", .. })
    ));
    assert!(matches!(
        agent.replay_run(run, At::Step(99)),
        Err(Error::PointOutOfRange { .. })
    ));
    assert!(matches!(
        agent.replay_run(run, At::Event(99)),
        Err(Error::PointOutOfRange { .. })
    ));
    // Nothing refused was written: three steps (create, array, init) and no events.
    let state = agent.replay_run(run, At::End).expect("replay");
    assert_eq!(state.steps, 3);
    assert!(state.events.is_empty() && state.kv.is_empty());
    assert_eq!(state.docs["d"], json!({"a": {"b": 1}, "arr": [1]}));
    assert_eq!(agent.head_state(run).expect("head"), state);
}

#[test]
fn verify_chain_names_the_first_tampered_event() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    for n in 0..10 {
        let (seq, _) = agent
            .append(run, "step", json!({"n": n}).to_string())
            .expect("append");
        assert_eq!(seq, n);
    }
    let report = agent.verify_chain(run).expect("verify");
    assert!(report.is_intact());
    assert_eq!(report.events, 10);
    // Rewrite event 6's payload in place, keeping its stored hash.
    let key = [
        b"@a/r".as_slice(),
        &run.get().to_be_bytes(),
        b"e",
        &6_u64.to_be_bytes(),
    ]
    .concat();
    let raw = agent.db().get(&key).expect("get").expect("event 6");
    let mut tampered = raw.to_vec();
    let at = tampered
        .windows(7)
        .position(|w| w == br#"{"n":6}"#)
        .expect("payload in the envelope");
    tampered[at + 5] = b'7';
    assert_eq!(
        cairn_agent::Event::decode(&tampered)
            .expect("still decodes")
            .payload_bytes(),
        br#"{"n":7}"#
    );
    agent.db().put(&key, &tampered).expect("tamper");
    assert_eq!(agent.verify_chain(run).expect("verify").first_bad, Some(6));
    // A missing event is named too.
    agent.db().delete(&key).expect("remove");
    assert_eq!(agent.verify_chain(run).expect("verify").first_bad, Some(6));
}

#[test]
fn events_read_by_range_and_type_and_parse_on_demand() {
    let (agent, clock) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    for n in 0..20_u64 {
        clock.advance_millis(1);
        let ty = if n % 3 == 0 { "tool" } else { "llm" };
        agent
            .append(run, ty, json!({"n": n}).to_string())
            .expect("append");
    }
    let range = agent.read_range(run, 5, 9).expect("range");
    assert_eq!(
        range.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7, 8]
    );
    assert_eq!(range[0].payload().expect("json")["n"], 5);
    let tools = agent.read_by_type(run, "tool").expect("by type");
    assert_eq!(
        tools.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![0, 3, 6, 9, 12, 15, 18]
    );
    // Replay to an event, a time and a version.
    let at_event = agent.replay_run(run, At::Event(4)).expect("event");
    assert_eq!(at_event.events.len(), 5);
    let t = range[0].time_ms;
    assert_eq!(
        agent
            .replay_run(run, At::Time(t))
            .expect("time")
            .events
            .len(),
        6
    );
    let v = agent.history(run, 7, 8).expect("history")[0].version;
    assert_eq!(
        agent
            .replay_run(run, At::Version(v))
            .expect("version")
            .events
            .len(),
        8
    );
}

#[test]
fn grouped_transaction_commits_all_or_nothing() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let (seq, span) = agent
        .run(run)
        .transaction(|tx| {
            let (seq, _) = tx.append("plan", "{}")?;
            tx.kv_put(b"k", b"v")?;
            tx.cell_init("phase", b"plan")?;
            let span = tx.record(SpanInput::new(SpanKind::Decision, "choose"))?;
            Ok((seq, span))
        })
        .expect("group");
    assert_eq!((seq, span), (0, 0));
    let history = agent.history(run, 0, u64::MAX).expect("history");
    assert_eq!(history.len(), 1, "one commit, one step");
    assert_eq!(history[0].record.mutations.len(), 4);
    let failed = agent.run(run).transaction(|tx| {
        tx.append("x", "{}")?;
        tx.kv_put(b"k", b"changed")?;
        tx.cell_cas("phase", 99, b"nope")
    });
    assert!(matches!(failed, Err(Error::VersionMismatch { .. })));
    assert_eq!(
        agent.kv_get(run, b"k").expect("kv").as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(agent.read_all(run).expect("events").len(), 1);
    assert_eq!(agent.history(run, 0, u64::MAX).expect("history").len(), 1);
    // The next append continues densely after the rolled-back one.
    assert_eq!(agent.append(run, "y", "{}").expect("append").0, 1);
    assert!(agent.verify_chain(run).expect("verify").is_intact());
}

#[test]
fn cells_transition_and_history_records_before_and_after() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    agent.cell_init(run, "n", b"0").expect("init");
    for _ in 0..5 {
        agent
            .transition(run, "n", |v| {
                let n: u64 = std::str::from_utf8(v).expect("utf8").parse().expect("num");
                Ok((n + 1).to_string().into_bytes())
            })
            .expect("transition");
    }
    let cell = agent.cell_read(run, "n").expect("read").expect("cell");
    assert_eq!((cell.version, cell.value.as_slice()), (6, &b"5"[..]));
    let last = agent.history(run, 5, 6).expect("history").remove(0);
    let m = &last.record.mutations[0];
    assert_eq!(m.primitive, Primitive::Cell);
    assert_eq!(&m.before.as_ref().expect("before")[8..], b"4");
    assert_eq!(&m.after.as_ref().expect("after")[8..], b"5");
}

#[test]
fn traces_query_by_kind_tag_time_and_form_a_tree() {
    let (agent, clock) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let mut tool = SpanInput::new(SpanKind::ToolCall, "search");
    tool.tags = vec!["web".into()];
    tool.duration = Duration::from_millis(12);
    let root = agent
        .record(run, &SpanInput::new(SpanKind::Decision, "plan"))
        .expect("root");
    clock.advance_millis(10);
    let child = agent.record_child(run, root, &tool).expect("child");
    let grandchild = agent
        .record_child(
            run,
            child,
            &SpanInput::new(SpanKind::Custom("parse".into()), "p"),
        )
        .expect("gc");
    let other_root = agent
        .record(run, &SpanInput::new(SpanKind::Error, "oops"))
        .expect("root2");
    assert_eq!(
        agent
            .roots(run)
            .expect("roots")
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec![root, other_root]
    );
    assert_eq!(agent.children(run, root).expect("children")[0].id, child);
    let tools = agent
        .query_spans(
            run,
            &SpanQuery {
                kind: Some(SpanKind::ToolCall),
                ..SpanQuery::default()
            },
        )
        .expect("q");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].duration_us, 12_000);
    let tagged = agent
        .query_spans(
            run,
            &SpanQuery {
                tag: Some("web".into()),
                ..SpanQuery::default()
            },
        )
        .expect("q");
    assert_eq!(tagged[0].id, child);
    let late = agent
        .query_spans(
            run,
            &SpanQuery {
                from_ms: Some(1_005),
                ..SpanQuery::default()
            },
        )
        .expect("q");
    assert_eq!(late.len(), 3);
    let tree = agent.tree(run).expect("tree");
    assert_eq!(tree.len(), 2);
    assert_eq!(tree[0].children[0].children[0].span.id, grandchild);
}

#[test]
fn runs_query_by_status_tag_and_time() {
    let (agent, clock) = agent();
    let a = agent.begin_run(RunSpec::named("a").tag("x")).expect("a");
    clock.advance_millis(100);
    let b = agent
        .begin_run(RunSpec::named("b").tag("x").tag("y"))
        .expect("b");
    let c = agent.begin_run(RunSpec::named("c")).expect("c");
    agent.set_status(b, RunStatus::Paused).expect("pause");
    let ids = |q: RunQuery| {
        agent
            .query(&q)
            .expect("query")
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(RunQuery {
            tag: Some("x".into()),
            ..RunQuery::default()
        }),
        vec![a, b]
    );
    assert_eq!(
        ids(RunQuery {
            status: Some(RunStatus::Active),
            ..RunQuery::default()
        }),
        vec![a, c]
    );
    assert_eq!(
        ids(RunQuery {
            status: Some(RunStatus::Active),
            tag: Some("x".into()),
            ..RunQuery::default()
        }),
        vec![a]
    );
    assert_eq!(
        ids(RunQuery {
            created_from_ms: Some(1_050),
            ..RunQuery::default()
        }),
        vec![b, c]
    );
}

#[test]
fn delete_run_removes_everything_but_not_while_forks_read_it() {
    let (agent, _) = agent();
    let parent = agent
        .begin_run(RunSpec::named("p").tag("t"))
        .expect("begin");
    agent.append(parent, "e", "{}").expect("append");
    agent.kv_put(parent, b"k", b"v").expect("kv");
    let fork = agent
        .fork_run(parent, At::End, RunSpec::named("f"))
        .expect("fork");
    agent.append(fork, "e2", "{}").expect("append");
    assert!(matches!(
        agent.delete_run(parent),
        Err(Error::RunHasForks { forks: 1, .. })
    ));
    agent.delete_run(fork).expect("delete fork");
    assert!(agent.forks_of(parent).expect("forks").is_empty());
    agent.delete_run(parent).expect("delete parent");
    let left: Vec<_> = agent
        .db()
        .scan_prefix("@a/")
        .expect("scan")
        .map(|(k, _)| k.to_vec())
        .collect();
    assert_eq!(left, vec![b"@a/id".to_vec()], "only the id counter remains");
    assert!(matches!(agent.get_run(parent), Err(Error::RunNotFound(_))));
}

#[test]
fn fork_shares_history_and_diverges() {
    let (agent, clock) = agent();
    let parent = agent.begin_run(RunSpec::named("p")).expect("begin");
    for n in 0..5 {
        clock.advance_millis(1);
        agent
            .append(parent, "e", json!({"n": n}).to_string())
            .expect("append");
        agent
            .kv_put(parent, format!("k{n}").as_bytes(), b"v")
            .expect("kv");
    }
    let fork = agent
        .fork_run(parent, At::Event(2), RunSpec::named("f"))
        .expect("fork");
    assert_eq!(
        agent.run_size(fork).expect("size").events,
        0,
        "events are shared, not copied"
    );
    assert_eq!(
        agent.run_size(fork).expect("size").steps,
        0,
        "history is shared, not copied"
    );
    assert_eq!(agent.read_all(fork).expect("events").len(), 3);
    clock.advance_millis(1);
    let (seq, _) = agent.append(fork, "other", "{}").expect("append");
    assert_eq!(seq, 3);
    assert!(agent.verify_chain(fork).expect("verify").is_intact());
    let diff = agent.diff_runs(parent, fork).expect("diff");
    assert_eq!(diff.events.common, 3);
    assert_eq!(diff.events.left.as_ref().expect("left").seq, 3);
    assert_eq!(
        diff.events.right.as_ref().expect("right").event_type,
        "other"
    );
    let removed: Vec<_> = diff
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Removed)
        .map(|c| c.key.clone())
        .collect();
    // Event 2 was appended by the fifth commit, after k0 and k1.
    assert_eq!(
        removed,
        vec![b"k2".to_vec(), b"k3".to_vec(), b"k4".to_vec()]
    );
    assert_eq!(
        agent.replay_run(fork, At::End).expect("replay"),
        agent.head_state(fork).expect("head")
    );
    // Pruning the parent stops at the fork point, and the fork still replays.
    let report = agent.prune(parent, Retention::KeepSteps(0)).expect("prune");
    assert_eq!(report.held_by_fork, Some(fork));
    assert_eq!(
        agent.replay_run(fork, At::End).expect("replay"),
        agent.head_state(fork).expect("head")
    );
}

#[test]
fn prune_by_age_and_sweep_archive_then_delete() {
    let (agent, clock) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    for n in 0..10 {
        clock.advance_millis(1_000);
        agent
            .kv_put(run, b"k", n.to_string().as_bytes())
            .expect("kv");
    }
    let before = agent.run_size(run).expect("size");
    let report = agent
        .prune(run, Retention::MaxAge(Duration::from_millis(3_500)))
        .expect("prune");
    // Step n was committed at (n + 2) s; at 11 s the cutoff is 7.5 s, so steps 0..=5 go.
    assert_eq!(report.oldest_after, 6);
    assert!(agent.run_size(run).expect("size").steps < before.steps);
    assert!(matches!(
        agent.replay_run(run, At::Step(3)),
        Err(Error::HistoryPruned { .. })
    ));
    assert_eq!(
        agent.replay_run(run, At::End).expect("replay"),
        agent.head_state(run).expect("head")
    );
    assert_eq!(
        agent.replay_run(run, At::Step(8)).expect("replay").kv[&b"k".to_vec()],
        b"7"
    );
    agent
        .set_status(run, RunStatus::Completed)
        .expect("complete");
    let policy = SweepPolicy {
        archive_after: Duration::from_secs(60),
        delete_after: Duration::from_secs(60),
    };
    assert_eq!(
        agent.sweep(policy).expect("sweep"),
        cairn_agent::SweepReport::default()
    );
    clock.advance_millis(61_000);
    assert_eq!(agent.sweep(policy).expect("sweep").archived, vec![run]);
    clock.advance_millis(61_000);
    assert_eq!(agent.sweep(policy).expect("sweep").deleted, vec![run]);
    assert!(matches!(agent.get_run(run), Err(Error::RunNotFound(_))));
}

#[test]
fn concurrent_appenders_get_dense_sequences_without_retries() {
    let (agent, _) = agent();
    let run = agent.begin_run(RunSpec::named("r")).expect("begin");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let agent = agent.clone();
            std::thread::spawn(move || {
                (0..250)
                    .map(|n| {
                        agent
                            .append(run, "e", json!({"t": t, "n": n}).to_string())
                            .expect("append")
                            .0
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
    assert!(agent.verify_chain(run).expect("verify").is_intact());
    assert_eq!(
        agent.history(run, 0, u64::MAX).expect("history").len(),
        1000
    );
}

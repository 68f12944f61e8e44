//! Replays `fuzz/corpus/agent_records/` through the property check of the `agent_records`
//! fuzz target, as an ordinary test on stable Rust. File names carry expectations: `valid-*`
//! seeds must decode, `invalid-*` seeds must be refused, anything else (the fuzzer's finds)
//! only has to satisfy the properties. `regenerate_agent_records_corpus` (ignored) rewrites the
//! seeds from a real agent run after a format change.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

mod fuzz_check;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, ManualClock};
use cairn_agent::{Agent, Retention, RunSpec, SpanInput, SpanKind};
use fuzz_check::check_agent_records;
use serde_json::json;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/agent_records")
}

fn name(path: &Path) -> String {
    path.file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn agent_records_corpus_replays() {
    let mut paths: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("read corpus")
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() <= 200, "minimize the corpus");
    assert!(
        paths
            .iter()
            .filter(|p| name(p).starts_with("valid-"))
            .count()
            >= 4
    );
    assert!(
        paths
            .iter()
            .filter(|p| name(p).starts_with("invalid-"))
            .count()
            >= 3
    );
    for path in &paths {
        let bytes = fs::read(path).expect("read seed");
        assert!(bytes.len() <= 64 * 1024, "{} is over 64 KiB", name(path));
        let decoded = check_agent_records(&bytes);
        let file = name(path);
        if file.starts_with("valid-") {
            assert!(decoded > 0, "{file} must decode");
        } else if file.starts_with("invalid-") {
            assert_eq!(decoded, 0, "{file} must be refused");
        }
    }
}

/// Rewrites the seeds from the stored records of a small real run. Reproducible: a manual
/// clock, fixed content.
#[test]
#[ignore = "rewrites fuzz/corpus/agent_records; run after a format change"]
fn regenerate_agent_records_corpus() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let (agent, _) = Agent::open_with_clock(Db::in_memory(), clock.clone()).expect("open");
    let run = agent.begin_run(RunSpec::named("seed")).expect("begin");
    agent
        .run(run)
        .transaction(|tx| {
            tx.append("user", r#"{"text":"find the weather"}"#)?;
            tx.kv_put(b"k", b"v")?;
            tx.cell_init("phase", b"plan")?;
            tx.doc_create("plan", &json!({"steps": ["look", "answer"]}))?;
            let mut tool = SpanInput::new(SpanKind::ToolCall, "weather");
            tool.tags = vec!["http".into()];
            tool.duration = Duration::from_millis(40);
            tool.content = json!({"city": "Oslo"});
            let root = tx.record(tool)?;
            tx.record_child(root, SpanInput::new(SpanKind::Custom("parse".into()), "p"))?;
            Ok(())
        })
        .expect("group");
    clock.advance_millis(5);
    agent
        .doc_set(run, "plan", "/steps/-", &json!("check"))
        .expect("set");
    agent.doc_delete(run, "plan", "/steps/0").expect("delete");
    agent.kv_delete(run, b"k").expect("kv delete");
    agent
        .append(run, "llm", r#"{"text":"sunny"}"#)
        .expect("append");
    agent.prune(run, Retention::KeepSteps(1)).expect("prune");
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("dir");
    for entry in fs::read_dir(&dir).expect("read") {
        let path = entry.expect("entry").path();
        if name(&path).starts_with("valid-") || name(&path).starts_with("invalid-") {
            fs::remove_file(path).expect("remove");
        }
    }
    let mut kinds = std::collections::BTreeMap::<u8, usize>::new();
    for (key, value) in agent.db().scan_prefix("@a/r").expect("scan") {
        let kind = key[12];
        let label = match kind {
            b'e' => "event",
            b'h' => "step",
            b't' => "span",
            b'b' => "base",
            _ => continue,
        };
        let n = kinds.entry(kind).or_default();
        *n += 1;
        fs::write(dir.join(format!("valid-{label}-{n}")), &value).expect("write");
        if *n == 1 {
            fs::write(
                dir.join(format!("invalid-{label}-truncated")),
                &value[..value.len() - 1],
            )
            .expect("write");
            let mut trailing = value.to_vec();
            trailing.push(0);
            fs::write(
                dir.join(format!("invalid-{label}-trailing-byte")),
                &trailing,
            )
            .expect("write");
            let mut format = value.to_vec();
            format[0] ^= 0xFF;
            fs::write(dir.join(format!("invalid-{label}-format")), &format).expect("write");
        }
    }
    fs::write(dir.join("invalid-empty"), b"").expect("write");
    // A step claiming four billion mutations in a few bytes.
    let mut huge = vec![0xB1];
    huge.extend_from_slice(&[0; 24]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    fs::write(dir.join("invalid-step-huge-count"), &huge).expect("write");
}

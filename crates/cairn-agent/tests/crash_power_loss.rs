//! Crash matrix for agent state, power loss: a short Strict agent workload (begin a run,
//! append events, transition a cell, put KV, grouped writes, record spans) is cut at every
//! I/O point by the fault-injecting file system, the machine "loses power" (unsynced data and
//! directory entries vanish, or the last write is torn, or file data survives but directory
//! entries do not), and the store is reopened.
//!
//! Pass, at every point: recovery succeeds; the run, if its creation was acknowledged, is
//! reported orphaned; every acknowledged event is present with its hash, sequences are dense
//! and the chain verifies; the cell is at least at its last acknowledged version and at most
//! one write ahead; replaying the run to its end equals reading its head.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn::{Db, Durability, Options};
use cairn_agent::{Agent, At, Hash, RunId, RunSpec, SpanInput, SpanKind};
use cairn_testkit::{CrashMode, FaultFs, UnsyncedDirOps, UnsyncedWrites};

const STEPS: u64 = 40;

fn options(fs: &Arc<FaultFs>) -> Options {
    let file_system: Arc<dyn cairn::FileSystem> = fs.clone();
    Options::new(Path::new("/agent"))
        .durability(Durability::Strict)
        .file_system(file_system)
        .wal_segment_bytes(4_096)
        .maintenance_interval(Duration::ZERO)
}

fn crash_mode(index: u64) -> CrashMode {
    match index % 3 {
        0 => CrashMode::POWER_LOSS,
        1 => CrashMode {
            writes: UnsyncedWrites::TornLast { seed: index },
            dir_ops: UnsyncedDirOps::Kept,
        },
        _ => CrashMode {
            writes: UnsyncedWrites::Kept,
            dir_ops: UnsyncedDirOps::Lost,
        },
    }
}

#[derive(Default, Debug)]
struct Acks {
    run: Option<RunId>,
    events: Vec<Hash>,
    cell_version: u64,
    attempted_cell_version: u64,
}

/// Runs the workload until the first error (the file system froze); returns what was
/// acknowledged.
fn workload(fs: &Arc<FaultFs>) -> Acks {
    let mut acks = Acks::default();
    let Ok(db) = Db::open(options(fs)) else {
        return acks;
    };
    let Ok((agent, _)) = Agent::open(db) else {
        return acks;
    };
    let Ok(run) = agent.begin_run(RunSpec::named("power").tag("loss")) else {
        return acks;
    };
    acks.run = Some(run);
    acks.attempted_cell_version = 1;
    if agent.cell_init(run, "n", b"0").is_err() {
        return acks;
    }
    acks.cell_version = 1;
    for step in 0..STEPS {
        let outcome = match step % 4 {
            0 | 1 => agent
                .append(run, "step", format!(r#"{{"step":{step}}}"#))
                .map(|(_, h)| acks.events.push(h)),
            2 => {
                acks.attempted_cell_version += 1;
                agent
                    .transition(run, "n", |v| Ok([v, b"+"].concat()))
                    .map(|v| acks.cell_version = v)
            }
            _ => agent
                .run(run)
                .transaction(|tx| {
                    tx.kv_put(format!("k{}", step % 5).as_bytes(), b"v")?;
                    tx.record(SpanInput::new(SpanKind::ToolCall, "t"))?;
                    tx.append("group", "{}")
                })
                .map(|(_, h)| acks.events.push(h)),
        };
        if outcome.is_err() {
            break;
        }
    }
    acks
}

fn check(fs: &Arc<FaultFs>, acks: &Acks) -> Result<(), String> {
    let db = Db::open(options(fs)).map_err(|e| format!("recovery failed: {e}"))?;
    let (agent, orphans) = Agent::open(db).map_err(|e| format!("agent open failed: {e}"))?;
    let Some(run) = acks.run else {
        return Ok(());
    };
    if !orphans.orphaned.contains(&run) {
        return Err(format!("run {run} not reported orphaned: {orphans:?}"));
    }
    let chain = agent.verify_chain(run).map_err(|e| e.to_string())?;
    if !chain.is_intact() {
        return Err(format!("chain broken at {:?}", chain.first_bad));
    }
    let events = agent.read_all(run).map_err(|e| e.to_string())?;
    for (seq, hash) in acks.events.iter().enumerate() {
        match events.get(seq) {
            Some(e) if &e.hash == hash => {}
            other => {
                return Err(format!(
                    "acknowledged event {seq} lost or changed: {other:?}"
                ))
            }
        }
    }
    if events.len() > acks.events.len() + 1 {
        return Err(format!(
            "{} events, only {} acknowledged",
            events.len(),
            acks.events.len()
        ));
    }
    let version = agent
        .cell_read(run, "n")
        .map_err(|e| e.to_string())?
        .map_or(0, |c| c.version);
    if version < acks.cell_version || version > acks.attempted_cell_version {
        return Err(format!(
            "cell at version {version}, acknowledged {}",
            acks.cell_version
        ));
    }
    let replayed = agent.replay_run(run, At::End).map_err(|e| e.to_string())?;
    if replayed != agent.head_state(run).map_err(|e| e.to_string())? {
        return Err("replay to the end differs from the head".into());
    }
    Ok(())
}

#[test]
fn agent_state_survives_power_loss_at_every_io_point() {
    let dry = Arc::new(FaultFs::new());
    let full = workload(&dry);
    assert_eq!(
        full.events.len() as u64,
        STEPS / 2 + STEPS / 4,
        "the workload runs without faults"
    );
    let points = dry.mutation_count();
    let mut acknowledged = 0;
    for point in 0..=points {
        let fs = Arc::new(FaultFs::new());
        fs.freeze_after_mutations(point);
        let acks = workload(&fs);
        acknowledged += acks.events.len();
        let image = fs.crash(crash_mode(point));
        check(&image, &acks).unwrap_or_else(|e| {
            panic!(
                "crash at I/O point {point} of {points} ({:?}): {e}",
                crash_mode(point)
            )
        });
    }
    assert!(points > 100, "only {points} I/O points");
    assert!(
        acknowledged > 1_000,
        "only {acknowledged} acknowledged events checked"
    );
}
